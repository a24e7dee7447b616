//! What a database holds, counted: records per entity (live and in the recycle bin), the
//! journal's rows and seq range, and the records whose data is not a JSON object. An upgrade
//! counts before and after migrating; a migration may rewrite rows but never add, drop or
//! break one, so the two must agree and nothing may be broken.

use crate::engine::db_err;
use crate::StoreResult;
use sqlx::{Database, Executor, IntoArguments};
use std::collections::BTreeMap;

/// The counts; equal before and after a sound migration.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Census {
    /// Per entity: (live records, records in the recycle bin).
    pub records: BTreeMap<String, (i64, i64)>,
    pub journal_rows: i64,
    pub journal_first: i64,
    pub journal_last: i64,
}

/// What a census found wrong on its own, whatever it is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct Damage {
    /// Records whose data is not a JSON object: (entity, id), the first few.
    pub not_objects: Vec<(String, String)>,
    /// The journal's seqs are not one gap-free run.
    pub journal_gaps: bool,
}

impl Damage {
    pub fn is_empty(&self) -> bool {
        self.not_objects.is_empty() && !self.journal_gaps
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.not_objects.is_empty() {
            let shown: Vec<String> = self
                .not_objects
                .iter()
                .map(|(e, id)| format!("{e}/{id}"))
                .collect();
            parts.push(format!(
                "records whose data is not a JSON object: {}",
                shown.join(", ")
            ));
        }
        if self.journal_gaps {
            parts.push("the journal's seqs have gaps".to_string());
        }
        parts.join("; ")
    }
}

impl Census {
    /// How `after` differs from `self`, in words; empty when they agree.
    pub fn differences(&self, after: &Census) -> Vec<String> {
        let mut out = Vec::new();
        let entities: std::collections::BTreeSet<&String> =
            self.records.keys().chain(after.records.keys()).collect();
        for e in entities {
            let (b, a) = (
                self.records.get(e).copied().unwrap_or((0, 0)),
                after.records.get(e).copied().unwrap_or((0, 0)),
            );
            if a != b {
                out.push(format!(
                    "{e}: {} live and {} in the bin before, {} and {} after",
                    b.0, b.1, a.0, a.1
                ));
            }
        }
        if (self.journal_rows, self.journal_first, self.journal_last)
            != (after.journal_rows, after.journal_first, after.journal_last)
        {
            out.push(format!(
                "journal: {} entries (seq {}–{}) before, {} (seq {}–{}) after",
                self.journal_rows,
                self.journal_first,
                self.journal_last,
                after.journal_rows,
                after.journal_first,
                after.journal_last
            ));
        }
        out
    }
}

/// Counts on `conn`; `not_object` is the engine's condition for a row whose `data` is not a
/// JSON object.
pub(crate) async fn take<DB>(
    conn: &mut DB::Connection,
    not_object: &str,
) -> StoreResult<(Census, Damage)>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    String: sqlx::Type<DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT entity, \
                CAST(SUM(CASE WHEN deleted_batch IS NULL THEN 1 ELSE 0 END) AS BIGINT), \
                CAST(SUM(CASE WHEN deleted_batch IS NULL THEN 0 ELSE 1 END) AS BIGINT) \
         FROM records GROUP BY entity ORDER BY entity",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let (journal_rows, journal_first, journal_last): (i64, i64, i64) = sqlx::query_as(
        "SELECT CAST(COUNT(*) AS BIGINT), CAST(COALESCE(MIN(seq), 0) AS BIGINT), \
                CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM journal",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let not_objects: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT entity, id FROM records WHERE {not_object} ORDER BY entity, id LIMIT 10"
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let census = Census {
        records: rows.into_iter().map(|(e, l, b)| (e, (l, b))).collect(),
        journal_rows,
        journal_first,
        journal_last,
    };
    let damage = Damage {
        not_objects,
        journal_gaps: journal_rows > 0 && journal_last - journal_first + 1 != journal_rows,
    };
    Ok((census, damage))
}
