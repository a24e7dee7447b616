//! How a server freezes and stops: maintenance mode, the announced shutdown, and the stop
//! sequence a schedule and a signal share.
//!
//! - **Maintenance** freezes business data for every node sharing the database
//!   ([`kontor_store::Scope::Database`], kept across restarts): writes get 503 with
//!   `Retry-After` and the message, reads go on.
//! - **A shutdown** is scheduled by an admin for a time, recorded as a `shutdown` job (so every
//!   node announces it and a restarted server takes it up again) and run by the node it was
//!   asked of. Refused attempts are recorded as `shutdown` jobs in state `refused`.
//! - **The stop sequence** ([`Lifecycle::stop`]): this node read-only (waiting for the writes
//!   in flight), a final snapshot verified by restoring it; `serve` then drains requests, stops
//!   background work and closes the database.

use crate::error::{ApiError, ApiResult};
use crate::tracked_jobs::TrackedJob;
use crate::AppState;
use kontor_domain::time::{self, Timestamp};
use kontor_domain::{Actor, DomainError};
use kontor_store::{DynStore, JobRow, ReadOnly, ReadOnlyReason, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Minutes before a shutdown at which users are reminded.
pub const REMINDER_MINUTES: [i64; 3] = [15, 5, 1];
/// How far ahead a shutdown may be scheduled.
const FURTHEST: chrono::Duration = chrono::Duration::days(30);
/// What refused writers are told to wait while maintenance lasts, unless the admin says.
pub const MAINTENANCE_RETRY_SECS: u32 = 60;
/// What refused writers are told to wait while the server stops (it comes back after).
const SHUTDOWN_RETRY_SECS: u32 = 120;
/// How long announcements are reused before they are read again.
const ANNOUNCEMENTS_FRESH: Duration = Duration::from_secs(2);
/// The job kind of scheduled shutdowns and of maintenance switches.
pub const SHUTDOWN_JOB: &str = "shutdown";
pub const MAINTENANCE_JOB: &str = "maintenance";

/// A shutdown an admin scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShutdownPlan {
    /// Its `shutdown` job.
    pub job_id: String,
    pub at: Timestamp,
    pub message: String,
    /// The admin's user id.
    pub by: String,
}

impl ShutdownPlan {
    /// The reminder times still ahead (15, 5 and 1 minutes before).
    pub fn reminders(&self, now: Timestamp) -> Vec<Timestamp> {
        REMINDER_MINUTES
            .iter()
            .map(|m| self.at - chrono::Duration::minutes(*m))
            .filter(|t| *t > now)
            .collect()
    }
}

/// What started a stop.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// SIGTERM or SIGINT.
    Signal,
    Scheduled(ShutdownPlan),
}

/// How a stop went: the final snapshot, or why there is none.
#[derive(Debug, Clone)]
pub struct StopReport {
    pub snapshot: Result<Value, String>,
}

/// Where this server is in its life, and its scheduled shutdown.
pub struct Lifecycle {
    plan: tokio::sync::watch::Sender<Option<ShutdownPlan>>,
    /// The step of the stop sequence once it has begun (`None` while serving).
    stopping: Mutex<Option<&'static str>>,
    announced: Mutex<Option<(Instant, Vec<Value>)>>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            plan: tokio::sync::watch::Sender::new(None),
            stopping: Mutex::new(None),
            announced: Mutex::new(None),
        }
    }
}

/// Records a refused attempt (who, what) as a job in state `refused`, and logs it.
async fn record_refusal(store: &DynStore, kind: &str, actor: &Actor, node: &str, why: &str) {
    tracing::warn!(kind, user = %actor.user_id, "refused: {why}");
    let mut row = JobRow::running(kind, None, &actor.user_id, node);
    row.state = "refused".into();
    row.error = Some(why.to_string());
    if let Err(e) = store.put_job(&row).await {
        tracing::warn!(error = %e, "cannot record a refused attempt");
    }
}

