//! Bucket notifications: the configuration's wire form, the checks S3 makes
//! when it is set, and the events a write produces.

use kumo_core::s3::event::{ObjectEvent, payload, record};
use kumo_core::s3::notification::{LambdaNotification, NotificationConfig};
use s3s::dto::{
    FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use s3s::{S3Error, S3ErrorCode};

use super::ObjectStore;
use crate::api::authorize::Ask;
use crate::iam::{Identity, IdentityKind};
use crate::store::QueuedEvent;

/// What S3 says when a destination cannot be validated.
const UNVALIDATED: &str = "Unable to validate the following destination configurations";

/// The wire configuration as Kumo keeps it. Queue and topic destinations are
/// refused: Kumo serves neither SQS nor SNS, and accepting them would drop events.
pub fn from_wire(wire: NotificationConfiguration) -> Result<NotificationConfig, S3Error> {
    if wire.queue_configurations.as_ref().is_some_and(|q| !q.is_empty())
        || wire.topic_configurations.as_ref().is_some_and(|t| !t.is_empty())
        || wire.event_bridge_configuration.is_some()
    {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            format!("{UNVALIDATED}: Kumo delivers bucket notifications to Lambda functions only"),
        ));
    }
    let mut lambda = Vec::new();
    for c in wire.lambda_function_configurations.unwrap_or_default() {
        let mut prefix = None;
        let mut suffix = None;
        let rules = c.filter.and_then(|f| f.key).and_then(|k| k.filter_rules).unwrap_or_default();
        for rule in rules {
            let name = rule.name.as_ref().map(|n| n.as_str().to_ascii_lowercase()).unwrap_or_default();
            let slot = match name.as_str() {
                "prefix" => &mut prefix,
                "suffix" => &mut suffix,
                _ => {
                    return Err(S3Error::with_message(
                        S3ErrorCode::InvalidArgument,
                        "filter rule name must be either prefix or suffix",
                    ));
                }
            };
            if slot.is_some() {
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    "Cannot specify more than one prefix rule in a filter.",
                ));
            }
            *slot = Some(rule.value.unwrap_or_default());
        }
        lambda.push(LambdaNotification {
            id: c.id.filter(|i| !i.is_empty()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            function_arn: c.lambda_function_arn,
            events: c.events.into_iter().map(String::from).collect(),
            prefix,
            suffix,
        });
    }
    let config = NotificationConfig { lambda };
    config.validate().map_err(|e| {
        S3Error::with_message(
            S3ErrorCode::from_bytes(e.code.as_bytes()).unwrap_or(S3ErrorCode::InvalidArgument),
            e.message,
        )
    })?;
    Ok(config)
}

/// The configuration in its wire form (GetBucketNotificationConfiguration).
pub fn to_wire(config: &NotificationConfig) -> Vec<LambdaFunctionConfiguration> {
    config
        .lambda
        .iter()
        .map(|c| {
            let mut rules = Vec::new();
            if let Some(p) = &c.prefix {
                rules.push(FilterRule {
                    name: Some(FilterRuleName::from_static(FilterRuleName::PREFIX)),
                    value: Some(p.clone()),
                });
            }
            if let Some(s) = &c.suffix {
                rules.push(FilterRule {
                    name: Some(FilterRuleName::from_static(FilterRuleName::SUFFIX)),
                    value: Some(s.clone()),
                });
            }
            LambdaFunctionConfiguration {
                events: c.events.iter().cloned().map(Into::into).collect(),
                filter: (!rules.is_empty()).then_some(NotificationConfigurationFilter {
                    key: Some(S3KeyFilter { filter_rules: Some(rules) }),
                }),
                id: Some(c.id.clone()),
                lambda_function_arn: c.function_arn.clone(),
            }
        })
        .collect()
}

/// Who wrote, for the event's `userIdentity` and `requestParameters`, and the
/// request's trace header and key (its lineage).
#[derive(Debug, Clone, Default)]
pub struct Writer {
    pub principal_id: String,
    pub source_ip: String,
    pub request_id: String,
    pub trace_header: Option<String>,
    pub access_key_id: Option<String>,
}

impl Writer {
    pub fn of(
        identity: Option<&Identity>,
        source_ip: String,
        request_id: String,
        trace_header: Option<String>,
    ) -> Writer {
        let principal_id = match identity.map(|i| &i.kind) {
            None | Some(IdentityKind::Root) => identity.map_or(String::new(), |i| i.account.clone()),
            Some(_) => format!("AWS:{}", identity.map_or("", |i| i.user_id.as_str())),
        };
        Writer {
            principal_id,
            source_ip,
            request_id,
            trace_header,
            access_key_id: identity.and_then(|i| i.access_key_id.clone()),
        }
    }
}

/// One write, as notifications see it.
pub struct Change<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    /// Without the `s3:` prefix: `ObjectCreated:Put`, `ObjectRemoved:Delete`, ...
    pub event_name: &'static str,
    pub size: Option<u64>,
    pub etag: Option<&'a str>,
}

impl ObjectStore {
    /// Whether S3 (the service principal) may invoke `function_arn` for `bucket`.
    pub(super) fn s3_may_invoke(&self, function_arn: &str, bucket: &str) -> bool {
        let ask = Ask { action: "lambda:InvokeFunction".into(), resource: function_arn.to_string() };
        let context = vec![
            ("aws:SourceArn".to_string(), vec![kumo_core::s3::bucket_arn(bucket)]),
            ("aws:SourceAccount".to_string(), vec![self.account.clone()]),
        ];
        self.authorizer.decide_for_service("s3.amazonaws.com", &ask, &context, crate::engine::now_ms()).is_allowed()
    }

