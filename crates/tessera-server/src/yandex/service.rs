//! The rules of the Yandex token calls, once for both transports: what each accepts, who may
//! call it, what it returns. Inputs arrive already decoded; `now` and the request id come in.

use super::errors::YandexError;
use crate::http::RequestContext;
use crate::security_log;
use crate::state::AppState;
use crate::throttle::{Attempt, Kind};
use tessera_core::authn;
use tessera_core::authz::{self, Action};
use tessera_core::iam_token::MintedIamToken;
use tessera_core::limits;
use tessera_core::limits::MAX_IAM_TOKEN;
use tessera_core::model::ServiceAccount;
use tessera_core::principal::Principal;
use tessera_core::secret::SecretPurpose;
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

/// `Create`: a service-account JWT or a user's OAuth token in, an IAM token out. Both are
/// secret checks, throttled per (credential, source) like the IBM surface's: the OAuth token by
/// its keyed hash, the JWT by the authorized key it names.
pub async fn create(
    state: &AppState,
    identity: Identity<'_>,
    ctx: &RequestContext,
    now: i64,
) -> Result<MintedIamToken, YandexError> {
    state.check_fresh(now)?;
    let source = ctx.peer;
    let attempt = match identity {
        Identity::Jwt(jwt) => {
            let jwt = required("jwt", jwt, service_account_jwt::MAX_JWT)?;
            let kid = tessera_verify::decode_unverified(jwt)
                .ok()
                .and_then(|parts| parts.kid)
                .unwrap_or_default();
            Attempt::new(Kind::Jwt, kid, source)
        }
        Identity::OAuthToken(token) => {
            let token = required("yandex_passport_oauth_token", token, authn::MAX_OAUTH_TOKEN)?;
            let hash = state.pepper.hash(SecretPurpose::OAuthToken, token);
            Attempt::new(Kind::OAuthToken, tessera_core::ids::hex(&hash.0), source)
        }
    };
    let attempts = [attempt];
    let idle = state.throttle.is_idle();
    if !idle {
        state
            .throttle
            .gate(&attempts)
            .await
            .map_err(|locked| YandexError::throttled(locked.retry_after))?;
    }
    // Whether a failure was a guess of the secret (a forged or unknown JWT, an unknown OAuth
    // token) or the owner's own mistake with a valid secret (a JWT's clock or audience).
    let authenticated = {
        let dir = state.snapshot.directory();
        match identity {
            Identity::Jwt(jwt) => {
                authn::authenticate_service_account_jwt(&dir, jwt, &state.yandex.audiences, now)
                    .map(|p| (p, "yandex_jwt"))
                    .map_err(|refusal| (refusal.guess, refusal.error))
            }
            Identity::OAuthToken(token) => {
                authn::authenticate_oauth_token(&dir, &state.pepper, token)
                    .map(|p| (p, "yandex_oauth"))
                    .map_err(|e| (e.kind() == tessera_core::ErrorKind::InvalidCredential, e))
            }
        }
    };
    let (principal, grant) = match authenticated {
        Ok(found) => {
            if !idle {
                state.throttle.success(&attempts);
            }
            found
        }
        Err((guess, e)) => {
            if guess && e.kind() == tessera_core::ErrorKind::InvalidCredential {
                state.throttle.failure(&attempts);
            }
            let method = match identity {
                Identity::Jwt(_) => "jwt",
                Identity::OAuthToken(_) => "yandex_passport_oauth_token",
            };
            security_log::sign_in_refused(ctx, "yandex", method, None, e.message());
            return Err(e.into());
        }
    };
    Ok(state.issue_iam_token(&principal, grant, now)?)
}

/// `CreateForServiceAccount`: the core decides ([`authn::service_account_token`]): an explicit
/// `iam.serviceAccounts.tokenCreator` binding on the service account or its account, or
/// `admin` there under containment. The token descends from the caller's.
pub fn create_for_service_account(
    state: &AppState,
    ctx: &RequestContext,
    bearer: Option<&str>,
    service_account_id: &str,
    now: i64,
) -> Result<MintedIamToken, YandexError> {
    let service_account_id = required(
        "service_account_id",
        service_account_id,
        MAX_SERVICE_ACCOUNT_ID,
    )?;
    let caller = authenticate(state, ctx, bearer, now)?;
    let principal = {
        let dir = state.snapshot.directory();
        authn::service_account_token(&dir, &caller, service_account_id).inspect_err(|e| {
            denied(
                ctx,
                &caller,
                &format!("mint a token of service account {service_account_id}"),
                e,
            );
        })?
    };
    tracing::debug!(
        caller = caller.iam_id(),
        service_account_id,
        "token for service account"
    );
    Ok(state.issue_iam_token(&principal, "yandex_for_service_account", now)?)
}

