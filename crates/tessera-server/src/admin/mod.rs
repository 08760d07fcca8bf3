//! The admin REST API (`/v1`): accounts, enterprises, users, service accounts, API keys, OAuth
//! clients, authorized keys and OAuth tokens (`yandex_credentials`), access bindings, and
//! signing keys for operators (`keys`). Stability: versioned;
//! fields are only added within v1.
//!
//! Handlers are thin: the [`auth::Caller`] extractor authenticates, the handler builds the
//! record, asks the core's authorization model ([`tessera_core::authz`]) whether the caller may
//! do this to it, makes one store call, waits until the snapshot reflects the write (so the next
//! request on this node sees it), and renders a view. Contract: `docs/admin-api.md`.

mod auth;
mod bindings;
mod cutoffs;
mod directory_objects;
mod errors;
mod id_tokens;
mod issuers;
mod keys;
mod mfa;
mod policies;
mod profiles;
mod views;
mod yandex_credentials;

pub use errors::AdminError;
pub use views::rfc3339;

use crate::http::{read_body, BodyError, RequestContext};
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tessera_store::{AuditEvent, ListFilter};

/// Largest admin request body.
const MAX_ADMIN_BODY: usize = 64 * 1024;
use tessera_api::limits::{DEFAULT_LIMIT, MAX_FILTER, MAX_LIMIT};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(directory_objects::router())
        .merge(bindings::router())
        .merge(keys::router())
        .merge(issuers::router())
        .merge(profiles::router())
        .merge(policies::router())
        .merge(cutoffs::router())
        .merge(mfa::router())
        .merge(id_tokens::router())
        .route(
            tessera_api::paths::OPENAPI,
            get(crate::api_doc::openapi_get),
        )
        .layer(middleware::from_fn(render_errors))
}

/// Gives admin errors their body, with the request id from the request context.
async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestContext>()
        .map(|c| c.id.clone())
        .unwrap_or_default();
    let mut response = next.run(request).await;
    let Some(errors::PendingError(error)) =
        response.extensions_mut().remove::<errors::PendingError>()
    else {
        return response;
    };
    if let Some(cause) = &error.internal {
        tracing::error!(request_id, code = error.code, cause, "admin request failed");
    }
    let body = tessera_api::error::ErrorBody {
        error: tessera_api::error::ErrorDetail {
            code: error.code.to_owned(),
            message: error.message,
            request_id,
        },
    };
    let mut rendered = (error.status, Json(body)).into_response();
    if error.status == StatusCode::UNAUTHORIZED {
        rendered.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    rendered
}

/// A JSON body extractor whose failures use the admin error shape and name the problem.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .eq_ignore_ascii_case("application/json")
            });
        if !is_json {
            return Err(AdminError::invalid("Content-Type must be application/json"));
        }
        let bytes = read_body(request.into_body(), MAX_ADMIN_BODY)
            .await
            .map_err(body_error)?;
        serde_json::from_slice(&bytes)
            .map(AdminJson)
            .map_err(|e| AdminError::invalid(format!("invalid request body: {e}")))
    }
}

fn body_error(e: BodyError) -> AdminError {
    match e {
        BodyError::TooLarge(_) => AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            e.to_string(),
        ),
        BodyError::Unreadable => AdminError::invalid(e.to_string()),
    }
}

/// [`AdminJson`] for endpoints whose body is optional: `None` for an empty body.
pub struct OptionalAdminJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalAdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared_empty = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        let untyped = request.headers().get(header::CONTENT_TYPE).is_none();
        if declared_empty || untyped {
            // No body to speak of; a stray one without a type is still read (bounded) and
            // must be empty.
            let bytes = read_body(request.into_body(), MAX_ADMIN_BODY)
                .await
                .map_err(body_error)?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalAdminJson(None));
            }
            return Err(AdminError::invalid("Content-Type must be application/json"));
        }
        AdminJson::from_request(request, state)
            .await
            .map(|AdminJson(body)| OptionalAdminJson(Some(body)))
    }
}

pub use tessera_api::admin::ListQuery;

/// The store filter of a list request; its rules are the ones `ListQuery`'s schema states.
pub fn list_filter(query: &ListQuery) -> Result<ListFilter, AdminError> {
    let this = query;
    {
        let limit = this.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(AdminError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        for (field, value) in [
            ("account_id", &this.account_id),
            ("owner_iam_id", &this.owner_iam_id),
            ("service_account_id", &this.service_account_id),
            ("user_id", &this.user_id),
            ("subject_iam_id", &this.subject_iam_id),
            ("source_iam_id", &this.source_iam_id),
            ("resource", &this.resource),
            ("after", &this.after),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > MAX_FILTER)
            {
                return Err(AdminError::invalid(format!(
                    "{field} is longer than {MAX_FILTER} characters"
                )));
            }
        }
        let owners = [
            this.owner_iam_id.clone(),
            this.service_account_id.as_deref().map(|id| {
                // Either spelling: `ServiceId-…` or its iam_id `iam-ServiceId-…`.
                if id.starts_with(tessera_core::ids::SERVICE_IAM_ID_PREFIX) {
                    id.to_owned()
                } else {
                    tessera_core::ids::service_iam_id(id)
                }
            }),
            this.user_id.clone(),
        ];
        let mut owners = owners.into_iter().flatten();
        let owner_iam_id = owners.next();
        if owners.next().is_some() {
            return Err(AdminError::invalid(
                "give at most one of owner_iam_id, service_account_id and user_id",
            ));
        }
        if this.subject_iam_id.is_some() && this.source_iam_id.is_some() {
            return Err(AdminError::invalid(
                "give at most one of subject_iam_id and source_iam_id",
            ));
        }
        let subject_iam_id = this.subject_iam_id.clone().or_else(|| {
            this.source_iam_id.as_deref().map(|id| {
                if id.starts_with(tessera_core::ids::SERVICE_ID_PREFIX) {
                    tessera_core::ids::service_iam_id(id)
                } else {
                    id.to_owned()
                }
            })
        });
        Ok(ListFilter {
            account_id: this.account_id.clone(),
            owner_iam_id,
            subject_iam_id,
            resource: this.resource.clone(),
            after: this.after.clone(),
            limit: Some(limit),
        })
    }
}

/// The audit event of an admin action.
pub fn audit(ctx: &RequestContext, actor: &str, action: &str, detail: String) -> AuditEvent {
    AuditEvent {
        // When the request started, on the server's clock.
        at: ctx.started_at.unix_timestamp(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        request_id: ctx.id.clone(),
        detail,
    }
}

/// Waits until this node's snapshot reflects the write at `seq`, so a deleted credential fails
/// on the very next request.
pub async fn settle(state: &AppState, seq: i64) {
    if !state.snapshot.sync_to(seq).await {
        tracing::warn!(seq, "snapshot did not catch up with a write within 5 s");
    }
}

pub fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

pub fn deleted() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Keeps list body shapes uniform: `{"<plural>": [...]}`.
pub fn list_body<T: Serialize>(plural: &str, items: Vec<T>) -> Response {
    let mut map = serde_json::Map::new();
    map.insert(
        plural.to_owned(),
        serde_json::to_value(items).unwrap_or_default(),
    );
    Json(serde_json::Value::Object(map)).into_response()
}
