//! Terraform (the real `terraform` binary with the hashicorp/aws provider from
//! an offline mirror) manages a whole serverless stack on Kumo with nothing in
//! its configuration but the endpoints: apply, a stack that works (an S3 upload
//! under the prefix runs the function, the URL answers, the schedule fires), a
//! clean plan, an in-place update (memory, environment, code, tags) and a clean
//! plan again, resources deleted behind Terraform's back planned for
//! re-creation (exactly those), and a destroy that leaves no trace.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::python_runtime;
use crate::harness::*;
use crate::invoke::filter_logs;

const FUNCTION: &str = "kumo-tf-fn";
const GROUP: &str = "/aws/lambda/kumo-tf-fn";
/// Where the machines keep the provider, unpacked or as `terraform providers
/// mirror` packs it (`.ci/run` provides it).
const MIRROR: &str = "/opt/tf-plugins";
const PROVIDER: &str = "registry.terraform.io/hashicorp/aws";

/// The user's configuration: a stock provider block (no skip flags, so the
/// provider calls STS GetCallerIdentity) with only the endpoints pointed at Kumo.
const MAIN_TF: &str = r#"
variable "endpoint" { type = string }
variable "access_key" { type = string }
variable "secret_key" { type = string }
variable "runtime" { type = string }
variable "memory" { type = number }
variable "greeting" { type = string }
variable "zip" { type = string }
variable "team" { type = string }

provider "aws" {
  region            = "us-east-1"
  access_key        = var.access_key
  secret_key        = var.secret_key
  s3_use_path_style = true
  endpoints {
    lambda = var.endpoint
    s3     = var.endpoint
    iam    = var.endpoint
    sts    = var.endpoint
    logs   = var.endpoint
    events = var.endpoint
  }
}

data "aws_caller_identity" "me" {}

resource "aws_iam_role" "fn" {
  name = "kumo-tf-fn-role"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "lambda.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
}

resource "aws_iam_role_policy" "logs" {
  name = "logs"
  role = aws_iam_role.fn.id
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["logs:CreateLogStream", "logs:PutLogEvents"], Resource = "*" }]
  })
}

resource "aws_iam_policy" "read" {
  name = "kumo-tf-read"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["s3:GetObject"], Resource = "${aws_s3_bucket.in.arn}/*" }]
  })
}

resource "aws_iam_role_policy_attachment" "read" {
  role       = aws_iam_role.fn.name
  policy_arn = aws_iam_policy.read.arn
}

resource "aws_cloudwatch_log_group" "fn" {
  name              = "/aws/lambda/kumo-tf-fn"
  retention_in_days = 7
}

resource "aws_lambda_function" "fn" {
  function_name    = "kumo-tf-fn"
  role             = aws_iam_role.fn.arn
  runtime          = var.runtime
  handler          = "app.handler"
  filename         = var.zip
  source_code_hash = filebase64sha256(var.zip)
  memory_size      = var.memory
  timeout          = 10
  publish          = true
  environment {
    variables = { GREETING = var.greeting }
  }
  tags       = { app = "kumo", team = var.team }
  depends_on = [aws_cloudwatch_log_group.fn, aws_iam_role_policy.logs]
}

resource "aws_lambda_alias" "live" {
  name             = "live"
  function_name    = aws_lambda_function.fn.function_name
  function_version = aws_lambda_function.fn.version
}

resource "aws_lambda_function_url" "public" {
  function_name      = aws_lambda_function.fn.function_name
  authorization_type = "NONE"
}

resource "aws_lambda_function_url" "private" {
  function_name      = aws_lambda_function.fn.function_name
  qualifier          = aws_lambda_alias.live.name
  authorization_type = "AWS_IAM"
}

resource "aws_lambda_function_event_invoke_config" "fn" {
  function_name                = aws_lambda_function.fn.function_name
  maximum_event_age_in_seconds = 3600
  maximum_retry_attempts       = 1
}

resource "aws_s3_bucket" "in" {
  bucket        = "kumo-tf-bucket"
  force_destroy = true
}

resource "aws_lambda_permission" "s3" {
  statement_id  = "AllowS3"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn.function_name
  principal     = "s3.amazonaws.com"
  source_arn    = aws_s3_bucket.in.arn
}

resource "aws_s3_bucket_notification" "in" {
  bucket = aws_s3_bucket.in.id
  lambda_function {
    lambda_function_arn = aws_lambda_function.fn.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "uploads/"
  }
  depends_on = [aws_lambda_permission.s3]
}