/// `Revoke`: a caller may revoke its own tokens, tokens it derived (minted for a service
/// account, assumed), and tokens of identities whose account it administers and whose
/// privileges it holds ([`authz::Action::RevokeToken`], the IBM surface's ownership rule).
/// Returns the subject id.
pub async fn revoke(
    state: &AppState,
    bearer: Option<&str>,
    iam_token: &str,
    now: i64,
    ctx: &RequestContext,
) -> Result<String, YandexError> {
    let iam_token = required("iam_token", iam_token, MAX_IAM_TOKEN)?;
    let caller = authenticate(state, ctx, bearer, now)?;
    let token = state
        .verify_access_token(iam_token, now)
        .map_err(|e| match e.kind() {
            tessera_core::ErrorKind::Unavailable => YandexError::from(e),
            _ => YandexError::invalid(format!("iam_token cannot be revoked: {}", e.message())),
        })?;
    {
        let dir = state.snapshot.directory();
        authorize(
            &dir,
            ctx,
            &caller,
            &Action::RevokeToken {
                subject_iam_id: token.iam_id(),
                lineage: token.lineage(),
            },
        )?;
    }
    state
        .record_revocation(
            token.jti().to_owned(),
            token.exp(),
            token.iam_id(),
            caller.iam_id(),
            now,
            ctx,
        )
        .await?;
    Ok(token.subject_id().to_owned())
}

/// `ServiceAccountService/Get`: the service account itself, or a caller with `viewer` on it or
/// its account, may read it. Refusals do not tell whether it exists, except to a caller who may
/// see every account.
pub fn get_service_account(
    state: &AppState,
    ctx: &RequestContext,
    bearer: Option<&str>,
    service_account_id: &str,
    now: i64,
) -> Result<ServiceAccount, YandexError> {
    let service_account_id = required(
        "service_account_id",
        service_account_id,
        MAX_SERVICE_ACCOUNT_ID,
    )?;
    let caller = authenticate(state, ctx, bearer, now)?;
    let dir = state.snapshot.directory();
    let service_account = dir.service_account(service_account_id).cloned();
    authorize(
        &dir,
        ctx,
        &caller,
        &Action::ReadServiceAccount {
            service_account_id,
            service_account: service_account.as_deref(),
        },
    )?;
    service_account
        .map(|sa| sa.as_ref().clone())
        .ok_or_else(|| {
            YandexError::new(
                tonic::Code::NotFound,
                format!("service account {service_account_id} not found"),
            )
        })
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

/// Authenticates the caller by its bearer token (either format); a refused token is a security
/// event.
fn authenticate(
    state: &AppState,
    ctx: &RequestContext,
    bearer: Option<&str>,
    now: i64,
) -> Result<Principal, YandexError> {
    let token = bearer.ok_or_else(|| {
        YandexError::unauthenticated(
            "this call needs the caller's IAM token: authorization: Bearer <token>",
        )
    })?;
    state
        .authenticate_token(token, now)
        .map(|(principal, _)| principal)
        .map_err(|e| match e.kind() {
            tessera_core::ErrorKind::Unavailable => YandexError::from(e),
            _ => {
                security_log::sign_in_refused(ctx, "yandex", "bearer", None, e.message());
                YandexError::unauthenticated(format!("caller token rejected: {}", e.message()))
            }
        })
}

/// The core's decision on `action`; a refusal (not a global viewer's "not found") is logged.
fn authorize(
    dir: &tessera_core::directory::Directory,
    ctx: &RequestContext,
    caller: &Principal,
    action: &Action<'_>,
) -> Result<(), tessera_core::Error> {
    authz::authorize(dir, caller, action)
        .inspect_err(|e| denied(ctx, caller, &action.describe(), e))
}

fn denied(ctx: &RequestContext, caller: &Principal, action: &str, error: &tessera_core::Error) {
    if error.kind() != tessera_core::ErrorKind::NotFound {
        security_log::access_denied(ctx, caller.iam_id(), action, error.message());
    }
}

/// A required, bounded string field: empty counts as missing.
fn required<'a>(field: &str, value: &'a str, max: usize) -> Result<&'a str, YandexError> {
    if value.is_empty() {
        return Err(YandexError::invalid(format!("{field} is required")));
    }
    Ok(limits::bounded(field, value, max)?)
}
