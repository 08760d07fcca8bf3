//! The servers under test: finding the binary, starting `tessera serve` on free loopback ports
//! with throw-away data directories, waiting for `/readyz`, provisioning a service account and an
//! API key through the admin API, and stopping them again (kill and wait, also on drop).
//!
//! A [`Cluster`] is one node on its embedded SQLite store, or N nodes on one PostgreSQL database:
//! then every node gets `--database-url URL --database-schema bench_<random hex>` (one fresh
//! schema per cluster, dropped again by [`Cluster::shutdown`]), the same `TESSERA_MASTER_KEY`
//! (base64 of 32 random bytes) and the same `--public-url`/`--issuer`, as behind a load balancer.
//! The child processes get no other `TESSERA_*` variable from the benchmark's environment.

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_core::model::Algorithm;

/// The IBM API-key grant type.
pub const APIKEY_GRANT: &str = "urn:ibm:params:oauth:grant-type:apikey";
/// The public URL every node of a PostgreSQL cluster is started with (what a load balancer would
/// be reached at; only the discovery document and the issuer show it).
pub const CLUSTER_PUBLIC_URL: &str = "http://tessera-bench.localhost";
/// How many changes are timed from one node to the others ([`measure_propagation`]).
pub const PROPAGATION_SAMPLES: usize = 5;

/// Where the nodes keep their state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Each node's embedded SQLite file in its data directory (one node only).
    Sqlite,
    /// One PostgreSQL database shared by all nodes.
    Postgres { url: String },
}

/// How one node is started.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// `--database-url` and `--database-schema`.
    pub database: Option<(String, String)>,
    /// `TESSERA_MASTER_KEY`.
    pub master_key: Option<String>,
    /// `--public-url`; the issuer is `<public URL>/identity`, given as `--issuer`.
    pub public_url: Option<String>,
    /// `--data-dir`, kept by the caller (a restart finds the same data); by default a fresh
    /// directory that goes with the server.
    pub data_dir: Option<PathBuf>,
}

/// The server binary: `given`, else `tessera` next to this executable (both live in
/// `target/release` after `cargo build --release`).
pub fn server_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("locating the benchmark's own executable")?;
    let dir = exe
        .parent()
        .context("the benchmark's executable has no parent directory")?;
    Ok(dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX)))
}

/// A running `tessera serve`, killed when stopped or dropped.
pub struct Server {
    process: Process,
    pub addr: SocketAddr,
    pub base_url: String,
    // Dropped last, after the process is killed: the data directory and the log go with it.
    _data: tempfile::TempDir,
}

/// Gives `command` no input and sends its stdout and stderr to a new file at `log_path`, which
/// `log` names in errors.
pub fn output_to_log(command: &mut Command, log_path: &Path, log: &str) -> anyhow::Result<()> {
    let out = File::create(log_path).with_context(|| format!("creating {log}"))?;
    let err = out
        .try_clone()
        .with_context(|| format!("duplicating {log} handle"))?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    Ok(())
}

/// A process the benchmark started, writing its stdout and stderr to `log_path`: killed and
/// reaped when stopped or dropped.
pub struct Process {
    child: Child,
    log_path: PathBuf,
    stopped: bool,
}

impl Process {
    /// Starts `command` with its output in a new file at `log_path` (see [`output_to_log`]);
    /// `starting` says what failed to start if it does not.
    pub fn start(
        command: &mut Command,
        log_path: PathBuf,
        log: &str,
        starting: impl FnOnce() -> String,
    ) -> anyhow::Result<Process> {
        output_to_log(command, &log_path, log)?;
        let child = command.spawn().with_context(starting)?;
        Ok(Process {
            child,
            log_path,
            stopped: false,
        })
    }

