//! The web dashboard: sign-in, pages filtered by what the principal may read,
//! the Test page's invoke with its anti-forgery token, and (when Chromium and
//! playwright-core are installed) the same in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{ROOT_KEY_ID, ROOT_SECRET, Server, create_python, invoke};

const PREFIX: &str = "/_kumo/dashboard";

/// A browser-like client: no redirects followed, cookies carried by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Browser { http, base: format!("{}{PREFIX}", server.endpoint), cookie: None }
    }

    async fn sign_in(&mut self, key: &str, secret: &str) -> reqwest::StatusCode {
        let body = format!("access_key_id={}&secret_access_key={}", enc(key), enc(secret));
        let resp = self
            .http
            .post(format!("{}/signin", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("sign in");
        if let Some(c) = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()) {
            assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"), "{c}");
            self.cookie = c.split(';').next().map(str::to_string);
        }
        resp.status()
    }

    async fn get(&self, path: &str) -> (reqwest::StatusCode, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("get");
        let status = resp.status();
        let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = resp.text().await.unwrap_or_default();
        (status, if status.is_redirection() { location } else { body })
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (reqwest::StatusCode, String) {
        let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.expect("post");
        let status = resp.status();
        (status, resp.text().await.unwrap_or_default())
    }

    /// The anti-forgery token of a page's forms.
    async fn csrf(&self, path: &str) -> String {
        let (_, page) = self.get(path).await;
        let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
        page[at..].split('"').next().unwrap_or_default().to_string()
    }
}

fn enc(s: &str) -> String {
    crate::harness::form_encode(s)
}

async fn user_with_policy(server: &Server, name: &str, policy: Option<&str>) -> (String, String) {
    let iam = server.iam();
    iam.create_user().user_name(name).send().await.expect("create user");
    if let Some(policy) = policy {
        iam.put_user_policy()
            .user_name(name)
            .policy_name("dashboard")
            .policy_document(policy)
            .send()
            .await
            .expect("put user policy");
    }
    let key = iam.create_access_key().user_name(name).send().await.expect("create key");
    let key = key.access_key().expect("key");
    (key.access_key_id().to_string(), key.secret_access_key().to_string())
}

#[tokio::test]
async fn the_dashboard_shows_each_principal_what_it_may_read() {
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "dash-a", "python3.12", "python/dashboard.py").await;
    create_python(&lambda, "dash-b", "python3.12", "python/dashboard.py").await;
    for i in 0..2 {
        let out = lambda
            .invoke()
            .function_name("dash-a")
            .payload(aws_sdk_lambda::primitives::Blob::new(format!("{{\"marker\":\"dash-marker-{i}\"}}")))
            .send()
            .await
            .expect("invoke");
        assert!(out.function_error().is_none());
    }
    let _ = invoke(&lambda, "dash-b", serde_json::json!({})).await;
    // An S3 trigger, listed on the function's page.
    lambda
        .add_permission()
        .function_name("dash-a")
        .statement_id("s3-invoke")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::dash-uploads")
        .send()
        .await
        .expect("add permission");
    let s3 = server.s3();
    s3.create_bucket().bucket("dash-uploads").send().await.expect("create bucket");
    let trigger = aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
        .lambda_function_arn("arn:aws:lambda:us-east-1:000000000000:function:dash-a")
        .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
        .filter(
            aws_sdk_s3::types::NotificationConfigurationFilter::builder()
                .key(
                    aws_sdk_s3::types::S3KeyFilter::builder()
                        .filter_rules(
                            aws_sdk_s3::types::FilterRule::builder()
                                .name(aws_sdk_s3::types::FilterRuleName::Prefix)
                                .value("in/")
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .expect("trigger");
    s3.put_bucket_notification_configuration()
        .bucket("dash-uploads")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder().lambda_function_configurations(trigger).build(),
        )
        .send()
        .await
        .expect("notification configuration");

    let mut root = Browser::new(&server);
    let (status, location) = root.get("").await;
    assert_eq!(status, 303, "signed out: sent to sign in");
    assert!(location.ends_with("/_kumo/dashboard/signin"), "{location}");
    assert_eq!(root.sign_in(ROOT_KEY_ID, "not-the-secret").await, 401);
    assert_eq!(root.sign_in("AKIANOSUCHKEY0000000", ROOT_SECRET).await, 401);
    assert_eq!(root.sign_in(ROOT_KEY_ID, ROOT_SECRET).await, 303);

    let (status, overview) = root.get("?window=15m").await;
    assert_eq!(status, 200);
    for needle in ["/functions/dash-a\"", "/functions/dash-b\"", "<svg", "Async queue", "Budgets"] {
        assert!(overview.contains(needle), "overview lacks {needle}");
    }

    let (status, page) = root.get("/functions/dash-a").await;
    assert_eq!(status, 200);
    assert!(page.contains("Max memory used against memory size"));
    assert!(page.contains("python3.12") && page.contains("kumo-test-role"), "configuration shown");
    assert!(page.contains("s3://dash-uploads") && page.contains("prefix in/"), "S3 trigger shown");
    assert!(page.matches("<path class=").count() >= 4, "charts drew lines");
    let at = page.find("data-request-id=\"").expect("a recent invocation") + "data-request-id=\"".len();
    let request_id = page[at..].split('"').next().unwrap_or_default().to_string();

    let (status, inv) = root.get(&format!("/invocations/{request_id}")).await;
    assert_eq!(status, 200);
    assert!(inv.contains(&format!("REPORT RequestId: {request_id}")), "the invocation's REPORT line");
    assert!(inv.contains("Lineage"));

    let (status, logs) = root.get("/logs?pattern=dash-marker-1&window=15m").await;
    assert_eq!(status, 200);
    assert!(logs.contains("dash-marker-1") && !logs.contains("dash-marker-0"), "the pattern filtered");
    let (status, _) = root.get("/logs?pattern=%7B%20%24.x%20%3E").await;
    assert_eq!(status, 400, "a bad pattern is a 400, not a crash");

    let (status, tail) = root.get("/functions/dash-a/tail?after=0").await;
    assert_eq!(status, 200);
    assert!(tail.contains("START RequestId"));

    // The Test page: no token, no invoke; with it, the result and its request id.
    let (status, _) = root.post("/functions/dash-a/test", &[("payload", "{\"x\":1}"), ("action", "invoke")]).await;
    assert_eq!(status, 403, "a form without the anti-forgery token is refused");
    let csrf = root.csrf("/functions/dash-a/test").await;
    let (status, result) = root
        .post("/functions/dash-a/test", &[("csrf", &csrf), ("payload", "{\"x\":\"from-test\"}"), ("action", "invoke")])
        .await;
    assert_eq!(status, 200);
    assert!(result.contains("from-test") && result.contains("Succeeded"), "result shown");
    let (_, sample) =
        root.post("/functions/dash-a/test", &[("csrf", &csrf), ("sample", "sqs"), ("action", "sample")]).await;
    assert!(sample.contains("aws:sqs"), "a generated sample event fills the payload");

    // A user who may read dash-a only.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"lambda:ListFunctions","Resource":"*"},
        {"Effect":"Allow","Action":["lambda:GetFunction","logs:FilterLogEvents"],"Resource":[
            "arn:aws:lambda:us-east-1:000000000000:function:dash-a",
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/dash-a:*"]}]}"#;
    let (key, secret) = user_with_policy(&server, "viewer", Some(policy)).await;
    let mut viewer = Browser::new(&server);
    assert_eq!(viewer.sign_in(&key, &secret).await, 303);
    let (status, overview) = viewer.get("").await;
    assert_eq!(status, 200);
    assert!(overview.contains("/functions/dash-a\""), "the viewer sees dash-a");
    assert!(!overview.contains("/functions/dash-b\""), "but not dash-b");
    assert!(!overview.contains(">Cost<"), "nor costs without kumo:GetCost");
    assert_eq!(viewer.get("/functions/dash-b").await.0, 403);
    assert_eq!(viewer.get("/functions/dash-b/tail").await.0, 403);
    let (status, logs) = viewer.get("/logs?window=1h").await;
    assert_eq!(status, 200);
    assert!(!logs.contains("/aws/lambda/dash-b"), "only readable log groups are searched");
    let csrf = viewer.csrf("/functions/dash-a/test").await;
    let (status, refused) =
        viewer.post("/functions/dash-a/test", &[("csrf", &csrf), ("payload", "{}"), ("action", "invoke")]).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("lambda:InvokeFunction"));
    // Sign out ends the session (the cookie is cleared).
    let (status, _) = viewer.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);

    // A user with no policy sees nothing; a forged cookie is no session.
    let (key, secret) = user_with_policy(&server, "nobody", None).await;
    let mut nobody = Browser::new(&server);
    assert_eq!(nobody.sign_in(&key, &secret).await, 303);
    assert_eq!(nobody.get("").await.0, 403);
    nobody.cookie = Some(format!("kumo_session=99999999999999.{}.00", "41"));
    assert_eq!(nobody.get("").await.0, 303);
}

#[tokio::test]
async fn auth_none_needs_no_sign_in() {
    let server = Server::start_with(&["--auth", "none"]);
    let browser = Browser::new(&server);
    let (status, page) = browser.get("").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("--auth none"));
    let (status, css) = browser.get("/assets/dashboard.css").await;
    assert_eq!(status, 200);
    assert!(css.contains("prefers-color-scheme"));
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

#[tokio::test]
async fn the_dashboard_works_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string());
    let dir = browser_dir();
    let missing = if !Path::new(&chromium).exists() {
        Some(format!("{chromium} is not installed (apt-get install chromium)"))
    } else if !dir.join("node_modules/playwright-core").exists() {
        Some(format!("playwright-core is not installed (npm ci in {})", dir.display()))
    } else if Command::new("node").arg("--version").output().is_err() {
        Some("node is not installed".to_string())
    } else {
        None
    };
    if let Some(why) = missing {
        eprintln!("SKIPPED: the dashboard browser test did not run because {why}");
        return;
    }
    let server = Server::start();
    let lambda = server.lambda();
    create_python(&lambda, "browser-fn", "python3.12", "python/dashboard.py").await;
    for i in 0..3 {
        let _ = invoke(&lambda, "browser-fn", serde_json::json!({"n": i})).await;
    }
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("dashboard.mjs"))
        .current_dir(&dir)
        .env("KUMO_URL", &server.endpoint)
        .env("KUMO_KEY_ID", ROOT_KEY_ID)
        .env("KUMO_SECRET", ROOT_SECRET)
        .env("KUMO_FUNCTION", "browser-fn")
        .env("CHROMIUM", &chromium)
        .env("NO_PROXY", "127.0.0.1");
    // `KUMO_DASHBOARD_SCREENSHOTS=docs/screenshots` refreshes the README's pictures.
    if let Ok(shots) = std::env::var("KUMO_DASHBOARD_SCREENSHOTS") {
        cmd.env("KUMO_SCREENSHOTS", shots);
    }
    let status = tokio::task::spawn_blocking(move || cmd.status()).await.expect("join").expect("run node");
    assert!(status.success(), "the browser test failed: {status}");
}
