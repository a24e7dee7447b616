//! Replaying shipped journal entries onto a loaded snapshot (point-in-time restore) or onto a
//! restored database (catch-up). Entries carry full after images, so replay reduces each run of
//! entries to the final row of every record it touched and hands that to the engine's loader
//! in a few multi-row statements ([`kontor_store::bulk::Loader::apply`]).
//!
//! The segments needed are read and decoded on a blocking thread, one at a time, while the
//! loader applies the previous ones: memory stays at two segments.

use crate::error::{BackupError, BackupResult};
use crate::progress::Progress;
use crate::segment::Segment;
use crate::target::{BackupTarget, StoredSegment};
use kontor_core::derived::Derivation;
use kontor_domain::record::Record;
use kontor_domain::Entity;
use kontor_store::bulk::{Changes, JournalRow, LoadRecord, Loader, RecordRow, UniqueRow};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::mpsc::{channel, Sender};

/// How far to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Until {
    /// Every entry the target holds.
    End,
    /// Up to and including this seq.
    Seq(i64),
    /// Every entry at or before this time (microseconds since the epoch).
    Time(i64),
}

impl Until {
    fn admits(&self, e: &JournalRow) -> bool {
        match *self {
            Until::End => true,
            Until::Seq(s) => e.seq <= s,
            Until::Time(t) => e.at <= t,
        }
    }
}

/// Where replay ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Replayed {
    /// Entries applied.
    pub entries: u64,
    /// The last seq and its time (those of the start when nothing was applied).
    pub seq: i64,
    pub at: i64,
}

/// Reduces entries to table changes, keeping the custom field definitions current.
pub struct Reducer {
    fields: BTreeMap<String, Map<String, Value>>,
    derivation: Derivation,
}

/// Entries per [`Changes`] handed to the loader.
const CHUNK: usize = 5000;

impl Reducer {
    /// `fields` are the live custom field definitions at the starting point, by record id.
    pub fn new(fields: BTreeMap<String, Map<String, Value>>) -> Reducer {
        let derivation = Derivation::new(fields.values());
        Reducer { fields, derivation }
    }

    /// The changes a run of consecutive entries makes.
    pub fn reduce(&mut self, entries: Vec<JournalRow>) -> Result<Changes, String> {
        let mut last: HashMap<(String, String), Option<RecordRow>> = HashMap::new();
        let mut order = Vec::new();
        let mut c = Changes::default();
        let mut fields_changed = false;
        for e in &entries {
            let key = (e.entity.clone(), e.record_id.clone());
            let entity: Entity = e
                .entity
                .parse()
                .map_err(|_| format!("journal seq {}: unknown entity {}", e.seq, e.entity))?;
            let row = match &e.after {
                Some(text) => {
                    let image: Value = serde_json::from_str(text)
                        .map_err(|err| format!("journal seq {}: after image: {err}", e.seq))?;
                    let rec = Record::from_image(entity, &image).ok_or_else(|| {
                        format!("journal seq {}: the after image lacks system fields", e.seq)
                    })?;
                    Some(record_row(&rec)?)
                }
                // Purged, or scrubbed by a later purge: the record is gone.
                None => None,
            };
            if e.op == "purge" {
                c.scrub.push(key.clone());
                if entity == Entity::Users {
                    c.forget_credentials.push(e.record_id.clone());
                }
            }
            if entity == Entity::Fields {
                fields_changed = true;
                match &row {
                    Some(r) if r.deleted_batch.is_none() => {
                        if let Ok(Value::Object(m)) = serde_json::from_str(&r.data) {
                            self.fields.insert(r.id.clone(), m);
                        }
                    }
                    _ => {
                        self.fields.remove(&e.record_id);
                    }
                }
            }
            if last.insert(key.clone(), row).is_none() {
                order.push(key);
            }
        }
        if fields_changed {
            self.derivation = Derivation::new(self.fields.values());
        }
        for key in order {
            if let Some(Some(row)) = last.remove(&key) {
                let rec = crate::restore::to_record(&row)?;
                let d = self.derivation.of(&rec);
                c.uniques
                    .extend(d.uniques.into_iter().map(|(k, value)| UniqueRow {
                        entity: row.entity.clone(),
                        key: k,
                        value,
                        record_id: row.id.clone(),
                    }));
                c.records.push(LoadRecord {
                    row,
                    parent_id: d.parent_id,
                    search: d.search,
                });
            }
            c.touched.push(key);
        }
        c.journal = entries;
        Ok(c)
    }
}

fn record_row(rec: &Record) -> Result<RecordRow, String> {
    let data = serde_json::to_string(&rec.data).map_err(|e| e.to_string())?;
    Ok(RecordRow {
        entity: rec.entity.as_str().to_string(),
        id: rec.id.clone(),
        owner_id: rec.owner_id.clone(),
        created_at: kontor_domain::time::to_micros(rec.created_at),
        updated_at: kontor_domain::time::to_micros(rec.updated_at),
        deleted_batch: rec.deleted.as_ref().map(|d| d.batch.to_string()),
        deleted_at: rec
            .deleted
            .as_ref()
            .map(|d| kontor_domain::time::to_micros(d.at)),
        deleted_by: rec.deleted.as_ref().map(|d| d.by.clone()),
        data,
    })
}

