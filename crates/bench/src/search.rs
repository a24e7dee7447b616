//! `kontor-bench --suite search`: `--contacts` contacts with realistic names (a few hundred
//! first and last names, Russian and German, so a name matches thousands of records), e-mails
//! and phones, seeded through `/api/v1/batch` into the real server on SQLite and on PostgreSQL,
//! then measured in the same run:
//!
//! - `GET /api/v1/search`: p50/p99 per kind of query (a prefix, a full name, a typo, a phone in
//!   another format, an e-mail, a rare word, no match), as an admin;
//! - the limit: the same queries straight on the index (tantivy, in this process, no HTTP and no
//!   database), and what users had before: the list's substring scan (`GET /contacts?q=`);
//! - keeping up: how long after the seed the index had taken in every write;
//! - `kontor search rebuild` on the stopped server's data: time and index size;
//! - the engine-native alternative: SQLite FTS5 over the same texts (C API, prepared
//!   statements, bm25-ranked `word*` queries): build time, latency, and how often it finds
//!   anything (it has no typo tolerance and no phone normalisation).

use crate::backups::{mib, run};
use crate::{init, kontor_binary, percentiles, start_server, Args, Cluster, Report, Server};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::Entity;
use kontor_search::index::SearchIndex;
use kontor_search::matcher::Query;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const FIRST: &[&str] = &[
    "Иван",
    "Пётр",
    "Анна",
    "Мария",
    "Сергей",
    "Ольга",
    "Дмитрий",
    "Елена",
    "Алексей",
    "Наталья",
    "Андрей",
    "Татьяна",
    "Михаил",
    "Ирина",
    "Николай",
    "Светлана",
    "Владимир",
    "Юлия",
    "Павел",
    "Екатерина",
    "Klaus",
    "Jürgen",
    "Anna",
    "Petra",
    "Stefan",
    "Monika",
    "Thomas",
    "Sabine",
    "Michael",
    "Andrea",
    "Jan",
    "Eva",
    "Tomáš",
    "Lucie",
    "Wei",
    "Li",
];
const LAST: &[&str] = &[
    "Петров",
    "Иванов",
    "Сидоров",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Novák",
    "Svoboda",
    "Dvořák",
    "Černý",
    "Wang",
    "Zhang",
];
pub(crate) const DOMAINS: &[&str] = &[
    "example.ru",
    "mail.example.de",
    "firma.example.cz",
    "corp.example.com",
];

pub(crate) fn contact(i: usize) -> Value {
    let f = FIRST[i % FIRST.len()];
    let l = LAST[(i / FIRST.len()) % LAST.len()];
    json!({
        "first_name": f,
        "last_name": l,
        "email": format!("user{i}@{}", DOMAINS[i % DOMAINS.len()]),
        "phone": format!("+7 9{:02} {:03}-{:02}-{:02}", i % 100, (i / 100) % 1000, (i / 100_000) % 100, i % 97),
        "position": if i % 1000 == 7 { "Архивариус" } else { "Менеджер" },
        "notes": format!("Клиент с {} года", 1990 + i % 35),
    })
}

/// Query kinds and the texts measured for each (cycled through).
fn queries(n: usize) -> Vec<(&'static str, Vec<String>)> {
    let some = |k: usize| (k * 7919) % n.max(1);
    let phone_of = |i: usize| {
        format!(
            "89{:02}{:03}{:02}{:02}",
            i % 100,
            (i / 100) % 1000,
            (i / 100_000) % 100,
            i % 97
        )
    };
    vec![
        (
            "prefix (3 letters of a last name)",
            vec!["Пет".into(), "Sch".into(), "Кузн".into()],
        ),
        (
            "first and last name",
            vec![
                "Иван Петров".into(),
                "Klaus Müller".into(),
                "Ольга Морозова".into(),
            ],
        ),
        (
            "a typo",
            vec!["Петорв".into(), "Schnieder".into(), "Семенов".into()],
        ),
        (
            "a phone, other format",
            (0..3).map(|k| phone_of(some(k + 1))).collect(),
        ),
        (
            "an e-mail",
            (0..3)
                .map(|k| {
                    let i = some(k + 11);
                    format!("user{i}@{}", DOMAINS[i % DOMAINS.len()])
                })
                .collect(),
        ),
        ("a rare word", vec!["Архивариус".into(), "архивар".into()]),
        ("no match", vec!["Zzyzx".into(), "Quuxbaz".into()]),
    ]
}

