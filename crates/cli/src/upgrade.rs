//! `kontor upgrade`: bringing live data to this Kontor's schema safely, and `--rehearse`,
//! which does the same on a clone and leaves live untouched.
//!
//! The upgrade: a server running on the data is stopped through its announced shutdown
//! (read-only, its own verified final snapshot, drained); the data directory is then held, and
//! a PostgreSQL database frozen for every other node; a pinned snapshot goes to
//! `DATA/upgrades` (never pruned) and is verified by restoring it; the pending migrations run
//! in one transaction; the checks count every entity's records and the journal before and
//! after (they must agree, and every record must still be a JSON object) and a smoke test
//! reads the API through the real router. A failed migration leaves nothing behind (its
//! transaction); a failed check or smoke test puts the pinned snapshot back in place. Either
//! way the command says why and exits non-zero.

use crate::backup::Bar;
use crate::local::{body_json, local_request, refused};
use crate::operations::parse_duration;
use crate::{CliError, DataArg};
use kontor_backup::create::Source;
use kontor_backup::folder::ArchiveFolder;
use kontor_backup::restore::Target as RestoreTarget;
use kontor_backup::seal::Keys;
use kontor_core::datadir::{DataDir, DataDirError, SOCKET_FILE};
use kontor_core::{Kontor, Settings};
use kontor_store::postgres::{redact_url, PgStore};
use kontor_store::sqlite::SqliteStore;
use kontor_store::{AppliedStep, Census, DynStore, ReadOnly, ReadOnlyReason, StoreError};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub(crate) struct UpgradeArgs {
    #[command(flatten)]
    data: DataArg,
    /// Rehearse: clone the live data, upgrade and check the clone, report, leave live as it is.
    #[arg(long)]
    rehearse: bool,
    /// Where the rehearsal's clone goes: a directory (SQLite) or the URL of an empty
    /// PostgreSQL database. Default: a temporary directory, or a new database beside the
    /// live one, removed afterwards.
    #[arg(long)]
    scratch: Option<String>,
    /// Keep the rehearsal's clone.
    #[arg(long)]
    keep: bool,
    /// With a server running: announce its stop this long ahead (90s, 15m; default now).
    #[arg(long = "in")]
    in_: Option<String>,
    /// What users are told while the server stops for the upgrade.
    #[arg(long)]
    message: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// A database the upgrade works on.
#[derive(Clone)]
enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    fn describe(&self) -> String {
        match self {
            Db::Sqlite(p) => format!("SQLite database {}", p.display()),
            Db::Postgres(u) => format!("PostgreSQL database {}", redact_url(u)),
        }
    }

    async fn inspect(&self) -> Result<kontor_store::Inspection, CliError> {
        Ok(match self {
            Db::Sqlite(p) => SqliteStore::inspect(p).await?,
            Db::Postgres(u) => PgStore::inspect(u).await?,
        })
    }

    async fn census(&self) -> Result<(Census, kontor_store::Damage), CliError> {
        Ok(match self {
            Db::Sqlite(p) => SqliteStore::census(p).await?,
            Db::Postgres(u) => PgStore::census(u).await?,
        })
    }

    /// Opens the store, which applies the pending migrations (in one transaction).
    async fn open(&self) -> Result<(DynStore, Vec<AppliedStep>), StoreError> {
        Ok(match self {
            Db::Sqlite(p) => {
                let s = SqliteStore::open(p).await?;
                let applied = s.migrated().to_vec();
                (Arc::new(s), applied)
            }
            Db::Postgres(u) => {
                let s = PgStore::connect(u).await?;
                let applied = s.migrated().to_vec();
                (Arc::new(s), applied)
            }
        })
    }

    fn source(&self) -> Source {
        match self {
            Db::Sqlite(p) => Source::Sqlite(p.clone()),
            Db::Postgres(u) => Source::Postgres(u.clone()),
        }
    }

    fn restore_target(&self) -> RestoreTarget {
        match self {
            Db::Sqlite(p) => RestoreTarget::Sqlite(p.clone()),
            Db::Postgres(u) => RestoreTarget::Postgres(u.clone()),
        }
    }
}

