//! The SQL both engines run, built in one place. Statements use `$N` placeholders, which SQLite
//! and PostgreSQL both accept; the few real differences (JSON access, `MAX` vs `GREATEST`, row
//! locks) are spelled out by [`Dialect`]. Engines only bind [`Arg`]s, execute, and decode rows
//! through [`RowAccess`].

use crate::{JournalQuery, StoreError, StoreResult, TrashQuery};
use kontor_domain::journal::{JournalEntry, NewJournalEntry};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::record::{Deletion, Record};
use kontor_domain::time;
use kontor_domain::{BatchId, Entity};
use serde_json::Value;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bind value.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
}

/// A statement and its arguments, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: String,
    pub args: Vec<Arg>,
}

/// Builds SQL with numbered placeholders.
pub(crate) struct Builder {
    sql: String,
    args: Vec<Arg>,
    /// Placeholders are `?`, bound in the order they appear (see [`Builder::in_order`]).
    anonymous: bool,
}

impl Builder {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Builder {
            sql: sql.into(),
            args: Vec::new(),
            anonymous: false,
        }
    }
    /// A builder for statements with thousands of parameters, each placeholder used once and in
    /// order. On SQLite they are anonymous `?`: binding a numbered placeholder makes SQLite
    /// look its name up in a list, which costs time proportional to the count, per parameter.
    fn in_order(dialect: Dialect, sql: impl Into<String>) -> Self {
        Builder {
            anonymous: dialect == Dialect::Sqlite,
            ..Builder::new(sql)
        }
    }
    /// Appends a placeholder for `arg` and returns its text (`$3`, or `?`).
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        if self.anonymous {
            "?".into()
        } else {
            format!("${}", self.args.len())
        }
    }
    pub(crate) fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }
    pub(crate) fn text(&mut self, s: impl Into<String>) -> String {
        self.arg(Arg::Text(s.into()))
    }
    pub(crate) fn int(&mut self, i: i64) -> String {
        self.arg(Arg::Int(i))
    }
    /// ` AND col IN ($a, $b)`, or a false condition for an empty list; binds, does not push.
    fn in_list_sql(&mut self, col: &str, values: &[String]) -> String {
        if values.is_empty() {
            return " AND 1 = 0".into();
        }
        let ph: Vec<String> = values.iter().map(|v| self.text(v.clone())).collect();
        format!(" AND {col} IN ({})", ph.join(", "))
    }
    fn in_list(&mut self, col: &str, values: &[String]) {
        let s = self.in_list_sql(col, values);
        self.push(&s);
    }
    pub(crate) fn owners(&mut self, col: &str, f: &OwnerFilter) {
        match f {
            OwnerFilter::Any => {}
            OwnerFilter::Nothing => self.push(" AND 1 = 0"),
            OwnerFilter::OneOf(ids) => self.in_list(col, ids),
        }
    }
    pub(crate) fn done(self) -> Stmt {
        Stmt {
            sql: self.sql,
            args: self.args,
        }
    }
}

pub fn stmt(sql: &str, args: Vec<Arg>) -> Stmt {
    Stmt {
        sql: sql.to_string(),
        args,
    }
}

