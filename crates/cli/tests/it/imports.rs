//! `kontor import` and `kontor export` through the real binary: an import killed with
//! SIGKILL halfway and run again goes on from where it stopped, without a duplicate; an
//! import through a running server's local socket (the server killed halfway takes it up
//! again when it starts); exports while the server runs; misuse refused with its exit code.

use crate::support::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@import.test";
const PASSWORD: &str = "import-password-1";

/// A CSV of `n` contacts with distinct e-mails (semicolons, as Russian Excel writes).
fn contacts_csv(path: &Path, n: usize) {
    let mut s = String::from("Фамилия;Имя;E-mail;Телефон\n");
    for i in 0..n {
        s.push_str(&format!(
            "Фамилия{};Имя{i};user{i}@example.ru;+7 900 {:07}\n",
            i % 97,
            i
        ));
    }
    std::fs::write(path, s).unwrap();
}

/// Contacts in the database, read beside whoever holds it.
fn count_contacts(db: &Path) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM records WHERE entity = 'contacts' AND deleted_batch IS NULL",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

/// Every exported contact's e-mail (JSON Lines on standard output).
fn exported_emails(d: &str) -> Vec<String> {
    let o = run(&[
        "export", "--entity", "contacts", "--format", "jsonl", "--to", "-", "--data", d,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["email"].as_str().unwrap().to_string()
        })
        .collect()
}

fn assert_all_once(emails: &[String], n: usize) {
    let distinct: HashSet<&String> = emails.iter().collect();
    assert_eq!(emails.len(), n, "every row imported");
    assert_eq!(distinct.len(), n, "no row imported twice");
}

#[test]
fn an_import_killed_halfway_goes_on_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    init_data(&data, ADMIN, PASSWORD);
    let file = dir.path().join("clients.csv");
    let n = 40_000;
    contacts_csv(&file, n);
    let f = file.to_str().unwrap();
    let args = [
        "import", f, "--entity", "contacts", "--match", "email", "--mode", "upsert", "--data", d,
        "--json",
    ];
    let mut child = kontor()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = data.join("kontor.db");
    let started = Instant::now();
    loop {
        let got = count_contacts(&db);
        if got >= 5_000 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the import ended ({status}) before it could be interrupted");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let landed = count_contacts(&db);
    assert!(landed < n as i64, "interrupted before the end ({landed})");

    let o = run(&args);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("resuming import"), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["created"], json!(n), "{report}");
    assert_eq!(report["failed"], json!(0));
    assert!(
        report["resumed_after_row"].as_u64().unwrap() >= 5_000,
        "{report}"
    );
    assert_all_once(&exported_emails(d), n);

    // Run once more: everything is there, nothing changes.
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(again["unchanged"], json!(n), "{again}");
    assert_eq!(again["created"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_and_exports_go_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    init_data(&data, ADMIN, PASSWORD);
    let ok = |o: &std::process::Output| assert!(o.status.success(), "{}{}", stdout(o), stderr(o));
    ok(&run(&[
        "user",
        "add",
        "--data",
        d,
        "--email",
        "m@import.test",
        "--role",
        "manager",
        "--password",
        "manager-password-1",
    ]));
    let srv = Server::start(&data);
    // A dry run with a bad row: nothing written, the error file beside the file.
    let file = dir.path().join("companies.csv");
    std::fs::write(
        &file,
        "Название,ИНН,Телефон\nРомашка,7707083893,+7 495 000-00-01\nЛютик,123,\nВасилёк,,8 (495) 000-00-02\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = run(&[
        "import",
        f,
        "--entity",
        "companies",
        "--dry-run",
        "--data",
        d,
    ]);
    assert_eq!(o.status.code(), Some(12), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("2 would be created") && out.contains("1 failed"),
        "{out}"
    );
    let errors = std::fs::read_to_string(format!("{f}.errors.csv")).unwrap();
    assert!(errors.contains("3,ИНН,123,"), "{errors}");
    let tok = token(&srv.base, ADMIN, PASSWORD).await;
    assert!(all_items(&srv.base, &tok, "companies").await.is_empty());
    // The real one, as the manager: the records are theirs.
    let o = run(&[
        "import",
        f,
        "--entity",
        "companies",
        "--data",
        d,
        "--as",
        "m@import.test",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["created"], json!(2), "{report}");
    let companies = all_items(&srv.base, &tok, "companies").await;
    assert_eq!(companies.len(), 2);
    let m = token(&srv.base, "m@import.test", "manager-password-1").await;
    assert_eq!(all_items(&srv.base, &m, "companies").await.len(), 2);
    // Exports while the server runs, as CSV and XLSX.
    let out = dir.path().join("out.csv");
    ok(&run(&[
        "export",
        "--entity",
        "companies",
        "--to",
        out.to_str().unwrap(),
        "--data",
        d,
        "--filter",
        "inn=7707083893",
    ]));
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("Ромашка"));
    let xlsx = dir.path().join("out.xlsx");
    ok(&run(&[
        "export",
        "--entity",
        "companies",
        "--format",
        "xlsx",
        "--to",
        xlsx.to_str().unwrap(),
        "--data",
        d,
    ]));
    assert!(std::fs::read(&xlsx).unwrap().starts_with(b"PK"));
    // Misuse says what is wrong.
    let o = run(&[
        "import",
        f,
        "--entity",
        "companies",
        "--mode",
        "merge",
        "--data",
        d,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&[
        "import",
        "/nonexistent.csv",
        "--entity",
        "companies",
        "--data",
        d,
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("/nonexistent.csv"), "{}", stderr(&o));
    let o = run(&["export", "--entity", "nonsense", "--data", d]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(srv.terminate().code(), Some(0));
    assert!(
        !data.join("kontor.sock").exists(),
        "the socket goes with the server"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_an_import_takes_it_up_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    init_data(&data, ADMIN, PASSWORD);
    let file = dir.path().join("big.csv");
    let n = 40_000;
    contacts_csv(&file, n);
    let srv = Server::start(&data);
    let tok = token(&srv.base, ADMIN, PASSWORD).await;
    let form = reqwest::multipart::Form::new()
        .text("entity", "contacts")
        .text("match", "email")
        .text("mode", "upsert")
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&file).unwrap()).file_name("big.csv"),
        );
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/imports", srv.base))
        .bearer_auth(&tok)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap().to_string();
    let db = data.join("kontor.db");
    let started = Instant::now();
    while count_contacts(&db) < 5_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the import did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.kill9();
    assert!(count_contacts(&db) < n as i64);
    // The lease of the killed server's import runs out; the new server takes the import up.
    let srv = Server::start(&data);
    let tok = token(&srv.base, ADMIN, PASSWORD).await;
    let c = reqwest::Client::new();
    let started = Instant::now();
    let job = loop {
        let job: Value = c
            .get(format!("{}/api/v1/imports/{id}", srv.base))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if job["state"] != "running" {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the import was not finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["result"]["created"], json!(n), "{job}");
    assert_eq!(srv.terminate().code(), Some(0));
    assert_all_once(&exported_emails(d), n);
}
