//! Startup and shutdown: lock the data directory, bind, load TLS, open the store, load secrets
//! and keys, bootstrap on first start, build the snapshot; then serve until a signal, drain with
//! a time limit, and close the store (which checkpoints SQLite's write-ahead log).
//!
//! The order makes the first start atomic: the port is bound and the TLS material loaded before
//! anything is created, and the first administrator's key is printed before the bootstrap
//! commits (see [`bootstrap::ensure_first_admin`]).
//!
//! One port serves everything. Without TLS it speaks HTTP/1.1 and HTTP/2 with prior knowledge
//! (h2c, what plaintext gRPC clients use); with TLS it speaks both over TLS, chosen by ALPN.
//! Connections are handled by [`crate::listener`].

use crate::bootstrap;
use crate::clock::Clock;
use crate::config::Config;
use crate::data_dir_lock::DataDirLock;
use crate::snapshot::Snapshot;
use crate::state::{AppState, Inner};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Concurrent Argon2id password checks (each uses about 19 MiB and one blocking thread).
const PASSWORD_CHECKS: usize = 4;

/// A bound, fully initialised server that has not started serving yet.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// Held until the server has stopped and closed its store.
    lock: DataDirLock,
    /// What this start created, when it was the installation's first.
    installed: Option<Installed>,
}

/// The account and administrator a first start created.
#[derive(Debug, Clone)]
pub struct Installed {
    pub account_id: String,
    pub admin_user_id: String,
}

impl Server {
    /// Everything before serving. Prints the first administrator's key on first start.
    pub async fn prepare(config: Config) -> anyhow::Result<Server> {
        Self::prepare_with_clock(config, Clock::system()).await
    }

    /// [`Server::prepare`] reading time from `clock` (a test clock for in-process tests).
    pub async fn prepare_with_clock(config: Config, clock: Clock) -> anyhow::Result<Server> {
        let now = || clock.now();
        let rng = SystemRandom::new();
        let node_id = tessera_core::ids::new_token_id(&rng).map_err(anyhow::Error::msg)?;
        // One server per data directory; the lock is held until the process ends.
        let lock = crate::data_dir_lock::acquire_creating(&config.data_dir, "serve")?;
        // Before anything is created: a taken port must not cost the operator the first key.
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local: SocketAddr = listener.local_addr()?;
        let tls = crate::tls::load(&config.tls, &config.data_dir, now())?;
        if let Some(ca) = tls.as_ref().and_then(|t| t.ca_cert.as_ref()) {
            let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
            println!("TLS: local CA certificate for clients: {}", ca.display());
            tracing::info!(ca = %ca.display(), "TLS with a local CA; clients must trust its certificate");
        } else if let crate::config::TlsMode::Files { cert, .. } = &config.tls {
            tracing::info!(cert = %cert.display(), "TLS with the given certificate");
        }
        let tls = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local}"));
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{public_url}/identity"));
        let master = Arc::new(bootstrap::open_master_key(&config, &rng)?);
        let store = crate::storage::open_migrated(&config).await?;
        let secrets = bootstrap::load_server_secrets(store.as_ref(), &master, &rng).await?;
        let rotator = crate::rotation::Rotator {
            store: store.as_ref(),
            master: &master,
            config: &config,
            rng: &rng,
            node_id: &node_id,
        };
        rotator.ensure_signers(now).await?;
        let first = bootstrap::ensure_first_admin(
            store.as_ref(),
            &secrets.pepper,
            &config,
            &node_id,
            now,
            &rng,
            |first| match config.dev {
                // Dev mode prints its own banner once the server is ready.
                true => Ok(()),
                false => print_first_start(&config, &public_url, first),
            },
        )
        .await?;
        let installed = first.as_ref().map(|f| Installed {
            account_id: f.account_id.clone(),
            admin_user_id: f.admin_user_id.clone(),
        });
        let snapshot = Arc::new(Snapshot::load(store.as_ref(), master.clone(), now()).await?);
        if first.is_none() {
            warn_about_unused_bootstrap_key(&config, &secrets.pepper, &snapshot);
        }
        let yandex = crate::yandex_settings::YandexSettings::new(&config, &public_url);
        let throttle = crate::throttle::Throttle::new(config.throttle, clock.clone());
        let state = AppState::new(Inner {
            clock,
            throttle,
            password_checks: tokio::sync::Semaphore::new(PASSWORD_CHECKS),
            yandex,
            config,
            public_url,
            issuer,
            store,
            snapshot,
            pepper: secrets.pepper,
            refresh_key: secrets.refresh_key,
            rng,
            store_healthy: Arc::new(AtomicBool::new(true)),
            metrics: crate::telemetry::init_metrics(crate::metrics_names::BUILD_INFO),
            master,
            issuer_keys: Default::default(),
            node_id,
        });
        Ok(Server {
            listener,
            state,
            tls,
            lock,
            installed,
        })
    }

    /// The account and administrator this start created, if it was the first.
    pub fn installed(&self) -> Option<&Installed> {
        self.installed.as_ref()
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, drains for at most 10 s, then closes the store.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let follower = tokio::spawn(state.snapshot.clone().follow(
            state.store.clone(),
            state.store_healthy.clone(),
            state.clock.clone(),
        ));
        let pruner = tokio::spawn(prune_loop(state.clone()));
        let rotation = tokio::spawn(rotation_loop(state.clone()));
        let app: crate::listener::AppService = tower::ServiceBuilder::new()
            .map_request(crate::http::collapse_slashes as fn(_) -> _)
            .service(crate::router::app(state.clone()));
        tracing::info!(url = %state.public_url, issuer = %state.issuer, config = %state.config, "Tessera is serving");
        crate::listener::serve(
            self.listener,
            self.tls,
            app,
            state.config.connections,
            shutdown,
        )
        .await;
        follower.abort();
        pruner.abort();
        rotation.abort();
        // Every answered write is committed already; closing makes `tessera.db` complete by
        // itself (the write-ahead log folded in), so a copy of that file alone is a backup.
        state.store.close().await;
        tracing::info!(data_dir = %self.lock.dir().display(), "stopped");
        drop(self.lock);
        Ok(())
    }
}

