//! The application: every surface's router under the layers every request passes through.
//!
//! Order, outermost first: slash normalisation (before routing, so `//identity/token` from the
//! IBM Python SDK reaches its route; see [`crate::http::collapse_slashes`]) → request context,
//! metrics and access log → panic guard → deadline → the surface routers. Each surface maps its
//! own errors; the layers here only produce a generic error for panics, deadlines and unknown
//! paths.

use crate::http::{generic_error, PeerAddr, RequestContext};
use crate::metrics_names as names;
use crate::state::AppState;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use std::time::{Duration, Instant};

/// Builds the whole application: every surface's routes under the shared layers.
pub fn app(state: AppState) -> Router {
    // gRPC services are routers of their own (tonic), so the surface routers get their state
    // first and the gRPC router is merged in after; the layers then wrap both.
    let router = Router::new();
    // The admin web console, when built in.
    #[cfg(feature = "console")]
    let router = router.merge(crate::console::router(&state));
    router
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
        peer: request
            .extensions()
            .get::<PeerAddr>()
            .map(|PeerAddr(addr)| addr.ip()),
    };
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
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
    record_request(route, &method, status, elapsed);
    tracing::debug!(request_id = %ctx.id, %method, route, status, micros = elapsed.as_micros() as u64, "request");
    response
}

/// The label of a request's method: the standard methods by name, any other as `other`, so a
/// client inventing methods cannot add metric series (and memory) without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// One route's request metrics: its duration histogram and its counters by method and status.
struct RouteMetrics {
    duration: metrics::Histogram,
    requests: Vec<(&'static str, u16, metrics::Counter)>,
}

thread_local! {
    /// The handles of the request metrics, registered once per worker thread and route, method
    /// and status (all bounded: route templates, [`method_label`], status codes). Building the
    /// labelled keys and looking them up in the recorder on every request cost more than the
    /// token answer's own JSON. The handles are the recorder's, so every thread counts into the
    /// same series.
    static ROUTE_METRICS: std::cell::RefCell<std::collections::HashMap<String, RouteMetrics>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Counts a request and records its duration under its route, method and status.
fn record_request(route: &str, method: &Method, status: u16, elapsed: Duration) {
    let method = method_label(method);
    ROUTE_METRICS.with_borrow_mut(|cache| {
        let metrics = match cache.get_mut(route) {
            Some(metrics) => metrics,
            None => cache.entry(route.to_owned()).or_insert_with(|| RouteMetrics {
                duration: metrics::histogram!(names::HTTP_DURATION, "route" => route.to_owned()),
                requests: Vec::new(),
            }),
        };
        metrics.duration.record(elapsed.as_secs_f64());
        let counter = match metrics
            .requests
            .iter()
            .position(|(m, s, _)| *m == method && *s == status)
        {
            Some(index) => &metrics.requests[index].2,
            None => {
                let counter = metrics::counter!(names::HTTP_REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status.to_string());
                metrics.requests.push((method, status, counter));
                &metrics.requests[metrics.requests.len() - 1].2
            }
        };
        counter.increment(1);
    });
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;

    #[test]
    fn request_ids_are_unique_and_fixed_width() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert_eq!(a[..8], b[..8], "same process, same prefix");
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
}
