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
