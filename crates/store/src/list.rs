//! Lists of live records: the query (conditions on columns and field keys, an id set from the
//! search index, a sort and a keyset cursor), its SQL on both engines, counts, and the partial
//! indexes that keep filterable fields fast.
//!
//! A field's *key* is an SQL expression over the record's JSON, one per key kind (see
//! `kontor_domain::listing`), written identically in the index and in every query so the
//! database uses the index: text as stored in byte order (`COLLATE "C"` on PostgreSQL, SQLite's
//! default), phone digits, numbers, integers. Each index is partial — one entity's live records
//! — and ends with the id, so a filter on it comes out in id order and a sort on it pages by
//! `(key, id)`. NULLs sort first ascending on both engines.
//!
//! A sort on a nullable key is read in two *segments* — the NULLs, then the values (ascending),
//! or the other way round — so that each statement is one range of one index.
//!
//! SQLite's planner estimates `entity = 'contacts'` from an average over every entity, so on
//! a database of a million contacts it takes a list to be a few hundred rows, reads them
//! through an index led by the entity and sorts them — a scan. On SQLite a list therefore
//! names the index that serves it ([`IndexHints`]): the most selective indexed field it asks
//! to equal a value, else the indexed field it sorts by. PostgreSQL plans from real statistics.

use crate::sql::{Builder, Dialect, Stmt};
use kontor_domain::listing::{FilterOp, KeyKind};
use kontor_domain::permission::OwnerFilter;
use kontor_domain::Entity;

/// A column a list filters or sorts by.
#[derive(Debug, Clone, PartialEq)]
pub enum ListColumn {
    Id,
    CreatedAt,
    UpdatedAt,
    Owner,
    /// An entity field, compared by the key of its kind.
    Field {
        name: String,
        kind: KeyKind,
    },
}

/// A value compared with a column's key. Text for text, ids and phone keys; a decimal's text
/// for numbers; microseconds for `created_at`/`updated_at`.
#[derive(Debug, Clone, PartialEq)]
pub enum ListValue {
    Text(String),
    Number(String),
    Integer(i64),
    Bool(bool),
    /// Any of these (with [`FilterOp::In`]).
    AnyOf(Vec<ListValue>),
}

/// `column op value`; a `None` value means `IS NULL` (with `Eq`).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub column: ListColumn,
    pub op: FilterOp,
    pub value: Option<ListValue>,
}

/// Where the previous page ended: its last row's sort key (`None` when NULL) and id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub value: Option<ListValue>,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub entity: Entity,
    pub owners: OwnerFilter,
    /// All must hold.
    pub conditions: Vec<Condition>,
    /// Lowercased text that must occur in one of the searchable fields (a scan; lists served
    /// by the search index pass `ids` instead).
    pub text: Option<String>,
    /// Only these records (found by the search index).
    pub ids: Option<Vec<String>>,
    pub sort: ListColumn,
    pub descending: bool,
    pub after: Option<After>,
    pub limit: u32,
}

impl ListQuery {
    /// Every live record of an entity in id order, a page at a time.
    pub fn all(entity: Entity, after_id: Option<String>, limit: u32) -> ListQuery {
        ListQuery {
            entity,
            owners: OwnerFilter::Any,
            conditions: Vec::new(),
            text: None,
            ids: None,
            sort: ListColumn::Id,
            descending: false,
            after: after_id.map(|id| After { value: None, id }),
            limit,
        }
    }
}

/// How many records a list holds: exact, or the database's estimate when counting exactly
/// would read more than the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub n: u64,
    pub exact: bool,
}

/// One statement of a list (see the module docs on segments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// Everything, for sorts on columns that are never NULL.
    Whole,
    /// Rows whose sort key is NULL, in id order.
    Nulls,
    /// Rows whose sort key has a value, in key order.
    Values,
}

