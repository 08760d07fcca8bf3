//! Accounts (`/v1/accounts`): created by a global administrator, their sign-in requirement
//! (`mfa`) changed by `PATCH`.

use super::kit::{self, AdminJson, Collection};
use super::views::ToApi;
use super::AdminError;
use crate::state::AppState;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::response::Response;
use axum::routing::patch;
use axum::Json;
use axum::Router;
use tessera_api::admin as api;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{Account, MfaRequirement};

kit::collection! { Accounts, Account, ACCOUNTS, ACCOUNT }

pub fn router() -> Router<AppState> {
    kit::routes::<Accounts, _, _>(account_create).route(Accounts::ITEM_PATH, patch(account_update))
}

async fn account_create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::AccountCreate>,
) -> Result<Response, AdminError> {
    let enterprise_id = match body.enterprise_id.as_deref() {
        Some(id) => Some(ids::account_id("enterprise_id", id)?),
        None => None,
    };
    let account = Account {
        id: ids::new_account_id(&state.rng).map_err(kit::internal)?,
        name: limits::name("name", &body.name)?,
        enterprise_id,
        mfa: Default::default(),
        created_at: state.clock.now(),
    };
    let view = kit::create_object(&state, &ctx, &caller, account, Entity::Account).await?;
    Ok(kit::created(view))
}

async fn account_update(
    kit::Write { state, ctx, caller }: kit::Write,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<api::AccountUpdate>,
) -> Result<Response, AdminError> {
    let old = kit::find_or_404(&state, EntityKind::Account, &id).await?;
    let Entity::Account(mut account) = old.clone() else {
        return Err(AdminError::internal("the store returned another kind"));
    };
    let Some(mfa) = body.mfa else {
        return Err(AdminError::invalid(
            "nothing to update: give mfa (\"TOTP\" or \"NONE\")",
        ));
    };
    // Exactly as the schema spells them (`MfaRequirement::parse` also takes other cases).
    account.mfa = MfaRequirement::parse(&mfa)
        .filter(|m| m.as_str() == mfa)
        .ok_or_else(|| {
            AdminError::invalid(format!("mfa must be \"TOTP\" or \"NONE\", got {mfa:?}"))
        })?;
    let new = Entity::Account(account.clone());
    caller.authorize_update(&state, &old, &new)?;
    kit::store_put(
        &state,
        &ctx,
        &caller,
        "account.update",
        format!("account {} mfa={}", account.id, account.mfa.as_str()),
        &new,
    )
    .await?;
    Ok(Json(account.to_api()).into_response())
}
