//! `kontor exchange`: the 1C exchange run offline over files or an exchange folder, through the
//! same code the HTTP exchange uses, with a progress bar and the run's report.

use crate::{CliError, DataArg, Target};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kontor_domain::Actor;
use kontor_exchange::{CatalogImport, ImportError, Missing, OnError, Options, RunReport};
use kontor_server::exchange::{ExchangeConfig, ExchangeDesk};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum ExchangeCommand {
    /// Apply CommerceML files (catalog, offers, prices, stock) to Kontor, as one journal batch
    /// (origin `exchange`) that `POST /api/v1/history/undo` can take back. Folders are read
    /// whole (classifier and properties first, then goods, offers, prices, stock).
    Import {
        #[command(flatten)]
        data: DataArg,
        /// Files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// What a full upload does with products and offers it no longer lists.
        #[arg(long, value_enum, default_value = "deactivate")]
        missing: MissingArg,
        /// Stop at the first record that fails instead of reporting it and going on.
        #[arg(long)]
        stop_on_error: bool,
    },
}

/// How `serve` answers 1C at `/1c_exchange`.
#[derive(clap::Args, Clone)]
pub(crate) struct ServeArgs {
    /// Longest an exchange `import` call works before answering `progress` (1C asks again).
    #[arg(long, env = "KONTOR_EXCHANGE_STEP_MS", default_value_t = 20_000)]
    exchange_step_ms: u64,
    /// Largest body 1C may post at once (`file_limit` of `init`); bigger files come in parts.
    #[arg(long, env = "KONTOR_EXCHANGE_FILE_LIMIT", default_value_t = 8 * 1024 * 1024)]
    exchange_file_limit: u64,
    /// Offer 1C zip uploads (`zip=yes`); `false` asks for plain files.
    #[arg(long, env = "KONTOR_EXCHANGE_ZIP", default_value_t = true, action = clap::ArgAction::Set)]
    exchange_zip: bool,
    /// Seconds a catalog run waits for 1C's next request before it ends (1C's classic
    /// exchange sends no `complete`).
    #[arg(long, env = "KONTOR_EXCHANGE_IDLE_SECS", default_value_t = 120)]
    exchange_idle_secs: u64,
}

impl ServeArgs {
    /// The exchange of a server whose data directory is `data`.
    pub(crate) fn desk(&self, data: &Path) -> Result<Arc<ExchangeDesk>, CliError> {
        if self.exchange_file_limit < 1024 {
            return Err(CliError::Usage(
                "--exchange-file-limit must be at least 1024 bytes".into(),
            ));
        }
        let mut config = ExchangeConfig::new(data.join("exchange"));
        config.step_time = Duration::from_millis(self.exchange_step_ms);
        config.file_limit = self.exchange_file_limit;
        config.zip = self.exchange_zip;
        config.idle_end = Duration::from_secs(self.exchange_idle_secs.max(1));
        Ok(ExchangeDesk::new(config))
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MissingArg {
    Keep,
    Deactivate,
    Delete,
}

pub(crate) async fn exchange(command: ExchangeCommand) -> Result<(), CliError> {
    match command {
        ExchangeCommand::Import {
            data,
            paths,
            missing,
            stop_on_error,
        } => {
            let files = exchange_files(&paths)?;
            if files.is_empty() {
                return Err(CliError::Usage(
                    "no .xml files in the paths given".to_string(),
                ));
            }
            let target = Target::open(&data, false).await?;
            let options = Options {
                missing: match missing {
                    MissingArg::Keep => Missing::Keep,
                    MissingArg::Deactivate => Missing::Deactivate,
                    MissingArg::Delete => Missing::Delete,
                },
                on_error: if stop_on_error {
                    OnError::Stop
                } else {
                    OnError::Skip
                },
                ..Options::default()
            };
            let result = import(&target, &files, options).await;
            target.close().await;
            let report = result?;
            print_report(&report);
            match report.failed() {
                0 => Ok(()),
                n => Err(CliError::RecordsFailed(format!(
                    "{n} record(s) failed and were skipped (listed above); the rest is applied"
                ))),
            }
        }
    }
}

async fn import(
    target: &Target,
    files: &[PathBuf],
    options: Options,
) -> Result<RunReport, CliError> {
    let actor = Actor::system();
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>24} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    let mut run = CatalogImport::new(target.kontor.clone(), actor, options)
        .await
        .map_err(import_error)?;
    let mut before = 0u64;
    for file in files {
        let name = file.display().to_string();
        bar.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let input = std::fs::File::open(file)
            .map_err(|e| CliError::Io(format!("cannot open {name}: {e}")))?;
        let mut progress = |read: u64| bar.set_position(before + read);
        run.import_file(&name, std::io::BufReader::new(input), &mut progress)
            .await
            .map_err(import_error)?;
        before += std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    }
    bar.finish_and_clear();
    run.finish().await.map_err(import_error)
}

fn import_error(e: ImportError) -> CliError {
    match e {
        ImportError::Store(c) => CliError::Core(c),
        other => CliError::Exchange(other.to_string()),
    }
}

fn print_report(report: &RunReport) {
    println!("batch {}", report.batch);
    println!("{}", report.summary());
    for f in report.failures.iter().take(50) {
        println!(
            "failed: {}, line {}, {}: {}",
            f.file, f.line, f.record, f.message
        );
    }
    if report.failures.len() > 50 {
        println!("… and {} more failures", report.failed() - 50);
    }
}

/// The XML files under `paths`, in the order 1C would send them: the classifier and
/// properties before goods, goods before offers, offers before prices and stock.
pub(crate) fn exchange_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    files.sort_by_key(|f| {
        (
            name_rank(f),
            folder_rank(f),
            f.components().count(),
            f.clone(),
        )
    });
    files.dedup();
    Ok(files)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), CliError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| CliError::Io(format!("cannot list {}: {e}", path.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| CliError::Io(format!("cannot list {}: {e}", path.display())))?;
        let p = entry.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// import < offers < prices < rests < anything else, by the file name's start.
fn name_rank(path: &Path) -> u8 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    ["import", "offers", "prices", "rests"]
        .iter()
        .position(|p| name.starts_with(p))
        .map_or(4, |i| i as u8)
}

/// Properties and references before goods (and, within a rank, shallower files first: a
/// packet's top-level classifier before its goods).
fn folder_rank(path: &Path) -> u8 {
    let text = path.to_string_lossy().to_lowercase();
    if text.contains("propert") || text.contains("reference") {
        0
    } else {
        1
    }
}
