//! The Rust half of data migrations: pure functions from stored rows to rewritten rows. The
//! engines read the rows, call these, and write the results back inside the migration's
//! transaction, so both engines rewrite data identically. Rewrites keep the journal's promise
//! that replaying it from empty gives the live state: a record and the images that describe it
//! are rewritten by the same rule.

use kontor_domain::money::{self, Dec};
use kontor_domain::record::Record;
use kontor_domain::schema::{builtin, CustomFieldDef, FieldType, Schema, PASSWORD_CHANGED_AT};
use kontor_domain::time::{self, Timestamp};
use kontor_domain::Entity;
use serde_json::Value;
use std::collections::BTreeMap;

/// A journal row as a data migration sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub seq: i64,
    pub entity: Entity,
    pub at: Timestamp,
    pub record_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// What moving credentials out of user records writes back.
#[derive(Debug, Default, PartialEq)]
pub struct CredentialsPlan {
    /// User records without the hash, with their new search text.
    pub records: Vec<(Record, String)>,
    /// Journal rows with rewritten images.
    pub journal: Vec<ImageRow>,
    /// `(user id, hash, changed at)` for the credentials table.
    pub credentials: Vec<(String, String, Timestamp)>,
}

const LEGACY_HASH_FIELD: &str = "password_hash";

fn hash_of(image: Option<&Value>) -> Option<&str> {
    image?.get(LEGACY_HASH_FIELD)?.as_str()
}

/// Takes the hash out of an image and records when the password last changed instead.
fn rewrite_image(image: &mut Option<Value>, changed_at: Option<Timestamp>) {
    if let Some(Value::Object(m)) = image {
        m.remove(LEGACY_HASH_FIELD);
        match changed_at {
            Some(t) => m.insert(PASSWORD_CHANGED_AT.into(), Value::from(time::format(t))),
            None => m.remove(PASSWORD_CHANGED_AT),
        };
    }
}

/// Moves password hashes out of user records and their journal images (given in seq order).
/// A password counts as changed at each entry whose after image holds a different hash than
/// the record's previous one; that time becomes `password_changed_at` in the images from then on.
pub fn credentials_out_of_records(users: Vec<Record>, journal: Vec<ImageRow>) -> CredentialsPlan {
    let mut plan = CredentialsPlan::default();
    let mut last_hash: BTreeMap<String, String> = BTreeMap::new();
    let mut changed: BTreeMap<String, Timestamp> = BTreeMap::new();
    for mut row in journal {
        let before_changed = changed.get(&row.record_id).copied();
        if let Some(h) = hash_of(row.after.as_ref()) {
            if last_hash.get(&row.record_id).map(String::as_str) != Some(h) {
                last_hash.insert(row.record_id.clone(), h.to_string());
                changed.insert(row.record_id.clone(), row.at);
            }
        }
        let after_changed = changed.get(&row.record_id).copied();
        let touched = row
            .before
            .as_ref()
            .is_some_and(|v| v.get(LEGACY_HASH_FIELD).is_some())
            || row
                .after
                .as_ref()
                .is_some_and(|v| v.get(LEGACY_HASH_FIELD).is_some());
        if touched {
            rewrite_image(&mut row.before, before_changed);
            rewrite_image(&mut row.after, after_changed);
            plan.journal.push(row);
        }
    }
    let schema = builtin(Entity::Users);
    for mut user in users {
        let hash = user
            .data
            .remove(LEGACY_HASH_FIELD)
            .and_then(|v| v.as_str().map(str::to_string));
        let Some(hash) = hash else { continue };
        let at = changed.get(&user.id).copied().unwrap_or(user.created_at);
        user.data
            .insert(PASSWORD_CHANGED_AT.into(), Value::from(time::format(at)));
        plan.credentials.push((user.id.clone(), hash, at));
        let search = user.search_text(schema);
        plan.records.push((user, search));
    }
    plan
}

/// What the decimals migration needs to know besides a record or image itself.
pub struct DecimalRules {
    /// Custom fields ever defined (their `number` fields are decimals too).
    pub custom: Vec<CustomFieldDef>,
    /// Each invoice's currency, for its payments.
    pub invoice_currency: BTreeMap<String, String>,
}

impl DecimalRules {
    /// Entities that have a decimal or money field, for which rows need looking at.
    pub fn entities(&self) -> Vec<Entity> {
        Entity::ALL
            .into_iter()
            .filter(|e| {
                Schema::with_custom(*e, &self.custom).fields.iter().any(|f| {
                    matches!(f.ty, FieldType::Decimal { .. } | FieldType::Money { .. })
                        || matches!(&f.ty, FieldType::Rows(d) if d.iter().any(|f| matches!(f.ty, FieldType::Decimal { .. } | FieldType::Money { .. })))
                })
            })
            .collect()
    }

