//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`, so a write that was
//! acknowledged survives a crash. One writer connection (writes are serialised, as SQLite does
//! anyway) and a small pool of readers that never block it.

use crate::engine::{db_err, sql_engine, HeadMemo, Memo};
use crate::migrate::{DataStep, Step};
use crate::sql::{Dialect, HEAD_FROM_JOURNAL};
use crate::{StoreError, StoreResult};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection, Row, Sqlite};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

pub(crate) const MIGRATIONS: &[(i64, Step)] = &[
    (
        1,
        Step::Sql(include_str!("../migrations/sqlite/0001_core.sql")),
    ),
    (
        2,
        Step::Sql(include_str!(
            "../migrations/sqlite/0002_limits_credentials.sql"
        )),
    ),
    (3, Step::Data(DataStep::CredentialsOutOfRecords)),
    (4, Step::Data(DataStep::DecimalsAsStrings)),
    (
        5,
        Step::Sql(include_str!("../migrations/sqlite/0005_jobs.sql")),
    ),
    (
        6,
        Step::Sql(include_str!("../migrations/sqlite/0006_list_times.sql")),
    ),
    (
        7,
        Step::Sql(include_str!(
            "../migrations/sqlite/0007_import_progress.sql"
        )),
    ),
    (
        8,
        Step::Sql(include_str!("../migrations/sqlite/0008_read_only.sql")),
    ),
];

/// [`MIGRATIONS`], with the failing step test builds may append
/// (see [`crate::migrate::TEST_FAILING_MIGRATION`]).
pub(crate) fn migrations() -> std::borrow::Cow<'static, [(i64, Step)]> {
    crate::migrate::with_test_step(
        MIGRATIONS,
        "CREATE TABLE upgrade_probe (x BIGINT); INSERT INTO no_such_table VALUES (1);",
        "CREATE TABLE upgrade_probe (x BIGINT); UPDATE records SET data = '[]' WHERE rowid = (SELECT MIN(rowid) FROM records);",
    )
}

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    dialect: Dialect,
    /// This process alone writes the file (the data directory is locked), so the journal head
    /// lives in memory.
    memo: Option<Memo>,
    /// This process's freeze (see [`crate::read_only`]).
    gate: crate::read_only::NodeGate,
    checkpointer: tokio::task::JoinHandle<()>,
    /// The list indexes and the planner's counts of them (see [`crate::list::IndexHints`]).
    list_hints: crate::list::IndexHints,
    /// The migrations this open applied.
    migrated: Vec<crate::AppliedStep>,
}

impl SqliteStore {
    /// The migrations opening this store applied (none when the schema was current).
    pub fn migrated(&self) -> &[crate::AppliedStep] {
        &self.migrated
    }

    /// Reads again which list indexes exist and what the planner counts of them.
    async fn reload_list_hints(&self) -> StoreResult<()> {
        let hints = read_list_hints(&self.writer).await.map_err(db_err)?;
        self.list_hints.set(hints);
        Ok(())
    }
}

