//! The [`Store`] methods, written once for both backends: each takes a connection or opens a
//! transaction, runs the [`engine`]'s statements on it and commits.
//!
//! A backend implements [`Backend`], which holds only what genuinely differs between SQLite and
//! PostgreSQL: how a write transaction is opened (`BEGIN IMMEDIATE`; an advisory lock) and
//! committed (PostgreSQL also notifies listeners of the last change), the read snapshot, how the
//! applied schema version is read, the lease compare-and-swap, and closing. Everything else a
//! backend does is the same code, so the two cannot drift apart.

use crate::engine::{self, db_error, newer_schema, Conn, Fields, Row, Value, WriteMode};
use crate::migrations;
use crate::StoreError;
use crate::{AuditEvent, AuditFilter, AuditRecord, ChangeBatch, ListFilter, Result, Store};
use async_trait::async_trait;
use sqlx::migrate::{Migrate, MigrateError};
use sqlx::{
    ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Transaction, Type,
};
use std::borrow::Cow;
use tessera_core::directory::{Entity, EntityKind};
use tracing::Instrument;

/// What a backend supplies to the shared [`Store`] implementation.
#[async_trait]
pub(crate) trait Backend: Send + Sync + 'static {
    /// The sqlx database, whose connections run the engine's statements and the migrations.
    type Db: Database<Connection: Conn + Migrate>;
    /// The `db.system` of the write spans (`sqlite`, `postgresql`).
    const SYSTEM: &'static str;
    /// The embedded migrations of this backend.
    const MIGRATIONS: &'static [migrations::File];

    fn pool(&self) -> &Pool<Self::Db>;

    /// Opens a transaction for a mutation, holding whatever lock serializes writers.
    async fn begin_write(&self) -> Result<Transaction<'static, Self::Db>>;

    /// Commits a write transaction whose last change row has `last_seq` (`None`: it wrote none).
    async fn commit_write(tx: Transaction<'static, Self::Db>, last_seq: Option<i64>) -> Result<()>;

    /// Opens a transaction whose reads are one snapshot.
    async fn begin_read(&self) -> Result<Transaction<'static, Self::Db>>;

    /// Whether sqlx's table of applied migrations exists (it does after the first migration).
    async fn has_migrations_table(&self) -> Result<bool>;

    /// [`Store::try_lease`]: each database reads the outcome of the compare-and-swap its own way.
    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;

    /// [`Store::close`].
    async fn close(&self);
}

/// The highest migration version applied, `None` before the first migration.
async fn applied_schema_version<B: Backend>(store: &B) -> Result<Option<i64>> {
    if !store.has_migrations_table().await? {
        return Ok(None);
    }
    let mut conn = store.pool().acquire().await.map_err(db_error)?;
    engine::max_migration_version(&mut *conn).await
}

fn known_version<B: Backend>() -> i64 {
    migrations::known_version(B::MIGRATIONS)
}

async fn write<B: Backend>(
    store: &B,
    entity: &Entity,
    audit: &AuditEvent,
    mode: WriteMode,
) -> Result<i64> {
    let span = engine::write_span(B::SYSTEM, mode.as_str(), entity.kind());
    async {
        let mut tx = store.begin_write().await?;
        let seq = engine::write(&mut *tx, entity, audit, mode).await?;
        B::commit_write(tx, Some(seq)).await?;
        Ok(seq)
    }
    .instrument(span)
    .await
}

#[async_trait]
impl<B: Backend> Store for B {
    async fn migrate(&self) -> Result<()> {
        let known = known_version::<B>();
        // sqlx would report a newer schema as a "missing" migration; say what it means instead,
        // and say it before touching anything.
        if let Some(applied) = applied_schema_version(self).await? {
            if applied > known {
                return Err(newer_schema(applied, known));
            }
        }
        // On PostgreSQL the migrator holds a session advisory lock while it runs, so concurrent
        // migrations from several nodes apply each migration once.
        let migrator = migrations::migrator(B::MIGRATIONS)
            .await
            .map_err(|e| StoreError::Database(format!("migrations: {e}")))?;
        migrator.run(self.pool()).await.map_err(|e| match e {
            MigrateError::VersionMissing(version) if version > known => {
                newer_schema(version, known)
            }
            other => StoreError::Database(format!("migrating: {other}")),
        })?;
        tracing::debug!(schema_version = known, "{} schema is current", B::SYSTEM);
        Ok(())
    }

    async fn create(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64> {
        write(self, entity, audit, WriteMode::Create).await
    }

    async fn create_all(&self, entities: &[Entity], audit: &AuditEvent) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let mut seq = 0;
        for entity in entities {
            seq = engine::write(&mut *tx, entity, audit, WriteMode::Create).await?;
        }
        B::commit_write(tx, Some(seq)).await?;
        Ok(seq)
    }

