//! Console sessions: a cookie holding a random session id, the time of the sign-in, a tag over
//! both and a short-lived IAM token of the signed-in principal; the CSRF token bound to the
//! session id; and the CSRF token of the sign-in form, before there is a session.
//!
//! The token is an ordinary access token (the IBM-surface JWT, lifetime [`SESSION_LIFETIME`])
//! minted for the principal that signed in, so the session is verified on every request exactly
//! as a presented token is (signature, expiry, revocation, lineage): deleting the API key it
//! came from, cutting off the identity, or revoking the token ends it at once. While in use it
//! is renewed (a fresh token with the same lineage) once it is [`RENEW_AFTER`] old, and the
//! token it replaces is revoked, so a copy of an earlier cookie stops working; an idle session
//! ends after [`SESSION_LIFETIME`]. However much it is used, a session ends
//! [`SESSION_MAX_AGE`] after the sign-in (the time is in the cookie under a keyed tag, so it
//! cannot be moved, and no token of the session is minted to outlive it). "Sign out" revokes
//! the current token.
//!
//! The CSRF token is the keyed hash (under the server pepper) of the session id: a page of the
//! session carries it in every form, nobody without the cookie can compute it, and it outlives
//! renewals. [`require_session`] checks it on every POST before any handler runs. The sign-in
//! form has its own ([`sign_in_challenge`]): a short-lived `SameSite=Strict` cookie and, in the
//! form, its keyed hash, so a forged sign-in from another site fails even in a browser that
//! sends no `Sec-Fetch-Site`.

use crate::http::{read_body, RequestContext};
use crate::state::AppState;
use crate::tokens::{IssueOptions, IssueRequest};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tessera_core::model::KeyHash;
use tessera_core::principal::Principal;
use tessera_core::secret::SecretPurpose;
use tessera_core::token::DEFAULT_SCOPE;
use tessera_core::{ids, UnixTime};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tessera_console";
/// Lifetime of a session's token: an unused session ends this long after its last renewal.
pub const SESSION_LIFETIME: i64 = 15 * 60;
/// Age at which a used session's token is replaced by a fresh one.
pub const RENEW_AFTER: i64 = 5 * 60;
/// The absolute lifetime of a session: this long after the sign-in it ends, used or not.
pub const SESSION_MAX_AGE: i64 = 8 * 60 * 60;
/// The sign-in form's cookie (its CSRF challenge).
pub const SIGN_IN_COOKIE: &str = "tessera_console_sign_in";
/// How long a sign-in form may be submitted after it was served.
pub const SIGN_IN_FORM_LIFETIME: i64 = 10 * 60;
/// The grant type stamped on console session tokens.
const CONSOLE_GRANT: &str = "urn:tessera:console";
/// Largest console form body.
const MAX_FORM: usize = 64 * 1024;

/// A signed-in console session, as [`require_session`] hands it to the handlers.
#[derive(Clone)]
pub struct Session {
    pub principal: Principal,
    /// The session's current access token: the bearer of its admin API calls.
    pub token: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    sid: String,
    /// When the session's principal signed in.
    started: UnixTime,
    /// When the current token was issued, its id and its expiry.
    iat: UnixTime,
    jti: String,
    exp: UnixTime,
}

impl Session {
    pub fn iam_id(&self) -> &str {
        self.principal.iam_id()
    }

    /// The cookie value of this session (its current token).
    fn cookie_value(&self, state: &AppState) -> String {
        let tag = session_tag(state, &self.sid, self.started);
        format!("{}.{}.{tag}.{}", self.sid, self.started, self.token)
    }
}

/// The fields of a POSTed console form, parsed once by [`require_session`].
#[derive(Clone, Default)]
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of `name`, trimmed, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Why a console request has no session, or its form was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("not signed in")]
    Missing,
    #[error("the session has ended: {0}")]
    Ended(String),
    #[error("the session is more than 8 hours old; sign in again")]
    TooOld,
    #[error("the form's CSRF token is missing or does not belong to this session; reload the page and try again")]
    Csrf,
    #[error("the sign-in form has expired or did not come from this console; reload the sign-in page and try again")]
    SignInCsrf,
    #[error("cross-site form submissions are refused")]
    CrossSite,
    #[error("the form could not be read: {0}")]
    Form(String),
}

