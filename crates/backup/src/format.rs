//! The archive container: a POSIX tar file (inspectable with `tar tvf`) holding a marker, the
//! parts (zstd-compressed canonical lines, see [`crate::lines`]), `manifest.json` and
//! `manifest.json.b3` (the manifest's own BLAKE3). It is written under a temporary name,
//! fsynced and renamed, so a name ending in [`ARCHIVE_SUFFIX`] is always a complete archive.

use crate::error::{BackupError, BackupResult};
use crate::seal::{KeyInfo, Keys, NewKey, SealTo, Unseal, AGE};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "kontor-archive";
pub const FORMAT_VERSION: u32 = 1;
pub const ARCHIVE_SUFFIX: &str = ".kontor.tar";
/// zstd level of snapshots unless told otherwise: level 1 writes a 1.2 GB database about 20%
/// faster than level 3 for an archive 1% larger (BENCHMARKS.md).
pub const DEFAULT_LEVEL: i32 = 1;
const MARKER: &str = "KONTOR-ARCHIVE";
const MANIFEST: &str = "manifest.json";
const MANIFEST_SEAL: &str = "manifest.json.b3";
/// A part is closed once this many bytes of lines went into it, so memory stays flat.
pub const PART_BYTES: u64 = 32 << 20;
/// The most lines a reader accepts in one part (a part is `PART_BYTES` plus its last line), so
/// a hostile manifest cannot make a reader allocate without bound.
const MAX_PART_RAW: u64 = 1 << 30;

/// What an archive holds and how to check it. Field meanings are in `docs/ARCHIVE.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub kind: String,
    pub kontor_version: String,
    pub schema_version: i64,
    pub created_at: String,
    pub source_engine: String,
    /// The journal seq the archive is consistent at (0: empty journal).
    pub seq: i64,
    /// The time of that entry (RFC 3339), when there is one.
    pub seq_at: Option<String>,
    /// Rows per table.
    pub tables: BTreeMap<String, u64>,
    /// `blake3:<hex>` over the canonical lines of every table.
    pub digest: String,
    pub compression: String,
    /// `null`: parts are not encrypted; `"age"`: each part is an age file encrypted to the
    /// archive's data key, which `key` describes.
    pub encryption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyInfo>,
    pub parts: Vec<PartInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartInfo {
    pub name: String,
    pub table: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<i64>,
    pub rows: u64,
    /// Bytes of lines before compression.
    pub raw_bytes: u64,
    /// Bytes stored in the archive.
    pub bytes: u64,
    /// BLAKE3 of the stored bytes, hex.
    pub blake3: String,
}

