//! Starts a real server process and offers small helpers for talking to it.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_client::api::admin::{
    AccessBindingCreate, AccessBindingView, AccountCreate, AccountView, ApiKeyCreate,
    AuthorizedKeyCreate, AuthorizedKeyView, ClientCreate, ClientView, EnterpriseCreate,
    EnterpriseView, ServiceAccountCreate, ServiceAccountView, UserCreate, UserView,
};
use tessera_client::api::token::{IbmTokenRequest, IbmTokenResponse};
use tessera_client::resource::{
    AccessBindings, Accounts, ApiKeys, AuthorizedKeys, Clients, Enterprises, ServiceAccounts, Users,
};

pub const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
pub const ADMIN_KEY: &str = "e2e-admin-key-0123456789abcdefghijklmnop";

/// A PostgreSQL schema of its own for one test (or one cluster), dropped afterwards.
pub struct PgSchema {
    pub url: String,
    pub name: String,
}

impl PgSchema {
    pub fn new(url: &str) -> PgSchema {
        let mut bytes = [0u8; 6];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        let name = format!(
            "e2e_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        PgSchema {
            url: url.to_owned(),
            name,
        }
    }

    /// A store on this schema, for tests that look inside.
    pub async fn store(&self) -> tessera_store::PostgresStore {
        tessera_store::PostgresStore::connect_with_schema(&self.url, &self.name)
            .await
            .unwrap()
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs outside any runtime guarantee: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(store) =
                    tessera_store::PostgresStore::connect_with_schema(&url, &name).await
                {
                    let _ = store.drop_schema().await;
                }
            });
        })
        .join();
    }
}

