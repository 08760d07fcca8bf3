//! One test per admin rule, through the router at a fixed clock: who may do what where
//! (cross-account refusals, viewer against admin, containment), the last global administrator,
//! validation of names and fields, cascades on delete, secrets shown once, the MFA rules,
//! cut-offs at the clock and the signing-key rotation timeline.

use crate::testkit::{admin_code, claims, ibm_code, TestApp, ADMIN_KEY, APIKEY_GRANT};
use axum::http::Method;
use serde_json::{json, Value};
use std::time::Duration;
use tessera_core::totp::{self, TotpSecret};

const T0: i64 = 1_800_000_000;

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_default()
}

/// Asserts an admin refusal: status, error code, and a word of the message.
fn refused((status, body): (u16, Value), http: u16, code: &str, needle: &str) {
    expect_code((status, body.clone()), http, code);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

/// Asserts an admin answer's status and error code.
fn expect_code((status, body): (u16, Value), http: u16, code: &str) {
    assert_eq!((status, admin_code(&body)), (http, code), "{body}");
}

fn denied(answer: (u16, Value)) {
    expect_code(answer, 403, "permission_denied");
}

/// Asserts that `POST path` with `body` is refused as an invalid argument naming `needle`.
async fn invalid(app: &TestApp, path: &str, token: &str, body: Value, needle: &str) {
    refused(
        app.post(path, token, body).await,
        400,
        "invalid_argument",
        needle,
    );
}

async fn account_admin(app: &TestApp, account: &str) -> (Value, String) {
    app.holder_of(account, "admin", "account-admin").await
}

async fn viewer(app: &TestApp, account: &str) -> (Value, String) {
    app.holder_of(account, "viewer", "viewer").await
}

fn apikey_grant(apikey: &str) -> [(&'static str, &str); 2] {
    [("grant_type", APIKEY_GRANT), ("apikey", apikey)]
}

// ---- authentication and request shape ----

#[tokio::test]
async fn admin_calls_without_a_bearer_token_are_unauthenticated() {
    let app = TestApp::at(T0).await;
    refused(
        app.call(Method::GET, "/v1/accounts", None, None).await,
        401,
        "unauthenticated",
        "Bearer",
    );
}

#[tokio::test]
async fn an_expired_access_token_is_unauthenticated_on_the_admin_api() {
    let (app, admin) = TestApp::with_admin(T0).await;
    app.set(T0 + 3600 + tessera_verify::LEEWAY).await;
    expect_code(
        app.get("/v1/accounts", &admin).await,
        401,
        "unauthenticated",
    );
}

#[tokio::test]
async fn admin_bodies_must_be_json_without_unknown_fields() {
    let (app, admin) = TestApp::with_admin(T0).await;
    invalid(
        &app,
        "/v1/accounts",
        &admin,
        json!({ "name": "a", "colour": "red" }),
        "colour",
    )
    .await;
    let request = axum::http::Request::post("/v1/accounts")
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(r#"{"name":"a"}"#))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn list_limits_are_between_one_and_the_maximum() {
    let (app, admin) = TestApp::with_admin(T0).await;
    for limit in ["0", "100000"] {
        refused(
            app.get(&format!("/v1/service_accounts?limit={limit}"), &admin)
                .await,
            400,
            "invalid_argument",
            "limit must be between 1",
        );
    }
}

// ---- enterprises and accounts ----

#[tokio::test]
async fn only_the_global_administrator_creates_accounts_and_enterprises() {
    let (app, account) = TestApp::with_account(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post("/v1/accounts", &token, json!({ "name": "mine" }))
            .await,
    );
    denied(
        app.post("/v1/enterprises", &token, json!({ "name": "corp" }))
            .await,
    );
    let admin = app.admin_token().await;
    app.create(&admin, "enterprises", json!({ "name": "corp" }))
        .await;
}

#[tokio::test]
async fn names_must_not_be_empty_nor_longer_than_the_limit() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let long = "n".repeat(tessera_core::limits::MAX_NAME + 1);
    for name in ["", "   ", long.as_str()] {
        invalid(
            &app,
            "/v1/accounts",
            &admin,
            json!({ "name": name }),
            "name",
        )
        .await;
    }
    let (status, _) = app
        .post(
            "/v1/accounts",
            &admin,
            json!({ "name": "n".repeat(tessera_core::limits::MAX_NAME) }),
        )
        .await;
    assert_eq!(status, 201, "exactly the limit is allowed");
}

#[tokio::test]
async fn an_accounts_mfa_is_totp_or_none_spelled_exactly() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let path = format!("/v1/accounts/{account}");
    for bad in [json!({ "mfa": "totp" }), json!({})] {
        expect_code(
            app.call(Method::PATCH, &path, Some(&admin), Some(bad))
                .await,
            400,
            "invalid_argument",
        );
    }
    let (status, body) = app
        .call(
            Method::PATCH,
            &path,
            Some(&admin),
            Some(json!({ "mfa": "TOTP" })),
        )
        .await;
    assert_eq!((status, text(&body, "mfa")), (200, "TOTP"), "{body}");
}

#[tokio::test]
async fn an_account_admin_may_set_its_accounts_mfa_but_not_anothers() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    let mfa = json!({ "mfa": "TOTP" });
    let (status, body) = app
        .call(
            Method::PATCH,
            &format!("/v1/accounts/{account}"),
            Some(&token),
            Some(mfa.clone()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    denied(
        app.call(
            Method::PATCH,
            &format!("/v1/accounts/{other}"),
            Some(&token),
            Some(mfa),
        )
        .await,
    );
}

#[tokio::test]
async fn an_account_is_deleted_only_once_it_is_empty() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let sa = app
        .create(
            &admin,
            "service_accounts",
            json!({ "account_id": account, "name": "x" }),
        )
        .await;
    expect_code(
        app.delete(&format!("/v1/accounts/{account}"), &admin).await,
        409,
        "failed_precondition",
    );
    app.delete_object(&admin, "service_accounts", &sa).await;
    let (status, body) = app.delete(&format!("/v1/accounts/{account}"), &admin).await;
    assert_eq!(status, 204, "{body}");
}

// ---- users ----

#[tokio::test]
async fn an_account_admin_cannot_create_users_in_another_account() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    let user = |account: &str| json!({ "account_id": account, "name": "bob", "email": "bob@unit.example" });
    denied(app.post("/v1/users", &token, user(&other)).await);
    let (status, body) = app.post("/v1/users", &token, user(&account)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_federated_user_cannot_have_a_password() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let body = json!({
        "name": "fed", "email": "fed@unit.example", "federated": true, "password": "pass-0123456",
    });
    invalid(&app, "/v1/users", &admin, body, "federated").await;
}

#[tokio::test]
async fn a_user_needs_a_valid_email_and_a_long_enough_password() {
    let (app, admin) = TestApp::with_admin(T0).await;
    invalid(
        &app,
        "/v1/users",
        &admin,
        json!({ "name": "a", "email": "not-an-email" }),
        "email",
    )
    .await;
    invalid(
        &app,
        "/v1/users",
        &admin,
        json!({ "name": "a", "email": "a@unit.example", "password": "short" }),
        "password",
    )
    .await;
}

#[tokio::test]
async fn a_viewer_reads_but_does_not_create() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let (_, token) = viewer(&app, &account).await;
    let (status, body) = app
        .get(&format!("/v1/users/{}", text(&user, "id")), &token)
        .await;
    assert_eq!(
        (status, text(&body, "id")),
        (200, text(&user, "id")),
        "{body}"
    );
    denied(
        app.post("/v1/service_accounts", &token, json!({ "name": "mine" }))
            .await,
    );
}

