//! Names of the Prometheus metrics and their help texts, in one place so that dashboards,
//! alert rules and code agree. [`DESCRIPTIONS`] is what `# HELP` and `# TYPE` are rendered from;
//! tests check that every name here has exactly one description, and that the Grafana dashboard
//! and the alert rules in `deploy/` use no metric that is not here.

/// What kind of series a metric is (its `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

// --- The server ------------------------------------------------------------------------------

pub const BUILD_INFO: &str = "tessera_build_info";
pub const HTTP_REQUESTS: &str = "tessera_http_requests_total";
pub const HTTP_DURATION: &str = "tessera_http_request_duration_seconds";
pub const GRPC_REQUESTS: &str = "tessera_grpc_requests_total";
pub const TOKENS_ISSUED: &str = "tessera_tokens_issued_total";
pub const ERRORS: &str = "tessera_errors_total";
pub const SNAPSHOT_API_KEYS: &str = "tessera_snapshot_api_keys";
pub const SNAPSHOT_SEQ: &str = "tessera_snapshot_change_seq";
pub const SNAPSHOT_AGE: &str = "tessera_snapshot_age_seconds";
pub const STORE_UP: &str = "tessera_store_up";
pub const CHANGE_FEED_LAG: &str = "tessera_change_feed_lag_seconds";
pub const CHANGES_APPLIED: &str = "tessera_change_feed_applied_total";
pub const SIGNING_KEYS: &str = "tessera_signing_keys";
pub const SIGNING_KEY_AGE: &str = "tessera_signing_key_age_seconds";
pub const SIGNING_KEY_NEXT_ROTATION: &str = "tessera_signing_key_next_rotation_timestamp_seconds";
/// Token requests delayed or refused by brute-force throttling (labels `key`, `action`).
pub const THROTTLED: &str = "tessera_throttled_total";
pub const THROTTLE_TRACKED: &str = "tessera_throttle_tracked_keys";
pub const THROTTLE_LOCKED: &str = "tessera_throttle_locked_keys";

// --- The metadata agent ----------------------------------------------------------------------

pub const AGENT_BUILD_INFO: &str = "tessera_agent_build_info";
pub const AGENT_REQUESTS: &str = "tessera_agent_requests_total";
pub const AGENT_TOKEN_REFRESHES: &str = "tessera_agent_token_refreshes_total";
pub const AGENT_TOKEN_EXPIRES_IN: &str = "tessera_agent_token_expires_in_seconds";
pub const AGENT_WORKLOADS_READY: &str = "tessera_agent_workloads_ready";
pub const AGENT_WORKLOADS: &str = "tessera_agent_workloads";

// --- Both: the process (names as every Prometheus client library uses them) -------------------

pub const PROCESS_CPU: &str = "process_cpu_seconds_total";
pub const PROCESS_RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY: &str = "process_virtual_memory_bytes";
pub const PROCESS_VIRTUAL_MEMORY_MAX: &str = "process_virtual_memory_max_bytes";
pub const PROCESS_OPEN_FDS: &str = "process_open_fds";
pub const PROCESS_MAX_FDS: &str = "process_max_fds";
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";
pub const PROCESS_THREADS: &str = "process_threads";

