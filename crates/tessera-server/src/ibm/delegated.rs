//! Delegated refresh tokens: issuing them with the API-key grant and consuming them.
//!
//! A delegated refresh token (DRT) is a sealed [`RefreshGrant`] whose `receivers` list the
//! OAuth clients that may redeem it; like every refresh token it costs no write. A listed
//! receiver, authenticating with Basic, exchanges it for an access token whose `client_id` is
//! the receiver, with the `delegated-refresh-token` grant or the plain `refresh_token` grant.
//! The exchange gives no refresh token: the DRT stays the receiver's refresh credential until
//! it expires or is revoked.
//!
//! [`RefreshGrant`]: tessera_core::refresh::RefreshGrant

use super::grant::{GrantRequest, TokenForm, GRANT_DELEGATED_REFRESH};
use super::IbmError;
use crate::state::AppState;
use crate::tokens::{Delegation, IssuedTokens};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tessera_core::authn;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::limits;
use tessera_core::model::{OAuthClient, DEFAULT_CLIENT_ID};
use tessera_core::token::normalize_scope;

/// Default lifetime of a delegated refresh token: 6 days, as IBM's.
pub const DEFAULT_DRT_EXPIRY: i64 = 518_400;
/// Bounds of `delegated_refresh_token_expiry`, in seconds (1 minute to 30 days).
pub const MIN_DRT_EXPIRY: i64 = 60;
pub const MAX_DRT_EXPIRY: i64 = 2_592_000;
/// Most receiver clients one DRT may name.
pub const MAX_RECEIVERS: usize = 16;

/// What `response_type` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResponseType {
    pub cloud_iam: bool,
    pub delegated: bool,
}

impl ResponseType {
    /// `cloud_iam` (the default, and what the SDKs send), `delegated_refresh_token`, or both
    /// separated by spaces in either order.
    pub fn parse(value: Option<&str>) -> Result<Self, IbmError> {
        let value = value.map(str::trim).unwrap_or("");
        if value.is_empty() {
            return Ok(ResponseType {
                cloud_iam: true,
                delegated: false,
            });
        }
        let mut parsed = ResponseType {
            cloud_iam: false,
            delegated: false,
        };
        for word in value.split_whitespace() {
            match word {
                "cloud_iam" => parsed.cloud_iam = true,
                "delegated_refresh_token" => parsed.delegated = true,
                _ => {
                    return Err(IbmError::invalid(
                        "response_type must be cloud_iam, delegated_refresh_token, or \
                         cloud_iam delegated_refresh_token.",
                    ))
                }
            }
        }
        Ok(parsed)
    }
}

/// The validated DRT parameters of an API-key grant request. Receivers are client ids here;
/// [`DelegationParams::resolve`] turns them into the clients they name as seen from the
/// token subject's account (its own client of that id, else a global one).
pub(super) struct DelegationParams {
    receivers: Vec<String>,
    lifetime: i64,
}

/// Receivers resolved to client store keys.
pub(super) struct ResolvedDelegation {
    receiver_keys: Vec<String>,
    lifetime: i64,
}

impl DelegationParams {
    /// Validates `receiver_client_ids` (required; ids other than `default` and the requesting
    /// client) and `delegated_refresh_token_expiry`. Whether the clients exist is
    /// [`DelegationParams::resolve`]'s question, asked once the API key has named the account:
    /// answering it here, before authentication, would tell anyone which client ids exist in
    /// any account.
    pub fn parse(form: &TokenForm, requesting: Option<&OAuthClient>) -> Result<Self, IbmError> {
        let requesting_client = authn::client_id_or_default(requesting);
        let csv = form
            .receiver_client_ids
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                IbmError::invalid(
                    "receiver_client_ids is required with response_type delegated_refresh_token: \
                     a comma-separated list of the OAuth client ids that may redeem the token.",
                )
            })?;
        let csv = limits::bounded("receiver_client_ids", csv, 4096)?;
        let mut receivers: Vec<String> = Vec::new();
        for id in csv.split(',').map(str::trim) {
            if id.is_empty() {
                return Err(IbmError::invalid(
                    "receiver_client_ids contains an empty client id.",
                ));
            }
            let id = limits::bounded("receiver_client_ids", id, limits::MAX_CLIENT_ID)?;
            if id == DEFAULT_CLIENT_ID {
                return Err(IbmError::invalid(
                    "receiver_client_ids must not include the public default client: a \
                     receiver has to authenticate with its secret to redeem the token.",
                ));
            }
            if id == requesting_client {
                return Err(IbmError::invalid(format!(
                    "receiver_client_ids must not include the requesting client {id}: a \
                     delegated refresh token is for other clients."
                )));
            }
            if !receivers.iter().any(|r| r == id) {
                receivers.push(id.to_owned());
            }
        }
        if receivers.len() > MAX_RECEIVERS {
            return Err(IbmError::invalid(format!(
                "receiver_client_ids lists {} clients; at most {MAX_RECEIVERS} are allowed.",
                receivers.len()
            )));
        }
        let lifetime = match form
            .delegated_refresh_token_expiry
            .as_deref()
            .map(str::trim)
        {
            None | Some("") => DEFAULT_DRT_EXPIRY,
            Some(text) => {
                let seconds: i64 = text.parse().map_err(|_| {
                    IbmError::invalid(
                        "delegated_refresh_token_expiry must be a whole number of seconds.",
                    )
                })?;
                if !(MIN_DRT_EXPIRY..=MAX_DRT_EXPIRY).contains(&seconds) {
                    return Err(IbmError::invalid(format!(
                        "delegated_refresh_token_expiry must be between {MIN_DRT_EXPIRY} and \
                         {MAX_DRT_EXPIRY} seconds."
                    )));
                }
                seconds
            }
        };
        Ok(DelegationParams {
            receivers,
            lifetime,
        })
    }

    /// The receiver clients as seen from `account_id`, the token subject's account: its own
    /// client of each id, else a global one. Another account's client of the same id is never
    /// a receiver.
    pub fn resolve(
        &self,
        state: &AppState,
        account_id: &str,
    ) -> Result<ResolvedDelegation, IbmError> {
        let dir = state.snapshot.directory();
        let mut receiver_keys = Vec::with_capacity(self.receivers.len());
        for id in &self.receivers {
            let client = dir.client_visible_from(account_id, id).ok_or_else(|| {
                IbmError::invalid(format!(
                    "receiver_client_ids names client {id}, which does not exist in account \
                     {account_id} or the installation."
                ))
            })?;
            receiver_keys.push(client.key.clone());
        }
        Ok(ResolvedDelegation {
            receiver_keys,
            lifetime: self.lifetime,
        })
    }
}

