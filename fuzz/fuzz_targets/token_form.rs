//! The token endpoint's form (`ibm::form::parse`) and its Basic client header
//! (`http::basic_credentials`). The input is the form body, optionally followed by a newline
//! and an `Authorization` header value.
//!
//! Properties: what parses re-encodes and parses to the same values; Basic credentials
//! re-encode and parse to the same id and secret.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tessera_server::ibm::form;

fn fields(form: &form::TokenForm) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("grant_type", form.grant_type.clone()),
        ("apikey", form.apikey.clone()),
        ("response_type", form.response_type.clone()),
        ("scope", form.scope.clone()),
        ("refresh_token", form.refresh_token.clone()),
        ("receiver_client_ids", form.receiver_client_ids.clone()),
        (
            "delegated_refresh_token_expiry",
            form.delegated_refresh_token_expiry.clone(),
        ),
        ("username", form.username.clone()),
        ("password", form.password.clone()),
        ("account", form.account.clone()),
        ("otp", form.otp.clone()),
        ("access_token", form.access_token.clone()),
        ("cookie", form.cookie.clone()),
        ("profile_id", form.profile_id.clone()),
        ("profile_crn", form.profile_crn.clone()),
        ("profile_name", form.profile_name.clone()),
        ("cr_token", form.cr_token.clone()),
        ("desired_iam_id", form.desired_iam_id.clone()),
        (
            "delegated_refresh_token",
            form.delegated_refresh_token.clone(),
        ),
    ]
}

fuzz_target!(|data: &[u8]| {
    let (body, header) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    if let Ok(parsed) = form::parse(body) {
        let given: Vec<(&str, String)> = fields(&parsed)
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let encoded = serde_urlencoded::to_string(&given).unwrap_or_default();
        let again = form::parse(encoded.as_bytes());
        assert!(again.is_ok(), "re-encoded form does not parse");
        if let Ok(again) = again {
            assert_eq!(
                fields(&again),
                fields(&parsed),
                "form values change on a round trip"
            );
        }
    }
    let Some(value) = header.and_then(|h| axum::http::HeaderValue::from_bytes(h).ok()) else {
        return;
    };
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(axum::http::header::AUTHORIZATION, value);
    if let Ok(Some((id, secret))) = tessera_server::http::basic_credentials(&headers) {
        let form_encode = |s: &str| {
            serde_urlencoded::to_string([("v", s)])
                .unwrap_or_default()
                .trim_start_matches("v=")
                .to_owned()
        };
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            form_encode(&id),
            form_encode(&secret)
        ));
        let mut again = axum::http::HeaderMap::new();
        if let Ok(value) = format!("Basic {encoded}").parse() {
            again.insert(axum::http::header::AUTHORIZATION, value);
            assert_eq!(
                tessera_server::http::basic_credentials(&again),
                Ok(Some((id, secret))),
                "Basic credentials change on a round trip"
            );
        }
    }
});
