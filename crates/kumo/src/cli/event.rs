//! `kumo event generate KIND`: a sample event in the exact shape the AWS
//! service sends, to pipe into `kumo invoke F -`. Works offline (no server).

use std::process::ExitCode;

use kumo_core::s3::event::{ObjectEvent, payload, record, sequencer};
use kumo_core::sample_events::{SnsNotification, SqsMessage, sns_event, sqs_event};
use kumo_core::sigv4::hex;
use md5::{Digest, Md5};

#[derive(clap::Args)]
pub struct EventArgs {
    #[command(subcommand)]
    command: EventCommand,
}

#[derive(clap::Subcommand)]
enum EventCommand {
    /// Print a sample event (JSON) for a trigger.
    Generate(GenerateArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// S3 ObjectCreated:Put (--bucket, --key, --size).
    S3Put,
    /// S3 ObjectRemoved:Delete (--bucket, --key).
    S3Delete,
    /// An SQS message through an event source mapping (--queue, --body).
    Sqs,
    /// An SNS notification (--topic, --body, --subject).
    Sns,
    /// A function URL request, payload format 2.0 (--method, --path, --body, --content-type).
    Http,
    /// An EventBridge scheduled event (--rule).
    Schedule,
}

#[derive(clap::Args)]
struct GenerateArgs {
    kind: Kind,
    #[arg(long, default_value = "example-bucket")]
    bucket: String,
    #[arg(long, default_value = "test/key.txt")]
    key: String,
    /// Object size in bytes (s3-put).
    #[arg(long, default_value_t = 1024)]
    size: u64,
    /// Message body (sqs, sns).
    #[arg(long, default_value = "Hello from Kumo")]
    body: String,
    /// Queue name (sqs).
    #[arg(long, default_value = "example-queue")]
    queue: String,
    /// Topic name (sns).
    #[arg(long, default_value = "example-topic")]
    topic: String,
    /// Subject (sns).
    #[arg(long)]
    subject: Option<String>,
    /// HTTP method (http).
    #[arg(long, default_value = "GET")]
    method: String,
    /// Path with an optional query string (http).
    #[arg(long, default_value = "/")]
    path: String,
    /// Content type of --body (http; without one, a body is sent as base64 as AWS does).
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// Rule name (schedule).
    #[arg(long, default_value = "example-schedule")]
    rule: String,
    #[arg(long, env = "KUMO_REGION", default_value = "us-east-1")]
    region: String,
    #[arg(long, env = "KUMO_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
}

pub fn run(a: EventArgs) -> anyhow::Result<ExitCode> {
    let EventCommand::Generate(g) = a.command;
    let event = match g.kind {
        // Kept as AWS orders its keys (a JSON value would sort them).
        Kind::Schedule => schedule_event(&g, crate::engine::now_ms()),
        _ => serde_json::to_string_pretty(&generate(&g, crate::engine::now_ms()))?,
    };
    println!("{event}");
    Ok(ExitCode::SUCCESS)
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn generate(g: &GenerateArgs, now_ms: i64) -> serde_json::Value {
    match g.kind {
        Kind::S3Put | Kind::S3Delete => {
            let created = matches!(g.kind, Kind::S3Put);
            let event = ObjectEvent {
                event_name: if created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" }.into(),
                event_time_ms: now_ms,
                region: g.region.clone(),
                bucket: g.bucket.clone(),
                key: g.key.clone(),
                size: created.then_some(g.size),
                etag: created.then(|| hex(&Md5::digest(g.key.as_bytes()))),
                version_id: None,
                sequencer: sequencer(now_ms as u64),
                principal_id: "AWS:AIDAKUMOEXAMPLE".into(),
                source_ip: "127.0.0.1".into(),
                request_id: uuid().replace('-', "")[..16].to_ascii_uppercase(),
                host_id: uuid(),
                configuration_id: "kumo-sample".into(),
                owner_principal_id: g.account_id.clone(),
            };
            serde_json::from_slice(&payload(vec![record(&event)])).unwrap_or_default()
        }
        Kind::Sqs => sqs_event(&[SqsMessage {
            md5_of_body: hex(&Md5::digest(g.body.as_bytes())),
            body: g.body.clone(),
            message_id: uuid(),
            receipt_handle: format!("AQEB{}", uuid().replace('-', "")),
            queue_arn: format!("arn:aws:sqs:{}:{}:{}", g.region, g.account_id, g.queue),
            region: g.region.clone(),
            sent_ms: now_ms,
            sender_id: "AIDAKUMOEXAMPLE".into(),
        }]),
        Kind::Http => http_event(g, now_ms),
        Kind::Schedule => {
            let arn = kumo_core::schedule::rule_arn(&g.region, &g.account_id, &g.rule);
            let text =
                kumo_core::schedule::scheduled_event(&uuid(), &g.account_id, &g.region, &arn, now_ms / 1000 * 1000);
            serde_json::from_str(&text).unwrap_or_default()
        }
        Kind::Sns => {
            let topic_arn = format!("arn:aws:sns:{}:{}:{}", g.region, g.account_id, g.topic);
            sns_event(&SnsNotification {
                subscription_arn: format!("{topic_arn}:{}", uuid()),
                topic_arn,
                message_id: uuid(),
                subject: g.subject.clone(),
                message: g.body.clone(),
                published_ms: now_ms,
                signature: "a2V1bW8tc2FtcGxlLXNpZ25hdHVyZQ==".into(),
            })
        }
    }
}

/// A request to a function URL with a random id, as the URL layer would build it.
fn http_event(g: &GenerateArgs, now_ms: i64) -> serde_json::Value {
    use base64::Engine as _;
    use kumo_core::url::event::{EventBody, UrlRequest, body_is_text, build};
    let (raw_path, raw_query) = g.path.split_once('?').unwrap_or((&g.path, ""));
    let url_id: String = uuid().replace('-', "");
    let mut headers = vec![
        ("host".to_string(), kumo_core::url::domain_name(&url_id, &g.region)),
        ("user-agent".to_string(), "curl/8.5.0".to_string()),
        ("accept".to_string(), "*/*".to_string()),
    ];
    let has_body = !matches!(g.method.to_ascii_uppercase().as_str(), "GET" | "HEAD");
    let body = has_body.then(|| {
        headers.push(("content-type".to_string(), g.content_type.clone()));
        if body_is_text(Some(&g.content_type)) {
            EventBody { text: g.body.clone(), base64: false }
        } else {
            EventBody { text: base64::engine::general_purpose::STANDARD.encode(&g.body), base64: true }
        }
    });
    build(&UrlRequest {
        url_id,
        region: g.region.clone(),
        method: g.method.to_ascii_uppercase(),
        raw_path: if raw_path.is_empty() { "/".to_string() } else { raw_path.to_string() },
        raw_query: raw_query.to_string(),
        protocol: "HTTP/1.1".to_string(),
        source_ip: "127.0.0.1".to_string(),
        headers,
        body,
        request_id: uuid(),
        time_epoch_ms: now_ms,
        iam: None,
    })
}

/// A scheduled event of the rule `--rule`, for the current second.
fn schedule_event(g: &GenerateArgs, now_ms: i64) -> String {
    let arn = kumo_core::schedule::rule_arn(&g.region, &g.account_id, &g.rule);
    kumo_core::schedule::scheduled_event(&uuid(), &g.account_id, &g.region, &arn, now_ms / 1000 * 1000)
}

/// The sample events the dashboard's Test page offers, by the names of `kumo event generate`.
pub const SAMPLE_KINDS: &[&str] = &["s3-put", "s3-delete", "sqs", "sns", "http", "schedule"];

/// A sample event (pretty JSON) of one of [`SAMPLE_KINDS`] with the defaults
/// of `kumo event generate`.
pub fn sample_event(kind: &str, region: &str, account_id: &str, now_ms: i64) -> Option<String> {
    let kind = match kind {
        "s3-put" => Kind::S3Put,
        "s3-delete" => Kind::S3Delete,
        "sqs" => Kind::Sqs,
        "sns" => Kind::Sns,
        "http" => Kind::Http,
        "schedule" => Kind::Schedule,
        _ => return None,
    };
    let g = GenerateArgs {
        kind,
        bucket: "example-bucket".into(),
        key: "test/key.txt".into(),
        size: 1024,
        body: "Hello from Kumo".into(),
        queue: "example-queue".into(),
        topic: "example-topic".into(),
        subject: None,
        method: "GET".into(),
        path: "/".into(),
        content_type: "application/json".into(),
        rule: "example-schedule".into(),
        region: region.into(),
        account_id: account_id.into(),
    };
    match kind {
        Kind::Schedule => Some(schedule_event(&g, now_ms)),
        _ => serde_json::to_string_pretty(&generate(&g, now_ms)).ok(),
    }
}
