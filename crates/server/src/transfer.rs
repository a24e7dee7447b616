//! Imports and exports through the API. An upload waits in this node's data directory
//! (`imports/<job id>/`, with the request that came with it) while its import runs as a job;
//! an import interrupted by a stop or a crash is taken up again when the node starts, and goes
//! on after the last chunk that landed. A dry run keeps its upload for a day, so the import it
//! previewed can be run on the same file without sending it again. Exports of any size are
//! written to `exports/<job id>.<format>` by a job and downloaded from there.

use crate::tracked_jobs::{JobEnd, TrackedJob};
use kontor_core::progress::Progress;
use kontor_core::{CoreError, Kontor};
use kontor_domain::permission::Actor;
use kontor_store::{JobRow, StoreError};
use kontor_tabular::import::{self, ImportError, ImportRun, ImportSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest upload an import takes by default.
pub const DEFAULT_MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;
/// How long a dry run's upload waits for the import it previewed.
const DRY_RUN_KEPT: Duration = Duration::from_secs(24 * 3600);
/// The name of the request kept beside an upload.
const REQUEST_FILE: &str = "request.json";
/// The name an upload is kept under.
const UPLOAD_FILE: &str = "upload";

/// What a job needs to run again after an interruption: the request and who made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeptRequest {
    pub spec: ImportSpec,
    /// The user the import runs as (`system` for the local administrator).
    pub user_id: String,
    /// The file read, when it is not the upload beside this request (a local import reads the
    /// administrator's file where it is).
    pub path: Option<PathBuf>,
}

