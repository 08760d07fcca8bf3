//! Unit-test kit: a whole server (the wiring of `tessera serve`, [`Server::prepare_with_clock`])
//! on a temporary SQLite store and a fixed [`Clock`], driven without a socket through the
//! application router. For the grant and admin rules at exact instants (expiry boundaries).
//!
//! Besides the raw requests it has the few fixtures every rule test starts from: the bootstrap
//! administrator's token, accounts, users signed in by password, service accounts with an API
//! key, and a confidential client, all made through the admin API as an operator would.

use crate::clock::Clock;
use crate::server::Server;
use crate::state::AppState;
use axum::body::Body;
use axum::http::Method;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use serde_json::json;
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "unit-admin-key-0123456789abcdefghijklmnop";
pub const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
/// The password [`TestApp::user`] gives the users it creates.
pub const USER_PASSWORD: &str = "unit-password-0123";
/// The id of the global confidential client [`TestApp::login_client`] creates.
pub const LOGIN_CLIENT: &str = "unit-login";

pub struct TestApp {
    pub state: AppState,
    pub clock: Clock,
    app: axum::Router,
    follower: tokio::task::JoinHandle<()>,
    /// The secret of [`LOGIN_CLIENT`], once created.
    login_secret: Mutex<Option<String>>,
    /// Holds the data-directory lock and the (unused) listener.
    _server: Server,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh installation whose clock stands at `unix_seconds`.
    pub async fn at(unix_seconds: i64) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let args = crate::ServeArgs {
            store: crate::StoreArgs {
                data_dir: Some(dir.path().join("data")),
                ..Default::default()
            },
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let secrets = crate::config::SecretEnv {
            master_key: None,
            bootstrap_admin_apikey: Some(ADMIN_KEY.to_owned()),
        };
        let config = crate::config::Config::resolve(&args, secrets).unwrap();
        let clock = Clock::fixed(unix_seconds);
        let server = Server::prepare_with_clock(config, clock.clone())
            .await
            .unwrap();
        let state = server.state().clone();
        let follower = tokio::spawn(state.snapshot.clone().follow(
            state.store.clone(),
            state.store_healthy.clone(),
            clock.clone(),
        ));
        TestApp {
            app: crate::router::app(state.clone()),
            state,
            clock,
            follower,
            login_secret: Mutex::new(None),
            _server: server,
            _dir: dir,
        }
    }

    /// A server at `unix_seconds` and the bootstrap global administrator's token.
    pub async fn with_admin(unix_seconds: i64) -> (TestApp, String) {
        let app = TestApp::at(unix_seconds).await;
        let admin = app.admin_token().await;
        (app, admin)
    }

    /// A server at `unix_seconds` with an account `acme`.
    pub async fn with_account(unix_seconds: i64) -> (TestApp, String) {
        let app = TestApp::at(unix_seconds).await;
        let account = app.account("acme").await;
        (app, account)
    }

    /// A server at `unix_seconds` with the accounts `acme` and `other`.
    pub async fn with_accounts(unix_seconds: i64) -> (TestApp, String, String) {
        let (app, account) = TestApp::with_account(unix_seconds).await;
        let other = app.account("other").await;
        (app, account, other)
    }

    /// [`TestApp::with_admin`], and an account `acme`.
    pub async fn with_admin_and_account(unix_seconds: i64) -> (TestApp, String, String) {
        let (app, admin) = TestApp::with_admin(unix_seconds).await;
        let account = app.account("acme").await;
        (app, admin, account)
    }

    /// Moves the clock and lets the snapshot sync at the new time (a jump must not read as a
    /// stale snapshot).
    pub async fn advance(&self, by: Duration) {
        self.clock.advance(by);
        while self.state.snapshot.age(self.clock.now()) > 0 {
            self.state.snapshot.wake();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Moves the clock to `unix_seconds` (never back).
    pub async fn set(&self, unix_seconds: i64) {
        let ahead = unix_seconds - self.clock.now();
        assert!(ahead >= 0, "a test clock only moves forward");
        self.advance(Duration::from_secs(ahead.unsigned_abs()))
            .await;
    }

    /// The application router, for clients that drive it as a service (the gRPC stubs).
    pub fn router(&self) -> axum::Router {
        self.app.clone()
    }

    async fn send(&self, request: Request<Body>) -> (u16, Value) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, body)
    }

