//! Creating, editing and deleting a record through a form. A form posts every field it shows;
//! the values become the same JSON input the API takes and go through the one write path
//! (origin `web`). A refusal re-shows the form with what was typed and the message beside the
//! field it names.

use super::i18n::Lang;
use super::labels;
use super::layout;
use super::pages::{page_entity, record_at, schema_of, title_of};
use super::refs::{self, Unresolved};
use super::roles;
use super::session::WebUser;
use super::{query_map, PageError};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kontor_core::{CoreError, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::permission::{Action, BUILTIN_ROLES};
use kontor_domain::schema::{FieldDef, FieldType, Schema, Writer};
use kontor_domain::{DomainError, Entity};
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The fields a form shows: those the user may see and set. Lists are edited one value per
/// line, objects (import columns, exchange property mappings) as JSON.
fn form_fields(
    user: &WebUser,
    entity: Entity,
    schema: &kontor_domain::schema::Schema,
    editing: bool,
) -> Vec<FieldDef> {
    user.actor
        .visible_schema(schema)
        .fields
        .into_iter()
        .filter(|f| f.writer == Writer::Input)
        .filter(|f| !user.actor.is_readonly(entity, &f.name))
        .filter(|f| !(editing && f.immutable))
        .filter(|f| !matches!(f.ty, FieldType::LinkedRef { .. }))
        .collect()
}

/// Blank rows a form offers below the filled ones of a rows field (invoice lines, addresses).
const BLANK_ROWS: usize = 3;

/// The columns of a rows field a form edits: those a client sets.
fn row_columns(def: &FieldDef) -> Vec<&FieldDef> {
    match &def.ty {
        FieldType::Rows(cols) => cols
            .iter()
            .filter(|c| c.writer == Writer::Input)
            .filter(|c| {
                !matches!(
                    c.ty,
                    FieldType::Rows(_) | FieldType::List(_) | FieldType::Object
                )
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The form's texts of a rows field (`lines[0].price` …) as rows, in order; a row left blank
/// is no row. `None` when the form had no input for the field at all.
fn rows_from_form(def: &FieldDef, values: &HashMap<String, String>) -> Option<Vec<Value>> {
    let cols = row_columns(def);
    let prefix = format!("{}[", def.name);
    let mut indexes: Vec<usize> = values
        .keys()
        .filter_map(|k| k.strip_prefix(&prefix)?.split(']').next()?.parse().ok())
        .collect();
    if indexes.is_empty() {
        return None;
    }
    indexes.sort_unstable();
    indexes.dedup();
    let mut rows = Vec::new();
    for i in indexes {
        let mut row = Map::new();
        for c in &cols {
            let key = format!("{}[{i}].{}", def.name, c.name);
            if let Some(v) = values.get(&key).and_then(|t| as_input(c, t)) {
                row.insert(c.name.clone(), v);
            }
        }
        if !row.is_empty() {
            rows.push(Value::Object(row));
        }
    }
    Some(rows)
}

/// The rows of a stored value as the form's texts, keyed like the form's inputs.
fn rows_as_texts(def: &FieldDef, v: Option<&Value>, into: &mut HashMap<String, String>) {
    let Some(Value::Array(rows)) = v else { return };
    for (i, row) in rows.iter().enumerate() {
        for c in row_columns(def) {
            into.insert(
                format!("{}[{i}].{}", def.name, c.name),
                as_text(row.get(&c.name)),
            );
        }
    }
}

/// A rows field as a table of inputs: the rows there are, then blank ones.
fn rows_input(
    lang: Lang,
    def: &FieldDef,
    values: &HashMap<String, String>,
    error: Option<&str>,
    choose: Option<&Unresolved>,
) -> Markup {
    let cols = row_columns(def);
    let filled = values
        .keys()
        .filter_map(|k| {
            k.strip_prefix(&format!("{}[", def.name))?
                .split(']')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    let err_id = format!("e-{}", def.name);
    html! {
        fieldset class="rows" aria-describedby=[error.map(|_| err_id.as_str())] {
            legend { (labels::field(lang, def)) }
            @if let Some(e) = error {
                p class="error" id=(err_id) { (e) }
            }
            table class="list" {
                thead { tr { @for c in &cols { th scope="col" { (labels::field(lang, c)) @if c.required { " *" } } } } }
                tbody {
                    @for i in 0..(filled + BLANK_ROWS) {
                        tr {
                            @for c in &cols {
                                @let name = format!("{}[{i}].{}", def.name, c.name);
                                @let cell_label = format!("{} {}", labels::field(lang, c), i + 1);
                                td {
                                    @if let FieldType::Ref(target) = c.ty {
                                        (refs::input(&name, Some(target), None, values, Some(&cell_label), None, omit_kept(choose, &name)))
                                    } @else {
                                        input type="text" id=(format!("f-{name}")) name=(name)
                                            value=(values.get(&name).map(String::as_str).unwrap_or(""))
                                            aria-label=(cell_label)
                                            inputmode=[matches!(c.ty, FieldType::Decimal { .. } | FieldType::Money { .. }).then_some("decimal")];
                                    }
                                }
                            }
                        }
                    }
                }
            }
            p class="muted" { (lang.t("form.rows_hint")) }
        }
    }
}

/// A stored value as the text of its form field.
fn as_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
    }
}

/// A stored value as the text of a form field of its type: a list one value per line, an
/// object as indented JSON, anything else as [`as_text`].
fn field_text(def: &FieldDef, v: Option<&Value>) -> String {
    match (&def.ty, v) {
        (FieldType::List(_), Some(Value::Array(items))) => items
            .iter()
            .map(|i| as_text(Some(i)))
            .collect::<Vec<_>>()
            .join("\n"),
        (FieldType::Object, Some(o @ Value::Object(m))) if !m.is_empty() => {
            serde_json::to_string_pretty(o).unwrap_or_default()
        }
        (FieldType::Object, Some(Value::Object(_))) => String::new(),
        _ => as_text(v),
    }
}

/// The form's text of a field as the JSON value the write path takes (`None`: not given).
fn as_input(def: &FieldDef, text: &str) -> Option<Value> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match &def.ty {
        FieldType::List(inner) => {
            let item = FieldDef::new(&def.name, (**inner).clone());
            Value::Array(
                text.lines()
                    .filter_map(|line| as_input(&item, line))
                    .collect(),
            )
        }
        // JSON that does not parse goes as typed: the validator says the field needs an object.
        FieldType::Object => serde_json::from_str(text).unwrap_or_else(|_| Value::from(text)),
        FieldType::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => Value::from(other),
        },
        // A number that does not parse goes as typed, for the validator to name.
        FieldType::Integer { .. } => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(text)),
        _ => Value::from(text),
    })
}

/// One field of a form: label, input for its type, and the message of a refusal about it.
fn field_input(lang: Lang, def: &FieldDef, value: &str, error: Option<&str>) -> Markup {
    let id = format!("f-{}", def.name);
    let err_id = format!("e-{}", def.name);
    let label = labels::field(lang, def);
    let input = match &def.ty {
        FieldType::LongText => html! {
            textarea id=(id) name=(def.name) rows="4" aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())] { (value) }
        },
        FieldType::List(inner) => {
            let hint_id = format!("h-{}", def.name);
            let described = match error {
                Some(_) => format!("{hint_id} {err_id}"),
                None => hint_id.clone(),
            };
            html! {
                textarea id=(id) name=(def.name) rows="4" aria-invalid=[error.map(|_| "true")] aria-describedby=(described) { (value) }
                p class="muted" id=(hint_id) {
                    (lang.t("form.one_per_line"))
                    @if let FieldType::Enum(options) = &**inner { ": " (options.join(", ")) }
                }
            }
        }
        FieldType::Object => {
            let hint_id = format!("h-{}", def.name);
            let described = match error {
                Some(_) => format!("{hint_id} {err_id}"),
                None => hint_id.clone(),
            };
            html! {
                textarea id=(id) name=(def.name) rows="6" class="code" spellcheck="false" aria-invalid=[error.map(|_| "true")] aria-describedby=(described) { (value) }
                p class="muted" id=(hint_id) { (lang.t("form.json_object")) }
            }
        }
        FieldType::Bool => html! {
            select id=(id) name=(def.name) aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())] {
                option value="" selected[value.is_empty()] { "—" }
                option value="true" selected[value == "true"] { (lang.t("yes")) }
                option value="false" selected[value == "false"] { (lang.t("no")) }
            }
        },
        FieldType::Enum(options) => html! {
            select id=(id) name=(def.name) aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())] {
                option value="" selected[value.is_empty()] { "—" }
                @for o in options {
                    option value=(o) selected[value == o] { (o) }
                }
                // A value typed elsewhere that is not (or no longer) an option stays visible.
                @if !value.is_empty() && !options.iter().any(|o| o == value) {
                    option value=(value) selected { (value) }
                }
            }
        },
        ty => {
            let (kind, mode) = match ty {
                FieldType::Email => ("email", None),
                FieldType::Phone => ("tel", None),
                FieldType::Date => ("date", None),
                FieldType::Integer { .. } => ("text", Some("numeric")),
                FieldType::Digits { .. } | FieldType::TaxId(_) => ("text", Some("numeric")),
                FieldType::Decimal { .. } | FieldType::Money { .. } => ("text", Some("decimal")),
                _ => ("text", None),
            };
            let max = match ty {
                FieldType::Text { max } => Some(*max),
                FieldType::Currency => Some(3),
                _ => None,
            };
            html! {
                input type=(kind) id=(id) name=(def.name) value=(value) inputmode=[mode]
                    maxlength=[max] required[def.required]
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())];
            }
        }
    };
    html! {
        div class="field" {
            label for=(id) { (label) @if def.required { " *" } }
            (input)
            @if let Some(e) = error {
                p class="error" id=(err_id) { (e) }
            }
        }
    }
}

