//! Administration pages (admins only, as the admin API): the backups' state (target, shipping
//! lag, the newest and the newest verified snapshot, failed verifications, every archive) and
//! the 1C exchange runs with their reports.

use super::layout;
use super::session::WebUser;
use super::PageError;
use crate::routes::exchange_runs::RUN_KINDS;
use crate::tracked_jobs::job_json;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::permission::BUILTIN_ROLES;
use maud::{html, Markup};
use serde_json::Value;
use std::sync::Arc;

/// Exchange runs listed on one page.
const RUNS_SHOWN: u32 = 50;

pub(super) fn admins_only(user: &WebUser) -> Result<(), PageError> {
    if user.actor.is_admin() {
        Ok(())
    } else {
        Err(PageError::forbidden(user.lang))
    }
}

/// The job a page's path names (`None`: there is none; a path that is no id is not found).
async fn job_at(
    state: &AppState,
    lang: super::i18n::Lang,
    id: &str,
) -> Result<Option<kontor_store::JobRow>, PageError> {
    let id = kontor_domain::record::parse_id(id).ok_or_else(|| PageError::not_found(lang))?;
    state
        .kontor
        .store
        .job(&id)
        .await
        .map_err(|e| PageError::from_core(lang, e.into()))
}

/// Any JSON value as nested lists: how reports and states are shown in full.
pub fn json_view(lang: super::i18n::Lang, v: &Value) -> Markup {
    match v {
        Value::Object(m) if m.is_empty() => html! { "—" },
        Value::Object(m) => html! {
            dl class="fields" {
                @for (k, v) in m {
                    @if !v.is_null() {
                        dt { (super::labels::field_name(lang, k)) }
                        dd { (json_view(lang, v)) }
                    }
                }
            }
        },
        Value::Array(a) if a.is_empty() => html! { "—" },
        Value::Array(a) => html! { ol { @for v in a { li { (json_view(lang, v)) } } } },
        Value::String(s) => html! { (s) },
        Value::Null => html! { "—" },
        other => html! { (other.to_string()) },
    }
}

/// `GET /admin`.
pub async fn home(user: WebUser) -> Result<Markup, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    Ok(layout::page(
        &user,
        lang.t("admin.title"),
        None,
        html! {
            h1 { (lang.t("admin.title")) }
            h2 { (lang.t("admin.people")) }
            ul {
                @for e in layout::settings() {
                    li { a href={ "/" (e.as_str()) } { (lang.entity(e)) } }
                }
            }
            p {
                (lang.t("admin.builtin_roles")) ": "
                @for (i, r) in BUILTIN_ROLES.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href={ "/admin/roles/" (r) } { (r) }
                }
            }
            h2 { (lang.t("admin.operations")) }
            ul {
                li { a href="/admin/operations" { (lang.t("ops.title")) } }
                li { a href="/admin/backups" { (lang.t("admin.backups")) } }
                li { a href="/admin/exchange" { (lang.t("admin.exchange")) } }
                li { a href="/history?origin=import" { (lang.t("admin.imports")) } }
            }
        },
    ))
}

