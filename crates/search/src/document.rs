//! What of a record the search index holds: the text of its searchable fields (names, e-mails,
//! phones, tax ids, numbers, notes), identifiers in a normal form (a phone's digits, an e-mail
//! as a whole) and who owns it. Built from a record image, so the journal's after-images and
//! the records table give the same document.

use kontor_domain::schema::{FieldDef, FieldType, Schema};
use kontor_domain::Entity;
use serde_json::{Map, Value};

/// The entities global search covers.
pub const SEARCHED: [Entity; 6] = [
    Entity::Companies,
    Entity::Contacts,
    Entity::Leads,
    Entity::Deals,
    Entity::Products,
    Entity::Invoices,
];

pub fn is_searched(entity: Entity) -> bool {
    SEARCHED.contains(&entity)
}

/// Long texts (notes, descriptions) are indexed up to this many characters.
const LONG_TEXT_INDEXED: usize = 4000;

/// Whether a field's values are indexed: short texts and identifiers, and long texts (notes).
fn indexed(ty: &FieldType) -> bool {
    ty.searchable() || matches!(ty, FieldType::LongText)
}

/// The indexed text of each field of a record's data that has any, in schema order. A row
/// field (addresses, bank accounts) gives the text of its rows' indexed parts.
pub fn field_texts<'a>(schema: &'a Schema, data: &Map<String, Value>) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    for f in &schema.fields {
        let mut text = String::new();
        collect_text(f, data.get(&f.name), &mut text);
        if !text.is_empty() {
            out.push((f.name.as_str(), text));
        }
    }
    out
}

fn collect_text(f: &FieldDef, value: Option<&Value>, out: &mut String) {
    let Some(value) = value else { return };
    match (&f.ty, value) {
        (FieldType::Rows(defs), Value::Array(rows)) => {
            for row in rows.iter().filter_map(Value::as_object) {
                for d in defs {
                    collect_text(d, row.get(&d.name), out);
                }
            }
        }
        (FieldType::LongText, Value::String(s)) => {
            push(out, &s.chars().take(LONG_TEXT_INDEXED).collect::<String>())
        }
        (ty, Value::String(s)) if indexed(ty) => push(out, s),
        (ty, Value::Array(items)) if indexed(ty) => {
            for s in items.iter().filter_map(Value::as_str) {
                push(out, s);
            }
        }
        _ => {}
    }
}

fn push(out: &mut String, s: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(s);
}

/// Identifiers of a record in the form a query is normalised to (see [`exact_keys_of_query`]):
/// phones as digits (and their last ten, the number without a country prefix), tax ids and
/// account numbers as digits, e-mail addresses whole and lowercased.
pub fn exact_keys(schema: &Schema, data: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = schema
        .fields
        .iter()
        .flat_map(|f| field_exact_keys(f, data))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The identifier keys of one field's value (see [`exact_keys`]).
pub fn field_exact_keys(f: &FieldDef, data: &Map<String, Value>) -> Vec<String> {
    let values: Vec<&str> = match data.get(&f.name) {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Vec::new(),
    };
    let ty = match &f.ty {
        FieldType::List(inner) => inner.as_ref(),
        ty => ty,
    };
    let mut out = Vec::new();
    for v in values {
        match ty {
            FieldType::Phone => out.extend(phone_keys(v)),
            FieldType::TaxId(_) | FieldType::Digits { .. } => out.push(format!("d:{v}")),
            FieldType::Email => out.push(format!("e:{}", v.to_lowercase())),
            _ => {}
        }
    }
    out
}

fn phone_keys(phone: &str) -> Vec<String> {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let mut keys = vec![format!("p:{digits}")];
    if digits.len() > 10 {
        keys.push(format!("p:{}", &digits[digits.len() - 10..]));
    }
    keys
}

/// The identifier keys a query stands for: a query of digits and phone punctuation with at
/// least five digits is a phone number, a tax id or an account; one with an `@` an e-mail.
pub fn exact_keys_of_query(q: &str) -> Vec<String> {
    let q = q.trim();
    let mut keys = Vec::new();
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 5
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
    {
        keys.extend(phone_keys(q));
        keys.push(format!("d:{digits}"));
    }
    if q.contains('@') && !q.contains(char::is_whitespace) {
        keys.push(format!("e:{}", q.to_lowercase()));
    }
    keys
}

/// What a person calls a record in a list of results: a company's name, a contact's full
/// name, an invoice's number.
pub fn title(entity: Entity, data: &Map<String, Value>) -> String {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("").trim();
    let joined = |keys: &[&str]| {
        keys.iter()
            .map(|k| s(k))
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let t = match entity {
        Entity::Contacts => joined(&["first_name", "middle_name", "last_name"]),
        Entity::Leads | Entity::Deals => s("title").to_string(),
        Entity::Invoices => s("number").to_string(),
        _ => s("name").to_string(),
    };
    if t.is_empty() {
        joined(&["email", "phone"])
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::schema::builtin;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_phone_is_found_in_any_format() {
        let d = data(json!({"first_name": "Ivan", "phone": "+7 (900) 123-45-67"}));
        let keys = exact_keys(builtin(Entity::Contacts), &d);
        for q in [
            "+79001234567",
            "8 900 123 45 67",
            "(900) 123-45-67",
            "79001234567",
        ] {
            assert!(
                exact_keys_of_query(q).iter().any(|k| keys.contains(k)),
                "{q} does not meet {keys:?}"
            );
        }
        assert!(exact_keys_of_query("ivan").is_empty());
    }

    #[test]
    fn field_texts_cover_lists_rows_and_notes() {
        let d = data(json!({
            "name": "Acme",
            "inn": "7707083893",
            "addresses": [{"text": "Tverskaya 1", "city": "Moscow"}],
            "notes": "met at the fair"
        }));
        let texts = field_texts(builtin(Entity::Companies), &d);
        let names: Vec<&str> = texts.iter().map(|(n, _)| *n).collect();
        assert!(names.contains(&"name") && names.contains(&"inn") && names.contains(&"notes"));
        let all: String = texts
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(all.contains("Moscow"), "{all}");
        assert_eq!(title(Entity::Companies, &d), "Acme");
    }
}
