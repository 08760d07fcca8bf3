//! `GET /v1/audit`: the audit log, newest first, for those who may read it: every event for a
//! global administrator, one account's events for that account's administrators.

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
use tessera_store::AuditFilter;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/audit", get(audit_get))
}

async fn audit_get(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<api::AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let filter = audit_filter(query)?;
    caller.authorize(
        &state,
        &Action::ReadAudit {
            account_id: filter.account_id.as_deref(),
        },
    )?;
    let events = state.store.list_audit(&filter).await?;
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
            account_id: r.event.account_id.clone(),
        })
        .collect();
    Ok(list_body("events", items))
}

/// The store's filter for a query, each parameter checked as the document states it.
fn audit_filter(query: api::AuditQuery) -> Result<AuditFilter, AdminError> {
    let limit = query.limit.unwrap_or(tessera_api::limits::DEFAULT_LIMIT);
    if limit == 0 || limit > tessera_api::limits::MAX_LIMIT {
        return Err(AdminError::invalid(format!(
            "limit must be between 1 and {}",
            tessera_api::limits::MAX_LIMIT
        )));
    }
    let account_id = query
        .account_id
        .map(|id| tessera_core::ids::account_id("account_id", &id))
        .transpose()?;
    if let Some(actor) = &query.actor {
        if actor.is_empty() || actor.chars().count() > 600 {
            return Err(AdminError::invalid(
                "actor must be 1 to 600 characters (an iam_id, or system)",
            ));
        }
    }
    if let Some(action) = &query.action {
        if !is_action_filter(action) {
            return Err(AdminError::invalid(format!(
                "action {action:?} is not an action (e.g. api_key.delete) or an action prefix ending with a dot (e.g. api_key.)"
            )));
        }
    }
    let time = |name: &str, value: Option<String>| {
        value
            .map(|text| {
                crate::rfc3339::to_unix(&text).ok_or_else(|| {
                    AdminError::invalid(format!(
                        "{name} must be an RFC 3339 time such as 2026-12-01T00:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let since = time("since", query.since)?;
    let until = time("until", query.until)?;
    if let Some(before) = query.before {
        if before < 1 {
            return Err(AdminError::invalid(
                "before must be an event id (at least 1)",
            ));
        }
    }
    Ok(AuditFilter {
        account_id,
        actor: query.actor,
        action: query.action,
        since,
        until,
        before_id: query.before,
        limit,
    })
}

/// `segment(.segment)*` with an optional trailing dot, segments of `a-z` and `_`; at most 64.
fn is_action_filter(text: &str) -> bool {
    let body = text.strip_suffix('.').unwrap_or(text);
    text.len() <= 64
        && !body.is_empty()
        && body
            .split('.')
            .all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(f: impl FnOnce(&mut api::AuditQuery)) -> Result<AuditFilter, AdminError> {
        let mut q = api::AuditQuery::default();
        f(&mut q);
        audit_filter(q)
    }

    #[test]
    fn filters_are_checked_as_documented() {
        let filter = query(|q| {
            q.account_id = Some("0123456789abcdef0123456789abcdef".into());
            q.action = Some("api_key.".into());
            q.since = Some("2026-12-01T00:00:00Z".into());
            q.before = Some(7);
        })
        .unwrap();
        assert_eq!(filter.action.as_deref(), Some("api_key."));
        assert_eq!(filter.since, Some(1_796_083_200));
        assert_eq!(filter.before_id, Some(7));
        assert_eq!(filter.limit, tessera_api::limits::DEFAULT_LIMIT);
        for bad in [
            query(|q| q.account_id = Some("not-an-account".into())),
            query(|q| q.action = Some("API_KEY.delete".into())),
            query(|q| q.action = Some(".".into())),
            query(|q| q.action = Some("api_key..delete".into())),
            query(|q| q.since = Some("yesterday".into())),
            query(|q| q.until = Some("2026-12-01".into())),
            query(|q| q.before = Some(0)),
            query(|q| q.limit = Some(0)),
            query(|q| q.actor = Some(String::new())),
        ] {
            assert!(bad.is_err());
        }
    }
}
