//! Reference fields in forms (a contact's company, an invoice line's product): people choose a
//! record by its name, never by its id.
//!
//! A reference input shows the name of the record it points to, with that record's id in a
//! hidden `ref-<field>` input beside it. On submit ([`resolve`]) the typed text becomes an id:
//! the kept id when the text is still that record's name, an id typed as such, or the one
//! record the reader may see whose name matches. No match, or several, is a refusal beside the
//! field — several come with a choice of the matches (radio buttons, so it works without a
//! script). With the script, the input suggests names as one types (`GET /suggest/{entity}`)
//! and a chosen suggestion sets the hidden id.

use super::i18n::Lang;
use super::pages::{page_entity, title_of};
use super::session::WebUser;
use super::PageError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use kontor_core::list::ListParams;
use kontor_domain::permission::Action;
use kontor_domain::record::parse_id;
use kontor_domain::schema::{FieldDef, FieldType};
use kontor_domain::Entity;
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// How many names the script suggests as one types.
const SUGGESTIONS: u32 = 8;
/// How many matches a refused name offers to choose from.
const CANDIDATES: u32 = 6;
/// Fields that tell namesakes apart, the first one a record has.
const DETAILS: [&str; 6] = ["inn", "email", "city", "sku", "phone", "number"];

/// A record to choose: its id and how it is shown (its name, and a detail when it has one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Choice {
    pub id: String,
    pub text: String,
}

/// A record's name with a detail that tells it from a namesake: "Acme — 7707083893".
pub fn choice_text(data: &Map<String, Value>, id: &str) -> String {
    let title = title_of(data, id);
    let detail = DETAILS.iter().find_map(|k| {
        data.get(*k)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && *v != title)
    });
    match detail {
        Some(d) => format!("{title} — {d}"),
        None => title,
    }
}

#[derive(serde::Deserialize)]
pub struct SuggestQuery {
    #[serde(default)]
    q: String,
}

/// `GET /suggest/{entity}?q=`: the records of `entity` the user may read whose name matches,
/// best first, as JSON `[{"id", "text"}]` (what the form script offers as one types).
pub async fn suggest(
    State(state): State<Arc<AppState>>,
    user: WebUser,
    Path(entity): Path<String>,
    Query(query): Query<SuggestQuery>,
) -> Result<Json<Vec<Choice>>, PageError> {
    let entity = page_entity(&user, &entity)?;
    if !user.actor.can_any(entity, Action::Read) {
        return Err(PageError::forbidden(user.lang));
    }
    Ok(Json(
        matching(&state, &user, entity, &query.q, SUGGESTIONS).await?,
    ))
}

/// The best `limit` records of `entity` that `q` matches, as the user may see them.
async fn matching(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
    q: &str,
    limit: u32,
) -> Result<Vec<Choice>, PageError> {
    let q = q.trim();
    if q.is_empty() || !user.actor.can_any(entity, Action::Read) {
        return Ok(Vec::new());
    }
    let params = ListParams {
        q: Some(q.to_string()),
        limit: Some(limit),
        ..Default::default()
    };
    let page = state
        .kontor
        .list(&user.actor, entity, &params)
        .await
        .map_err(|e| PageError::from_core(user.lang, e))?;
    Ok(page
        .items
        .iter()
        .filter_map(Value::as_object)
        .filter_map(|r| {
            let id = r.get("id")?.as_str()?;
            Some(Choice {
                id: id.to_string(),
                text: choice_text(r, id),
            })
        })
        .collect())
}

