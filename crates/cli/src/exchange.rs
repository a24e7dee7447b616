//! `kontor exchange`: the 1C exchange run offline over files or an exchange folder, through the
//! same code the HTTP exchange uses, with a progress bar and the run's report; invoices
//! written out for 1C; and, for `serve`, the exchange options and the exchange folder polled on
//! a schedule.

use crate::{CliError, DataArg, Target};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kontor_core::Kontor;
use kontor_domain::Actor;
use kontor_exchange::{folder, settings, ImportError, Missing, OnError, Options, RunReport};
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
        /// What a full upload does with products and offers it no longer lists (default: the
        /// 1C database's setting, else deactivate).
        #[arg(long, value_enum)]
        missing: Option<MissingArg>,
        /// Stop at the first record that fails instead of reporting it and going on.
        #[arg(long)]
        stop_on_error: bool,
        /// The exchange user (role `exchange`) of the 1C database the files come from: the
        /// changes are theirs, so they are not sent back to that 1C as invoices.
        #[arg(long)]
        user: Option<String>,
    },
    /// The settings of the exchange with a 1C database (its `onec_databases` record) as a
    /// file, to set up the next 1C database the same way.
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Write the invoices the 1C database of an exchange user has not had yet to a new file in
    /// a folder (windows-1251 unless its record says utf-8); the position moves once the file
    /// is written whole.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        user: UserArg,
        /// The folder to write to.
        #[arg(long)]
        to: PathBuf,
    },
}

/// The exchange user (role `exchange`) a 1C database logs in as: it stands for that database.
#[derive(clap::Args)]
pub(crate) struct UserArg {
    #[arg(long = "user")]
    email: String,
}

#[derive(Subcommand)]
pub(crate) enum SettingsCommand {
    /// Print the settings (JSON) of the 1C database an exchange user stands for.
    Export {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        user: UserArg,
        /// Write to this file instead of printing.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Apply a settings file to the 1C database an exchange user stands for.
    Import {
        #[command(flatten)]
        data: DataArg,
        #[command(flatten)]
        user: UserArg,
        /// A file written by `settings export`.
        file: PathBuf,
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
    /// An exchange folder 1C writes to and reads from: on the schedule, the files in its
    /// `in/` are imported (then moved to `done/<time>/`, or `failed/<time>/`) and new invoices
    /// written to `out/`.
    #[arg(
        long,
        env = "KONTOR_EXCHANGE_FOLDER",
        requires = "exchange_folder_user"
    )]
    exchange_folder: Option<PathBuf>,
    /// The exchange user (role `exchange`) the folder's 1C database logs in as.
    #[arg(long, env = "KONTOR_EXCHANGE_FOLDER_USER")]
    exchange_folder_user: Option<String>,
    /// When the folder is polled (cron, local time, seconds optional; default 23:30 daily).
    #[arg(
        long,
        env = "KONTOR_EXCHANGE_FOLDER_SCHEDULE",
        default_value = "30 23 * * *"
    )]
    exchange_folder_schedule: String,
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

/// The exchange folder `serve` polls.
pub(crate) struct FolderPoller {
    kontor: Arc<Kontor>,
    folder: PathBuf,
    user: String,
    schedule: croner::Cron,
    pattern: String,
}

impl ServeArgs {
    /// The folder poller, when a folder is set; its settings are checked now.
    pub(crate) async fn folder_poller(
        &self,
        kontor: &Arc<Kontor>,
    ) -> Result<Option<FolderPoller>, CliError> {
        let (Some(folder), Some(user)) = (&self.exchange_folder, &self.exchange_folder_user) else {
            return Ok(None);
        };
        let schedule = croner::Cron::new(&self.exchange_folder_schedule)
            .with_seconds_optional()
            .parse()
            .map_err(|e| {
                CliError::Usage(format!(
                    "--exchange-folder-schedule '{}' is not a cron expression: {e}",
                    self.exchange_folder_schedule
                ))
            })?;
        exchange_actor(kontor, Some(user)).await?;
        std::fs::create_dir_all(folder.join("in"))
            .map_err(|e| CliError::Io(format!("cannot create {}/in: {e}", folder.display())))?;
        Ok(Some(FolderPoller {
            kontor: kontor.clone(),
            folder: folder.clone(),
            user: user.clone(),
            schedule,
            pattern: self.exchange_folder_schedule.clone(),
        }))
    }
}

