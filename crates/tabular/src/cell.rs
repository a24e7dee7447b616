//! A cell's text as the value a field takes, and back. [`cell_value`] turns what people write in
//! Russian, German and English spreadsheets (`1 500,50 ₽`, `31.12.26`, `да`) into the one
//! canonical JSON form the write path ([`kontor_domain::validate::parse_value`]) takes; it does
//! not validate beyond that (lengths, e-mail shapes, check digits, bounds stay the write path's).
//! [`cell_text`] writes a stored value as a cell for export so that reading it back gives the
//! same value, for every field type.

use kontor_domain::money::Dec;
use kontor_domain::schema::FieldType;
use kontor_domain::taxid::TaxId;
use kontor_domain::time;
use kontor_domain::validate::parse_datetime;
use serde_json::Value;

/// Why a cell cannot be a value of its field; the message is shown to the user after
/// "row N, column X: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CellError(pub String);

/// The JSON value the write path ([`kontor_domain::validate::parse_value`]) takes for a field of
/// this type, from a cell's text; `Ok(None)` for an empty cell (after trimming).
///
/// Numbers (`Decimal`, `Money`, `Integer`): spaces, no-break and thin spaces and apostrophes
/// group thousands (`1 500,50`, `1'500.50`); when both `.` and `,` occur, the last is the
/// decimal separator (`1.500,50` and `1,500.50` are both 1500.50); one `,` (or one `.`) alone
/// is the decimal separator, so `1,500` is one and a half (the Russian and German convention;
/// it comes out as `"1.500"`, the decimals as written, which a two-decimal currency then
/// refuses, so the ambiguity is not lost silently); several of them alone group thousands
/// (`1,500,000`, `1.500.000`). Currency signs and words around the number (₽, руб., р., RUB,
/// €, EUR, $, USD) are dropped, a leading `+` or `-` is a sign; the result keeps the decimals
/// as written (`"1500.50"`). Integers must be whole (`12.0` is 12).
///
/// Dates read `2026-12-31`, `31.12.2026`, `31.12.26` (years 00-69 are 20xx, 70-99 19xx),
/// `31/12/2026` and `31-12-2026` (day first), and the date part of a date-time. Date-times read
/// RFC 3339 (normalised to UTC), `2026-12-31 10:00[:00]`, `31.12.2026 10:00[:00]` and ISO
/// without an offset (taken as UTC), and a date alone (midnight UTC).
///
/// Tax ids and digit strings lose spaces and hyphens; an INN of 9 or 11 digits (a spreadsheet
/// that stored it as a number dropped its leading zero) gets its zero back, and the write path
/// still checks its check digits.
pub fn cell_value(ty: &FieldType, text: &str) -> Result<Option<Value>, CellError> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let v =
        match ty {
            FieldType::Text { .. }
            | FieldType::LongText
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Ref(_)
            | FieldType::LinkedRef { .. } => Value::from(t),
            FieldType::Enum(options) => Value::from(enum_option(options, t)?),
            FieldType::Currency => Value::from(currency(t)),
            FieldType::TaxId(kind) => {
                let s = strip_separators(t);
                let padded = match kind {
                    TaxId::Inn if all_digits(&s) && (s.len() == 9 || s.len() == 11) => {
                        format!("0{s}")
                    }
                    _ => s,
                };
                Value::from(padded)
            }
            FieldType::Digits { .. } => Value::from(strip_separators(t)),
            FieldType::Decimal { .. } | FieldType::Money { .. } => Value::from(decimal(t)?),
            FieldType::Integer { .. } => Value::from(integer(t)?),
            FieldType::Bool => Value::Bool(boolean(t)?),
            FieldType::Date => Value::from(date(t)?),
            FieldType::DateTime => Value::from(datetime(t)?),
            FieldType::List(inner) => return list(inner, t),
            FieldType::Rows(_) => match serde_json::from_str::<Value>(t) {
                Ok(Value::Array(rows)) if rows.iter().all(Value::is_object) => Value::Array(rows),
                _ => return Err(CellError(
                    "not a JSON list of rows, as the export writes it (like [{\"name\": \"…\"}])"
                        .into(),
                )),
            },
            FieldType::Object => match serde_json::from_str::<Value>(t) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(CellError(
                        "not a JSON object (like {\"key\": \"value\"})".into(),
                    ))
                }
            },
        };
    Ok(Some(v))
}

/// A stored field value as cell text for export, such that `cell_value(ty, &cell_text(ty, v))`
/// gives `v` back (for every type). Strings as they are, numbers as JSON writes them, booleans
/// `true`/`false`, `null` as an empty cell; a list of plain values joined with `"; "` unless an
/// item holds `;`, a line break (or `,`, for e-mail addresses) or the text would start with
/// `[`, in which case the whole list as JSON text; rows and objects as compact JSON text.
pub fn cell_text(ty: &FieldType, value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => match ty {
            FieldType::List(inner) if items.iter().all(is_scalar) => {
                let texts: Vec<String> = items.iter().map(|v| cell_text(inner, v)).collect();
                let email = matches!(**inner, FieldType::Email);
                // What splitting the joined text would not give back as this item.
                let splits = |t: &str| {
                    t.is_empty()
                        || t.trim() != t
                        || t.contains([';', '\n', '\r'])
                        || (email && t.contains(','))
                };
                let plain = !texts.iter().any(|t| splits(t))
                    && !texts.first().is_some_and(|t| t.starts_with('['));
                if plain {
                    texts.join("; ")
                } else {
                    value.to_string()
                }
            }
            _ => value.to_string(),
        },
        Value::Object(_) => value.to_string(),
    }
}

