//! One-shot operator commands on the store, run without a server: `tessera migrate` (apply the
//! schema migrations explicitly), `tessera export` and `tessera import` (move a whole
//! installation between SQLite and PostgreSQL, or between machines), `tessera backup` and
//! `tessera restore` (a consistent copy of a running embedded store, and putting one back), and
//! `tessera admin recover` (a new global administrator key, for whoever holds the master key).
//!
//! The commands that write an embedded store (`migrate`, `import`, `restore`, `admin recover`)
//! take the data directory's lock ([`crate::data_dir_lock`]), so they refuse a directory a
//! server runs on; `export` and `backup` only read, and run beside a server.
//!
//! Each resolves the store exactly as `serve` does (see [`crate::config::StoreArgs`]), opens it
//! with [`crate::storage::open_backend`], and closes it before returning, so an embedded SQLite
//! file is complete by itself afterwards.
//!
//! An export holds the server secrets and private signing keys still sealed under the master
//! key, so the target of an import must run with the same master key. [`import`] checks that
//! before writing anything: it refuses without a master key, and with a master key that does not
//! open the export's sealed values.

use crate::bootstrap;
use crate::config::Config;
use crate::data_dir_lock::{self, DataDirLock};
use crate::storage::{self, OpenedStore};
use anyhow::{bail, Context};
use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::path::{Path, PathBuf};
use tessera_core::directory::{Entity, EntityKind};
use tessera_core::seal::MasterKey;
use tessera_core::secret::{NewSecret, SecretPurpose};
use tessera_store::transfer::{self, Dump, ImportReport};
use tessera_store::{AuditEvent, ListFilter, SqliteStore, Store};

/// What `tessera migrate` found and left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// The store, for people (no password).
    pub store: String,
    /// Schema version before migrating; `None` for a store without a schema.
    pub before: Option<i64>,
    /// Schema version after migrating.
    pub after: Option<i64>,
    /// The newest schema version this binary knows.
    pub known: i64,
}

/// Runs `work` on the opened store, then closes the store whatever the outcome.
async fn with_store<T>(
    opened: OpenedStore,
    work: impl AsyncFnOnce(&OpenedStore) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let result = work(&opened).await;
    opened.close().await;
    result
}

/// The data directory's lock, for a command that writes the embedded store. A PostgreSQL
/// store is shared by several nodes by design: its commands are safe online and take none.
fn lock_embedded(config: &Config, command: &str) -> anyhow::Result<Option<DataDirLock>> {
    if config.database_url.is_some() {
        return Ok(None);
    }
    Ok(Some(data_dir_lock::acquire_creating(
        &config.data_dir,
        command,
    )?))
}

/// Applies pending migrations to the configured store. A schema newer than this binary knows
/// is an error naming both versions.
pub async fn migrate(config: &Config) -> anyhow::Result<MigrateReport> {
    let _lock = lock_embedded(config, "migrate")?;
    let opened = storage::open_backend(config).await?;
    let description = config.store_description();
    with_store(opened, async |opened| {
        let store = opened.store();
        let before = store
            .schema_version()
            .await
            .context("cannot read the schema version")?;
        store.migrate().await.context("cannot migrate the store")?;
        let after = store
            .schema_version()
            .await
            .context("cannot read the schema version")?;
        Ok(MigrateReport {
            store: description,
            before,
            after,
            known: store.known_schema_version(),
        })
    })
    .await
}

/// Refuses a store whose schema is missing, older or newer than this binary's: an export reads
/// every table as this binary knows them, and must not change its source.
async fn require_current_schema(store: &dyn Store, description: &str) -> anyhow::Result<()> {
    let known = store.known_schema_version();
    match store
        .schema_version()
        .await
        .context("cannot read the schema version")?
    {
        None => bail!("{description} holds no Tessera installation (it has no schema)"),
        Some(version) if version < known => bail!(
            "the schema of {description} is version {version}, older than this Tessera's \
             ({known}); run `tessera migrate` first"
        ),
        Some(version) if version > known => bail!(
            "database schema version {version} is newer than this Tessera knows ({known}); \
             upgrade Tessera"
        ),
        Some(_) => Ok(()),
    }
}

