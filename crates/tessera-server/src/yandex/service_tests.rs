//! The Yandex token calls at a fixed clock, over REST and gRPC (the generated client driving
//! the application router, no socket): `Create` with a service-account JWT and with a user's
//! OAuth token, and `CreateForServiceAccount`; the `t1.` token's subject, account and expiry,
//! and the refusals (wrong secret, expired JWT, a caller without the role).

use super::proto::iam::create_iam_token_request::Identity;
use super::proto::iam::iam_token_service_client::IamTokenServiceClient;
use super::proto::iam::{CreateIamTokenForServiceAccountRequest, CreateIamTokenRequest};
use crate::testkit::TestApp;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RsaKeyPair, RSA_PSS_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use tessera_core::service_account_jwt::CANONICAL_AUDIENCE;
use tonic::Code;

const T0: i64 = 1_800_000_000;
/// The default lifetime of a `t1.` token (12 hours).
const IAM_LIFETIME: i64 = 43_200;
const TOKEN_CREATOR: &str = "iam.serviceAccounts.tokenCreator";

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_default()
}

/// The REST error's gRPC code (`google.rpc.Status.code`).
fn rest_code(body: &Value) -> i64 {
    body["code"].as_i64().unwrap_or(-1)
}

fn grpc(app: &TestApp) -> IamTokenServiceClient<axum::Router> {
    IamTokenServiceClient::new(app.router())
}

fn with_bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// Asserts that `token` is a valid `t1.` token of `iam_id` in `account`, minted at `T0` for the
/// whole IAM-token lifetime.
fn assert_iam_token(app: &TestApp, token: &str, iam_id: &Value, account: &str) {
    assert!(token.starts_with("t1."), "{token}");
    let verified = app
        .state
        .verify_access_token(token, app.clock.now())
        .unwrap();
    assert_eq!(Some(verified.iam_id()), iam_id.as_str());
    assert_eq!(verified.account_id(), account);
    assert_eq!(verified.exp(), T0 + IAM_LIFETIME);
}

/// `POST /iam/v1/tokens` (no caller token) with `body`.
async fn create_rest(app: &TestApp, body: Value) -> (u16, Value) {
    app.call(axum::http::Method::POST, "/iam/v1/tokens", None, Some(body))
        .await
}

/// `POST /iam/v1/tokens:createForServiceAccount` for `target` as `token`.
async fn create_for_service_account_rest(
    app: &TestApp,
    token: &str,
    target: &Value,
) -> (u16, Value) {
    app.post(
        "/iam/v1/tokens:createForServiceAccount",
        token,
        json!({ "serviceAccountId": target["id"] }),
    )
    .await
}

/// An authorized key of `sa`: its id and private half.
async fn authorized_key(app: &TestApp, sa: &Value) -> (String, RsaKeyPair) {
    let admin = app.admin_token().await;
    let created = app.authorized_key_of(&admin, sa).await;
    let pem = text(&created["key_file"], "private_key");
    let der = tessera_core::service_account_jwt::pem_decode("PRIVATE KEY", pem).unwrap();
    (
        text(&created, "id").to_owned(),
        RsaKeyPair::from_pkcs8(&der).unwrap(),
    )
}

/// A service account `robot` of `account` with an authorized key: the account's view, the
/// key's id and private half.
async fn robot_with_key(app: &TestApp, account: &str) -> (Value, String, RsaKeyPair) {
    let (sa, _) = app.service_account_with_key(account, "robot").await;
    let (kid, key) = authorized_key(app, &sa).await;
    (sa, kid, key)
}

/// `Create` with a service-account JWT.
fn jwt_request(jwt: String) -> CreateIamTokenRequest {
    CreateIamTokenRequest {
        identity: Some(Identity::Jwt(jwt)),
    }
}

