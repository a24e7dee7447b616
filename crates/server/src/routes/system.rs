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
