//! Lists at scale, through the API: equality and range filters on filterable fields (phones in
//! any format, amounts as numbers, dates, creation times), sorts with keyset cursors that walk
//! every record exactly once in order (NULLs first ascending), `q` served by the search index
//! (prefix, typo) together with filters, counts, and what a manager or a role with hidden
//! fields may not use.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn titles(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["title"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn filters_compare_keys_by_type(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let acme = id(&admin
        .create(
            "companies",
            json!({"name": "Acme", "phone": "+7 (900) 123-45-67", "inn": "7707083893"}),
        )
        .await);
    let other = id(&admin
        .create(
            "companies",
            json!({"name": "Other", "phone": "+7 495 000-00-00"}),
        )
        .await);
    let ivan = id(&admin
        .create(
            "contacts",
            json!({"last_name": "Petrov", "email": "Ivan@Example.RU", "company_id": acme}),
        )
        .await);
    admin
        .create(
            "contacts",
            json!({"last_name": "Sidorov", "email": "s@example.ru", "company_id": other}),
        )
        .await;
    // E-mail: the domain is compared as stored (lowercase), so a differently written filter finds it.
    let got = ids(&items(&admin, "/api/v1/contacts?email=Ivan@example.ru").await);
    assert_eq!(got, vec![ivan.clone()]);
    // Phone in any format.
    for phone in [
        "8 900 123-45-67",
        "+79001234567",
        "(900) 1234567",
        "9001234567",
    ] {
        let path = format!("/api/v1/companies?phone={}", urlencode(phone));
        assert_eq!(
            ids(&items(&admin, &path).await),
            vec![acme.clone()],
            "{phone}"
        );
    }
    assert_eq!(
        ids(&items(&admin, &format!("/api/v1/contacts?company_id={acme}")).await),
        vec![ivan.clone()]
    );
    assert_eq!(
        ids(&items(&admin, "/api/v1/companies?inn=7707083893").await),
        vec![acme.clone()]
    );

    // Amounts compare as numbers (not as text: "1500.50" > "20.00" although "1" < "2").
    for (t, amount, close) in [
        ("small", Some("20"), Some("2026-01-10")),
        ("big", Some("1500.50"), Some("2026-02-01")),
        ("none", None, None),
        ("mid", Some("300"), Some("2026-01-31")),
    ] {
        let mut body = json!({"title": t});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        if let Some(c) = close {
            body["close_date"] = json!(c);
        }
        admin.create("deals", body).await;
    }
    let list = |q: &str| {
        let admin = admin.clone();
        let path = format!("/api/v1/deals?sort=amount&{q}");
        async move { titles(&walk(&admin, &path, 50).await) }
    };
    assert_eq!(list("amount[gte]=300").await, ["mid", "big"]);
    assert_eq!(list("amount[gt]=20&amount[lt]=1500.5").await, ["mid"]);
    assert_eq!(list("amount[lte]=1500.50").await, ["small", "mid", "big"]);
    assert_eq!(list("amount=1500.5").await, ["big"], "1500.5 = 1500.50");
    assert_eq!(list("amount=null").await, ["none"]);
    assert_eq!(
        list("close_date[gte]=2026-01-31&close_date[lt]=2026-02-02").await,
        ["mid", "big"]
    );
    // Creation times: everything created before now, nothing after.
    let now = urlencode(&now());
    assert_eq!(list(&format!("created_at[lte]={now}")).await.len(), 4);
    assert!(list(&format!("created_at[gt]={now}")).await.is_empty());

    // Bad filters say what and where.
    for (path, field) in [
        ("/api/v1/deals?amount[gte]=lots", "amount[gte]"),
        ("/api/v1/deals?amount[like]=1", "amount[like]"),
        ("/api/v1/companies?phone[gt]=1", "phone[gt]"),
        ("/api/v1/deals?amount[gt]=null", "amount[gt]"),
        ("/api/v1/deals?created_at[gt]=yesterday", "created_at[gt]"),
        ("/api/v1/deals?nonsense[gt]=1", "nonsense[gt]"),
        ("/api/v1/deals?sort=notes", "sort"),
        ("/api/v1/deals?sort=amount&order=up", "order"),
        ("/api/v1/deals?count=maybe", "count"),
    ] {
        let got = admin.get(path).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    srv.stop().await;
}

