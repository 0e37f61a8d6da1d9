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
    #[arg(long, env = "KUMO_REGION", default_value = "us-east-1")]
    region: String,
    #[arg(long, env = "KUMO_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
}

pub fn run(a: EventArgs) -> anyhow::Result<ExitCode> {
    let EventCommand::Generate(g) = a.command;
    let event = generate(&g, crate::engine::now_ms());
    println!("{}", serde_json::to_string_pretty(&event)?);
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
