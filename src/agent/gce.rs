//! The GCE-format surface: `GET /` for detection and everything below `/computeMetadata/v1/`,
//! with the metadata server's rules (the `Metadata-Flavor` header both ways, 403 for proxied
//! requests, 301 for directories without their slash, ETags, `wait_for_change`).

use super::request::{self, Params, MAX_WAIT_SECONDS};
use super::tree::{self, Node};
use super::workload::{IdTokenError, Workload};
use super::AgentState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_core::json::ObjectWriter;

pub const PREFIX: &str = "/computeMetadata/v1/";

/// On every answer: `Metadata-Flavor: Google` (clients detect the server by it) and GCE's
/// `Server`. Proxied requests are refused before anything else (SSRF defence).
pub async fn gce_headers(request: Request, next: Next) -> Response {
    // The path (never the query) for the debug log; copied only when that log is on.
    let logged_path =
        tracing::enabled!(tracing::Level::DEBUG).then(|| request.uri().path().to_owned());
    let mut response = if request.headers().contains_key("x-forwarded-for") {
        text(
            StatusCode::FORBIDDEN,
            "Request had an X-Forwarded-For header and was refused: the metadata server answers only direct requests.\n",
        )
    } else {
        next.run(request).await
    };
    count_request(response.status());
    if let Some(path) = logged_path {
        tracing::debug!(
            path,
            status = response.status().as_u16(),
            "metadata request"
        );
    }
    let headers = response.headers_mut();
    headers.insert("metadata-flavor", HeaderValue::from_static("Google"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static("Metadata Server for VM"),
    );
    response
}

/// Counts an answer in `tessera_agent_requests_total`. The handles are made once, so the
/// token path pays one atomic add (and nothing when no admin port installed a recorder).
fn count_request(status: StatusCode) {
    use std::sync::OnceLock;
    const CODES: [&str; 8] = ["200", "304", "400", "403", "404", "405", "503", "other"];
    static COUNTERS: OnceLock<Vec<metrics::Counter>> = OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        CODES
            .iter()
            .map(|code| {
                metrics::counter!(tessera_server::metrics_names::AGENT_REQUESTS, "code" => *code)
            })
            .collect()
    });
    let index = CODES
        .iter()
        .position(|code| *code == status.as_str())
        .unwrap_or(CODES.len() - 1);
    if let Some(counter) = counters.get(index) {
        counter.increment(1);
    }
}

/// `GET /`: what `google-auth` pings to detect a metadata server.
pub async fn root() -> Response {
    text(StatusCode::OK, "computeMetadata/\n")
}

/// Everything below `/computeMetadata/`.
pub async fn metadata(
    State(state): State<Arc<AgentState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let path = request.uri().path();
    let query = request.uri().query().map(str::to_owned);
    let headers = request.headers();
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "Only GET is supported.\n");
    }
    if !flavor_ok(headers) {
        return text(
            StatusCode::FORBIDDEN,
            "Missing required header \"Metadata-Flavor: Google\" (or \"X-Google-Metadata-Request: True\").\n",
        );
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        // `/computeMetadata` and `/computeMetadata/v1`: directories without their slash.
        return match path {
            "/computeMetadata" | "/computeMetadata/" | "/computeMetadata/v1" => {
                redirect(PREFIX, query.as_deref())
            }
            _ => not_found(),
        };
    };
    let params = match Params::parse(query.as_deref()) {
        Ok(p) => p,
        Err(message) => return text(StatusCode::BAD_REQUEST, &(message + "\n")),
    };
    let Some(request::MetadataPath { segments, is_dir }) = request::MetadataPath::parse(rest)
    else {
        return not_found();
    };
    let workload = state.workload_for(peer.ip());

    // service-accounts/{default|email}/{token|identity}: answered from the cache.
    if let ["instance", "service-accounts", account, leaf @ ("token" | "identity")] =
        segments.as_slice()
    {
        if is_dir {
            return not_found();
        }
        let Some(workload) = workload else {
            return no_service_account(peer);
        };
        if !account_matches(workload, account) {
            return not_found();
        }
        return if *leaf == "token" {
            token(workload, &params)
        } else {
            identity(&state, workload, &params).await
        };
    }

    let in_accounts = segments.len() >= 2 && segments[..2] == ["instance", "service-accounts"];
    let tree = match state.tree_for(workload) {
        Some(tree) => tree,
        None if in_accounts => return not_reached_yet(),
        None => state.tree_for(None).unwrap_or_else(Node::dir),
    };
    if in_accounts && workload.is_none() {
        return no_service_account(peer);
    }
    let Some(node) = tree.find(&segments) else {
        return not_found();
    };
    match (node, is_dir) {
        (Node::Dir { .. }, false) => redirect(&format!("{path}/"), query.as_deref()),
        (Node::Leaf { .. } | Node::Dynamic, true) | (Node::Dynamic, false) => not_found(),
        _ if params.wait_for_change => {
            wait_for_change(&state, workload, &segments, &params, render(node, &params)).await
        }
        _ => render(node, &params),
    }
}

