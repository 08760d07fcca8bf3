//! The `assume` grant: a trusted identity's token in, a trusted-profile token out.

use super::token::GrantRequest;
use super::IbmError;
use crate::tokens::IssuedTokens;
use tessera_core::error::{Error, ErrorKind};

pub(super) fn assume_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let _ = request;
    Err(Error::new(
        ErrorKind::Unsupported,
        "grant_type urn:ibm:params:oauth:grant-type:assume is not supported by this server yet.",
    )
    .into())
}