/// Spreadsheet column letters of a 0-based column index: 0 → `A`, 25 → `Z`, 26 → `AA`.
pub fn column_letters(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The option as spelled in the schema, matched case-insensitively.
fn enum_option(options: &[String], t: &str) -> Result<String, CellError> {
    if let Some(o) = options.iter().find(|o| o.as_str() == t) {
        return Ok(o.clone());
    }
    let lower = t.to_lowercase();
    options
        .iter()
        .find(|o| o.to_lowercase() == lower)
        .cloned()
        .ok_or_else(|| CellError(format!("'{t}' is not one of: {}", options.join(", "))))
}

/// A currency code in capitals; the rouble, euro and dollar signs and the usual Russian
/// abbreviations of the rouble are taken for their codes.
fn currency(t: &str) -> String {
    match t.to_lowercase().as_str() {
        "₽" | "руб" | "руб." | "р." | "рубль" | "рублей" => "RUB".into(),
        "€" => "EUR".into(),
        "$" => "USD".into(),
        _ => t.to_uppercase(),
    }
}

/// Spaces of any kind and hyphens and dashes dropped (tax ids, account numbers).
fn strip_separators(t: &str) -> String {
    t.chars()
        .filter(|c| !c.is_whitespace() && !is_dash(*c))
        .collect()
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
    )
}

/// Thousands separators other than `.` and `,`: spaces (plain, no-break, narrow no-break,
/// thin, figure) and apostrophes (Swiss).
fn is_group_mark(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\'' | '\u{2019}' | '\u{02BC}')
}

/// Currency signs and words that may stand before or after an amount, longest first so that
/// `руб.` goes before `р`.
const CURRENCY_AFFIXES: [&str; 14] = [
    "рублей",
    "рубля",
    "рубль",
    "руб.",
    "руб",
    "р.",
    "р",
    "₽",
    "rub",
    "rur",
    "eur",
    "€",
    "usd",
    "$",
];

fn strip_currency(mut s: &str) -> &str {
    loop {
        s = s.trim();
        let before = s.len();
        for affix in CURRENCY_AFFIXES {
            if let Some(rest) = strip_prefix_ci(s, affix) {
                s = rest.trim_start();
            }
            if let Some(rest) = strip_suffix_ci(s, affix) {
                s = rest.trim_end();
            }
        }
        if s.len() == before {
            return s;
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, affix: &str) -> Option<&'a str> {
    let n = affix.len();
    (s.len() >= n && s.is_char_boundary(n) && s[..n].to_lowercase() == affix).then(|| &s[n..])
}

fn strip_suffix_ci<'a>(s: &'a str, affix: &str) -> Option<&'a str> {
    let n = affix.len();
    let at = s.len().checked_sub(n)?;
    (s.is_char_boundary(at) && s[at..].to_lowercase() == affix).then(|| &s[..at])
}

/// A number as people write it: the sign, the integer digits (no leading zeros, at least
/// one) and the decimals as written.
struct Number {
    negative: bool,
    int: String,
    frac: String,
}

impl Number {
    fn is_zero(&self) -> bool {
        self.int == "0" && self.frac.bytes().all(|b| b == b'0')
    }

    /// `-?[0-9]+(\.[0-9]+)?`, what [`Dec::parse`] takes.
    fn canonical(&self) -> String {
        let sign = if self.negative && !self.is_zero() {
            "-"
        } else {
            ""
        };
        if self.frac.is_empty() {
            format!("{sign}{}", self.int)
        } else {
            format!("{sign}{}.{}", self.int, self.frac)
        }
    }
}

fn not_a_number(t: &str) -> CellError {
    CellError(format!("not a number: '{t}'"))
}

