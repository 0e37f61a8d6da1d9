//! Authentication: every request is signed (SigV4) by a known key, or refused
//! the way AWS refuses it, before anything runs.

use std::process::Command;

use serde_json::Value;

use crate::harness::*;

fn lambda_with(server: &Server, key_id: &str, secret: &str) -> aws_sdk_lambda::Client {
    server.lambda_as(aws_sdk_lambda::config::Credentials::new(key_id, secret, None, None, "test"))
}

/// Status, `x-amzn-ErrorType` and body of a raw answer.
async fn answer(resp: reqwest::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let kind = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, kind, resp.text().await.unwrap_or_default())
}

/// A ListFunctions request signed with the root key at `epoch_s`.
fn signed_at(server: &Server, epoch_s: i64) -> reqwest::RequestBuilder {
    let host = server.endpoint.trim_start_matches("http://");
    let added = root_signature(host, "GET", "/2015-03-31/functions", &[], b"", "lambda", epoch_s);
    let mut req = server.http().get(format!("{}/2015-03-31/functions", server.endpoint));
    for (k, v) in added {
        req = req.header(k, v);
    }
    req
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_forged_and_stale_requests_are_refused_before_anything_runs() {
    let server = Server::start();
    let zip = fixture_zip("python/echo.py", "app.py");
    let body = serde_json::json!({
        "FunctionName": "sneaky", "Runtime": "python3.12", "Handler": "app.handler", "Role": ROLE,
        "Code": {"ZipFile": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &zip)},
    });
    // No signature at all.
    let url = format!("{}/2015-03-31/functions", server.endpoint);
    let resp = server.http().post(&url).header("content-type", "application/json").body(body.to_string()).send().await;
    let (status, kind, text) = answer(resp.expect("answer")).await;
    assert_eq!((status, kind.as_str()), (403, "MissingAuthenticationTokenException"), "{text}");
    assert!(text.contains("Missing Authentication Token"), "{text}");

    // A wrong secret: the SDK maps Lambda's answer to its error.
    let forged = lambda_with(&server, ROOT_KEY_ID, "not-the-secret");
    let err = forged.list_functions().send().await.expect_err("wrong secret");
    let text = format!("{err:?}");
    assert!(text.contains("InvalidSignatureException"), "{text}");
    assert!(text.contains("The request signature we calculated does not match the signature you provided"), "{text}");
    // A key nobody issued.
    let stranger = lambda_with(&server, "AKIAKUMONOBODY000001", "whatever-secret");
    let err = stranger.create_function().function_name("sneaky").send().await.expect_err("unknown key");
    let text = format!("{err:?}");
    assert!(text.contains("UnrecognizedClientException"), "{text}");
    assert!(text.contains("The security token included in the request is invalid."), "{text}");

    // Signed 20 minutes ago, or 20 minutes ahead: outside the 15-minute window.
    let (status, kind, text) = answer(signed_at(&server, now_s() - 20 * 60).send().await.expect("answer")).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"), "{text}");
    assert!(text.contains("Signature expired: ") && text.contains(" - 15 min.)"), "{text}");
    let (status, _, text) = answer(signed_at(&server, now_s() + 20 * 60).send().await.expect("answer")).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("Signature not yet current: "), "{text}");
    // Within the window, the same request is fine.
    let (status, _, text) = answer(signed_at(&server, now_s() - 60).send().await.expect("answer")).await;
    assert_eq!(status, 200, "{text}");

    // Nothing of the refused requests ran.
    let listed = server.lambda().list_functions().send().await.expect("list");
    assert!(listed.functions().is_empty(), "{listed:?}");

    // IAM and STS refuse in their own (XML) dialect.
    let resp = server
        .http()
        .post(format!("{}/", server.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=ListUsers&Version=2010-05-08")
        .send()
        .await;
    let (status, _, text) = answer(resp.expect("answer")).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("<Code>MissingAuthenticationToken</Code>"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_urls_from_botocore_work_and_a_tampered_one_does_not() {
    let server = Server::start();
    let endpoint = server.endpoint.clone();
    let script = r#"
import sys, boto3
c = boto3.client("lambda", endpoint_url=sys.argv[1], region_name="us-east-1",
                 aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
print(c.generate_presigned_url("list_functions", ExpiresIn=300))
"#;
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .args(["-c", script, &endpoint, ROOT_KEY_ID, ROOT_SECRET])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
            .output()
    })
    .await
    .expect("task")
    .expect("python3 with boto3 (CI installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let (status, _, text) = answer(server.http().get(&url).send().await.expect("answer")).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).expect("json");
    assert!(v["Functions"].is_array(), "{text}");
    // Change one character of the signature: refused.
    let tampered = match url.strip_suffix('0') {
        Some(rest) => format!("{rest}1"),
        None => format!("{}0", &url[..url.len() - 1]),
    };
    let (status, kind, _) = answer(server.http().get(&tampered).send().await.expect("answer")).await;
    assert_eq!((status, kind.as_str()), (403, "InvalidSignatureException"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_generated_root_key_is_kept_private_and_kumo_env_points_the_aws_cli_at_it() {
    use std::os::unix::fs::PermissionsExt;
    // Empty variables count as unset: the server generates its own key.
    let unset = [("KUMO_ROOT_ACCESS_KEY_ID", ""), ("KUMO_ROOT_SECRET_ACCESS_KEY", "")];
    let mut server = Server::start_with_env(&[], &unset);
    let banner = server.output.lock().expect("output").join("\n");
    assert!(banner.contains("generated the account's root credentials"), "{banner}");
    let file = server.data_dir.join("root-credentials.json");
    assert_eq!(std::fs::metadata(&file).expect("credentials file").permissions().mode() & 0o777, 0o600);
    let stored: Value = serde_json::from_slice(&std::fs::read(&file).expect("read")).expect("json");
    let secret = stored["SecretAccessKey"].as_str().expect("secret").to_string();
    assert!(banner.contains(&secret), "the first start shows the secret once");

    let env = Command::new(kumo_bin())
        .args(["env", "--data-dir"])
        .arg(&server.data_dir)
        .args(["--endpoint", &server.endpoint])
        .env_remove("KUMO_ROOT_ACCESS_KEY_ID")
        .output()
        .expect("kumo env");
    assert!(env.status.success(), "{}", String::from_utf8_lossy(&env.stderr));
    let exports = String::from_utf8_lossy(&env.stdout).into_owned();
    assert!(exports.contains("export AWS_EC2_METADATA_DISABLED=true"), "{exports}");
    // The AWS CLI, configured only by those lines, is let in.
    let mut aws = Command::new("aws");
    aws.args(["lambda", "list-functions"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials");
    for line in exports.lines() {
        if let Some((k, v)) = line.strip_prefix("export ").and_then(|l| l.split_once('=')) {
            aws.env(k, v.trim_matches('\''));
        }
    }
    let listed = aws.output().expect("aws");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\"Functions\""));

    // A restart keeps the key and does not show the secret again.
    server.stop();
    let data_dir = server.data_dir.clone();
    let again = Server::start_in_with_env(&data_dir, &[], &unset);
    let banner = again.output.lock().expect("output").join("\n");
    assert!(!banner.contains(&secret), "{banner}");
    assert!(banner.contains("requests must be signed (SigV4)"), "{banner}");
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_none_lets_anyone_in_and_says_so_at_every_start() {
    let server = Server::start_with(&["--auth", "none"]);
    let banner = server.output.lock().expect("output").join("\n");
    assert!(banner.contains("WARNING: --auth none"), "{banner}");
    let (status, _, text) =
        answer(server.http().get(format!("{}/2015-03-31/functions", server.endpoint)).send().await.expect("answer"))
            .await;
    assert_eq!(status, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_token_opens_the_metrics_route_and_nothing_else() {
    let server = Server::start_with_env(&[], &[("KUMO_METRICS_TOKEN", "scrape-me-0123456789")]);
    let http = server.http();
    let metrics = format!("{}/_kumo/metrics", server.endpoint);
    let ok = http.get(&metrics).bearer_auth("scrape-me-0123456789").send().await.expect("scrape");
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.expect("text").contains("kumo_concurrent_executions"));
    for token in [None, Some("wrong-token")] {
        let mut req = http.get(&metrics);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("refused scrape");
        assert_eq!(resp.status(), 403, "{token:?}");
    }
    let elsewhere = http
        .get(format!("{}/2015-03-31/functions", server.endpoint))
        .bearer_auth("scrape-me-0123456789")
        .send()
        .await
        .expect("other route");
    assert_eq!(elsewhere.status(), 403, "the token opens the metrics route only");
}
