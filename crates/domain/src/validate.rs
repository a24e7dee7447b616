//! Parses client input into a record's fields: every value is checked against its field's type and
//! turned into one canonical JSON form, and every error names the field (`lines[2].quantity`).
//! Parse, don't validate: the store only ever sees what came out of [`parse_fields`].
//!
//! The rules are strict on purpose, so the API document can state them exactly: a request the
//! document calls valid is accepted, one it calls invalid is refused with 422. What the input
//! alone breaks is 422 ([`DomainError::Invalid`]); what only the combination of the input with
//! the stored record or other records breaks (a rule spanning fields on update, a currency
//! change that strands an amount's decimals, a required custom field defined later) is 409
//! ([`DomainError::State`]).
//!
//! - `null` means "no value". For text fields an empty or blank string means the same; for
//!   every other type a string must be a valid value.
//! - Decimals and money are JSON strings (`"1500.50"`), never numbers; see [`crate::money`].
//! - Enums, currencies, dates and times are taken exactly as written (no trimming, no case
//!   folding); record ids may be written in either case and are stored lowercase.

use crate::entity::Entity;
use crate::error::DomainError;
use crate::money::{self, Dec};
use crate::record::parse_id;
use crate::schema::{FieldDef, FieldType, Schema, Writer, CUSTOM_FIELD_TYPES, SYSTEM_FIELDS};
use serde_json::{Map, Value};

/// Longest free text, in characters.
pub const LONG_TEXT_MAX: usize = 100_000;
/// Most items in a list field and most rows in a rows field.
pub const LIST_MAX: usize = 100;
pub const ROWS_MAX: usize = 1000;

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

/// The currency a record's money is in, when parsing can tell (records with a `currency`
/// field). Payments learn theirs from the invoice in the write path.
/// `from_input` tells whether the input itself named the currency: only then is an amount
/// with too many decimals the input's fault (422); against a stored currency it is a conflict
/// (409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyContext {
    currency: Option<String>,
    from_input: bool,
}

impl MoneyContext {
    pub fn of(currency: &str) -> MoneyContext {
        MoneyContext {
            currency: Some(currency.to_string()),
            from_input: true,
        }
    }
    fn stored(currency: &str) -> MoneyContext {
        MoneyContext {
            currency: Some(currency.to_string()),
            from_input: false,
        }
    }
    pub fn unknown() -> MoneyContext {
        MoneyContext {
            currency: None,
            from_input: true,
        }
    }
    fn minor(&self) -> Option<u32> {
        self.currency.as_deref().map(money::minor_units)
    }
}

