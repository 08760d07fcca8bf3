//! `google.rpc.Status` on both transports, and the one mapping from core error kinds to gRPC
//! codes and HTTP statuses.
//!
//! | kind | gRPC code | HTTP |
//! |---|---|---|
//! | invalid argument | 3 INVALID_ARGUMENT | 400 |
//! | invalid credential, unknown API key, client authentication failed | 16 UNAUTHENTICATED | 401 |
//! | permission denied, tenant mismatch, client not allowed | 7 PERMISSION_DENIED | 403 |
//! | not found | 5 NOT_FOUND | 404 |
//! | already exists | 6 ALREADY_EXISTS | 409 |
//! | unsupported | 12 UNIMPLEMENTED | 501 |
//! | request larger than the limit | 8 RESOURCE_EXHAUSTED | 413 |
//! | request not a valid message of its type (gRPC) | 3 INVALID_ARGUMENT | – |
//! | store unreachable beyond the staleness bound | 14 UNAVAILABLE | 503 |
//! | internal | 13 INTERNAL | 500 |

use crate::metrics_names as names;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message;
use tessera_core::error::{Error, ErrorKind};
use tonic::Code;

/// An error on the Yandex surface: a gRPC code and a message for the client.
#[derive(Debug, Clone)]
pub struct YandexError {
    pub code: Code,
    pub message: String,
    /// Cause of a server-side failure, for the log only.
    pub internal: Option<String>,
    /// The REST status when it is not the code's usual one (413 for an oversized body).
    rest_status: Option<StatusCode>,
}

impl YandexError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        YandexError {
            code,
            message: message.into(),
            internal: None,
            rest_status: None,
        }
    }

    /// A request larger than `limit` bytes: `RESOURCE_EXHAUSTED` (what gRPC answers for a
    /// message over the configured limit), and 413 on REST like every other surface.
    pub fn too_large(limit: usize) -> Self {
        let mut error = Self::new(
            Code::ResourceExhausted,
            format!("request is larger than {limit} bytes"),
        );
        error.rest_status = Some(StatusCode::PAYLOAD_TOO_LARGE);
        error
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    /// Too many failed attempts on this credential from this source.
    pub fn throttled(retry_after: u64) -> Self {
        Self::new(
            Code::ResourceExhausted,
            format!("too many failed attempts; try again in {retry_after} seconds"),
        )
    }

    /// The HTTP status of the REST twin.
    pub fn http_status(&self) -> StatusCode {
        if let Some(status) = self.rest_status {
            return status;
        }
        match self.code {
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
                StatusCode::BAD_REQUEST
            }
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn record(&self, request_id: &str) {
        metrics::counter!(names::ERRORS, "surface" => "yandex", "code" => code_label(self.code))
            .increment(1);
        if let Some(cause) = &self.internal {
            tracing::error!(request_id, cause = %cause, "yandex surface: internal error");
        }
    }

    /// The REST body: `{"code", "message", "details": [RequestInfo]}`.
    pub fn to_rest(&self, request_id: &str) -> Response {
        self.record(request_id);
        let body = serde_json::json!({
            "code": self.code as i32,
            "message": self.message,
            "details": [{
                "@type": "type.googleapis.com/google.rpc.RequestInfo",
                "requestId": request_id,
            }],
        });
        (
            self.http_status(),
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }

    /// The gRPC status, with the same `google.rpc.Status` (and its `RequestInfo`) in
    /// `grpc-status-details-bin`.
    pub fn to_grpc(&self, request_id: &str) -> tonic::Status {
        self.record(request_id);
        let info = RequestInfo {
            request_id: request_id.to_owned(),
            serving_data: String::new(),
        };
        let status = RpcStatus {
            code: self.code as i32,
            message: self.message.clone(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.RequestInfo".to_owned(),
                value: info.encode_to_vec(),
            }],
        };
        let mut grpc = tonic::Status::with_details(
            self.code,
            self.message.clone(),
            status.encode_to_vec().into(),
        );
        if let Ok(value) = request_id.parse() {
            grpc.metadata_mut().insert("x-request-id", value);
        }
        grpc
    }
}

impl From<Error> for YandexError {
    fn from(e: Error) -> Self {
        let code = match e.kind() {
            ErrorKind::InvalidArgument => Code::InvalidArgument,
            ErrorKind::UnknownApiKey | ErrorKind::InvalidCredential | ErrorKind::InvalidClient => {
                Code::Unauthenticated
            }
            ErrorKind::PermissionDenied
            | ErrorKind::TenantMismatch
            | ErrorKind::UnauthorizedClient => Code::PermissionDenied,
            ErrorKind::NotFound => Code::NotFound,
            ErrorKind::AlreadyExists => Code::AlreadyExists,
            ErrorKind::Unsupported => Code::Unimplemented,
            ErrorKind::Unavailable => Code::Unavailable,
            _ => Code::Internal,
        };
        if code == Code::Internal {
            let mut error = YandexError::new(Code::Internal, "Internal error.");
            error.internal = Some(e.message().to_owned());
            return error;
        }
        YandexError::new(code, e.message().to_owned())
    }
}

/// A bounded metrics label for a code.
fn code_label(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument => "invalid_argument",
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission_denied",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::Unimplemented => "unimplemented",
        Code::Unavailable => "unavailable",
        Code::ResourceExhausted => "resource_exhausted",
        _ => "internal",
    }
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.RequestInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RequestInfo {
    #[prost(string, tag = "1")]
    pub request_id: String,
    #[prost(string, tag = "2")]
    pub serving_data: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_documented_http_statuses() {
        for (code, status) in [
            (Code::InvalidArgument, 400),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::Unauthenticated, 401),
        ] {
            assert_eq!(YandexError::new(code, "x").http_status().as_u16(), status);
        }
        let too_large = YandexError::too_large(10);
        assert_eq!(
            (too_large.code, too_large.http_status().as_u16()),
            (Code::ResourceExhausted, 413)
        );
    }

    #[test]
    fn internal_causes_stay_out_of_the_message() {
        let e = YandexError::from(Error::internal("disk on fire at /var/secret"));
        assert_eq!(e.code, Code::Internal);
        assert!(!e.message.contains("disk"));
        assert!(e.internal.unwrap().contains("disk"));
    }

    #[test]
    fn grpc_status_carries_request_info() {
        let status = YandexError::invalid("jwt is too long").to_grpc("req-1");
        let decoded = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(decoded.code, 3);
        let info = RequestInfo::decode(decoded.details[0].value.as_slice()).unwrap();
        assert_eq!(info.request_id, "req-1");
        assert_eq!(status.metadata().get("x-request-id").unwrap(), "req-1");
    }
}
