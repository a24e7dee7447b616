//! `/api/v1/users`: admins create users (with a password, hashed by the core), change them, reset
//! passwords, disable and delete them. Nobody ever reads a password hash through the API.

use super::{check_id, list_json, list_params, write_one};
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, PathParams, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kontor_core::read::present;
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::{DomainError, Entity};
use serde_json::{Map, Value};
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

/// Who may use these routes.
const ADMINS_ONLY: &str = "only an admin manages users";

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let params = list_params(q)?;
    let page = state.kontor.list(&actor, Entity::Users, &params).await?;
    Ok(list_json(page))
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    super::admin_only(&actor, ADMINS_ONLY)?;
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
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
    let rec = state.kontor.get(&actor, Entity::Users, &id).await?;
    Ok(Json(present(&actor, &rec)))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
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
    PathParams(id): PathParams<String>,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
    let delete = Mutation::Delete {
        entity: Entity::Users,
        id: id.clone(),
    };
    let answer = write_one(&state, &actor, Origin::Api, delete).await?;
    state.kontor.store.revoke_user_sessions(&id).await?;
    Ok(answer)
}

/// `POST /api/v1/users/{id}/restore {"at"}`: a user's fields as they were then (never the
/// password: credentials are not restored).
pub async fn restore_to_time(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
    super::records::restore_record_to(&state, &actor, Entity::Users, &id, &body).await
}

/// `GET /api/v1/users/{id}/history`.
pub async fn history(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
    super::records::history_of(&state, &actor, Entity::Users, id, q).await
}
