//! Lambda's JSON shapes: requests as they arrive, responses as AWS writes them.

use std::collections::BTreeMap;

use kumo_core::function::{Alias, ConfigPatch, FunctionVersion, VersionId};
use kumo_core::names::Scope;
use kumo_core::time::last_modified;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::engine::FunctionView;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CodeBody {
    pub zip_file: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentBody {
    pub variables: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct SizeBody {
    pub size: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ModeBody {
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingBody {
    pub log_format: Option<String>,
    pub application_log_level: Option<String>,
    pub system_log_level: Option<String>,
    pub log_group: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterBody {
    pub target_arn: Option<String>,
}

/// The configuration members shared by CreateFunction and UpdateFunctionConfiguration.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigBody {
    pub role: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<i64>,
    pub memory_size: Option<i64>,
    pub environment: Option<EnvironmentBody>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage: Option<SizeBody>,
    pub tracing_config: Option<ModeBody>,
    pub logging_config: Option<LoggingBody>,
    pub dead_letter_config: Option<DeadLetterBody>,
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: Option<String>,
    pub layers: Option<Vec<String>>,
    pub revision_id: Option<String>,
}

impl ConfigBody {
    pub fn into_patch(self) -> ConfigPatch {
        let logging = self.logging_config.unwrap_or_default();
        ConfigPatch {
            role: self.role,
            runtime: self.runtime,
            handler: self.handler,
            description: self.description,
            timeout_s: self.timeout,
            memory_mb: self.memory_size,
            environment: self.environment.map(|e| e.variables.unwrap_or_default()),
            architectures: self.architectures,
            ephemeral_storage_mb: self.ephemeral_storage.and_then(|s| s.size),
            tracing_mode: self.tracing_config.and_then(|t| t.mode),
            log_format: logging.log_format,
            application_log_level: logging.application_log_level,
            system_log_level: logging.system_log_level,
            log_group: logging.log_group,
            dead_letter_target: self.dead_letter_config.map(|d| d.target_arn.unwrap_or_default()),
            kms_key_arn: self.kms_key_arn,
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionBody {
    pub function_name: Option<String>,
    pub code: Option<CodeBody>,
    pub publish: Option<bool>,
    pub package_type: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub config: ConfigBody,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateCodeBody {
    pub zip_file: Option<String>,
    pub image_uri: Option<String>,
    pub publish: Option<bool>,
    pub dry_run: Option<bool>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct PublishBody {
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingBody {
    pub additional_version_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct AliasBody {
    pub name: Option<String>,
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<RoutingBody>,
    pub revision_id: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct ConcurrencyBody {
    pub reserved_concurrent_executions: Option<i64>,
}

/// Where in the API a configuration is shown: reads carry the settled state
/// fields, the answers to CreateFunction and the updates the state Lambda
/// reports while it is still applying them, and lists leave them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigContext {
    Single,
    /// CreateFunction's answer: `Pending`, as Lambda's (the next read is `Active`).
    Created,
    /// UpdateFunctionConfiguration / UpdateFunctionCode: `InProgress` (the next read is `Successful`).
    Updating,
    Listing,
}

/// FunctionConfiguration as Lambda returns it.
pub fn configuration(scope: &Scope, view: &FunctionView, ctx: ConfigContext) -> Value {
    let v: &FunctionVersion = &view.version;
    let c = &v.config;
    let arn = match (&v.version, &view.qualified_as) {
        (VersionId::Number(n), _) => scope.qualified_arn(&v.name, &n.to_string()),
        (VersionId::Latest, Some(q)) => scope.qualified_arn(&v.name, q),
        (VersionId::Latest, None) => scope.function_arn(&v.name),
    };
    let mut out = json!({
        "FunctionName": v.name,
        "FunctionArn": arn,
        "Runtime": c.runtime,
        "Role": c.role,
        "Handler": c.handler,
        "CodeSize": v.code.size,
        "Description": c.description,
        "Timeout": c.timeout_s,
        "MemorySize": c.memory_mb,
        "LastModified": last_modified(v.last_modified_ms),
        "CodeSha256": v.code.sha256_b64,
        "Version": v.version.to_string(),
        "TracingConfig": {"Mode": c.tracing_mode},
        "RevisionId": v.revision_id,
        "PackageType": "Zip",
        "Architectures": [c.architecture],
        "EphemeralStorage": {"Size": c.ephemeral_storage_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
    });
    let mut logging = json!({"LogFormat": c.logging.log_format, "LogGroup": c.logging.log_group});
    if let Some(level) = &c.logging.application_log_level {
        logging["ApplicationLogLevel"] = json!(level);
    }
    if let Some(level) = &c.logging.system_log_level {
        logging["SystemLogLevel"] = json!(level);
    }
    out["LoggingConfig"] = logging;
    if let Some(vars) = &c.environment {
        out["Environment"] = json!({"Variables": vars});
    }
    if let Some(target) = &c.dead_letter_target {
        out["DeadLetterConfig"] = json!({"TargetArn": target});
    }
    if let Some(key) = &c.kms_key_arn {
        out["KMSKeyArn"] = json!(key);
    }
    // Kumo finishes creating and updating before it answers, so every read finds
    // the function Active and its last update Successful; only the answers to the
    // changes themselves show the transitional states, as Lambda's do, so that
    // clients that wait for the transition (Terraform, the SDK waiters) see one.
    match ctx {
        ConfigContext::Listing => {}
        ConfigContext::Single => {
            out["State"] = json!("Active");
            out["LastUpdateStatus"] = json!("Successful");
        }
        ConfigContext::Created => {
            out["State"] = json!("Pending");
            out["StateReason"] = json!("The function is being created.");
            out["StateReasonCode"] = json!("Creating");
        }
        ConfigContext::Updating => {
            out["State"] = json!("Active");
            out["LastUpdateStatus"] = json!("InProgress");
            out["LastUpdateStatusReason"] = json!("The function is being created.");
            out["LastUpdateStatusReasonCode"] = json!("Creating");
        }
    }
    if ctx != ConfigContext::Listing {
        out["RuntimeVersionConfig"] = json!({"RuntimeVersionArn": scope.runtime_version_arn(&v.code.sha256_hex[..16])});
    }
    out
}

pub fn alias(arn: &str, a: &Alias) -> Value {
    let mut out = json!({
        "AliasArn": arn,
        "Name": a.name,
        "FunctionVersion": a.function_version.to_string(),
        "Description": a.description,
        "RevisionId": a.revision_id,
    });
    if !a.additional_version_weights.is_empty() {
        let weights: BTreeMap<String, f64> =
            a.additional_version_weights.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        out["RoutingConfig"] = json!({"AdditionalVersionWeights": weights});
    }
    out
}
