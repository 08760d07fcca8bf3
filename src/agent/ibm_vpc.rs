//! The IBM VPC instance metadata flavour. `PUT /instance_identity/v1/token` (header
//! `Metadata-Flavor: ibm`) issues an instance identity token: a JWT the agent signs with its
//! instance key. `POST /instance_identity/v1/iam_token` exchanges one for an IAM token of a
//! trusted profile through the server's `cr-token` grant, so the server decides: the agent's
//! key is a trusted issuer there (cr_type `VSI`, crn = the instance), and the profile must
//! link or match the instance. The `2025-08-26` API's `/identity/v1/token` and
//! `/identity/v1/iam_tokens` are the same operations.

use super::config::IbmVpcFile;
use super::upstream::{pem_to_der, unix_now, TrustedProfileSelector, UpstreamError};
use super::AgentState;
use anyhow::{anyhow, Context, Result};
use aws_lc_rs::rand::SystemRandom;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use tessera_core::jose::{self, SigningKey};
use tessera_core::model::Algorithm;
use tessera_core::service_account_jwt::pem;
use tessera_server::rfc3339::from_unix as rfc3339;
use tessera_verify::{decode_unverified, Validation, ValidationError, VerifyingKey};

/// Instance identity tokens live 5 s to 1 h; 300 s when the request does not say.
const MIN_EXPIRES_IN: i64 = 5;
const MAX_EXPIRES_IN: i64 = 3600;
const DEFAULT_EXPIRES_IN: i64 = 300;
/// The first version of the instance identity API.
const OLDEST_VERSION: &str = "2022-03-01";
/// Largest request body of either operation.
const MAX_BODY: usize = 4096;

/// The instance's signing key and what its tokens say.
pub struct InstanceIdentity {
    key: SigningKey,
    /// The public half, to recognise our own tokens before exchanging them.
    verifier: VerifyingKey,
    /// What our own tokens' claims must say (issuer and audience, times with the leeway).
    validation: Validation,
    issuer: String,
    instance_crn: String,
    audience: String,
    rng: SystemRandom,
}

impl InstanceIdentity {
    pub fn load(config: &IbmVpcFile) -> Result<InstanceIdentity> {
        let pem = std::fs::read_to_string(&config.key_file).with_context(|| {
            format!("cannot read ibm_vpc.key_file {}", config.key_file.display())
        })?;
        let der = pem_to_der(&pem).with_context(|| {
            format!(
                "ibm_vpc.key_file {} is not a PKCS#8 PEM key",
                config.key_file.display()
            )
        })?;
        let kid = "instance-identity";
        let key = [Algorithm::Es256, Algorithm::Rs256]
            .into_iter()
            .find_map(|alg| SigningKey::from_pkcs8(kid, alg, &der).ok())
            .ok_or_else(|| anyhow!("ibm_vpc.key_file must hold a P-256 EC or an RSA key"))?;
        if !config.instance_crn.starts_with("crn:") {
            return Err(anyhow!("ibm_vpc.instance_crn must be a CRN (crn:v1:…)"));
        }
        if config.issuer.is_empty() {
            return Err(anyhow!("ibm_vpc.issuer must not be empty"));
        }
        let verifier = key
            .verifying_key()
            .map_err(|e| anyhow!("ibm_vpc.key_file: {e}"))?;
        let audience = config.audience.clone().unwrap_or_else(|| "iam".to_owned());
        Ok(InstanceIdentity {
            key,
            verifier,
            validation: Validation::new()
                .with_issuer(config.issuer.as_str())
                .with_audiences([audience.as_str()]),
            issuer: config.issuer.clone(),
            instance_crn: config.instance_crn.clone(),
            audience,
            rng: SystemRandom::new(),
        })
    }

    /// Checks that `token` is an unexpired instance identity token of this agent: only those
    /// are exchanged (anything else is refused here, in the VPC shape, not by the server).
    fn check(&self, token: &str) -> Result<(), VpcError> {
        let invalid = |why: &str| {
            VpcError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_instance_identity_token",
                format!("The bearer token is not a valid instance identity token of this instance: {why}."),
            )
        };
        let parts = decode_unverified(token).map_err(|_| invalid("it is not a JWS"))?;
        self.verifier
            .verify_parts(&parts)
            .map_err(|_| invalid("its signature does not verify"))?;
        let claims: serde_json::Map<String, Value> = serde_json::from_slice(&parts.payload)
            .map_err(|_| invalid("its claims are not JSON"))?;
        self.validation
            .validate(&claims, unix_now())
            .map_err(|e| match e {
                ValidationError::WrongIssuer => invalid("another issuer"),
                ValidationError::Expired | ValidationError::MissingClaim(_) => {
                    invalid("it has expired")
                }
                other => invalid(&other.to_string()),
            })
    }

    fn mint(&self, expires_in: i64) -> Result<(String, i64, i64), VpcError> {
        let now = unix_now();
        let instance_id = self
            .instance_crn
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_owned();
        let claims = json!({
            "iss": self.issuer,
            "sub": self.instance_crn,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "crn": self.instance_crn,
            "instance_id": instance_id,
        });
        let token = self
            .key
            .sign_jws(claims.to_string().as_bytes(), &self.rng)
            .map_err(|_| VpcError::internal("cannot sign the instance identity token"))?;
        Ok((token, now, now + expires_in))
    }
}

