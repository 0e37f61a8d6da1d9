//! The control plane: create, update, publish, alias, delete.
//!
//! Every change is written to the store first and applied to the in-memory
//! state only once it is durable, under one control-plane lock.

use super::now_ms;
use std::collections::BTreeMap;
use std::sync::Arc;

use kumo_core::function::{
    Alias, CodeInfo, ConfigPatch, FunctionConfig, FunctionMeta, FunctionVersion, MAX_ZIPPED_BYTES, VersionId,
};
use kumo_core::names::{self, FunctionRef, Qualifier};
use kumo_core::{ApiError, ErrorCode};

use super::{Engine, FunctionState, create_name_error, function_name_error, store_error};
use crate::store::StoreError;
use crate::store::code::CodeError;

/// CreateFunction's inputs.
#[derive(Debug, Clone, Default)]
pub struct CreateFunction {
    pub name: String,
    pub patch: ConfigPatch,
    pub zip: Vec<u8>,
    pub publish: bool,
    pub tags: BTreeMap<String, String>,
}

/// UpdateFunctionCode's inputs.
#[derive(Debug, Clone, Default)]
pub struct UpdateCode {
    pub zip: Vec<u8>,
    pub publish: bool,
    pub revision_id: Option<String>,
}

/// A version as the API shows it, with the function-wide parts the API needs.
#[derive(Debug, Clone)]
pub struct FunctionView {
    pub version: Arc<FunctionVersion>,
    pub reserved_concurrency: Option<u32>,
    pub tags: BTreeMap<String, String>,
    /// Whether the caller named a qualifier (GetFunction then shows a qualified ARN).
    pub qualified_as: Option<String>,
}

/// A page of a list, with Lambda's opaque marker.
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn revision_mismatch() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
    )
}

fn code_error(e: CodeError) -> ApiError {
    match e {
        CodeError::NotAZip | CodeError::TooLargeUnzipped => ApiError::invalid_parameter(e.to_string()),
        CodeError::Io(io) => {
            tracing::error!(error = %io, "storing a code package failed");
            ApiError::service("Kumo could not store the code package; see the server log.")
        }
    }
}

/// Parses a FunctionName used by the control plane and checks it names this server's region.
pub(super) fn parse_ref(engine: &Engine, raw: &str) -> Result<FunctionRef, ApiError> {
    let r = FunctionRef::parse(raw).map_err(|_| function_name_error(raw))?;
    if let Some(region) = r.region.as_deref().filter(|reg| *reg != engine.cfg.scope.region) {
        return Err(ApiError::not_found(format!(
            "Functions from '{region}' are not reachable in this region ('{}')",
            engine.cfg.scope.region
        )));
    }
    if r.account.as_deref().is_some_and(|a| a != engine.cfg.scope.account) {
        return Err(engine.not_found(&r.name, None));
    }
    Ok(r)
}

impl Engine {
    async fn ingest_code(&self, zip: Vec<u8>) -> Result<CodeInfo, ApiError> {
        if zip.len() as u64 > MAX_ZIPPED_BYTES {
            return Err(ApiError::new(
                ErrorCode::RequestEntityTooLarge,
                format!("Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes"),
            ));
        }
        let code = self.code.clone();
        tokio::task::spawn_blocking(move || code.ingest(&zip))
            .await
            .map_err(|e| ApiError::service(format!("code ingestion failed: {e}")))?
            .map_err(code_error)
    }

    fn check_runtime_available(&self, runtime: &str) -> Result<(), ApiError> {
        match self.runtimes.unavailable_reason(runtime) {
            Some(reason) => Err(ApiError::invalid_parameter(reason)),
            None => Ok(()),
        }
    }

    fn view(&self, state: &FunctionState, version: Arc<FunctionVersion>, qualified_as: Option<String>) -> FunctionView {
        FunctionView {
            version,
            reserved_concurrency: state.meta.reserved_concurrency,
            tags: state.meta.tags.clone(),
            qualified_as,
        }
    }

