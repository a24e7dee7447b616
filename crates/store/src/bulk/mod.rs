//! Bulk access for backups: reading every table an archive carries at one journal seq
//! ([`Snapshot`]), and loading them into an empty database ([`Loader`]) at the database's own
//! speed (multi-row statements on SQLite, `COPY` on PostgreSQL, secondary indexes built after
//! the load). Rows cross this boundary as engine-neutral structs; JSON columns travel as text.
//!
//! Only the tables that hold business data and credentials are read or loaded here: `records`
//! (without the derived `parent_id` and `search` columns), `journal`, `counters` and
//! `credentials`. Derived tables (`uniques`) are rebuilt by the caller from the records;
//! sessions, leases and rate-limit counters are never carried.

pub mod postgres;
pub mod sqlite;

use crate::StoreResult;
use async_trait::async_trait;
use tokio::sync::mpsc::Sender;

/// A `records` row without its derived columns. `data` is the record's fields as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordRow {
    pub entity: String,
    pub id: String,
    pub owner_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_batch: Option<String>,
    pub deleted_at: Option<i64>,
    pub deleted_by: Option<String>,
    pub data: String,
}

/// A `records` row with the derived columns the loader stores alongside.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadRecord {
    pub row: RecordRow,
    pub parent_id: Option<String>,
    pub search: String,
}

/// A `journal` row; `before` and `after` are JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub origin: String,
    pub batch: String,
    pub entity: String,
    pub record_id: String,
    pub op: String,
    pub owner_id: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub scrubbed: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CounterRow {
    pub name: String,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    pub user_id: String,
    pub password_hash: String,
    pub changed_at: i64,
}

/// A unique value held by a live record (derived from the records on load).
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueRow {
    pub entity: String,
    pub key: String,
    pub value: String,
    pub record_id: String,
}

/// The database as of one journal seq, read in one read-only transaction. Writers are never
/// blocked: SQLite readers see a WAL snapshot, PostgreSQL runs `REPEATABLE READ`. Commits are
/// ordered by seq on both engines, so the snapshot holds exactly the entries up to [`seq`] and
/// the records they produced.
///
/// Rows stream out in batches through a bounded channel (the reader waits while the consumer
/// is behind), ordered by primary key in byte order on both engines, so two engines holding
/// the same data produce the same sequence of rows.
///
/// [`seq`]: Snapshot::seq
#[async_trait]
pub trait Snapshot: Send {
    /// `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;
    /// The highest journal seq the snapshot holds (0 when empty).
    fn seq(&self) -> i64;
    /// The time of that entry, in microseconds (0 when empty).
    fn at(&self) -> i64;
    /// The batch of journal entry 1: it names the database's history, so a restored copy
    /// carries the same name and an unrelated database another (`None` when empty).
    fn origin(&self) -> Option<&str>;
    /// The highest schema migration applied to the database.
    fn schema_version(&self) -> i64;
    /// Every record in `(entity, id)` order.
    async fn records(&mut self, batch: usize, out: &Sender<Vec<RecordRow>>) -> StoreResult<()>;
    /// Journal entries with seq above `after_seq`, up to the snapshot's seq, in seq order.
    async fn journal(
        &mut self,
        after_seq: i64,
        batch: usize,
        out: &Sender<Vec<JournalRow>>,
    ) -> StoreResult<()>;
    /// The live records (not in the bin) of one entity, by id.
    async fn live_records(&mut self, entity: &str) -> StoreResult<Vec<RecordRow>>;
    /// Every counter, by name.
    async fn counters(&mut self) -> StoreResult<Vec<CounterRow>>;
    /// Every credential, by user id.
    async fn credentials(&mut self) -> StoreResult<Vec<CredentialRow>>;
    /// Credentials changed at or after `at` (microseconds), by user id. A password is set in
    /// the same transaction as its journal entry and with that entry's time, so this is what
    /// changed from the entry at `at` onwards.
    async fn credentials_since(&mut self, at: i64) -> StoreResult<Vec<CredentialRow>>;
    /// Ends the read transaction and closes the connection.
    async fn close(self: Box<Self>);
}

