//! The XML plumbing under the reader: encoding detection and transcoding to UTF-8, line and column
//! tracking, the event loop over `quick-xml`, the limits that keep hostile input bounded, and the
//! error type.
//!
//! The input is turned into UTF-8 before `quick-xml` sees it (`Source`): UTF-8 (with or without
//! BOM) passes through untouched; windows-1251, any other encoding named by the XML declaration
//! that `encoding_rs` knows, and UTF-16 (by BOM or by the shape of `<?xml`) are transcoded on the
//! fly. The declaration itself keeps its original `encoding=` and is ignored afterwards, so element
//! names can be compared as bytes against UTF-8 constants.
//!
//! `Xml` walks the events: it keeps the path of open elements (for errors), refuses DTDs and
//! unknown entity references, bounds nesting depth, the size of one markup or text event, the size
//! of one value and what one record may accumulate.

use std::fmt;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesRef, BytesStart, Event};

use crate::tags::Tag;

/// Where and why reading failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// 1-based line of the input where the reader was.
    pub line: u64,
    /// 1-based column (in characters) on that line.
    pub column: u64,
    /// Path of open elements, e.g. `КоммерческаяИнформация/Каталог/Товары/Товар` (local names).
    pub path: String,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)?;
        if !self.path.is_empty() {
            write!(f, ", in {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ReadError {}

/// Bounds on what one file may make the reader hold; the defaults suit every real exchange file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest element nesting (the root is depth 1).
    pub max_depth: usize,
    /// Longest text value (after unescaping), attribute value, or single markup/text event, in
    /// bytes.
    pub max_value_bytes: usize,
    /// Most elements read into one record (a product, an offer, a document…).
    pub max_record_elements: usize,
    /// Most text bytes kept for one record.
    pub max_record_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_value_bytes: 1 << 20,
            max_record_elements: 250_000,
            max_record_bytes: 32 << 20,
        }
    }
}

const CHUNK: usize = 64 * 1024;
/// How much of the start of the input is looked at for a BOM and the XML declaration.
const PROLOG: usize = 1024;

/// The input as UTF-8, with position tracking; implements [`BufRead`] for `quick-xml`.
pub(crate) struct Source<R> {
    inner: R,
    /// `Some` when the input is transcoded.
    decoder: Option<encoding_rs::Decoder>,
    /// Raw bytes waiting for the decoder.
    raw: Vec<u8>,
    raw_pos: usize,
    raw_eof: bool,
    /// The decoder saw the end of the input (it must not be called again).
    decoded_all: bool,
    /// UTF-8 bytes served to the parser.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    /// Raw bytes taken from `inner` (BOM included).
    raw_total: u64,
    /// UTF-8 bytes consumed by the parser.
    consumed: u64,
    bom_len: u64,
    /// Newlines consumed so far.
    lines: u64,
    /// Where in `buf` the current line starts; `None` when it started in an earlier buffer.
    line_start: Option<usize>,
    /// Characters of the current line in earlier buffers.
    col_carry: u64,
    /// Bytes consumed since the parser started the current event.
    since_mark: usize,
    max_event: usize,
    /// Why the last I/O error was raised by us rather than by `inner`.
    fault: Option<String>,
}