fn flavor_ok(headers: &HeaderMap) -> bool {
    let is = |name: &str, want: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case(want))
    };
    is("metadata-flavor", "Google") || is("x-google-metadata-request", "True")
}

fn account_matches(workload: &Workload, account: &str) -> bool {
    account == "default" || workload.info().is_some_and(|info| info.email == account)
}

fn no_service_account(peer: SocketAddr) -> Response {
    text(
        StatusCode::NOT_FOUND,
        &format!(
            "No service account is attached to this workload ({}).\n",
            peer.ip()
        ),
    )
}

/// `{"access_token", "expires_in", "token_type"}` with the true remaining lifetime.
fn token(workload: &Workload, params: &Params) -> Response {
    if let Some(scopes) = &params.scopes {
        if scopes.split(',').any(|s| s.trim().is_empty()) {
            return text(
                StatusCode::BAD_REQUEST,
                "scopes must be a comma-separated list of non-empty scopes\n",
            );
        }
    }
    let now = super::upstream::unix_now();
    let Some(cached) = workload.token(now) else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{}\n", workload.unavailable_reason()),
        );
    };
    let body = token_body(&cached.access_token, cached.expires_at - now);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The token answer's JSON, built in one allocation of the right size. Copying the token into a
/// `Value` and escaping it through `Display` (byte by byte through `fmt`, into a `format!` buffer
/// that grew as it went) took about 7 % of the agent's CPU under load; `ObjectWriter` writes a
/// token that needs no escaping as it is.
fn token_body(access_token: &str, expires_in: i64) -> String {
    ObjectWriter::with_capacity(access_token.len() + 72)
        .string("access_token", access_token)
        .number("expires_in", expires_in)
        .string("token_type", "Bearer")
        .finish()
}

/// `identity?audience=…[&format=full]`: the raw JWT, as text.
async fn identity(state: &AgentState, workload: &Workload, params: &Params) -> Response {
    let Some(audience) = params.audience.as_deref().filter(|a| !a.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "non-empty audience parameter required\n",
        );
    };
    let instance = state.compute_engine_claims();
    match workload
        .id_token(&state.shared, audience, params.full, &instance)
        .await
    {
        Ok(token) => text(StatusCode::OK, &token),
        Err(IdTokenError::NoToken) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("{}\n", workload.unavailable_reason()),
        ),
        Err(IdTokenError::Upstream(super::upstream::UpstreamError::Refused {
            status,
            message,
        })) => text(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            &format!("{message}\n"),
        ),
        Err(IdTokenError::Upstream(e)) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("{e}\n")),
    }
}