/// The list indexes present, each with the planner's rows per key (unknown: a large number).
async fn read_list_hints(pool: &SqlitePool) -> Result<HashMap<String, u64>, sqlx::Error> {
    let has_stat: i64 = sqlx::query(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
    )
    .fetch_one(pool)
    .await?
    .try_get(0)?;
    let sql = if has_stat > 0 {
        "SELECT m.name, s.stat FROM sqlite_master m LEFT JOIN sqlite_stat1 s ON s.idx = m.name \
         WHERE m.type = 'index' AND m.name LIKE 'lf1%'"
    } else {
        "SELECT name, NULL FROM sqlite_master WHERE type = 'index' AND name LIKE 'lf1%'"
    };
    let mut out = HashMap::new();
    for row in sqlx::query(sql).fetch_all(pool).await? {
        let name: String = row.try_get(0)?;
        let stat: Option<String> = row.try_get(1)?;
        let per_key = stat
            .as_deref()
            .and_then(|s| s.split(' ').nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(u64::MAX / 2);
        out.insert(name, per_key);
    }
    Ok(out)
}

/// How often the background checkpointer folds the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How often the checkpointer looks whether the planner's statistics are out of date.
const STATISTICS_CHECK_EVERY: Duration = Duration::from_secs(5);
/// Writes after which statistics gathered on a small table are gathered again.
const STATISTICS_MIN_GROWTH: i64 = 1000;
/// How long a connection waits for a lock another holds before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL frames (pages) above which the checkpointer truncates the WAL: 16,384 pages of 4 KiB.
const WAL_RESTART_FRAMES: i64 = 16_384;
/// How long a truncating checkpoint may hold writers back waiting for readers to finish.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);
/// After a truncation a long read prevented, how long the checkpointer only checkpoints passively.
const TRUNCATE_BACKOFF: Duration = Duration::from_secs(10);

impl SqliteStore {
    /// What the database file at `path` holds (schema, pending migrations, journal head,
    /// size), read through a read-only connection: nothing migrated, nothing locked, a
    /// running server undisturbed.
    pub async fn inspect(path: &Path) -> StoreResult<crate::Inspection> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let migrations = crate::migrate::status::<Sqlite>(&mut conn, &migrations()).await?;
        // SQLite keeps the head in memory; the journal's last entry is it.
        let journal_seq: i64 = if migrations.applied.is_empty() {
            0
        } else {
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM journal")
                .fetch_one(&mut conn)
                .await
                .map_err(db_err)?
        };
        let _ = conn.close().await;
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(crate::Inspection {
            migrations,
            journal_seq,
            bytes: size(path) + size(Path::new(&wal)),
        })
    }

    /// Counts what the database file holds (see [`crate::census`]), read-only, with SQLite's
    /// own integrity check first.
    pub async fn census(path: &Path) -> StoreResult<(crate::Census, crate::Damage)> {
        crate::bulk::sqlite::integrity_check(path).await?;
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let mut conn = sqlx::SqliteConnection::connect_with(&opts)
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let counted = crate::census::take::<Sqlite>(
            &mut conn,
            "CASE WHEN json_valid(data) THEN json_type(data) <> 'object' ELSE 1 END",
        )
        .await;
        let _ = conn.close().await;
        counted
    }

    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory")
            // Checkpoints run in the background (see `checkpoint_loop`), not inside a commit,
            // so no write waits for the database file's fsync.
            .pragma("wal_autocheckpoint", "0");
        let cannot_open = |e: sqlx::Error| {
            StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
        };
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(cannot_open)?;
        let migrated = {
            let mut conn = writer.acquire().await.map_err(db_err)?;
            crate::migrate::run::<Sqlite, _>(&mut conn, &migrations(), "SQLite", |c, step| {
                data_step(c, Dialect::Sqlite, step)
            })
            .await?
        };
        // Statistics for the query planner (which index serves a list best): gathered now if
        // they are missing or describe a table of another size, then kept current.
        let statistics = Statistics::at_open(&writer).await.map_err(db_err)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            // Readers keep a smaller page cache each: there are several of them, and the
            // operating system caches the file for all.
            .connect_with(base.clone().read_only(true).pragma("cache_size", "-8192"))
            .await
            .map_err(cannot_open)?;
        let maintenance = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(base.pragma("cache_size", "-2048"))
            .await
            .map_err(cannot_open)?;
        let head = sqlx::query(HEAD_FROM_JOURNAL)
            .fetch_one(&writer)
            .await
            .map_err(db_err)?;
        let frozen: Option<String> = sqlx::query_scalar(crate::sql::READ_ONLY_STATE)
            .fetch_optional(&writer)
            .await
            .map_err(db_err)?
            .flatten();
        let memo = HeadMemo {
            seq: head.try_get("seq").map_err(db_err)?,
            at: head.try_get("at").map_err(db_err)?,
            schema_version: 0,
            read_only: frozen.as_deref().map(crate::ReadOnly::from_text),
        };
        let list_hints = crate::list::IndexHints::default();
        list_hints.set(read_list_hints(&writer).await.map_err(db_err)?);
        let checkpointer = tokio::spawn(checkpoint_loop(
            maintenance,
            writer.clone(),
            WAL_RESTART_FRAMES,
            statistics,
            list_hints.clone(),
        ));
        Ok(SqliteStore {
            writer,
            readers,
            dialect: Dialect::Sqlite,
            memo: Some(std::sync::Arc::new(tokio::sync::Mutex::new(memo))),
            gate: Default::default(),
            checkpointer,
            list_hints,
            migrated,
        })
    }

    async fn close_engine(&self) {
        self.checkpointer.abort();
        self.readers.close().await;
        // Fold the WAL back into the main file so the database is one self-contained file.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
            .map_err(db_err)
        {
            tracing::warn!(error = %e, "WAL checkpoint at close failed");
        }
        self.writer.close().await;
    }
}

sql_engine!(
    SqliteStore,
    SqliteTx,
    Sqlite,
    SqliteRow,
    SqliteArguments<'static>
);

