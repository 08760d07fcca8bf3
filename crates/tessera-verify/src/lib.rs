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
//! # For resource services
//!
//! A [`Verifier`] holds a trust map issuer → ([`Keys`], audiences, algorithms, leeway) and
//! answers a [`VerifiedCaller`] (or a [`VerifyError`] whose [`VerifyError::reason`] is a metric
//! label). A token's claims are read in one pass over its payload (no map of claims is built;
//! [`VerifiedCaller::claims`] parses them on demand). Keys are static ([`Jwks`]) or, with the `http` feature, a `RemoteKeys` cache fed by
//! OIDC discovery or a JWKS URL: lock-free reads, one fetch in flight, `Cache-Control: max-age`
//! within a floor and a ceiling, at most one refetch per issuer per interval for unknown kids
//! (rules in [`refresh`]), the last good set kept (and optionally persisted) when the issuer is
//! down, and an SSRF guard (`HttpOptions::allow_private`). Opaque and foreign tokens go to
//! RFC 7662 introspection with the `introspection` feature (answers cached, bounded, with
//! per-entry eviction). Integrations: `tower` (`VerifyLayer`, runnable example in its docs; it
//! answers gRPC calls with gRPC statuses, so it is also the asynchronous tonic integration),
//! `axum` (the `VerifiedCaller` extractor and `403 insufficient_scope`), `tonic`
//! (`VerifyInterceptor`, synchronous: cached keys only); `testkit` has a fake rotating issuer
//! with an introspection endpoint. Metrics names are in [`metrics`]. `examples/resource-service/` at the repository
//! root is a complete axum service.
//!
//! ```no_run
//! # fn demo(jwks_json: &str, token: &str, now: i64) -> Result<(), tessera_verify::VerifyError> {
//! let jwks = tessera_verify::Jwks::from_json(jwks_json)?;
//! let claims = jwks.verify(token, "http://127.0.0.1:8080/identity", now)?;
//! println!("{}", claims["iam_id"]);
//! # Ok(()) }
//! ```

pub mod base64url;
mod iam_token;
mod jwk;
mod jws;
mod validation;

pub use iam_token::{
    decode_iam_token_unverified, is_iam_token, IamTokenParts, IAM_TOKEN_PREFIX, MAX_IAM_TOKEN,
};
pub use jwk::{Jwk, Jwks, KeyAlgorithm, VerifyingKey};
pub use jws::{decode_unverified, JwsParts};
pub use validation::{
    LeewayOutOfRange, TimeClaims, Validation, ValidationError, LEEWAY, MAX_LEEWAY,
};

mod caller;
mod claims;
mod clock;
pub mod metrics;
pub mod refresh;
mod verifier;

pub use caller::{bearer_token, InsufficientScope, TokenKind, VerifiedCaller};
pub use refresh::RefreshPolicy;
pub use verifier::{ConfigError, Keys, TrustedIssuer, Verifier, VerifierBuilder, ALL_ALGORITHMS};

#[cfg(feature = "http")]
mod fetch;
#[cfg(feature = "http")]
mod remote;
#[cfg(feature = "http")]
pub use fetch::{is_public, FetchError, HttpOptions};
#[cfg(feature = "http")]
pub use remote::{KeyCacheStats, KeySource, RemoteKeys, RemoteKeysBuilder};

#[cfg(feature = "introspection")]
mod introspection;
#[cfg(feature = "introspection")]
pub use introspection::{IntrospectionConfig, Introspector};

#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
pub use layer::{challenge, forbidden, grpc_rejection, rejection, VerifyLayer, VerifyService};

#[cfg(feature = "axum")]
mod axum_extract;
#[cfg(feature = "axum")]
pub use axum_extract::Unauthenticated;

#[cfg(feature = "tonic")]
mod grpc;
#[cfg(feature = "tonic")]
pub use grpc::VerifyInterceptor;

#[cfg(any(feature = "testkit", all(test, feature = "http")))]
pub mod testkit;

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
    #[error("token was issued by an issuer this service does not trust")]
    UntrustedIssuer,
    #[error("token is signed with an algorithm this service does not accept")]
    AlgorithmNotAllowed,
    #[error("token is not active")]
    Inactive,
    /// Introspection could not answer (the endpoint down or answering nonsense).
    #[error("token could not be checked: {0}")]
    Unavailable(String),
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
            VerifyError::UntrustedIssuer => "untrusted_issuer",
            VerifyError::AlgorithmNotAllowed => "algorithm_not_allowed",
            VerifyError::Inactive => "inactive",
            VerifyError::Unavailable(_) => "unavailable",
        }
    }
}
