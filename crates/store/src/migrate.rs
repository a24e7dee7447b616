//! Schema migrations: numbered steps per engine, each applied once in its own transaction and
//! recorded in `schema_migrations`. A step is an SQL script, or a data step: a rewrite of stored
//! rows in Rust (see [`crate::data_migrations`]) that the engine runs inside the transaction.

use crate::engine::db_err;
use crate::StoreResult;
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

pub(crate) type StepFuture<'c> = Pin<Box<dyn Future<Output = StoreResult<()>> + Send + 'c>>;

pub(crate) async fn run<DB, F>(
    conn: &mut DB::Connection,
    steps: &[(i64, Step)],
    engine: &str,
    mut data: F,
) -> StoreResult<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
    F: for<'c> FnMut(&'c mut DB::Connection, DataStep) -> StepFuture<'c>,
{
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    for (version, step) in steps {
        if done.contains(version) {
            continue;
        }
        let mut tx = conn.begin().await.map_err(db_err)?;
        match step {
            Step::Sql(sql) => {
                sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db_err)?;
            }
            Step::Data(d) => data(&mut tx, *d).await?,
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(time::to_micros(time::now()))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(version, engine, "applied migration");
    }
    Ok(())
}
