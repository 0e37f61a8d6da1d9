//! S3 buckets as `OnFailure` destinations of asynchronous invocations: Lambda
//! writes the invocation record as an object, with the function's execution
//! role's permissions.

use kumo_core::lineage::Lineage;

use super::ObjectStore;
use super::meta::{ObjectAttributes, ObjectRow};
use super::notify::Writer;

/// The object key of a record: `aws/lambda/async/FUNCTION/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-UUID`.
pub fn record_key(function: &str, now_ms: i64, id: &str) -> String {
    let stamp = kumo_core::time::iso8601_millis(now_ms);
    let (date, time) = stamp.split_once('T').unwrap_or((&stamp, ""));
    let day = date.replace('-', "/");
    let clock = time.get(..8).unwrap_or("00:00:00").replace(':', ".");
    format!("aws/lambda/async/{function}/{day}/{date}T{clock}-{id}")
}

#[async_trait::async_trait]
impl crate::engine::roles::BucketDestinations for ObjectStore {
    fn bucket_exists(&self, bucket: &str) -> bool {
        self.notification(bucket).is_some()
    }

    async fn deliver(
        &self,
        bucket: &str,
        function: &str,
        role_arn: &str,
        record: bytes::Bytes,
        lineage: Option<Lineage>,
    ) -> Result<String, String> {
        let now = crate::engine::now_ms();
        let key = record_key(function, now, &uuid::Uuid::new_v4().to_string());
        let resource = kumo_core::s3::object_arn(bucket, &key);
        if !self.role_may(role_arn, function, "s3:PutObject", &resource) {
            return Err(format!("the execution role {role_arn} may not s3:PutObject on {resource}"));
        }
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(record)]);
        let written = self.blobs.write(body, super::MAX_PUT_BYTES, None).await.map_err(|e| e.to_string())?;
        let row = ObjectRow {
            bucket: bucket.to_string(),
            key: key.clone(),
            blob: written.name,
            size: written.size,
            etag: super::blobs::hex(&written.md5),
            last_modified_ms: now,
            attributes: ObjectAttributes { content_type: Some("application/json".into()), ..Default::default() },
        };
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        let writer = Writer {
            principal_id: format!("AWS:{role_name}:{function}"),
            source_ip: "127.0.0.1".into(),
            request_id: uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase(),
            trace_header: lineage.map(|l| format!("Root=1-00000000-000000000000000000000000;{}", l.trace_field())),
            access_key_id: None,
        };
        self.commit(row, "ObjectCreated:Put", &writer).await.map_err(|e| format!("{e:?}"))?;
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn record_keys_follow_lambdas_layout() {
        // 2024-02-29T13:05:09.123Z
        let key = super::record_key("f", 1_709_211_909_123, "id");
        assert_eq!(key, "aws/lambda/async/f/2024/02/29/2024-02-29T13.05.09-id");
    }
}
