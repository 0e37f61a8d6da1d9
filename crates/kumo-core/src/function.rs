//! Functions, versions and aliases: the domain model and Lambda's validation rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::destination::{Destination, DestinationUse};
use crate::error::{ApiError, ErrorCode};
use crate::runtime::{self, RuntimeSupport};

pub const MIN_MEMORY_MB: u32 = 128;
pub const MAX_MEMORY_MB: u32 = 10_240;
pub const MAX_TIMEOUT_S: u32 = 900;
pub const MIN_EPHEMERAL_MB: u32 = 512;
pub const MAX_EPHEMERAL_MB: u32 = 10_240;
pub const MAX_ENV_BYTES: usize = 4096;
/// Direct upload limit of a zipped package.
pub const MAX_ZIPPED_BYTES: u64 = 52_428_800;
/// Unzipped package limit (layers included on AWS).
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;

/// Variables Lambda sets itself and refuses from users.
pub const RESERVED_ENV_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
];

/// Which version of a function a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum VersionId {
    Latest,
    Number(u64),
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionId::Latest => f.write_str("$LATEST"),
            VersionId::Number(n) => write!(f, "{n}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggingConfig {
    pub log_format: String,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: String,
}

/// Everything a user sets with CreateFunction / UpdateFunctionConfiguration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionConfig {
    pub role: String,
    pub runtime: String,
    pub handler: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub environment: Option<BTreeMap<String, String>>,
    pub architecture: String,
    pub ephemeral_storage_mb: u32,
    pub tracing_mode: String,
    pub logging: LoggingConfig,
    pub dead_letter_target: Option<String>,
    pub kms_key_arn: Option<String>,
}

/// The deployment package a version runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeInfo {
    /// Hex SHA-256 of the zip: the content address on disk.
    pub sha256_hex: String,
    /// Base64 SHA-256, Lambda's `CodeSha256`.
    pub sha256_b64: String,
    pub size: u64,
    pub unzipped_size: u64,
}

/// $LATEST or a published version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionVersion {
    pub name: String,
    pub version: VersionId,
    pub config: FunctionConfig,
    pub code: CodeInfo,
    pub revision_id: String,
    pub last_modified_ms: i64,
}

/// An alias: a named pointer to a version, optionally splitting traffic with a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    pub name: String,
    pub function_version: VersionId,
    pub description: String,
    pub additional_version_weights: BTreeMap<u64, f64>,
    pub revision_id: String,
}

/// Function-wide settings that do not belong to a version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FunctionMeta {
    pub reserved_concurrency: Option<u32>,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    /// The number the next published version gets; numbers are never reused.
    pub next_version: u64,
    /// Asynchronous invocation settings by qualifier (`$LATEST`, a version number or an alias).
    #[serde(default)]
    pub event_invoke_configs: BTreeMap<String, crate::event_config::EventInvokeConfig>,
    /// Resource-based policy documents by qualifier (`""` for the unqualified function).
    #[serde(default)]
    pub resource_policies: BTreeMap<String, String>,
    /// What Kumo does with a recursive loop through this function (PutFunctionRecursionConfig).
    #[serde(default)]
    pub recursive_loop: crate::lineage::RecursiveLoop,
    /// Function URL configurations by qualifier (`""` for the unqualified function, else an alias).
    #[serde(default)]
    pub function_urls: BTreeMap<String, crate::url::FunctionUrlConfig>,
}

/// The optional fields of CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigPatch {
    pub role: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout_s: Option<i64>,
    pub memory_mb: Option<i64>,
    pub environment: Option<BTreeMap<String, String>>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage_mb: Option<i64>,
    pub tracing_mode: Option<String>,
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: Option<String>,
    pub dead_letter_target: Option<String>,
    pub kms_key_arn: Option<String>,
}

fn validation(value: impl std::fmt::Display, member: &str, constraint: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

/// Role ARN pattern: `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
pub fn is_role_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else { return false };
    let Some((partition, rest)) = rest.split_once(':') else { return false };
    if !(partition.is_empty() || partition.starts_with("aws")) {
        return false;
    }
    let Some(rest) = rest.strip_prefix("iam::") else { return false };
    let Some((account, rest)) = rest.split_once(':') else { return false };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Some(path) = rest.strip_prefix("role") else { return false };
    let path = path.strip_prefix('/').unwrap_or(path);
    !path.is_empty() && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@-_/".contains(&b))
}

