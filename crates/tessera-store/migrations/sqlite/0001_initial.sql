-- Tessera's initial schema.
--
-- Kept portable to PostgreSQL, whose migration folder mirrors these table shapes: ids are text,
-- timestamps are unix seconds in BIGINT, hashes and sealed data are BLOB (bytea there), booleans
-- are INTEGER 0/1 (BOOLEAN there). The only SQLite-specific construct is AUTOINCREMENT on the
-- change feed and the audit log, which must never reuse a number (a reused seq would let a
-- follower skip a change).

CREATE TABLE enterprises (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE accounts (
    id             TEXT    NOT NULL PRIMARY KEY,
    name           TEXT    NOT NULL,
    enterprise_id  TEXT    REFERENCES enterprises (id),
    created_at     BIGINT  NOT NULL
);
CREATE INDEX accounts_enterprise_id ON accounts (enterprise_id);

CREATE TABLE users (
    id             TEXT     NOT NULL PRIMARY KEY,
    account_id     TEXT     NOT NULL REFERENCES accounts (id),
    name           TEXT     NOT NULL,
    email          TEXT     NOT NULL,
    password_hash  TEXT,
    federated      INTEGER  NOT NULL,
    created_at     BIGINT   NOT NULL,
    UNIQUE (account_id, email)
);

CREATE TABLE service_accounts (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX service_accounts_account_id ON service_accounts (account_id);

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    owner_iam_id  TEXT    NOT NULL,
    account_id    TEXT    NOT NULL REFERENCES accounts (id),
    key_hash      BLOB    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX api_keys_owner_iam_id ON api_keys (owner_iam_id);
CREATE INDEX api_keys_account_id ON api_keys (account_id);

CREATE TABLE clients (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    secret_hash  BLOB,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX clients_account_id ON clients (account_id);

CREATE TABLE access_bindings (
    id              TEXT    NOT NULL PRIMARY KEY,
    subject_iam_id  TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    resource        TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    UNIQUE (subject_iam_id, role, resource)
);
-- Lookups by subject use the unique index above (subject_iam_id is its first column).
CREATE INDEX access_bindings_resource ON access_bindings (resource);

CREATE TABLE revocations (
    jti         TEXT    NOT NULL PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

CREATE TABLE subject_cutoffs (
    iam_id      TEXT    NOT NULL PRIMARY KEY,
    not_before  BIGINT  NOT NULL
);

CREATE TABLE signing_keys (
    kid                 TEXT    NOT NULL PRIMARY KEY,
    algorithm           TEXT    NOT NULL,
    key_use             TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    sealed_private_key  BLOB    NOT NULL,
    created_at          BIGINT  NOT NULL,
    retired_at          BIGINT
);

CREATE TABLE server_secrets (
    name        TEXT    NOT NULL PRIMARY KEY,
    sealed      BLOB    NOT NULL,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE changes (
    seq   INTEGER  PRIMARY KEY AUTOINCREMENT,
    kind  TEXT     NOT NULL,
    key   TEXT     NOT NULL,
    at    BIGINT   NOT NULL
);

CREATE TABLE audit_events (
    id           INTEGER  PRIMARY KEY AUTOINCREMENT,
    at           BIGINT   NOT NULL,
    actor        TEXT     NOT NULL,
    action       TEXT     NOT NULL,
    target_kind  TEXT     NOT NULL,
    target_key   TEXT     NOT NULL,
    request_id   TEXT     NOT NULL,
    detail       TEXT     NOT NULL
);