#[tokio::test]
async fn a_viewer_of_one_account_cannot_read_another() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let stranger = app.user(&other, "sam").await;
    let (_, token) = viewer(&app, &account).await;
    denied(
        app.get(&format!("/v1/users/{}", text(&stranger, "id")), &token)
            .await,
    );
    denied(
        app.get(&format!("/v1/users?account_id={other}"), &token)
            .await,
    );
}

#[tokio::test]
async fn listing_without_an_account_shows_only_readable_accounts() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    app.user(&other, "sam").await;
    let mine = app.user(&account, "ann").await;
    let (_, token) = viewer(&app, &account).await;
    let (status, body) = app.get("/v1/users", &token).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| text(u, "id"))
        .collect();
    assert_eq!(ids, vec![text(&mine, "id")]);
}

#[tokio::test]
async fn the_last_global_administrator_cannot_be_deleted() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let me = claims(&admin)["iam_id"].as_str().unwrap().to_owned();
    refused(
        app.delete(&format!("/v1/users/{me}"), &admin).await,
        403,
        "permission_denied",
        "last global administrator",
    );
}

#[tokio::test]
async fn deleting_a_user_takes_its_api_keys() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let key = app
        .create(
            &own,
            "api_keys",
            json!({ "owner_iam_id": user["id"], "name": "own" }),
        )
        .await;
    let apikey = text(&key, "apikey").to_owned();
    app.apikey_token(&apikey).await;
    app.delete_object(&admin, "users", &user).await;
    let (status, body) = app.token(&apikey_grant(&apikey)).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0415E"), "{body}");
}

// ---- service accounts ----

#[tokio::test]
async fn an_account_admin_cannot_create_service_accounts_in_another_account() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post(
            "/v1/service_accounts",
            &token,
            json!({ "account_id": other, "name": "x" }),
        )
        .await,
    );
}

#[tokio::test]
async fn a_description_is_at_most_the_limit() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let long = "d".repeat(tessera_core::limits::MAX_DESCRIPTION + 1);
    invalid(
        &app,
        "/v1/service_accounts",
        &admin,
        json!({ "name": "x", "description": long }),
        "description",
    )
    .await;
}

#[tokio::test]
async fn deleting_a_service_account_takes_its_keys_and_bindings() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "doomed").await;
    let binding = app
        .bind(&sa["iam_id"], "viewer", &format!("account/{account}"))
        .await;
    let token = app.apikey_token(&apikey).await;
    app.delete_object(&admin, "service_accounts", &sa).await;
    let (status, body) = app.token(&apikey_grant(&apikey)).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0415E"), "{body}");
    let (status, _) = app
        .get(
            &format!("/v1/access_bindings/{}", text(&binding, "id")),
            &admin,
        )
        .await;
    assert_eq!(status, 404);
    // Its access token dies with it.
    let (status, _) = app.get("/v1/whoami", &token).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn an_account_admin_cannot_delete_a_service_account_more_privileged_than_itself() {
    let (app, account) = TestApp::with_account(T0).await;
    let boss = app.global_administrator(&account, "boss").await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.delete(
            &format!("/v1/service_accounts/{}", text(&boss, "id")),
            &token,
        )
        .await,
    );
}

// ---- API keys ----

#[tokio::test]
async fn an_api_key_is_shown_once() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let sa = app
        .create(
            &admin,
            "service_accounts",
            json!({ "account_id": account, "name": "x" }),
        )
        .await;
    let key = app
        .create(
            &admin,
            "api_keys",
            json!({ "owner_iam_id": sa["iam_id"], "name": "k" }),
        )
        .await;
    assert!(key["apikey"].is_string(), "{key}");
    let (status, read) = app
        .get(&format!("/v1/api_keys/{}", text(&key, "id")), &admin)
        .await;
    assert_eq!(status, 200);
    assert!(read.get("apikey").is_none(), "{read}");
    let (_, listed) = app
        .get(
            &format!("/v1/api_keys?owner_iam_id={}", text(&sa, "iam_id")),
            &admin,
        )
        .await;
    assert!(
        !listed.to_string().contains(text(&key, "apikey")),
        "{listed}"
    );
}

#[tokio::test]
async fn administrators_do_not_create_credentials_for_users() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let user = app.user(&account, "ann").await;
    refused(
        app.post(
            "/v1/api_keys",
            &admin,
            json!({ "owner_iam_id": user["id"], "name": "k" }),
        )
        .await,
        403,
        "permission_denied",
        "only user",
    );
    refused(
        app.post("/v1/oauth_tokens", &admin, json!({ "user_id": user["id"] }))
            .await,
        403,
        "permission_denied",
        "only user",
    );
}

