//! Files 1C uploads with `mode=file`: names made safe (subfolders kept, traversal refused),
//! chunks appended (a file bigger than `file_limit` arrives in several posts), zip archives
//! unpacked with the same name rules and a bound on what they may unpack to.

use std::fs;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Longest accepted file name (all folders included) and deepest folder nesting.
const MAX_NAME: usize = 1024;
const MAX_DEPTH: usize = 16;
/// Most entries a zip may hold.
const MAX_ZIP_ENTRIES: usize = 100_000;

/// A file name from 1C as a relative path inside the upload folder. Backslashes count as
/// folder separators and leading separators are dropped (1C sends `goods/1/import___….xml`,
/// sometimes `\`-separated); `..`, drive letters, control characters and empty names are
/// refused with the reason.
pub fn safe_name(raw: &str) -> Result<PathBuf, String> {
    let unified = raw.replace('\\', "/");
    let trimmed = unified.trim_matches('/');
    if trimmed.is_empty() {
        return Err("the file name is empty".into());
    }
    if trimmed.len() > MAX_NAME {
        return Err(format!(
            "the file name is longer than {MAX_NAME} bytes: {}…",
            clip(trimmed, 60)
        ));
    }
    if trimmed.chars().any(|c| c.is_control()) {
        return Err(format!(
            "the file name '{}' holds control characters",
            clip(trimmed, 60)
        ));
    }
    let mut out = PathBuf::new();
    for part in trimmed.split('/') {
        match part {
            "" | "." => continue,
            ".." => {
                return Err(format!(
                    "the file name '{}' leads out of the upload folder (..); refused",
                    clip(trimmed, 200)
                ))
            }
            p if p.contains(':') => {
                return Err(format!(
                    "the file name '{}' names a drive or stream (:); refused",
                    clip(trimmed, 200)
                ))
            }
            p => out.push(p),
        }
    }
    // Belt and braces: nothing but plain names may remain.
    if out.components().count() == 0
        || out.components().count() > MAX_DEPTH
        || out.components().any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(format!(
            "the file name '{}' is not a plain relative path of at most {MAX_DEPTH} parts",
            clip(trimmed, 200)
        ));
    }
    Ok(out)
}

fn clip(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Appends `chunk` to `dir/name` (created with its folders), refusing to let the file grow
/// beyond `max_bytes`. Returns the file's new size.
pub fn append(dir: &Path, name: &Path, chunk: &[u8], max_bytes: u64) -> Result<u64, String> {
    let path = dir.join(name);
    let shown = name.display();
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create the folder for {shown}: {e}"))?;
    }
    let before = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let after = before.saturating_add(chunk.len() as u64);
    if after > max_bytes {
        return Err(format!(
            "{shown} would grow to {after} bytes, more than this server takes for one file ({max_bytes})"
        ));
    }
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {shown} for writing: {e}"))?;
    file.write_all(chunk)
        .map_err(|e| format!("cannot write {shown}: {e}"))?;
    Ok(after)
}

/// Whether the file starts like a zip archive.
pub fn is_zip(path: &Path) -> bool {
    let mut head = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == *b"PK\x03\x04" || head == *b"PK\x05\x06")
}

/// The zip archives lying at the top of `dir`.
pub fn zips_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && is_zip(p))
        .collect();
    out.sort();
    out
}

/// Unpacks `archive` into `dir` (entry names made safe as uploads are; existing files
/// replaced), then removes the archive — also when it is refused, so a bad archive is
/// reported once and does not block the exchange's next files. The unpacked bytes are counted
/// as they are written, so an archive that says little but unpacks to more than `max_bytes`
/// is stopped there. Returns the names unpacked.
pub fn unzip(archive: &Path, dir: &Path, max_bytes: u64) -> Result<Vec<String>, String> {
    let result = unzip_into(archive, dir, max_bytes);
    let removed = fs::remove_file(archive);
    let names = result?;
    removed.map_err(|e| format!("cannot remove {} after unpacking: {e}", archive.display()))?;
    Ok(names)
}

