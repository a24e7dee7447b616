//! Importing a table file into one entity. The file is read a chunk of rows at a time; each
//! row's cells become field values ([`crate::cell`]), its references are resolved by natural
//! keys and it is matched with the record it updates, all in a few bulk reads per chunk; then
//! the chunk goes through the one write path under the import's batch (origin `import`), so
//! undoing that batch undoes the whole import. A chunk the write path refuses is written again
//! one row at a time, so only the rows at fault fail.
//!
//! Rows repeating a key an earlier row of the file had (the match key, or any unique key of the
//! entity) are duplicates and are not written: the first row with a value owns it, whatever
//! became of it, so the decision depends on the file alone. A dry run makes every decision the
//! same way and sends every chunk through the write path, which checks everything and rolls
//! back: its report is what the import will do, as long as nobody changes the data meanwhile.
//!
//! Each chunk's transaction also records where to resume and the rows it refused, so after an
//! interruption the same import started again goes on after the last row that landed, nothing
//! twice. Only one process runs an import at a time (a lease, renewed every chunk).

use crate::cell::cell_value;
use crate::mapping::{self, Key, Mapping, MappingError, MappingInput, Target};
use crate::report::{ImportReport, Outcome, Sample};
use crate::source::{ReadOptions, Row, SourceError, Table};
use kontor_core::progress::Progress;
use kontor_core::{Chunk, CoreError, Kontor, Mutation};
use kontor_domain::journal::Origin;
use kontor_domain::listing::{phone_key, FilterOp, KeyKind};
use kontor_domain::money::Dec;
use kontor_domain::permission::{Action, Actor, OwnerFilter};
use kontor_domain::record::{parse_id, Record};
use kontor_domain::schema::{FieldDef, Schema, IMPORTABLE, IMPORT_MODES};
use kontor_domain::validate::{parse_value, FieldPath, MoneyContext};
use kontor_domain::{BatchId, DomainError, Entity};
use kontor_store::{Condition, ImportErrorRow, JobProgress, ListColumn, ListQuery, ListValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Rows per chunk (one write transaction each). Bigger chunks share the pages a transaction
/// dirties (index leaves, the journal's tail) among more rows: at a million rows on SQLite,
/// 5,000 took 57 s where 2,000 took 65 s. A chunk holds SQLite's writer for about a third of
/// a second, which other writes wait out.
pub const CHUNK_ROWS: usize = 5000;
/// How long an import's lease lasts without renewal (each chunk renews it); on PostgreSQL a
/// crashed import can be taken up by another process after that.
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// Who holds an import's lease for a process: on SQLite the data directory's lock already
/// keeps every other process out, so any process holding it may take up the import at once;
/// on PostgreSQL, the process itself.
pub fn lease_holder(kontor: &Kontor, process: &str) -> String {
    if kontor.store.engine() == "sqlite" {
        "local".into()
    } else {
        process.into()
    }
}

/// What an import does with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Always create; a row matching an existing record fails.
    Create,
    /// Only update the record the row matches; a row matching none fails.
    Update,
    /// Update the record the row matches, or create one.
    Upsert,
    /// Create what matches no record; leave the records rows match as they are.
    Skip,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "create" => Mode::Create,
            "update" => Mode::Update,
            "upsert" | "create-or-update" => Mode::Upsert,
            "skip" => Mode::Skip,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Create => "create",
            Mode::Update => "update",
            Mode::Upsert => "upsert",
            Mode::Skip => "skip",
        }
    }
}

/// What to import and how: everything a run needs besides the file, so an interrupted run
/// can be resumed from its checkpoint alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportSpec {
    pub entity: String,
    /// Default: the template's, else `create`.
    pub mode: Option<Mode>,
    /// The key rows are matched by (`id`, a unique key, an indexed field); default: the
    /// template's.
    #[serde(rename = "match")]
    pub match_on: Option<String>,
    /// `header → target`, over the template's.
    pub columns: BTreeMap<String, String>,
    /// An `import_templates` record's name.
    pub template: Option<String>,
    pub delimiter: Option<String>,
    pub encoding: Option<String>,
    pub sheet: Option<String>,
    pub dry_run: bool,
    /// Save the mapping and settings as a template of this name (admins).
    pub save_template: Option<String>,
    /// The file's name as its owner knows it.
    pub file_name: String,
    /// BLAKE3 of the file's bytes: an import resumes only on the same file.
    pub file_digest: String,
}

/// The BLAKE3 digest of a file, hex.
pub fn digest_file(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Why an import could not run (rows refused one by one are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Mapping(#[from] MappingError),
    /// The request itself: an unknown entity, mode or template, a mode without a match key.
    #[error("{0}")]
    Refused(String),
    /// Another process is running this import.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<kontor_store::StoreError> for ImportError {
    fn from(e: kontor_store::StoreError) -> Self {
        ImportError::Core(e.into())
    }
}

/// Where an import stands after a chunk: written in the chunk's transaction.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub spec: ImportSpec,
    pub batch: String,
    /// Data rows of the file consumed so far.
    pub rows_done: u64,
    pub report: ImportReport,
    /// Set once the import has gone through the whole file.
    #[serde(default)]
    pub finished: bool,
}

/// Who runs an import, for whom, and where it reports.
pub struct ImportRun<'a> {
    pub kontor: Arc<Kontor>,
    pub actor: Actor,
    /// Its job (a row in `jobs`, made by the caller): checkpoint and refused rows hang off it.
    pub job_id: String,
    /// Who holds the import's lease while it runs (a node or a process).
    pub holder: String,
    /// Bytes of the file read so far, of all.
    pub progress: &'a dyn Progress,
}

