//! The admin web console (`/console/`, cargo feature `console`): server-rendered HTML pages
//! over the admin API, for operators in a browser.
//!
//! The console adds no rule and no shape of its own. Sign-in goes through the token endpoint's
//! own checks and throttle ([`crate::ibm::apikey_sign_in`], [`crate::ibm::password_sign_in`]);
//! the session is a short-lived IAM token in an `HttpOnly`, `SameSite=Strict` cookie, verified
//! on every request as any presented token is ([`session`]); and every page reads and writes
//! through the admin API itself, called in-process with the session's token ([`backend`]), so
//! each refusal is the admin API's (the same `authz` decision, the same status). `authz` is
//! asked directly only to decide which write controls to draw.
//!
//! Every response under `/console/` carries the security headers of [`security_headers`]
//! (strict CSP without inline script or style, no framing, `no-store`); every state-changing
//! request is a POST form whose CSRF token, bound to the session, is checked before any handler
//! runs ([`session::require_session`]). Templates are maud (compiled in, escaped by default);
//! the stylesheet and the one small script are embedded with `include_str!`.

mod backend;
mod details;
mod forms;
mod handlers;
mod pages;
mod resources;
mod session;

use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use axum::{Extension, Router};

pub use session::{SESSION_COOKIE, SESSION_LIFETIME};

/// Where the console lives.
pub const BASE: &str = "/console";

const CSS: &str = include_str!("static/console.css");
const JS: &str = include_str!("static/console.js");

/// The strict content security policy of every console page: nothing inline, nothing from
/// elsewhere, no framing, forms post only to the console.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes (`/console/…` and the redirect of `/`); the pages call the admin API
/// of the same `state` in-process.
pub fn router(state: &AppState) -> Router<AppState> {
    let admin = crate::admin::router().with_state(state.clone());
    let signed_in = Router::new()
        .route("/console/", get(handlers::home))
        .route("/console/sign-out", post(handlers::sign_out))
        .route("/console/audit", get(handlers::audit))
        .route("/console/audit/{id}", get(details::audit_event))
        .route("/console/signing-keys", get(handlers::signing_keys))
        .route("/console/signing-keys/rotate", post(handlers::rotate))
        .route(
            "/console/inspect",
            get(handlers::inspect_form).post(handlers::inspect),
        )
        .route(
            "/console/r/{slug}",
            get(handlers::list).post(handlers::create),
        )
        .route("/console/r/{slug}/{id}", get(details::object))
        .route(
            "/console/r/{slug}/{id}/delete",
            get(handlers::confirm_delete).post(handlers::delete),
        )
        .route("/console/r/{slug}/{id}/mfa", post(details::account_mfa))
        .route("/console/r/{slug}/{id}/totp", post(details::user_totp))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/sign-in",
            get(handlers::sign_in_form).post(handlers::sign_in),
        )
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
        .merge(signed_in)
        .route("/console/{*rest}", any(not_found))
        .layer(Extension(backend::AdminApi::new(admin)))
        .layer(middleware::from_fn(security_headers))
}

/// The headers of every console response.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        // Secrets shown once must not come back from the back button's cache either.
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
}

async fn not_found() -> Response {
    pages::error_page(
        None,
        StatusCode::NOT_FOUND,
        "There is no such console page.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_nothing_inline_and_no_framing() {
        assert!(!CSP.contains("unsafe-inline"));
        assert!(!CSP.contains("unsafe-eval"));
        assert!(CSP.contains("frame-ancestors 'none'"));
        assert!(CSP.contains("default-src 'none'"));
        // The embedded page assets hold no inline handlers the policy would block.
        assert!(!JS.contains("eval("));
    }

    #[tokio::test]
    async fn every_console_response_carries_the_security_headers() {
        use tower::ServiceExt;
        let app = Router::new()
            .route("/x", get(|| async { "page" }))
            .layer(middleware::from_fn(security_headers));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/x")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    }
}
