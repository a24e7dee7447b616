//! Lenient parsing of the scalar values 1C writes: dates and times in the shapes seen in real
//! files, decimals with spaces and commas, and booleans.

/// A date and wall-clock time as written in a file (1C writes local time without an offset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    pub year: u16,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl DateTime {
    /// The CommerceML form `YYYY-MM-DDTHH:MM:SS`.
    pub fn to_cml(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Parses a date or date-time: `YYYY-MM-DD`, `YYYY-MM-DDTH:M:S`, `YYYY-MM-DD H:M:S`,
/// `DD.MM.YYYY` and `DD.MM.YYYY H:M:S`. Hours, minutes and seconds may have one or two digits
/// (`2014-06-01T0:36:33`), seconds may be left out (`H:M`), a fraction of a second and a time zone
/// suffix (`Z`, `+03:00`) are accepted and dropped. A date alone gives midnight. `None` for
/// anything else or an impossible date (`2021-02-30`). 1C's "empty date" `0001-01-01T00:00:00`
/// is returned as it is.
pub fn parse_datetime(s: &str) -> Option<DateTime> {
    let s = s.trim();
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_start())),
        None => (s, None),
    };
    let (year, month, day) = parse_date(date)?;
    let (hour, minute, second) = match time {
        Some(t) => parse_time_with_suffix(t)?,
        None => (0, 0, 0),
    };
    Some(DateTime {
        year,
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// Parses a time of day `H:M[:S]` (`15:19:27`, `9:05`), as in a document's `Время`.
pub fn parse_time(s: &str) -> Option<(u8, u8, u8)> {
    parse_hms(s.trim())
}

fn parse_date(s: &str) -> Option<(u16, u8, u8)> {
    let parts: Vec<&str> = if s.contains('-') {
        s.split('-').collect()
    } else {
        let mut p: Vec<&str> = s.split('.').collect();
        p.reverse();
        p
    };
    let [y, m, d] = parts.as_slice() else {
        return None;
    };
    if y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let year: u16 = digits(y)?;
    let month: u8 = digits(m)?;
    let day: u8 = digits(d)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

fn parse_time_with_suffix(t: &str) -> Option<(u8, u8, u8)> {
    // Cut a zone suffix: `Z`, `+hh:mm`, `-hh:mm`.
    let t = t.strip_suffix(['Z', 'z']).unwrap_or(t);
    let t = match t.find(['+', '-']) {
        Some(i) => {
            let zone = &t[i + 1..];
            let zone_ok = !zone.is_empty()
                && zone.len() <= 5
                && zone.bytes().all(|b| b.is_ascii_digit() || b == b':');
            if !zone_ok {
                return None;
            }
            &t[..i]
        }
        None => t,
    };
    // Drop a fraction of a second.
    let t = match t.find(['.', ',']) {
        Some(i) if t[i + 1..].bytes().all(|b| b.is_ascii_digit()) && i + 1 < t.len() => &t[..i],
        Some(_) => return None,
        None => t,
    };
    parse_hms(t)
}

fn parse_hms(t: &str) -> Option<(u8, u8, u8)> {
    let mut it = t.split(':');
    let h = it.next()?;
    let m = it.next()?;
    let s = it.next();
    if it.next().is_some() {
        return None;
    }
    let short = |x: &str| !x.is_empty() && x.len() <= 2;
    if !short(h) || !short(m) || s.is_some_and(|s| !short(s)) {
        return None;
    }
    let hour: u8 = digits(h)?;
    let minute: u8 = digits(m)?;
    let second: u8 = match s {
        Some(s) => digits(s)?,
        None => 0,
    };
    (hour < 24 && minute < 60 && second < 60).then_some((hour, minute, second))
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// `u16::is_multiple_of` needs Rust 1.87; the workspace declares 1.85.
#[allow(clippy::manual_is_multiple_of)]
fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Normalises a decimal as 1C and sites write it: spaces of any kind (including no-break and thin
/// spaces) are removed, `,` becomes `.`, a leading `+` is dropped, leading zeros of the integer
/// part are dropped (`007` → `7`, `.5` → `0.5`), a trailing point is dropped (`5.` → `5`); the
/// fraction is kept as written (`231.7400` stays). `None` if the rest is not an optionally signed
/// run of digits with at most one point (`1e5`, `1.234,56`, `abc`, ``).
pub fn normalize_decimal(s: &str) -> Option<String> {
    let mut negative = false;
    let mut int = String::new();
    let mut frac = String::new();
    let mut seen_point = false;
    let mut seen_digit = false;
    let mut seen_sign = false;
    for c in s.chars() {
        match c {
            c if c.is_whitespace() || c == '\u{200B}' || c == '\u{FEFF}' => {}
            '+' | '-' | '\u{2212}' if !seen_sign && !seen_digit && !seen_point => {
                seen_sign = true;
                negative = c != '+';
            }
            '.' | ',' if !seen_point => seen_point = true,
            '0'..='9' => {
                seen_digit = true;
                if seen_point {
                    frac.push(c);
                } else if !(int.is_empty() && c == '0') {
                    int.push(c);
                }
            }
            _ => return None,
        }
    }
    if !seen_digit {
        return None;
    }
    if int.is_empty() {
        int.push('0');
    }
    let zero = int == "0" && frac.bytes().all(|b| b == b'0');
    let mut out = String::with_capacity(int.len() + frac.len() + 2);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(&int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// [`normalize_decimal`], or the text itself when it is not a number.
pub(crate) fn decimal_or_raw(s: String) -> String {
    // Fast path: already plain (digits with at most one point, no sign or leading zero issues).
    match normalize_decimal(&s) {
        Some(n) if n == s => s,
        Some(n) => n,
        None => s,
    }
}

/// Parses a CommerceML boolean: `true`/`false` in any case, also `1`/`0`, `да`/`нет`, `yes`/`no`.
pub fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim();
    for t in ["true", "1", "yes"] {
        if s.eq_ignore_ascii_case(t) {
            return Some(true);
        }
    }
    for f in ["false", "0", "no"] {
        if s.eq_ignore_ascii_case(f) {
            return Some(false);
        }
    }
    match s.to_lowercase().as_str() {
        "да" => Some(true),
        "нет" => Some(false),
        _ => None,
    }
}

/// The current UTC time in the CommerceML form, for a default `ДатаФормирования`.
pub(crate) fn now_utc_cml() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        year,
        month,
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(y: u16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Option<DateTime> {
        Some(DateTime {
            year: y,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
        })
    }

    #[test]
    fn datetimes_in_every_shape_seen() {
        assert_eq!(parse_datetime("2007-10-30"), dt(2007, 10, 30, 0, 0, 0));
        assert_eq!(
            parse_datetime("2014-06-01T0:36:33"),
            dt(2014, 6, 1, 0, 36, 33)
        );
        assert_eq!(
            parse_datetime("2017-08-23T15:50:12"),
            dt(2017, 8, 23, 15, 50, 12)
        );
        assert_eq!(
            parse_datetime("2007-10-30 15:19:27"),
            dt(2007, 10, 30, 15, 19, 27)
        );
        assert_eq!(
            parse_datetime("11.02.2021 18:45:21"),
            dt(2021, 2, 11, 18, 45, 21)
        );
        assert_eq!(parse_datetime("11.02.2021"), dt(2021, 2, 11, 0, 0, 0));
        assert_eq!(parse_datetime("1.2.2021 9:05"), dt(2021, 2, 1, 9, 5, 0));
        assert_eq!(
            parse_datetime("2020-02-29T23:59:59.123+03:00"),
            dt(2020, 2, 29, 23, 59, 59)
        );
        assert_eq!(
            parse_datetime(" 2020-01-01T10:00:00Z "),
            dt(2020, 1, 1, 10, 0, 0)
        );
        assert_eq!(parse_datetime("0001-01-01T00:00:00"), dt(1, 1, 1, 0, 0, 0));
    }

    #[test]
    fn impossible_or_garbled_dates_are_none() {
        for s in [
            "",
            "2021-02-30",
            "2019-02-29",
            "2021-13-01",
            "2021-00-10",
            "21-01-01",
            "2021-01-01T24:00:00",
            "2021-01-01T10:60",
            "2021-01-01T10",
            "2021/01/01",
            "abc",
            "2021-01-01T1:2:3:4",
            "2021-01-01T10:00:00.x",
            "32.01.2021",
            "2021-1-1-1",
            "٢٠٢١-01-01",
        ] {
            assert_eq!(parse_datetime(s), None, "{s:?}");
        }
        assert_eq!(
            dt(2024, 2, 29, 1, 2, 3).map(|d| d.to_cml()).as_deref(),
            Some("2024-02-29T01:02:03")
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time("15:19:27"), Some((15, 19, 27)));
        assert_eq!(parse_time("9:5"), Some((9, 5, 0)));
        assert_eq!(parse_time("25:00:00"), None);
    }

    #[test]
    fn decimals() {
        let n = |s: &str| normalize_decimal(s);
        assert_eq!(n("1 234,50").as_deref(), Some("1234.50"));
        assert_eq!(n("1\u{a0}234.5").as_deref(), Some("1234.5"));
        assert_eq!(n("2\u{2009}042,66").as_deref(), Some("2042.66"));
        assert_eq!(n("231.7400").as_deref(), Some("231.7400"));
        assert_eq!(n("+5").as_deref(), Some("5"));
        assert_eq!(n("-0,5").as_deref(), Some("-0.5"));
        assert_eq!(n("-0").as_deref(), Some("0"));
        assert_eq!(n("007").as_deref(), Some("7"));
        assert_eq!(n(".5").as_deref(), Some("0.5"));
        assert_eq!(n("5.").as_deref(), Some("5"));
        assert_eq!(n(" 0 ").as_deref(), Some("0"));
        for bad in [
            "",
            " ",
            "-",
            ".",
            "1e5",
            "1.234,56",
            "abc",
            "1-2",
            "--1",
            "12 руб",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
        assert_eq!(decimal_or_raw("1 719 RUB".into()), "1 719 RUB");
        assert_eq!(decimal_or_raw("1,5".into()), "1.5");
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool(" TRUE "), Some(true));
        assert_eq!(parse_bool("Да"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("нет"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn now_is_well_formed() {
        assert!(parse_datetime(&now_utc_cml()).is_some());
    }
}
