//! The rules of the Yandex token calls, once for both transports: what each accepts, who may
//! call it, what it returns. Inputs arrive already decoded; `now` and the request id come in.

use super::errors::YandexError;
use crate::state::AppState;
use std::sync::Arc;
use tessera_core::authn;
use tessera_core::authz;
use tessera_core::directory::Directory;
use tessera_core::iam_token::MintedIamToken;
use tessera_core::limits;
use tessera_core::limits::MAX_IAM_TOKEN;
use tessera_core::model::{Resource, Role, ServiceAccount};
use tessera_core::presented::PresentedToken;
use tessera_core::principal::AuthnMethod;
use tessera_core::service_account_jwt;

/// Longest service account id (the Yandex limit).
pub const MAX_SERVICE_ACCOUNT_ID: usize = 50;

/// The credential `Create` exchanges: exactly one of the `identity` oneof.
pub enum Identity<'a> {
    Jwt(&'a str),
    OAuthToken(&'a str),
}

impl<'a> Identity<'a> {
    /// Picks the one identity given; both or neither is an argument error.
    pub fn exactly_one(
        oauth_token: Option<&'a str>,
        jwt: Option<&'a str>,
    ) -> Result<Identity<'a>, YandexError> {
        match (oauth_token, jwt) {
            (Some(token), None) => Ok(Identity::OAuthToken(token)),
            (None, Some(jwt)) => Ok(Identity::Jwt(jwt)),
            (Some(_), Some(_)) => Err(YandexError::invalid(
                "identity: give exactly one of jwt and yandex_passport_oauth_token, not both",
            )),
            (None, None) => Err(YandexError::invalid(
                "identity: one of jwt or yandex_passport_oauth_token is required",
            )),
        }
    }
}

/// `Create`: a service-account JWT or a user's OAuth token in, an IAM token out.
pub fn create(
    state: &AppState,
    identity: Identity<'_>,
    now: i64,
) -> Result<MintedIamToken, YandexError> {
    state.check_fresh(now)?;
    let dir = state.snapshot.directory();
    let (principal, grant) = match identity {
        Identity::Jwt(jwt) => {
            let jwt = required("jwt", jwt, service_account_jwt::MAX_JWT)?;
            let principal = service_account_jwt::verify(jwt, &dir, &state.yandex.audiences, now)?;
            (principal, "yandex_jwt")
        }
        Identity::OAuthToken(token) => {
            let token = required("yandex_passport_oauth_token", token, authn::MAX_OAUTH_TOKEN)?;
            let principal = authn::authenticate_oauth_token(&dir, &state.pepper, token)?;
            (principal, "yandex_oauth")
        }
    };
    drop(dir);
    Ok(state.issue_iam_token(&principal, grant, now)?)
}

/// `CreateForServiceAccount`: the caller needs `iam.serviceAccounts.tokenCreator` on the
/// service account or its account.
pub fn create_for_service_account(
    state: &AppState,
    bearer: Option<&str>,
    service_account_id: &str,
    now: i64,
) -> Result<MintedIamToken, YandexError> {
    let service_account_id = required(
        "service_account_id",
        service_account_id,
        MAX_SERVICE_ACCOUNT_ID,
    )?;
    let caller = authenticate(state, bearer, now)?;
    let dir = state.snapshot.directory();
    let service_account = service_account_for(
        &dir,
        &caller,
        service_account_id,
        Role::TokenCreator,
        |_| false,
    )?;
    let principal =
        authn::principal_for(&dir, &service_account.iam_id(), AuthnMethod::AccessToken)?;
    drop(dir);
    tracing::debug!(
        caller = caller.iam_id(),
        service_account_id,
        "token for service account"
    );
    Ok(state.issue_iam_token(&principal, "yandex_for_service_account", now)?)
}

