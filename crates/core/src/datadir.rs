//! The data directory: the database file, the optional config file `kontor.toml`, and a lock file
//! that keeps a second server (or a CLI command) from opening the same data at the same time.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const DB_FILE: &str = "kontor.db";
pub const LOCK_FILE: &str = "kontor.lock";
pub const CONFIG_FILE: &str = "kontor.toml";
/// The socket a running server answers the local administrator's commands on.
pub const SOCKET_FILE: &str = "kontor.sock";

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data directory {path} is in use by another Kontor process{pid}; stop it first")]
    Locked { path: String, pid: String },
    #[error("data directory {path} does not exist; run `kontor init --data {path}` or `kontor serve` to create it")]
    Missing { path: String },
    #[error("{path} is not initialised; run `kontor init`")]
    NotInitialised { path: String },
    #[error("{path} is already initialised")]
    AlreadyInitialised { path: String },
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// An open, locked data directory. The lock is released when this is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    _lock: File,
}

impl DataDir {
    /// Locks `path`, creating the directory when `create` is set.
    pub fn open(path: &Path, create: bool) -> Result<DataDir, DataDirError> {
        let shown = path.display().to_string();
        let io = |source| DataDirError::Io {
            path: shown.clone(),
            source,
        };
        if !path.exists() {
            if !create {
                return Err(DataDirError::Missing { path: shown });
            }
            fs::create_dir_all(path).map_err(io)?;
        }
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path.join(LOCK_FILE))
            .map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = lock.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(DataDirError::Locked {
                    path: shown,
                    pid: if pid.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {pid})")
                    },
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        lock.set_len(0).map_err(io)?;
        lock.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(lock, "{}", std::process::id()).map_err(io)?;
        lock.flush().map_err(io)?;
        Ok(DataDir {
            path: path.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db_path(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn is_initialised(&self) -> bool {
        self.db_path().exists()
    }
}
