//! `tessera-bench peer`: the same-run comparison with another OAuth server, driven by the same
//! load generator ([`crate::load`]) with the same connections, durations and phases as Tessera.
//!
//! ```text
//! (cd bench/peer && npm ci)          # node-oidc-provider, pinned by package-lock.json
//! target/release/tessera-bench peer [--algorithms RS256,ES256,EdDSA] [--workers 2]
//!     [--grants apikey] [--connections 64] [--duration 10] [--json]
//! target/release/tessera-bench peer --url http://127.0.0.1:PORT/token --pid PID \
//!     --client-id ID --client-secret SECRET --resource URI --algorithms ES256
//! ```
//!
//! Per algorithm, in order:
//! 1. **The peer**: by default `node server.mjs` in `--peer-dir` (bench/peer: node-oidc-provider
//!    with `--workers` node:cluster workers, a `client_credentials` client and JWT access tokens
//!    for one resource) on a free 127.0.0.1 port with a fresh random client secret; or, with
//!    `--url`, a token endpoint that already runs (then `--pid` names its process for the CPU
//!    column). One token is checked in full first ([`check_peer_token`]: 200, `token_type`
//!    Bearer, a JWT of the algorithm whose signature verifies against the peer's published JWKS,
//!    issuer, audience = the resource, `client_id`). Then warm-up, peak (closed loop) and half
//!    the peak rate (paced), each request `grant_type=client_credentials&resource=…&scope=…`
//!    with HTTP Basic client authentication, each answer checked: a 200 whose `access_token` is
//!    a JWT with the algorithm in its header. The server CPU is the peer's whole process tree
//!    (primary and workers, from `/proc`).
//! 2. **Tessera**, in the same run, right after: each of `--grants` (by default the API-key
//!    grant, the closest to `client_credentials`) on a fresh one-node SQLite server, exactly as
//!    the main benchmark runs it (`bench_one`), whose API-key answers are checked the same way.
//!    The Yandex JWT grants sign Ed25519 whatever the algorithm and run once, with EdDSA.
//!
//! The report gives each row's rate, p50/p99 at peak and at half rate, server cores and CPU µs
//! per request, the load generator's and other processes' cores, the load average before and
//! after, and the raw cost of one signature with Tessera's library (aws-lc) on this machine as
//! the reference both servers' cryptography is read against. Only 127.0.0.1 is contacted.

use crate::load::{self, ClientCredentials, Phases, RunStats, Target, Workload};
use crate::machine::{command_name, cpu_seconds, process_tree, Machine};
use crate::report::{failures_text, is_noisy, run_json, Finished};
use crate::server::{self, StoreKind};
use crate::{progress, signing, Grant, Setup};
use anyhow::Context;
use clap::Parser;
use comfy_table::Table;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tessera_core::model::Algorithm;

/// How long the peer may take to answer its first token request.
const PEER_START_LIMIT: Duration = Duration::from_secs(60);
/// How long the peer's processes get to end after SIGTERM before they are killed.
const PEER_STOP_GRACE: Duration = Duration::from_secs(3);
/// The most worker processes the peer may be started with.
const MAX_WORKERS: usize = 64;