/// A reference field: its label and the input that takes a record's name (see `refs`).
fn ref_field(
    lang: Lang,
    f: &FieldDef,
    values: &HashMap<String, String>,
    error: Option<&str>,
    choose: Option<&Unresolved>,
) -> Markup {
    let entity_field = match &f.ty {
        FieldType::LinkedRef { entity_field } => Some(*entity_field),
        _ => None,
    };
    let target = match &f.ty {
        FieldType::Ref(t) => Some(*t),
        _ => None,
    };
    html! {
        div class="field" {
            label for={ "f-" (f.name) } { (labels::field(lang, f)) @if f.required { " *" } }
            (refs::input(&f.name, target, entity_field, values, None, error, omit_kept(choose, &f.name)))
            @if let Some(e) = error {
                p class="error" id={ "e-" (f.name) } { (e) }
            }
            @if let Some(u) = choose.filter(|u| u.key == f.name) { (u.choose(lang)) }
        }
    }
}

/// Whether a reference input's kept id gives way to the matches offered to choose from.
fn omit_kept(choose: Option<&Unresolved>, key: &str) -> bool {
    choose.is_some_and(|u| u.key == key)
}

/// A form page: whose, of which entity, where it posts and which fields it shows. Shown
/// blank or filled, and again after a refusal with what was typed.
struct FormView<'a> {
    user: &'a WebUser,
    entity: Entity,
    title: String,
    action: String,
    fields: Vec<FieldDef>,
    /// A role's form: the CRM entities' schemas its permission matrix lists fields of.
    role_schemas: Vec<Schema>,
    /// A user's form: the roles a user can have.
    role_names: Vec<String>,
}

