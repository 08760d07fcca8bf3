//! Offline verification of Tessera tokens, for resource services.
//!
//! A resource service fetches the issuer's JWKS once (`/identity/keys` or
//! `/.well-known/jwks.json`), builds a [`Jwks`], and checks each presented JWT locally with
//! [`Jwks::verify`]: the signature against the key named by `kid` (the algorithm comes from the
//! key, never from the token header, so `alg: none` and HS256-with-a-public-key forgeries fail),
//! then the claims with a [`Validation`] (`exp` required, `nbf`, `iat`, `iss`, and with
//! [`Jwks::verify_with`] audiences, required claims and a leeway of your choice). This crate needs neither the server nor the store; the server
//! itself uses it for every token it is shown.
//!
//! `t1.` IAM tokens of the Yandex surface verify against the same key set with
//! [`Jwks::verify_iam_token`].
//!
//! ```no_run
//! # fn demo(jwks_json: &str, token: &str, now: i64) -> Result<(), tessera_verify::VerifyError> {
//! let jwks = tessera_verify::Jwks::from_json(jwks_json)?;
//! let claims = jwks.verify(token, "http://127.0.0.1:8080/identity", now)?;
//! println!("{}", claims["iam_id"]);
//! # Ok(()) }
//! ```

mod iam_token;
mod jwk;
mod jws;
mod validation;

pub use iam_token::{is_iam_token, IAM_TOKEN_PREFIX, MAX_IAM_TOKEN};
pub use jwk::{Jwk, Jwks, KeyAlgorithm, VerifyingKey};
pub use jws::{decode_unverified, JwsParts};
pub use validation::{
    LeewayOutOfRange, TimeClaims, Validation, ValidationError, LEEWAY, MAX_LEEWAY,
};

/// Why a token did not verify. Messages are safe to show: they never echo the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("token is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("token is signed with an unknown key")]
    UnknownKey,
    #[error("token algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("token signature is invalid")]
    BadSignature,
    /// The signature verified; the claims did not ([`Validation`]).
    #[error(transparent)]
    Claims(#[from] ValidationError),
    #[error("invalid key set: {0}")]
    BadKeySet(String),
}

impl VerifyError {
    /// A short stable name of the reason, usable as a metric label (claim refusals give
    /// [`ValidationError::reason`]).
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Malformed(_) => "malformed",
            VerifyError::UnknownKey => "unknown_key",
            VerifyError::AlgorithmMismatch => "algorithm_mismatch",
            VerifyError::BadSignature => "bad_signature",
            VerifyError::Claims(e) => e.reason(),
            VerifyError::BadKeySet(_) => "bad_key_set",
        }
    }
}
