//! A smoke test of the whole HTTP application over a store, for `kontor upgrade`: read-only
//! requests through the real router as the local administrator (no token, no listener) — the
//! health and readiness probes, the OpenAPI document, the first page of every entity's list
//! and its first record, the history, the recycle bin, the announcements and the login page.
//! Nothing is written, so it may run on live data.

use crate::{extract, jobs, router, AppState, HttpConfig};
use axum::body::Body;
use kontor_core::Kontor;
use kontor_domain::Entity;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt;

/// One request of the smoke test and how it went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeCheck {
    pub path: String,
    pub status: u16,
    pub millis: f64,
}

/// Largest response body the smoke test reads.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Runs the requests; every one must answer 200. Returns them all, or the first failure.
pub async fn smoke_test(kontor: Arc<Kontor>) -> Result<Vec<SmokeCheck>, String> {
    let state = AppState::new(
        kontor,
        jobs::JobStatus::new("smoke-test".into()),
        HttpConfig::default(),
    );
    let app = router(state).layer(axum::Extension(extract::LocalPeer));
    let mut checks = Vec::new();
    let mut paths: Vec<String> = [
        "/healthz",
        "/readyz",
        "/api/v1/openapi.json",
        "/api/v1/history?limit=20",
        "/api/v1/trash?limit=20",
        "/api/v1/announcements",
        "/login",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.extend(
        Entity::ALL
            .iter()
            .map(|e| format!("/api/v1/{}?limit=20", e.as_str())),
    );
    for path in paths {
        let body = get(&app, &path, &mut checks).await?;
        // The first record of each list, read on its own.
        if let Some(entity) = path
            .strip_prefix("/api/v1/")
            .and_then(|p| p.strip_suffix("?limit=20"))
            .filter(|e| e.parse::<Entity>().is_ok())
        {
            let first = body
                .as_ref()
                .and_then(|b| b["items"].as_array())
                .and_then(|items| items.first())
                .and_then(|r| r["id"].as_str())
                .map(str::to_string);
            if let Some(id) = first {
                get(&app, &format!("/api/v1/{entity}/{id}"), &mut checks).await?;
                get(
                    &app,
                    &format!("/api/v1/{entity}/{id}/history?limit=20"),
                    &mut checks,
                )
                .await?;
            }
        }
    }
    Ok(checks)
}

/// GETs `path`; its JSON body when it has one.
async fn get(
    app: &axum::Router,
    path: &str,
    checks: &mut Vec<SmokeCheck>,
) -> Result<Option<Value>, String> {
    let started = Instant::now();
    let mut request = axum::http::Request::get(path)
        .header("host", "localhost")
        .body(Body::empty())
        .map_err(|e| format!("GET {path}: cannot build the request: {e}"))?;
    // As from this machine, for the routes that look at the client's address.
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))));
    let response = app
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_BODY)
        .await
        .map_err(|e| format!("GET {path}: cannot read the answer: {e}"))?;
    checks.push(SmokeCheck {
        path: path.to_string(),
        status,
        millis: started.elapsed().as_secs_f64() * 1000.0,
    });
    if status != 200 {
        let text = String::from_utf8_lossy(&bytes);
        let shown: String = text.chars().take(300).collect();
        return Err(format!("GET {path} answered {status}: {shown}"));
    }
    Ok(serde_json::from_slice(&bytes).ok())
}
