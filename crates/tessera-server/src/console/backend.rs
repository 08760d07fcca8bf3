//! The admin API as the console calls it: in-process, through the admin router itself, with
//! the session's token as the bearer. Every console read and write is therefore an admin API
//! request (the same extractors, validation, `authz` decision, store call, audit event and
//! error), and nothing about the admin API is written twice.

use crate::http::RequestContext;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// The admin router with its state.
#[derive(Clone)]
pub struct AdminApi(Router);

/// A refusal (or failure) of the admin API: its status and message.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl AdminApi {
    pub fn new(admin: Router) -> Self {
        AdminApi(admin)
    }

    /// Sends one admin request as the holder of `token`; the JSON answer (`Null` when empty),
    /// or the admin error's status and message.
    pub async fn call(
        &self,
        ctx: &RequestContext,
        token: &str,
        method: Method,
        path_and_query: &str,
        body: Option<&Value>,
    ) -> Result<Value, Refusal> {
        let mut request = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let body = match body {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(value).unwrap_or_default())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).map_err(|_| Refusal {
            status: StatusCode::BAD_REQUEST,
            message: "the request could not be formed (an invalid character in the address?)"
                .into(),
        })?;
        request.extensions_mut().insert(ctx.clone());
        let response = match self.0.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .unwrap_or("the request failed")
            .to_owned();
        Err(Refusal { status, message })
    }
}

/// `path?query` with the non-empty `params`, url-encoded.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    let present: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k, v.trim()))
        .collect();
    if present.is_empty() {
        return path.to_owned();
    }
    let query = serde_urlencoded::to_string(&present).unwrap_or_default();
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_only_given_values_and_encode_them() {
        assert_eq!(
            with_query("/v1/audit", &[("actor", ""), ("kind", " ")]),
            "/v1/audit"
        );
        assert_eq!(
            with_query("/v1/audit", &[("actor", "a b&c"), ("action", "api_key.")]),
            "/v1/audit?actor=a+b%26c&action=api_key."
        );
    }
}
