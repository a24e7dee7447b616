//! Parses client input into a record's fields: every value is checked against its field's type and
//! turned into one canonical JSON form, and every error names the field (`lines[2].quantity`).
//! Parse, don't validate: the store only ever sees what came out of [`parse_fields`].

use crate::entity::Entity;
use crate::error::DomainError;
use crate::record::is_valid_id;
use crate::schema::{FieldDef, FieldType, Schema, Writer, CUSTOM_FIELD_TYPES, SYSTEM_FIELDS};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{Map, Number, Value};

/// Largest magnitude a decimal field takes: keeps every value exact as a JSON number.
const DECIMAL_LIMIT: i64 = 10_000_000_000_000;

/// What the input asked for the record's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerChange {
    Keep,
    Set(Option<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedInput {
    /// The record's fields after the change (current merged with input, defaults applied).
    pub data: Map<String, Value>,
    pub owner: OwnerChange,
    /// Names of the fields the input set (for read-only and hidden-field checks).
    pub touched: Vec<String>,
}

/// Parses `input` (a JSON object) for a create (`current = None`) or a partial update.
/// `trusted` input comes from Kontor itself and may set internal and computed fields.
pub fn parse_fields(
    schema: &Schema,
    input: &Value,
    current: Option<&Map<String, Value>>,
    trusted: bool,
) -> Result<ParsedInput, DomainError> {
    let obj = input
        .as_object()
        .ok_or_else(|| DomainError::invalid("", "the request body must be a JSON object"))?;
    let mut data = current.cloned().unwrap_or_default();
    let mut owner = OwnerChange::Keep;
    let mut touched = Vec::new();

    for (key, value) in obj {
        if key == "owner_id" {
            owner = OwnerChange::Set(match value {
                Value::Null => None,
                Value::String(s) if is_valid_id(s) => Some(s.clone()),
                _ => {
                    return Err(DomainError::invalid(
                        "owner_id",
                        "owner_id must be a user id or null",
                    ))
                }
            });
            touched.push(key.clone());
            continue;
        }
        if SYSTEM_FIELDS.contains(&key.as_str()) {
            // Clients often send back what they read; accept unchanged system fields silently.
            if current.is_some() {
                continue;
            }
            return Err(DomainError::invalid(
                key,
                format!("field '{key}' is set by Kontor and cannot be written"),
            ));
        }
        let def = match schema.field(key) {
            Some(d) => d,
            _ => {
                return Err(DomainError::invalid(
                    key,
                    format!("unknown field '{key}' for {}", schema.entity),
                ))
            }
        };
        if def.writer == Writer::Computed && !trusted {
            if current.and_then(|c| c.get(key)) == Some(value) {
                continue;
            }
            return Err(DomainError::invalid(
                key,
                format!("field '{key}' is computed by Kontor and cannot be written"),
            ));
        }
        let parsed = parse_value(&def.ty, value, key, trusted)?;
        if def.immutable {
            if let Some(cur) = current {
                if cur.get(key) != parsed.as_ref() {
                    return Err(DomainError::invalid(
                        key,
                        format!("field '{key}' cannot be changed once the record exists"),
                    ));
                }
            }
        }
        match parsed {
            Some(v) => {
                data.insert(key.clone(), v);
            }
            None => {
                data.remove(key);
            }
        }
        touched.push(key.clone());
    }

    for def in &schema.fields {
        if current.is_none() && !data.contains_key(&def.name) {
            if let Some(d) = &def.default {
                data.insert(def.name.clone(), d.clone());
            }
        }
        if def.required && def.writer == Writer::Input && !data.contains_key(&def.name) {
            return Err(DomainError::invalid(
                &def.name,
                format!("field '{}' is required", def.name),
            ));
        }
    }
    check_entity_rules(schema.entity, &data)?;
    Ok(ParsedInput {
        data,
        owner,
        touched,
    })
}

/// Parses one value; `Ok(None)` means "no value" (null or an empty string).
pub fn parse_value(
    ty: &FieldType,
    value: &Value,
    path: &str,
    trusted: bool,
) -> Result<Option<Value>, DomainError> {
    if value.is_null() {
        return Ok(None);
    }
    if let Value::String(s) = value {
        if s.trim().is_empty() && !matches!(ty, FieldType::List(_) | FieldType::Rows(_)) {
            return Ok(None);
        }
    }
    let bad = |what: &str| DomainError::invalid(path, format!("field '{path}' must be {what}"));
    let v = match ty {
        FieldType::Text { max } => {
            let s = value.as_str().ok_or_else(|| bad("a string"))?.trim();
            if s.chars().count() > *max {
                return Err(bad(&format!("at most {max} characters")));
            }
            if s.chars().any(|c| c.is_control()) {
                return Err(bad("a single line without control characters"));
            }
            Value::from(s)
        }
        FieldType::LongText => {
            let s = value.as_str().ok_or_else(|| bad("a string"))?;
            if s.chars().count() > 100_000 {
                return Err(bad("at most 100000 characters"));
            }
            Value::from(s)
        }
        FieldType::Email => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("an e-mail address"))?
                .trim();
            let ok = s.len() <= 254
                && s.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains('@')
                })
                && !s.chars().any(|c| c.is_whitespace() || c.is_control());
            if !ok {
                return Err(bad("an e-mail address like name@example.com"));
            }
            let (local, domain) = s.split_once('@').unwrap_or((s, ""));
            Value::from(format!("{local}@{}", domain.to_lowercase()))
        }
        FieldType::Phone => {
            let s = value.as_str().ok_or_else(|| bad("a phone number"))?.trim();
            let digits = s.chars().filter(|c| c.is_ascii_digit()).count();
            let ok = s.len() <= 32
                && (3..=20).contains(&digits)
                && s.chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c) || c == 'x');
            if !ok {
                return Err(bad(
                    "a phone number of 3 to 20 digits (spaces, +, -, brackets allowed)",
                ));
            }
            Value::from(s)
        }
        FieldType::Digits { lens } => {
            let s = value
                .as_str()
                .ok_or_else(|| bad("a string of digits"))?
                .trim();
            if !s.chars().all(|c| c.is_ascii_digit()) || !lens.contains(&s.len()) {
                let l: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
                return Err(bad(&format!("{} digits", l.join(" or "))));
            }
            Value::from(s)
        }
        FieldType::Decimal { scale, min, max } => {
            let d = parse_decimal(value).ok_or_else(|| bad("a number"))?;
            if d.abs() >= Decimal::from(DECIMAL_LIMIT) {
                return Err(bad("a number below 10^13 in magnitude"));
            }
            if d.normalize().scale() > *scale {
                return Err(bad(&format!(
                    "a number with at most {scale} decimal places"
                )));
            }
            if let Some(m) = min {
                if d < Decimal::from(*m) {
                    return Err(bad(&format!("at least {m}")));
                }
            }
            if let Some(m) = max {
                if d > Decimal::from(*m) {
                    return Err(bad(&format!("at most {m}")));
                }
            }
            decimal_to_json(d)
        }
        FieldType::Integer { min, max } => {
            let n = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .ok_or_else(|| bad("a whole number"))?;
            if n < *min || n > *max {
                return Err(bad(&format!("between {min} and {max}")));
            }
            Value::from(n)
        }
        FieldType::Date => {
            let s = value.as_str().ok_or_else(|| bad("a date YYYY-MM-DD"))?;
            let d = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                .map_err(|_| bad("a date YYYY-MM-DD"))?;
            Value::from(d.format("%Y-%m-%d").to_string())
        }
        FieldType::DateTime => {
            let s = value.as_str().ok_or_else(|| bad("an RFC 3339 date-time"))?;
            let t = crate::time::parse(s)
                .ok_or_else(|| bad("an RFC 3339 date-time like 2026-01-31T09:00:00Z"))?;
            Value::from(crate::time::format(t))
        }
        FieldType::Bool => Value::Bool(value.as_bool().ok_or_else(|| bad("true or false"))?),
        FieldType::Enum(options) => {
            let s = value.as_str().ok_or_else(|| bad("a string"))?.trim();
            if !options.iter().any(|o| o == s) {
                return Err(bad(&format!("one of: {}", options.join(", "))));
            }
            Value::from(s)
        }
        FieldType::Currency => {
            let s = value.as_str().ok_or_else(|| bad("a currency code"))?.trim();
            if s.len() != 3 || !s.chars().all(|c| c.is_ascii_alphabetic()) {
                return Err(bad("a three-letter currency code like RUB"));
            }
            Value::from(s.to_ascii_uppercase())
        }
        FieldType::Ref(_) | FieldType::LinkedRef { .. } => {
            let s = value.as_str().ok_or_else(|| bad("a record id"))?.trim();
            if !is_valid_id(s) {
                return Err(bad("a record id (UUID)"));
            }
            Value::from(s)
        }
        FieldType::List(inner) => {
            let items = value.as_array().ok_or_else(|| bad("a list"))?;
            if items.len() > 100 {
                return Err(bad("a list of at most 100 items"));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if let Some(v) = parse_value(inner, item, &format!("{path}[{i}]"), trusted)? {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        FieldType::Rows(defs) => {
            let rows = value.as_array().ok_or_else(|| bad("a list of objects"))?;
            if rows.len() > 1000 {
                return Err(bad("a list of at most 1000 rows"));
            }
            let mut out = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                out.push(Value::Object(parse_row(
                    defs,
                    row,
                    &format!("{path}[{i}]"),
                    trusted,
                )?));
            }
            Value::Array(out)
        }
        FieldType::Object => {
            if !value.is_object() {
                return Err(bad("a JSON object"));
            }
            value.clone()
        }
    };
    Ok(Some(v))
}

