//! `kontor-bench --suite backups`: snapshots, verification, restore and point-in-time replay of
//! a generated SQLite database of at least a gigabyte, each beside the limit and the tools an
//! administrator would otherwise use, measured in the same run:
//!
//! - the limit: `cp` of the database file;
//! - SQLite's own tools: `sqlite3 .backup`, and `sqlite3 .dump` piped into a new database;
//! - PostgreSQL's: `pg_dump -Fc` and `pg_restore` of the same data restored into PostgreSQL;
//! - Kontor: `backup create`, `backup verify`, `restore` (into SQLite and into PostgreSQL),
//!   `restore --from TARGET` (a tiny snapshot plus the whole journal replayed), and the
//!   shipping lag of a server taking 200 writes a second.
//!
//! Every command is the real binary; its peak memory (VmHWM) is sampled while it runs, at a
//! quarter of the data and at all of it, to show it stays flat as the data grows.

use crate::{bar, init, kontor_binary, percentiles, start_server, Args, Report, ADMIN};
use kontor_core::{Kontor, Mutation, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::Entity;
use kontor_store::sqlite::SqliteStore;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Words notes are made of: varied enough that archives compress about as real CRM text does
/// (a few times), not a hundredfold.
const WORDS: &[&str] = &[
    "client",
    "called",
    "about",
    "the",
    "invoice",
    "delivery",
    "warehouse",
    "discount",
    "quote",
    "contract",
    "renewal",
    "meeting",
    "Tuesday",
    "Moscow",
    "Kazan",
    "Berlin",
    "Prague",
    "manager",
    "asked",
    "for",
    "new",
    "prices",
    "catalogue",
    "samples",
    "payment",
    "overdue",
    "confirmed",
    "shipment",
    "pallets",
    "boxes",
    "urgent",
    "next",
    "week",
    "order",
    "cancelled",
    "repeat",
    "accountant",
    "director",
    "tender",
    "budget",
    "approved",
    "rejected",
    "visit",
    "office",
    "exhibition",
    "competitor",
    "cheaper",
    "quality",
    "complaint",
    "resolved",
    "follow-up",
    "email",
    "sent",
    "received",
    "signed",
    "draft",
    "volume",
    "annual",
    "quarter",
    "bonus",
    "terms",
    "net",
    "thirty",
    "days",
    "advance",
    "credit",
    "limit",
    "raised",
    "lowered",
    "logistics",
    "customs",
];

/// A contact of about 1.3 KB of fields; with its search text and journal image about 4 KB on
/// disk.
fn big_contact(i: usize) -> Value {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
    let notes: Vec<String> = (0..170)
        .map(|_| {
            let w = WORDS[rng.gen_range(0..WORDS.len())];
            if rng.gen_ratio(1, 12) {
                format!("{w} {}", rng.gen_range(1..100_000))
            } else {
                w.to_string()
            }
        })
        .collect();
    json!({
        "first_name": format!("Ivan{i}"),
        "last_name": format!("Petrov{}", i % 9973),
        "email": format!("ivan.{i}@example.ru"),
        "phone": format!("+7 900 {:07}", i % 10_000_000),
        "notes": notes.join(" "),
    })
}

/// What one run of a command took.
pub(crate) struct Ran {
    pub(crate) seconds: f64,
    pub(crate) peak_mib: f64,
    pub(crate) stdout: String,
}

/// Runs a command to its end, sampling its peak memory; fails on a non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> BenchResult<Ran> {
    let t = Instant::now();
    let mut child = cmd
        .env("KONTOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut out = child.stdout.take().ok_or("no stdout")?;
    let mut err = child.stderr.take().ok_or("no stderr")?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(m) = crate::peak_rss_mib(pid) {
            peak = peak.max(m);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = t.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}): {stdout}{stderr}").into());
    }
    Ok(Ran {
        seconds,
        peak_mib: peak,
        stdout,
    })
}

