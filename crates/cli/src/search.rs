//! `kontor search TEXT` (the same search as `GET /api/v1/search`, as an administrator or as a
//! named user) and `kontor search rebuild` (the index built again from the records, with a
//! progress bar). Both work on a stopped server's data; a running server keeps its index itself
//! and rebuilds it through `POST /api/v1/admin/search/rebuild`.

use crate::{CliError, DataArg, Target};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use kontor_domain::permission::Actor;
use kontor_search::{Search, SearchError, SearchParams};
use std::path::Path;
use std::sync::Arc;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    #[command(subcommand)]
    pub command: Option<SearchCommand>,
    /// What to look for: names, e-mails, phones in any format, INN, numbers, words of notes.
    pub query: Option<String>,
    /// Only these entities (companies, contacts, leads, deals, products, invoices).
    #[arg(long = "entity", value_delimiter = ',')]
    pub entities: Vec<String>,
    /// Results per entity (1 to 50, default 10).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Search as this user (e-mail), seeing what they may see; default: as an administrator.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Print the results as JSON (as the API answers).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(Subcommand)]
pub enum SearchCommand {
    /// Build the search index again from the records.
    Rebuild {
        #[command(flatten)]
        data: DataArg,
    },
}

/// The search index of a data directory.
pub fn open_index(data: &Path) -> Result<Search, CliError> {
    Search::open(&data.join("search")).map_err(cli_error)
}

fn cli_error(e: SearchError) -> CliError {
    match e {
        SearchError::Core(e) => CliError::Core(e),
        SearchError::Busy(m) | SearchError::Index(m) => CliError::Io(m),
    }
}

pub async fn run(args: SearchArgs) -> Result<(), CliError> {
    match args.command {
        Some(SearchCommand::Rebuild { data }) => rebuild(&data).await,
        None => {
            let query = args.query.clone().ok_or_else(|| {
                CliError::Usage(
                    "say what to search for: kontor search TEXT (or kontor search rebuild)".into(),
                )
            })?;
            search(&args, query).await
        }
    }
}

async fn rebuild(data: &DataArg) -> Result<(), CliError> {
    let target = Target::open(data, false).await?;
    let result = async {
        let index = open_index(&data.data)?;
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} records ({per_sec})")
        {
            bar.set_style(style);
        }
        bar.set_message("indexing");
        let started = std::time::Instant::now();
        let n = index
            .rebuild(&target.kontor, &|done| bar.set_position(done))
            .await
            .map_err(cli_error)?;
        bar.finish_and_clear();
        println!(
            "search index rebuilt: {n} records in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
    .await;
    target.close().await;
    result
}

async fn search(args: &SearchArgs, query: String) -> Result<(), CliError> {
    let target = Target::open(&args.data, false).await?;
    let result = async {
        let actor = match &args.as_user {
            Some(email) => {
                let record = crate::find_user(&target.kontor, email).await?;
                kontor_core::auth::actor_for_user(target.kontor.store.as_ref(), &record).await?
            }
            None => Actor::system(),
        };
        let index = Arc::new(open_index(&args.data.data)?);
        let results = index
            .search(
                &target.kontor,
                &actor,
                &SearchParams {
                    q: query,
                    entities: args.entities.clone(),
                    limit: args.limit,
                },
            )
            .await
            .map_err(cli_error)?;
        if args.json {
            let text =
                serde_json::to_string_pretty(&results).map_err(|e| CliError::Io(e.to_string()))?;
            println!("{text}");
            return Ok(());
        }
        if results.groups.is_empty() {
            println!("nothing found for \"{}\"", results.query);
        }
        for g in &results.groups {
            let more = if g.total_is_estimate { "at least " } else { "" };
            println!("{} ({more}{} found)", g.entity, g.total);
            for item in &g.items {
                let at = item
                    .highlight
                    .as_ref()
                    .map(|h| format!(" — {}: {}", h.field, h.text))
                    .unwrap_or_default();
                println!("  {}{at}  [{}]", item.title, item.id);
            }
        }
        Ok(())
    }
    .await;
    target.close().await;
    result
}
