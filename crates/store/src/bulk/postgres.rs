//! Bulk access on PostgreSQL. Snapshots run in one `REPEATABLE READ READ ONLY` transaction on
//! their own connection (no migrations, no locks that block writers). Loads run in one
//! transaction from schema creation to the journal head, using `COPY` with secondary indexes
//! built at the end: until it commits nothing is visible, and on failure nothing is left.

use super::{
    apply_side_effects, snapshot_reader, Changes, CounterRow, CredentialRow, JournalRow,
    LoadRecord, Loader, Snapshot, SnapshotSql, UniqueRow,
};
use crate::engine::db_err;
use crate::postgres::redact_url;
use crate::{StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions, PgRow};
use sqlx::{Connection, Postgres, Transaction};
use std::str::FromStr;

const SQL: SnapshotSql = SnapshotSql {
    records: "SELECT entity, id, owner_id, created_at, updated_at, deleted_batch, deleted_at, \
              deleted_by, data::text FROM records ORDER BY entity COLLATE \"C\", id COLLATE \"C\"",
    counters: "SELECT name, value FROM counters ORDER BY name COLLATE \"C\"",
    credentials: "SELECT user_id, password_hash, changed_at FROM credentials \
                  ORDER BY user_id COLLATE \"C\"",
    credentials_since: "SELECT user_id, password_hash, changed_at FROM credentials \
                        WHERE changed_at >= $1 ORDER BY user_id COLLATE \"C\"",
    live_records: "SELECT entity, id, owner_id, created_at, updated_at, deleted_batch, \
                   deleted_at, deleted_by, data::text FROM records \
                   WHERE entity = $1 AND deleted_batch IS NULL ORDER BY id COLLATE \"C\"",
};

snapshot_reader!(PgSnapshot, PgConnection, PgRow, "postgres", SQL);

fn options(url: &str) -> StoreResult<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid database URL {}: {e}", redact_url(url))))?
        .application_name("kontor-backup"))
}

/// Opens a snapshot of the database at `url` (live servers may be writing it).
pub async fn open_snapshot(url: &str) -> StoreResult<Box<dyn Snapshot>> {
    let mut conn = PgConnection::connect_with(&options(url)?)
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        })?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    let kontor: bool = sqlx::query_scalar("SELECT to_regclass('schema_migrations') IS NOT NULL")
        .fetch_one(&mut conn)
        .await
        .map_err(db_err)?;
    if !kontor {
        let _ = conn.close().await;
        return Err(StoreError::Other(format!(
            "{} holds no Kontor database",
            redact_url(url)
        )));
    }
    Ok(Box::new(PgSnapshot::facts(conn).await?))
}

/// A transaction on a pool of one connection (so it can be held as `'static`).
async fn one_transaction(url: &str) -> StoreResult<Transaction<'static, Postgres>> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options(url)?)
        .await
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {e}",
                redact_url(url)
            ))
        })?;
    pool.begin().await.map_err(db_err)
}

/// Starts loading into the empty database at `url`, creating the schema at `archive_version`
/// (connecting with [`crate::postgres::PgStore::connect`] afterwards brings it up to date).
/// Refuses a database that has any table in its schema.
pub async fn begin_restore(url: &str, archive_version: i64) -> StoreResult<Box<dyn Loader>> {
    let shown = redact_url(url);
    let mut tx = one_transaction(url).await?;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if tables > 0 {
        return Err(StoreError::Other(format!(
            "the database at {shown} is not empty ({tables} tables); restore into an empty database"
        )));
    }
    crate::postgres::migrate_conn(&mut tx, Some(archive_version)).await?;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexname::text, i.indexdef FROM pg_catalog.pg_indexes i \
         WHERE i.schemaname = current_schema() \
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conname = i.indexname)",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    for (name, _) in &indexes {
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    Ok(Box::new(PgLoader {
        tx,
        indexes: indexes.into_iter().map(|(_, sql)| sql).collect(),
        buf: Vec::new(),
    }))
}

/// Applies journal entries to an existing Kontor database (catch-up after a move) in one
/// transaction that holds the journal head, so no Kontor node writes meanwhile; nothing is
/// visible until [`Loader::finish`] commits. Only [`Loader::apply`] is meant to be called.
pub async fn begin_catch_up(url: &str) -> StoreResult<Box<dyn Loader>> {
    let shown = redact_url(url);
    let mut tx = one_transaction(url).await?;
    sqlx::query("SELECT seq FROM journal_head WHERE id = 1 FOR UPDATE")
        .execute(&mut *tx)
        .await
        .map_err(|e| StoreError::Other(format!("{shown} holds no Kontor database: {e}")))?;
    Ok(Box::new(PgLoader {
        tx,
        indexes: Vec::new(),
        buf: Vec::new(),
    }))
}

pub struct PgLoader {
    tx: Transaction<'static, Postgres>,
    indexes: Vec<String>,
    /// COPY data being assembled.
    buf: Vec<u8>,
}

