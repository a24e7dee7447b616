//! A role's permission document as a matrix on its form: for every CRM entity a scope per
//! action (none, own, team, all), and per field whether it is hidden or read-only. The form's
//! inputs (`perm[deals][update]`, `hidden[companies][inn]`, `readonly[…][…]`) become the same
//! `permissions`, `hidden_fields` and `readonly_fields` objects the API takes.

use super::i18n::Lang;
use super::pages::schema_of;
use super::session::WebUser;
use super::{labels, layout, PageError};
use crate::AppState;
use axum::extract::{Path, State};
use kontor_domain::permission::{Action, Role, Scope, BUILTIN_ROLES};
use kontor_domain::schema::Schema;
use kontor_domain::Entity;
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The role fields the matrix edits instead of three JSON fields.
pub const DOCUMENT_FIELDS: [&str; 3] = ["permissions", "hidden_fields", "readonly_fields"];

const SCOPES: [Scope; 4] = [Scope::None, Scope::Own, Scope::Team, Scope::All];

fn perm_key(e: Entity, a: Action) -> String {
    format!("perm[{}][{}]", e.as_str(), a.as_str())
}

fn rule_key(kind: &str, e: Entity, field: &str) -> String {
    format!("{kind}[{}][{field}]", e.as_str())
}

/// The form's values of a stored role. A document that no longer reads (an entity renamed)
/// shows as an empty matrix; saving it then writes a valid one.
pub fn values_of(data: &Map<String, Value>, into: &mut HashMap<String, String>) {
    if let Ok(role) = Role::from_record_data(data) {
        values_of_role(&role, into);
    }
}

/// The matrix's values of a role.
fn values_of_role(role: &Role, into: &mut HashMap<String, String>) {
    for ((e, a), scope) in &role.scopes {
        into.insert(perm_key(*e, *a), scope.as_str().to_string());
    }
    for (kind, sets) in [("hidden", &role.hidden), ("readonly", &role.readonly)] {
        for (e, fields) in sets {
            for f in fields {
                into.insert(rule_key(kind, *e, f), "on".into());
            }
        }
    }
}

/// The three documents from the form's values, in the API's shape; scopes left at `none` and
/// entities without rules are left out.
pub fn documents_of(values: &HashMap<String, String>) -> Map<String, Value> {
    let mut permissions = Map::new();
    for e in Entity::CRM {
        let mut actions = Map::new();
        for a in Action::ALL {
            match values.get(&perm_key(e, a)).map(String::as_str) {
                None | Some("" | "none") => {}
                Some(s) => {
                    actions.insert(a.as_str().into(), Value::from(s));
                }
            }
        }
        if !actions.is_empty() {
            permissions.insert(e.as_str().into(), Value::Object(actions));
        }
    }
    let mut out = Map::new();
    out.insert("permissions".into(), Value::Object(permissions));
    for (kind, field) in [("hidden", "hidden_fields"), ("readonly", "readonly_fields")] {
        let mut by_entity = Map::new();
        for e in Entity::CRM {
            let prefix = format!("{kind}[{}][", e.as_str());
            let mut names: Vec<&str> = values
                .iter()
                .filter(|(_, v)| v.as_str() == "on")
                .filter_map(|(k, _)| k.strip_prefix(&prefix)?.strip_suffix(']'))
                .collect();
            names.sort_unstable();
            if !names.is_empty() {
                by_entity.insert(e.as_str().into(), Value::from(names));
            }
        }
        out.insert(field.into(), Value::Object(by_entity));
    }
    out
}

/// Whether two role documents grant and hide the same (the stored one may use the shorthand
/// `"deals": "team"`; the form always writes actions out).
pub fn same_rules(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    match (Role::from_record_data(a), Role::from_record_data(b)) {
        (Ok(a), Ok(b)) => {
            let granted = |r: &Role| {
                r.scopes
                    .iter()
                    .filter(|(_, s)| **s != Scope::None)
                    .map(|(k, s)| (*k, *s))
                    .collect::<Vec<_>>()
            };
            let rules = |m: &std::collections::BTreeMap<Entity, _>| {
                m.iter()
                    .filter(|(_, s): &(_, &std::collections::BTreeSet<String>)| !s.is_empty())
                    .map(|(e, s)| (*e, s.clone()))
                    .collect::<Vec<_>>()
            };
            granted(&a) == granted(&b)
                && rules(&a.hidden) == rules(&b.hidden)
                && rules(&a.readonly) == rules(&b.readonly)
        }
        _ => false,
    }
}

fn scope_text(lang: Lang, s: Scope) -> &'static str {
    lang.t(match s {
        Scope::None => "role.none",
        Scope::Own => "role.own",
        Scope::Team => "role.team",
        Scope::All => "role.all",
    })
}

fn action_text(lang: Lang, a: Action) -> &'static str {
    lang.t(match a {
        Action::Read => "role.read",
        Action::Create => "role.create",
        Action::Update => "role.update",
        Action::Delete => "role.delete",
    })
}

