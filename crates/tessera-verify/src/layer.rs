//! A plain tower [`Layer`]/[`Service`] for any `http`-based framework (axum, hyper, tonic's
//! transport): it reads `Authorization: Bearer <token>`, verifies it with a [`Verifier`], puts
//! the [`VerifiedCaller`] into the request's extensions and calls the inner service; a missing
//! or bad token is answered `401` with an RFC 6750 challenge
//! (`WWW-Authenticate: Bearer error="invalid_token", error_description="…"`), an introspection
//! outage `503`. The inner service is never called for them.
//!
//! ```
//! # use std::sync::Arc;
//! # use tessera_verify::{Jwks, TrustedIssuer, Verifier, VerifyLayer};
//! let verifier = Verifier::builder()
//!     .trust(TrustedIssuer::new("https://iam.example/identity", Jwks::default()).any_audience())
//!     .build()
//!     .unwrap();
//! let layer = VerifyLayer::new(Arc::new(verifier));
//! // tower::ServiceBuilder::new().layer(layer).service(inner), or axum's Router::layer(layer).
//! # let _ = layer;
//! ```

use crate::caller::{bearer_token, InsufficientScope, VerifiedCaller};
use crate::{Verifier, VerifyError};
use http::{HeaderValue, Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Wraps services so that only verified callers reach them.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Arc<Verifier>,
}

impl VerifyLayer {
    pub fn new(verifier: Arc<Verifier>) -> Self {
        VerifyLayer { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`VerifyLayer`] builds.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

/// The `WWW-Authenticate` value of RFC 6750 §3 for `error` and a description (quotes and
/// backslashes, which the syntax forbids inside, become apostrophes).
pub fn challenge(error: &str, description: &str, scope: Option<&str>) -> HeaderValue {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '\''
                } else {
                    c
                }
            })
            .collect()
    };
    let mut value = format!(
        "Bearer error=\"{error}\", error_description=\"{}\"",
        clean(description)
    );
    if let Some(scope) = scope {
        value.push_str(&format!(", scope=\"{}\"", clean(scope)));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}

/// The answer to a request without a good token.
pub fn rejection<B: Default>(error: Option<&VerifyError>) -> Response<B> {
    let mut response = Response::new(B::default());
    match error {
        Some(VerifyError::Unavailable(_)) => {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        _ => {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            let description = error.map_or_else(|| "no bearer token".to_owned(), |e| e.to_string());
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                challenge("invalid_token", &description, None),
            );
        }
    }
    response
}

/// The answer to a verified caller that lacks what the handler requires.
pub fn forbidden<B: Default>(lack: &InsufficientScope) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::FORBIDDEN;
    let scope = (lack.what == "scope").then_some(lack.needed.as_str());
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        challenge("insufficient_scope", &lack.to_string(), scope),
    );
    response
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for VerifyService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request; the fresh one waits for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let token = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token);
            let verified: Result<VerifiedCaller, Option<VerifyError>> = match token {
                Some(token) => verifier.verify(token).await.map_err(Some),
                None => Err(None),
            };
            match verified {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(error) => Ok(rejection(error.as_ref())),
            }
        })
    }
}