#[derive(Debug, Parser)]
#[command(
    name = "tessera-bench peer",
    about = "Drives another OAuth server's client_credentials grant (node-oidc-provider from \
             bench/peer by default) with the same load generator as Tessera, then Tessera's \
             grants in the same run, and reports both side by side"
)]
pub struct PeerArgs {
    /// Signing algorithms, comma-separated (RS256, ES256, EdDSA); each is one peer and one
    /// Tessera run.
    #[arg(long, value_delimiter = ',', default_value = "RS256,ES256,EdDSA", value_parser = crate::parse_algorithm)]
    algorithms: Vec<Algorithm>,
    /// Keep-alive HTTP/1.1 connections, for the peer and for Tessera.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    #[command(flatten)]
    run: crate::RunLength,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Seconds of raw signing per algorithm (the reference line).
    #[arg(long, default_value_t = 3)]
    sign_seconds: u64,
    /// Skip the paced runs at half the peak rate.
    #[arg(long)]
    no_half_rate: bool,
    /// The peer's directory (server.mjs, and node_modules from `npm ci`).
    #[arg(long, default_value = "bench/peer")]
    peer_dir: PathBuf,
    /// The Node.js executable.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// The peer's worker processes (node:cluster).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// An already running token endpoint (http://<loopback IP>:<port>/<path>) instead of
    /// starting the peer; needs exactly one algorithm and --client-secret.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The running endpoint's process: its CPU and its descendants' is the server CPU.
    #[arg(long, requires = "url")]
    pid: Option<u32>,
    /// The running endpoint's issuer, whose discovery document names the JWKS the first token is
    /// verified with; by default the URL's origin.
    #[arg(long, requires = "url")]
    issuer: Option<String>,
    #[arg(long, default_value = "bench")]
    client_id: String,
    /// The client's secret; by default (the peer started here) a fresh random one.
    #[arg(long, env = "PEER_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// The resource indicator (RFC 8707) asked for: the token's audience.
    #[arg(long, default_value = "urn:tessera:bench")]
    resource: String,
    #[arg(long, default_value = "api")]
    scope: String,
    /// Tessera's grants measured in the same run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "apikey")]
    grants: Vec<Grant>,
    /// Measure only the peer.
    #[arg(long)]
    no_tessera: bool,
    /// Tessera's server binary; by default `tessera` next to this executable.
    #[arg(long, env = "TESSERA_BIN")]
    server_bin: Option<PathBuf>,
    /// Print the results as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// One measured line of the comparison.
struct Row {
    /// "node-oidc-provider 9.13.3 ×2 workers: client_credentials" or "Tessera: apikey".
    server: String,
    algorithm: Algorithm,
    outcome: anyhow::Result<Phases>,
    /// Processes whose CPU the server columns count.
    processes: usize,
    /// Their resident memory together, after the load.
    rss_kib: Option<u64>,
}

pub fn main(args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<ExitCode> {
    let args = PeerArgs::parse_from(std::iter::once("tessera-bench peer".into()).chain(args));
    check_args(&args)?;
    let server_bin = server::server_binary(args.server_bin.as_deref())?;
    if !args.no_tessera && !server_bin.is_file() {
        anyhow::bail!(
            "server binary {} not found: build it with `cargo build --release` (or give \
             --server-bin, or --no-tessera)",
            server_bin.display()
        );
    }
    let machine = Machine::describe();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .context("building the checking HTTP client")?;
    let peer_name = match &args.url {
        Some(url) => format!("peer at {url}"),
        None => format!(
            "node-oidc-provider {} (node {}) ×{} workers",
            peer_version(&args.peer_dir)?,
            node_version(&args.node)?,
            args.workers
        ),
    };
    progress(&format!("machine: {}", machine.summary()));
    progress(&format!("peer: {peer_name}"));
    let load_before = load_average();
    let mut raw = Vec::new();
    for &algorithm in &args.algorithms {
        let rate = signing::measure(
            algorithm,
            machine.cores,
            Duration::from_secs(args.sign_seconds),
        )
        .with_context(|| format!("raw signing with {}", algorithm.as_str()))?;
        progress(&format!(
            "raw signing {}: {:.0}/s on {} threads, other processes {} cores",
            algorithm.as_str(),
            rate.per_s,
            machine.cores,
            load::cores_text(rate.other_cores)
        ));
        raw.push((algorithm, rate));
    }
    let plan = args.run.plan(args.connections, !args.no_half_rate);
    let sqlite = Setup {
        store: StoreKind::Sqlite,
        nodes: 1,
    };
    let mut rows = Vec::new();
    let mut yandex_done = false;
    for &algorithm in &args.algorithms {
        let label = format!("{peer_name} / {}", algorithm.as_str());
        progress(&format!("{label}: starting"));
        let (outcome, processes, rss_kib) =
            match runtime.block_on(bench_peer(&args, &http, algorithm, &plan, &label)) {
                Ok((phases, processes, rss)) => (Ok(phases), processes, rss),
                Err(err) => {
                    progress(&format!("{label}: failed: {err:#}"));
                    (Err(err), 0, None)
                }
            };
        rows.push(Row {
            server: format!("{peer_name}: client_credentials"),
            algorithm,
            outcome,
            processes,
            rss_kib,
        });
        if args.no_tessera {
            continue;
        }
        for &grant in &args.grants {
            // The Yandex grants sign Ed25519 `t1.` tokens whatever the algorithm: once is enough.
            let algorithm = if grant.is_yandex() {
                if yandex_done {
                    continue;
                }
                Algorithm::EdDsa
            } else {
                algorithm
            };
            let label = format!("Tessera {} / {}", grant.name(), algorithm.as_str());
            progress(&format!("{label}: starting"));
            let measured = runtime.block_on(crate::bench_one(
                &server_bin,
                grant,
                algorithm,
                &sqlite,
                &plan,
            ));
            if let Err(err) = &measured {
                progress(&format!("{label}: failed: {err:#}"));
            }
            let rss_kib = measured.as_ref().ok().and_then(|m| {
                m.loaded_rss_kib
                    .iter()
                    .flatten()
                    .copied()
                    .reduce(|a, b| a + b)
            });
            rows.push(Row {
                server: match grant {
                    // Its CPU and memory columns are the agent process's, as in the main table.
                    Grant::Agent => "Tessera: agent (cached token, the agent's CPU)".to_owned(),
                    _ => format!("Tessera: {}", grant.name()),
                },
                algorithm,
                outcome: measured.map(|m| m.phases),
                processes: 1,
                rss_kib,
            });
        }
        yandex_done |= args.grants.iter().any(|grant| grant.is_yandex());
    }
    let load_after = load_average();
    let report = PeerReport {
        machine,
        peer: peer_name,
        connections: args.connections,
        duration_s: args.run.duration,
        client_threads: args.client_threads,
        raw,
        load_before,
        load_after,
        rows,
    };
    report.print(args.json)
}

fn check_args(args: &PeerArgs) -> anyhow::Result<()> {
    crate::check_load_flags(
        args.connections,
        &args.run,
        args.sign_seconds,
        args.client_threads,
    )?;
    if args.workers == 0 || args.workers > MAX_WORKERS {
        anyhow::bail!("--workers must be between 1 and {MAX_WORKERS}");
    }
    if args.algorithms.is_empty() {
        anyhow::bail!("--algorithms needs at least one algorithm");
    }
    if let Some(&bad) = args
        .algorithms
        .iter()
        .find(|algorithm| !PEER_ALGORITHMS.contains(&algorithm.as_str()))
    {
        anyhow::bail!(
            "the peer signs with {} only, not {}",
            PEER_ALGORITHMS.join(", "),
            bad.as_str()
        );
    }
    if let Some(url) = &args.url {
        token_endpoint(url)?;
        if args.algorithms.len() != 1 {
            anyhow::bail!(
                "--url is one running server: give exactly the one --algorithms it signs with"
            );
        }
        if args.client_secret.is_none() {
            anyhow::bail!("--url needs --client-secret (or PEER_CLIENT_SECRET)");
        }
    }
    Ok(())
}

/// The algorithms bench/peer/server.mjs can sign with.
const PEER_ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// The socket address and path of a token endpoint URL; only plain HTTP to a loopback IP
/// literal, since the benchmark contacts nothing beyond this machine.
fn token_endpoint(url: &str) -> anyhow::Result<(SocketAddr, String)> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--url {url:?} is not a URL"))?;
    if parsed.scheme() != "http" {
        anyhow::bail!("--url must be http:// (the load generator speaks plain HTTP/1.1)");
    }
    let host = parsed.host_str().unwrap_or_default();
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| {
            anyhow::anyhow!("--url must name a loopback IP address (127.0.0.1), not {host:?}")
        })?;
    if !ip.is_loopback() {
        anyhow::bail!("--url must be on this machine (a loopback address), got {ip}");
    }
    let port = parsed
        .port_or_known_default()
        .context("--url has no port")?;
    Ok((SocketAddr::new(ip, port), parsed.path().to_owned()))
}

