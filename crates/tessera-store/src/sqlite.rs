//! The SQLite implementation of [`Store`], Tessera's embedded default.
//!
//! One database file in WAL mode with `synchronous=FULL`, so a write acknowledged to a client
//! survives a power cut. Every mutation runs in a `BEGIN IMMEDIATE` transaction: it takes the
//! write lock up front, so the reference and uniqueness checks it makes cannot be invalidated by
//! a concurrent writer before its own insert, and it never fails with a lock-upgrade deadlock.
//! Since SQLite serializes writers, change-feed sequence numbers become visible in order, which
//! is what lets followers read the feed with a simple `seq > last` cursor.

use crate::{AuditEvent, AuditRecord, ChangeBatch, ListFilter, Result, Store, StoreError};
use async_trait::async_trait;
use sqlx::error::ErrorKind;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool,
    SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use tessera_core::directory::{Change, Entity, EntityKind};
use tessera_core::ids;
use tessera_core::model::{
    AccessBinding, Account, Algorithm, ApiKey, Enterprise, KeyHash, KeyState, KeyUse, OAuthClient,
    Resource, Revocation, Role, ServiceAccount, SigningKeyRecord, SubjectCutoff, SubjectKind, User,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

const DEFAULT_LIST_LIMIT: u32 = 100;
const MAX_LIST_LIMIT: u32 = 1000;
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

    /// Closes every connection, waiting for those in use; lets SQLite checkpoint the WAL so the
    /// file is self-contained after shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
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
        let kind = entity.kind();
        let key = entity.key();
        let mut tx = self.begin_write().await?;
        if mode == WriteMode::Create && exists(&mut tx, kind, key).await? {
            return Err(StoreError::AlreadyExists(describe(kind, key)));
        }
        check_references(&mut tx, entity).await?;
        check_unique_fields(&mut tx, entity).await?;
        let sql = table(kind).insert_sql(mode == WriteMode::Put);
        bind_entity(sqlx::query(&sql), entity)
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, kind, key))?;
        let seq = record_change(&mut tx, kind, key, audit.at).await?;
        record_audit(&mut tx, audit, kind, key, &audit.detail).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(seq)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Create,
    Put,
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> Result<()> {
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        // sqlx would report a newer schema as a "missing" migration; say what it means instead,
        // and say it before touching anything.
        if let Some(applied) = self.applied_schema_version().await? {
            if applied > known {
                return Err(newer_schema(applied, known));
            }
        }
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
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

    async fn put(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64> {
        self.write(entity, audit, WriteMode::Put).await
    }

    async fn delete(&self, kind: EntityKind, key: &str, audit: &AuditEvent) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        if !exists(&mut tx, kind, key).await? {
            return Err(StoreError::NotFound(describe(kind, key)));
        }
        let dependents = dependents_to_delete(&mut tx, kind, key).await?;
        let mut api_keys = 0usize;
        let mut bindings = 0usize;
        // Dependents go first, so a follower applying the feed in order never holds a key or a
        // binding whose owner is already gone.
        for (dep_kind, dep_key) in &dependents {
            delete_row(&mut tx, *dep_kind, dep_key).await?;
            record_change(&mut tx, *dep_kind, dep_key, audit.at).await?;
            match dep_kind {
                EntityKind::ApiKey => api_keys += 1,
                _ => bindings += 1,
            }
        }
        delete_row(&mut tx, kind, key).await?;
        let seq = record_change(&mut tx, kind, key, audit.at).await?;
        let detail = if dependents.is_empty() {
            audit.detail.clone()
        } else {
            let cascade =
                format!("also deleted {api_keys} API key(s) and {bindings} access binding(s)");
            if audit.detail.is_empty() {
                cascade
            } else {
                format!("{}; {cascade}", audit.detail)
            }
        };
        record_audit(&mut tx, audit, kind, key, &detail).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(seq)
    }

    async fn find(&self, kind: EntityKind, key: &str) -> Result<Option<Entity>> {
        let mut conn = self.pool.acquire().await.map_err(db_error)?;
        find_in(&mut conn, kind, key).await
    }

    async fn list(&self, kind: EntityKind, filter: &ListFilter) -> Result<Vec<Entity>> {
        let table = table(kind);
        // Only the fields that apply to the kind; the others are ignored, not matched.
        let applicable: &[(&str, &Option<String>)] = match kind {
            EntityKind::User | EntityKind::ServiceAccount | EntityKind::Client => {
                &[("account_id", &filter.account_id)]
            }
            EntityKind::ApiKey => &[
                ("account_id", &filter.account_id),
                ("owner_iam_id", &filter.owner_iam_id),
            ],
            EntityKind::Binding => &[
                ("subject_iam_id", &filter.subject_iam_id),
                ("resource", &filter.resource),
            ],
            _ => &[],
        };
        let mut conditions: Vec<String> = Vec::new();
        let mut values: Vec<&str> = Vec::new();
        for (column, value) in applicable {
            if let Some(value) = value {
                conditions.push(format!("{column} = ?"));
                values.push(value);
            }
        }
        if let Some(after) = &filter.after {
            conditions.push(format!("{} > ?", table.key));
            values.push(after);
        }
        let mut sql = table.select_sql();
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY {} LIMIT ?", table.key));
        let limit = filter
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .min(MAX_LIST_LIMIT);
        let mut query = sqlx::query(&sql);
        for value in values {
            query = query.bind(value);
        }
        let rows = query
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error)?;
        rows.iter().map(|row| decode(kind, row)).collect()
    }

    async fn load_all(&self, now: i64) -> Result<(Vec<Entity>, i64)> {
        // One read transaction: under WAL it is one snapshot, so `seq` matches the rows exactly.
        let mut tx = self.begin_read().await?;
        let seq = max_seq(&mut tx).await?;
        let mut entities = Vec::new();
        for kind in EntityKind::ALL {
            let table = table(kind);
            let mut sql = table.select_sql();
            if kind == EntityKind::Revocation {
                sql.push_str(" WHERE expires_at >= ?");
            }
            sql.push_str(&format!(" ORDER BY {}", table.key));
            let mut query = sqlx::query(&sql);
            if kind == EntityKind::Revocation {
                query = query.bind(now);
            }
            let rows = query.fetch_all(&mut *tx).await.map_err(db_error)?;
            for row in &rows {
                entities.push(decode(kind, row)?);
            }
        }
        tx.commit().await.map_err(db_error)?;
        Ok((entities, seq))
    }

    async fn changes_since(&self, seq: i64, limit: u32) -> Result<ChangeBatch> {
        let mut tx = self.begin_read().await?;
        let rows =
            sqlx::query("SELECT seq, kind, key FROM changes WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        let mut last_seq = seq;
        let mut changed = Vec::with_capacity(rows.len());
        for row in &rows {
            let row_seq: i64 = column(row, "seq")?;
            let kind_text: String = column(row, "kind")?;
            let kind = EntityKind::parse(&kind_text).ok_or_else(|| {
                StoreError::Corrupt(format!("change {row_seq} has unknown kind {kind_text:?}"))
            })?;
            changed.push((kind, column::<String>(row, "key")?));
            last_seq = last_seq.max(row_seq);
        }
        // Each key once, at the position of its last change: the state we read is its latest.
        let mut seen = HashSet::new();
        let mut latest = Vec::new();
        for (kind, key) in changed.into_iter().rev() {
            if seen.insert((kind, key.clone())) {
                latest.push((kind, key));
            }
        }
        latest.reverse();
        let mut changes = Vec::with_capacity(latest.len());
        for (kind, key) in latest {
            changes.push(match find_in(&mut tx, kind, &key).await? {
                Some(entity) => Change::Upsert(entity),
                None => Change::Delete(kind, key),
            });
        }
        tx.commit().await.map_err(db_error)?;
        Ok(ChangeBatch {
            changes,
            seq: last_seq,
        })
    }

    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        sqlx::query(
            "INSERT INTO server_secrets (name, sealed, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        sqlx::query_scalar("SELECT sealed FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(db_error)
    }

    async fn list_audit(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, target_kind, target_key, request_id, detail \
             FROM audit_events ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    id: column(row, "id")?,
                    event: AuditEvent {
                        at: column(row, "at")?,
                        actor: column(row, "actor")?,
                        action: column(row, "action")?,
                        request_id: column(row, "request_id")?,
                        detail: column(row, "detail")?,
                    },
                    target_kind: column(row, "target_kind")?,
                    target_key: column(row, "target_key")?,
                })
            })
            .collect()
    }

    async fn prune(&self, now: i64, changes_before_seq: i64) -> Result<()> {
        let mut tx = self.begin_write().await?;
        // Old change rows first: the Delete rows written below are newer than any cut-off the
        // caller can have chosen from the feed it has seen, but must survive even a generous one.
        sqlx::query("DELETE FROM changes WHERE seq < ?")
            .bind(changes_before_seq)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let expired: Vec<String> =
            sqlx::query_scalar("SELECT jti FROM revocations WHERE expires_at < ? ORDER BY jti")
                .bind(now)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
        sqlx::query("DELETE FROM revocations WHERE expires_at < ?")
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        // Followers hold revocations in memory; a Delete in the feed lets them forget these too.
        for jti in &expired {
            record_change(&mut tx, EntityKind::Revocation, jti, now).await?;
        }
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
}

