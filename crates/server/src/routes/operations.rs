//! Running the server: maintenance mode (`/admin/maintenance`), the announced shutdown
//! (`/admin/shutdown`, admins only; refusals recorded) and what every user is told
//! (`/announcements`). See [`crate::lifecycle`].

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, JsonBody};
use crate::lifecycle::{ShutdownPlan, MAINTENANCE_RETRY_SECS};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use kontor_domain::time;
use kontor_domain::DomainError;
use kontor_store::ReadOnly;
use serde_json::{json, Value};
use std::sync::Arc;

/// The longest message users are shown.
const MESSAGE_MAX: usize = 500;

/// A field that must be a string when given.
fn text<'a>(obj: &'a serde_json::Map<String, Value>, f: &str) -> ApiResult<Option<&'a str>> {
    match obj.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(DomainError::invalid(f, format!("'{f}' must be a string")).into()),
    }
}

/// A field that must be a whole number from 0 when given.
fn count(obj: &serde_json::Map<String, Value>, f: &str) -> ApiResult<Option<u64>> {
    match obj.get(f) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            DomainError::invalid(f, format!("'{f}' must be a whole number from 0")).into()
        }),
    }
}

fn message_of(m: Option<&str>) -> ApiResult<String> {
    let m = m.unwrap_or_default();
    if m.chars().count() > MESSAGE_MAX {
        return Err(
            DomainError::invalid("message", format!("at most {MESSAGE_MAX} characters")).into(),
        );
    }
    Ok(m.trim().to_string())
}

fn read_only_json(r: &Option<ReadOnly>) -> Value {
    match r {
        None => json!({"read_only": false}),
        Some(r) => json!({
            "read_only": true,
            "reason": r.reason.as_str(),
            "message": r.message,
            "since": time::format(r.since),
            "retry_after_seconds": r.retry_after_secs,
            "by": r.by,
        }),
    }
}

fn plan_json(p: &Option<ShutdownPlan>) -> Value {
    match p {
        None => json!({"scheduled": false}),
        Some(p) => json!({
            "scheduled": true,
            "job": p.job_id,
            "at": time::format(p.at),
            "seconds_left": (p.at - time::now()).num_seconds().max(0),
            "message": p.message,
            "by": p.by,
            "reminders": p.reminders(time::now()).into_iter().map(time::format).collect::<Vec<_>>(),
        }),
    }
}

/// `GET /admin/maintenance` (admin).
pub async fn maintenance(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, "maintenance mode is for administrators")?;
    Ok(Json(read_only_json(&state.kontor.store.read_only().await?)))
}

/// `PUT /admin/maintenance` `{"on", "message"?, "retry_after_seconds"?}` (admin): every node
/// read-only, or open again.
pub async fn set_maintenance(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let obj = super::object_with(&body, &["on", "message", "retry_after_seconds"])?;
    let on = obj
        .get("on")
        .and_then(Value::as_bool)
        .ok_or_else(|| DomainError::invalid("on", "'on' must be true or false"))?;
    let message = message_of(text(obj, "message")?)?;
    let retry = count(obj, "retry_after_seconds")?.unwrap_or(u64::from(MAINTENANCE_RETRY_SECS));
    let retry = u32::try_from(retry)
        .ok()
        .filter(|r| (1..=86_400).contains(r))
        .ok_or_else(|| {
            DomainError::invalid("retry_after_seconds", "between 1 and 86400 seconds")
        })?;
    let on = on.then_some((message.as_str(), retry));
    let now = state.lifecycle.set_maintenance(&state, &actor, on).await?;
    Ok(Json(read_only_json(&now)))
}

/// `GET /admin/shutdown` (admin): the scheduled shutdown, if any, and how far a stop got.
pub async fn shutdown(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<Json<Value>> {
    super::admin_only(&actor, "shutdowns are for administrators")?;
    let mut out = plan_json(&state.lifecycle.plan());
    out["stopping"] = json!(state.lifecycle.stopping());
    Ok(Json(out))
}

/// `POST /admin/shutdown` `{"at" | "in_seconds", "message"?}` (admin): schedules (or moves)
/// the shutdown of this server, announced to every user.
pub async fn schedule_shutdown(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
    JsonBody(body): JsonBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let obj = super::object_with(&body, &["at", "in_seconds", "message"])?;
    let message = message_of(text(obj, "message")?)?;
    let at = match (text(obj, "at")?, count(obj, "in_seconds")?) {
        (Some(at), None) => time::parse(at).ok_or_else(|| {
            ApiError::from(DomainError::invalid(
                "at",
                "an RFC 3339 time, e.g. 2026-12-07T18:00:00+03:00",
            ))
        })?,
        (None, Some(secs)) => {
            let secs = i64::try_from(secs).unwrap_or(i64::MAX).min(31 * 86_400);
            time::now() + chrono::Duration::seconds(secs)
        }
        (None, None) => return Err(DomainError::invalid("at", "give `at` or `in_seconds`").into()),
        (Some(_), Some(_)) => {
            return Err(
                DomainError::invalid("in_seconds", "give `at` or `in_seconds`, not both").into(),
            )
        }
    };
    let plan = state
        .lifecycle
        .schedule(&state, &actor, at, &message)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(plan_json(&Some(plan)))))
}

/// `DELETE /admin/shutdown` (admin): cancels the scheduled shutdown.
pub async fn cancel_shutdown(
    State(state): State<Arc<AppState>>,
    Auth(actor): Auth,
) -> ApiResult<Json<Value>> {
    let cancelled = state.lifecycle.cancel(&state, &actor).await?;
    let mut out = plan_json(&None);
    out["cancelled"] = json!(cancelled.map(|p| p.job_id));
    Ok(Json(out))
}

/// `GET /announcements` (every logged-in user): a scheduled shutdown with its reminders, and
/// whether the data is read-only.
pub async fn announcements(State(state): State<Arc<AppState>>, Auth(_actor): Auth) -> Json<Value> {
    let list = state.lifecycle.announcements(&state.kontor.store).await;
    Json(json!({ "announcements": list }))
}
