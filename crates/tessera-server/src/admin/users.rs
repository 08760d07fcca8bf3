//! Users (`/v1/users`): people who sign in with a password (+ TOTP, `mfa`) or through an
//! identity provider (`federated`).

use super::kit::{self, AdminJson};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::User;
use tessera_core::secret;

kit::collection! { Users, User, USERS, USER, create }

async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::UserCreate>,
) -> Result<Response, AdminError> {
    let account_id = kit::target_account(&caller, body.account_id.as_deref())?;
    let name = limits::name("name", &body.name)?;
    let email = limits::email(&body.email)?;
    if body.federated && body.password.is_some() {
        return Err(AdminError::invalid(
            "federated users sign in through their identity provider and cannot have a password",
        ));
    }
    let mut user = User {
        id: ids::new_user_id(&state.rng).map_err(kit::internal)?,
        account_id,
        name,
        email,
        password_hash: None,
        federated: body.federated,
        created_at: state.clock.now(),
    };
    // Authorized before the (slow) password hash, so refused callers cost no Argon2id.
    caller.authorize(&state, &Action::Create(&Entity::User(user.clone())))?;
    user.password_hash = match body.password {
        Some(password) => {
            // Argon2id is slow by design: keep it off the async workers.
            let state_for_hash = state.clone();
            let hashed = tokio::task::spawn_blocking(move || {
                secret::hash_password(&password, &state_for_hash.rng)
            })
            .await
            .map_err(|e| AdminError::internal(format!("password hashing task failed: {e}")))??;
            Some(hashed)
        }
        None => None,
    };
    kit::store_new(&state, &ctx, &caller, &Entity::User(user.clone())).await?;
    Ok(kit::created(kit::view_in(&state, &Entity::User(user))))
}
