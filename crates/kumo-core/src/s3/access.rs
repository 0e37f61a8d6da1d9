//! Which IAM action, on which kind of resource, each S3 operation needs, as
//! AWS's "Required permissions for Amazon S3 API operations" lists them.
//!
//! Several operations share one action (every way of writing an object needs
//! `s3:PutObject`), and deleting a bucket sub-configuration usually needs the
//! matching Put action, not a Delete one: AWS models those deletes as writing
//! an empty configuration.

use super::{bucket_arn, object_arn};

/// The kind of resource an action is authorised against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Resource {
    /// Not tied to a bucket: the policy resource is "*".
    Account,
    Bucket,
    Object,
}

/// The IAM action for an s3s operation name (the names are the S3 API
/// operation names, e.g. "GetObject", "ListObjectsV2",
/// "PutBucketNotificationConfiguration"). `None` for operations Kumo does not
/// authorise, which the caller should refuse.
///
/// `DeleteObjects` is authorised per key: the caller checks `s3:DeleteObject`
/// on each object it names. `CopyObject` and `UploadPartCopy` map to the
/// destination's `s3:PutObject`; the caller checks `s3:GetObject` on the
/// source as well.
pub fn required_action(operation: &str) -> Option<(&'static str, S3Resource)> {
    use S3Resource::{Account, Bucket, Object};
    let found = match operation {
        "ListBuckets" => ("s3:ListAllMyBuckets", Account),

        // Reading objects.
        "GetObject" | "HeadObject" | "SelectObjectContent" => ("s3:GetObject", Object),
        "GetObjectAttributes" => ("s3:GetObjectAttributes", Object),
        // Writing objects, by any route.
        "PutObject"
        | "PostObject"
        | "CopyObject"
        | "CreateMultipartUpload"
        | "UploadPart"
        | "UploadPartCopy"
        | "CompleteMultipartUpload" => ("s3:PutObject", Object),
        "DeleteObject" | "DeleteObjects" => ("s3:DeleteObject", Object),
        "AbortMultipartUpload" => ("s3:AbortMultipartUpload", Object),
        "ListParts" => ("s3:ListMultipartUploadParts", Object),
        "RestoreObject" => ("s3:RestoreObject", Object),
        "GetObjectTagging" => ("s3:GetObjectTagging", Object),
        "PutObjectTagging" => ("s3:PutObjectTagging", Object),
        "DeleteObjectTagging" => ("s3:DeleteObjectTagging", Object),
        "GetObjectAcl" => ("s3:GetObjectAcl", Object),
        "PutObjectAcl" => ("s3:PutObjectAcl", Object),
        "GetObjectLegalHold" => ("s3:GetObjectLegalHold", Object),
        "PutObjectLegalHold" => ("s3:PutObjectLegalHold", Object),
        "GetObjectRetention" => ("s3:GetObjectRetention", Object),
        "PutObjectRetention" => ("s3:PutObjectRetention", Object),

        // Buckets themselves and their listings. HeadBucket answers "may I
        // list this bucket", so it needs the listing permission.
        "CreateBucket" => ("s3:CreateBucket", Bucket),
        "DeleteBucket" => ("s3:DeleteBucket", Bucket),
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => ("s3:ListBucket", Bucket),
        "ListObjectVersions" => ("s3:ListBucketVersions", Bucket),
        "ListMultipartUploads" => ("s3:ListBucketMultipartUploads", Bucket),
        "GetBucketLocation" => ("s3:GetBucketLocation", Bucket),

        // Bucket sub-configurations.
        "GetBucketNotificationConfiguration" => ("s3:GetBucketNotification", Bucket),
        "PutBucketNotificationConfiguration" => ("s3:PutBucketNotification", Bucket),
        "GetBucketVersioning" => ("s3:GetBucketVersioning", Bucket),
        "PutBucketVersioning" => ("s3:PutBucketVersioning", Bucket),
        "GetBucketPolicy" => ("s3:GetBucketPolicy", Bucket),
        "PutBucketPolicy" => ("s3:PutBucketPolicy", Bucket),
        "DeleteBucketPolicy" => ("s3:DeleteBucketPolicy", Bucket),
        "GetBucketPolicyStatus" => ("s3:GetBucketPolicyStatus", Bucket),
        "GetBucketAcl" => ("s3:GetBucketAcl", Bucket),
        "PutBucketAcl" => ("s3:PutBucketAcl", Bucket),
        "GetBucketTagging" => ("s3:GetBucketTagging", Bucket),
        "PutBucketTagging" | "DeleteBucketTagging" => ("s3:PutBucketTagging", Bucket),
        "GetBucketCors" => ("s3:GetBucketCORS", Bucket),
        "PutBucketCors" | "DeleteBucketCors" => ("s3:PutBucketCORS", Bucket),
        "GetBucketEncryption" => ("s3:GetEncryptionConfiguration", Bucket),
        "PutBucketEncryption" | "DeleteBucketEncryption" => ("s3:PutEncryptionConfiguration", Bucket),
        "GetBucketLifecycleConfiguration" => ("s3:GetLifecycleConfiguration", Bucket),
        "PutBucketLifecycleConfiguration" | "DeleteBucketLifecycle" => ("s3:PutLifecycleConfiguration", Bucket),
        "GetBucketWebsite" => ("s3:GetBucketWebsite", Bucket),
        "PutBucketWebsite" => ("s3:PutBucketWebsite", Bucket),
        "DeleteBucketWebsite" => ("s3:DeleteBucketWebsite", Bucket),
        "GetBucketLogging" => ("s3:GetBucketLogging", Bucket),
        "PutBucketLogging" => ("s3:PutBucketLogging", Bucket),
        "GetBucketReplication" => ("s3:GetReplicationConfiguration", Bucket),
        "PutBucketReplication" | "DeleteBucketReplication" => ("s3:PutReplicationConfiguration", Bucket),
        "GetBucketRequestPayment" => ("s3:GetBucketRequestPayment", Bucket),
        "PutBucketRequestPayment" => ("s3:PutBucketRequestPayment", Bucket),
        "GetBucketAccelerateConfiguration" => ("s3:GetAccelerateConfiguration", Bucket),
        "PutBucketAccelerateConfiguration" => ("s3:PutAccelerateConfiguration", Bucket),
        "GetBucketOwnershipControls" => ("s3:GetBucketOwnershipControls", Bucket),
        "PutBucketOwnershipControls" | "DeleteBucketOwnershipControls" => ("s3:PutBucketOwnershipControls", Bucket),
        "GetPublicAccessBlock" => ("s3:GetBucketPublicAccessBlock", Bucket),
        "PutPublicAccessBlock" | "DeletePublicAccessBlock" => ("s3:PutBucketPublicAccessBlock", Bucket),
        "GetObjectLockConfiguration" => ("s3:GetBucketObjectLockConfiguration", Bucket),
        "PutObjectLockConfiguration" => ("s3:PutBucketObjectLockConfiguration", Bucket),
        "GetBucketAnalyticsConfiguration" | "ListBucketAnalyticsConfigurations" => {
            ("s3:GetAnalyticsConfiguration", Bucket)
        }
        "PutBucketAnalyticsConfiguration" | "DeleteBucketAnalyticsConfiguration" => {
            ("s3:PutAnalyticsConfiguration", Bucket)
        }
        "GetBucketInventoryConfiguration" | "ListBucketInventoryConfigurations" => {
            ("s3:GetInventoryConfiguration", Bucket)
        }
        "PutBucketInventoryConfiguration" | "DeleteBucketInventoryConfiguration" => {
            ("s3:PutInventoryConfiguration", Bucket)
        }
        "GetBucketMetricsConfiguration" | "ListBucketMetricsConfigurations" => ("s3:GetMetricsConfiguration", Bucket),
        "PutBucketMetricsConfiguration" | "DeleteBucketMetricsConfiguration" => ("s3:PutMetricsConfiguration", Bucket),
        "GetBucketIntelligentTieringConfiguration" | "ListBucketIntelligentTieringConfigurations" => {
            ("s3:GetIntelligentTieringConfiguration", Bucket)
        }
        "PutBucketIntelligentTieringConfiguration" | "DeleteBucketIntelligentTieringConfiguration" => {
            ("s3:PutIntelligentTieringConfiguration", Bucket)
        }
        _ => return None,
    };
    Some(found)
}

