//! Exporting a list: any entity's records as the list API selects them (filters, `q`, sort),
//! as CSV, XLSX or JSON Lines, read a page at a time under the reader's permissions, so a
//! hidden field is never written and a manager exports only what they may read. Columns are
//! `id`, the fields the reader sees (in the schema's order), `owner_id`, `created_at` and
//! `updated_at`, headed by their names, so an export imported again (`--match id --mode
//! update`) maps itself and changes nothing.

use crate::cell::cell_text;
use kontor_core::list::ListParams;
use kontor_core::progress::Progress;
use kontor_core::{CoreError, Kontor};
use kontor_domain::permission::Actor;
use kontor_domain::schema::Schema;
use kontor_domain::Entity;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;

/// Records read per page.
const PAGE: u32 = kontor_core::read::MAX_PAGE;

/// The file formats an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// UTF-8 with a BOM (so spreadsheet programs take it as UTF-8), comma-separated unless
    /// told otherwise, quoted where needed.
    Csv,
    /// A workbook of one sheet, written in constant memory.
    Xlsx,
    /// One JSON object per line, exactly as the API answers (money as strings).
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        Some(match s {
            "csv" => ExportFormat::Csv,
            "xlsx" => ExportFormat::Xlsx,
            "jsonl" | "ndjson" => ExportFormat::Jsonl,
            _ => return None,
        })
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write the workbook: {0}")]
    Xlsx(String),
}

/// The columns of an export for `actor`: names and, for fields, their schema definitions.
fn columns(
    schema: &Schema,
    actor: &Actor,
) -> Vec<(String, Option<kontor_domain::schema::FieldDef>)> {
    let visible = actor.visible_schema(schema);
    let mut out = vec![("id".to_string(), None)];
    out.extend(
        visible
            .fields
            .iter()
            .map(|f| (f.name.clone(), Some(f.clone()))),
    );
    for system in ["owner_id", "created_at", "updated_at"] {
        out.push((system.to_string(), None));
    }
    out
}

/// A record as the list answered it, one cell per column.
fn cells(
    item: &Value,
    columns: &[(String, Option<kontor_domain::schema::FieldDef>)],
) -> Vec<String> {
    columns
        .iter()
        .map(|(name, def)| {
            let v = item.get(name).unwrap_or(&Value::Null);
            match def {
                Some(def) => cell_text(&def.ty, v),
                None => match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                },
            }
        })
        .collect()
}

/// How an export is written.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub entity: Entity,
    pub format: ExportFormat,
    /// Filters, `q`, sort and order as the list API takes them (limit and cursor are ignored).
    pub list: ListParams,
    /// CSV only; default `,`.
    pub delimiter: Option<u8>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    pub rows: u64,
}

type Columns = Vec<(String, Option<kontor_domain::schema::FieldDef>)>;

/// An export read a page at a time: records as the list API presents them to the reader.
pub struct Exporter {
    kontor: Arc<Kontor>,
    actor: Actor,
    spec: ExportSpec,
    columns: Columns,
    params: ListParams,
    started: bool,
    finished: bool,
    /// Records read so far.
    pub rows: u64,
}

impl Exporter {
    /// Checks the list parameters (by reading the first page later: a bad filter is refused
    /// before anything is written).
    pub async fn new(
        kontor: Arc<Kontor>,
        actor: Actor,
        spec: ExportSpec,
    ) -> Result<Exporter, ExportError> {
        let schema = kontor.schema(spec.entity).await?;
        let columns = columns(&schema, &actor);
        let mut params = spec.list.clone();
        params.limit = Some(PAGE);
        params.count = false;
        params.cursor = None;
        Ok(Exporter {
            kontor,
            actor,
            spec,
            columns,
            params,
            started: false,
            finished: false,
            rows: 0,
        })
    }

    pub fn format(&self) -> ExportFormat {
        self.spec.format
    }

