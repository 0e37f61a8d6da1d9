//! `cargo bench --bench invoke`: warm latency, throughput and cold starts of the
//! real `kumo` binary, measured from a client on loopback.
//!
//! The function is the `lambda_runtime` echo example (a `provided.al2023`
//! custom runtime) and, for Python cold starts, tests/fixtures/python/echo.py.
//! Figures are medians and percentiles of real requests; nothing is asserted.
//! `KUMO_BENCH_SERVER_ARGS` passes extra flags to `kumo serve`; `KUMO_BENCH_QUICK=1`
//! stops after the warm-latency figures; `KUMO_BENCH_ONLY=accept` measures only the
//! durable accept path of Event invokes; `KUMO_BENCH_ONLY=url` compares a
//! function URL with Invoke of the same function (1,769 MB, one CPU; another size
//! with `KUMO_BENCH_URL_MEMORY`).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;

const PAYLOAD: &str = r#"{"hello":"world"}"#;

/// Every request is signed (SigV4) with the root key the server is started with, as an SDK would.
const ROOT_KEY_ID: &str = "AKIAKUMOBENCHROOT001";
const ROOT_SECRET: &str = "kumo-bench-root-secret";

/// The SigV4 headers for a request, signed as the AWS SDKs sign (host, x-amz-date).
fn sign(method: &str, path_and_query: &str, host: &str, headers: &[(&str, &str)], body: &str) -> Vec<(String, String)> {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    let mut all: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
    all.push(("host", host.as_bytes()));
    let payload = kumo_core::sigv4::sha256_hex(body.as_bytes());
    let parts = kumo_core::sigv4::RequestParts { method, path, query, headers: &all, payload_sha256: &payload };
    let service = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("x-amz-target")) {
        "logs"
    } else if path == "/" {
        "iam"
    } else {
        "lambda"
    };
    let signer = kumo_core::sigv4::Signer {
        access_key_id: ROOT_KEY_ID,
        secret_access_key: ROOT_SECRET,
        session_token: None,
        region: "us-east-1",
        service,
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    signer.headers(&parts, &kumo_core::sigv4::format_amz_date(now as i64)).expect("sign")
}

struct Server {
    child: Child,
    addr: String,
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
        // KUMO_BENCH_SERVER_ARGS="--isolation none" compares against plain processes.
        .args(std::env::var("KUMO_BENCH_SERVER_ARGS").unwrap_or_default().split_whitespace())
        .env("RUST_LOG", "kumo=warn")
        .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
        .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kumo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines.next().expect("kumo exited").expect("read");
        if let Some(rest) = line.strip_prefix("Kumo listening on http://") {
            break rest.split_whitespace().next().unwrap_or_default().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr }
}

fn echo_zip() -> Vec<u8> {
    // KUMO_BENCH_ECHO=path uses an already built echo function (for profiling runs).
    let bin = match std::env::var_os("KUMO_BENCH_ECHO") {
        Some(path) => PathBuf::from(path),
        None => {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
            let status = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "--release", "--example", "echo_function", "--manifest-path"])
                .arg(&manifest)
                .status()
                .expect("cargo build");
            assert!(status.success());
            PathBuf::from(env!("CARGO_BIN_EXE_kumo")).parent().expect("dir").join("examples/echo_function")
        }
    };
    zip_of("bootstrap", &std::fs::read(bin).expect("echo binary"), 0o755)
}

fn zip_of(name: &str, data: &[u8], mode: u32) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default().unix_permissions(mode)).expect("zip");
    w.write_all(data).expect("zip write");
    w.finish().expect("zip finish").into_inner()
}

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: String,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
        tokio::spawn(conn);
        Conn { sender, addr: addr.to_string() }
    }

    async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Bytes, hyper::HeaderMap) {
        let mut req = Request::builder().method(method).uri(path).header("host", &self.addr);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        for (k, v) in sign(method, path, &self.addr, headers, body) {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_string()))).expect("request");
        self.sender.ready().await.expect("ready");
        let resp = self.sender.send_request(req).await.expect("send");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body, headers)
    }

    /// An unsigned request, as a browser or curl sends to a function URL.
    async fn call_unsigned(&mut self, method: &str, path: &str, body: &str) -> (u16, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.addr)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("request");
        self.sender.ready().await.expect("ready");
        let resp = self.sender.send_request(req).await.expect("send");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    }

    /// One request to a function URL (path form); its round trip.
    async fn url_request(&mut self, path: &str) -> Duration {
        let start = Instant::now();
        let (status, body) = self.call_unsigned("POST", path, PAYLOAD).await;
        let elapsed = start.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        elapsed
    }

    async fn invoke(&mut self, name: &str) -> Duration {
        let start = Instant::now();
        let (status, body, _) =
            self.call("POST", &format!("/2015-03-31/functions/{name}/invocations"), PAYLOAD, &[]).await;
        let elapsed = start.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        elapsed
    }
}