pub fn router() -> Router<Arc<AgentState>> {
    Router::new()
        .route("/instance_identity/v1/token", put(token_create))
        .route("/identity/v1/token", put(token_create))
        .route("/instance_identity/v1/iam_token", post(iam_token_create))
        .route("/identity/v1/iam_tokens", post(iam_token_create))
}

/// An error in the VPC API's shape: `{"errors": [{"code", "message"}], "trace"}`.
#[derive(Debug)]
struct VpcError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl VpcError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        VpcError {
            status,
            code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
    }
}

impl IntoResponse for VpcError {
    fn into_response(self) -> Response {
        let mut id = [0u8; 8];
        let _ = aws_lc_rs::rand::fill(&mut id);
        let trace = tessera_core::ids::hex(&id);
        (
            self.status,
            Json(json!({
                "errors": [{"code": self.code, "message": self.message}],
                "trace": trace,
            })),
        )
            .into_response()
    }
}

fn check_flavor(headers: &HeaderMap) -> Result<(), VpcError> {
    let ok = headers
        .get("metadata-flavor")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("ibm"));
    if ok {
        Ok(())
    } else {
        Err(VpcError::new(
            StatusCode::FORBIDDEN,
            "missing_metadata_flavor",
            "The Metadata-Flavor: ibm header is required.",
        ))
    }
}

fn check_version(query: Option<&str>) -> Result<(), VpcError> {
    let version = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("version="));
    let is_date = |v: &str| {
        v.len() == 10
            && v.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    match version {
        // Dates in this shape order as text; the instance identity API starts at 2022-03-01.
        Some(v) if is_date(v) && v >= OLDEST_VERSION => Ok(()),
        Some(v) => Err(VpcError::invalid(format!(
            "version must be a date (YYYY-MM-DD) from {OLDEST_VERSION} on, got {v:?}"
        ))),
        None => Err(VpcError::invalid("the version query parameter is required")),
    }
}

/// A JSON object body, or `{}` for an empty one.
fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, VpcError> {
    if body.len() > MAX_BODY {
        return Err(VpcError::invalid(format!(
            "the request body must be at most {MAX_BODY} bytes"
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VpcError::invalid("the request body must be a JSON object")),
    }
}

/// A call of the IBM VPC API, checked as every one of them is, in this order: its body read,
/// the flavour configured on this agent, the `Metadata-Flavor` header, the `version` query
/// parameter. Each handler then checks its own body fields.
struct VpcCall {
    state: Arc<AgentState>,
    identity: Arc<InstanceIdentity>,
    headers: HeaderMap,
    body: Bytes,
}

impl FromRequest<Arc<AgentState>> for VpcCall {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AgentState>) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let query = request.uri().query().map(str::to_owned);
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let identity =
            check_call(state, &headers, query.as_deref()).map_err(IntoResponse::into_response)?;
        Ok(VpcCall {
            state: Arc::clone(state),
            identity,
            headers,
            body,
        })
    }
}

/// The checks of [`VpcCall`] after its body, in their order; the instance identity it signs with.
fn check_call(
    state: &AgentState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Arc<InstanceIdentity>, VpcError> {
    let identity = state.ibm_vpc.clone().ok_or_else(|| {
        VpcError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The IBM VPC instance identity flavour is not configured on this agent ([ibm_vpc] in agent.toml).",
        )
    })?;
    check_flavor(headers)?;
    check_version(query)?;
    Ok(identity)
}

async fn token_create(call: VpcCall) -> Result<Json<Value>, VpcError> {
    let request = body_object(&call.body)?;
    let expires_in = match request.get("expires_in") {
        None => DEFAULT_EXPIRES_IN,
        Some(v) => v
            .as_i64()
            .filter(|n| (MIN_EXPIRES_IN..=MAX_EXPIRES_IN).contains(n))
            .ok_or_else(|| {
                VpcError::invalid(format!(
                    "expires_in must be an integer from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}"
                ))
            })?,
    };
    if let Some(key) = request.keys().find(|k| k.as_str() != "expires_in") {
        return Err(VpcError::invalid(format!("unknown field {key:?}")));
    }
    let (token, created, expires) = call.identity.mint(expires_in)?;
    Ok(Json(json!({
        "access_token": token,
        "created_at": rfc3339(created),
        "expires_at": rfc3339(expires),
        "expires_in": expires_in,
    })))
}

