//! The load generator: N keep-alive HTTP/1.1 connections to the server, one task each, or for
//! gRPC ([`crate::grpc`]) N concurrent unary calls spread over a few HTTP/2 connections. With
//! several nodes the connections are spread round-robin over them (connection `i` goes to node
//! `i mod nodes`), as a load balancer with long-lived connections would.
//!
//! Two shapes of run:
//! - **Closed loop** (peak): each connection sends its next request as soon as the previous
//!   answer is read, so the server is saturated; tokens/s is successes over the wall time.
//! - **Paced** (half rate): a fixed total rate is spread evenly over the connections, each sending
//!   on its own schedule and released at its due time by one thread ([`crate::pacer`]; the
//!   runtime's millisecond timer would send the run in bursts); latency is measured from the
//!   moment a request is sent. Requests sent more than [`LATE_SEND`] behind schedule (the
//!   connection was still waiting on an earlier answer) are counted, so a server that cannot keep up at that rate is visible.
//!
//! Requests (a POST with a body, or a GET) and their headers are built once (for the Yandex JWT
//! grant one pre-signed JWT per connection, all signed just before the load and valid for longer
//! than any run can last). Every request has a timeout and every run a deadline, so a run always
//! ends by itself. Only responses with status 200 (and, for introspection, `"active":true` in the
//! body; for the Yandex grant a `t1.` IAM token; for the IBM token grants and the metadata agent
//! an `access_token`) count as successes and enter the latency histogram; everything else is
//! counted by kind.

use crate::grpc::GrpcTarget;
use crate::machine::{cpu_seconds, cpu_seconds_between, cpu_seconds_by_name, system_busy_seconds};
use crate::pacer::{Pace, Pacer};
use crate::server::{Credentials, APIKEY_GRANT};
use crate::Grant;
use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderName, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// No single request may take longer than this; it counts as a timeout failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A paced send this far behind its schedule counts as late.
pub const LATE_SEND: Duration = Duration::from_millis(5);
/// Pause after a failed connect, so a dead server is not hammered in a tight loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(20);
/// The command name of PostgreSQL's processes, whose CPU time is counted as the database's.
const DATABASE_PROCESS: &str = "postgres";
/// What a successful introspection answer must contain.
const ACTIVE: &[u8] = br#""active":true"#;
/// What a successful `POST /iam/v1/tokens` answer must contain.
const IAM_TOKEN: &[u8] = br#""iamToken":"t1."#;
/// What a successful IBM grant's answer contains.
const ACCESS_TOKEN: &[u8] = br#""access_token":""#;

/// What to run against one server.
#[derive(Debug, Clone)]
pub struct Plan {
    pub connections: usize,
    /// The servers' process ids, to measure the CPU they use during each run.
    pub server_pids: Vec<u32>,
    /// Whether the servers use PostgreSQL on this machine: its processes' CPU is then measured
    /// apart instead of counting as other load.
    pub database: bool,
    pub warmup: Duration,
    pub duration: Duration,
    pub half_rate: bool,
}

/// One node to send to.
#[derive(Debug)]
struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
}

/// One prepared request, sent over and over (to one or several nodes).
#[derive(Debug)]
pub struct Target {
    endpoints: Vec<Endpoint>,
    method: Method,
    path: String,
    /// `None` for a request without a body (GET).
    content_type: Option<&'static str>,
    /// Connection `i` sends `bodies[i mod len]`; one empty body for a GET.
    bodies: Vec<Bytes>,
    authorization: Option<HeaderValue>,
    /// Headers a surface requires beyond the usual ones (the agent's `Metadata-Flavor`).
    extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// Bytes a 200 answer must contain to count as a success.
    expect: Option<&'static [u8]>,
    /// Besides: the answer's `access_token` must be a three-part JWT whose header names this
    /// `alg` (the API-key grant, and a peer's token endpoint).
    expect_alg: Option<String>,
    /// Each request sends a body drawn at random from `bodies` instead of its connection's.
    random_body: bool,
}

