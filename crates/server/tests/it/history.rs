//! The journal over HTTP: the shape of history items, every filter of GET /api/v1/history,
//! pagination in both orders, gap-free seqs, and the history of one record.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn seqs(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

fn ops(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| e["op"].as_str().expect("op").to_string())
        .collect()
}

fn change_of<'a>(item: &'a Value, field: &str) -> Option<&'a Value> {
    item["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["field"] == field)
}

async fn items_carry_images_and_field_changes_and_seqs_have_no_gaps(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = admin
        .create("deals", json!({"title": "First", "amount": "10"}))
        .await;
    let did = id(&deal);
    update(&admin, "deals", &did, json!({"title": "Second"})).await;
    update(
        &admin,
        "deals",
        &did,
        json!({"amount": null, "stage": "won"}),
    )
    .await;
    let del = remove(&admin, "deals", &did).await;
    admin
        .post(&format!("/api/v1/trash/deals/{did}/restore"), json!({}))
        .await;
    // A failed write leaves no trace in the journal.
    let got = admin
        .patch(&format!("/api/v1/deals/{did}"), json!({"stage": "bogus"}))
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY);
    // An update that changes nothing is not journaled.
    update(&admin, "deals", &did, json!({"title": "Second"})).await;

    let all = history(&admin, "").await;
    let n = all.len() as i64;
    assert_eq!(
        seqs(&all),
        (1..=n).collect::<Vec<_>>(),
        "seqs start at 1 with no gaps"
    );
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time never goes back: {times:?}"
    );
    for e in &all {
        for key in [
            "seq",
            "at",
            "actor",
            "origin",
            "batch",
            "entity",
            "record_id",
            "op",
            "before",
            "after",
            "changes",
            "scrubbed",
        ] {
            assert!(e.get(key).is_some(), "history item lacks {key}: {e}");
        }
        assert!(
            e["before"].get("password_hash").is_none() && e["after"].get("password_hash").is_none(),
            "{e}"
        );
    }
    // The admin user's own creation is the first entry, by the system.
    assert_eq!(
        (
            all[0]["entity"].as_str(),
            all[0]["actor"].as_str(),
            all[0]["origin"].as_str()
        ),
        (Some("users"), Some("system"), Some("system"))
    );

    let h: Vec<Value> = all
        .iter()
        .filter(|e| e["record_id"] == json!(did))
        .cloned()
        .collect();
    assert_eq!(
        ops(&h),
        vec!["create", "update", "update", "delete", "restore"]
    );
    for e in &h {
        assert_eq!(e["actor"], json!(admin.user_id));
        assert_eq!(e["entity"], "deals");
        assert!(e["batch"].as_str().is_some_and(|b| b.len() == 36));
    }
    assert_eq!(h[0]["origin"], "api");
    assert_eq!(h[4]["origin"], "restore");
    assert_eq!(h[3]["batch"], del["batch"]);

    // create: no before, full after, every field as a change from null.
    assert!(h[0]["before"].is_null());
    assert_eq!(h[0]["after"]["title"], "First");
    assert_eq!(h[0]["after"]["id"], json!(did));
    assert_eq!(
        change_of(&h[0], "title"),
        Some(&json!({"field": "title", "before": null, "after": "First"}))
    );
    assert_eq!(change_of(&h[0], "amount").unwrap()["after"], json!("10.00"));
    // update: only what changed (updated_at is not a change).
    assert_eq!(
        h[1]["changes"],
        json!([{"field": "title", "before": "First", "after": "Second"}])
    );
    assert_eq!(h[1]["before"]["title"], "First");
    assert_eq!(h[1]["after"]["title"], "Second");
    let fields: BTreeSet<&str> = h[2]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, BTreeSet::from(["amount", "stage"]));
    assert_eq!(change_of(&h[2], "amount").unwrap()["after"], Value::Null);
    // delete and restore: the bin fields change.
    assert_eq!(
        change_of(&h[3], "deleted_batch").unwrap()["after"],
        del["batch"]
    );
    assert_eq!(
        change_of(&h[4], "deleted_batch").unwrap()["before"],
        del["batch"]
    );
    assert_eq!(
        change_of(&h[4], "deleted_batch").unwrap()["after"],
        Value::Null
    );

    // Default order is newest first.
    let (s, page) = admin.get("/api/v1/history").await;
    assert_eq!(s, StatusCode::OK);
    let desc = page["items"].as_array().unwrap();
    assert_eq!(seqs(desc), (1..=n).rev().collect::<Vec<_>>());
    srv.stop().await;
}