#[tokio::test]
async fn a_user_creates_and_deletes_its_own_credentials() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let key = app
        .create(
            &own,
            "api_keys",
            json!({ "owner_iam_id": user["id"], "name": "own" }),
        )
        .await;
    app.delete_object(&own, "api_keys", &key).await;
}

#[tokio::test]
async fn an_api_key_owner_must_be_an_existing_user_or_service_account() {
    let (app, admin) = TestApp::with_admin(T0).await;
    invalid(
        &app,
        "/v1/api_keys",
        &admin,
        json!({ "owner_iam_id": "someone", "name": "k" }),
        "owner_iam_id",
    )
    .await;
    refused(
        app.post(
            "/v1/api_keys",
            &admin,
            json!({ "owner_iam_id": "iam-ServiceId-nope", "name": "k" }),
        )
        .await,
        404,
        "not_found",
        "iam-ServiceId-nope",
    );
}

#[tokio::test]
async fn an_account_admin_cannot_mint_keys_for_a_more_privileged_service_account() {
    let (app, account) = TestApp::with_account(T0).await;
    let boss = app.global_administrator(&account, "boss").await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post(
            "/v1/api_keys",
            &token,
            json!({ "owner_iam_id": boss["iam_id"], "name": "k" }),
        )
        .await,
    );
}

// ---- OAuth clients ----

#[tokio::test]
async fn the_default_client_id_is_reserved() {
    let (app, admin) = TestApp::with_admin(T0).await;
    invalid(
        &app,
        "/v1/clients",
        &admin,
        json!({ "id": "default" }),
        "reserved",
    )
    .await;
}

#[tokio::test]
async fn a_client_secret_is_shown_once() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let client = app.create(&admin, "clients", json!({ "id": "web" })).await;
    assert!(client["secret"].is_string(), "{client}");
    let (status, read) = app.get("/v1/clients/web", &admin).await;
    assert_eq!(status, 200, "{read}");
    assert!(read.get("secret").is_none(), "{read}");
}

#[tokio::test]
async fn client_ids_are_unique_per_account_not_installation_wide() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let a = app.account("a").await;
    let b = app.account("b").await;
    app.create(&admin, "clients", json!({ "id": "web", "account_id": a }))
        .await;
    app.create(&admin, "clients", json!({ "id": "web", "account_id": b }))
        .await;
    expect_code(
        app.post(
            "/v1/clients",
            &admin,
            json!({ "id": "web", "account_id": a }),
        )
        .await,
        409,
        "already_exists",
    );
}

#[tokio::test]
async fn an_account_admin_cannot_create_a_global_client() {
    let (app, account) = TestApp::with_account(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post("/v1/clients", &token, json!({ "id": "everywhere" }))
            .await,
    );
    let (status, body) = app
        .post(
            "/v1/clients",
            &token,
            json!({ "id": "mine", "account_id": account }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

// ---- access bindings ----

#[tokio::test]
async fn the_last_global_admin_binding_cannot_be_removed() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let me = claims(&admin)["iam_id"].as_str().unwrap().to_owned();
    let (_, bindings) = app
        .get(&format!("/v1/access_bindings?subject_iam_id={me}"), &admin)
        .await;
    let id = text(&bindings["access_bindings"][0], "id").to_owned();
    refused(
        app.delete(&format!("/v1/access_bindings/{id}"), &admin)
            .await,
        403,
        "permission_denied",
        "last global administrator",
    );
    // With a second global administrator, it can go.
    let account = app.admin_account().await;
    app.global_administrator(&account, "second").await;
    let (status, body) = app
        .delete(&format!("/v1/access_bindings/{id}"), &admin)
        .await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn an_account_admin_cannot_grant_more_than_it_holds() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    let (sa, _) = app.service_account_with_key(&account, "x").await;
    for resource in ["*".to_owned(), format!("account/{other}")] {
        let body = json!({ "subject_iam_id": sa["iam_id"], "role": "admin", "resource": resource });
        denied(app.post("/v1/access_bindings", &token, body).await);
    }
    let body = json!({
        "subject_iam_id": sa["iam_id"], "role": "viewer", "resource": format!("account/{account}"),
    });
    let (status, answer) = app.post("/v1/access_bindings", &token, body).await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn a_binding_names_a_known_role_and_resource() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.admin_account().await;
    let (sa, _) = app.service_account_with_key(&account, "x").await;
    let cases = [
        (json!("owner"), json!("*"), 400, "role must be one of"),
        (json!("viewer"), json!("folder/1"), 400, "resource must be"),
        (
            json!("viewer"),
            json!("service-account/ServiceId-nope"),
            404,
            "ServiceId-nope",
        ),
    ];
    for (role, resource, http, needle) in cases {
        let body = json!({ "subject_iam_id": sa["iam_id"], "role": role, "resource": resource });
        let (status, answer) = app.post("/v1/access_bindings", &admin, body).await;
        assert_eq!(status, http, "{answer}");
        assert!(answer.to_string().contains(needle), "{answer}");
    }
}

#[tokio::test]
async fn a_viewer_cannot_bind() {
    let (app, account) = TestApp::with_account(T0).await;
    let (me, token) = viewer(&app, &account).await;
    let body = json!({
        "subject_iam_id": me["iam_id"], "role": "admin", "resource": format!("account/{account}"),
    });
    denied(app.post("/v1/access_bindings", &token, body).await);
}

// ---- authorized keys and OAuth tokens ----

#[tokio::test]
async fn an_authorized_keys_private_half_is_shown_once() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.admin_account().await;
    let (sa, _) = app.service_account_with_key(&account, "x").await;
    let key = app.authorized_key_of(&admin, &sa).await;
    assert!(
        text(&key["key_file"], "private_key").contains("PRIVATE KEY"),
        "{key}"
    );
    let (status, read) = app
        .get(&format!("/v1/authorized_keys/{}", text(&key, "id")), &admin)
        .await;
    assert_eq!(status, 200);
    assert!(read.get("key_file").is_none(), "{read}");
    assert!(!read.to_string().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn an_authorized_key_needs_a_known_service_account_and_algorithm() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.admin_account().await;
    let (sa, _) = app.service_account_with_key(&account, "x").await;
    refused(
        app.post(
            "/v1/authorized_keys",
            &admin,
            json!({ "service_account_id": "ServiceId-nope" }),
        )
        .await,
        404,
        "not_found",
        "ServiceId-nope",
    );
    invalid(
        &app,
        "/v1/authorized_keys",
        &admin,
        json!({ "service_account_id": sa["id"], "key_algorithm": "DSA_1024" }),
        "RSA_2048, RSA_4096",
    )
    .await;
}

#[tokio::test]
async fn an_oauth_token_is_shown_once() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let token = app
        .create(&own, "oauth_tokens", json!({ "user_id": user["id"] }))
        .await;
    let secret = text(&token, "token").to_owned();
    assert!(!secret.is_empty(), "{token}");
    let (status, read) = app
        .get(&format!("/v1/oauth_tokens/{}", text(&token, "id")), &own)
        .await;
    assert_eq!(status, 200, "{read}");
    assert!(!read.to_string().contains(&secret), "{read}");
}

// ---- trusted profiles, issuers, policies ----

#[tokio::test]
async fn profile_names_are_unique_per_account() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let a = app.account("a").await;
    let b = app.account("b").await;
    let profile = |account: &str| json!({ "account_id": account, "name": "builders" });
    app.create(&admin, "trusted_profiles", profile(&a)).await;
    app.create(&admin, "trusted_profiles", profile(&b)).await;
    refused(
        app.post("/v1/trusted_profiles", &admin, profile(&a)).await,
        409,
        "already_exists",
        "builders",
    );
}