/// A freshly minted session token: the token, its id, issue time and expiry.
struct Minted {
    token: String,
    jti: String,
    iat: UnixTime,
    exp: UnixTime,
}

/// Starts a session for `principal` (just signed in): a new session id and a token; the
/// cookie value.
pub fn start(
    state: &AppState,
    principal: &Principal,
    now: UnixTime,
) -> tessera_core::error::Result<String> {
    // 16 random bytes as 32 hex digits (the shape of an account id).
    let sid = ids::new_account_id(&state.rng)?;
    let minted = mint(state, principal, now, now)?;
    let session = Session {
        principal: principal.clone(),
        csrf: csrf_token(state, &sid),
        sid,
        started: now,
        iat: minted.iat,
        jti: minted.jti,
        exp: minted.exp,
        token: minted.token,
    };
    Ok(session.cookie_value(state))
}

/// A token for a session that began at `started`: [`SESSION_LIFETIME`] long, but never past
/// the session's end.
fn mint(
    state: &AppState,
    principal: &Principal,
    started: UnixTime,
    now: UnixTime,
) -> tessera_core::error::Result<Minted> {
    let remaining = started.saturating_add(SESSION_MAX_AGE).saturating_sub(now);
    if remaining <= 0 {
        return Err(tessera_core::error::Error::internal(
            "a session token past the session's end",
        ));
    }
    let request = IssueRequest {
        client: None,
        scope: DEFAULT_SCOPE,
        grant_type: CONSOLE_GRANT,
        with_refresh_token: false,
        now,
    };
    let options = IssueOptions {
        lifetime: Some(SESSION_LIFETIME.min(remaining)),
        delegated: None,
    };
    let access = state.issue_ibm_with(principal, &request, &options)?.access;
    Ok(Minted {
        jti: access.claims.jti,
        iat: access.claims.iat,
        exp: access.claims.exp,
        token: access.token,
    })
}

/// The keyed tag of a session id and its sign-in time.
fn session_tag(state: &AppState, sid: &str, started: UnixTime) -> String {
    ids::hex(
        &state
            .pepper
            .hash(SecretPurpose::ConsoleSession, &format!("{sid}.{started}"))
            .0,
    )
}

/// The session a request's cookie holds, verified now (its token and its age). Its token
/// may be due for renewal: see [`renew`].
pub fn resume(
    state: &AppState,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<Session, SessionError> {
    let value = cookie(headers, SESSION_COOKIE).ok_or(SessionError::Missing)?;
    let mut parts = value.splitn(4, '.');
    let (Some(sid), Some(started), Some(tag), Some(token)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Missing);
    };
    if sid.len() != 32 || !sid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SessionError::Missing);
    }
    let started: UnixTime = started.parse().map_err(|_| SessionError::Missing)?;
    let tag_ok = unhex32(tag).is_some_and(|bytes| {
        state.pepper.verify(
            SecretPurpose::ConsoleSession,
            &format!("{sid}.{started}"),
            &KeyHash(bytes),
        )
    });
    if !tag_ok {
        return Err(SessionError::Missing);
    }
    if now.saturating_sub(started) >= SESSION_MAX_AGE {
        return Err(SessionError::TooOld);
    }
    let (principal, presented) = state
        .authenticate_token(token, now)
        .map_err(|e| SessionError::Ended(e.message().to_owned()))?;
    Ok(Session {
        csrf: csrf_token(state, sid),
        sid: sid.to_owned(),
        started,
        iat: presented.iat(),
        jti: presented.jti().to_owned(),
        exp: presented.exp(),
        token: token.to_owned(),
        principal,
    })
}