async fn sorted_lists_walk_every_record_once_in_order(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    // Repeated amounts and NULLs: the id breaks ties, NULLs come first ascending.
    let amounts = [
        Some("5"),
        None,
        Some("10.50"),
        Some("5"),
        None,
        Some("100"),
        Some("10.5"),
        Some("0"),
        Some("5"),
        None,
        Some("99.99"),
    ];
    let mut expected: Vec<(Option<f64>, String)> = Vec::new();
    for (i, a) in amounts.iter().enumerate() {
        let mut body = json!({"title": format!("deal {i}")});
        if let Some(a) = a {
            body["amount"] = json!(a);
        }
        let rec = admin.create("deals", body).await;
        expected.push((a.map(|a| a.parse().unwrap()), id(&rec)));
    }
    expected.sort_by(|x, y| {
        x.0.partial_cmp(&y.0)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(x.1.cmp(&y.1))
    });
    let ascending: Vec<String> = expected.iter().map(|(_, i)| i.clone()).collect();
    let mut descending = ascending.clone();
    descending.reverse();
    for limit in [1, 2, 3, 50] {
        let got = ids(&walk(&admin, "/api/v1/deals?sort=amount", limit).await);
        assert_eq!(got, ascending, "ascending by {limit}");
        let got = ids(&walk(&admin, "/api/v1/deals?sort=amount&order=desc", limit).await);
        assert_eq!(got, descending, "descending by {limit}");
    }
    // Text sorts by character code; updated_at sorts newest first by default.
    for name in ["Zhukov", "ivanov", "Abramov", "Ёлкин", "Борисов"] {
        admin.create("contacts", json!({"last_name": name})).await;
    }
    let names: Vec<String> = walk(&admin, "/api/v1/contacts?sort=last_name", 2)
        .await
        .iter()
        .map(|c| c["last_name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Abramov", "Zhukov", "ivanov", "Ёлкин", "Борисов"]);
    let first = admin
        .create("contacts", json!({"last_name": "Latest"}))
        .await;
    let newest = items(&admin, "/api/v1/contacts?sort=updated_at&limit=1").await;
    assert_eq!(ids(&newest), [id(&first)]);
    let all = walk(&admin, "/api/v1/contacts?sort=created_at&order=asc", 2).await;
    assert_eq!(all.len(), 6);
    assert_eq!(all[5]["id"], first["id"]);

    // A cursor belongs to its sort.
    let (s, page) = admin.get("/api/v1/deals?sort=amount&limit=2").await;
    assert_eq!(s, StatusCode::OK);
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_string();
    let got = admin
        .get(&format!(
            "/api/v1/deals?sort=amount&order=desc&cursor={cursor}"
        ))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("cursor"),
    );
    let got = admin.get(&format!("/api/v1/deals?cursor={cursor}")).await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("cursor"),
    );
    let got = admin.get("/api/v1/deals?sort=amount&cursor=AAAA").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("cursor"),
    );
    srv.stop().await;
}

async fn q_in_a_list_uses_the_search_index_with_filters_and_counts(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let acme = id(&admin.create("companies", json!({"name": "Acme"})).await);
    let mut petrovs = Vec::new();
    for i in 0..5 {
        let rec = admin
            .create("contacts", json!({"first_name": format!("Ivan{i}"), "last_name": "Петров", "company_id": acme, "phone": format!("+7 900 000-00-0{i}")}))
            .await;
        petrovs.push(id(&rec));
    }
    let other = id(&admin
        .create("contacts", json!({"last_name": "Петровский"}))
        .await);
    admin
        .create("contacts", json!({"last_name": "Сидоров"}))
        .await;
    let found = |path: &str| {
        let admin = admin.clone();
        let path = path.to_string();
        async move { set(ids(&walk(&admin, &path, 2).await)) }
    };
    let q = urlencode("петров");
    let mut all_petrov = set(petrovs.clone());
    all_petrov.insert(other.clone());
    assert_eq!(
        found(&format!("/api/v1/contacts?q={q}")).await,
        all_petrov,
        "prefix"
    );
    let typo = urlencode("петорв");
    assert_eq!(
        found(&format!("/api/v1/contacts?q={typo}")).await,
        set(petrovs.clone()),
        "a typo"
    );
    assert_eq!(
        found(&format!("/api/v1/contacts?q={q}&company_id={acme}")).await,
        set(petrovs.clone()),
        "with a filter"
    );
    let phone = urlencode("8 900 000-00-03");
    assert_eq!(
        found(&format!("/api/v1/contacts?q={phone}")).await,
        set([petrovs[3].clone()]),
        "a phone in another format"
    );
    // Sorted by a field while searching.
    let sorted = walk(
        &admin,
        &format!("/api/v1/contacts?q={q}&sort=last_name&order=desc"),
        2,
    )
    .await;
    assert_eq!(sorted[0]["id"], json!(other), "Петровский > Петров");

    // Counts: exact, with filters and with q.
    let (s, page) = admin.get("/api/v1/contacts?count=true&limit=1").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(page["total"], json!(7));
    assert_eq!(page["total_is_estimate"], json!(false));
    let (_, page) = admin
        .get(&format!("/api/v1/contacts?count=true&company_id={acme}"))
        .await;
    assert_eq!(page["total"], json!(5));
    let (_, page) = admin
        .get(&format!("/api/v1/contacts?count=true&q={q}"))
        .await;
    assert_eq!(page["total"], json!(6));
    let (_, page) = admin.get("/api/v1/contacts?limit=1").await;
    assert!(page.get("total").is_none(), "no count unless asked: {page}");
    srv.stop().await;
}

