//! A backup target: the folder (local disk or a mounted share) or S3-compatible bucket (see
//! `storage`) a server ships its journal segments and snapshots to. Layout:
//!
//! ```text
//! KONTOR-TARGET            which database's history this holds (its origin), written once
//! writer.json              the shipping server: who, heartbeat, last shipped seq, last errors
//! writer.lock              held (flock) by the shipping process
//! snapshots/*.kontor.tar   archives; snapshots/<archive>.verified.json: their verification
//! journal/<first>-<last>.jsonl.zst   journal segments (`.jsonl.zst.age` when encrypted)
//! journal-key.age          an encrypted target's journal data key, wrapped (see `seal`)
//! ```
//!
//! Every file appears only whole: in a folder it is written under a temporary name (starting
//! with `.`), fsynced, renamed, and the folder fsynced; in a bucket an object appears when its
//! upload completes. An object store has no `flock`: there, one writer per target rests on the
//! heartbeat in `writer.json` alone.

use crate::error::{BackupError, BackupResult};
use crate::folder::ArchiveFolder;
pub use crate::folder::{StoredSnapshot, Verification};
use crate::seal::{KeyInfo, Keys, SealTo, Unseal, JOURNAL_KEY};
use crate::segment::{parse_segment_name, Segment, JOURNAL_DIR};
use crate::storage::Storage;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

pub const TARGET_MARKER: &str = "KONTOR-TARGET";
pub const TARGET_FORMAT: &str = "kontor-backup-target";
pub const SNAPSHOT_DIR: &str = "snapshots";
const WRITER_STATE: &str = "writer.json";
const WRITER_LOCK: &str = "writer.lock";

/// What `KONTOR-TARGET` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub format: String,
    pub format_version: u32,
    /// The database history this target holds (the batch of its journal entry 1).
    pub origin: String,
    pub created_at: String,
    /// Set when the journal segments are encrypted: how their data key is wrapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo>,
}

/// The shipping server's state, rewritten at every shipment and heartbeat.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WriterState {
    /// The node that ships (a fresh id per server start).
    pub holder: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
    /// Last sign of life, milliseconds since the epoch.
    pub heartbeat_ms: i64,
    /// The last journal seq in the target, and its entry's time (microseconds).
    pub shipped_seq: i64,
    pub shipped_at: i64,
    /// The database's head when last looked at.
    pub source_seq: i64,
    pub source_at: i64,
    /// How often the server ships, milliseconds.
    pub interval_ms: u64,
    /// The server stopped cleanly (its lease is free at once).
    pub stopped: bool,
    /// The last failure of shipping, snapshotting or verifying, if the latest attempt failed.
    pub last_error: Option<String>,
}

impl WriterState {
    /// Whether another server may take over: stopped, or silent for long enough.
    pub fn is_stale(&self, now_ms: i64) -> bool {
        let patience = (self.interval_ms as i64 * 5).max(15_000);
        self.stopped || now_ms - self.heartbeat_ms > patience
    }
}

/// A journal segment in a target.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSegment {
    pub name: String,
    pub first_seq: i64,
    pub last_seq: i64,
}

/// A folder target.
#[derive(Debug, Clone)]
pub struct BackupTarget {
    storage: Storage,
    /// The journal's data key, once [`BackupTarget::unlocked`].
    journal_key: Option<Unseal>,
}

/// The held writer lock; released when dropped.
pub struct WriterLock {
    _file: Option<File>,
}

impl BackupTarget {
    pub fn folder(root: impl Into<PathBuf>) -> BackupTarget {
        BackupTarget::on(Storage::Local(root.into()))
    }

    pub fn on(storage: Storage) -> BackupTarget {
        BackupTarget {
            storage,
            journal_key: None,
        }
    }

    /// A folder path or an `s3://bucket/prefix` URL.
    pub fn open(spec: &Path) -> BackupResult<BackupTarget> {
        Ok(BackupTarget::on(Storage::parse(&spec.to_string_lossy())?))
    }

