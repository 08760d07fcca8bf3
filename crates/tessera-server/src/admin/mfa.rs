//! MFA administration: an account's requirement (`PATCH /v1/accounts/{id}`) and a user's TOTP
//! factor (`POST /v1/users/{id}/totp`, `POST /v1/users/{id}/totp/confirm`,
//! `DELETE /v1/users/{id}/totp`).
//!
//! The TOTP secret is generated here, shown once in the enrolment response, and stored sealed
//! under the refresh key with its own purpose (`totp::SEAL_PURPOSE`). A factor counts for MFA only
//! once confirmed with a first valid code. The user themself or an administrator of the user's
//! account may enrol, confirm and delete; only an account administrator (or the global one) may
//! change the account's requirement.

use super::auth::Caller;
use super::directory_objects::{find_or_404, internal};
use super::errors::AdminError;
use super::views::{rfc3339, AccountView};
use super::{audit, created, deleted, settle, AdminJson};
use crate::http::RequestContext;
use crate::state::{now, AppState};
use crate::throttle::Key;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{MfaRequirement, Resource, Role, TotpEnrollment, User};
use tessera_core::totp;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/accounts/{id}", patch(account_update))
        .route("/v1/users/{id}/totp", post(totp_enroll).delete(totp_delete))
        .route("/v1/users/{id}/totp/confirm", post(totp_confirm))
}

