//! Where a backup target's files live: a folder (local disk or a mounted share), or an
//! S3-compatible object store (`s3://bucket/prefix`). Both give the same small set of
//! operations on keys (`journal/…`, `snapshots/…`), and both make a file appear only whole:
//! a folder through a temporary name, fsync and rename; an object store because an upload
//! becomes visible only when it completes.
//!
//! The object store is reached with the `object_store` crate, configured from the standard
//! `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION`, `AWS_ALLOW_HTTP` for a plain-HTTP endpoint such as a local test server). Its
//! calls run on a small runtime of their own, so the synchronous code here can wait for them
//! from any thread.

use crate::error::{BackupError, BackupResult};
use crate::format::sync_dir;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// A temporary file untouched this long belongs to a writer that died.
pub const STALE_PARTIAL: Duration = Duration::from_secs(3600);
/// Uploads larger than this go in parts.
const PART: usize = 16 << 20;

#[derive(Clone)]
pub enum Storage {
    Local(PathBuf),
    S3(Arc<S3>),
}

pub struct S3 {
    store: AmazonS3,
    bucket: String,
    /// Key prefix inside the bucket, without slashes at either end ("" for the whole bucket).
    prefix: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

/// The runtime the object store's calls run on (never dropped: it lives as long as the process).
fn runtime() -> BackupResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kontor-s3")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| BackupError::Io(format!("cannot start the object store runtime: {e}")))
}

/// Waits for `fut` on the object store's runtime, from any thread (a runtime's own included).
fn wait<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> BackupResult<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime()?.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| BackupError::Io("an object store call was abandoned".into()))
}