/// The file name of a snapshot: creation time and seq, sortable.
pub fn archive_name(created: chrono::DateTime<chrono::Utc>, seq: i64) -> String {
    format!(
        "kontor-{}-seq{seq:012}{ARCHIVE_SUFFIX}",
        created.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// Writes an archive part by part. Nothing is visible under the final name until
/// [`ArchiveWriter::commit`]; dropping the writer removes the temporary file.
pub struct ArchiveWriter {
    tar: Option<tar::Builder<BufWriter<File>>>,
    temp: PathBuf,
    path: PathBuf,
    level: i32,
    mtime: u64,
    parts: Vec<PartInfo>,
    current: Option<OpenPart>,
    seal: Option<(SealTo, KeyInfo)>,
}

struct OpenPart {
    info: PartInfo,
    encoder: zstd::Encoder<'static, Vec<u8>>,
}

impl ArchiveWriter {
    /// Starts `path` (under a temporary name beside it), its parts encrypted to `key` when
    /// given. Refuses an existing archive.
    pub fn create(
        path: &Path,
        level: i32,
        mtime: u64,
        key: Option<&NewKey>,
    ) -> BackupResult<ArchiveWriter> {
        if path.exists() {
            return Err(BackupError::Refused(format!(
                "{} already exists",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let temp = path.with_file_name(format!(".{name}.partial"));
        let file = File::create(&temp).map_err(|e| BackupError::io(temp.display(), e))?;
        let mut w = ArchiveWriter {
            tar: Some(tar::Builder::new(BufWriter::with_capacity(1 << 20, file))),
            temp,
            path: path.to_path_buf(),
            level,
            mtime,
            parts: Vec::new(),
            current: None,
            seal: key.map(|k| (k.seal.clone(), k.info.clone())),
        };
        w.append(MARKER, format!("{FORMAT} {FORMAT_VERSION}\n").as_bytes())?;
        if let Some(k) = key {
            w.append(&k.info.file, &k.wrapped)?;
        }
        Ok(w)
    }

    fn append(&mut self, name: &str, data: &[u8]) -> BackupResult<()> {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(name)
            .map_err(|e| BackupError::Io(format!("part name {name}: {e}")))?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_cksum();
        let temp = self.temp.display().to_string();
        self.tar
            .as_mut()
            .ok_or_else(|| BackupError::Io("archive already finished".into()))?
            .append(&header, data)
            .map_err(|e| BackupError::io(temp, e))
    }

    /// Starts a new part; the previous one is finished first.
    pub fn start_part(&mut self, info: PartInfo) -> BackupResult<()> {
        self.finish_part()?;
        let encoder = zstd::Encoder::new(Vec::new(), self.level)
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        self.current = Some(OpenPart { info, encoder });
        Ok(())
    }

    /// Bytes of lines in the open part so far.
    pub fn part_bytes(&self) -> u64 {
        self.current.as_ref().map_or(0, |p| p.info.raw_bytes)
    }

    pub fn has_part(&self) -> bool {
        self.current.is_some()
    }

    /// Appends a line (a newline is added) to the open part.
    pub fn line(&mut self, line: &[u8], seq: Option<i64>) -> BackupResult<()> {
        let part = self
            .current
            .as_mut()
            .ok_or_else(|| BackupError::Io("no part is open".into()))?;
        part.encoder
            .write_all(line)
            .and_then(|()| part.encoder.write_all(b"\n"))
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        part.info.rows += 1;
        part.info.raw_bytes += line.len() as u64 + 1;
        if let Some(seq) = seq {
            part.info.first_seq.get_or_insert(seq);
            part.info.last_seq = Some(seq);
        }
        Ok(())
    }

    /// Compresses the open part to its end and appends it to the archive.
    pub fn finish_part(&mut self) -> BackupResult<()> {
        let Some(OpenPart { mut info, encoder }) = self.current.take() else {
            return Ok(());
        };
        let mut data = encoder
            .finish()
            .map_err(|e| BackupError::Io(format!("zstd: {e}")))?;
        if let Some((seal, _)) = &self.seal {
            data = seal.seal(&data)?;
        }
        info.bytes = data.len() as u64;
        info.blake3 = blake3::hash(&data).to_hex().to_string();
        self.append(&info.name.clone(), &data)?;
        self.parts.push(info);
        Ok(())
    }

    /// Writes the manifest (with the parts written) and its seal, fsyncs, and renames the file
    /// to its final name.
    pub fn commit(mut self, mut manifest: Manifest) -> BackupResult<Manifest> {
        self.finish_part()?;
        manifest.parts = std::mem::take(&mut self.parts);
        if let Some((_, info)) = &self.seal {
            manifest.encryption = Some(AGE.into());
            manifest.key = Some(info.clone());
        }
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| BackupError::Io(format!("manifest: {e}")))?;
        self.append(MANIFEST, &text)?;
        let seal = format!("{}\n", blake3::hash(&text).to_hex());
        self.append(MANIFEST_SEAL, seal.as_bytes())?;
        let temp = self.temp.display().to_string();
        let tar = self
            .tar
            .take()
            .ok_or_else(|| BackupError::Io("archive already finished".into()))?;
        let file = tar
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .map_err(|e| BackupError::io(&temp, e))?;
        file.sync_all().map_err(|e| BackupError::io(&temp, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(|e| BackupError::io(&temp, e))?;
        sync_dir(&self.path).map_err(|e| BackupError::io(self.path.display(), e))?;
        Ok(manifest)
    }
}

impl Drop for ArchiveWriter {
    fn drop(&mut self) {
        if self.tar.is_some() {
            self.tar = None;
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// fsyncs the directory holding `path`, so a rename in it is durable.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// An archive opened for reading: its manifest checked against its seal, and where each part
/// lies in the file.
pub struct ArchiveReader {
    file: File,
    shown: String,
    pub manifest: Manifest,
    offsets: HashMap<String, (u64, u64)>,
    unseal: Option<Unseal>,
}

impl ArchiveReader {
    pub fn open(path: &Path) -> BackupResult<ArchiveReader> {
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|e| BackupError::io(&shown, e))?;
        let corrupt = |part: &str, reason: String| BackupError::Corrupt {
            archive: shown.clone(),
            part: part.to_string(),
            reason,
        };
        let mut offsets = HashMap::new();
        let mut archive = tar::Archive::new(&file);
        let entries = archive
            .entries_with_seek()
            .map_err(|e| corrupt("archive structure", e.to_string()))?;
        let mut marker = None;
        let mut manifest_text = None;
        let mut seal = None;
        for entry in entries {
            let mut entry = entry.map_err(|e| corrupt("archive structure", e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| corrupt("archive structure", e.to_string()))?
                .to_string_lossy()
                .to_string();
            let small = |entry: &mut tar::Entry<&File>| -> BackupResult<String> {
                if entry.size() > 64 << 20 {
                    return Err(corrupt(&name, "implausibly large".into()));
                }
                let mut s = String::new();
                entry
                    .read_to_string(&mut s)
                    .map_err(|e| corrupt(&name, format!("unreadable: {e}")))?;
                Ok(s)
            };
            match name.as_str() {
                MARKER => marker = Some(small(&mut entry)?),
                MANIFEST => manifest_text = Some(small(&mut entry)?),
                MANIFEST_SEAL => seal = Some(small(&mut entry)?),
                _ => {
                    offsets.insert(name.clone(), (entry.raw_file_position(), entry.size()));
                }
            }
        }
        let marker = marker.ok_or_else(|| {
            BackupError::Version(format!("{shown} is not a Kontor archive (no {MARKER})"))
        })?;
        let mut words = marker.split_whitespace();
        if words.next() != Some(FORMAT) {
            return Err(BackupError::Version(format!(
                "{shown} is not a Kontor archive"
            )));
        }
        let version: u32 = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        if version == 0 || version > FORMAT_VERSION {
            return Err(BackupError::Version(format!(
                "{shown} has archive format {version}; this Kontor reads format {FORMAT_VERSION} and older — restore it with a newer Kontor"
            )));
        }
        let text = manifest_text.ok_or_else(|| {
            corrupt(
                MANIFEST,
                "missing (the archive is incomplete or truncated)".into(),
            )
        })?;
        let seal = seal.ok_or_else(|| corrupt(MANIFEST_SEAL, "missing".into()))?;
        if blake3::hash(text.as_bytes()).to_hex().as_str() != seal.trim() {
            return Err(corrupt(MANIFEST, "BLAKE3 does not match its seal".into()));
        }
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| corrupt(MANIFEST, format!("unreadable: {e}")))?;
        if manifest.schema_version > kontor_store::SCHEMA_VERSION {
            return Err(BackupError::Version(format!(
                "{shown} was written by Kontor {} at schema version {}; this Kontor ({}) knows schema version {} — restore it with Kontor {} or newer",
                manifest.kontor_version,
                manifest.schema_version,
                env!("CARGO_PKG_VERSION"),
                kontor_store::SCHEMA_VERSION,
                manifest.kontor_version
            )));
        }
        let file_len = file
            .metadata()
            .map_err(|e| BackupError::io(&shown, e))?
            .len();
        for p in &manifest.parts {
            if p.raw_bytes > MAX_PART_RAW {
                return Err(corrupt(
                    &p.name,
                    format!(
                        "claims {} bytes of lines; parts hold at most {MAX_PART_RAW}",
                        p.raw_bytes
                    ),
                ));
            }
            match offsets.get(&p.name) {
                Some((offset, size)) if offset.saturating_add(*size) > file_len => {
                    return Err(corrupt(
                        &p.name,
                        "runs past the end of the file (truncated)".into(),
                    ))
                }
                None => return Err(corrupt(&p.name, "missing from the archive".into())),
                Some((_, size)) if *size != p.bytes => {
                    return Err(corrupt(
                        &p.name,
                        format!("{size} bytes stored, the manifest says {}", p.bytes),
                    ))
                }
                Some(_) => {}
            }
        }
        match (manifest.encryption.as_deref(), &manifest.key) {
            (None, _) => {}
            (Some(AGE), Some(key)) => {
                if !offsets.contains_key(&key.file) {
                    return Err(corrupt(&key.file, "missing from the archive".into()));
                }
            }
            (Some(AGE), None) => {
                return Err(corrupt(MANIFEST, "encrypted, but names no key".into()))
            }
            (Some(other), _) => {
                return Err(BackupError::Version(format!(
                    "{shown} is encrypted with {other:?}; this Kontor knows age encryption only"
                )))
            }
        }
        Ok(ArchiveReader {
            file,
            shown,
            manifest,
            offsets,
            unseal: None,
        })
    }

    /// Whether the parts are encrypted (then [`ArchiveReader::unlock`] must succeed before
    /// they can be read).
    pub fn is_encrypted(&self) -> bool {
        self.manifest.key.is_some()
    }

    /// Opens the archive's data key with `keys`; nothing to do for an unencrypted archive.
    pub fn unlock(&mut self, keys: &Keys) -> BackupResult<()> {
        let Some(info) = self.manifest.key.clone() else {
            return Ok(());
        };
        let wrapped = self.stored(&info.file)?;
        self.unseal = Some(keys.open(&info, &wrapped, &self.shown)?);
        Ok(())
    }

    /// The stored bytes of entry `name`.
    fn stored(&mut self, name: &str) -> BackupResult<Vec<u8>> {
        let corrupt = |reason: String| BackupError::Corrupt {
            archive: self.shown.clone(),
            part: name.to_string(),
            reason,
        };
        let (offset, size) = *self
            .offsets
            .get(name)
            .ok_or_else(|| corrupt("missing from the archive".into()))?;
        let mut stored = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut stored))
            .map_err(|e| corrupt(format!("unreadable (truncated?): {e}")))?;
        Ok(stored)
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// A part's lines, after checking its BLAKE3 and its size before and after decompression.
    pub fn read_part(&mut self, part: &PartInfo) -> BackupResult<Vec<u8>> {
        let mut stored = self.stored(&part.name)?;
        let corrupt = |reason: String| BackupError::Corrupt {
            archive: self.shown.clone(),
            part: part.name.clone(),
            reason,
        };
        if blake3::hash(&stored).to_hex().as_str() != part.blake3 {
            return Err(corrupt("BLAKE3 does not match the manifest".into()));
        }
        if self.is_encrypted() {
            let unseal = self.unseal.as_ref().ok_or_else(|| {
                BackupError::Key(format!("{} is encrypted and was not unlocked", self.shown))
            })?;
            stored = unseal.open(&stored, MAX_PART_RAW).map_err(corrupt)?;
        }
        let mut lines = Vec::with_capacity(usize::try_from(part.raw_bytes).unwrap_or(0));
        zstd::Decoder::new(stored.as_slice())
            .map_err(|e| corrupt(format!("zstd: {e}")))?
            .take(part.raw_bytes + 1)
            .read_to_end(&mut lines)
            .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        if lines.len() as u64 != part.raw_bytes {
            return Err(corrupt(format!(
                "{} bytes after decompression, the manifest says {}",
                lines.len(),
                part.raw_bytes
            )));
        }
        Ok(lines)
    }
}
