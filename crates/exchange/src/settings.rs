//! The settings of the exchange with one 1C database, kept on its `onec_databases` record
//! (changed through `/api/v1/onec_databases` by admins): an id prefix that keeps several 1C
//! databases apart, what a full upload does with what it no longer lists, whether a failed
//! record stops the run, whether the exchange may create records or only update them, which
//! price type prices products, which warehouses count in stock, which properties fill which
//! custom fields, which invoices it gets (by status) and their encoding. They travel as a file (`kontor exchange
//! settings export|import`) to set up the next 1C database the same way.

use crate::catalog::{Missing, OnError, Options};
use kontor_core::{CoreResult, Kontor, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::record::Record;
use kontor_domain::{Actor, DomainError, Entity};
use serde_json::{json, Map, Value};

/// The fields of an `onec_databases` record that are settings (what a settings file holds).
pub const SETTINGS: [&str; 11] = [
    "name",
    "invoice_encoding",
    "id_prefix",
    "catalog_missing",
    "on_record_error",
    "create_records",
    "price_type",
    "stock_warehouses",
    "property_fields",
    "invoice_statuses",
    "notes",
];

/// What a settings file says it is.
const FORMAT: &str = "kontor-exchange-settings";

fn text(r: &Record, field: &str) -> Option<String> {
    r.data
        .get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The run options a 1C database's settings give.
pub fn options_of(database: &Record) -> Result<Options, String> {
    let mut o = Options {
        id_prefix: text(database, "id_prefix").unwrap_or_default(),
        price_type: text(database, "price_type"),
        create: database.data.get("create_records") != Some(&Value::Bool(false)),
        ..Options::default()
    };
    o.missing = match text(database, "catalog_missing").as_deref() {
        Some("keep") => Missing::Keep,
        Some("delete") => Missing::Delete,
        _ => Missing::Deactivate,
    };
    o.on_error = match text(database, "on_record_error").as_deref() {
        Some("stop") => OnError::Stop,
        _ => OnError::Skip,
    };
    if let Some(list) = database
        .data
        .get("stock_warehouses")
        .and_then(Value::as_array)
    {
        o.warehouses = Some(
            list.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        );
    }
    if let Some(map) = database
        .data
        .get("property_fields")
        .and_then(Value::as_object)
    {
        for (property, field) in map {
            let Some(field) = field.as_str().map(str::trim).filter(|f| !f.is_empty()) else {
                return Err(format!(
                    "the setting property_fields maps property {property} to {field}, not to a custom field's name"
                ));
            };
            o.property_fields
                .insert(property.trim().to_string(), field.to_string());
        }
    }
    Ok(o)
}

/// The invoice statuses a 1C database gets (`None`: every status but draft).
pub fn invoice_statuses(database: &Record) -> Option<Vec<String>> {
    database
        .data
        .get("invoice_statuses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
}

/// The settings of a 1C database as a file's contents.
pub fn export(database: &Record) -> Value {
    let mut out = Map::new();
    out.insert("format".into(), json!(FORMAT));
    out.insert("version".into(), json!(1));
    for field in SETTINGS {
        if let Some(v) = database.data.get(field) {
            out.insert(field.into(), v.clone());
        }
    }
    Value::Object(out)
}

/// Applies a settings file to a 1C database's record (by `actor`, an admin); fields the file
/// does not name stay as they are. Anything but settings in the file is refused by name.
pub async fn import(
    kontor: &Kontor,
    actor: &Actor,
    database: &Record,
    file: &Value,
) -> CoreResult<()> {
    let Some(obj) = file.as_object() else {
        return Err(DomainError::invalid("format", "a settings file is a JSON object").into());
    };
    if obj.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(DomainError::invalid(
            "format",
            format!("this is not a Kontor exchange settings file (\"format\": \"{FORMAT}\")"),
        )
        .into());
    }
    let mut input = Map::new();
    for (k, v) in obj {
        match k.as_str() {
            "format" | "version" => {}
            k if SETTINGS.contains(&k) => {
                input.insert(k.to_string(), v.clone());
            }
            other => {
                return Err(DomainError::invalid(
                    other,
                    format!(
                        "'{other}' is not an exchange setting (settings: {})",
                        SETTINGS.join(", ")
                    ),
                )
                .into())
            }
        }
    }
    kontor
        .write(
            actor,
            Origin::System,
            vec![Mutation::Update {
                entity: Entity::OnecDatabases,
                id: database.id.clone(),
                input: Value::Object(input),
            }],
        )
        .await
        .map(drop)
}
