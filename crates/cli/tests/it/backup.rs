//! Backups through the real binary: a snapshot taken while four clients write to a running
//! server is consistent at one seq, holds every write acknowledged before it began, restores
//! into a new data directory where the old password works, and verifies; misuse is refused
//! with a clear message.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {out}"))
}

#[tokio::test]
async fn a_snapshot_under_four_writers_restores_to_a_consistent_point() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    init_data(&data, "a@k.ru", "backup-test-1");
    let srv = Server::start(&data);
    let tok = token(&srv.base, "a@k.ru", "backup-test-1").await;

    // Four writers create companies until told to stop, noting each acknowledged id.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(std::time::Instant, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (stop, acked, tok, base) = (stop.clone(), acked.clone(), tok.clone(), srv.base.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{base}/api/v1/companies"))
                    .bearer_auth(&tok)
                    .json(&json!({"name": format!("W{w} #{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::CREATED);
                let id = r.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                acked.lock().unwrap().push((std::time::Instant::now(), id));
                i += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let began = std::time::Instant::now();
    let backups = dir.path().join("backups");
    let out = tokio::task::spawn_blocking({
        let (data, backups) = (data.clone(), backups.clone());
        move || {
            run(&[
                "backup",
                "create",
                "--data",
                data.to_str().unwrap(),
                "--to",
                backups.to_str().unwrap(),
            ])
        }
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(out.status.success(), "backup create: {}", stderr(&out));
    let text = stdout(&out);
    let archive = field(&text, "archive:");
    let seq: i64 = field(&text, "seq:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    let after = acked.iter().filter(|(t, _)| *t > began).count();
    assert!(after > 0, "the writers kept writing while the snapshot ran");

    // Verify, then restore into a new data directory and look at it through a server.
    let v = run(&["backup", "verify", &archive]);
    assert!(v.status.success(), "verify: {}", stderr(&v));
    assert!(stdout(&v).contains("verified:"));
    let restored = dir.path().join("restored");
    let r = run(&[
        "restore",
        "--from",
        &archive,
        "--data",
        restored.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "restore: {}", stderr(&r));
    assert!(stdout(&r).contains("proved equal"), "{}", stdout(&r));
    drop(srv);

    let copy = Server::start(&restored);
    let tok = token(&copy.base, "a@k.ru", "backup-test-1").await;
    let ids: BTreeSet<String> = all_items(&copy.base, &tok, "companies?limit=200")
        .await
        .iter()
        .map(|it| it["id"].as_str().unwrap().to_string())
        .collect();
    // Every write acknowledged before the snapshot began is there; nothing that was never
    // acknowledged is; the restored journal ends exactly at the archive's seq.
    let all: BTreeSet<String> = acked.iter().map(|(_, id)| id.clone()).collect();
    for (t, id) in &acked {
        if *t < began {
            assert!(
                ids.contains(id),
                "company {id} acknowledged before the snapshot is missing"
            );
        }
    }
    assert!(ids.is_subset(&all));
    // One journal entry per company plus the admin user's.
    assert_eq!(
        ids.len() as i64 + 1,
        seq,
        "the restored state is the state at seq {seq}"
    );
}

#[test]
fn restore_refuses_a_non_empty_directory_and_a_missing_archive() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    init_data(&data, "a@k.ru", "backup-test-1");
    let out = run(&["backup", "create", "--data", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let archive = field(&stdout(&out), "archive:");
    let list = run(&["backup", "list", "--data", data.to_str().unwrap()]);
    assert!(stdout(&list).contains("kontor-"), "{}", stdout(&list));

    let r = run(&[
        "restore",
        "--from",
        &archive,
        "--data",
        data.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(10), "{}", stderr(&r));
    assert!(stderr(&r).contains("is not empty"), "{}", stderr(&r));

    let missing = dir.path().join("nope.kontor.tar");
    let target = dir.path().join("new");
    let r = run(&[
        "restore",
        "--from",
        missing.to_str().unwrap(),
        "--data",
        target.to_str().unwrap(),
    ]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("nope.kontor.tar"), "{}", stderr(&r));
    assert!(
        !target.exists(),
        "a failed restore leaves no directory behind"
    );

    // A corrupted archive: the part is named, exit code 8.
    let mut bytes = std::fs::read(&archive).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x01;
    std::fs::write(&archive, bytes).unwrap();
    let v = run(&["backup", "verify", &archive]);
    assert_eq!(v.status.code(), Some(8), "{}", stderr(&v));
    assert!(stderr(&v).contains("is damaged"), "{}", stderr(&v));
}