/// Starts (or finds) the peer for `algorithm`, checks one token in full, drives the load and
/// stops the peer again; the phases, how many processes its CPU covers, and their RSS.
async fn bench_peer(
    args: &PeerArgs,
    http: &reqwest::Client,
    algorithm: Algorithm,
    plan: &load::Plan,
    label: &str,
) -> anyhow::Result<(Phases, usize, Option<u64>)> {
    let mut started = None;
    let (url, issuer, client, root_pid) = match &args.url {
        Some(url) => {
            let client = client_credentials(args, args.client_secret.clone())?;
            let issuer = match &args.issuer {
                Some(issuer) => issuer.clone(),
                None => origin(url)?,
            };
            (url.clone(), issuer, client, args.pid)
        }
        None => {
            let secret = match &args.client_secret {
                Some(secret) => secret.clone(),
                None => server::random_key()?,
            };
            let client = client_credentials(args, Some(secret))?;
            let peer = PeerProcess::start(args, algorithm, &client)?;
            let url = format!("http://{}/token", peer.addr);
            let issuer = format!("http://{}", peer.addr);
            let pid = peer.child.id();
            started = Some(peer);
            (url, issuer, client, Some(pid))
        }
    };
    let result = async {
        wait_for_token(http, &url, &client, started.as_mut()).await?;
        check_peer_token(http, &url, &issuer, &client, algorithm).await?;
        // Taken once the workers listen: node:cluster starts them all before the first answer.
        let pids = root_pid.map(process_tree).unwrap_or_default();
        let (addr, path) = token_endpoint(&url)?;
        let target = Target::client_credentials(addr, &path, &client, algorithm.as_str())?;
        let plan = load::Plan {
            server_pids: pids.clone(),
            ..plan.clone()
        };
        let phases = load::run(Workload::Http(Arc::new(target)), &plan, |msg| {
            progress(&format!("{label}: {msg}"))
        })
        .await?;
        // A process that died during the load took its CPU time with it: the run is invalid.
        if let Some(gone) = pids
            .iter()
            .find(|pid| cpu_seconds(&pid.to_string()).is_none())
        {
            anyhow::bail!("the peer's process {gone} ended during the load");
        }
        let rss = pids
            .iter()
            .filter_map(|&pid| server::rss_kib(pid))
            .reduce(|a, b| a + b);
        Ok((phases, pids.len(), rss))
    }
    .await;
    let result = match (result, started.as_ref()) {
        (Err(err), Some(peer)) => Err(anyhow::anyhow!(
            "{err:#}\nthe peer's output:\n{}",
            server::log_tail(&peer.log_path)
        )),
        (result, _) => result,
    };
    if let Some(peer) = started {
        peer.stop();
    }
    result
}