/// `totp` of the user view: `none`, `pending` (enrolled, not confirmed) or `confirmed`.
pub fn totp_status(state: &AppState, user_id: &str) -> &'static str {
    match state.snapshot.directory().totp(user_id) {
        None => "none",
        Some(t) if t.confirmed => "confirmed",
        Some(_) => "pending",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountUpdate {
    /// `TOTP` or `NONE`.
    mfa: Option<String>,
}

async fn account_update(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<AccountUpdate>,
) -> Result<Response, AdminError> {
    let Entity::Account(mut account) = find_or_404(&state, EntityKind::Account, &id).await? else {
        return Err(AdminError::internal("the store returned another kind"));
    };
    caller.require(&state, Role::Admin, &Resource::Account(account.id.clone()))?;
    let Some(mfa) = body.mfa else {
        return Err(AdminError::invalid(
            "nothing to update: give mfa (\"TOTP\" or \"NONE\")",
        ));
    };
    account.mfa = MfaRequirement::parse(&mfa).ok_or_else(|| {
        AdminError::invalid(format!("mfa must be \"TOTP\" or \"NONE\", got {mfa:?}"))
    })?;
    let seq = state
        .store
        .put(
            &Entity::Account(account.clone()),
            &audit(
                &ctx,
                caller.iam_id(),
                "account.update",
                format!("account {} mfa={}", account.id, account.mfa.as_str()),
            ),
        )
        .await?;
    settle(&state, seq).await;
    tracing::info!(request_id = %ctx.id, actor = caller.iam_id(), account = %account.id, mfa = account.mfa.as_str(), "account updated");
    Ok(Json(AccountView::from(&account)).into_response())
}

/// Finds the user and checks that the caller is that user or an administrator of its account.
async fn user_for_totp(state: &AppState, caller: &Caller, id: &str) -> Result<User, AdminError> {
    let Entity::User(user) = find_or_404(state, EntityKind::User, id).await? else {
        return Err(AdminError::internal("the store returned another kind"));
    };
    if caller.iam_id() != user.id {
        caller.require(
            state,
            Role::Admin,
            &Resource::Account(user.account_id.clone()),
        )?;
    }
    Ok(user)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EnrollQuery {
    #[serde(default)]
    replace: bool,
}

/// The enrolment answer: the secret is shown here once. No `Debug`.
#[derive(Serialize)]
struct TotpEnrollView {
    user_id: String,
    secret: String,
    otpauth_uri: String,
    confirmed: bool,
    created_at: String,
}

#[derive(Serialize)]
struct TotpStatusView {
    user_id: String,
    confirmed: bool,
    created_at: String,
}

async fn totp_enroll(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<EnrollQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AdminError> {
    let Query(query) = query.map_err(|e| AdminError::invalid(e.body_text()))?;
    let user = user_for_totp(&state, &caller, &id).await?;
    if user.federated {
        return Err(AdminError::invalid(
            "federated users authenticate at their identity provider; a TOTP factor here would never be used",
        ));
    }
    let existing = state.store.find(EntityKind::Totp, &user.id).await?;
    if let Some(Entity::Totp(existing)) = &existing {
        if existing.confirmed && !query.replace {
            return Err(AdminError::new(
                StatusCode::CONFLICT,
                "failed_precondition",
                "the user already has a confirmed TOTP factor; pass ?replace=true to replace it (the new factor counts only once confirmed)",
            ));
        }
    }
    let secret = totp::TotpSecret::generate(&state.rng).map_err(internal)?;
    let sealed = state
        .refresh_key
        .seal(totp::SEAL_PURPOSE, secret.as_bytes(), &state.rng)
        .map_err(internal)?;
    let enrollment = TotpEnrollment {
        user_id: user.id.clone(),
        account_id: user.account_id.clone(),
        sealed_secret: sealed,
        confirmed: false,
        created_at: now(),
    };
    let seq = state
        .store
        .put(
            &Entity::Totp(enrollment.clone()),
            &audit(
                &ctx,
                caller.iam_id(),
                "totp.create",
                format!("TOTP factor of user {}", user.id),
            ),
        )
        .await?;
    settle(&state, seq).await;
    tracing::info!(request_id = %ctx.id, actor = caller.iam_id(), user = %user.id, "TOTP factor enrolled");
    Ok(created(TotpEnrollView {
        user_id: user.id.clone(),
        secret: secret.to_base32(),
        otpauth_uri: secret.otpauth_uri(&user.email),
        confirmed: false,
        created_at: rfc3339(enrollment.created_at),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmBody {
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    Path(id): Path<String>,
    AdminJson(body): AdminJson<ConfirmBody>,
) -> Result<Response, AdminError> {
    let user = user_for_totp(&state, &caller, &id).await?;
    let Some(Entity::Totp(mut enrollment)) = state.store.find(EntityKind::Totp, &user.id).await?
    else {
        return Err(AdminError::not_found(format!(
            "user {} has no TOTP factor; enrol one first (POST /v1/users/{}/totp)",
            user.id, user.id
        )));
    };
    totp::parse_code(&body.code)?;
    // Guessing codes here is throttled like guessing them at login.
    let key = Key::credential("totp", &user.id);
    state
        .throttle
        .gate(std::slice::from_ref(&key))
        .await
        .map_err(|locked| {
            AdminError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!(
                    "too many wrong codes; try again in {} seconds",
                    locked.retry_after
                ),
            )
        })?;
    let secret = state
        .refresh_key
        .open(totp::SEAL_PURPOSE, &enrollment.sealed_secret)
        .map_err(|_| AdminError::internal("a stored TOTP secret cannot be unsealed"))?;
    let secret = totp::TotpSecret::from_bytes(secret);
    let Some(step) = totp::verify(&secret, &body.code, now()) else {
        state.throttle.failure(std::slice::from_ref(&key));
        return Err(AdminError::invalid(
            "the code is wrong or expired; enter the current code of the authenticator app",
        ));
    };
    // The confirming code cannot be used again to log in.
    state.throttle.use_totp_step(&user.id, step);
    state.throttle.success(&key);
    if !enrollment.confirmed {
        enrollment.confirmed = true;
        let seq = state
            .store
            .put(
                &Entity::Totp(enrollment.clone()),
                &audit(
                    &ctx,
                    caller.iam_id(),
                    "totp.confirm",
                    format!("TOTP factor of user {}", user.id),
                ),
            )
            .await?;
        settle(&state, seq).await;
    }
    Ok(Json(TotpStatusView {
        user_id: user.id,
        confirmed: true,
        created_at: rfc3339(enrollment.created_at),
    })
    .into_response())
}

async fn totp_delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    let user = user_for_totp(&state, &caller, &id).await?;
    if state
        .store
        .find(EntityKind::Totp, &user.id)
        .await?
        .is_none()
    {
        return Err(AdminError::not_found(format!(
            "user {} has no TOTP factor",
            user.id
        )));
    }
    let seq = state
        .store
        .delete(
            EntityKind::Totp,
            &user.id,
            &audit(
                &ctx,
                caller.iam_id(),
                "totp.delete",
                format!("TOTP factor of user {}", user.id),
            ),
        )
        .await?;
    settle(&state, seq).await;
    Ok(deleted())
}
