//! Global history with filters, and undo of a batch or of one actor's changes in a period.

use super::{batch_header, batch_summary, page_json};
use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, QueryPairs};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use kontor_core::read::HistoryParams;
use kontor_domain::{BatchId, DomainError};
use serde_json::Value;
use std::sync::Arc;

pub async fn list(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    mut q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let params = HistoryParams {
        entity: q.take("entity")?,
        record_id: q.take("record_id")?,
        ..history_params(&mut q)?
    };
    q.finish()?;
    let page = state.kontor.history(&actor, &params).await?;
    Ok(page_json(page))
}

/// The history filters every history route takes (all but entity and record).
pub fn history_params(q: &mut QueryPairs) -> ApiResult<HistoryParams> {
    Ok(HistoryParams {
        entity: None,
        record_id: None,
        op: q.take("op")?,
        actor: q.take("actor")?,
        origin: q.take("origin")?,
        batch: q.take("batch")?,
        from: q.take("from")?,
        to: q.take("to")?,
        cursor: q.take("cursor")?,
        limit: q.take_u32("limit")?,
        order: q.take("order")?,
    })
}

/// `{"batch": id}` or `{"actor": user id, "from": RFC 3339, "to": RFC 3339}`.
pub async fn undo(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let s = |f: &str| body.get(f).and_then(Value::as_str);
    let applied = if let Some(b) = s("batch") {
        let batch = b
            .parse::<BatchId>()
            .map_err(|_| DomainError::invalid("batch", "'batch' must be a batch id"))?;
        state.kontor.undo_batch(&actor, batch).await?
    } else if let Some(who) = s("actor") {
        let time = |f: &str| {
            s(f).and_then(kontor_domain::time::parse)
                .ok_or_else(|| DomainError::invalid(f, format!("'{f}' must be an RFC 3339 time")))
        };
        state
            .kontor
            .undo_actor(&actor, who, time("from")?, time("to")?)
            .await?
    } else {
        return Err(
            DomainError::invalid("batch", "give 'batch', or 'actor' with 'from' and 'to'").into(),
        );
    };
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}
