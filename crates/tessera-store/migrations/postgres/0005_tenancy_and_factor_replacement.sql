-- PostgreSQL edition of sqlite/0005_tenancy_and_factor_replacement.sql: OAuth client ids and
-- trusted-issuer URLs unique per account; a TOTP factor's replacement waits beside it.

ALTER TABLE clients ADD COLUMN client_key TEXT COLLATE "C";
UPDATE clients
    SET client_key = CASE WHEN account_id IS NULL THEN id ELSE account_id || '/' || id END;
ALTER TABLE clients ALTER COLUMN client_key SET NOT NULL;
ALTER TABLE clients DROP CONSTRAINT clients_pkey;
ALTER TABLE clients ADD PRIMARY KEY (client_key);
CREATE INDEX clients_id ON clients (id);

ALTER TABLE trusted_issuers DROP CONSTRAINT trusted_issuers_issuer_url_key;
ALTER TABLE trusted_issuers ADD CONSTRAINT trusted_issuers_account_url UNIQUE (account_id, issuer_url);
CREATE INDEX trusted_issuers_issuer_url ON trusted_issuers (issuer_url);

ALTER TABLE totp_enrollments ADD COLUMN pending_secret BYTEA;