/// The segments that carry the entries after `after_seq`, checked to leave no gap.
pub fn segments_after(target: &BackupTarget, after_seq: i64) -> BackupResult<Vec<StoredSegment>> {
    let mut out = Vec::new();
    let mut next = after_seq + 1;
    for s in target.segments()? {
        if s.last_seq < next {
            continue;
        }
        if s.first_seq > next {
            return Err(BackupError::Corrupt {
                archive: target.describe(),
                part: "journal".into(),
                reason: format!(
                    "entries {next}..{} are missing (no segment holds them)",
                    s.first_seq - 1
                ),
            });
        }
        next = s.last_seq + 1;
        out.push(s);
    }
    Ok(out)
}

/// Replays the target's entries after `after_seq` (at `after_at`) up to `until` into
/// `loader`. `schema_version` is the database's: segments written at another version are
/// refused (replaying across an upgrade needs a snapshot taken after it).
pub async fn replay(
    target: &BackupTarget,
    loader: &mut dyn Loader,
    reducer: Reducer,
    after: (i64, i64),
    until: Until,
    schema_version: i64,
    progress: Arc<dyn Progress>,
) -> BackupResult<Replayed> {
    let segments = segments_after(target, after.0)?;
    let total: u64 = segments
        .iter()
        .map(|s| (s.last_seq - s.first_seq + 1) as u64)
        .sum();
    if let (Until::Seq(n), Some(last)) = (until, segments.last().map(|s| s.last_seq)) {
        if n > last {
            return Err(BackupError::Refused(format!(
                "{} holds the journal up to seq {last}; seq {n} was never shipped",
                target.describe()
            )));
        }
    }
    if let (Until::Seq(n), None) = (until, segments.last()) {
        if n > after.0 {
            return Err(BackupError::Refused(format!(
                "{} holds no journal after seq {}; seq {n} was never shipped",
                target.describe(),
                after.0
            )));
        }
    }
    progress.phase("journal replay", Some(total));
    let (tx, mut rx) = channel::<(Changes, Replayed)>(2);
    let target = target.clone();
    let producer = tokio::task::spawn_blocking(move || {
        produce(
            &target,
            segments,
            reducer,
            after,
            until,
            schema_version,
            &tx,
        )
    });
    let mut done = Replayed {
        entries: 0,
        seq: after.0,
        at: after.1,
    };
    let mut applied = Ok(());
    while let Some((changes, upto)) = rx.recv().await {
        applied = loader.apply(&changes).await;
        if applied.is_err() {
            break;
        }
        progress.advance(changes.journal.len() as u64);
        done = upto;
    }
    drop(rx);
    producer
        .await
        .map_err(|e| BackupError::Io(format!("segment reader failed: {e}")))??;
    applied?;
    progress.done();
    Ok(done)
}

/// Reads, checks, cuts and reduces segments in order; sends each chunk's changes with the
/// point reached after it.
fn produce(
    target: &BackupTarget,
    segments: Vec<StoredSegment>,
    mut reducer: Reducer,
    after: (i64, i64),
    until: Until,
    schema_version: i64,
    tx: &Sender<(Changes, Replayed)>,
) -> BackupResult<()> {
    let mut done = Replayed {
        entries: 0,
        seq: after.0,
        at: after.1,
    };
    for s in segments {
        let seg = target.read_segment(&s)?;
        if seg.header.schema_version != schema_version {
            return Err(BackupError::Version(format!(
                "{} in {} was written at schema version {}, the database is at {schema_version}; \
                 restore from a snapshot taken after the upgrade",
                s.name,
                target.describe(),
                seg.header.schema_version
            )));
        }
        let Segment {
            journal,
            counters,
            credentials,
            ..
        } = seg;
        let mut entries: Vec<JournalRow> =
            journal.into_iter().filter(|e| e.seq > done.seq).collect();
        let cut = entries.iter().position(|e| !until.admits(e));
        let stop = cut.is_some();
        if let Some(i) = cut {
            entries.truncate(i);
        }
        let mut rest = entries;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(CHUNK));
            let chunk = std::mem::replace(&mut rest, tail);
            let (Some(first), Some(last)) = (
                chunk.first().map(|e| (e.seq, e.at)),
                chunk.last().map(|e| (e.seq, e.at)),
            ) else {
                break;
            };
            if first.0 != done.seq + 1 {
                return Err(BackupError::Corrupt {
                    archive: target.describe(),
                    part: s.name.clone(),
                    reason: format!("starts at seq {}, expected {}", first.0, done.seq + 1),
                });
            }
            let upto = Replayed {
                entries: done.entries + chunk.len() as u64,
                seq: last.0,
                at: last.1,
            };
            let mut changes = reducer
                .reduce(chunk)
                .map_err(|reason| BackupError::Corrupt {
                    archive: target.describe(),
                    part: s.name.clone(),
                    reason,
                })?;
            // Passwords set by the entries applied so far; counters are those at the end of
            // the segment, never behind the point reached (numbers may skip, never repeat).
            changes.credentials = credentials
                .iter()
                .filter(|c| c.changed_at <= upto.at && c.changed_at >= first.1)
                .cloned()
                .collect();
            if rest.is_empty() {
                changes.counters = Some(counters.clone());
            }
            done = upto;
            if tx.blocking_send((changes, upto)).is_err() {
                return Ok(());
            }
        }
        if stop {
            break;
        }
    }
    Ok(())
}
