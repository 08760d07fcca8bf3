//! MFA administration: an account's requirement (`PATCH /v1/accounts/{id}`) and a user's TOTP
//! factor (`POST /v1/users/{id}/totp`, `POST /v1/users/{id}/totp/confirm`,
//! `DELETE /v1/users/{id}/totp`).
//!
//! The TOTP secret is generated here, shown once in the enrolment response, and stored sealed
//! under the refresh key with its own purpose (`totp::SEAL_PURPOSE`). A factor counts for MFA only
//! once confirmed with a first valid code. Who may do what is the core's decision
//! ([`tessera_core::authz`]): a first factor is set up by the user or, like an initial
//! password, by an administrator of its account whose privileges contain the user's; once
//! confirmed, only the user changes it, and replacing or removing it needs that factor now
//! (step-up): a current code in the request body (`{"code": "123456"}`), or a token from a
//! sign-in with a code in the last five minutes. A replacement is held beside the confirmed
//! factor and takes over only once confirmed, so MFA never lapses in between.

use super::auth::Caller;
use super::errors::AdminError;
use super::kit::Write;
use super::kit::{audit, created, deleted, settle, AdminJson, OptionalAdminJson};
use super::kit::{find_or_404, internal};
use super::views::rfc3339;
use crate::http::{PeerAddr, RequestContext};
use crate::state::AppState;
use crate::throttle::{Attempt, Kind};
use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use std::net::IpAddr;
use tessera_api::admin as api;
use tessera_core::authn::{self, FactorSecret, TotpChecked};
use tessera_core::authz::Action;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{TotpEnrollment, User};
use tessera_core::totp;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/users/{id}/totp", post(totp_enroll).delete(totp_delete))
        .route("/v1/users/{id}/totp/confirm", post(totp_confirm))
}

async fn find_user(state: &AppState, id: &str) -> Result<User, AdminError> {
    match find_or_404(state, EntityKind::User, id).await? {
        Entity::User(user) => Ok(user),
        _ => Err(AdminError::internal("the store returned another kind")),
    }
}

async fn find_factor(state: &AppState, user: &User) -> Result<Option<TotpEnrollment>, AdminError> {
    match state.store.find(EntityKind::Totp, &user.id).await? {
        Some(Entity::Totp(enrollment)) => Ok(Some(enrollment)),
        _ => Ok(None),
    }
}

fn too_many(retry_after: u64) -> AdminError {
    AdminError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many wrong codes; try again in {retry_after} seconds"),
    )
}

/// A code, when given, is six digits whether or not a confirmed factor will check it: a
/// malformed value is refused, never ignored (SECURITY.md, rule 8).
fn check_code_shape(code: Option<&str>) -> Result<(), AdminError> {
    if let Some(code) = code {
        totp::parse_code(code)?;
    }
    Ok(())
}

/// Checks a code of `which` secret of `enrollment`, throttled like codes at sign-in and never
/// accepted twice. `Ok(None)` when no code was given.
async fn checked_code(
    state: &AppState,
    source: Option<IpAddr>,
    enrollment: &TotpEnrollment,
    which: FactorSecret,
    code: Option<&str>,
) -> Result<Option<TotpChecked>, AdminError> {
    let Some(code) = code else {
        return Ok(None);
    };
    totp::parse_code(code)?;
    let keys = [Attempt::new(Kind::Totp, &enrollment.user_id, source)];
    state
        .throttle
        .gate(&keys)
        .await
        .map_err(|locked| too_many(locked.retry_after))?;
    let checked = authn::check_totp(
        &state.refresh_key,
        enrollment,
        which,
        code,
        state.clock.now(),
    )?;
    let Some(checked) = checked else {
        state.throttle.failure(&keys);
        return Err(AdminError::invalid(
            "the code is wrong or expired; enter the current code of the authenticator app",
        ));
    };
    if !state
        .throttle
        .use_totp_step(&enrollment.user_id, checked.step())
    {
        state.throttle.failure(&keys);
        return Err(AdminError::invalid(
            "this code has already been used; wait for the next one",
        ));
    }
    state.throttle.success(&keys);
    Ok(Some(checked))
}