fn newer_schema(applied: i64, known: i64) -> StoreError {
    StoreError::Conflict(format!(
        "database schema version {applied} is newer than this Tessera knows ({known}); \
         upgrade Tessera"
    ))
}

/// Where a kind of entity lives. Columns are listed in the order [`bind_entity`] binds them.
struct Table {
    name: &'static str,
    key: &'static str,
    columns: &'static [&'static str],
}

impl Table {
    fn select_sql(&self) -> String {
        format!("SELECT {} FROM {}", self.columns.join(", "), self.name)
    }

    fn insert_sql(&self, replace: bool) -> String {
        let placeholders = vec!["?"; self.columns.len()].join(", ");
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({placeholders})",
            self.name,
            self.columns.join(", ")
        );
        if replace {
            // An update in place rather than SQLite's `INSERT OR REPLACE`, which deletes the old
            // row first and would trip foreign keys that point at it.
            let updates: Vec<String> = self
                .columns
                .iter()
                .filter(|column| **column != self.key)
                .map(|column| format!("{column} = excluded.{column}"))
                .collect();
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO UPDATE SET {}",
                self.key,
                updates.join(", ")
            ));
        }
        sql
    }
}

fn table(kind: EntityKind) -> &'static Table {
    match kind {
        EntityKind::Enterprise => &Table {
            name: "enterprises",
            key: "id",
            columns: &["id", "name", "created_at"],
        },
        EntityKind::Account => &Table {
            name: "accounts",
            key: "id",
            columns: &["id", "name", "enterprise_id", "created_at"],
        },
        EntityKind::User => &Table {
            name: "users",
            key: "id",
            columns: &[
                "id",
                "account_id",
                "name",
                "email",
                "password_hash",
                "federated",
                "created_at",
            ],
        },
        EntityKind::ServiceAccount => &Table {
            name: "service_accounts",
            key: "id",
            columns: &["id", "account_id", "name", "description", "created_at"],
        },
        EntityKind::ApiKey => &Table {
            name: "api_keys",
            key: "id",
            columns: &[
                "id",
                "name",
                "description",
                "owner_iam_id",
                "account_id",
                "key_hash",
                "created_at",
            ],
        },
        EntityKind::Client => &Table {
            name: "clients",
            key: "id",
            columns: &["id", "account_id", "name", "secret_hash", "created_at"],
        },
        EntityKind::Binding => &Table {
            name: "access_bindings",
            key: "id",
            columns: &["id", "subject_iam_id", "role", "resource", "created_at"],
        },
        EntityKind::Revocation => &Table {
            name: "revocations",
            key: "jti",
            columns: &["jti", "expires_at"],
        },
        EntityKind::Cutoff => &Table {
            name: "subject_cutoffs",
            key: "iam_id",
            columns: &["iam_id", "not_before"],
        },
        EntityKind::SigningKey => &Table {
            name: "signing_keys",
            key: "kid",
            columns: &[
                "kid",
                "algorithm",
                "key_use",
                "state",
                "sealed_private_key",
                "created_at",
                "retired_at",
            ],
        },
    }
}