/// The steps and what each took, printed as they end and kept for `--json`.
struct Steps {
    json: bool,
    started: Instant,
    done: Vec<Value>,
}

impl Steps {
    fn new(json: bool) -> Steps {
        Steps {
            json,
            started: Instant::now(),
            done: Vec::new(),
        }
    }

    fn say(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }

    fn done(&mut self, name: &str, began: Instant, detail: String) {
        let seconds = began.elapsed().as_secs_f64();
        if !self.json {
            println!("  {name:<16} {seconds:>7.2} s  {detail}");
        }
        self.done
            .push(json!({"step": name, "seconds": seconds, "detail": detail}));
    }
}

pub(crate) async fn run(args: UpgradeArgs) -> Result<(), CliError> {
    let file =
        crate::config::FileConfig::load(&args.data.data.join(kontor_core::datadir::CONFIG_FILE))
            .map_err(CliError::Usage)?;
    let url = args.data.database.clone().or_else(|| file.database.clone());
    if args.rehearse {
        rehearse(&args, url).await
    } else {
        upgrade(&args, url).await
    }
}

/// Why an upgrade must not start, from what the database recorded.
fn check_startable(db: &Db, inspection: &kontor_store::Inspection) -> Result<(), CliError> {
    let engine = match db {
        Db::Sqlite(_) => "SQLite",
        Db::Postgres(_) => "PostgreSQL",
    };
    if let Some(refusal) = inspection.migrations.refusal(engine) {
        return Err(refusal.into());
    }
    if inspection.migrations.schema_version == 0 {
        return Err(CliError::Usage(format!(
            "{} holds no Kontor data yet: nothing to upgrade (`kontor serve` creates it)",
            db.describe()
        )));
    }
    Ok(())
}

async fn upgrade(args: &UpgradeArgs, url: Option<String>) -> Result<(), CliError> {
    let mut steps = Steps::new(args.json);
    let data = &args.data.data;
    if url.is_none() && !data.join(kontor_core::datadir::DB_FILE).exists() {
        return Err(CliError::DataDir(DataDirError::Missing {
            path: data.display().to_string(),
        }));
    }
    let db = match &url {
        Some(u) => Db::Postgres(u.clone()),
        None => Db::Sqlite(data.join(kontor_core::datadir::DB_FILE)),
    };
    let inspection = db.inspect().await?;
    check_startable(&db, &inspection)?;
    let (from, to) = (
        inspection.migrations.schema_version,
        inspection.migrations.current_version,
    );
    if inspection.migrations.pending.is_empty() {
        steps.say(&format!(
            "{} is at schema version {from}, this Kontor's: nothing to upgrade",
            db.describe()
        ));
        if args.json {
            println!("{}", json!({"upgraded": false, "schema_version": from}));
        }
        return Ok(());
    }
    steps.say(&format!(
        "Upgrading {} from schema version {from} to {to}",
        db.describe()
    ));
    // The data directory, held from here to the end: a server running on it stops first.
    let began = Instant::now();
    let (dir, stopped) = hold_data_dir(args, data).await?;
    if stopped {
        steps.done(
            "server stopped",
            began,
            "announced, read-only, drained".into(),
        );
    }
    let frozen = ReadOnly::new(
        ReadOnlyReason::Upgrade,
        args.message
            .as_deref()
            .unwrap_or("Kontor is being upgraded; saving is paused"),
        "kontor upgrade",
        60,
    );
    if let Db::Postgres(u) = &db {
        let began = Instant::now();
        if PgStore::freeze_unopened(u, Some(&frozen)).await? {
            steps.done("frozen", began, "every node refuses writes".into());
        }
    }
    let result = upgrade_held(&db, &dir, &mut steps, from).await;
    if let Db::Postgres(u) = &db {
        if let Err(e) = PgStore::freeze_unopened(u, None).await {
            eprintln!(
                "warning: cannot lift the upgrade's freeze: {e}; run `kontor maintenance off`"
            );
        }
    }
    drop(dir);
    let summary = result?;
    let total = steps.started.elapsed().as_secs_f64();
    if args.json {
        let mut out = summary;
        out["steps"] = json!(steps.done);
        out["seconds"] = json!(total);
        println!("{out}");
    } else {
        println!(
            "Upgraded to schema version {to} in {total:.1} s. Start the server (`kontor serve`; \
             under systemd it starts again by itself)."
        );
    }
    Ok(())
}

