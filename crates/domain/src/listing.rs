//! How lists compare and order field values. A list filter or sort on a field compares a *key*
//! derived from the stored value by one rule per field type, the same on every engine: text as
//! stored (by character code), phone numbers by their digits (the last ten: `8 900 123-45-67`
//! = `+7 (900) 123 45 67`), amounts and decimals as numbers, integers, booleans. Fields marked
//! filterable (built-in below, or custom fields an admin marks so) have a database index on
//! that key, so filters and sorts on them stay fast at any size; other plain fields can be
//! filtered too, by a scan.

use crate::schema::{FieldDef, FieldType, Schema};
use crate::Entity;

/// How a field's values are compared in lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Compared as stored, character by character (dates, times and ids order correctly so).
    Text,
    /// The digits of a phone number; only equality makes sense.
    Phone,
    /// Exact decimals (amounts, quantities) compared as numbers.
    Number,
    Integer,
    Bool,
}

impl KeyKind {
    /// The key kind of a field type, or `None` for lists, rows and objects (not filterable).
    pub fn of(ty: &FieldType) -> Option<KeyKind> {
        Some(match ty {
            FieldType::Phone => KeyKind::Phone,
            FieldType::Decimal { .. } | FieldType::Money { .. } => KeyKind::Number,
            FieldType::Integer { .. } => KeyKind::Integer,
            FieldType::Bool => KeyKind::Bool,
            FieldType::List(_) | FieldType::Rows(_) | FieldType::Object => return None,
            FieldType::Text { .. }
            | FieldType::LongText
            | FieldType::Email
            | FieldType::Digits { .. }
            | FieldType::TaxId(_)
            | FieldType::Date
            | FieldType::DateTime
            | FieldType::Enum(_)
            | FieldType::Currency
            | FieldType::Ref(_)
            | FieldType::LinkedRef { .. } => KeyKind::Text,
        })
    }

    /// Whether `<`, `<=`, `>`, `>=` mean something for this kind.
    pub fn ordered(self) -> bool {
        !matches!(self, KeyKind::Phone | KeyKind::Bool)
    }
}

/// A comparison in a list filter: `field=v` is `Eq`, `field[gte]=v` is `Gte`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
    /// Equal to one of several values (Kontor's own lookups, such as an import's matching; the
    /// API has no spelling for it).
    In,
}

impl FilterOp {
    pub const NAMES: [&'static str; 5] = ["eq", "gt", "gte", "lt", "lte"];

    pub fn parse(s: &str) -> Option<FilterOp> {
        Some(match s {
            "eq" => FilterOp::Eq,
            "gt" => FilterOp::Gt,
            "gte" => FilterOp::Gte,
            "lt" => FilterOp::Lt,
            "lte" => FilterOp::Lte,
            _ => return None,
        })
    }

    pub fn sql(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Gt => ">",
            FilterOp::Gte => ">=",
            FilterOp::Lt => "<",
            FilterOp::Lte => "<=",
            FilterOp::In => "IN",
        }
    }
}

/// Splits a query parameter name into field and comparison: `amount[gte]` → (`amount`, `Gte`).
/// `None` when the brackets hold no known comparison.
pub fn split_filter_name(name: &str) -> Option<(&str, FilterOp)> {
    match name.strip_suffix(']').and_then(|n| n.split_once('[')) {
        Some((field, op)) => Some((field, FilterOp::parse(op)?)),
        None => Some((name, FilterOp::Eq)),
    }
}

/// The key of a phone number: its digits, the last ten of them when there are more (a country
/// code or a trunk prefix such as Russia's 8 does not make another number).
pub fn phone_key(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    match digits.len() {
        n if n > 10 => digits[n - 10..].to_string(),
        _ => digits,
    }
}

/// Characters a stored phone number may hold besides digits (see the phone field type); the
/// databases strip exactly these to compute [`phone_key`].
pub const PHONE_PUNCTUATION: [char; 7] = [' ', '+', '-', '(', ')', '.', 'x'];

/// Built-in fields people filter and sort lists by, indexed on both engines.
pub fn builtin_filterable(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Companies => &["name", "inn", "email", "phone", "external_id"],
        Entity::Contacts => &["last_name", "email", "phone", "company_id", "external_id"],
        Entity::Leads => &["status", "email", "phone", "amount", "company_id"],
        Entity::Deals => &["stage", "amount", "company_id", "contact_id", "close_date"],
        Entity::Activities => &["kind", "due_at", "linked_id"],
        Entity::Products => &["name", "sku", "price", "group_id", "external_id"],
        Entity::Invoices => &[
            "number",
            "status",
            "company_id",
            "deal_id",
            "issue_date",
            "due_date",
            "total",
        ],
        Entity::Payments => &["invoice_id", "date", "amount"],
        Entity::Offers => &["product_id", "external_id"],
        _ => &[],
    }
}

/// The fields of `schema` that have a list index: built-in filterable fields and custom
/// fields marked filterable, each with its key kind.
pub fn indexed_fields(schema: &Schema) -> Vec<(&FieldDef, KeyKind)> {
    schema
        .fields
        .iter()
        .filter(|f| f.filterable)
        .filter_map(|f| KeyKind::of(&f.ty).map(|k| (f, k)))
        .collect()
}

/// Record columns a list can be filtered and sorted by besides the entity's fields.
pub const SYSTEM_SORTS: [&str; 3] = ["id", "created_at", "updated_at"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builtin;

    #[test]
    fn a_phone_in_any_format_has_one_key() {
        for p in [
            "+7 (900) 123 45 67",
            "8 900 123-45-67",
            "89001234567",
            "9001234567",
            "7.900.123.45.67",
        ] {
            assert_eq!(phone_key(p), "9001234567", "{p}");
        }
        assert_eq!(phone_key("123-45"), "12345");
    }

    #[test]
    fn filter_names_split_into_field_and_comparison() {
        assert_eq!(split_filter_name("amount"), Some(("amount", FilterOp::Eq)));
        assert_eq!(
            split_filter_name("amount[gte]"),
            Some(("amount", FilterOp::Gte))
        );
        assert_eq!(
            split_filter_name("amount[lt]"),
            Some(("amount", FilterOp::Lt))
        );
        assert_eq!(split_filter_name("amount[like]"), None);
    }

    #[test]
    fn every_builtin_filterable_field_exists_and_has_a_key() {
        for e in Entity::ALL {
            let schema = builtin(e);
            for name in builtin_filterable(e) {
                let f = schema.field(name).unwrap_or_else(|| panic!("{e}.{name}"));
                assert!(f.filterable, "{e}.{name}");
                assert!(KeyKind::of(&f.ty).is_some(), "{e}.{name}");
            }
            assert_eq!(indexed_fields(schema).len(), builtin_filterable(e).len());
        }
    }
}
