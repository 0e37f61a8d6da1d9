//! Deployment packages on disk, content-addressed by SHA-256.
//!
//! `code/<hex>.zip` is the package as uploaded (served back by GetFunction);
//! `code/<hex>/` is its extracted tree, which environments run from. Both are
//! written under a temporary name and renamed into place, so a crash never
//! leaves a half-written package under its final name.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use kumo_core::function::{CodeInfo, MAX_UNZIPPED_BYTES};
use sha2::{Digest, Sha256};

/// Why a package was refused or could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("Could not unzip uploaded file. Please check your file, then try to upload again.")]
    NotAZip,
    #[error("Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")]
    TooLargeUnzipped,
    #[error("storing code package: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug, Clone)]
pub struct CodeStore {
    dir: PathBuf,
}

impl CodeStore {
    pub fn new(data_dir: &Path) -> io::Result<CodeStore> {
        let dir = data_dir.join("code");
        fs::create_dir_all(&dir)?;
        // Leftovers of an interrupted upload are never referenced: remove them.
        for entry in fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let path = entry.path();
                let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
            }
        }
        Ok(CodeStore { dir })
    }

    pub fn zip_path(&self, sha256_hex: &str) -> PathBuf {
        self.dir.join(format!("{sha256_hex}.zip"))
    }

    /// The extracted tree that becomes the function's task root.
    pub fn task_root(&self, sha256_hex: &str) -> PathBuf {
        self.dir.join(sha256_hex)
    }

    /// Validates, stores and extracts a package. Blocking: call from a blocking thread.
    pub fn ingest(&self, zip: &[u8]) -> Result<CodeInfo, CodeError> {
        let digest = Sha256::digest(zip);
        let sha256_hex = hex(&digest);
        let sha256_b64 = base64::engine::general_purpose::STANDARD.encode(digest);
        let root = self.task_root(&sha256_hex);
        let unzipped_size = if root.is_dir() && self.zip_path(&sha256_hex).is_file() {
            tree_size(&root)?
        } else {
            let tmp = self.dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
            let result = extract(zip, &tmp);
            let size = match result {
                Ok(size) => size,
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(e);
                }
            };
            let tmp_zip = self.dir.join(format!(".tmp-{}.zip", uuid::Uuid::new_v4().simple()));
            let mut f = fs::File::create(&tmp_zip)?;
            f.write_all(zip)?;
            f.sync_all()?;
            fs::rename(&tmp_zip, self.zip_path(&sha256_hex))?;
            match fs::rename(&tmp, &root) {
                Ok(()) => {}
                // Another upload of the same bytes won the race; its tree is identical.
                Err(_) if root.is_dir() => {
                    let _ = fs::remove_dir_all(&tmp);
                }
                Err(e) => return Err(e.into()),
            }
            size
        };
        Ok(CodeInfo { sha256_hex, sha256_b64, size: zip.len() as u64, unzipped_size })
    }

    /// Removes a package no version references any more.
    pub fn remove(&self, sha256_hex: &str) {
        let root = self.task_root(sha256_hex);
        make_writable(&root);
        let _ = fs::remove_dir_all(root);
        let _ = fs::remove_file(self.zip_path(sha256_hex));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tree_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { tree_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

fn make_writable(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_writable(&entry.path());
            }
        }
    }
}

