//! Who sees and changes what: managers isolated from each other through every endpoint, admin-only
//! areas, custom roles with hidden and read-only fields, team scope, disabled users, logout and
//! login rate limiting.

use crate::common::*;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A record of each CRM entity owned by `api` (products are admin-only, so not here).
async fn own_records(api: &Api) -> Vec<(&'static str, String)> {
    let company = id(&api
        .create(
            "companies",
            json!({"name": "M1 Holding", "inn": "7707083893"}),
        )
        .await);
    let contact = id(&api
        .create(
            "contacts",
            json!({"first_name": "Ivan", "company_id": company}),
        )
        .await);
    let lead = id(&api.create("leads", json!({"title": "M1 lead"})).await);
    let deal = id(&api
        .create("deals", json!({"title": "M1 deal", "company_id": company}))
        .await);
    let activity = id(&api
        .create("activities", json!({"kind": "call", "subject": "M1 call", "linked_entity": "deals", "linked_id": deal}))
        .await);
    let invoice = id(&api
        .create(
            "invoices",
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10"}]}),
        )
        .await);
    let payment = id(&api
        .create("payments", json!({"invoice_id": invoice, "amount": "5"}))
        .await);
    vec![
        ("companies", company),
        ("contacts", contact),
        ("leads", lead),
        ("deals", deal),
        ("activities", activity),
        ("invoices", invoice),
        ("payments", payment),
    ]
}

