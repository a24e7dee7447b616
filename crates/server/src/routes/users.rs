//! `/api/v1/users`: admins create users (with a password, hashed by the core), change them, reset
//! passwords, disable and delete them. Nobody ever reads a password hash through the API.

use super::{batch_header, batch_summary, check_id};
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, QueryPairs};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kontor_core::read::{present, ListParams};
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::{DomainError, Entity};
use serde_json::{json, Map, Value};
use std::sync::Arc;

fn split_password(body: Value, required: bool) -> ApiResult<(Map<String, Value>, Option<String>)> {
    let Value::Object(mut m) = body else {
        return Err(DomainError::invalid("", "the request body must be a JSON object").into());
    };
    let password = match m.remove("password") {
        Some(Value::String(p)) => Some(p),
        None | Some(Value::Null) if !required => None,
        _ => {
            return Err(DomainError::invalid(
                "password",
                "'password' is required and must be a string",
            )
            .into())
        }
    };
    Ok((m, password))
}

fn admin_only(actor: &kontor_domain::Actor) -> ApiResult<()> {
    if actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::forbidden("only an admin manages users").into())
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    admin_only(&actor)?;
    let params = ListParams {
        limit: q.take_u32("limit")?,
        cursor: q.take("cursor")?,
        q: q.take("q")?,
        order: q.take("order")?,
        filters: q.0,
    };
    let page = state.kontor.list(&actor, Entity::Users, &params).await?;
    Ok(Json(
        json!({"items": page.items, "next_cursor": page.next_cursor}),
    ))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    admin_only(&actor)?;
    let (fields, password) = split_password(body, true)?;
    let password = password.unwrap_or_default();
    let rec = state
        .kontor
        .add_user(&actor, Origin::Api, fields, &password)
        .await?;
    Ok((StatusCode::CREATED, Json(present(&actor, &rec))))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    admin_only(&actor)?;
    check_id(&id)?;
    let rec = state.kontor.get(&actor, Entity::Users, &id).await?;
    Ok(Json(present(&actor, &rec)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    admin_only(&actor)?;
    check_id(&id)?;
    let (fields, password) = split_password(body, false)?;
    let rec = state
        .kontor
        .update_user(&actor, Origin::Api, &id, fields, password.as_deref())
        .await?;
    Ok(Json(present(&actor, &rec)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    Path(id): Path<String>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    admin_only(&actor)?;
    check_id(&id)?;
    let applied = state
        .kontor
        .write(
            &actor,
            Origin::Api,
            vec![Mutation::Delete {
                entity: Entity::Users,
                id: id.clone(),
            }],
        )
        .await?;
    state.kontor.store.revoke_user_sessions(&id).await?;
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}
