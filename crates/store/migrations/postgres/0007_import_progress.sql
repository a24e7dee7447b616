-- Where long work (an import) can resume: written in the same transaction as the chunk of work
-- it follows, so after a crash the work starts again exactly after what was committed. Not
-- business data: never journaled, never archived.
CREATE TABLE job_checkpoints (
    job_id      TEXT    PRIMARY KEY,
    checkpoint  TEXT    NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- The rows an import refused, with the column and the reason: the downloadable error report.
-- Written with the chunk they belong to (a dry run's with no chunk), once per row and column.
CREATE TABLE import_errors (
    job_id  TEXT    NOT NULL,
    row_no  BIGINT NOT NULL,
    col     TEXT    NOT NULL,
    value   TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    PRIMARY KEY (job_id, row_no, col)
);
