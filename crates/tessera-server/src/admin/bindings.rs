//! Access bindings: who holds which role where. Who may grant or remove what is the core's
//! authorization model's decision (granting needs `admin` where the binding applies and the
//! privileges the binding confers; the last global administrator cannot be unbound).

use super::auth::Caller;
use super::kit::Write;
use super::kit::{audit, created, deleted, list_body, list_filter, settle, AdminJson, ListQuery};
use super::kit::{find_or_404, view};
use super::views::ToApi;
use super::AdminError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{AccessBinding, Resource, Role, SubjectKind};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/access_bindings",
            get(bindings_list).post(binding_create),
        )
        .route(
            "/v1/access_bindings/{id}",
            get(binding_get).delete(binding_delete),
        )
}

fn parse_resource(text: &str) -> Result<Resource, AdminError> {
    limits::bounded("resource", text, 128)?;
    Resource::parse(text).ok_or_else(|| {
        AdminError::invalid("resource must be '*', 'account/<account id>' or 'service-account/<service account id>'")
    })
}

async fn binding_create(
    Write { state, ctx, caller }: Write,
    AdminJson(body): AdminJson<api::AccessBindingCreate>,
) -> Result<Response, AdminError> {
    let subject =
        limits::bounded("subject_iam_id", &body.subject_iam_id, limits::MAX_ID)?.to_owned();
    if SubjectKind::of_iam_id(&subject).is_none() {
        return Err(AdminError::invalid(
            "subject_iam_id must be a user id (IBMid-…) or a service account iam id (iam-ServiceId-…)",
        ));
    }
    let role = Role::parse(&body.role).ok_or_else(|| {
        AdminError::invalid(format!(
            "role must be one of {}",
            Role::ALL
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let resource = parse_resource(&body.resource)?;
    if let Resource::Account(id) = &resource {
        ids::account_id("resource account id", id)?;
    }
    if let Resource::ServiceAccount(id) = &resource {
        if state.snapshot.directory().service_account(id).is_none() {
            return Err(AdminError::not_found(format!(
                "service account {id} not found"
            )));
        }
    }
    let binding = AccessBinding {
        id: ids::new_binding_id(&state.rng).map_err(AdminError::from)?,
        subject_iam_id: subject,
        role,
        resource,
        created_at: state.clock.now(),
    };
    let entity = Entity::Binding(binding.clone());
    caller.authorize(&state, &Action::Create(&entity))?;
    let detail = format!(
        "{} {} on {}",
        binding.subject_iam_id,
        role.as_str(),
        binding.resource.to_text()
    );
    let event = audit(
        &state,
        &ctx,
        caller.iam_id(),
        "access_binding.create",
        detail,
        &entity,
    );
    let seq = state.store.create(&entity, &event).await?;
    settle(&state, seq).await;
    crate::security_log::change(&ctx, &event);
    Ok(created(binding.to_api()))
}

/// Bindings are listed by subject or resource; a caller sees those whose resource it may read.
async fn bindings_list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    if let Some(resource) = &query.resource {
        parse_resource(resource)?;
    }
    let filter = list_filter(&query)?;
    let entities = state.store.list(EntityKind::Binding, &filter).await?;
    let visible: Vec<serde_json::Value> = entities
        .iter()
        .filter(|e| caller.may(&state, &Action::Read(e)))
        .map(view)
        .collect();
    Ok(list_body("access_bindings", visible))
}

async fn binding_get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let entity = find_or_404(&state, EntityKind::Binding, &id).await?;
    caller.authorize(&state, &Action::Read(&entity))?;
    Ok(Json(view(&entity)).into_response())
}

async fn binding_delete(
    Write { state, ctx, caller }: Write,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let entity = find_or_404(&state, EntityKind::Binding, &id).await?;
    caller.authorize(&state, &Action::Delete(&entity))?;
    let event = audit(
        &state,
        &ctx,
        caller.iam_id(),
        "access_binding.delete",
        format!("access binding {id}"),
        &entity,
    );
    let seq = state.store.delete(EntityKind::Binding, &id, &event).await?;
    settle(&state, seq).await;
    crate::security_log::change(&ctx, &event);
    Ok(deleted())
}
