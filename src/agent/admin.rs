//! The agent's operations endpoints, on an address of their own (`--admin-listen`), never on the
//! metadata port: `/healthz` (the process answers), `/readyz` (every workload has a token it may
//! serve now) and `/metrics` (Prometheus text format, with `# HELP` and `# TYPE`).
//!
//! Workloads reach the metadata port; the admin port is for the host's operator and its
//! monitoring. Neither says anything secret: tokens never appear, workloads are named by
//! service account id and source network.

use super::upstream::unix_now;
use super::AgentState;
use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tessera_server::metrics_names as names;

/// A bound admin listener, not serving yet.
pub struct Admin {
    listener: tokio::net::TcpListener,
    app: Router,
}

#[derive(Clone)]
struct AdminState {
    agent: Arc<AgentState>,
    metrics: Option<PrometheusHandle>,
}

impl Admin {
    /// Installs the metrics recorder, before anything records: call it first.
    pub fn install_metrics() -> Option<PrometheusHandle> {
        tessera_server::telemetry::init_metrics(names::AGENT_BUILD_INFO)
    }

    /// Binds `address`, to serve `metrics` (from [`Admin::install_metrics`]) and `agent`'s state.
    pub async fn bind(
        address: SocketAddr,
        agent: Arc<AgentState>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Admin> {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (--admin-listen)"))?;
        let local = listener.local_addr()?;
        // Tests and scripts wait for this line to learn the port of `--admin-listen …:0`.
        tracing::info!("agent admin endpoints on {local}");
        Ok(Admin {
            listener,
            app: router(AdminState { agent, metrics }),
        })
    }

    /// Serves until `stop` turns true.
    pub async fn serve(self, mut stop: tokio::sync::watch::Receiver<bool>) -> Result<()> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            })
            .await
            .context("the agent's admin listener failed")
    }
}

fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz_get))
        .route("/readyz", get(readyz_get))
        .route("/metrics", get(metrics_get))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "not_found", "message": "the admin port serves /healthz, /readyz and /metrics"}}))) })
        .with_state(state)
}

async fn healthz_get() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when every workload's token may be served now; 503 with the reasons otherwise.
async fn readyz_get(State(state): State<AdminState>) -> Response {
    let now = unix_now();
    let workloads = state.agent.workloads();
    let not_ready: Vec<serde_json::Value> = workloads
        .iter()
        .filter(|(_, _, workload)| workload.token(now).is_none())
        .map(|(account, source, workload)| {
            json!({
                "service_account": account,
                "source": source,
                "reason": workload.unavailable_reason(),
            })
        })
        .collect();
    let ready = not_ready.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "workloads": workloads.len(),
        "not_ready": not_ready,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_get(State(state): State<AdminState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (StatusCode::NOT_FOUND, "metrics are disabled").into_response();
    };
    record_state(&state.agent, unix_now());
    tessera_server::telemetry::collect_process_metrics();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

/// The gauges of the workloads' state at `now`.
fn record_state(agent: &AgentState, now: i64) {
    let workloads = agent.workloads();
    let mut ready = 0;
    for (account, source, workload) in &workloads {
        if let Some(token) = workload.token(now) {
            ready += 1;
            metrics::gauge!(names::AGENT_TOKEN_EXPIRES_IN, "service_account" => account.clone(), "source" => source.clone())
                .set(token.expires_at.saturating_sub(now) as f64);
        } else {
            // Nothing may be served: report no time left rather than a stale figure.
            metrics::gauge!(names::AGENT_TOKEN_EXPIRES_IN, "service_account" => account.clone(), "source" => source.clone())
                .set(0.0);
        }
    }
    metrics::gauge!(names::AGENT_WORKLOADS).set(workloads.len() as f64);
    metrics::gauge!(names::AGENT_WORKLOADS_READY).set(f64::from(ready));
}
