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

/// A snapshot older than this is reported as not ready: the follower polls four times a second,
/// so two seconds without a successful poll means the store is slow or gone.
const READY_MAX_AGE: i64 = 2;

async fn readyz_get(State(state): State<AppState>) -> Response {
    let age = state.snapshot.age(crate::state::now());
    let store = state.store_is_healthy() && age <= READY_MAX_AGE;
    let body = json!({
        "status": if store { "ready" } else { "not ready" },
        "store": if store { "ok" } else { "unreachable" },
        "snapshot_seq": state.snapshot.applied_seq(),
        "snapshot_age_seconds": age,
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
