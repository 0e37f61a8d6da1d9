//! `kumo event generate`: every sample parses as the event type of AWS's own
//! Rust event definitions (`aws_lambda_events`, what `lambda_runtime` handlers
//! deserialize into), and pipes into `kumo invoke F -` unchanged.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::cli::{python_runtime, run};
use crate::harness::*;

fn generate(args: &[&str]) -> String {
    let mut cmd = Command::new(kumo_bin());
    cmd.args(["event", "generate"]).args(args).env_remove("KUMO_REGION").env_remove("KUMO_ACCOUNT_ID");
    run(&mut cmd, &format!("kumo event generate {}", args.join(" "))).ok("kumo event generate").stdout
}

#[test]
fn samples_parse_as_aws_event_types() {
    let put: aws_lambda_events::s3::S3Event =
        serde_json::from_str(&generate(&["s3-put", "--bucket", "photos", "--key", "raw/cat 1.jpg", "--size", "42"]))
            .expect("s3-put is an S3Event");
    let record = &put.records[0];
    assert_eq!(record.event_name.as_deref(), Some("ObjectCreated:Put"));
    assert_eq!(record.s3.bucket.name.as_deref(), Some("photos"));
    assert_eq!(record.s3.object.key.as_deref(), Some("raw/cat+1.jpg"), "keys are form-encoded as S3 sends them");
    assert_eq!(record.s3.object.size, Some(42));

    let delete: aws_lambda_events::s3::S3Event =
        serde_json::from_str(&generate(&["s3-delete"])).expect("s3-delete is an S3Event");
    assert_eq!(delete.records[0].event_name.as_deref(), Some("ObjectRemoved:Delete"));
    assert_eq!(delete.records[0].s3.object.size, None);

    let sqs: aws_lambda_events::sqs::SqsEvent =
        serde_json::from_str(&generate(&["sqs", "--queue", "orders", "--body", "hello", "--region", "eu-west-1"]))
            .expect("sqs is an SqsEvent");
    let message = &sqs.records[0];
    assert_eq!(message.body.as_deref(), Some("hello"));
    assert_eq!(message.md5_of_body.as_deref(), Some("5d41402abc4b2a76b9719d911017c592"));
    assert_eq!(message.event_source_arn.as_deref(), Some("arn:aws:sqs:eu-west-1:000000000000:orders"));

    let sns: aws_lambda_events::sns::SnsEvent =
        serde_json::from_str(&generate(&["sns", "--topic", "alerts", "--subject", "hi", "--body", "{\"a\":1}"]))
            .expect("sns is an SnsEvent");
    assert_eq!(sns.records[0].sns.topic_arn, "arn:aws:sns:us-east-1:000000000000:alerts");
    assert_eq!(sns.records[0].sns.message, "{\"a\":1}");

    let http: aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest = serde_json::from_str(&generate(&[
        "http",
        "--method",
        "post",
        "--path",
        "/orders/7?expand=items&expand=notes",
        "--body",
        "{\"qty\":2}",
    ]))
    .expect("http is a LambdaFunctionUrlRequest");
    assert_eq!(http.version.as_deref(), Some("2.0"));
    assert_eq!(http.raw_path.as_deref(), Some("/orders/7"));
    assert_eq!(http.query_string_parameters.get("expand").map(String::as_str), Some("items,notes"));
    assert_eq!(http.request_context.http.method.as_deref(), Some("POST"));
    assert_eq!(http.body.as_deref(), Some("{\"qty\":2}"));
    assert!(!http.is_base64_encoded);
    let binary: aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest = serde_json::from_str(&generate(&[
        "http",
        "--method",
        "PUT",
        "--content-type",
        "application/octet-stream",
        "--body",
        "raw",
    ]))
    .expect("binary http");
    assert!(binary.is_base64_encoded);
    assert_eq!(binary.body.as_deref(), Some("cmF3"));

    let text = generate(&["schedule", "--rule", "nightly"]);
    assert!(text.trim_start().starts_with("{\"version\":\"0\",\"id\":"), "AWS's key order: {text}");
    let schedule: aws_lambda_events::eventbridge::EventBridgeEvent =
        serde_json::from_str(&text).expect("schedule is an EventBridgeEvent");
    assert_eq!(schedule.detail_type, "Scheduled Event");
    assert_eq!(schedule.source, "aws.events");
    assert_eq!(schedule.resources, Some(vec!["arn:aws:events:us-east-1:000000000000:rule/nightly".to_string()]));
}

#[test]
fn a_sample_pipes_into_kumo_invoke() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(create_python(&server.lambda(), "sampled", &runtime, "python/echo.py"));
    let sample = generate(&["s3-put", "--bucket", "in"]);
    let mut child = server
        .cli()
        .args(["invoke", "sampled", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kumo invoke");
    child.stdin.take().expect("stdin").write_all(sample.as_bytes()).expect("pipe the sample");
    let out = child.wait_with_output().expect("kumo invoke output");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).expect("result JSON");
    assert_eq!(result["event"]["Records"][0]["s3"]["bucket"]["name"], "in", "{result}");
}
