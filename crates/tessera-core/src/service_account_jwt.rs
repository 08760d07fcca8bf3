//! Authorized keys and the service-account JWT that `Create` exchanges for an IAM token.
//!
//! The owner of an authorized key signs a short JWT with its private half (PS256 only); the
//! server holds only the public half, parsed once into a [`PublicKey`] when the key enters the
//! snapshot. Verification is pure: the directory, the accepted audiences and `now` come in.

use crate::directory::Directory;
use crate::error::{Error, ErrorKind, Result};
use crate::limits;
use crate::model::AuthorizedKeyAlgorithm;
use crate::UnixTime;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair, ParsedPublicKey, RsaKeyPair};
use serde_json::{Map, Value};
use std::fmt;
use tessera_verify::{Validation, ValidationError};

/// Longest service-account JWT accepted (the Yandex limit).
pub const MAX_JWT: usize = 8000;
/// Longest lifetime (`exp - iat`) of a service-account JWT.
pub const MAX_JWT_LIFETIME: i64 = 3600;
/// The audience every Yandex SDK uses by default.
pub const CANONICAL_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";

/// The RSA public key of an authorized key, ready to check PS256 signatures.
pub struct PublicKey(ParsedPublicKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(RSA-PSS)")
    }
}

impl PublicKey {
    /// Parses SubjectPublicKeyInfo DER; `None` if it is not an RSA key of 2048 to 8192 bits.
    pub fn from_spki(der: &[u8]) -> Option<PublicKey> {
        ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, der)
            .ok()
            .map(PublicKey)
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_sig(message, signature).is_ok()
    }
}

/// A new key pair: the private half to hand to the owner, the public half to store.
pub struct GeneratedKeyPair {
    /// PKCS#8 DER of the private key. Shown once, never stored.
    pub private_pkcs8_der: Vec<u8>,
    /// SubjectPublicKeyInfo DER of the public key.
    pub public_spki_der: Vec<u8>,
}

impl fmt::Debug for GeneratedKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GeneratedKeyPair(..)")
    }
}

/// Generates an RSA key pair of the given size.
pub fn generate_key_pair(algorithm: AuthorizedKeyAlgorithm) -> Result<GeneratedKeyPair> {
    let size = match algorithm {
        AuthorizedKeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
        AuthorizedKeyAlgorithm::Rsa4096 => KeySize::Rsa4096,
    };
    let pair = RsaKeyPair::generate(size).map_err(|_| Error::internal("key generation failed"))?;
    let private = pair
        .as_der()
        .map_err(|_| Error::internal("key encoding failed"))?;
    let public = pair
        .public_key()
        .as_der()
        .map_err(|_| Error::internal("key encoding failed"))?;
    Ok(GeneratedKeyPair {
        private_pkcs8_der: private.as_ref().to_vec(),
        public_spki_der: public.as_ref().to_vec(),
    })
}

/// Encodes DER as PEM with 64-character lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes a single PEM block with the given label.
pub fn pem_decode(label: &str, text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

fn unauthenticated(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidCredential, message)
}

/// What a verified service-account JWT proves: which authorized key signed it, for which
/// service account. Only [`verify`] makes one; [`crate::authn`] turns it into a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedByKey {
    pub(crate) key_id: String,
    pub(crate) service_account_id: String,
}

/// Verifies a service-account JWT: the authorized key it names, its PS256 signature, `iss`,
/// `aud`, and its times, with checked arithmetic (a lifetime that overflows is refused, not
/// wrapped).
///
/// Malformed input is `InvalidArgument` only for the length limit; everything about the token
/// itself (form, algorithm, key, signature, claims) is `InvalidCredential`, so that a forger
/// learns nothing from the error kind.
pub fn verify(
    jwt: &str,
    dir: &Directory,
    audiences: &[String],
    now: UnixTime,
) -> std::result::Result<SignedByKey, JwtRefusal> {
    let (key, parts) =
        verify_signature(jwt, dir).map_err(|error| JwtRefusal { error, guess: true })?;
    check_claims(key, &parts, audiences, now).map_err(|error| JwtRefusal {
        error,
        guess: false,
    })
}