/// Runs (or, when the job has a checkpoint, resumes) an import of `path`.
pub async fn run(
    ctx: &ImportRun<'_>,
    spec: ImportSpec,
    path: &Path,
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let kontor = &ctx.kontor;
    let entity = importable(&spec.entity)?;
    let template = match &spec.template {
        Some(name) => Some(load_template(kontor, name, entity).await?),
        None => None,
    };
    let setting = |own: &Option<String>, key: &str| {
        own.clone().or_else(|| {
            template
                .as_ref()
                .and_then(|t| t.get(key))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    };
    let mode = match spec.mode {
        Some(m) => m,
        None => match setting(&None, "mode") {
            Some(m) => Mode::parse(&m).ok_or_else(|| {
                ImportError::Refused(format!("the template's mode '{m}' is unknown"))
            })?,
            None => Mode::Create,
        },
    };
    let match_on = setting(&spec.match_on, "match");
    let options = ReadOptions {
        delimiter: setting(&spec.delimiter, "delimiter")
            .map(|d| delimiter_byte(&d))
            .transpose()?,
        encoding: setting(&spec.encoding, "encoding"),
        sheet: setting(&spec.sheet, "sheet"),
    };
    check_allowed(&ctx.actor, entity, mode)?;
    let schema = kontor.schema(entity).await?;
    let mut related_schemas = HashMap::new();
    for e in Entity::ALL {
        related_schemas.insert(e, kontor.schema(e).await?);
    }
    let related = |e: Entity| {
        related_schemas
            .get(&e)
            .cloned()
            .unwrap_or_else(|| kontor_domain::schema::builtin(e).clone())
    };

    let path_owned = path.to_path_buf();
    let table = tokio::task::block_in_place(|| Table::open(&path_owned, &options))?;
    let mut input = MappingInput {
        explicit: spec.columns.clone(),
        template: BTreeMap::new(),
    };
    if let Some(cols) = template
        .as_ref()
        .and_then(|t| t.get("columns"))
        .and_then(Value::as_object)
    {
        for (h, t) in cols {
            if let Some(t) = t.as_str() {
                input.template.insert(h.clone(), t.to_string());
            }
        }
    }
    let (mapping, template_missing) =
        mapping::build(&schema, table.headers(), &input, &ctx.actor, &related)?;
    let key = match &match_on {
        Some(k) => Some(Key::parse(&schema, k).map_err(ImportError::Refused)?),
        None => None,
    };
    match (&key, mode) {
        (None, Mode::Update | Mode::Upsert | Mode::Skip) => {
            return Err(ImportError::Refused(format!(
                "mode {} needs a key to match rows with records (--match; one of: {})",
                mode.as_str(),
                mapping::key_names(&schema).join(", ")
            )))
        }
        (Some(k), _) => {
            for f in k.fields() {
                if mapping.column_of(f).is_none() {
                    return Err(ImportError::Refused(format!(
                        "rows are matched by {}, but no column goes to {f} (map one with --map 'HEADER={f}')",
                        k.name()
                    )));
                }
            }
        }
        (None, Mode::Create) => {}
    }
    if mapping.targets.iter().all(|t| *t == Target::Ignored) {
        return Err(ImportError::Refused(format!(
            "no column of the file goes to a field of {entity} (columns: {}); map them with --map 'HEADER=field' or a template",
            mapping.headers.join(", ")
        )));
    }
    if !kontor
        .store
        .try_lease(
            &lease_name(&ctx.job_id),
            &ctx.holder,
            kontor_domain::time::now(),
            LEASE_TTL,
        )
        .await?
    {
        return Err(ImportError::Busy(format!(
            "import {} is running elsewhere; it can be resumed 15 seconds after it stops",
            ctx.job_id
        )));
    }
    if let (Some(name), false) = (&spec.save_template, spec.dry_run) {
        save_template(
            kontor, &ctx.actor, name, entity, &mapping, mode, &match_on, &options,
        )
        .await?;
    }

    // A checkpoint of a real run resumes it; a new run (and any dry run) starts afresh.
    let resumed = match kontor.store.job_checkpoint(&ctx.job_id).await? {
        Some(text) if !spec.dry_run => {
            let c: Checkpoint = serde_json::from_str(&text).map_err(|e| {
                ImportError::Refused(format!("the import's checkpoint is unreadable: {e}"))
            })?;
            if c.spec.file_digest != spec.file_digest {
                return Err(ImportError::Refused(
                    "this import was started on another file; start a new import".into(),
                ));
            }
            Some(c)
        }
        _ => None,
    };
    let (batch, rows_done, report) = match resumed {
        Some(c) if c.finished => return Ok(c.report),
        Some(c) => {
            let batch: BatchId = c.batch.parse().map_err(|_| {
                ImportError::Refused("the import's checkpoint names no batch".into())
            })?;
            let mut report = c.report;
            if c.rows_done > 0 {
                report.resumed_after_row = Some(c.rows_done);
            }
            (batch, c.rows_done, report)
        }
        None => {
            let batch = BatchId::new();
            let report = ImportReport {
                job: ctx.job_id.clone(),
                batch: batch.to_string(),
                dry_run: spec.dry_run,
                entity: entity.as_str().into(),
                file: spec.file_name.clone(),
                mode: mode.as_str().into(),
                match_on: key.as_ref().map(|k| k.name().to_string()),
                read: serde_json::to_value(table.described()).unwrap_or(Value::Null),
                mapping: mapping.spelled(),
                ignored_columns: mapping.ignored(),
                template_columns_missing: template_missing,
                ..ImportReport::default()
            };
            (batch, 0, report)
        }
    };
    let converter = Converter {
        schema: &schema,
        mapping: &mapping,
        key: key.as_ref(),
        related: &related,
    };
    let mut importer = Importer {
        ctx,
        entity,
        mode,
        spec: &spec,
        converter,
        batch,
        table,
        seen: HashMap::new(),
        rows_done: 0,
        report,
        pending_errors: Vec::new(),
        last_bytes: 0,
    };
    let (_, total) = importer.table.progress();
    ctx.progress
        .phase(if spec.dry_run { "dry run" } else { "import" }, Some(total));
    importer.skip_done(rows_done)?;
    importer.run_chunks().await?;
    importer.report.seconds += started.elapsed().as_secs_f64();
    importer.finish().await?;
    ctx.progress.done();
    Ok(importer.report)
}

/// The interrupted import of the same file with the same settings that `user_id` started (a
/// running job whose checkpoint is not finished), to be taken up rather than started again.
pub async fn resumable(
    kontor: &Kontor,
    spec: &ImportSpec,
    user_id: &str,
) -> Result<Option<kontor_store::JobRow>, CoreError> {
    if spec.dry_run {
        return Ok(None);
    }
    let mut before: Option<String> = None;
    // The newest few thousand imports are looked at; an older interrupted one starts anew.
    for _ in 0..10 {
        let rows = kontor.store.jobs("import", before.as_deref(), 200).await?;
        for row in &rows {
            before = Some(row.id.clone());
            if row.kind != "import" || row.state != "running" || row.created_by != user_id {
                continue;
            }
            let Some(text) = kontor.store.job_checkpoint(&row.id).await? else {
                continue;
            };
            let Ok(c) = serde_json::from_str::<Checkpoint>(&text) else {
                continue;
            };
            if !c.finished && same_import(&c.spec, spec) {
                return Ok(Some(row.clone()));
            }
        }
        if rows.len() < 200 {
            break;
        }
    }
    Ok(None)
}

/// The same file imported the same way (the template to save aside).
fn same_import(a: &ImportSpec, b: &ImportSpec) -> bool {
    a.file_digest == b.file_digest
        && a.entity == b.entity
        && a.mode == b.mode
        && a.match_on == b.match_on
        && a.columns == b.columns
        && a.template == b.template
        && a.delimiter == b.delimiter
        && a.encoding == b.encoding
        && a.sheet == b.sheet
}

/// Rows of an import's error report as CSV (`row,column,value,reason`); `with_header` starts
/// the file (with a BOM, so spreadsheet programs read it as UTF-8).
pub fn errors_csv(rows: &[ImportErrorRow], with_header: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    if with_header {
        buf.extend_from_slice("\u{feff}".as_bytes());
    }
    {
        let mut w = csv::Writer::from_writer(&mut buf);
        if with_header {
            let _ = w.write_record(["row", "column", "value", "reason"]);
        }
        for e in rows {
            let _ = w.write_record([
                e.row.to_string().as_str(),
                e.column.as_str(),
                e.value.as_str(),
                e.reason.as_str(),
            ]);
        }
        let _ = w.flush();
    }
    buf
}

/// Writes all of an import's refused rows as CSV to `out`; returns how many.
pub async fn write_errors_csv(
    store: &dyn kontor_store::Store,
    job_id: &str,
    out: &mut (dyn std::io::Write + Send),
) -> Result<u64, ImportError> {
    out.write_all(&errors_csv(&[], true))
        .map_err(|e| ImportError::Refused(format!("cannot write the error report: {e}")))?;
    let mut after = None;
    let mut n = 0;
    loop {
        let page = store.import_errors(job_id, after.clone(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.row, last.column.clone()));
        n += page.len() as u64;
        out.write_all(&errors_csv(&page, false))
            .map_err(|e| ImportError::Refused(format!("cannot write the error report: {e}")))?;
        if page.len() < 1000 {
            break;
        }
    }
    Ok(n)
}

/// The lease that keeps an import to one process.
pub fn lease_name(job_id: &str) -> String {
    format!("import:{job_id}")
}

fn importable(name: &str) -> Result<Entity, ImportError> {
    name.parse::<Entity>()
        .ok()
        .filter(|e| IMPORTABLE.contains(&e.as_str()))
        .ok_or_else(|| {
            ImportError::Refused(format!(
                "cannot import into '{name}'; into one of: {}",
                IMPORTABLE.join(", ")
            ))
        })
}

/// A delimiter as written (see [`crate::source::parse_delimiter`]).
fn delimiter_byte(d: &str) -> Result<u8, ImportError> {
    crate::source::parse_delimiter(d).ok_or_else(|| {
        ImportError::Refused(format!(
            "a delimiter is one punctuation character or 'tab', not '{d}'"
        ))
    })
}

fn check_allowed(actor: &Actor, entity: Entity, mode: Mode) -> Result<(), ImportError> {
    let needs: &[Action] = match mode {
        Mode::Create | Mode::Skip => &[Action::Create],
        Mode::Update => &[Action::Update],
        Mode::Upsert => &[Action::Create, Action::Update],
    };
    for a in needs {
        if actor.owner_filter(entity, *a) == OwnerFilter::Nothing {
            return Err(CoreError::Domain(DomainError::forbidden(format!(
                "role {} may not {} {entity}",
                actor.role.name,
                a.as_str()
            )))
            .into());
        }
    }
    Ok(())
}

async fn load_template(
    kontor: &Kontor,
    name: &str,
    entity: Entity,
) -> Result<Map<String, Value>, ImportError> {
    let rec = kontor
        .store
        .find_unique(Entity::ImportTemplates, "name", &name.trim().to_lowercase())
        .await?
        .ok_or_else(|| ImportError::Refused(format!("there is no import template '{name}'")))?;
    let of = rec.data.get("entity").and_then(Value::as_str).unwrap_or("");
    if of != entity.as_str() {
        return Err(ImportError::Refused(format!(
            "the import template '{name}' is for {of}, not {entity}"
        )));
    }
    Ok(rec.data)
}

#[allow(clippy::too_many_arguments)]
async fn save_template(
    kontor: &Kontor,
    actor: &Actor,
    name: &str,
    entity: Entity,
    mapping: &Mapping,
    mode: Mode,
    match_on: &Option<String>,
    options: &ReadOptions,
) -> Result<(), ImportError> {
    let columns: Map<String, Value> = mapping
        .spelled()
        .into_iter()
        .filter(|(h, _)| !h.is_empty())
        .map(|(h, t)| (h, Value::from(t)))
        .collect();
    let mut data = serde_json::json!({
        "name": name,
        "entity": entity.as_str(),
        "columns": columns,
        "mode": mode.as_str(),
        "match": match_on,
        "encoding": options.encoding,
        "sheet": options.sheet,
    });
    if let Some(d) = options.delimiter {
        data["delimiter"] = Value::from(if d == b'\t' {
            "tab".to_string()
        } else {
            char::from(d).to_string()
        });
    }
    let existing = kontor
        .store
        .find_unique(Entity::ImportTemplates, "name", &name.trim().to_lowercase())
        .await?;
    let mutation = match existing {
        Some(rec) => Mutation::Update {
            entity: Entity::ImportTemplates,
            id: rec.id,
            input: data,
        },
        None => Mutation::Create {
            entity: Entity::ImportTemplates,
            input: data,
        },
    };
    kontor.write(actor, Origin::Import, vec![mutation]).await?;
    Ok(())
}

/// A row's cells as the write path will get them, with what the row is matched and
/// deduplicated by.
struct Converted {
    row: u64,
    input: Map<String, Value>,
    /// The record id the row names (an `id` column).
    id: Option<String>,
    /// References to resolve: `(column, lookup value)`.
    related: Vec<(usize, Value)>,
    /// The first cell that cannot be a value of its field: `(column, its text, reason)`.
    failure: Option<(usize, String, String)>,
    /// The match key's value, in the form lookups compare.
    match_value: Option<String>,
    /// The values of keys that no two rows may share: `(key name, value)`.
    keys: Vec<(String, String)>,
}

/// Turns rows into [`Converted`]: pure, the same on a resume as the first time.
struct Converter<'a> {
    schema: &'a Schema,
    mapping: &'a Mapping,
    key: Option<&'a Key>,
    related: &'a (dyn Fn(Entity) -> Schema + Sync),
}

/// A field's value as stored, for comparisons (`None` when the write path would refuse it).
fn canonical(def: &FieldDef, v: &Value) -> Option<Value> {
    parse_value(
        &def.ty,
        v,
        &FieldPath::Field(&def.name),
        &MoneyContext::unknown(),
        None,
        false,
    )
    .ok()
    .flatten()
}

/// A stored value in the form lookups compare: phones by their digits, numbers without
/// trailing zeros, everything else as its text.
fn compared(kind: Option<KeyKind>, v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    Some(match kind {
        Some(KeyKind::Phone) => phone_key(&text),
        Some(KeyKind::Number) => match Dec::parse(&text) {
            Some(d) => {
                let s = d.to_string();
                if s.contains('.') {
                    s.trim_end_matches('0').trim_end_matches('.').to_string()
                } else {
                    s
                }
            }
            None => text,
        },
        _ => text,
    })
}

impl Converter<'_> {
    fn convert(&self, row: &Row) -> Converted {
        let mut c = Converted {
            row: row.number,
            input: Map::new(),
            id: None,
            related: Vec::new(),
            failure: None,
            match_value: None,
            keys: Vec::new(),
        };
        let cells = &row.cells;
        for (i, target) in self.mapping.targets.iter().enumerate() {
            let text = cells.get(i).map(String::as_str).unwrap_or("");
            let trimmed = text.trim();
            let failed = match target {
                Target::Ignored => None,
                Target::Field(f) => match self.schema.field(f) {
                    Some(def) => match cell_value(&def.ty, text) {
                        Ok(Some(v)) => {
                            c.input.insert(f.clone(), v);
                            None
                        }
                        Ok(None) => None,
                        Err(e) => Some(e.0),
                    },
                    None => Some(format!("{} has no field {f}", self.schema.entity)),
                },
                Target::Id if trimmed.is_empty() => None,
                Target::Id => match parse_id(trimmed) {
                    Some(id) => {
                        c.id = Some(id);
                        None
                    }
                    None => Some(format!("'{trimmed}' is not a Kontor id (a UUID)")),
                },
                Target::Owner if trimmed.is_empty() => None,
                Target::Owner => match parse_id(trimmed) {
                    Some(id) => {
                        c.input.insert("owner_id".into(), Value::from(id));
                        None
                    }
                    None => Some(format!("'{trimmed}' is not a user id (a UUID)")),
                },
                Target::Related { .. } if trimmed.is_empty() => None,
                Target::Related { entity, key, .. } => {
                    match self.lookup_value(*entity, key, text) {
                        Ok(v) => {
                            c.related.push((i, v));
                            None
                        }
                        Err(e) => Some(e),
                    }
                }
            };
            if let Some(reason) = failed {
                c.failure = Some((i, text.to_string(), reason));
                break;
            }
        }
        if c.failure.is_none() {
            let width = self.mapping.headers.len();
            if let Some(extra) = cells.iter().skip(width).position(|s| !s.trim().is_empty()) {
                c.failure = Some((
                    width + extra,
                    cells[width + extra].clone(),
                    format!("a value beyond the last column (the header has {width})"),
                ));
            }
        }
        if let Some(key) = self.key {
            c.match_value = self.key_value(key, &c.input, c.id.as_deref());
            if let Some(v) = &c.match_value {
                // Two rows of one file with an e-mail written in other letters are one person.
                let is_email = key.fields().iter().any(|f| {
                    self.schema
                        .field(f)
                        .is_some_and(|d| matches!(d.ty, kontor_domain::schema::FieldType::Email))
                });
                let v = if is_email {
                    v.to_lowercase()
                } else {
                    v.clone()
                };
                c.keys.push((format!("match:{}", key.name()), v));
            }
        }
        for u in &self.schema.unique {
            if self.key.is_some_and(|k| k.name() == u.name) {
                continue;
            }
            let key = Key::Unique {
                name: u.name.clone(),
                fields: u.fields.clone(),
                case_insensitive: u.case_insensitive,
            };
            if u.fields.iter().all(|f| c.input.contains_key(f)) {
                if let Some(v) = self.key_value(&key, &c.input, None) {
                    c.keys.push((u.name.clone(), v));
                }
            }
        }
        c
    }

    /// The value of `key` in a row's fields, as lookups compare it.
    fn key_value(&self, key: &Key, input: &Map<String, Value>, id: Option<&str>) -> Option<String> {
        match key {
            Key::Id => id.map(str::to_string),
            Key::Unique {
                fields,
                case_insensitive,
                ..
            } => {
                let mut data = Map::new();
                for f in fields {
                    let def = self.schema.field(f)?;
                    match input.get(f) {
                        Some(v) => {
                            data.insert(f.clone(), canonical(def, v)?);
                        }
                        None if f == &fields[0] => return None,
                        None => {}
                    }
                }
                kontor_core::derived::unique_value(&data, fields, *case_insensitive)
            }
            Key::Field { name, kind } => {
                let def = self.schema.field(name)?;
                compared(Some(*kind), &canonical(def, input.get(name)?)?)
            }
        }
    }

    /// A related record's key from a cell: canonical, as its records store it.
    fn lookup_value(&self, entity: Entity, key: &Key, text: &str) -> Result<Value, String> {
        let schema = (self.related)(entity);
        match key {
            Key::Id => parse_id(text.trim())
                .map(Value::from)
                .ok_or_else(|| format!("'{}' is not a Kontor id (a UUID)", text.trim())),
            Key::Unique {
                fields,
                case_insensitive,
                ..
            } => {
                let f = fields.first().ok_or("a key without fields")?;
                let def = schema
                    .field(f)
                    .ok_or_else(|| format!("{entity} has no field {f}"))?;
                let v = cell_value(&def.ty, text)
                    .map_err(|e| e.0)?
                    .and_then(|v| canonical(def, &v))
                    .ok_or_else(|| format!("'{}' is not a valid {f}", text.trim()))?;
                let mut data = Map::new();
                data.insert(f.clone(), v);
                kontor_core::derived::unique_value(&data, fields, *case_insensitive)
                    .map(Value::from)
                    .ok_or_else(|| format!("'{}' is not a valid {f}", text.trim()))
            }
            Key::Field { name, .. } => {
                let def = schema
                    .field(name)
                    .ok_or_else(|| format!("{entity} has no field {name}"))?;
                cell_value(&def.ty, text)
                    .map_err(|e| e.0)?
                    .and_then(|v| canonical(def, &v))
                    .ok_or_else(|| format!("'{}' is not a valid {name}", text.trim()))
            }
        }
    }
}

