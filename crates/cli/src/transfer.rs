//! `kontor import` and `kontor export`: spreadsheets in and out from the command line, with a
//! progress bar. On PostgreSQL, or on SQLite with no server running, the command works on the
//! database itself; while a server holds an SQLite data directory, it asks that server through
//! its local socket (`<data dir>/kontor.sock`, which only the directory's owner can open), so
//! imports and exports work while Kontor serves. An interrupted import run again with the same
//! file and settings goes on after the last row that landed.

use crate::backup::{Bar, Unit};
use crate::local::{body_json, local_request, refused};
use crate::{find_user, open_existing, CliError, DataArg};
use http_body_util::BodyExt;
use kontor_core::progress::Progress;
use kontor_core::Kontor;
use kontor_domain::permission::Actor;
use kontor_domain::Entity;
use kontor_store::JobRow;
use kontor_tabular::export::{ExportFormat, ExportSpec};
use kontor_tabular::import::{self, ImportError, ImportRun, ImportSpec, Mode};
use kontor_tabular::report::ImportReport;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The CSV or XLSX file.
    pub file: PathBuf,
    /// What the rows are: contacts, companies, leads, deals, products, ...
    #[arg(long)]
    pub entity: String,
    /// The key rows are matched with records by: id, a unique key (external_id, inn+kpp, sku)
    /// or an indexed field (email, phone, inn).
    #[arg(long = "match")]
    pub match_on: Option<String>,
    /// create (default), update, upsert (create or update) or skip (create only new).
    #[arg(long)]
    pub mode: Option<String>,
    /// An import template (its mapping, key, mode and reading settings).
    #[arg(long)]
    pub template: Option<String>,
    /// Where a column goes, HEADER=FIELD (repeat it): a field, id, owner_id, a reference by a
    /// key of its record (company_id.inn, owner_id.email), or nothing to leave it out.
    #[arg(long = "map")]
    pub map: Vec<String>,
    /// Report what the import would do and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// CSV delimiter (one character, or tab); detected by default.
    #[arg(long)]
    pub delimiter: Option<String>,
    /// CSV encoding (utf-8, windows-1251, ...); detected by default.
    #[arg(long)]
    pub encoding: Option<String>,
    /// XLSX sheet; the first by default.
    #[arg(long)]
    pub sheet: Option<String>,
    /// Save the mapping and settings as an import template of this name.
    #[arg(long)]
    pub save_template: Option<String>,
    /// Import as this user (their permissions; new records are theirs); default: the
    /// administrator.
    #[arg(long = "as")]
    pub as_user: Option<String>,
    /// Where the refused rows go (default: FILE.errors.csv beside the file).
    #[arg(long)]
    pub errors: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub data: DataArg,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// What to export: contacts, companies, ...
    #[arg(long)]
    pub entity: String,
    /// csv (default), xlsx or jsonl.
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// The file to write (default: ENTITY.FORMAT here; - for standard output).
    #[arg(long)]
    pub to: Option<PathBuf>,
    /// A list filter, FIELD=VALUE or FIELD[gte]=VALUE (repeat it), as the list API takes them.
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Words the records must contain (the search index).
    #[arg(long)]
    pub q: Option<String>,
    #[arg(long)]
    pub sort: Option<String>,
    #[arg(long)]
    pub order: Option<String>,
    /// CSV delimiter (default ,).
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Export what this user may read; default: the administrator (everything).
    #[arg(long = "as")]
    pub as_user: Option<String>,
    #[command(flatten)]
    pub data: DataArg,
}

fn import_error(e: ImportError) -> CliError {
    match e {
        ImportError::Source(e) => CliError::Exchange(e.to_string()),
        ImportError::Mapping(e) => CliError::Usage(e.to_string()),
        ImportError::Refused(m) | ImportError::Busy(m) => CliError::Usage(m),
        ImportError::Core(e) => CliError::Core(e),
    }
}

