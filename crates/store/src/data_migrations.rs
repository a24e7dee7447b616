//! The Rust half of data migrations: pure functions from stored rows to rewritten rows. The
//! engines read the rows, call these, and write the results back inside the migration's
//! transaction, so both engines rewrite data identically. Rewrites keep the journal's promise
//! that replaying it from empty gives the live state: a record and the images that describe it
//! are rewritten by the same rule.

use kontor_domain::record::Record;
use kontor_domain::schema::{builtin, PASSWORD_CHANGED_AT};
use kontor_domain::time::{self, Timestamp};
use kontor_domain::Entity;
use serde_json::Value;
use std::collections::BTreeMap;

/// A journal row as a data migration sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub seq: i64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        time::parse(s).unwrap()
    }

    #[test]
    fn hashes_leave_images_and_records_but_the_change_stays_visible() {
        let id = "0190a000-0000-7000-8000-000000000001".to_string();
        let img = |hash: &str, name: &str| json!({"id": id, "email": "a@b.cd", "name": name, "password_hash": hash});
        let journal = vec![
            ImageRow {
                seq: 1,
                at: t("2026-01-01T00:00:00Z"),
                record_id: id.clone(),
                before: None,
                after: Some(img("h1", "A")),
            },
            ImageRow {
                seq: 2,
                at: t("2026-01-02T00:00:00Z"),
                record_id: id.clone(),
                before: Some(img("h1", "A")),
                after: Some(img("h1", "B")),
            },
            ImageRow {
                seq: 3,
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