    pub async fn create_function(&self, req: CreateFunction) -> Result<FunctionView, ApiError> {
        if req.name.len() > 64 && names::is_function_name(&req.name[..64]) && !req.name.contains(':') {
            return Err(ApiError::invalid_parameter(format!(
                "1 validation error detected: Value '{}' at 'functionName' failed to satisfy constraint: Member must have length less than or equal to 64",
                req.name
            )));
        }
        let r = FunctionRef::parse(&req.name).map_err(|_| create_name_error(&req.name))?;
        if r.qualifier.is_some() {
            return Err(create_name_error(&req.name));
        }
        let r = parse_ref(self, &req.name)?;
        let name = r.name;
        let config = FunctionConfig::create(&name, req.patch)?;
        kumo_core::tags::validate(&req.tags)?;
        self.check_runtime_available(&config.runtime)?;
        self.check_role(&config.role)?;
        let _guard = self.control.lock().await;
        if self.read_functions().contains_key(&name) {
            return Err(ApiError::conflict(format!("Function already exist: {name}")));
        }
        let code = self.ingest_code(req.zip).await?;
        let now = now_ms();
        let latest = Arc::new(FunctionVersion {
            name: name.clone(),
            version: VersionId::Latest,
            config,
            code,
            revision_id: new_revision(),
            last_modified_ms: now,
        });
        let meta = FunctionMeta {
            reserved_concurrency: None,
            tags: req.tags,
            created_ms: now,
            next_version: 1,
            ..FunctionMeta::default()
        };
        match self.store.insert_function(&latest, &meta).await {
            Ok(()) => {}
            Err(StoreError::FunctionExists(_)) => {
                return Err(ApiError::conflict(format!("Function already exist: {name}")));
            }
            Err(e) => return Err(store_error(e)),
        }
        let state = FunctionState { latest: latest.clone(), versions: BTreeMap::new(), aliases: BTreeMap::new(), meta };
        self.write_functions().insert(name.clone(), state.clone());
        if req.publish {
            let published = self.publish_locked(&name, None, None, None).await?;
            return Ok(published);
        }
        Ok(self.view(&state, latest, None))
    }

    /// Resolves a `FunctionName` (any spelling) and `Qualifier` to a version.
    /// An alias resolves to its primary version, or with `alias_roll` (uniform in
    /// [0, 1)) to the version its routing weights pick for one invocation.
    pub(super) fn resolve<T>(
        &self,
        raw: &str,
        qualifier: Option<&str>,
        alias_roll: Option<f64>,
        found: impl FnOnce(&FunctionState, Arc<FunctionVersion>, Option<String>) -> T,
    ) -> Result<T, ApiError> {
        let r = parse_ref(self, raw)?;
        let q = names::merge_qualifier(r.qualifier.clone(), qualifier).map_err(|e| match e {
            names::QualifierError::Mismatch => ApiError::invalid_parameter(e.to_string()),
            names::QualifierError::Invalid => invalid_qualifier(qualifier.unwrap_or_default()),
        })?;
        let functions = self.read_functions();
        let label = q.as_ref().map(ToString::to_string);
        let missing = || self.not_found(&r.name, label.as_deref());
        let state = functions.get(&r.name).ok_or_else(missing)?;
        let version = match &q {
            None | Some(Qualifier::Latest) => state.latest.clone(),
            Some(Qualifier::Version(n)) => state.versions.get(n).cloned().ok_or_else(missing)?,
            Some(Qualifier::Alias(a)) => {
                let alias = state.aliases.get(a).ok_or_else(missing)?;
                let target = alias_roll.map_or(alias.function_version, |roll| alias.route(roll));
                self.version_of(state, target).ok_or_else(missing)?
            }
        };
        Ok(found(state, version, label))
    }