impl FolderPoller {
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} as {} ({})",
            self.folder.display(),
            self.user,
            self.pattern
        )
    }

    /// Polls on the schedule until `stop` turns true.
    pub(crate) async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let now = chrono::Local::now();
            let Ok(next) = self.schedule.find_next_occurrence(&now, false) else {
                tracing::error!("the exchange folder schedule has no next time; polling stops");
                return;
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            match self.once().await {
                Ok(summary) => {
                    tracing::info!(folder = %self.folder.display(), %summary, "exchange folder polled")
                }
                Err(e) => {
                    tracing::error!(folder = %self.folder.display(), error = %e, "exchange folder run failed")
                }
            }
        }
    }

    /// One poll: what is in `in/` is imported and moved to `done/<time>/`; new invoices go to
    /// `out/`.
    pub(crate) async fn once(&self) -> Result<String, CliError> {
        let actor = exchange_actor(&self.kontor, Some(&self.user)).await?;
        let inbox = self.folder.join("in");
        // A file changed in the last two seconds may still be being written: next time.
        let settled = |f: &PathBuf| {
            std::fs::metadata(f)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() >= Duration::from_secs(2))
        };
        let files: Vec<PathBuf> = folder::exchange_files(std::slice::from_ref(&inbox))
            .map_err(CliError::Io)?
            .into_iter()
            .filter(settled)
            .collect();
        let mut summary = String::new();
        if !files.is_empty() {
            let started = kontor_domain::time::now();
            let by = actor.user_id.clone();
            let database = database_of(&self.kontor, &self.user).await?;
            let options = settings::options_of(&database).map_err(CliError::Usage)?;
            let outcome =
                folder::import_files(self.kontor.clone(), actor, options, &files, &mut |_, _| {})
                    .await
                    .map_err(|e| e.to_string());
            let run = folder::record_run(
                &self.kontor,
                "exchange.folder",
                &by,
                "serve",
                started,
                &outcome,
            )
            .await?;
            // Applied files go to done/, those of a run that failed to failed/, by time.
            let shelf = if outcome.is_ok() { "done" } else { "failed" };
            let done = self
                .folder
                .join(shelf)
                .join(started.format("%Y%m%dT%H%M%S%.3f").to_string());
            for f in &files {
                let rel = f.strip_prefix(&inbox).unwrap_or(f);
                let to = done.join(rel);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        CliError::Io(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                std::fs::rename(f, &to).map_err(|e| {
                    CliError::Io(format!(
                        "cannot move {} to {}: {e}",
                        f.display(),
                        to.display()
                    ))
                })?;
            }
            summary = match outcome {
                Ok(r) => format!("run {run}: {}", r.summary().replace('\n', "; ")),
                Err(e) => format!("run {run} failed: {e}"),
            };
        }
        let user = crate::find_user(&self.kontor, &self.user).await?;
        match folder::export_invoices(&self.kontor, &user, &self.folder.join("out"))
            .await
            .map_err(CliError::Exchange)?
        {
            Some((path, n)) => summary.push_str(&format!("; {n} invoice(s) to {}", path.display())),
            None => summary.push_str("; no invoices to send"),
        }
        Ok(summary)
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
            user,
        } => {
            let files = folder::exchange_files(&paths).map_err(CliError::Usage)?;
            if files.is_empty() {
                return Err(CliError::Usage(
                    "no .xml files in the paths given".to_string(),
                ));
            }
            let target = Target::open(&data, false).await?;
            let result = async {
                let actor = exchange_actor(&target.kontor, user.as_deref()).await?;
                // A 1C database's settings, then what the command line says.
                let mut options = match &user {
                    Some(email) => {
                        let database = database_of(&target.kontor, email).await?;
                        settings::options_of(&database).map_err(CliError::Usage)?
                    }
                    None => Options::default(),
                };
                if let Some(m) = missing {
                    options.missing = match m {
                        MissingArg::Keep => Missing::Keep,
                        MissingArg::Deactivate => Missing::Deactivate,
                        MissingArg::Delete => Missing::Delete,
                    };
                }
                if stop_on_error {
                    options.on_error = OnError::Stop;
                }
                import(&target.kontor, actor, &files, options).await
            }
            .await;
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
        ExchangeCommand::Settings { command } => settings_command(command).await,
        ExchangeCommand::Export {
            data,
            user: UserArg { email: user },
            to,
        } => {
            let target = Target::open(&data, false).await?;
            let result = async {
                let record = crate::find_user(&target.kontor, &user).await?;
                exchange_actor(&target.kontor, Some(&user)).await?;
                folder::export_invoices(&target.kontor, &record, &to)
                    .await
                    .map_err(CliError::Exchange)
            }
            .await;
            target.close().await;
            match result? {
                Some((path, n)) => println!("{n} invoice(s) written to {}", path.display()),
                None => println!("no invoices to send: 1C has every one"),
            }
            Ok(())
        }
    }
}