impl Dialect {
    /// The record-data column as text, in a SELECT list.
    fn data_col(self) -> &'static str {
        match self {
            Dialect::Sqlite => "data",
            Dialect::Postgres => "data::text AS data",
        }
    }

    pub(crate) fn record_columns(self) -> String {
        format!(
            "entity, id, owner_id, created_at, updated_at, deleted_batch, deleted_at, deleted_by, {}",
            self.data_col()
        )
    }

    pub fn journal(self, q: &JournalQuery) -> Stmt {
        let mut b = Builder::new(
            "SELECT seq, at, actor, origin, batch, entity, record_id, op, owner_id, before, after, scrubbed \
             FROM journal WHERE 1 = 1",
        );
        let eq = |b: &mut Builder, col: &str, v: String| {
            let p = b.text(v);
            b.push(&format!(" AND {col} = {p}"));
        };
        if let Some(e) = q.entity {
            eq(&mut b, "entity", e.as_str().into());
        }
        if let Some(r) = &q.record_id {
            eq(&mut b, "record_id", r.clone());
        }
        if let Some(o) = q.op {
            eq(&mut b, "op", o.as_str().into());
        }
        if let Some(a) = &q.actor {
            eq(&mut b, "actor", a.clone());
        }
        if let Some(o) = q.origin {
            eq(&mut b, "origin", o.as_str().into());
        }
        if let Some(batch) = q.batch {
            eq(&mut b, "batch", batch.to_string());
        }
        if let Some(f) = q.from {
            let p = b.int(time::to_micros(f));
            b.push(&format!(" AND at >= {p}"));
        }
        if let Some(t) = q.to {
            let p = b.int(time::to_micros(t));
            b.push(&format!(" AND at <= {p}"));
        }
        if let Some(groups) = &q.scopes {
            let mut parts = Vec::new();
            for g in groups.iter().filter(|g| !g.entities.is_empty()) {
                let names: Vec<String> =
                    g.entities.iter().map(|e| e.as_str().to_string()).collect();
                let entities = b.in_list_sql("entity", &names);
                let owners = match &g.owners {
                    Some(o) => b.in_list_sql("owner_id", o),
                    None => String::new(),
                };
                parts.push(format!("(1 = 1{entities}{owners})"));
            }
            if parts.is_empty() {
                b.push(" AND 1 = 0");
            } else {
                b.push(&format!(" AND ({})", parts.join(" OR ")));
            }
        }
        if let Some(c) = q.cursor {
            let p = b.int(c);
            b.push(&format!(
                " AND seq {} {p}",
                if q.descending { "<" } else { ">" }
            ));
        }
        let l = b.int(i64::from(q.limit));
        b.push(&format!(
            " ORDER BY seq {} LIMIT {l}",
            if q.descending { "DESC" } else { "ASC" }
        ));
        b.done()
    }

    pub fn trash(self, q: &TrashQuery) -> Stmt {
        let mut b = Builder::new(format!(
            "SELECT {} FROM records WHERE deleted_batch IS NOT NULL",
            self.record_columns()
        ));
        if let Some(e) = q.entity {
            let p = b.text(e.as_str());
            b.push(&format!(" AND entity = {p}"));
        }
        if let Some(batch) = q.batch {
            let p = b.text(batch.to_string());
            b.push(&format!(" AND deleted_batch = {p}"));
        }
        b.owners("owner_id", &q.owners);
        if let Some(t) = q.deleted_before {
            let p = b.int(time::to_micros(t));
            b.push(&format!(" AND deleted_at < {p}"));
        }
        if let Some((at, id)) = &q.cursor {
            let us = b.int(time::to_micros(*at));
            let idp = b.text(id.clone());
            b.push(&format!(
                " AND (deleted_at < {us} OR (deleted_at = {us} AND id < {idp}))"
            ));
        }
        let l = b.int(i64::from(q.limit));
        b.push(&format!(" ORDER BY deleted_at DESC, id DESC LIMIT {l}"));
        b.done()
    }

    pub fn get(self, entity: Entity, id: &str) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE entity = $1 AND id = $2",
                self.record_columns()
            ),
            vec![Arg::Text(entity.as_str().into()), Arg::Text(id.into())],
        )
    }

    /// Every record of an entity, live or deleted.
    pub fn all_records(self, entity: Entity) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE entity = $1 ORDER BY id",
                self.record_columns()
            ),
            vec![Arg::Text(entity.as_str().into())],
        )
    }

    /// `(id, external_id, in the bin)` of an entity's records that have an `external_id`:
    /// what an import needs to match records, without their data.
    pub fn external_ids(self, entity: Entity, after: &str, limit: u32) -> Stmt {
        let ext = match self {
            Dialect::Sqlite => "json_extract(data, '$.external_id')",
            Dialect::Postgres => "(data ->> 'external_id')",
        };
        stmt(
            &format!(
                "SELECT id, {ext} AS external_id, \
                 CAST(CASE WHEN deleted_batch IS NULL THEN 0 ELSE 1 END AS BIGINT) AS deleted \
                 FROM records WHERE entity = $1 AND id > $2 AND {ext} IS NOT NULL ORDER BY id LIMIT $3"
            ),
            vec![
                Arg::Text(entity.as_str().into()),
                Arg::Text(after.into()),
                Arg::Int(i64::from(limit)),
            ],
        )
    }

    /// A page of an entity's records after id `after` (data migrations).
    pub fn records_page(self, entity: Entity, after: &str, limit: i64) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE entity = $1 AND id > $2 ORDER BY id LIMIT $3",
                self.record_columns()
            ),
            vec![
                Arg::Text(entity.as_str().into()),
                Arg::Text(after.into()),
                Arg::Int(limit),
            ],
        )
    }

    /// Replaces a record's data only (data migrations).
    pub fn set_data(self, rec: &Record) -> StoreResult<Stmt> {
        let data =
            serde_json::to_string(&rec.data).map_err(|e| StoreError::Other(e.to_string()))?;
        let cast = match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "::jsonb",
        };
        Ok(stmt(
            &format!("UPDATE records SET data = $1{cast} WHERE entity = $2 AND id = $3"),
            vec![
                Arg::Text(data),
                Arg::Text(rec.entity.as_str().into()),
                Arg::Text(rec.id.clone()),
            ],
        ))
    }

    /// Every invoice's id and currency (data migrations).
    pub fn invoice_currencies(self) -> Stmt {
        let col = match self {
            Dialect::Sqlite => "json_extract(data, '$.currency')",
            Dialect::Postgres => "(data ->> 'currency')",
        };
        stmt(
            &format!("SELECT id, {col} AS currency FROM records WHERE entity = 'invoices'"),
            vec![],
        )
    }

    pub fn live_records(self, entity: Entity) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE entity = $1 AND deleted_batch IS NULL ORDER BY id",
                self.record_columns()
            ),
            vec![Arg::Text(entity.as_str().into())],
        )
    }

    pub fn children(self, parent_id: &str) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE parent_id = $1 AND deleted_batch IS NULL ORDER BY entity, id",
                self.record_columns()
            ),
            vec![Arg::Text(parent_id.into())],
        )
    }

    pub fn deleted_in_batch(self, batch: BatchId) -> Stmt {
        stmt(
            &format!(
                "SELECT {} FROM records WHERE deleted_batch = $1 ORDER BY entity, id",
                self.record_columns()
            ),
            vec![Arg::Text(batch.to_string())],
        )
    }

    pub fn find_unique(self, entity: Entity, key: &str, value: &str) -> Stmt {
        let cols: Vec<String> = self
            .record_columns()
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect();
        stmt(
            &format!(
                "SELECT {} FROM records r JOIN uniques u ON u.entity = r.entity AND u.record_id = r.id \
                 WHERE u.entity = $1 AND u.key = $2 AND u.value = $3",
                cols.join(", ")
            ),
            vec![
                Arg::Text(entity.as_str().into()),
                Arg::Text(key.into()),
                Arg::Text(value.into()),
            ],
        )
    }

    pub fn put(self, rec: &Record, parent_id: Option<&str>, search: &str) -> StoreResult<Stmt> {
        Ok(self.put_rows(vec![put_row(rec, parent_id, search)?]))
    }

    /// One multi-row upsert of record rows made by [`put_row`]. No two rows may name the same
    /// record (PostgreSQL refuses to update one row twice in a statement).
    pub fn put_rows(self, rows: Vec<[Arg; 11]>) -> Stmt {
        let mut b = Builder::in_order(
            self,
            "INSERT INTO records (entity, id, owner_id, parent_id, created_at, updated_at, deleted_batch, deleted_at, deleted_by, search, data) VALUES ",
        );
        for (i, row) in rows.into_iter().enumerate() {
            let mut ph = row.map(|a| b.arg(a));
            if self == Dialect::Postgres {
                ph[10].push_str("::jsonb");
            }
            if i > 0 {
                b.push(", ");
            }
            b.push(&format!("({})", ph.join(", ")));
        }
        b.push(
            " ON CONFLICT (entity, id) DO UPDATE SET owner_id = excluded.owner_id, parent_id = excluded.parent_id, \
             created_at = excluded.created_at, updated_at = excluded.updated_at, deleted_batch = excluded.deleted_batch, \
             deleted_at = excluded.deleted_at, deleted_by = excluded.deleted_by, search = excluded.search, data = excluded.data",
        );
        b.done()
    }

    /// Records of one entity (live or deleted) with any of these ids.
    pub fn get_many(self, entity: Entity, ids: &[String]) -> Stmt {
        let mut b = Builder::in_order(
            self,
            format!(
                "SELECT {} FROM records WHERE entity = ",
                self.record_columns()
            ),
        );
        let e = b.text(entity.as_str());
        b.push(&e);
        b.in_list("id", ids);
        b.done()
    }

    /// One multi-row INSERT for consecutive journal entries starting at `first_seq`.
    pub fn insert_journal(self, first_seq: i64, at: i64, entries: Vec<NewJournalEntry>) -> Stmt {
        let mut b = Builder::in_order(
            self,
            "INSERT INTO journal (seq, at, actor, origin, batch, entity, record_id, op, owner_id, before, after) VALUES ",
        );
        for (i, e) in entries.into_iter().enumerate() {
            let row = [
                Arg::Int(first_seq + i as i64),
                Arg::Int(at),
                Arg::Text(e.actor),
                Arg::Text(e.origin.as_str().into()),
                Arg::Text(e.batch.to_string()),
                Arg::Text(e.entity.as_str().into()),
                Arg::Text(e.record_id),
                Arg::Text(e.op.as_str().into()),
                Arg::OptText(e.owner_id),
                Arg::OptText(e.before),
                Arg::OptText(e.after),
            ]
            .map(|a| b.arg(a));
            if i > 0 {
                b.push(", ");
            }
            b.push(&format!("({})", row.join(", ")));
        }
        b.done()
    }
}