/// Admins only; a refusal is recorded.
async fn admins_only(state: &AppState, kind: &str, actor: &Actor, what: &str) -> ApiResult<()> {
    if actor.is_admin() {
        return Ok(());
    }
    let why = format!("only administrators may {what}");
    record_refusal(&state.kontor.store, kind, actor, &state.jobs.node_id, &why).await;
    Err(DomainError::forbidden(&why).into())
}

fn conflict(message: String) -> ApiError {
    DomainError::State {
        message,
        field: None,
    }
    .into()
}

fn plan_of(row: &JobRow) -> Option<ShutdownPlan> {
    row.result
        .as_deref()
        .and_then(|r| serde_json::from_str::<ShutdownPlan>(r).ok())
}

impl Lifecycle {
    /// The scheduled shutdown this node will run.
    pub fn plan(&self) -> Option<ShutdownPlan> {
        self.plan.borrow().clone()
    }

    /// The step of the stop sequence, once begun.
    pub fn stopping(&self) -> Option<&'static str> {
        self.stopping.lock().ok().and_then(|s| *s)
    }

    fn set_step(&self, step: &'static str) {
        tracing::info!(step, "stopping");
        if let Ok(mut s) = self.stopping.lock() {
            *s = Some(step);
        }
        self.forget_announcements();
    }

    fn forget_announcements(&self) {
        if let Ok(mut a) = self.announced.lock() {
            *a = None;
        }
    }

    /// Resolves when the scheduled shutdown is due (waiting again if it is moved or
    /// cancelled meanwhile); never, while none is scheduled.
    pub async fn due(&self) -> ShutdownPlan {
        let mut rx = self.plan.subscribe();
        loop {
            let plan = rx.borrow_and_update().clone();
            match plan {
                None => {
                    if rx.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
                Some(p) => {
                    let wait = (p.at - time::now()).to_std().unwrap_or(Duration::ZERO);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => return p,
                        changed = rx.changed() => {
                            if changed.is_err() {
                                return std::future::pending().await;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Schedules (or moves) the shutdown to `at`, announced with `message`. Admins only.
    pub async fn schedule(
        &self,
        state: &AppState,
        actor: &Actor,
        at: Timestamp,
        message: &str,
    ) -> ApiResult<ShutdownPlan> {
        admins_only(state, SHUTDOWN_JOB, actor, "schedule a shutdown").await?;
        if self.stopping().is_some() {
            return Err(conflict("the server is stopping already".into()));
        }
        let now = time::now();
        if at > now + FURTHEST {
            return Err(DomainError::invalid(
                "at",
                "a shutdown is scheduled at most 30 days ahead",
            )
            .into());
        }
        let store = &state.kontor.store;
        let mut row = JobRow::running(SHUTDOWN_JOB, None, &actor.user_id, &state.jobs.node_id);
        row.state = "scheduled".into();
        row.subject = Some(time::format(at.max(now)));
        let plan = ShutdownPlan {
            job_id: row.id.clone(),
            at: at.max(now),
            message: message.trim().to_string(),
            by: actor.user_id.clone(),
        };
        row.result = Some(json!(plan).to_string());
        store.put_job(&row).await?;
        if let Some(old) = self.plan() {
            self.close_row(
                store,
                &old.job_id,
                "cancelled",
                Some(format!("replaced by {}", plan.job_id)),
            )
            .await;
        }
        tracing::info!(at = %plan.subject(), by = %actor.user_id, "shutdown scheduled");
        self.plan.send_replace(Some(plan.clone()));
        self.forget_announcements();
        Ok(plan)
    }

    /// Cancels the scheduled shutdown; `None` when none was scheduled. Admins only.
    pub async fn cancel(&self, state: &AppState, actor: &Actor) -> ApiResult<Option<ShutdownPlan>> {
        admins_only(state, SHUTDOWN_JOB, actor, "cancel a shutdown").await?;
        if self.stopping().is_some() {
            return Err(conflict(
                "the shutdown has begun; it cannot be cancelled".into(),
            ));
        }
        let Some(plan) = self.plan() else {
            return Ok(None);
        };
        self.plan.send_replace(None);
        self.close_row(
            &state.kontor.store,
            &plan.job_id,
            "cancelled",
            Some(format!("cancelled by {}", actor.user_id)),
        )
        .await;
        tracing::info!(by = %actor.user_id, "shutdown cancelled");
        self.forget_announcements();
        Ok(Some(plan))
    }

    async fn close_row(&self, store: &DynStore, job_id: &str, state: &str, error: Option<String>) {
        match store.job(job_id).await {
            Ok(Some(mut row)) => {
                row.state = state.into();
                row.error = error;
                row.updated_at = time::now();
                if let Err(e) = store.put_job(&row).await {
                    tracing::warn!(job = job_id, error = %e, "cannot record a shutdown's end");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(job = job_id, error = %e, "cannot read a shutdown's job"),
        }
    }

    /// At start: takes up a shutdown scheduled before a restart (still ahead), and marks
    /// those whose time passed, or that were under way, as failed with the reason.
    pub async fn take_up(&self, store: &DynStore) {
        let rows = match store.jobs(SHUTDOWN_JOB, None, 50).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read scheduled shutdowns");
                return;
            }
        };
        let now = time::now();
        for row in rows
            .iter()
            .filter(|r| r.state == "scheduled" || r.state == "running")
        {
            let plan = plan_of(row);
            match plan {
                Some(p) if row.state == "scheduled" && p.at > now && self.plan().is_none() => {
                    tracing::info!(at = %p.subject(), "taking up a scheduled shutdown");
                    self.plan.send_replace(Some(p));
                }
                _ => {
                    let why = if row.state == "running" {
                        "interrupted: the server stopped before the shutdown's final snapshot was verified"
                    } else {
                        "the server was restarted before the shutdown's time"
                    };
                    self.close_row(store, &row.id, "failed", Some(why.into()))
                        .await;
                }
            }
        }
        self.forget_announcements();
    }

    /// What every logged-in user is told: a scheduled shutdown (with its reminders) and a
    /// freeze of the data. Read from the database (so every node tells the same), at most
    /// every two seconds.
    pub async fn announcements(&self, store: &DynStore) -> Vec<Value> {
        if let Ok(a) = self.announced.lock() {
            if let Some((at, list)) = a.as_ref() {
                if at.elapsed() < ANNOUNCEMENTS_FRESH {
                    return list.clone();
                }
            }
        }
        let now = time::now();
        let mut list = Vec::new();
        let scheduled = match store.jobs(SHUTDOWN_JOB, None, 20).await {
            Ok(rows) => rows
                .iter()
                .filter(|r| r.state == "scheduled" || r.state == "running")
                .filter_map(plan_of)
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read scheduled shutdowns");
                self.plan().into_iter().collect()
            }
        };
        if let Some(p) = scheduled.into_iter().min_by_key(|p| p.at) {
            list.push(json!({
                "kind": "shutdown",
                "message": p.message,
                "at": time::format(p.at),
                "seconds_left": (p.at - now).num_seconds().max(0),
                "reminders": p.reminders(now).into_iter().map(time::format).collect::<Vec<_>>(),
                "reminder_minutes": REMINDER_MINUTES,
            }));
        }
        match store.read_only().await {
            Ok(Some(r)) => list.push(json!({
                "kind": "read_only",
                "reason": r.reason.as_str(),
                "message": r.message,
                "since": time::format(r.since),
                "retry_after_seconds": r.retry_after_secs,
            })),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read whether the data is frozen"),
        }
        if let Ok(mut a) = self.announced.lock() {
            *a = Some((Instant::now(), list.clone()));
        }
        list
    }

    /// Maintenance on (`Some(message)`) or off, for every node. Admins only; the switch is
    /// recorded as a `maintenance` job. Off refuses to lift a freeze that an upgrade holds.
    pub async fn set_maintenance(
        &self,
        state: &AppState,
        actor: &Actor,
        on: Option<(&str, u32)>,
    ) -> ApiResult<Option<ReadOnly>> {
        admins_only(state, MAINTENANCE_JOB, actor, "switch maintenance mode").await?;
        let store = &state.kontor.store;
        let current = store.read_only().await?;
        if let Some(c) = current
            .as_ref()
            .filter(|c| c.reason != ReadOnlyReason::Maintenance)
        {
            if on.is_none() || c.reason == ReadOnlyReason::Upgrade {
                return Err(conflict(format!(
                    "the data is frozen by {}; {}",
                    c.reason.as_str(),
                    c.describe()
                )));
            }
        }
        let wanted = on.map(|(message, retry)| {
            ReadOnly::new(ReadOnlyReason::Maintenance, message, &actor.user_id, retry)
        });
        store.set_read_only(Scope::Database, wanted.clone()).await?;
        let mut row = JobRow::running(MAINTENANCE_JOB, None, &actor.user_id, &state.jobs.node_id);
        row.state = "succeeded".into();
        row.result = Some(
            json!({"on": wanted.is_some(), "message": wanted.as_ref().map(|w| w.message.clone())})
                .to_string(),
        );
        if let Err(e) = store.put_job(&row).await {
            tracing::warn!(error = %e, "cannot record a maintenance switch");
        }
        tracing::info!(on = wanted.is_some(), by = %actor.user_id, "maintenance mode switched");
        self.forget_announcements();
        Ok(wanted)
    }

    /// The stop sequence up to the drain: this node read-only once the writes in flight
    /// have ended, then a final snapshot verified by restoring it (where the server has
    /// backup settings). Reads are served meanwhile; `serve` drains and closes after.
    pub async fn stop(
        &self,
        state: &AppState,
        trigger: Trigger,
        grace: Duration,
    ) -> (StopReport, Option<Arc<TrackedJob>>) {
        let store = &state.kontor.store;
        self.set_step("read_only");
        let (message, job) = match &trigger {
            Trigger::Scheduled(plan) => {
                let job = match store.job(&plan.job_id).await {
                    Ok(Some(row)) => TrackedJob::adopt(store.clone(), row, &state.jobs.node_id)
                        .await
                        .ok(),
                    _ => None,
                };
                (plan.message.clone(), job)
            }
            Trigger::Signal => {
                let job = TrackedJob::start(
                    store.clone(),
                    SHUTDOWN_JOB,
                    Some("signal"),
                    "signal",
                    &state.jobs.node_id,
                )
                .await
                .ok();
                ("the server is stopping".to_string(), job)
            }
        };
        let frozen = ReadOnly::new(
            ReadOnlyReason::Shutdown,
            &message,
            "shutdown",
            SHUTDOWN_RETRY_SECS,
        );
        if tokio::time::timeout(grace, store.set_read_only(Scope::Node, Some(frozen)))
            .await
            .is_err()
        {
            tracing::error!(
                seconds = grace.as_secs(),
                "writes in flight did not end within the grace period"
            );
        }
        self.set_step("final_snapshot");
        let snapshot = match &state.backups {
            None => Err("this server has no backup settings: no final snapshot".to_string()),
            Some(desk) => {
                let d = desk.clone();
                let progress: Arc<dyn kontor_backup::progress::Progress> = match &job {
                    Some(j) => j.clone(),
                    None => Arc::new(kontor_core::progress::Silent),
                };
                let started = Instant::now();
                kontor_backup::checked::on_own_thread("kontor-final-snapshot", move || async move {
                    kontor_backup::checked::snapshot_and_verify(
                        &d.source, &d.folder, &d.keys, d.level, "shutdown", progress,
                    )
                    .await
                })
                .await
                .map(|c| {
                    json!({
                        "archive": c.name,
                        "seq": c.manifest.seq,
                        "bytes": c.bytes,
                        "digest": c.manifest.digest,
                        "verified_seconds": c.verify_seconds,
                        "seconds": started.elapsed().as_secs_f64(),
                    })
                })
                .map_err(|e| format!("the final snapshot failed: {e}"))
            }
        };
        match &snapshot {
            Ok(s) => tracing::info!(archive = %s["archive"], "final snapshot verified"),
            Err(e) => tracing::error!("{e}"),
        }
        self.set_step("draining");
        (StopReport { snapshot }, job)
    }
}

impl ShutdownPlan {
    fn subject(&self) -> String {
        time::format(self.at)
    }
}
