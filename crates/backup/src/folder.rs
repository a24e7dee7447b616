//! A folder of archives (a target's `snapshots/`, in a folder or a bucket, or any folder
//! `backup create --to` wrote): the archives with their manifests, and the small files kept
//! beside each one — `<archive>.verified.json` (the last verification), `<archive>.pinned.json`
//! (a pin: retention never removes it), and in a bucket `<archive>.manifest.json` (the
//! archive's manifest, so listing needs no download) — and the backup log.

use crate::error::{BackupError, BackupResult};
use crate::format::{ArchiveReader, Manifest, ARCHIVE_SUFFIX};
use crate::storage::Storage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const VERIFIED_SUFFIX: &str = ".verified.json";
const PINNED_SUFFIX: &str = ".pinned.json";
const MANIFEST_SUFFIX: &str = ".manifest.json";
/// The record of what was done to the archives here: one JSON line per event.
pub const LOG_FILE: &str = "backup-log.jsonl";

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
    storage: Storage,
    /// Key prefix of the folder in its storage ("" for the storage's top).
    dir: String,
}

/// An archive readable as a local file: in place in a folder, downloaded from a bucket into a
/// scratch directory that goes when this is dropped.
pub struct Fetched {
    pub path: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

/// Where a new archive is written before [`ArchiveFolder::publish`].
pub struct Staging {
    pub dir: PathBuf,
    _scratch: Option<tempfile::TempDir>,
}

fn scratch(prefix: &str) -> BackupResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| BackupError::io("cannot create a scratch directory", e))
}

impl ArchiveFolder {
    /// A folder on a file system.
    pub fn new(dir: impl Into<PathBuf>) -> ArchiveFolder {
        ArchiveFolder::within(Storage::Local(dir.into()), "")
    }

    /// Folder `dir` of `storage`.
    pub fn within(storage: Storage, dir: &str) -> ArchiveFolder {
        ArchiveFolder {
            storage,
            dir: dir.trim_matches('/').to_string(),
        }
    }

    pub fn describe(&self) -> String {
        if self.dir.is_empty() {
            self.storage.describe()
        } else {
            format!("{}/{}", self.storage.describe(), self.dir)
        }
    }

    /// The folder's path, when it is on a file system.
    pub fn local_dir(&self) -> Option<PathBuf> {
        self.storage.local().map(|root| root.join(&self.dir))
    }