/// The matrix: entity × action scopes, then per entity its fields' rules (folded away).
/// `error` is a refusal about one of the documents, shown above the matrix.
pub fn matrix(
    lang: Lang,
    values: &HashMap<String, String>,
    schemas: &[Schema],
    error: Option<&str>,
) -> Markup {
    matrix_of(lang, values, schemas, error, false)
}

fn matrix_of(
    lang: Lang,
    values: &HashMap<String, String>,
    schemas: &[Schema],
    error: Option<&str>,
    read_only: bool,
) -> Markup {
    html! {
        fieldset class="rows" disabled[read_only] aria-describedby=[error.map(|_| "e-permissions")] {
            legend { (lang.t("role.permissions")) }
            @if let Some(e) = error {
                p class="error" id="e-permissions" { (e) }
            }
            table class="list matrix" {
                thead {
                    tr {
                        th scope="col" { (lang.t("bin.kind")) }
                        @for a in Action::ALL { th scope="col" { (action_text(lang, a)) } }
                    }
                }
                tbody {
                    @for e in Entity::CRM {
                        tr {
                            th scope="row" { (lang.entity(e)) }
                            @for a in Action::ALL {
                                @let key = perm_key(e, a);
                                @let now = values.get(&key).map(String::as_str).unwrap_or("none");
                                td {
                                    select name=(key) aria-label={ (lang.entity(e)) ": " (action_text(lang, a)) } {
                                        @for s in SCOPES {
                                            option value=(s.as_str()) selected[now == s.as_str()] { (scope_text(lang, s)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p class="muted" { (lang.t("role.scopes_hint")) }
            h3 { (lang.t("role.field_rules")) }
            @for schema in schemas {
                @let e = schema.entity;
                @let ruled = schema.fields.iter().filter(|f| {
                    ["hidden", "readonly"].iter().any(|k| values.contains_key(&rule_key(k, e, &f.name)))
                }).count();
                details open[ruled > 0] {
                    summary { (lang.entity(e)) @if ruled > 0 { " (" (ruled) ")" } }
                    table class="list" {
                        thead { tr {
                            th scope="col" { (lang.t("role.field")) }
                            th scope="col" { (lang.t("role.hidden")) }
                            th scope="col" { (lang.t("role.readonly")) }
                        } }
                        tbody {
                            @for f in &schema.fields {
                                tr {
                                    th scope="row" { (labels::field(lang, f)) " " code { (f.name) } }
                                    @for kind in ["hidden", "readonly"] {
                                        @let key = rule_key(kind, e, &f.name);
                                        td {
                                            input type="checkbox" name=(key) value="on" checked[values.contains_key(&key)]
                                                aria-label={ (labels::field(lang, f)) ": " (lang.t(if kind == "hidden" { "role.hidden" } else { "role.readonly" })) };
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /admin/roles/{name}`: a built-in role's rules as the matrix shows them, to read (they
/// are Kontor's, not records; a custom role is made to differ).
pub async fn builtin(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(name): Path<String>,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    if !user.actor.is_admin() {
        return Err(PageError::forbidden(lang));
    }
    let role = BUILTIN_ROLES
        .iter()
        .find(|r| **r == name)
        .and_then(|r| Role::builtin(r))
        .ok_or_else(|| PageError::not_found(lang))?;
    let mut values = HashMap::new();
    values_of_role(&role, &mut values);
    let mut schemas = Vec::new();
    for e in Entity::CRM {
        schemas.push(schema_of(&state, lang, e).await?);
    }
    let body = html! {
        p class="muted" { a href="/roles" { (lang.entity(Entity::Roles)) } }
        h1 { (role.name) }
        p { (lang.t("role.builtin")) }
        @if role.admin { p { strong { (lang.t("role.admin_all")) } } }
        @if !role.api_login { p { (lang.t("role.no_api_login")) } }
        (matrix_of(lang, &values, &schemas, None, true))
        p { a class="button" href="/roles/new" { (lang.t("role.make_custom")) } }
    };
    Ok(layout::page(&user, &role.name, Some(Entity::Roles), body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_role_goes_through_the_matrix_and_back_unchanged() {
        let stored = json!({
            "name": "sales",
            "permissions": {"deals": "team", "companies": {"read": "all", "update": "own"}},
            "hidden_fields": {"companies": ["inn"]},
            "readonly_fields": {"deals": ["amount", "stage"]},
        });
        let stored = stored.as_object().cloned().unwrap_or_default();
        let mut values = HashMap::new();
        values_of(&stored, &mut values);
        assert_eq!(
            values.get("perm[deals][delete]").map(String::as_str),
            Some("team")
        );
        assert_eq!(
            values.get("hidden[companies][inn]").map(String::as_str),
            Some("on")
        );
        let mut again = documents_of(&values);
        again.insert("name".into(), json!("sales"));
        assert!(same_rules(&stored, &again), "{again:?}");
        assert_eq!(
            again["readonly_fields"],
            json!({"deals": ["amount", "stage"]})
        );
        assert_eq!(
            again["permissions"]["companies"],
            json!({"read": "all", "update": "own"})
        );
        // One scope changed is a different role.
        values.insert("perm[deals][delete]".into(), "none".into());
        assert!(!same_rules(&stored, &documents_of(&values)));
    }
}
