//! The `password` grant: a user's password (Argon2id, on a blocking thread) and, where required, a TOTP code.
//!
//! Order of checks: Basic client authentication (IBM requires it), the form, the throttle for
//! the user name and source address (429 while locked, even with the right password), then the
//! password. An unknown user costs the same Argon2id verification as a known one (against a
//! dummy hash) and gets the same error as a wrong password, so neither the answer nor its timing
//! says which e-mail addresses exist. Argon2id runs on the blocking pool behind a small
//! semaphore: logins queue among themselves and never hold up the other grants.
//!
//! MFA: when the user's account requires TOTP, or the user has a confirmed factor, `otp` must
//! carry a valid code (one step of clock skew); the token then has `acr` 2 and `amr`
//! `["pwd", "otp"]`. A code is accepted once per user and step on this node.

use super::token::{gate, GrantRequest, GRANT_PASSWORD};
use super::IbmError;
use crate::state::AppState;
use crate::throttle::Key;
use crate::tokens::{IssueRequest, IssuedTokens};
use axum::http::StatusCode;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use tessera_core::error::{Error, ErrorKind};
use tessera_core::model::{MfaRequirement, User};
use tessera_core::token::normalize_scope;
use tessera_core::{authn, ids, limits, secret, totp};

/// The one answer for an unknown user and a wrong password.
const BAD_CREDENTIALS: &str =
    "The credentials you entered for the user are incorrect: unknown user or wrong password.";

fn bad_credentials() -> IbmError {
    IbmError::new(StatusCode::BAD_REQUEST, "BXNIM0602E", BAD_CREDENTIALS)
}

fn refused(message: &str) -> IbmError {
    Error::new(ErrorKind::InvalidCredential, message).into()
}

pub(super) async fn password_grant(
    request: &GrantRequest<'_>,
    peer: Option<IpAddr>,
) -> Result<IssuedTokens, IbmError> {
    let GrantRequest {
        state,
        form,
        client,
        tenant,
        now,
    } = *request;
    let client = client.ok_or_else(IbmError::missing_client_auth)?;
    let username = limits::required("username", form.username.as_deref(), limits::MAX_EMAIL)?
        .trim()
        .to_owned();
    let password = limits::required("password", form.password.as_deref(), limits::MAX_PASSWORD)?;
    let account = match form.account.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(account) => Some(ids::account_id("account", account)?),
    };
    let scope = normalize_scope(form.scope.as_deref())?;

    let address = peer.map(Key::Address);
    let user_key = Key::credential("user", &username.to_ascii_lowercase());
    let keys: Vec<Key> = [address.clone(), Some(user_key.clone())]
        .into_iter()
        .flatten()
        .collect();
    gate(state, &keys).await?;

    let user = find_user(state, &username, account.as_deref())?;
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash(state).to_owned());
    let verified = verify(state, stored, password.to_owned()).await?;
    let user = match user {
        Some(user) if verified && user.password_hash.is_some() => user,
        Some(user) if user.federated => {
            // Federated users have no password here; say so (after the same work as a wrong
            // password, so the timing is alike).
            return Err(refused(
                "This user is federated; federated users log in through their identity provider.",
            ));
        }
        Some(user) if user.password_hash.is_none() => {
            return Err(refused(
                "This user has no password; an administrator can set one, or use an API key.",
            ));
        }
        _ => {
            state.throttle.failure(&keys);
            return Err(bad_credentials());
        }
    };

    let second_factor =
        check_second_factor(state, &user, form.otp.as_deref(), address, now).await?;
    let principal = {
        let dir = state.snapshot.directory();
        let principal = authn::password_principal(&dir, &user.id, second_factor)?;
        authn::check_tenant(&dir, &principal.account_id, tenant)?;
        principal
    };
    state.throttle.success(&user_key);
    let issue = IssueRequest {
        client_id: &client.id,
        scope: &scope,
        grant_type: GRANT_PASSWORD,
        with_refresh_token: true,
        now,
    };
    Ok(state.issue_ibm(&principal, &issue)?)
}

