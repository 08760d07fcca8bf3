//! Security events in the server's log (target `tessera::security`): refused sign-ins with the
//! reason and the peer address, admin changes and revocations with the actor, authorization
//! refusals, lock-outs; never the secret that was tried.

use crate::harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tessera_client::api::admin::ServiceAccountCreate;
use tessera_client::resource::{AccessBindings, ServiceAccounts};

/// The security events named `event` the server logged so far.
fn events(server: &TestServer, event: &str) -> Vec<Value> {
    server
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "tessera::security" && line["event"] == event)
        .collect()
}

/// Waits (the log is read from a pipe) for a security event `event` matching `wanted`.
async fn logged(server: &TestServer, event: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    eventually(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let found = events(server, event).into_iter().find(|e| wanted(e));
            found.ok_or_else(|| format!("no {event} event as wanted; the log:\n{}", server.logs()))
        },
    )
    .await
}

fn from_loopback(event: &Value) {
    assert_eq!(event["peer"], "127.0.0.1", "{event}");
    assert!(
        event["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 24),
        "{event}"
    );
}

#[tokio::test]
async fn refused_sign_ins_name_the_reason_and_the_peer_and_never_the_secret() {
    let server = TestServer::start().await;
    let wrong_key = "e2e-wrong-api-key-that-must-not-be-logged";
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", wrong_key)])
        .await;
    assert_eq!(response.status(), 400);
    let event = logged(&server, "sign_in_refused", |e| e["method"] == APIKEY_GRANT).await;
    from_loopback(&event);
    assert_eq!(event["surface"], "ibm");
    assert_eq!(event["level"], "INFO");
    assert!(
        event["reason"].as_str().unwrap().contains("API key"),
        "{event}"
    );

    // A wrong password: who tried (the user name), never the password.
    let admin = server.admin_client().await;
    let (user, _) = server
        .user_with_key(&admin, user("Sec Log", "seclog@example.com"))
        .await;
    let (client_id, client_secret) = server.login_client().await;
    let wrong_password = "e2e-wrong-password-never-logged";
    let response = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[
            ("grant_type", "password"),
            ("username", user.email.as_str()),
            ("password", wrong_password),
        ])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let event = logged(&server, "sign_in_refused", |e| e["method"] == "password").await;
    from_loopback(&event);
    assert_eq!(event["claimed"], "seclog@example.com");

    // A wrong client secret.
    let wrong_secret = "e2e-wrong-client-secret-never-logged";
    let response = server
        .http
        .post(format!("{}/identity/token", server.url))
        .basic_auth(&client_id, Some(wrong_secret))
        .form(&[("grant_type", APIKEY_GRANT), ("apikey", "x")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let event = logged(&server, "sign_in_refused", |e| {
        e["method"] == "client_secret_basic"
    })
    .await;
    assert_eq!(event["claimed"], client_id.as_str());

    // A forged bearer token on the admin API and on the Yandex surface.
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
    let (status, _) = server
        .admin(Method::GET, "/v1/accounts", forged, None)
        .await;
    assert_eq!(status, 401);
    let event = logged(&server, "sign_in_refused", |e| e["surface"] == "admin").await;
    from_loopback(&event);
    let wrong_oauth = "y0_e2e-wrong-oauth-token-never-logged";
    let response = server
        .http
        .post(format!("{}/iam/v1/tokens", server.url))
        .json(&json!({ "yandexPassportOauthToken": wrong_oauth }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());
    let event = logged(&server, "sign_in_refused", |e| e["surface"] == "yandex").await;
    from_loopback(&event);
    assert_eq!(event["method"], "yandex_passport_oauth_token");

    let logs = server.logs();
    for secret in [
        wrong_key,
        wrong_password,
        wrong_secret,
        wrong_oauth,
        client_secret.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret in the log: {secret}");
    }
}

#[tokio::test]
async fn changes_revocations_and_refusals_name_the_actor_and_the_peer() {
    let server = TestServer::start().await;
    let admin = server.admin_client().await;
    let me = admin.whoami().await.unwrap();

    // A binding granted and removed.
    let (sa, key) = server.service_account_with_key().await;
    let binding = bind(
        &admin,
        &sa.iam_id,
        "viewer",
        &format!("account/{}", me.account_id),
    )
    .await;
    admin.delete::<AccessBindings>(&binding.id).await.unwrap();
    for action in ["access_binding.create", "access_binding.delete"] {
        let event = logged(&server, "change", |e| e["action"] == action).await;
        from_loopback(&event);
        assert_eq!(event["actor"], me.iam_id.as_str(), "{event}");
        assert!(
            event["detail"].as_str().unwrap().contains(&binding.id) || action.ends_with("create")
        );
    }
    let created = logged(&server, "change", |e| {
        e["action"] == "access_binding.create"
    })
    .await;
    assert!(
        created["detail"].as_str().unwrap().contains(&sa.iam_id),
        "{created}"
    );

    // A weaker principal (no role at all) tries to create a service account: refused, logged.
    let weak = server.client().with_token(server.token(&key).await);
    let refused = weak
        .create::<ServiceAccounts>(&ServiceAccountCreate {
            account_id: Some(me.account_id.clone()),
            name: "not-allowed".into(),
            description: None,
        })
        .await;
    assert!(refused.is_err());
    let event = logged(&server, "access_denied", |e| {
        e["actor"] == sa.iam_id.as_str()
    })
    .await;
    from_loopback(&event);
    assert!(
        event["action"]
            .as_str()
            .unwrap()
            .starts_with("create service_account"),
        "{event}"
    );

    // A token revoked by its holder (RFC 7009).
    let token = server.token(&key).await;
    let response = server.revoke(&token).await;
    assert_eq!(response.status(), 200);
    let event = logged(&server, "token_revoked", |e| {
        e["detail"].as_str().is_some_and(|d| d.contains(&sa.iam_id))
    })
    .await;
    from_loopback(&event);
    assert!(
        !server.logs().contains(&token),
        "the revoked token itself is not logged"
    );
}

#[tokio::test]
async fn a_lock_out_is_a_warning_with_the_peer() {
    let server = TestServer::start_with(
        &["--throttle-lock-after", "3", "--throttle-delay-after", "3"],
        &[],
    )
    .await;
    let wrong_key = "e2e-guessed-api-key-never-logged";
    for _ in 0..3 {
        let response = server
            .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", wrong_key)])
            .await;
        assert_eq!(response.status(), 400);
    }
    let event = logged(&server, "locked_out", |e| e["kind"] == "apikey").await;
    assert_eq!(event["level"], "WARN");
    assert_eq!(event["peer"], "127.0.0.1");
    assert_eq!(event["scope"], "credential");
    assert_eq!(event["failures"], 3);
    let response = server
        .token_response(&[("grant_type", APIKEY_GRANT), ("apikey", wrong_key)])
        .await;
    assert_eq!(response.status(), 429);
    assert!(!server.logs().contains(wrong_key));
}