#[tokio::test]
async fn a_profile_identity_has_a_known_type_and_shape() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let cases = [
        (
            json!({ "type": "group", "identifier": "x" }),
            "must be one of user, serviceid, crn",
        ),
        (
            json!({ "type": "user", "identifier": "ServiceId-1" }),
            "must look like IBMid-",
        ),
    ];
    for (identity, needle) in cases {
        let body = json!({ "name": "p", "identities": [identity] });
        invalid(&app, "/v1/trusted_profiles", &admin, body, needle).await;
    }
}

#[tokio::test]
async fn replacing_a_profile_keeps_its_id_and_account() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let created = app
        .create(
            &admin,
            "trusted_profiles",
            json!({ "account_id": account, "name": "p1" }),
        )
        .await;
    app.advance(Duration::from_secs(5)).await;
    let path = format!("/v1/trusted_profiles/{}", text(&created, "id"));
    let (status, replaced) = app
        .call(
            Method::PUT,
            &path,
            Some(&admin),
            Some(json!({ "name": "p2" })),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], created["id"]);
    assert_eq!(replaced["account_id"], account.as_str());
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(replaced["name"], "p2");
}

#[tokio::test]
async fn an_account_admin_cannot_rewrite_a_profile_more_privileged_than_itself() {
    let (app, account) = TestApp::with_account(T0).await;
    let admin = app.admin_token().await;
    let profile = app
        .create(
            &admin,
            "trusted_profiles",
            json!({ "account_id": account, "name": "ops" }),
        )
        .await;
    app.bind(
        &json!(format!("iam-{}", text(&profile, "id"))),
        "admin",
        "*",
    )
    .await;
    let (_, token) = account_admin(&app, &account).await;
    let path = format!("/v1/trusted_profiles/{}", text(&profile, "id"));
    denied(
        app.call(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({ "name": "mine-now" })),
        )
        .await,
    );
}

fn test_jwks() -> Value {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let algorithm = tessera_core::model::Algorithm::Es256;
    let pkcs8 = tessera_core::jose::generate_pkcs8(algorithm, &rng).unwrap();
    let key = tessera_core::jose::SigningKey::from_pkcs8("k1", algorithm, &pkcs8).unwrap();
    json!({ "keys": [key.public_jwk()] })
}

const ISSUER_URL: &str = "https://k8s.unit.example/cluster";

#[tokio::test]
async fn only_the_global_administrator_names_a_key_file_on_the_server() {
    let (app, account) = TestApp::with_account(T0).await;
    let (_, token) = account_admin(&app, &account).await;
    let body = json!({ "name": "c", "issuer_url": ISSUER_URL, "jwks_file": "/etc/passwd" });
    refused(
        app.post("/v1/trusted_issuers", &token, body).await,
        403,
        "permission_denied",
        "jwks_file",
    );
}

#[tokio::test]
async fn issuer_urls_are_unique_per_account() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let a = app.account("a").await;
    let b = app.account("b").await;
    let issuer = |account: &str| json!({ "account_id": account, "name": "c", "issuer_url": ISSUER_URL, "jwks": test_jwks() });
    app.create(&admin, "trusted_issuers", issuer(&a)).await;
    app.create(&admin, "trusted_issuers", issuer(&b)).await;
    refused(
        app.post("/v1/trusted_issuers", &admin, issuer(&a)).await,
        409,
        "already_exists",
        "issuer_url",
    );
}

#[tokio::test]
async fn an_issuer_takes_one_key_source_and_a_crn_of_its_own_account() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    let both = json!({
        "account_id": account, "name": "c", "issuer_url": ISSUER_URL,
        "jwks": test_jwks(), "jwks_file": "/tmp/keys.json",
    });
    invalid(&app, "/v1/trusted_issuers", &admin, both, "not both").await;
    let foreign_crn = format!("crn:v1:tessera:public:containers-kubernetes::a/{other}::cluster:x");
    let body = json!({
        "account_id": account, "name": "c", "issuer_url": ISSUER_URL,
        "jwks": test_jwks(), "crn": foreign_crn,
    });
    invalid(
        &app,
        "/v1/trusted_issuers",
        &admin,
        body,
        "crn names account",
    )
    .await;
}

#[tokio::test]
async fn a_policy_target_stays_inside_the_policys_account() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    let (sa, _) = app.service_account_with_key(&account, "reader").await;
    let target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{other}:b::");
    let body =
        json!({ "account_id": account, "source_iam_id": sa["iam_id"], "target_crn": target });
    expect_code(
        app.post("/v1/authorization_policies", &admin, body).await,
        400,
        "invalid_argument",
    );
}

