//! What an operator watches: the content of `/metrics` (help and type of every family, build
//! and process facts, snapshot, signing keys, throttling, gRPC calls by status), the scope of
//! `--log-level`, and OpenTelemetry traces reaching a real OTLP/gRPC receiver.

use crate::harness::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tessera_server::yandex::proto::endpoint::api_endpoint_service_client::ApiEndpointServiceClient;
use tessera_server::yandex::proto::endpoint::ListApiEndpointsRequest;
use tessera_server::yandex::proto::iam::create_iam_token_request::Identity;
use tessera_server::yandex::proto::iam::iam_token_service_client::IamTokenServiceClient;
use tessera_server::yandex::proto::iam::CreateIamTokenRequest;

/// One metric family of the Prometheus text format.
#[derive(Debug, Default)]
pub struct Family {
    pub help: Option<String>,
    pub kind: Option<String>,
    /// `(labels, value)` of each sample (histograms: `_bucket`, `_sum`, `_count` included).
    pub samples: Vec<(BTreeMap<String, String>, f64)>,
}

/// A parsed `/metrics` page.
pub struct Metrics(pub BTreeMap<String, Family>);

impl Metrics {
    /// Parses the text format; panics (fails the test) on a line it cannot read.
    pub fn parse(text: &str) -> Metrics {
        let mut families: BTreeMap<String, Family> = BTreeMap::new();
        let mut kinds: BTreeMap<String, String> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
                families.entry(name.to_owned()).or_default().help = Some(help.to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
                families.entry(name.to_owned()).or_default().kind = Some(kind.to_owned());
                kinds.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            assert!(!line.starts_with('#'), "unknown comment line: {line}");
            let (series, value) = line.rsplit_once(' ').expect("sample value");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            // A histogram's samples belong to the family without the suffix.
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|base| kinds.get(*base).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            families
                .entry(family.to_owned())
                .or_default()
                .samples
                .push((labels, value));
        }
        Metrics(families)
    }

    /// The value of the sample of `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.0.get(name)?.samples.iter().find_map(|(have, value)| {
            labels
                .iter()
                .all(|(k, v)| have.get(*k).is_some_and(|h| h == v))
                .then_some(*value)
        })
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let end = after.find('"').expect("closing quote");
        labels.insert(
            key.trim_start_matches(',').to_owned(),
            after[..end].to_owned(),
        );
        rest = &after[end + 1..];
    }
    labels
}

/// Every family with samples has `# HELP` and `# TYPE`.
pub fn assert_described(metrics: &Metrics) {
    for (name, family) in &metrics.0 {
        if family.samples.is_empty() {
            continue;
        }
        assert!(
            family.help.as_deref().is_some_and(|h| !h.is_empty()),
            "{name} has no # HELP"
        );
        assert!(family.kind.is_some(), "{name} has no # TYPE");
    }
}

