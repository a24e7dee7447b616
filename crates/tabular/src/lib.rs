//! Records in and out as tables. Import reads a CSV file (any delimiter; UTF-8, UTF-8 with a
//! BOM, UTF-16 or windows-1251, detected) or an XLSX workbook a row at a time, maps its
//! columns to an entity's fields, matches rows with the records they update, and writes them
//! through the one write path in chunks under one journal batch (origin `import`), so a whole
//! import is undone as one; a dry run goes the same way and rolls every chunk back. Export
//! writes any list as CSV, XLSX or JSON Lines, a page at a time, as the reader may see it.
//!
//! - `source` — opening a file: format, encoding and delimiter sniffed, rows streamed.
//! - `cell` — a cell's text as the value a field takes (and back, for export).
//! - `mapping` — which column goes to which field; the keys records are found by.
//! - `import` — the run: chunks, matching, duplicates, dry run, checkpoints and resume.
//! - `report` — what an import did, row outcomes counted and sampled.
//! - `export` — a list written out as CSV, XLSX or JSON Lines.

pub mod cell;
pub mod export;
pub mod import;
pub mod mapping;
pub mod report;
pub mod source;