    fn key(&self, name: &str) -> String {
        if self.dir.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.dir)
        }
    }

    /// Checks an archive's name (no path in it, the archive suffix).
    pub fn archive(&self, name: &str) -> BackupResult<String> {
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
        Ok(self.key(name))
    }

    pub fn contains(&self, name: &str) -> BackupResult<bool> {
        self.storage.exists(&self.archive(name)?)
    }

    /// Where to write a new archive: the folder itself, or a scratch directory for a bucket.
    pub fn staging(&self) -> BackupResult<Staging> {
        match self.local_dir() {
            Some(dir) => Ok(Staging {
                dir,
                _scratch: None,
            }),
            None => {
                let s = scratch("kontor-upload-")?;
                Ok(Staging {
                    dir: s.path().to_path_buf(),
                    _scratch: Some(s),
                })
            }
        }
    }

    /// Makes an archive written into [`ArchiveFolder::staging`] part of the folder: uploads it
    /// (then its manifest beside it) to a bucket; nothing to do in a folder.
    pub fn publish(&self, path: &Path, manifest: &Manifest) -> BackupResult<()> {
        if self.local_dir().is_some() {
            return Ok(());
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        self.storage.upload(&self.archive(&name)?, path)?;
        self.put_side(&name, MANIFEST_SUFFIX, manifest)
    }

    /// The archive as a local file to read.
    pub fn fetch(&self, name: &str) -> BackupResult<Fetched> {
        let key = self.archive(name)?;
        if let Some(dir) = self.local_dir() {
            let path = dir.join(name);
            if !path.is_file() {
                return Err(BackupError::Refused(format!(
                    "no archive {name} in {}",
                    self.describe()
                )));
            }
            return Ok(Fetched {
                path,
                _scratch: None,
            });
        }
        if !self.storage.exists(&key)? {
            return Err(BackupError::Refused(format!(
                "no archive {name} in {}",
                self.describe()
            )));
        }
        let s = scratch("kontor-download-")?;
        let path = s.path().join(name);
        self.storage.download(&key, &path)?;
        Ok(Fetched {
            path,
            _scratch: Some(s),
        })
    }

    /// The archives, oldest first (names sort by time).
    pub fn archives(&self) -> BackupResult<Vec<StoredSnapshot>> {
        let names: Vec<String> = self
            .storage
            .list(&self.dir)?
            .into_iter()
            .filter(|n| n.ends_with(ARCHIVE_SUFFIX))
            .collect();
        names.into_iter().map(|n| self.stored(n)).collect()
    }

    fn stored(&self, name: String) -> BackupResult<StoredSnapshot> {
        let (manifest, unreadable, bytes) = match self.local_dir() {
            Some(dir) => {
                let path = dir.join(&name);
                let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                match ArchiveReader::open(&path) {
                    Ok(r) => (Some(r.manifest), None, bytes),
                    Err(e) => (None, Some(e.to_string()), bytes),
                }
            }
            None => match self.side::<Manifest>(&name, MANIFEST_SUFFIX) {
                Some(m) => {
                    let bytes = m.parts.iter().map(|p| p.bytes).sum();
                    (Some(m), None, bytes)
                }
                None => (
                    None,
                    Some(format!("{name}{MANIFEST_SUFFIX} is missing or unreadable")),
                    0,
                ),
            },
        };
        Ok(StoredSnapshot {
            verification: self.side(&name, VERIFIED_SUFFIX),
            pin: self.side(&name, PINNED_SUFFIX),
            bytes,
            name,
            manifest,
            unreadable,
        })
    }

    fn side<T: serde::de::DeserializeOwned>(&self, archive: &str, suffix: &str) -> Option<T> {
        self.storage
            .get_opt(&self.key(&format!("{archive}{suffix}")))
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    fn put_side(&self, archive: &str, suffix: &str, value: &impl Serialize) -> BackupResult<()> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| BackupError::Io(e.to_string()))?;
        self.storage
            .put(&self.key(&format!("{archive}{suffix}")), &bytes)
    }

    pub fn record_verification(&self, archive: &str, v: &Verification) -> BackupResult<()> {
        self.put_side(archive, VERIFIED_SUFFIX, v)
    }

    /// Pins an archive: retention keeps it until it is unpinned.
    pub fn pin(&self, archive: &str, pin: &Pin) -> BackupResult<()> {
        if !self.contains(archive)? {
            return Err(BackupError::Refused(format!(
                "no archive {archive} in {}",
                self.describe()
            )));
        }
        self.put_side(archive, PINNED_SUFFIX, pin)
    }

    /// Unpins an archive; returns whether it was pinned.
    pub fn unpin(&self, archive: &str) -> BackupResult<bool> {
        self.archive(archive)?;
        let key = self.key(&format!("{archive}{PINNED_SUFFIX}"));
        let was = self.storage.exists(&key)?;
        self.storage.delete(&key)?;
        Ok(was)
    }

    /// Removes an archive and what is kept beside it.
    pub fn remove(&self, archive: &str) -> BackupResult<()> {
        self.storage.delete(&self.archive(archive)?)?;
        for suffix in [VERIFIED_SUFFIX, PINNED_SUFFIX, MANIFEST_SUFFIX] {
            self.storage
                .delete(&self.key(&format!("{archive}{suffix}")))?;
        }
        Ok(())
    }

    /// Appends `event` to the folder's log.
    pub fn log(&self, event: &Event) -> BackupResult<()> {
        let line = serde_json::to_vec(event).map_err(|e| BackupError::Io(e.to_string()))?;
        self.storage.append_line(&self.key(LOG_FILE), &line)
    }

    /// The last `n` events of the log, oldest first (unreadable lines skipped).
    pub fn events(&self, n: usize) -> BackupResult<Vec<Event>> {
        Ok(self
            .storage
            .read_lines(&self.key(LOG_FILE), n)?
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }

    /// Temporary archive files left by writers that died.
    pub fn stale_partials(&self) -> BackupResult<Vec<PathBuf>> {
        self.storage.stale_partials(&self.dir)
    }
}