    /// S3's check at PutBucketNotificationConfiguration: each function exists
    /// and lets s3.amazonaws.com invoke it for this bucket.
    pub(super) fn validate_destinations(&self, bucket: &str, config: &NotificationConfig) -> Result<(), S3Error> {
        for c in &config.lambda {
            let exists = self.engine.get_function(&c.function_arn, None).is_ok();
            if !exists || !self.s3_may_invoke(&c.function_arn, bucket) {
                let why = if exists {
                    "its resource-based policy does not allow s3.amazonaws.com to invoke it for this bucket (add it with `aws lambda add-permission --principal s3.amazonaws.com --source-arn arn:aws:s3:::BUCKET`)"
                } else {
                    "the function does not exist"
                };
                return Err(S3Error::with_message(
                    S3ErrorCode::InvalidArgument,
                    format!("{UNVALIDATED}: {}: {why}", c.function_arn),
                ));
            }
        }
        Ok(())
    }

    /// The events a change produces, ready to commit with it.
    pub(super) fn events_for(&self, change: &Change<'_>, writer: &Writer) -> Vec<QueuedEvent> {
        let Some(config) = self.notification(change.bucket) else { return Vec::new() };
        let targets = config.matching(change.event_name, change.key);
        if targets.is_empty() {
            return Vec::new();
        }
        let lineage = self.engine.lineage_for_event(&crate::engine::Caller {
            trace_header: writer.trace_header.as_deref(),
            access_key_id: writer.access_key_id.as_deref(),
        });
        let now = crate::engine::now_ms();
        let sequencer = kumo_core::s3::event::sequencer(self.next_sequencer());
        let mut events = Vec::new();
        for target in targets {
            if !self.s3_may_invoke(&target.function_arn, change.bucket) {
                // As on AWS: a permission removed after the configuration was set loses the event.
                tracing::warn!(bucket = change.bucket, function = %target.function_arn, "S3 may no longer invoke the function: notification not sent");
                continue;
            }
            let event = ObjectEvent {
                event_name: change.event_name.to_string(),
                event_time_ms: now,
                region: self.region.clone(),
                bucket: change.bucket.to_string(),
                key: change.key.to_string(),
                size: change.size,
                etag: change.etag.map(str::to_string),
                version_id: None,
                sequencer: sequencer.clone(),
                principal_id: writer.principal_id.clone(),
                source_ip: writer.source_ip.clone(),
                request_id: writer.request_id.clone(),
                host_id: self.host_id.clone(),
                configuration_id: target.id.clone(),
                owner_principal_id: self.account.clone(),
            };
            let body = payload(vec![record(&event)]);
            events.push(self.engine.new_event(
                target.function_arn.clone(),
                None,
                bytes::Bytes::from(body),
                uuid::Uuid::new_v4().to_string(),
                Some(lineage.clone()),
            ));
        }
        events
    }

    /// The bucket notifications that name `function` (by name, whatever the
    /// ARN's qualifier), bucket by bucket, for the dashboard's trigger list.
    pub fn notifications_for(&self, function: &str) -> Vec<(String, kumo_core::s3::notification::LambdaNotification)> {
        let configs = self.notifications.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out: Vec<_> = configs
            .iter()
            .flat_map(|(bucket, config)| {
                config
                    .lambda
                    .iter()
                    .filter(|c| kumo_core::names::FunctionRef::parse(&c.function_arn).is_ok_and(|r| r.name == function))
                    .map(|c| (bucket.clone(), c.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        out
    }

    /// Warnings for a function whose role may write where it is triggered
    /// (the source = destination loop, caught before it runs).
    pub fn loop_warnings(&self, function: &str, role_arn: &str) -> Vec<String> {
        let configs = self.notifications.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::new();
        for (bucket, config) in configs.iter() {
            for c in &config.lambda {
                let target = kumo_core::names::FunctionRef::parse(&c.function_arn).map(|r| r.name).unwrap_or_default();
                let creates =
                    c.events.iter().any(|e| kumo_core::s3::notification::event_matches(e, "ObjectCreated:Put"));
                if target != function || !creates {
                    continue;
                }
                let probe = format!(
                    "{}kumo-loop-check{}",
                    c.prefix.as_deref().unwrap_or(""),
                    c.suffix.as_deref().unwrap_or("")
                );
                let resource = kumo_core::s3::object_arn(bucket, &probe);
                if self.role_may(role_arn, function, "s3:PutObject", &resource) {
                    out.push(format!(
                        "recursive loop risk: {function} is triggered by writes to s3://{bucket}/{}*{} and its role {role_arn} may write there (s3:PutObject on {resource}); every write it makes triggers it again. Kumo stops such a chain after 16 invocations; write elsewhere, or narrow the role or the trigger's prefix",
                        c.prefix.as_deref().unwrap_or(""),
                        c.suffix.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        out
    }

    /// Whether a function's role session may perform `action` on `resource`.
    pub(super) fn role_may(&self, role_arn: &str, function: &str, action: &str, resource: &str) -> bool {
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn).to_string();
        let identity = Identity {
            arn: format!("arn:aws:sts::{}:assumed-role/{role_name}/{function}", self.account),
            account: self.account.clone(),
            user_id: format!("kumo-loop-check:{function}"),
            kind: IdentityKind::AssumedRole {
                role_name,
                role_arn: role_arn.to_string(),
                session_name: function.to_string(),
            },
            access_key_id: None,
        };
        let ask = Ask { action: action.to_string(), resource: resource.to_string() };
        self.authorizer.decide(&identity, &ask, crate::engine::now_ms()).is_allowed()
    }
}