/// `GET /admin/backups`.
pub async fn backups(
    State(state): State<Arc<AppState>>,
    user: WebUser,
) -> Result<Markup, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    let Some(desk) = state.backups.clone() else {
        return Ok(layout::page(
            &user,
            lang.t("admin.backups"),
            None,
            html! { h1 { (lang.t("admin.backups")) } p { (lang.t("admin.no_backups")) } },
        ));
    };
    // A bucket is asked over the network, a folder read from disk: off the request's thread.
    let read = tokio::task::spawn_blocking(move || {
        Ok::<_, kontor_backup::BackupError>((desk.status()?, desk.list()?))
    })
    .await;
    let (status, list) = match read {
        Ok(Ok(both)) => both,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the backups page could not read the backups");
            return Err(PageError::Page {
                lang,
                status: StatusCode::INTERNAL_SERVER_ERROR,
                message: format!("{}: {e}", lang.t("admin.backups_unreadable")),
            });
        }
        Err(_) => {
            return Err(PageError::status(
                lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                "error.title",
            ))
        }
    };
    let verified = &status["newest_verified"];
    let failed = status["failed_verifications"]
        .as_array()
        .map_or(0, Vec::len);
    let csrf = user.csrf();
    let body = html! {
        h1 { (lang.t("admin.backups")) }
        form method="post" action="/admin/backups/create" {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" { (lang.t("admin.snapshot_now")) }
            " " span class="muted" { (lang.t("admin.snapshot_hint")) }
        }
        @if verified.is_null() {
            p class="error" role="alert" { (lang.t("admin.never_verified")) }
        } @else {
            p class="notice" role="status" {
                (lang.t("admin.last_verified")) " "
                strong { (verified["id"].as_str().unwrap_or("")) }
                @if let Some(at) = verified["verification"]["at"].as_str() { " · " (lang.time(at)) }
            }
        }
        @if failed > 0 {
            p class="error" role="alert" { (lang.t("admin.failed_verifications")) " " (failed) }
        }
        h2 { (lang.t("admin.state")) }
        (json_view(lang, &status))
        h2 { (lang.t("admin.archives")) }
        table class="list" {
            thead { tr {
                th scope="col" { (lang.t("admin.archive")) }
                th scope="col" { (lang.t("record.created")) }
                th scope="col" class="num" { "seq" }
                th scope="col" class="num" { "MiB" }
                th scope="col" { (lang.t("admin.verification")) }
                th scope="col" { span class="hidden" { (lang.t("admin.verify")) } }
            } }
            tbody {
                @for a in list["archives"].as_array().into_iter().flatten() {
                    tr {
                        td { (a["id"].as_str().unwrap_or("")) }
                        td { (a["created_at"].as_str().map(|t| lang.time(t)).unwrap_or_default()) }
                        td class="num" { (a["seq"].as_i64().map(|s| lang.count(s.max(0) as u64)).unwrap_or_default()) }
                        td class="num" { (format!("{:.1}", a["bytes"].as_f64().unwrap_or(0.0) / 1048576.0)) }
                        td {
                            @match a["verification"]["ok"].as_bool() {
                                Some(true) => { "✓ " (a["verification"]["at"].as_str().map(|t| lang.time(t)).unwrap_or_default()) }
                                Some(false) => { span class="error" { "✗ " (a["verification"]["error"].as_str().unwrap_or("")) } }
                                None => { span class="muted" { (lang.t("admin.not_verified")) } }
                            }
                        }
                        td {
                            form method="post" action="/admin/backups/verify" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="archive" value=(a["id"].as_str().unwrap_or(""));
                                button type="submit" class="secondary" { (lang.t("admin.verify")) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&user, lang.t("admin.backups"), None, body))
}

/// `GET /admin/exchange`: the runs, newest first.
pub async fn exchange_runs(
    State(state): State<Arc<AppState>>,
    user: WebUser,
) -> Result<Markup, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    let rows = state
        .kontor
        .store
        .jobs(RUN_KINDS, None, RUNS_SHOWN)
        .await
        .map_err(|e| PageError::from_core(lang, e.into()))?;
    let body = html! {
        h1 { (lang.t("admin.exchange")) }
        @if rows.is_empty() {
            p { (lang.t("admin.no_runs")) }
        } @else {
            table class="list" {
                thead { tr {
                    th scope="col" { (lang.t("record.created")) }
                    th scope="col" { (lang.t("bin.kind")) }
                    th scope="col" { (lang.t("admin.run_state")) }
                    th scope="col" { (lang.t("admin.progress")) }
                } }
                tbody {
                    @for r in &rows {
                        tr {
                            td { a href={ "/admin/exchange/" (r.id) } { (lang.time(&kontor_domain::time::format(r.created_at))) } }
                            td { (r.kind) }
                            td { (r.state) @if let Some(e) = &r.error { " · " span class="error" { (e) } } }
                            td { (r.phase.as_deref().unwrap_or("")) " " (r.done) @if let Some(t) = r.total { " / " (t) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&user, lang.t("admin.exchange"), None, body))
}

/// `GET /admin/exchange/{id}`: one run and its whole report.
pub async fn exchange_run(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    let row = job_at(&state, lang, &id)
        .await?
        .filter(|r| r.kind.starts_with(RUN_KINDS))
        .ok_or_else(|| PageError::not_found(lang))?;
    let run = job_json(&row);
    let batch = run["result"]["batch"].as_str().map(str::to_string);
    let body = html! {
        p class="muted" { a href="/admin/exchange" { (lang.t("admin.exchange")) } }
        h1 { (row.kind) " · " (lang.time(&kontor_domain::time::format(row.created_at))) }
        @if let Some(b) = batch {
            p { a href={ "/history?batch=" (b) } { (lang.t("history.batch")) } }
        }
        (json_view(lang, &run))
    };
    Ok(layout::page(&user, lang.t("admin.exchange"), None, body))
}

#[derive(serde::Deserialize)]
pub struct SnapshotForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/backups/create`: a snapshot, verified right after, as the API starts it; then
/// the job's page.
pub async fn create_snapshot(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<SnapshotForm>,
) -> Result<Response, PageError> {
    admins_only(&user)?;
    user.check_csrf(&form.csrf)?;
    let job = crate::routes::backups::start_snapshot(&state, &user.actor, "web")
        .await
        .map_err(|e| PageError::from_api(user.lang, e))?;
    Ok(Redirect::to(&format!("/admin/jobs/{}", job.row().id)).into_response())
}

#[derive(serde::Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    archive: String,
}

/// `POST /admin/backups/verify`: restores one archive into a scratch place and checks it.
pub async fn verify_archive(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<VerifyForm>,
) -> Result<Response, PageError> {
    admins_only(&user)?;
    user.check_csrf(&form.csrf)?;
    let job = crate::routes::backups::start_verify(&state, &user.actor, form.archive, "web")
        .await
        .map_err(|e| PageError::from_api(user.lang, e))?;
    Ok(Redirect::to(&format!("/admin/jobs/{}", job.row().id)).into_response())
}

/// Seconds between the reloads of a running job's page.
const JOB_RELOAD_SECONDS: u32 = 2;

/// `GET /admin/jobs/{id}`: a job's state, phase and progress; the page reloads itself while
/// the job runs (no script needed).
pub async fn job(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    let row = job_at(&state, lang, &id)
        .await?
        .ok_or_else(|| PageError::not_found(lang))?;
    let running = row.state == "running";
    let percent = row
        .total
        .filter(|t| *t > 0)
        .map(|t| (row.done.saturating_mul(100) / t).min(100));
    let body = html! {
        p class="muted" { a href="/admin/backups" { (lang.t("admin.backups")) } }
        h1 { (row.kind) " · " (lang.time(&kontor_domain::time::format(row.created_at))) }
        p role="status" aria-live="polite" {
            strong { (row.state) }
            @if let Some(p) = &row.phase { " · " (p) }
            " · " (lang.count(row.done.max(0) as u64)) @if let Some(t) = row.total { " / " (lang.count(t.max(0) as u64)) }
            @if let Some(e) = &row.error { " · " span class="error" { (e) } }
        }
        @if let Some(p) = percent {
            progress max="100" value=(p) { (p) "%" }
        }
        (json_view(lang, &job_json(&row)))
    };
    let mut resp = layout::page(&user, lang.t("admin.job"), None, body).into_response();
    if running {
        // The same as a <meta http-equiv="refresh">: browsers reload the page after the delay.
        if let Ok(v) = axum::http::HeaderValue::from_str(&JOB_RELOAD_SECONDS.to_string()) {
            resp.headers_mut().insert("refresh", v);
        }
    }
    Ok(resp)
}
