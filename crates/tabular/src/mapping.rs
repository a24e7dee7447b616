//! Which column of a file goes where: to a field of the entity, to the record's id or owner,
//! or to a reference resolved by a natural key of the related record (`company_id.inn`: the
//! company whose INN is in the cell; `owner_id.email`: the user with that e-mail). Columns are
//! mapped by the caller (`--map`, a template) or recognised by their header: a field's name,
//! or a usual header in English, German or Russian ("Фамилия", "E-Mail", "ИНН компании").
//! Also here: the keys records are found by ([`Key`]) — an id, a unique key, or an indexed
//! field — for matching rows with records and for resolving references.

use kontor_domain::listing::KeyKind;
use kontor_domain::permission::Actor;
use kontor_domain::schema::{FieldDef, FieldType, Schema, Writer};
use kontor_domain::Entity;
use std::collections::BTreeMap;

/// How records are found by a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// Their id.
    Id,
    /// A unique key of the entity (`external_id`, `inn+kpp`, `sku`, users' `email`).
    Unique {
        name: String,
        fields: Vec<String>,
        case_insensitive: bool,
    },
    /// A field with a list index (`email`, `phone`, `inn`, `name`): several records may share
    /// a value, which makes the match ambiguous.
    Field { name: String, kind: KeyKind },
}

impl Key {
    /// The fields whose values make the key.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Key::Id => vec!["id"],
            Key::Unique { fields, .. } => fields.iter().map(String::as_str).collect(),
            Key::Field { name, .. } => vec![name.as_str()],
        }
    }

    /// How the key is written: `id`, `inn+kpp`, `email`.
    pub fn name(&self) -> &str {
        match self {
            Key::Id => "id",
            Key::Unique { name, .. } | Key::Field { name, .. } => name,
        }
    }

    /// The key of `schema` called `name`: `id`, a unique key's name, or an indexed field.
    pub fn parse(schema: &Schema, name: &str) -> Result<Key, String> {
        let name = name.trim();
        if name == "id" {
            return Ok(Key::Id);
        }
        if let Some(u) = schema.unique.iter().find(|u| u.name == name) {
            return Ok(Key::Unique {
                name: u.name.clone(),
                fields: u.fields.clone(),
                case_insensitive: u.case_insensitive,
            });
        }
        // A single field that is also a unique key by itself (written by its field name).
        if let Some(u) = schema
            .unique
            .iter()
            .find(|u| u.fields.len() == 1 && u.fields[0] == name)
        {
            return Ok(Key::Unique {
                name: u.name.clone(),
                fields: u.fields.clone(),
                case_insensitive: u.case_insensitive,
            });
        }
        if let Some((f, kind)) = kontor_domain::listing::indexed_fields(schema)
            .into_iter()
            .find(|(f, _)| f.name == name)
        {
            return Ok(Key::Field {
                name: f.name.clone(),
                kind,
            });
        }
        Err(format!(
            "{} cannot be found by '{name}'; by one of: {}",
            schema.entity,
            key_names(schema).join(", ")
        ))
    }
}

/// The keys an entity's records can be found by.
pub fn key_names(schema: &Schema) -> Vec<String> {
    let mut names = vec!["id".to_string()];
    names.extend(schema.unique.iter().map(|u| u.name.clone()));
    for (f, _) in kontor_domain::listing::indexed_fields(schema) {
        if !names.contains(&f.name) {
            names.push(f.name.clone());
        }
    }
    names
}

/// Where a column's values go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A field of the entity.
    Field(String),
    /// The record's id: what `--match id` matches, and the id a new record is created under.
    Id,
    /// The owner, as a user id.
    Owner,
    /// A reference field (or the owner, `owner_id`) set to the record found by a key of the
    /// related entity.
    Related {
        field: String,
        entity: Entity,
        key: Key,
    },
    /// Not imported.
    Ignored,
}

impl Target {
    /// The field a write of this column touches (what refusals are named by).
    pub fn field(&self) -> Option<&str> {
        match self {
            Target::Field(f) | Target::Related { field: f, .. } => Some(f),
            Target::Id => Some("id"),
            Target::Owner => Some("owner_id"),
            Target::Ignored => None,
        }
    }

