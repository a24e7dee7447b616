//! Long work started through the API (a snapshot, a verification; later imports and
//! exchanges) runs as a *job*: a row in the `jobs` table that says what it is, who started it,
//! how far it got and how it ended, so `GET /api/v1/jobs/{id}` answers on whichever node the
//! client reaches. Progress is kept in memory as the work reports it and written to the row at
//! most every half second; the final state is written when the work ends.

use kontor_backup::progress::Progress;
use kontor_domain::time;
use kontor_store::{DynStore, JobRow, StoreResult};
use serde_json::{json, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a running job's progress is written to its row.
const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How work that did not succeed ended.
#[derive(Debug, Clone)]
pub enum JobEnd {
    Failed(String),
    /// Stopped before its end by a stop or a freeze of the data; its row stays `running`
    /// (phase `interrupted`, the reason in `error`) so it is taken up again.
    Interrupted(String),
}

impl From<String> for JobEnd {
    fn from(e: String) -> Self {
        JobEnd::Failed(e)
    }
}

/// A running job: the [`Progress`] its work reports to.
pub struct TrackedJob {
    row: Mutex<JobRow>,
    store: DynStore,
    /// Set once the job's end is in its row (or recording it was given up).
    recorded: tokio::sync::watch::Sender<bool>,
}

impl TrackedJob {
    /// Records a new running job of `kind` on `subject`, started by user `by` on `node`.
    pub async fn start(
        store: DynStore,
        kind: &str,
        subject: Option<&str>,
        by: &str,
        node: &str,
    ) -> StoreResult<Arc<TrackedJob>> {
        let row = JobRow::running(kind, subject.map(str::to_string), by, node);
        store.put_job(&row).await?;
        Ok(Arc::new(TrackedJob {
            row: Mutex::new(row),
            store,
            recorded: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Takes up a job an earlier process left running (it was interrupted): the same row,
    /// running again on `node`.
    pub async fn adopt(
        store: DynStore,
        mut row: JobRow,
        node: &str,
    ) -> StoreResult<Arc<TrackedJob>> {
        row.state = "running".into();
        row.node = node.into();
        row.updated_at = time::now();
        row.error = None;
        store.put_job(&row).await?;
        Ok(Arc::new(TrackedJob {
            row: Mutex::new(row),
            store,
            recorded: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Whether the job's end is in its row, so `GET /api/v1/jobs/{id}` shows it.
    pub fn is_recorded(&self) -> bool {
        *self.recorded.borrow()
    }

    /// Waits until the job's end is in its row.
    pub async fn recorded(&self) {
        let mut rx = self.recorded.subscribe();
        // The sender lives as long as `self`, so this ends only when the end is recorded.
        let _ = rx.wait_for(|done| *done).await;
    }

    pub fn row(&self) -> JobRow {
        match self.row.lock() {
            Ok(r) => r.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut JobRow)) {
        match self.row.lock() {
            Ok(mut r) => f(&mut r),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Runs `work` in the background, writing progress meanwhile and the outcome at the end.
    pub fn run<F>(self: Arc<Self>, work: F)
    where
        F: Future<Output = Result<Value, JobEnd>> + Send + 'static,
    {
        tokio::spawn(async move {
            let job = self.clone();
            let flusher = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(FLUSH_EVERY).await;
                    let mut row = job.row();
                    row.updated_at = time::now();
                    if let Err(e) = job.store.put_job(&row).await {
                        tracing::warn!(job = %row.id, error = %e, "cannot record job progress");
                    }
                }
            });
            let outcome = work.await;
            flusher.abort();
            self.finish(outcome).await;
        });
    }

    /// Records how the job ended (its result, or why it failed) and marks it recorded.
    pub async fn finish<E: Into<JobEnd>>(&self, outcome: Result<Value, E>) {
        self.update(|r| {
            r.updated_at = time::now();
            match outcome.map_err(Into::into) {
                Ok(result) => {
                    r.state = "succeeded".into();
                    r.result = Some(result.to_string());
                }
                Err(JobEnd::Failed(e)) => {
                    r.state = "failed".into();
                    r.error = Some(e);
                }
                Err(JobEnd::Interrupted(why)) => {
                    r.phase = Some("interrupted".into());
                    r.error = Some(why);
                }
            }
        });
        let row = self.row();
        tracing::info!(job = %row.id, kind = %row.kind, state = %row.state, "job ended");
        // The end must be recorded: retry a few times before giving up.
        for attempt in 0..5u32 {
            match self.store.put_job(&row).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(job = %row.id, error = %e, attempt, "cannot record the job's end");
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        self.recorded.send_replace(true);
    }
}

impl Progress for TrackedJob {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.update(|r| {
            r.phase = Some(name.into());
            r.done = 0;
            r.total = total.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        });
    }

    fn advance(&self, n: u64) {
        self.update(|r| r.done = r.done.saturating_add(i64::try_from(n).unwrap_or(i64::MAX)));
    }
}

/// The job as the API shows it.
pub fn job_json(row: &JobRow) -> Value {
    let result = row
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str::<Value>(r).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": row.id,
        "kind": row.kind,
        "subject": row.subject,
        "state": row.state,
        "created_by": row.created_by,
        "node": row.node,
        "created_at": time::format(row.created_at),
        "updated_at": time::format(row.updated_at),
        "progress": {"phase": row.phase, "done": row.done, "total": row.total},
        "result": result,
        "error": row.error,
    })
}
