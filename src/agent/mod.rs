//! `tessera agent`: a GCE-format metadata server for workloads, so code in a VM or a function
//! gets IAM tokens from `169.254.169.254` and never holds a long-lived secret.
//!
//! - [`config`]: `agent.toml` (attributes, host-mode workload table, IBM VPC flavour).
//! - [`upstream`]: the agent's calls to the Tessera server.
//! - [`workload`]: workloads and their cached tokens, refreshed in the background.
//! - [`tree`]: the metadata tree and its GCE renderings.
//! - [`request`]: a metadata request's path segments and query parameters, parsed.
//! - [`gce`]: the `/computeMetadata/v1/` surface.
//! - [`ibm_vpc`]: IBM VPC instance identity (`/instance_identity/v1/…`, `/identity/v1/…`).
//! - [`admin`]: `/healthz`, `/readyz` and `/metrics` on a port of their own (`--admin-listen`),
//!   never on the metadata port that workloads reach.
//!
//! Invariant: a request never waits for the server except `identity` (an ID token not yet
//! cached) and the IBM VPC token exchange; tokens are served from memory or not at all (503).

pub mod admin;
pub mod config;
pub mod gce;
pub mod ibm_vpc;
pub mod request;
pub mod tree;
pub mod upstream;
pub mod workload;

use anyhow::{bail, Context, Result};
use axum::routing::{any, get};
use axum::Router;
use config::{AgentFile, Attributes, WorkloadRoute};
use ipnet::IpNet;
use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tree::Node;
use upstream::{Credential, Upstream};
use workload::{RefreshPolicy, Shared, TokenSource, Workload};

/// The attribute part of the tree, replaced whenever the config file changes.
pub struct Metadata {
    pub attributes: Attributes,
    pub tree: Node,
}

/// Everything a request reads.
pub struct AgentState {
    pub shared: Arc<Shared>,
    pub metadata: watch::Receiver<Arc<Metadata>>,
    /// Single-workload mode: the one workload.
    single: Option<Arc<Workload>>,
    /// Host mode: source networks, most specific first.
    routes: Vec<(IpNet, Arc<Workload>)>,
    ibm_vpc: Option<Arc<ibm_vpc::InstanceIdentity>>,
}

impl AgentState {
    /// Every workload with its service account and source network (`*` in single-workload
    /// mode), for health and metrics.
    pub fn workloads(&self) -> Vec<(String, String, &Workload)> {
        if let Some(single) = &self.single {
            return vec![(single_label(&self.shared), "*".to_owned(), single.as_ref())];
        }
        self.routes
            .iter()
            .map(|(net, workload)| {
                let account = match &workload.source {
                    workload::TokenSource::Delegated(id) => id.clone(),
                    workload::TokenSource::Own => single_label(&self.shared),
                };
                (account, net.to_string(), workload.as_ref())
            })
            .collect()
    }

    /// The workload a request from `peer` belongs to; `None`: no service account (404).
    pub fn workload_for(&self, peer: IpAddr) -> Option<&Workload> {
        if let Some(single) = &self.single {
            return Some(single);
        }
        let peer = peer.to_canonical();
        self.routes
            .iter()
            .find(|(net, _)| net.contains(&peer))
            .map(|(_, w)| w.as_ref())
    }

    /// The whole tree as `workload` sees it; `None` while its service account is not known
    /// yet (the agent has not reached the server).
    pub fn tree_for(&self, workload: Option<&Workload>) -> Option<Node> {
        let meta = self.metadata.borrow().clone();
        let mut tree = meta.tree.clone();
        if let Some(workload) = workload {
            let info = workload.info()?;
            if let Node::Dir { children, .. } = &mut tree {
                if let Some(instance) = children.get_mut("instance") {
                    instance.insert(
                        "service-accounts",
                        tree::service_accounts(&info.email, &workload.scopes),
                    );
                }
            }
        }
        Some(tree)
    }

    pub fn compute_engine_claims(&self) -> Map<String, Value> {
        gce::compute_engine_claims(&self.metadata.borrow().attributes)
    }
}

