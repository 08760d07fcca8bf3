//! The SQLite implementation of [`Store`], Tessera's embedded default.
//!
//! One database file in WAL mode with `synchronous=FULL`, so a write acknowledged to a client
//! survives a power cut. Every mutation runs in a `BEGIN IMMEDIATE` transaction: it takes the
//! write lock up front, so the reference and uniqueness checks it makes cannot be invalidated by
//! a concurrent writer before its own insert, and it never fails with a lock-upgrade deadlock.
//! Since SQLite serializes writers, change-feed sequence numbers become visible in order, which
//! is what lets followers read the feed with a simple `seq > last` cursor.
//!
//! The statements themselves are shared with PostgreSQL (see [`crate::engine`]); this module
//! supplies the connection, the transactions and the migrations.

use crate::backend::{Backend, Dialect};
use crate::engine::{self, db_error, Conn};
use crate::migrations;
use crate::{Result, StoreError};
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Sqlite, Transaction};
use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers run concurrently under WAL; writers queue on SQLite's lock regardless, so more
/// connections would only add idle file handles.
const MAX_CONNECTIONS: u32 = 8;

/// The SQLite store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path`. Does not migrate: call
    /// [`Store::migrate`] before use, so a binary that is too old can refuse a newer schema.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("opening {}: {e}", path.display())))?;
        Ok(SqliteStore { pool })
    }

    /// Folds the write-ahead log into the database file and empties it, then closes every
    /// connection (waiting for those in use), so that `tessera.db` alone holds every committed
    /// write afterwards. A checkpoint that cannot complete (another process still reads) is
    /// logged; closing the last connection checkpoints again.
    pub async fn close(&self) {
        if !self.pool.is_closed() {
            match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&self.pool)
                .await
            {
                Ok((0, _, _)) => {}
                Ok((busy, log, done)) => tracing::warn!(
                    busy,
                    log,
                    done,
                    "the write-ahead log could not be fully checkpointed at close"
                ),
                Err(e) => tracing::warn!(error = %e, "checkpoint at close failed"),
            }
        }
        self.pool.close().await;
    }

    /// Closes every connection without a checkpoint first: for a process that only read a
    /// database another process (the server) is writing.
    pub async fn close_without_checkpoint(&self) {
        self.pool.close().await;
    }

    /// Writes a consistent copy of the database to `target` (`VACUUM INTO`), while other
    /// connections and processes keep reading and writing: the copy is one read transaction's
    /// snapshot, a complete database file without a write-ahead log. `target` must not exist or
    /// be empty.
    pub async fn backup_to(&self, target: &Path) -> Result<()> {
        let target = target
            .to_str()
            .ok_or_else(|| StoreError::Database("the backup path is not valid UTF-8".into()))?;
        sqlx::query("VACUUM INTO ?")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;
    const SYSTEM: &'static str = "sqlite";
    const MIGRATIONS: &'static [migrations::File] = migrations::SQLITE;

    fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    async fn commit_write(tx: Transaction<'static, Sqlite>, _last_seq: Option<i64>) -> Result<()> {
        tx.commit().await.map_err(db_error)
    }

    /// Under WAL, one read transaction is one snapshot.
    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(db_error)
    }

    async fn has_migrations_table(&self) -> Result<bool> {
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        Ok(has_table.is_some())
    }

    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        // The upsert and the read-back in one write transaction: the read sees exactly what the
        // upsert left, whichever way its condition went.
        let mut tx = self.begin_write().await?;
        let args = engine::lease_upsert_args(name, holder, now, until);
        Conn::execute(&mut *tx, engine::LEASE_UPSERT, &args)
            .await
            .map_err(db_error)?;
        let current = engine::lease_holder(&mut *tx, name).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(current.as_deref() == Some(holder))
    }

    async fn close(&self) {
        SqliteStore::close(self).await
    }
}

impl Dialect for Sqlite {
    fn placeholders(sql: &str) -> Cow<'_, str> {
        Cow::Borrowed(sql)
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// What the store's tests of SQLite share.
#[cfg(test)]
pub(crate) mod testing {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::SqliteStore;
    use crate::Store as _;
    use std::future::Future;
    use tempfile::TempDir;

    /// A migrated store in a new temporary directory, which must outlive the store.
    pub async fn fresh() -> (TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("tessera.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

    /// Runs `body` on a fresh, migrated store and closes the store afterwards; the name of the
    /// test is for the PostgreSQL twin of this function, which may skip.
    pub async fn with_store<F, Fut>(_test: &str, body: F)
    where
        F: FnOnce(SqliteStore) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (_dir, store) = fresh().await;
        body(store.clone()).await;
        store.close().await;
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::testing::{fresh, with_store};
    use super::*;
    use crate::backend::bind_all;
    use crate::{suite, ListFilter, Store as _};
    use sqlx::Row as _;
    use tessera_core::directory::EntityKind;

    suite::backend_tests!(with_store);

    /// Every filtered list page is an index range read in key order: no scan of the table,
    /// no sort of all matching rows (which made the pages of a large account slow).
    #[tokio::test]
    async fn list_pages_read_only_their_rows() {
        let (_dir, store) = fresh().await;
        let text = |v: &str| Some(v.to_owned());
        let filters = [
            ListFilter {
                account_id: text("a"),
                ..ListFilter::default()
            },
            ListFilter {
                owner_iam_id: text("iam-ServiceId-x"),
                ..ListFilter::default()
            },
            ListFilter {
                subject_iam_id: text("iam-ServiceId-x"),
                ..ListFilter::default()
            },
            ListFilter {
                resource: text("account/a"),
                ..ListFilter::default()
            },
        ];
        let mut checked = 0;
        for kind in EntityKind::ALL {
            for base in &filters {
                for after in [None, text("k")] {
                    let filter = ListFilter {
                        after,
                        ..base.clone()
                    };
                    let (sql, values) = engine::list_query(kind, &filter);
                    if !sql.contains(" WHERE ") {
                        continue;
                    }
                    let explain = format!("EXPLAIN QUERY PLAN {sql}");
                    let rows = bind_all(sqlx::query(&explain), &values)
                        .fetch_all(&store.pool)
                        .await
                        .unwrap();
                    let plan: Vec<String> = rows
                        .iter()
                        .map(|row| row.get::<String, _>("detail"))
                        .collect();
                    assert!(
                        !plan
                            .iter()
                            .any(|step| step.contains("TEMP B-TREE") || step.starts_with("SCAN")),
                        "{kind:?} {filter:?}: {sql}: {plan:?}"
                    );
                    checked += 1;
                }
            }
        }
        // Every kind with a filter was looked at (users, keys, bindings, profiles, ...).
        assert!(checked > 30, "only {checked} plans checked");
        store.close().await;
    }

    #[tokio::test]
    async fn schema_version_is_none_before_migrating() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("tessera.db"))
            .await
            .unwrap();
        suite::schema_version_is_none_before_migrating(&store).await;
        store.close().await;
    }