    /// The exit status once the process has exited.
    pub fn exited(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.child.try_wait()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's resident set size in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the process's stdout and stderr.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path)
    }

    /// Kills the process and reaps it (once).
    pub fn kill(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    /// Starts the server with `--jwt-algorithm ALG --log-level warn`, the bootstrap admin key and
    /// what `options` asks for.
    pub fn start(
        binary: &Path,
        algorithm: Algorithm,
        admin_apikey: &str,
        options: &NodeOptions,
    ) -> anyhow::Result<Server> {
        let data = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .context("creating a data directory")?;
        let data_dir = options
            .data_dir
            .clone()
            .unwrap_or_else(|| data.path().join("data"));
        let log_path = data.path().join("server.log");
        let addr = free_port()?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--jwt-algorithm")
            .arg(algorithm.as_str())
            .arg("--log-level")
            .arg("warn");
        clear_tessera_env(&mut command);
        if let Some((url, schema)) = &options.database {
            command
                .arg("--database-url")
                .arg(url)
                .arg("--database-schema")
                .arg(schema);
        }
        if let Some(public_url) = &options.public_url {
            command
                .arg("--public-url")
                .arg(public_url)
                .arg("--issuer")
                .arg(format!("{public_url}/identity"));
        }
        if let Some(master_key) = &options.master_key {
            command.env("TESSERA_MASTER_KEY", master_key);
        }
        command.env("TESSERA_BOOTSTRAP_ADMIN_APIKEY", admin_apikey);
        let process = Process::start(&mut command, log_path, "the server log", || {
            format!("starting {}", binary.display())
        })?;
        Ok(Server {
            process,
            addr,
            base_url: format!("http://{addr}"),
            _data: data,
        })
    }

    /// Polls `GET /readyz` until it answers 200, the process exits, or `limit` passes.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/readyz", self.base_url);
        loop {
            self.ensure_running()?;
            if let Ok(response) = http.get(&url).timeout(Duration::from_secs(2)).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > limit {
                anyhow::bail!(
                    "the server did not answer GET /readyz with 200 within {} s; its log:\n{}",
                    limit.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An error with the server's log if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.process.exited() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                anyhow::bail!(
                    "the server exited ({status}); its log:\n{}",
                    self.log_tail()
                )
            }
            Err(err) => Err(err).context("checking on the server process"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's resident set size in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        self.process.rss_kib()
    }

    /// The last lines of the server's stdout and stderr.
    pub fn log_tail(&self) -> String {
        self.process.log_tail()
    }

    /// Kills the server and reaps it.
    pub fn stop(mut self) {
        self.process.kill();
    }
}

/// A process's resident set size in KiB (Linux only).
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS")
}

/// A KiB field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`: the peak resident set), Linux only.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The last 40 lines of a child's log file (its stdout and stderr).
pub fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(40);
            let tail = lines[from..].join("\n");
            if tail.is_empty() {
                "(empty)".to_owned()
            } else {
                tail
            }
        }
        Err(err) => format!("(log unreadable: {err})"),
    }
}

/// Removes every `TESSERA_*` variable from a child's environment: a TESSERA_DATABASE_URL or
/// TESSERA_MASTER_KEY (or TESSERA_AGENT_SERVER) in the benchmark's own environment must not turn
/// a run into something else.
pub fn clear_tessera_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(bytes)
}

/// 48 random hex characters: the bootstrap administrator's API key.
pub fn random_key() -> anyhow::Result<String> {
    Ok(tessera_core::ids::hex(&random_bytes::<24>()?))
}

/// A fresh schema name: `bench_` and 16 random hex characters.
pub fn random_schema() -> anyhow::Result<String> {
    Ok(format!(
        "bench_{}",
        tessera_core::ids::hex(&random_bytes::<8>()?)
    ))
}

/// A master key as `TESSERA_MASTER_KEY` takes it: base64 of 32 random bytes.
fn random_master_key() -> anyhow::Result<String> {
    Ok(STANDARD.encode(random_master_key_bytes()?))
}

/// 32 random bytes: a master key, for a caller that also unseals with it (base64 for the server).
pub fn random_master_key_bytes() -> anyhow::Result<[u8; 32]> {
    random_bytes::<32>()
}

/// Nodes started together: one on SQLite, or several sharing one PostgreSQL schema.
pub struct Cluster {
    pub nodes: Vec<Server>,
    pub admin_apikey: String,
    options: NodeOptions,
}

