//! `/api/v1/admin/backups` (admin only): start a snapshot (verified right after), list the
//! archives, the shipping status and lag, verify an archive; and `/api/v1/jobs/{id}`, the
//! progress of such long work. Every start is recorded in the backup log with who did it.

use super::check_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, PathParams};
use crate::tracked_jobs::{job_json, TrackedJob};
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::Json;
use kontor_backup::checked;
use kontor_backup::progress::Progress;
use kontor_domain::{Actor, DomainError};
use serde_json::{json, Value};
use std::sync::Arc;

/// Who may use these routes.
const ADMINS_ONLY: &str = "backups are for administrators";

fn desk(state: &AppState) -> ApiResult<&Arc<crate::backups::BackupDesk>> {
    state.backups.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "this server has no backup settings (it was not started by `kontor serve`)".into(),
        )
    })
}

fn internal(e: kontor_backup::BackupError) -> ApiError {
    ApiError::Core(kontor_core::CoreError::Store(
        kontor_store::StoreError::Other(e.to_string()),
    ))
}

/// 202 with the job and where to follow it.
pub(crate) fn accepted(job: &TrackedJob) -> (StatusCode, HeaderMap, Json<Value>) {
    let row = job.row();
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/jobs/{}", row.id)) {
        headers.insert(header::LOCATION, v);
    }
    (StatusCode::ACCEPTED, headers, Json(job_json(&row)))
}

/// `POST /admin/backups`: takes a snapshot and verifies it, as a job.
pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let job = start_snapshot(&state, &actor, "api").await?;
    Ok(accepted(&job))
}

/// Starts a snapshot that is verified right after, as a job of `actor` (an admin), recorded in
/// the backup log as started from `surface` (`api`, `web`).
pub(crate) async fn start_snapshot(
    state: &AppState,
    actor: &Actor,
    surface: &str,
) -> ApiResult<Arc<TrackedJob>> {
    super::admin_only(actor, ADMINS_ONLY)?;
    let desk = desk(state)?.clone();
    let store = state.kontor.store.clone();
    let job = {
        // One API snapshot at a time per node; the lock is held only to check and mark.
        let running = desk.running.lock().map(|r| r.clone()).unwrap_or(None);
        if let Some(id) = running {
            return Err(DomainError::State {
                message: format!("a snapshot is being taken already (job {id})"),
                field: None,
            }
            .into());
        }
        let job = TrackedJob::start(
            store,
            "backup.create",
            None,
            &actor.user_id,
            &state.jobs.node_id,
        )
        .await?;
        if let Ok(mut r) = desk.running.lock() {
            *r = Some(job.row().id);
        }
        job
    };
    let by = format!("{surface}:{}", actor.user_id);
    let progress: Arc<dyn Progress> = job.clone();
    let work_desk = desk.clone();
    job.clone().run(async move {
        let d = work_desk.clone();
        let result = checked::on_own_thread("kontor-api-snapshot", move || async move {
            checked::snapshot_and_verify(&d.source, &d.folder, &d.keys, d.level, &by, progress)
                .await
        })
        .await;
        if let Ok(mut r) = work_desk.running.lock() {
            *r = None;
        }
        let c = result.map_err(|e| e.to_string())?;
        Ok(json!({
            "archive": c.name,
            "seq": c.manifest.seq,
            "bytes": c.bytes,
            "rows": c.manifest.tables,
            "digest": c.manifest.digest,
            "verified_seconds": c.verify_seconds,
        }))
    });
    Ok(job)
}

/// Runs `read` on the backup desk off the request's thread (a bucket is asked over the
/// network, a folder read from disk), for an admin.
async fn read_desk(
    state: &AppState,
    actor: &Actor,
    read: impl FnOnce(&crate::backups::BackupDesk) -> kontor_backup::BackupResult<Value>
        + Send
        + 'static,
) -> ApiResult<Json<Value>> {
    super::admin_only(actor, ADMINS_ONLY)?;
    let desk = desk(state)?.clone();
    let out = tokio::task::spawn_blocking(move || read(&desk))
        .await
        .map_err(|e| internal(kontor_backup::BackupError::Io(e.to_string())))?
        .map_err(internal)?;
    Ok(Json(out))
}

/// `GET /admin/backups`.
pub async fn list(State(state): State<Arc<AppState>>, Auth(actor): Auth) -> ApiResult<Json<Value>> {
    read_desk(&state, &actor, |d| d.list()).await
}

/// `GET /admin/backups/status`.
pub async fn status(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<Json<Value>> {
    read_desk(&state, &actor, |d| d.status()).await
}

/// `POST /admin/backups/{id}/verify`: restores the archive into a scratch place and checks it,
/// as a job; the result is kept beside the archive.
pub async fn verify(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(name): PathParams<String>,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let job = start_verify(&state, &actor, name, "api").await?;
    Ok(accepted(&job))
}

/// Starts the verification of archive `name` as a job of `actor` (an admin), recorded as
/// started from `surface`.
pub(crate) async fn start_verify(
    state: &AppState,
    actor: &Actor,
    name: String,
    surface: &str,
) -> ApiResult<Arc<TrackedJob>> {
    super::admin_only(actor, ADMINS_ONLY)?;
    let desk = desk(state)?.clone();
    let (d, n) = (desk.clone(), name.clone());
    // A bucket is asked over the network: off the request's thread.
    let exists = tokio::task::spawn_blocking(move || d.folder.contains(&n).unwrap_or(false))
        .await
        .unwrap_or(false);
    if !exists {
        return Err(ApiError::NotFound(format!("no archive '{name}'")));
    }
    let job = TrackedJob::start(
        state.kontor.store.clone(),
        "backup.verify",
        Some(&name),
        &actor.user_id,
        &state.jobs.node_id,
    )
    .await?;
    let by = format!("{surface}:{}", actor.user_id);
    let progress: Arc<dyn Progress> = job.clone();
    job.clone().run(async move {
        let n = name.clone();
        let report = checked::on_own_thread("kontor-api-verify", move || async move {
            checked::verify_and_record(&desk.folder, &n, &desk.keys, &by, progress).await
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(json!({
            "archive": name,
            "seq": report.manifest.seq,
            "rows": report.manifest.tables,
            "digest": report.manifest.digest,
            "seconds": report.seconds,
        }))
    });
    Ok(job)
}

/// `GET /jobs/{id}`: a job its starter or an admin may see.
pub async fn job(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    let id = check_id(&id)?;
    match state.kontor.store.job(&id).await? {
        Some(row) if actor.is_admin() || row.created_by == actor.user_id => {
            Ok(Json(job_json(&row)))
        }
        _ => Err(ApiError::NotFound(format!("no job {id}"))),
    }
}
