//! The in-memory snapshot and the task that keeps it current.
//!
//! The token path reads [`Snapshot::directory`] and [`Snapshot::keyring`] only. A follower task
//! applies the store's change feed: it wakes when this node writes (so an admin change is visible
//! before its response is sent) and polls otherwise (so changes from other nodes arrive too).

use crate::metrics_names as names;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;
use tessera_core::directory::{Change, Directory, EntityKind};
use tessera_core::keyring::KeyRing;
use tessera_core::model::SigningKeyRecord;
use tessera_core::seal::MasterKey;
use tessera_store::Store;
use tokio::sync::{watch, Notify};

/// How often the follower polls the store when nothing woke it.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Largest batch read from the change feed at once.
const BATCH: u32 = 1000;

pub struct Snapshot {
    directory: RwLock<Directory>,
    keyring: RwLock<Arc<KeyRing>>,
    master: Arc<MasterKey>,
    applied: watch::Sender<i64>,
    wake: Notify,
    /// When the snapshot last caught up with the store (unix seconds).
    last_sync: AtomicI64,
}

impl Snapshot {
    /// Loads everything from the store.
    pub async fn load(
        store: &dyn Store,
        master: Arc<MasterKey>,
        now: i64,
    ) -> anyhow::Result<Snapshot> {
        // Object by object: a start-up holds the directory and one page of rows, never a copy
        // of the whole store.
        let mut directory = Directory::new();
        let seq = store
            .load_each(now, &mut |entity| directory.apply(Change::Upsert(entity)))
            .await?;
        let keyring = build_keyring(directory.signing_keys(), &master)?;
        let (applied, _) = watch::channel(seq);
        let snapshot = Snapshot {
            directory: RwLock::new(directory),
            keyring: RwLock::new(Arc::new(keyring)),
            master,
            applied,
            wake: Notify::new(),
            last_sync: AtomicI64::new(now),
        };
        snapshot.record_sizes();
        Ok(snapshot)
    }

    /// Read access to the directory. Hold the guard briefly: never across an `.await`.
    pub fn directory(&self) -> RwLockReadGuard<'_, Directory> {
        // A poisoned lock means a panic while applying a change; the data is still the last
        // consistent state we have, so keep serving it.
        self.directory
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn keyring(&self) -> Arc<KeyRing> {
        self.keyring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the snapshot caught up with the store within the last `max_staleness` seconds.
    pub fn is_fresh(&self, now: i64, max_staleness: i64) -> bool {
        now - self.last_sync.load(Ordering::Relaxed) <= max_staleness
    }

    /// Seconds since the snapshot last caught up with the store.
    pub fn age(&self, now: i64) -> i64 {
        now - self.last_sync.load(Ordering::Relaxed)
    }

    /// The change-feed position the snapshot reflects.
    pub fn applied_seq(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Asks the follower to read the change feed now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits until the snapshot reflects at least `seq` (a write this node just made).
    pub async fn sync_to(&self, seq: i64) -> bool {
        let mut rx = self.applied.subscribe();
        self.wake.notify_one();
        let outcome = tokio::time::timeout(
            Duration::from_secs(5),
            rx.wait_for(|applied| *applied >= seq),
        )
        .await;
        matches!(outcome, Ok(Ok(_)))
    }

    /// Applies one batch from the store; returns how many changes it applied.
    pub async fn catch_up(&self, store: &dyn Store, now: i64) -> anyhow::Result<usize> {
        let mut total = 0;
        loop {
            let from = self.applied_seq();
            let batch = store.changes_since(from, BATCH).await?;
            if batch.seq <= from {
                self.last_sync.store(now, Ordering::Relaxed);
                return Ok(total);
            }
            let keys_changed = batch.changes.iter().any(|c| match c {
                Change::Upsert(e) => e.kind() == EntityKind::SigningKey,
                Change::Delete(kind, _) => *kind == EntityKind::SigningKey,
            });
            total += batch.changes.len();
            metrics::counter!(names::CHANGES_APPLIED).increment(batch.changes.len() as u64);
            if let Some(oldest_at) = batch.oldest_at {
                metrics::gauge!(names::CHANGE_FEED_LAG)
                    .set(now.saturating_sub(oldest_at).max(0) as f64);
            }
            {
                let mut dir = self.directory.write().unwrap_or_else(|p| p.into_inner());
                for change in batch.changes {
                    dir.apply(change);
                }
                if keys_changed {
                    match build_keyring(dir.signing_keys(), &self.master) {
                        Ok(ring) => {
                            *self.keyring.write().unwrap_or_else(|p| p.into_inner()) =
                                Arc::new(ring)
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot rebuild the key ring; keeping the old one")
                        }
                    }
                }
            }
            self.applied.send_replace(batch.seq);
            self.record_sizes();
        }
    }

    fn record_sizes(&self) {
        let counts = self.directory().counts();
        metrics::gauge!(names::SNAPSHOT_API_KEYS).set(counts.api_keys as f64);
        metrics::gauge!(names::SNAPSHOT_SEQ).set(self.applied_seq() as f64);
    }

    /// Follows the change feed until the process ends. Store errors are logged and retried.
    pub async fn follow(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        healthy: Arc<std::sync::atomic::AtomicBool>,
        clock: crate::clock::Clock,
    ) {
        use std::sync::atomic::Ordering;
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
            match self.catch_up(store.as_ref(), clock.now()).await {
                Ok(_) => {
                    if !healthy.swap(true, Ordering::Relaxed) {
                        tracing::info!("store reachable again; snapshot is current");
                    }
                }
                Err(e) => {
                    if healthy.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "cannot read the change feed; serving from the snapshot");
                    }
                }
            }
        }
    }
}

fn build_keyring<'a>(
    records: impl Iterator<Item = &'a SigningKeyRecord>,
    master: &MasterKey,
) -> anyhow::Result<KeyRing> {
    let records: Vec<SigningKeyRecord> = records.cloned().collect();
    KeyRing::load(&records, master).map_err(anyhow::Error::msg)
}
