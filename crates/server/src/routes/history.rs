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

/// `{"batch": id}` or `{"actor": user id | "system", "from": RFC 3339, "to": RFC 3339}`.
pub async fn undo(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(HeaderMap, Json<Value>)> {
    let obj = super::object_with(&body, &["batch", "actor", "from", "to"])?;
    let s = |f: &str| -> ApiResult<&str> {
        obj.get(f)
            .and_then(Value::as_str)
            .ok_or_else(|| DomainError::invalid(f, format!("'{f}' must be a string")).into())
    };
    let applied = if obj.contains_key("batch") {
        if let Some(k) = ["actor", "from", "to"]
            .iter()
            .find(|k| obj.contains_key(**k))
        {
            return Err(DomainError::invalid(
                *k,
                "give either 'batch', or 'actor' with 'from' and 'to'; not both",
            )
            .into());
        }
        let batch = s("batch")?
            .parse::<BatchId>()
            .map_err(|_| DomainError::invalid("batch", "'batch' must be a batch id"))?;
        state.kontor.undo_batch(&actor, batch).await?
    } else if obj.contains_key("actor") {
        let who = kontor_core::read::actor_param(s("actor")?)?;
        let time = |f: &str| -> ApiResult<kontor_domain::time::Timestamp> {
            kontor_domain::validate::parse_datetime(s(f)?).ok_or_else(|| {
                DomainError::invalid(f, format!("'{f}' must be an RFC 3339 time")).into()
            })
        };
        state
            .kontor
            .undo_actor(&actor, &who, time("from")?, time("to")?)
            .await?
    } else {
        return Err(
            DomainError::invalid("batch", "give 'batch', or 'actor' with 'from' and 'to'").into(),
        );
    };
    Ok((batch_header(&applied), Json(batch_summary(&applied))))
}
