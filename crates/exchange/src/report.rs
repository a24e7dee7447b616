//! What an exchange run did: per entity how many records were created, updated, left
//! unchanged, deleted or failed, and every failure with its file, line and 1C id. The report
//! is what 1C's log, the CLI and the runs API show.

use serde::Serialize;
use std::collections::BTreeMap;

/// Counts for one entity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    /// Live records that a full upload no longer lists, marked inactive.
    pub deactivated: u64,
    pub failed: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.deleted + self.failed
    }
}

/// A record that could not be applied; the rest of the run went on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub file: String,
    pub line: u64,
    /// The record's 1C id (`Ид`), when it has one.
    pub record: String,
    pub message: String,
}

/// A whole run (one or more files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The journal batch every change of the run went into (undo it as one).
    pub batch: String,
    pub files: Vec<String>,
    pub counts: BTreeMap<String, Counts>,
    pub failures: Vec<Failure>,
}

/// At most this many failures are kept in a report (the counts stay exact).
pub const MAX_FAILURES: usize = 1000;

impl RunReport {
    pub fn counts_mut(&mut self, entity: &str) -> &mut Counts {
        self.counts.entry(entity.to_string()).or_default()
    }

    pub fn fail(&mut self, entity: &str, failure: Failure) {
        self.counts_mut(entity).failed += 1;
        if self.failures.len() < MAX_FAILURES {
            self.failures.push(failure);
        }
    }

    /// Adds another report of the same run (same batch): its files, counts and failures.
    pub fn absorb(&mut self, other: RunReport) {
        self.files.extend(other.files);
        for (entity, c) in other.counts {
            let mine = self.counts_mut(&entity);
            mine.created += c.created;
            mine.updated += c.updated;
            mine.unchanged += c.unchanged;
            mine.deleted += c.deleted;
            mine.deactivated += c.deactivated;
            mine.failed += c.failed;
        }
        let room = MAX_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }

    /// Records written (created, updated, deleted, deactivated) over all entities.
    pub fn changed(&self) -> u64 {
        self.counts
            .values()
            .map(|c| c.created + c.updated + c.deleted + c.deactivated)
            .sum()
    }

    pub fn failed(&self) -> u64 {
        self.counts.values().map(|c| c.failed).sum()
    }

    /// One line per entity, e.g. `offers: 86 created, 0 updated, 0 unchanged, 0 deleted, 0 failed`.
    pub fn summary(&self) -> String {
        self.counts
            .iter()
            .map(|(e, c)| {
                let mut line = format!(
                    "{e}: {} created, {} updated, {} unchanged, {} deleted, {} failed",
                    c.created, c.updated, c.unchanged, c.deleted, c.failed
                );
                if c.deactivated > 0 {
                    line.push_str(&format!(", {} deactivated", c.deactivated));
                }
                line
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
