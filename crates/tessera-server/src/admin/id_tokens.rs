//! ID tokens for workloads (`POST /v1/id_tokens`): the bearer of an IAM token gets an OpenID
//! Connect ID token for itself, addressed to an audience. The metadata agent serves these at
//! `service-accounts/…/identity`. Nothing is written: it is a signature over the caller's
//! verified identity, like any token.

use super::kit::AdminJson;
use super::kit::Write;
use super::AdminError;
use crate::state::AppState;
use axum::routing::post;
use axum::{Json, Router};
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::id_token::{self, IdTokenFormat, IdTokenRequest};
use tessera_core::model::KeyUse;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/id_tokens", post(id_token_create))
}

async fn id_token_create(
    Write { state, ctx, caller }: Write,
    AdminJson(body): AdminJson<api::IdTokenCreate>,
) -> Result<Json<api::IdTokenView>, AdminError> {
    let audience = id_token::check_audience(body.audience.as_deref())?;
    let format = IdTokenFormat::parse(body.format.as_deref())?;
    id_token::check_compute_engine(&body.compute_engine)?;
    let now = state.clock.now();
    state.check_fresh(now)?;
    caller.authorize(&state, &Action::MintIdToken)?;
    let email = {
        let dir = state.snapshot.directory();
        let subject = dir.subject(caller.iam_id()).ok_or_else(|| {
            AdminError::denied("ID tokens are issued to users, service accounts and profiles")
        })?;
        id_token::subject_email(&subject)
    };
    let keyring = state.snapshot.keyring();
    let signer = keyring.signer(KeyUse::Jwt)?;
    let request = IdTokenRequest {
        issuer: &state.issuer,
        audience,
        format,
        compute_engine: &body.compute_engine,
        now,
    };
    let minted = id_token::mint(
        caller.token.subject_id(),
        email.as_deref(),
        &request,
        signer,
        &state.rng,
    )?;
    tracing::debug!(request_id = %ctx.id, iam_id = caller.iam_id(), audience, "issued ID token");
    Ok(Json(api::IdTokenView {
        id_token: api::OneTime::new(minted.token),
        expires_in: minted.exp - now,
    }))
}
