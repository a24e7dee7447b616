//! The storage interface. Everything above this crate is engine-neutral; all SQL lives below it.
//!
//! Writes happen only inside a [`WriteTx`], which the core's write path opens, fills with record
//! rows *and* journal entries, and commits as one database transaction. Reads outside a
//! transaction go through [`Store`]. The SQLite engine is [`sqlite::SqliteStore`]; a PostgreSQL
//! engine ([`postgres::PgStore`]) implements the same two traits; both run the SQL built in
//! [`sql`].

pub mod bulk;
pub mod census;
pub mod data_migrations;
mod engine;
pub mod list;
mod migrate;
pub use census::{Census, Damage};
pub use migrate::{AppliedMigration, AppliedStep, MigrationStatus, TEST_FAILING_MIGRATION};
pub mod postgres;
pub mod read_only;
pub use read_only::{ReadOnly, ReadOnlyReason, Scope};
pub mod sql;
pub mod sqlite;

use async_trait::async_trait;
use kontor_domain::journal::{Appended, JournalEntry, NewJournalEntry, Op, Origin};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::record::Record;
use kontor_domain::time::Timestamp;
use kontor_domain::{BatchId, Entity};
use std::sync::Arc;

pub use list::{After, Condition, Count, ListColumn, ListQuery, ListValue};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refuses service; worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The data directory or database is held by another process.
    #[error("{0}")]
    Locked(String),
    /// A constraint the write path should have prevented; a bug or a race.
    #[error("constraint violated: {0}")]
    Constraint(String),
    /// The database's schema is not one this Kontor can work on: made by a newer Kontor, or a
    /// migration it recorded differs from this Kontor's (a released migration was edited).
    #[error("{0}")]
    Schema(String),
    /// Business data is frozen (maintenance, a shutdown, an upgrade); worth retrying later.
    #[error("{}", .0.describe())]
    ReadOnly(ReadOnly),
    /// Stored data that does not parse; corruption or a bug.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The schema version this Kontor creates and understands: the number of the last migration,
/// the same on both engines. Archives record it; a newer archive is refused.
pub const SCHEMA_VERSION: i64 = 8;

/// A database as `kontor status` reports it, read without migrating or locking anything.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    pub migrations: MigrationStatus,
    /// The journal's head (0 for a database with no schema yet).
    pub journal_seq: i64,
    /// The database on disk: the SQLite file with its WAL, or PostgreSQL's database size.
    pub bytes: u64,
}

