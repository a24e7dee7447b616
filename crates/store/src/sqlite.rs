//! The embedded engine: one SQLite file in WAL mode with `synchronous=FULL`, so a write that was
//! acknowledged survives a crash. One writer connection (writes are serialised, as SQLite does
//! anyway) and a small pool of readers that never block it.

use crate::{
    image_text, FilterValue, JournalQuery, ListQuery, Session, Store, StoreError, StoreResult,
    TrashQuery, WriteTx,
};
use async_trait::async_trait;
use kontor_domain::journal::{JournalEntry, NewJournalEntry};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::record::{Deletion, Record};
use kontor_domain::time::{self, Timestamp};
use kontor_domain::{BatchId, Entity};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Arguments, Row, Sqlite, Transaction};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("../migrations/sqlite/0001_core.sql"))];

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) => {
            let msg = d.message().to_string();
            if d.is_unique_violation() || d.is_foreign_key_violation() || d.is_check_violation() {
                StoreError::Constraint(msg)
            } else if msg.contains("locked") || msg.contains("busy") {
                StoreError::Unavailable(msg)
            } else {
                StoreError::Other(msg)
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<SqliteStore> {
        let base = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        migrate(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        Ok(SqliteStore { writer, readers })
    }
}

async fn migrate(pool: &SqlitePool) -> StoreResult<()> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(db_err)?;
    let done: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await.map_err(db_err)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db_err)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
            .bind(version)
            .bind(time::to_micros(time::now()))
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        tracing::info!(version, "applied SQLite migration");
    }
    Ok(())
}

/// A bind value for dynamically built queries.
enum Arg {
    Text(String),
    Int(i64),
    Real(f64),
}

fn args_of(list: Vec<Arg>) -> StoreResult<SqliteArguments<'static>> {
    let mut a = SqliteArguments::default();
    for v in list {
        let r = match v {
            Arg::Text(s) => a.add(s),
            Arg::Int(i) => a.add(i),
            Arg::Real(f) => a.add(f),
        };
        r.map_err(|e| StoreError::Other(e.to_string()))?;
    }
    Ok(a)
}

const RECORD_COLUMNS: &str =
    "entity, id, owner_id, created_at, updated_at, deleted_batch, deleted_at, deleted_by, data";

fn record_from_row(row: &SqliteRow) -> StoreResult<Record> {
    let get_s = |c: &str| -> StoreResult<Option<String>> {
        row.try_get::<Option<String>, _>(c)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let get_i = |c: &str| -> StoreResult<Option<i64>> {
        row.try_get::<Option<i64>, _>(c)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    };
    let entity_name = get_s("entity")?.unwrap_or_default();
    let entity = Entity::from_str(&entity_name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let data_text = get_s("data")?.unwrap_or_default();
    let data = match serde_json::from_str::<Value>(&data_text) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "record data of {entity} is not a JSON object"
            )))
        }
    };
    let deleted = match get_s("deleted_batch")? {
        Some(b) => Some(Deletion {
            batch: BatchId::from_str(&b).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            at: time::from_micros(get_i("deleted_at")?.unwrap_or_default()),
            by: get_s("deleted_by")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Record {
        entity,
        id: get_s("id")?.unwrap_or_default(),
        owner_id: get_s("owner_id")?,
        created_at: time::from_micros(get_i("created_at")?.unwrap_or_default()),
        updated_at: time::from_micros(get_i("updated_at")?.unwrap_or_default()),
        deleted,
        data,
    })
}

fn journal_from_row(row: &SqliteRow) -> StoreResult<JournalEntry> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let s = |c: &str| -> StoreResult<String> {
        row.try_get::<String, _>(c)
            .map_err(|e| corrupt(e.to_string()))
    };
    let img = |c: &str| -> StoreResult<Option<Value>> {
        match row
            .try_get::<Option<String>, _>(c)
            .map_err(|e| corrupt(e.to_string()))?
        {
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| corrupt(e.to_string())),
            None => Ok(None),
        }
    };
    Ok(JournalEntry {
        seq: row.try_get("seq").map_err(|e| corrupt(e.to_string()))?,
        at: time::from_micros(row.try_get("at").map_err(|e| corrupt(e.to_string()))?),
        actor: s("actor")?,
        origin: s("origin")?.parse().map_err(corrupt)?,
        batch: s("batch")?
            .parse()
            .map_err(|e: uuid_err::Error| corrupt(e.to_string()))?,
        entity: s("entity")?
            .parse()
            .map_err(|e: kontor_domain::entity::UnknownEntity| corrupt(e.to_string()))?,
        record_id: s("record_id")?,
        op: s("op")?.parse().map_err(corrupt)?,
        owner_id: row
            .try_get("owner_id")
            .map_err(|e| corrupt(e.to_string()))?,
        before: img("before")?,
        after: img("after")?,
        scrubbed: row
            .try_get::<i64, _>("scrubbed")
            .map_err(|e| corrupt(e.to_string()))?
            != 0,
    })
}

