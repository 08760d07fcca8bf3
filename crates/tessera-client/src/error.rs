//! Everything a call can fail with: the server's refusal in each surface's own error shape
//! (admin, IBM token, Yandex), no answer at all (transport), or an answer that is not what the
//! API documents (decode, unexpected body). No variant ever holds a secret.

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The endpoint is not an absolute `http`/`https` URL (or carries credentials).
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// A PEM CA certificate could not be used.
    #[error("invalid CA certificate")]
    InvalidCertificate(#[source] reqwest::Error),
    /// The CA certificate data holds no PEM certificate (a DER file, a key, any other file):
    /// refused rather than silently trusting nothing and failing later as an unknown CA.
    #[error("not a PEM certificate file (no -----BEGIN CERTIFICATE----- block)")]
    NotPem,
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// The IBM token endpoint refused the request.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The Yandex token surface refused the request.
    #[error(transparent)]
    Yandex(#[from] YandexError),
    /// The admin API refused the request.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The request did not get a response (DNS, connect, TLS, timeout, reading the body).
    #[error("request to {url} failed")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A failure status with a body that is not the surface's error shape (a proxy's page).
    #[error("unexpected HTTP {status} from {url}: {body}")]
    UnexpectedResponse {
        url: String,
        status: u16,
        /// A short excerpt of the body, control characters replaced.
        body: String,
    },
    /// A success status whose body is not what the API documents.
    #[error("could not decode the response from {url}: {detail}")]
    Decode { url: String, detail: String },
}

impl Error {
    /// The admin API error, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(err) => Some(err),
            _ => None,
        }
    }

    /// The IBM token endpoint error, if this is one.
    pub fn token(&self) -> Option<&TokenError> {
        match self {
            Error::Token(err) => Some(err),
            _ => None,
        }
    }

    /// The HTTP status the server answered with, if it answered with an error status.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api(err) => Some(err.status),
            Error::Token(err) => Some(err.status),
            Error::Yandex(err) => Some(err.status),
            Error::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What the server said in words, when it refused in one of its error shapes.
    pub fn server_message(&self) -> Option<&str> {
        match self {
            Error::Api(err) => Some(&err.message),
            Error::Token(err) => Some(&err.message),
            Error::Yandex(err) => Some(&err.message),
            _ => None,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the admin API (`tessera_api::error::ErrorBody`) with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct ApiError {
    /// The HTTP status, e.g. 404.
    pub status: u16,
    /// The stable error code, e.g. `not_found` (see `docs/admin-api.md`).
    pub code: String,
    pub message: String,
    /// The server's request id, to find the request in its log (`None` when the answer has
    /// none: the router's own answers to unknown paths and deadlines).
    pub request_id: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: u16, body: tessera_api::error::ErrorBody) -> ApiError {
        let detail = body.error;
        ApiError {
            status,
            code: detail.code,
            message: detail.message,
            request_id: Some(detail.request_id).filter(|id| !id.is_empty()),
        }
    }
}

/// An error of the IBM token endpoint (`tessera_api::token::IbmErrorBody`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code})")]
pub struct TokenError {
    pub status: u16,
    /// e.g. `BXNIM0415E`.
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    /// `context.requestId`, or else the `X-Global-Transaction-ID` header.
    pub request_id: Option<String>,
}

impl TokenError {
    pub(crate) fn new(
        status: u16,
        body: tessera_api::token::IbmErrorBody,
        global_transaction_id: Option<String>,
    ) -> TokenError {
        let request_id = body
            .context
            .get("requestId")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .or(global_transaction_id);
        TokenError {
            status,
            code: body.error_code,
            message: body.error_message,
            details: Some(body.error_details).filter(|d| !d.is_empty()),
            request_id,
        }
    }
}

/// An error of the Yandex REST surface (`tessera_api::token::YandexErrorBody`:
/// `google.rpc.Status` in JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (gRPC code {code}, HTTP {status})")]
pub struct YandexError {
    pub status: u16,
    /// The gRPC status code, e.g. 16 (`UNAUTHENTICATED`).
    pub code: i32,
    pub message: String,
}
