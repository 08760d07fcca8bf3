//! The token responses of the protocol surfaces: IBM `/identity/token`, introspection,
//! revocation errors, JWKS and discovery, and the Yandex `/iam/v1/tokens` family.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /identity/token` (form-encoded `grant_type` + its parameters). `Debug` redacts the
/// tokens.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
pub struct IbmTokenResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_refresh_token: Option<String>,
    /// `Bearer`.
    pub token_type: String,
    pub expires_in: i64,
    /// Unix time the access token expires.
    pub expiration: i64,
    pub scope: String,
}

/// The IBM error body of `/identity/token`. `errorDetails` and `context` default to empty when
/// absent, so that a client reads the shorter bodies of IBM's own endpoint too.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IbmErrorBody {
    pub error_code: String,
    pub error_message: String,
    #[serde(default)]
    #[schema(required = true)]
    pub error_details: String,
    #[serde(default)]
    #[schema(required = true)]
    pub context: serde_json::Map<String, serde_json::Value>,
}

/// An OAuth 2.0 error (RFC 6749 §5.2) of introspection and revocation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

/// `POST /identity/introspect` (RFC 7662): `active`, and for an active token its claims.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// A JSON Web Key Set (RFC 7517).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// `GET /.well-known/openid-configuration`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub claims_supported: Vec<String>,
}

/// `POST /iam/v1/tokens` and `:createForServiceAccount`. `Debug` redacts the token.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct YandexIamToken {
    pub iam_token: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `POST /iam/v1/tokens` body: exactly one of the three credentials.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct YandexTokenCreate {
    /// An OAuth token of a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yandex_passport_oauth_token: Option<String>,
    /// A PS256 JWT signed with a service account's authorized key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<String>,
}

/// `POST /iam/v1/tokens:createForServiceAccount` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct YandexTokenForServiceAccount {
    pub service_account_id: String,
}

/// `POST /iam/v1/tokens:revoke` answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct YandexRevoked {
    pub subject_id: String,
}

/// The Yandex error body (`google.rpc.Status` in JSON).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct YandexErrorBody {
    /// The gRPC status code (`16` is `UNAUTHENTICATED`).
    pub code: i32,
    pub message: String,
    #[serde(default)]
    pub details: Vec<serde_json::Value>,
}

/// The grants of `POST /identity/token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum GrantType {
    #[serde(rename = "urn:ibm:params:oauth:grant-type:apikey")]
    ApiKey,
    #[serde(rename = "refresh_token")]
    Refresh,
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "urn:ibm:params:oauth:grant-type:assume")]
    Assume,
    #[serde(rename = "urn:ibm:params:oauth:grant-type:cr-token")]
    CrToken,
    #[serde(rename = "urn:ibm:params:oauth:grant-type:iam-authz")]
    IamAuthz,
    #[serde(rename = "urn:ibm:params:oauth:grant-type:delegated-refresh-token")]
    DelegatedRefresh,
}

/// The form of `POST /identity/token` (`application/x-www-form-urlencoded`): `grant_type` and
/// the parameters of that grant. Unknown parameters are ignored, as IBM's endpoint does; each
/// parameter may appear at most once. Client authentication is HTTP Basic (optional).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct IbmTokenRequest {
    #[schema(value_type = GrantType)]
    pub grant_type: String,
    /// The API key (apikey grant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apikey: Option<String>,
    /// `cloud_iam`, optionally with `delegated_refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_client_ids: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_refresh_token_expiry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The TOTP code of the password grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_crn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cr_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_iam_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegated_refresh_token: Option<String>,
}

/// The form of `POST /identity/introspect` and `/identity/revoke` (RFC 7662, RFC 7009).
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenForm {
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

impl std::fmt::Debug for IbmTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |token: &Option<String>| token.as_ref().map(|_| crate::REDACTED);
        f.debug_struct("IbmTokenResponse")
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field(
                "delegated_refresh_token",
                &redacted(&self.delegated_refresh_token),
            )
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("expiration", &self.expiration)
            .field("scope", &self.scope)
            .finish()
    }
}

impl std::fmt::Debug for YandexIamToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YandexIamToken")
            .field("iam_token", &crate::REDACTED)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
