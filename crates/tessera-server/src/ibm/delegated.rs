//! Delegated refresh tokens: issuing them with the API-key grant and consuming them.

use super::token::GrantRequest;
use super::IbmError;
use crate::tokens::IssuedTokens;
use tessera_core::error::{Error, ErrorKind};

pub(super) fn delegated_refresh_grant(
    request: &GrantRequest<'_>,
) -> Result<IssuedTokens, IbmError> {
    let _ = request;
    Err(Error::new(
        ErrorKind::Unsupported,
        "grant_type urn:ibm:params:oauth:grant-type:delegated-refresh-token is not supported by this server yet.",
    )
    .into())
}
