//! The `password` grant, TOTP MFA (enrolment through the admin API, codes at login) and
//! brute-force throttling, against a real server over sockets.

use crate::harness::{account_named, account_of, client_secret, jwt_payload, user_in, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use tessera_client::api::admin::{AccountUpdate, Mfa, TotpState, UserView};
use tessera_client::api::token::{IbmTokenRequest, IbmTokenResponse};
use tessera_client::resource::Users;
use tessera_core::totp;

const PASSWORD: &str = "correct horse battery staple";

/// What the tests need: an admin token, its account, a Basic client, and a user with a password.
struct Fixture {
    admin: String,
    account: String,
    client_id: String,
    client_secret: String,
    user: UserView,
}

async fn fixture(server: &TestServer) -> Fixture {
    let admin = server.admin_token().await;
    let typed = server.client().with_token(&admin);
    let account = account_of(&typed).await;
    let client_secret = client_secret(&server.client().with_token(admin.as_str()), "pwapp").await;
    let user = user_in(&typed, None, "Ada", "ada@example.com", PASSWORD).await;
    Fixture {
        admin,
        account,
        client_id: "pwapp".into(),
        client_secret,
        user,
    }
}

/// The password grant's form, optionally naming the `account` to sign in to.
fn password_grant(username: &str, password: &str, account: Option<&str>) -> IbmTokenRequest {
    IbmTokenRequest {
        grant_type: "password".into(),
        username: Some(username.to_owned()),
        password: Some(password.to_owned()),
        account: account.map(str::to_owned),
        ..IbmTokenRequest::default()
    }
}

/// A client whose connections come from `source` (127.0.0.2 is another loopback address).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    server: &TestServer,
    basic: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    form: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http
        .post(format!("{}/identity/token", server.url))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

impl Fixture {
    fn basic(&self) -> Option<(&str, &str)> {
        Some((&self.client_id, &self.client_secret))
    }

    /// [`Fixture::login`] of `form`, which must be refused with 400, the IBM error `code` and
    /// a message that says `words`: the answer's body.
    async fn refused(
        &self,
        server: &TestServer,
        form: &[(&str, &str)],
        code: &str,
        words: &str,
    ) -> Value {
        let (status, body) = self.login(server, form).await;
        assert_error(status, &body, 400, code, words);
        body
    }

    /// Raw: for refusals (their IBM error shape).
    async fn login(&self, server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
        let (status, _, body) = post(&server.http, server, self.basic(), &[], form).await;
        (status, body)
    }

    /// A grant through the fixture's client that must succeed.
    async fn sign_in(&self, server: &TestServer, form: &IbmTokenRequest) -> IbmTokenResponse {
        server
            .client()
            .token_as_client(&self.client_id, &self.client_secret, form)
            .await
            .unwrap_or_else(|e| panic!("{} grant refused: {e}", form.grant_type))
    }
}

fn password_form<'a>(username: &'a str, password: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ]
}

fn assert_error(status: u16, body: &Value, want_status: u16, code: &str, words: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.to_lowercase().contains(&words.to_lowercase()),
        "{message:?} should say {words:?}"
    );
}

#[tokio::test]
async fn password_grant_issues_user_tokens_refreshable_by_the_same_client() {
    let server = TestServer::in_process().await;
    let f = fixture(&server).await;
    let body = f
        .sign_in(&server, &password_grant("ada@example.com", PASSWORD, None))
        .await;
    let claims = jwt_payload(body.access_token.as_deref().unwrap());
    assert_eq!(claims["sub_type"], "user");
    assert_eq!(claims["iam_id"], f.user.iam_id);
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["acr"], 1);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["client_id"], "pwapp");
    assert_eq!(claims["grant_type"], "password");
    assert_eq!(claims["account"]["bss"], f.account.as_str());
    // The user id works as the username too.
    f.sign_in(&server, &password_grant(&f.user.id, PASSWORD, None))
        .await;

    let refresh = body.refresh_token.as_deref().unwrap();
    let refreshed = f
        .sign_in(
            &server,
            &IbmTokenRequest {
                grant_type: "refresh_token".into(),
                refresh_token: Some(refresh.to_owned()),
                ..IbmTokenRequest::default()
            },
        )
        .await;
    let claims = jwt_payload(refreshed.access_token.as_deref().unwrap());
    assert_eq!(claims["iam_id"], f.user.iam_id);
    // Another client cannot use it, nor the public default client.
    let refresh_form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let other_secret = client_secret(&server.client().with_token(f.admin.as_str()), "other").await;
    let (status, _, body) = post(
        &server.http,
        &server,
        Some(("other", other_secret.as_str())),
        &[],
        &refresh_form,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = post(&server.http, &server, None, &[], &refresh_form).await;
    assert_error(
        status,
        &body,
        400,
        "BXNIM0308E",
        "No authorization header found",
    );
}

