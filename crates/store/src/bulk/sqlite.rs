//! Bulk access on SQLite. Snapshots read the file through a read-only connection that takes no
//! lock on the data directory, so they run beside a live server. Loads write a new file under a
//! temporary name with rollback journaling off (the file is thrown away on any failure), with
//! multi-row `INSERT`s and indexes built at the end, then switch it to WAL, fsync it and rename
//! it into place.

use super::{
    apply_side_effects, snapshot_reader, Changes, CounterRow, CredentialRow, JournalRow,
    LoadRecord, Loader, Snapshot, SnapshotSql, UniqueRow,
};
use crate::engine::db_err;
use crate::{StoreError, StoreResult};
use async_trait::async_trait;
use sqlx::query::Query;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection, Sqlite};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SQL: SnapshotSql = SnapshotSql {
    records: "SELECT entity, id, owner_id, created_at, updated_at, deleted_batch, deleted_at, \
              deleted_by, data FROM records ORDER BY entity, id",
    counters: "SELECT name, value FROM counters ORDER BY name",
    credentials: "SELECT user_id, password_hash, changed_at FROM credentials ORDER BY user_id",
    credentials_since: "SELECT user_id, password_hash, changed_at FROM credentials \
                        WHERE changed_at >= $1 ORDER BY user_id",
    live_records: "SELECT entity, id, owner_id, created_at, updated_at, deleted_batch, \
                   deleted_at, deleted_by, data FROM records \
                   WHERE entity = $1 AND deleted_batch IS NULL ORDER BY id",
};

snapshot_reader!(SqliteSnapshot, SqliteConnection, SqliteRow, "sqlite", SQL);

/// Opens a read-only snapshot of the database file at `path` (a live server may be writing it).
pub async fn open_snapshot(path: &Path) -> StoreResult<Box<dyn Snapshot>> {
    let opts = SqliteConnectOptions::new().read_only(true);
    let mut conn = connect_existing(path, opts).await?;
    sqlx::query("BEGIN")
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    Ok(Box::new(SqliteSnapshot::facts(conn).await?))
}

/// Connects to the existing database file at `path` with `opts` (waiting up to 10 s for locks).
async fn connect_existing(
    path: &Path,
    opts: SqliteConnectOptions,
) -> StoreResult<SqliteConnection> {
    let opts = opts.filename(path).busy_timeout(Duration::from_secs(10));
    SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))
}

/// The name a restore writes under until it is complete.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".restoring");
    PathBuf::from(name)
}

/// Starts loading a new database that will appear at `path` when the loader finishes. The
/// schema is created at `archive_version` (the archive's); opening the finished file with
/// [`crate::sqlite::SqliteStore::open`] migrates the loaded data to this Kontor's version.
/// Refuses an existing file.
pub async fn begin_restore(path: &Path, archive_version: i64) -> StoreResult<Box<dyn Loader>> {
    if path.exists() {
        return Err(StoreError::Other(format!(
            "{} already exists; restore into a new place",
            path.display()
        )));
    }
    let partial = partial_path(path);
    remove_with_sidecars(&partial);
    let opts = SqliteConnectOptions::new()
        .filename(&partial)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Off)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-65536")
        .pragma("locking_mode", "EXCLUSIVE");
    let mut conn = SqliteConnection::connect_with(&opts).await.map_err(|e| {
        StoreError::Unavailable(format!("cannot create {}: {e}", partial.display()))
    })?;
    let prepared = async {
        crate::sqlite::migrate_conn(&mut conn, Some(archive_version)).await?;
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
        )
        .fetch_all(&mut conn)
        .await
        .map_err(db_err)?;
        for (name, _) in &indexes {
            sqlx::query(&format!("DROP INDEX \"{name}\""))
                .execute(&mut conn)
                .await
                .map_err(db_err)?;
        }
        // One transaction for the whole load (there is no rollback journal: on failure the
        // file is thrown away).
        sqlx::query("BEGIN")
            .execute(&mut conn)
            .await
            .map_err(db_err)?;
        Ok::<_, StoreError>(indexes.into_iter().map(|(_, sql)| sql).collect())
    }
    .await;
    match prepared {
        Ok(indexes) => Ok(Box::new(SqliteLoader {
            conn,
            fresh: Some(Fresh {
                partial,
                path: path.to_path_buf(),
            }),
            indexes,
        })),
        Err(e) => {
            let _ = conn.close().await;
            remove_with_sidecars(&partial);
            Err(e)
        }
    }
}

fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

/// Applies journal entries to an existing Kontor database (catch-up after a move): one
/// transaction that holds the write lock until [`Loader::finish`] commits it. The caller holds
/// the data directory's lock, so no server runs on the file meanwhile. Only
/// [`Loader::apply`] is meant to be called.
pub async fn begin_catch_up(path: &Path) -> StoreResult<Box<dyn Loader>> {
    let opts = SqliteConnectOptions::new()
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let mut conn = connect_existing(path, opts).await?;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .map_err(db_err)?;
    Ok(Box::new(SqliteLoader {
        conn,
        fresh: None,
        indexes: Vec::new(),
    }))
}

pub struct SqliteLoader {
    conn: SqliteConnection,
    /// Set while loading a new file under its temporary name; `None` when catching up an
    /// existing database inside one transaction.
    fresh: Option<Fresh>,
    /// `CREATE INDEX` statements dropped before the load, run again before the first
    /// [`Loader::apply`] or by `finish`.
    indexes: Vec<String>,
}

struct Fresh {
    partial: PathBuf,
    path: PathBuf,
}

impl SqliteLoader {
    /// Builds the indexes dropped for the load, once.
    async fn build_indexes(&mut self) -> StoreResult<()> {
        for sql in std::mem::take(&mut self.indexes) {
            sqlx::query(&sql)
                .execute(&mut self.conn)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Deletes the rows of `table` whose `column` is one of `ids`, within one entity.
    async fn delete_ids(
        &mut self,
        table: &str,
        column: &str,
        entity: &str,
        ids: &[&str],
    ) -> StoreResult<()> {
        for chunk in ids.chunks(MAX_VALUES_PER_STATEMENT) {
            let sql = format!(
                "DELETE FROM {table} WHERE entity = ? AND {column} IN ({})",
                vec!["?"; chunk.len()].join(",")
            );
            let mut q = sqlx::query(&sql).bind(entity);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut self.conn).await.map_err(db_err)?;
        }
        Ok(())
    }
}

/// SQLite allows 32766 bound values per statement; stay well below.
const MAX_VALUES_PER_STATEMENT: usize = 8000;

type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments<'q>>;

/// Inserts rows with multi-row statements (the same statement text for every full chunk, so
/// the driver prepares it once), inside the loader's transaction.
async fn insert_many<T>(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[&str],
    rows: &[T],
    bind: impl for<'q> Fn(SqliteQuery<'q>, &'q T) -> SqliteQuery<'q>,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let per_statement = (MAX_VALUES_PER_STATEMENT / columns.len()).max(1);
    let full = multi_row_insert(table, columns, per_statement.min(rows.len()));
    let rest = multi_row_insert(table, columns, rows.len() % per_statement);
    for chunk in rows.chunks(per_statement) {
        let sql = if chunk.len() == per_statement.min(rows.len()) {
            full.as_str()
        } else {
            rest.as_str()
        };
        let mut q = sqlx::query(sql);
        for row in chunk {
            q = bind(q, row);
        }
        q.execute(&mut *conn).await.map_err(db_err)?;
    }
    Ok(())
}

fn multi_row_insert(table: &str, columns: &[&str], rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns.len()].join(","));
    format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(","),
        vec![one; rows].join(",")
    )
}

#[async_trait]
impl Loader for SqliteLoader {
    async fn records(&mut self, rows: &[LoadRecord]) -> StoreResult<()> {
        let mut cols: Vec<&str> = super::RECORD_COLUMNS.to_vec();
        cols.extend(["parent_id", "search"]);
        insert_many(&mut self.conn, "records", &cols, rows, |q, r| {
            q.bind(&r.row.entity)
                .bind(&r.row.id)
                .bind(&r.row.owner_id)
                .bind(r.row.created_at)
                .bind(r.row.updated_at)
                .bind(&r.row.deleted_batch)
                .bind(r.row.deleted_at)
                .bind(&r.row.deleted_by)
                .bind(&r.row.data)
                .bind(&r.parent_id)
                .bind(&r.search)
        })
        .await
    }

    async fn uniques(&mut self, rows: &[UniqueRow]) -> StoreResult<()> {
        insert_many(
            &mut self.conn,
            "uniques",
            &["entity", "key", "value", "record_id"],
            rows,
            |q, r| {
                q.bind(&r.entity)
                    .bind(&r.key)
                    .bind(&r.value)
                    .bind(&r.record_id)
            },
        )
        .await
    }

