//! `kontor-bench --suite import`: a CSV of `--contacts` contacts (Russian headers, `;` as
//! Russian Excel writes it) imported with `kontor import` through a running server (its local
//! socket; the server keeps its search index and list indexes current meanwhile), on SQLite
//! and on PostgreSQL, and exported again with `kontor export`; beside them, measured in the same
//! run, the limits: the bare parse of the file (the `csv` crate alone), the same rows inserted
//! through SQLite's C API (prepared statement, WAL, `synchronous=FULL`, 1000 rows a transaction)
//! and through PostgreSQL's `COPY`, and the same rows read back through each database's own
//! client. A tenth of the rows is imported first, so memory can be compared across sizes.

use crate::backups::{mib, run};
use crate::{init, kontor_binary, start_server, Args, Report};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const HEADER: &str = "Фамилия;Имя;Отчество;E-mail;Телефон;Должность\n";

fn row(i: usize) -> String {
    format!(
        "Петров{};Иван{};Сергеевич;user{i}@example.ru;+7 9{:02} {:03}-{:02}-{:02};Менеджер\n",
        i % 997,
        i % 101,
        i % 100,
        (i / 100) % 1000,
        (i / 100_000) % 100,
        i % 97
    )
}

pub(crate) fn write_csv(path: &Path, n: usize) -> BenchResult<u64> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(HEADER.as_bytes())?;
    for i in 0..n {
        f.write_all(row(i).as_bytes())?;
    }
    f.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The record JSON the baselines store for a CSV record.
fn record_json(rec: &csv::StringRecord) -> String {
    json!({
        "last_name": &rec[0], "first_name": &rec[1], "middle_name": &rec[2],
        "email": &rec[3], "phone": &rec[4], "position": &rec[5],
    })
    .to_string()
}

fn reader(path: &Path) -> BenchResult<csv::Reader<std::fs::File>> {
    Ok(csv::ReaderBuilder::new().delimiter(b';').from_path(path)?)
}

fn bare_parse(path: &Path) -> BenchResult<(f64, u64)> {
    let t = Instant::now();
    let mut n = 0u64;
    let mut rec = csv::StringRecord::new();
    let mut r = reader(path)?;
    while r.read_record(&mut rec)? {
        n += rec.len() as u64;
    }
    Ok((t.elapsed().as_secs_f64(), n))
}

/// The same rows through SQLite's C API: parse, JSON, prepared insert.
fn sqlite_inserts(csv_path: &Path, db: &Path) -> BenchResult<f64> {
    let mut conn = rusqlite::Connection::open(db)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE t (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
    )?;
    let t = Instant::now();
    let mut r = reader(csv_path)?;
    let mut rec = csv::StringRecord::new();
    let mut i = 0u64;
    let mut done = false;
    while !done {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO t (id, data) VALUES (?1, ?2)")?;
            for _ in 0..1000 {
                if !r.read_record(&mut rec)? {
                    done = true;
                    break;
                }
                insert.execute(rusqlite::params![format!("{i:016}"), record_json(&rec)])?;
                i += 1;
            }
        }
        tx.commit()?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The rows of the table read back and written as CSV (the database's own export).
fn sqlite_read_back(db: &Path, out: &Path) -> BenchResult<f64> {
    let conn = rusqlite::Connection::open(db)?;
    let t = Instant::now();
    let mut w = csv::Writer::from_path(out)?;
    let mut stmt = conn.prepare("SELECT id, data FROM t")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let data: String = r.get(1)?;
        w.write_record([id, data])?;
    }
    w.flush()?;
    Ok(t.elapsed().as_secs_f64())
}

async fn pg_copy(csv_path: &Path, url: &str, out: &Path) -> BenchResult<(f64, f64)> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, data JSONB NOT NULL)")
        .execute(&pool)
        .await?;
    let t = Instant::now();
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY t (id, data) FROM STDIN WITH (FORMAT csv)")
        .await?;
    let mut r = reader(csv_path)?;
    let mut rec = csv::StringRecord::new();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut i = 0u64;
    while r.read_record(&mut rec)? {
        {
            let mut w = csv::Writer::from_writer(&mut buf);
            w.write_record([format!("{i:016}"), record_json(&rec)])?;
            w.flush()?;
        }
        i += 1;
        if buf.len() > (1 << 20) {
            copy.send(std::mem::take(&mut buf)).await?;
        }
    }
    copy.send(buf).await?;
    copy.finish().await?;
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out)?);
    let mut stream = conn
        .copy_out_raw("COPY (SELECT id, data FROM t) TO STDOUT WITH (FORMAT csv)")
        .await?;
    use futures_util::StreamExt;
    while let Some(chunk) = stream.next().await {
        f.write_all(&chunk?)?;
    }
    f.flush()?;
    drop(stream);
    let read = t.elapsed().as_secs_f64();
    drop(conn);
    pool.close().await;
    Ok((load, read))
}

