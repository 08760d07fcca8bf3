//! Startup and the listener: open the store, load secrets and keys, bootstrap on first start,
//! build the snapshot, bind, serve until a signal, drain with a time limit.
//!
//! One port serves everything. Without TLS it speaks HTTP/1.1 and HTTP/2 with prior knowledge
//! (h2c, what plaintext gRPC clients use); with TLS it speaks both over TLS, chosen by ALPN.

use crate::bootstrap;
use crate::config::Config;
use crate::http::PeerAddr;
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

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may take to finish after shutdown begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent Argon2id password checks (each uses about 19 MiB and one blocking thread).
const PASSWORD_CHECKS: usize = 4;

/// A bound, fully initialised server that has not started serving yet.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Server {
    /// Everything up to binding the port. Prints the first administrator's key on first start.
    pub async fn prepare(config: Config) -> anyhow::Result<Server> {
        let rng = SystemRandom::new();
        let node_id = tessera_core::ids::new_token_id(&rng).map_err(anyhow::Error::msg)?;
        bootstrap::create_private_dir(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        // Before the store is opened, so a bad certificate fails fast.
        let tls = crate::tls::load(&config.tls, &config.data_dir, now())?;
        if let Some(ca) = tls.as_ref().and_then(|t| t.ca_cert.as_ref()) {
            let ca = std::path::absolute(ca).unwrap_or_else(|_| ca.clone());
            println!("TLS: local CA certificate for clients: {}", ca.display());
            tracing::info!(ca = %ca.display(), "TLS with a local CA; clients must trust its certificate");
        } else if let crate::config::TlsMode::Files { cert, .. } = &config.tls {
            tracing::info!(cert = %cert.display(), "TLS with the given certificate");
        }
        let tls = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local}"));
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{public_url}/identity"));
        if let Some(first) = first {
            print_first_start(&config, &public_url, &first);
        }
        let yandex = crate::yandex::Settings::new(&config, &public_url);
        let throttle = crate::throttle::Throttle::new(config.throttle);
        let state = AppState::new(Inner {
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
        })
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
            .map_request(crate::http::collapse_slashes as fn(_) -> _)
            .service(crate::http::app(state.clone()));
        tracing::info!(url = %state.public_url, issuer = %state.issuer, config = %state.config, "Tessera is serving");
        let result = match self.tls {
            None => serve_plain(self.listener, app, shutdown).await,
            Some(acceptor) => {
                serve_tls(self.listener, acceptor, app, shutdown).await;
                Ok(())
            }
        };
        follower.abort();
        pruner.abort();
        rotation.abort();
        result
    }
}

/// The service behind the listener, as `run` builds it.
type AppService =
    tower::util::MapRequest<axum::Router, fn(axum::extract::Request) -> axum::extract::Request>;

/// Plaintext: axum's server (HTTP/1.1 and h2c through hyper-util's auto builder).
async fn serve_plain(
    listener: TcpListener,
    app: AppService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let make = WithPeer(app);
    let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
    // TCP_NODELAY on every accepted connection: an HTTP/2 (gRPC) answer goes out in several
    // small writes (headers, data, trailers), and with Nagle's algorithm the later ones wait for
    // the client's delayed ACK, about 40 ms per call. HTTP/1.1 answers are one write each, so
    // for them nothing changes.
    let listener = listener.tap_io(|stream| {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on a connection");
        }
    });
    let serve = axum::serve(listener, make).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = drain_tx.send(());
    });
    tokio::select! {
        result = serve => result.map_err(anyhow::Error::from),
        _ = async {
            let _ = drain_rx.await;
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } => {
            tracing::warn!("connections did not drain within 10 s; closing");
            Ok(())
        }
    }
}

/// Makes the per-connection service for `axum::serve`: the app, with the TCP peer's address put
/// into each request's extensions as [`PeerAddr`] (what brute-force throttling counts by).
#[derive(Clone)]
struct WithPeer(AppService);

impl<'a, L> tower::Service<axum::serve::IncomingStream<'a, L>> for WithPeer
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    type Response = PeerService;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<PeerService, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: axum::serve::IncomingStream<'a, L>) -> Self::Future {
        std::future::ready(Ok(PeerService {
            app: self.0.clone(),
            peer: PeerAddr(*incoming.remote_addr()),
        }))
    }
}

/// The app for one connection: inserts the peer's address into every request.
#[derive(Clone)]
struct PeerService {
    app: AppService,
    peer: PeerAddr,
}

impl tower::Service<axum::extract::Request> for PeerService {
    type Response = <AppService as tower::Service<axum::extract::Request>>::Response;
    type Error = <AppService as tower::Service<axum::extract::Request>>::Error;
    type Future = <AppService as tower::Service<axum::extract::Request>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, mut request: axum::extract::Request) -> Self::Future {
        request.extensions_mut().insert(self.peer);
        self.app.call(request)
    }
}

/// TLS: accept, hand each connection to a task of its own (handshake under a time limit, then
/// HTTP/1.1 or HTTP/2), and on shutdown stop accepting and drain like `serve_plain`.
async fn serve_tls(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    app: AppService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => {
                    // The handshake and small h2 frames should not wait for Nagle's algorithm.
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve_tls_connection(
                        tcp,
                        remote,
                        acceptor.clone(),
                        app.clone(),
                        stop_rx.clone(),
                    ));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set holds only live ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections did not drain within 10 s; closing"
        );
        connections.abort_all();
    }
}

/// One TLS connection: handshake (bounded by [`TLS_HANDSHAKE_TIMEOUT`]), then HTTP until the
/// client closes or shutdown asks the connection to finish its requests and close.
async fn serve_tls_connection(
    tcp: tokio::net::TcpStream,
    remote: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    app: AppService,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
    let stream = tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%remote, "TLS handshake timed out");
                return;
            }
        },
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    let service = hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
        app,
        move |request: http::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(PeerAddr(remote));
            request
        },
    ));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // With a timer hyper enforces its default header-read limit on HTTP/1 connections.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let mut connection = std::pin::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stop.wait_for(|stopping| *stopping), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
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
