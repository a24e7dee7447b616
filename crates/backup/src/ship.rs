//! Continuous backup: a server with a backup target ships every new journal entry there as a
//! segment, a shipment starting every `interval` (default 500 ms, so that an entry is in the
//! target within a second, the shipment's own time included), and takes scheduled snapshots,
//! each verified right after it is written.
//!
//! One server writes to a target: the shipping node holds the database lease `backup` (so a
//! cluster of PostgreSQL nodes ships once) and the target's writer lock; a target that holds
//! another database's history is refused at start. Progress and failures are kept in the
//! target's `writer.json` (read by `kontor backup status`) and in [`ShipHandle`].

use crate::checked;
use crate::create::Source;
use crate::error::{BackupError, BackupResult};
use crate::folder::Event;
use crate::progress::Silent;
use crate::retention::{self, Policy};
use crate::seal::{Keys, SealTo};
use crate::segment::{
    segment_name, Segment, SegmentHeader, MAX_ENTRIES, SEGMENT_FORMAT, SEGMENT_FORMAT_VERSION,
};
use crate::target::{BackupTarget, WriterLock, WriterState};
use kontor_core::Kontor;
use kontor_store::bulk::{CounterRow, CredentialRow, JournalRow};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// The database lease held by the node that ships.
pub const SHIP_LEASE: &str = "backup";
/// Default time between the starts of two shipments.
pub const DEFAULT_INTERVAL_MS: u64 = 500;
/// Default snapshot schedule: daily at 23:00 server time.
pub const DEFAULT_SCHEDULE: &str = "0 23 * * *";

#[derive(Debug, Clone)]
pub struct ShipConfig {
    pub target: BackupTarget,
    /// How often new entries are shipped.
    pub interval: Duration,
    /// When snapshots are taken (cron: minute hour day month weekday), server local time.
    pub schedule: croner::Cron,
    /// zstd level of snapshots.
    pub level: i32,
    /// What snapshots and segments are encrypted to (nothing: not encrypted).
    pub keys: Keys,
    /// Which snapshots are kept; applied after each verified snapshot.
    pub retention: Policy,
}

impl ShipConfig {
    pub fn new(target: BackupTarget, interval: Duration, schedule: &str) -> BackupResult<Self> {
        if interval < Duration::from_millis(100) || interval > Duration::from_secs(3600) {
            return Err(BackupError::Refused(format!(
                "the shipping interval must be between 100 ms and 1 h, not {interval:?}"
            )));
        }
        let schedule = croner::Cron::new(schedule).parse().map_err(|e| {
            BackupError::Refused(format!(
                "snapshot schedule '{schedule}' is not a cron expression: {e}"
            ))
        })?;
        Ok(ShipConfig {
            target,
            interval,
            schedule,
            level: crate::format::DEFAULT_LEVEL,
            keys: Keys::default(),
            retention: Policy::default(),
        })
    }
}

/// Shared view of the shipper, for the API and the logs.
#[derive(Clone, Default)]
pub struct ShipHandle(Arc<Mutex<WriterState>>);

