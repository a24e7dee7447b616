//! Continuous backup through the real binary: `serve --backup-to` ships the journal to a
//! target folder; kill -9 under write load then restoring from the target keeps every write
//! acknowledged more than a second before the kill; a restore to a time between two writes is
//! exactly the state the server showed then; catch-up after a move loses nothing; a second
//! server on the same target is refused.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PW: &str = "shipping-test-1";

/// Every record of `entity` the server lists, by id.
async fn listing(base: &str, tok: &str, entity: &str) -> BTreeMap<String, Value> {
    all_items(base, tok, &format!("{entity}?limit=200"))
        .await
        .into_iter()
        .map(|it| (it["id"].as_str().unwrap().to_string(), it))
        .collect()
}

/// `kontor serve` of `data` with `target`, expected to refuse and exit.
fn serve_refused(data: &Path, target: &Path) -> std::process::Output {
    run(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--backup-to",
        target.to_str().unwrap(),
    ])
}

async fn create(base: &str, tok: &str, entity: &str, body: Value) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/{entity}"))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// `kontor backup status --to TARGET` output.
fn status(target: &Path) -> String {
    let o = run(&["backup", "status", "--to", target.to_str().unwrap()]);
    assert!(o.status.success(), "backup status: {}", stderr(&o));
    stdout(&o)
}

