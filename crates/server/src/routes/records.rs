//! CRUD on every entity (`/api/v1/{entity}`), restore of one record to a past time, its history,
//! and `/api/v1/batch` for several changes in one atomic batch.

use super::{
    batch_header, batch_summary, entity_param, list_json, list_params, page_json, record_path,
    write_one,
};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, JsonBody, PathParams, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kontor_core::read::{present, HistoryParams};
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::{DomainError, Entity};
use serde_json::Value;
use std::sync::Arc;

/// Most operations one `/api/v1/batch` request may carry.
pub const MAX_BATCH: usize = 1000;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(entity): PathParams<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let entity = entity_param(&entity)?;
    let params = list_params(q)?;
    let page = state.kontor.list(&actor, entity, &params).await?;
    Ok(list_json(page))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(entity): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    let entity = entity_param(&entity)?;
    let applied = state
        .kontor
        .write(
            &actor,
            Origin::Api,
            vec![Mutation::Create {
                entity,
                input: body,
            }],
        )
        .await?;
    let rec = applied.records.first().cloned().flatten().ok_or_else(|| {
        ApiError::Core(kontor_core::CoreError::Store(
            kontor_store::StoreError::Other("created record not found".into()),
        ))
    })?;
    Ok((
        StatusCode::CREATED,
        batch_header(&applied),
        Json(present(&actor, &rec)),
    ))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (entity, id) = record_path(&entity, &id)?;
    let rec = state.kontor.get(&actor, entity, &id).await?;
    Ok(Json(present(&actor, &rec)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let (entity, id) = record_path(&entity, &id)?;
    let applied = state
        .kontor
        .write(
            &actor,
            Origin::Api,
            vec![Mutation::Update {
                entity,
                id: id.clone(),
                input: body,
            }],
        )
        .await?;
    // The record as the batch left it; if the update handed it to an owner the actor may not
    // read, the answer is the batch summary instead.
    let body = match applied.records.first().cloned().flatten() {
        Some(rec)
            if actor.can(
                entity,
                kontor_domain::permission::Action::Read,
                rec.owner_id.as_deref(),
            ) =>
        {
            present(&actor, &rec)
        }
        _ => batch_summary(&applied),
    };
    Ok((batch_header(&applied), Json(body)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let (entity, id) = record_path(&entity, &id)?;
    write_one(&state, &actor, Origin::Api, Mutation::Delete { entity, id }).await
}

/// `POST /api/v1/{entity}/{id}/restore {"at": RFC 3339}`.
pub async fn restore_to_time(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let (entity, id) = record_path(&entity, &id)?;
    restore_record_to(&state, &actor, entity, &id, &body).await
}

/// Restores one record to its state at the body's `at`; shared with `/users/{id}/restore`.
pub async fn restore_record_to(
    state: &AppState,
    actor: &kontor_domain::Actor,
    entity: Entity,
    id: &str,
    body: &Value,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let body = super::object_with(body, &["at"])?;
    let at = body
        .get("at")
        .and_then(Value::as_str)
        .and_then(kontor_domain::validate::parse_datetime)
        .ok_or_else(|| {
            DomainError::invalid(
                "at",
                "'at' must be an RFC 3339 time like 2026-01-31T09:00:00Z",
            )
        })?;
    let applied = state.kontor.restore_record(actor, entity, id, at).await?;
    let record = applied
        .records
        .first()
        .cloned()
        .flatten()
        .map(|r| present(actor, &r));
    let mut out = batch_summary(&applied);
    if let Value::Object(m) = &mut out {
        m.insert("record".into(), record.unwrap_or(Value::Null));
    }
    Ok((batch_header(&applied), Json(out)))
}

/// `GET /api/v1/{entity}/{id}/history`: the history of one record.
pub async fn record_history(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let (entity, id) = record_path(&entity, &id)?;
    history_of(&state, &actor, entity, id, q).await
}

/// One record's history; shared with `/users/{id}/history`.
pub async fn history_of(
    state: &AppState,
    actor: &kontor_domain::Actor,
    entity: Entity,
    id: String,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let params = HistoryParams {
        entity: Some(entity.as_str().into()),
        record_id: Some(id),
        ..super::history::history_params(&mut q)?
    };
    q.finish()?;
    let page = state.kontor.history(actor, &params).await?;
    Ok(page_json(page))
}

/// `POST /api/v1/batch {"operations":[{"op":"create"|"update"|"delete","entity","id"?,"data"?}]}`:
/// all operations in one transaction and one journal batch, or none.
pub async fn batch(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let obj = super::object_with(&body, &["operations"])?;
    let ops = obj
        .get("operations")
        .and_then(Value::as_array)
        .ok_or_else(|| DomainError::invalid("operations", "'operations' must be a list"))?;
    if ops.is_empty() || ops.len() > MAX_BATCH {
        return Err(DomainError::invalid(
            "operations",
            format!("give 1 to {MAX_BATCH} operations"),
        )
        .into());
    }
    let mut mutations = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        mutations.push(batch_operation(i, op)?);
    }
    let applied = state
        .kontor
        .write_numbered(&actor, Origin::Api, mutations)
        .await?;
    let mut out = batch_summary(&applied);
    if let Value::Object(m) = &mut out {
        m.insert(
            "records".into(),
            Value::Array(
                applied
                    .records
                    .iter()
                    .map(|r| {
                        r.as_ref()
                            .map(|r| present(&actor, r))
                            .unwrap_or(Value::Null)
                    })
                    .collect(),
            ),
        );
    }
    Ok((batch_header(&applied), Json(out)))
}

/// One `{"op", "entity", "id"?, "data"?}` of a batch: create takes `data` and no `id` (Kontor
/// gives ids), update takes both, delete only `id`. Anything else is refused by name.
fn batch_operation(i: usize, op: &Value) -> ApiResult<Mutation> {
    let path = |f: &str| format!("operations[{i}].{f}");
    let invalid = |f: &str, m: String| -> ApiError { DomainError::invalid(path(f), m).into() };
    let obj = op.as_object().ok_or_else(|| {
        DomainError::invalid(
            format!("operations[{i}]"),
            "each operation must be an object",
        )
    })?;
    let s = |f: &str| obj.get(f).and_then(Value::as_str);
    let kind = match s("op") {
        Some(k @ ("create" | "update" | "delete")) => k,
        _ => {
            return Err(invalid(
                "op",
                format!("'{}' must be create, update or delete", path("op")),
            ))
        }
    };
    let allowed: &[&str] = match kind {
        "create" => &["op", "entity", "data"],
        "update" => &["op", "entity", "id", "data"],
        _ => &["op", "entity", "id"],
    };
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            k,
            if k == "id" {
                format!(
                    "'{}': ids are given by Kontor; leave 'id' out of a create",
                    path("id")
                )
            } else {
                format!("unknown field '{}' for a {kind} operation", path(k))
            },
        ));
    }
    let entity = match s("entity").map(str::parse::<Entity>) {
        Some(Ok(e)) if e != Entity::Users => e,
        _ => {
            return Err(invalid(
                "entity",
                format!("'{}' must be one of the record entities", path("entity")),
            ))
        }
    };
    let id = || -> ApiResult<String> {
        s("id")
            .and_then(kontor_domain::record::parse_id)
            .ok_or_else(|| invalid("id", format!("'{}' must be a record id", path("id"))))
    };
    let data = || -> ApiResult<Value> {
        match obj.get("data") {
            Some(v @ Value::Object(_)) => Ok(v.clone()),
            _ => Err(invalid(
                "data",
                format!("'{}' must be an object", path("data")),
            )),
        }
    };
    Ok(match kind {
        "create" => Mutation::Create {
            entity,
            input: data()?,
        },
        "update" => Mutation::Update {
            entity,
            id: id()?,
            input: data()?,
        },
        _ => Mutation::Delete { entity, id: id()? },
    })
}