/// `Revoke`: any authenticated caller may revoke a token it holds. Returns the subject id.
pub async fn revoke(
    state: &AppState,
    bearer: Option<&str>,
    iam_token: &str,
    now: i64,
    request_id: &str,
) -> Result<String, YandexError> {
    let iam_token = required("iam_token", iam_token, MAX_IAM_TOKEN)?;
    let caller = authenticate(state, bearer, now)?;
    let token = state
        .verify_access_token(iam_token, now)
        .map_err(|e| match e.kind() {
            tessera_core::ErrorKind::Unavailable => YandexError::from(e),
            _ => YandexError::invalid(format!("iam_token cannot be revoked: {}", e.message())),
        })?;
    state
        .record_revocation(
            token.jti().to_owned(),
            token.exp(),
            token.iam_id(),
            caller.iam_id(),
            now,
            request_id,
        )
        .await?;
    Ok(token.subject_id().to_owned())
}

/// `ServiceAccountService/Get`: the service account itself, or a caller with `viewer` on it or
/// its account, may read it.
pub fn get_service_account(
    state: &AppState,
    bearer: Option<&str>,
    service_account_id: &str,
    now: i64,
) -> Result<ServiceAccount, YandexError> {
    let service_account_id = required(
        "service_account_id",
        service_account_id,
        MAX_SERVICE_ACCOUNT_ID,
    )?;
    let caller = authenticate(state, bearer, now)?;
    let dir = state.snapshot.directory();
    let service_account =
        service_account_for(&dir, &caller, service_account_id, Role::Viewer, |sa| {
            sa.iam_id() == caller.iam_id()
        })?;
    Ok(service_account.as_ref().clone())
}

/// The service account `id` if the caller holds `role` on it (or `is_self` says the caller is
/// it). Refusals do not tell whether it exists, except to a caller who may see every account.
fn service_account_for<'d>(
    dir: &'d Directory,
    caller: &PresentedToken,
    id: &str,
    role: Role,
    is_self: impl Fn(&ServiceAccount) -> bool,
) -> Result<&'d Arc<ServiceAccount>, YandexError> {
    let resource = Resource::ServiceAccount(id.to_owned());
    match dir.service_account(id) {
        Some(sa) if is_self(sa) || authz::has_role(dir, caller.iam_id(), role, &resource) => Ok(sa),
        None if authz::has_role(dir, caller.iam_id(), Role::Viewer, &Resource::Global) => {
            Err(YandexError::new(
                tonic::Code::NotFound,
                format!("service account {id} not found"),
            ))
        }
        _ => Err(YandexError::new(
            tonic::Code::PermissionDenied,
            format!(
                "{} does not hold {} on service account {id}",
                caller.iam_id(),
                role.as_str()
            ),
        )),
    }
}

/// The endpoints discovery advertises: every id points at this server.
pub fn endpoints(state: &AppState) -> Vec<(&'static str, String)> {
    ENDPOINT_IDS
        .iter()
        .map(|id| (*id, state.yandex.advertised_address.clone()))
        .collect()
}

/// Endpoint ids served here: IAM (tokens) and endpoint (discovery itself).
pub const ENDPOINT_IDS: &[&str] = &["iam", "endpoint"];

/// Verifies the caller's bearer token (either format).
fn authenticate(
    state: &AppState,
    bearer: Option<&str>,
    now: i64,
) -> Result<PresentedToken, YandexError> {
    let token = bearer.ok_or_else(|| {
        YandexError::unauthenticated(
            "this call needs the caller's IAM token: authorization: Bearer <token>",
        )
    })?;
    state
        .verify_access_token(token, now)
        .map_err(|e| match e.kind() {
            tessera_core::ErrorKind::Unavailable => YandexError::from(e),
            _ => YandexError::unauthenticated(format!("caller token rejected: {}", e.message())),
        })
}

/// A required, bounded string field: empty counts as missing.
fn required<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, YandexError> {
    if value.is_empty() {
        return Err(YandexError::invalid(format!("{field} is required")));
    }
    Ok(limits::bounded(field, value, max)?)
}
