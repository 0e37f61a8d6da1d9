//! The bucket sub-configurations Kumo does not keep (policy, ACLs, CORS,
//! website, lifecycle, replication, encryption, object lock, tags, logging,
//! acceleration, request payment), read back as S3 reads them on a bucket where
//! none was ever set: a "not configured" error for those that have one, an
//! empty (or the default) document for the rest. Clients that read a bucket's
//! whole state (Terraform reads all of them) then see a plain bucket.

use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Result, s3_error};

use super::ObjectStore;

/// The answers of the reads that have no "unset" document.
pub(super) enum Unset {
    Policy,
    Cors,
    Website,
    Lifecycle,
    Replication,
    Encryption,
    ObjectLock,
    Tagging,
}

impl Unset {
    fn error(self) -> S3Error {
        match self {
            Unset::Policy => s3_error!(NoSuchBucketPolicy, "The bucket policy does not exist"),
            Unset::Cors => s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist"),
            Unset::Website => {
                s3_error!(NoSuchWebsiteConfiguration, "The specified bucket does not have a website configuration")
            }
            Unset::Lifecycle => s3_error!(NoSuchLifecycleConfiguration, "The lifecycle configuration does not exist"),
            Unset::Replication => {
                s3_error!(ReplicationConfigurationNotFoundError, "The replication configuration was not found")
            }
            Unset::Encryption => {
                // S3 answers this one 404, not the 400 s3s would give it.
                let mut e = S3Error::with_message(
                    S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                    "The server side encryption configuration was not found",
                );
                e.set_status_code(axum::http::StatusCode::NOT_FOUND);
                e
            }
            Unset::ObjectLock => s3_error!(
                ObjectLockConfigurationNotFoundError,
                "Object Lock configuration does not exist for this bucket"
            ),
            Unset::Tagging => s3_error!(NoSuchTagSet, "The TagSet does not exist"),
        }
    }
}

impl ObjectStore {
    /// The bucket must exist (NoSuchBucket first, as on S3); then the read is "unset".
    pub(super) async fn unset_config<T>(&self, bucket: &str, what: Unset) -> S3Result<T> {
        self.require_bucket(bucket).await?;
        Err(what.error())
    }

    /// GetBucketAcl on a bucket with the default (private) ACL: its owner has full control.
    pub(super) async fn default_acl(&self, bucket: &str) -> S3Result<GetBucketAclOutput> {
        self.require_bucket(bucket).await?;
        let owner = Owner { display_name: Some("kumo".into()), id: Some(self.account.clone()) };
        let grant = Grant {
            grantee: Some(Grantee {
                display_name: owner.display_name.clone(),
                email_address: None,
                id: owner.id.clone(),
                type_: Type::from_static(Type::CANONICAL_USER),
                uri: None,
            }),
            permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
        };
        Ok(GetBucketAclOutput { grants: Some(vec![grant]), owner: Some(owner) })
    }

    /// GetBucketRequestPayment: the bucket owner pays, S3's default.
    pub(super) async fn default_request_payment(&self, bucket: &str) -> S3Result<GetBucketRequestPaymentOutput> {
        self.require_bucket(bucket).await?;
        Ok(GetBucketRequestPaymentOutput { payer: Some(Payer::from_static(Payer::BUCKET_OWNER)) })
    }

    /// Reads whose unset answer is an empty document (logging, acceleration).
    pub(super) async fn empty_config<T: Default>(&self, bucket: &str) -> S3Result<T> {
        self.require_bucket(bucket).await?;
        Ok(T::default())
    }
}
