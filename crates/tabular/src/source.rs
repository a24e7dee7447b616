//! Opening a table file and streaming its rows. [`Table::open`] tells CSV from XLSX by content
//! (never by the file's name), detects a CSV file's encoding and delimiter, refuses hostile
//! archives before any XLSX part is parsed, and reads the header row; [`Table::next_row`] then
//! yields one row at a time with the row number a spreadsheet program shows, so a file of
//! millions of rows is read with flat memory.
//!
//! CSV text is decoded on the fly ([`encoding_rs`]) and parsed by the `csv` crate; an XLSX sheet
//! is read cell by cell by `calamine` on a thread of its own, which hands whole rows over a
//! short bounded channel (the workbook borrows itself while it streams, so it lives there).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Cursor, Read, Seek};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;

use encoding_rs::{CoderResult, Decoder, Encoding};

use crate::cell::column_letters;

/// Most columns a row may have.
pub const MAX_COLUMNS: usize = 4096;
/// Most characters in one cell.
pub const MAX_CELL_CHARS: usize = 1_048_576;
/// Most characters in one header cell (after trimming).
pub const MAX_HEADER_CHARS: usize = 200;
/// Most bytes of (UTF-8) text in one CSV record; past it the record is refused before it is
/// held whole, which keeps memory flat when a quote is left open.
pub const MAX_ROW_BYTES: u64 = 64 << 20;
/// An XLSX part may unpack to at most this many bytes.
pub const XLSX_PART_MAX: u64 = 1 << 30;
/// The shared strings of a workbook (which `calamine` loads whole) may unpack to at most this.
pub const XLSX_SHARED_STRINGS_MAX: u64 = 256 << 20;
/// All parts of a workbook together may unpack to at most this.
pub const XLSX_TOTAL_MAX: u64 = 4 << 30;
/// A part of more than [`XLSX_RATIO_FROM`] bytes may be compressed at most this many to one.
pub const XLSX_RATIO_MAX: u64 = 200;
/// Parts of at most this many bytes are not held to [`XLSX_RATIO_MAX`].
pub const XLSX_RATIO_FROM: u64 = 1 << 20;

/// Bytes of the file looked at to tell its format and encoding.
const SNIFF_BYTES: usize = 64 * 1024;
/// Records of decoded text looked at to choose a delimiter (and most bytes read for them).
const SNIFF_RECORDS: usize = 50;
const SNIFF_TEXT_MAX: usize = 1 << 20;
/// Delimiter candidates, in the order ties are broken (Russian Excel writes `;`).
const DELIMITERS: [u8; 4] = [b';', b',', b'\t', b'|'];
/// Rows the XLSX reader thread may read ahead.
const XLSX_ROWS_AHEAD: usize = 64;

/// The kind of file a table comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// `"csv"` or `"xlsx"`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
        }
    }
}

/// A delimiter as a user writes it (`--delimiter`, a template, the API): one punctuation
/// character, or `tab` (`\t`). `None` for anything else.
pub fn parse_delimiter(d: &str) -> Option<u8> {
    match d {
        "tab" | "\\t" | "\t" => Some(b'\t'),
        _ if d.len() == 1 && d.is_ascii() && !d.bytes().any(|b| b.is_ascii_alphanumeric()) => {
            Some(d.as_bytes()[0])
        }
        _ => None,
    }
}

/// What the caller knows better than detection. Each `None` is detected.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// CSV only: the delimiter byte (ASCII, not a quote or a line break).
    pub delimiter: Option<u8>,
    /// CSV only: any label [`Encoding::for_label`] knows (`utf-8`, `cp1251`, `utf-16le`, …).
    pub encoding: Option<String>,
    /// XLSX only: the sheet to read (exact name, else case-insensitive); default the first
    /// visible worksheet.
    pub sheet: Option<String>,
}

/// What was detected (or given) and used.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Described {
    /// `"csv"` or `"xlsx"`.
    pub format: &'static str,
    /// CSV: `"utf-8"`, `"utf-8 (BOM)"`, `"utf-16le"`, `"utf-16be"`, `"windows-1251"`, or the
    /// given encoding's name in lower case.
    pub encoding: Option<String>,
    /// CSV: `","`, `";"`, `"\t"`, `"|"` or the given delimiter.
    pub delimiter: Option<String>,
    /// XLSX: the sheet read.
    pub sheet: Option<String>,
}

/// One row of a table: the number a spreadsheet program shows for it and its cells as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub number: u64,
    pub cells: Vec<String>,
}

/// Why a file cannot be read as a table; every message says what and where.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("not a CSV or XLSX file: {0}")]
    NotTable(String),
    #[error("a zip archive that is not an XLSX workbook (it has no xl/workbook.xml)")]
    NotWorkbook,
    #[error("damaged XLSX file: {0}")]
    DamagedXlsx(String),
    /// An archive built to exhaust memory or disk (or one too large to be read safely).
    #[error("refused XLSX file: {0}")]
    HostileXlsx(String),
    #[error("the workbook has no sheet '{name}' (sheets: {})", .sheets.join(", "))]
    NoSuchSheet { name: String, sheets: Vec<String> },
    #[error("the workbook has no worksheets")]
    NoSheets,
    #[error("unknown encoding '{0}' (use a name like utf-8, windows-1251, utf-16le or koi8-r)")]
    UnknownEncoding(String),
    #[error("the delimiter must be one ASCII character other than a double quote or a line break, not {0:?}")]
    BadDelimiter(char),
    /// `what` is "the file" or "the sheet 'X'".
    #[error("{what} has no rows (a header row is needed)")]
    Empty { what: String },
    #[error("row {row}, column {column}: {message}")]
    Cell {
        row: u64,
        column: String,
        message: String,
    },
    #[error("row {row}: {message}")]
    Row { row: u64, message: String },
}

impl SourceError {
    /// The row the error is about, when it is about one.
    pub fn row(&self) -> Option<u64> {
        match self {
            SourceError::Cell { row, .. } | SourceError::Row { row, .. } => Some(*row),
            _ => None,
        }
    }
}

/// A table being read: its header row, then its rows one at a time.
pub struct Table {
    format: Format,
    described: Described,
    headers: Vec<String>,
    header_row: u64,
    source: Source,
    /// An error ends the table: later calls of [`Table::next_row`] give `None`.
    ended: bool,
}

enum Source {
    Csv(Box<CsvSource>),
    Xlsx(XlsxSource),
}