impl<R: Read> Source<R> {
    /// Reads the prolog and decides how to decode. Errors name the problem for the caller.
    fn new(mut inner: R, max_event: usize) -> Result<Source<R>, String> {
        let mut buf = vec![0u8; CHUNK];
        let mut len = 0;
        let mut eof = false;
        let mut raw_total = 0u64;
        let mut fill_to = |buf: &mut [u8], want: usize, len: &mut usize, eof: &mut bool| {
            while *len < want && !*eof {
                match inner.read(&mut buf[*len..want]) {
                    Ok(0) => *eof = true,
                    Ok(n) => {
                        *len += n;
                        raw_total += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("cannot read the input: {e}")),
                }
            }
            Ok(())
        };
        fill_to(&mut buf, 4, &mut len, &mut eof)?;
        let head = &buf[..len];
        let (encoding, bom_len): (&'static encoding_rs::Encoding, usize) =
            if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                (encoding_rs::UTF_8, 3)
            } else if head.starts_with(&[0xFF, 0xFE]) {
                (encoding_rs::UTF_16LE, 2)
            } else if head.starts_with(&[0xFE, 0xFF]) {
                (encoding_rs::UTF_16BE, 2)
            } else if head.starts_with(&[b'<', 0, b'?', 0]) {
                (encoding_rs::UTF_16LE, 0)
            } else if head.starts_with(&[0, b'<', 0, b'?']) {
                (encoding_rs::UTF_16BE, 0)
            } else if head.starts_with(b"<?xm") {
                // Read on to the end of the declaration (or give up after PROLOG bytes).
                loop {
                    if memchr::memmem::find(&buf[..len], b"?>").is_some() || len >= PROLOG || eof {
                        break;
                    }
                    let want = (len + 64).min(PROLOG);
                    fill_to(&mut buf, want, &mut len, &mut eof)?;
                }
                let end = memchr::memmem::find(&buf[..len], b"?>").unwrap_or(len);
                match declared_encoding(&buf[..end]) {
                    None => (encoding_rs::UTF_8, 0),
                    Some(label) => match encoding_rs::Encoding::for_label(label) {
                        Some(e) if e.is_ascii_compatible() => (e, 0),
                        // `encoding="UTF-16"` on bytes that are plainly 8-bit: trust the bytes.
                        Some(_) => (encoding_rs::UTF_8, 0),
                        None => {
                            return Err(format!(
                                "unsupported encoding {:?} in the XML declaration",
                                String::from_utf8_lossy(label)
                            ))
                        }
                    },
                }
            } else {
                (encoding_rs::UTF_8, 0)
            };
        let mut source = Source {
            inner,
            decoder: None,
            raw: Vec::new(),
            raw_pos: 0,
            raw_eof: eof,
            decoded_all: false,
            buf,
            pos: bom_len,
            len,
            raw_total,
            consumed: 0,
            bom_len: bom_len as u64,
            lines: 0,
            line_start: Some(bom_len),
            col_carry: 0,
            since_mark: 0,
            max_event,
            fault: None,
        };
        if encoding != encoding_rs::UTF_8 {
            source.decoder = Some(encoding.new_decoder_without_bom_handling());
            source.raw = source.buf[bom_len..len].to_vec();
            source.raw.reserve(CHUNK);
            source.pos = 0;
            source.len = 0;
        }
        Ok(source)
    }

    /// Raw input bytes read so far (for progress).
    pub(crate) fn bytes_read(&self) -> u64 {
        if self.decoder.is_some() {
            let pending = (self.raw.len() - self.raw_pos) as u64;
            self.raw_total.saturating_sub(pending)
        } else {
            self.bom_len + self.consumed
        }
    }

    pub(crate) fn line(&self) -> u64 {
        self.lines + 1
    }

    /// Counted only when asked (errors), from the buffer still holding the current line.
    pub(crate) fn column(&self) -> u64 {
        let from = self.line_start.unwrap_or(0).min(self.pos);
        self.col_carry + count_chars(&self.buf[from..self.pos]) + 1
    }

    /// The parser starts a new event.
    fn mark(&mut self) {
        self.since_mark = 0;
    }

