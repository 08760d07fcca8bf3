//! The `iam-authz` grant: a token for a resource identity (`crn-…`) that an authorization policy allows.
//!
//! The caller presents its own access token (either format) and `desired_iam_id=crn-<CRN>`.
//! If an authorization policy whose source is the caller covers the CRN within the policy's own
//! account (tenancy: a CRN belongs to the account of its `a/<account>` scope), the answer is a
//! token for the resource identity: `sub_type` `CRN`, `realmid` `crn`, `acr` 0, no `amr`, 1800 s,
//! in the policy's account, with the caller recorded in `authn`. No refresh token: the caller
//! comes back with a fresh access token of its own.

use super::grant::{GrantRequest, GRANT_IAM_AUTHZ};
use super::IbmError;
use crate::tokens::{IssueOptions, IssuedTokens};
use tessera_core::authn;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::token::normalize_scope;

/// Lifetime of a resource-identity token, as IBM's.
pub const CRN_TOKEN_LIFETIME: i64 = 1800;

pub(super) fn iam_authz_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
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
    let (caller, _) = state
        .authenticate_token(access_token, request.now)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidCredential,
                format!("access_token is not usable: {}", e.message()),
            )
        })?;
    let principal = {
        let dir = state.snapshot.directory();
        let principal = authn::resource_identity(&dir, &caller, crn)?;
        authn::check_tenant(&dir, principal.account_id(), request.tenant)?;
        principal
    };
    let issue = request.issue(&scope, GRANT_IAM_AUTHZ, false);
    let options = IssueOptions {
        lifetime: Some(CRN_TOKEN_LIFETIME),
        delegated: None,
    };
    Ok(state.issue_ibm_with(&principal, &issue, &options)?)
}
