//! S3 event notifications: writes trigger functions through the durable async
//! queue with S3's event JSON, and a function that writes into its own
//! trigger (or invokes itself) is stopped after 16 hops.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, LambdaFunctionConfiguration, NotificationConfiguration,
    NotificationConfigurationFilter, S3KeyFilter,
};
use serde_json::{Value, json};

use crate::harness::*;
use crate::invoke::filter_logs;

const ACCOUNT: &str = "000000000000";

/// A role Lambda may assume whose policy is `statements`.
async fn role_with(server: &Server, name: &str, statements: Value) -> String {
    let iam = server.iam();
    iam.create_role().role_name(name).assume_role_policy_document(LAMBDA_TRUST).send().await.expect("role");
    let policy = json!({"Version": "2012-10-17", "Statement": statements});
    iam.put_role_policy()
        .role_name(name)
        .policy_name("s3")
        .policy_document(policy.to_string())
        .send()
        .await
        .expect("role policy");
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

async fn python_function(server: &Server, name: &str, fixture: &str, role: &str) -> String {
    server
        .lambda()
        .create_function()
        .function_name(name)
        .runtime(python_with_boto3().as_str().into())
        .handler("app.handler")
        .role(role)
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(Blob::new(fixture_zip(fixture, "app.py"))).build(),
        )
        .send()
        .await
        .expect("create function");
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

fn trigger(function_arn: &str, event: &str, prefix: &str) -> NotificationConfiguration {
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(FilterRule::builder().name(FilterRuleName::Prefix).value(prefix).build())
                .build(),
        )
        .build();
    NotificationConfiguration::builder()
        .lambda_function_configurations(
            LambdaFunctionConfiguration::builder()
                .id("on-upload")
                .lambda_function_arn(function_arn)
                .events(Event::from(event))
                .filter(filter)
                .build()
                .expect("configuration"),
        )
        .build()
}

async fn allow_s3(server: &Server, function: &str, bucket: &str) {
    server
        .lambda()
        .add_permission()
        .function_name(function)
        .statement_id("s3-invoke")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn(format!("arn:aws:s3:::{bucket}"))
        .source_account(ACCOUNT)
        .send()
        .await
        .expect("add permission");
}

async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let out = s3.list_objects_v2().bucket(bucket).prefix(prefix).send().await.expect("list");
    out.contents().iter().filter_map(|o| o.key()).map(str::to_string).collect()
}

