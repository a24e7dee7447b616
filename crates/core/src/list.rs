//! Lists under permissions: `field=value` and `field[gt|gte|lt|lte]=value` filters, a sort on
//! the id, `created_at`, `updated_at`, the owner or any filterable field with keyset cursors,
//! `q` through the search index when one is attached (else a substring scan), and counts that
//! are exact when cheap and marked as estimates when not.
//!
//! Filterable fields have database indexes (see `kontor_store::list`); this module also says
//! which indexes the database should have ([`Kontor::ensure_list_indexes`]).

use crate::error::{CoreError, CoreResult};
use crate::read::{page_limit, present, MAX_FILTER_TEXT, MAX_QUERY_TEXT};
use crate::Kontor;
use async_trait::async_trait;
use base64::Engine as _;
use kontor_domain::listing::{indexed_fields, split_filter_name, FilterOp, KeyKind};
use kontor_domain::money::Dec;
use kontor_domain::permission::{Action, Actor, OwnerFilter};
use kontor_domain::record::{parse_id, Record};
use kontor_domain::schema::{FieldType, Schema};
use kontor_domain::time;
use kontor_domain::validate::{parse_datetime, parse_value, FieldPath, MoneyContext};
use kontor_domain::{DomainError, Entity};
use kontor_store::{After, Condition, ListColumn, ListQuery, ListValue};
use serde::Serialize;
use serde_json::{json, Value};

/// Up to this many records a count is exact; beyond, the database may estimate.
pub const EXACT_COUNT_UP_TO: u64 = 10_000;
/// The most records a list's `q` is narrowed to by the search index (the best matches).
pub const MAX_Q_MATCHES: usize = 10_000;

#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub q: Option<String>,
    /// A column to sort by (default: `id`, which is creation order).
    pub sort: Option<String>,
    /// `asc` or `desc`; default `desc` for `id`, `created_at`, `updated_at` (newest first) and
    /// `asc` for fields (A to Z, smallest first).
    pub order: Option<String>,
    /// Whether to count the records the list selects.
    pub count: bool,
    /// Count only up to [`EXACT_COUNT_UP_TO`]; beyond, the total is that bound, marked
    /// `total_is_lower_bound` (pages that must not wait for a count of a million).
    pub count_bounded: bool,
    /// Every other query parameter: `field=value` or `field[op]=value`.
    pub filters: Vec<(String, String)>,
}

/// How many records a list selects.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Total {
    pub total: u64,
    /// The database's estimate rather than a count (large lists), or a count of what can be
    /// shown to a role that hides fields.
    pub total_is_estimate: bool,
    /// Only "more than `total`" is known (a bounded count, see [`ListParams::count_bounded`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub total_is_lower_bound: bool,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct ListPage {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
    /// When asked for; `None` inside when it cannot be told without revealing hidden fields.
    #[serde(skip)]
    pub total: Option<Option<Total>>,
}

/// What serves `q` in lists: the search index. Attached to [`Kontor`] by the server.
#[async_trait]
pub trait TextIndex: Send + Sync {
    /// The best `cap` records of `entity` within `owners` that match `q`, and how many matched.
    async fn matching_ids(
        &self,
        kontor: &Kontor,
        entity: Entity,
        owners: &OwnerFilter,
        q: &str,
        cap: usize,
    ) -> CoreResult<(Vec<String>, usize)>;
    /// Whether the index holds this entity's records (others are searched by a scan).
    fn covers(&self, entity: Entity) -> bool;
    /// Whether `q` matches the record on the fields of `visible` alone.
    fn matches(&self, visible: &Schema, rec: &Record, q: &str) -> bool;
}

/// A cursor of a list sorted by something else than the id: the sort, its direction, the last
/// row's sort value and id, base64url-encoded JSON.
#[derive(Serialize, serde::Deserialize)]
struct SortCursor {
    s: String,
    d: bool,
    v: Value,
    i: String,
}

impl Kontor {
    /// Attaches the index that serves `q` in lists (once; later calls are ignored).
    pub fn attach_text_index(&self, index: std::sync::Arc<dyn TextIndex>) {
        let _ = self.text_index.set(index);
    }

