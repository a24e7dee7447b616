//! The scale-out engine: PostgreSQL, shared by any number of Kontor nodes. Writers on every node
//! serialise on the journal head row (`SELECT ... FOR UPDATE` at the start of each write
//! transaction), so the journal stays gap-free and totally ordered across the cluster.

use crate::engine::{db_err, sql_engine};
use crate::migrate::{DataStep, Step};
use crate::sql::Dialect;
use crate::{StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Row};
use std::str::FromStr;
use std::time::Duration;

pub(crate) const MIGRATIONS: &[(i64, Step)] = &[
    (
        1,
        Step::Sql(include_str!("../migrations/postgres/0001_core.sql")),
    ),
    (
        2,
        Step::Sql(include_str!(
            "../migrations/postgres/0002_limits_credentials.sql"
        )),
    ),
    (3, Step::Data(DataStep::CredentialsOutOfRecords)),
    (4, Step::Data(DataStep::DecimalsAsStrings)),
    (
        5,
        Step::Sql(include_str!("../migrations/postgres/0005_jobs.sql")),
    ),
    (
        6,
        Step::Sql(include_str!("../migrations/postgres/0006_list_times.sql")),
    ),
    (
        7,
        Step::Sql(include_str!(
            "../migrations/postgres/0007_import_progress.sql"
        )),
    ),
    (
        8,
        Step::Sql(include_str!("../migrations/postgres/0008_read_only.sql")),
    ),
];

/// [`MIGRATIONS`], with the failing step test builds may append
/// (see [`crate::migrate::TEST_FAILING_MIGRATION`]).
pub(crate) fn migrations() -> std::borrow::Cow<'static, [(i64, Step)]> {
    crate::migrate::with_test_step(
        MIGRATIONS,
        "CREATE TABLE upgrade_probe (x BIGINT); INSERT INTO no_such_table VALUES (1);",
        "CREATE TABLE upgrade_probe (x BIGINT); UPDATE records SET data = '[]'::jsonb WHERE (entity, id) = (SELECT entity, id FROM records ORDER BY entity, id LIMIT 1);",
    )
}

/// Advisory-lock key that serialises migrations when several nodes start at once.
const MIGRATION_LOCK: i64 = 0x4b6f_6e74_6f72;

pub struct PgStore {
    writer: PgPool,
    readers: PgPool,
    dialect: Dialect,
    /// Always `None`: nodes share the database, so writers lock the head row instead.
    memo: Option<crate::engine::Memo>,
    /// This process's freeze (see [`crate::read_only`]).
    gate: crate::read_only::NodeGate,
    /// Always empty: PostgreSQL plans lists from its own statistics.
    list_hints: crate::list::IndexHints,
    /// Keeps those statistics current after large writes (see [`statistics_loop`]).
    statistics: tokio::task::JoinHandle<()>,
    /// The migrations this connect applied.
    migrated: Vec<crate::AppliedStep>,
}

/// How often a node looks whether the planner's statistics are out of date.
const STATISTICS_CHECK_EVERY: Duration = Duration::from_secs(5);
/// Changed rows after which statistics gathered on a small table are gathered again.
const STATISTICS_MIN_GROWTH: i64 = 1000;

/// PostgreSQL plans with what `ANALYZE` last sampled, and autovacuum gathers statistics again
/// only when it next wakes (once a minute) and finds enough of a table changed. Right after a
/// large import (a million contacts into an empty table) the planner still believes `records`
/// small and sorts a whole list rather than reading the sort's index: hundreds of milliseconds
/// for a first page instead of one. So each node looks every few seconds and gathers
/// statistics of `records` and `journal` itself once more rows changed since the last
/// `ANALYZE` than the table had then (at most a doubling between two counts), as PostgreSQL's
/// own activity counters say. `ANALYZE` samples a fixed number of rows, does not block
/// writes, and several nodes doing it at once is harmless.
async fn statistics_loop(pool: PgPool) {
    loop {
        tokio::time::sleep(STATISTICS_CHECK_EVERY).await;
        if pool.is_closed() {
            return;
        }
        match keep_statistics_current(&pool).await {
            Ok(true) => tracing::debug!("planner statistics gathered again"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "planner statistics not refreshed"),
        }
    }
}

/// Gathers the statistics again if `records` or `journal` changed past the bound; true when
/// it did.
async fn keep_statistics_current(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let stale: Option<bool> = sqlx::query_scalar(
        "SELECT bool_or(s.n_mod_since_analyze > GREATEST(c.reltuples::bigint, $1)) \
         FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid \
         WHERE s.relid IN ('records'::regclass, 'journal'::regclass)",
    )
    .bind(STATISTICS_MIN_GROWTH)
    .fetch_one(pool)
    .await?;
    if stale != Some(true) {
        return Ok(false);
    }
    sqlx::raw_sql("ANALYZE records, journal")
        .execute(pool)
        .await?;
    Ok(true)
}

impl PgStore {
    /// The migrations connecting applied (none when the schema was current).
    pub fn migrated(&self) -> &[crate::AppliedStep] {
        &self.migrated
    }

    /// Nothing to do: PostgreSQL needs no index named (see [`crate::list::IndexHints`]).
    async fn reload_list_hints(&self) -> crate::StoreResult<()> {
        Ok(())
    }
}

