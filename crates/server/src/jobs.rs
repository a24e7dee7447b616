//! Background work. Each job runs only on the node that holds its lease in the database, so a
//! cluster of nodes runs it once; when the holder dies its lease expires and another node takes
//! over. Today: recycle-bin retention.

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

/// Leases last this many ticks: a dead holder's lease is free again within that time.
const LEASE_TICKS: u32 = 3;

pub async fn run(
    kontor: Arc<Kontor>,
    cfg: JobConfig,
    status: Arc<JobStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_retention: Option<std::time::Instant> = None;
    loop {
        let now = kontor_domain::time::now();
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
