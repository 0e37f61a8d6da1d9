//! `cargo bench --bench dashboard`: server time of each dashboard page with 100
//! functions and 1,000,000 metering records.
//!
//! Starts the `kumo` binary, deploys 100 functions with `kumo deploy`, stops it,
//! writes a million metering records (spread over the last 30 days) straight
//! into its SQLite store through the store's own writer (so the rollups are
//! built exactly as the invoke path builds them), starts it again, signs in and
//! times each page: the median and p90 of `KUMO_BENCH_REQUESTS` (default 30)
//! sequential requests on loopback, after 3 warm-up requests. Nothing is asserted.
//! `KUMO_BENCH_RECORDS` changes the record count.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kumo::store::MeteringRecord;
use kumo::store::Store as _;
use kumo::store::sqlite::SqliteStore;

const ROOT_KEY_ID: &str = "AKIAKUMOBENCHROOT001";
const ROOT_SECRET: &str = "kumo-bench-root-secret";
const FUNCTIONS: usize = 100;

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

fn kumo() -> PathBuf {
    std::env::var_os("KUMO_BENCH_KUMO").map(PathBuf::from).unwrap_or_else(|| env!("CARGO_BIN_EXE_kumo").into())
}

fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(kumo())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "kumo=warn")
        .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
        .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kumo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep reading: the server must never write into a closed pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("Kumo listening on ") {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
            }
        }
    });
    let endpoint = rx.recv_timeout(Duration::from_secs(60)).expect("kumo did not start");
    Server { child, endpoint }
}

fn deploy(server: &Server, dir: &Path) {
    std::fs::create_dir_all(dir.join("code")).expect("code dir");
    std::fs::write(dir.join("code/app.py"), "def handler(event, context):\n    return event\n").expect("code");
    let started = Instant::now();
    for i in 0..FUNCTIONS {
        let out = Command::new(kumo())
            .args(["deploy"])
            .arg(dir.join("code"))
            .args(["--name", &format!("fn-{i:03}"), "--runtime", "python3.12", "--handler", "app.handler"])
            .env("KUMO_ENDPOINT", &server.endpoint)
            .env("KUMO_ROOT_ACCESS_KEY_ID", ROOT_KEY_ID)
            .env("KUMO_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
            .output()
            .expect("kumo deploy");
        assert!(out.status.success(), "deploy: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!("deployed {FUNCTIONS} functions in {:.1} s", started.elapsed().as_secs_f64());
}

/// A deterministic spread of records over the last 30 days: durations from
/// 1 ms to ~2 s, some errors and cold starts, memory from 20 to 120 MB.
fn record(i: u64, now: i64) -> MeteringRecord {
    let mix = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let span = 30 * 86_400_000i64;
    let cold = mix.is_multiple_of(50);
    MeteringRecord {
        request_id: format!("{:08x}-0000-4000-8000-{:012x}", i >> 16, i),
        function: format!("fn-{:03}", mix % FUNCTIONS as u64),
        version: "$LATEST".into(),
        start_ms: now - span + (i as i64 * span / 1_000_000).min(span - 1),
        duration_us: 1_000 + (mix >> 20) % 2_000_000 / (1 + (mix >> 40) % 20),
        billed_ms: 2 + (mix >> 24) % 500,
        init_billed_ms: 0,
        memory_mb: 128,
        max_memory_used_mb: 20 + (mix >> 30) % 100,
        invocation_peak_mb: 20,
        init_duration_us: cold.then_some(80_000 + (mix >> 8) % 200_000),
        cold,
        cold_start_cause: cold.then(|| "first".to_string()),
        outcome: if mix.is_multiple_of(97) { "error".into() } else { "success".into() },
        error_type: None,
        architecture: "x86_64".into(),
        ephemeral_storage_mb: 512,
        cost_units: 20_000_000 + (mix >> 33) % 100_000_000,
        lineage_origin: Some(format!("{:08x}", i)),
        lineage_depth: 1,
    }
}

async fn fill(data_dir: &Path, records: u64) {
    let store = SqliteStore::open(data_dir).expect("open store");
    let now = kumo::engine::now_ms();
    let started = Instant::now();
    for chunk in 0..records.div_ceil(50_000) {
        for i in chunk * 50_000..((chunk + 1) * 50_000).min(records) {
            store.record_invocation(record(i, now));
        }
        // Bounded memory: wait for each chunk to be written.
        store.flush().await.expect("flush");
    }
    println!("wrote {records} metering records (with rollups) in {:.1} s", started.elapsed().as_secs_f64());
}

async fn sign_in(http: &reqwest::Client, endpoint: &str) -> String {
    let resp = http
        .post(format!("{endpoint}/_kumo/dashboard/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("access_key_id={ROOT_KEY_ID}&secret_access_key={ROOT_SECRET}"))
        .send()
        .await
        .expect("sign in");
    let cookie = resp.headers().get("set-cookie").and_then(|v| v.to_str().ok()).expect("a session cookie");
    cookie.split(';').next().unwrap_or_default().to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("KUMO_BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let records: u64 = std::env::var("KUMO_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().expect("temp dir");
    let data_dir = tmp.path().join("data");
    {
        let server = start(&data_dir);
        deploy(&server, tmp.path());
    }
    fill(&data_dir, records).await;
    let db = std::fs::metadata(data_dir.join("kumo.db")).map(|m| m.len()).unwrap_or(0);
    println!("database: {:.0} MB", db as f64 / 1e6);
    let server = start(&data_dir);
    let http =
        reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let cookie = sign_in(&http, &server.endpoint).await;
    let sample_id = record(records / 2, 0).request_id;
    let pages = [
        ("overview, 15 min", "/_kumo/dashboard?window=15m".to_string()),
        ("overview, 1 h", "/_kumo/dashboard?window=1h".to_string()),
        ("overview, 24 h", "/_kumo/dashboard?window=24h".to_string()),
        ("overview, 30 d", "/_kumo/dashboard?window=30d".to_string()),
        ("function, 1 h", "/_kumo/dashboard/functions/fn-042?window=1h".to_string()),
        ("function, 30 d", "/_kumo/dashboard/functions/fn-042?window=30d".to_string()),
        ("invocation", format!("/_kumo/dashboard/invocations/{sample_id}")),
        ("logs search, 30 d", "/_kumo/dashboard/logs?pattern=ERROR&window=30d".to_string()),
        ("test page", "/_kumo/dashboard/functions/fn-042/test".to_string()),
        ("live tail poll", "/_kumo/dashboard/functions/fn-042/tail?after=0".to_string()),
    ];
    println!("\n{requests} sequential requests per page after 3 warm-up, client-side on loopback");
    println!("{:<20} {:>10} {:>10} {:>10} {:>9}", "page", "p50", "p90", "max", "bytes");
    for (label, path) in pages {
        let url = format!("{}{path}", server.endpoint);
        let mut times = Vec::with_capacity(requests);
        let mut bytes = 0;
        for i in 0..requests + 3 {
            let started = Instant::now();
            let resp = http.get(&url).header("cookie", &cookie).send().await.expect("get");
            let status = resp.status();
            let body = resp.bytes().await.expect("body");
            let took = started.elapsed();
            assert!(status.is_success(), "{label}: {status}");
            bytes = body.len();
            if i >= 3 {
                times.push(took);
            }
        }
        times.sort();
        let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
        println!(
            "{label:<20} {:>10} {:>10} {:>10} {bytes:>9}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.9)),
            ms(*times.last().unwrap_or(&Duration::ZERO))
        );
    }
}
