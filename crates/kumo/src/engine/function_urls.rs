//! Function URL configurations (CreateFunctionUrlConfig and friends), one per
//! function or alias, kept in the function's metadata: durable with it, and
//! gone with the function or the alias.

use kumo_core::function::FunctionMeta;
use kumo_core::url::{self, FunctionUrlConfig, UrlConfigInput};
use kumo_core::{ApiError, ErrorCode};

use super::{Engine, ListPage, api_port, now_ms, store_error};

/// A configuration with the ARN and URL it belongs to.
#[derive(Debug, Clone)]
pub struct FunctionUrlView {
    pub config: FunctionUrlConfig,
    pub function_arn: String,
    pub url: String,
}

/// What a request to a URL invokes.
#[derive(Debug, Clone)]
pub struct UrlTarget {
    pub function: String,
    /// The alias, if the URL is an alias's.
    pub qualifier: Option<String>,
    /// The ARN `lambda:InvokeFunctionUrl` is decided on.
    pub function_arn: String,
    pub config: FunctionUrlConfig,
}

/// ListFunctionUrlConfigs' largest page.
const MAX_LIST_ITEMS: usize = 50;

fn missing_config() -> ApiError {
    ApiError::not_found("The resource you requested does not exist.")
}

impl Engine {
    /// (function name, qualifier key: "" or an alias name) of an existing target.
    fn url_target(&self, raw: &str, qualifier: Option<&str>) -> Result<(String, String), ApiError> {
        if let Some(q) = qualifier {
            url::check_qualifier(q)?;
        }
        let (name, label) = self.resolve(raw, qualifier, None, |_, v, label| (v.name.clone(), label))?;
        if let Some(label) = &label {
            // A qualifier inside the name (`f:1`, `f:$LATEST`) is held to the same rule.
            url::check_qualifier(label)?;
        }
        Ok((name, label.unwrap_or_default()))
    }

    fn url_arn(&self, name: &str, key: &str) -> String {
        if key.is_empty() { self.cfg.scope.function_arn(name) } else { self.cfg.scope.qualified_arn(name, key) }
    }

    fn url_view(&self, name: &str, key: &str, config: FunctionUrlConfig) -> FunctionUrlView {
        FunctionUrlView {
            url: url::function_url(&config.url_id, &self.cfg.scope.region, api_port(&self.cfg.api_endpoint)),
            function_arn: self.url_arn(name, key),
            config,
        }
    }

    async fn store_url(&self, name: &str, key: &str, config: Option<FunctionUrlConfig>) -> Result<(), ApiError> {
        let mut meta: FunctionMeta = self.current(name)?.meta;
        match config {
            Some(c) => meta.function_urls.insert(key.to_string(), c),
            None => meta.function_urls.remove(key),
        };
        self.store.put_meta(name, &meta).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(name) {
            s.meta = meta;
        }
        Ok(())
    }

    /// A fresh id no other URL has (collisions are astronomically unlikely; checked anyway).
    fn new_url_id(&self) -> String {
        loop {
            let mut bytes = [0u8; url::URL_ID_LEN];
            bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            let id = url::url_id_from_random(&bytes);
            if self.function_url_by_id(&id).is_none() {
                return id;
            }
        }
    }

    pub async fn create_function_url(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: &UrlConfigInput,
    ) -> Result<FunctionUrlView, ApiError> {
        let (name, key) = self.url_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        if self.current(&name)?.meta.function_urls.contains_key(&key) {
            return Err(ApiError::conflict(format!(
                "Failed to create function url config for [functionArn = {}]. Error message:  FunctionUrlConfig exists for this Lambda function",
                self.url_arn(&name, &key)
            )));
        }
        let config = input.create(self.new_url_id(), now_ms())?;
        self.store_url(&name, &key, Some(config.clone())).await?;
        Ok(self.url_view(&name, &key, config))
    }

    pub fn get_function_url(&self, raw: &str, qualifier: Option<&str>) -> Result<FunctionUrlView, ApiError> {
        let (name, key) = self.url_target(raw, qualifier)?;
        let config = self.current(&name)?.meta.function_urls.get(&key).cloned().ok_or_else(missing_config)?;
        Ok(self.url_view(&name, &key, config))
    }

    pub async fn update_function_url(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        input: &UrlConfigInput,
    ) -> Result<FunctionUrlView, ApiError> {
        let (name, key) = self.url_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        let existing = self.current(&name)?.meta.function_urls.get(&key).cloned().ok_or_else(missing_config)?;
        let config = input.update(&existing, now_ms())?;
        self.store_url(&name, &key, Some(config.clone())).await?;
        Ok(self.url_view(&name, &key, config))
    }

    pub async fn delete_function_url(&self, raw: &str, qualifier: Option<&str>) -> Result<(), ApiError> {
        let (name, key) = self.url_target(raw, qualifier)?;
        let _guard = self.control.lock().await;
        if !self.current(&name)?.meta.function_urls.contains_key(&key) {
            return Err(missing_config());
        }
        self.store_url(&name, &key, None).await
    }

    /// ListFunctionUrlConfigs: the function's and its aliases' configurations.
    pub fn list_function_urls(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<&str>,
    ) -> Result<ListPage<FunctionUrlView>, ApiError> {
        let limit = match max_items {
            None => MAX_LIST_ITEMS,
            Some(v) => v.parse::<usize>().ok().filter(|n| (1..=MAX_LIST_ITEMS).contains(n)).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Validation,
                    format!(
                        "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and {MAX_LIST_ITEMS}"
                    ),
                )
            })?,
        };
        let name = self.unqualified(raw)?;
        let state = self.current(&name)?;
        // The marker is `@` and the last key of the previous page (keys are
        // ordered; the unqualified function's key is empty, a marker must not be).
        let marker = marker.map(|m| m.strip_prefix('@').unwrap_or(m));
        let mut page: Vec<(&String, &FunctionUrlConfig)> = state
            .meta
            .function_urls
            .iter()
            .filter(|(key, _)| marker.is_none_or(|m| key.as_str() > m))
            .take(limit + 1)
            .collect();
        let next_marker = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|(key, _)| format!("@{key}"))
        } else {
            None
        };
        let items = page.into_iter().map(|(key, c)| self.url_view(&name, key, c.clone())).collect();
        Ok(ListPage { items, next_marker })
    }

    /// The URL with this id, for the data plane. A scan of the in-memory
    /// table: URLs are few and the scan takes microseconds, and it can never
    /// disagree with the configurations (no second index to keep in step).
    pub fn function_url_by_id(&self, url_id: &str) -> Option<UrlTarget> {
        let functions = self.read_functions();
        functions.iter().find_map(|(name, state)| {
            state.meta.function_urls.iter().find(|(_, c)| c.url_id == url_id).map(|(key, c)| UrlTarget {
                function: name.clone(),
                qualifier: (!key.is_empty()).then(|| key.clone()),
                function_arn: self.url_arn(name, key),
                config: c.clone(),
            })
        })
    }
}
