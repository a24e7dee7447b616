//! The recycle bin page: what was deleted, by whom, when and until when it can come back;
//! restore one or many (with what was deleted with them), and for admins, purge.

use super::forms::restorable_until;
use super::i18n::Lang;
use super::layout::{self, NAV};
use super::pages::title_of;
use super::session::WebUser;
use super::PageError;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_core::Mutation;
use kontor_domain::journal::Origin;
use kontor_domain::permission::Action;
use kontor_domain::Entity;
use maud::{html, Markup};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Rows of one page of the bin.
const BIN_ROWS: u32 = 50;

/// `GET /trash[?entity=E][&cursor=C]`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let pairs = super::query_map(lang, raw.as_deref())?;
    let entity = pairs.get("entity").filter(|e| !e.is_empty());
    let page = state
        .kontor
        .trash(
            &user.actor,
            entity.map(String::as_str),
            pairs.get("cursor").map(String::as_str),
            Some(BIN_ROWS),
        )
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    let deleters: BTreeSet<String> = page
        .items
        .iter()
        .filter_map(|r| r.get("deleted_by").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let emails = emails_of(&state, &deleters.into_iter().collect::<Vec<_>>()).await;
    let done = |key: &str| pairs.get(key).and_then(|n| n.parse::<usize>().ok());
    let body = html! {
        h1 { (lang.t("bin.title")) }
        @if let Some(n) = done("restored") {
            p class="notice" role="status" { (lang.t("bin.restored")) " " (n) }
        }
        @if let Some(n) = done("purged") {
            p class="notice" role="status" { (lang.t("bin.purged")) " " (n) }
        }
        form class="filters" method="get" action="/trash" {
            label { (lang.t("bin.kind"))
                select name="entity" {
                    option value="" { (lang.t("bin.all")) }
                    @for e in NAV {
                        @if user.actor.can_any(e, Action::Read) {
                            option value=(e.as_str()) selected[entity.map(String::as_str) == Some(e.as_str())] { (lang.entity(e)) }
                        }
                    }
                }
            }
            button type="submit" { (lang.t("list.apply")) }
        }
        @if page.items.is_empty() {
            p { (lang.t("bin.empty")) }
        } @else {
            form method="post" action="/trash/restore" {
                input type="hidden" name="csrf" value=(user.csrf());
                table class="list" {
                    thead { tr {
                        th scope="col" { span class="hidden" { (lang.t("bin.pick")) } }
                        th scope="col" { (lang.t("bin.record")) }
                        th scope="col" { (lang.t("bin.kind")) }
                        th scope="col" { (lang.t("bin.deleted_at")) }
                        th scope="col" { (lang.t("bin.deleted_by")) }
                        th scope="col" { (lang.t("bin.until")) }
                    } }
                    tbody {
                        @for r in &page.items {
                            @let (e, id) = (r["entity"].as_str().unwrap_or(""), r["id"].as_str().unwrap_or(""));
                            @let at = r["deleted_at"].as_str().unwrap_or("");
                            @let by = r["deleted_by"].as_str().unwrap_or("");
                            @let title = r.as_object().map(|m| title_of(m, id)).unwrap_or_default();
                            tr {
                                td { input type="checkbox" name="pick" value={ (e) "/" (id) } id={ "pick-" (id) } aria-label={ (lang.t("bin.pick")) " " (title) }; }
                                td { label for={ "pick-" (id) } { (title) } }
                                td { (e.parse::<Entity>().map(|e| lang.entity(e)).unwrap_or(e)) }
                                td { (lang.time(at)) }
                                td { (emails.get(by).cloned().unwrap_or_else(|| by.to_string())) }
                                td { (restorable_until(&state, lang, at).unwrap_or_else(|| "—".into())) }
                            }
                        }
                    }
                }
                div class="actions" {
                    button type="submit" { (lang.t("bin.restore")) }
                    @if user.actor.is_admin() {
                        button type="submit" class="danger" formaction="/trash/purge" { (lang.t("bin.purge")) }
                    }
                }
            }
            @if let Some(next) = &page.next_cursor {
                nav class="pager" {
                    a rel="next" href={ "/trash?" (serde_urlencoded::to_string([("entity", entity.map(String::as_str).unwrap_or("")), ("cursor", next.as_str())]).unwrap_or_default()) } { (lang.t("list.next")) }
                }
            }
        }
    };
    Ok(layout::page(&user, lang.t("bin.title"), None, body))
}

async fn emails_of(state: &AppState, ids: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(users) = state.kontor.store.get_many(Entity::Users, ids).await {
        for u in users {
            if let Some(e) = u.data.get("email").and_then(Value::as_str) {
                out.insert(u.id.clone(), e.to_string());
            }
        }
    }
    out
}

/// The records a bin form picked (`pick=entity/id`, any number).
fn picked(lang: Lang, form: &[(String, String)]) -> Result<Vec<(Entity, String)>, PageError> {
    let mut out = Vec::new();
    for (k, v) in form {
        if k != "pick" {
            continue;
        }
        let parsed = v.split_once('/').and_then(|(e, id)| {
            Some((
                e.parse::<Entity>().ok()?,
                kontor_domain::record::parse_id(id)?,
            ))
        });
        match parsed {
            Some(p) => out.push(p),
            None => return Err(PageError::bad_request(lang, "a picked record is malformed")),
        }
    }
    if out.is_empty() {
        return Err(PageError::Page {
            lang,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: lang.t("bin.none_picked").to_string(),
        });
    }
    Ok(out)
}

fn csrf_of(form: &[(String, String)]) -> &str {
    form.iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// `POST /trash/restore`: brings the picked records back (each with what was deleted with it),
/// all in one batch.
pub async fn restore(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    apply_picks(&state, &user, &form, "restored", |entity, id| {
        Mutation::RestoreDeleted { entity, id }
    })
    .await
}

/// `POST /trash/purge` (admins): removes the picked records for good.
pub async fn purge(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    if !user.actor.is_admin() {
        return Err(PageError::forbidden(user.lang));
    }
    apply_picks(&state, &user, &form, "purged", |entity, id| {
        Mutation::Purge { entity, id }
    })
    .await
}

/// One mutation per picked record, in one batch; then the bin, saying how many (`done=N`).
async fn apply_picks(
    state: &AppState,
    user: &WebUser,
    form: &[(String, String)],
    done: &str,
    mutation: impl Fn(Entity, String) -> Mutation,
) -> Result<Response, PageError> {
    let lang = user.lang;
    user.check_csrf(csrf_of(form))?;
    let picks = picked(lang, form)?;
    let n = picks.len();
    let mutations = picks
        .into_iter()
        .map(|(entity, id)| mutation(entity, id))
        .collect();
    state
        .kontor
        .write(&user.actor, Origin::Web, mutations)
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    Ok(Redirect::to(&format!("/trash?{done}={n}")).into_response())
}
