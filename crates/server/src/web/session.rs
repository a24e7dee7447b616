//! Who is looking at a page: the session cookie, the CSRF token every form carries, and the
//! login and logout forms.
//!
//! A web session is an API session (the same `sessions` row, the same rate limiting of failed
//! logins, the same roles): its token travels in an `HttpOnly`, `SameSite=Strict` cookie
//! (`Secure` when a trusted proxy says the request came over TLS) instead of a header. A form
//! of a logged-in page carries a token derived from the session's (`csrf`), so a form posted
//! from another site, which cannot read the page, is refused. The login form, before there is
//! a session, carries a random value that must equal a cookie set with the form.

use super::i18n::Lang;
use super::{layout, PageError};
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use cookie::{Cookie, SameSite};
use kontor_core::CoreError;
use kontor_domain::{Actor, Entity};
use maud::html;
use rand::RngCore;
use std::net::SocketAddr;
use std::sync::Arc;

pub const SESSION_COOKIE: &str = "kontor_session";
const LOGIN_CSRF_COOKIE: &str = "kontor_login_csrf";

/// The logged-in user of a page.
pub struct WebUser {
    pub actor: Actor,
    /// The user's e-mail, shown beside the logout button.
    pub email: String,
    pub name: String,
    /// The language the user chose on their account page (`None`: the browser's).
    pub language: Option<String>,
    pub lang: Lang,
    /// What every page announces (a scheduled shutdown, a read-only state): see
    /// [`crate::lifecycle::Lifecycle::announcements`].
    pub notices: Vec<serde_json::Value>,
    token: String,
}

impl WebUser {
    /// The token the forms of this session carry.
    pub fn csrf(&self) -> String {
        csrf_for(&self.token)
    }

    /// Refuses a posted form whose token is not this session's.
    pub fn check_csrf(&self, posted: &str) -> Result<(), PageError> {
        let expected = blake3::Hash::from_hex(self.csrf());
        match (expected, blake3::Hash::from_hex(posted.trim())) {
            // `Hash` compares in constant time.
            (Ok(a), Ok(b)) if a == b => Ok(()),
            _ => Err(PageError::status(
                self.lang,
                StatusCode::FORBIDDEN,
                "error.csrf",
            )),
        }
    }
}

fn csrf_for(token: &str) -> String {
    blake3::derive_key("kontor web forms 2026-12 csrf", token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

impl FromRequestParts<Arc<AppState>> for WebUser {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let lang = Lang::from_headers(&parts.headers);
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            PageError::Login(login_url(next))
        };
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        match kontor_core::auth::actor_for_token(state.kontor.store.as_ref(), &token).await {
            Ok(actor) if actor.role.api_login => {
                let user = state
                    .kontor
                    .store
                    .get(Entity::Users, &actor.user_id)
                    .await
                    .map_err(|e| PageError::from_core(lang, e.into()))?;
                let text = |f: &str| {
                    user.as_ref()
                        .and_then(|u| u.data.get(f))
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                // The user's own choice of language, else the browser's.
                let lang = text("language")
                    .and_then(|c| Lang::from_code(&c))
                    .unwrap_or(lang);
                let notices = state.lifecycle.announcements(&state.kontor.store).await;
                Ok(WebUser {
                    actor,
                    email: text("email").unwrap_or_default(),
                    name: text("name").unwrap_or_default(),
                    language: text("language"),
                    lang,
                    notices,
                    token,
                })
            }
            Ok(_) => Err(PageError::forbidden(lang)),
            Err(CoreError::Unauthorized(_)) => Err(to_login()),
            Err(e) => Err(PageError::from_core(lang, e)),
        }
    }
}

fn login_url(next: &str) -> String {
    if next == "/" || !safe_next(next) {
        return "/login".into();
    }
    let mut url = String::from("/login?");
    url.push_str(&serde_urlencoded::to_string([("next", next)]).unwrap_or_default());
    url
}

/// Where a login may send the browser afterwards: a path of this site only.
fn safe_next(next: &str) -> bool {
    next.starts_with('/') && !next.starts_with("//") && !next.contains('\\')
}

#[derive(serde::Deserialize, Default)]
pub struct LoginQuery {
    next: Option<String>,
}

/// `GET /login`: the form, with a fresh login CSRF value in a cookie and in the form.
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let secure = state.http.trusted_proxies.forwarded_https(peer, &headers);
    let page = LoginPage {
        lang,
        secure,
        known: login_csrf(&headers),
    };
    login_page(&page, &q.next.unwrap_or_default(), "", None, StatusCode::OK)
}

