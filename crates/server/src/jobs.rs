//! Background work. Each job runs only on the node that holds its lease in the database, so a
//! cluster of nodes runs it once; when the holder dies its lease expires and another node takes
//! over. Today: recycle-bin retention, and the list indexes (built when a filterable field
//! appears, dropped when one goes; a build runs in a task of its own while leases are kept).

use kontor_core::Kontor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Identifies this node as a lease holder.
    pub node_id: String,
    /// How often a node checks its leases and due work.
    pub tick: Duration,
    /// How often retention runs.
    pub retention_every: Duration,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            node_id: uuid_like(),
            tick: Duration::from_secs(2),
            retention_every: Duration::from_secs(3600),
        }
    }
}

/// What this node's job runner is doing, for `/readyz`.
pub struct JobStatus {
    pub node_id: String,
    retention_lease: AtomicBool,
}

impl JobStatus {
    pub fn new(node_id: String) -> Arc<JobStatus> {
        Arc::new(JobStatus {
            node_id,
            retention_lease: AtomicBool::new(false),
        })
    }

    /// Whether this node holds the retention lease (and so runs retention for the cluster).
    pub fn holds_retention(&self) -> bool {
        self.retention_lease.load(Ordering::Relaxed)
    }
}

fn uuid_like() -> String {
    kontor_domain::record::new_id()
}

pub const RETENTION_LEASE: &str = "retention";
pub const LIST_INDEX_LEASE: &str = "list-indexes";

/// Leases last this many ticks: a dead holder's lease is free again within that time.
const LEASE_TICKS: u32 = 3;

pub async fn run(
    kontor: Arc<Kontor>,
    cfg: JobConfig,
    status: Arc<JobStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_retention: Option<std::time::Instant> = None;
    let mut indexes = IndexKeeper::default();
    loop {
        let now = kontor_domain::time::now();
        match kontor
            .store
            .try_lease(LIST_INDEX_LEASE, &cfg.node_id, now, cfg.tick * LEASE_TICKS)
            .await
        {
            Ok(true) => indexes.tick(&kontor).await,
            Ok(false) => indexes.applied = None,
            Err(_) => {}
        }
        let held = kontor
            .store
            .try_lease(RETENTION_LEASE, &cfg.node_id, now, cfg.tick * LEASE_TICKS)
            .await;
        status
            .retention_lease
            .store(matches!(held, Ok(true)), Ordering::Relaxed);
        match held {
            Ok(true) => {
                if last_retention.is_none_or(|t| t.elapsed() >= cfg.retention_every) {
                    match kontor.purge_expired(now).await {
                        Ok(_) => last_retention = Some(std::time::Instant::now()),
                        Err(e) => tracing::warn!(error = %e, "retention run failed; will retry"),
                    }
                }
            }
            Ok(false) => last_retention = None,
            Err(e) => tracing::warn!(error = %e, "cannot reach the database for job leases"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.tick) => {}
            _ = stop.changed() => break,
        }
    }
}

type IndexSet = Vec<(
    kontor_domain::Entity,
    String,
    kontor_domain::listing::KeyKind,
)>;

/// Keeps the database's list indexes what the schemas ask for.
#[derive(Default)]
struct IndexKeeper {
    /// The set last made so, and the build under way.
    applied: Option<IndexSet>,
    running: Option<tokio::task::JoinHandle<Result<IndexSet, String>>>,
}

impl IndexKeeper {
    async fn tick(&mut self, kontor: &Arc<Kontor>) {
        if let Some(task) = self.running.take() {
            if !task.is_finished() {
                self.running = Some(task);
                return;
            }
            match task.await {
                Ok(Ok(set)) => self.applied = Some(set),
                Ok(Err(e)) => tracing::warn!(error = %e, "list indexes not built; will retry"),
                Err(e) => tracing::warn!(error = %e, "list index task failed"),
            }
        }
        let wanted = match kontor.list_indexes_wanted().await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the custom fields for list indexes");
                return;
            }
        };
        if self.applied.as_ref() == Some(&wanted) {
            return;
        }
        let kontor = kontor.clone();
        self.running = Some(tokio::spawn(async move {
            let started = std::time::Instant::now();
            let (built, dropped) = kontor
                .ensure_list_indexes(&wanted)
                .await
                .map_err(|e| e.to_string())?;
            if !built.is_empty() || !dropped.is_empty() {
                tracing::info!(
                    built = built.len(),
                    dropped = dropped.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "list indexes brought up to date"
                );
            }
            Ok(wanted)
        }));
    }
}