    /// As a template writes it: `last_name`, `company_id.inn`, `` for an ignored column.
    pub fn spelled(&self) -> String {
        match self {
            Target::Field(f) => f.clone(),
            Target::Id => "id".into(),
            Target::Owner => "owner_id".into(),
            Target::Related { field, key, .. } => format!("{field}.{}", key.name()),
            Target::Ignored => String::new(),
        }
    }
}

/// The columns of a file and where each goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub headers: Vec<String>,
    pub targets: Vec<Target>,
}

impl Mapping {
    /// The column (its index) mapped to a field.
    pub fn column_of(&self, field: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.field() == Some(field))
    }

    /// The header of the column mapped to `field`, for messages; the field itself if none.
    pub fn header_of(&self, field: &str) -> String {
        self.column_of(field)
            .and_then(|i| self.headers.get(i))
            .cloned()
            .unwrap_or_else(|| field.to_string())
    }

    /// `{header: target}` of the mapped columns, as a template stores it.
    pub fn spelled(&self) -> BTreeMap<String, String> {
        self.headers
            .iter()
            .zip(&self.targets)
            .map(|(h, t)| (h.clone(), t.spelled()))
            .collect()
    }

    /// Headers of the columns nothing is imported from.
    pub fn ignored(&self) -> Vec<String> {
        self.headers
            .iter()
            .zip(&self.targets)
            .filter(|(h, t)| **t == Target::Ignored && !h.is_empty())
            .map(|(h, _)| h.clone())
            .collect()
    }
}

/// A refusal of the mapping as a whole (nothing is imported).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct MappingError {
    /// The column it is about, when one.
    pub column: Option<String>,
    pub message: String,
}

fn refuse(column: Option<&str>, message: String) -> MappingError {
    MappingError {
        column: column.map(str::to_string),
        message,
    }
}

/// What the mapping is built from: the caller's explicit `header → target` entries (they
/// must name columns of the file) and a template's (columns it names that the file lacks are
/// only reported).
#[derive(Debug, Clone, Default)]
pub struct MappingInput {
    pub explicit: BTreeMap<String, String>,
    pub template: BTreeMap<String, String>,
}

/// The mapping of a file's columns for `actor` importing into `schema`'s entity. `related`
/// gives the schema of an entity a reference points to. Returns the mapping and the template
/// columns the file does not have.
pub fn build(
    schema: &Schema,
    headers: &[String],
    input: &MappingInput,
    actor: &Actor,
    related: &dyn Fn(Entity) -> Schema,
) -> Result<(Mapping, Vec<String>), MappingError> {
    let position = |h: &str| headers.iter().position(|x| x.trim() == h.trim());
    for h in input.explicit.keys() {
        if position(h).is_none() {
            return Err(refuse(
                Some(h),
                format!(
                    "the file has no column '{h}' (its columns: {})",
                    headers.join(", ")
                ),
            ));
        }
    }
    let missing: Vec<String> = input
        .template
        .keys()
        .filter(|h| position(h).is_none())
        .cloned()
        .collect();
    // Columns the caller mapped first, then the others recognised by their headers, each
    // only to a field no column took yet.
    let mut targets: Vec<Option<Target>> = Vec::with_capacity(headers.len());
    for h in headers {
        let given = input
            .explicit
            .iter()
            .chain(&input.template)
            .find(|(k, _)| k.trim() == h.trim())
            .map(|(_, v)| v.as_str());
        targets.push(match given {
            Some(spelled) => Some(
                parse_target(schema, spelled, related)
                    .map_err(|m| refuse(Some(h), format!("column '{h}': {m}")))?,
            ),
            None => None,
        });
    }
    for (i, h) in headers.iter().enumerate() {
        if targets[i].is_some() {
            continue;
        }
        let t = recognise(schema, h, related);
        let taken = t
            .field()
            .is_some_and(|f| targets.iter().flatten().any(|u| u.field() == Some(f)));
        targets[i] = Some(if taken { Target::Ignored } else { t });
    }
    let targets: Vec<Target> = targets
        .into_iter()
        .map(|t| t.unwrap_or(Target::Ignored))
        .collect();
    for (h, t) in headers.iter().zip(&targets) {
        if let Some(field) = t.field() {
            check_writable(schema, actor, field).map_err(|m| refuse(Some(h), m))?;
        }
    }
    // A field fed by two columns would take whichever came last: refuse.
    for (i, t) in targets.iter().enumerate() {
        let Some(f) = t.field() else { continue };
        if let Some(j) = targets[..i].iter().position(|u| u.field() == Some(f)) {
            return Err(refuse(
                Some(&headers[i]),
                format!(
                    "columns '{}' and '{}' both go to {f}; map one of them to \"\" to leave it out",
                    headers[j], headers[i]
                ),
            ));
        }
    }
    Ok((
        Mapping {
            headers: headers.to_vec(),
            targets,
        },
        missing,
    ))
}

