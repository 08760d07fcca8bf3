//! Refresh tokens: self-contained, sealed with the server's refresh key, so issuing one costs
//! no write. Only explicit revocations (by `jti`, or a subject cut-off) are stored.

use crate::error::{Error, Result};
use crate::seal::SealingKey;
use crate::UnixTime;
use aws_lc_rs::rand::SecureRandom;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Associated data binding sealed blobs to this use.
const PURPOSE: &[u8] = b"tessera refresh token v1";
/// Largest refresh token accepted, before decoding.
pub const MAX_REFRESH_TOKEN: usize = 4096;

/// What a refresh token carries. Its `jti` is what revocation records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub jti: String,
    pub iam_id: String,
    /// The client the token was issued to; only that client may redeem it.
    pub client_id: String,
    pub scope: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// A delegated refresh token: the clients that may redeem it (never `client_id`, which
    /// issued it). Empty for an ordinary refresh token; absent in tokens sealed before DRTs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
    /// The authentication level of the login behind the token, so that tokens refreshed from a
    /// TOTP login keep `acr` 2 (tokens sealed before this field existed read as 1).
    #[serde(default = "single_factor")]
    pub acr: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

fn single_factor() -> u8 {
    1
}

impl RefreshGrant {
    /// Whether this is a delegated refresh token.
    pub fn is_delegated(&self) -> bool {
        !self.receivers.is_empty()
    }

    /// Whether `client_id` may redeem this token: the issuing client for an ordinary refresh
    /// token, a listed receiver for a delegated one.
    pub fn redeemable_by(&self, client_id: &str) -> bool {
        if self.is_delegated() {
            self.receivers.iter().any(|r| r == client_id)
        } else {
            self.client_id == client_id
        }
    }
}

/// Seals a refresh grant into an opaque token.
pub fn seal(grant: &RefreshGrant, key: &SealingKey, rng: &dyn SecureRandom) -> Result<String> {
    let plain = serde_json::to_vec(grant).map_err(|_| Error::internal("refresh token encoding"))?;
    Ok(URL_SAFE_NO_PAD.encode(key.seal(PURPOSE, &plain, rng)?))
}

/// Opens a refresh token and checks its expiry. Revocation is the caller's next check.
pub fn open(token: &str, key: &SealingKey, now: UnixTime) -> Result<RefreshGrant> {
    let invalid = || Error::credential("The refresh token is invalid.");
    if token.len() > MAX_REFRESH_TOKEN {
        return Err(invalid());
    }
    let sealed = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let plain = key.open(PURPOSE, &sealed).map_err(|_| invalid())?;
    let grant: RefreshGrant = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    if grant.exp <= now {
        return Err(Error::credential("The refresh token has expired."));
    }
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    #[test]
    fn round_trip_expiry_and_tamper() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let grant = RefreshGrant {
            jti: "j".into(),
            iam_id: "iam-ServiceId-1".into(),
            client_id: "default".into(),
            scope: "ibm openid".into(),
            iat: 100,
            exp: 200,
            receivers: Vec::new(),
            acr: 1,
            amr: Vec::new(),
        };
        let token = seal(&grant, &key, &rng).unwrap();
        assert_eq!(open(&token, &key, 150).unwrap(), grant);
        assert!(open(&token, &key, 200)
            .unwrap_err()
            .message()
            .contains("expired"));
        assert!(open("garbage", &key, 150).is_err());
        let other = SealingKey::from_bytes(&[4; 32]).unwrap();
        assert!(open(&token, &other, 150).is_err());
    }

    #[test]
    fn delegated_tokens_are_redeemable_by_receivers_only() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let grant = RefreshGrant {
            jti: "j".into(),
            iam_id: "iam-ServiceId-1".into(),
            client_id: "issuer".into(),
            scope: "ibm openid".into(),
            iat: 100,
            exp: 200,
            receivers: vec!["r1".into(), "r2".into()],
            acr: 2,
            amr: vec!["pwd".into(), "otp".into()],
        };
        let opened = open(&seal(&grant, &key, &rng).unwrap(), &key, 150).unwrap();
        assert_eq!(opened, grant);
        assert!(opened.is_delegated());
        assert!(opened.redeemable_by("r2"));
        assert!(!opened.redeemable_by("issuer"));
        assert!(!opened.redeemable_by("default"));
    }

    #[test]
    fn tokens_sealed_before_receivers_existed_still_open() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let old =
            br#"{"jti":"j","iam_id":"i","client_id":"app","scope":"ibm openid","iat":1,"exp":200}"#;
        let token = URL_SAFE_NO_PAD.encode(key.seal(PURPOSE, old, &rng).unwrap());
        let grant = open(&token, &key, 150).unwrap();
        assert!(!grant.is_delegated());
        assert!(grant.redeemable_by("app"));
        assert!(!grant.redeemable_by("other"));
    }
}
