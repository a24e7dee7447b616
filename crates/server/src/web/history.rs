//! The history page: every change the user may see, filtered by entity, operation, user,
//! origin, batch and time; from any entry, put the record back as it was right after it, or
//! undo the whole batch it belongs to (one import, one exchange run, one form). Both are new
//! changes through the write path; a conflict refuses everything and says why.

use super::i18n::Lang;
use super::labels;
use super::layout::{self, NAV};
use super::pages::page_entity;
use super::session::WebUser;
use super::PageError;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_core::read::{HistoryItem, HistoryParams};
use kontor_domain::permission::Action;
use kontor_domain::{BatchId, DomainError, Entity};
use maud::{html, Markup};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

const FILTERS: [&str; 7] = ["entity", "op", "actor", "origin", "batch", "from", "to"];

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One entry of a history timeline, with its two actions when the user may take them.
pub fn entry(user: &WebUser, h: &HistoryItem, who: &str, with_record: bool) -> Markup {
    let lang = user.lang;
    let entity = h.entity.parse::<Entity>().ok();
    html! {
        li {
            strong { (lang.time(&h.at)) }
            " · " (op_text(lang, &h.op)) " · " (who)
            @if h.origin != "api" && h.origin != "web" { " · " span class="muted" { (h.origin) } }
            @if with_record {
                @if let Some(e) = entity {
                    " · " a href={ "/" (e.as_str()) "/" (h.record_id) } { (lang.entity(e)) " " (h.record_id.chars().take(8).collect::<String>()) }
                }
            }
            // The bin's bookkeeping (when, by whom, which batch) is what the operation says.
            @let changes: Vec<_> = h.changes.iter().filter(|c| !c.field.starts_with("deleted_")).collect();
            @if !changes.is_empty() && h.op != "create" {
                ul class="change" {
                    @for c in changes {
                        li { (labels::field_name(lang, &c.field)) ": " del { (plain(&c.before)) } " → " ins { (plain(&c.after)) } }
                    }
                }
            }
            @if !h.scrubbed {
                div class="actions" {
                    form method="post" action="/history/restore" {
                        input type="hidden" name="csrf" value=(user.csrf());
                        input type="hidden" name="entity" value=(h.entity);
                        input type="hidden" name="id" value=(h.record_id);
                        input type="hidden" name="at" value=(h.at);
                        button type="submit" { (lang.t("history.restore_here")) }
                    }
                    form method="post" action="/history/undo" {
                        input type="hidden" name="csrf" value=(user.csrf());
                        input type="hidden" name="batch" value=(h.batch);
                        button type="submit" { (lang.t("history.undo_batch")) }
                    }
                    @if let Some((from, to)) = hour_of(&h.at) {
                        // Another user's work is an admin's to undo, as the API says.
                        @if user.actor.is_admin() || h.actor == user.actor.user_id {
                            form method="post" action="/history/undo" {
                                input type="hidden" name="csrf" value=(user.csrf());
                                input type="hidden" name="actor" value=(h.actor);
                                input type="hidden" name="from" value=(from.0);
                                input type="hidden" name="to" value=(to.0);
                                button type="submit" class="secondary" {
                                    (lang.t("history.undo_hour")) " " (from.1) "–" (to.1)
                                }
                            }
                        }
                    }
                    a href={ "/history?batch=" (h.batch) } { (lang.t("history.batch")) }
                }
            }
        }
    }
}

/// The clock hour an entry's time falls in, as (RFC 3339, HH:MM) of its start and its end.
fn hour_of(at: &str) -> Option<((String, String), (String, String))> {
    use chrono::Timelike;
    let t = chrono::DateTime::parse_from_rfc3339(at)
        .ok()?
        .with_timezone(&chrono::Utc);
    let start = t.with_minute(0)?.with_second(0)?.with_nanosecond(0)?;
    let end = start + chrono::Duration::hours(1);
    let side = |t: chrono::DateTime<chrono::Utc>| {
        (
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            t.format("%H:%M").to_string(),
        )
    };
    Some((side(start), side(end)))
}

