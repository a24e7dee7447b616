//! `kontor upgrade` and `kontor upgrade --rehearse` through the real binary: a data set with
//! every kind of record taken back to the first schema is refused by `serve`, rehearsed on a
//! clone (live untouched), then upgraded for real and served again with every record and
//! login intact; with a server running, a deliberately failing migration (test builds only)
//! stops it, fails, and leaves the data as it was — inside the migration's transaction, or
//! through the pinned snapshot when the checks after it fail.

use crate::support::{all_items, init_data, kontor, run, stderr, stdout, token, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const ADMIN: &str = "a@k.ru";
const PW: &str = "upgrade-password-1";

async fn create(base: &str, tok: &str, entity: &str, body: Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/{entity}"))
        .bearer_auth(tok)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{entity}: {v}");
    v["id"].as_str().unwrap().to_string()
}

/// Records of every entity: made through the API, and a 1C catalog through the exchange.
async fn fill(data: &Path) {
    let srv = Server::start(data);
    let t = token(&srv.base, ADMIN, PW).await;
    let b = &srv.base;
    let company = create(
        b,
        &t,
        "companies",
        json!({"name": "Erste GmbH", "inn": "7707083893"}),
    )
    .await;
    create(b, &t, "contacts", json!({"first_name": "Ivan", "last_name": "Petrov", "email": "ivan@firm.ru", "phone": "+7 495 123-45-67", "company_id": company})).await;
    create(
        b,
        &t,
        "leads",
        json!({"title": "Website enquiry", "first_name": "Olga", "amount": "1500.50"}),
    )
    .await;
    let deal = create(
        b,
        &t,
        "deals",
        json!({"title": "Big deal", "company_id": company}),
    )
    .await;
    create(
        b,
        &t,
        "activities",
        json!({"kind": "note", "subject": "called", "linked_entity": "deals", "linked_id": deal}),
    )
    .await;
    create(b, &t, "products", json!({"name": "Widget", "sku": "W-1"})).await;
    let invoice = create(b, &t, "invoices", json!({"company_id": company, "number": "A-1",
        "lines": [{"description": "Widget", "quantity": "3", "price": "100.10", "vat_rate": "20"}]})).await;
    create(
        b,
        &t,
        "payments",
        json!({"invoice_id": invoice, "amount": "100"}),
    )
    .await;
    create(
        b,
        &t,
        "roles",
        json!({"name": "no-phones", "permissions": {"contacts": "all"}}),
    )
    .await;
    create(b, &t, "teams", json!({"name": "North"})).await;
    create(b, &t, "fields", json!({"entity": "deals", "name": "region", "type": "enum", "options": ["north", "south"], "required": false})).await;
    let r = reqwest::Client::new()
        .post(format!("{b}/api/v1/users"))
        .bearer_auth(&t)
        .json(&json!({"email": "m@k.ru", "name": "Manager", "role": "manager", "password": "manager-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // One in the recycle bin.
    let gone = create(b, &t, "companies", json!({"name": "Deleted AG"})).await;
    let r = reqwest::Client::new()
        .delete(format!("{b}/api/v1/companies/{gone}"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(srv.terminate().success());
    if let Some(samples) = kontor_testkit::commerceml_samples("upgrade catalog") {
        let set = samples.join("official-2.04");
        let o = run(&[
            "exchange",
            "import",
            "--data",
            data.to_str().unwrap(),
            set.join("import.xml").to_str().unwrap(),
            set.join("offers.xml").to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

/// Live and binned records per entity, and journal entries, read from the file.
fn counts(db: &Path) -> (BTreeMap<String, (i64, i64)>, i64) {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut q = c
        .prepare(
            "SELECT entity, SUM(deleted_batch IS NULL), SUM(deleted_batch IS NOT NULL) \
             FROM records GROUP BY entity",
        )
        .unwrap();
    let per: BTreeMap<String, (i64, i64)> = q
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let journal: i64 = c
        .query_row("SELECT COUNT(*) FROM journal", [], |r| r.get(0))
        .unwrap();
    (per, journal)
}

/// Takes a database this Kontor made back to the first schema, as the first Kontor kept it:
/// password hashes inside the user records, none of the later tables and indexes.
fn to_first_schema(db: &Path) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(
        "UPDATE records SET data = json_set(data, '$.password_hash', \
            (SELECT password_hash FROM credentials c WHERE c.user_id = records.id)) \
         WHERE entity = 'users' AND id IN (SELECT user_id FROM credentials);
         DROP TABLE credentials; DROP TABLE login_limits;
         CREATE TABLE login_failures (key TEXT NOT NULL, at INTEGER NOT NULL);
         CREATE INDEX login_failures_key ON login_failures (key, at);
         CREATE INDEX login_failures_at ON login_failures (at);
         DROP TABLE jobs; DROP TABLE job_checkpoints; DROP TABLE import_errors;
         DROP TABLE database_state;
         DROP INDEX records_live_created; DROP INDEX records_live_updated;
         DELETE FROM schema_migrations WHERE version > 1;",
    )
    .unwrap();
}

fn schema_version(data: &Path) -> i64 {
    let o = run(&["status", "--json", "--data", data.to_str().unwrap()]);
    let s: Value = serde_json::from_str(&stdout(&o)).unwrap_or(Value::Null);
    s["schema"]["schema_version"].as_i64().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_schema_data_set_is_rehearsed_then_upgraded_and_serves_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    let d = data.to_str().unwrap();
    let db = data.join("kontor.db");
    init_data(&data, ADMIN, PW);
    fill(&data).await;
    let before = counts(&db);
    assert!(before.0.len() >= 12, "{before:?}");
    to_first_schema(&db);
    assert_eq!(schema_version(&data), 1);

    // The server does not migrate on the side.
    let o = run(&["serve", "--data", d, "--listen", "127.0.0.1:0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("run `kontor upgrade`"),
        "{}",
        stderr(&o)
    );

    // The rehearsal upgrades a clone and reports; live stays at the first schema.
    let o = run(&["upgrade", "--rehearse", "--data", d]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    for line in [
        "clone",
        "migrations",
        "checks",
        "smoke test",
        "+ table credentials",
        "Rehearsal passed",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert_eq!(schema_version(&data), 1);
    assert_eq!(counts(&db), before);
    let o = run(&["upgrade", "--rehearse", "--json", "--data", d]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["live_untouched"], true);
    assert_eq!(report["applied"].as_array().unwrap().len(), 7, "{report}");

    // The upgrade itself.
    let o = run(&["upgrade", "--data", d]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    for line in [
        "pinned snapshot",
        "verified by restoring it",
        "checks",
        "smoke test",
        "Upgraded to schema version",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert_eq!(counts(&db), before);
    let pinned: Vec<_> = std::fs::read_dir(data.join("upgrades"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".kontor.tar"))
        .collect();
    assert_eq!(pinned.len(), 1);
    let o = run(&["upgrade", "--data", d]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("nothing to upgrade"), "{}", stdout(&o));

    // Served again: the old passwords log in, every record reads.
    let srv = Server::start(&data);
    let t = token(&srv.base, ADMIN, PW).await;
    token(&srv.base, "m@k.ru", "manager-password-1").await;
    for (entity, (live, _)) in &before.0 {
        let items = all_items(&srv.base, &t, entity).await;
        assert_eq!(items.len() as i64, *live, "{entity}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_migration_stops_the_running_server_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("live");
    let d = data.to_str().unwrap();
    let db = data.join("kontor.db");
    init_data(&data, ADMIN, PW);
    fill(&data).await;
    let before = counts(&db);
    let failing = |mode: &str| {
        kontor()
            .args(["upgrade", "--data", d])
            .env(kontor_store::TEST_FAILING_MIGRATION, mode)
            .output()
            .unwrap()
    };

    // A step that fails inside its transaction, with the server running: the server is
    // stopped for it, and the data stays as it was.
    let srv = Server::start(&data);
    let t = token(&srv.base, ADMIN, PW).await;
    let o = failing("sql");
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the upgrade failed in its migrations"),
        "{err}"
    );
    assert!(err.contains("migration 9 failed"), "{err}");
    assert!(err.contains("nothing lost"), "{err}");
    assert!(stdout(&o).contains("server stopped"), "{}", stdout(&o));
    drop(t);
    drop(srv);
    assert_eq!(counts(&db), before);
    let probe: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'upgrade_probe'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(probe, 0, "the failed step's table was rolled back");

    // A step that succeeds but breaks a record: the checks catch it and the pinned snapshot
    // goes back in place.
    let o = failing("check");
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("the upgrade failed in its checks"), "{err}");
    assert!(err.contains("not a JSON object"), "{err}");
    assert!(err.contains("rolled back to the pinned snapshot"), "{err}");
    assert_eq!(counts(&db), before);
    assert_eq!(schema_version(&data), kontor_store::SCHEMA_VERSION);
    let failed_kept = std::fs::read_dir(data.join("upgrades"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().starts_with("failed-"));
    assert!(failed_kept);

    // And the server runs on it as before.
    let srv = Server::start(&data);
    let t = token(&srv.base, ADMIN, PW).await;
    for (entity, (live, _)) in &before.0 {
        assert_eq!(
            all_items(&srv.base, &t, entity).await.len() as i64,
            *live,
            "{entity}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgresql_a_rehearsal_and_an_upgrade_that_fail_their_checks_leave_live_as_it_was() {
    if kontor_testkit::skip_postgres("postgresql upgrade") {
        return;
    }
    let url = kontor_testkit::postgres().unwrap().fresh_database().await;
    let o = run(&[
        "init",
        "--database",
        &url,
        "--admin-email",
        ADMIN,
        "--admin-password",
        PW,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("node");
    let n = node.to_str().unwrap();
    let srv = Server::start_with(&node, &["--database", &url]);
    let t = token(&srv.base, ADMIN, PW).await;
    let company = create(&srv.base, &t, "companies", json!({"name": "Erste GmbH"})).await;
    create(
        &srv.base,
        &t,
        "contacts",
        json!({"first_name": "Ivan", "company_id": company}),
    )
    .await;
    create(
        &srv.base,
        &t,
        "deals",
        json!({"title": "Big deal", "company_id": company}),
    )
    .await;
    let listed = |entity: &'static str| {
        let (base, t) = (srv.base.clone(), t.clone());
        async move { all_items(&base, &t, entity).await.len() }
    };
    let before = (
        listed("companies").await,
        listed("contacts").await,
        listed("deals").await,
    );
    let failing = |args: &[&str], mode: &str| {
        kontor()
            .args(args)
            .env(kontor_store::TEST_FAILING_MIGRATION, mode)
            .output()
            .unwrap()
    };

    // The rehearsal, beside the running node, on a database of its own: the broken record
    // is caught, live goes on.
    let o = failing(
        &["upgrade", "--rehearse", "--database", &url, "--data", n],
        "check",
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("the rehearsal failed in its checks"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("live is untouched"), "{}", stderr(&o));
    let after = (
        listed("companies").await,
        listed("contacts").await,
        listed("deals").await,
    );
    assert_eq!(after, before);

    // The upgrade stops the node, fails its checks and puts the pinned snapshot back.
    let o = failing(&["upgrade", "--database", &url, "--data", n], "check");
    assert!(!o.status.success(), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("rolled back to the pinned snapshot"), "{err}");
    drop(srv);
    let srv = Server::start_with(&node, &["--database", &url]);
    let t = token(&srv.base, ADMIN, PW).await;
    assert_eq!(all_items(&srv.base, &t, "companies").await.len(), before.0);
    assert_eq!(all_items(&srv.base, &t, "contacts").await.len(), before.1);
    assert_eq!(all_items(&srv.base, &t, "deals").await.len(), before.2);
    // Not left frozen: the node takes writes again.
    create(&srv.base, &t, "companies", json!({"name": "Zweite GmbH"})).await;
    drop(srv);
    let o = run(&["upgrade", "--database", &url, "--data", n]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to upgrade"), "{}", stdout(&o));
}
