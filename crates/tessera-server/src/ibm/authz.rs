//! The `iam-authz` grant: a token for a resource identity (`crn-…`) that an authorization policy allows.
//!
//! The caller presents its own access token (either format) and `desired_iam_id=crn-<CRN>`.
//! If an authorization policy whose source is the caller covers the CRN, the answer is a token
//! for the resource identity: `sub_type` `CRN`, `realmid` `crn`, `acr` 0, no `amr`, 1800 s,
//! in the policy's account, with the caller recorded in `authn`. No refresh token: the caller
//! comes back with a fresh access token of its own.

use super::token::{GrantRequest, GRANT_IAM_AUTHZ};
use super::IbmError;
use crate::tokens::{IssueOptions, IssueRequest, IssuedTokens};
use tessera_core::authn;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::SubjectKind;
use tessera_core::presented::PresentedToken;
use tessera_core::principal::Actor;
use tessera_core::token::normalize_scope;

/// Lifetime of a resource-identity token, as IBM's.
pub const CRN_TOKEN_LIFETIME: i64 = 1800;

pub(super) fn iam_authz_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest {
        state,
        form,
        client,
        tenant,
        now,
    } = *request;
    let access_token = limits::required(
        "access_token",
        form.access_token.as_deref(),
        limits::MAX_TOKEN,
    )?;
    let desired = limits::required("desired_iam_id", form.desired_iam_id.as_deref(), 600)?;
    let crn = desired
        .strip_prefix(ids::CRN_IAM_ID_PREFIX)
        .ok_or_else(|| {
            IbmError::invalid(
                "desired_iam_id must be the iam_id of a resource identity: crn-<CRN>, e.g. \
                 crn-crn:v1:bluemix:public:cloud-object-storage:global:a/<account>:<instance>::",
            )
        })?;
    ids::parse_crn("desired_iam_id", crn)?;
    let scope = normalize_scope(form.scope.as_deref())?;
    let caller = state.verify_access_token(access_token, now).map_err(|e| {
        Error::new(
            ErrorKind::InvalidCredential,
            format!("access_token is not usable: {}", e.message()),
        )
    })?;
    let principal = {
        let dir = state.snapshot.directory();
        let policy = dir
            .policies_from(caller.iam_id())
            .filter(|p| p.covers(crn))
            .min_by(|a, b| a.id.cmp(&b.id))
            .ok_or_else(|| {
                IbmError::invalid(format!(
                    "No authorization policy lets {} obtain a token for {crn}.",
                    caller.iam_id()
                ))
            })?;
        authn::check_tenant(&dir, &policy.account_id, tenant)?;
        authn::crn_principal(crn, &policy.account_id, actor_of(&caller, &dir))
    };
    let request = IssueRequest {
        client_id: authn::client_id_or_default(client),
        scope: &scope,
        grant_type: GRANT_IAM_AUTHZ,
        with_refresh_token: false,
        now,
    };
    let options = IssueOptions {
        lifetime: Some(CRN_TOKEN_LIFETIME),
        delegated: None,
    };
    Ok(state.issue_ibm_with(&principal, &request, &options)?)
}

/// The `authn` of the new token: who asked for it.
fn actor_of(token: &PresentedToken, dir: &tessera_core::directory::Directory) -> Actor {
    let iam_id = token.iam_id().to_owned();
    let sub_type = SubjectKind::of_iam_id(&iam_id)
        .map(|kind| tessera_core::token::sub_type(kind).0)
        .unwrap_or_default();
    let name = dir
        .subject_name(&iam_id)
        .map_or_else(|| iam_id.clone(), str::to_owned);
    Actor {
        sub: token.subject_id().to_owned(),
        iam_id,
        sub_type: sub_type.to_owned(),
        name,
    }
}
