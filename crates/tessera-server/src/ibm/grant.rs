//! What every grant of `POST /identity/token` works from: the grant type names, the parsed and
//! client-authenticated request, and the throttle gate. A leaf: `token` dispatches to the grant
//! modules, and they import this, not `token`.

pub use super::form::TokenForm;
use super::IbmError;
use crate::state::AppState;
use crate::throttle::Attempt;
use crate::tokens::IssueRequest;
use tessera_core::model::OAuthClient;

pub const GRANT_APIKEY: &str = "urn:ibm:params:oauth:grant-type:apikey";
pub const GRANT_REFRESH: &str = "refresh_token";
pub const GRANT_PASSWORD: &str = "password";
pub const GRANT_ASSUME: &str = "urn:ibm:params:oauth:grant-type:assume";
pub const GRANT_CR_TOKEN: &str = "urn:ibm:params:oauth:grant-type:cr-token";
pub const GRANT_IAM_AUTHZ: &str = "urn:ibm:params:oauth:grant-type:iam-authz";
pub const GRANT_DELEGATED_REFRESH: &str = "urn:ibm:params:oauth:grant-type:delegated-refresh-token";

/// Every grant type the token endpoint accepts, as the discovery document and the
/// unsupported-grant message list them.
pub const GRANTS: [&str; 7] = [
    GRANT_APIKEY,
    GRANT_REFRESH,
    GRANT_PASSWORD,
    GRANT_ASSUME,
    GRANT_CR_TOKEN,
    GRANT_IAM_AUTHZ,
    GRANT_DELEGATED_REFRESH,
];

/// Every `response_type` the token endpoint accepts.
pub const RESPONSE_TYPES: [&str; 3] = [
    "cloud_iam",
    "delegated_refresh_token",
    "cloud_iam delegated_refresh_token",
];

/// One token request, parsed and with its client authenticated: what every grant works from.
pub struct GrantRequest<'a> {
    pub state: &'a AppState,
    pub form: &'a TokenForm,
    /// The client that authenticated with Basic, if any.
    pub client: Option<&'a OAuthClient>,
    /// The `IBM-Cloud-Tenant` header, if sent.
    pub tenant: Option<&'a str>,
    pub now: i64,
}

impl<'a> GrantRequest<'a> {
    /// What the issuer is asked for on this request: tokens for its client at its time, with
    /// the grant's `scope` and `grant_type`, and a refresh token or not.
    pub fn issue<'s>(
        &self,
        scope: &'s str,
        grant_type: &'s str,
        with_refresh_token: bool,
    ) -> IssueRequest<'s>
    where
        'a: 's,
    {
        IssueRequest {
            client: self.client,
            scope,
            grant_type,
            with_refresh_token,
            now: self.now,
        }
    }
}

/// Waits out the throttle's delay for `attempts`, or refuses with 429 while any is locked.
pub async fn gate(state: &AppState, attempts: &[Attempt]) -> Result<(), IbmError> {
    state
        .throttle
        .gate(attempts)
        .await
        .map_err(|locked| IbmError::throttled(locked.retry_after))
}
