//! Route paths, in axum's `{param}` syntax (also OpenAPI's).

pub const OPENAPI: &str = "/openapi.json";

pub const WHOAMI: &str = "/v1/whoami";
pub const AUDIT: &str = "/v1/audit";
pub const ENTERPRISES: &str = "/v1/enterprises";
pub const ENTERPRISE: &str = "/v1/enterprises/{id}";
pub const ACCOUNTS: &str = "/v1/accounts";
pub const ACCOUNT: &str = "/v1/accounts/{id}";
pub const USERS: &str = "/v1/users";
pub const USER: &str = "/v1/users/{id}";
pub const USER_TOTP: &str = "/v1/users/{id}/totp";
pub const USER_TOTP_CONFIRM: &str = "/v1/users/{id}/totp/confirm";
pub const SERVICE_ACCOUNTS: &str = "/v1/service_accounts";
pub const SERVICE_ACCOUNT: &str = "/v1/service_accounts/{id}";
pub const API_KEYS: &str = "/v1/api_keys";
pub const API_KEY: &str = "/v1/api_keys/{id}";
pub const CLIENTS: &str = "/v1/clients";
pub const CLIENT: &str = "/v1/clients/{id}";
pub const AUTHORIZED_KEYS: &str = "/v1/authorized_keys";
pub const AUTHORIZED_KEY: &str = "/v1/authorized_keys/{id}";
pub const OAUTH_TOKENS: &str = "/v1/oauth_tokens";
pub const OAUTH_TOKEN: &str = "/v1/oauth_tokens/{id}";
pub const ACCESS_BINDINGS: &str = "/v1/access_bindings";
pub const ACCESS_BINDING: &str = "/v1/access_bindings/{id}";
pub const TRUSTED_PROFILES: &str = "/v1/trusted_profiles";
pub const TRUSTED_PROFILE: &str = "/v1/trusted_profiles/{id}";
pub const TRUSTED_ISSUERS: &str = "/v1/trusted_issuers";
pub const TRUSTED_ISSUER: &str = "/v1/trusted_issuers/{id}";
pub const AUTHORIZATION_POLICIES: &str = "/v1/authorization_policies";
pub const AUTHORIZATION_POLICY: &str = "/v1/authorization_policies/{id}";
pub const SIGNING_KEYS: &str = "/v1/signing_keys";
pub const SIGNING_KEYS_ROTATE: &str = "/v1/signing_keys/rotate";
pub const TOKEN_CUTOFFS: &str = "/v1/token_cutoffs";
pub const ID_TOKENS: &str = "/v1/id_tokens";

// The token surfaces a resource service or script calls.
pub const IBM_TOKEN: &str = "/identity/token";
pub const IBM_KEYS: &str = "/identity/keys";
pub const JWKS: &str = "/.well-known/jwks.json";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";
pub const INTROSPECT: &str = "/identity/introspect";
pub const REVOKE: &str = "/identity/revoke";
pub const YANDEX_TOKENS: &str = "/iam/v1/tokens";
pub const YANDEX_TOKENS_FOR_SERVICE_ACCOUNT: &str = "/iam/v1/tokens:createForServiceAccount";
pub const YANDEX_TOKENS_REVOKE: &str = "/iam/v1/tokens:revoke";
pub const YANDEX_SERVICE_ACCOUNT: &str = "/iam/v1/serviceAccounts/{id}";
pub const IBM_DISCOVERY: &str = "/identity/.well-known/openid-configuration";

// Operations.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
