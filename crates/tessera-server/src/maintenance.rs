//! One-shot operator commands on the store, run without a server: `tessera migrate` (apply the
//! schema migrations explicitly), `tessera export` and `tessera import` (move a whole
//! installation between SQLite and PostgreSQL, or between machines).
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
use crate::storage::{self, OpenedStore};
use anyhow::{bail, Context};
use aws_lc_rs::rand::SystemRandom;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use tessera_core::seal::MasterKey;
use tessera_store::transfer::{self, Dump, ImportReport};
use tessera_store::{AuditEvent, Store};

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

/// Applies pending migrations to the configured store. A schema newer than this binary knows
/// is an error naming both versions.
pub async fn migrate(config: &Config) -> anyhow::Result<MigrateReport> {
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
                crate::admin::rfc3339(dump.exported_at)
            ),
        };
        transfer::import(store, dump, &audit)
            .await
            .with_context(|| format!("cannot import into {description}"))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
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
        .ensure_signers(crate::state::now)
        .await
        .unwrap();
        bootstrap::ensure_first_admin(
            store.as_ref(),
            &secrets.pepper,
            config,
            "test",
            crate::state::now,
            &rng,
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
        let dump = export(&source, crate::state::now()).await.unwrap();
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
        let audit = store.list_audit(1).await.unwrap();
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
