//! Opens the configured store: the embedded SQLite file in the data directory, or PostgreSQL
//! when a database URL is given.

use crate::bootstrap;
use crate::config::{redact_url, Config};
use anyhow::Context;
use std::sync::Arc;
use tessera_store::{PostgresStore, SqliteStore, Store};

/// Opens (creating an embedded store if needed) without migrating.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    match &config.database_url {
        Some(url) => {
            let store = match &config.database_schema {
                Some(schema) => PostgresStore::connect_with_schema(url, schema).await,
                None => PostgresStore::connect(url).await,
            }
            .with_context(|| format!("cannot connect to {}", redact_url(url)))?;
            Ok(Arc::new(store))
        }
        None => {
            bootstrap::create_private_dir(&config.data_dir).with_context(|| {
                format!("cannot create data directory {}", config.data_dir.display())
            })?;
            let path = config.data_dir.join("tessera.db");
            // The database holds sealed keys and key hashes: readable by its owner only. SQLite
            // gives its -wal and -shm files the same mode.
            bootstrap::create_private_file(&path)
                .with_context(|| format!("cannot create the store file {}", path.display()))?;
            let store = SqliteStore::open(&path)
                .await
                .with_context(|| format!("cannot open the store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

/// Opens and migrates; refuses a schema newer than this binary knows.
pub async fn open_migrated(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = open(config).await?;
    store.migrate().await.context("cannot migrate the store")?;
    Ok(store)
}
