//! Restore to a point in time and undo: of a restore, of a batch, of one user's work in a period;
//! conflicts refuse the whole operation and leave every record as it was.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn restore_at(api: &Api, entity: &str, rid: &str, at: &str) -> (StatusCode, Value) {
    api.post(
        &format!("/api/v1/{entity}/{rid}/restore"),
        json!({"at": at}),
    )
    .await
}

async fn undo(api: &Api, body: Value) -> (StatusCode, Value) {
    api.post("/api/v1/history/undo", body).await
}

fn ok(got: (StatusCode, Value)) -> Value {
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    got.1
}

fn batch_of(v: &Value) -> String {
    v["batch"].as_str().expect("batch").to_string()
}

/// The entity fields of a record (no system fields), for comparing states.
fn fields(v: &Value) -> Value {
    Value::Object(kontor_core::read::fields_only(v))
}

/// The entries of the journal written with origin `restore`.
async fn restore_entries(api: &Api) -> Vec<Value> {
    history(api, "origin=restore").await
}

async fn restore_to_a_time_puts_fields_back_as_a_new_undoable_batch(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = admin
        .create("deals", json!({"title": "A", "amount": "10"}))
        .await;
    let did = id(&deal);
    let t_a = mark().await;
    let b = update(
        &admin,
        "deals",
        &did,
        json!({"title": "B", "amount": "20", "stage": "won"}),
    )
    .await;
    let t_b = mark().await;
    let c = update(
        &admin,
        "deals",
        &did,
        json!({"notes": "called twice", "amount": null}),
    )
    .await;

    let r1 = ok(restore_at(&admin, "deals", &did, &t_a).await);
    assert_eq!(
        changes(&r1),
        [("deals".to_string(), did.clone(), "update".to_string())].into()
    );
    assert_eq!(
        fields(&r1["record"]),
        fields(&deal),
        "the record as it was at t_a"
    );
    let now_rec = fetch(&admin, "deals", &did).await;
    assert_eq!(fields(&now_rec), fields(&deal));
    assert!(now_rec.get("notes").is_none());
    assert_eq!(now_rec["created_at"], deal["created_at"]);
    let entries = history(&admin, &format!("batch={}", batch_of(&r1))).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (entries[0]["origin"].as_str(), entries[0]["op"].as_str()),
        (Some("restore"), Some("update"))
    );
    assert_eq!(entries[0]["actor"], json!(admin.user_id));

    // Another point in time.
    let r2 = ok(restore_at(&admin, "deals", &did, &t_b).await);
    assert_eq!(fields(&fetch(&admin, "deals", &did).await), fields(&b));

    // Undo the restore: back to what it replaced; the undo is itself a restore-origin batch.
    let u2 = ok(undo(&admin, json!({"batch": batch_of(&r2)})).await);
    assert_eq!(fields(&fetch(&admin, "deals", &did).await), fields(&deal));
    let u2_entries = history(&admin, &format!("batch={}", batch_of(&u2))).await;
    assert!(u2_entries.iter().all(|e| e["origin"] == "restore"));
    let u1 = ok(undo(&admin, json!({"batch": batch_of(&r1)})).await);
    assert_eq!(
        fields(&fetch(&admin, "deals", &did).await),
        fields(&c),
        "both restores undone"
    );
    // And the undo can be undone.
    ok(undo(&admin, json!({"batch": batch_of(&u1)})).await);
    assert_eq!(fields(&fetch(&admin, "deals", &did).await), fields(&deal));

    // Restoring to the state it already has changes nothing.
    let same = ok(restore_at(&admin, "deals", &did, &t_a).await);
    assert_eq!(same["changes"], json!([]));
    assert!(history(&admin, &format!("batch={}", batch_of(&same)))
        .await
        .is_empty());

    // A time in the future is the record as it is now: nothing to change.
    let future =
        kontor_domain::time::format(kontor_domain::time::now() + chrono::Duration::hours(1));
    let later = ok(restore_at(&admin, "deals", &did, &future).await);
    assert_eq!(later["changes"], json!([]));

    // Bad requests.
    assert_error(
        &restore_at(&admin, "deals", &did, "yesterday").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("at"),
    );
    let got = admin
        .post(&format!("/api/v1/deals/{did}/restore"), json!({}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("at"),
    );
    assert_error(
        &restore_at(&admin, "deals", MISSING_ID, &t_a).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &restore_at(&admin, "leads", &did, &t_a).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    srv.stop().await;
}

async fn restore_to_before_a_record_existed_moves_it_to_the_bin(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let t0 = mark().await;
    let company = admin.create("companies", json!({"name": "Young"})).await;
    let cid = id(&company);
    let contact = id(&admin
        .create("contacts", json!({"first_name": "K", "company_id": cid}))
        .await);
    let t1 = mark().await;
    update(&admin, "companies", &cid, json!({"name": "Older"})).await;

    let r = ok(restore_at(&admin, "companies", &cid, &t0).await);
    assert_eq!(
        changes(&r),
        [
            ("companies".to_string(), cid.clone(), "delete".to_string()),
            (
                "contacts".to_string(),
                contact.clone(),
                "delete".to_string()
            )
        ]
        .into(),
        "it goes to the bin with what depends on it"
    );
    assert!(r["record"]["deleted_batch"].is_string(), "{r}");
    assert_in_trash(&admin, "companies", &cid).await;
    assert_in_trash(&admin, "contacts", &contact).await;
    assert_eq!(
        set(ids(&trash(&admin).await)),
        set([cid.clone(), contact.clone()])
    );
    let h = history(&admin, &format!("batch={}", batch_of(&r))).await;
    assert!(h
        .iter()
        .all(|e| e["origin"] == "restore" && e["op"] == "delete"));

    // Restoring a binned record to a time it was live brings it back as it was then.
    let back = ok(restore_at(&admin, "companies", &cid, &t1).await);
    assert_eq!(
        changes(&back),
        [("companies".to_string(), cid.clone(), "restore".to_string())].into()
    );
    assert_eq!(fetch(&admin, "companies", &cid).await["name"], "Young");
    assert_in_trash(&admin, "contacts", &contact).await;

    // The contact comes back from the bin with its batch (the company is live already).
    let (s, v) = admin
        .post(
            &format!("/api/v1/trash/contacts/{contact}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        changes(&v),
        [(
            "contacts".to_string(),
            contact.clone(),
            "restore".to_string()
        )]
        .into()
    );
    // Undo of the bin move brings the contact back too.
    remove(&admin, "companies", &cid).await;
    let again = ok(restore_at(&admin, "companies", &cid, &t0).await);
    assert_eq!(again["changes"], json!([]), "already in the bin");
    admin
        .post(&format!("/api/v1/trash/companies/{cid}/restore"), json!({}))
        .await;
    let r = ok(restore_at(&admin, "companies", &cid, &t0).await);
    ok(undo(&admin, json!({"batch": batch_of(&r)})).await);
    fetch(&admin, "companies", &cid).await;
    fetch(&admin, "contacts", &contact).await;
    srv.stop().await;
}

async fn undo_of_a_batch_reverts_every_change_in_it(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin
        .create("deals", json!({"title": "before", "amount": "1"}))
        .await);
    let product = id(&admin
        .create("products", json!({"name": "P", "sku": "P1"}))
        .await);
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let contact = id(&admin
        .create(
            "contacts",
            json!({"first_name": "x", "company_id": company}),
        )
        .await);
    let (s, out) = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "create", "entity": "leads", "data": {"title": "new lead"}},
                {"op": "update", "entity": "deals", "id": deal, "data": {"title": "after", "amount": "2"}},
                {"op": "delete", "entity": "products", "id": product},
                {"op": "delete", "entity": "companies", "id": company}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let lead = id(&out["records"][0]);
    assert_in_trash(&admin, "contacts", &contact).await;

    let u = ok(undo(&admin, json!({"batch": batch_of(&out)})).await);
    let ch = changes(&u);
    assert!(
        ch.contains(&("leads".into(), lead.clone(), "delete".into())),
        "{u}"
    );
    assert!(
        ch.contains(&("deals".into(), deal.clone(), "update".into())),
        "{u}"
    );
    assert!(
        ch.contains(&("products".into(), product.clone(), "restore".into())),
        "{u}"
    );
    assert!(
        ch.contains(&("companies".into(), company.clone(), "restore".into())),
        "{u}"
    );
    assert!(
        ch.contains(&("contacts".into(), contact.clone(), "restore".into())),
        "{u}"
    );
    assert_in_trash(&admin, "leads", &lead).await;
    let d = fetch(&admin, "deals", &deal).await;
    assert_eq!(
        (d["title"].as_str(), &d["amount"]),
        (Some("before"), &json!("1.00"))
    );
    assert_eq!(fetch(&admin, "products", &product).await["sku"], "P1");
    fetch(&admin, "contacts", &contact).await;
    assert!(history(&admin, &format!("batch={}", batch_of(&u)))
        .await
        .iter()
        .all(|e| e["origin"] == "restore"));

    // Undoing the undo redoes the batch.
    ok(undo(&admin, json!({"batch": batch_of(&u)})).await);
    fetch(&admin, "leads", &lead).await;
    assert_eq!(fetch(&admin, "deals", &deal).await["title"], "after");
    assert_in_trash(&admin, "products", &product).await;
    assert_in_trash(&admin, "contacts", &contact).await;

    let got = undo(&admin, json!({"batch": MISSING_ID})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = undo(&admin, json!({"batch": "yesterday's"})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("batch"),
    );
    let got = undo(&admin, json!({})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("batch"),
    );
    srv.stop().await;
}

async fn undo_of_one_users_period_keeps_other_users_changes(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let m2 = srv.user("m2@x.ru", "manager", None).await;
    let d1 = id(&m1
        .create("deals", json!({"title": "m1 deal", "stage": "new"}))
        .await);
    let d2 = id(&m2
        .create("deals", json!({"title": "m2 deal", "stage": "new"}))
        .await);
    let shared = id(&admin
        .create("deals", json!({"title": "admin deal", "amount": "5"}))
        .await);

    let from = mark().await;
    update(
        &m1,
        "deals",
        &d1,
        json!({"stage": "won", "title": "m1 won"}),
    )
    .await;
    update(&m2, "deals", &d2, json!({"stage": "lost"})).await;
    let d3 = id(&m1.create("deals", json!({"title": "m1 second"})).await);
    update(&m1, "deals", &d1, json!({"amount": "300"})).await;
    update(&admin, "deals", &shared, json!({"amount": "6"})).await;
    let to = mark().await;
    // After the window m1 changes a field the window wrote.
    update(&m1, "deals", &d1, json!({"title": "m1 later"})).await;

    // A manager may not undo another user's work.
    let got = undo(&m2, json!({"actor": m1.user_id, "from": from, "to": to})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    assert_eq!(fetch(&m1, "deals", &d1).await["stage"], "won");

    // The later change conflicts: nothing is applied at all, not even to d3.
    let got = undo(&admin, json!({"actor": m1.user_id, "from": from, "to": to})).await;
    assert_eq!(
        conflicts(&got),
        vec![("changed_since".to_string(), Some("title".to_string()))]
    );
    assert_eq!(got.1["error"]["conflicts"][0]["record_id"], json!(d1));
    assert_eq!(
        fetch(&m1, "deals", &d1).await["stage"],
        "won",
        "nothing applied"
    );
    fetch(&m1, "deals", &d3).await;
    // Once the field holds its in-window value again, the undo goes through.
    update(&m1, "deals", &d1, json!({"title": "m1 won"})).await;
    let u = ok(undo(&admin, json!({"actor": m1.user_id, "from": from, "to": to})).await);
    let d = fetch(&m1, "deals", &d1).await;
    assert_eq!(
        (d["title"].as_str(), d["stage"].as_str()),
        (Some("m1 deal"), Some("new"))
    );
    assert!(d.get("amount").is_none());
    assert_in_trash(&m1, "deals", &d3).await;
    assert_eq!(
        fetch(&m2, "deals", &d2).await["stage"],
        "lost",
        "m2's change in the same period stays"
    );
    assert_eq!(
        fetch(&admin, "deals", &shared).await["amount"],
        json!("6.00"),
        "the admin's change stays"
    );
    let entries = history(&admin, &format!("batch={}", batch_of(&u))).await;
    assert_eq!(record_ids(&entries), set([d1.clone(), d3.clone()]));
    assert!(entries
        .iter()
        .all(|e| e["actor"] == json!(admin.user_id) && e["origin"] == "restore"));

    // A user may undo their own period.
    let from2 = mark().await;
    update(&m2, "deals", &d2, json!({"title": "renamed"})).await;
    let to2 = mark().await;
    ok(undo(&m2, json!({"actor": m2.user_id, "from": from2, "to": to2})).await);
    assert_eq!(fetch(&m2, "deals", &d2).await["title"], "m2 deal");

    // A reversed period holds no changes; a missing end is refused.
    let got = undo(&admin, json!({"actor": m1.user_id, "from": to, "to": from})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = undo(&admin, json!({"actor": m1.user_id, "to": to})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("from"),
    );
    let got = undo(
        &admin,
        json!({"actor": m1.user_id, "from": from, "to": "soon"}),
    )
    .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("to"),
    );
    let empty = mark().await;
    let got = undo(
        &admin,
        json!({"actor": m1.user_id, "from": empty, "to": empty}),
    )
    .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    srv.stop().await;
}

async fn undo_refuses_fields_changed_since_by_someone_else_and_applies_nothing(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let other = srv.user("a2@x.ru", "admin", None).await;
    let d1 = id(&admin
        .create("deals", json!({"title": "one", "amount": "1"}))
        .await);
    let d2 = id(&admin
        .create("deals", json!({"title": "two", "amount": "2"}))
        .await);
    let (s, out) = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "update", "entity": "deals", "id": d1, "data": {"title": "one v2"}},
                {"op": "update", "entity": "deals", "id": d2, "data": {"title": "two v2", "amount": "20"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    // Someone else changes a field the batch wrote.
    update(&other, "deals", &d2, json!({"title": "two v3"})).await;
    let before1 = fetch(&admin, "deals", &d1).await;
    let before2 = fetch(&admin, "deals", &d2).await;

    let got = undo(&admin, json!({"batch": batch_of(&out)})).await;
    let c = conflicts(&got);
    assert_eq!(
        c,
        vec![("changed_since".to_string(), Some("title".to_string()))]
    );
    let conflict = &got.1["error"]["conflicts"][0];
    assert_eq!(
        (conflict["entity"].as_str(), conflict["record_id"].as_str()),
        (Some("deals"), Some(d2.as_str()))
    );
    assert_eq!(
        fetch(&admin, "deals", &d1).await,
        before1,
        "nothing applied to the other record"
    );
    assert_eq!(
        fetch(&admin, "deals", &d2).await,
        before2,
        "nothing applied to the conflicting record"
    );
    assert!(
        restore_entries(&admin).await.is_empty(),
        "no restore was journaled"
    );

    // A change to a different field does not conflict: undo is field by field.
    let (_, out) = admin.post("/api/v1/batch", json!({"operations": [{"op": "update", "entity": "deals", "id": d1, "data": {"title": "one v3"}}]})).await;
    update(&other, "deals", &d1, json!({"amount": "100"})).await;
    ok(undo(&admin, json!({"batch": batch_of(&out)})).await);
    let d = fetch(&admin, "deals", &d1).await;
    assert_eq!(
        (d["title"].as_str(), &d["amount"]),
        (Some("one v2"), &json!("100.00"))
    );

    // A record deleted since cannot have an update undone.
    let (_, out) = admin.post("/api/v1/batch", json!({"operations": [{"op": "update", "entity": "deals", "id": d1, "data": {"stage": "won"}}]})).await;
    remove(&other, "deals", &d1).await;
    let got = undo(&admin, json!({"batch": batch_of(&out)})).await;
    assert_eq!(conflicts(&got), vec![("changed_since".to_string(), None)]);
    assert_in_trash(&admin, "deals", &d1).await;
    srv.stop().await;
}

async fn restore_to_a_time_reports_a_taken_unique_value(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let p = id(&admin
        .create("products", json!({"name": "P", "sku": "A"}))
        .await);
    let t = mark().await;
    update(&admin, "products", &p, json!({"sku": "B", "name": "P2"})).await;
    let q = id(&admin
        .create("products", json!({"name": "Q", "sku": "A"}))
        .await);

    let got = restore_at(&admin, "products", &p, &t).await;
    let c = conflicts(&got);
    assert_eq!(
        c,
        vec![("unique_taken".to_string(), Some("sku".to_string()))]
    );
    let rec = fetch(&admin, "products", &p).await;
    assert_eq!(
        (rec["sku"].as_str(), rec["name"].as_str()),
        (Some("B"), Some("P2")),
        "nothing applied"
    );
    assert_eq!(fetch(&admin, "products", &q).await["sku"], "A");
    assert!(restore_entries(&admin).await.is_empty());

    // The same through undo of the SKU change.
    let h = history(&admin, &format!("record_id={p}&op=update")).await;
    let got = undo(&admin, json!({"batch": h[0]["batch"]})).await;
    assert_eq!(
        conflicts(&got),
        vec![("unique_taken".to_string(), Some("sku".to_string()))]
    );
    assert_eq!(fetch(&admin, "products", &p).await["sku"], "B");

    // Freed again, both work.
    remove(&admin, "products", &q).await;
    ok(restore_at(&admin, "products", &p, &t).await);
    assert_eq!(fetch(&admin, "products", &p).await["sku"], "A");
    srv.stop().await;
}

async fn restoring_an_invoice_keeps_its_paid_state_in_line_with_its_payments(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let inv = id(&admin
        .create("invoices", json!({"company_id": company, "status": "sent", "lines": [{"quantity": "1", "price": "100"}]}))
        .await);
    let t = mark().await;
    admin
        .create(
            "payments",
            json!({"invoice_id": inv, "amount": "100", "date": "2026-03-01"}),
        )
        .await;
    update(&admin, "invoices", &inv, json!({"notes": "thanks"})).await;
    let paid = fetch(&admin, "invoices", &inv).await;
    assert_eq!(paid["status"], "paid");

    // Back to before the payment: the notes go, but the payment is still recorded.
    ok(restore_at(&admin, "invoices", &inv, &t).await);
    let i = fetch(&admin, "invoices", &inv).await;
    assert!(i.get("notes").is_none(), "{i}");
    assert_eq!(
        i["status"], "paid",
        "the paid state follows the recorded payments: {i}"
    );
    assert_eq!(i["paid_amount"], json!("100.00"));
    assert_eq!(i["paid_at"], "2026-03-01");
    srv.stop().await;
}

async fn managers_restore_and_undo_only_their_own_records(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let m2 = srv.user("m2@x.ru", "manager", None).await;
    let d = id(&m1.create("deals", json!({"title": "mine"})).await);
    let t = mark().await;
    let upd = m1
        .patch(
            &format!("/api/v1/deals/{d}"),
            json!({"title": "still mine"}),
        )
        .await;
    assert_eq!(upd.0, StatusCode::OK);
    let h = history(&m1, &format!("entity=deals&record_id={d}")).await;
    let batch = h[1]["batch"].as_str().unwrap().to_string();

    // m2 cannot restore m1's record, nor undo m1's batch: it looks absent to m2.
    let got = restore_at(&m2, "deals", &d, &t).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = undo(&m2, json!({"batch": batch})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = undo(&m2, json!({"actor": m1.user_id, "from": t, "to": now()})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    assert_eq!(fetch(&m1, "deals", &d).await["title"], "still mine");
    // Even when undoing would conflict, m2 learns nothing about the record.
    update(&m1, "deals", &d, json!({"title": "third"})).await;
    let got = undo(&m2, json!({"batch": batch})).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    assert!(got.1["error"].get("conflicts").is_none());

    // m1 can.
    ok(restore_at(&m1, "deals", &d, &t).await);
    assert_eq!(fetch(&m1, "deals", &d).await["title"], "mine");
    srv.stop().await;
}

crate::engine_tests!(
    restore_to_a_time_puts_fields_back_as_a_new_undoable_batch,
    restore_to_before_a_record_existed_moves_it_to_the_bin,
    undo_of_a_batch_reverts_every_change_in_it,
    undo_of_one_users_period_keeps_other_users_changes,
    undo_refuses_fields_changed_since_by_someone_else_and_applies_nothing,
    restore_to_a_time_reports_a_taken_unique_value,
    restoring_an_invoice_keeps_its_paid_state_in_line_with_its_payments,
    managers_restore_and_undo_only_their_own_records,
);
