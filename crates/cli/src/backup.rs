//! `kontor backup create|verify|list` and `kontor restore`: archives of a data directory or a
//! PostgreSQL database, made while the server runs (they read without taking the data
//! directory's lock), with a progress bar on a terminal.

use crate::{CliError, DataArg};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use kontor_backup::create::Source;
use kontor_backup::folder::{ArchiveFolder, Event, Pin, StoredSnapshot};
use kontor_backup::progress::Progress;
use kontor_backup::replay::Until;
use kontor_backup::restore::{PointReport, Target};
use kontor_backup::retention::{self, Policy};
use kontor_backup::seal::Keys;
use kontor_backup::ship::{ShipConfig, Shipper};
use kontor_backup::target::BackupTarget;
use kontor_backup::BackupError;
use kontor_core::datadir::{DataDir, DB_FILE};
use kontor_server::backups::BackupDesk;
use kontor_store::postgres::{redact_url, PgStore};
use kontor_store::sqlite::SqliteStore;
use kontor_store::Store;
use std::path::PathBuf;
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
        #[arg(long, default_value_t = kontor_backup::format::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Restore an archive into a scratch place and check every checksum, the row counts, the
    /// database's integrity and the digest of the restored state; the result is kept beside
    /// the archive. With --all, every archive of the folder (--to, or the data directory's).
    Verify {
        /// The archive file.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        archive: Option<PathBuf>,
        /// Verify every archive in the folder or target.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        data: DataArg,
        /// The folder or backup target (default: `[backup] target`, else `backups` in the data
        /// directory).
        #[arg(long)]
        to: Option<PathBuf>,
        #[command(flatten)]
        keys: KeyArgs,
    },
    /// Show a backup target's state: the shipping server, the last shipped seq and the lag,
    /// snapshots and their verification, the last failure.
    Status {
        #[command(flatten)]
        data: DataArg,
        /// The backup target (default: `[backup] target` in kontor.toml).
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// List the archives of a folder or backup target, oldest first, with their verification,
    /// pins and what retention would do with each.
    List {
        #[command(flatten)]
        data: DataArg,
        /// The folder or backup target (default: `[backup] target`, else `backups` in the data
        /// directory).
        #[arg(long)]
        to: Option<PathBuf>,
        #[command(flatten)]
        retention: RetentionArgs,
    },
    /// Remove the archives retention does not keep, and (in a target) the journal segments
    /// older than the oldest kept snapshot.
    Prune {
        #[command(flatten)]
        data: DataArg,
        #[arg(long)]
        to: Option<PathBuf>,
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        retention: RetentionArgs,
    },
    /// Pin an archive: retention never removes it.
    Pin {
        archive: PathBuf,
        /// Why (shown by `backup list`).
        #[arg(long)]
        note: Option<String>,
    },
    /// Unpin an archive.
    Unpin { archive: PathBuf },
}

/// How many snapshots retention keeps (default: `[backup] keep_*` in kontor.toml, else 7/4/12).
#[derive(clap::Args, Clone, Default)]
pub struct RetentionArgs {
    /// Days whose newest snapshot is kept.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// ISO weeks whose newest snapshot is kept.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// Months whose newest snapshot is kept.
    #[arg(long)]
    pub keep_monthly: Option<u32>,
}

impl RetentionArgs {
    fn policy(&self, conf: &crate::config::BackupConfig) -> Policy {
        let d = Policy::default();
        Policy {
            daily: self.keep_daily.or(conf.keep_daily).unwrap_or(d.daily),
            weekly: self.keep_weekly.or(conf.keep_weekly).unwrap_or(d.weekly),
            monthly: self.keep_monthly.or(conf.keep_monthly).unwrap_or(d.monthly),
        }
    }
}

