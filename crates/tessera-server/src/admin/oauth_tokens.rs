//! Long-lived OAuth tokens of users (`/v1/oauth_tokens`, `y0_…`) for the Yandex surface:
//! returned once, stored as a keyed hash.
//!
//! The secret is not logged or put in an audit event: the audit detail names the object only.

use super::kit::{self, AdminJson};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::OAuthToken;
use tessera_core::secret::{self, SecretPurpose};

kit::collection! { OAuthTokens, OAuthToken, OAUTH_TOKENS, OAUTH_TOKEN, create }

/// `POST /v1/oauth_tokens`: a new long-lived OAuth token for a user, shown once in `token`.
async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::OAuthTokenCreate>,
) -> Result<Response, AdminError> {
    let description = limits::description(body.description.as_deref())?;
    let user_id = limits::bounded("user_id", &body.user_id, limits::MAX_ID)?.to_owned();
    let account_id = state
        .snapshot
        .directory()
        .user(&user_id)
        .map(|u| u.account_id.clone())
        .ok_or_else(|| AdminError::not_found(format!("user {user_id} not found")))?;
    let value = secret::generate_oauth_token(&state.rng).map_err(kit::internal)?;
    let token = OAuthToken {
        id: ids::new_oauth_token_id(&state.rng).map_err(kit::internal)?,
        user_id,
        account_id,
        description,
        token_hash: state.pepper.hash(SecretPurpose::OAuthToken, value.expose()),
        created_at: state.clock.now(),
    };
    let mut view = kit::create_object(&state, &ctx, &caller, token, Entity::OAuthToken).await?;
    view.token = Some(api::OneTime::new(value.expose()));
    Ok(kit::created(view))
}