    async fn journal(&mut self, rows: &[JournalRow]) -> StoreResult<()> {
        insert_many(
            &mut self.conn,
            "journal",
            &super::JOURNAL_COLUMNS,
            rows,
            |q, r| {
                q.bind(r.seq)
                    .bind(r.at)
                    .bind(&r.actor)
                    .bind(&r.origin)
                    .bind(&r.batch)
                    .bind(&r.entity)
                    .bind(&r.record_id)
                    .bind(&r.op)
                    .bind(&r.owner_id)
                    .bind(&r.before)
                    .bind(&r.after)
                    .bind(r.scrubbed)
            },
        )
        .await
    }

    async fn counters(&mut self, rows: &[CounterRow]) -> StoreResult<()> {
        insert_many(
            &mut self.conn,
            "counters",
            &["name", "value"],
            rows,
            |q, r| q.bind(&r.name).bind(r.value),
        )
        .await
    }

    async fn credentials(&mut self, rows: &[CredentialRow]) -> StoreResult<()> {
        insert_many(
            &mut self.conn,
            "credentials",
            &["user_id", "password_hash", "changed_at"],
            rows,
            |q, r| q.bind(&r.user_id).bind(&r.password_hash).bind(r.changed_at),
        )
        .await
    }

    async fn apply(&mut self, c: &Changes) -> StoreResult<()> {
        self.build_indexes().await?;
        self.journal(&c.journal).await?;
        for (entity, ids) in c.touched_by_entity() {
            self.delete_ids("records", "id", entity, &ids).await?;
            self.delete_ids("uniques", "record_id", entity, &ids)
                .await?;
        }
        self.records(&c.records).await?;
        self.uniques(&c.uniques).await?;
        apply_side_effects!(&mut self.conn, c);
        if let Some(counters) = &c.counters {
            self.counters(counters).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<()> {
        if self.fresh.is_none() {
            let SqliteLoader { mut conn, .. } = *self;
            let committed = sqlx::query("COMMIT")
                .execute(&mut conn)
                .await
                .map_err(db_err);
            let _ = conn.close().await;
            return committed.map(|_| ());
        }
        let done = async {
            self.build_indexes().await?;
            sqlx::query("COMMIT")
                .execute(&mut self.conn)
                .await
                .map_err(db_err)?;
            let ok: String = sqlx::query_scalar("PRAGMA quick_check")
                .fetch_one(&mut self.conn)
                .await
                .map_err(db_err)?;
            if ok != "ok" {
                return Err(StoreError::Corrupt(format!(
                    "the restored database fails its integrity check: {ok}"
                )));
            }
            sqlx::query("PRAGMA locking_mode = NORMAL")
                .execute(&mut self.conn)
                .await
                .map_err(db_err)?;
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut self.conn)
                .await
                .map_err(db_err)?;
            Ok::<_, StoreError>(())
        }
        .await;
        let SqliteLoader { conn, fresh, .. } = *self;
        let closed = conn.close().await.map_err(db_err);
        let Some(Fresh { partial, path }) = fresh else {
            return done.and(closed);
        };
        let result = done.and(closed).and_then(|()| {
            durable_rename(&partial, &path).map_err(|e| {
                StoreError::Other(format!("cannot move the restored database into place: {e}"))
            })
        });
        if result.is_err() {
            remove_with_sidecars(&partial);
        }
        result
    }

    async fn abandon(self: Box<Self>) {
        let SqliteLoader {
            mut conn, fresh, ..
        } = *self;
        if fresh.is_none() {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
        }
        let _ = conn.close().await;
        if let Some(f) = fresh {
            remove_with_sidecars(&f.partial);
        }
    }
}

/// fsyncs the file, renames it, and fsyncs the directory, so the new name survives a crash
/// only with the complete content behind it.
fn durable_rename(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::File::open(from)?.sync_all()?;
    std::fs::rename(from, to)?;
    if let Some(dir) = to.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Runs SQLite's full `integrity_check` on a database file; the first problems are the error.
pub async fn integrity_check(path: &Path) -> StoreResult<()> {
    let opts = SqliteConnectOptions::new().filename(path).read_only(true);
    let mut conn = SqliteConnection::connect_with(&opts)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check(20)")
        .fetch_all(&mut conn)
        .await
        .map_err(db_err)?;
    let _ = conn.close().await;
    if problems.len() == 1 && problems[0] == "ok" {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "{} fails its integrity check: {}",
            path.display(),
            problems.join("; ")
        )))
    }
}