fn sh(script: &str) -> BenchResult<Ran> {
    run(Command::new("sh").args(["-c", script]))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Adds contacts `from..to` through the journaled write path, 1000 per batch.
async fn seed(db: &Path, from: usize, to: usize) -> BenchResult<()> {
    let store = SqliteStore::open(db).await?;
    let kontor = Kontor::new(Arc::new(store), Settings::default());
    let user = kontor
        .user_by_email(ADMIN)
        .await?
        .ok_or("the bench admin is missing")?;
    let admin = kontor_core::auth::actor_for_user(kontor.store.as_ref(), &user).await?;
    let pb = bar(to - from, "seed (write path)");
    let mut i = from;
    while i < to {
        let end = (i + crate::BATCH).min(to);
        let mutations = (i..end)
            .map(|n| Mutation::Create {
                entity: Entity::Contacts,
                input: big_contact(n),
            })
            .collect();
        kontor.write(&admin, Origin::Import, mutations).await?;
        pb.inc((end - i) as u64);
        i = end;
    }
    pb.finish_and_clear();
    kontor.store.close().await;
    Ok(())
}

/// The shipped seq in a target's `writer.json`.
fn shipped(target: &Path) -> (i64, i64) {
    std::fs::read(target.join("writer.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map(|w| {
            (
                w["shipped_seq"].as_i64().unwrap_or(0),
                w["shipped_at"].as_i64().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0))
}

pub(crate) fn journal_head(db: &Path) -> BenchResult<i64> {
    let out = Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(db)
        .arg("SELECT COALESCE(MAX(seq), 0) FROM journal")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().map_err(|e| {
        format!(
            "journal head of {}: {e}: {text}{}",
            db.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into()
    })
}

/// The physical limit of loading: the same rows (records, journal, uniques) copied from the
/// live database into a new one with the same schema through SQLite's C API with prepared
/// statements (Python's `sqlite3` module, `executemany`), 5000 rows per transaction, WAL with
/// `synchronous=FULL`, indexes built after the load. Only the inserts, the index builds and the
/// commits are timed, not reading the source. Prints seconds.
const LOAD_LIMIT_PY: &str = r#"
import sqlite3, sys, time
src = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2], isolation_level=None)
dst.execute("PRAGMA journal_mode=WAL"); dst.execute("PRAGMA synchronous=FULL")
dst.execute("PRAGMA cache_size=-65536")
tables = ["records", "journal", "uniques"]
indexes = []
for t in tables:
    dst.execute(src.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (t,)).fetchone()[0])
    indexes += [r[0] for r in src.execute("SELECT sql FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql IS NOT NULL", (t,))]
spent = 0.0
for t in tables:
    cols = [r[1] for r in src.execute("PRAGMA table_info(" + t + ")")]
    ins = "INSERT INTO %s (%s) VALUES (%s)" % (t, ",".join(cols), ",".join("?" * len(cols)))
    cur = src.execute("SELECT %s FROM %s" % (",".join(cols), t))
    while True:
        rows = cur.fetchmany(5000)
        if not rows:
            break
        t0 = time.perf_counter()
        dst.execute("BEGIN"); dst.executemany(ins, rows); dst.execute("COMMIT")
        spent += time.perf_counter() - t0
t0 = time.perf_counter()
dst.execute("BEGIN")
for sql in indexes:
    dst.execute(sql)
dst.execute("COMMIT")
dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
spent += time.perf_counter() - t0
print(spent)
"#;

/// Serves `data` with `target` until everything is shipped; returns entries/s shipped.
fn ship_all(bin: &Path, data: &Path, target: &Path) -> BenchResult<(i64, f64)> {
    let head = journal_head(&data.join("kontor.db"))?;
    let before = shipped(target).0;
    let t = Instant::now();
    let srv = serve_to(bin, data, target)?;
    while shipped(target).0 < head {
        std::thread::sleep(Duration::from_millis(50));
        if t.elapsed() > Duration::from_secs(3600) {
            return Err("shipping did not finish within an hour".into());
        }
    }
    let secs = t.elapsed().as_secs_f64();
    stop_server(srv)?;
    Ok((head - before, (head - before) as f64 / secs))
}