#[tokio::test]
async fn password_grant_refusals_say_what_is_wrong() {
    let server = TestServer::in_process().await;
    let f = fixture(&server).await;
    let form = password_form("ada@example.com", PASSWORD);

    let (status, _, body) = post(&server.http, &server, None, &[], &form).await;
    assert_error(
        status,
        &body,
        400,
        "BXNIM0308E",
        "No authorization header found",
    );
    let (status, _, body) = post(&server.http, &server, Some(("pwapp", "wrong")), &[], &form).await;
    assert_error(
        status,
        &body,
        401,
        "BXNIM0301E",
        "client authentication failed",
    );
    f.refused(
        &server,
        &[("grant_type", "password"), ("password", PASSWORD)],
        "BXNIM0109E",
        "username",
    )
    .await;
    f.refused(
        &server,
        &[("grant_type", "password"), ("username", "ada@example.com")],
        "BXNIM0109E",
        "password",
    )
    .await;

    // An unknown user and a wrong password get the same answer.
    let unknown = f
        .refused(
            &server,
            &password_form("nobody@example.com", PASSWORD),
            "BXNIM0602E",
            "incorrect",
        )
        .await;
    let wrong = f
        .refused(
            &server,
            &password_form("ada@example.com", "not the password"),
            "BXNIM0602E",
            "incorrect",
        )
        .await;
    assert_eq!(unknown["errorMessage"], wrong["errorMessage"]);

    server
        .create(
            &f.admin,
            "users",
            json!({"name": "Fed", "email": "fed@example.com", "federated": true}),
        )
        .await;
    // Federated and password-less users get the very answer of a wrong password: the answer
    // says neither who exists nor how they sign in.
    let body = f
        .refused(
            &server,
            &password_form("fed@example.com", PASSWORD),
            "BXNIM0602E",
            "incorrect",
        )
        .await;
    assert_eq!(body["errorMessage"], wrong["errorMessage"]);
    server
        .create(
            &f.admin,
            "users",
            json!({"name": "Nopw", "email": "nopw@example.com"}),
        )
        .await;
    let body = f
        .refused(
            &server,
            &password_form("nopw@example.com", PASSWORD),
            "BXNIM0602E",
            "incorrect",
        )
        .await;
    assert_eq!(body["errorMessage"], wrong["errorMessage"]);

    // The same e-mail in a second account, created later: it neither breaks nor takes over the
    // first user's e-mail sign-in, and its creator learns nothing; it signs in with `account`.
    let typed = server.client().with_token(&f.admin);
    let second = account_named(&typed, "second").await;
    let second_id = second.id.as_str();
    // Created at least a second later than the first Ada: creation times are whole seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    user_in(
        &typed,
        Some(second_id),
        "Ada 2",
        "ada@example.com",
        "second password!",
    )
    .await;
    let body = f
        .sign_in(&server, &password_grant("ada@example.com", PASSWORD, None))
        .await;
    let claims = jwt_payload(body.access_token.as_deref().unwrap());
    assert_eq!(claims["account"]["bss"], f.account.as_str());
    f.refused(
        &server,
        &password_form("ada@example.com", "second password!"),
        "BXNIM0602E",
        "incorrect",
    )
    .await;
    let mut with_account = form.clone();
    with_account.push(("account", second_id));
    f.refused(&server, &with_account, "BXNIM0602E", "incorrect")
        .await;
    let body = f
        .sign_in(
            &server,
            &password_grant("ada@example.com", "second password!", Some(second_id)),
        )
        .await;
    let claims = jwt_payload(body.access_token.as_deref().unwrap());
    assert_eq!(claims["account"]["bss"], second_id);
    f.sign_in(
        &server,
        &password_grant("ada@example.com", PASSWORD, Some(&f.account)),
    )
    .await;
    let mut first_form = form.clone();
    first_form.push(("account", &f.account));

    // IBM-Cloud-Tenant: the user's account passes, another is refused.
    let basic = f.basic();
    let (status, _, body) = post(
        &server.http,
        &server,
        basic,
        &[("IBM-Cloud-Tenant", f.account.as_str())],
        &first_form,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post(
        &server.http,
        &server,
        basic,
        &[("IBM-Cloud-Tenant", second_id)],
        &first_form,
    )
    .await;
    assert_error(status, &body, 400, "BXNIM0513E", "IBM-Cloud-Tenant");
}

