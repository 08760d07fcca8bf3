//! Refresh tokens: self-contained, sealed with the server's refresh key, so issuing one costs
//! no write. Only explicit revocations (of a refresh family, or a subject cut-off) are stored.
//!
//! Every refresh token carries its lineage ([`crate::lineage`]): the credential it was obtained
//! with and its refresh family (`f:<family>`, the `jti` of the first refresh token of the login;
//! tokens refreshed from it keep it). Revoking any refresh token revokes its family, and with it
//! every access token minted from the family; deleting the API key ends them all.
//!
//! The sealing purpose is `v2`: refresh tokens sealed by versions without lineage cannot be
//! checked against it and no longer open.

use crate::error::{Error, Result};
use crate::json::ObjectWriter;
use crate::lineage::Lineage;
use crate::seal::{SealingKey, SealingNonce};
use crate::UnixTime;
use aws_lc_rs::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use tessera_verify::base64url;

/// Associated data binding sealed blobs to this use.
const PURPOSE: &[u8] = b"tessera refresh token v2";
/// Largest refresh token accepted, before decoding.
pub const MAX_REFRESH_TOKEN: usize = 4096;

/// What a refresh token carries. Its `jti` is what revocation records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    pub jti: String,
    pub iam_id: String,
    /// The public id of the client the token was issued to.
    pub client_id: String,
    /// The store key of that client ([`crate::model::OAuthClient::key_for`]); only that
    /// client may redeem the token. Client ids are unique per account, so the id alone would
    /// let another account's client of the same id in.
    pub client_key: String,
    pub scope: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// A delegated refresh token: the store keys of the clients that may redeem it (never
    /// the issuing client). Empty for an ordinary refresh token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<String>,
    /// The authentication level of the login behind the token, so that tokens refreshed from a
    /// TOTP login keep `acr` 2.
    pub acr: u8,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Where the token came from, its refresh family included.
    pub lineage: Lineage,
}

impl RefreshGrant {
    /// The grant as sealed: the bytes serde_json writes for this type (a property test holds
    /// them equal), without its per-byte escaping scan ([`crate::json`]).
    pub fn to_json(&self) -> String {
        ObjectWriter::with_capacity(384)
            .string("jti", &self.jti)
            .string("iam_id", &self.iam_id)
            .string("client_id", &self.client_id)
            .string("client_key", &self.client_key)
            .string("scope", &self.scope)
            .number("iat", self.iat)
            .number("exp", self.exp)
            .strings_unless_empty("receivers", &self.receivers)
            .number("acr", i64::from(self.acr))
            .strings_unless_empty("amr", &self.amr)
            .strings("lineage", &self.lineage.encode())
            .finish()
    }

    /// Whether this is a delegated refresh token.
    pub fn is_delegated(&self) -> bool {
        !self.receivers.is_empty()
    }

    /// Whether the client with store key `client_key` may redeem this token: the issuing client
    /// for an ordinary refresh token, a listed receiver for a delegated one.
    pub fn redeemable_by(&self, client_key: &str) -> bool {
        if self.is_delegated() {
            self.receivers.iter().any(|r| r == client_key)
        } else {
            self.client_key == client_key
        }
    }

    /// The refresh family (the `f:` link of the lineage), which revocation records.
    pub fn family(&self) -> Option<&str> {
        self.lineage.links().iter().find_map(|link| match link {
            crate::lineage::Link::RefreshFamily(family) => Some(family.as_str()),
            _ => None,
        })
    }
}

/// Seals a refresh grant into an opaque token.
pub fn seal(grant: &RefreshGrant, key: &SealingKey, rng: &dyn SecureRandom) -> Result<String> {
    seal_with(grant, key, SealingNonce::draw(rng)?)
}

/// Seals a refresh grant with a nonce drawn for it.
pub fn seal_with(grant: &RefreshGrant, key: &SealingKey, nonce: SealingNonce) -> Result<String> {
    let plain = grant.to_json();
    Ok(base64url::encode(&key.seal_with(
        PURPOSE,
        plain.as_bytes(),
        nonce,
    )?))
}