/// Whether the actor may write `field` of the entity through an import.
fn check_writable(schema: &Schema, actor: &Actor, field: &str) -> Result<(), String> {
    if matches!(field, "id" | "owner_id") {
        return Ok(());
    }
    if actor.is_hidden(schema.entity, field) || actor.is_readonly(schema.entity, field) {
        return Err(format!(
            "role {} may not write {}.{field}",
            actor.role.name, schema.entity
        ));
    }
    Ok(())
}

/// Parses a target as written: `field`, `id`, `owner_id`, `field.key` or `` (ignored).
pub fn parse_target(
    schema: &Schema,
    spelled: &str,
    related: &dyn Fn(Entity) -> Schema,
) -> Result<Target, String> {
    let spelled = spelled.trim();
    match spelled {
        "" => return Ok(Target::Ignored),
        "id" => return Ok(Target::Id),
        "owner_id" => return Ok(Target::Owner),
        _ => {}
    }
    if let Some((field, key)) = spelled.split_once('.') {
        let target_entity = if field == "owner_id" {
            Entity::Users
        } else {
            match schema.field(field).map(|f| &f.ty) {
                Some(FieldType::Ref(e)) => *e,
                Some(_) => {
                    return Err(format!(
                        "{field} is not a reference, so it cannot be found by '{key}'"
                    ))
                }
                None => return Err(unknown_field(schema, field)),
            }
        };
        let target_schema = related(target_entity);
        let key = Key::parse(&target_schema, key)?;
        if key.fields().len() > 1 {
            return Err(format!(
                "a related {} is found by one field, not by {}",
                target_entity.singular(),
                key.name()
            ));
        }
        if target_entity == Entity::Users && !matches!(key, Key::Id | Key::Unique { .. }) {
            return Err("a user is found by id or email".into());
        }
        return Ok(Target::Related {
            field: field.to_string(),
            entity: target_entity,
            key,
        });
    }
    let def = schema
        .field(spelled)
        .ok_or_else(|| unknown_field(schema, spelled))?;
    writable_def(def)?;
    Ok(Target::Field(def.name.clone()))
}

fn writable_def(def: &FieldDef) -> Result<(), String> {
    if def.writer == Writer::Computed {
        return Err(format!("{} is computed by Kontor", def.name));
    }
    Ok(())
}

fn unknown_field(schema: &Schema, name: &str) -> String {
    let names: Vec<&str> = schema
        .fields
        .iter()
        .filter(|f| f.writer == Writer::Input)
        .map(|f| f.name.as_str())
        .collect();
    format!(
        "{} has no field '{name}' (fields: id, owner_id, {})",
        schema.entity,
        names.join(", ")
    )
}

/// A header as compared with names and aliases: lowercase, without punctuation at its ends
/// (`E-Mail:` and `* Телефон` count as `e-mail` and `телефон`), spaces and `_` as one space.
fn normal(header: &str) -> String {
    let lowered = header.trim().to_lowercase().replace('ё', "е");
    let words: Vec<&str> = lowered
        .split(|c: char| c.is_whitespace() || c == '_')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .join(" ")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string()
}

