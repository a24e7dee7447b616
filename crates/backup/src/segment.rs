//! Journal segments: the entries a server shipped to its backup target in one go, with the
//! credentials set meanwhile and the counters as of the last entry (see `docs/ARCHIVE.md`).
//!
//! A segment is one zstd stream of JSON lines: a header, the journal lines (as in archives),
//! the counter lines, the credential lines, and a trailer holding the BLAKE3 of every byte
//! before it. Its name, `journal/<first seq>-<last seq>.jsonl.zst`, lets a restore pick the
//! segments it needs without opening the others. In an encrypted target the zstd stream is
//! wrapped in an age file encrypted to the target's journal key, and the name ends in `.age`.

use crate::error::{BackupError, BackupResult};
use crate::lines;
use crate::seal::{SealTo, Unseal};
use kontor_store::bulk::{CounterRow, CredentialRow, JournalRow};
use serde::{Deserialize, Serialize};
use std::io::Read;

pub const SEGMENT_FORMAT: &str = "kontor-journal-segment";
pub const SEGMENT_FORMAT_VERSION: u32 = 1;
/// Folder of the segments in a target.
pub const JOURNAL_DIR: &str = "journal";
const SUFFIX: &str = ".jsonl.zst";
const SEALED: &str = ".age";
/// Entries per segment at most; a shipper that is behind writes several.
pub const MAX_ENTRIES: usize = 20_000;
/// A segment that decompresses to more than this is refused as damaged.
const MAX_RAW: u64 = 1 << 30;

/// The first line of a segment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SegmentHeader {
    pub format: String,
    pub format_version: u32,
    pub kontor_version: String,
    pub schema_version: i64,
    /// The database's history this belongs to (the batch of its journal entry 1).
    pub origin: String,
    pub first_seq: i64,
    pub last_seq: i64,
    /// Times of the first and last entry, microseconds since the epoch.
    pub first_at: i64,
    pub last_at: i64,
    pub written_at: String,
    /// Lines of each kind that follow, in this order.
    pub journal: u64,
    pub counters: u64,
    pub credentials: u64,
}

#[derive(Debug, Clone)]
pub struct Segment {
    pub header: SegmentHeader,
    pub journal: Vec<JournalRow>,
    /// Every counter as of `last_seq`.
    pub counters: Vec<CounterRow>,
    /// Credentials set by the segment's entries (changed at or after `first_at`).
    pub credentials: Vec<CredentialRow>,
}

#[derive(Serialize, Deserialize)]
struct Trailer {
    blake3: String,
}

/// `journal/000000000101-000000000150.jsonl.zst` (`.jsonl.zst.age` when `sealed`)
pub fn segment_name(first: i64, last: i64, sealed: bool) -> String {
    let sealed = if sealed { SEALED } else { "" };
    format!("{JOURNAL_DIR}/{first:012}-{last:012}{SUFFIX}{sealed}")
}

/// The seq range a segment's name claims.
pub fn parse_segment_name(name: &str) -> Option<(i64, i64)> {
    let stem = name.strip_prefix(JOURNAL_DIR)?.strip_prefix('/')?;
    let stem = stem
        .strip_suffix(SEALED)
        .unwrap_or(stem)
        .strip_suffix(SUFFIX)?;
    let (a, b) = stem.split_once('-')?;
    let (first, last) = (a.parse().ok()?, b.parse().ok()?);
    (a.len() == 12 && b.len() == 12 && first >= 1 && first <= last).then_some((first, last))
}

impl Segment {
    /// Encodes the segment as its file's bytes, encrypted to `seal` when given.
    pub fn encode(&self, seal: Option<&SealTo>) -> BackupResult<Vec<u8>> {
        let mut raw = Vec::with_capacity(self.journal.len() * 512);
        let header = serde_json::to_vec(&self.header)
            .map_err(|e| BackupError::Io(format!("cannot encode a segment header: {e}")))?;
        raw.extend_from_slice(&header);
        raw.push(b'\n');
        for r in &self.journal {
            lines::journal_line(&mut raw, r)
                .map_err(|e| BackupError::Store(kontor_store::StoreError::Corrupt(e)))?;
            raw.push(b'\n');
        }
        for r in &self.counters {
            lines::counter_line(&mut raw, r);
            raw.push(b'\n');
        }
        for r in &self.credentials {
            lines::credential_line(&mut raw, r);
            raw.push(b'\n');
        }
        let trailer = Trailer {
            blake3: blake3::hash(&raw).to_hex().to_string(),
        };
        raw.extend_from_slice(
            &serde_json::to_vec(&trailer)
                .map_err(|e| BackupError::Io(format!("cannot encode a segment: {e}")))?,
        );
        raw.push(b'\n');
        let mut enc = zstd::stream::Encoder::new(Vec::with_capacity(raw.len() / 4), 3)
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        enc.include_checksum(true)
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        std::io::Write::write_all(&mut enc, &raw)
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        let compressed = enc
            .finish()
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        match seal {
            Some(seal) => seal.seal(&compressed),
            None => Ok(compressed),
        }
    }

