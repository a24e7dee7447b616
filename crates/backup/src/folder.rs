//! A folder of archives (a target's `snapshots/`, or any folder `backup create --to` wrote):
//! the archives with their manifests, and the small files kept beside each one —
//! `<archive>.verified.json` (the last verification) and `<archive>.pinned.json` (a pin:
//! retention never removes it).

use crate::error::{BackupError, BackupResult};
use crate::format::{sync_dir, ArchiveReader, Manifest, ARCHIVE_SUFFIX};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const VERIFIED_SUFFIX: &str = ".verified.json";
const PINNED_SUFFIX: &str = ".pinned.json";
/// The record of what was done to the archives here: one JSON line per event.
pub const LOG_FILE: &str = "backup-log.jsonl";
/// A temporary archive file untouched this long belongs to a writer that died.
pub const STALE_PARTIAL: Duration = Duration::from_secs(3600);

/// The outcome of verifying one archive, kept beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub ok: bool,
    pub at: String,
    pub seconds: f64,
    pub error: Option<String>,
}

/// One line of the folder's log: who did what to which archive, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    /// `cli:<os user>` or `api:<user email>`, or `server` for scheduled work.
    pub by: String,
    /// create, verify, restore, prune, pin, unpin.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    pub ok: bool,
    /// What happened or what went wrong.
    pub detail: String,
}

impl Event {
    pub fn new(
        by: &str,
        action: &str,
        archive: Option<&str>,
        result: Result<String, String>,
    ) -> Event {
        let ok = result.is_ok();
        Event {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            by: by.to_string(),
            action: action.to_string(),
            archive: archive.map(str::to_string),
            ok,
            detail: result.unwrap_or_else(|e| e),
        }
    }
}

/// Why an archive is pinned.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pin {
    pub at: String,
    pub by: String,
    pub note: Option<String>,
}

/// An archive in a folder, with what is known about it.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    pub path: PathBuf,
    pub name: String,
    pub bytes: u64,
    /// `None` when the archive cannot be read (damaged); the error is in `unreadable`.
    pub manifest: Option<Manifest>,
    pub unreadable: Option<String>,
    pub verification: Option<Verification>,
    pub pin: Option<Pin>,
}