/// `tessera agent` flags; each overrides the config file. Their doc lines name the environment
/// variables, so clap's own `[env: …]` is hidden for all of them.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(mut_args = |arg: clap::Arg| arg.hide_env(true))]
pub struct AgentArgs {
    /// The Tessera server's URL [env: TESSERA_AGENT_SERVER]
    #[arg(long, global = true, env = "TESSERA_AGENT_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Address to serve metadata on (default 127.0.0.1:8081; in production 169.254.169.254:80)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// The agent's credential: an authorized key file or an API key file ({"apikey": …})
    /// [env: TESSERA_AGENT_CREDENTIALS]
    #[arg(
        long,
        global = true,
        env = "TESSERA_AGENT_CREDENTIALS",
        value_name = "FILE"
    )]
    pub credentials: Option<PathBuf>,
    /// agent.toml: instance and project attributes, host-mode workloads, IBM VPC flavour
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PEM file of the CA that signed the server's certificate [env: TESSERA_CACERT]
    #[arg(long, global = true, env = "TESSERA_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Address for /healthz, /readyz and /metrics, apart from the metadata port (default: off)
    /// [env: TESSERA_AGENT_ADMIN_LISTEN]
    #[arg(long, env = "TESSERA_AGENT_ADMIN_LISTEN", value_name = "ADDR")]
    pub admin_listen: Option<SocketAddr>,
    /// Log format: text (default) or json [env: TESSERA_LOG_FORMAT]
    #[arg(long, global = true, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log level of Tessera's own logs (default info), or a filter used as written, e.g.
    /// info,tessera::agent=debug [env: TESSERA_LOG_LEVEL]
    #[arg(long, global = true, env = "TESSERA_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AgentCommand {
    /// Print one token for the credential, as a function runtime's handler context carries it.
    Token {
        /// json: {"access_token", "expires_in", "token_type"}; text: the token alone.
        #[arg(long, value_enum, default_value = "json")]
        format: TokenFormat,
    },
    /// Make a key for the IBM VPC flavour: writes a PKCS#8 PEM private key (ES256) and prints
    /// its public JWKS, to register as a trusted issuer.
    Keygen {
        #[arg(long, value_name = "FILE")]
        key_out: PathBuf,
    },
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    Json,
    Text,
}

/// Settings after flags, environment and file are combined.
struct Resolved {
    file: AgentFile,
    upstream: Upstream,
    credential: Credential,
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
    routes: Vec<WorkloadRoute>,
}

/// How the agent logs: the server's settings and rules (`tessera_server::telemetry`).
fn telemetry_settings(args: &AgentArgs) -> Result<tessera_server::telemetry::Settings> {
    let format = match &args.log_format {
        Some(format) => tessera_server::telemetry::LogFormat::parse(format)?,
        None => tessera_server::telemetry::LogFormat::Text,
    };
    let level = args.log_level.clone().unwrap_or_else(|| "info".to_owned());
    Ok(tessera_server::telemetry::Settings {
        format,
        level,
        otlp_endpoint: None,
        service_name: "tessera-agent",
    })
}

fn resolve(args: &AgentArgs) -> Result<Resolved> {
    let file = match &args.config {
        Some(path) => AgentFile::load(path)?,
        None => AgentFile::default(),
    };
    let server = args
        .server
        .clone()
        .or_else(|| file.server.clone())
        .context("--server (or server in agent.toml) is required")?;
    let cacert = args.cacert.clone().or_else(|| file.cacert.clone());
    let ca_pem = match &cacert {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read CA certificate {}", path.display()))?,
        ),
        None => None,
    };
    let credentials = args
        .credentials
        .clone()
        .or_else(|| file.credentials.clone())
        .context("--credentials (or credentials in agent.toml) is required")?;
    let credential = Credential::load(&credentials)?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8081)));
    let admin_listen = args.admin_listen.or(file.admin_listen);
    if admin_listen == Some(listen) && listen.port() != 0 {
        bail!("--admin-listen must differ from the metadata address {listen}: workloads must not reach the admin endpoints");
    }
    let routes = file.routes()?;
    let upstream = Upstream::new(&server, ca_pem.as_deref()).map_err(|e| match &cacert {
        // The client's own reason names no file: say which one.
        Some(path)
            if e.downcast_ref::<tessera_client::Error>()
                .is_some_and(|e| matches!(e, tessera_client::Error::NotPem)) =>
        {
            anyhow::anyhow!(
                "--cacert {}: {}",
                path.display(),
                tessera_client::Error::NotPem
            )
        }
        _ => e,
    })?;
    Ok(Resolved {
        upstream,
        credential,
        listen,
        admin_listen,
        routes,
        file,
    })
}

/// Runs `tessera agent` (or one of its subcommands) after setting up its logs.
pub async fn run(args: AgentArgs) -> Result<()> {
    let telemetry = tessera_server::telemetry::init(&telemetry_settings(&args)?)?;
    let result = match &args.command {
        Some(AgentCommand::Keygen { key_out }) => ibm_vpc::keygen(key_out),
        Some(AgentCommand::Token { format }) => print_token(&args, *format).await,
        None => serve(&args).await,
    };
    telemetry.shutdown().await;
    result
}

