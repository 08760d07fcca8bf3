//! What resource services use to check tokens: JWKS (`/identity/keys`,
//! `/.well-known/jwks.json`), OIDC discovery, RFC 7662 introspection and RFC 7009 revocation.
//!
//! Introspection and revocation answer errors in the OAuth 2.0 shape
//! (`{"error", "error_description"}`); a failed client authentication is 401 with
//! `WWW-Authenticate`.

use crate::http::{
    basic_credentials, bearer_token, is_form, read_body, BodyError, PeerAddr, RequestContext,
};
use crate::ibm::TOKEN_PATH;
use crate::metrics_names as names;
use crate::state::AppState;
use crate::throttle::{Attempt, Kind};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;
use std::net::IpAddr;
use tessera_core::authn;
use tessera_core::error::ErrorKind;
use tessera_core::limits::MAX_BODY;
use tessera_core::model::DEFAULT_CLIENT_ID;

pub const KEYS_PATH: &str = "/identity/keys";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const INTROSPECT_PATH: &str = "/identity/introspect";
pub const REVOKE_PATH: &str = "/identity/revoke";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(KEYS_PATH, get(jwks_get))
        .route(JWKS_PATH, get(jwks_get))
        .route("/.well-known/openid-configuration", get(discovery_get))
        .route(
            "/identity/.well-known/openid-configuration",
            get(discovery_get),
        )
        .route(INTROSPECT_PATH, post(introspect_post))
        .route(REVOKE_PATH, post(revoke_post))
}

async fn jwks_get(State(state): State<AppState>) -> Response {
    let keyring = state.snapshot.keyring();
    let body = json!({ "keys": keyring.published() });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_str(&format!(
                    "public, max-age={}",
                    state.config.jwks_cache_seconds
                ))
                .unwrap_or(HeaderValue::from_static("no-cache")),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn discovery_get(State(state): State<AppState>) -> Json<serde_json::Value> {
    let base = &state.public_url;
    Json(json!({
        "issuer": state.issuer,
        "jwks_uri": format!("{base}{KEYS_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "introspection_endpoint": format!("{base}{INTROSPECT_PATH}"),
        "revocation_endpoint": format!("{base}{REVOKE_PATH}"),
        "grant_types_supported": crate::ibm::grant::GRANTS,
        "response_types_supported": crate::ibm::grant::RESPONSE_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [state.config.jwt_algorithm.as_str()],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "bearer"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "scopes_supported": ["ibm", "openid"],
        "claims_supported": ["iam_id", "id", "realmid", "sub", "sub_type", "account", "iat", "exp", "iss", "scope", "client_id", "acr", "amr", "jti", "name", "email"],
    }))
}

/// An OAuth 2.0 error response (RFC 6749 §5.2).
struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn unavailable(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable",
            description: description.into(),
        }
    }
    fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: description.into(),
        }
    }
    fn throttled(retry_after: u64) -> Self {
        OAuthError {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "slow_down",
            description: format!(
                "too many failed client authentications; try again in {retry_after} seconds"
            ),
        }
    }

    fn invalid_client(description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        metrics::counter!(names::ERRORS, "surface" => "oauth", "code" => self.error).increment(1);
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tessera\", Bearer"),
            );
        }
        if self.status.is_server_error() {
            tracing::error!(cause = %self.description, "oauth endpoint failed");
        }
        response
    }
}

/// `token` and `token_type_hint`. No `Debug`: `token` is a secret.
#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

async fn read_token_form(headers: &HeaderMap, body: Body) -> Result<String, OAuthError> {
    let bytes = read_body(body, MAX_BODY).await.map_err(|e| match e {
        BodyError::TooLarge(_) => OAuthError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "invalid_request",
            description: e.to_string(),
        },
        BodyError::Unreadable => OAuthError::invalid_request(e.to_string()),
    })?;
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    let form: TokenParam = crate::ibm::form::parse_form(&bytes).map_err(|_| {
        OAuthError::invalid_request(
            "the body is not a valid form; each parameter may appear at most once",
        )
    })?;
    match form.token {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(OAuthError::invalid_request("token is required")),
    }
}

/// Who is calling an OAuth endpoint: an authenticated client (by store key), a bearer-token
/// holder, or nobody.
enum Caller {
    Client(String),
    Bearer,
    Anonymous,
}

