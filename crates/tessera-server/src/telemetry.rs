//! Logs (text or JSON, via `tracing`), optional OpenTelemetry traces, and the Prometheus
//! recorder. Shared by `tessera serve` and `tessera agent`, so both take the same log settings.
//!
//! A bare level (`--log-level debug`) applies to Tessera's own crates only; dependencies stay
//! at `info` (or the level itself when it is quieter), so `debug` does not drown the log in
//! HTTP/2 frames and SQL. A filter with `=` or `,` is used as written.
//!
//! Traces: the spans worth exporting (the request, the grant, the store write) are made under
//! the target [`TRACE_TARGET`]. Without an OTLP endpoint the filter turns that target off, so
//! every such span is disabled at its call site and costs one cached interest check: nothing is
//! allocated or recorded on the token path. With one, the log lines inside a span name it.
//!
//! One global filter, no per-layer filters: with the log filter as a per-layer filter, the log
//! went silent after the first PostgreSQL connection whenever one crate was raised to `debug`
//! (`info,tessera_store=debug`): every later event was dropped (the e2e test
//! `observability::a_filter_for_one_crate_keeps_every_other_line` catches it on PostgreSQL).

use crate::metrics_names::{self as names, Kind};
use anyhow::{bail, Context};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// How log lines are written: human-readable text or one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(value: &str) -> anyhow::Result<LogFormat> {
        match value {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => bail!("log format {other:?} is not one of text, json"),
        }
    }
}

/// The `tracing` target of the spans exported as OpenTelemetry traces.
pub use tessera_store::TRACE_TARGET;

/// Tessera's own crates: the targets a bare `--log-level` applies to. `tessera` is a prefix of
/// every one of them (filters match targets by prefix) but is listed for the binary's crate.
const OWN_TARGETS: &str = "tessera";

/// How a process logs and traces.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: LogFormat,
    /// A level (`debug`) or a filter (`info,tessera_server=debug`).
    pub level: String,
    /// Where to send OTLP traces (gRPC, plaintext), or `None` for no traces.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported spans (`tessera`, `tessera-agent`).
    pub service_name: &'static str,
}

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes what is still buffered.
#[must_use = "dropping the guard at once stops trace export"]
pub struct Telemetry {
    tracer: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (waits at most a few seconds) and stops the exporter.
    pub async fn shutdown(self) {
        if let Some(provider) = self.tracer {
            let flushed = tokio::task::spawn_blocking(move || provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!(error = %e, "could not flush the last traces");
            }
        }
    }
}

/// The log filter for `level`: a bare level is scoped to Tessera's crates (see the module doc).
/// Spans of [`TRACE_TARGET`] are off.
pub fn log_filter(level: &str) -> anyhow::Result<EnvFilter> {
    filter(level, false)
}

/// The process's one filter: `level` (see [`log_filter`]), with [`TRACE_TARGET`] on at `info`
/// when traces are exported and off otherwise.
fn filter(level: &str, traces: bool) -> anyhow::Result<EnvFilter> {
    let trace = if traces { "info" } else { "off" };
    let level = level.trim();
    if level.is_empty() {
        bail!("log level must not be empty");
    }
    let directives = if level.contains('=') || level.contains(',') {
        format!("{level},{TRACE_TARGET}={trace}")
    } else {
        let own: LevelFilter = level.parse().map_err(|_| {
            anyhow::anyhow!(
                "log level {level:?} is not one of off, error, warn, info, debug, trace, \
                 nor a filter such as info,tessera_server=debug"
            )
        })?;
        // Dependencies log at info at most: their debug output is for their own developers.
        let dependencies = own.min(LevelFilter::INFO);
        format!("{dependencies},{OWN_TARGETS}={own},{TRACE_TARGET}={trace}")
    };
    EnvFilter::builder()
        .parse(&directives)
        .with_context(|| format!("log level {level:?} is not a valid filter"))
}

/// Installs the log subscriber (and, with an OTLP endpoint, the trace exporter) for this
/// process. A second call (tests) keeps the first subscriber.
pub fn init(settings: &Settings) -> anyhow::Result<Telemetry> {
    let filter = filter(&settings.level, settings.otlp_endpoint.is_some())?;
    let mut layers = vec![log_layer(settings.format)];
    let mut tracer = None;
    if let Some(endpoint) = &settings.otlp_endpoint {
        let (provider, layer) = otlp_layer(endpoint, settings.service_name)?;
        tracer = Some(provider);
        layers.push(layer);
    }
    let _ = Registry::default().with(filter).with(layers).try_init();
    if let Some(endpoint) = &settings.otlp_endpoint {
        tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
    }
    Ok(Telemetry { tracer })
}

fn log_layer(format: LogFormat) -> BoxedLayer {
    // Colour only for a person at a terminal, never into files or pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => layer.json().flatten_event(true).boxed(),
        LogFormat::Text => layer.boxed(),
    }
}