fn bind_entity<'q>(query: Query<'q>, entity: &'q Entity) -> Query<'q> {
    match entity {
        Entity::Enterprise(e) => query.bind(&e.id).bind(&e.name).bind(e.created_at),
        Entity::Account(a) => query
            .bind(&a.id)
            .bind(&a.name)
            .bind(&a.enterprise_id)
            .bind(a.created_at),
        Entity::User(u) => query
            .bind(&u.id)
            .bind(&u.account_id)
            .bind(&u.name)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(i64::from(u.federated))
            .bind(u.created_at),
        Entity::ServiceAccount(s) => query
            .bind(&s.id)
            .bind(&s.account_id)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.created_at),
        Entity::ApiKey(k) => query
            .bind(&k.id)
            .bind(&k.name)
            .bind(&k.description)
            .bind(&k.owner_iam_id)
            .bind(&k.account_id)
            .bind(&k.key_hash.0[..])
            .bind(k.created_at),
        Entity::Client(c) => query
            .bind(&c.id)
            .bind(&c.account_id)
            .bind(&c.name)
            .bind(c.secret_hash.as_ref().map(|h| &h.0[..]))
            .bind(c.created_at),
        Entity::Binding(b) => query
            .bind(&b.id)
            .bind(&b.subject_iam_id)
            .bind(b.role.as_str())
            .bind(b.resource.to_text())
            .bind(b.created_at),
        Entity::Revocation(r) => query.bind(&r.jti).bind(r.expires_at),
        Entity::Cutoff(c) => query.bind(&c.iam_id).bind(c.not_before),
        Entity::SigningKey(k) => query
            .bind(&k.kid)
            .bind(k.algorithm.as_str())
            .bind(k.key_use.as_str())
            .bind(k.state.as_str())
            .bind(&k.sealed_private_key)
            .bind(k.created_at)
            .bind(k.retired_at),
    }
}