/// Authenticates the caller. Client secrets are throttled per (client id, source) like at the
/// token endpoint: every secret check counts.
async fn identify_caller(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<Caller, OAuthError> {
    match basic_credentials(headers) {
        Ok(Some((id, secret))) => {
            let attempt = [Attempt::new(Kind::Client, &id, peer)];
            if !state.throttle.is_idle() {
                state
                    .throttle
                    .gate(&attempt)
                    .await
                    .map_err(|locked| OAuthError::throttled(locked.retry_after))?;
            }
            let result = {
                let dir = state.snapshot.directory();
                authn::authenticate_client(&dir, &state.pepper, &id, &secret)
            };
            match result {
                Ok(client) => {
                    if !state.throttle.is_idle() {
                        state.throttle.success(&attempt);
                    }
                    Ok(Caller::Client(client.key.clone()))
                }
                Err(e) => {
                    state.throttle.failure(&attempt);
                    Err(OAuthError::invalid_client(e.message().to_owned()))
                }
            }
        }
        Err(message) => Err(OAuthError::invalid_client(message)),
        Ok(None) => match bearer_token(headers) {
            Some(token) => state
                .verify_access_token(token, now)
                .map(|_| Caller::Bearer)
                .map_err(|e| {
                    OAuthError::invalid_client(format!("bearer token rejected: {}", e.message()))
                }),
            None => Ok(Caller::Anonymous),
        },
    }
}

/// RFC 7662. The caller must authenticate (Basic client credentials or a valid bearer token).
async fn introspect_post(
    State(state): State<AppState>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = state.clock.now();
    if let Err(e) = state.check_fresh(now) {
        return OAuthError::unavailable(e.message()).into_response();
    }
    let peer = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let caller = match identify_caller(&state, &headers, peer, now).await {
        Ok(Caller::Anonymous) => {
            return OAuthError::invalid_client(
                "introspection requires client authentication (Basic) or a bearer token",
            )
            .into_response()
        }
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let token = match read_token_form(&headers, body).await {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    let inactive = || Json(json!({"active": false})).into_response();
    if let Ok(presented) = state.verify_access_token(&token, now) {
        return crate::http::json_response(presented.introspection().to_json());
    }
    // A refresh token is only described to the client it was issued to (a delegated one: to
    // its receivers).
    if let Caller::Client(client_key) = &caller {
        if let Ok((principal, grant)) = state.redeem_refresh_token(&token, client_key, now) {
            if grant.is_delegated() {
                return Json(json!({
                    "active": true,
                    "token_type": "delegated_refresh_token",
                    "client_id": grant.client_id,
                    // Receivers are client store keys (`<account>/<id>`); show their ids.
                    "receiver_client_ids": grant
                        .receivers
                        .iter()
                        .map(|key| key.rsplit('/').next().unwrap_or(key))
                        .collect::<Vec<_>>(),
                    "sub": principal.id(),
                    "iam_id": principal.iam_id(),
                    "scope": grant.scope,
                    "iat": grant.iat,
                    "exp": grant.exp,
                    "iss": state.issuer,
                    "jti": grant.jti,
                }))
                .into_response();
            }
            return Json(json!({
                "active": true,
                "token_type": "refresh_token",
                "client_id": grant.client_id,
                "sub": principal.id(),
                "iam_id": principal.iam_id(),
                "scope": grant.scope,
                "iat": grant.iat,
                "exp": grant.exp,
                "iss": state.issuer,
                "jti": grant.jti,
            }))
            .into_response();
        }
    }
    inactive()
}

/// RFC 7009. Public (default-client) tokens may be revoked by whoever holds them; tokens of a
/// confidential client only by that client. Always 200 for a well-formed request.
async fn revoke_post(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    peer: Option<Extension<PeerAddr>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let now = state.clock.now();
    if let Err(e) = state.check_fresh(now) {
        return OAuthError::unavailable(e.message()).into_response();
    }
    let peer = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let client_key = match identify_caller(&state, &headers, peer, now).await {
        Ok(Caller::Client(key)) => key,
        Ok(_) => DEFAULT_CLIENT_ID.to_owned(),
        Err(e) => return e.into_response(),
    };
    let token = match read_token_form(&headers, body).await {
        Ok(token) => token,
        Err(e) => return e.into_response(),
    };
    match state.revoke(&token, &client_key, now, &ctx).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) if e.kind() == ErrorKind::Unavailable => {
            OAuthError::unavailable(e.message()).into_response()
        }
        // Causes were logged where they arose; the client learns nothing of the inside.
        Err(_) => OAuthError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "the revocation could not be recorded; the request id identifies it in the server log".into(),
        }
        .into_response(),
    }
}