pub(crate) struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(srv: &Server) -> BenchResult<Api> {
        let cluster = Cluster::new(&[srv]).await?;
        let (base, token) = cluster.node(0).clone();
        Ok(Api {
            client: cluster.client,
            base,
            token,
        })
    }

    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> BenchResult<(Duration, Value)> {
        let t = Instant::now();
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        let d = t.elapsed();
        if !status.is_success() {
            return Err(format!("GET {path}: HTTP {status}: {body}").into());
        }
        Ok((d, body))
    }
}

/// Contacts per company in the seed (so a company's list is a page or two).
pub(crate) const CONTACTS_PER_COMPANY: usize = 100;

/// Creates one batch of records; returns their ids in order.
async fn create_batch(api: &Api, entity: &str, data: Vec<Value>) -> BenchResult<Vec<String>> {
    let ops: Vec<Value> = data
        .into_iter()
        .map(|d| json!({"op": "create", "entity": entity, "data": d}))
        .collect();
    let r = api
        .client
        .post(format!("{}/api/v1/batch", api.base))
        .bearer_auth(&api.token)
        .json(&json!({"operations": ops}))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("seed: HTTP {}: {}", r.status(), r.text().await?).into());
    }
    let body: Value = r.json().await?;
    Ok(body["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Seeds `n / CONTACTS_PER_COMPANY` companies, then `n` contacts spread over them; returns the
/// seconds the contacts took and the companies' ids.
async fn seed(api: &Api, n: usize) -> BenchResult<(f64, Vec<String>)> {
    let companies = (n / CONTACTS_PER_COMPANY).max(1);
    let mut company_ids = Vec::with_capacity(companies);
    let mut i = 0;
    while i < companies {
        let end = (i + crate::BATCH).min(companies);
        let data = (i..end)
            .map(|k| json!({"name": format!("Компания {k}"), "phone": format!("+7 495 {k:07}")}))
            .collect();
        company_ids.extend(create_batch(api, "companies", data).await?);
        i = end;
    }
    let pb = crate::bar(n, "seed via /api/v1/batch");
    let t = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + crate::BATCH).min(n);
        let data = (i..end)
            .map(|k| {
                let mut c = contact(k);
                c["company_id"] = json!(company_ids[k % company_ids.len()]);
                c
            })
            .collect();
        create_batch(api, "contacts", data).await?;
        pb.inc((end - i) as u64);
        i = end;
    }
    pb.finish_and_clear();
    Ok((t.elapsed().as_secs_f64(), company_ids))
}