/// Rows per multi-row statement (records: 11 parameters each; journal: 11; uniques: 4) and ids
/// per `IN` list: the largest is well under both engines' parameter limits. Any count is sent
/// as statements of these sizes only, so a connection prepares a handful of shapes per table
/// and keeps them cached, instead of a new statement for every count.
pub const STATEMENT_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// How `n` rows are split into statements: as many of the largest size as fit, then the next.
pub fn statement_sizes(n: usize) -> impl Iterator<Item = usize> {
    let mut left = n;
    STATEMENT_ROWS.into_iter().flat_map(move |size| {
        let count = left / size;
        left %= size;
        std::iter::repeat_n(size, count)
    })
}

/// Splits items into runs of [`statement_sizes`].
pub fn statement_chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    statement_sizes(items.len()).map(move |size| {
        let (head, tail) = rest.split_at(size);
        rest = tail;
        head
    })
}

/// The parameters of one `records` row, in [`Dialect::put_rows`] order.
pub fn put_row(rec: &Record, parent_id: Option<&str>, search: &str) -> StoreResult<[Arg; 11]> {
    let data = serde_json::to_string(&rec.data).map_err(|e| StoreError::Other(e.to_string()))?;
    Ok([
        Arg::Text(rec.entity.as_str().into()),
        Arg::Text(rec.id.clone()),
        Arg::OptText(rec.owner_id.clone()),
        Arg::OptText(parent_id.map(str::to_string)),
        Arg::Int(time::to_micros(rec.created_at)),
        Arg::Int(time::to_micros(rec.updated_at)),
        Arg::OptText(rec.deleted.as_ref().map(|d| d.batch.to_string())),
        Arg::OptInt(rec.deleted.as_ref().map(|d| time::to_micros(d.at))),
        Arg::OptText(rec.deleted.as_ref().map(|d| d.by.clone())),
        Arg::Text(search.into()),
        Arg::Text(data),
    ])
}