/// Encryption keys for archives (age format): what to encrypt to when writing, what to
/// decrypt with when reading. Without any, `backup create` follows `[backup]` in kontor.toml.
#[derive(clap::Args, Clone, Default)]
pub struct KeyArgs {
    /// Encrypt to this age recipient (age1…); repeatable.
    #[arg(long = "recipient", value_name = "AGE_RECIPIENT")]
    pub recipients: Vec<String>,
    /// Decrypt with the age identities (AGE-SECRET-KEY-1…) in this file; repeatable.
    #[arg(long = "identity", value_name = "FILE")]
    pub identities: Vec<PathBuf>,
    /// Encrypt or decrypt with the passphrase in this file (its first line); or set
    /// KONTOR_BACKUP_PASSPHRASE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl KeyArgs {
    fn given(&self) -> bool {
        !self.recipients.is_empty()
            || !self.identities.is_empty()
            || self.passphrase_file.is_some()
            || std::env::var_os(PASSPHRASE_ENV).is_some()
    }

    /// The keys these options (and KONTOR_BACKUP_PASSPHRASE) name.
    pub fn keys(&self) -> Result<Keys, CliError> {
        let mut keys = Keys::default();
        keys.add_recipients(self.recipients.iter().map(String::as_str))?;
        for f in &self.identities {
            keys.add_identity_file(f)?;
        }
        set_passphrase(&mut keys, self.passphrase_file.as_deref())?;
        Ok(keys)
    }

    /// These keys, or when none are given, those of `[backup]` in the data directory's
    /// kontor.toml.
    fn keys_or_configured(&self, data: &DataArg) -> Result<Keys, CliError> {
        if self.given() {
            return self.keys();
        }
        let file =
            crate::config::FileConfig::load(&data.data.join(kontor_core::datadir::CONFIG_FILE))
                .map_err(CliError::Usage)?;
        configured_keys(&file.backup.unwrap_or_default(), &[], None)
    }
}

/// The environment variable that may hold the backup passphrase itself.
const PASSPHRASE_ENV: &str = "KONTOR_BACKUP_PASSPHRASE";

fn set_passphrase(keys: &mut Keys, file: Option<&std::path::Path>) -> Result<(), CliError> {
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).map_err(|e| {
                CliError::Usage(format!("cannot read passphrase file {}: {e}", f.display()))
            })?;
            keys.set_passphrase(text.lines().next().unwrap_or(""))?;
        }
        None => {
            if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
                keys.set_passphrase(&p)?;
            }
        }
    }
    Ok(())
}

/// Keys from `[backup]` in kontor.toml, overridden by serve's flags.
fn configured_keys(
    conf: &crate::config::BackupConfig,
    recipients: &[String],
    passphrase_file: Option<&std::path::Path>,
) -> Result<Keys, CliError> {
    let mut keys = Keys::default();
    let recipients = if recipients.is_empty() {
        conf.recipients.clone().unwrap_or_default()
    } else {
        recipients.to_vec()
    };
    keys.add_recipients(recipients.iter().map(String::as_str))?;
    set_passphrase(
        &mut keys,
        passphrase_file.or(conf.passphrase_file.as_deref()),
    )?;
    Ok(keys)
}

/// `serve`'s continuous backup options (or `[backup]` in kontor.toml).
#[derive(clap::Args, Clone, Default)]
pub struct ShipArgs {
    /// Backup target folder: every new journal entry is shipped there within
    /// --backup-interval-ms, and snapshots are taken on --snapshot-schedule.
    #[arg(long, env = "KONTOR_BACKUP_TO")]
    pub backup_to: Option<PathBuf>,
    /// Milliseconds between the starts of two shipments (default 500: every entry is in the
    /// target within a second, shipping time included).
    #[arg(long, env = "KONTOR_BACKUP_INTERVAL_MS")]
    pub backup_interval_ms: Option<u64>,
    /// When to take snapshots: a cron expression, server time (default "0 23 * * *").
    #[arg(long, env = "KONTOR_SNAPSHOT_SCHEDULE")]
    pub snapshot_schedule: Option<String>,
    /// Encrypt snapshots and segments to this age recipient (age1…); repeatable.
    #[arg(long = "backup-recipient", value_name = "AGE_RECIPIENT")]
    pub backup_recipients: Vec<String>,
    /// Encrypt them with the passphrase in this file instead (or KONTOR_BACKUP_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    pub backup_passphrase_file: Option<PathBuf>,
}