/// Usual headers in English, German and Russian, and the target each stands for. A target is
/// used only when the entity has it.
const ALIASES: &[(&str, &[&str])] = &[
    (
        "name",
        &[
            "name",
            "название",
            "наименование",
            "company name",
            "firma",
            "firmenname",
            "unternehmen",
            "kunde",
            "клиент",
            "контрагент",
            "организация",
            "company",
            "компания",
            "product",
            "товар",
            "produkt",
            "artikel",
        ],
    ),
    (
        "legal_name",
        &[
            "legal name",
            "полное наименование",
            "юридическое наименование",
            "юридическое название",
        ],
    ),
    ("inn", &["инн", "inn", "tax id", "taxpayer id"]),
    ("kpp", &["кпп", "kpp"]),
    ("ogrn", &["огрн", "ogrn"]),
    (
        "email",
        &[
            "email",
            "e-mail",
            "e mail",
            "mail",
            "почта",
            "эл. почта",
            "эл почта",
            "электронная почта",
            "e-mail-adresse",
            "email address",
            "e-mail address",
        ],
    ),
    (
        "phone",
        &[
            "phone",
            "telephone",
            "tel",
            "телефон",
            "тел",
            "тел.",
            "мобильный",
            "мобильный телефон",
            "mobile",
            "telefon",
            "handy",
            "phone number",
            "номер телефона",
        ],
    ),
    (
        "first_name",
        &["first name", "given name", "имя", "vorname"],
    ),
    (
        "last_name",
        &["last name", "surname", "family name", "фамилия", "nachname"],
    ),
    ("middle_name", &["middle name", "отчество"]),
    (
        "position",
        &["position", "job title", "должность", "funktion", "stellung"],
    ),
    (
        "website",
        &[
            "website", "web", "site", "url", "сайт", "webseite", "homepage",
        ],
    ),
    (
        "industry",
        &["industry", "отрасль", "branche", "сфера деятельности"],
    ),
    (
        "notes",
        &[
            "notes",
            "note",
            "comment",
            "comments",
            "примечание",
            "примечания",
            "комментарий",
            "заметки",
            "bemerkung",
            "notiz",
            "notizen",
            "kommentar",
        ],
    ),
    (
        "title",
        &[
            "title",
            "subject",
            "название сделки",
            "тема",
            "titel",
            "betreff",
        ],
    ),
    ("amount", &["amount", "sum", "сумма", "betrag", "summe"]),
    ("currency", &["currency", "валюта", "währung"]),
    ("stage", &["stage", "стадия", "этап", "phase"]),
    ("status", &["status", "статус", "состояние"]),
    ("source", &["source", "источник", "quelle"]),
    (
        "birthday",
        &[
            "birthday",
            "date of birth",
            "день рождения",
            "дата рождения",
            "geburtstag",
        ],
    ),
    (
        "external_id",
        &[
            "external id",
            "external_id",
            "внешний код",
            "внешний id",
            "код 1с",
            "ид 1с",
            "1c id",
            "guid",
        ],
    ),
    ("sku", &["sku", "артикул", "artikelnummer", "art.-nr"]),
    ("price", &["price", "цена", "preis"]),
    ("unit", &["unit", "единица", "ед. изм", "ед изм", "einheit"]),
    (
        "company_id.inn",
        &["company inn", "инн компании", "инн организации"],
    ),
    (
        "company_id.name",
        &[
            "company",
            "компания",
            "организация",
            "firma",
            "unternehmen",
            "контрагент",
        ],
    ),
    (
        "owner_id.email",
        &[
            "owner",
            "owner email",
            "responsible",
            "ответственный",
            "менеджер",
            "manager",
            "verantwortlich",
            "betreuer",
        ],
    ),
];

