//! The PostgreSQL implementation of [`Store`], for installations of several nodes sharing one
//! database.
//!
//! The statements are those of the SQLite store (see [`crate::engine`]), so the semantics are the
//! same; what differs is how transactions keep them correct under real concurrency:
//!
//! - **Writers are serialized.** Every mutation first takes a transaction-scoped advisory lock
//!   ([`WRITE_LOCK`]). Besides making the reference and uniqueness checks race-free, this is what
//!   keeps the change feed readable with a `seq > last` cursor: without it, two transactions
//!   could draw sequence values 5 and 6 and commit 6 first, and a follower reading in between
//!   would move past 5 for good. Under the lock, values are drawn and committed in the same order.
//!   Management writes are rare, so the lock costs nothing that matters.
//! - **Every mutation notifies** the `tessera_changes` channel (payload: the last `seq`) inside
//!   its transaction, so a listener hears of it only once it is committed. Nodes may listen
//!   instead of polling; nobody has to.
//! - **Reads that must be one snapshot** (`load_all`, `changes_since`) run in a read-only
//!   `REPEATABLE READ` transaction.
//! - **Leases** are a single `INSERT ... ON CONFLICT DO UPDATE ... WHERE ... RETURNING`, which
//!   PostgreSQL executes atomically even when several nodes race for a lease that does not exist
//!   yet.
//!
//! The pool holds at most [`MAX_CONNECTIONS`] connections and gives up on acquiring one after
//! [`ACQUIRE_TIMEOUT`], so a dead database fails requests quickly instead of hanging them.
//! sqlx's migrator takes its own advisory lock, so several nodes may run [`Store::migrate`] at
//! once.

use crate::backend::{Backend, Dialect};
use crate::engine::{self, db_error, Conn};
use crate::migrations;
use crate::{Result, StoreError};
use async_trait::async_trait;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult, Postgres,
};
use sqlx::{Connection, Transaction};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

/// Enough for the management API and the change-feed follower of one node; the token path never
/// touches the database.
const MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a connection (or a new node for its first one) before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Key of the transaction-scoped advisory lock that serializes writers: "tessera" in ASCII, plus
/// a version byte. sqlx's migrator derives its own key from the database name, so they differ.
const WRITE_LOCK: i64 = 0x7465_7373_6572_6101;
/// The channel every committed mutation notifies, with the last `seq` it wrote as payload.
const CHANGES_CHANNEL: &str = "tessera_changes";

/// The PostgreSQL store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The schema this store was opened in with [`PostgresStore::connect_with_schema`].
    schema: Option<String>,
}

impl PostgresStore {
    /// Connects to the database at `url` (e.g. `postgres://tessera@db.internal/tessera`), using
    /// its default `search_path`. Does not migrate: call [`Store::migrate`] before use.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let options = parse_url(url)?;
        probe(&options, None).await?;
        Self::with_options(options, None).await
    }

    /// Connects like [`PostgresStore::connect`], but keeps everything in `schema` (created if
    /// missing, and set as the `search_path` of every pooled connection). `schema` must match
    /// `[a-z0-9_]{1,63}` and not start with `pg_`. Lets tests, or several installations, share
    /// one database.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<PostgresStore> {
        validate_schema(schema)?;
        let options = parse_url(url)?;
        probe(&options, Some(schema)).await?;
        let options = options.options([("search_path", schema)]);
        Self::with_options(options, Some(schema.to_owned())).await
    }

    async fn with_options(
        options: PgConnectOptions,
        schema: Option<String>,
    ) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Database(format!("connecting to PostgreSQL: {e}")))?;
        Ok(PostgresStore { pool, schema })
    }

    /// The schema given to [`PostgresStore::connect_with_schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Drops this store's schema and everything in it. For test cleanup; refused (`Conflict`)
    /// for a store opened without a schema of its own.
    pub async fn drop_schema(&self) -> Result<()> {
        let Some(schema) = &self.schema else {
            return Err(StoreError::Conflict(
                "this store was not opened with a schema of its own; nothing to drop".into(),
            ));
        };
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Closes every connection, waiting for those in use.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse_url(url: &str) -> Result<PgConnectOptions> {
    // The URL may hold a password: never repeat it in the error.
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Database(format!("invalid PostgreSQL URL: {e}")))
}