/// The shipper `serve` runs, when a backup target is configured; checks the target first.
pub async fn shipper(
    args: &ShipArgs,
    file: &crate::config::FileConfig,
    target: &crate::Target,
    data: &std::path::Path,
) -> Result<(Option<Shipper>, Arc<BackupDesk>), CliError> {
    let conf = file.backup.clone().unwrap_or_default();
    let keys = configured_keys(
        &conf,
        &args.backup_recipients,
        args.backup_passphrase_file.as_deref(),
    )?;
    let retention = RetentionArgs::default().policy(&conf);
    let (source, exclusive) = match &target.url {
        Some(url) => (Source::Postgres(url.clone()), false),
        None => (Source::Sqlite(data.join(DB_FILE)), true),
    };
    let to = args.backup_to.clone().or(conf.target.clone());
    let backup_target = to.as_deref().map(BackupTarget::open).transpose()?;
    let folder = match &backup_target {
        Some(t) => t.snapshot_folder(),
        None => ArchiveFolder::new(data.join("backups")),
    };
    let mut desk = BackupDesk::new(source.clone(), folder, backup_target.clone());
    desk.keys = keys.clone();
    desk.retention = retention;
    let Some(backup_target) = backup_target else {
        return Ok((None, Arc::new(desk)));
    };
    let interval = args
        .backup_interval_ms
        .or(conf.interval_ms)
        .unwrap_or(kontor_backup::ship::DEFAULT_INTERVAL_MS);
    let schedule = args
        .snapshot_schedule
        .clone()
        .or(conf.schedule.clone())
        .unwrap_or_else(|| kontor_backup::ship::DEFAULT_SCHEDULE.to_string());
    let mut cfg = ShipConfig::new(
        backup_target,
        std::time::Duration::from_millis(interval),
        &schedule,
    )?;
    cfg.retention = retention;
    cfg.keys = keys;
    let node = kontor_domain::record::new_id();
    let shipper = Shipper::prepare(source, cfg, &node, exclusive).await?;
    desk.shipping = Some(shipper.handle());
    Ok((Some(shipper), Arc::new(desk)))
}

/// Exit codes of backup failures (see README).
pub fn exit_code(e: &BackupError) -> u8 {
    match e {
        BackupError::Corrupt { .. } | BackupError::Mismatch(_) => 8,
        BackupError::Version(_) => 9,
        BackupError::Refused(_) => 10,
        BackupError::Key(_) => 11,
        BackupError::Store(kontor_store::StoreError::Unavailable(_)) => 6,
        BackupError::Io(_) | BackupError::Store(_) => 1,
    }
}

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal. It counts
/// rows, or bytes of a file.
pub(crate) struct Bar(ProgressBar, Unit);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Rows,
    Bytes,
}

impl Bar {
    pub(crate) fn new() -> Arc<Bar> {
        Bar::counting(Unit::Rows)
    }

    pub(crate) fn counting(unit: Unit) -> Arc<Bar> {
        Arc::new(Bar(ProgressBar::new_spinner(), unit))
    }

    /// Clears the bar once its work is done.
    pub(crate) fn finish(&self) {
        self.0.finish_and_clear();
    }

    /// Sets the total once it is known (a job reported by a server).
    pub(crate) fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
}

