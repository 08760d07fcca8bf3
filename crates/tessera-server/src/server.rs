//! Startup and the listener: open the store, load secrets and keys, bootstrap on first start,
//! build the snapshot, bind, serve until a signal, drain with a time limit.

use crate::bootstrap;
use crate::config::Config;
use crate::snapshot::Snapshot;
use crate::state::{now, AppState, Inner};
use anyhow::Context;
use aws_lc_rs::rand::SystemRandom;
use axum::serve::ListenerExt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// A bound, fully initialised server that has not started serving yet.
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Everything up to binding the port. Prints the first administrator's key on first start.
    pub async fn prepare(config: Config) -> anyhow::Result<Server> {
        let rng = SystemRandom::new();
        let node_id = tessera_core::ids::new_token_id(&rng).map_err(anyhow::Error::msg)?;
        bootstrap::create_private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
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
        )
        .await?;
        let snapshot = Arc::new(Snapshot::load(store.as_ref(), master.clone(), now()).await?);

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let local: SocketAddr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{local}"));
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{public_url}/identity"));
        if let Some(first) = first {
            print_first_start(&config, &public_url, &first);
        }
        let yandex = crate::yandex::Settings::new(&config, &public_url);
        let state = AppState::new(Inner {
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
            metrics: crate::telemetry::init_metrics(),
            master,
            node_id,
        });
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains for at most 10 s.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let follower = tokio::spawn(
            state
                .snapshot
                .clone()
                .follow(state.store.clone(), state.store_healthy.clone()),
        );
        let pruner = tokio::spawn(prune_loop(state.clone()));
        let rotation = tokio::spawn(rotation_loop(state.clone()));
        let app = tower::ServiceBuilder::new()
            .map_request(crate::http::collapse_slashes)
            .service(crate::http::app(state.clone()));
        let make = tower::make::Shared::new(app);
        tracing::info!(url = %state.public_url, issuer = %state.issuer, config = %state.config, "Tessera is serving");
        let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
        // TCP_NODELAY on every accepted connection: an HTTP/2 (gRPC) answer goes out in several
        // small writes (headers, data, trailers), and with Nagle's algorithm the later ones wait
        // for the client's delayed ACK, about 40 ms per call. HTTP/1.1 answers are one write
        // each, so for them nothing changes.
        let listener = self.listener.tap_io(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
            }
        });
        let serve = axum::serve(listener, make).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = drain_tx.send(());
        });
        let result = tokio::select! {
            result = serve => result.map_err(anyhow::Error::from),
            _ = async {
                let _ = drain_rx.await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            } => {
                tracing::warn!("connections did not drain within 10 s; closing");
                Ok(())
            }
        };
        follower.abort();
        pruner.abort();
        rotation.abort();
        result
    }
}

/// Checks every `rotation_check_interval` whether a key rotation step is due.
async fn rotation_loop(state: AppState) {
    let interval = Duration::from_secs(state.config.rotation_check_interval.max(1) as u64);
    loop {
        tokio::time::sleep(interval).await;
        let rotator = crate::rotation::Rotator {
            store: state.store.as_ref(),
            master: &state.master,
            config: &state.config,
            rng: &state.rng,
            node_id: &state.node_id,
        };
        match rotator.run_once(now()).await {
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
        if let Err(e) = state.store.prune(now(), keep_after).await {
            tracing::warn!(error = %e, "pruning failed");
        }
    }
}

fn print_first_start(config: &Config, public_url: &str, first: &bootstrap::FirstStart) {
    let key_line = if config.bootstrap_admin_apikey.is_some() {
        "the value of TESSERA_BOOTSTRAP_ADMIN_APIKEY".to_owned()
    } else {
        first.admin_apikey.expose().to_owned()
    };
    // Printed once, to stdout and not to the log, so the key never lands in log storage.
    println!(
        "\nTessera initialised a new installation ({})\n  account:        {} (Default account)\n  administrator:  admin ({})\n  admin API key:  {}\n\nThe API key is shown only this once. Log in with:\n  tessera login --endpoint {} --apikey <the key>\n",
        match &config.database_url {
            Some(url) => crate::config::redact_url(url),
            None => format!("data directory {}", config.data_dir.display()),
        },
        first.account_id,
        first.admin_user_id,
        key_line,
        public_url,
    );
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
