//! Operations endpoints: `/healthz` (the process answers), `/readyz` (the snapshot is loaded
//! and the store reachable), `/metrics` (Prometheus text format).
//!
//! Counters are recorded where things happen; gauges of state (snapshot age, signing keys,
//! throttle table, the process) are read at scrape time, so they cost nothing between scrapes.

use crate::metrics_names as names;
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
    let age = state.snapshot.age(state.clock.now());
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
        Some(handle) => {
            record_state(&state, state.clock.now());
            crate::telemetry::collect_process_metrics();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}

/// Sets the gauges that describe this node's state at `now`.
fn record_state(state: &AppState, now: i64) {
    use tessera_core::model::KeyState;
    metrics::gauge!(names::SNAPSHOT_AGE).set(state.snapshot.age(now) as f64);
    let store_up = if state.store_is_healthy() { 1.0 } else { 0.0 };
    metrics::gauge!(names::STORE_UP).set(store_up);
    let keys: Vec<_> = state.snapshot.directory().signing_keys().cloned().collect();
    for (key_use, algorithm) in crate::rotation::targets(&state.config) {
        let label = key_use.as_str();
        for key_state in [KeyState::Next, KeyState::Active, KeyState::Retired] {
            let n = keys
                .iter()
                .filter(|k| k.key_use == key_use && k.state == key_state)
                .count();
            metrics::gauge!(names::SIGNING_KEYS, "use" => label, "state" => key_state.as_str())
                .set(n as f64);
        }
        let signing = keys
            .iter()
            .filter(|k| k.key_use == key_use && k.state == KeyState::Active)
            .map(|k| k.created_at)
            .max();
        if let Some(created_at) = signing {
            metrics::gauge!(names::SIGNING_KEY_AGE, "use" => label)
                .set(now.saturating_sub(created_at) as f64);
        }
        let policy = state.config.rotation_policy(key_use);
        let next =
            tessera_core::rotation::next_rotation_at(&keys, key_use, algorithm, &policy, now);
        metrics::gauge!(names::SIGNING_KEY_NEXT_ROTATION, "use" => label).set(next as f64);
    }
    let throttle = state.throttle.stats_at(state.clock.instant());
    for (class, tracked, locked) in [
        (
            "credential",
            throttle.credentials,
            throttle.locked_credentials,
        ),
        ("address", throttle.addresses, throttle.locked_addresses),
    ] {
        metrics::gauge!(names::THROTTLE_TRACKED, "class" => class).set(tracked as f64);
        metrics::gauge!(names::THROTTLE_LOCKED, "class" => class).set(locked as f64);
    }
}
