//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the snapshot is loaded
//! and the store reachable), `/metrics` (Prometheus text format).

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz_get))
        .route("/readyz", get(readyz_get))
        .route("/metrics", get(metrics_get))
}

async fn healthz_get() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz_get(State(state): State<AppState>) -> Response {
    let store = state.store_is_healthy();
    let body = json!({
        "status": if store { "ready" } else { "not ready" },
        "store": if store { "ok" } else { "unreachable" },
        "snapshot_seq": state.snapshot.applied_seq(),
    });
    let status = if store {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics_get(State(state): State<AppState>) -> Response {
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
