//! Kontor's archives (see `docs/ARCHIVE.md`): an engine-neutral snapshot of every record, the
//! journal, counters and credentials at one journal seq, with a manifest that carries row
//! counts, the BLAKE3 of every part and a digest of the logical state computed the same way on
//! both engines. [`create::snapshot`] writes one while the server runs; [`restore::restore`]
//! loads one into a new SQLite file or an empty PostgreSQL database and proves the result equal;
//! [`restore::verify`] does that into a scratch place and throws it away.

pub mod checked;
pub mod create;
pub mod error;
pub mod folder;
pub mod format;
pub mod lines;
pub mod progress;
pub mod replay;
pub mod restore;
pub mod retention;
pub mod seal;
pub mod segment;
pub mod ship;
pub mod storage;
pub mod target;

pub use error::{BackupError, BackupResult};
pub use format::Manifest;