async fn scrape(url: &str) -> Metrics {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    Metrics::parse(&response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_describe_every_family_and_the_nodes_state() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // A failed API key puts the credential and the source address in the throttle table.
    server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", "tsk_not-a-key")])
        .await;
    // An admin write goes through the change feed.
    server
        .create(&admin, "service_accounts", json!({"name": "watched"}))
        .await;
    // gRPC: a call that fails at once (trailers-only) and one that succeeds (status in the
    // trailers after the body). HTTP says 200 for both.
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let failed = IamTokenServiceClient::new(channel.clone())
        .create(CreateIamTokenRequest {
            identity: Some(Identity::Jwt("not.a.jwt".into())),
        })
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unauthenticated, "{failed:?}");
    ApiEndpointServiceClient::new(channel)
        .list(ListApiEndpointsRequest::default())
        .await
        .unwrap();

    let metrics = scrape(&server.url).await;
    assert_described(&metrics);
    let value = |name: &str, labels: &[(&str, &str)]| {
        metrics
            .value(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {:?}", metrics.0.keys()))
    };
    assert_eq!(
        value(
            "tessera_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        metrics.0["tessera_http_requests_total"].kind.as_deref(),
        Some("counter")
    );
    assert_eq!(
        metrics.0["tessera_http_request_duration_seconds"]
            .kind
            .as_deref(),
        Some("histogram")
    );
    // The process.
    assert!(value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(value("process_open_fds", &[]) >= 3.0);
    assert!(value("process_max_fds", &[]) >= value("process_open_fds", &[]));
    // A counter of whole seconds (the metrics crate's counters are integers).
    assert!(value("process_cpu_seconds_total", &[]) >= 0.0);
    assert_eq!(
        metrics.0["process_cpu_seconds_total"].kind.as_deref(),
        Some("counter")
    );
    let started = value("process_start_time_seconds", &[]);
    assert!((unix_now() as f64 - started).abs() < 300.0, "{started}");
    // The snapshot and the change feed.
    assert!(value("tessera_snapshot_age_seconds", &[]) <= 2.0);
    assert_eq!(value("tessera_store_up", &[]), 1.0);
    assert!(value("tessera_change_feed_applied_total", &[]) >= 1.0);
    let lag = value("tessera_change_feed_lag_seconds", &[]);
    assert!((0.0..=2.0).contains(&lag), "{lag}");
    // Signing keys: one active per use, young, with the next rotation ahead.
    for key_use in ["jwt", "yandex-iam"] {
        assert_eq!(
            value(
                "tessera_signing_keys",
                &[("use", key_use), ("state", "active")]
            ),
            1.0
        );
        assert!(value("tessera_signing_key_age_seconds", &[("use", key_use)]) < 300.0);
        let next = value(
            "tessera_signing_key_next_rotation_timestamp_seconds",
            &[("use", key_use)],
        );
        assert!(next > unix_now() as f64 + 86_400.0, "{key_use}: {next}");
    }
    // Throttling: the failed API key and the malformed JWT of the failing gRPC call (every
    // secret check counts) and their source address are tracked, nothing is locked.
    assert_eq!(
        value("tessera_throttle_tracked_keys", &[("class", "credential")]),
        2.0
    );
    assert_eq!(
        value("tessera_throttle_tracked_keys", &[("class", "address")]),
        1.0
    );
    assert_eq!(
        value("tessera_throttle_locked_keys", &[("class", "credential")]),
        0.0
    );
    // gRPC calls by method and gRPC status.
    assert_eq!(
        value(
            "tessera_grpc_requests_total",
            &[
                ("method", "/yandex.cloud.iam.v1.IamTokenService/Create"),
                ("code", "UNAUTHENTICATED")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            "tessera_grpc_requests_total",
            &[
                ("method", "/yandex.cloud.endpoint.ApiEndpointService/List"),
                ("code", "OK")
            ]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_calls_to_unknown_methods_share_one_label() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    // A method the service does not have, called by path: tonic answers UNIMPLEMENTED.
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let path = "/yandex.cloud.iam.v1.IamTokenService/NoSuchMethod-12345"
        .parse()
        .unwrap();
    let status = client
        .unary::<_, (), _>(
            tonic::Request::new(()),
            path,
            tonic_prost::ProstCodec::<(), ()>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    let metrics = scrape(&server.url).await;
    assert_eq!(
        metrics.value(
            "tessera_grpc_requests_total",
            &[("method", "other"), ("code", "UNIMPLEMENTED")]
        ),
        Some(1.0)
    );
    let text = server.metrics().await;
    assert!(
        !text.contains("NoSuchMethod-12345"),
        "a caller's path never becomes a label"
    );
}

#[tokio::test]
async fn debug_level_is_tesseras_own_debug() {
    let server = TestServer::start_with(&["--log-level", "debug"], &[]).await;
    let (_, apikey) = server.service_account_with_key().await;
    server.token(&apikey).await;
    let logs = server.stderr.lock().unwrap().clone();
    let targets: Vec<String> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["level"] == "DEBUG")
        .map(|v| v["target"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        targets.iter().any(|t| t.starts_with("tessera_server")),
        "our debug lines are there: {targets:?}"
    );
    let foreign: Vec<&String> = targets
        .iter()
        .filter(|t| !t.starts_with("tessera"))
        .collect();
    assert!(
        foreign.is_empty(),
        "no dependency logs at debug: {foreign:?}"
    );

    // A filter is taken as written: here it asks for a dependency's debug too.
    let server = TestServer::start_with(&["--log-level", "info,sqlx=debug"], &[]).await;
    server.service_account_with_key().await;
    let logs = server.stderr.lock().unwrap().join("\n");
    assert!(
        logs.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(
                |v| v["level"] == "DEBUG" && v["target"].as_str().unwrap_or("").starts_with("sqlx")
            ),
        "sqlx=debug shows sqlx's debug lines"
    );
}

/// Regression: with the log filter as a per-layer filter, raising one crate to debug silenced
/// every later line once the PostgreSQL driver had connected (so this fails on PostgreSQL
/// only; on SQLite it passes either way).
#[tokio::test]
async fn a_filter_for_one_crate_keeps_every_other_line() {
    // The harness waits for "Tessera is serving", an info line after the store is open.
    let server = TestServer::start_with(&["--log-level", "info,tessera_store=debug"], &[]).await;
    let (_, apikey) = server.service_account_with_key().await;
    server.token(&apikey).await;
    let logs = server.stderr.lock().unwrap().join("\n");
    assert!(logs.contains("created signing key"), "{logs}");
    assert!(
        logs.contains("schema is current"),
        "the store's debug line: {logs}"
    );
}

#[test]
fn a_bad_log_level_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(binary())
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--log-level", "loud"])
        .env_remove("TESSERA_CONFIG")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("log level \"loud\""), "{stderr}");
}

mod otlp {
    //! A minimal OTLP/gRPC trace receiver, as a collector would run it.
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    pub struct Receiver {
        pub requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    }

    #[tonic::async_trait]
    impl TraceService for Receiver {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            self.requests.lock().unwrap().push(request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            }))
        }
    }

    /// Starts the receiver on a free port; returns its endpoint URL.
    pub async fn start(receiver: Receiver) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver))
                .serve_with_incoming(incoming),
        );
        format!("http://{address}")
    }
}

