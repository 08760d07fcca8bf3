//! JWS signing with the server's private keys, and their public JWKs.
//!
//! Verification lives in `tessera-verify`, which resource services use too; this module adds
//! only what needs a private key.

use crate::error::{Error, Result};
use crate::model::Algorithm;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use std::fmt;
use tessera_verify::{base64url, Jwk, VerifyingKey};

enum KeyMaterial {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A private signing key with its `kid` and algorithm.
pub struct SigningKey {
    kid: String,
    algorithm: Algorithm,
    material: KeyMaterial,
    /// Pre-encoded `base64url(header) "."`, so minting a token does no header work.
    header_prefix: String,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm)
            .finish()
    }
}

/// Generates a new private key for `algorithm`, as PKCS#8 DER.
pub fn generate_pkcs8(algorithm: Algorithm, rng: &dyn SecureRandom) -> Result<Vec<u8>> {
    let fail = |_| Error::internal("key generation failed");
    match algorithm {
        Algorithm::Rs256 | Algorithm::Ps256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(fail)?;
            let der = pair
                .as_der()
                .map_err(|_| Error::internal("key encoding failed"))?;
            Ok(der.as_ref().to_vec())
        }
        Algorithm::Es256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng)
                .map_err(fail)?;
            Ok(doc.as_ref().to_vec())
        }
        Algorithm::EdDsa => {
            let doc = Ed25519KeyPair::generate_pkcs8(rng).map_err(fail)?;
            Ok(doc.as_ref().to_vec())
        }
    }
}

