//! The admin API's error body: `{"error": {"code", "message", "request_id"}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable: `invalid_argument`, `unauthenticated`, `permission_denied`,
    /// `not_found`, `already_exists`, `payload_too_large`, `too_many_attempts`, `unavailable`,
    /// `internal`, ...
    pub code: String,
    /// What is wrong, for a person.
    pub message: String,
    /// The request id (also in the `x-request-id` response header). Defaults to empty when
    /// absent: the router's own answers (an unknown path, the request deadline) carry none, and
    /// a client reads those too.
    #[serde(default)]
    #[schema(required = true)]
    pub request_id: String,
}
