//! Public keys of trusted issuers (the `cr-token` grant): parsed JWKS per issuer, cached.
//!
//! An inline JWKS is parsed once and reused until the issuer's record changes (the cache entry
//! remembers the source it was parsed from). A JWKS file (`jwks_file`, e.g. a mounted ConfigMap)
//! is re-read when its modification time or size changes, checked at most once per second, so
//! rotating keys is rewriting the file. Nothing here writes; the file read is the only I/O.
//!
//! Keys of external issuers are read a little more leniently than Tessera's own: an RSA key
//! without `alg` is RS256 (Kubernetes and most OIDC issuers sign with it), and a key without
//! `kid` is kept under the empty id (a token without `kid` uses the only key of the set).

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tessera_core::model::{JwksSource, TrustedIssuer};
use tessera_verify::Jwks;

/// Algorithms issuer keys may use, for error messages.
pub const SUPPORTED_ALGORITHMS: &str = "RS256, RS384, RS512, PS256, ES256, ES384, EdDSA";

/// Largest JWKS file read.
pub const MAX_JWKS_FILE: u64 = 256 * 1024;

/// How often a JWKS file's metadata is checked.
const RECHECK: Duration = Duration::from_secs(1);

/// Parses a JWKS document of an external issuer. Fails unless it has a `keys` array with at
/// least one usable key; the message says what is wrong and never contains key material.
pub fn parse_issuer_jwks(document: &Value) -> Result<Jwks, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "the JWKS must be an object with a \"keys\" array".to_owned())?;
    let normalized: Vec<Value> = keys
        .iter()
        .map(|key| {
            let mut key = key.clone();
            if let Some(object) = key.as_object_mut() {
                if !object.contains_key("kid") {
                    object.insert("kid".into(), Value::String(String::new()));
                }
                if object.get("kty").and_then(Value::as_str) == Some("RSA")
                    && !object.contains_key("alg")
                {
                    object.insert("alg".into(), Value::String("RS256".into()));
                }
            }
            key
        })
        .collect();
    let text = serde_json::json!({ "keys": normalized }).to_string();
    let jwks = Jwks::from_json(&text).map_err(|e| e.to_string())?;
    if jwks.is_empty() {
        return Err(format!(
            "the JWKS has no usable public key (supported: {SUPPORTED_ALGORITHMS})"
        ));
    }
    Ok(jwks)
}

/// Reads and parses a JWKS file.
pub fn read_jwks_file(path: &str) -> Result<Jwks, String> {
    let metadata = std::fs::metadata(path)
        .map_err(|e| format!("the JWKS file {path} cannot be read: {}", e.kind()))?;
    if !metadata.is_file() {
        return Err(format!("the JWKS file {path} is not a regular file"));
    }
    if metadata.len() > MAX_JWKS_FILE {
        return Err(format!(
            "the JWKS file {path} is larger than {MAX_JWKS_FILE} bytes"
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("the JWKS file {path} cannot be read: {}", e.kind()))?;
    let document: Value =
        serde_json::from_str(&text).map_err(|_| format!("the JWKS file {path} is not JSON"))?;
    parse_issuer_jwks(&document).map_err(|e| format!("{path}: {e}"))
}

struct Entry {
    source: JwksSource,
    keys: Arc<Jwks>,
    /// Files only: what the file looked like when read.
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

/// The per-issuer key cache.
#[derive(Default)]
pub struct IssuerKeys {
    entries: Mutex<HashMap<String, Entry>>,
}

impl IssuerKeys {
    /// The current keys of `issuer`. The error is for the operator as much as the client: the
    /// issuer's keys could not be loaded.
    pub fn keys_for(&self, issuer: &TrustedIssuer) -> Result<Arc<Jwks>, String> {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get_mut(&issuer.id) {
            if entry.source == issuer.jwks {
                match &issuer.jwks {
                    JwksSource::Inline(_) => return Ok(entry.keys.clone()),
                    JwksSource::File(path) => {
                        if entry.checked.elapsed() < RECHECK {
                            return Ok(entry.keys.clone());
                        }
                        entry.checked = Instant::now();
                        if file_stamp(path).is_some() && file_stamp(path) == entry.stamp {
                            return Ok(entry.keys.clone());
                        }
                    }
                }
            }
        }
        let (keys, stamp) = match &issuer.jwks {
            JwksSource::Inline(document) => (parse_issuer_jwks(document)?, None),
            JwksSource::File(path) => {
                let stamp = file_stamp(path);
                (read_jwks_file(path)?, stamp)
            }
        };
        let keys = Arc::new(keys);
        entries.insert(
            issuer.id.clone(),
            Entry {
                source: issuer.jwks.clone(),
                keys: keys.clone(),
                stamp,
                checked: Instant::now(),
            },
        );
        Ok(keys)
    }
}

fn file_stamp(path: &str) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refuses_documents_without_usable_keys() {
        assert!(parse_issuer_jwks(&json!({})).is_err());
        assert!(parse_issuer_jwks(&json!({"keys": []})).is_err());
        let err =
            parse_issuer_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).unwrap_err();
        assert!(err.contains("no usable public key"), "{err}");
        assert!(!err.contains("c2VjcmV0"));
    }

    #[test]
    fn ed25519_key_without_kid_is_the_only_key() {
        let jwks = parse_issuer_jwks(&json!({"keys": [{
            "kty": "OKP", "crv": "Ed25519",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
        }]}))
        .unwrap();
        assert_eq!(jwks.len(), 1);
        assert!(jwks.only().is_some());
    }
}
