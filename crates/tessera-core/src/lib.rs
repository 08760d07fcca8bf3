//! Tessera's pure core: the domain model, credential checks, token formats and signing.
//!
//! Nothing here performs I/O, reads the clock or touches a runtime. Time (`now`, unix seconds)
//! and randomness (`&dyn SecureRandom`) come in as arguments, so every rule is testable at a fixed
//! instant. The main types:
//!
//! - [`model`]: accounts, users, service accounts, API keys, OAuth clients, access bindings.
//! - [`directory::Directory`]: the in-memory snapshot the token path reads, with every index
//!   it needs; kept current by applying [`directory::Change`]s from the store's change feed.
//! - [`jose`]: JWS signing and verification (RS256, PS256, ES256, EdDSA) and JWKs.
//! - [`keyring::KeyRing`]: the published keys and the active signer per token family.
//! - [`token`]: the IBM access-token claim set, minting and verification.
//! - [`refresh`]: sealed, self-contained refresh tokens.
//! - [`secret`]: API keys and client secrets (keyed hashes) and passwords (Argon2id).
//! - [`seal`]: AEAD sealing under the master key, for private keys and server secrets.
//! - [`authn`]: turning a credential into a [`principal::Principal`] (the only place that can).
//! - [`authz`]: every authorization decision, over the directory, a principal and an action.
//! - [`lineage`]: where a token came from, so revoking any link kills it.
//! - [`totp`]: RFC 6238 one-time codes for the second factor.
//! - [`id_token`]: OpenID Connect ID tokens for workloads (the metadata agent's `identity`).

pub mod authn;
pub mod authz;
#[cfg(test)]
mod authz_model_tests;
pub mod compute_resource;
pub mod directory;
pub mod error;
pub mod iam_token;
pub mod id_token;
pub mod ids;
pub mod jose;
pub mod json;
pub mod keyring;
pub mod limits;
pub mod lineage;
pub mod model;
pub mod presented;
pub mod principal;
pub mod refresh;
pub mod rotation;
pub mod seal;
pub mod secret;
pub mod service_account_jwt;
pub mod token;
pub mod totp;
pub mod trusted_issuer;
pub mod trusted_profile;

pub use error::{Error, ErrorKind};

/// Seconds since the Unix epoch. Every time-dependent rule takes one of these as `now`.
pub type UnixTime = i64;
