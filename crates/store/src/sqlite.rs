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
use sqlx::{Row, Sqlite};
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
];

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    dialect: Dialect,
    /// This process alone writes the file (the data directory is locked), so the journal head
    /// lives in memory.
    memo: Option<Memo>,
    checkpointer: tokio::task::JoinHandle<()>,
}

/// How often the background checkpointer folds the WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// Refreshes the planner's statistics of tables that changed a lot since they were gathered,
/// reading at most about a thousand rows of each index (so it takes milliseconds at any size).
pub(crate) const OPTIMIZE: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize;";
/// The same at open, also gathering statistics that were never gathered.
const OPTIMIZE_AT_OPEN: &str = "PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002;";
/// How often the checkpointer refreshes the planner's statistics.
const OPTIMIZE_EVERY: Duration = Duration::from_secs(600);
/// How long a connection waits for a lock another holds before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL frames (pages) above which the checkpointer truncates the WAL: 16,384 pages of 4 KiB.
const WAL_RESTART_FRAMES: i64 = 16_384;
/// How long a truncating checkpoint may hold writers back waiting for readers to finish.
const TRUNCATE_WAIT: Duration = Duration::from_millis(100);
/// After a truncation a long read prevented, how long the checkpointer only checkpoints passively.
const TRUNCATE_BACKOFF: Duration = Duration::from_secs(10);

impl SqliteStore {
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
        {
            let mut conn = writer.acquire().await.map_err(db_err)?;
            crate::migrate::run::<Sqlite, _>(&mut conn, MIGRATIONS, "SQLite", |c, step| {
                data_step(c, Dialect::Sqlite, step)
            })
            .await?;
        }
        // Statistics for the query planner (which index serves a list best): gathered now
        // where missing, and kept current by the checkpointer.
        sqlx::raw_sql(OPTIMIZE_AT_OPEN)
            .execute(&writer)
            .await
            .map_err(db_err)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            // A connection loads the planner's statistics when it opens (or the schema
            // changes): renewed now and then, readers plan with what the checkpointer refreshed.
            .max_lifetime(Some(OPTIMIZE_EVERY))
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
        let memo = HeadMemo {
            seq: head.try_get("seq").map_err(db_err)?,
            at: head.try_get("at").map_err(db_err)?,
            schema_version: 0,
        };
        let checkpointer = tokio::spawn(checkpoint_loop(
            maintenance,
            writer.clone(),
            WAL_RESTART_FRAMES,
        ));
        Ok(SqliteStore {
            writer,
            readers,
            dialect: Dialect::Sqlite,
            memo: Some(std::sync::Arc::new(tokio::sync::Mutex::new(memo))),
            checkpointer,
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
async fn checkpoint_loop(maintenance: SqlitePool, writer: SqlitePool, restart_frames: i64) {
    let mut next_truncate = tokio::time::Instant::now();
    let mut next_optimize = tokio::time::Instant::now() + OPTIMIZE_EVERY;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if tokio::time::Instant::now() >= next_optimize {
            next_optimize = tokio::time::Instant::now() + OPTIMIZE_EVERY;
            if let Err(e) = sqlx::raw_sql(OPTIMIZE).execute(&writer).await {
                tracing::warn!(error = %e, "planner statistics not refreshed");
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
    let steps = crate::migrate::steps_up_to(MIGRATIONS, upto);
    crate::migrate::run::<Sqlite, _>(conn, &steps, "SQLite", |c, step| {
        data_step(c, Dialect::Sqlite, step)
    })
    .await
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
        let loop_task = tokio::spawn(checkpoint_loop(maintenance, writer.clone(), limit_frames));
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