/// The JWT the SDKs build: PS256 with `kid`, `iss` = the service account, issued at `iat` for
/// an hour.
fn sdk_jwt(kid: &str, key: &RsaKeyPair, sa: &Value, iat: i64) -> String {
    let claims =
        json!({ "iss": sa["id"], "aud": CANONICAL_AUDIENCE, "iat": iat, "exp": iat + 3600 });
    signed_jwt(kid, key, &claims)
}

/// A PS256 JWT of `claims` naming authorized key `kid`.
fn signed_jwt(kid: &str, key: &RsaKeyPair, claims: &Value) -> String {
    let header = json!({ "alg": "PS256", "typ": "JWT", "kid": kid });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &RSA_PSS_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A user of a new account and an OAuth token it made for itself.
async fn user_with_oauth_token(app: &TestApp) -> (Value, String, String) {
    let account = app.account("acme").await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let created = app
        .create(&own, "oauth_tokens", json!({ "user_id": user["id"] }))
        .await;
    (user, account, text(&created, "token").to_owned())
}

// ---- Create with a service-account JWT ----

#[tokio::test]
async fn create_with_a_jwt_gives_the_service_account_a_t1_token_over_rest() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, kid, key) = robot_with_key(&app, &account).await;
    let jwt = sdk_jwt(&kid, &key, &sa, T0);
    let (status, body) = create_rest(&app, json!({ "jwt": jwt })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["expiresAt"],
        crate::rfc3339::from_unix(T0 + IAM_LIFETIME).as_str()
    );
    assert_iam_token(&app, text(&body, "iamToken"), &sa["iam_id"], &account);
}

#[tokio::test]
async fn create_with_a_jwt_gives_the_service_account_a_t1_token_over_grpc() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, kid, key) = robot_with_key(&app, &account).await;
    let request = jwt_request(sdk_jwt(&kid, &key, &sa, T0));
    let minted = grpc(&app).create(request).await.unwrap().into_inner();
    assert_eq!(
        minted.expires_at.map(|t| t.seconds),
        Some(T0 + IAM_LIFETIME)
    );
    assert_iam_token(&app, &minted.iam_token, &sa["iam_id"], &account);
}

#[tokio::test]
async fn create_refuses_a_jwt_that_expired_at_the_clock() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, kid, key) = robot_with_key(&app, &account).await;
    // Issued two hours ago for one hour.
    let request = jwt_request(sdk_jwt(&kid, &key, &sa, T0 - 7200));
    let status = grpc(&app).create(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn create_refuses_a_jwt_signed_with_another_key() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, _) = app.service_account_with_key(&account, "robot").await;
    let (kid, _) = authorized_key(&app, &sa).await;
    let (_, other_key) = authorized_key(&app, &sa).await;
    let jwt = sdk_jwt(&kid, &other_key, &sa, T0);
    let (status, body) = create_rest(&app, json!({ "jwt": jwt })).await;
    assert_eq!((status, rest_code(&body)), (401, 16), "{body}");
}

