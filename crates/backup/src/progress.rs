//! Progress of long work: the core's trait (see `kontor_core::progress`), used here by
//! snapshots, restores and verifications.

pub use kontor_core::progress::{Progress, Silent};
