//! The OpenAPI document: it is OpenAPI 3, documents every route the server has, every documented
//! operation is really routed, and the schemas are the ones the server validates with.

use crate::common::*;
use crate::support::*;
use kontor_server::openapi::{routed_entities, ROUTES};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Every (method, full path) that ROUTES promises, with `{entity}` expanded as the document does.
fn promised() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (method, path) in ROUTES {
        if path.contains("{entity}") && !path.starts_with("/trash") {
            for e in routed_entities() {
                out.insert((
                    method.to_string(),
                    format!("/api/v1{}", path.replace("{entity}", e.as_str())),
                ));
            }
        } else {
            out.insert((method.to_string(), format!("/api/v1{path}")));
        }
    }
    out
}

/// Every (method, path) the document lists.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("operations").keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

/// A concrete URL for a documented path.
fn concrete(path: &str) -> String {
    path.replace("{id}", MISSING_ID)
        .replace("{entity}", "deals")
}

async fn send(api: &Api, method: &str, path: &str) -> (StatusCode, Value) {
    let m = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let body = if m == Method::POST || m == Method::PATCH {
        "{}"
    } else {
        ""
    };
    if body.is_empty() {
        match m {
            // Some answers are files, not JSON: raw keeps them as text.
            Method::GET => api.raw(m, path, "").await,
            Method::DELETE => api.delete(path).await,
            _ => api.raw(m, path, body).await,
        }
    } else {
        api.raw(m, path, body).await
    }
}

async fn document(srv: &TestServer) -> Value {
    let (s, doc) = srv.anon().get("/api/v1/openapi.json").await;
    assert_eq!(s, StatusCode::OK, "{doc}");
    doc
}

async fn the_document_is_openapi_3_and_covers_every_route(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let doc = document(&srv).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].as_str().is_some());
    assert!(doc["info"]["version"].as_str().is_some());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let promised = promised();
    let documented = documented(&doc);
    for (method, path) in &promised {
        assert!(
            documented.contains(&(method.clone(), path.clone())),
            "{method} {path} is not documented"
        );
        let op = &doc["paths"][path][method];
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path}: {op}"
        );
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path}"
        );
        if path.contains("{id}") {
            let params = op["parameters"].as_array().unwrap();
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "id" && p["in"] == "path"),
                "{method} {path} documents {{id}}"
            );
        }
    }
    // Nothing documented that is not promised, apart from the health checks.
    let extra: Vec<_> = documented.difference(&promised).collect();
    assert_eq!(
        extra,
        vec![
            &("get".to_string(), "/healthz".to_string()),
            &("get".to_string(), "/readyz".to_string())
        ],
        "undocumented extras"
    );
    // Users have their own routes, not the generic ones.
    assert!(doc["paths"].get("/api/v1/users/{id}/history").is_some());
    assert!(routed_entities().iter().all(|e| e.as_str() != "users"));
    assert!(doc["paths"]["/api/v1/deals"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "limit"));
    assert!(doc["paths"]["/api/v1/history"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "batch"));
    srv.stop().await;
}

