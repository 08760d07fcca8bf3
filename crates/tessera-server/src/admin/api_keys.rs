//! API keys (`/v1/api_keys`) of users and service accounts: the key is returned once and
//! stored as a keyed hash.

use super::kit::{self, AdminJson};
use super::AdminError;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{ApiKey, SubjectKind};
use tessera_core::secret::{self, SecretPurpose};

kit::collection! { ApiKeys, ApiKey, API_KEYS, API_KEY, create }

async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::ApiKeyCreate>,
) -> Result<Response, AdminError> {
    let owner = limits::bounded("owner_iam_id", &body.owner_iam_id, limits::MAX_ID)?.to_owned();
    if SubjectKind::of_iam_id(&owner).is_none() {
        return Err(AdminError::invalid(
            "owner_iam_id must be a user id (IBMid-…) or a service account iam id (iam-ServiceId-…)",
        ));
    }
    let account_id = {
        let dir = state.snapshot.directory();
        dir.subject(&owner)
            .map(|s| s.account_id().to_owned())
            .ok_or_else(|| AdminError::not_found(format!("identity {owner} not found")))?
    };
    let apikey = secret::generate_api_key(&state.rng).map_err(kit::internal)?;
    let key = ApiKey {
        id: ids::new_api_key_id(&state.rng).map_err(kit::internal)?,
        name: limits::name("name", &body.name)?,
        description: limits::description(body.description.as_deref())?,
        owner_iam_id: owner,
        account_id,
        key_hash: state.pepper.hash(SecretPurpose::ApiKey, apikey.expose()),
        created_at: state.clock.now(),
    };
    let mut view = kit::create_object(&state, &ctx, &caller, key, Entity::ApiKey).await?;
    view.apikey = Some(api::OneTime::new(apikey.expose()));
    Ok(kit::created(view))
}
