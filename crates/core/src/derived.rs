//! Data derived from a record's fields: its parent in the delete tree (`parent_id`), its search
//! text and the unique values it holds. The write path stores them with every record; a restore
//! rebuilds them from the archived records with [`Derivation`], so archives never carry them.

use kontor_domain::entity::Entity;
use kontor_domain::record::Record;
use kontor_domain::schema::{self, CustomFieldDef, Schema};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// What the store keeps beside a record, derived from its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub parent_id: Option<String>,
    pub search: String,
    /// `(key name, value)` pairs; empty for a record in the recycle bin (it holds none).
    pub uniques: Vec<(String, String)>,
}

/// Derives data for records under one set of custom field definitions.
pub struct Derivation {
    custom: Vec<CustomFieldDef>,
    schemas: HashMap<Entity, Schema>,
}

impl Derivation {
    /// `fields` are the live custom field definition records (entity `fields`).
    pub fn new<'a>(fields: impl IntoIterator<Item = &'a Map<String, Value>>) -> Derivation {
        Derivation {
            custom: fields
                .into_iter()
                .filter_map(CustomFieldDef::from_record_data)
                .collect(),
            schemas: HashMap::new(),
        }
    }

    pub fn of(&mut self, rec: &Record) -> Derived {
        let custom = &self.custom;
        let schema = self.schemas.entry(rec.entity).or_insert_with(|| {
            if rec.entity.allows_custom_fields() {
                Schema::with_custom(rec.entity, custom)
            } else {
                schema::builtin(rec.entity).clone()
            }
        });
        Derived {
            parent_id: parent_of(schema, &rec.data),
            search: rec.search_text(schema),
            uniques: if rec.is_deleted() {
                Vec::new()
            } else {
                unique_values(schema, &rec.data)
            },
        }
    }
}

/// The value of the record's cascading reference (its parent in the delete tree).
pub(crate) fn parent_of(schema: &Schema, data: &Map<String, Value>) -> Option<String> {
    schema.cascading_refs().find_map(|f| {
        data.get(&f.name)
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// The unique values a live record with these fields holds, as `(key name, value)`.
pub fn unique_values(schema: &Schema, data: &Map<String, Value>) -> Vec<(String, String)> {
    schema
        .unique
        .iter()
        .filter_map(|k| {
            unique_value(data, &k.fields, k.case_insensitive).map(|v| (k.name.clone(), v))
        })
        .collect()
}

pub fn unique_value(data: &Map<String, Value>, fields: &[String], ci: bool) -> Option<String> {
    let first = data.get(fields.first()?)?;
    if first.is_null() {
        return None;
    }
    let parts: Vec<String> = fields
        .iter()
        .map(|f| match data.get(f) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        })
        .collect();
    let v = parts.join("|");
    Some(if ci { v.to_lowercase() } else { v })
}
