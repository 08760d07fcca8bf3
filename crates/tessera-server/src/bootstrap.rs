//! First start and every start: the master key, the server secrets sealed under it, the signing
//! keys, and (once) the first account with its administrator.

use crate::config::Config;
use anyhow::{bail, Context};
use aws_lc_rs::rand::SecureRandom;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::io::Write;
use std::path::Path;
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::model::*;
use tessera_core::seal::{MasterKey, SealingKey};
use tessera_core::secret::{self, NewSecret, Pepper, SecretPurpose};
use tessera_store::{AuditEvent, ListFilter, Store};

/// The server's own secrets, unsealed.
pub struct ServerSecrets {
    pub pepper: Pepper,
    pub refresh_key: SealingKey,
}

/// Reads the master key from `TESSERA_MASTER_KEY` or its file, creating the file (mode 0600)
/// with a fresh random key if neither exists.
pub fn open_master_key(config: &Config, rng: &dyn SecureRandom) -> anyhow::Result<MasterKey> {
    if let Some(text) = &config.master_key_env {
        return decode_master_key(text).context("TESSERA_MASTER_KEY is invalid");
    }
    let path = &config.master_key_file;
    if path.exists() {
        check_private(path)?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read master key file {}", path.display()))?;
        return decode_master_key(&text)
            .with_context(|| format!("master key file {} is invalid", path.display()));
    }
    let bytes = SealingKey::generate_bytes(rng).map_err(anyhow::Error::msg)?;
    write_private(path, format!("{}\n", STANDARD.encode(bytes)).as_bytes())
        .with_context(|| format!("cannot create master key file {}", path.display()))?;
    tracing::info!(path = %path.display(), "created a new master key");
    MasterKey::from_bytes(&bytes).map_err(anyhow::Error::msg)
}

fn decode_master_key(text: &str) -> anyhow::Result<MasterKey> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|_| anyhow::anyhow!("expected base64 of 32 random bytes"))?;
    if bytes.len() != tessera_core::seal::KEY_LEN {
        bail!(
            "expected base64 of 32 random bytes, got {} bytes",
            bytes.len()
        );
    }
    MasterKey::from_bytes(&bytes).map_err(anyhow::Error::msg)
}

/// Creates a directory (and parents) that only its owner can enter; an existing one is kept.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(path)
}

/// Creates an empty file readable by its owner only, unless it exists.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    write_private(path, b"")
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "master key file {} is readable by other users (mode {mode:o}); run: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Associated data of the server secrets sealed under the master key.
pub const SECRET_PURPOSE: &[u8] = b"tessera server secret v1";

/// Loads (creating on first start) the API-key pepper and the refresh-token key.
pub async fn load_server_secrets(
    store: &dyn Store,
    master: &MasterKey,
    rng: &dyn SecureRandom,
) -> anyhow::Result<ServerSecrets> {
    let load = async |name: &str| -> anyhow::Result<Vec<u8>> {
        let fresh = SealingKey::generate_bytes(rng).map_err(anyhow::Error::msg)?;
        let candidate = master
            .seal(SECRET_PURPOSE, &fresh, rng)
            .map_err(anyhow::Error::msg)?;
        let stored = store.server_secret(name, &candidate).await?;
        master
            .open(SECRET_PURPOSE, &stored)
            .map_err(|_| anyhow::anyhow!("server secret {name} cannot be unsealed: the master key does not match this data directory"))
    };
    let pepper = load("api-key-pepper").await?;
    let refresh = load("refresh-token-key").await?;
    Ok(ServerSecrets {
        pepper: Pepper::from_bytes(&pepper),
        refresh_key: SealingKey::from_bytes(&refresh).map_err(anyhow::Error::msg)?,
    })
}

pub fn system_audit(now: i64, action: &str, detail: String) -> AuditEvent {
    AuditEvent {
        at: now,
        actor: "system".into(),
        action: action.into(),
        request_id: "startup".into(),
        detail,
        account_id: None,
    }
}

/// What the first start created; printed once to the operator.
pub struct FirstStart {
    pub account_id: String,
    pub admin_user_id: String,
    pub admin_apikey: NewSecret,
}