/// The target a header stands for, when it is recognised: a field's name (or `field.key`),
/// then the aliases above; system columns an export writes (`created_at`, …) are ignored.
fn recognise(schema: &Schema, header: &str, related: &dyn Fn(Entity) -> Schema) -> Target {
    let h = normal(header);
    if h.is_empty() {
        return Target::Ignored;
    }
    let as_name = h.replace(' ', "_");
    if let Ok(t) = parse_target(schema, &as_name, related) {
        if t != Target::Ignored {
            return t;
        }
    }
    for (target, aliases) in ALIASES {
        if aliases.iter().any(|a| normal(a) == h) {
            if let Ok(t) = parse_target(schema, target, related) {
                return t;
            }
        }
    }
    Target::Ignored
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::schema::builtin;

    fn related(e: Entity) -> Schema {
        builtin(e).clone()
    }

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_are_recognised_in_three_languages() {
        let schema = builtin(Entity::Contacts);
        let (m, _) = build(
            schema,
            &headers(&[
                "Фамилия",
                "Имя",
                "E-Mail:",
                "Telefon",
                "ИНН компании",
                "Компания",
                "id",
                "created_at",
                "Something else",
                "Ответственный",
            ]),
            &MappingInput::default(),
            &Actor::system(),
            &related,
        )
        .expect("maps");
        let spelled: Vec<String> = m.targets.iter().map(Target::spelled).collect();
        assert_eq!(
            spelled,
            [
                "last_name",
                "first_name",
                "email",
                "phone",
                "company_id.inn",
                "",
                "id",
                "",
                "",
                "owner_id.email"
            ],
            "'Компания' would map to company_id too; the INN column already does"
        );
    }

    #[test]
    fn explicit_entries_win_and_must_name_columns() {
        let schema = builtin(Entity::Companies);
        let mut input = MappingInput::default();
        input.explicit.insert("Клиент".into(), "legal_name".into());
        input.template.insert("Не в файле".into(), "notes".into());
        let (m, missing) = build(
            schema,
            &headers(&["Клиент", "ИНН"]),
            &input,
            &Actor::system(),
            &related,
        )
        .expect("maps");
        assert_eq!(m.targets[0], Target::Field("legal_name".into()));
        assert_eq!(m.targets[1], Target::Field("inn".into()));
        assert_eq!(missing, ["Не в файле"]);
        input.explicit.insert("Nope".into(), "name".into());
        let e = build(
            schema,
            &headers(&["Клиент"]),
            &input,
            &Actor::system(),
            &related,
        )
        .expect_err("no such column");
        assert_eq!(e.column.as_deref(), Some("Nope"));
    }

    #[test]
    fn bad_targets_and_doubles_are_refused_by_column() {
        let schema = builtin(Entity::Contacts);
        for (target, needle) in [
            ("nonsense", "has no field 'nonsense'"),
            ("last_name.x", "not a reference"),
            ("company_id.website", "cannot be found by 'website'"),
            ("company_id.inn+kpp", "found by one field"),
        ] {
            let mut input = MappingInput::default();
            input.explicit.insert("A".into(), target.into());
            let e = build(schema, &headers(&["A"]), &input, &Actor::system(), &related)
                .expect_err(target);
            assert!(e.message.contains(needle), "{target}: {}", e.message);
            assert_eq!(e.column.as_deref(), Some("A"));
        }
        // Recognised twice, the second column is left out; mapped twice, refused.
        let (m, _) = build(
            schema,
            &headers(&["Email", "E-mail"]),
            &MappingInput::default(),
            &Actor::system(),
            &related,
        )
        .expect("maps");
        assert_eq!(m.ignored(), ["E-mail"]);
        let mut input = MappingInput::default();
        input.explicit.insert("A".into(), "email".into());
        input.explicit.insert("B".into(), "email".into());
        let e = build(
            schema,
            &headers(&["A", "B"]),
            &input,
            &Actor::system(),
            &related,
        )
        .expect_err("two columns to one field");
        assert!(e.message.contains("both go to email"), "{}", e.message);
    }

    #[test]
    fn keys_are_ids_unique_keys_or_indexed_fields() {
        let companies = builtin(Entity::Companies);
        assert_eq!(Key::parse(companies, "id"), Ok(Key::Id));
        assert!(matches!(
            Key::parse(companies, "inn+kpp"),
            Ok(Key::Unique { ref fields, .. }) if fields == &["inn", "kpp"]
        ));
        assert!(matches!(
            Key::parse(companies, "inn"),
            Ok(Key::Field { ref name, .. }) if name == "inn"
        ));
        assert!(matches!(
            Key::parse(companies, "external_id"),
            Ok(Key::Unique { .. })
        ));
        let e = Key::parse(companies, "website").expect_err("not a key");
        assert!(e.contains("inn+kpp") && e.contains("email"), "{e}");
    }
}
