//! Signing-key rotation: executes the core's rotation plan while holding a store lease, so that
//! with many nodes exactly one node performs each step. Runs at startup (which also creates the
//! first keys) and then every `rotation_check_interval`.

use crate::config::Config;
use crate::state::AppState;
use anyhow::Context;
use aws_lc_rs::rand::SecureRandom;
use std::time::Duration;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::{Algorithm, KeyState, KeyUse, SigningKeyRecord};
use tessera_core::rotation::{self, KeyStep};
use tessera_core::seal::MasterKey;
use tessera_store::{AuditEvent, ListFilter, Store};

/// Name of the lease that guards key changes.
pub const LEASE: &str = "signing-keys";
/// How long a lease holder may take before another node may step in.
const LEASE_SECONDS: i64 = 60;

/// The key uses this configuration keeps signers for, each with the algorithm it should use.
pub fn targets(config: &Config) -> [(KeyUse, Algorithm); 2] {
    [
        (KeyUse::Jwt, config.jwt_algorithm),
        (KeyUse::YandexIam, Algorithm::EdDsa),
    ]
}

/// Everything a rotation needs besides the store.
pub struct Rotator<'a> {
    pub store: &'a dyn Store,
    pub master: &'a MasterKey,
    pub config: &'a Config,
    pub rng: &'a (dyn SecureRandom + Sync),
    /// This node's lease-holder name.
    pub node_id: &'a str,
}

impl<'a> Rotator<'a> {
    /// The rotator of a running server, holding the lease as this node.
    pub fn of(state: &'a AppState) -> Rotator<'a> {
        Rotator {
            store: state.store.as_ref(),
            master: &state.master,
            config: &state.config,
            rng: &state.rng,
            node_id: &state.node_id,
        }
    }
}

/// What an operator may ask for (`tessera keys rotate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedRotation {
    /// Publish a successor now; it signs after the publication lead.
    Scheduled,
    /// Replace the signer at once (e.g. after a key compromise); verifiers that cached the JWKS
    /// reject new tokens until they refetch it.
    Immediate,
}

/// Another node (or another request) holds the key lease and did not let go within 5 s.
#[derive(Debug, thiserror::Error)]
#[error("another node is rotating keys right now; try again")]
pub struct LeaseBusy;

fn audit(now: i64, actor: &str, action: &str, detail: String) -> AuditEvent {
    AuditEvent {
        at: now,
        actor: actor.to_owned(),
        action: action.to_owned(),
        request_id: "rotation".into(),
        detail,
        account_id: None,
    }
}

