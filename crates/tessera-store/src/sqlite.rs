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

use crate::engine::{self, db_error, newer_schema, Conn, Fields, Row, Value, WriteMode};
use crate::migrations;
use crate::{
    AuditEvent, AuditFilter, AuditRecord, ChangeBatch, ListFilter, Result, Store, StoreError,
};
use async_trait::async_trait;
use sqlx::migrate::MigrateError;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row as _, Sqlite, Transaction};
use std::path::Path;
use std::time::Duration;
use tessera_core::directory::{Entity, EntityKind};
use tracing::Instrument;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers run concurrently under WAL; writers queue on SQLite's lock regardless, so more
/// connections would only add idle file handles.
const MAX_CONNECTIONS: u32 = 8;

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

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

    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(db_error)
    }

    async fn begin_read(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin().await.map_err(db_error)
    }

    async fn applied_schema_version(&self) -> Result<Option<i64>> {
        let has_table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?;
        if has_table.is_none() {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn write(&self, entity: &Entity, audit: &AuditEvent, mode: WriteMode) -> Result<i64> {
        let span = engine::write_span("sqlite", mode.as_str(), entity.kind());
        async {
            let mut tx = self.begin_write().await?;
            let seq = engine::write(&mut *tx, entity, audit, mode).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(seq)
        }
        .instrument(span)
        .await
    }
}

fn known_version() -> i64 {
    migrations::known_version(migrations::SQLITE)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let known = known_version();
        // sqlx would report a newer schema as a "missing" migration; say what it means instead,
        // and say it before touching anything.
        if let Some(applied) = self.applied_schema_version().await? {
            if applied > known {
                return Err(newer_schema(applied, known));
            }
        }
        let migrator = migrations::migrator(migrations::SQLITE)
            .await
            .map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        migrator.run(&self.pool).await.map_err(|e| match e {
            MigrateError::VersionMissing(version) if version > known => {
                newer_schema(version, known)
            }
            other => StoreError::Database(format!("migrating: {other}")),
        })?;
        tracing::debug!(schema_version = known, "sqlite schema is current");
        Ok(())
    }

    async fn create(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64> {
        self.write(entity, audit, WriteMode::Create).await
    }

    async fn create_all(&self, entities: &[Entity], audit: &AuditEvent) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let mut seq = 0;
        for entity in entities {
            seq = engine::write(&mut *tx, entity, audit, WriteMode::Create).await?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(seq)
    }

    async fn put(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64> {
        self.write(entity, audit, WriteMode::Put).await
    }

    async fn delete(&self, kind: EntityKind, key: &str, audit: &AuditEvent) -> Result<i64> {
        async {
            let mut tx = self.begin_write().await?;
            let seq = engine::delete(&mut *tx, kind, key, audit).await?;
            tx.commit().await.map_err(db_error)?;
            Ok(seq)
        }
        .instrument(engine::write_span("sqlite", "delete", kind))
        .await
    }

    async fn find(&self, kind: EntityKind, key: &str) -> Result<Option<Entity>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::find(&mut *conn, kind, key).await
    }

    async fn list(&self, kind: EntityKind, filter: &ListFilter) -> Result<Vec<Entity>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::list(&mut *conn, kind, filter).await
    }

    async fn load_each(&self, now: i64, sink: &mut (dyn FnMut(Entity) + Send)) -> Result<i64> {
        // One read transaction: under WAL it is one snapshot, so `seq` matches the rows exactly.
        let mut tx = self.begin_read().await?;
        let seq = engine::load_each(&mut *tx, now, sink).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(seq)
    }

    async fn changes_since(&self, seq: i64, limit: u32) -> Result<ChangeBatch> {
        let mut tx = self.begin_read().await?;
        let batch = engine::changes_since(&mut *tx, seq, limit).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(batch)
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        let now = engine::unix_now();
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::server_secret(&mut *conn, name, candidate, now).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::list_audit(&mut *conn, filter).await
    }

    async fn prune(&self, now: i64, changes_before_seq: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        engine::prune(&mut *tx, now, changes_before_seq).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        // The upsert and the read-back in one write transaction: the read sees exactly what the
        // upsert left, whichever way its condition went.
        let mut tx = self.begin_write().await?;
        Conn::execute(
            &mut *tx,
            engine::LEASE_UPSERT,
            &[
                Value::text(name),
                Value::text(holder),
                Value::Int(until),
                Value::Int(now),
            ],
        )
        .await
        .map_err(db_error)?;
        let current = engine::lease_holder(&mut *tx, name).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(current.as_deref() == Some(holder))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::release_lease(&mut *conn, name, holder).await
    }

    async fn list_server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        engine::list_server_secrets(&mut *conn).await
    }

    async fn schema_version(&self) -> Result<Option<i64>> {
        self.applied_schema_version().await
    }

    fn known_schema_version(&self) -> i64 {
        known_version()
    }

    async fn close(&self) {
        SqliteStore::close(self).await
    }
}