impl Table {
    /// Opens `path`, detects what `opts` leaves open, and reads the header row (the first row
    /// that is not empty).
    pub fn open(path: &Path, opts: &ReadOptions) -> Result<Table, SourceError> {
        let io_err = |source: io::Error| SourceError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = File::open(path).map_err(io_err)?;
        let size = file.metadata().map_err(io_err)?.len();
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        (&mut file)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(io_err)?;
        let (format, source, described) = match sniff_format(&head)? {
            Format::Xlsx => {
                file.rewind().map_err(io_err)?;
                let (source, sheet) = XlsxSource::open(path, file, opts)?;
                let described = Described {
                    format: "xlsx",
                    encoding: None,
                    delimiter: None,
                    sheet: Some(sheet),
                };
                (Format::Xlsx, Source::Xlsx(source), described)
            }
            Format::Csv => {
                let (source, described) = CsvSource::open(path, file, head, size, opts)?;
                (Format::Csv, Source::Csv(Box::new(source)), described)
            }
        };
        let mut table = Table {
            format,
            described,
            headers: Vec::new(),
            header_row: 0,
            source,
            ended: false,
        };
        let Some(header) = table.next_filled()? else {
            return Err(SourceError::Empty {
                what: match &table.described.sheet {
                    Some(sheet) => format!("the sheet '{sheet}'"),
                    None => "the file".into(),
                },
            });
        };
        let mut headers: Vec<String> = header.cells.iter().map(|c| c.trim().to_string()).collect();
        for (i, h) in headers.iter().enumerate() {
            let n = h.chars().count();
            if n > MAX_HEADER_CHARS {
                return Err(SourceError::Cell {
                    row: header.number,
                    column: column_letters(i),
                    message: format!(
                        "a header of {} characters (at most {MAX_HEADER_CHARS})",
                        thousands(n as u64)
                    ),
                });
            }
        }
        while headers.last().is_some_and(String::is_empty) {
            headers.pop();
        }
        table.headers = headers;
        table.header_row = header.number;
        Ok(table)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn described(&self) -> &Described {
        &self.described
    }

    /// The header row's cells, trimmed (the first row that is not empty); empty header cells
    /// at the end are dropped.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The number of the header row (1 unless empty rows come first).
    pub fn header_row(&self) -> u64 {
        self.header_row
    }

    /// The next row that is not entirely empty (every cell blank), or `None` at the end. A row
    /// shorter than the header is padded with empty cells; a longer one keeps its extra cells
    /// up to the last that is not blank. An error ends the table.
    pub fn next_row(&mut self) -> Result<Option<Row>, SourceError> {
        let Some(mut row) = self.next_filled()? else {
            return Ok(None);
        };
        let width = self.headers.len();
        if row.cells.len() < width {
            row.cells.resize(width, String::new());
        }
        while row.cells.len() > width && row.cells.last().is_some_and(|c| c.trim().is_empty()) {
            row.cells.pop();
        }
        Ok(Some(row))
    }

    /// (done, total) for progress. CSV: bytes of the file read so far and its size. XLSX: the
    /// number of the last row read and the sheet's declared last row (its `dimension`; the
    /// larger of the two when the declaration is missing or wrong); both become the total at
    /// the end.
    pub fn progress(&self) -> (u64, u64) {
        match &self.source {
            Source::Csv(csv) => csv.progress(),
            Source::Xlsx(x) => x.progress(),
        }
    }

    /// The next row with a cell that is not blank, checked against the limits.
    fn next_filled(&mut self) -> Result<Option<Row>, SourceError> {
        if self.ended {
            return Ok(None);
        }
        let result = loop {
            let next = match &mut self.source {
                Source::Csv(csv) => csv.next_raw(),
                Source::Xlsx(x) => x.next_raw(),
            };
            match next {
                Ok(Some(row)) if row.cells.iter().all(|c| c.trim().is_empty()) => continue,
                Ok(Some(row)) => break check_limits(&row).map(|()| Some(row)),
                other => break other,
            }
        };
        if !matches!(result, Ok(Some(_))) {
            self.ended = true;
        }
        result
    }
}

fn check_limits(row: &Row) -> Result<(), SourceError> {
    if row.cells.len() > MAX_COLUMNS {
        return Err(too_many_columns(row.number));
    }
    for (i, cell) in row.cells.iter().enumerate() {
        if cell.len() > MAX_CELL_CHARS {
            let n = cell.chars().count();
            if n > MAX_CELL_CHARS {
                return Err(SourceError::Cell {
                    row: row.number,
                    column: column_letters(i),
                    message: format!(
                        "a cell of {} characters (at most {})",
                        thousands(n as u64),
                        thousands(MAX_CELL_CHARS as u64)
                    ),
                });
            }
        }
    }
    Ok(())
}

fn too_many_columns(row: u64) -> SourceError {
    SourceError::Cell {
        row,
        column: format!(
            "{} ({})",
            column_letters(MAX_COLUMNS),
            thousands(MAX_COLUMNS as u64 + 1)
        ),
        message: format!("more than {} columns", thousands(MAX_COLUMNS as u64)),
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// XLSX for a zip archive, CSV for text; files of other kinds we can name are refused.
fn sniff_format(head: &[u8]) -> Result<Format, SourceError> {
    let refuse = |what: &str| Err(SourceError::NotTable(what.to_string()));
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Format::Xlsx);
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return refuse(
            "an Excel 97-2003 workbook (.xls) or a password-protected workbook; save it as .xlsx without a password, or as CSV",
        );
    }
    let signatures: [(&[u8], &str); 8] = [
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"%PDF-", "a PDF document"),
        (b"\x1F\x8B", "a gzip archive"),
        (b"Rar!", "a RAR archive"),
        (b"7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
        (b"{\\rtf", "an RTF document"),
    ];
    for (magic, what) in signatures {
        if head.starts_with(magic) {
            return refuse(what);
        }
    }
    Ok(Format::Csv)
}

// ---------------------------------------------------------------------------------------
// CSV

struct CsvSource {
    reader: csv::Reader<Scanner<Box<dyn Read + Send>>>,
    record: csv::StringRecord,
    path: String,
    consumed: Arc<AtomicU64>,
    size: u64,
}

impl CsvSource {
    fn open(
        path: &Path,
        file: File,
        head: Vec<u8>,
        size: u64,
        opts: &ReadOptions,
    ) -> Result<(CsvSource, Described), SourceError> {
        let path_text = path.display().to_string();
        let truncated = (head.len() as u64) < size;
        let detected = detect_encoding(&head, truncated, opts.encoding.as_deref())?;
        let consumed = Arc::new(AtomicU64::new(detected.skip as u64));
        let raw = Cursor::new(head).chain(file);
        let mut raw = raw;
        // Drop the byte order mark, counted as read.
        io::copy(&mut (&mut raw).take(detected.skip as u64), &mut io::sink()).map_err(|e| {
            SourceError::Io {
                path: path_text.clone(),
                source: e,
            }
        })?;
        let mut decoding = Decoding::new(raw, detected.decoder, consumed.clone());

        let (delimiter, sample) = match opts.delimiter {
            Some(d) => {
                if !d.is_ascii() || matches!(d, b'"' | b'\n' | b'\r') {
                    return Err(SourceError::BadDelimiter(char::from(d)));
                }
                (d, Vec::new())
            }
            None => {
                let (sample, complete) =
                    read_sample(&mut decoding).map_err(|e| SourceError::Io {
                        path: path_text.clone(),
                        source: e,
                    })?;
                (sniff_delimiter(&sample, complete), sample)
            }
        };
        let stream: Box<dyn Read + Send> = Box::new(Cursor::new(sample).chain(decoding));
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .quote(b'"')
            .double_quote(true)
            .from_reader(Scanner::new(stream, delimiter));
        let described = Described {
            format: "csv",
            encoding: Some(detected.label),
            delimiter: Some(char::from(delimiter).to_string()),
            sheet: None,
        };
        let source = CsvSource {
            reader,
            record: csv::StringRecord::new(),
            path: path_text,
            consumed,
            size,
        };
        Ok((source, described))
    }

    fn next_raw(&mut self) -> Result<Option<Row>, SourceError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let scanner = self.reader.get_mut();
                let number = scanner.starts.pop_front().unwrap_or(scanner.row);
                Ok(Some(Row {
                    number,
                    cells: self.record.iter().map(str::to_owned).collect(),
                }))
            }
            Err(e) => Err(self.csv_error(e)),
        }
    }

    fn csv_error(&self, e: csv::Error) -> SourceError {
        let row = self.reader.get_ref().row;
        if !matches!(e.kind(), csv::ErrorKind::Io(_)) {
            return SourceError::Row {
                row,
                message: format!("cannot be read as CSV ({e})"),
            };
        }
        match e.into_kind() {
            csv::ErrorKind::Io(io) => {
                match io.get_ref().and_then(|i| i.downcast_ref::<RowTooLong>()) {
                    Some(RowTooLong(row)) => SourceError::Row {
                        row: *row,
                        message: format!(
                            "a row of more than {} MiB of text (is a quote left open in it?)",
                            MAX_ROW_BYTES >> 20
                        ),
                    },
                    None => SourceError::Io {
                        path: self.path.clone(),
                        source: io,
                    },
                }
            }
            other => SourceError::Row {
                row,
                message: format!("cannot be read as CSV ({other:?})"),
            },
        }
    }

    fn progress(&self) -> (u64, u64) {
        let done = self.consumed.load(Ordering::Relaxed).min(self.size);
        (done, self.size)
    }
}

/// The encoding chosen for a CSV file: its decoder, the BOM bytes to skip, and its name as
/// [`Described::encoding`] shows it.
struct DetectedEncoding {
    decoder: Decoder,
    skip: usize,
    label: String,
}

