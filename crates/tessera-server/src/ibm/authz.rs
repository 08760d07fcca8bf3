//! The `iam-authz` grant: a token for a resource identity (`crn-…`) that an authorization policy allows.

use super::token::GrantRequest;
use super::IbmError;
use crate::tokens::IssuedTokens;
use tessera_core::error::{Error, ErrorKind};

pub(super) fn iam_authz_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let _ = request;
    Err(Error::new(
        ErrorKind::Unsupported,
        "grant_type urn:ibm:params:oauth:grant-type:iam-authz is not supported by this server yet.",
    )
    .into())
}