/// The execution role every bench function runs as (it must exist and trust Lambda).
async fn create_role(conn: &mut Conn) {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let encoded: String = trust
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let form = format!("Action=CreateRole&Version=2010-05-08&RoleName=bench&AssumeRolePolicyDocument={encoded}");
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (status, body, _) = conn.call("POST", "/", &form, &headers).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

async fn create(conn: &mut Conn, name: &str, runtime: &str, handler: &str, zip: &[u8]) {
    create_sized(conn, name, runtime, handler, zip, 128).await;
}

async fn create_sized(conn: &mut Conn, name: &str, runtime: &str, handler: &str, zip: &[u8], memory: u32) {
    let body = serde_json::json!({
        "FunctionName": name, "Runtime": runtime, "Handler": handler,
        "Role": "arn:aws:iam::000000000000:role/bench", "MemorySize": memory,
        "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
    });
    let (status, body, _) = conn.call("POST", "/2015-03-31/functions", &body.to_string(), &[]).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn throughput(addr: &str, name: &str, concurrency: usize, seconds: u64) -> f64 {
    load(addr, Target::Invoke(name.to_string()), concurrency, seconds).await
}

/// What a load sends: Invoke of a function, or requests to a URL path.
#[derive(Clone)]
enum Target {
    Invoke(String),
    Url(String),
}

async fn load(addr: &str, target: Target, concurrency: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let addr = addr.to_string();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut n = 0u64;
            while Instant::now() < deadline {
                match &target {
                    Target::Invoke(name) => conn.invoke(name).await,
                    Target::Url(path) => conn.url_request(path).await,
                };
                n += 1;
            }
            n
        }));
    }
    let start = Instant::now();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// One `Event` invoke on `conn`, which must be accepted.
async fn send_event(conn: &mut Conn, path: &str, payload: &str) {
    let (status, _, _) = conn.call("POST", path, payload, &[("x-amz-invocation-type", "Event")]).await;
    assert_eq!(status, 202);
}

/// Every task's latencies, sorted, and how many there are.
async fn collect_latencies(tasks: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> (usize, Vec<Duration>) {
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort();
    (all.len(), all)
}

/// Event invokes from `concurrency` connections for `seconds`: (accepted, sorted accept latencies).
async fn enqueue_load(
    addr: &str,
    name: &str,
    payload: &'static str,
    concurrency: usize,
    seconds: u64,
) -> (usize, Vec<Duration>) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let addr = addr.to_string();
        let path = format!("/2015-03-31/functions/{name}/invocations");
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                send_event(&mut conn, &path, payload).await;
                lat.push(start.elapsed());
            }
            lat
        }));
    }
    collect_latencies(tasks).await
}

/// Event invokes offered at a fixed total `rate` over `concurrency` connections
/// (an open loop, as real producers send: a slow answer does not slow the
/// offer). Each latency runs from the moment the request was due, not from when
/// it went out, so a stall counts against every request it delayed; tokio's
/// 1 ms timer makes sends up to 1 ms late, which counts against Kumo too.
/// Returns the number accepted and the latencies.
async fn paced_enqueue(
    addr: &str,
    name: &str,
    payload: &'static str,
    concurrency: usize,
    rate: f64,
    seconds: u64,
) -> (usize, Vec<Duration>) {
    let interval = Duration::from_secs_f64(concurrency as f64 / rate);
    let per_conn = (seconds as f64 / interval.as_secs_f64()) as u32;
    let t0 = Instant::now() + Duration::from_millis(200);
    let mut tasks = Vec::new();
    for i in 0..concurrency {
        let addr = addr.to_string();
        let path = format!("/2015-03-31/functions/{name}/invocations");
        let offset = interval.mul_f64(i as f64 / concurrency as f64);
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await;
            let mut lat = Vec::with_capacity(per_conn as usize);
            for k in 0..per_conn {
                let due = t0 + offset + interval * k;
                tokio::time::sleep_until(due.into()).await;
                send_event(&mut conn, &path, payload).await;
                lat.push(due.elapsed());
            }
            lat
        }));
    }
    collect_latencies(tasks).await
}