    /// Whether `spec` names a target (holds the marker). An object store that cannot be
    /// reached is not one.
    pub fn is_target(spec: &Path) -> bool {
        BackupTarget::open(spec)
            .and_then(|t| t.storage.exists(TARGET_MARKER))
            .unwrap_or(false)
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn describe(&self) -> String {
        self.storage.describe()
    }

    /// Writes `key` whole and durably.
    pub fn put(&self, key: &str, bytes: &[u8]) -> BackupResult<()> {
        self.storage.put(key, bytes)
    }

    pub fn get(&self, key: &str) -> BackupResult<Vec<u8>> {
        self.storage.get(key)
    }

    fn list(&self, dir: &str) -> BackupResult<Vec<String>> {
        self.storage.list(dir)
    }

    /// What `KONTOR-TARGET` says; `None` for a folder that is not a target yet.
    pub fn info(&self) -> BackupResult<Option<TargetInfo>> {
        let Some(bytes) = self.storage.get_opt(TARGET_MARKER)? else {
            return Ok(None);
        };
        let info: TargetInfo = serde_json::from_slice(&bytes).map_err(|e| {
            BackupError::Refused(format!(
                "{} is not a Kontor backup target ({TARGET_MARKER}: {e})",
                self.describe()
            ))
        })?;
        if info.format != TARGET_FORMAT {
            return Err(BackupError::Refused(format!(
                "{} is not a Kontor backup target",
                self.describe()
            )));
        }
        Ok(Some(info))
    }

    /// Makes this folder the target of the database with history `origin`, or checks that it
    /// already is. A target of another database is refused: its history would be mixed in.
    /// The journal is encrypted when `keys` say so, and must stay as it began: an encrypted
    /// target takes only the same recipients or passphrase, a plain one no keys. Returns the
    /// target's marker and what to encrypt segments to.
    pub fn bind(&self, origin: &str, keys: &Keys) -> BackupResult<(TargetInfo, Option<SealTo>)> {
        let info = self.bind_origin(origin, keys)?;
        let seal = self.check_keys(&info, keys)?;
        Ok((info, seal))
    }

    /// Checks that `keys` encrypt the way this target's journal is encrypted.
    pub fn check_keys(&self, info: &TargetInfo, keys: &Keys) -> BackupResult<Option<SealTo>> {
        match &info.key {
            None if keys.encrypts() => Err(BackupError::Key(format!(
                "backup target {} holds unencrypted backups; encrypted ones go to a new target",
                self.describe()
            ))),
            None => Ok(None),
            Some(_) if !keys.encrypts() => Err(BackupError::Key(format!(
                "backup target {} is encrypted; give the same age recipients or passphrase it was started with",
                self.describe()
            ))),
            Some(k) if !keys.same_as(k) => Err(BackupError::Key(format!(
                "backup target {} is encrypted to {}; the keys given differ",
                self.describe(),
                if k.wrapped_for == "passphrase" {
                    "a passphrase".to_string()
                } else {
                    k.recipients.join(", ")
                }
            ))),
            Some(k) => {
                if k.wrapped_for == "passphrase" {
                    // A different passphrase would make new snapshots unreadable with the old.
                    keys.open(k, &self.get(JOURNAL_KEY)?, &self.describe())?;
                }
                Ok(Some(SealTo::from_info(k)?))
            }
        }
    }

    /// This target with its journal's data key opened by `keys` (unchanged when the journal is
    /// not encrypted).
    pub fn unlocked(&self, keys: &Keys) -> BackupResult<BackupTarget> {
        let mut t = self.clone();
        if let Some(info) = self.info()?.and_then(|i| i.key) {
            t.journal_key = Some(keys.open(&info, &self.get(JOURNAL_KEY)?, &self.describe())?);
        }
        Ok(t)
    }

    /// Reads and checks a journal segment, decrypting it when it is encrypted.
    pub fn read_segment(&self, s: &StoredSegment) -> BackupResult<Segment> {
        if s.name.ends_with(".age") && self.journal_key.is_none() {
            return Err(BackupError::Key(format!(
                "the journal in {} is encrypted; give its keys (--identity or --passphrase-file)",
                self.describe()
            )));
        }
        Segment::decode(
            &self.describe(),
            &s.name,
            &self.get(&s.name)?,
            self.journal_key.as_ref(),
        )
    }

    fn bind_origin(&self, origin: &str, keys: &Keys) -> BackupResult<TargetInfo> {
        match self.info()? {
            Some(info) if info.origin == origin => Ok(info),
            Some(info) => Err(BackupError::Refused(format!(
                "{} holds the backups of another database (history {}, this one is {origin}); \
                 point this server to a new target",
                self.describe(),
                info.origin
            ))),
            None => {
                if !self.list("")?.is_empty() {
                    return Err(BackupError::Refused(format!(
                        "{} is neither empty nor a Kontor backup target; choose an empty folder",
                        self.describe()
                    )));
                }
                let key = keys.new_data_key(JOURNAL_KEY)?;
                if let Some(k) = &key {
                    self.put(JOURNAL_KEY, &k.wrapped)?;
                }
                let info = TargetInfo {
                    format: TARGET_FORMAT.into(),
                    format_version: 1,
                    origin: origin.to_string(),
                    created_at: chrono::Utc::now().to_rfc3339(),
                    key: key.map(|k| k.info),
                };
                let bytes =
                    serde_json::to_vec_pretty(&info).map_err(|e| BackupError::Io(e.to_string()))?;
                self.put(TARGET_MARKER, &bytes)?;
                Ok(info)
            }
        }
    }

    /// Takes the writer lock, or says who holds it.
    /// In an object store there is nothing to lock; the caller's heartbeat check is all.
    pub fn lock(&self) -> BackupResult<WriterLock> {
        let Some(root) = self.storage.local() else {
            return Ok(WriterLock { _file: None });
        };
        std::fs::create_dir_all(root).map_err(|e| BackupError::io(self.describe(), e))?;
        let path = root.join(WRITER_LOCK);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| BackupError::io(path.display(), e))?;
        match file.try_lock() {
            Ok(()) => Ok(WriterLock { _file: Some(file) }),
            Err(std::fs::TryLockError::WouldBlock) => Err(self.held_by()),
            Err(std::fs::TryLockError::Error(e)) => Err(BackupError::io(path.display(), e)),
        }
    }

