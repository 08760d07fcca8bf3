//! The `assume` grant: a trusted identity's token in, a trusted-profile token out.
//!
//! The request carries exactly one credential: `access_token` (either token format Tessera
//! issues), `refresh_token` (redeemed only by the confidential client it was issued to, which
//! authenticates with Basic), or
//! `cookie`. Tessera has no browser sessions, so `cookie` carries an access token too (e.g. the
//! value of a console cookie holding an IAM token). It selects exactly one profile: `profile_id`,
//! `profile_crn`, or `profile_name` with `account`. The presented identity must be a trusted
//! identity of the profile and meet its account's MFA level
//! ([`tessera_core::trusted_profile::check_trust`]); `IBM-Cloud-Tenant` pins the profile's
//! account. The answer has no refresh token: the trust must be checked again for every token,
//! so clients repeat the grant (the SDKs do). The profile token descends from the presented
//! credential ([`tessera_core::lineage`]): it dies with the assumer, its token, its API key or
//! refresh family, or the profile's trust in it.

use super::grant::{GrantRequest, GRANT_ASSUME};
use super::IbmError;
use crate::tokens::IssuedTokens;
use std::sync::Arc;
use tessera_core::authn;
use tessera_core::directory::Directory;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::TrustedProfile;
use tessera_core::token::normalize_scope;

pub(super) fn assume_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    let scope = normalize_scope(form.scope.as_deref())?;

    let credentials: Vec<(&str, &str)> = [
        ("access_token", form.access_token.as_deref()),
        ("refresh_token", form.refresh_token.as_deref()),
        ("cookie", form.cookie.as_deref()),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.filter(|v| !v.trim().is_empty()).map(|v| (field, v)))
    .collect();
    let (field, presented) =
        match credentials.as_slice() {
            [one] => *one,
            [] => return Err(IbmError::invalid(
                "The assume grant needs one of access_token, refresh_token or cookie (the token \
                 of an identity the profile trusts).",
            )),
            _ => {
                let names: Vec<&str> = credentials.iter().map(|(f, _)| *f).collect();
                return Err(IbmError::invalid(format!(
                    "The assume grant takes exactly one of access_token, refresh_token or cookie; \
                 the request has {}.",
                    names.join(" and ")
                )));
            }
        };
    let presented = presented.trim();
    limits::bounded(field, presented, limits::MAX_TOKEN)?;

    // The selector is checked before the credential, so a malformed request says so whatever
    // the token.
    let selector = Selector::from_form(request)?;

    let assumer = match field {
        "refresh_token" => {
            // A refresh token is redeemed only by the confidential client it was issued to;
            // the public default client's refresh tokens are redeemable nowhere.
            let client = request.client.ok_or_else(|| {
                credential_error(
                    field,
                    Error::credential(
                        "a refresh token is redeemed only by the client it was issued to, which \
                         must authenticate with Basic",
                    ),
                )
            })?;
            let (principal, _) = state
                .redeem_refresh_token(presented, &client.key, request.now)
                .map_err(|e| credential_error(field, e))?;
            principal
        }
        _ => {
            let (principal, _) = state
                .authenticate_token(presented, request.now)
                .map_err(|e| credential_error(field, e))?;
            principal
        }
    };

    let principal = {
        let dir = state.snapshot.directory();
        let profile = selector.find(&dir)?;
        let principal = authn::assume_profile(&dir, &assumer, &profile)?;
        authn::check_tenant(&dir, &profile.account_id, request.tenant)?;
        principal
    };
    // No refresh token: trust is re-checked on every assume.
    let issue = request.issue(&scope, GRANT_ASSUME, false);
    Ok(state.issue_ibm(&principal, &issue)?)
}

/// A failed credential, named: `"The access_token is not valid: the token has expired."`.
fn credential_error(field: &str, error: Error) -> IbmError {
    match error.kind() {
        ErrorKind::Unavailable | ErrorKind::Internal => error.into(),
        _ => Error::credential(format!(
            "The {field} is not valid: {}.",
            error.message().trim_end_matches('.')
        ))
        .into(),
    }
}

/// A form field that is present and not blank, trimmed.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Which profile the request names.
enum Selector {
    Id(String),
    Crn(String),
    Name { name: String, account: String },
}

impl Selector {
    fn from_form(request: &GrantRequest<'_>) -> Result<Selector, IbmError> {
        let form = request.form;
        let id = given(&form.profile_id);
        let crn = given(&form.profile_crn);
        let name = given(&form.profile_name);
        let account = given(&form.account);
        let count = [id, crn, name].iter().filter(|v| v.is_some()).count();
        if count == 0 {
            return Err(IbmError::invalid(
                "The assume grant needs one of profile_id, profile_crn, or profile_name with \
                 account, to say which trusted profile to assume.",
            ));
        }
        if count > 1 {
            return Err(IbmError::invalid(
                "Give exactly one of profile_id, profile_crn or profile_name (with account), \
                 not several.",
            ));
        }
        if let Some(id) = id {
            if account.is_some() {
                return Err(IbmError::invalid(
                    "account is only used with profile_name; remove it or select by name.",
                ));
            }
            return Ok(Selector::Id(
                limits::bounded("profile_id", id, limits::MAX_ID)?.to_owned(),
            ));
        }
        if let Some(crn) = crn {
            if account.is_some() {
                return Err(IbmError::invalid(
                    "account is only used with profile_name; remove it or select by name.",
                ));
            }
            ids::parse_crn("profile_crn", crn)?;
            return Ok(Selector::Crn(crn.to_owned()));
        }
        let name = name.unwrap_or_default();
        let account = account.ok_or_else(|| {
            IbmError::invalid("profile_name needs account: the id of the profile's account.")
        })?;
        Ok(Selector::Name {
            name: limits::bounded("profile_name", name, limits::MAX_NAME)?.to_owned(),
            account: ids::account_id("account", account)?,
        })
    }

    fn find(&self, dir: &Directory) -> Result<Arc<TrustedProfile>, IbmError> {
        let found = match self {
            Selector::Id(id) => dir.profile(id),
            Selector::Crn(crn) => dir.profile_by_crn(crn),
            Selector::Name { name, account } => dir.profile_by_name(account, name),
        };
        found.cloned().ok_or_else(|| {
            IbmError::invalid(match self {
                Selector::Id(id) => format!("Trusted profile {id} not found."),
                Selector::Crn(crn) => format!("No trusted profile has CRN {crn}."),
                Selector::Name { name, account } => {
                    format!("Account {account} has no trusted profile named {name:?}.")
                }
            })
        })
    }
}