/// The data directory locked by this process. A server holding it is asked, through its
/// socket, for an announced shutdown; true when one was stopped.
async fn hold_data_dir(args: &UpgradeArgs, data: &Path) -> Result<(DataDir, bool), CliError> {
    match DataDir::open(data, false) {
        Ok(dir) => return Ok((dir, false)),
        Err(DataDirError::Locked { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let in_seconds = match &args.in_ {
        Some(d) => parse_duration(d).map_err(CliError::Usage)?,
        None => 0,
    };
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| "Kontor stops for an upgrade".to_string());
    let socket = data.join(SOCKET_FILE);
    let (status, answer) = local_request(
        &socket,
        "POST",
        "/api/v1/admin/shutdown",
        Some(json!({"in_seconds": in_seconds, "message": message})),
        &None,
    )
    .await
    .map_err(|e| {
        CliError::Usage(format!(
            "{e}; stop the server (e.g. `systemctl stop kontor`) and run `kontor upgrade` again"
        ))
    })?;
    let answer = body_json(answer).await?;
    if status >= 400 {
        return Err(refused(status, &answer));
    }
    let deadline = Instant::now() + Duration::from_secs(in_seconds + 600);
    loop {
        match DataDir::open(data, false) {
            Ok(dir) => return Ok((dir, true)),
            Err(DataDirError::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(DataDirError::Locked { .. }) => {
                return Err(CliError::Io(format!(
                    "the server on {} did not stop within {} s of its shutdown time",
                    data.display(),
                    600
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The upgrade proper, the data directory held: the pinned snapshot, migrations, checks,
/// the smoke test, and the rollback when something fails.
async fn upgrade_held(
    db: &Db,
    dir: &DataDir,
    steps: &mut Steps,
    from: i64,
) -> Result<Value, CliError> {
    let (before, damage) = db.census().await?;
    if !damage.is_empty() {
        return Err(CliError::Usage(format!(
            "the data is damaged before any migration ran ({}); restore a good archive first",
            damage.describe()
        )));
    }
    let began = Instant::now();
    let folder = ArchiveFolder::new(dir.path().join("upgrades"));
    let keys = Keys::default();
    let bar = Bar::new();
    let pinned = kontor_backup::checked::snapshot_and_verify(
        &db.source(),
        &folder,
        &keys,
        3,
        "upgrade",
        bar.clone(),
    )
    .await?;
    bar.finish();
    let archive = folder
        .local_dir()
        .map(|d| d.join(&pinned.name))
        .ok_or_else(|| CliError::Io("the upgrade's archive folder is not local".into()))?;
    steps.done(
        "pinned snapshot",
        began,
        format!(
            "{} (seq {}) verified by restoring it",
            archive.display(),
            pinned.manifest.seq
        ),
    );
    match migrate_and_check(db, &before, steps).await {
        Ok(summary) => {
            let mut summary = summary;
            summary["upgraded"] = json!(true);
            summary["from_version"] = json!(from);
            summary["pinned_snapshot"] = json!(archive.display().to_string());
            Ok(summary)
        }
        Err(Failure {
            stage,
            why,
            changed,
        }) => {
            let why = if changed {
                let began = Instant::now();
                match roll_back(db, dir, &archive, &before).await {
                    Ok(kept) => {
                        steps.done(
                            "rolled back",
                            began,
                            format!("the pinned snapshot is back in place; the failed database is kept in {}", kept.display()),
                        );
                        format!("{why}; rolled back to the pinned snapshot {}, nothing lost", archive.display())
                    }
                    Err(e) => format!(
                        "{why}; and rolling back failed too: {e}. The pinned snapshot {} holds the data as it was: `kontor restore --from {}`",
                        archive.display(),
                        archive.display()
                    ),
                }
            } else {
                format!("{why}; the database is as it was (schema version {from}), nothing lost")
            };
            Err(CliError::Core(kontor_core::CoreError::Store(
                StoreError::Schema(format!("the upgrade failed in its {stage}: {why}")),
            )))
        }
    }
}

struct Failure {
    stage: &'static str,
    why: String,
    /// Whether the database was left changed (and must be rolled back).
    changed: bool,
}

/// Migrates `db` (its pending steps in one transaction), checks it against `before` and runs
/// the smoke test; a summary of what was applied.
async fn migrate_and_check(db: &Db, before: &Census, steps: &mut Steps) -> Result<Value, Failure> {
    let began = Instant::now();
    let (store, applied) = match db.open().await {
        Ok(opened) => opened,
        Err(e) => {
            return Err(Failure {
                stage: "migrations",
                why: e.to_string(),
                changed: false,
            })
        }
    };
    let listed: Vec<String> = applied
        .iter()
        .map(|a| format!("{} ({} ms)", a.version, a.millis))
        .collect();
    steps.done(
        "migrations",
        began,
        format!("applied {}", listed.join(", ")),
    );
    let began = Instant::now();
    let checked = async {
        let (after, damage) = db.census().await.map_err(|e| e.to_string())?;
        let differences = before.differences(&after);
        if !differences.is_empty() {
            return Err(format!("the data changed: {}", differences.join("; ")));
        }
        if !damage.is_empty() {
            return Err(damage.describe());
        }
        Ok(after)
    }
    .await;
    let after = match checked {
        Ok(after) => after,
        Err(why) => {
            store.close().await;
            return Err(Failure {
                stage: "checks",
                why,
                changed: true,
            });
        }
    };
    let records: i64 = after.records.values().map(|(l, b)| l + b).sum();
    steps.done(
        "checks",
        began,
        format!(
            "{records} records of {} entities and {} journal entries as before; integrity ok",
            after.records.len(),
            after.journal_rows
        ),
    );
    let began = Instant::now();
    let kontor = Arc::new(Kontor::new(store.clone(), Settings::default()));
    let smoke = kontor_server::smoke::smoke_test(kontor).await;
    store.close().await;
    let checks = match smoke {
        Ok(c) => c,
        Err(why) => {
            return Err(Failure {
                stage: "smoke test",
                why,
                changed: true,
            })
        }
    };
    steps.done(
        "smoke test",
        began,
        format!("{} requests answered 200", checks.len()),
    );
    Ok(json!({
        "applied": applied,
        "census": after,
        "smoke_requests": checks.len(),
    }))
}

/// Puts the pinned snapshot back in place of a database a failed upgrade changed; the failed
/// database (SQLite) is moved aside into the returned directory.
async fn roll_back(
    db: &Db,
    dir: &DataDir,
    archive: &Path,
    before: &Census,
) -> Result<PathBuf, CliError> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let aside = dir.path().join("upgrades").join(format!("failed-{stamp}"));
    match db {
        Db::Sqlite(path) => {
            std::fs::create_dir_all(&aside)
                .map_err(|e| CliError::Io(format!("cannot create {}: {e}", aside.display())))?;
            for suffix in ["", "-wal", "-shm"] {
                let mut from = path.as_os_str().to_owned();
                from.push(suffix);
                let from = PathBuf::from(from);
                if from.exists() {
                    let name = from.file_name().unwrap_or_default();
                    std::fs::rename(&from, aside.join(name)).map_err(|e| {
                        CliError::Io(format!("cannot move {} aside: {e}", from.display()))
                    })?;
                }
            }
        }
        Db::Postgres(url) => PgStore::empty_unopened(url).await?,
    }
    let bar = Bar::new();
    kontor_backup::restore::restore(archive, &db.restore_target(), &Keys::default(), bar.clone())
        .await?;
    bar.finish();
    let (now, _) = db.census().await?;
    let differences = before.differences(&now);
    if !differences.is_empty() {
        return Err(CliError::Io(format!(
            "the database restored from the pinned snapshot differs: {}",
            differences.join("; ")
        )));
    }
    Ok(aside)
}

async fn rehearse(args: &UpgradeArgs, url: Option<String>) -> Result<(), CliError> {
    let mut steps = Steps::new(args.json);
    let data = &args.data.data;
    let live = match &url {
        Some(u) => Db::Postgres(u.clone()),
        None => {
            let p = data.join(kontor_core::datadir::DB_FILE);
            if !p.exists() {
                return Err(CliError::DataDir(DataDirError::Missing {
                    path: data.display().to_string(),
                }));
            }
            Db::Sqlite(p)
        }
    };
    let inspection = live.inspect().await?;
    check_startable(&live, &inspection)?;
    let (from, to) = (
        inspection.migrations.schema_version,
        inspection.migrations.current_version,
    );
    steps.say(&format!(
        "Rehearsing the upgrade of {} from schema version {from} to {to} on a clone; live stays as it is",
        live.describe()
    ));
    // The clone: a snapshot of live (a read transaction; a running server goes on), restored
    // into the scratch place.
    let temp = tempfile::Builder::new()
        .prefix("kontor-rehearsal-")
        .tempdir_in(std::env::temp_dir())
        .map_err(|e| CliError::Io(format!("cannot make a scratch directory: {e}")))?;
    let (scratch, created_db) = scratch_for(args, &live, temp.path()).await?;
    let result = rehearse_on(&live, &scratch, temp.path(), &mut steps, from).await;
    if !args.keep {
        match (&scratch, &created_db) {
            (Db::Postgres(_), Some(name)) => drop_database(&live, name).await,
            (Db::Sqlite(p), _) if args.scratch.is_some() => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut f = p.as_os_str().to_owned();
                    f.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(f));
                }
            }
            _ => {}
        }
    } else {
        steps.say(&format!(
            "The upgraded clone is kept: {}",
            scratch.describe()
        ));
    }
    let kept_temp = args.keep && matches!(scratch, Db::Sqlite(_)) && args.scratch.is_none();
    if kept_temp {
        let _ = temp.keep();
    }
    let mut summary = result?;
    // Live untouched: the same schema as before.
    let now = live.inspect().await?;
    if now.migrations.schema_version != from {
        return Err(CliError::Io(format!(
            "live changed schema version during the rehearsal ({from} → {})",
            now.migrations.schema_version
        )));
    }
    let total = steps.started.elapsed().as_secs_f64();
    if args.json {
        summary["steps"] = json!(steps.done);
        summary["seconds"] = json!(total);
        summary["live_untouched"] = json!(true);
        println!("{summary}");
    } else {
        println!(
            "Rehearsal passed in {total:.1} s: `kontor upgrade` would take live from schema \
             version {from} to {to}. Live is untouched (schema version {from})."
        );
    }
    Ok(())
}

/// Where the clone goes, and the name of the PostgreSQL database made for it (to drop).
async fn scratch_for(
    args: &UpgradeArgs,
    live: &Db,
    temp: &Path,
) -> Result<(Db, Option<String>), CliError> {
    match (live, &args.scratch) {
        (Db::Sqlite(_), None) => Ok((Db::Sqlite(temp.join("kontor.db")), None)),
        (Db::Sqlite(_), Some(dir)) => {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::Io(format!("cannot create {}: {e}", dir.display())))?;
            let path = dir.join(kontor_core::datadir::DB_FILE);
            if path.exists() {
                return Err(CliError::Usage(format!(
                    "{} already holds a database; give an empty directory",
                    dir.display()
                )));
            }
            Ok((Db::Sqlite(path), None))
        }
        (Db::Postgres(_), Some(url)) => Ok((Db::Postgres(url.clone()), None)),
        (Db::Postgres(url), None) => {
            let name = format!(
                "kontor_rehearsal_{}_{}",
                std::process::id(),
                chrono::Utc::now().timestamp()
            );
            let sibling = with_database(url, &name)?;
            admin_sql(url, &format!("CREATE DATABASE \"{name}\""))
                .await
                .map_err(|e| {
                    CliError::Usage(format!(
                        "cannot create a scratch database for the rehearsal ({e}); give one with --scratch postgres://…"
                    ))
                })?;
            Ok((Db::Postgres(sibling), Some(name)))
        }
    }
}

/// `url` naming database `name` instead.
fn with_database(url: &str, name: &str) -> Result<String, CliError> {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (head, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    match head[start..].find('/') {
        Some(slash) => Ok(format!("{}/{name}{query}", &head[..start + slash])),
        None => Ok(format!("{head}/{name}{query}")),
    }
}

async fn admin_sql(url: &str, sql: &str) -> Result<(), String> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let done = sqlx::raw_sql(sql).execute(&mut conn).await.map(|_| ());
    let _ = conn.close().await;
    done.map_err(|e| e.to_string())
}

async fn drop_database(live: &Db, name: &str) {
    if let Db::Postgres(url) = live {
        if let Err(e) = admin_sql(
            url,
            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        )
        .await
        {
            eprintln!("warning: cannot drop the rehearsal's database {name}: {e}");
        }
    }
}

async fn rehearse_on(
    live: &Db,
    scratch: &Db,
    temp: &Path,
    steps: &mut Steps,
    from: i64,
) -> Result<Value, CliError> {
    let began = Instant::now();
    let bar = Bar::new();
    let snapshot = kontor_backup::create::snapshot(
        &live.source(),
        &temp.join("snapshot"),
        1,
        &Keys::default(),
        bar.clone(),
    )
    .await?;
    kontor_backup::restore::restore(
        &snapshot.path,
        &scratch.restore_target(),
        &Keys::default(),
        bar.clone(),
    )
    .await?;
    bar.finish();
    let _ = std::fs::remove_file(&snapshot.path);
    steps.done(
        "clone",
        began,
        format!("{} at seq {}", scratch.describe(), snapshot.manifest.seq),
    );
    let (before, damage) = scratch.census().await?;
    if !damage.is_empty() {
        return Err(CliError::Usage(format!(
            "the live data is damaged before any migration ({})",
            damage.describe()
        )));
    }
    let objects_before = schema_objects(scratch).await?;
    match migrate_and_check(scratch, &before, steps).await {
        Ok(mut summary) => {
            let objects_after = schema_objects(scratch).await?;
            summary["rehearsal"] = json!(true);
            summary["from_version"] = json!(from);
            summary["added"] = json!(objects_after
                .iter()
                .filter(|o| !objects_before.contains(*o))
                .collect::<Vec<_>>());
            summary["removed"] = json!(objects_before
                .iter()
                .filter(|o| !objects_after.contains(*o))
                .collect::<Vec<_>>());
            if !steps.json {
                for o in summary["added"].as_array().into_iter().flatten() {
                    println!("  + {}", o.as_str().unwrap_or_default());
                }
                for o in summary["removed"].as_array().into_iter().flatten() {
                    println!("  - {}", o.as_str().unwrap_or_default());
                }
            }
            Ok(summary)
        }
        Err(Failure { stage, why, .. }) => Err(CliError::Core(kontor_core::CoreError::Store(
            StoreError::Schema(format!(
                "the rehearsal failed in its {stage}: {why}; live is untouched, and `kontor upgrade` would fail the same way"
            )),
        ))),
    }
}

/// The tables and indexes of a database, as "table NAME" / "index NAME".
async fn schema_objects(db: &Db) -> Result<Vec<String>, CliError> {
    use sqlx::Connection;
    let io = |e: sqlx::Error| CliError::Io(format!("cannot read {}'s schema: {e}", db.describe()));
    let mut names: Vec<String> = match db {
        Db::Sqlite(p) => {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(p)
                .read_only(true);
            let mut conn = sqlx::SqliteConnection::connect_with(&opts)
                .await
                .map_err(io)?;
            let rows = sqlx::query_scalar(
                "SELECT type || ' ' || name FROM sqlite_master \
                 WHERE type IN ('table', 'index') AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(io)?;
            let _ = conn.close().await;
            rows
        }
        Db::Postgres(u) => {
            let mut conn = sqlx::PgConnection::connect(u).await.map_err(io)?;
            let rows = sqlx::query_scalar(
                "SELECT 'table ' || tablename::text FROM pg_catalog.pg_tables \
                 WHERE schemaname = current_schema() \
                 UNION ALL SELECT 'index ' || indexname::text FROM pg_catalog.pg_indexes \
                 WHERE schemaname = current_schema()",
            )
            .fetch_all(&mut conn)
            .await
            .map_err(io)?;
            let _ = conn.close().await;
            rows
        }
    };
    names.sort();
    Ok(names)
}