/// The import's settings from the command line (the file's digest included).
fn spec_of(args: &ImportArgs) -> Result<ImportSpec, CliError> {
    let mode = match &args.mode {
        Some(m) => Some(Mode::parse(m).ok_or_else(|| {
            CliError::Usage(format!(
                "--mode is create, update, upsert or skip, not '{m}'"
            ))
        })?),
        None => None,
    };
    let mut columns = std::collections::BTreeMap::new();
    for m in &args.map {
        let (h, t) = m
            .rsplit_once('=')
            .ok_or_else(|| CliError::Usage(format!("--map is HEADER=FIELD, not '{m}'")))?;
        columns.insert(h.trim().to_string(), t.trim().to_string());
    }
    let digest = import::digest_file(&args.file)
        .map_err(|e| CliError::Exchange(format!("cannot read {}: {e}", args.file.display())))?;
    Ok(ImportSpec {
        entity: args.entity.clone(),
        mode,
        match_on: args.match_on.clone(),
        columns,
        template: args.template.clone(),
        delimiter: args.delimiter.clone(),
        encoding: args.encoding.clone(),
        sheet: args.sheet.clone(),
        dry_run: args.dry_run,
        save_template: args.save_template.clone(),
        file_name: args
            .file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file")
            .to_string(),
        file_digest: digest,
    })
}

fn errors_path(args: &ImportArgs) -> PathBuf {
    args.errors.clone().unwrap_or_else(|| {
        let mut name = args.file.as_os_str().to_os_string();
        name.push(".errors.csv");
        PathBuf::from(name)
    })
}

/// `kontor import`.
pub async fn import(args: ImportArgs) -> Result<(), CliError> {
    let spec = spec_of(&args)?;
    let report = match crate::Target::open(&args.data, false).await {
        Ok(target) => {
            let desc = target.describe();
            target.close().await;
            let target = open_existing(&args.data).await.map_err(|e| match e {
                CliError::DataDir(_) => CliError::NotFound(format!("{desc} holds no Kontor")),
                other => other,
            })?;
            let result = import_here(&target.kontor, &args, spec).await;
            target.close().await;
            result?
        }
        Err(CliError::DataDir(kontor_core::datadir::DataDirError::Locked { .. })) => {
            import_through_server(&args, spec).await?
        }
        Err(e) => return Err(e),
    };
    print_report(&report, args.json);
    let errors = errors_path(&args);
    if report.rows_not_imported() > 0 && !args.json {
        eprintln!(
            "{} rows were not imported; rows, columns and reasons: {}",
            report.rows_not_imported(),
            errors.display()
        );
    }
    if report.counts.failed > 0 {
        return Err(CliError::RecordsFailed(format!(
            "{} rows failed (see {})",
            report.counts.failed,
            errors.display()
        )));
    }
    Ok(())
}

async fn actor(kontor: &Kontor, as_user: &Option<String>) -> Result<Actor, CliError> {
    match as_user {
        Some(email) => {
            let user = find_user(kontor, email).await?;
            Ok(kontor_core::auth::actor_for_user(kontor.store.as_ref(), &user).await?)
        }
        None => Ok(Actor::system()),
    }
}

/// This process, as the holder of an import's lease.
fn holder() -> String {
    format!("cli-{}", std::process::id())
}

/// The import on the database itself.
async fn import_here(
    kontor: &Arc<Kontor>,
    args: &ImportArgs,
    spec: ImportSpec,
) -> Result<ImportReport, CliError> {
    let actor = actor(kontor, &args.as_user).await?;
    let mut row = match import::resumable(kontor, &spec, &actor.user_id).await? {
        Some(row) => {
            eprintln!("resuming import {} of {}", row.id, spec.file_name);
            row
        }
        None => JobRow::running(
            if spec.dry_run {
                "import.dry_run"
            } else {
                "import"
            },
            Some(format!("{} {}", spec.entity, spec.file_name)),
            &actor.user_id,
            &holder(),
        ),
    };
    kontor.store.put_job(&row).await?;
    let bar = Bar::counting(Unit::Bytes);
    let run = ImportRun {
        kontor: kontor.clone(),
        actor,
        job_id: row.id.clone(),
        holder: import::lease_holder(kontor, &holder()),
        progress: bar.as_ref(),
    };
    let outcome = import::run(&run, spec, &args.file).await;
    bar.done();
    row.updated_at = kontor_domain::time::now();
    match &outcome {
        Ok(report) => {
            row.state = "succeeded".into();
            row.result = serde_json::to_string(report).ok();
        }
        // An import that could not go on (the database went away) stays running: the same
        // command takes it up again.
        Err(ImportError::Core(kontor_core::CoreError::Store(_))) => {}
        Err(e) => {
            row.state = "failed".into();
            row.error = Some(e.to_string());
        }
    }
    kontor.store.put_job(&row).await?;
    let report = outcome.map_err(import_error)?;
    if report.rows_not_imported() > 0 {
        let path = errors_path(args);
        let mut file = std::fs::File::create(&path)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
        import::write_errors_csv(kontor.store.as_ref(), &row.id, &mut file)
            .await
            .map_err(import_error)?;
    }
    Ok(report)
}

