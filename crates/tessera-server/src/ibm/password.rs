//! The `password` grant: a user's password (Argon2id, on a blocking thread) and, where required, a TOTP code.

use super::token::GrantRequest;
use super::IbmError;
use crate::tokens::IssuedTokens;
use tessera_core::error::{Error, ErrorKind};

pub(super) async fn password_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let _ = request;
    Err(Error::new(
        ErrorKind::Unsupported,
        "grant_type password is not supported by this server yet.",
    )
    .into())
}
