//! Signing keys for operators (global administrator only): `GET /v1/signing_keys` lists every
//! stored key with its life-cycle state, never any private material; `POST
//! /v1/signing_keys/rotate` publishes a successor now (scheduled) or replaces the signer at once
//! (immediate), through the same lease-guarded [`crate::rotation::Rotator`] as the automatic
//! rotation.

use super::auth::Caller;
use super::kit::Write;
use super::kit::{list_body, settle, AdminJson};
use super::views::rfc3339;
use super::AdminError;
use crate::rotation::{self, ForcedRotation, LeaseBusy, Rotator};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::model::{KeyState, KeyUse, SigningKeyRecord};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/signing_keys", get(keys_list))
        .route("/v1/signing_keys/rotate", post(keys_rotate))
}

fn view(record: &SigningKeyRecord, published: &[String]) -> api::SigningKeyView {
    api::SigningKeyView {
        kid: record.kid.clone(),
        algorithm: record.algorithm.as_str().to_owned(),
        key_use: match record.key_use {
            KeyUse::Jwt => api::KeyUse::Jwt,
            KeyUse::YandexIam => api::KeyUse::YandexIam,
        },
        state: match record.state {
            KeyState::Next => api::KeyState::Next,
            KeyState::Active => api::KeyState::Active,
            KeyState::Retired => api::KeyState::Retired,
        },
        created_at: rfc3339(record.created_at),
        retired_at: record.retired_at.map(rfc3339),
        published: published.contains(&record.kid),
    }
}

/// Every stored key, ordered by kid (which starts with the creation time).
async fn key_list_body(state: &AppState) -> Result<Response, AdminError> {
    let mut records = rotation::list_keys(state.store.as_ref())
        .await
        .map_err(store_failure)?;
    records.sort_by(|a, b| a.kid.cmp(&b.kid));
    let published: Vec<String> = state
        .snapshot
        .keyring()
        .published()
        .iter()
        .map(|jwk| jwk.kid.clone())
        .collect();
    let views: Vec<api::SigningKeyView> = records.iter().map(|r| view(r, &published)).collect();
    Ok(list_body("signing_keys", views))
}

/// Store errors keep their mapping; anything else is internal.
fn store_failure(error: anyhow::Error) -> AdminError {
    match error.downcast::<tessera_store::StoreError>() {
        Ok(store) => AdminError::from(store),
        Err(other) => {
            if other.downcast_ref::<LeaseBusy>().is_some() {
                return AdminError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    LeaseBusy.to_string(),
                );
            }
            AdminError::internal(format!("{other:#}"))
        }
    }
}

async fn keys_list(State(state): State<AppState>, caller: Caller) -> Result<Response, AdminError> {
    caller.authorize(&state, &Action::ReadSigningKeys)?;
    key_list_body(&state).await
}

async fn keys_rotate(
    Write { state, ctx, caller }: Write,
    AdminJson(body): AdminJson<api::SigningKeyRotate>,
) -> Result<Response, AdminError> {
    caller.authorize(&state, &Action::RotateSigningKeys)?;
    let key_use = KeyUse::parse(&body.key_use)
        .ok_or_else(|| AdminError::invalid("use must be one of jwt, yandex-iam"))?;
    let mode = if body.immediate {
        ForcedRotation::Immediate
    } else {
        ForcedRotation::Scheduled
    };
    // A holder name of this request's own: the automatic rotation on this node holds the lease
    // as the node, and must not be mistaken for this request.
    let holder = format!("{}/{}", state.node_id, ctx.id);
    let rotator = Rotator {
        node_id: &holder,
        ..Rotator::of(&state)
    };
    let seq = rotator
        .force(key_use, mode, state.clock.now(), caller.iam_id())
        .await
        .map_err(store_failure)?;
    crate::security_log::operator_action(
        &ctx,
        caller.iam_id(),
        "signing_key.rotate",
        &format!("{} keys, immediate: {}", key_use.as_str(), body.immediate),
    );
    if seq > 0 {
        settle(&state, seq).await;
    }
    key_list_body(&state).await
}
