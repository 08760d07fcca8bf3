//! `GET /v1/audit`: the audit log, newest first, for those who may read it.

use super::auth::Caller;
use super::kit::list_body;
use super::views::rfc3339;
use super::AdminError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tessera_api::admin as api;
use tessera_core::authz::Action;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(audit_get))
}

async fn audit_get(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<api::AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    caller.authorize(&state, &Action::ReadAudit)?;
    let limit = query.limit.unwrap_or(tessera_api::limits::DEFAULT_LIMIT);
    if limit == 0 || limit > tessera_api::limits::MAX_LIMIT {
        return Err(AdminError::invalid(format!(
            "limit must be between 1 and {}",
            tessera_api::limits::MAX_LIMIT
        )));
    }
    let events = state.store.list_audit(limit).await?;
    let items: Vec<api::AuditEvent> = events
        .iter()
        .map(|r| api::AuditEvent {
            id: r.id,
            at: rfc3339(r.event.at),
            actor: r.event.actor.clone(),
            action: r.event.action.clone(),
            target_kind: r.target_kind.clone(),
            target_id: r.target_key.clone(),
            request_id: r.event.request_id.clone(),
            detail: r.event.detail.clone(),
        })
        .collect();
    Ok(list_body("events", items))
}
