//! An async client for a Tessera server: the IBM-compatible token endpoint and the admin API.
//!
//! The CLI is built on this module and so are the end-to-end tests, so it is a plain async API
//! with typed requests, typed responses and typed errors; it prints nothing and reads no files.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tessera::client::Error> {
//! use tessera::client::{Client, CreateServiceAccount, ListQuery};
//!
//! let client = Client::new("https://iam.example.com")?;
//! let token = client.token_from_apikey("my-api-key").await?;
//! let admin = client.with_token(&token.access_token);
//! let me = admin.whoami().await?;
//! let sa = admin
//!     .create_service_account(&CreateServiceAccount {
//!         account_id: me.account_id.clone(),
//!         name: "ci".into(),
//!         description: None,
//!     })
//!     .await?;
//! let all = admin.list_service_accounts(&ListQuery::default()).await?;
//! # let _ = (sa, all);
//! # Ok(())
//! # }
//! ```
//!
//! Secrets (API keys, passwords, tokens, client secrets) never appear in an error message or in
//! `Debug` output: the types that hold them implement `Debug` by hand, and decoding errors of
//! secret-bearing responses leave out the offending value.
//!
//! Response types mirror `docs/admin-api.md`. Because the API only ever adds fields, every
//! response type keeps fields it does not know in `extra`, so re-serializing a response (the
//! CLI's `--format json`) loses nothing the server sent.

use reqwest::{Method, RequestBuilder, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Extra fields of a response that this version of the client does not know about.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// The grant type of an API-key exchange.
pub const APIKEY_GRANT_TYPE: &str = "urn:ibm:params:oauth:grant-type:apikey";

/// Longest excerpt of an unexpected (non-JSON) error body kept in an error message.
const BODY_EXCERPT_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

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
    /// The HTTP client could not be built (TLS backend initialisation).
    #[error("could not build the HTTP client")]
    Build(#[source] reqwest::Error),
    /// The token endpoint refused the request with an IBM-style error.
    #[error(transparent)]
    Token(#[from] TokenError),
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
    /// A failure status with a body that is not the documented error shape (a proxy's page, say).
    #[error("unexpected HTTP {status} from {url}: {body}")]
    UnexpectedResponse {
        url: String,
        status: u16,
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

    /// The token endpoint error, if this is one.
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
            Error::UnexpectedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of the admin API: `{"error": {"code", "message", "request_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct ApiError {
    /// The HTTP status, e.g. 404.
    pub status: u16,
    /// The stable error code, e.g. `not_found` (see `docs/admin-api.md`).
    pub code: String,
    pub message: String,
    /// The server's request id, to find the request in its log.
    pub request_id: Option<String>,
}

/// An error of the IBM token endpoint: `{"errorCode", "errorMessage", ...}`.
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

#[derive(Deserialize)]
struct ApiErrorBody {
    error: ApiErrorInner,
}

#[derive(Deserialize)]
struct ApiErrorInner {
    code: String,
    message: String,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenErrorBody {
    error_code: String,
    error_message: String,
    #[serde(default)]
    error_details: Option<String>,
    #[serde(default)]
    context: Option<TokenErrorContext>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenErrorContext {
    #[serde(default)]
    request_id: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Token endpoint types
// ---------------------------------------------------------------------------------------------

/// A successful answer of `POST /identity/token`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Absent for grants that issue no refresh token (`cr-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub token_type: String,
    /// Lifetime in seconds.
    pub expires_in: i64,
    /// Unix seconds of the token's `exp`.
    pub expiration: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only names of unknown fields: they may hold tokens too (`delegated_refresh_token`).
        let extra: Vec<&String> = self.extra.keys().collect();
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expiration", &self.expiration)
            .field("scope", &self.scope)
            .field("extra", &extra)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Admin API objects (responses)
// ---------------------------------------------------------------------------------------------

/// `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whoami {
    pub iam_id: String,
    pub name: String,
    pub account_id: String,
    pub sub_type: String,
    pub global_admin: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enterprise {
    pub id: String,
    pub name: String,
    /// RFC 3339, UTC, as the server sent it.
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub enterprise_id: Option<String>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// `IBMid-…`; equal to `iam_id`.
    pub id: String,
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub federated: bool,
    pub has_password: bool,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceAccount {
    /// `ServiceId-…`.
    pub id: String,
    /// `iam-ServiceId-…`.
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner_iam_id: String,
    pub account_id: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to creating an API key: the key object plus the key itself, shown only once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret API key. Not retrievable later.
    pub apikey: String,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("api_key", &self.api_key)
            .field("apikey", &"<redacted>")
            .finish()
    }
}

/// An authorized key of a service account (`/v1/authorized_keys`): an RSA key pair whose owner
/// holds the private half. Holds no private material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizedKey {
    /// `aje…`.
    pub id: String,
    pub service_account_id: String,
    pub account_id: String,
    pub description: String,
    /// `RSA_2048` or `RSA_4096`.
    pub key_algorithm: String,
    /// PEM (`-----BEGIN PUBLIC KEY-----`).
    pub public_key: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The authorized key file, in the shape `yc iam key create` writes and the Yandex SDKs read.
/// Serializing it gives the file's contents.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyFile {
    pub id: String,
    pub service_account_id: String,
    pub created_at: String,
    pub key_algorithm: String,
    pub public_key: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
}

impl fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyFile")
            .field("id", &self.id)
            .field("service_account_id", &self.service_account_id)
            .field("key_algorithm", &self.key_algorithm)
            .field("private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The answer to creating an authorized key: the key object plus the key file with the private
/// key, shown only once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedAuthorizedKey {
    #[serde(flatten)]
    pub key: AuthorizedKey,
    /// The key file. The private key is not stored by the server.
    pub key_file: KeyFile,
}

impl fmt::Debug for CreatedAuthorizedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedAuthorizedKey")
            .field("key", &self.key)
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// A long-lived OAuth token of a user (`/v1/oauth_tokens`). Holds no secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthToken {
    /// `OAuthToken-…`.
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub description: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An authorization policy (`/v1/authorization_policies`): `source_iam_id` may obtain tokens
/// for the resource identities `target_crn` covers (`iam-authz` grant).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationPolicy {
    /// `Policy-…`.
    pub id: String,
    pub account_id: String,
    pub source_iam_id: String,
    /// A CRN, or a CRN prefix ending in `*`.
    pub target_crn: String,
    pub description: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/authorization_policies`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateAuthorizationPolicy {
    pub source_iam_id: String,
    pub target_crn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The answer to creating an OAuth token: the token object plus the token itself, shown once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedOAuthToken {
    #[serde(flatten)]
    pub oauth_token: OAuthToken,
    /// The token (`y0_…`). Not retrievable later.
    pub token: String,
}

impl fmt::Debug for CreatedOAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedOAuthToken")
            .field("oauth_token", &self.oauth_token)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// An OAuth client (`/v1/clients`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub id: String,
    pub name: String,
    /// `None` for global clients.
    pub account_id: Option<String>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The answer to creating an OAuth client: the client plus its secret, shown only once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedOAuthClient {
    #[serde(flatten)]
    pub client: OAuthClient,
    /// The client secret. Not retrievable later.
    pub secret: String,
}

impl fmt::Debug for CreatedOAuthClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedOAuthClient")
            .field("client", &self.client)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessBinding {
    pub id: String,
    pub subject_iam_id: String,
    /// `admin`, `viewer`, `iam.serviceAccounts.tokenCreator` or `iam.serviceAccounts.user`.
    pub role: String,
    /// `*`, `account/<id>` or `service-account/<id>`.
    pub resource: String,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A token signing key (`/v1/signing_keys`). Holds no private material.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SigningKey {
    pub kid: String,
    /// `RS256`, `PS256`, `ES256` or `EdDSA`.
    pub algorithm: String,
    /// `jwt` or `yandex-iam`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// `next` (published, not signing yet), `active` (signing) or `retired` (published only).
    pub state: String,
    pub created_at: String,
    pub retired_at: Option<String>,
    /// Whether the answering node's JWKS carries the key.
    pub published: bool,
    #[serde(flatten)]
    pub extra: Extra,
}

// ---------------------------------------------------------------------------------------------
// Admin API requests
// ---------------------------------------------------------------------------------------------
//
// Fields are plain strings rather than enums so that a test can also send what the server must
// reject (an unknown role, a malformed resource) and see the server's answer.

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateEnterprise {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateAccount {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
}

/// `PATCH /v1/accounts/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateAccount {
    /// `TOTP` or `NONE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa: Option<String>,
}

/// The answer to enrolling a TOTP factor: the secret, shown only once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpEnrollment {
    pub user_id: String,
    pub secret: String,
    pub otpauth_uri: String,
    pub confirmed: bool,
    pub created_at: String,
}

impl fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TotpEnrollment")
            .field("user_id", &self.user_id)
            .field("secret", &"<redacted>")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// A user's TOTP factor, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TotpStatus {
    pub user_id: String,
    pub confirmed: bool,
    pub created_at: String,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateUser {
    pub account_id: String,
    pub name: String,
    pub email: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub federated: Option<bool>,
}

impl fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateUser")
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("federated", &self.federated)
            .finish()
    }
}

