//! A bucket's notification configuration for Lambda targets: what
//! `PutBucketNotificationConfiguration` accepts, and which configurations an
//! object event triggers.

use serde::{Deserialize, Serialize};

use crate::names::{Qualifier, is_function_name};

/// The `Event` values S3 accepts in a `LambdaFunctionConfiguration`, as listed
/// in the S3 API reference. `s3:TestEvent` is not among them: S3 sends it on
/// its own when a configuration is saved, and rejects it in a request.
pub const SUPPORTED_EVENTS: &[&str] = &[
    "s3:ReducedRedundancyLostObject",
    "s3:ObjectCreated:*",
    "s3:ObjectCreated:Put",
    "s3:ObjectCreated:Post",
    "s3:ObjectCreated:Copy",
    "s3:ObjectCreated:CompleteMultipartUpload",
    "s3:ObjectRemoved:*",
    "s3:ObjectRemoved:Delete",
    "s3:ObjectRemoved:DeleteMarkerCreated",
    "s3:ObjectRestore:*",
    "s3:ObjectRestore:Post",
    "s3:ObjectRestore:Completed",
    "s3:ObjectRestore:Delete",
    "s3:Replication:*",
    "s3:Replication:OperationFailedReplication",
    "s3:Replication:OperationNotTracked",
    "s3:Replication:OperationMissedThreshold",
    "s3:Replication:OperationReplicatedAfterThreshold",
    "s3:LifecycleTransition",
    "s3:IntelligentTiering",
    "s3:ObjectAcl:Put",
    "s3:LifecycleExpiration:*",
    "s3:LifecycleExpiration:Delete",
    "s3:LifecycleExpiration:DeleteMarkerCreated",
    "s3:ObjectTagging:*",
    "s3:ObjectTagging:Put",
    "s3:ObjectTagging:Delete",
];

/// S3's limit on a prefix or suffix filter value, in characters.
pub const MAX_FILTER_LEN: usize = 1024;

/// A bucket's notification configuration (only its Lambda part: Kumo has no
/// queues or topics to deliver to).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NotificationConfig {
    pub lambda: Vec<LambdaNotification>,
}

/// One `LambdaFunctionConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaNotification {
    pub id: String,
    pub function_arn: String,
    /// With the `s3:` prefix, as written in the configuration.
    pub events: Vec<String>,
    pub prefix: Option<String>,
    pub suffix: Option<String>,
}

/// A rejected configuration, with the S3 error code to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NotificationError {
    pub code: &'static str,
    pub message: String,
}

impl NotificationError {
    fn invalid(message: &str) -> Self {
        NotificationError { code: "InvalidArgument", message: message.to_string() }
    }
}

impl NotificationConfig {
    /// Checks what S3 checks at PutBucketNotificationConfiguration (except the
    /// destination permission, checked by the caller).
    pub fn validate(&self) -> Result<(), NotificationError> {
        for n in &self.lambda {
            n.validate()?;
        }
        // Empty ids are filled in by the caller afterwards, so they cannot clash.
        for (i, a) in self.lambda.iter().enumerate() {
            if !a.id.is_empty() && self.lambda[..i].iter().any(|b| b.id == a.id) {
                return Err(NotificationError::invalid("Same ID used for multiple configurations."));
            }
        }
        // Two configurations may share an event type only if their key filters
        // cannot both match one key: otherwise S3 could not say which one an
        // event belongs to, and refuses the whole request.
        for (i, a) in self.lambda.iter().enumerate() {
            if self.lambda[..i].iter().any(|b| a.overlaps(b)) {
                return Err(NotificationError::invalid(
                    "Configurations overlap. Configurations on the same bucket cannot share a common event type.",
                ));
            }
        }
        Ok(())
    }

    /// The configurations an event (e.g. "ObjectCreated:Put", without the
    /// "s3:" prefix) on `key` triggers.
    pub fn matching<'a>(&'a self, event_name: &str, key: &str) -> Vec<&'a LambdaNotification> {
        self.lambda.iter().filter(|n| n.matches(event_name, key)).collect()
    }
}

