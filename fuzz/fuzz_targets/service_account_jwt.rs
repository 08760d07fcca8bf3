//! Service-account JWTs (`service_account_jwt::verify`, the Yandex `Create` with a JWT) and the
//! credential files that hold their keys (`agent::upstream::Credential::parse`: authorized key
//! files and API key files).
//!
//! Properties: only the JWT the fixture key signed authenticates, and it authenticates its own
//! service account; a key file that parses holds a key that signs what its public half verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::agent::upstream::Credential;
use tessera_core::directory::{Change, Directory, Entity};
use tessera_core::model::{Account, AuthorizedKey, AuthorizedKeyAlgorithm, ServiceAccount};
use tessera_core::service_account_jwt::CANONICAL_AUDIENCE;
use tessera_fuzz::*;

fn directory() -> &'static Directory {
    static DIR: std::sync::OnceLock<Directory> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let fixture = authorized_key();
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::Account(Account {
            id: fixture.account_id.clone(),
            name: "fuzz".into(),
            enterprise_id: None,
            mfa: Default::default(),
            created_at: 0,
        })));
        dir.apply(Change::Upsert(Entity::ServiceAccount(ServiceAccount {
            id: fixture.service_account_id.clone(),
            account_id: fixture.account_id.clone(),
            name: "ci".into(),
            description: String::new(),
            created_at: 0,
        })));
        dir.apply(Change::Upsert(Entity::AuthorizedKey(AuthorizedKey {
            id: fixture.key_id.clone(),
            service_account_id: fixture.service_account_id.clone(),
            account_id: fixture.account_id.clone(),
            description: String::new(),
            algorithm: AuthorizedKeyAlgorithm::Rsa2048,
            public_key_der: fixture.public_key_der.clone(),
            created_at: 0,
        })));
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let audiences = [CANONICAL_AUDIENCE.to_owned()];
    if let Ok(principal) =
        tessera_core::authn::authenticate_service_account_jwt(directory(), text, &audiences, now())
    {
        assert!(
            is_one_of(text, signed_sa_jwts()),
            "a JWT the authorized key never signed verified"
        );
        assert_eq!(principal.id(), authorized_key().service_account_id);
    }
    match Credential::parse(text) {
        Ok(Credential::AuthorizedKey {
            key,
            key_id,
            service_account_id,
        }) => {
            // (serde skips fields it ignores without checking their escapes, so the whole text
            // need not be a valid JSON value; where it is, the fields must agree.)
            if let Ok(file) = serde_json::from_str::<serde_json::Value>(text) {
                assert_eq!(file["id"].as_str(), Some(key_id.as_str()));
                assert_eq!(
                    file["service_account_id"].as_str(),
                    Some(service_account_id.as_str())
                );
            }
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let signature = key.sign(b"fuzz", &rng);
            let verifier = key.verifying_key();
            if let (Ok(signature), Ok(verifier)) = (signature, verifier) {
                assert!(
                    verifier.verify_signature(b"fuzz", &signature).is_ok(),
                    "a parsed key cannot sign"
                );
            }
        }
        Ok(Credential::ApiKey(apikey)) => {
            assert!(!apikey.is_empty() && apikey == apikey.trim());
        }
        Err(error) => {
            // The file holds a secret: errors are fixed sentences, never quoting the file.
            let message = format!("{error:#}");
            let fixed = [
                "private_key is not a PKCS#8 PEM key",
                "private_key is not an RSA PKCS#8 key",
                "holds neither an authorized key",
            ];
            let position_only = message
                .strip_prefix("is not JSON (line ")
                .is_some_and(|rest| {
                    rest.chars()
                        .all(|c| c.is_ascii_digit() || ", column)".contains(c))
                });
            assert!(
                position_only || fixed.iter().any(|f| message.starts_with(f)),
                "{message}"
            );
        }
    }
});