/// A refused service-account JWT: why, and whether it counts as a guess of a key (a bad form,
/// an unknown key, a wrong signature: what a forger produces) rather than a signed JWT whose
/// claims are wrong (a clock off, a wrong audience: the owner's own mistake, which brute-force
/// throttling must not punish as guessing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtRefusal {
    pub error: Error,
    pub guess: bool,
}

impl From<JwtRefusal> for Error {
    fn from(refusal: JwtRefusal) -> Error {
        refusal.error
    }
}

fn verify_signature<'d>(
    jwt: &'d str,
    dir: &'d Directory,
) -> Result<(
    &'d crate::directory::LoadedAuthorizedKey,
    tessera_verify::JwsParts<'d>,
)> {
    limits::bounded("jwt", jwt, MAX_JWT)?;
    let parts = tessera_verify::decode_unverified(jwt)
        .map_err(|e| unauthenticated(format!("the JWT is malformed: {e}")))?;
    if parts.alg != "PS256" {
        return Err(unauthenticated(format!(
            "JWT algorithm {:?} is not accepted; service-account JWTs must use PS256",
            truncate(&parts.alg)
        )));
    }
    let kid = parts
        .kid
        .as_deref()
        .ok_or_else(|| unauthenticated("the JWT header has no kid (the authorized key id)"))?;
    let key = dir.authorized_key(kid).ok_or_else(|| {
        unauthenticated(format!(
            "authorized key {:?} does not exist or was deleted",
            truncate(kid)
        ))
    })?;
    let verifier = key
        .verifier
        .as_ref()
        .ok_or_else(|| unauthenticated(format!("authorized key {kid} is not usable")))?;
    if !verifier.verify(parts.signing_input, &parts.signature) {
        return Err(unauthenticated("the JWT signature is invalid"));
    }
    Ok((key.as_ref(), parts))
}

fn check_claims(
    key: &crate::directory::LoadedAuthorizedKey,
    parts: &tessera_verify::JwsParts<'_>,
    audiences: &[String],
    now: UnixTime,
) -> Result<SignedByKey> {
    let kid = key.record.id.as_str();
    let claims: Map<String, Value> = serde_json::from_slice(&parts.payload)
        .map_err(|_| unauthenticated("the JWT claims are not a valid JSON object"))?;
    // The Yandex rule on top of any-of matching: one audience, as a string or a one-element
    // array.
    if claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|list| list.len() != 1)
    {
        return Err(unauthenticated(
            "the JWT aud must be a string or a one-element array",
        ));
    }
    let validation = Validation::new()
        .with_issuer(key.record.service_account_id.as_str())
        .with_audiences(audiences.iter().map(String::as_str))
        .require_claims(["iss", "aud", "iat"])
        .with_max_lifetime(MAX_JWT_LIFETIME);
    validation.validate(&claims, now).map_err(|e| match e {
        ValidationError::MissingClaim(name) if name == "iss" => {
            unauthenticated("the JWT has no iss (the service account id)")
        }
        ValidationError::MissingClaim(name) if name == "aud" => {
            unauthenticated("the JWT has no aud")
        }
        ValidationError::MissingClaim(name) => {
            unauthenticated(format!("JWT claim {name} must be an integer"))
        }
        ValidationError::WrongType(name @ ("iat" | "exp" | "nbf")) => {
            unauthenticated(format!("JWT claim {name} must be an integer"))
        }
        ValidationError::WrongType("aud") => {
            unauthenticated("the JWT aud must be a string or a one-element array")
        }
        ValidationError::WrongType(name) => {
            unauthenticated(format!("JWT claim {name} must be a string"))
        }
        ValidationError::WrongIssuer => unauthenticated(format!(
            "authorized key {kid} does not belong to service account {:?}",
            truncate(claim_text(&claims, "iss"))
        )),
        ValidationError::WrongAudience => unauthenticated(format!(
            "the JWT aud {:?} is not an accepted audience of this server (accepted: {})",
            truncate(claim_text(&claims, "aud")),
            audiences.join(", ")
        )),
        ValidationError::ExpNotAfterIat => unauthenticated("the JWT exp is not after its iat"),
        ValidationError::LifetimeTooLong { lifetime, max } => unauthenticated(match lifetime {
            Some(lifetime) => {
                format!("the JWT lifetime (exp - iat = {lifetime} s) exceeds {max} s")
            }
            None => format!("the JWT lifetime (exp - iat) exceeds {max} s"),
        }),
        ValidationError::Expired => unauthenticated("the JWT has expired"),
        ValidationError::NotYetValid => unauthenticated("the JWT is not valid yet (nbf)"),
        ValidationError::IssuedInFuture => unauthenticated("the JWT iat is in the future"),
    })?;
    Ok(SignedByKey {
        key_id: key.record.id.clone(),
        service_account_id: key.record.service_account_id.clone(),
    })
}