/// Renews `session`'s token once it is [`RENEW_AFTER`] old: a fresh token with the same
/// lineage, and the one it replaces revoked (so a copy of the earlier cookie stops working).
/// The new cookie value, or `None` when no renewal was due or it could not be done (then the
/// current token, still valid, is kept).
pub async fn renew(
    state: &AppState,
    session: &mut Session,
    now: UnixTime,
    ctx: &RequestContext,
) -> Option<String> {
    if now.saturating_sub(session.iat) < RENEW_AFTER {
        return None;
    }
    let minted = match mint(state, &session.principal, session.started, now) {
        Ok(minted) => minted,
        Err(e) => {
            tracing::warn!(request_id = %ctx.id, error = %e.message(), "console session could not be renewed");
            return None;
        }
    };
    // Revoke first: if that fails, the fresh token is dropped, so never two stand at once.
    if let Err(e) = revoke_token(state, session, now, ctx).await {
        tracing::warn!(request_id = %ctx.id, error = %e.message(), "console session renewal could not revoke the previous token; kept it");
        return None;
    }
    session.token = minted.token;
    session.jti = minted.jti;
    session.iat = minted.iat;
    session.exp = minted.exp;
    Some(session.cookie_value(state))
}

/// Revokes the session's current token, as its own principal (sign-out and renewal alike).
async fn revoke_token(
    state: &AppState,
    session: &Session,
    now: UnixTime,
    ctx: &RequestContext,
) -> tessera_core::error::Result<()> {
    state
        .record_revocation(
            session.jti.clone(),
            session.exp,
            session.iam_id(),
            session.iam_id(),
            now,
            ctx,
        )
        .await
}

/// Ends `session`: its current token is revoked, so the cookie is worthless even if kept.
pub async fn end(state: &AppState, session: &Session, now: UnixTime, ctx: &RequestContext) {
    if let Err(e) = revoke_token(state, session, now, ctx).await {
        tracing::warn!(request_id = %ctx.id, error = %e.message(), "console sign-out could not revoke the session token");
    }
}

/// The CSRF token of session id `sid`.
pub fn csrf_token(state: &AppState, sid: &str) -> String {
    ids::hex(&state.pepper.hash(SecretPurpose::ConsoleCsrf, sid).0)
}

/// Whether `presented` is the CSRF token of session id `sid` (compared in constant time).
pub fn csrf_matches(state: &AppState, sid: &str, presented: Option<&str>) -> bool {
    let Some(bytes) = presented.and_then(unhex32) else {
        return false;
    };
    state
        .pepper
        .verify(SecretPurpose::ConsoleCsrf, sid, &KeyHash(bytes))
}

/// A new sign-in challenge: the sign-in cookie's value (a random nonce and the time it was
/// served) and the form's CSRF token, its keyed hash.
pub fn sign_in_challenge(
    state: &AppState,
    now: UnixTime,
) -> tessera_core::error::Result<(String, String)> {
    let nonce = ids::new_account_id(&state.rng)?;
    let value = format!("{nonce}.{now}");
    let token = ids::hex(&state.pepper.hash(SecretPurpose::ConsoleSignIn, &value).0);
    Ok((value, token))
}

/// Checks a sign-in post: the request's sign-in cookie is one this server served less than
/// [`SIGN_IN_FORM_LIFETIME`] ago, and `presented` is its keyed hash (in constant time).
pub fn check_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    presented: Option<&str>,
    now: UnixTime,
) -> Result<(), SessionError> {
    let value = cookie(headers, SIGN_IN_COOKIE).ok_or(SessionError::SignInCsrf)?;
    let (nonce, served) = value.split_once('.').ok_or(SessionError::SignInCsrf)?;
    let served: UnixTime = served.parse().map_err(|_| SessionError::SignInCsrf)?;
    let age = now.saturating_sub(served);
    if nonce.len() != 32 || !(0..=SIGN_IN_FORM_LIFETIME).contains(&age) {
        return Err(SessionError::SignInCsrf);
    }
    let Some(bytes) = presented.and_then(unhex32) else {
        return Err(SessionError::SignInCsrf);
    };
    if state
        .pepper
        .verify(SecretPurpose::ConsoleSignIn, value, &KeyHash(bytes))
    {
        Ok(())
    } else {
        Err(SessionError::SignInCsrf)
    }
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` of cookie `name` for `path` (with `None`, of its removal): `HttpOnly`,
/// `SameSite=Strict`, and `Secure` whenever the server is reached over TLS (its public URL
/// says so).
fn cookie_header(
    state: &AppState,
    name: &str,
    path: &str,
    value: Option<&str>,
    max_age: i64,
) -> HeaderValue {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let (value, max_age) = match value {
        Some(value) => (value, max_age),
        None => ("", 0),
    };
    let text = format!(
        "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` of a session value (or, with `None`, of its removal).
pub fn set_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    cookie_header(state, SESSION_COOKIE, "/console", value, SESSION_LIFETIME)
}