#[tokio::test]
async fn create_refuses_a_jwt_whose_key_was_deleted() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, kid, key) = robot_with_key(&app, &account).await;
    let (status, _) = app
        .delete(&format!("/v1/authorized_keys/{kid}"), &admin)
        .await;
    assert_eq!(status, 204);
    let request = jwt_request(sdk_jwt(&kid, &key, &sa, T0));
    let status = grpc(&app).create(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn create_takes_exactly_one_identity() {
    let app = TestApp::at(T0).await;
    let both = json!({ "jwt": "a.b.c", "yandexPassportOauthToken": "y0_x" });
    for body in [json!({}), both] {
        let (status, answer) = create_rest(&app, body).await;
        assert_eq!((status, rest_code(&answer)), (400, 3), "{answer}");
        assert!(text(&answer, "message").contains("identity"), "{answer}");
    }
}

// ---- Create with an OAuth token ----

#[tokio::test]
async fn create_with_an_oauth_token_gives_the_user_a_t1_token() {
    let app = TestApp::at(T0).await;
    let (user, account, oauth) = user_with_oauth_token(&app).await;
    let (status, body) = create_rest(&app, json!({ "yandexPassportOauthToken": oauth })).await;
    assert_eq!(status, 200, "{body}");
    assert_iam_token(&app, text(&body, "iamToken"), &user["id"], &account);
    // The same over gRPC.
    let request = CreateIamTokenRequest {
        identity: Some(Identity::YandexPassportOauthToken(oauth)),
    };
    let minted = grpc(&app).create(request).await.unwrap().into_inner();
    assert_iam_token(&app, &minted.iam_token, &user["id"], &account);
}

#[tokio::test]
async fn create_refuses_an_unknown_oauth_token() {
    let app = TestApp::at(T0).await;
    let request = CreateIamTokenRequest {
        identity: Some(Identity::YandexPassportOauthToken(
            "y0_not-a-token-0123456789".into(),
        )),
    };
    let status = grpc(&app).create(request).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn create_refuses_a_deleted_oauth_token_at_once() {
    let app = TestApp::at(T0).await;
    let (user, _, oauth) = user_with_oauth_token(&app).await;
    let own = app.user_token(&user).await;
    let (_, listed) = app
        .get(
            &format!("/v1/oauth_tokens?user_id={}", text(&user, "id")),
            &own,
        )
        .await;
    app.delete_object(&own, "oauth_tokens", &listed["oauth_tokens"][0])
        .await;
    let (status, body) = create_rest(&app, json!({ "yandexPassportOauthToken": oauth })).await;
    assert_eq!((status, rest_code(&body)), (401, 16), "{body}");
}

// ---- CreateForServiceAccount ----

#[tokio::test]
async fn create_for_service_account_needs_the_token_creator_role() {
    let (app, account) = TestApp::with_account(T0).await;
    let (target, _) = app.service_account_with_key(&account, "target").await;
    let (caller_sa, caller) = app.service_account_token(&account, "caller").await;
    let request = || {
        with_bearer(
            CreateIamTokenForServiceAccountRequest {
                service_account_id: text(&target, "id").to_owned(),
            },
            &caller,
        )
    };
    let status = grpc(&app)
        .create_for_service_account(request())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("tokenCreator"), "{status:?}");

    let resource = format!("service-account/{}", text(&target, "id"));
    app.bind(&caller_sa["iam_id"], TOKEN_CREATOR, &resource)
        .await;
    let minted = grpc(&app)
        .create_for_service_account(request())
        .await
        .unwrap()
        .into_inner();
    assert_iam_token(&app, &minted.iam_token, &target["iam_id"], &account);
}

#[tokio::test]
async fn create_for_service_account_refuses_a_service_account_of_another_account() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (foreign, _) = app.service_account_with_key(&other, "foreign").await;
    // Token creator on its own account does not reach another account's service accounts.
    let (_, caller) = app.holder_of(&account, TOKEN_CREATOR, "caller").await;
    let (status, body) = create_for_service_account_rest(&app, &caller, &foreign).await;
    assert_eq!((status, rest_code(&body)), (403, 7), "{body}");
}

#[tokio::test]
async fn create_for_service_account_refuses_an_expired_caller_token() {
    let (app, account) = TestApp::with_account(T0).await;
    let (target, _) = app.service_account_with_key(&account, "target").await;
    let admin = app.admin_token().await;
    app.set(T0 + 3600 + tessera_verify::LEEWAY).await;
    let (status, body) = create_for_service_account_rest(&app, &admin, &target).await;
    assert_eq!((status, rest_code(&body)), (401, 16), "{body}");
    assert!(
        text(&body, "message").contains("caller token rejected"),
        "{body}"
    );
}