fn decode(kind: EntityKind, row: &SqliteRow) -> Result<Entity> {
    Ok(match kind {
        EntityKind::Enterprise => Entity::Enterprise(Enterprise {
            id: column(row, "id")?,
            name: column(row, "name")?,
            created_at: column(row, "created_at")?,
        }),
        EntityKind::Account => Entity::Account(Account {
            id: column(row, "id")?,
            name: column(row, "name")?,
            enterprise_id: column(row, "enterprise_id")?,
            created_at: column(row, "created_at")?,
        }),
        EntityKind::User => Entity::User(User {
            id: column(row, "id")?,
            account_id: column(row, "account_id")?,
            name: column(row, "name")?,
            email: column(row, "email")?,
            password_hash: column(row, "password_hash")?,
            federated: column::<i64>(row, "federated")? != 0,
            created_at: column(row, "created_at")?,
        }),
        EntityKind::ServiceAccount => Entity::ServiceAccount(ServiceAccount {
            id: column(row, "id")?,
            account_id: column(row, "account_id")?,
            name: column(row, "name")?,
            description: column(row, "description")?,
            created_at: column(row, "created_at")?,
        }),
        EntityKind::ApiKey => {
            let id: String = column(row, "id")?;
            let key_hash = key_hash(column(row, "key_hash")?, &id)?;
            Entity::ApiKey(ApiKey {
                name: column(row, "name")?,
                description: column(row, "description")?,
                owner_iam_id: column(row, "owner_iam_id")?,
                account_id: column(row, "account_id")?,
                key_hash,
                created_at: column(row, "created_at")?,
                id,
            })
        }
        EntityKind::Client => {
            let id: String = column(row, "id")?;
            let secret_hash = match column::<Option<Vec<u8>>>(row, "secret_hash")? {
                Some(bytes) => Some(key_hash(bytes, &id)?),
                None => None,
            };
            Entity::Client(OAuthClient {
                account_id: column(row, "account_id")?,
                name: column(row, "name")?,
                secret_hash,
                created_at: column(row, "created_at")?,
                id,
            })
        }
        EntityKind::Binding => {
            let id: String = column(row, "id")?;
            let role: String = column(row, "role")?;
            let resource: String = column(row, "resource")?;
            Entity::Binding(AccessBinding {
                subject_iam_id: column(row, "subject_iam_id")?,
                role: Role::parse(&role).ok_or_else(|| {
                    StoreError::Corrupt(format!("access binding {id} has unknown role {role:?}"))
                })?,
                resource: Resource::parse(&resource).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "access binding {id} has unknown resource {resource:?}"
                    ))
                })?,
                created_at: column(row, "created_at")?,
                id,
            })
        }
        EntityKind::Revocation => Entity::Revocation(Revocation {
            jti: column(row, "jti")?,
            expires_at: column(row, "expires_at")?,
        }),
        EntityKind::Cutoff => Entity::Cutoff(SubjectCutoff {
            iam_id: column(row, "iam_id")?,
            not_before: column(row, "not_before")?,
        }),
        EntityKind::SigningKey => {
            let kid: String = column(row, "kid")?;
            let algorithm: String = column(row, "algorithm")?;
            let key_use: String = column(row, "key_use")?;
            let state: String = column(row, "state")?;
            let corrupt = |field: &str, value: &str| {
                StoreError::Corrupt(format!("signing key {kid} has unknown {field} {value:?}"))
            };
            Entity::SigningKey(SigningKeyRecord {
                algorithm: Algorithm::parse(&algorithm)
                    .ok_or_else(|| corrupt("algorithm", &algorithm))?,
                key_use: KeyUse::parse(&key_use).ok_or_else(|| corrupt("key use", &key_use))?,
                state: KeyState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                sealed_private_key: column(row, "sealed_private_key")?,
                created_at: column(row, "created_at")?,
                retired_at: column(row, "retired_at")?,
                kid,
            })
        }
    })
}

