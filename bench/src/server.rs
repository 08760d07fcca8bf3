//! The server under test: finding the binary, starting `tessera serve` on a free loopback port
//! with a throw-away data directory, waiting for `/readyz`, provisioning a service account and an
//! API key through the admin API, and stopping it again (kill and wait, also on drop).

use anyhow::Context;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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

/// `tessera` next to this executable: both live in `target/release` after `cargo build --release`.
pub fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the benchmark's own executable")?;
    let dir = exe
        .parent()
        .context("the benchmark's executable has no parent directory")?;
    Ok(dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX)))
}

/// A running `tessera serve`, killed when stopped or dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub base_url: String,
    pub admin_apikey: String,
    log_path: PathBuf,
    stopped: bool,
    // Dropped last: the data directory and the log go away with it.
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts the server with `--jwt-algorithm ALG --log-level warn` and a bootstrap admin key.
    pub fn start(binary: &Path, algorithm: Algorithm) -> anyhow::Result<Server> {
        let data = tempfile::Builder::new()
            .prefix("tessera-bench-")
            .tempdir()
            .context("creating a data directory")?;
        let data_dir = data.path().join("data");
        let log_path = data.path().join("server.log");
        let log = File::create(&log_path).context("creating the server log")?;
        let log_err = log
            .try_clone()
            .context("duplicating the server log handle")?;
        let addr = free_port()?;
        let admin_apikey = random_key()?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--jwt-algorithm")
            .arg(algorithm.as_str())
            .arg("--log-level")
            .arg("warn")
            .env("TESSERA_BOOTSTRAP_ADMIN_APIKEY", &admin_apikey)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Server {
            child,
            addr,
            base_url: format!("http://{addr}"),
            admin_apikey,
            log_path,
            stopped: false,
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
        match self.child.try_wait() {
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
        self.child.id()
    }

    /// The server's resident set size in KiB (Linux only).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The last lines of the server's stdout and stderr.
    pub fn log_tail(&self) -> String {
        match std::fs::read_to_string(&self.log_path) {
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

    /// Kills the server and reaps it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    listener.local_addr().context("reading the free port")
}

/// 48 random hex characters: the bootstrap administrator's API key.
fn random_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// What the load uses: an API key and the service account it belongs to.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub apikey: String,
    pub iam_id: String,
}

/// Exchanges an API key for an access token (the admin setup's own token requests).
async fn token_for(http: &reqwest::Client, base: &str, apikey: &str) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/identity/token"))
        .header("Accept", "application/json")
        .form(&[
            ("grant_type", APIKEY_GRANT),
            ("apikey", apikey),
            ("response_type", "cloud_iam"),
        ])
        .send()
        .await
        .context("POST /identity/token")?;
    let body = json_ok(response, "POST /identity/token").await?;
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .context("POST /identity/token answered without access_token")
}

/// Returns the JSON body of a 2xx response, or an error naming the request, status and body.
async fn json_ok(response: reqwest::Response, what: &str) -> anyhow::Result<Value> {
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
    let whoami = json_ok(
        http.get(format!("{base}/v1/whoami"))
            .bearer_auth(&admin_token)
            .send()
            .await
            .context("GET /v1/whoami")?,
        "GET /v1/whoami",
    )
    .await?;
    let account_id = whoami["account_id"]
        .as_str()
        .context("GET /v1/whoami answered without account_id")?;
    let account = json_ok(
        http.post(format!("{base}/v1/service_accounts"))
            .bearer_auth(&admin_token)
            .json(&serde_json::json!({"account_id": account_id, "name": "bench-load"}))
            .send()
            .await
            .context("POST /v1/service_accounts")?,
        "POST /v1/service_accounts",
    )
    .await?;
    let iam_id = account["iam_id"]
        .as_str()
        .context("POST /v1/service_accounts answered without iam_id")?;
    let key = json_ok(
        http.post(format!("{base}/v1/api_keys"))
            .bearer_auth(&admin_token)
            .json(&serde_json::json!({"owner_iam_id": iam_id, "name": "bench-load"}))
            .send()
            .await
            .context("POST /v1/api_keys")?,
        "POST /v1/api_keys",
    )
    .await?;
    let apikey = key["apikey"]
        .as_str()
        .context("POST /v1/api_keys answered without apikey")?;
    Ok(Credentials {
        apikey: apikey.to_owned(),
        iam_id: iam_id.to_owned(),
    })
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
