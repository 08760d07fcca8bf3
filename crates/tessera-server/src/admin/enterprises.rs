//! Enterprises: groups of accounts (`/v1/enterprises`).

use super::kit::{self, AdminJson};
use super::views::ToApi;
use super::AdminError;
use crate::state::AppState;
use axum::response::Response;
use axum::Router;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::model::Enterprise;
use tessera_core::{ids, limits};

kit::collection!(
    Enterprises,
    Enterprise,
    "enterprises",
    ENTERPRISES,
    ENTERPRISE
);

pub fn router() -> Router<AppState> {
    kit::routes::<Enterprises, _, _>(enterprise_create)
}

async fn enterprise_create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::EnterpriseCreate>,
) -> Result<Response, AdminError> {
    let enterprise = Enterprise {
        id: ids::new_account_id(&state.rng).map_err(kit::internal)?,
        name: limits::name("name", &body.name)?,
        created_at: state.clock.now(),
    };
    kit::create_entity(
        &state,
        &ctx,
        &caller,
        &Entity::Enterprise(enterprise.clone()),
    )
    .await?;
    Ok(kit::created(enterprise.to_api()))
}