/// A trusted profile. Identities, links and rules stay JSON: the CLI edits them by replacing the
/// whole profile (`PUT`), so it passes through whatever the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedProfile {
    /// `Profile-…`.
    pub id: String,
    pub iam_id: String,
    pub crn: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub identities: Vec<serde_json::Value>,
    pub links: Vec<serde_json::Value>,
    pub rules: Vec<serde_json::Value>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateTrustedProfile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The body of `PUT /v1/trusted_profiles/{id}`: everything that can change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplaceTrustedProfile {
    pub name: String,
    pub description: String,
    pub identities: Vec<serde_json::Value>,
    pub links: Vec<serde_json::Value>,
    pub rules: Vec<serde_json::Value>,
}

impl From<&TrustedProfile> for ReplaceTrustedProfile {
    fn from(p: &TrustedProfile) -> Self {
        ReplaceTrustedProfile {
            name: p.name.clone(),
            description: p.description.clone(),
            identities: p.identities.clone(),
            links: p.links.clone(),
            rules: p.rules.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateServiceAccount {
    pub account_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateApiKey {
    /// A user id (`IBMid-…`) or a service account's iam id (`iam-ServiceId-…`).
    pub owner_iam_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `POST /v1/authorized_keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateAuthorizedKey {
    pub service_account_id: String,
    /// `RSA_2048` (the server's default) or `RSA_4096`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A trusted issuer (`/v1/trusted_issuers`). Holds public keys only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustedIssuer {
    /// `Issuer-…`.
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub issuer_url: String,
    /// `{"inline": {JWKS}}` or `{"file": "/path"}`.
    pub jwks: serde_json::Value,
    pub audiences: Vec<String>,
    pub cr_type: String,
    pub crn: String,
    pub claim_mapping: std::collections::BTreeMap<String, String>,
    pub created_at: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/trusted_issuers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CreateTrustedIssuer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    pub name: String,
    pub issuer_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cr_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_mapping: Option<std::collections::BTreeMap<String, String>>,
}

/// `PUT /v1/trusted_issuers/{id}`: the fields given replace the issuer's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct UpdateTrustedIssuer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_mapping: Option<std::collections::BTreeMap<String, String>>,
}

/// `POST /v1/oauth_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateOAuthToken {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateOAuthClient {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CreateAccessBinding {
    pub subject_iam_id: String,
    pub role: String,
    pub resource: String,
}

/// `POST /v1/signing_keys/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RotateSigningKeys {
    /// `jwt` or `yandex-iam`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// Replace the signer at once rather than publish a successor that signs later.
    pub immediate: bool,
}

/// Filters and paging of a list request. Each list honours the filters `docs/admin-api.md`
/// gives it (`account_id`: users, service accounts, API keys, clients, authorized keys, OAuth
/// tokens; `owner_iam_id`: API keys; `service_account_id`: authorized keys; `user_id`: OAuth
/// tokens; `subject_iam_id`, `resource`: access bindings); unset fields are not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_iam_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_iam_id: Option<String>,
    /// Authorization policies from this identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_iam_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// At most 1000; the server's default is 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Keyset pagination: only objects whose id sorts after this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

/// A connection to one Tessera server. Cheap to clone (the connection pool is shared).
///
/// A client made with [`Client::new`] can exchange credentials for tokens; [`Client::with_token`]
/// gives a client that also authenticates admin API calls. Admin calls on a client without a
/// token are sent without an `Authorization` header (the server answers `401 unauthenticated`),
/// which lets tests exercise exactly that.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    /// A client for the server at `endpoint` (e.g. `https://iam.example.com`, optionally with a
    /// base path), trusting the public web PKI.
    pub fn new(endpoint: &str) -> Result<Client> {
        Client::build(endpoint, None)
    }

    /// Like [`Client::new`] but also trusting the CA certificate(s) in `ca_pem` (PEM), for a
    /// server whose certificate comes from a private CA.
    pub fn with_ca_pem(endpoint: &str, ca_pem: &[u8]) -> Result<Client> {
        Client::build(endpoint, Some(ca_pem))
    }

    fn build(endpoint: &str, ca_pem: Option<&[u8]>) -> Result<Client> {
        let endpoint = parse_endpoint(endpoint)?;
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("tessera-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60));
        if let Some(pem) = ca_pem {
            for cert in
                reqwest::Certificate::from_pem_bundle(pem).map_err(Error::InvalidCertificate)?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(Error::Build)?;
        Ok(Client {
            http,
            endpoint,
            token: None,
        })
    }

    /// The same server, authenticating admin API calls with `access_token` (a bearer token).
    pub fn with_token(&self, access_token: impl Into<String>) -> Client {
        Client {
            http: self.http.clone(),
            endpoint: self.endpoint.clone(),
            token: Some(access_token.into()),
        }
    }

    /// The endpoint, normalised (always ends in `/`).
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }

    /// Exchanges an API key for an IAM access token (`POST /identity/token`, grant
    /// `urn:ibm:params:oauth:grant-type:apikey`), as IBM's SDKs do.
    pub async fn token_from_apikey(&self, apikey: &str) -> Result<TokenResponse> {
        let url = self.url(&["identity", "token"]);
        let form = [
            ("grant_type", APIKEY_GRANT_TYPE),
            ("apikey", apikey),
            ("response_type", "cloud_iam"),
        ];
        let request = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form);
        let response = send(request, &url).await?;
        let status = response.status();
        let global_id = response
            .headers()
            .get("x-global-transaction-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(response, &url).await?;
        if status.is_success() {
            return decode(&body, &url, Secrets::Present);
        }
        match serde_json::from_slice::<TokenErrorBody>(&body) {
            Ok(err) => Err(Error::Token(TokenError {
                status: status.as_u16(),
                code: err.error_code,
                message: err.error_message,
                details: err.error_details,
                request_id: err.context.and_then(|c| c.request_id).or(global_id),
            })),
            Err(_) => Err(unexpected(status, &body, &url)),
        }
    }

    /// `GET /v1/whoami`: the caller.
    pub async fn whoami(&self) -> Result<Whoami> {
        self.admin(Method::GET, &["v1", "whoami"], None::<&()>, None::<&()>)
            .await
    }

    // --- enterprises ---

    pub async fn create_enterprise(&self, body: &CreateEnterprise) -> Result<Enterprise> {
        self.create("enterprises", body).await
    }
    pub async fn list_enterprises(&self, query: &ListQuery) -> Result<Vec<Enterprise>> {
        self.list("enterprises", query).await
    }
    pub async fn get_enterprise(&self, id: &str) -> Result<Enterprise> {
        self.get("enterprises", id).await
    }
    pub async fn delete_enterprise(&self, id: &str) -> Result<()> {
        self.delete("enterprises", id).await
    }

    // --- accounts ---

    pub async fn create_account(&self, body: &CreateAccount) -> Result<Account> {
        self.create("accounts", body).await
    }
    pub async fn list_accounts(&self, query: &ListQuery) -> Result<Vec<Account>> {
        self.list("accounts", query).await
    }
    pub async fn get_account(&self, id: &str) -> Result<Account> {
        self.get("accounts", id).await
    }
    pub async fn delete_account(&self, id: &str) -> Result<()> {
        self.delete("accounts", id).await
    }

    /// `PATCH /v1/accounts/{id}`.
    pub async fn update_account(&self, id: &str, body: &UpdateAccount) -> Result<Account> {
        self.admin(
            Method::PATCH,
            &["v1", "accounts", id],
            None::<&()>,
            Some(body),
        )
        .await
    }

    // --- users ---

    /// `POST /v1/users/{id}/totp`: the answer holds the secret. `code` is a current code of
    /// the confirmed factor when replacing it (step-up).
    pub async fn enroll_totp(
        &self,
        user_id: &str,
        replace: bool,
        code: Option<&str>,
    ) -> Result<TotpEnrollment> {
        let url = self.url(&["v1", "users", user_id, "totp"]);
        let query = [("replace", replace)];
        let body = code.map(|code| serde_json::json!({ "code": code }));
        let bytes = self
            .admin_raw(Method::POST, url.clone(), Some(&query), body.as_ref())
            .await?;
        decode(&bytes, &url, Secrets::Present)
    }

    /// `POST /v1/users/{id}/totp/confirm`.
    pub async fn confirm_totp(&self, user_id: &str, code: &str) -> Result<TotpStatus> {
        self.admin(
            Method::POST,
            &["v1", "users", user_id, "totp", "confirm"],
            None::<&()>,
            Some(&serde_json::json!({ "code": code })),
        )
        .await
    }

    /// `DELETE /v1/users/{id}/totp`; `code` is a current code of a confirmed factor (step-up).
    pub async fn delete_totp(&self, user_id: &str, code: Option<&str>) -> Result<()> {
        let url = self.url(&["v1", "users", user_id, "totp"]);
        let body = code.map(|code| serde_json::json!({ "code": code }));
        self.admin_raw(Method::DELETE, url, None::<&()>, body.as_ref())
            .await?;
        Ok(())
    }

    pub async fn create_user(&self, body: &CreateUser) -> Result<User> {
        self.create("users", body).await
    }
    pub async fn list_users(&self, query: &ListQuery) -> Result<Vec<User>> {
        self.list("users", query).await
    }
    pub async fn get_user(&self, id: &str) -> Result<User> {
        self.get("users", id).await
    }
    pub async fn delete_user(&self, id: &str) -> Result<()> {
        self.delete("users", id).await
    }

    // --- service accounts ---

    pub async fn create_service_account(
        &self,
        body: &CreateServiceAccount,
    ) -> Result<ServiceAccount> {
        self.create("service_accounts", body).await
    }
    pub async fn list_service_accounts(&self, query: &ListQuery) -> Result<Vec<ServiceAccount>> {
        self.list("service_accounts", query).await
    }
    pub async fn get_service_account(&self, id: &str) -> Result<ServiceAccount> {
        self.get("service_accounts", id).await
    }
    pub async fn delete_service_account(&self, id: &str) -> Result<()> {
        self.delete("service_accounts", id).await
    }

    // --- trusted profiles ---

    pub async fn create_trusted_profile(
        &self,
        body: &CreateTrustedProfile,
    ) -> Result<TrustedProfile> {
        self.create("trusted_profiles", body).await
    }
    pub async fn list_trusted_profiles(&self, query: &ListQuery) -> Result<Vec<TrustedProfile>> {
        self.list("trusted_profiles", query).await
    }
    pub async fn get_trusted_profile(&self, id: &str) -> Result<TrustedProfile> {
        self.get("trusted_profiles", id).await
    }
    /// `PUT /v1/trusted_profiles/{id}`: replaces name, description, identities, links, rules.
    pub async fn replace_trusted_profile(
        &self,
        id: &str,
        body: &ReplaceTrustedProfile,
    ) -> Result<TrustedProfile> {
        self.admin(
            Method::PUT,
            &["v1", "trusted_profiles", id],
            None::<&()>,
            Some(body),
        )
        .await
    }
    pub async fn delete_trusted_profile(&self, id: &str) -> Result<()> {
        self.delete("trusted_profiles", id).await
    }

    // --- API keys ---

    pub async fn create_api_key(&self, body: &CreateApiKey) -> Result<CreatedApiKey> {
        // The answer carries the key itself: decode errors must not quote it.
        self.admin_secret(Method::POST, &["v1", "api_keys"], Some(body))
            .await
    }
    pub async fn list_api_keys(&self, query: &ListQuery) -> Result<Vec<ApiKey>> {
        self.list("api_keys", query).await
    }
    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey> {
        self.get("api_keys", id).await
    }
    pub async fn delete_api_key(&self, id: &str) -> Result<()> {
        self.delete("api_keys", id).await
    }

    // --- authorized keys ---

    /// `POST /v1/authorized_keys`: a new key pair; the answer's `key_file` holds the private key.
    pub async fn create_authorized_key(
        &self,
        body: &CreateAuthorizedKey,
    ) -> Result<CreatedAuthorizedKey> {
        self.admin_secret(Method::POST, &["v1", "authorized_keys"], Some(body))
            .await
    }
    pub async fn list_authorized_keys(&self, query: &ListQuery) -> Result<Vec<AuthorizedKey>> {
        self.list("authorized_keys", query).await
    }
    pub async fn get_authorized_key(&self, id: &str) -> Result<AuthorizedKey> {
        self.get("authorized_keys", id).await
    }
    pub async fn delete_authorized_key(&self, id: &str) -> Result<()> {
        self.delete("authorized_keys", id).await
    }

    // --- trusted issuers ---

    pub async fn create_trusted_issuer(&self, body: &CreateTrustedIssuer) -> Result<TrustedIssuer> {
        self.create("trusted_issuers", body).await
    }
    pub async fn list_trusted_issuers(&self, query: &ListQuery) -> Result<Vec<TrustedIssuer>> {
        self.list("trusted_issuers", query).await
    }
    pub async fn get_trusted_issuer(&self, id: &str) -> Result<TrustedIssuer> {
        self.get("trusted_issuers", id).await
    }
    pub async fn update_trusted_issuer(
        &self,
        id: &str,
        body: &UpdateTrustedIssuer,
    ) -> Result<TrustedIssuer> {
        self.admin(
            Method::PUT,
            &["v1", "trusted_issuers", id],
            None::<&()>,
            Some(body),
        )
        .await
    }
    pub async fn delete_trusted_issuer(&self, id: &str) -> Result<()> {
        self.delete("trusted_issuers", id).await
    }

    // --- OAuth tokens ---

    pub async fn create_oauth_token(&self, body: &CreateOAuthToken) -> Result<CreatedOAuthToken> {
        self.admin_secret(Method::POST, &["v1", "oauth_tokens"], Some(body))
            .await
    }
    pub async fn list_oauth_tokens(&self, query: &ListQuery) -> Result<Vec<OAuthToken>> {
        self.list("oauth_tokens", query).await
    }
    pub async fn get_oauth_token(&self, id: &str) -> Result<OAuthToken> {
        self.get("oauth_tokens", id).await
    }
    /// Deletes (revokes) the token: it fails at once on the answering node.
    pub async fn delete_oauth_token(&self, id: &str) -> Result<()> {
        self.delete("oauth_tokens", id).await
    }

    pub async fn create_authorization_policy(
        &self,
        body: &CreateAuthorizationPolicy,
    ) -> Result<AuthorizationPolicy> {
        self.create("authorization_policies", body).await
    }
    pub async fn list_authorization_policies(
        &self,
        query: &ListQuery,
    ) -> Result<Vec<AuthorizationPolicy>> {
        self.list("authorization_policies", query).await
    }
    pub async fn get_authorization_policy(&self, id: &str) -> Result<AuthorizationPolicy> {
        self.get("authorization_policies", id).await
    }
    pub async fn delete_authorization_policy(&self, id: &str) -> Result<()> {
        self.delete("authorization_policies", id).await
    }

    // --- OAuth clients ---

    pub async fn create_client(&self, body: &CreateOAuthClient) -> Result<CreatedOAuthClient> {
        self.admin_secret(Method::POST, &["v1", "clients"], Some(body))
            .await
    }
    pub async fn list_clients(&self, query: &ListQuery) -> Result<Vec<OAuthClient>> {
        self.list("clients", query).await
    }
    pub async fn get_client(&self, id: &str) -> Result<OAuthClient> {
        self.get("clients", id).await
    }
    pub async fn delete_client(&self, id: &str) -> Result<()> {
        self.delete("clients", id).await
    }

    // --- access bindings ---

    pub async fn create_access_binding(&self, body: &CreateAccessBinding) -> Result<AccessBinding> {
        self.create("access_bindings", body).await
    }
    pub async fn list_access_bindings(&self, query: &ListQuery) -> Result<Vec<AccessBinding>> {
        self.list("access_bindings", query).await
    }
    pub async fn get_access_binding(&self, id: &str) -> Result<AccessBinding> {
        self.get("access_bindings", id).await
    }
    pub async fn delete_access_binding(&self, id: &str) -> Result<()> {
        self.delete("access_bindings", id).await
    }

    // --- signing keys (global administrator) ---

    /// `GET /v1/signing_keys`: every stored signing key.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKey>> {
        self.list("signing_keys", &ListQuery::default()).await
    }

    /// `POST /v1/signing_keys/rotate`; answers the key list after the rotation.
    pub async fn rotate_signing_keys(&self, body: &RotateSigningKeys) -> Result<Vec<SigningKey>> {
        let url = self.url(&["v1", "signing_keys", "rotate"]);
        let bytes = self
            .admin_raw(Method::POST, url.clone(), None::<&()>, Some(body))
            .await?;
        list_items(&bytes, &url, "signing_keys")
    }

    // --- plumbing ---

    async fn create<B: Serialize, T: DeserializeOwned>(&self, plural: &str, body: &B) -> Result<T> {
        self.admin(Method::POST, &["v1", plural], None::<&()>, Some(body))
            .await
    }

    async fn get<T: DeserializeOwned>(&self, plural: &str, id: &str) -> Result<T> {
        self.admin(Method::GET, &["v1", plural, id], None::<&()>, None::<&()>)
            .await
    }

    async fn list<T: DeserializeOwned>(&self, plural: &str, query: &ListQuery) -> Result<Vec<T>> {
        let url = self.url(&["v1", plural]);
        let body = self
            .admin_raw(Method::GET, url.clone(), Some(query), None::<&()>)
            .await?;
        list_items(&body, &url, plural)
    }

    async fn delete(&self, plural: &str, id: &str) -> Result<()> {
        let url = self.url(&["v1", plural, id]);
        self.admin_raw(Method::DELETE, url, None::<&()>, None::<&()>)
            .await?;
        Ok(())
    }

    async fn admin<Q: Serialize, B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<T> {
        let url = self.url(segments);
        let bytes = self.admin_raw(method, url.clone(), query, body).await?;
        decode(&bytes, &url, Secrets::Absent)
    }

    async fn admin_secret<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&B>,
    ) -> Result<T> {
        let url = self.url(segments);
        let bytes = self
            .admin_raw(method, url.clone(), None::<&()>, body)
            .await?;
        decode(&bytes, &url, Secrets::Present)
    }

    /// Sends an authenticated admin request; answers the body of a success, the typed error
    /// otherwise.
    async fn admin_raw<Q: Serialize, B: Serialize>(
        &self,
        method: Method,
        url: Url,
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<Vec<u8>> {
        let mut request = self
            .http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = send(request, &url).await?;
        let status = response.status();
        let bytes = read_body(response, &url).await?;
        if status.is_success() {
            return Ok(bytes);
        }
        match serde_json::from_slice::<ApiErrorBody>(&bytes) {
            Ok(ApiErrorBody { error }) => Err(Error::Api(ApiError {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                request_id: error.request_id,
            })),
            Err(_) => Err(unexpected(status, &bytes, &url)),
        }
    }

    /// `endpoint` + segments, each percent-encoded as one path segment (ids are user-chosen for
    /// OAuth clients, so they may hold `/` or `?`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        // `parse_endpoint` rejected URLs that cannot be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }
}

/// The items of a list body `{"<plural>": [...]}`, decoded through a Value so that fields added
/// next to the list (a future cursor, say) do not break old clients.
fn list_items<T: DeserializeOwned>(body: &[u8], url: &Url, plural: &str) -> Result<Vec<T>> {
    let mut value: serde_json::Value = decode(body, url, Secrets::Absent)?;
    let items = value
        .get_mut(plural)
        .map(serde_json::Value::take)
        .ok_or_else(|| Error::Decode {
            url: url.to_string(),
            detail: format!("missing field `{plural}`"),
        })?;
    serde_json::from_value(items).map_err(|err| Error::Decode {
        url: url.to_string(),
        detail: err.to_string(),
    })
}

/// Validates and normalises an endpoint URL.
fn parse_endpoint(endpoint: &str) -> Result<Url> {
    let invalid = |reason: &str| Error::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.into(),
    };
    let mut url = Url::parse(endpoint.trim()).map_err(|err| invalid(&err.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("not an absolute URL with a host"));
    }
    // URLs are quoted in error messages; credentials in them would leak there.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::InvalidEndpoint {
            endpoint: "<redacted: contains credentials>".into(),
            reason: "the URL must not contain credentials".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("the URL must not have a query or fragment"));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

fn http_error(url: &Url, source: reqwest::Error) -> Error {
    // Our message names the URL already; reqwest's would repeat it.
    Error::Http {
        url: url.to_string(),
        source: source.without_url(),
    }
}

async fn send(request: RequestBuilder, url: &Url) -> Result<reqwest::Response> {
    request
        .send()
        .await
        .map_err(|source| http_error(url, source))
}

async fn read_body(response: reqwest::Response, url: &Url) -> Result<Vec<u8>> {
    let bytes = response
        .bytes()
        .await
        .map_err(|source| http_error(url, source))?;
    Ok(bytes.to_vec())
}

/// Whether a response body may hold a secret, which decides how much of a decoding error is
/// shown.
#[derive(Clone, Copy)]
enum Secrets {
    Present,
    Absent,
}

fn decode<T: DeserializeOwned>(body: &[u8], url: &Url, secrets: Secrets) -> Result<T> {
    serde_json::from_slice(body).map_err(|err| {
        let detail = match secrets {
            Secrets::Absent => err.to_string(),
            // serde_json's message can quote the offending value, which may be a token.
            Secrets::Present => format!(
                "{:?} error at line {} column {}",
                err.classify(),
                err.line(),
                err.column()
            ),
        };
        Error::Decode {
            url: url.to_string(),
            detail,
        }
    })
}

fn unexpected(status: StatusCode, body: &[u8], url: &Url) -> Error {
    let text = String::from_utf8_lossy(body);
    let mut excerpt: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT_CHARS)
        .collect();
    if text.chars().count() > BODY_EXCERPT_CHARS {
        excerpt.push('…');
    }
    if excerpt.trim().is_empty() {
        excerpt = "(empty body)".into();
    }
    Error::UnexpectedResponse {
        url: url.to_string(),
        status: status.as_u16(),
        body: excerpt,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_and_validated() {
        let client = Client::new("https://iam.example.com").unwrap();
        assert_eq!(client.endpoint(), "https://iam.example.com/");
        assert_eq!(
            client.url(&["identity", "token"]).as_str(),
            "https://iam.example.com/identity/token"
        );
        let based = Client::new("http://127.0.0.1:8080/tessera/").unwrap();
        assert_eq!(
            based.url(&["v1", "clients", "a/b?c"]).as_str(),
            "http://127.0.0.1:8080/tessera/v1/clients/a%2Fb%3Fc"
        );
        for bad in [
            "iam.example.com",
            "ftp://x",
            "https://u:p@x",
            "https://x/?a=1",
            "mailto:a@b",
        ] {
            assert!(
                matches!(Client::new(bad), Err(Error::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
        let err = Client::new("https://user:hunter2@x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn error_displays() {
        let api = ApiError {
            status: 404,
            code: "not_found".into(),
            message: "service account ServiceId-x not found".into(),
            request_id: Some("r1".into()),
        };
        assert_eq!(
            api.to_string(),
            "service account ServiceId-x not found (not_found, HTTP 404)"
        );
        let token = TokenError {
            status: 400,
            code: "BXNIM0415E".into(),
            message: "Provided API key could not be found.".into(),
            details: None,
            request_id: None,
        };
        assert_eq!(
            token.to_string(),
            "Provided API key could not be found. (BXNIM0415E)"
        );
        assert_eq!(Error::from(token).status(), Some(400));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let token: TokenResponse = serde_json::from_str(
            r#"{"access_token":"SECRET-A","refresh_token":"SECRET-R","token_type":"Bearer",
                "expires_in":3600,"expiration":1,"scope":"ibm openid",
                "delegated_refresh_token":"SECRET-D"}"#,
        )
        .unwrap();
        let shown = format!("{token:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("delegated_refresh_token"));

        let key: CreatedApiKey = serde_json::from_str(
            r#"{"id":"ApiKey-1","name":"k","description":"","owner_iam_id":"iam-ServiceId-1",
                "account_id":"a","created_at":"2026-01-01T00:00:00Z","apikey":"SECRET-K"}"#,
        )
        .unwrap();
        assert!(!format!("{key:?}").contains("SECRET"));
        let client = Client::new("http://localhost")
            .unwrap()
            .with_token("SECRET-T");
        assert!(!format!("{client:?}").contains("SECRET"));
        let user = CreateUser {
            password: Some("SECRET-P".into()),
            ..Default::default()
        };
        assert!(!format!("{user:?}").contains("SECRET"));
    }

    #[test]
    fn responses_round_trip_with_unknown_fields() {
        let text = r#"{"id":"c1","name":"ci","account_id":null,"created_at":"2026-01-01T00:00:00Z",
                       "secret":"s3cr3t","future_field":{"x":1}}"#;
        let created: CreatedOAuthClient = serde_json::from_str(text).unwrap();
        assert_eq!(created.secret, "s3cr3t");
        assert_eq!(created.client.account_id, None);
        assert!(created.client.extra.contains_key("future_field"));
        assert!(!created.client.extra.contains_key("secret"));
        let back: serde_json::Value = serde_json::to_value(&created).unwrap();
        let original: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn secret_bearing_decode_errors_do_not_quote_values() {
        let url = Url::parse("http://x/identity/token").unwrap();
        let body = br#"{"access_token":"SECRET","token_type":"Bearer","expires_in":"SECRET2","expiration":1}"#;
        let err = decode::<TokenResponse>(body, &url, Secrets::Present)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn list_queries_send_only_set_fields() {
        let query = ListQuery {
            account_id: Some("a1".into()),
            limit: Some(5),
            ..Default::default()
        };
        assert_eq!(serde_urlencoded_string(&query), "account_id=a1&limit=5");
    }

    fn serde_urlencoded_string(query: &ListQuery) -> String {
        // reqwest uses serde_urlencoded for `.query`; go through a real request to check it.
        let client = reqwest::Client::new();
        let request = client.get("http://x/").query(query).build().unwrap();
        request.url().query().unwrap_or_default().to_owned()
    }

    /// One request as a fake server saw it.
    #[derive(Debug)]
    struct Seen {
        request_line: String,
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// A one-connection-per-request HTTP/1.1 server answering `answers` in order, then handing
    /// back what it saw. Enough to check the client's wire format without the real server.
    async fn fake_server(
        answers: Vec<(u16, &'static str, String)>,
    ) -> (String, tokio::task::JoinHandle<Vec<Seen>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for (status, extra_headers, body) in answers {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buffer = Vec::new();
                let header_end = loop {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed mid-request");
                    buffer.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at;
                    }
                };
                let head = String::from_utf8(buffer[..header_end].to_vec()).unwrap();
                let mut lines = head.split("\r\n");
                let request_line = lines.next().unwrap().to_owned();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|line| line.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n == "content-length")
                    .map_or(0, |(_, v)| v.parse().unwrap());
                let mut request_body = buffer[header_end + 4..].to_vec();
                while request_body.len() < length {
                    let mut chunk = [0u8; 4096];
                    let n = socket.read(&mut chunk).await.unwrap();
                    request_body.extend_from_slice(&chunk[..n]);
                }
                seen.push(Seen {
                    request_line,
                    headers,
                    body: String::from_utf8(request_body).unwrap(),
                });
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                     Content-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
                    body.len()
                );
                socket.write_all(response.as_bytes()).await.unwrap();
                socket.shutdown().await.unwrap();
            }
            seen
        });
        (endpoint, task)
    }

    fn form_pairs(body: &str) -> Vec<(String, String)> {
        Url::parse(&format!("http://x/?{body}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn apikey_exchange_on_the_wire() {
        let ok = r#"{"access_token":"a.b.c","refresh_token":"r","token_type":"Bearer",
                     "expires_in":3600,"expiration":1800000000,"scope":"ibm openid"}"#;
        let (endpoint, server) = fake_server(vec![(200, "", ok.to_owned())]).await;
        let token = Client::new(&format!("{endpoint}/"))
            .unwrap()
            .token_from_apikey("k&y=1")
            .await
            .unwrap();
        assert_eq!(token.access_token, "a.b.c");
        assert_eq!(token.refresh_token.as_deref(), Some("r"));
        assert_eq!((token.expires_in, token.expiration), (3600, 1_800_000_000));

        let seen = server.await.unwrap();
        assert_eq!(seen[0].request_line, "POST /identity/token HTTP/1.1");
        assert_eq!(seen[0].header("accept"), Some("application/json"));
        assert_eq!(
            seen[0].header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(seen[0].header("authorization"), None);
        assert_eq!(
            form_pairs(&seen[0].body),
            [
                ("grant_type".to_owned(), APIKEY_GRANT_TYPE.to_owned()),
                ("apikey".to_owned(), "k&y=1".to_owned()),
                ("response_type".to_owned(), "cloud_iam".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn token_errors_are_typed() {
        let with_context = r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found.",
            "errorDetails":"d","context":{"requestId":"req-1"}}"#;
        let without_context =
            r#"{"errorCode":"BXNIM0308E","errorMessage":"No authorization header found"}"#;
        let (endpoint, server) = fake_server(vec![
            (400, "", with_context.to_owned()),
            (
                400,
                "X-Global-Transaction-ID: gtx-2\r\n",
                without_context.to_owned(),
            ),
            (502, "", "<html>Bad gateway</html>".to_owned()),
        ])
        .await;
        let client = Client::new(&endpoint).unwrap();
        let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
        let token = err.token().unwrap();
        assert_eq!(
            err.to_string(),
            "Provided API key could not be found. (BXNIM0415E)"
        );
        assert_eq!(
            (token.status, token.request_id.as_deref()),
            (400, Some("req-1"))
        );
        assert_eq!(token.details.as_deref(), Some("d"));

        let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
        assert_eq!(err.token().unwrap().request_id.as_deref(), Some("gtx-2"));

        let err = client.token_from_apikey("SECRET-KEY").await.unwrap_err();
        assert_eq!(err.status(), Some(502));
        let shown = format!("{err} {err:?}");
        assert!(
            shown.contains("Bad gateway") && !shown.contains("SECRET"),
            "{shown}"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn admin_calls_on_the_wire() {
        let sa = r#"{"id":"ServiceId-1","iam_id":"iam-ServiceId-1","account_id":"a1","name":"ci",
                     "description":"","created_at":"2026-01-01T00:00:00Z"}"#;
        let (endpoint, server) = fake_server(vec![
            (201, "", sa.to_owned()),
            (200, "", format!(r#"{{"service_accounts":[{sa}]}}"#)),
            (204, "", String::new()),
            (
                404,
                "",
                r#"{"error":{"code":"not_found","message":"service account ServiceId-2 not found","request_id":"r9"}}"#
                    .to_owned(),
            ),
            (401, "WWW-Authenticate: Bearer\r\n", r#"{"error":{"code":"unauthenticated","message":"no token"}}"#.to_owned()),
        ])
        .await;
        let anonymous = Client::new(&endpoint).unwrap();
        let admin = anonymous.with_token("tok");

        let created = admin
            .create_service_account(&CreateServiceAccount {
                account_id: "a1".into(),
                name: "ci".into(),
                description: None,
            })
            .await
            .unwrap();
        assert_eq!(created.iam_id, "iam-ServiceId-1");

        let query = ListQuery {
            account_id: Some("a1".into()),
            limit: Some(2),
            ..Default::default()
        };
        let listed = admin.list_service_accounts(&query).await.unwrap();
        assert_eq!(listed, vec![created.clone()]);

        admin.delete_service_account("ServiceId-1").await.unwrap();

        let err = admin.get_service_account("ServiceId-2").await.unwrap_err();
        let api = err.api().unwrap();
        assert_eq!(
            (api.status, api.code.as_str(), api.request_id.as_deref()),
            (404, "not_found", Some("r9"))
        );
        assert_eq!(
            err.to_string(),
            "service account ServiceId-2 not found (not_found, HTTP 404)"
        );

        let err = anonymous.whoami().await.unwrap_err();
        assert_eq!(
            err.api().map(|e| (e.status, e.request_id.clone())),
            Some((401, None))
        );

        let seen = server.await.unwrap();
        assert_eq!(seen[0].request_line, "POST /v1/service_accounts HTTP/1.1");
        assert_eq!(seen[0].header("authorization"), Some("Bearer tok"));
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&seen[0].body).unwrap(),
            serde_json::json!({"account_id": "a1", "name": "ci"})
        );
        assert_eq!(
            seen[1].request_line,
            "GET /v1/service_accounts?account_id=a1&limit=2 HTTP/1.1"
        );
        assert_eq!(
            seen[2].request_line,
            "DELETE /v1/service_accounts/ServiceId-1 HTTP/1.1"
        );
        assert_eq!(
            seen[3].request_line,
            "GET /v1/service_accounts/ServiceId-2 HTTP/1.1"
        );
        assert_eq!(seen[4].request_line, "GET /v1/whoami HTTP/1.1");
        assert_eq!(seen[4].header("authorization"), None);
    }

    #[tokio::test]
    async fn signing_key_calls_on_the_wire() {
        let key = r#"{"kid":"20260101000000-abcdef","algorithm":"RS256","use":"jwt",
                      "state":"active","created_at":"2026-01-01T00:00:00Z","retired_at":null,
                      "published":true}"#;
        let (endpoint, server) = fake_server(vec![
            (200, "", format!(r#"{{"signing_keys":[{key}]}}"#)),
            (200, "", format!(r#"{{"signing_keys":[{key}]}}"#)),
        ])
        .await;
        let admin = Client::new(&endpoint).unwrap().with_token("tok");
        let keys = admin.list_signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (keys[0].key_use.as_str(), keys[0].state.as_str()),
            ("jwt", "active")
        );
        assert_eq!(keys[0].retired_at, None);
        let rotated = admin
            .rotate_signing_keys(&RotateSigningKeys {
                key_use: "yandex-iam".into(),
                immediate: true,
            })
            .await
            .unwrap();
        assert_eq!(rotated, keys);
        // `use` survives a round trip under its API name.
        assert_eq!(serde_json::to_value(&keys[0]).unwrap()["use"], "jwt");

        let seen = server.await.unwrap();
        assert_eq!(seen[0].request_line, "GET /v1/signing_keys HTTP/1.1");
        assert_eq!(
            seen[1].request_line,
            "POST /v1/signing_keys/rotate HTTP/1.1"
        );
        assert_eq!(seen[1].header("authorization"), Some("Bearer tok"));
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&seen[1].body).unwrap(),
            serde_json::json!({"use": "yandex-iam", "immediate": true})
        );
    }

    #[tokio::test]
    async fn unreachable_servers_are_http_errors_naming_the_url_once() {
        // Bind then drop a listener: the port is (almost certainly) closed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = Client::new(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .token_from_apikey("SECRET")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Http { .. }));
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("127.0.0.1").count(), 1, "{chain}");
        assert!(!chain.contains("SECRET"));
    }
}
