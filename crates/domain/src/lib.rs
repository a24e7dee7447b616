//! Kontor's domain: what a record is, which fields each entity has and how input is parsed into
//! them, who may do what, and what a journal entry looks like. Pure data and rules, no I/O: the
//! store persists these types and the core applies them.

pub mod entity;
pub mod error;
pub mod invoice;
pub mod journal;
pub mod listing;
pub mod money;
pub mod permission;
pub mod record;
pub mod schema;
pub mod taxid;
pub mod time;
pub mod validate;

pub use entity::Entity;
pub use error::{Conflict, DomainError, FieldError};
pub use journal::{BatchId, JournalEntry, NewJournalEntry, Op, Origin};
pub use permission::{Action, Actor, Role, Scope};
pub use record::{Record, RecordId};
