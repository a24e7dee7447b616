//! The recycle bin: list, look at one record, restore (with its whole deletion batch), purge.

use super::{batch_header, batch_summary, check_id, entity_param};
use crate::error::ApiResult;
use crate::extract::{Auth, QueryPairs};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use kontor_core::read::present;
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::permission::Action;
use kontor_domain::DomainError;
use serde_json::{json, Value};
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
    Ok(Json(
        json!({"items": page.items, "next_cursor": page.next_cursor}),
    ))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path((entity, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let entity = entity_param(&entity)?;
    check_id(&id)?;
    match state.kontor.store.get(entity, &id).await? {
        Some(r) if r.is_deleted() && actor.can(entity, Action::Read, r.owner_id.as_deref()) => {
            Ok(Json(present(&actor, &r)))
        }
        _ => Err(
            DomainError::not_found(format!("{} in the recycle bin", entity.singular()), id).into(),
        ),
    }
}

pub async fn restore(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path((entity, id)): Path<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let entity = entity_param(&entity)?;
    check_id(&id)?;
    let applied = state
        .kontor
        .write(
            &actor,
            Origin::Restore,
            vec![Mutation::RestoreDeleted { entity, id }],
        )
        .await?;
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}

pub async fn purge(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path((entity, id)): Path<(String, String)>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let entity = entity_param(&entity)?;
    check_id(&id)?;
    let applied = state
        .kontor
        .write(&actor, Origin::Api, vec![Mutation::Purge { entity, id }])
        .await?;
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}