async fn a_manager_cannot_reach_another_managers_records_through_any_endpoint(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m1 = srv.user("m1@x.ru", "manager", None).await;
    let m2 = srv.user("m2@x.ru", "manager", None).await;
    let t = mark().await;
    let records = own_records(&m1).await;
    let mine = id(&m2.create("deals", json!({"title": "M2 deal"})).await);
    let company = records[0].1.clone();

    for (entity, rid) in &records {
        // m1 sees its own.
        fetch(&m1, entity, rid).await;
        assert!(ids(&walk(&m1, &format!("/api/v1/{entity}"), 100).await).contains(rid));
        // m2 sees nothing of it.
        assert_not_found(&m2, entity, rid).await;
        assert!(
            walk(&m2, &format!("/api/v1/{entity}"), 100)
                .await
                .iter()
                .all(|r| r["id"] != json!(rid)),
            "{entity} listed to m2"
        );
        let got = m2
            .patch(
                &format!("/api/v1/{entity}/{rid}"),
                json!({"notes": "mine now"}),
            )
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m2.delete(&format!("/api/v1/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m2
            .post(&format!("/api/v1/{entity}/{rid}/restore"), json!({"at": t}))
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        assert!(
            items(&m2, &format!("/api/v1/{entity}/{rid}/history"))
                .await
                .is_empty(),
            "{entity} history shown to m2"
        );
        assert!(history(&m2, &format!("entity={entity}&record_id={rid}"))
            .await
            .is_empty());
        let got = m2
            .post("/api/v1/batch", json!({"operations": [{"op": "update", "entity": entity, "id": rid, "data": {"notes": "x"}}]}))
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m2
            .post(
                "/api/v1/batch",
                json!({"operations": [{"op": "delete", "entity": entity, "id": rid}]}),
            )
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        // The admin sees everything.
        fetch(&admin, entity, rid).await;
    }
    // Search, filters and owner_id do not reach them either.
    assert!(items(&m2, "/api/v1/companies?q=holding").await.is_empty());
    assert!(items(&m2, &format!("/api/v1/deals?company_id={company}"))
        .await
        .is_empty());
    assert!(
        items(&m2, &format!("/api/v1/deals?owner_id={}", m1.user_id))
            .await
            .is_empty()
    );
    assert_eq!(
        ids(&items(&m1, "/api/v1/companies?q=holding").await),
        vec![company.clone()]
    );
    // m2 cannot hang its records on m1's, nor give records to m1.
    let got = m2
        .post(
            "/api/v1/contacts",
            json!({"first_name": "x", "company_id": company}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("company_id"));
    let got = m2
        .post(
            "/api/v1/deals",
            json!({"title": "gift", "owner_id": m1.user_id}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    let got = m2
        .patch(
            &format!("/api/v1/deals/{mine}"),
            json!({"owner_id": m1.user_id}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("owner_id"));
    // History by entity shows only one's own records; the whole journal needs an entity filter
    // because the manager role reads products with a wider scope than the rest.
    let h = history(&m2, "entity=deals").await;
    assert_eq!(record_ids(&h), set([mine.clone()]));
    assert!(
        history(&m2, &format!("actor={}&entity=companies", m1.user_id))
            .await
            .is_empty()
    );
    // Without an entity filter a manager sees the history of own records (and of the catalog,
    // which the role reads in full), never another manager's.
    let (status, page) = m2.get("/api/v1/history?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["items"].as_array().unwrap();
    assert!(!entries.is_empty());
    for e in entries {
        let owner = e["after"]["owner_id"]
            .as_str()
            .or(e["before"]["owner_id"].as_str());
        assert!(
            e["entity"] == "products" || owner == Some(m2.user_id.as_str()),
            "m2 sees an entry that is not theirs: {e}"
        );
    }
    let got = m2.get("/api/v1/history?entity=users").await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);

    // The bin: m1 deletes its company tree; m2 sees none of it anywhere.
    let del = remove(&m1, "companies", &company).await;
    assert_eq!(changes(&del).len(), 6, "{del}");
    remove(&m1, "leads", &records[2].1).await;
    assert_eq!(trash(&m1).await.len(), 7);
    assert!(trash(&m2).await.is_empty());
    for (entity, rid) in &records {
        assert!(items(&m2, &format!("/api/v1/trash?entity={entity}"))
            .await
            .is_empty());
        let got = m2.get(&format!("/api/v1/trash/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m2
            .post(&format!("/api/v1/trash/{entity}/{rid}/restore"), json!({}))
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m2.delete(&format!("/api/v1/trash/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
        let got = m2.get(&format!("/api/v1/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    }
    let got = m2
        .post("/api/v1/history/undo", json!({"batch": del["batch"]}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let got = m2
        .post(
            "/api/v1/history/undo",
            json!({"actor": m1.user_id, "from": t, "to": now()}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    // m1 restores its own tree.
    let (s, _) = m1
        .post(
            &format!("/api/v1/trash/companies/{company}/restore"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(fetch(&m1, "deals", &records[3].1).await["title"], "M1 deal");
    srv.stop().await;
}

async fn a_manager_cannot_delete_a_parent_with_someone_elses_children(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m = srv.user("m@x.ru", "manager", None).await;
    let company = id(&m.create("companies", json!({"name": "Mine"})).await);
    let foreign = id(&admin
        .create("deals", json!({"title": "admin's", "company_id": company}))
        .await);
    let got = m.delete(&format!("/api/v1/companies/{company}")).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    // The refusal tells neither how many nor which records the manager cannot see.
    let msg = got.1["error"]["message"].as_str().unwrap_or_default();
    assert!(!msg.chars().any(|c| c.is_ascii_digit()), "{msg}");
    assert!(!got.1.to_string().contains(&foreign), "{}", got.1);
    fetch(&m, "companies", &company).await;
    fetch(&admin, "deals", &foreign).await;
    srv.stop().await;
}

async fn a_duplicate_value_never_names_a_record_the_caller_cannot_read(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let a = srv.user("a@x.ru", "manager", None).await;
    let b = srv.user("b@x.ru", "manager", None).await;
    let hidden = id(&a
        .create(
            "companies",
            json!({"name": "A's client", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await);
    let got = b
        .post(
            "/api/v1/companies",
            json!({"name": "B's try", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("inn"));
    assert!(!got.1.to_string().contains(&hidden), "{}", got.1);
    // The same in a batch and on update.
    let own = id(&b.create("companies", json!({"name": "B's own"})).await);
    let got = b
        .patch(
            &format!("/api/v1/companies/{own}"),
            json!({"inn": "7707083893", "kpp": "773601001"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("inn"));
    assert!(!got.1.to_string().contains(&hidden), "{}", got.1);
    // Whoever may read the holder is told which record it is.
    let got = admin
        .post(
            "/api/v1/companies",
            json!({"name": "Admin's try", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("inn"));
    assert!(got.1.to_string().contains(&hidden), "{}", got.1);
}

async fn managers_have_no_admin_areas_and_read_but_do_not_write_products(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let role = id(&admin
        .create(
            "roles",
            json!({"name": "viewer", "permissions": {"deals": {"read": "all"}}}),
        )
        .await);
    let team = id(&admin.create("teams", json!({"name": "North"})).await);
    let field = id(&admin
        .create(
            "fields",
            json!({"entity": "deals", "name": "region", "type": "string"}),
        )
        .await);
    let product = id(&admin
        .create("products", json!({"name": "Catalog item", "sku": "C-1"}))
        .await);
    let m = srv.user("m@x.ru", "manager", None).await;

    let (s, me) = m.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str(), &me["admin"]),
        (Some("m@x.ru"), Some("manager"), &json!(false))
    );
    assert!(me.get("password_hash").is_none());

    let forbidden = [
        m.get("/api/v1/users").await,
        m.post(
            "/api/v1/users",
            json!({"email": "x@x.ru", "password": "long-enough-1", "role": "admin"}),
        )
        .await,
        m.get(&format!("/api/v1/users/{}", admin.user_id)).await,
        m.patch(
            &format!("/api/v1/users/{}", m.user_id),
            json!({"role": "admin"}),
        )
        .await,
        m.patch(
            &format!("/api/v1/users/{}", admin.user_id),
            json!({"disabled": true}),
        )
        .await,
        m.delete(&format!("/api/v1/users/{}", admin.user_id)).await,
        m.get("/api/v1/roles").await,
        m.post(
            "/api/v1/roles",
            json!({"name": "mine", "permissions": {"deals": "all"}}),
        )
        .await,
        m.get("/api/v1/fields").await,
        m.post(
            "/api/v1/fields",
            json!({"entity": "deals", "name": "x", "type": "string"}),
        )
        .await,
        m.get("/api/v1/teams").await,
        m.post("/api/v1/teams", json!({"name": "South"})).await,
        m.post("/api/v1/products", json!({"name": "mine", "sku": "M-1"}))
            .await,
        m.patch(
            &format!("/api/v1/products/{product}"),
            json!({"name": "renamed"}),
        )
        .await,
        m.delete(&format!("/api/v1/products/{product}")).await,
    ];
    for got in &forbidden {
        assert_error(got, StatusCode::FORBIDDEN, "forbidden", None);
    }
    // System records look absent.
    for (entity, rid) in [("roles", &role), ("teams", &team), ("fields", &field)] {
        assert_not_found(&m, entity, rid).await;
        let got = m
            .patch(
                &format!("/api/v1/{entity}/{rid}"),
                json!({"description": "x"}),
            )
            .await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
        let got = m.delete(&format!("/api/v1/{entity}/{rid}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    }
    let got = m.get("/api/v1/history?entity=roles").await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    // Nothing was changed.
    assert_eq!(
        fetch(&admin, "products", &product).await["name"],
        "Catalog item"
    );
    let (_, me) = m.get("/api/v1/auth/me").await;
    assert_eq!(me["role"], "manager");
    // Products: read all, including through history.
    assert_eq!(
        ids(&items(&m, "/api/v1/products").await),
        vec![product.clone()]
    );
    assert_eq!(fetch(&m, "products", &product).await["sku"], "C-1");
    assert_eq!(
        record_ids(&history(&m, "entity=products").await),
        set([product.clone()])
    );
    // The admin does all of it.
    assert_eq!(items(&admin, "/api/v1/users").await.len(), 2);
    srv.stop().await;
}

async fn the_exchange_role_cannot_log_in_and_roles_must_exist(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (s, u) = admin
        .post(
            "/api/v1/users",
            json!({"email": "1c@x.ru", "password": "exchange-pass-1", "role": "exchange"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{u}");
    assert!(
        u.get("password_hash").is_none() && u.get("password").is_none(),
        "{u}"
    );
    let got = srv
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "1c@x.ru", "password": "exchange-pass-1"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    assert!(got.1.get("token").is_none());
    // Wrong credentials are 401, whether the user exists or not.
    let got = srv
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "1c@x.ru", "password": "wrong-password"}),
        )
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let got = srv
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@x.ru", "password": "wrong-password"}),
        )
        .await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let got = srv
        .anon()
        .post("/api/v1/auth/login", json!({"email": "1c@x.ru"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("password"),
    );

    let got = admin
        .post(
            "/api/v1/users",
            json!({"email": "x@x.ru", "password": "long-enough-1", "role": "wizard"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("role"));
    let got = admin
        .post(
            "/api/v1/users",
            json!({"email": "x@x.ru", "password": "short", "role": "manager"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("password"),
    );
    let got = admin
        .post(
            "/api/v1/users",
            json!({"email": "1C@X.RU", "password": "long-enough-1"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("email"));
    let got = admin
        .post(
            "/api/v1/users",
            json!({"email": "y@x.ru", "password": "long-enough-1", "password_hash": "x"}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("password_hash"),
    );
    for u in items(&admin, "/api/v1/users").await {
        assert!(u.get("password_hash").is_none(), "{u}");
    }
    srv.stop().await;
}

async fn a_hidden_field_is_invisible_everywhere_and_cannot_be_written_or_filtered(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let (s, role) = admin
        .post("/api/v1/roles", json!({"name": "junior", "permissions": {"companies": "all"}, "hidden_fields": {"companies": ["inn"]}}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{role}");
    let j = srv.user("j@x.ru", "junior", None).await;
    let c = id(&admin
        .create(
            "companies",
            json!({"name": "Secretive", "inn": "7707083893", "kpp": "773601001"}),
        )
        .await);
    update(&admin, "companies", &c, json!({"inn": "7736050003"})).await;
    let gone = id(&admin
        .create(
            "companies",
            json!({"name": "Binned", "inn": "500100732259"}),
        )
        .await);
    remove(&admin, "companies", &gone).await;

    let got = fetch(&j, "companies", &c).await;
    assert!(got.get("inn").is_none(), "inn in GET: {got}");
    assert_eq!(
        (got["name"].as_str(), got["kpp"].as_str()),
        (Some("Secretive"), Some("773601001"))
    );
    for r in walk(&j, "/api/v1/companies", 10).await {
        assert!(r.get("inn").is_none(), "inn in list: {r}");
    }
    // Without an entity filter a non-admin's bin lists only their own deletions; by entity it
    // follows the role's read scope.
    assert!(trash(&j).await.is_empty());
    let bin = walk(&j, "/api/v1/trash?entity=companies", 10).await;
    assert_eq!(
        ids(&bin),
        vec![gone.clone()],
        "the junior reads all companies, in the bin too"
    );
    assert!(bin[0].get("inn").is_none(), "{}", bin[0]);
    let (s, one) = j.get(&format!("/api/v1/trash/companies/{gone}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(one.get("inn").is_none(), "{one}");
    for path in [
        format!("/api/v1/companies/{c}/history"),
        "/api/v1/history?entity=companies".to_string(),
        "/api/v1/history".to_string(),
    ] {
        let h = walk(&j, &path, 100).await;
        assert!(!h.is_empty());
        for e in &h {
            assert!(
                e["before"].get("inn").is_none() && e["after"].get("inn").is_none(),
                "inn in history: {e}"
            );
            assert!(
                e["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|ch| ch["field"] != "inn"),
                "inn in changes: {e}"
            );
        }
        let text = serde_json::to_string(&h).unwrap();
        assert!(
            !text.contains("7707083893") && !text.contains("7736050003"),
            "an INN leaked via {path}"
        );
    }
    // The update that only changed the INN shows no changed fields to the junior.
    let h = history(&j, &format!("record_id={c}&op=update")).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["changes"], json!([]));

    // Writing or filtering by it is refused by name.
    let got = j
        .post(
            "/api/v1/companies",
            json!({"name": "New", "inn": "7707083893"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("inn"));
    let got = j
        .patch(
            &format!("/api/v1/companies/{c}"),
            json!({"inn": "7707083893"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("inn"));
    let got = j.get("/api/v1/companies?inn=7736050003").await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("inn"),
    );
    // Text search does not look into the hidden field either.
    assert!(items(&j, "/api/v1/companies?q=7736050003").await.is_empty());
    assert_eq!(
        ids(&items(&admin, "/api/v1/companies?q=7736050003").await),
        vec![c.clone()]
    );
    let mut visible_hits = Vec::new();
    for i in 1..=3 {
        visible_hits.push(id(&admin
            .create("companies", json!({"name": format!("Match 777 {i}")}))
            .await));
        admin
            .create(
                "companies",
                json!({"name": format!("Nope {i}"), "inn": kontor_domain::taxid::with_check_digits(
                    kontor_domain::taxid::TaxId::Inn,
                    &format!("77700000{i}"),
                )}),
            )
            .await;
    }
    for limit in [1, 2, 50] {
        let found = walk(&j, "/api/v1/companies?q=777", limit).await;
        assert_eq!(set(ids(&found)), set(visible_hits.clone()), "limit {limit}");
        assert_eq!(found.len(), 3, "no duplicates at limit {limit}");
        assert_eq!(
            walk(&admin, "/api/v1/companies?q=777", limit).await.len(),
            6
        );
    }
    // Restoring to a time with another INN would write the hidden field: refused.
    let before_change = history(&admin, &format!("record_id={c}&op=create")).await[0]["at"]
        .as_str()
        .unwrap()
        .to_string();
    let got = j
        .post(
            &format!("/api/v1/companies/{c}/restore"),
            json!({"at": before_change}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("inn"));
    assert_eq!(fetch(&admin, "companies", &c).await["inn"], "7736050003");
    // Other fields change and the hidden value stays.
    update(&j, "companies", &c, json!({"name": "Open"})).await;
    let full = fetch(&admin, "companies", &c).await;
    assert_eq!(
        (full["name"].as_str(), full["inn"].as_str()),
        (Some("Open"), Some("7736050003"))
    );
    // The role grants companies only.
    let got = j.get("/api/v1/deals").await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    let got = j.post("/api/v1/deals", json!({"title": "x"})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    let got = j.get("/api/v1/history?entity=deals").await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    let (_, me) = j.get("/api/v1/auth/me").await;
    assert_eq!(me["role"], "junior");
    srv.stop().await;
}

async fn role_documents_are_checked(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    for (body, field) in [
        (
            json!({"name": "r", "permissions": {"deals": {"read": "everything"}}}),
            "permissions.deals.read",
        ),
        (
            json!({"name": "r", "permissions": {"deals": {"approve": "all"}}}),
            "permissions.deals.approve",
        ),
        (
            json!({"name": "r", "permissions": {"users": "all"}}),
            "permissions.users",
        ),
        (
            json!({"name": "r", "permissions": {"deals": 5}}),
            "permissions.deals",
        ),
        (
            json!({"name": "r", "hidden_fields": {"companies": ["id"]}}),
            "hidden_fields.companies",
        ),
        (
            json!({"name": "r", "readonly_fields": {"companies": "inn"}}),
            "readonly_fields.companies",
        ),
        (json!({"name": "r", "permissions": "all"}), "permissions"),
        (
            json!({"name": "r", "hidden_fields": {"companies": ["Bad Name"]}}),
            "hidden_fields.companies",
        ),
    ] {
        let got = admin.post("/api/v1/roles", body).await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            Some(field),
        );
    }
    // A built-in name is taken, whatever its case.
    let got = admin
        .post("/api/v1/roles", json!({"name": "Manager"}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("name"));
    assert!(items(&admin, "/api/v1/roles").await.is_empty());
    // A role in use cannot be deleted or renamed.
    let role = id(&admin
        .create(
            "roles",
            json!({"name": "sales", "permissions": {"deals": "own"}}),
        )
        .await);
    let u = srv.user("s@x.ru", "sales", None).await;
    let got = admin.delete(&format!("/api/v1/roles/{role}")).await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", None);
    let got = admin
        .patch(
            &format!("/api/v1/roles/{role}"),
            json!({"name": "marketing"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("name"));
    // Changing the permissions applies to the next request.
    u.create("deals", json!({"title": "ok"})).await;
    update(
        &admin,
        "roles",
        &role,
        json!({"permissions": {"deals": {"read": "own"}}}),
    )
    .await;
    let got = u.post("/api/v1/deals", json!({"title": "no longer"})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    assert_eq!(items(&u, "/api/v1/deals").await.len(), 1);
    srv.stop().await;
}

async fn a_read_only_field_is_shown_but_not_written(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    admin
        .create("roles", json!({"name": "clerk", "permissions": {"deals": "all"}, "readonly_fields": {"deals": ["amount"]}}))
        .await;
    let clerk = srv.user("c@x.ru", "clerk", None).await;
    let deal = id(&admin
        .create("deals", json!({"title": "priced", "amount": "500"}))
        .await);
    assert_eq!(
        fetch(&clerk, "deals", &deal).await["amount"],
        json!("500.00")
    );
    assert_eq!(
        items(&clerk, "/api/v1/deals?amount=500").await.len(),
        1,
        "read-only fields can be filtered on"
    );
    let got = clerk
        .patch(&format!("/api/v1/deals/{deal}"), json!({"amount": "1"}))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("amount"));
    let got = clerk
        .post("/api/v1/deals", json!({"title": "mine", "amount": "1"}))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("amount"));
    let got = clerk
        .patch(&format!("/api/v1/deals/{deal}"), json!({"amount": null}))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("amount"));
    let d = update(&clerk, "deals", &deal, json!({"title": "renamed"})).await;
    assert_eq!(
        (d["title"].as_str(), &d["amount"]),
        (Some("renamed"), &json!("500.00"))
    );
    let own = clerk.create("deals", json!({"title": "mine"})).await;
    assert!(own.get("amount").is_none());
    // Nor through restore to a time or undo: both would write the read-only field.
    let t = mark().await;
    let upd = admin
        .patch(&format!("/api/v1/deals/{deal}"), json!({"amount": "600"}))
        .await;
    assert_eq!(upd.0, StatusCode::OK, "the admin is not bound by it");
    let got = clerk
        .post(&format!("/api/v1/deals/{deal}/restore"), json!({"at": t}))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("amount"));
    let batch = history(&admin, &format!("record_id={deal}"))
        .await
        .last()
        .unwrap()["batch"]
        .clone();
    let got = clerk
        .post("/api/v1/history/undo", json!({"batch": batch}))
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", Some("amount"));
    assert_eq!(
        fetch(&admin, "deals", &deal).await["amount"],
        json!("600.00")
    );
    // Restoring other fields is fine.
    let t2 = mark().await;
    update(&clerk, "deals", &deal, json!({"title": "renamed again"})).await;
    let (s, v) = clerk
        .post(&format!("/api/v1/deals/{deal}/restore"), json!({"at": t2}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let d = fetch(&admin, "deals", &deal).await;
    assert_eq!(
        (d["title"].as_str(), &d["amount"]),
        (Some("renamed"), &json!("600.00"))
    );
    srv.stop().await;
}

async fn team_scope_reaches_teammates_records_only(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let north = id(&admin.create("teams", json!({"name": "North"})).await);
    let south = id(&admin.create("teams", json!({"name": "South"})).await);
    let got = admin.post("/api/v1/teams", json!({"name": "north"})).await;
    assert_error(&got, StatusCode::CONFLICT, "duplicate", Some("name"));
    admin
        .create(
            "roles",
            json!({"name": "teamwork", "permissions": {
                "deals": "team",
                "companies": {"read": "team", "create": "own", "update": "own", "delete": "none"}
            }}),
        )
        .await;
    let a = srv.user("a@x.ru", "teamwork", Some(&north)).await;
    let b = srv.user("b@x.ru", "teamwork", Some(&north)).await;
    let c = srv.user("c@x.ru", "teamwork", Some(&south)).await;
    let a_deal = id(&a.create("deals", json!({"title": "north deal"})).await);
    let c_deal = id(&c.create("deals", json!({"title": "south deal"})).await);
    let a_company = id(&a.create("companies", json!({"name": "North Co"})).await);

    // b, a teammate, reads and changes a's deal; c does not even see it.
    assert_eq!(fetch(&b, "deals", &a_deal).await["title"], "north deal");
    assert_eq!(
        set(ids(&items(&b, "/api/v1/deals").await)),
        set([a_deal.clone()])
    );
    update(&b, "deals", &a_deal, json!({"stage": "won"})).await;
    assert_not_found(&c, "deals", &a_deal).await;
    assert_eq!(ids(&items(&c, "/api/v1/deals").await), vec![c_deal.clone()]);
    assert_not_found(&a, "deals", &c_deal).await;
    let got = c
        .patch(&format!("/api/v1/deals/{a_deal}"), json!({"stage": "lost"}))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    // History follows the same scope.
    assert_eq!(
        record_ids(&history(&b, "entity=deals").await),
        set([a_deal.clone()])
    );
    assert_eq!(
        record_ids(&history(&c, "entity=deals").await),
        set([c_deal.clone()])
    );
    // Companies: teammates read but may not change; nobody of the role deletes.
    fetch(&b, "companies", &a_company).await;
    let got = b
        .patch(
            &format!("/api/v1/companies/{a_company}"),
            json!({"name": "b's now"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    update(&a, "companies", &a_company, json!({"name": "North Co 2"})).await;
    let got = a.delete(&format!("/api/v1/companies/{a_company}")).await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);
    assert_not_found(&c, "companies", &a_company).await;
    // The bin is scoped too.
    remove(&b, "deals", &a_deal).await;
    assert_eq!(
        ids(&items(&a, "/api/v1/trash?entity=deals").await),
        vec![a_deal.clone()]
    );
    assert!(items(&c, "/api/v1/trash?entity=deals").await.is_empty());
    let (s, _) = a
        .post(&format!("/api/v1/trash/deals/{a_deal}/restore"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    // Moving c to the north team lets c in on the next request.
    update(&admin, "users", &c.user_id, json!({"team_id": north})).await;
    assert_eq!(fetch(&c, "deals", &a_deal).await["stage"], "won");
    assert_eq!(
        set(ids(&items(&a, "/api/v1/deals").await)),
        set([a_deal.clone(), c_deal.clone()])
    );
    let got = admin
        .patch(
            &format!("/api/v1/users/{}", c.user_id),
            json!({"team_id": MISSING_ID}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "reference", Some("team_id"));
    srv.stop().await;
}

async fn a_disabled_user_loses_access_and_cannot_log_in(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let m = srv.user("m@x.ru", "manager", None).await;
    let second = srv.login("m@x.ru", "user-password-1").await;
    let (s, _) = m.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);

    let u = update(&admin, "users", &m.user_id, json!({"disabled": true})).await;
    assert_eq!(u["disabled"], true);
    for api in [&m, &second] {
        let got = api.get("/api/v1/auth/me").await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
        let got = api.get("/api/v1/deals").await;
        assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    }
    let got = srv
        .anon()
        .post(
            "/api/v1/auth/login",
            json!({"email": "m@x.ru", "password": "user-password-1"}),
        )
        .await;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", None);

    // Enabled again: a new login works, the old tokens stay revoked.
    update(&admin, "users", &m.user_id, json!({"disabled": false})).await;
    let again = srv.login("m@x.ru", "user-password-1").await;
    let (s, _) = again.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    let got = m.get("/api/v1/auth/me").await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);

    // A password change revokes tokens too; the new password logs in.
    update(
        &admin,
        "users",
        &m.user_id,
        json!({"password": "another-pass-2"}),
    )
    .await;
    let got = again.get("/api/v1/auth/me").await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    srv.login("m@x.ru", "another-pass-2").await;
    // A deleted user's tokens stop working.
    let latest = srv.login("m@x.ru", "another-pass-2").await;
    let (s, _) = admin.delete(&format!("/api/v1/users/{}", m.user_id)).await;
    assert_eq!(s, StatusCode::OK);
    let got = latest.get("/api/v1/auth/me").await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    // The last admin cannot disable or demote themselves.
    let got = admin
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            json!({"disabled": true}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("role"));
    let got = admin
        .patch(
            &format!("/api/v1/users/{}", admin.user_id),
            json!({"role": "manager"}),
        )
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", Some("role"));
    let got = admin
        .delete(&format!("/api/v1/users/{}", admin.user_id))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "invalid_state", None);
    let (s, _) = admin.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    srv.stop().await;
}

async fn logout_revokes_only_the_token_used(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let a1 = srv.admin().await;
    let a2 = srv.admin().await;
    let (s, v) = a1.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("logged_out"))
    );
    let got = a1.get("/api/v1/auth/me").await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let got = a1.post("/api/v1/auth/logout", json!({})).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let got = srv.anon().post("/api/v1/auth/logout", json!({})).await;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
    let (s, me) = a2.get("/api/v1/auth/me").await;
    assert_eq!(
        (s, me["email"].as_str()),
        (StatusCode::OK, Some(ADMIN_EMAIL))
    );
    srv.stop().await;
}

async fn repeated_wrong_passwords_are_rate_limited_with_retry_after(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let admin = srv.admin().await;
    let url = format!("{}/api/v1/auth/login", srv.base);
    let login = |password: &'static str| {
        let client = srv.client.clone();
        let url = url.clone();
        async move {
            client
                .post(&url)
                .json(&json!({"email": ADMIN_EMAIL, "password": password}))
                .send()
                .await
                .expect("request")
        }
    };
    for i in 0..5 {
        let r = login("wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(r.headers().get("retry-after").is_none());
    }
    let r = login("wrong-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=301).contains(&wait), "Retry-After {wait}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Even the right password waits now.
    let r = login(ADMIN_PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    // Existing tokens keep working, and other accounts still log in.
    let (s, _) = admin
        .post(
            "/api/v1/users",
            json!({"email": "other@x.ru", "password": "user-password-1", "role": "manager"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    srv.login("other@x.ru", "user-password-1").await;
    srv.stop().await;
}

crate::engine_tests!(
    a_manager_cannot_reach_another_managers_records_through_any_endpoint,
    a_manager_cannot_delete_a_parent_with_someone_elses_children,
    a_duplicate_value_never_names_a_record_the_caller_cannot_read,
    managers_have_no_admin_areas_and_read_but_do_not_write_products,
    the_exchange_role_cannot_log_in_and_roles_must_exist,
    a_hidden_field_is_invisible_everywhere_and_cannot_be_written_or_filtered,
    role_documents_are_checked,
    a_read_only_field_is_shown_but_not_written,
    team_scope_reaches_teammates_records_only,
    a_disabled_user_loses_access_and_cannot_log_in,
    logout_revokes_only_the_token_used,
    repeated_wrong_passwords_are_rate_limited_with_retry_after,
);