impl Progress for Bar {
    fn phase(&self, name: &str, total: Option<u64>) {
        let style = match (total, self.1) {
            (Some(_), Unit::Rows) => ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {pos}/{len} rows {per_sec} eta {eta}",
            ),
            (None, Unit::Rows) => {
                ProgressStyle::with_template("{msg:>12} {spinner} {pos} rows {per_sec}")
            }
            (Some(_), Unit::Bytes) => ProgressStyle::with_template(
                "{msg:>12} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ),
            (None, Unit::Bytes) => {
                ProgressStyle::with_template("{msg:>12} {spinner} {bytes} {bytes_per_sec}")
            }
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

/// A folder of archives to write, list, verify or prune, and the target it belongs to, if
/// any: `--to` (a folder, a backup target, or `s3://bucket/prefix`), else — for all but
/// `create` — `[backup] target` in kontor.toml, else `backups` in the data directory.
struct Archives {
    folder: ArchiveFolder,
    target: Option<BackupTarget>,
    conf: crate::config::BackupConfig,
}

fn archives(data: &DataArg, to: Option<PathBuf>) -> Result<Archives, CliError> {
    archives_at(data, to, true)
}

fn archives_at(
    data: &DataArg,
    to: Option<PathBuf>,
    configured: bool,
) -> Result<Archives, CliError> {
    let conf = crate::config::FileConfig::load(&data.data.join(kontor_core::datadir::CONFIG_FILE))
        .map_err(CliError::Usage)?
        .backup
        .unwrap_or_default();
    let to = to.or_else(|| conf.target.clone().filter(|_| configured));
    let (folder, target) = match to {
        Some(t) => {
            let target = BackupTarget::open(&t)?;
            if target.info()?.is_some() || target.storage().local().is_none() {
                (target.snapshot_folder(), Some(target))
            } else {
                (ArchiveFolder::new(t), None)
            }
        }
        None => (ArchiveFolder::new(data.data.join("backups")), None),
    };
    Ok(Archives {
        folder,
        target,
        conf,
    })
}

/// Who runs this command, for the backup log.
fn cli_user() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid {}", process_uid()));
    format!("cli:{user}")
}

fn process_uid() -> String {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m).to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The folder an archive file lies in, and its name.
fn split_archive(path: &std::path::Path) -> Result<(ArchiveFolder, String), CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| CliError::Usage(format!("{} is not an archive file", path.display())))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((ArchiveFolder::new(dir), name))
}

/// Appends to a folder's log; a folder that cannot be written (read-only media) only warns.
fn log(folder: &ArchiveFolder, event: Event) {
    if let Err(e) = folder.log(&event) {
        eprintln!("warning: could not record this in the backup log: {e}");
    }
}

