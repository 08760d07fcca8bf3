//! JSON Web Keys: parsing, export and the verifier each one becomes.

use crate::claims::ClaimSet;
use crate::jws::{decode_unverified, JwsParts};
use crate::{Validation, VerifyError};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// One JWK as published. Only public members exist here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub key_use: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// The JWS algorithms a verifying key can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Es256,
    Es384,
    EdDsa,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rs256 => "RS256",
            KeyAlgorithm::Rs384 => "RS384",
            KeyAlgorithm::Rs512 => "RS512",
            KeyAlgorithm::Ps256 => "PS256",
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::Es384 => "ES384",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }
}

/// A parsed public key bound to exactly one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    kid: String,
    algorithm: KeyAlgorithm,
    key: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm)
            .finish()
    }
}

fn b64(field: &'static str, value: &Option<String>) -> Result<Vec<u8>, VerifyError> {
    let text = value
        .as_deref()
        .ok_or_else(|| VerifyError::BadKeySet(format!("missing {field}")))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| VerifyError::BadKeySet(format!("{field} is not base64url")))
}

impl VerifyingKey {
    /// Builds a verifier from a JWK. `alg` must be present or implied by the key type
    /// (`OKP`/`Ed25519` → EdDSA, `EC`/`P-256` → ES256); RSA keys need an explicit `alg`.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, VerifyError> {
        let algorithm = match (jwk.kty.as_str(), jwk.alg.as_deref(), jwk.crv.as_deref()) {
            ("RSA", Some("RS256"), _) => KeyAlgorithm::Rs256,
            ("RSA", Some("RS384"), _) => KeyAlgorithm::Rs384,
            ("RSA", Some("RS512"), _) => KeyAlgorithm::Rs512,
            ("RSA", Some("PS256"), _) => KeyAlgorithm::Ps256,
            ("EC", Some("ES256") | None, Some("P-256")) => KeyAlgorithm::Es256,
            ("EC", Some("ES384") | None, Some("P-384")) => KeyAlgorithm::Es384,
            ("OKP", Some("EdDSA") | None, Some("Ed25519")) => KeyAlgorithm::EdDsa,
            _ => {
                return Err(VerifyError::BadKeySet(format!(
                    "unsupported key {}",
                    jwk.kid
                )))
            }
        };
        let rejected = |_| VerifyError::BadKeySet(format!("key {} is malformed", jwk.kid));
        let key = match algorithm {
            KeyAlgorithm::Rs256
            | KeyAlgorithm::Rs384
            | KeyAlgorithm::Rs512
            | KeyAlgorithm::Ps256 => {
                let n = b64("n", &jwk.n)?;
                let e = b64("e", &jwk.e)?;
                let der = RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                }
                .as_der()
                .map_err(|_| VerifyError::BadKeySet(format!("key {} is malformed", jwk.kid)))?;
                let alg: &'static dyn signature::VerificationAlgorithm = match algorithm {
                    KeyAlgorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    KeyAlgorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    KeyAlgorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA256,
                };
                ParsedPublicKey::new(alg, der.as_ref()).map_err(rejected)?
            }
            KeyAlgorithm::Es256 | KeyAlgorithm::Es384 => {
                let mut point = vec![4u8];
                point.extend(b64("x", &jwk.x)?);
                point.extend(b64("y", &jwk.y)?);
                let alg = if algorithm == KeyAlgorithm::Es256 {
                    &signature::ECDSA_P256_SHA256_FIXED
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED
                };
                ParsedPublicKey::new(alg, point).map_err(rejected)?
            }
            KeyAlgorithm::EdDsa => {
                ParsedPublicKey::new(&signature::ED25519, b64("x", &jwk.x)?).map_err(rejected)?
            }
        };
        Ok(VerifyingKey {
            kid: jwk.kid.clone(),
            algorithm,
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// Checks a raw signature over `message`.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.key
            .verify_sig(message, signature)
            .map_err(|_| VerifyError::BadSignature)
    }

    /// Checks a decoded JWS: the header's `alg` must be this key's algorithm.
    pub fn verify_parts(&self, parts: &JwsParts<'_>) -> Result<(), VerifyError> {
        if parts.alg != self.algorithm.as_str() {
            return Err(VerifyError::AlgorithmMismatch);
        }
        self.verify_signature(parts.signing_input, &parts.signature)
    }
}

/// A key set indexed by `kid`.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: HashMap<String, Arc<VerifyingKey>>,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// Parses a JWKS document. Keys of unsupported types are skipped, as RFC 7517 asks.
    pub fn from_json(text: &str) -> Result<Self, VerifyError> {
        let doc: JwksDocument = serde_json::from_str(text)
            .map_err(|e| VerifyError::BadKeySet(format!("not a JWKS document: {e}")))?;
        let mut jwks = Jwks::default();
        for value in doc.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
                continue;
            };
            if let Ok(key) = VerifyingKey::from_jwk(&jwk) {
                jwks.insert(key);
            }
        }
        Ok(jwks)
    }

    pub fn insert(&mut self, key: VerifyingKey) {
        self.keys.insert(key.kid.clone(), Arc::new(key));
    }

    pub fn get(&self, kid: &str) -> Option<&Arc<VerifyingKey>> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of a single-key set (for tokens without `kid`); `None` if there are more.
    pub fn only(&self) -> Option<&Arc<VerifyingKey>> {
        let mut keys = self.keys.values();
        match (keys.next(), keys.next()) {
            (Some(key), None) => Some(key),
            _ => None,
        }
    }

    /// Verifies a compact JWS and its claims with [`Validation::new`] and `issuer`; returns
    /// the payload.
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        now: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        self.verify_with(token, &Validation::new().with_issuer(issuer), now)
    }

    /// Verifies a compact JWS: the signature with the key named by `kid`, then the claims
    /// with `validation` at `now`; returns the payload.
    pub fn verify_with(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<serde_json::Map<String, serde_json::Value>, VerifyError> {
        let payload = self.verify_payload_with(token, validation, now)?;
        serde_json::from_str(&payload).map_err(|_| VerifyError::Malformed("payload"))
    }

    /// [`Jwks::verify_with`], returning the payload as JSON text for the caller to read into
    /// its own type. The claims are checked in one pass over the text ([`ClaimSet`]): no
    /// `serde_json::Map` is built, which on the presented-token path cost more than the rest
    /// of the request beyond the signature check.
    pub fn verify_payload_with(
        &self,
        token: &str,
        validation: &Validation,
        now: i64,
    ) -> Result<String, VerifyError> {
        let parts = decode_unverified(token)?;
        let kid = parts.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let key = self.get(kid).ok_or(VerifyError::UnknownKey)?;
        key.verify_parts(&parts)?;
        let payload =
            String::from_utf8(parts.payload).map_err(|_| VerifyError::Malformed("payload"))?;
        validate_payload(&payload, validation, now)?;
        Ok(payload)
    }
}

/// Checks a verified token's JSON claims against `validation`, read in one pass.
pub(crate) fn validate_payload(
    payload: &str,
    validation: &Validation,
    now: i64,
) -> Result<(), VerifyError> {
    let set = ClaimSet::from_json(payload, validation.has_required_claims())
        .map_err(|_| VerifyError::Malformed("payload"))?;
    validation.validate_set(&set, now)?;
    Ok(())
}