resource "aws_cloudwatch_event_rule" "tick" {
  name                = "kumo-tf-tick"
  schedule_expression = "rate(1 minute)"
}

resource "aws_cloudwatch_event_target" "tick" {
  rule = aws_cloudwatch_event_rule.tick.name
  arn  = aws_lambda_function.fn.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEvents"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.tick.arn
}

output "account" { value = data.aws_caller_identity.me.account_id }
output "public_url" { value = aws_lambda_function_url.public.function_url }
output "private_url" { value = aws_lambda_function_url.private.function_url }
output "private_url_id" { value = aws_lambda_function_url.private.url_id }
output "version" { value = aws_lambda_function.fn.version }
"#;

fn handler(suffix: &str) -> String {
    format!(
        "import json, os\n\
         def handler(event, context):\n    \
             print('KUMO-TF', os.environ.get('GREETING'), json.dumps(event))\n    \
             return {{'statusCode': 200, 'body': os.environ.get('GREETING', '') + ' {suffix}'}}\n"
    )
}

/// The terraform binary and the provider mirror, or why the test cannot run.
fn toolchain() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("terraform")).collect::<Vec<_>>())
        .unwrap_or_default();
    let terraform = [PathBuf::from("/usr/local/bin/terraform")]
        .into_iter()
        .chain(on_path)
        .find(|p| p.is_file())
        .ok_or("terraform is not installed (/usr/local/bin/terraform, PATH)")?;
    if !Path::new(MIRROR).join(PROVIDER).is_dir() {
        return Err(format!("the offline mirror of hashicorp/aws is missing ({MIRROR}/{PROVIDER})"));
    }
    Ok(terraform)
}

