//! Trusted issuers (`/v1/trusted_issuers`): external OIDC issuers whose tokens are
//! compute-resource tokens for the `cr-token` grant. Create validates everything (the URL, the
//! key set or key file, audiences, type, CRN, claim mapping); PUT replaces the key set,
//! audiences or claim mapping (key rotation). Get and delete are the generic handlers.
//!
//! `jwks_file` names a path on the server, so only the global administrator may set one (the
//! core's rule): letting an account administrator probe the server's file system would be a
//! leak. The file is read only after that decision. Issuer URLs are unique per account.

use super::kit::{self, find_or_404, internal, store_new, Collection};
use super::kit::{created, AdminJson};
use super::views::ToApi;
use super::AdminError;
use crate::issuer_keys::{parse_issuer_jwks, read_jwks_file};
use crate::state::AppState;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::Value;
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{JwksSource, TrustedIssuer};
use tessera_core::{ids, limits, trusted_issuer};

kit::collection! { Issuers, Issuer, TRUSTED_ISSUERS, TRUSTED_ISSUER }

pub fn router() -> Router<AppState> {
    kit::routes::<Issuers, _, _>(issuer_create).route(Issuers::ITEM_PATH, put(issuer_update))
}

/// The key source of a request: exactly one of `jwks` and `jwks_file`. An inline set is parsed
/// now; a file's path is checked for form only ([`check_readable`] reads it once the caller is
/// known to be allowed to name it).
fn jwks_source(
    jwks: Option<Value>,
    jwks_file: Option<String>,
) -> Result<Option<JwksSource>, AdminError> {
    match (jwks, jwks_file) {
        (Some(_), Some(_)) => Err(AdminError::invalid(
            "give either jwks (an inline key set) or jwks_file (a path on the server), not both",
        )),
        (None, None) => Ok(None),
        (Some(document), None) => {
            parse_issuer_jwks(&document).map_err(|e| AdminError::invalid(format!("jwks: {e}")))?;
            Ok(Some(JwksSource::Inline(document)))
        }
        (None, Some(path)) => {
            let path = limits::bounded_chars("jwks_file", path.trim(), 1024)?.to_owned();
            if !path.starts_with('/') {
                return Err(AdminError::invalid("jwks_file must be an absolute path"));
            }
            Ok(Some(JwksSource::File(path)))
        }
    }
}

/// Reads a key file named by an authorized caller: it must hold a usable key set.
fn check_readable(source: &JwksSource) -> Result<(), AdminError> {
    if let JwksSource::File(path) = source {
        read_jwks_file(path).map_err(|e| AdminError::invalid(format!("jwks_file: {e}")))?;
    }
    Ok(())
}

async fn issuer_create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::TrustedIssuerCreate>,
) -> Result<Response, AdminError> {
    let account_id = kit::target_account(&caller, body.account_id.as_deref())?;
    kit::existing_account(&state, &account_id)?;
    let name = limits::name("name", &body.name)?;
    let issuer_url = trusted_issuer::issuer_url(body.issuer_url.trim())?;
    let jwks = jwks_source(body.jwks, body.jwks_file)?.ok_or_else(|| {
        AdminError::invalid(
            "jwks (an inline key set) or jwks_file (a path on the server) is required",
        )
    })?;
    let audiences = trusted_issuer::audiences(body.audiences)?;
    let cr_type = trusted_issuer::cr_type(body.cr_type.as_deref())?;
    let claim_mapping = trusted_issuer::claim_mapping(body.claim_mapping)?;
    let id = ids::new_issuer_id(&state.rng).map_err(internal)?;
    let crn = match body.crn {
        Some(crn) => {
            let crn = crn.trim().to_owned();
            if let Some(owner) = ids::parse_crn("crn", &crn)? {
                if owner != account_id {
                    return Err(AdminError::invalid(format!(
                        "crn names account {owner}, but the issuer is in account {account_id}"
                    )));
                }
            }
            crn
        }
        None => trusted_issuer::default_crn(&account_id, &id),
    };
    let issuer = TrustedIssuer {
        id,
        account_id,
        name,
        issuer_url,
        jwks,
        audiences,
        cr_type,
        crn,
        claim_mapping,
        created_at: state.clock.now(),
    };
    let entity = Entity::Issuer(issuer.clone());
    caller.authorize(&state, &Action::Create(&entity))?;
    // After the authorization: which issuer URLs an account trusts is its own business.
    let clash = state
        .snapshot
        .directory()
        .issuers_by_url(&issuer.issuer_url)
        .any(|i| i.account_id == issuer.account_id);
    if clash {
        return Err(AdminError::new(
            axum::http::StatusCode::CONFLICT,
            "already_exists",
            format!(
                "a trusted issuer with this issuer_url already exists in account {}",
                issuer.account_id
            ),
        ));
    }
    check_readable(&issuer.jwks)?;
    store_new(&state, &ctx, &caller, &entity).await?;
    Ok(created(issuer.to_api()))
}

async fn issuer_update(
    kit::Write { state, ctx, caller }: kit::Write,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<api::TrustedIssuerUpdate>,
) -> Result<Response, AdminError> {
    let old = find_or_404(&state, EntityKind::Issuer, &id).await?;
    let Entity::Issuer(mut issuer) = old.clone() else {
        return Err(AdminError::internal("store returned another kind"));
    };
    if body.jwks.is_none()
        && body.jwks_file.is_none()
        && body.audiences.is_none()
        && body.claim_mapping.is_none()
    {
        return Err(AdminError::invalid(
            "give at least one of jwks, jwks_file, audiences and claim_mapping",
        ));
    }
    if let Some(source) = jwks_source(body.jwks, body.jwks_file)? {
        issuer.jwks = source;
    }
    if body.audiences.is_some() {
        issuer.audiences = trusted_issuer::audiences(body.audiences)?;
    }
    if body.claim_mapping.is_some() {
        issuer.claim_mapping = trusted_issuer::claim_mapping(body.claim_mapping)?;
    }
    let new = Entity::Issuer(issuer.clone());
    caller.authorize_update(&state, &old, &new)?;
    check_readable(&issuer.jwks)?;
    kit::store_put(
        &state,
        &ctx,
        &caller,
        "trusted_issuer.update",
        format!("trusted issuer {}", issuer.id),
        &new,
    )
    .await?;
    Ok(Json(issuer.to_api()).into_response())
}