    async fn put(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64> {
        write(self, entity, audit, WriteMode::Put).await
    }

    async fn delete(&self, kind: EntityKind, key: &str, audit: &AuditEvent) -> Result<i64> {
        async {
            let mut tx = self.begin_write().await?;
            let seq = engine::delete(&mut *tx, kind, key, audit).await?;
            B::commit_write(tx, Some(seq)).await?;
            Ok(seq)
        }
        .instrument(engine::write_span(B::SYSTEM, "delete", kind))
        .await
    }

    async fn find(&self, kind: EntityKind, key: &str) -> Result<Option<Entity>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::find(&mut *conn, kind, key).await
    }

    async fn list(&self, kind: EntityKind, filter: &ListFilter) -> Result<Vec<Entity>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::list(&mut *conn, kind, filter).await
    }

    async fn load_each(&self, now: i64, sink: &mut (dyn FnMut(Entity) + Send)) -> Result<i64> {
        // One read transaction is one snapshot, so `seq` matches the rows exactly.
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
        // On PostgreSQL, ON CONFLICT DO NOTHING waits for a concurrent first insert to commit;
        // the read that follows (a fresh snapshot under READ COMMITTED) then sees the winner's
        // value.
        let now = engine::unix_now();
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::server_secret(&mut *conn, name, candidate, now).await
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::list_audit(&mut *conn, filter).await
    }

    async fn prune(&self, now: i64, changes_before_seq: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let last_seq = engine::prune(&mut *tx, now, changes_before_seq).await?;
        B::commit_write(tx, last_seq).await
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        Conn::execute(&mut *conn, "SELECT 1", &[])
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool> {
        Backend::try_lease(self, name, holder, now, until).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::release_lease(&mut *conn, name, holder).await
    }

    async fn list_server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let mut conn = self.pool().acquire().await.map_err(db_error)?;
        engine::list_server_secrets(&mut *conn).await
    }

    async fn schema_version(&self) -> Result<Option<i64>> {
        applied_schema_version(self).await
    }

    fn known_schema_version(&self) -> i64 {
        known_version::<B>()
    }

    async fn close(&self) {
        Backend::close(self).await
    }
}

/// The two things sqlx does not offer generically over its databases.
pub(crate) trait Dialect: Database {
    /// The engine's statement with its `?` placeholders as this database spells them: SQLite
    /// takes them as written, PostgreSQL wants them numbered.
    fn placeholders(sql: &str) -> Cow<'_, str>;

    fn rows_affected(done: &Self::QueryResult) -> u64;
}

pub(crate) type Query<'q, DB> = sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>;

/// Binds the engine's values to `query`. A [`Value::Flag`] is bound as a `bool`: SQLite stores it
/// as INTEGER 0/1, PostgreSQL as BOOLEAN.
pub(crate) fn bind_all<'q, DB>(mut query: Query<'q, DB>, args: &'q [Value<'_>]) -> Query<'q, DB>
where
    DB: Database,
    &'q str: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    i64: Encode<'q, DB> + Type<DB>,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    &'q [u8]: Encode<'q, DB> + Type<DB>,
    Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    bool: Encode<'q, DB> + Type<DB>,
{
    for arg in args {
        query = match arg {
            Value::Text(v) => query.bind(&**v),
            Value::OptText(v) => query.bind(v.as_deref()),
            Value::Int(v) => query.bind(*v),
            Value::OptInt(v) => query.bind(*v),
            Value::Bytes(v) => query.bind(*v),
            Value::OptBytes(v) => query.bind(*v),
            Value::Flag(v) => query.bind(*v),
        };
    }
    query
}

#[async_trait]
impl<C, DB> Conn for C
where
    C: sqlx::Connection<Database = DB>,
    DB: Dialect<Row: Fields>,
    for<'c> &'c mut C: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    for<'q> Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    for<'q> bool: Encode<'q, DB> + Type<DB>,
{
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, sqlx::Error> {
        let sql = DB::placeholders(sql);
        let done = bind_all(sqlx::query(&sql), args)
            .execute(&mut *self)
            .await?;
        Ok(DB::rows_affected(&done))
    }

    async fn fetch_all(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, sqlx::Error> {
        let sql = DB::placeholders(sql);
        let rows = bind_all(sqlx::query(&sql), args)
            .fetch_all(&mut *self)
            .await?;
        Ok(rows.into_iter().map(|row| Box::new(row) as Row).collect())
    }

    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<Row>, sqlx::Error> {
        let sql = DB::placeholders(sql);
        let row = bind_all(sqlx::query(&sql), args)
            .fetch_optional(&mut *self)
            .await?;
        Ok(row.map(|row| Box::new(row) as Row))
    }
}

fn column<'r, R, T>(row: &'r R, name: &str) -> Result<T>
where
    R: sqlx::Row,
    for<'n> &'n str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Rows of either database decode the same way; a flag is read as a `bool` (SQLite's INTEGER
/// 0/1 decodes as one).
impl<R> Fields for R
where
    R: sqlx::Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
{
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
        column(self, name)
    }
}
