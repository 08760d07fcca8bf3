//! The IBM-surface access token: its claim set, minting and verification.
//!
//! Tokens are JWTs with the claim set of real IBM Cloud IAM tokens (`iam_id`, `realmid`,
//! `sub_type`, `account.bss`, ...). Clients decode them without checking the signature and need
//! `exp` and `iat`; resource services verify them against the JWKS.

use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::jose::SigningKey;
use crate::json::ObjectWriter;
use crate::limits;
use crate::lineage::Lineage;
use crate::model::SubjectKind;
use crate::principal::Principal;
use crate::UnixTime;
use aws_lc_rs::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use tessera_verify::{Jwks, Validation, ValidationError, VerifyError};

/// The default scope of IBM tokens.
pub const DEFAULT_SCOPE: &str = "ibm openid";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthnClaim {
    pub sub: String,
    pub iam_id: String,
    pub sub_type: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountClaim {
    pub valid: bool,
    pub bss: String,
}

/// The claims of an IBM-surface access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbmClaims {
    pub iam_id: String,
    pub id: String,
    pub realmid: String,
    pub jti: String,
    pub identifier: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub sub: String,
    pub sub_type: String,
    pub authn: AuthnClaim,
    pub account: AccountClaim,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub iss: String,
    pub grant_type: String,
    pub scope: String,
    pub client_id: String,
    pub acr: u8,
    pub amr: Vec<String>,
    /// Where the token came from ([`crate::lineage`]); absent for tokens without ancestry.
    #[serde(default, skip_serializing_if = "Lineage::is_empty")]
    pub lineage: Lineage,
}

impl IbmClaims {
    /// The claims as the token's payload: the bytes serde_json writes for this type (a property
    /// test holds them equal), without its per-byte escaping scan of every member
    /// ([`crate::json`]).
    pub fn to_json(&self) -> String {
        self.json_members(ObjectWriter::with_capacity(640)).finish()
    }

    /// The claims as members of `object` (an introspection answer carries them after its own).
    pub fn json_members(&self, object: ObjectWriter) -> ObjectWriter {
        let lineage = self.lineage.encode();
        object
            .string("iam_id", &self.iam_id)
            .string("id", &self.id)
            .string("realmid", &self.realmid)
            .string("jti", &self.jti)
            .string("identifier", &self.identifier)
            .string("name", &self.name)
            .optional_string("email", self.email.as_deref())
            .string("sub", &self.sub)
            .string("sub_type", &self.sub_type)
            .object("authn", |authn| {
                authn
                    .string("sub", &self.authn.sub)
                    .string("iam_id", &self.authn.iam_id)
                    .string("sub_type", &self.authn.sub_type)
                    .string("name", &self.authn.name)
            })
            .object("account", |account| {
                account
                    .boolean("valid", self.account.valid)
                    .string("bss", &self.account.bss)
            })
            .number("iat", self.iat)
            .number("exp", self.exp)
            .string("iss", &self.iss)
            .string("grant_type", &self.grant_type)
            .string("scope", &self.scope)
            .string("client_id", &self.client_id)
            .number("acr", i64::from(self.acr))
            .strings("amr", &self.amr)
            .strings_unless_empty("lineage", &lineage)
    }
}

/// What the caller decides about a token, beyond who it is for.
#[derive(Debug, Clone)]
pub struct MintParams<'a> {
    pub issuer: &'a str,
    pub now: UnixTime,
    pub lifetime: i64,
    pub client_id: &'a str,
    pub scope: &'a str,
    pub grant_type: &'a str,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct MintedToken {
    pub token: String,
    pub claims: IbmClaims,
}

/// The `sub_type` and `realmid` claims of a kind of subject, as IBM spells them.
pub fn sub_type(kind: SubjectKind) -> (&'static str, &'static str) {
    match kind {
        SubjectKind::ServiceId => ("ServiceId", "iam"),
        SubjectKind::User => ("user", "IBMid"),
        SubjectKind::Profile => ("Profile", "iam"),
        SubjectKind::Crn => ("CRN", "crn"),
    }
}