impl StoredSnapshot {
    /// When the archive was made (its manifest's time).
    pub fn created(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let m = self.manifest.as_ref()?;
        chrono::DateTime::parse_from_rfc3339(&m.created_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    pub fn verified_ok(&self) -> bool {
        self.verification.as_ref().is_some_and(|v| v.ok)
    }
}

#[derive(Debug, Clone)]
pub struct ArchiveFolder {
    dir: PathBuf,
}

impl ArchiveFolder {
    pub fn new(dir: impl Into<PathBuf>) -> ArchiveFolder {
        ArchiveFolder { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The archive named `name` in this folder; a name with a path in it is refused.
    pub fn archive(&self, name: &str) -> BackupResult<PathBuf> {
        if name.contains('/') || name.contains('\\') || name.starts_with('.') {
            return Err(BackupError::Refused(format!(
                "{name:?} is not an archive name"
            )));
        }
        if !name.ends_with(ARCHIVE_SUFFIX) {
            return Err(BackupError::Refused(format!(
                "{name:?} is not an archive (names end in {ARCHIVE_SUFFIX})"
            )));
        }
        Ok(self.dir.join(name))
    }

    /// The archives, oldest first (names sort by time).
    pub fn archives(&self) -> BackupResult<Vec<StoredSnapshot>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BackupError::io(self.dir.display(), e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(|e| BackupError::io(self.dir.display(), e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(ARCHIVE_SUFFIX) && !name.starts_with('.') {
                names.push(name);
            }
        }
        names.sort();
        Ok(names.into_iter().map(|n| self.stored(n)).collect())
    }

    fn stored(&self, name: String) -> StoredSnapshot {
        let path = self.dir.join(&name);
        let (manifest, unreadable) = match ArchiveReader::open(&path) {
            Ok(r) => (Some(r.manifest), None),
            Err(e) => (None, Some(e.to_string())),
        };
        StoredSnapshot {
            bytes: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            verification: self.side(&name, VERIFIED_SUFFIX),
            pin: self.side(&name, PINNED_SUFFIX),
            path,
            name,
            manifest,
            unreadable,
        }
    }

    fn side<T: serde::de::DeserializeOwned>(&self, archive: &str, suffix: &str) -> Option<T> {
        std::fs::read(self.dir.join(format!("{archive}{suffix}")))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn put_side(&self, archive: &str, suffix: &str, value: &impl Serialize) -> BackupResult<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| BackupError::Io(e.to_string()))?;
        let path = self.dir.join(format!("{archive}{suffix}"));
        let temp = self.dir.join(format!(".{archive}{suffix}.partial"));
        let write = || -> std::io::Result<()> {
            std::fs::write(&temp, &bytes)?;
            std::fs::File::open(&temp)?.sync_all()?;
            std::fs::rename(&temp, &path)?;
            sync_dir(&path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            BackupError::io(path.display(), e)
        })
    }

    pub fn record_verification(&self, archive: &str, v: &Verification) -> BackupResult<()> {
        self.put_side(archive, VERIFIED_SUFFIX, v)
    }

    /// Pins an archive: retention keeps it until it is unpinned.
    pub fn pin(&self, archive: &str, pin: &Pin) -> BackupResult<()> {
        let path = self.archive(archive)?;
        if !path.is_file() {
            return Err(BackupError::Refused(format!(
                "no archive {archive} in {}",
                self.dir.display()
            )));
        }
        self.put_side(archive, PINNED_SUFFIX, pin)
    }

    /// Unpins an archive; returns whether it was pinned.
    pub fn unpin(&self, archive: &str) -> BackupResult<bool> {
        self.archive(archive)?;
        let path = self.dir.join(format!("{archive}{PINNED_SUFFIX}"));
        let was = path.exists();
        remove_if_there(&path)?;
        Ok(was)
    }

    /// Removes an archive and what is kept beside it.
    pub fn remove(&self, archive: &str) -> BackupResult<()> {
        let path = self.archive(archive)?;
        remove_if_there(&path)?;
        remove_if_there(&self.dir.join(format!("{archive}{VERIFIED_SUFFIX}")))?;
        remove_if_there(&self.dir.join(format!("{archive}{PINNED_SUFFIX}")))
    }

    /// Appends `event` to the folder's log (created with the folder when needed).
    pub fn log(&self, event: &Event) -> BackupResult<()> {
        use std::io::Write;
        std::fs::create_dir_all(&self.dir).map_err(|e| BackupError::io(self.dir.display(), e))?;
        let path = self.dir.join(LOG_FILE);
        let mut line = serde_json::to_vec(event).map_err(|e| BackupError::Io(e.to_string()))?;
        line.push(b'\n');
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            f.write_all(&line)?;
            f.sync_data()
        };
        write().map_err(|e| BackupError::io(path.display(), e))
    }

    /// The last `n` events of the log, oldest first (unreadable lines skipped).
    pub fn events(&self, n: usize) -> BackupResult<Vec<Event>> {
        let path = self.dir.join(LOG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BackupError::io(path.display(), e)),
        };
        let all: Vec<Event> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let skip = all.len().saturating_sub(n);
        Ok(all.into_iter().skip(skip).collect())
    }

    /// Temporary archive files left by writers that died (untouched for [`STALE_PARTIAL`]).
    pub fn stale_partials(&self) -> BackupResult<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BackupError::io(self.dir.display(), e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with('.') && name.ends_with(".partial")) {
                continue;
            }
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            if modified.is_some_and(|m| now.duration_since(m).unwrap_or_default() > STALE_PARTIAL) {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Removes a file; one already gone is not an error.
pub fn remove_if_there(path: &Path) -> BackupResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io(path.display(), e)),
    }
}
