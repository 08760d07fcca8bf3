//! The core's one error type. It knows nothing of HTTP or gRPC: each surface maps
//! [`ErrorKind`] to its own wire shape in exactly one place.

use std::fmt;

/// What went wrong, in terms a surface can map to its own error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed: a missing field, a value out of bounds, bad syntax.
    InvalidArgument,
    /// The presented API key is not known (or its owner is gone).
    UnknownApiKey,
    /// A token or other credential is invalid, expired, revoked or for someone else.
    InvalidCredential,
    /// The OAuth client failed to authenticate itself.
    InvalidClient,
    /// The grant is not allowed for this client or principal.
    UnauthorizedClient,
    /// A tenant pin (`IBM-Cloud-Tenant`) excludes the identity's account.
    TenantMismatch,
    /// Authenticated, but the principal lacks the role for this action.
    PermissionDenied,
    /// The addressed object does not exist.
    NotFound,
    /// An object with that name or id already exists, or would conflict.
    AlreadyExists,
    /// The grant type or response type is not supported.
    Unsupported,
    /// A dependency (the store) is unreachable and the snapshot is too old to answer from.
    Unavailable,
    /// Something on our side failed; the message is for the log, not the client.
    Internal,
}

/// An error with a kind for programs and a message for people.
///
/// Messages never contain secrets: callers pass field names and ids, never credential values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn credential(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidCredential, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
