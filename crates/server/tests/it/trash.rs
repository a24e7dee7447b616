//! The recycle bin: cascading deletes in one batch, what deleted records look like, unique values
//! released by deletion, restore of a whole batch with its conflicts, purge and retention.

use crate::common::*;
use crate::support::*;
use kontor_core::Settings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

struct Tree {
    company: String,
    contacts: Vec<String>,
    deal: String,
    invoice: String,
    payment: String,
    activities: Vec<String>,
    /// Every record above.
    all: BTreeSet<(String, String)>,
}

/// A company with two contacts, a deal, an invoice with a payment, and activities linked to the
/// company, the deal, a contact and the invoice.
async fn tree(api: &Api, name: &str, inn: &str) -> Tree {
    let company = id(&api
        .create("companies", json!({"name": name, "inn": inn}))
        .await);
    let c1 = id(&api
        .create(
            "contacts",
            json!({"first_name": "A", "company_id": company}),
        )
        .await);
    let c2 = id(&api
        .create("contacts", json!({"last_name": "B", "company_id": company}))
        .await);
    let deal = id(&api
        .create("deals", json!({"title": "D", "company_id": company}))
        .await);
    let invoice = id(&api
        .create(
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "100"}]}),
        )
        .await);
    let payment = id(&api
        .create("payments", json!({"invoice_id": invoice, "amount": "100"}))
        .await);
    let mut activities = Vec::new();
    for (entity, target) in [
        ("companies", &company),
        ("deals", &deal),
        ("contacts", &c1),
        ("invoices", &invoice),
    ] {
        activities.push(id(&api
            .create("activities", json!({"kind": "note", "subject": format!("about {entity}"), "linked_entity": entity, "linked_id": target}))
            .await));
    }
    let mut all = BTreeSet::new();
    all.insert(("companies".to_string(), company.clone()));
    for c in [&c1, &c2] {
        all.insert(("contacts".to_string(), c.clone()));
    }
    all.insert(("deals".to_string(), deal.clone()));
    all.insert(("invoices".to_string(), invoice.clone()));
    all.insert(("payments".to_string(), payment.clone()));
    for a in &activities {
        all.insert(("activities".to_string(), a.clone()));
    }
    Tree {
        company,
        contacts: vec![c1, c2],
        deal,
        invoice,
        payment,
        activities,
        all,
    }
}

fn entity_ids(items: &[Value]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|i| (i["entity"].as_str().unwrap().to_string(), id(i)))
        .collect()
}

