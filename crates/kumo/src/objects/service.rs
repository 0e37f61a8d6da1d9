//! The S3 operations Kumo serves, over [`super::meta`] and [`super::blobs`].

use std::sync::Arc;

use base64::Engine as _;
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::blobs::{BlobError, Written, hex, multipart_etag};
use super::bucket_config::Unset;
use super::meta::{self, BucketRow, MetaError, ObjectAttributes, ObjectRow, PartRow, UploadRow};
use super::notify::{Change, Writer, from_wire, to_wire};
use super::{MAX_PUT_BYTES, ObjectStore, S3RequestId};
use crate::iam::Identity;

/// The smallest part S3 accepts, except the last.
const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
const MAX_PART_NUMBER: i32 = 10_000;
const MAX_LIST_KEYS: i32 = 1000;

pub struct S3Api(pub Arc<ObjectStore>);

fn internal(e: impl std::fmt::Display) -> S3Error {
    tracing::error!(error = %e, "object store failure");
    S3Error::with_message(S3ErrorCode::InternalError, "Kumo could not complete the request; see the server log.")
}

fn meta_error(e: MetaError) -> S3Error {
    match e {
        MetaError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        MetaError::BucketExists => {
            s3_error!(
                BucketAlreadyOwnedByYou,
                "Your previous request to create the named bucket succeeded and you already own it."
            )
        }
        MetaError::BucketNotEmpty => s3_error!(BucketNotEmpty, "The bucket you tried to delete is not empty"),
        MetaError::NoSuchUpload => s3_error!(
            NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        MetaError::Store(e) => internal(e),
    }
}

fn blob_error(e: BlobError) -> S3Error {
    match e {
        BlobError::TooLarge(_) => {
            s3_error!(EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.")
        }
        BlobError::IncompleteBody { .. } => s3_error!(IncompleteBody, "{e}"),
        BlobError::Body(m) => s3_error!(IncompleteBody, "{m}"),
        BlobError::Io(e) => internal(e),
    }
}

fn no_such_key() -> S3Error {
    s3_error!(NoSuchKey, "The specified key does not exist.")
}

fn timestamp(ms: i64) -> Timestamp {
    Timestamp::from(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

fn epoch_seconds(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag_of(row: &ObjectRow) -> ETag {
    ETag::Strong(row.etag.clone())
}

fn condition_matches(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

/// S3's conditional GET/HEAD rules.
fn check_conditions(
    row: &ObjectRow,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let modified_s = row.last_modified_ms.div_euclid(1000);
    match if_match {
        Some(c) if !condition_matches(c, &row.etag) => {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
        None if if_unmodified_since.is_some_and(|t| modified_s > epoch_seconds(t)) => {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
        _ => {}
    }
    match if_none_match {
        Some(c) if condition_matches(c, &row.etag) => Err(s3_error!(NotModified)),
        None if if_modified_since.is_some_and(|t| modified_s <= epoch_seconds(t)) => Err(s3_error!(NotModified)),
        _ => Ok(()),
    }
}

fn attributes_of(
    content_type: Option<ContentType>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    metadata: Option<Metadata>,
) -> ObjectAttributes {
    ObjectAttributes {
        content_type: content_type.map(|c| c.to_string()),
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        user_metadata: metadata.unwrap_or_default().into_iter().collect(),
        parts_count: None,
    }
}

fn user_metadata(a: &ObjectAttributes) -> Option<Metadata> {
    (!a.user_metadata.is_empty()).then(|| a.user_metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

fn content_type(a: &ObjectAttributes) -> Option<ContentType> {
    a.content_type.as_deref().and_then(|c| c.parse().ok())
}

/// Who made the request, for notifications.
fn writer_of<T>(req: &S3Request<T>) -> Writer {
    let identity = req.extensions.get::<Identity>();
    let source_ip = req
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let request_id = req.extensions.get::<S3RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let trace = req.headers.get("x-amzn-trace-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    Writer::of(identity, source_ip, request_id, trace)
}

/// Percent-encodes a key for `encoding-type=url` listings (botocore decodes with `unquote`).
fn url_encode_key(key: &str) -> String {
    crate::api::query::percent_encode_except(key, b"-_.~/")
}

/// The body of a request as a byte stream.
fn body_stream(body: Option<StreamingBlob>) -> StreamingBlob {
    body.unwrap_or_else(|| StreamingBlob::wrap(futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>()))
}

/// One page of a listing: objects and common prefixes in key order.
struct Listing {
    objects: Vec<ObjectRow>,
    prefixes: Vec<String>,
    /// Where the next page starts (the last key or prefix returned), when truncated.
    next: Option<String>,
}

impl ObjectStore {
    pub(super) async fn require_bucket(&self, bucket: &str) -> S3Result<BucketRow> {
        meta::bucket(&self.store, bucket.to_string())
            .await
            .map_err(internal)?
            .ok_or_else(|| meta_error(MetaError::NoSuchBucket))
    }

    async fn object_or_404(&self, bucket: &str, key: &str) -> S3Result<ObjectRow> {
        match meta::object(&self.store, bucket.to_string(), key.to_string()).await.map_err(internal)? {
            Some(row) => Ok(row),
            None => {
                self.require_bucket(bucket).await?;
                Err(no_such_key())
            }
        }
    }

    /// Commits an object and its events, then starts the events and drops the replaced file.
    pub(super) async fn commit(&self, row: ObjectRow, event_name: &'static str, writer: &Writer) -> S3Result<()> {
        let events = self.events_for(
            &Change { bucket: &row.bucket, key: &row.key, event_name, size: Some(row.size), etag: Some(&row.etag) },
            writer,
        );
        let blob = row.blob.clone();
        match meta::commit_object(&self.store, row, events.clone()).await {
            Ok(replaced) => {
                self.engine.accept_committed_events(events);
                if let Some(old) = replaced {
                    self.blobs.remove(&old).await;
                }
                Ok(())
            }
            Err(e) => {
                self.blobs.remove(&blob).await;
                Err(meta_error(e))
            }
        }
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: &str,
        max_keys: usize,
    ) -> S3Result<Listing> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut cursor = after.to_string();
        // Resuming after a common prefix skips everything under it.
        if let Some(d) = delimiter
            && cursor.starts_with(prefix)
            && cursor.ends_with(d)
            && cursor.len() > prefix.len()
        {
            cursor.push(char::MAX);
        }
        let mut out = Listing { objects: Vec::new(), prefixes: Vec::new(), next: None };
        if max_keys == 0 {
            return Ok(out);
        }
        loop {
            let batch = meta::objects_after(&self.store, bucket.to_string(), prefix.to_string(), cursor.clone(), 1000)
                .await
                .map_err(internal)?;
            let exhausted = batch.len() < 1000;
            let mut skip_to: Option<String> = None;
            for row in batch {
                if let Some(s) = &skip_to
                    && row.key.as_str() <= s.as_str()
                {
                    continue;
                }
                cursor = row.key.clone();
                if out.objects.len() + out.prefixes.len() == max_keys {
                    out.next = out.prefixes.last().cloned().max(out.objects.last().map(|o| o.key.clone()));
                    return Ok(out);
                }
                let rest = &row.key[prefix.len()..];
                match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
                    Some((i, d)) => {
                        let common = format!("{prefix}{}", &rest[..i + d.len()]);
                        let mut past = common.clone();
                        past.push(char::MAX);
                        skip_to = Some(past.clone());
                        cursor = past;
                        out.prefixes.push(common);
                    }
                    None => out.objects.push(row),
                }
            }
            if exhausted && skip_to.is_none() {
                return Ok(out);
            }
            if exhausted {
                // The batch ended inside a skipped prefix: look past it once more.
                let more = meta::objects_after(&self.store, bucket.to_string(), prefix.to_string(), cursor.clone(), 1)
                    .await
                    .map_err(internal)?;
                if more.is_empty() {
                    return Ok(out);
                }
            }
        }
    }
}

#[async_trait::async_trait]
impl S3 for S3Api {
    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let s = &self.0;
        let name = req.input.bucket;
        let row = BucketRow {
            name: name.clone(),
            created_ms: crate::engine::now_ms(),
            region: s.region.clone(),
            notification: "{}".to_string(),
        };
        meta::create_bucket(&s.store, row).await.map_err(meta_error)?;
        s.set_notification(&name, Some(Default::default()));
        Ok(S3Response::new(CreateBucketOutput { location: Some(format!("/{name}")) }))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let s = &self.0;
        meta::delete_bucket(&s.store, req.input.bucket.clone()).await.map_err(meta_error)?;
        s.set_notification(&req.input.bucket, None);
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        let row = self.0.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput { bucket_region: Some(row.region), ..Default::default() }))
    }

    async fn list_buckets(&self, _req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let s = &self.0;
        let buckets = meta::buckets(&s.store).await.map_err(internal)?;
        let buckets = buckets
            .into_iter()
            .map(|b| Bucket {
                bucket_region: Some(b.region),
                creation_date: Some(timestamp(b.created_ms)),
                name: Some(b.name),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(Owner { display_name: Some("kumo".into()), id: Some(s.account.clone()) }),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        let row = self.0.require_bucket(&req.input.bucket).await?;
        // us-east-1 is the empty constraint, as on S3.
        let location_constraint = (row.region != "us-east-1").then(|| BucketLocationConstraint::from(row.region));
        Ok(S3Response::new(GetBucketLocationOutput { location_constraint }))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let s = &self.0;
        let writer = writer_of(&req);
        let input = req.input;
        s.require_bucket(&input.bucket).await?;
        let expected = input.content_length.and_then(|l| u64::try_from(l).ok());
        let written: Written =
            s.blobs.write(body_stream(input.body), MAX_PUT_BYTES, expected).await.map_err(blob_error)?;
        if let Some(md5) = &input.content_md5 {
            let sent = base64::engine::general_purpose::STANDARD.decode(md5).unwrap_or_default();
            if sent != written.md5 {
                s.blobs.remove(&written.name).await;
                return Err(s3_error!(BadDigest, "The Content-MD5 you specified did not match what we received."));
            }
        }
        let etag = hex(&written.md5);
        let row = ObjectRow {
            bucket: input.bucket,
            key: input.key,
            blob: written.name,
            size: written.size,
            etag: etag.clone(),
            last_modified_ms: crate::engine::now_ms(),
            attributes: attributes_of(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            ),
        };
        s.commit(row, "ObjectCreated:Put", &writer).await?;
        Ok(S3Response::new(PutObjectOutput { e_tag: Some(ETag::Strong(etag)), ..Default::default() }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let s = &self.0;
        let input = req.input;
        let row = s.object_or_404(&input.bucket, &input.key).await?;
        check_conditions(
            &row,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let (start, len, content_range) = match &input.range {
            None => (0, row.size, None),
            Some(range) => {
                let r = range.check(row.size)?;
                (r.start, r.end - r.start, Some(format!("bytes {}-{}/{}", r.start, r.end.saturating_sub(1), row.size)))
            }
        };
        let stream = s.blobs.read(&row.blob, start, len).await.map_err(blob_error)?;
        let a = &row.attributes;
        Ok(S3Response::new(GetObjectOutput {
            body: Some(StreamingBlob::wrap(stream)),
            accept_ranges: Some("bytes".into()),
            content_length: Some(len as i64),
            content_range,
            content_type: input.response_content_type.or_else(|| content_type(a)),
            content_encoding: a.content_encoding.clone(),
            content_disposition: input.response_content_disposition.or_else(|| a.content_disposition.clone()),
            content_language: a.content_language.clone(),
            cache_control: input.response_cache_control.or_else(|| a.cache_control.clone()),
            e_tag: Some(etag_of(&row)),
            last_modified: Some(timestamp(row.last_modified_ms)),
            metadata: user_metadata(a),
            parts_count: a.parts_count.map(|n| n as i32),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let s = &self.0;
        let input = req.input;
        let row = s.object_or_404(&input.bucket, &input.key).await?;
        check_conditions(
            &row,
            input.if_match.as_ref(),
            input.if_none_match.as_ref(),
            input.if_modified_since.as_ref(),
            input.if_unmodified_since.as_ref(),
        )?;
        let a = &row.attributes;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(row.size as i64),
            content_type: content_type(a),
            content_encoding: a.content_encoding.clone(),
            content_disposition: a.content_disposition.clone(),
            content_language: a.content_language.clone(),
            cache_control: a.cache_control.clone(),
            e_tag: Some(etag_of(&row)),
            last_modified: Some(timestamp(row.last_modified_ms)),
            metadata: user_metadata(a),
            parts_count: a.parts_count.map(|n| n as i32),
            ..Default::default()
        }))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let s = &self.0;
        let writer = writer_of(&req);
        let input = req.input;
        s.delete_one(&input.bucket, &input.key, &writer).await?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let s = &self.0;
        let writer = writer_of(&req);
        let input = req.input;
        let quiet = input.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in input.delete.objects {
            match s.delete_one(&input.bucket, &object.key, &writer).await {
                Ok(()) => {
                    if !quiet {
                        deleted.push(DeletedObject { key: Some(object.key), ..Default::default() });
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(object.key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let s = &self.0;
        let writer = writer_of(&req);
        let input = req.input;
        let (src_bucket, src_key) = match &input.copy_source {
            CopySource::Bucket { bucket, key, .. } => (bucket.to_string(), key.to_string()),
            _ => return Err(s3_error!(NotImplemented, "Only bucket copy sources are supported")),
        };
        let source = s.object_or_404(&src_bucket, &src_key).await?;
        let replace = input.metadata_directive.as_ref().is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
        if src_bucket == input.bucket && src_key == input.key && !replace {
            return Err(s3_error!(
                InvalidRequest,
                "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."
            ));
        }
        if let Some(c) = &input.copy_source_if_match
            && !condition_matches(c, &source.etag)
        {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
        if let Some(c) = &input.copy_source_if_none_match
            && condition_matches(c, &source.etag)
        {
            return Err(s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold"));
        }
        let attributes = if replace {
            attributes_of(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            )
        } else {
            source.attributes.clone()
        };
        let blob = s.blobs.duplicate(&source.blob).await.map_err(blob_error)?;
        let now = crate::engine::now_ms();
        let row = ObjectRow {
            bucket: input.bucket,
            key: input.key,
            blob,
            size: source.size,
            etag: source.etag.clone(),
            last_modified_ms: now,
            attributes,
        };
        s.commit(row, "ObjectCreated:Copy", &writer).await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(ETag::Strong(source.etag)),
                last_modified: Some(timestamp(now)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let s = &self.0;
        let input = req.input;
        s.require_bucket(&input.bucket).await?;
        let max_keys = input.max_keys.unwrap_or(MAX_LIST_KEYS).clamp(0, MAX_LIST_KEYS);
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = match (input.continuation_token.as_deref(), input.start_after.as_deref()) {
            (Some(token), _) => token.to_string(),
            (None, Some(after)) => after.to_string(),
            (None, None) => String::new(),
        };
        let page = s.list(&input.bucket, &prefix, input.delimiter.as_deref(), &after, max_keys as usize).await?;
        let w = WirePage::of(&page, input.encoding_type.as_ref());
        let enc = |k: &str| w.encode(k);
        let key_count = (page.objects.len() + page.prefixes.len()) as i32;
        Ok(S3Response::new(ListObjectsV2Output {
            contents: Some(w.contents.clone()),
            common_prefixes: w.common_prefixes.clone(),
            continuation_token: input.continuation_token,
            next_continuation_token: page.next.clone(),
            is_truncated: Some(page.next.is_some()),
            key_count: Some(key_count),
            max_keys: Some(max_keys),
            name: Some(input.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: input.delimiter.map(|d| enc(&d)),
            start_after: input.start_after.map(|a| enc(&a)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let s = &self.0;
        let input = req.input;
        s.require_bucket(&input.bucket).await?;
        let max_keys = input.max_keys.unwrap_or(MAX_LIST_KEYS).clamp(0, MAX_LIST_KEYS);
        let prefix = input.prefix.clone().unwrap_or_default();
        let marker = input.marker.clone().unwrap_or_default();
        let page = s.list(&input.bucket, &prefix, input.delimiter.as_deref(), &marker, max_keys as usize).await?;
        let w = WirePage::of(&page, input.encoding_type.as_ref());
        let enc = |k: &str| w.encode(k);
        Ok(S3Response::new(ListObjectsOutput {
            contents: Some(w.contents.clone()),
            common_prefixes: w.common_prefixes.clone(),
            is_truncated: Some(page.next.is_some()),
            next_marker: page.next.map(|n| enc(&n)),
            marker: Some(enc(&marker)),
            max_keys: Some(max_keys),
            name: Some(input.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: input.delimiter.map(|d| enc(&d)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    /// Kumo's buckets are unversioned: as on such an S3 bucket, each object is
    /// its one version, `null`, the latest, and there are no delete markers
    /// (clients that empty a bucket through this listing, such as Terraform's
    /// `force_destroy`, then delete the `null` versions).
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let s = &self.0;
        let input = req.input;
        s.require_bucket(&input.bucket).await?;
        let max_keys = input.max_keys.unwrap_or(MAX_LIST_KEYS).clamp(0, MAX_LIST_KEYS);
        let prefix = input.prefix.clone().unwrap_or_default();
        let marker = input.key_marker.clone().unwrap_or_default();
        let page = s.list(&input.bucket, &prefix, input.delimiter.as_deref(), &marker, max_keys as usize).await?;
        let w = WirePage::of(&page, input.encoding_type.as_ref());
        let enc = |k: &str| w.encode(k);
        let versions = w
            .contents
            .iter()
            .map(|o| ObjectVersion {
                e_tag: o.e_tag.clone(),
                is_latest: Some(true),
                key: o.key.clone(),
                last_modified: o.last_modified.clone(),
                size: o.size,
                storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                version_id: Some("null".to_string()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            versions: Some(versions),
            common_prefixes: w.common_prefixes.clone(),
            is_truncated: Some(page.next.is_some()),
            next_key_marker: page.next.as_deref().map(enc),
            next_version_id_marker: page.next.as_ref().map(|_| "null".to_string()),
            key_marker: Some(enc(&marker)),
            max_keys: Some(max_keys),
            name: Some(input.bucket),
            prefix: Some(enc(&prefix)),
            delimiter: input.delimiter.map(|d| enc(&d)),
            encoding_type: input.encoding_type,
            ..Default::default()
        }))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let s = &self.0;
        let input = req.input;
        let upload_id = uuid::Uuid::new_v4().simple().to_string();
        let row = UploadRow {
            upload_id: upload_id.clone(),
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            created_ms: crate::engine::now_ms(),
            attributes: attributes_of(
                input.content_type,
                input.content_encoding,
                input.content_disposition,
                input.content_language,
                input.cache_control,
                input.metadata,
            ),
        };
        meta::create_upload(&s.store, row).await.map_err(meta_error)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload_id),
            ..Default::default()
        }))
    }

    async fn upload_part(&self, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let s = &self.0;
        let input = req.input;
        if !(1..=MAX_PART_NUMBER).contains(&input.part_number) {
            return Err(s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive"));
        }
        let upload = s.upload_of(&input.upload_id, &input.bucket, &input.key).await?;
        let expected = input.content_length.and_then(|l| u64::try_from(l).ok());
        let written = s.blobs.write(body_stream(input.body), MAX_PUT_BYTES, expected).await.map_err(blob_error)?;
        let etag = hex(&written.md5);
        let part = PartRow {
            part_number: input.part_number as u32,
            blob: written.name.clone(),
            size: written.size,
            etag: etag.clone(),
            last_modified_ms: crate::engine::now_ms(),
        };
        match meta::put_part(&s.store, upload.upload_id, part).await {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    s.blobs.remove(&old).await;
                }
            }
            Err(e) => {
                s.blobs.remove(&written.name).await;
                return Err(meta_error(e));
            }
        }
        Ok(S3Response::new(UploadPartOutput { e_tag: Some(ETag::Strong(etag)), ..Default::default() }))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let s = &self.0;
        let input = req.input;
        let upload = s.upload_of(&input.upload_id, &input.bucket, &input.key).await?;
        let marker = input.part_number_marker.unwrap_or(0).max(0) as u32;
        let max = input.max_parts.unwrap_or(1000).clamp(1, 1000) as usize;
        let all: Vec<PartRow> = meta::parts(&s.store, upload.upload_id.clone())
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|p| p.part_number > marker)
            .collect();
        let truncated = all.len() > max;
        let page: Vec<PartRow> = all.into_iter().take(max).collect();
        let next = page.last().map(|p| p.part_number as i32);
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(upload.upload_id),
            is_truncated: Some(truncated),
            max_parts: Some(max as i32),
            part_number_marker: Some(marker as i32),
            next_part_number_marker: next,
            parts: Some(
                page.into_iter()
                    .map(|p| Part {
                        e_tag: Some(ETag::Strong(p.etag)),
                        last_modified: Some(timestamp(p.last_modified_ms)),
                        part_number: Some(p.part_number as i32),
                        size: Some(p.size as i64),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let s = &self.0;
        let writer = writer_of(&req);
        let input = req.input;
        let upload = s.upload_of(&input.upload_id, &input.bucket, &input.key).await?;
        let stored = meta::parts(&s.store, upload.upload_id.clone()).await.map_err(internal)?;
        let requested = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
        if requested.is_empty() {
            return Err(s3_error!(MalformedXML, "You must specify at least one part"));
        }
        let mut chosen: Vec<&PartRow> = Vec::with_capacity(requested.len());
        let mut previous = 0;
        for p in &requested {
            let number = p.part_number.unwrap_or(0);
            if number <= previous {
                return Err(s3_error!(
                    InvalidPartOrder,
                    "The list of parts was not in ascending order. Parts must be ordered by part number."
                ));
            }
            previous = number;
            let found = stored.iter().find(|s| s.part_number as i32 == number);
            let etag_ok = |row: &PartRow| p.e_tag.as_ref().is_none_or(|e| e.value() == row.etag);
            match found {
                Some(row) if etag_ok(row) => chosen.push(row),
                _ => {
                    return Err(s3_error!(
                        InvalidPart,
                        "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
                    ));
                }
            }
        }
        if let Some(small) = chosen.iter().rev().skip(1).find(|p| p.size < MIN_PART_BYTES) {
            return Err(s3_error!(
                EntityTooSmall,
                "Your proposed upload is smaller than the minimum allowed object size (part {} has {} bytes; every part but the last needs 5 MiB).",
                small.part_number,
                small.size
            ));
        }
        let names: Vec<String> = chosen.iter().map(|p| p.blob.clone()).collect();
        let etags: Vec<String> = chosen.iter().map(|p| p.etag.clone()).collect();
        let written = s.blobs.concat(&names).await.map_err(blob_error)?;
        let etag = multipart_etag(&etags);
        let mut attributes = upload.attributes.clone();
        attributes.parts_count = Some(chosen.len() as u32);
        let row = ObjectRow {
            bucket: input.bucket.clone(),
            key: input.key.clone(),
            blob: written.name.clone(),
            size: written.size,
            etag: etag.clone(),
            last_modified_ms: crate::engine::now_ms(),
            attributes,
        };
        let events = s.events_for(
            &Change {
                bucket: &row.bucket,
                key: &row.key,
                event_name: "ObjectCreated:CompleteMultipartUpload",
                size: Some(row.size),
                etag: Some(&etag),
            },
            &writer,
        );
        match meta::finish_upload(&s.store, upload.upload_id, Some(row), events.clone()).await {
            Ok((parts, replaced)) => {
                s.engine.accept_committed_events(events);
                for name in parts.iter().chain(replaced.iter()) {
                    s.blobs.remove(name).await;
                }
            }
            Err(e) => {
                s.blobs.remove(&written.name).await;
                return Err(meta_error(e));
            }
        }
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(ETag::Strong(etag)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let s = &self.0;
        let input = req.input;
        let upload = s.upload_of(&input.upload_id, &input.bucket, &input.key).await?;
        let (parts, _) = meta::finish_upload(&s.store, upload.upload_id, None, Vec::new()).await.map_err(meta_error)?;
        for name in parts {
            s.blobs.remove(&name).await;
        }
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        let s = &self.0;
        let input = req.input;
        s.require_bucket(&input.bucket).await?;
        let config = from_wire(input.notification_configuration)?;
        if !input.skip_destination_validation.unwrap_or(false) {
            s.validate_destinations(&input.bucket, &config)?;
        }
        let json = serde_json::to_string(&config).map_err(internal)?;
        meta::put_notification(&s.store, input.bucket.clone(), json).await.map_err(meta_error)?;
        s.set_notification(&input.bucket, Some(config.clone()));
        let mut resp = S3Response::new(PutBucketNotificationConfigurationOutput::default());
        for c in &config.lambda {
            let Ok(view) = s.engine.get_function(&c.function_arn, None) else { continue };
            for warning in s.loop_warnings(&view.version.name, &view.version.config.role) {
                tracing::warn!(bucket = %input.bucket, "{warning}");
                if let Ok(v) = axum::http::HeaderValue::from_str(&warning) {
                    resp.headers.append("x-kumo-warning", v);
                }
            }
        }
        Ok(resp)
    }

    async fn get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        let s = &self.0;
        s.require_bucket(&req.input.bucket).await?;
        let config = s.notification(&req.input.bucket).unwrap_or_default();
        let lambda = to_wire(&config);
        Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
            lambda_function_configurations: (!lambda.is_empty()).then_some(lambda),
            ..Default::default()
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.0.require_bucket(&req.input.bucket).await?;
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn get_bucket_policy(
        &self,
        req: S3Request<GetBucketPolicyInput>,
    ) -> S3Result<S3Response<GetBucketPolicyOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Policy).await
    }

    async fn get_bucket_cors(&self, req: S3Request<GetBucketCorsInput>) -> S3Result<S3Response<GetBucketCorsOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Cors).await
    }

    async fn get_bucket_website(
        &self,
        req: S3Request<GetBucketWebsiteInput>,
    ) -> S3Result<S3Response<GetBucketWebsiteOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Website).await
    }

    async fn get_bucket_lifecycle_configuration(
        &self,
        req: S3Request<GetBucketLifecycleConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketLifecycleConfigurationOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Lifecycle).await
    }

    async fn get_bucket_replication(
        &self,
        req: S3Request<GetBucketReplicationInput>,
    ) -> S3Result<S3Response<GetBucketReplicationOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Replication).await
    }

    async fn get_bucket_encryption(
        &self,
        req: S3Request<GetBucketEncryptionInput>,
    ) -> S3Result<S3Response<GetBucketEncryptionOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Encryption).await
    }

    async fn get_object_lock_configuration(
        &self,
        req: S3Request<GetObjectLockConfigurationInput>,
    ) -> S3Result<S3Response<GetObjectLockConfigurationOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::ObjectLock).await
    }

    async fn get_bucket_tagging(
        &self,
        req: S3Request<GetBucketTaggingInput>,
    ) -> S3Result<S3Response<GetBucketTaggingOutput>> {
        self.0.unset_config(&req.input.bucket, Unset::Tagging).await
    }

    async fn get_bucket_acl(&self, req: S3Request<GetBucketAclInput>) -> S3Result<S3Response<GetBucketAclOutput>> {
        Ok(S3Response::new(self.0.default_acl(&req.input.bucket).await?))
    }

    async fn get_bucket_request_payment(
        &self,
        req: S3Request<GetBucketRequestPaymentInput>,
    ) -> S3Result<S3Response<GetBucketRequestPaymentOutput>> {
        Ok(S3Response::new(self.0.default_request_payment(&req.input.bucket).await?))
    }

    async fn get_bucket_logging(
        &self,
        req: S3Request<GetBucketLoggingInput>,
    ) -> S3Result<S3Response<GetBucketLoggingOutput>> {
        Ok(S3Response::new(self.0.empty_config(&req.input.bucket).await?))
    }

    async fn get_bucket_accelerate_configuration(
        &self,
        req: S3Request<GetBucketAccelerateConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketAccelerateConfigurationOutput>> {
        Ok(S3Response::new(self.0.empty_config(&req.input.bucket).await?))
    }
}

/// A listing page in wire form, keys percent-encoded when the client asked (`encoding-type=url`).
struct WirePage {
    url: bool,
    contents: Vec<Object>,
    common_prefixes: Option<Vec<CommonPrefix>>,
}

impl WirePage {
    fn of(page: &Listing, encoding: Option<&EncodingType>) -> WirePage {
        let mut w = WirePage {
            url: encoding.is_some_and(|e| e.as_str() == EncodingType::URL),
            contents: Vec::new(),
            common_prefixes: None,
        };
        w.contents = page
            .objects
            .iter()
            .map(|o| Object {
                e_tag: Some(etag_of(o)),
                key: Some(w.encode(&o.key)),
                last_modified: Some(timestamp(o.last_modified_ms)),
                size: Some(o.size as i64),
                storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
                ..Default::default()
            })
            .collect();
        w.common_prefixes = (!page.prefixes.is_empty())
            .then(|| page.prefixes.iter().map(|p| CommonPrefix { prefix: Some(w.encode(p)) }).collect());
        w
    }

    fn encode(&self, key: &str) -> String {
        if self.url { url_encode_key(key) } else { key.to_string() }
    }
}

impl ObjectStore {
    async fn delete_one(&self, bucket: &str, key: &str, writer: &Writer) -> S3Result<()> {
        let events = self
            .events_for(&Change { bucket, key, event_name: "ObjectRemoved:Delete", size: None, etag: None }, writer);
        let removed = meta::delete_object(&self.store, bucket.to_string(), key.to_string(), events.clone())
            .await
            .map_err(meta_error)?;
        // The events were stored only if the object was there to remove.
        if let Some(blob) = removed {
            self.engine.accept_committed_events(events);
            self.blobs.remove(&blob).await;
        }
        Ok(())
    }

    async fn upload_of(&self, upload_id: &str, bucket: &str, key: &str) -> S3Result<UploadRow> {
        match meta::upload(&self.store, upload_id.to_string()).await.map_err(internal)? {
            Some(u) if u.bucket == bucket && u.key == key => Ok(u),
            _ => Err(meta_error(MetaError::NoSuchUpload)),
        }
    }
}