impl Cluster {
    /// Prepares the settings every node shares (a fresh schema, a master key, the public URL);
    /// starts nothing yet. Call [`Cluster::shutdown`] in the end, also after a failed
    /// [`Cluster::launch`]: a node may have created the schema before a later one failed.
    pub fn new(store: &StoreKind) -> anyhow::Result<Cluster> {
        let options = match store {
            StoreKind::Sqlite => NodeOptions::default(),
            StoreKind::Postgres { url } => NodeOptions {
                database: Some((url.clone(), random_schema()?)),
                master_key: Some(random_master_key()?),
                public_url: Some(CLUSTER_PUBLIC_URL.to_owned()),
                data_dir: None,
            },
        };
        Ok(Cluster {
            nodes: Vec::new(),
            admin_apikey: random_key()?,
            options,
        })
    }

    /// Starts `count` nodes at once (with PostgreSQL they race for the bootstrap and key leases,
    /// as real nodes do).
    pub fn launch(
        &mut self,
        binary: &Path,
        algorithm: Algorithm,
        count: usize,
    ) -> anyhow::Result<()> {
        if count != 1 && self.options.database.is_none() {
            anyhow::bail!("several nodes need a shared PostgreSQL database");
        }
        for _ in 0..count {
            let node = Server::start(binary, algorithm, &self.admin_apikey, &self.options)?;
            self.nodes.push(node);
        }
        Ok(())
    }

    /// The schema of a PostgreSQL cluster.
    pub fn schema(&self) -> Option<&str> {
        self.options
            .database
            .as_ref()
            .map(|(_, schema)| schema.as_str())
    }

    /// Waits until every node answers `/readyz` with 200.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> anyhow::Result<()> {
        for (index, node) in self.nodes.iter_mut().enumerate() {
            node.wait_ready(http, limit)
                .await
                .with_context(|| format!("node {}", index + 1))?;
        }
        Ok(())
    }

    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(Server::pid).collect()
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|node| node.addr).collect()
    }

    /// Each node's resident set size in KiB.
    pub fn rss_kib(&self) -> Vec<Option<u64>> {
        self.nodes.iter().map(Server::rss_kib).collect()
    }

    /// An error with the log of the first node that has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        for (index, node) in self.nodes.iter_mut().enumerate() {
            node.ensure_running()
                .with_context(|| format!("node {}", index + 1))?;
        }
        Ok(())
    }

    /// Stops every node, then drops the PostgreSQL schema.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        for node in self.nodes {
            node.stop();
        }
        if let Some((url, schema)) = self.options.database {
            let store = tessera_store::PostgresStore::connect_with_schema(&url, &schema)
                .await
                .with_context(|| format!("connecting to drop the schema {schema}"))?;
            let dropped = store.drop_schema().await;
            store.close().await;
            dropped.with_context(|| format!("dropping the schema {schema}"))?;
        }
        Ok(())
    }
}

/// Checks that `url` reaches PostgreSQL, before any server is started with it.
pub async fn check_database(url: &str) -> anyhow::Result<()> {
    let schema = random_schema()?;
    let store = tessera_store::PostgresStore::connect_with_schema(url, &schema)
        .await
        .context("connecting to PostgreSQL")?;
    let dropped = store.drop_schema().await;
    store.close().await;
    dropped.context("dropping the probe schema")?;
    Ok(())
}

/// What the load uses: an API key and the service account it belongs to, and for introspection
/// two access tokens of that account (one authenticates, the other is introspected).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub apikey: String,
    pub iam_id: String,
    /// The administrator's (and the service account's) account.
    pub account_id: String,
    /// The administrator's access token, for further admin calls.
    pub admin_token: String,
    /// `Authorization: Bearer` of the introspection requests.
    pub bearer_token: String,
    /// The `token` form field of the introspection requests.
    pub introspected_token: String,
}

