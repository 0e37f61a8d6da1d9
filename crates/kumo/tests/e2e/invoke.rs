//! Invoke semantics: types, errors, timeouts, memory, reuse, scale-out, reaping.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread")]
async fn sync_event_and_dry_run() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "types", 128, 5).await;

    let (payload, err, tail) = invoke(&lambda, "types", json!({"x": 1, "print": "printed by the function"})).await;
    assert_eq!(err, None);
    assert_eq!(payload["event"]["x"], 1);
    // The tail holds the function's own output between START and END.
    let lines: Vec<&str> = tail.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("START RequestId: ")).expect("START");
    let printed = lines.iter().position(|l| *l == "printed by the function").expect("function output");
    let end = lines.iter().position(|l| l.starts_with("END RequestId: ")).expect("END");
    assert!(start < printed && printed < end, "{tail}");
    let report = report_line(&tail);
    assert!(report.contains("\tInit Duration: "), "first invoke is a cold start: {report}");
    assert!(report.ends_with('\t'), "REPORT ends with a tab as Lambda's does: {report:?}");

    let out = lambda
        .invoke()
        .function_name("types")
        .invocation_type(InvocationType::Event)
        .payload(Blob::new(r#"{"print":"from the async invoke"}"#))
        .send()
        .await
        .expect("event");
    assert_eq!(out.status_code(), 202);
    assert!(out.payload().is_none_or(|p| p.as_ref().is_empty()));

    let dry =
        lambda.invoke().function_name("types").invocation_type(InvocationType::DryRun).send().await.expect("dry run");
    assert_eq!(dry.status_code(), 204);

    // The Event invocation ran: its output reaches the log group.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = filter_logs(&server, "/aws/lambda/types", "from the async invoke").await;
        if !logs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "async invocation never ran");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn filter_logs(server: &Server, group: &str, pattern: &str) -> Vec<String> {
    let req = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("x-amz-target", "Logs_20140328.FilterLogEvents")
        .header("content-type", "application/x-amz-json-1.1")
        .body(json!({"logGroupName": group, "filterPattern": format!("\"{pattern}\"")}).to_string());
    let resp = server.send(req).await.expect("filter");
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    v["events"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str().map(str::to_string)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_reuse_keeps_globals() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "warm", 128, 5).await;
    let mut pids = Vec::new();
    for i in 1..=5u64 {
        let (payload, err, tail) = invoke(&lambda, "warm", json!({})).await;
        assert_eq!(err, None);
        assert_eq!(payload["count"], i, "the global counter survives between invocations");
        pids.push(payload["instance"].as_str().map(str::to_string));
        if i > 1 {
            assert!(!report_line(&tail).contains("Init Duration"), "warm invocations have no init");
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one environment served every sequential invocation");
}

#[tokio::test(flavor = "multi_thread")]
async fn handler_error_is_unhandled_with_lambda_body() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "boom", 128, 5).await;
    let (payload, err, _) = invoke(&lambda, "boom", json!({"fail": "it broke"})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(payload["errorMessage"], "it broke");
    assert!(payload["errorType"].is_string());
    // The environment survives a handled error and serves the next call.
    let (payload, err, _) = invoke(&lambda, "boom", json!({})).await;
    assert_eq!(err, None);
    assert_eq!(payload["count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_the_environment() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "slow", 128, 1).await;
    let started = Instant::now();
    let (payload, err, tail) = invoke(&lambda, "slow", json!({"sleep_ms": 5000})).await;
    assert!(started.elapsed() < Duration::from_secs(4), "the caller is answered at the timeout");
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(payload["errorType"], "Sandbox.Timedout");
    let message = payload["errorMessage"].as_str().unwrap_or_default();
    assert!(message.ends_with("Error: Task timed out after 1.00 seconds"), "{message}");
    let report = report_line(&tail);
    assert!(report.ends_with("\tStatus: timeout"), "{report}");
    assert_eq!(report_field(&report, "Duration"), Some(1000.0));
    // The next invocation gets a fresh environment (count restarts at 1).
    let (payload, err, tail) = invoke(&lambda, "slow", json!({})).await;
    assert_eq!(err, None);
    assert_eq!(payload["count"], 1);
    assert!(report_line(&tail).contains("Init Duration"));
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_is_reported_as_exit_error() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "crash", 128, 5).await;
    let (payload, err, tail) = invoke(&lambda, "crash", json!({"exit": 7})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(payload["errorType"], "Runtime.ExitError");
    assert!(payload["errorMessage"].as_str().unwrap_or_default().ends_with("Runtime exited with error: exit status 7"));
    assert!(report_line(&tail).ends_with("\tStatus: error\tError Type: Runtime.ExitError"));
    let (payload, err, _) = invoke(&lambda, "crash", json!({})).await;
    assert_eq!((payload["count"].as_u64(), err), (Some(1), None));
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_is_enforced_and_peak_is_measured() {
    let server = Server::start();
    if !cgroups_available(&server) {
        return;
    }
    let lambda = server.lambda();
    // Generous: reclaim before the OOM kill can take seconds on a busy machine.
    create_echo(&lambda, "mem", 256, 30).await;
    let (_, err, tail) = invoke(&lambda, "mem", json!({"alloc_mb": 64})).await;
    assert_eq!(err, None);
    let used = report_field(&report_line(&tail), "Max Memory Used").expect("Max Memory Used");
    assert!((64.0..256.0).contains(&used), "a 64 MB allocation shows as {used} MB");
    // A smaller invocation still reports the environment's maximum so far, as Lambda does.
    let (_, _, tail) = invoke(&lambda, "mem", json!({})).await;
    let after = report_field(&report_line(&tail), "Max Memory Used").expect("Max Memory Used");
    assert!(after >= used, "{after} < {used}");

    let (payload, err, tail) = invoke(&lambda, "mem", json!({"alloc_mb": 400})).await;
    assert_eq!(err.as_deref(), Some("Unhandled"));
    assert_eq!(payload["errorType"], "Runtime.OutOfMemory");
    assert!(report_line(&tail).ends_with("Status: error\tError Type: Runtime.OutOfMemory"));
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_invokes_scale_out_and_idle_environments_are_reaped() {
    let server = Server::start_with(&["--idle-timeout", "2s"]);
    let lambda = server.lambda();
    create_echo(&lambda, "par", 128, 10).await;
    let n = 6;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let lambda = lambda.clone();
        tasks.push(tokio::spawn(async move { invoke(&lambda, "par", json!({"sleep_ms": 700})).await }));
    }
    let mut pids = std::collections::BTreeSet::new();
    for t in tasks {
        let (payload, err, _) = t.await.expect("task");
        assert_eq!(err, None);
        pids.insert(payload["instance"].as_str().expect("instance").to_string());
    }
    assert_eq!(pids.len(), n, "N concurrent invocations run in N environments");
    let live = count_runtime_processes(&pids);
    assert_eq!(live, n);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(count_runtime_processes(&pids), 0, "idle environments are reaped after --idle-timeout");
    let (payload, _, tail) = invoke(&lambda, "par", json!({})).await;
    assert_eq!(payload["count"], 1);
    assert!(report_line(&tail).contains("Init Duration"));
}

fn count_runtime_processes(instances: &std::collections::BTreeSet<String>) -> usize {
    instances.iter().filter(|instance| !host_processes_of(instance).is_empty()).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn environments_are_frozen_between_invocations() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "frozen", "python3.12", "python/background.py").await;
    let (first, err, _) = invoke(&lambda, "frozen", json!({})).await;
    assert_eq!(err, None, "{first}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (second, _, _) = invoke(&lambda, "frozen", json!({})).await;
    let idle_ticks = second["ticks"].as_i64().unwrap_or(0) - first["ticks"].as_i64().unwrap_or(0);
    // Unfrozen, the background thread would tick ~80 times in 800 ms.
    assert!(idle_ticks < 15, "background thread ran while idle: {idle_ticks} ticks");
}

#[tokio::test(flavor = "multi_thread")]
async fn billing_granularity_and_init_billing_follow_the_flags() {
    // Classic 100 ms rounding, init not billed (Lambda before August 2025).
    let server = Server::start_with(&["--billing-granularity-ms", "100", "--no-bill-init"]);
    let lambda = server.lambda();
    create_echo(&lambda, "classic", 128, 5).await;
    for _ in 0..3 {
        let (_, _, tail) = invoke(&lambda, "classic", json!({"sleep_ms": 20})).await;
        let report = report_line(&tail);
        let duration = report_field(&report, "Duration").expect("Duration");
        let billed = report_field(&report, "Billed Duration").expect("Billed Duration");
        assert_eq!(billed % 100.0, 0.0, "{report}");
        assert!(billed >= duration && billed - duration < 100.0, "{report}");
    }
    // Default: 1 ms rounding, and the cold start's init time is billed.
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "modern", 128, 5).await;
    let (_, _, tail) = invoke(&lambda, "modern", json!({})).await;
    let report = report_line(&tail);
    let duration = report_field(&report, "Duration").expect("Duration");
    let init = report_field(&report, "Init Duration").expect("Init Duration");
    let billed = report_field(&report, "Billed Duration").expect("Billed Duration");
    assert_eq!(billed, (duration + init).ceil().max(1.0), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_invocation_leaves_one_metering_record() {
    let mut server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "metered", 256, 5).await;
    let mut ids = Vec::new();
    for payload in [json!({}), json!({"alloc_mb": 32}), json!({"fail": "x"})] {
        let (p, _, tail) = invoke(&lambda, "metered", payload).await;
        let report = report_line(&tail);
        ids.push((p["request_id"].as_str().unwrap_or_default().to_string(), report));
    }
    // Stop the server so every queued write is on disk, then read the database directly.
    assert!(server.stop().success());
    let db = rusqlite::Connection::open(server.data_dir.join("kumo.db")).expect("open db");
    let mut stmt = db
        .prepare(
            "SELECT request_id, function, version, duration_us, billed_ms, memory_mb, max_memory_used_mb, \
             invocation_peak_mb, init_duration_us, cold, outcome FROM invocations ORDER BY id",
        )
        .expect("query");
    type Row = (String, String, String, i64, i64, i64, i64, i64, Option<i64>, bool, String);
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("collect");
    assert_eq!(rows.len(), 3);
    for (row, (request_id, report)) in rows.iter().zip(&ids) {
        if !request_id.is_empty() {
            assert_eq!(&row.0, request_id);
        }
        assert_eq!((row.1.as_str(), row.2.as_str(), row.5), ("metered", "$LATEST", 256));
        // The record and the REPORT line agree.
        assert_eq!(Some(row.4 as f64), report_field(report, "Billed Duration"), "{report}");
        assert_eq!(Some(row.6 as f64), report_field(report, "Max Memory Used"), "{report}");
    }
    assert!(rows[0].9 && rows[0].8.is_some(), "first invocation is cold with an init duration");
    assert!(!rows[1].9 && rows[1].8.is_none(), "second is warm");
    if cgroups_available(&server) {
        assert!(rows[1].7 >= 32, "the 32 MB invocation's own peak: {}", rows[1].7);
        assert!(rows[2].7 < rows[1].7, "peaks are per invocation: {} vs {}", rows[2].7, rows[1].7);
    }
    assert_eq!(rows[2].10, "error");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_environments_are_evicted_at_the_machine_cap() {
    let server = Server::start_with(&["--max-environments", "2"]);
    let lambda = server.lambda();
    let mut pids = Vec::new();
    for name in ["cap-a", "cap-b", "cap-c"] {
        create_echo(&lambda, name, 128, 5).await;
        let (payload, err, _) = invoke(&lambda, name, json!({})).await;
        assert_eq!(err, None);
        pids.push(payload["instance"].as_str().expect("instance").to_string());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alive: Vec<bool> =
        pids.iter().map(|p| count_runtime_processes(&[p.clone()].into_iter().collect()) == 1).collect();
    assert_eq!(alive, vec![false, true, true], "the longest-idle environment (cap-a) made room for cap-c");
    // cap-a still works: it cold-starts again.
    let (payload, _, tail) = invoke(&lambda, "cap-a", json!({})).await;
    assert_eq!(payload["count"], 1);
    assert!(report_line(&tail).contains("Init Duration"));
}

/// Environments stay warm for longer than tokio's blocking threads live (10 s
/// idle): a runtime must not die with the thread that happened to fork it.
#[tokio::test(flavor = "multi_thread")]
async fn warm_environments_survive_a_quiet_spell() {
    let server = Server::start();
    let lambda = server.lambda();
    create_echo(&lambda, "quiet", 128, 5).await;
    let (first, _, _) = invoke(&lambda, "quiet", json!({})).await;
    tokio::time::sleep(Duration::from_secs(13)).await;
    let (second, err, tail) = invoke(&lambda, "quiet", json!({})).await;
    assert_eq!(err, None, "{second}");
    assert_eq!(second["instance"], first["instance"], "same environment: {tail}");
    assert_eq!(second["count"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_cgroups_kumo_says_so_and_still_measures_memory() {
    let server = Server::start_with_env(&[], &[("KUMO_CGROUPS", "off")]);
    let banner = server.output.lock().expect("output").join("\n");
    assert!(banner.contains("WARNING: no writable memory cgroup"), "{banner}");
    let lambda = server.lambda();
    create_echo(&lambda, "nocg", 128, 5).await;
    let (_, err, tail) = invoke(&lambda, "nocg", json!({"alloc_mb": 40})).await;
    assert_eq!(err, None);
    let used = report_field(&report_line(&tail), "Max Memory Used").expect("Max Memory Used");
    assert!(used >= 40.0, "the runtime's own high-water mark is reported: {used} MB");
    // Freezing falls back to SIGSTOP of the process group, and thawing to SIGCONT.
    let (payload, err, _) = invoke(&lambda, "nocg", json!({})).await;
    assert_eq!((payload["count"].as_u64(), err), (Some(2), None));
    create_python(&lambda, "nocg-bg", "python3.12", "python/background.py").await;
    let (first, _, _) = invoke(&lambda, "nocg-bg", json!({})).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (second, _, _) = invoke(&lambda, "nocg-bg", json!({})).await;
    let idle_ticks = second["ticks"].as_i64().unwrap_or(0) - first["ticks"].as_i64().unwrap_or(0);
    assert!(idle_ticks < 15, "background thread ran while idle: {idle_ticks} ticks");
}

#[tokio::test(flavor = "multi_thread")]
async fn account_concurrency_limit_throttles_with_lambdas_reason() {
    let server = Server::start_with(&["--account-concurrency", "2"]);
    let lambda = server.lambda();
    create_echo(&lambda, "acct", 128, 10).await;
    let mut calls = Vec::new();
    for _ in 0..3 {
        let lambda = lambda.clone();
        calls.push(tokio::spawn(async move {
            lambda
                .invoke()
                .function_name("acct")
                .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"sleep_ms":1500}"#))
                .send()
                .await
        }));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let mut reasons = Vec::new();
    let mut ok = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => ok += 1,
            Err(e) => match e.into_service_error() {
                aws_sdk_lambda::operation::invoke::InvokeError::TooManyRequestsException(t) => {
                    reasons.push(t.reason().map(|r| r.as_str().to_string()));
                }
                other => panic!("unexpected error {other:?}"),
            },
        }
    }
    assert_eq!(ok, 2);
    assert_eq!(reasons, vec![Some("ConcurrentInvocationLimitExceeded".to_string())]);
}
