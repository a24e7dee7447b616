//! Lists at scale (part of `--suite search`, on the same seeded server): a page of 50 filtered
//! by an e-mail, by a company, by a range of creation times and by a range of last names, a
//! keyset walk sorted by last name, and counts of filtered lists — through the real server
//! over HTTP — beside the physical limit, the same statement sent to the database through its
//! own client with a prepared statement (SQLite's C API through rusqlite on the server's file;
//! PostgreSQL through sqlx), and a filter on a field without an index (a scan) for contrast.

use crate::percentiles;
use crate::search::{contact, fmt_ms, Api, DOMAINS};
use crate::Report;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One kind of list request: the query parameters, cycled through, and the bare SQL that
/// answers it (one `?1`/`$1` parameter, the same values).
struct Kind {
    what: &'static str,
    params: Vec<Vec<(String, String)>>,
    sql: Option<(String, Vec<String>)>,
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The key of a JSON text field as Kontor's list index has it, per engine.
fn key(engine: &str, field: &str) -> String {
    match engine {
        "sqlite" => format!("json_extract(data, '$.{field}')"),
        _ => format!("((data ->> '{field}') COLLATE \"C\")"),
    }
}

/// The live contacts, on SQLite through the index Kontor names for the list (see
/// `kontor_store::list::IndexHints`), the best plan there is.
fn live(engine: &str, index: Option<&str>) -> String {
    match (engine, index) {
        ("sqlite", Some(i)) => format!(
            "SELECT id, data FROM records INDEXED BY {i} WHERE entity = 'contacts' AND deleted_batch IS NULL"
        ),
        ("sqlite", None) => {
            "SELECT id, data FROM records WHERE entity = 'contacts' AND deleted_batch IS NULL".into()
        }
        _ => "SELECT id, data::text FROM records WHERE entity = 'contacts' AND deleted_batch IS NULL"
            .into(),
    }
}

fn param(engine: &str) -> &'static str {
    if engine == "sqlite" {
        "?1"
    } else {
        "$1"
    }
}

fn kinds(engine: &str, n: usize, companies: &[String], window: (String, i64)) -> Vec<Kind> {
    let some = |k: usize| (k * 7919 + 13) % n.max(1);
    let emails: Vec<String> = (0..20)
        .map(|k| {
            let i = some(k);
            format!("user{i}@{}", DOMAINS[i % DOMAINS.len()])
        })
        .collect();
    let companies: Vec<String> = (0..20)
        .map(|k| companies[(k * 37) % companies.len()].clone())
        .collect();
    let p = param(engine);
    vec![
        Kind {
            what: "by e-mail (one of 1M)",
            params: emails
                .iter()
                .map(|e| pairs(&[("email", e), ("limit", "50")]))
                .collect(),
            sql: Some((
                format!(
                    "{} AND {} = {p} ORDER BY id DESC LIMIT 51",
                    live(engine, Some("lf1_contacts_email")),
                    key(engine, "email")
                ),
                emails.clone(),
            )),
        },
        Kind {
            what: "by company (100 contacts each)",
            params: companies
                .iter()
                .map(|c| pairs(&[("company_id", c), ("limit", "50")]))
                .collect(),
            sql: Some((
                format!(
                    "{} AND {} = {p} ORDER BY id DESC LIMIT 51",
                    live(engine, Some("lf1_contacts_company_id")),
                    key(engine, "company_id")
                ),
                companies.clone(),
            )),
        },
        Kind {
            what: "created in a 1 s window, sorted by creation",
            params: vec![pairs(&[
                ("created_at[gte]", &window.0),
                ("sort", "created_at"),
                ("order", "asc"),
                ("limit", "50"),
            ])],
            sql: Some((
                format!(
                    "{} AND created_at >= {} ORDER BY created_at ASC, id ASC LIMIT 51",
                    live(engine, None),
                    if engine == "sqlite" {
                        "CAST(?1 AS INTEGER)"
                    } else {
                        "CAST($1 AS BIGINT)"
                    }
                ),
                vec![window.1.to_string()],
            )),
        },
        Kind {
            what: "last names from 'Мак' on, sorted by last name",
            params: vec![pairs(&[
                ("last_name[gte]", "Мак"),
                ("sort", "last_name"),
                ("limit", "50"),
            ])],
            sql: Some((
                format!(
                    "{} AND {k} >= {p} ORDER BY {k} ASC{nulls}, id ASC LIMIT 51",
                    live(engine, Some("lf1_contacts_last_name")),
                    nulls = if engine == "sqlite" {
                        ""
                    } else {
                        " NULLS FIRST"
                    },
                    k = key(engine, "last_name")
                ),
                vec!["Мак".to_string()],
            )),
        },
        Kind {
            what: "count of a company's contacts",
            params: companies
                .iter()
                .map(|c| pairs(&[("company_id", c), ("count", "true"), ("limit", "1")]))
                .collect(),
            sql: None,
        },
        Kind {
            what: "count of one last name (~1/40 of all)",
            params: vec![pairs(&[
                ("last_name", "Петров"),
                ("count", "true"),
                ("limit", "1"),
            ])],
            sql: None,
        },
        Kind {
            what: "count of all contacts",
            params: vec![pairs(&[("count", "true"), ("limit", "1")])],
            sql: None,
        },
        Kind {
            what: "no index: by position (a scan)",
            params: vec![pairs(&[("position", "Архивариус"), ("limit", "50")])],
            sql: None,
        },
    ]
}