/// The shipped seq `backup status` reports.
fn shipped_seq(target: &Path) -> i64 {
    let s = status(target);
    s.lines()
        .find_map(|l| l.strip_prefix("shipped:"))
        .and_then(|v| v.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Waits until the target holds a verified snapshot.
fn wait_for_snapshot(target: &Path) {
    for _ in 0..200 {
        if status(target).contains("verified ") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no verified snapshot in the target: {}", status(target));
}

fn restore(args: &[&str]) -> String {
    let mut all = vec!["restore"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "restore {args:?}: {}", stderr(&o));
    stdout(&o)
}

#[tokio::test]
async fn kill_9_under_write_load_then_restore_from_the_target_loses_no_write_older_than_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(&data, &["--backup-to", target.to_str().unwrap()]);
    wait_for_snapshot(&target);
    let tok = token(&srv.base, "a@k.ru", PW).await;

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (stop, acked, tok, base) = (stop.clone(), acked.clone(), tok.clone(), srv.base.clone());
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let sent = client
                    .post(format!("{base}/api/v1/companies"))
                    .bearer_auth(&tok)
                    .json(&json!({"name": format!("W{w} #{i}")}))
                    .send()
                    .await;
                // The kill cuts requests in flight; only acknowledged ones count.
                let Ok(r) = sent else { break };
                if r.status() != StatusCode::CREATED {
                    break;
                }
                let Ok(body) = r.json::<Value>().await else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push((Instant::now(), body["id"].as_str().unwrap().to_string()));
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let killed = Instant::now();
    srv.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let old: Vec<&String> = acked
        .iter()
        .filter(|(t, _)| killed.duration_since(*t) > Duration::from_secs(1))
        .map(|(_, id)| id)
        .collect();
    assert!(
        old.len() > 20,
        "the writers wrote before the kill: {}",
        old.len()
    );

    let restored = dir.path().join("restored");
    let out = restore(&[
        "--from",
        target.to_str().unwrap(),
        "--data",
        restored.to_str().unwrap(),
    ]);
    assert!(out.contains("replayed:"), "{out}");
    let copy = Server::start(&restored);
    let tok = token(&copy.base, "a@k.ru", PW).await;
    let have = listing(&copy.base, &tok, "companies").await;
    for id in old {
        assert!(
            have.contains_key(id),
            "company {id}, acknowledged over a second before the kill, is missing"
        );
    }
    // Nothing that was never sent is there (requests cut by the kill may or may not be).
    let all: BTreeSet<&String> = acked.iter().map(|(_, id)| id).collect();
    let unacked = have.keys().filter(|id| !all.contains(id)).count();
    assert!(unacked <= 4, "{unacked} companies nobody was told about");
}

#[tokio::test]
async fn restore_to_a_time_between_writes_is_the_state_shown_then_and_catch_up_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(
        &data,
        &[
            "--backup-to",
            target.to_str().unwrap(),
            "--backup-interval-ms",
            "200",
        ],
    );
    wait_for_snapshot(&target);
    let tok = token(&srv.base, "a@k.ru", PW).await;
    let client = reqwest::Client::new();

    // First state: two companies and a contact.
    let a = create(&srv.base, &tok, "companies", json!({"name": "Alpha"})).await;
    let a_id = a["id"].as_str().unwrap().to_string();
    create(&srv.base, &tok, "companies", json!({"name": "Beta"})).await;
    create(
        &srv.base,
        &tok,
        "contacts",
        json!({"first_name": "Ivan", "company_id": a_id}),
    )
    .await;
    let first_companies = listing(&srv.base, &tok, "companies").await;
    let first_contacts = listing(&srv.base, &tok, "contacts").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Later: a rename, a deletion into the bin (with its cascade), a new company, and a new
    // user with a password.
    let r = client
        .patch(format!("{}/api/v1/companies/{a_id}", srv.base))
        .bearer_auth(&tok)
        .json(&json!({"name": "Alpha Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .delete(format!("{}/api/v1/companies/{a_id}", srv.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    create(&srv.base, &tok, "companies", json!({"name": "Gamma"})).await;
    let r = client
        .post(format!("{}/api/v1/users", srv.base))
        .bearer_auth(&tok)
        .json(&json!({"email": "m@k.ru", "name": "M", "role": "manager", "password": "manager-pass-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );

    // Wait until everything is shipped.
    let head = {
        let h: Value = client
            .get(format!("{}/api/v1/history?limit=1", srv.base))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        h["items"][0]["seq"].as_i64().unwrap()
    };
    for _ in 0..100 {
        if shipped_seq(&target) >= head {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(shipped_seq(&target), head, "{}", status(&target));
    assert!(
        status(&target).contains("lag:          0 entries"),
        "{}",
        status(&target)
    );

    // Restore to the moment between the writes: exactly what the server listed then.
    let at_between = dir.path().join("between");
    restore(&[
        "--from",
        target.to_str().unwrap(),
        "--data",
        at_between.to_str().unwrap(),
        "--at",
        &between,
    ]);
    {
        let copy = Server::start(&at_between);
        let t = token(&copy.base, "a@k.ru", PW).await;
        assert_eq!(listing(&copy.base, &t, "companies").await, first_companies);
        assert_eq!(listing(&copy.base, &t, "contacts").await, first_contacts);
        let (status, _) = login(&copy.base, "m@k.ru", "manager-pass-1").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "the manager did not exist yet"
        );
    }

    // Restore to the end: the rename and deletion are there, the bin holds Alpha, and the
    // manager logs in with the password set after the snapshot.
    let at_end = dir.path().join("end");
    restore(&[
        "--from",
        target.to_str().unwrap(),
        "--data",
        at_end.to_str().unwrap(),
    ]);
    let live_companies = listing(&srv.base, &tok, "companies").await;
    {
        let copy = Server::start(&at_end);
        let t = token(&copy.base, "a@k.ru", PW).await;
        assert_eq!(listing(&copy.base, &t, "companies").await, live_companies);
        token(&copy.base, "m@k.ru", "manager-pass-1").await;
    }

    // A move: a snapshot archive is restored on the new machine while the old server keeps
    // writing; after the old server stops, catch-up applies what it shipped meanwhile.
    let archive_dir = dir.path().join("moved-archive");
    let o = run(&[
        "backup",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--to",
        archive_dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let archive = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("archive:").map(|v| v.trim().to_string()))
        .unwrap();
    let moved = dir.path().join("moved");
    restore(&["--from", &archive, "--data", moved.to_str().unwrap()]);
    for i in 0..5 {
        create(
            &srv.base,
            &tok,
            "companies",
            json!({"name": format!("Late {i}")}),
        )
        .await;
    }
    let final_companies = listing(&srv.base, &tok, "companies").await;
    assert!(srv.terminate().success());
    let out = restore(&[
        "--catch-up",
        "--from",
        target.to_str().unwrap(),
        "--data",
        moved.to_str().unwrap(),
    ]);
    assert!(out.contains("replayed: 5 journal entries"), "{out}");
    let copy = Server::start(&moved);
    let t = token(&copy.base, "a@k.ru", PW).await;
    assert_eq!(listing(&copy.base, &t, "companies").await, final_companies);
}

#[tokio::test]
async fn a_second_server_on_the_same_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(&data, &["--backup-to", target.to_str().unwrap()]);
    wait_for_snapshot(&target);

    // Another database: the target holds someone else's history.
    let other = dir.path().join("other");
    init_data(&other, "b@k.ru", PW);
    let o = serve_refused(&other, &target);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("another database"), "{}", stderr(&o));

    // A copy of the same database at the same point, while the first server runs.
    let copy = dir.path().join("copy");
    restore(&[
        "--from",
        target.to_str().unwrap(),
        "--data",
        copy.to_str().unwrap(),
    ]);
    let o = serve_refused(&copy, &target);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("one server per target"),
        "{}",
        stderr(&o)
    );
    drop(srv);
}

#[tokio::test]
async fn a_postgresql_server_ships_and_restores_to_a_point_in_either_engine() {
    if kontor_testkit::skip_postgres("a_postgresql_server_ships") {
        return;
    }
    let pg = kontor_testkit::postgres().unwrap();
    let (live_url, copy_url) = (pg.fresh_database().await, pg.fresh_database().await);
    let dir = tempfile::tempdir().unwrap();
    let (node, target) = (dir.path().join("node"), dir.path().join("target"));
    let srv = Server::start_with(
        &node,
        &[
            "--database",
            &live_url,
            "--backup-to",
            target.to_str().unwrap(),
            "--backup-interval-ms",
            "200",
        ],
    );
    wait_for_snapshot(&target);
    let password = srv
        .banner
        .iter()
        .find_map(|l| l.strip_prefix("admin password:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let tok = token(&srv.base, "admin@kontor.local", &password).await;
    for i in 0..30 {
        create(
            &srv.base,
            &tok,
            "companies",
            json!({"name": format!("PG {i}")}),
        )
        .await;
    }
    let first = listing(&srv.base, &tok, "companies").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..10 {
        create(
            &srv.base,
            &tok,
            "companies",
            json!({"name": format!("Later {i}")}),
        )
        .await;
    }
    assert!(srv.terminate().success());
    assert!(
        status(&target).contains("stopped cleanly"),
        "{}",
        status(&target)
    );

    // Into an empty PostgreSQL database and into a SQLite data directory: the same state.
    restore(&[
        "--from",
        target.to_str().unwrap(),
        "--database",
        &copy_url,
        "--at",
        &between,
    ]);
    let sqlite = dir.path().join("sqlite");
    restore(&[
        "--from",
        target.to_str().unwrap(),
        "--data",
        sqlite.to_str().unwrap(),
        "--at",
        &between,
    ]);
    for extra in [vec!["--database", copy_url.as_str()], vec![]] {
        let place = if extra.is_empty() {
            sqlite.clone()
        } else {
            dir.path().join("pg-copy")
        };
        let copy = Server::start_with(&place, &extra);
        let t = token(&copy.base, "admin@kontor.local", &password).await;
        assert_eq!(listing(&copy.base, &t, "companies").await, first);
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn an_encrypted_target_restores_only_with_its_passphrase_and_keeps_nothing_readable() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    let (pass, wrong) = (dir.path().join("pass"), dir.path().join("wrong"));
    std::fs::write(&pass, "Gutes Passwort 2026\n").unwrap();
    std::fs::write(&wrong, "Falsches Passwort\n").unwrap();
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(
        &data,
        &[
            "--backup-to",
            target.to_str().unwrap(),
            "--backup-passphrase-file",
            pass.to_str().unwrap(),
        ],
    );
    wait_for_snapshot(&target);
    let tok = token(&srv.base, "a@k.ru", PW).await;
    let secret_name = "Geheimnisvolle Handelsgesellschaft";
    let before = shipped_seq(&target);
    create(&srv.base, &tok, "companies", json!({"name": secret_name})).await;
    for _ in 0..100 {
        if shipped_seq(&target) > before {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(srv.terminate().success());

    // Segments and snapshots are age files; the company's name is nowhere in plain text.
    let files = files_under(&target);
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".jsonl.zst.age")),
        "{files:?}"
    );
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes
                .windows(secret_name.len())
                .any(|w| w == secret_name.as_bytes()),
            "{} holds the name in plain text",
            f.display()
        );
    }

    // Without the passphrase, or with a wrong one: refused, and nothing is left behind.
    let copy = dir.path().join("copy");
    let from = target.to_str().unwrap();
    let o = run(&["restore", "--from", from, "--data", copy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("passphrase"), "{}", stderr(&o));
    assert!(!copy.exists(), "a refused restore left {}", copy.display());
    let o = run(&[
        "restore",
        "--from",
        from,
        "--data",
        copy.to_str().unwrap(),
        "--passphrase-file",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not open"), "{}", stderr(&o));
    assert!(!copy.exists());

    // A server without the key, or with another passphrase, may not ship here.
    let o = serve_refused(&data, &target);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(stderr(&o).contains("is encrypted"), "{}", stderr(&o));

    // With it: the company is back, and the archive verifies with the same passphrase.
    let out = kontor()
        .args(["restore", "--from", from, "--data", copy.to_str().unwrap()])
        .env("KONTOR_BACKUP_PASSPHRASE", "Gutes Passwort 2026")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let srv = Server::start(&copy);
    let t = token(&srv.base, "a@k.ru", PW).await;
    let names: Vec<String> = listing(&srv.base, &t, "companies")
        .await
        .values()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, vec![secret_name.to_string()]);
    let archive = files
        .iter()
        .find(|f| f.to_string_lossy().ends_with(".kontor.tar"))
        .unwrap();
    let o = run(&[
        "backup",
        "verify",
        archive.to_str().unwrap(),
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[tokio::test]
async fn an_s3_target_ships_snapshots_lists_prunes_and_restores_end_to_end() {
    let Some(s3) = kontor_testkit::s3::S3Server::start("an_s3_target_ships") else {
        return;
    };
    let env = s3.env();
    let with_env = |args: &[&str]| {
        kontor()
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .output()
            .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    let url = format!("s3://{}/prod/kontor", kontor_testkit::s3::BUCKET);
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_env(
        &data,
        &["--backup-to", &url, "--backup-interval-ms", "200"],
        &env,
    );
    let tok = token(&srv.base, "a@k.ru", PW).await;
    let first = create(&srv.base, &tok, "companies", json!({"name": "Erste GmbH"})).await;
    let between = chrono::Utc::now();
    std::thread::sleep(Duration::from_millis(50));
    create(&srv.base, &tok, "companies", json!({"name": "Zweite GmbH"})).await;
    let status_of = |with_env: &dyn Fn(&[&str]) -> std::process::Output| {
        let o = with_env(&["backup", "status", "--to", &url]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    // Shipped up to the newest entry, with a verified snapshot, as `backup status` reads them
    // from the bucket.
    let head = all_items(&srv.base, &tok, "history?limit=1").await[0]["seq"]
        .as_i64()
        .unwrap();
    let shipped_line = format!("shipped:      seq {head} ");
    let mut last = String::new();
    for _ in 0..200 {
        last = status_of(&with_env);
        if last.contains(&shipped_line) && last.contains("verified ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(last.contains(&shipped_line), "{last}");
    assert!(last.contains("lag:          0 entries"), "{last}");
    assert!(last.contains("verified "), "{last}");

    // A second server on the same bucket is refused (no flock there: the heartbeat says it).
    let other = dir.path().join("copy");
    let o = with_env(&["restore", "--from", &url, "--data", other.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = kontor()
        .args([
            "serve",
            "--data",
            other.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--backup-to", &url])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("one server per target"),
        "{}",
        stderr(&o)
    );
    assert!(srv.terminate().success());

    // The restored copy has both; a point between the writes has only the first.
    let copy = Server::start(&other);
    let t = token(&copy.base, "a@k.ru", PW).await;
    assert_eq!(listing(&copy.base, &t, "companies").await.len(), 2);
    drop(copy);
    let early = dir.path().join("early");
    let at = between.to_rfc3339();
    let o = with_env(&[
        "restore",
        "--from",
        &url,
        "--data",
        early.to_str().unwrap(),
        "--at",
        &at,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let srv = Server::start(&early);
    let t = token(&srv.base, "a@k.ru", PW).await;
    let names: Vec<Value> = listing(&srv.base, &t, "companies")
        .await
        .into_values()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(names, vec![first["name"].clone()]);
    drop(srv);

    // A second snapshot into the bucket (after the one taken at start and the verified final one
    // the stop took), every archive verified from there, the older ones pruned.
    let o = with_env(&[
        "backup",
        "create",
        "--data",
        data.to_str().unwrap(),
        "--to",
        &url,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("archive:  {url}/snapshots/kontor-")),
        "{}",
        stdout(&o)
    );
    let o = with_env(&["backup", "verify", "--all", "--to", &url]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("3 of 3 archives verified"),
        "{}",
        stdout(&o)
    );
    let o = with_env(&["backup", "prune", "--to", &url, "--keep-daily", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("removed 2 archives"), "{}", stdout(&o));
    let o = with_env(&["backup", "list", "--to", &url]);
    let listed = stdout(&o);
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("kontor-")).count(),
        1,
        "{listed}"
    );
    // What is left restores to the end, with the log of it all in the bucket.
    let last = dir.path().join("last");
    let o = with_env(&["restore", "--from", &url, "--data", last.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}