    /// A page of an entity's live records that the actor may read.
    pub async fn list(
        &self,
        actor: &Actor,
        entity: Entity,
        p: &ListParams,
    ) -> CoreResult<ListPage> {
        let limit = page_limit(p.limit)?;
        let schema = self.schema(entity).await?;
        let mut owners = actor.owner_filter(entity, Action::Read);
        if owners == OwnerFilter::Nothing {
            return Err(DomainError::forbidden(format!(
                "role {} may not read {entity}",
                actor.role.name
            ))
            .into());
        }
        let mut conditions = Vec::new();
        for (name, raw) in &p.filters {
            let (field, op) = split_filter_name(name).ok_or_else(|| {
                DomainError::invalid(
                    name,
                    format!(
                        "'{name}': a comparison in brackets is one of {}",
                        FilterOp::NAMES.join(", ")
                    ),
                )
            })?;
            if field == "owner_id" && op == FilterOp::Eq {
                owners = narrow_owner(owners, raw)?;
                continue;
            }
            conditions.push(condition(&schema, actor, name, field, op, raw)?);
        }
        let sort_name = p.sort.as_deref().unwrap_or("id");
        let sort = sort_column(&schema, actor, sort_name)?;
        let descending = match p.order.as_deref() {
            None => matches!(
                sort,
                ListColumn::Id | ListColumn::CreatedAt | ListColumn::UpdatedAt
            ),
            Some("desc") => true,
            Some("asc") => false,
            Some(o) => {
                return Err(DomainError::invalid(
                    "order",
                    format!("order must be asc or desc, not '{o}'"),
                )
                .into())
            }
        };
        let after = p
            .cursor
            .as_deref()
            .map(|c| parse_cursor(c, sort_name, &sort, descending))
            .transpose()?;
        if p.q
            .as_ref()
            .is_some_and(|q| q.chars().count() > MAX_QUERY_TEXT)
        {
            return Err(DomainError::invalid(
                "q",
                format!("q must have at most {MAX_QUERY_TEXT} characters"),
            )
            .into());
        }
        let text = p.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
        let empty = || ListPage {
            items: vec![],
            next_cursor: None,
            total: p.count.then_some(Some(Total {
                total: 0,
                total_is_estimate: false,
                total_is_lower_bound: false,
            })),
        };
        // Search text holds no control characters, so such a `q` matches nothing (and never
        // reaches a database that would refuse a NUL). Every parameter is checked before this.
        if text.is_some_and(|t| t.chars().any(char::is_control)) {
            return Ok(empty());
        }
        let mut q = ListQuery {
            entity,
            owners,
            conditions,
            text: None,
            ids: None,
            sort,
            descending,
            after,
            limit: limit + 1,
        };
        // For `q`, how many the index found when it found more than the list is narrowed to.
        let mut q_total: Option<usize> = None;
        let index = self
            .text_index
            .get()
            .filter(|ix| text.is_some() && ix.covers(entity));
        match (text, index) {
            (Some(t), Some(index)) => {
                let (ids, total) = index
                    .matching_ids(self, entity, &q.owners, t, MAX_Q_MATCHES)
                    .await?;
                if ids.is_empty() {
                    return Ok(empty());
                }
                if total > ids.len() {
                    q_total = Some(total);
                }
                q.ids = Some(ids);
            }
            (Some(t), None) => q.text = Some(t.to_lowercase()),
            (None, _) => {}
        }
        let mut rows = self.store.list(&q).await?;
        // The index and the stored search text cover every searchable field. When the role
        // hides some of them, a match must also hold on the visible ones, or `q` would reveal
        // hidden values.
        let hides = actor.hidden_fields(entity).is_some_and(|h| {
            h.iter()
                .any(|f| schema.field(f).is_some_and(|d| d.ty.searchable()))
        });
        let recheck = text.filter(|_| hides);
        if let Some(t) = recheck {
            let visible = actor.visible_schema(&schema);
            let lowered = t.to_lowercase();
            let keep = |r: &Record| match index {
                Some(ix) => ix.matches(&visible, r, t),
                None => r.search_text(&visible).contains(&lowered),
            };
            let mut matched = Vec::new();
            loop {
                let exhausted = rows.len() < q.limit as usize;
                q.after = rows.last().map(|r| after_of(r, &q.sort));
                matched.extend(rows.drain(..).filter(|r| keep(r)));
                if exhausted || matched.len() > limit as usize {
                    break;
                }
                rows = self.store.list(&q).await?;
            }
            rows = matched;
        }
        let next_cursor = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last()
                .map(|r| cursor_of(r, sort_name, &q.sort, descending))
        } else {
            None
        };
        let total = if !p.count {
            None
        } else if recheck.is_some() {
            // Counting would tell how many match through hidden values.
            Some(None)
        } else {
            q.after = None;
            Some(Some(match q_total {
                Some(n) => Total {
                    total: n as u64,
                    total_is_estimate: true,
                    total_is_lower_bound: false,
                },
                None if p.count_bounded => {
                    let n = self.store.count_at_most(&q, EXACT_COUNT_UP_TO).await?;
                    Total {
                        total: n.min(EXACT_COUNT_UP_TO),
                        total_is_estimate: false,
                        total_is_lower_bound: n > EXACT_COUNT_UP_TO,
                    }
                }
                None => {
                    let c = self.store.count(&q, EXACT_COUNT_UP_TO).await?;
                    Total {
                        total: c.n,
                        total_is_estimate: !c.exact,
                        total_is_lower_bound: false,
                    }
                }
            }))
        };
        Ok(ListPage {
            items: rows.iter().map(|r| present(actor, r)).collect(),
            next_cursor,
            total,
        })
    }

    /// The list indexes this database should have: every filterable field of every entity,
    /// custom fields included.
    pub async fn list_indexes_wanted(&self) -> CoreResult<Vec<(Entity, String, KeyKind)>> {
        let custom = self.custom_fields().await?;
        let mut wanted = Vec::new();
        for entity in Entity::ALL {
            let schema = if entity.allows_custom_fields() {
                Schema::with_custom(entity, &custom)
            } else {
                kontor_domain::schema::builtin(entity).clone()
            };
            for (f, kind) in indexed_fields(&schema) {
                wanted.push((entity, f.name.clone(), kind));
            }
        }
        Ok(wanted)
    }

    /// Builds the list indexes this database lacks and drops those it no longer needs.
    pub async fn ensure_list_indexes(
        &self,
        wanted: &[(Entity, String, KeyKind)],
    ) -> CoreResult<(Vec<String>, Vec<String>)> {
        Ok(self.store.ensure_list_indexes(wanted).await?)
    }
}