/// The form field of a user's password (never a field of the record).
const PASSWORD: &str = "password";

/// A user's password: required for a new user; on an edit, a new one or nothing.
fn password_input(lang: Lang, new: bool, error: Option<&str>) -> Markup {
    let err_id = format!("e-{PASSWORD}");
    html! {
        div class="field" {
            label for="f-password" { (lang.t(if new { "login.password" } else { "account.new_password" })) @if new { " *" } }
            input type="password" id="f-password" name=(PASSWORD) autocomplete="new-password"
                minlength=(kontor_core::auth::MIN_PASSWORD_LEN) required[new]
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())];
            @if !new { p class="muted" { (lang.t("form.password_keep")) } }
            @if let Some(e) = error {
                p class="error" id=(err_id) { (e) }
            }
        }
    }
}

/// A text field whose values are a known list (a user's role): a choice among them, the
/// current value kept even when it is not (or no longer) one of them.
fn choice_input(
    lang: Lang,
    def: &FieldDef,
    options: &[String],
    value: &str,
    error: Option<&str>,
) -> Markup {
    let mut def = def.clone();
    let mut all = options.to_vec();
    if !value.is_empty() && !all.iter().any(|o| o == value) {
        all.push(value.to_string());
    }
    def.ty = FieldType::Enum(all);
    field_input(lang, &def, value, error)
}

