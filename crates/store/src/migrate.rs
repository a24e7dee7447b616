//! Schema migrations: numbered SQL scripts per engine, each applied once in its own transaction
//! and recorded in `schema_migrations`.

use crate::engine::db_err;
use crate::StoreResult;
use kontor_domain::time;
use sqlx::{Connection, Database, Executor, IntoArguments};

pub(crate) async fn run<DB>(
    conn: &mut DB::Connection,
    migrations: &[(i64, &str)],
    engine: &str,
) -> StoreResult<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
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
    for (version, sql) in migrations {
        if done.contains(version) {
            continue;
        }
        let mut tx = conn.begin().await.map_err(db_err)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db_err)?;
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
