//! The HTTP stack: router assembly and the layers every request passes through.
//!
//! Order, outermost first: slash normalisation (before routing, so `//identity/token` from the
//! IBM Python SDK reaches its route) → request context, metrics and access log → panic guard →
//! timeout → the surface routers. Each surface maps its own errors; the layers here only
//! produce a generic JSON error for panics and timeouts.

use crate::metrics_names as names;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Per-request facts every surface can use: the request id and when the request started.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: String,
    pub started: Instant,
    pub started_at: OffsetDateTime,
}

/// The TCP peer of the connection a request came on, set by the server's accept loops. The
/// source address brute-force throttling counts by; `X-Forwarded-For` is deliberately not
/// consulted (any client can send it). Absent when the app is driven without a socket.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Builds the whole application: every surface's routes under the shared layers.
pub fn app(state: AppState) -> Router {
    // gRPC services are routers of their own (tonic), so the surface routers get their state
    // first and the gRPC router is merged in after; the layers then wrap both.
    Router::new()
        .merge(crate::ibm::router())
        .merge(crate::oidc::router())
        .merge(crate::admin::router())
        .merge(crate::yandex::router())
        .merge(crate::ops::router())
        .with_state(state.clone())
        .merge(crate::yandex::grpc_router(state.clone()))
        .fallback(not_found)
        .layer(
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(
                    state.clone(),
                    request_context,
                ))
                .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                    panic_response,
                ))
                .layer(middleware::from_fn_with_state(REQUEST_DEADLINE, deadline)),
        )
}

/// How long a request may take before it is answered 503: a hung store must not hold a client,
/// or one of the bounded connection slots, for ever.
const REQUEST_DEADLINE: Duration = Duration::from_secs(30);

/// Ends a request that runs past `limit` with an error the client can decode: gRPC
/// `UNAVAILABLE` for a gRPC call, the JSON error of the other layers otherwise.
async fn deadline(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let grpc = is_grpc(&request);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                millis = limit.as_millis() as u64,
                "a request ran past its deadline"
            );
            metrics::counter!(names::ERRORS, "code" => "request_timeout").increment(1);
            let within = match limit.as_secs() {
                0 => format!("{} ms", limit.as_millis()),
                seconds => format!("{seconds} s"),
            };
            let message = format!("the request did not complete within {within}");
            if grpc {
                tonic::Status::unavailable(message).into_http()
            } else {
                generic_error(StatusCode::SERVICE_UNAVAILABLE, "request_timeout", &message)
            }
        }
    }
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Collapses repeated slashes in the path (`//identity/token` → `/identity/token`).
pub fn collapse_slashes(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A request id: a random per-process prefix and a counter, 24 hex digits. Unique across nodes
/// (the prefix) and cheap on the hot path (no RNG call, no per-byte formatting).
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // An all-zero prefix on RNG failure still keeps requests going; ids are for correlation.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        u32::from_be_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}{n:016x}")
}

async fn request_context(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let ctx = RequestContext {
        id: new_request_id(),
        started: Instant::now(),
        started_at: state.clock.now_utc(),
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = request.method().clone();
    request.extensions_mut().insert(ctx.clone());
    // Disabled (and so free) unless traces are exported; see `telemetry`.
    let span = tracing::info_span!(
        target: crate::telemetry::TRACE_TARGET,
        "request",
        otel.name = format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        request_id = ctx.id,
    );
    let mut response = if span.is_disabled() {
        next.run(request).await
    } else {
        tracing::Instrument::instrument(next.run(request), span.clone()).await
    };
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    let elapsed = ctx.started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&ctx.id) {
        response.headers_mut().insert("x-request-id", value);
    }
    metrics::counter!(names::HTTP_REQUESTS, "route" => route.clone(), "method" => method.to_string(), "status" => status.to_string()).increment(1);
    metrics::histogram!(names::HTTP_DURATION, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::debug!(request_id = %ctx.id, %method, route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    metrics::counter!(names::ERRORS, "code" => "internal_panic").increment(1);
    generic_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal error",
    )
}

async fn not_found(request: Request) -> Response {
    let uri = request.uri();
    // A gRPC client calling a service or method we do not have gets UNIMPLEMENTED, as from any
    // gRPC server, rather than an HTTP 404 it cannot decode.
    if is_grpc(&request) {
        let message = format!("unknown gRPC method {}", uri.path());
        return tonic::Status::unimplemented(message).into_http();
    }
    generic_error(
        StatusCode::NOT_FOUND,
        "not_found",
        &format!("no such endpoint: {}", uri.path()),
    )
}

/// A JSON error for paths outside any surface.
pub fn generic_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body could not be read")]
    Unreadable,
}