/// Whether a field of this form is one of a role's permission documents, which the matrix
/// edits.
fn is_role_document(entity: Entity, field: &str) -> bool {
    entity == Entity::Roles && roles::DOCUMENT_FIELDS.contains(&field)
}

impl FormView<'_> {
    /// The form with these values and no message.
    fn show(&self, values: &HashMap<String, String>) -> Markup {
        self.render(values, None, None, None)
    }

    /// The form again, as typed, with a reference's name that stands for no single record
    /// refused beside its field, and the matches to choose from (422).
    fn unresolved(&self, values: &HashMap<String, String>, u: Unresolved) -> Response {
        let message = (u.key.clone(), u.message(self.user.lang));
        let page = self.render(values, Some(&message), None, Some(&u));
        (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
    }

    /// The form again, as typed, with the refusal's message beside its field (422) or at the
    /// top (409); a refusal a form cannot show (not found, forbidden …) is a page error.
    fn refused(
        &self,
        values: &HashMap<String, String>,
        e: CoreError,
    ) -> Result<Response, PageError> {
        let (field_error, general) = refusal(self.user.lang, e)?;
        let status = status_of(&field_error);
        let page = self.render(values, field_error.as_ref(), general, None);
        Ok((status, page).into_response())
    }

    fn render(
        &self,
        values: &HashMap<String, String>,
        field_error: Option<&FieldMessage>,
        general_error: Option<String>,
        choose: Option<&Unresolved>,
    ) -> Markup {
        let (user, entity, fields) = (self.user, self.entity, &self.fields);
        let lang = user.lang;
        let on_field = |name: &str| {
            field_error
                .filter(|(f, _)| base_field(f) == name)
                .map(|(_, m)| m.as_str())
        };
        // A refusal about a field the form does not show is said at the top.
        let unplaced = field_error
            .filter(|(f, _)| !fields.iter().any(|d| d.name == base_field(f)))
            .map(|(_, m)| m.clone());
        let body = html! {
            p class="muted" { a href={ "/" (entity.as_str()) } { (lang.entity(entity)) } }
            h1 { (self.title) }
            @for m in general_error.iter().chain(unplaced.iter()) {
                p class="error" role="alert" { (m) }
            }
            form method="post" action=(self.action) class="stacked" {
                input type="hidden" name="csrf" value=(user.csrf());
                @for f in fields {
                    @if is_role_document(entity, &f.name) {
                        @if f.name == "permissions" {
                            @let error = roles::DOCUMENT_FIELDS.iter().find_map(|d| on_field(d));
                            (roles::matrix(lang, values, &self.role_schemas, error))
                        }
                    } @else if entity == Entity::Users && f.name == "role" {
                        (choice_input(lang, f, &self.role_names, values.get(&f.name).map(String::as_str).unwrap_or(""), on_field(&f.name)))
                    } @else if matches!(f.ty, FieldType::Rows(_)) {
                        (rows_input(lang, f, values, on_field(&f.name), choose))
                        @if let Some(u) = choose.filter(|u| base_field(&u.key) == f.name) { (u.choose(lang)) }
                    } @else if matches!(f.ty, FieldType::Ref(_) | FieldType::LinkedRef { .. }) {
                        (ref_field(lang, f, values, on_field(&f.name), choose))
                    } @else {
                        (field_input(lang, f, values.get(&f.name).map(String::as_str).unwrap_or(""), on_field(&f.name)))
                    }
                }
                @if entity == Entity::Users {
                    (password_input(lang, self.action.ends_with("/new"), on_field(PASSWORD)))
                }
                button type="submit" { (lang.t("form.save")) }
            }
        };
        layout::page(user, &self.title, Some(entity), body)
    }
}

/// `addresses[0].text` → `addresses`.
fn base_field(path: &str) -> &str {
    path.split(['[', '.']).next().unwrap_or(path)
}

/// A refusal's message about a field: `(field, message)`.
type FieldMessage = (String, String);

