//! `kontor-bench`: the core API benchmark. Measured in one run, on one machine:
//!
//! 1. baseline — plain SQLite inserts of the same contact rows, without Kontor (same file
//!    settings: WAL, `synchronous=FULL`), one row per transaction and 1000 rows per transaction;
//! 2. the write path in-process — the same rows created through Kontor's journaled write path,
//!    single and in batches of 1000, so the ratio to (1) is the cost of journaling;
//! 3. the real `kontor` binary over HTTP on a database seeded with N contacts (default 1,000,000),
//!    on SQLite (one node) and on PostgreSQL (one node, then two nodes on the same database):
//!    create throughput and p50/p99 latency of create, get, update and a list page of 50, and the
//!    servers' peak memory;
//! 4. logins under load (`logins.rs`): one at a time and a concurrent burst, against a bare
//!    argon2id hash, with the server's memory.
//!
//! Run: `cargo build --release && cargo run --release -p kontor-bench -- --contacts 1000000`.

mod backups;
mod exchange;
mod import;
mod lists;
mod logins;
mod search;
mod web;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kontor_core::{Kontor, Mutation, Settings};
use kontor_domain::journal::Origin;
use kontor_domain::permission::Actor;
use kontor_domain::Entity;
use kontor_store::sqlite::SqliteStore;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Kontor core API benchmark (see BENCHMARKS.md)")]
struct Args {
    /// Contacts in the database the HTTP figures are measured on.
    #[arg(long, default_value_t = 1_000_000)]
    contacts: usize,
    /// Rows in the in-process journaling-versus-plain-insert comparison.
    #[arg(long, default_value_t = 200_000)]
    compare_rows: usize,
    /// Timed requests per operation.
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Concurrent clients for the create-throughput figure.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// The kontor binary (default: next to this one; build it with `cargo build --release`).
    #[arg(long)]
    kontor: Option<PathBuf>,
    /// Engines measured over HTTP, in order (`none`: only the in-process comparison).
    #[arg(long, default_value = "sqlite,postgres")]
    engines: String,
    /// An existing PostgreSQL server (maintenance-database URL of a user that may create
    /// databases); default: a throw-away server with PostgreSQL's default durability.
    #[arg(long)]
    pg_url: Option<String>,
    /// Concurrent logins in the login burst (0: skip the login figures).
    #[arg(long, default_value_t = 96)]
    logins: usize,
    /// `core` (the API figures above), `backups` (snapshots, restore, replay, shipping lag;
    /// see `backups.rs`), `exchange` (a 1C catalog imported; see `exchange.rs`) or `search`
    /// (global search and lists at `--contacts`, per engine in `--engines`; see `search.rs`)
    /// or `import` (a CSV of `--contacts` rows imported and exported; see `import.rs`) or
    /// `web` (the web pages' time and weight at `--contacts`; see `web.rs`).
    #[arg(long, default_value = "core")]
    suite: String,
    /// Exchange suite: offers in the generated catalog (four per product).
    #[arg(long, default_value_t = 1_000_000)]
    offers: usize,
    /// Backups suite: contacts generated (about 4 KB each on disk; the default makes > 1 GiB).
    #[arg(long, default_value_t = 280_000)]
    backup_contacts: usize,
    /// Backups suite: runs of each fast measure (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Backups suite: writes per second while the shipping lag is measured, and for how long.
    #[arg(long, default_value_t = 200)]
    lag_rate: usize,
    #[arg(long, default_value_t = 30)]
    lag_seconds: usize,
    /// Work in this (new) directory and keep it, instead of a temporary one.
    #[arg(long)]
    work: Option<PathBuf>,
}

const BATCH: usize = 1000;

fn contact(i: usize) -> Value {
    json!({
        "first_name": format!("Ivan{i}"),
        "last_name": format!("Petrov{}", i % 9973),
        "email": format!("ivan.{i}@example.ru"),
        "phone": format!("+7 900 {:07}", i % 10_000_000),
    })
}

/// p50 and p99 of a set of latencies, in milliseconds.
fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.50), at(0.99))
}