async fn every_history_filter_narrows_the_journal(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m = srv.user("m@x.ru", "manager", None).await;

    let t0 = mark().await;
    let a = admin.create("deals", json!({"title": "A"})).await;
    let aid = id(&a);
    let a_batch = history(&admin, &format!("record_id={aid}")).await[0]["batch"]
        .as_str()
        .unwrap()
        .to_string();
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let t1 = mark().await;
    let bid = id(&m.create("deals", json!({"title": "B"})).await);
    update(&m, "deals", &bid, json!({"title": "B2"})).await;
    let t2 = mark().await;
    remove(&admin, "deals", &aid).await;
    admin
        .post(&format!("/api/v1/trash/deals/{aid}/restore"), json!({}))
        .await;
    let t3 = mark().await;

    let q = |query: String| {
        let admin = admin.clone();
        async move { history(&admin, &query).await }
    };
    // entity
    let deals = q("entity=deals".into()).await;
    assert!(deals.iter().all(|e| e["entity"] == "deals"));
    assert_eq!(record_ids(&deals), set([aid.clone(), bid.clone()]));
    assert_eq!(deals.len(), 5);
    let users = q("entity=users".into()).await;
    assert_eq!(users.len(), 2, "the admin and the manager");
    assert_eq!(
        record_ids(&q("entity=companies".into()).await),
        set([company.clone()])
    );
    // record_id
    assert_eq!(
        ops(&q(format!("record_id={aid}")).await),
        vec!["create", "delete", "restore"]
    );
    assert_eq!(
        ops(&q(format!("record_id={bid}")).await),
        vec!["create", "update"]
    );
    assert!(q(format!("record_id={MISSING_ID}")).await.is_empty());
    // op
    let updates = q("op=update".into()).await;
    assert_eq!(
        (updates.len(), updates[0]["record_id"].as_str()),
        (1, Some(bid.as_str()))
    );
    let creates = q("op=create".into()).await;
    assert_eq!(creates.len(), 5, "two users, two deals, a company");
    assert_eq!(record_ids(&q("op=delete".into()).await), set([aid.clone()]));
    // actor
    let by_m = q(format!("actor={}", m.user_id)).await;
    assert_eq!(ops(&by_m), vec!["create", "update"]);
    assert!(by_m.iter().all(|e| e["actor"] == json!(m.user_id)));
    assert_eq!(q("actor=system".into()).await.len(), 1);
    let by_admin = q(format!("actor={}", admin.user_id)).await;
    assert_eq!(
        by_admin.len(),
        5,
        "the manager's user, A, the company, A deleted, A restored"
    );
    // origin
    let restored = q("origin=restore".into()).await;
    assert_eq!(
        (restored.len(), restored[0]["op"].as_str()),
        (1, Some("restore"))
    );
    assert_eq!(q("origin=system".into()).await.len(), 1);
    assert_eq!(
        q("origin=api".into()).await.len(),
        6,
        "the manager user, A, the company, B twice, A deleted"
    );
    assert!(q("origin=import".into()).await.is_empty());
    // batch
    let b = q(format!("batch={a_batch}")).await;
    assert_eq!(
        (b.len(), b[0]["record_id"].as_str(), b[0]["op"].as_str()),
        (1, Some(aid.as_str()), Some("create"))
    );
    // from / to, inclusive of writes between the marks
    let w1 = q(format!("from={t0}&to={t1}")).await;
    assert_eq!(record_ids(&w1), set([aid.clone(), company.clone()]));
    let w2 = q(format!("from={t1}&to={t2}")).await;
    assert_eq!(ops(&w2), vec!["create", "update"]);
    assert_eq!(record_ids(&w2), set([bid.clone()]));
    let w3 = q(format!("from={t2}")).await;
    assert_eq!(ops(&w3), vec!["delete", "restore"]);
    assert!(q(format!("from={t3}")).await.is_empty());
    let before = q(format!("to={t0}")).await;
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|e| e["entity"] == "users"));
    assert!(
        q(format!("from={t2}&to={t1}")).await.is_empty(),
        "an empty window"
    );
    // An offset is understood (the same instant as t1 in +03:00).
    let t1_msk = kontor_domain::time::parse(&t1)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(3 * 3600).unwrap())
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        .replace('+', "%2B");
    assert_eq!(q(format!("from={t1_msk}&to={t2}")).await.len(), 2);
    // Combined filters all hold.
    let combo = q(format!(
        "entity=deals&actor={}&op=create&from={t0}&to={t3}",
        admin.user_id
    ))
    .await;
    assert_eq!(record_ids(&combo), set([aid.clone()]));
    assert!(q(format!("actor={}&op=delete", m.user_id)).await.is_empty());
    srv.stop().await;
}

