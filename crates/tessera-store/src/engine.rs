//! The SQL both backends share: table layout, encoding and decoding of entities, the reference
//! and uniqueness checks, cascades, the change feed and the audit log.
//!
//! Each backend supplies only what genuinely differs: how a connection runs a statement
//! ([`Conn`], which binds [`Value`]s and hands rows back as [`Fields`]), how a write transaction
//! is opened (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock), and migrations. Statements
//! here are written with `?` placeholders; the PostgreSQL connection numbers them (`$1`, `$2`,
//! ...) before sending. Keeping one copy of the logic is what makes the two backends' semantics
//! identical by construction, and the shared test suite checks it.
//!
//! Every function runs on the connection (or transaction) it is given; opening and committing
//! transactions is the caller's business.

use crate::{AuditEvent, AuditFilter, AuditRecord, ChangeBatch, ListFilter, Result, StoreError};
use async_trait::async_trait;
use sqlx::error::ErrorKind;
use std::borrow::Cow;
use std::collections::HashSet;
use tessera_core::directory::{Change, Entity, EntityKind};
use tessera_core::ids;
use tessera_core::model::{
    AccessBinding, Account, Algorithm, ApiKey, AuthorizationPolicy, AuthorizedKey,
    AuthorizedKeyAlgorithm, ClaimRule, ComputeResourceLink, Enterprise, JwksSource, KeyHash,
    KeyState, KeyUse, MfaRequirement, OAuthClient, OAuthToken, Resource, Revocation, Role,
    ServiceAccount, SigningKeyRecord, SubjectCutoff, SubjectKind, TotpEnrollment, TrustedIdentity,
    TrustedIssuer, TrustedProfile, User,
};

/// The JSON `document` column of a trusted profile.
#[derive(serde::Serialize, serde::Deserialize)]
struct ProfileDocument {
    identities: Vec<TrustedIdentity>,
    links: Vec<ComputeResourceLink>,
    rules: Vec<ClaimRule>,
}

/// The JSON `document` column of a trusted issuer.
#[derive(serde::Serialize, serde::Deserialize)]
struct IssuerDocument {
    jwks: JwksSource,
    audiences: Vec<String>,
    cr_type: String,
    crn: String,
    claim_mapping: std::collections::BTreeMap<String, String>,
}

pub(crate) const DEFAULT_LIST_LIMIT: u32 = 100;
pub(crate) const MAX_LIST_LIMIT: u32 = 1000;

/// Takes or renews a lease: inserts it, or overwrites it if it expired or already belongs to the
/// asking holder. Binds name, holder, until, now. A single statement, so the database's own
/// conflict handling makes it a compare-and-swap.
pub(crate) const LEASE_UPSERT: &str = "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
     WHERE leases.until < ? OR leases.holder = excluded.holder";

/// The values [`LEASE_UPSERT`] binds, in its order.
pub(crate) fn lease_upsert_args<'a>(
    name: &'a str,
    holder: &'a str,
    now: i64,
    until: i64,
) -> [Value<'a>; 4] {
    [
        Value::text(name),
        Value::text(holder),
        Value::Int(until),
        Value::Int(now),
    ]
}

/// The highest migration version applied; run it once the migrations table is known to exist.
pub(crate) async fn max_migration_version(conn: &mut dyn Conn) -> Result<Option<i64>> {
    fetch_one(
        conn,
        "SELECT MAX(version) AS version FROM _sqlx_migrations",
        &[],
    )
    .await?
    .opt_int("version")
}

