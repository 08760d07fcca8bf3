//! Tessera's persistence: the [`Store`] trait, its SQLite and PostgreSQL implementations,
//! migrations, the change feed, leases, and export/import of a whole installation.
//!
//! The store persists and indexes; it enforces referential rules (a service account's keys go
//! with it, a non-empty account cannot be deleted) but no authorization or protocol rules, which
//! live above it. Every mutation writes, in the same transaction:
//! - the object itself,
//! - a row in the change feed (`changes`: a monotonically increasing `seq`, the kind and key of
//!   the object), which every node's in-memory snapshot follows with [`Store::changes_since`],
//! - an audit event ([`AuditEvent`]), durably.
//!
//! Backends:
//! - [`SqliteStore`]: the embedded default, one file in WAL mode; writers are serialized by
//!   SQLite itself.
//! - [`PostgresStore`]: for several nodes sharing one database; writers are serialized by an
//!   advisory lock so that the feed's `seq` order is its commit order, and each mutation also
//!   sends `NOTIFY tessera_changes`.
//!
//! Both run the same statements (the private `engine` module) and pass the same test suite, so
//! their behaviour, error mapping included, is the same. Each has its own migration folder
//! (`migrations/sqlite`, `migrations/postgres`) with the same tables and version numbers.
//!
//! Leases ([`Store::try_lease`]) are named, expiring claims taken by a compare-and-swap in the
//! database, so that of several nodes one does a periodic job (key rotation, pruning) at a time.
//!
//! [`transfer`] exports an installation as a versioned JSON document and imports it into an
//! empty store, to move between backends.
//!
//! Types are portable between SQLite and PostgreSQL: ids are text, timestamps are unix seconds
//! in 64-bit integers, hashes and sealed blobs are bytes.

mod backend;
mod engine;
mod migrations;
mod postgres;
mod sqlite;
#[cfg(test)]
pub(crate) mod suite;
pub mod transfer;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use tessera_core::directory::{Change, Entity, EntityKind};

/// The `tracing` target of the spans Tessera exports as OpenTelemetry traces (the request, the
/// grant, the store write). Defined here, the lowest crate that makes such spans; the server's
/// telemetry exports this target and keeps it out of the log.
pub const TRACE_TARGET: &str = "tessera_trace";

/// Errors of the store. Constraint violations are mapped here, never leaked as SQL errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The change would break a rule of the data, e.g. deleting an account that still has users.
    #[error("{0}")]
    Conflict(String),
    /// The database is unreachable or failed; details are for the log only.
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Who changed what, written durably beside each change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: i64,
    /// `iam_id` of the actor, or `system` for bootstrap and background work.
    pub actor: String,
    /// e.g. `service_account.create`, `api_key.delete`, `token.revoke`.
    pub action: String,
    pub request_id: String,
    /// Free text for people; never contains a secret.
    pub detail: String,
    /// The account whose administrators govern the event's target (and so may read the event);
    /// `None` for installation-wide events, which only global administrators read.
    pub account_id: Option<String>,
}

impl AuditEvent {
    /// This event, as one of `account_id`'s (or installation-wide for `None`).
    pub fn in_account(self, account_id: Option<String>) -> AuditEvent {
        AuditEvent { account_id, ..self }
    }
}

/// Which audit events `list_audit` returns, newest first. Unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events of this account only.
    pub account_id: Option<String>,
    /// Events of this actor (`iam_id` or `system`).
    pub actor: Option<String>,
    /// Events of this action (`api_key.delete`), or of every action starting with it when it
    /// ends with `.` (`api_key.`).
    pub action: Option<String>,
    /// Events at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Events before this time (unix seconds).
    pub until: Option<i64>,
    /// Events older than this event id (paging: the last id of the previous page).
    pub before_id: Option<i64>,
    /// At most this many events.
    pub limit: u32,
}

impl AuditFilter {
    /// The newest `limit` events, unfiltered.
    pub fn newest(limit: u32) -> AuditFilter {
        AuditFilter {
            limit,
            ..AuditFilter::default()
        }
    }
}

/// A stored audit event, as listed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: i64,
    pub event: AuditEvent,
    pub target_kind: String,
    pub target_key: String,
}

