//! Service accounts (`/v1/service_accounts`): non-human identities of an account.

use super::kit::{self, AdminJson};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::ServiceAccount;

kit::collection! { ServiceAccounts, ServiceAccount, SERVICE_ACCOUNTS, SERVICE_ACCOUNT, create }

async fn create(
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
    let view = kit::create_object(
        &state,
        &ctx,
        &caller,
        service_account,
        Entity::ServiceAccount,
    )
    .await?;
    Ok(kit::created(view))
}