/// The `onec_databases` record of an exchange user (made on first use).
async fn database_of(kontor: &Kontor, email: &str) -> Result<kontor_domain::Record, CliError> {
    exchange_actor(kontor, Some(email)).await?;
    let user = crate::find_user(kontor, email).await?;
    Ok(kontor_exchange::sale::onec_database(kontor, &user).await?)
}

async fn settings_command(command: SettingsCommand) -> Result<(), CliError> {
    match command {
        SettingsCommand::Export {
            data,
            user: UserArg { email: user },
            to,
        } => {
            let target = Target::open(&data, false).await?;
            let database = database_of(&target.kontor, &user).await;
            target.close().await;
            let text = serde_json::to_string_pretty(&settings::export(&database?))
                .map_err(|e| CliError::Io(e.to_string()))?;
            match to {
                Some(path) => std::fs::write(&path, text + "\n")
                    .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?,
                None => println!("{text}"),
            }
            Ok(())
        }
        SettingsCommand::Import {
            data,
            user: UserArg { email: user },
            file,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| CliError::Usage(format!("{} is not JSON: {e}", file.display())))?;
            let target = Target::open(&data, false).await?;
            let result = async {
                let database = database_of(&target.kontor, &user).await?;
                settings::import(&target.kontor, &Actor::system(), &database, &value).await?;
                Ok::<_, CliError>(())
            }
            .await;
            target.close().await;
            result?;
            println!("settings applied to the 1C database of {user}");
            Ok(())
        }
    }
}

/// The actor of an offline run: the named exchange user, or Kontor itself.
async fn exchange_actor(kontor: &Kontor, user: Option<&str>) -> Result<Actor, CliError> {
    let Some(email) = user else {
        return Ok(Actor::system());
    };
    let record = crate::find_user(kontor, email).await?;
    let actor = kontor_core::auth::actor_for_user(kontor.store.as_ref(), &record).await?;
    kontor_core::auth::require_exchange_role(&actor)?;
    Ok(actor)
}

/// One offline run over `files` with a progress bar, recorded as an `exchange.folder` job.
async fn import(
    kontor: &Arc<Kontor>,
    actor: Actor,
    files: &[PathBuf],
    options: Options,
) -> Result<RunReport, CliError> {
    let started = kontor_domain::time::now();
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
    let mut done_before = 0u64;
    let mut current: Option<PathBuf> = None;
    let mut progress = |file: &Path, read: u64| {
        if current.as_deref() != Some(file) {
            if let Some(prev) = &current {
                done_before += std::fs::metadata(prev).map(|m| m.len()).unwrap_or(0);
            }
            current = Some(file.to_path_buf());
            bar.set_message(
                file.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
            );
        }
        bar.set_position(done_before + read);
    };
    let by = actor.user_id.clone();
    let outcome = folder::import_files(kontor.clone(), actor, options, files, &mut progress)
        .await
        .map_err(import_error);
    bar.finish_and_clear();
    let recorded = outcome
        .as_ref()
        .map(Clone::clone)
        .map_err(|e| e.to_string());
    if let Err(e) =
        folder::record_run(kontor, "exchange.folder", &by, "cli", started, &recorded).await
    {
        tracing::warn!(error = %e, "the run could not be recorded in the runs list");
    }
    outcome
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
