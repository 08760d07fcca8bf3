//! The admin API (`/v1`): request bodies, query parameters and the views of each resource.
//! Secrets never appear in views, except the one-time `apikey`/`secret`/`token`/`key_file`/
//! `secret` fields of create responses.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub use crate::OneTime;

// --- Enumerations (what the server accepts, exactly) -------------------------------------------

/// An account's sign-in requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Mfa {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "TOTP")]
    Totp,
}

/// The roles an access binding can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum RoleName {
    #[serde(rename = "admin")]
    Admin,
    #[serde(rename = "viewer")]
    Viewer,
    #[serde(rename = "iam.serviceAccounts.tokenCreator")]
    TokenCreator,
    #[serde(rename = "iam.serviceAccounts.user")]
    ServiceAccountUser,
}

/// The key algorithms of authorized keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum AuthorizedKeyAlgorithm {
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    #[serde(rename = "RSA_4096")]
    Rsa4096,
}

/// What a signing key signs: IBM-surface JWTs or Yandex IAM tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum KeyUse {
    #[serde(rename = "jwt")]
    Jwt,
    #[serde(rename = "yandex-iam")]
    YandexIam,
}

/// A signing key's place in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

/// The shape of a minted ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IdTokenFormat {
    Standard,
    Full,
}

/// Who may assume a trusted profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrustedIdentityType {
    User,
    Serviceid,
    Crn,
}

/// The comparison of a claim-rule condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClaimOperator {
    Equals,
    NotEquals,
    EqualsIgnoreCase,
    NotEqualsIgnoreCase,
    Contains,
    In,
}

/// A user's TOTP factor: none, enrolled but not confirmed, or confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TotpState {
    None,
    Pending,
    Confirmed,
}

// --- Query parameters --------------------------------------------------------------------------

/// `limit`, `after` and the filters of list requests. Each filter is at most 128 characters.
#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Objects of this account.
    #[param(max_length = 128)]
    pub account_id: Option<String>,
    /// Objects owned by this identity (API keys, authorized keys, OAuth tokens).
    #[param(max_length = 128)]
    pub owner_iam_id: Option<String>,
    /// Authorized keys of this service account (the owner filter in another spelling).
    #[param(max_length = 128)]
    pub service_account_id: Option<String>,
    /// OAuth tokens of this user (the owner filter in another spelling).
    #[param(max_length = 128)]
    pub user_id: Option<String>,
    /// Access bindings of this identity.
    #[param(max_length = 128)]
    pub subject_iam_id: Option<String>,
    /// Authorization policies from this identity (the subject filter in another spelling).
    #[param(max_length = 128)]
    pub source_iam_id: Option<String>,
    /// Access bindings on this resource (`*`, `account/<id>`, `service-account/<id>`).
    #[param(
        max_length = 128,
        pattern = r"^(\*|account/.+|service-account/.+)(?!\n)$"
    )]
    pub resource: Option<String>,
    /// Objects whose id sorts after this one (paging).
    #[param(max_length = 128)]
    pub after: Option<String>,
    /// At most this many objects (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Addressing an object: `account_id` only for OAuth clients, whose ids are unique per account.
#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ObjectQuery {
    /// The account of the OAuth client (clients only).
    #[param(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events of this account only (an account administrator may read its account's events;
    /// without it, every event, for global administrators).
    #[param(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    /// Events of this actor (`iam_id`, or `system`).
    #[param(min_length = 1, max_length = 600)]
    pub actor: Option<String>,
    /// Events of this action (`api_key.delete`), or of every action it begins when it ends
    /// with a dot (`api_key.`).
    #[param(pattern = r"^[a-z_]+(\.[a-z_]+)*\.?(?!\n)$", max_length = 64)]
    pub action: Option<String>,
    /// Events at or after this time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Events before this time.
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// Events older than this event id (paging: the last `id` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// At most this many events, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EnrollQuery {
    /// Enrol a replacement for a confirmed factor (needs `code` of the old one).
    #[serde(default)]
    pub replace: bool,
}