/// A BOM; else UTF-16 told by its zero bytes; else UTF-8 if the prefix is valid UTF-8 (a
/// character cut at the prefix's end does not count); else windows-1251. A given label wins.
fn detect_encoding(
    head: &[u8],
    truncated: bool,
    label: Option<&str>,
) -> Result<DetectedEncoding, SourceError> {
    if let Some(label) = label {
        let enc = Encoding::for_label(label.trim().as_bytes())
            .filter(|e| *e != encoding_rs::REPLACEMENT)
            .ok_or_else(|| SourceError::UnknownEncoding(label.to_string()))?;
        let skip = match Encoding::for_bom(head) {
            Some((bom_enc, len)) if bom_enc == enc => len,
            _ => 0,
        };
        let mut name = enc.name().to_ascii_lowercase();
        if skip > 0 && enc == encoding_rs::UTF_8 {
            name.push_str(" (BOM)");
        }
        return Ok(DetectedEncoding {
            decoder: enc.new_decoder_without_bom_handling(),
            skip,
            label: name,
        });
    }
    let found = |enc: &'static Encoding, skip: usize, label: &str| DetectedEncoding {
        decoder: enc.new_decoder_without_bom_handling(),
        skip,
        label: label.to_string(),
    };
    if let Some((enc, len)) = Encoding::for_bom(head) {
        let label = if enc == encoding_rs::UTF_8 {
            "utf-8 (BOM)"
        } else if enc == encoding_rs::UTF_16LE {
            "utf-16le"
        } else {
            "utf-16be"
        };
        return Ok(found(enc, len, label));
    }
    if let Some(enc) = utf16_without_bom(head) {
        let label = if enc == encoding_rs::UTF_16LE {
            "utf-16le"
        } else {
            "utf-16be"
        };
        return Ok(found(enc, 0, label));
    }
    if let Some(why) = binary(head) {
        return Err(SourceError::NotTable(why.into()));
    }
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => truncated && e.error_len().is_none(),
    };
    Ok(if utf8 {
        found(encoding_rs::UTF_8, 0, "utf-8")
    } else {
        found(encoding_rs::WINDOWS_1251, 0, "windows-1251")
    })
}

/// UTF-16 without a BOM: text whose Latin letters, digits and punctuation leave a zero byte
/// in every other position.
fn utf16_without_bom(head: &[u8]) -> Option<&'static Encoding> {
    let pairs = head.len() / 2;
    if pairs < 2 {
        return None;
    }
    let zeros_at = |first: usize| {
        head[..pairs * 2]
            .iter()
            .skip(first)
            .step_by(2)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (zeros_at(0), zeros_at(1));
    if odd * 4 >= pairs && even * 20 <= odd {
        Some(encoding_rs::UTF_16LE)
    } else if even * 4 >= pairs && odd * 20 <= even {
        Some(encoding_rs::UTF_16BE)
    } else {
        None
    }
}

/// Why the prefix is not text: NUL bytes, or (in more than a few hundred bytes) a tenth of
/// control characters other than tab, line breaks, form feed and DOS's end-of-file mark.
fn binary(head: &[u8]) -> Option<&'static str> {
    if head.contains(&0) {
        return Some("the file holds binary data (NUL bytes), not text");
    }
    let controls = head
        .iter()
        .filter(|b| **b < 0x20 && !matches!(**b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A))
        .count();
    if head.len() >= 256 && controls * 10 > head.len() {
        return Some("the file holds binary data, not text");
    }
    None
}

/// Decoded text from the start of the file for sniffing: about [`SNIFF_RECORDS`] lines, and
/// whether it is the whole file.
fn read_sample(r: &mut impl Read) -> io::Result<(Vec<u8>, bool)> {
    let mut sample = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((sample, true));
        }
        lines += chunk[..n].iter().filter(|b| **b == b'\n').count();
        sample.extend_from_slice(&chunk[..n]);
        if lines > SNIFF_RECORDS || sample.len() >= SNIFF_TEXT_MAX {
            return Ok((sample, false));
        }
    }
}

/// The candidate that occurs the same non-zero number of times in most records of the sample
/// (outside double quotes); ties go to the earlier in [`DELIMITERS`]; `,` when none occurs.
fn sniff_delimiter(sample: &[u8], complete: bool) -> u8 {
    let mut records: Vec<[usize; 4]> = Vec::new();
    let mut current = [0usize; 4];
    let mut filled = false;
    let mut quoted = false;
    for &b in sample {
        match b {
            b'"' => {
                quoted = !quoted;
                filled = true;
            }
            _ if quoted => {}
            b'\n' | b'\r' => {
                if filled {
                    records.push(current);
                    if records.len() >= SNIFF_RECORDS {
                        break;
                    }
                }
                current = [0; 4];
                filled = false;
            }
            _ => {
                if let Some(i) = DELIMITERS.iter().position(|d| *d == b) {
                    current[i] += 1;
                }
                filled = true;
            }
        }
    }
    // The last record counts when the sample holds the whole file, or holds nothing else.
    if filled && records.len() < SNIFF_RECORDS && (complete || records.is_empty()) {
        records.push(current);
    }
    let mut best = (b',', 0usize);
    for (i, d) in DELIMITERS.iter().enumerate() {
        let mut tally: Vec<(usize, usize)> = Vec::new();
        for r in records.iter().filter(|r| r[i] > 0) {
            match tally.iter_mut().find(|(count, _)| *count == r[i]) {
                Some((_, n)) => *n += 1,
                None => tally.push((r[i], 1)),
            }
        }
        let score = tally.iter().map(|(_, n)| *n).max().unwrap_or(0);
        if score > best.1 {
            best = (*d, score);
        }
    }
    best.0
}

/// Streams text in any encoding out as UTF-8 (malformed input becomes U+FFFD), counting the
/// raw bytes read for progress.
struct Decoding<R> {
    inner: R,
    decoder: Decoder,
    input: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    output: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    eof: bool,
    finished: bool,
    consumed: Arc<AtomicU64>,
}

impl<R: Read> Decoding<R> {
    fn new(inner: R, decoder: Decoder, consumed: Arc<AtomicU64>) -> Self {
        Decoding {
            inner,
            decoder,
            input: vec![0; 32 * 1024].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            output: vec![0; 64 * 1024].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            eof: false,
            finished: false,
            consumed,
        }
    }
}

impl<R: Read> Read for Decoding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let n = buf.len().min(self.out_len - self.out_pos);
                buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if self.in_pos == self.in_len && !self.eof {
                let n = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                };
                self.consumed.fetch_add(n as u64, Ordering::Relaxed);
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.in_pos..self.in_len],
                &mut self.output,
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            if self.eof && result == CoderResult::InputEmpty {
                self.finished = true;
            }
        }
    }
}

/// The error a [`Scanner`] stops with when a record passes [`MAX_ROW_BYTES`].
#[derive(Debug)]
struct RowTooLong(u64);

impl std::fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {} is longer than {} bytes", self.0, MAX_ROW_BYTES)
    }
}

impl std::error::Error for RowTooLong {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Watches the text on its way to the CSV parser, following the parser's own state machine
/// (`csv-core` with `"` quotes doubled inside quotes and CR, LF or CRLF ending records), to
/// give each record the row number a spreadsheet shows: the parser skips empty lines, which a
/// spreadsheet counts, and a record may span lines. It also stops a record that grows past
/// [`MAX_ROW_BYTES`] before the parser has held it whole.
struct Scanner<R> {
    inner: R,
    delimiter: u8,
    state: ScanState,
    after_cr: bool,
    /// Rows so far: records started and empty lines.
    row: u64,
    /// Row numbers of records started and not yet taken by the parser's caller.
    starts: VecDeque<u64>,
    record_bytes: u64,
}

impl<R: Read> Scanner<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        Scanner {
            inner,
            delimiter,
            state: ScanState::StartRecord,
            after_cr: false,
            row: 0,
            starts: VecDeque::new(),
            record_bytes: 0,
        }
    }

    fn scan(&mut self, bytes: &[u8]) -> Result<(), RowTooLong> {
        use ScanState::*;
        for &b in bytes {
            let term = b == b'\n' || b == b'\r';
            if self.state == StartRecord {
                if term {
                    // A CR LF pair ends one line.
                    if !(b == b'\n' && self.after_cr) {
                        self.row += 1;
                    }
                    self.after_cr = b == b'\r';
                    continue;
                }
                self.row += 1;
                self.starts.push_back(self.row);
                self.record_bytes = 0;
                self.state = StartField;
            }
            self.record_bytes += 1;
            if self.record_bytes > MAX_ROW_BYTES {
                return Err(RowTooLong(self.row));
            }
            let d = self.delimiter;
            self.state = match self.state {
                StartField if b == b'"' => InQuoted,
                StartField | InField | QuoteInQuoted if b == d => StartField,
                StartField | InField | QuoteInQuoted if term => {
                    self.after_cr = b == b'\r';
                    StartRecord
                }
                QuoteInQuoted if b == b'"' => InQuoted,
                StartField | InField | QuoteInQuoted => InField,
                InQuoted if b == b'"' => QuoteInQuoted,
                InQuoted => InQuoted,
                StartRecord => StartRecord,
            };
        }
        Ok(())
    }
}

