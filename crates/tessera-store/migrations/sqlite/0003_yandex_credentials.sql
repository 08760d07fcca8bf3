-- Credentials of the Yandex surface: authorized keys of service accounts (only the public half)
-- and long-lived OAuth tokens of users (a keyed hash, like API keys).

CREATE TABLE authorized_keys (
    id                  TEXT    NOT NULL PRIMARY KEY,
    service_account_id  TEXT    NOT NULL REFERENCES service_accounts (id),
    account_id          TEXT    NOT NULL REFERENCES accounts (id),
    description         TEXT    NOT NULL,
    algorithm           TEXT    NOT NULL,
    public_key          BLOB    NOT NULL,
    created_at          BIGINT  NOT NULL
);
CREATE INDEX authorized_keys_service_account_id ON authorized_keys (service_account_id);
CREATE INDEX authorized_keys_account_id ON authorized_keys (account_id);

CREATE TABLE oauth_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id),
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    description  TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX oauth_tokens_user_id ON oauth_tokens (user_id);
CREATE INDEX oauth_tokens_account_id ON oauth_tokens (account_id);