/// `kontor serve` of `data` shipping to `target`.
fn serve_to(bin: &Path, data: &Path, target: &Path) -> BenchResult<crate::Server> {
    start_server(
        bin,
        &[
            "--data",
            data.to_str().ok_or("path")?,
            "--backup-to",
            target.to_str().ok_or("path")?,
        ],
    )
}

/// SIGTERM, and wait: the server ships its last entries and marks the target free.
fn stop_server(mut srv: crate::Server) -> BenchResult<()> {
    Command::new("kill")
        .args(["-TERM", &srv.child.id().to_string()])
        .status()?;
    srv.child.wait()?;
    Ok(())
}

/// Serves `data`, asks it to shut down now (`kontor shutdown`), and times from then to the
/// server's exit; returns the seconds and the final archive's size.
fn shutdown_to_exit(bin: &Path, data: &Path, target: &Path) -> BenchResult<(f64, u64)> {
    let mut srv = serve_to(bin, data, target)?;
    let snapshots = target.join("snapshots");
    let before: std::collections::BTreeSet<_> = std::fs::read_dir(&snapshots)?
        .flatten()
        .map(|e| e.file_name())
        .collect();
    // The local socket comes up just after the server says it listens.
    let socket = data.join("kontor.sock");
    let waited = Instant::now();
    while !socket.exists() && waited.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    run(Command::new(bin)
        .args(["shutdown", "--data"])
        .arg(data)
        .args(["--message", "benchmark"]))?;
    let status = srv.child.wait()?;
    let seconds = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("the server's stop failed: {status}").into());
    }
    let bytes = std::fs::read_dir(&snapshots)?
        .flatten()
        .filter(|e| !before.contains(&e.file_name()))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0);
    Ok((seconds, bytes))
}

/// Peak memory of create, verify and restore on the data as it is now.
fn memory_of_commands(bin: &Path, data: &Path, work: &Path, tag: &str) -> BenchResult<[f64; 3]> {
    let archives = work.join(format!("mem-archives-{tag}"));
    let c = run(Command::new(bin)
        .args(["backup", "create", "--data"])
        .arg(data)
        .arg("--to")
        .arg(&archives))?;
    let archive = archive_path(&c.stdout)?;
    let v = run(Command::new(bin).args(["backup", "verify"]).arg(&archive))?;
    let r = run(Command::new(bin)
        .args(["restore", "--from"])
        .arg(&archive)
        .arg("--data")
        .arg(work.join(format!("mem-restored-{tag}"))))?;
    let _ = std::fs::remove_dir_all(&archives);
    let _ = std::fs::remove_dir_all(work.join(format!("mem-restored-{tag}")));
    Ok([c.peak_mib, v.peak_mib, r.peak_mib])
}

fn archive_path(stdout: &str) -> BenchResult<std::path::PathBuf> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("archive:"))
        .map(|p| std::path::PathBuf::from(p.trim()))
        .ok_or_else(|| format!("no archive in: {stdout}").into())
}