/// Opens a refresh token and checks its expiry. Revocation is the caller's next check.
pub fn open(token: &str, key: &SealingKey, now: UnixTime) -> Result<RefreshGrant> {
    let invalid = || Error::credential("The refresh token is invalid.");
    if token.len() > MAX_REFRESH_TOKEN {
        return Err(invalid());
    }
    // Exactly the token as issued: no trimming, so that one token has one spelling.
    let sealed = base64url::decode(token).map_err(|_| invalid())?;
    let plain = key.open(PURPOSE, &sealed).map_err(|_| invalid())?;
    let grant: RefreshGrant = serde_json::from_slice(&plain).map_err(|_| invalid())?;
    // No leeway: the grant is sealed by this installation and carries its own expiry, which no
    // other clock needs to be forgiven for.
    let times = tessera_verify::TimeClaims {
        exp: Some(grant.exp),
        ..Default::default()
    };
    tessera_verify::Validation::new()
        .without_leeway()
        .validate_times(times, now)
        .map_err(|_| Error::credential("The refresh token has expired."))?;
    Ok(grant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::strategies::{lineage, strings, text};
    use crate::lineage::Link;
    use aws_lc_rs::rand::SystemRandom;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn grant(receivers: Vec<String>) -> RefreshGrant {
        RefreshGrant {
            jti: "j".into(),
            iam_id: "iam-ServiceId-1".into(),
            client_id: "app".into(),
            client_key: "0123/app".into(),
            scope: "ibm openid".into(),
            iat: 100,
            exp: 200,
            receivers,
            acr: 1,
            amr: Vec::new(),
            lineage: Lineage::of(Link::ApiKey("ApiKey-1".into()))
                .extended([Link::RefreshFamily("fam".into())])
                .unwrap(),
        }
    }

    proptest::proptest! {
        /// A refresh token seals the bytes serde_json writes for its grant, whatever it holds.
        #[test]
        fn grants_are_written_as_serde_json_writes_them(
            texts in proptest::collection::vec(text(), 5),
            (iat, exp, acr) in proptest::prelude::any::<(i64, i64, u8)>(),
            receivers in strings(),
            amr in strings(),
            lineage in lineage(),
        ) {
            let grant = RefreshGrant {
                jti: texts[0].clone(),
                iam_id: texts[1].clone(),
                client_id: texts[2].clone(),
                client_key: texts[3].clone(),
                scope: texts[4].clone(),
                iat,
                exp,
                receivers,
                acr,
                amr,
                lineage,
            };
            proptest::prop_assert_eq!(
                grant.to_json(),
                serde_json::to_string(&grant).unwrap_or_default()
            );
        }
    }

    #[test]
    fn round_trip_expiry_and_tamper() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let grant = grant(Vec::new());
        let token = seal(&grant, &key, &rng).unwrap();
        let opened = open(&token, &key, 150).unwrap();
        assert_eq!(opened, grant);
        assert_eq!(opened.family(), Some("fam"));
        assert!(open(&token, &key, 200)
            .unwrap_err()
            .message()
            .contains("expired"));
        assert!(open("garbage", &key, 150).is_err());
        let other = SealingKey::from_bytes(&[4; 32]).unwrap();
        assert!(open(&token, &other, 150).is_err());
    }

    #[test]
    fn only_the_exact_token_opens() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let token = seal(&grant(Vec::new()), &key, &rng).unwrap();
        assert!(open(&token, &key, 150).is_ok());
        for spelling in [
            format!(" {token}"),
            format!("{token}\n"),
            format!("{token}="),
        ] {
            assert!(open(&spelling, &key, 150).is_err(), "{spelling:?}");
        }
    }

    #[test]
    fn redeemable_by_client_key_not_id() {
        let ordinary = grant(Vec::new());
        assert!(ordinary.redeemable_by("0123/app"));
        // Another account's client with the same public id is not the issuing client.
        assert!(!ordinary.redeemable_by("4567/app"));
        assert!(!ordinary.redeemable_by("app"));
        let delegated = grant(vec!["0123/r1".into(), "r2".into()]);
        assert!(delegated.is_delegated());
        assert!(delegated.redeemable_by("r2"));
        assert!(delegated.redeemable_by("0123/r1"));
        assert!(!delegated.redeemable_by("0123/app"));
        assert!(!delegated.redeemable_by("default"));
    }

    #[test]
    fn tokens_sealed_by_versions_without_lineage_do_not_open() {
        let rng = SystemRandom::new();
        let key = SealingKey::from_bytes(&[3; 32]).unwrap();
        let old =
            br#"{"jti":"j","iam_id":"i","client_id":"app","scope":"ibm openid","iat":1,"exp":200}"#;
        let v1 = URL_SAFE_NO_PAD.encode(key.seal(b"tessera refresh token v1", old, &rng).unwrap());
        assert!(open(&v1, &key, 150).is_err());
        // Nor does a v2 blob that lacks the lineage.
        let v2 = URL_SAFE_NO_PAD.encode(key.seal(PURPOSE, old, &rng).unwrap());
        assert!(open(&v2, &key, 150).is_err());
    }
}