/// Exchanges an API key for an access token (the admin setup's own token requests).
pub async fn token_for(http: &reqwest::Client, base: &str, apikey: &str) -> anyhow::Result<String> {
    let request = http
        .post(format!("{base}/identity/token"))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", apikey),
            ("response_type", "cloud_iam"),
        ]);
    let body = send_json(request, "POST /identity/token").await?;
    str_field(&body, "access_token", "POST /identity/token").map(str::to_owned)
}

/// Sends `request` and returns the JSON body of its 2xx answer (see [`json_ok`]); `what` names
/// the request in errors.
pub async fn send_json(request: reqwest::RequestBuilder, what: &str) -> anyhow::Result<Value> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    json_ok(response, what).await
}

/// `POST` of `body` to `path` on `base` as the administrator whose token is `admin_token`: the
/// JSON answer.
pub async fn admin_post(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<Value> {
    let request = http
        .post(format!("{base}{path}"))
        .bearer_auth(admin_token)
        .json(&body);
    send_json(request, &format!("POST {path}")).await
}

/// The string `field` of `answer`, the answer to `what`; an error if it has none.
pub fn str_field<'a>(answer: &'a Value, field: &str, what: &str) -> anyhow::Result<&'a str> {
    answer[field]
        .as_str()
        .with_context(|| format!("{what} answered without {field}"))
}

/// Returns the JSON body of a 2xx response, or an error naming the request, status and body.
pub async fn json_ok(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{what}: reading the body"))?;
    if !status.is_success() {
        anyhow::bail!("{what} answered {status}: {text}");
    }
    serde_json::from_str(&text)
        .with_context(|| format!("{what} answered {status} with a body that is not JSON: {text}"))
}

/// Creates a service account in the administrator's account and an API key for it.
pub async fn provision(
    http: &reqwest::Client,
    base: &str,
    admin_apikey: &str,
) -> anyhow::Result<Credentials> {
    let admin_token = token_for(http, base, admin_apikey)
        .await
        .context("getting the administrator's token")?;
    let whoami = send_json(
        http.get(format!("{base}/v1/whoami"))
            .bearer_auth(&admin_token),
        "GET /v1/whoami",
    )
    .await?;
    let account_id = str_field(&whoami, "account_id", "GET /v1/whoami")?;
    let account = admin_post(
        http,
        base,
        &admin_token,
        "/v1/service_accounts",
        serde_json::json!({"account_id": account_id, "name": "bench-load"}),
    )
    .await?;
    let iam_id = str_field(&account, "iam_id", "POST /v1/service_accounts")?;
    let apikey = create_api_key(http, base, &admin_token, iam_id, "bench-load").await?;
    let bearer_token = token_for(http, base, &apikey)
        .await
        .context("getting the introspection caller's token")?;
    let introspected_token = token_for(http, base, &apikey)
        .await
        .context("getting the token to introspect")?;
    Ok(Credentials {
        apikey,
        iam_id: iam_id.to_owned(),
        account_id: account_id.to_owned(),
        admin_token,
        bearer_token,
        introspected_token,
    })
}

/// Creates an API key called `name` for `owner_iam_id` through `base`; the key.
async fn create_api_key(
    http: &reqwest::Client,
    base: &str,
    admin_token: &str,
    owner_iam_id: &str,
    name: &str,
) -> anyhow::Result<String> {
    let body = serde_json::json!({"owner_iam_id": owner_iam_id, "name": name});
    let key = admin_post(http, base, admin_token, "/v1/api_keys", body).await?;
    str_field(&key, "apikey", "POST /v1/api_keys").map(str::to_owned)
}

