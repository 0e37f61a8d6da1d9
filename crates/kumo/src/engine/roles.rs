//! Execution roles: Lambda assumes a function's role and hands each
//! environment the role session's temporary credentials.
//!
//! The engine asks IAM through [`ExecutionRoles`] (wired up by `serve`), so it
//! stays independent of how roles are stored.

use kumo_core::ApiError;

/// Temporary credentials for one environment.
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration_ms: i64,
}

/// How long an environment's credentials last. Lambda's run for hours;
/// environments are replaced before theirs run out (see [`REFRESH_MARGIN_MS`]).
pub const SESSION_DURATION: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// An idle environment whose credentials expire within this margin is not
/// reused: a fresh one gets fresh credentials (the rotation Lambda does by
/// recycling environments every few hours).
pub const REFRESH_MARGIN_MS: i64 = 15 * 60 * 1000;

#[async_trait::async_trait]
pub trait ExecutionRoles: Send + Sync {
    /// Whether Lambda may assume the role: it exists and its trust policy
    /// lets `lambda.amazonaws.com` assume it.
    fn assumable_by_lambda(&self, role_arn: &str) -> bool;
    /// A new session of the role for `function_name` (the session name, as on Lambda).
    async fn session(&self, role_arn: &str, function_name: &str) -> Result<RoleCredentials, String>;
    /// What the role's policies grant beyond least privilege (`*` actions or resources).
    fn broad_grants(&self, role_arn: &str) -> Vec<String>;
}

/// Lambda's refusal of a role it cannot assume.
pub fn unassumable_role() -> ApiError {
    ApiError::invalid_parameter("The role defined for the function cannot be assumed by Lambda.")
}

/// Where an `OnFailure` record bound for an S3 bucket goes (the object store,
/// wired up by `serve`).
#[async_trait::async_trait]
pub trait BucketDestinations: Send + Sync {
    fn bucket_exists(&self, bucket: &str) -> bool;
    /// Writes `record` into `bucket` as `function` (with its execution role's
    /// permissions, as Lambda does); the error says why it could not.
    async fn deliver(
        &self,
        bucket: &str,
        function: &str,
        role_arn: &str,
        record: bytes::Bytes,
        lineage: Option<kumo_core::lineage::Lineage>,
    ) -> Result<String, String>;
}