impl ShipHandle {
    pub fn state(&self) -> WriterState {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
    fn update(&self, f: impl FnOnce(&mut WriterState)) -> WriterState {
        match self.0.lock() {
            Ok(mut s) => {
                f(&mut s);
                s.clone()
            }
            Err(_) => WriterState::default(),
        }
    }
}

pub struct Shipper {
    source: Source,
    cfg: ShipConfig,
    handle: ShipHandle,
    lock: Option<WriterLock>,
    origin: String,
    /// What segments are encrypted to, when the target is encrypted.
    seal: Option<SealTo>,
    schema_version: i64,
    shipped: (i64, i64),
    next_snapshot: Option<chrono::DateTime<chrono::Local>>,
    snapshot_job: Option<tokio::task::JoinHandle<()>>,
    last_heartbeat: Option<Instant>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Shipper {
    /// Checks the target against the database before the server starts: refuses a target of
    /// another database, one ahead of this database (this is an older copy), and, when
    /// `exclusive` (a single-node engine), one another live server writes to.
    pub async fn prepare(
        source: Source,
        cfg: ShipConfig,
        node_id: &str,
        exclusive: bool,
    ) -> BackupResult<Shipper> {
        let snap = source.open().await?;
        let (seq, at, schema_version) = (snap.seq(), snap.at(), snap.schema_version());
        let origin = snap.origin().map(str::to_string);
        snap.close().await;
        let origin = origin.ok_or_else(|| {
            BackupError::Refused("the database has no journal yet; nothing to back up".into())
        })?;
        let target = cfg.target.clone();
        let keys = cfg.keys.clone();
        let (info, seal) = blocking(move || target.bind(&origin, &keys)).await?;
        let target = cfg.target.clone();
        let last = blocking(move || target.last_seq()).await?;
        if last > seq {
            return Err(BackupError::Refused(format!(
                "backup target {} holds the journal up to seq {last}, but this database is at seq \
                 {seq}: it is an older copy. Restore the newer state from the target \
                 (`kontor restore --from {} --data NEWDIR`) or point this server to a new target",
                cfg.target.describe(),
                cfg.target.describe()
            )));
        }
        // Shipping goes on where the segments end, so they stay gap-free; a target with
        // snapshots only (written by `backup create --to`) is continued from the newest.
        let target = cfg.target.clone();
        let (segments, snapshots) =
            blocking(move || Ok((target.segments()?, target.snapshots()?))).await?;
        let shipped_seq = match segments.last() {
            Some(s) => s.last_seq,
            None => snapshots
                .iter()
                .filter_map(|s| s.manifest.as_ref().map(|m| m.seq))
                .max()
                .unwrap_or(0),
        };
        let handle = ShipHandle::default();
        handle.update(|s| {
            *s = WriterState {
                holder: node_id.to_string(),
                host: hostname(),
                pid: std::process::id(),
                started_at: chrono::Utc::now().to_rfc3339(),
                heartbeat_ms: now_ms(),
                shipped_seq,
                shipped_at: 0,
                source_seq: seq,
                source_at: at,
                interval_ms: cfg.interval.as_millis() as u64,
                stopped: false,
                last_error: None,
            }
        });
        let mut shipper = Shipper {
            source,
            handle,
            lock: None,
            origin: info.origin,
            seal,
            schema_version,
            shipped: (shipped_seq, 0),
            next_snapshot: None,
            snapshot_job: None,
            last_heartbeat: None,
            cfg,
        };
        shipper.schedule_next();
        if exclusive {
            shipper.take_target().await?;
        }
        Ok(shipper)
    }

    pub fn handle(&self) -> ShipHandle {
        self.handle.clone()
    }

    fn schedule_next(&mut self) {
        self.next_snapshot = self
            .cfg
            .schedule
            .find_next_occurrence(&chrono::Local::now(), false)
            .ok();
    }

    /// Takes the writer lock and makes sure no other live server writes here.
    async fn take_target(&mut self) -> BackupResult<()> {
        if self.lock.is_some() {
            return Ok(());
        }
        let target = self.cfg.target.clone();
        let holder = self.handle.state().holder;
        let lock = blocking(move || {
            let lock = target.lock()?;
            match target.writer_state()? {
                Some(w) if w.holder != holder && !w.is_stale(now_ms()) => Err(target.held_by()),
                _ => Ok(lock),
            }
        })
        .await?;
        self.lock = Some(lock);
        Ok(())
    }

    /// Ships until `stop` turns true, then ships what is left and marks the target free.
    pub async fn run(mut self, kontor: Arc<Kontor>, mut stop: watch::Receiver<bool>) {
        let holder = self.handle.state().holder;
        let mut warned = false;
        loop {
            let started = Instant::now();
            let leased = kontor
                .store
                .try_lease(
                    SHIP_LEASE,
                    &holder,
                    kontor_domain::time::now(),
                    (self.cfg.interval * 5).max(Duration::from_secs(10)),
                )
                .await;
            let result = match leased {
                Ok(true) => match self.take_target().await {
                    Ok(()) => self.cycle().await,
                    Err(e) => Err(e),
                },
                Ok(false) => {
                    // Another node of this cluster ships; give up the target if we had it.
                    self.lock = None;
                    Ok(())
                }
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => warned = false,
                Err(e) => {
                    if !warned {
                        tracing::warn!(target = %self.cfg.target.describe(), error = %e, "backup shipping failed; retrying");
                        warned = true;
                    }
                    let msg = e.to_string();
                    self.handle.update(|s| s.last_error = Some(msg));
                    let _ = self.heartbeat(true).await;
                }
            }
            // Shipments start every interval, however long the last one took.
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.interval.saturating_sub(started.elapsed())) => {}
                _ = stop.changed() => break,
            }
        }
        if self.lock.is_some() {
            if let Err(e) = self.ship().await {
                tracing::warn!(error = %e, "the last journal entries could not be shipped");
            }
            if let Some(job) = self.snapshot_job.take() {
                job.abort();
            }
            self.handle.update(|s| s.stopped = true);
            let _ = self.heartbeat(true).await;
        }
    }

