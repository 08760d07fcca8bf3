//! OpenID Connect ID tokens for workloads: what a GCE metadata server's
//! `service-accounts/…/identity?audience=…` returns. The token says "the bearer of this IAM
//! token is this subject" to a third party named by `aud`, which checks it with the server's
//! JWKS like any other Tessera JWT.

use crate::directory::Subject;
use crate::error::{Error, Result};
use crate::jose::SigningKey;
use crate::UnixTime;
use aws_lc_rs::rand::SecureRandom;
use serde::Serialize;
use serde_json::{Map, Value};

/// ID tokens live an hour, as GCE's do.
pub const ID_TOKEN_LIFETIME: i64 = 3600;
/// Longest audience accepted (a URL or an opaque client id).
pub const MAX_AUDIENCE: usize = 1024;
/// Most `compute_engine` attributes a full-format token may carry, and their longest value.
const MAX_INSTANCE_FIELDS: usize = 16;
const MAX_INSTANCE_VALUE: usize = 256;
const MAX_INSTANCE_NAME: usize = 64;

/// `format=standard` (the six registered claims) or `format=full` (plus `email` and the
/// `google.compute_engine` block a metadata agent vouches for).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenFormat {
    Standard,
    Full,
}

impl IdTokenFormat {
    pub fn parse(text: Option<&str>) -> Result<Self> {
        match text {
            None | Some("standard") => Ok(IdTokenFormat::Standard),
            Some("full") => Ok(IdTokenFormat::Full),
            Some(other) => Err(Error::invalid(format!(
                "format must be standard or full, got {other:?}"
            ))),
        }
    }
}

/// What an ID token is minted from.
pub struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub format: IdTokenFormat,
    /// `instance_id`, `instance_name`, `project_id`, `zone`, … as the agent knows them; only
    /// in full-format tokens.
    pub compute_engine: &'a Map<String, Value>,
    pub now: UnixTime,
}

#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    azp: &'a str,
    sub: &'a str,
    iat: UnixTime,
    exp: UnixTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    google: Option<Value>,
}

/// A signed ID token and its expiry.
#[derive(Debug)]
pub struct MintedIdToken {
    pub token: String,
    pub exp: UnixTime,
}

/// The e-mail address a subject goes by in GCE-format answers: a user's own address, and for a
/// service account `<name>@<account>.iam.tessera` (GCE's `<name>@<project>.iam.gserviceaccount.com`,
/// in a domain of our own so that Google's libraries never take it for theirs).
pub fn subject_email(subject: &Subject<'_>) -> Option<String> {
    match subject {
        Subject::User(u) if !u.email.is_empty() => Some(u.email.clone()),
        Subject::User(_) => None,
        Subject::ServiceAccount(s) => Some(format!("{}@{}.iam.tessera", s.name, s.account_id)),
        Subject::Profile(p) => Some(format!("{}@{}.profile.iam.tessera", p.id, p.account_id)),
        Subject::Crn(_) => None,
    }
}

/// Checks an audience: present, bounded, printable.
pub fn check_audience(audience: Option<&str>) -> Result<&str> {
    let audience = audience
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid("audience is required"))?;
    // Characters, as the schema counts them.
    if audience.chars().count() > MAX_AUDIENCE {
        return Err(Error::invalid(format!(
            "audience must be at most {MAX_AUDIENCE} characters"
        )));
    }
    if audience.chars().any(char::is_control) {
        return Err(Error::invalid(
            "audience must not contain control characters",
        ));
    }
    Ok(audience)
}

/// Checks the `compute_engine` block of a full-format request: a flat object of short strings
/// or numbers. Lengths are in characters, as the schema (JSON Schema) counts them.
pub fn check_compute_engine(fields: &Map<String, Value>) -> Result<()> {
    if fields.len() > MAX_INSTANCE_FIELDS {
        return Err(Error::invalid(format!(
            "compute_engine may have at most {MAX_INSTANCE_FIELDS} fields"
        )));
    }
    for (key, value) in fields {
        if key.is_empty() || key.chars().count() > MAX_INSTANCE_NAME {
            return Err(Error::invalid(format!(
                "compute_engine field names must be 1 to {MAX_INSTANCE_NAME} characters"
            )));
        }
        let ok = match value {
            Value::String(s) => s.chars().count() <= MAX_INSTANCE_VALUE,
            Value::Number(_) | Value::Bool(_) => true,
            _ => false,
        };
        if !ok {
            return Err(Error::invalid(format!(
                "compute_engine.{key} must be a string of at most {MAX_INSTANCE_VALUE} characters, a number or a boolean"
            )));
        }
    }
    Ok(())
}