    fn refill(&mut self) -> io::Result<()> {
        let from = self.line_start.take().unwrap_or(0).min(self.len);
        self.col_carry += count_chars(&self.buf[from..self.len]);
        self.pos = 0;
        self.len = 0;
        if let Some(fault) = &self.fault {
            return Err(io::Error::new(io::ErrorKind::InvalidData, fault.clone()));
        }
        if self.decoded_all {
            return Ok(());
        }
        let Some(decoder) = self.decoder.as_mut() else {
            loop {
                match self.inner.read(&mut self.buf) {
                    Ok(n) => {
                        self.len = n;
                        self.raw_total += n as u64;
                        return Ok(());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        };
        loop {
            if self.raw_pos == self.raw.len() && !self.raw_eof {
                self.raw.clear();
                self.raw_pos = 0;
                self.raw.resize(CHUNK, 0);
                let n = loop {
                    match self.inner.read(&mut self.raw) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            self.raw.clear();
                            return Err(e);
                        }
                    }
                };
                self.raw.truncate(n);
                self.raw_total += n as u64;
                self.raw_eof = n == 0;
            }
            let (result, read, written) = decoder.decode_to_utf8_without_replacement(
                &self.raw[self.raw_pos..],
                &mut self.buf,
                self.raw_eof,
            );
            self.raw_pos += read;
            self.len = written;
            match result {
                encoding_rs::DecoderResult::Malformed(_, _) => {
                    let msg = format!(
                        "bytes that are not valid {} (bad encoding)",
                        decoder.encoding().name()
                    );
                    self.fault = Some(msg.clone());
                    return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
                }
                encoding_rs::DecoderResult::InputEmpty if self.raw_eof => {
                    self.decoded_all = true;
                    return Ok(());
                }
                _ if written > 0 => return Ok(()),
                _ => {}
            }
        }
    }
}

fn declared_encoding(decl: &[u8]) -> Option<&[u8]> {
    let at = memchr::memmem::find(decl, b"encoding")?;
    let rest = &decl[at + b"encoding".len()..];
    let rest = rest
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let quote = *rest.first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    let rest = &rest[1..];
    let end = memchr::memchr(quote, rest)?;
    Some(rest[..end].trim_ascii())
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Source<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_mark > self.max_event {
            let msg = format!(
                "a single piece of markup or text is longer than {} bytes (limit)",
                self.max_event
            );
            self.fault = Some(msg.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, msg));
        }
        if self.pos >= self.len {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        let end = (self.pos + amt).min(self.len);
        let done = &self.buf[self.pos..end];
        if let Some(last) = memchr::memrchr(b'\n', done) {
            self.lines += memchr::memchr_iter(b'\n', done).count() as u64;
            self.line_start = Some(self.pos + last + 1);
            self.col_carry = 0;
        }
        self.consumed += done.len() as u64;
        self.since_mark += done.len();
        self.pos = end;
    }
}

fn count_chars(utf8: &[u8]) -> u64 {
    utf8.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64
}

/// What [`Xml::next`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ev {
    /// A start tag, or an empty element (then [`Xml::is_empty`] is true and no `End` follows).
    Start(Tag),
    End,
    /// Character data (appended to the capture buffer when capturing).
    Text,
    Eof,
}

/// An element whose children are being iterated: see [`Xml::child`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Open {
    depth: usize,
    empty: bool,
}

/// The event loop over the UTF-8 input.
pub(crate) struct Xml<R> {
    rd: quick_xml::Reader<Source<R>>,
    buf: Vec<u8>,
    /// Local names of the open elements joined by `/`.
    path: String,
    /// Length of `path` before each open element's name.
    marks: Vec<usize>,
    /// The last start was an empty element: pop it before the next event.
    pending_pop: bool,
    empty: bool,
    start_line: u64,
    /// Attributes of the last start tag: local names and values, back to back.
    attrs: String,
    attr_spans: Vec<(usize, usize, usize)>,
    /// Capture buffer for text.
    text: String,
    limits: Limits,
    record_elements: usize,
    record_bytes: usize,
}

type Res<T> = Result<T, ReadError>;

impl<R: Read> Xml<R> {
    pub(crate) fn new(input: R, limits: Limits) -> Res<Xml<R>> {
        let source = Source::new(input, limits.max_value_bytes).map_err(|message| ReadError {
            line: 1,
            column: 1,
            path: String::new(),
            message,
        })?;
        let mut rd = quick_xml::Reader::from_reader(source);
        let config = rd.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(Xml {
            rd,
            buf: Vec::with_capacity(4096),
            path: String::new(),
            marks: Vec::new(),
            pending_pop: false,
            empty: false,
            start_line: 0,
            attrs: String::new(),
            attr_spans: Vec::new(),
            text: String::new(),
            limits,
            record_elements: 0,
            record_bytes: 0,
        })
    }

    pub(crate) fn bytes_read(&self) -> u64 {
        self.rd.get_ref().bytes_read()
    }