/// Waits until the server's index has taken in the whole journal; returns how long that took.
async fn caught_up(api: &Api) -> BenchResult<f64> {
    let t = Instant::now();
    loop {
        let (_, st) = api.get("/api/v1/admin/search", &[]).await?;
        if st["behind"] == json!(0) {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(1800) {
            return Err(format!("the search index did not catch up: {st}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn fmt_ms((p50, p99): (f64, f64)) -> String {
    format!("{p50:.2} / {p99:.2} ms")
}

async fn measure_engine(
    args: &Args,
    label: &str,
    store: &[&str],
    data: &Path,
    report: &mut Report,
) -> BenchResult<()> {
    let bin = kontor_binary(args);
    let mut serve_args: Vec<&str> = store.to_vec();
    let d = data.to_str().ok_or("path")?;
    if !store.contains(&"--data") {
        serve_args.extend(["--data", d]);
    }
    init(&bin, &serve_args)?;
    let srv = start_server(&bin, &serve_args)?;
    let api = Api::login(&srv).await?;
    let n = args.contacts;
    let (seconds, companies) = seed(&api, n).await?;
    let lag = caught_up(&api).await?;
    report.row(
        &format!("{label}: seed {n} contacts via /api/v1/batch, index kept current meanwhile"),
        format!(
            "{:.0} rows/s ({seconds:.0} s); index current {lag:.1} s after the last write",
            n as f64 / seconds
        ),
    );
    let samples = args.samples.max(1);
    let index_dir = data.join("search");
    // The index read-only beside the server (the server holds its writer).
    let bare = SearchIndex::open(&index_dir)?;
    let scope = [(Entity::Contacts, OwnerFilter::Any)];
    let mut all_api = Vec::new();
    for (kind, texts) in queries(n) {
        let mut api_lat = Vec::new();
        let mut bare_lat = Vec::new();
        let mut hits = 0u64;
        for s in 0..samples {
            let q = &texts[s % texts.len()];
            let (d, body) = api.get("/api/v1/search", &[("q", q)]).await?;
            api_lat.push(d);
            hits += body["groups"].as_array().map_or(0, |g| g.len() as u64);
            let t = Instant::now();
            let _ = bare.search(&Query::parse(q), &scope, 15)?;
            bare_lat.push(t.elapsed());
        }
        all_api.extend(api_lat.iter().copied());
        report.row(
            &format!("{label}: search, {kind}: p50 / p99 (index alone)"),
            format!(
                "{} ({}), found in {:.0}% of queries",
                fmt_ms(percentiles(api_lat)),
                fmt_ms(percentiles(bare_lat)),
                100.0 * hits as f64 / samples as f64
            ),
        );
    }
    report.row(
        &format!("{label}: search, all kinds: p50 / p99"),
        fmt_ms(percentiles(all_api)),
    );
    // What users had: the list's substring scan.
    for (what, q) in [
        ("a common last name", "петров"),
        ("a rare word", "архивариус"),
        ("no match", "zzyzx"),
    ] {
        let mut lat = Vec::new();
        for _ in 0..samples.min(50) {
            lat.push(
                api.get("/api/v1/contacts", &[("q", q), ("limit", "10")])
                    .await?
                    .0,
            );
        }
        report.row(
            &format!("{label}: before: GET /contacts?q= (substring scan), {what}: p50 / p99"),
            fmt_ms(percentiles(lat)),
        );
    }
    drop(bare);
    crate::lists::measure(&api, label, store, data, n, &companies, samples, report).await?;
    crate::memory_row(report, label, &[&srv]);
    drop(srv);
    let mut rebuild = Command::new(&bin);
    rebuild.args(["search", "rebuild"]).args(&serve_args);
    let ran = run(&mut rebuild)?;
    let bytes: u64 = std::fs::read_dir(&index_dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    report.row(
        &format!("{label}: kontor search rebuild (server stopped)"),
        format!(
            "{:.1} s, {:.0} records/s, peak {:.0} MiB; index {:.0} MiB on disk",
            ran.seconds,
            n as f64 / ran.seconds,
            ran.peak_mib,
            mib(bytes)
        ),
    );
    Ok(())
}

/// The text FTS5 gets for a contact: its values, as Kontor's index gets them.
fn fts_text(i: usize) -> String {
    contact(i)
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// A query as FTS5 takes it: every word as a quoted prefix, all required.
fn fts_query(q: &str) -> String {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn fts5_baseline(path: &Path, n: usize, samples: usize, report: &mut Report) -> BenchResult<()> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE VIRTUAL TABLE s USING fts5(text, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');",
    )?;
    let t = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare("INSERT INTO s (text) VALUES (?1)")?;
        for i in 0..n {
            insert.execute([fts_text(i)])?;
        }
    }
    tx.commit()?;
    let build = t.elapsed().as_secs_f64();
    report.row(
        "SQLite FTS5 (C API): index the same contacts",
        format!("{build:.1} s, {:.0} records/s", n as f64 / build),
    );
    let mut query = conn.prepare("SELECT rowid FROM s WHERE s MATCH ?1 ORDER BY rank LIMIT 15")?;
    for (kind, texts) in queries(n) {
        let mut lat = Vec::new();
        let mut found = 0usize;
        for k in 0..samples {
            let q = fts_query(&texts[k % texts.len()]);
            let t = Instant::now();
            let rows = if q.is_empty() {
                0
            } else {
                query.query_map([&q], |r| r.get::<_, i64>(0))?.count()
            };
            lat.push(t.elapsed());
            found += usize::from(rows > 0);
        }
        report.row(
            &format!("SQLite FTS5: {kind}: p50 / p99"),
            format!(
                "{}, found in {:.0}% of queries",
                fmt_ms(percentiles(lat)),
                100.0 * found as f64 / samples as f64
            ),
        );
    }
    Ok(())
}

pub async fn measure(args: &Args, work: &Path, report: &mut Report) -> BenchResult<()> {
    println!(
        "kontor-bench --suite search: {} contacts per engine",
        args.contacts
    );
    for engine in crate::engines(args) {
        match engine {
            "sqlite" => {
                measure_engine(args, "SQLite", &[], &work.join("search-sqlite"), report).await?;
                fts5_baseline(
                    &work.join("fts5.db"),
                    args.contacts,
                    args.samples.max(1),
                    report,
                )?;
            }
            "postgres" => {
                let pg = match &args.pg_url {
                    Some(url) => kontor_testkit::PgServer::external(url),
                    None => kontor_testkit::PgServer::start_durable()?,
                };
                let url = pg.fresh_database().await;
                let data = work.join("search-postgres");
                let d = data.to_str().ok_or("path")?.to_string();
                measure_engine(
                    args,
                    "PostgreSQL",
                    &["--database", &url, "--data", &d],
                    &data,
                    report,
                )
                .await?;
            }
            other => return Err(format!("unknown engine '{other}' (sqlite, postgres)").into()),
        }
    }
    Ok(())
}