pub async fn measure(args: &Args, work: &Path, report: &mut Report) -> BenchResult<()> {
    let bin = kontor_binary(args);
    let runs = args.runs.max(1);
    let data = work.join("live");
    let target = work.join("target");
    init(&bin, &["--data", data.to_str().ok_or("path")?])?;
    let db = data.join("kontor.db");
    // The target's first snapshot is of the empty database: restoring from the target later
    // replays the whole generated journal.
    ship_all(&bin, &data, &target)?;

    let n = args.backup_contacts;
    println!(
        "generating {n} contacts (about {:.0} MiB)",
        n as f64 * 4.0 / 1024.0
    );
    seed(&db, 0, n / 4).await?;
    let quarter = std::fs::metadata(&db)?.len();
    let mem_quarter = memory_of_commands(&bin, &data, work, "quarter")?;
    seed(&db, n / 4, n).await?;
    let (shipped_entries, ship_rate) = ship_all(&bin, &data, &target)?;
    // The server checkpointed on stop: the file is the whole database.
    let size = std::fs::metadata(&db)?.len();
    let mb = mib(size);
    let mem_full = memory_of_commands(&bin, &data, work, "full")?;
    report.row(
        "database (SQLite file, journaled contacts)",
        format!("{mb:.0} MiB, {n} contacts, {shipped_entries} journal entries"),
    );

    // The limit and SQLite's own tools.
    let copy = work.join("copy.db");
    let cp = median(
        (0..runs)
            .map(|_| {
                let _ = std::fs::remove_file(&copy);
                sh(&format!("cp {} {} && sync", quote(&db), quote(&copy))).map(|r| r.seconds)
            })
            .collect::<BenchResult<Vec<_>>>()?,
    );
    let backup = median(
        (0..runs)
            .map(|_| {
                let _ = std::fs::remove_file(&copy);
                sh(&format!(
                    "sqlite3 {} \".backup {}\" && sync",
                    quote(&db),
                    quote(&copy)
                ))
                .map(|r| r.seconds)
            })
            .collect::<BenchResult<Vec<_>>>()?,
    );
    let _ = std::fs::remove_file(&copy);
    let dump = sh(&format!(
        "sqlite3 {} .dump | sqlite3 {} && sync",
        quote(&db),
        quote(&copy)
    ))?
    .seconds;
    let _ = std::fs::remove_file(&copy);

    // Kontor's snapshot, verification and restore.
    let archives = work.join("archives");
    let mut creates = Vec::new();
    let mut archive = None;
    let mut archive_bytes = 0;
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&archives);
        let r = run(Command::new(&bin)
            .args(["backup", "create", "--data"])
            .arg(&data)
            .arg("--to")
            .arg(&archives))?;
        let a = archive_path(&r.stdout)?;
        archive_bytes = std::fs::metadata(&a)?.len();
        archive = Some(a);
        creates.push(r.seconds);
    }
    let archive = archive.ok_or("no archive")?;
    let create = median(creates);
    let verify = run(Command::new(&bin).args(["backup", "verify"]).arg(&archive))?.seconds;
    let mut restores = Vec::new();
    for i in 0..runs {
        let into = work.join(format!("restored-{i}"));
        restores.push(
            run(Command::new(&bin)
                .args(["restore", "--from"])
                .arg(&archive)
                .arg("--data")
                .arg(&into))?
            .seconds,
        );
        let _ = std::fs::remove_dir_all(&into);
    }
    let restore = median(restores);
    let limit_db = work.join("limit.db");
    let limit = run(Command::new("python3")
        .args(["-c", LOAD_LIMIT_PY])
        .arg(&db)
        .arg(&limit_db))?;
    let _ = std::fs::remove_file(&limit_db);
    let load_limit: f64 = limit
        .stdout
        .trim()
        .parse()
        .map_err(|e| format!("load limit: {e}: {}", limit.stdout))?;
    let speed = |s: f64| format!("{:.0} MiB/s ({s:.1} s)", mb / s.max(1e-9));
    report.row("cp of the database file (the limit)", speed(cp));
    report.row(
        "sqlite3 .backup",
        format!("{}, {:.2}x cp's speed", speed(backup), cp / backup),
    );
    report.row(
        "kontor backup create (zstd 1, the default)",
        format!(
            "{}, {:.2}x cp's speed; archive {:.0} MiB",
            speed(create),
            cp / create,
            mib(archive_bytes)
        ),
    );
    report.row(
        "kontor backup verify (restore to scratch + integrity check + digest)",
        speed(verify),
    );
    report.row(
        "sqlite3 .dump | sqlite3 new.db (dump and reload)",
        format!("{}, {:.2}x cp's speed", speed(dump), cp / dump),
    );
    report.row(
        "load limit: the same rows through SQLite's C API, prepared statements (python3 sqlite3)",
        format!(
            "{} = {:.0} records+journal entries/s",
            speed(load_limit),
            n as f64 / load_limit
        ),
    );
    report.row(
        "kontor restore (archive → new SQLite data directory, proved equal)",
        format!(
            "{}, {:.2}x cp's speed, {:.2}x dump-and-reload's",
            speed(restore),
            cp / restore,
            dump / restore
        ),
    );

    // Point-in-time restore from the target: the empty snapshot plus every entry replayed.
    // (Each stop of a server adds its final snapshot at the head: the point is just before.)
    let into = work.join("from-target");
    let before_head = (journal_head(&db)? - 1).max(0).to_string();
    let r = run(Command::new(&bin)
        .args(["restore", "--from"])
        .arg(&target)
        .args(["--seq", &before_head])
        .arg("--data")
        .arg(&into))?;
    let replayed: f64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("replayed:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no replay figure in: {}", r.stdout))?;
    let _ = std::fs::remove_dir_all(&into);
    report.row(
        "journal shipping catch-up (a server shipping a backlog, incl. its start)",
        format!("{ship_rate:.0} entries/s"),
    );
    report.row(
        "restore --from TARGET: journal replay",
        format!(
            "{:.0} entries/s ({replayed:.0} entries, {:.1} s incl. start)",
            replayed / r.seconds,
            r.seconds
        ),
    );

    // The announced shutdown: from its time to the process's exit, with the final snapshot
    // taken and verified, the database checkpointed and closed.
    let (stop_seconds, snapshot_bytes) = shutdown_to_exit(&bin, &data, &target)?;
    report.row(
        "kontor shutdown: from its time to exit (read-only, final snapshot verified, database closed)",
        format!(
            "{stop_seconds:.1} s at {mb:.0} MiB (final archive {:.0} MiB); {:.2}x create + verify",
            mib(snapshot_bytes),
            stop_seconds / (create + verify).max(1e-9)
        ),
    );

    // PostgreSQL: Kontor's restore into it and snapshot from it, beside pg_dump / pg_restore.
    if args.engines.contains("postgres") {
        postgres(args, &bin, &archive, mb, work, report)?;
    }

    report.row(
        "peak memory: create / verify / restore",
        format!(
            "{:.0} / {:.0} / {:.0} MiB at {:.0} MiB of data; {:.0} / {:.0} / {:.0} MiB at {mb:.0} MiB",
            mem_quarter[0], mem_quarter[1], mem_quarter[2], mib(quarter), mem_full[0], mem_full[1], mem_full[2]
        ),
    );

    lag(&bin, work, args, report).await
}