fn column<'r, T>(row: &'r SqliteRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn key_hash(bytes: Vec<u8>, owner: &str) -> Result<KeyHash> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(KeyHash)
        .map_err(|_| {
            StoreError::Corrupt(format!("hash of {owner} is {} bytes, not 32", bytes.len()))
        })
}

/// How errors name an object: "api key ApiKey-…", so that `NotFound`/`AlreadyExists` read well.
fn describe(kind: EntityKind, key: &str) -> String {
    let label = match kind {
        EntityKind::Enterprise => "enterprise",
        EntityKind::Account => "account",
        EntityKind::User => "user",
        EntityKind::ServiceAccount => "service account",
        EntityKind::ApiKey => "api key",
        EntityKind::Client => "client",
        EntityKind::Binding => "access binding",
        EntityKind::Revocation => "revocation",
        EntityKind::Cutoff => "subject cutoff",
        EntityKind::SigningKey => "signing key",
    };
    format!("{label} {key}")
}

fn db_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Database(e.to_string()),
    }
}

/// Constraint violations the explicit checks should already have caught; kept as a backstop so
/// a missed case still surfaces as a store error rather than SQL text.
fn write_error(e: sqlx::Error, kind: EntityKind, key: &str) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.kind() {
            ErrorKind::UniqueViolation => return StoreError::AlreadyExists(describe(kind, key)),
            ErrorKind::ForeignKeyViolation => {
                return StoreError::NotFound(format!(
                    "an object referenced by {}",
                    describe(kind, key)
                ))
            }
            _ => {}
        }
    }
    db_error(e)
}

async fn exists(conn: &mut SqliteConnection, kind: EntityKind, key: &str) -> Result<bool> {
    let table = table(kind);
    let sql = format!("SELECT 1 FROM {} WHERE {} = ?", table.name, table.key);
    let found: Option<i64> = sqlx::query_scalar(&sql)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    Ok(found.is_some())
}

async fn require(conn: &mut SqliteConnection, kind: EntityKind, key: &str) -> Result<()> {
    if exists(conn, kind, key).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(describe(kind, key)))
    }
}

async fn find_in(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    key: &str,
) -> Result<Option<Entity>> {
    let table = table(kind);
    let sql = format!("{} WHERE {} = ?", table.select_sql(), table.key);
    let row = sqlx::query(&sql)
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db_error)?;
    row.map(|row| decode(kind, &row)).transpose()
}

