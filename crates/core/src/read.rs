//! Reads under permissions: single records, keyset-paginated lists with field filters and text
//! search, the recycle bin, and history. Every result is redacted for the actor (hidden and
//! internal fields removed), including the before/after images in history.

use crate::error::{CoreError, CoreResult};
use crate::Kontor;
use kontor_domain::journal::{diff, FieldChange, JournalEntry, Op, Origin};
use kontor_domain::permission::{Action, Actor, OwnerFilter};
use kontor_domain::record::{parse_id, Record};
use kontor_domain::schema::{CustomFieldDef, Schema};
use kontor_domain::time::{self, Timestamp};
use kontor_domain::validate::parse_datetime;
use kontor_domain::{BatchId, DomainError, Entity};
use kontor_store::{JournalQuery, ListQuery, ScopeGroup, TrashQuery};
use serde::Serialize;
use serde_json::{Map, Value};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;
/// Longest `q` accepted, in characters.
pub const MAX_QUERY_TEXT: usize = 200;
/// Longest value of a field filter (`?notes=...`), in characters.
pub const MAX_FILTER_TEXT: usize = 1000;

/// A page of results and the cursor for the next one (`None` on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryParams {
    pub entity: Option<String>,
    pub record_id: Option<String>,
    pub op: Option<String>,
    pub actor: Option<String>,
    pub origin: Option<String>,
    pub batch: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
    pub order: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HistoryItem {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub origin: String,
    pub batch: String,
    pub entity: String,
    pub record_id: String,
    pub op: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub changes: Vec<FieldChange>,
    /// The record was purged; its images are gone.
    pub scrubbed: bool,
}

pub fn page_limit(limit: Option<u32>) -> CoreResult<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(0) => Err(DomainError::invalid("limit", "limit must be at least 1").into()),
        Some(n) if n > MAX_PAGE => {
            Err(DomainError::invalid("limit", format!("limit must be at most {MAX_PAGE}")).into())
        }
        Some(n) => Ok(n),
    }
}

fn descending(order: Option<&str>, field: &str) -> CoreResult<bool> {
    match order {
        None | Some("desc") => Ok(true),
        Some("asc") => Ok(false),
        Some(o) => {
            Err(DomainError::invalid(field, format!("order must be asc or desc, not '{o}'")).into())
        }
    }
}

fn parse_time(s: Option<&str>, field: &str) -> CoreResult<Option<Timestamp>> {
    s.map(|s| {
        parse_datetime(s).ok_or_else(|| {
            CoreError::from(DomainError::invalid(
                field,
                format!("'{field}' must be an RFC 3339 time like 2026-01-31T09:00:00Z"),
            ))
        })
    })
    .transpose()
}

/// A record image as the actor may see it. Live records drop the recycle-bin fields.
pub fn present(actor: &Actor, rec: &Record) -> Value {
    let mut img = rec.to_image();
    if !rec.is_deleted() {
        if let Value::Object(m) = &mut img {
            m.remove("deleted_at");
            m.remove("deleted_by");
            m.remove("deleted_batch");
        }
    }
    actor.redact(rec.entity, &mut img);
    img
}

impl Kontor {
    /// Custom field definitions now in force.
    pub async fn custom_fields(&self) -> CoreResult<Vec<CustomFieldDef>> {
        let recs = self
            .store
            .list(&ListQuery::all(Entity::Fields, None, 10_000))
            .await?;
        Ok(recs
            .iter()
            .filter_map(|r| CustomFieldDef::from_record_data(&r.data))
            .collect())
    }

    pub async fn schema(&self, entity: Entity) -> CoreResult<Schema> {
        if !entity.allows_custom_fields() {
            return Ok(kontor_domain::schema::builtin(entity).clone());
        }
        Ok(Schema::with_custom(entity, &self.custom_fields().await?))
    }

    /// One live record the actor may read.
    pub async fn get(&self, actor: &Actor, entity: Entity, id: &str) -> CoreResult<Record> {
        let rec = self.store.get(entity, id).await?;
        match rec {
            Some(r) if actor.can(entity, Action::Read, r.owner_id.as_deref()) => {
                if r.is_deleted() {
                    return Err(CoreError::InTrash {
                        entity: entity.singular().into(),
                        id: id.into(),
                    });
                }
                Ok(r)
            }
            _ => Err(DomainError::not_found(entity.singular(), id).into()),
        }
    }

    /// The recycle bin as the actor may see it, newest deletion first.
    pub async fn trash(
        &self,
        actor: &Actor,
        entity: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> CoreResult<Page<Value>> {
        let limit = page_limit(limit)?;
        let entity = entity
            .map(|e| {
                e.parse::<Entity>()
                    .map_err(|e| DomainError::invalid("entity", e.to_string()))
            })
            .transpose()?;
        let owners = match entity {
            Some(e) => actor.owner_filter(e, Action::Read),
            None if actor.is_admin() => OwnerFilter::Any,
            None => OwnerFilter::OneOf(vec![actor.user_id.clone()]),
        };
        let cursor = cursor
            .map(|c| {
                c.split_once('~')
                    .and_then(|(us, id)| Some((time::from_micros(digits_i64(us)?), parse_id(id)?)))
                    .ok_or_else(|| {
                        DomainError::invalid("cursor", "the cursor is not one this server gave out")
                    })
            })
            .transpose()?;
        let mut rows = self
            .store
            .trash(&TrashQuery {
                entity,
                owners,
                batch: None,
                deleted_before: None,
                cursor,
                limit: limit + 1,
            })
            .await?;
        // Non-admins see only entities their role lets them read.
        rows.retain(|r| actor.can(r.entity, Action::Read, r.owner_id.as_deref()));
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().and_then(|r| {
                r.deleted
                    .as_ref()
                    .map(|d| format!("{}~{}", time::to_micros(d.at), r.id))
            })
        } else {
            None
        };
        Ok(Page {
            items: rows
                .iter()
                .map(|r| {
                    let mut v = present(actor, r);
                    if let Value::Object(m) = &mut v {
                        m.insert("entity".into(), Value::from(r.entity.as_str()));
                    }
                    v
                })
                .collect(),
            next_cursor,
        })
    }