/// The segments to read, in order, for a query and where its cursor points. A condition on
/// the sort column leaves out the segment it excludes (a comparison excludes NULLs).
pub(crate) fn segments(q: &ListQuery) -> Vec<Segment> {
    use Segment::*;
    if !matches!(q.sort, ListColumn::Field { .. } | ListColumn::Owner) {
        return vec![Whole];
    }
    let at_null = q.after.as_ref().map(|a| a.value.is_none());
    let order: &[Segment] = match (q.descending, at_null) {
        // Ascending: NULLs first.
        (false, None | Some(true)) => &[Nulls, Values],
        (false, Some(false)) => &[Values],
        // Descending: values first, NULLs last.
        (true, None | Some(false)) => &[Values, Nulls],
        (true, Some(true)) => &[Nulls],
    };
    let on_sort = q.conditions.iter().filter(|c| c.column == q.sort);
    let (mut nulls, mut values) = (true, true);
    for c in on_sort {
        match c.value {
            Some(_) => nulls = false,
            None => values = false,
        }
    }
    order
        .iter()
        .copied()
        .filter(|s| match s {
            Nulls => nulls,
            Values => values,
            Whole => true,
        })
        .collect()
}

/// A name an index may have on both engines (PostgreSQL cuts names at 63 bytes).
const INDEX_PREFIX: &str = "lf1_";

impl Dialect {
    /// The SQL expression of a column's key. Field names come from a schema (lowercase latin,
    /// digits and `_`), so they are written into the statement, as the index has them.
    pub(crate) fn key_expr(self, column: &ListColumn) -> String {
        let (name, kind) = match column {
            ListColumn::Id => return "id".into(),
            ListColumn::CreatedAt => return "created_at".into(),
            ListColumn::UpdatedAt => return "updated_at".into(),
            ListColumn::Owner => return "owner_id".into(),
            ListColumn::Field { name, kind } => (clean_name(name), *kind),
        };
        let raw = match self {
            Dialect::Sqlite => format!("json_extract(data, '$.{name}')"),
            Dialect::Postgres => format!("(data ->> '{name}')"),
        };
        match (kind, self) {
            (KeyKind::Text, Dialect::Sqlite) | (KeyKind::Integer, Dialect::Sqlite) => raw,
            (KeyKind::Bool, _) => raw,
            (KeyKind::Text, Dialect::Postgres) => format!("({raw} COLLATE \"C\")"),
            (KeyKind::Integer, Dialect::Postgres) => format!("(CAST({raw} AS bigint))"),
            (KeyKind::Number, Dialect::Sqlite) => format!("CAST({raw} AS REAL)"),
            (KeyKind::Number, Dialect::Postgres) => format!("(CAST({raw} AS numeric))"),
            (KeyKind::Phone, _) => {
                let mut s = raw;
                for c in kontor_domain::listing::PHONE_PUNCTUATION {
                    s = format!("replace({s}, '{c}', '')");
                }
                match self {
                    Dialect::Sqlite => format!("substr({s}, -10)"),
                    Dialect::Postgres => format!("(right({s}, 10) COLLATE \"C\")"),
                }
            }
        }
    }

    /// A placeholder for a value compared with `column`'s key, cast as the key is.
    fn key_arg(self, b: &mut Builder, column: &ListColumn, v: &ListValue) -> String {
        match v {
            ListValue::Text(t) => {
                let t = match column {
                    ListColumn::Field {
                        kind: KeyKind::Phone,
                        ..
                    } => kontor_domain::listing::phone_key(t),
                    _ => t.clone(),
                };
                b.text(t)
            }
            ListValue::Number(n) => {
                let p = b.text(n.clone());
                match self {
                    Dialect::Sqlite => format!("CAST({p} AS REAL)"),
                    Dialect::Postgres => format!("CAST({p} AS numeric)"),
                }
            }
            ListValue::Integer(i) => b.int(*i),
            ListValue::Bool(v) => match self {
                Dialect::Sqlite => b.int(i64::from(*v)),
                Dialect::Postgres => b.text(v.to_string()),
            },
            ListValue::AnyOf(values) => {
                let parts: Vec<String> =
                    values.iter().map(|v| self.key_arg(b, column, v)).collect();
                if parts.is_empty() {
                    // Nothing is equal to no value.
                    "(NULL)".into()
                } else {
                    format!("({})", parts.join(", "))
                }
            }
        }
    }