impl LambdaNotification {
    fn validate(&self) -> Result<(), NotificationError> {
        // `Event` is required and repeated in S3's schema, so a configuration
        // without one fails schema validation rather than a semantic check.
        if self.events.is_empty() {
            return Err(NotificationError {
                code: "MalformedXML",
                message: "The XML you provided was not well-formed or did not validate against our published schema"
                    .to_string(),
            });
        }
        if self.events.iter().any(|e| !SUPPORTED_EVENTS.contains(&e.as_str())) {
            return Err(NotificationError::invalid("The event is not supported for notifications"));
        }
        for value in [&self.prefix, &self.suffix].into_iter().flatten() {
            if value.chars().count() > MAX_FILTER_LEN {
                return Err(NotificationError::invalid("The filter rule value is longer than 1024 characters."));
            }
        }
        if !is_lambda_function_arn(&self.function_arn) {
            return Err(NotificationError::invalid("Unable to validate the following destination configurations"));
        }
        Ok(())
    }

    /// Whether this configuration fires for `event_name` on `key`. The key is
    /// compared raw: filters are stored decoded, as the caller parsed them.
    pub fn matches(&self, event_name: &str, key: &str) -> bool {
        self.events.iter().any(|p| event_matches(p, event_name))
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }

    fn overlaps(&self, other: &LambdaNotification) -> bool {
        let shares_event = self.events.iter().any(|a| other.events.iter().any(|b| patterns_overlap(a, b)));
        // Two prefixes can both match a key only if one extends the other;
        // likewise for suffixes read from the end. A missing filter matches
        // every key, so it overlaps anything.
        let prefixes = match (&self.prefix, &other.prefix) {
            (Some(a), Some(b)) => a.starts_with(b.as_str()) || b.starts_with(a.as_str()),
            _ => true,
        };
        let suffixes = match (&self.suffix, &other.suffix) {
            (Some(a), Some(b)) => a.ends_with(b.as_str()) || b.ends_with(a.as_str()),
            _ => true,
        };
        shares_event && prefixes && suffixes
    }
}

/// "s3:ObjectCreated:*" matches "ObjectCreated:Put"; "s3:ObjectCreated:Put"
/// matches only itself. The event name may carry the "s3:" prefix or not.
pub fn event_matches(pattern: &str, event_name: &str) -> bool {
    let pattern = pattern.strip_prefix("s3:").unwrap_or(pattern);
    let event_name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    match pattern.strip_suffix('*') {
        // The family keeps its trailing ':' so "ObjectCreated:*" cannot match
        // a hypothetical "ObjectCreatedX:Put".
        Some(family) => event_name.starts_with(family),
        None => pattern == event_name,
    }
}

/// Whether some event matches both patterns.
fn patterns_overlap(a: &str, b: &str) -> bool {
    event_matches(a, b) || event_matches(b, a)
}

/// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
fn is_lambda_function_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    let (head, qualifier) = match parts.len() {
        7 => (&parts[..], None),
        8 => (&parts[..7], Some(parts[7])),
        _ => return false,
    };
    let [arn_literal, partition, service, region, account, kind, name] = head else {
        return false;
    };
    *arn_literal == "arn"
        && partition.starts_with("aws")
        && *service == "lambda"
        && !region.is_empty()
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && *kind == "function"
        && is_function_name(name)
        && qualifier.is_none_or(|q| Qualifier::parse(q).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:thumbs";

    fn n(id: &str, events: &[&str], prefix: Option<&str>, suffix: Option<&str>) -> LambdaNotification {
        LambdaNotification {
            id: id.to_string(),
            function_arn: ARN.to_string(),
            events: events.iter().map(|e| e.to_string()).collect(),
            prefix: prefix.map(str::to_string),
            suffix: suffix.map(str::to_string),
        }
    }

    fn config(list: Vec<LambdaNotification>) -> NotificationConfig {
        NotificationConfig { lambda: list }
    }

    fn err(c: &NotificationConfig) -> Option<(&'static str, String)> {
        c.validate().err().map(|e| (e.code, e.message))
    }

    #[test]
    fn wildcards_match_their_family_only() {
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:Put"));
        assert!(event_matches("s3:ObjectCreated:*", "ObjectCreated:CompleteMultipartUpload"));
        assert!(!event_matches("s3:ObjectCreated:*", "ObjectRemoved:Delete"));
        assert!(event_matches("s3:ObjectCreated:Put", "ObjectCreated:Put"));
        assert!(!event_matches("s3:ObjectCreated:Put", "ObjectCreated:Post"));
        assert!(event_matches("s3:LifecycleTransition", "LifecycleTransition"));
        assert!(event_matches("s3:ObjectRemoved:Delete", "s3:ObjectRemoved:Delete"));
    }

    #[test]
    fn accepts_a_plain_configuration() {
        let c = config(vec![
            n("a", &["s3:ObjectCreated:*"], Some("images/"), Some(".jpg")),
            n("b", &["s3:ObjectRemoved:*"], None, None),
            n("", &["s3:ObjectCreated:Put"], Some("docs/"), None),
            n("", &["s3:ObjectTagging:Put"], None, None),
        ]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(NotificationConfig::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_missing_or_unknown_events() {
        let (code, _) = err(&config(vec![n("a", &[], None, None)])).expect("rejected");
        assert_eq!(code, "MalformedXML");
        for bad in ["s3:ObjectCreated", "ObjectCreated:Put", "s3:TestEvent", "s3:ObjectCreated:Patch", "s3:*"] {
            assert_eq!(
                err(&config(vec![n("a", &[bad], None, None)])),
                Some(("InvalidArgument", "The event is not supported for notifications".to_string())),
                "{bad}"
            );
        }
    }

    #[test]
    fn checks_the_destination_arn() {
        let good = [
            ARN,
            "arn:aws:lambda:eu-west-1:123456789012:function:f:prod",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:7",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:$LATEST",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
        ];
        for arn in good {
            let mut one = n("a", &["s3:ObjectCreated:*"], None, None);
            one.function_arn = arn.to_string();
            assert_eq!(config(vec![one]).validate(), Ok(()), "{arn}");
        }
        let bad = [
            "",
            "thumbs",
            "arn:aws:sqs:us-east-1:123456789012:queue",
            "arn:aws:lambda:us-east-1:123456789012:function",
            "arn:aws:lambda:us-east-1:12345:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "arn:aws:lambda:us-east-1:123456789012:function:bad name",
            "arn:aws:lambda:us-east-1:123456789012:function:f:a:b",
            "arn:aws:lambda::123456789012:function:f",
        ];
        for arn in bad {
            let mut one = n("a", &["s3:ObjectCreated:*"], None, None);
            one.function_arn = arn.to_string();
            assert_eq!(
                err(&config(vec![one])),
                Some(("InvalidArgument", "Unable to validate the following destination configurations".to_string())),
                "{arn}"
            );
        }
    }

    #[test]
    fn limits_filter_length() {
        let long = "a".repeat(MAX_FILTER_LEN);
        assert_eq!(config(vec![n("a", &["s3:ObjectCreated:*"], Some(&long), None)]).validate(), Ok(()));
        let longer = "é".repeat(MAX_FILTER_LEN + 1);
        assert!(config(vec![n("a", &["s3:ObjectCreated:*"], None, Some(&longer))]).validate().is_err());
    }

    #[test]
    fn ids_must_be_unique_unless_empty() {
        let c = config(vec![
            n("same", &["s3:ObjectCreated:*"], None, None),
            n("same", &["s3:ObjectRemoved:*"], None, None),
        ]);
        assert_eq!(err(&c).map(|e| e.0), Some("InvalidArgument"));
    }

    #[test]
    fn overlapping_configurations_are_rejected() {
        let overlap = Some((
            "InvalidArgument",
            "Configurations overlap. Configurations on the same bucket cannot share a common event type.".to_string(),
        ));
        let cases = [
            // Wildcard against a member of its family, no filters.
            (n("a", &["s3:ObjectCreated:*"], None, None), n("b", &["s3:ObjectCreated:Put"], None, None), true),
            // Nested prefixes.
            (
                n("a", &["s3:ObjectCreated:*"], Some("img/"), None),
                n("b", &["s3:ObjectCreated:*"], Some("img/raw/"), None),
                true,
            ),
            // One side without a prefix covers every key.
            (n("a", &["s3:ObjectCreated:*"], Some("img/"), None), n("b", &["s3:ObjectCreated:*"], None, None), true),
            // Nested suffixes.
            (
                n("a", &["s3:ObjectCreated:*"], None, Some(".jpg")),
                n("b", &["s3:ObjectCreated:*"], None, Some("thumb.jpg")),
                true,
            ),
            // Disjoint prefixes.
            (
                n("a", &["s3:ObjectCreated:*"], Some("img/"), None),
                n("b", &["s3:ObjectCreated:*"], Some("doc/"), None),
                false,
            ),
            // Disjoint suffixes.
            (
                n("a", &["s3:ObjectCreated:*"], None, Some(".jpg")),
                n("b", &["s3:ObjectCreated:*"], None, Some(".png")),
                false,
            ),
            // Different event types.
            (n("a", &["s3:ObjectCreated:Put"], None, None), n("b", &["s3:ObjectCreated:Post"], None, None), false),
            (n("a", &["s3:ObjectCreated:*"], None, None), n("b", &["s3:ObjectRemoved:*"], None, None), false),
        ];
        for (a, b, overlaps) in cases {
            let expected = if overlaps { overlap.clone() } else { None };
            assert_eq!(err(&config(vec![a.clone(), b.clone()])), expected, "{a:?} / {b:?}");
            assert_eq!(err(&config(vec![b, a])), expected);
        }
    }

    #[test]
    fn matching_applies_event_and_filters() {
        let c = config(vec![
            n("jpg", &["s3:ObjectCreated:*"], Some("images/"), Some(".jpg")),
            n("gone", &["s3:ObjectRemoved:Delete"], None, None),
        ]);
        let ids = |event: &str, key: &str| c.matching(event, key).iter().map(|n| n.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids("ObjectCreated:Put", "images/red flower.jpg"), ["jpg"]);
        assert_eq!(ids("ObjectCreated:Copy", "images/a.png"), Vec::<String>::new());
        assert_eq!(ids("ObjectCreated:Put", "docs/a.jpg"), Vec::<String>::new());
        assert_eq!(ids("ObjectRemoved:Delete", "images/a.jpg"), ["gone"]);
        assert_eq!(ids("ObjectRemoved:DeleteMarkerCreated", "images/a.jpg"), Vec::<String>::new());
    }

    fn filter() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[ab/.]{0,4}")
    }

    proptest! {
        /// A configuration set that validates never sends one event on one key
        /// to two configurations: that is what the overlap rule is for.
        #[test]
        fn valid_configurations_never_both_match(
            pa in filter(), sa in filter(), pb in filter(), sb in filter(),
            ea in 0usize..4, eb in 0usize..4, key in "[ab/.]{0,8}", which in 0usize..3,
        ) {
            let events = ["s3:ObjectCreated:*", "s3:ObjectCreated:Put", "s3:ObjectCreated:Copy", "s3:ObjectRemoved:*"];
            let a = n("a", &[events[ea]], pa.as_deref(), sa.as_deref());
            let b = n("b", &[events[eb]], pb.as_deref(), sb.as_deref());
            let c = config(vec![a, b]);
            let event = ["ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:Delete"][which];
            if c.validate().is_ok() {
                prop_assert!(c.matching(event, &key).len() <= 1);
            }
        }

        /// Conversely, overlapping filters are only reported when some key
        /// really matches both: the rule is not stricter than it needs to be.
        #[test]
        fn reported_overlaps_have_a_witness(pa in filter(), sa in filter(), pb in filter(), sb in filter()) {
            let a = n("a", &["s3:ObjectCreated:*"], pa.as_deref(), sa.as_deref());
            let b = n("b", &["s3:ObjectCreated:*"], pb.as_deref(), sb.as_deref());
            if a.overlaps(&b) {
                // The longer prefix followed by the longer suffix matches both.
                let prefix = [&pa, &pb].into_iter().flatten().max_by_key(|p| p.len()).cloned().unwrap_or_default();
                let suffix = [&sa, &sb].into_iter().flatten().max_by_key(|s| s.len()).cloned().unwrap_or_default();
                let key = format!("{prefix}{suffix}");
                prop_assert!(a.matches("ObjectCreated:Put", &key) && b.matches("ObjectCreated:Put", &key));
            }
        }
    }
}