async fn iam_token_create(call: VpcCall) -> Result<Json<Value>, VpcError> {
    let instance_token = call
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            VpcError::new(
                StatusCode::UNAUTHORIZED,
                "missing_authorization",
                "An Authorization: Bearer <instance identity token> header is required.",
            )
        })?;
    call.identity.check(instance_token)?;
    let request = body_object(&call.body)?;
    if let Some(key) = request.keys().find(|k| k.as_str() != "trusted_profile") {
        return Err(VpcError::invalid(format!("unknown field {key:?}")));
    }
    let mut profile = None;
    if let Some(selector) = request.get("trusted_profile") {
        let selector = selector
            .as_object()
            .ok_or_else(|| VpcError::invalid("trusted_profile must be an object"))?;
        let exactly_one =
            || VpcError::invalid("trusted_profile must have exactly one of id, crn or name");
        let (key, value) = match selector.iter().next() {
            Some(entry) if selector.len() == 1 => entry,
            _ => return Err(exactly_one()),
        };
        let value = value
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| {
                VpcError::invalid(format!("trusted_profile.{key} must be a non-empty string"))
            });
        profile = Some(match key.as_str() {
            "id" => TrustedProfileSelector::Id(value?),
            "crn" => TrustedProfileSelector::Crn(value?),
            "name" => TrustedProfileSelector::Name(value?),
            _ => return Err(exactly_one()),
        });
    }
    let fetched = call
        .state
        .shared
        .upstream
        .cr_token(instance_token, profile.as_ref())
        .await
        .map_err(|e| match e {
            UpstreamError::Refused { status, message } => VpcError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "iam_token_refused",
                message,
            ),
            UpstreamError::Unavailable(message) => VpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "iam_unavailable",
                format!("the IAM server is unavailable: {message}"),
            ),
            tls @ UpstreamError::Tls(_) => VpcError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "iam_unavailable",
                tls.to_string(),
            ),
        })?;
    let now = unix_now();
    Ok(Json(json!({
        "access_token": fetched.access_token,
        "created_at": rfc3339(now),
        "expires_at": rfc3339(fetched.expires_at),
        "expires_in": fetched.expires_at - now,
    })))
}

/// `tessera agent keygen`: a new ES256 instance key, written owner-only, and its JWKS on stdout.
pub fn keygen(key_out: &Path) -> Result<()> {
    let rng = SystemRandom::new();
    let der = jose::generate_pkcs8(Algorithm::Es256, &rng)
        .map_err(|e| anyhow!("cannot generate a key: {e}"))?;
    let key = SigningKey::from_pkcs8("instance-identity", Algorithm::Es256, &der)
        .map_err(|e| anyhow!("cannot load the new key: {e}"))?;
    write_private(key_out, pem("PRIVATE KEY", &der).as_bytes())?;
    println!("{}", json!({"keys": [key.public_jwk()]}));
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dates() {
        assert!(check_version(Some("version=2022-03-01")).is_ok());
        assert!(check_version(Some("a=b&version=2025-08-26")).is_ok());
        assert!(check_version(Some("version=latest")).is_err());
        assert!(check_version(Some("version=1999-01-01")).is_err());
        assert!(check_version(Some("version=2022-0a-01")).is_err());
        assert!(check_version(None).is_err());
    }

    #[test]
    fn bodies_are_objects_or_empty() {
        assert!(body_object(&Bytes::from_static(b"")).unwrap().is_empty());
        assert!(body_object(&Bytes::from_static(b"[1]")).is_err());
        assert!(body_object(&Bytes::from_static(b"{\"expires_in\": 10}")).is_ok());
    }

    #[test]
    fn flavor_is_required() {
        let mut headers = HeaderMap::new();
        assert!(check_flavor(&headers).is_err());
        headers.insert("metadata-flavor", "ibm".parse().unwrap());
        assert!(check_flavor(&headers).is_ok());
    }

    #[test]
    fn generated_keys_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        keygen(&path).unwrap();
        let config = IbmVpcFile {
            key_file: path,
            issuer: "https://vpc.test".into(),
            instance_crn: "crn:v1:x::instance:1".into(),
            audience: None,
        };
        let identity = InstanceIdentity::load(&config).unwrap();
        let (token, created, expires) = identity.mint(60).ok().unwrap();
        assert_eq!(expires - created, 60);
        assert!(identity.check(&token).is_ok());
        assert!(identity.check(&format!("{token}x")).is_err());
        assert!(identity.check("abc").is_err());
    }
}