    /// Number of open elements.
    pub(crate) fn depth(&self) -> usize {
        self.marks.len() - usize::from(self.pending_pop)
    }

    /// Line where the last start tag began.
    pub(crate) fn start_line(&self) -> u64 {
        self.start_line
    }

    /// Local name of the innermost open element (the one just started).
    pub(crate) fn current_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// The last start tag was an empty element (`<a/>`).
    pub(crate) fn is_empty(&self) -> bool {
        self.empty
    }

    /// An error at the current position.
    pub(crate) fn error(&self, message: impl Into<String>) -> ReadError {
        let source = self.rd.get_ref();
        ReadError {
            line: source.line(),
            column: source.column(),
            path: self.path.clone(),
            message: message.into(),
        }
    }

    /// Next event. With `capture`, text is appended (decoded, unescaped) to the capture buffer.
    pub(crate) fn next(&mut self, capture: bool) -> Res<Ev> {
        if self.pending_pop {
            self.pending_pop = false;
            self.pop();
        }
        loop {
            self.buf.clear();
            let line_before = self.rd.get_ref().line();
            self.rd.get_mut().mark();
            let step = match self.rd.read_event_into(&mut self.buf) {
                Err(e) => Step::XmlError(e),
                Ok(Event::Start(e)) => start(&e, &mut self.attrs, &mut self.attr_spans, false),
                Ok(Event::Empty(e)) => start(&e, &mut self.attrs, &mut self.attr_spans, true),
                Ok(Event::End(_)) => Step::End,
                Ok(Event::Text(t)) => text(&t, capture, &mut self.text),
                Ok(Event::CData(t)) => text(&t, capture, &mut self.text),
                Ok(Event::GeneralRef(r)) => reference(&r, capture, &mut self.text),
                Ok(Event::DocType(_)) => Step::Fail(
                    "a DTD (<!DOCTYPE …>) is not allowed: CommerceML files have none, and DTDs \
                     carry entity expansion attacks"
                        .into(),
                ),
                Ok(Event::Decl(_) | Event::PI(_) | Event::Comment(_)) => continue,
                Ok(Event::Eof) => Step::Eof,
            };
            return match step {
                Step::Start { name_len, empty } => {
                    self.start_line = line_before;
                    self.empty = empty;
                    let tag = self.push(name_len)?;
                    self.pending_pop = empty;
                    Ok(Ev::Start(tag))
                }
                Step::End => {
                    self.pop();
                    Ok(Ev::End)
                }
                Step::Text => {
                    if self.text.len() > self.limits.max_value_bytes {
                        return Err(self.error(format!(
                            "a text value is longer than {} bytes (limit)",
                            self.limits.max_value_bytes
                        )));
                    }
                    Ok(Ev::Text)
                }
                Step::Eof if self.marks.is_empty() => Ok(Ev::Eof),
                Step::Eof => Err(self.error(
                    "unexpected end of the file: elements are not closed (truncated file?)",
                )),
                Step::Fail(message) => Err(self.error(message)),
                Step::XmlError(e) => {
                    let fault = self.rd.get_mut().fault.take();
                    Err(self.error(match (fault, e) {
                        (Some(fault), _) => fault,
                        (None, quick_xml::Error::Io(e)) => format!("cannot read the input: {e}"),
                        (None, e) => format!("malformed XML: {e}"),
                    }))
                }
            };
        }
    }

    /// The name of the element just started was left at the end of `attrs` by [`start`].
    fn push(&mut self, name_len: usize) -> Res<Tag> {
        let name_start = self.attrs.len() - name_len;
        if self.marks.len() >= self.limits.max_depth {
            return Err(self.error(format!(
                "elements are nested deeper than {} levels (limit)",
                self.limits.max_depth
            )));
        }
        self.marks.push(self.path.len());
        if !self.path.is_empty() {
            self.path.push('/');
        }
        self.path.push_str(&self.attrs[name_start..]);
        let tag = Tag::of(&self.attrs[name_start..]);
        self.attrs.truncate(name_start);
        Ok(tag)
    }