fn op_text(lang: Lang, op: &str) -> &'static str {
    match op {
        "create" => lang.t("op.create"),
        "delete" => lang.t("op.delete"),
        "restore" => lang.t("op.restore"),
        "purge" => lang.t("op.purge"),
        _ => lang.t("op.update"),
    }
}

/// `GET /history?entity&op&actor&origin&batch&from&to&cursor`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let pairs = super::query_map(lang, raw.as_deref())?;
    let get = |k: &str| pairs.get(k).map(|v| v.trim().to_string());
    let actor = match get("actor") {
        // Whose changes: a user id, `system`, or an e-mail address.
        Some(a) if a.contains('@') => Some(
            state
                .kontor
                .user_by_email(&a)
                .await
                .map_err(|e| PageError::from_core(lang, e))?
                .map(|u| u.id)
                .ok_or_else(|| {
                    PageError::from_core(
                        lang,
                        DomainError::invalid("actor", format!("no user has the e-mail {a}")).into(),
                    )
                })?,
        ),
        other => other,
    };
    let params = HistoryParams {
        entity: get("entity"),
        record_id: get("record_id"),
        op: get("op"),
        actor: actor.clone(),
        origin: get("origin"),
        batch: get("batch"),
        from: get("from"),
        to: get("to"),
        cursor: get("cursor"),
        limit: Some(50),
        order: Some("desc".into()),
    };
    let page = state
        .kontor
        .history(&user.actor, &params)
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    let ids: Vec<String> = page.items.iter().map(|h| h.actor.clone()).collect();
    let mut who = BTreeMap::new();
    if let Ok(users) = state.kontor.store.get_many(Entity::Users, &ids).await {
        for u in users {
            if let Some(e) = u.data.get("email").and_then(Value::as_str) {
                who.insert(u.id.clone(), e.to_string());
            }
        }
    }
    let done = get("done");
    let next_url = page.next_cursor.as_ref().map(|c| {
        let mut kept: Vec<(&str, &str)> = FILTERS
            .iter()
            .filter_map(|k| pairs.get(*k).map(|v| (*k, v.as_str())))
            .collect();
        kept.push(("cursor", c));
        format!(
            "/history?{}",
            serde_urlencoded::to_string(&kept).unwrap_or_default()
        )
    });
    let body = html! {
        h1 { (lang.t("record.history")) }
        @if let Some(d) = done {
            p class="notice" role="status" { (lang.t(if d == "undo" { "history.undone" } else { "history.restored" })) }
        }
        form class="filters" method="get" action="/history" {
            label { (lang.t("bin.kind"))
                select name="entity" {
                    option value="" { (lang.t("bin.all")) }
                    @for e in NAV {
                        @if user.actor.can_any(e, Action::Read) {
                            option value=(e.as_str()) selected[pairs.get("entity").map(String::as_str) == Some(e.as_str())] { (lang.entity(e)) }
                        }
                    }
                }
            }
            label { (lang.t("history.op"))
                select name="op" {
                    option value="" { (lang.t("bin.all")) }
                    @for op in ["create", "update", "delete", "restore", "purge"] {
                        option value=(op) selected[pairs.get("op").map(String::as_str) == Some(op)] { (op_text(lang, op)) }
                    }
                }
            }
            label { (lang.t("history.origin"))
                select name="origin" {
                    option value="" { (lang.t("bin.all")) }
                    @for o in ["api", "web", "import", "exchange", "restore", "system"] {
                        option value=(o) selected[pairs.get("origin").map(String::as_str) == Some(o)] { (o) }
                    }
                }
            }
            label { (lang.t("history.actor"))
                input type="text" name="actor" placeholder=(lang.t("history.actor_hint")) value=(pairs.get("actor").map(String::as_str).unwrap_or(""));
            }
            label { (lang.t("history.from"))
                input type="text" name="from" placeholder="2026-12-01T00:00:00Z" value=(pairs.get("from").map(String::as_str).unwrap_or(""));
            }
            label { (lang.t("history.to"))
                input type="text" name="to" placeholder="2026-12-31T23:59:59Z" value=(pairs.get("to").map(String::as_str).unwrap_or(""));
            }
            @if let Some(b) = pairs.get("batch") { input type="hidden" name="batch" value=(b); }
            button type="submit" { (lang.t("list.apply")) }
        }
        @if let (Some(a), Some(from), Some(to)) = (&actor, pairs.get("from"), pairs.get("to")) {
            @if !page.items.is_empty() && (user.actor.is_admin() || *a == user.actor.user_id) {
                form method="post" action="/history/undo" class="inline" {
                    input type="hidden" name="csrf" value=(user.csrf());
                    input type="hidden" name="actor" value=(a);
                    input type="hidden" name="from" value=(from);
                    input type="hidden" name="to" value=(to);
                    button type="submit" { (lang.t("history.undo_range")) }
                }
            }
        }
        @if page.items.is_empty() {
            p { (lang.t("record.no_history")) }
        } @else {
            ol class="timeline" {
                @for h in &page.items {
                    (entry(&user, h, who.get(&h.actor).map(String::as_str).unwrap_or(&h.actor), true))
                }
            }
        }
        @if let Some(u) = next_url {
            nav class="pager" { a rel="next" href=(u) { (lang.t("list.next")) } }
        }
    };
    Ok(layout::page(&user, lang.t("record.history"), None, body))
}

