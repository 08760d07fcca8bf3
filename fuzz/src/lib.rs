//! What the fuzz targets share: the fixtures that `examples/fuzz_seeds.rs` wrote (the public
//! keys the targets trust, and the only tokens those keys ever signed), and small checks.
//!
//! The targets' central property is "only what the fixtures signed or sealed is accepted":
//! the private keys that signed them were thrown away after signing, so anything else a
//! verifier accepts is a forgery the fuzzer found.

use std::sync::OnceLock;

/// The issuer every fixture token names.
pub const ISSUER: &str = "https://iam.fuzz.test/identity";
/// The refresh-token key the fixtures were sealed with.
pub const REFRESH_KEY: [u8; 32] = [0x5a; 32];
/// Any other key: must never open a fixture.
pub const WRONG_REFRESH_KEY: [u8; 32] = [0xa5; 32];

/// The instant the fixtures were made at; the targets verify "now", when all were valid.
pub fn now() -> i64 {
    static NOW: OnceLock<i64> = OnceLock::new();
    *NOW.get_or_init(|| {
        include_str!("../fixtures/now.txt")
            .trim()
            .parse()
            .unwrap_or(0)
    })
}

fn lines(text: &'static str) -> Vec<&'static str> {
    text.lines().filter(|l| !l.is_empty()).collect()
}

/// The JWKS publishing the fixture keys (RS256, PS256, ES256, EdDSA).
pub fn jwks_json() -> &'static str {
    include_str!("../fixtures/jwks.json")
}

/// The key set of [`jwks_json`].
pub fn jwks() -> &'static tessera_verify::Jwks {
    static JWKS: OnceLock<tessera_verify::Jwks> = OnceLock::new();
    JWKS.get_or_init(|| tessera_verify::Jwks::from_json(jwks_json()).unwrap_or_default())
}

/// Every JWT the fixture keys signed.
pub fn signed_jwts() -> &'static [&'static str] {
    static TOKENS: OnceLock<Vec<&'static str>> = OnceLock::new();
    TOKENS.get_or_init(|| lines(include_str!("../fixtures/jwts.txt")))
}

/// Every `t1.` token the fixture Ed25519 key signed.
pub fn signed_iam_tokens() -> &'static [&'static str] {
    static TOKENS: OnceLock<Vec<&'static str>> = OnceLock::new();
    TOKENS.get_or_init(|| lines(include_str!("../fixtures/iam_tokens.txt")))
}

/// Every refresh token sealed under [`REFRESH_KEY`].
pub fn sealed_refresh_tokens() -> &'static [&'static str] {
    static TOKENS: OnceLock<Vec<&'static str>> = OnceLock::new();
    TOKENS.get_or_init(|| lines(include_str!("../fixtures/refresh_tokens.txt")))
}

/// Every JWT the fixture authorized key signed.
pub fn signed_sa_jwts() -> &'static [&'static str] {
    static TOKENS: OnceLock<Vec<&'static str>> = OnceLock::new();
    TOKENS.get_or_init(|| lines(include_str!("../fixtures/sa_jwts.txt")))
}

/// The service account, its account and its authorized key (public half, SPKI DER).
pub struct AuthorizedKeyFixture {
    pub service_account_id: String,
    pub account_id: String,
    pub key_id: String,
    pub public_key_der: Vec<u8>,
}

pub fn authorized_key() -> &'static AuthorizedKeyFixture {
    use base64::Engine;
    static KEY: OnceLock<AuthorizedKeyFixture> = OnceLock::new();
    KEY.get_or_init(|| {
        let value: serde_json::Value =
            serde_json::from_str(include_str!("../fixtures/authorized_key.json"))
                .unwrap_or_default();
        let text = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        AuthorizedKeyFixture {
            service_account_id: text("service_account_id"),
            account_id: text("account_id"),
            key_id: text("key_id"),
            public_key_der: base64::engine::general_purpose::STANDARD
                .decode(text("public_key_der"))
                .unwrap_or_default(),
        }
    })
}

/// Whether `token` is, byte for byte, one of `known`.
pub fn is_one_of(token: &str, known: &[&str]) -> bool {
    known.contains(&token)
}
