//! Buckets, objects and multipart uploads in the database.
//!
//! An object row names the file that holds its bytes; the row is written only
//! after the file is complete and synced, in the same transaction as the
//! notification events the write causes. So a reader never sees a half-written
//! object, and a write and its events exist together or not at all.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::store::sqlite::{SqliteStore, insert_event};
use crate::store::{QueuedEvent, StoreError};

/// A bucket's row.
#[derive(Debug, Clone)]
pub struct BucketRow {
    pub name: String,
    pub created_ms: i64,
    pub region: String,
    pub notification: String,
}

/// The HTTP attributes an object keeps (set at PUT, returned at GET).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAttributes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `x-amz-meta-*`, without the prefix.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_metadata: BTreeMap<String, String>,
    /// Parts of a multipart object (HeadObject's PartsCount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parts_count: Option<u32>,
}

/// An object's row.
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub bucket: String,
    pub key: String,
    /// The file name of its bytes under the blob directory.
    pub blob: String,
    pub size: u64,
    /// Without quotes: hex MD5, or `hex-N` for multipart objects.
    pub etag: String,
    pub last_modified_ms: i64,
    pub attributes: ObjectAttributes,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct UploadRow {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created_ms: i64,
    pub attributes: ObjectAttributes,
}

#[derive(Debug, Clone)]
pub struct PartRow {
    pub part_number: u32,
    pub blob: String,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: i64,
}

/// What a transaction on a bucket found wrong.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the bucket already exists")]
    BucketExists,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ObjectRow, String)> {
    Ok((
        ObjectRow {
            bucket: r.get(0)?,
            key: r.get(1)?,
            blob: r.get(2)?,
            size: r.get::<_, i64>(3)? as u64,
            etag: r.get(4)?,
            last_modified_ms: r.get(5)?,
            attributes: ObjectAttributes::default(),
        },
        r.get::<_, String>(6)?,
    ))
}

fn with_attributes((mut row, meta): (ObjectRow, String)) -> Result<ObjectRow, StoreError> {
    row.attributes = serde_json::from_str(&meta)?;
    Ok(row)
}

const OBJECT_COLUMNS: &str = "bucket, key, blob, size, etag, last_modified_ms, meta";

/// Errors from inside a writer transaction travel as text (the writer reports
/// `Display` output); these markers end the ones callers act on.
const NO_SUCH_BUCKET: &str = "s3:NoSuchBucket";
const BUCKET_EXISTS: &str = "s3:BucketExists";
const BUCKET_NOT_EMPTY: &str = "s3:BucketNotEmpty";
const NO_SUCH_UPLOAD: &str = "s3:NoSuchUpload";

fn marked(marker: &'static str) -> StoreError {
    StoreError::Join(marker.to_string())
}

fn classify(e: StoreError) -> MetaError {
    match &e {
        StoreError::Join(m) if m.ends_with(NO_SUCH_BUCKET) => MetaError::NoSuchBucket,
        StoreError::Join(m) if m.ends_with(BUCKET_EXISTS) => MetaError::BucketExists,
        StoreError::Join(m) if m.ends_with(BUCKET_NOT_EMPTY) => MetaError::BucketNotEmpty,
        StoreError::Join(m) if m.ends_with(NO_SUCH_UPLOAD) => MetaError::NoSuchUpload,
        _ => MetaError::Store(e),
    }
}

fn bucket_exists(tx: &rusqlite::Transaction<'_>, bucket: &str) -> Result<bool, StoreError> {
    Ok(tx.prepare_cached("SELECT 1 FROM s3_buckets WHERE name = ?1")?.exists([bucket])?)
}

/// The file a row replaced (to delete once the commit is done).
fn replace_object(tx: &rusqlite::Transaction<'_>, o: &ObjectRow) -> Result<Option<String>, StoreError> {
    let previous: Option<String> = tx
        .prepare_cached("SELECT blob FROM s3_objects WHERE bucket = ?1 AND key = ?2")?
        .query_row(params![o.bucket, o.key], |r| r.get(0))
        .optional()?;
    tx.prepare_cached(
        "INSERT INTO s3_objects (bucket, key, blob, size, etag, last_modified_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (bucket, key) DO UPDATE SET blob = excluded.blob, size = excluded.size, etag = excluded.etag, \
         last_modified_ms = excluded.last_modified_ms, meta = excluded.meta",
    )?
    .execute(params![
        o.bucket,
        o.key,
        o.blob,
        o.size as i64,
        o.etag,
        o.last_modified_ms,
        serde_json::to_string(&o.attributes)?
    ])?;
    Ok(previous.filter(|p| *p != o.blob))
}

/// Runs a write transaction that reports a value back.
async fn write_returning<T, F>(store: &SqliteStore, f: F) -> Result<T, MetaError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    store
        .write(move |t| {
            let value = f(t)?;
            let _ = tx.send(value);
            Ok(())
        })
        .await
        .map_err(classify)?;
    rx.recv().map_err(|_| MetaError::Store(StoreError::WriterGone))
}