    /// Rewrites decimal and money values that an earlier Kontor stored as JSON numbers into
    /// decimal strings, in a record's data or in a journal image (same rule for both, so replay
    /// still gives the live state). Money gets its currency's minor units, or more decimals
    /// where an old value had them (nothing is rounded away). Payments also get their invoice's
    /// currency. Returns whether anything changed.
    pub fn rewrite(&self, entity: Entity, fields: &mut serde_json::Map<String, Value>) -> bool {
        let schema = Schema::with_custom(entity, &self.custom);
        let mut changed = false;
        if entity == Entity::Payments && !fields.contains_key("currency") {
            let currency = fields
                .get("invoice_id")
                .and_then(Value::as_str)
                .and_then(|i| self.invoice_currency.get(i))
                .cloned()
                .unwrap_or_else(|| money::DEFAULT_CURRENCY.into());
            fields.insert("currency".into(), Value::from(currency));
            changed = true;
        }
        let minor = money::minor_units(money::currency_of(fields));
        for def in &schema.fields {
            let Some(value) = fields.get_mut(&def.name) else {
                continue;
            };
            changed |= rewrite_value(&def.ty, value, minor);
        }
        changed
    }
}

fn rewrite_value(ty: &FieldType, value: &mut Value, minor: u32) -> bool {
    match ty {
        FieldType::Decimal { .. } | FieldType::Money { .. } => {
            let Value::Number(n) = value else {
                return false;
            };
            let Some(d) = Dec::parse_json_number(&n.to_string()) else {
                return false;
            };
            let text = if matches!(ty, FieldType::Money { .. }) {
                d.with_scale(minor.max(d.normalized().scale()))
                    .unwrap_or(d)
                    .to_string()
            } else {
                d.normalized().to_string()
            };
            *value = Value::from(text);
            true
        }
        FieldType::Rows(defs) => {
            let mut changed = false;
            for row in value.as_array_mut().into_iter().flatten() {
                let Some(row) = row.as_object_mut() else {
                    continue;
                };
                for d in defs {
                    if let Some(v) = row.get_mut(&d.name) {
                        changed |= rewrite_value(&d.ty, v, minor);
                    }
                }
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        time::parse(s).unwrap()
    }

    #[test]
    fn numbers_become_decimal_strings_without_losing_digits() {
        let rules = DecimalRules {
            custom: vec![],
            invoice_currency: [("inv".to_string(), "JPY".to_string())].into(),
        };
        let mut invoice = json!({"currency": "RUB", "total": 365.36, "paid_amount": 0,
            "lines": [{"quantity": 0.5, "price": 100.1, "vat_rate": 20, "amount": 50.05}]})
        .as_object()
        .cloned()
        .unwrap();
        assert!(rules.rewrite(Entity::Invoices, &mut invoice));
        assert_eq!(invoice["total"], "365.36");
        assert_eq!(invoice["paid_amount"], "0.00");
        assert_eq!(invoice["lines"][0]["quantity"], "0.5");
        assert_eq!(invoice["lines"][0]["price"], "100.10");
        assert_eq!(invoice["lines"][0]["vat_rate"], "20");
        assert!(!rules.rewrite(Entity::Invoices, &mut invoice), "idempotent");
        let mut payment = json!({"invoice_id": "inv", "amount": 1500.5})
            .as_object()
            .cloned()
            .unwrap();
        assert!(rules.rewrite(Entity::Payments, &mut payment));
        assert_eq!(payment["currency"], "JPY");
        assert_eq!(
            payment["amount"], "1500.5",
            "a yen amount with decimals keeps them"
        );
    }

    #[test]
    fn hashes_leave_images_and_records_but_the_change_stays_visible() {
        let id = "0190a000-0000-7000-8000-000000000001".to_string();
        let img = |hash: &str, name: &str| json!({"id": id, "email": "a@b.cd", "name": name, "password_hash": hash});
        let journal = vec![
            ImageRow {
                seq: 1,
                entity: Entity::Users,
                at: t("2026-01-01T00:00:00Z"),
                record_id: id.clone(),
                before: None,
                after: Some(img("h1", "A")),
            },
            ImageRow {
                seq: 2,
                entity: Entity::Users,
                at: t("2026-01-02T00:00:00Z"),
                record_id: id.clone(),
                before: Some(img("h1", "A")),
                after: Some(img("h1", "B")),
            },
            ImageRow {
                seq: 3,
                entity: Entity::Users,
                at: t("2026-01-03T00:00:00Z"),
                record_id: id.clone(),
                before: Some(img("h1", "B")),
                after: Some(img("h2", "B")),
            },
        ];
        let mut data = serde_json::Map::new();
        data.insert("email".into(), json!("a@b.cd"));
        data.insert("password_hash".into(), json!("h2"));
        let user = Record {
            entity: Entity::Users,
            id: id.clone(),
            owner_id: None,
            created_at: t("2026-01-01T00:00:00Z"),
            updated_at: t("2026-01-03T00:00:00Z"),
            deleted: None,
            data,
        };
        let plan = credentials_out_of_records(vec![user], journal);
        assert_eq!(plan.credentials.len(), 1);
        assert_eq!(plan.credentials[0].1, "h2");
        assert_eq!(plan.credentials[0].2, t("2026-01-03T00:00:00Z"));
        let text = format!("{:?}{:?}", plan.journal, plan.records);
        assert!(!text.contains("h1") && !text.contains("h2"), "{text}");
        let changed = |v: &Option<Value>| v.as_ref().unwrap()[PASSWORD_CHANGED_AT].clone();
        assert_eq!(
            changed(&plan.journal[1].before),
            changed(&plan.journal[1].after)
        );
        assert_ne!(
            changed(&plan.journal[2].before),
            changed(&plan.journal[2].after)
        );
        assert_eq!(
            plan.records[0].0.data[PASSWORD_CHANGED_AT],
            changed(&plan.journal[2].after)
        );
    }
}