async fn managers_and_hidden_fields_limit_filters_sorts_and_q(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (s, r) = admin.post("/api/v1/roles", json!({"name": "no-phones", "permissions": {"contacts": "all"}, "hidden_fields": {"contacts": ["phone", "email"]}})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let anna = srv.user("anna@example.ru", "manager", None).await;
    let boris = srv.user("boris@example.ru", "manager", None).await;
    let reader = srv.user("reader@example.ru", "no-phones", None).await;
    let mine = id(&anna
        .create(
            "contacts",
            json!({"last_name": "Kuznetsov", "phone": "+7 900 555-55-55", "email": "k@a.ru"}),
        )
        .await);
    let theirs = id(&boris
        .create(
            "contacts",
            json!({"last_name": "Kuznetsova", "phone": "+7 900 555-55-55"}),
        )
        .await);
    // A manager lists, sorts, searches and counts only their own.
    for path in [
        "/api/v1/contacts?sort=last_name",
        "/api/v1/contacts?phone=89005555555",
        "/api/v1/contacts?q=kuznets",
    ] {
        assert_eq!(
            ids(&walk(&anna, path, 1).await),
            vec![mine.clone()],
            "{path}"
        );
    }
    let (_, page) = anna.get("/api/v1/contacts?count=true&q=kuznets").await;
    assert_eq!(page["total"], json!(1));
    // A hidden field cannot be filtered, sorted or searched by.
    for path in [
        "/api/v1/contacts?phone=89005555555",
        "/api/v1/contacts?sort=phone",
        "/api/v1/contacts?email=k@a.ru",
    ] {
        let got = reader.get(path).await;
        assert_eq!(
            got.0,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {:?}",
            got.1
        );
    }
    let q = urlencode("+7 900 555-55-55");
    assert!(walk(&reader, &format!("/api/v1/contacts?q={q}"), 5)
        .await
        .is_empty());
    let got = walk(&reader, "/api/v1/contacts?q=kuznetsov", 5).await;
    assert_eq!(set(ids(&got)), set([mine.clone(), theirs.clone()]));
    assert!(got.iter().all(|c| c.get("phone").is_none()));
    // Its count with q cannot be told without the hidden fields: it is not given.
    let (_, page) = reader
        .get(&format!("/api/v1/contacts?count=true&q={q}"))
        .await;
    assert_eq!(page["total"], Value::Null);
    assert_eq!(page["total_is_estimate"], json!(true));
    srv.stop().await;
}

async fn a_custom_field_marked_filterable_filters_and_sorts(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let field = admin
        .create(
            "fields",
            json!({"entity": "deals", "name": "priority", "type": "number", "filterable": true}),
        )
        .await;
    assert_eq!(field["filterable"], json!(true));
    for (t, p) in [("low", "1"), ("high", "10"), ("mid", "5")] {
        admin
            .create("deals", json!({"title": t, "priority": p}))
            .await;
    }
    let got = titles(&walk(&admin, "/api/v1/deals?sort=priority&priority[gte]=2", 1).await);
    assert_eq!(got, ["mid", "high"]);
    // A custom field not marked filterable filters (by a scan) but does not sort.
    admin
        .create(
            "fields",
            json!({"entity": "deals", "name": "region", "type": "string"}),
        )
        .await;
    assert!(items(&admin, "/api/v1/deals?region=north").await.is_empty());
    let got = admin.get("/api/v1/deals?sort=region").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("sort"),
    );
    srv.stop().await;
}

crate::engine_tests!(
    filters_compare_keys_by_type,
    sorted_lists_walk_every_record_once_in_order,
    q_in_a_list_uses_the_search_index_with_filters_and_counts,
    managers_and_hidden_fields_limit_filters_sorts_and_q,
    a_custom_field_marked_filterable_filters_and_sorts,
);
