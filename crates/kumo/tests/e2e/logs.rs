//! CloudWatch Logs through real clients: group management and retention with
//! the AWS CLI 1.x, the cap on stored log bytes, and `aws logs tail --follow`
//! (AWS CLI v2, Debian's `awscli` package) following a function's log group.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{AwsCli, KillOnDrop, python_runtime};
use crate::harness::*;

/// CloudWatch Logs' group management with the AWS CLI: create, put events, retention
/// (enforced), filter patterns (terms and JSON), delete.
#[test]
fn aws_cli_manages_log_groups_and_retention() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("temp dir");
    let aws = AwsCli::new(&server, tmp.path());
    aws.run(&["logs", "create-log-group", "--log-group-name", "/app/orders"]).ok("create-log-group");
    let again = aws.run(&["logs", "create-log-group", "--log-group-name", "/app/orders"]);
    assert!(!again.success && again.stderr.contains("ResourceAlreadyExistsException"), "{}", again.stderr);
    aws.run(&["logs", "create-log-stream", "--log-group-name", "/app/orders", "--log-stream-name", "web"])
        .ok("create-log-stream");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let old = now - 3 * 86_400_000;
    let events = json!([
        {"timestamp": old, "message": "ancient ERROR line"},
        {"timestamp": now - 2000, "message": r#"{"level": "ERROR", "latency": 1500, "path": "/api/orders"}"#},
        {"timestamp": now - 1000, "message": r#"{"level": "INFO", "latency": 20, "path": "/health"}"#},
        {"timestamp": now, "message": "plain ERROR timed out"}
    ]);
    aws.run(&[
        "logs",
        "put-log-events",
        "--log-group-name",
        "/app/orders",
        "--log-stream-name",
        "web",
        "--log-events",
        &events.to_string(),
    ])
    .ok("put-log-events");
    let messages = |pattern: &str| -> Vec<String> {
        let out = aws
            .run(&["logs", "filter-log-events", "--log-group-name", "/app/orders", "--filter-pattern", pattern])
            .ok("filter-log-events")
            .json();
        out["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(messages("ERROR").len(), 3, "{:?}", messages("ERROR"));
    assert_eq!(messages(r#""timed out""#), ["plain ERROR timed out"]);
    assert_eq!(messages(r#"{ $.level = "ERROR" }"#).len(), 1, "{:?}", messages(r#"{ $.level = "ERROR" }"#));
    assert_eq!(messages(r#"{ $.latency > 1000 && $.path = "/api*" }"#).len(), 1);
    assert_eq!(messages("ERROR -ancient").len(), 2);

    // A one-day retention removes the three-day-old event, now and from then on.
    aws.run(&["logs", "put-retention-policy", "--log-group-name", "/app/orders", "--retention-in-days", "1"])
        .ok("put-retention-policy");
    assert_eq!(messages("ERROR").len(), 2, "{:?}", messages("ERROR"));
    let groups = aws.run(&["logs", "describe-log-groups", "--log-group-name-prefix", "/app/"]).ok("describe").json();
    assert_eq!(groups["logGroups"][0]["retentionInDays"], 1, "{groups}");
    let bad = aws.run(&["logs", "put-retention-policy", "--log-group-name", "/app/orders", "--retention-in-days", "2"]);
    assert!(!bad.success && bad.stderr.contains("InvalidParameterException"), "{}", bad.stderr);

    aws.run(&["logs", "delete-log-group", "--log-group-name", "/app/orders"]).ok("delete-log-group");
    let gone = aws.run(&["logs", "filter-log-events", "--log-group-name", "/app/orders"]);
    assert!(!gone.success && gone.stderr.contains("ResourceNotFoundException"), "{}", gone.stderr);
}

/// Stored bytes across all groups, as DescribeLogGroups reports them.
fn stored_bytes(aws: &AwsCli) -> u64 {
    let groups = aws.run(&["logs", "describe-log-groups"]).ok("describe-log-groups").json();
    groups["logGroups"].as_array().into_iter().flatten().filter_map(|g| g["storedBytes"].as_u64()).sum()
}

/// With `--log-max-bytes`, the oldest events of any group give way to new ones:
/// the total stays under the cap and the newest lines are kept.
#[test]
fn stored_logs_stay_under_the_size_cap() {
    let server = Server::start_with(&["--log-max-bytes", "64KiB"]);
    let tmp = tempfile::tempdir().expect("temp dir");
    let aws = AwsCli::new(&server, tmp.path());
    for group in ["/cap/a", "/cap/b"] {
        aws.run(&["logs", "create-log-group", "--log-group-name", group]).ok("create-log-group");
        aws.run(&["logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s"])
            .ok("create-log-stream");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    // 12 batches of 10 lines of ~1,000 bytes: about 120 KB offered against a 64 KiB cap.
    for batch in 0..12 {
        let group = if batch % 2 == 0 { "/cap/a" } else { "/cap/b" };
        let events: Vec<_> = (0..10)
            .map(|i| json!({"timestamp": now - 1000 + batch * 10 + i, "message": format!("batch-{batch:02} line-{i} {}", "x".repeat(980))}))
            .collect();
        aws.run(&[
            "logs",
            "put-log-events",
            "--log-group-name",
            group,
            "--log-stream-name",
            "s",
            "--log-events",
            &serde_json::Value::from(events).to_string(),
        ])
        .ok("put-log-events");
        assert!(stored_bytes(&aws) <= 64 * 1024, "batch {batch}: stored logs exceed the cap");
    }
    let total = stored_bytes(&aws);
    assert!(total > 40 * 1024, "the cap trims down to nine tenths, not to nothing: {total} bytes left");
    let lines = |group: &str| -> Vec<String> {
        let out = aws.run(&["logs", "filter-log-events", "--log-group-name", group]).ok("filter-log-events").json();
        out["events"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).map(String::from).collect()
    };
    let b = lines("/cap/b");
    assert!(b.iter().any(|m| m.starts_with("batch-11 line-9 ")), "the newest line is kept");
    let a = lines("/cap/a");
    assert!(!a.iter().any(|m| m.starts_with("batch-00 ")), "the oldest batch is gone: {:?}", &a[..a.len().min(3)]);
    let kept: usize = a.iter().chain(&b).map(|m| m.len()).sum();
    assert_eq!(kept as u64, total, "storedBytes counts exactly the bytes kept");
}

/// AWS CLI v2 (`aws logs tail` does not exist in 1.x): Debian's `awscli` package
/// installs it as /usr/bin/aws, which `.ci/run` provides.
fn aws_cli_v2() -> &'static str {
    let path = "/usr/bin/aws";
    let version = Command::new(path).arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    match version {
        Ok(v) if v.starts_with("aws-cli/2") => path,
        other => panic!(
            "AWS CLI v2 is needed at {path} for `aws logs tail` (apt-get install awscli; .ci/run does); found {other:?}"
        ),
    }
}

/// `aws logs tail --follow` shows a new invocation's lines. The CLI polls
/// FilterLogEvents and sleeps 5 s after each answer without a nextToken (its
/// `_TIME_TO_SLEEP`), so that sleep bounds what it can show; Kumo's side, the
/// lines being readable through FilterLogEvents, takes well under a second.
#[test]
fn aws_logs_tail_follows_new_invocations() {
    let server = Server::start();
    let runtime_name = python_runtime(&server);
    let tmp = tempfile::tempdir().expect("temp dir");
    let aws = AwsCli::new(&server, tmp.path());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let lambda = server.lambda();
    rt.block_on(create_python(&lambda, "tailme", &runtime_name, "python/echo.py"));
    let first = rt.block_on(invoke(&lambda, "tailme", json!({"n": 1})));
    assert!(first.1.is_none(), "first invoke failed: {first:?}");

    let mut tail = Command::new(aws_cli_v2());
    tail.args(["logs", "tail", "/aws/lambda/tailme", "--follow", "--since", "5m", "--format", "short"]);
    let probe = aws.cmd(&[]);
    for (key, value) in probe.get_envs() {
        match value {
            Some(v) => tail.env(key, v),
            None => tail.env_remove(key),
        };
    }
    tail.args(["--endpoint-url", &server.endpoint]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = KillOnDrop(tail.spawn().expect("start aws logs tail"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str, within: Duration| -> Option<Instant> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok((at, line)) if line.contains(needle) => return Some(at),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };
    let first_id = first.0["request_id"].as_str().expect("request id").to_string();
    assert!(
        wait_for(&format!("REPORT RequestId: {first_id}"), Duration::from_secs(30)).is_some(),
        "tail shows history"
    );

    let sent = Instant::now();
    let second = rt.block_on(invoke(&lambda, "tailme", json!({"n": 2})));
    let returned = Instant::now();
    let second_id = second.0["request_id"].as_str().expect("request id").to_string();
    // Kumo's side: the lines are readable through FilterLogEvents within a second.
    let readable = rt.block_on(async {
        loop {
            let lines = crate::invoke::filter_logs(&server, "/aws/lambda/tailme", &second_id).await;
            let has_report = lines.iter().any(|m| m.starts_with("REPORT "));
            if has_report {
                break returned.elapsed();
            }
            assert!(
                returned.elapsed() < Duration::from_secs(1),
                "REPORT not readable within 1 s of the invoke returning"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    // The CLI's side: its next poll, at most its 5 s sleep later.
    let shown = wait_for(&format!("REPORT RequestId: {second_id}"), Duration::from_secs(8))
        .expect("aws logs tail --follow shows the new invocation's REPORT within its 5 s poll");
    eprintln!(
        "FilterLogEvents had the REPORT {} ms after the invoke returned ;          aws logs tail --follow printed it {} ms after the invoke was sent",
        readable.as_millis(),
        shown.duration_since(sent).as_millis()
    );
}