/// How long a change made through the first node takes to reach the others: creates
/// [`PROPAGATION_SAMPLES`] API keys through `bases[0]`, one after the other, and times until each
/// of the other nodes issues a token for the new key (polling every 5 ms, up to 5 s). Empty with
/// one node.
pub async fn measure_propagation(
    http: &reqwest::Client,
    bases: &[String],
    creds: &Credentials,
) -> anyhow::Result<Vec<Duration>> {
    let Some((first, others)) = bases.split_first() else {
        return Ok(Vec::new());
    };
    let mut samples = Vec::new();
    if others.is_empty() {
        return Ok(samples);
    }
    for round in 0..PROPAGATION_SAMPLES {
        let name = format!("bench-propagation-{round}");
        let apikey = create_api_key(http, first, &creds.admin_token, &creds.iam_id, &name).await?;
        let created = Instant::now();
        for base in others {
            loop {
                if token_for(http, base, &apikey).await.is_ok() {
                    samples.push(created.elapsed());
                    break;
                }
                if created.elapsed() > Duration::from_secs(5) {
                    anyhow::bail!(
                        "a new API key created through {first} was not accepted by {base} within 5 s"
                    );
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    Ok(samples)
}

/// One introspection with the benchmark's tokens, checked: 200, `active: true`, the account's
/// `iam_id`. The load then only checks the status and `"active":true`.
pub async fn check_introspection(
    http: &reqwest::Client,
    base: &str,
    creds: &Credentials,
) -> anyhow::Result<()> {
    let body = send_json(
        http.post(format!("{base}/identity/introspect"))
            .bearer_auth(&creds.bearer_token)
            .form(&[("token", creds.introspected_token.as_str())]),
        "POST /identity/introspect",
    )
    .await?;
    if body["active"] != Value::Bool(true) {
        anyhow::bail!("POST /identity/introspect answered an inactive token: {body}");
    }
    if body["iam_id"].as_str() != Some(creds.iam_id.as_str()) {
        anyhow::bail!(
            "the introspected token's iam_id is {} instead of {}",
            body["iam_id"],
            creds.iam_id
        );
    }
    Ok(())
}

/// An authorized key of the benchmark's service account, for the Yandex JWT grant: the key id
/// (`kid`), the service account id (`iss`) and the private key that signs the JWTs.
pub struct AuthorizedKey {
    pub id: String,
    pub service_account_id: String,
    pub signer: aws_lc_rs::signature::RsaKeyPair,
}

impl std::fmt::Debug for AuthorizedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedKey")
            .field("id", &self.id)
            .field("service_account_id", &self.service_account_id)
            .finish_non_exhaustive()
    }
}

/// Creates an RSA-2048 authorized key for the benchmark's service account
/// (`POST /v1/authorized_keys`) and loads its private half from the key file.
pub async fn create_authorized_key(
    http: &reqwest::Client,
    base: &str,
    creds: &Credentials,
) -> anyhow::Result<AuthorizedKey> {
    let service_account_id = creds
        .iam_id
        .strip_prefix("iam-")
        .context("the service account's iam_id does not start with iam-")?;
    let key = admin_post(
        http,
        base,
        &creds.admin_token,
        "/v1/authorized_keys",
        serde_json::json!({"service_account_id": service_account_id}),
    )
    .await?;
    let file = &key["key_file"];
    let id = file["id"]
        .as_str()
        .context("POST /v1/authorized_keys answered without key_file.id")?;
    let owner = file["service_account_id"]
        .as_str()
        .context("POST /v1/authorized_keys answered without key_file.service_account_id")?;
    let pem = file["private_key"]
        .as_str()
        .context("POST /v1/authorized_keys answered without key_file.private_key")?;
    let der = tessera_core::service_account_jwt::pem_decode("PRIVATE KEY", pem)
        .context("key_file.private_key is not a PEM PRIVATE KEY")?;
    let signer = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("key_file.private_key is not an RSA PKCS#8 key: {e}"))?;
    Ok(AuthorizedKey {
        id: id.to_owned(),
        service_account_id: owner.to_owned(),
        signer,
    })
}

/// A service-account JWT as the Yandex SDKs make it: PS256 over
/// `{"alg":"PS256","typ":"JWT","kid":…}.{"iss":…,"aud":<the SDKs' audience>,"iat":now,"exp":now+3600}`.
pub fn sign_yandex_jwt(key: &AuthorizedKey, now: i64) -> anyhow::Result<String> {
    let header = serde_json::json!({"alg": "PS256", "typ": "JWT", "kid": key.id});
    let claims = serde_json::json!({
        "iss": key.service_account_id,
        "aud": YANDEX_AUDIENCE,
        "iat": now,
        "exp": now + YANDEX_JWT_LIFETIME_SECS,
    });
    ps256_jwt(&key.signer, &SystemRandom::new(), &header, &claims)
}

/// The compact JWS of `header` and `claims`, signed PS256 (RSASSA-PSS with SHA-256) by `signer`.
pub fn ps256_jwt(
    signer: &aws_lc_rs::signature::RsaKeyPair,
    rng: &SystemRandom,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> anyhow::Result<String> {
    let mut jwt = URL_SAFE_NO_PAD.encode(header.to_string());
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jwt);
    let mut signature = vec![0; signer.public_modulus_len()];
    signer
        .sign(
            &aws_lc_rs::signature::RSA_PSS_SHA256,
            rng,
            jwt.as_bytes(),
            &mut signature,
        )
        .map_err(|e| anyhow::anyhow!("signing the JWT: {e}"))?;
    jwt.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
    Ok(jwt)
}

/// The audience the Yandex SDKs put in their JWTs (accepted by every Tessera server).
pub const YANDEX_AUDIENCE: &str = "https://iam.api.cloud.yandex.net/iam/v1/tokens";
/// `exp - iat` of the benchmark's JWTs: the longest the server accepts.
pub const YANDEX_JWT_LIFETIME_SECS: i64 = 3600;

/// The current Unix time in seconds: the bench's one wall-clock read.
#[allow(clippy::disallowed_methods)] // The bench's one clock; see clippy.toml.
pub fn unix_now() -> anyhow::Result<i64> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .context("the clock is before 1970")?;
    i64::try_from(since.as_secs()).context("the clock is out of range")
}

