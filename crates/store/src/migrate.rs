//! Schema migrations: numbered steps per engine, each applied once in its own transaction and
//! recorded in `schema_migrations` with its checksum, the Kontor version that applied it and how
//! long it took. A step is an SQL script, or a data step: a rewrite of stored rows in Rust (see
//! [`crate::data_migrations`]) that the engine runs inside the transaction.
//!
//! A released step is never edited: each open compares the checksums recorded with this
//! Kontor's and refuses a database whose recorded step differs, or that a newer Kontor migrated
//! past what this one knows (a downgrade would misread it).
//!
//! The pending steps run in one transaction (both engines have transactional DDL): a schema
//! moves from its version to this Kontor's whole, or not at all. Test builds can append a step
//! that fails (see [`with_test_step`]), for the upgrade's rollback tests.

use crate::engine::db_err;
use crate::{StoreError, StoreResult};
use kontor_domain::time;
use sqlx::{Connection, Database, Executor, IntoArguments};
use std::future::Future;
use std::pin::Pin;

/// One migration step.
#[derive(Clone, Copy)]
pub(crate) enum Step {
    Sql(&'static str),
    Data(DataStep),
}

impl Step {
    /// What identifies the step's content: BLAKE3 of its SQL, or of the data step's name
    /// (whose rewrite rules are fixed once released, as SQL is).
    pub(crate) fn checksum(&self) -> String {
        let mut h = blake3::Hasher::new();
        match self {
            Step::Sql(sql) => {
                h.update(b"sql\0");
                h.update(sql.as_bytes());
            }
            Step::Data(d) => {
                h.update(b"data\0");
                h.update(format!("{d:?}").as_bytes());
            }
        }
        h.finalize().to_hex().to_string()
    }
}

/// Rewrites of stored data that SQL alone cannot do the same way on both engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataStep {
    /// Moves password hashes out of user records, their journal images and search text into
    /// the `credentials` table; images record `password_changed_at` instead.
    CredentialsOutOfRecords,
    /// Writes every decimal field as a decimal string (money at its currency's minor units).
    DecimalsAsStrings,
}

/// The steps up to `upto` (all when `None`): a restore creates the schema at an archive's version.
pub(crate) fn steps_up_to(steps: &[(i64, Step)], upto: Option<i64>) -> Vec<(i64, Step)> {
    steps
        .iter()
        .filter(|(v, _)| upto.is_none_or(|u| *v <= u))
        .copied()
        .collect()
}

/// A migration as a database recorded it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AppliedMigration {
    pub version: i64,
    /// RFC 3339.
    pub applied_at: String,
    /// `None` for steps applied before Kontor recorded checksums (recorded at the next open).
    pub checksum: Option<String>,
    pub kontor_version: Option<String>,
    pub duration_ms: Option<i64>,
}

/// Where a database's schema stands against this Kontor's migrations.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MigrationStatus {
    /// The highest version applied (0: none).
    pub schema_version: i64,
    /// The version this Kontor brings a database to.
    pub current_version: i64,
    pub applied: Vec<AppliedMigration>,
    /// Versions this Kontor would apply, in order.
    pub pending: Vec<i64>,
    /// Applied versions whose recorded checksum differs from this Kontor's step.
    pub edited: Vec<i64>,
    /// Applied versions this Kontor does not know (a newer Kontor's).
    pub unknown: Vec<i64>,
}

impl MigrationStatus {
    /// Why this Kontor must not open the database, if it must not.
    pub fn refusal(&self, engine: &str) -> Option<StoreError> {
        if !self.unknown.is_empty() {
            return Some(StoreError::Schema(format!(
                "this {engine} database is at schema version {}, which a newer Kontor made; this \
                 Kontor ({}) knows versions up to {}: run the newer Kontor, or restore an archive \
                 made before the upgrade",
                self.schema_version,
                env!("CARGO_PKG_VERSION"),
                self.current_version
            )));
        }
        if let Some(v) = self.edited.first() {
            return Some(StoreError::Schema(format!(
                "migration {v} recorded in this {engine} database differs from this Kontor's \
                 (checksum mismatch): a released migration was changed; refusing to open"
            )));
        }
        None
    }
}

/// Reads what `conn`'s database recorded of `steps`, applying nothing. A database without the
/// bookkeeping table has every step pending.
pub(crate) async fn status<DB>(
    conn: &mut DB::Connection,
    steps: &[(i64, Step)],
) -> StoreResult<MigrationStatus>
where
    DB: Database + sqlx::database::HasStatementCache,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    type Row = (i64, i64, Option<String>, Option<String>, Option<i64>);
    let recorded: Result<Vec<Row>, _> = sqlx::query_as(
        "SELECT version, applied_at, checksum, kontor_version, duration_ms \
         FROM schema_migrations ORDER BY version",
    )
    .persistent(false)
    .fetch_all(&mut *conn)
    .await;
    let rows: Vec<Row> = match recorded {
        Ok(rows) => rows,
        // A table from before checksums were recorded, or none at all.
        Err(_) => sqlx::query_as::<_, (i64, i64)>(
            "SELECT version, applied_at FROM schema_migrations ORDER BY version",
        )
        .persistent(false)
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(v, at)| (v, at, None, None, None))
        .collect(),
    };
    let applied: Vec<AppliedMigration> = rows
        .into_iter()
        .map(
            |(version, at, checksum, kontor_version, duration_ms)| AppliedMigration {
                version,
                applied_at: time::format(time::from_micros(at)),
                checksum,
                kontor_version,
                duration_ms,
            },
        )
        .collect();
    let mut edited = Vec::new();
    let mut unknown = Vec::new();
    for a in &applied {
        match steps.iter().find(|(v, _)| *v == a.version) {
            None => unknown.push(a.version),
            Some((_, step)) => {
                if a.checksum.as_ref().is_some_and(|c| *c != step.checksum()) {
                    edited.push(a.version);
                }
            }
        }
    }
    let pending = steps
        .iter()
        .map(|(v, _)| *v)
        .filter(|v| !applied.iter().any(|a| a.version == *v))
        .collect();
    Ok(MigrationStatus {
        schema_version: applied.iter().map(|a| a.version).max().unwrap_or(0),
        current_version: steps.iter().map(|(v, _)| *v).max().unwrap_or(0),
        applied,
        pending,
        edited,
        unknown,
    })
}

