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

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
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
        let memo = HeadMemo {
            seq: head.try_get("seq").map_err(db_err)?,
            at: head.try_get("at").map_err(db_err)?,
            schema_version: 0,
        };
        Ok(SqliteStore {
            writer,
            readers,
            dialect: Dialect::Sqlite,
            memo: Some(std::sync::Arc::new(tokio::sync::Mutex::new(memo))),
            checkpointer: tokio::spawn(checkpoint_loop(maintenance)),
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

/// Copies committed WAL pages into the database file without blocking writers (PASSIVE), and
/// restarts the WAL once it is fully copied, so the WAL stays small.
async fn checkpoint_loop(pool: SqlitePool) {
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "background WAL checkpoint failed");
        }
    }
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
