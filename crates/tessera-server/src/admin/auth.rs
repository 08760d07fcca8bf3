//! Admin authentication as an extractor: a handler that takes a [`Caller`] cannot run for an
//! unauthenticated request.

use super::errors::AdminError;
use crate::http::bearer_token;
use crate::state::{now, AppState};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use tessera_core::authz;
use tessera_core::model::{Resource, Role};
use tessera_core::presented::PresentedToken;

/// The verified caller of an admin request.
#[derive(Debug, Clone)]
pub struct Caller {
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
        let token = state
            .verify_access_token(token, now())
            .map_err(|e| match e.kind() {
                tessera_core::ErrorKind::Unavailable => AdminError::from(e),
                _ => AdminError::unauthenticated(e.message().to_owned()),
            })?;
        Ok(Caller { token })
    }
}

impl Caller {
    pub fn iam_id(&self) -> &str {
        self.token.iam_id()
    }

    /// Refuses unless the caller holds `role` on `resource`.
    pub fn require(
        &self,
        state: &AppState,
        role: Role,
        resource: &Resource,
    ) -> Result<(), AdminError> {
        if self.holds(state, role, resource) {
            return Ok(());
        }
        Err(AdminError::denied(format!(
            "{} does not hold role {} on {}",
            self.token.iam_id(),
            role.as_str(),
            resource.to_text()
        )))
    }

    pub fn holds(&self, state: &AppState, role: Role, resource: &Resource) -> bool {
        let dir = state.snapshot.directory();
        authz::has_role(&dir, self.token.iam_id(), role, resource)
    }

    pub fn is_global_admin(&self, state: &AppState) -> bool {
        self.holds(state, Role::Admin, &Resource::Global)
    }

    /// Accounts the caller may read (`viewer` or `admin`), for lists without an account filter.
    pub fn readable_accounts(&self, state: &AppState) -> Vec<String> {
        let dir = state.snapshot.directory();
        let mut accounts: Vec<String> = dir
            .bindings_of(self.token.iam_id())
            .filter(|b| matches!(b.role, Role::Admin | Role::Viewer))
            .filter_map(|b| match &b.resource {
                Resource::Account(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        accounts.sort();
        accounts.dedup();
        accounts
    }
}
