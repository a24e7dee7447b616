//! Time at Kontor's edges is RFC 3339 UTC; inside the store it is microseconds since the epoch,
//! which sorts and compares the same way on every engine.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    Utc::now()
}

pub fn to_micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> Timestamp {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// RFC 3339 with microseconds and a `Z`, the one format Kontor writes.
pub fn format(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn format_micros(us: i64) -> String {
    format(from_micros(us))
}

/// Parses RFC 3339 (any offset) into UTC.
pub fn parse(s: &str) -> Option<Timestamp> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_through_text() {
        let t = parse("2026-11-23T10:15:30.123456+03:00").unwrap();
        assert_eq!(format(t), "2026-11-23T07:15:30.123456Z");
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
