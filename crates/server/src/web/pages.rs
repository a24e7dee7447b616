//! The pages: the overview, a list of any entity (filters, sort, keyset paging, search within
//! the list) and a record (its fields, related records, history). Every read goes through the
//! same core calls as the API, as the logged-in user, so a page shows exactly what the API
//! would.

use super::i18n::Lang;
use super::labels;
use super::layout::{self, NAV};
use super::session::WebUser;
use super::PageError;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use kontor_core::list::ListParams;
use kontor_core::read::HistoryParams;
use kontor_domain::permission::Action;
use kontor_domain::schema::{FieldDef, FieldType, Schema};
use kontor_domain::Entity;
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Rows on one list page.
const PAGE_ROWS: u32 = 50;
/// Columns a list shows: the first fields of the entity that fit in a cell.
const LIST_COLUMNS: usize = 5;
/// Related records shown per kind on a record page.
const RELATED_ROWS: u32 = 10;

/// `GET /`: the entities the user may read.
pub async fn home(user: WebUser) -> Markup {
    let lang = user.lang;
    layout::page(
        &user,
        lang.t("home"),
        None,
        html! {
            h1 { (lang.t("home")) }
            p class="muted" { (lang.t("home.lead")) }
            ul {
                @for e in NAV {
                    @if user.actor.can_any(e, Action::Read) {
                        li { a href={ "/" (e.as_str()) } { (lang.entity(e)) } }
                    }
                }
            }
        },
    )
}

/// The entity of a page's path: the CRM entities, and the users and settings an admin keeps.
pub fn page_entity(user: &WebUser, name: &str) -> Result<Entity, PageError> {
    let entity = NAV
        .into_iter()
        .chain(layout::settings())
        .find(|e| e.as_str() == name)
        .ok_or_else(|| PageError::not_found(user.lang))?;
    // As the API's user routes: only admins manage users.
    if entity == Entity::Users && !user.actor.is_admin() {
        return Err(PageError::forbidden(user.lang));
    }
    Ok(entity)
}

/// An entity's schema, custom fields included.
pub async fn schema_of(state: &AppState, lang: Lang, entity: Entity) -> Result<Schema, PageError> {
    state
        .kontor
        .schema(entity)
        .await
        .map_err(|e| PageError::from_core(lang, e))
}

/// The record a page's path names (`/{entity}/{id}`), as the user may read it.
pub async fn record_at(
    state: &AppState,
    user: &WebUser,
    entity: &str,
    id: &str,
) -> Result<(Entity, kontor_domain::record::Record), PageError> {
    let lang = user.lang;
    let entity = page_entity(user, entity)?;
    let id = kontor_domain::record::parse_id(id).ok_or_else(|| PageError::not_found(lang))?;
    let rec = state
        .kontor
        .get(&user.actor, entity, &id)
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    Ok((entity, rec))
}

/// Fields that fit in a list cell or a line of the record page.
fn is_scalar(def: &FieldDef) -> bool {
    !matches!(
        def.ty,
        FieldType::LongText
            | FieldType::List(_)
            | FieldType::Rows(_)
            | FieldType::Object
            | FieldType::LinkedRef { .. }
    )
}

/// A short name for a record: its name, title or number, a person's name, else its e-mail.
pub fn title_of(data: &Map<String, Value>, id: &str) -> String {
    let s = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(t) = s("name").or_else(|| s("title")).or_else(|| s("number")) {
        return t.to_string();
    }
    let person: Vec<&str> = ["last_name", "first_name", "middle_name"]
        .iter()
        .filter_map(|k| s(k))
        .collect();
    if !person.is_empty() {
        return person.join(" ");
    }
    s("email")
        .map(str::to_string)
        .unwrap_or_else(|| id.chars().take(8).collect())
}

/// The titles of the records the `refs` name, for those the user may read.
async fn ref_titles(
    state: &AppState,
    user: &WebUser,
    refs: HashMap<Entity, BTreeSet<String>>,
) -> Result<HashMap<String, String>, PageError> {
    let mut titles = HashMap::new();
    for (entity, ids) in refs {
        let ids: Vec<String> = ids.into_iter().collect();
        let records = state
            .kontor
            .store
            .get_many(entity, &ids)
            .await
            .map_err(|e| PageError::from_core(user.lang, e.into()))?;
        for r in records {
            if !r.is_deleted() && user.actor.can(entity, Action::Read, r.owner_id.as_deref()) {
                titles.insert(r.id.clone(), title_of(&r.data, &r.id));
            }
        }
    }
    Ok(titles)
}

