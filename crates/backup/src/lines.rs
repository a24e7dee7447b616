//! The canonical text of archived rows, and the digest of the logical state built from it.
//!
//! Every row is one line: a JSON array of its columns in the order `docs/ARCHIVE.md` lists.
//! JSON columns are embedded as JSON, not as strings: a record's fields in canonical form
//! (keys sorted, no spaces — PostgreSQL's `jsonb` prints them differently), journal images as
//! stored (both engines keep them as the text Kontor wrote). The same rows therefore give the
//! same bytes on either engine, and the digest is BLAKE3 over those bytes in primary-key order.

use kontor_store::bulk::{CounterRow, CredentialRow, JournalRow, RecordRow};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;

/// The archived tables, in archive and digest order.
pub const TABLES: [&str; 4] = ["records", "journal", "counters", "credentials"];

/// BLAKE3 over the canonical lines of every table, in [`TABLES`] order. Lines are gathered
/// into large blocks before hashing: BLAKE3 hashes many chunks at once only when it is given
/// them at once, and line by line it is several times slower (the digest is the same).
pub struct StateDigest {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
}

/// Bytes gathered before they are hashed.
const DIGEST_BLOCK: usize = 1 << 20;

impl Default for StateDigest {
    fn default() -> Self {
        let mut d = StateDigest {
            hasher: blake3::Hasher::new(),
            pending: Vec::with_capacity(DIGEST_BLOCK + 4096),
        };
        d.put(b"kontor-state 1\n");
        d
    }
}