/// The login CSRF value the browser already holds, if it is one this server could have made.
/// Kept rather than replaced, so that a second login tab (or the browser's own request for a
/// favicon, redirected here) does not void the form of the first.
fn login_csrf(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, LOGIN_CSRF_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How the login form is shown to one request.
struct LoginPage {
    lang: Lang,
    secure: bool,
    /// The browser's current login CSRF value (a new one is made when it has none).
    known: Option<String>,
}

fn login_page(
    how: &LoginPage,
    next: &str,
    email: &str,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let (lang, secure) = (how.lang, how.secure);
    let value = how.known.clone().unwrap_or_else(|| {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, value.clone()))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build();
    let body = html! {
        main id="content" class="narrow" {
            h1 { (lang.t("login.title")) }
            @if let Some(e) = error {
                p class="error" role="alert" id="login-error" { (lang.t(e)) }
            }
            form method="post" action="/login" class="stacked" {
                input type="hidden" name="csrf" value=(value);
                input type="hidden" name="next" value=(next);
                label for="email" { (lang.t("login.email")) }
                input type="email" id="email" name="email" value=(email) required autocomplete="username" autofocus[email.is_empty()];
                label for="password" { (lang.t("login.password")) }
                input type="password" id="password" name="password" required autocomplete="current-password" autofocus[!email.is_empty()];
                button type="submit" { (lang.t("login.submit")) }
            }
        }
    };
    let mut resp = (status, layout::bare(lang, lang.t("login.title"), body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// The cookie that carries a session's token: for the whole site, never to scripts, never
/// sent along from another site, and only over TLS when the request came over it.
pub fn session_cookie(token: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .build()
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: checks the form's CSRF value against its cookie, then logs in as the API
/// does (the same rate limiting); on success the session cookie and a redirect to `next`.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = Lang::from_headers(&headers);
    let secure = state.http.trusted_proxies.forwarded_https(peer, &headers);
    let cookie_csrf = login_csrf(&headers);
    let page = LoginPage {
        lang,
        secure,
        known: cookie_csrf.clone(),
    };
    let again = |error, status| login_page(&page, &form.next, &form.email, Some(error), status);
    if cookie_csrf.as_deref() != Some(form.csrf.as_str()) {
        return again("login.expired", StatusCode::FORBIDDEN);
    }
    let client = state.http.trusted_proxies.client(peer, &headers);
    match state
        .kontor
        .login(&form.email, &form.password, &client.to_string())
        .await
    {
        Ok(ok) => {
            let session = session_cookie(ok.token, secure);
            let used = Cookie::build((LOGIN_CSRF_COOKIE, ""))
                .path("/login")
                .max_age(cookie::time::Duration::ZERO)
                .build();
            let next = if safe_next(&form.next) {
                form.next.as_str()
            } else {
                "/"
            };
            let mut resp = Redirect::to(next).into_response();
            for c in [session.to_string(), used.to_string()] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            resp
        }
        Err(CoreError::RateLimited { retry_after }) => {
            let resp = again("login.limited", StatusCode::TOO_MANY_REQUESTS);
            super::with_retry_after(resp, retry_after)
        }
        Err(CoreError::Unauthorized(_)) | Err(CoreError::Domain(_)) => {
            again("login.failed", StatusCode::UNAUTHORIZED)
        }
        Err(e) => PageError::from_core(lang, e).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (revoked in the database, so the token is dead
/// everywhere) and clears the cookie.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    state
        .kontor
        .store
        .revoke_session(&kontor_core::auth::token_hash(&user.token))
        .await
        .map_err(|e| PageError::from_core(user.lang, e.into()))?;
    let gone = Cookie::build((SESSION_COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    let mut resp = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&gone.to_string()) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_only_sends_the_browser_to_a_path_of_this_site() {
        assert!(safe_next("/contacts?sort=email"));
        assert!(!safe_next("//evil.example/x"));
        assert!(!safe_next("https://evil.example/"));
        assert!(!safe_next("/\\evil.example"));
        assert_eq!(
            login_url("/contacts?q=a b"),
            "/login?next=%2Fcontacts%3Fq%3Da+b"
        );
        assert_eq!(login_url("//evil.example"), "/login");
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let a = csrf_for("kt_one");
        assert_eq!(a.len(), 64);
        assert_eq!(a, csrf_for("kt_one"));
        assert_ne!(a, csrf_for("kt_two"));
    }
}