mod uuid_err {
    pub type Error = <kontor_domain::BatchId as std::str::FromStr>::Err;
}

/// Appends `owner_id IN (...)` (or a false condition) for an owner filter.
fn push_owner_filter(sql: &mut String, args: &mut Vec<Arg>, column: &str, owners: &OwnerFilter) {
    match owners {
        OwnerFilter::Any => {}
        OwnerFilter::Nothing => sql.push_str(" AND 0"),
        OwnerFilter::OneOf(ids) => {
            if ids.is_empty() {
                sql.push_str(" AND 0");
                return;
            }
            sql.push_str(&format!(" AND {column} IN ("));
            for (i, id) in ids.iter().enumerate() {
                sql.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(Arg::Text(id.clone()));
            }
            sql.push(')');
        }
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn list_sql(q: &ListQuery) -> (String, Vec<Arg>) {
    let mut sql =
        format!("SELECT {RECORD_COLUMNS} FROM records WHERE entity = ? AND deleted_batch IS NULL");
    let mut args = vec![Arg::Text(q.entity.as_str().to_string())];
    push_owner_filter(&mut sql, &mut args, "owner_id", &q.owners);
    for (field, value) in &q.filters {
        // Field names come from the schema (checked by the core), never from raw input; quote
        // them anyway so a path cannot be injected.
        let path = format!("$.\"{}\"", field.replace('"', ""));
        match value {
            FilterValue::Null => {
                sql.push_str(" AND json_extract(data, ?) IS NULL");
                args.push(Arg::Text(path));
            }
            FilterValue::Text(t) => {
                sql.push_str(" AND json_extract(data, ?) = ?");
                args.push(Arg::Text(path));
                args.push(Arg::Text(t.clone()));
            }
            FilterValue::Number(n) => {
                sql.push_str(" AND json_extract(data, ?) = ?");
                args.push(Arg::Text(path));
                args.push(Arg::Real(*n));
            }
            FilterValue::Bool(b) => {
                sql.push_str(" AND json_extract(data, ?) = ?");
                args.push(Arg::Text(path));
                args.push(Arg::Int(i64::from(*b)));
            }
        }
    }
    if let Some(t) = &q.text {
        sql.push_str(" AND search LIKE ? ESCAPE '\\'");
        args.push(Arg::Text(format!("%{}%", escape_like(t))));
    }
    if let Some(c) = &q.after_id {
        sql.push_str(if q.descending {
            " AND id < ?"
        } else {
            " AND id > ?"
        });
        args.push(Arg::Text(c.clone()));
    }
    sql.push_str(if q.descending {
        " ORDER BY id DESC LIMIT ?"
    } else {
        " ORDER BY id ASC LIMIT ?"
    });
    args.push(Arg::Int(i64::from(q.limit)));
    (sql, args)
}

fn journal_sql(q: &JournalQuery) -> (String, Vec<Arg>) {
    let mut sql = String::from(
        "SELECT seq, at, actor, origin, batch, entity, record_id, op, owner_id, before, after, scrubbed FROM journal WHERE 1",
    );
    let mut args = Vec::new();
    fn eq(sql: &mut String, args: &mut Vec<Arg>, col: &str, v: String) {
        sql.push_str(&format!(" AND {col} = ?"));
        args.push(Arg::Text(v));
    }
    if let Some(e) = q.entity {
        eq(&mut sql, &mut args, "entity", e.as_str().into());
    }
    if let Some(r) = &q.record_id {
        eq(&mut sql, &mut args, "record_id", r.clone());
    }
    if let Some(o) = q.op {
        eq(&mut sql, &mut args, "op", o.as_str().into());
    }
    if let Some(a) = &q.actor {
        eq(&mut sql, &mut args, "actor", a.clone());
    }
    if let Some(o) = q.origin {
        eq(&mut sql, &mut args, "origin", o.as_str().into());
    }
    if let Some(b) = q.batch {
        eq(&mut sql, &mut args, "batch", b.to_string());
    }
    if let Some(f) = q.from {
        sql.push_str(" AND at >= ?");
        args.push(Arg::Int(time::to_micros(f)));
    }
    if let Some(t) = q.to {
        sql.push_str(" AND at <= ?");
        args.push(Arg::Int(time::to_micros(t)));
    }
    if let Some(groups) = &q.scopes {
        let mut parts = Vec::new();
        for g in groups.iter().filter(|g| !g.entities.is_empty()) {
            let mut part = String::from("(entity IN (");
            for (i, e) in g.entities.iter().enumerate() {
                part.push_str(if i == 0 { "?" } else { ", ?" });
                args.push(Arg::Text(e.as_str().into()));
            }
            part.push(')');
            if let Some(owners) = &g.owners {
                push_owner_filter(
                    &mut part,
                    &mut args,
                    "owner_id",
                    &OwnerFilter::OneOf(owners.clone()),
                );
            }
            part.push(')');
            parts.push(part);
        }
        if parts.is_empty() {
            sql.push_str(" AND 0");
        } else {
            sql.push_str(&format!(" AND ({})", parts.join(" OR ")));
        }
    }
    if let Some(c) = q.cursor {
        sql.push_str(if q.descending {
            " AND seq < ?"
        } else {
            " AND seq > ?"
        });
        args.push(Arg::Int(c));
    }
    sql.push_str(if q.descending {
        " ORDER BY seq DESC LIMIT ?"
    } else {
        " ORDER BY seq ASC LIMIT ?"
    });
    args.push(Arg::Int(i64::from(q.limit)));
    (sql, args)
}

fn trash_sql(q: &TrashQuery) -> (String, Vec<Arg>) {
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE deleted_batch IS NOT NULL");
    let mut args = Vec::new();
    if let Some(e) = q.entity {
        sql.push_str(" AND entity = ?");
        args.push(Arg::Text(e.as_str().into()));
    }
    if let Some(b) = q.batch {
        sql.push_str(" AND deleted_batch = ?");
        args.push(Arg::Text(b.to_string()));
    }
    push_owner_filter(&mut sql, &mut args, "owner_id", &q.owners);
    if let Some(t) = q.deleted_before {
        sql.push_str(" AND deleted_at < ?");
        args.push(Arg::Int(time::to_micros(t)));
    }
    if let Some((at, id)) = &q.cursor {
        sql.push_str(" AND (deleted_at < ? OR (deleted_at = ? AND id < ?))");
        let us = time::to_micros(*at);
        args.push(Arg::Int(us));
        args.push(Arg::Int(us));
        args.push(Arg::Text(id.clone()));
    }
    sql.push_str(" ORDER BY deleted_at DESC, id DESC LIMIT ?");
    args.push(Arg::Int(i64::from(q.limit)));
    (sql, args)
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
    }

    async fn begin(&self) -> StoreResult<Box<dyn WriteTx>> {
        let mut tx = self.writer.begin().await.map_err(db_err)?;
        let head_at: i64 = sqlx::query_scalar("SELECT at FROM journal_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let now = time::to_micros(time::now()).max(head_at);
        Ok(Box::new(SqliteTx {
            tx,
            now: time::from_micros(now),
        }))
    }

    async fn get(&self, entity: Entity, id: &str) -> StoreResult<Option<Record>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = ? AND id = ?"
        ))
        .bind(entity.as_str())
        .bind(id)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_err)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn list(&self, q: &ListQuery) -> StoreResult<Vec<Record>> {
        let (sql, args) = list_sql(q);
        let rows = sqlx::query_with(&sql, args_of(args)?)
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn trash(&self, q: &TrashQuery) -> StoreResult<Vec<Record>> {
        let (sql, args) = trash_sql(q);
        let rows = sqlx::query_with(&sql, args_of(args)?)
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn journal(&self, q: &JournalQuery) -> StoreResult<Vec<JournalEntry>> {
        let (sql, args) = journal_sql(q);
        let rows = sqlx::query_with(&sql, args_of(args)?)
            .fetch_all(&self.readers)
            .await
            .map_err(db_err)?;
        rows.iter().map(journal_from_row).collect()
    }

    async fn all_records(&self, entity: Entity) -> StoreResult<Vec<Record>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = ? ORDER BY id"
        ))
        .bind(entity.as_str())
        .fetch_all(&self.readers)
        .await
        .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn find_unique(
        &self,
        entity: Entity,
        key: &str,
        value: &str,
    ) -> StoreResult<Option<Record>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM records r JOIN uniques u ON u.entity = r.entity AND u.record_id = r.id \
             WHERE u.entity = ? AND u.key = ? AND u.value = ?",
            RECORD_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(entity.as_str())
        .bind(key)
        .bind(value)
        .fetch_optional(&self.readers)
        .await
        .map_err(db_err)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn journal_head(&self) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT seq FROM journal_head WHERE id = 1")
            .fetch_one(&self.readers)
            .await
            .map_err(db_err)
    }

    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(time::to_micros(s.created_at))
        .bind(time::to_micros(s.expires_at))
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT token_hash, user_id, created_at, expires_at FROM sessions \
             WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?",
        )
        .bind(token_hash)
        .bind(time::to_micros(now))
        .fetch_optional(&self.readers)
        .await
        .map_err(db_err)?;
        Ok(match row {
            Some(r) => Some(Session {
                token_hash: r.try_get("token_hash").map_err(db_err)?,
                user_id: r.try_get("user_id").map_err(db_err)?,
                created_at: time::from_micros(r.try_get("created_at").map_err(db_err)?),
                expires_at: time::from_micros(r.try_get("expires_at").map_err(db_err)?),
            }),
            None => None,
        })
    }

    async fn revoke_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(time::to_micros(time::now()))
        .bind(token_hash)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL")
            .bind(time::to_micros(time::now()))
            .bind(user_id)
            .execute(&self.writer)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now_us = time::to_micros(now);
        let until = now_us + i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX / 2);
        let taken = sqlx::query(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at < ?",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(now_us)
        .execute(&self.writer)
        .await
        .map_err(db_err)?;
        Ok(taken.rows_affected() > 0)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.readers)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.readers.close().await;
        // Fold the WAL back into the main file so the database is one self-contained file.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await
        {
            tracing::warn!(error = %e, "WAL checkpoint at close failed");
        }
        self.writer.close().await;
    }
}

struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    now: Timestamp,
}

#[async_trait]
impl WriteTx for SqliteTx {
    async fn get(&mut self, entity: Entity, id: &str) -> StoreResult<Option<Record>> {
        let row = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = ? AND id = ?"
        ))
        .bind(entity.as_str())
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn put(
        &mut self,
        rec: &Record,
        parent_id: Option<&str>,
        search: &str,
    ) -> StoreResult<()> {
        let data =
            serde_json::to_string(&rec.data).map_err(|e| StoreError::Other(e.to_string()))?;
        sqlx::query(
            "INSERT INTO records (entity, id, owner_id, parent_id, created_at, updated_at, deleted_batch, deleted_at, deleted_by, search, data) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (entity, id) DO UPDATE SET owner_id = excluded.owner_id, parent_id = excluded.parent_id, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_batch = excluded.deleted_batch, \
             deleted_at = excluded.deleted_at, deleted_by = excluded.deleted_by, search = excluded.search, data = excluded.data",
        )
        .bind(rec.entity.as_str())
        .bind(&rec.id)
        .bind(&rec.owner_id)
        .bind(parent_id)
        .bind(time::to_micros(rec.created_at))
        .bind(time::to_micros(rec.updated_at))
        .bind(rec.deleted.as_ref().map(|d| d.batch.to_string()))
        .bind(rec.deleted.as_ref().map(|d| time::to_micros(d.at)))
        .bind(rec.deleted.as_ref().map(|d| d.by.clone()))
        .bind(search)
        .bind(data)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn remove(&mut self, entity: Entity, id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM records WHERE entity = ? AND id = ?")
            .bind(entity.as_str())
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        sqlx::query("DELETE FROM uniques WHERE record_id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn children(&mut self, parent_id: &str) -> StoreResult<Vec<Record>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE parent_id = ? AND deleted_batch IS NULL ORDER BY entity, id"
        ))
        .bind(parent_id)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn deleted_in_batch(&mut self, batch: BatchId) -> StoreResult<Vec<Record>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE deleted_batch = ? ORDER BY entity, id"
        ))
        .bind(batch.to_string())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn live_records(&mut self, entity: Entity) -> StoreResult<Vec<Record>> {
        let rows = sqlx::query(&format!(
            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = ? AND deleted_batch IS NULL ORDER BY id"
        ))
        .bind(entity.as_str())
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        rows.iter().map(record_from_row).collect()
    }

    async fn unique_holder(
        &mut self,
        entity: Entity,
        key: &str,
        value: &str,
    ) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT record_id FROM uniques WHERE entity = ? AND key = ? AND value = ?",
        )
        .bind(entity.as_str())
        .bind(key)
        .bind(value)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)
    }

    async fn set_uniques(
        &mut self,
        entity: Entity,
        id: &str,
        values: &[(String, String)],
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM uniques WHERE record_id = ?")
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        for (key, value) in values {
            sqlx::query("INSERT INTO uniques (entity, key, value, record_id) VALUES (?, ?, ?, ?)")
                .bind(entity.as_str())
                .bind(key)
                .bind(value)
                .bind(id)
                .execute(&mut *self.tx)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.now
    }

    async fn append(&mut self, entries: Vec<NewJournalEntry>) -> StoreResult<Vec<JournalEntry>> {
        if entries.is_empty() {
            return Ok(vec![]);
        }
        let n = i64::try_from(entries.len()).map_err(|e| StoreError::Other(e.to_string()))?;
        let at = time::to_micros(self.now);
        let last: i64 = sqlx::query_scalar(
            "UPDATE journal_head SET seq = seq + ?, at = MAX(at, ?) WHERE id = 1 RETURNING seq",
        )
        .bind(n)
        .bind(at)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)?;
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            let seq = last - n + 1 + i as i64;
            sqlx::query(
                "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, owner_id, before, after) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(seq)
            .bind(at)
            .bind(&e.actor)
            .bind(e.origin.as_str())
            .bind(e.batch.to_string())
            .bind(e.entity.as_str())
            .bind(&e.record_id)
            .bind(e.op.as_str())
            .bind(&e.owner_id)
            .bind(image_text(&e.before))
            .bind(image_text(&e.after))
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
            out.push(JournalEntry {
                seq,
                at: self.now,
                actor: e.actor,
                origin: e.origin,
                batch: e.batch,
                entity: e.entity,
                record_id: e.record_id,
                op: e.op,
                owner_id: e.owner_id,
                before: e.before,
                after: e.after,
                scrubbed: false,
            });
        }
        Ok(out)
    }

    async fn journal(&mut self, q: &JournalQuery) -> StoreResult<Vec<JournalEntry>> {
        let (sql, args) = journal_sql(q);
        let rows = sqlx::query_with(&sql, args_of(args)?)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(db_err)?;
        rows.iter().map(journal_from_row).collect()
    }

    async fn scrub(&mut self, entity: Entity, id: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE journal SET before = NULL, after = NULL, scrubbed = 1 WHERE entity = ? AND record_id = ?",
        )
        .bind(entity.as_str())
        .bind(id)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn next_counter(&mut self, name: &str) -> StoreResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO counters (name, value) VALUES (?, 1) \
             ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
        )
        .bind(name)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_err)
    }
}