#[derive(serde::Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    at: String,
}

/// `POST /history/restore`: the record as it was at `at` (right after that entry), as a new
/// change; then the record's page.
pub async fn restore(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<RestoreForm>,
) -> Result<Response, PageError> {
    let lang = user.lang;
    user.check_csrf(&form.csrf)?;
    let entity = page_entity(&user, &form.entity)?;
    let id = kontor_domain::record::parse_id(&form.id).ok_or_else(|| PageError::not_found(lang))?;
    let at = kontor_domain::validate::parse_datetime(&form.at).ok_or_else(|| {
        PageError::from_core(
            lang,
            DomainError::invalid("at", "'at' must be an RFC 3339 time").into(),
        )
    })?;
    state
        .kontor
        .restore_record(&user.actor, entity, &id, at)
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    Ok(Redirect::to(&format!("/{}/{id}", entity.as_str())).into_response())
}

#[derive(serde::Deserialize)]
pub struct UndoForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    batch: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `POST /history/undo`: every change of the batch (or of one user between two times) taken
/// back, as one new batch; conflicts refuse it and are listed.
pub async fn undo(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<UndoForm>,
) -> Result<Response, PageError> {
    let lang = user.lang;
    user.check_csrf(&form.csrf)?;
    let invalid = |f: &str, m: &str| PageError::from_core(lang, DomainError::invalid(f, m).into());
    let undone = if form.batch.trim().is_empty() {
        let who = kontor_core::read::actor_param(form.actor.trim())
            .map_err(|e| PageError::from_core(lang, e))?;
        let time = |f: &str, v: &str| {
            kontor_domain::validate::parse_datetime(v.trim())
                .ok_or_else(|| invalid(f, &format!("'{f}' must be an RFC 3339 time")))
        };
        let (from, to) = (time("from", &form.from)?, time("to", &form.to)?);
        state.kontor.undo_actor(&user.actor, &who, from, to).await
    } else {
        let batch = form
            .batch
            .trim()
            .parse::<BatchId>()
            .map_err(|_| invalid("batch", "'batch' must be a batch id"))?;
        state.kontor.undo_batch(&user.actor, batch).await
    };
    undone.map_err(|e| PageError::from_core(lang, e))?;
    Ok(Redirect::to("/history?done=undo").into_response())
}
