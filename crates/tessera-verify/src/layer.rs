//! A plain tower [`Layer`]/[`Service`] for any `http`-based framework (axum, hyper, tonic's
//! transport): it reads `Authorization: Bearer <token>`, verifies it with a [`Verifier`], puts
//! the [`VerifiedCaller`] into the request's extensions and calls the inner service; a missing
//! or bad token is answered `401` with an RFC 6750 challenge
//! (`WWW-Authenticate: Bearer error="invalid_token", error_description="…"`), an introspection
//! outage `503`. The inner service is never called for them.
//!
//! A gRPC request (`content-type: application/grpc…`) is refused the gRPC way instead: a
//! trailers-only answer with `grpc-status` `UNAUTHENTICATED` (16) or `UNAVAILABLE` (14) and the
//! reason in `grpc-message`. So the layer is also the tonic integration that waits for an
//! unknown `kid`'s refetch and asks introspection (`Server::builder().layer(VerifyLayer::new(..))`),
//! which the synchronous [`VerifyInterceptor`](crate::VerifyInterceptor) cannot.
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

/// The gRPC answer to a call without a good token: HTTP 200, trailers-only, `grpc-status`
/// 16 (`UNAUTHENTICATED`) or, for an introspection outage, 14 (`UNAVAILABLE`).
pub fn grpc_rejection<B: Default>(error: Option<&VerifyError>) -> Response<B> {
    let mut response = Response::new(B::default());
    let code = match error {
        Some(VerifyError::Unavailable(_)) => "14",
        _ => "16",
    };
    let description = error.map_or_else(|| "no bearer token".to_owned(), |e| e.to_string());
    // gRPC's grpc-message is percent-encoded outside printable ASCII (and `%` itself).
    let mut message = String::with_capacity(description.len());
    for byte in description.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            message.push(char::from(byte));
        } else {
            message.push_str(&format!("%{byte:02X}"));
        }
    }
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from_static(code));
    if let Ok(message) = HeaderValue::from_str(&message) {
        headers.insert("grpc-message", message);
    }
    response
}

fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
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
                Err(error) if is_grpc(&request) => Ok(grpc_rejection(error.as_ref())),
                Err(error) => Ok(rejection(error.as_ref())),
            }
        })
    }
}
