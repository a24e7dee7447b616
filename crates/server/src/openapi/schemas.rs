//! JSON Schemas of records, built from the same [`FieldType`]s the core parses input with, so
//! the document states exactly what the server accepts: a request valid by these schemas is
//! accepted (or refused only for the state it meets: 404, 409), one invalid by them is refused
//! with 422. Each rule here mirrors one in `kontor_domain::validate`; change them together.

use kontor_domain::money::{self, MONEY_INTEGER_DIGITS};
use kontor_domain::schema::{FieldDef, FieldType, Schema, Writer, SYSTEM_FIELDS};
use kontor_domain::validate::{LIST_MAX, LONG_TEXT_MAX, ROWS_MAX};
use kontor_domain::Entity;
use serde_json::{json, Map, Value};

/// Control characters (Unicode category Cc), which single-line text never holds.
const CONTROL: &str = "\\u0000-\\u001f\\u007f-\\u009f";
/// White space other than control characters (what `str::trim` removes besides them).
const SPACE: &str = " \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

pub fn uuid() -> Value {
    json!({"type": "string", "format": "uuid", "pattern": UUID_PATTERN})
}

/// Which document a schema is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A create request.
    Create,
    /// A partial update (`PATCH`).
    Update,
    /// What the server answers.
    Response,
}

fn single_line(max: usize) -> Value {
    json!({"type": "string", "maxLength": max, "pattern": format!("^[^{CONTROL}]*$")})
}

fn non_blank(max: usize) -> Value {
    json!({"type": "string", "maxLength": max,
           "pattern": format!("^[^{CONTROL}]*[^{CONTROL}{SPACE}][^{CONTROL}]*$")})
}

/// Decimal text: `digits` before the point at most, `scale` after it at most.
fn decimal_pattern(digits: u32, scale: u32, negative: bool) -> String {
    let sign = if negative { "-?" } else { "" };
    let frac = if scale > 0 {
        format!("(\\.[0-9]{{1,{scale}}})?")
    } else {
        String::new()
    };
    format!("^{sign}0*[0-9]{{1,{digits}}}{frac}$")
}

/// A money amount with at most `decimals` decimals (and more than zero when `positive`).
pub fn money_pattern(decimals: u32, positive: bool) -> String {
    let d = MONEY_INTEGER_DIGITS;
    if !positive {
        return decimal_pattern(d, decimals, false);
    }
    let whole = format!("0*[1-9][0-9]{{0,{}}}", d - 1);
    if decimals == 0 {
        return format!("^{whole}$");
    }
    // Zero before the point: at least one non-zero digit among the decimals.
    let fractions: Vec<String> = (0..decimals)
        .map(|zeros| {
            let rest = decimals - zeros - 1;
            let tail = if rest > 0 {
                format!("[0-9]{{0,{rest}}}")
            } else {
                String::new()
            };
            format!("{}[1-9]{tail}", "0".repeat(zeros as usize))
        })
        .collect();
    format!(
        "^({whole}(\\.[0-9]{{1,{decimals}}})?|0+\\.({}))$",
        fractions.join("|")
    )
}

fn most_minor_units() -> u32 {
    money::MINOR_UNIT_CHOICES[money::MINOR_UNIT_CHOICES.len() - 1]
}

