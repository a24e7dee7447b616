//! Password hashing is bounded: a burst of concurrent logins (each argon2id hash needs 19 MiB)
//! keeps the real server's memory flat, and the memory is not kept growing after the burst.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

/// A line of `/proc/<pid>/status` in KiB (`VmHWM`: peak resident memory; `VmRSS`: now).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("memory field")
}

#[tokio::test]
async fn forty_eight_parallel_logins_keep_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    init_data(&data, "a@k.ru", "memory-test-1");
    // Trusting the loopback proxy lets every request below come from its own client address,
    // so the rate limiter lets all of them through to the hasher.
    let srv = Server::start_with(&data, &["--trusted-proxies", "127.0.0.1"]);
    let pid = srv.child.id();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for round in 0..2 {
        let mut tasks = Vec::new();
        for i in 0..48 {
            let client = client.clone();
            let url = format!("{}/api/v1/auth/login", srv.base);
            // Half log in correctly, half guess at accounts that do not exist.
            let body = if i % 2 == 0 {
                json!({"email": "a@k.ru", "password": "memory-test-1"})
            } else {
                json!({"email": format!("nobody{round}-{i}@k.ru"), "password": "wrong-guess-1"})
            };
            let xff = format!("198.51.{round}.{i}");
            tasks.push(tokio::spawn(async move {
                client
                    .post(url)
                    .header("x-forwarded-for", xff)
                    .json(&body)
                    .send()
                    .await
                    .expect("login")
                    .status()
            }));
        }
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!((ok, unauthorized), (48, 48), "{statuses:?}");
    let peak_mib = proc_kib(pid, "VmHWM") / 1024;
    let after_mib = proc_kib(pid, "VmRSS") / 1024;
    assert!(
        peak_mib < 200,
        "peak memory {peak_mib} MiB during 96 logins"
    );
    // Once hashing has been idle for a while, its buffers are given back. The release runs
    // on a timer, which a busy machine (CI runs tests in parallel on 2 cores) may delay: poll
    // for it instead of sleeping a fixed time.
    std::thread::sleep(kontor_core::auth::password::IDLE_RELEASE);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut idle_mib = proc_kib(pid, "VmRSS") / 1024;
    while idle_mib + 19 >= peak_mib && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(250));
        idle_mib = proc_kib(pid, "VmRSS") / 1024;
    }
    eprintln!(
        "server memory: peak {peak_mib} MiB, right after the bursts {after_mib} MiB, idle {idle_mib} MiB"
    );
    assert!(
        idle_mib + 19 < peak_mib,
        "memory did not return after the burst: peak {peak_mib} MiB, idle {idle_mib} MiB"
    );
}
