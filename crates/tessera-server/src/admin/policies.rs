//! Authorization policies (`/v1/authorization_policies`): which identity may obtain tokens for
//! which resource identity with the `iam-authz` grant. Get and delete are the generic handlers
//! in `directory_objects`; this module creates them and lists them (with `?source_iam_id=`).

use super::auth::Caller;
use super::directory_objects::{create_entity, internal, list_handler};
use super::views::AuthorizationPolicyView;
use super::{created, AdminError, AdminJson};
use crate::http::RequestContext;
use crate::state::{now, AppState};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use tessera_core::directory::Entity;
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{AuthorizationPolicy, Resource, Role, SubjectKind};

/// Index of authorization policies in `directory_objects::KINDS`.
const POLICIES: usize = 10;
/// Longest target CRN (or prefix).
const MAX_CRN: usize = 512;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/v1/authorization_policies",
        get(list_handler::<POLICIES>).post(policy_create),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyCreate {
    account_id: Option<String>,
    source_iam_id: String,
    target_crn: String,
    description: Option<String>,
}

async fn policy_create(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    AdminJson(body): AdminJson<PolicyCreate>,
) -> Result<Response, AdminError> {
    let (target_crn, crn_account) = target(&body.target_crn)?;
    let account_id = match (body.account_id.as_deref(), crn_account) {
        (Some(given), Some(scoped)) => {
            let given = ids::account_id("account_id", given)?;
            if given != scoped {
                return Err(AdminError::invalid(format!(
                    "target_crn is scoped to account a/{scoped}, but account_id is {given}; \
                     they must be the same"
                )));
            }
            given
        }
        (Some(given), None) => ids::account_id("account_id", given)?,
        (None, Some(scoped)) => scoped,
        (None, None) => caller.token.account_id().to_owned(),
    };
    caller.require(&state, Role::Admin, &Resource::Account(account_id.clone()))?;
    let source_iam_id = source(&state, &body.source_iam_id)?;
    {
        let dir = state.snapshot.directory();
        if dir.account(&account_id).is_none() {
            return Err(AdminError::not_found(format!(
                "account {account_id} not found"
            )));
        }
    }
    let policy = AuthorizationPolicy {
        id: ids::new_policy_id(&state.rng).map_err(internal)?,
        account_id,
        source_iam_id,
        target_crn,
        description: limits::description(body.description.as_deref())?,
        created_at: now(),
    };
    create_entity(&state, &ctx, &caller, &Entity::Policy(policy.clone())).await?;
    Ok(created(AuthorizationPolicyView::from(&policy)))
}

/// Checks `target_crn`: a CRN, or a prefix of one ending in `*` that still starts with
/// `crn:v1:`. Returns it and the account of its `a/<account>` scope, if it names one.
fn target(value: &str) -> Result<(String, Option<String>), AdminError> {
    let value = value.trim();
    let Some(prefix) = value.strip_suffix('*') else {
        let account = ids::parse_crn("target_crn", value)?;
        return Ok((value.to_owned(), account));
    };
    if value.len() > MAX_CRN {
        return Err(AdminError::invalid(format!(
            "target_crn is longer than {MAX_CRN} characters"
        )));
    }
    if !prefix.starts_with("crn:v1:") {
        return Err(AdminError::invalid(
            "target_crn must be a CRN or a CRN prefix ending in *, and start with crn:v1:",
        ));
    }
    if prefix.contains('*') {
        return Err(AdminError::invalid(
            "target_crn may contain * only at its end",
        ));
    }
    if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(AdminError::invalid("target_crn contains whitespace"));
    }
    let segments: Vec<&str> = prefix.split(':').collect();
    if segments.len() > 10 {
        return Err(AdminError::invalid(
            "target_crn has more than 10 colon-separated segments",
        ));
    }
    // The scope segment counts only when complete (a colon follows it).
    let account = if segments.len() > 7 {
        segments[6].strip_prefix("a/").map(str::to_owned)
    } else {
        None
    };
    if let Some(account) = &account {
        ids::account_id("target_crn scope a/<account>", account)?;
    }
    Ok((value.to_owned(), account))
}

/// Checks `source_iam_id`: an existing user (`IBMid-…`), service ID (`iam-ServiceId-…`, or its
/// id `ServiceId-…`), trusted profile (`iam-Profile-…`), or any CRN identity (`crn-<CRN>`).
fn source(state: &AppState, value: &str) -> Result<String, AdminError> {
    let value = limits::bounded("source_iam_id", value.trim(), MAX_CRN + 4)?;
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
