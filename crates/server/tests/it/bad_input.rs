//! Malformed requests: bad JSON, wrong types, unknown paths and ids, missing or bad tokens, bad
//! query parameters, oversized bodies and wrong methods. Every answer is a JSON error with a code
//! and a message, and none gives away internals.

use crate::common::*;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Fails if an error body says anything about the server's insides.
fn assert_no_internals(got: &(StatusCode, Value)) {
    let text = got.1.to_string();
    for needle in [
        "sqlx",
        "SQLITE",
        "sqlite",
        "panicked",
        "no such table",
        "syntax error",
        "constraint",
        "backtrace",
        ".rs:",
    ] {
        assert!(
            !text.contains(needle),
            "error body mentions {needle:?}: {text}"
        );
    }
}

/// An error of the documented shape: `{"error":{"code","message"}}` and nothing else at the top.
fn assert_error_shape(got: &(StatusCode, Value)) {
    assert!(
        got.0.is_client_error() || got.0.is_server_error(),
        "not an error: {} {}",
        got.0,
        got.1
    );
    let obj = got
        .1
        .as_object()
        .unwrap_or_else(|| panic!("error body is not a JSON object: {}", got.1));
    assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["error"], "{}", got.1);
    assert!(
        got.1["error"]["code"]
            .as_str()
            .is_some_and(|c| !c.is_empty()),
        "{}",
        got.1
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
    assert_no_internals(got);
}

async fn malformed_json_is_a_400_that_says_so(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    for (method, path) in [
        (Method::POST, "/api/v1/companies".to_string()),
        (Method::PATCH, format!("/api/v1/deals/{deal}")),
        (Method::POST, "/api/v1/batch".to_string()),
        (Method::POST, "/api/v1/history/undo".to_string()),
        (Method::POST, format!("/api/v1/deals/{deal}/restore")),
        (Method::POST, "/api/v1/users".to_string()),
        (Method::PATCH, format!("/api/v1/users/{}", admin.user_id)),
    ] {
        for body in ["{\"name\": ", "{name: 'x'}", "not json", "{\"a\":1}}", ""] {
            let got = admin.raw(method.clone(), &path, body).await;
            assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
            assert_error_shape(&got);
        }
    }
    let got = srv
        .anon()
        .raw(Method::POST, "/api/v1/auth/login", "{\"email\": \"a\"")
        .await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    let got = admin
        .raw(Method::POST, "/api/v1/companies", "{\"name\": ")
        .await;
    assert!(
        got.1["error"]["message"].as_str().unwrap().contains("JSON"),
        "{}",
        got.1
    );
    // Absurd nesting is refused, not crashed on.
    let deep: &'static str =
        Box::leak(format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_boxed_str());
    let got = admin.raw(Method::POST, "/api/v1/companies", deep).await;
    assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
    // Nothing was written by any of it.
    assert!(items(&admin, "/api/v1/companies").await.is_empty());
    assert_eq!(fetch(&admin, "deals", &deal).await["title"], "D");
    let (s, _) = admin.get("/readyz").await;
    assert_eq!(s, StatusCode::OK);
    srv.stop().await;
}

async fn a_body_that_is_not_an_object_is_refused_with_a_message(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    for body in ["[1, 2]", "\"deal\"", "42", "null", "true"] {
        for (method, path) in [
            (Method::POST, "/api/v1/deals".to_string()),
            (Method::PATCH, format!("/api/v1/deals/{deal}")),
        ] {
            let got = admin.raw(method, &path, body).await;
            assert!(
                got.0 == StatusCode::UNPROCESSABLE_ENTITY || got.0 == StatusCode::BAD_REQUEST,
                "{body}: {} {}",
                got.0,
                got.1
            );
            assert_error_shape(&got);
            assert!(
                got.1["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("object"),
                "{}",
                got.1
            );
        }
        let got = admin.raw(Method::POST, "/api/v1/users", body).await;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
        assert_error_shape(&got);
        let got = admin
            .raw(Method::POST, &format!("/api/v1/deals/{deal}/restore"), body)
            .await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("at"),
        );
        let got = admin.raw(Method::POST, "/api/v1/batch", body).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("operations"),
        );
        let got = srv
            .anon()
            .raw(Method::POST, "/api/v1/auth/login", body)
            .await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some("email"),
        );
    }
    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [{"op": "create", "entity": "deals", "data": [1]}]}),
        )
        .await;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert_error_shape(&got);
    assert_eq!(items(&admin, "/api/v1/deals").await.len(), 1);
    srv.stop().await;
}