fn is_env_key(k: &str) -> bool {
    let mut bytes = k.bytes();
    k.len() >= 2
        && bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks a runtime identifier the way CreateFunction does.
pub fn validate_runtime(runtime: &str) -> Result<(), ApiError> {
    match runtime::classify(runtime) {
        None => Err(ApiError::invalid_parameter(format!(
            "Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: [{}] or be a valid ARN",
            runtime::LAMBDA_RUNTIMES.join(", ")
        ))),
        Some(RuntimeSupport::Deprecated { successor }) => Err(ApiError::invalid_parameter(format!(
            "The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda functions. We recommend you use the new runtime ({successor}) while creating or updating functions."
        ))),
        Some(RuntimeSupport::Unsupported) => Err(ApiError::invalid_parameter(format!(
            "The runtime {runtime} is a Lambda runtime that Kumo cannot run: supported runtimes are python3.9 to python3.14, nodejs18.x to nodejs24.x, provided, provided.al2 and provided.al2023."
        ))),
        Some(RuntimeSupport::Supported(_)) => Ok(()),
    }
}

impl FunctionConfig {
    /// Builds a configuration for CreateFunction: Lambda's defaults, then the patch, then validation.
    pub fn create(name: &str, patch: ConfigPatch) -> Result<FunctionConfig, ApiError> {
        let role = patch.role.clone().ok_or_else(|| validation("null", "role", "Member must not be null"))?;
        let runtime = patch.runtime.clone().ok_or_else(|| {
            ApiError::invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with Zip packages.",
            )
        })?;
        let handler = patch.handler.clone().ok_or_else(|| {
            ApiError::invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with Zip packages.",
            )
        })?;
        let base = FunctionConfig {
            role,
            runtime,
            handler,
            description: String::new(),
            timeout_s: 3,
            memory_mb: 128,
            environment: None,
            architecture: "x86_64".into(),
            ephemeral_storage_mb: 512,
            tracing_mode: "PassThrough".into(),
            logging: LoggingConfig {
                log_format: "Text".into(),
                application_log_level: None,
                system_log_level: None,
                log_group: format!("/aws/lambda/{name}"),
            },
            dead_letter_target: None,
            kms_key_arn: None,
        };
        base.apply(patch)
    }

    /// UpdateFunctionConfiguration: fields present in the patch replace the current ones.
    pub fn apply(&self, patch: ConfigPatch) -> Result<FunctionConfig, ApiError> {
        let mut c = self.clone();
        if let Some(role) = patch.role {
            if !is_role_arn(&role) {
                return Err(validation(
                    &role,
                    "role",
                    "Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
                ));
            }
            c.role = role;
        }
        if let Some(runtime) = patch.runtime {
            validate_runtime(&runtime)?;
            c.runtime = runtime;
        }
        if let Some(handler) = patch.handler {
            if handler.len() > 128 {
                return Err(validation(&handler, "handler", "Member must have length less than or equal to 128"));
            }
            if handler.is_empty() || handler.chars().any(char::is_whitespace) {
                return Err(validation(&handler, "handler", "Member must satisfy regular expression pattern: [^\\s]+"));
            }
            c.handler = handler;
        }
        if let Some(description) = patch.description {
            if description.chars().count() > 256 {
                return Err(validation(
                    &description,
                    "description",
                    "Member must have length less than or equal to 256",
                ));
            }
            c.description = description;
        }
        if let Some(t) = patch.timeout_s {
            if t < 1 {
                return Err(validation(t, "timeout", "Member must have value greater than or equal to 1"));
            }
            if t > i64::from(MAX_TIMEOUT_S) {
                return Err(validation(t, "timeout", "Member must have value less than or equal to 900"));
            }
            c.timeout_s = t as u32;
        }
        if let Some(m) = patch.memory_mb {
            if m < i64::from(MIN_MEMORY_MB) {
                return Err(validation(m, "memorySize", "Member must have value greater than or equal to 128"));
            }
            if m > i64::from(MAX_MEMORY_MB) {
                return Err(validation(m, "memorySize", "Member must have value less than or equal to 10240"));
            }
            c.memory_mb = m as u32;
        }
        if let Some(vars) = patch.environment {
            validate_environment(&vars)?;
            c.environment = Some(vars);
        }
        if let Some(archs) = patch.architectures {
            match archs.as_slice() {
                [a] if a == "x86_64" || a == "arm64" => c.architecture = a.clone(),
                [_] => {
                    return Err(validation(
                        format!("[{}]", archs.join(", ")),
                        "architectures",
                        "Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]",
                    ));
                }
                _ => {
                    return Err(validation(
                        format!("[{}]", archs.join(", ")),
                        "architectures",
                        "Member must have length less than or equal to 1",
                    ));
                }
            }
        }
        if let Some(size) = patch.ephemeral_storage_mb {
            if size < i64::from(MIN_EPHEMERAL_MB) {
                return Err(validation(
                    size,
                    "ephemeralStorage.size",
                    "Member must have value greater than or equal to 512",
                ));
            }
            if size > i64::from(MAX_EPHEMERAL_MB) {
                return Err(validation(
                    size,
                    "ephemeralStorage.size",
                    "Member must have value less than or equal to 10240",
                ));
            }
            c.ephemeral_storage_mb = size as u32;
        }
        if let Some(mode) = patch.tracing_mode {
            if mode != "Active" && mode != "PassThrough" {
                return Err(validation(
                    &mode,
                    "tracingConfig.mode",
                    "Member must satisfy enum value set: [Active, PassThrough]",
                ));
            }
            c.tracing_mode = mode;
        }
        if let Some(format) = patch.log_format {
            if format != "Text" && format != "JSON" {
                return Err(validation(
                    &format,
                    "loggingConfig.logFormat",
                    "Member must satisfy enum value set: [Text, JSON]",
                ));
            }
            c.logging.log_format = format;
        }
        if let Some(level) = patch.application_log_level {
            const LEVELS: &[&str] = &["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
            if !LEVELS.contains(&level.as_str()) {
                return Err(validation(
                    &level,
                    "loggingConfig.applicationLogLevel",
                    "Member must satisfy enum value set: [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]",
                ));
            }
            c.logging.application_log_level = Some(level);
        }
        if let Some(level) = patch.system_log_level {
            if !["DEBUG", "INFO", "WARN"].contains(&level.as_str()) {
                return Err(validation(
                    &level,
                    "loggingConfig.systemLogLevel",
                    "Member must satisfy enum value set: [DEBUG, INFO, WARN]",
                ));
            }
            c.logging.system_log_level = Some(level);
        }
        if let Some(group) = patch.log_group {
            if group.is_empty() || group.len() > 512 {
                return Err(validation(
                    &group,
                    "loggingConfig.logGroup",
                    "Member must have length less than or equal to 512",
                ));
            }
            c.logging.log_group = group;
        }
        if (c.logging.application_log_level.is_some() || c.logging.system_log_level.is_some())
            && c.logging.log_format != "JSON"
        {
            return Err(ApiError::invalid_parameter(
                "To configure ApplicationLogLevel and SystemLogLevel, you must set LogFormat to JSON.",
            ));
        }
        if let Some(target) = patch.dead_letter_target {
            if !target.is_empty() {
                Destination::for_use(&target, DestinationUse::DeadLetter)?;
            }
            c.dead_letter_target = if target.is_empty() { None } else { Some(target) };
        }
        if let Some(key) = patch.kms_key_arn {
            c.kms_key_arn = if key.is_empty() { None } else { Some(key) };
        }
        Ok(c)
    }
}

