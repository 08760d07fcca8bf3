//! The IBM grants' time rules at a fixed clock: exactly at and after each expiry.

use crate::testkit::{TestApp, ADMIN_KEY, APIKEY_GRANT};
use serde_json::Value;

const T0: i64 = 1_800_000_000;

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_access_token_works_until_its_expiration_plus_the_leeway_and_not_a_second_longer() {
    let app = TestApp::at(T0).await;
    let (status, issued) = app
        .token(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(status, 200, "{issued}");
    let exp = issued["expiration"].as_i64().unwrap();
    assert_eq!(exp, T0 + 3600);
    let token = text(&issued, "access_token");
    // The last second it is accepted.
    app.set(exp + tessera_verify::LEEWAY - 1).await;
    let (status, body) = app.get("/v1/whoami", token).await;
    assert_eq!(status, 200, "{body}");
    // The first second it is not.
    app.set(exp + tessera_verify::LEEWAY).await;
    let (status, body) = app.get("/v1/whoami", token).await;
    assert_eq!(status, 401, "{body}");
}