    /// The migrated store at `path` with the suite's persistence data written, and the `seq` of
    /// that write.
    async fn store_with_data(path: &Path) -> (SqliteStore, i64) {
        let store = SqliteStore::open(path).await.unwrap();
        store.migrate().await.unwrap();
        let seq = suite::persistence_write(&store).await;
        (store, seq)
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        let (store, seq) = store_with_data(&path).await;
        store.close().await;

        let reopened = SqliteStore::open(&path).await.unwrap();
        reopened.migrate().await.unwrap();
        suite::persistence_check(&reopened, seq).await;
        reopened.close().await;
    }

    #[tokio::test]
    async fn close_leaves_the_database_file_complete_and_a_backup_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        let (store, seq) = store_with_data(&path).await;
        let backup = dir.path().join("backup.db");
        store.backup_to(&backup).await.unwrap();
        // The target of a backup must be new (or empty).
        assert!(store.backup_to(&backup).await.is_err());
        store.close().await;
        let wal = std::fs::metadata(dir.path().join("tessera.db-wal")).map(|m| m.len());
        assert_eq!(
            wal.unwrap_or(0),
            0,
            "the write-ahead log is folded in at close"
        );

        // The database file alone, and the backup alone, hold every write.
        for file in [path, backup] {
            let alone = tempfile::tempdir().unwrap();
            let copy = alone.path().join("tessera.db");
            std::fs::copy(&file, &copy).unwrap();
            let reopened = SqliteStore::open(&copy).await.unwrap();
            suite::persistence_check(&reopened, seq).await;
            reopened.close().await;
        }
    }

    #[tokio::test]
    async fn open_creates_the_file_with_durable_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(path.exists());
        let mut conn = store.pool.acquire().await.unwrap();
        assert_eq!(pragma::<String>(&mut conn, "journal_mode").await, "wal");
        assert_eq!(pragma::<i64>(&mut conn, "synchronous").await, 2, "FULL");
        assert_eq!(pragma::<i64>(&mut conn, "foreign_keys").await, 1);
        assert_eq!(pragma::<i64>(&mut conn, "busy_timeout").await, 5000);
    }

    /// The value of the setting `PRAGMA name` on `conn`.
    async fn pragma<T>(conn: &mut sqlx::SqliteConnection, name: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite> + Send + Unpin,
    {
        sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(conn)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let (_dir, store) = fresh().await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations \
             (version, description, installed_on, success, checksum, execution_time) \
             VALUES (9999, 'from the future', CURRENT_TIMESTAMP, 1, X'00', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        suite::newer_schema_is_refused(&store).await;
    }

    #[tokio::test]
    async fn undecodable_rows_are_corrupt() {
        let (_dir, store) = fresh().await;
        sqlx::query(
            "INSERT INTO access_bindings (id, subject_iam_id, role, resource, created_at) \
             VALUES ('AccessBinding-x', 'IBMid-1', 'overlord', '*', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        suite::assert_corrupt(&store, EntityKind::Binding, "AccessBinding-x").await;

        sqlx::query(
            "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', 0); \
             INSERT INTO service_accounts (id, account_id, name, description, created_at) \
                 VALUES ('ServiceId-1', 'a', 's', '', 0); \
             INSERT INTO api_keys \
                 (id, name, description, owner_iam_id, account_id, key_hash, created_at) \
                 VALUES ('ApiKey-short', 'k', '', 'iam-ServiceId-1', 'a', X'0102', 0)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        suite::assert_corrupt(&store, EntityKind::ApiKey, "ApiKey-short").await;
    }

    /// Concurrent writers queue on the write lock instead of failing, and the feed numbers
    /// their changes without gaps.
    #[tokio::test]
    async fn concurrent_writes_all_land_in_order() {
        let (_dir, store) = fresh().await;
        let mut tasks = Vec::new();
        for i in 0..32 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let jti = format!("jti-{i:02}");
                store
                    .create(&suite::revocation(&jti, suite::NOW), &suite::audit("t"))
                    .await
            }));
        }
        let mut seqs = Vec::new();
        for task in tasks {
            seqs.push(task.await.unwrap().unwrap());
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=32).collect::<Vec<i64>>());
        let batch = store.changes_since(0, 1000).await.unwrap();
        assert_eq!(batch.changes.len(), 32);
        assert_eq!(batch.seq, 32);
    }
}
