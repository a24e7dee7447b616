//! Business data frozen: maintenance, a shutdown, an upgrade. While frozen, [`crate::Store::begin`]
//! refuses with [`crate::StoreError::ReadOnly`]; reads, logins, sessions and job bookkeeping go
//! on. Freezing returns only once every write transaction begun before it has ended, so a read
//! after it (a final snapshot) holds every write that was acknowledged.
//!
//! Two scopes: the *node* (this process: a node that stops, by signal or schedule) and the
//! *database* (every node sharing it: `kontor maintenance on`). The database's state is kept in
//! the database itself — on PostgreSQL in the `journal_head` row every writer locks first, so
//! nodes see it at their next write without any polling; on SQLite in `database_state`, mirrored
//! in the journal head this process keeps in memory.

use kontor_domain::time::Timestamp;
use serde::{Deserialize, Serialize};

/// Why business data is frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadOnlyReason {
    /// An administrator's maintenance mode.
    Maintenance,
    /// The server is stopping (a scheduled shutdown or a signal).
    Shutdown,
    /// `kontor upgrade` is working on the database.
    Upgrade,
}

impl ReadOnlyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadOnlyReason::Maintenance => "maintenance",
            ReadOnlyReason::Shutdown => "shutdown",
            ReadOnlyReason::Upgrade => "upgrade",
        }
    }
}

/// Business data is read-only: why, since when, what users are told and when to try again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnly {
    pub reason: ReadOnlyReason,
    /// Shown to users (API error, web banner); may be empty.
    pub message: String,
    pub since: Timestamp,
    /// Seconds a client is told to wait before trying a write again (`Retry-After`).
    pub retry_after_secs: u32,
    /// Who froze it (a user's e-mail, `local administrator`, `signal`).
    pub by: String,
}

impl ReadOnly {
    pub fn new(reason: ReadOnlyReason, message: &str, by: &str, retry_after_secs: u32) -> ReadOnly {
        ReadOnly {
            reason,
            message: message.trim().to_string(),
            since: kontor_domain::time::now(),
            retry_after_secs: retry_after_secs.max(1),
            by: by.to_string(),
        }
    }

    /// What a refused writer is told.
    pub fn describe(&self) -> String {
        let what = match self.reason {
            ReadOnlyReason::Maintenance => "Kontor is in maintenance mode and read-only",
            ReadOnlyReason::Shutdown => "Kontor is shutting down and read-only",
            ReadOnlyReason::Upgrade => "Kontor is being upgraded and read-only",
        };
        if self.message.is_empty() {
            format!("{what}; try again in {} seconds", self.retry_after_secs)
        } else {
            format!(
                "{what}: {}; try again in {} seconds",
                self.message, self.retry_after_secs
            )
        }
    }

    pub(crate) fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The stored text; a state that does not parse still freezes (with no message), since
    /// an unreadable freeze must not turn into an open database.
    pub(crate) fn from_text(text: &str) -> ReadOnly {
        serde_json::from_str(text).unwrap_or_else(|_| ReadOnly {
            reason: ReadOnlyReason::Maintenance,
            message: String::new(),
            since: kontor_domain::time::now(),
            retry_after_secs: 60,
            by: String::new(),
        })
    }
}

/// Whom a freeze applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This process only.
    Node,
    /// Every node sharing the database; kept across restarts.
    Database,
}

/// This process's freeze. Every write transaction holds a read guard from `begin` to its end;
/// freezing takes the write guard, so it waits for those and lets no new one begin meanwhile
/// (tokio's lock is fair: a waiting writer goes before later readers).
#[derive(Clone, Default)]
pub(crate) struct NodeGate {
    lock: std::sync::Arc<tokio::sync::RwLock<Option<ReadOnly>>>,
    /// The same state, readable without waiting behind writers.
    seen: std::sync::Arc<std::sync::Mutex<Option<ReadOnly>>>,
}

impl NodeGate {
    /// Lets a write transaction in, or says why not.
    pub(crate) async fn enter(
        &self,
    ) -> Result<tokio::sync::OwnedRwLockReadGuard<Option<ReadOnly>>, ReadOnly> {
        let guard = self.lock.clone().read_owned().await;
        match &*guard {
            Some(r) => Err(r.clone()),
            None => Ok(guard),
        }
    }

    pub(crate) async fn set(&self, state: Option<ReadOnly>) {
        let mut held = self.lock.write().await;
        *held = state.clone();
        if let Ok(mut seen) = self.seen.lock() {
            *seen = state;
        }
    }

    pub(crate) fn get(&self) -> Option<ReadOnly> {
        self.seen.lock().ok().and_then(|s| s.clone())
    }
}