/// The `Set-Cookie` of a sign-in challenge (or, with `None`, of its removal).
pub fn set_sign_in_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    cookie_header(
        state,
        SIGN_IN_COOKIE,
        "/console/sign-in",
        value,
        SIGN_IN_FORM_LIFETIME,
    )
}

/// Refuses a cross-site form post (as browsers label it); requests without the header (older
/// browsers, scripts) are left to the CSRF token.
pub fn same_site(headers: &HeaderMap) -> Result<(), SessionError> {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some("cross-site") | Some("same-site") => Err(SessionError::CrossSite),
        _ => Ok(()),
    }
}

/// Reads a bounded url-encoded form body.
pub async fn read_form(body: axum::body::Body) -> Result<Form, SessionError> {
    let bytes = read_body(body, MAX_FORM)
        .await
        .map_err(|e| SessionError::Form(e.to_string()))?;
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
        .map(Form)
        .map_err(|e| SessionError::Form(e.to_string()))
}

/// The gate of every signed-in page: no session → the sign-in page; a POST must be same-site
/// and carry the session's CSRF token. Renews the session's token when due, hands the handler
/// the [`Session`] (and a POST's [`Form`]) as extensions, and gives the browser the renewed
/// cookie.
pub async fn require_session(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let now = state.clock.now();
    let mut session = match resume(&state, request.headers(), now) {
        Ok(found) => found,
        Err(_) if request.method() == Method::GET => {
            return Redirect::to("/console/sign-in").into_response();
        }
        Err(e) => {
            return super::pages::error_page(None, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let (mut parts, body) = request.into_parts();
    let ctx = parts
        .extensions
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext::detached("console", state.clock.now_utc()));
    let mut form = Form::default();
    if parts.method == Method::POST {
        if let Err(e) = same_site(&parts.headers) {
            return super::pages::error_page(Some(&session), StatusCode::FORBIDDEN, &e.to_string());
        }
        form = match read_form(body).await {
            Ok(form) => form,
            Err(e) => {
                return super::pages::error_page(
                    Some(&session),
                    StatusCode::BAD_REQUEST,
                    &e.to_string(),
                )
            }
        };
        if !csrf_matches(&state, &session.sid, form.get("csrf")) {
            tracing::warn!(
                request_id = %ctx.id,
                actor = session.iam_id(),
                "console form refused: CSRF token mismatch"
            );
            return super::pages::error_page(
                Some(&session),
                StatusCode::FORBIDDEN,
                &SessionError::Csrf.to_string(),
            );
        }
    }
    let renewed = renew(&state, &mut session, now, &ctx).await;
    parts.extensions.insert(session);
    parts.extensions.insert(form);
    let request = Request::from_parts(parts, axum::body::Body::empty());
    let mut response = next.run(request).await;
    if let Some(value) = renewed {
        if !response.headers().contains_key(header::SET_COOKIE) {
            response
                .headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&state, Some(&value)));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TestApp, ADMIN_KEY};
    use std::time::Duration;

    const T0: i64 = 1_900_000_000;

    fn headers_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {SESSION_COOKIE}={value}")).unwrap(),
        );
        headers
    }

    async fn signed_in(app: &TestApp) -> String {
        let principal = crate::ibm::apikey_sign_in(&app.state, ADMIN_KEY, None)
            .await
            .unwrap();
        let value = start(&app.state, &principal, app.clock.now()).unwrap();
        let session = resume(&app.state, &headers_with(&value), app.clock.now()).unwrap();
        assert_eq!(session.iam_id(), principal.iam_id());
        value
    }

    fn ctx(app: &TestApp) -> RequestContext {
        RequestContext::detached("test", app.clock.now_utc())
    }

    /// Resumes the session of cookie `value` now and renews it if due.
    async fn used(app: &TestApp, value: &str) -> Result<(Session, Option<String>), SessionError> {
        let mut session = resume(&app.state, &headers_with(value), app.clock.now())?;
        let renewed = renew(&app.state, &mut session, app.clock.now(), &ctx(app)).await;
        Ok((session, renewed))
    }

    #[tokio::test]
    async fn a_session_resumes_renews_and_expires() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let value = signed_in(&app).await;

        app.advance(Duration::from_secs(10)).await;
        let (session, renewed) = used(&app, &value).await.unwrap();
        assert!(!session.csrf.is_empty());
        assert!(renewed.is_none(), "a fresh session is not renewed");

        app.set(T0 + RENEW_AFTER).await;
        let (_, renewed) = used(&app, &value).await.unwrap();
        let renewed = renewed.expect("renewed once old enough");
        assert_ne!(renewed, value);
        assert_eq!(
            renewed.split_once('.').unwrap().0,
            value.split_once('.').unwrap().0,
            "the same session id"
        );
        // The renewed token lives on past the first one's end (and the verifier's leeway).
        let leeway = tessera_verify::LEEWAY;
        app.set(T0 + SESSION_LIFETIME + leeway).await;
        assert!(resume(state, &headers_with(&renewed), app.clock.now()).is_ok());
        // Unused, the renewed one ends a lifetime after its renewal.
        app.set(T0 + RENEW_AFTER + SESSION_LIFETIME + leeway).await;
        assert!(matches!(
            resume(state, &headers_with(&renewed), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
    }

    #[tokio::test]
    async fn renewal_revokes_the_token_it_replaces() {
        let app = TestApp::at(T0).await;
        let value = signed_in(&app).await;
        app.set(T0 + RENEW_AFTER).await;
        let (session, renewed) = used(&app, &value).await.unwrap();
        let renewed = renewed.expect("renewed");
        // The earlier cookie (a stolen copy) is dead at once, long before its token expires.
        assert!(matches!(
            resume(&app.state, &headers_with(&value), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
        // So is its token as a bearer of the admin API: it was revoked, not forgotten.
        let old_token = value.splitn(4, '.').nth(3).unwrap();
        assert!(app
            .state
            .authenticate_token(old_token, app.clock.now())
            .is_err());
        assert!(resume(&app.state, &headers_with(&renewed), app.clock.now()).is_ok());
        // Signing out revokes the current token, the renewed one.
        end(&app.state, &session, app.clock.now(), &ctx(&app)).await;
        assert!(resume(&app.state, &headers_with(&renewed), app.clock.now()).is_err());
    }

    #[tokio::test]
    async fn a_session_ends_at_its_absolute_lifetime_however_much_it_is_used() {
        let app = TestApp::at(T0).await;
        let mut value = signed_in(&app).await;
        // Used every few minutes, it is renewed each time...
        let mut at = T0;
        while at + RENEW_AFTER < T0 + SESSION_MAX_AGE {
            at += RENEW_AFTER;
            app.set(at).await;
            let (session, renewed) = used(&app, &value).await.unwrap();
            if let Some(renewed) = renewed {
                value = renewed;
            }
            // ...but no token of the session outlives the session.
            assert!(session.exp <= T0 + SESSION_MAX_AGE, "{}", session.exp);
        }
        // ...until eight hours after the sign-in: then it is over.
        app.set(T0 + SESSION_MAX_AGE).await;
        assert_eq!(
            resume(&app.state, &headers_with(&value), app.clock.now()).err(),
            Some(SessionError::TooOld)
        );
        // The sign-in time cannot be moved: the tag covers it.
        let mut parts: Vec<String> = value.splitn(4, '.').map(str::to_owned).collect();
        parts[1] = (T0 + 3600).to_string();
        assert_eq!(
            resume(&app.state, &headers_with(&parts.join(".")), app.clock.now()).err(),
            Some(SessionError::Missing)
        );
    }

    #[tokio::test]
    async fn signing_out_revokes_the_session_token() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let value = signed_in(&app).await;
        let session = resume(state, &headers_with(&value), app.clock.now()).unwrap();
        end(state, &session, app.clock.now(), &ctx(&app)).await;
        assert!(matches!(
            resume(state, &headers_with(&value), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
    }

    #[tokio::test]
    async fn the_sign_in_form_token_is_bound_to_its_cookie_and_short_lived() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let (value, token) = sign_in_challenge(state, T0).unwrap();
        let (other_value, other_token) = sign_in_challenge(state, T0).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SIGN_IN_COOKIE}={value}")).unwrap(),
        );
        assert_eq!(check_sign_in(state, &headers, Some(&token), T0), Ok(()));
        let late = T0 + SIGN_IN_FORM_LIFETIME;
        assert_eq!(check_sign_in(state, &headers, Some(&token), late), Ok(()));
        for (presented, at) in [
            (None, T0),
            (Some(""), T0),
            (Some(other_token.as_str()), T0),
            (Some(&token[..63]), T0),
            (Some(token.as_str()), late + 1),
            (Some(token.as_str()), T0 - 1),
        ] {
            assert_eq!(
                check_sign_in(state, &headers, presented, at),
                Err(SessionError::SignInCsrf),
                "{presented:?} at {at}"
            );
        }
        // Without the cookie (a cross-site post: SameSite=Strict keeps it home) nothing passes.
        assert_eq!(
            check_sign_in(state, &HeaderMap::new(), Some(&token), T0),
            Err(SessionError::SignInCsrf)
        );
        // A served time edited in the cookie breaks the binding.
        let nonce = value.split_once('.').unwrap().0;
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{SIGN_IN_COOKIE}={nonce}.{late}")).unwrap(),
        );
        assert_eq!(
            check_sign_in(state, &headers, Some(&token), late),
            Err(SessionError::SignInCsrf)
        );
        assert_ne!(value, other_value);
    }

    #[tokio::test]
    async fn garbage_and_missing_cookies_are_no_session() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let now = app.clock.now();
        assert_eq!(
            resume(state, &HeaderMap::new(), now).err(),
            Some(SessionError::Missing)
        );
        let forged = format!("{}.not-a-token", "a".repeat(32));
        let untagged = format!("{}.{T0}.{}.not-a-token", "a".repeat(32), "0".repeat(64));
        for value in ["", "abc", "zz.token", forged.as_str(), untagged.as_str()] {
            assert!(resume(state, &headers_with(value), now).is_err(), "{value}");
        }
    }

    #[tokio::test]
    async fn csrf_tokens_are_bound_to_their_session() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let a = "0".repeat(32);
        let b = "1".repeat(32);
        let token = csrf_token(state, &a);
        assert!(csrf_matches(state, &a, Some(&token)));
        assert!(!csrf_matches(state, &b, Some(&token)), "another session's");
        assert!(!csrf_matches(state, &a, None));
        assert!(!csrf_matches(state, &a, Some("")));
        assert!(!csrf_matches(state, &a, Some(&token[..63])));
        assert!(!csrf_matches(state, &a, Some(&"g".repeat(64))));
        let mut flipped = token.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(!csrf_matches(state, &a, Some(&flipped)));
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut headers = HeaderMap::new();
        assert!(same_site(&headers).is_ok());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_site(&headers).is_ok());
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert_eq!(same_site(&headers), Err(SessionError::CrossSite));
    }
}