impl<R: Read> Read for Scanner<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan(&buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------
// XLSX

/// What the reader thread sends: first `Opened` (or `Failed`), then rows, then `End` (or
/// `Failed`).
enum Msg {
    Opened { sheet: String, declared_rows: u64 },
    Row(Row),
    End,
    Failed(SourceError),
}

struct XlsxSource {
    rx: Receiver<Msg>,
    declared_rows: u64,
    last_row: u64,
    done: bool,
}

impl XlsxSource {
    /// Checks the archive, then starts the thread that opens the workbook and streams the
    /// chosen sheet; gives the source and the sheet's name.
    fn open(
        path: &Path,
        file: File,
        opts: &ReadOptions,
    ) -> Result<(XlsxSource, String), SourceError> {
        check_archive(&file)?;
        let (tx, rx) = mpsc::sync_channel(XLSX_ROWS_AHEAD);
        let wanted = opts.sheet.clone();
        std::thread::Builder::new()
            .name("kontor-xlsx".into())
            .spawn(move || read_workbook(file, wanted, &tx))
            .map_err(|e| SourceError::Io {
                path: path.display().to_string(),
                source: e,
            })?;
        let mut source = XlsxSource {
            rx,
            declared_rows: 0,
            last_row: 0,
            done: false,
        };
        match source.rx.recv() {
            Ok(Msg::Opened {
                sheet,
                declared_rows,
            }) => {
                source.declared_rows = declared_rows;
                Ok((source, sheet))
            }
            Ok(Msg::Failed(e)) => Err(e),
            Ok(_) | Err(_) => Err(reader_stopped()),
        }
    }

    fn next_raw(&mut self) -> Result<Option<Row>, SourceError> {
        if self.done {
            return Ok(None);
        }
        let msg = self.rx.recv();
        match msg {
            Ok(Msg::Row(row)) => {
                self.last_row = row.number;
                Ok(Some(row))
            }
            Ok(Msg::End) => {
                self.done = true;
                Ok(None)
            }
            Ok(Msg::Failed(e)) => {
                self.done = true;
                Err(e)
            }
            Ok(Msg::Opened { .. }) | Err(_) => {
                self.done = true;
                Err(reader_stopped())
            }
        }
    }

    fn progress(&self) -> (u64, u64) {
        let total = self.declared_rows.max(self.last_row);
        if self.done {
            (total, total)
        } else {
            (self.last_row, total)
        }
    }
}

fn reader_stopped() -> SourceError {
    SourceError::DamagedXlsx("the sheet's reader stopped unexpectedly".into())
}

fn damaged(e: impl std::fmt::Display) -> SourceError {
    SourceError::DamagedXlsx(e.to_string())
}

/// The reader thread: opens the workbook, chooses the sheet, and sends its rows (cells with a
/// value only; rows without one are never sent). Stops when the table is dropped.
fn read_workbook(file: File, wanted: Option<String>, tx: &SyncSender<Msg>) {
    use calamine::Reader;
    let fail = |e: SourceError| {
        let _ = tx.send(Msg::Failed(e));
    };
    let mut workbook = match calamine::Xlsx::new(BufReader::new(file)) {
        Ok(w) => w,
        Err(e) => return fail(damaged(e)),
    };
    let sheet = match choose_sheet(workbook.sheets_metadata(), wanted.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let mut cells = match workbook.worksheet_cells_reader(&sheet) {
        Ok(c) => c,
        Err(e) => return fail(damaged(format!("the sheet '{sheet}' cannot be read ({e})"))),
    };
    let declared_rows = u64::from(cells.dimensions().end.0) + 1;
    if tx
        .send(Msg::Opened {
            sheet,
            declared_rows,
        })
        .is_err()
    {
        return;
    }
    let mut current: Option<Row> = None;
    loop {
        let cell = match cells.next_cell() {
            Ok(Some(cell)) => cell,
            Ok(None) => break,
            Err(e) => return fail(damaged(e)),
        };
        let text = data_text(cell.get_value());
        if text.is_empty() {
            continue;
        }
        let (r, c) = cell.get_position();
        let number = u64::from(r) + 1;
        let col = c as usize;
        if current.as_ref().is_none_or(|row| row.number != number) {
            if let Some(done) = current.take() {
                if tx.send(Msg::Row(done)).is_err() {
                    return;
                }
            }
            current = Some(Row {
                number,
                cells: Vec::new(),
            });
        }
        if col >= MAX_COLUMNS {
            return fail(too_many_columns(number));
        }
        if let Some(row) = current.as_mut() {
            if row.cells.len() <= col {
                row.cells.resize(col + 1, String::new());
            }
            row.cells[col] = text;
        }
    }
    if let Some(done) = current {
        if tx.send(Msg::Row(done)).is_err() {
            return;
        }
    }
    let _ = tx.send(Msg::End);
}

/// The named worksheet (exact name first, then ignoring case), else the first visible one,
/// else the first.
fn choose_sheet(sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String, SourceError> {
    let worksheets: Vec<&calamine::Sheet> = sheets
        .iter()
        .filter(|s| matches!(s.typ, calamine::SheetType::WorkSheet))
        .collect();
    match wanted.map(str::trim).filter(|w| !w.is_empty()) {
        Some(w) => worksheets
            .iter()
            .find(|s| s.name == w)
            .or_else(|| {
                let lower = w.to_lowercase();
                worksheets.iter().find(|s| s.name.to_lowercase() == lower)
            })
            .map(|s| s.name.clone())
            .ok_or_else(|| SourceError::NoSuchSheet {
                name: w.to_string(),
                sheets: worksheets.iter().map(|s| s.name.clone()).collect(),
            }),
        None => worksheets
            .iter()
            .find(|s| matches!(s.visible, calamine::SheetVisible::Visible))
            .or(worksheets.first())
            .map(|s| s.name.clone())
            .ok_or(SourceError::NoSheets),
    }
}

/// A cell's value as text: strings as they are; whole numbers without a decimal point or an
/// exponent; other numbers in plain decimal notation at Excel's 15 significant digits (so a
/// computed 0.30000000000000004 reads 0.3, as Excel shows it); booleans `true`/`false`; dates
/// `YYYY-MM-DD`, date-times `YYYY-MM-DDTHH:MM:SS` (to the nearest second), times alone
/// `HH:MM:SS`; errors (`#N/A`) and empty cells as "".
fn data_text(value: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    match value {
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => excel_datetime_text(dt),
        DataRef::DateTimeIso(s) => iso_datetime_text(s),
        DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(_) | DataRef::Empty => String::new(),
    }
}

fn number_text(f: f64) -> String {
    if !f.is_finite() {
        return String::new();
    }
    let rounded: f64 = format!("{f:.14e}").parse().unwrap_or(f);
    if rounded == 0.0 {
        return "0".into();
    }
    // `f64`'s Display never uses an exponent and writes whole numbers without a point.
    format!("{rounded}")
}

fn excel_datetime_text(dt: &calamine::ExcelDateTime) -> String {
    if dt.is_duration() {
        let total = (dt.as_f64() * 86_400.0).round();
        if !total.is_finite() {
            return String::new();
        }
        let total = total as i64;
        let sign = if total < 0 { "-" } else { "" };
        let t = total.unsigned_abs();
        return format!("{sign}{}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60);
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    let time_only = dt.as_f64() < 1.0 && dt.as_f64() >= 0.0;
    let exact = chrono::NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(d))
        .and_then(|date| {
            date.and_hms_milli_opt(u32::from(h), u32::from(mi), u32::from(s), u32::from(ms))
        });
    let Some(exact) = exact else {
        // Excel's 1900-02-29, which never was: written as Excel shows it.
        return format!("{y:04}-{mo:02}-{d:02}");
    };
    let at = exact + chrono::Duration::milliseconds(500);
    let at = at
        .date()
        .and_hms_opt(
            chrono::Timelike::hour(&at),
            chrono::Timelike::minute(&at),
            chrono::Timelike::second(&at),
        )
        .unwrap_or(exact);
    if time_only {
        at.format("%H:%M:%S").to_string()
    } else if at.time() == chrono::NaiveTime::MIN {
        at.format("%Y-%m-%d").to_string()
    } else {
        at.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

/// A date, time or date-time written in ISO 8601 in the cell itself (`t="d"`).
fn iso_datetime_text(s: &str) -> String {
    if let Ok(at) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return if at.time() == chrono::NaiveTime::MIN {
            at.format("%Y-%m-%d").to_string()
        } else {
            at.format("%Y-%m-%dT%H:%M:%S").to_string()
        };
    }
    s.to_string()
}

/// Refuses archives built to exhaust memory or disk, before `calamine` reads anything: a part
/// over [`XLSX_PART_MAX`], shared strings over [`XLSX_SHARED_STRINGS_MAX`], a total over
/// [`XLSX_TOTAL_MAX`], a part of more than [`XLSX_RATIO_FROM`] bytes compressed more than
/// [`XLSX_RATIO_MAX`]:1. These are the sizes the archive declares; the parts `calamine` loads
/// whole (workbook, relationships, styles, theme, shared strings) are also unpacked once here
/// and must not unpack to more than they declare.
fn check_archive(file: &File) -> Result<(), SourceError> {
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| damaged(format!("the zip archive cannot be read ({e})")))?;
    if zip.index_for_name("xl/workbook.xml").is_none() {
        return Err(SourceError::NotWorkbook);
    }
    let hostile = |s: String| Err(SourceError::HostileXlsx(s));
    let mut total: u64 = 0;
    let mut whole = Vec::new();
    // The first part compressed suspiciously well, reported after the hard limits.
    let mut ratio: Option<(String, u64)> = None;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| damaged(format!("the zip archive cannot be read ({e})")))?;
        let name = entry.name().to_string();
        let lower = name.to_ascii_lowercase();
        let size = entry.size();
        let packed = entry.compressed_size();
        let shared = lower.ends_with("sharedstrings.xml");
        if size > XLSX_PART_MAX {
            return hostile(format!(
                "its part '{name}' would unpack to {} (at most {})",
                mib(size),
                mib(XLSX_PART_MAX)
            ));
        }
        if shared && size > XLSX_SHARED_STRINGS_MAX {
            return hostile(format!(
                "its shared strings '{name}' would unpack to {} (at most {})",
                mib(size),
                mib(XLSX_SHARED_STRINGS_MAX)
            ));
        }
        total = total.saturating_add(size);
        if size > XLSX_RATIO_FROM && size > packed.saturating_mul(XLSX_RATIO_MAX) {
            ratio.get_or_insert((name.clone(), size / packed.max(1)));
        }
        let loaded_whole = shared
            || lower.ends_with(".rels")
            || lower.ends_with("styles.xml")
            || lower.ends_with("workbook.xml")
            || lower.starts_with("xl/theme/");
        if loaded_whole {
            whole.push((i, name, size));
        }
    }
    if total > XLSX_TOTAL_MAX {
        return hostile(format!(
            "its parts would unpack to more than {} in all",
            mib(XLSX_TOTAL_MAX)
        ));
    }
    if let Some((name, times)) = ratio {
        return hostile(format!(
            "its part '{name}' is compressed {}:1 (at most {XLSX_RATIO_MAX}:1 for a part over {}), as a zip bomb is",
            thousands(times),
            mib(XLSX_RATIO_FROM)
        ));
    }
    for (i, name, size) in whole {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| damaged(format!("its part '{name}' cannot be unpacked ({e})")))?;
        let unpacked = io::copy(&mut (&mut entry).take(size + 1), &mut io::sink())
            .map_err(|e| damaged(format!("its part '{name}' cannot be unpacked ({e})")))?;
        if unpacked > size {
            return hostile(format!(
                "its part '{name}' unpacks to more than the {} bytes it declares",
                thousands(size)
            ));
        }
    }
    Ok(())
}

/// A size in MiB, rounded up: `2,048 MiB`.
fn mib(bytes: u64) -> String {
    format!("{} MiB", thousands(bytes.div_ceil(1 << 20)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(bytes).expect("write");
        f.flush().expect("flush");
        f
    }

    fn open_with(bytes: &[u8], opts: &ReadOptions) -> Result<Table, SourceError> {
        let f = file_of(bytes);
        Table::open(f.path(), opts)
    }

    fn open(bytes: &[u8]) -> Table {
        open_with(bytes, &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn open_err(bytes: &[u8], opts: &ReadOptions) -> String {
        match open_with(bytes, opts) {
            Ok(t) => panic!("opened: {:?}", t.described()),
            Err(e) => e.to_string(),
        }
    }

    fn rows(t: &mut Table) -> Vec<(u64, Vec<String>)> {
        let mut out = Vec::new();
        while let Some(r) = t.next_row().unwrap_or_else(|e| panic!("{e}")) {
            out.push((r.number, r.cells));
        }
        out
    }

    fn cells(c: &[&str]) -> Vec<String> {
        c.iter().map(|s| s.to_string()).collect()
    }

    fn described(t: &Table) -> (String, Option<String>, Option<String>) {
        let d = t.described();
        (
            d.format.to_string(),
            d.encoding.clone(),
            d.delimiter.clone(),
        )
    }

    fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
        let mut out = if big_endian {
            vec![0xFE, 0xFF]
        } else {
            vec![0xFF, 0xFE]
        };
        for u in text.encode_utf16() {
            out.extend(if big_endian {
                u.to_be_bytes()
            } else {
                u.to_le_bytes()
            });
        }
        out
    }

    #[test]
    fn tables_move_between_threads() {
        fn send<T: Send>() {}
        send::<Table>();
        send::<SourceError>();
    }

    #[test]
    fn utf8_comma_separated() {
        let mut t = open("Имя,Город\nИван,Москва\nПётр,Тверь\n".as_bytes());
        assert_eq!(t.format(), Format::Csv);
        assert_eq!(
            described(&t),
            ("csv".into(), Some("utf-8".into()), Some(",".into()))
        );
        assert_eq!(t.described().sheet, None);
        assert_eq!(t.headers(), cells(&["Имя", "Город"]));
        assert_eq!(t.header_row(), 1);
        assert_eq!(
            rows(&mut t),
            vec![
                (2, cells(&["Иван", "Москва"])),
                (3, cells(&["Пётр", "Тверь"]))
            ]
        );
        let json = serde_json::to_value(t.described()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"format": "csv", "encoding": "utf-8", "delimiter": ",", "sheet": null})
        );
    }

    #[test]
    fn utf8_with_bom_and_semicolons() {
        let mut bytes = vec![0xEF, 0xBB, 0xBF];
        bytes.extend_from_slice(" Имя ; Сумма\r\nИван;1 500,50\r\n".as_bytes());
        let mut t = open(&bytes);
        assert_eq!(
            described(&t),
            ("csv".into(), Some("utf-8 (BOM)".into()), Some(";".into()))
        );
        assert_eq!(t.headers(), cells(&["Имя", "Сумма"]), "headers trimmed");
        assert_eq!(rows(&mut t), vec![(2, cells(&["Иван", "1 500,50"]))]);
    }

    #[test]
    fn utf16_with_bom_tab_separated() {
        for big_endian in [false, true] {
            let mut t = open(&utf16("Имя\tГород\r\nИван\tМосква\r\n", big_endian));
            let label = if big_endian { "utf-16be" } else { "utf-16le" };
            assert_eq!(
                described(&t),
                ("csv".into(), Some(label.into()), Some("\t".into()))
            );
            assert_eq!(t.headers(), cells(&["Имя", "Город"]));
            assert_eq!(rows(&mut t), vec![(2, cells(&["Иван", "Москва"]))]);
        }
    }

    #[test]
    fn utf16le_without_bom_is_told_by_its_zero_bytes() {
        let bytes: Vec<u8> = utf16("name\tcity\r\nIvan\tМосква\r\n", false)[2..].to_vec();
        let mut t = open(&bytes);
        assert_eq!(t.described().encoding.as_deref(), Some("utf-16le"));
        assert_eq!(rows(&mut t), vec![(2, cells(&["Ivan", "Москва"]))]);
    }

    #[test]
    fn windows_1251_when_not_utf8() {
        let (bytes, _, _) =
            encoding_rs::WINDOWS_1251.encode("Имя;Город;Сумма\nИван;Москва;1 500,50\n");
        let mut t = open(&bytes);
        assert_eq!(
            described(&t),
            ("csv".into(), Some("windows-1251".into()), Some(";".into()))
        );
        assert_eq!(t.headers(), cells(&["Имя", "Город", "Сумма"]));
        assert_eq!(
            rows(&mut t),
            vec![(2, cells(&["Иван", "Москва", "1 500,50"]))]
        );
    }

    #[test]
    fn a_character_cut_at_the_end_of_the_prefix_is_still_utf8() {
        // "name\n" is 5 bytes, so every 2-byte "ж" starts at an odd offset and the 64 KiB
        // prefix ends inside one.
        let long = "ж".repeat(40_000);
        let text = format!("name\n{long}\n");
        assert!(!text.is_char_boundary(SNIFF_BYTES));
        let mut t = open(text.as_bytes());
        assert_eq!(t.described().encoding.as_deref(), Some("utf-8"));
        assert_eq!(rows(&mut t), vec![(2, vec![long])]);
        // A broken sequence inside the prefix is not UTF-8.
        let mut bytes = b"name\n".to_vec();
        bytes.extend_from_slice(&[0xD0, 0x20, 0xE6, b'\n']);
        assert_eq!(
            open(&bytes).described().encoding.as_deref(),
            Some("windows-1251")
        );
    }

    #[test]
    fn delimiters_are_sniffed() {
        let cases: [(&str, &str); 8] = [
            ("a;b;c\n1;2,5;3\n4;5,5;6\n", ";"),
            ("a,b,c\n1,2,3\n", ","),
            ("a\tb\n1\t2\n", "\t"),
            ("a|b\n1|2\n", "|"),
            // Delimiters inside quotes do not count.
            (
                "name,comment\n\"Иванов; Петров\",\"a;b;c\"\n\"x;y\",z\n",
                ",",
            ),
            ("a;b\n\"1,2,3\";\"4,5\"\n\"6,7\";8\n", ";"),
            // One column: nothing to sniff.
            ("name\nИван\nПётр\n", ","),
            // A tie goes to ';' (Russian Excel writes it).
            ("a;b,c\nd;e,f\n", ";"),
        ];
        for (text, want) in cases {
            let t = open(text.as_bytes());
            assert_eq!(t.described().delimiter.as_deref(), Some(want), "{text:?}");
        }
        let mut t = open(b"name,comment\n\"a;b\",\"c, d\"\n");
        assert_eq!(rows(&mut t), vec![(2, cells(&["a;b", "c, d"]))]);
    }

    #[test]
    fn row_numbers_count_records_and_empty_lines_not_line_breaks_in_quotes() {
        let mut t = open(b"h1,h2\n\"line 1\nline 2\",x\ny,z\n");
        assert_eq!(
            rows(&mut t),
            vec![
                (2, cells(&["line 1\nline 2", "x"])),
                (3, cells(&["y", "z"]))
            ]
        );
        let mut t = open(b"h1,h2\n\n1,2\n\n\n3,4");
        assert_eq!(
            rows(&mut t),
            vec![(3, cells(&["1", "2"])), (6, cells(&["3", "4"]))]
        );
        let mut t = open(b"h1,h2\r\n\r\n1,2\r\n\"a\r\nb\",c\r\n3,4\r\n");
        assert_eq!(
            rows(&mut t),
            vec![
                (3, cells(&["1", "2"])),
                (4, cells(&["a\r\nb", "c"])),
                (5, cells(&["3", "4"]))
            ]
        );
        // Empty and blank rows are skipped but counted; the header is the first filled row.
        let mut t = open(b"\n,,\nh1,h2\n , \n1,2\n");
        assert_eq!(t.header_row(), 3);
        assert_eq!(rows(&mut t), vec![(5, cells(&["1", "2"]))]);
        // Old Mac line ends, and a quote inside an unquoted cell.
        let mut t = open(b"h1,h2\r1,2\r\r5\" disk,x\r");
        assert_eq!(
            rows(&mut t),
            vec![(2, cells(&["1", "2"])), (4, cells(&["5\" disk", "x"]))]
        );
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_keep_their_extra_cells() {
        let mut t = open(b"a,b,c,\n1\n1,2,3,4\n1,2,3,,\n1,2,3,, ,5\n");
        assert_eq!(
            t.headers(),
            cells(&["a", "b", "c"]),
            "trailing empty header dropped"
        );
        assert_eq!(
            rows(&mut t),
            vec![
                (2, cells(&["1", "", ""])),
                (3, cells(&["1", "2", "3", "4"])),
                (4, cells(&["1", "2", "3"])),
                (5, cells(&["1", "2", "3", "", " ", "5"])),
            ]
        );
    }

    #[test]
    fn nothing_is_trimmed_but_headers_and_control_characters_stay() {
        let mut t = open(b" a ,b\n x ,\x01y\x7f\n");
        assert_eq!(t.headers(), cells(&["a", "b"]));
        assert_eq!(rows(&mut t), vec![(2, cells(&[" x ", "\u{1}y\u{7f}"]))]);
    }

    #[test]
    fn explicit_encoding_and_delimiter() {
        let (bytes, _, _) = encoding_rs::WINDOWS_1251.encode("Имя|Город;Район\nИван|Москва;ЦАО\n");
        let opts = ReadOptions {
            delimiter: Some(b'|'),
            encoding: Some("cp1251".into()),
            sheet: None,
        };
        let mut t = open_with(&bytes, &opts).expect("opens");
        assert_eq!(
            described(&t),
            ("csv".into(), Some("windows-1251".into()), Some("|".into()))
        );
        assert_eq!(t.headers(), cells(&["Имя", "Город;Район"]));
        assert_eq!(rows(&mut t), vec![(2, cells(&["Иван", "Москва;ЦАО"]))]);

        let (bytes, _, _) = encoding_rs::KOI8_R.encode("Имя,Город\nИван,Москва\n");
        let opts = ReadOptions {
            encoding: Some("KOI8-R".into()),
            ..ReadOptions::default()
        };
        let mut t = open_with(&bytes, &opts).expect("opens");
        assert_eq!(t.described().encoding.as_deref(), Some("koi8-r"));
        assert_eq!(rows(&mut t), vec![(2, cells(&["Иван", "Москва"]))]);

        // A given UTF-8 drops its BOM.
        let opts = ReadOptions {
            encoding: Some("utf-8".into()),
            ..ReadOptions::default()
        };
        let t = open_with(b"\xEF\xBB\xBFa,b\n", &opts).expect("opens");
        assert_eq!(t.headers(), cells(&["a", "b"]));
        assert_eq!(t.described().encoding.as_deref(), Some("utf-8 (BOM)"));
    }

    #[test]
    fn unknown_encodings_and_bad_delimiters_are_refused() {
        let opts = ReadOptions {
            encoding: Some("klingon".into()),
            ..ReadOptions::default()
        };
        assert!(open_err(b"a,b\n", &opts).starts_with("unknown encoding 'klingon'"));
        let opts = ReadOptions {
            delimiter: Some(b'"'),
            ..ReadOptions::default()
        };
        assert!(open_err(b"a,b\n", &opts).starts_with("the delimiter must be"));
    }

    #[test]
    fn limits_name_the_row_and_column() {
        let wide = vec!["x"; MAX_COLUMNS + 1].join(",");
        assert_eq!(
            open_err(wide.as_bytes(), &ReadOptions::default()),
            "row 1, column FAO (4,097): more than 4,096 columns"
        );
        let ok_wide = vec!["x"; MAX_COLUMNS].join(",");
        let mut t = open(format!("{ok_wide}\n\n{wide}\n").as_bytes());
        assert_eq!(t.headers().len(), MAX_COLUMNS);
        let e = t.next_row().expect_err("too wide");
        assert_eq!(
            e.to_string(),
            "row 3, column FAO (4,097): more than 4,096 columns"
        );
        assert_eq!(e.row(), Some(3));
        assert_eq!(t.next_row().expect("ended").map(|r| r.number), None);

        let big = "ж".repeat(MAX_CELL_CHARS + 1);
        let mut t = open(format!("a,b\n1,{big}\n").as_bytes());
        assert_eq!(
            t.next_row().expect_err("too long").to_string(),
            "row 2, column B: a cell of 1,048,577 characters (at most 1,048,576)"
        );
        let fits = "ж".repeat(MAX_CELL_CHARS);
        let mut t = open(format!("a,b\n1,{fits}\n").as_bytes());
        assert_eq!(rows(&mut t)[0].1[1].chars().count(), MAX_CELL_CHARS);

        let header = "h".repeat(MAX_HEADER_CHARS + 1);
        assert_eq!(
            open_err(format!("a,{header}\n").as_bytes(), &ReadOptions::default()),
            "row 1, column B: a header of 201 characters (at most 200)"
        );
        let header = format!("  {}  ", "h".repeat(MAX_HEADER_CHARS));
        assert!(open_with(format!("{header}\n").as_bytes(), &ReadOptions::default()).is_ok());
    }

    #[test]
    fn a_quote_left_open_stops_at_the_row_limit() {
        let mut bytes = b"a,b\n1,2\n\"open,".to_vec();
        bytes.resize(bytes.len() + MAX_ROW_BYTES as usize + 16, b'x');
        bytes.extend_from_slice(b"\"\n");
        let mut t = open(&bytes);
        assert_eq!(t.next_row().expect("row 2").map(|r| r.number), Some(2));
        assert_eq!(
            t.next_row().expect_err("too long").to_string(),
            "row 3: a row of more than 64 MiB of text (is a quote left open in it?)"
        );
    }

    #[test]
    fn empty_files_and_io_errors() {
        assert_eq!(
            open_err(b"", &ReadOptions::default()),
            "the file has no rows (a header row is needed)"
        );
        assert_eq!(
            open_err(b"\n\r\n , \n", &ReadOptions::default()),
            "the file has no rows (a header row is needed)"
        );
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("nope.csv");
        let e = Table::open(&missing, &ReadOptions::default())
            .err()
            .expect("missing")
            .to_string();
        assert!(
            e.starts_with(&format!("cannot read {}: ", missing.display())),
            "{e}"
        );
    }

    #[test]
    fn progress_counts_bytes_of_the_file() {
        let mut text = String::from("a,b\n");
        for i in 0..20_000 {
            text.push_str(&format!("{i},value {i}\n"));
        }
        let size = text.len() as u64;
        let mut t = open(text.as_bytes());
        let (done, total) = t.progress();
        assert_eq!(total, size);
        assert!(done < size, "{done}");
        let mut n = 0;
        while t.next_row().expect("row").is_some() {
            n += 1;
        }
        assert_eq!(n, 20_000);
        assert_eq!(t.progress(), (size, size));
    }

    #[test]
    fn files_that_are_not_tables() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        assert_eq!(
            open_err(png, &ReadOptions::default()),
            "not a CSV or XLSX file: a PNG image"
        );
        let xls = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0];
        assert!(open_err(&xls, &ReadOptions::default())
            .starts_with("not a CSV or XLSX file: an Excel 97-2003 workbook (.xls)"));
        // Random bytes: binary when they hold NUL bytes…
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let random: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect();
        assert!(open_err(&random, &ReadOptions::default())
            .starts_with("not a CSV or XLSX file: the file holds binary data"));
        // …and read as windows-1251 text, which every other byte is, when they do not.
        let high: Vec<u8> = random
            .iter()
            .enumerate()
            .map(|(i, b)| if i % 40 == 39 { b'\n' } else { b | 0x80 })
            .collect();
        let t = open(&high);
        assert_eq!(t.described().encoding.as_deref(), Some("windows-1251"));
        // A zip archive that is not a workbook.
        let zip = zip_of(&[("hello.txt", b"hello".as_slice())]);
        assert_eq!(
            open_err(&zip, &ReadOptions::default()),
            "a zip archive that is not an XLSX workbook (it has no xl/workbook.xml)"
        );
        assert!(open_err(b"PK\x03\x04garbage", &ReadOptions::default())
            .starts_with("damaged XLSX file: the zip archive cannot be read"));
    }

    // -----------------------------------------------------------------------------------
    // XLSX

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, options).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    /// Sets the uncompressed size an archive declares for `name`, in its local header and in
    /// its central directory.
    fn declare_size(zip: &mut [u8], name: &str, size: u32) {
        let u16_at = |z: &[u8], i: usize| usize::from(u16::from_le_bytes([z[i], z[i + 1]]));
        let mut patched = 0;
        for i in 0..zip.len().saturating_sub(46) {
            if zip[i..i + 4] == *b"PK\x03\x04" {
                let n = u16_at(zip, i + 26);
                if zip.get(i + 30..i + 30 + n) == Some(name.as_bytes()) {
                    zip[i + 22..i + 26].copy_from_slice(&size.to_le_bytes());
                    patched += 1;
                }
            }
            if zip[i..i + 4] == *b"PK\x01\x02" {
                let n = u16_at(zip, i + 28);
                if zip.get(i + 46..i + 46 + n) == Some(name.as_bytes()) {
                    zip[i + 24..i + 28].copy_from_slice(&size.to_le_bytes());
                    patched += 1;
                }
            }
        }
        assert_eq!(patched, 2, "{name}");
    }

    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    const ROOT_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    const WORKBOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const WORKBOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;

    /// A workbook of one sheet "Data" whose `<sheetData>` is `rows`, written by hand (for
    /// what a writer library will not write: error cells, cells far to the right).
    fn hand_made_xlsx(dimension: &str, rows: &str) -> Vec<u8> {
        let sheet = format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
        );
        zip_of(&[
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
            ("_rels/.rels", ROOT_RELS.as_bytes()),
            ("xl/workbook.xml", WORKBOOK.as_bytes()),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
        ])
    }

    fn written_workbook() -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format as XFormat, Formula, Workbook};
        let mut wb = Workbook::new();
        let date = XFormat::new().set_num_format("dd.mm.yyyy");
        let datetime = XFormat::new().set_num_format("dd.mm.yyyy hh:mm");
        {
            let ws = wb.add_worksheet();
            ws.set_name("Clients").expect("name");
            for (c, h) in [
                " Name ", "INN", "Amount", "Since", "Called", "Active", "Note",
            ]
            .iter()
            .enumerate()
            {
                ws.write_string(0, c as u16, *h).expect("header");
            }
            ws.write_string(1, 0, "ООО «Ромашка»").expect("w");
            ws.write_number(1, 1, 12345678901234.0).expect("w");
            ws.write_number(1, 2, 1500.5).expect("w");
            let d = ExcelDateTime::from_ymd(2026, 12, 31).expect("date");
            ws.write_datetime_with_format(1, 3, &d, &date).expect("w");
            let dt = ExcelDateTime::from_ymd(2026, 12, 31)
                .and_then(|d| d.and_hms(10, 30, 0))
                .expect("datetime");
            ws.write_datetime_with_format(1, 4, &dt, &datetime)
                .expect("w");
            ws.write_boolean(1, 5, true).expect("w");
            ws.write_string(1, 6, " kept as is ").expect("w");
            // Rows 3 and 4 empty; row 5 sparse, with numbers Excel would show rounded.
            ws.write_string(4, 0, "ИП Петров").expect("w");
            ws.write_number(4, 1, 5.0).expect("w");
            ws.write_number(4, 2, 0.1 + 0.2).expect("w");
            ws.write_number(4, 3, -0.000001).expect("w");
            ws.write_formula(4, 4, Formula::new("=B5*2").set_result("10"))
                .expect("w");
            ws.write_boolean(4, 5, false).expect("w");
            // A row with only a blank styled cell is empty.
            ws.write_blank(5, 0, &date).expect("w");
            ws.write_number(6, 7, 1e21).expect("w");
        }
        {
            let ws = wb.add_worksheet();
            ws.set_name("Лист2").expect("name");
            ws.write_string(2, 1, "Город").expect("w");
            ws.write_string(3, 1, "Москва").expect("w");
        }
        wb.save_to_buffer().expect("save")
    }

    #[test]
    fn xlsx_cells_as_text() {
        let bytes = written_workbook();
        // Told by content, whatever the file is called.
        let mut t = open(&bytes);
        assert_eq!(t.format(), Format::Xlsx);
        let d = t.described();
        assert_eq!(
            (
                d.format,
                d.encoding.clone(),
                d.delimiter.clone(),
                d.sheet.clone()
            ),
            ("xlsx", None, None, Some("Clients".into()))
        );
        assert_eq!(
            t.headers(),
            cells(&["Name", "INN", "Amount", "Since", "Called", "Active", "Note"])
        );
        assert_eq!(t.header_row(), 1);
        assert_eq!(
            rows(&mut t),
            vec![
                (
                    2,
                    cells(&[
                        "ООО «Ромашка»",
                        "12345678901234",
                        "1500.5",
                        "2026-12-31",
                        "2026-12-31T10:30:00",
                        "true",
                        " kept as is "
                    ])
                ),
                (
                    5,
                    cells(&["ИП Петров", "5", "0.3", "-0.000001", "10", "false", ""])
                ),
                (
                    7,
                    cells(&["", "", "", "", "", "", "", "1000000000000000000000"])
                ),
            ]
        );
        assert_eq!(t.progress(), (7, 7));
    }

    #[test]
    fn xlsx_sheet_chosen_by_name() {
        let bytes = written_workbook();
        for name in ["Лист2", "лист2", " Лист2 "] {
            let opts = ReadOptions {
                sheet: Some(name.into()),
                ..ReadOptions::default()
            };
            let mut t = open_with(&bytes, &opts).expect("opens");
            assert_eq!(t.described().sheet.as_deref(), Some("Лист2"));
            assert_eq!(t.headers(), cells(&["", "Город"]));
            assert_eq!(t.header_row(), 3);
            assert_eq!(rows(&mut t), vec![(4, cells(&["", "Москва"]))]);
        }
        let opts = ReadOptions {
            sheet: Some("Clients2".into()),
            ..ReadOptions::default()
        };
        assert_eq!(
            open_err(&bytes, &opts),
            "the workbook has no sheet 'Clients2' (sheets: Clients, Лист2)"
        );
    }

    #[test]
    fn xlsx_errors_inline_strings_and_limits() {
        let rows_xml = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c><c r="B1" t="inlineStr"><is><t>Code</t></is></c></row><row r="3"><c r="A3" t="e"><v>#N/A</v></c><c r="B3"><v>42</v></c></row><row r="4"><c r="A4" t="b"><v>1</v></c></row>"#;
        let mut t = open(&hand_made_xlsx("A1:B4", rows_xml));
        assert_eq!(t.described().sheet.as_deref(), Some("Data"));
        assert_eq!(t.headers(), cells(&["Name", "Code"]));
        assert_eq!(
            rows(&mut t),
            vec![(3, cells(&["", "42"])), (4, cells(&["true", ""]))]
        );

        let far = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c></row><row r="2"><c r="A2"><v>1</v></c><c r="FAO2"><v>2</v></c></row>"#;
        let mut t = open(&hand_made_xlsx("A1:FAO2", far));
        assert_eq!(
            t.next_row().expect_err("too wide").to_string(),
            "row 2, column FAO (4,097): more than 4,096 columns"
        );
        // Varied letters: a cell of one letter repeated compresses like a zip bomb.
        let mut state = 7u32;
        let big: String = (0..=MAX_CELL_CHARS)
            .map(|_| {
                state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                char::from_u32(0x430 + (state >> 16) % 32).unwrap_or('ж')
            })
            .collect();
        let long = format!(
            r#"<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row><row r="2"><c r="C2" t="inlineStr"><is><t>{big}</t></is></c></row>"#
        );
        let mut t = open(&hand_made_xlsx("A1:C2", &long));
        assert_eq!(
            t.next_row().expect_err("too long").to_string(),
            "row 2, column C: a cell of 1,048,577 characters (at most 1,048,576)"
        );
        let empty = hand_made_xlsx("A1", "");
        assert_eq!(
            open_err(&empty, &ReadOptions::default()),
            "the sheet 'Data' has no rows (a header row is needed)"
        );
    }

    #[test]
    fn xlsx_progress_follows_the_declared_dimension() {
        let mut xml = String::new();
        for r in 1..=100 {
            xml.push_str(&format!(r#"<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>"#));
        }
        let mut t = open(&hand_made_xlsx("A1:A100", &xml));
        assert_eq!(t.progress(), (1, 100));
        for _ in 0..49 {
            t.next_row().expect("row");
        }
        assert_eq!(t.progress(), (50, 100));
        while t.next_row().expect("row").is_some() {}
        assert_eq!(t.progress(), (100, 100));
    }

    fn workbook_parts(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let sheet = br#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>"#;
        let mut entries: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
            ("_rels/.rels", ROOT_RELS.as_bytes()),
            ("xl/workbook.xml", WORKBOOK.as_bytes()),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
            ("xl/worksheets/sheet1.xml", sheet),
        ];
        entries.extend_from_slice(extra);
        zip_of(&entries)
    }

    #[test]
    fn hostile_archives_are_refused() {
        let opts = ReadOptions::default();
        let mut huge = workbook_parts(&[]);
        declare_size(&mut huge, "xl/worksheets/sheet1.xml", 0x8000_0000);
        assert_eq!(
            open_err(&huge, &opts),
            "refused XLSX file: its part 'xl/worksheets/sheet1.xml' would unpack to 2,048 MiB (at most 1,024 MiB)"
        );

        let mut strings = workbook_parts(&[("xl/sharedStrings.xml", b"<sst/>")]);
        declare_size(&mut strings, "xl/sharedStrings.xml", 300 << 20);
        assert_eq!(
            open_err(&strings, &opts),
            "refused XLSX file: its shared strings 'xl/sharedStrings.xml' would unpack to 300 MiB (at most 256 MiB)"
        );

        let parts: Vec<String> = (0..5).map(|i| format!("xl/media/image{i}.bin")).collect();
        let extra: Vec<(&str, &[u8])> = parts.iter().map(|p| (p.as_str(), &b"x"[..])).collect();
        let mut total = workbook_parts(&extra);
        for p in &parts {
            declare_size(&mut total, p, 1000 << 20);
        }
        assert_eq!(
            open_err(&total, &opts),
            "refused XLSX file: its parts would unpack to more than 4,096 MiB in all"
        );

        let zeros = vec![0u8; 2 << 20];
        let bomb = workbook_parts(&[("xl/media/zeros.bin", &zeros)]);
        let e = open_err(&bomb, &opts);
        assert!(
            e.starts_with("refused XLSX file: its part 'xl/media/zeros.bin' is compressed ")
                && e.ends_with(":1 (at most 200:1 for a part over 1 MiB), as a zip bomb is"),
            "{e}"
        );

        // A part loaded whole that unpacks to more than it declares.
        let styles = vec![b' '; 4096];
        let mut liar = workbook_parts(&[("xl/styles.xml", &styles)]);
        declare_size(&mut liar, "xl/styles.xml", 100);
        let e = open_err(&liar, &opts);
        assert!(
            e.starts_with("refused XLSX file: its part 'xl/styles.xml'")
                || e.starts_with("damaged XLSX file: its part 'xl/styles.xml'"),
            "{e}"
        );
    }

    #[test]
    fn damaged_workbooks_say_so() {
        // The workbook names a sheet whose part is missing from the archive.
        let mut no_sheet = zip_of(&[
            ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
            ("_rels/.rels", ROOT_RELS.as_bytes()),
            ("xl/workbook.xml", WORKBOOK.as_bytes()),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS.as_bytes()),
        ]);
        let e = open_err(&no_sheet, &ReadOptions::default());
        assert!(
            e.starts_with("damaged XLSX file: the sheet 'Data' cannot be read"),
            "{e}"
        );
        // Bytes cut from the end.
        no_sheet.truncate(no_sheet.len() / 2);
        let e = open_err(&no_sheet, &ReadOptions::default());
        assert!(e.starts_with("damaged XLSX file: "), "{e}");
    }

    #[test]
    fn number_and_date_text() {
        assert_eq!(number_text(5.0), "5");
        assert_eq!(number_text(-0.0), "0");
        assert_eq!(number_text(12345678901234.0), "12345678901234");
        assert_eq!(number_text(1500.25), "1500.25");
        assert_eq!(number_text(0.1 + 0.2), "0.3");
        assert_eq!(number_text(1e-7), "0.0000001");
        assert_eq!(number_text(123456789.123), "123456789.123");
        let dt =
            |v: f64| calamine::ExcelDateTime::new(v, calamine::ExcelDateTimeType::DateTime, false);
        assert_eq!(excel_datetime_text(&dt(46387.0)), "2026-12-31");
        assert_eq!(excel_datetime_text(&dt(46387.4375)), "2026-12-31T10:30:00");
        // Nine hundredths of a millisecond short of 10:30 is 10:30.
        assert_eq!(
            excel_datetime_text(&dt(46387.4375 - 1e-9)),
            "2026-12-31T10:30:00"
        );
        assert_eq!(excel_datetime_text(&dt(0.5)), "12:00:00");
        let duration =
            calamine::ExcelDateTime::new(1.5, calamine::ExcelDateTimeType::TimeDelta, false);
        assert_eq!(excel_datetime_text(&duration), "36:00:00");
        assert_eq!(iso_datetime_text("2026-12-31T00:00:00"), "2026-12-31");
        assert_eq!(
            iso_datetime_text("2026-12-31T10:00:00.000"),
            "2026-12-31T10:00:00"
        );
        assert_eq!(iso_datetime_text("2026-12-31"), "2026-12-31");
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_048_576), "1,048,576");
    }
}
