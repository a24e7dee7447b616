//! A snapshot proved good: written into a folder of archives, then verified by restoring it
//! into a scratch place; the verification is kept beside the archive and both steps go to the
//! folder's log. Used by the server's scheduled snapshots and by the admin API.

use crate::create::{snapshot, Created, Source};
use crate::error::{BackupError, BackupResult};
use crate::folder::{ArchiveFolder, Event, Verification};
use crate::format::Manifest;
use crate::progress::Progress;
use crate::restore::{verify, Report};
use crate::seal::Keys;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// A verified snapshot.
#[derive(Debug, Clone)]
pub struct Checked {
    pub name: String,
    pub manifest: Manifest,
    pub bytes: u64,
    pub verify_seconds: f64,
}

/// Takes a snapshot of `source` into `folder`, verifies it and records both as `by`. A
/// snapshot that fails its verification is an error (the archive stays, marked failed).
pub async fn snapshot_and_verify(
    source: &Source,
    folder: &ArchiveFolder,
    keys: &Keys,
    level: i32,
    by: &str,
    progress: Arc<dyn Progress>,
) -> BackupResult<Checked> {
    let staging = folder.staging()?;
    let created = snapshot(source, &staging.dir, level, keys, progress.clone()).await;
    let Created {
        path,
        manifest,
        data_key,
    } = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = folder.log(&Event::new(by, "create", None, Err(e.to_string())));
            return Err(e);
        }
    };
    let name = file_name(&path);
    tracing::info!(archive = %name, seq = manifest.seq, "snapshot written; verifying");
    let _ = folder.log(&Event::new(
        by,
        "create",
        Some(&name),
        Ok(format!("seq {}", manifest.seq)),
    ));
    // The writer knows the data key it just used, so the whole archive is checked even when
    // only the recipients' public keys are configured.
    let mut keys = keys.clone();
    if let Some(k) = &data_key {
        keys.add_data_key(k);
    }
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let report = verify_file_and_record(folder, &name, &path, &keys, by, progress).await;
    // Into the bucket (a folder already holds it), verified or not: a failed one is marked.
    folder.publish(&path, &manifest)?;
    let report = report.map_err(|e| match e {
        e @ BackupError::Key(_) => e,
        e => BackupError::Mismatch(format!("snapshot {name} failed its verification: {e}")),
    })?;
    tracing::info!(archive = %name, "snapshot verified");
    Ok(Checked {
        bytes,
        name,
        manifest,
        verify_seconds: report.seconds,
    })
}

/// Verifies archive `name` of `folder`, keeps the result beside it (unless a key was missing:
/// that says nothing about the archive) and logs it as `by`.
pub async fn verify_and_record(
    folder: &ArchiveFolder,
    name: &str,
    keys: &Keys,
    by: &str,
    progress: Arc<dyn Progress>,
) -> BackupResult<Report> {
    let fetched = folder.fetch(name)?;
    verify_file_and_record(folder, name, &fetched.path, keys, by, progress).await
}

/// [`verify_and_record`] of an archive already at hand as `path`.
async fn verify_file_and_record(
    folder: &ArchiveFolder,
    name: &str,
    path: &Path,
    keys: &Keys,
    by: &str,
    progress: Arc<dyn Progress>,
) -> BackupResult<Report> {
    let started = Instant::now();
    let result = verify(path, keys, progress).await;
    let record = Verification {
        ok: result.is_ok(),
        at: chrono::Utc::now().to_rfc3339(),
        seconds: started.elapsed().as_secs_f64(),
        error: result.as_ref().err().map(|e| e.to_string()),
    };
    if !matches!(result, Err(BackupError::Key(_))) {
        folder.record_verification(name, &record)?;
    }
    let _ = folder.log(&Event::new(
        by,
        "verify",
        Some(name),
        match &result {
            Ok(_) => Ok(format!("verified in {:.1} s", record.seconds)),
            Err(e) => Err(e.to_string()),
        },
    ));
    result
}

/// Runs `work` on a thread of its own with its own runtime. Restoring (and so verifying) runs
/// the schema migrations, whose future the compiler cannot prove `Send`, so it cannot be a
/// task of the server's runtime; this future is `Send` and waits for the thread.
pub async fn on_own_thread<T, F, Fut>(name: &str, work: F) -> BackupResult<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = BackupResult<T>>,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| BackupError::Io(format!("cannot start a runtime: {e}")))
                .and_then(|rt| rt.block_on(work()));
            let _ = tx.send(result);
        })
        .map_err(|e| BackupError::Io(format!("cannot start a thread: {e}")))?;
    rx.await
        .map_err(|_| BackupError::Io(format!("the {name} thread stopped")))?
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default()
}