    async fn cycle(&mut self) -> BackupResult<()> {
        let running = self.snapshot_job.as_ref().is_some_and(|j| !j.is_finished());
        if !running {
            let target = self.cfg.target.clone();
            let snapshots = blocking(move || target.snapshots()).await?;
            let newest = snapshots.iter().rev().find_map(|s| s.manifest.as_ref());
            let needed = newest.is_none_or(|m| m.schema_version < self.schema_version);
            if needed && newest.is_none() {
                // The first snapshot comes before any segment: replay needs a base.
                self.snapshot_now().await?;
            } else if needed
                || self
                    .next_snapshot
                    .is_some_and(|t| t <= chrono::Local::now())
            {
                self.schedule_next();
                self.start_snapshot();
            }
        }
        self.ship().await?;
        self.handle.update(|s| s.last_error = None);
        self.heartbeat(false).await
    }

    /// Takes a snapshot and verifies it, in the background.
    fn start_snapshot(&mut self) {
        let (source, cfg, handle) = (self.source.clone(), self.cfg.clone(), self.handle.clone());
        self.snapshot_job = Some(tokio::spawn(async move {
            if let Err(e) = snapshot_and_verify_apart(source, cfg).await {
                tracing::error!(error = %e, "scheduled snapshot failed");
                let msg = e.to_string();
                handle.update(|s| s.last_error = Some(msg));
            }
        }));
    }

    async fn snapshot_now(&mut self) -> BackupResult<()> {
        let seq = snapshot_and_verify_apart(self.source.clone(), self.cfg.clone()).await?;
        if self.shipped.0 < seq {
            self.shipped = (seq, 0);
            self.handle.update(|s| s.shipped_seq = seq);
        }
        Ok(())
    }

    /// Ships every entry after the last shipped one as segments.
    async fn ship(&mut self) -> BackupResult<()> {
        let mut snap = self.source.open().await?;
        let result = self.ship_from(snap.as_mut()).await;
        snap.close().await;
        result
    }

    async fn ship_from(&mut self, snap: &mut dyn kontor_store::bulk::Snapshot) -> BackupResult<()> {
        let head = (snap.seq(), snap.at());
        self.handle.update(|s| {
            s.source_seq = head.0;
            s.source_at = head.1;
        });
        if head.0 <= self.shipped.0 {
            return Ok(());
        }
        if snap.schema_version() != self.schema_version {
            return Err(BackupError::Version(format!(
                "the database moved to schema version {} while shipping at {}; restart the server",
                snap.schema_version(),
                self.schema_version
            )));
        }
        let counters = snap.counters().await?;
        let since = if self.shipped.1 > 0 {
            self.shipped.1
        } else {
            0
        };
        let credentials = snap.credentials_since(since).await?;
        let (tx, mut rx) = mpsc::channel::<Vec<JournalRow>>(1);
        let after = self.shipped.0;
        let read = async move {
            // The sender goes with the reader, so the writer below sees the end.
            let tx = tx;
            snap.journal(after, MAX_ENTRIES, &tx).await
        };
        let write = async {
            while let Some(batch) = rx.recv().await {
                let (first, last) = match (batch.first(), batch.last()) {
                    (Some(f), Some(l)) => ((f.seq, f.at), (l.seq, l.at)),
                    _ => continue,
                };
                if first.0 != self.shipped.0 + 1 {
                    return Err(BackupError::Io(format!(
                        "journal read from seq {} after shipping {}",
                        first.0, self.shipped.0
                    )));
                }
                let seg = self.segment(batch, &counters, &credentials, first, last);
                let target = self.cfg.target.clone();
                let seal = self.seal.clone();
                blocking(move || {
                    let bytes = seg.encode(seal.as_ref())?;
                    target.put(&segment_name(first.0, last.0, seal.is_some()), &bytes)
                })
                .await?;
                self.shipped = last;
                self.handle.update(|s| {
                    s.shipped_seq = last.0;
                    s.shipped_at = last.1;
                });
            }
            Ok::<_, BackupError>(())
        };
        let (read, write) = tokio::join!(async { read.await.map_err(BackupError::from) }, write);
        write?;
        read?;
        self.last_heartbeat = None;
        Ok(())
    }

