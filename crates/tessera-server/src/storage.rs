//! Opens the configured store: the embedded SQLite file in the data directory, or PostgreSQL
//! when a database URL is given.

use crate::bootstrap;
use crate::config::{redact_url, Config};
use anyhow::Context;
use std::sync::Arc;
use tessera_core::error::{Error, ErrorKind};
use tessera_store::{PostgresStore, SqliteStore, Store, StoreError};

/// What every surface tells a client when the store fails. The cause goes to the log only:
/// driver and SQL text never reach a client.
pub const STORE_UNAVAILABLE: &str = "The database is unavailable; try again shortly.";

/// The one mapping of store errors into the core's kinds, which each surface renders in its own
/// shape (an outage is `Unavailable`, 503 everywhere). Logs the cause of a failure with the
/// request id.
pub fn to_core_error(error: StoreError, request_id: &str) -> Error {
    match error {
        StoreError::AlreadyExists(what) => {
            Error::new(ErrorKind::AlreadyExists, format!("{what} already exists"))
        }
        StoreError::NotFound(what) => Error::not_found(format!("{what} not found")),
        StoreError::Conflict(why) => Error::new(ErrorKind::AlreadyExists, why),
        StoreError::Database(cause) => {
            tracing::error!(request_id, %cause, "the store is unavailable");
            Error::new(ErrorKind::Unavailable, STORE_UNAVAILABLE)
        }
        StoreError::Corrupt(cause) => {
            tracing::error!(request_id, %cause, "the store holds corrupt data");
            Error::internal("stored data is corrupt")
        }
    }
}

/// A store opened by a one-shot command (`migrate`, `export`, `import`), which closes it
/// explicitly when done: closing lets SQLite checkpoint its write-ahead log, so the database
/// file is complete by itself afterwards.
pub enum OpenedStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl OpenedStore {
    pub fn store(&self) -> &dyn Store {
        match self {
            OpenedStore::Sqlite(store) => store,
            OpenedStore::Postgres(store) => store,
        }
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        match self {
            OpenedStore::Sqlite(store) => store.close().await,
            OpenedStore::Postgres(store) => store.close().await,
        }
    }
}

/// Opens (creating an embedded store if needed) without migrating, keeping the backend's type.
pub async fn open_backend(config: &Config) -> anyhow::Result<OpenedStore> {
    match &config.database_url {
        Some(url) => {
            let store = match &config.database_schema {
                Some(schema) => PostgresStore::connect_with_schema(url, schema).await,
                None => PostgresStore::connect(url).await,
            }
            .with_context(|| format!("cannot connect to {}", redact_url(url)))?;
            Ok(OpenedStore::Postgres(store))
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
            Ok(OpenedStore::Sqlite(store))
        }
    }
}

/// Opens (creating an embedded store if needed) without migrating.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match open_backend(config).await? {
        OpenedStore::Sqlite(store) => Arc::new(store),
        OpenedStore::Postgres(store) => Arc::new(store),
    })
}

/// Opens and migrates; refuses a schema newer than this binary knows.
pub async fn open_migrated(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = open(config).await?;
    store.migrate().await.context("cannot migrate the store")?;
    Ok(store)
}
