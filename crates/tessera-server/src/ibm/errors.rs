//! The IBM error shape, and the one mapping from core error kinds to IBM codes and statuses.
//!
//! | kind | HTTP | errorCode |
//! |---|---|---|
//! | invalid argument | 400 | BXNIM0109E |
//! | unknown API key | 400 | BXNIM0415E |
//! | invalid credential (token, refresh token) | 400 | BXNIM0407E |
//! | missing client authentication | 400 | BXNIM0308E |
//! | client authentication failed | 401 | BXNIM0301E |
//! | grant not allowed for client | 400 | BXNIM0302E |
//! | tenant pin mismatch | 400 | BXNIM0513E |
//! | unsupported grant or response type | 400 | BXNIM0103E |
//! | permission denied | 403 | BXNIM0132E |
//! | not found | 404 | BXNIM0404E |
//! | method other than POST | 405 | BXNIM0405E |
//! | too large body | 413 | BXNIM0413E |
//! | too many failed attempts (brute-force lock) | 429 | BXNIM0429E |
//! | internal | 500 | BXNIM0500E |
//! | store unreachable beyond the staleness bound | 503 | BXNIM0503E |
//! | unavailable | 503 | BXNIM0503E |

use crate::http::RequestContext;
use crate::metrics_names as names;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_core::error::{Error, ErrorKind};

/// An error on the IBM surface.
#[derive(Debug, Clone)]
pub struct IbmError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Cause of a server-side failure, for the log only.
    pub internal: Option<String>,
    /// Seconds for the `Retry-After` header (429 only).
    pub retry_after: Option<u64>,
}

impl IbmError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        IbmError {
            status,
            code,
            message: message.into(),
            internal: None,
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BXNIM0109E", message)
    }

    pub fn missing_client_auth() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "BXNIM0308E",
            "No authorization header found",
        )
    }

    pub fn invalid_client(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "BXNIM0301E", message)
    }

    /// Refused by brute-force throttling; says when to retry, and sets `Retry-After`.
    pub fn throttled(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "BXNIM0429E",
            format!(
                "Too many failed attempts for this credential or from this address; try again in {retry_after} seconds."
            ),
        );
        error.retry_after = Some(retry_after);
        error
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BXNIM0413E",
            format!("Request body is larger than {limit} bytes."),
        )
    }

    /// Renders the body with the request's context and the transaction-id header.
    pub fn render(
        &self,
        ctx: &RequestContext,
        headers: &HeaderMap,
        uri: &Uri,
        request_type: &str,
    ) -> Response {
        metrics::counter!(names::ERRORS, "surface" => "ibm", "code" => self.code).increment(1);
        if let Some(cause) = &self.internal {
            tracing::error!(request_id = %ctx.id, code = self.code, cause, "request failed");
        }
        // The request's start on the server's clock plus the time it took.
        let ended = ctx.started_at + ctx.started.elapsed();
        let fmt = crate::rfc3339::format;
        let header_text = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let body = ErrorBody {
            error_code: self.code,
            error_message: &self.message,
            error_details: &self.message,
            context: Context {
                request_id: &ctx.id,
                request_type,
                user_agent: header_text(header::USER_AGENT),
                url: uri.to_string(),
                host: header_text(header::HOST),
                start_time: fmt(ctx.started_at),
                end_time: fmt(ended),
                elapsed_time: format!("{}", ctx.started.elapsed().as_millis()),
                locale: "en_US",
            },
        };
        let json = serde_json::to_string(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response();
        if let Ok(id) = HeaderValue::from_str(&ctx.id) {
            response.headers_mut().insert("x-global-transaction-id", id);
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"IAM\""),
            );
        }
        response
    }
}

impl From<Error> for IbmError {
    fn from(error: Error) -> Self {
        let (status, code) = match error.kind() {
            ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, "BXNIM0109E"),
            ErrorKind::UnknownApiKey => (StatusCode::BAD_REQUEST, "BXNIM0415E"),
            ErrorKind::InvalidCredential => (StatusCode::BAD_REQUEST, "BXNIM0407E"),
            ErrorKind::InvalidClient => (StatusCode::UNAUTHORIZED, "BXNIM0301E"),
            ErrorKind::UnauthorizedClient => (StatusCode::BAD_REQUEST, "BXNIM0302E"),
            ErrorKind::TenantMismatch => (StatusCode::BAD_REQUEST, "BXNIM0513E"),
            ErrorKind::Unsupported => (StatusCode::BAD_REQUEST, "BXNIM0103E"),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, "BXNIM0132E"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "BXNIM0404E"),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "BXNIM0409E"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "BXNIM0503E"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "BXNIM0500E"),
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Internal details go to the log (in `render`), never to the client.
            return IbmError {
                status,
                code,
                message: "Internal error; the request id identifies it in the server log.".into(),
                internal: Some(error.message().to_owned()),
                retry_after: None,
            };
        }
        IbmError::new(status, code, error.message())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody<'a> {
    error_code: &'a str,
    error_message: &'a str,
    error_details: &'a str,
    context: Context<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    request_id: &'a str,
    request_type: &'a str,
    user_agent: String,
    url: String,
    host: String,
    start_time: String,
    end_time: String,
    elapsed_time: String,
    locale: &'a str,
}
