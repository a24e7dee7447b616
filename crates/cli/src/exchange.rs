//! `kontor exchange`: the 1C exchange run offline over files or an exchange folder, through the
//! same code the HTTP exchange uses, with a progress bar and the run's report.

use crate::{CliError, DataArg, Target};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kontor_domain::Actor;
use kontor_exchange::{CatalogImport, ImportError, Missing, OnError, Options, RunReport};
use std::path::{Path, PathBuf};

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
    let mut run = CatalogImport::new(&target.kontor, &actor, options)
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