impl ResolvedDelegation {
    pub fn delegation(&self) -> Delegation<'_> {
        Delegation {
            receivers: &self.receiver_keys,
            lifetime: self.lifetime,
        }
    }
}

/// The DRT parameters make no sense without `response_type=…delegated_refresh_token`; say so
/// rather than silently ignoring them.
pub(super) fn refuse_stray_parameters(form: &TokenForm) -> Result<(), IbmError> {
    for (name, value) in [
        ("receiver_client_ids", &form.receiver_client_ids),
        (
            "delegated_refresh_token_expiry",
            &form.delegated_refresh_token_expiry,
        ),
    ] {
        if value.is_some() {
            return Err(IbmError::invalid(format!(
                "{name} is only used with response_type delegated_refresh_token (or cloud_iam \
                 delegated_refresh_token)."
            )));
        }
    }
    Ok(())
}

/// The response to `response_type=delegated_refresh_token`: the DRT, its lifetime and expiry,
/// no access or refresh token.
pub(super) fn render_delegated_only(token: &str, exp: i64, now: i64, scope: &str) -> Response {
    let body = serde_json::json!({
        "delegated_refresh_token": token,
        "token_type": "Bearer",
        "expires_in": exp - now,
        "expiration": exp,
        "scope": scope,
    });
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// `urn:ibm:params:oauth:grant-type:delegated-refresh-token`: a listed receiver, with Basic,
/// exchanges the DRT (in `refresh_token` or `delegated_refresh_token`) for an access token.
pub(super) fn delegated_refresh_grant(
    request: &GrantRequest<'_>,
) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    let client = request.client.ok_or_else(IbmError::missing_client_auth)?;
    let presented = match (&form.refresh_token, &form.delegated_refresh_token) {
        (Some(_), Some(_)) => {
            return Err(IbmError::invalid(
                "Give the delegated refresh token once, in refresh_token or in \
                 delegated_refresh_token, not both.",
            ))
        }
        (Some(token), None) | (None, Some(token)) => token.as_str(),
        (None, None) => {
            return Err(IbmError::invalid(
                "refresh_token (the delegated refresh token) is required.",
            ))
        }
    };
    let presented = limits::required(
        "refresh_token",
        Some(presented),
        tessera_core::refresh::MAX_REFRESH_TOKEN,
    )?;
    let (principal, grant) = state.redeem_refresh_token(presented, &client.key, request.now)?;
    if !grant.is_delegated() {
        return Err(Error::new(
            ErrorKind::InvalidCredential,
            "This is an ordinary refresh token, not a delegated refresh token; redeem it with \
             grant_type refresh_token.",
        )
        .into());
    }
    {
        let dir = state.snapshot.directory();
        authn::check_tenant(&dir, principal.account_id(), request.tenant)?;
    }
    let scope = match form.scope.as_deref() {
        Some(requested) => normalize_scope(Some(requested))?,
        None => grant.scope.clone(),
    };
    let issue = request.issue(&scope, GRANT_DELEGATED_REFRESH, false);
    Ok(state.issue_ibm(&principal, &issue)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types() {
        let both = ResponseType {
            cloud_iam: true,
            delegated: true,
        };
        assert_eq!(
            ResponseType::parse(None).unwrap(),
            ResponseType {
                cloud_iam: true,
                delegated: false
            }
        );
        assert_eq!(
            ResponseType::parse(Some("cloud_iam delegated_refresh_token")).unwrap(),
            both
        );
        assert_eq!(
            ResponseType::parse(Some(" delegated_refresh_token  cloud_iam")).unwrap(),
            both
        );
        assert_eq!(
            ResponseType::parse(Some("delegated_refresh_token")).unwrap(),
            ResponseType {
                cloud_iam: false,
                delegated: true
            }
        );
        assert!(ResponseType::parse(Some("code")).is_err());
        assert!(ResponseType::parse(Some("cloud_iam token")).is_err());
    }
}
