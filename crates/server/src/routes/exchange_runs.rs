//! `/api/v1/exchange/runs` (admin only): the 1C exchange runs, newest first — over HTTP, from
//! an exchange folder or from `kontor exchange import` — each a job whose result is the run's
//! report (files, counts per entity, every failure with file, line and 1C id, the batch that
//! undoes it).

use super::check_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, PathParams, QueryPairs};
use crate::tracked_jobs::job_json;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use kontor_core::read::MAX_PAGE;
use serde_json::{json, Value};
use std::sync::Arc;

/// Jobs of these kinds are exchange runs.
pub const RUN_KINDS: &str = "exchange.";

/// Who may use these routes.
const ADMINS_ONLY: &str = "exchange runs are for administrators";

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let limit = q.take_u32("limit")?.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let cursor = q
        .take("cursor")?
        .map(|c| {
            kontor_domain::record::parse_id(&c)
                .ok_or_else(|| ApiError::BadRequest(format!("'{c}' is not a cursor of this list")))
        })
        .transpose()?;
    q.finish()?;
    let mut rows = state
        .kontor
        .store
        .jobs(RUN_KINDS, cursor.as_deref(), limit + 1)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(json!({
        "items": rows.iter().map(job_json).collect::<Vec<_>>(),
        "next_cursor": next_cursor,
    })))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    PathParams(id): PathParams<String>,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, ADMINS_ONLY)?;
    let id = check_id(&id)?;
    match state.kontor.store.job(&id).await? {
        Some(row) if row.kind.starts_with(RUN_KINDS) => Ok(Json(job_json(&row))),
        _ => Err(ApiError::NotFound(format!("no exchange run {id}"))),
    }
}
