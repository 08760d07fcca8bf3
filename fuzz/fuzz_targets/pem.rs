//! PEM (`service_account_jwt::pem_decode`, used for key files and TLS/issuer material) and its
//! encoder.
//!
//! Properties: decoding what the encoder wrote gives back the same DER, for any bytes; a block
//! that decodes re-encodes to a block that decodes to the same DER.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::service_account_jwt::{pem, pem_decode};

fuzz_target!(|data: &[u8]| {
    for label in ["PRIVATE KEY", "PUBLIC KEY", "CERTIFICATE"] {
        assert_eq!(pem_decode(label, &pem(label, data)).as_deref(), Some(data));
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        if let Some(der) = pem_decode(label, text) {
            assert_eq!(pem_decode(label, &pem(label, &der)), Some(der));
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tessera::agent::upstream::pem_to_der(text);
    }
});
