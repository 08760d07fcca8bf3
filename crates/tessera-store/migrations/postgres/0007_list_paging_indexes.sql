-- Keyset paging of the admin lists: `WHERE <filter> = ? AND <key> > ? ORDER BY <key> LIMIT n`.
-- With an index on the filter column alone, every page read all rows matching the filter (all
-- API keys of an account) and sorted them; an index on (filter, key) reads just the page. Each
-- replaces the index on its first column, which it serves as well (cascades, look-ups).
DROP INDEX service_accounts_account_id;
CREATE INDEX service_accounts_account_id_id ON service_accounts (account_id, id);
CREATE INDEX users_account_id_id ON users (account_id, id);
DROP INDEX api_keys_account_id;
CREATE INDEX api_keys_account_id_id ON api_keys (account_id, id);
DROP INDEX api_keys_owner_iam_id;
CREATE INDEX api_keys_owner_iam_id_id ON api_keys (owner_iam_id, id);
DROP INDEX clients_account_id;
CREATE INDEX clients_account_id_key ON clients (account_id, client_key);
DROP INDEX access_bindings_resource;
CREATE INDEX access_bindings_resource_id ON access_bindings (resource, id);
CREATE INDEX access_bindings_subject_iam_id_id ON access_bindings (subject_iam_id, id);
DROP INDEX authorized_keys_account_id;
CREATE INDEX authorized_keys_account_id_id ON authorized_keys (account_id, id);
DROP INDEX authorized_keys_service_account_id;
CREATE INDEX authorized_keys_service_account_id_id ON authorized_keys (service_account_id, id);
DROP INDEX oauth_tokens_account_id;
CREATE INDEX oauth_tokens_account_id_id ON oauth_tokens (account_id, id);
DROP INDEX oauth_tokens_user_id;
CREATE INDEX oauth_tokens_user_id_id ON oauth_tokens (user_id, id);
DROP INDEX totp_enrollments_account_id;
CREATE INDEX totp_enrollments_account_id_key ON totp_enrollments (account_id, user_id);
CREATE INDEX trusted_profiles_account_id_id ON trusted_profiles (account_id, id);
-- Gone on SQLite since 0005 rebuilt the table, still there on PostgreSQL.
DROP INDEX IF EXISTS trusted_issuers_account_id;
CREATE INDEX trusted_issuers_account_id_id ON trusted_issuers (account_id, id);
DROP INDEX authorization_policies_account_id;
CREATE INDEX authorization_policies_account_id_id ON authorization_policies (account_id, id);
CREATE INDEX authorization_policies_source_iam_id_id ON authorization_policies (source_iam_id, id);
