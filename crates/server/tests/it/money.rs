//! Money is exact end to end: decimal strings in and out, computed per line in the currency's
//! minor units, bounded like 1C's numbers, and never a binary floating-point number.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::json;

async fn company(admin: &Api) -> String {
    id(&admin.create("companies", json!({"name": "Buyer"})).await)
}

async fn lines_that_break_f64_total_exactly(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let c = company(&admin).await;
    // Neither factor nor the product survives a trip through f64.
    let inv = admin
        .create(
            "invoices",
            json!({"company_id": c, "lines": [
                {"quantity": "999999999999.999", "price": "9999999999999.99", "vat_rate": "20"},
                {"quantity": "0.001", "price": "0.10", "vat_rate": "20"},
                {"quantity": "3", "price": "0.10"}
            ]}),
        )
        .await;
    assert_eq!(inv["lines"][0]["amount"], "9999999999999980000000000.00");
    assert_eq!(
        inv["lines"][0]["vat_amount"],
        "1999999999999996000000000.00"
    );
    assert_eq!(inv["lines"][1]["amount"], "0.00", "0.0001 rounds to 0.00");
    assert_eq!(inv["lines"][2]["total"], "0.30", "not 0.30000000000000004");
    assert_eq!(inv["subtotal"], "9999999999999980000000000.30");
    assert_eq!(inv["vat_total"], "1999999999999996000000000.00");
    assert_eq!(inv["total"], "11999999999999976000000000.30");
    // The same numbers come back on GET, in history, and filter exactly.
    let got = fetch(&admin, "invoices", &id(&inv)).await;
    assert_eq!(got["total"], inv["total"]);
    let hist = items(&admin, &format!("/api/v1/invoices/{}/history", id(&inv))).await;
    assert_eq!(hist[0]["after"]["total"], inv["total"]);
}

async fn money_is_refused_as_a_number_or_past_its_bounds(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let c = company(&admin).await;
    for (line, field) in [
        (json!({"quantity": "1", "price": 10.5}), "lines[0].price"),
        (
            json!({"quantity": 1, "price": "10.50"}),
            "lines[0].quantity",
        ),
        (
            json!({"quantity": "1000000000000", "price": "1"}),
            "lines[0].quantity",
        ),
        (
            json!({"quantity": "1.0001", "price": "1"}),
            "lines[0].quantity",
        ),
        (
            json!({"quantity": "1", "price": "10000000000000"}),
            "lines[0].price",
        ),
        (json!({"quantity": "1", "price": "1.001"}), "lines[0].price"),
        (json!({"quantity": "1", "price": "-1"}), "lines[0].price"),
        (json!({"quantity": "1", "price": "1e3"}), "lines[0].price"),
        (
            json!({"quantity": "1", "price": "1", "vat_rate": "100.5"}),
            "lines[0].vat_rate",
        ),
        (
            json!({"quantity": "1", "price": "1", "total": "5"}),
            "lines[0].total",
        ),
    ] {
        let got = admin
            .post(
                "/api/v1/invoices",
                json!({"company_id": c, "lines": [line]}),
            )
            .await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    let got = admin
        .post("/api/v1/deals", json!({"title": "x", "amount": 100}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decimal string"),
        "{}",
        got.1
    );
}

async fn each_currency_keeps_its_minor_units(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let c = company(&admin).await;
    let yen = admin
        .create(
            "invoices",
            json!({"company_id": c, "currency": "JPY", "lines": [{"quantity": "3", "price": "333", "vat_rate": "10"}]}),
        )
        .await;
    assert_eq!(yen["lines"][0]["vat_amount"], "100");
    assert_eq!(yen["total"], "1099");
    let got = admin
        .post(
            "/api/v1/invoices",
            json!({"company_id": c, "currency": "JPY", "lines": [{"quantity": "1", "price": "1.5"}]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("lines[0].price"),
    );
    // A payment is in its invoice's currency; decimals it cannot hold are a conflict with it.
    let got = admin
        .post(
            "/api/v1/payments",
            json!({"invoice_id": id(&yen), "amount": "1.50"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("amount"));
    let pay = admin
        .create(
            "payments",
            json!({"invoice_id": id(&yen), "amount": "1099"}),
        )
        .await;
    assert_eq!(
        (pay["amount"].as_str(), pay["currency"].as_str()),
        (Some("1099"), Some("JPY"))
    );
    assert_eq!(fetch(&admin, "invoices", &id(&yen)).await["status"], "paid");
    // Three decimals for dinars; changing a deal's currency restates its amount.
    let deal = admin
        .create(
            "deals",
            json!({"title": "Kuwait", "amount": "10.5", "currency": "KWD"}),
        )
        .await;
    assert_eq!(deal["amount"], "10.500");
    let (s, moved) = admin
        .patch(
            &format!("/api/v1/deals/{}", id(&deal)),
            json!({"currency": "RUB"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["amount"], "10.50");
    let (s, e) = admin
        .patch(
            &format!("/api/v1/deals/{}", id(&deal)),
            json!({"currency": "JPY"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    // Filters match the value, however it is written.
    for q in ["10.5", "10.50", "10.500"] {
        let found = items(&admin, &format!("/api/v1/deals?amount={q}")).await;
        assert_eq!(ids(&found), vec![id(&deal)], "amount={q}");
    }
}

crate::engine_tests!(
    lines_that_break_f64_total_exactly,
    money_is_refused_as_a_number_or_past_its_bounds,
    each_currency_keeps_its_minor_units,
);