/// Loads rows into a freshly created database (see each engine's `begin_restore`). Nothing is
/// visible as a Kontor database until [`Loader::finish`] succeeds; dropping a loader without
/// finishing leaves nothing behind that looks usable.
#[async_trait]
pub trait Loader: Send {
    async fn records(&mut self, rows: &[LoadRecord]) -> StoreResult<()>;
    async fn uniques(&mut self, rows: &[UniqueRow]) -> StoreResult<()>;
    async fn journal(&mut self, rows: &[JournalRow]) -> StoreResult<()>;
    async fn counters(&mut self, rows: &[CounterRow]) -> StoreResult<()>;
    async fn credentials(&mut self, rows: &[CredentialRow]) -> StoreResult<()>;
    /// Applies changes that follow the loaded rows (point-in-time restore, catch-up).
    async fn apply(&mut self, changes: &Changes) -> StoreResult<()>;
    /// Builds the indexes, sets the journal head, and makes the database durable and visible,
    /// still at the archive's schema version: opening it as a store brings it up to date.
    async fn finish(self: Box<Self>) -> StoreResult<()>;
    /// Removes everything the loader created.
    async fn abandon(self: Box<Self>);
}

/// The effect of a run of journal entries on the tables, as [`Loader::apply`] takes it. The
/// caller reduces the entries to the final row of each record they touch.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    /// The entries themselves, in seq order.
    pub journal: Vec<JournalRow>,
    /// Every record the entries touched, `(entity, id)`: its row and unique values are replaced.
    pub touched: Vec<(String, String)>,
    /// The rows of touched records that still exist afterwards (the others were purged).
    pub records: Vec<LoadRecord>,
    /// The unique values those records hold.
    pub uniques: Vec<UniqueRow>,
    /// Purged records, whose journal images are scrubbed, `(entity, id)`.
    pub scrub: Vec<(String, String)>,
    /// Credentials set (replacing any earlier one of the same user).
    pub credentials: Vec<CredentialRow>,
    /// Users whose credential is removed (purged users).
    pub forget_credentials: Vec<String>,
    /// When set, the counters become exactly these.
    pub counters: Option<Vec<CounterRow>>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.journal.is_empty()
            && self.touched.is_empty()
            && self.credentials.is_empty()
            && self.forget_credentials.is_empty()
            && self.counters.is_none()
    }

    /// Touched ids grouped by entity.
    pub fn touched_by_entity(&self) -> std::collections::BTreeMap<&str, Vec<&str>> {
        let mut m: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (entity, id) in &self.touched {
            m.entry(entity.as_str()).or_default().push(id.as_str());
        }
        m
    }
}

/// Columns of the archived tables, in archive order.
pub const RECORD_COLUMNS: [&str; 9] = [
    "entity",
    "id",
    "owner_id",
    "created_at",
    "updated_at",
    "deleted_batch",
    "deleted_at",
    "deleted_by",
    "data",
];
pub const JOURNAL_COLUMNS: [&str; 12] = [
    "seq",
    "at",
    "actor",
    "origin",
    "batch",
    "entity",
    "record_id",
    "op",
    "owner_id",
    "before",
    "after",
    "scrubbed",
];

const SNAPSHOT_FACTS: &str = "SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_migrations), \
     (SELECT COALESCE(MAX(seq), 0) FROM journal), (SELECT COALESCE(MAX(at), 0) FROM journal), \
     (SELECT batch FROM journal WHERE seq = 1)";
const SNAPSHOT_JOURNAL: &str = "SELECT seq, at, actor, origin, batch, entity, record_id, op, \
     owner_id, before, after, scrubbed FROM journal WHERE seq > $1 AND seq <= $2 ORDER BY seq";

/// The snapshot's statements that differ by engine: JSON as text, and byte-order collation.
pub(crate) struct SnapshotSql {
    pub records: &'static str,
    pub counters: &'static str,
    pub credentials: &'static str,
    pub credentials_since: &'static str,
    pub live_records: &'static str,
}

/// The consumer of a snapshot stopped (it reports its own error).
fn consumer_gone() -> crate::StoreError {
    crate::StoreError::Other("the archive writer stopped".into())
}

/// Sends a full batch down the channel and starts a new one.
async fn flush<T: Send>(out: &Sender<Vec<T>>, buf: &mut Vec<T>, batch: usize) -> StoreResult<()> {
    let full = std::mem::replace(buf, Vec::with_capacity(batch));
    out.send(full).await.map_err(|_| consumer_gone())
}

