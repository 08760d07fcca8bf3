//! The admin API's error shape: `{"error": {"code", "message", "request_id"}}`, one mapping from
//! core and store errors, rendered with the request id by [`super::render_errors`].

use crate::metrics_names as names;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tessera_core::error::{Error, ErrorKind};
use tessera_store::StoreError;

#[derive(Debug, Clone)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Cause of a server-side failure, for the log only.
    pub internal: Option<String>,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AdminError {
            status,
            code,
            message: message.into(),
            internal: None,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission_denied", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn internal(cause: impl Into<String>) -> Self {
        AdminError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; the request id identifies it in the server log".into(),
            internal: Some(cause.into()),
        }
    }
}

impl From<Error> for AdminError {
    fn from(error: Error) -> Self {
        match error.kind() {
            ErrorKind::InvalidArgument | ErrorKind::Unsupported => Self::invalid(error.message()),
            ErrorKind::UnknownApiKey | ErrorKind::InvalidCredential | ErrorKind::InvalidClient => {
                Self::unauthenticated(error.message())
            }
            ErrorKind::PermissionDenied
            | ErrorKind::TenantMismatch
            | ErrorKind::UnauthorizedClient => Self::denied(error.message()),
            ErrorKind::NotFound => Self::not_found(error.message()),
            ErrorKind::Unavailable => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                error.message(),
            ),
            ErrorKind::AlreadyExists => {
                Self::new(StatusCode::CONFLICT, "already_exists", error.message())
            }
            _ => Self::internal(error.message()),
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::AlreadyExists(what) => Self::new(
                StatusCode::CONFLICT,
                "already_exists",
                format!("{what} already exists"),
            ),
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::Conflict(why) => {
                Self::new(StatusCode::CONFLICT, "failed_precondition", why)
            }
            StoreError::Database(cause) => AdminError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "unavailable",
                message: crate::storage::STORE_UNAVAILABLE.into(),
                internal: Some(cause),
            },
            StoreError::Corrupt(cause) => Self::internal(cause),
        }
    }
}

/// Carried in the response extensions until [`super::render_errors`] adds the request id.
#[derive(Debug, Clone)]
pub struct PendingError(pub AdminError);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        metrics::counter!(names::ERRORS, "surface" => "admin", "code" => self.code).increment(1);
        let mut response = self.status.into_response();
        response.extensions_mut().insert(PendingError(self));
        response
    }
}