impl Target {
    /// The HTTP/1.1 request of `grant` (not the gRPC one). `jwts` are the pre-signed
    /// service-account JWTs of the Yandex JWT grant (one per connection), unused by the others.
    /// For the agent grant `addrs` are the agents', not the servers'.
    pub fn new(
        addrs: &[SocketAddr],
        grant: Grant,
        creds: &Credentials,
        jwts: &[String],
        prepared: Option<&crate::grants::Prepared>,
    ) -> anyhow::Result<Target> {
        const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
        let mut method = Method::POST;
        let mut extra_headers = Vec::new();
        let (path, content_type, bodies, authorization, expect) = match grant {
            Grant::Apikey => (
                "/identity/token",
                FORM,
                vec![apikey_body(&creds.apikey)?],
                None,
                Some(ACCESS_TOKEN),
            ),
            Grant::Introspect => (
                "/identity/introspect",
                FORM,
                vec![
                    serde_urlencoded::to_string([("token", creds.introspected_token.as_str())])
                        .context("encoding the introspection request")?,
                ],
                Some(
                    HeaderValue::from_str(&format!("Bearer {}", creds.bearer_token))
                        .context("the Authorization header")?,
                ),
                Some(ACTIVE),
            ),
            Grant::YandexJwtRest => {
                if jwts.is_empty() {
                    anyhow::bail!("the Yandex JWT grant needs at least one signed JWT");
                }
                (
                    "/iam/v1/tokens",
                    Some("application/json"),
                    jwts.iter()
                        .map(|jwt| serde_json::json!({ "jwt": jwt }).to_string())
                        .collect(),
                    None,
                    Some(IAM_TOKEN),
                )
            }
            Grant::YandexJwtGrpc => {
                anyhow::bail!("the gRPC grant is driven by the gRPC load loop, not over HTTP/1.1")
            }
            Grant::Assume | Grant::IamAuthz | Grant::CrToken | Grant::Password => {
                let prepared = prepared.with_context(|| {
                    format!("the {} grant needs its prepared request", grant.name())
                })?;
                (
                    "/identity/token",
                    FORM,
                    vec![prepared.body.clone()],
                    prepared
                        .authorization
                        .as_deref()
                        .map(HeaderValue::from_str)
                        .transpose()
                        .context("the Authorization header")?,
                    Some(ACCESS_TOKEN),
                )
            }
            Grant::Agent => {
                method = Method::GET;
                extra_headers.push((
                    HeaderName::from_static(crate::agent::FLAVOR_HEADER.0),
                    HeaderValue::from_static(crate::agent::FLAVOR_HEADER.1),
                ));
                (
                    crate::agent::TOKEN_PATH,
                    None,
                    vec![String::new()],
                    None,
                    Some(ACCESS_TOKEN),
                )
            }
        };
        if addrs.is_empty() {
            anyhow::bail!("no server to send requests to");
        }
        let endpoints = addrs
            .iter()
            .map(|&addr| {
                let host = HeaderValue::from_str(&addr.to_string()).context("the Host header")?;
                Ok(Endpoint { addr, host })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Target {
            endpoints,
            method,
            path: path.to_owned(),
            content_type,
            bodies: bodies.into_iter().map(Bytes::from).collect(),
            authorization,
            extra_headers,
            expect,
            expect_alg: None,
            random_body: false,
        })
    }

    /// Also requires every answer's `access_token` to be a JWT signed with `algorithm` (its
    /// header's `alg`), not only to be there.
    pub fn expecting_jwt_alg(mut self, algorithm: &str) -> Target {
        self.expect_alg = Some(algorithm.to_owned());
        self
    }

    /// A foreign OAuth 2.0 token endpoint's `client_credentials` grant (RFC 6749 §4.4) with
    /// `client_secret_basic` authentication and, if given, a resource indicator (RFC 8707) and a
    /// scope: how the benchmark drives a peer with the same load generator as Tessera. Every
    /// answer must be a 200 whose `access_token` is a JWT signed with `algorithm`.
    pub fn client_credentials(
        addr: SocketAddr,
        path: &str,
        client: &ClientCredentials,
        algorithm: &str,
    ) -> anyhow::Result<Target> {
        if !path.starts_with('/') {
            anyhow::bail!("the token endpoint's path must start with /, got {path:?}");
        }
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(resource) = &client.resource {
            form.push(("resource", resource));
        }
        if let Some(scope) = &client.scope {
            form.push(("scope", scope));
        }
        let body = serde_urlencoded::to_string(&form).context("encoding the token request")?;
        let authorization = HeaderValue::from_str(&client.basic_authorization()?)
            .context("the Authorization header")?;
        let host = HeaderValue::from_str(&addr.to_string()).context("the Host header")?;
        Ok(Target {
            endpoints: vec![Endpoint { addr, host }],
            method: Method::POST,
            path: path.to_owned(),
            content_type: Some("application/x-www-form-urlencoded"),
            bodies: vec![Bytes::from(body)],
            authorization: Some(authorization),
            extra_headers: Vec::new(),
            expect: Some(ACCESS_TOKEN),
            expect_alg: Some(algorithm.to_owned()),
            random_body: false,
        })
    }

    /// The API-key grant where every request carries a key drawn at random from `apikeys` (all
    /// of them valid), so the server's look-ups are spread over the whole key set instead of
    /// one hot key.
    pub fn apikeys_at_random(addrs: &[SocketAddr], apikeys: &[String]) -> anyhow::Result<Target> {
        let (first, _) = apikeys
            .split_first()
            .context("drawing API keys at random needs at least one key")?;
        let creds = Credentials {
            apikey: first.clone(),
            iam_id: String::new(),
            account_id: String::new(),
            admin_token: String::new(),
            bearer_token: String::new(),
            introspected_token: String::new(),
        };
        let mut target = Target::new(addrs, Grant::Apikey, &creds, &[], None)?;
        target.bodies = apikeys
            .iter()
            .map(|apikey| apikey_body(apikey).map(Bytes::from))
            .collect::<anyhow::Result<_>>()?;
        target.random_body = true;
        Ok(target)
    }

    /// The node that connection `index` talks to: round-robin.
    fn endpoint(&self, index: usize) -> &Endpoint {
        &self.endpoints[index % self.endpoints.len()]
    }

    /// The body of connection `index`'s next request: its own, or one drawn at random.
    fn body(&self, index: usize) -> Option<&Bytes> {
        let pick = if self.random_body {
            random_below(self.bodies.len())
        } else {
            index
        };
        self.bodies.get(pick % self.bodies.len().max(1))
    }

    /// The request connection `index` sends.
    fn request(&self, index: usize) -> anyhow::Result<Request<Full<Bytes>>> {
        let endpoint = self.endpoint(index);
        let body = self.body(index).context("no request body")?;
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(HOST, endpoint.host.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(content_type) = self.content_type {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        for (name, value) in &self.extra_headers {
            builder = builder.header(name.clone(), value.clone());
        }
        builder
            .body(Full::new(body.clone()))
            .context("building the request")
    }

    /// Whether a 200 answer's body is what a success looks like.
    fn body_ok(&self, body: &[u8]) -> bool {
        let contains = match self.expect {
            None => true,
            Some(needle) => body.windows(needle.len()).any(|window| window == needle),
        };
        contains
            && self
                .expect_alg
                .as_deref()
                .is_none_or(|alg| access_token_has_alg(body, alg))
    }
}

/// A client of a foreign token endpoint: its id and secret (sent as HTTP Basic), and what it
/// asks for.
#[derive(Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: String,
    /// The `resource` parameter (RFC 8707), if any.
    pub resource: Option<String>,
    /// The `scope` parameter, if any.
    pub scope: Option<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"***")
            .field("resource", &self.resource)
            .field("scope", &self.scope)
            .finish()
    }
}