/// The resource string a request is authorised against: "*" for account
/// operations (ListAllMyBuckets takes no narrower resource), the bucket ARN,
/// or the object ARN with the raw key.
///
/// A missing bucket or key renders as empty. s3s only routes bucket and object
/// operations with their names present, and an ARN with an empty name matches
/// no statement that names a bucket, so a caller bug fails closed.
pub fn resource_arn(kind: S3Resource, bucket: Option<&str>, key: Option<&str>) -> String {
    match kind {
        S3Resource::Account => "*".to_string(),
        S3Resource::Bucket => bucket_arn(bucket.unwrap_or_default()),
        S3Resource::Object => object_arn(bucket.unwrap_or_default(), key.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_core_operations() {
        use S3Resource::*;
        let cases = [
            ("GetObject", "s3:GetObject", Object),
            ("HeadObject", "s3:GetObject", Object),
            ("PutObject", "s3:PutObject", Object),
            ("CreateMultipartUpload", "s3:PutObject", Object),
            ("UploadPart", "s3:PutObject", Object),
            ("CompleteMultipartUpload", "s3:PutObject", Object),
            ("CopyObject", "s3:PutObject", Object),
            ("UploadPartCopy", "s3:PutObject", Object),
            ("DeleteObject", "s3:DeleteObject", Object),
            ("DeleteObjects", "s3:DeleteObject", Object),
            ("AbortMultipartUpload", "s3:AbortMultipartUpload", Object),
            ("ListParts", "s3:ListMultipartUploadParts", Object),
            ("GetObjectTagging", "s3:GetObjectTagging", Object),
            ("ListObjects", "s3:ListBucket", Bucket),
            ("ListObjectsV2", "s3:ListBucket", Bucket),
            ("HeadBucket", "s3:ListBucket", Bucket),
            ("ListMultipartUploads", "s3:ListBucketMultipartUploads", Bucket),
            ("ListBuckets", "s3:ListAllMyBuckets", Account),
            ("CreateBucket", "s3:CreateBucket", Bucket),
            ("DeleteBucket", "s3:DeleteBucket", Bucket),
            ("GetBucketLocation", "s3:GetBucketLocation", Bucket),
            ("PutBucketNotificationConfiguration", "s3:PutBucketNotification", Bucket),
            ("GetBucketNotificationConfiguration", "s3:GetBucketNotification", Bucket),
            ("GetBucketVersioning", "s3:GetBucketVersioning", Bucket),
            ("DeleteBucketCors", "s3:PutBucketCORS", Bucket),
            ("DeleteBucketTagging", "s3:PutBucketTagging", Bucket),
        ];
        for (op, action, kind) in cases {
            assert_eq!(required_action(op), Some((action, kind)), "{op}");
        }
    }

    #[test]
    fn unknown_operations_have_no_action() {
        for op in ["", "getobject", "GetObjects", "Invoke", "WriteGetObjectResponse", "CreateSession"] {
            assert_eq!(required_action(op), None, "{op}");
        }
    }

    /// Every action is an `s3:` action, and object actions are never granted
    /// on a bucket ARN by mistake: the families that exist for both (tagging,
    /// ACLs) are told apart by the "Bucket" in the action name.
    #[test]
    fn actions_are_well_formed() {
        let ops = [
            "GetObjectAcl",
            "PutObjectAcl",
            "GetBucketAcl",
            "PutBucketAcl",
            "PutObjectTagging",
            "PutBucketTagging",
            "GetObjectLockConfiguration",
            "GetPublicAccessBlock",
            "ListBucketMetricsConfigurations",
        ];
        for op in ops {
            let (action, kind) = required_action(op).expect("known operation");
            assert!(action.starts_with("s3:"), "{op}");
            if kind == S3Resource::Object {
                assert!(!action.contains("Bucket"), "{op}");
            }
        }
    }

    /// Every operation s3s 0.14 routes is either mapped or deliberately left
    /// out, so a new route cannot slip through unnoticed as "unknown".
    #[test]
    fn covers_every_s3s_operation() {
        // S3 Tables, directory buckets (S3 Express), torrents and Object Lambda:
        // features Kumo does not offer, so their operations are refused.
        let left_out = [
            "CreateBucketMetadataTableConfiguration",
            "DeleteBucketMetadataTableConfiguration",
            "GetBucketMetadataTableConfiguration",
            "CreateSession",
            "ListDirectoryBuckets",
            "GetObjectTorrent",
            "WriteGetObjectResponse",
        ];
        let s3s_operations = "AbortMultipartUpload CompleteMultipartUpload CopyObject CreateBucket \
            CreateBucketMetadataTableConfiguration CreateMultipartUpload CreateSession DeleteBucket \
            DeleteBucketAnalyticsConfiguration DeleteBucketCors DeleteBucketEncryption \
            DeleteBucketIntelligentTieringConfiguration DeleteBucketInventoryConfiguration DeleteBucketLifecycle \
            DeleteBucketMetadataTableConfiguration DeleteBucketMetricsConfiguration DeleteBucketOwnershipControls \
            DeleteBucketPolicy DeleteBucketReplication DeleteBucketTagging DeleteBucketWebsite DeleteObject \
            DeleteObjectTagging DeleteObjects DeletePublicAccessBlock GetBucketAccelerateConfiguration GetBucketAcl \
            GetBucketAnalyticsConfiguration GetBucketCors GetBucketEncryption GetBucketIntelligentTieringConfiguration \
            GetBucketInventoryConfiguration GetBucketLifecycleConfiguration GetBucketLocation GetBucketLogging \
            GetBucketMetadataTableConfiguration GetBucketMetricsConfiguration GetBucketNotificationConfiguration \
            GetBucketOwnershipControls GetBucketPolicy GetBucketPolicyStatus GetBucketReplication \
            GetBucketRequestPayment GetBucketTagging GetBucketVersioning GetBucketWebsite GetObject GetObjectAcl \
            GetObjectAttributes GetObjectLegalHold GetObjectLockConfiguration GetObjectRetention GetObjectTagging \
            GetObjectTorrent GetPublicAccessBlock HeadBucket HeadObject ListBucketAnalyticsConfigurations \
            ListBucketIntelligentTieringConfigurations ListBucketInventoryConfigurations \
            ListBucketMetricsConfigurations ListBuckets ListDirectoryBuckets ListMultipartUploads \
            ListObjectVersions ListObjects ListObjectsV2 ListParts PostObject PutBucketAccelerateConfiguration \
            PutBucketAcl PutBucketAnalyticsConfiguration PutBucketCors PutBucketEncryption \
            PutBucketIntelligentTieringConfiguration PutBucketInventoryConfiguration \
            PutBucketLifecycleConfiguration PutBucketLogging PutBucketMetricsConfiguration \
            PutBucketNotificationConfiguration PutBucketOwnershipControls PutBucketPolicy PutBucketReplication \
            PutBucketRequestPayment PutBucketTagging PutBucketVersioning PutBucketWebsite PutObject PutObjectAcl \
            PutObjectLegalHold PutObjectLockConfiguration PutObjectRetention PutObjectTagging \
            PutPublicAccessBlock RestoreObject SelectObjectContent UploadPart UploadPartCopy \
            WriteGetObjectResponse";
        for op in s3s_operations.split_whitespace() {
            assert_eq!(required_action(op).is_none(), left_out.contains(&op), "{op}");
        }
    }

    #[test]
    fn resources() {
        assert_eq!(resource_arn(S3Resource::Account, None, None), "*");
        assert_eq!(resource_arn(S3Resource::Account, Some("b"), Some("k")), "*");
        assert_eq!(resource_arn(S3Resource::Bucket, Some("photos"), Some("ignored")), "arn:aws:s3:::photos");
        assert_eq!(
            resource_arn(S3Resource::Object, Some("photos"), Some("2024/red flower.jpg")),
            "arn:aws:s3:::photos/2024/red flower.jpg"
        );
        assert_eq!(resource_arn(S3Resource::Bucket, None, None), "arn:aws:s3:::");
    }
}