#[tokio::test]
async fn a_policy_source_must_exist() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:b::");
    let body = json!({ "source_iam_id": "iam-ServiceId-nope", "target_crn": target });
    refused(
        app.post("/v1/authorization_policies", &admin, body).await,
        404,
        "not_found",
        "iam-ServiceId-nope",
    );
}

// ---- token cut-offs ----

#[tokio::test]
async fn a_cutoff_kills_every_token_issued_up_to_its_second_and_no_later_one() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "x").await;
    let before = app.apikey_token(&apikey).await;
    let (status, body) = app
        .post(
            "/v1/token_cutoffs",
            &admin,
            json!({ "iam_id": sa["iam_id"] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["not_before"],
        crate::rfc3339::from_unix(T0 + 1).as_str()
    );
    let (status, _) = app.get("/v1/whoami", &before).await;
    assert_eq!(status, 401, "a token of the cut-off second");
    let same_second = app.apikey_token(&apikey).await;
    let (status, _) = app.get("/v1/whoami", &same_second).await;
    assert_eq!(status, 401, "issued in the cut-off's own second");
    app.advance(Duration::from_secs(1)).await;
    let after = app.apikey_token(&apikey).await;
    let (status, body) = app.get("/v1/whoami", &after).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_cutoff_of_another_accounts_identity_is_refused() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (stranger, _) = app.service_account_with_key(&other, "x").await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post(
            "/v1/token_cutoffs",
            &token,
            json!({ "iam_id": stranger["iam_id"] }),
        )
        .await,
    );
    refused(
        app.post(
            "/v1/token_cutoffs",
            &token,
            json!({ "iam_id": "iam-ServiceId-nope" }),
        )
        .await,
        404,
        "not_found",
        "iam-ServiceId-nope",
    );
}