impl SigningKey {
    pub fn from_pkcs8(kid: &str, algorithm: Algorithm, pkcs8: &[u8]) -> Result<Self> {
        let bad = |_| Error::internal(format!("signing key {kid} cannot be loaded"));
        let material = match algorithm {
            Algorithm::Rs256 | Algorithm::Ps256 => {
                KeyMaterial::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?)
            }
            Algorithm::Es256 => KeyMaterial::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(bad)?,
            ),
            Algorithm::EdDsa => {
                KeyMaterial::Ed(Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8).map_err(bad)?)
            }
        };
        let header = serde_json::json!({"alg": algorithm.as_str(), "kid": kid, "typ": "JWT"});
        let header_prefix = format!("{}.", base64url::encode(header.to_string().as_bytes()));
        Ok(SigningKey {
            kid: kid.to_owned(),
            algorithm,
            material,
            header_prefix,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Signs `message` and returns the raw signature.
    pub fn sign(&self, message: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>> {
        let fail = |_| Error::internal("signing failed");
        match &self.material {
            KeyMaterial::Rsa(pair) => {
                let padding: &'static dyn signature::RsaEncoding = match self.algorithm {
                    Algorithm::Ps256 => &signature::RSA_PSS_SHA256,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, rng, message, &mut sig).map_err(fail)?;
                Ok(sig)
            }
            KeyMaterial::Ec(pair) => Ok(pair.sign(rng, message).map_err(fail)?.as_ref().to_vec()),
            KeyMaterial::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// Produces a compact JWS over the JSON `payload` with this key's header.
    pub fn sign_jws(&self, payload: &[u8], rng: &dyn SecureRandom) -> Result<String> {
        let mut token = String::with_capacity(self.header_prefix.len() + payload.len() * 2 + 400);
        token.push_str(&self.header_prefix);
        base64url::encode_into(payload, &mut token);
        let sig = self.sign(token.as_bytes(), rng)?;
        token.push('.');
        base64url::encode_into(&sig, &mut token);
        Ok(token)
    }

    /// The public half as a JWK with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: self.kid.clone(),
            alg: Some(self.algorithm.as_str().to_owned()),
            key_use: Some("sig".to_owned()),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        };
        match &self.material {
            KeyMaterial::Rsa(pair) => {
                let public = pair.public_key();
                jwk.kty = "RSA".to_owned();
                jwk.n = Some(base64url::encode(
                    public.modulus().big_endian_without_leading_zero(),
                ));
                jwk.e = Some(base64url::encode(
                    public.exponent().big_endian_without_leading_zero(),
                ));
            }
            KeyMaterial::Ec(pair) => {
                let point = pair.public_key().as_ref();
                jwk.kty = "EC".to_owned();
                jwk.crv = Some("P-256".to_owned());
                if point.len() == 65 {
                    jwk.x = Some(base64url::encode(&point[1..33]));
                    jwk.y = Some(base64url::encode(&point[33..65]));
                }
            }
            KeyMaterial::Ed(pair) => {
                jwk.kty = "OKP".to_owned();
                jwk.crv = Some("Ed25519".to_owned());
                jwk.x = Some(base64url::encode(pair.public_key().as_ref()));
            }
        }
        jwk
    }

    /// A verifier for this key's own signatures.
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_jwk(&self.public_jwk())
            .map_err(|e| Error::internal(format!("public key of {}: {e}", self.kid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use tessera_verify::Jwks;

    fn round_trip(alg: Algorithm) {
        let rng = SystemRandom::new();
        let der = generate_pkcs8(alg, &rng).unwrap();
        let key = SigningKey::from_pkcs8("k1", alg, &der).unwrap();
        let token = key
            .sign_jws(br#"{"exp":2000000000,"iss":"me"}"#, &rng)
            .unwrap();
        let mut jwks = Jwks::default();
        jwks.insert(key.verifying_key().unwrap());
        let claims = jwks.verify(&token, "me", 1_900_000_000).unwrap();
        assert_eq!(claims["iss"], "me");
        // A flipped payload bit breaks the signature.
        let mut forged = token.clone().into_bytes();
        let dot = token.find('.').unwrap();
        forged[dot + 2] ^= 1;
        let forged = String::from_utf8(forged).unwrap();
        assert!(jwks.verify(&forged, "me", 1_900_000_000).is_err());
        // Expired and wrong issuer are refused.
        assert_eq!(
            jwks.verify(&token, "me", 2_100_000_000),
            Err(tessera_verify::VerifyError::Claims(
                tessera_verify::ValidationError::Expired
            ))
        );
        assert_eq!(
            jwks.verify(&token, "you", 1_900_000_000),
            Err(tessera_verify::VerifyError::Claims(
                tessera_verify::ValidationError::WrongIssuer
            ))
        );
    }

    #[test]
    fn all_algorithms_round_trip() {
        for alg in [
            Algorithm::Rs256,
            Algorithm::Ps256,
            Algorithm::Es256,
            Algorithm::EdDsa,
        ] {
            round_trip(alg);
        }
    }

    #[test]
    fn alg_none_and_hs256_are_refused() {
        let rng = SystemRandom::new();
        let der = generate_pkcs8(Algorithm::Rs256, &rng).unwrap();
        let key = SigningKey::from_pkcs8("k1", Algorithm::Rs256, &der).unwrap();
        let mut jwks = Jwks::default();
        jwks.insert(key.verifying_key().unwrap());
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":2000000000,"iss":"me"}"#);
        for header in [
            r#"{"alg":"none","kid":"k1"}"#,
            r#"{"alg":"HS256","kid":"k1"}"#,
        ] {
            let h = URL_SAFE_NO_PAD.encode(header);
            let signing_input = format!("{h}.{payload}");
            // HS256 "signed" with the public modulus as the HMAC key.
            let hmac_key = aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                key.public_jwk().n.unwrap().as_bytes(),
            );
            let sig = aws_lc_rs::hmac::sign(&hmac_key, signing_input.as_bytes());
            let token = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
            assert_eq!(
                jwks.verify(&token, "me", 1_900_000_000),
                Err(tessera_verify::VerifyError::AlgorithmMismatch)
            );
        }
    }
}
