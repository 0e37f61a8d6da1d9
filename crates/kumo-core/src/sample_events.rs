//! Events in the exact shapes AWS services hand to Lambda, for services Kumo
//! does not run yet (SQS, SNS), so handlers can be tested locally with
//! `kumo event generate ... | kumo invoke F -`. Identifiers, hashes and times
//! are parameters: the core has no clock, no randomness and no MD5.

use serde_json::{Value, json};

use crate::time::iso8601_millis;

/// One SQS message as an event source mapping delivers it.
#[derive(Debug, Clone)]
pub struct SqsMessage {
    pub body: String,
    /// Hex MD5 of the body, as SQS reports it.
    pub md5_of_body: String,
    pub message_id: String,
    pub receipt_handle: String,
    pub queue_arn: String,
    pub region: String,
    pub sent_ms: i64,
    /// The sender's principal id (an access key id or role id).
    pub sender_id: String,
}

/// `{"Records":[...]}` with one record per message.
pub fn sqs_event(messages: &[SqsMessage]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": m.sent_ms.to_string(),
                    "SenderId": m.sender_id,
                    "ApproximateFirstReceiveTimestamp": (m.sent_ms + 1).to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": m.queue_arn,
                "awsRegion": m.region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// One SNS notification as a Lambda subscription receives it.
#[derive(Debug, Clone)]
pub struct SnsNotification {
    pub topic_arn: String,
    /// The subscription's ARN: the topic's plus `:<uuid>`.
    pub subscription_arn: String,
    pub message_id: String,
    pub subject: Option<String>,
    pub message: String,
    pub published_ms: i64,
    /// Base64 of the signature; a sample carries a placeholder of the right form.
    pub signature: String,
}

pub fn sns_event(n: &SnsNotification) -> Value {
    let region = arn_region(&n.topic_arn);
    json!({
        "Records": [{
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": n.subscription_arn,
            "Sns": {
                "Type": "Notification",
                "MessageId": n.message_id,
                "TopicArn": n.topic_arn,
                "Subject": n.subject,
                "Message": n.message,
                "Timestamp": iso8601_millis(n.published_ms),
                "SignatureVersion": "1",
                "Signature": n.signature,
                "SigningCertUrl": format!("https://sns.{region}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem"),
                "UnsubscribeUrl": format!(
                    "https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={}",
                    n.subscription_arn
                ),
                "MessageAttributes": {},
            },
        }],
    })
}

/// The region field of an ARN (`arn:aws:sns:REGION:ACCOUNT:name`).
fn arn_region(arn: &str) -> &str {
    arn.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or("us-east-1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        k.sort();
        k
    }

    #[test]
    fn sqs_records_carry_every_field_lambda_sends() {
        let event = sqs_event(&[SqsMessage {
            body: "hello".into(),
            md5_of_body: "5d41402abc4b2a76b9719d911017c592".into(),
            message_id: "059f36b4-87a3-44ab-83d2-661975830a7d".into(),
            receipt_handle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a".into(),
            queue_arn: "arn:aws:sqs:us-east-1:000000000000:orders".into(),
            region: "us-east-1".into(),
            sent_ms: 1_545_082_649_183,
            sender_id: "AIDAIENQZJOLO23YVJ4VO".into(),
        }]);
        let record = &event["Records"][0];
        assert_eq!(
            keys(record),
            [
                "attributes",
                "awsRegion",
                "body",
                "eventSource",
                "eventSourceARN",
                "md5OfBody",
                "messageAttributes",
                "messageId",
                "receiptHandle"
            ]
        );
        assert_eq!(record["attributes"]["SentTimestamp"], "1545082649183");
        assert_eq!(record["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(record["eventSource"], "aws:sqs");
    }

    #[test]
    fn sns_records_name_their_topic_and_region() {
        let event = sns_event(&SnsNotification {
            topic_arn: "arn:aws:sns:eu-west-1:000000000000:alerts".into(),
            subscription_arn: "arn:aws:sns:eu-west-1:000000000000:alerts:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55".into(),
            message_id: "95df01b4-ee98-5cb9-9903-4c221d41eb5e".into(),
            subject: Some("TestInvoke".into()),
            message: "Hello from SNS!".into(),
            published_ms: 1_547_000_000_000,
            signature: "dGVzdA==".into(),
        });
        let record = &event["Records"][0];
        assert_eq!(record["EventSource"], "aws:sns");
        assert_eq!(record["Sns"]["Timestamp"], "2019-01-09T02:13:20.000Z");
        assert!(record["Sns"]["UnsubscribeUrl"].as_str().is_some_and(|u| u.starts_with("https://sns.eu-west-1.")));
        assert_eq!(arn_region("arn:aws:sns:eu-west-1:123456789012:t"), "eu-west-1");
    }
}