/// A page's items, and the total the server answered when it counted.
fn summary(body: &Value) -> (usize, Option<(u64, bool)>) {
    let items = body["items"].as_array().map_or(0, Vec::len);
    let total = body["total"]
        .as_u64()
        .map(|t| (t, body["total_is_estimate"] == Value::Bool(true)));
    (items, total)
}

/// The limit: each kind's statement on the database, prepared once, run `samples` times.
async fn bare(
    engine: &str,
    store: &[&str],
    data: &Path,
    kinds: &[Kind],
    samples: usize,
) -> BenchResult<Vec<Option<(f64, f64)>>> {
    let mut out = Vec::new();
    match engine {
        "sqlite" => {
            let conn = rusqlite::Connection::open_with_flags(
                data.join(kontor_core::datadir::DB_FILE),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )?;
            for k in kinds {
                let Some((sql, values)) = &k.sql else {
                    out.push(None);
                    continue;
                };
                let mut stmt = conn.prepare(sql)?;
                let mut lat = Vec::new();
                for s in 0..samples {
                    let t = Instant::now();
                    let rows = stmt
                        .query_map([&values[s % values.len()]], |r| r.get::<_, String>(1))?
                        .count();
                    lat.push(t.elapsed());
                    std::hint::black_box(rows);
                }
                out.push(Some(percentiles(lat)));
            }
        }
        _ => {
            let url = store
                .iter()
                .position(|a| *a == "--database")
                .and_then(|i| store.get(i + 1))
                .ok_or("no --database for PostgreSQL")?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await?;
            for k in kinds {
                let Some((sql, values)) = &k.sql else {
                    out.push(None);
                    continue;
                };
                let mut lat: Vec<Duration> = Vec::new();
                for s in 0..samples {
                    let t = Instant::now();
                    let rows = sqlx::query(sql)
                        .bind(&values[s % values.len()])
                        .fetch_all(&pool)
                        .await?;
                    lat.push(t.elapsed());
                    std::hint::black_box(rows.len());
                }
                out.push(Some(percentiles(lat)));
            }
            pool.close().await;
        }
    }
    Ok(out)
}

/// Waits until the server has built the list indexes (a background job after start).
async fn indexes_ready(api: &Api) -> BenchResult<f64> {
    let t = Instant::now();
    let email = format!("user0@{}", DOMAINS[0]);
    loop {
        // A filter on an indexed field is fast once its index is there.
        let (d, _) = api
            .get(
                "/api/v1/contacts",
                &[("email", email.as_str()), ("limit", "1")],
            )
            .await?;
        if d < Duration::from_millis(20) {
            return Ok(t.elapsed().as_secs_f64());
        }
        if t.elapsed() > Duration::from_secs(1800) {
            return Err("the list indexes were not built within 30 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Measures the list requests on the seeded server `api` (label: the engine's name).
#[allow(clippy::too_many_arguments)]
pub async fn measure(
    api: &Api,
    label: &str,
    store: &[&str],
    data: &Path,
    n: usize,
    companies: &[String],
    samples: usize,
    report: &mut Report,
) -> BenchResult<()> {
    let engine = if label == "SQLite" {
        "sqlite"
    } else {
        "postgres"
    };
    indexes_ready(api).await?;
    // The window starts at the creation time of the contact in the middle of the seed.
    let email = contact(n / 2)["email"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (_, mid) = api
        .get(
            "/api/v1/contacts",
            &[("email", email.as_str()), ("limit", "1")],
        )
        .await?;
    let created = mid["items"][0]["created_at"]
        .as_str()
        .ok_or("the middle contact has no created_at")?
        .to_string();
    let micros = chrono::DateTime::parse_from_rfc3339(&created)?.timestamp_micros();
    let kinds = kinds(engine, n, companies, (created, micros));
    let limits = bare(engine, store, data, &kinds, samples).await?;
    for (k, limit) in kinds.iter().zip(limits) {
        let runs = if k.what.starts_with("no index") || k.what.contains("all contacts") {
            samples.min(50)
        } else {
            samples
        };
        let mut lat = Vec::new();
        let mut last = (0, None);
        for s in 0..runs {
            let p: Vec<(&str, &str)> = k.params[s % k.params.len()]
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            let (d, body) = api.get("/api/v1/contacts", &p).await?;
            lat.push(d);
            last = summary(&body);
        }
        let (items, total) = last;
        let answer = match total {
            Some((t, est)) => format!("total {t}{}", if est { " (estimate)" } else { "" }),
            None => format!("{items} items"),
        };
        let limit = limit
            .map(|l| format!("; the statement alone {}", fmt_ms(l)))
            .unwrap_or_default();
        report.row(
            &format!("{label}: list {}: p50 / p99", k.what),
            format!("{} ({answer}){limit}", fmt_ms(percentiles(lat))),
        );
    }
    // A keyset walk: 20 pages of 50 sorted by last name, each page from the previous cursor.
    let mut lat = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let mut p = vec![("sort", "last_name"), ("limit", "50")];
        if let Some(c) = &cursor {
            p.push(("cursor", c.as_str()));
        }
        let (d, body) = api.get("/api/v1/contacts", &p).await?;
        lat.push(d);
        cursor = body["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() {
            break;
        }
    }
    report.row(
        &format!("{label}: list sorted by last name, 20 pages walked by cursor: p50 / p99"),
        fmt_ms(percentiles(lat)),
    );
    Ok(())
}