    /// GetFunction / GetFunctionConfiguration.
    pub fn get_function(&self, raw: &str, qualifier: Option<&str>) -> Result<FunctionView, ApiError> {
        self.resolve(raw, qualifier, None, |state, version, label| self.view(state, version, label))
    }

    fn version_of(&self, state: &FunctionState, v: VersionId) -> Option<Arc<FunctionVersion>> {
        match v {
            VersionId::Latest => Some(state.latest.clone()),
            VersionId::Number(n) => state.versions.get(&n).cloned(),
        }
    }

    /// ListFunctions: $LATEST of every function (or every version with `all_versions`), 50 per page at most.
    pub fn list_functions(
        &self,
        marker: Option<&str>,
        max_items: Option<usize>,
        all_versions: bool,
    ) -> Result<ListPage<FunctionView>, ApiError> {
        let functions = self.read_functions();
        let mut names: Vec<&String> = functions.keys().collect();
        names.sort();
        let mut all = Vec::new();
        for name in names {
            let state = &functions[name];
            if all_versions {
                all.push(self.view(state, state.latest.clone(), Some("$LATEST".into())));
                for v in state.versions.values() {
                    all.push(self.view(state, v.clone(), Some(v.version.to_string())));
                }
            } else {
                all.push(self.view(state, state.latest.clone(), None));
            }
        }
        paginate(all, marker, max_items.unwrap_or(50).clamp(1, 50))
    }

    pub fn list_versions(
        &self,
        raw: &str,
        marker: Option<&str>,
        max_items: Option<usize>,
    ) -> Result<ListPage<FunctionView>, ApiError> {
        let r = parse_ref(self, raw)?;
        let functions = self.read_functions();
        let state = functions.get(&r.name).ok_or_else(|| self.not_found(&r.name, None))?;
        let mut all = vec![self.view(state, state.latest.clone(), Some("$LATEST".into()))];
        all.extend(state.versions.values().map(|v| self.view(state, v.clone(), Some(v.version.to_string()))));
        paginate(all, marker, max_items.unwrap_or(50).clamp(1, 50))
    }

    pub(super) fn unqualified(&self, raw: &str) -> Result<String, ApiError> {
        let r = parse_ref(self, raw)?;
        if r.qualifier.is_some() {
            return Err(function_name_error(raw));
        }
        Ok(r.name)
    }

