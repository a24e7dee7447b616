//! The announced shutdown through the real binary: 100 clients write while `kontor shutdown
//! --in` counts down; at the time every acknowledged write is in the verified final snapshot,
//! every refused one got a clean 503, the process exits 0 and leaves no `-wal` file. A manager's
//! shutdown is refused and recorded; SIGTERM under load takes the same path; maintenance
//! switched from the CLI refuses writes with its message.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PW: &str = "shutdown-test-1";
const WRITERS: usize = 100;

/// What the writers saw: the ids of acknowledged creates, and every other answer.
#[derive(Default)]
struct Seen {
    acknowledged: BTreeSet<String>,
    refused_503: usize,
    other: Vec<String>,
}

/// `WRITERS` clients creating contacts until the server refuses or goes away.
fn start_writers(
    base: &str,
    tok: &str,
    seen: Arc<Mutex<Seen>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let (base, tok, seen) = (base.to_string(), tok.to_string(), seen.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                for i in 0.. {
                    let sent = client
                        .post(format!("{base}/api/v1/contacts"))
                        .bearer_auth(&tok)
                        .json(&json!({"first_name": format!("W{w}"), "last_name": format!("N{i}")}))
                        .send()
                        .await;
                    let Ok(resp) = sent else {
                        // The server has gone: it refused with 503 before (checked below).
                        return;
                    };
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    let refused = {
                        let mut s = seen.lock().unwrap();
                        match status {
                            StatusCode::CREATED => {
                                s.acknowledged
                                    .insert(body["id"].as_str().unwrap().to_string());
                                false
                            }
                            StatusCode::SERVICE_UNAVAILABLE
                                if body["error"]["code"] == "read_only" =>
                            {
                                s.refused_503 += 1;
                                true
                            }
                            other => {
                                s.other.push(format!("{other}: {body}"));
                                false
                            }
                        }
                    };
                    if refused {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect()
}

/// Waits for the server to exit by itself.
fn wait_exit(srv: &mut Server, within: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    while start.elapsed() < within {
        if let Some(status) = srv.child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not exit within {within:?}");
}

/// The ids of the contacts in the archive the server reported as its final snapshot,
/// restored into a new data directory.
fn contacts_in_final_snapshot(srv: &Server, data: &Path, scratch: &Path) -> BTreeSet<String> {
    let said = srv.output.lock().unwrap().join("\n");
    let archive = said
        .lines()
        .find_map(|l| l.strip_prefix("Stopped. Final snapshot "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no final snapshot reported: {said}"))
        .to_string();
    let path = data.join("backups").join(&archive);
    assert!(path.exists(), "{} is missing", path.display());
    let out = run(&[
        "restore",
        "--from",
        path.to_str().unwrap(),
        "--data",
        scratch.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "restore: {}", stderr(&out));
    let out = run(&[
        "export",
        "--entity",
        "contacts",
        "--data",
        scratch.to_str().unwrap(),
        "--format",
        "jsonl",
        "--to",
        "-",
    ]);
    assert!(out.status.success(), "export: {}", stderr(&out));
    stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn no_wal_left(data: &Path) {
    let left: Vec<_> = std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-wal") || n.ends_with("-shm") || n.ends_with(".sock"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn check(seen: &Seen, in_snapshot: &BTreeSet<String>) {
    assert!(
        seen.other.is_empty(),
        "answers neither 201 nor a clean 503: {:?}",
        &seen.other[..seen.other.len().min(5)]
    );
    assert!(
        seen.acknowledged.len() > WRITERS,
        "too few writes to tell: {}",
        seen.acknowledged.len()
    );
    assert!(
        seen.refused_503 >= WRITERS / 2,
        "writers were not refused cleanly: {}",
        seen.refused_503
    );
    let lost: Vec<_> = seen.acknowledged.difference(in_snapshot).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes are not in the final snapshot, e.g. {:?}",
        lost.len(),
        lost.first()
    );
}

/// Waits for the server to exit 0 by itself and the writers to end; checks no `-wal` is left
/// and every acknowledged write is in the final snapshot; returns the snapshot's contacts.
async fn stopped_cleanly(
    mut srv: Server,
    writers: Vec<tokio::task::JoinHandle<()>>,
    seen: &Mutex<Seen>,
    data: &Path,
    scratch: &Path,
) -> BTreeSet<String> {
    let (status, srv) = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut srv, Duration::from_secs(60));
        (status, srv)
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    for w in writers {
        w.await.unwrap();
    }
    no_wal_left(data);
    let in_snapshot = contacts_in_final_snapshot(&srv, data, &scratch.join("restored"));
    check(&seen.lock().unwrap(), &in_snapshot);
    in_snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduled_shutdown_under_100_writers_loses_nothing_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start(&data);
    let base = srv.base.clone();
    let admin = token(&base, "a@k.ru", PW).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "m@k.ru", "name": "M", "role": "manager", "password": PW}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let manager = token(&base, "m@k.ru", PW).await;
    let d = data.to_str().unwrap();

    // A manager may not; the attempt is said and recorded.
    let out = run(&["shutdown", "--data", d, "--in", "1s", "--as", "m@k.ru"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("only administrators"),
        "{}",
        stderr(&out)
    );
    let out = run(&["shutdown", "--data", d, "--status"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("no shutdown is scheduled"),
        "{}",
        stdout(&out)
    );

    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers = start_writers(&base, &manager, seen.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = run(&[
        "shutdown",
        "--data",
        d,
        "--in",
        "3s",
        "--message",
        "Wartung bis 15 Uhr",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Wartung bis 15 Uhr"),
        "{}",
        stdout(&out)
    );
    let told: Value = reqwest::Client::new()
        .get(format!("{base}/api/v1/announcements"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(told["announcements"][0]["kind"], "shutdown", "{told}");
    assert_eq!(told["announcements"][0]["message"], "Wartung bis 15 Uhr");

    let in_snapshot = stopped_cleanly(srv, writers, &seen, &data, dir.path()).await;
    let out = run(&[
        "export", "--entity", "contacts", "--data", d, "--format", "jsonl", "--to", "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count(),
        in_snapshot.len(),
        "the final snapshot is the whole live state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_takes_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start(&data);
    let base = srv.base.clone();
    let admin = token(&base, "a@k.ru", PW).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let writers = start_writers(&base, &admin, seen.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pid = srv.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    stopped_cleanly(srv, writers, &seen, &data, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_from_the_cli_refuses_writes_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    init_data(&data, "a@k.ru", PW);
    let d = data.to_str().unwrap();
    // With no server: written to the database, found by the server that starts.
    let out = run(&[
        "maintenance",
        "on",
        "--data",
        d,
        "--message",
        "Umzug",
        "--retry-after",
        "120",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("read-only (maintenance)"),
        "{}",
        stdout(&out)
    );
    let srv = Server::start(&data);
    let base = srv.base.clone();
    let admin = token(&base, "a@k.ru", PW).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/companies"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Альфа"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "120");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("Umzug"),
        "{body}"
    );
    // Through the running server.
    let out = run(&["maintenance", "status", "--data", d, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let state: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(state["reason"], "maintenance");
    let out = run(&["maintenance", "off", "--data", d]);
    assert!(out.status.success(), "{}", stderr(&out));
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/v1/companies"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Альфа"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    drop(srv);
}