fn parse_number(t: &str) -> Option<Number> {
    let s = strip_currency(t);
    let (negative, s) = if let Some(rest) = s.strip_prefix(['-', '\u{2212}']) {
        (true, rest)
    } else if let Some(rest) = s.strip_prefix('+') {
        (false, rest)
    } else {
        (false, s)
    };
    let s = strip_currency(s);
    if s.is_empty()
        || !s
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || is_group_mark(c))
    {
        return None;
    }
    let dots = s.matches('.').count();
    let commas = s.matches(',').count();
    // (decimal separator, the other one, which then groups thousands)
    let (decimal, grouping) = match (dots, commas) {
        (0, 0) => (None, None),
        (_, 0) if dots == 1 => (Some('.'), None),
        (_, 0) => (None, Some('.')),
        (0, 1) => (Some(','), None),
        (0, _) => (None, Some(',')),
        _ => {
            let last_dot = s.rfind('.')?;
            let last_comma = s.rfind(',')?;
            if last_dot > last_comma {
                (Some('.'), Some(','))
            } else {
                (Some(','), Some('.'))
            }
        }
    };
    let (int_part, frac) = match decimal {
        Some(sep) => {
            let (i, f) = s.rsplit_once(sep)?;
            if i.contains(sep) || f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (i, f)
        }
        None => (s, ""),
    };
    // Groups between separators: the first of 1 to 3 digits, every other of exactly 3.
    let groups: Vec<&str> = int_part
        .split(|c: char| Some(c) == grouping || is_group_mark(c))
        .collect();
    if groups.len() > 1 {
        let first_ok = (1..=3).contains(&groups[0].len());
        if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
            return None;
        }
    }
    let digits: String = groups.concat();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.is_empty() && frac.is_empty()) {
        return None;
    }
    let int = digits.trim_start_matches('0');
    Some(Number {
        negative,
        int: if int.is_empty() {
            "0".into()
        } else {
            int.into()
        },
        frac: frac.to_string(),
    })
}

/// A decimal string [`Dec::parse`] takes.
fn decimal(t: &str) -> Result<String, CellError> {
    let n = parse_number(t).ok_or_else(|| not_a_number(t))?;
    let s = n.canonical();
    match Dec::parse(&s) {
        Some(_) => Ok(s),
        None => Err(CellError(format!(
            "not a number: '{t}' (at most 30 digits)"
        ))),
    }
}

fn integer(t: &str) -> Result<i64, CellError> {
    let n = parse_number(t).ok_or_else(|| not_a_number(t))?;
    if !n.frac.bytes().all(|b| b == b'0') {
        return Err(CellError(format!("not a whole number: '{t}'")));
    }
    let s = if n.negative && !n.is_zero() {
        format!("-{}", n.int)
    } else {
        n.int.clone()
    };
    s.parse::<i64>()
        .map_err(|_| CellError(format!("a number too large: '{t}'")))
}

const TRUE_WORDS: [&str; 14] = [
    "true",
    "yes",
    "y",
    "1",
    "да",
    "д",
    "ja",
    "j",
    "x",
    "х",
    "+",
    "истина",
    "wahr",
    "✓",
];
const FALSE_WORDS: [&str; 11] = [
    "false", "no", "n", "0", "нет", "н", "nein", "-", "ложь", "falsch", "✗",
];

fn boolean(t: &str) -> Result<bool, CellError> {
    let lower = t.to_lowercase();
    if TRUE_WORDS.contains(&lower.as_str()) {
        Ok(true)
    } else if FALSE_WORDS.contains(&lower.as_str()) {
        Ok(false)
    } else {
        Err(CellError(format!(
            "not yes or no: '{t}' (write true/false, yes/no, да/нет, ja/nein, 1/0 or x for yes)"
        )))
    }
}

fn not_a_date(t: &str) -> CellError {
    CellError(format!(
        "not a date: '{t}' (write it like 31.12.2026 or 2026-12-31)"
    ))
}

/// `YYYY-MM-DD`, from any of the date forms [`cell_value`] reads, with the date part of a
/// date-time.
fn date(t: &str) -> Result<String, CellError> {
    // "31.12.2026 г." (Russian: "year") is how 1C and many Russian documents write a date.
    let bare = t
        .strip_suffix("г.")
        .or_else(|| t.strip_suffix('г'))
        .map_or(t, str::trim_end);
    let (d, rest) = split_date_time(bare);
    if let Some(rest) = rest {
        parse_time(rest).ok_or_else(|| not_a_date(t))?;
    }
    let d = parse_date_part(d).ok_or_else(|| not_a_date(t))?;
    Ok(d.format("%Y-%m-%d").to_string())
}

/// The date part and, when there is one, the time part (after `T` or spaces).
fn split_date_time(t: &str) -> (&str, Option<&str>) {
    match t.find(['T', 't', ' ']) {
        Some(i) => (&t[..i], Some(t[i + 1..].trim())),
        None => (t, None),
    }
}

/// A date written year first (`2026-12-31`, `2026.12.31`, `2026/12/31`) or day first
/// (`31.12.2026`, `31/12/2026`, `31-12-2026`, `31.12.26`); one separator throughout.
fn parse_date_part(s: &str) -> Option<chrono::NaiveDate> {
    let sep = s.chars().find(|c| matches!(c, '.' | '/' | '-'))?;
    let parts: Vec<&str> = s.split(sep).collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty() || !all_digits(p)) {
        return None;
    }
    let num = |p: &str| p.parse::<u32>().ok();
    let (y, m, d) = if parts[0].len() == 4 {
        if parts[1].len() > 2 || parts[2].len() > 2 {
            return None;
        }
        (num(parts[0])?, num(parts[1])?, num(parts[2])?)
    } else {
        if parts[0].len() > 2 || parts[1].len() > 2 {
            return None;
        }
        let y = match parts[2].len() {
            4 => num(parts[2])?,
            2 => {
                let yy = num(parts[2])?;
                if yy < 70 {
                    2000 + yy
                } else {
                    1900 + yy
                }
            }
            _ => return None,
        };
        (y, num(parts[1])?, num(parts[0])?)
    };
    if y == 0 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)
}