/// One `POST /iam/v1/tokens` with a JWT, checked: 200 and a `t1.` IAM token.
pub async fn check_yandex_jwt(http: &reqwest::Client, base: &str, jwt: &str) -> anyhow::Result<()> {
    let body = send_json(
        http.post(format!("{base}/iam/v1/tokens"))
            .json(&serde_json::json!({ "jwt": jwt })),
        "POST /iam/v1/tokens",
    )
    .await?;
    let token = str_field(&body, "iamToken", "POST /iam/v1/tokens")?;
    if !token.starts_with("t1.") {
        anyhow::bail!("POST /iam/v1/tokens answered an iamToken that is not a t1. token");
    }
    if body["expiresAt"].as_str().is_none() {
        anyhow::bail!("POST /iam/v1/tokens answered without expiresAt");
    }
    Ok(())
}

/// One token for the benchmark's key, checked: a three-part JWT signed with `algorithm`, for the
/// service account. A server that ignored `--jwt-algorithm` would otherwise be measured wrongly.
pub async fn check_token(
    http: &reqwest::Client,
    base: &str,
    creds: &Credentials,
    algorithm: Algorithm,
) -> anyhow::Result<()> {
    let token = token_for(http, base, &creds.apikey)
        .await
        .context("getting a token with the benchmark's API key")?;
    check_access_token(&token, creds, algorithm)
}

/// An access token is a three-part JWT signed with `algorithm`, for the benchmark's service
/// account.
pub fn check_access_token(
    token: &str,
    creds: &Credentials,
    algorithm: Algorithm,
) -> anyhow::Result<()> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, _signature] = parts.as_slice() else {
        anyhow::bail!("the access token is not a three-part JWT");
    };
    let decode = |part: &str| -> anyhow::Result<Value> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .context("a JWT part is not base64url")?;
        serde_json::from_slice(&bytes).context("a JWT part is not JSON")
    };
    let header = decode(header)?;
    let claims = decode(payload)?;
    if header["alg"].as_str() != Some(algorithm.as_str()) {
        anyhow::bail!(
            "the server signed with {} although it was started with --jwt-algorithm {}",
            header["alg"],
            algorithm.as_str()
        );
    }
    if claims["iam_id"].as_str() != Some(creds.iam_id.as_str()) {
        anyhow::bail!(
            "the token's iam_id is {} instead of {}",
            claims["iam_id"],
            creds.iam_id
        );
    }
    Ok(())
}