impl ClientCredentials {
    /// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 §2.3.1 has it.
    pub fn basic_authorization(&self) -> anyhow::Result<String> {
        use base64::Engine;
        let encode = |value: &str| -> anyhow::Result<String> {
            let pair =
                serde_urlencoded::to_string([("", value)]).context("encoding a credential")?;
            Ok(pair.trim_start_matches('=').to_owned())
        };
        let pair = format!(
            "{}:{}",
            encode(&self.client_id)?,
            encode(&self.client_secret)?
        );
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }
}

/// Whether the `access_token` of a token answer is three non-empty base64url parts whose first
/// is a JSON header with this `alg`; read without parsing the whole answer (this runs for every
/// request, on the cores the server uses too).
pub(crate) fn access_token_has_alg(body: &[u8], alg: &str) -> bool {
    access_token_header(body)
        .is_some_and(|header| header.get("alg").and_then(|v| v.as_str()) == Some(alg))
}

fn access_token_header(body: &[u8]) -> Option<serde_json::Value> {
    use base64::Engine;
    let start = body
        .windows(ACCESS_TOKEN.len())
        .position(|window| window == ACCESS_TOKEN)?
        + ACCESS_TOKEN.len();
    let rest = body.get(start..)?;
    let token = rest.get(..rest.iter().position(|&b| b == b'"')?)?;
    let mut parts = token.split(|&b| b == b'.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if payload.is_empty() || signature.is_empty() {
        return None;
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    serde_json::from_slice(&header).ok()
}

/// The form of the API-key grant with `apikey`.
fn apikey_body(apikey: &str) -> anyhow::Result<String> {
    serde_urlencoded::to_string([
        ("grant_type", APIKEY_GRANT),
        ("apikey", apikey),
        ("response_type", "cloud_iam"),
    ])
    .context("encoding the token request")
}

/// A number below `n` (0 for 0) from a per-thread xorshift generator: cheap enough to draw per
/// request without the load generator's cost hiding the server's. Not for secrets.
fn random_below(n: usize) -> usize {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    fn seed() -> u64 {
        use aws_lc_rs::rand::SecureRandom;
        let mut bytes = [0u8; 8];
        // A failed fill leaves a fixed odd seed: the draw stays spread, only predictable.
        let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
        u64::from_le_bytes(bytes) | 1
    }
    if n == 0 {
        return 0;
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        // The high bits, scaled: unbiased enough for n far below 2^64.
        ((u128::from(x) * n as u128) >> 64) as usize
    })
}

