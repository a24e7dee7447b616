//! What can go wrong with an archive, each saying what and where.

use kontor_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The archive is damaged: a part's checksum, size or content is wrong, or a part is missing.
    #[error("archive {archive} is damaged: {part}: {reason}")]
    Corrupt {
        archive: String,
        part: String,
        reason: String,
    },
    /// The archive was written by a newer Kontor, or is not a Kontor archive at all.
    #[error("{0}")]
    Version(String),
    /// The restored state differs from what the archive promises.
    #[error("verification failed: {0}")]
    Mismatch(String),
    /// The place to write to is not acceptable (exists, not empty, no space).
    #[error("{0}")]
    Refused(String),
    /// A key is missing, malformed, or does not open what it should.
    #[error("{0}")]
    Key(String),
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type BackupResult<T> = Result<T, BackupError>;

impl BackupError {
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> BackupError {
        BackupError::Io(format!("{what}: {e}"))
    }
}
