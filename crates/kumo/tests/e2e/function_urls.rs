//! Function URLs end to end: configurations through aws-sdk-lambda, requests
//! with curl (a `*.lambda-url.<region>.localhost` host resolved to 127.0.0.1)
//! and SigV4-signed HTTP for `AWS_IAM` URLs.

use std::process::Command;

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::types::{Cors, FunctionUrlAuthType, InvokeMode};
use serde_json::{Value, json};

use crate::harness::*;

const ACCOUNT: &str = "000000000000";

/// One HTTP exchange as curl saw it.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `host:port` of a function URL (`http://<id>.lambda-url.<region>.localhost:<port>/`).
fn host_of(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Runs curl against `url`, resolving the URL's host to 127.0.0.1.
fn curl(url: &str, args: &[&str]) -> Answer {
    let dir = tempfile::tempdir().expect("tmp");
    let body_path = dir.path().join("body");
    let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--noproxy", "*", "-D", "-", "-o"]).arg(&body_path);
    if !host.starts_with("127.0.0.1") {
        cmd.arg("--resolve").arg(format!("{host}:127.0.0.1"));
    }
    let out = cmd.args(args).arg(url).output().expect("curl");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let dump = String::from_utf8_lossy(&out.stdout).into_owned();
    // The last block: a `100 Continue` (large bodies) comes before the answer.
    let head = dump.split("\r\n\r\n").filter(|b| !b.trim().is_empty()).last().unwrap_or_default();
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    Answer { status, headers, body: std::fs::read(&body_path).unwrap_or_default() }
}

fn status_of<E>(e: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>) -> u16 {
    e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0)
}