/// The account of the user or service account an `iam_id` names, if it exists.
async fn subject_account(conn: &mut SqliteConnection, iam_id: &str) -> Result<Option<String>> {
    let (sql, id) = match SubjectKind::of_iam_id(iam_id) {
        Some(SubjectKind::User) => ("SELECT account_id FROM users WHERE id = ?", iam_id),
        Some(SubjectKind::ServiceId) => match iam_id.strip_prefix("iam-") {
            Some(id) => ("SELECT account_id FROM service_accounts WHERE id = ?", id),
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(db_error)
}

/// Checks what `entity` points at, so a dangling reference is reported by name rather than as
/// an anonymous foreign-key failure (and references with no foreign key, like an `iam_id`, are
/// checked at all).
async fn check_references(conn: &mut SqliteConnection, entity: &Entity) -> Result<()> {
    match entity {
        Entity::Account(a) => {
            if let Some(enterprise_id) = &a.enterprise_id {
                require(conn, EntityKind::Enterprise, enterprise_id).await?;
            }
        }
        Entity::User(u) => require(conn, EntityKind::Account, &u.account_id).await?,
        Entity::ServiceAccount(s) => require(conn, EntityKind::Account, &s.account_id).await?,
        Entity::ApiKey(k) => {
            require(conn, EntityKind::Account, &k.account_id).await?;
            match subject_account(conn, &k.owner_iam_id).await? {
                None => return Err(StoreError::NotFound(format!("owner {}", k.owner_iam_id))),
                Some(owner_account) if owner_account != k.account_id => {
                    return Err(StoreError::Conflict(format!(
                        "owner {} of api key {} is in account {owner_account}, not {}",
                        k.owner_iam_id, k.id, k.account_id
                    )))
                }
                Some(_) => {}
            }
        }
        Entity::Client(c) => {
            if let Some(account_id) = &c.account_id {
                require(conn, EntityKind::Account, account_id).await?;
            }
        }
        Entity::Binding(b) => {
            if subject_account(conn, &b.subject_iam_id).await?.is_none() {
                return Err(StoreError::NotFound(format!(
                    "subject {}",
                    b.subject_iam_id
                )));
            }
            match &b.resource {
                Resource::Global => {}
                Resource::Account(id) => require(conn, EntityKind::Account, id).await?,
                Resource::ServiceAccount(id) => {
                    require(conn, EntityKind::ServiceAccount, id).await?;
                }
            }
        }
        Entity::Enterprise(_)
        | Entity::Revocation(_)
        | Entity::Cutoff(_)
        | Entity::SigningKey(_) => {}
    }
    Ok(())
}

/// Checks the unique fields besides the key, naming the clash. The object itself (same key) is
/// excluded, so `put` can rewrite a row without colliding with its own old version.
async fn check_unique_fields(conn: &mut SqliteConnection, entity: &Entity) -> Result<()> {
    let clash: Option<(Option<String>, String)> = match entity {
        Entity::User(u) => Some((
            sqlx::query_scalar(
                "SELECT id FROM users WHERE account_id = ? AND email = ? AND id <> ?",
            )
            .bind(&u.account_id)
            .bind(&u.email)
            .bind(&u.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?,
            format!("user with e-mail {} in account {}", u.email, u.account_id),
        )),
        Entity::ApiKey(k) => Some((
            sqlx::query_scalar("SELECT id FROM api_keys WHERE key_hash = ? AND id <> ?")
                .bind(&k.key_hash.0[..])
                .bind(&k.id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(db_error)?,
            // Never echo the hash; the clash itself is the information.
            "api key with the same secret".to_owned(),
        )),
        Entity::Binding(b) => Some((
            sqlx::query_scalar(
                "SELECT id FROM access_bindings \
                 WHERE subject_iam_id = ? AND role = ? AND resource = ? AND id <> ?",
            )
            .bind(&b.subject_iam_id)
            .bind(b.role.as_str())
            .bind(b.resource.to_text())
            .bind(&b.id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?,
            format!(
                "access binding of {} as {} on {}",
                b.subject_iam_id,
                b.role.as_str(),
                b.resource.to_text()
            ),
        )),
        _ => None,
    };
    match clash {
        Some((Some(_), description)) => Err(StoreError::AlreadyExists(description)),
        _ => Ok(()),
    }
}

/// What deleting `kind`/`key` takes along, or the `Conflict` that forbids it.
async fn dependents_to_delete(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    key: &str,
) -> Result<Vec<(EntityKind, String)>> {
    let mut dependents = Vec::new();
    match kind {
        EntityKind::User | EntityKind::ServiceAccount => {
            let (iam_id, as_resource) = if kind == EntityKind::User {
                // Users are not resources; no binding can name one, so match nothing.
                (key.to_owned(), None)
            } else {
                (
                    ids::service_iam_id(key),
                    Some(Resource::ServiceAccount(key.to_owned()).to_text()),
                )
            };
            let keys: Vec<String> =
                sqlx::query_scalar("SELECT id FROM api_keys WHERE owner_iam_id = ? ORDER BY id")
                    .bind(&iam_id)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_error)?;
            dependents.extend(keys.into_iter().map(|id| (EntityKind::ApiKey, id)));
            let bindings: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM access_bindings WHERE subject_iam_id = ? OR resource = ? \
                 ORDER BY id",
            )
            .bind(&iam_id)
            .bind(as_resource)
            .fetch_all(&mut *conn)
            .await
            .map_err(db_error)?;
            dependents.extend(bindings.into_iter().map(|id| (EntityKind::Binding, id)));
        }
        EntityKind::Account => {
            // API keys count too: they always have an owner in the account, but if one ever
            // did not, the foreign key would refuse the delete with a less helpful message.
            let members: i64 = sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM users WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM service_accounts WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM clients WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM api_keys WHERE account_id = ?)",
            )
            .bind(key)
            .bind(key)
            .bind(key)
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(db_error)?;
            if members > 0 {
                return Err(StoreError::Conflict(format!(
                    "account {key} still has users, service accounts or clients; delete them first"
                )));
            }
            let bindings: Vec<String> =
                sqlx::query_scalar("SELECT id FROM access_bindings WHERE resource = ? ORDER BY id")
                    .bind(Resource::Account(key.to_owned()).to_text())
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(db_error)?;
            dependents.extend(bindings.into_iter().map(|id| (EntityKind::Binding, id)));
        }
        EntityKind::Enterprise => {
            let accounts: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE enterprise_id = ?")
                    .bind(key)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(db_error)?;
            if accounts > 0 {
                return Err(StoreError::Conflict(format!(
                    "enterprise {key} still has accounts; delete or move them first"
                )));
            }
        }
        EntityKind::ApiKey
        | EntityKind::Client
        | EntityKind::Binding
        | EntityKind::Revocation
        | EntityKind::Cutoff
        | EntityKind::SigningKey => {}
    }
    Ok(dependents)
}

async fn delete_row(conn: &mut SqliteConnection, kind: EntityKind, key: &str) -> Result<()> {
    let table = table(kind);
    let sql = format!("DELETE FROM {} WHERE {} = ?", table.name, table.key);
    sqlx::query(&sql)
        .bind(key)
        .execute(conn)
        .await
        .map_err(|e| write_error(e, kind, key))?;
    Ok(())
}

async fn record_change(
    conn: &mut SqliteConnection,
    kind: EntityKind,
    key: &str,
    at: i64,
) -> Result<i64> {
    sqlx::query_scalar("INSERT INTO changes (kind, key, at) VALUES (?, ?, ?) RETURNING seq")
        .bind(kind.as_str())
        .bind(key)
        .bind(at)
        .fetch_one(conn)
        .await
        .map_err(db_error)
}

async fn record_audit(
    conn: &mut SqliteConnection,
    audit: &AuditEvent,
    kind: EntityKind,
    key: &str,
    detail: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (at, actor, action, target_kind, target_key, request_id, detail) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(audit.at)
    .bind(&audit.actor)
    .bind(&audit.action)
    .bind(kind.as_str())
    .bind(key)
    .bind(&audit.request_id)
    .bind(detail)
    .execute(conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn max_seq(conn: &mut SqliteConnection) -> Result<i64> {
    let seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM changes")
        .fetch_one(conn)
        .await
        .map_err(db_error)?;
    Ok(seq.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    // Test code: a failed expectation should stop the test loudly.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::suite;
    use tempfile::TempDir;

    async fn fresh() -> (TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("tessera.db"))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        (dir, store)
    }

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
        server_secret_first_writer_wins,
        audit_rows_written,
        list_paginates_and_filters,
        prune_removes_expired_and_old_changes,
        migrate_twice_is_a_no_op,
        ping_answers,
    );

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
        let known = MIGRATOR.iter().map(|m| m.version).max().unwrap();
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
