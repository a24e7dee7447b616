-- Kontor core schema (SQLite). Times are microseconds since the Unix epoch, UTC.

-- Current state of every record of every entity. `data` holds the entity fields as JSON.
CREATE TABLE records (
    entity        TEXT    NOT NULL,
    id            TEXT    NOT NULL,
    owner_id      TEXT,
    parent_id     TEXT,            -- value of the record's cascading reference
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_batch TEXT,            -- set while in the recycle bin
    deleted_at    INTEGER,
    deleted_by    TEXT,
    search        TEXT    NOT NULL DEFAULT '',
    data          TEXT    NOT NULL,
    PRIMARY KEY (entity, id)
);
CREATE INDEX records_owner ON records (entity, owner_id, id);
CREATE INDEX records_parent ON records (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX records_deleted_batch ON records (deleted_batch) WHERE deleted_batch IS NOT NULL;
CREATE INDEX records_deleted_at ON records (deleted_at, id) WHERE deleted_batch IS NOT NULL;

-- Unique values held by live records (released when a record goes to the bin).
CREATE TABLE uniques (
    entity    TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (entity, key, value)
);
CREATE INDEX uniques_record ON uniques (record_id);

-- The journal: one row per changed record, append-only, gap-free seq.
CREATE TABLE journal (
    seq       INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    origin    TEXT    NOT NULL,
    batch     TEXT    NOT NULL,
    entity    TEXT    NOT NULL,
    record_id TEXT    NOT NULL,
    op        TEXT    NOT NULL,
    owner_id  TEXT,
    before    TEXT,
    after     TEXT,
    scrubbed  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX journal_record ON journal (entity, record_id, seq);
CREATE INDEX journal_batch ON journal (batch);
CREATE INDEX journal_actor ON journal (actor, seq);
CREATE INDEX journal_at ON journal (at);

-- The journal's head (last seq and time) is not stored: one process writes this file, keeps the
-- head in memory and rebuilds it from MAX(seq), MAX(at) of the journal when it opens the file.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Failed logins per key (e-mail, client address) in the rate-limit window, shared by all nodes.
CREATE TABLE login_failures (
    key TEXT   NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);
