//! Admin authentication and authorization as extractors: a handler that takes a [`Caller`]
//! cannot run for an unauthenticated request, and every permission question goes to the core's
//! authorization model through [`Caller::authorize`].

use super::errors::AdminError;
use crate::http::{bearer_token, RequestContext};
use crate::security_log;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::authz::{self, Action, ReadScope};
use tessera_core::directory::Entity;
use tessera_core::presented::PresentedToken;
use tessera_core::principal::Principal;

/// The verified caller of an admin request: the principal its bearer token proves, and the
/// request it made (for the security log of a refusal).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub token: PresentedToken,
    request: RequestContext,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let request = parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| AdminError::internal("the request has no context"))?;
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            AdminError::unauthenticated("an Authorization: Bearer <IAM token> header is required")
        })?;
        let (principal, token) =
            state
                .authenticate_token(token, state.clock.now())
                .map_err(|e| match e.kind() {
                    tessera_core::ErrorKind::Unavailable => AdminError::from(e),
                    _ => {
                        security_log::sign_in_refused(
                            &request,
                            "admin",
                            "bearer",
                            None,
                            e.message(),
                        );
                        AdminError::unauthenticated(e.message().to_owned())
                    }
                })?;
        Ok(Caller {
            principal,
            token,
            request,
        })
    }
}

impl Caller {
    pub fn iam_id(&self) -> &str {
        self.principal.iam_id()
    }

    /// Asks the core's authorization model; a refusal is the admin API's 403 (or 404), and a
    /// security event.
    pub fn authorize(&self, state: &AppState, action: &Action<'_>) -> Result<(), AdminError> {
        self.decide(state, action).map_err(|e| {
            // A global viewer's "not found" is an answer, not a refusal.
            if e.kind() != tessera_core::ErrorKind::NotFound {
                security_log::access_denied(
                    &self.request,
                    self.iam_id(),
                    &action.describe(),
                    e.message(),
                );
            }
            AdminError::from(e)
        })
    }

    /// Whether the model allows `action` (for filtering lists: not a refusal, not logged).
    /// [`Caller::authorize`] of changing `old` into `new`.
    pub fn authorize_update(
        &self,
        state: &AppState,
        old: &Entity,
        new: &Entity,
    ) -> Result<(), AdminError> {
        self.authorize(state, &Action::Update { old, new })
    }

    pub fn may(&self, state: &AppState, action: &Action<'_>) -> bool {
        self.decide(state, action).is_ok()
    }

    fn decide(&self, state: &AppState, action: &Action<'_>) -> tessera_core::error::Result<()> {
        let dir = state.snapshot.directory();
        authz::authorize(&dir, &self.principal, action)
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
