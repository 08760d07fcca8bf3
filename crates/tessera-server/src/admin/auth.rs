//! Admin authentication and authorization as extractors: a handler that takes a [`Caller`]
//! cannot run for an unauthenticated request, and every permission question goes to the core's
//! authorization model through [`Caller::authorize`].

use super::errors::AdminError;
use crate::http::bearer_token;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::authz::{self, Action, ReadScope};
use tessera_core::presented::PresentedToken;
use tessera_core::principal::Principal;

/// The verified caller of an admin request: the principal its bearer token proves.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub token: PresentedToken,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            AdminError::unauthenticated("an Authorization: Bearer <IAM token> header is required")
        })?;
        let (principal, token) =
            state
                .authenticate_token(token, state.clock.now())
                .map_err(|e| match e.kind() {
                    tessera_core::ErrorKind::Unavailable => AdminError::from(e),
                    _ => AdminError::unauthenticated(e.message().to_owned()),
                })?;
        Ok(Caller { principal, token })
    }
}

impl Caller {
    pub fn iam_id(&self) -> &str {
        self.principal.iam_id()
    }

    /// Asks the core's authorization model; a refusal is the admin API's 403 (or 404).
    pub fn authorize(&self, state: &AppState, action: &Action<'_>) -> Result<(), AdminError> {
        let dir = state.snapshot.directory();
        authz::authorize(&dir, &self.principal, action).map_err(AdminError::from)
    }

    /// Whether the model allows `action` (for filtering lists).
    pub fn may(&self, state: &AppState, action: &Action<'_>) -> bool {
        self.authorize(state, action).is_ok()
    }

    /// Which accounts the caller may list without naming one.
    pub fn read_scope(&self, state: &AppState) -> ReadScope {
        let dir = state.snapshot.directory();
        authz::read_scope(&dir, &self.principal)
    }

    /// Whether the caller holds admin on `*`: shown by `whoami`, never decided on here.
    pub fn whoami_global_admin(&self, state: &AppState) -> bool {
        let dir = state.snapshot.directory();
        authz::is_global_admin(&dir, self.iam_id())
    }
}