/// The message and the field of a refusal the form can show; anything else is a page error.
fn refusal(lang: Lang, e: CoreError) -> Result<(Option<FieldMessage>, Option<String>), PageError> {
    match e {
        CoreError::Domain(d @ DomainError::NotFound { .. }) => {
            Err(PageError::from_core(lang, CoreError::Domain(d)))
        }
        CoreError::Domain(d) => {
            let message = d.to_string();
            Ok(match d.field() {
                Some(f) => (Some((f.to_string(), message)), None),
                None => (None, Some(message)),
            })
        }
        other => Err(PageError::from_core(lang, other)),
    }
}

/// 422 for what the input breaks (a field named), 409 for what it meets in stored state.
fn status_of(e: &Option<FieldMessage>) -> StatusCode {
    if e.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CONFLICT
    }
}

/// `GET /{entity}/new`.
pub async fn new_form(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let entity = page_entity(&user, &entity)?;
    if !user.actor.can_any(entity, Action::Create) {
        return Err(PageError::forbidden(lang));
    }
    let form = new_view(&state, &user, entity).await?;
    let mut values: HashMap<String, String> = form
        .fields
        .iter()
        .filter_map(|f| {
            f.default
                .as_ref()
                .map(|d| (f.name.clone(), field_text(f, Some(d))))
        })
        .collect();
    // Fields given in the address (`/contacts/new?company_id=…` from a company's page).
    for (k, v) in query_map(lang, raw.as_deref())? {
        if form.fields.iter().any(|f| f.name == k) {
            values.insert(k, v);
        }
    }
    if entity == Entity::Invoices && !values.contains_key(SELLER) {
        if let Some(seller) = last_seller(&state, &user).await? {
            values.insert(SELLER.to_string(), seller);
        }
    }
    refs::show_names(&state, &user, &form.fields, &mut values).await?;
    Ok(form.show(&values))
}

/// An invoice's seller: our own company, a company record.
const SELLER: &str = "seller_id";

/// The seller of the newest invoice the user may read (a new invoice is most likely from the
/// same company of ours).
async fn last_seller(state: &AppState, user: &WebUser) -> Result<Option<String>, PageError> {
    let params = kontor_core::list::ListParams {
        limit: Some(1),
        ..Default::default()
    };
    let page = state
        .kontor
        .list(&user.actor, Entity::Invoices, &params)
        .await
        .map_err(|e| PageError::from_core(user.lang, e))?;
    Ok(page
        .items
        .first()
        .and_then(|i| i.get(SELLER))
        .and_then(Value::as_str)
        .map(str::to_string))
}

/// The form that creates a record of `entity`.
async fn new_view<'a>(
    state: &AppState,
    user: &'a WebUser,
    entity: Entity,
) -> Result<FormView<'a>, PageError> {
    let lang = user.lang;
    let schema = schema_of(state, lang, entity).await?;
    Ok(FormView {
        user,
        entity,
        title: format!("{} · {}", lang.entity(entity), lang.t("form.new")),
        action: format!("/{}/new", entity.as_str()),
        fields: form_fields(user, entity, &schema, false),
        role_schemas: role_schemas(state, user, entity).await?,
        role_names: role_names(state, user, entity).await?,
    })
}

/// The form that edits `rec`.
async fn edit_view<'a>(
    state: &AppState,
    user: &'a WebUser,
    entity: Entity,
    rec: &kontor_domain::record::Record,
) -> Result<FormView<'a>, PageError> {
    let schema = schema_of(state, user.lang, entity).await?;
    Ok(FormView {
        user,
        entity,
        title: title_of(&rec.data, &rec.id),
        action: format!("/{}/{}/edit", entity.as_str(), rec.id),
        fields: form_fields(user, entity, &schema, true),
        role_schemas: role_schemas(state, user, entity).await?,
        role_names: role_names(state, user, entity).await?,
    })
}