// --- Requests ----------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnterpriseCreate {
    #[schema(schema_with = field::name)]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    #[schema(schema_with = field::name)]
    pub name: String,
    /// The enterprise the account belongs to.
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub enterprise_id: Option<String>,
}

/// `PATCH /v1/accounts/{id}`: the account's sign-in requirement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    #[schema(value_type = Mfa, required = true)]
    pub mfa: Option<String>,
}

#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    /// Default: the caller's account.
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    #[schema(schema_with = field::name)]
    pub name: String,
    #[schema(
        max_length = 254,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\s\u0000-\u001f\u007f-\u009f]+@[^@\s.\u0000-\u001f\u007f-\u009f]([^@\s\u0000-\u001f\u007f-\u009f]*\.)+[^@\s.\u0000-\u001f\u007f-\u009f][\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?!\n)$"
    )]
    pub email: String,
    /// A password for the sign-in of the OAuth password grant; not with `federated`.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    /// Signs in through an identity provider only (no password).
    #[serde(default)]
    pub federated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountCreate {
    /// Default: the caller's account.
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    #[schema(schema_with = field::name)]
    pub name: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// A user id (`IBMid-…`) or a service account's iam id (`iam-ServiceId-…`).
    #[schema(
        max_length = 64,
        pattern = r"^(IBMid-|iam-ServiceId-)[A-Za-z0-9._-]*(?!\n)$"
    )]
    pub owner_iam_id: String,
    #[schema(schema_with = field::name)]
    pub name: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientCreate {
    /// The `client_id`; `default` is reserved for the built-in public client.
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9._-]+(?!\n)$")]
    pub id: String,
    /// Default: the id.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*(?!\n)$"
    )]
    pub name: Option<String>,
    /// Default: a global client, usable from every account.
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeyCreate {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9._-]{1,64}(?!\n)$"
    )]
    pub service_account_id: String,
    /// Default: `RSA_2048`.
    #[schema(value_type = Option<AuthorizedKeyAlgorithm>)]
    pub key_algorithm: Option<String>,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthTokenCreate {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[A-Za-z0-9._-]{1,64}(?!\n)$"
    )]
    pub user_id: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessBindingCreate {
    /// A user id (`IBMid-…`) or a service account's iam id (`iam-ServiceId-…`).
    #[schema(
        max_length = 64,
        pattern = r"^(IBMid-|iam-ServiceId-)[A-Za-z0-9._-]*(?!\n)$"
    )]
    pub subject_iam_id: String,
    #[schema(value_type = RoleName)]
    pub role: String,
    /// `*`, `account/<account id>` or `service-account/<service account id>`.
    #[schema(
        max_length = 128,
        pattern = r"^(\*|account/[0-9a-f]{32}|service-account/[A-Za-z0-9._-]+)(?!\n)$"
    )]
    pub resource: String,
}

/// A trusted identity: `{"type", "identifier", "accounts"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIdentity {
    #[serde(rename = "type")]
    #[schema(value_type = TrustedIdentityType)]
    pub kind: String,
    /// A user's `IBMid-…`, a service ID's `iam-ServiceId-…` (or `ServiceId-…`), or a CRN
    /// (`crn:v1:…`) scoped to the profile's account.
    pub identifier: String,
    /// Users only: the accounts whose tokens of this user are trusted; empty means the user's
    /// own account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub accounts: Vec<String>,
}

/// A compute resource a trusted profile trusts by name: a Kubernetes service account
/// (`crn` + `namespace` + `name`), a Code Engine component (`crn` + `component_type` +
/// `component_name`), or a VM (`crn`). `id` is generated when absent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComputeResourceLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub cr_type: String,
    pub crn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_name: Option<String>,
}

/// `claim OPERATOR value`; `value` is JSON-encoded (`"\"prod\""`, `"[\"a\",\"b\"]"`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimCondition {
    pub claim: String,
    #[schema(value_type = ClaimOperator)]
    pub operator: String,
    pub value: String,
}