/// The column `name` stands for in a sort: a system column or a filterable, visible field.
fn sort_column(schema: &Schema, actor: &Actor, name: &str) -> CoreResult<ListColumn> {
    Ok(match name {
        "id" => ListColumn::Id,
        "created_at" => ListColumn::CreatedAt,
        "updated_at" => ListColumn::UpdatedAt,
        "owner_id" => ListColumn::Owner,
        _ => {
            let field = schema
                .field(name)
                .filter(|f| f.filterable && !actor.is_hidden(schema.entity, name))
                .and_then(|f| KeyKind::of(&f.ty).map(|k| (f, k)));
            match field {
                Some((f, kind)) => ListColumn::Field {
                    name: f.name.clone(),
                    kind,
                },
                None => {
                    let mut names: Vec<&str> = vec!["id", "created_at", "updated_at", "owner_id"];
                    names.extend(
                        indexed_fields(schema)
                            .iter()
                            .filter(|(f, _)| !actor.is_hidden(schema.entity, &f.name))
                            .map(|(f, _)| f.name.as_str()),
                    );
                    return Err(DomainError::invalid(
                        "sort",
                        format!(
                            "{} cannot be sorted by '{name}'; by one of: {}",
                            schema.entity,
                            names.join(", ")
                        ),
                    )
                    .into());
                }
            }
        }
    })
}

