//! The HTTP routes. Handlers only translate between HTTP and the core: they parse the request,
//! call one core function with the actor, and shape the response.

pub mod auth;
pub mod backups;
pub mod exchange_runs;
pub mod history;
pub mod operations;
pub mod records;
pub mod search;
pub mod system;
pub mod transfer;
pub mod trash;
pub mod users;

use crate::error::{ApiError, ApiResult};
use crate::extract::QueryPairs;
use crate::AppState;
use axum::http::{HeaderMap, HeaderValue};
use axum::Json;
use kontor_core::list::{ListPage, ListParams};
use kontor_core::read::Page;
use kontor_core::{Applied, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::{Actor, Entity};
use serde::Serialize;
use serde_json::{json, Value};

/// Admin-only routes: anyone else gets 403 with `message`.
pub fn admin_only(actor: &Actor, message: &str) -> ApiResult<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(kontor_domain::DomainError::forbidden(message).into())
    }
}

/// Parses the `{entity}` path segment of the generic record routes.
pub fn entity_param(name: &str) -> ApiResult<Entity> {
    match name.parse::<Entity>() {
        Ok(Entity::Users) => Err(ApiError::NotFound(
            "users are managed at /api/v1/users".into(),
        )),
        Ok(e) => Ok(e),
        Err(_) => Err(ApiError::NotFound(format!(
            "unknown entity '{name}'; one of: {}",
            Entity::ALL
                .iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Parses the `{entity}/{id}` path segments of the generic record routes; the id comes back in
/// its canonical (lowercase) form.
pub fn record_path(entity: &str, id: &str) -> ApiResult<(Entity, String)> {
    Ok((entity_param(entity)?, check_id(id)?))
}

/// Parses `{entity}/{id}` in the recycle bin, where users (admin only) wait too.
pub fn trash_path(entity: &str, id: &str) -> ApiResult<(Entity, String)> {
    let entity = match entity.parse::<Entity>() {
        Ok(e) => e,
        Err(_) => entity_param(entity)?,
    };
    Ok((entity, check_id(id)?))
}

/// A record id from a path, in either case; 404 if it cannot be one.
pub fn check_id(id: &str) -> ApiResult<String> {
    kontor_domain::record::parse_id(id)
        .ok_or_else(|| ApiError::NotFound(format!("'{id}' is not a record id")))
}

/// `X-Kontor-Batch` names the journal batch a write created, for undo.
pub fn batch_header(applied: &Applied) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&applied.batch.to_string()) {
        h.insert("x-kontor-batch", v);
    }
    h
}

/// A summary of what a batch changed: `{"batch", "changes":[{"entity","id","op","seq"}]}`, and
/// `"skipped"` when a restore or undo deliberately left fields as they were (credentials).
pub fn batch_summary(applied: &Applied) -> Value {
    let mut out = json!({
        "batch": applied.batch.to_string(),
        "changes": applied
            .entries
            .iter()
            .map(|e| json!({"entity": e.entity.as_str(), "id": e.record_id, "op": e.op.as_str(), "seq": e.seq}))
            .collect::<Vec<_>>(),
    });
    if !applied.skipped.is_empty() {
        out["skipped"] = json!(applied.skipped);
    }
    out
}

/// Applies one mutation and answers with the batch header and summary.
pub async fn write_one(
    state: &AppState,
    actor: &Actor,
    origin: Origin,
    mutation: Mutation,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let applied = state.kontor.write(actor, origin, vec![mutation]).await?;
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}

/// A body that must be an object with only these keys; any other key is refused by name. A body
/// that is not an object names the first key, the one it needs first.
pub fn object_with<'a>(
    body: &'a Value,
    allowed: &[&str],
) -> ApiResult<&'a serde_json::Map<String, Value>> {
    let obj = body.as_object().ok_or_else(|| {
        kontor_domain::DomainError::invalid(
            allowed.first().copied().unwrap_or_default(),
            format!(
                "the request body must be a JSON object with {}",
                allowed.join(", ")
            ),
        )
    })?;
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(kontor_domain::DomainError::invalid(
            k.as_str(),
            format!("unknown field '{k}' (expected: {})", allowed.join(", ")),
        )
        .into());
    }
    Ok(obj)
}

/// `limit`, `cursor`, `q`, `sort`, `order`, `count`; every other query parameter is a field
/// filter (`field=value`, `field[gte]=value`).
pub fn list_params(mut q: QueryPairs) -> ApiResult<ListParams> {
    let count = match q.take("count")?.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(
                kontor_domain::DomainError::invalid("count", "count must be true or false").into(),
            )
        }
    };
    Ok(ListParams {
        limit: q.take_u32("limit")?,
        cursor: q.take("cursor")?,
        q: q.take("q")?,
        sort: q.take("sort")?,
        order: q.take("order")?,
        count,
        count_bounded: false,
        filters: q.0,
    })
}

/// A list page as `{"items", "next_cursor"}`, with `total` and `total_is_estimate` when the
/// count was asked for (`total` is `null` when it cannot be told to this role).
pub fn list_json(page: ListPage) -> Json<Value> {
    let mut body = json!({"items": page.items, "next_cursor": page.next_cursor});
    if let Some(total) = page.total {
        body["total"] = json!(total.map(|t| t.total));
        body["total_is_estimate"] = json!(total.is_none_or(|t| t.total_is_estimate));
    }
    Json(body)
}

/// A page as `{"items": [...], "next_cursor": ...}`.
pub fn page_json<T: Serialize>(page: Page<T>) -> Json<Value> {
    Json(json!({"items": page.items, "next_cursor": page.next_cursor}))
}