/// Everything that was not a 200.
#[derive(Debug, Clone, Default)]
pub struct Failures {
    /// Responses by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// gRPC calls that ended with a status other than OK, by code (transport failures of a
    /// call show here too, as the status tonic reports, usually UNAVAILABLE).
    pub by_grpc_code: BTreeMap<i32, u64>,
    /// Connections that could not be opened.
    pub connect: u64,
    /// Requests that failed on the wire (reset, closed, protocol error).
    pub io: u64,
    /// Requests without an answer within [`REQUEST_TIMEOUT`].
    pub timeouts: u64,
    /// 200 answers without what a success must contain (an introspection with `active: false`).
    pub unexpected: u64,
    /// The first failure seen, for the report.
    pub first: Option<String>,
}

impl Failures {
    pub fn total(&self) -> u64 {
        self.by_status.values().sum::<u64>()
            + self.by_grpc_code.values().sum::<u64>()
            + self.connect
            + self.io
            + self.timeouts
            + self.unexpected
    }

    /// Answers that were not a success: non-200 (a gRPC status other than OK), or a 200 without
    /// the expected content.
    pub fn non_200(&self) -> u64 {
        self.by_status.values().sum::<u64>()
            + self.by_grpc_code.values().sum::<u64>()
            + self.unexpected
    }

    pub fn note(&mut self, what: impl FnOnce() -> String) {
        if self.first.is_none() {
            self.first = Some(what());
        }
    }

    fn merge(&mut self, other: Failures) {
        for (status, n) in other.by_status {
            *self.by_status.entry(status).or_default() += n;
        }
        for (code, n) in other.by_grpc_code {
            *self.by_grpc_code.entry(code).or_default() += n;
        }
        self.connect += other.connect;
        self.io += other.io;
        self.timeouts += other.timeouts;
        self.unexpected += other.unexpected;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunStats {
    /// Requests per second asked for (paced runs only).
    pub target_rate: Option<f64>,
    pub elapsed: Duration,
    pub ok: u64,
    pub failures: Failures,
    /// Paced sends more than [`LATE_SEND`] behind schedule.
    pub late_sends: u64,
    /// Cores kept busy on average during the run.
    pub cores: CoresBusy,
    /// Latencies of the successful requests in microseconds, sorted.
    latencies_us: Vec<u32>,
}

#[cfg(test)]
impl RunStats {
    /// A run of one second with `ok` successes, the server busy `server_cores`, and these
    /// latencies.
    pub fn synthetic(ok: u64, server_cores: f64, mut latencies_us: Vec<u32>) -> RunStats {
        latencies_us.sort_unstable();
        RunStats {
            target_rate: None,
            elapsed: Duration::from_secs(1),
            ok,
            failures: Failures::default(),
            late_sends: 0,
            cores: CoresBusy {
                server: Some(server_cores),
                ..CoresBusy::default()
            },
            latencies_us,
        }
    }
}

/// Cores kept busy on average during a run (CPU seconds over wall seconds), by whom; `None`
/// where it could not be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct CoresBusy {
    /// The servers, all nodes together.
    pub server: Option<f64>,
    /// PostgreSQL's processes (runs on PostgreSQL only).
    pub database: Option<f64>,
    /// This load generator.
    pub client: Option<f64>,
    /// Other processes (not the servers, the load generator or the database): with much of
    /// this, the run measured a machine that was doing something else.
    pub other: Option<f64>,
}

/// The CPU seconds used so far by the processes [`CoresBusy`] tells apart.
struct CpuReading {
    server: Option<f64>,
    /// Per PostgreSQL process (they come and go during a run).
    database: Option<BTreeMap<u32, f64>>,
    client: Option<f64>,
    /// All of the machine's busy time.
    system: Option<f64>,
}

impl CpuReading {
    fn now(plan: &Plan) -> CpuReading {
        let server = if plan.server_pids.is_empty() {
            None
        } else {
            plan.server_pids
                .iter()
                .map(|pid| cpu_seconds(&pid.to_string()))
                .sum()
        };
        CpuReading {
            server,
            database: plan.database.then(|| cpu_seconds_by_name(DATABASE_PROCESS)),
            client: cpu_seconds("self"),
            system: system_busy_seconds(),
        }
    }

    /// The cores kept busy from `self` to `later`, `elapsed` apart.
    fn cores_until(&self, later: &CpuReading, elapsed: Duration) -> CoresBusy {
        let seconds = elapsed.as_secs_f64();
        let cores = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(before), Some(after)) if !elapsed.is_zero() => Some((after - before) / seconds),
            _ => None,
        };
        let server = cores(self.server, later.server);
        let database = match (&self.database, &later.database) {
            (Some(before), Some(after)) if !elapsed.is_zero() => {
                Some(cpu_seconds_between(before, after) / seconds)
            }
            _ => None,
        };
        let client = cores(self.client, later.client);
        let other = match (cores(self.system, later.system), server, client) {
            (Some(all), Some(server), Some(client)) => {
                Some((all - server - client - database.unwrap_or(0.0)).max(0.0))
            }
            _ => None,
        };
        CoresBusy {
            server,
            database,
            client,
            other,
        }
    }
}