fn parse_row(
    defs: &[FieldDef],
    row: &Value,
    path: &str,
    trusted: bool,
) -> Result<Map<String, Value>, DomainError> {
    let obj = row
        .as_object()
        .ok_or_else(|| DomainError::invalid(path, format!("field '{path}' must be an object")))?;
    let mut out = Map::new();
    for (key, value) in obj {
        let sub = format!("{path}.{key}");
        let def = defs
            .iter()
            .find(|d| &d.name == key)
            .ok_or_else(|| DomainError::invalid(&sub, format!("unknown field '{sub}'")))?;
        if def.writer != Writer::Input && !trusted {
            // Computed row fields (line totals) are recomputed; ignore what the client sent.
            continue;
        }
        if let Some(v) = parse_value(&def.ty, value, &sub, trusted)? {
            out.insert(key.clone(), v);
        }
    }
    for def in defs {
        if !out.contains_key(&def.name) {
            if let Some(d) = &def.default {
                out.insert(def.name.clone(), d.clone());
            } else if def.required && def.writer == Writer::Input {
                let sub = format!("{path}.{}", def.name);
                return Err(DomainError::invalid(
                    &sub,
                    format!("field '{sub}' is required"),
                ));
            }
        }
    }
    Ok(out)
}

pub fn parse_decimal(value: &Value) -> Option<Decimal> {
    let s = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().replace(',', "."),
        _ => return None,
    };
    s.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&s).ok())
}

