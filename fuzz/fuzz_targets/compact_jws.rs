//! Compact JWS and JWT claims (`tessera_verify`): what every surface does with a presented JWT.
//!
//! Properties: a decoded JWS re-encodes to exactly its input (no second spelling of one token);
//! a token verifies against the fixture key set only if it is one the fixture keys signed.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parts) = tessera_verify::decode_unverified(token) {
        let mut segments = token.split('.');
        let header = segments.next().unwrap_or_default();
        let payload = segments.next().unwrap_or_default();
        assert_eq!(
            parts.signing_input,
            format!("{header}.{payload}").as_bytes(),
            "the signature covers exactly the first two segments"
        );
        let header_bytes = URL_SAFE_NO_PAD.decode(header).unwrap_or_default();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&header_bytes),
            header,
            "header re-encodes"
        );
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&parts.payload),
            payload,
            "payload re-encodes"
        );
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&parts.signature),
            signature,
            "signature re-encodes"
        );
    }
    match jwks().verify(token, ISSUER, now()) {
        Ok(claims) => {
            assert!(
                is_one_of(token, signed_jwts()),
                "a token the fixture keys never signed verified"
            );
            assert_eq!(claims.get("iss").and_then(|v| v.as_str()), Some(ISSUER));
        }
        Err(_) => {
            // Error messages never echo the token: a marker appended to it never shows up.
            if let Err(error) = jwks().verify(&format!("{token}~echo~"), ISSUER, now()) {
                assert!(!error.to_string().contains("~echo~"), "{error}");
            }
        }
    }
});
