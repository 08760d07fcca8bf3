//! `t1.` IAM tokens of the Yandex surface (`Jwks::verify_iam_token`, then the core's claim
//! parsing).
//!
//! Properties: only a `t1.` token the fixture Ed25519 key signed verifies; a verified token
//! re-encodes to itself; its claims parse as the core's claim set.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = tessera_verify::is_iam_token(token);
    let Ok(claims) = jwks().verify_iam_token(token, ISSUER, now()) else {
        return;
    };
    assert!(
        is_one_of(token, signed_iam_tokens()),
        "a t1. token the fixture key never signed verified"
    );
    let body = token.strip_prefix("t1.").unwrap_or_default();
    let (payload, signature) = body.split_once('.').unwrap_or_default();
    let payload_bytes = URL_SAFE_NO_PAD.decode(payload).unwrap_or_default();
    let signature_bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    assert_eq!(
        format!(
            "t1.{}.{}",
            URL_SAFE_NO_PAD.encode(payload_bytes),
            URL_SAFE_NO_PAD.encode(signature_bytes)
        ),
        token
    );
    let parsed: Result<tessera_core::iam_token::IamTokenClaims, _> =
        serde_json::from_value(serde_json::Value::Object(claims));
    assert!(
        parsed.is_ok(),
        "a verified fixture token has the core's claim set"
    );
});