/// A claim rule: every condition must hold. `id` is generated when absent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Profile-CR` (compute resources).
    #[serde(rename = "type")]
    pub rule_type: String,
    /// The compute-resource type the rule applies to (`IKS_SA`, `ROKS_SA`, `CE`, `VSI`, ...).
    pub cr_type: String,
    #[schema(min_items = 1, max_items = 20)]
    pub conditions: Vec<ClaimCondition>,
}

/// `POST /v1/trusted_profiles` (with `account_id`) and `PUT /v1/trusted_profiles/{id}`
/// (without): the whole document.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedProfileCreate {
    /// Default: the caller's account.
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    #[schema(schema_with = field::name)]
    pub name: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
    #[serde(default)]
    pub identities: Vec<TrustedIdentity>,
    #[serde(default)]
    pub links: Vec<ComputeResourceLink>,
    #[serde(default)]
    pub rules: Vec<ClaimRule>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedProfileReplace {
    #[schema(schema_with = field::name)]
    pub name: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
    #[serde(default)]
    pub identities: Vec<TrustedIdentity>,
    #[serde(default)]
    pub links: Vec<ComputeResourceLink>,
    #[serde(default)]
    pub rules: Vec<ClaimRule>,
}

/// A JSON Web Key Set: `{"keys": [...]}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JwksDocument {
    pub keys: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Where a trusted issuer's keys come from: `{"inline": {"keys": [...]}}` or `{"file": "/path"}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JwksSource {
    Inline(serde_json::Value),
    File(String),
}

/// `POST /v1/trusted_issuers`: exactly one of `jwks` (inline) and `jwks_file` (a path on the
/// server).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerCreate {
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    #[schema(schema_with = field::name)]
    pub name: String,
    /// The exact `iss` of the issuer's tokens: an https URL without credentials, query or
    /// fragment (`http://` only for a loopback host).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r#"^(https://[A-Za-z0-9.-]+|http://(127\.0\.0\.1|localhost|\[::1\]))(:[0-9]{1,5})?(/[!"$-><@-~]*)?(?!\n)$"#
    )]
    pub issuer_url: String,
    #[schema(value_type = Option<JwksDocument>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_file: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub cr_type: Option<String>,
    pub crn: Option<String>,
    pub claim_mapping: Option<BTreeMap<String, String>>,
}

