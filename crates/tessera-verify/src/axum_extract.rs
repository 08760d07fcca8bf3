//! axum: [`VerifiedCaller`] as an extractor behind [`crate::VerifyLayer`], and the `401`/`403`
//! answers as responses. A handler that names `VerifiedCaller` cannot run unauthenticated: without
//! the layer (or with no caller in the request) the extractor itself answers `401`. A handler
//! returns `Err(InsufficientScope)` (from [`VerifiedCaller::require_scope`] and friends) to answer
//! `403` with `WWW-Authenticate: Bearer error="insufficient_scope"`.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use std::sync::Arc;
//! use tessera_verify::{InsufficientScope, KeySource, RemoteKeys, TrustedIssuer, VerifiedCaller, Verifier, VerifyLayer};
//!
//! async fn hello(caller: VerifiedCaller) -> Result<String, InsufficientScope> {
//!     caller.require_scope("ibm")?;
//!     Ok(format!("hello {}", caller.iam_id))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = "https://iam.example/identity";
//! let keys = RemoteKeys::builder(KeySource::Issuer(issuer.into())).build().await?;
//! let verifier = Verifier::builder()
//!     .trust(TrustedIssuer::new(issuer, keys).any_audience())
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/hello", get(hello))
//!     .layer(VerifyLayer::new(Arc::new(verifier)));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

use crate::caller::{InsufficientScope, VerifiedCaller};
use crate::layer::{forbidden, rejection};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

/// The extractor's rejection: no verified caller in the request.
#[derive(Debug, Clone, Copy)]
pub struct Unauthenticated;

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        rejection(None)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedCaller {
    type Rejection = Unauthenticated;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedCaller>()
            .cloned()
            .ok_or(Unauthenticated)
    }
}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        forbidden(&self)
    }
}