/// The references among `fields` in `rows`, by the entity they point to.
fn refs_in<'a>(
    fields: &[&FieldDef],
    rows: impl Iterator<Item = &'a Map<String, Value>>,
) -> HashMap<Entity, BTreeSet<String>> {
    let mut refs: HashMap<Entity, BTreeSet<String>> = HashMap::new();
    for row in rows {
        for f in fields {
            if let (FieldType::Ref(target), Some(Value::String(id))) = (&f.ty, row.get(&f.name)) {
                refs.entry(*target).or_default().insert(id.clone());
            }
        }
    }
    refs
}

/// A field's value as text for a page.
fn cell(lang: Lang, def: &FieldDef, v: &Value, titles: &HashMap<String, String>) -> Markup {
    match (&def.ty, v) {
        (_, Value::Null) => html! {},
        (FieldType::Ref(target), Value::String(id)) => match titles.get(id) {
            Some(t) => html! { a href={ "/" (target.as_str()) "/" (id) } { (t) } },
            None => html! { span class="muted" { (id.chars().take(8).collect::<String>()) "…" } },
        },
        (FieldType::Bool, Value::Bool(b)) => html! { (lang.t(if *b { "yes" } else { "no" })) },
        (FieldType::DateTime, Value::String(t)) => html! { (lang.time(t)) },
        (FieldType::Money { .. } | FieldType::Decimal { .. }, Value::String(d)) => {
            html! { (lang.decimal(d)) }
        }
        (FieldType::Email, Value::String(e)) => html! { a href={ "mailto:" (e) } { (e) } },
        (FieldType::Phone, Value::String(p)) => html! { a href={ "tel:" (p) } { (p) } },
        (_, Value::String(s)) => html! { (s) },
        (_, Value::Array(items)) => html! {
            @for (i, item) in items.iter().enumerate() {
                @if i > 0 { ", " }
                (plain(item))
            }
        },
        (_, other) => html! { (plain(other)) },
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(m) => m
            .values()
            .filter(|v| !v.is_null())
            .map(plain)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The query pairs of a list page: what the list core takes, and what its links keep.
struct ListQuery {
    q: String,
    sort: String,
    order: String,
    cursor: Option<String>,
    filters: Vec<(String, String)>,
    /// A record just moved to the bin from this list (`?deleted=ID`), to say so.
    deleted: Option<String>,
}

impl ListQuery {
    fn parse(lang: Lang, raw: Option<&str>) -> Result<ListQuery, PageError> {
        let pairs = crate::extract::serde_urlencoded_pairs(raw.unwrap_or(""))
            .ok_or_else(|| PageError::bad_request(lang, "the query string is malformed"))?;
        let mut q = ListQuery {
            q: String::new(),
            sort: String::new(),
            order: String::new(),
            cursor: None,
            filters: Vec::new(),
            deleted: None,
        };
        for (k, v) in pairs {
            match k.as_str() {
                "q" => q.q = v.trim().to_string(),
                "sort" => q.sort = v,
                "order" => q.order = v,
                "cursor" => q.cursor = Some(v).filter(|c| !c.is_empty()),
                "deleted" => q.deleted = kontor_domain::record::parse_id(&v),
                _ if v.is_empty() => {}
                _ => q.filters.push((k, v)),
            }
        }
        Ok(q)
    }

    fn params(&self) -> ListParams {
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
        ListParams {
            limit: Some(PAGE_ROWS),
            cursor: self.cursor.clone(),
            q: opt(&self.q),
            sort: opt(&self.sort),
            order: opt(&self.order),
            count: self.cursor.is_none(),
            // A page does not wait for a count of a million: "more than 10,000" will do.
            count_bounded: true,
            filters: self.filters.clone(),
        }
    }

    /// The address of this list with another cursor (none: the first page).
    fn url(&self, entity: Entity, cursor: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (k, v) in [("q", &self.q), ("sort", &self.sort), ("order", &self.order)] {
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        for (k, v) in &self.filters {
            pairs.push((k, v));
        }
        if let Some(c) = cursor {
            pairs.push(("cursor", c));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            format!("/{}", entity.as_str())
        } else {
            format!("/{}?{query}", entity.as_str())
        }
    }
}

/// `GET /{entity}`: a page of the list, as `GET /api/v1/{entity}` would give it.
pub async fn list(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(entity): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let entity = page_entity(&user, &entity)?;
    let query = ListQuery::parse(lang, raw.as_deref())?;
    let schema = schema_of(&state, lang, entity).await?;
    let visible = user.actor.visible_schema(&schema);
    let page = state
        .kontor
        .list(&user.actor, entity, &query.params())
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    let columns: Vec<&FieldDef> = visible
        .fields
        .iter()
        .filter(|f| is_scalar(f))
        .take(LIST_COLUMNS)
        .collect();
    let rows: Vec<&Map<String, Value>> = page.items.iter().filter_map(Value::as_object).collect();
    let titles = ref_titles(&state, &user, refs_in(&columns, rows.iter().copied())).await?;
    let sortable: Vec<&FieldDef> = visible.fields.iter().filter(|f| f.filterable).collect();
    let filtered = !query.q.is_empty() || !query.filters.is_empty();
    let deleted_notice = match &query.deleted {
        Some(id) => deleted_notice(&state, &user, entity, id).await,
        None => None,
    };
    let body = html! {
        h1 { (lang.entity(entity)) }
        @if let Some(n) = deleted_notice { (n) }
        @if user.actor.can_any(entity, Action::Create) {
            p { a class="button" href={ "/" (entity.as_str()) "/new" } { (lang.t("form.new")) } }
        }
        form class="filters" method="get" action={ "/" (entity.as_str()) } data-live="results" {
            label { (lang.t("search"))
                input type="search" name="q" value=(query.q);
            }
            label { (lang.t("list.sort"))
                select name="sort" {
                    option value="" selected[query.sort.is_empty()] { "—" }
                    @for (name, label) in [("created_at", lang.t("record.created")), ("updated_at", lang.t("record.updated"))] {
                        option value=(name) selected[query.sort == name] { (label) }
                    }
                    @for f in &sortable {
                        option value=(f.name) selected[query.sort == f.name] { (labels::field(lang, f)) }
                    }
                }
            }
            label { (lang.t("list.order"))
                select name="order" {
                    option value="" selected[query.order.is_empty()] { "—" }
                    option value="asc" selected[query.order == "asc"] { (lang.t("list.asc")) }
                    option value="desc" selected[query.order == "desc"] { (lang.t("list.desc")) }
                }
            }
            @for (k, v) in &query.filters {
                input type="hidden" name=(k) value=(v);
            }
            button type="submit" { (lang.t("list.apply")) }
        }
        div id="results" aria-live="polite" {
        @if let Some(total) = page.total.and_then(|t| t) {
            p class="muted" {
                @if total.total_is_lower_bound { (lang.t("list.more_than")) " " }
                @else if total.total_is_estimate { (lang.t("list.about")) " " }
                (lang.records(total.total, total.total_is_lower_bound || total.total_is_estimate))
            }
        }
        @if rows.is_empty() {
            p { (lang.t(if filtered { "list.no_match" } else { "list.empty" })) }
        } @else {
            table class="list" {
                thead { tr {
                    @for c in &columns { th scope="col" { (labels::field(lang, c)) } }
                } }
                tbody {
                    @for row in &rows {
                        @let id = row.get("id").and_then(Value::as_str).unwrap_or("");
                        tr {
                            @for (i, c) in columns.iter().enumerate() {
                                td {
                                    @if i == 0 {
                                        a href={ "/" (entity.as_str()) "/" (id) } {
                                            @let v = row.get(&c.name).map(plain).unwrap_or_default();
                                            @if v.is_empty() { (title_of(row, id)) } @else { (v) }
                                        }
                                    } @else {
                                        (cell(lang, c, row.get(&c.name).unwrap_or(&Value::Null), &titles))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav class="pager" {
            @if query.cursor.is_some() {
                a href=(query.url(entity, None)) { (lang.t("list.first")) }
            }
            @if let Some(next) = &page.next_cursor {
                a href=(query.url(entity, Some(next))) rel="next" { (lang.t("list.next")) }
            }
        }
        }
    };
    Ok(layout::page(&user, lang.entity(entity), Some(entity), body))
}

/// A rows field (invoice lines, addresses) as a table, computed columns included.
pub fn rows_table(
    lang: Lang,
    def: &FieldDef,
    rows: &[Value],
    titles: &HashMap<String, String>,
) -> Markup {
    let FieldType::Rows(cols) = &def.ty else {
        return html! {};
    };
    // Columns no row fills are left out.
    let shown: Vec<&FieldDef> = cols
        .iter()
        .filter(|c| {
            rows.iter()
                .any(|r| r.get(&c.name).is_some_and(|v| !v.is_null()))
        })
        .collect();
    html! {
        table class="list rows" {
            caption { (labels::field(lang, def)) }
            thead { tr { @for c in &shown { th scope="col" { (labels::field(lang, c)) } } } }
            tbody {
                @for r in rows {
                    tr { @for c in &shown {
                        td class=[matches!(c.ty, FieldType::Money { .. } | FieldType::Decimal { .. }).then_some("num")] {
                            (cell(lang, c, r.get(&c.name).unwrap_or(&Value::Null), titles))
                        }
                    } }
                }
            }
        }
    }
}

/// Whether an invoice is in each 1C database Kontor exchanges with: sent when its last change
/// is at or before the position that database confirmed, or when that change came from 1C.
async fn invoice_1c(
    state: &AppState,
    lang: Lang,
    invoice: &Map<String, Value>,
    last: Option<&kontor_core::read::HistoryItem>,
) -> Markup {
    let databases = state
        .kontor
        .store
        .list(&kontor_store::ListQuery::all(
            Entity::OnecDatabases,
            None,
            20,
        ))
        .await
        .unwrap_or_default();
    let draft = invoice.get("status").and_then(Value::as_str) == Some("draft");
    html! {
        @if !databases.is_empty() {
            ul class="onec" {
                @for db in &databases {
                    @let name = db.data.get("name").and_then(Value::as_str).unwrap_or("1C");
                    @let sent_seq = db.data.get("invoices_sent_seq").and_then(Value::as_i64).unwrap_or(0);
                    @let sent_at = db.data.get("invoices_sent_at").and_then(Value::as_str).unwrap_or("");
                    @let in_1c = last.is_some_and(|h| h.seq <= sent_seq || h.origin == "exchange");
                    li {
                        (name) ": "
                        @if draft { (lang.t("invoice.draft_not_sent")) }
                        @else if in_1c {
                            (lang.t("invoice.in_1c"))
                            @if !sent_at.is_empty() { " (" (lang.time(sent_at)) ")" }
                        }
                        @else { (lang.t("invoice.not_yet_1c")) }
                        @if let Some(n) = invoice.get("number_1c").and_then(Value::as_str) {
                            " · " (lang.t("invoice.number_1c")) " " (n)
                        }
                    }
                }
            }
        }
    }
}

/// "Moved to the recycle bin; can be restored until …", for a record the user just deleted
/// (read from the bin, so it says what is true).
async fn deleted_notice(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
    id: &str,
) -> Option<Markup> {
    let lang = user.lang;
    let rec = state.kontor.store.get(entity, id).await.ok()??;
    let deleted = rec.deleted.as_ref()?;
    if !user
        .actor
        .can(entity, Action::Read, rec.owner_id.as_deref())
    {
        return None;
    }
    let at = kontor_domain::time::format(deleted.at);
    let until = super::forms::restorable_until(state, lang, &at);
    Some(html! {
        p class="notice" role="status" {
            strong { (title_of(&rec.data, &rec.id)) } " — " (lang.t("bin.moved")) " "
            @match until {
                Some(u) => { (lang.t("bin.until")) " " (u) ". " }
                None => { (lang.t("bin.kept")) " " }
            }
            a href={ "/trash?entity=" (entity.as_str()) } { (lang.t("bin.title")) }
        }
    })
}

/// `GET /{entity}/{id}`: the record's fields, its related records and its history.
pub async fn record(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let (entity, rec) = record_at(&state, &user, &entity, &id).await?;
    let id = rec.id.clone();
    let shown = kontor_core::read::present(&user.actor, &rec);
    let data = shown.as_object().cloned().unwrap_or_default();
    let schema = schema_of(&state, lang, entity).await?;
    let visible = user.actor.visible_schema(&schema);
    let fields: Vec<&FieldDef> = visible.fields.iter().collect();
    let mut refs = refs_in(&fields, std::iter::once(&data));
    if let Some(owner) = &rec.owner_id {
        refs.entry(Entity::Users).or_default().insert(owner.clone());
    }
    let history = state
        .kontor
        .history(
            &user.actor,
            &HistoryParams {
                entity: Some(entity.as_str().into()),
                record_id: Some(id.clone()),
                limit: Some(50),
                order: Some("desc".into()),
                ..HistoryParams::default()
            },
        )
        .await
        .map_err(|e| PageError::from_core(lang, e))?;
    for h in &history.items {
        refs.entry(Entity::Users)
            .or_default()
            .insert(h.actor.clone());
    }
    let titles = user_titles(&state, &user, refs).await?;
    let related = related(&state, &user, entity, &id).await?;
    let title = title_of(&data, &id);
    let body = html! {
        p class="muted" { a href={ "/" (entity.as_str()) } { (lang.entity(entity)) } }
        h1 { (title) }
        div class="actions" {
            @if user.actor.can(entity, Action::Update, rec.owner_id.as_deref()) {
                a class="button" href={ "/" (entity.as_str()) "/" (id) "/edit" } { (lang.t("form.edit")) }
            }
            @if user.actor.can(entity, Action::Delete, rec.owner_id.as_deref()) {
                form method="post" action={ "/" (entity.as_str()) "/" (id) "/delete" } {
                    input type="hidden" name="csrf" value=(user.csrf());
                    button type="submit" class="danger" aria-describedby="delete-promise" { (lang.t("form.delete")) }
                    span class="muted" id="delete-promise" {
                        " " (lang.t("bin.moves")) " "
                        @match super::forms::restorable_until(&state, lang, &kontor_domain::time::format(kontor_domain::time::now())) {
                            Some(u) => { (lang.t("bin.until")) " " (u) "." }
                            None => { (lang.t("bin.kept")) }
                        }
                    }
                }
            }
        }
        @if entity == Entity::Invoices {
            p { a href={ "/invoices/" (id) "/print" } { (lang.t("invoice.print")) } }
            (invoice_1c(&state, lang, &data, history.items.first()).await)
        }
        h2 { (lang.t("record.fields")) }
        @for f in fields.iter().filter(|f| matches!(f.ty, FieldType::Rows(_))) {
            @if let Some(Value::Array(rows)) = data.get(&f.name) {
                @if !rows.is_empty() { (rows_table(lang, f, rows, &titles)) }
            }
        }
        dl class="fields" {
            @for f in fields.iter().filter(|f| !matches!(f.ty, FieldType::Rows(_))) {
                @let v = data.get(&f.name).unwrap_or(&Value::Null);
                @if !v.is_null() && v != &Value::Array(vec![]) {
                    dt { (labels::field(lang, f)) }
                    dd { (cell(lang, f, v, &titles)) }
                }
            }
            @if let Some(owner) = &rec.owner_id {
                dt { (lang.t("record.owner")) }
                dd { (titles.get(owner).cloned().unwrap_or_else(|| owner.clone())) }
            }
            dt { (lang.t("record.created")) }
            dd { (lang.time(&kontor_domain::time::format(rec.created_at))) }
            dt { (lang.t("record.updated")) }
            dd { (lang.time(&kontor_domain::time::format(rec.updated_at))) }
        }
        @if !related.is_empty() {
            h2 { (lang.t("record.related")) }
            @for (e, via, rows) in &related {
                h3 { (lang.entity(*e)) }
                ul {
                    @for (rid, t) in rows {
                        li { a href={ "/" (e.as_str()) "/" (rid) } { (t) } }
                    }
                }
                p {
                    @if !rows.is_empty() {
                        a href={ "/" (e.as_str()) "?" (via) "=" (id) } { (lang.entity(*e)) " →" } " "
                    }
                    @if user.actor.can_any(*e, Action::Create) {
                        a class="button" href={ "/" (e.as_str()) "/new?" (via) "=" (id) } { (lang.t("form.new")) }
                    }
                }
            }
        }
        h2 { (lang.t("record.history")) }
        @if history.items.is_empty() {
            p class="muted" { (lang.t("record.no_history")) }
        } @else {
            ol class="timeline" {
                @for h in &history.items {
                    (super::history::entry(&user, h, titles.get(&h.actor).map(String::as_str).unwrap_or(&h.actor), false))
                }
            }
        }
    };
    Ok(layout::page(&user, &title, Some(entity), body))
}

/// Titles of referenced records, users among them (shown by e-mail, which any logged-in user
/// sees beside a record's owner, as the API's `owner_id` does not hide who it is).
async fn user_titles(
    state: &AppState,
    user: &WebUser,
    mut refs: HashMap<Entity, BTreeSet<String>>,
) -> Result<HashMap<String, String>, PageError> {
    let users = refs.remove(&Entity::Users).unwrap_or_default();
    let mut titles = ref_titles(state, user, refs).await?;
    let ids: Vec<String> = users.into_iter().collect();
    let records = state
        .kontor
        .store
        .get_many(Entity::Users, &ids)
        .await
        .map_err(|e| PageError::from_core(user.lang, e.into()))?;
    for r in records {
        if let Some(email) = r.data.get("email").and_then(Value::as_str) {
            titles.insert(r.id.clone(), email.to_string());
        }
    }
    Ok(titles)
}

/// Records of other entities that refer to this one by a filterable reference (a company's
/// contacts, deals, invoices), the first few of each, as the user may read them; an entity
/// the user may create records of is listed even with none yet (to make one from here).
async fn related(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
    id: &str,
) -> Result<Vec<(Entity, String, Vec<(String, String)>)>, PageError> {
    let mut out = Vec::new();
    for other in NAV {
        if !user.actor.can_any(other, Action::Read) {
            continue;
        }
        let schema: Schema = state
            .kontor
            .schema(other)
            .await
            .map_err(|e| PageError::from_core(user.lang, e))?;
        let via = schema.fields.iter().find(|f| {
            f.filterable
                && matches!(f.ty, FieldType::Ref(t) if t == entity)
                && !user.actor.is_hidden(other, &f.name)
        });
        let Some(via) = via else { continue };
        let params = ListParams {
            limit: Some(RELATED_ROWS),
            filters: vec![(via.name.clone(), id.to_string())],
            ..ListParams::default()
        };
        let page = state
            .kontor
            .list(&user.actor, other, &params)
            .await
            .map_err(|e| PageError::from_core(user.lang, e))?;
        let rows: Vec<(String, String)> = page
            .items
            .iter()
            .filter_map(Value::as_object)
            .filter_map(|r| {
                let rid = r.get("id")?.as_str()?.to_string();
                Some((rid.clone(), title_of(r, &rid)))
            })
            .collect();
        if !rows.is_empty() || user.actor.can_any(other, Action::Create) {
            out.push((other, via.name.clone(), rows));
        }
    }
    Ok(out)
}

#[derive(serde::Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /search?q=`: the global search, grouped by entity, as `GET /api/v1/search` gives it.
pub async fn search(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    axum::extract::Query(query): axum::extract::Query<SearchQuery>,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    let q = query.q.trim().to_string();
    let results = match (&state.http.search, q.is_empty()) {
        (Some(s), false) => Some(
            s.search(
                &state.kontor,
                &user.actor,
                &kontor_search::SearchParams {
                    q: q.clone(),
                    entities: Vec::new(),
                    limit: None,
                },
            )
            .await
            .map_err(|e| PageError::from_search(lang, e))?,
        ),
        _ => None,
    };
    let body = html! {
        h1 { (lang.t("search")) }
        form class="filters" method="get" action="/search" role="search" {
            label { (lang.t("search"))
                input type="search" name="q" value=(q) autofocus;
            }
            button type="submit" { (lang.t("search")) }
        }
        @if let Some(r) = &results {
            @if r.groups.is_empty() {
                p { (lang.t("list.no_match")) }
            }
            @for g in &r.groups {
                section {
                    h2 { (lang.entity(g.entity)) " "
                        span class="muted" { "(" (lang.count(g.total as u64)) ")" } }
                    ul {
                        @for item in &g.items {
                            li { a href={ "/" (g.entity.as_str()) "/" (item.id) } { (item.title) } }
                        }
                    }
                }
            }
        }
    };
    Ok(layout::page(&user, lang.t("search"), None, body))
}

/// A party of an invoice as its print names it: legal name, INN and KPP, legal address, and
/// for the seller the bank account to pay to (one in the invoice's currency first).
fn party(lang: Lang, label: &str, company: &Value, currency: &str, with_bank: bool) -> Markup {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
    };
    let name = s(company, "legal_name")
        .or_else(|| s(company, "name"))
        .unwrap_or_default();
    let rows = |k: &str| {
        company
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let addresses = rows("addresses");
    let address = addresses
        .iter()
        .find(|a| s(a, "kind").as_deref() == Some("legal"))
        .or_else(|| addresses.first())
        .and_then(|a| s(a, "text"));
    let accounts = rows("bank_accounts");
    let account = accounts
        .iter()
        .find(|a| s(a, "currency").as_deref() == Some(currency))
        .or_else(|| accounts.first())
        .filter(|_| with_bank);
    html! {
        section class="party" {
            p {
                strong { (label) ": " } (name)
                @for k in ["inn", "kpp"] {
                    @if let Some(v) = s(company, k) { ", " (labels::field_name(lang, k)) " " (v) }
                }
            }
            @if let Some(a) = address { p { (a) } }
            @if let Some(acc) = account {
                p {
                    @for k in ["account", "bank_name", "bik", "corr_account"] {
                        @if let Some(v) = s(acc, k) {
                            @if k != "account" { ", " }
                            (labels::field_name(lang, k)) " " (v)
                        }
                    }
                }
            }
        }
    }
}

/// `GET /invoices/{id}/print`: the invoice as a document to print (no navigation; the
/// browser's print command prints it as shown).
pub async fn print(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path((entity, id)): Path<(String, String)>,
) -> Result<Markup, PageError> {
    let lang = user.lang;
    if page_entity(&user, &entity)? != Entity::Invoices {
        return Err(PageError::not_found(lang));
    }
    let (_, rec) = record_at(&state, &user, &entity, &id).await?;
    let shown = kontor_core::read::present(&user.actor, &rec);
    let inv = shown.as_object().cloned().unwrap_or_default();
    let schema = schema_of(&state, lang, Entity::Invoices).await?;
    let visible = user.actor.visible_schema(&schema);
    let s = |k: &str| inv.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let currency = s("currency");
    let money = |k: &str| {
        let v = s(k);
        if v.is_empty() {
            String::new()
        } else {
            format!("{} {currency}", lang.decimal(&v))
        }
    };
    let mut parties = Vec::new();
    for (field, label) in [
        ("seller_id", "invoice.seller"),
        ("company_id", "invoice.buyer"),
    ] {
        if let Some(c) = inv.get(field).and_then(Value::as_str) {
            // A company the reader may not read is left out, as the API would.
            if let Ok(r) = state.kontor.get(&user.actor, Entity::Companies, c).await {
                parties.push((label, kontor_core::read::present(&user.actor, &r)));
            }
        }
    }
    let titles = ref_titles(
        &state,
        &user,
        refs_in(
            &visible.fields.iter().collect::<Vec<_>>(),
            std::iter::once(&inv),
        ),
    )
    .await?;
    let title = format!("{} {}", lang.t("invoice.title"), s("number"));
    let body = html! {
        main id="content" class="document" {
            h1 {
                (lang.t("invoice.title")) " " (s("number"))
                @if !s("issue_date").is_empty() { " " (lang.t("invoice.of")) " " (s("issue_date")) }
            }
            @for (label, company) in &parties {
                (party(lang, lang.t(label), company, &currency, *label == "invoice.seller"))
            }
            @if !s("due_date").is_empty() { p { (lang.t("invoice.due")) ": " (s("due_date")) } }
            @if let Some(lines) = visible.field("lines") {
                @if let Some(Value::Array(rows)) = inv.get("lines") { (rows_table(lang, lines, rows, &titles)) }
            }
            table class="totals" {
                tr { th scope="row" { (lang.t("invoice.subtotal")) } td class="num" { (money("subtotal")) } }
                tr { th scope="row" { (lang.t("invoice.vat")) } td class="num" { (money("vat_total")) } }
                tr { th scope="row" { (lang.t("invoice.total")) } td class="num" { strong { (money("total")) } } }
                @if !s("paid_amount").is_empty() && s("paid_amount") != "0.00" {
                    tr { th scope="row" { (lang.t("invoice.paid")) } td class="num" { (money("paid_amount")) } }
                }
            }
            @if inv.get("vat_included").and_then(Value::as_bool) == Some(true) {
                p class="muted" { (lang.t("invoice.vat_included")) }
            }
        }
    };
    Ok(layout::bare(lang, &title, body))
}
