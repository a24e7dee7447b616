//! The exchange through files: 1C's exchange folder (or files given on the command line) read
//! in the order 1C writes them, catalog and sale files told apart by what they hold, all in one
//! run and one journal batch; invoices written out as a file for 1C; each run recorded as a job
//! (`exchange.folder`) so it is listed with the HTTP runs.

use crate::catalog::{CatalogImport, ImportError, Options};
use crate::report::RunReport;
use crate::sale::{self, SaleImport};
use kontor_commerceml as cml;
use kontor_core::{CoreError, Kontor};
use kontor_domain::record::Record;
use kontor_domain::{time, Actor};
use kontor_store::JobRow;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The XML files under `paths`, in the order 1C writes them: the classifier and properties
/// before goods, goods before offers, offers before prices and stock, documents last.
pub fn exchange_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files)?;
    }
    files.sort_by_key(|f| {
        (
            name_rank(f),
            folder_rank(f),
            f.components().count(),
            f.clone(),
        )
    });
    files.dedup();
    Ok(files)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.is_file() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))?;
    for entry in entries {
        let p = entry
            .map_err(|e| format!("cannot list {}: {e}", path.display()))?
            .path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
            out.push(p);
        }
    }
    Ok(())
}

/// import < offers < prices < rests < anything else, by the file name's start.
fn name_rank(path: &Path) -> u8 {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    ["import", "offers", "prices", "rests"]
        .iter()
        .position(|p| name.starts_with(p))
        .map_or(4, |i| i as u8)
}

/// Properties and references before goods (and, within a rank, shallower files first: a
/// packet's top-level classifier before its goods).
fn folder_rank(path: &Path) -> u8 {
    let text = path.to_string_lossy().to_lowercase();
    if text.contains("propert") || text.contains("reference") {
        0
    } else {
        1
    }
}

/// What a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A classifier, catalog or offer package.
    Catalog,
    /// Documents (orders, payments) or counterparties.
    Sale,
}

/// Tells a sale file from a catalog file by its first 64 KiB (either encoding 1C writes).
pub fn kind_of(path: &Path) -> std::io::Result<FileKind> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(64 * 1024)
        .read_to_end(&mut head)?;
    let utf8 = String::from_utf8_lossy(&head);
    let cp1251 = encoding_rs::WINDOWS_1251.decode(&head).0;
    let holds = |tag: &str| {
        [utf8.as_ref(), cp1251.as_ref()]
            .iter()
            .any(|t| t.contains(&format!("<{tag}")) || t.contains(&format!(":{tag}")))
    };
    let catalog = holds("Каталог") || holds("ПакетПредложений") || holds("Классификатор");
    Ok(if !catalog && (holds("Документ") || holds("Контрагенты")) {
        FileKind::Sale
    } else {
        FileKind::Catalog
    })
}

/// Imports `files` as one run: catalog files through a [`CatalogImport`], documents and
/// counterparties through a [`SaleImport`] in the same batch. `progress` gets the file and
/// the bytes of it read so far.
pub async fn import_files(
    kontor: Arc<Kontor>,
    actor: Actor,
    options: Options,
    files: &[PathBuf],
    progress: &mut (dyn FnMut(&Path, u64) + Send),
) -> Result<RunReport, ImportError> {
    let prefix = options.id_prefix.clone();
    let mut catalog = CatalogImport::new(kontor.clone(), actor.clone(), options).await?;
    let mut sale: Option<SaleImport> = None;
    for file in files {
        let name = file.display().to_string();
        let open_error = |e: std::io::Error| ImportError::File {
            file: name.clone(),
            message: format!("cannot read it: {e}"),
        };
        let kind = kind_of(file).map_err(open_error)?;
        let input = std::io::BufReader::with_capacity(
            256 * 1024,
            std::fs::File::open(file).map_err(open_error)?,
        );
        let mut read = |n: u64| progress(file, n);
        match kind {
            FileKind::Catalog => catalog.import_file(&name, input, &mut read).await?,
            FileKind::Sale => {
                let run = sale.get_or_insert_with(|| {
                    SaleImport::in_batch(kontor.clone(), actor.clone(), catalog.batch())
                        .with_prefix(&prefix)
                });
                run.import_file(&name, input, &mut read).await?
            }
        }
    }
    let mut report = catalog.finish().await?;
    if let Some(s) = sale {
        report.absorb(s.finish());
    }
    Ok(report)
}

/// Writes the invoices 1C has not confirmed yet to a new file in `dir` (its name says when)
/// and moves the position: in a folder exchange, a file written whole is a file delivered.
/// `None` when there is nothing to send.
pub async fn export_invoices(
    kontor: &Kontor,
    user: &Record,
    dir: &Path,
) -> Result<Option<(PathBuf, usize)>, String> {
    let database = sale::onec_database(kontor, user)
        .await
        .map_err(|e| e.to_string())?;
    let out = sale::invoices_for_1c(kontor, &database, sale::sent_seq(&database))
        .await
        .map_err(|e| e.to_string())?;
    if out.documents.is_empty() {
        return Ok(None);
    }
    let utf8 = database
        .data
        .get("invoice_encoding")
        .and_then(Value::as_str)
        == Some("utf-8");
    let options = cml::WriteOptions {
        encoding: if utf8 {
            cml::OutputEncoding::Utf8Bom
        } else {
            cml::OutputEncoding::Windows1251
        },
        ..cml::WriteOptions::default()
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let name = format!(
        "orders-{}-{}.xml",
        time::now().format("%Y%m%dT%H%M%S"),
        out.head
    );
    let path = dir.join(&name);
    let temp = dir.join(format!(".{name}.part"));
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        let mut buf = Vec::new();
        cml::write_documents(&mut buf, &out.documents, &options)?;
        file.write_all(&buf)?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    sale::confirm_sent(kontor, &database.id, out.head)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some((path, out.documents.len())))
}

/// Records a finished run as a job row, so the runs API lists it beside the HTTP runs.
pub async fn record_run(
    kontor: &Kontor,
    kind: &str,
    by: &str,
    node: &str,
    started: time::Timestamp,
    outcome: &Result<RunReport, String>,
) -> Result<String, CoreError> {
    let id = kontor_domain::record::new_id();
    let (state, result, error) = match outcome {
        Ok(report) => (
            "succeeded",
            serde_json::to_string(report).ok(),
            None::<String>,
        ),
        Err(e) => ("failed", None, Some(e.clone())),
    };
    kontor
        .store
        .put_job(&JobRow {
            id: id.clone(),
            kind: kind.to_string(),
            subject: None,
            state: state.into(),
            created_by: by.to_string(),
            node: node.to_string(),
            created_at: started,
            updated_at: time::now(),
            phase: None,
            done: 0,
            total: None,
            result,
            error,
        })
        .await?;
    Ok(id)
}
