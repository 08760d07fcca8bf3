//! `POST /identity/token`: form parsing, client authentication and the grants.
//!
//! The handler reads the body (bounded), authenticates the client if Basic credentials are
//! present, dispatches on `grant_type`, and renders either the IBM token response or the IBM
//! error shape. Every grant reads the snapshot only; none writes.

use super::grant::{
    gate, GrantRequest, TokenForm, GRANT_APIKEY, GRANT_ASSUME, GRANT_CR_TOKEN,
    GRANT_DELEGATED_REFRESH, GRANT_IAM_AUTHZ, GRANT_PASSWORD, GRANT_REFRESH,
};
use super::{IbmError, TOKEN_PATH};
use crate::http::{basic_credentials, is_form, read_body, BodyError, RequestContext};
use crate::security_log;
use crate::state::AppState;
use crate::throttle::{Attempt, Kind};
use crate::tokens::IssuedTokens;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_core::authn;
use tessera_core::error::{Error, ErrorKind};
use tessera_core::json::ObjectWriter;
use tessera_core::limits::{self, MAX_BODY};
use tessera_core::model::{OAuthClient, DEFAULT_CLIENT_ID};
use tessera_core::principal::Principal;
use tessera_core::secret::SecretPurpose;
use tessera_core::token::normalize_scope;

const TENANT_HEADER: &str = "ibm-cloud-tenant";

pub async fn ibm_token_post(
    State(state): State<AppState>,
    Extension(ctx): Extension<RequestContext>,
    request: Request,
) -> Response {
    // The request's parts by reference: the `HeaderMap` and `Uri` extractors would copy them.
    let (parts, body) = request.into_parts();
    let (headers, uri) = (&parts.headers, &parts.uri);
    match token(&state, &ctx, headers, body).await {
        Ok(mut response) => {
            // The SDKs copy this header into their logs and exceptions; send it on success too.
            if let Ok(id) = axum::http::HeaderValue::from_str(&ctx.id) {
                response.headers_mut().insert("x-global-transaction-id", id);
            }
            response
        }
        Err(error) => error.render(&ctx, headers, uri, "Token"),
    }
}

/// Any method but POST on the token endpoint: 405 in the IBM error shape.
pub async fn ibm_token_other_method(
    Extension(ctx): Extension<RequestContext>,
    method: axum::http::Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let error = IbmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "BXNIM0405E",
        format!("Method {method} is not allowed on {TOKEN_PATH}; use POST."),
    );
    let mut response = error.render(&ctx, &headers, &uri, "Token");
    response
        .headers_mut()
        .insert(header::ALLOW, axum::http::HeaderValue::from_static("POST"));
    response
}

async fn token(
    state: &AppState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IbmError> {
    let peer = ctx.peer;
    let bytes = read_body(body, MAX_BODY).await.map_err(|e| match e {
        BodyError::TooLarge(limit) => IbmError::too_large(limit),
        BodyError::Unreadable => IbmError::invalid("The request body could not be read."),
    })?;
    if !is_form(headers) {
        return Err(IbmError::invalid(
            "Content-Type must be application/x-www-form-urlencoded.",
        ));
    }
    let form = super::form::parse(&bytes).map_err(|e| IbmError::invalid(e.to_string()))?;
    let now = state.clock.now();
    // Brute-force throttling of the Basic client secret and the API key, each per (credential,
    // source) (the password grant adds its user and TOTP attempts itself). While nothing has
    // failed lately the throttle is idle and the token path skips it: no extra hash, no lock.
    let idle = state.throttle.is_idle();
    let attempts = || throttle_attempts(state, headers, &form, peer);
    let (client_attempt, apikey_attempt) = if idle {
        (None, None)
    } else {
        let (client_attempt, apikey_attempt) = attempts();
        let all: Vec<Attempt> = [client_attempt.clone(), apikey_attempt.clone()]
            .into_iter()
            .flatten()
            .collect();
        gate(state, &all).await?;
        (client_attempt, apikey_attempt)
    };
    let client = match authenticate_client(state, headers) {
        Ok(client) => {
            if let (Some(attempt), Some(_)) = (client_attempt, &client) {
                state.throttle.success(&[attempt]);
            }
            client
        }
        Err(error) => {
            if let (Some(attempt), _) = attempts() {
                state.throttle.failure(&[attempt]);
            }
            refused(
                ctx,
                "client_secret_basic",
                basic_client_id(headers).as_deref(),
                &error,
            );
            return Err(error);
        }
    };
    let tenant = match headers.get(TENANT_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| IbmError::invalid("IBM-Cloud-Tenant header is not valid text."))?,
        ),
    };
    let grant_type =
        limits::required("grant_type", form.grant_type.as_deref(), 256).map_err(IbmError::from)?;
    let request = GrantRequest {
        state,
        form: &form,
        client: client.as_deref(),
        tenant,
        now,
    };
    let result = match grant_type {
        GRANT_APIKEY => {
            // The API-key grant renders its own answer (a DRT-only answer has no access token).
            let result = apikey_grant(&request);
            match &result {
                Ok(_) => {
                    if let Some(attempt) = apikey_attempt {
                        state.throttle.success(&[attempt]);
                    }
                }
                Err(error) if error.code == UNKNOWN_API_KEY => {
                    if let (_, Some(attempt)) = attempts() {
                        state.throttle.failure(&[attempt]);
                    }
                }
                Err(_) => {}
            }
            result
        }
        GRANT_REFRESH => refresh_grant(&request).map(|issued| render(&issued)),
        GRANT_PASSWORD => super::password::password_grant(&request, peer)
            .await
            .map(|issued| render(&issued)),
        GRANT_ASSUME => super::assume::assume_grant(&request).map(|issued| render(&issued)),
        GRANT_CR_TOKEN => super::cr_token::cr_token_grant(&request).map(|issued| render(&issued)),
        GRANT_IAM_AUTHZ => super::authz::iam_authz_grant(&request).map(|issued| render(&issued)),
        GRANT_DELEGATED_REFRESH => {
            super::delegated::delegated_refresh_grant(&request).map(|issued| render(&issued))
        }
        other => Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "grant_type {:?} is not supported; supported: {}.",
                truncate(other),
                super::grant::GRANTS.join(", ")
            ),
        )
        .into()),
    };
    if let Err(error) = &result {
        // The user name a password grant claimed: who tried, never the password.
        let claimed = match grant_type {
            GRANT_PASSWORD => form.username.as_deref().map(truncate),
            _ => None,
        };
        refused(ctx, truncate(grant_type), claimed, error);
    }
    result
}

