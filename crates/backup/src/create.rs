//! Writing a snapshot: one read transaction on the source (writers are not blocked), rows
//! streamed in primary-key order to a blocking thread that encodes them canonically, feeds the
//! state digest, compresses and appends parts. Memory stays at a few batches plus one part.

use crate::error::{BackupError, BackupResult};
use crate::format::{archive_name, ArchiveWriter, Manifest, PartInfo, FORMAT, FORMAT_VERSION};
use crate::lines::{self, StateDigest};
use crate::progress::Progress;
use crate::seal::{Keys, Unseal, ARCHIVE_KEY};
use kontor_store::bulk::{self, CounterRow, CredentialRow, JournalRow, RecordRow, Snapshot};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc::{channel, Receiver};

/// Where the live data is.
#[derive(Debug, Clone)]
pub enum Source {
    /// The SQLite database file (in a data directory, possibly in use by a running server).
    Sqlite(PathBuf),
    /// A PostgreSQL URL.
    Postgres(String),
}

impl Source {
    pub async fn open(&self) -> BackupResult<Box<dyn Snapshot>> {
        Ok(match self {
            Source::Sqlite(path) => bulk::sqlite::open_snapshot(path).await?,
            Source::Postgres(url) => bulk::postgres::open_snapshot(url).await?,
        })
    }
}

/// Rows per batch between the database reader and the encoder.
const BATCH: usize = 2000;

/// A snapshot just written.
pub struct Created {
    pub path: PathBuf,
    pub manifest: Manifest,
    /// The archive's data key, when encrypted: lets its writer verify it even when only the
    /// recipients (not their identities) are at hand.
    pub data_key: Option<Unseal>,
}

/// Takes a snapshot of `source` into a new archive in `dir`, encrypted when `keys` say so.
pub async fn snapshot(
    source: &Source,
    dir: &Path,
    level: i32,
    keys: &Keys,
    progress: Arc<dyn Progress>,
) -> BackupResult<Created> {
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir.display(), e))?;
    let key = keys.new_data_key(ARCHIVE_KEY)?;
    let mut snap = source.open().await?;
    let result = write_snapshot(snap.as_mut(), dir, level, key.as_ref(), progress).await;
    snap.close().await;
    let (path, manifest) = result?;
    Ok(Created {
        path,
        manifest,
        data_key: key.map(|k| k.unseal),
    })
}

async fn write_snapshot(
    snap: &mut dyn Snapshot,
    dir: &Path,
    level: i32,
    key: Option<&crate::seal::NewKey>,
    progress: Arc<dyn Progress>,
) -> BackupResult<(PathBuf, Manifest)> {
    if snap.schema_version() > kontor_store::SCHEMA_VERSION {
        return Err(BackupError::Version(format!(
            "the database is at schema version {}, newer than this Kontor knows ({}); use the Kontor that runs it",
            snap.schema_version(),
            kontor_store::SCHEMA_VERSION
        )));
    }
    let created = chrono::Utc::now();
    let path = dir.join(archive_name(created, snap.seq()));
    let writer = ArchiveWriter::create(&path, level, created.timestamp().max(0) as u64, key)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        kind: "snapshot".into(),
        kontor_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: snap.schema_version(),
        created_at: created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        source_engine: snap.engine().into(),
        seq: snap.seq(),
        seq_at: (snap.seq() > 0)
            .then(|| kontor_domain::time::format(kontor_domain::time::from_micros(snap.at()))),
        tables: BTreeMap::new(),
        digest: String::new(),
        compression: "zstd".into(),
        encryption: None,
        key: None,
        parts: Vec::new(),
    };
    let (records_tx, records_rx) = channel(4);
    let (journal_tx, journal_rx) = channel(4);
    let (small_tx, small_rx) = tokio::sync::oneshot::channel();
    let seq = snap.seq();
    let encoder = tokio::task::spawn_blocking(move || {
        let mut parts = Parts {
            writer,
            entity: String::new(),
            part_no: 0,
        };
        let (digest, tables) = encode_tables(
            &mut parts,
            records_rx,
            journal_rx,
            small_rx,
            seq,
            progress.as_ref(),
        )?;
        let manifest = parts.writer.commit(Manifest {
            digest,
            tables,
            ..manifest
        })?;
        progress.done();
        Ok::<_, BackupError>(manifest)
    });
    let read = read_all(snap, records_tx, journal_tx, small_tx).await;
    let encoded = encoder
        .await
        .map_err(|e| BackupError::Io(format!("archive writer failed: {e}")))?;
    // The encoder's error explains a reader that stopped because the encoder went away.
    let manifest = encoded?;
    read?;
    Ok((path, manifest))
}

/// Streams every table of the snapshot to the encoder's channels, in digest order.
async fn read_all(
    snap: &mut dyn Snapshot,
    records: tokio::sync::mpsc::Sender<Vec<RecordRow>>,
    journal: tokio::sync::mpsc::Sender<Vec<JournalRow>>,
    small: tokio::sync::oneshot::Sender<SmallTables>,
) -> BackupResult<()> {
    snap.records(BATCH, &records).await?;
    drop(records);
    snap.journal(0, BATCH, &journal).await?;
    drop(journal);
    let _ = small.send((snap.counters().await?, snap.credentials().await?));
    Ok(())
}

/// Where encoded lines go, table by table.
trait LineSink {
    /// A line of `table`; `entity` for records, `seq` for journal entries.
    fn line(&mut self, table: &str, line: &[u8], entity: &str, seq: i64) -> BackupResult<()>;
    fn end_table(&mut self, _table: &str) -> BackupResult<()> {
        Ok(())
    }
}

