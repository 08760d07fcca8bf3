-- The account an audit event belongs to (the account whose administrators govern its target;
-- '' for installation-wide events), so that account administrators can read their account's
-- events and every reader can filter by account. Older events stay installation-wide.
ALTER TABLE audit_events ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_account_id ON audit_events (account_id, id);
