//! Request extractors: the authenticated actor, a JSON body and query parameters, each refusing
//! bad input with a clear 4xx instead of axum's plain-text rejections.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use kontor_core::CoreError;
use kontor_domain::Actor;
use serde_json::Value;
use std::sync::Arc;

/// The caller, from `Authorization: Bearer <token>`; on the local socket, the administrator
/// of this machine (or the user `X-Kontor-As` names).
pub struct Auth(pub Actor);

/// Marks requests that came through the server's local socket (`<data dir>/kontor.sock`),
/// which only the data directory's owner can reach: the same trust as reading its files.
#[derive(Debug, Clone, Copy)]
pub struct LocalPeer;

/// The header naming the user a local request acts as (by e-mail).
pub const ACT_AS: &str = "x-kontor-as";

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<LocalPeer>().is_some() {
            let Some(email) = parts.headers.get(ACT_AS).and_then(|v| v.to_str().ok()) else {
                return Ok(Auth(Actor::system()));
            };
            let user = state
                .kontor
                .user_by_email(email)
                .await?
                .filter(|u| !u.is_deleted())
                .ok_or_else(|| ApiError::NotFound(format!("no user with e-mail {email}")))?;
            let actor =
                kontor_core::auth::actor_for_user(state.kontor.store.as_ref(), &user).await?;
            return Ok(Auth(actor));
        }
        let token = bearer(&parts.headers).ok_or_else(|| {
            ApiError::Core(CoreError::Unauthorized(
                "missing bearer token; log in at POST /api/v1/auth/login".into(),
            ))
        })?;
        let actor = kontor_core::auth::actor_for_token(state.kontor.store.as_ref(), &token).await?;
        // An exchange session (or any role without API login) is not an API session.
        if !actor.role.api_login {
            return Err(kontor_domain::DomainError::forbidden(format!(
                "role {} cannot use the REST API",
                actor.role.name
            ))
            .into());
        }
        Ok(Auth(actor))
    }
}

pub fn bearer(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// Path parameters; a segment that is not valid UTF-8 (or does not fit `T`) is a JSON 400
/// instead of axum's plain-text rejection.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| PathParams(v))
            .map_err(|e| ApiError::BadRequest(format!("the path is malformed: {}", e.body_text())))
    }
}

/// Whether a `Content-Type` names JSON: `application/json` or `application/<anything>+json`,
/// with any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// A JSON body. It must say it is JSON (`Content-Type: application/json`, else 415: a form or
/// plain-text post from another site is never taken as JSON), and malformed JSON is a 400 that
/// says where it broke.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let declared = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        match declared {
            Some(ct) if is_json(&ct) => {}
            Some(ct) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "the request body must be JSON (Content-Type: application/json), not {ct}"
                )))
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "send the request body as JSON with Content-Type: application/json".into(),
                ))
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest(
                "the request body is empty; send a JSON object".into(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("the request body is not valid JSON: {e}")))
    }
}

/// Query parameters in order, as `(name, value)` pairs.
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded_pairs(q)
            .map(QueryPairs)
            .ok_or_else(|| ApiError::BadRequest("the query string is malformed".into()))
    }
}

pub(crate) fn serde_urlencoded_pairs(q: &str) -> Option<Vec<(String, String)>> {
    axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&format!("/?{q}").parse().ok()?)
        .ok()
        .map(|axum::extract::Query(v)| v)
}

impl QueryPairs {
    /// Removes and returns a parameter; a repeated parameter is an error.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found: Vec<String> = Vec::new();
        self.0.retain(|(k, v)| {
            if k == name {
                found.push(v.clone());
                false
            } else {
                true
            }
        });
        if found.len() > 1 {
            return Err(ApiError::BadRequest(format!(
                "query parameter '{name}' is given more than once"
            )));
        }
        Ok(found.pop())
    }

    pub fn take_u32(&mut self, name: &str) -> Result<Option<u32>, ApiError> {
        self.take(name)?
            .map(|v| {
                v.parse::<u32>().map_err(|_| {
                    ApiError::BadRequest(format!(
                        "query parameter '{name}' must be a positive whole number"
                    ))
                })
            })
            .transpose()
    }

    /// Fails on parameters nobody took.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.0.first() {
            Some((k, _)) => Err(ApiError::BadRequest(format!(
                "unknown query parameter '{k}'"
            ))),
            None => Ok(()),
        }
    }
}