fn bar(len: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn row(&mut self, what: &str, value: String) {
        println!("{what:<58} {value}");
        self.lines.push(format!("| {what} | {value} |"));
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = tempfile::tempdir()?;
    let mut report = Report { lines: Vec::new() };
    if ["exchange", "backups", "search", "import", "web"].contains(&args.suite.as_str()) {
        let dir = match &args.work {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                d.clone()
            }
            None => work.path().to_path_buf(),
        };
        if args.suite == "exchange" {
            exchange::measure(&args, &dir, &mut report).await?;
        } else if args.suite == "search" {
            search::measure(&args, &dir, &mut report).await?;
        } else if args.suite == "import" {
            import::measure(&args, &dir, &mut report).await?;
        } else if args.suite == "web" {
            web::measure(&args, &dir, &mut report).await?;
        } else {
            backups::measure(&args, &dir, &mut report).await?;
        }
        println!("\nMarkdown rows for BENCHMARKS.md:\n| measure | value |\n|---|---|");
        for l in &report.lines {
            println!("{l}");
        }
        return Ok(());
    }
    println!(
        "kontor-bench: {} contacts over HTTP, {} rows compared in-process, {} samples per op",
        args.contacts, args.compare_rows, args.samples
    );

    // 1. Baseline: plain SQLite.
    let (plain_single, plain_bulk) = plain_sqlite(
        &work.path().join("plain.db"),
        args.samples,
        args.compare_rows,
    )
    .await?;
    // 2. The journaled write path, in-process.
    let (kontor_single, kontor_bulk) =
        write_path(&work.path().join("inproc"), args.samples, args.compare_rows).await?;

    let (p50, p99) = percentiles(plain_single.clone());
    report.row(
        "plain SQLite insert, 1 row/tx: p50 / p99",
        format!("{p50:.3} ms / {p99:.3} ms"),
    );
    let (k50, k99) = percentiles(kontor_single.clone());
    report.row(
        "Kontor write path create, 1 record/batch: p50 / p99",
        format!("{k50:.3} ms / {k99:.3} ms"),
    );
    report.row(
        "  ratio (journaled / plain), p50",
        format!("{:.2}x", k50 / p50.max(1e-9)),
    );
    report.row(
        "plain SQLite insert, 1000 rows/tx",
        format!("{plain_bulk:.0} rows/s"),
    );
    report.row(
        "Kontor write path create, 1000 records/batch",
        format!("{kontor_bulk:.0} rows/s"),
    );
    report.row(
        "  ratio (plain / journaled) time per row",
        format!("{:.2}x", plain_bulk / kontor_bulk.max(1e-9)),
    );

    // 3. The real binary over HTTP, per engine.
    for engine in engines(&args) {
        match engine {
            "sqlite" => http_sqlite(&args, work.path(), &mut report).await?,
            "postgres" => http_postgres(&args, work.path(), &mut report).await?,
            other => return Err(format!("unknown engine '{other}' (sqlite, postgres)").into()),
        }
    }

    // 4. Logins under load.
    if args.logins > 0 {
        logins::measure(&kontor_binary(&args), work.path(), args.logins, &mut report).await?;
    }

    println!("\nMarkdown rows for BENCHMARKS.md:\n| measure | value |\n|---|---|");
    for l in &report.lines {
        println!("{l}");
    }
    Ok(())
}

