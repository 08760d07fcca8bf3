//! Shared server state, handed to every handler through axum's `State`.

use crate::config::Config;
use crate::snapshot::Snapshot;
use aws_lc_rs::rand::SystemRandom;
use metrics_exporter_prometheus::PrometheusHandle;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tessera_core::seal::SealingKey;
use tessera_core::secret::Pepper;
use tessera_store::Store;

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    /// The one clock of this server: every wall-clock read goes through it.
    pub clock: crate::clock::Clock,
    pub config: Config,
    /// Base URL clients use, without a trailing slash.
    pub public_url: String,
    /// `iss` of issued tokens.
    pub issuer: String,
    pub store: Arc<dyn Store>,
    pub snapshot: Arc<Snapshot>,
    pub pepper: Pepper,
    pub refresh_key: SealingKey,
    pub rng: SystemRandom,
    pub store_healthy: Arc<AtomicBool>,
    pub metrics: Option<PrometheusHandle>,
    pub master: Arc<tessera_core::seal::MasterKey>,
    /// Parsed JWKS of trusted issuers (`cr-token` grant), cached per issuer.
    pub issuer_keys: crate::issuer_keys::IssuerKeys,
    /// This process's name in store leases.
    pub node_id: String,
    /// Advertised address and JWT audiences of the Yandex surface.
    pub yandex: crate::yandex_settings::YandexSettings,
    /// Brute-force throttling and TOTP replay memory (per node).
    pub throttle: crate::throttle::Throttle,
    /// Bounds concurrent Argon2id password checks, so logins cannot use every blocking thread.
    pub password_checks: tokio::sync::Semaphore,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    pub fn store_is_healthy(&self) -> bool {
        self.store_healthy.load(Ordering::Relaxed)
    }

    /// Refuses when the snapshot is older than the configured staleness bound: it may miss
    /// deletions and revocations made on other nodes.
    pub fn check_fresh(&self, now: i64) -> tessera_core::error::Result<()> {
        if self.snapshot.is_fresh(now, self.config.max_staleness) {
            return Ok(());
        }
        Err(tessera_core::Error::new(
            tessera_core::ErrorKind::Unavailable,
            format!(
                "The token service cannot reach its database and its data is {} s old (limit {} s); try again shortly.",
                self.snapshot.age(now),
                self.config.max_staleness
            ),
        ))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
