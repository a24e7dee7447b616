//! The journal entry: one row per changed record, written in the same transaction as the change.
//! Entries carry full before/after images, so replaying them in `seq` order from empty rebuilds the
//! current state exactly ([`replay`]), and applying one twice changes nothing.

use crate::entity::Entity;
use crate::time::Timestamp;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Groups the entries of one request (a delete with its cascade, a restore, an import run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId(pub uuid::Uuid);

impl BatchId {
    pub fn new() -> Self {
        BatchId(uuid::Uuid::now_v7())
    }
}

impl Default for BatchId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

impl FromStr for BatchId {
    type Err = String;
    /// A hyphenated UUID in either case, like record ids.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::record::parse_id(s)
            .and_then(|c| uuid::Uuid::parse_str(&c).ok())
            .map(BatchId)
            .ok_or_else(|| format!("'{s}' is not a batch id (UUID)"))
    }
}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} '{}' (expected one of: {})",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// What happened to the record.
    Op {
        Create => "create",
        Update => "update",
        Delete => "delete",
        Restore => "restore",
        Purge => "purge",
    }
);

string_enum!(
    /// Which door the change came through.
    Origin {
        Api => "api",
        Web => "web",
        Import => "import",
        Exchange => "exchange",
        Restore => "restore",
        System => "system",
    }
);

/// An entry as the write path hands it to the store; the store assigns `seq` and `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJournalEntry {
    pub actor: String,
    pub origin: Origin,
    pub batch: BatchId,
    pub entity: Entity,
    pub record_id: String,
    pub op: Op,
    /// Owner after the change (before it, for purges), for permission-scoped history reads.
    pub owner_id: Option<String>,
    /// The record's image before and after the change as JSON text
    /// ([`crate::record::Record::image_json`]), written once and stored as it is.
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Where the store put an entry: what a write's caller learns of it (not the images).
#[derive(Debug, Clone, PartialEq)]
pub struct Appended {
    pub seq: i64,
    pub entity: Entity,
    pub record_id: String,
    pub op: Op,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Gap-free, strictly increasing per database.
    pub seq: i64,
    /// Never earlier than the previous entry's time.
    pub at: Timestamp,
    pub actor: String,
    pub origin: Origin,
    pub batch: BatchId,
    pub entity: Entity,
    pub record_id: String,
    pub op: Op,
    pub owner_id: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The record was purged: its images were scrubbed and only this tombstone remains.
    pub scrubbed: bool,
}

/// One field that differs between a before and an after image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldChange {
    pub field: String,
    pub before: Value,
    pub after: Value,
}

/// Field-level differences between two images (absent counts as null). System timestamps are
/// left out: they change on every write and say nothing.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Vec<FieldChange> {
    let empty = Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| k.as_str() != "updated_at")
        .filter_map(|k| {
            let bv = b.get(k).cloned().unwrap_or(Value::Null);
            let av = a.get(k).cloned().unwrap_or(Value::Null);
            (bv != av).then(|| FieldChange {
                field: k.clone(),
                before: bv,
                after: av,
            })
        })
        .collect()
}

/// Rebuilds the state of every record from journal entries given in `seq` order: each entry's
/// after image replaces the record (a missing after image removes it).
pub fn replay<'a>(
    entries: impl IntoIterator<Item = &'a JournalEntry>,
) -> BTreeMap<(Entity, String), Value> {
    let mut state = BTreeMap::new();
    for e in entries {
        let key = (e.entity, e.record_id.clone());
        match &e.after {
            Some(after) => {
                state.insert(key, after.clone());
            }
            None => {
                state.remove(&key);
            }
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_changed_fields_only() {
        let b = json!({"name": "A", "phone": "1", "updated_at": "x"});
        let a = json!({"name": "B", "phone": "1", "email": "e@x.ru", "updated_at": "y"});
        let d = diff(Some(&b), Some(&a));
        let fields: Vec<_> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["email", "name"]);
    }

    #[test]
    fn origin_and_op_parse() {
        assert_eq!("restore".parse::<Origin>().unwrap(), Origin::Restore);
        assert!("teleport".parse::<Op>().unwrap_err().contains("create"));
    }
}