fn client_credentials(
    args: &PeerArgs,
    client_secret: Option<String>,
) -> anyhow::Result<ClientCredentials> {
    Ok(ClientCredentials {
        client_id: args.client_id.clone(),
        client_secret: client_secret.context("no client secret")?,
        resource: Some(args.resource.clone()),
        scope: Some(args.scope.clone()),
    })
}

/// `scheme://host:port` of a URL.
fn origin(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url:?} is not a URL"))?;
    Ok(parsed.origin().ascii_serialization())
}

/// The peer started here: `node server.mjs` and its workers, stopped (and, if need be, killed)
/// when done.
struct PeerProcess {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    stopped: bool,
    // Dropped last: the log goes with it.
    _dir: tempfile::TempDir,
}

impl PeerProcess {
    fn start(
        args: &PeerArgs,
        algorithm: Algorithm,
        client: &ClientCredentials,
    ) -> anyhow::Result<PeerProcess> {
        if !args.peer_dir.join("node_modules/oidc-provider").is_dir() {
            anyhow::bail!(
                "{} has no node_modules/oidc-provider: run `npm ci` there first (or bench/peer/run.sh)",
                args.peer_dir.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("tessera-bench-peer-")
            .tempdir()
            .context("creating the peer's log directory")?;
        let log_path = dir.path().join("peer.log");
        let addr = server::free_port()?;
        let mut command = Command::new(&args.node);
        command
            .arg("server.mjs")
            .current_dir(&args.peer_dir)
            .env("PEER_ALG", algorithm.as_str())
            .env("PEER_PORT", addr.port().to_string())
            .env("PEER_WORKERS", args.workers.to_string())
            .env("PEER_CLIENT_ID", &client.client_id)
            .env("PEER_CLIENT_SECRET", &client.client_secret)
            .env(
                "PEER_RESOURCE",
                client.resource.as_deref().unwrap_or_default(),
            );
        server::output_to_log(&mut command, &log_path, "the peer's log")?;
        let child = command
            .spawn()
            .with_context(|| format!("starting {} server.mjs", args.node.display()))?;
        Ok(PeerProcess {
            child,
            addr,
            log_path,
            stopped: false,
            _dir: dir,
        })
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => anyhow::bail!("the peer exited ({status})"),
            Err(err) => Err(err).context("checking on the peer"),
        }
    }

    fn stop(mut self) {
        self.kill();
    }

    /// SIGTERM to the primary (which stops its workers), then SIGKILL to whatever of the tree is
    /// left after a grace period. Only this process and its own descendants are signalled.
    fn kill(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.child.id();
        let tree = process_tree(pid);
        signal(pid, "TERM");
        let deadline = Instant::now() + PEER_STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        while Instant::now() < deadline && tree.iter().skip(1).any(|&p| alive_node(p)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        for &worker in tree.iter().skip(1) {
            if alive_node(worker) {
                signal(worker, "KILL");
            }
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `pid` still is a node process (a worker of ours, not a recycled id).
fn alive_node(pid: u32) -> bool {
    command_name(pid).is_some_and(|name| name == "node")
}

/// Sends a signal with kill(1): the benchmark has no libc binding of its own.
fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Requests tokens until one comes back 200 (the workers listen), the peer exits, or the limit
/// passes.
async fn wait_for_token(
    http: &reqwest::Client,
    url: &str,
    client: &ClientCredentials,
    mut peer: Option<&mut PeerProcess>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Some(peer) = peer.as_deref_mut() {
            peer.ensure_running()?;
        }
        if let Ok(response) = token_request(http, url, client)?.send().await {
            if response.status().is_success() {
                return Ok(());
            }
        }
        if started.elapsed() > PEER_START_LIMIT {
            anyhow::bail!(
                "the peer did not issue a token within {} s",
                PEER_START_LIMIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn token_request(
    http: &reqwest::Client,
    url: &str,
    client: &ClientCredentials,
) -> anyhow::Result<reqwest::RequestBuilder> {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(resource) = &client.resource {
        form.push(("resource", resource));
    }
    if let Some(scope) = &client.scope {
        form.push(("scope", scope));
    }
    Ok(http
        .post(url)
        .header(
            reqwest::header::AUTHORIZATION,
            client.basic_authorization()?,
        )
        .form(&form))
}

/// One token from the peer, checked in full: a 200 with `token_type` Bearer and an
/// `access_token` that is a JWT signed with `algorithm` by a key of the issuer's published JWKS
/// (found through its discovery document), issued by `issuer` for the resource and the client.
pub async fn check_peer_token(
    http: &reqwest::Client,
    url: &str,
    issuer: &str,
    client: &ClientCredentials,
    algorithm: Algorithm,
) -> anyhow::Result<()> {
    let response = token_request(http, url, client)?
        .send()
        .await
        .context("asking the peer for a token")?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .context("reading the peer's token answer")?;
    if status != reqwest::StatusCode::OK {
        anyhow::bail!(
            "the peer answered the token request with {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    if !load::access_token_has_alg(&body, algorithm.as_str()) {
        anyhow::bail!(
            "the peer's access_token is not a JWT signed with {}: {}",
            algorithm.as_str(),
            String::from_utf8_lossy(&body)
        );
    }
    let answer: Value = serde_json::from_slice(&body).context("the token answer is not JSON")?;
    if !answer["token_type"]
        .as_str()
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        anyhow::bail!(
            "the peer's token_type is {} instead of Bearer",
            answer["token_type"]
        );
    }
    let token = answer["access_token"]
        .as_str()
        .context("the token answer has no access_token")?;
    let discovery_url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let discovery: Value = server::json_ok(
        http.get(&discovery_url)
            .send()
            .await
            .with_context(|| format!("GET {discovery_url}"))?,
        "the peer's discovery document",
    )
    .await?;
    let jwks_uri = discovery["jwks_uri"]
        .as_str()
        .context("the discovery document has no jwks_uri")?;
    token_endpoint(jwks_uri).context("the peer's jwks_uri")?;
    let jwks_text = http
        .get(jwks_uri)
        .send()
        .await
        .with_context(|| format!("GET {jwks_uri}"))?
        .error_for_status()
        .with_context(|| format!("GET {jwks_uri}"))?
        .text()
        .await
        .context("reading the peer's JWKS")?;
    let jwks = tessera_verify::Jwks::from_json(&jwks_text).context("the peer's JWKS")?;
    let validation = tessera_verify::Validation::new()
        .with_issuer(issuer)
        .with_audiences([client.resource.clone().unwrap_or_default()]);
    let claims = jwks
        .verify_with(token, &validation, server::unix_now()?)
        .context("the peer's access token does not verify against its JWKS")?;
    if claims.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
        anyhow::bail!(
            "the peer's token has client_id {:?} instead of {:?}",
            claims.get("client_id"),
            client.client_id
        );
    }
    Ok(())
}

/// The version of the peer's installed oidc-provider.
fn peer_version(peer_dir: &Path) -> anyhow::Result<String> {
    let path = peer_dir.join("node_modules/oidc-provider/package.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (run `npm ci` in {} first)",
            path.display(),
            peer_dir.display()
        )
    })?;
    let manifest: Value = serde_json::from_str(&text).context("oidc-provider's package.json")?;
    manifest["version"]
        .as_str()
        .map(str::to_owned)
        .context("oidc-provider's package.json has no version")
}

fn node_version(node: &Path) -> anyhow::Result<String> {
    let output = Command::new(node)
        .arg("--version")
        .output()
        .with_context(|| format!("running {} --version", node.display()))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim()
        .trim_start_matches('v')
        .to_owned())
}

/// `/proc/loadavg`'s three averages (1, 5, 15 minutes), if there is a procfs.
fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

fn load_text(load: Option<[f64; 3]>) -> String {
    load.map_or_else(
        || "-".to_owned(),
        |[one, five, fifteen]| format!("{one:.2} {five:.2} {fifteen:.2}"),
    )
}

struct PeerReport {
    machine: Machine,
    peer: String,
    connections: usize,
    duration_s: u64,
    client_threads: usize,
    raw: Vec<(Algorithm, signing::SignRate)>,
    load_before: Option<[f64; 3]>,
    load_after: Option<[f64; 3]>,
    rows: Vec<Row>,
}

/// Server core-µs per successful request.
fn cpu_us(stats: &RunStats) -> Option<f64> {
    let rate = stats.rate();
    (rate > 0.0).then_some(stats.cores.server? * 1e6 / rate)
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.decimals$}"))
}

impl PeerReport {
    /// Core-µs of one signature with Tessera's library on this machine.
    fn sign_us(&self, algorithm: Algorithm) -> Option<f64> {
        let (_, rate) = self.raw.iter().find(|(a, _)| *a == algorithm)?;
        Some(self.machine.cores as f64 * 1e6 / rate.per_s.max(f64::MIN_POSITIVE))
    }
}

impl Finished for PeerReport {
    fn all_clean(&self) -> bool {
        self.rows.iter().all(|row| match &row.outcome {
            Ok(phases) => {
                phases.peak.failures.total() == 0
                    && phases
                        .half
                        .as_ref()
                        .is_none_or(|half| half.failures.total() == 0)
            }
            Err(_) => false,
        })
    }

    fn print_table(&self) {
        let mut table = Table::new();
        table.set_header(vec![
            "server",
            "alg",
            "peak/s",
            "p50",
            "p99",
            "half/s",
            "p50@half",
            "p99@half",
            "late@half",
            "server cores",
            "CPU µs/req",
            "load gen cores",
            "other cores",
            "RSS MiB",
            "failed",
        ]);
        for row in &self.rows {
            let mut cells = vec![row.server.clone(), row.algorithm.as_str().to_owned()];
            match &row.outcome {
                Ok(phases) => {
                    let peak = &phases.peak;
                    let half = phases.half.as_ref();
                    let other = |stats: &RunStats| {
                        let text = load::cores_text(stats.cores.other);
                        if is_noisy(stats.cores.other) {
                            format!("{text} (noisy)")
                        } else {
                            text
                        }
                    };
                    cells.extend([
                        format!("{:.0}", peak.rate()),
                        crate::report::ms(peak.percentile_ms(50.0)),
                        crate::report::ms(peak.percentile_ms(99.0)),
                        number(half.map(RunStats::rate), 0),
                        crate::report::ms(half.and_then(|h| h.percentile_ms(50.0))),
                        crate::report::ms(half.and_then(|h| h.percentile_ms(99.0))),
                        half.map_or_else(|| "-".to_owned(), |h| h.late_sends.to_string()),
                        format!(
                            "{} ({} proc)",
                            load::cores_text(peak.cores.server),
                            row.processes
                        ),
                        number(cpu_us(peak), 1),
                        load::cores_text(peak.cores.client),
                        match half {
                            Some(half) => format!("{} / {}", other(peak), other(half)),
                            None => other(peak),
                        },
                        number(row.rss_kib.map(|k| k as f64 / 1024.0), 1),
                        match half {
                            Some(half) => {
                                format!("{} / {}", failures_text(peak), failures_text(half))
                            }
                            None => failures_text(peak),
                        },
                    ]);
                }
                Err(err) => cells.push(format!("failed: {err:#}")),
            }
            table.add_row(cells);
        }
        println!("{table}");
        println!(
            "Machine: {}. Load generator: {} thread(s), {} keep-alive connections, {} s per phase, \
             sharing the cores with the server. Load average before {}, after {}.",
            self.machine.summary(),
            self.client_threads,
            self.connections,
            self.duration_s,
            load_text(self.load_before),
            load_text(self.load_after)
        );
        for (algorithm, rate) in &self.raw {
            // The core-µs assume the threads had the cores to themselves: with other load they
            // are overstated, so the line says how busy the machine was.
            println!(
                "Raw {} signing (Tessera's aws-lc, {} threads): {:.0}/s, {} core-µs per signature; \
                 other processes {} cores{}.",
                algorithm.as_str(),
                self.machine.cores,
                rate.per_s,
                number(self.sign_us(*algorithm), 1),
                load::cores_text(rate.other_cores),
                if is_noisy(rate.other_cores) {
                    " (disturbed: the cost per signature is overstated)"
                } else {
                    ""
                }
            );
        }
        println!(
            "Peer: {}. Its CPU is its whole process tree (primary and workers). \"other cores\" \
             (peak / half) is what processes outside the servers and the load generator used; \
             \"failed\" is peak / half.",
            self.peer
        );
    }

    fn to_json(&self) -> Value {
        json!({
            "machine": self.machine.to_json(),
            "peer": self.peer,
            "connections": self.connections,
            "duration_s": self.duration_s,
            "client_threads": self.client_threads,
            "load_average_before": self.load_before,
            "load_average_after": self.load_after,
            "raw_signing": self.raw.iter().map(|(algorithm, rate)| json!({
                "algorithm": algorithm.as_str(),
                "per_s": rate.per_s,
                "core_us_per_signature": self.sign_us(*algorithm),
                "other_processes_cores_busy": rate.other_cores,
            })).collect::<Vec<_>>(),
            "rows": self.rows.iter().map(|row| match &row.outcome {
                Ok(phases) => json!({
                    "server": row.server,
                    "algorithm": row.algorithm.as_str(),
                    "processes": row.processes,
                    "rss_kib": row.rss_kib,
                    "server_cpu_us_per_request": cpu_us(&phases.peak),
                    "peak": run_json(&phases.peak),
                    "half_rate": phases.half.as_ref().map(run_json),
                }),
                Err(err) => json!({
                    "server": row.server,
                    "algorithm": row.algorithm.as_str(),
                    "error": format!("{err:#}"),
                }),
            }).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_endpoints_are_driven() {
        let (addr, path) = token_endpoint("http://127.0.0.1:8090/token").unwrap();
        assert_eq!(addr.to_string(), "127.0.0.1:8090");
        assert_eq!(path, "/token");
        assert_eq!(
            token_endpoint("http://[::1]:9/oauth/token").unwrap().1,
            "/oauth/token"
        );
        for bad in [
            "http://10.0.0.1:8090/token",
            "http://localhost:8090/token",
            "https://127.0.0.1:8090/token",
            "not a url",
        ] {
            assert!(token_endpoint(bad).is_err(), "{bad}");
        }
        assert_eq!(
            origin("http://127.0.0.1:8090/token").unwrap(),
            "http://127.0.0.1:8090"
        );
    }

    #[test]
    fn the_flags_are_checked() {
        let parse = |extra: &[&str]| {
            PeerArgs::try_parse_from(
                std::iter::once("tessera-bench peer").chain(extra.iter().copied()),
            )
        };
        let defaults = parse(&[]).unwrap();
        assert_eq!(defaults.connections, 64);
        assert_eq!(defaults.workers, 2);
        assert_eq!(defaults.grants, [Grant::Apikey]);
        assert_eq!(defaults.algorithms.len(), 3);
        assert!(check_args(&defaults).is_ok());
        // A running server signs with one algorithm and needs its client's secret.
        let url = ["--url", "http://127.0.0.1:1/token"];
        assert!(check_args(&parse(&url).unwrap()).is_err());
        let one = parse(&[
            url[0],
            url[1],
            "--algorithms",
            "ES256",
            "--client-secret",
            "s",
        ])
        .unwrap();
        assert!(check_args(&one).is_ok());
        // The peer cannot sign PS256, and --pid belongs to --url.
        assert!(check_args(&parse(&["--algorithms", "PS256"]).unwrap()).is_err());
        assert!(parse(&["--pid", "1"]).is_err());
        assert!(check_args(&parse(&["--workers", "0"]).unwrap()).is_err());
    }

    #[test]
    fn load_average_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(load_average().is_some_and(|l| l.iter().all(|v| *v >= 0.0)));
        }
        assert_eq!(load_text(None), "-");
        assert_eq!(load_text(Some([1.0, 0.5, 0.25])), "1.00 0.50 0.25");
    }
}
