//! "Revoke everything for this identity" (`POST /v1/token_cutoffs`): every access, refresh and
//! delegated refresh token of an identity issued up to now stops working, on every node, with
//! one small record (a subject cut-off) instead of one revocation per token.

use super::kit::Write;
use super::kit::{self, AdminJson};
use super::views::rfc3339;
use super::AdminError;
use crate::state::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use tessera_api::admin as api;
use tessera_core::authz::Action;
use tessera_core::directory::Entity;
use tessera_core::limits;
use tessera_core::model::SubjectCutoff;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/token_cutoffs", post(cutoff_create))
}

async fn cutoff_create(
    Write { state, ctx, caller }: Write,
    AdminJson(body): AdminJson<api::TokenCutoffCreate>,
) -> Result<Response, AdminError> {
    let iam_id = limits::bounded("iam_id", body.iam_id.trim(), 600)?.to_owned();
    if state.snapshot.directory().subject(&iam_id).is_none() {
        return Err(AdminError::not_found(format!(
            "identity {iam_id} not found"
        )));
    }
    // Oneself, or an identity whose account the caller administers and whose privileges it
    // holds; a resource identity belongs to its CRN's account.
    caller.authorize(&state, &Action::CutOff { iam_id: &iam_id })?;
    // Tokens are stamped in whole seconds: everything issued in this second is cut off too.
    let not_before = state.clock.now() + 1;
    let cutoff = Entity::Cutoff(SubjectCutoff {
        iam_id: iam_id.clone(),
        not_before,
    });
    kit::store_put(
        &state,
        &ctx,
        &caller,
        "tokens.revoke_all",
        format!("every token of {iam_id} issued before {not_before}"),
        &cutoff,
    )
    .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        Json(api::TokenCutoffView {
            not_before: rfc3339(not_before),
            iam_id,
        }),
    )
        .into_response())
}