/// Bytes of COPY data sent per message.
const COPY_CHUNK: usize = 1 << 20;

/// One field of a COPY text-format row.
trait CopyField {
    fn put(&self, out: &mut Vec<u8>);
}

impl CopyField for str {
    fn put(&self, out: &mut Vec<u8>) {
        for &b in self.as_bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }
}
impl CopyField for String {
    fn put(&self, out: &mut Vec<u8>) {
        self.as_str().put(out)
    }
}
impl CopyField for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}
impl<T: CopyField> CopyField for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.put(out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
}

/// Appends one row: fields separated by tabs, ended by a newline.
fn row(out: &mut Vec<u8>, fields: &[&dyn CopyField]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        f.put(out);
    }
    out.push(b'\n');
}

impl PgLoader {
    /// Builds the indexes dropped for the load, once.
    async fn build_indexes(&mut self) -> StoreResult<()> {
        for sql in std::mem::take(&mut self.indexes) {
            sqlx::query(&sql)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Runs `COPY table (columns) FROM STDIN` with the rows `encode` writes.
    async fn copy<T>(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[T],
        encode: impl Fn(&mut Vec<u8>, &T),
    ) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let statement = format!("COPY {table} ({}) FROM STDIN", columns.join(", "));
        let mut copy = self.tx.copy_in_raw(&statement).await.map_err(db_err)?;
        self.buf.clear();
        for r in rows {
            encode(&mut self.buf, r);
            if self.buf.len() >= COPY_CHUNK {
                copy.send(self.buf.as_slice()).await.map_err(db_err)?;
                self.buf.clear();
            }
        }
        if !self.buf.is_empty() {
            copy.send(self.buf.as_slice()).await.map_err(db_err)?;
        }
        copy.finish().await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait]
impl Loader for PgLoader {
    async fn records(&mut self, rows: &[LoadRecord]) -> StoreResult<()> {
        let mut cols: Vec<&str> = super::RECORD_COLUMNS.to_vec();
        cols.extend(["parent_id", "search"]);
        self.copy("records", &cols, rows, |out, r| {
            let x = &r.row;
            row(
                out,
                &[
                    &x.entity,
                    &x.id,
                    &x.owner_id,
                    &x.created_at,
                    &x.updated_at,
                    &x.deleted_batch,
                    &x.deleted_at,
                    &x.deleted_by,
                    &x.data,
                    &r.parent_id,
                    &r.search,
                ],
            )
        })
        .await
    }

    async fn uniques(&mut self, rows: &[UniqueRow]) -> StoreResult<()> {
        self.copy(
            "uniques",
            &["entity", "key", "value", "record_id"],
            rows,
            |out, r| row(out, &[&r.entity, &r.key, &r.value, &r.record_id]),
        )
        .await
    }

    async fn journal(&mut self, rows: &[JournalRow]) -> StoreResult<()> {
        self.copy("journal", &super::JOURNAL_COLUMNS, rows, |out, r| {
            row(
                out,
                &[
                    &r.seq,
                    &r.at,
                    &r.actor,
                    &r.origin,
                    &r.batch,
                    &r.entity,
                    &r.record_id,
                    &r.op,
                    &r.owner_id,
                    &r.before,
                    &r.after,
                    &r.scrubbed,
                ],
            )
        })
        .await
    }

    async fn counters(&mut self, rows: &[CounterRow]) -> StoreResult<()> {
        self.copy("counters", &["name", "value"], rows, |out, r| {
            row(out, &[&r.name, &r.value])
        })
        .await
    }

    async fn credentials(&mut self, rows: &[CredentialRow]) -> StoreResult<()> {
        self.copy(
            "credentials",
            &["user_id", "password_hash", "changed_at"],
            rows,
            |out, r| row(out, &[&r.user_id, &r.password_hash, &r.changed_at]),
        )
        .await
    }

    async fn apply(&mut self, c: &Changes) -> StoreResult<()> {
        self.build_indexes().await?;
        self.journal(&c.journal).await?;
        for (entity, ids) in c.touched_by_entity() {
            for (table, column) in [("records", "id"), ("uniques", "record_id")] {
                sqlx::query(&format!(
                    "DELETE FROM {table} WHERE entity = $1 AND {column} = ANY($2)"
                ))
                .bind(entity)
                .bind(&ids)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
            }
        }
        self.records(&c.records).await?;
        self.uniques(&c.uniques).await?;
        apply_side_effects!(&mut *self.tx, c);
        if let Some(counters) = &c.counters {
            self.counters(counters).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        self.build_indexes().await?;
        sqlx::query(
            "UPDATE journal_head SET seq = (SELECT COALESCE(MAX(seq), 0) FROM journal), \
             at = (SELECT COALESCE(MAX(at), 0) FROM journal) WHERE id = 1",
        )
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        let PgLoader { tx, .. } = *self;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn abandon(self: Box<Self>) {
        let PgLoader { tx, .. } = *self;
        let _ = tx.rollback().await;
    }
}