/// Reads a request body of at most `limit` bytes, so each surface can answer an oversized body
/// in its own error shape.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge(limit))
        }
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Parses `Authorization: Basic base64(id:secret)`. `Ok(None)` when absent.
pub fn basic_credentials(
    headers: &axum::http::HeaderMap,
) -> Result<Option<(String, String)>, &'static str> {
    use base64::Engine;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "Authorization header is not valid text")?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err("Authorization header is malformed");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Basic credentials are not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not valid UTF-8")?;
    let (id, secret) = text
        .split_once(':')
        .ok_or("Basic credentials must be client_id:client_secret")?;
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded inside Basic.
    let id = form_decode(id);
    let secret = form_decode(secret);
    Ok(Some((id, secret)))
}

/// `application/x-www-form-urlencoded` decoding of one value: `+` is a space, `%XX` a byte. A raw
/// `&` or `=` is part of the value (a secret may contain them); undecodable text stays as sent.
fn form_decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .unwrap_or(spaced)
}

/// The bearer token of `Authorization: Bearer …`, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request declares a form-encoded body.
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert_eq!(a[..8], b[..8], "same process, same prefix");
    }

    #[test]
    fn slashes_collapse() {
        let request = Request::builder()
            .uri("//identity//token?a=b")
            .body(Body::empty())
            .unwrap();
        assert_eq!(collapse_slashes(request).uri(), "/identity/token?a=b");
    }

    #[test]
    fn basic_values_keep_raw_ampersands_and_equals_signs() {
        assert_eq!(form_decode("abc&v=x"), "abc&v=x");
        assert_eq!(form_decode("a=b&c"), "a=b&c");
        assert_eq!(form_decode("s%26t%3D+u"), "s&t= u");
        assert_eq!(form_decode("plain"), "plain");
        assert_eq!(
            form_decode("bad%ff"),
            "bad%ff",
            "invalid UTF-8 is kept as sent"
        );
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_gets_the_error_shape_of_its_surface() {
        use tower::ServiceExt;
        let slow = Router::new()
            .route(
                "/slow",
                axum::routing::any(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "too late"
                }),
            )
            .route("/fast", axum::routing::any(|| async { "in time" }))
            .layer(middleware::from_fn_with_state(
                Duration::from_millis(50),
                deadline,
            ));
        let call = |path: &str, grpc: bool| {
            let mut request = Request::builder().uri(path);
            if grpc {
                request = request.header(header::CONTENT_TYPE, "application/grpc");
            }
            slow.clone().oneshot(request.body(Body::empty()).unwrap())
        };

        let fast = call("/fast", false).await.unwrap();
        assert_eq!(fast.status(), StatusCode::OK);

        let json = call("/slow", false).await.unwrap();
        assert_eq!(json.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = json.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "request_timeout");
        assert_eq!(
            body["error"]["message"],
            "the request did not complete within 50 ms"
        );

        let grpc = call("/slow", true).await.unwrap();
        assert_eq!(
            grpc.status(),
            StatusCode::OK,
            "gRPC errors travel in trailers"
        );
        assert_eq!(grpc.headers()["grpc-status"], "14", "UNAVAILABLE");
    }

    #[test]
    fn basic_parsing() {
        use base64::Engine;
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(basic_credentials(&headers), Ok(None));
        let encoded = base64::engine::general_purpose::STANDARD.encode("bx:s%3Acret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Ok(Some(("bx".into(), "s:cret".into())))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers), Ok(None));
        assert_eq!(bearer_token(&headers), Some("abc"));
    }
}
