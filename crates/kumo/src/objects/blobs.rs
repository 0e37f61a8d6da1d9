//! Object bytes as files: one immutable file per object version or part.
//!
//! A file is written under a fresh name, synced (with its directory) and only
//! then named by a database row, so a crash mid-upload leaves at most an
//! unreferenced file, which the next start sweeps away. Files are never
//! rewritten: an overwrite is a new file, so a GET that has the old one open
//! keeps reading consistent bytes.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The chunk size of GET bodies.
const READ_CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("object storage I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the request body: {0}")]
    Body(String),
    #[error("the body is larger than the {0} bytes allowed")]
    TooLarge(u64),
    #[error("the body has {got} bytes, not the {expected} Content-Length announced")]
    IncompleteBody { expected: u64, got: u64 },
}

/// A stored file.
#[derive(Debug, Clone)]
pub struct Written {
    pub name: String,
    pub size: u64,
    pub md5: [u8; 16],
}

pub struct Blobs {
    dir: PathBuf,
}

fn new_name() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Blobs {
    pub fn open(data_dir: &Path) -> std::io::Result<Blobs> {
        let dir = data_dir.join("s3").join("blobs");
        std::fs::create_dir_all(&dir)?;
        Ok(Blobs { dir })
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    async fn sync_dir(&self) -> std::io::Result<()> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)?
    }

    /// Writes a body to a new file, hashing it on the way.
    pub async fn write<S, E>(&self, mut body: S, max: u64, expected: Option<u64>) -> Result<Written, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let name = new_name();
        let path = self.path(&name);
        let result = async {
            let mut file = tokio::fs::File::create(&path).await?;
            let mut md5 = Md5::new();
            let mut size = 0u64;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
                size += chunk.len() as u64;
                if size > max {
                    return Err(BlobError::TooLarge(max));
                }
                md5.update(&chunk);
                file.write_all(&chunk).await?;
            }
            if let Some(expected) = expected.filter(|e| *e != size) {
                return Err(BlobError::IncompleteBody { expected, got: size });
            }
            file.flush().await?;
            file.sync_all().await?;
            Ok(Written { name: name.clone(), size, md5: md5.finalize().into() })
        }
        .await;
        match result {
            Ok(w) => {
                self.sync_dir().await?;
                Ok(w)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e)
            }
        }
    }

    /// Concatenates files (the parts of a multipart upload) into a new one.
    pub async fn concat(&self, parts: &[String]) -> Result<Written, BlobError> {
        let name = new_name();
        let path = self.path(&name);
        let result = async {
            let mut out = tokio::fs::File::create(&path).await?;
            let mut size = 0u64;
            let mut buf = vec![0u8; READ_CHUNK];
            for part in parts {
                let mut input = tokio::fs::File::open(self.path(part)).await?;
                loop {
                    let n = input.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    size += n as u64;
                    out.write_all(&buf[..n]).await?;
                }
            }
            out.flush().await?;
            out.sync_all().await?;
            Ok::<_, BlobError>(size)
        }
        .await;
        match result {
            Ok(size) => {
                self.sync_dir().await?;
                Ok(Written { name, size, md5: [0; 16] })
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e)
            }
        }
    }

    /// A second name for an existing file (CopyObject): files are immutable, so sharing is safe.
    pub async fn duplicate(&self, name: &str) -> Result<String, BlobError> {
        let copy = new_name();
        if tokio::fs::hard_link(self.path(name), self.path(&copy)).await.is_err() {
            tokio::fs::copy(self.path(name), self.path(&copy)).await?;
        }
        self.sync_dir().await?;
        Ok(copy)
    }

    pub async fn remove(&self, name: &str) {
        if let Err(e) = tokio::fs::remove_file(self.path(name)).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = name, error = %e, "could not remove an object file");
        }
    }

    /// A stream of `len` bytes of a file from `start`.
    pub async fn read(
        &self,
        name: &str,
        start: u64,
        len: u64,
    ) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static, BlobError> {
        let mut file = tokio::fs::File::open(self.path(name)).await?;
        if start > 0 {
            file.seek(std::io::SeekFrom::Start(start)).await?;
        }
        Ok(futures_util::stream::unfold((file, len), |(mut file, left)| async move {
            if left == 0 {
                return None;
            }
            let mut buf = vec![0u8; READ_CHUNK.min(left as usize)];
            match file.read(&mut buf).await {
                Ok(0) => Some((
                    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "object file is shorter than recorded")),
                    (file, 0),
                )),
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, left - n as u64)))
                }
                Err(e) => Some((Err(e), (file, 0))),
            }
        }))
    }

    /// Removes files no row names (left by a crash between writing a file and committing its row).
    pub async fn sweep(&self, referenced: &std::collections::HashSet<String>) -> usize {
        let Ok(mut entries) = tokio::fs::read_dir(&self.dir).await else { return 0 };
        let mut removed = 0;
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !referenced.contains(&name) {
                self.remove(&name).await;
                removed += 1;
            }
        }
        removed
    }
}

/// S3's ETag of a multipart object: the MD5 of the parts' binary MD5s, then `-N`.
pub fn multipart_etag(part_etags: &[String]) -> String {
    let mut md5 = Md5::new();
    for e in part_etags {
        let mut raw = [0u8; 16];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = e.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
        }
        md5.update(raw);
    }
    let digest: [u8; 16] = md5.finalize().into();
    format!("{}-{}", hex(&digest), part_etags.len())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_computed_as_s3_does() {
        // Two parts, "a" and "b": md5(md5("a") || md5("b")) + "-2".
        let a = hex(&<[u8; 16]>::from(Md5::digest(b"a")));
        let b = hex(&<[u8; 16]>::from(Md5::digest(b"b")));
        let mut joined = Vec::new();
        joined.extend_from_slice(&Md5::digest(b"a"));
        joined.extend_from_slice(&Md5::digest(b"b"));
        let expected = format!("{}-2", hex(&<[u8; 16]>::from(Md5::digest(&joined))));
        assert_eq!(multipart_etag(&[a, b]), expected);
    }
}