/// A step a migration run applied, and how long it took.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AppliedStep {
    pub version: i64,
    pub millis: u64,
}

/// Names the deliberately failing step test builds append to the migrations
/// (`KONTOR_TEST_FAILING_MIGRATION`): `sql` fails inside the step, after it created a table;
/// `check` succeeds but leaves a record that is not a JSON object, which the upgrade's checks
/// must catch. Release builds never read it.
pub const TEST_FAILING_MIGRATION: &str = "KONTOR_TEST_FAILING_MIGRATION";

/// `steps`, and in test (debug) builds the failing step [`TEST_FAILING_MIGRATION`] asks for,
/// numbered after the last.
pub(crate) fn with_test_step(
    steps: &'static [(i64, Step)],
    failing_sql: &'static str,
    corrupting_sql: &'static str,
) -> std::borrow::Cow<'static, [(i64, Step)]> {
    if cfg!(debug_assertions) {
        let next = steps.iter().map(|(v, _)| *v).max().unwrap_or(0) + 1;
        let step = match std::env::var(TEST_FAILING_MIGRATION).as_deref() {
            Ok("sql") => Some(Step::Sql(failing_sql)),
            Ok("check") => Some(Step::Sql(corrupting_sql)),
            _ => None,
        };
        if let Some(step) = step {
            let mut all = steps.to_vec();
            all.push((next, step));
            return std::borrow::Cow::Owned(all);
        }
    }
    std::borrow::Cow::Borrowed(steps)
}

pub(crate) type StepFuture<'c> = Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'c>>;

/// Applies the pending `steps` in one transaction and records each; returns what it applied.
pub(crate) async fn run<DB, F>(
    conn: &mut DB::Connection,
    steps: &[(i64, Step)],
    engine: &str,
    mut data: F,
) -> StoreResult<Vec<AppliedStep>>
where
    DB: Database + sqlx::database::HasStatementCache,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    F: for<'c> FnMut(&'c mut DB::Connection, DataStep) -> StepFuture<'c>,
{
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
         applied_at BIGINT NOT NULL, checksum TEXT, kontor_version TEXT, duration_ms BIGINT)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    // A table from before checksums were recorded gains their columns.
    let has_columns =
        sqlx::query("SELECT checksum, kontor_version, duration_ms FROM schema_migrations")
            .persistent(false)
            .fetch_optional(&mut *conn)
            .await
            .is_ok();
    if !has_columns {
        for (name, ty) in [
            ("checksum", "TEXT"),
            ("kontor_version", "TEXT"),
            ("duration_ms", "BIGINT"),
        ] {
            sqlx::raw_sql(&format!(
                "ALTER TABLE schema_migrations ADD COLUMN {name} {ty}"
            ))
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
        }
    }
    let before = status::<DB>(conn, steps).await?;
    if let Some(refused) = before.refusal(engine) {
        return Err(refused);
    }
    // Steps applied before checksums were recorded: this Kontor's are recorded for them (a
    // released step is the same in every later Kontor).
    for a in before.applied.iter().filter(|a| a.checksum.is_none()) {
        if let Some((_, step)) = steps.iter().find(|(v, _)| *v == a.version) {
            sqlx::query("UPDATE schema_migrations SET checksum = $1 WHERE version = $2")
                .bind(step.checksum())
                .bind(a.version)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
        }
    }
    if before.pending.is_empty() {
        return Ok(Vec::new());
    }
    let mut applied = Vec::new();
    let mut tx = conn.begin().await.map_err(db_err)?;
    for (version, step) in steps {
        if !before.pending.contains(version) {
            continue;
        }
        let started = std::time::Instant::now();
        let failed = |e: StoreError| match e {
            StoreError::Unavailable(m) => StoreError::Unavailable(m),
            other => StoreError::Schema(format!(
                "migration {version} failed on {engine}, so none of the pending migrations \
                 was kept: {other}"
            )),
        };
        match step {
            Step::Sql(sql) => {
                sqlx::raw_sql(sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| failed(db_err(e)))?;
            }
            Step::Data(d) => data(&mut tx, *d).await.map_err(failed)?,
        }
        let millis = started.elapsed().as_millis() as u64;
        sqlx::query(
            "INSERT INTO schema_migrations (version, applied_at, checksum, kontor_version, \
             duration_ms) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(*version)
        .bind(time::to_micros(time::now()))
        .bind(step.checksum())
        .bind(env!("CARGO_PKG_VERSION").to_string())
        .bind(millis as i64)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tracing::info!(version, engine, millis, "applied migration");
        applied.push(AppliedStep {
            version: *version,
            millis,
        });
    }
    tx.commit().await.map_err(db_err)?;
    Ok(applied)
}
