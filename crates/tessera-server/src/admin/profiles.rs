//! Trusted profiles in the admin API: create (`POST /v1/trusted_profiles`), list, and full
//! replace (`PUT /v1/trusted_profiles/{id}`). Get and delete are the generic handlers of
//! `directory_objects`. The document is validated by `tessera_core::trusted_profile`; names are
//! unique per account.

use super::kit::{self, Collection};
use super::kit::{created, AdminJson};
use super::kit::{find_or_404, internal};
use super::views::{profile_document, ToApi};
use super::AdminError;
use crate::state::AppState;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::ids;
use tessera_core::model::TrustedProfile;
use tessera_core::trusted_profile::{self, ValidProfile};

kit::collection! { Profiles, Profile, TRUSTED_PROFILES, TRUSTED_PROFILE }

pub fn router() -> Router<AppState> {
    kit::routes::<Profiles, _, _>(profile_create).route(Profiles::ITEM_PATH, put(profile_replace))
}

/// `POST /v1/trusted_profiles`: the document plus the account (default: the caller's).
/// Refuses a name another profile of the account already has.
fn check_name_free(
    state: &AppState,
    account_id: &str,
    name: &str,
    except_id: Option<&str>,
) -> Result<(), AdminError> {
    let dir = state.snapshot.directory();
    match dir.profile_by_name(account_id, name) {
        Some(other) if Some(other.id.as_str()) != except_id => Err(AdminError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!(
                "account {account_id} already has a trusted profile named {name:?} ({})",
                other.id
            ),
        )),
        _ => Ok(()),
    }
}

async fn profile_create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::TrustedProfileCreate>,
) -> Result<Response, AdminError> {
    let account_id = kit::target_account(&caller, body.account_id.as_deref())?;
    kit::existing_account(&state, &account_id)?;
    let document = profile_document(
        body.name,
        body.description,
        body.identities,
        body.links,
        body.rules,
    );
    let valid = trusted_profile::validate(&document, &account_id, &state.rng)?;
    let ValidProfile {
        name,
        description,
        identities,
        links,
        rules,
    } = valid;
    let profile = TrustedProfile {
        id: ids::new_profile_id(&state.rng).map_err(internal)?,
        account_id,
        name,
        description,
        identities,
        links,
        rules,
        created_at: state.clock.now(),
    };
    let entity = Entity::Profile(profile.clone());
    // Authorized before the name check: a caller who may not create profiles in the account
    // learns nothing about the names its profiles have.
    caller.authorize(&state, &Action::Create(&entity))?;
    check_name_free(&state, &profile.account_id, &profile.name, None)?;
    kit::store_new(&state, &ctx, &caller, &entity).await?;
    Ok(created(profile.to_api()))
}

/// `PUT /v1/trusted_profiles/{id}`: replaces name, description, identities, links and rules.
/// The id, account and creation time stay.
async fn profile_replace(
    kit::Write { state, ctx, caller }: kit::Write,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<api::TrustedProfileReplace>,
) -> Result<Response, AdminError> {
    let document = profile_document(
        body.name,
        body.description,
        body.identities,
        body.links,
        body.rules,
    );
    let old = find_or_404(&state, EntityKind::Profile, &id).await?;
    let Entity::Profile(existing) = old.clone() else {
        return Err(AdminError::internal("the store answered another kind"));
    };
    let valid = trusted_profile::validate(&document, &existing.account_id, &state.rng)?;
    let profile = TrustedProfile {
        name: valid.name,
        description: valid.description,
        identities: valid.identities,
        links: valid.links,
        rules: valid.rules,
        ..existing
    };
    let new = Entity::Profile(profile.clone());
    caller.authorize_update(&state, &old, &new)?;
    // After the authorization, as on create: the names are the account's business.
    check_name_free(
        &state,
        &profile.account_id,
        &profile.name,
        Some(&profile.id),
    )?;
    let action = format!("{}.update", EntityKind::Profile.as_str());
    kit::store_put(
        &state,
        &ctx,
        &caller,
        &action,
        format!("trusted profile {id}"),
        &new,
    )
    .await?;
    Ok(Json(profile.to_api()).into_response())
}