async fn serve(args: &AgentArgs) -> Result<()> {
    let resolved = resolve(args)?;
    // Before the refresh tasks start, so their first outcomes are counted.
    let metrics = resolved
        .admin_listen
        .and_then(|_| admin::Admin::install_metrics());
    let policy = RefreshPolicy {
        expiry_margin: resolved.file.refresh.expiry_margin_seconds as i64,
        max_backoff: Duration::from_secs(resolved.file.refresh.max_backoff_seconds),
    };
    let ibm_vpc = match &resolved.file.ibm_vpc {
        Some(vpc) => Some(Arc::new(ibm_vpc::InstanceIdentity::load(vpc)?)),
        None => None,
    };
    let shared = Arc::new(Shared::new(resolved.upstream, resolved.credential, policy));
    let started_at = tessera_server::rfc3339::from_unix(upstream::unix_now());
    let attributes = resolved.file.attributes();
    let (publish, metadata) = watch::channel(Arc::new(Metadata {
        tree: tree::build(&attributes, &started_at),
        attributes,
    }));

    let (single, routes) = if resolved.routes.is_empty() {
        let overrides = resolved.file.service_account.clone().unwrap_or_default();
        let workload = Arc::new(Workload::new(
            TokenSource::Own,
            overrides.email,
            config::checked_scopes(overrides.scopes)?,
        ));
        tokio::spawn(workload::refresh_forever(
            shared.clone(),
            workload.clone(),
            single_label(&shared),
        ));
        (Some(workload), Vec::new())
    } else {
        if resolved.file.service_account.is_some() {
            bail!("[service_account] is for single-workload mode; in host mode set email and scopes per [[workloads]] entry");
        }
        let mut routes = Vec::new();
        for route in resolved.routes {
            let workload = Arc::new(Workload::new(
                TokenSource::Delegated(route.service_account_id.clone()),
                route.email,
                route.scopes,
            ));
            tokio::spawn(workload::refresh_forever(
                shared.clone(),
                workload.clone(),
                format!("{} ({})", route.service_account_id, route.source),
            ));
            routes.push((route.source, workload));
        }
        (None, routes)
    };

    if let Some(path) = args.config.clone() {
        tokio::spawn(watch_config(path, publish, started_at));
    }

    let state = Arc::new(AgentState {
        shared,
        metadata,
        single,
        routes,
        ibm_vpc,
    });
    let admin = match resolved.admin_listen {
        Some(address) => Some(admin::Admin::bind(address, state.clone(), metrics).await?),
        None => None,
    };
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(resolved.listen)
        .await
        .with_context(|| format!("cannot listen on {}", resolved.listen))?;
    let local = listener.local_addr()?;
    // Tests and scripts wait for this line to learn the port of `--listen …:0`.
    tracing::info!("agent listening on {local}");
    let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
    let admin_task = admin.map(|admin| tokio::spawn(admin.serve(admin_stopped)));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(tessera_server::server::shutdown_signal())
    .await
    .context("the agent's listener failed");
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = format!("{e:#}"), "the admin listener failed");
        }
    }
    served
}

/// The name of the single workload in logs and metrics: its service account when the
/// credential says, else `default` (the GCE alias of the instance's service account).
fn single_label(shared: &Shared) -> String {
    shared
        .credential
        .service_account_id()
        .unwrap_or("default")
        .to_owned()
}

pub fn router(state: Arc<AgentState>) -> Router {
    Router::new()
        .route("/", get(gce::root))
        .route("/computeMetadata", any(gce::metadata))
        .route("/computeMetadata/", any(gce::metadata))
        .route("/computeMetadata/{*rest}", any(gce::metadata))
        .merge(ibm_vpc::router())
        .fallback(|| async { gce::text(axum::http::StatusCode::NOT_FOUND, "Not found.\n") })
        .layer(axum::middleware::from_fn(gce::gce_headers))
        .with_state(state)
}

/// `tessera agent token`: one token for the credential, printed and done.
async fn print_token(args: &AgentArgs, format: TokenFormat) -> Result<()> {
    let resolved = resolve(args)?;
    let fetched = resolved
        .upstream
        .authenticate(&resolved.credential)
        .await
        .context("cannot get a token")?;
    let expires_in = fetched.expires_at - upstream::unix_now();
    match format {
        TokenFormat::Json => println!(
            "{}",
            serde_json::json!({
                "access_token": fetched.access_token,
                "expires_in": expires_in,
                "token_type": "Bearer",
            })
        ),
        TokenFormat::Text => println!("{}", fetched.access_token),
    }
    Ok(())
}

/// Re-reads the attribute sections when the config file changes (checked every second), so
/// `wait_for_change` clients see edits. A file that no longer parses is reported and ignored.
async fn watch_config(path: PathBuf, publish: watch::Sender<Arc<Metadata>>, started_at: String) {
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut last = modified(&path);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        let now = modified(&path);
        if now == last {
            continue;
        }
        last = now;
        match AgentFile::load(&path) {
            Ok(file) => {
                let attributes = file.attributes();
                if attributes != publish.borrow().attributes {
                    tracing::info!(config = %path.display(), "attributes changed");
                    publish.send_replace(Arc::new(Metadata {
                        tree: tree::build(&attributes, &started_at),
                        attributes,
                    }));
                }
            }
            Err(error) => {
                tracing::warn!(config = %path.display(), error = format!("{error:#}"), "config change ignored");
            }
        }
    }
}