async fn plain_sqlite(
    path: &Path,
    samples: usize,
    rows: usize,
) -> Result<(Vec<Duration>, f64), Box<dyn std::error::Error>> {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full),
        )
        .await?;
    sqlx::query(
        "CREATE TABLE contacts (id TEXT PRIMARY KEY, owner_id TEXT, created_at INTEGER, updated_at INTEGER, \
         first_name TEXT, last_name TEXT, email TEXT, phone TEXT)",
    )
    .execute(&pool)
    .await?;
    let insert = "INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
    let owner = kontor_domain::record::new_id();
    let mut lat = Vec::with_capacity(samples);
    let pb = bar(samples, "plain 1 row/tx");
    for i in 0..samples {
        let c = contact(i);
        let t = Instant::now();
        sqlx::query(insert)
            .bind(kontor_domain::record::new_id())
            .bind(&owner)
            .bind(1_i64)
            .bind(1_i64)
            .bind(c["first_name"].as_str())
            .bind(c["last_name"].as_str())
            .bind(c["email"].as_str())
            .bind(c["phone"].as_str())
            .execute(&pool)
            .await?;
        lat.push(t.elapsed());
        pb.inc(1);
    }
    pb.finish_and_clear();
    let pb = bar(rows, "plain 1000 rows/tx");
    let t = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(BATCH) {
        let mut tx = pool.begin().await?;
        for &i in chunk {
            let c = contact(samples + i);
            sqlx::query(insert)
                .bind(kontor_domain::record::new_id())
                .bind(&owner)
                .bind(1_i64)
                .bind(1_i64)
                .bind(c["first_name"].as_str())
                .bind(c["last_name"].as_str())
                .bind(c["email"].as_str())
                .bind(c["phone"].as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        pb.inc(chunk.len() as u64);
    }
    let rate = rows as f64 / t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    pool.close().await;
    Ok((lat, rate))
}

async fn write_path(
    dir: &Path,
    samples: usize,
    rows: usize,
) -> Result<(Vec<Duration>, f64), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let store = SqliteStore::open(&dir.join("kontor.db")).await?;
    let kontor = Kontor::new(Arc::new(store), Settings::default());
    let mut f = Map::new();
    f.insert("email".into(), json!("bench@kontor.local"));
    f.insert("role".into(), json!("admin"));
    let admin_rec = kontor
        .add_user(&Actor::system(), Origin::System, f, "bench-password")
        .await?;
    let admin = kontor_core::auth::actor_for_user(kontor.store.as_ref(), &admin_rec).await?;
    let mut lat = Vec::with_capacity(samples);
    let pb = bar(samples, "Kontor 1 record/batch");
    for i in 0..samples {
        let t = Instant::now();
        kontor
            .write(
                &admin,
                Origin::Api,
                vec![Mutation::Create {
                    entity: Entity::Contacts,
                    input: contact(i),
                }],
            )
            .await?;
        lat.push(t.elapsed());
        pb.inc(1);
    }
    pb.finish_and_clear();
    let pb = bar(rows, "Kontor 1000/batch");
    let t = Instant::now();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(BATCH) {
        let mutations = chunk
            .iter()
            .map(|&i| Mutation::Create {
                entity: Entity::Contacts,
                input: contact(samples + i),
            })
            .collect();
        kontor.write(&admin, Origin::Import, mutations).await?;
        pb.inc(chunk.len() as u64);
    }
    let rate = rows as f64 / t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    kontor.store.close().await;
    Ok((lat, rate))
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The engines `--engines` names (`none` for none).
fn engines(args: &Args) -> impl Iterator<Item = &str> {
    args.engines
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty() && *e != "none")
}

fn kontor_binary(args: &Args) -> PathBuf {
    args.kontor.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("kontor")))
            .unwrap_or_else(|| PathBuf::from("kontor"))
    })
}

const ADMIN: &str = "bench@kontor.local";
const PASSWORD: &str = "bench-password";

/// `kontor init` with the bench admin; `store` is `--data DIR` or `--database URL` arguments.
fn init(bin: &Path, store: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let status = Command::new(bin)
        .arg("init")
        .args(store)
        .args(["--admin-email", ADMIN, "--admin-password", PASSWORD])
        .env("KONTOR_LOG", "warn")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err(format!("kontor init failed: {status}").into());
    }
    Ok(())
}

fn start_server(bin: &Path, args: &[&str]) -> Result<Server, Box<dyn std::error::Error>> {
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("KONTOR_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let out = child.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(out);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            let _ = child.kill();
            let _ = child.wait();
            return Err("kontor serve exited before listening".into());
        }
        if let Some(base) = line.trim().strip_prefix("Kontor listening on ") {
            let base = base.to_string();
            std::thread::spawn(move || for _ in reader.lines() {});
            return Ok(Server { child, base });
        }
    }
}

/// Peak resident memory of a process (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// A memory figure of `/proc/PID/status` (`VmHWM:`, `RssAnon:`, …), in MiB.
fn status_mib(pid: u32, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The highest anonymous memory (heap, stacks: not files mapped or cached) a process had while
/// it was sampled, every 100 ms until the sampler is stopped. The resident peak also counts
/// the pages of files the process maps (a search index's segments), which the kernel drops
/// when it needs the memory; this is what the process itself holds.
struct HeapSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl HeapSampler {
    fn start(pid: u32) -> HeapSampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0f64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_mib(pid, "RssAnon:").unwrap_or(0.0));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        });
        HeapSampler { stop, thread }
    }

    fn peak_mib(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0.0)
    }
}

async fn timed(
    req: reqwest::RequestBuilder,
    expect: u16,
) -> Result<(Duration, Value), Box<dyn std::error::Error + Send + Sync>> {
    let t = Instant::now();
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    let d = t.elapsed();
    if status != expect {
        return Err(format!("unexpected HTTP {status}: {body}").into());
    }
    Ok((d, body))
}

/// The nodes under test, each with a token; requests go round-robin.
struct Cluster {
    client: reqwest::Client,
    nodes: Vec<(String, String)>,
}