/// Copies committed WAL pages into the database file without blocking writers (PASSIVE). Under a
/// steady stream of writes a passive checkpoint never catches up with the last frame, so SQLite
/// never starts the WAL over and the file grows without end (a 1M-record seed left a WAL as big
/// as the database). Once the WAL holds more than `restart_frames` frames, the loop takes the
/// writer connection between two transactions and truncates the WAL there: the passive pass has
/// already copied nearly everything, so writers wait only for the rest. If a long read (a
/// snapshot) keeps the truncation from finishing within [`TRUNCATE_WAIT`], the loop checkpoints
/// only passively for [`TRUNCATE_BACKOFF`] before trying again.
async fn checkpoint_loop(
    maintenance: SqlitePool,
    writer: SqlitePool,
    restart_frames: i64,
    mut statistics: Statistics,
    list_hints: crate::list::IndexHints,
) {
    let mut next_truncate = tokio::time::Instant::now();
    let mut next_statistics = tokio::time::Instant::now() + STATISTICS_CHECK_EVERY;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if tokio::time::Instant::now() >= next_statistics {
            next_statistics = tokio::time::Instant::now() + STATISTICS_CHECK_EVERY;
            match statistics.keep_current(&writer).await {
                Ok(false) => {}
                Ok(true) => match read_list_hints(&writer).await {
                    Ok(h) => list_hints.set(h),
                    Err(e) => tracing::warn!(error = %e, "list index counts not read"),
                },
                Err(e) => tracing::warn!(error = %e, "planner statistics not refreshed"),
            }
        }
        let frames = match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&maintenance)
            .await
        {
            Ok(row) => row.try_get::<i64, _>(1).unwrap_or(0),
            Err(e) => {
                tracing::warn!(error = %e, "background WAL checkpoint failed");
                continue;
            }
        };
        if frames < restart_frames || tokio::time::Instant::now() < next_truncate {
            continue;
        }
        match truncate_wal(&writer).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(frames, "WAL not truncated: a long read is running");
                next_truncate = tokio::time::Instant::now() + TRUNCATE_BACKOFF;
            }
            Err(e) => {
                tracing::warn!(error = %e, "WAL truncation failed");
                next_truncate = tokio::time::Instant::now() + TRUNCATE_BACKOFF;
            }
        }
    }
}

/// Where the query planner's statistics stand. SQLite plans with what `ANALYZE` last
/// counted, and statistics gathered on a small table mislead it on a big one: told `records`
/// has a few rows, it reads a whole list in id order rather than through a field's index; told
/// the journal has one entry (as at `kontor init`), it reads every entry through a time index
/// and sorts them to answer "the entries after seq N" — each time the search index follows a
/// write. So statistics of every table are gathered again whenever the journal has grown by as
/// many entries as `records` had rows (at most a doubling between two counts; each count reads
/// about a thousand rows per index, milliseconds at any size), and at open when either table
/// has outgrown them. Statistics are loaded when a connection reads the schema, so a refresh
/// also changes the schema (a view made and dropped) and every connection plans with the new
/// counts from its next statement.
struct Statistics {
    /// The journal's head when they were last gathered.
    seq: i64,
    /// The rows of `records` they counted.
    rows: i64,
    /// The journal entries they counted.
    journal_rows: i64,
}

impl Statistics {
    async fn at_open(writer: &SqlitePool) -> Result<Statistics, sqlx::Error> {
        let mut s = Statistics::read(writer).await?;
        let rows: i64 = sqlx::query("SELECT count(*) FROM records")
            .fetch_one(writer)
            .await?
            .try_get(0)?;
        // Journal seqs are gap-free from 1, so the head is the number of entries.
        let off = |now: i64, counted: i64| {
            now > 2 * counted + STATISTICS_MIN_GROWTH || 2 * now + STATISTICS_MIN_GROWTH < counted
        };
        if s.rows == 0 || off(rows, s.rows) || off(s.seq, s.journal_rows) {
            refresh_statistics(writer).await?;
            s = Statistics::read(writer).await?;
        }
        Ok(s)
    }

    async fn read(writer: &SqlitePool) -> Result<Statistics, sqlx::Error> {
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM journal")
            .fetch_one(writer)
            .await?
            .try_get(0)?;
        let has_table: i64 = sqlx::query(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
        )
        .fetch_one(writer)
        .await?
        .try_get(0)?;
        let (mut rows, mut journal_rows) = (0, 0);
        if has_table > 0 {
            rows = counted_rows(writer, "records").await?;
            journal_rows = counted_rows(writer, "journal").await?;
        }
        Ok(Statistics {
            seq,
            rows,
            journal_rows,
        })
    }

