//! Liveness, readiness and the OpenAPI document.

use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// The process is up and serving HTTP.
pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// The database answers; load balancers send traffic only while this is 200.
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    // Not ready while the data is frozen: a load balancer sends writers elsewhere (or holds
    // them) rather than to a node that can only refuse them.
    if let Ok(Some(frozen)) = state.kontor.store.read_only().await {
        let mut r = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": frozen.reason.as_str(), "message": frozen.message})),
        )
            .into_response();
        if let Ok(v) = axum::http::HeaderValue::from_str(&frozen.retry_after_secs.to_string()) {
            r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
        }
        return r;
    }
    match state.kontor.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({
                "status": "ready",
                "engine": state.kontor.store.engine(),
                "node": state.jobs.node_id,
                "jobs": {"retention": if state.jobs.holds_retention() { "leader" } else { "standby" }},
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "database_unavailable"})),
            )
                .into_response();
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
            r
        }
    }
}

pub async fn openapi(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let custom = state.kontor.custom_fields().await.unwrap_or_default();
    Json(crate::openapi::document(&custom))
}
