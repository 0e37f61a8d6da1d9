//! The engine's execution roles, served by IAM: Lambda (the service
//! principal `lambda.amazonaws.com`) assumes a function's role for each
//! environment, with the function's name as the session name.

use std::sync::Arc;

use super::service::IamService;
use crate::engine::roles::{ExecutionRoles, RoleCredentials, SESSION_DURATION};

pub struct LambdaExecutionRoles(pub Arc<IamService>);

const LAMBDA: &str = "lambda.amazonaws.com";

#[async_trait::async_trait]
impl ExecutionRoles for LambdaExecutionRoles {
    fn assumable_by_lambda(&self, role_arn: &str) -> bool {
        self.0.role_trusts_service(role_arn, LAMBDA)
    }

    async fn session(&self, role_arn: &str, function_name: &str) -> Result<RoleCredentials, String> {
        // The role may have been deleted or its trust changed since the function was created.
        let role = self
            .0
            .role_by_arn(role_arn)
            .filter(|_| self.assumable_by_lambda(role_arn))
            .ok_or_else(|| "The role defined for the function cannot be assumed by Lambda.".to_string())?;
        let session = self
            .0
            .issue_role_session(&role.name, function_name, SESSION_DURATION, crate::engine::now_ms())
            .await
            .map_err(|e| e.to_string())?;
        let c = session.credentials;
        Ok(RoleCredentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            expiration_ms: c.expiration_ms,
        })
    }
}
