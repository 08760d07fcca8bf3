//! `GET /v1/whoami`: who the caller is, as the server sees its token.

use super::auth::Caller;
use crate::state::AppState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use tessera_api::admin as api;
use tessera_core::directory::Subject;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/whoami", get(whoami_get))
}

async fn whoami_get(State(state): State<AppState>, caller: Caller) -> Json<api::WhoAmI> {
    // Shown, not decided on: whoami tells the caller what it is.
    let global_admin = caller.whoami_global_admin(&state);
    let c = &caller.token;
    let dir = state.snapshot.directory();
    let subject = dir.subject(c.iam_id());
    let email = subject
        .as_ref()
        .and_then(tessera_core::id_token::subject_email);
    let (name, sub_type) = match subject {
        Some(Subject::User(u)) => (u.name.clone(), "user"),
        Some(Subject::ServiceAccount(s)) => (s.name.clone(), "ServiceId"),
        Some(Subject::Profile(p)) => (p.name.clone(), "Profile"),
        Some(Subject::Crn(_)) => (c.subject_id().to_owned(), "CRN"),
        None => (String::new(), ""),
    };
    Json(api::WhoAmI {
        iam_id: c.iam_id().to_owned(),
        id: c.subject_id().to_owned(),
        name,
        account_id: c.account_id().to_owned(),
        sub_type: sub_type.to_owned(),
        email,
        global_admin,
    })
}