    fn pop(&mut self) {
        if let Some(len) = self.marks.pop() {
            self.path.truncate(len);
        }
    }

    /// Value of an attribute of the last start tag (local name), trimmed; `None` if absent or
    /// empty.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attr_spans.iter().find_map(|&(n, v, end)| {
            (&self.attrs[n..v] == name)
                .then(|| self.attrs[v..end].trim())
                .filter(|s| !s.is_empty())
        })
    }

    /// Like [`Xml::attr`], comparing names without regard to case.
    pub(crate) fn attr_ignore_case(&self, name: &str) -> Option<&str> {
        let name = name.to_lowercase();
        self.attr_spans.iter().find_map(|&(n, v, end)| {
            (self.attrs[n..v].to_lowercase() == name)
                .then(|| self.attrs[v..end].trim())
                .filter(|s| !s.is_empty())
        })
    }

    /// Starts counting what one record holds.
    pub(crate) fn begin_record(&mut self) {
        self.record_elements = 0;
        self.record_bytes = 0;
    }

    /// The element just started, for iterating its children with [`Xml::child`].
    pub(crate) fn open(&self) -> Open {
        Open {
            depth: self.depth(),
            empty: self.empty,
        }
    }

    /// Next child element of `el`, or `None` at its end. Text between children is ignored. Each
    /// child must be consumed (read, skipped or iterated) before asking for the next.
    pub(crate) fn child(&mut self, el: Open) -> Res<Option<Tag>> {
        if el.empty {
            return Ok(None);
        }
        loop {
            match self.next(false)? {
                Ev::Start(tag) => {
                    self.record_elements += 1;
                    if self.record_elements > self.limits.max_record_elements {
                        return Err(self.error(format!(
                            "a record has more than {} elements (limit)",
                            self.limits.max_record_elements
                        )));
                    }
                    return Ok(Some(tag));
                }
                Ev::End if self.depth() < el.depth => return Ok(None),
                Ev::End | Ev::Text => {}
                Ev::Eof => return Err(self.error("unexpected end of the file")),
            }
        }
    }

    /// Like [`Xml::child`], also collecting the element's own text into `own_text` (mixed
    /// content such as `<БазоваяЕдиница Код="796">шт<Пересчет>…</Пересчет></БазоваяЕдиница>`).
    pub(crate) fn child_with_text(&mut self, el: Open, own_text: &mut String) -> Res<Option<Tag>> {
        if el.empty {
            return Ok(None);
        }
        loop {
            self.text.clear();
            match self.next(true)? {
                Ev::Start(tag) => return Ok(Some(tag)),
                Ev::End if self.depth() < el.depth => return Ok(None),
                Ev::Text => {
                    own_text.push_str(&self.text);
                    if own_text.len() > self.limits.max_value_bytes {
                        return Err(self.error(format!(
                            "a text value is longer than {} bytes (limit)",
                            self.limits.max_value_bytes
                        )));
                    }
                }
                Ev::End => {}
                Ev::Eof => return Err(self.error("unexpected end of the file")),
            }
        }
    }

    /// Skips the rest of the element just started (its whole subtree).
    pub(crate) fn skip(&mut self) -> Res<()> {
        if self.empty {
            return Ok(());
        }
        let depth = self.depth();
        loop {
            match self.next(false)? {
                Ev::End if self.depth() < depth => return Ok(()),
                Ev::Eof => return Err(self.error("unexpected end of the file")),
                _ => {}
            }
        }
    }

    /// The text of the element just started, trimmed (nested elements are skipped); consumes the
    /// element. Empty string for an empty element.
    pub(crate) fn text(&mut self) -> Res<String> {
        if self.empty {
            return Ok(String::new());
        }
        self.text.clear();
        let depth = self.depth();
        loop {
            match self.next(true)? {
                Ev::End if self.depth() < depth => break,
                Ev::Start(_) => {
                    let keep = std::mem::take(&mut self.text);
                    self.skip()?;
                    self.text = keep;
                }
                Ev::Eof => return Err(self.error("unexpected end of the file")),
                _ => {}
            }
        }
        let value = self.text.trim();
        self.record_bytes += value.len();
        if self.record_bytes > self.limits.max_record_bytes {
            return Err(self.error(format!(
                "a record holds more than {} bytes of text (limit)",
                self.limits.max_record_bytes
            )));
        }
        Ok(value.to_owned())
    }

    /// [`Xml::text`], `None` when empty.
    pub(crate) fn opt_text(&mut self) -> Res<Option<String>> {
        let t = self.text()?;
        Ok((!t.is_empty()).then_some(t))
    }
}