    /// The next page of records, `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>, ExportError> {
        if self.finished {
            return Ok(None);
        }
        let page = self
            .kontor
            .list(&self.actor, self.spec.entity, &self.params)
            .await?;
        self.started = true;
        match page.next_cursor {
            Some(c) => self.params.cursor = Some(c),
            None => self.finished = true,
        }
        self.rows += page.items.len() as u64;
        Ok(Some(page.items))
    }

    /// The next bytes of a CSV or JSON Lines export (the first ones hold the header), `None`
    /// at the end. XLSX is not written this way (see [`export`]).
    pub async fn next_bytes(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        let first = !self.started;
        let Some(items) = self.next_page().await? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        match self.spec.format {
            ExportFormat::Csv => {
                if first {
                    buf.extend_from_slice("\u{feff}".as_bytes());
                }
                let mut w = csv::WriterBuilder::new()
                    .delimiter(self.spec.delimiter.unwrap_or(b','))
                    .from_writer(&mut buf);
                if first {
                    let headers: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
                    w.write_record(&headers).map_err(csv_err)?;
                }
                for item in &items {
                    w.write_record(cells(item, &self.columns))
                        .map_err(csv_err)?;
                }
                w.flush()?;
            }
            ExportFormat::Jsonl | ExportFormat::Xlsx => {
                for item in &items {
                    serde_json::to_writer(&mut buf, item).map_err(std::io::Error::from)?;
                    buf.push(b'\n');
                }
            }
        }
        Ok(Some(buf))
    }
}

/// Writes the whole export to `out` (an XLSX workbook is assembled in a temporary file first).
/// Progress counts rows.
pub async fn export(
    kontor: Arc<Kontor>,
    actor: Actor,
    spec: ExportSpec,
    out: &mut (dyn Write + Send),
    progress: &dyn Progress,
) -> Result<Exported, ExportError> {
    let mut exporter = Exporter::new(kontor, actor, spec).await?;
    progress.phase("export", None);
    if exporter.format() != ExportFormat::Xlsx {
        while let Some(bytes) = exporter.next_bytes().await? {
            out.write_all(&bytes)?;
            progress.advance(1);
        }
        out.flush()?;
        progress.done();
        return Ok(Exported {
            rows: exporter.rows,
        });
    }
    let columns = exporter.columns.clone();
    let mut sink = Sink::new(&exporter.spec, out, &columns)?;
    while let Some(items) = exporter.next_page().await? {
        for item in &items {
            sink.row(item, &columns)?;
        }
        progress.advance(items.len() as u64);
    }
    sink.finish()?;
    progress.done();
    Ok(Exported {
        rows: exporter.rows,
    })
}

/// An XLSX workbook being written: one sheet in constant memory, rows in order.
struct Sink<'a> {
    workbook: Box<rust_xlsxwriter::Workbook>,
    row: u32,
    out: &'a mut (dyn Write + Send),
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> ExportError {
    ExportError::Xlsx(e.to_string())
}

impl<'a> Sink<'a> {
    fn new(
        spec: &ExportSpec,
        out: &'a mut (dyn Write + Send),
        columns: &[(String, Option<kontor_domain::schema::FieldDef>)],
    ) -> Result<Sink<'a>, ExportError> {
        let mut workbook = Box::new(rust_xlsxwriter::Workbook::new());
        let sheet = workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_err)?;
        sheet.set_name(spec.entity.as_str()).map_err(xlsx_err)?;
        for (i, (h, _)) in columns.iter().enumerate() {
            sheet.write_string(0, col(i)?, h).map_err(xlsx_err)?;
        }
        Ok(Sink {
            workbook,
            row: 1,
            out,
        })
    }

    fn row(
        &mut self,
        item: &Value,
        columns: &[(String, Option<kontor_domain::schema::FieldDef>)],
    ) -> Result<(), ExportError> {
        let sheet = self.workbook.worksheet_from_index(0).map_err(xlsx_err)?;
        for (i, text) in cells(item, columns).iter().enumerate() {
            if !text.is_empty() {
                sheet
                    .write_string(self.row, col(i)?, text)
                    .map_err(xlsx_err)?;
            }
        }
        self.row = self
            .row
            .checked_add(1)
            .ok_or_else(|| ExportError::Xlsx("more rows than a worksheet holds".into()))?;
        Ok(())
    }

    fn finish(mut self) -> Result<(), ExportError> {
        // The workbook is a zip assembled on disk (its sheet was kept there row by row), then
        // copied out.
        let file = tempfile::NamedTempFile::new()?;
        self.workbook.save(file.path()).map_err(xlsx_err)?;
        let mut f = std::fs::File::open(file.path())?;
        std::io::copy(&mut f, self.out)?;
        self.out.flush()?;
        Ok(())
    }
}

fn col(i: usize) -> Result<u16, ExportError> {
    u16::try_from(i).map_err(|_| ExportError::Xlsx("more columns than a worksheet holds".into()))
}

fn csv_err(e: csv::Error) -> ExportError {
    ExportError::Io(std::io::Error::other(e.to_string()))
}
