-- Kontor core schema (PostgreSQL). Times are microseconds since the Unix epoch, UTC.
-- Same tables and meaning as the SQLite schema; see migrations/sqlite/0001_core.sql.

CREATE TABLE records (
    entity        TEXT   NOT NULL,
    id            TEXT   NOT NULL,
    owner_id      TEXT,
    parent_id     TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_batch TEXT,
    deleted_at    BIGINT,
    deleted_by    TEXT,
    search        TEXT   NOT NULL DEFAULT '',
    data          JSONB  NOT NULL,
    PRIMARY KEY (entity, id)
);
CREATE INDEX records_owner ON records (entity, owner_id, id);
CREATE INDEX records_parent ON records (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX records_deleted_batch ON records (deleted_batch) WHERE deleted_batch IS NOT NULL;
CREATE INDEX records_deleted_at ON records (deleted_at, id) WHERE deleted_batch IS NOT NULL;

CREATE TABLE uniques (
    entity    TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    record_id TEXT NOT NULL,
    PRIMARY KEY (entity, key, value)
);
CREATE INDEX uniques_record ON uniques (record_id);

CREATE TABLE journal (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    origin    TEXT   NOT NULL,
    batch     TEXT   NOT NULL,
    entity    TEXT   NOT NULL,
    record_id TEXT   NOT NULL,
    op        TEXT   NOT NULL,
    owner_id  TEXT,
    before    TEXT,
    after     TEXT,
    scrubbed  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX journal_record ON journal (entity, record_id, seq);
CREATE INDEX journal_batch ON journal (batch);
CREATE INDEX journal_actor ON journal (actor, seq);
CREATE INDEX journal_at ON journal (at);

-- Every writer locks this row first (SELECT ... FOR UPDATE), on every node.
-- schema_version counts changes to custom field definitions, so nodes can cache them.
CREATE TABLE journal_head (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    seq            BIGINT NOT NULL,
    at             BIGINT NOT NULL,
    schema_version BIGINT NOT NULL DEFAULT 0
);
INSERT INTO journal_head (id, seq, at) VALUES (1, 0, 0);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);

-- Failed logins per key (e-mail, client address) in the rate-limit window, shared by all nodes.
CREATE TABLE login_failures (
    key TEXT   NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX login_failures_key ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);
