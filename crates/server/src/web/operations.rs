//! `/admin/operations` (admins only): maintenance mode on or off with its message, and the
//! shutdown — scheduled in some minutes with a message for every user, or cancelled —
//! through the same calls as the API (see [`crate::lifecycle`]).

use super::admin::admins_only;
use super::layout;
use super::session::WebUser;
use super::PageError;
use crate::lifecycle::MAINTENANCE_RETRY_SECS;
use crate::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_domain::time;
use maud::{html, Markup};
use std::sync::Arc;

/// `GET /admin/operations`.
pub async fn page(State(state): State<Arc<AppState>>, user: WebUser) -> Result<Markup, PageError> {
    admins_only(&user)?;
    let lang = user.lang;
    let frozen = state
        .kontor
        .store
        .read_only()
        .await
        .map_err(|e| PageError::from_core(lang, e.into()))?;
    let plan = state.lifecycle.plan();
    let csrf = user.csrf();
    Ok(layout::page(
        &user,
        lang.t("ops.title"),
        None,
        html! {
            h1 { (lang.t("ops.title")) }
            h2 { (lang.t("ops.maintenance")) }
            @match &frozen {
                Some(r) => p { strong { (lang.t("banner.read_only")) } " (" (r.reason.as_str()) ", " (lang.time(&time::format(r.since))) ") " (r.message) },
                None => p { (lang.t("ops.open")) },
            }
            form method="post" action="/admin/maintenance" {
                input type="hidden" name="csrf" value=(csrf);
                @if frozen.is_some() {
                    input type="hidden" name="on" value="0";
                    button type="submit" { (lang.t("ops.maintenance_off")) }
                } @else {
                    input type="hidden" name="on" value="1";
                    label for="m-message" { (lang.t("ops.message")) }
                    input type="text" id="m-message" name="message" maxlength="500";
                    button type="submit" { (lang.t("ops.maintenance_on")) }
                }
            }
            h2 { (lang.t("ops.shutdown")) }
            @match &plan {
                Some(p) => {
                    p { (lang.t("banner.shutdown")) " " (lang.time(&time::format(p.at))) ". " (p.message) }
                    form method="post" action="/admin/shutdown/cancel" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { (lang.t("ops.cancel")) }
                    }
                }
                None => {
                    form method="post" action="/admin/shutdown" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="s-minutes" { (lang.t("ops.in_minutes")) }
                        input type="number" id="s-minutes" name="minutes" min="0" max="43200" value="15" required;
                        label for="s-message" { (lang.t("ops.message")) }
                        input type="text" id="s-message" name="message" maxlength="500";
                        button type="submit" { (lang.t("ops.schedule")) }
                    }
                }
            }
        },
    ))
}

#[derive(serde::Deserialize)]
pub struct MaintenanceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    on: String,
    #[serde(default)]
    message: String,
}

/// `POST /admin/maintenance`.
pub async fn maintenance(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<MaintenanceForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    let message: String = form.message.chars().take(500).collect();
    let on = (form.on == "1").then_some((message.as_str(), MAINTENANCE_RETRY_SECS));
    state
        .lifecycle
        .set_maintenance(&state, &user.actor, on)
        .await
        .map_err(|e| PageError::from_api(user.lang, e))?;
    Ok(Redirect::to("/admin/operations").into_response())
}

#[derive(serde::Deserialize)]
pub struct ShutdownForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    minutes: String,
    #[serde(default)]
    message: String,
}

/// `POST /admin/shutdown`.
pub async fn schedule(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<ShutdownForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    let lang = user.lang;
    let minutes: i64 = form
        .minutes
        .trim()
        .parse()
        .ok()
        .filter(|m| (0..=43_200).contains(m))
        .ok_or_else(|| PageError::bad_request(lang, lang.t("ops.in_minutes")))?;
    let message: String = form.message.chars().take(500).collect();
    let at = time::now() + chrono::Duration::minutes(minutes);
    state
        .lifecycle
        .schedule(&state, &user.actor, at, &message)
        .await
        .map_err(|e| PageError::from_api(lang, e))?;
    Ok(Redirect::to("/admin/operations").into_response())
}

#[derive(serde::Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/shutdown/cancel`.
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Form(form): Form<CancelForm>,
) -> Result<Response, PageError> {
    user.check_csrf(&form.csrf)?;
    state
        .lifecycle
        .cancel(&state, &user.actor)
        .await
        .map_err(|e| PageError::from_api(user.lang, e))?;
    Ok(Redirect::to("/admin/operations").into_response())
}