/// Checks every `rotation_check_interval` whether a key rotation step is due.
async fn rotation_loop(state: AppState) {
    let interval = Duration::from_secs(state.config.rotation_check_interval.max(1) as u64);
    loop {
        tokio::time::sleep(interval).await;
        match crate::rotation::Rotator::of(&state)
            .run_once(state.clock.now())
            .await
        {
            Ok(steps) if !steps.is_empty() => {
                state.snapshot.wake();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "key rotation check failed; retrying later"),
        }
    }
}

/// Drops expired revocations and old change rows once an hour.
async fn prune_loop(state: AppState) {
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        // Change rows older than the newest 100 000 are no longer needed by this node; with
        // several nodes the feed must be kept longer than any node's lag (see deployment docs).
        let keep_after = state.snapshot.applied_seq() - 100_000;
        if let Err(e) = state.store.prune(state.clock.now(), keep_after).await {
            tracing::warn!(error = %e, "pruning failed");
        }
    }
}

/// Says so when `TESSERA_BOOTSTRAP_ADMIN_APIKEY` is set on an installation that already has
/// its administrator: the variable only acts on the first start, and an operator who set it to
/// regain access needs to know it did nothing.
fn warn_about_unused_bootstrap_key(
    config: &Config,
    pepper: &tessera_core::secret::Pepper,
    snapshot: &Snapshot,
) {
    let Some(given) = &config.bootstrap_admin_apikey else {
        return;
    };
    let hash = pepper.hash(tessera_core::secret::SecretPurpose::ApiKey, given);
    if snapshot.directory().api_key_by_hash(&hash).is_some() {
        tracing::debug!("TESSERA_BOOTSTRAP_ADMIN_APIKEY is an API key of this installation");
        return;
    }
    let message = "TESSERA_BOOTSTRAP_ADMIN_APIKEY is set, but this installation was initialised \
                   before and the variable only acts on the first start: it is ignored, and the \
                   key it holds does not work here. To get a new administrator key, stop the \
                   server and run `tessera admin recover`";
    tracing::warn!("{message}");
    eprintln!("warning: {message}");
}

/// Prints what the first start created, the administrator's API key included, to stdout (never
/// to the log, so the key cannot land in log storage). An error means the key was not shown.
fn print_first_start(
    config: &Config,
    public_url: &str,
    first: &bootstrap::FirstStart,
) -> anyhow::Result<()> {
    use std::io::Write;
    let key_line = if config.bootstrap_admin_apikey.is_some() {
        "the value of TESSERA_BOOTSTRAP_ADMIN_APIKEY".to_owned()
    } else {
        first.admin_apikey.expose().to_owned()
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nTessera initialised a new installation ({})\n  account:        {} (Default account)\n  administrator:  admin ({})\n  admin API key:  {}\n\nThe API key is shown only this once. Log in with (it asks for the key):\n  tessera login --endpoint {}\n",
        match &config.database_url {
            Some(url) => crate::config::redact_url(url),
            None => format!("data directory {}", config.data_dir.display()),
        },
        first.account_id,
        first.admin_user_id,
        key_line,
        public_url,
    )?;
    out.flush()?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