async fn public_url(lambda: &aws_sdk_lambda::Client, function: &str) -> String {
    let cors = Cors::builder()
        .allow_origins("https://app.example")
        .allow_methods("GET")
        .allow_methods("POST")
        .allow_headers("x-custom")
        .expose_headers("x-app")
        .max_age(300)
        .allow_credentials(true)
        .build();
    let created = lambda
        .create_function_url_config()
        .function_name(function)
        .auth_type(FunctionUrlAuthType::None)
        .cors(cors)
        .send()
        .await
        .expect("create url config");
    assert_eq!(created.function_arn(), format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}"));
    assert_eq!(created.auth_type(), &FunctionUrlAuthType::None);
    assert_eq!(created.invoke_mode(), Some(&InvokeMode::Buffered));
    assert_eq!(created.cors().map(|c| c.allow_methods()), Some(&["GET".to_string(), "POST".to_string()][..]));
    assert!(!created.creation_time().is_empty());
    created.function_url().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_url_serves_the_functions_http_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    create_python(&lambda, "web", "python3.12", "python/url_app.py").await;
    let url = public_url(&lambda, "web").await;
    let host = host_of(&url);
    let id = host.split('.').next().unwrap_or_default().to_string();
    assert_eq!(id.len(), 32, "{url}");
    assert!(id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()), "{url}");
    assert!(host.contains(".lambda-url.us-east-1.localhost:"), "{url}");

    // Without a resource policy letting anyone invoke the URL, nobody may.
    let refused = curl(&format!("{url}hello"), &[]);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json(), json!({"Message": "Forbidden"}));
    lambda
        .add_permission()
        .function_name("web")
        .statement_id("FunctionURLAllowPublicAccess")
        .action("lambda:InvokeFunctionUrl")
        .principal("*")
        .function_url_auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("add permission");

    // statusCode, headers, cookies and body; configured CORS wins over the function's.
    let hello = curl(&format!("{url}hello?x=1"), &["-H", "Origin: https://app.example"]);
    assert_eq!(hello.status, 201, "{}", hello.text());
    assert_eq!(hello.text(), "hello GET /hello");
    assert_eq!(hello.header("content-type"), Some("text/plain"));
    assert_eq!(hello.header("x-app"), Some("yes"));
    assert_eq!(hello.all("set-cookie"), ["session=abc; Path=/; HttpOnly", "theme=dark"]);
    assert_eq!(hello.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(hello.header("access-control-expose-headers"), Some("x-app"));
    assert_eq!(hello.header("access-control-allow-credentials"), Some("true"));
    assert!(hello.header("x-amzn-requestid").is_some());

    // The event: payload format 2.0.
    let posted = curl(
        &format!("{url}event?a=1&a=2&b=x%20y"),
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
            "Cookie: c1=v1; c2=v2",
            "-H",
            "X-Multi: m1",
            "-H",
            "X-Multi: m2",
            "-A",
            "kumo-test",
            "--data-binary",
            r#"{"k":"v"}"#,
        ],
    );
    assert_eq!(posted.status, 200, "{}", posted.text());
    let event = posted.json();
    assert_eq!(event["version"], "2.0");
    assert_eq!(event["routeKey"], "$default");
    assert_eq!(event["rawPath"], "/event");
    assert_eq!(event["rawQueryString"], "a=1&a=2&b=x%20y");
    assert_eq!(event["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
    assert_eq!(event["cookies"], json!(["c1=v1", "c2=v2"]));
    assert!(event["headers"].get("cookie").is_none(), "{event}");
    assert_eq!(event["headers"]["x-multi"], "m1,m2");
    assert_eq!(event["headers"]["content-type"], "application/json");
    assert_eq!(event["body"], r#"{"k":"v"}"#);
    assert_eq!(event["isBase64Encoded"], false);
    let ctx = &event["requestContext"];
    assert_eq!(ctx["accountId"], "anonymous");
    assert_eq!(ctx["apiId"], id.as_str());
    assert_eq!(ctx["domainPrefix"], id.as_str());
    assert_eq!(ctx["domainName"], format!("{id}.lambda-url.us-east-1.localhost"));
    assert_eq!(ctx["http"]["method"], "POST");
    assert_eq!(ctx["http"]["path"], "/event");
    assert_eq!(ctx["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ctx["http"]["userAgent"], "kumo-test");
    assert_eq!(ctx["stage"], "$default");
    assert_eq!(ctx["requestId"].as_str(), posted.header("x-amzn-requestid"));
    assert!(ctx["timeEpoch"].as_i64().is_some_and(|t| t > 1_600_000_000_000), "{ctx}");
    assert!(ctx.get("authorizer").is_none(), "{ctx}");

    // A binary body arrives base64-encoded and a base64 answer leaves as bytes.
    let bytes: Vec<u8> = (0..=255u8).collect();
    let file = tmp.path().join("bytes.bin");
    std::fs::write(&file, &bytes).expect("write bytes");
    let binary = curl(
        &format!("{url}binary"),
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
    );
    assert_eq!(binary.status, 200, "{}", binary.text());
    assert_eq!(binary.header("x-length"), Some("256"));
    assert_eq!(binary.body, bytes.iter().rev().copied().collect::<Vec<u8>>());
    assert_eq!(binary.header("content-type"), Some("application/octet-stream"));

    // Any other JSON is a 200 application/json body; a handler error is a 502.
    let plain = curl(&format!("{url}plain"), &[]);
    assert_eq!((plain.status, plain.header("content-type")), (200, Some("application/json")));
    assert_eq!(plain.json()["message"], "plain");
    assert_eq!(plain.json()["request_id"].as_str(), plain.header("x-amzn-requestid"));
    let fail = curl(&format!("{url}fail"), &[]);
    assert_eq!(fail.status, 502, "{}", fail.text());
    assert_eq!(fail.text(), "Internal Server Error");

    // A preflight is answered from the configuration; the function never sees it.
    let preflight = curl(
        &format!("{url}hello"),
        &["-X", "OPTIONS", "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: POST"],
    );
    assert_eq!(preflight.status, 200, "{}", preflight.text());
    assert!(preflight.body.is_empty(), "{}", preflight.text());
    assert_eq!(preflight.header("access-control-allow-origin"), Some("https://app.example"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET,POST"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("x-custom"));
    assert_eq!(preflight.header("access-control-max-age"), Some("300"));
    let elsewhere = curl(
        &format!("{url}hello"),
        &["-X", "OPTIONS", "-H", "Origin: https://evil.example", "-H", "Access-Control-Request-Method: POST"],
    );
    assert_eq!((elsewhere.status, elsewhere.header("access-control-allow-origin")), (200, None));

    // The path form, for clients that cannot set a Host.
    let port = host.rsplit(':').next().unwrap_or_default();
    let by_path = curl(&format!("http://127.0.0.1:{port}/_kumo/url/{id}/hello"), &[]);
    assert_eq!((by_path.status, by_path.text()), (201, "hello GET /hello".to_string()));

    // A second configuration for the same function is a conflict, worded as Lambda's.
    let e = lambda
        .create_function_url_config()
        .function_name("web")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect_err("second create");
    assert_eq!(status_of(&e), 409);
    assert_eq!(e.code(), Some("ResourceConflictException"));
    assert_eq!(
        e.message(),
        Some(
            format!("Failed to create function url config for [functionArn = arn:aws:lambda:us-east-1:{ACCOUNT}:function:web]. Error message:  FunctionUrlConfig exists for this Lambda function")
                .as_str()
        )
    );

    // Get, Update, List; an alias's URL goes with the alias.
    let got = lambda.get_function_url_config().function_name("web").send().await.expect("get");
    assert_eq!(got.function_url(), url);
    assert!(!got.last_modified_time().is_empty());
    let updated = lambda
        .update_function_url_config()
        .function_name("web")
        .invoke_mode(InvokeMode::ResponseStream)
        .send()
        .await
        .expect("update");
    assert_eq!(updated.invoke_mode(), Some(&InvokeMode::ResponseStream));
    assert_eq!(updated.auth_type(), &FunctionUrlAuthType::None, "what the update does not name stays");
    assert_eq!(updated.function_url(), url);
    let streamed = curl(&format!("{url}hello"), &[]);
    assert_eq!(streamed.status, 201, "RESPONSE_STREAM is served (buffered)");
    lambda.publish_version().function_name("web").send().await.expect("publish");
    lambda.create_alias().function_name("web").name("live").function_version("1").send().await.expect("alias");
    let alias_url = lambda
        .create_function_url_config()
        .function_name("web")
        .qualifier("live")
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect("alias url");
    assert_eq!(alias_url.function_arn(), format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:web:live"));
    assert_ne!(alias_url.function_url(), url);
    let listed = lambda.list_function_url_configs().function_name("web").send().await.expect("list");
    assert_eq!(listed.function_url_configs().len(), 2);
    let first = lambda.list_function_url_configs().function_name("web").max_items(1).send().await.expect("page");
    assert_eq!(first.function_url_configs().len(), 1);
    let rest = lambda
        .list_function_url_configs()
        .function_name("web")
        .marker(first.next_marker().expect("a next page"))
        .send()
        .await
        .expect("page 2");
    assert_eq!(rest.function_url_configs().len(), 1);
    assert_eq!(rest.next_marker(), None);
    lambda.delete_alias().function_name("web").name("live").send().await.expect("delete alias");
    let listed = lambda.list_function_url_configs().function_name("web").send().await.expect("list");
    assert_eq!(listed.function_url_configs().len(), 1, "the alias's URL went with it");

    // Durable: after a restart the URL has the same id (on the new port) and still works.
    server.stop();
    let server = Server::start_in(&data, &[]);
    let lambda = server.lambda();
    let again = lambda.get_function_url_config().function_name("web").send().await.expect("get after restart");
    assert!(again.function_url().starts_with(&format!("http://{id}.lambda-url.us-east-1.localhost:")));
    let after = curl(&format!("{}hello", again.function_url()), &[]);
    assert_eq!((after.status, after.text()), (201, "hello GET /hello".to_string()));

    // Deleted: the URL is gone.
    lambda.delete_function_url_config().function_name("web").send().await.expect("delete");
    let gone = curl(&format!("{}hello", again.function_url()), &[]);
    assert_eq!(gone.status, 403);
    let e = lambda.get_function_url_config().function_name("web").send().await.expect_err("deleted");
    assert_eq!((status_of(&e), e.code()), (404, Some("ResourceNotFoundException")));
    assert_eq!(e.message(), Some("The resource you requested does not exist."));
}

/// An IAM user with an access key, and optionally an inline policy.
async fn user_with_key(server: &Server, name: &str, policy: Option<Value>) -> (String, String) {
    let iam = server.iam();
    iam.create_user().user_name(name).send().await.expect("create user");
    if let Some(policy) = policy {
        iam.put_user_policy()
            .user_name(name)
            .policy_name("url")
            .policy_document(policy.to_string())
            .send()
            .await
            .expect("policy");
    }
    let key = iam.create_access_key().user_name(name).send().await.expect("key");
    let key = key.access_key().expect("access key");
    (key.access_key_id().to_string(), key.secret_access_key().to_string())
}

/// A GET signed (SigV4, service `lambda`) with the given key, the URL's host
/// resolved to 127.0.0.1.
async fn signed_get(url: &str, key: &(String, String)) -> (u16, Value) {
    let host = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_string();
    let name = host.split(':').next().unwrap_or_default().to_string();
    let port: u16 = host.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let client = reqwest::Client::builder()
        .no_proxy()
        .resolve(&name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .expect("client");
    let mut request = client.get(url).build().expect("request");
    let credentials = kumo::cli::client::ClientCredentials {
        access_key_id: key.0.clone(),
        secret_access_key: key.1.clone(),
        session_token: None,
    };
    kumo::cli::client::sign_request(&mut request, &credentials, "us-east-1").expect("sign");
    let resp = client.execute(request).await.expect("send");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_iam_url_needs_a_signature_and_the_permission() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "private", "python3.12", "python/url_app.py").await;
    let created = lambda
        .create_function_url_config()
        .function_name("private")
        .auth_type(FunctionUrlAuthType::AwsIam)
        .send()
        .await
        .expect("create url config");
    let url = created.function_url().to_string();
    let arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:private");
    let allowed = user_with_key(
        &server,
        "caller",
        Some(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": arn,
             "Condition": {"StringEquals": {"lambda:FunctionUrlAuthType": "AWS_IAM"}}}
        ]})),
    )
    .await;
    let stranger = user_with_key(&server, "stranger", None).await;

    let unsigned = curl(&format!("{url}event"), &[]);
    assert_eq!(unsigned.status, 403, "{}", unsigned.text());
    assert_eq!(unsigned.json(), json!({"Message": "Forbidden"}));

    let (status, event) = signed_get(&format!("{url}event"), &allowed).await;
    assert_eq!(status, 200, "{event}");
    let iam = &event["requestContext"]["authorizer"]["iam"];
    assert_eq!(iam["userArn"], format!("arn:aws:iam::{ACCOUNT}:user/caller"));
    assert_eq!(iam["accessKey"], allowed.0.as_str());
    assert_eq!(iam["accountId"], ACCOUNT);
    assert_eq!(event["requestContext"]["accountId"], ACCOUNT);

    let (status, body) = signed_get(&format!("{url}event"), &stranger).await;
    assert_eq!((status, body), (403, json!({"Message": "Forbidden"})));
    // A wrong secret is no signature at all.
    let (status, _) = signed_get(&format!("{url}event"), &(allowed.0.clone(), "wrong".to_string())).await;
    assert_eq!(status, 403);
    // The root may do anything, through the path form too.
    let id = host_of(&url).split('.').next().unwrap_or_default().to_string();
    let path_url = format!("{}/_kumo/url/{id}/hello", server.endpoint);
    let (status, _) = signed_get(&path_url, &(ROOT_KEY_ID.to_string(), ROOT_SECRET.to_string())).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_url_configurations_are_refused_as_lambda_refuses_them() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "cfg", "python3.12", "python/url_app.py").await;

    let e = lambda
        .create_function_url_config()
        .function_name("cfg")
        .auth_type(FunctionUrlAuthType::from("OPEN"))
        .send()
        .await
        .expect_err("bad auth type");
    assert_eq!((status_of(&e), e.code()), (400, Some("ValidationException")));
    assert!(e.message().unwrap_or_default().contains("Value 'OPEN' at 'authType'"), "{e:?}");

    for qualifier in ["$LATEST", "1"] {
        let e = lambda
            .create_function_url_config()
            .function_name("cfg")
            .qualifier(qualifier)
            .auth_type(FunctionUrlAuthType::None)
            .send()
            .await
            .expect_err("bad qualifier");
        assert_eq!((status_of(&e), e.code()), (400, Some("ValidationException")), "{qualifier}");
    }
    let e = lambda
        .create_function_url_config()
        .function_name("cfg")
        .auth_type(FunctionUrlAuthType::None)
        .cors(Cors::builder().max_age(86_401).build())
        .send()
        .await
        .expect_err("max age");
    assert_eq!(status_of(&e), 400, "{e:?}");
    let e = lambda.get_function_url_config().function_name("cfg").send().await.expect_err("none yet");
    assert_eq!((status_of(&e), e.code()), (404, Some("ResourceNotFoundException")));
    let e = lambda
        .create_function_url_config()
        .function_name("nope")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect_err("no function");
    assert_eq!(status_of(&e), 404);

    // The raw wire: status and x-amzn-ErrorType, as an SDK reads them.
    let resp = server
        .send(
            server
                .http()
                .post(format!("{}/2021-10-31/functions/cfg/url", server.endpoint))
                .body(r#"{"AuthType":"OPEN"}"#),
        )
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()), Some("ValidationException"));

    // Over the 6 MB synchronous payload: 413; no concurrency left: 429.
    let url = lambda
        .create_function_url_config()
        .function_name("cfg")
        .auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("url")
        .function_url()
        .to_string();
    lambda
        .add_permission()
        .function_name("cfg")
        .statement_id("public")
        .action("lambda:InvokeFunctionUrl")
        .principal("*")
        .function_url_auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("add permission");
    let tmp = tempfile::tempdir().expect("tmp");
    let big = tmp.path().join("big.txt");
    std::fs::write(&big, vec![b'a'; 7 * 1024 * 1024]).expect("write");
    let too_big = curl(
        &format!("{url}plain"),
        &["-X", "POST", "-H", "content-type: text/plain", "--data-binary", &format!("@{}", big.display())],
    );
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    assert_eq!(too_big.header("x-amzn-errortype"), Some("RequestEntityTooLargeException"));
    lambda.put_function_concurrency().function_name("cfg").reserved_concurrent_executions(0).send().await.expect("0");
    let throttled = curl(&format!("{url}plain"), &[]);
    assert_eq!(throttled.status, 429, "{}", throttled.text());
    assert_eq!(throttled.json(), json!({"Message": "Rate Exceeded."}));

    // A URL host that names no URL is refused, never taken for an S3 bucket.
    let port = server.endpoint.rsplit(':').next().unwrap_or_default().to_string();
    let unknown = curl(&format!("http://{}.lambda-url.us-east-1.localhost:{port}/", "a".repeat(32)), &[]);
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.json(), json!({"Message": "Forbidden"}));
}