/// The schema of one value of a type, never null.
pub fn value_schema(ty: &FieldType, mode: Mode) -> Value {
    let out = mode == Mode::Response;
    match ty {
        FieldType::Text { max } => single_line(*max),
        FieldType::LongText => {
            json!({"type": "string", "maxLength": LONG_TEXT_MAX, "pattern": "^[^\\u0000]*$"})
        }
        FieldType::Email => {
            let atext = format!(
                "[A-Za-z0-9{}]",
                kontor_domain::validate::EMAIL_LOCAL_SPECIALS
            );
            let label = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
            json!({"type": "string", "format": "email", "maxLength": 254,
                   "pattern": format!("^{atext}+(\\.{atext}+)*@{label}(\\.{label})+$"),
                   "description": "ASCII (an internationalised domain in its xn-- form); the local part at most 64 characters"})
        }
        FieldType::Phone => json!({"type": "string", "maxLength": 32,
            "pattern": "^[ +().x-]*([0-9][ +().x-]*){3,20}$",
            "description": "3 to 20 digits; spaces, +, -, brackets, dots and x allowed"}),
        FieldType::Digits { lens } => {
            let alts: Vec<String> = lens.iter().map(|l| format!("[0-9]{{{l}}}")).collect();
            json!({"type": "string", "pattern": format!("^({})$", alts.join("|"))})
        }
        FieldType::TaxId(kind) => {
            let mut s = json!({"type": "string", "pattern": kind.pattern()});
            if let (Some(f), false) = (kind.format(), out) {
                s["format"] = json!(f);
                s["description"] = json!("with valid check digits");
            }
            s
        }
        FieldType::Decimal {
            digits,
            scale,
            min,
            max,
        } => {
            if out {
                return json!({"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"});
            }
            let negative = min.is_none_or(|m| m < 0);
            let pattern = match (min, max) {
                // Rates: 0 to 100.
                (Some(0), Some(100)) => {
                    format!("^0*([0-9]{{1,2}}(\\.[0-9]{{1,{scale}}})?|100(\\.0{{1,{scale}}})?)$")
                }
                _ => decimal_pattern(*digits, *scale, negative),
            };
            json!({"type": "string", "pattern": pattern,
                   "description": "an exact decimal, written as a string"})
        }
        FieldType::Money { positive } => {
            if out {
                return json!({"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$",
                    "description": "money in the record's currency, with its minor units"});
            }
            json!({"type": "string", "pattern": money_pattern(most_minor_units(), *positive),
                   "description": "money as a decimal string, with at most the currency's minor units of decimals"})
        }
        FieldType::Integer { min, max } => {
            json!({"type": "integer", "minimum": min, "maximum": max})
        }
        FieldType::Date => {
            json!({"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"})
        }
        FieldType::DateTime => json!({"type": "string", "format": "date-time"}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Enum(options) => json!({"type": "string", "enum": options}),
        FieldType::Currency => json!({"type": "string", "pattern": "^[A-Z]{3}$"}),
        FieldType::Ref(e) => {
            let mut s = uuid();
            s["description"] = json!(format!("id of a {}", e.singular()));
            s
        }
        FieldType::LinkedRef { entity_field } => {
            let mut s = uuid();
            s["description"] = json!(format!("id of the record named by {entity_field}"));
            s
        }
        FieldType::List(inner) => {
            let item = match inner.as_ref() {
                FieldType::Text { max } if !out => non_blank(*max),
                other => value_schema(other, mode),
            };
            json!({"type": "array", "maxItems": LIST_MAX, "items": item})
        }
        FieldType::Rows(defs) => {
            json!({"type": "array", "maxItems": ROWS_MAX, "items": row_schema(defs, mode)})
        }
        FieldType::Object => json!({"type": "object"}),
    }
}

/// A field in a request or response: required text is non-blank; optional fields take null.
fn field_schema(def: &FieldDef, mode: Mode, object: Option<&Value>) -> Value {
    let mut s = match (&def.ty, object) {
        (FieldType::Object, Some(o)) => o.clone(),
        (FieldType::Text { max }, _) if def.required && mode != Mode::Response => non_blank(*max),
        _ => value_schema(&def.ty, mode),
    };
    if mode == Mode::Response {
        if def.writer == Writer::Computed {
            s["readOnly"] = json!(true);
        }
        return s;
    }
    if let Some(d) = &def.default {
        s["default"] = d.clone();
    }
    if def.required && !def.custom {
        return s;
    }
    nullable(s)
}

fn nullable(s: Value) -> Value {
    match s.get("enum").and_then(Value::as_array) {
        Some(options) => {
            let mut with_null = options.clone();
            with_null.push(Value::Null);
            let mut s = s.clone();
            s["enum"] = Value::Array(with_null);
            s["type"] = json!(["string", "null"]);
            s
        }
        None => match s.get("type").cloned() {
            Some(Value::String(t)) => {
                let mut s = s;
                s["type"] = json!([t, "null"]);
                s
            }
            _ => json!({"anyOf": [s, {"type": "null"}]}),
        },
    }
}

/// One row of a rows field (addresses, bank accounts, invoice lines). Computed cells are not
/// written by clients, so requests leave them out.
fn row_schema(defs: &[FieldDef], mode: Mode) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for d in defs {
        if d.writer == Writer::Computed && mode != Mode::Response {
            continue;
        }
        props.insert(d.name.clone(), field_schema(d, mode, None));
        if d.required && d.writer == Writer::Input && mode != Mode::Response {
            required.push(d.name.clone());
        }
    }
    let mut s = json!({"type": "object", "properties": props, "required": required});
    if mode != Mode::Response {
        s["additionalProperties"] = json!(false);
    }
    s
}