/// Where this node keeps uploads and exports.
pub struct TransferDesk {
    pub imports: PathBuf,
    pub exports: PathBuf,
    pub max_upload: u64,
    /// Imports this node is running now.
    running: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How often a node looks for interrupted imports it can take up (on PostgreSQL another
/// process's lease must run out first).
pub const RESUME_EVERY: Duration = Duration::from_secs(10);

impl TransferDesk {
    /// The desk of a data directory.
    pub fn new(data_dir: &Path) -> TransferDesk {
        TransferDesk {
            imports: data_dir.join("imports"),
            exports: data_dir.join("exports"),
            max_upload: DEFAULT_MAX_UPLOAD,
            running: std::sync::Mutex::new(std::collections::HashSet::new()),
        }
    }

    pub fn job_dir(&self, job_id: &str) -> PathBuf {
        self.imports.join(job_id)
    }

    pub fn upload_path(&self, job_id: &str) -> PathBuf {
        self.job_dir(job_id).join(UPLOAD_FILE)
    }

    /// Keeps the request beside the upload (written to a temporary name, then renamed).
    pub fn keep_request(&self, job_id: &str, req: &KeptRequest) -> std::io::Result<()> {
        let dir = self.job_dir(job_id);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("{REQUEST_FILE}.tmp"));
        std::fs::write(
            &tmp,
            serde_json::to_vec(req).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, dir.join(REQUEST_FILE))
    }

    pub fn kept_request(&self, job_id: &str) -> Option<KeptRequest> {
        let bytes = std::fs::read(self.job_dir(job_id).join(REQUEST_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The file an import reads.
    pub fn file_of(&self, job_id: &str, req: &KeptRequest) -> PathBuf {
        req.path.clone().unwrap_or_else(|| self.upload_path(job_id))
    }

    pub(crate) fn is_running(&self, job_id: &str) -> bool {
        self.running
            .lock()
            .map(|r| r.contains(job_id))
            .unwrap_or(true)
    }

    /// Marks an import as this node's own (before its request is kept, so the resume loop
    /// never takes up an import that is only starting).
    pub(crate) fn set_running(&self, job_id: &str, running: bool) {
        if let Ok(mut r) = self.running.lock() {
            if running {
                r.insert(job_id.to_string());
            } else {
                r.remove(job_id);
            }
        }
    }

    /// Starts (or takes up again) an import as `job`; `node` is this node's id.
    pub fn run_import(
        self: &Arc<Self>,
        kontor: Arc<Kontor>,
        actor: Actor,
        job: Arc<TrackedJob>,
        req: KeptRequest,
        node: String,
    ) {
        let desk = self.clone();
        let job_id = job.row().id;
        let holder = import::lease_holder(&kontor, &node);
        self.set_running(&job_id, true);
        let progress: Arc<dyn Progress> = job.clone();
        job.run(async move {
            let file = desk.file_of(&job_id, &req);
            let run = ImportRun {
                kontor,
                actor,
                job_id: job_id.clone(),
                holder,
                progress: progress.as_ref(),
            };
            let outcome = import::run(&run, req.spec.clone(), &file).await;
            desk.set_running(&job_id, false);
            // Refused by a freeze of the data (maintenance, a shutdown): the import stays
            // running, with its upload, and goes on where it stopped once writes are open.
            if let Err(ImportError::Core(CoreError::Store(StoreError::ReadOnly(r)))) = &outcome {
                tracing::info!(job = %job_id, "an import waits: {}", r.describe());
                return Err(JobEnd::Interrupted(format!(
                    "interrupted: {}",
                    r.describe()
                )));
            }
            if !req.spec.dry_run {
                // The upload is no longer needed once the import ran through (or was refused
                // as a whole); an interrupted one keeps it to go on.
                let _ = std::fs::remove_dir_all(desk.job_dir(&job_id));
            }
            match outcome {
                Ok(report) => {
                    serde_json::to_value(report).map_err(|e| JobEnd::Failed(e.to_string()))
                }
                Err(e) => Err(JobEnd::Failed(e.to_string())),
            }
        });
    }

    /// Takes up the imports this node was running when it stopped, and forgets dry runs'
    /// uploads older than a day.
    pub async fn resume_interrupted(self: &Arc<Self>, kontor: Arc<Kontor>, node_id: &str) {
        let Ok(entries) = std::fs::read_dir(&self.imports) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(job_id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(req) = self.kept_request(&job_id) else {
                let _ = std::fs::remove_dir_all(entry.path());
                continue;
            };
            let row = match kontor.store.job(&job_id).await {
                Ok(Some(row)) => row,
                Ok(None) => {
                    let _ = std::fs::remove_dir_all(entry.path());
                    continue;
                }
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e, "cannot read an import's job");
                    continue;
                }
            };
            if row.state != "running" {
                let old = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > DRY_RUN_KEPT);
                if !req.spec.dry_run || old {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
                continue;
            }
            if self.is_running(&job_id) {
                continue;
            }
            // Another process may still hold it (PostgreSQL): try again on the next round.
            let holder = import::lease_holder(&kontor, node_id);
            match kontor
                .store
                .try_lease(
                    &import::lease_name(&job_id),
                    &holder,
                    kontor_domain::time::now(),
                    import::LEASE_TTL,
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(job = %job_id, error = %e, "cannot take an import's lease");
                    continue;
                }
            }
            if let Err(e) = self.take_up(kontor.clone(), row, req, node_id).await {
                tracing::warn!(job = %job_id, error = %e, "an interrupted import was not taken up");
            }
        }
    }

    async fn take_up(
        self: &Arc<Self>,
        kontor: Arc<Kontor>,
        row: JobRow,
        req: KeptRequest,
        node_id: &str,
    ) -> Result<(), String> {
        let actor = actor_of(&kontor, &req.user_id)
            .await
            .map_err(|e| e.to_string())?;
        let job = TrackedJob::adopt(kontor.store.clone(), row.clone(), node_id)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(job = %row.id, "taking up an interrupted import");
        self.run_import(kontor, actor, job, req, node_id.to_string());
        Ok(())
    }
}

/// The actor of a user id (`system`: the local administrator).
pub async fn actor_of(kontor: &Kontor, user_id: &str) -> kontor_core::CoreResult<Actor> {
    if user_id == kontor_domain::permission::SYSTEM_ACTOR {
        return Ok(Actor::system());
    }
    let user = kontor
        .store
        .get(kontor_domain::Entity::Users, user_id)
        .await?
        .filter(|u| !u.is_deleted())
        .ok_or_else(|| kontor_domain::DomainError::not_found("user", user_id))?;
    kontor_core::auth::actor_for_user(kontor.store.as_ref(), &user).await
}