/// Implements [`Snapshot`] over one sqlx connection already inside its read transaction.
macro_rules! snapshot_reader {
    ($name:ident, $conn:ty, $row:ty, $engine:literal, $sql:expr) => {
        pub struct $name {
            conn: $conn,
            seq: i64,
            at: i64,
            schema_version: i64,
            origin: Option<String>,
        }

        impl $name {
            async fn facts(mut conn: $conn) -> $crate::StoreResult<$name> {
                use sqlx::Row;
                let e = $crate::engine::db_err;
                let row: $row = sqlx::query($crate::bulk::SNAPSHOT_FACTS)
                    .fetch_one(&mut conn)
                    .await
                    .map_err(e)?;
                Ok($name {
                    schema_version: row.try_get(0).map_err(e)?,
                    seq: row.try_get(1).map_err(e)?,
                    at: row.try_get(2).map_err(e)?,
                    origin: row.try_get(3).map_err(e)?,
                    conn,
                })
            }
        }

        impl $name {
            /// A row of [`SnapshotSql::records`] or `live_records`.
            fn record_row(r: &$row) -> $crate::StoreResult<$crate::bulk::RecordRow> {
                use sqlx::Row;
                let e = $crate::engine::db_err;
                Ok($crate::bulk::RecordRow {
                    entity: r.try_get(0).map_err(e)?,
                    id: r.try_get(1).map_err(e)?,
                    owner_id: r.try_get(2).map_err(e)?,
                    created_at: r.try_get(3).map_err(e)?,
                    updated_at: r.try_get(4).map_err(e)?,
                    deleted_batch: r.try_get(5).map_err(e)?,
                    deleted_at: r.try_get(6).map_err(e)?,
                    deleted_by: r.try_get(7).map_err(e)?,
                    data: r.try_get(8).map_err(e)?,
                })
            }

            async fn credential_rows<'q, A>(
                &mut self,
                q: sqlx::query::Query<'q, <$row as sqlx::Row>::Database, A>,
            ) -> $crate::StoreResult<Vec<$crate::bulk::CredentialRow>>
            where
                A: sqlx::IntoArguments<'q, <$row as sqlx::Row>::Database> + 'q,
            {
                use sqlx::Row;
                let e = $crate::engine::db_err;
                let rows: Vec<$row> = q.fetch_all(&mut self.conn).await.map_err(e)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::bulk::CredentialRow {
                            user_id: r.try_get(0).map_err(e)?,
                            password_hash: r.try_get(1).map_err(e)?,
                            changed_at: r.try_get(2).map_err(e)?,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait::async_trait]
        impl $crate::bulk::Snapshot for $name {
            fn engine(&self) -> &'static str {
                $engine
            }
            fn seq(&self) -> i64 {
                self.seq
            }
            fn at(&self) -> i64 {
                self.at
            }
            fn schema_version(&self) -> i64 {
                self.schema_version
            }
            fn origin(&self) -> Option<&str> {
                self.origin.as_deref()
            }
            async fn records(
                &mut self,
                batch: usize,
                out: &tokio::sync::mpsc::Sender<Vec<$crate::bulk::RecordRow>>,
            ) -> $crate::StoreResult<()> {
                use futures_util::TryStreamExt;
                let e = $crate::engine::db_err;
                let sql: &$crate::bulk::SnapshotSql = &$sql;
                let mut rows = sqlx::query(sql.records).fetch(&mut self.conn);
                let mut buf = Vec::with_capacity(batch);
                while let Some(r) = rows.try_next().await.map_err(e)? {
                    buf.push($name::record_row(&r)?);
                    if buf.len() >= batch {
                        $crate::bulk::flush(out, &mut buf, batch).await?;
                    }
                }
                if !buf.is_empty() {
                    $crate::bulk::flush(out, &mut buf, batch).await?;
                }
                Ok(())
            }
            async fn journal(
                &mut self,
                after_seq: i64,
                batch: usize,
                out: &tokio::sync::mpsc::Sender<Vec<$crate::bulk::JournalRow>>,
            ) -> $crate::StoreResult<()> {
                use futures_util::TryStreamExt;
                use sqlx::Row;
                let e = $crate::engine::db_err;
                let mut rows = sqlx::query($crate::bulk::SNAPSHOT_JOURNAL)
                    .bind(after_seq)
                    .bind(self.seq)
                    .fetch(&mut self.conn);
                let mut buf = Vec::with_capacity(batch);
                while let Some(r) = rows.try_next().await.map_err(e)? {
                    buf.push($crate::bulk::JournalRow {
                        seq: r.try_get(0).map_err(e)?,
                        at: r.try_get(1).map_err(e)?,
                        actor: r.try_get(2).map_err(e)?,
                        origin: r.try_get(3).map_err(e)?,
                        batch: r.try_get(4).map_err(e)?,
                        entity: r.try_get(5).map_err(e)?,
                        record_id: r.try_get(6).map_err(e)?,
                        op: r.try_get(7).map_err(e)?,
                        owner_id: r.try_get(8).map_err(e)?,
                        before: r.try_get(9).map_err(e)?,
                        after: r.try_get(10).map_err(e)?,
                        scrubbed: r.try_get(11).map_err(e)?,
                    });
                    if buf.len() >= batch {
                        $crate::bulk::flush(out, &mut buf, batch).await?;
                    }
                }
                if !buf.is_empty() {
                    $crate::bulk::flush(out, &mut buf, batch).await?;
                }
                Ok(())
            }
            async fn live_records(
                &mut self,
                entity: &str,
            ) -> $crate::StoreResult<Vec<$crate::bulk::RecordRow>> {
                let e = $crate::engine::db_err;
                let sql: &$crate::bulk::SnapshotSql = &$sql;
                let rows: Vec<$row> = sqlx::query(sql.live_records)
                    .bind(entity)
                    .fetch_all(&mut self.conn)
                    .await
                    .map_err(e)?;
                rows.iter().map($name::record_row).collect()
            }
            async fn counters(&mut self) -> $crate::StoreResult<Vec<$crate::bulk::CounterRow>> {
                use sqlx::Row;
                let e = $crate::engine::db_err;
                let sql: &$crate::bulk::SnapshotSql = &$sql;
                let rows: Vec<$row> = sqlx::query(sql.counters)
                    .fetch_all(&mut self.conn)
                    .await
                    .map_err(e)?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::bulk::CounterRow {
                            name: r.try_get(0).map_err(e)?,
                            value: r.try_get(1).map_err(e)?,
                        })
                    })
                    .collect()
            }
            async fn credentials(
                &mut self,
            ) -> $crate::StoreResult<Vec<$crate::bulk::CredentialRow>> {
                // Before schema 2 the password hashes lived in the user records themselves.
                if self.schema_version() < 2 {
                    return Ok(Vec::new());
                }
                let sql: &$crate::bulk::SnapshotSql = &$sql;
                self.credential_rows(sqlx::query(sql.credentials)).await
            }
            async fn credentials_since(
                &mut self,
                at: i64,
            ) -> $crate::StoreResult<Vec<$crate::bulk::CredentialRow>> {
                if self.schema_version() < 2 {
                    return Ok(Vec::new());
                }
                let sql: &$crate::bulk::SnapshotSql = &$sql;
                self.credential_rows(sqlx::query(sql.credentials_since).bind(at))
                    .await
            }
            async fn close(mut self: Box<Self>) {
                use sqlx::Connection;
                let _ = sqlx::query("ROLLBACK").execute(&mut self.conn).await;
                let _ = self.conn.close().await;
            }
        }
    };
}
pub(crate) use snapshot_reader;

/// The part of [`Loader::apply`] both engines share, on the executor `$conn` (a connection or
/// a transaction): scrub purged records' images, set and forget passwords, and empty the
/// counters when the changes carry new ones (the caller then loads them).
macro_rules! apply_side_effects {
    ($conn:expr, $c:expr) => {{
        for (entity, id) in &$c.scrub {
            sqlx::query(crate::sql::SCRUB)
                .bind(entity)
                .bind(id)
                .execute($conn)
                .await
                .map_err(db_err)?;
        }
        for r in &$c.credentials {
            sqlx::query(crate::sql::SET_PASSWORD_HASH)
                .bind(&r.user_id)
                .bind(&r.password_hash)
                .bind(r.changed_at)
                .execute($conn)
                .await
                .map_err(db_err)?;
        }
        for user in &$c.forget_credentials {
            sqlx::query(crate::sql::REMOVE_PASSWORD_HASH)
                .bind(user)
                .execute($conn)
                .await
                .map_err(db_err)?;
        }
        if $c.counters.is_some() {
            sqlx::query("DELETE FROM counters")
                .execute($conn)
                .await
                .map_err(db_err)?;
        }
    }};
}

pub(crate) use apply_side_effects;