/// The exact shape of an entity's fields of type Object, where the write path checks one: a
/// role's permission documents, an import template's columns.
fn object_documents(entity: Entity) -> Map<String, Value> {
    match entity {
        Entity::Roles => role_documents(),
        Entity::ImportTemplates => {
            // As `validate` checks it: header → target, both at most 200 characters.
            let mut out = Map::new();
            out.insert(
                "columns".into(),
                json!({"type": "object", "maxProperties": 4096,
                       "propertyNames": {"maxLength": 200},
                       "additionalProperties": {"type": "string", "maxLength": 200}}),
            );
            out
        }
        _ => Map::new(),
    }
}

/// The exact shape of a role's permission documents (the fields of type Object).
fn role_documents() -> Map<String, Value> {
    let scope = json!({"type": "string", "enum": ["all", "team", "own", "none"]});
    let per_action = json!({"type": "object", "additionalProperties": false, "properties": {
        "read": scope, "create": scope, "update": scope, "delete": scope}});
    let field_names = json!({"type": "array", "items": {"type": "string",
        "pattern": "^[a-z][a-z0-9_]{0,62}$", "not": {"const": "id"}}});
    let mut perms = Map::new();
    let mut fields = Map::new();
    for e in Entity::CRM {
        perms.insert(
            e.as_str().into(),
            json!({"oneOf": [scope.clone(), per_action.clone()]}),
        );
        fields.insert(e.as_str().into(), field_names.clone());
    }
    let doc = |props: Map<String, Value>| json!({"type": "object", "additionalProperties": false, "properties": props});
    let mut out = Map::new();
    out.insert("permissions".into(), doc(perms));
    out.insert("hidden_fields".into(), doc(fields.clone()));
    out.insert("readonly_fields".into(), doc(fields));
    out
}

/// A record as the server answers it.
pub fn record(schema: &Schema) -> Value {
    let mut props = Map::new();
    for d in &schema.fields {
        props.insert(d.name.clone(), field_schema(d, Mode::Response, None));
    }
    props.insert(
        "id".into(),
        json!({"type": "string", "format": "uuid", "readOnly": true}),
    );
    props.insert(
        "owner_id".into(),
        json!({"type": ["string", "null"], "format": "uuid"}),
    );
    for t in ["created_at", "updated_at", "deleted_at"] {
        props.insert(
            t.into(),
            json!({"type": "string", "format": "date-time", "readOnly": true}),
        );
    }
    props.insert(
        "deleted_by".into(),
        json!({"type": "string", "readOnly": true}),
    );
    props.insert(
        "deleted_batch".into(),
        json!({"type": "string", "format": "uuid", "readOnly": true}),
    );
    json!({"type": "object", "properties": props,
           "required": ["id", "owner_id", "created_at", "updated_at"]})
}

/// A create (`Mode::Create`) or update (`Mode::Update`) request body for an entity, with the
/// rules that span fields.
pub fn input(schema: &Schema, mode: Mode) -> Value {
    let objects = object_documents(schema.entity);
    let mut props = Map::new();
    let mut required = Vec::new();
    for d in &schema.fields {
        if d.writer == Writer::Computed {
            continue;
        }
        props.insert(d.name.clone(), field_schema(d, mode, objects.get(&d.name)));
        if mode == Mode::Create && d.required && d.default.is_none() {
            required.push(d.name.clone());
        }
    }
    props.insert(
        "owner_id".into(),
        json!({"type": ["string", "null"], "format": "uuid", "pattern": UUID_PATTERN,
               "description": "the user who owns the record (default: the caller)"}),
    );
    if mode == Mode::Update {
        // Sent back as read, system fields are accepted and ignored.
        for f in SYSTEM_FIELDS.iter().filter(|f| **f != "owner_id") {
            props.insert(
                f.to_string(),
                json!({"description": "set by Kontor; ignored on update"}),
            );
        }
    }
    let mut s = json!({"type": "object", "properties": props, "required": required,
                       "additionalProperties": false});
    let rules = cross_field_rules(schema, mode);
    if !rules.is_empty() {
        s["allOf"] = Value::Array(rules);
    }
    s
}