/// Reads the whole installation from the configured store. Does not change the store.
pub async fn export(config: &Config, now: i64) -> anyhow::Result<Dump> {
    if config.database_url.is_none() {
        let path = config.data_dir.join("tessera.db");
        if !path.exists() {
            bail!(
                "there is no store at {}: nothing to export (check --data-dir)",
                path.display()
            );
        }
    }
    let description = config.store_description();
    let opened = storage::open_backend(config).await?;
    with_store(opened, async |opened| {
        let store = opened.store();
        require_current_schema(store, &description).await?;
        transfer::export(store, now)
            .await
            .with_context(|| format!("cannot export {description}"))
    })
    .await
}

/// The master key the target will run with; never creates one (a fresh key could not open
/// anything in the export).
fn target_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if config.master_key_env.is_none() && !config.master_key_file.exists() {
        bail!(
            "no master key: the export's keys are sealed under the master key of the installation \
             it came from; set TESSERA_MASTER_KEY to it, or put it in {} (or name its file with \
             --master-key-file)",
            config.master_key_file.display()
        );
    }
    bootstrap::open_master_key(config, &SystemRandom::new())
}

/// Checks that `master` opens every sealed value of the dump. Values that are not base64 are
/// left to [`transfer::import`], which names them.
fn check_master_key(dump: &Dump, master: &MasterKey) -> anyhow::Result<()> {
    let mismatch = |what: String| {
        anyhow::anyhow!(
            "the master key does not open {what} of the export: import with the master key of \
             the installation it came from"
        )
    };
    for secret in &dump.server_secrets {
        if let Ok(sealed) = BASE64.decode(&secret.sealed) {
            master
                .open(bootstrap::SECRET_PURPOSE, &sealed)
                .map_err(|_| mismatch(format!("server secret {}", secret.name)))?;
        }
    }
    for key in &dump.entities.signing_keys {
        if let Ok(sealed) = BASE64.decode(&key.sealed_private_key) {
            master
                .open(tessera_core::keyring::SEALED_KEY_PURPOSE, &sealed)
                .map_err(|_| mismatch(format!("signing key {}", key.kid)))?;
        }
    }
    Ok(())
}

/// Writes `dump` into the configured store, which must be empty; migrates it first (creating
/// the schema of a fresh store). Every object gets the audit event `installation.import` by
/// `system`.
pub async fn import(config: &Config, dump: &Dump, now: i64) -> anyhow::Result<ImportReport> {
    let _lock = lock_embedded(config, "import")?;
    let master = target_master_key(config)?;
    check_master_key(dump, &master)?;
    let description = config.store_description();
    let opened = storage::open_backend(config).await?;
    with_store(opened, async |opened| {
        let store = opened.store();
        store.migrate().await.context("cannot migrate the store")?;
        let audit = AuditEvent {
            at: now,
            actor: "system".into(),
            action: "installation.import".into(),
            request_id: "import".into(),
            detail: format!(
                "import of {} objects exported at {}",
                dump.entity_count(),
                crate::rfc3339::from_unix(dump.exported_at)
            ),
            account_id: None,
        };
        transfer::import(store, dump, &audit)
            .await
            .with_context(|| format!("cannot import into {description}"))
    })
    .await
}

/// What `tessera backup` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    pub store: String,
    pub output: PathBuf,
    pub bytes: u64,
    pub schema_version: Option<i64>,
}

/// The embedded store's file, which must exist (a backup or recovery never creates one).
fn existing_store_file(config: &Config, what: &str) -> anyhow::Result<PathBuf> {
    if config.database_url.is_some() {
        bail!(
            "{what} works on the embedded SQLite store only; for PostgreSQL use pg_dump (or \
             point-in-time recovery), or `tessera export` for a portable copy"
        );
    }
    let path = config.data_dir.join("tessera.db");
    if !path.exists() {
        bail!("there is no store at {} (check --data-dir)", path.display());
    }
    Ok(path)
}