#[tokio::test]
async fn anyone_may_cut_off_its_own_tokens() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, token) = app.service_account_token(&account, "x").await;
    let (status, body) = app
        .post(
            "/v1/token_cutoffs",
            &token,
            json!({ "iam_id": sa["iam_id"] }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.get("/v1/whoami", &token).await;
    assert_eq!(status, 401);
}

// ---- MFA ----

/// Enrols a factor for `user` as `token`: its secret.
async fn enrol(app: &TestApp, user: &Value, token: &str) -> TotpSecret {
    let (status, enrolled) = app
        .post(
            &format!("/v1/users/{}/totp", text(user, "id")),
            token,
            json!({}),
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    TotpSecret::from_bytes(totp::base32_decode(text(&enrolled, "secret")).unwrap())
}

async fn confirm(app: &TestApp, user: &Value, token: &str, secret: &TotpSecret) -> (u16, Value) {
    let code = totp::code_at(secret, app.clock.now());
    app.post(
        &format!("/v1/users/{}/totp/confirm", text(user, "id")),
        token,
        json!({ "code": code }),
    )
    .await
}

/// A user with a confirmed factor, its password-only token and the factor's secret.
async fn user_with_factor(app: &TestApp) -> (Value, String, TotpSecret) {
    let account = app.account("acme").await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let secret = enrol(app, &user, &own).await;
    let (status, body) = confirm(app, &user, &own, &secret).await;
    assert_eq!(status, 200, "{body}");
    // The confirming code's step is used up.
    app.advance(Duration::from_secs(30)).await;
    (user, own, secret)
}

#[tokio::test]
async fn a_user_enrols_and_confirms_its_own_factor() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let secret = enrol(&app, &user, &own).await;
    let (_, view) = app
        .get(&format!("/v1/users/{}", text(&user, "id")), &own)
        .await;
    assert_eq!(view["totp"], "pending");
    let (status, body) = confirm(&app, &user, &own, &secret).await;
    assert_eq!(
        (status, body["confirmed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (_, view) = app
        .get(&format!("/v1/users/{}", text(&user, "id")), &own)
        .await;
    assert_eq!(view["totp"], "confirmed");
}

#[tokio::test]
async fn a_wrong_code_does_not_confirm_a_factor() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let secret = enrol(&app, &user, &own).await;
    let wrong = format!(
        "{:06}",
        (totp::code_at(&secret, T0).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    invalid(
        &app,
        &format!("/v1/users/{}/totp/confirm", text(&user, "id")),
        &own,
        json!({ "code": wrong }),
        "wrong or expired",
    )
    .await;
}

#[tokio::test]
async fn an_administrator_of_the_account_may_set_up_a_first_factor_but_a_stranger_may_not() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    let user = app.user(&account, "ann").await;
    let (_, stranger) = account_admin(&app, &other).await;
    let path = format!("/v1/users/{}/totp", text(&user, "id"));
    denied(app.post(&path, &stranger, json!({})).await);
    let (status, body) = app.post(&path, &admin, json!({})).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn a_federated_user_cannot_enrol_a_factor() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let user = app
        .create(
            &admin,
            "users",
            json!({ "name": "fed", "email": "fed@unit.example", "federated": true }),
        )
        .await;
    invalid(
        &app,
        &format!("/v1/users/{}/totp", text(&user, "id")),
        &admin,
        json!({}),
        "federated",
    )
    .await;
}

#[tokio::test]
async fn a_confirmed_factor_is_replaced_only_with_replace_and_a_current_code() {
    let app = TestApp::at(T0).await;
    let (user, own, secret) = user_with_factor(&app).await;
    let path = format!("/v1/users/{}/totp", text(&user, "id"));
    refused(
        app.post(&path, &own, json!({})).await,
        409,
        "failed_precondition",
        "replace=true",
    );
    let replace = format!("{path}?replace=true");
    refused(
        app.post(&replace, &own, json!({})).await,
        403,
        "permission_denied",
        "needs that factor now",
    );
    let code = totp::code_at(&secret, app.clock.now());
    let (status, body) = app.post(&replace, &own, json!({ "code": code })).await;
    assert_eq!(
        (status, body["replacement"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
}

#[tokio::test]
async fn removing_a_confirmed_factor_needs_a_current_code() {
    let app = TestApp::at(T0).await;
    let (user, own, secret) = user_with_factor(&app).await;
    let path = format!("/v1/users/{}/totp", text(&user, "id"));
    refused(
        app.call(Method::DELETE, &path, Some(&own), None).await,
        403,
        "permission_denied",
        "needs that factor now",
    );
    let code = totp::code_at(&secret, app.clock.now());
    let (status, body) = app
        .call(
            Method::DELETE,
            &path,
            Some(&own),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn an_administrator_cannot_remove_a_users_confirmed_factor() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let (user, _, secret) = user_with_factor(&app).await;
    let code = totp::code_at(&secret, app.clock.now());
    denied(
        app.call(
            Method::DELETE,
            &format!("/v1/users/{}/totp", text(&user, "id")),
            Some(&admin),
            Some(json!({ "code": code })),
        )
        .await,
    );
}

#[tokio::test]
async fn a_sign_in_with_a_code_is_step_up_for_five_minutes_and_not_a_second_longer() {
    let app = TestApp::at(T0).await;
    let (user, _, secret) = user_with_factor(&app).await;
    let code = totp::code_at(&secret, app.clock.now());
    let (status, body) = app
        .password_grant(
            text(&user, "id"),
            crate::testkit::USER_PASSWORD,
            &[("otp", &code)],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh = text(&body, "access_token").to_owned();
    let signed_in_at = app.clock.now();
    let path = format!("/v1/users/{}/totp?replace=true", text(&user, "id"));
    app.set(signed_in_at + tessera_core::authz::STEP_UP_SECONDS + 1)
        .await;
    refused(
        app.post(&path, &fresh, json!({})).await,
        403,
        "permission_denied",
        "needs that factor now",
    );
    // A fresh sign-in at that time does the same within its window.
    let code = totp::code_at(&secret, app.clock.now());
    let (_, body) = app
        .password_grant(
            text(&user, "id"),
            crate::testkit::USER_PASSWORD,
            &[("otp", &code)],
        )
        .await;
    let fresh = text(&body, "access_token").to_owned();
    app.advance(Duration::from_secs(
        tessera_core::authz::STEP_UP_SECONDS as u64,
    ))
    .await;
    let (status, body) = app.post(&path, &fresh, json!({})).await;
    assert_eq!(status, 201, "the last second of the window: {body}");
}

// ---- signing keys ----

async fn signing_keys(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, body) = app.get("/v1/signing_keys", token).await;
    assert_eq!(status, 200, "{body}");
    body["signing_keys"].as_array().unwrap().clone()
}

fn jwt_keys(keys: &[Value], state: &str) -> Vec<Value> {
    keys.iter()
        .filter(|k| k["use"] == "jwt" && k["state"] == state)
        .cloned()
        .collect()
}

#[tokio::test]
async fn only_the_global_administrator_sees_and_rotates_signing_keys() {
    let app = TestApp::at(T0).await;
    let admin_account = app.admin_account().await;
    let (_, token) = account_admin(&app, &admin_account).await;
    denied(app.get("/v1/signing_keys", &token).await);
    denied(
        app.post("/v1/signing_keys/rotate", &token, json!({ "use": "jwt" }))
            .await,
    );
    let admin = app.admin_token().await;
    invalid(
        &app,
        "/v1/signing_keys/rotate",
        &admin,
        json!({ "use": "rsa" }),
        "jwt, yandex-iam",
    )
    .await;
}

#[tokio::test]
async fn a_scheduled_rotation_publishes_a_successor_before_it_signs() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let before = signing_keys(&app, &admin).await;
    let active = jwt_keys(&before, "active");
    assert_eq!(active.len(), 1, "{before:?}");
    let (status, body) = app
        .post("/v1/signing_keys/rotate", &admin, json!({ "use": "jwt" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let after = signing_keys(&app, &admin).await;
    let next = jwt_keys(&after, "next");
    assert_eq!(next.len(), 1, "{after:?}");
    assert_eq!(next[0]["published"], true);
    // The signer is still the active key.
    let token = app.admin_token().await;
    assert_eq!(crate::testkit::kid(&token), text(&active[0], "kid"));
}

#[tokio::test]
async fn an_immediate_rotation_signs_with_a_new_key_and_keeps_the_old_one_verifiable() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let old_kid = crate::testkit::kid(&admin);
    app.advance(Duration::from_secs(60)).await;
    let (status, body) = app
        .post(
            "/v1/signing_keys/rotate",
            &admin,
            json!({ "use": "jwt", "immediate": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let keys = signing_keys(&app, &admin).await;
    let old = keys.iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
    assert_eq!(old["state"], "retired", "{old}");
    assert_eq!(
        old["retired_at"],
        crate::rfc3339::from_unix(T0 + 60).as_str()
    );
    assert_eq!(
        old["published"], true,
        "tokens it signed still verify: {old}"
    );
    let fresh = app.admin_token().await;
    assert_ne!(crate::testkit::kid(&fresh), old_kid);
    let (status, body) = app.get("/v1/whoami", &admin).await;
    assert_eq!(status, 200, "{body}");
}

// ---- audit, whoami, ID tokens ----

#[tokio::test]
async fn the_audit_log_records_admin_writes_for_those_who_may_read_it() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (status, body) = app.get("/v1/audit?limit=5", &admin).await;
    assert_eq!(status, 200, "{body}");
    let newest = &body["events"][0];
    assert_eq!(newest["action"], "account.create", "{body}");
    assert_eq!(newest["target_id"], account.as_str(), "{body}");
    assert_eq!(newest["at"], crate::rfc3339::from_unix(T0).as_str());
    let (_, viewer_token) = viewer(&app, &account).await;
    denied(app.get("/v1/audit", &viewer_token).await);
}

#[tokio::test]
async fn whoami_tells_a_global_administrator_from_an_account_admin() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let (_, body) = app.get("/v1/whoami", &admin).await;
    assert_eq!(body["global_admin"], true, "{body}");
    let account = app.account("acme").await;
    let (sa, token) = account_admin(&app, &account).await;
    let (_, body) = app.get("/v1/whoami", &token).await;
    assert_eq!(body["global_admin"], false, "{body}");
    assert_eq!(body["iam_id"], sa["iam_id"]);
    assert_eq!(body["account_id"], account.as_str());
}

#[tokio::test]
async fn an_id_token_names_its_audience_and_lives_an_hour() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, token) = app.service_account_token(&account, "workload").await;
    invalid(&app, "/v1/id_tokens", &token, json!({}), "audience").await;
    let (status, body) = app
        .post(
            "/v1/id_tokens",
            &token,
            json!({ "audience": "https://svc.unit.example" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(text(&body, "id_token"));
    assert_eq!(c["aud"], "https://svc.unit.example");
    assert_eq!(c["sub"], sa["id"]);
    assert_eq!(
        c["exp"].as_i64(),
        Some(T0 + body["expires_in"].as_i64().unwrap())
    );
}

#[tokio::test]
async fn the_bootstrap_key_is_the_only_credential_of_a_fresh_installation() {
    let app = TestApp::at(T0).await;
    let (status, body) = app.token(&apikey_grant(ADMIN_KEY)).await;
    assert_eq!(status, 200, "{body}");
    let admin = text(&body, "access_token").to_owned();
    let (_, keys) = app.get("/v1/api_keys", &admin).await;
    assert_eq!(keys["api_keys"].as_array().map(Vec::len), Some(1), "{keys}");
}

// ---- more cascades and references ----

#[tokio::test]
async fn deleting_a_profile_takes_its_bindings_and_kills_its_tokens() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let profile = app
        .create(
            &admin,
            "trusted_profiles",
            json!({
                "account_id": account, "name": "ops",
                "identities": [{ "type": "serviceid", "identifier": sa["id"] }],
            }),
        )
        .await;
    let profile_id = text(&profile, "id").to_owned();
    let binding = app
        .bind(
            &json!(format!("iam-{profile_id}")),
            "viewer",
            &format!("account/{account}"),
        )
        .await;
    let access = app.apikey_token(&apikey).await;
    let form = [
        ("grant_type", "urn:ibm:params:oauth:grant-type:assume"),
        ("access_token", access.as_str()),
        ("profile_id", profile_id.as_str()),
    ];
    let (status, body) = app.token(&form).await;
    assert_eq!(status, 200, "{body}");
    let assumed = text(&body, "access_token").to_owned();
    let (status, _) = app
        .delete(&format!("/v1/trusted_profiles/{profile_id}"), &admin)
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .get(
            &format!("/v1/access_bindings/{}", text(&binding, "id")),
            &admin,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/v1/whoami", &assumed).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn deleting_a_policys_source_takes_the_policy() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, _) = app.service_account_with_key(&account, "reader").await;
    let target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:b::");
    let policy = app
        .create(
            &admin,
            "authorization_policies",
            json!({ "source_iam_id": sa["iam_id"], "target_crn": target }),
        )
        .await;
    app.delete_object(&admin, "service_accounts", &sa).await;
    let (status, _) = app
        .get(
            &format!("/v1/authorization_policies/{}", text(&policy, "id")),
            &admin,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn an_enterprise_is_deleted_only_once_it_has_no_accounts() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let enterprise = app
        .create(&admin, "enterprises", json!({ "name": "corp" }))
        .await;
    let account = app
        .create(
            &admin,
            "accounts",
            json!({ "name": "member", "enterprise_id": enterprise["id"] }),
        )
        .await;
    let path = format!("/v1/enterprises/{}", text(&enterprise, "id"));
    expect_code(app.delete(&path, &admin).await, 409, "failed_precondition");
    app.delete_object(&admin, "accounts", &account).await;
    let (status, _) = app.delete(&path, &admin).await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn an_account_cannot_join_an_unknown_enterprise() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let missing = "0123456789abcdef0123456789abcdef";
    expect_code(
        app.post(
            "/v1/accounts",
            &admin,
            json!({ "name": "m", "enterprise_id": missing }),
        )
        .await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn a_user_without_roles_lists_its_own_credentials_only() {
    let (app, account) = TestApp::with_account(T0).await;
    let ann = app.user(&account, "ann").await;
    let bob = app.user(&account, "bob").await;
    for user in [&ann, &bob] {
        let own = app.user_token(user).await;
        app.create(
            &own,
            "api_keys",
            json!({ "owner_iam_id": user["id"], "name": "own" }),
        )
        .await;
    }
    let own = app.user_token(&ann).await;
    let (status, body) = app.get("/v1/api_keys", &own).await;
    assert_eq!(status, 200, "{body}");
    let owners: Vec<&str> = body["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| text(k, "owner_iam_id"))
        .collect();
    assert_eq!(owners, vec![text(&ann, "id")]);
    denied(
        app.get(&format!("/v1/users/{}", text(&bob, "id")), &own)
            .await,
    );
}

#[tokio::test]
async fn an_issuer_update_must_change_something() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let issuer = app
        .create(
            &admin,
            "trusted_issuers",
            json!({ "name": "c", "issuer_url": ISSUER_URL, "jwks": test_jwks() }),
        )
        .await;
    refused(
        app.call(
            Method::PUT,
            &format!("/v1/trusted_issuers/{}", text(&issuer, "id")),
            Some(&admin),
            Some(json!({})),
        )
        .await,
        400,
        "invalid_argument",
        "at least one of",
    );
}

// ---- names chosen in another account do not leak ----

#[tokio::test]
async fn a_stranger_cannot_tell_another_accounts_client_ids_from_missing_ones() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    app.create(
        &admin,
        "clients",
        json!({ "id": "web", "account_id": other }),
    )
    .await;
    let (_, token) = account_admin(&app, &account).await;
    for id in ["web", "nosuch"] {
        for path in [
            format!("/v1/clients/{id}?account_id={other}"),
            format!("/v1/clients/{other}%2F{id}"),
        ] {
            denied(app.get(&path, &token).await);
            denied(app.delete(&path, &token).await);
        }
    }
    // Someone who may see the account is told what is there.
    let (status, _) = app
        .get(&format!("/v1/clients/nosuch?account_id={other}"), &admin)
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/v1/clients/{other}%2Fweb"), &admin).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_stranger_cannot_tell_another_accounts_profile_names_from_free_ones() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    app.create(
        &admin,
        "trusted_profiles",
        json!({ "account_id": other, "name": "ops" }),
    )
    .await;
    let (_, token) = account_admin(&app, &account).await;
    for name in ["ops", "free"] {
        let body = json!({ "account_id": other, "name": name });
        denied(app.post("/v1/trusted_profiles", &token, body).await);
    }
}

#[tokio::test]
async fn a_stranger_cannot_tell_another_accounts_issuer_urls_from_unused_ones() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let other = app.account("other").await;
    let issuer = |url: &str| json!({ "account_id": other, "name": "c", "issuer_url": url, "jwks": test_jwks() });
    app.create(&admin, "trusted_issuers", issuer(ISSUER_URL))
        .await;
    let (_, token) = account_admin(&app, &account).await;
    for url in [ISSUER_URL, "https://unused.unit.example"] {
        denied(app.post("/v1/trusted_issuers", &token, issuer(url)).await);
    }
}

// ---- the rotation timeline, executed as the server's rotation task does ----

/// Runs the rotation plan at the clock's time: the steps taken for JWT keys.
async fn rotate_now(app: &TestApp) -> Vec<tessera_core::rotation::KeyStep> {
    crate::rotation::Rotator::of(&app.state)
        .run_once(app.clock.now())
        .await
        .unwrap()
}

/// Waits until this node's key ring signs JWTs with `kid` (the follower applies the change).
async fn await_signer(app: &TestApp, kid: &str) {
    for _ in 0..2500 {
        let signing = app
            .state
            .snapshot
            .keyring()
            .signer(tessera_core::model::KeyUse::Jwt)
            .map(|s| s.kid().to_owned());
        if signing.as_deref() == Ok(kid) {
            return;
        }
        app.state.snapshot.wake();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the key ring never signed with {kid}");
}

#[tokio::test]
async fn a_successor_signs_after_its_publication_lead_and_its_predecessor_is_dropped_after_retirement(
) {
    use tessera_core::rotation::KeyStep;
    let (app, admin) = TestApp::with_admin(T0).await;
    let old_kid = crate::testkit::kid(&admin);
    let policy = app
        .state
        .config
        .rotation_policy(tessera_core::model::KeyUse::Jwt);
    let (status, body) = app
        .post("/v1/signing_keys/rotate", &admin, json!({ "use": "jwt" }))
        .await;
    assert_eq!(status, 200, "{body}");
    let next = jwt_keys(&signing_keys(&app, &admin).await, "next");
    let new_kid = text(&next[0], "kid").to_owned();

    app.set(T0 + policy.publish_lead - 1).await;
    let promoted = |steps: &[KeyStep]| {
        steps
            .iter()
            .any(|s| matches!(s, KeyStep::Promote { next_kid, .. } if *next_kid == new_kid))
    };
    assert!(!promoted(&rotate_now(&app).await), "not before the lead");
    app.set(T0 + policy.publish_lead).await;
    assert!(promoted(&rotate_now(&app).await), "exactly at the lead");
    await_signer(&app, &new_kid).await;
    assert_eq!(crate::testkit::kid(&app.admin_token().await), new_kid);

    let retired_at = T0 + policy.publish_lead;
    let dropped = |steps: &[KeyStep]| {
        steps
            .iter()
            .any(|s| matches!(s, KeyStep::Delete { kid } if *kid == old_kid))
    };
    app.set(retired_at + policy.retire_after - 1).await;
    assert!(!dropped(&rotate_now(&app).await), "still published");
    app.set(retired_at + policy.retire_after).await;
    assert!(
        dropped(&rotate_now(&app).await),
        "dropped once retired long enough"
    );
}

// ---- containment of the roles an account admin hands out ----

#[tokio::test]
async fn an_account_admin_cannot_make_itself_token_creator_of_a_more_privileged_service_account() {
    let (app, account) = TestApp::with_account(T0).await;
    let boss = app.global_administrator(&account, "boss").await;
    let (me, token) = account_admin(&app, &account).await;
    let body = json!({
        "subject_iam_id": me["iam_id"],
        "role": "iam.serviceAccounts.tokenCreator",
        "resource": format!("service-account/{}", text(&boss, "id")),
    });
    denied(app.post("/v1/access_bindings", &token, body).await);
}

#[tokio::test]
async fn an_account_admin_cannot_cut_off_a_more_privileged_identity() {
    let (app, account) = TestApp::with_account(T0).await;
    let boss = app.global_administrator(&account, "boss").await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post(
            "/v1/token_cutoffs",
            &token,
            json!({ "iam_id": boss["iam_id"] }),
        )
        .await,
    );
}

#[tokio::test]
async fn an_account_admin_cannot_create_keys_or_policies_in_another_account() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (foreign, _) = app.service_account_with_key(&other, "foreign").await;
    let (_, token) = account_admin(&app, &account).await;
    denied(
        app.post(
            "/v1/authorized_keys",
            &token,
            json!({ "service_account_id": foreign["id"] }),
        )
        .await,
    );
    let target = format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{other}:b::");
    denied(
        app.post(
            "/v1/authorization_policies",
            &token,
            json!({ "source_iam_id": foreign["iam_id"], "target_crn": target }),
        )
        .await,
    );
}

#[tokio::test]
async fn an_account_admin_cannot_switch_its_issuer_to_a_key_file() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let issuer = app
        .create(
            &admin,
            "trusted_issuers",
            json!({ "account_id": account, "name": "c", "issuer_url": ISSUER_URL, "jwks": test_jwks() }),
        )
        .await;
    let (_, token) = account_admin(&app, &account).await;
    refused(
        app.call(
            Method::PUT,
            &format!("/v1/trusted_issuers/{}", text(&issuer, "id")),
            Some(&token),
            Some(json!({ "jwks_file": "/etc/passwd" })),
        )
        .await,
        403,
        "permission_denied",
        "jwks_file",
    );
}

#[tokio::test]
async fn deleting_a_user_takes_its_oauth_tokens_and_factor() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let oauth = app
        .create(&own, "oauth_tokens", json!({ "user_id": user["id"] }))
        .await;
    enrol(&app, &user, &own).await;
    app.delete_object(&admin, "users", &user).await;
    let (status, _) = app
        .get(&format!("/v1/oauth_tokens/{}", text(&oauth, "id")), &admin)
        .await;
    assert_eq!(status, 404);
    let factor = app
        .state
        .store
        .find(tessera_core::directory::EntityKind::Totp, text(&user, "id"))
        .await
        .unwrap();
    assert!(factor.is_none());
}