impl Cluster {
    async fn new(servers: &[&Server]) -> Result<Cluster, Box<dyn std::error::Error>> {
        let client = reqwest::Client::new();
        let mut nodes = Vec::new();
        for s in servers {
            let login: Value = client
                .post(format!("{}/api/v1/auth/login", s.base))
                .json(&json!({"email": ADMIN, "password": PASSWORD}))
                .send()
                .await?
                .json()
                .await?;
            let token = login["token"].as_str().ok_or("login failed")?.to_string();
            nodes.push((s.base.clone(), token));
        }
        Ok(Cluster { client, nodes })
    }

    fn node(&self, i: usize) -> &(String, String) {
        &self.nodes[i % self.nodes.len()]
    }
}

/// Seeds `n` contacts through `/api/v1/batch`, two requests in flight; returns a sample of ids.
async fn seed(
    cl: &Cluster,
    n: usize,
    label: &str,
    report: &mut Report,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let pb = bar(n, "seed via /api/v1/batch");
    let t = Instant::now();
    let mut ids: Vec<String> = Vec::new();
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|c| c.to_vec())
        .collect();
    for (k, pair) in chunks.chunks(2).enumerate() {
        let mut handles = Vec::new();
        for (j, chunk) in pair.iter().enumerate() {
            let ops: Vec<Value> = chunk
                .iter()
                .map(|&i| json!({"op": "create", "entity": "contacts", "data": contact(i)}))
                .collect();
            let (base, token) = cl.node(k * 2 + j);
            let req = cl
                .client
                .post(format!("{base}/api/v1/batch"))
                .bearer_auth(token)
                .json(&json!({"operations": ops}));
            handles.push(tokio::spawn(async move {
                timed(req, 200).await.map_err(|e| e.to_string())
            }));
        }
        for h in handles {
            let (_, body) = h.await??;
            let changes = body["changes"].as_array().ok_or("no changes")?;
            // Keep every 50th id as a random-access sample.
            for ch in changes.iter().step_by(50) {
                if let Some(id) = ch["id"].as_str() {
                    ids.push(id.to_string());
                }
            }
            pb.inc(changes.len() as u64);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    report.row(
        &format!("{label}: seed {n} contacts via /api/v1/batch (1000/request)"),
        format!("{:.0} rows/s ({secs:.0} s)", n as f64 / secs),
    );
    Ok(ids)
}

/// Latency and throughput figures on a seeded database, requests spread over the nodes.
async fn measure(
    args: &Args,
    cl: &Cluster,
    ids: &mut Vec<String>,
    label: &str,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = rand::thread_rng();
    let offset = args.contacts + rng.gen_range(0..1_000_000_000);

    // Single creates, one client: latency.
    let mut lat = Vec::new();
    let pb = bar(args.samples, "HTTP create");
    for i in 0..args.samples {
        let (base, token) = cl.node(i);
        let req = cl
            .client
            .post(format!("{base}/api/v1/contacts"))
            .bearer_auth(token)
            .json(&contact(offset + i));
        let (d, body) = timed(req, 201).await.map_err(|e| e.to_string())?;
        lat.push(d);
        if let Some(id) = body["id"].as_str() {
            ids.push(id.to_string());
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let (p50, p99) = percentiles(lat.clone());
    report.row(
        &format!("{label}: create, 1 client: p50 / p99"),
        format!("{p50:.2} ms / {p99:.2} ms"),
    );

    // Concurrent creates: throughput.
    let per = args.samples / args.concurrency.max(1);
    let t = Instant::now();
    let mut handles = Vec::new();
    for w in 0..args.concurrency {
        let (base, token) = cl.node(w).clone();
        let c = cl.client.clone();
        let first = offset + args.samples + w * per;
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in 0..per {
                let req = c
                    .post(format!("{base}/api/v1/contacts"))
                    .bearer_auth(&token)
                    .json(&contact(first + i));
                lat.push(timed(req, 201).await.map_err(|e| e.to_string())?.0);
            }
            Ok::<_, String>(lat)
        }));
    }
    let mut conc = Vec::new();
    for h in handles {
        conc.extend(h.await??);
    }
    let secs = t.elapsed().as_secs_f64();
    let (c50, c99) = percentiles(conc.clone());
    report.row(
        &format!("{label}: create, {} clients: throughput", args.concurrency),
        format!(
            "{:.0} creates/s (p50 {c50:.2} ms, p99 {c99:.2} ms)",
            conc.len() as f64 / secs
        ),
    );

    // Get by id.
    let mut lat = Vec::new();
    for i in 0..args.samples {
        let id = ids.choose(&mut rng).ok_or("no ids")?;
        let (base, token) = cl.node(i);
        let req = cl
            .client
            .get(format!("{base}/api/v1/contacts/{id}"))
            .bearer_auth(token);
        lat.push(timed(req, 200).await.map_err(|e| e.to_string())?.0);
    }
    let (p50, p99) = percentiles(lat);
    report.row(
        &format!("{label}: get by id: p50 / p99"),
        format!("{p50:.2} ms / {p99:.2} ms"),
    );

    // Update.
    let mut lat = Vec::new();
    for i in 0..args.samples {
        let id = ids.choose(&mut rng).ok_or("no ids")?;
        let (base, token) = cl.node(i);
        let req = cl
            .client
            .patch(format!("{base}/api/v1/contacts/{id}"))
            .bearer_auth(token)
            .json(&json!({"position": format!("Manager {i}")}));
        lat.push(timed(req, 200).await.map_err(|e| e.to_string())?.0);
    }
    let (p50, p99) = percentiles(lat);
    report.row(
        &format!("{label}: update (PATCH): p50 / p99"),
        format!("{p50:.2} ms / {p99:.2} ms"),
    );

    // List pages of 50 from random positions (keyset cursor).
    let mut lat = Vec::new();
    for i in 0..args.samples {
        let (base, token) = cl.node(i);
        let url = if i % 10 == 0 {
            format!("{base}/api/v1/contacts?limit=50")
        } else {
            let id = ids.choose(&mut rng).ok_or("no ids")?;
            let order = if rng.gen_bool(0.5) { "asc" } else { "desc" };
            format!("{base}/api/v1/contacts?limit=50&order={order}&cursor={id}")
        };
        let (d, body) = timed(cl.client.get(url).bearer_auth(token), 200)
            .await
            .map_err(|e| e.to_string())?;
        if i % 10 == 0 && body["items"].as_array().map_or(0, Vec::len) != 50 {
            return Err("the first list page does not hold 50 contacts".into());
        }
        lat.push(d);
    }
    let (p50, p99) = percentiles(lat);
    report.row(
        &format!("{label}: list page of 50: p50 / p99"),
        format!("{p50:.2} ms / {p99:.2} ms"),
    );
    Ok(())
}