async fn wrong_types_name_the_field(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let cases = [
        ("deals", json!({"title": "x", "amount": "ten"}), "amount"),
        ("deals", json!({"title": "x", "amount": true}), "amount"),
        ("deals", json!({"title": "x", "amount": "1e20"}), "amount"),
        ("deals", json!({"title": 42}), "title"),
        ("deals", json!({"title": "two\nlines"}), "title"),
        ("deals", json!({"title": "x".repeat(256)}), "title"),
        (
            "deals",
            json!({"title": "x", "close_date": "31.12.2026"}),
            "close_date",
        ),
        (
            "deals",
            json!({"title": "x", "probability": 50.5}),
            "probability",
        ),
        (
            "deals",
            json!({"title": "x", "company_id": "acme"}),
            "company_id",
        ),
        ("deals", json!({"title": "x", "owner_id": "me"}), "owner_id"),
        ("companies", json!({"name": "x", "inn": "12"}), "inn"),
        (
            "companies",
            json!({"name": "x", "inn": 7707083893u64}),
            "inn",
        ),
        (
            "companies",
            json!({"name": "x", "inn": "77070838ab"}),
            "inn",
        ),
        (
            "companies",
            json!({"name": "x", "inn": "500100732259", "kpp": "773601001"}),
            "kpp",
        ),
        (
            "companies",
            json!({"name": "x", "addresses": "Moscow"}),
            "addresses",
        ),
        (
            "companies",
            json!({"name": "x", "addresses": ["Moscow"]}),
            "addresses[0]",
        ),
        (
            "contacts",
            json!({"first_name": "x", "email": "nope"}),
            "email",
        ),
        (
            "contacts",
            json!({"first_name": "x", "email": "a@b"}),
            "email",
        ),
        (
            "contacts",
            json!({"first_name": "x", "phone": "call me"}),
            "phone",
        ),
        (
            "contacts",
            json!({"first_name": "x", "emails": ["a@b.ru", "bad"]}),
            "emails[1]",
        ),
        (
            "contacts",
            json!({"first_name": "x", "birthday": "2026-02-30"}),
            "birthday",
        ),
        (
            "activities",
            json!({"kind": "task", "subject": "x", "due_at": "tomorrow"}),
            "due_at",
        ),
        (
            "activities",
            json!({"kind": "task", "subject": "x", "due_at": "2026-03-01"}),
            "due_at",
        ),
        (
            "activities",
            json!({"kind": "task", "subject": "x", "done": "yes"}),
            "done",
        ),
        ("leads", json!({"title": "x", "source": 3}), "source"),
        (
            "products",
            json!({"name": "x", "price": "9,999.00"}),
            "price",
        ),
        (
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10"}, {"price": "5"}]}),
            "lines[1].quantity",
        ),
        (
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10"}, {"quantity": "1"}]}),
            "lines[1].price",
        ),
        (
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "lots", "price": "10"}]}),
            "lines[0].quantity",
        ),
        (
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10", "vat_rate": "101"}]}),
            "lines[0].vat_rate",
        ),
        (
            "invoices",
            json!({"company_id": company, "issue_date": 20260101}),
            "issue_date",
        ),
        (
            "payments",
            json!({"invoice_id": company, "amount": "ten"}),
            "amount",
        ),
    ];
    for (entity, body, field) in cases {
        let got = admin.post(&format!("/api/v1/{entity}"), body.clone()).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
        assert_error_shape(&got);
        let message = got.1["error"]["message"].as_str().unwrap().to_lowercase();
        assert!(message.contains(field), "message names {field}: {}", got.1);
    }
    // The same through PATCH, and the record is left as it was.
    let deal = admin
        .create("deals", json!({"title": "D", "amount": "5"}))
        .await;
    let got = admin
        .patch(
            &format!("/api/v1/deals/{}", id(&deal)),
            json!({"amount": "ten", "title": "E"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("amount"),
    );
    assert_eq!(fetch(&admin, "deals", &id(&deal)).await, deal);
    // And through a batch, which names the operation's field.
    let got = admin
        .post("/api/v1/batch", json!({"operations": [{"op": "create", "entity": "contacts", "data": {"first_name": "x", "email": "nope"}}]}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("operations[0].data.email"),
    );
    for entity in [
        "deals",
        "contacts",
        "activities",
        "leads",
        "products",
        "payments",
    ] {
        let n = items(&admin, &format!("/api/v1/{entity}")).await.len();
        assert_eq!(
            n,
            usize::from(entity == "deals"),
            "nothing created in {entity}"
        );
    }
    assert!(items(&admin, "/api/v1/invoices").await.is_empty());
    srv.stop().await;
}

async fn unknown_paths_entities_and_ids_are_json_404s(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    let upper = deal.to_uppercase();
    let gets = [
        "/api/v1/widgets".to_string(),
        format!("/api/v1/widgets/{deal}"),
        format!("/api/v1/widgets/{deal}/history"),
        "/api/v1/deals/123".to_string(),
        "/api/v1/deals/not-an-id".to_string(),
        format!("/api/v1/deals/{{{deal}}}"),
        format!("/api/v1/deals/{MISSING_ID}"),
        format!("/api/v1/deals/{deal}/nothing"),
        format!("/api/v1/deals/{deal}/history/x"),
        "/api/v1/deals/123/history".to_string(),
        format!("/api/v1/users/{deal}"),
        "/api/v1/users/42".to_string(),
        "/api/v1/trash/deals/123".to_string(),
        format!("/api/v1/trash/widgets/{deal}"),
        "/api/v2/deals".to_string(),
        "/api/nothing".to_string(),
        "/api".to_string(),
    ];
    // An id in capitals is the same id.
    let (s, got) = admin.get(&format!("/api/v1/deals/{upper}")).await;
    assert_eq!(
        (s, got["id"].as_str()),
        (StatusCode::OK, Some(deal.as_str()))
    );
    for path in &gets {
        let got = admin.get(path).await;
        assert_eq!(got.0, StatusCode::NOT_FOUND, "{path}: {}", got.1);
        assert_error_shape(&got);
    }
    for got in [
        admin.post("/api/v1/widgets", json!({"name": "x"})).await,
        admin
            .patch("/api/v1/deals/123", json!({"title": "x"}))
            .await,
        admin.delete("/api/v1/deals/123").await,
        admin
            .patch(&format!("/api/v1/widgets/{deal}"), json!({"title": "x"}))
            .await,
        admin.delete(&format!("/api/v1/widgets/{deal}")).await,
        admin
            .post(
                &format!("/api/v1/widgets/{deal}/restore"),
                json!({"at": now()}),
            )
            .await,
        admin
            .post("/api/v1/deals/123/restore", json!({"at": now()}))
            .await,
        admin
            .patch(
                &format!("/api/v1/deals/{MISSING_ID}"),
                json!({"title": "x"}),
            )
            .await,
        admin.delete(&format!("/api/v1/deals/{MISSING_ID}")).await,
        admin
            .post("/api/v1/trash/deals/123/restore", json!({}))
            .await,
        admin.delete("/api/v1/trash/deals/123").await,
        admin.patch("/api/v1/users/42", json!({"name": "x"})).await,
    ] {
        assert_eq!(got.0, StatusCode::NOT_FOUND, "{}", got.1);
        assert_error_shape(&got);
    }
    let got = admin.get("/api/v1/widgets").await;
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deals"),
        "lists the entities: {}",
        got.1
    );
    // Users are not served by the generic record routes.
    let got = admin
        .post("/api/v1/users/x/restore", json!({"at": now()}))
        .await;
    assert_eq!(got.0, StatusCode::NOT_FOUND);
    let got = admin.get(&format!("/api/v1/users/{}", admin.user_id)).await;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    srv.stop().await;
}

async fn missing_and_bad_tokens_are_401(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    let bad_tokens = [
        "",
        "garbage",
        "kt_0000000000000000000000000000000000000000000000000000000000000000",
    ];
    let paths = [
        "/api/v1/deals".to_string(),
        format!("/api/v1/deals/{deal}"),
        "/api/v1/history".to_string(),
        "/api/v1/trash".to_string(),
        "/api/v1/users".to_string(),
        "/api/v1/auth/me".to_string(),
        // Authentication comes before path checks: nothing is revealed to strangers.
        "/api/v1/widgets".to_string(),
        "/api/v1/deals/123".to_string(),
    ];
    for path in &paths {
        let got = srv.anon().get(path).await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
        assert_error_shape(&got);
        for t in bad_tokens {
            let mut api = srv.anon();
            api.token = Some(t.to_string());
            let got = api.get(path).await;
            assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
        }
    }
    // The challenge header, and other schemes.
    let url = format!("{}/api/v1/deals", srv.base);
    let r = srv.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    let r = srv
        .client
        .get(&url)
        .basic_auth(ADMIN_EMAIL, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = srv
        .client
        .get(&url)
        .header(
            "authorization",
            format!("Token {}", admin.token.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The scheme name is case-insensitive.
    let r = srv
        .client
        .get(&url)
        .header(
            "authorization",
            format!("bearer {}", admin.token.clone().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Writes too, and nothing is written.
    let got = srv
        .anon()
        .post("/api/v1/deals", json!({"title": "sneaky"}))
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let got = srv.anon().delete(&format!("/api/v1/deals/{deal}")).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    assert_eq!(items(&admin, "/api/v1/deals").await.len(), 1);
    // Health endpoints are open.
    let (s, _) = srv.anon().get("/healthz").await;
    assert_eq!(s, StatusCode::OK);
    srv.stop().await;
}

async fn bad_query_parameters_are_refused(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    for path in [
        "/api/v1/history?foo=1",
        "/api/v1/history?limit=abc",
        "/api/v1/history?limit=-5",
        "/api/v1/history?limit=1.5",
        "/api/v1/deals?limit=abc",
        "/api/v1/deals?limit=",
        "/api/v1/trash?limit=abc",
        "/api/v1/trash?foo=1",
        "/api/v1/users?limit=abc",
        "/api/v1/history?entity=deals&entity=leads",
        "/api/v1/deals?q=a&q=b",
    ] {
        let got = admin.get(path).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "bad_request", None);
        assert_error_shape(&got);
    }
    for path in [
        "/api/v1/history?limit=0",
        "/api/v1/history?limit=501",
        "/api/v1/deals?limit=0",
        "/api/v1/deals?limit=100000",
        "/api/v1/trash?limit=0",
        "/api/v1/users?limit=0",
        "/api/v1/deals?foo=1",
        "/api/v1/deals?title%22)%20OR%201=1--=x",
        "/api/v1/deals?password_hash=x",
        "/api/v1/users?password_hash=x",
    ] {
        let got = admin.get(path).await;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {}", got.1);
        assert_error_shape(&got);
        assert!(got.1["error"]["field"].is_string(), "{path}: {}", got.1);
    }
    let got = admin.get("/api/v1/history?foo=1").await;
    assert!(
        got.1["error"]["message"].as_str().unwrap().contains("foo"),
        "{}",
        got.1
    );
    // Text that looks like SQL is only text.
    admin.create("deals", json!({"title": "D"})).await;
    assert!(items(&admin, "/api/v1/deals?q=%27%20OR%20%271%27=%271")
        .await
        .is_empty());
    assert!(items(&admin, "/api/v1/deals?title=%27%20OR%201=1--")
        .await
        .is_empty());
    assert_eq!(items(&admin, "/api/v1/deals?limit=500").await.len(), 1);
    srv.stop().await;
}

async fn bodies_must_say_they_are_json_and_paths_must_be_utf8(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let token = admin.token.clone().unwrap();
    let send = |ct: Option<&'static str>| {
        let mut req = srv
            .client
            .post(format!("{}/api/v1/deals", srv.base))
            .bearer_auth(&token)
            .body(r#"{"title": "From a form"}"#);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let resp = send(ct).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct:?}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unsupported_media_type", "{body}");
    }
    for ct in [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ] {
        assert_eq!(
            send(Some(ct)).await.unwrap().status(),
            StatusCode::CREATED,
            "{ct}"
        );
    }
    // A path segment that is not UTF-8 is a JSON 400, not axum's plain text.
    for path in [
        "/api/v1/deals/%FF%FE",
        "/api/v1/%C3%28",
        "/api/v1/trash/deals/%FF",
    ] {
        let resp = srv
            .client
            .get(format!("{}{path}", srv.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: {status}"
        );
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}

async fn batch_operations_are_checked_by_name(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin.create("companies", json!({"name": "C"})).await);
    let cases = [
        (
            json!({"op": "create", "entity": "deals", "id": company, "data": {"title": "x"}}),
            "operations[0].id",
        ),
        (
            json!({"op": "create", "entity": "deals"}),
            "operations[0].data",
        ),
        (
            json!({"op": "delete", "entity": "deals", "id": company, "data": {}}),
            "operations[0].data",
        ),
        (
            json!({"op": "update", "entity": "deals", "id": company, "data": {}, "extra": 1}),
            "operations[0].extra",
        ),
        (
            json!({"op": "create", "entity": "users", "data": {}}),
            "operations[0].entity",
        ),
        (
            json!({"op": "upsert", "entity": "deals", "data": {}}),
            "operations[0].op",
        ),
    ];
    for (op, field) in cases {
        let got = admin
            .post("/api/v1/batch", json!({"operations": [op]}))
            .await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    let got = admin
        .post("/api/v1/batch", json!({"operations": [], "dry_run": true}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("dry_run"),
    );
    // A reference written in capitals is the same record; a refusal names its operation.
    let got = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [
                {"op": "create", "entity": "deals", "data": {"title": "ok", "company_id": company.to_uppercase()}},
                {"op": "create", "entity": "deals", "data": {"title": "no", "company_id": "01900000-0000-7000-8000-000000000000"}}
            ]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::CONFLICT,
        "reference",
        Some("operations[1].data.company_id"),
    );
    let (s, ok) = admin
        .post(
            "/api/v1/batch",
            json!({"operations": [{"op": "create", "entity": "deals", "data": {"title": "ok", "company_id": company.to_uppercase()}}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ok}");
    assert_eq!(ok["records"][0]["company_id"], json!(company));
}

async fn a_long_or_pattern_like_q_is_refused_or_taken_literally(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    admin
        .create("companies", json!({"name": "100% натурально_"}))
        .await;
    admin.create("companies", json!({"name": "Other"})).await;
    for q in ["a".repeat(50_000), "_".repeat(25_000), "%".repeat(201)] {
        let got = admin.get(&format!("/api/v1/companies?q={q}")).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid", Some("q"));
    }
    // A q with control characters matches nothing, but the other parameters are still checked.
    assert!(items(&admin, "/api/v1/companies?q=%09%00x")
        .await
        .is_empty());
    let got = admin.get("/api/v1/companies?q=%09&order=sideways").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("order"),
    );
    // Within the bound, % and _ are punctuation, never wildcards: alone they are no word.
    assert!(items(&admin, "/api/v1/companies?q=%25").await.is_empty());
    assert!(items(&admin, "/api/v1/companies?q=_").await.is_empty());
    assert_eq!(items(&admin, "/api/v1/companies?q=100%25").await.len(), 1);
    let max = "_".repeat(200);
    assert!(items(&admin, &format!("/api/v1/companies?q={max}"))
        .await
        .is_empty());
    assert_eq!(
        items(&admin, "/api/v1/companies?q=%D0%9D%D0%90%D0%A2%D0%A3%D0%A0")
            .await
            .len(),
        1,
        "case-insensitive in Cyrillic too"
    );
}

async fn an_oversized_body_is_413(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let big = format!(
        "{{\"name\": \"{}\"}}",
        "a".repeat(kontor_server::MAX_BODY + 1)
    );
    let resp = srv
        .client
        .post(format!("{}/api/v1/companies", srv.base))
        .bearer_auth(admin.token.clone().unwrap())
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = resp.json().await.expect("JSON error body");
    let got = (StatusCode::PAYLOAD_TOO_LARGE, body);
    assert_error(
        &got,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        None,
    );
    assert_error_shape(&got);
    // Just under the limit is read (and refused for what it says, not for its size).
    let under = format!(
        "{{\"name\": \"{}\"}}",
        "a".repeat(kontor_server::MAX_BODY - 100)
    );
    let resp = srv
        .client
        .post(format!("{}/api/v1/companies", srv.base))
        .bearer_auth(admin.token.clone().unwrap())
        .header("content-type", "application/json")
        .body(under)
        .send()
        .await
        .expect("request");
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON error body");
    assert_error(
        &(status, body),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("name"),
    );
    assert!(items(&admin, "/api/v1/companies").await.is_empty());
    srv.stop().await;
}

async fn a_wrong_method_is_a_json_405(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    for (method, path) in [
        (Method::PUT, "/api/v1/deals".to_string()),
        (Method::DELETE, "/api/v1/deals".to_string()),
        (Method::PATCH, "/api/v1/deals".to_string()),
        (Method::PUT, format!("/api/v1/deals/{deal}")),
        (Method::POST, format!("/api/v1/deals/{deal}")),
        (Method::GET, format!("/api/v1/deals/{deal}/restore")),
        (Method::DELETE, format!("/api/v1/deals/{deal}/history")),
        (Method::POST, "/api/v1/history".to_string()),
        (Method::GET, "/api/v1/history/undo".to_string()),
        (Method::GET, "/api/v1/auth/login".to_string()),
        (Method::GET, "/api/v1/batch".to_string()),
        (Method::DELETE, "/api/v1/trash".to_string()),
        (Method::PUT, "/api/v1/users".to_string()),
        (Method::POST, "/healthz".to_string()),
    ] {
        let got = admin.raw(method.clone(), &path, "{}").await;
        assert_error(
            &got,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            None,
        );
        assert_error_shape(&got);
    }
    assert_eq!(fetch(&admin, "deals", &deal).await["title"], "D");
    srv.stop().await;
}

async fn conflicts_and_refusals_never_show_internals(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m = srv.user("m@x.ru", "manager", None).await;
    admin
        .create("products", json!({"name": "P", "sku": "S"}))
        .await;
    let deal = id(&admin.create("deals", json!({"title": "D"})).await);
    remove(&admin, "deals", &deal).await;
    let errors = [
        admin
            .post("/api/v1/products", json!({"name": "P2", "sku": "S"}))
            .await,
        admin
            .patch(&format!("/api/v1/deals/{deal}"), json!({"title": "x"}))
            .await,
        admin.get(&format!("/api/v1/deals/{deal}")).await,
        admin
            .delete(&format!("/api/v1/trash/products/{MISSING_ID}"))
            .await,
        m.post("/api/v1/products", json!({"name": "x"})).await,
        m.get("/api/v1/users").await,
        admin
            .post("/api/v1/history/undo", json!({"batch": MISSING_ID}))
            .await,
        admin
            .post(
                "/api/v1/users",
                json!({"email": ADMIN_EMAIL, "password": "whatever-123"}),
            )
            .await,
        srv.anon()
            .post(
                "/api/v1/auth/login",
                json!({"email": "x@y.z", "password": "nope"}),
            )
            .await,
        admin.get("/api/v1/deals?created_at=yesterday").await,
        admin
            .get("/api/v1/history?from=%27;DROP%20TABLE%20journal")
            .await,
    ];
    for got in &errors {
        assert_error_shape(got);
    }
    srv.stop().await;
}

crate::engine_tests!(
    bodies_must_say_they_are_json_and_paths_must_be_utf8,
    batch_operations_are_checked_by_name,
    a_long_or_pattern_like_q_is_refused_or_taken_literally,
    malformed_json_is_a_400_that_says_so,
    a_body_that_is_not_an_object_is_refused_with_a_message,
    wrong_types_name_the_field,
    unknown_paths_entities_and_ids_are_json_404s,
    missing_and_bad_tokens_are_401,
    bad_query_parameters_are_refused,
    an_oversized_body_is_413,
    a_wrong_method_is_a_json_405,
    conflicts_and_refusals_never_show_internals,
);