#[cfg(test)]
mod schema_version_tests {
    #[test]
    fn both_engines_end_at_the_schema_version() {
        for steps in [crate::sqlite::MIGRATIONS, crate::postgres::MIGRATIONS] {
            let versions: Vec<i64> = steps.iter().map(|(v, _)| *v).collect();
            assert_eq!(versions, (1..=super::SCHEMA_VERSION).collect::<Vec<_>>());
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct JournalQuery {
    pub entity: Option<Entity>,
    pub record_id: Option<String>,
    pub op: Option<Op>,
    pub actor: Option<String>,
    pub origin: Option<Origin>,
    pub batch: Option<BatchId>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// What a non-admin may see: entries matching any one group. `None` means everything.
    pub scopes: Option<Vec<ScopeGroup>>,
    /// Keyset cursor: entries after (ascending) or before (descending) this seq.
    pub cursor: Option<i64>,
    pub descending: bool,
    pub limit: u32,
}

/// Entries about these entities, about records owned by these users (`None`: any owner).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeGroup {
    pub entities: Vec<Entity>,
    pub owners: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrashQuery {
    pub entity: Option<Entity>,
    pub owners: OwnerFilter,
    pub batch: Option<BatchId>,
    /// Only records deleted before this time (retention).
    pub deleted_before: Option<Timestamp>,
    /// Keyset cursor: (deleted_at, id) of the last row of the previous page.
    pub cursor: Option<(Timestamp, String)>,
    pub limit: u32,
}

/// The answer to [`Store::reserve_login_slot`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoginSlot {
    pub granted: bool,
    /// Failed attempts counted in the current window.
    pub failures: i64,
    pub window_start: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// Long work and how far it got (see the `jobs` table).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    /// What it does, e.g. `backup.create`.
    pub kind: String,
    /// What it works on, e.g. an archive's name.
    pub subject: Option<String>,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    /// The user id that started it.
    pub created_by: String,
    /// The node running it.
    pub node: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub phase: Option<String>,
    pub done: i64,
    pub total: Option<i64>,
    /// JSON text of what it produced.
    pub result: Option<String>,
    pub error: Option<String>,
}

impl JobRow {
    /// A job that starts running now: `kind` on `subject`, started by user `by` on `node`.
    pub fn running(kind: &str, subject: Option<String>, by: &str, node: &str) -> JobRow {
        let now = kontor_domain::time::now();
        JobRow {
            id: kontor_domain::record::new_id(),
            kind: kind.into(),
            subject,
            state: "running".into(),
            created_by: by.into(),
            node: node.into(),
            created_at: now,
            updated_at: now,
            phase: None,
            done: 0,
            total: None,
            result: None,
            error: None,
        }
    }
}

/// A row an import refused: its number in the file, the column (its header), the cell's text
/// and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportErrorRow {
    pub row: u64,
    pub column: String,
    pub value: String,
    pub reason: String,
}

/// Bookkeeping of long work written in the same transaction as one of its chunks, so it lands
/// exactly when the chunk does: where to resume, and the rows the chunk refused.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobProgress {
    pub job_id: String,
    /// Where the work would resume after this chunk (JSON text); `None` leaves it as it is.
    pub checkpoint: Option<String>,
    pub errors: Vec<ImportErrorRow>,
}