impl RunStats {
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile (nearest rank) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        self.latencies_us.get(idx).map(|&us| f64::from(us) / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.latencies_us.last().map(|&us| f64::from(us) / 1000.0)
    }
}

/// The peak (closed-loop) run and, unless skipped, the paced run at half its rate.
#[derive(Debug, Clone)]
pub struct Phases {
    pub peak: RunStats,
    pub half: Option<RunStats>,
}

/// What the connections send: HTTP/1.1 requests, or gRPC calls.
#[derive(Debug, Clone)]
pub enum Workload {
    Http(Arc<Target>),
    Grpc(Arc<GrpcTarget>),
}

impl Workload {
    fn describe(&self, connections: usize) -> String {
        match self {
            Workload::Http(_) => format!("{connections} connections"),
            Workload::Grpc(_) => format!(
                "{connections} concurrent gRPC calls over {} HTTP/2 connections",
                crate::grpc::channel_count(connections)
            ),
        }
    }
}

/// Warm-up, peak, then half rate.
pub async fn run(target: Workload, plan: &Plan, progress: impl Fn(&str)) -> anyhow::Result<Phases> {
    if !plan.warmup.is_zero() {
        progress(&format!("warming up for {} s", plan.warmup.as_secs()));
        let warm = drive(&target, plan, plan.warmup, None).await?;
        if warm.ok == 0 {
            anyhow::bail!(
                "no successful request during the warm-up; first failure: {}",
                describe_first(&warm.failures)
            );
        }
    }
    progress(&format!(
        "peak: {} for {} s",
        target.describe(plan.connections),
        plan.duration.as_secs()
    ));
    let peak = drive(&target, plan, plan.duration, None).await?;
    progress(&format!(
        "peak: {:.0} successes/s, {} ok, {} failed; cores busy: server {}, load generator {}, \
         database {}, other processes {}",
        peak.rate(),
        peak.ok,
        peak.failures.total(),
        cores_text(peak.cores.server),
        cores_text(peak.cores.client),
        cores_text(peak.cores.database),
        cores_text(peak.cores.other)
    ));
    let half = if plan.half_rate && peak.ok > 0 {
        let rate = peak.rate() / 2.0;
        progress(&format!(
            "half rate: {rate:.0} requests/s for {} s",
            plan.duration.as_secs()
        ));
        let half = drive(&target, plan, plan.duration, Some(rate)).await?;
        progress(&format!(
            "half rate: {:.0}/s achieved, {} failed, other processes {} cores",
            half.rate(),
            half.failures.total(),
            cores_text(half.cores.other)
        ));
        Some(half)
    } else {
        None
    };
    Ok(Phases { peak, half })
}

pub fn cores_text(cores: Option<f64>) -> String {
    cores.map_or_else(|| "-".to_owned(), |cores| format!("{cores:.2}"))
}

fn describe_first(failures: &Failures) -> String {
    failures
        .first
        .clone()
        .unwrap_or_else(|| "(none recorded)".to_owned())
}

/// Runs `connections` tasks for `duration`, closed-loop or paced at `rate` requests/s in total.
async fn drive(
    target: &Workload,
    plan: &Plan,
    duration: Duration,
    rate: Option<f64>,
) -> anyhow::Result<RunStats> {
    let connections = plan.connections;
    let cpu_before = CpuReading::now(plan);
    let started = Instant::now();
    let deadline = started + duration;
    let channels = match target {
        Workload::Grpc(grpc) => grpc.channels(connections)?,
        Workload::Http(_) => Vec::new(),
    };
    let (pacer, mut paces) = match rate {
        Some(rate) if rate > 0.0 => {
            let (pacer, paces) = Pacer::start(connections, rate, started, deadline)
                .context("starting the pacer thread")?;
            (Some(pacer), paces.into_iter().map(Some).collect())
        }
        _ => (None, Vec::new()),
    };
    let mut tasks = Vec::with_capacity(connections);
    for index in 0..connections {
        let pace = paces.get_mut(index).and_then(Option::take);
        tasks.push(match target {
            Workload::Http(http) => {
                tokio::spawn(connection(Arc::clone(http), index, deadline, pace))
            }
            Workload::Grpc(grpc) => {
                let channel = channels
                    .get(index / crate::grpc::CALLS_PER_CHANNEL)
                    .context("no gRPC channel for a caller")?
                    .clone();
                tokio::spawn(crate::grpc::caller(
                    channel,
                    Arc::clone(grpc),
                    index,
                    deadline,
                    pace,
                ))
            }
        });
    }
    let mut ok = 0;
    let mut failures = Failures::default();
    let mut late_sends = 0;
    let mut latencies_us = Vec::new();
    for task in tasks {
        let result = task.await.context("a load task failed")?;
        ok += result.ok;
        late_sends += result.late_sends;
        failures.merge(result.failures);
        latencies_us.extend(result.latencies_us);
    }
    drop(pacer);
    let elapsed = started.elapsed();
    let cores = cpu_before.cores_until(&CpuReading::now(plan), elapsed);
    latencies_us.sort_unstable();
    Ok(RunStats {
        target_rate: rate,
        elapsed,
        ok,
        failures,
        late_sends,
        cores,
        latencies_us,
    })
}

