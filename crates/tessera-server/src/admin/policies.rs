//! Authorization policies (`/v1/authorization_policies`): which identity may obtain tokens for
//! which resource identity with the `iam-authz` grant. Get and delete are the generic handlers
//! in `directory_objects`; this module creates them and lists them (with `?source_iam_id=`).

use super::kit::{self, internal};
use super::kit::{created, AdminJson};
use super::AdminError;
use crate::state::AppState;
use axum::response::Response;
use tessera_api::admin as api;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{AuthorizationPolicy, SubjectKind};

kit::collection! { Policies, Policy, AUTHORIZATION_POLICIES, AUTHORIZATION_POLICY, create }

async fn create(
    kit::Write { state, ctx, caller }: kit::Write,
    AdminJson(body): AdminJson<api::AuthorizationPolicyCreate>,
) -> Result<Response, AdminError> {
    let target_text = limits::bounded("target_crn", body.target_crn.trim(), ids::MAX_CRN + 1)?;
    // The account: given, else the one the target is scoped to, else the caller's own. The
    // target must then be confined to it (`AuthorizationPolicy::parse_target`).
    let account_id = match body.account_id.as_deref() {
        Some(given) => ids::account_id("account_id", given)?,
        None => {
            scoped_account(target_text).unwrap_or_else(|| caller.principal.account_id().to_owned())
        }
    };
    let target_crn = AuthorizationPolicy::parse_target(target_text, &account_id)?;
    let source_iam_id = source(&state, &body.source_iam_id)?;
    kit::existing_account(&state, &account_id)?;
    let policy = AuthorizationPolicy {
        id: ids::new_policy_id(&state.rng).map_err(internal)?,
        account_id,
        source_iam_id,
        target_crn,
        description: limits::description(body.description.as_deref())?,
        created_at: state.clock.now(),
    };
    let view = kit::create_object(&state, &ctx, &caller, policy, Entity::Policy).await?;
    Ok(created(view))
}

/// The account a target CRN (or prefix) names in a complete `a/<account>` scope segment.
fn scoped_account(target: &str) -> Option<String> {
    let segments: Vec<&str> = target.trim_end_matches('*').split(':').collect();
    if segments.len() < 8 {
        return None;
    }
    segments[6]
        .strip_prefix("a/")
        .filter(|a| ids::account_id("a", a).is_ok())
        .map(str::to_owned)
}

/// Checks `source_iam_id`: an existing user (`IBMid-…`), service ID (`iam-ServiceId-…`, or its
/// id `ServiceId-…`), trusted profile (`iam-Profile-…`), or any CRN identity (`crn-<CRN>`).
fn source(state: &AppState, value: &str) -> Result<String, AdminError> {
    let value = limits::bounded("source_iam_id", value.trim(), ids::MAX_CRN + 4)?;
    let iam_id = if value.starts_with(ids::SERVICE_ID_PREFIX) {
        ids::service_iam_id(value)
    } else {
        value.to_owned()
    };
    match SubjectKind::of_iam_id(&iam_id) {
        Some(SubjectKind::Crn) => {
            let crn = iam_id
                .strip_prefix(ids::CRN_IAM_ID_PREFIX)
                .unwrap_or_default();
            ids::parse_crn("source_iam_id", crn)?;
            Ok(iam_id)
        }
        Some(_) => {
            let dir = state.snapshot.directory();
            if dir.subject(&iam_id).is_none() {
                return Err(AdminError::not_found(format!(
                    "source identity {iam_id} not found"
                )));
            }
            Ok(iam_id)
        }
        None => Err(AdminError::invalid(
            "source_iam_id must be a user id (IBMid-…), a service ID (iam-ServiceId-… or \
             ServiceId-…), a trusted profile (iam-Profile-…) or a CRN identity (crn-<CRN>)",
        )),
    }
}
