//! Errors the domain rules produce. Each one says what was wrong and, where there is one, which
//! field; the HTTP layer maps them to status codes without adding internals.

use serde::Serialize;
use std::fmt;

/// A single field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One reason a restore (or undo) cannot be applied as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub entity: String,
    pub record_id: String,
    /// Machine-readable kind: `unique_taken`, `parent_missing`, `purged`, `changed_since`, ...
    pub kind: String,
    pub field: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Input is malformed or breaks a rule; names the first offending field.
    #[error("{}", .0.message)]
    Invalid(FieldError),
    /// The actor may not do this.
    #[error("{message}")]
    Forbidden {
        message: String,
        field: Option<String>,
    },
    #[error("{entity} {id} not found")]
    NotFound { entity: String, id: String },
    /// A unique value is taken by another live record.
    #[error("{message}")]
    Duplicate { field: String, message: String },
    /// A reference points at a record that does not exist (for this actor) or is in the bin.
    #[error("{message}")]
    Reference { field: String, message: String },
    /// The record is in the recycle bin and therefore read-only.
    #[error("{entity} {id} is in the recycle bin and cannot be changed; restore it first")]
    Deleted { entity: String, id: String },
    /// A restore or undo would conflict; nothing was applied.
    #[error("{} conflict(s); nothing was applied", .0.len())]
    Conflicts(Vec<Conflict>),
    /// A state transition that the record's current state does not allow.
    #[error("{message}")]
    State {
        field: Option<String>,
        message: String,
    },
}

impl DomainError {
    /// The same refusal, said of operation `i` of a batch request: field paths gain the prefix
    /// `operations[i].data.` and the message says which operation it was.
    pub fn in_operation(self, i: usize) -> DomainError {
        let path = |field: String| {
            if field.is_empty() {
                format!("operations[{i}].data")
            } else {
                format!("operations[{i}].data.{field}")
            }
        };
        let say = |m: String| format!("operation {i}: {m}");
        match self {
            DomainError::Invalid(f) => DomainError::Invalid(FieldError {
                field: path(f.field),
                message: say(f.message),
            }),
            DomainError::Forbidden { message, field } => DomainError::Forbidden {
                message: say(message),
                field: field.map(path),
            },
            DomainError::NotFound { entity, id } => DomainError::NotFound {
                entity: say(entity),
                id,
            },
            DomainError::Duplicate { field, message } => DomainError::Duplicate {
                field: path(field),
                message: say(message),
            },
            DomainError::Reference { field, message } => DomainError::Reference {
                field: path(field),
                message: say(message),
            },
            DomainError::Deleted { entity, id } => DomainError::Deleted {
                entity: say(entity),
                id,
            },
            DomainError::State { field, message } => DomainError::State {
                field: field.map(path),
                message: say(message),
            },
            DomainError::Conflicts(list) => DomainError::Conflicts(list),
        }
    }

    /// The field the refusal is about, when it names one (`phone`, `addresses[0].text`).
    pub fn field(&self) -> Option<&str> {
        match self {
            DomainError::Invalid(f) => Some(f.field.as_str()).filter(|f| !f.is_empty()),
            DomainError::Duplicate { field, .. } | DomainError::Reference { field, .. } => {
                Some(field.as_str())
            }
            DomainError::Forbidden { field, .. } | DomainError::State { field, .. } => {
                field.as_deref()
            }
            DomainError::NotFound { .. }
            | DomainError::Deleted { .. }
            | DomainError::Conflicts(_) => None,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid(FieldError::new(field, message))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        DomainError::Forbidden {
            message: message.into(),
            field: None,
        }
    }

    pub fn not_found(entity: impl fmt::Display, id: impl Into<String>) -> Self {
        DomainError::NotFound {
            entity: entity.to_string(),
            id: id.into(),
        }
    }
}
