-- Issue 12 (authorization): OAuth client ids and trusted-issuer URLs are unique per account,
-- not installation-wide, and a TOTP factor's replacement waits beside it until confirmed.
--
-- Clients are keyed by `client_key`: `<account>/<id>` for an account's client, `<id>` for a
-- global one (client ids never contain '/'). SQLite cannot change a primary key or drop a
-- UNIQUE constraint in place, so both tables are rebuilt.

CREATE TABLE clients_v5 (
    client_key   TEXT    NOT NULL PRIMARY KEY,
    id           TEXT    NOT NULL,
    account_id   TEXT    REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    secret_hash  BLOB,
    created_at   BIGINT  NOT NULL
);
INSERT INTO clients_v5 (client_key, id, account_id, name, secret_hash, created_at)
    SELECT CASE WHEN account_id IS NULL THEN id ELSE account_id || '/' || id END,
           id, account_id, name, secret_hash, created_at
    FROM clients;
DROP TABLE clients;
ALTER TABLE clients_v5 RENAME TO clients;
CREATE INDEX clients_account_id ON clients (account_id);
CREATE INDEX clients_id ON clients (id);

CREATE TABLE trusted_issuers_v5 (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    issuer_url   TEXT    NOT NULL,
    document     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (account_id, issuer_url)
);
INSERT INTO trusted_issuers_v5 (id, account_id, name, issuer_url, document, created_at)
    SELECT id, account_id, name, issuer_url, document, created_at FROM trusted_issuers;
DROP TABLE trusted_issuers;
ALTER TABLE trusted_issuers_v5 RENAME TO trusted_issuers;
CREATE INDEX trusted_issuers_issuer_url ON trusted_issuers (issuer_url);

ALTER TABLE totp_enrollments ADD COLUMN pending_secret BLOB;
