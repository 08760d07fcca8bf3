//! Request utilities every surface uses: the per-request context, the peer address, bounded
//! body reading, form decoding, credentials from headers, written JSON answers, and the generic
//! JSON error. A leaf: the router and
//! the layers that use these are in [`crate::router`].

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::borrow::Cow;
use std::time::Instant;
use time::OffsetDateTime;

/// Per-request facts every surface can use: the request id, when the request started, and the
/// address it came from (the connection's TCP peer, see [`PeerAddr`]).
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub id: String,
    pub started: Instant,
    pub started_at: OffsetDateTime,
    pub peer: Option<std::net::IpAddr>,
}

impl RequestContext {
    /// The context of work that did not come through the router (a unit test, a call driven
    /// without it): id `id`, started now (`at` on the server's clock), no peer.
    pub fn detached(id: &str, at: OffsetDateTime) -> RequestContext {
        RequestContext {
            id: id.to_owned(),
            started: Instant::now(),
            started_at: at,
            peer: None,
        }
    }
}

/// The TCP peer of the connection a request came on, set by the server's accept loops. The
/// source address brute-force throttling counts by; `X-Forwarded-For` is deliberately not
/// consulted (any client can send it). Absent when the app is driven without a socket.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// Collapses repeated slashes in the path (`//identity/token` → `/identity/token`).
pub fn collapse_slashes(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for c in path.chars() {
            if !(c == '/' && collapsed.ends_with('/')) {
                collapsed.push(c);
            }
        }
        let rebuilt = match request.uri().query() {
            Some(q) => format!("{collapsed}?{q}"),
            None => collapsed,
        };
        if let Ok(uri) = rebuilt.parse::<Uri>() {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// A JSON error for paths outside any surface.
pub fn generic_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body could not be read")]
    Unreadable,
}

/// Reads a request body of at most `limit` bytes, so each surface can answer an oversized body
/// in its own error shape.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge(limit))
        }
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Parses `Authorization: Basic base64(id:secret)`. `Ok(None)` when absent.
pub fn basic_credentials(
    headers: &axum::http::HeaderMap,
) -> Result<Option<(String, String)>, &'static str> {
    use base64::Engine;
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| "Authorization header is not valid text")?;
    let Some((scheme, encoded)) = value.split_once(' ') else {
        return Err("Authorization header is malformed");
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "Basic credentials are not valid base64")?;
    let text = String::from_utf8(decoded).map_err(|_| "Basic credentials are not valid UTF-8")?;
    let (id, secret) = text
        .split_once(':')
        .ok_or("Basic credentials must be client_id:client_secret")?;
    // RFC 6749 §2.3.1: client id and secret are form-urlencoded inside Basic.
    let id = form_decode(id);
    let secret = form_decode(secret);
    Ok(Some((id, secret)))
}

/// A Basic credential's form-urlencoded value decoded ([`form_decoded`]). A raw `&` or `=` is
/// part of the value (a secret may contain them); text that does not decode to UTF-8 stays as
/// sent, with `+` as a space.
fn form_decode(value: &str) -> String {
    match form_decoded(value.as_bytes()) {
        Cow::Borrowed(_) => value.to_owned(),
        Cow::Owned(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| value.replace('+', " ")),
    }
}

/// `application/x-www-form-urlencoded` decoding of one name or value, the one rule of the token
/// forms and of Basic credentials: `+` is a space, `%` and two hex digits a byte, any other `%`
/// stays. Borrowed when there is nothing to decode. One pass copying the runs between escapes
/// whole: mapping `+` and then percent-decoding byte by byte through two iterators and the
/// lossy decoder cost ~50 instructions a byte (an `iam-authz` grant's percent-encoded
/// `desired_iam_id` and `grant_type`: 7,189).
pub fn form_decoded(part: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr2(b'%', b'+', part).is_none() {
        return Cow::Borrowed(part);
    }
    let mut decoded = Vec::with_capacity(part.len());
    let mut rest = part;
    while let Some(at) = memchr::memchr2(b'%', b'+', rest) {
        decoded.extend_from_slice(&rest[..at]);
        if rest[at] == b'+' {
            decoded.push(b' ');
            rest = &rest[at + 1..];
            continue;
        }
        match (
            rest.get(at + 1).and_then(hex_digit),
            rest.get(at + 2).and_then(hex_digit),
        ) {
            (Some(high), Some(low)) => {
                decoded.push(high << 4 | low);
                rest = &rest[at + 3..];
            }
            _ => {
                decoded.push(b'%');
                rest = &rest[at + 1..];
            }
        }
    }
    decoded.extend_from_slice(rest);
    Cow::Owned(decoded)
}

fn hex_digit(byte: &u8) -> Option<u8> {
    char::from(*byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// A JSON answer already written (by [`tessera_core::json`]): `Json` would serialize it again.
pub fn json_response(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The bearer token of `Authorization: Bearer …`, if any.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether the request declares a form-encoded body.
pub fn is_form(headers: &axum::http::HeaderMap) -> bool {
    declares(headers, "application/x-www-form-urlencoded")
}

/// Whether the request's `Content-Type` is `media_type` (any parameters, any case).
pub fn declares(headers: &axum::http::HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(media_type)
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slashes_collapse() {
        let request = Request::builder()
            .uri("//identity//token?a=b")
            .body(Body::empty())
            .unwrap();
        assert_eq!(collapse_slashes(request).uri(), "/identity/token?a=b");
    }

    #[test]
    fn basic_values_keep_raw_ampersands_and_equals_signs() {
        assert_eq!(form_decode("abc&v=x"), "abc&v=x");
        assert_eq!(form_decode("a=b&c"), "a=b&c");
        assert_eq!(form_decode("s%26t%3D+u"), "s&t= u");
        assert_eq!(form_decode("plain"), "plain");
        assert_eq!(
            form_decode("bad%ff"),
            "bad%ff",
            "invalid UTF-8 is kept as sent"
        );
    }

    #[test]
    fn basic_parsing() {
        use base64::Engine;
        let mut headers = axum::http::HeaderMap::new();
        assert_eq!(basic_credentials(&headers), Ok(None));
        let encoded = base64::engine::general_purpose::STANDARD.encode("bx:s%3Acret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Ok(Some(("bx".into(), "s:cret".into())))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert!(basic_credentials(&headers).is_err());
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(basic_credentials(&headers), Ok(None));
        assert_eq!(bearer_token(&headers), Some("abc"));
    }
}