pub async fn create_bucket(store: &SqliteStore, row: BucketRow) -> Result<(), MetaError> {
    write_returning(store, move |tx| {
        if bucket_exists(tx, &row.name)? {
            return Err(marked(BUCKET_EXISTS));
        }
        tx.execute(
            "INSERT INTO s3_buckets (name, created_ms, region, notification) VALUES (?1, ?2, ?3, ?4)",
            params![row.name, row.created_ms, row.region, row.notification],
        )?;
        Ok(())
    })
    .await
}

pub async fn delete_bucket(store: &SqliteStore, name: String) -> Result<(), MetaError> {
    write_returning(store, move |tx| {
        if !bucket_exists(tx, &name)? {
            return Err(marked(NO_SUCH_BUCKET));
        }
        let busy = tx.prepare_cached("SELECT 1 FROM s3_objects WHERE bucket = ?1 LIMIT 1")?.exists([&name])?
            || tx.prepare_cached("SELECT 1 FROM s3_uploads WHERE bucket = ?1 LIMIT 1")?.exists([&name])?;
        if busy {
            return Err(marked(BUCKET_NOT_EMPTY));
        }
        tx.execute("DELETE FROM s3_buckets WHERE name = ?1", [&name])?;
        Ok(())
    })
    .await
}

pub async fn put_notification(store: &SqliteStore, bucket: String, notification: String) -> Result<(), MetaError> {
    write_returning(store, move |tx| {
        let n = tx.execute("UPDATE s3_buckets SET notification = ?2 WHERE name = ?1", params![bucket, notification])?;
        if n == 0 {
            return Err(marked(NO_SUCH_BUCKET));
        }
        Ok(())
    })
    .await
}

pub async fn bucket(store: &SqliteStore, name: String) -> Result<Option<BucketRow>, StoreError> {
    store
        .read(move |c| {
            Ok(c.prepare_cached("SELECT name, created_ms, region, notification FROM s3_buckets WHERE name = ?1")?
                .query_row([name], |r| {
                    Ok(BucketRow { name: r.get(0)?, created_ms: r.get(1)?, region: r.get(2)?, notification: r.get(3)? })
                })
                .optional()?)
        })
        .await
}

pub async fn buckets(store: &SqliteStore) -> Result<Vec<BucketRow>, StoreError> {
    store
        .read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name, created_ms, region, notification FROM s3_buckets ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok(BucketRow { name: r.get(0)?, created_ms: r.get(1)?, region: r.get(2)?, notification: r.get(3)? })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

pub async fn object(store: &SqliteStore, bucket: String, key: String) -> Result<Option<ObjectRow>, StoreError> {
    store
        .read(move |c| {
            let row = c
                .prepare_cached(&format!("SELECT {OBJECT_COLUMNS} FROM s3_objects WHERE bucket = ?1 AND key = ?2"))?
                .query_row(params![bucket, key], object_from_row)
                .optional()?;
            row.map(with_attributes).transpose()
        })
        .await
}

/// Keys of a bucket after `after`, in order, that start with `prefix`; at most `limit`.
pub async fn objects_after(
    store: &SqliteStore,
    bucket: String,
    prefix: String,
    after: String,
    limit: usize,
) -> Result<Vec<ObjectRow>, StoreError> {
    store
        .read(move |c| {
            // `key >= prefix` uses the primary key; the LIKE-free prefix test is done here.
            let from = if after.as_str() > prefix.as_str() { after.clone() } else { prefix.clone() };
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OBJECT_COLUMNS} FROM s3_objects WHERE bucket = ?1 AND key >= ?2 ORDER BY key LIMIT ?3"
            ))?;
            let rows = stmt.query_map(params![bucket, from, (limit + 1) as i64], object_from_row)?;
            let mut out = Vec::new();
            for row in rows {
                let row = with_attributes(row?)?;
                if row.key <= after && !after.is_empty() {
                    continue;
                }
                if !row.key.starts_with(&prefix) {
                    break;
                }
                out.push(row);
                if out.len() == limit {
                    break;
                }
            }
            Ok(out)
        })
        .await
}

/// Stores an object with the events its write causes; returns the file it replaced.
pub async fn commit_object(
    store: &SqliteStore,
    row: ObjectRow,
    events: Vec<QueuedEvent>,
) -> Result<Option<String>, MetaError> {
    write_returning(store, move |tx| {
        if !bucket_exists(tx, &row.bucket)? {
            return Err(marked(NO_SUCH_BUCKET));
        }
        let replaced = replace_object(tx, &row)?;
        for e in &events {
            insert_event(tx, e)?;
        }
        Ok(replaced)
    })
    .await
}

/// Deletes an object with the events its deletion causes; returns its file, if it existed.
pub async fn delete_object(
    store: &SqliteStore,
    bucket: String,
    key: String,
    events: Vec<QueuedEvent>,
) -> Result<Option<String>, MetaError> {
    write_returning(store, move |tx| {
        if !bucket_exists(tx, &bucket)? {
            return Err(marked(NO_SUCH_BUCKET));
        }
        let blob: Option<String> = tx
            .prepare_cached("SELECT blob FROM s3_objects WHERE bucket = ?1 AND key = ?2")?
            .query_row(params![bucket, key], |r| r.get(0))
            .optional()?;
        tx.prepare_cached("DELETE FROM s3_objects WHERE bucket = ?1 AND key = ?2")?.execute(params![bucket, key])?;
        // Decided here, in the transaction: of two racing deletes, only the one
        // that removed the object reports it.
        if blob.is_some() {
            for e in &events {
                insert_event(tx, e)?;
            }
        }
        Ok(blob)
    })
    .await
}