/// The PostgreSQL URL for tests, if this run has one.
pub fn postgres_url() -> Option<String> {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether the e2e suite runs on PostgreSQL (`TESSERA_E2E_STORE=postgres`) instead of SQLite.
pub fn on_postgres() -> bool {
    std::env::var("TESSERA_E2E_STORE").is_ok_and(|v| v == "postgres")
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

pub struct TestServer {
    child: Option<Child>,
    /// A server started in this process ([`TestServer::in_process`]) instead of a child.
    inner: Option<InProcess>,
    /// The server's clock: a test clock for an in-process server (advance it instead of
    /// sleeping), `None` for a process (which runs on the wall clock).
    pub clock: Option<tessera_server::clock::Clock>,
    pub url: String,
    pub dir: Arc<tempfile::TempDir>,
    pub http: reqwest::Client,
    /// The typed client of this server, without a token ([`TestServer::client`]).
    api: tessera_client::Client,
    /// Everything the server wrote to stderr (JSON log lines) and stdout.
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// The PostgreSQL schema this server uses, when on PostgreSQL.
    pub schema: Option<Arc<PgSchema>>,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    /// The confidential client users sign in through ([`TestServer::user_token`]), made once.
    login_client: Mutex<Option<(String, String)>>,
}

/// The password the helpers give users they create.
pub const USER_PASSWORD: &str = "e2e-password-0123";

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(&[], &[]).await
    }

    /// The environment of a test server: `env`, with the bootstrap administrator key unless
    /// `env` sets one.
    fn server_env(env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env
            .iter()
            .any(|(k, _)| k == "TESSERA_BOOTSTRAP_ADMIN_APIKEY")
        {
            env.push(("TESSERA_BOOTSTRAP_ADMIN_APIKEY".into(), ADMIN_KEY.into()));
        }
        env
    }

    /// A server on the embedded SQLite store whatever `TESSERA_E2E_STORE` says (pass
    /// `--data-dir` to use a given store).
    pub async fn start_sqlite(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let args = args.iter().map(|s| s.to_string()).collect();
        Self::spawn(dir, args, Self::server_env(env), None).await
    }

    /// On the PostgreSQL pass, points `args` at a fresh schema of the test database (unless
    /// they name a database already) and returns that schema, dropped with the server.
    fn postgres_args(args: &mut Vec<String>) -> Option<Arc<PgSchema>> {
        if !on_postgres() || args.iter().any(|a| a == "--database-url") {
            return None;
        }
        let url =
            postgres_url().expect("TESSERA_E2E_STORE=postgres needs TESSERA_TEST_DATABASE_URL");
        let pg = Arc::new(PgSchema::new(&url));
        args.extend([
            "--database-url".to_owned(),
            url,
            "--database-schema".to_owned(),
            pg.name.clone(),
        ]);
        Some(pg)
    }

    pub async fn start_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let env = Self::server_env(env);
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let schema = Self::postgres_args(&mut args);
        Self::spawn(dir, args, env, schema).await
    }

    /// A node of a cluster: its own data directory, the given (shared) schema and settings.
    pub async fn start_node(
        schema: Arc<PgSchema>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let mut all: Vec<String> = vec![
            "--database-url".into(),
            schema.url.clone(),
            "--database-schema".into(),
            schema.name.clone(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self::spawn(dir, all, env, Some(schema)).await
    }

    async fn spawn(
        dir: Arc<tempfile::TempDir>,
        extra_args: Vec<String>,
        env: Vec<(String, String)>,
        schema: Option<Arc<PgSchema>>,
    ) -> TestServer {
        let mut command = Command::new(binary());
        command
            .current_dir(dir.path())
            .args(["serve", "--log-format", "json"])
            .args(&extra_args)
            .env_remove("TESSERA_CONFIG")
            .env_remove("TESSERA_LISTEN")
            .env_remove("TESSERA_DATA_DIR")
            .env_remove("TESSERA_MASTER_KEY")
            .env_remove("TESSERA_BOOTSTRAP_ADMIN_APIKEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !extra_args.iter().any(|a| a == "--log-level") {
            command.args(["--log-level", "info"]);
        }
        // A given --listen (a fixed port, kept across restarts) wins over a free one.
        if !extra_args.iter().any(|a| a == "--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        for (k, v) in &env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn tessera serve");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
        let err_pipe = child.stderr.take().expect("stderr");
        let out_pipe = child.stdout.take().expect("stdout");
        {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                    if let Ok(value) = serde_json::from_str::<Value>(&line) {
                        if value["message"] == "Tessera is serving" {
                            let _ =
                                url_tx.send(value["url"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                    stderr.lock().unwrap().push(line);
                }
            });
        }
        {
            let stdout = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    stdout.lock().unwrap().push(line);
                }
            });
        }
        let url = match url_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start; stderr:\n{}",
                    stderr.lock().unwrap().join("\n")
                );
            }
        };
        TestServer {
            child: Some(child),
            inner: None,
            clock: None,
            api: typed_client(&url),
            url,
            dir,
            http: http_client(),
            stderr,
            stdout,
            schema,
            extra_args,
            env,
            login_client: Mutex::new(None),
        }
    }

    /// A server in this process, wired exactly as `tessera serve` ([`Server::prepare_with_clock`]
    /// then [`Server::run`]) on 127.0.0.1:0, on its own thread and runtime, reading a test
    /// clock ([`TestServer::clock`]). For tests that need no process: no signals, restarts,
    /// log or stdout checks, `/metrics` values (the recorder is per process) or CLI.
    /// `args` are `tessera serve` flags; `env` may set the two secret variables only.
    ///
    /// [`Server::prepare_with_clock`]: tessera_server::server::Server::prepare_with_clock
    /// [`Server::run`]: tessera_server::server::Server::run
    pub async fn in_process() -> TestServer {
        Self::in_process_with(&[], &[]).await
    }

    pub async fn in_process_with(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let env = Self::server_env(env);
        let mut all: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            dir.path().join("tessera-data").display().to_string(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        let schema = Self::postgres_args(&mut all);
        let secret = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        for (k, _) in &env {
            assert!(
                k == "TESSERA_BOOTSTRAP_ADMIN_APIKEY" || k == "TESSERA_MASTER_KEY",
                "an in-process server takes flags, not {k}: start a process for it"
            );
        }
        let secrets = tessera_server::config::SecretEnv {
            master_key: secret("TESSERA_MASTER_KEY"),
            bootstrap_admin_apikey: secret("TESSERA_BOOTSTRAP_ADMIN_APIKEY"),
        };
        let serve =
            ServeFlags::try_parse_from(std::iter::once("serve".to_owned()).chain(all.clone()))
                .expect("tessera serve flags");
        let config = tessera_server::config::Config::resolve(&serve.args, secrets).expect("config");
        let clock = tessera_server::clock::Clock::test();
        let inner = InProcess::start(config, clock.clone());
        let url = format!("http://{}", inner.addr);
        // `data_dir()` and `store_args()` read the flags: drop only the listen address.
        let extra_args = all.split_off(2);
        TestServer {
            child: None,
            inner: Some(inner),
            clock: Some(clock),
            api: typed_client(&url),
            url,
            dir,
            http: http_client(),
            stderr: Arc::new(Mutex::new(Vec::new())),
            stdout: Arc::new(Mutex::new(Vec::new())),
            schema,
            extra_args,
            env,
            login_client: Mutex::new(None),
        }
    }

    /// Moves an in-process server's clock forward (what sleeping `by` would do to expiry) and
    /// waits until its snapshot has synchronised at the new time (as its follower would have
    /// while the time passed), so the jump does not read as a stale snapshot.
    pub async fn advance(&self, by: Duration) {
        let clock = self
            .clock
            .as_ref()
            .expect("only an in-process server has a test clock");
        let inner = self.inner.as_ref().expect("in-process server");
        clock.advance(by);
        let deadline = Instant::now() + Duration::from_secs(10);
        while inner.state.snapshot.age(clock.now()) > 0 {
            assert!(
                Instant::now() < deadline,
                "snapshot did not sync after advancing the clock"
            );
            inner.state.snapshot.wake();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The data directory: the `--data-dir` it was started with, else the default one.
    pub fn data_dir(&self) -> PathBuf {
        self.extra_args
            .iter()
            .position(|a| a == "--data-dir")
            .and_then(|i| self.extra_args.get(i + 1))
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.path().join("tessera-data"))
    }

    /// The flags that select this server's store, for the store commands (`tessera export`).
    pub fn store_args(&self) -> Vec<String> {
        match &self.schema {
            Some(schema) => vec![
                "--database-url".into(),
                schema.url.clone(),
                "--database-schema".into(),
                schema.name.clone(),
            ],
            None => vec![
                "--data-dir".to_owned(),
                self.data_dir().display().to_string(),
            ],
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the process (SIGTERM first, so shutdown is graceful) and waits for it.
    pub fn stop(&mut self) {
        if let Some(inner) = self.inner.take() {
            inner.stop();
        }
        self.stop_status();
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Kills the process with SIGKILL (no chance to clean up) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process with SIGTERM and returns its exit status (`None` if it had to be
    /// killed after 15 s).
    pub fn stop_status(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Stops and starts again on the same data directory (same flags and environment).
    pub async fn restart(self) -> TestServer {
        self.restart_with(&[]).await
    }

    /// Restarts with `more` appended to the original flags (a later flag cannot repeat an
    /// earlier one: clap refuses duplicates, so pass only new ones).
    pub async fn restart_with(mut self, more: &[&str]) -> TestServer {
        self.stop();
        let dir = self.dir.clone();
        let mut args = std::mem::take(&mut self.extra_args);
        args.extend(more.iter().map(|s| s.to_string()));
        let env = std::mem::take(&mut self.env);
        let schema = self.schema.take();
        Self::spawn(dir, args, env, schema).await
    }

    /// The store this server uses, opened directly (for tests that look inside).
    pub async fn open_store(&self) -> Box<dyn tessera_store::Store> {
        match &self.schema {
            Some(schema) => Box::new(schema.store().await),
            None => Box::new(
                tessera_store::SqliteStore::open(&self.data_dir().join("tessera.db"))
                    .await
                    .unwrap(),
            ),
        }
    }

    /// The server's published key set (`/identity/keys`), for verifying its tokens offline.
    pub async fn jwks(&self) -> tessera_verify::Jwks {
        self.jwks_at("/identity/keys").await
    }

    /// The key set published at `path` (`/identity/keys` or `/.well-known/jwks.json`).
    pub async fn jwks_at(&self, path: &str) -> tessera_verify::Jwks {
        tessera_verify::Jwks::from_json(&self.get_text(path).await).expect("JWKS")
    }

    /// An unauthenticated `GET path`: the whole answer, whatever its status.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// The status of `GET /readyz`; 0 when the server does not answer at all (stopped, or its
    /// connections refused).
    pub async fn readyz_status(&self) -> u16 {
        self.http
            .get(format!("{}/readyz", self.url))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// A form `POST path` of `form`, with the Basic client authentication `client` (id,
    /// secret) when given: the whole answer, whatever its status.
    pub async fn post_form(
        &self,
        path: &str,
        client: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.url)).form(form);
        if let Some((id, secret)) = client {
            request = request.basic_auth(id, Some(secret));
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// A JSON `POST path` of `body`, with the bearer `token` when given: the whole answer,
    /// whatever its status (the Yandex REST calls, writes whose answer is read raw).
    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"))
    }

    /// A raw refresh grant of `refresh_token`, by the confidential client `client` (id, secret)
    /// when given: the whole answer, whatever its status.
    pub async fn refresh_response(
        &self,
        client: Option<(&str, &str)>,
        refresh_token: &str,
    ) -> reqwest::Response {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        self.post_form("/identity/token", client, &form).await
    }

    /// The body of an unauthenticated `GET path` (a JWKS, `/metrics`), whatever its status.
    pub async fn get_text(&self, path: &str) -> String {
        self.get(path)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("GET {path} body: {e}"))
    }

    /// The JSON body of an unauthenticated `GET path`, whatever its status.
    pub async fn get_json(&self, path: &str) -> Value {
        serde_json::from_str(&self.get_text(path).await)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        self.get_text("/metrics").await
    }

    /// `POST /identity/introspect` of `token`, authenticated by `bearer`: the answer's body,
    /// whatever its status.
    pub async fn introspect(&self, bearer: &str, token: &str) -> Value {
        json_body(self.introspect_response(bearer, token).await).await
    }

    /// [`TestServer::introspect`], the whole answer.
    pub async fn introspect_response(&self, bearer: &str, token: &str) -> reqwest::Response {
        self.token_surface("/identity/introspect", token)
            .bearer_auth(bearer)
            .send()
            .await
            .expect("POST /identity/introspect")
    }

    /// [`TestServer::introspect`] by the confidential client `id` (Basic).
    pub async fn introspect_as_client(&self, id: &str, secret: &str, token: &str) -> Value {
        let response = self
            .token_surface("/identity/introspect", token)
            .basic_auth(id, Some(secret))
            .send()
            .await
            .expect("POST /identity/introspect");
        json_body(response).await
    }

    /// `POST /identity/revoke` of `token`, without client authentication (RFC 7009 as IBM
    /// takes it).
    pub async fn revoke(&self, token: &str) -> reqwest::Response {
        self.token_surface("/identity/revoke", token)
            .send()
            .await
            .expect("POST /identity/revoke")
    }

    /// A form post of `token` to one of the OAuth token surfaces (introspection, revocation).
    fn token_surface(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.url))
            .form(&[("token", token)])
    }

    pub fn logs(&self) -> String {
        assert!(
            self.inner.is_none(),
            "an in-process server's logs are not captured: start a process to check them"
        );
        let mut all = self.stdout.lock().unwrap().join("\n");
        all.push('\n');
        all.push_str(&self.stderr.lock().unwrap().join("\n"));
        all
    }

    /// [`TestServer::token_response`] with the `IBM-Cloud-Tenant` pin `tenant`.
    pub async fn pinned_token_response(
        &self,
        tenant: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/identity/token", self.url))
            .header("IBM-Cloud-Tenant", tenant)
            .form(form)
            .send()
            .await
            .expect("POST /identity/token")
    }

    pub async fn token_response(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_form("/identity/token", None, form).await
    }

    /// Exchanges an API key for an access token, asserting success.
    pub async fn token(&self, apikey: &str) -> String {
        self.client()
            .token_from_apikey(apikey)
            .await
            .unwrap_or_else(|e| panic!("token request failed: {e}"))
            .access_token
            .expect("access_token")
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_KEY).await
    }

    /// The typed client of this server, without a token (`.with_token(..)` for one); bounded
    /// like [`TestServer::http`]. For what the server must accept; wrong input stays raw HTTP.
    pub fn client(&self) -> tessera_client::Client {
        self.api.clone()
    }

    /// Has [`TestServer::client`] trust the CA certificate `ca_pem` (a TLS server's local CA);
    /// tests that talk raw HTTPS set [`TestServer::http`] themselves.
    pub fn trust_ca(&mut self, ca_pem: &[u8]) {
        self.api = tessera_client::Client::builder(&self.url)
            .timeout(Duration::from_secs(30))
            .ca_pem(ca_pem)
            .build()
            .expect("client");
    }

    /// The typed client, authenticated as the bootstrap administrator.
    pub async fn admin_client(&self) -> tessera_client::Client {
        self.client().with_token(self.admin_token().await)
    }

    /// Sends an admin request and returns status and JSON body (Null for empty bodies).
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// [`TestServer::admin`] `GET`.
    pub async fn admin_get(&self, path: &str, token: &str) -> (u16, Value) {
        self.admin(reqwest::Method::GET, path, token, None).await
    }

    /// [`TestServer::admin`] `DELETE`.
    pub async fn admin_delete(&self, path: &str, token: &str) -> (u16, Value) {
        self.admin(reqwest::Method::DELETE, path, token, None).await
    }

    /// [`TestServer::admin`] `POST` of `body`.
    pub async fn admin_post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// [`TestServer::admin`] `PUT` of `body`.
    pub async fn admin_put(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::PUT, path, token, Some(body))
            .await
    }

    /// [`TestServer::admin`] `PATCH` of `body`.
    pub async fn admin_patch(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.admin(reqwest::Method::PATCH, path, token, Some(body))
            .await
    }

    pub async fn create(&self, token: &str, plural: &str, body: Value) -> Value {
        let (status, value) = self.admin_post(&format!("/v1/{plural}"), token, body).await;
        assert_eq!(status, 201, "create {plural}: {value}");
        value
    }

    /// The id and secret of a global confidential client for signing users in, created on
    /// first use.
    pub async fn login_client(&self) -> (String, String) {
        if let Some(client) = self.login_client.lock().unwrap().clone() {
            return client;
        }
        let client = client_in(&self.admin_client().await, "e2e-login", None).await;
        let pair = (client.id, client.secret.expect("secret").into_inner());
        *self.login_client.lock().unwrap() = Some(pair.clone());
        pair
    }

    /// Signs user `user_id` in with its password (the password grant through the login
    /// client), asserting success: the token a user acts with on its own behalf.
    pub async fn user_token(&self, user_id: &str, password: &str) -> String {
        let (id, secret) = self.login_client().await;
        let form = IbmTokenRequest {
            grant_type: "password".into(),
            username: Some(user_id.to_owned()),
            password: Some(password.to_owned()),
            ..IbmTokenRequest::default()
        };
        self.client()
            .token_as_client(&id, &secret, &form)
            .await
            .unwrap_or_else(|e| panic!("sign-in of {user_id} failed: {e}"))
            .access_token
            .expect("access_token")
    }

    /// Creates a user (as `admin`, from `body`, with [`USER_PASSWORD`] unless `body` gives a
    /// password) and has the user create an API key for itself: only users create their own
    /// credentials. Returns the user and the key.
    pub async fn user_with_key(
        &self,
        admin: &tessera_client::Client,
        mut body: UserCreate,
    ) -> (UserView, String) {
        let password = body
            .password
            .get_or_insert_with(|| USER_PASSWORD.to_owned())
            .clone();
        let user = admin
            .create::<Users>(&body)
            .await
            .unwrap_or_else(|e| panic!("create user: {e}"));
        let own = self
            .client()
            .with_token(self.user_token(&user.id, &password).await);
        let key = api_key_of(&own, &user.id, "own").await;
        (user, key)
    }

    /// A new service account in the admin's account and an API key for it.
    pub async fn service_account_with_key(&self) -> (ServiceAccountView, String) {
        let admin = self.admin_client().await;
        let sa = service_account_in(&admin, None, "e2e").await;
        let key = api_key_of(&admin, &sa.iam_id, "e2e").await;
        (sa, key)
    }
}

/// A user's fields for [`TestServer::user_with_key`]: no password (the helper's), not
/// federated, in the caller's account unless `account_id` is set.
pub fn user(name: &str, email: &str) -> UserCreate {
    UserCreate {
        account_id: None,
        name: name.to_owned(),
        email: email.to_owned(),
        password: None,
        federated: false,
    }
}

/// A new user `name` <`email`> signing in with `password`, created by `admin` in `account_id`
/// (default: the admin's account).
pub async fn user_in(
    admin: &tessera_client::Client,
    account_id: Option<&str>,
    name: &str,
    email: &str,
    password: &str,
) -> UserView {
    admin
        .create::<Users>(&UserCreate {
            account_id: account_id.map(str::to_owned),
            password: Some(password.to_owned()),
            ..user(name, email)
        })
        .await
        .unwrap_or_else(|e| panic!("create user {email}: {e}"))
}

/// A new enterprise `corp` and an account `team` in it.
pub async fn enterprise_with_account(
    admin: &tessera_client::Client,
) -> (EnterpriseView, AccountView) {
    let enterprise = admin
        .create::<Enterprises>(&EnterpriseCreate {
            name: "corp".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("create enterprise: {e}"));
    let account = admin
        .create::<Accounts>(&AccountCreate {
            name: "team".into(),
            enterprise_id: Some(enterprise.id.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("create account in an enterprise: {e}"));
    (enterprise, account)
}

/// A new account `name`, in no enterprise, created by `admin`.
pub async fn account_named(admin: &tessera_client::Client, name: &str) -> AccountView {
    admin
        .create::<Accounts>(&AccountCreate {
            name: name.to_owned(),
            enterprise_id: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create account {name}: {e}"))
}

/// A new confidential client `id` in `account_id` (global when `None`), created by `admin`:
/// the create answer, with the secret shown once.
pub async fn client_in(
    admin: &tessera_client::Client,
    id: &str,
    account_id: Option<&str>,
) -> ClientView {
    admin
        .create::<Clients>(&ClientCreate {
            id: id.to_owned(),
            name: None,
            account_id: account_id.map(str::to_owned),
        })
        .await
        .unwrap_or_else(|e| panic!("create client {id}: {e}"))
}

/// A new RSA-2048 authorized key of service account `service_account_id`, with its key file.
pub async fn authorized_key_of(
    caller: &tessera_client::Client,
    service_account_id: &str,
) -> AuthorizedKeyView {
    caller
        .create::<AuthorizedKeys>(&AuthorizedKeyCreate {
            service_account_id: service_account_id.to_owned(),
            key_algorithm: None,
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create an authorized key of {service_account_id}: {e}"))
}

/// The account a token of this server was issued in (its `account.bss` claim).
pub fn account_of_token(token: &str) -> String {
    jwt_payload(token)["account"]["bss"]
        .as_str()
        .expect("account.bss claim")
        .to_owned()
}

/// A new service account named `name`, created by `admin` in `account_id` (default: the
/// admin's account).
pub async fn service_account_in(
    admin: &tessera_client::Client,
    account_id: Option<&str>,
    name: &str,
) -> ServiceAccountView {
    admin
        .create::<ServiceAccounts>(&ServiceAccountCreate {
            account_id: account_id.map(str::to_owned),
            name: name.to_owned(),
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create service account {name}: {e}"))
}

/// A service account in `account` holding `role` on it (`""`: no binding), created with the
/// administrator token `admin`, and an API key of it: (iam id, key).
pub async fn member(
    server: &TestServer,
    admin: &str,
    account: &str,
    role: &str,
) -> (String, String) {
    let admin = server.client().with_token(admin.to_owned());
    let sa = service_account_in(&admin, Some(account), &format!("member {role}")).await;
    if !role.is_empty() {
        bind(&admin, &sa.iam_id, role, &format!("account/{account}")).await;
    }
    let key = api_key_of(&admin, &sa.iam_id, "k").await;
    (sa.iam_id, key)
}

/// [`member`] and a token of it: (iam id, token).
pub async fn member_token(
    server: &TestServer,
    admin: &str,
    account: &str,
    role: &str,
) -> (String, String) {
    let (iam_id, key) = member(server, admin, account, role).await;
    (iam_id, server.token(&key).await)
}

/// A new API key named `name` of `owner_iam_id`, created by `caller`: the key itself.
pub async fn api_key_of(caller: &tessera_client::Client, owner_iam_id: &str, name: &str) -> String {
    caller
        .create::<ApiKeys>(&ApiKeyCreate {
            owner_iam_id: owner_iam_id.to_owned(),
            name: name.to_owned(),
            description: None,
        })
        .await
        .unwrap_or_else(|e| panic!("create API key of {owner_iam_id}: {e}"))
        .apikey
        .expect("apikey")
        .into_inner()
}

/// The form of the API-key grant.
pub fn apikey_form(apikey: &str) -> IbmTokenRequest {
    IbmTokenRequest {
        grant_type: APIKEY_GRANT.into(),
        apikey: Some(apikey.to_owned()),
        ..IbmTokenRequest::default()
    }
}

/// The form of the refresh grant.
pub fn refresh_form(refresh_token: &str) -> IbmTokenRequest {
    IbmTokenRequest {
        grant_type: "refresh_token".into(),
        refresh_token: Some(refresh_token.to_owned()),
        ..IbmTokenRequest::default()
    }
}

/// The access token of a granted answer.
pub fn access_of(answer: &IbmTokenResponse) -> String {
    answer.access_token.clone().expect("access_token")
}

/// The refresh token of a granted answer.
pub fn refresh_of(answer: &IbmTokenResponse) -> String {
    answer.refresh_token.clone().expect("refresh_token")
}

/// Creates the global confidential client `id` (as `admin`): its secret, shown once.
pub async fn client_secret(admin: &tessera_client::Client, id: &str) -> String {
    client_in(admin, id, None)
        .await
        .secret
        .expect("secret")
        .into_inner()
}

/// The IBM refusal of a token request that must be refused.
pub fn refused_grant(
    answer: tessera_client::Result<IbmTokenResponse>,
) -> tessera_client::TokenError {
    match answer {
        Err(tessera_client::Error::Token(refused)) => refused,
        Err(other) => panic!("not an IBM token error: {other}"),
        Ok(granted) => panic!("granted, not refused: {granted:?}"),
    }
}

/// The access token of a grant that must succeed (any grant's form, public client).
pub async fn granted(client: &tessera_client::Client, form: &IbmTokenRequest) -> String {
    client
        .token(form)
        .await
        .unwrap_or_else(|e| panic!("grant {} refused: {e}", form.grant_type))
        .access_token
        .expect("access_token")
}

/// An access binding of `role` on `resource` for `subject_iam_id`, created by `caller`.
pub async fn bind(
    caller: &tessera_client::Client,
    subject_iam_id: &str,
    role: &str,
    resource: &str,
) -> AccessBindingView {
    caller
        .create::<AccessBindings>(&AccessBindingCreate {
            subject_iam_id: subject_iam_id.to_owned(),
            role: role.to_owned(),
            resource: resource.to_owned(),
        })
        .await
        .unwrap_or_else(|e| panic!("bind {subject_iam_id} as {role} on {resource}: {e}"))
}

/// The account of the subject of `caller`'s token (`whoami`).
pub async fn account_of(caller: &tessera_client::Client) -> String {
    caller
        .whoami()
        .await
        .unwrap_or_else(|e| panic!("whoami: {e}"))
        .account_id
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The typed client of a test server, bounded like [`http_client`].
fn typed_client(url: &str) -> tessera_client::Client {
    tessera_client::Client::builder(url)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The HTTP client of a test server handle: every request bounded, so a hung server fails the
/// test instead of hanging it.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Calls `attempt` every `every` until it answers `Ok`, and returns that value; panics with the
/// last `Err` (why not yet: the state seen, a log) once `limit` has passed.
pub async fn eventually<T, F, Fut>(limit: Duration, every: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(why) => assert!(Instant::now() < deadline, "{why}"),
        }
        tokio::time::sleep(every).await;
    }
}

/// Seconds since the Unix epoch, for checking tokens: the tests' one wall-clock read.
#[allow(clippy::disallowed_methods)] // The tests' one clock; see clippy.toml.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn jwt_header(token: &str) -> Value {
    use base64::Engine;
    let header = token.split('.').next().expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json header")
}

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> String {
    jwt_header(token)["kid"].as_str().expect("kid").to_owned()
}

/// Decodes a JWT payload without verifying it (as the IBM SDK does).
pub fn jwt_payload(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json payload")
}

/// Runs the `tessera` binary in `work` (so no ./tessera.toml is found) with none of the
/// caller's Tessera settings, `env` added, and `stdin` as standard input.
pub fn tessera_with_stdin(
    work: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> Output {
    let mut command = Command::new(binary());
    command
        .current_dir(work)
        .args(args)
        .env("TESSERA_CONFIG_DIR", work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for name in [
        "TESSERA_CONFIG",
        "TESSERA_DATA_DIR",
        "TESSERA_DATABASE_URL",
        "TESSERA_DATABASE_SCHEMA",
        "TESSERA_MASTER_KEY",
        "TESSERA_MASTER_KEY_FILE",
        "TESSERA_ENDPOINT",
        "TESSERA_APIKEY",
        "TESSERA_PROFILE",
        "TESSERA_LOG_LEVEL",
        "TESSERA_LOG_FORMAT",
    ] {
        command.env_remove(name);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run tessera");
    let mut input = child.stdin.take().expect("stdin");
    // A command that does not read its input may close it early: that is not a failure here.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait for tessera")
}

pub fn tessera(work: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    tessera_with_stdin(work, args, env, b"")
}

pub fn ok(output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The command's `--format json` output, as the API type it prints (or a `Value`).
pub fn json_of<T: DeserializeOwned>(output: Output) -> T {
    let text = ok(output);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `tessera ARGS` as the administrator of `server` (its endpoint and the bootstrap API key in
/// the environment), with the CLI's configuration in `config`.
pub fn admin_cli(server: &TestServer, config: &Path, args: &[&str]) -> Output {
    tessera(
        config,
        args,
        &[
            ("TESSERA_ENDPOINT", &server.url),
            ("TESSERA_APIKEY", ADMIN_KEY),
        ],
    )
}

/// A failure with exit code 1; returns stderr.
pub fn fails(output: Output) -> String {
    fails_with(1, output)
}

/// A failure with exit code `code` (see `tessera --help`); returns stderr.
pub fn fails_with(code: i32, output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(code),
        "expected exit {code}: {}\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

/// The JSON body of `response`, whatever its status.
pub async fn json_body(response: reqwest::Response) -> Value {
    let url = response.url().clone();
    response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: not JSON: {e}"))
}

/// A fresh random master key (base64 of 32 bytes).
pub fn master_key() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `tessera serve`'s flags, parsed as the binary parses them.
#[derive(clap::Parser)]
struct ServeFlags {
    #[command(flatten)]
    args: tessera_server::ServeArgs,
}

use clap::Parser as _;

/// A server running on a thread of its own (a runtime of its own, so it keeps serving while a
/// test blocks its thread), stopped by [`InProcess::stop`] or on drop.
struct InProcess {
    addr: std::net::SocketAddr,
    state: tessera_server::state::AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(
        config: tessera_server::config::Config,
        clock: tessera_server::clock::Clock,
    ) -> InProcess {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let server =
                    match tessera_server::server::Server::prepare_with_clock(config, clock).await {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(format!("{e:#}")));
                            return;
                        }
                    };
                let ready = server
                    .local_addr()
                    .map(|addr| (addr, server.state().clone()))
                    .map_err(|e| e.to_string());
                let _ = ready_tx.send(ready);
                let stopped = async {
                    let _ = shutdown_rx.await;
                };
                if let Err(e) = server.run(stopped).await {
                    eprintln!("in-process server failed: {e:#}");
                }
            });
        });
        let (addr, state) = match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => panic!("in-process server did not start: {e}"),
            Err(_) => panic!("in-process server did not start within 60 s"),
        };
        InProcess {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Stops serving, waits for the drain and the store to close (the data-directory lock is
    /// released when this returns).
    fn stop(mut self) {
        self.shutdown_and_join();
    }

    fn shutdown_and_join(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}