/// `kumo deploy` then `kumo url --create`: the printed URL answers curl at once
/// (the public permission came with it), and `kumo url` prints the same URL again.
#[test]
fn kumo_url_creates_and_prints_a_public_url() {
    let server = Server::start();
    let runtime = crate::cli::python_runtime(&server);
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/url_app.py"),
        dir.path().join("app.py"),
    )
    .expect("copy the app");
    let kumo = |args: &[&str]| {
        let what = format!("kumo {}", args.join(" "));
        crate::cli::run(server.cli().args(args), &what).ok(&what)
    };
    kumo(&[
        "deploy",
        dir.path().to_str().expect("path"),
        "--name",
        "site",
        "--runtime",
        &runtime,
        "--handler",
        "app.handler",
    ]);
    let created = kumo(&["url", "site", "--create"]);
    let url = created.stdout.trim().to_string();
    assert!(url.starts_with("http://") && url.contains(".lambda-url.us-east-1.localhost:"), "{url}");
    assert!(created.stderr.contains("AuthType NONE") && created.stderr.contains("/_kumo/url/"), "{}", created.stderr);
    let answer = curl(&format!("{url}plain"), &[]);
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["message"], "plain");
    assert_eq!(kumo(&["url", "site"]).stdout.trim(), url, "the same URL, stable");
    let missing = crate::cli::run(server.cli().args(["url", "nothing-here"]), "kumo url nothing-here");
    assert!(!missing.success && missing.stderr.contains("ResourceNotFoundException"), "{}", missing.stderr);
}