/// Which objects `list` returns. Unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Objects in this account (users, service accounts, API keys, clients).
    pub account_id: Option<String>,
    /// API keys of this owner; authorized keys of this service account (`iam-ServiceId-…`);
    /// OAuth tokens of this user.
    pub owner_iam_id: Option<String>,
    /// Access bindings of this subject.
    pub subject_iam_id: Option<String>,
    /// Access bindings on this resource (text form: `*`, `account/<id>`, ...).
    pub resource: Option<String>,
    /// Keyset pagination: only objects whose key sorts after this one.
    pub after: Option<String>,
    /// At most this many (the store caps it at 1000).
    pub limit: Option<u32>,
}

/// A batch of the change feed: changes after the requested `seq`, up to `seq` inclusive.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    pub seq: i64,
    /// When the oldest change of the batch was written (unix seconds), if the batch has any:
    /// how far behind the writer a reader is.
    pub oldest_at: Option<i64>,
}

/// The storage interface. Implementations: [`SqliteStore`] (embedded default) and
/// [`PostgresStore`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies pending migrations; refuses a schema newer than this binary knows.
    async fn migrate(&self) -> Result<()>;

    /// Inserts a new object. `AlreadyExists` if its key (or a unique field: API-key hash, user
    /// e-mail within an account, client id) is taken; `NotFound` if a referenced object (account,
    /// enterprise, owner) does not exist. Returns the change's `seq`.
    async fn create(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64>;

    /// Inserts several new objects in one transaction: all of them, or (on any error) none.
    /// Each gets its change row and the audit event, as [`Store::create`] would. Returns the
    /// last change's `seq`.
    async fn create_all(&self, entities: &[Entity], audit: &AuditEvent) -> Result<i64>;

    /// Inserts or replaces an object by key (revocation cut-offs, signing-key state changes).
    async fn put(&self, entity: &Entity, audit: &AuditEvent) -> Result<i64>;

    /// Deletes an object and what depends on it, each with its own change row:
    /// a user or service account takes its API keys and its access bindings (as subject, and on
    /// it as a resource) along; an account or enterprise that still has members is a `Conflict`.
    /// `NotFound` if absent. Returns the last change's `seq`.
    async fn delete(&self, kind: EntityKind, key: &str, audit: &AuditEvent) -> Result<i64>;

    async fn find(&self, kind: EntityKind, key: &str) -> Result<Option<Entity>>;

    /// Objects of `kind` matching `filter`, ordered by key.
    async fn list(&self, kind: EntityKind, filter: &ListFilter) -> Result<Vec<Entity>>;

    /// Everything, for building a snapshot, handed to `sink` one object at a time (kind by
    /// kind, in key order), in one read snapshot; returns the feed position it reflects.
    /// Revocations that expired before `now` are left out.
    async fn load_each(&self, now: i64, sink: &mut (dyn FnMut(Entity) + Send)) -> Result<i64>;

    /// [`Store::load_each`] collected: everything, with the feed position it reflects.
    async fn load_all(&self, now: i64) -> Result<(Vec<Entity>, i64)> {
        let mut entities = Vec::new();
        let seq = self
            .load_each(now, &mut |entity| entities.push(entity))
            .await?;
        Ok((entities, seq))
    }

    /// Changes after `seq`: for each changed key, its current state (`Upsert`) or `Delete`.
    async fn changes_since(&self, seq: i64, limit: u32) -> Result<ChangeBatch>;

    /// Returns the sealed server secret `name`, creating it from `candidate` if absent (the
    /// first writer wins, so concurrent first starts agree on one value).
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> Result<Vec<u8>>;

    /// Recent audit events, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;

    /// Removes revocations and change rows that can no longer matter: revocations expired
    /// before `now`, change rows older than `changes_before_seq`.
    async fn prune(&self, now: i64, changes_before_seq: i64) -> Result<()>;

    /// Cheap liveness check of the database connection.
    async fn ping(&self) -> Result<()>;

    /// Takes or renews the lease `name` for `holder` until `until` (unix seconds), if it is free,
    /// expired (its `until` < `now`) or already held by `holder`; a compare-and-swap in the
    /// database, so of several nodes asking at once exactly one gets it. Returns whether
    /// `holder` holds the lease now.
    async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> Result<bool>;

    /// Gives the lease up early, if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<()>;

    /// Every sealed server secret, by name (for export).
    async fn list_server_secrets(&self) -> Result<Vec<(String, Vec<u8>)>>;

    /// The highest migration version applied to the database, if any.
    async fn schema_version(&self) -> Result<Option<i64>>;

    /// The highest migration version this binary knows.
    fn known_schema_version(&self) -> i64;

    /// Closes the store at shutdown: waits for connections in use, and leaves the database
    /// complete on disk (SQLite folds its write-ahead log into the database file).
    async fn close(&self);
}
