//! Every grant of `POST /identity/token` at a fixed clock: the token it issues (subject,
//! account, `exp` = now + lifetime) and the refusals that guard it (wrong secret, expired
//! credential, another tenant's object, a caller the object does not trust).

use super::grant::{
    GRANT_ASSUME, GRANT_CR_TOKEN, GRANT_DELEGATED_REFRESH, GRANT_IAM_AUTHZ, GRANT_PASSWORD,
    GRANT_REFRESH,
};
use crate::testkit::{
    claims, ibm_code, TestApp, ADMIN_KEY, APIKEY_GRANT, LOGIN_CLIENT, USER_PASSWORD,
};
use serde_json::{json, Value};
use std::time::Duration;
use tessera_core::jose::{generate_pkcs8, SigningKey};
use tessera_core::model::Algorithm;
use tessera_core::totp::{self, TotpSecret};

const T0: i64 = 1_800_000_000;
/// The default access-token lifetime.
const HOUR: i64 = 3600;
/// The default refresh-token lifetime (30 days).
const REFRESH_LIFETIME: i64 = 2_592_000;

fn text<'a>(body: &'a Value, field: &str) -> &'a str {
    body[field].as_str().unwrap_or_default()
}

/// Asserts an IBM refusal: status, `errorCode`, and a word of the message.
fn refused((status, body): (u16, Value), http: u16, code: &str, needle: &str) {
    assert_eq!((status, ibm_code(&body)), (http, code), "{body}");
    let message = text(&body, "errorMessage");
    assert!(
        message.contains(needle),
        "{message:?} should mention {needle:?}"
    );
}

/// A second confidential client, global, with its secret.
async fn client(app: &TestApp, id: &str) -> (String, String) {
    let admin = app.admin_token().await;
    let created = app.create(&admin, "clients", json!({ "id": id })).await;
    (id.to_owned(), text(&created, "secret").to_owned())
}

// ---- apikey ----

#[tokio::test]
async fn apikey_grant_issues_an_hour_for_the_key_owner_with_a_refresh_token() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "worker").await;
    let (status, body) = app
        .token(&[("grant_type", APIKEY_GRANT), ("apikey", &apikey)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expiration"], T0 + HOUR);
    assert_eq!(body["expires_in"], HOUR);
    assert!(body["refresh_token"].is_string(), "{body}");
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["iam_id"], sa["iam_id"]);
    assert_eq!(c["sub"], sa["id"]);
    assert_eq!(c["account"]["bss"], account.as_str());
    assert_eq!(
        (c["iat"].as_i64(), c["exp"].as_i64()),
        (Some(T0), Some(T0 + HOUR))
    );
    assert_eq!(c["grant_type"], APIKEY_GRANT);
}

#[tokio::test]
async fn apikey_grant_refuses_an_unknown_key() {
    let app = TestApp::at(T0).await;
    refused(
        app.token(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", "not-a-key-0123456789"),
        ])
        .await,
        400,
        "BXNIM0415E",
        "could not be found",
    );
}

#[tokio::test]
async fn apikey_grant_refuses_a_deleted_key_on_the_next_request() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.admin_account().await;
    let (sa, apikey) = app.service_account_with_key(&account, "gone").await;
    app.apikey_token(&apikey).await;
    app.delete_api_key_of(&admin, &sa).await;
    refused(
        app.token(&[("grant_type", APIKEY_GRANT), ("apikey", &apikey)])
            .await,
        400,
        "BXNIM0415E",
        "could not be found",
    );
}

