-- Tessera's initial schema, PostgreSQL edition.
--
-- The same tables, columns, constraints and indexes as migrations/sqlite/0001_initial.sql, in
-- PostgreSQL types: BYTEA for hashes and sealed data, BOOLEAN for flags, identity columns for the
-- change feed and the audit log (never reused, like SQLite's AUTOINCREMENT). Key columns use the
-- "C" collation so that ordering and keyset pagination (`key > $n ORDER BY key`) are plain
-- byte order, exactly as in SQLite, whatever the database's default collation is.

CREATE TABLE enterprises (
    id          TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    name        TEXT              NOT NULL,
    created_at  BIGINT            NOT NULL
);

CREATE TABLE accounts (
    id             TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    name           TEXT              NOT NULL,
    enterprise_id  TEXT              REFERENCES enterprises (id),
    created_at     BIGINT            NOT NULL
);
CREATE INDEX accounts_enterprise_id ON accounts (enterprise_id);

CREATE TABLE users (
    id             TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    account_id     TEXT              NOT NULL REFERENCES accounts (id),
    name           TEXT              NOT NULL,
    email          TEXT              NOT NULL,
    password_hash  TEXT,
    federated      BOOLEAN           NOT NULL,
    created_at     BIGINT            NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE service_accounts (
    id           TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    account_id   TEXT              NOT NULL REFERENCES accounts (id),
    name         TEXT              NOT NULL,
    description  TEXT              NOT NULL,
    created_at   BIGINT            NOT NULL
);
CREATE INDEX service_accounts_account_id ON service_accounts (account_id);

CREATE TABLE api_keys (
    id            TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    name          TEXT              NOT NULL,
    description   TEXT              NOT NULL,
    owner_iam_id  TEXT              NOT NULL,
    account_id    TEXT              NOT NULL REFERENCES accounts (id),
    key_hash      BYTEA             NOT NULL UNIQUE,
    created_at    BIGINT            NOT NULL
);
CREATE INDEX api_keys_owner_iam_id ON api_keys (owner_iam_id);
CREATE INDEX api_keys_account_id ON api_keys (account_id);

CREATE TABLE clients (
    id           TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    account_id   TEXT              REFERENCES accounts (id),
    name         TEXT              NOT NULL,
    secret_hash  BYTEA,
    created_at   BIGINT            NOT NULL
);
CREATE INDEX clients_account_id ON clients (account_id);

CREATE TABLE access_bindings (
    id              TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    subject_iam_id  TEXT              NOT NULL,
    role            TEXT              NOT NULL,
    resource        TEXT              NOT NULL,
    created_at      BIGINT            NOT NULL,
    UNIQUE (subject_iam_id, role, resource)
);
-- Lookups by subject use the unique index above (subject_iam_id is its first column).
CREATE INDEX access_bindings_resource ON access_bindings (resource);

CREATE TABLE revocations (
    jti         TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    expires_at  BIGINT            NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE subject_cutoffs (
    iam_id      TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    not_before  BIGINT            NOT NULL
);

CREATE TABLE signing_keys (
    kid                 TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    algorithm           TEXT              NOT NULL,
    key_use             TEXT              NOT NULL,
    state               TEXT              NOT NULL,
    sealed_private_key  BYTEA             NOT NULL,
    created_at          BIGINT            NOT NULL,
    retired_at          BIGINT
);

CREATE TABLE server_secrets (
    name        TEXT COLLATE "C"  NOT NULL PRIMARY KEY,
    sealed      BYTEA             NOT NULL,
    created_at  BIGINT            NOT NULL
);

-- Writers serialize on a transaction-scoped advisory lock (see src/postgres.rs), so identity
-- values are allocated and committed in the same order and `seq > last` never skips a change.
CREATE TABLE changes (
    seq   BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind  TEXT    NOT NULL,
    key   TEXT    NOT NULL,
    at    BIGINT  NOT NULL
);

CREATE TABLE audit_events (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT  NOT NULL,
    actor        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    target_kind  TEXT    NOT NULL,
    target_key   TEXT    NOT NULL,
    request_id   TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