/// `PUT /v1/trusted_issuers/{id}`: the fields given are replaced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuerUpdate {
    #[schema(value_type = Option<JwksDocument>)]
    pub jwks: Option<serde_json::Value>,
    pub jwks_file: Option<String>,
    pub audiences: Option<Vec<String>>,
    pub claim_mapping: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationPolicyCreate {
    /// The account of the target resource (default: the caller's).
    #[schema(pattern = r"^[0-9a-f]{32}(?!\n)$")]
    pub account_id: Option<String>,
    /// A user id (`IBMid-…`), a service ID (`iam-ServiceId-…` or `ServiceId-…`), a trusted
    /// profile (`iam-Profile-…`) or a CRN identity (`crn-` and a 10-segment CRN).
    #[schema(
        min_length = 1,
        max_length = 516,
        pattern = r"^((IBMid-|iam-ServiceId-|ServiceId-|iam-Profile-)[A-Za-z0-9._-]+|crn-crn:v1:[!-9;-~]+:[!-9;-~]+:[!-9;-~]+(:[!-9;-~]*){5})(?!\n)$"
    )]
    pub source_iam_id: String,
    /// A CRN (`crn:v1:…`), or a CRN prefix ending in `*`, scoped to the policy's account: the
    /// seventh segment is `a/<account id>` (and, in a prefix, complete).
    #[schema(
        min_length = 1,
        max_length = 512,
        pattern = r"^crn:v1:[!-)+-9;-~]+:[!-)+-9;-~]+:[!-)+-9;-~]+:[!-)+-9;-~]*:a/[0-9a-f]{32}:([!-)+-9;-~]*:[!-)+-9;-~]*:[!-)+-9;-~]*|([!-)+-9;-~]*:){0,2}[!-)+-9;-~]*\*)(?!\n)$"
    )]
    pub target_crn: String,
    #[schema(schema_with = field::description)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyRotate {
    #[serde(rename = "use")]
    #[schema(value_type = KeyUse)]
    pub key_use: String,
    /// Retire the active key now instead of at the next scheduled rotation.
    #[serde(default)]
    pub immediate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCutoffCreate {
    /// The identity whose tokens issued until now stop working.
    #[schema(min_length = 1, max_length = 600)]
    pub iam_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdTokenCreate {
    /// The `aud` of the token.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1024, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*(?!\n)$")]
    pub audience: Option<String>,
    /// Default: `standard`.
    #[schema(value_type = Option<IdTokenFormat>)]
    pub format: Option<String>,
    /// Instance attributes for full-format tokens (what GCE puts under `google.compute_engine`):
    /// at most 16, each a string of at most 256 characters, a number or a boolean.
    #[serde(default)]
    #[schema(schema_with = compute_engine_schema)]
    pub compute_engine: serde_json::Map<String, serde_json::Value>,
}

/// The schema of `IdTokenCreate::compute_engine`, as `tessera_core::id_token::check_compute_engine`
/// checks it: at most 16 fields, names of 1..=64 characters, values strings of at most 256
/// characters, numbers or booleans.
fn compute_engine_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, OneOfBuilder, RefOr, Schema, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(16))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64)),
        ))
        .additional_properties(Some(RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(256)),
                )
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
                .build(),
        ))))
        .build()
}

/// A TOTP code: the step-up proof of a confirmed factor, or the confirming code. No `Debug`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// Six digits (surrounding whitespace is ignored).
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]{6}[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?!\n)$"
    )]
    pub code: Option<String>,
}

/// `POST /v1/users/{id}/totp/confirm`: the confirming code, which is required (the server
/// answers 400 without it). `Option` so that its absence gets the server's own message.
/// No `Debug`.
#[derive(Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmCodeBody {
    /// Six digits (surrounding whitespace is ignored).
    #[schema(
        required = true,
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]{6}[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?!\n)$"
    )]
    pub code: Option<String>,
}