async fn copy_body(body: hyper::body::Incoming, out: &mut dyn Write) -> Result<u64, CliError> {
    let mut body = body;
    let mut n = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| CliError::Io(format!("the download broke off: {e}")))?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            out.write_all(&data)
                .map_err(|e| CliError::Io(format!("cannot write: {e}")))?;
        }
    }
    Ok(n)
}

/// The import through the server that holds the data directory.
async fn import_through_server(
    args: &ImportArgs,
    spec: ImportSpec,
) -> Result<ImportReport, CliError> {
    let socket = args.data.data.join(kontor_core::datadir::SOCKET_FILE);
    let path = std::fs::canonicalize(&args.file)
        .map_err(|e| CliError::Exchange(format!("cannot read {}: {e}", args.file.display())))?;
    let (status, body) = local_request(
        &socket,
        "POST",
        "/api/v1/imports/local",
        Some(json!({"path": path, "spec": spec})),
        &args.as_user,
    )
    .await?;
    let job = body_json(body).await?;
    if status != 202 {
        return Err(refused(status, &job));
    }
    let id = job["id"].as_str().unwrap_or_default().to_string();
    let bar = Bar::counting(Unit::Bytes);
    bar.phase(if spec.dry_run { "dry run" } else { "import" }, None);
    let mut last = 0i64;
    let job = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, body) = local_request(
            &socket,
            "GET",
            &format!("/api/v1/imports/{id}"),
            None,
            &args.as_user,
        )
        .await?;
        let job = body_json(body).await?;
        if status != 200 {
            return Err(refused(status, &job));
        }
        if let Some(total) = job["total"].as_u64() {
            if last == 0 {
                bar.phase(if spec.dry_run { "dry run" } else { "import" }, Some(total));
            }
            bar.set_total(total);
        }
        let done = job["done"].as_i64().unwrap_or(0);
        if done > last {
            bar.advance((done - last) as u64);
            last = done;
        }
        if job["state"] != "running" {
            break job;
        }
    };
    bar.done();
    if job["state"] != "succeeded" {
        return Err(CliError::Usage(
            job["error"]
                .as_str()
                .unwrap_or("the import failed")
                .to_string(),
        ));
    }
    let report: ImportReport = serde_json::from_value(job["result"].clone())
        .map_err(|e| CliError::Io(format!("the server's report is unreadable: {e}")))?;
    if report.rows_not_imported() > 0 {
        let (status, body) = local_request(
            &socket,
            "GET",
            &format!("/api/v1/imports/{id}/errors.csv"),
            None,
            &args.as_user,
        )
        .await?;
        if status != 200 {
            return Err(refused(status, &body_json(body).await?));
        }
        let path = errors_path(args);
        let mut file = std::fs::File::create(&path)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", path.display())))?;
        copy_body(body, &mut file).await?;
    }
    Ok(report)
}

fn print_report(report: &ImportReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    let what = if report.dry_run { "dry run" } else { "import" };
    println!(
        "{what} {} into {} (batch {})",
        report.job, report.entity, report.batch
    );
    println!("{}", report.summary());
    if !report.ignored_columns.is_empty() {
        println!("columns left out: {}", report.ignored_columns.join(", "));
    }
    for s in report
        .samples
        .failed
        .iter()
        .chain(&report.samples.duplicates)
    {
        println!(
            "  row {}: {}: {}",
            s.row,
            s.column.as_deref().unwrap_or(""),
            s.reason.as_deref().unwrap_or("")
        );
    }
    if !report.dry_run && report.counts.created + report.counts.updated > 0 {
        println!(
            "undo the whole import: POST /api/v1/history/undo {{\"batch\": \"{}\"}}",
            report.batch
        );
    }
}