/// Lambda's rules for `Environment.Variables`.
pub fn validate_environment(vars: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for key in vars.keys() {
        if !is_env_key(key) {
            // Lambda never echoes this (sensitive) member's value.
            return Err(ApiError::new(
                ErrorCode::Validation,
                "1 validation error detected: Value at 'environment.variables' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+]",
            ));
        }
        if RESERVED_ENV_KEYS.contains(&key.as_str()) {
            return Err(ApiError::invalid_parameter(format!(
                "Lambda was unable to configure your environment variables because the environment variables you have provided contains reserved keys that are currently not supported for modification. Reserved keys used in this request: {key}"
            )));
        }
    }
    let measured = serde_json::to_string(vars).unwrap_or_default();
    if measured.len() > MAX_ENV_BYTES {
        let shown: String = measured.chars().take(1000).collect();
        return Err(ApiError::invalid_parameter(format!(
            "Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {shown}"
        )));
    }
    Ok(())
}

impl FunctionVersion {
    /// Whether publishing `self` ($LATEST) would duplicate `published`: Lambda only
    /// makes a new version when code or configuration changed.
    pub fn same_content_as(&self, published: &FunctionVersion) -> bool {
        self.code.sha256_hex == published.code.sha256_hex && self.config == published.config
    }
}

impl Alias {
    /// All versions an alias can route to.
    pub fn versions(&self) -> impl Iterator<Item = VersionId> + '_ {
        std::iter::once(self.function_version)
            .chain(self.additional_version_weights.keys().map(|v| VersionId::Number(*v)))
    }

    /// Picks the version for one invocation. `roll` is uniform in [0, 1).
    pub fn route(&self, roll: f64) -> VersionId {
        let mut acc = 0.0;
        for (version, weight) in &self.additional_version_weights {
            acc += weight;
            if roll < acc {
                return VersionId::Number(*version);
            }
        }
        self.function_version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch() -> ConfigPatch {
        ConfigPatch {
            role: Some("arn:aws:iam::000000000000:role/lambda-role".into()),
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            ..ConfigPatch::default()
        }
    }

    #[test]
    fn defaults_match_lambda() {
        let c = FunctionConfig::create("hello", patch()).expect("valid");
        assert_eq!((c.timeout_s, c.memory_mb, c.ephemeral_storage_mb), (3, 128, 512));
        assert_eq!(c.logging.log_group, "/aws/lambda/hello");
        assert_eq!(c.architecture, "x86_64");
    }

    #[test]
    fn limits_are_enforced() {
        for (m, ok) in [(127, false), (128, true), (10240, true), (10241, false)] {
            let r = FunctionConfig::create("f", ConfigPatch { memory_mb: Some(m), ..patch() });
            assert_eq!(r.is_ok(), ok, "memory {m}");
        }
        for (t, ok) in [(0, false), (1, true), (900, true), (901, false)] {
            let r = FunctionConfig::create("f", ConfigPatch { timeout_s: Some(t), ..patch() });
            assert_eq!(r.is_ok(), ok, "timeout {t}");
        }
        let bad_role = FunctionConfig::create("f", ConfigPatch { role: Some("role".into()), ..patch() });
        assert_eq!(bad_role.map_err(|e| e.code), Err(ErrorCode::Validation));
    }

    #[test]
    fn environment_rules() {
        let mut vars = BTreeMap::new();
        vars.insert("AWS_REGION".to_string(), "x".to_string());
        assert!(validate_environment(&vars).is_err());
        let mut big = BTreeMap::new();
        big.insert("LARGE_VAR".to_string(), "x".repeat(4096));
        let err = validate_environment(&big).expect_err("too big");
        assert!(err.message.contains("exceeded the 4KB limit. String measured: {\"LARGE_VAR\":\"xxx"));
        let mut bad = BTreeMap::new();
        bad.insert("1BAD".to_string(), "x".to_string());
        assert!(validate_environment(&bad).is_err());
    }

    #[test]
    fn role_pattern() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/service-role/x"));
        assert!(!is_role_arn("arn:aws:iam::12345:role/x"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/x"));
    }

    #[test]
    fn alias_routing_splits_by_weight() {
        let mut weights = BTreeMap::new();
        weights.insert(2, 0.25);
        let alias = Alias {
            name: "live".into(),
            function_version: VersionId::Number(1),
            description: String::new(),
            additional_version_weights: weights,
            revision_id: String::new(),
        };
        assert_eq!(alias.route(0.1), VersionId::Number(2));
        assert_eq!(alias.route(0.3), VersionId::Number(1));
    }
}
