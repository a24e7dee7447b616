//! Restoring an archive into a new SQLite file or an empty PostgreSQL database, and verifying
//! an archive by restoring it into a scratch place.
//!
//! A blocking thread reads each part (checking its BLAKE3 and sizes), parses its lines, derives
//! each record's parent, search text and unique values (custom field definitions are read
//! first), feeds the state digest and hands batches to the engine's bulk loader. The loader's
//! result becomes visible only after every part checked out and the digest of what was read
//! equals the manifest's; then the loaded database is read back and its digest compared again.

use crate::create::state_of;
use crate::error::{BackupError, BackupResult};
use crate::format::{ArchiveReader, Manifest, PartInfo};
use crate::lines::{self, StateDigest, TABLES};
use crate::progress::Progress;
use crate::replay::{replay, Reducer, Replayed, Until};
use crate::seal::Keys;
use crate::target::BackupTarget;
use kontor_core::derived::Derivation;
use kontor_domain::record::Record;
use kontor_store::bulk::{
    self, CounterRow, CredentialRow, JournalRow, LoadRecord, Loader, RecordRow, UniqueRow,
};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::{channel, Sender};

/// Where a restore writes.
#[derive(Debug, Clone)]
pub enum Target {
    /// A SQLite database file that must not exist yet.
    Sqlite(PathBuf),
    /// The URL of an empty PostgreSQL database.
    Postgres(String),
}

/// What a restore or verification did.
#[derive(Debug, Clone)]
pub struct Report {
    pub manifest: Manifest,
    pub seconds: f64,
}

enum Batch {
    Records(Vec<LoadRecord>, Vec<UniqueRow>),
    Journal(Vec<JournalRow>),
    Counters(Vec<CounterRow>),
    Credentials(Vec<CredentialRow>),
}

/// Rows per batch handed to the loader.
const LOAD_BATCH: usize = 5000;