/// Parses one filter into a condition, refusing fields that do not exist or are hidden, values
/// that do not fit the field, and comparisons the field's values do not have.
fn condition(
    schema: &Schema,
    actor: &Actor,
    param: &str,
    name: &str,
    op: FilterOp,
    raw: &str,
) -> CoreResult<Condition> {
    if raw.chars().count() > MAX_FILTER_TEXT {
        return Err(DomainError::invalid(
            param,
            format!("filter '{param}' must have at most {MAX_FILTER_TEXT} characters"),
        )
        .into());
    }
    let bad = |what: &str| -> CoreError {
        DomainError::invalid(param, format!("filter '{param}' must be {what}")).into()
    };
    if matches!(name, "created_at" | "updated_at") {
        let t =
            parse_datetime(raw).ok_or_else(|| bad("an RFC 3339 time like 2026-01-31T09:00:00Z"))?;
        return Ok(Condition {
            column: if name == "created_at" {
                ListColumn::CreatedAt
            } else {
                ListColumn::UpdatedAt
            },
            op,
            value: Some(ListValue::Integer(time::to_micros(t))),
        });
    }
    let def = schema
        .field(name)
        .filter(|_| !actor.is_hidden(schema.entity, name))
        .ok_or_else(|| {
            DomainError::invalid(
                param,
                format!(
                    "unknown query parameter or field '{name}' for {}",
                    schema.entity
                ),
            )
        })?;
    let kind =
        KeyKind::of(&def.ty).ok_or_else(|| bad("a plain field; lists cannot be filtered on"))?;
    if op != FilterOp::Eq && !kind.ordered() {
        return Err(bad(&format!(
            "compared for equality only ({} values have no order)",
            def.ty.name()
        )));
    }
    let column = ListColumn::Field {
        name: def.name.clone(),
        kind,
    };
    if raw == "null" {
        if op != FilterOp::Eq {
            return Err(bad("a value to compare with, not null"));
        }
        return Ok(Condition {
            column,
            op,
            value: None,
        });
    }
    let value = match (&def.ty, kind) {
        (FieldType::Integer { min, max }, _) => {
            let n = Some(raw)
                .filter(|r| is_filter_integer(r))
                .and_then(|r| r.parse::<i64>().ok())
                .filter(|n| op != FilterOp::Eq || (n >= min && n <= max))
                .ok_or_else(|| bad(&format!("a whole number between {min} and {max}")))?;
            ListValue::Integer(n)
        }
        (_, KeyKind::Number) => {
            let d = Some(raw)
                .filter(|r| is_filter_decimal(r))
                .and_then(Dec::parse)
                .ok_or_else(|| {
                    bad("a number like 1500.50 (at most 15 digits before the point and 15 after)")
                })?;
            ListValue::Number(d.to_string())
        }
        (_, KeyKind::Bool) => match raw {
            "true" => ListValue::Bool(true),
            "false" => ListValue::Bool(false),
            _ => return Err(bad("true or false")),
        },
        (ty, _) => {
            let v = parse_value(
                ty,
                &Value::from(raw),
                &FieldPath::Field(name),
                &MoneyContext::unknown(),
                None,
                false,
            )?;
            match v {
                Some(Value::String(s)) => ListValue::Text(s),
                // Blank text is stored as no value.
                _ => {
                    return Ok(Condition {
                        column,
                        op: FilterOp::Eq,
                        value: None,
                    })
                }
            }
        }
    };
    Ok(Condition {
        column,
        op,
        value: Some(value),
    })
}

