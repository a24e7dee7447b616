//! One exchange run in the background: a task owns the importer — a [`CatalogImport`] for
//! `type=catalog`, a [`SaleImport`] for `type=sale` — so every file of the exchange lands in one
//! journal batch (and a full catalog upload is judged over all its files), takes the files to
//! import one after another, and publishes how far it got. The HTTP side asks it to import a
//! file and waits for it at most one step time, answering `progress` meanwhile; 1C repeats the
//! request until the answer is `success` or `failure`.
//!
//! The run ends when 1C says so (`mode=deactivate` or `mode=complete`), when the next `init`
//! starts a new exchange, or when the session has been quiet for the idle time (classic 1C
//! sends `import.xml` and `offers.xml` and nothing after). The run is a job
//! (`exchange.catalog` or `exchange.sale`) whose result is the run's report.

use super::upload;
use crate::tracked_jobs::TrackedJob;
use kontor_backup::progress::Progress;
use kontor_core::Kontor;
use kontor_domain::Actor;
use kontor_exchange::sale::SaleImport;
use kontor_exchange::{CatalogImport, ImportError, Options, RunReport};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Where one file of the run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Queued,
    Unpacking,
    Reading {
        read: u64,
        total: u64,
    },
    /// Applied; the text sums up the run so far.
    Done(String),
    Failed(String),
}

impl FileState {
    pub fn is_over(&self) -> bool {
        matches!(self, FileState::Done(_) | FileState::Failed(_))
    }
}

/// What the run has done, as the HTTP side sees it.
#[derive(Debug, Clone, Default)]
pub struct RunStatus {
    pub files: HashMap<String, FileState>,
    /// Set once the run has ended: its report, or why it could not go on.
    pub ended: Option<Result<RunReport, String>>,
}

enum Command {
    Import(String),
    Finish { deactivate: bool },
}

/// What a run imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunKind {
    Catalog,
    Sale,
}

impl RunKind {
    pub fn job_kind(self) -> &'static str {
        match self {
            RunKind::Catalog => "exchange.catalog",
            RunKind::Sale => "exchange.sale",
        }
    }
}

/// The importer a run owns.
enum Importer {
    Catalog(Box<CatalogImport>),
    Sale(Box<SaleImport>),
}

impl Importer {
    async fn new(setup: &RunSetup) -> Result<Importer, ImportError> {
        let (kontor, actor) = (setup.kontor.clone(), setup.actor.clone());
        Ok(match setup.kind {
            RunKind::Catalog => Importer::Catalog(Box::new(
                CatalogImport::new(kontor, actor, setup.options.clone()).await?,
            )),
            RunKind::Sale => Importer::Sale(Box::new(
                SaleImport::new(kontor, actor).with_prefix(&setup.options.id_prefix),
            )),
        })
    }