/// Restores `archive` into `target` and proves the result equal to the archive.
pub async fn restore(
    archive: &Path,
    target: &Target,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> BackupResult<Report> {
    let started = Instant::now();
    let mut reader = ArchiveReader::open(archive)?;
    reader.unlock(keys)?;
    let manifest = reader.manifest.clone();
    if let Target::Sqlite(path) = target {
        check_space(path, &manifest)?;
    }
    let loader = begin(target, manifest.schema_version).await?;
    let (loader, _) = load(reader, loader, progress).await?;
    let loaded = started.elapsed().as_secs_f64();
    loader.finish().await?;
    let finished = started.elapsed().as_secs_f64();
    let mut snap = match target {
        Target::Sqlite(path) => bulk::sqlite::open_snapshot(path).await?,
        Target::Postgres(url) => bulk::postgres::open_snapshot(url).await?,
    };
    let state = state_of(snap.as_mut()).await;
    snap.close().await;
    let (digest, tables) = state?;
    tracing::info!(
        load_seconds = loaded,
        finish_seconds = finished - loaded,
        read_back_seconds = started.elapsed().as_secs_f64() - finished,
        "restore phases"
    );
    if digest != manifest.digest || tables != manifest.tables {
        if let Target::Sqlite(path) = target {
            let _ = std::fs::remove_file(path);
        }
        return Err(BackupError::Mismatch(format!(
            "the restored database reads back as {digest} with rows {tables:?}; the archive promises {} with rows {:?}",
            manifest.digest, manifest.tables
        )));
    }
    Ok(Report {
        manifest,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What a point-in-time restore or a catch-up did.
#[derive(Debug, Clone)]
pub struct PointReport {
    /// The archive the restore started from (`None` for a catch-up).
    pub snapshot: Option<String>,
    /// The seq the database was at before replay.
    pub start_seq: i64,
    pub replayed: Replayed,
    pub seconds: f64,
}

/// Builds a new database from a backup target as it was at `until`: the newest snapshot at or
/// before that point, then the shipped journal up to it. A snapshot that turns out damaged is
/// reported and the next older one is used.
pub async fn restore_point(
    from: &BackupTarget,
    target: &Target,
    until: Until,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> BackupResult<PointReport> {
    let started = Instant::now();
    let from = &from.unlocked(keys)?;
    let snapshots = from.snapshots()?;
    let mut candidates: Vec<_> = snapshots
        .iter()
        .filter_map(|s| s.manifest.as_ref().map(|m| (s, m)))
        .filter(|(_, m)| match until {
            Until::End => true,
            Until::Seq(n) => m.seq <= n,
            Until::Time(t) => m.seq == 0 || m.seq_at.as_deref().and_then(seq_at_micros) <= Some(t),
        })
        .collect();
    candidates.sort_by_key(|(_, m)| m.seq);
    let mut failure = None;
    for (snap, manifest) in candidates.into_iter().rev() {
        if let Target::Sqlite(path) = target {
            check_space(path, manifest)?;
        }
        let loader = begin(target, manifest.schema_version).await?;
        let fetched = match from.snapshot_folder().fetch(&snap.name) {
            Ok(f) => f,
            Err(e) => {
                loader.abandon().await;
                return Err(e);
            }
        };
        let reader = match ArchiveReader::open(&fetched.path).and_then(|mut r| {
            r.unlock(keys)?;
            Ok(r)
        }) {
            Ok(r) => r,
            Err(e @ BackupError::Key(_)) => {
                loader.abandon().await;
                return Err(e);
            }
            Err(e) => {
                loader.abandon().await;
                tracing::warn!(archive = %snap.name, error = %e, "snapshot unusable; trying an older one");
                failure = Some(e);
                continue;
            }
        };
        let mut loader = match load(reader, loader, progress.clone()).await {
            Ok((loader, fields)) => (loader, fields),
            Err(e @ BackupError::Corrupt { .. }) => {
                tracing::warn!(archive = %snap.name, error = %e, "snapshot damaged; trying an older one");
                failure = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let after = (
            manifest.seq,
            manifest
                .seq_at
                .as_deref()
                .and_then(seq_at_micros)
                .unwrap_or(0),
        );
        let replayed = replay(
            from,
            loader.0.as_mut(),
            Reducer::new(loader.1),
            after,
            until,
            manifest.schema_version,
            progress.clone(),
        )
        .await;
        let replayed = match replayed {
            Ok(r) => r,
            Err(e) => {
                loader.0.abandon().await;
                return Err(e);
            }
        };
        loader.0.finish().await?;
        return Ok(PointReport {
            snapshot: Some(snap.name.clone()),
            start_seq: manifest.seq,
            replayed,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    Err(failure.unwrap_or_else(|| {
        BackupError::Refused(format!(
            "{} holds no snapshot at or before {}",
            from.describe(),
            describe_until(until)
        ))
    }))
}

/// Applies to an existing database (stopped, or locked by the caller) the journal entries
/// `from` holds after the database's last one: the switch-over after a move loses nothing.
/// Refuses a target of another database, or one whose entry at the database's head differs
/// (the histories have diverged).
pub async fn catch_up(
    from: &BackupTarget,
    target: &Target,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> BackupResult<PointReport> {
    let started = Instant::now();
    let from = &from.unlocked(keys)?;
    let mut snap = match target {
        Target::Sqlite(path) => bulk::sqlite::open_snapshot(path).await?,
        Target::Postgres(url) => bulk::postgres::open_snapshot(url).await?,
    };
    let facts = async {
        let head = (snap.seq(), snap.at());
        let origin = snap.origin().map(str::to_string);
        let (tx, mut rx) = channel(1);
        snap.journal(head.0 - 1, 1, &tx).await?;
        drop(tx);
        let last = rx.recv().await.and_then(|mut b| b.pop());
        let fields: FieldDefs = snap
            .live_records("fields")
            .await?
            .into_iter()
            .filter_map(|r| match serde_json::from_str(&r.data) {
                Ok(Value::Object(m)) => Some((r.id, m)),
                _ => None,
            })
            .collect();
        Ok::<_, BackupError>((head, origin, last, fields, snap.schema_version()))
    }
    .await;
    snap.close().await;
    let (head, origin, last, fields, schema_version) = facts?;
    let info = from.info()?.ok_or_else(|| {
        BackupError::Refused(format!("{} is not a Kontor backup target", from.describe()))
    })?;
    if origin.as_deref() != Some(info.origin.as_str()) {
        return Err(BackupError::Refused(format!(
            "{} holds the backups of another database; this one was not restored from it",
            from.describe()
        )));
    }
    if let Some(last) = &last {
        check_same_entry(from, last)?;
    }
    let mut loader = match target {
        Target::Sqlite(path) => bulk::sqlite::begin_catch_up(path).await?,
        Target::Postgres(url) => bulk::postgres::begin_catch_up(url).await?,
    };
    let replayed = replay(
        from,
        loader.as_mut(),
        Reducer::new(fields),
        head,
        Until::End,
        schema_version,
        progress,
    )
    .await;
    match replayed {
        Ok(replayed) => {
            loader.finish().await?;
            Ok(PointReport {
                snapshot: None,
                start_seq: head.0,
                replayed,
                seconds: started.elapsed().as_secs_f64(),
            })
        }
        Err(e) => {
            loader.abandon().await;
            Err(e)
        }
    }
}

/// Refuses a catch-up when the target's entry at the database's head is not the database's.
fn check_same_entry(from: &BackupTarget, last: &JournalRow) -> BackupResult<()> {
    let Some(seg) = from
        .segments()?
        .into_iter()
        .find(|s| s.first_seq <= last.seq && last.seq <= s.last_seq)
    else {
        // Shipped in a snapshot only, or before the target began: nothing to compare.
        return Ok(());
    };
    let decoded = from.read_segment(&seg)?;
    let theirs = decoded.journal.iter().find(|e| e.seq == last.seq);
    match theirs {
        Some(e) if e.batch == last.batch && e.at == last.at => Ok(()),
        _ => Err(BackupError::Refused(format!(
            "the database's entry {} differs from the one in {}: the histories have diverged;              restore anew from the target instead",
            last.seq,
            from.describe()
        ))),
    }
}

async fn begin(target: &Target, schema_version: i64) -> BackupResult<Box<dyn Loader>> {
    Ok(match target {
        Target::Sqlite(path) => bulk::sqlite::begin_restore(path, schema_version).await?,
        Target::Postgres(url) => bulk::postgres::begin_restore(url, schema_version).await?,
    })
}

fn seq_at_micros(text: &str) -> Option<i64> {
    kontor_domain::time::parse(text).map(kontor_domain::time::to_micros)
}

fn describe_until(until: Until) -> String {
    match until {
        Until::End => "the end".into(),
        Until::Seq(n) => format!("seq {n}"),
        Until::Time(t) => kontor_domain::time::format_micros(t),
    }
}

/// Restores `archive` into a scratch SQLite file, runs the database's full integrity check and
/// compares digests and row counts; the scratch copy is removed afterwards.
pub async fn verify(
    archive: &Path,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> BackupResult<Report> {
    let scratch = tempfile::Builder::new()
        .prefix("kontor-verify-")
        .tempdir()
        .map_err(|e| BackupError::io("cannot create a scratch directory", e))?;
    let db = scratch.path().join("kontor.db");
    let report = restore(archive, &Target::Sqlite(db.clone()), keys, progress).await?;
    bulk::sqlite::integrity_check(&db).await?;
    Ok(report)
}

/// Feeds every part to the loader; returns it, unfinished, only when all of it checked out
/// (abandoned otherwise), with the live custom field definitions by id.
pub(crate) async fn load(
    reader: ArchiveReader,
    mut loader: Box<dyn Loader>,
    progress: Arc<dyn Progress>,
) -> BackupResult<(Box<dyn Loader>, FieldDefs)> {
    let (tx, mut rx) = channel::<Batch>(2);
    let producer = tokio::task::spawn_blocking(move || read_parts(reader, &tx, progress.as_ref()));
    let mut loaded = Ok(());
    while let Some(batch) = rx.recv().await {
        loaded = match &batch {
            Batch::Records(records, uniques) => match loader.records(records).await {
                Ok(()) => loader.uniques(uniques).await,
                Err(e) => Err(e),
            },
            Batch::Journal(rows) => loader.journal(rows).await,
            Batch::Counters(rows) => loader.counters(rows).await,
            Batch::Credentials(rows) => loader.credentials(rows).await,
        };
        if loaded.is_err() {
            break;
        }
    }
    drop(rx);
    let read = producer
        .await
        .map_err(|e| BackupError::Io(format!("archive reader failed: {e}")))
        .and_then(|r| r);
    match (read, loaded) {
        (Ok(fields), Ok(())) => Ok((loader, fields)),
        (Err(e), _) => {
            loader.abandon().await;
            Err(e)
        }
        (Ok(_), Err(e)) => {
            loader.abandon().await;
            Err(e.into())
        }
    }
}

/// Reads and checks every part in archive order, sending batches to the loader.
fn read_parts(
    mut reader: ArchiveReader,
    tx: &Sender<Batch>,
    progress: &dyn Progress,
) -> BackupResult<FieldDefs> {
    let manifest = reader.manifest.clone();
    let shown = reader.shown().to_string();
    let corrupt = |part: &str, reason: String| BackupError::Corrupt {
        archive: shown.clone(),
        part: part.to_string(),
        reason,
    };
    // Parts must come table by table in digest order.
    let mut last_table = 0;
    for p in &manifest.parts {
        let i = TABLES
            .iter()
            .position(|t| *t == p.table)
            .ok_or_else(|| corrupt(&p.name, format!("unknown table {}", p.table)))?;
        if i < last_table {
            return Err(corrupt(&p.name, "parts are out of order".into()));
        }
        last_table = i;
    }
    let fields = custom_fields(&mut reader, &manifest.parts)?;
    let mut derivation = Derivation::new(fields.values());
    let gone = || BackupError::Io("the database loader stopped".into());
    let send = |b: Batch| tx.blocking_send(b).map_err(|_| gone());

    let mut digest = StateDigest::default();
    let mut counts: BTreeMap<String, u64> = TABLES.iter().map(|t| (t.to_string(), 0)).collect();
    let mut next_seq: Option<i64> = None;
    for table in TABLES.iter() {
        digest.table(table);
        let total = manifest.tables.get(*table).copied();
        progress.phase(table, total);
        for p in manifest.parts.iter().filter(|p| p.table == *table) {
            let data = reader.read_part(p)?;
            let text = std::str::from_utf8(&data)
                .map_err(|e| corrupt(&p.name, format!("not UTF-8: {e}")))?;
            let mut rows = 0u64;
            let mut records = Vec::new();
            let mut uniques = Vec::new();
            let mut journal = Vec::new();
            let mut counters = Vec::new();
            let mut credentials = Vec::new();
            for (n, line) in text.split_terminator('\n').enumerate() {
                let bad = |e: String| corrupt(&p.name, format!("line {}: {e}", n + 1));
                digest.line(line.as_bytes());
                rows += 1;
                match *table {
                    "records" => {
                        let row = lines::parse_record(line).map_err(bad)?;
                        let (rec, d) = derive(&mut derivation, row).map_err(bad)?;
                        uniques.extend(d.1);
                        records.push(LoadRecord {
                            row: rec,
                            parent_id: d.0 .0,
                            search: d.0 .1,
                        });
                    }
                    "journal" => {
                        let row = lines::parse_journal(line).map_err(bad)?;
                        if let Some(expected) = next_seq {
                            if row.seq != expected {
                                return Err(bad(format!(
                                    "journal seq {} follows {}; entries are missing",
                                    row.seq,
                                    expected - 1
                                )));
                            }
                        }
                        next_seq = Some(row.seq + 1);
                        journal.push(row);
                    }
                    "counters" => counters.push(lines::parse_counter(line).map_err(bad)?),
                    _ => credentials.push(lines::parse_credential(line).map_err(bad)?),
                }
                if records.len() >= LOAD_BATCH {
                    send(Batch::Records(
                        std::mem::take(&mut records),
                        std::mem::take(&mut uniques),
                    ))?;
                    progress.advance(LOAD_BATCH as u64);
                }
                if journal.len() >= LOAD_BATCH {
                    send(Batch::Journal(std::mem::take(&mut journal)))?;
                    progress.advance(LOAD_BATCH as u64);
                }
            }
            if rows != p.rows {
                return Err(corrupt(
                    &p.name,
                    format!("{rows} rows, the manifest says {}", p.rows),
                ));
            }
            let tail = (records.len() + journal.len() + counters.len() + credentials.len()) as u64;
            if !records.is_empty() {
                send(Batch::Records(records, uniques))?;
            }
            if !journal.is_empty() {
                send(Batch::Journal(journal))?;
            }
            if !counters.is_empty() {
                send(Batch::Counters(counters))?;
            }
            if !credentials.is_empty() {
                send(Batch::Credentials(credentials))?;
            }
            progress.advance(tail);
            *counts.entry(table.to_string()).or_default() += rows;
        }
    }
    if next_seq.map_or(0, |s| s - 1) != manifest.seq {
        return Err(corrupt(
            "journal",
            format!(
                "ends at seq {}, the manifest says {}",
                next_seq.map_or(0, |s| s - 1),
                manifest.seq
            ),
        ));
    }
    if counts != manifest.tables {
        return Err(corrupt(
            "manifest.json",
            format!(
                "rows per table are {counts:?}, the manifest says {:?}",
                manifest.tables
            ),
        ));
    }
    if digest.finish() != manifest.digest {
        return Err(corrupt(
            "manifest.json",
            "the digest of the archived rows differs from the manifest's".into(),
        ));
    }
    progress.done();
    Ok(fields)
}

/// Live custom field definitions (records of entity `fields`) by record id.
pub(crate) type FieldDefs = BTreeMap<String, Map<String, Value>>;

type DerivedParts = ((Option<String>, String), Vec<UniqueRow>);

/// A record row with its parent, search text and unique values.
fn derive(d: &mut Derivation, row: RecordRow) -> Result<(RecordRow, DerivedParts), String> {
    let rec = to_record(&row)?;
    let derived = d.of(&rec);
    let uniques = derived
        .uniques
        .into_iter()
        .map(|(key, value)| UniqueRow {
            entity: row.entity.clone(),
            key,
            value,
            record_id: row.id.clone(),
        })
        .collect();
    Ok((row, ((derived.parent_id, derived.search), uniques)))
}

pub(crate) fn to_record(row: &RecordRow) -> Result<Record, String> {
    let entity = row
        .entity
        .parse()
        .map_err(|_| format!("unknown entity {}", row.entity))?;
    let data: Map<String, Value> =
        serde_json::from_str(&row.data).map_err(|e| format!("fields: {e}"))?;
    let deleted = match (&row.deleted_batch, row.deleted_at, &row.deleted_by) {
        (Some(batch), Some(at), Some(by)) => Some(kontor_domain::record::Deletion {
            batch: batch
                .parse()
                .map_err(|_| format!("deleted_batch {batch} is not a batch id"))?,
            at: kontor_domain::time::from_micros(at),
            by: by.clone(),
        }),
        _ => None,
    };
    Ok(Record {
        entity,
        id: row.id.clone(),
        owner_id: row.owner_id.clone(),
        created_at: kontor_domain::time::from_micros(row.created_at),
        updated_at: kontor_domain::time::from_micros(row.updated_at),
        deleted,
        data,
    })
}

/// The live custom field definitions (records of entity `fields`), read before anything else
/// because every other record's derived data depends on them.
fn custom_fields(reader: &mut ArchiveReader, parts: &[PartInfo]) -> BackupResult<FieldDefs> {
    let mut defs = BTreeMap::new();
    for p in parts
        .iter()
        .filter(|p| p.table == "records" && p.entity.as_deref() == Some("fields"))
    {
        let data = reader.read_part(p)?;
        for (n, line) in String::from_utf8_lossy(&data)
            .split_terminator('\n')
            .enumerate()
        {
            let row = lines::parse_record(line).map_err(|e| BackupError::Corrupt {
                archive: reader.shown().to_string(),
                part: p.name.clone(),
                reason: format!("line {}: {e}", n + 1),
            })?;
            if row.deleted_batch.is_none() {
                if let Ok(Value::Object(m)) = serde_json::from_str(&row.data) {
                    defs.insert(row.id.clone(), m);
                }
            }
        }
    }
    Ok(defs)
}

/// Refuses a restore that cannot fit: the lines' size plus a third for indexes must be free.
fn check_space(db: &Path, manifest: &Manifest) -> BackupResult<()> {
    let need: u64 = manifest.parts.iter().map(|p| p.raw_bytes).sum::<u64>() / 3 * 4;
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Some(free) = free_bytes(dir) {
        if free < need {
            return Err(BackupError::Refused(format!(
                "{} has {} MiB free; restoring this archive needs about {} MiB",
                dir.display(),
                free >> 20,
                need >> 20
            )));
        }
    }
    Ok(())
}

/// Bytes available to this user on the file system holding `dir`.
#[cfg(unix)]
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to writable memory
    // of the right type; statvfs fills it completely when it returns 0.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so the struct is initialised.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> Option<u64> {
    None
}
