//! The recycle bin: list, look at one record, restore (with its whole deletion batch), purge.

use super::{page_json, trash_path, write_one};
use crate::error::ApiResult;
use crate::extract::{Auth, PathParams, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use kontor_core::read::present;
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::permission::Action;
use kontor_domain::DomainError;
use serde_json::Value;
use std::sync::Arc;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let entity = q.take("entity")?;
    let cursor = q.take("cursor")?;
    let limit = q.take_u32("limit")?;
    q.finish()?;
    let page = state
        .kontor
        .trash(&actor, entity.as_deref(), cursor.as_deref(), limit)
        .await?;
    Ok(page_json(page))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (entity, id) = trash_path(&entity, &id)?;
    match state.kontor.store.get(entity, &id).await? {
        Some(r) if r.is_deleted() && actor.can(entity, Action::Read, r.owner_id.as_deref()) => {
            let mut v = present(&actor, &r);
            if let Value::Object(m) = &mut v {
                m.insert("entity".into(), Value::from(entity.as_str()));
            }
            Ok(Json(v))
        }
        _ => Err(
            DomainError::not_found(format!("{} in the recycle bin", entity.singular()), id).into(),
        ),
    }
}

pub async fn restore(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let (entity, id) = trash_path(&entity, &id)?;
    let restore = Mutation::RestoreDeleted { entity, id };
    write_one(&state, &actor, Origin::Restore, restore).await
}

pub async fn purge(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams((entity, id)): PathParams<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let (entity, id) = trash_path(&entity, &id)?;
    write_one(&state, &actor, Origin::Api, Mutation::Purge { entity, id }).await
}
