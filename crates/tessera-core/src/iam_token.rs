//! `t1.` IAM tokens of the Yandex surface: claim set, minting, and verification as presented
//! credentials. The wire format is defined (and verified offline) in `tessera_verify`.

use crate::directory::Directory;
use crate::error::{Error, Result};
use crate::jose::SigningKey;
use crate::json::ObjectWriter;
use crate::limits;
use crate::lineage::Lineage;
use crate::model::{Algorithm, SubjectKind};
use crate::principal::Principal;
use crate::token::{check_live, verified_claims};
use crate::UnixTime;
use aws_lc_rs::rand::SecureRandom;
use serde::{Deserialize, Serialize};
use tessera_verify::{base64url, Jwks, Validation, IAM_TOKEN_PREFIX};

/// The claims inside a `t1.` token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamTokenClaims {
    /// The signing key (published in the JWKS).
    pub kid: String,
    pub jti: String,
    pub iss: String,
    /// The subject's `iam_id`.
    pub sub: String,
    /// The service account id or user id (Yandex's `subject_id`).
    pub subject_id: String,
    /// `service_account` or `user`.
    pub subject_type: String,
    pub account_id: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// Where the token came from ([`crate::lineage`]).
    #[serde(default, skip_serializing_if = "Lineage::is_empty")]
    pub lineage: Lineage,
}

impl IamTokenClaims {
    /// The claims as the token's payload: the bytes serde_json writes for this type (a property
    /// test holds them equal), without its per-byte escaping scan ([`crate::json`]).
    pub fn to_json(&self) -> String {
        self.json_members(ObjectWriter::with_capacity(384)).finish()
    }

    /// The claims as members of `object` (an introspection answer carries them after its own).
    pub fn json_members(&self, object: ObjectWriter) -> ObjectWriter {
        object
            .string("kid", &self.kid)
            .string("jti", &self.jti)
            .string("iss", &self.iss)
            .string("sub", &self.sub)
            .string("subject_id", &self.subject_id)
            .string("subject_type", &self.subject_type)
            .string("account_id", &self.account_id)
            .number("iat", self.iat)
            .number("exp", self.exp)
            .strings_unless_empty("lineage", &self.lineage.encode())
    }
}

/// A freshly signed IAM token.
#[derive(Debug, Clone)]
pub struct MintedIamToken {
    pub token: String,
    pub claims: IamTokenClaims,
}

fn subject_type(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::ServiceId => "service_account",
        SubjectKind::User => "user",
        SubjectKind::Profile => "profile",
        SubjectKind::Crn => "crn",
    }
}

/// Signs an IAM token for `principal` with an Ed25519 key. The token descends from the
/// principal's lineage.
pub fn mint(
    principal: &Principal,
    issuer: &str,
    now: UnixTime,
    lifetime: i64,
    signer: &SigningKey,
    rng: &dyn SecureRandom,
) -> Result<MintedIamToken> {
    if signer.algorithm() != Algorithm::EdDsa {
        return Err(Error::internal(
            "IAM tokens must be signed with an Ed25519 key",
        ));
    }
    let claims = IamTokenClaims {
        kid: signer.kid().to_owned(),
        jti: crate::ids::new_token_id(rng)?,
        iss: issuer.to_owned(),
        sub: principal.iam_id().to_owned(),
        subject_id: principal.id().to_owned(),
        subject_type: subject_type(principal.kind()).to_owned(),
        account_id: principal.account_id().to_owned(),
        iat: now,
        exp: now
            .checked_add(lifetime)
            .ok_or_else(|| Error::internal("token lifetime out of range"))?,
        lineage: principal.lineage().clone(),
    };
    let payload = claims.to_json();
    let mut token = String::with_capacity(IAM_TOKEN_PREFIX.len() + payload.len() * 4 / 3 + 100);
    token.push_str(IAM_TOKEN_PREFIX);
    base64url::encode_into(payload.as_bytes(), &mut token);
    let signature = signer.sign(token.as_bytes(), rng)?;
    token.push('.');
    base64url::encode_into(signature.as_ref(), &mut token);
    Ok(MintedIamToken { token, claims })
}

/// Verifies a presented IAM token: signature, lifetime, issuer, revocation, subject.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    dir: &Directory,
    issuer: &str,
    now: UnixTime,
) -> Result<IamTokenClaims> {
    limits::bounded("iam_token", token, limits::MAX_IAM_TOKEN)?;
    let claims: IamTokenClaims = verified_claims(
        jwks.verify_iam_token_payload_with(token, &Validation::new().with_issuer(issuer), now),
        "IAM token",
        "the IAM token is not a Tessera IAM token",
    )?;
    check_live(dir, &claims.jti, &claims.sub, claims.iat, &claims.lineage)?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jose::generate_pkcs8;
    use crate::principal::AuthnMethod;
    use aws_lc_rs::rand::SystemRandom;
    use tessera_verify::{ValidationError, VerifyError};

    proptest::proptest! {
        /// A `t1.` token's payload is the bytes serde_json writes for its claims.
        #[test]
        fn claims_are_written_as_serde_json_writes_them(
            claims in crate::json::strategies::iam_claims()
        ) {
            proptest::prop_assert_eq!(
                claims.to_json(),
                serde_json::to_string(&claims).unwrap_or_default()
            );
        }
    }

    fn principal() -> Principal {
        crate::authn::test_principal(
            "iam-ServiceId-1",
            SubjectKind::ServiceId,
            "0123456789abcdef0123456789abcdef",
            AuthnMethod::ServiceAccountKey,
        )
    }

    #[test]
    fn has_the_documented_shape_and_verifies_offline() {
        let rng = SystemRandom::new();
        let der = generate_pkcs8(Algorithm::EdDsa, &rng).unwrap();
        let key = SigningKey::from_pkcs8("y1", Algorithm::EdDsa, &der).unwrap();
        let minted = mint(&principal(), "http://iss", 1000, 43_200, &key, &rng).unwrap();
        let token = &minted.token;
        assert!(token.starts_with("t1."));
        let signature = token.rsplit('.').next().unwrap();
        assert_eq!(signature.len(), 86);
        assert!(token.len() < limits::MAX_IAM_TOKEN);
        let mut jwks = Jwks::default();
        jwks.insert(key.verifying_key().unwrap());
        let claims = jwks.verify_iam_token(token, "http://iss", 2000).unwrap();
        assert_eq!(claims["sub"], "iam-ServiceId-1");
        assert_eq!(claims["exp"], 44_200);
        assert_eq!(
            jwks.verify_iam_token(token, "http://iss", 50_000),
            Err(VerifyError::Claims(ValidationError::Expired))
        );
        assert_eq!(
            jwks.verify_iam_token(token, "http://other", 2000),
            Err(VerifyError::Claims(ValidationError::WrongIssuer))
        );
        // A flipped payload character breaks the signature.
        let mut bytes = token.clone().into_bytes();
        bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert!(jwks
            .verify_iam_token(&tampered, "http://iss", 2000)
            .is_err());
    }

    #[test]
    fn refuses_a_non_ed25519_signer() {
        let rng = SystemRandom::new();
        let der = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
        let key = SigningKey::from_pkcs8("e1", Algorithm::Es256, &der).unwrap();
        assert!(mint(&principal(), "http://iss", 0, 60, &key, &rng).is_err());
    }
}
