//! `kontor status` through the real binary, beside a running server: versions, schema, data
//! size, journal head and the backups' state; and a database it must not open reported as such.

use crate::support::{init_data, run, stderr, stdout, token, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const PW: &str = "status-password-1";

fn status_json(args: &[&str]) -> Value {
    let mut all = vec!["status", "--json"];
    all.extend_from_slice(args);
    let o = run(&all);
    assert!(o.status.success(), "status: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[tokio::test]
async fn status_reports_the_schema_the_journal_and_the_backups_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (data, target) = (dir.path().join("live"), dir.path().join("target"));
    let (d, t) = (data.to_str().unwrap(), target.to_str().unwrap());
    init_data(&data, "a@k.ru", PW);
    let srv = Server::start_with(&data, &["--backup-to", t]);
    let tok = token(&srv.base, "a@k.ru", PW).await;
    for i in 0..5 {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/companies", srv.base))
            .bearer_auth(&tok)
            .json(&json!({"name": format!("Firma {i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // The server's first snapshot, verified, and shipping caught up.
    let mut s = status_json(&["--data", d, "--backup-to", t]);
    for _ in 0..200 {
        let b = &s["backups"];
        if b["newest_verified"].is_object() && b["shipping"]["lag_entries"] == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        s = status_json(&["--data", d, "--backup-to", t]);
    }
    assert_eq!(s["kontor_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        s["schema"]["schema_version"],
        s["schema"]["current_version"]
    );
    assert_eq!(s["schema"]["pending"], json!([]));
    assert!(s["journal_seq"].as_i64().unwrap() >= 6, "{s}");
    assert!(s["bytes"].as_u64().unwrap() > 0);
    let b = &s["backups"];
    assert_eq!(b["shipping"]["running"], true, "{s}");
    assert!(b["newest_verified"]["name"].is_string(), "{s}");

    // As a person reads it.
    let o = run(&["status", "--data", d, "--backup-to", t]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for line in [
        "schema:      version",
        "up to date",
        "journal:     seq",
        "verified:  ",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    // Without a target: said so, not an error.
    let plain = status_json(&["--data", d]);
    assert_eq!(plain["backups"]["configured"], false);
    srv.terminate();

    // A migration recorded differently than this Kontor's: status says so and fails, and the
    // server refuses to start on it.
    let db = rusqlite::Connection::open(data.join("kontor.db")).unwrap();
    db.execute(
        "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2",
        [],
    )
    .unwrap();
    drop(db);
    let o = run(&["status", "--data", d]);
    assert!(!o.status.success());
    assert!(
        stdout(&o).contains("recorded differently"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("migration 2"), "{}", stderr(&o));
    let serve = run(&["serve", "--data", d, "--listen", "127.0.0.1:0"]);
    assert!(!serve.status.success());
    assert!(stderr(&serve).contains("migration 2"), "{}", stderr(&serve));

    // A missing database is a clear error.
    let o = run(&[
        "status",
        "--data",
        dir.path().join("nothing").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no Kontor database"), "{}", stderr(&o));
}