/// Verifies one archive, keeps the result beside it and logs it.
async fn verify_one(
    folder: &ArchiveFolder,
    name: &str,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> Result<kontor_backup::restore::Report, BackupError> {
    kontor_backup::checked::verify_and_record(folder, name, keys, &cli_user(), progress).await
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
        BackupCommand::Create {
            data,
            to,
            level,
            keys,
        } => {
            let source = source(&data)?;
            let keys = keys.keys_or_configured(&data)?;
            let place = archives_at(&data, to, false)?;
            if let Some(target) = &place.target {
                // An archive in a target is encrypted as the target is.
                if let Some(info) = target.info()? {
                    target.check_keys(&info, &keys)?;
                }
            }
            let folder = place.folder;
            let staging = folder.staging()?;
            let created =
                kontor_backup::create::snapshot(&source, &staging.dir, level, &keys, Bar::new())
                    .await
                    .and_then(|c| {
                        folder.publish(&c.path, &c.manifest)?;
                        Ok(c)
                    });
            let created = match created {
                Ok(c) => c,
                Err(e) => {
                    log(
                        &folder,
                        Event::new(&cli_user(), "create", None, Err(e.to_string())),
                    );
                    return Err(e.into());
                }
            };
            let (path, m) = (created.path, created.manifest);
            let name = path.file_name().map(|n| n.to_string_lossy().to_string());
            log(
                &folder,
                Event::new(
                    &cli_user(),
                    "create",
                    name.as_deref(),
                    Ok(format!("seq {}", m.seq)),
                ),
            );
            let size: u64 = m.parts.iter().map(|p| p.bytes).sum();
            match folder.local_dir() {
                Some(_) => println!("archive:  {}", path.display()),
                None => println!(
                    "archive:  {}/{}",
                    folder.describe(),
                    name.as_deref().unwrap_or_default()
                ),
            }
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
        BackupCommand::Verify {
            archive,
            all,
            data,
            to,
            keys,
        } => {
            let keys = keys.keys()?;
            if !all {
                let archive =
                    archive.ok_or_else(|| CliError::Usage("give an archive or --all".into()))?;
                let (folder, name) = split_archive(&archive)?;
                let report = verify_one(&folder, &name, &keys, Bar::new()).await?;
                println!(
                    "verified: {} (seq {}, rows {}, digest {}) in {:.1} s",
                    archive.display(),
                    report.manifest.seq,
                    rows(&report.manifest.tables),
                    report.manifest.digest,
                    report.seconds
                );
                return Ok(());
            }
            let place = archives(&data, to)?;
            let list = place.folder.archives()?;
            if list.is_empty() {
                println!("no archives in {}", place.folder.describe());
                return Ok(());
            }
            let mut failed = Vec::new();
            for s in &list {
                match verify_one(&place.folder, &s.name, &keys, Bar::new()).await {
                    Ok(r) => println!(
                        "ok      {}  seq {}  {:.1} s",
                        s.name, r.manifest.seq, r.seconds
                    ),
                    Err(e @ BackupError::Key(_)) => return Err(e.into()),
                    Err(e) => {
                        println!("FAILED  {}  {e}", s.name);
                        failed.push(e);
                    }
                }
            }
            println!(
                "{} of {} archives verified",
                list.len() - failed.len(),
                list.len()
            );
            match failed.into_iter().next() {
                Some(first) => Err(first.into()),
                None => Ok(()),
            }
        }
        BackupCommand::Status { data, to } => status(&data, to),
        BackupCommand::List {
            data,
            to,
            retention,
        } => {
            let place = archives(&data, to)?;
            let policy = retention.policy(&place.conf);
            let plan = retention::plan(&place.folder, place.target.as_ref(), policy)?;
            println!("{}", place.folder.describe());
            println!(
                "{:<52}  {:>10}  {:>9}  {:<24}  {:<30}  retention",
                "archive", "seq", "MiB", "created", "verified"
            );
            for d in &plan.decisions {
                print_listed(&d.snapshot, &d.keep);
            }
            if let Some(t) = &place.target {
                let segments = t.segments()?;
                if let (Some(a), Some(b)) = (segments.first(), segments.last()) {
                    println!(
                        "journal: {} segments, seqs {}..{}; {} older than the oldest kept snapshot",
                        segments.len(),
                        a.first_seq,
                        b.last_seq,
                        plan.segments.len()
                    );
                }
            }
            Ok(())
        }
        BackupCommand::Prune {
            data,
            to,
            dry_run,
            retention,
        } => prune(&data, to, dry_run, &retention),
        BackupCommand::Pin { archive, note } => {
            let (folder, name) = split_archive(&archive)?;
            let pin = Pin {
                at: chrono::Utc::now().to_rfc3339(),
                by: cli_user(),
                note,
            };
            let result = folder.pin(&name, &pin);
            log(
                &folder,
                Event::new(
                    &cli_user(),
                    "pin",
                    Some(&name),
                    result
                        .as_ref()
                        .map(|_| String::new())
                        .map_err(|e| e.to_string()),
                ),
            );
            result?;
            println!("pinned: {name} (retention keeps it until `kontor backup unpin`)");
            Ok(())
        }
        BackupCommand::Unpin { archive } => {
            let (folder, name) = split_archive(&archive)?;
            let was = folder.unpin(&name)?;
            log(
                &folder,
                Event::new(&cli_user(), "unpin", Some(&name), Ok(String::new())),
            );
            println!(
                "{}",
                if was {
                    format!("unpinned: {name}")
                } else {
                    format!("{name} was not pinned")
                }
            );
            Ok(())
        }
    }
}

fn print_listed(s: &StoredSnapshot, keep: &[retention::Reason]) {
    let fate = if keep.is_empty() {
        "PRUNE".to_string()
    } else {
        format!(
            "keep: {}",
            keep.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let fate = match &s.pin {
        Some(Pin { note: Some(n), .. }) => format!("{fate} ({n})"),
        _ => fate,
    };
    let verified = match &s.verification {
        Some(v) if v.ok => format!("ok {}", v.at.get(..19).unwrap_or(&v.at)),
        Some(_) => "FAILED".to_string(),
        None => "-".to_string(),
    };
    match &s.manifest {
        Some(m) => println!(
            "{:<52}  {:>10}  {:>9.1}  {:<24}  {:<30}  {fate}",
            s.name,
            m.seq,
            s.bytes as f64 / 1048576.0,
            m.created_at.get(..19).unwrap_or(&m.created_at),
            verified
        ),
        None => println!(
            "{:<52}  unreadable: {}  {fate}",
            s.name,
            s.unreadable.as_deref().unwrap_or("")
        ),
    }
}

fn prune(
    data: &DataArg,
    to: Option<PathBuf>,
    dry_run: bool,
    retention: &RetentionArgs,
) -> Result<(), CliError> {
    let place = archives(data, to)?;
    let policy = retention.policy(&place.conf);
    let plan = match (&place.target, dry_run) {
        (Some(t), false) => kontor_backup::ship::prune(t, policy, &cli_user())?,
        _ => retention::plan(&place.folder, place.target.as_ref(), policy)?,
    };
    if !dry_run && place.target.is_none() {
        let result = retention::apply(&plan, &place.folder, None);
        log(
            &place.folder,
            Event::new(
                &cli_user(),
                "prune",
                None,
                match &result {
                    Ok(()) => Ok(format!("removed {} archives", plan.removed().count())),
                    Err(e) => Err(e.to_string()),
                },
            ),
        );
        result?;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for d in plan.removed() {
        println!("{verb}: {}", d.snapshot.name);
    }
    for p in &plan.stale {
        println!("{verb}: {} (left by a writer that died)", p.display());
    }
    println!(
        "{verb} {} archives ({:.1} MiB) and {} journal segments; kept {} archives (policy: {} daily, {} weekly, {} monthly; pinned and the newest verified always)",
        plan.removed().count(),
        plan.removed_bytes() as f64 / 1048576.0,
        plan.segments.len(),
        plan.decisions.iter().filter(|d| d.kept()).count(),
        policy.daily,
        policy.weekly,
        policy.monthly
    );
    Ok(())
}

fn status(data: &DataArg, to: Option<PathBuf>) -> Result<(), CliError> {
    let file = crate::config::FileConfig::load(&data.data.join(kontor_core::datadir::CONFIG_FILE))
        .map_err(CliError::Usage)?;
    let to = to
        .or_else(|| file.backup.and_then(|b| b.target))
        .ok_or_else(|| {
            CliError::Usage(
                "no backup target: give --to or set [backup] target in kontor.toml".into(),
            )
        })?;
    let target = BackupTarget::open(&to)?;
    let info = target.info()?.ok_or_else(|| {
        CliError::NotFound(format!("{} is not a Kontor backup target", to.display()))
    })?;
    println!("target:       {}", to.display());
    println!(
        "database:     history {} (since {})",
        info.origin, info.created_at
    );
    let now = chrono::Utc::now().timestamp_millis();
    match target.writer_state()? {
        Some(w) => {
            let age = (now - w.heartbeat_ms) as f64 / 1000.0;
            let state = if w.stopped {
                "stopped cleanly".to_string()
            } else if w.is_stale(now) {
                format!("silent for {age:.0} s (not running?)")
            } else {
                format!("running, heard from {age:.1} s ago")
            };
            println!("writer:       {} pid {} — {state}", w.host, w.pid);
            let shipped_at = if w.shipped_at > 0 {
                kontor_domain::time::format_micros(w.shipped_at)
            } else {
                "-".into()
            };
            println!("shipped:      seq {} ({shipped_at})", w.shipped_seq);
            let behind = (w.source_seq - w.shipped_seq).max(0);
            let lag = if behind == 0 {
                0.0
            } else {
                (w.source_at - w.shipped_at).max(0) as f64 / 1e6
            };
            println!(
                "lag:          {behind} entries, {lag:.1} s (database at seq {}; every {} ms)",
                w.source_seq, w.interval_ms
            );
            if let Some(e) = &w.last_error {
                println!("last failure: {e}");
            }
        }
        None => println!("writer:       none has shipped here yet"),
    }
    let segments = target.segments()?;
    if let (Some(a), Some(b)) = (segments.first(), segments.last()) {
        println!(
            "journal:      {} segments, seqs {}..{}",
            segments.len(),
            a.first_seq,
            b.last_seq
        );
    }
    let snaps = target.snapshots()?;
    println!("snapshots:    {}", snaps.len());
    for s in &snaps {
        let seq = s
            .manifest
            .as_ref()
            .map_or("unreadable".to_string(), |m| format!("seq {}", m.seq));
        let v = match &s.verification {
            Some(v) if v.ok => format!("verified {} ({:.1} s)", v.at, v.seconds),
            Some(v) => format!(
                "VERIFICATION FAILED {}: {}",
                v.at,
                v.error.as_deref().unwrap_or("")
            ),
            None => "not verified".into(),
        };
        println!("  {}  {seq}  {v}", s.name);
    }
    Ok(())
}

fn rows(tables: &std::collections::BTreeMap<String, u64>) -> String {
    tables
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `kontor restore` was asked for.
#[derive(clap::Args)]
pub struct RestoreArgs {
    /// An archive file, or a backup target (a folder `serve --backup-to` writes, or
    /// s3://BUCKET/PREFIX).
    #[arg(long)]
    pub from: PathBuf,
    /// New (absent or empty) data directory for a SQLite restore (existing, with
    /// --catch-up).
    #[arg(long, default_value = "./kontor-data")]
    pub data: PathBuf,
    /// Empty PostgreSQL database to restore into instead.
    #[arg(long, hide_env_values = true)]
    pub database: Option<String>,
    /// Restore the state as of this time (RFC 3339, e.g. 2026-11-24T10:15:00Z); target only.
    #[arg(long, conflicts_with = "seq")]
    pub at: Option<String>,
    /// Restore the state as of this journal seq; target only.
    #[arg(long)]
    pub seq: Option<i64>,
    /// Apply the target's journal after the last entry of the existing database in
    /// --data / --database (the switch-over after a move).
    #[arg(long, conflicts_with_all = ["at", "seq"])]
    pub catch_up: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// `kontor restore --from ARCHIVE_OR_TARGET (--data NEWDIR | --database URL) [--at | --seq]`
/// and `kontor restore --catch-up --from TARGET (--data DIR | --database URL)`.
pub async fn restore(args: RestoreArgs) -> Result<(), CliError> {
    let result = restore_from(&args).await;
    // Recorded in the log of where it came from (a target's, or the archive's folder).
    let (folder, archive) = if BackupTarget::is_target(&args.from) {
        (BackupTarget::open(&args.from)?.snapshot_folder(), None)
    } else {
        match split_archive(&args.from) {
            Ok((f, name)) if args.from.is_file() => (f, Some(name)),
            _ => return result,
        }
    };
    let into = match &args.database {
        Some(url) => redact_url(url),
        None => args.data.display().to_string(),
    };
    let what = if args.catch_up { "catch-up" } else { "restore" };
    let point = match (&args.at, args.seq) {
        (Some(at), _) => format!(" as at {at}"),
        (None, Some(n)) => format!(" as at seq {n}"),
        _ => String::new(),
    };
    log(
        &folder,
        Event::new(
            &cli_user(),
            what,
            archive.as_deref(),
            match &result {
                Ok(()) => Ok(format!("into {into}{point}")),
                Err(e) => Err(format!("into {into}{point}: {e}")),
            },
        ),
    );
    result
}

async fn restore_from(args: &RestoreArgs) -> Result<(), CliError> {
    let is_target = BackupTarget::is_target(&args.from);
    if !is_target && (args.at.is_some() || args.seq.is_some() || args.catch_up) {
        return Err(CliError::Usage(format!(
            "{} is not a backup target; --at, --seq and --catch-up restore from a target folder \
             (the folder `serve --backup-to` writes)",
            args.from.display()
        )));
    }
    if !is_target && !args.from.is_file() {
        return Err(CliError::NotFound(format!(
            "{} is neither an archive nor a backup target",
            args.from.display()
        )));
    }
    let keys = args.keys.keys()?;
    if args.catch_up {
        return catch_up(args, &keys).await;
    }
    let until = match (&args.at, args.seq) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage("give --at or --seq, not both".into()));
        }
        (Some(at), None) => Until::Time(
            chrono::DateTime::parse_from_rfc3339(at)
                .map_err(|e| CliError::Usage(format!("--at {at}: not an RFC 3339 time ({e})")))?
                .timestamp_micros(),
        ),
        (None, Some(n)) => Until::Seq(n),
        (None, None) => Until::End,
    };
    let outcome = into_new(args, |target| {
        let from = args.from.clone();
        let keys = &keys;
        async move {
            if is_target {
                let t = BackupTarget::open(&from)?;
                let r = kontor_backup::restore::restore_point(&t, &target, until, keys, Bar::new())
                    .await?;
                Ok(Outcome::Point(r))
            } else {
                let r = kontor_backup::restore::restore(&from, &target, keys, Bar::new()).await?;
                Ok(Outcome::Archive(Box::new(r)))
            }
        }
    })
    .await?;
    match outcome {
        Outcome::Archive(report) => {
            let m = &report.manifest;
            println!(
                "seq {} ({}), rows {}, digest {} — proved equal in {:.1} s",
                m.seq,
                m.seq_at.as_deref().unwrap_or("empty journal"),
                rows(&m.tables),
                m.digest,
                report.seconds
            );
        }
        Outcome::Point(r) => print_point(&r),
    }
    Ok(())
}

enum Outcome {
    Archive(Box<kontor_backup::restore::Report>),
    Point(PointReport),
}

fn print_point(r: &PointReport) {
    if let Some(s) = &r.snapshot {
        println!("snapshot: {s} (seq {})", r.start_seq);
    }
    let at = if r.replayed.at > 0 {
        kontor_domain::time::format_micros(r.replayed.at)
    } else {
        "-".into()
    };
    println!(
        "replayed: {} journal entries, now at seq {} ({at}) in {:.1} s",
        r.replayed.entries, r.replayed.seq, r.seconds
    );
}

/// Runs `work` against a new database: an empty PostgreSQL database, or an absent or empty
/// data directory (removed again if the work fails); migrates the result to this Kontor's
/// schema.
async fn into_new<F, Fut, T>(args: &RestoreArgs, work: F) -> Result<T, CliError>
where
    F: FnOnce(Target) -> Fut,
    Fut: std::future::Future<Output = Result<T, BackupError>>,
{
    if let Some(url) = &args.database {
        let out = work(Target::Postgres(url.clone())).await?;
        // Connecting migrates the restored data to this Kontor's schema.
        PgStore::connect(url).await?.close().await;
        println!("restored into PostgreSQL database {}", redact_url(url));
        return Ok(out);
    }
    let data = &args.data;
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
    let out = match work(Target::Sqlite(dir.db_path())).await {
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
    Ok(out)
}

/// Applies what the old server shipped after the restored database's last entry.
async fn catch_up(args: &RestoreArgs, keys: &Keys) -> Result<(), CliError> {
    let from = BackupTarget::open(&args.from)?;
    let report = match &args.database {
        Some(url) => {
            let target = Target::Postgres(url.clone());
            kontor_backup::restore::catch_up(&from, &target, keys, Bar::new()).await?
        }
        None => {
            // The lock keeps a server off the database while entries are applied.
            let dir = DataDir::open(&args.data, false)?;
            let db = dir.db_path();
            if !db.is_file() {
                return Err(CliError::NotFound(format!(
                    "no Kontor database in {}",
                    args.data.display()
                )));
            }
            kontor_backup::restore::catch_up(&from, &Target::Sqlite(db), keys, Bar::new()).await?
        }
    };
    print_point(&report);
    Ok(())
}