pub async fn list_keys(store: &dyn Store) -> anyhow::Result<Vec<SigningKeyRecord>> {
    Ok(store
        .list(
            EntityKind::SigningKey,
            &ListFilter {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .filter_map(|e| match e {
            Entity::SigningKey(k) => Some(k),
            _ => None,
        })
        .collect())
}

impl Rotator<'_> {
    fn targets(&self) -> [(KeyUse, Algorithm); 2] {
        targets(self.config)
    }

    /// Performs the steps that are due, if this node gets the lease. Returns the steps taken.
    pub async fn run_once(&self, now: i64) -> anyhow::Result<Vec<KeyStep>> {
        let taken = self.under_lease(now, 1, self.apply_plan(now)).await?;
        Ok(taken.unwrap_or_default())
    }

    /// Runs `work` holding the key lease, taken in at most `tries` attempts 100 ms apart:
    /// `None` when another node held it all along. The lease is released after the work,
    /// whatever its result; a lease that cannot be released expires by itself.
    async fn under_lease<T>(
        &self,
        now: i64,
        tries: u32,
        work: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<Option<T>> {
        for attempt in 0..tries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let held = self
                .store
                .try_lease(LEASE, self.node_id, now, now + LEASE_SECONDS)
                .await?;
            if held {
                let result = work.await;
                if let Err(e) = self.store.release_lease(LEASE, self.node_id).await {
                    tracing::warn!(error = %e, "cannot release the key rotation lease; it expires by itself");
                }
                return result.map(Some);
            }
        }
        Ok(None)
    }

    async fn apply_plan(&self, now: i64) -> anyhow::Result<Vec<KeyStep>> {
        let keys = list_keys(self.store).await?;
        let mut taken = Vec::new();
        for (key_use, algorithm) in self.targets() {
            let policy = self.config.rotation_policy(key_use);
            for step in rotation::plan(&keys, key_use, algorithm, &policy, now) {
                self.apply(&keys, &step, now, "system").await?;
                taken.push(step);
            }
        }
        Ok(taken)
    }

    /// Performs one step; returns the change-feed position of its last write (0 if none).
    async fn apply(
        &self,
        keys: &[SigningKeyRecord],
        step: &KeyStep,
        now: i64,
        actor: &str,
    ) -> anyhow::Result<i64> {
        let mut seq = 0;
        match step {
            KeyStep::Create {
                key_use,
                algorithm,
                state,
            } => {
                let kid =
                    tessera_core::ids::new_key_id(now, self.rng).map_err(anyhow::Error::msg)?;
                let der = tessera_core::jose::generate_pkcs8(*algorithm, self.rng)
                    .map_err(anyhow::Error::msg)?;
                let sealed = self
                    .master
                    .seal(tessera_core::keyring::SEALED_KEY_PURPOSE, &der, self.rng)
                    .map_err(anyhow::Error::msg)?;
                let record = SigningKeyRecord {
                    kid: kid.clone(),
                    algorithm: *algorithm,
                    key_use: *key_use,
                    state: *state,
                    sealed_private_key: sealed,
                    created_at: now,
                    retired_at: None,
                };
                let detail = format!(
                    "{kid} {} for {} as {}",
                    algorithm.as_str(),
                    key_use.as_str(),
                    state.as_str()
                );
                seq = self
                    .store
                    .create(
                        &Entity::SigningKey(record),
                        &audit(now, actor, "signing_key.create", detail),
                    )
                    .await?;
                tracing::info!(
                    kid,
                    alg = algorithm.as_str(),
                    key_use = key_use.as_str(),
                    state = state.as_str(),
                    "created signing key"
                );
            }
            KeyStep::Promote { next_kid, retire } => {
                // Promote first, then retire: in between two keys are active and the newer signs,
                // so there is never a moment without a signer.
                if let Some(next) = keys.iter().find(|k| &k.kid == next_kid) {
                    let mut active = next.clone();
                    active.state = KeyState::Active;
                    seq = self
                        .put_key(active, now, actor, "signing_key.activate")
                        .await?;
                }
                seq = seq.max(self.retire(keys, retire, now, actor).await?);
                tracing::info!(kid = next_kid, retired = ?retire, "rotated signing key");
            }
            KeyStep::Delete { kid } => {
                seq = self
                    .store
                    .delete(
                        EntityKind::SigningKey,
                        kid,
                        &audit(now, actor, "signing_key.delete", kid.clone()),
                    )
                    .await?;
                tracing::info!(kid, "removed retired signing key from the JWKS");
            }
        }
        Ok(seq)
    }

    /// Writes `key` in its new state, audited as `action` (`signing_key.activate`, `.retire`);
    /// returns the change-feed position of the write.
    async fn put_key(
        &self,
        key: SigningKeyRecord,
        now: i64,
        actor: &str,
        action: &str,
    ) -> anyhow::Result<i64> {
        let event = audit(now, actor, action, key.kid.clone());
        Ok(self.store.put(&Entity::SigningKey(key), &event).await?)
    }

    /// Retires `kids`; returns the change-feed position of the last write (0 if none).
    async fn retire(
        &self,
        keys: &[SigningKeyRecord],
        kids: &[String],
        now: i64,
        actor: &str,
    ) -> anyhow::Result<i64> {
        let mut seq = 0;
        for kid in kids {
            if let Some(old) = keys.iter().find(|k| &k.kid == kid) {
                let mut retired = old.clone();
                retired.state = KeyState::Retired;
                retired.retired_at = Some(now);
                seq = self
                    .put_key(retired, now, actor, "signing_key.retire")
                    .await?;
            }
        }
        Ok(seq)
    }

    /// At startup: run the plan until every use has a signer (another node may be creating the
    /// first keys right now; then this node waits for them instead of creating its own).
    pub async fn ensure_signers(&self, clock: impl Fn() -> i64) -> anyhow::Result<()> {
        for _ in 0..300 {
            self.run_once(clock()).await?;
            let keys = list_keys(self.store).await?;
            let ready = self.targets().iter().all(|(key_use, _)| {
                keys.iter()
                    .any(|k| k.key_use == *key_use && k.state == KeyState::Active)
            });
            if ready {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "no signing keys after 30 s: another node holds the key lease and does not finish"
        )
    }

    /// An operator's rotation of the keys of `key_use`. Returns the change-feed position of the
    /// last write (0 if nothing changed: a scheduled rotation while a successor is already
    /// published), so the caller can wait for its snapshot to reflect it. Fails with
    /// [`LeaseBusy`] when the key lease stays taken for 5 s.
    pub async fn force(
        &self,
        key_use: KeyUse,
        mode: ForcedRotation,
        now: i64,
        actor: &str,
    ) -> anyhow::Result<i64> {
        let forced = async {
            let keys = list_keys(self.store).await?;
            let algorithm = self
                .targets()
                .iter()
                .find(|(u, _)| *u == key_use)
                .map(|(_, a)| *a)
                .context("unknown key use")?;
            let of_use = |state: KeyState| {
                keys.iter()
                    .filter(move |k| k.key_use == key_use && k.state == state)
            };
            match mode {
                ForcedRotation::Scheduled => {
                    if of_use(KeyState::Next).next().is_none() {
                        let step = KeyStep::Create {
                            key_use,
                            algorithm,
                            state: KeyState::Next,
                        };
                        return self.apply(&keys, &step, now, actor).await;
                    }
                    Ok(0)
                }
                ForcedRotation::Immediate => {
                    let retire: Vec<String> = of_use(KeyState::Active)
                        .chain(of_use(KeyState::Next))
                        .map(|k| k.kid.clone())
                        .collect();
                    let step = KeyStep::Create {
                        key_use,
                        algorithm,
                        state: KeyState::Active,
                    };
                    let created = self.apply(&keys, &step, now, actor).await?;
                    Ok(created.max(self.retire(&keys, &retire, now, actor).await?))
                }
            }
        };
        self.under_lease(now, 50, forced)
            .await?
            .ok_or_else(|| LeaseBusy.into())
    }
}