/// Waits for the next send: closed loop (`pace` is `None`) sends at once, a paced sender waits
/// for its turn and counts it late if it comes more than [`LATE_SEND`] behind. `false` when the
/// run is over.
pub async fn next_turn(
    pace: Option<&Pace>,
    sent: &mut u32,
    deadline: Instant,
    result: &mut ConnectionResult,
) -> bool {
    match pace {
        Some(pace) => {
            let due = pace.due(*sent);
            *sent = sent.saturating_add(1);
            if due >= deadline || !pace.released(deadline).await {
                return false;
            }
            if Instant::now().saturating_duration_since(due) > LATE_SEND {
                result.late_sends += 1;
            }
            true
        }
        None => Instant::now() < deadline,
    }
}

/// What one connection (or gRPC caller) counted.
#[derive(Debug, Default)]
pub struct ConnectionResult {
    pub ok: u64,
    pub late_sends: u64,
    pub failures: Failures,
    pub latencies_us: Vec<u32>,
}

impl ConnectionResult {
    /// A success that took from `started` until now.
    pub fn success(&mut self, started: Instant) {
        self.ok += 1;
        let micros = started.elapsed().as_micros();
        self.latencies_us
            .push(u32::try_from(micros).unwrap_or(u32::MAX));
    }
}