#[tokio::test]
async fn a_t1_token_dies_with_the_caller_it_was_minted_by() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (target, _) = app.service_account_with_key(&account, "target").await;
    let (caller_sa, caller) = app.holder_of(&account, TOKEN_CREATOR, "caller").await;
    let (status, body) = create_for_service_account_rest(&app, &caller, &target).await;
    assert_eq!(status, 200, "{body}");
    let minted = text(&body, "iamToken").to_owned();
    app.delete_object(&admin, "service_accounts", &caller_sa)
        .await;
    assert!(app
        .state
        .verify_access_token(&minted, app.clock.now())
        .is_err());
}

// ---- Revoke and ServiceAccountService/Get ----

/// A `t1.` token of a new service account of `account`, minted by the administrator.
async fn t1_of_new_service_account(app: &TestApp, account: &str) -> (Value, String) {
    let admin = app.admin_token().await;
    let (sa, _) = app.service_account_with_key(account, "robot").await;
    let (status, body) = create_for_service_account_rest(app, &admin, &sa).await;
    assert_eq!(status, 200, "{body}");
    (sa, text(&body, "iamToken").to_owned())
}

#[tokio::test]
async fn a_caller_revokes_its_own_t1_token_and_it_stops_working_at_once() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, t1) = t1_of_new_service_account(&app, &account).await;
    let (status, body) = app
        .post("/iam/v1/tokens:revoke", &t1, json!({ "iamToken": t1 }))
        .await;
    assert_eq!(
        (status, text(&body, "subjectId")),
        (200, text(&sa, "id")),
        "{body}"
    );
    assert!(app.state.verify_access_token(&t1, app.clock.now()).is_err());
}

#[tokio::test]
async fn a_stranger_cannot_revoke_another_accounts_token() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, t1) = t1_of_new_service_account(&app, &account).await;
    let (_, stranger) = app.service_account_token(&other, "stranger").await;
    let (status, body) = app
        .post(
            "/iam/v1/tokens:revoke",
            &stranger,
            json!({ "iamToken": t1 }),
        )
        .await;
    assert_eq!((status, rest_code(&body)), (403, 7), "{body}");
    assert!(app.state.verify_access_token(&t1, app.clock.now()).is_ok());
}

#[tokio::test]
async fn a_service_account_is_readable_by_itself_and_not_by_a_stranger() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (sa, t1) = t1_of_new_service_account(&app, &account).await;
    let path = format!("/iam/v1/serviceAccounts/{}", text(&sa, "id"));
    let (status, body) = app.get(&path, &t1).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["folderId"], account.as_str());
    assert_eq!(body["createdAt"], crate::rfc3339::from_unix(T0).as_str());
    let (_, stranger) = app.service_account_token(&other, "stranger").await;
    let (status, body) = app.get(&path, &stranger).await;
    assert_eq!((status, rest_code(&body)), (403, 7), "{body}");
}

#[tokio::test]
async fn create_refuses_a_jwt_whose_claims_do_not_fit_its_key() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, _) = app.service_account_with_key(&account, "robot").await;
    let (other, _) = app.service_account_with_key(&account, "other").await;
    let (kid, key) = authorized_key(&app, &sa).await;
    let cases = [
        // Another service account's id with this one's key.
        json!({ "iss": other["id"], "aud": CANONICAL_AUDIENCE, "iat": T0, "exp": T0 + 3600 }),
        json!({ "iss": sa["id"], "aud": "https://elsewhere.example", "iat": T0, "exp": T0 + 3600 }),
        // Longer than the hour a JWT may live.
        json!({ "iss": sa["id"], "aud": CANONICAL_AUDIENCE, "iat": T0, "exp": T0 + 7200 }),
        // Not yet valid at the clock.
        json!({ "iss": sa["id"], "aud": CANONICAL_AUDIENCE, "iat": T0 + 600, "exp": T0 + 1200 }),
    ];
    for claims in cases {
        let jwt = signed_jwt(&kid, &key, &claims);
        let (status, body) = create_rest(&app, json!({ "jwt": jwt })).await;
        assert_eq!((status, rest_code(&body)), (401, 16), "{claims}: {body}");
    }
}