/// Rules a create or update request must meet across fields (mirrors
/// `validate::check_entity_rules` and the money rules; on update, rules that depend on the stored
/// record are the server's 409 and are not stated here).
fn cross_field_rules(schema: &Schema, mode: Mode) -> Vec<Value> {
    let mut rules = Vec::new();
    let absent_or_null = |f: &str| json!({"properties": {f: {"type": "null"}}});
    if mode == Mode::Create {
        match schema.entity {
            Entity::Contacts => rules.push(json!({"anyOf": [
                {"required": ["first_name"], "properties": {"first_name": non_blank(255)}},
                {"required": ["last_name"], "properties": {"last_name": non_blank(255)}}
            ]})),
            Entity::Activities => rules.push(json!({"anyOf": [
                {"required": ["linked_entity", "linked_id"],
                 "properties": {"linked_entity": {"type": "string"}, "linked_id": {"type": "string"}}},
                {"allOf": [absent_or_null("linked_entity"), absent_or_null("linked_id")]}
            ]})),
            Entity::Companies => rules.push(json!({"anyOf": [
                absent_or_null("kpp"),
                {"required": ["kpp", "inn"], "properties": {"inn": {"type": "string", "pattern": "^[0-9]{10}$"}}}
            ]})),
            Entity::Fields => rules.push(json!({
                "properties": {"name": {"pattern": "^[a-z][a-z0-9_]{0,62}$"}},
                "if": {"required": ["type"], "properties": {"type": {"const": "enum"}}},
                "then": {"required": ["options"], "properties": {"options": {"type": "array", "minItems": 1}}},
                "else": {"properties": {"options": {"anyOf": [{"type": "null"}, {"type": "array", "maxItems": 0}]}}}
            })),
            _ => {}
        }
    }
    // Money has the minor units of the currency the request names (or the default one on
    // create); on update without a currency the stored one decides, which is the server's 409.
    let money_fields: Vec<(String, bool)> = schema
        .fields
        .iter()
        .filter_map(|f| match &f.ty {
            FieldType::Money { positive } if f.writer == Writer::Input => {
                Some((f.name.clone(), *positive))
            }
            _ => None,
        })
        .collect();
    let line_prices = schema.field("lines").is_some();
    if schema
        .field("currency")
        .is_some_and(|f| f.writer == Writer::Input)
        && (!money_fields.is_empty() || line_prices)
    {
        let restrict = |decimals: u32| {
            let mut props = Map::new();
            for (name, positive) in &money_fields {
                props.insert(
                    name.clone(),
                    json!({"pattern": money_pattern(decimals, *positive)}),
                );
            }
            if line_prices {
                props.insert(
                    "lines".into(),
                    json!({"items": {"properties": {"price": {"pattern": money_pattern(decimals, false)}}}}),
                );
            }
            json!({"properties": props})
        };
        let mut listed: Vec<&str> = Vec::new();
        for units in money::MINOR_UNIT_CHOICES.iter().filter(|u| **u != 2) {
            let codes = money::currencies_with_minor_units(*units);
            listed.extend(codes);
            rules.push(json!({
                "if": {"required": ["currency"], "properties": {"currency": {"enum": codes}}},
                "then": restrict(*units)
            }));
        }
        // Every other currency, a null one (the default) and, on create, none at all: 2.
        let two = if mode == Mode::Create {
            json!({"anyOf": [{"not": {"required": ["currency"]}},
                             {"properties": {"currency": {"not": {"enum": listed}}}}]})
        } else {
            json!({"required": ["currency"], "properties": {"currency": {"not": {"enum": listed}}}})
        };
        rules.push(json!({"if": two, "then": restrict(2)}));
    }
    rules
}

/// A filter on a list: `?field=value`, where `null` asks for records without a value.
pub fn filter(def: &FieldDef) -> Option<Value> {
    let mut value = match &def.ty {
        FieldType::List(_) | FieldType::Rows(_) | FieldType::Object => return None,
        FieldType::Bool => json!({"type": "string", "enum": ["true", "false"]}),
        other => value_schema(other, Mode::Create),
    };
    let bound = kontor_core::read::MAX_FILTER_TEXT;
    if value["maxLength"]
        .as_u64()
        .is_some_and(|m| m > bound as u64)
    {
        value["maxLength"] = json!(bound);
    }
    Some(json!({"anyOf": [value, {"type": "string", "const": "null"}]}))
}