/// The claim set for `principal` under `params`.
/// The claim set for `principal` under `params`, whose token descends from `lineage` (the
/// principal's own, plus what the issuing grant adds: a refresh family, the client).
pub fn claims_for(
    principal: &Principal,
    params: &MintParams<'_>,
    jti: String,
    lineage: Lineage,
) -> Result<IbmClaims> {
    let (sub_type, realm) = sub_type(principal.kind());
    let exp = params
        .now
        .checked_add(params.lifetime)
        .ok_or_else(|| Error::internal("token lifetime out of range"))?;
    Ok(IbmClaims {
        iam_id: principal.iam_id().to_owned(),
        id: principal.iam_id().to_owned(),
        realmid: realm.to_owned(),
        jti,
        identifier: principal.id().to_owned(),
        name: principal.name().to_owned(),
        email: principal.email().map(str::to_owned),
        sub: principal.id().to_owned(),
        sub_type: sub_type.to_owned(),
        authn: match principal.actor() {
            Some(actor) => AuthnClaim {
                sub: actor.sub.clone(),
                iam_id: actor.iam_id.clone(),
                sub_type: actor.sub_type.clone(),
                name: actor.name.clone(),
            },
            None => AuthnClaim {
                sub: principal.id().to_owned(),
                iam_id: principal.iam_id().to_owned(),
                sub_type: sub_type.to_owned(),
                name: principal.name().to_owned(),
            },
        },
        account: AccountClaim {
            valid: true,
            bss: principal.account_id().to_owned(),
        },
        iat: params.now,
        exp,
        iss: params.issuer.to_owned(),
        grant_type: params.grant_type.to_owned(),
        scope: params.scope.to_owned(),
        client_id: params.client_id.to_owned(),
        acr: principal.acr(),
        amr: principal.amr().to_vec(),
        lineage,
    })
}

/// Signs an access token `jti` for `principal`, descending from `lineage`.
pub fn mint(
    principal: &Principal,
    params: &MintParams<'_>,
    jti: String,
    lineage: Lineage,
    signer: &SigningKey,
    rng: &dyn SecureRandom,
) -> Result<MintedToken> {
    let claims = claims_for(principal, params, jti, lineage)?;
    let token = signer.sign_jws(claims.to_json().as_bytes(), rng)?;
    Ok(MintedToken { token, claims })
}

/// Verifies a presented access token: signature, lifetime, issuer, then that it is not revoked
/// and its subject still exists.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    dir: &Directory,
    issuer: &str,
    now: UnixTime,
) -> Result<IbmClaims> {
    limits::bounded("token", token, limits::MAX_TOKEN)?;
    let claims = verified_access_token(token, jwks, issuer, now)?;
    check_live(
        dir,
        &claims.jti,
        &claims.iam_id,
        claims.iat,
        &claims.lineage,
    )?;
    Ok(claims)
}

/// The signature, then the claims read once, straight into [`IbmClaims`], then the rules of
/// [`Validation::new`] with `issuer` on the typed claims: the token path's one reading of the
/// payload (a claim set pass and a second parse into the type cost a whole JSON scan more, a
/// `serde_json::Map` more still). An access token carries no `nbf` and no `aud`: the typed
/// claims hold every registered claim those rules check.
fn verified_access_token(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    now: UnixTime,
) -> Result<IbmClaims> {
    let invalid = |e: VerifyError| match e {
        VerifyError::Claims(ValidationError::Expired) => Error::credential("the token has expired"),
        _ => Error::credential(format!("the token is invalid: {e}")),
    };
    let parts = tessera_verify::decode_unverified(token).map_err(invalid)?;
    let key = parts
        .kid
        .as_deref()
        .and_then(|kid| jwks.get(kid))
        .ok_or(VerifyError::UnknownKey)
        .map_err(invalid)?;
    key.verify_parts(&parts).map_err(invalid)?;
    let claims: IbmClaims = serde_json::from_slice(&parts.payload)
        .map_err(|_| Error::credential("the token is not a Tessera access token"))?;
    if claims.iss != issuer {
        return Err(invalid(VerifyError::Claims(ValidationError::WrongIssuer)));
    }
    let times = tessera_verify::TimeClaims {
        exp: Some(claims.exp),
        nbf: None,
        iat: Some(claims.iat),
    };
    Validation::new()
        .validate_times(times, now)
        .map_err(|e| invalid(VerifyError::Claims(e)))?;
    Ok(claims)
}