async fn totp_enroll(
    Write { state, ctx, caller }: Write,
    peer: Option<Extension<PeerAddr>>,
    Path(id): Path<String>,
    query: Result<Query<api::EnrollQuery>, axum::extract::rejection::QueryRejection>,
    OptionalAdminJson(body): OptionalAdminJson<api::CodeBody>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let source = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let body = body.unwrap_or_default();
    let user = find_user(&state, &id).await?;
    let existing = find_factor(&state, &user).await?;
    // Who may enrol comes first, so a stranger learns nothing about the factor.
    caller.authorize(
        &state,
        &Action::EnrollFactor {
            user: &user,
            existing: None,
            proof: None,
            now: state.clock.now(),
        },
    )?;
    if user.federated {
        return Err(AdminError::invalid(
            "federated users authenticate at their identity provider; a TOTP factor here would never be used",
        ));
    }
    check_code_shape(body.code.as_deref())?;
    let confirmed = existing.as_ref().filter(|e| e.confirmed);
    if confirmed.is_some() && !query.replace {
        return Err(AdminError::new(
            StatusCode::CONFLICT,
            "failed_precondition",
            "the user already has a confirmed TOTP factor; pass ?replace=true with a current code of it in the body ({\"code\": \"…\"}) to replace it (the new factor counts only once confirmed)",
        ));
    }
    let proof = match confirmed {
        Some(existing) => {
            checked_code(
                &state,
                source,
                existing,
                FactorSecret::Confirmed,
                body.code.as_deref(),
            )
            .await?
        }
        None => None,
    };
    caller.authorize(
        &state,
        &Action::EnrollFactor {
            user: &user,
            existing: existing.as_ref(),
            proof: proof.as_ref(),
            now: state.clock.now(),
        },
    )?;
    let secret = totp::TotpSecret::generate(&state.rng).map_err(internal)?;
    let sealed = state
        .refresh_key
        .seal(totp::SEAL_PURPOSE, secret.as_bytes(), &state.rng)
        .map_err(internal)?;
    let (enrollment, action) = match confirmed {
        Some(existing) => (
            TotpEnrollment {
                pending_secret: Some(sealed),
                ..existing.clone()
            },
            "totp.replace",
        ),
        None => (
            TotpEnrollment {
                user_id: user.id.clone(),
                account_id: user.account_id.clone(),
                sealed_secret: sealed,
                confirmed: false,
                pending_secret: None,
                created_at: state.clock.now(),
            },
            "totp.create",
        ),
    };
    write_factor(&state, &ctx, &caller, &user, action, Some(&enrollment)).await?;
    Ok(created(api::TotpEnrollView {
        user_id: user.id.clone(),
        secret: api::OneTime::new(secret.to_base32()),
        otpauth_uri: api::OneTime::new(secret.otpauth_uri(&user.email)),
        confirmed: false,
        replacement: confirmed.is_some(),
        created_at: rfc3339(enrollment.created_at),
    }))
}