/// Writes lines into archive parts: one or more per entity, journal parts by size.
struct Parts {
    writer: ArchiveWriter,
    entity: String,
    part_no: u32,
}

impl LineSink for Parts {
    fn line(&mut self, table: &str, line: &[u8], entity: &str, seq: i64) -> BackupResult<()> {
        let w = &mut self.writer;
        let full = w.part_bytes() >= crate::format::PART_BYTES;
        match table {
            "records" if entity != self.entity || full || !w.has_part() => {
                self.part_no = if entity == self.entity {
                    self.part_no + 1
                } else {
                    1
                };
                self.entity = entity.to_string();
                let stem = format!("records/{entity}-{:04}", self.part_no);
                w.start_part(part(table, stem, Some(entity)))?;
            }
            "journal" if full || !w.has_part() => {
                w.start_part(part(table, format!("journal/{seq:012}"), None))?;
            }
            "counters" | "credentials" if !w.has_part() => {
                w.start_part(part(table, table.to_string(), None))?;
            }
            _ => {}
        }
        w.line(line, (table == "journal").then_some(seq))
    }

    fn end_table(&mut self, table: &str) -> BackupResult<()> {
        // Small tables get a part even when empty, so every archive has the same shape.
        if matches!(table, "counters" | "credentials") && !self.writer.has_part() {
            self.writer
                .start_part(part(table, table.to_string(), None))?;
        }
        self.writer.finish_part()
    }
}

/// Only counts (the digest is taken by [`encode_tables`]).
struct Discard;

impl LineSink for Discard {
    fn line(&mut self, _: &str, _: &[u8], _: &str, _: i64) -> BackupResult<()> {
        Ok(())
    }
}

type SmallTables = (Vec<CounterRow>, Vec<CredentialRow>);

/// Encodes every table's rows as they arrive, feeding the digest and the sink; returns the
/// digest and the rows per table.
fn encode_tables(
    sink: &mut dyn LineSink,
    mut records: Receiver<Vec<RecordRow>>,
    mut journal: Receiver<Vec<JournalRow>>,
    small: tokio::sync::oneshot::Receiver<SmallTables>,
    journal_total: i64,
    progress: &dyn Progress,
) -> BackupResult<(String, BTreeMap<String, u64>)> {
    let mut digest = StateDigest::default();
    let mut counts = BTreeMap::new();
    let mut line = Vec::with_capacity(4096);
    let bad = |e: String| BackupError::Store(kontor_store::StoreError::Corrupt(e));

    digest.table("records");
    progress.phase("records", None);
    let mut n = 0u64;
    while let Some(batch) = records.blocking_recv() {
        for r in &batch {
            line.clear();
            lines::record_line(&mut line, r).map_err(bad)?;
            sink.line("records", &line, &r.entity, 0)?;
            digest.line(&line);
        }
        n += batch.len() as u64;
        progress.advance(batch.len() as u64);
    }
    sink.end_table("records")?;
    counts.insert("records".to_string(), n);

    digest.table("journal");
    progress.phase("journal", Some(u64::try_from(journal_total).unwrap_or(0)));
    let mut n = 0u64;
    while let Some(batch) = journal.blocking_recv() {
        for r in &batch {
            line.clear();
            lines::journal_line(&mut line, r).map_err(bad)?;
            sink.line("journal", &line, "", r.seq)?;
            digest.line(&line);
        }
        n += batch.len() as u64;
        progress.advance(batch.len() as u64);
    }
    sink.end_table("journal")?;
    counts.insert("journal".to_string(), n);

    let (counters, credentials) = small
        .blocking_recv()
        .map_err(|_| BackupError::Io("the database reader stopped".into()))?;
    digest.table("counters");
    for r in &counters {
        line.clear();
        lines::counter_line(&mut line, r);
        sink.line("counters", &line, "", 0)?;
        digest.line(&line);
    }
    sink.end_table("counters")?;
    counts.insert("counters".to_string(), counters.len() as u64);
    digest.table("credentials");
    for r in &credentials {
        line.clear();
        lines::credential_line(&mut line, r);
        sink.line("credentials", &line, "", 0)?;
        digest.line(&line);
    }
    sink.end_table("credentials")?;
    counts.insert("credentials".to_string(), credentials.len() as u64);
    Ok((digest.finish(), counts))
}

fn part(table: &str, stem: String, entity: Option<&str>) -> PartInfo {
    PartInfo {
        name: format!("{stem}.jsonl.zst"),
        table: table.into(),
        entity: entity.map(str::to_string),
        first_seq: None,
        last_seq: None,
        rows: 0,
        raw_bytes: 0,
        bytes: 0,
        blake3: String::new(),
    }
}

/// The digest and row counts of a database as it is now (used to prove a restore equal).
pub async fn state_of(snap: &mut dyn Snapshot) -> BackupResult<(String, BTreeMap<String, u64>)> {
    let (records_tx, records_rx) = channel(4);
    let (journal_tx, journal_rx) = channel(4);
    let (small_tx, small_rx) = tokio::sync::oneshot::channel();
    let seq = snap.seq();
    let hasher = tokio::task::spawn_blocking(move || {
        let silent = crate::progress::Silent;
        encode_tables(&mut Discard, records_rx, journal_rx, small_rx, seq, &silent)
    });
    let read = read_all(snap, records_tx, journal_tx, small_tx).await;
    let hashed = hasher
        .await
        .map_err(|e| BackupError::Io(format!("digest failed: {e}")))?;
    let state = hashed?;
    read?;
    Ok(state)
}