/// A number filter's value: `-?[0-9]{1,15}(\.[0-9]{1,15})?` (the API document's pattern).
pub fn is_filter_decimal(raw: &str) -> bool {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| (1..=15).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// A whole-number filter's value: `-?[0-9]{1,18}` (the API document's pattern).
pub fn is_filter_integer(raw: &str) -> bool {
    let body = raw.strip_prefix('-').unwrap_or(raw);
    (1..=18).contains(&body.len()) && body.bytes().all(|b| b.is_ascii_digit())
}

/// The patterns [`is_filter_decimal`] and [`is_filter_integer`] check, for the API document.
pub const FILTER_DECIMAL_PATTERN: &str = r"^-?[0-9]{1,15}(\.[0-9]{1,15})?$";
pub const FILTER_INTEGER_PATTERN: &str = r"^-?[0-9]{1,18}$";

fn narrow_owner(owners: OwnerFilter, raw: &str) -> CoreResult<OwnerFilter> {
    let Some(raw) = parse_id(raw) else {
        return Err(DomainError::invalid("owner_id", "owner_id must be a user id").into());
    };
    let raw = raw.as_str();
    Ok(match owners {
        OwnerFilter::Any => OwnerFilter::OneOf(vec![raw.to_string()]),
        OwnerFilter::OneOf(ids) if ids.iter().any(|i| i == raw) => {
            OwnerFilter::OneOf(vec![raw.to_string()])
        }
        _ => OwnerFilter::Nothing,
    })
}

/// A row's value of the sort column, as a cursor carries it.
fn sort_value(r: &Record, sort: &ListColumn) -> Value {
    match sort {
        ListColumn::Id => Value::Null,
        ListColumn::CreatedAt => Value::from(time::to_micros(r.created_at)),
        ListColumn::UpdatedAt => Value::from(time::to_micros(r.updated_at)),
        ListColumn::Owner => r.owner_id.clone().map(Value::from).unwrap_or(Value::Null),
        ListColumn::Field { name, .. } => r.data.get(name).cloned().unwrap_or(Value::Null),
    }
}

/// The value of a cursor as the store compares it, `None` for NULL. A value of the wrong shape
/// (not from this server) is refused.
fn list_value(v: &Value, sort: &ListColumn) -> Option<Option<ListValue>> {
    if v.is_null() {
        return Some(None);
    }
    Some(Some(match sort {
        ListColumn::Id => return Some(None),
        ListColumn::CreatedAt | ListColumn::UpdatedAt => ListValue::Integer(v.as_i64()?),
        ListColumn::Owner => ListValue::Text(v.as_str()?.to_string()),
        ListColumn::Field { kind, .. } => match kind {
            KeyKind::Text | KeyKind::Phone => ListValue::Text(v.as_str()?.to_string()),
            KeyKind::Number => ListValue::Number(Dec::parse(v.as_str()?)?.to_string()),
            KeyKind::Integer => ListValue::Integer(v.as_i64()?),
            KeyKind::Bool => ListValue::Bool(v.as_bool()?),
        },
    }))
}

fn after_of(r: &Record, sort: &ListColumn) -> After {
    After {
        value: list_value(&sort_value(r, sort), sort).flatten(),
        id: r.id.clone(),
    }
}

fn cursor_of(r: &Record, sort_name: &str, sort: &ListColumn, descending: bool) -> String {
    if *sort == ListColumn::Id {
        return r.id.clone();
    }
    let c = json!({"s": sort_name, "d": descending, "v": sort_value(r, sort), "i": r.id});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string())
}

fn parse_cursor(
    raw: &str,
    sort_name: &str,
    sort: &ListColumn,
    descending: bool,
) -> CoreResult<After> {
    let foreign = || -> CoreError {
        DomainError::invalid("cursor", "the cursor is not one this server gave out").into()
    };
    if *sort == ListColumn::Id {
        let id = parse_id(raw).ok_or_else(foreign)?;
        return Ok(After { value: None, id });
    }
    let c: SortCursor = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(foreign)?;
    if c.s != sort_name || c.d != descending {
        return Err(DomainError::invalid(
            "cursor",
            format!(
                "the cursor continues a list sorted by '{}' {}; ask with that sort and order",
                c.s,
                if c.d { "desc" } else { "asc" }
            ),
        )
        .into());
    }
    let id = parse_id(&c.i).ok_or_else(foreign)?;
    let value = list_value(&c.v, sort).ok_or_else(foreign)?;
    Ok(After { value, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_is_bound_to_its_sort() {
        let sort = ListColumn::Field {
            name: "amount".into(),
            kind: KeyKind::Number,
        };
        let id = kontor_domain::record::new_id();
        let c = json!({"s": "amount", "d": false, "v": "1500.50", "i": id});
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
        let after = parse_cursor(&raw, "amount", &sort, false).expect("parses");
        assert_eq!(after.value, Some(ListValue::Number("1500.50".into())));
        assert_eq!(after.id, id);
        assert!(parse_cursor(&raw, "amount", &sort, true).is_err());
        assert!(parse_cursor(&raw, "title", &sort, false).is_err());
        assert!(parse_cursor("not a cursor", "amount", &sort, false).is_err());
        let bad = json!({"s": "amount", "d": false, "v": "abc", "i": id});
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bad.to_string());
        assert!(parse_cursor(&raw, "amount", &sort, false).is_err());
    }
}