/// A database URL with the password masked, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{}:***@{}", &url[..s], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl PgStore {
    /// Connects, waits for nothing: an unreachable server, a wrong password or a missing database
    /// is an error that says which.
    pub async fn connect(url: &str) -> StoreResult<PgStore> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL {shown}: {e}")))?
            .application_name("kontor");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .connect_with(opts)
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {shown}: {}",
                    describe(&e)
                ))
            })?;
        let mut conn = pool.acquire().await.map_err(db_err)?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        let migrated = crate::migrate::run::<Postgres, _>(
            &mut conn,
            &migrations(),
            "PostgreSQL",
            |c, step| data_step(c, Dialect::Postgres, step),
        )
        .await;
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(db_err);
        let migrated = migrated?;
        unlocked?;
        drop(conn);
        let statistics = tokio::spawn(statistics_loop(pool.clone()));
        Ok(PgStore {
            readers: pool.clone(),
            writer: pool,
            dialect: Dialect::Postgres,
            memo: None,
            gate: Default::default(),
            list_hints: crate::list::IndexHints::default(),
            statistics,
            migrated,
        })
    }

    /// Freezes (or, with `None`, thaws) the database at `url` for every node without opening
    /// it as a store (so nothing is migrated): what `kontor upgrade` holds while it works.
    /// Waits for the write transactions in flight, as a freeze through the store does. False
    /// when the schema predates freezing (version 8): its nodes cannot be told.
    pub async fn freeze_unopened(url: &str, state: Option<&crate::ReadOnly>) -> StoreResult<bool> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL {shown}: {e}")))?
            .application_name("kontor upgrade");
        let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {shown}: {}",
                describe(&e)
            ))
        })?;
        let has_column: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = 'journal_head' \
             AND column_name = 'read_only')",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(db_err)?;
        if has_column {
            sqlx::query(crate::sql::SET_READ_ONLY_HEAD)
                .bind(state.map(|s| s.to_text()))
                .execute(&mut conn)
                .await
                .map_err(db_err)?;
        }
        let _ = conn.close().await;
        Ok(has_column)
    }

    /// Drops every table of the current schema of the database at `url`: what an upgrade
    /// does before restoring its pinned snapshot into the same database.
    pub async fn empty_unopened(url: &str) -> StoreResult<()> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL {shown}: {e}")))?
            .application_name("kontor upgrade");
        let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {shown}: {}",
                describe(&e)
            ))
        })?;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(db_err)?;
        if !tables.is_empty() {
            let list: Vec<String> = tables
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect();
            sqlx::raw_sql(&format!("DROP TABLE {} CASCADE", list.join(", ")))
                .execute(&mut conn)
                .await
                .map_err(db_err)?;
        }
        let _ = conn.close().await;
        Ok(())
    }

    /// Counts what the database at `url` holds (see [`crate::census`]).
    pub async fn census(url: &str) -> StoreResult<(crate::Census, crate::Damage)> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL {shown}: {e}")))?
            .application_name("kontor upgrade");
        let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {shown}: {}",
                describe(&e)
            ))
        })?;
        let counted =
            crate::census::take::<Postgres>(&mut conn, "jsonb_typeof(data) <> 'object'").await;
        let _ = conn.close().await;
        counted
    }

    /// What the database at `url` holds (schema, pending migrations, journal head, size),
    /// read without migrating anything.
    pub async fn inspect(url: &str) -> StoreResult<crate::Inspection> {
        let shown = redact_url(url);
        let opts = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Other(format!("invalid database URL {shown}: {e}")))?
            .application_name("kontor status");
        let mut conn = sqlx::PgConnection::connect_with(&opts).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {shown}: {}",
                describe(&e)
            ))
        })?;
        let migrations = crate::migrate::status::<Postgres>(&mut conn, &migrations()).await?;
        let journal_seq: i64 = if migrations.applied.is_empty() {
            0
        } else {
            sqlx::query_scalar("SELECT seq FROM journal_head WHERE id = 1")
                .fetch_optional(&mut conn)
                .await
                .map_err(db_err)?
                .unwrap_or(0)
        };
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut conn)
            .await
            .map_err(db_err)?;
        let _ = conn.close().await;
        Ok(crate::Inspection {
            migrations,
            journal_seq,
            bytes: bytes.max(0) as u64,
        })
    }

    async fn close_engine(&self) {
        self.statistics.abort();
        self.writer.close().await;
    }

    /// The server's version string, for start-up logs.
    pub async fn server_version(&self) -> StoreResult<String> {
        let row = sqlx::query("SHOW server_version")
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)?;
        row.try_get::<String, _>(0).map_err(db_err)
    }
}

/// The part of a connection error a person can act on.
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => "timed out (is the server reachable?)".into(),
        other => other.to_string(),
    }
}

sql_engine!(PgStore, PgTx, Postgres, PgRow, PgArguments);

/// Runs this engine's migrations up to `upto` (all when `None`) on one connection; a step
/// already recorded in `schema_migrations` is skipped. Restores use it to create a database at
/// an archive's schema version, load it, then bring it up to date.
pub(crate) async fn migrate_conn(
    conn: &mut sqlx::PgConnection,
    upto: Option<i64>,
) -> StoreResult<()> {
    let steps = crate::migrate::steps_up_to(&migrations(), upto);
    crate::migrate::run::<Postgres, _>(conn, &steps, "PostgreSQL", |c, step| {
        data_step(c, Dialect::Postgres, step)
    })
    .await
    .map(|_| ())
}