fn memory_row(report: &mut Report, label: &str, servers: &[&Server]) {
    let peaks: Vec<String> = servers
        .iter()
        .filter_map(|s| peak_rss_mib(s.child.id()))
        .map(|m| format!("{m:.0} MiB"))
        .collect();
    report.row(
        &format!("{label}: server peak memory (VmHWM) per node"),
        peaks.join(", "),
    );
}

async fn http_sqlite(
    args: &Args,
    work: &Path,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let bin = kontor_binary(args);
    let data = work.join("http-sqlite");
    let d = data.to_str().ok_or("path")?;
    init(&bin, &["--data", d])?;
    let srv = start_server(&bin, &["--data", d])?;
    let cl = Cluster::new(&[&srv]).await?;
    let label = "HTTP SQLite, 1 node";
    let mut ids = seed(&cl, args.contacts, label, report).await?;
    measure(args, &cl, &mut ids, label, report).await?;
    memory_row(report, label, &[&srv]);
    let db_bytes: u64 = ["kontor.db", "kontor.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum();
    report.row(
        &format!("{label}: database size on disk"),
        format!("{:.0} MiB", db_bytes as f64 / 1048576.0),
    );
    Ok(())
}

async fn http_postgres(
    args: &Args,
    work: &Path,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let pg = match &args.pg_url {
        Some(url) => kontor_testkit::PgServer::external(url),
        None => kontor_testkit::PgServer::start_durable()?,
    };
    let url = pg.fresh_database().await;
    let bin = kontor_binary(args);
    init(&bin, &["--database", &url])?;
    let a = start_server(
        &bin,
        &[
            "--database",
            &url,
            "--data",
            work.join("node-a").to_str().ok_or("path")?,
        ],
    )?;
    let cl = Cluster::new(&[&a]).await?;
    let mut ids = seed(&cl, args.contacts, "HTTP PostgreSQL, 1 node", report).await?;
    measure(args, &cl, &mut ids, "HTTP PostgreSQL, 1 node", report).await?;
    let b = start_server(
        &bin,
        &[
            "--database",
            &url,
            "--data",
            work.join("node-b").to_str().ok_or("path")?,
        ],
    )?;
    let cl2 = Cluster::new(&[&a, &b]).await?;
    measure(args, &cl2, &mut ids, "HTTP PostgreSQL, 2 nodes", report).await?;
    memory_row(report, "HTTP PostgreSQL, 2 nodes", &[&a, &b]);
    drop(a);
    drop(b);
    pg.stop();
    Ok(())
}