/// Event invokes into a function limited to one environment that sleeps, so
/// the queue only grows and nothing competes with accepting.
async fn accept_alone(conn: &mut Conn, addr: &str, zip: &[u8]) {
    create(conn, "async-parked", "provided.al2023", "bootstrap", zip).await;
    let limit = r#"{"ReservedConcurrentExecutions":1}"#;
    let (status, _, _) = conn.call("PUT", "/2017-10-31/functions/async-parked/concurrency", limit, &[]).await;
    assert_eq!(status, 200);
    let (parked, lat) = enqueue_load(addr, "async-parked", r#"{"sleep_ms":2000}"#, 64, 3).await;
    println!(
        "async Event invokes accepted at concurrency 64 for 3 s, nothing draining: {:.0} /s, accept latency p50 {:.0} us   p99 {:.0} us",
        parked as f64 / 3.0,
        us(pct(&lat, 0.5)),
        us(pct(&lat, 0.99))
    );
    // The latency above is that of a closed loop at saturation (64 requests
    // always outstanding, so latency = 64 / throughput); the one below is at
    // the target rate, as producers that are not the bottleneck see it.
    for rate in [20_000.0, 10_000.0] {
        let (sent, lat) = paced_enqueue(addr, "async-parked", r#"{"sleep_ms":2000}"#, 64, rate, 3).await;
        let span = lat.iter().max().copied().unwrap_or_default();
        println!(
            "  offered {rate:.0} /s over 64 connections for 3 s: {sent} accepted, latency from due time p50 {:.0} us   p90 {:.0} us   p99 {:.0} us   max {:.1} ms",
            us(pct(&lat, 0.5)),
            us(pct(&lat, 0.9)),
            us(pct(&lat, 0.99)),
            span.as_secs_f64() * 1e3
        );
    }
}

async fn cold_starts(
    conn: &mut Conn,
    prefix: &str,
    runtime: &str,
    handler: &str,
    zip: &[u8],
    n: usize,
) -> (Duration, Vec<f64>) {
    let mut client_side = Vec::new();
    let mut init = Vec::new();
    for i in 0..n {
        let name = format!("{prefix}{i}");
        create(conn, &name, runtime, handler, zip).await;
        let start = Instant::now();
        let (status, _, headers) = conn
            .call("POST", &format!("/2015-03-31/functions/{name}/invocations"), PAYLOAD, &[("x-amz-log-type", "Tail")])
            .await;
        client_side.push(start.elapsed());
        assert_eq!(status, 200);
        let tail = headers
            .get("x-amz-log-result")
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        if let Some(v) =
            tail.split("Init Duration: ").nth(1).and_then(|r| r.split(' ').next()).and_then(|v| v.parse().ok())
        {
            init.push(v);
        }
    }
    client_side.sort();
    init.sort_by(f64::total_cmp);
    (client_side[client_side.len() / 2], init)
}

/// CPU time each of the server's threads has used so far, by thread name,
/// from the scheduler's statistics (nanoseconds, unlike the 10 ms ticks of
/// `/proc/PID/stat`).
fn server_cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, Duration> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for t in threads.flatten() {
        let name = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default().trim().to_string();
        let ns = std::fs::read_to_string(t.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()))
            .unwrap_or(0);
        *out.entry(name).or_insert(Duration::ZERO) += Duration::from_nanos(ns);
    }
    out
}

fn server_cpu(pid: u32) -> Duration {
    server_cpu_by_thread(pid).values().sum()
}