fn bind_all<'q>(mut query: Query<'q>, args: &'q [Value<'_>]) -> Query<'q> {
    for arg in args {
        query = match arg {
            Value::Text(v) => query.bind(&**v),
            Value::OptText(v) => query.bind(v.as_deref()),
            Value::Int(v) => query.bind(*v),
            Value::OptInt(v) => query.bind(*v),
            Value::Bytes(v) => query.bind(*v),
            Value::OptBytes(v) => query.bind(*v),
            Value::Flag(v) => query.bind(i64::from(*v)),
        };
    }
    query
}

#[async_trait]
impl Conn for SqliteConnection {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, sqlx::Error> {
        let done = bind_all(sqlx::query(sql), args).execute(&mut *self).await?;
        Ok(done.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, sqlx::Error> {
        let rows = bind_all(sqlx::query(sql), args)
            .fetch_all(&mut *self)
            .await?;
        Ok(rows.into_iter().map(|row| Box::new(row) as Row).collect())
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<Row>, sqlx::Error> {
        let row = bind_all(sqlx::query(sql), args)
            .fetch_optional(&mut *self)
            .await?;
        Ok(row.map(|row| Box::new(row) as Row))
    }
}

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Fields for SqliteRow {
    fn text(&self, name: &str) -> Result<String> {
        column(self, name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        column(self, name)
    }
    fn int(&self, name: &str) -> Result<i64> {
        column(self, name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>> {
        column(self, name)
    }
    fn bytes(&self, name: &str) -> Result<Vec<u8>> {
        column(self, name)
    }
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        column(self, name)
    }
    fn flag(&self, name: &str) -> Result<bool> {
        Ok(column::<i64>(self, name)? != 0)
    }
}

/// What the store's tests of SQLite share.
#[cfg(test)]
pub(crate) mod testing {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::SqliteStore;
    use crate::Store as _;
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
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::testing::fresh;
    use super::*;
    use crate::suite;

    macro_rules! suite_tests {
        ($($name:ident),* $(,)?) => {$(
            #[tokio::test]
            async fn $name() {
                let (_dir, store) = fresh().await;
                suite::$name(&store).await;
                store.close().await;
            }
        )*};
    }

    suite_tests!(
        crud_every_kind,
        duplicates_are_rejected,
        missing_references_are_not_found,
        cascade_delete_of_service_account,
        account_delete_conflicts_while_not_empty,
        changes_since_dedupes_and_reports_deletes,
        load_all_skips_expired_revocations,
        load_each_reads_every_page_in_key_order,
        server_secret_first_writer_wins,
        audit_rows_written,
        audit_filters_and_pages,
        list_paginates_and_filters,
        prune_removes_expired_and_old_changes,
        migrate_twice_is_a_no_op,
        ping_answers,
        create_all_is_all_or_nothing,
        leases_are_exclusive_until_expiry,
        server_secrets_are_listed,
        schema_version_is_current,
        yandex_credentials,
        profiles_issuers_policies,
    );

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_are_seen_in_order() {
        let (_dir, store) = fresh().await;
        suite::concurrent_creates_are_seen_in_order(std::sync::Arc::new(store.clone())).await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_leases_have_one_winner() {
        let (_dir, store) = fresh().await;
        suite::concurrent_leases_have_one_winner(std::sync::Arc::new(store.clone())).await;
        store.close().await;
    }

    #[tokio::test]
    async fn schema_version_is_none_before_migrating() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("tessera.db"))
            .await
            .unwrap();
        assert_eq!(store.schema_version().await.unwrap(), None);
        assert_eq!(store.known_schema_version(), 7);
        store.migrate().await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), Some(7));
        store.close().await;
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.db");
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let seq = suite::persistence_write(&store).await;
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
        let store = SqliteStore::open(&path).await.unwrap();
        store.migrate().await.unwrap();
        let seq = suite::persistence_write(&store).await;
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
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
        let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(foreign_keys, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
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
        let known = known_version();
        match store.migrate().await {
            Err(StoreError::Conflict(message)) => assert_eq!(
                message,
                format!(
                    "database schema version 9999 is newer than this Tessera knows ({known}); \
                     upgrade Tessera"
                )
            ),
            other => panic!("expected the newer-schema conflict, got {other:?}"),
        }
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
        let found = store.find(EntityKind::Binding, "AccessBinding-x").await;
        assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");

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
        let found = store.find(EntityKind::ApiKey, "ApiKey-short").await;
        assert!(matches!(found, Err(StoreError::Corrupt(_))), "{found:?}");
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
