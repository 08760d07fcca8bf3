-- Issue 5 (IBM IAM complete): account MFA setting, users' TOTP factors, trusted profiles,
-- trusted issuers of compute-resource tokens, and authorization policies. The nested parts of
-- profiles (trusted identities, links, claim rules) and issuers (JWKS, audiences, claim
-- mapping) are one JSON document each: they are always read and written whole.

ALTER TABLE accounts ADD COLUMN mfa TEXT NOT NULL DEFAULT 'NONE';

CREATE TABLE totp_enrollments (
    user_id        TEXT     NOT NULL PRIMARY KEY REFERENCES users (id),
    account_id     TEXT     NOT NULL REFERENCES accounts (id),
    sealed_secret  BLOB     NOT NULL,
    confirmed      INTEGER  NOT NULL,
    created_at     BIGINT   NOT NULL
);
CREATE INDEX totp_enrollments_account_id ON totp_enrollments (account_id);

CREATE TABLE trusted_profiles (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    document     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE trusted_issuers (
    id           TEXT    NOT NULL PRIMARY KEY,
    account_id   TEXT    NOT NULL REFERENCES accounts (id),
    name         TEXT    NOT NULL,
    issuer_url   TEXT    NOT NULL UNIQUE,
    document     TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX trusted_issuers_account_id ON trusted_issuers (account_id);

CREATE TABLE authorization_policies (
    id             TEXT    NOT NULL PRIMARY KEY,
    account_id     TEXT    NOT NULL REFERENCES accounts (id),
    source_iam_id  TEXT    NOT NULL,
    target_crn     TEXT    NOT NULL,
    description    TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    UNIQUE (source_iam_id, target_crn)
);
CREATE INDEX authorization_policies_account_id ON authorization_policies (account_id);