/// Schema names are spliced into SQL (quoted), so only a safe, lower-case subset is accepted.
fn validate_schema(schema: &str) -> Result<()> {
    let valid = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.starts_with("pg_");
    if valid {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "invalid schema name {schema:?}: use 1 to 63 of a-z, 0-9 and _, not starting with pg_"
        )))
    }
}

/// Opens one connection first, within [`ACQUIRE_TIMEOUT`]: reports the real cause (refused,
/// authentication, unknown database) rather than the pool's generic timeout, and creates the
/// schema before any pooled connection resolves its `search_path`.
async fn probe(options: &PgConnectOptions, schema: Option<&str>) -> Result<()> {
    let connect = async {
        let mut conn = PgConnection::connect_with(options).await?;
        if let Some(schema) = schema {
            // Look first: CREATE SCHEMA checks the database-level CREATE privilege even when the
            // schema exists, and a least-privileged role may own its schema without having it.
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                    .bind(schema)
                    .fetch_optional(&mut conn)
                    .await?;
            if exists.is_none() {
                let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                    .execute(&mut conn)
                    .await;
                // Nodes starting together race here: IF NOT EXISTS is not atomic in PostgreSQL,
                // and the loser gets a unique violation on pg_namespace. The schema exists then.
                if let Err(e) = created {
                    let raced = e
                        .as_database_error()
                        .and_then(|d| d.code())
                        .is_some_and(|c| c == "23505" || c == "42P06");
                    if !raced {
                        return Err(e);
                    }
                }
            }
        }
        conn.close().await
    };
    match tokio::time::timeout(ACQUIRE_TIMEOUT, connect).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(StoreError::Database(format!(
            "connecting to PostgreSQL: {e}"
        ))),
        Err(_) => Err(StoreError::Database(format!(
            "connecting to PostgreSQL: no answer within {} s",
            ACQUIRE_TIMEOUT.as_secs()
        ))),
    }
}

#[async_trait]
impl Backend for PostgresStore {
    type Db = Postgres;
    const SYSTEM: &'static str = "postgresql";
    const MIGRATIONS: &'static [migrations::File] = migrations::POSTGRES;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// All writers queue on [`WRITE_LOCK`], so sequence numbers are committed in the order they
    /// are drawn.
    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(WRITE_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        Ok(tx)
    }

    /// Notifies [`CHANGES_CHANNEL`] (delivered only on commit) and commits.
    async fn commit_write(
        mut tx: Transaction<'static, Postgres>,
        last_seq: Option<i64>,
    ) -> Result<()> {
        if let Some(seq) = last_seq {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANGES_CHANNEL)
                .bind(seq.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    async fn begin_read(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(db_error)
    }

    async fn has_migrations_table(&self) -> Result<bool> {
        // Resolved through the search_path, like the migrator's own unqualified table name.
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        // A row comes back only if the statement inserted or updated it, i.e. if `holder` holds
        // the lease now; none means the condition failed: someone else holds it.
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        let sql = format!("{} RETURNING holder", engine::LEASE_UPSERT);
        let args = engine::lease_upsert_args(name, holder, now, until);
        let row = Conn::fetch_optional(&mut *conn, &sql, &args)
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }

    async fn close(&self) {
        PostgresStore::close(self).await
    }
}

/// Rewrites the shared statements' `?` placeholders as PostgreSQL's `$1`, `$2`, ... (outside
/// quoted literals, though the shared statements have none with a `?`).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0u32;
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                next += 1;
                let _ = write!(out, "${next}");
            }
            _ => out.push(c),
        }
    }
    out
}

impl Dialect for Postgres {
    fn placeholders(sql: &str) -> Cow<'_, str> {
        Cow::Owned(numbered(sql))
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Helpers for tests that need a PostgreSQL store: each gets a schema of its own in the database
/// named by `TESSERA_TEST_DATABASE_URL`, dropped afterwards; without the variable they skip.
#[cfg(test)]
pub(crate) mod testing {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::Store as _;
    use std::future::Future;

    pub const URL_VAR: &str = "TESSERA_TEST_DATABASE_URL";

