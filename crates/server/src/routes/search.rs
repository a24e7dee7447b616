//! `GET /api/v1/search`: global search over companies, contacts, leads, deals, products and
//! invoices, as the reader may see them; `GET|POST /api/v1/admin/search[/rebuild]` (admins): the
//! index's state, and building it again as a job.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, QueryPairs};
use crate::tracked_jobs::TrackedJob;
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kontor_backup::progress::Progress;
use kontor_core::CoreError;
use kontor_search::{Search, SearchError, SearchParams};
use kontor_store::StoreError;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn index(state: &AppState) -> ApiResult<&Arc<Search>> {
    state.http.search.as_ref().ok_or_else(|| {
        ApiError::NotFound(
            "this server has no search index (it was not started by `kontor serve`)".into(),
        )
    })
}

pub(crate) fn search_error(e: SearchError) -> ApiError {
    match e {
        SearchError::Core(e) => ApiError::Core(e),
        SearchError::Busy(m) => {
            tracing::debug!(reason = %m, "search busy");
            ApiError::Core(CoreError::Busy {
                retry_after: Duration::from_secs(5),
            })
        }
        SearchError::Index(m) => ApiError::Core(CoreError::Store(StoreError::Unavailable(m))),
    }
}

/// `GET /search?q=&entity=&limit=`: `entity` may be given several times, or comma-separated.
pub async fn search(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let search = index(&state)?;
    let text = q
        .take("q")?
        .ok_or_else(|| ApiError::BadRequest("query parameter 'q' is required".into()))?;
    let limit = q.take_u32("limit")?;
    let mut entities = Vec::new();
    q.0.retain(|(k, v)| {
        if k == "entity" {
            entities.extend(
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            );
            false
        } else {
            true
        }
    });
    q.finish()?;
    let results = search
        .search(
            &state.kontor,
            &actor,
            &SearchParams {
                q: text,
                entities,
                limit,
            },
        )
        .await
        .map_err(search_error)?;
    Ok(Json(serde_json::to_value(results).unwrap_or(Value::Null)))
}

/// `GET /admin/search`: up to which journal entry the index is current, and what it holds.
pub async fn state(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, "the search index's state is for administrators")?;
    let search = index(&state)?;
    let (seq, documents) = search.state().await;
    let head = state.kontor.store.journal_head().await?;
    Ok(Json(json!({
        "seq": seq,
        "journal_head": head,
        "behind": (head - seq).max(0),
        "documents": documents,
    })))
}

/// `POST /admin/search/rebuild`: builds the index again from the records, as a job.
pub async fn rebuild(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<(StatusCode, HeaderMap, Json<Value>)> {
    super::admin_only(&actor, "rebuilding the search index is for administrators")?;
    let search = index(&state)?.clone();
    let job = TrackedJob::start(
        state.kontor.store.clone(),
        "search.rebuild",
        None,
        &actor.user_id,
        &state.jobs.node_id,
    )
    .await?;
    job.phase("records", None);
    let kontor = state.kontor.clone();
    let progress = job.clone();
    job.clone().run(async move {
        let seen = std::sync::atomic::AtomicU64::new(0);
        let report = |done: u64| {
            let before = seen.swap(done, std::sync::atomic::Ordering::Relaxed);
            progress.advance(done.saturating_sub(before));
        };
        let n = search
            .rebuild(&kontor, &report)
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({ "records": n }))
    });
    Ok(super::backups::accepted(&job))
}
