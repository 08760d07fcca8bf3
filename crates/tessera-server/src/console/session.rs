//! Console sessions: a cookie holding a random session id and a short-lived IAM token of the
//! signed-in principal, and the CSRF token bound to the session id.
//!
//! The token is an ordinary access token (the IBM-surface JWT, lifetime [`SESSION_LIFETIME`])
//! minted for the principal that signed in, so the session is verified on every request exactly
//! as a presented token is (signature, expiry, revocation, lineage): deleting the API key it
//! came from, cutting off the identity, or revoking the token ends it at once, with no state
//! of the console's own. While in use it is renewed (a fresh token with the same lineage) once
//! it is [`RENEW_AFTER`] old, so an idle session ends after [`SESSION_LIFETIME`]. "Sign out"
//! revokes the current token.
//!
//! The CSRF token is the keyed hash (under the server pepper) of the session id: a page of the
//! session carries it in every form, nobody without the cookie can compute it, and it outlives
//! renewals. [`require_session`] checks it on every POST before any handler runs.

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
    jti: String,
    exp: UnixTime,
}

impl Session {
    pub fn iam_id(&self) -> &str {
        self.principal.iam_id()
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
    #[error("the form's CSRF token is missing or does not belong to this session; reload the page and try again")]
    Csrf,
    #[error("cross-site form submissions are refused")]
    CrossSite,
    #[error("the form could not be read: {0}")]
    Form(String),
}

/// Starts a session for `principal` (just signed in): a new session id and a token.
pub fn start(
    state: &AppState,
    principal: &Principal,
    now: UnixTime,
) -> tessera_core::error::Result<String> {
    // 16 random bytes as 32 hex digits (the shape of an account id).
    let sid = ids::new_account_id(&state.rng)?;
    let token = mint(state, principal, now)?;
    Ok(format!("{sid}.{token}"))
}

fn mint(
    state: &AppState,
    principal: &Principal,
    now: UnixTime,
) -> tessera_core::error::Result<String> {
    let request = IssueRequest {
        client: None,
        scope: DEFAULT_SCOPE,
        grant_type: CONSOLE_GRANT,
        with_refresh_token: false,
        now,
    };
    let options = IssueOptions {
        lifetime: Some(SESSION_LIFETIME),
        delegated: None,
    };
    Ok(state
        .issue_ibm_with(principal, &request, &options)?
        .access
        .token)
}

/// The session a request's cookie holds, verified now; `Some(cookie)` beside it when the token
/// was renewed and the browser must be given the new value.
pub fn resume(
    state: &AppState,
    headers: &HeaderMap,
    now: UnixTime,
) -> Result<(Session, Option<String>), SessionError> {
    let value = cookie(headers, SESSION_COOKIE).ok_or(SessionError::Missing)?;
    let (sid, token) = value.split_once('.').ok_or(SessionError::Missing)?;
    if sid.len() != 32 || !sid.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SessionError::Missing);
    }
    let (principal, presented) = state
        .authenticate_token(token, now)
        .map_err(|e| SessionError::Ended(e.message().to_owned()))?;
    let mut session = Session {
        csrf: csrf_token(state, sid),
        sid: sid.to_owned(),
        jti: presented.jti().to_owned(),
        exp: presented.exp(),
        token: token.to_owned(),
        principal,
    };
    let renewed = if now.saturating_sub(presented.iat()) >= RENEW_AFTER {
        let token = mint(state, &session.principal, now)
            .map_err(|e| SessionError::Ended(e.message().to_owned()))?;
        session.token = token;
        Some(format!("{}.{}", session.sid, session.token))
    } else {
        None
    };
    Ok((session, renewed))
}

/// Ends `session`: its current token is revoked, so the cookie is worthless even if kept.
pub async fn end(state: &AppState, session: &Session, now: UnixTime, ctx: &RequestContext) {
    if let Err(e) = state
        .record_revocation(
            session.jti.clone(),
            session.exp,
            session.iam_id(),
            session.iam_id(),
            now,
            ctx,
        )
        .await
    {
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

/// The `Set-Cookie` of a session value (or, with `None`, of its removal).
pub fn set_cookie(state: &AppState, value: Option<&str>) -> HeaderValue {
    // `Secure` whenever the server is reached over TLS (its public URL says so).
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text = match value {
        Some(value) => format!(
            "{SESSION_COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_LIFETIME}{secure}"
        ),
        None => format!(
            "{SESSION_COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{secure}"
        ),
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
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
/// and carry the session's CSRF token. Hands the handler the [`Session`] (and a POST's
/// [`Form`]) as extensions, and gives the browser the renewed cookie.
pub async fn require_session(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let now = state.clock.now();
    let (session, renewed) = match resume(&state, request.headers(), now) {
        Ok(found) => found,
        Err(_) if request.method() == Method::GET => {
            return Redirect::to("/console/sign-in").into_response();
        }
        Err(e) => {
            return super::pages::error_page(None, StatusCode::UNAUTHORIZED, &e.to_string());
        }
    };
    let (mut parts, body) = request.into_parts();
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
            let ctx = parts
                .extensions
                .get::<RequestContext>()
                .map(|c| c.id.as_str());
            tracing::warn!(
                request_id = ctx.unwrap_or(""),
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
        let (session, _) = resume(&app.state, &headers_with(&value), app.clock.now()).unwrap();
        assert_eq!(session.iam_id(), principal.iam_id());
        value
    }

    #[tokio::test]
    async fn a_session_resumes_renews_and_expires() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let value = signed_in(&app).await;

        app.advance(Duration::from_secs(10)).await;
        let (session, renewed) = resume(state, &headers_with(&value), app.clock.now()).unwrap();
        assert!(!session.csrf.is_empty());
        assert!(renewed.is_none(), "a fresh session is not renewed");

        app.set(T0 + RENEW_AFTER).await;
        let (_, renewed) = resume(state, &headers_with(&value), app.clock.now()).unwrap();
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
        assert!(matches!(
            resume(state, &headers_with(&value), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
        assert!(resume(state, &headers_with(&renewed), app.clock.now()).is_ok());
        // Unused, the renewed one ends a lifetime after its renewal.
        app.set(T0 + RENEW_AFTER + SESSION_LIFETIME + leeway).await;
        assert!(matches!(
            resume(state, &headers_with(&renewed), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
    }

    #[tokio::test]
    async fn signing_out_revokes_the_session_token() {
        let app = TestApp::at(T0).await;
        let state = &app.state;
        let value = signed_in(&app).await;
        let (session, _) = resume(state, &headers_with(&value), app.clock.now()).unwrap();
        let ctx = RequestContext::detached("test", app.clock.now_utc());
        end(state, &session, app.clock.now(), &ctx).await;
        assert!(matches!(
            resume(state, &headers_with(&value), app.clock.now()),
            Err(SessionError::Ended(_))
        ));
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
        for value in ["", "abc", "zz.token", forged.as_str()] {
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
