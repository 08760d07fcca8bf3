//! JWKS documents (`Jwks::from_json`): a resource service's or a trusted issuer's key set.
//!
//! Properties: parsing is deterministic; a key set parsed from the input verifies a fixture
//! token only if the input holds that token's public key (no key is conjured from the token's
//! header or a confused field), and never anything the fixture keys did not sign.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = tessera_verify::Jwks::from_json(text) else {
        return;
    };
    let again = tessera_verify::Jwks::from_json(text).map(|j| j.len());
    assert_eq!(again, Ok(parsed.len()), "parsing is deterministic");
    let fixture: serde_json::Value = serde_json::from_str(jwks_json()).unwrap_or_default();
    for token in signed_jwts() {
        if parsed.verify(token, ISSUER, now()).is_ok() {
            let kid = tessera_verify::decode_unverified(token)
                .ok()
                .and_then(|p| p.kid)
                .unwrap_or_default();
            let key = fixture["keys"]
                .as_array()
                .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
                .cloned()
                .unwrap_or_default();
            let material = key["n"].as_str().or(key["x"].as_str()).unwrap_or("\u{0}");
            assert!(
                text.contains(material),
                "verified {kid} without its public key"
            );
        }
    }
    for token in signed_iam_tokens() {
        let _ = parsed.verify_iam_token(token, ISSUER, now());
    }
});