impl StateDigest {
    fn put(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= DIGEST_BLOCK {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }
    /// Starts a table; tables must come in [`TABLES`] order.
    pub fn table(&mut self, name: &str) {
        self.put(b"table ");
        self.put(name.as_bytes());
        self.put(b"\n");
    }
    pub fn line(&mut self, line: &[u8]) {
        self.put(line);
        self.put(b"\n");
    }
    /// `blake3:<hex>`.
    pub fn finish(&self) -> String {
        let mut h = self.hasher.clone();
        h.update(&self.pending);
        format!("blake3:{}", h.finalize().to_hex())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn put_opt_str(out: &mut Vec<u8>, s: &Option<String>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn put_int(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

fn put_opt_int(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => put_int(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// JSON text in canonical form: parsed and printed with sorted keys and no spaces.
pub fn canonical_json(text: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// A journal image as it goes into a line: as stored when it is valid single-line JSON with
/// nothing around it (always, for images Kontor wrote), otherwise in canonical form.
fn image_json(text: &str) -> Result<Cow<'_, str>, String> {
    let single_line = !text.bytes().any(|b| b == b'\n' || b == b'\r');
    let trimmed = text.trim() == text;
    if single_line && trimmed && serde_json::from_str::<&RawValue>(text).is_ok() {
        Ok(Cow::Borrowed(text))
    } else {
        canonical_json(text).map(Cow::Owned)
    }
}

/// Appends the line of a record (no newline).
pub fn record_line(out: &mut Vec<u8>, r: &RecordRow) -> Result<(), String> {
    let data = canonical_json(&r.data)
        .map_err(|e| format!("record {}/{}: fields are {e}", r.entity, r.id))?;
    out.push(b'[');
    put_str(out, &r.entity);
    out.push(b',');
    put_str(out, &r.id);
    out.push(b',');
    put_opt_str(out, &r.owner_id);
    out.push(b',');
    put_int(out, r.created_at);
    out.push(b',');
    put_int(out, r.updated_at);
    out.push(b',');
    put_opt_str(out, &r.deleted_batch);
    out.push(b',');
    put_opt_int(out, r.deleted_at);
    out.push(b',');
    put_opt_str(out, &r.deleted_by);
    out.push(b',');
    out.extend_from_slice(data.as_bytes());
    out.push(b']');
    Ok(())
}

/// Appends the line of a journal entry (no newline).
pub fn journal_line(out: &mut Vec<u8>, r: &JournalRow) -> Result<(), String> {
    fn image<'a>(
        t: &'a Option<String>,
        seq: i64,
        which: &str,
    ) -> Result<Option<Cow<'a, str>>, String> {
        t.as_deref()
            .map(image_json)
            .transpose()
            .map_err(|e| format!("journal entry {seq}: {which} image is {e}"))
    }
    let before = image(&r.before, r.seq, "before")?;
    let after = image(&r.after, r.seq, "after")?;
    out.push(b'[');
    put_int(out, r.seq);
    out.push(b',');
    put_int(out, r.at);
    for s in [
        &r.actor,
        &r.origin,
        &r.batch,
        &r.entity,
        &r.record_id,
        &r.op,
    ] {
        out.push(b',');
        put_str(out, s);
    }
    out.push(b',');
    put_opt_str(out, &r.owner_id);
    for img in [&before, &after] {
        out.push(b',');
        match img {
            Some(t) => out.extend_from_slice(t.as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.push(b',');
    put_int(out, r.scrubbed);
    out.push(b']');
    Ok(())
}

pub fn counter_line(out: &mut Vec<u8>, r: &CounterRow) {
    out.push(b'[');
    put_str(out, &r.name);
    out.push(b',');
    put_int(out, r.value);
    out.push(b']');
}

pub fn credential_line(out: &mut Vec<u8>, r: &CredentialRow) {
    out.push(b'[');
    put_str(out, &r.user_id);
    out.push(b',');
    put_str(out, &r.password_hash);
    out.push(b',');
    put_int(out, r.changed_at);
    out.push(b']');
}

#[derive(Deserialize)]
struct RecordLine<'a>(
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    #[serde(borrow)] &'a RawValue,
);

#[derive(Deserialize)]
struct JournalLine<'a>(
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    #[serde(borrow)] Option<&'a RawValue>,
    #[serde(borrow)] Option<&'a RawValue>,
    i64,
);

/// Parses a record line back into a row; the fields stay in the line's (canonical) text.
pub fn parse_record(line: &str) -> Result<RecordRow, String> {
    let l: RecordLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if !l.8.get().starts_with('{') {
        return Err("a record's fields must be a JSON object".into());
    }
    Ok(RecordRow {
        entity: l.0,
        id: l.1,
        owner_id: l.2,
        created_at: l.3,
        updated_at: l.4,
        deleted_batch: l.5,
        deleted_at: l.6,
        deleted_by: l.7,
        data: l.8.get().to_string(),
    })
}

pub fn parse_journal(line: &str) -> Result<JournalRow, String> {
    let l: JournalLine = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(JournalRow {
        seq: l.0,
        at: l.1,
        actor: l.2,
        origin: l.3,
        batch: l.4,
        entity: l.5,
        record_id: l.6,
        op: l.7,
        owner_id: l.8,
        before: l.9.map(|r| r.get().to_string()),
        after: l.10.map(|r| r.get().to_string()),
        scrubbed: l.11,
    })
}

pub fn parse_counter(line: &str) -> Result<CounterRow, String> {
    let (name, value): (String, i64) = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(CounterRow { name, value })
}

pub fn parse_credential(line: &str) -> Result<CredentialRow, String> {
    let (user_id, password_hash, changed_at): (String, String, i64) =
        serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(CredentialRow {
        user_id,
        password_hash,
        changed_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_row(before: Option<&str>) -> JournalRow {
        JournalRow {
            seq: 7,
            at: 1_700_000_000_000_000,
            actor: "u1".into(),
            origin: "api".into(),
            batch: "b\"1".into(),
            entity: "companies".into(),
            record_id: "r1".into(),
            op: "update".into(),
            owner_id: None,
            before: before.map(str::to_string),
            after: Some(r#"{"a":1,"name":"Ä \n"}"#.into()),
            scrubbed: 0,
        }
    }

    #[test]
    fn lines_round_trip() {
        let r = journal_row(Some(r#"{"b":[1,2],"a":null}"#));
        let mut out = Vec::new();
        journal_line(&mut out, &r).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(parse_journal(&text).unwrap(), r);

        let rec = RecordRow {
            entity: "contacts".into(),
            id: "x".into(),
            owner_id: Some("o".into()),
            created_at: 1,
            updated_at: 2,
            deleted_batch: None,
            deleted_at: None,
            deleted_by: None,
            data: r#"{"z": 1, "a": "x"}"#.into(),
        };
        let mut out = Vec::new();
        record_line(&mut out, &rec).unwrap();
        let back = parse_record(std::str::from_utf8(&out).unwrap()).unwrap();
        assert_eq!(back.data, r#"{"a":"x","z":1}"#);
    }

    #[test]
    fn records_are_canonical_whatever_the_engine_prints() {
        let mut a = Vec::new();
        let mut b = Vec::new();
        let mut row = RecordRow {
            entity: "e".into(),
            id: "i".into(),
            owner_id: None,
            created_at: 0,
            updated_at: 0,
            deleted_batch: None,
            deleted_at: None,
            deleted_by: None,
            data: r#"{"name":"A","amount":"1.50","n":100000000000000000000}"#.into(),
        };
        record_line(&mut a, &row).unwrap();
        // How PostgreSQL's jsonb prints the same object.
        row.data = r#"{"n": 1e20, "name": "A", "amount": "1.50"}"#.into();
        record_line(&mut b, &row).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn a_multi_line_image_is_canonicalised_and_bad_json_refused() {
        let mut out = Vec::new();
        journal_line(&mut out, &journal_row(Some("{\n\"a\": 1}"))).unwrap();
        assert!(String::from_utf8(out).unwrap().contains(r#"{"a":1}"#));
        let mut out = Vec::new();
        let err = journal_line(&mut out, &journal_row(Some("{oops"))).unwrap_err();
        assert!(err.contains("journal entry 7: before image"), "{err}");
    }
}