/// Mints an ID token for `subject_id` (with `email`, shown in full-format tokens).
pub fn mint(
    subject_id: &str,
    email: Option<&str>,
    request: &IdTokenRequest<'_>,
    signer: &SigningKey,
    rng: &dyn SecureRandom,
) -> Result<MintedIdToken> {
    let full = request.format == IdTokenFormat::Full;
    let exp = request.now + ID_TOKEN_LIFETIME;
    let claims = IdTokenClaims {
        iss: request.issuer,
        aud: request.audience,
        azp: subject_id,
        sub: subject_id,
        iat: request.now,
        exp,
        email: email.filter(|_| full),
        email_verified: (full && email.is_some()).then_some(true),
        google: (full && !request.compute_engine.is_empty()).then(|| {
            serde_json::json!({ "compute_engine": Value::Object(request.compute_engine.clone()) })
        }),
    };
    let payload = serde_json::to_vec(&claims).map_err(|_| Error::internal("ID token claims"))?;
    Ok(MintedIdToken {
        token: signer.sign_jws(&payload, rng)?,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Algorithm;
    use aws_lc_rs::rand::SystemRandom;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    fn key() -> SigningKey {
        let rng = SystemRandom::new();
        let pkcs8 = crate::jose::generate_pkcs8(Algorithm::Es256, &rng).unwrap();
        SigningKey::from_pkcs8("k1", Algorithm::Es256, &pkcs8).unwrap()
    }

    /// The claims of a token minted at 1000 for `sa1` (e-mail `a@b`) by `https://iam.test`.
    fn minted_claims(
        format: IdTokenFormat,
        audience: &str,
        compute_engine: &Map<String, Value>,
    ) -> Value {
        let request = IdTokenRequest {
            issuer: "https://iam.test",
            audience,
            format,
            compute_engine,
            now: 1000,
        };
        let minted = mint("sa1", Some("a@b"), &request, &key(), &SystemRandom::new()).unwrap();
        payload(&minted.token)
    }

    #[test]
    fn standard_tokens_carry_only_the_registered_claims() {
        let claims = minted_claims(IdTokenFormat::Standard, "https://svc.test", &Map::new());
        assert_eq!(claims["aud"], "https://svc.test");
        assert_eq!(claims["sub"], "sa1");
        assert_eq!(claims["azp"], "sa1");
        assert_eq!(claims["exp"], 1000 + ID_TOKEN_LIFETIME);
        assert!(claims.get("email").is_none());
        assert!(claims.get("google").is_none());
    }

    #[test]
    fn full_tokens_add_email_and_instance() {
        let mut instance = Map::new();
        instance.insert("instance_id".into(), Value::from("42"));
        let claims = minted_claims(IdTokenFormat::Full, "aud", &instance);
        assert_eq!(claims["email"], "a@b");
        assert_eq!(claims["email_verified"], true);
        assert_eq!(claims["google"]["compute_engine"]["instance_id"], "42");
    }

    #[test]
    fn bad_requests_are_refused() {
        assert!(check_audience(None).is_err());
        assert!(check_audience(Some("")).is_err());
        assert!(check_audience(Some("a\nb")).is_err());
        assert!(check_audience(Some(&"x".repeat(MAX_AUDIENCE + 1))).is_err());
        assert!(IdTokenFormat::parse(Some("short")).is_err());
        let mut nested = Map::new();
        nested.insert("x".into(), serde_json::json!({"y": 1}));
        assert!(check_compute_engine(&nested).is_err());
    }

    #[test]
    fn compute_engine_lengths_are_characters() {
        // Four bytes each: within the bounds in characters (the schema's unit), over in bytes.
        let wide = |n: usize| "\u{1D413}".repeat(n);
        let fields = |name: String, value: String| {
            let mut map = Map::new();
            map.insert(name, Value::String(value));
            map
        };
        assert!(
            check_compute_engine(&fields(wide(MAX_INSTANCE_NAME), wide(MAX_INSTANCE_VALUE)))
                .is_ok()
        );
        let long_name = check_compute_engine(&fields(wide(MAX_INSTANCE_NAME + 1), "v".into()));
        assert!(long_name.is_err_and(|e| e.to_string().contains("field names")));
        assert!(check_compute_engine(&fields("n".into(), wide(MAX_INSTANCE_VALUE + 1))).is_err());
        assert!(check_compute_engine(&fields(String::new(), "v".into())).is_err());
    }
}
