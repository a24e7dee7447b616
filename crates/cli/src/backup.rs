//! `kontor backup create|verify|list` and `kontor restore`: archives of a data directory or a
//! PostgreSQL database, made while the server runs (they read without taking the data
//! directory's lock), with a progress bar on a terminal.

use crate::{CliError, DataArg};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use kontor_backup::create::Source;
use kontor_backup::format::{ArchiveReader, ARCHIVE_SUFFIX};
use kontor_backup::progress::Progress;
use kontor_backup::restore::Target;
use kontor_backup::BackupError;
use kontor_core::datadir::{DataDir, DB_FILE};
use kontor_store::postgres::{redact_url, PgStore};
use kontor_store::sqlite::SqliteStore;
use kontor_store::Store;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Write a snapshot archive of the live data (the server may keep running).
    Create {
        #[command(flatten)]
        data: DataArg,
        /// Folder to write the archive to (default: `backups` in the data directory).
        #[arg(long)]
        to: Option<PathBuf>,
        /// zstd compression level (1 fastest .. 19 smallest).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
    },
    /// Restore an archive into a scratch place and check every checksum, the row counts, the
    /// database's integrity and the digest of the restored state.
    Verify {
        /// The archive file.
        archive: PathBuf,
    },
    /// List the archives in a folder, newest last.
    List {
        #[command(flatten)]
        data: DataArg,
        /// Folder holding the archives (default: `backups` in the data directory).
        #[arg(long)]
        to: Option<PathBuf>,
    },
}

/// Exit codes of backup failures (see README).
pub fn exit_code(e: &BackupError) -> u8 {
    match e {
        BackupError::Corrupt { .. } | BackupError::Mismatch(_) => 8,
        BackupError::Version(_) => 9,
        BackupError::Refused(_) => 10,
        BackupError::Store(kontor_store::StoreError::Unavailable(_)) => 6,
        BackupError::Io(_) | BackupError::Store(_) => 1,
    }
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Arc<Bar> {
        Arc::new(Bar(ProgressBar::new_spinner()))
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let style = match total {
            Some(_) => ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
            ),
            None => ProgressStyle::with_template("{msg:>12} {spinner} {pos} rows {per_sec}"),
        };
        if let Ok(style) = style {
            self.0.set_style(style.progress_chars("=> "));
        }
        self.0.reset();
        self.0.set_length(total.unwrap_or(0));
        self.0.set_message(name.to_string());
    }
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn done(&self) {
        self.0.finish_and_clear();
    }
}

fn backups_dir(data: &DataArg, to: Option<PathBuf>) -> PathBuf {
    to.unwrap_or_else(|| data.data.join("backups"))
}

fn source(data: &DataArg) -> Result<Source, CliError> {
    let file = crate::config::FileConfig::load(&data.data.join(kontor_core::datadir::CONFIG_FILE))
        .map_err(CliError::Usage)?;
    Ok(match data.database.clone().or(file.database) {
        Some(url) => Source::Postgres(url),
        None => {
            let db = data.data.join(DB_FILE);
            if !db.is_file() {
                return Err(CliError::NotFound(format!(
                    "no Kontor database in {}",
                    data.data.display()
                )));
            }
            Source::Sqlite(db)
        }
    })
}

pub async fn backup(cmd: BackupCommand) -> Result<(), CliError> {
    match cmd {
        BackupCommand::Create { data, to, level } => {
            let source = source(&data)?;
            let dir = backups_dir(&data, to);
            let (path, m) =
                kontor_backup::create::snapshot(&source, &dir, level, Bar::new()).await?;
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            println!("archive:  {}", path.display());
            println!(
                "seq:      {} ({})",
                m.seq,
                m.seq_at.as_deref().unwrap_or("empty journal")
            );
            println!("rows:     {}", rows(&m.tables));
            println!("size:     {:.1} MiB", size as f64 / 1048576.0);
            println!("digest:   {}", m.digest);
            Ok(())
        }
        BackupCommand::Verify { archive } => {
            let report = kontor_backup::restore::verify(&archive, Bar::new()).await?;
            println!(
                "verified: {} (seq {}, rows {}, digest {}) in {:.1} s",
                archive.display(),
                report.manifest.seq,
                rows(&report.manifest.tables),
                report.manifest.digest,
                report.seconds
            );
            Ok(())
        }
        BackupCommand::List { data, to } => {
            let dir = backups_dir(&data, to);
            let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(|e| CliError::NotFound(format!("cannot read {}: {e}", dir.display())))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(ARCHIVE_SUFFIX) && !n.starts_with('.'))
                })
                .collect();
            names.sort();
            println!(
                "{:<52}  {:>10}  {:>9}  {:<27}  rows",
                "archive", "seq", "MiB", "created"
            );
            for p in names {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                let name = name.unwrap_or_default();
                match ArchiveReader::open(&p) {
                    Ok(r) => {
                        let m = &r.manifest;
                        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                        println!(
                            "{name:<52}  {:>10}  {:>9.1}  {:<27}  {}",
                            m.seq,
                            size as f64 / 1048576.0,
                            m.created_at,
                            rows(&m.tables)
                        );
                    }
                    Err(e) => println!("{name:<52}  unreadable: {e}"),
                }
            }
            Ok(())
        }
    }
}

fn rows(tables: &std::collections::BTreeMap<String, u64>) -> String {
    tables
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `kontor restore --from ARCHIVE (--data NEWDIR | --database URL)`.
pub async fn restore(from: &Path, data: &Path, database: Option<String>) -> Result<(), CliError> {
    let report = match database {
        Some(url) => {
            let target = Target::Postgres(url.clone());
            let report = kontor_backup::restore::restore(from, &target, Bar::new()).await?;
            // Connecting migrates the restored data to this Kontor's schema.
            PgStore::connect(&url).await?.close().await;
            println!("restored into PostgreSQL database {}", redact_url(&url));
            report
        }
        None => {
            let empty = match std::fs::read_dir(data) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
                Err(e) => return Err(CliError::Io(format!("cannot read {}: {e}", data.display()))),
            };
            if !empty {
                return Err(CliError::Backup(BackupError::Refused(format!(
                    "{} is not empty; restore into a new data directory",
                    data.display()
                ))));
            }
            let created = !data.exists();
            let dir = DataDir::open(data, true)?;
            let target = Target::Sqlite(dir.db_path());
            let result = kontor_backup::restore::restore(from, &target, Bar::new()).await;
            let report = match result {
                Ok(r) => r,
                Err(e) => {
                    drop(dir);
                    if created {
                        let _ = std::fs::remove_dir_all(data);
                    } else {
                        let _ = std::fs::remove_file(data.join(kontor_core::datadir::LOCK_FILE));
                    }
                    return Err(e.into());
                }
            };
            // Opening migrates the restored data to this Kontor's schema.
            SqliteStore::open(&dir.db_path()).await?.close().await;
            crate::config::write_template(&dir.config_path())
                .map_err(|e| CliError::Io(format!("cannot write config: {e}")))?;
            println!("restored into data directory {}", data.display());
            report
        }
    };
    let m = &report.manifest;
    println!(
        "seq {} ({}), rows {}, digest {} — proved equal in {:.1} s",
        m.seq,
        m.seq_at.as_deref().unwrap_or("empty journal"),
        rows(&m.tables),
        m.digest,
        report.seconds
    );
    Ok(())
}
