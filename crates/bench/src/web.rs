//! `kontor-bench --suite web`: the web pages at `--contacts` contacts (imported with `kontor
//! import`), per engine in `--engines`: the time of the list page (first page, sorted, by
//! e-mail), the record page and the search page over HTTP with a logged-in session, p50 / p99
//! over `--samples` requests, beside the API's JSON of the same list and record (what a client
//! of the API would wait for); and the weight of each page with its assets (stylesheet, script).

use crate::backups::run;
use crate::{init, kontor_binary, percentiles, start_server, Args, Report, ADMIN, PASSWORD};
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;
/// The page of the `i`-th sample of one kind of page.
type PagePath = Box<dyn Fn(usize) -> String>;

/// A logged-in browser session: the client and its cookie header.
struct Session {
    client: reqwest::Client,
    base: String,
    cookie: String,
}

impl Session {
    async fn log_in(base: &str) -> BenchResult<Session> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let form = client.get(format!("{base}/login")).send().await?;
        let csrf_cookie = cookie_of(&form, "kontor_login_csrf").ok_or("no login cookie")?;
        let body = form.text().await?;
        let csrf = input_value(&body, "csrf").ok_or("no csrf in the form")?;
        let done = client
            .post(format!("{base}/login"))
            .header(COOKIE, format!("kontor_login_csrf={csrf_cookie}"))
            .form(&[("email", ADMIN), ("password", PASSWORD), ("csrf", &csrf)])
            .send()
            .await?;
        let session = cookie_of(&done, "kontor_session").ok_or("login failed")?;
        Ok(Session {
            client,
            base: base.to_string(),
            cookie: format!("kontor_session={session}"),
        })
    }

    /// One page: its time and its body.
    async fn page(&self, path: &str) -> BenchResult<(Duration, String)> {
        let t = Instant::now();
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        let d = t.elapsed();
        if !status.is_success() {
            return Err(format!("{path}: HTTP {status}").into());
        }
        Ok((d, body))
    }
}

fn cookie_of(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.split(';').next()?.strip_prefix(&format!("{name}=")))
        .map(str::to_string)
}

fn input_value(body: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = body.find(&needle)? + needle.len();
    let end = body[start..].find('"')?;
    Some(body[start..start + end].to_string())
}

/// The assets a page names (the stylesheet and the script), each once.
fn asset_paths(body: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = body;
    while let Some(start) = rest.find("/assets/") {
        let Some(end) = rest[start..].find('"') else {
            break;
        };
        let path = rest[start..start + end].to_string();
        if !out.contains(&path) {
            out.push(path);
        }
        rest = &rest[start + end..];
    }
    out
}

pub async fn measure(args: &Args, work: &Path, report: &mut Report) -> BenchResult<()> {
    let n = args.contacts;
    println!(
        "kontor-bench --suite web: {n} contacts, {} samples per page",
        args.samples
    );
    let csv = work.join("contacts.csv");
    // The same contacts as the import suite's (one e-mail per row: userN@example.ru).
    crate::import::write_csv(&csv, n)?;
    for engine in crate::engines(args) {
        let pg;
        let data = work.join(format!("web-{engine}"));
        let d = data.to_str().ok_or("path")?.to_string();
        let mut store: Vec<String> = vec!["--data".into(), d];
        let label = match engine {
            "sqlite" => "SQLite",
            "postgres" => {
                pg = match &args.pg_url {
                    Some(url) => kontor_testkit::PgServer::external(url),
                    None => kontor_testkit::PgServer::start_durable()?,
                };
                store.extend(["--database".into(), pg.fresh_database().await]);
                "PostgreSQL"
            }
            other => return Err(format!("unknown engine '{other}'").into()),
        };
        let store: Vec<&str> = store.iter().map(String::as_str).collect();
        let bin = kontor_binary(args);
        init(&bin, &store)?;
        let srv = start_server(&bin, &store)?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut cmd = Command::new(&bin);
        cmd.args([
            "import",
            csv.to_str().ok_or("path")?,
            "--entity",
            "contacts",
            "--json",
        ])
        .args(&store);
        let ran = run(&mut cmd)?;
        println!("{label}: {n} contacts imported in {:.1} s", ran.seconds);
        let s = Session::log_in(&srv.base).await?;
        // Records to open: ids from the first pages of the API.
        let api = reqwest::Client::new();
        let login: Value = api
            .post(format!("{}/api/v1/auth/login", srv.base))
            .json(&serde_json::json!({"email": ADMIN, "password": PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let tok = login["token"].as_str().ok_or("login failed")?.to_string();
        let listed: Value = api
            .get(format!("{}/api/v1/contacts?limit=200&sort=email", srv.base))
            .bearer_auth(&tok)
            .send()
            .await?
            .json()
            .await?;
        let ids: Vec<String> = listed["items"]
            .as_array()
            .ok_or("no contacts listed")?
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_string))
            .collect();
        if ids.is_empty() {
            return Err("no contacts to open".into());
        }
        let samples = args.samples.max(1);
        let kinds: [(&str, PagePath); 5] = [
            (
                "list page, first page of 50",
                Box::new(|_| "/contacts".into()),
            ),
            (
                "list page sorted by last name",
                Box::new(|_| "/contacts?sort=last_name".into()),
            ),
            (
                "list page filtered by e-mail",
                Box::new(move |i| format!("/contacts?email=user{}%40example.ru", (i * 7919) % n)),
            ),
            ("record page", {
                let ids = ids.clone();
                Box::new(move |i| format!("/contacts/{}", ids[i % ids.len()]))
            }),
            (
                "search page",
                Box::new(|i| format!("/search?q=%D0%9F%D0%B5%D1%82%D1%80%D0%BE%D0%B2{}", i % 997)),
            ),
        ];
        let mut asset_bytes = 0usize;
        for (what, path) in &kinds {
            let mut times = Vec::with_capacity(samples);
            let mut bytes = 0usize;
            for i in 0..samples {
                let (d, body) = s.page(&path(i)).await?;
                times.push(d);
                bytes = body.len();
                if asset_bytes == 0 {
                    for asset in asset_paths(&body) {
                        asset_bytes += s.page(&asset).await?.1.len();
                    }
                }
            }
            let (p50, p99) = percentiles(times);
            report.row(
                &format!("{label}: {what} ({n} contacts)"),
                format!(
                    "{p50:.2} / {p99:.2} ms p50 / p99; {:.1} KB with its assets ({:.1} KB HTML)",
                    (bytes + asset_bytes) as f64 / 1024.0,
                    bytes as f64 / 1024.0
                ),
            );
        }
        // The same list and record as JSON from the API, for comparison.
        for (what, path) in [
            (
                "API: the same first page of 50 (JSON)",
                "/api/v1/contacts?limit=50".to_string(),
            ),
            (
                "API: a record (JSON)",
                format!("/api/v1/contacts/{}", ids[0]),
            ),
        ] {
            let mut times = Vec::with_capacity(samples);
            for _ in 0..samples {
                let t = Instant::now();
                let r = api
                    .get(format!("{}{path}", srv.base))
                    .bearer_auth(&tok)
                    .send()
                    .await?;
                let _ = r.bytes().await?;
                times.push(t.elapsed());
            }
            let (p50, p99) = percentiles(times);
            report.row(
                &format!("{label}: {what}"),
                format!("{p50:.2} / {p99:.2} ms p50 / p99"),
            );
        }
        drop(srv);
    }
    Ok(())
}
