//! Runtimes: Kumo's Python and Node bootstraps, `provided` with lambda_runtime, init errors.

use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn python_handler_sees_lambda_context_and_environment() {
    let server = Server::start();
    let lambda = server.lambda();
    lambda
        .create_function()
        .function_name("py")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .memory_size(192)
        .environment(aws_sdk_lambda::types::Environment::builder().variables("CUSTOM", "value").build())
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(fixture_zip("python/echo.py", "app.py")))
                .build(),
        )
        .send()
        .await
        .expect("create");
    let (p, err, tail) = invoke(&lambda, "py", json!({"k": [1, 2]})).await;
    assert_eq!(err, None, "{p}");
    assert_eq!(p["event"], json!({"k": [1, 2]}));
    assert_eq!(p["function_name"], "py");
    assert_eq!(p["function_version"], "$LATEST");
    assert_eq!(p["memory_limit_in_mb"], "192");
    assert_eq!(p["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:py");
    assert_eq!(p["log_group_name"], "/aws/lambda/py");
    let stream = p["log_stream_name"].as_str().unwrap_or_default();
    assert!(stream.contains("/[$LATEST]") && stream.len() == "2020/03/27/[$LATEST]".len() + 32, "{stream}");
    let remaining = p["remaining_ms"].as_i64().unwrap_or(0);
    assert!((1..=30_000).contains(&remaining), "{remaining}");
    assert_eq!(p["env_region"], "us-east-1");
    assert_eq!(p["env_handler"], "app.handler");
    assert_eq!(p["env_custom"], "value");
    assert!(tail.contains(&format!("handling {}", p["request_id"].as_str().unwrap_or_default())), "{tail}");
    assert!(tail.starts_with("INIT_START Runtime Version: python:3.12"), "{tail}");
    let (p2, _, _) = invoke(&lambda, "py", json!({})).await;
    assert_eq!((p2["count"].as_i64(), p2["log_stream_name"].as_str()), (Some(2), p["log_stream_name"].as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn python_handler_error_and_import_error() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "fails", "python3.12", "python/fail.py").await;
    // The first exception imports traceback: seconds at 128 MB's CPU share on a busy
    // machine. This test is about the error's shape, so give it a whole CPU.
    let update = lambda.update_function_configuration().function_name("fails").memory_size(1769);
    update.send().await.expect("more CPU");
    let (p, err, tail) = invoke(&lambda, "fails", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(p["errorType"], "PaymentDeclined");
    assert_eq!(p["errorMessage"], "card 4242 declined");
    assert!(p["stackTrace"].as_array().is_some_and(|s| !s.is_empty()), "{p}");
    assert!(tail.contains("[ERROR] PaymentDeclined: card 4242 declined"), "{tail}");

    create_python(&lambda, "noimport", "python3.12", "python/import_error.py").await;
    let (p, err, tail) = invoke(&lambda, "noimport", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(p["errorType"], "Runtime.ImportModuleError");
    assert_eq!(p["errorMessage"], "Unable to import module 'app': No module named 'module_that_does_not_exist'");
    assert!(tail.contains("INIT_REPORT Init Duration: "), "{tail}");
    assert!(report_line(&tail).ends_with("Status: error\tError Type: Runtime.ImportModuleError"), "{tail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_runtime_ships_boto3() {
    let server = Server::start();
    let lambda = server.lambda();
    // Lambda's managed Python runtimes include the SDK; Kumo prefers an interpreter that has it.
    let runtime = ["python3.11", "python3.12", "python3.13", "python3.10", "python3.9"]
        .into_iter()
        .find(|r| server.output.lock().expect("output").iter().any(|l| l.contains(&format!("runtime {r} "))))
        .expect("some python runtime");
    create_python(&lambda, "sdk", runtime, "python/uses_boto3.py").await;
    let (p, err, _) = invoke(&lambda, "sdk", json!({})).await;
    if err.is_some() && p["errorMessage"].as_str().unwrap_or_default().contains("No module named 'boto3'") {
        eprintln!("!!! no interpreter for {runtime} on this machine has boto3 installed; skipping the SDK check !!!");
        return;
    }
    assert_eq!(err, None, "{p}");
    assert!(p["boto3"].as_str().is_some_and(|v| v.starts_with('1')), "{p}");
}

#[tokio::test(flavor = "multi_thread")]
async fn node_handler_runs() {
    let server = Server::start();
    let lambda = server.lambda();
    let runtime = ["nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x"]
        .into_iter()
        .find(|r| server.output.lock().expect("output").iter().any(|l| l.contains(&format!("runtime {r} "))));
    let Some(runtime) = runtime else {
        eprintln!("!!! no Node.js on this machine: skipping the Node runtime test !!!");
        return;
    };
    lambda
        .create_function()
        .function_name("node")
        .runtime(runtime.into())
        .handler("index.handler")
        .role(ROLE)
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(fixture_zip("node/echo.js", "index.js")))
                .build(),
        )
        .send()
        .await
        .expect("create");
    let (p, err, tail) = invoke(&lambda, "node", json!({"n": 1})).await;
    assert_eq!(err, None, "{p}");
    assert_eq!(p["event"], json!({"n": 1}));
    assert_eq!(p["functionName"], "node");
    assert!(tail.contains("\tINFO\thandling "), "{tail}");
    let (p, _, _) = invoke(&lambda, "node", json!({})).await;
    assert_eq!(p["count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_and_unavailable_runtimes_are_refused() {
    let server = Server::start();
    let lambda = server.lambda();
    let zip = fixture_zip("python/echo.py", "app.py");
    let create = |runtime: &'static str| {
        lambda
            .create_function()
            .function_name("rt")
            .runtime(runtime.into())
            .handler("app.handler")
            .role(ROLE)
            .code(
                aws_sdk_lambda::types::FunctionCode::builder()
                    .zip_file(aws_sdk_lambda::primitives::Blob::new(zip.clone()))
                    .build(),
            )
            .send()
    };
    let err = create("cobol85").await.expect_err("unknown runtime").into_service_error();
    assert!(err.is_invalid_parameter_value_exception(), "{err:?}");
    assert!(
        err.meta().message().unwrap_or_default().starts_with("Value cobol85 at 'runtime' failed to satisfy constraint")
    );
    let err = create("python3.7").await.expect_err("deprecated").into_service_error();
    assert!(err.meta().message().unwrap_or_default().contains("is no longer supported"), "{err:?}");
    let err = create("java21").await.expect_err("unsupported").into_service_error();
    assert!(err.is_invalid_parameter_value_exception(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_interpreter_is_refused_at_create() {
    // A server that can find no interpreters at all.
    let empty = tempfile::tempdir().expect("tmp");
    let server = Server::start_with_env(
        &[],
        &[("PATH", "/nonexistent"), ("HOME", empty.path().to_str().unwrap_or("/")), ("PYENV_ROOT", "/nonexistent")],
    );
    let lambda = server.lambda();
    let zip = fixture_zip("python/echo.py", "app.py");
    let err = lambda
        .create_function()
        .function_name("nopy")
        .runtime(aws_sdk_lambda::types::Runtime::Python39)
        .handler("app.handler")
        .role(ROLE)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(zip)).build(),
        )
        .send()
        .await;
    if std::path::Path::new("/usr/bin/python3.9").exists() || std::path::Path::new("/usr/local/bin/python3.9").exists()
    {
        eprintln!("!!! this machine has a system python3.9: skipping the missing-interpreter check !!!");
        return;
    }
    let err = err.expect_err("no interpreter").into_service_error();
    assert!(err.is_invalid_parameter_value_exception(), "{err:?}");
    assert!(err.meta().message().unwrap_or_default().contains("needs a python3.9 interpreter"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn provided_without_bootstrap_fails_at_init() {
    let server = Server::start();
    let lambda = server.lambda();
    lambda
        .create_function()
        .function_name("nobootstrap")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("x")
        .role(ROLE)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_of(&[("main", b"x", 0o755)])))
                .build(),
        )
        .send()
        .await
        .expect("create");
    let (p, err, _) = invoke(&lambda, "nobootstrap", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(p["errorType"], "Runtime.InvalidEntrypoint");
}

/// The bootstraps' own conformance suite against a fake Runtime API.
#[test]
fn bootstrap_scripts_pass_their_suite() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runtimes/test_bootstraps.py");
    let out = std::process::Command::new("python3").arg(&script).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
}

async fn create_slow_init(lambda: &aws_sdk_lambda::Client, name: &str, timeout: i32) {
    lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("app.handler")
        .role(ROLE)
        .timeout(timeout)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(fixture_zip("python/slow_init.py", "app.py")))
                .build(),
        )
        .send()
        .await
        .expect("create");
}

/// An init over 10 s is retried within the invocation, bounded by the function timeout.
#[tokio::test(flavor = "multi_thread")]
async fn init_over_ten_seconds_is_retried_within_the_timeout() {
    let server = Server::start();
    let lambda = server.lambda();
    create_slow_init(&lambda, "slowinit", 30).await;
    let started = std::time::Instant::now();
    let (p, err, tail) = invoke(&lambda, "slowinit", json!({})).await;
    assert_eq!(err, None, "{p}");
    assert_eq!(p, json!({"ok": true}));
    assert!(started.elapsed() > std::time::Duration::from_secs(20), "two inits ran");
    assert!(report_line(&tail).contains("Init Duration: "), "{tail}");
    let logs = crate::invoke::filter_logs(&server, "/aws/lambda/slowinit", "Phase: init").await;
    assert!(
        logs.iter()
            .any(|l| l.starts_with("INIT_REPORT Init Duration: 100") && l.ends_with("\tPhase: init\tStatus: timeout")),
        "{logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn init_retry_that_overruns_the_timeout_times_out() {
    let server = Server::start();
    let lambda = server.lambda();
    create_slow_init(&lambda, "tooslow", 3).await;
    let (p, err, tail) = invoke(&lambda, "tooslow", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(p["errorType"], "Sandbox.Timedout", "{p}\n{tail}");
    assert!(p["errorMessage"].as_str().unwrap_or_default().ends_with("Task timed out after 3.00 seconds"), "{p}");
    assert!(tail.contains("\tPhase: invoke\tStatus: timeout"), "{tail}");
    assert!(report_line(&tail).ends_with("\tStatus: timeout"), "{tail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_response_is_a_function_error() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "big", "python3.12", "python/big_response.py").await;
    // Building 6 MB in Python takes seconds at 128 MB's share of a CPU: give it a whole one.
    let update = lambda.update_function_configuration().function_name("big").memory_size(1769).timeout(30);
    update.send().await.expect("more CPU for the big response");
    let (p, err, _) = invoke(&lambda, "big", json!({})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(
        p,
        json!({"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).", "errorType": "Function.ResponseSizeTooLarge"})
    );
    // The environment survives and serves the next call.
    create_python(&lambda, "small", "python3.12", "python/echo.py").await;
    let (_, err, _) = invoke(&lambda, "small", json!({})).await;
    assert_eq!(err, None);
}