/// The holders of any of these values of one unique key: rows `value`, `record_id`.
pub fn unique_holders(dialect: Dialect, entity: Entity, key: &str, values: &[String]) -> Stmt {
    let mut b = Builder::in_order(
        dialect,
        "SELECT value, record_id FROM uniques WHERE entity = ",
    );
    let e = b.text(entity.as_str());
    let k = b.text(key);
    b.push(&format!("{e} AND key = {k}"));
    b.in_list("value", values);
    b.done()
}

/// Forgets the unique values of these records.
pub fn remove_uniques_of(dialect: Dialect, ids: &[String]) -> Stmt {
    let mut b = Builder::in_order(dialect, "DELETE FROM uniques WHERE 1 = 1");
    b.in_list("record_id", ids);
    b.done()
}

/// One multi-row insert of unique values: `(entity, key, value, record_id)`.
pub fn insert_uniques(dialect: Dialect, rows: &[(Entity, String, String, String)]) -> Stmt {
    let mut b = Builder::in_order(
        dialect,
        "INSERT INTO uniques (entity, key, value, record_id) VALUES ",
    );
    for (i, (entity, key, value, id)) in rows.iter().enumerate() {
        let ph = [
            Arg::Text(entity.as_str().into()),
            Arg::Text(key.clone()),
            Arg::Text(value.clone()),
            Arg::Text(id.clone()),
        ]
        .map(|a| b.arg(a));
        if i > 0 {
            b.push(", ");
        }
        b.push(&format!("({})", ph.join(", ")));
    }
    b.done()
}

