-- Leases: named, time-limited claims that let one node of several do a job at a time (key
-- rotation, pruning). Taken and renewed with a single upsert whose condition is the
-- compare-and-swap; `until` is unix seconds.

CREATE TABLE leases (
    name    TEXT    NOT NULL PRIMARY KEY,
    holder  TEXT    NOT NULL,
    until   BIGINT  NOT NULL
);
