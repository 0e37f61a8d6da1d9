//! `cargo bench --bench s3`: the object store and its triggers, measured on the
//! real `kumo` binary from aws-sdk-s3 clients on loopback.
//!
//! - PUT and GET throughput of 4 KB and 1 MB objects at concurrency 16;
//! - the latency from PutObject returning to the triggered handler starting,
//!   with a warm environment (the handler logs its wall-clock start).
//!
//! Figures are medians and percentiles of real requests; nothing is asserted.
//! The clients run on the same machine as the server and share its CPUs.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;

const ROOT_KEY_ID: &str = "AKIAKUMOBENCHROOT001";
const ROOT_SECRET: &str = "kumo-bench-root-secret";
const ACCOUNT: &str = "000000000000";

struct Server {
    child: Child,
    endpoint: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn start_server(data_dir: &std::path::Path) -> Server {
    let kumo =
        std::env::var_os("KUMO_BENCH_KUMO").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_kumo").into());
    let mut child = Command::new(kumo)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(std::env::var("KUMO_BENCH_SERVER_ARGS").unwrap_or_default().split_whitespace())
        .env("RUST_LOG", "kumo=warn")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
        .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kumo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let endpoint = loop {
        let line = lines.next().expect("kumo exited").expect("read");
        if let Some(rest) = line.strip_prefix("Kumo listening on ") {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, endpoint }
}

fn credentials() -> aws_sdk_s3::config::Credentials {
    aws_sdk_s3::config::Credentials::new(ROOT_KEY_ID, ROOT_SECRET, None, None, "bench")
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(credentials())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Requests per second and MB/s of `op` run by `concurrency` clients for `seconds`.
async fn throughput<F, Fut>(concurrency: usize, seconds: u64, op: F) -> (f64, Vec<f64>)
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0;
            while Instant::now() < until {
                let start = Instant::now();
                op(w, i).await;
                latencies.push(start.elapsed().as_secs_f64() * 1e3);
                i += 1;
            }
            latencies
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    (rate, all)
}

async fn put_get(s3: &aws_sdk_s3::Client, size: usize, label: &str) {
    let body = bytes::Bytes::from(vec![42u8; size]);
    let bucket = format!("bench-{}", label.to_ascii_lowercase());
    s3.create_bucket().bucket(&bucket).send().await.expect("bucket");
    for (name, seconds) in [("warm-up", 2), ("PUT", 8)] {
        let (s3c, b, body) = (s3.clone(), bucket.clone(), body.clone());
        let (rate, lat) = throughput(16, seconds, move |w, i| {
            let (s3c, b, body) = (s3c.clone(), b.clone(), body.clone());
            async move {
                s3c.put_object()
                    .bucket(b)
                    .key(format!("o/{w}/{}", i % 64))
                    .body(ByteStream::from(body))
                    .send()
                    .await
                    .expect("put");
            }
        })
        .await;
        if name == "PUT" {
            println!(
                "PUT {label:>4} objects, concurrency 16: {rate:>7.0} req/s  {:>7.1} MB/s  latency p50 {:.2} ms  p99 {:.2} ms",
                rate * size as f64 / 1e6,
                pct(&lat, 0.5),
                pct(&lat, 0.99)
            );
        }
    }
    let (s3c, b) = (s3.clone(), bucket.clone());
    let (rate, lat) = throughput(16, 8, move |w, i| {
        let (s3c, b) = (s3c.clone(), b.clone());
        async move {
            let out = s3c.get_object().bucket(b).key(format!("o/{w}/{}", i % 64)).send().await.expect("get");
            let _ = out.body.collect().await.expect("body");
        }
    })
    .await;
    println!(
        "GET {label:>4} objects, concurrency 16: {rate:>7.0} req/s  {:>7.1} MB/s  latency p50 {:.2} ms  p99 {:.2} ms",
        rate * size as f64 / 1e6,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

/// The logged handler start (ns since the epoch) of the invocation `key` triggered.
async fn handler_start(http: &reqwest::Client, endpoint: &str, key: &str) -> Option<i128> {
    let body =
        serde_json::json!({"logGroupName": "/aws/lambda/stamp", "filterPattern": format!("\"HANDLER-START {key} \"")});
    let mut req = http
        .post(format!("{endpoint}/"))
        .header("x-amz-target", "Logs_20140328.FilterLogEvents")
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string())
        .build()
        .expect("request");
    let root = kumo::cli::client::ClientCredentials {
        access_key_id: ROOT_KEY_ID.into(),
        secret_access_key: ROOT_SECRET.into(),
        session_token: None,
    };
    kumo::cli::client::sign_request(&mut req, &root, "us-east-1").expect("sign");
    let out: serde_json::Value = http.execute(req).await.ok()?.json().await.ok()?;
    out["events"].as_array()?.iter().find_map(|e| {
        let m = e["message"].as_str()?;
        let rest = m.split(&format!("HANDLER-START {key} ")).nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

async fn trigger_latency(endpoint: &str, s3: &aws_sdk_s3::Client) {
    let conf = |b: aws_sdk_lambda::config::Builder| {
        b.behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(credentials())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    };
    let lambda = aws_sdk_lambda::Client::from_conf(conf(aws_sdk_lambda::Config::builder()));
    let iam = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::Config::builder()
            .behavior_version(aws_sdk_iam::config::BehaviorVersion::latest())
            .region(aws_sdk_iam::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(credentials())
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build(),
    );
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role().role_name("bench").assume_role_policy_document(trust).send().await.expect("role");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/s3_stamp.py");
    let mut zip = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut zip));
        w.start_file("app.py", zip::write::SimpleFileOptions::default().unix_permissions(0o644)).expect("zip");
        std::io::Write::write_all(&mut w, &std::fs::read(fixture).expect("fixture")).expect("zip");
        w.finish().expect("zip");
    }
    lambda
        .create_function()
        .function_name("stamp")
        .runtime("python3.12".into())
        .handler("app.handler")
        .role(format!("arn:aws:iam::{ACCOUNT}:role/bench"))
        .code(
            aws_sdk_lambda::types::FunctionCode::builder().zip_file(aws_sdk_lambda::primitives::Blob::new(zip)).build(),
        )
        .send()
        .await
        .expect("function");
    lambda
        .add_permission()
        .function_name("stamp")
        .statement_id("s3")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .source_arn("arn:aws:s3:::trigger")
        .send()
        .await
        .expect("permission");
    s3.create_bucket().bucket("trigger").send().await.expect("bucket");
    let config = aws_sdk_s3::types::NotificationConfiguration::builder()
        .lambda_function_configurations(
            aws_sdk_s3::types::LambdaFunctionConfiguration::builder()
                .lambda_function_arn(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:stamp"))
                .events(aws_sdk_s3::types::Event::from("s3:ObjectCreated:*"))
                .build()
                .expect("config"),
        )
        .build();
    s3.put_bucket_notification_configuration()
        .bucket("trigger")
        .notification_configuration(config)
        .send()
        .await
        .expect("notify");
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let now_ns =
        || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as i128;
    let mut samples = Vec::new();
    let mut from_send = Vec::new();
    for i in 0..230 {
        let key = format!("k{i}");
        let sent = now_ns();
        s3.put_object().bucket("trigger").key(&key).body(ByteStream::from_static(b"x")).send().await.expect("put");
        let returned = now_ns();
        let deadline = Instant::now() + Duration::from_secs(30);
        let started = loop {
            if let Some(ns) = handler_start(&http, endpoint, &key).await {
                break ns;
            }
            assert!(Instant::now() < deadline, "the handler never started for {key}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // The first 30 include the cold start and warm-up.
        if i >= 30 {
            samples.push((started - returned) as f64 / 1e6);
            from_send.push((started - sent) as f64 / 1e6);
        }
    }
    samples.sort_by(f64::total_cmp);
    from_send.sort_by(f64::total_cmp);
    println!(
        "PutObject sent -> triggered handler started (the same uploads): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms",
        pct(&from_send, 0.5),
        pct(&from_send, 0.9),
        pct(&from_send, 0.99)
    );
    println!(
        "PutObject returned -> triggered handler started (warm python3.12, 200 sequential uploads): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  min {:.2} ms",
        pct(&samples, 0.5),
        pct(&samples, 0.9),
        pct(&samples, 0.99),
        samples[0]
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let tmp = tempfile::tempdir().expect("tmp");
    let server = start_server(tmp.path());
    rt.block_on(async {
        let s3 = s3_client(&server.endpoint);
        if std::env::var("KUMO_BENCH_ONLY").as_deref() != Ok("trigger") {
            put_get(&s3, 4 * 1024, "4KB").await;
            put_get(&s3, 1024 * 1024, "1MB").await;
        }
        trigger_latency(&server.endpoint, &s3).await;
    });
}