    /// The refusal naming the server that writes to this target.
    pub fn held_by(&self) -> BackupError {
        let who = match self.writer_state() {
            Ok(Some(w)) => format!(" (host {}, pid {}, since {})", w.host, w.pid, w.started_at),
            _ => String::new(),
        };
        BackupError::Refused(format!(
            "another Kontor{who} is writing to backup target {}; one server per target",
            self.describe()
        ))
    }

    pub fn writer_state(&self) -> BackupResult<Option<WriterState>> {
        Ok(self
            .storage
            .get_opt(WRITER_STATE)?
            .and_then(|b| serde_json::from_slice(&b).ok()))
    }

    pub fn put_writer_state(&self, state: &WriterState) -> BackupResult<()> {
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| BackupError::Io(e.to_string()))?;
        self.put(WRITER_STATE, &bytes)
    }

    /// The folder of the target's snapshots.
    pub fn snapshot_folder(&self) -> ArchiveFolder {
        ArchiveFolder::within(self.storage.clone(), SNAPSHOT_DIR)
    }

    /// The archives, oldest first, with their manifests, verifications and pins.
    pub fn snapshots(&self) -> BackupResult<Vec<StoredSnapshot>> {
        self.snapshot_folder().archives()
    }

    pub fn record_verification(&self, archive: &str, v: &Verification) -> BackupResult<()> {
        self.snapshot_folder().record_verification(archive, v)
    }

    /// Removes a journal segment (retention); one already gone is not an error.
    pub fn remove_segment(&self, s: &StoredSegment) -> BackupResult<()> {
        self.storage.delete(&s.name)
    }

    /// The journal segments in seq order.
    pub fn segments(&self) -> BackupResult<Vec<StoredSegment>> {
        let mut out: Vec<StoredSegment> = self
            .list(JOURNAL_DIR)?
            .into_iter()
            .filter_map(|n| {
                let name = format!("{JOURNAL_DIR}/{n}");
                parse_segment_name(&name).map(|(first_seq, last_seq)| StoredSegment {
                    name,
                    first_seq,
                    last_seq,
                })
            })
            .collect();
        out.sort_by_key(|s| (s.first_seq, s.last_seq));
        Ok(out)
    }

    /// The highest seq the target holds, in a segment or a snapshot.
    pub fn last_seq(&self) -> BackupResult<i64> {
        let seg = self.segments()?.last().map_or(0, |s| s.last_seq);
        let snap = self
            .snapshots()?
            .iter()
            .filter_map(|s| s.manifest.as_ref().map(|m| m.seq))
            .max()
            .unwrap_or(0);
        Ok(seg.max(snap))
    }
}
