//! The REST twins of `IamTokenService`: `POST /iam/v1/tokens`, `:createForServiceAccount`,
//! `:revoke`. JSON in lowerCamel (snake_case accepted), RFC 3339 `expiresAt`, and
//! `google.rpc.Status` errors.

use super::errors::YandexError;
use super::service::{self, Identity};
use crate::http::{bearer_token, read_body, BodyError, RequestContext};
use crate::rfc3339::from_unix as rfc3339;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::{json, Map, Value};
use tessera_core::iam_token::MintedIamToken;
use tessera_core::json::ObjectWriter;

/// Largest REST request body: the biggest valid request with room for JSON framing.
const MAX_REST_BODY: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/iam/v1/tokens", post(create).fallback(method_not_allowed))
        .route(
            "/iam/v1/tokens:createForServiceAccount",
            post(create_for_service_account).fallback(method_not_allowed),
        )
        .route(
            "/iam/v1/tokens:revoke",
            post(revoke).fallback(method_not_allowed),
        )
        .route(
            "/iam/v1/serviceAccounts/{id}",
            get(get_service_account).fallback(method_not_allowed),
        )
}

async fn get_service_account(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let result =
        service::get_service_account(&state, &ctx, bearer_token(&headers), &id, state.clock.now());
    respond(
        result.map(|sa| {
            Json(json!({
                "id": sa.id,
                "folderId": sa.account_id,
                "createdAt": rfc3339(sa.created_at),
                "name": sa.name,
                "description": sa.description,
            }))
        }),
        &ctx,
    )
}

async fn create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    body: Body,
) -> Response {
    let result = async {
        let mut fields = json_object(body).await?;
        let oauth = take_string(
            &mut fields,
            "yandexPassportOauthToken",
            "yandex_passport_oauth_token",
        )?;
        let jwt = take_string(&mut fields, "jwt", "jwt")?;
        reject_unknown(&fields)?;
        let identity = Identity::exactly_one(oauth.as_deref(), jwt.as_deref())?;
        service::create(&state, identity, &ctx, state.clock.now()).await
    }
    .await;
    respond(result.map(token_body), &ctx)
}

async fn create_for_service_account(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let id = single_field(body, "serviceAccountId", "service_account_id").await?;
        service::create_for_service_account(
            &state,
            &ctx,
            bearer_token(&headers),
            id.as_deref().unwrap_or(""),
            state.clock.now(),
        )
    }
    .await;
    respond(result.map(token_body), &ctx)
}

async fn revoke(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let token = single_field(body, "iamToken", "iam_token").await?;
        service::revoke(
            &state,
            bearer_token(&headers),
            token.as_deref().unwrap_or(""),
            state.clock.now(),
            &ctx,
        )
        .await
    }
    .await;
    respond(
        result.map(|subject_id| Json(json!({ "subjectId": subject_id }))),
        &ctx,
    )
}

async fn method_not_allowed(
    Extension(ctx): Extension<RequestContext>,
    method: axum::http::Method,
) -> Response {
    let mut response = YandexError::new(
        tonic::Code::Unimplemented,
        format!("method {method} is not supported here; use POST"),
    )
    .to_rest(&ctx.id);
    *response.status_mut() = axum::http::StatusCode::METHOD_NOT_ALLOWED;
    response
}

fn respond(result: Result<impl IntoResponse, YandexError>, ctx: &RequestContext) -> Response {
    match result {
        Ok(body) => body.into_response(),
        Err(e) => e.to_rest(&ctx.id),
    }
}

/// `{"iamToken": …, "expiresAt": …}`, written straight into the answer: the token needs no
/// escaping scan (`tessera_core::json`).
fn token_body(minted: MintedIamToken) -> impl IntoResponse {
    let expires_at = rfc3339(minted.claims.exp);
    crate::http::json_response(
        ObjectWriter::with_capacity(minted.token.len() + expires_at.len() + 32)
            .string("iamToken", &minted.token)
            .string("expiresAt", &expires_at)
            .finish(),
    )
}

/// Reads a body that holds one string field (lowerCamel or snake_case) and nothing else.
async fn single_field(body: Body, camel: &str, snake: &str) -> Result<Option<String>, YandexError> {
    let mut fields = json_object(body).await?;
    let value = take_string(&mut fields, camel, snake)?;
    reject_unknown(&fields)?;
    Ok(value)
}

/// Reads the body as one JSON object.
async fn json_object(body: Body) -> Result<Map<String, Value>, YandexError> {
    let bytes = read_body(body, MAX_REST_BODY).await.map_err(|e| match e {
        BodyError::TooLarge(limit) => YandexError::too_large(limit),
        BodyError::Unreadable => YandexError::invalid("request body could not be read"),
    })?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(YandexError::invalid("request body must be a JSON object")),
        Err(e) => Err(YandexError::invalid(format!(
            "request body is not valid JSON: {}",
            e.classify_message()
        ))),
    }
}

trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    /// The error's position and category, never the input it quotes (which may be a secret).
    fn classify_message(&self) -> String {
        format!(
            "{:?} error at line {} column {}",
            self.classify(),
            self.line(),
            self.column()
        )
        .to_lowercase()
    }
}

/// Removes and returns a string field given by its lowerCamel or snake_case name.
fn take_string(
    fields: &mut Map<String, Value>,
    camel: &str,
    snake: &str,
) -> Result<Option<String>, YandexError> {
    let camel_value = fields.remove(camel);
    let snake_value = if camel == snake {
        None
    } else {
        fields.remove(snake)
    };
    let value = match (camel_value, snake_value) {
        (Some(_), Some(_)) => {
            return Err(YandexError::invalid(format!(
                "{camel} is given twice (as {camel} and {snake})"
            )))
        }
        (Some(v), None) | (None, Some(v)) => v,
        (None, None) => return Ok(None),
    };
    match value {
        Value::String(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        _ => Err(YandexError::invalid(format!("{camel} must be a string"))),
    }
}

fn reject_unknown(fields: &Map<String, Value>) -> Result<(), YandexError> {
    match fields.keys().next() {
        None => Ok(()),
        Some(name) => {
            let shown: String = name.chars().take(64).collect();
            Err(YandexError::invalid(format!("unknown field {shown:?}")))
        }
    }
}