    /// Gathers the statistics again if the journal grew past the bound since the last time;
    /// true when it did.
    async fn keep_current(&mut self, writer: &SqlitePool) -> Result<bool, sqlx::Error> {
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM journal")
            .fetch_one(writer)
            .await?
            .try_get(0)?;
        if seq - self.seq <= self.rows.max(STATISTICS_MIN_GROWTH) {
            return Ok(false);
        }
        refresh_statistics(writer).await?;
        *self = Statistics::read(writer).await?;
        Ok(true)
    }
}

/// The rows the statistics say `table` has (0 when it has none).
async fn counted_rows(writer: &SqlitePool, table: &str) -> Result<i64, sqlx::Error> {
    let stat: Option<String> =
        sqlx::query("SELECT stat FROM sqlite_stat1 WHERE tbl = $1 ORDER BY idx LIMIT 1")
            .bind(table)
            .fetch_optional(writer)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    Ok(stat
        .as_deref()
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

/// Counts every table for the planner (about a thousand rows per index) and makes every
/// connection load the new counts, in one transaction on the writer connection.
async fn refresh_statistics(writer: &SqlitePool) -> Result<(), sqlx::Error> {
    let mut conn = writer.acquire().await?;
    sqlx::query("PRAGMA analysis_limit = 1000")
        .execute(&mut *conn)
        .await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let mut done = Ok(());
    for step in [
        "ANALYZE",
        "CREATE VIEW kontor_statistics_epoch AS SELECT 1",
        "DROP VIEW kontor_statistics_epoch",
        "COMMIT",
    ] {
        if let Err(e) = sqlx::query(step)
            .persistent(false)
            .execute(&mut *conn)
            .await
        {
            done = Err(e);
            break;
        }
    }
    if done.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    done
}

/// Truncates the WAL on the writer connection, waiting at most [`TRUNCATE_WAIT`] for readers;
/// false when a reader kept it from finishing.
async fn truncate_wal(writer: &SqlitePool) -> Result<bool, sqlx::Error> {
    let mut conn = writer.acquire().await?;
    let short = format!("PRAGMA busy_timeout = {}", TRUNCATE_WAIT.as_millis());
    sqlx::query(&short).execute(&mut *conn).await?;
    let done = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await
        .map(|row| row.try_get::<i64, _>(0).unwrap_or(1) == 0);
    let usual = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
    sqlx::query(&usual).execute(&mut *conn).await?;
    done
}

/// Runs this engine's migrations up to `upto` (all when `None`) on one connection; a step
/// already recorded in `schema_migrations` is skipped. Restores use it to create a database at
/// an archive's schema version, load it, then bring it up to date.
pub(crate) async fn migrate_conn(
    conn: &mut sqlx::SqliteConnection,
    upto: Option<i64>,
) -> StoreResult<()> {
    let steps = crate::migrate::steps_up_to(&migrations(), upto);
    crate::migrate::run::<Sqlite, _>(conn, &steps, "SQLite", |c, step| {
        data_step(c, Dialect::Sqlite, step)
    })
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A steady stream of writes with no pause between them: the passive checkpoint alone never
    /// lets SQLite start the WAL over; the loop's truncation keeps the file bounded.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_a_steady_stream_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let base = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .pragma("wal_autocheckpoint", "0");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&writer)
            .await
            .unwrap();
        let maintenance = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base)
            .await
            .unwrap();
        let limit_frames = 256;
        // (No journal here: the statistics checks only log that they cannot read it.)
        let statistics = Statistics {
            seq: 0,
            rows: 0,
            journal_rows: 0,
        };
        let loop_task = tokio::spawn(checkpoint_loop(
            maintenance,
            writer.clone(),
            limit_frames,
            statistics,
            crate::list::IndexHints::default(),
        ));
        let wal = dir.path().join("wal.db-wal");
        let blob = vec![7u8; 16 * 1024];
        let (mut written, mut largest) = (0u64, 0u64);
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(8) {
            sqlx::query("INSERT INTO t (v) VALUES (?)")
                .bind(&blob)
                .execute(&writer)
                .await
                .unwrap();
            written += blob.len() as u64;
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        loop_task.abort();
        let limit_bytes = limit_frames as u64 * 4096;
        assert!(
            written > 8 * limit_bytes,
            "the test wrote too little to tell: {written} bytes"
        );
        // The WAL may pass the limit by what is written between checkpoints (half a second
        // each), never by the whole stream: over eight seconds it stays under a third of it.
        assert!(
            largest < written / 3,
            "WAL grew to {largest} bytes of {written} written"
        );
    }
}