    /// `POST /identity/token` with `form`.
    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        self.token_as(None, form).await
    }

    /// `POST /identity/token` with `form`, as the client `basic` (id, secret) if given.
    pub async fn token_as(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        self.token_with(basic, &[], form).await
    }

    /// `POST /identity/token` with `form`, the client `basic` if given, and extra `headers`
    /// (`IBM-Cloud-Tenant`).
    pub async fn token_with(
        &self,
        basic: Option<(&str, &str)>,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = Request::post("/identity/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT, "application/json");
        if let Some((id, secret)) = basic {
            use base64::Engine as _;
            let pair = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            request = request.header(header::AUTHORIZATION, format!("Basic {pair}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).unwrap();
        self.send(request).await
    }

    /// `method path` with a bearer token and a JSON body.
    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: &Value,
    ) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// `GET path` with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `method path` with an optional bearer token and JSON body: status and JSON answer
    /// (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.send(request.unwrap()).await
    }

    /// `POST path` with a JSON body as `token`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// `DELETE path` as `token`.
    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `POST /v1/<plural>` as `token`, asserting 201; the created view.
    pub async fn create(&self, token: &str, plural: &str, body: Value) -> Value {
        let (status, created) = self.post(&format!("/v1/{plural}"), token, body).await;
        assert_eq!(status, 201, "create {plural}: {created}");
        created
    }

    /// `DELETE /v1/<plural>/<id>` of a view `object` as `token`, asserting 204.
    pub async fn delete_object(&self, token: &str, plural: &str, object: &Value) {
        let id = object["id"].as_str().unwrap_or_default();
        let (status, body) = self.delete(&format!("/v1/{plural}/{id}"), token).await;
        assert_eq!(status, 204, "delete {plural}/{id}: {body}");
    }

    /// A new authorized key of the service account `sa`, created as `token`: its view with
    /// `key_file`.
    pub async fn authorized_key_of(&self, token: &str, sa: &Value) -> Value {
        let body = json!({ "service_account_id": sa["id"] });
        self.create(token, "authorized_keys", body).await
    }

    /// A new service account `name` in `account_id` and an access token of its API key.
    pub async fn service_account_token(&self, account_id: &str, name: &str) -> (Value, String) {
        let (sa, apikey) = self.service_account_with_key(account_id, name).await;
        let token = self.apikey_token(&apikey).await;
        (sa, token)
    }

    /// Deletes the first API key of the service account `sa` as `token`.
    pub async fn delete_api_key_of(&self, token: &str, sa: &Value) {
        let iam_id = sa["iam_id"].as_str().unwrap_or_default();
        let (_, keys) = self
            .get(&format!("/v1/api_keys?owner_iam_id={iam_id}"), token)
            .await;
        self.delete_object(token, "api_keys", &keys["api_keys"][0])
            .await;
    }

    /// The access token of an API key (the API-key grant), asserting success.
    pub async fn apikey_token(&self, apikey: &str) -> String {
        let (status, body) = self
            .token(&[("grant_type", APIKEY_GRANT), ("apikey", apikey)])
            .await;
        assert_eq!(status, 200, "API-key grant: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// The bootstrap administrator's access token (admin on `*`).
    pub async fn admin_token(&self) -> String {
        self.apikey_token(ADMIN_KEY).await
    }

    /// The bootstrap account (the administrator's).
    pub async fn admin_account(&self) -> String {
        let token = self.admin_token().await;
        claims(&token)["account"]["bss"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A new account named `name`, created by the global administrator; its id.
    pub async fn account(&self, name: &str) -> String {
        let admin = self.admin_token().await;
        let account = self
            .create(&admin, "accounts", json!({ "name": name }))
            .await;
        account["id"].as_str().unwrap().to_owned()
    }

    /// A new user in `account_id` with [`USER_PASSWORD`], created by the global administrator.
    pub async fn user(&self, account_id: &str, name: &str) -> Value {
        let admin = self.admin_token().await;
        let body = json!({
            "account_id": account_id,
            "name": name,
            "email": format!("{name}@unit.example"),
            "password": USER_PASSWORD,
        });
        self.create(&admin, "users", body).await
    }

    /// A new service account in `account_id` and an API key for it, both created by the global
    /// administrator: the service account's view and the key.
    pub async fn service_account_with_key(&self, account_id: &str, name: &str) -> (Value, String) {
        let admin = self.admin_token().await;
        let sa = self
            .create(
                &admin,
                "service_accounts",
                json!({ "account_id": account_id, "name": name }),
            )
            .await;
        let key = self
            .create(
                &admin,
                "api_keys",
                json!({ "owner_iam_id": sa["iam_id"], "name": name }),
            )
            .await;
        (sa, key["apikey"].as_str().unwrap().to_owned())
    }

    /// `role` on `resource` for `subject_iam_id`, granted by the global administrator.
    pub async fn bind(&self, subject_iam_id: &Value, role: &str, resource: &str) -> Value {
        let admin = self.admin_token().await;
        let body = json!({ "subject_iam_id": subject_iam_id, "role": role, "resource": resource });
        self.create(&admin, "access_bindings", body).await
    }

    /// A new service account of `account_id` holding `role` on that account, and an access
    /// token of it.
    pub async fn holder_of(&self, account_id: &str, role: &str, name: &str) -> (Value, String) {
        let (sa, apikey) = self.service_account_with_key(account_id, name).await;
        self.bind(&sa["iam_id"], role, &format!("account/{account_id}"))
            .await;
        let token = self.apikey_token(&apikey).await;
        (sa, token)
    }

    /// A new service account of `account_id` holding `admin` on everything: more privileged
    /// than any account administrator.
    pub async fn global_administrator(&self, account_id: &str, name: &str) -> Value {
        let (sa, _) = self.service_account_with_key(account_id, name).await;
        self.bind(&sa["iam_id"], "admin", "*").await;
        sa
    }

    /// The id and secret of a global confidential client ([`LOGIN_CLIENT`]), made on first use.
    pub async fn login_client(&self) -> (&'static str, String) {
        if let Some(secret) = self.login_secret.lock().unwrap().clone() {
            return (LOGIN_CLIENT, secret);
        }
        let admin = self.admin_token().await;
        let client = self
            .create(&admin, "clients", json!({ "id": LOGIN_CLIENT }))
            .await;
        let secret = client["secret"].as_str().unwrap().to_owned();
        *self.login_secret.lock().unwrap() = Some(secret.clone());
        (LOGIN_CLIENT, secret)
    }

    /// The password grant for `username` through [`LOGIN_CLIENT`], with `extra` parameters.
    pub async fn password_grant(
        &self,
        username: &str,
        password: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let (id, secret) = self.login_client().await;
        let mut form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        form.extend_from_slice(extra);
        self.token_as(Some((id, &secret)), &form).await
    }

    /// A user's own access token (the password grant with [`USER_PASSWORD`]), asserting success.
    pub async fn user_token(&self, user: &Value) -> String {
        let id = user["id"].as_str().unwrap();
        let (status, body) = self.password_grant(id, USER_PASSWORD, &[]).await;
        assert_eq!(status, 200, "sign-in of {id}: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}

/// Part `index` of a compact JWS (0 the header, 1 the claims) as JSON, unverified; `Null` if
/// it is not JSON.
fn jws_part(token: &str, index: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(index).unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// The claims of a JWT, decoded without verification (as the IBM SDKs read them).
pub fn claims(token: &str) -> Value {
    jws_part(token, 1)
}

/// The `kid` in a JWT's header: which signing key signed it.
pub fn kid(token: &str) -> String {
    jws_part(token, 0)["kid"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The IBM error code of a token-endpoint refusal.
pub fn ibm_code(body: &Value) -> &str {
    body["errorCode"].as_str().unwrap_or_default()
}

/// The admin API's error code (`{"error": {"code": …}}`).
pub fn admin_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
