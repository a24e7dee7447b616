//! The user's own account page: their name and interface language, and a password change
//! (the current password checked as a login is, with the same rate limit). Any role may change
//! these of their own account; the rest of a user is an admin's (`/admin/users`).

use super::i18n::Lang;
use super::layout;
use super::session::{session_cookie, WebUser};
use super::PageError;
use crate::AppState;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_core::CoreError;
use kontor_domain::journal::Origin;
use kontor_domain::schema::LANGUAGES;
use kontor_domain::DomainError;
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;

/// The name of a language in that language, as the language menu offers it.
fn own_name(code: &str) -> &str {
    match code {
        "en" => "English",
        "de" => "Deutsch",
        "ru" => "Русский",
        other => other,
    }
}

/// What the page says after a refusal: the field it names and its message.
#[derive(Default)]
struct Refusal {
    field: Option<String>,
    message: Option<String>,
}

impl Refusal {
    fn on(&self, field: &str) -> Option<&str> {
        (self.field.as_deref() == Some(field))
            .then_some(self.message.as_deref())
            .flatten()
    }
}

fn page(user: &WebUser, name: &str, notice: Option<&str>, refusal: &Refusal) -> Markup {
    let lang = user.lang;
    let chosen = user.language.as_deref().unwrap_or("");
    let err = |f: &str| refusal.on(f);
    let input_error = |f: &str| err(f).map(|_| "true");
    let described = |f: &str| err(f).map(|_| format!("e-{f}"));
    let message = |f: &str| {
        html! { @if let Some(m) = err(f) { p class="error" id={ "e-" (f) } { (m) } } }
    };
    let unplaced = refusal.message.as_deref().filter(|_| {
        !matches!(
            refusal.field.as_deref(),
            Some("name" | "language" | "current_password" | "password" | "repeat")
        )
    });
    let title = lang.t("account.title");
    layout::page(
        user,
        title,
        None,
        html! {
            h1 { (title) }
            @if let Some(n) = notice {
                p class="notice" role="status" { (lang.t(match n {
                    "password" => "account.password_changed",
                    _ => "account.saved",
                })) }
            }
            @if let Some(m) = unplaced {
                p class="error" role="alert" { (m) }
            }
            dl class="fields" {
                dt { (lang.t("login.email")) } dd { (user.email) }
                dt { (lang.t("account.role")) } dd { (user.actor.role.name) }
            }
            section {
                h2 { (lang.t("account.settings")) }
                form method="post" action="/account" class="stacked" {
                    input type="hidden" name="csrf" value=(user.csrf());
                    div class="field" {
                        label for="f-name" { (lang.t("account.name")) }
                        input type="text" id="f-name" name="name" value=(name) maxlength="255" autocomplete="name"
                            aria-invalid=[input_error("name")] aria-describedby=[described("name")];
                        (message("name"))
                    }
                    div class="field" {
                        label for="f-language" { (lang.t("account.language")) }
                        select id="f-language" name="language" aria-invalid=[input_error("language")] aria-describedby=[described("language")] {
                            option value="" selected[chosen.is_empty()] { (lang.t("account.language_browser")) }
                            @for code in LANGUAGES {
                                option value=(code) lang=(code) selected[chosen == code] { (own_name(code)) }
                            }
                        }
                        (message("language"))
                    }
                    button type="submit" { (lang.t("form.save")) }
                }
            }
            section {
                h2 { (lang.t("account.password")) }
                p class="muted" { (lang.t("account.password_hint")) }
                form method="post" action="/account/password" class="stacked" {
                    input type="hidden" name="csrf" value=(user.csrf());
                    // For password managers: whose password this is.
                    input type="hidden" name="username" value=(user.email) autocomplete="username";
                    @for (field, label, auto) in [
                        ("current_password", "account.current_password", "current-password"),
                        ("password", "account.new_password", "new-password"),
                        ("repeat", "account.repeat_password", "new-password"),
                    ] {
                        div class="field" {
                            label for={ "f-" (field) } { (lang.t(label)) }
                            input type="password" id={ "f-" (field) } name=(field) required autocomplete=(auto)
                                minlength=[(field != "current_password").then_some(kontor_core::auth::MIN_PASSWORD_LEN)]
                                aria-invalid=[input_error(field)] aria-describedby=[described(field)];
                            (message(field))
                        }
                    }
                    button type="submit" { (lang.t("account.change_password")) }
                }
            }
        },
    )
}