async fn wait_for_keys(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let keys = keys_under(s3, bucket, prefix).await;
        if keys.len() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {} of {n} objects under {prefix}: {keys:?}", keys.len());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until Kumo's metrics contain `needle`; returns them.
async fn wait_for_metric(server: &Server, needle: &str, within: Duration, what: &str) -> String {
    let deadline = Instant::now() + within;
    loop {
        let metrics =
            server.send(server.http().get(format!("{}/_kumo/metrics", server.endpoint))).await.expect("metrics");
        let text = metrics.text().await.expect("text");
        if text.contains(needle) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what}: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The set of JSON paths and value kinds of a document (its shape).
fn shape(v: &Value, path: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                shape(v, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| shape(v, &format!("{path}[]"), out)),
        Value::String(_) => drop(out.insert(format!("{path}:string"))),
        Value::Number(_) => drop(out.insert(format!("{path}:number"))),
        Value::Bool(_) => drop(out.insert(format!("{path}:bool"))),
        Value::Null => drop(out.insert(format!("{path}:null"))),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_trigger_the_pipeline_once_each_with_s3s_event() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("media").send().await.expect("bucket");
    let role = role_with(
        &server,
        "thumbnailer",
        json!([
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::media/uploads/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::media/processed/*"}
        ]),
    )
    .await;
    let arn = python_function(&server, "thumbnail", "python/s3_process.py", &role).await;

    // As on AWS, the configuration is refused until the function lets S3 invoke it.
    let refused = s3
        .put_bucket_notification_configuration()
        .bucket("media")
        .notification_configuration(trigger(&arn, "s3:ObjectCreated:*", "uploads/"))
        .send()
        .await
        .expect_err("no permission yet");
    assert!(
        format!("{refused:?}").contains("Unable to validate the following destination configurations"),
        "{refused:?}"
    );
    allow_s3(&server, "thumbnail", "media").await;
    s3.put_bucket_notification_configuration()
        .bucket("media")
        .notification_configuration(trigger(&arn, "s3:ObjectCreated:*", "uploads/"))
        .send()
        .await
        .expect("notification configuration");
    let stored = s3.get_bucket_notification_configuration().bucket("media").send().await.expect("get configuration");
    assert_eq!(stored.lambda_function_configurations().len(), 1);
    assert_eq!(stored.lambda_function_configurations()[0].lambda_function_arn(), arn);

    // Writes outside the prefix trigger nothing; each upload is processed once.
    s3.put_object()
        .bucket("media")
        .key("elsewhere/x.jpg")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .expect("put");
    let names = ["cat.jpg", "dog.jpg", "red flower.jpg", "a+b.png", "été.gif"];
    let mut etags = std::collections::HashMap::new();
    for name in names {
        let body = format!("image bytes of {name}");
        let put = s3
            .put_object()
            .bucket("media")
            .key(format!("uploads/{name}"))
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .expect("upload");
        etags.insert(name.to_string(), put.e_tag().unwrap_or_default().trim_matches('"').to_string());
    }
    wait_for_keys(&s3, "media", "processed/", names.len(), Duration::from_secs(90)).await;
    let sample: Value =
        serde_json::from_str(include_str!("../../../kumo-core/tests/fixtures/s3-put-event.json")).expect("fixture");
    let mut expected_shape = BTreeSet::new();
    shape(&sample["Records"][0], "", &mut expected_shape);
    for name in names {
        let out = s3.get_object().bucket("media").key(format!("processed/{name}")).send().await.expect("result");
        let result: Value =
            serde_json::from_slice(&out.body.collect().await.expect("body").into_bytes()).expect("json");
        let record = &result["record"];
        let mut got = BTreeSet::new();
        shape(record, "", &mut got);
        assert_eq!(got, expected_shape, "the record has the shape of AWS's sample event: {record}");
        assert_eq!(record["eventSource"], "aws:s3");
        assert_eq!(record["eventName"], "ObjectCreated:Put");
        assert_eq!(record["awsRegion"], "us-east-1");
        assert_eq!(record["s3"]["bucket"]["arn"], "arn:aws:s3:::media");
        assert_eq!(record["s3"]["configurationId"], "on-upload");
        assert_eq!(record["s3"]["object"]["eTag"], etags[name].as_str());
        assert_eq!(record["s3"]["object"]["size"], format!("image bytes of {name}").len());
        assert_eq!(record["userIdentity"]["principalId"], ACCOUNT, "written by the account root");
        assert_eq!(record["requestParameters"]["sourceIPAddress"], "127.0.0.1");
        assert_eq!(result["bytes"], format!("image bytes of {name}").len());
    }
    // The key is form-encoded as S3 encodes it.
    let flower = s3.get_object().bucket("media").key("processed/red flower.jpg").send().await.expect("flower");
    let flower: Value = serde_json::from_slice(&flower.body.collect().await.expect("b").into_bytes()).expect("json");
    assert_eq!(flower["record"]["s3"]["object"]["key"], "uploads/red+flower.jpg");
    // Exactly one invocation per upload (the function's writes to processed/ trigger nothing).
    let starts = settled_lines(&server, "/aws/lambda/thumbnail", "START RequestId", names.len()).await;
    assert_eq!(starts.len(), names.len(), "{starts:?}");

    // Multipart completion and copies are ObjectCreated events too.
    let upload = s3.create_multipart_upload().bucket("media").key("uploads/big.bin").send().await.expect("mpu");
    let id = upload.upload_id().expect("id").to_string();
    let part = s3
        .upload_part()
        .bucket("media")
        .key("uploads/big.bin")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(vec![1u8; 1024]))
        .send()
        .await
        .expect("part");
    s3.complete_multipart_upload()
        .bucket("media")
        .key("uploads/big.bin")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap_or_default())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete");
    s3.copy_object()
        .bucket("media")
        .key("uploads/copy.jpg")
        .copy_source("media/uploads/cat.jpg")
        .send()
        .await
        .expect("copy");
    wait_for_keys(&s3, "media", "processed/", names.len() + 2, Duration::from_secs(60)).await;
    for (key, event) in [("big.bin", "ObjectCreated:CompleteMultipartUpload"), ("copy.jpg", "ObjectCreated:Copy")] {
        let out = s3.get_object().bucket("media").key(format!("processed/{key}")).send().await.expect("result");
        let result: Value =
            serde_json::from_slice(&out.body.collect().await.expect("body").into_bytes()).expect("json");
        assert_eq!(result["record"]["eventName"], event);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_writing_into_its_own_trigger_is_stopped_after_16() {
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("echoes").send().await.expect("bucket");
    let narrow = role_with(
        &server,
        "looper-role",
        json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::echoes/*"}]),
    )
    .await;
    let arn = python_function(&server, "looper", "python/s3_loop.py", &narrow).await;
    allow_s3(&server, "looper", "echoes").await;
    s3.put_bucket_notification_configuration()
        .bucket("echoes")
        .notification_configuration(trigger(&arn, "s3:ObjectCreated:Put", "loop/"))
        .send()
        .await
        .expect("notification configuration");

    // Deploy time: giving the role write access to its own trigger prefix is flagged.
    let wide = role_with(
        &server,
        "looper-wide",
        json!([{"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::echoes/*"}]),
    )
    .await;
    let url = format!("{}/2015-03-31/functions/looper/configuration", server.endpoint);
    let resp = server
        .send(server.http().put(url).header("content-type", "application/json").body(json!({"Role": wide}).to_string()))
        .await
        .expect("update configuration");
    assert_eq!(resp.status(), 200);
    let warnings: Vec<String> =
        resp.headers().get_all("x-kumo-warning").iter().map(|v| v.to_str().unwrap_or_default().to_string()).collect();
    assert!(
        warnings.iter().any(|w| w.contains("recursive loop risk") && w.contains("s3://echoes/loop/")),
        "{warnings:?}"
    );
    let recursion = server.lambda().get_function_recursion_config().function_name("looper").send().await.expect("get");
    assert_eq!(recursion.recursive_loop().map(|r| r.as_str()), Some("Terminate"));

    // Run time: one upload starts the chain; the 17th invocation never happens.
    s3.put_object().bucket("echoes").key("loop/0").body(ByteStream::from_static(b"0")).send().await.expect("seed");
    wait_for_keys(&s3, "echoes", "loop/", 17, Duration::from_secs(120)).await;
    let needle = "kumo_recursive_invocations_dropped_total{function=\"looper\"} 1";
    let stopped = wait_for_metric(&server, needle, Duration::from_secs(30), "no recursive loop was recorded").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let keys = keys_under(&s3, "echoes", "loop/").await;
    assert_eq!(keys.len(), 17, "loop/0 and the 16 writes of 16 invocations: {keys:?} ({stopped})");
    assert!(keys.contains("loop/16") && !keys.contains("loop/17"));
    let starts = filter_logs(&server, "/aws/lambda/looper", "START RequestId").await;
    assert_eq!(starts.len(), 16, "{starts:?}");
    let told = filter_logs(&server, "/aws/lambda/looper", "recursive loop detected").await;
    assert_eq!(told.len(), 1, "{told:?}");
    // The stopped event is kept, with its reason, for inspection and redrive.
    let dead = server.cli().args(["events", "dead"]).output().expect("kumo events");
    let listing = String::from_utf8_lossy(&dead.stdout);
    assert!(listing.contains("RecursiveInvocationDetected"), "{listing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_invoking_itself_asynchronously_is_stopped_too() {
    let server = Server::start();
    let role = role_with(
        &server,
        "self-invoker",
        json!([{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"}]),
    )
    .await;
    python_function(&server, "ouroboros", "python/self_invoke.py", &role).await;
    let lambda = server.lambda();
    lambda
        .invoke()
        .function_name("ouroboros")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("first event");
    let needle = "function=\"ouroboros\"} 1";
    wait_for_metric(&server, needle, Duration::from_secs(120), "the self-invoking chain was not stopped").await;
    let starts = settled_lines(&server, "/aws/lambda/ouroboros", "START RequestId", 16).await;
    assert_eq!(starts.len(), 16, "{starts:?}");

    // With RecursiveLoop=Allow a new chain runs past 16; back to Terminate, it stops.
    lambda
        .put_function_recursion_config()
        .function_name("ouroboros")
        .recursive_loop(aws_sdk_lambda::types::RecursiveLoop::Allow)
        .send()
        .await
        .expect("allow");
    let got = lambda.get_function_recursion_config().function_name("ouroboros").send().await.expect("get");
    assert_eq!(got.recursive_loop().map(|r| r.as_str()), Some("Allow"));
    lambda
        .invoke()
        .function_name("ouroboros")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(Blob::new("{}"))
        .send()
        .await
        .expect("second chain");
    let deadline = Instant::now() + Duration::from_secs(120);
    while filter_logs(&server, "/aws/lambda/ouroboros", "START RequestId").await.len() < 16 + 20 {
        assert!(Instant::now() < deadline, "RecursiveLoop=Allow did not let the chain go on");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    lambda
        .put_function_recursion_config()
        .function_name("ouroboros")
        .recursive_loop(aws_sdk_lambda::types::RecursiveLoop::Terminate)
        .send()
        .await
        .expect("terminate");
    let what = "the allowed chain did not stop once Terminate was set again";
    wait_for_metric(&server, "function=\"ouroboros\"} 2", Duration::from_secs(60), what).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_stored_upload_gets_its_event_across_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let s3 = server.s3();
    s3.create_bucket().bucket("burst").send().await.expect("bucket");
    create_python(&server.lambda(), "logger", "python3.12", "python/s3_log_keys.py").await;
    allow_s3(&server, "logger", "burst").await;
    let arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:logger");
    s3.put_bucket_notification_configuration()
        .bucket("burst")
        .notification_configuration(trigger(&arn, "s3:ObjectCreated:*", "in/"))
        .send()
        .await
        .expect("notification configuration");

    // A burst of uploads from 16 writers; Kumo dies in the middle of it.
    let mut writers = Vec::new();
    for w in 0..16 {
        let s3 = s3.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..20 {
                let key = format!("in/{w}-{i}");
                let body = format!("body of {key}").repeat(100);
                if s3
                    .put_object()
                    .bucket("burst")
                    .key(&key)
                    .body(ByteStream::from(body.into_bytes()))
                    .send()
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.kill9();
    for w in writers {
        let _ = w.await;
    }
    let server = Server::start_in(&data, &[]);
    let s3 = server.s3();
    let stored = keys_under(&s3, "burst", "in/").await;
    assert!(!stored.is_empty(), "some uploads finished before the kill");
    eprintln!("{} of 320 uploads were stored before kill -9", stored.len());
    // Every stored object is whole, and every one of them reaches the function.
    for key in &stored {
        let out = s3.get_object().bucket("burst").key(key).send().await.expect("stored object");
        let body = out.body.collect().await.expect("body").into_bytes();
        assert_eq!(body.as_ref(), format!("body of {key}").repeat(100).as_bytes(), "{key} is intact");
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines = filter_logs(&server, "/aws/lambda/logger", "S3-EVENT").await;
        let seen: BTreeSet<String> = lines
            .iter()
            .filter_map(|l| l.split("S3-EVENT ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect();
        let missing: Vec<&String> = stored.iter().filter(|k| !seen.contains(*k)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} stored objects never reached the function: {missing:?}", missing.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_events_are_recorded_in_an_on_failure_bucket() {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
    let server = Server::start();
    let s3 = server.s3();
    s3.create_bucket().bucket("failures").send().await.expect("bucket");
    let role = role_with(
        &server,
        "failer-role",
        json!([{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::failures/*"}]),
    )
    .await;
    python_function(&server, "failer", "python/fail.py", &role).await;
    let lambda = server.lambda();
    let to = |arn: &str| DestinationConfig::builder().on_failure(OnFailure::builder().destination(arn).build()).build();
    let missing = lambda
        .put_function_event_invoke_config()
        .function_name("failer")
        .destination_config(to("arn:aws:s3:::no-such-bucket"))
        .send()
        .await
        .expect_err("a bucket that does not exist");
    assert!(format!("{missing:?}").contains("is invalid"), "{missing:?}");
    lambda
        .put_function_event_invoke_config()
        .function_name("failer")
        .maximum_retry_attempts(0)
        .destination_config(to("arn:aws:s3:::failures"))
        .send()
        .await
        .expect("on-failure bucket");
    let out = lambda
        .invoke()
        .function_name("failer")
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(Blob::new(r#"{"order": 42}"#))
        .send()
        .await
        .expect("event");
    let request_id = aws_sdk_lambda::operation::RequestId::request_id(&out).expect("request id").to_string();
    wait_for_keys(&s3, "failures", "aws/lambda/async/failer/", 1, Duration::from_secs(60)).await;
    let key = keys_under(&s3, "failures", "aws/lambda/async/failer/").await.into_iter().next().expect("record key");
    let day = &key["aws/lambda/async/failer/".len()..];
    assert!(day.len() > 11 && day.as_bytes()[4] == b'/' && day.as_bytes()[7] == b'/', "{key}");
    let body = s3.get_object().bucket("failures").key(&key).send().await.expect("record");
    let record: Value = serde_json::from_slice(&body.body.collect().await.expect("b").into_bytes()).expect("json");
    assert_eq!(record["requestContext"]["requestId"], request_id.as_str());
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(record["requestPayload"], json!({"order": 42}));
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
}

/// The log lines matching `pattern` once at least `expected` are stored (or 60 s
/// passed), and one more second for any extra to show. An invocation's lines are
/// stored when it ends, and on a loaded machine the tail of a 128 MB function (7 %
/// of a CPU) can end seconds after the chain it started has moved on.
async fn settled_lines(server: &Server, group: &str, pattern: &str, expected: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while filter_logs(server, group, pattern).await.len() < expected && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    filter_logs(server, group, pattern).await
}
