//! Global search (`GET /api/v1/search`): prefix, typos, identifiers in any format, grouping and
//! highlights; kept current through every write, delete and restore; what a reader may not see
//! is never found; an index follows the journal of whichever node wrote, and an index that does
//! not fit its database is rebuilt.

use crate::support::*;
use kontor_domain::permission::Actor;
use kontor_search::{Search, SearchParams};
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn search(api: &Api, q: &str) -> Value {
    let path = format!("/api/v1/search?q={}", urlencode(q));
    let (status, body) = api.get(&path).await;
    assert_eq!(status, StatusCode::OK, "search {q}: {body}");
    body
}

/// `(entity, id)` of every item found, in the order given.
fn found(body: &Value) -> Vec<(String, String)> {
    body["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| {
            let e = g["entity"].as_str().unwrap_or_default().to_string();
            g["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |i| (e.clone(), i["id"].as_str().unwrap_or_default().to_string()))
        })
        .collect()
}

fn first_item(body: &Value) -> &Value {
    &body["groups"][0]["items"][0]
}

async fn finds_by_prefix_typo_identifiers_and_follows_every_change(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let company = id(&admin
        .create(
            "companies",
            json!({"name": "ООО Ромашка", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await);
    let contact = id(&admin
        .create(
            "contacts",
            json!({"first_name": "Иван", "last_name": "Петров", "email": "ivan.petrov@example.ru",
                   "phone": "+7 (900) 123-45-67", "company_id": company}),
        )
        .await);
    let other = id(&admin
        .create("contacts", json!({"first_name": "Jürgen", "last_name": "Müller", "notes": "met at the Hannover fair"}))
        .await);
    let deal = id(&admin
        .create("deals", json!({"title": "Ромашка: поставка бумаги"}))
        .await);
    let product = id(&admin
        .create(
            "products",
            json!({"name": "Бумага офисная A4", "sku": "PAP-A4-500"}),
        )
        .await);

    // A prefix, in any case.
    let r = search(&admin, "РОМАШ").await;
    let got = found(&r);
    assert!(got.contains(&("companies".into(), company.clone())), "{r}");
    assert!(got.contains(&("deals".into(), deal.clone())), "{r}");
    assert_eq!(
        r["groups"][0]["entity"], "companies",
        "groups come in a fixed order: {r}"
    );
    // A typo (a transposition) and ё read as е.
    let r = search(&admin, "Петорв").await;
    assert_eq!(found(&r), vec![("contacts".into(), contact.clone())], "{r}");
    assert_eq!(first_item(&r)["title"], "Иван Петров");
    let h = &first_item(&r)["highlight"];
    assert_eq!(h["field"], "last_name", "{r}");
    assert_eq!(h["ranges"], json!([[0, 6]]), "{r}");
    assert_eq!(first_item(&r)["record"]["email"], "ivan.petrov@example.ru");
    // Accents folded; words of notes.
    assert_eq!(
        found(&search(&admin, "muller").await),
        vec![("contacts".into(), other.clone())]
    );
    assert_eq!(
        found(&search(&admin, "hannover fair").await),
        vec![("contacts".into(), other.clone())]
    );
    // Identifiers in any format.
    for q in [
        "+79001234567",
        "8 900 123 45 67",
        "(900) 123-45-67",
        "ivan.petrov@example.ru",
    ] {
        assert_eq!(
            found(&search(&admin, q).await),
            vec![("contacts".into(), contact.clone())],
            "{q}"
        );
    }
    let r = search(&admin, "7707083893").await;
    assert_eq!(
        found(&r),
        vec![("companies".into(), company.clone())],
        "{r}"
    );
    assert_eq!(first_item(&r)["highlight"]["field"], "inn");
    assert_eq!(
        found(&search(&admin, "pap-a4").await),
        vec![("products".into(), product.clone())]
    );
    // Two words must both match; one entity only when asked.
    assert!(found(&search(&admin, "иван мюллер").await).is_empty());
    let (s, r) = admin
        .get("/api/v1/search?q=%D1%80%D0%BE%D0%BC%D0%B0%D1%88%D0%BA%D0%B0&entity=deals")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(found(&r), vec![("deals".into(), deal.clone())], "{r}");

    // A change is found at once, under its new name only.
    let (s, _) = admin
        .patch(
            &format!("/api/v1/contacts/{contact}"),
            json!({"last_name": "Сидоров"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(found(&search(&admin, "Сидоров").await).contains(&("contacts".into(), contact.clone())));
    assert!(found(&search(&admin, "Петров").await).is_empty());
    // Deleted: not found; restored from the bin: found again.
    let (s, _) = admin.delete(&format!("/api/v1/companies/{company}")).await;
    assert_eq!(s, StatusCode::OK);
    let r = search(&admin, "ромашка").await;
    assert!(!found(&r).iter().any(|(e, _)| e == "companies"), "{r}");
    let (s, b) = admin
        .post(
            &format!("/api/v1/trash/companies/{company}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        found(&search(&admin, "ромашка").await).contains(&("companies".into(), company.clone()))
    );
    srv.stop().await;
}

async fn a_reader_finds_only_what_they_may_read_and_never_by_a_hidden_field(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let m2 = srv.user("m2@x.ru", "manager", None).await;
    let mine = id(&m1
        .create(
            "contacts",
            json!({"first_name": "Фёдор", "last_name": "Достоевский", "phone": "+7 812 555-01-02"}),
        )
        .await);
    let theirs = id(&m2
        .create(
            "contacts",
            json!({"first_name": "Лев", "last_name": "Толстой", "phone": "+7 495 555-03-04"}),
        )
        .await);
    assert_eq!(
        found(&search(&m1, "достоевский").await),
        vec![("contacts".into(), mine.clone())]
    );
    assert!(
        found(&search(&m2, "достоевский").await).is_empty(),
        "another manager's record"
    );
    assert!(found(&search(&m2, "+7 812 555-01-02").await).is_empty());
    assert_eq!(
        found(&search(&m2, "толстой").await),
        vec![("contacts".into(), theirs.clone())]
    );
    // An admin sees both (a word of both phones).
    assert_eq!(found(&search(&admin, "555").await).len(), 2);
    let (s, r) = admin.post("/api/v1/roles", json!({"name": "reader", "permissions": {"contacts": "all"}, "hidden_fields": {"contacts": ["phone"]}})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let reader = srv.user("r@x.ru", "reader", None).await;
    // By name: found, without the hidden phone, highlighted where it matched.
    let r = search(&reader, "Достоевский").await;
    assert_eq!(found(&r), vec![("contacts".into(), mine.clone())], "{r}");
    assert!(first_item(&r)["record"].get("phone").is_none(), "{r}");
    assert_eq!(first_item(&r)["highlight"]["field"], "last_name");
    // Its count is of what it is shown, and says so (the index's count would tell how many
    // match through the hidden phone).
    assert_eq!(r["groups"][0]["total"], 1, "{r}");
    assert_eq!(r["groups"][0]["total_is_estimate"], true, "{r}");
    // By the hidden phone: never.
    for q in ["+7 812 555-01-02", "88125550102", "812"] {
        let r = search(&reader, q).await;
        assert!(
            found(&r).is_empty(),
            "{q} found through a hidden field: {r}"
        );
        assert!(!r["groups"].to_string().contains("555"), "{r}");
    }
    // A hidden name is not in the title either.
    let (s, r) = admin.post("/api/v1/roles", json!({"name": "nameless", "permissions": {"contacts": "all"}, "hidden_fields": {"contacts": ["last_name"]}})).await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let nameless = srv.user("n@x.ru", "nameless", None).await;
    let r = search(&nameless, "Фёдор").await;
    assert_eq!(found(&r), vec![("contacts".into(), mine.clone())], "{r}");
    assert_eq!(first_item(&r)["title"], "Фёдор", "{r}");
    assert!(!r["groups"].to_string().contains("Достоевский"), "{r}");
    assert!(found(&search(&nameless, "Достоевский").await).is_empty());
    srv.stop().await;
}

async fn bad_search_requests_get_clear_errors(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let long = "a".repeat(201);
    for (path, field) in [
        (&*format!("/api/v1/search?q={long}"), Some("q")),
        ("/api/v1/search?q=x&limit=0", Some("limit")),
        ("/api/v1/search?q=x&limit=51", Some("limit")),
        ("/api/v1/search?q=x&entity=users", Some("entity")),
    ] {
        assert_error(
            &admin.get(path).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            field,
        );
    }
    for path in [
        "/api/v1/search",
        "/api/v1/search?q=x&colour=red",
        "/api/v1/search?q=x&q=y",
        "/api/v1/search?q=x&limit=-1",
    ] {
        let got = admin.get(path).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{path}: {}", got.1);
    }
    let got = srv.anon().get("/api/v1/search?q=x").await;
    assert_eq!(got.0, StatusCode::UNAUTHORIZED, "{}", got.1);
    // An empty query, spaces, control characters and lone punctuation find nothing rather than fail.
    for q in ["", "%20%20", "%00%01", "%2B%2B%2B", "*"] {
        let (s, r) = admin.get(&format!("/api/v1/search?q={q}")).await;
        assert_eq!(s, StatusCode::OK, "{q}: {r}");
        assert!(found(&r).is_empty());
    }
    // The index's state, for admins only.
    let (s, st) = admin.get("/api/v1/admin/search").await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["behind"], 0, "{st}");
    let m = srv.user("m@x.ru", "manager", None).await;
    assert_error(
        &m.get("/api/v1/admin/search").await,
        StatusCode::FORBIDDEN,
        "forbidden",
        None,
    );
    srv.stop().await;
}

async fn an_index_follows_the_journal_of_any_writer_and_is_rebuilt_when_it_does_not_fit(
    engine: Engine,
) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let alpha = id(&admin
        .create("companies", json!({"name": "Alpha Trading"}))
        .await);
    // A second node's index: it learns of the write from the journal, not from the writer.
    let dir = tempfile::tempdir().unwrap();
    let other = Search::open(&dir.path().join("search")).unwrap();
    let params = |q: &str| SearchParams {
        q: q.into(),
        entities: vec![],
        limit: None,
    };
    let r = other
        .search(&srv.kontor, &Actor::system(), &params("alpha"))
        .await
        .unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].items[0].id, alpha);
    let beta = id(&admin
        .create("companies", json!({"name": "Beta Logistics"}))
        .await);
    let r = other
        .search(&srv.kontor, &Actor::system(), &params("logistics"))
        .await
        .unwrap();
    assert_eq!(r.groups[0].items[0].id, beta);
    drop(other);

    // The same index directory meets another database: what it held is not found there.
    let srv2 = TestServer::start(engine).await;
    let admin2 = srv2.admin().await;
    let gamma = id(&admin2
        .create("companies", json!({"name": "Gamma Alpha"}))
        .await);
    let reopened = Search::open(&dir.path().join("search")).unwrap();
    let r = reopened
        .search(&srv2.kontor, &Actor::system(), &params("alpha"))
        .await
        .unwrap();
    let ids: Vec<&str> = r
        .groups
        .iter()
        .flat_map(|g| g.items.iter().map(|i| i.id.as_str()))
        .collect();
    assert_eq!(ids, vec![gamma.as_str()], "{r:?}");
    assert!(reopened
        .search(&srv2.kontor, &Actor::system(), &params("logistics"))
        .await
        .unwrap()
        .groups
        .is_empty());

    // A half-built index (a rebuild stopped midway commits at no journal position) is built
    // again rather than trusted.
    let half = tempfile::tempdir().unwrap();
    {
        let mut idx = kontor_search::index::SearchIndex::open(&half.path().join("search")).unwrap();
        let schema = kontor_domain::schema::builtin(kontor_domain::Entity::Companies);
        let ghost = json!({"name": "Ghost Alpha"});
        idx.put(
            schema,
            kontor_domain::Entity::Companies,
            &gamma,
            None,
            ghost.as_object(),
            true,
        )
        .unwrap();
        idx.commit(&kontor_search::index::Position::default())
            .unwrap();
    }
    let resumed = Search::open(&half.path().join("search")).unwrap();
    assert!(resumed
        .search(&srv2.kontor, &Actor::system(), &params("ghost"))
        .await
        .unwrap()
        .groups
        .is_empty());
    let r = resumed
        .search(&srv2.kontor, &Actor::system(), &params("gamma"))
        .await
        .unwrap();
    assert_eq!(r.groups[0].items[0].id, gamma);
    drop(resumed);

    // Rebuilt through the API as a job.
    let (s, job) = admin2.post("/api/v1/admin/search/rebuild", json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let path = format!("/api/v1/jobs/{}", job["id"].as_str().unwrap());
    let mut state = Value::Null;
    for _ in 0..100 {
        let (_, j) = admin2.get(&path).await;
        state = j.clone();
        if j["state"] != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "succeeded", "{state}");
    assert!(found(&search(&admin2, "gamma").await).contains(&("companies".into(), gamma.clone())));
    // After a rebuild, a record created is only added and one changed is replaced: each is
    // found once, under its new name only.
    let delta = id(&admin2
        .create("companies", json!({"name": "Delta Unique"}))
        .await);
    let (s, _) = admin2
        .patch(
            &format!("/api/v1/companies/{gamma}"),
            json!({"name": "Gamma Omega"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    for (q, want) in [("delta", &delta), ("omega", &gamma)] {
        let body = search(&admin2, q).await;
        assert_eq!(
            found(&body),
            vec![("companies".to_string(), want.clone())],
            "{body}"
        );
        assert_eq!(body["groups"][0]["total"], json!(1), "{body}");
    }
    assert!(found(&search(&admin2, "alpha").await).is_empty());
    srv.stop().await;
    srv2.stop().await;
}

crate::engine_tests!(
    finds_by_prefix_typo_identifiers_and_follows_every_change,
    a_reader_finds_only_what_they_may_read_and_never_by_a_hidden_field,
    bad_search_requests_get_clear_errors,
    an_index_follows_the_journal_of_any_writer_and_is_rebuilt_when_it_does_not_fit,
);