/// Reads and locks the journal head at the start of a write transaction on an engine shared by
/// several nodes (PostgreSQL): the row stays locked until commit, so writers on every node
/// serialise here, which keeps `seq` gap-free and totally ordered across the cluster.
pub const LOCK_HEAD: &str =
    "SELECT seq, at, schema_version, read_only FROM journal_head WHERE id = 1 FOR UPDATE";
/// The database's freeze (see [`crate::read_only`]): on the head row where the head is shared,
/// in `database_state` where it lives in memory.
pub const SET_READ_ONLY_HEAD: &str = "UPDATE journal_head SET read_only = $1 WHERE id = 1";
pub const READ_ONLY_HEAD: &str = "SELECT read_only FROM journal_head WHERE id = 1";
pub const SET_READ_ONLY_STATE: &str = "UPDATE database_state SET read_only = $1 WHERE id = 1";
pub const READ_ONLY_STATE: &str = "SELECT read_only FROM database_state WHERE id = 1";
/// Allocates `$1` seqs and records the time `$2`, returning the last seq allocated.
pub const ADVANCE_HEAD: &str =
    "UPDATE journal_head SET seq = seq + $1, at = GREATEST(at, $2) WHERE id = 1 RETURNING seq";
pub const BUMP_SCHEMA_VERSION: &str =
    "UPDATE journal_head SET schema_version = schema_version + 1 WHERE id = 1";
/// The head as the journal itself records it, for engines that keep the head in memory: the
/// journal's last seq and time. Each `MAX` is its own subquery: SQLite answers a lone
/// `MAX` of an indexed column from the index, but two in one query scan the whole journal
/// (40 ms at a million entries, paid by every search before it was split).
pub const HEAD_FROM_JOURNAL: &str = "SELECT COALESCE((SELECT MAX(seq) FROM journal), 0) AS seq, \
     COALESCE((SELECT MAX(at) FROM journal), 0) AS at";
pub const HEAD_SEQ: &str = "SELECT seq FROM journal_head WHERE id = 1";
pub const REMOVE_RECORD: &str = "DELETE FROM records WHERE entity = $1 AND id = $2";
pub const REMOVE_UNIQUES: &str = "DELETE FROM uniques WHERE record_id = $1";
pub const UNIQUE_HOLDER: &str =
    "SELECT record_id FROM uniques WHERE entity = $1 AND key = $2 AND value = $3";
pub const INSERT_UNIQUE: &str =
    "INSERT INTO uniques (entity, key, value, record_id) VALUES ($1, $2, $3, $4)";
pub const SCRUB: &str =
    "UPDATE journal SET before = NULL, after = NULL, scrubbed = 1 WHERE entity = $1 AND record_id = $2";
pub const NEXT_COUNTER: &str = "INSERT INTO counters (name, value) VALUES ($1, 1) \
     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value";
pub const CREATE_SESSION: &str =
    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
pub const GET_SESSION: &str = "SELECT token_hash, user_id, created_at, expires_at FROM sessions \
     WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2";
pub const REVOKE_SESSION: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
pub const REVOKE_USER_SESSIONS: &str =
    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL";
