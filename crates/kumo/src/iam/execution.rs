//! The engine's execution roles, served by IAM: Lambda (the service
//! principal `lambda.amazonaws.com`) assumes a function's role for each
//! environment, with the function's name as the session name.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kumo_core::policy::{Policy, PolicyKind, broad_grants};

use super::service::IamService;
use crate::engine::roles::{ExecutionRoles, REFRESH_MARGIN_MS, RoleCredentials, SESSION_DURATION};

const LAMBDA: &str = "lambda.amazonaws.com";

pub struct LambdaExecutionRoles {
    iam: Arc<IamService>,
    /// Live sessions by (role ARN, function): environments of one function
    /// share one, so a cold start costs no IAM write while it lasts.
    sessions: Mutex<HashMap<(String, String), RoleCredentials>>,
}

impl LambdaExecutionRoles {
    pub fn new(iam: Arc<IamService>) -> LambdaExecutionRoles {
        LambdaExecutionRoles { iam, sessions: Mutex::new(HashMap::new()) }
    }
}

#[async_trait::async_trait]
impl ExecutionRoles for LambdaExecutionRoles {
    fn assumable_by_lambda(&self, role_arn: &str) -> bool {
        self.iam.role_trusts_service(role_arn, LAMBDA)
    }

    fn broad_grants(&self, role_arn: &str) -> Vec<String> {
        let Some(role) = self.iam.role_by_arn(role_arn) else { return Vec::new() };
        self.iam
            .read(|state| state.role_policies(&role.name))
            .into_iter()
            .filter_map(|(label, doc)| Policy::parse(&doc, PolicyKind::Identity).ok().map(|p| (label, p)))
            .flat_map(|(label, policy)| broad_grants(&format!("role {}: {label}", role.name), &policy))
            .collect()
    }

    async fn session(&self, role_arn: &str, function_name: &str) -> Result<RoleCredentials, String> {
        // The role may have been deleted or its trust changed since the function was created.
        let role = self
            .iam
            .role_by_arn(role_arn)
            .filter(|_| self.assumable_by_lambda(role_arn))
            .ok_or_else(|| "The role defined for the function cannot be assumed by Lambda.".to_string())?;
        let now = crate::engine::now_ms();
        let key = (role.arn.clone(), function_name.to_string());
        let cached = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        // Reused only while it has twice the margin left and still authenticates
        // (a role deleted and made again does not revive old sessions).
        if let Some(c) = cached.filter(|c| {
            c.expiration_ms - now > 2 * REFRESH_MARGIN_MS
                && self.iam.resolve_access_key(&c.access_key_id, now).is_some_and(|k| !k.expired)
        }) {
            return Ok(c);
        }
        let session = self
            .iam
            .issue_role_session(&role.name, function_name, SESSION_DURATION, now)
            .await
            .map_err(|e| e.to_string())?;
        let c = session.credentials;
        let credentials = RoleCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration_ms: c.expiration_ms,
        };
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(key, credentials.clone());
        Ok(credentials)
    }
}