    async fn import_file(
        &mut self,
        name: &str,
        input: impl std::io::BufRead + Send,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<(), ImportError> {
        match self {
            Importer::Catalog(c) => c.import_file(name, input, progress).await,
            Importer::Sale(s) => s.import_file(name, input, progress).await,
        }
    }

    fn report(&self) -> &RunReport {
        match self {
            Importer::Catalog(c) => c.report(),
            Importer::Sale(s) => s.report(),
        }
    }

    async fn finish(self, deactivate: bool) -> Result<RunReport, ImportError> {
        match self {
            Importer::Catalog(c) if deactivate => c.finish_deactivating().await,
            Importer::Catalog(c) => c.finish().await,
            Importer::Sale(s) => Ok((*s).finish()),
        }
    }
}

/// The handle the session keeps; cheap to clone.
#[derive(Clone)]
pub struct ImportRun {
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<watch::Sender<RunStatus>>,
    job: Arc<TrackedJob>,
    pub job_id: String,
}

/// What a run needs to start.
pub struct RunSetup {
    pub kind: RunKind,
    pub kontor: Arc<Kontor>,
    pub actor: Actor,
    pub options: Options,
    /// The folder the files were uploaded to.
    pub dir: PathBuf,
    /// Most bytes a zip may unpack to.
    pub max_unpacked: u64,
    /// The session's last request; the run ends after `idle` without one.
    pub last_seen: Arc<Mutex<Instant>>,
    pub idle: Duration,
}

impl ImportRun {
    /// Starts a run as a job of the exchange user.
    pub async fn start(setup: RunSetup, node: &str) -> Result<ImportRun, String> {
        let job = TrackedJob::start(
            setup.kontor.store.clone(),
            setup.kind.job_kind(),
            None,
            &setup.actor.user_id,
            node,
        )
        .await
        .map_err(|e| format!("cannot record the exchange run: {e}"))?;
        let (commands, inbox) = mpsc::unbounded_channel();
        let status = Arc::new(watch::Sender::new(RunStatus::default()));
        let job_id = job.row().id;
        let (status_of_run, job_of_run) = (status.clone(), job.clone());
        job.clone().run(async move {
            work(setup, inbox, status_of_run, job_of_run)
                .await
                .map_err(crate::tracked_jobs::JobEnd::Failed)
        });
        Ok(ImportRun {
            commands,
            status,
            job,
            job_id,
        })
    }

    pub fn status(&self) -> RunStatus {
        self.status.borrow().clone()
    }

    pub fn is_ended(&self) -> bool {
        self.status.borrow().ended.is_some()
    }

    /// Queues `name` unless the run already has it (queued, being read, or over).
    pub fn import(&self, name: &str) -> Result<(), String> {
        let added = self.status.send_if_modified(|s| {
            if s.files.contains_key(name) || s.ended.is_some() {
                return false;
            }
            s.files.insert(name.to_string(), FileState::Queued);
            true
        });
        if !added {
            return Ok(());
        }
        self.commands
            .send(Command::Import(name.to_string()))
            .map_err(|_| "the exchange run has ended; start again with mode=init".to_string())
    }

    /// Forgets a file that is over, because 1C uploads it anew: the next import reads it
    /// again. `false` while the file is queued or being read.
    pub fn forget(&self, name: &str) -> bool {
        let mut busy = false;
        self.status.send_if_modified(|s| match s.files.get(name) {
            Some(f) if f.is_over() => {
                s.files.remove(name);
                true
            }
            Some(_) => {
                busy = true;
                false
            }
            None => false,
        });
        !busy
    }

    /// Asks the run to end (after what is queued).
    pub fn finish(&self, deactivate: bool) {
        let _ = self.commands.send(Command::Finish { deactivate });
    }

