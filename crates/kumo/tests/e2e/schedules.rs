//! EventBridge schedules through the real AWS CLI: `rate()` rules fire on
//! time (with `--schedule-minute` making a minute short) with EventBridge's
//! scheduled event or the target's Input, never twice for one tick; disabled
//! rules do not fire; a schedule missed while Kumo was down fires once.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use crate::cli::python_runtime;
use crate::harness::*;
use crate::invoke::filter_logs;

const ACCOUNT: &str = "000000000000";

/// The AWS CLI 1.x against one server, isolated from any real AWS configuration.
struct Aws {
    endpoint: String,
    dir: tempfile::TempDir,
}

/// A finished `aws` command.
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert!(self.ok, "aws failed:\n{}\n{}", self.stdout, self.stderr);
        if self.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The error a failed command printed: `An error occurred (Code) when calling ...: message`.
    fn error(&self) -> String {
        assert!(!self.ok, "expected a failure, got:\n{}", self.stdout);
        self.stderr.trim().to_string()
    }
}

impl Aws {
    fn new(server: &Server) -> Aws {
        Aws { endpoint: server.endpoint.clone(), dir: tempfile::tempdir().expect("temp dir") }
    }

    fn run(&self, args: &[&str]) -> Out {
        let dir = self.dir.path();
        let mut child = Command::new("aws")
            .args(args)
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .current_dir(dir)
            .env("AWS_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", ROOT_SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_OUTPUT", "json")
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("AWS_CONFIG_FILE", dir.join("no-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-credentials"))
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the AWS CLI (`aws`, 1.x) must be on PATH; CI installs it with pip");
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("aws {} did not finish within 120 s", args.join(" "));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        let _ = child.stdout.take().map(|mut s| s.read_to_string(&mut stdout));
        let _ = child.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
        Out { ok: status.success(), stdout, stderr }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

async fn recorder(server: &Server, name: &str) -> String {
    let runtime = python_runtime(server);
    server
        .lambda()
        .create_function()
        .function_name(name)
        .runtime(runtime.as_str().into())
        .handler("app.handler")
        .role(ROLE)
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(fixture_zip("python/schedule_record.py", "app.py")))
                .build(),
        )
        .send()
        .await
        .expect("create function");
    format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}")
}

/// One received event: when it arrived (ms) and what it was.
#[derive(Debug, Clone)]
struct Received {
    arrived_ms: i64,
    event: Value,
}

async fn received(server: &Server, function: &str) -> Vec<Received> {
    let mut out: Vec<Received> = filter_logs(server, &format!("/aws/lambda/{function}"), "SCHEDULED")
        .await
        .iter()
        .filter_map(|m| {
            let rest = m.trim().strip_prefix("SCHEDULED ")?;
            let (at, json) = rest.split_once(' ')?;
            Some(Received { arrived_ms: at.parse().ok()?, event: serde_json::from_str(json).ok()? })
        })
        .collect();
    out.sort_by_key(|r| r.arrived_ms);
    out
}

