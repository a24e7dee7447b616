//! One error type for every handler, mapped to `{"error":{"code","message","field"?}}` with the
//! right status. 4xx bodies say what was wrong; 5xx bodies are generic and the cause is logged.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_core::CoreError;
use kontor_domain::DomainError;
use kontor_store::StoreError;
use serde_json::{json, Value};

#[derive(Debug)]
pub enum ApiError {
    Core(CoreError),
    /// The request itself is malformed (bad JSON, bad query string).
    BadRequest(String),
    NotFound(String),
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        ApiError::Core(CoreError::Domain(e))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Core(CoreError::Store(e))
    }
}

fn body(status: StatusCode, code: &str, message: String, extra: Option<(&str, Value)>) -> Response {
    let mut err = json!({"code": code, "message": message});
    if let (Some((k, v)), Value::Object(m)) = (extra, &mut err) {
        m.insert(k.to_string(), v);
    }
    (status, axum::Json(json!({ "error": err }))).into_response()
}

fn with_field(status: StatusCode, code: &str, message: String, field: Option<String>) -> Response {
    body(
        status,
        code,
        message,
        field
            .filter(|f| !f.is_empty())
            .map(|f| ("field", Value::from(f))),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(m) => body(StatusCode::BAD_REQUEST, "bad_request", m, None),
            ApiError::NotFound(m) => body(StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::MethodNotAllowed => body(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this path".into(),
                None,
            ),
            ApiError::PayloadTooLarge => body(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large".into(),
                None,
            ),
            ApiError::UnsupportedMediaType(m) => body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
                None,
            ),
            ApiError::Core(e) => core_response(e),
        }
    }
}

fn core_response(e: CoreError) -> Response {
    match e {
        CoreError::Domain(d) => {
            let message = d.to_string();
            match d {
                DomainError::Invalid(f) => with_field(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    message,
                    Some(f.field),
                ),
                DomainError::Forbidden { field, .. } => {
                    with_field(StatusCode::FORBIDDEN, "forbidden", message, field)
                }
                DomainError::NotFound { .. } => {
                    body(StatusCode::NOT_FOUND, "not_found", message, None)
                }
                DomainError::Duplicate { field, .. } => {
                    with_field(StatusCode::CONFLICT, "duplicate", message, Some(field))
                }
                DomainError::Reference { field, .. } => {
                    with_field(StatusCode::CONFLICT, "reference", message, Some(field))
                }
                DomainError::Deleted { .. } => body(StatusCode::CONFLICT, "deleted", message, None),
                DomainError::State { field, .. } => {
                    with_field(StatusCode::CONFLICT, "invalid_state", message, field)
                }
                DomainError::Conflicts(list) => body(
                    StatusCode::CONFLICT,
                    "conflict",
                    message,
                    Some((
                        "conflicts",
                        serde_json::to_value(list).unwrap_or(Value::Null),
                    )),
                ),
            }
        }
        CoreError::Unauthorized(m) => {
            let mut r = body(StatusCode::UNAUTHORIZED, "unauthorized", m, None);
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
        CoreError::RateLimited { retry_after } => come_back(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed logins",
            retry_after,
        ),
        CoreError::Busy { retry_after } => come_back(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the server is busy",
            retry_after,
        ),
        CoreError::InTrash { entity, id } => body(
            StatusCode::NOT_FOUND,
            "in_trash",
            format!("{entity} {id} is in the recycle bin; see /api/v1/trash"),
            None,
        ),
        CoreError::Store(StoreError::ReadOnly(r)) => {
            let mut resp = body(
                StatusCode::SERVICE_UNAVAILABLE,
                "read_only",
                r.describe(),
                Some(("reason", Value::from(r.reason.as_str()))),
            );
            if let Ok(v) = HeaderValue::from_str(&r.retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        CoreError::Store(StoreError::Unavailable(m)) | CoreError::Store(StoreError::Locked(m)) => {
            tracing::warn!(error = %m, "database unavailable");
            let mut r = body(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database is unavailable; try again shortly".into(),
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        CoreError::Store(e) => {
            tracing::error!(error = %e, "internal error");
            body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; the server log has the details".into(),
                None,
            )
        }
    }
}

/// A refusal that says when to try again, in the message and in `Retry-After`.
fn come_back(status: StatusCode, code: &str, what: &str, after: std::time::Duration) -> Response {
    let secs = after.as_secs().max(1);
    let mut r = body(
        status,
        code,
        format!("{what}; try again in {secs} seconds"),
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}