/// The subscriber under the layers: the registry behind the one filter.
type Filtered = Layered<EnvFilter, Registry>;
type BoxedLayer = Box<dyn Layer<Filtered> + Send + Sync>;

/// The OTLP/gRPC exporter (batched on a thread of its own, flushed every second) and the layer
/// that turns spans into OpenTelemetry spans (the filter lets [`TRACE_TARGET`]'s through, and
/// another crate's only when a filter asks for them).
fn otlp_layer(
    endpoint: &str,
    service_name: &'static str,
) -> anyhow::Result<(opentelemetry_sdk::trace::SdkTracerProvider, BoxedLayer)> {
    use opentelemetry::trace::TracerProvider;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(std::time::Duration::from_secs(5))
        .build()
        .with_context(|| format!("cannot set up the OTLP exporter for {endpoint}"))?;
    let batches = BatchConfigBuilder::default()
        .with_scheduled_delay(std::time::Duration::from_secs(1))
        .build();
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(batches)
        .build();
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name)
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer(service_name);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Ok((provider, layer))
}

/// Installs the Prometheus recorder once per process, describes every metric (`# HELP`,
/// `# TYPE`) and sets `build_info` (`tessera_build_info`, or the agent's); returns the handle.
pub fn init_metrics(build_info: &'static str) -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ];
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(names::HTTP_DURATION.to_owned()), &buckets)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()?;
            for (name, kind, help) in names::DESCRIPTIONS {
                match kind {
                    Kind::Counter => metrics::describe_counter!(*name, *help),
                    Kind::Gauge => metrics::describe_gauge!(*name, *help),
                    Kind::Histogram => metrics::describe_histogram!(*name, *help),
                }
            }
            metrics::gauge!(build_info, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            spawn_upkeep(handle.clone());
            Some(handle)
        })
        .clone()
}

/// How often the recorder's histograms are drained into their buckets.
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// `install_recorder` leaves upkeep to the caller: until it runs (or a scrape renders), every
/// histogram sample (one per request: a value and an `Instant`, 24 bytes) is kept in memory, so a
/// server nobody scrapes would grow by that much a request for ever. A thread of its own drains them every few seconds, whatever
/// runtime (if any) the caller has.
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics upkeep thread not started; histograms drain on scrape only");
    }
}

/// Reads the process's CPU time, memory, threads and file descriptors into the `process_*`
/// gauges; called on every scrape of `/metrics`.
pub fn collect_process_metrics() {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR
        .get_or_init(metrics_process::Collector::default)
        .collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(filter: &str, target_level: &str) -> bool {
        // `EnvFilter` answers per callsite; a subscriber with only this filter tells.
        let subscriber = Registry::default()
            .with(log_filter(filter).unwrap())
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
        tracing::subscriber::with_default(subscriber, || match target_level {
            "own_debug" => tracing::enabled!(target: "tessera_server::http", tracing::Level::DEBUG),
            "dep_debug" => tracing::enabled!(target: "h2::codec", tracing::Level::DEBUG),
            "dep_info" => tracing::enabled!(target: "sqlx::query", tracing::Level::INFO),
            "dep_warn" => tracing::enabled!(target: "hyper", tracing::Level::WARN),
            "own_info" => tracing::enabled!(target: "tessera::agent", tracing::Level::INFO),
            _ => unreachable!(),
        })
    }

    #[test]
    fn a_bare_level_is_tesseras_own() {
        assert!(enabled("debug", "own_debug"));
        assert!(!enabled("debug", "dep_debug"), "dependencies stay at info");
        assert!(enabled("debug", "dep_info"));
        assert!(!enabled("warn", "own_info"));
        assert!(!enabled("warn", "dep_info"), "quieter levels apply to all");
        assert!(enabled("warn", "dep_warn"));
        // A filter is taken as written.
        assert!(enabled("debug,h2=debug", "dep_debug"));
        assert!(enabled("info,tessera_server=debug", "own_debug"));
    }

    #[test]
    fn bad_levels_are_explained() {
        let error = log_filter("loud").unwrap_err().to_string();
        assert!(error.contains("\"loud\""), "{error}");
        assert!(log_filter("").is_err());
        assert!(log_filter("info,[=").is_err());
    }

    #[test]
    fn trace_spans_are_disabled_without_an_exporter() {
        for (traces, disabled) in [(false, true), (true, false)] {
            let subscriber = Registry::default()
                .with(filter("trace", traces).unwrap())
                .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
            tracing::subscriber::with_default(subscriber, || {
                let span = tracing::info_span!(target: TRACE_TARGET, "request");
                assert_eq!(span.is_disabled(), disabled, "traces: {traces}");
                let logged = tracing::info_span!(target: "tessera_server::http", "other");
                assert!(!logged.is_disabled());
            });
        }
    }
}
