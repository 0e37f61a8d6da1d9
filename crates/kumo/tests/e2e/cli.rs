//! Real command-line clients: the AWS CLI 1.x README walkthrough, boto3, and
//! Kumo's own `kumo deploy / invoke / ls / logs / rm`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::*;

/// The Python runtime to deploy with: python3.12 (the README's) when this
/// machine has it, otherwise the newest python3.x the server's banner lists.
/// The banner precedes the "listening" line, so it is complete once the server is up.
pub fn python_runtime(server: &Server) -> String {
    let lines = server.output.lock().expect("output lock").clone();
    if lines.iter().any(|l| l.contains("runtime python3.12 ")) {
        return "python3.12".to_string();
    }
    lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("runtime python3."))
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u32>().ok())
        .max()
        .map(|minor| format!("python3.{minor}"))
        .unwrap_or_else(|| {
            panic!("the server found no python3.x runtime on this machine; banner:\n{}", lines.join("\n"))
        })
}

/// What a finished subprocess printed.
pub(crate) struct Ran {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Ran {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    pub(crate) fn ok(self, what: &str) -> Ran {
        assert!(self.success, "{what} failed\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs a command to completion with a deadline (a hung client fails the test
/// instead of hanging it). `what` names the command in failure messages.
pub(crate) fn run(cmd: &mut Command, what: &str) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        success: status.success(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// Kills a spawned child when the test ends, even if it panics.
pub(crate) struct KillOnDrop(pub(crate) Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ----- AWS CLI -----

/// The AWS CLI against Kumo, isolated from any real AWS configuration on the machine.
pub(crate) struct AwsCli {
    endpoint: String,
    dir: std::path::PathBuf,
    /// AWS CLI v2 needs `--cli-binary-format raw-in-base64-out` to send a raw payload; v1 has no such flag.
    v2: bool,
}

impl AwsCli {
    pub(crate) fn new(server: &Server, dir: &Path) -> AwsCli {
        let version = match Command::new("aws").arg("--version").output() {
            Ok(out) => format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
            Err(e) => panic!(
                "the AWS CLI (`aws`, version 1.x) is not on PATH ({e}); CI installs it with `python3 -m pip install awscli`"
            ),
        };
        assert!(version.starts_with("aws-cli/"), "unexpected `aws --version` output: {version}");
        AwsCli { endpoint: server.endpoint.clone(), dir: dir.to_path_buf(), v2: version.starts_with("aws-cli/2") }
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("aws");
        cmd.args(args)
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .current_dir(&self.dir)
            .env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_OUTPUT", "json")
            // Never read the developer's ~/.aws, never go through a proxy: traffic stays on 127.0.0.1.
            .env("AWS_CONFIG_FILE", self.dir.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.join("no-aws-credentials"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN");
        cmd
    }

    pub(crate) fn run(&self, args: &[&str]) -> Ran {
        run(&mut self.cmd(args), &format!("aws {}", args.join(" ")))
    }
}

/// The role the README's walkthrough creates and uses.
const README_ROLE: &str = "arn:aws:iam::000000000000:role/lambda-role";

/// The README walkthrough, step by step, with the real AWS CLI.
#[test]
fn aws_cli_readme_walkthrough() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let tmp = tempfile::tempdir().expect("temp dir");
    let zip = fixture_zip("python/echo.py", "app.py");
    std::fs::write(tmp.path().join("fn.zip"), &zip).expect("write fn.zip");
    let aws = AwsCli::new(&server, tmp.path());

    // The README's first step: an execution role Lambda may assume.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = aws
        .run(&["iam", "create-role", "--role-name", "lambda-role", "--assume-role-policy-document", trust])
        .ok("aws iam create-role")
        .json();
    assert_eq!(role["Role"]["Arn"], README_ROLE);

    // create-function prints the new FunctionConfiguration.
    let created = aws
        .run(&[
            "lambda",
            "create-function",
            "--function-name",
            "hello",
            "--runtime",
            &runtime,
            "--handler",
            "app.handler",
            "--role",
            README_ROLE,
            "--zip-file",
            "fileb://fn.zip",
        ])
        .ok("aws lambda create-function")
        .json();
    assert_eq!(created["FunctionName"], "hello");
    assert_eq!(created["FunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:hello");
    assert_eq!(created["Runtime"], runtime.as_str());
    assert_eq!(created["Handler"], "app.handler");
    assert_eq!(created["Role"], README_ROLE);
    assert_eq!(created["CodeSize"], zip.len());
    assert_eq!(created["Version"], "$LATEST");

    // invoke writes the handler's result to out.json and prints StatusCode and the log tail.
    let mut invoke_args = vec!["lambda", "invoke", "--function-name", "hello", "--payload", r#"{"x":1}"#];
    if aws.v2 {
        invoke_args.extend(["--cli-binary-format", "raw-in-base64-out"]);
    }
    invoke_args.extend(["--log-type", "Tail", "out.json"]);
    let invoked = aws.run(&invoke_args).ok("aws lambda invoke").json();
    assert_eq!(invoked["StatusCode"], 200, "{invoked}");
    assert_eq!(invoked["ExecutedVersion"], "$LATEST", "{invoked}");
    assert!(invoked.get("FunctionError").is_none(), "{invoked}");
    let out: Value = serde_json::from_slice(&std::fs::read(tmp.path().join("out.json")).expect("out.json written"))
        .expect("out.json is JSON");
    assert_eq!(out["event"], json!({"x": 1}), "the handler got the payload: {out}");
    assert_eq!(out["function_name"], "hello");
    let request_id = out["request_id"].as_str().expect("request id").to_string();
    let tail = base64::engine::general_purpose::STANDARD
        .decode(invoked["LogResult"].as_str().expect("LogResult"))
        .expect("LogResult is base64");
    let tail = String::from_utf8_lossy(&tail);
    assert!(tail.contains(&format!("START RequestId: {request_id}")), "{tail}");
    assert!(tail.contains(&format!("handling {request_id}")), "the function's own output: {tail}");
    assert!(tail.contains(&format!("END RequestId: {request_id}")), "{tail}");
    assert!(tail.contains(&format!("REPORT RequestId: {request_id}")), "{tail}");

    let listed = aws.run(&["lambda", "list-functions"]).ok("aws lambda list-functions").json();
    let names: Vec<&str> =
        listed["Functions"].as_array().expect("Functions").iter().filter_map(|f| f["FunctionName"].as_str()).collect();
    assert_eq!(names, vec!["hello"]);

    let got = aws.run(&["lambda", "get-function", "--function-name", "hello"]).ok("aws lambda get-function").json();
    assert_eq!(got["Configuration"]["FunctionName"], "hello");
    assert_eq!(got["Configuration"]["State"], "Active");
    assert_eq!(got["Code"]["RepositoryType"], "S3");

    // The invocation's log events reach the function's log group (the store may lag a moment).
    let deadline = Instant::now() + Duration::from_secs(15);
    let messages = loop {
        let logs = aws
            .run(&["logs", "filter-log-events", "--log-group-name", "/aws/lambda/hello"])
            .ok("aws logs filter-log-events")
            .json();
        let messages: Vec<String> = logs["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect();
        if messages.iter().any(|m| m.starts_with(&format!("REPORT RequestId: {request_id}"))) {
            break messages;
        }
        assert!(Instant::now() < deadline, "the REPORT line never reached the log group: {messages:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(messages.iter().any(|m| m.starts_with(&format!("START RequestId: {request_id}"))), "{messages:?}");
    assert!(messages.iter().any(|m| m.contains(&format!("handling {request_id}"))), "{messages:?}");

    aws.run(&["lambda", "delete-function", "--function-name", "hello"]).ok("aws lambda delete-function");
    let gone = aws.run(&["lambda", "get-function", "--function-name", "hello"]);
    assert!(!gone.success, "get-function after delete must fail: {}", gone.stdout);
    assert!(gone.stderr.contains("ResourceNotFoundException"), "{}", gone.stderr);
    let listed = aws.run(&["lambda", "list-functions"]).ok("aws lambda list-functions").json();
    assert_eq!(listed["Functions"], json!([]));
}

// ----- boto3 -----

const BOTO3_SCRIPT: &str = r#"
import json, sys
import boto3
client = boto3.client(
    "lambda",
    endpoint_url=sys.argv[1],
    region_name="us-east-1",
    aws_access_key_id=sys.argv[2],
    aws_secret_access_key=sys.argv[3],
)
resp = client.invoke(FunctionName="hello", Payload=json.dumps({"from": "boto3"}))
print(json.dumps({
    "status": resp["StatusCode"],
    "error": resp.get("FunctionError"),
    "version": resp.get("ExecutedVersion"),
    "payload": json.loads(resp["Payload"].read()),
}))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn boto3_invokes_a_function() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    create_python(&server.lambda(), "hello", &runtime, "python/echo.py").await;
    let endpoint = server.endpoint.clone();
    // Subprocesses block: run them off the async runtime. A missing boto3 is
    // reported outside the blocking task so its message reaches the test output as is.
    let ran = tokio::task::spawn_blocking(move || {
        let probe = Command::new("python3").args(["-c", "import boto3"]).output();
        if !probe.as_ref().is_ok_and(|out| out.status.success()) {
            return Err(format!(
                "python3 with boto3 is needed for this test ({probe:?}); CI installs it with `python3 -m pip install boto3`"
            ));
        }
        Ok(run(
            Command::new("python3")
                .args(["-c", BOTO3_SCRIPT, &endpoint, ROOT_KEY_ID, ROOT_SECRET])
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
                .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost")
                .env_remove("AWS_PROFILE"),
            "python3 boto3 script",
        ))
    })
    .await
    .expect("boto3 task")
    .unwrap_or_else(|missing| panic!("{missing}"))
    .ok("the boto3 script");
    let out = ran.json();
    assert_eq!(out["status"], 200, "{out}");
    assert_eq!(out["error"], Value::Null, "{out}");
    assert_eq!(out["version"], "$LATEST", "{out}");
    assert_eq!(out["payload"]["event"], json!({"from": "boto3"}), "{out}");
    assert_eq!(out["payload"]["function_name"], "hello", "{out}");
}

// ----- the kumo CLI -----

fn kumo(server: &Server, args: &[&str]) -> Ran {
    run(server.cli().args(args), &format!("kumo {}", args.join(" ")))
}

/// A handler that says which deployment it is and prints a line we can look for in the logs.
fn app_py(version: u32) -> String {
    format!(
        "def handler(event, context):\n    print(\"v{version} handling\", context.aws_request_id, event.get(\"marker\", \"\"))\n    return {{\"version\": {version}, \"x\": event.get(\"x\")}}\n"
    )
}

/// Runs `kumo logs` until its output contains every needle (log events may reach the store a moment late).
fn kumo_logs_until(server: &Server, args: &[&str], needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = kumo(server, args).ok("kumo logs").stdout;
        if needles.iter().all(|n| out.contains(n)) {
            return out;
        }
        assert!(Instant::now() < deadline, "`kumo {}` never showed {needles:?}:\n{out}", args.join(" "));
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn kumo_cli_deploy_invoke_ls_logs_rm() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let dir = tempfile::tempdir().expect("temp dir");
    let app = dir.path().join("app.py");
    let dir_arg = dir.path().to_str().expect("utf-8 temp path");
    let deploy = ["deploy", dir_arg, "--name", "hello2", "--runtime", runtime.as_str(), "--handler", "app.handler"];

    // First deploy creates the function from the folder.
    std::fs::write(&app, app_py(1)).expect("write app.py");
    let created = kumo(&server, &deploy).ok("kumo deploy (create)");
    // Without --role, deploy makes (once) and uses Kumo's default execution role.
    assert!(created.stdout.starts_with("created the execution role kumo-lambda-default"), "{}", created.stdout);
    assert!(created.stdout.lines().any(|l| l.starts_with("created hello2 ")), "{}", created.stdout);
    let ran = kumo(&server, &["invoke", "hello2", r#"{"x":1}"#]).ok("kumo invoke");
    let result: Value = serde_json::from_str(ran.stdout.trim()).expect("kumo invoke prints the result as JSON");
    assert_eq!(result, json!({"version": 1, "x": 1}));
    assert!(ran.stderr.contains("REPORT RequestId: "), "the REPORT line goes to stderr: {}", ran.stderr);
    assert!(!ran.stdout.contains("REPORT"), "stdout holds only the result: {}", ran.stdout);

    // Deploying again with changed code updates it in place.
    std::fs::write(&app, app_py(2)).expect("rewrite app.py");
    let updated = kumo(&server, &deploy).ok("kumo deploy (update)");
    assert!(updated.stdout.starts_with("updated hello2 "), "{}", updated.stdout);
    let ran = kumo(&server, &["invoke", "hello2", r#"{"x":1}"#]).ok("kumo invoke after update");
    let result: Value = serde_json::from_str(ran.stdout.trim()).expect("result JSON");
    assert_eq!(result, json!({"version": 2, "x": 1}), "the new code runs after the second deploy");

    let ls = kumo(&server, &["ls"]).ok("kumo ls").stdout;
    let row = ls.lines().find(|l| l.split_whitespace().next() == Some("hello2"));
    assert!(row.is_some_and(|r| r.contains(runtime.as_str())), "kumo ls lists hello2 with its runtime:\n{ls}");

    let logs =
        kumo_logs_until(&server, &["logs", "hello2"], &["START RequestId: ", "REPORT RequestId: ", "v2 handling"]);
    assert!(logs.contains("v1 handling"), "both deployments' output is in the log group:\n{logs}");
    kumo_logs_until(
        &server,
        &["logs", "hello2", "--since", "10m"],
        &["START RequestId: ", "REPORT RequestId: ", "v2 handling"],
    );

    // --follow prints what an invocation made after it started.
    let mut follow = KillOnDrop(
        server
            .cli()
            .args(["logs", "hello2", "--follow"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kumo logs --follow"),
    );
    let (tx, rx) = mpsc::channel();
    let stdout = follow.0.stdout.take().expect("follow stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // It first prints the existing events: once one arrives, it is running and polling.
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("kumo logs --follow printed the existing events");
    assert!(!first.is_empty());
    let marker = format!("follow-marker-{}", std::process::id());
    kumo(&server, &["invoke", "hello2", &json!({"marker": marker}).to_string()]).ok("kumo invoke while following");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(&marker) => {
                assert!(line.contains("v2 handling"), "{line}");
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("kumo logs --follow never printed the new invocation's line ({e})"),
        }
    }
    drop(follow);

    // rm deletes it: ls no longer lists it, invoking it fails.
    let rm = kumo(&server, &["rm", "hello2"]).ok("kumo rm");
    assert!(rm.stdout.contains("deleted hello2"), "{}", rm.stdout);
    let ls = kumo(&server, &["ls"]).ok("kumo ls after rm").stdout;
    assert!(!ls.lines().any(|l| l.split_whitespace().next() == Some("hello2")), "{ls}");
    let after = kumo(&server, &["invoke", "hello2", "{}"]);
    assert!(!after.success, "invoking a deleted function exits non-zero: {}", after.stdout);
    assert!(after.stderr.contains("ResourceNotFoundException"), "{}", after.stderr);
    assert!(
        after.stderr.contains("Function not found: arn:aws:lambda:us-east-1:000000000000:function:hello2"),
        "{}",
        after.stderr
    );
}

/// The README's S3 walkthrough with the real AWS CLI: `aws s3` and `aws s3api`,
/// then an upload that triggers the README's function.
#[test]
fn aws_cli_s3_walkthrough() {
    let server = Server::start();
    let runtime = python_runtime(&server);
    let tmp = tempfile::tempdir().expect("temp dir");
    let app = "def handler(event, context):\n    print(\"got\", event)\n    return {\"hello\": event.get(\"x\")}\n";
    std::fs::write(tmp.path().join("fn.zip"), zip_of(&[("app.py", app.as_bytes(), 0o644)])).expect("fn.zip");
    std::fs::write(tmp.path().join("cat.jpg"), b"not really a cat").expect("cat.jpg");
    std::fs::create_dir_all(tmp.path().join("pictures/2026")).expect("pictures");
    std::fs::write(tmp.path().join("pictures/a.png"), b"a").expect("a.png");
    std::fs::write(tmp.path().join("pictures/2026/b c.png"), b"bc").expect("b c.png");
    let aws = AwsCli::new(&server, tmp.path());
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    aws.run(&["iam", "create-role", "--role-name", "lambda-role", "--assume-role-policy-document", trust])
        .ok("aws iam create-role");
    aws.run(&[
        "lambda",
        "create-function",
        "--function-name",
        "hello",
        "--runtime",
        &runtime,
        "--handler",
        "app.handler",
        "--role",
        README_ROLE,
        "--zip-file",
        "fileb://fn.zip",
    ])
    .ok("aws lambda create-function");

    aws.run(&["s3", "mb", "s3://photos"]).ok("aws s3 mb");
    aws.run(&["s3", "cp", "cat.jpg", "s3://photos/uploads/cat.jpg"]).ok("aws s3 cp");
    aws.run(&["s3", "sync", "./pictures", "s3://photos/uploads/"]).ok("aws s3 sync");
    let listed = aws.run(&["s3", "ls", "s3://photos", "--recursive"]).ok("aws s3 ls");
    for key in ["uploads/cat.jpg", "uploads/a.png", "uploads/2026/b c.png"] {
        assert!(listed.stdout.contains(key), "{key} in:\n{}", listed.stdout);
    }
    let again = aws.run(&["s3", "sync", "./pictures", "s3://photos/uploads/"]).ok("second sync");
    assert!(!again.stdout.contains("upload:"), "nothing changed, nothing uploaded: {}", again.stdout);
    let copied = aws.run(&["s3", "cp", "s3://photos/uploads/2026/b c.png", "back.png"]).ok("aws s3 cp down");
    assert!(copied.success);
    assert_eq!(std::fs::read(tmp.path().join("back.png")).expect("back.png"), b"bc");

    aws.run(&[
        "lambda",
        "add-permission",
        "--function-name",
        "hello",
        "--statement-id",
        "s3",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "s3.amazonaws.com",
        "--source-arn",
        "arn:aws:s3:::photos",
    ])
    .ok("aws lambda add-permission");
    let config = r#"{"LambdaFunctionConfigurations":[{"LambdaFunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:hello","Events":["s3:ObjectCreated:*"],"Filter":{"Key":{"FilterRules":[{"Name":"prefix","Value":"uploads/"}]}}}]}"#;
    aws.run(&[
        "s3api",
        "put-bucket-notification-configuration",
        "--bucket",
        "photos",
        "--notification-configuration",
        config,
    ])
    .ok("aws s3api put-bucket-notification-configuration");
    aws.run(&["s3", "cp", "cat.jpg", "s3://photos/uploads/cat2.jpg"]).ok("triggering upload");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = aws
            .run(&[
                "logs",
                "filter-log-events",
                "--log-group-name",
                "/aws/lambda/hello",
                "--filter-pattern",
                "ObjectCreated",
            ])
            .ok("aws logs filter-log-events")
            .json();
        let messages: Vec<&str> =
            found["events"].as_array().into_iter().flatten().filter_map(|e| e["message"].as_str()).collect();
        if let Some(m) = messages.iter().find(|m| m.contains("uploads/cat2.jpg")) {
            assert!(m.contains("'eventName': 'ObjectCreated:Put'") && m.contains("'eventSource': 'aws:s3'"), "{m}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the upload did not trigger hello: {messages:?}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    aws.run(&["s3", "rm", "s3://photos", "--recursive"]).ok("aws s3 rm --recursive");
    aws.run(&["s3", "rb", "s3://photos"]).ok("aws s3 rb");
}

// ----- costs -----

/// A price book without a free tier and with round rates, so every invocation
/// costs something measurable: $0.10 per GB-s and $0.000002 per request.
const TEST_PRICES: &str = r#"{"request_rate": 20000, "x86_tiers": [{"up_to_gb_s": null, "rate": 1000000000}], "arm_tiers": [{"up_to_gb_s": null, "rate": 1000000000}], "free_requests": 0, "free_gb_s": 0}"#;

/// `kumo cost --json` against a sum recomputed from the REPORT lines the AWS CLI reads back.
#[test]
fn kumo_cost_reconciles_with_the_report_lines() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let prices = tmp.path().join("prices.json");
    std::fs::write(&prices, TEST_PRICES).expect("price book");
    let server = Server::start_with(&["--price-book", prices.to_str().expect("path")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let lambda = server.lambda();
        create_echo(&lambda, "small", 128, 5).await;
        create_echo(&lambda, "large", 1024, 5).await;
        for i in 0..30 {
            invoke(&lambda, if i % 3 == 0 { "large" } else { "small" }, json!({"sleep_ms": i % 7})).await;
        }
        // A crash destroys the environment: the next invoke is a cold start "after-crash".
        invoke(&lambda, "small", json!({"exit": 3})).await;
        invoke(&lambda, "small", json!({})).await;
    });
    let last = kumo(&server, &["invoke", "small", r#"{"x":1}"#, "--cost"]).ok("kumo invoke --cost");
    assert!(last.stderr.lines().any(|l| l.starts_with("COST ") && l.contains(" USD")), "{}", last.stderr);

    let report = kumo(&server, &["cost", "--json"]).ok("kumo cost --json").json();
    let aws = AwsCli::new(&server, tmp.path());
    let mut total_units: u128 = 0;
    for (name, memory) in [("small", 128u128), ("large", 1024u128)] {
        let events = aws
            .run(&[
                "logs",
                "filter-log-events",
                "--log-group-name",
                &format!("/aws/lambda/{name}"),
                "--filter-pattern",
                "REPORT",
            ])
            .ok("aws logs filter-log-events")
            .json();
        let billed: Vec<u128> = events["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["message"].as_str())
            .filter(|m| m.starts_with("REPORT "))
            .filter_map(|m| m.split("Billed Duration: ").nth(1)?.split(" ms").next()?.parse().ok())
            .collect();
        let row = &report["functions"][name];
        assert_eq!(row["requests"], billed.len(), "{name}: {row}");
        // Independently: MB-ms × $0.10/GB-s + requests × $0.000002, in 1e-10 USD / 1,024,000 units.
        let mb_ms: u128 = billed.iter().map(|ms| ms * memory).sum();
        let units = mb_ms * 1_000_000_000 + billed.len() as u128 * 20_000 * 1_024_000;
        assert_eq!(row["billed_mb_ms"].as_str().and_then(|v| v.parse::<u128>().ok()), Some(mb_ms), "{name}: {row}");
        assert_eq!(row["cost_units"].as_str().and_then(|v| v.parse::<u128>().ok()), Some(units), "{name}: {row}");
        let micro = (units + 5_120_000_000) / 10_240_000_000;
        assert_eq!(row["cost_micro_usd"].as_u64().map(u128::from), Some(micro), "{name}: {row}");
        total_units += units;
    }
    assert_eq!(report["totals"]["cost_units"].as_str().and_then(|v| v.parse::<u128>().ok()), Some(total_units));
    let table = kumo(&server, &["cost"]).ok("kumo cost");
    assert!(
        table.stdout.contains("TOTAL") && table.stdout.contains("small") && table.stdout.contains("large"),
        "{}",
        table.stdout
    );
    let stats = kumo(&server, &["stats"]).ok("kumo stats");
    assert!(stats.stdout.contains("small") && stats.stdout.contains("P99"), "{}", stats.stdout);
    let small = stats.stdout.lines().find(|l| l.starts_with("small")).unwrap_or_default();
    assert!(small.contains("after-crash 1") && small.contains("first 1"), "cold-start causes: {}", stats.stdout);

    // The same numbers as Prometheus metrics.
    let metrics = runtime.block_on(async {
        let resp = server.send(server.http().get(format!("{}/_kumo/metrics", server.endpoint))).await.expect("metrics");
        resp.text().await.expect("text")
    });
    let small_requests = report["functions"]["small"]["requests"].as_u64().unwrap_or(0);
    for needle in [
        format!("kumo_invocations_total{{function=\"small\"}} {small_requests}"),
        "kumo_cold_starts_total{function=\"large\"} 1".to_string(),
        "kumo_duration_seconds_bucket{function=\"small\",le=\"+Inf\"}".to_string(),
        "kumo_cost_usd{function=\"large\"}".to_string(),
        "kumo_warm_environments".to_string(),
    ] {
        assert!(metrics.contains(&needle), "{needle} in:\n{metrics}");
    }
}

/// Budgets: alerts at 50 and 100 % reach a function exactly once each; a
/// throttling budget stops invocations at its limit and lets them go once raised.
#[test]
fn budgets_alert_once_per_threshold_and_throttle_at_the_limit() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let prices = tmp.path().join("prices.json");
    // Only requests cost: $0.10 each, so spend is exact and independent of timing.
    std::fs::write(&prices, r#"{"request_rate": 1000000000, "x86_tiers": [{"up_to_gb_s": null, "rate": 0}], "arm_tiers": [{"up_to_gb_s": null, "rate": 0}], "free_requests": 0, "free_gb_s": 0}"#)
        .expect("price book");
    let data = tmp.path().join("data");
    let args = ["--price-book", prices.to_str().expect("path")];
    let mut server = Server::start_in(&data, &args);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let lambda = server.lambda();
        create_echo(&lambda, "worker", 128, 5).await;
        create_python(&lambda, "alerts", "python3.12", "python/record_sink.py").await;
    });
    kumo(
        &server,
        &[
            "budget",
            "create",
            "watch",
            "--limit-usd",
            "1",
            "--function",
            "worker",
            "--alert-at",
            "50,100",
            "--notify",
            "function:alerts",
        ],
    )
    .ok("kumo budget create watch");
    kumo(&server, &["budget", "create", "cap", "--limit-usd", "1.5", "--function", "worker", "--action", "throttle"])
        .ok("kumo budget create cap");
    for i in 0..15 {
        kumo(&server, &["invoke", "worker", &format!(r#"{{"i":{i}}}"#)]).ok("invoke under the cap");
    }
    // The 16th would spend past $1.50: refused with 429 and the budget's name.
    let refused = run(server.cli().args(["invoke", "worker", "{}"]), "invoke over the cap");
    assert!(!refused.success, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("TooManyRequestsException") && refused.stderr.contains("cap"),
        "{}",
        refused.stderr
    );
    let shown = kumo(&server, &["budget", "show", "cap"]).ok("kumo budget show");
    assert!(shown.stdout.contains("THROTTLING"), "{}", shown.stdout);
    let metrics = tokio::runtime::Runtime::new().expect("runtime").block_on(async {
        let resp = server.send(server.http().get(format!("{}/_kumo/metrics", server.endpoint))).await;
        resp.expect("metrics").text().await.expect("metrics text")
    });
    assert!(metrics.contains("kumo_budget_spend_usd{budget=\"cap\"} 1.500000\n"), "{metrics}");
    assert!(metrics.contains("kumo_budget_limit_usd{budget=\"cap\"} 1.500000\n"), "{metrics}");
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let (year, month) = kumo_core::time::month_of(now_ms);
    let forecast = metrics.lines().find_map(|l| l.strip_prefix("kumo_budget_forecast_usd{budget=\"cap\"} "));
    if now_ms - kumo_core::time::month_start_ms(year, month) > 3_600_000 {
        let projected: f64 = forecast.expect("a forecast after the month's first hour").parse().expect("number");
        assert!(projected >= 1.5, "the month-end projection is at least the spend so far: {projected}");
    }

    // Exactly two alerts (50 % and 100 %), delivered to the function as events.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let records = loop {
        let logs = kumo(&server, &["logs", "alerts"]).ok("kumo logs alerts");
        let records: Vec<String> = logs.stdout.lines().filter(|l| l.contains("RECORD ")).map(str::to_string).collect();
        if records.len() >= 2 || std::time::Instant::now() > deadline {
            break records;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records[0].contains("\"threshold_percent\": 50") && records[1].contains("\"threshold_percent\": 100"),
        "{records:?}"
    );
    assert!(records.iter().all(|r| r.contains("\"budget\": \"watch\"")), "{records:?}");

    // Budgets and the throttle survive a restart; raising the cap lets invocations go.
    server.stop();
    let server = Server::start_in(&data, &args);
    let refused = run(server.cli().args(["invoke", "worker", "{}"]), "invoke over the cap after a restart");
    assert!(!refused.success && refused.stderr.contains("cap"), "{}", refused.stderr);
    kumo(&server, &["budget", "create", "cap", "--limit-usd", "3", "--function", "worker", "--action", "throttle"])
        .ok("raise the cap");
    kumo(&server, &["invoke", "worker", "{}"]).ok("invoke after raising the cap");
    let listed = kumo(&server, &["budget", "ls"]).ok("kumo budget ls");
    assert!(listed.stdout.contains("watch") && listed.stdout.contains("cap"), "{}", listed.stdout);
    kumo(&server, &["budget", "rm", "watch"]).ok("kumo budget rm");
}

/// A budget alert reaches a webhook (a plain HTTP receiver on loopback).
#[test]
fn budget_alerts_reach_a_webhook() {
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").expect("receiver");
    let url = format!("http://{}/hooks/budget", receiver.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in receiver.incoming().map_while(Result::ok) {
            let mut stream = stream;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the headers, then as much body as Content-Length says.
            while let Ok(n) = stream.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        let _ = tx.send((head.to_string(), body.to_string()));
                        break;
                    }
                }
            }
            use std::io::Write as _;
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let tmp = tempfile::tempdir().expect("temp dir");
    let prices = tmp.path().join("prices.json");
    std::fs::write(&prices, r#"{"request_rate": 1000000000, "x86_tiers": [{"up_to_gb_s": null, "rate": 0}], "arm_tiers": [{"up_to_gb_s": null, "rate": 0}], "free_requests": 0, "free_gb_s": 0}"#)
        .expect("price book");
    let server = Server::start_with(&["--price-book", prices.to_str().expect("path")]);
    tokio::runtime::Runtime::new().expect("runtime").block_on(create_echo(&server.lambda(), "paid", 128, 5));
    let notify = format!("webhook:{url}");
    kumo(&server, &["budget", "create", "hooked", "--limit-usd", "0.2", "--alert-at", "100", "--notify", &notify])
        .ok("kumo budget create");
    kumo(&server, &["invoke", "paid", "{}"]).ok("first invoke");
    kumo(&server, &["invoke", "paid", "{}"]).ok("second invoke");
    let (head, body) = rx.recv_timeout(Duration::from_secs(30)).expect("the webhook got no alert");
    assert!(head.starts_with("POST /hooks/budget"), "{head}");
    let alert: Value = serde_json::from_str(&body).expect("alert JSON");
    assert_eq!(alert["budget"], "hooked");
    assert_eq!(alert["threshold_percent"], 100);
    assert_eq!(alert["actual_micro_usd"], 200_000);
    assert_eq!(alert["source"], "kumo.budget");
}