/// A refused sign-in as a security event: a client's mistake or a guess (4xx), not a throttled
/// attempt (counted when the lock began) nor a failure of the server's own.
fn refused(ctx: &RequestContext, method: &str, claimed: Option<&str>, error: &IbmError) {
    if error.status.is_client_error() && error.status != StatusCode::TOO_MANY_REQUESTS {
        security_log::sign_in_refused(ctx, "ibm", method, claimed, &error.message);
    }
}

/// The client id of Basic credentials, for the log of a refused client secret.
fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    match basic_credentials(headers) {
        Ok(Some((id, _))) => Some(truncate(&id).to_owned()),
        _ => None,
    }
}

/// The throttled secret checks of a request: its Basic client secret and its API key (by keyed
/// hash; never the key itself), each from the request's source address.
fn throttle_attempts(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
    peer: Option<IpAddr>,
) -> (Option<Attempt>, Option<Attempt>) {
    let client = match basic_credentials(headers) {
        Ok(Some((id, _))) => Some(Attempt::new(Kind::Client, id, peer)),
        _ => None,
    };
    let apikey = match (form.grant_type.as_deref(), form.apikey.as_deref()) {
        (Some(GRANT_APIKEY), Some(apikey)) => apikey_attempt(state, apikey, peer),
        _ => None,
    };
    (client, apikey)
}

/// The throttle's attempt of an API key from `peer`: by keyed hash, never the key itself.
fn apikey_attempt(state: &AppState, apikey: &str, peer: Option<IpAddr>) -> Option<Attempt> {
    if apikey.len() > limits::MAX_API_KEY {
        return None;
    }
    let hash = state.pepper.hash(SecretPurpose::ApiKey, apikey.trim());
    Some(Attempt::new(
        Kind::ApiKey,
        tessera_core::ids::hex(&hash.0),
        peer,
    ))
}

/// Authenticates an API key as the API-key grant does, throttled the same way (an unknown key
/// counts as a failed guess from `peer`): the admin console's sign-in with an API key.
pub async fn apikey_sign_in(
    state: &AppState,
    apikey: &str,
    peer: Option<IpAddr>,
) -> Result<Principal, IbmError> {
    let attempt: Vec<Attempt> = apikey_attempt(state, apikey, peer).into_iter().collect();
    gate(state, &attempt).await?;
    let result = {
        let dir = state.snapshot.directory();
        authn::authenticate_api_key(&dir, &state.pepper, apikey).map_err(IbmError::from)
    };
    match &result {
        Ok(_) => state.throttle.success(&attempt),
        Err(error) if error.code == UNKNOWN_API_KEY => state.throttle.failure(&attempt),
        Err(_) => {}
    }
    result
}