// --- Views -------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub iam_id: String,
    /// The subject id: `IBMid-…`, `ServiceId-…`, `Profile-…` or a CRN.
    pub id: String,
    pub name: String,
    pub account_id: String,
    /// `user`, `ServiceId`, `Profile`, `CRN`, or empty for an unknown subject.
    pub sub_type: String,
    pub email: Option<String>,
    pub global_admin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: String,
    pub detail: String,
    /// The account whose administrators may read the event; absent for installation-wide
    /// events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub events: Vec<AuditEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EnterpriseView {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub enterprise_id: Option<String>,
    pub mfa: Mfa,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub federated: bool,
    pub has_password: bool,
    /// The user's TOTP factor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<TotpState>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAccountView {
    pub id: String,
    pub iam_id: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    pub description: String,
    pub owner_iam_id: String,
    pub account_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Only in the create response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub apikey: Option<OneTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClientView {
    pub id: String,
    pub name: String,
    pub account_id: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Only in the create response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub secret: Option<OneTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizedKeyView {
    pub id: String,
    pub service_account_id: String,
    pub account_id: String,
    pub description: String,
    pub key_algorithm: AuthorizedKeyAlgorithm,
    /// PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub public_key: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Only in the create response: the `yc iam key create` key file, private key included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<KeyFile>,
}

/// The authorized key file in the shape `yc iam key create` writes and the Yandex SDKs read.
/// `Debug` redacts the private key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyFile {
    pub id: String,
    pub service_account_id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub key_algorithm: AuthorizedKeyAlgorithm,
    pub public_key: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    #[schema(value_type = String)]
    pub private_key: OneTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthTokenView {
    pub id: String,
    pub user_id: String,
    pub account_id: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Only in the create response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub token: Option<OneTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccessBindingView {
    pub id: String,
    pub subject_iam_id: String,
    #[schema(value_type = RoleName)]
    pub role: String,
    pub resource: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustedProfileView {
    pub id: String,
    pub iam_id: String,
    pub crn: String,
    pub account_id: String,
    pub name: String,
    pub description: String,
    pub identities: Vec<TrustedIdentity>,
    pub links: Vec<ComputeResourceLink>,
    pub rules: Vec<ClaimRule>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TrustedIssuerView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub issuer_url: String,
    pub jwks: JwksSource,
    pub audiences: Vec<String>,
    pub cr_type: String,
    pub crn: String,
    pub claim_mapping: BTreeMap<String, String>,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationPolicyView {
    pub id: String,
    pub account_id: String,
    pub source_iam_id: String,
    pub target_crn: String,
    pub description: String,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// A signing key as operators see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyView {
    pub kid: String,
    pub algorithm: String,
    #[serde(rename = "use")]
    pub key_use: KeyUse,
    pub state: KeyState,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
    /// Whether this node's JWKS carries the key.
    pub published: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyList {
    pub signing_keys: Vec<SigningKeyView>,
}

/// The enrolment answer: the secret is shown here once. `Debug` redacts it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpEnrollView {
    pub user_id: String,
    #[schema(value_type = String)]
    pub secret: OneTime,
    // Carries the secret too.
    #[schema(value_type = String)]
    pub otpauth_uri: OneTime,
    pub confirmed: bool,
    /// A replacement: the old factor stays in force until this one is confirmed.
    pub replacement: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TotpStatusView {
    pub user_id: String,
    pub confirmed: bool,
    #[schema(format = DateTime)]
    pub created_at: String,
}

/// `POST /v1/token_cutoffs`: tokens of `iam_id` issued before `not_before` stop working.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenCutoffView {
    pub iam_id: String,
    #[schema(format = DateTime)]
    pub not_before: String,
}

/// A minted ID token. `Debug` redacts it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IdTokenView {
    #[schema(value_type = String)]
    pub id_token: OneTime,
    pub expires_in: i64,
}

/// The `{"<plural>": [...]}` body of a list.
macro_rules! list {
    ($name:ident, $field:ident, $item:ty) => {
        #[derive(Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            pub $field: Vec<$item>,
        }
    };
}
list!(EnterpriseList, enterprises, EnterpriseView);
list!(AccountList, accounts, AccountView);
list!(UserList, users, UserView);
list!(ServiceAccountList, service_accounts, ServiceAccountView);
list!(ApiKeyList, api_keys, ApiKeyView);
list!(ClientList, clients, ClientView);
list!(AuthorizedKeyList, authorized_keys, AuthorizedKeyView);
list!(OAuthTokenList, oauth_tokens, OAuthTokenView);
list!(AccessBindingList, access_bindings, AccessBindingView);
list!(TrustedProfileList, trusted_profiles, TrustedProfileView);
list!(TrustedIssuerList, trusted_issuers, TrustedIssuerView);
list!(
    AuthorizationPolicyList,
    authorization_policies,
    AuthorizationPolicyView
);

/// The schemas of the fields many requests share, stated once: a display name (1 to 128
/// characters, no control characters, not blank) and a free-text description (at most 1024
/// characters, no control characters but newlines). Each matches what the server's
/// `tessera_core::limits` checks; the server's tests hold them to it.
mod field {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

    pub const NAME_PATTERN: &str = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*(?!\n)$";
    pub const DESCRIPTION_PATTERN: &str = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*(?!\n)$";

    /// A required display name.
    pub fn name() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .min_length(Some(1))
            .max_length(Some(128))
            .pattern(Some(NAME_PATTERN))
    }

    /// An optional description (`null` allowed).
    pub fn description() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            .max_length(Some(1024))
            .pattern(Some(DESCRIPTION_PATTERN))
    }
}