/// A `lambda_runtime` handler that streams (`StreamResponse`) behind a
/// RESPONSE_STREAM URL: its prelude's status, headers and cookies and the
/// streamed body reach curl (piece-by-piece delivery: `streaming.rs`).
#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_handler_answers_through_its_url() {
    let server = Server::start();
    let lambda = server.lambda();
    let binary = std::fs::read(example_binary("stream_function")).expect("stream_function binary");
    lambda
        .create_function()
        .function_name("streamer")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(ROLE)
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(zip_of(&[("bootstrap", &binary, 0o755)])))
                .build(),
        )
        .send()
        .await
        .expect("create streamer");
    let url = lambda
        .create_function_url_config()
        .function_name("streamer")
        .auth_type(FunctionUrlAuthType::None)
        .invoke_mode(InvokeMode::ResponseStream)
        .send()
        .await
        .expect("create url")
        .function_url()
        .to_string();
    lambda
        .add_permission()
        .function_name("streamer")
        .statement_id("public")
        .action("lambda:InvokeFunctionUrl")
        .principal("*")
        .function_url_auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("permission");
    let answer = tokio::task::spawn_blocking(move || curl(&format!("{url}live"), &[])).await.expect("curl");
    assert_eq!(answer.status, 202, "{}", answer.text());
    assert_eq!(answer.header("x-streamed"), Some("yes"));
    assert_eq!(answer.header("content-type"), Some("text/plain"));
    assert_eq!(answer.all("set-cookie"), ["flavour=chunked; Path=/"]);
    assert_eq!(answer.text(), "streamed from /live");
}