    /// `FROM records WHERE` the query's conditions, without cursor, order or limit; on
    /// SQLite through the index `hint` names.
    fn list_where(self, b: &mut Builder, q: &ListQuery, hint: Option<&str>) {
        let indexed_by = match (self, hint) {
            (Dialect::Sqlite, Some(name)) => format!(" INDEXED BY \"{}\"", clean_name(name)),
            _ => String::new(),
        };
        // The entity is written into the statement so that the partial indexes apply.
        b.push(&format!(
            " FROM records{indexed_by} WHERE entity = '{}' AND deleted_batch IS NULL",
            q.entity.as_str()
        ));
        b.owners("owner_id", &q.owners);
        for c in &q.conditions {
            let key = self.key_expr(&c.column);
            match &c.value {
                None => b.push(&format!(" AND {key} IS NULL")),
                Some(v) => {
                    let p = self.key_arg(b, &c.column, v);
                    b.push(&format!(" AND {key} {} {p}", c.op.sql()));
                }
            }
        }
        if let Some(t) = &q.text {
            // A plain substring test: no pattern language, so no text can make it fail.
            let p = b.text(t.clone());
            b.push(&match self {
                Dialect::Sqlite => format!(" AND instr(search, {p}) > 0"),
                Dialect::Postgres => format!(" AND strpos(search, {p}) > 0"),
            });
        }
        if let Some(ids) = &q.ids {
            // One parameter whatever the number of ids: a JSON array.
            let p = b.text(serde_json::Value::from(ids.clone()).to_string());
            b.push(&match self {
                Dialect::Sqlite => format!(" AND id IN (SELECT value FROM json_each({p}))"),
                Dialect::Postgres => {
                    format!(" AND id IN (SELECT jsonb_array_elements_text(CAST({p} AS jsonb)))")
                }
            });
        }
    }

    /// One segment of a list page: at most `limit` rows.
    pub(crate) fn list_segment(
        self,
        q: &ListQuery,
        segment: Segment,
        limit: u32,
        hint: Option<&str>,
    ) -> Stmt {
        let mut b = Builder::new(format!("SELECT {}", self.record_columns()));
        self.list_where(&mut b, q, hint);
        let key = self.key_expr(&q.sort);
        let (cmp, dir) = if q.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        let order = match segment {
            Segment::Whole | Segment::Values => {
                if segment == Segment::Values {
                    b.push(&format!(" AND {key} IS NOT NULL"));
                }
                // The cursor continues this segment only if it points into it.
                match &q.after {
                    Some(After { value: Some(v), id }) if segment == Segment::Values => {
                        let v = self.key_arg(&mut b, &q.sort, v);
                        let i = b.text(id.clone());
                        b.push(&match self {
                            Dialect::Postgres => format!(" AND ({key}, id) {cmp} ({v}, {i})"),
                            // SQLite does not match a row value against an index on an
                            // expression; spelled out, the first term is the index's range.
                            Dialect::Sqlite => format!(
                                " AND {key} {cmp}= {v} AND ({key} {cmp} {v} OR id {cmp} {i})"
                            ),
                        });
                    }
                    None if segment == Segment::Values && self == Dialect::Sqlite => {
                        // A range that holds every value: without it SQLite, which knows no
                        // better, would rather sort all the rows than read the index in order.
                        b.push(&format!(" AND {key} >= {}", lowest(&q.sort)));
                    }
                    Some(After { id, .. }) if segment == Segment::Whole => {
                        let i = b.text(id.clone());
                        if q.sort == ListColumn::Id {
                            b.push(&format!(" AND id {cmp} {i}"));
                        } else {
                            let v = match &q.after {
                                Some(After { value: Some(v), .. }) => {
                                    self.key_arg(&mut b, &q.sort, v)
                                }
                                _ => "NULL".into(),
                            };
                            b.push(&format!(" AND ({key}, id) {cmp} ({v}, {i})"));
                        }
                    }
                    _ => {}
                }
                if q.sort == ListColumn::Id {
                    format!("id {dir}")
                } else {
                    match self {
                        Dialect::Postgres if segment == Segment::Values => {
                            format!("{key} {dir} NULLS {}, id {dir}", nulls_for(dir))
                        }
                        _ => format!("{key} {dir}, id {dir}"),
                    }
                }
            }
            Segment::Nulls => {
                b.push(&format!(" AND {key} IS NULL"));
                if let Some(After { value: None, id }) = &q.after {
                    let i = b.text(id.clone());
                    b.push(&format!(" AND id {cmp} {i}"));
                }
                match self {
                    // The key is NULL throughout, so this is id order; spelled as the index's
                    // order so that PostgreSQL reads the NULLs from the index and stops at the
                    // limit. Told only `ORDER BY id`, it has no statistics of the expression
                    // behind a partial index, guesses 0.5 % of the rows are NULL and walks the
                    // primary key filtering: the whole table when there are none (330 ms for
                    // the first page of a million contacts sorted by last name).
                    Dialect::Postgres => {
                        format!("{key} {dir} NULLS {}, id {dir}", nulls_for(dir))
                    }
                    Dialect::Sqlite => format!("id {dir}"),
                }
            }
        };
        let l = b.int(i64::from(limit));
        b.push(&format!(" ORDER BY {order} LIMIT {l}"));
        b.done()
    }

