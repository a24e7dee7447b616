//! Several `kontor serve` processes on one PostgreSQL database, and PostgreSQL connection trouble.

use crate::support::*;
use kontor_testkit::{postgres, skip_postgres, PgServer};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ADMIN: &str = "admin@cluster.test";
const PASSWORD: &str = "cluster-password-1";

fn init(url: &str) {
    let o = run(&[
        "init",
        "--database",
        url,
        "--admin-email",
        ADMIN,
        "--admin-password",
        PASSWORD,
    ]);
    assert!(o.status.success(), "init: {}", stderr(&o));
}

async fn readyz(base: &str) -> (StatusCode, Value) {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(r) => {
            let s = r.status();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
    }
}

async fn create_contact(c: &reqwest::Client, base: &str, tok: &str, name: &str) -> Option<String> {
    let r = c
        .post(format!("{base}/api/v1/contacts"))
        .bearer_auth(tok)
        .json(&json!({"first_name": name}))
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::CREATED {
        return None;
    }
    r.json::<Value>().await.ok()?["id"]
        .as_str()
        .map(str::to_string)
}

async fn all_history(_: &reqwest::Client, base: &str, tok: &str) -> Vec<Value> {
    all_items(base, tok, "history?order=asc&limit=500").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database_with_one_journal_and_one_job_runner() {
    if skip_postgres("two_nodes_share_one_database") {
        return;
    }
    let url = postgres().unwrap().fresh_database().await;
    init(&url);
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start_with(&dir.path().join("a"), &["--database", &url]);
    let b = Server::start_with(&dir.path().join("b"), &["--database", &url]);
    let c = reqwest::Client::new();
    let ta = token(&a.base, ADMIN, PASSWORD).await;
    let tb = token(&b.base, ADMIN, PASSWORD).await;

    // Writes through either node are read through the other.
    let via_a = create_contact(&c, &a.base, &ta, "Via A").await.unwrap();
    let r = c
        .get(format!("{}/api/v1/contacts/{via_a}", b.base))
        .bearer_auth(&tb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let via_b = create_contact(&c, &b.base, &tb, "Via B").await.unwrap();
    let r = c
        .get(format!("{}/api/v1/contacts/{via_b}", a.base))
        .bearer_auth(&ta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Each node keeps its own search index from the one journal: a search on one node finds
    // what was just written through the other.
    for (base, tok, want) in [(&b.base, &tb, &via_a), (&a.base, &ta, &via_b)] {
        let name = if want == &via_a { "via a" } else { "via b" };
        let r: Value = c
            .get(format!("{base}/api/v1/search"))
            .query(&[("q", name), ("entity", "contacts")])
            .bearer_auth(tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["groups"][0]["items"][0]["id"], json!(want), "{r}");
    }

    // Failed logins count across the cluster: five spread over both nodes use up the allowance.
    for i in 0..5 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        let (status, _) = login(base, "guesser@cluster.test", "wrong-guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for base in [&a.base, &b.base] {
        let (status, body) = login(base, "guesser@cluster.test", "wrong-guess").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }

    // 8 concurrent writers split over both nodes: one contiguous journal.
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, base, tok) = if w % 2 == 0 {
            (c.clone(), a.base.clone(), ta.clone())
        } else {
            (c.clone(), b.base.clone(), tb.clone())
        };
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                ids.push(
                    create_contact(&c, &base, &tok, &format!("W{w}-{i}"))
                        .await
                        .expect("create"),
                );
            }
            ids
        }));
    }
    let mut written = 2;
    for t in tasks {
        written += t.await.unwrap().len();
    }
    let history = all_history(&c, &b.base, &tb).await;
    let seqs: Vec<i64> = history.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "journal has a gap or a duplicate"
    );
    let creates = history
        .iter()
        .filter(|e| e["entity"] == "contacts" && e["op"] == "create")
        .count();
    assert_eq!(creates, written);
    let times: Vec<&str> = history.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "journal time goes back"
    );

    // Exactly one node runs the background jobs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (leader, survivor) = loop {
        let (_, ra) = readyz(&a.base).await;
        let (_, rb) = readyz(&b.base).await;
        let la = ra["jobs"]["retention"] == "leader";
        let lb = rb["jobs"]["retention"] == "leader";
        assert!(!(la && lb), "both nodes hold the retention lease");
        if la {
            break (a, b);
        }
        if lb {
            break (b, a);
        }
        assert!(
            Instant::now() < deadline,
            "no node took the retention lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let ts = token(&survivor.base, ADMIN, PASSWORD).await;
    let tl = token(&leader.base, ADMIN, PASSWORD).await;

    // kill -9 the leader in the middle of writes: every acknowledged write survives, the other
    // node keeps serving and takes over the lease within seconds.
    let (c2, lbase, tl2) = (c.clone(), leader.base.clone(), tl.clone());
    let writer = tokio::spawn(async move {
        let mut acked = Vec::new();
        for i in 0..10_000 {
            match create_contact(&c2, &lbase, &tl2, &format!("K{i}")).await {
                Some(id) => acked.push(id),
                None => break,
            }
        }
        acked
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    leader.kill9();
    let acked = writer.await.unwrap();
    assert!(
        !acked.is_empty(),
        "no write was acknowledged before the kill"
    );
    for id in &acked {
        let r = c
            .get(format!("{}/api/v1/contacts/{id}", survivor.base))
            .bearer_auth(&ts)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "acknowledged contact {id} lost");
    }
    assert!(create_contact(&c, &survivor.base, &ts, "after the kill")
        .await
        .is_some());
    let killed_at = Instant::now();
    loop {
        let (_, r) = readyz(&survivor.base).await;
        if r["jobs"]["retention"] == "leader" {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(20),
            "the surviving node did not take over the retention lease"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let history = all_history(&c, &survivor.base, &ts).await;
    let seqs: Vec<i64> = history.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "journal has a gap after the kill"
    );
}

#[tokio::test]
async fn bad_database_settings_fail_at_start_with_a_clear_message() {
    if skip_postgres("bad_database_settings_fail_at_start") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    let d = d.to_str().unwrap();

    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = run(&[
        "serve",
        "--data",
        d,
        "--database",
        &format!("postgres://kontor:secret@127.0.0.1:{port}/kontor"),
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(
        !err.contains("secret"),
        "the password leaked into the message: {err}"
    );

    let o = run(&["serve", "--data", d, "--database", "mysql://x@localhost/db"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    let pg = postgres().unwrap();
    if pg.is_owned() {
        let good = pg.fresh_database().await;
        let bad = good.replace(kontor_testkit::PASSWORD, "wrong-password");
        let o = run(&["serve", "--data", d, "--database", &bad]);
        assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(
            !err.contains("wrong-password"),
            "the password leaked: {err}"
        );
        let missing = pg.database_url("no_such_database");
        let o = run(&["user", "list", "--database", &missing]);
        assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
        assert!(stderr(&o).contains("no_such_database"), "{}", stderr(&o));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_gives_503_and_kontor_recovers_by_itself() {
    if kontor_testkit::find_bin_dir().is_none() {
        eprintln!("*** SKIPPED (no PostgreSQL server binaries): database_outage_gives_503");
        return;
    }
    // A server of its own, to stop and start; durable, so that its crash (an immediate stop)
    // loses no committed session or record.
    let pg = PgServer::start_durable().expect("start PostgreSQL");
    let url = pg.fresh_database().await;
    init(&url);
    let dir = tempfile::tempdir().unwrap();
    let node = Server::start_with(&dir.path().join("n"), &["--database", &url]);
    let c = reqwest::Client::new();
    let tok = token(&node.base, ADMIN, PASSWORD).await;
    assert!(create_contact(&c, &node.base, &tok, "before")
        .await
        .is_some());

    pg.stop();
    let r = c
        .get(format!("{}/api/v1/contacts", node.base))
        .bearer_auth(&tok)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.headers().get("retry-after").is_some(),
        "503 without Retry-After"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, _) = readyz(&node.base).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = match reqwest::get(format!("{}/healthz", node.base)).await {
        Ok(r) => (r.status(), ()),
        Err(e) => panic!("healthz: {e}"),
    };
    assert_eq!(status, StatusCode::OK, "the process itself stays up");

    pg.restart().expect("restart PostgreSQL");
    let back = Instant::now();
    loop {
        if let Some(id) = create_contact(&c, &node.base, &tok, "after").await {
            let r = c
                .get(format!("{}/api/v1/contacts/{id}", node.base))
                .bearer_auth(&tok)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            break;
        }
        let (ready, body) = readyz(&node.base).await;
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "Kontor did not recover after the database came back: readyz {ready} {body}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (status, _) = readyz(&node.base).await;
    assert_eq!(status, StatusCode::OK);
    pg.stop();
}