/// The user `username` names: an id (`IBMid-…`) or an e-mail address, within `account` if given.
/// `Ok(None)` when there is none; an error when the e-mail is in several accounts and no
/// account was given.
fn find_user(
    state: &AppState,
    username: &str,
    account: Option<&str>,
) -> Result<Option<Arc<User>>, IbmError> {
    let dir = state.snapshot.directory();
    let in_account = |u: &&Arc<User>| account.is_none_or(|a| u.account_id == a);
    if username.starts_with(ids::USER_ID_PREFIX) {
        return Ok(dir.user(username).filter(in_account).cloned());
    }
    let mut matches = dir.users_with_email(username).filter(in_account);
    let first = matches.next().cloned();
    if first.is_some() && matches.next().is_some() {
        return Err(IbmError::invalid(
            "This e-mail address belongs to users in several accounts; pass the account id in `account` to choose one.",
        ));
    }
    Ok(first)
}

/// Argon2id on the blocking pool, at most `PASSWORD_CHECKS` at a time.
async fn verify(state: &AppState, stored: String, password: String) -> Result<bool, IbmError> {
    let _permit = state
        .password_checks
        .acquire()
        .await
        .map_err(|_| Error::internal("password check semaphore closed"))?;
    tokio::task::spawn_blocking(move || secret::verify_password(&stored, &password))
        .await
        .map_err(|_| Error::internal("password check task failed").into())
}

/// An Argon2id hash of a random password, with the same parameters as real ones: verifying an
/// unknown user's password against it costs what a real check costs.
fn dummy_hash(state: &AppState) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 16];
        let _ = aws_lc_rs::rand::SecureRandom::fill(&state.rng, &mut random);
        let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
        secret::hash_password(&password, &state.rng).unwrap_or_default()
    })
}

/// Enforces the second factor. `Ok(true)` when a valid TOTP code was given and required or
/// available; `Ok(false)` when no second factor applies.
async fn check_second_factor(
    state: &AppState,
    user: &User,
    otp: Option<&str>,
    address: Option<Key>,
    now: i64,
) -> Result<bool, IbmError> {
    let (required, enrollment) = {
        let dir = state.snapshot.directory();
        let required = dir
            .account(&user.account_id)
            .is_some_and(|a| a.mfa == MfaRequirement::Totp);
        let enrollment = dir.totp(&user.id).filter(|t| t.confirmed).cloned();
        (required, enrollment)
    };
    let Some(enrollment) = enrollment else {
        if required {
            return Err(refused(
                "This account requires a second factor and the user has no confirmed TOTP factor; enrol one first (tessera iam user totp enroll).",
            ));
        }
        return Ok(false);
    };
    let Some(code) = otp.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(refused(
            "A one-time code is required for this user: pass the current TOTP code in `otp`.",
        ));
    };
    let totp_key = Key::credential("totp", &user.id);
    let keys: Vec<Key> = [address, Some(totp_key.clone())]
        .into_iter()
        .flatten()
        .collect();
    gate(state, &keys).await?;
    let secret = state
        .refresh_key
        .open(totp::SEAL_PURPOSE, &enrollment.sealed_secret)
        .map_err(|_| Error::internal("a stored TOTP secret cannot be unsealed"))?;
    let secret = totp::TotpSecret::from_bytes(secret);
    let Some(step) = totp::verify(&secret, code, now) else {
        state.throttle.failure(&keys);
        return Err(refused("The one-time code is wrong or expired."));
    };
    if !state.throttle.use_totp_step(&user.id, step) {
        state.throttle.failure(&keys);
        return Err(refused(
            "This one-time code has already been used; wait for the next one.",
        ));
    }
    state.throttle.success(&totp_key);
    Ok(true)
}