/// Every metric with its kind and help text.
pub const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (BUILD_INFO, Kind::Gauge, "Always 1; the labels say which Tessera version runs."),
    (HTTP_REQUESTS, Kind::Counter, "HTTP requests answered, by route, method and HTTP status (gRPC calls count here with HTTP status 200; see tessera_grpc_requests_total)."),
    (HTTP_DURATION, Kind::Histogram, "Time to answer an HTTP request, by route."),
    (GRPC_REQUESTS, Kind::Counter, "gRPC calls answered, by method (/package.Service/Method) and gRPC status code."),
    (TOKENS_ISSUED, Kind::Counter, "Tokens issued, by grant."),
    (ERRORS, Kind::Counter, "Error answers, by surface and error code."),
    (SNAPSHOT_API_KEYS, Kind::Gauge, "API keys in this node's in-memory snapshot."),
    (SNAPSHOT_SEQ, Kind::Gauge, "The change-feed position this node's snapshot reflects."),
    (SNAPSHOT_AGE, Kind::Gauge, "Seconds since this node's snapshot last caught up with the store (the node refuses tokens past --max-staleness)."),
    (STORE_UP, Kind::Gauge, "1 while the last read of the change feed succeeded, 0 while the store is unreachable."),
    (CHANGE_FEED_LAG, Kind::Gauge, "Seconds from the write of the oldest change in the last applied batch to its arrival in this node's snapshot."),
    (CHANGES_APPLIED, Kind::Counter, "Changes from the store's change feed applied to this node's snapshot."),
    (SIGNING_KEYS, Kind::Gauge, "Signing keys in the snapshot, by use (jwt, yandex-iam) and state (next, active, retired)."),
    (SIGNING_KEY_AGE, Kind::Gauge, "Age in seconds of the signing key that signs new tokens, by use."),
    (SIGNING_KEY_NEXT_ROTATION, Kind::Gauge, "When the next rotation step (publishing a successor or promoting it) is due, as a Unix time, by use; in the past means overdue."),
    (THROTTLED, Kind::Counter, "Credential checks delayed or refused by brute-force throttling, by key kind and action."),
    (THROTTLE_TRACKED, Kind::Gauge, "Keys (credentials or source addresses) with recent failures in this node's throttle table, by class."),
    (THROTTLE_LOCKED, Kind::Gauge, "Keys (credentials or source addresses) locked by throttling right now, by class."),
    (AGENT_BUILD_INFO, Kind::Gauge, "Always 1; the labels say which Tessera version the agent runs."),
    (AGENT_REQUESTS, Kind::Counter, "Metadata requests answered by the agent, by HTTP status."),
    (AGENT_TOKEN_REFRESHES, Kind::Counter, "Token refreshes from the server, by outcome (ok, unavailable, tls, refused)."),
    (AGENT_TOKEN_EXPIRES_IN, Kind::Gauge, "Seconds until the cached token of each workload expires (absent: none yet)."),
    (AGENT_WORKLOADS_READY, Kind::Gauge, "Workloads whose token the agent can serve now."),
    (AGENT_WORKLOADS, Kind::Gauge, "Workloads the agent serves."),
    (PROCESS_CPU, Kind::Counter, "User and system CPU time of the process, in whole seconds."),
    (PROCESS_RESIDENT_MEMORY, Kind::Gauge, "Resident memory of the process, in bytes."),
    (PROCESS_VIRTUAL_MEMORY, Kind::Gauge, "Virtual memory of the process, in bytes."),
    (PROCESS_VIRTUAL_MEMORY_MAX, Kind::Gauge, "Limit of the process's virtual memory, in bytes (0: unlimited)."),
    (PROCESS_OPEN_FDS, Kind::Gauge, "Open file descriptors of the process."),
    (PROCESS_MAX_FDS, Kind::Gauge, "Limit of open file descriptors of the process."),
    (PROCESS_START_TIME, Kind::Gauge, "Start time of the process, as a Unix time."),
    (PROCESS_THREADS, Kind::Gauge, "Threads of the process."),
];

/// A counter series with fixed labels, registered once per thread and reused.
struct CachedCounter {
    name: &'static str,
    labels: Vec<(&'static str, &'static str)>,
    counter: metrics::Counter,
}

