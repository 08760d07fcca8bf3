//! Machine secrets (API keys, client secrets) and human passwords.
//!
//! Machine secrets are 256-bit random strings, so a keyed hash is all the protection they need:
//! they are stored as HMAC-SHA-256 under the server pepper, looked up by that hash and compared in
//! constant time, at the cost of one HMAC on the token path. Passwords are low-entropy and get
//! Argon2id, which is deliberately slow and never runs on the machine-credential path.

use crate::error::{Error, Result};
use crate::model::KeyHash;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::fmt;
use subtle::ConstantTimeEq;

/// Prefix of API keys Tessera issues, so secret scanners can recognise them.
pub const API_KEY_PREFIX: &str = "tsk_";
/// Prefix of OAuth client secrets Tessera issues.
pub const CLIENT_SECRET_PREFIX: &str = "tcs_";
/// Prefix of user OAuth tokens, the shape of Yandex Passport OAuth tokens.
pub const OAUTH_TOKEN_PREFIX: &str = "y0_";
/// Shortest API key accepted when an operator supplies one (bootstrap automation).
pub const MIN_SUPPLIED_API_KEY: usize = 32;

/// What a keyed hash is for; mixed into the MAC so an API-key hash can never match a secret hash.
#[derive(Debug, Clone, Copy)]
pub enum SecretPurpose {
    ApiKey,
    ClientSecret,
    OAuthToken,
    /// The admin console's anti-CSRF token of a session.
    ConsoleCsrf,
    /// The admin console's tag of a session's id and sign-in time (so neither can be edited).
    ConsoleSession,
    /// The admin console's anti-CSRF token of the sign-in form (before there is a session).
    ConsoleSignIn,
}

impl SecretPurpose {
    fn label(self) -> &'static [u8] {
        match self {
            SecretPurpose::ApiKey => b"tessera api key\0",
            SecretPurpose::ClientSecret => b"tessera client secret\0",
            SecretPurpose::OAuthToken => b"tessera oauth token\0",
            SecretPurpose::ConsoleCsrf => b"tessera console csrf\0",
            SecretPurpose::ConsoleSession => b"tessera console session\0",
            SecretPurpose::ConsoleSignIn => b"tessera console sign-in\0",
        }
    }
}

/// The server pepper: the HMAC key under which machine secrets are hashed.
pub struct Pepper(hmac::Key);

impl Pepper {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Pepper(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    pub fn hash(&self, purpose: SecretPurpose, secret: &str) -> KeyHash {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(purpose.label());
        ctx.update(secret.as_bytes());
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        KeyHash(out)
    }

    /// Constant-time check of `secret` against a stored hash.
    pub fn verify(&self, purpose: SecretPurpose, secret: &str, stored: &KeyHash) -> bool {
        same_hash(&self.hash(purpose, secret), stored)
    }
}

/// Constant-time comparison of two keyed hashes: for a caller that already hashed the secret
/// (to look it up by its hash) and must not hash it a second time to check it.
pub fn same_hash(candidate: &KeyHash, stored: &KeyHash) -> bool {
    bool::from(candidate.0.ct_eq(&stored.0))
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(..)")
    }
}

/// A freshly generated secret, shown to its owner once. `Debug` does not reveal it.
pub struct NewSecret(String);

impl NewSecret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewSecret(..)")
    }
}

fn random_secret(prefix: &str, rng: &dyn SecureRandom) -> Result<NewSecret> {
    let mut bytes = [0u8; 32];
    rng.fill(&mut bytes)
        .map_err(|_| Error::internal("random generator failed"))?;
    Ok(NewSecret(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

pub fn generate_api_key(rng: &dyn SecureRandom) -> Result<NewSecret> {
    random_secret(API_KEY_PREFIX, rng)
}

pub fn generate_client_secret(rng: &dyn SecureRandom) -> Result<NewSecret> {
    random_secret(CLIENT_SECRET_PREFIX, rng)
}

pub fn generate_oauth_token(rng: &dyn SecureRandom) -> Result<NewSecret> {
    random_secret(OAUTH_TOKEN_PREFIX, rng)
}

/// Accepts an operator-supplied API key (e.g. `TESSERA_BOOTSTRAP_ADMIN_APIKEY`).
pub fn supplied_api_key(value: &str) -> Result<NewSecret> {
    if value.len() < MIN_SUPPLIED_API_KEY {
        return Err(Error::invalid(format!(
            "a supplied API key must be at least {MIN_SUPPLIED_API_KEY} characters"
        )));
    }
    if value.len() > crate::limits::MAX_API_KEY || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(format!(
            "a supplied API key must be at most {} printable ASCII characters without spaces",
            crate::limits::MAX_API_KEY
        )));
    }
    Ok(NewSecret(value.to_owned()))
}

/// Hashes a password with Argon2id (the crate's defaults: 19 MiB, 2 passes). Slow on purpose.
pub fn hash_password(password: &str, rng: &dyn SecureRandom) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    if password.len() < crate::limits::MIN_PASSWORD {
        return Err(Error::invalid(format!(
            "password must be at least {} characters",
            crate::limits::MIN_PASSWORD
        )));
    }
    crate::limits::bounded("password", password, crate::limits::MAX_PASSWORD)?;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt)
        .map_err(|_| Error::internal("random generator failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| Error::internal("salt encoding"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| Error::internal("password hashing failed"))
}

/// Checks a password against an Argon2id PHC string. A malformed stored hash never matches.
pub fn verify_password(stored: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    if password.len() > crate::limits::MAX_PASSWORD {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    #[test]
    fn api_key_hash_round_trip() {
        let rng = SystemRandom::new();
        let pepper = Pepper::from_bytes(&[7u8; 32]);
        let key = generate_api_key(&rng).unwrap();
        assert!(key.expose().starts_with(API_KEY_PREFIX));
        assert_eq!(key.expose().len(), 4 + 43);
        let stored = pepper.hash(SecretPurpose::ApiKey, key.expose());
        assert!(pepper.verify(SecretPurpose::ApiKey, key.expose(), &stored));
        assert!(!pepper.verify(SecretPurpose::ApiKey, "other", &stored));
        // The same string hashed for another purpose does not match.
        assert!(!pepper.verify(SecretPurpose::ClientSecret, key.expose(), &stored));
        // Another pepper does not match either.
        let other = Pepper::from_bytes(&[8u8; 32]);
        assert!(!other.verify(SecretPurpose::ApiKey, key.expose(), &stored));
    }

    #[test]
    fn supplied_keys_are_bounded() {
        assert!(supplied_api_key("short").is_err());
        assert!(supplied_api_key(&"a".repeat(32)).is_ok());
        assert!(supplied_api_key(&format!("{} x", "a".repeat(32))).is_err());
    }

    #[test]
    fn passwords() {
        let rng = SystemRandom::new();
        let hash = hash_password("correct horse", &rng).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("garbage", "correct horse"));
        assert!(hash_password("short", &rng).is_err());
    }

    #[test]
    fn debug_hides_secrets() {
        let secret = supplied_api_key(&"s".repeat(40)).unwrap();
        assert_eq!(format!("{secret:?}"), "NewSecret(..)");
    }
}