fn postgres(
    args: &Args,
    bin: &Path,
    archive: &Path,
    mb: f64,
    work: &Path,
    report: &mut Report,
) -> BenchResult<()> {
    let pg = match &args.pg_url {
        Some(url) => kontor_testkit::PgServer::external(url),
        None => kontor_testkit::PgServer::start_durable()?,
    };
    let rt = tokio::runtime::Handle::current();
    let fresh = || tokio::task::block_in_place(|| rt.block_on(pg.fresh_database()));
    let speed = |s: f64| format!("{:.0} MiB/s ({s:.1} s)", mb / s.max(1e-9));
    let url = fresh();
    let restore = run(Command::new(bin)
        .args(["restore", "--from"])
        .arg(archive)
        .args(["--database", &url]))?;
    let snap = run(Command::new(bin)
        .args(["backup", "create", "--database", &url, "--to"])
        .arg(work.join("pg-archives")))?;
    let dump_file = work.join("pg.dump");
    let bin_dir = kontor_testkit::find_bin_dir().ok_or("no PostgreSQL binaries")?;
    let dump = run(Command::new(bin_dir.join("pg_dump"))
        .args(["-Fc", "-f"])
        .arg(&dump_file)
        .arg(&url))?;
    let target = fresh();
    let reload = run(Command::new(bin_dir.join("pg_restore"))
        .args(["--no-owner", "-d", &target])
        .arg(&dump_file))?;
    report.row(
        "PostgreSQL: kontor backup create (from PostgreSQL)",
        speed(snap.seconds),
    );
    report.row("PostgreSQL: pg_dump -Fc", speed(dump.seconds));
    report.row(
        "PostgreSQL: kontor restore (archive → empty database, COPY, proved equal)",
        format!(
            "{}, {:.2}x pg_restore's speed",
            speed(restore.seconds),
            reload.seconds / restore.seconds
        ),
    );
    report.row(
        "PostgreSQL: pg_restore of the pg_dump",
        speed(reload.seconds),
    );
    report.row(
        "PostgreSQL: peak memory kontor restore / backup create / pg_dump / pg_restore",
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0} MiB",
            restore.peak_mib, snap.peak_mib, dump.peak_mib, reload.peak_mib
        ),
    );
    pg.stop();
    Ok(())
}

