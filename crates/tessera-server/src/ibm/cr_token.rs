//! The `cr-token` grant: a compute-resource token of a trusted issuer in, a profile token out.
//!
//! Steps: read `iss` from the (unverified) payload only to find the trusted issuers by their
//! exact URL (unique per account, so possibly one per account); verify the signature with each
//! issuer's keys (by `kid`, or the only key), then `exp`, `nbf`, `iat` (`tessera_verify::LEEWAY`) and `aud`
//! ([`compute_resource::verify_token`]); build the [`ComputeResource`]; select the profile
//! (`profile_id`, `profile_crn` or `profile_name` in the issuer's account, or else the single
//! profile of that account that admits the resource); check that the profile admits it (a link
//! or a claim rule) and the `IBM-Cloud-Tenant` pin; mint a profile token without a refresh
//! token. Errors never echo the token or its claim values.

use super::grant::{GrantRequest, GRANT_CR_TOKEN};
use super::IbmError;
use crate::tokens::IssuedTokens;
use std::sync::Arc;
use tessera_core::authn;
use tessera_core::compute_resource::{
    self, profile_admits, ComputeResource, VerifiedComputeResource,
};
use tessera_core::directory::Directory;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::limits;
use tessera_core::model::{TrustedIssuer, TrustedProfile};
use tessera_core::token::normalize_scope;
use tessera_verify::decode_unverified;

/// Largest `cr_token` accepted (after trimming).
pub const MAX_CR_TOKEN: usize = 16 * 1024;

fn refused(message: impl Into<String>) -> IbmError {
    Error::new(ErrorKind::InvalidCredential, message).into()
}

pub(super) fn cr_token_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    // The SDK sends the token file verbatim, trailing newline included.
    let token = limits::required(
        "cr_token",
        form.cr_token.as_deref().map(str::trim),
        MAX_CR_TOKEN,
    )?;
    let scope = normalize_scope(form.scope.as_deref())?;
    let parts = decode_unverified(token)
        .map_err(|e| IbmError::invalid(format!("cr_token is not a JWT: {e}")))?;
    let unverified: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&parts.payload).map_err(|_| {
            IbmError::invalid("cr_token is not a JWT: its payload is not a JSON object")
        })?;
    let iss = unverified
        .get("iss")
        .and_then(|v| v.as_str())
        .ok_or_else(|| IbmError::invalid("cr_token has no iss claim"))?;

    // Issuer URLs are unique per account, so several accounts may trust the same issuer (one
    // cluster serving several tenants): the token is verified with each one's keys, and only
    // the issuers whose keys verify it are considered.
    let issuers: Vec<Arc<TrustedIssuer>> = state
        .snapshot
        .directory()
        .issuers_by_url(iss)
        .cloned()
        .collect();
    if issuers.is_empty() {
        return Err(refused(format!(
            "The compute resource token was issued by {:?}, which is not a trusted issuer.",
            truncate(iss)
        )));
    }
    let mut verified: Vec<VerifiedComputeResource> = Vec::new();
    let mut first_error: Option<IbmError> = None;
    for issuer in &issuers {
        let keys = match state.issuer_keys.keys_for(issuer) {
            Ok(keys) => keys,
            Err(e) => {
                tracing::warn!(issuer = %issuer.id, error = %e, "trusted issuer keys unavailable");
                first_error.get_or_insert_with(|| {
                    IbmError::from(Error::new(
                        ErrorKind::Unavailable,
                        format!(
                            "The keys of trusted issuer {} could not be loaded.",
                            issuer.id
                        ),
                    ))
                });
                continue;
            }
        };
        match compute_resource::verify_token(issuer, &keys, &parts, &unverified, request.now) {
            Ok(resource) => verified.push(resource),
            Err(e) => {
                first_error.get_or_insert_with(|| e.into());
            }
        }
    }
    if verified.is_empty() {
        return Err(
            first_error.unwrap_or_else(|| refused("The compute resource token is not valid."))
        );
    }

    let principal = {
        let dir = state.snapshot.directory();
        let mut admitted = Vec::new();
        let mut refusal: Option<IbmError> = None;
        for resource in &verified {
            match select_profile(&dir, form, resource.resource()).and_then(|profile| {
                authn::compute_resource_profile(resource, &profile)
                    .map(|principal| (principal, profile))
                    .map_err(IbmError::from)
            }) {
                Ok(found) => admitted.push(found),
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        let (principal, profile) = match admitted.len() {
            0 => {
                return Err(refusal.unwrap_or_else(|| {
                    refused("No trusted profile trusts this compute resource.")
                }))
            }
            1 => admitted.remove(0),
            n => {
                return Err(IbmError::invalid(format!(
                    "{n} trusted profiles of different accounts trust this compute resource; \
                     choose one with profile_id or profile_crn."
                )))
            }
        };
        authn::check_tenant(&dir, &profile.account_id, request.tenant)?;
        principal
    };
    let issue = request.issue(&scope, GRANT_CR_TOKEN, false);
    Ok(state.issue_ibm(&principal, &issue)?)
}

/// The profile asked for (`profile_id`, `profile_crn`, `profile_name`; several must agree), or
/// else the single profile of the resource's account that admits it.
fn select_profile(
    dir: &Directory,
    form: &super::grant::TokenForm,
    resource: &ComputeResource,
) -> Result<Arc<TrustedProfile>, IbmError> {
    let mut chosen: Option<Arc<TrustedProfile>> = None;
    let mut choose = |field: &str, found: Option<&Arc<TrustedProfile>>| -> Result<(), IbmError> {
        let profile = found.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "No trusted profile with that {field} exists in account {} of the compute resource.",
                    resource.account_id
                ),
            )
        })?;
        if chosen.as_ref().is_some_and(|c| c.id != profile.id) {
            return Err(IbmError::invalid(
                "profile_id, profile_crn and profile_name name different trusted profiles.",
            ));
        }
        chosen = Some(profile.clone());
        Ok(())
    };
    let in_account = |p: &&Arc<TrustedProfile>| p.account_id == resource.account_id;
    if let Some(id) = nonempty(form.profile_id.as_deref()) {
        let id = limits::bounded("profile_id", id, limits::MAX_ID)?;
        choose("profile_id", dir.profile(id).filter(in_account))?;
    }
    if let Some(crn) = nonempty(form.profile_crn.as_deref()) {
        let crn = limits::bounded("profile_crn", crn, 512)?;
        choose("profile_crn", dir.profile_by_crn(crn).filter(in_account))?;
    }
    if let Some(name) = nonempty(form.profile_name.as_deref()) {
        let name = limits::bounded("profile_name", name, 256)?;
        choose(
            "profile_name",
            dir.profile_by_name(&resource.account_id, name),
        )?;
    }
    if let Some(profile) = chosen {
        return Ok(profile);
    }
    let admitting: Vec<&Arc<TrustedProfile>> = dir
        .profiles_in(&resource.account_id)
        .filter(|p| profile_admits(p, resource).is_ok())
        .collect();
    match admitting.as_slice() {
        [only] => Ok((*only).clone()),
        [] => Err(Error::new(
            ErrorKind::InvalidCredential,
            format!(
                "No trusted profile of account {} trusts this compute resource.",
                resource.account_id
            ),
        )
        .into()),
        several => Err(IbmError::invalid(format!(
            "{} trusted profiles of account {} trust this compute resource; choose one with \
             profile_id, profile_crn or profile_name.",
            several.len(),
            resource.account_id
        ))),
    }
}

fn nonempty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn truncate(value: &str) -> &str {
    limits::clipped(value, 128)
}