/// Imports `csv` through a server on `store` (fresh), then exports it; the figures.
async fn kontor_run(
    args: &Args,
    label: &str,
    store: &[&str],
    data: &Path,
    csv_path: &Path,
    rows: usize,
    report: &mut Report,
) -> BenchResult<(f64, f64)> {
    let bin = kontor_binary(args);
    let d = data.to_str().ok_or("path")?.to_string();
    let mut all: Vec<&str> = store.to_vec();
    if !store.contains(&"--data") {
        all.extend(["--data", &d]);
    }
    init(&bin, &all)?;
    let srv = start_server(&bin, &all)?;
    // The list indexes are built by the server right after it starts.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let f = csv_path.to_str().ok_or("path")?;
    let mut cmd = Command::new(&bin);
    cmd.args(["import", f, "--entity", "contacts", "--json"])
        .args(&all);
    let heap = crate::HeapSampler::start(srv.child.id());
    let ran = run(&mut cmd);
    let server_heap = heap.peak_mib();
    let ran = ran?;
    let server_peak = crate::peak_rss_mib(srv.child.id()).unwrap_or(0.0);
    let rep: Value = serde_json::from_str(ran.stdout.trim())?;
    if rep["created"] != json!(rows) {
        return Err(format!(
            "{label}: the import created {} of {rows}: {rep}",
            rep["created"]
        )
        .into());
    }
    report.row(
        &format!("{label}: kontor import of {rows} rows (through the running server)"),
        format!(
            "{:.1} s, {:.0} rows/s; server peak {:.0} MiB resident, {:.0} MiB heap; the command's {:.0} MiB",
            ran.seconds,
            rows as f64 / ran.seconds,
            server_peak,
            server_heap,
            ran.peak_mib
        ),
    );
    let out = data.join("export.csv");
    let mut cmd = Command::new(&bin);
    cmd.args([
        "export",
        "--entity",
        "contacts",
        "--to",
        out.to_str().ok_or("path")?,
    ])
    .args(&all);
    let exported = run(&mut cmd)?;
    report.row(
        &format!("{label}: kontor export of {rows} contacts to CSV"),
        format!(
            "{:.1} s, {:.0} rows/s, {:.0} MiB written",
            exported.seconds,
            rows as f64 / exported.seconds,
            mib(std::fs::metadata(&out)?.len())
        ),
    );
    drop(srv);
    Ok((ran.seconds, server_heap))
}

pub async fn measure(args: &Args, work: &Path, report: &mut Report) -> BenchResult<()> {
    let n = args.contacts;
    let small = (n / 10).max(1);
    println!("kontor-bench --suite import: {n} rows (and {small} for memory)");
    let big = work.join("contacts.csv");
    let bytes = write_csv(&big, n)?;
    let little = work.join("contacts-small.csv");
    write_csv(&little, small)?;
    let (parse, cells) = bare_parse(&big)?;
    report.row(
        &format!(
            "bare parse of the CSV ({n} rows, {:.0} MiB; csv crate)",
            mib(bytes)
        ),
        format!(
            "{parse:.2} s, {:.0} rows/s ({cells} cells)",
            n as f64 / parse
        ),
    );
    for engine in crate::engines(args) {
        match engine {
            "sqlite" => {
                let db = work.join("plain.db");
                let insert = sqlite_inserts(&big, &db)?;
                report.row(
                    "SQLite C API: the same rows inserted (prepared, WAL, synchronous=FULL, 1000 a transaction)",
                    format!("{insert:.1} s, {:.0} rows/s", n as f64 / insert),
                );
                let read = sqlite_read_back(&db, &work.join("plain.csv"))?;
                report.row(
                    "SQLite C API: the same rows read back to CSV",
                    format!("{read:.1} s, {:.0} rows/s", n as f64 / read),
                );
                let (_, small_peak) = kontor_run(
                    args,
                    "SQLite (a tenth)",
                    &[],
                    &work.join("import-sqlite-small"),
                    &little,
                    small,
                    report,
                )
                .await?;
                let (secs, peak) = kontor_run(
                    args,
                    "SQLite",
                    &[],
                    &work.join("import-sqlite"),
                    &big,
                    n,
                    report,
                )
                .await?;
                report.row(
                    "SQLite: import time / C API inserts; server heap at a tenth → all",
                    format!("{:.2}x; {small_peak:.0} → {peak:.0} MiB", secs / insert),
                );
            }
            "postgres" => {
                let pg = match &args.pg_url {
                    Some(url) => kontor_testkit::PgServer::external(url),
                    None => kontor_testkit::PgServer::start_durable()?,
                };
                let plain = pg.fresh_database().await;
                let (copy, read) = pg_copy(&big, &plain, &work.join("plain-pg.csv")).await?;
                report.row(
                    "PostgreSQL COPY: the same rows loaded",
                    format!("{copy:.1} s, {:.0} rows/s", n as f64 / copy),
                );
                report.row(
                    "PostgreSQL COPY TO: the same rows read back to CSV",
                    format!("{read:.1} s, {:.0} rows/s", n as f64 / read),
                );
                let url = pg.fresh_database().await;
                let data = work.join("import-pg-small");
                let d = data.to_str().ok_or("path")?.to_string();
                let (_, small_peak) = kontor_run(
                    args,
                    "PostgreSQL (a tenth)",
                    &["--database", &url, "--data", &d],
                    &data,
                    &little,
                    small,
                    report,
                )
                .await?;
                let url = pg.fresh_database().await;
                let data = work.join("import-pg");
                let d = data.to_str().ok_or("path")?.to_string();
                let (secs, peak) = kontor_run(
                    args,
                    "PostgreSQL",
                    &["--database", &url, "--data", &d],
                    &data,
                    &big,
                    n,
                    report,
                )
                .await?;
                report.row(
                    "PostgreSQL: import time / COPY; server heap at a tenth → all",
                    format!("{:.2}x; {small_peak:.0} → {peak:.0} MiB", secs / copy),
                );
            }
            other => return Err(format!("unknown engine '{other}' (sqlite, postgres)").into()),
        }
    }
    Ok(())
}