/// Writes a consistent copy of the embedded store to `output` while a server may be running
/// on it (SQLite's `VACUUM INTO`: one read transaction's snapshot, never a half-copied file).
/// The copy is written beside `output` and renamed into place once complete and synced; it is
/// mode 0600, like the store.
pub async fn backup(config: &Config, output: &Path) -> anyhow::Result<BackupReport> {
    let path = existing_store_file(config, "tessera backup")?;
    if output.exists() {
        bail!("{} exists already; choose a new file", output.display());
    }
    let partial = partial_path(output);
    // VACUUM INTO accepts an empty file: creating it first gives it our mode.
    bootstrap::create_private_file(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let written = async {
        let store = SqliteStore::open(&path)
            .await
            .with_context(|| format!("cannot open the store at {}", path.display()))?;
        let copied = store.backup_to(&partial).await;
        // Only read: the server's connections, not ours, own the write-ahead log.
        store.close_without_checkpoint().await;
        copied.context("cannot copy the store")?;
        sync_file(&partial)?;
        let schema_version = check_copy(&partial).await?;
        std::fs::rename(&partial, output)
            .with_context(|| format!("cannot move the backup to {}", output.display()))?;
        sync_parent(output);
        anyhow::Ok(schema_version)
    }
    .await;
    let schema_version = match written {
        Ok(version) => version,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    Ok(BackupReport {
        store: config.store_description(),
        output: output.to_path_buf(),
        bytes: std::fs::metadata(output).map(|m| m.len()).unwrap_or(0),
        schema_version,
    })
}

/// Opens a copied database on its own and reads its schema version: it is a whole SQLite
/// database of a Tessera installation, and this binary can run it.
async fn check_copy(path: &Path) -> anyhow::Result<Option<i64>> {
    let store = SqliteStore::open(path)
        .await
        .with_context(|| format!("{} is not a usable SQLite database", path.display()))?;
    let result = async {
        let version = store.schema_version().await?;
        let known = store.known_schema_version();
        match version {
            None => bail!("{} holds no Tessera installation", path.display()),
            Some(v) if v > known => bail!(
                "{} has schema version {v}, newer than this Tessera knows ({known}); upgrade \
                 Tessera",
                path.display()
            ),
            Some(_) => {}
        }
        if store.list_server_secrets().await?.is_empty() {
            bail!(
                "{} holds no Tessera installation (no server secrets)",
                path.display()
            );
        }
        Ok(version)
    }
    .await;
    store.close().await;
    result
}

/// What `tessera restore` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub store: String,
    /// Where the store that was there before now is, if there was one.
    pub previous: Option<PathBuf>,
    pub schema_version: Option<i64>,
}

/// Puts a backup (a file `tessera backup` wrote) in place as the embedded store of the data
/// directory. Refuses a directory a server runs on, and a backup the master key does not open.
/// A store already there is kept beside it as `tessera.db.before-restore-<unix time>`.
pub async fn restore(config: &Config, input: &Path, now: i64) -> anyhow::Result<RestoreReport> {
    if config.database_url.is_some() {
        bail!(
            "tessera restore puts back an embedded SQLite store; for PostgreSQL use pg_restore \
             (or point-in-time recovery), or `tessera import` of an export"
        );
    }
    if !input.is_file() {
        bail!("there is no backup at {}", input.display());
    }
    let _lock = data_dir_lock::acquire_creating(&config.data_dir, "restore")?;
    let master = target_master_key(config)?;
    let target = config.data_dir.join("tessera.db");
    // Work on a copy in the data directory: the backup itself stays untouched, and the final
    // step is one rename on the same file system.
    let staged = partial_path(&target);
    let _ = std::fs::remove_file(&staged);
    bootstrap::create_private_file(&staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    let staged_ok = async {
        std::fs::copy(input, &staged)
            .with_context(|| format!("cannot copy {}", input.display()))?;
        sync_file(&staged)?;
        let schema_version = check_copy(&staged).await?;
        check_backup_master_key(&staged, &master).await?;
        anyhow::Ok(schema_version)
    }
    .await;
    let schema_version = match staged_ok {
        Ok(version) => version,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            remove_sidecars(&staged);
            return Err(e);
        }
    };
    let previous = if target.exists() {
        // Fold the old store's write-ahead log into it before moving it aside, so it is whole.
        if let Ok(old) = SqliteStore::open(&target).await {
            old.close().await;
        }
        let aside = config
            .data_dir
            .join(format!("tessera.db.before-restore-{now}"));
        std::fs::rename(&target, &aside).with_context(|| {
            format!("cannot move the current store aside to {}", aside.display())
        })?;
        Some(aside)
    } else {
        None
    };
    remove_sidecars(&target);
    std::fs::rename(&staged, &target)
        .with_context(|| format!("cannot put the backup in place at {}", target.display()))?;
    sync_parent(&target);
    Ok(RestoreReport {
        store: config.store_description(),
        previous,
        schema_version,
    })
}

/// Checks that `master` opens every server secret of the database at `path`.
async fn check_backup_master_key(path: &Path, master: &MasterKey) -> anyhow::Result<()> {
    let store = SqliteStore::open(path).await?;
    let secrets = store.list_server_secrets().await;
    store.close().await;
    for (name, sealed) in secrets? {
        master
            .open(bootstrap::SECRET_PURPOSE, &sealed)
            .map_err(|_| {
                anyhow::anyhow!(
                "the master key does not open server secret {name} of the backup: restore with \
                 the master key of the installation it came from (TESSERA_MASTER_KEY, or \
                 master.key in the data directory)"
            )
            })?;
    }
    Ok(())
}

/// What `tessera admin recover` created. The key is shown once and never stored in the clear.
pub struct RecoverReport {
    pub store: String,
    pub account_id: String,
    pub user_id: String,
    pub api_key_id: String,
    pub api_key: NewSecret,
}

/// Creates a new global administrator (a user in the installation's first account, its
/// global `admin` binding and an API key) in one transaction, audited as
/// `installation.recover` by `system`. Needs the master key (it unseals the API-key pepper) and
/// an initialised store; on the embedded store it refuses while a server runs (start the server
/// afterwards to use the key); on PostgreSQL the nodes pick the change up within a second.
pub async fn recover(config: &Config, now: i64) -> anyhow::Result<RecoverReport> {
    if config.database_url.is_none() {
        existing_store_file(config, "tessera admin recover")?;
    }
    let _lock = lock_embedded(config, "admin recover")?;
    let master = target_master_key(config)?;
    let description = config.store_description();
    let opened = storage::open_backend(config).await?;
    with_store(opened, async |opened| {
        let store = opened.store();
        require_current_schema(store, &description).await?;
        if !bootstrap::has_accounts(store).await? {
            bail!("{description} holds no installation yet: start the server once to create it");
        }
        let rng = SystemRandom::new();
        let secrets = bootstrap::load_server_secrets(store, &master, &rng).await?;
        let accounts = store
            .list(
                EntityKind::Account,
                &ListFilter {
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .await?;
        let account_id = accounts
            .iter()
            .filter_map(|e| match e {
                Entity::Account(a) => Some(a),
                _ => None,
            })
            .min_by_key(|a| (a.created_at, a.id.clone()))
            .map(|a| a.id.clone())
            .ok_or_else(|| anyhow::anyhow!("{description} has no account"))?;
        let err = anyhow::Error::msg;
        let user_id = tessera_core::ids::new_user_id(&rng).map_err(err)?;
        let user = tessera_core::model::User {
            id: user_id.clone(),
            account_id: account_id.clone(),
            name: "admin (recovered)".into(),
            email: format!("recovered-{}@tessera.local", user_id.to_lowercase()),
            password_hash: None,
            federated: false,
            created_at: now,
        };
        let api_key = tessera_core::secret::generate_api_key(&rng).map_err(err)?;
        let (binding, key) = bootstrap::global_admin_key(
            &user_id,
            &account_id,
            "recovery",
            "API key of an administrator created by `tessera admin recover`",
            secrets.pepper.hash(SecretPurpose::ApiKey, api_key.expose()),
            now,
            &rng,
        )?;
        let api_key_id = key.id.clone();
        let audit = AuditEvent {
            at: now,
            actor: "system".into(),
            action: "installation.recover".into(),
            request_id: "recover".into(),
            detail: format!(
                "tessera admin recover: new global administrator {user_id} with API key {api_key_id}"
            ),
            account_id: None,
        };
        store
            .create_all(
                &[
                    Entity::User(user),
                    Entity::Binding(binding),
                    Entity::ApiKey(key),
                ],
                &audit,
            )
            .await
            .context("cannot store the new administrator")?;
        Ok(RecoverReport {
            store: description.clone(),
            account_id,
            user_id,
            api_key_id,
            api_key,
        })
    })
    .await
}

/// `<dir>/.<name>.partial`: where a file is written before it is renamed into place.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tessera.db".into());
    path.with_file_name(format!(".{name}.partial"))
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Makes a rename durable; a failure here only weakens crash safety, so it is not an error.
fn sync_parent(path: &Path) {
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// Removes a database's `-wal` and `-shm` files, if a crash left any.
fn remove_sidecars(path: &Path) {
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::rotation::Rotator;
    use tessera_core::directory::EntityKind;
    use tessera_store::ListFilter;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const KEY_B: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

    fn config(dir: &std::path::Path, master: Option<&str>) -> Config {
        let mut config = Config::for_test(dir);
        config.master_key_env = master.map(str::to_owned);
        config
    }

    /// A started installation: secrets, signing keys and the first administrator.
    async fn installation(config: &Config) {
        let rng = SystemRandom::new();
        let master = bootstrap::open_master_key(config, &rng).unwrap();
        let store = storage::open_migrated(config).await.unwrap();
        let secrets = bootstrap::load_server_secrets(store.as_ref(), &master, &rng)
            .await
            .unwrap();
        Rotator {
            store: store.as_ref(),
            master: &master,
            config,
            rng: &rng,
            node_id: "test",
        }
        .ensure_signers(|| Clock::system().now())
        .await
        .unwrap();
        bootstrap::ensure_first_admin(
            store.as_ref(),
            &secrets.pepper,
            config,
            "test",
            || Clock::system().now(),
            &rng,
            |_| Ok(()),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn migrate_creates_the_schema_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("data"), None);
        let first = migrate(&config).await.unwrap();
        assert_eq!(first.before, None);
        assert_eq!(first.after, Some(first.known));
        assert!(first.store.starts_with("sqlite:"), "{}", first.store);
        let second = migrate(&config).await.unwrap();
        assert_eq!((second.before, second.after), (first.after, first.after));
    }

    #[tokio::test]
    async fn export_needs_an_existing_current_store() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir.path().join("nothing"), None);
        let err = format!("{:#}", export(&config, 1).await.unwrap_err());
        assert!(err.contains("no store"), "{err}");
        assert!(
            !dir.path().join("nothing").exists(),
            "export must not create a store"
        );
    }

    #[tokio::test]
    async fn an_installation_moves_with_its_master_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let source = config(&dir.path().join("source"), Some(KEY_A));
        installation(&source).await;
        let dump = export(&source, Clock::system().now()).await.unwrap();
        assert!(dump.entity_count() >= 6, "{dump:?}");
        assert_eq!(dump.server_secrets.len(), 2);

        // No master key at all, and the wrong one: refused before anything is written.
        let target_dir = dir.path().join("target");
        let err = import(&config(&target_dir, None), &dump, 2)
            .await
            .unwrap_err();
        assert!(format!("{err:#}").contains("no master key"), "{err:#}");
        assert!(!target_dir.join("tessera.db").exists());
        let err = import(&config(&target_dir, Some(KEY_B)), &dump, 2)
            .await
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("does not open server secret"),
            "{err:#}"
        );
        assert!(!target_dir.join("tessera.db").exists());

        let target = config(&target_dir, Some(KEY_A));
        let report = import(&target, &dump, 2).await.unwrap();
        assert_eq!(report.total_entities, dump.entity_count());
        let again = export(&target, dump.exported_at).await.unwrap();
        assert_eq!(again.entities, dump.entities);

        let store = storage::open(&target).await.unwrap();
        let audit = store
            .list_audit(&tessera_store::AuditFilter::newest(1))
            .await
            .unwrap();
        assert_eq!(audit[0].event.actor, "system");
        assert_eq!(audit[0].event.action, "installation.import");
        let accounts = store
            .list(EntityKind::Account, &ListFilter::default())
            .await
            .unwrap();
        assert_eq!(accounts.len(), 1);

        let err = import(&target, &dump, 3).await.unwrap_err();
        assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    }
}