/// The reference inputs of a form, by form key (`company_id`, `lines[0].product_id`), with
/// the entity each points to (for a linked reference, the one its sibling field names).
fn ref_keys(fields: &[FieldDef], values: &HashMap<String, String>) -> Vec<(String, Entity)> {
    let mut out = Vec::new();
    for f in fields {
        match &f.ty {
            FieldType::Rows(cols) => {
                for c in cols {
                    if let FieldType::Ref(target) = c.ty {
                        let suffix = format!("].{}", c.name);
                        let prefix = format!("{}[", f.name);
                        out.extend(
                            values
                                .keys()
                                .filter(|k| k.starts_with(&prefix) && k.ends_with(&suffix))
                                .map(|k| (k.clone(), target)),
                        );
                    }
                }
            }
            ty => {
                if let Some(target) = target_of(ty, values) {
                    out.push((f.name.clone(), target));
                }
            }
        }
    }
    out
}

/// The entity a top-level reference field points to, as the form has it now.
pub fn target_of(ty: &FieldType, values: &HashMap<String, String>) -> Option<Entity> {
    match ty {
        FieldType::Ref(target) => Some(*target),
        FieldType::LinkedRef { entity_field } => values.get(*entity_field)?.parse().ok(),
        _ => None,
    }
}

/// Whether two names are the same but for letter case (in any script).
fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// The name of the hidden input that keeps the id a reference input shows the name of.
pub fn kept_key(key: &str) -> String {
    format!("ref-{key}")
}

/// The name of the hidden input that says the kept id was chosen from a refusal's matches
/// (so it stands whatever the text says).
fn chosen_key(key: &str) -> String {
    format!("chose-{key}")
}

/// The live records behind `ids` that the user may read, by id.
async fn readable(
    state: &AppState,
    user: &WebUser,
    entity: Entity,
    ids: &[String],
) -> Result<HashMap<String, Map<String, Value>>, PageError> {
    let records = state
        .kontor
        .store
        .get_many(entity, ids)
        .await
        .map_err(|e| PageError::from_core(user.lang, e.into()))?;
    Ok(records
        .into_iter()
        .filter(|r| !r.is_deleted() && user.actor.can(entity, Action::Read, r.owner_id.as_deref()))
        .map(|r| (r.id.clone(), r.data))
        .collect())
}

/// Before a stored record's form is shown: each reference's id becomes the name of the record
/// it points to, the id kept in the hidden input (an id the user may not read stays an id).
pub async fn show_names(
    state: &AppState,
    user: &WebUser,
    fields: &[FieldDef],
    values: &mut HashMap<String, String>,
) -> Result<(), PageError> {
    let mut by_entity: HashMap<Entity, Vec<(String, String)>> = HashMap::new();
    for (key, target) in ref_keys(fields, values) {
        if let Some(id) = values.get(&key).and_then(|v| parse_id(v.trim())) {
            by_entity.entry(target).or_default().push((key, id));
        }
    }
    for (entity, keyed) in by_entity {
        let ids: Vec<String> = keyed.iter().map(|(_, id)| id.clone()).collect();
        let found = readable(state, user, entity, &ids).await?;
        for (key, id) in keyed {
            if let Some(data) = found.get(&id) {
                values.insert(key.clone(), title_of(data, &id));
                values.insert(kept_key(&key), id);
            }
        }
    }
    Ok(())
}

/// A name that stands for no record, or for several: which field, what was typed, and the
/// matches to choose from.
#[derive(Debug)]
pub struct Unresolved {
    pub key: String,
    pub entity: Entity,
    pub typed: String,
    pub candidates: Vec<Choice>,
}

impl Unresolved {
    /// The refusal's message beside the field.
    pub fn message(&self, lang: Lang) -> String {
        let key = if self.candidates.is_empty() {
            "ref.none"
        } else {
            "ref.several"
        };
        format!("{} “{}”", lang.t(key), self.typed)
    }

    /// The matches as radio buttons carrying the kept id (shown below the field).
    pub fn choose(&self, lang: Lang) -> Markup {
        html! {
            @if !self.candidates.is_empty() {
                fieldset class="choose" {
                    legend { (lang.t("ref.choose")) " (" (lang.entity(self.entity)) ")" }
                    input type="hidden" name=(chosen_key(&self.key)) value="1";
                    @for (i, c) in self.candidates.iter().enumerate() {
                        @let id = format!("c-{}-{i}", self.key);
                        div {
                            input type="radio" id=(id) name=(kept_key(&self.key)) value=(c.id);
                            label for=(id) { (c.text) }
                        }
                    }
                }
            }
        }
    }
}