/// The claims `jwks` verified (their JSON text, checked in one pass), read straight into `T`:
/// no `serde_json::Map` on the presented-token path. The errors name the token `noun`
/// ("token", "IAM token"), and `not_ours` is the one for verified claims of another shape.
pub(crate) fn verified_claims<T: serde::de::DeserializeOwned>(
    verified: std::result::Result<String, VerifyError>,
    noun: &str,
    not_ours: &'static str,
) -> Result<T> {
    let payload = verified.map_err(|e| match e {
        VerifyError::Claims(ValidationError::Expired) => {
            Error::credential(format!("the {noun} has expired"))
        }
        _ => Error::credential(format!("the {noun} is invalid: {e}")),
    })?;
    serde_json::from_str(&payload).map_err(|_| Error::credential(not_ours))
}

/// Refuses a token whose id was revoked, whose subject was cut off or no longer exists, or one
/// of whose lineage links is gone (its API key deleted, its refresh family revoked, the identity
/// that derived it deleted or cut off, ...).
pub fn check_live(
    dir: &Directory,
    jti: &str,
    iam_id: &str,
    iat: UnixTime,
    lineage: &Lineage,
) -> Result<()> {
    if dir.is_revoked(jti, iam_id, iat) {
        return Err(Error::credential("the token has been revoked"));
    }
    if dir.subject(iam_id).is_none() {
        return Err(Error::credential("the token's identity no longer exists"));
    }
    if let Some(link) = dir.dead_link(lineage, iat) {
        return Err(Error::credential(format!(
            "the token has been revoked: it was derived from {}, which was deleted, revoked or \
             cut off",
            link.describe()
        )));
    }
    Ok(())
}