/// A function URL in front of the echo function against Invoke of the same
/// function: sequential latency in alternating blocks (so drift hits both
/// alike), the server's own CPU time per call, then throughput at concurrency 64.
/// Run for Lambda's smallest memory size (7.2 % of a CPU, where the function's
/// own extra work on the bigger event is throttled) and for 1,769 MB (one CPU).
async fn url_against_invoke(conn: &mut Conn, addr: &str, zip: &[u8], server_pid: u32) {
    let memory: u32 = std::env::var("KUMO_BENCH_URL_MEMORY").ok().and_then(|m| m.parse().ok()).unwrap_or(1769);
    let name = format!("echo-url-{memory}");
    create_sized(conn, &name, "provided.al2023", "bootstrap", zip, memory).await;
    let (status, body, _) =
        conn.call("POST", &format!("/2021-10-31/functions/{name}/url"), r#"{"AuthType":"NONE"}"#, &[]).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let config: serde_json::Value = serde_json::from_slice(&body).expect("url config");
    let url = config["FunctionUrl"].as_str().expect("FunctionUrl");
    let id = url.trim_start_matches("http://").split('.').next().expect("url id");
    let grant =
        r#"{"StatementId":"public","Action":"lambda:InvokeFunctionUrl","Principal":"*","FunctionUrlAuthType":"NONE"}"#;
    let (status, body, _) = conn.call("POST", &format!("/2015-03-31/functions/{name}/policy"), grant, &[]).await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let path = format!("/_kumo/url/{id}/");
    for _ in 0..300 {
        conn.invoke(&name).await;
        conn.url_request(&path).await;
    }
    let (mut direct, mut through_url) = (Vec::with_capacity(3000), Vec::with_capacity(3000));
    let (mut direct_cpu, mut url_cpu) = (Duration::ZERO, Duration::ZERO);
    let threads_before = server_cpu_by_thread(server_pid);
    for _ in 0..10 {
        let before = server_cpu(server_pid);
        for _ in 0..300 {
            direct.push(conn.invoke(&name).await);
        }
        let between = server_cpu(server_pid);
        for _ in 0..300 {
            through_url.push(conn.url_request(&path).await);
        }
        direct_cpu += between.saturating_sub(before);
        url_cpu += server_cpu(server_pid).saturating_sub(between);
    }
    let threads_after = server_cpu_by_thread(server_pid);
    let calls = (direct.len() + through_url.len()) as f64;
    let split: Vec<String> = threads_after
        .iter()
        .map(|(name, t)| {
            let spent = t.saturating_sub(threads_before.get(name).copied().unwrap_or_default());
            format!("{name} {:.1} us", us(spent) / calls)
        })
        .collect();
    direct.sort();
    through_url.sort();
    println!("server CPU per call by thread, both kinds: {}", split.join(", "));
    println!(
        "function URL against Invoke, warm echo function ({memory} MB), 3000 sequential calls each (alternating blocks of 300):"
    );
    for (label, samples, cpu) in [("Invoke      ", &direct, direct_cpu), ("function URL", &through_url, url_cpu)] {
        println!(
            "  {label}  p50 {:.0} us   p90 {:.0} us   p99 {:.0} us   ({:.0} req/s at concurrency 1; server CPU {:.1} us per call)",
            us(pct(samples, 0.5)),
            us(pct(samples, 0.9)),
            us(pct(samples, 0.99)),
            samples.len() as f64 / samples.iter().map(Duration::as_secs_f64).sum::<f64>(),
            us(cpu) / samples.len() as f64
        );
    }
    println!(
        "  added by the URL: p50 {:+.0} us   p99 {:+.0} us   server CPU {:+.1} us per call",
        us(pct(&through_url, 0.5)) - us(pct(&direct, 0.5)),
        us(pct(&through_url, 0.99)) - us(pct(&direct, 0.99)),
        (us(url_cpu) - us(direct_cpu)) / direct.len() as f64
    );
    load(addr, Target::Invoke(name.clone()), 64, 3).await;
    for round in 0..2 {
        let invoke_rate = load(addr, Target::Invoke(name.clone()), 64, 5).await;
        let url_rate = load(addr, Target::Url(path.clone()), 64, 5).await;
        println!(
            "  concurrency 64, round {}: Invoke {invoke_rate:.0} req/s, function URL {url_rate:.0} req/s (ratio {:.2})",
            round + 1,
            url_rate / invoke_rate
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let tmp = tempfile::tempdir().expect("tmp");
    let zip = echo_zip();
    let server = start_server(tmp.path());
    rt.block_on(async {
        let mut conn = Conn::open(&server.addr).await;
        // The floor: one HTTP round trip to Kumo that does no work.
        let mut floor: Vec<Duration> = Vec::with_capacity(3000);
        for _ in 0..3000 {
            let start = Instant::now();
            let (status, _, _) = conn.call("GET", "/_kumo/health", "", &[]).await;
            floor.push(start.elapsed());
            assert_eq!(status, 200);
        }
        floor.sort();
        println!("baseline: one HTTP round trip to Kumo doing no work: p50 {:.0} us   p99 {:.0} us", us(pct(&floor, 0.5)), us(pct(&floor, 0.99)));
        create_role(&mut conn).await;
        // KUMO_BENCH_ONLY=accept: only the durable accept path (for quick A/B runs of the queue).
        if std::env::var("KUMO_BENCH_ONLY").is_ok_and(|v| v == "accept") {
            accept_alone(&mut conn, &server.addr, &zip).await;
            return;
        }
        // KUMO_BENCH_ONLY=url: a function URL against Invoke (issue [7]).
        if std::env::var("KUMO_BENCH_ONLY").is_ok_and(|v| v == "url") {
            url_against_invoke(&mut conn, &server.addr, &zip, server.child.id()).await;
            return;
        }
        create(&mut conn, "echo", "provided.al2023", "bootstrap", &zip).await;
        for _ in 0..300 {
            conn.invoke("echo").await;
        }
        let mut samples: Vec<Duration> = Vec::with_capacity(3000);
        for _ in 0..3000 {
            samples.push(conn.invoke("echo").await);
        }
        samples.sort();
        println!("warm sequential invoke (provided, lambda_runtime echo), 3000 calls after 300 warm-up:");
        println!(
            "  p50 {:.0} us   p90 {:.0} us   p99 {:.0} us   max {:.0} us",
            us(pct(&samples, 0.5)),
            us(pct(&samples, 0.9)),
            us(pct(&samples, 0.99)),
            us(*samples.last().expect("samples"))
        );
        // KUMO_BENCH_QUICK=1: only the floor and warm latency (for quick A/B runs).
        if std::env::var_os("KUMO_BENCH_QUICK").is_some() {
            return;
        }
        for c in [1, 8, 64] {
            // Warm the environments first so the measurement is of warm invokes
            // (64 cold starts in a burst take more than a second).
            throughput(&server.addr, "echo", c, if c >= 64 { 3 } else { 1 }).await;
            let rate = throughput(&server.addr, "echo", c, 5).await;
            println!("throughput at concurrency {c:>2}: {rate:>8.0} invokes/s");
        }
        let (provided_client, provided_init) = cold_starts(&mut conn, "cold-rs-", "provided.al2023", "bootstrap", &zip, 15).await;
        println!(
            "cold start provided (first invoke after create, 15 functions): median client-side {:.1} ms, median Init Duration {:.2} ms",
            provided_client.as_secs_f64() * 1e3,
            provided_init.get(provided_init.len() / 2).copied().unwrap_or(f64::NAN)
        );
        let py = std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/python/echo.py")).expect("fixture");
        let py_zip = zip_of("app.py", &py, 0o644);
        let runtime = std::env::var("KUMO_BENCH_PYTHON").unwrap_or_else(|_| "python3.12".into());
        let (py_client, py_init) = cold_starts(&mut conn, "cold-py-", &runtime, "app.handler", &py_zip, 15).await;
        println!(
            "cold start {runtime} (first invoke after create, 15 functions): median client-side {:.1} ms, median Init Duration {:.2} ms",
            py_client.as_secs_f64() * 1e3,
            py_init.get(py_init.len() / 2).copied().unwrap_or(f64::NAN)
        );
        let mut py_warm: Vec<Duration> = Vec::with_capacity(2000);
        for i in 0..2200 {
            let d = conn.invoke("cold-py-0").await;
            if i >= 200 {
                py_warm.push(d);
            }
        }
        py_warm.sort();
        println!(
            "warm sequential invoke ({runtime} echo, Kumo's bootstrap), 2000 calls: p50 {:.0} us   p99 {:.0} us",
            us(pct(&py_warm, 0.5)),
            us(pct(&py_warm, 0.99))
        );
        // Asynchronous invocations (after the rest: their backlog disturbs what follows): durable enqueue (committed before 202) while
        // the queue drains into the function, then what is left of the backlog.
        create(&mut conn, "async-echo", "provided.al2023", "bootstrap", &zip).await;
        let (accepted, lat) = enqueue_load(&server.addr, "async-echo", PAYLOAD, 64, 3).await;
        println!(
            "async Event invokes accepted at concurrency 64 for 3 s: {:.0} /s, accept latency p50 {:.0} us   p99 {:.0} us",
            accepted as f64 / 3.0,
            us(pct(&lat, 0.5)),
            us(pct(&lat, 0.99))
        );
        let drain_start = Instant::now();
        loop {
            let (_, body, _) = conn.call("GET", "/_kumo/events/stats", "", &[]).await;
            let stats: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if stats["outstanding"].as_u64() == Some(0) || drain_start.elapsed() > Duration::from_secs(300) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drained = drain_start.elapsed();
        println!(
            "  backlog of {accepted} events drained {:.1} s after the load stopped ({:.0} events/s end to end over the whole run)",
            drained.as_secs_f64(),
            accepted as f64 / (3.0 + drained.as_secs_f64())
        );
        // Last (it leaves a backlog behind): the accept path alone.
        accept_alone(&mut conn, &server.addr, &zip).await;
    });
}
