//! The HTTP routes. Handlers only translate between HTTP and the core: they parse the request,
//! call one core function with the actor, and shape the response.

pub mod auth;
pub mod history;
pub mod records;
pub mod system;
pub mod trash;
pub mod users;

use crate::error::{ApiError, ApiResult};
use axum::http::{HeaderMap, HeaderValue};
use kontor_core::Applied;
use kontor_domain::Entity;
use serde_json::{json, Value};

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

pub fn check_id(id: &str) -> ApiResult<()> {
    if kontor_domain::record::is_valid_id(id) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("'{id}' is not a record id")))
    }
}

/// `X-Kontor-Batch` names the journal batch a write created, for undo.
pub fn batch_header(applied: &Applied) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&applied.batch.to_string()) {
        h.insert("x-kontor-batch", v);
    }
    h
}

/// A summary of what a batch changed: `{"batch", "changes":[{"entity","id","op"}]}`.
pub fn batch_summary(applied: &Applied) -> Value {
    json!({
        "batch": applied.batch.to_string(),
        "changes": applied
            .entries
            .iter()
            .map(|e| json!({"entity": e.entity.as_str(), "id": e.record_id, "op": e.op.as_str(), "seq": e.seq}))
            .collect::<Vec<_>>(),
    })
}