thread_local! {
    static COUNTERS: std::cell::RefCell<Vec<CachedCounter>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Adds one to the counter `name` with these labels (static names and values). The
/// `counter!` macro builds a key and looks it up in the recorder on every call (~1,000
/// instructions a grant); the series of the token path are few (a grant label, a gRPC method
/// and code), so each thread keeps its handles in a short list. The handles are the global
/// recorder's, which `serve` installs before it answers anything (as `router::record_request`
/// relies on too).
pub fn increment(name: &'static str, labels: &[(&'static str, &'static str)]) {
    COUNTERS.with_borrow_mut(|cache| {
        if let Some(cached) = cache.iter().find(|c| c.name == name && c.labels == labels) {
            cached.counter.increment(1);
            return;
        }
        let metric_labels: Vec<metrics::Label> = labels
            .iter()
            .map(|&(key, value)| metrics::Label::from_static_parts(key, value))
            .collect();
        let counter = metrics::counter!(name, metric_labels);
        counter.increment(1);
        cache.push(CachedCounter {
            name,
            labels: labels.to_vec(),
            counter,
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The metric names an expression or document mentions (`tessera_…`, `process_…`), with a
    /// histogram's `_bucket`, `_sum` and `_count` series reduced to the histogram.
    fn names_in(text: &str) -> Vec<String> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        for prefix in ["tessera_", "process_"] {
            let mut from = 0;
            while let Some(at) = text[from..].find(prefix).map(|i| i + from) {
                let starts_word =
                    at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
                let end = text[at..]
                    .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                    .map_or(text.len(), |i| i + at);
                if starts_word {
                    let mut name = &text[at..end];
                    for suffix in ["_bucket", "_sum", "_count"] {
                        if let Some(base) = name.strip_suffix(suffix) {
                            if DESCRIPTIONS
                                .iter()
                                .any(|(n, k, _)| *n == base && *k == Kind::Histogram)
                            {
                                name = base;
                            }
                        }
                    }
                    found.push(name.to_owned());
                }
                from = end;
            }
        }
        found
    }

    fn assert_known(what: &str, names: &[String]) {
        for name in names {
            assert!(
                DESCRIPTIONS.iter().any(|(n, _, _)| n == name),
                "{what} uses {name}, which Tessera does not export"
            );
        }
    }

    #[test]
    fn the_dashboard_uses_only_exported_metrics() {
        let text = include_str!("../../../deploy/grafana/tessera.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).unwrap();
        let panels = dashboard["panels"].as_array().unwrap();
        let mut exprs = Vec::new();
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{} has no query", panel["title"]);
            for target in targets {
                let expr = target["expr"].as_str().unwrap();
                assert!(!names_in(expr).is_empty(), "{expr}");
                exprs.push(expr.to_owned());
            }
        }
        let used = names_in(&exprs.join("\n"));
        assert_known("the dashboard", &used);
        // What an operator looks at first is on it.
        for wanted in [
            TOKENS_ISSUED,
            HTTP_DURATION,
            GRPC_REQUESTS,
            SNAPSHOT_AGE,
            SIGNING_KEY_NEXT_ROTATION,
            THROTTLED,
            PROCESS_RESIDENT_MEMORY,
            AGENT_WORKLOADS_READY,
        ] {
            assert!(
                used.iter().any(|n| n == wanted),
                "the dashboard lacks {wanted}"
            );
        }
    }

    #[test]
    fn the_alert_rules_use_only_exported_metrics() {
        let rules = include_str!("../../../deploy/prometheus/tessera-rules.yml");
        let expressions: String = rules
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| !l.contains("summary:") && !l.contains("description:"))
            .collect::<Vec<_>>()
            .join("\n");
        let used = names_in(&expressions);
        assert_known("the alert rules", &used);
        for wanted in [
            SNAPSHOT_AGE,
            SIGNING_KEY_NEXT_ROTATION,
            HTTP_REQUESTS,
            THROTTLED,
        ] {
            assert!(used.iter().any(|n| n == wanted), "no alert on {wanted}");
        }
        let tests = include_str!("../../../deploy/prometheus/tessera-rules.test.yml");
        assert_known("the alert rule tests", &names_in(tests));
    }

    #[test]
    fn names_are_found_in_expressions() {
        assert_eq!(
            names_in("histogram_quantile(0.99, rate(tessera_http_request_duration_seconds_bucket[5m])) + process_open_fds"),
            vec!["tessera_http_request_duration_seconds", "process_open_fds"]
        );
        assert_eq!(names_in("my_tessera_x"), Vec::<String>::new());
    }

    #[test]
    fn every_name_is_described_once_and_well_formed() {
        // Every `pub const … &str` in this file is a metric name.
        let source = include_str!("metrics_names.rs");
        let consts: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter(|l| l.contains(": &str = \""))
            .filter_map(|l| l.split('"').nth(1))
            .collect();
        assert!(consts.len() > 20, "{consts:?}");
        for name in &consts {
            let n = DESCRIPTIONS.iter().filter(|(d, _, _)| d == name).count();
            assert_eq!(n, 1, "{name} must be described exactly once");
        }
        assert_eq!(
            consts.len(),
            DESCRIPTIONS.len(),
            "a description without a name"
        );
        for (name, kind, help) in DESCRIPTIONS {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert_eq!(
                name.ends_with("_total"),
                *kind == Kind::Counter,
                "{name}: counters and only counters end in _total"
            );
            assert!(!help.is_empty() && !help.contains('\n'), "{name}");
        }
    }
}
