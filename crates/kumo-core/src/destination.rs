//! Where the result of an asynchronous invocation can be sent: an
//! EventInvokeConfig destination or a function's dead-letter queue.
//!
//! Lambda accepts five kinds of target. Kumo parses all of them so a
//! configuration written for AWS is accepted unchanged; the engine delivers to
//! the kinds it serves and keeps the event (as a dead event, saying why) for
//! the others, so adding a queue service later is a new delivery arm, not a
//! new configuration format.

use crate::error::ApiError;

/// The kind of service a destination ARN names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationKind {
    Function,
    Queue,
    Topic,
    EventBus,
    Bucket,
}

impl DestinationKind {
    /// The AWS service that owns this kind of target, as people name it.
    pub fn service_name(self) -> &'static str {
        match self {
            DestinationKind::Function => "Lambda",
            DestinationKind::Queue => "SQS",
            DestinationKind::Topic => "SNS",
            DestinationKind::EventBus => "EventBridge",
            DestinationKind::Bucket => "S3",
        }
    }
}

/// A parsed destination ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub kind: DestinationKind,
    pub arn: String,
}

/// Which setting a target is for: the rules differ (S3 only takes failures,
/// a dead-letter queue only SQS or SNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationUse {
    OnSuccess,
    OnFailure,
    DeadLetter,
}

impl Destination {
    /// Parses `arn:<partition>:<service>:<region>:<account>:<resource>`; `None`
    /// when the ARN is malformed or names a service that cannot be a target.
    pub fn parse(arn: &str) -> Option<Destination> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if !partition.starts_with("aws") || resource.is_empty() {
            return None;
        }
        let regional = !region.is_empty() && is_account(account);
        let kind = match service {
            "lambda" if regional && resource.starts_with("function:") && resource.len() > "function:".len() => {
                DestinationKind::Function
            }
            "sqs" if regional && !resource.contains(':') => DestinationKind::Queue,
            "sns" if regional && !resource.contains(':') => DestinationKind::Topic,
            "events" if regional && resource.starts_with("event-bus/") => DestinationKind::EventBus,
            // Bucket ARNs carry neither region nor account.
            "s3" if region.is_empty() && account.is_empty() && !resource.contains('/') => DestinationKind::Bucket,
            _ => return None,
        };
        Some(Destination { kind, arn: arn.to_string() })
    }

    /// Parses and checks a target for one use, with Lambda's error.
    pub fn for_use(arn: &str, usage: DestinationUse) -> Result<Destination, ApiError> {
        let invalid = || match usage {
            DestinationUse::DeadLetter => ApiError::invalid_parameter(format!(
                "The provided target arn {arn} is invalid. Dead-letter queues must be SQS queues or SNS topics."
            )),
            _ => ApiError::invalid_parameter(format!("The destination ARN {arn} is invalid.")),
        };
        let d = Destination::parse(arn).ok_or_else(invalid)?;
        let allowed = match usage {
            DestinationUse::DeadLetter => matches!(d.kind, DestinationKind::Queue | DestinationKind::Topic),
            DestinationUse::OnSuccess => d.kind != DestinationKind::Bucket,
            DestinationUse::OnFailure => true,
        };
        if allowed { Ok(d) } else { Err(invalid()) }
    }
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lambda_target_kind_parses() {
        let cases = [
            ("arn:aws:lambda:us-east-1:000000000000:function:sink", DestinationKind::Function),
            ("arn:aws:lambda:us-east-1:000000000000:function:sink:prod", DestinationKind::Function),
            ("arn:aws:sqs:us-east-1:000000000000:failures", DestinationKind::Queue),
            ("arn:aws:sns:us-east-1:000000000000:alerts", DestinationKind::Topic),
            ("arn:aws:events:us-east-1:000000000000:event-bus/default", DestinationKind::EventBus),
            ("arn:aws:s3:::failed-events", DestinationKind::Bucket),
        ];
        for (arn, kind) in cases {
            assert_eq!(Destination::parse(arn).map(|d| d.kind), Some(kind), "{arn}");
        }
    }

    #[test]
    fn malformed_or_foreign_targets_are_refused() {
        for arn in [
            "",
            "sink",
            "arn:aws:lambda:us-east-1:000000000000:function:",
            "arn:aws:lambda::000000000000:function:sink",
            "arn:aws:sqs:us-east-1:123:q",
            "arn:aws:dynamodb:us-east-1:000000000000:table/t",
            "arn:aws:s3:us-east-1:000000000000:bucket",
            "arn:aws:s3:::bucket/key",
            "arn:aws:events:us-east-1:000000000000:rule/r",
        ] {
            assert_eq!(Destination::parse(arn), None, "{arn}");
        }
    }

    #[test]
    fn each_use_has_its_own_rules() {
        let bucket = "arn:aws:s3:::failed-events";
        assert!(Destination::for_use(bucket, DestinationUse::OnFailure).is_ok());
        assert!(Destination::for_use(bucket, DestinationUse::OnSuccess).is_err());
        let function = "arn:aws:lambda:us-east-1:000000000000:function:sink";
        let e = Destination::for_use(function, DestinationUse::DeadLetter).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("Dead-letter queues must be SQS queues or SNS topics")));
        assert!(Destination::for_use("arn:aws:sqs:us-east-1:000000000000:dlq", DestinationUse::DeadLetter).is_ok());
    }
}