/// The code of `secret` (base32) at TOTP step `step`.
pub(crate) fn code(secret: &str, step: u64) -> String {
    let secret = totp::TotpSecret::from_bytes(totp::base32_decode(secret).unwrap());
    totp::code_at(&secret, step as i64 * totp::STEP)
}

pub(crate) fn step_now() -> u64 {
    let now = crate::harness::unix_now();
    totp::step_of(now)
}

#[tokio::test]
async fn totp_is_enrolled_confirmed_and_required_at_login() {
    let server = TestServer::start().await;
    let f = fixture(&server).await;
    let user_id = f.user.id.as_str();
    let form = password_form("ada@example.com", PASSWORD);
    assert_eq!(f.user.totp, Some(TotpState::None));
    let admin = server.client().with_token(&f.admin);

    // Carol, in an account without the requirement, enrols a factor herself: once confirmed she
    // needs a code anyway, until she deletes the factor.
    let carol = user_in(&admin, None, "Carol", "carol@example.com", PASSWORD).await;
    let carol_id = carol.id.as_str();
    let carol_grant = password_grant("carol@example.com", PASSWORD, None);
    let carol_form = password_form("carol@example.com", PASSWORD);
    let carol_weak = f.sign_in(&server, &carol_grant).await.access_token.unwrap();
    let as_weak_carol = server.client().with_token(&carol_weak);
    let enrolled = as_weak_carol
        .enroll_totp(carol_id, false, None)
        .await
        .unwrap();
    let carol_secret = enrolled.secret.clone().into_inner();
    // A pending factor does not count yet.
    f.sign_in(&server, &carol_grant).await;
    let step = step_now();
    as_weak_carol
        .confirm_totp(carol_id, &code(&carol_secret, step))
        .await
        .unwrap();
    f.refused(
        &server,
        &carol_form,
        "BXNIM0407E",
        "one-time code is required",
    )
    .await;
    let next = code(&carol_secret, step + 1);
    let with_code = IbmTokenRequest {
        otp: Some(next.clone()),
        ..carol_grant.clone()
    };
    let carol_strong = f.sign_in(&server, &with_code).await.access_token.unwrap();
    assert_eq!(jwt_payload(&carol_strong)["acr"], 2);

    // Step-up (issue 12, attack 5): a single-factor token of Carol's — a stolen API key or an
    // old session — may neither delete the confirmed factor nor replace it with the
    // attacker's; nor may an administrator touch a confirmed factor of hers.
    for (method, path, token) in [
        (
            Method::DELETE,
            format!("/v1/users/{carol_id}/totp"),
            &carol_weak,
        ),
        (
            Method::POST,
            format!("/v1/users/{carol_id}/totp?replace=true"),
            &carol_weak,
        ),
        (
            Method::DELETE,
            format!("/v1/users/{carol_id}/totp"),
            &f.admin,
        ),
        (
            Method::POST,
            format!("/v1/users/{carol_id}/totp?replace=true"),
            &f.admin,
        ),
    ] {
        let (status, body) = server.admin(method.clone(), &path, token, None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let user = admin.get::<Users>(carol_id).await.unwrap();
    assert_eq!(user.totp, Some(TotpState::Confirmed));
    // A wrong code is no proof either.
    let (status, body) = server
        .admin(
            Method::DELETE,
            &format!("/v1/users/{carol_id}/totp"),
            &carol_weak,
            Some(json!({"code": code(&carol_secret, step + 10)})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    // With a fresh sign-in that used a code, Carol replaces her factor: the old one stays in
    // force until the new one is confirmed...
    let as_strong_carol = server.client().with_token(&carol_strong);
    let replacement = as_strong_carol
        .enroll_totp(carol_id, true, None)
        .await
        .unwrap();
    assert!(replacement.replacement);
    let new_secret = replacement.secret.clone().into_inner();
    f.refused(
        &server,
        &carol_form,
        "BXNIM0407E",
        "one-time code is required",
    )
    .await;
    // ...and then deletes it.
    as_strong_carol.delete_totp(carol_id, None).await.unwrap();
    assert!(
        !server.logs().contains(&new_secret),
        "the secret was logged"
    );
    let body = f.sign_in(&server, &carol_grant).await;
    assert_eq!(jwt_payload(body.access_token.as_deref().unwrap())["acr"], 1);

    // The account requires MFA: a user without a confirmed factor is told to enrol.
    let body = admin
        .update_account(
            &f.account,
            &AccountUpdate {
                mfa: Some("TOTP".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(body.mfa, Mfa::Totp);
    let (status, body) = server
        .admin_patch(
            &format!("/v1/accounts/{}", f.account),
            &f.admin,
            json!({"mfa": "SMS"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = server
        .admin_patch(
            &format!("/v1/accounts/{}", f.account),
            &f.admin,
            json!({"mfa": "TOTP", "color": "red"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    f.refused(&server, &form, "BXNIM0407E", "enrol").await;

    // Enrol: the secret is shown once; the factor is pending until confirmed.
    let (status, enrolled) = server
        .admin(
            Method::POST,
            &format!("/v1/users/{user_id}/totp"),
            &f.admin,
            None,
        )
        .await;
    assert_eq!(status, 201, "{enrolled}");
    let secret = enrolled["secret"].as_str().unwrap().to_owned();
    assert!(enrolled["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Tessera:ada@example.com?secret="));
    assert_eq!(enrolled["confirmed"], false);
    let (_, user) = server
        .admin_get(&format!("/v1/users/{user_id}"), &f.admin)
        .await;
    assert_eq!(user["totp"], "pending");
    assert!(!server.logs().contains(&secret), "the secret was logged");
    f.refused(&server, &form, "BXNIM0407E", "enrol").await;

    let confirm = |code: String| {
        let server = &server;
        let admin = f.admin.clone();
        async move {
            server
                .admin_post(
                    &format!("/v1/users/{user_id}/totp/confirm"),
                    &admin,
                    json!({"code": code}),
                )
                .await
        }
    };
    let step = step_now();
    let (status, body) = confirm(code(&secret, step + 10)).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = confirm(code(&secret, step)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["confirmed"], true);
    let (_, user) = server
        .admin_get(&format!("/v1/users/{user_id}"), &f.admin)
        .await;
    assert_eq!(user["totp"], "confirmed");
    // A second enrolment needs ?replace=true.
    let (status, _) = server
        .admin(
            Method::POST,
            &format!("/v1/users/{user_id}/totp"),
            &f.admin,
            None,
        )
        .await;
    assert_eq!(status, 409);

    // Login: without a code, with a wrong one, with the confirming (used) one, then a fresh one.
    f.refused(&server, &form, "BXNIM0407E", "one-time code is required")
        .await;
    let wrong = code(&secret, step + 10);
    let mut with_code = form.clone();
    with_code.push(("otp", &wrong));
    f.refused(&server, &with_code, "BXNIM0407E", "wrong or expired")
        .await;
    let used = code(&secret, step);
    let mut replay = form.clone();
    replay.push(("otp", &used));
    f.refused(&server, &replay, "BXNIM0407E", "already been used")
        .await;
    let next = code(&secret, step + 1);
    let mut valid = form.clone();
    valid.push(("otp", &next));
    let (status, body) = f.login(&server, &valid).await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt_payload(body["access_token"].as_str().unwrap());
    assert_eq!(claims["acr"], 2);
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    f.refused(&server, &valid, "BXNIM0407E", "already been used")
        .await;
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_credential_and_per_address() {
    let server = TestServer::start_with(
        &[
            "--throttle-delay-after",
            "2",
            "--throttle-lock-after",
            "4",
            "--throttle-address-delay-after",
            "6",
            "--throttle-address-lock-after",
            "10",
            "--throttle-lock-seconds",
            "600",
        ],
        &[],
    )
    .await;
    let f = fixture(&server).await;
    let admin = &f.admin;
    server
        .create(
            admin,
            "users",
            json!({"name": "Bob", "email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    let local = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let other = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let ada_wrong = password_form("ada@example.com", "wrong password");
    let ada_right = password_form("ada@example.com", PASSWORD);
    let bob_right = password_form("bob@example.com", PASSWORD);

    // Ada's password is guessed 4 times from one address, under both spellings of her name
    // (one counter per user whatever spelling): that address is locked out of Ada, even with
    // the right password...
    let ada_id = f.user.id.clone();
    let ada_by_id_wrong = password_form(&ada_id, "wrong password");
    let ada_upper_wrong = password_form("ADA@example.com", "wrong password");
    for form in [&ada_wrong, &ada_upper_wrong, &ada_by_id_wrong, &ada_wrong] {
        let (status, _, body) = post(&local, &server, f.basic(), &[], form).await;
        assert_eq!(status, 400, "{body}");
    }
    for form in [&ada_right, &password_form(&ada_id, PASSWORD)] {
        let (status, headers, body) = post(&local, &server, f.basic(), &[], form).await;
        assert_error(status, &body, 429, "BXNIM0429E", "try again in");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=600).contains(&retry), "{retry}");
    }
    // ...but the attacker cannot lock the owner out: Ada, from her own address, signs in.
    let (status, _, body) = post(&other, &server, f.basic(), &[], &ada_right).await;
    assert_eq!(status, 200, "{body}");

    // Bob, from the attacker's address, is unaffected and not delayed.
    let started = std::time::Instant::now();
    let (status, _, body) = post(&local, &server, f.basic(), &[], &bob_right).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    // Guessing many user names from one address locks the address (4 + 6 failures) for
    // everyone who has not signed in from it lately...
    server
        .create(
            admin,
            "users",
            json!({"name": "Carol", "email": "carol@example.com", "password": PASSWORD}),
        )
        .await;
    let carol_right = password_form("carol@example.com", PASSWORD);
    for i in 0..6 {
        let name = format!("guess{i}@example.com");
        let (status, _, body) = post(
            &local,
            &server,
            f.basic(),
            &[],
            &password_form(&name, "whatever1"),
        )
        .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, _, body) = post(&local, &server, f.basic(), &[], &carol_right).await;
    assert_error(status, &body, 429, "BXNIM0429E", "try again in");
    // ...while Bob, who signed in from there before (the owner behind a shared proxy), still
    // gets in, and other addresses are unaffected.
    let (status, _, body) = post(&local, &server, f.basic(), &[], &bob_right).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post(&other, &server, f.basic(), &[], &carol_right).await;
    assert_eq!(status, 200, "{body}");

    // API-key guessing from one address ends in 429, even for a valid key.
    for i in 0..10 {
        let guess = format!("guessed-api-key-{i:04}-abcdefghijklmnop");
        let (status, _, body) = post(
            &other,
            &server,
            None,
            &[],
            &[
                ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
                ("apikey", &guess),
            ],
        )
        .await;
        assert_error(status, &body, 400, "BXNIM0415E", "could not be found");
    }
    let (status, _, body) = post(
        &other,
        &server,
        None,
        &[],
        &[
            ("grant_type", "urn:ibm:params:oauth:grant-type:apikey"),
            ("apikey", crate::harness::ADMIN_KEY),
        ],
    )
    .await;
    assert_error(status, &body, 429, "BXNIM0429E", "try again in");
    assert!(server.logs().contains("locked"));
    assert!(!server.logs().contains(PASSWORD));
}

/// Runs the CLI expecting failure; returns its standard error.
fn cli_fails(config_dir: &std::path::Path, args: &[&str]) -> String {
    let output = crate::harness::tessera(config_dir, args, &[]);
    assert!(!output.status.success(), "{args:?} should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn cli(config_dir: &std::path::Path, args: &[&str]) -> String {
    crate::harness::ok(crate::harness::tessera(config_dir, args, &[]))
}

#[tokio::test]
async fn cli_updates_account_mfa_and_manages_totp() {
    let server = TestServer::start().await;
    let f = fixture(&server).await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path();
    cli(
        config,
        &[
            "login",
            "--endpoint",
            &server.url,
            "--apikey",
            crate::harness::ADMIN_KEY,
        ],
    );
    let account: Value = serde_json::from_str(&cli(
        config,
        &[
            "iam", "account", "update", &f.account, "--mfa", "totp", "--format", "json",
        ],
    ))
    .unwrap();
    assert_eq!(account["mfa"], "TOTP");
    let user_id = f.user.id.as_str();
    let table = cli(config, &["iam", "user", "totp", "enroll", user_id]);
    let secret = table
        .lines()
        .find_map(|l| l.strip_prefix("Secret: "))
        .unwrap_or_else(|| panic!("no secret in {table}"))
        .trim()
        .to_owned();
    assert!(table.contains("URI: otpauth://totp/Tessera:"), "{table}");
    let confirmed = cli(
        config,
        &[
            "iam",
            "user",
            "totp",
            "confirm",
            user_id,
            "--code",
            &code(&secret, step_now()),
            "--format",
            "json",
        ],
    );
    let confirmed: Value = serde_json::from_str(&confirmed).unwrap();
    assert_eq!(confirmed["confirmed"], true);
    let user: Value = serde_json::from_str(&cli(
        config,
        &["iam", "user", "get", user_id, "--format", "json"],
    ))
    .unwrap();
    assert_eq!(user["totp"], "confirmed");
    // The factor works at login, then goes away with `totp delete`.
    let next = code(&secret, step_now() + 1);
    let mut form = password_form("ada@example.com", PASSWORD);
    form.push(("otp", &next));
    let (status, body) = f.login(&server, &form).await;
    assert_eq!(status, 200, "{body}");
    let strong = body["access_token"].as_str().unwrap().to_owned();
    // Once confirmed, the factor is the user's own: the administrator's CLI is refused...
    let refused = cli_fails(config, &["iam", "user", "totp", "delete", user_id]);
    assert!(
        refused.contains(&format!("only user {user_id}")),
        "{refused}"
    );
    // ...and the user's needs the factor now (step-up): a wrong --code is no proof.
    let key = server
        .create(
            &strong,
            "api_keys",
            json!({"owner_iam_id": user_id, "name": "cli"}),
        )
        .await;
    let own_home = tempfile::tempdir().unwrap();
    let own = own_home.path();
    cli(
        own,
        &[
            "login",
            "--endpoint",
            &server.url,
            "--apikey",
            key["apikey"].as_str().unwrap(),
        ],
    );
    let wrong = code(&secret, step_now() + 20);
    let refused = cli_fails(
        own,
        &["iam", "user", "totp", "delete", user_id, "--code", &wrong],
    );
    assert!(refused.contains("wrong or expired"), "{refused}");
    let refused = cli_fails(own, &["iam", "user", "totp", "delete", user_id]);
    assert!(refused.contains("needs that factor now"), "{refused}");
    // A sign-in with a code moments ago is the proof.
    let (status, body) = server
        .admin_delete(&format!("/v1/users/{user_id}/totp"), &strong)
        .await;
    assert_eq!(status, 204, "{body}");
    let user: Value = serde_json::from_str(&cli(
        config,
        &["iam", "user", "get", user_id, "--format", "json"],
    ))
    .unwrap();
    assert_eq!(user["totp"], "none");
    cli(
        config,
        &["iam", "account", "update", &f.account, "--mfa", "none"],
    );
    let (status, body) = f
        .login(&server, &password_form("ada@example.com", PASSWORD))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The TLS accept loop passes the peer address on too: guessing from one address over HTTPS
/// locks that address and not another.
#[tokio::test]
async fn address_throttling_works_over_tls() {
    let server = TestServer::start_with(
        &[
            "--tls-self-signed",
            "--throttle-address-delay-after",
            "2",
            "--throttle-address-lock-after",
            "3",
        ],
        &[],
    )
    .await;
    let pem = std::fs::read(server.data_dir().join("tls").join("ca.pem")).unwrap();
    let client = |source: Ipv4Addr| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .local_address(IpAddr::V4(source))
            .build()
            .unwrap()
    };
    let guesser = client(Ipv4Addr::new(127, 0, 0, 1));
    let other = client(Ipv4Addr::new(127, 0, 0, 2));
    let apikey_form = |key: &str| {
        vec![
            (
                "grant_type".to_owned(),
                "urn:ibm:params:oauth:grant-type:apikey".to_owned(),
            ),
            ("apikey".to_owned(), key.to_owned()),
        ]
    };
    let send = |http: &reqwest::Client, key: &str| {
        http.post(format!("{}/identity/token", server.url))
            .form(&apikey_form(key))
            .send()
    };
    for i in 0..3 {
        let response = send(&guesser, &format!("guessed-key-{i}-abcdefghijklmnopqrst"))
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
    }
    let response = send(&guesser, crate::harness::ADMIN_KEY).await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let response = send(&other, crate::harness::ADMIN_KEY).await.unwrap();
    assert_eq!(response.status(), 200);
}
