//! Helpers shared by the HTTP tests: timestamps between writes, walking paginated lists, and
//! small assertions on record sets.

use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

/// A UUID in canonical form that no test ever creates.
pub const MISSING_ID: &str = "01900000-0000-7000-8000-000000000000";

/// The current time as the server writes it (RFC 3339, microseconds, `Z`).
pub fn now() -> String {
    kontor_domain::time::format(kontor_domain::time::now())
}

/// Sleeps a few milliseconds so journal times before and after differ.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(6)).await;
}

/// A time strictly between the writes before and after this call.
pub async fn mark() -> String {
    tick().await;
    let t = now();
    tick().await;
    t
}

/// Walks every page of a list endpoint (`path` may already carry a query) with `limit`, failing
/// on any non-200 page. Returns the items in the order served.
pub async fn walk(api: &Api, path: &str, limit: u32) -> Vec<Value> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let (s, page) = api.get(&url).await;
        assert_eq!(s, StatusCode::OK, "GET {url}: {page}");
        let got = page["items"].as_array().expect("items").clone();
        assert!(
            got.len() <= limit as usize,
            "page larger than limit {limit}: {}",
            got.len()
        );
        items.extend(got);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert!(page["next_cursor"].is_null(), "next_cursor: {page}");
                return items;
            }
        }
    }
    panic!("pagination of {path} never ended");
}

/// One page of a list endpoint; fails on a non-200 status.
pub async fn items(api: &Api, path: &str) -> Vec<Value> {
    let (s, page) = api.get(path).await;
    assert_eq!(s, StatusCode::OK, "GET {path}: {page}");
    page["items"].as_array().expect("items").clone()
}

/// The `id` of each item.
pub fn ids(items: &[Value]) -> Vec<String> {
    items.iter().map(id).collect()
}

/// The `record_id` of each history item, as a set.
pub fn record_ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i["record_id"].as_str().expect("record_id").to_string())
        .collect()
}

pub fn set<I: IntoIterator<Item = S>, S: Into<String>>(it: I) -> BTreeSet<String> {
    it.into_iter().map(Into::into).collect()
}

/// Every history item matching `query` (without leading `?`), oldest first.
pub async fn history(api: &Api, query: &str) -> Vec<Value> {
    let path = if query.is_empty() {
        "/api/v1/history?order=asc".to_string()
    } else {
        format!("/api/v1/history?order=asc&{query}")
    };
    walk(api, &path, 500).await
}

/// Every item in the recycle bin the actor sees.
pub async fn trash(api: &Api) -> Vec<Value> {
    walk(api, "/api/v1/trash", 500).await
}

/// GET of one record; fails unless 200.
pub async fn fetch(api: &Api, entity: &str, rid: &str) -> Value {
    let (s, v) = api.get(&format!("/api/v1/{entity}/{rid}")).await;
    assert_eq!(s, StatusCode::OK, "GET {entity}/{rid}: {v}");
    v
}

/// PATCH of one record; fails unless 200.
pub async fn update(api: &Api, entity: &str, rid: &str, body: Value) -> Value {
    let (s, v) = api.patch(&format!("/api/v1/{entity}/{rid}"), body).await;
    assert_eq!(s, StatusCode::OK, "PATCH {entity}/{rid}: {v}");
    v
}

/// DELETE of one record; fails unless 200. Returns the batch summary.
pub async fn remove(api: &Api, entity: &str, rid: &str) -> Value {
    let (s, v) = api.delete(&format!("/api/v1/{entity}/{rid}")).await;
    assert_eq!(s, StatusCode::OK, "DELETE {entity}/{rid}: {v}");
    v
}

/// Asserts that GET of a record answers 404 `in_trash`.
pub async fn assert_in_trash(api: &Api, entity: &str, rid: &str) {
    let got = api.get(&format!("/api/v1/{entity}/{rid}")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "in_trash", None);
}

/// Asserts that GET of a record answers 404 `not_found`.
pub async fn assert_not_found(api: &Api, entity: &str, rid: &str) {
    let got = api.get(&format!("/api/v1/{entity}/{rid}")).await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
}

/// The `(entity, id, op)` of each change in a batch summary, as a set.
pub fn changes(summary: &Value) -> BTreeSet<(String, String, String)> {
    summary["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["entity"].as_str().expect("entity").to_string(),
                c["id"].as_str().expect("id").to_string(),
                c["op"].as_str().expect("op").to_string(),
            )
        })
        .collect()
}

/// The conflicts of a 409 `conflict` response, as `(kind, field)` pairs.
pub fn conflicts(got: &(StatusCode, Value)) -> Vec<(String, Option<String>)> {
    assert_error(got, StatusCode::CONFLICT, "conflict", None);
    got.1["error"]["conflicts"]
        .as_array()
        .expect("conflicts list")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().expect("kind").to_string(),
                c["field"].as_str().map(str::to_string),
            )
        })
        .collect()
}