/// Finds the live records (that `owners` allows) with these key values: compared value →
/// record ids.
async fn find(
    kontor: &Kontor,
    entity: Entity,
    key: &Key,
    values: &[Value],
    owners: &OwnerFilter,
) -> Result<HashMap<String, Vec<String>>, ImportError> {
    let mut found: HashMap<String, Vec<String>> = HashMap::new();
    if values.is_empty() {
        return Ok(found);
    }
    let texts: Vec<String> = values.iter().filter_map(|v| compared(None, v)).collect();
    let visible = |r: &Record| {
        !r.is_deleted()
            && match owners {
                OwnerFilter::Any => true,
                OwnerFilter::Nothing => false,
                OwnerFilter::OneOf(ids) => r
                    .owner_id
                    .as_ref()
                    .is_some_and(|o| ids.iter().any(|i| i == o)),
            }
    };
    match key {
        Key::Id => {
            for r in kontor.store.get_many(entity, &texts).await? {
                if visible(&r) {
                    found.entry(r.id.clone()).or_default().push(r.id);
                }
            }
        }
        Key::Unique { name, .. } => {
            let holders = kontor.store.unique_holders(entity, name, &texts).await?;
            let ids: Vec<String> = holders.iter().map(|(_, id)| id.clone()).collect();
            let records: HashMap<String, Record> = kontor
                .store
                .get_many(entity, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
            for (value, id) in holders {
                if records.get(&id).is_some_and(visible) {
                    found.entry(value).or_default().push(id);
                }
            }
        }
        Key::Field { name, kind } => {
            let column = ListColumn::Field {
                name: name.clone(),
                kind: *kind,
            };
            for part in values.chunks(256) {
                let list: Vec<ListValue> =
                    part.iter().filter_map(|v| list_value(*kind, v)).collect();
                let limit = u32::try_from(list.len() * 3 + 10).unwrap_or(u32::MAX);
                let q = ListQuery {
                    owners: owners.clone(),
                    conditions: vec![Condition {
                        column: column.clone(),
                        op: FilterOp::In,
                        value: Some(ListValue::AnyOf(list)),
                    }],
                    ..ListQuery::all(entity, None, limit)
                };
                let records = kontor.store.list(&q).await?;
                let complete = records.len() < limit as usize;
                for r in records {
                    if let Some(v) = r.data.get(name).and_then(|v| compared(Some(*kind), v)) {
                        found.entry(v).or_default().push(r.id.clone());
                    }
                }
                if !complete {
                    // Some values are shared by many records: ask for each, two at most.
                    found.clear();
                    for v in part {
                        let Some(lv) = list_value(*kind, v) else {
                            continue;
                        };
                        let q = ListQuery {
                            owners: owners.clone(),
                            conditions: vec![Condition {
                                column: column.clone(),
                                op: FilterOp::Eq,
                                value: Some(lv),
                            }],
                            ..ListQuery::all(entity, None, 2)
                        };
                        for r in kontor.store.list(&q).await? {
                            if let Some(v) = r.data.get(name).and_then(|v| compared(Some(*kind), v))
                            {
                                found.entry(v).or_default().push(r.id.clone());
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

fn list_value(kind: KeyKind, v: &Value) -> Option<ListValue> {
    Some(match (kind, v) {
        (KeyKind::Integer, Value::Number(n)) => ListValue::Integer(n.as_i64()?),
        (KeyKind::Bool, Value::Bool(b)) => ListValue::Bool(*b),
        (KeyKind::Number, Value::String(s)) => ListValue::Number(s.clone()),
        (_, Value::String(s)) => ListValue::Text(s.clone()),
        _ => return None,
    })
}

/// What became of a row once planned.
enum Plan {
    /// Goes to the write path.
    Write {
        mutation: Mutation,
        creates: bool,
        key: Option<String>,
    },
    /// Settled without a write.
    Settled {
        outcome: Outcome,
        sample: Sample,
        error: Option<ImportErrorRow>,
    },
}

struct Planned {
    row: u64,
    plan: Plan,
    /// The row's cells, for naming what the write path refuses.
    cells: Vec<String>,
}

struct Importer<'a, 'c> {
    ctx: &'a ImportRun<'c>,
    entity: Entity,
    mode: Mode,
    spec: &'a ImportSpec,
    converter: Converter<'a>,
    batch: BatchId,
    table: Table,
    /// Keys seen in the file: hash of (key, value) → the first row that had it.
    seen: HashMap<[u8; 16], u64>,
    /// Data rows consumed.
    rows_done: u64,
    report: ImportReport,
    /// Rows refused since the last transaction, written with the next one.
    pending_errors: Vec<ImportErrorRow>,
    last_bytes: u64,
}

fn key_hash(key: &str, value: &str) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(&[0]);
    h.update(value.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

impl Importer<'_, '_> {
    /// Reads past the rows an earlier run of this import already took in, learning the keys
    /// they hold.
    fn skip_done(&mut self, rows_done: u64) -> Result<(), ImportError> {
        if rows_done == 0 {
            return Ok(());
        }
        tokio::task::block_in_place(|| {
            while self.rows_done < rows_done {
                let Some(row) = self.table.next_row()? else {
                    break;
                };
                let c = self.converter.convert(&row);
                self.duplicate_of(&c);
                self.rows_done += 1;
            }
            Ok::<_, ImportError>(())
        })?;
        self.advance_progress();
        Ok(())
    }

    /// The earlier row that had one of this row's keys; otherwise the row now owns its keys.
    fn duplicate_of(&mut self, c: &Converted) -> Option<(u64, String)> {
        for (k, v) in &c.keys {
            if let Some(first) = self.seen.get(&key_hash(k, v)) {
                return Some((*first, k.trim_start_matches("match:").to_string()));
            }
        }
        for (k, v) in &c.keys {
            self.seen.insert(key_hash(k, v), c.row);
        }
        None
    }

    fn advance_progress(&mut self) {
        let (done, _) = self.table.progress();
        if done > self.last_bytes {
            self.ctx.progress.advance(done - self.last_bytes);
            self.last_bytes = done;
        }
    }

    async fn run_chunks(&mut self) -> Result<(), ImportError> {
        loop {
            let rows = tokio::task::block_in_place(|| {
                let mut rows = Vec::with_capacity(CHUNK_ROWS);
                while rows.len() < CHUNK_ROWS {
                    match self.table.next_row()? {
                        Some(r) => rows.push(r),
                        None => break,
                    }
                }
                Ok::<_, SourceError>(rows)
            })?;
            if rows.is_empty() {
                return Ok(());
            }
            let planned = self.plan(rows).await?;
            self.apply(planned).await?;
            self.advance_progress();
            // Keep the lease while the import runs; one lost means another process took the
            // import up (this one was too slow to renew it), so this one stops.
            if !self
                .ctx
                .kontor
                .store
                .try_lease(
                    &lease_name(&self.ctx.job_id),
                    &self.ctx.holder,
                    kontor_domain::time::now(),
                    LEASE_TTL,
                )
                .await?
            {
                return Err(ImportError::Busy(format!(
                    "import {} was taken up by another process",
                    self.ctx.job_id
                )));
            }
        }
    }

    fn column_header(&self, column: usize) -> String {
        self.converter
            .mapping
            .headers
            .get(column)
            .cloned()
            .unwrap_or_else(|| format!("column {}", column + 1))
    }

    fn failed(&self, row: u64, column: usize, value: &str, reason: String) -> Plan {
        let header = self.column_header(column);
        Plan::Settled {
            outcome: Outcome::Failed,
            sample: Sample {
                row,
                id: None,
                key: None,
                column: Some(header.clone()),
                reason: Some(reason.clone()),
            },
            error: Some(ImportErrorRow {
                row,
                column: header,
                value: value.to_string(),
                reason,
            }),
        }
    }

    /// Decides each row of a chunk: conversion, duplicates, references and matches (a few
    /// bulk reads), the mode.
    async fn plan(&mut self, rows: Vec<Row>) -> Result<Vec<Planned>, ImportError> {
        let converted: Vec<Converted> = rows.iter().map(|r| self.converter.convert(r)).collect();
        let mut dup = Vec::with_capacity(converted.len());
        for c in &converted {
            dup.push(self.duplicate_of(c));
        }
        self.rows_done += rows.len() as u64;
        let kontor = self.ctx.kontor.clone();
        let read_scope = self.ctx.actor.owner_filter(self.entity, Action::Read);
        // References, per column.
        let mut resolved: HashMap<usize, HashMap<String, Vec<String>>> = HashMap::new();
        for (col, target) in self.converter.mapping.targets.iter().enumerate() {
            let Target::Related { entity, key, .. } = target else {
                continue;
            };
            let values: Vec<Value> = converted
                .iter()
                .filter(|c| c.failure.is_none())
                .flat_map(|c| {
                    c.related
                        .iter()
                        .filter(|(i, _)| *i == col)
                        .map(|(_, v)| v.clone())
                })
                .collect();
            let scope = if *entity == Entity::Users {
                OwnerFilter::Any
            } else {
                self.ctx.actor.owner_filter(*entity, Action::Read)
            };
            resolved.insert(col, find(&kontor, *entity, key, &values, &scope).await?);
        }
        // Matches.
        let matches = match self.converter.key {
            Some(key) => {
                let values: Vec<Value> = converted
                    .iter()
                    .filter(|c| c.failure.is_none())
                    .filter_map(|c| c.match_value.clone().map(Value::from))
                    .collect();
                let key = match key {
                    // Field lookups compare the stored value's form; the row's is already so.
                    Key::Field { name, kind } => Key::Field {
                        name: name.clone(),
                        kind: *kind,
                    },
                    other => other.clone(),
                };
                find(&kontor, self.entity, &key, &values, &read_scope).await?
            }
            None => HashMap::new(),
        };
        let mut out = Vec::with_capacity(converted.len());
        for ((c, dup), r) in converted.into_iter().zip(dup).zip(rows) {
            let row = c.row;
            let plan = self.decide(c, dup, &resolved, &matches);
            out.push(Planned {
                row,
                plan,
                cells: r.cells,
            });
        }
        Ok(out)
    }

    fn decide(
        &self,
        mut c: Converted,
        dup: Option<(u64, String)>,
        resolved: &HashMap<usize, HashMap<String, Vec<String>>>,
        matches: &HashMap<String, Vec<String>>,
    ) -> Plan {
        let row = c.row;
        if let Some((col, text, reason)) = c.failure.take() {
            return self.failed(row, col, &text, reason);
        }
        if let Some((first, key)) = dup {
            let column = self
                .converter
                .mapping
                .column_of(key.split('+').next().unwrap_or(&key))
                .map(|i| self.column_header(i))
                .unwrap_or_else(|| key.clone());
            let reason = format!("the same {key} as row {first}; the first row with it counts");
            return Plan::Settled {
                outcome: Outcome::Duplicate,
                sample: Sample {
                    row,
                    id: None,
                    key: c.match_value.clone(),
                    column: Some(column.clone()),
                    reason: Some(reason.clone()),
                },
                error: Some(ImportErrorRow {
                    row,
                    column,
                    value: c.match_value.clone().unwrap_or_default(),
                    reason,
                }),
            };
        }
        for (col, value) in &c.related {
            let Target::Related { field, entity, key } = &self.converter.mapping.targets[*col]
            else {
                continue;
            };
            let text = compared(None, value).unwrap_or_default();
            let ids = resolved
                .get(col)
                .and_then(|m| m.get(&compared(kind_of(key), value).unwrap_or_default()))
                .cloned()
                .unwrap_or_default();
            match ids.as_slice() {
                [id] => {
                    c.input.insert(field.clone(), Value::from(id.clone()));
                }
                [] => {
                    return self.failed(
                        row,
                        *col,
                        &text,
                        format!("no {} with {} {text}", entity.singular(), key.name()),
                    )
                }
                more => {
                    return self.failed(
                        row,
                        *col,
                        &text,
                        format!(
                            "{} {} have {} {text}; find it by a key only one has",
                            more.len(),
                            entity.as_str(),
                            key.name()
                        ),
                    )
                }
            }
        }
        let key_column = self
            .converter
            .key
            .and_then(|k| {
                k.fields()
                    .first()
                    .and_then(|f| self.converter.mapping.column_of(f))
            })
            .unwrap_or(0);
        let matched: &[String] = c
            .match_value
            .as_ref()
            .and_then(|v| matches.get(v))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let key_text = c.match_value.clone();
        let ambiguous = |n: usize| {
            format!(
                "{n} {} have this {}; match by a key only one has",
                self.entity.as_str(),
                self.converter.key.map(Key::name).unwrap_or("key")
            )
        };
        let entity = self.entity;
        let input = Value::Object(c.input);
        match (self.mode, matched) {
            (_, [_, _, ..]) => self.failed(
                row,
                key_column,
                key_text.as_deref().unwrap_or(""),
                ambiguous(matched.len()),
            ),
            (Mode::Update, []) => {
                let reason = match &key_text {
                    Some(_) => format!(
                        "no {} has this {}, and mode update creates nothing",
                        entity.singular(),
                        self.converter.key.map(Key::name).unwrap_or("key")
                    ),
                    None => "no value to match by".to_string(),
                };
                self.failed(row, key_column, key_text.as_deref().unwrap_or(""), reason)
            }
            (Mode::Create, [id]) => self.failed(
                row,
                key_column,
                key_text.as_deref().unwrap_or(""),
                format!(
                    "{} {id} already has this {}; mode create makes no second one",
                    entity.singular(),
                    self.converter.key.map(Key::name).unwrap_or("key")
                ),
            ),
            (Mode::Skip, [id]) => Plan::Settled {
                outcome: Outcome::Skipped,
                sample: Sample {
                    row,
                    id: Some(id.clone()),
                    key: key_text,
                    column: None,
                    reason: None,
                },
                error: None,
            },
            (Mode::Update | Mode::Upsert, [id]) => {
                let mut input = input;
                if let Some(o) = input.as_object_mut() {
                    o.remove("id");
                }
                Plan::Write {
                    mutation: Mutation::Update {
                        entity,
                        id: id.clone(),
                        input,
                    },
                    creates: false,
                    key: key_text,
                }
            }
            (Mode::Create | Mode::Upsert | Mode::Skip, []) => Plan::Write {
                mutation: match c.id {
                    Some(id) => Mutation::CreateAs { entity, id, input },
                    None => Mutation::Create { entity, input },
                },
                creates: true,
                key: key_text,
            },
        }
    }

    /// The checkpoint after `rows_done` rows with these counts (none for a dry run).
    fn checkpoint_with(
        &self,
        rows_done: u64,
        report: ImportReport,
        finished: bool,
    ) -> Option<String> {
        if self.spec.dry_run {
            return None;
        }
        let c = Checkpoint {
            spec: self.spec.clone(),
            batch: self.batch.to_string(),
            rows_done,
            report,
            finished,
        };
        serde_json::to_string(&c).ok()
    }

    /// The checkpoint as of the rows settled so far.
    fn checkpoint(&self, rows_done: u64, finished: bool) -> Option<String> {
        self.checkpoint_with(rows_done, self.report.clone(), finished)
    }

    /// What a transaction writing `writes` (row, creates, key) carries: the checkpoint after
    /// `rows_done`, those writes counted as planned (created or updated; the transaction's
    /// answer corrects an update that changed nothing to unchanged in memory, so a resume
    /// right after this very chunk reports it as updated), and the rows refused since the
    /// last transaction.
    fn progress_with(&self, rows_done: u64, writes: &[(u64, bool, Option<String>)]) -> JobProgress {
        let mut provisional = self.report.clone();
        for (row, creates, key) in writes {
            let outcome = if *creates {
                Outcome::Created
            } else {
                Outcome::Updated
            };
            provisional.count(
                outcome,
                Sample {
                    row: *row,
                    id: None,
                    key: key.clone(),
                    column: None,
                    reason: None,
                },
            );
        }
        JobProgress {
            job_id: self.ctx.job_id.clone(),
            checkpoint: self.checkpoint_with(rows_done, provisional, false),
            errors: self.pending_errors.clone(),
        }
    }

    fn progress(&mut self, rows_done: u64) -> JobProgress {
        JobProgress {
            job_id: self.ctx.job_id.clone(),
            checkpoint: self.checkpoint(rows_done, false),
            errors: std::mem::take(&mut self.pending_errors),
        }
    }

    fn settle(&mut self, outcome: Outcome, sample: Sample, error: Option<ImportErrorRow>) {
        self.report.count(outcome, sample);
        if let Some(e) = error {
            self.pending_errors.push(e);
        }
    }

    /// Writes a chunk's rows: all in one transaction, or, when the write path refuses one,
    /// one row at a time.
    async fn apply(&mut self, planned: Vec<Planned>) -> Result<(), ImportError> {
        let chunk_end = self.rows_done;
        let kontor = self.ctx.kontor.clone();
        let mutations: Vec<Mutation> = planned
            .iter()
            .filter_map(|p| match &p.plan {
                Plan::Write { mutation, .. } => Some(mutation.clone()),
                Plan::Settled { .. } => None,
            })
            .collect();
        // Count as if the whole chunk lands; if the write path refuses it, start over from
        // the counts before and go row by row.
        let before = (self.report.clone(), self.pending_errors.clone());
        let mut writes = Vec::new();
        for p in &planned {
            match &p.plan {
                Plan::Write { creates, key, .. } => writes.push((p.row, *creates, key.clone())),
                Plan::Settled {
                    outcome,
                    sample,
                    error,
                } => self.settle(*outcome, sample.clone(), error.clone()),
            }
        }
        if mutations.is_empty() {
            let progress = self.progress(chunk_end);
            kontor.store.save_progress(&progress).await?;
            return Ok(());
        }
        let progress = self.progress_with(chunk_end, &writes);
        let whole = self.write(&mutations, &progress).await;
        match whole {
            Ok(applied) => {
                self.pending_errors.clear();
                if self.spec.dry_run {
                    kontor.store.save_progress(&progress).await?;
                }
                self.count_written(&writes, &applied);
                Ok(())
            }
            Err(CoreError::Domain(_)) => {
                (self.report, self.pending_errors) = before;
                self.row_by_row(planned, chunk_end).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn write(
        &mut self,
        mutations: &[Mutation],
        progress: &JobProgress,
    ) -> Result<kontor_core::Applied, CoreError> {
        self.ctx
            .kontor
            .write_chunk(
                &self.ctx.actor,
                Origin::Import,
                self.batch,
                mutations,
                Chunk {
                    dry_run: self.spec.dry_run,
                    progress: (!self.spec.dry_run).then_some(progress),
                },
            )
            .await
    }

    /// Counts the rows a committed transaction wrote: an update that changed nothing was
    /// journaled as nothing.
    fn count_written(
        &mut self,
        writes: &[(u64, bool, Option<String>)],
        applied: &kontor_core::Applied,
    ) {
        let journaled: std::collections::HashSet<&str> = applied
            .entries
            .iter()
            .map(|e| e.record_id.as_str())
            .collect();
        for ((row, creates, key), rec) in writes.iter().zip(&applied.records) {
            let id = rec.as_ref().map(|r| r.id.clone());
            let outcome = match (creates, &id) {
                (true, _) => Outcome::Created,
                (false, Some(id)) if journaled.contains(id.as_str()) => Outcome::Updated,
                (false, _) => Outcome::Unchanged,
            };
            let id = if self.spec.dry_run && *creates {
                None
            } else {
                id
            };
            self.report.count(
                outcome,
                Sample {
                    row: *row,
                    id,
                    key: key.clone(),
                    column: None,
                    reason: None,
                },
            );
        }
    }

    /// A refused chunk again, one row per transaction, each with the checkpoint after it.
    async fn row_by_row(
        &mut self,
        planned: Vec<Planned>,
        chunk_end: u64,
    ) -> Result<(), ImportError> {
        let kontor = self.ctx.kontor.clone();
        let first_row_of_chunk = self.rows_done - planned.len() as u64;
        for (i, p) in planned.into_iter().enumerate() {
            let rows_done = first_row_of_chunk + i as u64 + 1;
            match p.plan {
                Plan::Settled {
                    outcome,
                    sample,
                    error,
                } => self.settle(outcome, sample, error),
                Plan::Write {
                    mutation,
                    creates,
                    key,
                } => {
                    let progress = self.progress_with(rows_done, &[(p.row, creates, key.clone())]);
                    match self.write(std::slice::from_ref(&mutation), &progress).await {
                        Ok(applied) => {
                            // Written with the row (a dry run writes them at the chunk's end).
                            if !self.spec.dry_run {
                                self.pending_errors.clear();
                            }
                            self.count_written(&[(p.row, creates, key)], &applied);
                        }
                        Err(CoreError::Domain(e)) => {
                            let field = e.field().map(base_field);
                            let index = field
                                .as_deref()
                                .and_then(|f| self.converter.mapping.column_of(f));
                            let column = index
                                .map(|c| self.column_header(c))
                                .or(field.clone())
                                .unwrap_or_default();
                            let value = index
                                .and_then(|c| p.cells.get(c).cloned())
                                .unwrap_or_default();
                            let reason = e.to_string();
                            self.settle(
                                Outcome::Failed,
                                Sample {
                                    row: p.row,
                                    id: None,
                                    key: key.clone(),
                                    column: Some(column.clone()),
                                    reason: Some(reason.clone()),
                                },
                                Some(ImportErrorRow {
                                    row: p.row,
                                    column,
                                    value,
                                    reason,
                                }),
                            );
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        let progress = self.progress(chunk_end);
        if !progress.errors.is_empty() || progress.checkpoint.is_some() {
            kontor.store.save_progress(&progress).await?;
        }
        Ok(())
    }

    /// Records the end: the checkpoint says the file is through, so the import is not run
    /// again.
    async fn finish(&mut self) -> Result<(), ImportError> {
        let progress = JobProgress {
            job_id: self.ctx.job_id.clone(),
            checkpoint: self.checkpoint(self.rows_done, true),
            errors: std::mem::take(&mut self.pending_errors),
        };
        self.ctx.kontor.store.save_progress(&progress).await?;
        Ok(())
    }
}

/// The key kind lookups compare a key's values by.
fn kind_of(key: &Key) -> Option<KeyKind> {
    match key {
        Key::Field { kind, .. } => Some(*kind),
        _ => None,
    }
}

/// The field a path names: `addresses` for `addresses[0].text`.
fn base_field(path: &str) -> String {
    path.split(['[', '.']).next().unwrap_or(path).to_string()
}

/// The modes an import takes, as the API and CLI spell them.
pub const MODES: [&str; 4] = IMPORT_MODES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_phones_compare_in_one_form() {
        assert_eq!(
            compared(Some(KeyKind::Number), &Value::from("1500.50")),
            Some("1500.5".into())
        );
        assert_eq!(
            compared(Some(KeyKind::Number), &Value::from("1500.00")),
            Some("1500".into())
        );
        assert_eq!(
            compared(Some(KeyKind::Phone), &Value::from("+7 (900) 123-45-67")),
            Some("9001234567".into())
        );
        assert_eq!(base_field("addresses[0].text"), "addresses");
        assert_eq!(delimiter_byte("tab").ok(), Some(b'\t'));
        assert_eq!(delimiter_byte(";").ok(), Some(b';'));
        assert!(delimiter_byte("ab").is_err());
        assert!(delimiter_byte("a").is_err());
    }
}