/// Forgets sessions that expired or were revoked before `$1`.
pub const PRUNE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1";
/// Takes a login slot for key `$1` at `$2` unless `$4` attempts are failed or in flight; a window
/// that started at or before `$3` starts afresh. Every SET expression reads the old row, so
/// `granted` and `in_flight` agree.
pub const RESERVE_LOGIN_SLOT: &str = "INSERT INTO login_limits (key, window_start, failures, in_flight, granted) \
     VALUES ($1, $2, 0, 1, 1) ON CONFLICT (key) DO UPDATE SET \
     granted = CASE WHEN login_limits.window_start <= $3 OR login_limits.failures + login_limits.in_flight < $4 THEN 1 ELSE 0 END, \
     in_flight = CASE WHEN login_limits.window_start <= $3 THEN 1 \
                      WHEN login_limits.failures + login_limits.in_flight < $4 THEN login_limits.in_flight + 1 \
                      ELSE login_limits.in_flight END, \
     failures = CASE WHEN login_limits.window_start <= $3 THEN 0 ELSE login_limits.failures END, \
     window_start = CASE WHEN login_limits.window_start <= $3 THEN $2 ELSE login_limits.window_start END \
     RETURNING granted, failures, window_start";
/// Gives back a slot of key `$1`: `$2` = 1 counts a failure, `$3` = 1 clears the failures.
pub const FINISH_LOGIN_ATTEMPT: &str = "UPDATE login_limits SET \
     in_flight = CASE WHEN in_flight > 0 THEN in_flight - 1 ELSE 0 END, \
     failures = CASE WHEN $3 = 1 THEN 0 ELSE failures + $2 END WHERE key = $1";
pub const PRUNE_LOGIN_LIMITS: &str =
    "DELETE FROM login_limits WHERE window_start < $1 AND in_flight = 0";
pub const GET_PASSWORD_HASH: &str = "SELECT password_hash FROM credentials WHERE user_id = $1";
pub const SET_PASSWORD_HASH: &str = "INSERT INTO credentials (user_id, password_hash, changed_at) \
     VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET \
     password_hash = excluded.password_hash, changed_at = excluded.changed_at";
/// Journal images of user records, in seq order (data migrations).
pub const USER_IMAGES: &str = "SELECT seq, at, entity, record_id, before, after FROM journal \
     WHERE entity = 'users' AND scrubbed = 0 ORDER BY seq";

/// A page of journal images of these entities after `after_seq` (data migrations).
pub fn images_page(entities: &[Entity], after_seq: i64, limit: i64) -> Stmt {
    let mut b = Builder::new(
        "SELECT seq, at, entity, record_id, before, after FROM journal WHERE scrubbed = 0",
    );
    let names: Vec<String> = entities.iter().map(|e| e.as_str().to_string()).collect();
    b.in_list("entity", &names);
    let s = b.int(after_seq);
    let l = b.int(limit);
    b.push(&format!(" AND seq > {s} ORDER BY seq LIMIT {l}"));
    b.done()
}

/// Replaces the images of one journal row (data migrations only; the journal is otherwise
/// append-only).
pub fn set_images(row: &crate::data_migrations::ImageRow) -> Stmt {
    stmt(
        "UPDATE journal SET before = $1, after = $2 WHERE seq = $3",
        vec![
            Arg::OptText(row.before.as_ref().map(Value::to_string)),
            Arg::OptText(row.after.as_ref().map(Value::to_string)),
            Arg::Int(row.seq),
        ],
    )
}

pub fn image_row(row: &impl RowAccess) -> StoreResult<crate::data_migrations::ImageRow> {
    let img = |c: &str| -> StoreResult<Option<Value>> {
        row.text(c)?
            .map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()
    };
    Ok(crate::data_migrations::ImageRow {
        seq: row.req_int("seq")?,
        entity: row
            .req_text("entity")?
            .parse::<Entity>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        at: time::from_micros(row.req_int("at")?),
        record_id: row.req_text("record_id")?,
        before: img("before")?,
        after: img("after")?,
    })
}
pub const REMOVE_PASSWORD_HASH: &str = "DELETE FROM credentials WHERE user_id = $1";
/// Takes a free or expired lease, or renews one's own.
pub const TRY_LEASE: &str = "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
     WHERE leases.holder = excluded.holder OR leases.expires_at < $4";

/// Column access both engines' rows provide, so decoding is written once.
pub trait RowAccess {
    fn text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<Option<i64>>;