    pub async fn history(&self, actor: &Actor, p: &HistoryParams) -> CoreResult<Page<HistoryItem>> {
        let limit = page_limit(p.limit)?;
        let entity = p
            .entity
            .as_deref()
            .map(|e| {
                e.parse::<Entity>()
                    .map_err(|e| DomainError::invalid("entity", e.to_string()))
            })
            .transpose()?;
        let mut q = JournalQuery {
            entity,
            record_id: id_param(
                p.record_id.as_deref(),
                "record_id",
                "record_id must be a record id (UUID)",
            )?,
            op: p
                .op
                .as_deref()
                .map(|o| o.parse::<Op>().map_err(|m| DomainError::invalid("op", m)))
                .transpose()?,
            actor: p.actor.as_deref().map(actor_param).transpose()?,
            origin: p
                .origin
                .as_deref()
                .map(|o| {
                    o.parse::<Origin>()
                        .map_err(|m| DomainError::invalid("origin", m))
                })
                .transpose()?,
            batch: p
                .batch
                .as_deref()
                .map(|b| {
                    b.parse::<BatchId>().map_err(|_| {
                        DomainError::invalid("batch", "batch must be a batch id (UUID)")
                    })
                })
                .transpose()?,
            from: parse_time(p.from.as_deref(), "from")?,
            to: parse_time(p.to.as_deref(), "to")?,
            cursor: p
                .cursor
                .as_deref()
                .map(|c| {
                    digits_i64(c).ok_or_else(|| {
                        DomainError::invalid("cursor", "the cursor is not one this server gave out")
                    })
                })
                .transpose()?,
            descending: descending(p.order.as_deref(), "order")?,
            limit: limit + 1,
            ..Default::default()
        };
        if !actor.is_admin() {
            let readable: Vec<Entity> = match entity {
                Some(e) => vec![e],
                None => Entity::CRM.to_vec(),
            }
            .into_iter()
            .filter(|e| actor.can_any(*e, Action::Read))
            .collect();
            if readable.is_empty() {
                return Err(DomainError::forbidden(format!(
                    "role {} may not read this history",
                    actor.role.name
                ))
                .into());
            }
            // One group per distinct scope: e.g. a manager sees entries about own companies,
            // contacts, ... and about every product.
            let mut groups: Vec<ScopeGroup> = Vec::new();
            for e in readable {
                let owners = match actor.owner_filter(e, Action::Read) {
                    OwnerFilter::OneOf(ids) => Some(ids),
                    _ => None,
                };
                match groups.iter_mut().find(|g| g.owners == owners) {
                    Some(g) => g.entities.push(e),
                    None => groups.push(ScopeGroup {
                        entities: vec![e],
                        owners,
                    }),
                }
            }
            q.scopes = Some(groups);
        }
        let mut rows = self.store.journal(&q).await?;
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|e| e.seq.to_string())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(|e| history_item(actor, e)).collect(),
            next_cursor,
        })
    }
}

fn history_item(actor: &Actor, e: JournalEntry) -> HistoryItem {
    let redact = |v: Option<Value>| {
        v.map(|mut v| {
            actor.redact(e.entity, &mut v);
            v
        })
    };
    let before = redact(e.before.clone());
    let after = redact(e.after.clone());
    HistoryItem {
        seq: e.seq,
        at: time::format(e.at),
        actor: e.actor,
        origin: e.origin.as_str().into(),
        batch: e.batch.to_string(),
        entity: e.entity.as_str().into(),
        record_id: e.record_id,
        op: e.op.as_str().into(),
        changes: diff(before.as_ref(), after.as_ref()),
        before,
        after,
        scrubbed: e.scrubbed,
    }
}

/// An optional id parameter in its canonical form; one that is not an id is 422 naming it.
fn id_param(raw: Option<&str>, name: &str, message: &str) -> CoreResult<Option<String>> {
    raw.map(|r| parse_id(r).ok_or_else(|| DomainError::invalid(name, message).into()))
        .transpose()
}

/// `1` to `18` ASCII digits, as cursors are written.
fn digits_i64(s: &str) -> Option<i64> {
    (!s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// An actor in a history query: a user id, or `system`.
pub fn actor_param(s: &str) -> CoreResult<String> {
    if s == kontor_domain::permission::SYSTEM_ACTOR {
        return Ok(s.to_string());
    }
    parse_id(s).ok_or_else(|| {
        DomainError::invalid("actor", "actor must be a user id (UUID) or 'system'").into()
    })
}

/// A record image without system fields, for comparisons.
pub fn fields_only(img: &Value) -> Map<String, Value> {
    img.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !kontor_domain::schema::SYSTEM_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}