async fn every_documented_operation_is_routed(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let doc = document(&srv).await;
    let anon = srv.anon();
    let open: BTreeSet<(&str, &str)> = [
        ("get", "/api/v1/openapi.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
    ]
    .into();
    for (method, path) in documented(&doc) {
        let url = concrete(&path);
        let got = send(&anon, &method, &url).await;
        assert_ne!(
            got.0,
            StatusCode::NOT_FOUND,
            "{method} {url} is documented but not routed: {}",
            got.1
        );
        assert_ne!(
            got.0,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {url} is documented but not routed"
        );
        if open.contains(&(method.as_str(), path.as_str())) {
            assert_eq!(got.0, StatusCode::OK, "{method} {url}");
        } else if path == "/api/v1/auth/login" {
            // Reachable without a token; an empty object lacks the e-mail.
            assert_error(
                &got,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                Some("email"),
            );
        } else {
            assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", None);
        }
    }

    // With a token every operation reaches its handler: no answer is the router's own "no such
    // path" or 405. (Logout is left out: it would end the session.)
    let admin = srv.admin().await;
    for (method, path) in documented(&doc) {
        if path == "/api/v1/auth/logout" {
            continue;
        }
        let url = concrete(&path);
        let got = send(&admin, &method, &url).await;
        assert_ne!(got.0, StatusCode::METHOD_NOT_ALLOWED, "{method} {url}");
        assert!(
            !got.1["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("no such path"),
            "{method} {url}: {}",
            got.1
        );
        assert!(got.0.as_u16() < 500, "{method} {url}: {} {}", got.0, got.1);
    }
    let (s, _) = admin.get("/api/v1/auth/me").await;
    assert_eq!(s, StatusCode::OK);
    srv.stop().await;
}

async fn schemas_match_what_the_server_validates(engine: Engine) {
    let srv = TestServer::start(engine).await;
    let doc = document(&srv).await;
    let schemas = &doc["components"]["schemas"];
    for e in routed_entities() {
        assert!(
            schemas[e.as_str()]["properties"].is_object(),
            "schema of {e}"
        );
        let list = &doc["paths"][format!("/api/v1/{e}")]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert_eq!(
            list["properties"]["items"]["items"]["$ref"],
            json!(format!("#/components/schemas/{e}"))
        );
    }
    let companies = &schemas["companies_create"];
    let inn = &companies["properties"]["inn"];
    assert_eq!(inn["type"], json!(["string", "null"]));
    assert_eq!(inn["pattern"], "^([0-9]{10}|[0-9]{12})$");
    assert_eq!(
        inn["format"], "ru-inn",
        "check digits are part of the format"
    );
    assert_eq!(companies["required"], json!(["name"]));
    assert_eq!(companies["additionalProperties"], false);
    assert_eq!(schemas["companies"]["properties"]["id"]["readOnly"], true);
    assert_eq!(
        companies["properties"]["bank_accounts"]["items"]["required"],
        json!(["account", "bik"])
    );
    assert_eq!(
        schemas["deals_create"]["properties"]["stage"]["enum"],
        json!([
            "new",
            "qualification",
            "proposal",
            "negotiation",
            "won",
            "lost",
            null
        ])
    );
    assert_eq!(
        schemas["deals_create"]["properties"]["stage"]["default"],
        "new"
    );
    // Money is a decimal string, in requests and answers.
    assert_eq!(
        schemas["deals_create"]["properties"]["amount"]["type"],
        json!(["string", "null"])
    );
    assert_eq!(schemas["invoices"]["properties"]["total"]["type"], "string");
    assert_eq!(schemas["invoices"]["properties"]["total"]["readOnly"], true);
    assert!(schemas["invoices_create"]["properties"]
        .get("total")
        .is_none());
    assert_eq!(
        schemas["invoices_create"]["required"],
        json!(["company_id"])
    );
    assert_eq!(
        schemas["activities"]["properties"]["due_at"]["format"],
        "date-time"
    );
    assert!(schemas["users"]["properties"]
        .get("password_hash")
        .is_none());
    assert_eq!(
        schemas["users_create"]["required"],
        json!(["email", "password"])
    );
    assert!(schemas["users"]["properties"]["email"].is_object());
    // Every parameter has a schema: no literal `{field}` placeholder, enums where the server
    // takes a fixed set.
    let list = doc["paths"]["/api/v1/deals"]["get"]["parameters"]
        .as_array()
        .unwrap();
    assert!(list.iter().all(|p| p["schema"].is_object()), "{list:?}");
    assert!(list.iter().all(|p| p["name"] != "{field}"));
    let param = |name: &str| list.iter().find(|p| p["name"] == name).cloned();
    assert_eq!(
        param("order").unwrap()["schema"]["enum"],
        json!(["asc", "desc"])
    );
    assert_eq!(param("limit").unwrap()["schema"]["maximum"], 500);
    assert!(param("stage").is_some(), "fields are documented filters");
    let history = doc["paths"]["/api/v1/history"]["get"]["parameters"]
        .as_array()
        .unwrap();
    let op = history.iter().find(|p| p["name"] == "op").unwrap();
    assert_eq!(
        op["schema"]["enum"],
        json!(["create", "update", "delete", "restore", "purge"])
    );
    // Statuses: each route lists what it can answer.
    let login = &doc["paths"]["/api/v1/auth/login"]["post"]["responses"];
    for code in ["200", "401", "413", "415", "422", "429", "503"] {
        assert!(login.get(code).is_some(), "login documents {code}");
    }
    let create = &doc["paths"]["/api/v1/deals"]["post"]["responses"];
    for code in [
        "201", "400", "401", "403", "409", "413", "414", "415", "422", "500", "503",
    ] {
        assert!(create.get(code).is_some(), "create documents {code}");
    }
    assert!(create["201"]["links"]["GetRecord"].is_object());
    for name in ["BatchSummary", "HistoryItem", "Error"] {
        assert!(schemas[name].is_object(), "{name}");
    }
    assert_eq!(
        schemas["Error"]["properties"]["error"]["required"],
        json!(["code", "message"])
    );
    // What the document says is what the server enforces: a value off the INN pattern is refused.
    let admin = srv.admin().await;
    let got = admin
        .post("/api/v1/companies", json!({"name": "x", "inn": "123"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("inn"),
    );
    let got = admin
        .post("/api/v1/companies", json!({"inn": "7707083893"}))
        .await;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        Some("name"),
    );
    srv.stop().await;
}

crate::engine_tests!(
    the_document_is_openapi_3_and_covers_every_route,
    every_documented_operation_is_routed,
    schemas_match_what_the_server_validates,
);
