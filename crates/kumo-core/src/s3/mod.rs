//! Kumo's S3 side: which functions a bucket notifies, the event those
//! functions receive, and which IAM action each S3 operation needs.
//!
//! The S3 server itself lives outside the core; this module holds the rules
//! it applies so they can be tested without a bucket on disk.

pub mod access;
pub mod event;
pub mod notification;

/// `arn:aws:s3:::bucket`. S3 ARNs carry neither region nor account: bucket
/// names are global, so the ARN does not need them to be unique.
pub fn bucket_arn(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}")
}

/// `arn:aws:s3:::bucket/key`, with the key raw (not URL-encoded): this is the
/// form IAM policies are written against and matched with.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert_eq!(bucket_arn("photos"), "arn:aws:s3:::photos");
        assert_eq!(object_arn("photos", "2024/red flower.jpg"), "arn:aws:s3:::photos/2024/red flower.jpg");
    }
}