pub async fn create_upload(store: &SqliteStore, u: UploadRow) -> Result<(), MetaError> {
    write_returning(store, move |tx| {
        if !bucket_exists(tx, &u.bucket)? {
            return Err(marked(NO_SUCH_BUCKET));
        }
        tx.execute(
            "INSERT INTO s3_uploads (upload_id, bucket, key, created_ms, meta) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.upload_id, u.bucket, u.key, u.created_ms, serde_json::to_string(&u.attributes)?],
        )?;
        Ok(())
    })
    .await
}

pub async fn upload(store: &SqliteStore, upload_id: String) -> Result<Option<UploadRow>, StoreError> {
    store
        .read(move |c| {
            let row = c
                .prepare_cached("SELECT upload_id, bucket, key, created_ms, meta FROM s3_uploads WHERE upload_id = ?1")?
                .query_row([upload_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, String>(4)?)))
                .optional()?;
            match row {
                None => Ok(None),
                Some((upload_id, bucket, key, created_ms, meta)) => {
                    Ok(Some(UploadRow { upload_id, bucket, key, created_ms, attributes: serde_json::from_str(&meta)? }))
                }
            }
        })
        .await
}

/// Stores a part; returns the file of the part it replaced.
pub async fn put_part(store: &SqliteStore, upload_id: String, part: PartRow) -> Result<Option<String>, MetaError> {
    write_returning(store, move |tx| {
        if !tx.prepare_cached("SELECT 1 FROM s3_uploads WHERE upload_id = ?1")?.exists([&upload_id])? {
            return Err(marked(NO_SUCH_UPLOAD));
        }
        let previous: Option<String> = tx
            .prepare_cached("SELECT blob FROM s3_parts WHERE upload_id = ?1 AND part_number = ?2")?
            .query_row(params![upload_id, part.part_number], |r| r.get(0))
            .optional()?;
        tx.execute(
            "INSERT INTO s3_parts (upload_id, part_number, blob, size, etag, last_modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (upload_id, part_number) DO UPDATE SET blob = excluded.blob, size = excluded.size, \
             etag = excluded.etag, last_modified_ms = excluded.last_modified_ms",
            params![upload_id, part.part_number, part.blob, part.size as i64, part.etag, part.last_modified_ms],
        )?;
        Ok(previous)
    })
    .await
}

pub async fn parts(store: &SqliteStore, upload_id: String) -> Result<Vec<PartRow>, StoreError> {
    store
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT part_number, blob, size, etag, last_modified_ms FROM s3_parts WHERE upload_id = ?1 ORDER BY part_number",
            )?;
            let rows = stmt.query_map([upload_id], |r| {
                Ok(PartRow {
                    part_number: r.get::<_, i64>(0)? as u32,
                    blob: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    etag: r.get(3)?,
                    last_modified_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
}

/// Ends an upload: forgets it and its parts, and (when completing) stores the
/// object with its events. Returns the part files and the replaced object file.
pub async fn finish_upload(
    store: &SqliteStore,
    upload_id: String,
    object: Option<ObjectRow>,
    events: Vec<QueuedEvent>,
) -> Result<(Vec<String>, Option<String>), MetaError> {
    write_returning(store, move |tx| {
        if !tx.prepare_cached("SELECT 1 FROM s3_uploads WHERE upload_id = ?1")?.exists([&upload_id])? {
            return Err(marked(NO_SUCH_UPLOAD));
        }
        let blobs: Vec<String> = tx
            .prepare_cached("SELECT blob FROM s3_parts WHERE upload_id = ?1")?
            .query_map([&upload_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM s3_parts WHERE upload_id = ?1", [&upload_id])?;
        tx.execute("DELETE FROM s3_uploads WHERE upload_id = ?1", [&upload_id])?;
        let mut replaced = None;
        if let Some(o) = &object {
            if !bucket_exists(tx, &o.bucket)? {
                return Err(marked(NO_SUCH_BUCKET));
            }
            replaced = replace_object(tx, o)?;
        }
        for e in &events {
            insert_event(tx, e)?;
        }
        Ok((blobs, replaced))
    })
    .await
}

/// Every file name the database refers to (objects and parts), for the
/// start-up sweep of files a crash left behind.
pub async fn referenced_blobs(store: &SqliteStore) -> Result<std::collections::HashSet<String>, StoreError> {
    store
        .read(|c| {
            let mut out = std::collections::HashSet::new();
            for sql in ["SELECT blob FROM s3_objects", "SELECT blob FROM s3_parts"] {
                let mut stmt = c.prepare(sql)?;
                for b in stmt.query_map([], |r| r.get::<_, String>(0))? {
                    out.insert(b?);
                }
            }
            Ok(out)
        })
        .await
}