/// On an empty store, creates the first account, its administrator (global `admin`) and the
/// administrator's API key, in one transaction. `announce` shows the key to the operator and
/// runs **before** that transaction commits: if it fails, nothing is created; if the commit
/// fails, the shown key never worked and the next start shows a new one. Either way nobody is
/// left with an installation whose only key was never seen. Returns `None` when the store
/// already has accounts.
pub async fn ensure_first_admin(
    store: &dyn Store,
    pepper: &Pepper,
    config: &Config,
    node_id: &str,
    clock: impl Fn() -> i64,
    rng: &dyn SecureRandom,
    announce: impl FnOnce(&FirstStart) -> anyhow::Result<()>,
) -> anyhow::Result<Option<FirstStart>> {
    // With several nodes starting together on an empty database, one creates the first
    // administrator under a lease and the others wait for it.
    for _ in 0..300 {
        if has_accounts(store).await? {
            return Ok(None);
        }
        let now = clock();
        if store.try_lease("bootstrap", node_id, now, now + 60).await? {
            let created = if has_accounts(store).await? {
                Ok(None)
            } else {
                create_first_admin(store, pepper, config, now, rng, announce)
                    .await
                    .map(Some)
            };
            let _ = store.release_lease("bootstrap", node_id).await;
            return created;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!(
        "another node holds the bootstrap lease and has not created the first account within 30 s"
    )
}

/// Whether the store holds an installation (any account).
pub async fn has_accounts(store: &dyn Store) -> anyhow::Result<bool> {
    let filter = ListFilter {
        limit: Some(1),
        ..Default::default()
    };
    Ok(!store.list(EntityKind::Account, &filter).await?.is_empty())
}

async fn create_first_admin(
    store: &dyn Store,
    pepper: &Pepper,
    config: &Config,
    now: i64,
    rng: &dyn SecureRandom,
    announce: impl FnOnce(&FirstStart) -> anyhow::Result<()>,
) -> anyhow::Result<FirstStart> {
    let apikey = match &config.bootstrap_admin_apikey {
        Some(given) => secret::supplied_api_key(given)
            .map_err(|e| anyhow::anyhow!("TESSERA_BOOTSTRAP_ADMIN_APIKEY: {e}"))?,
        None => secret::generate_api_key(rng).map_err(anyhow::Error::msg)?,
    };
    let err = anyhow::Error::msg;
    let account = Account {
        id: tessera_core::ids::new_account_id(rng).map_err(err)?,
        name: "Default account".into(),
        enterprise_id: None,
        mfa: Default::default(),
        created_at: now,
    };
    let admin = User {
        id: tessera_core::ids::new_user_id(rng).map_err(err)?,
        account_id: account.id.clone(),
        name: "admin".into(),
        email: "admin@tessera.local".into(),
        password_hash: None,
        federated: false,
        created_at: now,
    };
    let (binding, key) = global_admin_key(
        &admin.id,
        &account.id,
        "bootstrap",
        "API key of the first administrator, created on first start",
        pepper.hash(SecretPurpose::ApiKey, apikey.expose()),
        now,
        rng,
    )?;
    let first = FirstStart {
        account_id: account.id.clone(),
        admin_user_id: admin.id.clone(),
        admin_apikey: apikey,
    };
    announce(&first)
        .context("cannot show the first administrator's API key, so none was created")?;
    let entities = [
        Entity::Account(account),
        Entity::User(admin),
        Entity::Binding(binding),
        Entity::ApiKey(key),
    ];
    store
        .create_all(
            &entities,
            &system_audit(now, "installation.create", "first start".into()),
        )
        .await
        .context(
            "cannot store the first administrator; the API key shown above was never valid: \
             start again for a new one",
        )?;
    Ok(first)
}

/// The global `admin` binding of `iam_id` and an API key for it (with the hash of its secret).
pub fn global_admin_key(
    iam_id: &str,
    account_id: &str,
    name: &str,
    description: &str,
    key_hash: tessera_core::model::KeyHash,
    now: i64,
    rng: &dyn SecureRandom,
) -> anyhow::Result<(AccessBinding, ApiKey)> {
    let err = anyhow::Error::msg;
    let binding = AccessBinding {
        id: tessera_core::ids::new_binding_id(rng).map_err(err)?,
        subject_iam_id: iam_id.to_owned(),
        role: Role::Admin,
        resource: Resource::Global,
        created_at: now,
    };
    let key = ApiKey {
        id: tessera_core::ids::new_api_key_id(rng).map_err(err)?,
        name: name.into(),
        description: description.into(),
        owner_iam_id: iam_id.to_owned(),
        account_id: account_id.to_owned(),
        key_hash,
        created_at: now,
    };
    Ok((binding, key))
}