/// Parses `input` (a JSON object) for a create (`current = None`) or a partial update.
/// `trusted` input comes from Kontor itself and may set computed fields.
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
    let ctx = money_context(schema, obj, current)?;

    for (key, value) in obj {
        if key == "owner_id" {
            owner = OwnerChange::Set(match value {
                Value::Null => None,
                Value::String(s) => Some(parse_id(s).ok_or_else(|| {
                    DomainError::invalid("owner_id", "owner_id must be a user id (UUID) or null")
                })?),
                _ => {
                    return Err(DomainError::invalid(
                        "owner_id",
                        "owner_id must be a user id (UUID) or null",
                    ))
                }
            });
            touched.push(key.clone());
            continue;
        }
        if SYSTEM_FIELDS.contains(&key.as_str()) {
            // Clients often send back what they read; accept system fields on updates, where
            // they change nothing.
            if current.is_some() {
                continue;
            }
            return Err(DomainError::invalid(
                key,
                format!("field '{key}' is set by Kontor and cannot be written"),
            ));
        }
        let def = schema.field(key).ok_or_else(|| {
            DomainError::invalid(key, format!("unknown field '{key}' for {}", schema.entity))
        })?;
        if def.writer == Writer::Computed && !trusted {
            if current.and_then(|c| c.get(key)) == Some(value) {
                continue;
            }
            return Err(DomainError::invalid(
                key,
                format!("field '{key}' is computed by Kontor and cannot be written"),
            ));
        }
        let stored = current.and_then(|c| c.get(key));
        let parsed = parse_value(
            &def.ty,
            value,
            &FieldPath::Field(key),
            &ctx,
            stored,
            trusted,
        )?;
        if def.immutable {
            if let Some(cur) = current {
                if cur.get(key) != parsed.as_ref() {
                    return Err(DomainError::State {
                        field: Some(key.clone()),
                        message: format!("field '{key}' cannot be changed once the record exists"),
                    });
                }
            }
        }
        if def.required && def.writer == Writer::Input && parsed.is_none() && !def.custom {
            return Err(DomainError::invalid(
                key,
                format!("field '{key}' is required; it cannot be cleared"),
            ));
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

    if let Some(cur) = current {
        if cur.get("currency") != data.get("currency") {
            rewrite_stored_money(schema, obj, &ctx, &mut data)?;
        }
    }
    for def in &schema.fields {
        if current.is_none() && !data.contains_key(&def.name) {
            if let Some(d) = &def.default {
                data.insert(def.name.clone(), d.clone());
            }
        }
        if def.required && def.writer == Writer::Input && !data.contains_key(&def.name) {
            let message = format!("field '{}' is required", def.name);
            // A custom field made required after the request was written (or the record
            // created) is a conflict with today's definitions, not a malformed request.
            return Err(if def.custom || current.is_some() {
                DomainError::State {
                    field: Some(def.name.clone()),
                    message,
                }
            } else {
                DomainError::invalid(&def.name, message)
            });
        }
    }
    check_entity_rules(schema.entity, &data).map_err(|e| match (e, current) {
        // On an update the input meets the stored record: a broken cross-field rule is a
        // conflict between the two.
        (DomainError::Invalid(f), Some(_)) => DomainError::State {
            field: Some(f.field),
            message: f.message,
        },
        (e, _) => e,
    })?;
    Ok(ParsedInput {
        data,
        owner,
        touched,
    })
}

/// The currency money fields are in after this input: the input's, else the stored one, else
/// the field's default. `Unknown` for records whose currency is not theirs to set (payments).
fn money_context(
    schema: &Schema,
    input: &Map<String, Value>,
    current: Option<&Map<String, Value>>,
) -> Result<MoneyContext, DomainError> {
    let Some(def) = schema.field("currency") else {
        return Ok(MoneyContext::unknown());
    };
    if def.writer == Writer::Input {
        if let Some(v) = input.get("currency") {
            return Ok(
                match parse_value(
                    &def.ty,
                    v,
                    &FieldPath::Field("currency"),
                    &MoneyContext::unknown(),
                    None,
                    false,
                )? {
                    Some(Value::String(c)) => MoneyContext::of(&c),
                    _ => MoneyContext::of(default_currency(def)),
                },
            );
        }
    }
    let stored = current
        .and_then(|c| c.get("currency"))
        .and_then(Value::as_str);
    Ok(match stored {
        Some(c) => MoneyContext::stored(c),
        None if def.writer == Writer::Input => MoneyContext::of(default_currency(def)),
        None => MoneyContext::unknown(),
    })
}

fn default_currency(def: &FieldDef) -> &str {
    def.default
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or(money::DEFAULT_CURRENCY)
}

/// When an update changes the currency, stored amounts the input did not touch are written at
/// the new currency's minor units; one that would lose decimals is a conflict.
fn rewrite_stored_money(
    schema: &Schema,
    input: &Map<String, Value>,
    ctx: &MoneyContext,
    data: &mut Map<String, Value>,
) -> Result<(), DomainError> {
    let Some(minor) = ctx.minor() else {
        return Ok(());
    };
    for def in &schema.fields {
        if input.contains_key(&def.name) || def.writer == Writer::Computed {
            continue;
        }
        let Some(value) = data.get_mut(&def.name) else {
            continue;
        };
        match &def.ty {
            FieldType::Money { .. } => restate_money(value, minor, &def.name)?,
            FieldType::Rows(defs) => {
                for (i, row) in value.as_array_mut().into_iter().flatten().enumerate() {
                    let Some(row) = row.as_object_mut() else {
                        continue;
                    };
                    for d in defs
                        .iter()
                        .filter(|d| matches!(d.ty, FieldType::Money { .. }))
                    {
                        if d.writer == Writer::Computed {
                            continue;
                        }
                        if let Some(v) = row.get_mut(&d.name) {
                            restate_money(v, minor, &format!("{}[{i}].{}", def.name, d.name))?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn restate_money(value: &mut Value, minor: u32, path: &str) -> Result<(), DomainError> {
    let Some(d) = value.as_str().and_then(Dec::parse) else {
        return Ok(());
    };
    match d.with_scale(minor) {
        Some(fixed) => {
            *value = Value::from(fixed.to_string());
            Ok(())
        }
        None => Err(DomainError::State {
            field: Some(path.to_string()),
            message: format!(
                "field '{path}' ({d}) has more decimals than the new currency allows ({minor}); change it together with the currency"
            ),
        }),
    }
}

/// Where a value sits in a record's input — a field, an item of a list, a cell of a row —
/// written out (`lines[2].price`) only when an error message needs it.
#[derive(Debug, Clone, Copy)]
pub enum FieldPath<'a> {
    Field(&'a str),
    Item(&'a FieldPath<'a>, usize),
    Cell(&'a FieldPath<'a>, &'a str),
}

impl std::fmt::Display for FieldPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldPath::Field(name) => f.write_str(name),
            FieldPath::Item(list, i) => write!(f, "{list}[{i}]"),
            FieldPath::Cell(row, name) => write!(f, "{row}.{name}"),
        }
    }
}

/// Parses one value; `Ok(None)` means "no value". `stored` is the field's current value (rows
/// compare computed cells with it).
pub fn parse_value(
    ty: &FieldType,
    value: &Value,
    path: &FieldPath<'_>,
    ctx: &MoneyContext,
    stored: Option<&Value>,
    trusted: bool,
) -> Result<Option<Value>, DomainError> {
    if value.is_null() {
        return Ok(None);
    }
    let bad = |what: &str| {
        DomainError::invalid(path.to_string(), format!("field '{path}' must be {what}"))
    };
    let string = || value.as_str().ok_or_else(|| bad("a string"));
    let v = match ty {
        FieldType::Text { max } => {
            let s = string()?;
            if s.chars().count() > *max {
                return Err(bad(&format!("at most {max} characters")));
            }
            if s.chars().any(char::is_control) {
                return Err(bad("a single line without control characters"));
            }
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            Value::from(s)
        }
        FieldType::LongText => {
            let s = string()?;
            if s.chars().count() > LONG_TEXT_MAX {
                return Err(bad(&format!("at most {LONG_TEXT_MAX} characters")));
            }
            if s.contains('\0') {
                return Err(bad("text without NUL characters"));
            }
            if s.trim().is_empty() {
                return Ok(None);
            }
            Value::from(s)
        }
        FieldType::Email => Value::from(parse_email(string()?).ok_or_else(|| {
            bad("an e-mail address like name@example.com (ASCII; a local part of at most 64 characters; at most 254 in all)")
        })?),
        FieldType::Phone => {
            let s = string()?;
            let digits = s.chars().filter(char::is_ascii_digit).count();
            let ok = s.chars().count() <= 32
                && (3..=20).contains(&digits)
                && s.chars()
                    .all(|c| c.is_ascii_digit() || " +-().x".contains(c));
            if !ok {
                return Err(bad(
                    "a phone number of 3 to 20 digits (spaces, +, -, brackets, dots and x allowed; at most 32 characters)",
                ));
            }
            Value::from(s.trim())
        }
        FieldType::Digits { lens } => {
            let s = string()?;
            if !s.chars().all(|c| c.is_ascii_digit()) || !lens.contains(&s.len()) {
                let l: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
                return Err(bad(&format!("{} digits", l.join(" or "))));
            }
            Value::from(s)
        }
        FieldType::TaxId(kind) => {
            let s = string()?;
            kind.check(s)
                .map_err(|why| {
                    DomainError::invalid(path.to_string(), format!("field '{path}': {why}"))
                })?;
            Value::from(s)
        }
        FieldType::Decimal {
            digits,
            scale,
            min,
            max,
        } => {
            let d = parse_dec(value, path)?;
            if d.scale() > *scale {
                return Err(bad(&format!(
                    "a number with at most {scale} decimal places"
                )));
            }
            if !d.below_power_of_ten(*digits) {
                return Err(bad(&format!("below 10^{digits} in magnitude")));
            }
            if let Some(m) = min {
                if d.cmp_value(Dec::from_int(*m)).is_lt() {
                    return Err(bad(&format!("at least {m}")));
                }
            }
            if let Some(m) = max {
                if d.cmp_value(Dec::from_int(*m)).is_gt() {
                    return Err(bad(&format!("at most {m}")));
                }
            }
            Value::from(d.normalized().to_string())
        }
        FieldType::Money { positive } => {
            let d = parse_dec(value, path)?;
            if d.is_negative() {
                return Err(bad("at least 0"));
            }
            if *positive && d.is_zero() {
                return Err(bad("greater than 0"));
            }
            if !d.below_power_of_ten(money::MONEY_INTEGER_DIGITS) {
                return Err(bad(&format!(
                    "below 10^{} (at most {} digits before the point)",
                    money::MONEY_INTEGER_DIGITS,
                    money::MONEY_INTEGER_DIGITS
                )));
            }
            match (ctx.minor(), &ctx.currency) {
                (Some(minor), Some(currency)) => {
                    let fixed = d.with_scale(minor).filter(|_| d.scale() <= minor);
                    let fixed = fixed.ok_or_else(|| {
                        let message = format!(
                            "field '{path}' must be an amount with at most {minor} decimal places ({currency})"
                        );
                        if ctx.from_input {
                            DomainError::invalid(path.to_string(), message)
                        } else {
                            DomainError::State {
                                field: Some(path.to_string()),
                                message,
                            }
                        }
                    })?;
                    Value::from(fixed.to_string())
                }
                _ => {
                    let most = money::MINOR_UNIT_CHOICES[money::MINOR_UNIT_CHOICES.len() - 1];
                    if d.scale() > most {
                        return Err(bad(&format!(
                            "an amount with at most {most} decimal places"
                        )));
                    }
                    Value::from(d.normalized().to_string())
                }
            }
        }
        FieldType::Integer { min, max } => {
            let n = match value {
                Value::Number(n) => n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                        .map(|f| f as i64)
                }),
                _ => None,
            }
            .ok_or_else(|| bad("a whole number"))?;
            if n < *min || n > *max {
                return Err(bad(&format!("between {min} and {max}")));
            }
            Value::from(n)
        }
        FieldType::Date => {
            let s = string()?;
            Value::from(parse_date(s).ok_or_else(|| bad("a date YYYY-MM-DD"))?)
        }
        FieldType::DateTime => {
            let s = string()?;
            let t = parse_datetime(s)
                .ok_or_else(|| bad("an RFC 3339 date-time like 2026-01-31T09:00:00Z"))?;
            Value::from(crate::time::format(t))
        }
        FieldType::Bool => Value::Bool(value.as_bool().ok_or_else(|| bad("true or false"))?),
        FieldType::Enum(options) => {
            let s = string()?;
            if !options.iter().any(|o| o == s) {
                return Err(bad(&format!("one of: {}", options.join(", "))));
            }
            Value::from(s)
        }
        FieldType::Currency => {
            let s = string()?;
            if s.len() != 3 || !s.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(bad("a three-letter ISO 4217 code in capitals, like RUB"));
            }
            Value::from(s)
        }
        FieldType::Ref(_) | FieldType::LinkedRef { .. } => {
            let s = string()?;
            Value::from(parse_id(s).ok_or_else(|| bad("a record id (UUID)"))?)
        }
        FieldType::List(inner) => {
            let items = value.as_array().ok_or_else(|| bad("a list"))?;
            if items.len() > LIST_MAX {
                return Err(bad(&format!("a list of at most {LIST_MAX} items")));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = FieldPath::Item(path, i);
                match parse_value(inner, item, &item_path, ctx, None, trusted)? {
                    Some(v) => out.push(v),
                    None => {
                        return Err(DomainError::invalid(
                            item_path.to_string(),
                            format!("field '{item_path}' must not be empty"),
                        ))
                    }
                }
            }
            Value::Array(out)
        }
        FieldType::Rows(defs) => {
            let rows = value.as_array().ok_or_else(|| bad("a list of objects"))?;
            if rows.len() > ROWS_MAX {
                return Err(bad(&format!("a list of at most {ROWS_MAX} rows")));
            }
            let stored_rows = stored.and_then(Value::as_array);
            let mut out = Vec::with_capacity(rows.len());
            for (i, row) in rows.iter().enumerate() {
                let stored_row = stored_rows
                    .and_then(|r| r.get(i))
                    .and_then(Value::as_object);
                out.push(Value::Object(parse_row(
                    defs,
                    row,
                    &FieldPath::Item(path, i),
                    ctx,
                    stored_row,
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

fn parse_dec(value: &Value, path: &FieldPath<'_>) -> Result<Dec, DomainError> {
    match value {
        Value::String(s) => Dec::parse(s).ok_or_else(|| {
            DomainError::invalid(
                path.to_string(),
                format!("field '{path}' must be a decimal string like \"1500.50\" (digits, an optional '-' and one '.')"),
            )
        }),
        Value::Number(_) => Err(DomainError::invalid(
            path.to_string(),
            format!("field '{path}' must be a decimal string like \"1500.50\", not a JSON number: numbers pass through binary floating point, strings stay exact"),
        )),
        _ => Err(DomainError::invalid(
            path.to_string(),
            format!("field '{path}' must be a decimal string like \"1500.50\""),
        )),
    }
}

/// Characters of an unquoted local part (RFC 5322 `atext`) besides letters and digits.
pub const EMAIL_LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

/// An e-mail address with its domain lowercased, or `None`. The rule is RFC 5321's, restricted
/// to ASCII: a dot-atom local part of at most 64 characters, `@`, and a host name of at least
/// two labels (letters, digits, hyphens; 1 to 63 each; no hyphen at either end); at most 254
/// characters in all. (Internationalised domains go in their `xn--` form.)
pub fn parse_email(s: &str) -> Option<String> {
    let (local, domain) = s.split_once('@')?;
    let atext = |c: char| c.is_ascii_alphanumeric() || EMAIL_LOCAL_SPECIALS.contains(c);
    let local_ok = (1..=64).contains(&local.len())
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(atext));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    (s.len() <= 254 && local_ok && domain_ok)
        .then(|| format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// `YYYY-MM-DD` exactly, years 0001 to 9999.
pub fn parse_date(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape || &s[..4] == "0000" {
        return None;
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.format("%Y-%m-%d").to_string())
}

/// An RFC 3339 date-time (`T` or `t` between date and time, any offset), in UTC.
pub fn parse_datetime(s: &str) -> Option<crate::time::Timestamp> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't') || parse_date(&s[..10]).is_none() {
        return None;
    }
    crate::time::parse(s)
}

fn parse_row(
    defs: &[FieldDef],
    row: &Value,
    path: &FieldPath<'_>,
    ctx: &MoneyContext,
    stored: Option<&Map<String, Value>>,
    trusted: bool,
) -> Result<Map<String, Value>, DomainError> {
    let obj = row.as_object().ok_or_else(|| {
        DomainError::invalid(
            path.to_string(),
            format!("field '{path}' must be an object"),
        )
    })?;
    let mut out = Map::new();
    for (key, value) in obj {
        let sub = FieldPath::Cell(path, key);
        let def = defs.iter().find(|d| &d.name == key).ok_or_else(|| {
            DomainError::invalid(sub.to_string(), format!("unknown field '{sub}'"))
        })?;
        if def.writer == Writer::Computed && !trusted {
            // Sent back as read: fine. Anything else is an attempt to write a computed cell.
            if stored.and_then(|s| s.get(key)) == Some(value) {
                continue;
            }
            return Err(DomainError::invalid(
                sub.to_string(),
                format!("field '{sub}' is computed by Kontor and cannot be written"),
            ));
        }
        if let Some(v) = parse_value(&def.ty, value, &sub, ctx, None, trusted)? {
            out.insert(key.clone(), v);
        } else if def.required {
            return Err(DomainError::invalid(
                sub.to_string(),
                format!("field '{sub}' is required"),
            ));
        }
    }
    for def in defs {
        if !out.contains_key(&def.name) {
            if let Some(d) = &def.default {
                out.insert(def.name.clone(), d.clone());
            } else if def.required && def.writer == Writer::Input {
                let sub = FieldPath::Cell(path, &def.name);
                return Err(DomainError::invalid(
                    sub.to_string(),
                    format!("field '{sub}' is required"),
                ));
            }
        }
    }
    Ok(out)
}

/// A stored decimal or money value (a decimal string), for computations.
pub fn stored_dec(value: Option<&Value>) -> Dec {
    value
        .and_then(Value::as_str)
        .and_then(Dec::parse)
        .unwrap_or(Dec::ZERO)
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
        Entity::Companies
            if has("kpp") && data.get("inn").and_then(Value::as_str).map(str::len) != Some(10) =>
        {
            return Err(DomainError::invalid(
                "kpp",
                "a KPP belongs to an organisation with a 10-digit INN",
            ));
        }
        Entity::ImportTemplates => {
            if let Some(columns) = data.get("columns").and_then(Value::as_object) {
                if columns.len() > 4096 {
                    return Err(DomainError::invalid(
                        "columns",
                        "a template maps at most 4096 columns",
                    ));
                }
                for (header, target) in columns {
                    let ok = header.chars().count() <= 200
                        && target.as_str().is_some_and(|t| t.chars().count() <= 200);
                    if !ok {
                        return Err(DomainError::invalid(
                            format!("columns.{header}"),
                            "columns maps a column header (at most 200 characters) to a field \
                             name, a field and the key of its record (company_id.inn), or \
                             \"\" to leave the column out",
                        ));
                    }
                }
            }
        }
        Entity::Fields => {
            let name = data.get("name").and_then(Value::as_str).unwrap_or("");
            if !is_custom_field_name(name) {
                return Err(DomainError::invalid(
                    "name",
                    "a custom field name is lowercase latin letters, digits and _, starting with a letter (at most 63)",
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
                    // Taken, like a unique value: the name belongs to a built-in field.
                    return Err(DomainError::Duplicate {
                        field: "name".into(),
                        message: format!("{target} already has a built-in field '{name}'"),
                    });
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

/// Custom field names: `^[a-z][a-z0-9_]{0,62}$`.
pub fn is_custom_field_name(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin;
    use serde_json::json;

    fn parse(entity: Entity, v: Value) -> Result<ParsedInput, DomainError> {
        parse_fields(builtin(entity), &v, None, false)
    }

    fn update(entity: Entity, current: &ParsedInput, v: Value) -> Result<ParsedInput, DomainError> {
        parse_fields(builtin(entity), &v, Some(&current.data), false)
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
            field_of(
                parse(Entity::Companies, json!({"name": "x", "inn": "7707083894"})).unwrap_err()
            ),
            "inn",
            "a wrong check digit"
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
            json!({"company_id": crate::record::new_id(), "lines": [{"quantity": "1", "price": "1"}, {"price": "2"}]}),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "lines[1].quantity");
    }

    #[test]
    fn money_is_a_decimal_string_at_the_currencys_minor_units() {
        let p = parse(Entity::Deals, json!({"title": "x", "amount": "1500.5"})).unwrap();
        assert_eq!(p.data["amount"], json!("1500.50"));
        let yen = parse(
            Entity::Deals,
            json!({"title": "x", "amount": "1500", "currency": "JPY"}),
        )
        .unwrap();
        assert_eq!(yen.data["amount"], json!("1500"));
        for bad in [
            json!({"title": "x", "amount": 1500.5}),
            json!({"title": "x", "amount": "1500.505"}),
            json!({"title": "x", "amount": "1.5", "currency": "JPY"}),
            json!({"title": "x", "amount": "-1"}),
            json!({"title": "x", "amount": "10000000000000"}),
            json!({"title": "x", "amount": "1e3"}),
            json!({"title": "x", "amount": ""}),
        ] {
            assert_eq!(
                field_of(parse(Entity::Deals, bad.clone()).unwrap_err()),
                "amount",
                "{bad}"
            );
        }
        // Changing the currency restates stored amounts, or refuses when decimals would be lost.
        let jpy = update(Entity::Deals, &yen, json!({"currency": "KWD"})).unwrap();
        assert_eq!(jpy.data["amount"], json!("1500.000"));
        let e = update(Entity::Deals, &p, json!({"currency": "JPY"})).unwrap_err();
        assert!(matches!(e, DomainError::State { .. }), "{e:?}");
    }

    #[test]
    fn strings_are_taken_as_written() {
        for bad in [
            json!({"title": "x", "stage": " new"}),
            json!({"title": "x", "currency": "rub"}),
            json!({"title": "x", "close_date": "2026-1-5"}),
            json!({"title": "x", "close_date": "0000-01-01"}),
            json!({"title": "x", "close_date": ""}),
            json!({"title": "x", "probability": "50"}),
            json!({"title": "x", "company_id": ""}),
        ] {
            assert!(parse(Entity::Deals, bad.clone()).is_err(), "{bad}");
        }
        let p = parse(
            Entity::Deals,
            json!({"title": "x", "company_id": "0190A000-0000-7000-8000-0000000000AB"}),
        )
        .unwrap();
        assert_eq!(p.data["company_id"], "0190a000-0000-7000-8000-0000000000ab");
        // Blank text is no value; a required field cannot be blanked.
        let p = parse(Entity::Deals, json!({"title": "x", "lost_reason": "  "})).unwrap();
        assert!(!p.data.contains_key("lost_reason"));
        assert_eq!(
            field_of(update(Entity::Deals, &p, json!({"title": " "})).unwrap_err()),
            "title"
        );
        // Lengths count what was sent, before trimming.
        let long = format!(" {}", "a".repeat(255));
        assert!(parse(Entity::Deals, json!({ "title": long })).is_err());
    }

    #[test]
    fn computed_line_cells_are_refused_unless_sent_back_unchanged() {
        let company = crate::record::new_id();
        let p = parse(
            Entity::Invoices,
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10.00"}]}),
        )
        .unwrap();
        let e = parse(
            Entity::Invoices,
            json!({"company_id": company, "lines": [{"quantity": "1", "price": "10", "total": "5"}]}),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "lines[0].total");
        let mut stored = p.clone();
        stored.data["lines"][0]["total"] = json!("10.00");
        let again = update(
            Entity::Invoices,
            &stored,
            json!({"lines": [{"quantity": "2", "price": "10.00", "total": "10.00"}]}),
        )
        .unwrap();
        assert_eq!(again.data["lines"][0]["quantity"], "2");
    }

    #[test]
    fn cross_field_rules_on_update_are_conflicts() {
        let p = parse(Entity::Contacts, json!({"last_name": "Ivanov"})).unwrap();
        let e = update(Entity::Contacts, &p, json!({"last_name": null})).unwrap_err();
        assert!(matches!(e, DomainError::State { .. }), "{e:?}");
        assert_eq!(
            field_of(parse(Entity::Contacts, json!({"first_name": " "})).unwrap_err()),
            "last_name"
        );
    }

    #[test]
    fn defaults_apply_on_create_only() {
        let p = parse(Entity::Deals, json!({"title": "x"})).unwrap();
        assert_eq!(p.data["stage"], "new");
        assert_eq!(p.data["currency"], "RUB");
        let upd = update(Entity::Deals, &p, json!({"stage": null})).unwrap();
        assert!(!upd.data.contains_key("stage"));
    }

    #[test]
    fn password_hashes_are_unknown_fields() {
        let e = parse(
            Entity::Users,
            json!({"email": "a@b.cd", "password_hash": "x"}),
        )
        .unwrap_err();
        assert_eq!(field_of(e), "password_hash");
    }
}