    fn req_text(&self, col: &str) -> StoreResult<String> {
        self.text(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {col} is NULL")))
    }
    fn req_int(&self, col: &str) -> StoreResult<i64> {
        self.int(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {col} is NULL")))
    }
}

pub fn record_from_row(row: &impl RowAccess) -> StoreResult<Record> {
    let entity_name = row.req_text("entity")?;
    let entity = Entity::from_str(&entity_name).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let data = match serde_json::from_str::<Value>(&row.req_text("data")?) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "record data of {entity} is not a JSON object"
            )))
        }
    };
    let deleted = match row.text("deleted_batch")? {
        Some(b) => Some(Deletion {
            batch: BatchId::from_str(&b).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            at: time::from_micros(row.int("deleted_at")?.unwrap_or_default()),
            by: row.text("deleted_by")?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(Record {
        entity,
        id: row.req_text("id")?,
        owner_id: row.text("owner_id")?,
        created_at: time::from_micros(row.req_int("created_at")?),
        updated_at: time::from_micros(row.req_int("updated_at")?),
        deleted,
        data,
    })
}

pub fn journal_from_row(row: &impl RowAccess) -> StoreResult<JournalEntry> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let img = |c: &str| -> StoreResult<Option<Value>> {
        match row.text(c)? {
            Some(t) => serde_json::from_str(&t)
                .map(Some)
                .map_err(|e| corrupt(e.to_string())),
            None => Ok(None),
        }
    };
    Ok(JournalEntry {
        seq: row.req_int("seq")?,
        at: time::from_micros(row.req_int("at")?),
        actor: row.req_text("actor")?,
        origin: row.req_text("origin")?.parse().map_err(corrupt)?,
        batch: row
            .req_text("batch")?
            .parse::<BatchId>()
            .map_err(|e| corrupt(e.to_string()))?,
        entity: row
            .req_text("entity")?
            .parse::<Entity>()
            .map_err(|e| corrupt(e.to_string()))?,
        record_id: row.req_text("record_id")?,
        op: row.req_text("op")?.parse().map_err(corrupt)?,
        owner_id: row.text("owner_id")?,
        before: img("before")?,
        after: img("after")?,
        scrubbed: row.req_int("scrubbed")? != 0,
    })
}

pub const PUT_JOB: &str = "INSERT INTO jobs (id, kind, subject, state, created_by, node, \
     created_at, updated_at, phase, done, total, result, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
     ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
     phase = excluded.phase, done = excluded.done, total = excluded.total, \
     result = excluded.result, error = excluded.error, subject = excluded.subject";
/// A job's checkpoint, replaced whole.
pub const PUT_CHECKPOINT: &str = "INSERT INTO job_checkpoints (job_id, checkpoint, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (job_id) DO UPDATE SET checkpoint = excluded.checkpoint, \
     updated_at = excluded.updated_at";
pub const GET_CHECKPOINT: &str = "SELECT checkpoint FROM job_checkpoints WHERE job_id = $1";
/// A refused row; written again (a resumed chunk) it stays as first written.
pub const PUT_IMPORT_ERROR: &str =
    "INSERT INTO import_errors (job_id, row_no, col, value, reason) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, row_no, col) DO NOTHING";

/// The statements that write long work's bookkeeping, in order.
pub fn save_progress(p: &crate::JobProgress, now: time::Timestamp) -> Vec<Stmt> {
    let mut out = Vec::with_capacity(p.errors.len() + 1);
    for e in &p.errors {
        out.push(stmt(
            PUT_IMPORT_ERROR,
            vec![
                Arg::Text(p.job_id.clone()),
                Arg::Int(i64::try_from(e.row).unwrap_or(i64::MAX)),
                Arg::Text(e.column.clone()),
                Arg::Text(e.value.clone()),
                Arg::Text(e.reason.clone()),
            ],
        ));
    }
    if let Some(c) = &p.checkpoint {
        out.push(stmt(
            PUT_CHECKPOINT,
            vec![
                Arg::Text(p.job_id.clone()),
                Arg::Text(c.clone()),
                Arg::Int(time::to_micros(now)),
            ],
        ));
    }
    out
}

/// A page of an import's refused rows in (row, column) order.
pub fn import_errors(job_id: &str, after: Option<(u64, String)>, limit: u32) -> Stmt {
    let mut args = vec![Arg::Text(job_id.into())];
    let mut sql =
        String::from("SELECT row_no, col, value, reason FROM import_errors WHERE job_id = $1");
    if let Some((row, col)) = after {
        args.push(Arg::Int(i64::try_from(row).unwrap_or(i64::MAX)));
        args.push(Arg::Text(col));
        sql.push_str(" AND (row_no > $2 OR (row_no = $2 AND col > $3))");
    }
    args.push(Arg::Int(i64::from(limit)));
    sql.push_str(&format!(" ORDER BY row_no, col LIMIT ${}", args.len()));
    stmt(&sql, args)
}

pub fn import_error_from_row(row: &impl RowAccess) -> StoreResult<crate::ImportErrorRow> {
    Ok(crate::ImportErrorRow {
        row: u64::try_from(row.req_int("row_no")?).unwrap_or(0),
        column: row.req_text("col")?,
        value: row.req_text("value")?,
        reason: row.req_text("reason")?,
    })
}

pub const GET_JOB: &str = "SELECT id, kind, subject, state, created_by, node, created_at, \
     updated_at, phase, done, total, result, error FROM jobs WHERE id = $1";

/// Jobs of a kind prefix, newest first (`_`, `%` and `\\` in the prefix are taken literally).
pub fn list_jobs(kind_prefix: &str, before: Option<&str>, limit: u32) -> Stmt {
    let escaped: String = kind_prefix
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    stmt(
        "SELECT id, kind, subject, state, created_by, node, created_at, updated_at, phase, done, \
         total, result, error FROM jobs WHERE kind LIKE $1 ESCAPE '\\' AND id < $2 \
         ORDER BY id DESC LIMIT $3",
        vec![
            Arg::Text(format!("{escaped}%")),
            // Ids are lowercase hex and dashes: `~` sorts after every one.
            Arg::Text(before.unwrap_or("~").to_string()),
            Arg::Int(i64::from(limit)),
        ],
    )
}

pub fn put_job(j: &crate::JobRow) -> Stmt {
    stmt(
        PUT_JOB,
        vec![
            Arg::Text(j.id.clone()),
            Arg::Text(j.kind.clone()),
            Arg::OptText(j.subject.clone()),
            Arg::Text(j.state.clone()),
            Arg::Text(j.created_by.clone()),
            Arg::Text(j.node.clone()),
            Arg::Int(time::to_micros(j.created_at)),
            Arg::Int(time::to_micros(j.updated_at)),
            Arg::OptText(j.phase.clone()),
            Arg::Int(j.done),
            Arg::OptInt(j.total),
            Arg::OptText(j.result.clone()),
            Arg::OptText(j.error.clone()),
        ],
    )
}

pub fn job_from_row(row: &impl RowAccess) -> StoreResult<crate::JobRow> {
    Ok(crate::JobRow {
        id: row.req_text("id")?,
        kind: row.req_text("kind")?,
        subject: row.text("subject")?,
        state: row.req_text("state")?,
        created_by: row.req_text("created_by")?,
        node: row.req_text("node")?,
        created_at: time::from_micros(row.req_int("created_at")?),
        updated_at: time::from_micros(row.req_int("updated_at")?),
        phase: row.text("phase")?,
        done: row.req_int("done")?,
        total: row.int("total")?,
        result: row.text("result")?,
        error: row.text("error")?,
    })
}

pub fn session_from_row(row: &impl RowAccess) -> StoreResult<crate::Session> {
    Ok(crate::Session {
        token_hash: row.req_text("token_hash")?,
        user_id: row.req_text("user_id")?,
        created_at: time::from_micros(row.req_int("created_at")?),
        expires_at: time::from_micros(row.req_int("expires_at")?),
    })
}

#[cfg(test)]
mod statement_size_tests {
    use super::*;

    #[test]
    fn counts_split_into_the_few_statement_sizes() {
        for n in [0, 1, 3, 4, 5, 63, 64, 65, 255, 256, 257, 1000, 2000, 2345] {
            let sizes: Vec<usize> = statement_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
            assert!(sizes.iter().all(|s| STATEMENT_ROWS.contains(s)), "{n}");
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{n}: {sizes:?}");
            // Never more than three statements of any size below the largest.
            for size in &STATEMENT_ROWS[1..] {
                assert!(sizes.iter().filter(|s| *s == size).count() <= 3, "{n}");
            }
        }
        let items: Vec<usize> = (0..70).collect();
        let chunks: Vec<&[usize]> = statement_chunks(&items).collect();
        assert_eq!(
            chunks.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [64, 4, 1, 1]
        );
        assert_eq!(chunks.concat(), items);
    }
}
