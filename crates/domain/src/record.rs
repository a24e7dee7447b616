//! A record as Kontor stores it: system fields plus a JSON object of validated entity fields.
//! Its *image* — the flat JSON object of both — is what the journal keeps as before/after and what
//! replay rebuilds, so [`Record::to_image`] and [`Record::from_image`] are exact inverses.

use crate::entity::Entity;
use crate::journal::BatchId;
use crate::time::{self, Timestamp};
use serde_json::{Map, Value};

pub type RecordId = String;

/// A fresh time-ordered record id (UUID v7), so ids sort by creation time on every engine.
pub fn new_id() -> RecordId {
    uuid::Uuid::now_v7().to_string()
}

/// A record id as a client may write it: a hyphenated UUID in either case. Returns the
/// canonical (lowercase) form Kontor stores.
pub fn parse_id(s: &str) -> Option<RecordId> {
    let hyphens_ok = s.len() == 36
        && s.char_indices()
            .all(|(i, c)| matches!(i, 8 | 13 | 18 | 23) == (c == '-'));
    if !hyphens_ok || !s.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// Ids are UUIDs in their canonical lowercase hyphenated form.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 36
        && uuid::Uuid::parse_str(s)
            .map(|u| u.hyphenated().to_string() == s)
            .unwrap_or(false)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Deletion {
    pub batch: BatchId,
    pub at: Timestamp,
    pub by: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub entity: Entity,
    pub id: RecordId,
    pub owner_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Set while the record is in the recycle bin.
    pub deleted: Option<Deletion>,
    /// Entity fields, validated against the entity's schema.
    pub data: Map<String, Value>,
}

impl Record {
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// The flat JSON image: system fields followed by entity fields.
    pub fn to_image(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), Value::from(self.id.clone()));
        m.insert(
            "owner_id".into(),
            self.owner_id
                .clone()
                .map(Value::from)
                .unwrap_or(Value::Null),
        );
        m.insert(
            "created_at".into(),
            Value::from(time::format(self.created_at)),
        );
        m.insert(
            "updated_at".into(),
            Value::from(time::format(self.updated_at)),
        );
        match &self.deleted {
            Some(d) => {
                m.insert("deleted_at".into(), Value::from(time::format(d.at)));
                m.insert("deleted_by".into(), Value::from(d.by.clone()));
                m.insert("deleted_batch".into(), Value::from(d.batch.to_string()));
            }
            None => {
                m.insert("deleted_at".into(), Value::Null);
                m.insert("deleted_by".into(), Value::Null);
                m.insert("deleted_batch".into(), Value::Null);
            }
        }
        for (k, v) in &self.data {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }

    /// [`Record::to_image`] written straight to JSON text, byte for byte the same, without
    /// copying the record's fields into a new map first (the journal stores images as text).
    pub fn image_json(&self) -> Result<String, serde_json::Error> {
        use serde::ser::{SerializeMap, Serializer};
        let text = |s: String| Value::from(s);
        let (deleted_at, deleted_by, deleted_batch) = match &self.deleted {
            Some(d) => (
                text(time::format(d.at)),
                text(d.by.clone()),
                text(d.batch.to_string()),
            ),
            None => (Value::Null, Value::Null, Value::Null),
        };
        // In key order, as a JSON object map sorts them.
        let system: [(&str, Value); 7] = [
            ("created_at", text(time::format(self.created_at))),
            ("deleted_at", deleted_at),
            ("deleted_batch", deleted_batch),
            ("deleted_by", deleted_by),
            ("id", text(self.id.clone())),
            (
                "owner_id",
                self.owner_id.clone().map(text).unwrap_or(Value::Null),
            ),
            ("updated_at", text(time::format(self.updated_at))),
        ];
        let mut out = Vec::with_capacity(256);
        let mut ser = serde_json::Serializer::new(&mut out);
        let mut map = ser.serialize_map(None)?;
        let mut fields = self.data.iter().peekable();
        for (key, value) in &system {
            while let Some((k, v)) = fields.next_if(|(k, _)| k.as_str() < *key) {
                map.serialize_entry(k, v)?;
            }
            // An entity field of the same name wins, as in `to_image`.
            if fields.peek().is_some_and(|(k, _)| k.as_str() == *key) {
                continue;
            }
            map.serialize_entry(key, value)?;
        }
        for (k, v) in fields {
            map.serialize_entry(k, v)?;
        }
        map.end()?;
        String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
    }

    /// Rebuilds a record from its image; `None` if the image lacks the system fields.
    pub fn from_image(entity: Entity, image: &Value) -> Option<Record> {
        let obj = image.as_object()?;
        let id = obj.get("id")?.as_str()?.to_string();
        let owner_id = obj
            .get("owner_id")
            .and_then(Value::as_str)
            .map(String::from);
        let created_at = time::parse(obj.get("created_at")?.as_str()?)?;
        let updated_at = time::parse(obj.get("updated_at")?.as_str()?)?;
        let deleted = match obj.get("deleted_batch").and_then(Value::as_str) {
            Some(batch) => Some(Deletion {
                batch: batch.parse().ok()?,
                at: time::parse(obj.get("deleted_at")?.as_str()?)?,
                by: obj.get("deleted_by")?.as_str()?.to_string(),
            }),
            None => None,
        };
        let data = obj
            .iter()
            .filter(|(k, _)| !crate::schema::SYSTEM_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Record {
            entity,
            id,
            owner_id,
            created_at,
            updated_at,
            deleted,
            data,
        })
    }

    /// Lowercased text of the searchable fields, for `q` matching.
    pub fn search_text(&self, schema: &crate::schema::Schema) -> String {
        let mut out = String::new();
        for f in schema.fields.iter().filter(|f| f.ty.searchable()) {
            match self.data.get(&f.name) {
                Some(Value::String(s)) => {
                    out.push_str(&s.to_lowercase());
                    out.push('\u{1f}');
                }
                Some(Value::Array(items)) => {
                    for s in items.iter().filter_map(Value::as_str) {
                        out.push_str(&s.to_lowercase());
                        out.push('\u{1f}');
                    }
                }
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_round_trips() {
        let t = time::parse("2026-01-02T03:04:05.000006Z").unwrap();
        let mut data = Map::new();
        data.insert("name".into(), Value::from("Acme"));
        let rec = Record {
            entity: Entity::Companies,
            id: new_id(),
            owner_id: Some(new_id()),
            created_at: t,
            updated_at: t,
            deleted: Some(Deletion {
                batch: BatchId::new(),
                at: t,
                by: "u".into(),
            }),
            data,
        };
        let back = Record::from_image(Entity::Companies, &rec.to_image()).unwrap();
        assert_eq!(back, rec);
        assert!(is_valid_id(&rec.id));
        assert!(!is_valid_id("not-an-id"));
        assert_eq!(parse_id(&rec.id.to_uppercase()), Some(rec.id.clone()));
        assert_eq!(parse_id("0190A000-0000-7000-8000-00000000000Z"), None);
        assert_eq!(parse_id("0190a00000007000800000000000000a"), None);
    }

    #[test]
    fn image_text_is_the_image_written_out() {
        let t = time::parse("2026-01-02T03:04:05.000006Z").unwrap();
        let mut data = Map::new();
        // Field names before, between and after the system fields, nested values, escapes.
        for (k, v) in [
            ("a", Value::from(1)),
            ("deleted_x", Value::from("\"quoted\" \u{1F600}")),
            ("email", Value::Null),
            ("lines", serde_json::json!([{"b": "2", "a": [1, 2]}])),
            ("owner_idx", Value::Bool(true)),
            ("zz", Value::from("Коврик")),
        ] {
            data.insert(k.into(), v);
        }
        let mut rec = Record {
            entity: Entity::Products,
            id: new_id(),
            owner_id: None,
            created_at: t,
            updated_at: t,
            deleted: None,
            data,
        };
        assert_eq!(rec.image_json().unwrap(), rec.to_image().to_string());
        rec.owner_id = Some(new_id());
        rec.deleted = Some(Deletion {
            batch: BatchId::new(),
            at: t,
            by: "u".into(),
        });
        assert_eq!(rec.image_json().unwrap(), rec.to_image().to_string());
        rec.data.clear();
        assert_eq!(rec.image_json().unwrap(), rec.to_image().to_string());
    }
}
