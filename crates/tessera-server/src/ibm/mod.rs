//! The IBM Cloud IAM identity token API: `POST /identity/token` with every grant, in the exact
//! wire shape the IBM SDK cores expect. Stability: frozen by the cloud's API.

mod assume;
mod authz;
mod cr_token;
mod delegated;
mod errors;
#[cfg(test)]
mod expiry_tests;
pub mod form;
pub mod grant;
#[cfg(test)]
mod grant_tests;
mod password;
mod token;

pub use errors::IbmError;
pub use password::{password_sign_in, PasswordCredentials};
pub use token::apikey_sign_in;

use crate::state::AppState;
use axum::routing::post;
use axum::Router;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/identity/token";

pub fn router() -> Router<AppState> {
    Router::new().route(
        TOKEN_PATH,
        post(token::ibm_token_post).fallback(token::ibm_token_other_method),
    )
}
