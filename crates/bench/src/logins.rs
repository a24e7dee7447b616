//! Logins under load, on the real binary: one login at a time and a burst of concurrent logins
//! (half correct, half guesses at unknown accounts, each from its own client address behind a
//! trusted proxy, so the rate limiter lets all of them reach the hasher). The baseline is the
//! limit of the machine: one bare argon2id hash with Kontor's parameters, in this process, and
//! that hash times the burst divided by the cores.

use crate::{init, peak_rss_mib, percentiles, start_server, Report, ADMIN, PASSWORD};
use argon2::Argon2;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Median time of one bare argon2id hash with the default parameters (19 MiB, t=2, p=1).
fn bare_hash() -> Duration {
    let mut times = Vec::new();
    let mut out = [0u8; 32];
    for i in 0..9u8 {
        let t = Instant::now();
        let _ = Argon2::default().hash_password_into(b"a login password", &[i; 16], &mut out);
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

pub async fn measure(
    bin: &Path,
    work: &Path,
    burst: usize,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let data = work.join("logins");
    let data_arg = data.to_str().ok_or("path")?;
    init(bin, &["--data", data_arg])?;
    let server = start_server(bin, &["--data", data_arg, "--trusted-proxies", "127.0.0.1"])?;
    let pid = server.child.id();
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let hash = bare_hash();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let start_mib = rss_mib(pid).unwrap_or(0.0);

    let mut single = Vec::new();
    for i in 0..20 {
        let t = Instant::now();
        let status = client
            .post(format!("{base}/api/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({"email": ADMIN, "password": PASSWORD}))
            .send()
            .await?
            .status();
        if !status.is_success() {
            return Err(format!("login failed: {status}").into());
        }
        single.push(t.elapsed());
    }

    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..burst {
        let client = client.clone();
        let url = format!("{base}/api/v1/auth/login");
        let body = if i % 2 == 0 {
            json!({"email": ADMIN, "password": PASSWORD})
        } else {
            json!({"email": format!("guess{i}@bench.test"), "password": "wrong-guess"})
        };
        let xff = format!("198.51.{}.{}", i / 250, i % 250);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("x-forwarded-for", xff)
                .json(&body)
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    let mut answered = 0;
    for task in tasks {
        if matches!(task.await?, Ok(200 | 401)) {
            answered += 1;
        }
    }
    let wall = t.elapsed();
    let limit = hash.as_secs_f64() * burst as f64 / cores as f64;

    let (p50, p99) = percentiles(single);
    report.row(
        "argon2id hash, bare (m=19 MiB, t=2): median",
        format!("{:.1} ms", hash.as_secs_f64() * 1000.0),
    );
    report.row(
        "login, one at a time: p50 / p99",
        format!("{p50:.1} ms / {p99:.1} ms"),
    );
    report.row(
        &format!("{burst} concurrent logins: all answered in"),
        format!(
            "{:.2} s ({answered} of {burst} answered 200/401; limit {cores} cores: {limit:.2} s, ratio {:.2}x)",
            wall.as_secs_f64(),
            wall.as_secs_f64() / limit.max(1e-9)
        ),
    );
    let (peak, after) = (
        peak_rss_mib(pid).unwrap_or(0.0),
        rss_mib(pid).unwrap_or(0.0),
    );
    tokio::time::sleep(kontor_core::auth::password::IDLE_RELEASE + Duration::from_secs(2)).await;
    report.row(
        "  server memory: at start / peak / after the burst / idle",
        format!(
            "{start_mib:.0} / {peak:.0} / {after:.0} / {:.0} MiB",
            rss_mib(pid).unwrap_or(0.0)
        ),
    );
    Ok(())
}
