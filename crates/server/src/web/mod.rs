//! The web pages Kontor serves at `/`: server-rendered HTML (maud), one stylesheet compiled
//! into the binary, no script needed. A page calls the same core functions as the API as the
//! logged-in user, so it shows and does exactly what the API would allow.
//!
//! `session.rs` (the session cookie, CSRF, login and logout), `layout.rs` (the frame of a page
//! and the stylesheet), `pages.rs` (overview, lists, records, search), `forms.rs` (create, edit,
//! delete), `bin.rs` (the recycle bin), `history.rs` (history, restore as of
//! an entry, undo of a batch), `admin.rs` (backups, 1C exchange runs), `i18n.rs` (English, German, Russian, from the
//! browser's languages).

pub mod account;
pub mod admin;
pub mod bin;
pub mod forms;
pub mod history;
pub mod i18n;
pub mod labels;
pub mod layout;
pub mod operations;
pub mod pages;
pub mod refs;
pub mod roles;
pub mod session;

use crate::AppState;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::Lang;
use kontor_core::CoreError;
use kontor_domain::DomainError;
use maud::html;
use std::sync::Arc;

/// The routes of the pages. The API's paths (`/api/v1`, `/healthz`, the 1C exchange) are
/// matched first, being fixed paths.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/search", get(pages::search))
        .route("/suggest/{entity}", get(refs::suggest))
        .route("/banner", get(layout::banner_fragment))
        .route("/assets/{name}", get(layout::asset))
        .route("/favicon.ico", get(|| async { StatusCode::NOT_FOUND }))
        .route("/account", get(account::show).post(account::save))
        .route("/account/password", post(account::change_password))
        .route("/admin", get(admin::home))
        .route("/admin/backups", get(admin::backups))
        .route("/admin/backups/create", post(admin::create_snapshot))
        .route("/admin/backups/verify", post(admin::verify_archive))
        .route("/admin/jobs/{id}", get(admin::job))
        .route("/admin/roles/{name}", get(roles::builtin))
        .route("/admin/exchange", get(admin::exchange_runs))
        .route("/admin/operations", get(operations::page))
        .route("/admin/maintenance", post(operations::maintenance))
        .route("/admin/shutdown", post(operations::schedule))
        .route("/admin/shutdown/cancel", post(operations::cancel))
        .route("/admin/exchange/{id}", get(admin::exchange_run))
        .route("/history", get(history::page))
        .route("/history/restore", post(history::restore))
        .route("/history/undo", post(history::undo))
        .route("/trash", get(bin::page))
        .route("/trash/restore", post(bin::restore))
        .route("/trash/purge", post(bin::purge))
        .route("/{entity}", get(pages::list))
        .route("/{entity}/new", get(forms::new_form).post(forms::create))
        .route("/{entity}/{id}", get(pages::record))
        .route(
            "/{entity}/{id}/edit",
            get(forms::edit_form).post(forms::update),
        )
        .route("/{entity}/{id}/delete", post(forms::delete))
        .route("/{entity}/{id}/print", get(pages::print))
        .layer(axum::middleware::map_response(page_headers))
}

/// A refusal of a rate-limited attempt, saying when to try again (as the API's 429 does).
pub fn with_retry_after(mut resp: Response, retry_after: std::time::Duration) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
        resp.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    resp
}

/// A page's query string as a map, blank values left out (an empty filter is no filter).
pub fn query_map(
    lang: Lang,
    raw: Option<&str>,
) -> Result<std::collections::BTreeMap<String, String>, PageError> {
    Ok(crate::extract::serde_urlencoded_pairs(raw.unwrap_or(""))
        .ok_or_else(|| PageError::bad_request(lang, "the query string is malformed"))?
        .into_iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect())
}

/// Headers every page carries: no framing, no sniffing, no scripts or styles from elsewhere.
async fn page_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Why a page cannot be shown: not logged in (to the login form), or a status with a message
/// in the user's language.
#[derive(Debug)]
pub enum PageError {
    Login(String),
    Page {
        lang: Lang,
        status: StatusCode,
        message: String,
    },
}

impl PageError {
    pub fn status(lang: Lang, status: StatusCode, key: &'static str) -> PageError {
        PageError::Page {
            lang,
            status,
            message: lang.t(key).to_string(),
        }
    }

    pub fn forbidden(lang: Lang) -> PageError {
        PageError::status(lang, StatusCode::FORBIDDEN, "error.forbidden")
    }