#[tokio::test]
async fn apikey_grant_refuses_a_tenant_pin_on_another_account() {
    let app = TestApp::at(T0).await;
    let other = app.account("other").await;
    let pin = [("IBM-Cloud-Tenant", other.as_str())];
    let form = [("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)];
    refused(
        app.token_with(None, &pin, &form).await,
        400,
        "BXNIM0513E",
        "IBM-Cloud-Tenant",
    );
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let app = TestApp::at(T0).await;
    refused(
        app.token(&[("grant_type", "client_credentials")]).await,
        400,
        "BXNIM0103E",
        "not supported",
    );
}

// ---- refresh_token ----

/// An API-key token issued to [`LOGIN_CLIENT`]: its refresh token.
async fn refresh_token_of_login_client(app: &TestApp) -> String {
    let (id, secret) = app.login_client().await;
    let form = [("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)];
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!(status, 200, "{body}");
    text(&body, "refresh_token").to_owned()
}

#[tokio::test]
async fn refresh_grant_issues_a_fresh_hour_from_the_time_of_the_refresh() {
    let app = TestApp::at(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    app.advance(Duration::from_secs(7200)).await;
    let (id, secret) = app.login_client().await;
    let form = [("grant_type", GRANT_REFRESH), ("refresh_token", &refresh)];
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expiration"], T0 + 7200 + HOUR);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["client_id"], LOGIN_CLIENT);
    assert_eq!(c["grant_type"], GRANT_REFRESH);
    assert!(
        body["refresh_token"].is_string(),
        "a rotated refresh token: {body}"
    );
}

#[tokio::test]
async fn refresh_grant_needs_the_client_the_token_was_issued_to() {
    let app = TestApp::at(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", refresh.as_str()),
    ];
    refused(app.token(&form).await, 400, "BXNIM0308E", "authorization");
    let (other, secret) = client(&app, "other-client").await;
    let (status, body) = app.token_as(Some((&other, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

#[tokio::test]
async fn refresh_grant_refuses_a_wrong_client_secret() {
    let app = TestApp::at(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, body) = app
        .token_as(Some((LOGIN_CLIENT, "wrong-secret")), &form)
        .await;
    assert_eq!((status, ibm_code(&body)), (401, "BXNIM0301E"), "{body}");
}

#[tokio::test]
async fn a_refresh_token_expires_after_its_lifetime() {
    let app = TestApp::at(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    let (id, secret) = app.login_client().await;
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", refresh.as_str()),
    ];
    app.set(T0 + REFRESH_LIFETIME - 1).await;
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!(status, 200, "the last second: {body}");
    app.set(T0 + REFRESH_LIFETIME + 1).await;
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

// ---- password (+ TOTP) ----

#[tokio::test]
async fn password_grant_signs_a_user_in_with_one_factor() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let (status, body) = app
        .password_grant(text(&user, "id"), USER_PASSWORD, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expiration"], T0 + HOUR);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["sub"], user["id"]);
    assert_eq!(c["account"]["bss"], account.as_str());
    assert_eq!(
        (c["acr"].as_i64(), c["amr"].clone()),
        (Some(1), json!(["pwd"]))
    );
    assert_eq!(c["grant_type"], GRANT_PASSWORD);
}

#[tokio::test]
async fn password_grant_refuses_a_wrong_password_and_an_unknown_user_alike() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let wrong = app
        .password_grant(text(&user, "id"), "not-the-password", &[])
        .await;
    let unknown = app
        .password_grant("nobody@unit.example", USER_PASSWORD, &[])
        .await;
    for answer in [&wrong, &unknown] {
        refused(answer.clone(), 400, "BXNIM0602E", "incorrect");
    }
    assert_eq!(wrong.1["errorMessage"], unknown.1["errorMessage"]);
}

#[tokio::test]
async fn password_grant_needs_client_authentication() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let form = [
        ("grant_type", GRANT_PASSWORD),
        ("username", text(&user, "id")),
        ("password", USER_PASSWORD),
    ];
    refused(app.token(&form).await, 400, "BXNIM0308E", "authorization");
}

/// Enrols and confirms a TOTP factor for `user` (as the user, at the clock's time): its secret.
async fn confirmed_factor(app: &TestApp, user: &Value) -> TotpSecret {
    let own = app.user_token(user).await;
    let id = text(user, "id");
    let (status, enrolled) = app
        .post(&format!("/v1/users/{id}/totp"), &own, json!({}))
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let bytes = totp::base32_decode(text(&enrolled, "secret")).unwrap();
    let secret = TotpSecret::from_bytes(bytes);
    let code = totp::code_at(&secret, app.clock.now());
    let (status, body) = app
        .post(
            &format!("/v1/users/{id}/totp/confirm"),
            &own,
            json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    secret
}

#[tokio::test]
async fn password_grant_with_a_confirmed_factor_needs_the_current_code_once() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let secret = confirmed_factor(&app, &user).await;
    let id = text(&user, "id");
    refused(
        app.password_grant(id, USER_PASSWORD, &[]).await,
        400,
        "BXNIM0407E",
        "otp",
    );
    // The confirming code's step is used up; the next step's code signs in, once.
    app.advance(Duration::from_secs(30)).await;
    let code = totp::code_at(&secret, app.clock.now());
    let (status, body) = app
        .password_grant(id, USER_PASSWORD, &[("otp", &code)])
        .await;
    assert_eq!(status, 200, "{body}");
    let c = claims(text(&body, "access_token"));
    assert_eq!(
        (c["acr"].as_i64(), c["amr"].clone()),
        (Some(2), json!(["pwd", "otp"]))
    );
    assert_eq!(c["exp"].as_i64(), Some(app.clock.now() + HOUR));
    refused(
        app.password_grant(id, USER_PASSWORD, &[("otp", &code)])
            .await,
        400,
        "BXNIM0407E",
        "already been used",
    );
}

#[tokio::test]
async fn password_grant_refuses_a_code_two_steps_old() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let secret = confirmed_factor(&app, &user).await;
    app.advance(Duration::from_secs(30)).await;
    let stale = totp::code_at(&secret, app.clock.now());
    // One step of skew is allowed; two are not.
    app.advance(Duration::from_secs(60)).await;
    refused(
        app.password_grant(text(&user, "id"), USER_PASSWORD, &[("otp", &stale)])
            .await,
        400,
        "BXNIM0407E",
        "wrong or expired",
    );
}

#[tokio::test]
async fn password_grant_in_an_account_requiring_totp_refuses_a_user_without_a_factor() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.account("strict").await;
    let user = app.user(&account, "ann").await;
    let (status, body) = app
        .call(
            axum::http::Method::PATCH,
            &format!("/v1/accounts/{account}"),
            Some(&admin),
            Some(json!({ "mfa": "TOTP" })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    refused(
        app.password_grant(text(&user, "id"), USER_PASSWORD, &[])
            .await,
        400,
        "BXNIM0407E",
        "enrol",
    );
}

// ---- assume (trusted profile) ----

/// A profile in `account` trusting service account `trusted` (by id).
async fn profile_trusting(app: &TestApp, account: &str, trusted: &Value) -> String {
    let admin = app.admin_token().await;
    let profile = app
        .create(
            &admin,
            "trusted_profiles",
            json!({
                "account_id": account,
                "name": "builders",
                "identities": [{ "type": "serviceid", "identifier": trusted["id"] }],
            }),
        )
        .await;
    text(&profile, "id").to_owned()
}

/// The form of an assume grant: `access` asks for a token of `profile`.
fn assume_form<'a>(access: &'a str, profile: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("grant_type", GRANT_ASSUME),
        ("access_token", access),
        ("profile_id", profile),
    ]
}

#[tokio::test]
async fn assume_grant_gives_a_trusted_identity_a_profile_token_without_refresh() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let profile = profile_trusting(&app, &account, &sa).await;
    let access = app.apikey_token(&apikey).await;
    app.advance(Duration::from_secs(10)).await;
    let form = assume_form(&access, &profile);
    let (status, body) = app.token(&form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expiration"], T0 + 10 + HOUR);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["sub_type"], "Profile");
    assert_eq!(c["iam_id"], format!("iam-{profile}"));
    assert_eq!(c["account"]["bss"], account.as_str());
    assert_eq!(c["authn"]["iam_id"], sa["iam_id"]);
}

#[tokio::test]
async fn assume_grant_refuses_an_identity_the_profile_does_not_trust() {
    let (app, account) = TestApp::with_account(T0).await;
    let (trusted, _) = app.service_account_with_key(&account, "ci").await;
    let (_, stranger_key) = app.service_account_with_key(&account, "stranger").await;
    let profile = profile_trusting(&app, &account, &trusted).await;
    let stranger = app.apikey_token(&stranger_key).await;
    let form = assume_form(&stranger, &profile);
    refused(
        app.token(&form).await,
        400,
        "BXNIM0407E",
        "is not a trusted identity",
    );
}

#[tokio::test]
async fn assume_grant_refuses_an_expired_access_token() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let profile = profile_trusting(&app, &account, &sa).await;
    let access = app.apikey_token(&apikey).await;
    app.set(T0 + HOUR + tessera_verify::LEEWAY).await;
    let form = assume_form(&access, &profile);
    refused(
        app.token(&form).await,
        400,
        "BXNIM0407E",
        "The access_token is not valid",
    );
}

#[tokio::test]
async fn assume_grant_refuses_a_tenant_pin_on_another_account_than_the_profiles() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let profile = profile_trusting(&app, &account, &sa).await;
    let access = app.apikey_token(&apikey).await;
    let form = assume_form(&access, &profile);
    refused(
        app.token_with(None, &[("IBM-Cloud-Tenant", other.as_str())], &form)
            .await,
        400,
        "BXNIM0513E",
        "IBM-Cloud-Tenant",
    );
}

// ---- cr-token ----

const ISSUER_URL: &str = "https://k8s.unit.example/cluster-1";

/// A trusted issuer in `account` with a fresh key, and a profile linked to `prod/billing`.
async fn cluster(app: &TestApp, account: &str) -> (SigningKey, String) {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
    let key = SigningKey::from_pkcs8("k8s-1", Algorithm::Es256, &pkcs8).unwrap();
    let admin = app.admin_token().await;
    let issuer = app
        .create(
            &admin,
            "trusted_issuers",
            json!({
                "account_id": account,
                "name": "cluster-1",
                "issuer_url": ISSUER_URL,
                "jwks": { "keys": [key.public_jwk()] },
            }),
        )
        .await;
    let link = json!({
        "cr_type": "IKS_SA", "crn": issuer["crn"], "namespace": "prod", "name": "billing",
    });
    let profile = app
        .create(
            &admin,
            "trusted_profiles",
            json!({ "account_id": account, "name": "billing", "links": [link] }),
        )
        .await;
    (key, text(&profile, "id").to_owned())
}

/// A projected service-account token of `prod/billing`, issued at `iat` for an hour.
fn cr_token(key: &SigningKey, iat: i64) -> String {
    let claims = json!({
        "iss": ISSUER_URL,
        "sub": "system:serviceaccount:prod:billing",
        "aud": ["iam"],
        "iat": iat, "nbf": iat, "exp": iat + HOUR,
        "kubernetes.io": {
            "namespace": "prod",
            "serviceaccount": { "name": "billing", "uid": "0b5c" },
        },
    });
    let rng = aws_lc_rs::rand::SystemRandom::new();
    key.sign_jws(claims.to_string().as_bytes(), &rng).unwrap()
}

#[tokio::test]
async fn cr_token_grant_gives_a_linked_workload_its_profile_token() {
    let (app, account) = TestApp::with_account(T0).await;
    let (key, profile) = cluster(&app, &account).await;
    let token = cr_token(&key, T0);
    let (status, body) = app
        .token(&[("grant_type", GRANT_CR_TOKEN), ("cr_token", &token)])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expiration"], T0 + HOUR);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["iam_id"], format!("iam-{profile}"));
    assert_eq!(c["account"]["bss"], account.as_str());
    assert_eq!(c["authn"]["sub"], "system:serviceaccount:prod:billing");
    assert_eq!(c["authn"]["sub_type"], "CR");
}

#[tokio::test]
async fn cr_token_grant_refuses_a_token_expired_at_the_clock() {
    let (app, account) = TestApp::with_account(T0).await;
    let (key, _) = cluster(&app, &account).await;
    // Issued two hours ago for one hour: past its expiry and the leeway.
    let token = cr_token(&key, T0 - 2 * HOUR);
    refused(
        app.token(&[("grant_type", GRANT_CR_TOKEN), ("cr_token", &token)])
            .await,
        400,
        "BXNIM0407E",
        "expired",
    );
}

#[tokio::test]
async fn cr_token_grant_refuses_a_key_the_issuer_does_not_publish() {
    let (app, account) = TestApp::with_account(T0).await;
    cluster(&app, &account).await;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
    let forger = SigningKey::from_pkcs8("k8s-1", Algorithm::Es256, &pkcs8).unwrap();
    let token = cr_token(&forger, T0);
    refused(
        app.token(&[("grant_type", GRANT_CR_TOKEN), ("cr_token", &token)])
            .await,
        400,
        "BXNIM0407E",
        "signature",
    );
}

#[tokio::test]
async fn cr_token_grant_refuses_a_profile_of_another_account() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (key, _) = cluster(&app, &account).await;
    let (sa, _) = app.service_account_with_key(&other, "x").await;
    let foreign = profile_trusting(&app, &other, &sa).await;
    let token = cr_token(&key, T0);
    let form = [
        ("grant_type", GRANT_CR_TOKEN),
        ("cr_token", token.as_str()),
        ("profile_id", foreign.as_str()),
    ];
    refused(
        app.token(&form).await,
        400,
        "BXNIM0109E",
        "No trusted profile",
    );
}

// ---- iam-authz ----

fn bucket(account: &str, instance: &str) -> String {
    format!("crn:v1:bluemix:public:cloud-object-storage:global:a/{account}:{instance}::")
}

/// A service account of `account` with a policy on `bucket(account, "b1")`: its token.
async fn policy_holder(app: &TestApp, account: &str) -> (Value, String) {
    let admin = app.admin_token().await;
    let (sa, apikey) = app.service_account_with_key(account, "reader").await;
    app.create(
        &admin,
        "authorization_policies",
        json!({ "source_iam_id": sa["iam_id"], "target_crn": bucket(account, "b1") }),
    )
    .await;
    let access = app.apikey_token(&apikey).await;
    (sa, access)
}

#[tokio::test]
async fn iam_authz_grant_gives_a_resource_identity_for_half_an_hour() {
    let (app, account) = TestApp::with_account(T0).await;
    let (sa, access) = policy_holder(&app, &account).await;
    let desired = format!("crn-{}", bucket(&account, "b1"));
    let form = [
        ("grant_type", GRANT_IAM_AUTHZ),
        ("access_token", access.as_str()),
        ("desired_iam_id", desired.as_str()),
    ];
    let (status, body) = app.token(&form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expiration"], T0 + super::authz::CRN_TOKEN_LIFETIME);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["sub_type"], "CRN");
    assert_eq!(c["iam_id"], desired.as_str());
    assert_eq!(c["account"]["bss"], account.as_str());
    assert_eq!(c["authn"]["iam_id"], sa["iam_id"]);
}

#[tokio::test]
async fn iam_authz_grant_refuses_a_resource_no_policy_covers() {
    let (app, account, other) = TestApp::with_accounts(T0).await;
    let (_, access) = policy_holder(&app, &account).await;
    for target in [bucket(&account, "b2"), bucket(&other, "b1")] {
        let desired = format!("crn-{target}");
        let form = [
            ("grant_type", GRANT_IAM_AUTHZ),
            ("access_token", access.as_str()),
            ("desired_iam_id", desired.as_str()),
        ];
        let (status, body) = app.token(&form).await;
        assert_eq!(status, 400, "{target}: {body}");
        assert!(body.get("access_token").is_none());
    }
}

#[tokio::test]
async fn iam_authz_grant_refuses_an_expired_caller_token() {
    let (app, account) = TestApp::with_account(T0).await;
    let (_, access) = policy_holder(&app, &account).await;
    app.set(T0 + HOUR + tessera_verify::LEEWAY).await;
    let desired = format!("crn-{}", bucket(&account, "b1"));
    let form = [
        ("grant_type", GRANT_IAM_AUTHZ),
        ("access_token", access.as_str()),
        ("desired_iam_id", desired.as_str()),
    ];
    refused(
        app.token(&form).await,
        400,
        "BXNIM0407E",
        "access_token is not usable",
    );
}

// ---- delegated refresh token ----

/// A delegated refresh token of the administrator's API key for receiver `receiver`, living
/// `lifetime` seconds.
async fn delegated_refresh_token(app: &TestApp, receiver: &str, lifetime: i64) -> Value {
    let lifetime = lifetime.to_string();
    let (status, body) = app
        .token(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", ADMIN_KEY),
            ("response_type", "delegated_refresh_token"),
            ("receiver_client_ids", receiver),
            ("delegated_refresh_token_expiry", &lifetime),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn delegated_refresh_grant_gives_the_receiver_an_access_token_only() {
    let app = TestApp::at(T0).await;
    let (receiver, secret) = client(&app, "receiver").await;
    let issued = delegated_refresh_token(&app, &receiver, 600).await;
    assert!(issued.get("access_token").is_none(), "{issued}");
    assert_eq!(issued["expiration"], T0 + 600);
    let drt = text(&issued, "delegated_refresh_token");
    app.advance(Duration::from_secs(60)).await;
    let form = [
        ("grant_type", GRANT_DELEGATED_REFRESH),
        ("refresh_token", drt),
    ];
    let (status, body) = app.token_as(Some((&receiver, &secret)), &form).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(body["expiration"], T0 + 60 + HOUR);
    let c = claims(text(&body, "access_token"));
    assert_eq!(c["client_id"], receiver.as_str());
    assert_eq!(c["grant_type"], GRANT_DELEGATED_REFRESH);
}

#[tokio::test]
async fn delegated_refresh_grant_refuses_a_client_that_is_not_a_receiver() {
    let app = TestApp::at(T0).await;
    let (receiver, _) = client(&app, "receiver").await;
    let (bystander, secret) = client(&app, "bystander").await;
    let issued = delegated_refresh_token(&app, &receiver, 600).await;
    let form = [
        ("grant_type", GRANT_DELEGATED_REFRESH),
        ("refresh_token", text(&issued, "delegated_refresh_token")),
    ];
    let (status, body) = app.token_as(Some((&bystander, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

#[tokio::test]
async fn a_delegated_refresh_token_expires_at_its_chosen_lifetime() {
    let app = TestApp::at(T0).await;
    let (receiver, secret) = client(&app, "receiver").await;
    let issued = delegated_refresh_token(&app, &receiver, 600).await;
    let form = [
        ("grant_type", GRANT_DELEGATED_REFRESH),
        ("refresh_token", text(&issued, "delegated_refresh_token")),
    ];
    app.set(T0 + 600 + 1).await;
    let (status, body) = app.token_as(Some((&receiver, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

#[tokio::test]
async fn delegated_refresh_grant_refuses_an_ordinary_refresh_token() {
    let app = TestApp::at(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    let (id, secret) = app.login_client().await;
    let form = [
        ("grant_type", GRANT_DELEGATED_REFRESH),
        ("refresh_token", refresh.as_str()),
    ];
    refused(
        app.token_as(Some((id, &secret)), &form).await,
        400,
        "BXNIM0407E",
        "ordinary refresh token",
    );
}

#[tokio::test]
async fn delegated_refresh_tokens_refuse_an_expiry_outside_a_minute_to_thirty_days() {
    let app = TestApp::at(T0).await;
    let (receiver, _) = client(&app, "receiver").await;
    for lifetime in ["59", "2592001"] {
        refused(
            app.token(&[
                ("grant_type", APIKEY_GRANT),
                ("apikey", ADMIN_KEY),
                ("response_type", "delegated_refresh_token"),
                ("receiver_client_ids", &receiver),
                ("delegated_refresh_token_expiry", lifetime),
            ])
            .await,
            400,
            "BXNIM0109E",
            "between 60 and 2592000",
        );
    }
}

#[tokio::test]
async fn an_unknown_api_key_learns_nothing_about_which_receiver_clients_exist() {
    let app = TestApp::at(T0).await;
    client(&app, "receiver").await;
    let answer = |receiver: &'static str| {
        let app = &app;
        async move {
            app.token(&[
                ("grant_type", APIKEY_GRANT),
                ("apikey", "not-a-key-0123456789"),
                ("response_type", "delegated_refresh_token"),
                ("receiver_client_ids", receiver),
            ])
            .await
        }
    };
    let existing = answer("receiver").await;
    let unknown = answer("nosuch").await;
    for answer in [&existing, &unknown] {
        refused(answer.clone(), 400, "BXNIM0415E", "could not be found");
    }
    assert_eq!(existing.1["errorMessage"], unknown.1["errorMessage"]);
}

#[tokio::test]
async fn a_client_of_another_account_is_never_a_receiver() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let other = app.account("other").await;
    app.create(
        &admin,
        "clients",
        json!({ "id": "theirs", "account_id": other }),
    )
    .await;
    refused(
        app.token(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", ADMIN_KEY),
            ("response_type", "delegated_refresh_token"),
            ("receiver_client_ids", "theirs"),
        ])
        .await,
        400,
        "BXNIM0109E",
        "client theirs, which does not exist",
    );
}

#[tokio::test]
async fn apikey_grant_with_both_response_types_gives_an_access_token_and_a_drt() {
    let app = TestApp::at(T0).await;
    let (receiver, _) = client(&app, "receiver").await;
    let (status, body) = app
        .token(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", ADMIN_KEY),
            ("response_type", "cloud_iam delegated_refresh_token"),
            ("receiver_client_ids", &receiver),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expiration"], T0 + HOUR);
    assert!(body["access_token"].is_string(), "{body}");
    assert!(body["delegated_refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn a_refresh_token_dies_with_the_api_key_it_descends_from() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let account = app.admin_account().await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let (id, secret) = app.login_client().await;
    let form = [("grant_type", APIKEY_GRANT), ("apikey", apikey.as_str())];
    let (status, issued) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!(status, 200, "{issued}");
    app.delete_api_key_of(&admin, &sa).await;
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", text(&issued, "refresh_token")),
    ];
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

#[tokio::test]
async fn a_cutoff_kills_the_refresh_tokens_issued_before_it() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let refresh = refresh_token_of_login_client(&app).await;
    let me = claims(&admin)["iam_id"].clone();
    app.create(&admin, "token_cutoffs", json!({ "iam_id": me }))
        .await;
    app.advance(Duration::from_secs(1)).await;
    let (id, secret) = app.login_client().await;
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, body) = app.token_as(Some((id, &secret)), &form).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
}

#[tokio::test]
async fn a_profile_token_dies_with_the_identity_that_assumed_it() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (sa, apikey) = app.service_account_with_key(&account, "ci").await;
    let profile = profile_trusting(&app, &account, &sa).await;
    let access = app.apikey_token(&apikey).await;
    let form = assume_form(&access, &profile);
    let (status, body) = app.token(&form).await;
    assert_eq!(status, 200, "{body}");
    let assumed = text(&body, "access_token").to_owned();
    let (status, _) = app.get("/v1/whoami", &assumed).await;
    assert_eq!(status, 200);
    app.delete_object(&admin, "service_accounts", &sa).await;
    let (status, _) = app.get("/v1/whoami", &assumed).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_pending_factor_does_not_count_at_sign_in() {
    let (app, account) = TestApp::with_account(T0).await;
    let user = app.user(&account, "ann").await;
    let own = app.user_token(&user).await;
    let id = text(&user, "id");
    let (status, body) = app
        .post(&format!("/v1/users/{id}/totp"), &own, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app.password_grant(id, USER_PASSWORD, &[]).await;
    assert_eq!(status, 200, "an unconfirmed factor is not required: {body}");
    assert_eq!(claims(text(&body, "access_token"))["acr"], 1);
}

#[tokio::test]
async fn cr_token_grant_follows_a_rotation_of_the_issuers_keys() {
    let (app, admin, account) = TestApp::with_admin_and_account(T0).await;
    let (old_key, _) = cluster(&app, &account).await;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = generate_pkcs8(Algorithm::Es256, &rng).unwrap();
    let new_key = SigningKey::from_pkcs8("k8s-2", Algorithm::Es256, &pkcs8).unwrap();
    let (_, issuers) = app
        .get(&format!("/v1/trusted_issuers?account_id={account}"), &admin)
        .await;
    let issuer = text(&issuers["trusted_issuers"][0], "id").to_owned();
    let (status, body) = app
        .call(
            axum::http::Method::PUT,
            &format!("/v1/trusted_issuers/{issuer}"),
            Some(&admin),
            Some(json!({ "jwks": { "keys": [new_key.public_jwk()] } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let exchange = |token: String| {
        let app = &app;
        async move {
            app.token(&[("grant_type", GRANT_CR_TOKEN), ("cr_token", &token)])
                .await
        }
    };
    let (status, body) = exchange(cr_token(&old_key, T0)).await;
    assert_eq!((status, ibm_code(&body)), (400, "BXNIM0407E"), "{body}");
    let (status, body) = exchange(cr_token(&new_key, T0)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_client_created_again_under_a_deleted_ones_id_does_not_revive_its_tokens() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let (id, secret) = client(&app, "web").await;
    let form = [("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)];
    let (status, issued) = app.token_as(Some((&id, &secret)), &form).await;
    assert_eq!(status, 200, "{issued}");
    let access = text(&issued, "access_token").to_owned();
    let (status, _) = app.delete("/v1/clients/web", &admin).await;
    assert_eq!(status, 204);
    let (status, _) = app.get("/v1/whoami", &access).await;
    assert_eq!(status, 401, "dead with its client");
    app.advance(Duration::from_secs(1)).await;
    let (id, secret) = client(&app, "web").await;
    let (status, body) = app.get("/v1/whoami", &access).await;
    assert_eq!(status, 401, "still dead: {body}");
    let form = [
        ("grant_type", GRANT_REFRESH),
        ("refresh_token", text(&issued, "refresh_token")),
    ];
    refused(
        app.token_as(Some((&id, &secret)), &form).await,
        400,
        "BXNIM0407E",
        "OAuth client",
    );
    // The new client's own tokens work, from its first second.
    let form = [("grant_type", APIKEY_GRANT), ("apikey", ADMIN_KEY)];
    let (status, fresh) = app.token_as(Some((&id, &secret)), &form).await;
    assert_eq!(status, 200, "{fresh}");
    let (status, _) = app.get("/v1/whoami", text(&fresh, "access_token")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_receiver_created_again_under_a_deleted_ones_id_cannot_redeem_its_drts() {
    let (app, admin) = TestApp::with_admin(T0).await;
    let (receiver, _) = client(&app, "receiver").await;
    let issued = delegated_refresh_token(&app, &receiver, 600).await;
    let (status, _) = app.delete("/v1/clients/receiver", &admin).await;
    assert_eq!(status, 204);
    app.advance(Duration::from_secs(1)).await;
    let (receiver, secret) = client(&app, "receiver").await;
    let form = [
        ("grant_type", GRANT_DELEGATED_REFRESH),
        ("refresh_token", text(&issued, "delegated_refresh_token")),
    ];
    refused(
        app.token_as(Some((&receiver, &secret)), &form).await,
        400,
        "BXNIM0407E",
        "earlier client",
    );
}
