//! What an import did (or, as a dry run, would do): counts per outcome, the first rows of each
//! outcome, and how the file was read and mapped. The same report is the job's result in the
//! API, what the CLI prints, and (counts and samples so far) part of the checkpoint an
//! interrupted import resumes from.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How many rows of each outcome a report shows.
pub const SAMPLES: usize = 10;

/// One row of a kind, as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub row: u64,
    /// The record created or updated (none for a dry run's creates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The value the row was matched by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The column a refusal is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The first rows of each outcome.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Samples {
    pub created: Vec<Sample>,
    pub updated: Vec<Sample>,
    pub unchanged: Vec<Sample>,
    pub skipped: Vec<Sample>,
    pub duplicates: Vec<Sample>,
    pub failed: Vec<Sample>,
}

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// Matched a record that already had every value of the row.
    Unchanged,
    /// Matched a record, and the mode says to leave it (`skip`).
    Skipped,
    /// Repeats a key an earlier row of the file already had.
    Duplicate,
    Failed,
}

/// Counts per outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub skipped: u64,
    pub duplicates: u64,
    pub failed: u64,
}

/// The report of one import.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// The job it ran as.
    pub job: String,
    /// The journal batch of every change it made (undo it with `POST /api/v1/history/undo`).
    pub batch: String,
    pub dry_run: bool,
    pub entity: String,
    pub file: String,
    pub mode: String,
    #[serde(rename = "match")]
    pub match_on: Option<String>,
    /// How the file was read: format, encoding, delimiter, sheet.
    pub read: serde_json::Value,
    /// Each column's header and where it went (`""`: left out).
    pub mapping: BTreeMap<String, String>,
    /// Columns nothing was imported from.
    pub ignored_columns: Vec<String>,
    /// Columns the template names that the file does not have.
    pub template_columns_missing: Vec<String>,
    #[serde(flatten)]
    pub counts: Counts,
    pub samples: Samples,
    /// The row the import went on from after an interruption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_after_row: Option<u64>,
    pub seconds: f64,
}

impl ImportReport {
    /// Counts a row's outcome, keeping it as a sample while there are few of its kind.
    pub fn count(&mut self, outcome: Outcome, sample: Sample) {
        let (n, list) = match outcome {
            Outcome::Created => (&mut self.counts.created, &mut self.samples.created),
            Outcome::Updated => (&mut self.counts.updated, &mut self.samples.updated),
            Outcome::Unchanged => (&mut self.counts.unchanged, &mut self.samples.unchanged),
            Outcome::Skipped => (&mut self.counts.skipped, &mut self.samples.skipped),
            Outcome::Duplicate => (&mut self.counts.duplicates, &mut self.samples.duplicates),
            Outcome::Failed => (&mut self.counts.failed, &mut self.samples.failed),
        };
        *n += 1;
        if list.len() < SAMPLES {
            list.push(sample);
        }
        self.counts.rows += 1;
    }

    /// Rows that were not imported as asked (refused or repeated).
    pub fn rows_not_imported(&self) -> u64 {
        self.counts.failed + self.counts.duplicates
    }

    /// One line per count, for a terminal.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let verb = if self.dry_run { "would be " } else { "" };
        format!(
            "{} rows: {} {verb}created, {} {verb}updated, {} unchanged, {} skipped, {} duplicates, {} failed",
            c.rows, c.created, c.updated, c.unchanged, c.skipped, c.duplicates, c.failed
        )
    }
}