    /// Counts the list's records, reading at most `bound + 1` of them.
    pub(crate) fn list_count(self, q: &ListQuery, bound: u64, hint: Option<&str>) -> Stmt {
        let mut b = Builder::new("SELECT count(*) AS n FROM (SELECT 1");
        self.list_where(&mut b, q, hint);
        let l = b.int(i64::try_from(bound.saturating_add(1)).unwrap_or(i64::MAX));
        b.push(&format!(" LIMIT {l}) AS bounded"));
        b.done()
    }

    /// The planner's estimate of the list's size (PostgreSQL: `EXPLAIN`'s row estimate).
    pub(crate) fn list_estimate(self, q: &ListQuery) -> Stmt {
        let mut b = Builder::new("EXPLAIN SELECT 1");
        self.list_where(&mut b, q, None);
        b.done()
    }

    /// `CREATE INDEX` for one filterable field of an entity.
    pub fn list_index_sql(self, entity: Entity, field: &str, kind: KeyKind) -> String {
        let name = list_index_name(entity, field);
        let key = self.key_expr(&ListColumn::Field {
            name: field.into(),
            kind,
        });
        let table_key = match self {
            Dialect::Sqlite => format!("{key}, id"),
            Dialect::Postgres => format!("{key} NULLS FIRST, id"),
        };
        let concurrently = match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => "CONCURRENTLY ",
        };
        format!(
            "CREATE INDEX {concurrently}IF NOT EXISTS \"{name}\" ON records ({table_key}) \
             WHERE entity = '{}' AND deleted_batch IS NULL",
            entity.as_str()
        )
    }

    /// Names of the list indexes present: `(name, usable)`; PostgreSQL marks an index whose
    /// concurrent build was interrupted as not valid.
    pub(crate) fn list_indexes_present(self) -> Stmt {
        let sql = match self {
            Dialect::Sqlite => {
                "SELECT name, 1 FROM sqlite_master WHERE type = 'index' AND name LIKE 'lf%'"
            }
            Dialect::Postgres => {
                "SELECT c.relname::text, CASE WHEN i.indisvalid THEN 1 ELSE 0 END::bigint \
                 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid \
                 WHERE c.relname LIKE 'lf%' AND pg_catalog.pg_table_is_visible(c.oid)"
            }
        };
        crate::sql::stmt(sql, vec![])
    }

    pub(crate) fn drop_list_index(self, name: &str) -> String {
        let name = clean_name(name);
        match self {
            Dialect::Sqlite => format!("DROP INDEX IF EXISTS \"{name}\""),
            Dialect::Postgres => format!("DROP INDEX CONCURRENTLY IF EXISTS \"{name}\""),
        }
    }
}

/// The list indexes present (SQLite only; empty elsewhere), each with the planner's count of
/// rows per key, for naming the index that serves a list. Shared by the store, which refreshes
/// it when it builds or drops indexes and when it gathers statistics.
#[derive(Clone, Default)]
pub struct IndexHints(std::sync::Arc<std::sync::RwLock<std::collections::HashMap<String, u64>>>);

impl IndexHints {
    pub(crate) fn set(&self, present: std::collections::HashMap<String, u64>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = present;
    }

    /// The index to read `q` through: of the fields it asks to equal a value, the one whose
    /// index has the fewest rows per key; else the field it sorts by; else none (lists by id,
    /// time or search hits, which the planner serves well).
    pub(crate) fn choose(&self, q: &ListQuery) -> Option<String> {
        if q.ids.is_some() {
            return None;
        }
        let present = self.0.read().unwrap_or_else(|p| p.into_inner());
        if present.is_empty() {
            return None;
        }
        let index_of = |c: &ListColumn| match c {
            ListColumn::Field { name, .. } => {
                let n = list_index_name(q.entity, name);
                present.get(&n).map(|rows| (n, *rows))
            }
            _ => None,
        };
        let equal = q
            .conditions
            .iter()
            .filter(|c| matches!(c.op, FilterOp::Eq | FilterOp::In) && c.value.is_some())
            .filter_map(|c| index_of(&c.column))
            .min_by_key(|(_, rows)| *rows);
        equal.or_else(|| index_of(&q.sort)).map(|(n, _)| n)
    }
}