/// Connection `index`'s loop until `deadline`, reconnecting after wire failures.
async fn connection(
    target: Arc<Target>,
    index: usize,
    deadline: Instant,
    pace: Option<Pace>,
) -> ConnectionResult {
    let endpoint = target.endpoint(index);
    let mut result = ConnectionResult::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut sent = 0u32;
    while next_turn(pace.as_ref(), &mut sent, deadline, &mut result).await {
        let request_sender = match sender.as_mut() {
            Some(request_sender) => request_sender,
            None => match tokio::time::timeout(REQUEST_TIMEOUT, connect(endpoint.addr)).await {
                Ok(Ok(new_sender)) => sender.insert(new_sender),
                Ok(Err(err)) => {
                    result.failures.connect += 1;
                    result.failures.note(|| format!("connect: {err:#}"));
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
                Err(_) => {
                    result.failures.connect += 1;
                    result.failures.note(|| "connect: timed out".to_owned());
                    continue;
                }
            },
        };
        let request = match target.request(index) {
            Ok(request) => request,
            Err(err) => {
                result.failures.io += 1;
                result.failures.note(|| format!("{err:#}"));
                break;
            }
        };
        let started = Instant::now();
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange(request_sender, request)).await {
            Ok(Ok((200, body))) if !target.body_ok(&body) => {
                result.failures.unexpected += 1;
                result.failures.note(|| {
                    format!(
                        "HTTP 200 without the expected content: {}",
                        String::from_utf8_lossy(&body)
                    )
                });
            }
            Ok(Ok((200, _))) => result.success(started),
            Ok(Ok((status, body))) => {
                *result.failures.by_status.entry(status).or_default() += 1;
                result
                    .failures
                    .note(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            Ok(Err(err)) => {
                result.failures.io += 1;
                result.failures.note(|| format!("request: {err:#}"));
                sender = None;
            }
            Err(_) => {
                result.failures.timeouts += 1;
                result
                    .failures
                    .note(|| format!("request: no answer within {} s", REQUEST_TIMEOUT.as_secs()));
                sender = None;
            }
        }
    }
    result
}

/// Opens a keep-alive HTTP/1.1 connection; its driver runs as its own task until the sender goes.
async fn connect(addr: SocketAddr) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await.context("TCP connect")?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either way the
        // next request on it reports the failure.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer (a body left unread would stall keep-alive).
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(u16, Bytes)> {
    sender.ready().await.context("connection not ready")?;
    let response = sender.send_request(request).await.context("sending")?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the body")?
        .to_bytes();
    Ok((status, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn stats(mut latencies_us: Vec<u32>) -> RunStats {
        latencies_us.sort_unstable();
        RunStats {
            target_rate: None,
            elapsed: Duration::from_secs(1),
            ok: latencies_us.len() as u64,
            failures: Failures::default(),
            late_sends: 0,
            cores: CoresBusy::default(),
            latencies_us,
        }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let run = stats((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(run.percentile_ms(50.0), Some(50.0));
        assert_eq!(run.percentile_ms(99.0), Some(99.0));
        assert_eq!(run.max_ms(), Some(100.0));
        assert_eq!(stats(vec![]).percentile_ms(99.0), None);
        assert_eq!(stats(vec![7000]).percentile_ms(1.0), Some(7.0));
    }

    fn creds() -> Credentials {
        Credentials {
            apikey: "tsk_key".to_owned(),
            iam_id: "iam-ServiceId-x".to_owned(),
            account_id: "0123456789abcdef0123456789abcdef".to_owned(),
            admin_token: "admin".to_owned(),
            bearer_token: "bearer.jwt.sig".to_owned(),
            introspected_token: "other.jwt.sig".to_owned(),
        }
    }

    #[test]
    fn connections_are_spread_round_robin() {
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:1001".parse().unwrap(),
            "127.0.0.1:1002".parse().unwrap(),
        ];
        let target = Target::new(&addrs, Grant::Apikey, &creds(), &[], None).unwrap();
        let picked: Vec<u16> = (0..5).map(|i| target.endpoint(i).addr.port()).collect();
        assert_eq!(picked, [1001, 1002, 1001, 1002, 1001]);
        let request = target.request(1).unwrap();
        assert_eq!(request.headers()[HOST], "127.0.0.1:1002");
        assert!(request.headers().get(AUTHORIZATION).is_none());
        // An error storm answered with 200 cannot pass as tokens.
        assert!(!target.body_ok(b"{}"));
        assert!(target.body_ok(br#"{"access_token":"eyJ"}"#));
    }

    #[test]
    fn introspection_sends_a_bearer_and_needs_an_active_answer() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let target = Target::new(&addrs, Grant::Introspect, &creds(), &[], None).unwrap();
        let request = target.request(0).unwrap();
        assert_eq!(request.uri().path(), "/identity/introspect");
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer bearer.jwt.sig");
        assert_eq!(target.bodies, [Bytes::from_static(b"token=other.jwt.sig")]);
        assert!(target.body_ok(br#"{"active":true,"iam_id":"x"}"#));
        assert!(!target.body_ok(br#"{"active":false}"#));
        assert!(Target::new(&[], Grant::Apikey, &creds(), &[], None).is_err());
    }

    #[test]
    fn the_yandex_rest_grant_sends_one_jwt_per_connection_as_json() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let jwts = ["a.b.c".to_owned(), "d.e.f".to_owned()];
        let target = Target::new(&addrs, Grant::YandexJwtRest, &creds(), &jwts, None).unwrap();
        let request = target.request(3).unwrap();
        assert_eq!(request.uri().path(), "/iam/v1/tokens");
        assert_eq!(request.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(target.bodies[1], Bytes::from_static(br#"{"jwt":"d.e.f"}"#));
        assert!(target.body_ok(br#"{"expiresAt":"2026-11-23T02:07:43Z","iamToken":"t1.x.y"}"#));
        assert!(!target.body_ok(br#"{"code":16}"#));
        assert!(Target::new(&addrs, Grant::YandexJwtRest, &creds(), &[], None).is_err());
        assert!(Target::new(&addrs, Grant::YandexJwtGrpc, &creds(), &jwts, None).is_err());
    }

    #[test]
    fn prepared_grants_send_their_body_and_basic_header() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1".parse().unwrap()];
        let prepared = crate::grants::Prepared {
            body: "grant_type=password&username=u&password=p".to_owned(),
            authorization: Some("Basic Yzpz".to_owned()),
        };
        let target = Target::new(&addrs, Grant::Password, &creds(), &[], Some(&prepared)).unwrap();
        let request = target.request(0).unwrap();
        assert_eq!(request.uri(), "/identity/token");
        assert_eq!(request.headers()[AUTHORIZATION], "Basic Yzpz");
        assert!(target.body_ok(br#"{"access_token":"a.b.c"}"#));
        assert!(!target.body_ok(br#"{"errorCode":"BXNIM0415E"}"#));
        assert!(Target::new(&addrs, Grant::Assume, &creds(), &[], None).is_err());
    }

    #[test]
    fn the_agent_grant_gets_its_token_with_the_flavor_header() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let target = Target::new(&addrs, Grant::Agent, &creds(), &[], None).unwrap();
        let request = target.request(5).unwrap();
        assert_eq!(request.method(), Method::GET);
        assert_eq!(
            request.uri(),
            "/computeMetadata/v1/instance/service-accounts/default/token"
        );
        assert_eq!(request.headers()["metadata-flavor"], "Google");
        assert!(request.headers().get(CONTENT_TYPE).is_none());
        assert!(request.headers().get(AUTHORIZATION).is_none());
        assert_eq!(target.bodies, [Bytes::new()]);
        assert!(
            target.body_ok(br#"{"access_token":"a.b.c","expires_in":3300,"token_type":"Bearer"}"#)
        );
        assert!(!target.body_ok(b"the agent has not obtained a token yet\n"));
        assert!(!target.body_ok(b""));
    }

    #[test]
    fn random_keys_are_spread_over_the_whole_set() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let keys: Vec<String> = (0..8).map(|i| format!("tsk_{i}")).collect();
        let target = Target::apikeys_at_random(&addrs, &keys).unwrap();
        assert_eq!(target.bodies.len(), 8);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            seen.insert(target.body(0).unwrap().clone());
        }
        assert!(target.request(0).is_ok());
        // One connection sends many different keys, and each is one of the given ones.
        assert_eq!(seen.len(), 8);
        assert!(target.bodies[3].starts_with(b"grant_type=urn"));
        assert!(std::str::from_utf8(&target.bodies[3])
            .unwrap()
            .contains("apikey=tsk_3"));
        assert!(Target::apikeys_at_random(&addrs, &[]).is_err());
        assert!((0..1000).all(|_| random_below(3) < 3));
        assert_eq!(random_below(0), 0);
    }

    /// A token answer whose access token has this header (base64url of the JSON given).
    fn answer(header: &str) -> Vec<u8> {
        use base64::Engine;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header);
        format!(r#"{{"access_token":"{header}.eyJzdWIiOiJ4In0.c2ln","token_type":"Bearer"}}"#)
            .into_bytes()
    }

    #[test]
    fn the_apikey_grant_can_demand_the_signing_algorithm() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1001".parse().unwrap()];
        let plain = Target::new(&addrs, Grant::Apikey, &creds(), &[], None).unwrap();
        let target = Target::new(&addrs, Grant::Apikey, &creds(), &[], None)
            .unwrap()
            .expecting_jwt_alg("ES256");
        let es256 = answer(r#"{"alg":"ES256","kid":"k"}"#);
        let rs256 = answer(r#"{"alg":"RS256","kid":"k"}"#);
        assert!(plain.body_ok(&rs256));
        assert!(target.body_ok(&es256));
        // Another algorithm, "none", a token that is no JWT, or no token at all: failures.
        assert!(!target.body_ok(&rs256));
        assert!(!target.body_ok(&answer(r#"{"alg":"none"}"#)));
        assert!(!target.body_ok(&answer("not json")));
        assert!(!target.body_ok(br#"{"access_token":"opaque-token"}"#));
        assert!(!target.body_ok(br#"{"access_token":"a.b"}"#));
        assert!(!target.body_ok(br#"{"access_token":"eyJhbGciOiJFUzI1NiJ9..c2ln"}"#));
        assert!(!target.body_ok(br#"{"error":"invalid_client"}"#));
        assert!(access_token_has_alg(
            br#"{"access_token":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}"#,
            "ES256"
        ));
    }

    #[test]
    fn a_peer_is_driven_with_client_credentials_and_basic_auth() {
        let client = ClientCredentials {
            client_id: "bench".to_owned(),
            client_secret: "s3cr:t+".to_owned(),
            resource: Some("urn:tessera:bench".to_owned()),
            scope: Some("api".to_owned()),
        };
        let addr: SocketAddr = "127.0.0.1:8090".parse().unwrap();
        let target = Target::client_credentials(addr, "/token", &client, "EdDSA").unwrap();
        let request = target.request(7).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.uri(), "/token");
        assert_eq!(request.headers()[HOST], "127.0.0.1:8090");
        assert_eq!(
            request.headers()[CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        // RFC 6749 §2.3.1: id and secret form-encoded, then base64 of "id:secret".
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("bench:s3cr%3At%2B");
        assert_eq!(
            request.headers()[AUTHORIZATION],
            format!("Basic {basic}").as_str()
        );
        assert_eq!(
            target.bodies,
            [Bytes::from_static(
                b"grant_type=client_credentials&resource=urn%3Atessera%3Abench&scope=api"
            )]
        );
        assert!(target.body_ok(&answer(r#"{"alg":"EdDSA","typ":"at+jwt"}"#)));
        assert!(!target.body_ok(&answer(r#"{"alg":"ES256"}"#)));
        // The secret never shows in debug output.
        assert!(!format!("{client:?}").contains("s3cr"));
        assert!(Target::client_credentials(addr, "token", &client, "EdDSA").is_err());
    }

    #[test]
    fn failures_add_up() {
        let mut a = Failures::default();
        a.by_status.insert(400, 2);
        a.io = 1;
        let mut b = Failures::default();
        b.by_status.insert(400, 1);
        b.by_status.insert(503, 4);
        b.by_grpc_code.insert(16, 1);
        b.timeouts = 3;
        b.unexpected = 2;
        b.first = Some("HTTP 503".to_owned());
        a.merge(b);
        assert_eq!(a.total(), 14);
        assert_eq!(a.non_200(), 10);
        assert_eq!(a.first.as_deref(), Some("HTTP 503"));
    }
}
