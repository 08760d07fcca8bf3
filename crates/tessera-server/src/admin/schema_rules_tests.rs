//! The server applies what `/openapi.json` states (`tessera_api::schema_rules`), at the edges
//! where the two once disagreed and the schema fuzzer (tests/schema/run.sh) found it: lengths
//! counted in characters as JSON Schema counts them, a malformed TOTP code refused even where no
//! confirmed factor checks it, and the cross-field rules of users, issuers and profiles.

use crate::testkit::{TestApp, ADMIN_KEY, APIKEY_GRANT};
use serde_json::{json, Value};

const T0: i64 = 1_800_000_000;

async fn admin() -> (TestApp, String) {
    let app = TestApp::at(T0).await;
    let (status, issued) = app
        .token(&[("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)])
        .await;
    assert_eq!(status, 200, "{issued}");
    let token = issued["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (app, token)
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_malformed_totp_code_is_refused_even_without_a_confirmed_factor() {
    let (app, token) = admin().await;
    let user = json!({"name": "ada", "email": "ada@example.com", "password": "correct horse"});
    let (status, user) = app.send_json("POST", "/v1/users", &token, &user).await;
    assert_eq!(status, 201, "{user}");
    let path = format!("/v1/users/{}/totp", user["id"].as_str().unwrap_or_default());
    // No factor yet: the code would check nothing, but its shape is still the schema's.
    for code in ["", "12345", "abcdef", "1234567"] {
        let (status, body) = app
            .send_json("POST", &path, &token, &json!({ "code": code }))
            .await;
        assert_eq!(status, 400, "code {code:?}: {body}");
        assert!(message(&body).contains("6 digits"), "{body}");
    }
    // Six digits with surrounding whitespace are a code (the schema says so too).
    let (status, body) = app
        .send_json("POST", &path, &token, &json!({ "code": " 123456\t" }))
        .await;
    assert_eq!(status, 201, "{body}");
    // A pending factor is removed without a code, but not with a malformed one.
    let (status, body) = app
        .send_json("DELETE", &path, &token, &json!({ "code": "x" }))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app.send_json("DELETE", &path, &token, &json!({})).await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn a_federated_user_with_a_password_is_refused() {
    let (app, token) = admin().await;
    let body =
        json!({"name": "f", "email": "f@example.com", "federated": true, "password": "12345678"});
    let (status, answer) = app.send_json("POST", "/v1/users", &token, &body).await;
    assert_eq!(status, 400, "{answer}");
    // `null` is no password (the schema's `anyOf` allows it).
    let body = json!({"name": "f", "email": "f@example.com", "federated": true, "password": null});
    let (status, answer) = app.send_json("POST", "/v1/users", &token, &body).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn profile_lengths_are_characters_as_the_schema_counts() {
    let (app, token) = admin().await;
    let crn = "crn:v1:bluemix:public:containers-kubernetes:us-south:a/x:c1::";
    // 253 characters of four bytes each: within the schema's bound, so accepted.
    let long = "\u{1F600}".repeat(253);
    let claim = "\u{1F600}".repeat(128);
    let value = format!("\"{}\"", "\u{1F600}".repeat(1022));
    let profile = |namespace: &str, claim: &str, value: &str| {
        json!({
            "name": "p",
            "links": [{"cr_type": "IKS_SA", "crn": crn, "namespace": namespace, "name": "sa"}],
            "rules": [{"type": "Profile-CR", "cr_type": "IKS_SA",
                       "conditions": [{"claim": claim, "operator": "EQUALS", "value": value}]}],
        })
    };
    let (status, body) = app
        .send_json(
            "POST",
            "/v1/trusted_profiles",
            &token,
            &profile(&long, &claim, &value),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // One character more is refused, each field naming itself.
    for (doc, field) in [
        (profile(&format!("{long}x"), "c", "1"), "namespace"),
        (profile("ns", &format!("{claim}x"), "1"), "claim"),
        (profile("ns", "c", &format!("{value} ")), "value"),
    ] {
        let (status, body) = app
            .send_json("POST", "/v1/trusted_profiles", &token, &doc)
            .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(message(&body).contains(field), "{field}: {body}");
    }
}

#[tokio::test]
async fn issuer_lengths_are_characters_and_key_sources_exclusive() {
    let (app, token) = admin().await;
    let (status, keys) = app.get("/identity/keys", &token).await;
    assert_eq!(status, 200, "{keys}");
    let issuer = |url: &str, audience: &str, path: &str| {
        json!({
            "name": "i", "issuer_url": url, "jwks": keys,
            "audiences": [audience], "claim_mapping": {"namespace": path},
        })
    };
    let audience = "\u{e9}".repeat(256);
    let path = "\u{e9}".repeat(256);
    let (status, body) = app
        .send_json(
            "POST",
            "/v1/trusted_issuers",
            &token,
            &issuer("https://a.example", &audience, &path),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    for (doc, field) in [
        (
            issuer("https://b.example", &format!("{audience}x"), "a"),
            "audience",
        ),
        (
            issuer("https://c.example", "iam", &format!("{path}x")),
            "claim_mapping",
        ),
    ] {
        let (status, body) = app
            .send_json("POST", "/v1/trusted_issuers", &token, &doc)
            .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(message(&body).contains(field), "{field}: {body}");
    }
    // Neither key source, or both: refused (the schema's `oneOf`).
    let neither = json!({"name": "i", "issuer_url": "https://d.example"});
    let both = json!({"name": "i", "issuer_url": "https://d.example", "jwks": keys,
                      "jwks_file": "/etc/keys.json"});
    for doc in [neither, both] {
        let (status, body) = app
            .send_json("POST", "/v1/trusted_issuers", &token, &doc)
            .await;
        assert_eq!(status, 400, "{doc}: {body}");
        assert!(message(&body).contains("jwks"), "{body}");
    }
}
