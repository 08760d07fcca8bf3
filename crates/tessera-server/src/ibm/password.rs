//! The `password` grant: a user's password (Argon2id, on a blocking thread) and, where required, a TOTP code.
//!
//! Order of checks: Basic client authentication (IBM requires it), the form, the throttle for
//! the user (one counter per user whatever spelling named it) from this source (429 while that
//! pair is locked, even with the right password; the owner elsewhere is unaffected), then the
//! password. An unknown user, a federated user and a user without a password cost the same
//! Argon2id verification as a known one (against a dummy hash) and get the same error as a
//! wrong password, so neither the answer nor its timing says who exists or how they sign in. Argon2id runs on the blocking pool behind a small
//! semaphore: logins queue among themselves and never hold up the other grants.
//!
//! MFA: when the user's account requires TOTP, or the user has a confirmed factor, `otp` must
//! carry a valid code (one step of clock skew); the token then has `acr` 2 and `amr`
//! `["pwd", "otp"]`. A code is accepted once per user and step on this node.

use super::grant::{gate, GrantRequest, GRANT_PASSWORD};
use super::IbmError;
use crate::state::AppState;
use crate::throttle::{Attempt, Kind};
use crate::tokens::IssuedTokens;
use axum::http::StatusCode;
use std::net::IpAddr;
use std::sync::OnceLock;
use tessera_core::authn::{self, FactorSecret, PasswordChecked, SecondFactor, TotpChecked};
use tessera_core::error::{Error, ErrorKind};
use tessera_core::principal::Principal;
use tessera_core::token::normalize_scope;
use tessera_core::{ids, limits, secret};

fn bad_credentials() -> IbmError {
    IbmError::new(
        StatusCode::BAD_REQUEST,
        "BXNIM0602E",
        authn::BAD_PASSWORD_CREDENTIALS,
    )
}

fn refused(message: &str) -> IbmError {
    Error::new(ErrorKind::InvalidCredential, message).into()
}

pub(super) async fn password_grant(
    request: &GrantRequest<'_>,
    peer: Option<IpAddr>,
) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    // Users sign in only through a confidential client (Basic); the tokens are issued to it.
    request.client.ok_or_else(IbmError::missing_client_auth)?;
    let credentials = PasswordCredentials {
        username: form.username.as_deref(),
        password: form.password.as_deref(),
        account: form.account.as_deref(),
        otp: form.otp.as_deref(),
    };
    let scope = normalize_scope(form.scope.as_deref())?;
    let principal =
        password_sign_in(state, &credentials, request.tenant, peer, request.now).await?;
    let issue = request.issue(&scope, GRANT_PASSWORD, true);
    Ok(state.issue_ibm(&principal, &issue)?)
}

/// What a user signs in with: as the password grant's form fields give them (and the admin
/// console's sign-in form).
pub struct PasswordCredentials<'a> {
    /// User id or e-mail address.
    pub username: Option<&'a str>,
    pub password: Option<&'a str>,
    /// The account, when an e-mail address is used in several.
    pub account: Option<&'a str>,
    /// The current TOTP code, where the user or account requires one.
    pub otp: Option<&'a str>,
}

/// Checks a user's password and second factor, throttled per (user, source) and per TOTP
/// factor: the one sign-in check of the `password` grant and of the admin console. A wrong
/// password and an unknown user get the same answer at the same cost.
pub async fn password_sign_in(
    state: &AppState,
    credentials: &PasswordCredentials<'_>,
    tenant: Option<&str>,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<Principal, IbmError> {
    let username = limits::required("username", credentials.username, limits::MAX_EMAIL)?
        .trim()
        .to_owned();
    let password = limits::required("password", credentials.password, limits::MAX_PASSWORD)?;
    let account = match credentials.account.map(str::trim) {
        None | Some("") => None,
        Some(account) => Some(ids::account_id("account", account)?),
    };

    // One throttle subject per user whatever spelling named it (the user id when the name
    // resolves), counted per source.
    let attempt = {
        let dir = state.snapshot.directory();
        authn::password_attempt(&dir, &username, account.as_deref())
    };
    let throttled = [Attempt::new(
        Kind::Password,
        attempt.throttle_subject(),
        peer,
    )];
    gate(state, &throttled).await?;

    let checked = check(state, attempt, password.to_owned()).await?;
    let Some(checked) = checked else {
        state.throttle.failure(&throttled);
        return Err(bad_credentials());
    };
    // The password is right: from here on, answers may say what else is missing.
    let code = check_second_factor(state, &checked, credentials.otp, peer, now).await?;
    let principal = {
        let dir = state.snapshot.directory();
        let principal = authn::password_principal(&dir, &checked, code.as_ref())?;
        authn::check_tenant(&dir, principal.account_id(), tenant)?;
        principal
    };
    state.throttle.success(&throttled);
    Ok(principal)
}

/// Argon2id on the blocking pool, at most `PASSWORD_CHECKS` at a time.
async fn check(
    state: &AppState,
    attempt: authn::PasswordAttempt,
    password: String,
) -> Result<Option<PasswordChecked>, IbmError> {
    let _permit = state
        .password_checks
        .acquire()
        .await
        .map_err(|_| Error::internal("password check semaphore closed"))?;
    let dummy = dummy_hash(state);
    tokio::task::spawn_blocking(move || authn::check_password(attempt, &password, dummy))
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
        let password = tessera_core::ids::hex(&random);
        secret::hash_password(&password, &state.rng).unwrap_or_default()
    })
}

/// Checks the second factor the user must present: `Ok(Some(proof))` for a valid code of the
/// confirmed factor, `Ok(None)` when none applies; refusals name what is missing.
async fn check_second_factor(
    state: &AppState,
    checked: &PasswordChecked,
    otp: Option<&str>,
    peer: Option<IpAddr>,
    now: i64,
) -> Result<Option<TotpChecked>, IbmError> {
    let enrollment = {
        let dir = state.snapshot.directory();
        match authn::second_factor(&dir, checked) {
            SecondFactor::NotRequired => return Ok(None),
            SecondFactor::NotEnrolled => {
                return Err(refused(
                    "This account requires a second factor and the user has no confirmed TOTP factor; enrol one first (tessera iam user totp enroll).",
                ))
            }
            SecondFactor::Required(enrollment) => enrollment,
        }
    };
    let Some(code) = otp.map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(refused(
            "A one-time code is required for this user: pass the current TOTP code in `otp`.",
        ));
    };
    let user_id = &checked.user().id;
    let throttled = [Attempt::new(Kind::Totp, user_id, peer)];
    gate(state, &throttled).await?;
    let proof = match authn::check_totp(
        &state.refresh_key,
        &enrollment,
        FactorSecret::Confirmed,
        code,
        now,
    ) {
        Ok(Some(proof)) => proof,
        Ok(None) | Err(_) => {
            state.throttle.failure(&throttled);
            return Err(refused("The one-time code is wrong or expired."));
        }
    };
    if !state.throttle.use_totp_step(user_id, proof.step()) {
        state.throttle.failure(&throttled);
        return Err(refused(
            "This one-time code has already been used; wait for the next one.",
        ));
    }
    state.throttle.success(&throttled);
    Ok(Some(proof))
}
