//! `kontor.toml` in the data directory: settings that outlive one command line. Flags and
//! environment variables override it.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub trash_retention_days: Option<u32>,
    /// PostgreSQL URL; without it, SQLite in the data directory.
    pub database: Option<String>,
    /// Proxies whose forwarding headers name the client (addresses or networks).
    pub trusted_proxies: Option<Vec<String>>,
    /// Continuous backup (`[backup]`).
    pub backup: Option<BackupConfig>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// The backup target folder (local disk or a mounted share).
    pub target: Option<std::path::PathBuf>,
    /// Milliseconds between shipments of new journal entries (default 500).
    pub interval_ms: Option<u64>,
    /// When snapshots are taken, a cron expression in server time (default "0 23 * * *").
    pub schedule: Option<String>,
    /// Encrypt snapshots and segments to these age recipients (`age1…`).
    pub recipients: Option<Vec<String>>,
    /// Encrypt them with the passphrase in this file instead.
    pub passphrase_file: Option<std::path::PathBuf>,
    /// Retention: how many days, ISO weeks and months keep their newest snapshot (7, 4, 12).
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
}

impl FileConfig {
    /// Reads the file if it exists; a malformed file is an error that names it.
    pub fn load(path: &Path) -> Result<FileConfig, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(FileConfig::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

const TEMPLATE: &str =
    "# Kontor settings. Command-line flags and KONTOR_* environment variables override these.\n\
# listen = \"127.0.0.1:8080\"\n\
# Days deleted records stay in the recycle bin; 0 keeps them forever.\n\
# trash_retention_days = 30\n\
# PostgreSQL instead of the SQLite file in this directory:\n\
# database = \"postgres://kontor:secret@127.0.0.1:5432/kontor\"\n\
# Load balancers whose X-Forwarded-For / Forwarded headers name the client:\n\
# trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]\n\
# Continuous backup: every journal entry shipped within a second, a verified snapshot daily.\n\
# [backup]\n\
# target = \"/mnt/backup/kontor\"\n\
# interval_ms = 500\n\
# schedule = \"0 23 * * *\"\n\
# Encrypt backups (age format) to public keys, or with a passphrase kept in a file:\n\
# recipients = [\"age1...\"]\n\
# passphrase_file = \"/etc/kontor/backup-passphrase\"\n\
# Snapshots kept: the newest of each of the last N days, ISO weeks and months (plus pinned ones\n\
# and the newest verified one); journal segments older than the oldest kept snapshot go too.\n\
# keep_daily = 7\n\
# keep_weekly = 4\n\
# keep_monthly = 12\n";

/// Writes a commented template unless a config file is already there.
pub fn write_template(path: &Path) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    std::fs::write(path, TEMPLATE)
}