/// The tick of a scheduled event (its `time`, whole seconds) in ms.
fn tick_ms(event: &Value) -> i64 {
    let time = event["time"].as_str().unwrap_or_default();
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| panic!("bad time {time}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The scheduled events of one rule (those without Input).
fn of_rule<'a>(events: &'a [Received], rule_arn: &str) -> Vec<&'a Received> {
    events.iter().filter(|r| r.event["resources"][0] == rule_arn).collect()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_rule_fires_on_time_with_eventbridges_event_and_a_disabled_rule_does_not() {
    // One "minute" of rate() lasts two seconds here.
    let period = 2_000;
    let server = Server::start_with(&["--schedule-minute", "2s"]);
    let function = recorder(&server, "ticker").await;
    let aws = Aws::new(&server);

    let before = now_ms();
    let rule =
        aws.run(&["events", "put-rule", "--name", "every-minute", "--schedule-expression", "rate(1 minute)"]).json();
    let after = now_ms();
    let rule_arn = format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/every-minute");
    assert_eq!(rule["RuleArn"], rule_arn.as_str());
    let input_rule = aws
        .run(&[
            "events",
            "put-rule",
            "--name",
            "with-input",
            "--schedule-expression",
            "rate(1 minute)",
            "--description",
            "passes its own input",
        ])
        .json();
    let input_arn = input_rule["RuleArn"].as_str().unwrap_or_default().to_string();

    // Without a permission for events.amazonaws.com nothing may be invoked:
    // the targets are accepted, the schedule fires, the function is not run.
    let targets = format!("Id=recorder,Arn={function}");
    let put = aws.run(&["events", "put-targets", "--rule", "every-minute", "--targets", &targets]).json();
    assert_eq!(put["FailedEntryCount"], 0);
    std::fs::write(
        aws.dir().join("targets.json"),
        serde_json::json!([{"Id": "with-input", "Arn": function, "Input": "{\"hello\": \"world\", \"n\": [1, 2]}"}])
            .to_string(),
    )
    .expect("targets file");
    let put = aws.run(&["events", "put-targets", "--rule", "with-input", "--targets", "file://targets.json"]).json();
    assert_eq!(put["FailedEntryCount"], 0);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(received(&server, "ticker").await.is_empty(), "invoked without the function's permission");
    let ls = server.cli().args(["schedule", "ls"]).output().expect("kumo schedule ls");
    let listing = String::from_utf8_lossy(&ls.stdout).to_string();
    assert!(ls.status.success(), "{listing}{}", String::from_utf8_lossy(&ls.stderr));
    let line = listing.lines().find(|l| l.starts_with("every-minute ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("rate(1 minute)") && line.contains("ENABLED") && line.contains("recorder=ticker"), "{line}");
    let failed: u64 = line.split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(failed >= 1, "refused invocations are counted: {line}");

    for (sid, arn) in [("every-minute", &rule_arn), ("with-input", &input_arn)] {
        aws.run(&[
            "lambda",
            "add-permission",
            "--function-name",
            "ticker",
            "--statement-id",
            sid,
            "--action",
            "lambda:InvokeFunction",
            "--principal",
            "events.amazonaws.com",
            "--source-arn",
            arn,
        ])
        .json();
    }
    let permitted = now_ms();

    // The API answers as EventBridge's.
    let described = aws.run(&["events", "describe-rule", "--name", "every-minute"]).json();
    assert_eq!(described["Name"], "every-minute");
    assert_eq!(described["Arn"], rule_arn.as_str());
    assert_eq!(described["ScheduleExpression"], "rate(1 minute)");
    assert_eq!(described["State"], "ENABLED");
    assert_eq!(described["EventBusName"], "default");
    let listed = aws.run(&["events", "list-rules", "--name-prefix", "every"]).json();
    assert_eq!(listed["Rules"].as_array().map(Vec::len), Some(1), "{listed}");
    let listed = aws.run(&["events", "list-rules"]).json();
    assert_eq!(listed["Rules"].as_array().map(Vec::len), Some(2), "{listed}");
    let page = aws.run(&["events", "list-rules", "--limit", "1"]).json();
    assert_eq!(page["Rules"][0]["Name"], "every-minute");
    assert_eq!(page["NextToken"], "1");
    let listed = aws.run(&["events", "list-targets-by-rule", "--rule", "with-input"]).json();
    assert_eq!(listed["Targets"][0]["Id"], "with-input");
    assert_eq!(listed["Targets"][0]["Arn"], function.as_str());
    assert_eq!(listed["Targets"][0]["Input"], "{\"hello\": \"world\", \"n\": [1, 2]}");

    // Let it fire a few times.
    tokio::time::sleep(Duration::from_millis(7_000)).await;
    let events = received(&server, "ticker").await;
    let scheduled = of_rule(&events, &rule_arn);
    assert!(
        scheduled.len() >= 2,
        "rate(1 minute) with a 2 s minute fired {} times in 7 s: {events:?}",
        scheduled.len()
    );
    let mut ticks: Vec<i64> = Vec::new();
    for r in &scheduled {
        let e = &r.event;
        let keys: Vec<&str> = e.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            ["account", "detail", "detail-type", "id", "region", "resources", "source", "time", "version"]
        );
        assert_eq!(e["version"], "0");
        assert!(is_uuid(e["id"].as_str().unwrap_or_default()), "{e}");
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["account"], ACCOUNT);
        assert_eq!(e["region"], "us-east-1");
        assert_eq!(e["resources"], serde_json::json!([rule_arn]));
        assert_eq!(e["detail"], serde_json::json!({}));
        let time = e["time"].as_str().unwrap_or_default();
        assert!(time.len() == 20 && time.ends_with('Z'), "time in whole seconds: {time}");
        // Ticks are creation + k periods; each is delivered within a couple of
        // seconds of it (a cold start included) and never before it.
        let tick = tick_ms(e);
        let k = (tick - before + 999) / period;
        assert!(k >= 1, "a rate rule first fires one period after its creation: {time}");
        let due_lo = before + k * period - 1_000;
        let due_hi = after + k * period;
        assert!(
            (due_lo..=due_hi).contains(&tick),
            "tick {time} is not on the rule's grid ({before}..{after} + k·{period})"
        );
        let lateness = r.arrived_ms - tick;
        assert!((0..4_000).contains(&lateness), "delivered {lateness} ms after its tick {time}");
        assert!(tick + 1_000 >= permitted - period, "no ticks before the permission are delivered late: {time}");
        ticks.push(tick);
    }
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), ticks.len(), "one tick fired twice: {ticks:?}");
    for w in ticks.windows(2) {
        assert!((1_000..=3_000).contains(&(w[1] - w[0])), "ticks a period apart: {ticks:?}");
    }
    let ids: std::collections::BTreeSet<&str> = scheduled.iter().filter_map(|r| r.event["id"].as_str()).collect();
    assert_eq!(ids.len(), scheduled.len(), "every event has its own id");
    // The target's Input arrives verbatim instead of the scheduled event.
    let with_input: Vec<&Received> = events.iter().filter(|r| r.event.get("hello").is_some()).collect();
    assert!(!with_input.is_empty(), "{events:?}");
    assert!(with_input.iter().all(|r| r.event == serde_json::json!({"hello": "world", "n": [1, 2]})));

    // Disabled, the rule stops firing (the other one goes on).
    aws.run(&["events", "disable-rule", "--name", "every-minute"]).json();
    let disabled_at = now_ms();
    assert_eq!(aws.run(&["events", "describe-rule", "--name", "every-minute"]).json()["State"], "DISABLED");
    tokio::time::sleep(Duration::from_millis(6_000)).await;
    let events = received(&server, "ticker").await;
    let late: Vec<i64> =
        of_rule(&events, &rule_arn).iter().map(|r| tick_ms(&r.event)).filter(|t| *t > disabled_at).collect();
    assert!(late.is_empty(), "a disabled rule fired: {late:?}");
    let input_after: usize = events.iter().filter(|r| r.event.get("hello").is_some()).count();
    assert!(input_after > with_input.len(), "the enabled rule kept firing");
    let ls = server.cli().args(["schedule", "ls"]).output().expect("kumo schedule ls");
    let listing = String::from_utf8_lossy(&ls.stdout).to_string();
    let line = listing.lines().find(|l| l.starts_with("every-minute ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("DISABLED") && line.contains("(disabled)"), "{line}");
    let line = listing.lines().find(|l| l.starts_with("with-input ")).unwrap_or_else(|| panic!("{listing}"));
    let next = line.split_whitespace().find(|w| w.len() == 20 && w.ends_with('Z')).unwrap_or_else(|| panic!("{line}"));
    let next_ms = chrono::DateTime::parse_from_rfc3339(next).map(|t| t.timestamp_millis()).unwrap_or(0);
    assert!((now_ms() - 2_000..now_ms() + period + 1_000).contains(&next_ms), "next fire time: {line}");

    // A rule with targets cannot be deleted; without them it can.
    let refused = aws.run(&["events", "delete-rule", "--name", "every-minute"]).error();
    assert!(
        refused.contains("(ValidationException)") && refused.contains("Rule can't be deleted since it has targets."),
        "{refused}"
    );
    aws.run(&["events", "remove-targets", "--rule", "every-minute", "--ids", "recorder"]).json();
    let listed = aws.run(&["events", "list-targets-by-rule", "--rule", "every-minute"]).json();
    assert_eq!(listed["Targets"], serde_json::json!([]));
    aws.run(&["events", "delete-rule", "--name", "every-minute"]);
    let gone = aws.run(&["events", "describe-rule", "--name", "every-minute"]).error();
    assert!(
        gone.contains("(ResourceNotFoundException)")
            && gone.contains("Rule every-minute does not exist on EventBus default."),
        "{gone}"
    );
    let tags = aws.run(&["events", "list-tags-for-resource", "--resource-arn", &input_arn]).json();
    assert_eq!(tags["Tags"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_rules_and_targets_get_eventbridges_errors() {
    let server = Server::start();
    let aws = Aws::new(&server);
    let bad = |args: &[&str], code: &str, message: &str| {
        let e = aws.run(args).error();
        assert!(e.contains(&format!("({code})")) && e.contains(message), "{args:?}: {e}");
    };
    let invalid = "Parameter ScheduleExpression is not valid.";
    for expr in [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 seconds)",
        "cron(0 12 * * *)",
        "cron(0 12 * * * *)",
        "cron(*/60 * * * ? *)",
        "every day",
    ] {
        bad(&["events", "put-rule", "--name", "r", "--schedule-expression", expr], "ValidationException", invalid);
    }
    bad(&["events", "put-rule", "--name", "r"], "ValidationException", "EventPattern or ScheduleExpression");
    bad(
        &["events", "put-rule", "--name", "bad name", "--schedule-expression", "rate(5 minutes)"],
        "ValidationException",
        "at 'name'",
    );
    bad(
        &[
            "events",
            "put-rule",
            "--name",
            "r",
            "--schedule-expression",
            "rate(5 minutes)",
            "--event-bus-name",
            "orders",
        ],
        "ResourceNotFoundException",
        "Event bus orders does not exist.",
    );
    bad(
        &["events", "describe-rule", "--name", "nope"],
        "ResourceNotFoundException",
        "Rule nope does not exist on EventBus default.",
    );
    bad(
        &["events", "list-targets-by-rule", "--rule", "nope"],
        "ResourceNotFoundException",
        "Rule nope does not exist on EventBus default.",
    );
    bad(
        &[
            "events",
            "put-targets",
            "--rule",
            "nope",
            "--targets",
            "Id=a,Arn=arn:aws:lambda:us-east-1:000000000000:function:f",
        ],
        "ResourceNotFoundException",
        "Rule nope does not exist",
    );

    // cron in AWS's syntax is accepted; an event pattern rule is kept (it never fires).
    for (name, expr) in [
        ("noon", "cron(0 12 * * ? *)"),
        ("last-friday", "cron(15 10 ? * 6L 2026-2027)"),
        ("quarters", "cron(0/15 * ? * MON-FRI *)"),
    ] {
        aws.run(&["events", "put-rule", "--name", name, "--schedule-expression", expr]).json();
    }
    aws.run(&[
        "events",
        "put-rule",
        "--name",
        "pattern",
        "--event-pattern",
        r#"{"source":["my.app"]}"#,
        "--state",
        "DISABLED",
    ])
    .json();
    let described = aws.run(&["events", "describe-rule", "--name", "pattern"]).json();
    assert_eq!(described["EventPattern"], r#"{"source":["my.app"]}"#);
    assert_eq!(described["State"], "DISABLED");

    // Only Lambda functions are targets; others are failed entries, not dropped silently.
    let put = aws
        .run(&[
            "events",
            "put-targets",
            "--rule",
            "noon",
            "--targets",
            "Id=q,Arn=arn:aws:sqs:us-east-1:000000000000:queue",
            "Id=f,Arn=arn:aws:lambda:us-east-1:000000000000:function:f",
        ])
        .json();
    assert_eq!(put["FailedEntryCount"], 1, "{put}");
    assert_eq!(put["FailedEntries"][0]["TargetId"], "q");
    let listed = aws.run(&["events", "list-targets-by-rule", "--rule", "noon"]).json();
    assert_eq!(listed["Targets"].as_array().map(Vec::len), Some(1));
    // At most five targets per rule.
    let six: Vec<String> =
        (1..=6).map(|i| format!("Id=t{i},Arn=arn:aws:lambda:us-east-1:000000000000:function:f")).collect();
    let mut args = vec!["events", "put-targets", "--rule", "quarters", "--targets"];
    args.extend(six.iter().map(String::as_str));
    bad(&args, "LimitExceededException", "maximum number allowed");

    // Every cron rule knows its next fire time.
    let out = server.cli().args(["schedule", "ls"]).output().expect("kumo schedule ls");
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let line = listing.lines().find(|l| l.starts_with("noon ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("T12:00:00Z"), "{line}");
    let line = listing.lines().find(|l| l.starts_with("pattern ")).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.contains("never (pattern)"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_missed_while_kumo_was_down_fires_once_at_start() {
    // One "minute" lasts two seconds: rate(1 minute) ticks every 2 s.
    let period = 2_000;
    let mut server = Server::start_with(&["--schedule-minute", "2s"]);
    let function = recorder(&server, "catchup").await;
    let aws = Aws::new(&server);
    let rule = aws.run(&["events", "put-rule", "--name", "beat", "--schedule-expression", "rate(1 minute)"]).json();
    let rule_arn = rule["RuleArn"].as_str().unwrap_or_default().to_string();
    aws.run(&[
        "lambda",
        "add-permission",
        "--function-name",
        "catchup",
        "--statement-id",
        "beat",
        "--action",
        "lambda:InvokeFunction",
        "--principal",
        "events.amazonaws.com",
        "--source-arn",
        &rule_arn,
    ])
    .json();
    aws.run(&["events", "put-targets", "--rule", "beat", "--targets", &format!("Id=1,Arn={function}")]).json();

    // Wait for a first firing, then stop Kumo for more than three periods.
    let deadline = Instant::now() + Duration::from_secs(20);
    while of_rule(&received(&server, "catchup").await, &rule_arn).is_empty() {
        assert!(Instant::now() < deadline, "the rule never fired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
    let stopped = now_ms();
    let data_dir = server.data_dir.clone();
    tokio::time::sleep(Duration::from_millis(7_500)).await;
    let restarting = now_ms();
    let server = Server::start_in(&data_dir, &["--schedule-minute", "2s"]);
    tokio::time::sleep(Duration::from_millis(4_500)).await;

    let events = received(&server, "catchup").await;
    let all = of_rule(&events, &rule_arn);
    // Ticks before the stop fired before it (the scheduler was down after).
    let last_before = all
        .iter()
        .map(|r| tick_ms(&r.event))
        .filter(|t| *t < stopped)
        .max()
        .unwrap_or_else(|| panic!("no firing before the stop: {events:?}"));
    let after: Vec<&&Received> = all.iter().filter(|r| tick_ms(&r.event) > last_before).collect();
    assert!(!after.is_empty(), "nothing fired after the restart: {events:?}");
    // The missed ticks (at least three) fire once, as the latest of them,
    // soon after the start; then the schedule goes on from there.
    let ticks: Vec<i64> = after.iter().map(|r| tick_ms(&r.event)).collect();
    let first = ticks[0];
    assert!(
        first >= last_before + 3 * period - 1_000,
        "the missed ticks fired one by one: {ticks:?} after {last_before}"
    );
    assert!(
        first <= restarting + 2_000,
        "the catch-up is a missed tick, not a later one: {ticks:?}, restart at {restarting}"
    );
    assert!(after[0].arrived_ms - restarting < 4_000, "the missed schedule fired soon after the start");
    let missed = ticks.iter().filter(|t| **t < restarting - 1_000).count();
    assert!(missed <= 1, "more than one firing for the missed ticks: {ticks:?}");
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(distinct, ticks, "a tick fired twice: {ticks:?}");
    for w in ticks.windows(2) {
        assert!((1_000..=3_000).contains(&(w[1] - w[0])), "after the catch-up, one firing per period: {ticks:?}");
    }
}