/// A decimal as a JSON number: integers stay integers, fractions go through their shortest
/// decimal text, which is exact below [`DECIMAL_LIMIT`].
pub fn decimal_to_json(d: Decimal) -> Value {
    let d = d.normalize();
    if d.scale() == 0 {
        if let Some(i) = d.to_i64() {
            return Value::Number(Number::from(i));
        }
    }
    d.to_string()
        .parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// Rules that span fields of one record.
fn check_entity_rules(entity: Entity, data: &Map<String, Value>) -> Result<(), DomainError> {
    let has = |k: &str| data.get(k).is_some_and(|v| !v.is_null());
    match entity {
        Entity::Contacts if !has("first_name") && !has("last_name") => {
            return Err(DomainError::invalid(
                "last_name",
                "a contact needs a first_name or a last_name",
            ));
        }
        Entity::Activities if has("linked_entity") != has("linked_id") => {
            let missing = if has("linked_entity") {
                "linked_id"
            } else {
                "linked_entity"
            };
            return Err(DomainError::invalid(
                missing,
                "linked_entity and linked_id must be given together",
            ));
        }
        Entity::Payments => {
            if let Some(a) = data.get("amount").and_then(parse_decimal) {
                if a <= Decimal::ZERO {
                    return Err(DomainError::invalid(
                        "amount",
                        "field 'amount' must be greater than 0",
                    ));
                }
            }
        }
        Entity::Companies
            if has("kpp") && data.get("inn").and_then(Value::as_str).map(str::len) != Some(10) =>
        {
            return Err(DomainError::invalid(
                "kpp",
                "a KPP belongs to an organisation with a 10-digit INN",
            ));
        }
        Entity::Fields => {
            let name = data.get("name").and_then(Value::as_str).unwrap_or("");
            let name_ok = name.len() <= 63
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !name_ok {
                return Err(DomainError::invalid(
                    "name",
                    "a custom field name is lowercase latin letters, digits and _, starting with a letter",
                ));
            }
            if let Some(target) = data
                .get("entity")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Entity>().ok())
            {
                if crate::schema::builtin(target).field(name).is_some()
                    || SYSTEM_FIELDS.contains(&name)
                {
                    return Err(DomainError::invalid(
                        "name",
                        format!("{target} already has a built-in field '{name}'"),
                    ));
                }
            }
            let ty = data.get("type").and_then(Value::as_str).unwrap_or("");
            debug_assert!(CUSTOM_FIELD_TYPES.contains(&ty));
            let options = data.get("options").and_then(Value::as_array);
            if ty == "enum" && options.is_none_or(|o| o.is_empty()) {
                return Err(DomainError::invalid(
                    "options",
                    "an enum field needs a non-empty list of options",
                ));
            }
            if ty != "enum" && options.is_some_and(|o| !o.is_empty()) {
                return Err(DomainError::invalid(
                    "options",
                    "only enum fields take options",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin;
    use serde_json::json;

    fn parse(entity: Entity, v: Value) -> Result<ParsedInput, DomainError> {
        parse_fields(builtin(entity), &v, None, false)
    }

    fn field_of(e: DomainError) -> String {
        match e {
            DomainError::Invalid(f) => f.field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn company_fields_are_canonicalised() {
        let p = parse(
            Entity::Companies,
            json!({"name": "  Ромашка ", "inn": "7707083893", "kpp": "773601001", "email": "Info@Romashka.RU"}),
        )
        .unwrap();
        assert_eq!(p.data["name"], "Ромашка");
        assert_eq!(p.data["email"], "Info@romashka.ru");
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(
            field_of(parse(Entity::Companies, json!({})).unwrap_err()),
            "name"
        );
        assert_eq!(
            field_of(parse(Entity::Companies, json!({"name": "x", "inn": "12"})).unwrap_err()),
            "inn"
        );
        assert_eq!(
            field_of(parse(Entity::Deals, json!({"title": "x", "amount": "ten"})).unwrap_err()),
            "amount"
        );
        assert_eq!(
            field_of(parse(Entity::Deals, json!({"title": "x", "colour": "red"})).unwrap_err()),
            "colour"
        );
        let e = parse(
            Entity::Invoices,
            json!({"company_id": crate::record::new_id(), "lines": [{"quantity": 1, "price": 1}, {"price": 2}]}),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "lines[1].quantity");
    }

    #[test]
    fn decimals_keep_their_value() {
        let p = parse(Entity::Deals, json!({"title": "x", "amount": "1500.50"})).unwrap();
        assert_eq!(p.data["amount"], json!(1500.5));
        let e = parse(Entity::Deals, json!({"title": "x", "amount": 1.005})).unwrap_err();
        assert_eq!(field_of(e), "amount");
    }

    #[test]
    fn defaults_apply_on_create_only() {
        let p = parse(Entity::Deals, json!({"title": "x"})).unwrap();
        assert_eq!(p.data["stage"], "new");
        assert_eq!(p.data["currency"], "RUB");
        let upd = parse_fields(
            builtin(Entity::Deals),
            &json!({"stage": null}),
            Some(&p.data),
            false,
        )
        .unwrap();
        assert!(!upd.data.contains_key("stage"));
    }

    #[test]
    fn internal_fields_are_unknown_to_clients() {
        let e = parse(
            Entity::Users,
            json!({"email": "a@b.cd", "password_hash": "x"}),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "password_hash");
    }
}