    /// Decodes and checks the segment file `name` (as named in `place`), decrypting it with
    /// `unseal` when its name says it is encrypted: its trailer, its header, the line counts,
    /// the seqs (gap-free, matching the name).
    pub fn decode(
        place: &str,
        name: &str,
        bytes: &[u8],
        unseal: Option<&Unseal>,
    ) -> BackupResult<Segment> {
        let bad = |reason: String| BackupError::Corrupt {
            archive: place.to_string(),
            part: name.to_string(),
            reason,
        };
        let opened;
        let bytes = if name.ends_with(SEALED) {
            let unseal = unseal.ok_or_else(|| {
                BackupError::Key(format!("{name} in {place} is encrypted; no key was given"))
            })?;
            opened = unseal.open(bytes, MAX_RAW).map_err(bad)?;
            opened.as_slice()
        } else {
            bytes
        };
        let mut raw = Vec::new();
        zstd::stream::Decoder::new(bytes)
            .map_err(|e| bad(format!("not a zstd stream: {e}")))?
            .take(MAX_RAW + 1)
            .read_to_end(&mut raw)
            .map_err(|e| bad(format!("cannot decompress: {e}")))?;
        if raw.len() as u64 > MAX_RAW {
            return Err(bad("decompresses to more than 1 GiB".into()));
        }
        let body_end = raw
            .strip_suffix(b"\n")
            .and_then(|r| r.iter().rposition(|&b| b == b'\n'))
            .map(|i| i + 1)
            .ok_or_else(|| bad("has no trailer; it is truncated".into()))?;
        let trailer: Trailer = serde_json::from_slice(&raw[body_end..])
            .map_err(|_| bad("has no trailer; it is truncated".into()))?;
        if blake3::hash(&raw[..body_end]).to_hex().as_str() != trailer.blake3 {
            return Err(bad(
                "BLAKE3 differs from its trailer: the content is damaged".into(),
            ));
        }
        let text =
            std::str::from_utf8(&raw[..body_end]).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        let mut lines = text.split_terminator('\n');
        let header: SegmentHeader = lines
            .next()
            .ok_or_else(|| bad("is empty".into()))
            .and_then(|l| serde_json::from_str(l).map_err(|e| bad(format!("header: {e}"))))?;
        if header.format != SEGMENT_FORMAT {
            return Err(bad(format!(
                "is a {} file, not a journal segment",
                header.format
            )));
        }
        if header.format_version > SEGMENT_FORMAT_VERSION {
            return Err(BackupError::Version(format!(
                "{name} in {place} is segment format {}; this Kontor reads up to {SEGMENT_FORMAT_VERSION}",
                header.format_version
            )));
        }
        if parse_segment_name(name) != Some((header.first_seq, header.last_seq)) {
            return Err(bad(format!(
                "holds seqs {}..{}, which its name does not say",
                header.first_seq, header.last_seq
            )));
        }
        let mut seg = Segment {
            journal: Vec::with_capacity(header.journal.min(MAX_ENTRIES as u64) as usize),
            counters: Vec::new(),
            credentials: Vec::new(),
            header,
        };
        let h = seg.header.clone();
        for (n, line) in lines.enumerate() {
            let at = |e: String| bad(format!("line {}: {e}", n + 2));
            let n = n as u64;
            if n < h.journal {
                let row = lines::parse_journal(line).map_err(at)?;
                if row.seq != h.first_seq + n as i64 {
                    return Err(at(format!(
                        "journal seq {} where {} belongs; entries are missing",
                        row.seq,
                        h.first_seq + n as i64
                    )));
                }
                seg.journal.push(row);
            } else if n < h.journal + h.counters {
                seg.counters.push(lines::parse_counter(line).map_err(at)?);
            } else if n < h.journal + h.counters + h.credentials {
                seg.credentials
                    .push(lines::parse_credential(line).map_err(at)?);
            } else {
                return Err(at("more lines than the header says".into()));
            }
        }
        let got = (
            seg.journal.len() as u64,
            seg.counters.len() as u64,
            seg.credentials.len() as u64,
        );
        if got != (h.journal, h.counters, h.credentials)
            || h.journal as i64 != h.last_seq - h.first_seq + 1
        {
            return Err(bad(format!(
                "has {} entries, {} counters, {} credentials; the header says {} ({}..{}), {}, {}",
                got.0, got.1, got.2, h.journal, h.first_seq, h.last_seq, h.counters, h.credentials
            )));
        }
        Ok(seg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> JournalRow {
        JournalRow {
            seq,
            at: 1_700_000_000_000_000 + seq,
            actor: "u1".into(),
            origin: "api".into(),
            batch: "b".into(),
            entity: "contacts".into(),
            record_id: format!("r{seq}"),
            op: "create".into(),
            owner_id: None,
            before: None,
            after: Some(format!("{{\"n\":{seq}}}")),
            scrubbed: 0,
        }
    }

    fn segment(first: i64, last: i64) -> Segment {
        Segment {
            header: SegmentHeader {
                format: SEGMENT_FORMAT.into(),
                format_version: SEGMENT_FORMAT_VERSION,
                kontor_version: "0".into(),
                schema_version: 4,
                origin: "o".into(),
                first_seq: first,
                last_seq: last,
                first_at: 0,
                last_at: 0,
                written_at: String::new(),
                journal: (last - first + 1) as u64,
                counters: 1,
                credentials: 1,
            },
            journal: (first..=last).map(entry).collect(),
            counters: vec![CounterRow {
                name: "invoice_number".into(),
                value: 7,
            }],
            credentials: vec![CredentialRow {
                user_id: "u1".into(),
                password_hash: "$argon2id$x".into(),
                changed_at: 5,
            }],
        }
    }

    #[test]
    fn round_trips() {
        let s = segment(3, 9);
        let name = segment_name(3, 9, false);
        let back = Segment::decode("t", &name, &s.encode(None).unwrap(), None).unwrap();
        assert_eq!(back.header, s.header);
        assert_eq!(back.journal, s.journal);
        assert_eq!(back.counters, s.counters);
        assert_eq!(back.credentials, s.credentials);
    }

    #[test]
    fn names_parse_only_when_well_formed() {
        assert_eq!(
            parse_segment_name(&segment_name(1, 20, false)),
            Some((1, 20))
        );
        assert_eq!(parse_segment_name("journal/1-2.jsonl.zst"), None);
        assert_eq!(
            parse_segment_name("journal/000000000009-000000000002.jsonl.zst"),
            None
        );
        assert_eq!(parse_segment_name("snapshots/x.kontor.tar"), None);
    }

    #[test]
    fn damage_is_named() {
        let s = segment(1, 50);
        let bytes = s.encode(None).unwrap();
        let name = segment_name(1, 50, false);
        let truncated = Segment::decode("t", &name, &bytes[..bytes.len() - 9], None).unwrap_err();
        assert!(matches!(truncated, BackupError::Corrupt { ref part, .. } if *part == name));
        let mut flipped = bytes.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x10;
        assert!(matches!(
            Segment::decode("t", &name, &flipped, None).unwrap_err(),
            BackupError::Corrupt { .. }
        ));
        let renamed = Segment::decode("t", &segment_name(2, 51, false), &bytes, None).unwrap_err();
        assert!(renamed.to_string().contains("name"), "{renamed}");
    }

    #[test]
    fn an_encrypted_segment_needs_its_key_and_names_damage() {
        let me = age::x25519::Identity::generate();
        let mut keys = crate::seal::Keys::default();
        keys.add_recipients([me.to_public().to_string().as_str()])
            .unwrap();
        let key = keys.new_data_key("k").unwrap().unwrap();
        let s = segment(1, 4);
        let name = segment_name(1, 4, true);
        assert!(name.ends_with(".jsonl.zst.age"));
        assert_eq!(parse_segment_name(&name), Some((1, 4)));
        let bytes = s.encode(Some(&key.seal)).unwrap();
        let back = Segment::decode("t", &name, &bytes, Some(&key.unseal)).unwrap();
        assert_eq!(back.journal, s.journal);
        assert!(matches!(
            Segment::decode("t", &name, &bytes, None).unwrap_err(),
            BackupError::Key(_)
        ));
        let mut flipped = bytes.clone();
        let mid = flipped.len() - 20;
        flipped[mid] ^= 1;
        assert!(matches!(
            Segment::decode("t", &name, &flipped, Some(&key.unseal)).unwrap_err(),
            BackupError::Corrupt { ref part, .. } if *part == name
        ));
    }

    #[test]
    fn a_gap_inside_is_refused() {
        let mut s = segment(1, 5);
        s.journal[2].seq = 9;
        let err = Segment::decode(
            "t",
            &segment_name(1, 5, false),
            &s.encode(None).unwrap(),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