impl Storage {
    /// `s3://bucket[/prefix]` or a folder.
    pub fn parse(spec: &str) -> BackupResult<Storage> {
        let Some(rest) = spec.strip_prefix("s3://") else {
            return Ok(Storage::Local(PathBuf::from(spec)));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BackupError::Refused(format!(
                "{spec}: no bucket; write s3://BUCKET/PREFIX"
            )));
        }
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| {
                BackupError::Refused(format!(
                    "{spec}: the object store is not configured ({e}); set AWS_ENDPOINT, \
                     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION (and AWS_ALLOW_HTTP=true \
                     for a plain-HTTP endpoint)"
                ))
            })?;
        Ok(Storage::S3(Arc::new(S3 {
            store,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })))
    }

    pub fn describe(&self) -> String {
        match self {
            Storage::Local(p) => p.display().to_string(),
            Storage::S3(s) if s.prefix.is_empty() => format!("s3://{}", s.bucket),
            Storage::S3(s) => format!("s3://{}/{}", s.bucket, s.prefix),
        }
    }

    /// The folder, when the files are on a file system.
    pub fn local(&self) -> Option<&Path> {
        match self {
            Storage::Local(p) => Some(p),
            Storage::S3(_) => None,
        }
    }

    fn object(s: &S3, key: &str) -> ObjectPath {
        if s.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", s.prefix))
        }
    }

    fn s3_err(&self, key: &str, e: impl std::fmt::Display) -> BackupError {
        BackupError::Io(format!("{}/{key}: {e}", self.describe()))
    }

    /// Writes `key` whole and durably.
    pub fn put(&self, key: &str, bytes: &[u8]) -> BackupResult<()> {
        match self {
            Storage::Local(root) => put_file(&root.join(key), bytes),
            Storage::S3(s) => {
                let (s3, path, data) = (s.clone(), Self::object(s, key), bytes.to_vec());
                wait(async move { s3.store.put(&path, PutPayload::from(data)).await })?
                    .map(|_| ())
                    .map_err(|e| self.s3_err(key, e))
            }
        }
    }

    /// The content of `key`, `None` when there is no such file.
    pub fn get_opt(&self, key: &str) -> BackupResult<Option<Vec<u8>>> {
        match self {
            Storage::Local(root) => match std::fs::read(root.join(key)) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BackupError::io(root.join(key).display(), e)),
            },
            Storage::S3(s) => {
                let (s3, path) = (s.clone(), Self::object(s, key));
                let got = wait(async move {
                    match s3.store.get(&path).await {
                        Ok(r) => r.bytes().await.map(|b| Some(b.to_vec())),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                })?;
                got.map_err(|e| self.s3_err(key, e))
            }
        }
    }

    pub fn get(&self, key: &str) -> BackupResult<Vec<u8>> {
        self.get_opt(key)?
            .ok_or_else(|| BackupError::Io(format!("{}/{key}: no such file", self.describe())))
    }

    pub fn exists(&self, key: &str) -> BackupResult<bool> {
        match self {
            Storage::Local(root) => Ok(root.join(key).exists()),
            Storage::S3(s) => {
                let (s3, path) = (s.clone(), Self::object(s, key));
                match wait(async move { s3.store.head(&path).await })? {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(self.s3_err(key, e)),
                }
            }
        }
    }

    /// Names of the files directly in `dir` ("" for the top), temporary ones left out, sorted.
    pub fn list(&self, dir: &str) -> BackupResult<Vec<String>> {
        let mut names = match self {
            Storage::Local(root) => {
                let path = root.join(dir);
                let entries = match std::fs::read_dir(&path) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(BackupError::io(path.display(), e)),
                };
                let mut names = Vec::new();
                for e in entries {
                    let e = e.map_err(|e| BackupError::io(path.display(), e))?;
                    names.push(e.file_name().to_string_lossy().to_string());
                }
                names
            }
            Storage::S3(s) => {
                let key = if dir.is_empty() {
                    String::new()
                } else {
                    format!("{dir}/")
                };
                let prefix = Self::object(s, dir.trim_end_matches('/'));
                let s3 = s.clone();
                let listed = wait(async move {
                    let prefix = if key.is_empty() && s3.prefix.is_empty() {
                        None
                    } else {
                        Some(prefix)
                    };
                    s3.store.list_with_delimiter(prefix.as_ref()).await
                })?
                .map_err(|e| self.s3_err(dir, e))?;
                let mut names: Vec<String> = listed
                    .objects
                    .iter()
                    .filter_map(|o| o.location.filename().map(str::to_string))
                    .collect();
                names.extend(
                    listed
                        .common_prefixes
                        .iter()
                        .filter_map(|p| p.filename().map(str::to_string)),
                );
                names
            }
        };
        names.retain(|n| !n.starts_with('.'));
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes `key`; one already gone is not an error.
    pub fn delete(&self, key: &str) -> BackupResult<()> {
        match self {
            Storage::Local(root) => remove_if_there(&root.join(key)),
            Storage::S3(s) => {
                let (s3, path) = (s.clone(), Self::object(s, key));
                match wait(async move { s3.store.delete(&path).await })? {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.s3_err(key, e)),
                }
            }
        }
    }

    /// Uploads the local file `from` as `key`, in parts (memory stays at a part or two); the
    /// object appears only when the upload completes. A folder moves the file into place.
    pub fn upload(&self, key: &str, from: &Path) -> BackupResult<()> {
        match self {
            Storage::Local(root) => {
                let to = root.join(key);
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir.display(), e))?;
                }
                std::fs::rename(from, &to).map_err(|e| BackupError::io(to.display(), e))?;
                sync_dir(&to).map_err(|e| BackupError::io(to.display(), e))
            }
            Storage::S3(s) => {
                let (s3, path, from) = (s.clone(), Self::object(s, key), from.to_path_buf());
                let shown = from.display().to_string();
                let done = wait(async move {
                    let mut file = File::open(&from).map_err(|e| e.to_string())?;
                    let upload = s3
                        .store
                        .put_multipart(&path)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
                    let mut buf = vec![0u8; PART];
                    loop {
                        let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                        if n == 0 {
                            break;
                        }
                        w.wait_for_capacity(2).await.map_err(|e| e.to_string())?;
                        w.write(&buf[..n]);
                    }
                    w.finish().await.map(|_| ()).map_err(|e| e.to_string())
                })?;
                done.map_err(|e| {
                    BackupError::Io(format!(
                        "uploading {shown} to {}/{key}: {e}",
                        self.describe()
                    ))
                })
            }
        }
    }

    /// Downloads `key` into the local file `to` (streamed).
    pub fn download(&self, key: &str, to: &Path) -> BackupResult<()> {
        match self {
            Storage::Local(root) => std::fs::copy(root.join(key), to)
                .map(|_| ())
                .map_err(|e| BackupError::io(root.join(key).display(), e)),
            Storage::S3(s) => {
                let (s3, path, to) = (s.clone(), Self::object(s, key), to.to_path_buf());
                let done = wait(async move {
                    use futures_util::StreamExt;
                    let got = s3.store.get(&path).await.map_err(|e| e.to_string())?;
                    let mut file = File::create(&to).map_err(|e| e.to_string())?;
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| e.to_string())?;
                        file.write_all(&chunk).map_err(|e| e.to_string())?;
                    }
                    file.sync_all().map_err(|e| e.to_string())
                })?;
                done.map_err(|e| self.s3_err(key, e))
            }
        }
    }

    /// Appends a line to the log `key`. In a folder: one file, appended and synced. In an
    /// object store, where objects cannot grow: one small object per line under `key.d/`,
    /// named by time, so concurrent writers never overwrite each other.
    pub fn append_line(&self, key: &str, line: &[u8]) -> BackupResult<()> {
        match self {
            Storage::Local(root) => {
                let path = root.join(key);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir.display(), e))?;
                }
                let write = || -> std::io::Result<()> {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)?;
                    f.write_all(line)?;
                    f.write_all(b"\n")?;
                    f.sync_data()
                };
                write().map_err(|e| BackupError::io(path.display(), e))
            }
            Storage::S3(_) => {
                let name = format!(
                    "{key}.d/{}-{}.json",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
                    &kontor_domain::record::new_id()[24..]
                );
                self.put(&name, line)
            }
        }
    }

    /// The lines of the log `key`, oldest first; at most the last `n`.
    pub fn read_lines(&self, key: &str, n: usize) -> BackupResult<Vec<String>> {
        match self {
            Storage::Local(_) => {
                let text = self.get_opt(key)?.unwrap_or_default();
                let lines: Vec<String> = String::from_utf8_lossy(&text)
                    .lines()
                    .map(str::to_string)
                    .collect();
                let skip = lines.len().saturating_sub(n);
                Ok(lines.into_iter().skip(skip).collect())
            }
            Storage::S3(_) => {
                let dir = format!("{key}.d");
                let names = self.list(&dir)?;
                let skip = names.len().saturating_sub(n);
                names
                    .into_iter()
                    .skip(skip)
                    .map(|name| {
                        self.get(&format!("{dir}/{name}"))
                            .map(|b| String::from_utf8_lossy(&b).to_string())
                    })
                    .collect()
            }
        }
    }

    /// Temporary files in `dir` left by writers that died (a folder only: an object store
    /// shows no unfinished upload).
    pub fn stale_partials(&self, dir: &str) -> BackupResult<Vec<PathBuf>> {
        let Storage::Local(root) = self else {
            return Ok(Vec::new());
        };
        let dir = root.join(dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BackupError::io(dir.display(), e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with('.') && name.ends_with(".partial")) {
                continue;
            }
            let modified = e.metadata().and_then(|m| m.modified()).ok();
            if modified.is_some_and(|m| now.duration_since(m).unwrap_or_default() > STALE_PARTIAL) {
                out.push(e.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Writes a file durably: temporary name, fsync, rename, fsync of the folder.
pub fn put_file(path: &Path, bytes: &[u8]) -> BackupResult<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| BackupError::io(dir.display(), e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.partial"));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)?;
        sync_dir(path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        BackupError::io(path.display(), e)
    })
}

/// Removes a file; one already gone is not an error.
pub fn remove_if_there(path: &Path) -> BackupResult<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(BackupError::io(path.display(), e)),
    }
}
