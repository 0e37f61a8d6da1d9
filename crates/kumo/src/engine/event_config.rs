//! PutFunctionEventInvokeConfig and friends: asynchronous invocation settings
//! per version or alias, kept in the function's metadata.

use super::now_ms;
use kumo_core::ApiError;
use kumo_core::destination::{Destination, DestinationKind, DestinationUse};
use kumo_core::event_config::{EventInvokeConfig, EventInvokeConfigInput};
use kumo_core::function::FunctionMeta;
use kumo_core::names::FunctionRef;
use kumo_core::retry::RetryPolicy;

use super::{Engine, store_error};

/// A configuration with the qualified ARN it belongs to.
pub struct EventConfigView {
    pub function_arn: String,
    pub config: EventInvokeConfig,
}

impl Engine {
    /// (function name, qualifier key) of an existing function, version or alias.
    fn config_target(&self, raw: &str, qualifier: Option<&str>) -> Result<(String, String), ApiError> {
        self.resolve(raw, qualifier, None, |_, version, label| {
            (version.name.clone(), label.unwrap_or_else(|| "$LATEST".to_string()))
        })
    }

    fn check_destination(&self, own_name: &str, arn: &str, usage: DestinationUse) -> Result<(), ApiError> {
        let invalid = || ApiError::invalid_parameter(format!("The destination ARN {arn} is invalid."));
        let destination = Destination::for_use(arn, usage)?;
        if destination.kind == DestinationKind::Bucket
            && let Some(buckets) = self.buckets.get()
        {
            let bucket = arn.rsplit(':').next().unwrap_or_default();
            if !buckets.bucket_exists(bucket) {
                return Err(ApiError::invalid_parameter(format!(
                    "The destination ARN {arn} is invalid: the bucket does not exist."
                )));
            }
            return Ok(());
        }
        if destination.kind != DestinationKind::Function {
            // Refused now rather than accepted and never delivered.
            return Err(ApiError::invalid_parameter(format!(
                "The destination ARN {arn} is invalid: Kumo does not serve {} yet; a destination can be a Lambda function or (on failure) an S3 bucket.",
                destination.kind.service_name()
            )));
        }
        let Ok(target) = FunctionRef::parse(arn) else { return Err(invalid()) };
        if target.name == own_name {
            return Err(ApiError::invalid_parameter("You can't specify the function as a destination for itself."));
        }
        self.resolve(arn, None, None, |_, _, _| ()).map_err(|_| invalid())
    }

    /// Put (replace) or Update (merge) a configuration.
    pub async fn put_event_config(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: EventInvokeConfigInput,
        merge: bool,
    ) -> Result<EventConfigView, ApiError> {
        let (name, key) = self.config_target(raw, qualifier)?;
        input.validate()?;
        let destinations =
            [(&input.on_success, DestinationUse::OnSuccess), (&input.on_failure, DestinationUse::OnFailure)];
        for (arn, usage) in destinations {
            if let Some(Some(arn)) = arn {
                self.check_destination(&name, arn, usage)?;
            }
        }
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        let config = match (merge, state.meta.event_invoke_configs.get(&key)) {
            (true, Some(existing)) => input.update(existing, now_ms()),
            (true, None) => {
                return Err(ApiError::not_found(format!(
                    "The function {} doesn't have an EventInvokeConfig",
                    self.cfg.scope.qualified_arn(&name, &key)
                )));
            }
            (false, _) => input.put(now_ms()),
        };
        let mut meta: FunctionMeta = state.meta.clone();
        meta.event_invoke_configs.insert(key.clone(), config.clone());
        self.store.put_meta(&name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(EventConfigView { function_arn: self.cfg.scope.qualified_arn(&name, &key), config })
    }

    pub fn get_event_config(&self, raw: &str, qualifier: Option<&str>) -> Result<EventConfigView, ApiError> {
        let (name, key) = self.config_target(raw, qualifier)?;
        let function_arn = self.cfg.scope.qualified_arn(&name, &key);
        let config = self.read_functions().get(&name).and_then(|s| s.meta.event_invoke_configs.get(&key).cloned());
        match config {
            Some(config) => Ok(EventConfigView { function_arn, config }),
            None => Err(ApiError::not_found(format!("The function {function_arn} doesn't have an EventInvokeConfig"))),
        }
    }

    pub async fn delete_event_config(&self, raw: &str, qualifier: Option<&str>) -> Result<(), ApiError> {
        let (name, key) = self.config_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        if !self.current(&name)?.meta.event_invoke_configs.contains_key(&key) {
            let arn = self.cfg.scope.qualified_arn(&name, &key);
            return Err(ApiError::not_found(format!("The function {arn} doesn't have an EventInvokeConfig")));
        }
        let mut meta = self.current(&name)?.meta;
        meta.event_invoke_configs.remove(&key);
        self.store.put_meta(&name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(())
    }

    /// Drops the settings of a deleted version or alias (its EventInvokeConfig
    /// and its resource-based policy, as Lambda does). The caller holds the control lock.
    pub(super) async fn forget_qualifier_settings(&self, name: &str, key: &str) -> Result<(), ApiError> {
        let Ok(state) = self.current(name) else { return Ok(()) };
        if !state.meta.event_invoke_configs.contains_key(key)
            && !state.meta.resource_policies.contains_key(key)
            && !state.meta.function_urls.contains_key(key)
        {
            return Ok(());
        }
        let mut meta = state.meta;
        meta.event_invoke_configs.remove(key);
        meta.resource_policies.remove(key);
        // An alias's function URL goes with it, as on Lambda.
        meta.function_urls.remove(key);
        self.store.put_meta(name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(name) {
            s.meta = meta;
        }
        Ok(())
    }

    pub fn list_event_configs(&self, raw: &str) -> Result<Vec<EventConfigView>, ApiError> {
        let name = self.unqualified(raw)?;
        let state = self.current(&name)?;
        Ok(state
            .meta
            .event_invoke_configs
            .iter()
            .map(|(key, config)| EventConfigView {
                function_arn: self.cfg.scope.qualified_arn(&name, key),
                config: config.clone(),
            })
            .collect())
    }

    /// The settings an event invoked as `function` with `qualifier` runs under.
    pub(super) fn event_settings(
        &self,
        function: &str,
        qualifier: Option<&str>,
        base: &RetryPolicy,
    ) -> (RetryPolicy, EventInvokeConfig) {
        let (name, from_name) = match FunctionRef::parse(function) {
            Ok(r) => (r.name, r.qualifier.map(|q| q.to_string())),
            Err(_) => (function.to_string(), None),
        };
        let key = qualifier.map(str::to_string).or(from_name).unwrap_or_else(|| "$LATEST".to_string());
        let config = self
            .read_functions()
            .get(&name)
            .and_then(|s| s.meta.event_invoke_configs.get(&key).cloned())
            .unwrap_or_default();
        (config.retry_policy(base), config)
    }
}