/// `GET /account[?saved=settings|password]`.
pub async fn show(user: WebUser, RawQuery(query): RawQuery) -> Result<Markup, PageError> {
    let pairs = super::query_map(user.lang, query.as_deref())?;
    Ok(page(
        &user,
        &user.name,
        pairs.get("saved").map(String::as_str),
        &Refusal::default(),
    ))
}

/// The page again after a refusal: 422 for a field's input, 429 when rate limited, else the
/// page error of the refusal.
fn refused(user: &WebUser, name: &str, e: CoreError) -> Response {
    let lang: Lang = user.lang;
    match e {
        CoreError::Domain(d) => {
            let status = match &d {
                DomainError::Forbidden { .. } => StatusCode::FORBIDDEN,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let refusal = Refusal {
                field: d.field().map(str::to_string),
                message: Some(d.to_string()),
            };
            (status, page(user, name, None, &refusal)).into_response()
        }
        CoreError::RateLimited { retry_after } => {
            let refusal = Refusal {
                field: Some("current_password".into()),
                message: Some(lang.t("login.limited").into()),
            };
            let page = page(user, name, None, &refusal);
            super::with_retry_after(
                (StatusCode::TOO_MANY_REQUESTS, page).into_response(),
                retry_after,
            )
        }
        other => PageError::from_core(lang, other).into_response(),
    }
}

#[derive(serde::Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    language: String,
}

/// `POST /account`: name and language; what did not change is not written.
pub async fn save(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    user: WebUser,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    let mut fields = Map::new();
    let text = |t: &str| match t.trim() {
        "" => Value::Null,
        t => Value::from(t),
    };
    if form.name.trim() != user.name.trim() {
        fields.insert("name".into(), text(&form.name));
    }
    if form.language.trim() != user.language.as_deref().unwrap_or("") {
        fields.insert("language".into(), text(&form.language));
    }
    if fields.is_empty() {
        return Ok(Redirect::to("/account?saved=settings").into_response());
    }
    let client = state.http.trusted_proxies.client(peer, &headers);
    match state
        .kontor
        .update_own_account(&user.actor, Origin::Web, &client.to_string(), fields, None)
        .await
    {
        Ok(_) => Ok(Redirect::to("/account?saved=settings").into_response()),
        Err(e) => Ok(refused(&user, &form.name, e)),
    }
}

#[derive(serde::Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    repeat: String,
}

/// `POST /account/password`: every other session of the account ends; this browser gets a
/// new one.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    user: WebUser,
    Form(form): Form<PasswordForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    let lang = user.lang;
    if form.password != form.repeat {
        let refusal = Refusal {
            field: Some("repeat".into()),
            message: Some(lang.t("account.repeat_differs").into()),
        };
        let page = page(&user, &user.name, None, &refusal);
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    let client = state.http.trusted_proxies.client(peer, &headers);
    let changed = state
        .kontor
        .update_own_account(
            &user.actor,
            Origin::Web,
            &client.to_string(),
            Map::new(),
            Some((&form.current_password, &form.password)),
        )
        .await;
    match changed {
        Ok((_, session)) => {
            let mut resp = Redirect::to("/account?saved=password").into_response();
            if let Some(s) = session {
                let secure = state.http.trusted_proxies.forwarded_https(peer, &headers);
                let cookie = session_cookie(s.token, secure);
                if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                    resp.headers_mut().append(header::SET_COOKIE, v);
                }
            }
            Ok(resp)
        }
        Err(e) => Ok(refused(&user, &user.name, e)),
    }
}