/// The text of a string claim, or of the single string of an array (the `aud` of a refusal).
fn claim_text<'c>(claims: &'c Map<String, Value>, name: &str) -> &'c str {
    match claims.get(name) {
        Some(Value::String(text)) => text,
        Some(Value::Array(list)) => list.first().and_then(Value::as_str).unwrap_or_default(),
        _ => "",
    }
}

/// Caps attacker-controlled text quoted in messages.
fn truncate(value: &str) -> &str {
    crate::limits::clipped(value, 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Change, Entity};
    use crate::model::*;
    use aws_lc_rs::rand::SystemRandom;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
    const SA: &str = "ServiceId-1";
    const AUD: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";

    fn fixture() -> (Directory, RsaKeyPair) {
        let pair = generate_key_pair(AuthorizedKeyAlgorithm::Rsa2048).unwrap();
        let mut dir = Directory::new();
        dir.apply(Change::Upsert(Entity::Account(Account {
            id: ACCOUNT.into(),
            name: "acme".into(),
            enterprise_id: None,
            mfa: Default::default(),
            created_at: 0,
        })));
        for id in [SA, "ServiceId-2"] {
            dir.apply(Change::Upsert(Entity::ServiceAccount(ServiceAccount {
                id: id.into(),
                account_id: ACCOUNT.into(),
                name: "ci".into(),
                description: String::new(),
                created_at: 0,
            })));
        }
        dir.apply(Change::Upsert(Entity::AuthorizedKey(AuthorizedKey {
            id: "k1".into(),
            service_account_id: SA.into(),
            account_id: ACCOUNT.into(),
            description: String::new(),
            algorithm: AuthorizedKeyAlgorithm::Rsa2048,
            public_key_der: pair.public_spki_der.clone(),
            created_at: 0,
        })));
        let signer = RsaKeyPair::from_pkcs8(&pair.private_pkcs8_der).unwrap();
        (dir, signer)
    }

    fn sign(signer: &RsaKeyPair, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; signer.public_modulus_len()];
        signer
            .sign(
                &signature::RSA_PSS_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn header() -> serde_json::Value {
        serde_json::json!({"alg": "PS256", "typ": "JWT", "kid": "k1"})
    }

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({"iss": SA, "aud": AUD, "iat": now, "exp": now + 3600})
    }

    fn check(dir: &Directory, jwt: &str, now: i64) -> Result<SignedByKey> {
        verify(jwt, dir, &[AUD.to_owned()], now).map_err(Error::from)
    }

    #[test]
    fn accepts_a_good_jwt_with_string_or_array_audience() {
        let (dir, signer) = fixture();
        let signed = check(&dir, &sign(&signer, &header(), &claims(1000)), 1000).unwrap();
        assert_eq!(signed.service_account_id, SA);
        assert_eq!(signed.key_id, "k1");
        let mut array = claims(1000);
        array["aud"] = serde_json::json!([AUD]);
        assert!(check(&dir, &sign(&signer, &header(), &array), 1000).is_ok());
    }

    #[test]
    fn refuses_each_bad_claim() {
        let (dir, signer) = fixture();
        let now = 1000;
        let mut cases: Vec<(serde_json::Value, serde_json::Value, &str)> = Vec::new();
        let mut h = header();
        h["alg"] = "RS256".into();
        cases.push((h, claims(now), "PS256"));
        let mut h = header();
        h["kid"] = "nope".into();
        cases.push((h, claims(now), "does not exist"));
        let mut c = claims(now);
        c["iss"] = "ServiceId-2".into();
        cases.push((header(), c, "does not belong"));
        let mut c = claims(now);
        c["aud"] = "https://elsewhere/iam/v1/tokens".into();
        cases.push((header(), c, "accepted audience"));
        let mut c = claims(now);
        c["aud"] = serde_json::json!([AUD, AUD]);
        cases.push((header(), c, "one-element"));
        let mut c = claims(now);
        c["exp"] = (now + 3601).into();
        cases.push((header(), c, "exceeds"));
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": now - 4000, "exp": now - 500});
        cases.push((header(), c, "expired"));
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": now + 600, "exp": now + 900});
        cases.push((header(), c, "future"));
        // A lifetime whose arithmetic overflows is refused, not wrapped into a short one: the
        // 31-year JWT of the issue (iat = i64::MIN).
        let c =
            serde_json::json!({"iss": SA, "aud": AUD, "iat": i64::MIN, "exp": now + 1_000_000_000});
        cases.push((header(), c, "exceeds"));
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": now, "exp": i64::MAX});
        cases.push((header(), c, "exceeds"));
        let mut c = claims(now);
        c["iat"] = "soon".into();
        cases.push((header(), c, "integer"));
        for (h, c, expected) in cases {
            let err = check(&dir, &sign(&signer, &h, &c), now).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidCredential, "{expected}");
            assert!(err.message().contains(expected), "{}", err.message());
        }
    }

    #[test]
    fn allows_the_leeway_of_clock_skew_and_no_more() {
        let (dir, signer) = fixture();
        let iat = 1000 + tessera_verify::LEEWAY;
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": iat, "exp": iat + 60});
        assert!(check(&dir, &sign(&signer, &header(), &c), 1000).is_ok());
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": iat + 1, "exp": iat + 60});
        let err = check(&dir, &sign(&signer, &header(), &c), 1000).unwrap_err();
        assert!(err.message().contains("future"), "{}", err.message());
        let c = serde_json::json!({"iss": SA, "aud": AUD, "iat": 900, "exp": 1000});
        assert!(check(
            &dir,
            &sign(&signer, &header(), &c),
            1000 + tessera_verify::LEEWAY - 1
        )
        .is_ok());
        let err = check(
            &dir,
            &sign(&signer, &header(), &c),
            1000 + tessera_verify::LEEWAY,
        )
        .unwrap_err();
        assert!(err.message().contains("expired"), "{}", err.message());
    }

    #[test]
    fn refuses_forgeries() {
        let (dir, signer) = fixture();
        let good = sign(&signer, &header(), &claims(1000));
        // Signature of another key.
        let other = generate_key_pair(AuthorizedKeyAlgorithm::Rsa2048).unwrap();
        let other = RsaKeyPair::from_pkcs8(&other.private_pkcs8_der).unwrap();
        let forged = sign(&other, &header(), &claims(1000));
        assert!(check(&dir, &forged, 1000)
            .unwrap_err()
            .message()
            .contains("signature"));
        // alg none, and HS256 keyed with the public key.
        let (head, rest) = good.split_once('.').unwrap();
        let payload = rest.split('.').next().unwrap();
        for alg in ["none", "HS256"] {
            let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"{alg}","kid":"k1"}}"#));
            let token = format!("{h}.{payload}.");
            let err = check(&dir, &token, 1000).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidCredential);
        }
        // Tampered payload.
        let mut c = claims(1000);
        c["iss"] = "ServiceId-2".into();
        let tampered = format!(
            "{}.{}.{}",
            head,
            URL_SAFE_NO_PAD.encode(c.to_string()),
            good.rsplit('.').next().unwrap()
        );
        assert!(check(&dir, &tampered, 1000).is_err());
        // Too long is an argument error naming the field.
        let err = check(&dir, &"a".repeat(MAX_JWT + 1), 1000).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("jwt"));
    }

    #[test]
    fn deleted_key_fails_at_once() {
        let (mut dir, signer) = fixture();
        let jwt = sign(&signer, &header(), &claims(1000));
        dir.apply(Change::Delete(
            crate::directory::EntityKind::AuthorizedKey,
            "k1".into(),
        ));
        assert!(check(&dir, &jwt, 1000).is_err());
    }

    #[test]
    fn pem_round_trips() {
        let der = vec![1u8; 300];
        let text = pem("PUBLIC KEY", &der);
        assert!(text.lines().all(|l| l.len() <= 64));
        assert_eq!(pem_decode("PUBLIC KEY", &text), Some(der));
        assert_eq!(pem_decode("PRIVATE KEY", &text), None);
    }
}
