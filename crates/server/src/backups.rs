//! What the admin API knows about backups: where snapshots go (the backup target's
//! `snapshots/`, or `backups` in the data directory), the keys they are encrypted with, the
//! retention policy, and this node's shipper, if it ships. Built by `kontor serve` from the same
//! settings as the shipper.

use kontor_backup::create::Source;
use kontor_backup::folder::{ArchiveFolder, StoredSnapshot};
use kontor_backup::retention::{self, Policy};
use kontor_backup::seal::Keys;
use kontor_backup::ship::ShipHandle;
use kontor_backup::target::{BackupTarget, WriterState};
use kontor_backup::BackupResult;
use serde_json::{json, Value};
use std::sync::Mutex;

pub struct BackupDesk {
    pub source: Source,
    pub folder: ArchiveFolder,
    pub target: Option<BackupTarget>,
    pub keys: Keys,
    pub level: i32,
    pub retention: Policy,
    /// This node's shipper, when it runs one.
    pub shipping: Option<ShipHandle>,
    /// The job taking a snapshot through the API on this node, if one runs.
    pub running: Mutex<Option<String>>,
}

/// Events shown with the archive list.
const EVENTS_SHOWN: usize = 50;

impl BackupDesk {
    pub fn new(source: Source, folder: ArchiveFolder, target: Option<BackupTarget>) -> BackupDesk {
        BackupDesk {
            source,
            folder,
            target,
            keys: Keys::default(),
            level: kontor_backup::format::DEFAULT_LEVEL,
            retention: Policy::default(),
            shipping: None,
            running: Mutex::new(None),
        }
    }

    /// Every archive with its verification, pin and what retention does with it, and the
    /// latest events of the backup log.
    pub fn list(&self) -> BackupResult<Value> {
        let decisions = retention::plan(&self.folder, self.target.as_ref(), self.retention)?;
        let archives: Vec<Value> = decisions
            .decisions
            .iter()
            .rev()
            .map(|d| {
                let mut a = archive_json(&d.snapshot);
                a["retention"] = json!(d.keep.iter().map(|r| r.to_string()).collect::<Vec<_>>());
                a
            })
            .collect();
        let events: Vec<Value> = self
            .folder
            .events(EVENTS_SHOWN)?
            .into_iter()
            .rev()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        Ok(json!({
            "folder": self.folder.describe(),
            "archives": archives,
            "events": events,
        }))
    }

    /// Shipping and lag, the newest and newest verified snapshot, failed verifications.
    pub fn status(&self) -> BackupResult<Value> {
        let archives = self.folder.archives()?;
        let newest = archives.iter().rev().find(|s| s.manifest.is_some());
        let newest_verified = archives.iter().rev().find(|s| s.verified_ok());
        let failed: Vec<&str> = archives
            .iter()
            .filter(|s| s.verification.as_ref().is_some_and(|v| !v.ok))
            .map(|s| s.name.as_str())
            .collect();
        let writer = match (&self.shipping, &self.target) {
            (Some(h), _) if !h.state().holder.is_empty() => Some(h.state()),
            (_, Some(t)) => t.writer_state()?,
            _ => None,
        };
        let info = match &self.target {
            Some(t) => t.info()?,
            None => None,
        };
        Ok(json!({
            "target": self.target.as_ref().map(|t| t.describe()),
            "folder": self.folder.describe(),
            "encrypted": info.as_ref().map_or(self.keys.encrypts(), |i| i.key.is_some()),
            "shipping": writer.map(|w| shipping_json(&w)),
            "archives": archives.len(),
            "newest": newest.map(archive_json),
            "newest_verified": newest_verified.map(archive_json),
            "failed_verifications": failed,
        }))
    }
}

fn shipping_json(w: &WriterState) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    let behind = (w.source_seq - w.shipped_seq).max(0);
    let lag = if behind == 0 {
        0.0
    } else {
        (w.source_at - w.shipped_at).max(0) as f64 / 1e6
    };
    let micros = |us: i64| (us > 0).then(|| kontor_domain::time::format_micros(us));
    json!({
        "host": w.host,
        "pid": w.pid,
        "started_at": w.started_at,
        "running": !w.is_stale(now),
        "heartbeat_seconds_ago": (now - w.heartbeat_ms).max(0) as f64 / 1000.0,
        "shipped_seq": w.shipped_seq,
        "shipped_at": micros(w.shipped_at),
        "database_seq": w.source_seq,
        "lag_entries": behind,
        "lag_seconds": lag,
        "interval_ms": w.interval_ms,
        "last_error": w.last_error,
    })
}

/// One archive as the API shows it.
pub fn archive_json(s: &StoredSnapshot) -> Value {
    let m = s.manifest.as_ref();
    json!({
        "id": s.name,
        "bytes": s.bytes,
        "seq": m.map(|m| m.seq),
        "seq_at": m.and_then(|m| m.seq_at.clone()),
        "created_at": m.map(|m| m.created_at.clone()),
        "kontor_version": m.map(|m| m.kontor_version.clone()),
        "schema_version": m.map(|m| m.schema_version),
        "rows": m.map(|m| json!(m.tables)),
        "encrypted": m.is_some_and(|m| m.key.is_some()),
        "unreadable": s.unreadable,
        "verification": s.verification.as_ref().map(|v| json!({
            "ok": v.ok, "at": v.at, "seconds": v.seconds, "error": v.error})),
        "pinned": s.pin.as_ref().map(|p| json!({"at": p.at, "by": p.by, "note": p.note})),
    })
}