    /// The test database URL, or `None` after printing that `test` is skipped.
    pub fn test_url(test: &str) -> Option<String> {
        match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                println!("skipped {test}: {URL_VAR} is not set, so there is no PostgreSQL to test");
                None
            }
        }
    }

    /// A fresh schema name, `t_` and 32 random hex digits.
    pub fn schema_name() -> String {
        use std::hash::{BuildHasher, RandomState};
        let random = RandomState::new();
        format!(
            "t_{:016x}{:016x}",
            random.hash_one(1u8),
            random.hash_one(std::process::id())
        )
    }

    /// A store in a new schema, migrated unless `migrate` is false; `None` when skipping.
    pub async fn fresh(test: &str, migrate: bool) -> Option<PostgresStore> {
        let url = test_url(test)?;
        let store = PostgresStore::connect_with_schema(&url, &schema_name())
            .await
            .unwrap();
        if migrate {
            store.migrate().await.unwrap();
        }
        Some(store)
    }

    /// Runs `body` on a fresh, migrated store and drops the schema afterwards, even when `body`
    /// panics (the panic is then re-raised).
    pub async fn with_store<F, Fut>(test: &str, body: F)
    where
        F: FnOnce(PostgresStore) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(store) = fresh(test, true).await else {
            return;
        };
        let outcome = tokio::spawn(body(store.clone())).await;
        store.drop_schema().await.unwrap();
        store.close().await;
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test task failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::testing::{fresh, schema_name, test_url, with_store};
    use super::*;
    use crate::{suite, Store as _};
    use std::time::Instant;
    use tessera_core::directory::EntityKind;

    suite::backend_tests!(with_store);

    /// Nodes starting together all create the schema and migrate it; none may fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_first_connections_share_one_schema() {
        let Some(url) = test_url("concurrent_first_connections_share_one_schema") else {
            return;
        };
        let schema = schema_name();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (url, schema) = (url.clone(), schema.clone());
            tasks.push(tokio::spawn(async move {
                let store = PostgresStore::connect_with_schema(&url, &schema).await?;
                store.migrate().await?;
                Ok::<_, StoreError>(store)
            }));
        }
        let mut stores = Vec::new();
        for task in tasks {
            stores.push(
                task.await
                    .unwrap()
                    .expect("every node connects and migrates"),
            );
        }
        stores[0].drop_schema().await.unwrap();
    }

    /// `sslmode=require` in the URL gives an encrypted connection (rustls over aws-lc).
    #[tokio::test]
    async fn tls_connections_are_encrypted() {
        let Some(url) = test_url("tls_connections_are_encrypted") else {
            return;
        };
        let separator = if url.contains('?') { '&' } else { '?' };
        let tls_url = format!("{url}{separator}sslmode=require");
        let store = PostgresStore::connect_with_schema(&tls_url, &schema_name())
            .await
            .unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&store.pool)
                .await
                .unwrap();
        store.drop_schema().await.unwrap();
        assert!(encrypted, "the connection is not encrypted");
    }

    #[tokio::test]
    async fn data_survives_reconnecting() {
        let Some(url) = test_url("data_survives_reconnecting") else {
            return;
        };
        let schema = schema_name();
        let store = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let seq = suite::persistence_write(&store).await;
        store.close().await;

        let reopened = PostgresStore::connect_with_schema(&url, &schema)
            .await
            .unwrap();
        reopened.migrate().await.unwrap();
        suite::persistence_check(&reopened, seq).await;
        reopened.drop_schema().await.unwrap();
        reopened.close().await;
    }

    #[tokio::test]
    async fn schema_version_is_none_before_migrating() {
        let Some(store) = fresh("schema_version_is_none_before_migrating", false).await else {
            return;
        };
        suite::schema_version_is_none_before_migrating(&store).await;
        store.drop_schema().await.unwrap();
        store.close().await;
    }

    #[tokio::test]
    async fn tables_live_in_the_schema_and_connections_are_capped() {
        with_store(
            "tables_live_in_the_schema_and_connections_are_capped",
            |store| async move {
                let schema = store.schema().unwrap().to_owned();
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = $1 ORDER BY table_name",
                )
                .bind(&schema)
                .fetch_all(&store.pool)
                .await
                .unwrap();
                for table in ["_sqlx_migrations", "accounts", "changes", "leases"] {
                    assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
                }
                let current: String = sqlx::query_scalar("SELECT current_schema()::text")
                    .fetch_one(&store.pool)
                    .await
                    .unwrap();
                assert_eq!(current, schema);
                assert_eq!(store.pool.options().get_max_connections(), MAX_CONNECTIONS);
                assert_eq!(store.pool.options().get_acquire_timeout(), ACQUIRE_TIMEOUT);
            },
        )
        .await;
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        with_store("newer_schema_is_refused", |store| async move {
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (9999, 'from the future', TRUE, '\\x00'::bytea, 0)",
            )
            .execute(&store.pool)
            .await
            .unwrap();
            suite::newer_schema_is_refused(&store).await;
        })
        .await;
    }

    #[tokio::test]
    async fn undecodable_rows_are_corrupt() {
        with_store("undecodable_rows_are_corrupt", |store| async move {
            sqlx::query(
                "INSERT INTO access_bindings (id, subject_iam_id, role, resource, created_at) \
                 VALUES ('AccessBinding-x', 'IBMid-1', 'overlord', '*', 0)",
            )
            .execute(&store.pool)
            .await
            .unwrap();
            suite::assert_corrupt(&store, EntityKind::Binding, "AccessBinding-x").await;

            for statement in [
                "INSERT INTO accounts (id, name, created_at) VALUES ('a', 'a', 0)",
                "INSERT INTO service_accounts (id, account_id, name, description, created_at) \
                 VALUES ('ServiceId-1', 'a', 's', '', 0)",
                "INSERT INTO api_keys \
                 (id, name, description, owner_iam_id, account_id, key_hash, created_at) \
                 VALUES ('ApiKey-short', 'k', '', 'iam-ServiceId-1', 'a', '\\x0102'::bytea, 0)",
            ] {
                sqlx::query(statement).execute(&store.pool).await.unwrap();
            }
            suite::assert_corrupt(&store, EntityKind::ApiKey, "ApiKey-short").await;
        })
        .await;
    }

    /// Change rows are numbered in commit order even though PostgreSQL sequences are not
    /// transactional: a writer holding the lock makes the next one wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_queue_on_the_advisory_lock() {
        with_store("writers_queue_on_the_advisory_lock", |store| async move {
            let held = store.begin_write().await.unwrap();
            let other = store.clone();
            let writer = tokio::spawn(async move {
                other
                    .create(&suite::account(suite::ACCOUNT_A, None), &suite::audit("t"))
                    .await
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                !writer.is_finished(),
                "a second writer must wait for the lock"
            );
            held.rollback().await.unwrap();
            assert_eq!(writer.await.unwrap().unwrap(), 1);
        })
        .await;
    }

    #[tokio::test]
    async fn invalid_schema_names_are_refused() {
        for bad in [
            "",
            "Upper",
            "semi;colon",
            "quote\"d",
            "pg_catalog",
            &"x".repeat(64),
        ] {
            let result = PostgresStore::connect_with_schema("postgres://127.0.0.1:1/x", bad).await;
            match result {
                Err(StoreError::Conflict(message)) => {
                    assert!(message.contains("invalid schema name"), "{message}");
                }
                other => panic!("schema {bad:?}: {other:?}"),
            }
        }
        assert!(validate_schema("t_0123abcd").is_ok());
        assert!(validate_schema(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c = '?' AND d > ? LIMIT ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d > $2 LIMIT $3"
        );
    }

    /// No database is listening: connecting fails with a database error, promptly.
    #[tokio::test]
    async fn a_dead_database_fails_fast() {
        let started = Instant::now();
        let result = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test").await;
        assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}");
        assert!(started.elapsed() < ACQUIRE_TIMEOUT + Duration::from_secs(2));
        let bad_url = PostgresStore::connect("postgres://user:hunter2@[::1").await;
        match bad_url {
            Err(StoreError::Database(message)) => assert!(!message.contains("hunter2")),
            other => panic!("{other:?}"),
        }
    }
}
