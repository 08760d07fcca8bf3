//! The `cr-token` grant: a compute-resource token of a trusted issuer in, a profile token out.

use super::token::GrantRequest;
use super::IbmError;
use crate::tokens::IssuedTokens;
use tessera_core::error::{Error, ErrorKind};

pub(super) fn cr_token_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let _ = request;
    Err(Error::new(
        ErrorKind::Unsupported,
        "grant_type urn:ibm:params:oauth:grant-type:cr-token is not supported by this server yet.",
    )
    .into())
}
