//! Unit-test kit: a whole server (the wiring of `tessera serve`, [`Server::prepare_with_clock`])
//! on a temporary SQLite store and a fixed [`Clock`], driven without a socket through the
//! application router. For the grant and admin rules at exact instants (expiry boundaries).

use crate::clock::Clock;
use crate::server::Server;
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::time::Duration;
use tower::ServiceExt;

pub const ADMIN_KEY: &str = "unit-admin-key-0123456789abcdefghijklmnop";
pub const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";

pub struct TestApp {
    pub state: AppState,
    pub clock: Clock,
    app: axum::Router,
    follower: tokio::task::JoinHandle<()>,
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
            _server: server,
            _dir: dir,
        }
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
        let request = Request::get(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
    }
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