/// A server with a backup target taking `lag_rate` creates a second from 4 clients for
/// `lag_seconds`: for each write, the time from its acknowledgement until `writer.json` says
/// an entry at least as new is in the target (polled every 10 ms).
async fn lag(bin: &Path, work: &Path, args: &Args, report: &mut Report) -> BenchResult<()> {
    let data = work.join("lag");
    let target = work.join("lag-target");
    init(bin, &["--data", data.to_str().ok_or("path")?])?;
    let srv = serve_to(bin, &data, &target)?;
    while shipped(&target).0 == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cluster = crate::Cluster::new(&[&srv]).await?;
    let (client, token) = (cluster.client.clone(), cluster.node(0).1.clone());
    // Observed shipping: (when seen, shipped entry time in µs).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (target, stop) = (target.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut last = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let at = shipped(&target).1;
                if at != last {
                    seen.push((Instant::now(), at));
                    last = at;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            seen
        })
    };
    let total = args.lag_rate * args.lag_seconds;
    let interval = Duration::from_secs_f64(4.0 / args.lag_rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let (client, base, token) = (client.clone(), srv.base.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::new();
            let mut tick = tokio::time::interval(interval);
            for i in 0..total / 4 {
                tick.tick().await;
                let r = client
                    .post(format!("{base}/api/v1/contacts"))
                    .bearer_auth(&token)
                    .json(&big_contact(w * 1_000_000 + i))
                    .send()
                    .await;
                let Ok(r) = r else { continue };
                let acked = Instant::now();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let at = body["updated_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_micros());
                if let Some(at) = at {
                    acks.push((acked, at));
                }
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await?);
    }
    let rate = acks.len() as f64 / started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().map_err(|_| "watcher failed")?;
    let lags: Vec<Duration> = acks
        .iter()
        .filter_map(|(acked, at)| {
            seen.iter()
                .find(|(_, shipped_at)| shipped_at >= at)
                .map(|(when, _)| when.saturating_duration_since(*acked))
        })
        .collect();
    let missing = acks.len() - lags.len();
    let (p50, p99) = percentiles(lags);
    report.row(
        &format!("shipping lag at {rate:.0} writes/s (ack → in the target)"),
        format!(
            "p50 {p50:.0} ms, p99 {p99:.0} ms ({} writes{})",
            acks.len(),
            if missing > 0 {
                format!(", {missing} never seen shipped")
            } else {
                String::new()
            }
        ),
    );
    stop_server(srv)
}