async fn history_pages_in_both_orders_without_gaps_or_repeats(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    for i in 0..9 {
        let d = id(&admin
            .create("deals", json!({"title": format!("d{i}")}))
            .await);
        update(&admin, "deals", &d, json!({"stage": "won"})).await;
    }
    let total = 1 + 18;
    for limit in [1, 2, 5, 19, 500] {
        let asc = walk(&admin, "/api/v1/history?order=asc", limit).await;
        assert_eq!(
            seqs(&asc),
            (1..=total).collect::<Vec<_>>(),
            "asc, limit {limit}"
        );
        let desc = walk(&admin, "/api/v1/history", limit).await;
        assert_eq!(
            seqs(&desc),
            (1..=total).rev().collect::<Vec<_>>(),
            "desc, limit {limit}"
        );
        let ups = walk(&admin, "/api/v1/history?op=update&order=asc", limit).await;
        assert_eq!(ups.len(), 9);
    }
    let (s, page) = admin.get("/api/v1/history?order=asc&limit=4").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        page["next_cursor"],
        json!("4"),
        "the cursor is the last seq served"
    );
    let (_, page) = admin
        .get("/api/v1/history?order=asc&limit=4&cursor=4")
        .await;
    assert_eq!(seqs(page["items"].as_array().unwrap()), vec![5, 6, 7, 8]);
    let (_, page) = admin.get("/api/v1/history?limit=3&cursor=5").await;
    assert_eq!(seqs(page["items"].as_array().unwrap()), vec![4, 3, 2]);
    let (_, page) = admin.get(&format!("/api/v1/history?limit={total}")).await;
    assert!(page["next_cursor"].is_null());
    srv.stop().await;
}

