//! Asynchronous invocations: durable before 202, retried as Lambda retries,
//! never lost to a crash.

use std::time::{Duration, Instant};

use aws_sdk_lambda::operation::RequestId;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{Value, json};

use crate::harness::*;
use crate::invoke::filter_logs;

async fn invoke_event(lambda: &aws_sdk_lambda::Client, name: &str, payload: Value) -> String {
    let out = lambda
        .invoke()
        .function_name(name)
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(payload.to_string()))
        .send()
        .await
        .expect("event invoke");
    assert_eq!(out.status_code(), 202);
    out.request_id().expect("request id").to_string()
}

/// The START lines of one request id in a function's log group.
async fn starts_of(server: &Server, function: &str, request_id: &str) -> usize {
    filter_logs(server, &format!("/aws/lambda/{function}"), &format!("START RequestId: {request_id}")).await.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_event_gets_three_attempts_with_one_request_id() {
    let server = Server::start_with(&["--async-retry-delays", "300ms,600ms"]);
    let lambda = server.lambda();
    create_echo(&lambda, "flaky", 128, 5).await;
    let failing = invoke_event(&lambda, "flaky", json!({"fail": "always"})).await;
    let fine = invoke_event(&lambda, "flaky", json!({"x": 1})).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while starts_of(&server, "flaky", &failing).await < 3 {
        assert!(Instant::now() < deadline, "the failing event was not retried twice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The retries came after the configured delays, and there is no fourth attempt.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(starts_of(&server, "flaky", &failing).await, 3, "exactly 1 attempt + 2 retries");
    assert_eq!(starts_of(&server, "flaky", &fine).await, 1, "a success is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_events_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    create_echo(&lambda, "slow", 128, 10).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(invoke_event(&lambda, "slow", json!({"sleep_ms": 150, "i": i})).await);
    }
    // Every one of them was answered 202, so every one must run, crash or not.
    server.kill9();
    let server = Server::start_in(&data, &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let reports = filter_logs(&server, "/aws/lambda/slow", &format!("REPORT RequestId: {id}")).await;
            if !reports.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "event {id} was lost");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn sdk_error<E: std::fmt::Debug>(e: aws_sdk_lambda::error::SdkError<E>) -> (u16, String) {
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn event_invoke_config_round_trips_and_validates_like_lambda() {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "cfg", 128, 5).await;
    create_python(&lambda, "cfg-sink", "python3.12", "python/record_sink.py").await;
    let sink_arn = "arn:aws:lambda:us-east-1:000000000000:function:cfg-sink";
    let put = lambda
        .put_function_event_invoke_config()
        .function_name("cfg")
        .maximum_retry_attempts(0)
        .destination_config(
            DestinationConfig::builder().on_failure(OnFailure::builder().destination(sink_arn).build()).build(),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(put.function_arn(), Some("arn:aws:lambda:us-east-1:000000000000:function:cfg:$LATEST"));
    assert_eq!(put.maximum_retry_attempts(), Some(0));
    assert!(put.last_modified().is_some());
    let updated = lambda
        .update_function_event_invoke_config()
        .function_name("cfg")
        .maximum_event_age_in_seconds(120)
        .send()
        .await
        .expect("update");
    assert_eq!((updated.maximum_retry_attempts(), updated.maximum_event_age_in_seconds()), (Some(0), Some(120)));
    let got = lambda.get_function_event_invoke_config().function_name("cfg").send().await.expect("get");
    assert_eq!(got.destination_config().and_then(|d| d.on_failure()).and_then(|f| f.destination()), Some(sink_arn));
    let list = lambda.list_function_event_invoke_configs().function_name("cfg").send().await.expect("list");
    assert_eq!(list.function_event_invoke_configs().len(), 1);

    // Lambda's errors.
    let (status, e) = sdk_error(
        lambda
            .put_function_event_invoke_config()
            .function_name("cfg")
            .maximum_retry_attempts(3)
            .send()
            .await
            .expect_err("3 retries"),
    );
    assert_eq!(status, 400);
    assert!(e.contains("Member must have value less than or equal to 2"), "{e}");
    let (status, e) =
        sdk_error(lambda.put_function_event_invoke_config().function_name("cfg").send().await.expect_err("empty"));
    assert_eq!(status, 400);
    assert!(e.contains("You must specify at least one of error handling or destination setting."), "{e}");
    let own = "arn:aws:lambda:us-east-1:000000000000:function:cfg";
    let (_, e) = sdk_error(
        lambda
            .put_function_event_invoke_config()
            .function_name("cfg")
            .destination_config(
                DestinationConfig::builder().on_failure(OnFailure::builder().destination(own).build()).build(),
            )
            .send()
            .await
            .expect_err("self"),
    );
    assert!(e.contains("You can't specify the function as a destination for itself."), "{e}");
    // A queue destination is refused out loud until Kumo serves queues, never accepted and dropped.
    let queue = "arn:aws:sqs:us-east-1:000000000000:failures";
    let (status, e) = sdk_error(
        lambda
            .put_function_event_invoke_config()
            .function_name("cfg")
            .destination_config(
                DestinationConfig::builder().on_failure(OnFailure::builder().destination(queue).build()).build(),
            )
            .send()
            .await
            .expect_err("sqs"),
    );
    assert_eq!(status, 400);
    assert!(e.contains("Kumo does not serve SQS yet"), "{e}");
    let (status, _) = sdk_error(
        lambda
            .put_function_event_invoke_config()
            .function_name("nope")
            .maximum_retry_attempts(1)
            .send()
            .await
            .expect_err("missing"),
    );
    assert_eq!(status, 404);

    lambda.delete_function_event_invoke_config().function_name("cfg").send().await.expect("delete");
    let (status, e) =
        sdk_error(lambda.get_function_event_invoke_config().function_name("cfg").send().await.expect_err("gone"));
    assert_eq!(status, 404);
    assert!(e.contains("doesn't have an EventInvokeConfig"), "{e}");
}

/// The records a sink function logged, as JSON.
async fn records(server: &Server, sink: &str) -> Vec<Value> {
    filter_logs(server, &format!("/aws/lambda/{sink}"), "RECORD ")
        .await
        .iter()
        .filter_map(|l| l.trim().strip_prefix("RECORD ").and_then(|j| serde_json::from_str(j).ok()))
        .collect()
}

async fn wait_for_record(server: &Server, sink: &str, request_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) =
            records(server, sink).await.into_iter().find(|r| r["requestContext"]["requestId"] == request_id)
        {
            return r;
        }
        assert!(Instant::now() < deadline, "no destination record for {request_id}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn destinations_receive_lambdas_invocation_record() {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure, OnSuccess};
    // Retries a minute and a half apart: an event allowed only 60 s of age cannot wait for one.
    let server = Server::start_with(&["--async-retry-delays", "90s"]);
    let lambda = server.lambda();
    create_python(&lambda, "sink", "python3.12", "python/record_sink.py").await;
    let sink = "arn:aws:lambda:us-east-1:000000000000:function:sink";
    let destinations = DestinationConfig::builder()
        .on_success(OnSuccess::builder().destination(sink).build())
        .on_failure(OnFailure::builder().destination(sink).build())
        .build();
    for (name, retries, age) in [("no-retry", Some(0), None), ("short-lived", None, Some(60))] {
        create_echo(&lambda, name, 128, 5).await;
        let mut put =
            lambda.put_function_event_invoke_config().function_name(name).destination_config(destinations.clone());
        if let Some(r) = retries {
            put = put.maximum_retry_attempts(r);
        }
        if let Some(a) = age {
            put = put.maximum_event_age_in_seconds(a);
        }
        put.send().await.expect("put config");
    }

    let ok = invoke_event(&lambda, "no-retry", json!({"hello": "world"})).await;
    let record = wait_for_record(&server, "sink", &ok).await;
    assert_eq!(record["version"], "1.0");
    assert_eq!(record["requestContext"]["condition"], "Success");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:no-retry:$LATEST"
    );
    assert_eq!(record["requestPayload"], json!({"hello": "world"}));
    assert_eq!(record["responseContext"], json!({"statusCode": 200, "executedVersion": "$LATEST"}));
    assert_eq!(record["responsePayload"]["event"], json!({"hello": "world"}));

    let failed = invoke_event(&lambda, "no-retry", json!({"fail": "nope"})).await;
    let record = wait_for_record(&server, "sink", &failed).await;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1, "MaximumRetryAttempts 0: one attempt");
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert!(record["responsePayload"]["errorMessage"].as_str().unwrap_or_default().contains("nope"), "{record}");
    assert_eq!(starts_of(&server, "no-retry", &failed).await, 1);

    let expired = invoke_event(&lambda, "short-lived", json!({"fail": "late"})).await;
    let record = wait_for_record(&server, "sink", &expired).await;
    assert_eq!(record["requestContext"]["condition"], "EventAgeExceeded");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_drains_in_arrival_order_within_the_concurrency_limit() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "ordered", 128, 5).await;
    lambda
        .put_function_concurrency()
        .function_name("ordered")
        .reserved_concurrent_executions(1)
        .send()
        .await
        .expect("limit");
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(invoke_event(&lambda, "ordered", json!({"i": i, "sleep_ms": 30})).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        let starts = filter_logs(&server, "/aws/lambda/ordered", "START RequestId:").await;
        if starts.len() >= ids.len() {
            break starts;
        }
        assert!(Instant::now() < deadline, "the burst did not drain: {} of {}", starts.len(), ids.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let order: Vec<String> = started
        .iter()
        .filter_map(|l| l.split("RequestId: ").nth(1).and_then(|r| r.split_whitespace().next()).map(str::to_string))
        .collect();
    assert_eq!(order, ids, "one at a time (reserved concurrency 1), first in, first run, none throttled away");
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_events_are_kept_listed_and_redriven() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "doomed", 128, 5).await;
    lambda
        .put_function_event_invoke_config()
        .function_name("doomed")
        .maximum_retry_attempts(0)
        .send()
        .await
        .expect("cfg");
    // A dead-letter queue must be a queue or a topic, as on Lambda.
    let dlq = |arn: &str| aws_sdk_lambda::types::DeadLetterConfig::builder().target_arn(arn).build();
    let not_a_queue = "arn:aws:lambda:us-east-1:000000000000:function:doomed";
    let refused = lambda.update_function_configuration().function_name("doomed").dead_letter_config(dlq(not_a_queue));
    let (status, text) = sdk_error(refused.send().await.expect_err("a function is no dead-letter queue"));
    assert_eq!(status, 400);
    assert!(text.contains("InvalidParameterValueException"), "{text}");
    let queue = "arn:aws:sqs:us-east-1:000000000000:doomed-dlq";
    let updated = lambda.update_function_configuration().function_name("doomed").dead_letter_config(dlq(queue));
    let updated = updated.send().await.expect("dlq");
    assert_eq!(updated.dead_letter_config().and_then(|d| d.target_arn()), Some(queue));
    let id = invoke_event(&lambda, "doomed", json!({"fail": "for good"})).await;
    let kumo = |args: &[&str]| {
        let out = server.cli().args(args).output().expect("run kumo");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dead = kumo(&["events", "dead", "--function", "doomed"]);
        if dead.contains(&id) {
            assert!(dead.contains("RetriesExhausted"), "{dead}");
            break;
        }
        assert!(Instant::now() < deadline, "the event never became dead: {dead}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(starts_of(&server, "doomed", &id).await, 1);
    assert!(!kumo(&["events", "ls", "--state", "queued"]).contains(&id), "a dead event is not queued");
    let metrics = server
        .send(server.http().get(format!("{}/_kumo/metrics", server.endpoint)))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    assert!(metrics.lines().any(|l| l == "kumo_async_events_dead 1"), "{metrics}");
    assert!(metrics.lines().any(|l| l == "kumo_async_oldest_event_age_seconds 0.000"), "{metrics}");
    let listed: Value = server
        .send(server.http().get(format!("{}/_kumo/events?state=dead", server.endpoint)))
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let error = listed["Events"][0]["LastError"].as_str().unwrap_or_default().to_string();
    assert!(
        error.contains(&format!("dead-letter queue {queue}")),
        "the event names the queue it was meant for: {error}"
    );
    // A body that does not parse is refused, not taken as "redrive everything".
    let bad = server.send(server.http().post(format!("{}/_kumo/events/redrive", server.endpoint)).body("{nope")).await;
    assert_eq!(bad.expect("request").status(), 400);
    assert_eq!(starts_of(&server, "doomed", &id).await, 1);
    let out = kumo(&["events", "redrive", &id]);
    assert!(out.contains("1 event(s) back in the queue"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while starts_of(&server, "doomed", &id).await < 2 {
        assert!(Instant::now() < deadline, "the redriven event did not run");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let listed = kumo(&["events", "ls"]);
    assert!(listed.contains("REQUEST ID"), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn configs_follow_their_alias_and_reserved_zero_fails_at_once() {
    use aws_sdk_lambda::types::{DestinationConfig, OnFailure};
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "zero-sink", "python3.12", "python/record_sink.py").await;
    create_echo(&lambda, "zero", 128, 5).await;
    let published = lambda.publish_version().function_name("zero").send().await.expect("publish");
    let version = published.version().expect("version").to_string();
    lambda.create_alias().function_name("zero").name("live").function_version(&version).send().await.expect("alias");
    lambda
        .put_function_event_invoke_config()
        .function_name("zero")
        .qualifier("live")
        .maximum_retry_attempts(1)
        .send()
        .await
        .expect("alias config");
    lambda.delete_alias().function_name("zero").name("live").send().await.expect("delete alias");
    lambda
        .create_alias()
        .function_name("zero")
        .name("live")
        .function_version(&version)
        .send()
        .await
        .expect("alias again");
    let gone = lambda.get_function_event_invoke_config().function_name("zero").qualifier("live").send().await;
    assert!(gone.is_err(), "a deleted alias takes its configuration with it");

    // Reserved concurrency 0: the event goes straight to the failure path, never run.
    lambda
        .put_function_concurrency()
        .function_name("zero")
        .reserved_concurrent_executions(0)
        .send()
        .await
        .expect("zero");
    let sink = "arn:aws:lambda:us-east-1:000000000000:function:zero-sink";
    lambda
        .put_function_event_invoke_config()
        .function_name("zero")
        .destination_config(
            DestinationConfig::builder().on_failure(OnFailure::builder().destination(sink).build()).build(),
        )
        .send()
        .await
        .expect("config");
    let id = invoke_event(&lambda, "zero", json!({"never": "runs"})).await;
    let record = wait_for_record(&server, "zero-sink", &id).await;
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 0);
    assert_eq!(starts_of(&server, "zero", &id).await, 0);
}