/// The roles a user's form offers: the built-in ones and every live custom role.
async fn role_names(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
) -> Result<Vec<String>, PageError> {
    if entity != Entity::Users {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = BUILTIN_ROLES.iter().map(|r| r.to_string()).collect();
    let params = kontor_core::list::ListParams {
        limit: Some(ROLES_OFFERED),
        ..Default::default()
    };
    let page = state
        .kontor
        .list(&user.actor, Entity::Roles, &params)
        .await
        .map_err(|e| PageError::from_core(user.lang, e))?;
    let mut custom: Vec<String> = page
        .items
        .iter()
        .filter_map(|r| r.get("name")?.as_str().map(str::to_string))
        .collect();
    custom.sort();
    names.extend(custom);
    Ok(names)
}

/// Custom roles a user's form offers (a value typed through the API is kept beyond these).
const ROLES_OFFERED: u32 = 500;

/// The schemas a role's matrix lists, custom fields included (none for other forms).
async fn role_schemas(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
) -> Result<Vec<Schema>, PageError> {
    let mut out = Vec::new();
    if entity == Entity::Roles {
        for e in Entity::CRM {
            out.push(schema_of(state, user.lang, e).await?);
        }
    }
    Ok(out)
}

/// `POST /{entity}/new`: creates the record, then shows it; or the form again, as typed.
pub async fn create(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(entity): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let entity = page_entity(&user, &entity)?;
    let mut shown: HashMap<String, String> = form.into_iter().collect();
    user.check_csrf(shown.get("csrf").map(String::as_str).unwrap_or(""))?;
    let form = new_view(&state, &user, entity).await?;
    let values = match refs::resolve(&state, &user, &form.fields, &mut shown).await? {
        Ok(values) => values,
        Err(u) => return Ok(form.unresolved(&shown, u)),
    };
    let mut input = Map::new();
    if entity == Entity::Roles {
        input.extend(roles::documents_of(&values));
    }
    for f in &form.fields {
        if is_role_document(entity, &f.name) {
            continue;
        }
        if matches!(f.ty, FieldType::Rows(_)) {
            if let Some(rows) = rows_from_form(f, &values).filter(|r| !r.is_empty()) {
                input.insert(f.name.clone(), Value::Array(rows));
            }
        } else if let Some(v) = values.get(&f.name).and_then(|t| as_input(f, t)) {
            input.insert(f.name.clone(), v);
        }
    }
    let written = if entity == Entity::Users {
        // A user is made with a password, as the API's and the CLI's are.
        let password = values.get(PASSWORD).map(String::as_str).unwrap_or("");
        state
            .kontor
            .add_user(&user.actor, Origin::Web, input, password)
            .await
            .map(|r| r.id)
    } else {
        state
            .kontor
            .write(
                &user.actor,
                Origin::Web,
                vec![Mutation::Create {
                    entity,
                    input: Value::Object(input),
                }],
            )
            .await
            .map(|applied| {
                applied
                    .records
                    .first()
                    .and_then(|r| r.as_ref())
                    .map(|r| r.id.clone())
                    .unwrap_or_default()
            })
    };
    match written {
        Ok(id) => Ok(Redirect::to(&format!("/{}/{id}", entity.as_str())).into_response()),
        Err(e) => form.refused(&shown, e),
    }
}

/// `GET /{entity}/{id}/edit`.
pub async fn edit_form(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let (entity, rec) = record_at(&state, &user, &entity, &id).await?;
    if !user
        .actor
        .can(entity, Action::Update, rec.owner_id.as_deref())
    {
        return Err(PageError::forbidden(lang));
    }
    let form = edit_view(&state, &user, entity, &rec).await?;
    let mut values = HashMap::new();
    if entity == Entity::Roles {
        roles::values_of(&rec.data, &mut values);
    }
    for f in &form.fields {
        if is_role_document(entity, &f.name) {
            continue;
        }
        if matches!(f.ty, FieldType::Rows(_)) {
            rows_as_texts(f, rec.data.get(&f.name), &mut values);
        } else {
            values.insert(f.name.clone(), field_text(f, rec.data.get(&f.name)));
        }
    }
    refs::show_names(&state, &user, &form.fields, &mut values).await?;
    Ok(form.show(&values))
}

/// `POST /{entity}/{id}/edit`: the fields that differ from the record change (an emptied
/// field is cleared); then the record, or the form again, as typed.
pub async fn update(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path((entity, id)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut shown: HashMap<String, String> = form.into_iter().collect();
    user.check_csrf(shown.get("csrf").map(String::as_str).unwrap_or(""))?;
    let (entity, rec) = record_at(&state, &user, &entity, &id).await?;
    let form = edit_view(&state, &user, entity, &rec).await?;
    let values = match refs::resolve(&state, &user, &form.fields, &mut shown).await? {
        Ok(values) => values,
        Err(u) => return Ok(form.unresolved(&shown, u)),
    };
    let mut input = Map::new();
    if entity == Entity::Roles {
        let documents = roles::documents_of(&values);
        if !roles::same_rules(&rec.data, &documents) {
            input.extend(documents);
        }
    }
    for f in &form.fields {
        if is_role_document(entity, &f.name) {
            continue;
        }
        if matches!(f.ty, FieldType::Rows(_)) {
            // The rows as the form has them now, compared without the computed columns.
            let Some(rows) = rows_from_form(f, &values) else {
                continue;
            };
            let cols = row_columns(f);
            let stored: Vec<Value> = match rec.data.get(&f.name) {
                Some(Value::Array(rows)) => rows
                    .iter()
                    .map(|r| {
                        let kept: Map<String, Value> = cols
                            .iter()
                            .filter_map(|c| {
                                let v = r.get(&c.name)?;
                                as_input(c, &as_text(Some(v))).map(|v| (c.name.clone(), v))
                            })
                            .collect();
                        Value::Object(kept)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if rows != stored {
                input.insert(f.name.clone(), Value::Array(rows));
            }
            continue;
        }
        let Some(text) = values.get(&f.name) else {
            continue;
        };
        if text.trim() == field_text(f, rec.data.get(&f.name)).trim() {
            continue;
        }
        input.insert(f.name.clone(), as_input(f, text).unwrap_or(Value::Null));
    }
    let path = format!("/{}/{}", entity.as_str(), rec.id);
    if entity == Entity::Users {
        // An admin's change of a user: a new password (when typed) in the same batch; a
        // password change or disabling ends the user's sessions.
        let password = values
            .get(PASSWORD)
            .map(|p| p.as_str())
            .filter(|p| !p.is_empty());
        if input.is_empty() && password.is_none() {
            return Ok(Redirect::to(&path).into_response());
        }
        return match state
            .kontor
            .update_user(&user.actor, Origin::Web, &rec.id, input, password)
            .await
        {
            Ok(_) => Ok(Redirect::to(&path).into_response()),
            Err(e) => form.refused(&shown, e),
        };
    }
    if input.is_empty() {
        return Ok(Redirect::to(&path).into_response());
    }
    let written = state
        .kontor
        .write(
            &user.actor,
            Origin::Web,
            vec![Mutation::Update {
                entity,
                id: rec.id.clone(),
                input: Value::Object(input),
            }],
        )
        .await;
    match written {
        Ok(_) => Ok(Redirect::to(&path).into_response()),
        Err(e) => form.refused(&shown, e),
    }
}

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /{entity}/{id}/delete`: to the recycle bin (with what cascades from it), then the list,
/// which says until when it can be restored.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path((entity, id)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, PageError> {
    let lang = user.lang;
    let entity = page_entity(&user, &entity)?;
    let id = kontor_domain::record::parse_id(&id).ok_or_else(|| PageError::not_found(lang))?;
    user.check_csrf(&form.csrf)?;
    state
        .kontor
        .write(
            &user.actor,
            Origin::Web,
            vec![Mutation::Delete {
                entity,
                id: id.clone(),
            }],
        )
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    if entity == Entity::Users {
        // As the API does: a deleted user's sessions end with it.
        state
            .kontor
            .store
            .revoke_user_sessions(&id)
            .await
            .map_err(|e| PageError::from_core(lang, e.into()))?;
    }
    Ok(Redirect::to(&format!("/{}?deleted={id}", entity.as_str())).into_response())
}

/// Until when a record deleted now can be restored (`None`: it stays until an admin purges it).
pub fn restorable_until(state: &AppState, lang: Lang, deleted_at: &str) -> Option<String> {
    let days = state.kontor.settings.trash_retention_days;
    if days == 0 {
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc3339(deleted_at).ok()?;
    let until = at + chrono::Duration::days(i64::from(days));
    Some(lang.time(&until.to_rfc3339()))
}