fn unzip_into(archive: &Path, dir: &Path, max_bytes: u64) -> Result<Vec<String>, String> {
    let shown = archive
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let file = fs::File::open(archive).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("{shown} is not a readable zip archive: {e}"))?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(format!(
            "{shown} holds {} entries, more than {MAX_ZIP_ENTRIES}",
            zip.len()
        ));
    }
    let mut names = Vec::new();
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("{shown}: entry {}: {e}", i + 1))?;
        if entry.is_dir() {
            continue;
        }
        let raw = String::from_utf8_lossy(entry.name_raw()).to_string();
        let name = safe_name(&raw).map_err(|e| format!("{shown}: {e}"))?;
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create the folder for {}: {e}", name.display()))?;
        }
        let mut out = fs::File::create(&path)
            .map_err(|e| format!("cannot create {}: {e}", name.display()))?;
        let room = max_bytes.saturating_sub(total);
        let copied = std::io::copy(&mut (&mut entry).take(room.saturating_add(1)), &mut out)
            .map_err(|e| format!("{shown}: cannot unpack {raw}: {e}"))?;
        total += copied;
        if copied > room {
            drop(out);
            let _ = fs::remove_file(&path);
            return Err(format!(
                "{shown} unpacks to more than this server takes ({max_bytes} bytes); refused"
            ));
        }
        names.push(name.to_string_lossy().replace('\\', "/"));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_subfolders_and_refuse_traversal() {
        assert_eq!(
            safe_name("goods/1/import___a.xml").unwrap(),
            PathBuf::from("goods/1/import___a.xml")
        );
        assert_eq!(
            safe_name("\\import_files\\e2\\x.jpeg").unwrap(),
            PathBuf::from("import_files/e2/x.jpeg")
        );
        assert_eq!(safe_name("./a//b.xml").unwrap(), PathBuf::from("a/b.xml"));
        for bad in [
            "../etc/passwd",
            "a/../../b",
            "..\\..\\x",
            "",
            "/",
            "C:\\x",
            "a\0b",
        ] {
            assert!(safe_name(bad).is_err(), "{bad:?} accepted");
        }
        assert!(safe_name(&"a/".repeat(20)).is_err());
    }

    #[test]
    fn chunks_append_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let name = PathBuf::from("sub/f.xml");
        assert_eq!(append(dir.path(), &name, b"abc", 6).unwrap(), 3);
        assert_eq!(append(dir.path(), &name, b"def", 6).unwrap(), 6);
        assert!(append(dir.path(), &name, b"g", 6).is_err());
        assert_eq!(fs::read(dir.path().join(&name)).unwrap(), b"abcdef");
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn zips_unpack_into_the_folder_and_refuse_escapes_and_bombs() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("upload.zip");
        fs::write(
            &archive,
            zip_of(&[("import.xml", b"<a/>"), ("goods/1/offers.xml", b"<b/>")]),
        )
        .unwrap();
        assert!(is_zip(&archive));
        assert_eq!(zips_in(dir.path()), vec![archive.clone()]);
        let names = unzip(&archive, dir.path(), 1000).unwrap();
        assert_eq!(names, vec!["import.xml", "goods/1/offers.xml"]);
        assert_eq!(
            fs::read(dir.path().join("goods/1/offers.xml")).unwrap(),
            b"<b/>"
        );
        assert!(!archive.exists());

        fs::write(&archive, zip_of(&[("../evil.xml", b"x")])).unwrap();
        let e = unzip(&archive, dir.path(), 1000).unwrap_err();
        assert!(e.contains("leads out"), "{e}");
        assert!(!dir.path().parent().unwrap().join("evil.xml").exists());

        let big = vec![b'a'; 10_000];
        fs::write(&archive, zip_of(&[("big.xml", &big)])).unwrap();
        let e = unzip(&archive, dir.path(), 5_000).unwrap_err();
        assert!(e.contains("more than"), "{e}");
        assert!(!dir.path().join("big.xml").exists());

        fs::write(&archive, b"PK\x03\x04 this is no zip").unwrap();
        assert!(unzip(&archive, dir.path(), 1000).is_err());
    }
}
