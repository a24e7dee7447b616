//! The frame of every page (head, navigation, the user's menu), the one stylesheet and the
//! one script, compiled into the binary and served from `/assets/`.

use super::i18n::Lang;
use super::session::WebUser;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use kontor_domain::permission::Action;
use kontor_domain::Entity;
use maud::{html, Markup, DOCTYPE};
use std::sync::OnceLock;

const STYLESHEET: &str = include_str!("assets/kontor.css");
/// The one script: suggestions in reference fields and live list search. Every page works
/// without it.
const SCRIPT: &str = include_str!("assets/kontor.js");

/// An asset's address: its content hash in the name, so it can be cached for good.
fn hashed_path(stem: &str, ext: &str, content: &str) -> String {
    let hash = blake3::hash(content.as_bytes()).to_hex();
    format!("/assets/{stem}-{}.{ext}", &hash[..16])
}

pub fn stylesheet_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| hashed_path("kontor", "css", STYLESHEET))
}

pub fn script_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| hashed_path("kontor", "js", SCRIPT))
}

/// `GET /assets/{name}`: the stylesheet or the script under its current name (anything else
/// is 404).
pub async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    let path = format!("/assets/{name}");
    let (content_type, body) = if path == stylesheet_path() {
        ("text/css; charset=utf-8", STYLESHEET)
    } else if path == script_path() {
        ("text/javascript; charset=utf-8", SCRIPT)
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    (h, body).into_response()
}

/// The entities the navigation lists, in the order people use them.
pub const NAV: [Entity; 13] = Entity::CRM;

/// The users and settings an admin keeps as records (every entity that is not a CRM one), on
/// the same list, record and form pages as the CRM entities (linked from the administration
/// page, not the side navigation).
pub fn settings() -> impl Iterator<Item = Entity> {
    Entity::ALL.into_iter().filter(|e| !e.is_crm())
}

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · " (lang.t("app")) }
            link rel="stylesheet" href=(stylesheet_path());
            script src=(script_path()) defer {}
            // No icon: without this line browsers ask for /favicon.ico on every page.
            link rel="icon" href="data:,";
        }
    }
}

/// A page with no one logged in (the login form, errors before login).
pub fn bare(lang: Lang, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body {
                header class="top" {
                    a class="brand" href="/" { (lang.t("app")) }
                }
                (body)
            }
        }
    }
}

/// A page of a logged-in user: navigation (the entities they may read), search, logout.
pub fn page(user: &WebUser, title: &str, current: Option<Entity>, body: Markup) -> Markup {
    let lang = user.lang;
    let csrf = user.csrf();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body {
                a class="skip" href="#content" { (lang.t("skip")) }
                header class="top" {
                    a class="brand" href="/" { (lang.t("app")) }
                    form class="search" method="get" action="/search" role="search" {
                        label class="hidden" for="global-q" { (lang.t("search")) }
                        input type="search" id="global-q" name="q" placeholder=(lang.t("search.placeholder"));
                        button type="submit" { (lang.t("search")) }
                    }
                    form class="logout" method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(csrf);
                        a class="who" href="/account" { (user.email) }
                        button type="submit" { (lang.t("logout")) }
                    }
                }
                nav class="side" aria-label=(lang.t("app")) {
                    ul {
                        @for e in NAV {
                            @if user.actor.can_any(e, Action::Read) {
                                li {
                                    a href={ "/" (e.as_str()) } aria-current=[(current == Some(e)).then_some("page")] {
                                        (lang.entity(e))
                                    }
                                }
                            }
                        }
                        li class="sep" { a href="/history" { (lang.t("record.history")) } }
                        li { a href="/trash" { (lang.t("bin.title")) } }
                        @if user.actor.is_admin() {
                            li { a href="/admin" { (lang.t("admin.title")) } }
                        }
                    }
                }
                (banner(user))
                main id="content" { (body) }
            }
        }
    }
}

/// `GET /banner`: the announcements alone, which the script fetches again every half
/// minute so a page left open learns of a shutdown scheduled after it was loaded.
pub async fn banner_fragment(user: WebUser) -> Response {
    let mut h = HeaderMap::new();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    (h, banner(&user)).into_response()
}

/// The announcements on top of every page: a scheduled shutdown (its time; the script counts
/// down and reminds at 15, 5 and 1 minutes) and a read-only state.
fn banner(user: &WebUser) -> Markup {
    let lang = user.lang;
    html! {
        div id="announcements" role="status" aria-live="polite" {
            @for n in &user.notices {
                @let message = n["message"].as_str().unwrap_or_default();
                @match n["kind"].as_str() {
                    Some("shutdown") => {
                        @let at = n["at"].as_str().unwrap_or_default();
                        p class="banner shutdown" data-at=(at) {
                            strong { (lang.t("banner.shutdown")) " " time datetime=(at) { (lang.time(at)) } "." }
                            " " (lang.t("banner.save"))
                            @if !message.is_empty() { " " span class="said" { (message) } }
                        }
                    }
                    Some("read_only") => {
                        p class="banner read-only" {
                            strong { (lang.t("banner.read_only")) }
                            @if !message.is_empty() { " " span class="said" { (message) } }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