/// `kontor export`.
pub async fn export(args: ExportArgs) -> Result<(), CliError> {
    let format = ExportFormat::parse(&args.format).ok_or_else(|| {
        CliError::Usage(format!(
            "--format is csv, xlsx or jsonl, not '{}'",
            args.format
        ))
    })?;
    let entity: Entity = args
        .entity
        .parse()
        .map_err(|_| CliError::Usage(format!("there is no entity '{}'", args.entity)))?;
    let mut query: Vec<(String, String)> = Vec::new();
    for f in &args.filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--filter is FIELD=VALUE, not '{f}'")))?;
        query.push((k.to_string(), v.to_string()));
    }
    let to = args
        .to
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.{}", entity.as_str(), format.extension())));
    let mut out: Box<dyn Write + Send> = if to.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(&to)
                .map_err(|e| CliError::Io(format!("cannot write {}: {e}", to.display())))?,
        )
    };
    let rows = match crate::Target::open(&args.data, false).await {
        Ok(target) => {
            target.close().await;
            let target = open_existing(&args.data).await?;
            let result = async {
                let actor = actor(&target.kontor, &args.as_user).await?;
                let list = kontor_core::list::ListParams {
                    q: args.q.clone(),
                    sort: args.sort.clone(),
                    order: args.order.clone(),
                    filters: query.clone(),
                    ..Default::default()
                };
                let spec = ExportSpec {
                    entity,
                    format,
                    list,
                    delimiter: match args.delimiter.as_deref() {
                        None => None,
                        Some(d) => {
                            Some(kontor_tabular::source::parse_delimiter(d).ok_or_else(|| {
                                CliError::Usage(format!(
                                    "--delimiter is one punctuation character or tab, not '{d}'"
                                ))
                            })?)
                        }
                    },
                };
                let bar = Bar::new();
                let done = kontor_tabular::export::export(
                    target.kontor.clone(),
                    actor,
                    spec,
                    &mut out,
                    bar.as_ref(),
                )
                .await
                .map_err(|e| match e {
                    kontor_tabular::export::ExportError::Core(c) => CliError::Core(c),
                    other => CliError::Io(other.to_string()),
                })?;
                Ok::<u64, CliError>(done.rows)
            }
            .await;
            target.close().await;
            result?
        }
        Err(CliError::DataDir(kontor_core::datadir::DataDirError::Locked { .. })) => {
            let socket = args.data.data.join(kontor_core::datadir::SOCKET_FILE);
            let mut pairs = query.clone();
            pairs.push(("format".into(), format.extension().into()));
            for (k, v) in [
                ("q", &args.q),
                ("sort", &args.sort),
                ("order", &args.order),
                ("delimiter", &args.delimiter),
            ] {
                if let Some(v) = v {
                    pairs.push((k.into(), v.clone()));
                }
            }
            let qs = serde_urlencoded::to_string(&pairs)
                .map_err(|e| CliError::Usage(format!("cannot write the request: {e}")))?;
            let path = format!("/api/v1/export/{}?{qs}", entity.as_str());
            let (status, body) = local_request(&socket, "GET", &path, None, &args.as_user).await?;
            if status != 200 {
                return Err(refused(status, &body_json(body).await?));
            }
            copy_body(body, &mut out).await?;
            0
        }
        Err(e) => return Err(e),
    };
    out.flush()
        .map_err(|e| CliError::Io(format!("cannot write {}: {e}", to.display())))?;
    if to.as_os_str() != "-" {
        if rows > 0 {
            eprintln!("exported {rows} {} to {}", entity.as_str(), to.display());
        } else {
            eprintln!("exported {} to {}", entity.as_str(), to.display());
        }
    }
    Ok(())
}