fn render(node: &Node, params: &Params) -> Response {
    let (body, json) = match node {
        Node::Leaf { text, json } => {
            if params.json == Some(true) {
                (json.to_string(), true)
            } else {
                (text.clone(), false)
            }
        }
        Node::Dir { .. } if params.recursive => {
            if params.json == Some(false) {
                (node.to_flat_text(), false)
            } else {
                (node.to_json().to_string(), true)
            }
        }
        Node::Dir { .. } => {
            let listing = node.listing();
            if params.json == Some(true) {
                let names: Vec<&str> = listing.lines().collect();
                (serde_json::json!(names).to_string(), true)
            } else {
                (listing, false)
            }
        }
        Node::Dynamic => return not_found(),
    };
    let etag = tree::etag(body.as_bytes());
    let content_type = if json {
        "application/json"
    } else {
        "application/text"
    };
    let mut response = (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// `wait_for_change=true`: answers at once if the value's ETag differs from `last_etag`, else
/// when the value changes (the config file is edited) or `timeout_sec` passes.
async fn wait_for_change(
    state: &AgentState,
    workload: Option<&Workload>,
    segments: &[&str],
    params: &Params,
    current: Response,
) -> Response {
    let etag_of = |r: &Response| {
        r.headers()
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let start_etag = etag_of(&current);
    if params.last_etag.is_some() && params.last_etag != start_etag {
        return current;
    }
    if current.status() != StatusCode::OK {
        return current;
    }
    let mut changes = state.metadata.clone();
    changes.mark_unchanged();
    let deadline = tokio::time::Instant::now()
        + Duration::from_secs(params.timeout_sec.unwrap_or(MAX_WAIT_SECONDS));
    loop {
        let changed = tokio::time::timeout_at(deadline, changes.changed()).await;
        changes.borrow_and_update();
        let tree = state.tree_for(workload).unwrap_or_else(Node::dir);
        let latest = match tree.find(segments) {
            Some(node) => render(node, params),
            None => not_found(),
        };
        if etag_of(&latest) != start_etag || !matches!(changed, Ok(Ok(()))) {
            return latest;
        }
    }
}

fn redirect(location: &str, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) if !q.is_empty() => format!("{location}?{q}"),
        _ => location.to_owned(),
    };
    let mut response = text(StatusCode::MOVED_PERMANENTLY, "");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn not_reached_yet() -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "The agent has not reached the server yet; try again shortly.\n",
    )
}

fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "Not found: no such metadata path.\n")
}

pub fn text(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/text"),
        )],
        body.to_owned(),
    )
        .into_response()
}

/// `google.compute_engine` of full-format ID tokens, from the instance attributes.
pub fn compute_engine_claims(attributes: &super::config::Attributes) -> Map<String, Value> {
    let mut claims = Map::new();
    let fields = [
        ("instance_id", &attributes.instance.id),
        ("instance_name", &attributes.instance.name),
        ("project_id", &attributes.project.id),
        ("project_number", &attributes.project.numeric_id),
        ("zone", &attributes.instance.zone),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            claims.insert(name.into(), Value::from(value.as_str()));
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the answer was before [`token_body`]: the reference for every kind of token.
    fn formatted(access_token: &str, expires_in: i64) -> String {
        format!(
            "{{\"access_token\":{},\"expires_in\":{},\"token_type\":\"Bearer\"}}",
            Value::from(access_token),
            expires_in
        )
    }

    #[test]
    fn the_token_body_is_the_json_it_always_was() {
        for (token, expires_in) in [
            ("eyJhbGciOiJFUzI1NiJ9.eyJpYW1faWQiOiJ4In0.c2ln-_", 3300),
            ("t1.9euelZq.Pw_x", 1),
            ("", 0),
            ("with \"quotes\" and \\ backslash", -5),
            ("control\u{1}\n\t\u{1f}chars", 42),
            ("del\u{7f} ü → 🙂", i64::MAX),
        ] {
            let body = token_body(token, expires_in);
            assert_eq!(body, formatted(token, expires_in));
            let parsed: Value = serde_json::from_str(&body).unwrap_or_default();
            assert_eq!(parsed["access_token"], token);
        }
    }
}