    pub fn not_found(lang: Lang) -> PageError {
        PageError::status(lang, StatusCode::NOT_FOUND, "error.not_found")
    }

    pub fn bad_request(lang: Lang, message: &str) -> PageError {
        PageError::Page {
            lang,
            status: StatusCode::BAD_REQUEST,
            message: message.to_string(),
        }
    }

    /// As the API answers the same error: what the input breaks says so; what the user may not
    /// see is "not found", as the API's 404; a failure of ours is logged, not shown.
    pub fn from_core(lang: Lang, e: CoreError) -> PageError {
        let page = |status: StatusCode, message: String| PageError::Page {
            lang,
            status,
            message,
        };
        match e {
            CoreError::Domain(DomainError::NotFound { .. }) => PageError::not_found(lang),
            CoreError::Domain(DomainError::Forbidden { .. }) => PageError::forbidden(lang),
            CoreError::Domain(DomainError::Conflicts(list)) => {
                let said: Vec<&str> = list.iter().map(|c| c.message.as_str()).collect();
                page(
                    StatusCode::CONFLICT,
                    format!("{} {}", lang.t("history.conflicts"), said.join("; ")),
                )
            }
            CoreError::Domain(d @ DomainError::Invalid(_)) => {
                page(StatusCode::UNPROCESSABLE_ENTITY, d.to_string())
            }
            CoreError::Domain(d) => page(StatusCode::CONFLICT, d.to_string()),
            CoreError::InTrash { .. } => page(StatusCode::NOT_FOUND, e.to_string()),
            CoreError::Unauthorized(_) => PageError::Login("/login".into()),
            CoreError::RateLimited { .. } => {
                PageError::status(lang, StatusCode::TOO_MANY_REQUESTS, "login.limited")
            }
            CoreError::Busy { .. } => {
                PageError::status(lang, StatusCode::SERVICE_UNAVAILABLE, "error.unavailable")
            }
            CoreError::Store(kontor_store::StoreError::ReadOnly(r)) => {
                let key = match r.reason {
                    kontor_store::ReadOnlyReason::Maintenance => "readonly.maintenance",
                    kontor_store::ReadOnlyReason::Shutdown => "readonly.shutdown",
                    kontor_store::ReadOnlyReason::Upgrade => "readonly.upgrade",
                };
                let message = match r.message.as_str() {
                    "" => lang.t(key).to_string(),
                    m => format!("{} — {m}", lang.t(key)),
                };
                page(StatusCode::SERVICE_UNAVAILABLE, message)
            }
            CoreError::Store(s) => {
                tracing::error!(error = %s, "a page failed on the store");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    lang.t("error.title").to_string(),
                )
            }
        }
    }

    /// An error of work the pages start through the API's own functions (backup jobs).
    pub fn from_api(lang: Lang, e: crate::error::ApiError) -> PageError {
        use crate::error::ApiError;
        match e {
            ApiError::Core(c) => PageError::from_core(lang, c),
            ApiError::NotFound(message) => PageError::Page {
                lang,
                status: StatusCode::NOT_FOUND,
                message,
            },
            ApiError::BadRequest(m) | ApiError::UnsupportedMediaType(m) => {
                PageError::bad_request(lang, &m)
            }
            ApiError::MethodNotAllowed | ApiError::PayloadTooLarge => {
                PageError::bad_request(lang, lang.t("error.title"))
            }
        }
    }

    pub fn from_search(lang: Lang, e: kontor_search::SearchError) -> PageError {
        match e {
            kontor_search::SearchError::Core(c) => PageError::from_core(lang, c),
            kontor_search::SearchError::Busy(_) => {
                PageError::status(lang, StatusCode::SERVICE_UNAVAILABLE, "error.unavailable")
            }
            kontor_search::SearchError::Index(m) => {
                tracing::error!(error = %m, "a search page failed on the index");
                PageError::Page {
                    lang,
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: lang.t("error.title").to_string(),
                }
            }
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Login(to) => Redirect::to(&to).into_response(),
            PageError::Page {
                lang,
                status,
                message,
            } => {
                let body = html! {
                    main id="content" class="narrow" {
                        h1 { (lang.t("error.title")) }
                        p class="error" role="alert" { (message) }
                        p { a href="/" { (lang.t("error.back")) } }
                    }
                };
                (status, layout::bare(lang, lang.t("error.title"), body)).into_response()
            }
        }
    }
}
