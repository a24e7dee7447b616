//! Retention, pins and verification of archive folders and targets through the real binary:
//! `backup list` says what retention keeps and why, `backup prune` removes only the rest (and
//! a target's segments before the oldest kept snapshot), pinned and newest-verified archives
//! survive, `backup verify --all` names a damaged archive, every step is in the folder's log,
//! and kill -9 during a snapshot leaves earlier archives valid and no partial one listed.

use crate::support::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const PW: &str = "retention-test-1";

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// `backup create --to DIR` of `data`; returns the archive's path.
fn create_archive(data: &Path, to: &Path) -> PathBuf {
    let out = ok(&[
        "backup",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("archive:"))
        .unwrap()
        .trim()
        .to_string();
    PathBuf::from(path)
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().to_string()
}

/// The listing line of an archive.
fn line_of<'a>(listing: &'a str, archive: &Path) -> &'a str {
    let n = name(archive);
    listing
        .lines()
        .find(|l| l.starts_with(&n))
        .unwrap_or_else(|| panic!("{n} not listed:\n{listing}"))
}

/// Adds `n` contacts through the batch API, 1000 at a time.
async fn seed(base: &str, tok: &str, n: usize) {
    let client = reqwest::Client::new();
    for start in (0..n).step_by(1000) {
        let ops: Vec<Value> = (start..(start + 1000).min(n))
            .map(|i| {
                json!({"op": "create", "entity": "contacts", "data": {
                    "first_name": format!("Vorname{i}"),
                    "last_name": format!("Nachname {i} {}", "x".repeat(i % 97)),
                    "email": format!("person{i}@example.com"),
                    "notes": format!("Kunde seit {}; {}", 2000 + i % 25, "Notiz ".repeat(i % 40)),
                }})
            })
            .collect();
        let r = client
            .post(format!("{base}/api/v1/batch"))
            .bearer_auth(tok)
            .json(&json!({"operations": ops}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }
}

#[tokio::test]
async fn prune_keeps_the_newest_the_pinned_and_the_newest_verified_and_verify_all_names_damage() {
    let dir = tempfile::tempdir().unwrap();
    let (data, to) = (dir.path().join("data"), dir.path().join("archives"));
    init_data(&data, "a@k.ru", PW);
    let archives: Vec<PathBuf> = (0..4).map(|_| create_archive(&data, &to)).collect();
    let to_s = to.to_str().unwrap();
    ok(&["backup", "verify", archives[1].to_str().unwrap()]);
    ok(&[
        "backup",
        "pin",
        archives[0].to_str().unwrap(),
        "--note",
        "before the upgrade",
    ]);

    let listing = ok(&["backup", "list", "--to", to_s]);
    assert!(
        line_of(&listing, &archives[3]).contains("keep: newest, daily"),
        "{listing}"
    );
    assert!(
        line_of(&listing, &archives[2]).contains("PRUNE"),
        "{listing}"
    );
    assert!(
        line_of(&listing, &archives[1]).contains("keep: newest verified"),
        "{listing}"
    );
    assert!(
        line_of(&listing, &archives[1]).contains(" ok "),
        "{listing}"
    );
    let pinned = line_of(&listing, &archives[0]);
    assert!(
        pinned.contains("keep: pinned (before the upgrade)"),
        "{listing}"
    );

    let dry = ok(&["backup", "prune", "--to", to_s, "--dry-run"]);
    assert!(
        dry.contains(&format!("would remove: {}", name(&archives[2]))),
        "{dry}"
    );
    assert!(archives[2].exists(), "a dry run removes nothing");
    let done = ok(&["backup", "prune", "--to", to_s]);
    assert!(
        done.contains(&format!("removed: {}", name(&archives[2]))),
        "{done}"
    );
    assert!(!archives[2].exists());
    for kept in [&archives[0], &archives[1], &archives[3]] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }

    // Unpinned and no longer the newest verified once the newest is verified: pruned.
    ok(&["backup", "unpin", archives[0].to_str().unwrap()]);
    let all = ok(&["backup", "verify", "--all", "--to", to_s]);
    assert!(all.contains("3 of 3 archives verified"), "{all}");
    ok(&["backup", "prune", "--to", to_s]);
    assert!(!archives[0].exists() && !archives[1].exists());
    assert!(archives[3].exists());

    // A flipped bit: verify --all fails, naming the archive and the part.
    let second = create_archive(&data, &to);
    let mut bytes = std::fs::read(&second).unwrap();
    let mid = bytes.len() / 3;
    bytes[mid] ^= 0x40;
    std::fs::write(&second, bytes).unwrap();
    let o = run(&["backup", "verify", "--all", "--to", to_s]);
    assert_eq!(o.status.code(), Some(8), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(&format!("FAILED  {}", name(&second))), "{out}");
    assert!(out.contains("1 of 2 archives verified"), "{out}");
    let listing = ok(&["backup", "list", "--to", to_s]);
    let damaged = line_of(&listing, &second);
    assert!(
        damaged.contains("FAILED") || damaged.contains("unreadable"),
        "{listing}"
    );

    // Everything above is in the folder's log, with who did it.
    let log = std::fs::read_to_string(to.join("backup-log.jsonl")).unwrap();
    for action in ["create", "verify", "pin", "unpin", "prune"] {
        assert!(
            log.contains(&format!("\"action\":\"{action}\"")),
            "{action} missing from the log:\n{log}"
        );
    }
    assert!(log.contains("\"by\":\"cli:"), "{log}");
    assert!(
        log.contains("\"ok\":false"),
        "the failed verification is logged"
    );
}

#[tokio::test]
async fn pruning_a_target_removes_old_snapshots_and_the_segments_before_the_oldest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    init_data(&data, "a@k.ru", PW);
    let t = target.to_str().unwrap();
    let srv = Server::start_with(&data, &["--backup-to", t, "--backup-interval-ms", "100"]);
    let tok = token(&srv.base, "a@k.ru", PW).await;
    seed(&srv.base, &tok, 20).await;
    let first = loop {
        let snaps = std::fs::read_dir(target.join("snapshots"))
            .map(|d| d.flatten().count())
            .unwrap_or(0);
        if snaps > 0 {
            break std::fs::read_dir(target.join("snapshots")).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(first);
    // Entries after the first snapshot go out as segments; then a second snapshot.
    for _ in 0..3 {
        seed(&srv.base, &tok, 5).await;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(srv.terminate().success());
    let segments_before = std::fs::read_dir(target.join("journal")).unwrap().count();
    assert!(segments_before >= 2, "{segments_before} segments");
    let second = create_archive(&data, &target);
    ok(&["backup", "verify", "--all", "--to", t]);

    // The first snapshot and the final one the server took when it stopped go.
    let out = ok(&["backup", "prune", "--to", t, "--keep-daily", "1"]);
    assert!(out.contains("removed 2 archives"), "{out}");
    let left: Vec<String> = std::fs::read_dir(target.join("journal"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        left.is_empty(),
        "segments before the kept snapshot remain: {left:?}"
    );
    let status = ok(&["backup", "status", "--to", t]);
    assert!(status.contains(&name(&second)), "{status}");

    // The target still restores to its end; points before the kept snapshot are gone.
    let copy = dir.path().join("copy");
    ok(&["restore", "--from", t, "--data", copy.to_str().unwrap()]);
    let o = run(&[
        "restore",
        "--from",
        t,
        "--data",
        dir.path().join("early").to_str().unwrap(),
        "--seq",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no snapshot at or before"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test]
async fn kill_9_during_a_snapshot_leaves_earlier_archives_valid_and_no_partial_listed() {
    let dir = tempfile::tempdir().unwrap();
    let (data, to) = (dir.path().join("data"), dir.path().join("archives"));
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start(&data);
    let tok = token(&srv.base, "a@k.ru", PW).await;
    seed(&srv.base, &tok, 8000).await;
    let earlier = create_archive(&data, &to);

    // The slowest compression, so the snapshot is surely still being written when killed.
    let mut child = kontor()
        .args(["backup", "create", "--level", "19", "--data"])
        .arg(&data)
        .arg("--to")
        .arg(&to)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let partial = |to: &Path| {
        std::fs::read_dir(to)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    };
    for _ in 0..400 {
        if partial(&to) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the snapshot finished before it could be killed; seed more data"
    );
    drop(srv);

    assert!(
        partial(&to),
        "the killed writer's temporary file is there, hidden"
    );
    let to_s = to.to_str().unwrap();
    let listing = ok(&["backup", "list", "--to", to_s]);
    let listed: Vec<&str> = listing
        .lines()
        .filter(|l| l.starts_with("kontor-"))
        .collect();
    assert_eq!(listed.len(), 1, "{listing}");
    assert!(listed[0].starts_with(&name(&earlier)), "{listing}");
    let all = ok(&["backup", "verify", "--all", "--to", to_s]);
    assert!(all.contains("1 of 1 archives verified"), "{all}");
}
