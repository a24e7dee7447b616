-- Long work started through the API (snapshots, verification; later imports and exchanges):
-- its state and progress, so whichever node a client asks reports on it, and a restart can tell
-- what it interrupted. Not business data: never journaled, never archived.
CREATE TABLE jobs (
    id          TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL,
    subject     TEXT,
    state       TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    node        TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    phase       TEXT,
    done        BIGINT NOT NULL,
    total       BIGINT,
    result      TEXT,
    error       TEXT
);
CREATE INDEX jobs_by_time ON jobs (created_at);