/// Reads, sessions, leases and the door to write transactions.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn engine(&self) -> &'static str;

    /// Opens the one kind of transaction that may change business data.
    async fn begin(&self) -> StoreResult<Box<dyn WriteTx>>;

    /// Freezes business data (`Some`) or opens it again (`None`) for this node or for every
    /// node sharing the database. Returns once no write transaction begun before is open (on
    /// PostgreSQL, on any node, for the database scope), so every later read holds every write
    /// acknowledged before.
    async fn set_read_only(&self, scope: Scope, state: Option<ReadOnly>) -> StoreResult<()>;
    /// Whether business data is frozen: this node's freeze first, else the database's.
    async fn read_only(&self) -> StoreResult<Option<ReadOnly>>;

    /// A record, live or in the recycle bin.
    async fn get(&self, entity: Entity, id: &str) -> StoreResult<Option<Record>>;
    /// The records of one entity with any of these ids (live or deleted; absent ones left out,
    /// in no particular order).
    async fn get_many(&self, entity: Entity, ids: &[String]) -> StoreResult<Vec<Record>>;
    /// A page of live records: at most `q.limit`, in the query's order after its cursor.
    async fn list(&self, q: &ListQuery) -> StoreResult<Vec<Record>>;
    /// How many live records the query selects (cursor and limit aside): exact when at most
    /// `bound`, otherwise the database's estimate (or, where it has none, an exact count).
    async fn count(&self, q: &ListQuery, bound: u64) -> StoreResult<Count>;
    /// How many live records the query selects, counting no further than `bound + 1` (a
    /// result above `bound` says only "more than `bound`"; never a scan of a big list).
    async fn count_at_most(&self, q: &ListQuery, bound: u64) -> StoreResult<u64>;
    /// Makes the list indexes exactly these `(entity, field, kind)`: builds the missing ones
    /// (without blocking writes on PostgreSQL) and drops those no longer wanted. Returns the
    /// names built and dropped.
    async fn ensure_list_indexes(
        &self,
        wanted: &[(Entity, String, kontor_domain::listing::KeyKind)],
    ) -> StoreResult<(Vec<String>, Vec<String>)>;
    async fn trash(&self, q: &TrashQuery) -> StoreResult<Vec<Record>>;
    async fn journal(&self, q: &JournalQuery) -> StoreResult<Vec<JournalEntry>>;
    /// Every record of an entity (live and deleted), in id order, for replay checks and exports.
    async fn all_records(&self, entity: Entity) -> StoreResult<Vec<Record>>;
    /// `(id, external_id, deleted)` of the records of an entity that have an `external_id`
    /// (live and in the bin), in id order, a page of at most `limit` after id `after` (`""`
    /// for the first): what imports match 1C ids with, read a page at a time.
    async fn external_ids(
        &self,
        entity: Entity,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<(String, String, bool)>>;
    /// The live record holding a unique value, e.g. the user with an e-mail address.
    async fn find_unique(
        &self,
        entity: Entity,
        key: &str,
        value: &str,
    ) -> StoreResult<Option<Record>>;
    /// `(value, record id)` of the live records holding any of these values of one unique key
    /// (what an import matches rows with, a chunk at a time).
    async fn unique_holders(
        &self,
        entity: Entity,
        key: &str,
        values: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// Highest journal seq written so far (0 when empty).
    async fn journal_head(&self) -> StoreResult<i64>;

    async fn create_session(&self, s: &Session) -> StoreResult<()>;
    /// A session that is neither revoked nor expired at `now`.
    async fn session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;
    async fn revoke_session(&self, token_hash: &str) -> StoreResult<()>;
    async fn revoke_user_sessions(&self, user_id: &str) -> StoreResult<()>;
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    async fn prune_sessions(&self, before: Timestamp) -> StoreResult<u64>;

    /// Asks for a login slot for each `(key, limit)` in order, in one transaction: a slot is
    /// granted while fewer than `limit` attempts are failed or still being checked in the key's
    /// window (a window that started before `expired_before` starts afresh at `now`). Each key is
    /// one atomic upsert, so parallel attempts on any number of nodes are counted one by one.
    /// Stops at the first key refused, giving back the slots this call took; returns the slots
    /// asked for so far (the last one refused, or all granted).
    async fn reserve_login_slots(
        &self,
        keys: &[(String, u32)],
        now: Timestamp,
        expired_before: Timestamp,
    ) -> StoreResult<Vec<LoginSlot>>;
    /// Gives granted slots back, in one transaction: `(key, failed, forgive)` counts a failure
    /// when `failed`; a success with `forgive` clears the key's failures.
    async fn finish_login_attempts(&self, slots: &[(String, bool, bool)]) -> StoreResult<()>;
    /// Forgets keys whose window started before `before` and that have nothing in flight.
    async fn prune_login_limits(&self, before: Timestamp) -> StoreResult<u64>;
    /// The password hash of a user (kept apart from the user record; see [`WriteTx::set_password_hash`]).
    async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>>;

    /// Takes or renews the named lease for `holder` until `now + ttl`; true while held. Background
    /// work runs only on the holder, so it runs once per cluster.
    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        ttl: std::time::Duration,
    ) -> StoreResult<bool>;

    /// Records a job's state (inserted or replaced whole).
    async fn put_job(&self, job: &JobRow) -> StoreResult<()>;
    async fn job(&self, id: &str) -> StoreResult<Option<JobRow>>;
    /// Jobs whose kind starts with `kind_prefix` (e.g. `exchange.`), newest first, those older
    /// than the job `before` when given (job ids grow with time).
    async fn jobs(
        &self,
        kind_prefix: &str,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<JobRow>>;

    /// Writes long work's bookkeeping in a transaction of its own (work whose chunk wrote
    /// nothing, such as a dry run).
    async fn save_progress(&self, progress: &JobProgress) -> StoreResult<()>;
    /// Where a job would resume (see [`JobProgress::checkpoint`]).
    async fn job_checkpoint(&self, job_id: &str) -> StoreResult<Option<String>>;
    /// The rows an import refused, in row and column order, after `after` (row, column).
    async fn import_errors(
        &self,
        job_id: &str,
        after: Option<(u64, String)>,
        limit: u32,
    ) -> StoreResult<Vec<ImportErrorRow>>;

    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Checkpoints and closes; the store is unusable afterwards.
    async fn close(&self);
}

pub type DynStore = Arc<dyn Store>;

/// One write transaction. Dropping it without [`WriteTx::commit`] rolls everything back.
#[async_trait]
pub trait WriteTx: Send {
    /// A record, live or deleted, as of this transaction.
    async fn get(&mut self, entity: Entity, id: &str) -> StoreResult<Option<Record>>;
    /// The records of one entity with any of these ids (live or deleted; absent ones left out),
    /// in one round trip per few hundred ids.
    async fn get_many(&mut self, entity: Entity, ids: &[String]) -> StoreResult<Vec<Record>>;
    /// Inserts or replaces the record row. `parent_id` is the value of its cascading reference,
    /// `search` its lowercased search text. Rows may be buffered and sent together before the
    /// transaction's next other statement; a constraint a buffered row breaks is reported there.
    async fn put(&mut self, rec: &Record, parent_id: Option<&str>, search: &str)
        -> StoreResult<()>;
    /// Removes the row for good (purge).
    async fn remove(&mut self, entity: Entity, id: &str) -> StoreResult<()>;
    /// Live records whose cascading reference points at `parent_id`.
    async fn children(&mut self, parent_id: &str) -> StoreResult<Vec<Record>>;
    /// Records deleted in one batch.
    async fn deleted_in_batch(&mut self, batch: BatchId) -> StoreResult<Vec<Record>>;
    /// Every live record of an entity; meant for small system entities (custom fields, roles).
    async fn live_records(&mut self, entity: Entity) -> StoreResult<Vec<Record>>;

    /// The record holding a unique value, if any.
    async fn unique_holder(
        &mut self,
        entity: Entity,
        key: &str,
        value: &str,
    ) -> StoreResult<Option<String>>;
    /// `(value, record id)` of the records holding any of these values of one unique key.
    async fn unique_holders(
        &mut self,
        entity: Entity,
        key: &str,
        values: &[String],
    ) -> StoreResult<Vec<(String, String)>>;
    /// Replaces the unique values a record holds (buffered like [`WriteTx::put`]).
    async fn set_uniques(
        &mut self,
        entity: Entity,
        id: &str,
        values: &[(String, String)],
    ) -> StoreResult<()>;

    /// The transaction's time: the wall clock, but never earlier than the journal's last entry.
    /// Every row and journal entry the transaction writes carries it.
    fn now(&self) -> Timestamp;
    /// Version of the custom field definitions as of this transaction.
    fn schema_version(&self) -> i64;
    /// Marks the custom field definitions as changed (every node's cache goes stale).
    async fn bump_schema_version(&mut self) -> StoreResult<()>;
    /// Appends entries at [`WriteTx::now`], allocating gap-free seqs.
    async fn append(&mut self, entries: Vec<NewJournalEntry>) -> StoreResult<Vec<Appended>>;
    /// Journal entries matching a query, as seen by this transaction.
    async fn journal(&mut self, q: &JournalQuery) -> StoreResult<Vec<JournalEntry>>;
    /// Clears the before/after images of a record's entries, leaving tombstones.
    async fn scrub(&mut self, entity: Entity, id: &str) -> StoreResult<()>;
    /// Stores a user's password hash. Credentials live outside records and the journal; the
    /// write path journals the change on the user record without the hash.
    async fn set_password_hash(&mut self, user_id: &str, hash: &str) -> StoreResult<()>;
    /// Forgets a user's password hash (purge).
    async fn remove_password_hash(&mut self, user_id: &str) -> StoreResult<()>;
    /// Next value of a named counter (invoice numbers), starting at 1.
    async fn next_counter(&mut self, name: &str) -> StoreResult<i64>;
    /// Writes long work's bookkeeping in this transaction (see [`JobProgress`]).
    async fn save_progress(&mut self, progress: &JobProgress) -> StoreResult<()>;

    async fn commit(self: Box<Self>) -> StoreResult<()>;
}