enum Step {
    Start { name_len: usize, empty: bool },
    End,
    Text,
    Eof,
    Fail(String),
    XmlError(quick_xml::Error),
}

/// Collects the attributes of a start tag into `attrs`/`spans`, then appends the element's local
/// name to `attrs` (the caller moves it to the path).
fn start(
    e: &BytesStart<'_>,
    attrs: &mut String,
    spans: &mut Vec<(usize, usize, usize)>,
    empty: bool,
) -> Step {
    attrs.clear();
    spans.clear();
    if !e.attributes_raw().trim_ascii().is_empty() {
        for attr in e.attributes() {
            let attr = match attr {
                Ok(a) => a,
                Err(err) => return Step::Fail(format!("malformed attribute: {err}")),
            };
            let key = attr.key.as_ref();
            if key == b"xmlns" || key.starts_with(b"xmlns:") {
                continue;
            }
            let Ok(name) = std::str::from_utf8(attr.key.local_name().into_inner()) else {
                return Step::Fail("an attribute name is not valid UTF-8".into());
            };
            let Ok(raw) = std::str::from_utf8(&attr.value) else {
                return Step::Fail(format!("the value of attribute {name} is not valid UTF-8"));
            };
            let value = match quick_xml::escape::unescape(raw) {
                Ok(v) => v,
                Err(err) => {
                    return Step::Fail(format!("in the value of attribute {name}: {err}"));
                }
            };
            let n = attrs.len();
            attrs.push_str(name);
            let v = attrs.len();
            attrs.push_str(&value);
            spans.push((n, v, attrs.len()));
        }
    }
    let Ok(name) = std::str::from_utf8(e.local_name().into_inner()) else {
        return Step::Fail("an element name is not valid UTF-8".into());
    };
    attrs.push_str(name);
    Step::Start {
        name_len: name.len(),
        empty,
    }
}

fn text(raw: &[u8], capture: bool, out: &mut String) -> Step {
    if capture {
        match std::str::from_utf8(raw) {
            Ok(s) => out.push_str(s),
            Err(_) => return Step::Fail("text is not valid UTF-8 (bad encoding)".into()),
        }
    }
    Step::Text
}

/// Resolves `&name;`: the five predefined entities and character references only.
fn reference(r: &BytesRef<'_>, capture: bool, out: &mut String) -> Step {
    let name: &[u8] = r;
    let resolved = if let Some(num) = name.strip_prefix(b"#") {
        let value = match num.strip_prefix(b"x").or_else(|| num.strip_prefix(b"X")) {
            Some(hex) if !hex.is_empty() && hex.len() <= 8 => std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok()),
            Some(_) => None,
            None if !num.is_empty() && num.len() <= 10 && num.iter().all(u8::is_ascii_digit) => {
                std::str::from_utf8(num).ok().and_then(|d| d.parse().ok())
            }
            None => None,
        };
        match value.and_then(char::from_u32).filter(|&c| c != '\0') {
            Some(c) => c,
            None => {
                return Step::Fail(format!(
                    "invalid character reference &{};",
                    String::from_utf8_lossy(name)
                ))
            }
        }
    } else {
        match name {
            b"lt" => '<',
            b"gt" => '>',
            b"amp" => '&',
            b"apos" => '\'',
            b"quot" => '"',
            _ => {
                return Step::Fail(format!(
                    "undefined entity &{}; (only &lt; &gt; &amp; &apos; &quot; and character \
                     references are allowed)",
                    String::from_utf8_lossy(name)
                ))
            }
        }
    };
    if capture {
        out.push(resolved);
    }
    Step::Text
}