/// One Terraform working directory against one Kumo, with its own CLI config
/// and state, no network but Kumo's, and no AWS configuration from the machine.
struct Terraform {
    bin: PathBuf,
    dir: tempfile::TempDir,
    endpoint: String,
    runtime: String,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Terraform {
    fn command(&self, args: &[&str]) -> Command {
        let dir = self.dir.path();
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k.starts_with("TF_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("TF_CLI_CONFIG_FILE", dir.join("cli.tfrc"))
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env("NO_PROXY", "127.0.0.1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("no-aws-credentials"))
            .env("TF_VAR_endpoint", &self.endpoint)
            .env("TF_VAR_access_key", ROOT_KEY_ID)
            .env("TF_VAR_secret_key", ROOT_SECRET)
            .env("TF_VAR_runtime", &self.runtime);
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        let started = Instant::now();
        let out = self.command(args).output().expect("run terraform");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    /// Runs a command that must succeed (exit 0), with the stack's variables.
    fn ok(&self, command: &str, vars: &Vars, extra: &[&str]) -> Run {
        let mut args = vec![command, "-no-color"];
        let vars = vars.args();
        args.extend(vars.iter().map(String::as_str));
        args.extend_from_slice(extra);
        let run = self.run(&args);
        assert_eq!(run.code, 0, "terraform {command} failed:\n{}\n{}", run.stdout, run.stderr);
        eprintln!("terraform {command}: {:.1} s", run.took.as_secs_f64());
        run
    }

    /// `plan -detailed-exitcode`: 0 when there is nothing to do, 2 with changes.
    fn plan(&self, vars: &Vars) -> Run {
        let mut args = vec!["plan", "-no-color", "-detailed-exitcode"];
        let vars = vars.args();
        args.extend(vars.iter().map(String::as_str));
        let run = self.run(&args);
        assert!(run.code == 0 || run.code == 2, "terraform plan failed:\n{}\n{}", run.stdout, run.stderr);
        eprintln!("terraform plan: {:.1} s (exit {})", run.took.as_secs_f64(), run.code);
        run
    }

    fn output(&self, name: &str) -> String {
        let run = self.run(&["output", "-raw", name]);
        assert_eq!(run.code, 0, "terraform output {name}: {}", run.stderr);
        run.stdout
    }
}

/// The variables one version of the stack is applied with.
struct Vars {
    memory: u32,
    greeting: &'static str,
    zip: &'static str,
    team: &'static str,
}

impl Vars {
    fn args(&self) -> Vec<String> {
        vec![
            format!("-var=memory={}", self.memory),
            format!("-var=greeting={}", self.greeting),
            format!("-var=zip={}", self.zip),
            format!("-var=team={}", self.team),
        ]
    }
}

/// GET on a function URL (its `*.localhost` host sent to 127.0.0.1), signed
/// with the root key when `signed`.
async fn url_get(url: &str, signed: bool) -> (u16, String) {
    let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    let name = host.split(':').next().unwrap_or_default().to_string();
    let port: u16 = host.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port in the URL");
    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve(&name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .expect("client");
    let mut request = client.get(url).build().expect("request");
    if signed {
        let root = kumo::cli::client::ClientCredentials {
            access_key_id: ROOT_KEY_ID.to_string(),
            secret_access_key: ROOT_SECRET.to_string(),
            session_token: None,
        };
        kumo::cli::client::sign_request(&mut request, &root, "us-east-1").expect("sign");
    }
    let resp = client.execute(request).await.expect("send");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

/// A JSON 1.1 call (EventBridge, CloudWatch Logs) signed with the root key.
async fn json_call(server: &Server, target: &str, body: Value) -> Value {
    let req = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string());
    let resp = server.send(req).await.expect("send");
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {v}");
    v
}

/// Waits until the function's log group has a line containing `needle`.
async fn wait_for_log(server: &Server, needle: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if !filter_logs(server, GROUP, needle).await.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: no log line with {needle:?} within 60 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The resources a plan says it will create.
fn planned_creations(plan: &str) -> BTreeSet<String> {
    plan.lines()
        .filter_map(|l| l.trim().strip_prefix("# ")?.strip_suffix(" will be created").map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn terraform_manages_a_serverless_stack() {
    let bin = match toolchain() {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("!!! SKIPPED: terraform_manages_a_serverless_stack because {why} !!!");
            return;
        }
    };
    // A rate(1 minute) schedule fires every 3 s.
    let server = Server::start_with(&["--schedule-minute", "3s"]);
    let runtime = python_runtime(&server);
    let tf = Terraform { bin, dir: tempfile::tempdir().expect("tmp"), endpoint: server.endpoint.clone(), runtime };
    let dir = tf.dir.path();
    std::fs::write(dir.join("main.tf"), MAIN_TF).expect("main.tf");
    std::fs::write(
        dir.join("cli.tfrc"),
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{MIRROR}\"\n    include = [\"registry.terraform.io/hashicorp/*\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/hashicorp/*\"]\n  }}\n}}\n"
        ),
    )
    .expect("cli.tfrc");
    std::fs::write(dir.join("fn1.zip"), zip_of(&[("app.py", handler("v1").as_bytes(), 0o644)])).expect("fn1.zip");
    std::fs::write(dir.join("fn2.zip"), zip_of(&[("app.py", handler("v2").as_bytes(), 0o644)])).expect("fn2.zip");
    let first = Vars { memory: 128, greeting: "hello", zip: "fn1.zip", team: "blue" };
    let second = Vars { memory: 256, greeting: "howdy", zip: "fn2.zip", team: "green" };

    let init = tf.run(&["init", "-no-color", "-input=false"]);
    assert_eq!(init.code, 0, "terraform init (offline) failed:\n{}\n{}", init.stdout, init.stderr);
    eprintln!("terraform init: {:.1} s", init.took.as_secs_f64());

    // Apply: every resource is created, the provider's identity check included.
    tf.ok("apply", &first, &["-auto-approve"]);
    assert_eq!(tf.output("account"), "000000000000");
    assert_eq!(tf.output("version"), "1");
    let lambda = server.lambda();
    let got = lambda.get_function().function_name(FUNCTION).send().await.expect("function");
    let conf = got.configuration().expect("configuration");
    assert_eq!(conf.memory_size(), Some(128));
    assert_eq!(got.tags().and_then(|t| t.get("team")).map(String::as_str), Some("blue"));
    let alias = lambda.get_alias().function_name(FUNCTION).name("live").send().await.expect("alias");
    assert_eq!(alias.function_version(), Some("1"));

    // The stack works: the public URL answers, the IAM one only to a signed caller.
    let public = tf.output("public_url");
    assert!(public.contains(".lambda-url.us-east-1."), "a Lambda-shaped URL: {public}");
    assert_eq!(url_get(&public, false).await, (200, "hello v1".to_string()));
    let private = tf.output("private_url");
    assert!(private.starts_with(&format!("http://{}.lambda-url.", tf.output("private_url_id"))), "{private}");
    // (A path under the URL: a signed `GET /` would be signed as S3's ListBuckets.)
    let private = format!("{private}greet");
    assert_eq!(url_get(&private, false).await.0, 403);
    assert_eq!(url_get(&private, true).await, (200, "hello v1".to_string()));
    // An upload under the prefix runs the function; one elsewhere does not.
    let s3 = server.s3();
    for key in ["uploads/in.txt", "elsewhere/out.txt"] {
        s3.put_object().bucket("kumo-tf-bucket").key(key).body(b"x".to_vec().into()).send().await.expect("put");
    }
    wait_for_log(&server, "uploads/in.txt", "the S3 notification").await;
    wait_for_log(&server, "Scheduled Event", "the schedule").await;
    assert!(filter_logs(&server, GROUP, "elsewhere/out.txt").await.is_empty(), "the prefix filter holds");

    let plan = tf.plan(&first);
    assert_eq!(plan.code, 0, "a plan right after apply shows no changes:\n{}", plan.stdout);

    // Memory, environment, code and tags change in place; a new version is published.
    let update = tf.ok("apply", &second, &["-auto-approve"]);
    assert!(update.stdout.contains("0 added, 2 changed, 0 destroyed"), "{}", update.stdout);
    assert_eq!(tf.output("version"), "2");
    let got = lambda.get_function().function_name(FUNCTION).send().await.expect("function");
    let conf = got.configuration().expect("configuration");
    assert_eq!(conf.memory_size(), Some(256));
    assert_eq!(
        conf.environment().and_then(|e| e.variables()).and_then(|v| v.get("GREETING")).map(String::as_str),
        Some("howdy")
    );
    assert_eq!(got.tags().and_then(|t| t.get("team")).map(String::as_str), Some("green"));
    assert_eq!(url_get(&public, false).await, (200, "howdy v2".to_string()));
    assert_eq!(url_get(&private, true).await, (200, "howdy v2".to_string()), "the alias moved to version 2");
    let plan = tf.plan(&second);
    assert_eq!(plan.code, 0, "a plan right after the update shows no changes:\n{}", plan.stdout);

    // Deleted behind Terraform's back: exactly those are planned for re-creation.
    lambda.delete_function_url_config().function_name(FUNCTION).send().await.expect("delete url");
    lambda.delete_function_event_invoke_config().function_name(FUNCTION).send().await.expect("delete config");
    server.iam().delete_role_policy().role_name("kumo-tf-fn-role").policy_name("logs").send().await.expect("policy");
    let targets = json_call(&server, "AWSEvents.ListTargetsByRule", json!({"Rule": "kumo-tf-tick"})).await;
    let ids: Vec<Value> = targets["Targets"].as_array().expect("targets").iter().map(|t| t["Id"].clone()).collect();
    json_call(&server, "AWSEvents.RemoveTargets", json!({"Rule": "kumo-tf-tick", "Ids": ids})).await;
    let plan = tf.plan(&second);
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    let expected: BTreeSet<String> = [
        "aws_cloudwatch_event_target.tick",
        "aws_iam_role_policy.logs",
        "aws_lambda_function_event_invoke_config.fn",
        "aws_lambda_function_url.public",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(planned_creations(&plan.stdout), expected, "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 4 to add, 0 to change, 0 to destroy."), "{}", plan.stdout);

    // Destroy leaves nothing of the stack behind.
    tf.ok("destroy", &second, &["-auto-approve"]);
    let functions = lambda.list_functions().send().await.expect("functions");
    assert!(functions.functions().is_empty(), "{functions:?}");
    let iam = server.iam();
    let roles = iam.list_roles().send().await.expect("roles");
    let roles: Vec<&str> = roles.roles().iter().map(|r| r.role_name()).collect();
    assert_eq!(roles, ["kumo-test-role"], "only the harness's own role is left");
    let policies =
        iam.list_policies().scope(aws_sdk_iam::types::PolicyScopeType::Local).send().await.expect("policies");
    assert!(policies.policies().is_empty(), "{policies:?}");
    let buckets = s3.list_buckets().send().await.expect("buckets");
    assert!(buckets.buckets().is_empty(), "{buckets:?}");
    let groups = json_call(&server, "Logs_20140328.DescribeLogGroups", json!({"logGroupNamePrefix": GROUP})).await;
    assert_eq!(groups["logGroups"], json!([]), "the log group is gone");
    let rules = json_call(&server, "AWSEvents.ListRules", json!({})).await;
    assert_eq!(rules["Rules"], json!([]), "the rule is gone");
}