/// The IBM code of an unknown API key (counted as a failed guess).
const UNKNOWN_API_KEY: &str = "BXNIM0415E";

fn truncate(value: &str) -> &str {
    limits::clipped(value, 64)
}

/// Authenticates Basic client credentials when present. A public request uses `default`.
fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<OAuthClient>>, IbmError> {
    match basic_credentials(headers) {
        Ok(None) => Ok(None),
        Ok(Some((id, secret))) => {
            let dir = state.snapshot.directory();
            Ok(Some(authn::authenticate_client(
                &dir,
                &state.pepper,
                &id,
                &secret,
            )?))
        }
        Err(message) => Err(IbmError::invalid_client(message)),
    }
}

fn apikey_grant(request: &GrantRequest<'_>) -> Result<Response, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    let response_type = super::delegated::ResponseType::parse(form.response_type.as_deref())?;
    let apikey = limits::required("apikey", form.apikey.as_deref(), limits::MAX_API_KEY)?;
    let scope = normalize_scope(form.scope.as_deref())?;
    let delegation = if response_type.delegated {
        Some(super::delegated::DelegationParams::parse(
            form,
            request.client,
        )?)
    } else {
        super::delegated::refuse_stray_parameters(form)?;
        None
    };
    let principal = {
        let dir = state.snapshot.directory();
        let principal = authn::authenticate_api_key(&dir, &state.pepper, apikey)?;
        authn::check_tenant(&dir, principal.account_id(), request.tenant)?;
        principal
    };
    let issue = request.issue(&scope, GRANT_APIKEY, true);
    match delegation {
        None => Ok(render(&state.issue_ibm(&principal, &issue)?)),
        Some(params) => {
            let resolved = params.resolve(state, principal.account_id())?;
            let delegation = resolved.delegation();
            if response_type.cloud_iam {
                let options = crate::tokens::IssueOptions {
                    lifetime: None,
                    delegated: Some(delegation),
                };
                Ok(render(&state.issue_ibm_with(&principal, &issue, &options)?))
            } else {
                let (token, exp) =
                    state.issue_delegated_refresh_token(&principal, &issue, &delegation)?;
                Ok(super::delegated::render_delegated_only(
                    &token,
                    exp,
                    request.now,
                    &scope,
                ))
            }
        }
    }
}

fn refresh_grant(request: &GrantRequest<'_>) -> Result<IssuedTokens, IbmError> {
    let GrantRequest { state, form, .. } = *request;
    // IBM refuses refresh without client authentication: tokens of the public default client
    // cannot be refreshed.
    let client = request.client.ok_or_else(IbmError::missing_client_auth)?;
    let presented = limits::required(
        "refresh_token",
        form.refresh_token.as_deref(),
        tessera_core::refresh::MAX_REFRESH_TOKEN,
    )?;
    let (principal, grant) = state.redeem_refresh_token(presented, &client.key, request.now)?;
    {
        let dir = state.snapshot.directory();
        authn::check_tenant(&dir, principal.account_id(), request.tenant)?;
    }
    let scope = match form.scope.as_deref() {
        Some(requested) => normalize_scope(Some(requested))?,
        None => grant.scope.clone(),
    };
    debug_assert_ne!(client.id, DEFAULT_CLIENT_ID);
    // A receiver redeeming a delegated refresh token gets an access token only: the
    // delegated token itself stays its refresh credential.
    let issue = request.issue(&scope, GRANT_REFRESH, !grant.is_delegated());
    Ok(state.issue_ibm(&principal, &issue)?)
}

pub(super) fn render(issued: &IssuedTokens) -> Response {
    let claims = &issued.access.claims;
    // `tessera_api::token::IbmTokenResponse`'s members, written straight into the answer: the
    // tokens need no escaping scan (`tessera_core::json`).
    let capacity = issued.access.token.len()
        + issued.refresh_token.as_ref().map_or(0, String::len)
        + issued
            .delegated_refresh_token
            .as_ref()
            .map_or(0, String::len)
        + claims.scope.len()
        + 160;
    let json = ObjectWriter::with_capacity(capacity)
        .string("access_token", &issued.access.token)
        .optional_string("refresh_token", issued.refresh_token.as_deref())
        .optional_string(
            "delegated_refresh_token",
            issued.delegated_refresh_token.as_deref(),
        )
        .string("token_type", "Bearer")
        .number("expires_in", claims.exp - claims.iat)
        .number("expiration", claims.exp)
        .string("scope", &claims.scope)
        .finish();
    // Static header values: `&str` values would be validated and copied on every answer.
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::PRAGMA, HeaderValue::from_static("no-cache")),
        ],
        json,
    )
        .into_response()
}