/// Normalises a requested `scope`: `ibm openid` first, then the other requested scope tokens,
/// without duplicates. Scope tokens are the RFC 6749 characters.
pub fn normalize_scope(requested: Option<&str>) -> Result<String> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_SCOPE.to_owned());
    };
    limits::bounded("scope", requested, limits::MAX_SCOPE)?;
    let mut scopes: Vec<&str> = DEFAULT_SCOPE.split(' ').collect();
    for scope in requested.split([' ', '+']).filter(|s| !s.is_empty()) {
        let valid = scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
        if !valid {
            return Err(Error::invalid(
                "scope contains a character that is not allowed in a scope",
            ));
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    Ok(scopes.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::AuthnMethod;
    use proptest::prelude::*;

    pub(crate) fn service_principal() -> Principal {
        crate::authn::test_principal(
            "iam-ServiceId-1",
            SubjectKind::ServiceId,
            "0123456789abcdef0123456789abcdef",
            AuthnMethod::ApiKey,
        )
    }

    #[test]
    fn claim_set_has_ibm_shape() {
        let params = MintParams {
            issuer: "http://127.0.0.1:8080/identity",
            now: 1000,
            lifetime: 3600,
            client_id: "default",
            scope: DEFAULT_SCOPE,
            grant_type: "urn:ibm:params:oauth:grant-type:apikey",
        };
        let claims =
            claims_for(&service_principal(), &params, "j1".into(), Lineage::empty()).unwrap();
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["sub_type"], "ServiceId");
        assert_eq!(json["realmid"], "iam");
        assert_eq!(json["iam_id"], "iam-ServiceId-1");
        assert_eq!(json["account"]["bss"], "0123456789abcdef0123456789abcdef");
        assert_eq!(json["account"]["valid"], true);
        assert_eq!(json["authn"]["iam_id"], "iam-ServiceId-1");
        assert_eq!(json["iat"], 1000);
        assert_eq!(json["exp"], 4600);
        assert!(json.get("email").is_none());
    }

    /// The one-pass check of a presented access token keeps every rule of `Validation` with
    /// the issuer: signature, key, issuer, expiry (with leeway), iat not in the future.
    #[test]
    fn a_presented_access_token_is_checked_for_signature_key_issuer_and_times() {
        use crate::jose::generate_pkcs8;
        use crate::model::Algorithm;
        use aws_lc_rs::rand::SystemRandom;
        let rng = SystemRandom::new();
        let key = |kid: &str| {
            let der = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
            SigningKey::from_pkcs8(kid, Algorithm::Es256, &der).unwrap()
        };
        let (signer, stranger) = (key("k1"), key("k1"));
        let mut jwks = Jwks::default();
        jwks.insert(signer.verifying_key().unwrap());
        let issuer = "http://127.0.0.1:8080/identity";
        let params = MintParams {
            issuer,
            now: 1000,
            lifetime: 3600,
            client_id: "default",
            scope: DEFAULT_SCOPE,
            grant_type: "urn:ibm:params:oauth:grant-type:apikey",
        };
        let mint_with = |key: &SigningKey, params: &MintParams<'_>| {
            let jti = crate::ids::new_token_id(&rng).unwrap();
            mint(
                &service_principal(),
                params,
                jti,
                Lineage::empty(),
                key,
                &rng,
            )
            .unwrap()
            .token
        };
        let token = mint_with(&signer, &params);
        let message = |token: &str, issuer: &str, now: i64| {
            verified_access_token(token, &jwks, issuer, now)
                .unwrap_err()
                .to_string()
        };

        let claims = verified_access_token(&token, &jwks, issuer, 2000).unwrap();
        assert_eq!(claims.iam_id, "iam-ServiceId-1");
        assert!(message(&token, "http://other/identity", 2000).contains("issuer"));
        assert!(message(&token, issuer, 4600 + tessera_verify::LEEWAY).contains("has expired"));
        assert!(
            verified_access_token(&token, &jwks, issuer, 4600).is_ok(),
            "within leeway"
        );
        assert!(message(&token, issuer, 1000 - tessera_verify::LEEWAY - 1).contains("future"));
        assert!(message(&mint_with(&stranger, &params), issuer, 2000).contains("invalid"));
        let unknown = key("k2");
        assert!(message(&mint_with(&unknown, &params), issuer, 2000).contains("invalid"));
        let mut forged = token.clone().into_bytes();
        let dot = token.find('.').unwrap();
        forged[dot + 2] ^= 1;
        let forged = String::from_utf8(forged).unwrap();
        assert!(verified_access_token(&forged, &jwks, issuer, 2000).is_err());
    }

    proptest! {
        /// A token's payload is the bytes serde_json writes for its claims, whatever they hold.
        #[test]
        fn claims_are_written_as_serde_json_writes_them(claims in crate::json::strategies::ibm_claims()) {
            prop_assert_eq!(claims.to_json(), serde_json::to_string(&claims).unwrap_or_default());
        }
    }

    #[test]
    fn scopes() {
        assert_eq!(normalize_scope(None).unwrap(), "ibm openid");
        assert_eq!(
            normalize_scope(Some("openid extra")).unwrap(),
            "ibm openid extra"
        );
        assert_eq!(normalize_scope(Some("a+b a")).unwrap(), "ibm openid a b");
        assert!(normalize_scope(Some("bad\"quote")).is_err());
        assert!(normalize_scope(Some(&"a".repeat(2000))).is_err());
    }
}
