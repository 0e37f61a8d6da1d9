//! AddPermission, RemovePermission and GetPolicy: a function's resource-based
//! policies, one per function, version or alias, kept in its metadata.

use kumo_core::ApiError;
use kumo_core::function::FunctionMeta;
use kumo_core::function_policy::{self, PermissionInput};
use kumo_core::names::FunctionRef;

use super::{Engine, store_error};

/// GetPolicy's answer.
pub struct PolicyView {
    pub document: String,
    pub revision_id: String,
}

impl Engine {
    /// (function name, qualifier key: "" for the unqualified function) of an existing target.
    fn policy_target(&self, raw: &str, qualifier: Option<&str>) -> Result<(String, String), ApiError> {
        if qualifier == Some("$LATEST")
            || FunctionRef::parse(raw).is_ok_and(|r| r.qualifier.is_some_and(|q| q.to_string() == "$LATEST"))
        {
            return Err(ApiError::invalid_parameter("We currently do not support adding policies for $LATEST."));
        }
        self.resolve(raw, qualifier, None, |_, version, label| (version.name.clone(), label.unwrap_or_default()))
    }

    fn policy_arn(&self, name: &str, key: &str) -> String {
        if key.is_empty() { self.cfg.scope.function_arn(name) } else { self.cfg.scope.qualified_arn(name, key) }
    }

    async fn store_policy(&self, name: &str, key: &str, document: Option<String>) -> Result<(), ApiError> {
        let state = self.current(name)?;
        let mut meta: FunctionMeta = state.meta.clone();
        match document {
            Some(d) => meta.resource_policies.insert(key.to_string(), d),
            None => meta.resource_policies.remove(key),
        };
        self.store.put_meta(name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(name) {
            s.meta = meta;
        }
        Ok(())
    }

    /// AddPermission: the added statement as JSON text.
    pub async fn add_permission(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: &PermissionInput,
    ) -> Result<String, ApiError> {
        let (name, key) = self.policy_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        let existing = self.current(&name)?.meta.resource_policies.get(&key).cloned();
        let (document, statement) =
            function_policy::add_permission(existing.as_deref(), input, &self.policy_arn(&name, &key))?;
        self.store_policy(&name, &key, Some(document)).await?;
        Ok(statement)
    }

    pub async fn remove_permission(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        statement_id: &str,
    ) -> Result<(), ApiError> {
        let (name, key) = self.policy_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        let existing = self.current(&name)?.meta.resource_policies.get(&key).cloned();
        let Some(existing) = existing else { return Err(function_policy::no_policy()) };
        let remaining = function_policy::remove_permission(Some(&existing), statement_id)?;
        self.store_policy(&name, &key, remaining).await
    }

    pub fn get_policy(&self, raw: &str, qualifier: Option<&str>) -> Result<PolicyView, ApiError> {
        let (name, key) = self.policy_target(raw, qualifier)?;
        let state = self.current(&name)?;
        let document = state.meta.resource_policies.get(&key).cloned().ok_or_else(function_policy::no_policy)?;
        Ok(PolicyView { document, revision_id: state.latest.revision_id.clone() })
    }

    /// The resource-based policy that governs a request on `resource_arn`
    /// (a function ARN, qualified or not), if the function has one.
    pub fn resource_policy_of(&self, resource_arn: &str) -> Option<String> {
        let r = FunctionRef::parse(resource_arn).ok()?;
        let key = r.qualifier.map(|q| q.to_string()).unwrap_or_default();
        self.read_functions().get(&r.name)?.meta.resource_policies.get(&key).cloned()
    }
}