async fn totp_confirm(
    Write { state, ctx, caller }: Write,
    peer: Option<Extension<PeerAddr>>,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<api::ConfirmCodeBody>,
) -> Result<Response, AdminError> {
    let source = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let user = find_user(&state, &id).await?;
    caller.authorize(
        &state,
        &Action::ConfirmFactor {
            user: &user,
            replacement: false,
        },
    )?;
    let Some(mut enrollment) = find_factor(&state, &user).await? else {
        return Err(AdminError::not_found(format!(
            "user {} has no TOTP factor; enrol one first (POST /v1/users/{}/totp)",
            user.id, user.id
        )));
    };
    let code = body
        .code
        .as_deref()
        .ok_or_else(|| AdminError::invalid("code is required: the current code of the factor"))?;
    let which = match (enrollment.confirmed, enrollment.pending_secret.is_some()) {
        (false, _) => FactorSecret::Unconfirmed,
        (true, true) => FactorSecret::Replacement,
        (true, false) => FactorSecret::Confirmed,
    };
    if which != FactorSecret::Unconfirmed {
        caller.authorize(
            &state,
            &Action::ConfirmFactor {
                user: &user,
                replacement: true,
            },
        )?;
    }
    checked_code(&state, source, &enrollment, which, Some(code)).await?;
    let action = match which {
        FactorSecret::Unconfirmed => {
            enrollment.confirmed = true;
            Some("totp.confirm")
        }
        FactorSecret::Replacement => {
            if let Some(pending) = enrollment.pending_secret.take() {
                enrollment.sealed_secret = pending;
            }
            enrollment.created_at = state.clock.now();
            Some("totp.replace.confirm")
        }
        // Confirming an already confirmed factor just checks the code.
        FactorSecret::Confirmed => None,
    };
    if let Some(action) = action {
        write_factor(&state, &ctx, &caller, &user, action, Some(&enrollment)).await?;
    }
    Ok(Json(api::TotpStatusView {
        user_id: user.id,
        confirmed: true,
        created_at: rfc3339(enrollment.created_at),
    })
    .into_response())
}

async fn totp_delete(
    Write { state, ctx, caller }: Write,
    peer: Option<Extension<PeerAddr>>,
    Path(id): Path<String>,
    OptionalAdminJson(body): OptionalAdminJson<api::CodeBody>,
) -> Result<Response, AdminError> {
    let source = peer.map(|Extension(PeerAddr(addr))| addr.ip());
    let body = body.unwrap_or_default();
    let user = find_user(&state, &id).await?;
    let Some(existing) = find_factor(&state, &user).await? else {
        caller.authorize(
            &state,
            &Action::ConfirmFactor {
                user: &user,
                replacement: false,
            },
        )?;
        return Err(AdminError::not_found(format!(
            "user {} has no TOTP factor",
            user.id
        )));
    };
    // Refuse strangers before checking any code.
    let unproven = Action::RemoveFactor {
        user: &user,
        existing: &TotpEnrollment {
            confirmed: false,
            ..existing.clone()
        },
        proof: None,
        now: state.clock.now(),
    };
    caller.authorize(&state, &unproven)?;
    check_code_shape(body.code.as_deref())?;
    let proof = if existing.confirmed {
        checked_code(
            &state,
            source,
            &existing,
            FactorSecret::Confirmed,
            body.code.as_deref(),
        )
        .await?
    } else {
        None
    };
    caller.authorize(
        &state,
        &Action::RemoveFactor {
            user: &user,
            existing: &existing,
            proof: proof.as_ref(),
            now: state.clock.now(),
        },
    )?;
    write_factor(&state, &ctx, &caller, &user, "totp.delete", None).await?;
    Ok(deleted())
}

/// Writes `factor` as `user`'s TOTP factor (`None`: removes it), audited as `action` on the
/// user, and waits for this node's snapshot to have it.
async fn write_factor(
    state: &AppState,
    ctx: &RequestContext,
    caller: &Caller,
    user: &User,
    action: &str,
    factor: Option<&TotpEnrollment>,
) -> Result<(), AdminError> {
    let event = audit(
        state,
        ctx,
        caller.iam_id(),
        action,
        format!("TOTP factor of user {}", user.id),
        &Entity::User(user.clone()),
    );
    let seq = match factor {
        Some(enrollment) => {
            state
                .store
                .put(&Entity::Totp(enrollment.clone()), &event)
                .await?
        }
        None => {
            state
                .store
                .delete(EntityKind::Totp, &user.id, &event)
                .await?
        }
    };
    settle(state, seq).await;
    crate::security_log::change(ctx, &event);
    Ok(())
}
