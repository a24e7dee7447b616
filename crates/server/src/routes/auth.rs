//! Login, logout and "who am I".

use crate::error::{ApiError, ApiResult};
use crate::extract::{bearer, Auth, JsonBody};
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use kontor_core::read::present;
use kontor_domain::time;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    let body = super::object_with(&body, &["email", "password"])?;
    let field = |name: &str| -> ApiResult<String> {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                kontor_domain::DomainError::invalid(
                    name,
                    format!("'{name}' is required and must be a string"),
                )
                .into()
            })
    };
    let (email, password) = (field("email")?, field("password")?);
    let client = state.http.trusted_proxies.client(peer, &headers);
    let ok = state
        .kontor
        .login(&email, &password, &client.to_string())
        .await?;
    Ok(Json(json!({
        "token": ok.token,
        "expires_at": time::format(ok.expires_at),
        "user": {"id": ok.user.id, "email": ok.user.data.get("email"), "role": ok.user.data.get("role")},
    })))
}

pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<Value>> {
    let token = bearer(&headers).ok_or_else(|| {
        ApiError::Core(kontor_core::CoreError::Unauthorized(
            "missing bearer token".into(),
        ))
    })?;
    // Validate first so an unknown token gets a 401, not a silent success.
    kontor_core::auth::actor_for_token(state.kontor.store.as_ref(), &token).await?;
    state
        .kontor
        .store
        .revoke_session(&kontor_core::auth::token_hash(&token))
        .await?;
    Ok(Json(json!({"status": "logged_out"})))
}

pub async fn me(State(state): State<Arc<AppState>>, Auth(actor): Auth) -> ApiResult<Json<Value>> {
    let user = state
        .kontor
        .store
        .get(kontor_domain::Entity::Users, &actor.user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("user not found".into()))?;
    let mut v = present(&kontor_domain::Actor::system(), &user);
    if let Value::Object(m) = &mut v {
        m.insert("admin".into(), Value::Bool(actor.is_admin()));
    }
    Ok(Json(v))
}