/// One span as the receiver got it.
#[derive(Debug)]
struct ExportedSpan {
    service: String,
    name: String,
    attributes: BTreeMap<String, String>,
    trace_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// The spans of every export received, flattened.
fn spans(
    requests: &[opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest],
) -> Vec<ExportedSpan> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let text = |value: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match value
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    };
    let mut all = Vec::new();
    for request in requests {
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
                .map(|a| text(&a.value))
                .unwrap_or_default();
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|a| (a.key.clone(), text(&a.value)))
                        .collect();
                    all.push(ExportedSpan {
                        service: service.clone(),
                        name: span.name.clone(),
                        attributes,
                        trace_id: span.trace_id.clone(),
                        parent_span_id: span.parent_span_id.clone(),
                    });
                }
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traces_reach_an_otlp_receiver() {
    let receiver = otlp::Receiver::default();
    let endpoint = otlp::start(receiver.clone()).await;
    let server = TestServer::start_with(&["--otlp-endpoint", &endpoint], &[]).await;
    let admin = server.admin_token().await;
    let sa = server
        .create(&admin, "service_accounts", json!({"name": "traced"}))
        .await;
    assert!(sa["id"].is_string());

    // The batch exporter sends every second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let all = spans(&receiver.requests.lock().unwrap());
        let has = |name: &str| all.iter().any(|span| span.name.starts_with(name));
        if has("POST /identity/token") && has("grant apikey") && has("store.write") {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "spans did not arrive: {:?}\n{}",
            all.iter().map(|span| &span.name).collect::<Vec<_>>(),
            server.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let token_request = found
        .iter()
        .find(|span| span.name == "POST /identity/token")
        .unwrap();
    assert_eq!(token_request.service, "tessera", "service.name");
    assert_eq!(token_request.attributes["http.response.status_code"], "200");
    assert_eq!(token_request.attributes["http.route"], "/identity/token");
    // The grant is a child of a token request, in its trace.
    let grant = found
        .iter()
        .find(|span| span.name == "grant apikey")
        .unwrap();
    assert!(
        !grant.parent_span_id.is_empty(),
        "the grant span has a parent"
    );
    assert!(
        found
            .iter()
            .any(|span| span.name == "POST /identity/token" && span.trace_id == grant.trace_id),
        "the grant is in a token request's trace"
    );
    let write = found
        .iter()
        .find(|span| {
            span.name == "store.write"
                && span.attributes.get("tessera.kind").map(String::as_str)
                    == Some("service_account")
        })
        .unwrap_or_else(|| panic!("no store.write of the service account: {found:?}"));
    assert_eq!(write.attributes["db.operation"], "create");
    // Spans carry no secrets: the admin API key never appears in any attribute.
    let everything = format!("{found:?}");
    assert!(!everything.contains(ADMIN_KEY));
    // Traces stay out of the log.
    assert!(!server.logs().contains("tessera_trace"));
}
