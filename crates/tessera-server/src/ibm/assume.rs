//! The `assume` grant: a trusted identity's token in, a trusted-profile token out.
//!
//! The request carries exactly one credential: `access_token` (either token format Tessera
//! issues), `refresh_token` (redeemed by the Basic client that presents it, or `default`), or
//! `cookie`. Tessera has no browser sessions, so `cookie` carries an access token too (e.g. the
//! value of a console cookie holding an IAM token). It selects exactly one profile: `profile_id`,
//! `profile_crn`, or `profile_name` with `account`. The presented identity must be a trusted
//! identity of the profile and meet its account's MFA level
//! ([`tessera_core::trusted_profile::check_trust`]); `IBM-Cloud-Tenant` pins the profile's
//! account. The answer has no refresh token: the trust must be checked again for every token,
//! so clients repeat the grant (the SDKs do).

use super::token::{GrantRequest, GRANT_ASSUME};
use super::IbmError;
use crate::tokens::{IssueRequest, IssuedTokens};
use std::sync::Arc;
use tessera_core::authn;
use tessera_core::directory::Directory;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::ids;
use tessera_core::limits;
use tessera_core::model::{SubjectKind, TrustedProfile};
use tessera_core::principal::{Actor, AuthnMethod};
use tessera_core::token::{normalize_scope, sub_type};
use tessera_core::trusted_profile::{self, PresentedIdentity};

/// Who presented the credential, with what it says about their authentication.
struct Assumer {
    iam_id: String,
    kind: SubjectKind,
    subject_id: String,
    account_id: String,
    acr: u8,
    amr: Vec<String>,
}

pub(super) fn assume_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest {
        state,
        form,
        client,
        tenant,
        now,
    } = *request;
    let scope = normalize_scope(form.scope.as_deref())?;
    let client_id = authn::client_id_or_default(client);

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
            let (principal, _) = state
                .redeem_refresh_token(presented, client_id, now)
                .map_err(|e| credential_error(field, e))?;
            Assumer {
                iam_id: principal.iam_id.clone(),
                kind: principal.kind,
                subject_id: principal.id.clone(),
                account_id: principal.account_id.clone(),
                acr: principal.acr,
                amr: principal.amr.clone(),
            }
        }
        _ => {
            let token = state
                .verify_access_token(presented, now)
                .map_err(|e| credential_error(field, e))?;
            let kind = SubjectKind::of_iam_id(token.iam_id()).ok_or_else(|| {
                IbmError::from(Error::credential(format!(
                    "The {field} names an identity of unknown kind."
                )))
            })?;
            Assumer {
                iam_id: token.iam_id().to_owned(),
                kind,
                subject_id: token.subject_id().to_owned(),
                account_id: token.account_id().to_owned(),
                acr: token.acr(),
                amr: token.amr().to_vec(),
            }
        }
    };

    let principal = {
        let dir = state.snapshot.directory();
        let profile = selector.find(&dir)?;
        trusted_profile::check_trust(
            &profile,
            &PresentedIdentity {
                iam_id: &assumer.iam_id,
                kind: assumer.kind,
                account_id: &assumer.account_id,
                acr: assumer.acr,
            },
            &dir,
        )
        .map_err(Error::from)?;
        authn::check_tenant(&dir, &profile.account_id, tenant)?;
        let actor = Actor {
            sub: assumer.subject_id.clone(),
            iam_id: assumer.iam_id.clone(),
            sub_type: sub_type(assumer.kind).0.to_owned(),
            // A CRN has no name: its CRN stands in.
            name: dir.subject_name(&assumer.iam_id).map_or_else(
                || {
                    assumer
                        .iam_id
                        .strip_prefix(ids::CRN_IAM_ID_PREFIX)
                        .unwrap_or(&assumer.iam_id)
                        .to_owned()
                },
                str::to_owned,
            ),
        };
        authn::profile_principal(
            &profile,
            actor,
            AuthnMethod::Assumed,
            assumer.acr,
            assumer.amr,
        )
    };
    let issue = IssueRequest {
        client_id,
        scope: &scope,
        grant_type: GRANT_ASSUME,
        // No refresh token: trust is re-checked on every assume.
        with_refresh_token: false,
        now,
    };
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