/// A value bound to a statement placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Text(Cow<'a, str>),
    OptText(Option<Cow<'a, str>>),
    Int(i64),
    OptInt(Option<i64>),
    Bytes(&'a [u8]),
    OptBytes(Option<&'a [u8]>),
    /// A boolean: INTEGER 0/1 in SQLite, BOOLEAN in PostgreSQL.
    Flag(bool),
}

impl<'a> Value<'a> {
    pub(crate) fn text(value: &'a str) -> Value<'a> {
        Value::Text(Cow::Borrowed(value))
    }

    fn opt_text(value: Option<&'a str>) -> Value<'a> {
        Value::OptText(value.map(Cow::Borrowed))
    }
}

/// Column access on a fetched row, by column name. Failures are [`StoreError::Corrupt`].
pub(crate) trait Fields: Send + Sync {
    fn text(&self, name: &str) -> Result<String>;
    fn opt_text(&self, name: &str) -> Result<Option<String>>;
    fn int(&self, name: &str) -> Result<i64>;
    fn opt_int(&self, name: &str) -> Result<Option<i64>>;
    fn bytes(&self, name: &str) -> Result<Vec<u8>>;
    fn opt_bytes(&self, name: &str) -> Result<Option<Vec<u8>>>;
    fn flag(&self, name: &str) -> Result<bool>;
}

pub(crate) type Row = Box<dyn Fields>;

/// A database connection (or an open transaction on one) that runs statements written with `?`
/// placeholders. Errors stay `sqlx` errors so that callers can map constraint violations.
#[async_trait]
pub(crate) trait Conn: Send {
    async fn execute(&mut self, sql: &str, args: &[Value<'_>]) -> Result<u64, sqlx::Error>;
    async fn fetch_all(&mut self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Row>, sqlx::Error>;
    async fn fetch_optional(
        &mut self,
        sql: &str,
        args: &[Value<'_>],
    ) -> Result<Option<Row>, sqlx::Error>;
}

async fn fetch_one(conn: &mut dyn Conn, sql: &str, args: &[Value<'_>]) -> Result<Row> {
    conn.fetch_optional(sql, args)
        .await
        .map_err(db_error)?
        .ok_or_else(|| db_error(sqlx::Error::RowNotFound))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    Create,
    Put,
}

impl WriteMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            WriteMode::Create => "create",
            WriteMode::Put => "put",
        }
    }
}

/// The span of one mutation's transaction (begin, statements, commit), exported as a trace
/// when tracing is on; disabled, and so free, otherwise.
pub(crate) fn write_span(
    system: &'static str,
    operation: &'static str,
    kind: EntityKind,
) -> tracing::Span {
    tracing::info_span!(
        target: crate::TRACE_TARGET,
        "store.write",
        otel.kind = "client",
        db.system = system,
        db.operation = operation,
        tessera.kind = kind.as_str(),
    )
}

/// Inserts (`Create`) or upserts (`Put`) `entity`, with its change row and audit event. Returns
/// the change's `seq`.
pub(crate) async fn write(
    conn: &mut dyn Conn,
    entity: &Entity,
    audit: &AuditEvent,
    mode: WriteMode,
) -> Result<i64> {
    let kind = entity.kind();
    let key = entity.key();
    if mode == WriteMode::Create && exists(conn, kind, key).await? {
        return Err(StoreError::AlreadyExists(describe(kind, key)));
    }
    check_references(conn, entity).await?;
    check_unique_fields(conn, entity).await?;
    let sql = table(kind).insert_sql(mode == WriteMode::Put);
    conn.execute(&sql, &entity_values(entity))
        .await
        .map_err(|e| write_error(e, kind, key))?;
    let seq = record_change(conn, kind, key, audit.at).await?;
    record_audit(conn, audit, kind, key, &audit.detail).await?;
    Ok(seq)
}

/// Deletes `kind`/`key` and its dependents, each with a change row, and one audit event that
/// summarizes the cascade. Returns the last change's `seq`.
pub(crate) async fn delete(
    conn: &mut dyn Conn,
    kind: EntityKind,
    key: &str,
    audit: &AuditEvent,
) -> Result<i64> {
    if !exists(conn, kind, key).await? {
        return Err(StoreError::NotFound(describe(kind, key)));
    }
    let dependents = dependents_to_delete(conn, kind, key).await?;
    // Dependents go first, so a follower applying the feed in order never holds a key or a
    // binding whose owner is already gone.
    let mut counts: Vec<(EntityKind, usize)> = Vec::new();
    for (dep_kind, dep_key) in &dependents {
        delete_row(conn, *dep_kind, dep_key).await?;
        record_change(conn, *dep_kind, dep_key, audit.at).await?;
        match counts.iter_mut().find(|(k, _)| k == dep_kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((*dep_kind, 1)),
        }
    }
    delete_row(conn, kind, key).await?;
    let seq = record_change(conn, kind, key, audit.at).await?;
    let detail = if counts.is_empty() {
        audit.detail.clone()
    } else {
        let parts: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{n} {}(s)", cascade_label(*k)))
            .collect();
        let cascade = format!("also deleted {}", parts.join(", "));
        if audit.detail.is_empty() {
            cascade
        } else {
            format!("{}; {cascade}", audit.detail)
        }
    };
    record_audit(conn, audit, kind, key, &detail).await?;
    Ok(seq)
}

pub(crate) async fn find(
    conn: &mut dyn Conn,
    kind: EntityKind,
    key: &str,
) -> Result<Option<Entity>> {
    let table = table(kind);
    let sql = format!("{} WHERE {} = ?", table.select_sql(), table.key);
    let row = conn
        .fetch_optional(&sql, &[Value::text(key)])
        .await
        .map_err(db_error)?;
    row.map(|row| decode(kind, row.as_ref())).transpose()
}

pub(crate) async fn list(
    conn: &mut dyn Conn,
    kind: EntityKind,
    filter: &ListFilter,
) -> Result<Vec<Entity>> {
    let (sql, values) = list_query(kind, filter);
    let rows = conn.fetch_all(&sql, &values).await.map_err(db_error)?;
    rows.iter().map(|row| decode(kind, row.as_ref())).collect()
}

/// The statement of [`list`] and its arguments: the filters that apply to `kind`, the keyset
/// cursor, the order by key and the limit (each filter has an index on (column, key), so a page
/// reads only its rows).
pub(crate) fn list_query<'a>(kind: EntityKind, filter: &'a ListFilter) -> (String, Vec<Value<'a>>) {
    let table = table(kind);
    // Authorized keys name their owner by service account id, not by `iam_id`.
    let owner_service_account = filter
        .owner_iam_id
        .as_deref()
        .map(|iam_id| iam_id.strip_prefix("iam-").unwrap_or(iam_id).to_owned());
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
        EntityKind::AuthorizedKey => &[
            ("account_id", &filter.account_id),
            ("service_account_id", &owner_service_account),
        ],
        EntityKind::OAuthToken => &[
            ("account_id", &filter.account_id),
            ("user_id", &filter.owner_iam_id),
        ],
        EntityKind::Totp | EntityKind::Profile | EntityKind::Issuer => {
            &[("account_id", &filter.account_id)]
        }
        EntityKind::Policy => &[
            ("account_id", &filter.account_id),
            ("source_iam_id", &filter.subject_iam_id),
        ],
        _ => &[],
    };
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Value<'a>> = Vec::new();
    for (column, value) in applicable {
        if let Some(value) = value {
            conditions.push(format!("{column} = ?"));
            values.push(Value::Text(Cow::Owned(value.clone())));
        }
    }
    if let Some(after) = &filter.after {
        conditions.push(format!("{} > ?", table.key));
        values.push(Value::text(after));
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
    values.push(Value::Int(i64::from(limit)));
    (sql, values)
}

/// Everything current and the feed position it reflects; run it in one snapshot.
/// Rows read per statement while loading everything: a start-up at a million API keys holds one
/// page of rows at a time, not every row of the table.
#[cfg(not(test))]
const LOAD_PAGE: i64 = 10_000;
/// Three rows a page in this crate's tests, so that every suite test that loads pages.
#[cfg(test)]
const LOAD_PAGE: i64 = 3;

/// Everything, kind by kind and page by page in key order, handed to `sink` one object at a
/// time; returns the feed position it reflects. Run it in one snapshot.
pub(crate) async fn load_each(
    conn: &mut dyn Conn,
    now: i64,
    sink: &mut (dyn FnMut(Entity) + Send),
) -> Result<i64> {
    let seq = max_seq(conn).await?;
    for kind in EntityKind::ALL {
        let table = table(kind);
        let mut after: Option<String> = None;
        loop {
            let mut conditions = Vec::new();
            let mut args = Vec::new();
            if kind == EntityKind::Revocation {
                conditions.push("expires_at >= ?".to_owned());
                args.push(Value::Int(now));
            }
            if let Some(last) = &after {
                conditions.push(format!("{} > ?", table.key));
                args.push(Value::text(last));
            }
            let mut sql = table.select_sql();
            if !conditions.is_empty() {
                sql.push_str(" WHERE ");
                sql.push_str(&conditions.join(" AND "));
            }
            sql.push_str(&format!(" ORDER BY {} LIMIT ?", table.key));
            args.push(Value::Int(LOAD_PAGE));
            let rows = conn.fetch_all(&sql, &args).await.map_err(db_error)?;
            let full_page = rows.len() as i64 == LOAD_PAGE;
            let mut last = None;
            for row in &rows {
                let entity = decode(kind, row.as_ref())?;
                last = Some(entity.key().to_owned());
                sink(entity);
            }
            drop(args);
            match last {
                Some(last) if full_page => after = Some(last),
                _ => break,
            }
        }
    }
    Ok(seq)
}

/// Changes after `seq`; run it in one snapshot.
pub(crate) async fn changes_since(
    conn: &mut dyn Conn,
    seq: i64,
    limit: u32,
) -> Result<ChangeBatch> {
    let rows = conn
        .fetch_all(
            "SELECT seq, kind, key, at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
            &[Value::Int(seq), Value::Int(i64::from(limit))],
        )
        .await
        .map_err(db_error)?;
    let mut last_seq = seq;
    let mut oldest_at: Option<i64> = None;
    let mut changed = Vec::with_capacity(rows.len());
    for row in &rows {
        let row_seq = row.int("seq")?;
        let at = row.int("at")?;
        oldest_at = Some(oldest_at.map_or(at, |oldest| oldest.min(at)));
        let kind_text = row.text("kind")?;
        let kind = EntityKind::parse(&kind_text).ok_or_else(|| {
            StoreError::Corrupt(format!("change {row_seq} has unknown kind {kind_text:?}"))
        })?;
        changed.push((kind, row.text("key")?));
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
        changes.push(match find(conn, kind, &key).await? {
            Some(entity) => Change::Upsert(entity),
            None => Change::Delete(kind, key),
        });
    }
    Ok(ChangeBatch {
        changes,
        seq: last_seq,
        oldest_at,
    })
}

/// The store's one wall-clock read: when a server secret was first stored (a record's
/// timestamp, never a rule; callers pass `now` everywhere else).
#[allow(clippy::disallowed_methods)] // The store's one clock; see clippy.toml.
pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The sealed secret `name`, created from `candidate` if absent (first writer wins).
pub(crate) async fn server_secret(
    conn: &mut dyn Conn,
    name: &str,
    candidate: &[u8],
    now: i64,
) -> Result<Vec<u8>> {
    conn.execute(
        "INSERT INTO server_secrets (name, sealed, created_at) VALUES (?, ?, ?) \
         ON CONFLICT (name) DO NOTHING",
        &[Value::text(name), Value::Bytes(candidate), Value::Int(now)],
    )
    .await
    .map_err(db_error)?;
    fetch_one(
        conn,
        "SELECT sealed FROM server_secrets WHERE name = ?",
        &[Value::text(name)],
    )
    .await?
    .bytes("sealed")
}

pub(crate) async fn list_server_secrets(conn: &mut dyn Conn) -> Result<Vec<(String, Vec<u8>)>> {
    let rows = conn
        .fetch_all("SELECT name, sealed FROM server_secrets ORDER BY name", &[])
        .await
        .map_err(db_error)?;
    rows.iter()
        .map(|row| Ok((row.text("name")?, row.bytes("sealed")?)))
        .collect()
}

pub(crate) async fn list_audit(
    conn: &mut dyn Conn,
    filter: &AuditFilter,
) -> Result<Vec<AuditRecord>> {
    let mut conditions: Vec<&str> = Vec::new();
    let mut args: Vec<Value<'_>> = Vec::new();
    if let Some(account) = &filter.account_id {
        conditions.push("account_id = ?");
        args.push(Value::text(account));
    }
    if let Some(actor) = &filter.actor {
        conditions.push("actor = ?");
        args.push(Value::text(actor));
    }
    match &filter.action {
        // A prefix without LIKE, whose `_` and `%` action names would have to escape.
        Some(prefix) if prefix.ends_with('.') => {
            conditions.push("substr(action, 1, CAST(? AS INTEGER)) = ?");
            args.push(Value::Int(prefix.chars().count() as i64));
            args.push(Value::text(prefix));
        }
        Some(action) => {
            conditions.push("action = ?");
            args.push(Value::text(action));
        }
        None => {}
    }
    if let Some(since) = filter.since {
        conditions.push("at >= ?");
        args.push(Value::Int(since));
    }
    if let Some(until) = filter.until {
        conditions.push("at < ?");
        args.push(Value::Int(until));
    }
    if let Some(before) = filter.before_id {
        conditions.push("id < ?");
        args.push(Value::Int(before));
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {} ", conditions.join(" AND "))
    };
    args.push(Value::Int(i64::from(filter.limit)));
    let sql = format!(
        "SELECT id, at, actor, action, target_kind, target_key, request_id, detail, account_id \
         FROM audit_events {filter_sql}ORDER BY id DESC LIMIT ?"
    );
    let rows = conn.fetch_all(&sql, &args).await.map_err(db_error)?;
    rows.iter()
        .map(|row| {
            Ok(AuditRecord {
                id: row.int("id")?,
                event: AuditEvent {
                    at: row.int("at")?,
                    actor: row.text("actor")?,
                    action: row.text("action")?,
                    request_id: row.text("request_id")?,
                    detail: row.text("detail")?,
                    account_id: Some(row.text("account_id")?).filter(|a| !a.is_empty()),
                },
                target_kind: row.text("target_kind")?,
                target_key: row.text("target_key")?,
            })
        })
        .collect()
}

/// Drops old change rows and expired revocations (writing a Delete change for each of the
/// latter). Returns the `seq` of the last change row written, if it wrote any; run it in a write
/// transaction.
pub(crate) async fn prune(
    conn: &mut dyn Conn,
    now: i64,
    changes_before_seq: i64,
) -> Result<Option<i64>> {
    // Old change rows first: the Delete rows written below are newer than any cut-off the
    // caller can have chosen from the feed it has seen, but must survive even a generous one.
    conn.execute(
        "DELETE FROM changes WHERE seq < ?",
        &[Value::Int(changes_before_seq)],
    )
    .await
    .map_err(db_error)?;
    let expired = conn
        .fetch_all(
            "SELECT jti FROM revocations WHERE expires_at < ? ORDER BY jti",
            &[Value::Int(now)],
        )
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| row.text("jti"))
        .collect::<Result<Vec<String>>>()?;
    conn.execute(
        "DELETE FROM revocations WHERE expires_at < ?",
        &[Value::Int(now)],
    )
    .await
    .map_err(db_error)?;
    // Followers hold revocations in memory; a Delete in the feed lets them forget these too.
    let mut last_seq = None;
    for jti in &expired {
        last_seq = Some(record_change(conn, EntityKind::Revocation, jti, now).await?);
    }
    Ok(last_seq)
}

/// The current holder of lease `name`, whether or not it has expired.
pub(crate) async fn lease_holder(conn: &mut dyn Conn, name: &str) -> Result<Option<String>> {
    conn.fetch_optional(
        "SELECT holder FROM leases WHERE name = ?",
        &[Value::text(name)],
    )
    .await
    .map_err(db_error)?
    .map(|row| row.text("holder"))
    .transpose()
}

pub(crate) async fn release_lease(conn: &mut dyn Conn, name: &str, holder: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM leases WHERE name = ? AND holder = ?",
        &[Value::text(name), Value::text(holder)],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub(crate) fn newer_schema(applied: i64, known: i64) -> StoreError {
    StoreError::Conflict(format!(
        "database schema version {applied} is newer than this Tessera knows ({known}); \
         upgrade Tessera"
    ))
}

/// Where a kind of entity lives. Columns are listed in the order [`entity_values`] gives them.
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
            columns: &["id", "name", "enterprise_id", "mfa", "created_at"],
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
            key: "client_key",
            columns: &[
                "client_key",
                "id",
                "account_id",
                "name",
                "secret_hash",
                "created_at",
            ],
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
        EntityKind::AuthorizedKey => &Table {
            name: "authorized_keys",
            key: "id",
            columns: &[
                "id",
                "service_account_id",
                "account_id",
                "description",
                "algorithm",
                "public_key",
                "created_at",
            ],
        },
        EntityKind::OAuthToken => &Table {
            name: "oauth_tokens",
            key: "id",
            columns: &[
                "id",
                "user_id",
                "account_id",
                "description",
                "token_hash",
                "created_at",
            ],
        },
        EntityKind::Totp => &Table {
            name: "totp_enrollments",
            key: "user_id",
            columns: &[
                "user_id",
                "account_id",
                "sealed_secret",
                "confirmed",
                "pending_secret",
                "created_at",
            ],
        },
        EntityKind::Profile => &Table {
            name: "trusted_profiles",
            key: "id",
            columns: &[
                "id",
                "account_id",
                "name",
                "description",
                "document",
                "created_at",
            ],
        },
        EntityKind::Issuer => &Table {
            name: "trusted_issuers",
            key: "id",
            columns: &[
                "id",
                "account_id",
                "name",
                "issuer_url",
                "document",
                "created_at",
            ],
        },
        EntityKind::Policy => &Table {
            name: "authorization_policies",
            key: "id",
            columns: &[
                "id",
                "account_id",
                "source_iam_id",
                "target_crn",
                "description",
                "created_at",
            ],
        },
    }
}

/// The column values of `entity`, in its table's column order.
fn entity_values(entity: &Entity) -> Vec<Value<'_>> {
    match entity {
        Entity::Enterprise(e) => vec![
            Value::text(&e.id),
            Value::text(&e.name),
            Value::Int(e.created_at),
        ],
        Entity::Account(a) => vec![
            Value::text(&a.id),
            Value::text(&a.name),
            Value::opt_text(a.enterprise_id.as_deref()),
            Value::text(a.mfa.as_str()),
            Value::Int(a.created_at),
        ],
        Entity::User(u) => vec![
            Value::text(&u.id),
            Value::text(&u.account_id),
            Value::text(&u.name),
            Value::text(&u.email),
            Value::opt_text(u.password_hash.as_deref()),
            Value::Flag(u.federated),
            Value::Int(u.created_at),
        ],
        Entity::ServiceAccount(s) => vec![
            Value::text(&s.id),
            Value::text(&s.account_id),
            Value::text(&s.name),
            Value::text(&s.description),
            Value::Int(s.created_at),
        ],
        Entity::ApiKey(k) => vec![
            Value::text(&k.id),
            Value::text(&k.name),
            Value::text(&k.description),
            Value::text(&k.owner_iam_id),
            Value::text(&k.account_id),
            Value::Bytes(&k.key_hash.0),
            Value::Int(k.created_at),
        ],
        Entity::Client(c) => vec![
            Value::text(&c.key),
            Value::text(&c.id),
            Value::opt_text(c.account_id.as_deref()),
            Value::text(&c.name),
            Value::OptBytes(c.secret_hash.as_ref().map(|h| &h.0[..])),
            Value::Int(c.created_at),
        ],
        Entity::Binding(b) => vec![
            Value::text(&b.id),
            Value::text(&b.subject_iam_id),
            Value::text(b.role.as_str()),
            Value::Text(Cow::Owned(b.resource.to_text())),
            Value::Int(b.created_at),
        ],
        Entity::Revocation(r) => vec![Value::text(&r.jti), Value::Int(r.expires_at)],
        Entity::Cutoff(c) => vec![Value::text(&c.iam_id), Value::Int(c.not_before)],
        Entity::SigningKey(k) => vec![
            Value::text(&k.kid),
            Value::text(k.algorithm.as_str()),
            Value::text(k.key_use.as_str()),
            Value::text(k.state.as_str()),
            Value::Bytes(&k.sealed_private_key),
            Value::Int(k.created_at),
            Value::OptInt(k.retired_at),
        ],
        Entity::AuthorizedKey(k) => vec![
            Value::text(&k.id),
            Value::text(&k.service_account_id),
            Value::text(&k.account_id),
            Value::text(&k.description),
            Value::text(k.algorithm.as_str()),
            Value::Bytes(&k.public_key_der),
            Value::Int(k.created_at),
        ],
        Entity::OAuthToken(t) => vec![
            Value::text(&t.id),
            Value::text(&t.user_id),
            Value::text(&t.account_id),
            Value::text(&t.description),
            Value::Bytes(&t.token_hash.0),
            Value::Int(t.created_at),
        ],
        Entity::Totp(t) => vec![
            Value::text(&t.user_id),
            Value::text(&t.account_id),
            Value::Bytes(&t.sealed_secret),
            Value::Flag(t.confirmed),
            Value::OptBytes(t.pending_secret.as_deref()),
            Value::Int(t.created_at),
        ],
        Entity::Profile(p) => vec![
            Value::text(&p.id),
            Value::text(&p.account_id),
            Value::text(&p.name),
            Value::text(&p.description),
            Value::Text(Cow::Owned(
                serde_json::to_string(&ProfileDocument {
                    identities: p.identities.clone(),
                    links: p.links.clone(),
                    rules: p.rules.clone(),
                })
                .unwrap_or_default(),
            )),
            Value::Int(p.created_at),
        ],
        Entity::Issuer(i) => vec![
            Value::text(&i.id),
            Value::text(&i.account_id),
            Value::text(&i.name),
            Value::text(&i.issuer_url),
            Value::Text(Cow::Owned(
                serde_json::to_string(&IssuerDocument {
                    jwks: i.jwks.clone(),
                    audiences: i.audiences.clone(),
                    cr_type: i.cr_type.clone(),
                    crn: i.crn.clone(),
                    claim_mapping: i.claim_mapping.clone(),
                })
                .unwrap_or_default(),
            )),
            Value::Int(i.created_at),
        ],
        Entity::Policy(p) => vec![
            Value::text(&p.id),
            Value::text(&p.account_id),
            Value::text(&p.source_iam_id),
            Value::text(&p.target_crn),
            Value::text(&p.description),
            Value::Int(p.created_at),
        ],
    }
}

fn decode(kind: EntityKind, row: &dyn Fields) -> Result<Entity> {
    Ok(match kind {
        EntityKind::Enterprise => Entity::Enterprise(Enterprise {
            id: row.text("id")?,
            name: row.text("name")?,
            created_at: row.int("created_at")?,
        }),
        EntityKind::Account => {
            let id = row.text("id")?;
            let mfa = row.text("mfa")?;
            Entity::Account(Account {
                name: row.text("name")?,
                enterprise_id: row.opt_text("enterprise_id")?,
                mfa: MfaRequirement::parse(&mfa).ok_or_else(|| {
                    StoreError::Corrupt(format!("account {id} has unknown mfa setting {mfa:?}"))
                })?,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::User => Entity::User(User {
            id: row.text("id")?,
            account_id: row.text("account_id")?,
            name: row.text("name")?,
            email: row.text("email")?,
            password_hash: row.opt_text("password_hash")?,
            federated: row.flag("federated")?,
            created_at: row.int("created_at")?,
        }),
        EntityKind::ServiceAccount => Entity::ServiceAccount(ServiceAccount {
            id: row.text("id")?,
            account_id: row.text("account_id")?,
            name: row.text("name")?,
            description: row.text("description")?,
            created_at: row.int("created_at")?,
        }),
        EntityKind::ApiKey => {
            let id = row.text("id")?;
            let key_hash = key_hash(row.bytes("key_hash")?, &id)?;
            Entity::ApiKey(ApiKey {
                name: row.text("name")?,
                description: row.text("description")?,
                owner_iam_id: row.text("owner_iam_id")?,
                account_id: row.text("account_id")?,
                key_hash,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Client => {
            let id = row.text("id")?;
            let secret_hash = match row.opt_bytes("secret_hash")? {
                Some(bytes) => Some(key_hash(bytes, &id)?),
                None => None,
            };
            let account_id = row.opt_text("account_id")?;
            let key = row.text("client_key")?;
            if key != OAuthClient::key_for(account_id.as_deref(), &id) {
                return Err(StoreError::Corrupt(format!(
                    "client {id} is stored under key {key}, which does not match its account"
                )));
            }
            Entity::Client(OAuthClient {
                key,
                account_id,
                name: row.text("name")?,
                secret_hash,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Binding => {
            let id = row.text("id")?;
            let role = row.text("role")?;
            let resource = row.text("resource")?;
            Entity::Binding(AccessBinding {
                subject_iam_id: row.text("subject_iam_id")?,
                role: Role::parse(&role).ok_or_else(|| {
                    StoreError::Corrupt(format!("access binding {id} has unknown role {role:?}"))
                })?,
                resource: Resource::parse(&resource).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "access binding {id} has unknown resource {resource:?}"
                    ))
                })?,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Revocation => Entity::Revocation(Revocation {
            jti: row.text("jti")?,
            expires_at: row.int("expires_at")?,
        }),
        EntityKind::Cutoff => Entity::Cutoff(SubjectCutoff {
            iam_id: row.text("iam_id")?,
            not_before: row.int("not_before")?,
        }),
        EntityKind::SigningKey => {
            let kid = row.text("kid")?;
            let algorithm = row.text("algorithm")?;
            let key_use = row.text("key_use")?;
            let state = row.text("state")?;
            let corrupt = |field: &str, value: &str| {
                StoreError::Corrupt(format!("signing key {kid} has unknown {field} {value:?}"))
            };
            Entity::SigningKey(SigningKeyRecord {
                algorithm: Algorithm::parse(&algorithm)
                    .ok_or_else(|| corrupt("algorithm", &algorithm))?,
                key_use: KeyUse::parse(&key_use).ok_or_else(|| corrupt("key use", &key_use))?,
                state: KeyState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
                sealed_private_key: row.bytes("sealed_private_key")?,
                created_at: row.int("created_at")?,
                retired_at: row.opt_int("retired_at")?,
                kid,
            })
        }
        EntityKind::AuthorizedKey => {
            let id = row.text("id")?;
            let algorithm = row.text("algorithm")?;
            Entity::AuthorizedKey(AuthorizedKey {
                service_account_id: row.text("service_account_id")?,
                account_id: row.text("account_id")?,
                description: row.text("description")?,
                algorithm: AuthorizedKeyAlgorithm::parse(&algorithm).ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "authorized key {id} has unknown algorithm {algorithm:?}"
                    ))
                })?,
                public_key_der: row.bytes("public_key")?,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::OAuthToken => {
            let id = row.text("id")?;
            let token_hash = key_hash(row.bytes("token_hash")?, &id)?;
            Entity::OAuthToken(OAuthToken {
                user_id: row.text("user_id")?,
                account_id: row.text("account_id")?,
                description: row.text("description")?,
                token_hash,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Totp => Entity::Totp(TotpEnrollment {
            user_id: row.text("user_id")?,
            account_id: row.text("account_id")?,
            sealed_secret: row.bytes("sealed_secret")?,
            confirmed: row.flag("confirmed")?,
            pending_secret: row.opt_bytes("pending_secret")?,
            created_at: row.int("created_at")?,
        }),
        EntityKind::Profile => {
            let id = row.text("id")?;
            let document: ProfileDocument =
                serde_json::from_str(&row.text("document")?).map_err(|e| {
                    StoreError::Corrupt(format!("trusted profile {id} has a bad document: {e}"))
                })?;
            Entity::Profile(TrustedProfile {
                account_id: row.text("account_id")?,
                name: row.text("name")?,
                description: row.text("description")?,
                identities: document.identities,
                links: document.links,
                rules: document.rules,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Issuer => {
            let id = row.text("id")?;
            let document: IssuerDocument =
                serde_json::from_str(&row.text("document")?).map_err(|e| {
                    StoreError::Corrupt(format!("trusted issuer {id} has a bad document: {e}"))
                })?;
            Entity::Issuer(TrustedIssuer {
                account_id: row.text("account_id")?,
                name: row.text("name")?,
                issuer_url: row.text("issuer_url")?,
                jwks: document.jwks,
                audiences: document.audiences,
                cr_type: document.cr_type,
                crn: document.crn,
                claim_mapping: document.claim_mapping,
                created_at: row.int("created_at")?,
                id,
            })
        }
        EntityKind::Policy => Entity::Policy(AuthorizationPolicy {
            id: row.text("id")?,
            account_id: row.text("account_id")?,
            source_iam_id: row.text("source_iam_id")?,
            target_crn: row.text("target_crn")?,
            description: row.text("description")?,
            created_at: row.int("created_at")?,
        }),
    })
}

fn key_hash(bytes: Vec<u8>, owner: &str) -> Result<KeyHash> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(KeyHash)
        .map_err(|_| {
            StoreError::Corrupt(format!("hash of {owner} is {} bytes, not 32", bytes.len()))
        })
}

/// How errors name an object: "api key ApiKey-…", so that `NotFound`/`AlreadyExists` read well.
pub(crate) fn describe(kind: EntityKind, key: &str) -> String {
    format!("{} {key}", label(kind))
}

/// How the audit summary of a cascade names a kind: "2 API key(s)".
fn cascade_label(kind: EntityKind) -> &'static str {
    match kind {
        EntityKind::ApiKey => "API key",
        EntityKind::OAuthToken => "OAuth token",
        EntityKind::Totp => "TOTP factor",
        other => label(other),
    }
}

fn label(kind: EntityKind) -> &'static str {
    match kind {
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
        EntityKind::AuthorizedKey => "authorized key",
        EntityKind::OAuthToken => "oauth token",
        EntityKind::Totp => "totp factor of user",
        EntityKind::Profile => "trusted profile",
        EntityKind::Issuer => "trusted issuer",
        EntityKind::Policy => "authorization policy",
    }
}

pub(crate) fn db_error(e: sqlx::Error) -> StoreError {
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

async fn exists(conn: &mut dyn Conn, kind: EntityKind, key: &str) -> Result<bool> {
    let table = table(kind);
    let sql = format!("SELECT 1 FROM {} WHERE {} = ?", table.name, table.key);
    let found = conn
        .fetch_optional(&sql, &[Value::text(key)])
        .await
        .map_err(db_error)?;
    Ok(found.is_some())
}

async fn require(conn: &mut dyn Conn, kind: EntityKind, key: &str) -> Result<()> {
    if exists(conn, kind, key).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound(describe(kind, key)))
    }
}

/// The account of the user or service account an `iam_id` names, if it exists.
async fn subject_account(conn: &mut dyn Conn, iam_id: &str) -> Result<Option<String>> {
    let (sql, id) = match SubjectKind::of_iam_id(iam_id) {
        Some(SubjectKind::User) => ("SELECT account_id FROM users WHERE id = ?", iam_id),
        Some(SubjectKind::ServiceId) => match iam_id.strip_prefix("iam-") {
            Some(id) => ("SELECT account_id FROM service_accounts WHERE id = ?", id),
            None => return Ok(None),
        },
        Some(SubjectKind::Profile) => match iam_id.strip_prefix("iam-") {
            Some(id) => ("SELECT account_id FROM trusted_profiles WHERE id = ?", id),
            None => return Ok(None),
        },
        Some(SubjectKind::Crn) | None => return Ok(None),
    };
    conn.fetch_optional(sql, &[Value::text(id)])
        .await
        .map_err(db_error)?
        .map(|row| row.text("account_id"))
        .transpose()
}

/// Checks that the owner of a credential exists and lives in the credential's account.
async fn check_owner_account(
    conn: &mut dyn Conn,
    owner_iam_id: &str,
    what: &str,
    id: &str,
    account_id: &str,
) -> Result<()> {
    match subject_account(conn, owner_iam_id).await? {
        None => Err(StoreError::NotFound(format!("owner {owner_iam_id}"))),
        Some(owner_account) if owner_account != account_id => Err(StoreError::Conflict(format!(
            "owner {owner_iam_id} of {what} {id} is in account {owner_account}, not {account_id}"
        ))),
        Some(_) => Ok(()),
    }
}

/// Checks what `entity` points at, so a dangling reference is reported by name rather than as
/// an anonymous foreign-key failure (and references with no foreign key, like an `iam_id`, are
/// checked at all).
async fn check_references(conn: &mut dyn Conn, entity: &Entity) -> Result<()> {
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
            check_owner_account(conn, &k.owner_iam_id, "api key", &k.id, &k.account_id).await?;
        }
        Entity::Client(c) => {
            if c.key != OAuthClient::key_for(c.account_id.as_deref(), &c.id) {
                return Err(StoreError::Conflict(format!(
                    "client {} must be keyed {}",
                    c.id,
                    OAuthClient::key_for(c.account_id.as_deref(), &c.id)
                )));
            }
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
        Entity::AuthorizedKey(k) => {
            require(conn, EntityKind::Account, &k.account_id).await?;
            let owner = ids::service_iam_id(&k.service_account_id);
            check_owner_account(conn, &owner, "authorized key", &k.id, &k.account_id).await?;
        }
        Entity::OAuthToken(t) => {
            require(conn, EntityKind::Account, &t.account_id).await?;
            check_owner_account(conn, &t.user_id, "oauth token", &t.id, &t.account_id).await?;
        }
        Entity::Totp(t) => {
            require(conn, EntityKind::Account, &t.account_id).await?;
            check_owner_account(conn, &t.user_id, "totp factor", &t.user_id, &t.account_id).await?;
        }
        Entity::Profile(p) => require(conn, EntityKind::Account, &p.account_id).await?,
        Entity::Issuer(i) => require(conn, EntityKind::Account, &i.account_id).await?,
        Entity::Policy(p) => {
            require(conn, EntityKind::Account, &p.account_id).await?;
            // Resource identities (`crn-…`) exist by policy, not by row; any other source must.
            if SubjectKind::of_iam_id(&p.source_iam_id) != Some(SubjectKind::Crn)
                && subject_account(conn, &p.source_iam_id).await?.is_none()
            {
                return Err(StoreError::NotFound(format!(
                    "source identity {}",
                    p.source_iam_id
                )));
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
async fn check_unique_fields(conn: &mut dyn Conn, entity: &Entity) -> Result<()> {
    let (sql, args, description): (&str, Vec<Value<'_>>, String) = match entity {
        Entity::User(u) => (
            "SELECT id FROM users WHERE account_id = ? AND email = ? AND id <> ?",
            vec![
                Value::text(&u.account_id),
                Value::text(&u.email),
                Value::text(&u.id),
            ],
            format!("user with e-mail {} in account {}", u.email, u.account_id),
        ),
        Entity::ApiKey(k) => (
            "SELECT id FROM api_keys WHERE key_hash = ? AND id <> ?",
            vec![Value::Bytes(&k.key_hash.0), Value::text(&k.id)],
            // Never echo the hash; the clash itself is the information.
            "api key with the same secret".to_owned(),
        ),
        Entity::OAuthToken(t) => (
            "SELECT id FROM oauth_tokens WHERE token_hash = ? AND id <> ?",
            vec![Value::Bytes(&t.token_hash.0), Value::text(&t.id)],
            "oauth token with the same secret".to_owned(),
        ),
        Entity::Profile(p) => (
            "SELECT id FROM trusted_profiles WHERE account_id = ? AND name = ? AND id <> ?",
            vec![
                Value::text(&p.account_id),
                Value::text(&p.name),
                Value::text(&p.id),
            ],
            format!(
                "trusted profile named {} in account {}",
                p.name, p.account_id
            ),
        ),
        Entity::Issuer(i) => (
            "SELECT id FROM trusted_issuers WHERE account_id = ? AND issuer_url = ? AND id <> ?",
            vec![
                Value::text(&i.account_id),
                Value::text(&i.issuer_url),
                Value::text(&i.id),
            ],
            format!(
                "trusted issuer for {} in account {}",
                i.issuer_url, i.account_id
            ),
        ),
        Entity::Policy(p) => (
            "SELECT id FROM authorization_policies \
             WHERE source_iam_id = ? AND target_crn = ? AND id <> ?",
            vec![
                Value::text(&p.source_iam_id),
                Value::text(&p.target_crn),
                Value::text(&p.id),
            ],
            format!(
                "authorization policy from {} to {}",
                p.source_iam_id, p.target_crn
            ),
        ),
        Entity::Binding(b) => (
            "SELECT id FROM access_bindings \
             WHERE subject_iam_id = ? AND role = ? AND resource = ? AND id <> ?",
            vec![
                Value::text(&b.subject_iam_id),
                Value::text(b.role.as_str()),
                Value::Text(Cow::Owned(b.resource.to_text())),
                Value::text(&b.id),
            ],
            format!(
                "access binding of {} as {} on {}",
                b.subject_iam_id,
                b.role.as_str(),
                b.resource.to_text()
            ),
        ),
        _ => return Ok(()),
    };
    let clash = conn.fetch_optional(sql, &args).await.map_err(db_error)?;
    match clash {
        Some(_) => Err(StoreError::AlreadyExists(description)),
        None => Ok(()),
    }
}

/// What deleting `kind`/`key` takes along, or the `Conflict` that forbids it.
async fn dependents_to_delete(
    conn: &mut dyn Conn,
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
            let keys = fetch_ids(
                conn,
                "SELECT id FROM api_keys WHERE owner_iam_id = ? ORDER BY id",
                &[Value::text(&iam_id)],
            )
            .await?;
            dependents.extend(keys.into_iter().map(|id| (EntityKind::ApiKey, id)));
            let (credential_kind, credential_sql) = if kind == EntityKind::User {
                (
                    EntityKind::OAuthToken,
                    "SELECT id FROM oauth_tokens WHERE user_id = ? ORDER BY id",
                )
            } else {
                (
                    EntityKind::AuthorizedKey,
                    "SELECT id FROM authorized_keys WHERE service_account_id = ? ORDER BY id",
                )
            };
            let credentials = fetch_ids(conn, credential_sql, &[Value::text(key)]).await?;
            dependents.extend(credentials.into_iter().map(|id| (credential_kind, id)));
            let bindings = fetch_ids(
                conn,
                "SELECT id FROM access_bindings WHERE subject_iam_id = ? OR resource = ? \
                 ORDER BY id",
                &[
                    Value::text(&iam_id),
                    Value::OptText(as_resource.map(Cow::Owned)),
                ],
            )
            .await?;
            dependents.extend(bindings.into_iter().map(|id| (EntityKind::Binding, id)));
            if kind == EntityKind::User && exists(conn, EntityKind::Totp, key).await? {
                dependents.push((EntityKind::Totp, key.to_owned()));
            }
            policies_from(conn, &iam_id, &mut dependents).await?;
        }
        EntityKind::Profile => {
            let iam_id = format!("iam-{key}");
            let bindings = fetch_ids(
                conn,
                "SELECT id FROM access_bindings WHERE subject_iam_id = ? ORDER BY id",
                &[Value::text(&iam_id)],
            )
            .await?;
            dependents.extend(bindings.into_iter().map(|id| (EntityKind::Binding, id)));
            policies_from(conn, &iam_id, &mut dependents).await?;
        }
        EntityKind::Account => {
            // API keys count too: they always have an owner in the account, but if one ever
            // did not, the foreign key would refuse the delete with a less helpful message.
            let members = fetch_one(
                conn,
                "SELECT (SELECT COUNT(*) FROM users WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM service_accounts WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM clients WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM api_keys WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM authorized_keys WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM oauth_tokens WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM totp_enrollments WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM trusted_profiles WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM trusted_issuers WHERE account_id = ?) \
                      + (SELECT COUNT(*) FROM authorization_policies WHERE account_id = ?) \
                      AS members",
                &[
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                    Value::text(key),
                ],
            )
            .await?
            .int("members")?;
            if members > 0 {
                return Err(StoreError::Conflict(format!(
                    "account {key} still has users, service accounts, clients, trusted profiles, \
                     trusted issuers or authorization policies; delete them first"
                )));
            }
            let bindings = fetch_ids(
                conn,
                "SELECT id FROM access_bindings WHERE resource = ? ORDER BY id",
                &[Value::Text(Cow::Owned(
                    Resource::Account(key.to_owned()).to_text(),
                ))],
            )
            .await?;
            dependents.extend(bindings.into_iter().map(|id| (EntityKind::Binding, id)));
        }
        EntityKind::Enterprise => {
            let accounts = fetch_one(
                conn,
                "SELECT COUNT(*) AS accounts FROM accounts WHERE enterprise_id = ?",
                &[Value::text(key)],
            )
            .await?
            .int("accounts")?;
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
        | EntityKind::SigningKey
        | EntityKind::AuthorizedKey
        | EntityKind::OAuthToken
        | EntityKind::Totp
        | EntityKind::Issuer
        | EntityKind::Policy => {}
    }
    Ok(dependents)
}

/// Adds the authorization policies whose source is `iam_id`: they die with their source.
async fn policies_from(
    conn: &mut dyn Conn,
    iam_id: &str,
    dependents: &mut Vec<(EntityKind, String)>,
) -> Result<()> {
    let policies = fetch_ids(
        conn,
        "SELECT id FROM authorization_policies WHERE source_iam_id = ? ORDER BY id",
        &[Value::text(iam_id)],
    )
    .await?;
    dependents.extend(policies.into_iter().map(|id| (EntityKind::Policy, id)));
    Ok(())
}

/// The `id` column of every row `sql` returns.
async fn fetch_ids(conn: &mut dyn Conn, sql: &str, args: &[Value<'_>]) -> Result<Vec<String>> {
    conn.fetch_all(sql, args)
        .await
        .map_err(db_error)?
        .iter()
        .map(|row| row.text("id"))
        .collect()
}

async fn delete_row(conn: &mut dyn Conn, kind: EntityKind, key: &str) -> Result<()> {
    let table = table(kind);
    let sql = format!("DELETE FROM {} WHERE {} = ?", table.name, table.key);
    conn.execute(&sql, &[Value::text(key)])
        .await
        .map_err(|e| write_error(e, kind, key))?;
    Ok(())
}

async fn record_change(conn: &mut dyn Conn, kind: EntityKind, key: &str, at: i64) -> Result<i64> {
    fetch_one(
        conn,
        "INSERT INTO changes (kind, key, at) VALUES (?, ?, ?) RETURNING seq",
        &[Value::text(kind.as_str()), Value::text(key), Value::Int(at)],
    )
    .await?
    .int("seq")
}

async fn record_audit(
    conn: &mut dyn Conn,
    audit: &AuditEvent,
    kind: EntityKind,
    key: &str,
    detail: &str,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit_events \
         (at, actor, action, target_kind, target_key, request_id, detail, account_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        &[
            Value::Int(audit.at),
            Value::text(&audit.actor),
            Value::text(&audit.action),
            Value::text(kind.as_str()),
            Value::text(key),
            Value::text(&audit.request_id),
            Value::text(detail),
            Value::text(audit.account_id.as_deref().unwrap_or("")),
        ],
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn max_seq(conn: &mut dyn Conn) -> Result<i64> {
    let seq = fetch_one(conn, "SELECT MAX(seq) AS seq FROM changes", &[])
        .await?
        .opt_int("seq")?;
    Ok(seq.unwrap_or(0))
}
