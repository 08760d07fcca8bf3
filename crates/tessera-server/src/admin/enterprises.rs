//! Enterprises: groups of accounts (`/v1/enterprises`).

use super::kit::{self, AdminJson};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::model::Enterprise;
use tessera_core::{ids, limits};

kit::collection! { Enterprises, Enterprise, ENTERPRISES, ENTERPRISE, create }

async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::EnterpriseCreate>,
) -> Result<Response, AdminError> {
    let enterprise = Enterprise {
        id: ids::new_account_id(&state.rng).map_err(kit::internal)?,
        name: limits::name("name", &body.name)?,
        created_at: state.clock.now(),
    };
    let view = kit::create_object(&state, &ctx, &caller, enterprise, Entity::Enterprise).await?;
    Ok(kit::created(view))
}