    /// Waits at most `step` for `name` to be over; its state then.
    pub async fn wait_file(&self, name: &str, step: Duration) -> Option<FileState> {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(step, async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if s.files.get(name).is_none_or(FileState::is_over) || s.ended.is_some() {
                        return;
                    }
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        let s = rx.borrow();
        s.files.get(name).cloned()
    }

    /// Waits at most `step` for the run to end and its job to record the end (so the report
    /// 1C is told about is the one the jobs API shows); how it ended, once both happened.
    pub async fn wait_end(&self, step: Duration) -> Option<Result<RunReport, String>> {
        let mut rx = self.status.subscribe();
        let _ = tokio::time::timeout(step, async {
            loop {
                if rx.borrow_and_update().ended.is_some() {
                    break;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
            self.job.recorded().await;
        })
        .await;
        if !self.job.is_recorded() {
            return None;
        }
        let s = rx.borrow();
        s.ended.clone()
    }
}

/// The run's task: files one after another, then the end.
async fn work(
    setup: RunSetup,
    mut inbox: mpsc::UnboundedReceiver<Command>,
    publish: Arc<watch::Sender<RunStatus>>,
    job: Arc<TrackedJob>,
) -> Result<serde_json::Value, String> {
    let end = |outcome: Result<RunReport, String>| {
        publish.send_modify(|s| s.ended = Some(outcome.clone()));
        outcome.and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()))
    };
    let mut run = match Importer::new(&setup).await {
        Ok(r) => r,
        Err(e) => return end(Err(e.to_string())),
    };
    let set = |name: &str, state: FileState| {
        publish.send_modify(|s| {
            s.files.insert(name.to_string(), state);
        })
    };
    loop {
        let command = tokio::select! {
            c = inbox.recv() => c,
            () = tokio::time::sleep(setup.idle.min(Duration::from_secs(5))) => {
                let quiet = setup.last_seen.lock().map(|t| t.elapsed()).unwrap_or_default();
                if quiet < setup.idle {
                    continue;
                }
                tracing::info!(job = %job.row().id, "1C went quiet; the catalog run ends");
                Some(Command::Finish { deactivate: false })
            }
        };
        match command {
            Some(Command::Import(name)) => {
                match import_one(&mut run, &setup, &name, &set, job.as_ref()).await {
                    Ok(()) => set(&name, FileState::Done(summary(run.report()))),
                    Err(e @ ImportError::Stopped { .. }) => {
                        set(&name, FileState::Failed(e.to_string()));
                        // The per-task policy says stop: the run ends here, with its report.
                        job.phase("finishing", None);
                        let finished = run.finish(false).await.map_err(|e| e.to_string());
                        if let Ok(report) = &finished {
                            tracing::info!(summary = %summary(report), "exchange run stopped");
                        }
                        return end(finished.and(Err(e.to_string())));
                    }
                    Err(e) => set(&name, FileState::Failed(e.to_string())),
                }
            }
            Some(Command::Finish { deactivate }) => {
                job.phase("finishing", None);
                return end(run.finish(deactivate).await.map_err(|e| e.to_string()));
            }
            // Every handle is gone (the session was dropped): end as 1C would have.
            None => {
                job.phase("finishing", None);
                return end(run.finish(false).await.map_err(|e| e.to_string()));
            }
        }
    }
}

/// Reads one uploaded file (unpacking any zip that came before it) into the run.
async fn import_one(
    run: &mut Importer,
    setup: &RunSetup,
    name: &str,
    set: &(impl Fn(&str, FileState) + Sync),
    job: &TrackedJob,
) -> Result<(), ImportError> {
    let read_error = |message: String| ImportError::File {
        file: name.to_string(),
        message,
    };
    let zips = upload::zips_in(&setup.dir);
    if !zips.is_empty() {
        set(name, FileState::Unpacking);
        let (dir, max) = (setup.dir.clone(), setup.max_unpacked);
        tokio::task::spawn_blocking(move || {
            zips.iter()
                .try_for_each(|z| upload::unzip(z, &dir, max).map(drop))
        })
        .await
        .map_err(|e| read_error(format!("unpacking stopped: {e}")))?
        .map_err(read_error)?;
    }
    let rel = upload::safe_name(name).map_err(read_error)?;
    let path = setup.dir.join(rel);
    let file = std::fs::File::open(&path).map_err(|e| {
        read_error(format!(
            "the file was not uploaded in this exchange (mode=file first): {e}"
        ))
    })?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    job.phase(name, Some(total));
    set(name, FileState::Reading { read: 0, total });
    let mut before = 0u64;
    let mut progress = |read: u64| {
        job.advance(read.saturating_sub(before));
        before = read;
        set(name, FileState::Reading { read, total });
    };
    run.import_file(
        name,
        std::io::BufReader::with_capacity(256 * 1024, file),
        &mut progress,
    )
    .await
}

/// The run so far, in one line per entity, and how many records failed.
pub fn summary(report: &RunReport) -> String {
    let mut text = format!("journal batch {}\n{}", report.batch, report.summary());
    let failed = report.failed();
    if failed > 0 {
        text.push_str(&format!(
            "\n{failed} record(s) failed and were skipped; the run's report lists each"
        ));
        for f in report.failures.iter().take(10) {
            text.push_str(&format!(
                "\n{}, line {}, {}: {}",
                f.file, f.line, f.record, f.message
            ));
        }
    }
    text
}