async fn bad_history_queries_are_refused_by_parameter(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    for (query, field) in [
        ("entity=widgets", "entity"),
        ("op=explode", "op"),
        ("origin=telepathy", "origin"),
        ("batch=42", "batch"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("order=random", "order"),
        ("cursor=abc", "cursor"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
    ] {
        let got = admin.get(&format!("/api/v1/history?{query}")).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    for query in ["limit=abc", "limit=-1", "colour=red", "op=create&op=update"] {
        let got = admin.get(&format!("/api/v1/history?{query}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    }
    let got = admin.get("/api/v1/history?colour=red").await;
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{}",
        got.1
    );
    srv.stop().await;
}

async fn per_record_history_shows_that_record_only(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "A"})).await);
    let other = id(&admin.create("companies", json!({"name": "B"})).await);
    for name in ["A1", "A2", "A3"] {
        update(&admin, "companies", &company, json!({"name": name})).await;
    }
    update(&admin, "companies", &other, json!({"name": "B1"})).await;
    let contact = id(&admin
        .create(
            "contacts",
            json!({"first_name": "x", "company_id": company}),
        )
        .await);
    remove(&admin, "companies", &company).await;

    let h = walk(
        &admin,
        &format!("/api/v1/companies/{company}/history?order=asc"),
        2,
    )
    .await;
    assert_eq!(
        ops(&h),
        vec!["create", "update", "update", "update", "delete"]
    );
    assert!(h
        .iter()
        .all(|e| e["record_id"] == json!(company) && e["entity"] == "companies"));
    let names: Vec<&Value> = h.iter().map(|e| &e["after"]["name"]).collect();
    assert_eq!(names, vec!["A", "A1", "A2", "A3", "A3"]);
    // The same as the global history filtered by record.
    let global = history(&admin, &format!("entity=companies&record_id={company}")).await;
    assert_eq!(h, global);
    // Newest first by default; filters apply.
    let desc = items(&admin, &format!("/api/v1/companies/{company}/history")).await;
    assert_eq!(desc[0]["op"], "delete");
    let ups = items(
        &admin,
        &format!("/api/v1/companies/{company}/history?op=update"),
    )
    .await;
    assert_eq!(ups.len(), 3);
    let by = items(
        &admin,
        &format!(
            "/api/v1/companies/{company}/history?actor={}",
            admin.user_id
        ),
    )
    .await;
    assert_eq!(by.len(), 5);
    // The contact's history is its own (it was deleted in the company's batch).
    let ch = items(
        &admin,
        &format!("/api/v1/contacts/{contact}/history?order=asc"),
    )
    .await;
    assert_eq!(ops(&ch), vec!["create", "delete"]);
    assert_eq!(ch[1]["batch"], h[4]["batch"]);
    // The entity in the path matters.
    assert!(items(&admin, &format!("/api/v1/deals/{company}/history"))
        .await
        .is_empty());
    assert!(
        items(&admin, &format!("/api/v1/companies/{MISSING_ID}/history"))
            .await
            .is_empty()
    );
    let got = admin
        .get(&format!(
            "/api/v1/companies/{company}/history?record_id={other}"
        ))
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    let got = admin.get("/api/v1/companies/not-an-id/history").await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = admin
        .get(&format!("/api/v1/widgets/{company}/history"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    srv.stop().await;
}

async fn concurrent_writers_get_gap_free_seqs_one_batch_each(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let api = admin.clone();
        tasks.push(tokio::spawn(async move {
            let d = api.create("deals", json!({"title": format!("c{i}")})).await;
            let (s, v) = api
                .patch(
                    &format!("/api/v1/deals/{}", id(&d)),
                    json!({"stage": "won"}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let all = history(&admin, "").await;
    assert_eq!(seqs(&all), (1..=49).collect::<Vec<_>>());
    let batches: BTreeSet<&str> = all.iter().map(|e| e["batch"].as_str().unwrap()).collect();
    assert_eq!(batches.len(), 49, "every write is its own batch");
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time follows seq");
    assert_eq!(walk(&admin, "/api/v1/deals?stage=won", 7).await.len(), 24);
    srv.stop().await;
}

crate::engine_tests!(
    concurrent_writers_get_gap_free_seqs_one_batch_each,
    items_carry_images_and_field_changes_and_seqs_have_no_gaps,
    every_history_filter_narrows_the_journal,
    history_pages_in_both_orders_without_gaps_or_repeats,
    bad_history_queries_are_refused_by_parameter,
    per_record_history_shows_that_record_only,
);
