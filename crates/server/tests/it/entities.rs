//! CRUD of every entity over HTTP, the bin round trip of each, invoice arithmetic and payment
//! states, list pagination, field filters, text search and custom fields.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Asserts that every key of `expected` has that value in `got`.
fn assert_fields(got: &Value, expected: &Value) {
    for (k, v) in expected.as_object().expect("object") {
        assert_eq!(&got[k], v, "field '{k}' of {got}");
    }
}

/// The record image without `updated_at`, for comparing a record before and after a round trip.
fn stable(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut().expect("object").remove("updated_at");
    v
}

/// Create → get → patch → delete (gone from lists, `in_trash`) → restore from the bin → back as it
/// was. Returns the restored record.
async fn lifecycle(
    api: &Api,
    entity: &str,
    create: Value,
    expect_created: Value,
    patch: Value,
    expect_patched: Value,
) -> Value {
    let created = api.create(entity, create).await;
    let rid = id(&created);
    assert_fields(&created, &expect_created);
    assert_eq!(
        created["owner_id"],
        json!(api.user_id),
        "owner of a new {entity}"
    );
    assert!(
        created["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{created}"
    );
    assert!(
        created.get("deleted_at").is_none(),
        "live records carry no bin fields: {created}"
    );

    let got = fetch(api, entity, &rid).await;
    assert_eq!(got, created, "GET returns what POST returned");

    tick().await;
    let patched = update(api, entity, &rid, patch).await;
    assert_fields(&patched, &expect_patched);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(
        patched["updated_at"].as_str() > created["updated_at"].as_str(),
        "updated_at moves: {patched}"
    );
    assert_eq!(fetch(api, entity, &rid).await, patched);

    let listed = walk(api, &format!("/api/v1/{entity}"), 500).await;
    assert!(ids(&listed).contains(&rid), "{entity} {rid} listed");

    let del = remove(api, entity, &rid).await;
    assert!(
        del["batch"].as_str().is_some_and(|b| b.len() == 36),
        "{del}"
    );
    assert!(
        changes(&del).contains(&(entity.to_string(), rid.clone(), "delete".to_string())),
        "delete summary names the record: {del}"
    );
    assert_in_trash(api, entity, &rid).await;
    let listed = walk(api, &format!("/api/v1/{entity}"), 500).await;
    assert!(
        !ids(&listed).contains(&rid),
        "deleted {entity} still listed"
    );
    let bin = trash(api).await;
    let binned = bin
        .iter()
        .find(|r| r["id"] == json!(rid))
        .expect("record in the bin");
    assert_eq!(binned["entity"], entity);
    assert_eq!(binned["deleted_batch"], del["batch"]);
    assert_eq!(binned["deleted_by"], json!(api.user_id));
    let (s, one) = api.get(&format!("/api/v1/trash/{entity}/{rid}")).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["deleted_batch"], del["batch"]);

    let (s, restored) = api
        .post(&format!("/api/v1/trash/{entity}/{rid}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "restore {entity}: {restored}");
    assert!(
        changes(&restored).contains(&(entity.to_string(), rid.clone(), "restore".to_string())),
        "{restored}"
    );
    let back = fetch(api, entity, &rid).await;
    assert_eq!(
        stable(&back),
        stable(&patched),
        "{entity} comes back as it was"
    );
    assert!(
        trash(api).await.iter().all(|r| r["id"] != json!(rid)),
        "restored record left the bin"
    );
    back
}

async fn companies_lifecycle(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let body = json!({
        "name": "Romashka",
        "legal_name": "OOO Romashka",
        "inn": "7707083893",
        "kpp": "773601001",
        "addresses": [{"kind": "legal", "text": "Moscow, Tverskaya 1"}, {"text": "Moscow, Arbat 2", "kind": "actual"}],
        "bank_accounts": [{"account": "40702810900000000001", "bik": "044525225"}]
    });
    let expect = json!({
        "name": "Romashka",
        "legal_name": "OOO Romashka",
        "inn": "7707083893",
        "kpp": "773601001",
        "addresses": [{"kind": "legal", "text": "Moscow, Tverskaya 1"}, {"kind": "actual", "text": "Moscow, Arbat 2"}],
        "bank_accounts": [{"account": "40702810900000000001", "bik": "044525225", "currency": "RUB"}]
    });
    let patch = json!({"legal_name": "AO Romashka", "addresses": [{"text": "Kazan"}], "kpp": null});
    let expect_patch = json!({"name": "Romashka", "legal_name": "AO Romashka", "addresses": [{"kind": "legal", "text": "Kazan"}], "inn": "7707083893"});
    let back = lifecycle(&admin, "companies", body, expect, patch, expect_patch).await;
    assert!(back.get("kpp").is_none(), "null clears a field: {back}");

    // Bad row values name the row and field.
    let got = admin
        .post(
            "/api/v1/companies",
            json!({"name": "X", "bank_accounts": [{"account": "123", "bik": "044525225"}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("bank_accounts[0].account"),
    );
    let got = admin
        .post("/api/v1/companies", json!({"name": "X", "bank_accounts": [{"account": "40702810900000000001", "bik": "04452522"}]}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("bank_accounts[0].bik"),
    );
    let got = admin
        .post(
            "/api/v1/companies",
            json!({"name": "X", "addresses": [{"kind": "moon", "text": "a"}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("addresses[0].kind"),
    );
    let got = admin
        .post("/api/v1/companies", json!({"legal_name": "no name"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("name"),
    );
    // INN+KPP is unique among live companies.
    let got = admin
        .post(
            "/api/v1/companies",
            json!({"name": "Twin", "inn": "7707083893"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("inn"));
    srv.stop().await;
}

async fn contacts_lifecycle(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = admin.create("companies", json!({"name": "Acme"})).await;
    let body = json!({"first_name": "Ivan", "last_name": "Petrov", "email": "Ivan@Example.COM", "phone": "+7 (495) 123-45-67", "company_id": id(&company)});
    let expect = json!({"first_name": "Ivan", "last_name": "Petrov", "email": "Ivan@example.com", "phone": "+7 (495) 123-45-67", "company_id": id(&company)});
    let patch = json!({"last_name": "Sidorov", "phone": "8 800 555 35 35"});
    let expect_patch = json!({"first_name": "Ivan", "last_name": "Sidorov", "phone": "8 800 555 35 35", "company_id": id(&company)});
    lifecycle(&admin, "contacts", body, expect, patch, expect_patch).await;

    let got = admin
        .post("/api/v1/contacts", json!({"email": "a@b.ru"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("last_name"),
    );
    let got = admin
        .post(
            "/api/v1/contacts",
            json!({"first_name": "A", "company_id": MISSING_ID}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("company_id"));
    srv.stop().await;
}

async fn leads_lifecycle(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let body = json!({"title": "Website enquiry", "first_name": "Olga", "company_name": "Vector", "source": "web", "amount": "1500.50"});
    let expect = json!({"title": "Website enquiry", "first_name": "Olga", "company_name": "Vector", "source": "web", "status": "new", "amount": "1500.50", "currency": "RUB"});
    let patch = json!({"status": "qualified", "amount": "2000"});
    let expect_patch =
        json!({"title": "Website enquiry", "status": "qualified", "amount": "2000.00"});
    lifecycle(&admin, "leads", body, expect, patch, expect_patch).await;

    let got = admin
        .post("/api/v1/leads", json!({"title": "x", "status": "hot"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("status"),
    );
    srv.stop().await;
}

async fn deals_lifecycle(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = admin.create("companies", json!({"name": "Acme"})).await;
    let body = json!({"title": "Big sale", "amount": "100000", "currency": "USD", "company_id": id(&company)});
    let expect = json!({"title": "Big sale", "amount": "100000.00", "currency": "USD", "stage": "new", "pipeline": "default", "company_id": id(&company)});
    let patch = json!({"stage": "won", "amount": "123.45", "probability": 100});
    let expect_patch = json!({"title": "Big sale", "stage": "won", "amount": "123.45", "probability": 100, "currency": "USD"});
    lifecycle(&admin, "deals", body, expect, patch, expect_patch).await;

    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "stage": "closed"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("stage"),
    );
    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "amount": "-1"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );
    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "amount": "1.005"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );
    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "currency": "RUBL"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("currency"),
    );
    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "probability": 101}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("probability"),
    );
    srv.stop().await;
}

async fn activities_lifecycle(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = admin.create("deals", json!({"title": "D"})).await;
    for kind in ["task", "call", "meeting", "note"] {
        let a = admin
            .create(
                "activities",
                json!({"kind": kind, "subject": format!("a {kind}")}),
            )
            .await;
        assert_eq!(a["kind"], kind);
        assert_eq!(a["done"], false);
    }
    let body = json!({"kind": "task", "subject": "Call back", "due_at": "2026-03-01T10:00:00+03:00", "done": false, "linked_entity": "deals", "linked_id": id(&deal)});
    let expect = json!({"kind": "task", "subject": "Call back", "due_at": "2026-03-01T07:00:00.000000Z", "done": false, "linked_entity": "deals", "linked_id": id(&deal)});
    let patch = json!({"done": true, "kind": "call"});
    let expect_patch =
        json!({"done": true, "kind": "call", "subject": "Call back", "linked_id": id(&deal)});
    lifecycle(&admin, "activities", body, expect, patch, expect_patch).await;

    let got = admin
        .post(
            "/api/v1/activities",
            json!({"kind": "party", "subject": "x"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("kind"),
    );
    let got = admin
        .post("/api/v1/activities", json!({"kind": "task"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("subject"),
    );
    let got = admin
        .post(
            "/api/v1/activities",
            json!({"kind": "task", "subject": "x", "linked_entity": "deals"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("linked_id"),
    );
    let got = admin
        .post("/api/v1/activities", json!({"kind": "task", "subject": "x", "linked_entity": "deals", "linked_id": MISSING_ID}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("linked_id"));
    let got = admin
        .post("/api/v1/activities", json!({"kind": "task", "subject": "x", "linked_entity": "products", "linked_id": id(&deal)}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("linked_entity"),
    );
    srv.stop().await;
}

async fn products_lifecycle_and_unique_sku(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let body = json!({"name": "Widget", "sku": "W-1", "unit": "kg", "group": "Hardware", "price": "9.99", "vat_rate": "20"});
    let expect = json!({"name": "Widget", "sku": "W-1", "unit": "kg", "group": "Hardware", "price": "9.99", "vat_rate": "20", "active": true});
    let patch = json!({"group": "Tools", "active": false});
    let expect_patch = json!({"name": "Widget", "sku": "W-1", "group": "Tools", "active": false});
    let w = lifecycle(&admin, "products", body, expect, patch, expect_patch).await;

    let plain = admin.create("products", json!({"name": "Plain"})).await;
    assert_eq!(plain["unit"], "pcs", "unit defaults to pcs");
    let got = admin
        .post("/api/v1/products", json!({"name": "Clone", "sku": "W-1"}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("sku"));
    let got = admin
        .patch(
            &format!("/api/v1/products/{}", id(&plain)),
            json!({"sku": "W-1"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("sku"));
    // Changing the SKU frees the old value.
    update(&admin, "products", &id(&w), json!({"sku": "W-2"})).await;
    let p = update(&admin, "products", &id(&plain), json!({"sku": "W-1"})).await;
    assert_eq!(p["sku"], "W-1");
    let got = admin
        .post("/api/v1/products", json!({"name": "x", "vat_rate": "120"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("vat_rate"),
    );
    srv.stop().await;
}

async fn invoices_compute_totals_and_guard_status(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = admin.create("companies", json!({"name": "Buyer"})).await;
    let product = admin
        .create("products", json!({"name": "Service", "sku": "S1"}))
        .await;
    let lines = json!([
        {"product_id": id(&product), "description": "Consulting", "quantity": "2", "price": "100", "vat_rate": "20"},
        {"description": "Travel", "quantity": "1.5", "price": "50"}
    ]);
    let body = json!({"company_id": id(&company), "lines": lines, "issue_date": "2026-01-15"});
    let expect = json!({
        "company_id": id(&company),
        "status": "draft",
        "currency": "RUB",
        "number": "INV-000001",
        "subtotal": "275.00",
        "vat_total": "40.00",
        "total": "315.00",
        "paid_amount": "0.00",
        "issue_date": "2026-01-15"
    });
    let patch = json!({"status": "sent", "lines": [{"description": "Fixed", "quantity": "1", "price": "1000", "vat_rate": "20"}]});
    let expect_patch = json!({"status": "sent", "subtotal": "1000.00", "vat_total": "200.00", "total": "1200.00", "number": "INV-000001"});
    let inv = lifecycle(&admin, "invoices", body, expect, patch, expect_patch).await;
    assert_eq!(inv["lines"][0]["amount"], json!("1000.00"));
    assert_eq!(inv["lines"][0]["vat_amount"], json!("200.00"));
    assert_eq!(inv["lines"][0]["total"], json!("1200.00"));

    // The line figures of the first version.
    let second = admin
        .create("invoices", json!({"company_id": id(&company), "lines": [{"quantity": "3", "price": "100.10", "vat_rate": "20"}], "vat_included": true}))
        .await;
    assert_eq!(second["number"], "INV-000002", "numbers count up");
    assert_eq!(second["total"], json!("300.30"));
    assert_eq!(second["vat_total"], json!("50.05"));
    assert_eq!(second["subtotal"], json!("250.25"));

    // company_id is required; totals and paid states are the server's.
    let got = admin.post("/api/v1/invoices", json!({"lines": []})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("company_id"),
    );
    let got = admin
        .post(
            "/api/v1/invoices",
            json!({"company_id": id(&company), "total": "5"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("total"),
    );
    let got = admin
        .post(
            "/api/v1/invoices",
            json!({"company_id": id(&company), "status": "paid"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("status"));
    let got = admin
        .patch(
            &format!("/api/v1/invoices/{}", id(&inv)),
            json!({"status": "partly_paid"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("status"));
    let got = admin
        .patch(
            &format!("/api/v1/invoices/{}", id(&inv)),
            json!({"paid_amount": "10"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("paid_amount"),
    );
    let got = admin
        .post("/api/v1/invoices", json!({"company_id": id(&company), "lines": [{"quantity": "1", "price": "1", "product_id": MISSING_ID}]}))
        .await;
    assert_error(
        &got,
        StatusCode::CONFLICT,
        "reference",
        Some("lines[0].product_id"),
    );
    // Unchanged after all the refused writes.
    assert_eq!(
        stable(&fetch(&admin, "invoices", &id(&inv)).await),
        stable(&inv)
    );

    // Manual statuses.
    let cancelled = update(
        &admin,
        "invoices",
        &id(&second),
        json!({"status": "cancelled"}),
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled");
    let got = admin
        .post(
            "/api/v1/payments",
            json!({"invoice_id": id(&second), "amount": "1"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::CONFLICT,
        "invalid_state",
        Some("invoice_id"),
    );
    srv.stop().await;
}

async fn payments_move_the_invoice_through_paid_states(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = admin.create("companies", json!({"name": "Buyer"})).await;
    let inv = admin
        .create("invoices", json!({"company_id": id(&company), "status": "sent", "lines": [{"quantity": "1", "price": "1000"}]}))
        .await;
    let inv_id = id(&inv);
    assert_eq!(inv["total"], json!("1000.00"));

    let body =
        json!({"invoice_id": inv_id, "amount": "400", "date": "2026-02-01", "reference": "PP-17"});
    let expect = json!({"invoice_id": inv_id, "amount": "400.00", "currency": "RUB", "date": "2026-02-01", "reference": "PP-17", "method": "bank_transfer"});
    let patch = json!({"reference": "PP-17a", "amount": "300"});
    let expect_patch = json!({"reference": "PP-17a", "amount": "300.00"});
    // The lifecycle deletes and restores the payment; the invoice follows each step.
    let p1 = lifecycle(&admin, "payments", body, expect, patch, expect_patch).await;
    let i = fetch(&admin, "invoices", &inv_id).await;
    assert_eq!(
        (i["status"].as_str(), &i["paid_amount"]),
        (Some("partly_paid"), &json!("300.00"))
    );
    assert!(i.get("paid_at").is_none());

    let (s, created) = admin
        .post(
            "/api/v1/payments",
            json!({"invoice_id": inv_id, "amount": "700", "date": "2026-02-10"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let i = fetch(&admin, "invoices", &inv_id).await;
    assert_eq!(i["status"], "paid");
    assert_eq!(i["paid_amount"], json!("1000.00"));
    assert_eq!(i["paid_at"], "2026-02-10");

    // A paid invoice cannot be cancelled, nor its lines changed.
    let got = admin
        .patch(
            &format!("/api/v1/invoices/{inv_id}"),
            json!({"status": "cancelled"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("status"));
    // Nor set back to a manual status while its payments say it is paid.
    for status in ["draft", "sent"] {
        let got = admin
            .patch(
                &format!("/api/v1/invoices/{inv_id}"),
                json!({"status": status}),
            )
            .await;
        assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("status"));
    }
    assert_eq!(fetch(&admin, "invoices", &inv_id).await["status"], "paid");
    // Other fields of a paid invoice still change.
    let noted = update(
        &admin,
        "invoices",
        &inv_id,
        json!({"notes": "paid in two parts", "status": "paid"}),
    )
    .await;
    assert_eq!(
        (noted["status"].as_str(), noted["notes"].as_str()),
        (Some("paid"), Some("paid in two parts"))
    );
    let got = admin
        .patch(
            &format!("/api/v1/invoices/{inv_id}"),
            json!({"lines": [{"quantity": "2", "price": "1000"}]}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("lines"));
    // A payment cannot move to another invoice.
    let other = admin
        .create("invoices", json!({"company_id": id(&company)}))
        .await;
    let got = admin
        .patch(
            &format!("/api/v1/payments/{}", id(&created)),
            json!({"invoice_id": id(&other)}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::CONFLICT,
        "invalid_state",
        Some("invoice_id"),
    );
    let got = admin
        .post(
            "/api/v1/payments",
            json!({"invoice_id": inv_id, "amount": "0"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );

    // Deleting payments walks the status back.
    let del = remove(&admin, "payments", &id(&created)).await;
    assert!(
        changes(&del).contains(&("invoices".into(), inv_id.clone(), "update".into())),
        "the invoice update is in the payment's delete batch: {del}"
    );
    let i = fetch(&admin, "invoices", &inv_id).await;
    assert_eq!(
        (i["status"].as_str(), &i["paid_amount"]),
        (Some("partly_paid"), &json!("300.00"))
    );
    assert!(i.get("paid_at").is_none(), "{i}");
    remove(&admin, "payments", &id(&p1)).await;
    let i = fetch(&admin, "invoices", &inv_id).await;
    assert_eq!(
        (i["status"].as_str(), &i["paid_amount"]),
        (Some("sent"), &json!("0.00"))
    );

    // Restoring a payment from the bin pays the invoice again.
    let (s, _) = admin
        .post(
            &format!("/api/v1/trash/payments/{}/restore", id(&created)),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let i = fetch(&admin, "invoices", &inv_id).await;
    assert_eq!(
        (i["status"].as_str(), &i["paid_amount"]),
        (Some("partly_paid"), &json!("700.00"))
    );
    srv.stop().await;
}

async fn list_pagination_walks_every_record_once(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let mut created = Vec::new();
    for i in 0..11 {
        created.push(id(&admin
            .create("leads", json!({"title": format!("lead {i}")}))
            .await));
    }
    let all: BTreeSet<String> = created.iter().cloned().collect();
    for limit in [1, 3, 4, 11, 50] {
        let desc = ids(&walk(&admin, "/api/v1/leads", limit).await);
        assert_eq!(desc.len(), 11, "limit {limit}: no duplicates, none missing");
        assert_eq!(desc.iter().cloned().collect::<BTreeSet<_>>(), all);
        let mut newest_first = created.clone();
        newest_first.reverse();
        assert_eq!(desc, newest_first, "default order is newest first");
        let asc = ids(&walk(&admin, "/api/v1/leads?order=asc", limit).await);
        assert_eq!(asc, created, "order=asc is oldest first (limit {limit})");
    }
    // Exactly one page: no cursor.
    let (s, page) = admin.get("/api/v1/leads?limit=11").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(page["items"].as_array().unwrap().len(), 11);
    assert!(page["next_cursor"].is_null());
    let (s, page) = admin.get("/api/v1/leads?limit=10").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        page["next_cursor"],
        json!(created[1]),
        "cursor is the last id served"
    );
    // Deleting a record between pages neither repeats nor skips the others.
    let (_, first) = admin.get("/api/v1/leads?limit=5").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_string();
    remove(&admin, "leads", &created[3]).await;
    let rest = ids(&walk(&admin, &format!("/api/v1/leads?cursor={cursor}"), 5).await);
    let mut expect: Vec<String> = created[..6].to_vec();
    expect.reverse();
    expect.retain(|i| i != &created[3]);
    assert_eq!(rest, expect);
    // A foreign cursor is refused.
    let got = admin.get("/api/v1/leads?cursor=banana").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("cursor"),
    );
    let got = admin.get("/api/v1/leads?order=sideways").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("order"),
    );
    srv.stop().await;
}

async fn list_filters_by_field(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let acme = id(&admin.create("companies", json!({"name": "Acme"})).await);
    let other = id(&admin.create("companies", json!({"name": "Other"})).await);
    let won_acme = id(&admin
        .create(
            "deals",
            json!({"title": "w1", "stage": "won", "company_id": acme, "amount": "100"}),
        )
        .await);
    let won_other = id(&admin
        .create(
            "deals",
            json!({"title": "w2", "stage": "won", "company_id": other, "amount": "250.5"}),
        )
        .await);
    let new_acme = id(&admin
        .create(
            "deals",
            json!({"title": "n1", "company_id": acme, "amount": "100"}),
        )
        .await);
    let lone = id(&admin
        .create("deals", json!({"title": "lone", "stage": "lost"}))
        .await);

    let q = |path: &str| {
        let admin = admin.clone();
        let path = path.to_string();
        async move { set(ids(&walk(&admin, &path, 2).await)) }
    };
    assert_eq!(
        q("/api/v1/deals?stage=won").await,
        set([won_acme.clone(), won_other.clone()])
    );
    assert_eq!(
        q(&format!("/api/v1/deals?company_id={acme}")).await,
        set([won_acme.clone(), new_acme.clone()])
    );
    assert_eq!(
        q(&format!("/api/v1/deals?company_id={acme}&stage=won")).await,
        set([won_acme.clone()])
    );
    assert_eq!(
        q("/api/v1/deals?amount=100").await,
        set([won_acme.clone(), new_acme.clone()])
    );
    assert_eq!(
        q("/api/v1/deals?amount=250.5").await,
        set([won_other.clone()])
    );
    assert_eq!(
        q("/api/v1/deals?company_id=null").await,
        set([lone.clone()])
    );
    assert_eq!(
        q(&format!("/api/v1/deals?owner_id={}", admin.user_id))
            .await
            .len(),
        4
    );
    assert!(q("/api/v1/deals?stage=negotiation").await.is_empty());

    let t1 = id(&admin
        .create(
            "activities",
            json!({"kind": "task", "subject": "a", "done": true}),
        )
        .await);
    let t2 = id(&admin
        .create("activities", json!({"kind": "call", "subject": "b"}))
        .await);
    assert_eq!(q("/api/v1/activities?done=true").await, set([t1.clone()]));
    assert_eq!(q("/api/v1/activities?done=false").await, set([t2.clone()]));
    assert_eq!(q("/api/v1/activities?kind=call").await, set([t2.clone()]));

    // Bad filters name the parameter.
    let got = admin.get("/api/v1/deals?stage=closed").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("stage"),
    );
    let got = admin.get("/api/v1/deals?amount=lots").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );
    let got = admin.get("/api/v1/deals?colour=red").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("colour"),
    );
    let got = admin.get("/api/v1/deals?company_id=42").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("company_id"),
    );
    let got = admin.get("/api/v1/activities?done=yes").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("done"),
    );
    let got = admin.get("/api/v1/deals?owner_id=me").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("owner_id"),
    );
    let got = admin.get("/api/v1/deals?limit=1&limit=2").await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    srv.stop().await;
}

async fn q_searches_text_fields_case_insensitively(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let horns = id(&admin
        .create(
            "companies",
            json!({"name": "Horns & Hooves", "inn": "7707083893"}),
        )
        .await);
    let hooks = id(&admin
        .create(
            "companies",
            json!({"name": "Hooks Ltd", "email": "info@hooks.ru"}),
        )
        .await);
    let pct = id(&admin
        .create("companies", json!({"name": "100% Pure"}))
        .await);
    let q = |query: &str| {
        let admin = admin.clone();
        let path = format!("/api/v1/companies?q={query}");
        async move { set(ids(&walk(&admin, &path, 50).await)) }
    };
    assert_eq!(q("hOoVeS").await, set([horns.clone()]));
    assert_eq!(q("hoo").await, set([horns.clone(), hooks.clone()]));
    assert_eq!(
        q("hooks.ru").await,
        set([hooks.clone()]),
        "e-mail fields are searched"
    );
    assert_eq!(
        q("770708").await,
        set([horns.clone()]),
        "digit fields are searched (from their start)"
    );
    assert_eq!(q("7707083893").await, set([horns.clone()]), "an INN whole");
    assert_eq!(q("100%25").await, set([pct.clone()]), "% is punctuation");
    assert!(
        q("%25").await.is_empty(),
        "a lone % is no word and no wildcard"
    );
    assert_eq!(
        q("hoovez").await,
        set([horns.clone()]),
        "a typo is forgiven"
    );
    assert!(q("nothing-like-this").await.is_empty());
    // Search combines with filters and pagination; updates re-index.
    update(
        &admin,
        "companies",
        &hooks,
        json!({"name": "Hooves Trading"}),
    )
    .await;
    assert_eq!(q("hooves").await, set([horns.clone(), hooks.clone()]));
    assert_eq!(q("hooves&inn=7707083893").await, set([horns.clone()]));
    let paged = walk(&admin, "/api/v1/companies?q=hoo", 1).await;
    assert_eq!(set(ids(&paged)), set([horns.clone(), hooks.clone()]));
    // Deleted records are not found.
    remove(&admin, "companies", &horns).await;
    assert_eq!(q("hooves").await, set([hooks.clone()]));
    srv.stop().await;
}

async fn custom_fields_are_validated_filtered_and_documented(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let field = admin
        .create("fields", json!({"entity": "deals", "name": "region", "type": "enum", "options": ["north", "south"], "required": false}))
        .await;
    assert_eq!(field["name"], "region");

    let north = admin
        .create("deals", json!({"title": "N", "region": "north"}))
        .await;
    assert_eq!(north["region"], "north");
    let south = admin
        .create("deals", json!({"title": "S", "region": "south"}))
        .await;
    let none = admin.create("deals", json!({"title": "none"})).await;
    assert!(none.get("region").is_none());
    let got = admin
        .post("/api/v1/deals", json!({"title": "W", "region": "west"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("region"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("north"),
        "message lists the options: {}",
        got.1
    );
    let got = admin
        .patch(
            &format!("/api/v1/deals/{}", id(&north)),
            json!({"region": 7}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("region"),
    );
    let moved = update(&admin, "deals", &id(&south), json!({"region": "north"})).await;
    assert_eq!(moved["region"], "north");
    let found = set(ids(&walk(&admin, "/api/v1/deals?region=north", 10).await));
    assert_eq!(found, set([id(&north), id(&south)]));
    let got = admin.get("/api/v1/deals?region=east").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("region"),
    );
    // Other entities do not get the field.
    let got = admin
        .post("/api/v1/leads", json!({"title": "L", "region": "north"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("region"),
    );

    // Documented in the OpenAPI schema of deals.
    let (s, doc) = srv.anon().get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        doc["components"]["schemas"]["deals"]["properties"]["region"]["enum"],
        json!(["north", "south"])
    );

    // Definitions are checked.
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "region", "type": "string"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("entity"));
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "title", "type": "string"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("name"));
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "Bad Name", "type": "string"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("name"),
    );
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "tier", "type": "enum"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("options"),
    );
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "tier", "type": "json"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("type"),
    );
    let got = admin
        .post(
            "/api/v1/fields",
            json!({"entity": "users", "name": "tier", "type": "string"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("entity"),
    );

    // Number and required custom fields.
    admin
        .create(
            "fields",
            json!({"entity": "leads", "name": "score", "type": "number", "required": true}),
        )
        .await;
    // A required custom field is a rule of today's definitions: missing it is a conflict
    // with them (409), not a malformed request.
    let got = admin.post("/api/v1/leads", json!({"title": "L"})).await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("score"));
    let got = admin
        .post("/api/v1/leads", json!({"title": "L", "score": "high"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("score"),
    );
    let lead = admin
        .create("leads", json!({"title": "L", "score": "4.5"}))
        .await;
    assert_eq!(lead["score"], json!("4.5"));

    // Deleting the definition makes the field unknown again.
    remove(&admin, "fields", &id(&field)).await;
    let got = admin
        .post(
            "/api/v1/deals",
            json!({"title": "later", "region": "north"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("region"),
    );
    srv.stop().await;
}

async fn unknown_and_system_fields_are_refused_by_name(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    for (entity, body, field) in [
        ("companies", json!({"name": "A", "colour": "red"}), "colour"),
        (
            "contacts",
            json!({"first_name": "A", "nickname": "x"}),
            "nickname",
        ),
        ("leads", json!({"title": "A", "stage": "won"}), "stage"),
        ("deals", json!({"title": "A", "region": "north"}), "region"),
        (
            "activities",
            json!({"kind": "task", "subject": "s", "priority": 1}),
            "priority",
        ),
        ("products", json!({"name": "A", "weight": 3}), "weight"),
        (
            "invoices",
            json!({"company_id": MISSING_ID, "discount": 5}),
            "discount",
        ),
        (
            "payments",
            json!({"invoice_id": MISSING_ID, "amount": "1", "fee": 1}),
            "fee",
        ),
        ("companies", json!({"name": "A", "id": MISSING_ID}), "id"),
        (
            "companies",
            json!({"name": "A", "created_at": "2026-01-01T00:00:00Z"}),
            "created_at",
        ),
        (
            "companies",
            json!({"name": "A", "addresses": [{"text": "x", "floor": 3}]}),
            "addresses[0].floor",
        ),
    ] {
        let got = admin.post(&format!("/api/v1/{entity}"), body).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
        assert!(
            walk(&admin, &format!("/api/v1/{entity}"), 50)
                .await
                .is_empty(),
            "nothing created in {entity}"
        );
    }
    let c = admin.create("companies", json!({"name": "A"})).await;
    let got = admin
        .patch(
            &format!("/api/v1/companies/{}", id(&c)),
            json!({"colour": "red"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("colour"),
    );
    // Sending back what was read (system fields included) is accepted.
    let mut echo = c.clone();
    echo["name"] = json!("B");
    let got = update(&admin, "companies", &id(&c), echo).await;
    assert_eq!(got["name"], "B");
    assert_eq!(got["created_at"], c["created_at"]);
    srv.stop().await;
}

async fn batch_endpoint_is_all_or_nothing(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = admin.create("deals", json!({"title": "old"})).await;
    let (s, out) = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "create", "entity": "leads", "data": {"title": "L1"}},
                {"op": "update", "entity": "deals", "id": id(&deal), "data": {"title": "new"}},
                {"op": "create", "entity": "products", "data": {"name": "P"}}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{out}");
    let batch = out["batch"].as_str().unwrap().to_string();
    assert_eq!(out["records"][0]["title"], "L1");
    assert_eq!(out["records"][1]["title"], "new");
    assert_eq!(out["changes"].as_array().unwrap().len(), 3);
    let h = history(&admin, &format!("batch={batch}")).await;
    assert_eq!(h.len(), 3);

    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "create", "entity": "leads", "data": {"title": "L2"}},
                {"op": "update", "entity": "deals", "id": id(&deal), "data": {"stage": "nope"}}
            ]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations[1].data.stage"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("operation 1:"),
        "{}",
        got.1
    );
    let leads = walk(&admin, "/api/v1/leads", 50).await;
    assert_eq!(
        leads.len(),
        1,
        "the first operation of a refused batch is not applied"
    );
    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [{"op": "explode", "entity": "leads"}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations[0].op"),
    );
    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [{"op": "delete", "entity": "leads", "id": "x"}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations[0].id"),
    );
    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [{"op": "create", "entity": "users", "data": {}}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations[0].entity"),
    );
    let got = admin.post("/api/v1/batch", json!({"operations": []})).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations"),
    );
    srv.stop().await;
}

crate::engine_tests!(
    companies_lifecycle,
    contacts_lifecycle,
    leads_lifecycle,
    deals_lifecycle,
    activities_lifecycle,
    products_lifecycle_and_unique_sku,
    invoices_compute_totals_and_guard_status,
    payments_move_the_invoice_through_paid_states,
    list_pagination_walks_every_record_once,
    list_filters_by_field,
    q_searches_text_fields_case_insensitively,
    custom_fields_are_validated_filtered_and_documented,
    unknown_and_system_fields_are_refused_by_name,
    batch_endpoint_is_all_or_nothing,
);