/// A relative path that stays inside the root: no `..`, no absolute parts.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Extracts into `dest`, counting the bytes actually inflated (a zip bomb's
/// headers can lie about sizes) and refusing any entry that would escape.
fn extract(zip: &[u8], dest: &Path) -> Result<u64, CodeError> {
    let mut archive = zip::ZipArchive::new(io::Cursor::new(zip)).map_err(|_| CodeError::NotAZip)?;
    // Check every name before writing anything.
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| CodeError::NotAZip)?;
        if entry.name().ok().and_then(|n| safe_relative(&n)).is_none() {
            return Err(CodeError::NotAZip);
        }
        declared = declared.saturating_add(entry.size());
    }
    if declared >= MAX_UNZIPPED_BYTES {
        return Err(CodeError::TooLargeUnzipped);
    }
    fs::create_dir_all(dest)?;
    let mut total: u64 = 0;
    let mut dirs = vec![dest.to_path_buf()];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| CodeError::NotAZip)?;
        let Some(rel) = entry.name().ok().and_then(|n| safe_relative(&n)) else { return Err(CodeError::NotAZip) };
        let target = dest.join(&rel);
        let mode = entry.unix_mode();
        if entry.is_dir() {
            fs::create_dir_all(&target)?;
            dirs.push(target);
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            // A symlink: its target is the content. Only links that stay inside the package.
            let mut link = String::new();
            entry.read_to_string(&mut link).map_err(|_| CodeError::NotAZip)?;
            let resolved = rel.parent().unwrap_or(Path::new("")).join(&link);
            if Path::new(&link).is_absolute() || safe_relative(&resolved.to_string_lossy()).is_none() {
                return Err(CodeError::NotAZip);
            }
            std::os::unix::fs::symlink(&link, &target)?;
            continue;
        }
        let mut out = fs::File::create(&target)?;
        let budget = MAX_UNZIPPED_BYTES - total;
        let copied = io::copy(&mut (&mut entry).take(budget + 1), &mut out).map_err(|_| CodeError::NotAZip)?;
        total += copied;
        if total >= MAX_UNZIPPED_BYTES {
            return Err(CodeError::TooLargeUnzipped);
        }
        // Keep the execute bit (a custom runtime's bootstrap needs it); code is read-only.
        let exec = mode.is_some_and(|m| m & 0o111 != 0);
        fs::set_permissions(&target, fs::Permissions::from_mode(if exec { 0o555 } else { 0o444 }))?;
    }
    for dir in dirs.iter().rev() {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o555));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zip::write::SimpleFileOptions;

    fn make_zip(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        for (name, data, mode) in entries {
            w.start_file(*name, SimpleFileOptions::default().unix_permissions(*mode)).expect("start");
            w.write_all(data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn ingests_and_is_idempotent() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = CodeStore::new(dir.path()).expect("store");
        let zip =
            make_zip(&[("app.py", b"def handler(e, c): return e\n", 0o644), ("bootstrap", b"#!/bin/sh\n", 0o755)]);
        let info = store.ingest(&zip).expect("ingest");
        assert_eq!(info.size, zip.len() as u64);
        assert_eq!(info.sha256_b64.len(), 44);
        let root = store.task_root(&info.sha256_hex);
        assert!(root.join("app.py").is_file());
        let mode = fs::metadata(root.join("bootstrap")).expect("meta").permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
        assert_eq!(store.ingest(&zip).expect("again"), info);
    }

    #[test]
    fn refuses_escapes_and_garbage() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = CodeStore::new(dir.path()).expect("store");
        assert!(matches!(store.ingest(b"not a zip"), Err(CodeError::NotAZip)));
        let evil = make_zip(&[("../evil.py", b"x", 0o644)]);
        assert!(matches!(store.ingest(&evil), Err(CodeError::NotAZip)));
        let abs = make_zip(&[("/etc/evil", b"x", 0o644)]);
        assert!(matches!(store.ingest(&abs), Err(CodeError::NotAZip)));
        // Nothing but the (empty) code dir is left behind.
        assert_eq!(fs::read_dir(dir.path().join("code")).expect("dir").count(), 0);
    }

    #[test]
    fn refuses_zip_bombs() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = CodeStore::new(dir.path()).expect("store");
        let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        let chunk = vec![0u8; 1 << 20];
        for i in 0..3 {
            w.start_file(format!("zeros{i}"), opts).expect("start");
            for _ in 0..90 {
                w.write_all(&chunk).expect("write");
            }
        }
        let zip = w.finish().expect("finish").into_inner();
        assert!(zip.len() < 2 << 20, "compressed bomb is small: {}", zip.len());
        assert!(matches!(store.ingest(&zip), Err(CodeError::TooLargeUnzipped)));
        assert_eq!(fs::read_dir(dir.path().join("code")).expect("dir").count(), 0);
    }
}
