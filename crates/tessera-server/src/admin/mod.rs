//! The admin REST API (`/v1`). One module per resource, each with all of its routes:
//! `enterprises`, `accounts`, `users` (and their TOTP factor, `mfa`), `service_accounts`,
//! `api_keys`, `clients`, `authorized_keys`, `oauth_tokens`, `bindings`, `profiles`, `issuers`,
//! `policies`, `cutoffs`, `id_tokens`, signing `keys`, `whoami` and the `audit_log`. What they
//! share is `kit` (body extractors, the generic list/get/delete of a collection, find-or-404,
//! create with audit, settle); `views` renders core records as the API's types. Stability:
//! versioned; fields are only added within v1.
//!
//! Handlers are thin: the [`auth::Caller`] extractor authenticates, the handler builds the
//! record, asks the core's authorization model ([`tessera_core::authz`]) whether the caller may
//! do this to it, makes one store call, waits until the snapshot reflects the write (so the next
//! request on this node sees it), and renders a view. Contract: `docs/admin-api.md`.

mod accounts;
mod api_keys;
mod audit_log;
mod auth;
mod authorized_keys;
mod bindings;
mod clients;
mod cutoffs;
mod enterprises;
mod errors;
mod id_tokens;
mod issuers;
mod keys;
mod kit;
mod mfa;
mod oauth_tokens;
mod policies;
mod profiles;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod schema_rules_tests;
mod service_accounts;
mod users;
mod views;
mod whoami;

pub use errors::AdminError;

/// Every collection [`kit::routes`] serves, by the name its module routes it under, with its
/// paths: what the documentation test resolves the `kit::routes` calls in the source with.
#[cfg(test)]
pub(crate) fn collection_paths() -> Vec<(&'static str, &'static str, &'static str)> {
    use kit::Collection;
    fn of<C: Collection>(name: &'static str) -> (&'static str, &'static str, &'static str) {
        (name, C::PATH, C::ITEM_PATH)
    }
    vec![
        of::<accounts::Accounts>("Accounts"),
        of::<api_keys::ApiKeys>("ApiKeys"),
        of::<authorized_keys::AuthorizedKeys>("AuthorizedKeys"),
        of::<clients::Clients>("Clients"),
        of::<enterprises::Enterprises>("Enterprises"),
        of::<issuers::Issuers>("Issuers"),
        of::<oauth_tokens::OAuthTokens>("OAuthTokens"),
        of::<policies::Policies>("Policies"),
        of::<profiles::Profiles>("Profiles"),
        of::<service_accounts::ServiceAccounts>("ServiceAccounts"),
        of::<users::Users>("Users"),
    ]
}
pub use kit::{list_filter, ListQuery};

use crate::http::RequestContext;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(whoami::router())
        .merge(audit_log::router())
        .merge(enterprises::router())
        .merge(accounts::router())
        .merge(users::router())
        .merge(mfa::router())
        .merge(service_accounts::router())
        .merge(api_keys::router())
        .merge(clients::router())
        .merge(authorized_keys::router())
        .merge(oauth_tokens::router())
        .merge(bindings::router())
        .merge(profiles::router())
        .merge(issuers::router())
        .merge(policies::router())
        .merge(cutoffs::router())
        .merge(id_tokens::router())
        .merge(keys::router())
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