    fn segment(
        &self,
        journal: Vec<JournalRow>,
        counters: &[CounterRow],
        credentials: &[CredentialRow],
        first: (i64, i64),
        last: (i64, i64),
    ) -> Segment {
        let credentials: Vec<CredentialRow> = credentials
            .iter()
            .filter(|c| c.changed_at >= first.1 && c.changed_at <= last.1)
            .cloned()
            .collect();
        Segment {
            header: SegmentHeader {
                format: SEGMENT_FORMAT.into(),
                format_version: SEGMENT_FORMAT_VERSION,
                kontor_version: env!("CARGO_PKG_VERSION").into(),
                schema_version: self.schema_version,
                origin: self.origin.clone(),
                first_seq: first.0,
                last_seq: last.0,
                first_at: first.1,
                last_at: last.1,
                written_at: chrono::Utc::now().to_rfc3339(),
                journal: journal.len() as u64,
                counters: counters.len() as u64,
                credentials: credentials.len() as u64,
            },
            journal,
            counters: counters.to_vec(),
            credentials,
        }
    }

    /// Rewrites `writer.json`: after each shipment, on failures, and every few seconds.
    async fn heartbeat(&mut self, force: bool) -> BackupResult<()> {
        let due = self
            .last_heartbeat
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5));
        if !(force || due) || self.lock.is_none() {
            return Ok(());
        }
        let state = self.handle.update(|s| s.heartbeat_ms = now_ms());
        let target = self.cfg.target.clone();
        blocking(move || target.put_writer_state(&state)).await?;
        self.last_heartbeat = Some(Instant::now());
        Ok(())
    }
}

/// The scheduled snapshot: taken into the target and verified ([`checked::snapshot_and_verify`]),
/// then retention applied. Returns the snapshot's seq.
async fn scheduled_snapshot(source: &Source, cfg: &ShipConfig) -> BackupResult<i64> {
    let folder = cfg.target.snapshot_folder();
    let checked = checked::snapshot_and_verify(
        source,
        &folder,
        &cfg.keys,
        cfg.level,
        SERVER,
        Arc::new(Silent),
    )
    .await?;
    let (t, policy) = (cfg.target.clone(), cfg.retention);
    blocking(move || prune(&t, policy, SERVER).map(|_| ())).await?;
    Ok(checked.manifest.seq)
}

/// Who scheduled work is done by, in the folder's log.
pub const SERVER: &str = "server";

/// Applies retention to `target` (archives and journal), logging what it removed as `by`.
pub fn prune(target: &BackupTarget, policy: Policy, by: &str) -> BackupResult<retention::Plan> {
    let folder = target.snapshot_folder();
    let plan = retention::plan(&folder, Some(target), policy)?;
    let removed: Vec<String> = plan.removed().map(|d| d.snapshot.name.clone()).collect();
    if removed.is_empty() && plan.segments.is_empty() && plan.stale.is_empty() {
        return Ok(plan);
    }
    let result = retention::apply(&plan, &folder, Some(target));
    let detail = format!(
        "removed {} archives ({}), {} journal segments, {} stale temporary files",
        removed.len(),
        removed.join(", "),
        plan.segments.len(),
        plan.stale.len()
    );
    let _ = folder.log(&Event::new(
        by,
        "prune",
        None,
        match &result {
            Ok(()) => Ok(detail.clone()),
            Err(e) => Err(format!("{detail}: {e}")),
        },
    ));
    result?;
    tracing::info!("{detail}");
    Ok(plan)
}

/// [`scheduled_snapshot`] on a thread of its own (see [`checked::on_own_thread`]); the
/// server goes on shipping meanwhile.
async fn snapshot_and_verify_apart(source: Source, cfg: ShipConfig) -> BackupResult<i64> {
    checked::on_own_thread("kontor-snapshot", move || async move {
        scheduled_snapshot(&source, &cfg).await
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> BackupResult<T> + Send + 'static,
) -> BackupResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BackupError::Io(format!("backup task failed: {e}")))?
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