/// After a submit: the form's values with every reference's typed name replaced by the id it
/// stands for. `shown` (what the form shows again after a refusal) gets the names of the
/// records found and their kept ids. The first name that stands for no single record is
/// returned instead.
pub async fn resolve(
    state: &AppState,
    user: &WebUser,
    fields: &[FieldDef],
    shown: &mut HashMap<String, String>,
) -> Result<Result<HashMap<String, String>, Unresolved>, PageError> {
    let mut submitted = shown.clone();
    for (key, target) in ref_keys(fields, shown) {
        let typed = shown
            .get(&key)
            .map(|v| v.trim().to_string())
            .unwrap_or_default();
        if typed.is_empty() {
            continue;
        }
        if let Some(id) = parse_id(&typed) {
            submitted.insert(key, id);
            continue;
        }
        // Still the name of the record the form showed (or one chosen from the matches).
        if let Some(kept) = shown.get(&kept_key(&key)).and_then(|v| parse_id(v.trim())) {
            let found = readable(state, user, target, std::slice::from_ref(&kept)).await?;
            if let Some(data) = found.get(&kept) {
                let names = [title_of(data, &kept), choice_text(data, &kept)];
                let chosen_from_matches = shown.contains_key(&chosen_key(&key));
                if chosen_from_matches || names.iter().any(|n| same_name(n, &typed)) {
                    shown.insert(key.clone(), names[0].clone());
                    submitted.insert(key, kept);
                    continue;
                }
            }
        }
        let candidates = matching(state, user, target, &typed, CANDIDATES).await?;
        let exact: Vec<&Choice> = candidates
            .iter()
            .filter(|c| {
                same_name(&c.text, &typed)
                    || c.text
                        .split(" — ")
                        .next()
                        .is_some_and(|t| same_name(t, &typed))
            })
            .collect();
        let pick = match (exact.as_slice(), candidates.as_slice()) {
            ([one], _) => Some((*one).clone()),
            ([], [one]) => Some(one.clone()),
            _ => None,
        };
        match pick {
            Some(c) => {
                shown.insert(
                    key.clone(),
                    c.text.split(" — ").next().unwrap_or("").to_string(),
                );
                shown.insert(kept_key(&key), c.id.clone());
                submitted.insert(key, c.id);
            }
            None => {
                shown.remove(&kept_key(&key));
                return Ok(Err(Unresolved {
                    key,
                    entity: target,
                    typed,
                    candidates,
                }));
            }
        }
    }
    Ok(Ok(submitted))
}

/// A reference input: the name shown, the kept id beside it, and the list the script fills
/// with suggestions. `suggest` is the entity to suggest from, or the sibling field naming it.
pub fn input(
    key: &str,
    target: Option<Entity>,
    entity_field: Option<&str>,
    values: &HashMap<String, String>,
    aria_label: Option<&str>,
    error: Option<&str>,
    omit_kept: bool,
) -> Markup {
    let id = format!("f-{key}");
    let list = format!("dl-{key}");
    let err_id = format!("e-{key}");
    let value = values.get(key).map(String::as_str).unwrap_or("");
    let kept = values.get(&kept_key(key)).filter(|_| !omit_kept);
    html! {
        input type="text" id=(id) name=(key) value=(value) list=(list) autocomplete="off"
            data-suggest=[target.map(|t| format!("/suggest/{}", t.as_str()))]
            data-suggest-entity-field=[entity_field]
            aria-label=[aria_label]
            aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| err_id.as_str())];
        @if let Some(kept) = kept {
            input type="hidden" name=(kept_key(key)) value=(kept);
        }
        datalist id=(list) {}
    }
}