    pub async fn update_code(&self, raw: &str, req: UpdateCode) -> Result<FunctionView, ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let current = self.current_at_revision(&name, req.revision_id.as_deref())?;
        let code = self.ingest_code(req.zip).await?;
        let latest = self.commit_latest(&name, FunctionVersion { code, ..(*current.latest).clone() }).await?;
        self.gc_code(&current.latest.code.sha256_hex);
        if req.publish {
            return self.publish_locked(&name, None, None, None).await;
        }
        let state = self.current(&name)?;
        Ok(self.view(&state, latest, None))
    }

    pub async fn update_config(
        &self,
        raw: &str,
        patch: ConfigPatch,
        revision_id: Option<String>,
    ) -> Result<FunctionView, ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let current = self.current_at_revision(&name, revision_id.as_deref())?;
        let role_changes = patch.role.is_some();
        let config = current.latest.config.apply(patch)?;
        if role_changes {
            self.check_role(&config.role)?;
        }
        self.check_runtime_available(&config.runtime)?;
        let latest = self.commit_latest(&name, FunctionVersion { config, ..(*current.latest).clone() }).await?;
        let state = self.current(&name)?;
        Ok(self.view(&state, latest, None))
    }

    /// The function's state, provided the caller's `RevisionId` (if any) is still current.
    fn current_at_revision(&self, name: &str, revision_id: Option<&str>) -> Result<FunctionState, ApiError> {
        let current = self.current(name)?;
        if revision_id.is_some_and(|r| r != current.latest.revision_id) {
            return Err(revision_mismatch());
        }
        Ok(current)
    }

    /// Stores a changed $LATEST under a new revision, then makes it current.
    async fn commit_latest(&self, name: &str, changed: FunctionVersion) -> Result<Arc<FunctionVersion>, ApiError> {
        let latest = Arc::new(FunctionVersion { revision_id: new_revision(), last_modified_ms: now_ms(), ..changed });
        self.store.put_latest(&latest).await.map_err(store_error)?;
        self.replace_latest(name, latest.clone());
        Ok(latest)
    }

    pub(super) fn current(&self, name: &str) -> Result<FunctionState, ApiError> {
        self.read_functions().get(name).cloned().ok_or_else(|| self.not_found(name, None))
    }

    fn replace_latest(&self, name: &str, latest: Arc<FunctionVersion>) {
        let revision = latest.revision_id.clone();
        if let Some(state) = self.write_functions().get_mut(name) {
            state.latest = latest;
        }
        // Running environments of the old revision finish their invocation, then go.
        self.retire_pools(name, |k| k.version != VersionId::Latest || k.revision == revision);
    }

    pub async fn publish_version(
        &self,
        raw: &str,
        code_sha256: Option<String>,
        description: Option<String>,
        revision_id: Option<String>,
    ) -> Result<FunctionView, ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        self.publish_locked(&name, code_sha256, description, revision_id).await
    }

    async fn publish_locked(
        &self,
        name: &str,
        code_sha256: Option<String>,
        description: Option<String>,
        revision_id: Option<String>,
    ) -> Result<FunctionView, ApiError> {
        let state = self.current(name)?;
        if let Some(sha) = code_sha256.filter(|s| *s != state.latest.code.sha256_b64) {
            return Err(ApiError::invalid_parameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({}). Please try again with the CodeSHA256 in $LATEST.",
                state.latest.code.sha256_b64
            )));
        }
        if revision_id.is_some_and(|r| r != state.latest.revision_id) {
            return Err(revision_mismatch());
        }
        // Lambda publishes nothing new when neither code nor configuration changed.
        if let Some(last) = state.versions.values().next_back()
            && state.latest.same_content_as(last)
            && description.is_none()
        {
            return Ok(self.view(&state, last.clone(), Some(last.version.to_string())));
        }
        let number = state.meta.next_version;
        let mut config = state.latest.config.clone();
        if let Some(d) = description {
            config.description = d;
        }
        let version = Arc::new(FunctionVersion {
            name: name.to_string(),
            version: VersionId::Number(number),
            config,
            code: state.latest.code.clone(),
            revision_id: new_revision(),
            last_modified_ms: now_ms(),
        });
        let meta = FunctionMeta { next_version: number + 1, ..state.meta.clone() };
        self.store.insert_version(&version, &meta).await.map_err(store_error)?;
        let mut functions = self.write_functions();
        let entry = functions.get_mut(name).ok_or_else(|| self.not_found(name, None))?;
        entry.versions.insert(number, version.clone());
        entry.meta = meta;
        let view = self.view(entry, version, Some(number.to_string()));
        Ok(view)
    }

    pub async fn delete_function(&self, raw: &str, qualifier: Option<&str>) -> Result<(), ApiError> {
        let r = parse_ref(self, raw)?;
        let q = names::merge_qualifier(r.qualifier.clone(), qualifier).map_err(|e| match e {
            names::QualifierError::Mismatch => ApiError::invalid_parameter(e.to_string()),
            names::QualifierError::Invalid => invalid_qualifier(qualifier.unwrap_or_default()),
        })?;
        let name = r.name;
        let _guard = self.control.lock().await;
        match q {
            Some(Qualifier::Latest) => {
                Err(ApiError::invalid_parameter("$LATEST version cannot be deleted without deleting the function."))
            }
            Some(Qualifier::Alias(_)) => {
                Err(ApiError::invalid_parameter("Deletion of aliases is not currently supported."))
            }
            Some(Qualifier::Version(n)) => {
                let state = self.current(&name)?;
                let Some(version) = state.versions.get(&n).cloned() else { return Ok(()) };
                let referencing: Vec<&str> = state
                    .aliases
                    .values()
                    .filter(|a| a.versions().any(|v| v == VersionId::Number(n)))
                    .map(|a| a.name.as_str())
                    .collect();
                if !referencing.is_empty() {
                    return Err(ApiError::conflict(format!(
                        "Unable to delete version because the following aliases reference it: [{}]",
                        referencing.join(", ")
                    )));
                }
                self.store.delete_version(&name, n).await.map_err(store_error)?;
                if let Some(s) = self.write_functions().get_mut(&name) {
                    s.versions.remove(&n);
                }
                self.forget_qualifier_settings(&name, &n.to_string()).await?;
                self.retire_pools(&name, |k| k.version != VersionId::Number(n));
                self.gc_code(&version.code.sha256_hex);
                Ok(())
            }
            None => {
                let state = self.current(&name)?;
                self.store.delete_function(&name).await.map_err(store_error)?;
                self.write_functions().remove(&name);
                self.lock_concurrency().remove(&name);
                self.retire_pools(&name, |_| false);
                self.gc_code(&state.latest.code.sha256_hex);
                for v in state.versions.values() {
                    self.gc_code(&v.code.sha256_hex);
                }
                Ok(())
            }
        }
    }

    /// Removes a package from disk once no version of any function uses it.
    fn gc_code(&self, sha256_hex: &str) {
        let in_use = self.read_functions().values().any(|s| {
            s.latest.code.sha256_hex == sha256_hex || s.versions.values().any(|v| v.code.sha256_hex == sha256_hex)
        });
        if !in_use {
            let code = self.code.clone();
            let sha = sha256_hex.to_string();
            // Environments still running it keep their open files; new ones cannot start.
            tokio::task::spawn_blocking(move || code.remove(&sha));
        }
    }

    // ----- aliases -----

    fn alias_arn(&self, function: &str, alias: &str) -> String {
        self.cfg.scope.qualified_arn(function, alias)
    }

    fn check_alias_target(
        &self,
        state: &FunctionState,
        function: &str,
        version: &str,
        weights: &BTreeMap<String, f64>,
    ) -> Result<(VersionId, BTreeMap<u64, f64>), ApiError> {
        let target = match Qualifier::parse(version) {
            Some(Qualifier::Latest) => VersionId::Latest,
            Some(Qualifier::Version(n)) if state.versions.contains_key(&n) => VersionId::Number(n),
            Some(Qualifier::Version(_)) => return Err(self.not_found(function, Some(version))),
            _ => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    format!(
                        "1 validation error detected: Value '{version}' at 'functionVersion' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)"
                    ),
                ));
            }
        };
        if weights.len() > 1 {
            return Err(ApiError::invalid_parameter(
                "Number of items in AdditionalVersionWeights cannot be greater than 1",
            ));
        }
        let mut routing = BTreeMap::new();
        for (k, w) in weights {
            if !(0.0..=1.0).contains(w) {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    format!(
                        "1 validation error detected: Value '{{{k}={w:?}}}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]"
                    ),
                ));
            }
            let n: u64 = k.parse().map_err(|_| {
                ApiError::new(
                    ErrorCode::Validation,
                    format!("1 validation error detected: Value '{{{k}={w:?}}}' at 'routingConfig.additionalVersionWeights' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+, Member must not be null]"),
                )
            })?;
            if target == VersionId::Latest {
                return Err(ApiError::invalid_parameter(
                    "$LATEST is not supported for an alias pointing to more than 1 version",
                ));
            }
            if target == VersionId::Number(n) {
                return Err(ApiError::invalid_parameter(format!(
                    "Invalid function version {n}. Function version {n} is already included in routing configuration."
                )));
            }
            if !state.versions.contains_key(&n) {
                return Err(self.not_found(function, Some(k)));
            }
            routing.insert(n, *w);
        }
        Ok((target, routing))
    }

    pub async fn create_alias(
        &self,
        raw: &str,
        alias: &str,
        version: &str,
        description: Option<String>,
        weights: BTreeMap<String, f64>,
    ) -> Result<(String, Alias), ApiError> {
        let name = self.unqualified(raw)?;
        if !names::is_alias_name(alias) {
            return Err(alias_name_error(alias));
        }
        let _guard = self.control.lock().await;
        let state = self.read_functions().get(&name).cloned().ok_or_else(|| self.not_found(&name, Some(version)))?;
        if state.aliases.contains_key(alias) {
            return Err(ApiError::conflict(format!("Alias already exists: {}", self.alias_arn(&name, alias))));
        }
        let (target, routing) = self.check_alias_target(&state, &name, version, &weights)?;
        let a = Alias {
            name: alias.to_string(),
            function_version: target,
            description: description.unwrap_or_default(),
            additional_version_weights: routing,
            revision_id: new_revision(),
        };
        self.save_alias(&name, a).await
    }

    /// Stores an alias, then makes it visible; returns it with its ARN.
    async fn save_alias(&self, function: &str, alias: Alias) -> Result<(String, Alias), ApiError> {
        self.store.put_alias(function, &alias).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(function) {
            s.aliases.insert(alias.name.clone(), alias.clone());
        }
        Ok((self.alias_arn(function, &alias.name), alias))
    }

    pub fn get_alias(&self, raw: &str, alias: &str) -> Result<(String, Alias), ApiError> {
        let name = self.unqualified(raw)?;
        let functions = self.read_functions();
        let state = functions.get(&name).ok_or_else(|| self.not_found(&name, None))?;
        let a = state
            .aliases
            .get(alias)
            .ok_or_else(|| ApiError::not_found(format!("Cannot find alias arn: {}", self.alias_arn(&name, alias))))?;
        Ok((self.alias_arn(&name, alias), a.clone()))
    }

    pub fn list_aliases(&self, raw: &str, function_version: Option<&str>) -> Result<Vec<(String, Alias)>, ApiError> {
        let name = self.unqualified(raw)?;
        let functions = self.read_functions();
        let state = functions.get(&name).ok_or_else(|| self.not_found(&name, None))?;
        Ok(state
            .aliases
            .values()
            .filter(|a| function_version.is_none_or(|v| a.function_version.to_string() == v))
            .map(|a| (self.alias_arn(&name, &a.name), a.clone()))
            .collect())
    }

    pub async fn update_alias(
        &self,
        raw: &str,
        alias: &str,
        version: Option<String>,
        description: Option<String>,
        weights: Option<BTreeMap<String, f64>>,
        revision_id: Option<String>,
    ) -> Result<(String, Alias), ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        let current =
            state.aliases.get(alias).cloned().ok_or_else(|| {
                ApiError::not_found(format!("Cannot find alias arn: {}", self.alias_arn(&name, alias)))
            })?;
        if revision_id.is_some_and(|r| r != current.revision_id) {
            return Err(revision_mismatch());
        }
        let version = version.unwrap_or_else(|| current.function_version.to_string());
        let weights = weights
            .unwrap_or_else(|| current.additional_version_weights.iter().map(|(k, v)| (k.to_string(), *v)).collect());
        let (target, routing) = self.check_alias_target(&state, &name, &version, &weights)?;
        let a = Alias {
            name: alias.to_string(),
            function_version: target,
            description: description.unwrap_or(current.description),
            additional_version_weights: routing,
            revision_id: new_revision(),
        };
        self.save_alias(&name, a).await
    }

    pub async fn delete_alias(&self, raw: &str, alias: &str) -> Result<(), ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        if !state.aliases.contains_key(alias) {
            return Ok(());
        }
        self.store.delete_alias(&name, alias).await.map_err(store_error)?;
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.aliases.remove(alias);
        }
        self.forget_qualifier_settings(&name, alias).await
    }

    // ----- concurrency -----

    pub async fn put_concurrency(&self, raw: &str, reserved: Option<i64>) -> Result<u32, ApiError> {
        let r = parse_ref(self, raw)?;
        if r.qualifier.is_some() {
            return Err(ApiError::invalid_parameter(
                "This operation is permitted on Lambda functions only. Aliases and versions do not support this operation. Please specify either a function name or an unqualified function ARN.",
            ));
        }
        let name = r.name;
        let _guard = self.control.lock().await;
        let state = self.read_functions().get(&name).cloned().ok_or_else(|| self.not_found(&name, Some("$LATEST")))?;
        let value = match reserved {
            None => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null",
                ));
            }
            Some(v) if !(0..=i64::from(u32::MAX)).contains(&v) => {
                return Err(ApiError::new(
                    ErrorCode::Validation,
                    format!(
                        "1 validation error detected: Value '{v}' at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must have value greater than or equal to 0"
                    ),
                ));
            }
            Some(v) => v as u32,
        };
        let previous = state.meta.reserved_concurrency;
        self.lock_concurrency().set_reserved(&name, Some(value))?;
        let meta = FunctionMeta { reserved_concurrency: Some(value), ..state.meta.clone() };
        if let Err(e) = self.store.put_meta(&name, &meta).await {
            let _ = self.lock_concurrency().set_reserved(&name, previous);
            return Err(store_error(e));
        }
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(value)
    }

    pub fn get_concurrency(&self, raw: &str) -> Result<Option<u32>, ApiError> {
        let name = self.unqualified(raw)?;
        let functions = self.read_functions();
        let state = functions.get(&name).ok_or_else(|| self.not_found(&name, None))?;
        Ok(state.meta.reserved_concurrency)
    }

    pub async fn delete_concurrency(&self, raw: &str) -> Result<(), ApiError> {
        let name = self.unqualified(raw)?;
        let _guard = self.control.lock().await;
        let state = self.current(&name)?;
        let meta = FunctionMeta { reserved_concurrency: None, ..state.meta.clone() };
        self.store.put_meta(&name, &meta).await.map_err(store_error)?;
        let _ = self.lock_concurrency().set_reserved(&name, None);
        if let Some(s) = self.write_functions().get_mut(&name) {
            s.meta = meta;
        }
        Ok(())
    }

    /// GetAccountSettings: limits and usage.
    pub fn account_settings(&self) -> (u32, u32, usize, u64) {
        let functions = self.read_functions();
        let total_code: u64 = functions
            .values()
            .map(|s| s.latest.code.size + s.versions.values().map(|v| v.code.size).sum::<u64>())
            .sum();
        let c = self.lock_concurrency();
        (c.account_limit(), c.unreserved_limit(), functions.len(), total_code)
    }
}

pub(super) fn invalid_qualifier(value: &str) -> ApiError {
    if value.len() > 128 {
        return ApiError::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value '{value}' at 'qualifier' failed to satisfy constraint: Member must have length less than or equal to 128"
            ),
        );
    }
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at 'qualifier' failed to satisfy constraint: Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)"
        ),
    )
}

fn alias_name_error(value: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"
        ),
    )
}

/// Lambda's markers are opaque; Kumo's is the index of the next item.
fn paginate<T>(all: Vec<T>, marker: Option<&str>, max: usize) -> Result<ListPage<T>, ApiError> {
    let start = match marker {
        None | Some("") => 0,
        Some(m) => m.parse::<usize>().map_err(|_| ApiError::invalid_parameter("Invalid Marker"))?,
    };
    let total = all.len();
    let items: Vec<T> = all.into_iter().skip(start).take(max).collect();
    let next = start + items.len();
    Ok(ListPage { items, next_marker: (next < total).then(|| next.to_string()) })
}
