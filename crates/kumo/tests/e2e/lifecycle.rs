//! Restarts, graceful drain and crashes.

use std::time::Duration;

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn everything_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    create_echo(&lambda, "keep", 128, 5).await;
    lambda.publish_version().function_name("keep").send().await.expect("publish");
    lambda.create_alias().function_name("keep").name("prod").function_version("1").send().await.expect("alias");
    lambda.put_function_concurrency().function_name("keep").reserved_concurrent_executions(5).send().await.expect("rc");
    let (_, err, _) = invoke(&lambda, "keep", json!({"print": "before restart"})).await;
    assert_eq!(err, None);
    assert!(server.stop().success());

    let server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    let f = lambda.get_function().function_name("keep").qualifier("prod").send().await.expect("alias survives");
    assert_eq!(f.configuration().and_then(|c| c.version()), Some("1"));
    assert_eq!(f.concurrency().and_then(|c| c.reserved_concurrent_executions()), Some(5));
    let (payload, err, _) = invoke(&lambda, "keep:prod", json!({})).await;
    assert_eq!(err, None, "{payload}");
    let logs = crate::invoke::filter_logs(&server, "/aws/lambda/keep", "before restart").await;
    assert_eq!(logs, vec!["before restart".to_string()], "logs survive the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_in_flight_invocations() {
    let mut server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "drain", 128, 10).await;
    let call = {
        let lambda = lambda.clone();
        tokio::spawn(async move { invoke(&lambda, "drain", json!({"sleep_ms": 1500})).await })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let status = tokio::task::spawn_blocking(move || server.stop()).await.expect("stop");
    let (payload, err, _) = call.await.expect("invoke task");
    assert_eq!(err, None, "the in-flight invocation completed: {payload}");
    assert_eq!(payload["event"]["sleep_ms"], 1500);
    assert!(status.success(), "clean exit after draining: {status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_loses_no_function() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    create_echo(&lambda, "durable", 128, 5).await;
    server.kill9();
    let server = Server::start_in(&data, &[]);
    let (payload, err, _) = invoke(&server.lambda(), "durable", json!({"x": 1})).await;
    assert_eq!((err, payload["event"]["x"].as_i64()), (None, Some(1)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_never_drops_or_misroutes_an_in_flight_invocation() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "deploy", "python3.12", "python/sleepy.py").await;
    let slow = {
        let lambda = lambda.clone();
        tokio::spawn(async move { invoke(&lambda, "deploy", json!({"sleep": 1.5})).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    lambda
        .update_function_code()
        .function_name("deploy")
        .zip_file(aws_sdk_lambda::primitives::Blob::new(fixture_zip("python/echo.py", "app.py")))
        .send()
        .await
        .expect("update code");
    // New invocations run the new code at once, while the old one finishes on the old code.
    let (new, err, _) = invoke(&lambda, "deploy", json!({"after": "deploy"})).await;
    assert_eq!(err, None, "{new}");
    assert_eq!(new["event"], json!({"after": "deploy"}));
    let (old, err, _) = slow.await.expect("slow task");
    assert_eq!((old, err), (json!({"slept": 1.5}), None));
}
