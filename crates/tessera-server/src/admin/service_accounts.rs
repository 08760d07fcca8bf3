//! Service accounts (`/v1/service_accounts`): non-human identities of an account.

use super::kit::{self, AdminJson};
use super::views::ToApi;
use super::AdminError;
use crate::state::AppState;
use axum::response::Response;
use axum::Router;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::ServiceAccount;

kit::collection!(
    ServiceAccounts,
    ServiceAccount,
    "service_accounts",
    SERVICE_ACCOUNTS,
    SERVICE_ACCOUNT
);

pub fn router() -> Router<AppState> {
    kit::routes::<ServiceAccounts, _, _>(service_account_create)
}

async fn service_account_create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::ServiceAccountCreate>,
) -> Result<Response, AdminError> {
    let account_id = kit::target_account(&caller, body.account_id.as_deref())?;
    let service_account = ServiceAccount {
        id: ids::new_service_account_id(&state.rng).map_err(kit::internal)?,
        account_id,
        name: limits::name("name", &body.name)?,
        description: limits::description(body.description.as_deref())?,
        created_at: state.clock.now(),
    };
    kit::create_entity(
        &state,
        &ctx,
        &caller,
        &Entity::ServiceAccount(service_account.clone()),
    )
    .await?;
    Ok(kit::created(service_account.to_api()))
}