/// A value at or below every value of a column's key (SQLite's ordering of its types).
fn lowest(column: &ListColumn) -> &'static str {
    match column {
        ListColumn::Field {
            kind: KeyKind::Number,
            ..
        } => "-1.7976931348623157e308",
        ListColumn::Field {
            kind: KeyKind::Integer,
            ..
        }
        | ListColumn::CreatedAt
        | ListColumn::UpdatedAt => "-9223372036854775808",
        ListColumn::Field {
            kind: KeyKind::Bool,
            ..
        } => "0",
        _ => "''",
    }
}

fn nulls_for(dir: &str) -> &'static str {
    if dir == "ASC" {
        "FIRST"
    } else {
        "LAST"
    }
}

/// Keeps only the characters a schema's names are made of (they never hold others).
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The name of the list index of an entity's field: `lf1_<entity>_<field>`, or with a hash of
/// the field's name when that would be longer than PostgreSQL's 63 bytes.
pub fn list_index_name(entity: Entity, field: &str) -> String {
    let field = clean_name(field);
    let name = format!("{INDEX_PREFIX}{}_{field}", entity.as_str());
    if name.len() <= 63 {
        return name;
    }
    // FNV-1a: names only need to differ, not to resist anyone.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in field.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!(
        "{INDEX_PREFIX}{}_{}_{h:016x}",
        entity.as_str(),
        &field[..30.min(field.len())]
    )
}

/// The row estimate in the first line of PostgreSQL's `EXPLAIN`: `… (cost=… rows=N width=…)`.
pub(crate) fn plan_rows(plan: &str) -> Option<u64> {
    let line = plan.lines().next()?;
    let rest = &line[line.find(" rows=")? + 6..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_read_from_the_plan() {
        let plan = "Index Only Scan using lf1_contacts_email on records  (cost=0.42..8.44 rows=1234 width=4)";
        assert_eq!(plan_rows(plan), Some(1234));
        assert_eq!(plan_rows("Result"), None);
    }

    #[test]
    fn index_names_fit_postgres() {
        let long = "a".repeat(63);
        let n = list_index_name(Entity::Contacts, &long);
        assert!(n.len() <= 63, "{n}");
        assert_ne!(n, list_index_name(Entity::Contacts, &"a".repeat(62)));
        assert_eq!(
            list_index_name(Entity::Contacts, "email"),
            "lf1_contacts_email"
        );
    }

    #[test]
    fn a_sort_on_a_nullable_key_reads_nulls_and_values_in_order() {
        let mut q = ListQuery::all(Entity::Deals, None, 10);
        q.sort = ListColumn::Field {
            name: "amount".into(),
            kind: KeyKind::Number,
        };
        assert_eq!(segments(&q), [Segment::Nulls, Segment::Values]);
        q.descending = true;
        assert_eq!(segments(&q), [Segment::Values, Segment::Nulls]);
        q.conditions.push(Condition {
            column: q.sort.clone(),
            op: FilterOp::Gt,
            value: Some(ListValue::Number("5".into())),
        });
        assert_eq!(
            segments(&q),
            [Segment::Values],
            "a comparison excludes NULLs"
        );
        q.conditions.clear();
        q.after = Some(After {
            value: None,
            id: "x".into(),
        });
        assert_eq!(segments(&q), [Segment::Nulls]);
        q.sort = ListColumn::Id;
        assert_eq!(segments(&q), [Segment::Whole]);
    }

    #[test]
    fn the_key_of_a_field_is_written_alike_in_queries_and_indexes() {
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let col = ListColumn::Field {
                name: "phone".into(),
                kind: KeyKind::Phone,
            };
            let ddl = d.list_index_sql(Entity::Contacts, "phone", KeyKind::Phone);
            assert!(ddl.contains(&d.key_expr(&col)), "{ddl}");
            let mut q = ListQuery::all(Entity::Contacts, None, 5);
            q.sort = col;
            let s = d.list_segment(&q, Segment::Values, 5, None);
            assert!(s.sql.contains(&d.key_expr(&q.sort)), "{}", s.sql);
            assert!(s.sql.contains("entity = 'contacts'"), "{}", s.sql);
        }
    }
}