/// `H:MM`, `HH:MM:SS` or `HH:MM:SS.ffffff` (`.` or `,` before the fraction), then optionally
/// `Z` or an offset (`+03:00`, `+0300`, `+03`): the time and the offset in seconds east of UTC.
fn parse_time(s: &str) -> Option<(chrono::NaiveTime, Option<i32>)> {
    let s = s.trim();
    let (clock, offset) = if let Some(c) = s.strip_suffix(['Z', 'z']) {
        (c.trim_end(), Some(0))
    } else if let Some(i) = s.rfind(['+', '-']) {
        (s[..i].trim_end(), Some(parse_offset(&s[i..])?))
    } else {
        (s, None)
    };
    let (hms, frac) = match clock.split_once(['.', ',']) {
        Some((hms, f)) if !f.is_empty() && f.len() <= 9 && all_digits(f) => (hms, Some(f)),
        Some(_) => return None,
        None => (clock, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let field = |p: &str, lens: &[usize]| {
        (all_digits(p) && lens.contains(&p.len()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] if frac.is_none() => (field(h, &[1, 2])?, field(m, &[2])?, 0),
        [h, m, sec] => (field(h, &[1, 2])?, field(m, &[2])?, field(sec, &[2])?),
        _ => return None,
    };
    let nanos = match frac {
        Some(f) => f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32),
        None => 0,
    };
    Some((
        chrono::NaiveTime::from_hms_nano_opt(h, m, sec, nanos)?,
        offset,
    ))
}

fn parse_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !all_digits(&digits) || rest.matches(':').count() > 1 {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits.parse::<i32>().ok()?, 0),
        4 => (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        ),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

fn datetime(t: &str) -> Result<String, CellError> {
    let bad = || {
        CellError(format!(
            "not a date and time: '{t}' (write it like 31.12.2026 10:00 or 2026-12-31T10:00:00+03:00)"
        ))
    };
    if let Some(ts) = parse_datetime(t) {
        return Ok(time::format(ts));
    }
    let (d, rest) = split_date_time(t);
    let day = parse_date_part(d).ok_or_else(bad)?;
    let (clock, offset) = match rest {
        Some(r) => parse_time(r).ok_or_else(bad)?,
        None => (chrono::NaiveTime::MIN, None),
    };
    let local = day.and_time(clock);
    let utc = local - chrono::Duration::seconds(i64::from(offset.unwrap_or(0)));
    Ok(time::format(utc.and_utc()))
}

fn list(inner: &FieldType, t: &str) -> Result<Option<Value>, CellError> {
    let item_err = |i: usize, e: CellError| CellError(format!("item {}: {}", i + 1, e.0));
    let mut out = Vec::new();
    if t.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(t) {
            for (i, item) in items.iter().enumerate() {
                let text = match item {
                    Value::Null => continue,
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if let Some(v) = cell_value(inner, &text).map_err(|e| item_err(i, e))? {
                    out.push(v);
                }
            }
            return Ok((!out.is_empty()).then_some(Value::Array(out)));
        }
    }
    let email = matches!(inner, FieldType::Email);
    let parts = t
        .split(|c: char| c == ';' || c == '\n' || c == '\r' || (email && c == ','))
        .map(str::trim)
        .filter(|p| !p.is_empty());
    for (i, part) in parts.enumerate() {
        if let Some(v) = cell_value(inner, part).map_err(|e| item_err(i, e))? {
            out.push(v);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kontor_domain::schema::FieldDef;
    use kontor_domain::Entity;
    use serde_json::json;

    fn val(ty: &FieldType, text: &str) -> Value {
        cell_value(ty, text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
            .unwrap_or(Value::Null)
    }

    fn err(ty: &FieldType, text: &str) -> String {
        match cell_value(ty, text) {
            Err(e) => e.0,
            Ok(v) => panic!("{text:?} gave {v:?}"),
        }
    }

    const DEC: FieldType = FieldType::Decimal {
        digits: 12,
        scale: 4,
        min: None,
        max: None,
    };
    const MONEY: FieldType = FieldType::Money { positive: false };
    const INT: FieldType = FieldType::Integer { min: 0, max: 100 };

    #[test]
    fn empty_cells_are_no_value_for_every_type() {
        for ty in all_types() {
            for text in ["", "   ", "\u{a0}\t"] {
                assert_eq!(cell_value(&ty, text), Ok(None), "{ty:?}");
            }
        }
    }

    #[test]
    fn text_like_fields_are_trimmed_strings() {
        let text = FieldType::Text { max: 10 };
        assert_eq!(val(&text, "  Ромашка \u{a0}"), json!("Ромашка"));
        assert_eq!(val(&FieldType::LongText, " a\nb \n"), json!("a\nb"));
        assert_eq!(
            val(&FieldType::Email, " Info@Romashka.RU "),
            json!("Info@Romashka.RU")
        );
        assert_eq!(
            val(&FieldType::Phone, " +7 (495) 123-45-67"),
            json!("+7 (495) 123-45-67")
        );
        let id = "0190A000-0000-7000-8000-0000000000AB";
        assert_eq!(val(&FieldType::Ref(Entity::Companies), id), json!(id));
        assert_eq!(
            val(&FieldType::LinkedRef { entity_field: "e" }, id),
            json!(id)
        );
        // Control characters are the write path's to refuse.
        assert_eq!(val(&text, "a\u{1}b"), json!("a\u{1}b"));
    }

    #[test]
    fn enums_match_case_insensitively_and_come_out_as_spelled() {
        let ty = FieldType::Enum(vec!["new".into(), "Won".into(), "Проиграна".into()]);
        assert_eq!(val(&ty, "NEW"), json!("new"));
        assert_eq!(val(&ty, " won "), json!("Won"));
        assert_eq!(val(&ty, "ПРОИГРАНА"), json!("Проиграна"));
        assert_eq!(
            err(&ty, "lost"),
            "'lost' is not one of: new, Won, Проиграна"
        );
    }

    #[test]
    fn currencies_are_uppercased() {
        assert_eq!(val(&FieldType::Currency, " rub"), json!("RUB"));
        assert_eq!(val(&FieldType::Currency, "Eur"), json!("EUR"));
        assert_eq!(val(&FieldType::Currency, "₽"), json!("RUB"));
        assert_eq!(val(&FieldType::Currency, "руб."), json!("RUB"));
        assert_eq!(val(&FieldType::Currency, "€"), json!("EUR"));
    }

    #[test]
    fn tax_ids_and_digits_lose_spaces_and_hyphens() {
        let inn = FieldType::TaxId(TaxId::Inn);
        assert_eq!(val(&inn, "7707 083\u{a0}893"), json!("7707083893"));
        assert_eq!(val(&inn, "77-07-08\u{2009}3893"), json!("7707083893"));
        // A leading zero a number format dropped comes back (10 and 12 digits).
        assert_eq!(val(&inn, "274062111"), json!("0274062111"));
        assert_eq!(val(&inn, "27406211111"), json!("027406211111"));
        let kpp = FieldType::TaxId(TaxId::Kpp);
        assert_eq!(val(&kpp, "7736 01 001"), json!("773601001"));
        assert_eq!(
            val(&kpp, "77360100"),
            json!("77360100"),
            "no padding for KPP"
        );
        let bik = FieldType::Digits { lens: &[9] };
        assert_eq!(val(&bik, "04 45 25 225"), json!("044525225"));
        assert_eq!(
            val(
                &FieldType::Digits { lens: &[20] },
                "4070 2810 9000 0000 1234"
            ),
            json!("40702810900000001234")
        );
        // What is not a digit stays, for the write path to name.
        assert_eq!(val(&bik, "04452522x"), json!("04452522x"));
    }

    #[test]
    fn decimals_read_russian_german_and_english_writing() {
        for (text, want) in [
            ("1500.50", "1500.50"),
            ("-3.25", "-3.25"),
            ("+7", "7"),
            ("1 500,50", "1500.50"),
            ("1\u{a0}500,50", "1500.50"),
            ("1\u{202f}500,50", "1500.50"),
            ("1\u{2009}500,50", "1500.50"),
            ("1'500.50", "1500.50"),
            ("1’500.50", "1500.50"),
            ("1.500,50", "1500.50"),
            ("1,500.50", "1500.50"),
            ("1.234.567,89", "1234567.89"),
            ("1,234,567.89", "1234567.89"),
            ("1500,5", "1500.5"),
            // One comma alone is the decimal separator (Russian and German convention).
            ("1,500", "1.500"),
            ("1,500,000", "1500000"),
            ("1.500.000", "1500000"),
            ("0,5", "0.5"),
            (",5", "0.5"),
            ("007", "7"),
            ("-0", "0"),
            ("1 500,50 ₽", "1500.50"),
            ("1 500,50 руб.", "1500.50"),
            ("1500 руб", "1500"),
            ("1500р.", "1500"),
            ("1500 р", "1500"),
            ("RUB 1500", "1500"),
            ("1500 rub", "1500"),
            ("€ 1.500,50", "1500.50"),
            ("1.500,50 EUR", "1500.50"),
            ("$1,500.50", "1500.50"),
            ("-$5", "-5"),
            ("1500 USD", "1500"),
            ("- 1 500,00 руб.", "-1500.00"),
        ] {
            assert_eq!(val(&DEC, text), json!(want), "{text}");
            assert_eq!(val(&MONEY, text), json!(want), "{text}");
            assert!(Dec::parse(want).is_some());
        }
        for bad in [
            "ten",
            "1.2.3,4,5",
            "1,5,3",
            "12 34",
            "1 5000",
            "1,2.3,4",
            "1e3",
            "1500,",
            "--5",
            "5-",
            "1.5%",
            "0x10",
            "1 500 руб 50 коп",
            "₽",
        ] {
            assert_eq!(err(&DEC, bad), format!("not a number: '{bad}'"), "{bad}");
        }
        assert!(err(&DEC, &"9".repeat(31)).contains("at most 30 digits"));
    }

    #[test]
    fn integers_must_be_whole() {
        assert_eq!(val(&INT, "12"), json!(12));
        assert_eq!(val(&INT, "12.0"), json!(12));
        assert_eq!(val(&INT, "12,00"), json!(12));
        assert_eq!(val(&INT, "1 000"), json!(1000));
        assert_eq!(val(&INT, "-5"), json!(-5));
        assert_eq!(val(&INT, "1,000,000"), json!(1_000_000));
        assert_eq!(err(&INT, "12.5"), "not a whole number: '12.5'");
        assert_eq!(err(&INT, "1,500"), "not a whole number: '1,500'");
        assert_eq!(err(&INT, "abc"), "not a number: 'abc'");
        assert!(err(&INT, "99999999999999999999").contains("too large"));
    }

    #[test]
    fn booleans_in_many_languages() {
        for t in [
            "true",
            "TRUE",
            "yes",
            "Y",
            "1",
            "да",
            "Да",
            "д",
            "ja",
            "x",
            "X",
            "+",
            "истина",
            "ИСТИНА",
            "wahr",
        ] {
            assert_eq!(val(&FieldType::Bool, t), json!(true), "{t}");
        }
        for t in [
            "false", "No", "n", "0", "нет", "Н", "nein", "-", "ложь", "ЛОЖЬ", "falsch",
        ] {
            assert_eq!(val(&FieldType::Bool, t), json!(false), "{t}");
        }
        let e = err(&FieldType::Bool, "maybe");
        assert!(e.starts_with("not yes or no: 'maybe'"), "{e}");
        assert!(e.contains("да/нет"), "{e}");
    }

    #[test]
    fn dates_day_first_or_iso() {
        for (text, want) in [
            ("2026-12-31", "2026-12-31"),
            ("31.12.2026", "2026-12-31"),
            ("1.2.2026", "2026-02-01"),
            ("31.12.26", "2026-12-31"),
            ("01.01.69", "2069-01-01"),
            ("01.01.70", "1970-01-01"),
            ("31.12.99", "1999-12-31"),
            ("31.12.00", "2000-12-31"),
            ("31/12/2026", "2026-12-31"),
            ("31-12-2026", "2026-12-31"),
            ("2026/12/31", "2026-12-31"),
            ("2026-12-31T10:00:00", "2026-12-31"),
            ("2026-12-31 10:00", "2026-12-31"),
            ("2026-12-31T10:00:00+03:00", "2026-12-31"),
            ("31.12.2026 23:59:59", "2026-12-31"),
            ("29.02.2024", "2024-02-29"),
            ("31.12.2026 г.", "2026-12-31"),
            ("31.12.2026г", "2026-12-31"),
        ] {
            assert_eq!(val(&FieldType::Date, text), json!(want), "{text}");
        }
        for bad in [
            "31.02.2026",
            "29.02.2026",
            "2026-13-01",
            "00.01.2026",
            "0000-01-01",
            "31.12.026",
            "31.12",
            "12/31/2026",
            "2026-12-31 noon",
            "31.12-2026",
            "tomorrow",
        ] {
            assert!(
                err(&FieldType::Date, bad).starts_with(&format!("not a date: '{bad}'")),
                "{bad}"
            );
        }
    }

    #[test]
    fn datetimes_normalised_to_utc() {
        for (text, want) in [
            ("2026-12-31T10:00:00+03:00", "2026-12-31T07:00:00.000000Z"),
            ("2026-12-31T07:00:00Z", "2026-12-31T07:00:00.000000Z"),
            ("2026-12-31T07:00:00.123456Z", "2026-12-31T07:00:00.123456Z"),
            ("2026-12-31 10:00", "2026-12-31T10:00:00.000000Z"),
            ("2026-12-31 10:00:30", "2026-12-31T10:00:30.000000Z"),
            ("2026-12-31T10:00:00", "2026-12-31T10:00:00.000000Z"),
            ("2026-12-31T10:00", "2026-12-31T10:00:00.000000Z"),
            ("31.12.2026 10:00", "2026-12-31T10:00:00.000000Z"),
            ("31.12.2026 9:05:07", "2026-12-31T09:05:07.000000Z"),
            ("31.12.2026 10:00 +03:00", "2026-12-31T07:00:00.000000Z"),
            ("2026-12-31 01:00+0300", "2026-12-30T22:00:00.000000Z"),
            ("2026-12-31", "2026-12-31T00:00:00.000000Z"),
            ("31.12.2026", "2026-12-31T00:00:00.000000Z"),
            ("2026-12-31 10:00:00,5", "2026-12-31T10:00:00.500000Z"),
        ] {
            assert_eq!(val(&FieldType::DateTime, text), json!(want), "{text}");
        }
        for bad in [
            "2026-12-31 25:00",
            "2026-12-31 10",
            "2026-12-31 10:0",
            "31.12.2026 10:00 +3:00",
            "yesterday",
            "2026-02-30T10:00:00Z",
        ] {
            assert!(
                err(&FieldType::DateTime, bad).starts_with("not a date and time"),
                "{bad}"
            );
        }
    }

    #[test]
    fn lists_split_on_semicolons_and_lines_or_read_json() {
        let tags = FieldType::List(Box::new(FieldType::Text { max: 50 }));
        assert_eq!(val(&tags, "a; b;;c\n d \r\n"), json!(["a", "b", "c", "d"]));
        assert_eq!(val(&tags, "a, b"), json!(["a, b"]), "a comma is text");
        assert_eq!(val(&tags, r#"["a;b", "c"]"#), json!(["a;b", "c"]));
        assert_eq!(val(&tags, " ; ;"), Value::Null);
        assert_eq!(val(&tags, "[]"), Value::Null);
        assert_eq!(val(&tags, "[not json"), json!(["[not json"]));
        let emails = FieldType::List(Box::new(FieldType::Email));
        assert_eq!(
            val(&emails, "a@b.cd, c@d.ef; g@h.ij"),
            json!(["a@b.cd", "c@d.ef", "g@h.ij"])
        );
        let numbers = FieldType::List(Box::new(INT));
        assert_eq!(val(&numbers, "1; 2,0; 3"), json!([1, 2, 3]));
        assert_eq!(val(&numbers, "[1, \"2\"]"), json!([1, 2]));
        assert_eq!(err(&numbers, "1; x"), "item 2: not a number: 'x'");
        let dates = FieldType::List(Box::new(FieldType::Date));
        assert_eq!(
            val(&dates, "31.12.2026; 01.01.27"),
            json!(["2026-12-31", "2027-01-01"])
        );
    }

    #[test]
    fn rows_and_objects_only_from_json() {
        let rows = FieldType::Rows(vec![FieldDef::new("city", FieldType::Text { max: 50 })]);
        assert_eq!(
            val(&rows, r#" [{"city": "Москва"}] "#),
            json!([{"city": "Москва"}])
        );
        assert_eq!(val(&rows, "[]"), json!([]));
        for bad in ["Москва", "[1, 2]", r#"{"city": "x"}"#, "[{"] {
            assert!(
                err(&rows, bad).contains("a JSON list of rows, as the export writes it"),
                "{bad}"
            );
        }
        assert_eq!(
            val(&FieldType::Object, r#"{"a": {"b": [1]}}"#),
            json!({"a": {"b": [1]}})
        );
        for bad in ["a=1", "[1]", "\"x\"", "{"] {
            assert!(
                err(&FieldType::Object, bad).contains("a JSON object"),
                "{bad}"
            );
        }
    }

    #[test]
    fn cell_text_writes_plain_cells() {
        assert_eq!(cell_text(&FieldType::LongText, &Value::Null), "");
        assert_eq!(cell_text(&FieldType::Text { max: 9 }, &json!("x y")), "x y");
        assert_eq!(cell_text(&INT, &json!(12)), "12");
        assert_eq!(cell_text(&FieldType::Bool, &json!(true)), "true");
        assert_eq!(cell_text(&FieldType::Bool, &json!(false)), "false");
        assert_eq!(cell_text(&MONEY, &json!("1500.50")), "1500.50");
        let tags = FieldType::List(Box::new(FieldType::Text { max: 50 }));
        assert_eq!(cell_text(&tags, &json!(["a", "b c"])), "a; b c");
        assert_eq!(cell_text(&tags, &json!(["a;b", "c"])), r#"["a;b","c"]"#);
        assert_eq!(cell_text(&tags, &json!(["a\nb"])), r#"["a\nb"]"#);
        assert_eq!(cell_text(&tags, &json!(["[1]"])), r#"["[1]"]"#);
        assert_eq!(cell_text(&tags, &json!(["a, b"])), "a, b");
        let emails = FieldType::List(Box::new(FieldType::Email));
        assert_eq!(
            cell_text(&emails, &json!(["a@b.cd", "e@f.gh"])),
            "a@b.cd; e@f.gh"
        );
        assert_eq!(
            cell_text(&emails, &json!(["\"a,b\"@c.de"])),
            r#"["\"a,b\"@c.de"]"#
        );
        let rows = FieldType::Rows(vec![]);
        assert_eq!(cell_text(&rows, &json!([{"a": 1}])), r#"[{"a":1}]"#);
        assert_eq!(
            cell_text(&FieldType::Object, &json!({"a": 1})),
            r#"{"a":1}"#
        );
    }

    #[test]
    fn column_letters_as_spreadsheets_write_them() {
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(2), "C");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
        assert_eq!(column_letters(4095), "FAN");
        assert_eq!(column_letters(16383), "XFD");
    }

    fn all_types() -> Vec<FieldType> {
        vec![
            FieldType::Text { max: 255 },
            FieldType::LongText,
            FieldType::Email,
            FieldType::Phone,
            FieldType::Digits { lens: &[9] },
            FieldType::TaxId(TaxId::Inn),
            DEC,
            MONEY,
            INT,
            FieldType::Date,
            FieldType::DateTime,
            FieldType::Bool,
            FieldType::Enum(vec!["a".into()]),
            FieldType::Currency,
            FieldType::Ref(Entity::Companies),
            FieldType::LinkedRef { entity_field: "e" },
            FieldType::List(Box::new(FieldType::Text { max: 9 })),
            FieldType::Rows(vec![]),
            FieldType::Object,
        ]
    }

    /// Stored values of every type (as the write path stores them) come back from their
    /// exported text.
    #[test]
    fn stored_values_round_trip_through_cell_text() {
        let rows = FieldType::Rows(vec![
            FieldDef::new("city", FieldType::Text { max: 50 }),
            FieldDef::new("price", MONEY),
        ]);
        let cases: Vec<(FieldType, Value)> = vec![
            (
                FieldType::Text { max: 255 },
                json!("ООО «Ромашка»; филиал, 2"),
            ),
            (FieldType::Text { max: 255 }, json!("[not a list]")),
            (FieldType::LongText, json!("line 1\nline 2; more")),
            (FieldType::Email, json!("Info@romashka.ru")),
            (FieldType::Phone, json!("+7 (495) 123-45-67")),
            (FieldType::Digits { lens: &[9] }, json!("044525225")),
            (FieldType::TaxId(TaxId::Inn), json!("7707083893")),
            (FieldType::TaxId(TaxId::Inn), json!("0274062111")),
            (FieldType::TaxId(TaxId::Kpp), json!("7736AB001")),
            (FieldType::TaxId(TaxId::Ogrn), json!("1027700132195")),
            (DEC, json!("1500.5")),
            (DEC, json!("-3.25")),
            (DEC, json!("0.0001")),
            (DEC, json!("1500")),
            (MONEY, json!("1500.50")),
            (MONEY, json!("0.00")),
            (MONEY, json!("1234567.891")),
            (INT, json!(12)),
            (INT, json!(-7)),
            (INT, json!(0)),
            (FieldType::Date, json!("2026-12-31")),
            (FieldType::DateTime, json!("2026-12-31T07:00:00.000000Z")),
            (FieldType::DateTime, json!("2026-01-02T03:04:05.123456Z")),
            (FieldType::Bool, json!(true)),
            (FieldType::Bool, json!(false)),
            (
                FieldType::Enum(vec!["new".into(), "Won".into()]),
                json!("Won"),
            ),
            (FieldType::Currency, json!("RUB")),
            (
                FieldType::Ref(Entity::Companies),
                json!("0190a000-0000-7000-8000-0000000000ab"),
            ),
            (
                FieldType::LinkedRef { entity_field: "e" },
                json!("0190a000-0000-7000-8000-0000000000ab"),
            ),
            (
                FieldType::List(Box::new(FieldType::Text { max: 50 })),
                json!(["vip", "опт"]),
            ),
            (
                FieldType::List(Box::new(FieldType::Text { max: 50 })),
                json!(["a; b", "c, d", "e\nf"]),
            ),
            (
                FieldType::List(Box::new(FieldType::Text { max: 50 })),
                json!(["[x]", "y"]),
            ),
            (
                FieldType::List(Box::new(FieldType::Email)),
                json!(["a@b.cd", "c@d.ef"]),
            ),
            (
                FieldType::List(Box::new(FieldType::Phone)),
                json!(["+7 495 123-45-67", "8 800 2000 600"]),
            ),
            (FieldType::List(Box::new(INT)), json!([1, 2, 3])),
            (FieldType::List(Box::new(DEC)), json!(["1.5", "2"])),
            (
                FieldType::List(Box::new(FieldType::Date)),
                json!(["2026-12-31"]),
            ),
            (
                FieldType::List(Box::new(FieldType::Enum(vec!["A".into(), "b".into()]))),
                json!(["A", "b"]),
            ),
            (
                rows,
                json!([{"city": "Москва", "price": "10.00"}, {"city": "Тверь; центр"}]),
            ),
            (FieldType::Rows(vec![]), json!([])),
            (
                FieldType::Object,
                json!({"contacts": {"scope": "own", "hidden": ["phone"]}}),
            ),
        ];
        for (ty, v) in cases {
            let text = cell_text(&ty, &v);
            assert_eq!(
                cell_value(&ty, &text),
                Ok(Some(v.clone())),
                "{ty:?}: {v} as {text:?}"
            );
        }
        for ty in all_types() {
            assert_eq!(cell_value(&ty, &cell_text(&ty, &Value::Null)), Ok(None));
        }
    }
}