async fn deleting_a_company_bins_its_tree_in_one_batch_and_restore_brings_it_back(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let t = tree(&admin, "Acme", "7707083893").await;
    let keep = tree(&admin, "Keep", "500100732259").await;
    let paid = fetch(&admin, "invoices", &t.invoice).await;
    assert_eq!(paid["status"], "paid");

    let del = remove(&admin, "companies", &t.company).await;
    let batch = del["batch"].as_str().unwrap().to_string();
    let got: BTreeSet<(String, String)> =
        changes(&del).into_iter().map(|(e, i, _)| (e, i)).collect();
    assert_eq!(got, t.all, "exactly the tree is deleted");
    assert!(
        changes(&del).iter().all(|(_, _, op)| op == "delete"),
        "{del}"
    );
    let mut seqs: Vec<i64> = del["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs.len(), 10);
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "one batch, consecutive seqs: {seqs:?}"
    );

    // The bin holds exactly the tree, all from the one batch.
    let bin = trash(&admin).await;
    assert_eq!(entity_ids(&bin), t.all);
    for item in &bin {
        assert_eq!(item["deleted_batch"], json!(batch), "{item}");
        assert_eq!(item["deleted_by"], json!(admin.user_id));
        assert!(item["deleted_at"].as_str().is_some());
    }
    // The journal has the batch too.
    let h = history(&admin, &format!("batch={batch}")).await;
    assert_eq!(
        entity_ids(
            &h.iter()
                .map(|e| json!({"entity": e["entity"], "id": e["record_id"]}))
                .collect::<Vec<_>>()
        ),
        t.all
    );
    assert!(h.iter().all(|e| e["op"] == "delete"));

    // Deleted records: not listed, 404 in_trash, 409 deleted on change, in_trash on delete.
    for (entity, rid) in &t.all {
        assert!(
            !ids(&walk(&admin, &format!("/api/v1/{entity}"), 500).await).contains(rid),
            "{entity} {rid} listed"
        );
        assert_in_trash(&admin, entity, rid).await;
        let got = admin
            .patch(&format!("/api/v1/{entity}/{rid}"), json!({"notes": "x"}))
            .await;
        assert_error(&got, StatusCode::CONFLICT, "deleted", None);
        let got = admin.delete(&format!("/api/v1/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "in_trash", None);
    }
    // The other company's tree is untouched.
    for (entity, rid) in &keep.all {
        fetch(&admin, entity, rid).await;
    }
    // Children cannot be attached to a deleted parent.
    let got = admin
        .post(
            "/api/v1/contacts",
            json!({"first_name": "Late", "company_id": t.company}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("company_id"));

    // Restoring any member (here a contact) restores the whole batch.
    let (s, restored) = admin
        .post(
            &format!("/api/v1/trash/contacts/{}/restore", t.contacts[1]),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{restored}");
    let got: BTreeSet<(String, String)> = changes(&restored)
        .into_iter()
        .map(|(e, i, _)| (e, i))
        .collect();
    assert_eq!(got, t.all);
    assert!(changes(&restored).iter().all(|(_, _, op)| op == "restore"));
    assert_ne!(restored["batch"], json!(batch), "a restore is a new batch");
    assert!(trash(&admin).await.is_empty());
    for (entity, rid) in &t.all {
        let rec = fetch(&admin, entity, rid).await;
        assert!(rec.get("deleted_at").is_none(), "{rec}");
    }
    let inv = fetch(&admin, "invoices", &t.invoice).await;
    assert_eq!(
        (inv["status"].as_str(), &inv["paid_amount"]),
        (Some("paid"), &json!("100.00"))
    );
    assert_eq!(
        fetch(&admin, "activities", &t.activities[1]).await["linked_id"],
        json!(t.deal)
    );
    let (s, _) = admin.get(&format!("/api/v1/payments/{}", t.payment)).await;
    assert_eq!(s, StatusCode::OK);
    let restores = history(
        &admin,
        &format!("batch={}", restored["batch"].as_str().unwrap()),
    )
    .await;
    assert!(
        restores
            .iter()
            .all(|e| e["origin"] == "restore" && e["op"] == "restore"),
        "{restores:?}"
    );

    // Undoing the restore puts the whole tree back in the bin; undoing the delete brings it back.
    let (s, undone) = admin
        .post("/api/v1/history/undo", json!({"batch": restored["batch"]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{undone}");
    assert_eq!(entity_ids(&trash(&admin).await), t.all);
    let (s, redone) = admin
        .post("/api/v1/history/undo", json!({"batch": batch}))
        .await;
    assert_eq!(s, StatusCode::OK, "{redone}");
    assert!(trash(&admin).await.is_empty());
    assert_eq!(
        fetch(&admin, "invoices", &t.invoice).await["status"],
        "paid"
    );

    // Restoring something that is not in the bin.
    let got = admin
        .post(
            &format!("/api/v1/trash/deals/{}/restore", t.deal),
            json!({}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", None);
    let got = admin
        .post(
            &format!("/api/v1/trash/deals/{MISSING_ID}/restore"),
            json!({}),
        )
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    srv.stop().await;
}

async fn deleting_a_child_alone_leaves_the_parent(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let t = tree(&admin, "Acme", "7707083893").await;
    let del = remove(&admin, "deals", &t.deal).await;
    let got: BTreeSet<(String, String)> =
        changes(&del).into_iter().map(|(e, i, _)| (e, i)).collect();
    assert_eq!(
        got,
        set_of(&[("deals", &t.deal), ("activities", &t.activities[1])]),
        "a deal takes its activities with it, nothing else"
    );
    fetch(&admin, "companies", &t.company).await;
    // Deleting the company now takes the rest in a second batch; restoring the deal's batch
    // needs the company back first.
    let del2 = remove(&admin, "companies", &t.company).await;
    assert_eq!(changes(&del2).len(), 8);
    let got = admin
        .post(
            &format!("/api/v1/trash/deals/{}/restore", t.deal),
            json!({}),
        )
        .await;
    let c = conflicts(&got);
    assert_eq!(
        c,
        vec![("parent_deleted".to_string(), Some("company_id".to_string()))]
    );
    assert_in_trash(&admin, "deals", &t.deal).await;
    admin
        .post(
            &format!("/api/v1/trash/companies/{}/restore", t.company),
            json!({}),
        )
        .await;
    fetch(&admin, "companies", &t.company).await;
    assert_in_trash(&admin, "deals", &t.deal).await;
    let (s, v) = admin
        .post(
            &format!("/api/v1/trash/deals/{}/restore", t.deal),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    fetch(&admin, "activities", &t.activities[1]).await;
    srv.stop().await;
}

fn set_of(items: &[(&str, &String)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(e, i)| (e.to_string(), i.to_string()))
        .collect()
}

async fn deleted_records_release_unique_values_and_restore_reports_unique_taken(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let first = id(&admin
        .create("products", json!({"name": "First", "sku": "X-1"}))
        .await);
    remove(&admin, "products", &first).await;
    let second = id(&admin
        .create("products", json!({"name": "Second", "sku": "X-1"}))
        .await);

    let got = admin
        .post(
            &format!("/api/v1/trash/products/{first}/restore"),
            json!({}),
        )
        .await;
    let c = conflicts(&got);
    assert_eq!(
        c,
        vec![("unique_taken".to_string(), Some("sku".to_string()))]
    );
    let conflict = &got.1["error"]["conflicts"][0];
    assert_eq!(conflict["entity"], "products");
    assert_eq!(conflict["record_id"], json!(first));
    assert!(
        conflict["message"].as_str().unwrap().contains("X-1"),
        "{conflict}"
    );
    // Nothing applied: the first is still in the bin, the second keeps the SKU.
    assert_in_trash(&admin, "products", &first).await;
    assert_eq!(fetch(&admin, "products", &second).await["sku"], "X-1");
    assert!(history(&admin, &format!("record_id={first}&op=restore"))
        .await
        .is_empty());
    let got = admin
        .post("/api/v1/products", json!({"name": "Third", "sku": "X-1"}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("sku"));

    // Once the value is free again, the restore goes through and takes it back.
    update(&admin, "products", &second, json!({"sku": "X-2"})).await;
    let (s, v) = admin
        .post(
            &format!("/api/v1/trash/products/{first}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(fetch(&admin, "products", &first).await["sku"], "X-1");
    let got = admin
        .patch(&format!("/api/v1/products/{second}"), json!({"sku": "X-1"}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("sku"));

    // Case-insensitive keys too: an invoice number.
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let inv = id(&admin
        .create("invoices", json!({"company_id": company, "number": "A-1"}))
        .await);
    let got = admin
        .post(
            "/api/v1/invoices",
            json!({"company_id": company, "number": "a-1"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("number"));
    remove(&admin, "invoices", &inv).await;
    admin
        .create("invoices", json!({"company_id": company, "number": "a-1"}))
        .await;
    let got = admin
        .post(&format!("/api/v1/trash/invoices/{inv}/restore"), json!({}))
        .await;
    assert_eq!(
        conflicts(&got),
        vec![("unique_taken".to_string(), Some("number".to_string()))]
    );
    srv.stop().await;
}

async fn purge_is_admin_only_and_scrubs_history(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m = srv.user("m@x.ru", "manager", None).await;
    let deal = id(&m
        .create("deals", json!({"title": "Secret", "amount": "5"}))
        .await);
    update(&m, "deals", &deal, json!({"amount": "6"})).await;

    // A live record cannot be purged.
    let got = admin.delete(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", None);
    remove(&m, "deals", &deal).await;
    // Only an admin purges, even the owner may not.
    let got = m.delete(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    let (s, one) = m.get(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_eq!(s, StatusCode::OK, "the owner sees it in the bin: {one}");
    assert_eq!(one["title"], "Secret");

    let (s, purged) = admin.delete(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_eq!(s, StatusCode::OK, "{purged}");
    assert_eq!(
        changes(&purged),
        BTreeSet::from([("deals".to_string(), deal.clone(), "purge".to_string())])
    );
    // Gone everywhere.
    assert_not_found(&admin, "deals", &deal).await;
    let got = admin.get(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    assert!(trash(&admin).await.is_empty());
    let got = admin.delete(&format!("/api/v1/trash/deals/{deal}")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = admin
        .post(&format!("/api/v1/trash/deals/{deal}/restore"), json!({}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);

    // History keeps tombstones without images.
    let (s, h) = admin
        .get(&format!("/api/v1/deals/{deal}/history?order=asc"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let h = h["items"].as_array().unwrap();
    let ops: Vec<&str> = h.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["create", "update", "delete", "purge"]);
    for e in h {
        assert!(
            e["before"].is_null() && e["after"].is_null(),
            "images scrubbed: {e}"
        );
        assert_eq!(e["changes"], json!([]), "{e}");
        if e["op"] != "purge" {
            assert_eq!(e["scrubbed"], true, "{e}");
        }
    }
    let purge = h.last().unwrap();
    assert_eq!(purge["actor"], json!(admin.user_id));
    assert_eq!(purge["origin"], "api");
    // The global history says the same, and nothing there still holds the title.
    let all = history(&admin, "entity=deals").await;
    assert_eq!(all.len(), 4);
    assert!(!serde_json::to_string(&all).unwrap().contains("Secret"));
    // Restore to a time when it existed, or undo of any of its batches, is refused as purged.
    let got = admin
        .post(
            &format!("/api/v1/deals/{deal}/restore"),
            json!({"at": h[1]["at"]}),
        )
        .await;
    assert_eq!(conflicts(&got)[0].0, "purged");
    for e in h {
        let got = admin
            .post("/api/v1/history/undo", json!({"batch": e["batch"]}))
            .await;
        assert_eq!(
            conflicts(&got),
            vec![("purged".to_string(), None)],
            "undo of the {} batch",
            e["op"]
        );
    }
    srv.stop().await;
}

async fn restoring_a_child_of_a_purged_parent_is_a_parent_missing_conflict(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "Gone"})).await);
    let contact = id(&admin
        .create(
            "contacts",
            json!({"first_name": "Orphan", "company_id": company}),
        )
        .await);
    remove(&admin, "companies", &company).await;
    let (s, _) = admin
        .delete(&format!("/api/v1/trash/companies/{company}"))
        .await;
    assert_eq!(s, StatusCode::OK);

    let got = admin
        .post(
            &format!("/api/v1/trash/contacts/{contact}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(
        conflicts(&got),
        vec![("parent_missing".to_string(), Some("company_id".to_string()))]
    );
    assert_eq!(got.1["error"]["conflicts"][0]["record_id"], json!(contact));
    assert_in_trash(&admin, "contacts", &contact).await;
    assert_eq!(ids(&trash(&admin).await), vec![contact.clone()]);
    // The contact can still be purged.
    let (s, _) = admin
        .delete(&format!("/api/v1/trash/contacts/{contact}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(trash(&admin).await.is_empty());
    srv.stop().await;
}

async fn trash_lists_by_entity_with_pagination(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let mut deals = BTreeSet::new();
    for i in 0..5 {
        let d = id(&admin
            .create("deals", json!({"title": format!("d{i}")}))
            .await);
        remove(&admin, "deals", &d).await;
        deals.insert(d);
    }
    // One batch of three records at the same instant.
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let c1 = id(&admin
        .create(
            "contacts",
            json!({"first_name": "a", "company_id": company}),
        )
        .await);
    let c2 = id(&admin
        .create(
            "contacts",
            json!({"first_name": "b", "company_id": company}),
        )
        .await);
    remove(&admin, "companies", &company).await;

    for limit in [1, 2, 3, 100] {
        let all = walk(&admin, "/api/v1/trash", limit).await;
        assert_eq!(all.len(), 8, "limit {limit}");
        assert_eq!(set(ids(&all)).len(), 8, "no duplicates at limit {limit}");
        let times: Vec<&str> = all
            .iter()
            .map(|r| r["deleted_at"].as_str().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "newest deletion first: {times:?}"
        );
    }
    let only = walk(&admin, "/api/v1/trash?entity=deals", 2).await;
    assert_eq!(set(ids(&only)), deals);
    assert!(only.iter().all(|r| r["entity"] == "deals"));
    let contacts = walk(&admin, "/api/v1/trash?entity=contacts", 1).await;
    assert_eq!(set(ids(&contacts)), set([c1, c2]));
    let got = admin.get("/api/v1/trash?entity=widgets").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("entity"),
    );
    let got = admin.get("/api/v1/trash?cursor=nonsense").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("cursor"),
    );
    let got = admin.get("/api/v1/trash?color=red").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    let got = admin
        .get(&format!("/api/v1/trash/widgets/{MISSING_ID}"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    srv.stop().await;
}

async fn retention_purges_expired_records_as_system(engine: Engine) {
    let srv = TestServer::start_with(
        engine,
        Settings {
            trash_retention_days: 30,
            ..Settings::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let t = tree(&admin, "Old", "7707083893").await;
    let lead = id(&admin.create("leads", json!({"title": "L"})).await);
    let live = id(&admin.create("deals", json!({"title": "stays"})).await);
    remove(&admin, "companies", &t.company).await;
    remove(&admin, "leads", &lead).await;
    assert_eq!(trash(&admin).await.len(), 11);

    let now = kontor_domain::time::now();
    let n = srv
        .kontor
        .purge_expired(now + chrono::Duration::days(29))
        .await
        .expect("purge");
    assert_eq!(n, 0, "nothing is old enough yet");
    assert_eq!(trash(&admin).await.len(), 11);

    let n = srv
        .kontor
        .purge_expired(now + chrono::Duration::days(31))
        .await
        .expect("purge");
    assert_eq!(n, 11);
    assert!(trash(&admin).await.is_empty(), "the bin is empty");
    let purges = history(&admin, "op=purge").await;
    assert_eq!(purges.len(), 11);
    for p in &purges {
        assert_eq!(p["origin"], "system", "{p}");
        assert_eq!(p["actor"], "system", "{p}");
    }
    let mut purged = record_ids(&purges);
    purged.remove(&lead);
    assert_eq!(purged, t.all.iter().map(|(_, i)| i.clone()).collect());
    assert_eq!(history(&admin, "origin=system&op=purge").await.len(), 11);
    // Their earlier history is scrubbed; live records are untouched.
    let h = history(&admin, &format!("record_id={}", t.company)).await;
    assert!(h
        .iter()
        .all(|e| e["before"].is_null() && e["after"].is_null()));
    assert!(h
        .iter()
        .filter(|e| e["op"] != "purge")
        .all(|e| e["scrubbed"] == true));
    fetch(&admin, "deals", &live).await;
    // A second run finds nothing.
    let n = srv
        .kontor
        .purge_expired(now + chrono::Duration::days(31))
        .await
        .expect("purge");
    assert_eq!(n, 0);
    srv.stop().await;
}

async fn retention_zero_keeps_the_bin_forever(engine: Engine) {
    let srv = TestServer::start_with(
        engine,
        Settings {
            trash_retention_days: 0,
            ..Settings::default()
        },
    )
    .await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "kept"})).await);
    remove(&admin, "deals", &deal).await;
    let now = kontor_domain::time::now();
    let n = srv
        .kontor
        .purge_expired(now + chrono::Duration::days(3650))
        .await
        .expect("purge");
    assert_eq!(n, 0);
    assert_eq!(ids(&trash(&admin).await), vec![deal.clone()]);
    assert!(history(&admin, "op=purge").await.is_empty());
    srv.stop().await;
}

async fn an_invoice_restored_without_its_purged_payment_is_unpaid_again(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let inv = id(&admin
        .create("invoices", json!({"company_id": company, "status": "sent", "lines": [{"quantity": "1", "price": "100"}]}))
        .await);
    let kept = id(&admin
        .create("payments", json!({"invoice_id": inv, "amount": "30"}))
        .await);
    let gone = id(&admin
        .create("payments", json!({"invoice_id": inv, "amount": "70"}))
        .await);
    assert_eq!(fetch(&admin, "invoices", &inv).await["status"], "paid");
    let del = remove(&admin, "invoices", &inv).await;
    assert_eq!(
        changes(&del).len(),
        3,
        "the invoice takes its payments to the bin"
    );
    let (s, _) = admin
        .delete(&format!("/api/v1/trash/payments/{gone}"))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, v) = admin
        .post(&format!("/api/v1/trash/invoices/{inv}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    fetch(&admin, "payments", &kept).await;
    let i = fetch(&admin, "invoices", &inv).await;
    assert_eq!(
        i["paid_amount"],
        json!("30.00"),
        "only the payment still recorded counts: {i}"
    );
    assert_eq!(i["status"], "partly_paid");

    // With no payment left at all.
    let del = remove(&admin, "invoices", &inv).await;
    assert_eq!(changes(&del).len(), 2);
    let (s, _) = admin
        .delete(&format!("/api/v1/trash/payments/{kept}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = admin
        .post(&format!("/api/v1/trash/invoices/{inv}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let i = fetch(&admin, "invoices", &inv).await;
    assert_eq!(
        i["paid_amount"],
        json!("0.00"),
        "no payment is recorded any more: {i}"
    );
    assert_eq!(i["status"], "sent");
    assert!(i.get("paid_at").is_none());
    srv.stop().await;
}

async fn the_retention_run_forgets_revoked_sessions_and_keeps_live_ones(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let live = srv.admin().await;
    let revoked = srv.admin().await;
    let (s, _) = revoked.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    // A retention run now keeps both: the revocation is less than a day old.
    srv.kontor
        .purge_expired(kontor_domain::time::now())
        .await
        .expect("retention run");
    let (s, _) = live.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    // Two days on, the revoked session goes and the live one (valid for 30 days) stays.
    let later = kontor_domain::time::now() + chrono::Duration::days(2);
    let pruned = srv.kontor.store.prune_sessions(later).await.expect("prune");
    assert_eq!(pruned, 1, "exactly the revoked session is pruned");
    assert_eq!(
        srv.kontor.store.prune_sessions(later).await.expect("prune"),
        0
    );
    let (s, _) = live.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = revoked.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

crate::engine_tests!(
    the_retention_run_forgets_revoked_sessions_and_keeps_live_ones,
    deleting_a_company_bins_its_tree_in_one_batch_and_restore_brings_it_back,
    deleting_a_child_alone_leaves_the_parent,
    deleted_records_release_unique_values_and_restore_reports_unique_taken,
    purge_is_admin_only_and_scrubs_history,
    restoring_a_child_of_a_purged_parent_is_a_parent_missing_conflict,
    trash_lists_by_entity_with_pagination,
    retention_purges_expired_records_as_system,
    retention_zero_keeps_the_bin_forever,
    an_invoice_restored_without_its_purged_payment_is_unpaid_again,
);
