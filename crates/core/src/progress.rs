//! Progress of long work, reported to whoever shows it (a bar in the CLI, a job in the API).

/// Receives progress. Totals may be unknown (`None`).
pub trait Progress: Send + Sync {
    /// A new phase begins, e.g. "records" or "journal".
    fn phase(&self, name: &str, total: Option<u64>);
    /// `n` more units of the current phase are done.
    fn advance(&self, n: u64);
    /// All work is done.
    fn done(&self) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {
    fn phase(&self, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64) {}
}
