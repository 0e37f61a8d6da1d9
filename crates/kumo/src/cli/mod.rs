//! The `kumo` command line: one module per command, each a thin client of
//! Kumo's HTTP API (the same API the AWS CLI and SDKs use), except `serve`.

pub mod client;
mod cost;
mod deploy;
mod env;
pub(crate) mod event;
mod events;
mod functions;
mod iam;
mod invoke;
mod logs;
mod schedule;
mod url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::sandbox::IsolationMode;
use crate::server::{ServeOptions, serve};

#[derive(Parser)]
#[command(name = "kumo", version, about = "A self-hosted serverless platform that speaks AWS Lambda's APIs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where client commands find the server.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// Kumo's URL.
    #[arg(long = "endpoint", env = "KUMO_ENDPOINT", default_value = "http://127.0.0.1:9777", global = true)]
    pub url: String,
    /// The server's data dir, where `kumo serve` keeps the root credentials
    /// that client commands sign with (unless KUMO_ROOT_ACCESS_KEY_ID is set).
    #[arg(long = "data-dir", env = "KUMO_DATA_DIR", default_value = ".kumo", global = true)]
    pub data_dir: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform.
    Serve(ServeArgs),
    /// Zip a folder and create or update a function from it.
    Deploy(deploy::DeployArgs),
    /// Invoke a function and print its result and REPORT line.
    Invoke(invoke::InvokeArgs),
    /// List functions.
    Ls(functions::LsArgs),
    /// Delete a function (or one version of it).
    Rm(functions::RmArgs),
    /// Print a function's logs.
    Logs(logs::LogsArgs),
    /// The asynchronous invocation queue: list events, dead events, redrive.
    Events(events::EventsArgs),
    /// Sample events in AWS's exact shapes (`kumo event generate s3-put | kumo invoke F -`).
    Event(event::EventArgs),
    /// Print `export` lines that point the AWS CLI and SDKs at Kumo, with its root credentials.
    Env(env::EnvArgs),
    /// Identity and access: explain a decision.
    Iam(iam::IamArgs),
    /// What the functions cost this month (or another): per function and in total.
    Cost(cost::CostArgs),
    /// Budgets: alerts at thresholds of a monthly limit, and hard caps.
    Budget(cost::BudgetArgs),
    /// Invocations, errors, p50/p99 duration, cold starts and cost per function this month.
    Stats(cost::StatsArgs),
    /// EventBridge schedules: rules, their targets and next fire times.
    Schedule(schedule::ScheduleArgs),
    /// A function's URL (`--create` makes one).
    Url(url::UrlArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "KUMO_LISTEN", default_value = crate::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Where functions, code, logs and metering are kept.
    #[arg(long, env = "KUMO_DATA_DIR", default_value = ".kumo")]
    data_dir: PathBuf,
    /// Region in ARNs and environments.
    #[arg(long, env = "KUMO_REGION", default_value = "us-east-1")]
    region: String,
    /// Account id in ARNs.
    #[arg(long, env = "KUMO_ACCOUNT_ID", default_value = "000000000000")]
    account_id: String,
    /// How long an idle execution environment is kept for reuse (e.g. 300s, 5m).
    #[arg(long, env = "KUMO_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Billing granularity in ms: 1 (Lambda since December 2020) or 100 (before).
    #[arg(long, env = "KUMO_BILLING_GRANULARITY_MS", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    billing_granularity_ms: u64,
    /// Do not bill the init phase of cold starts (Lambda bills it since August 2025).
    #[arg(long)]
    no_bill_init: bool,
    /// The account's concurrency limit.
    #[arg(long, env = "KUMO_ACCOUNT_CONCURRENCY", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    account_concurrency: u32,
    /// Let environments run between invocations (for attaching debuggers); Lambda freezes them.
    #[arg(long)]
    no_freeze: bool,
    /// Sandbox shells kept pre-started (cgroups joined) so cold starts skip that cost.
    #[arg(long, env = "KUMO_PREWARM_SANDBOXES", default_value_t = 2)]
    prewarm_sandboxes: usize,
    /// Environments kept on this machine before idle ones are evicted to make room.
    #[arg(long, env = "KUMO_MAX_ENVIRONMENTS", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    max_environments: u64,
    /// Threads serving HTTP and the Runtime API (default: half the CPUs, at least one;
    /// the rest is left to the functions). One thread also avoids cross-CPU wake-ups.
    #[arg(long, env = "KUMO_WORKER_THREADS", value_parser = clap::value_parser!(u64).range(1..=256))]
    worker_threads: Option<u64>,
    /// `sigv4`: every request must be signed with a known access key and is
    /// authorised by IAM policies; `none`: nothing is checked (throwaway local use).
    #[arg(long, env = "KUMO_AUTH", value_enum, default_value_t = crate::iam::AuthMode::Sigv4)]
    auth: crate::iam::AuthMode,
    /// How functions are sandboxed: `auto` uses every mechanism the host offers
    /// and says what is missing; `strict` refuses to start without all of them;
    /// `none` runs plain processes (debugging only).
    #[arg(long, env = "KUMO_ISOLATION", value_enum, default_value_t = IsolationMode::Auto)]
    isolation: IsolationMode,
    /// CPU in proportion to memory as on Lambda (1,769 MB = one vCPU); `off` lets
    /// every function use the whole machine (local debugging).
    #[arg(long, env = "KUMO_CPU_LIMITS", default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    cpu_limits: bool,
    /// Let functions reach services on this machine's own loopback at
    /// host.kumo.internal (e.g. a local database); off, only other hosts.
    #[arg(long, env = "KUMO_EGRESS_HOST_LOOPBACK")]
    egress_host_loopback: bool,
    /// Waits before the retries of a failed asynchronous invocation, e.g.
    /// `60s,120s` (Lambda's); shorten them for tests and local development.
    #[arg(long, env = "KUMO_ASYNC_RETRY_DELAYS", default_value = "60s,120s", value_parser = parse_delays)]
    async_retry_delays: Delays,
    /// Use this interpreter for a runtime, e.g. python3.12=/opt/python/bin/python3.12 (repeatable).
    #[arg(long = "runtime-path", value_parser = parse_runtime_path)]
    runtime_paths: Vec<(String, PathBuf)>,
    /// A JSON price book (rates, tiers, free tier) to compute costs with instead
    /// of Lambda's list prices (internal chargeback rates, another region's).
    #[arg(long, env = "KUMO_PRICE_BOOK")]
    price_book: Option<PathBuf>,
    /// A bearer token that may read /_kumo/metrics without SigV4 (for Prometheus).
    #[arg(long, env = "KUMO_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// The most log data kept across all log groups (e.g. 512MiB, 2GiB; `none`
    /// for no cap); past it the oldest events are deleted as new ones arrive.
    #[arg(long, env = "KUMO_LOG_MAX_BYTES", default_value = "1GiB", value_parser = parse_size)]
    log_max_bytes: Size,
    /// How long one minute of an EventBridge `rate()` schedule lasts, e.g. `1s`
    /// to see `rate(1 minute)` fire every second in tests and demos (cron
    /// schedules keep the real clock).
    #[arg(long, env = "KUMO_SCHEDULE_MINUTE", default_value = "60s", value_parser = parse_schedule_minute)]
    schedule_minute: Duration,
}

/// Prints rows under a header, each column as wide as its widest cell.
pub(crate) fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.to_vec());
    }
}

/// A byte count (`none`: unlimited).
#[derive(Debug, Clone, Copy)]
struct Size(Option<u64>);

/// Parses `1048576`, `512KiB`, `64MiB`, `1GiB` (also KB/MB/GB, K/M/G as binary units) or `none`.
fn parse_size(s: &str) -> Result<Size, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("none") {
        return Ok(Size(None));
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let n: u64 = number.parse().map_err(|_| format!("`{s}` is not a size such as 512MiB, 1GiB or none"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit `{other}` in `{s}` (use KiB, MiB or GiB)")),
    };
    match n.checked_mul(multiplier) {
        Some(0) => Err("the size must be more than 0 (use `none` for no cap)".into()),
        Some(bytes) => Ok(Size(Some(bytes))),
        None => Err(format!("`{s}` is too large")),
    }
}

/// A comma-separated list of durations.
#[derive(Debug, Clone)]
struct Delays(Vec<Duration>);

fn parse_delays(s: &str) -> Result<Delays, String> {
    let delays = s.split(',').map(|d| parse_duration(d.trim())).collect::<Result<Vec<_>, _>>()?;
    if delays.is_empty() { Err("expected at least one duration".into()) } else { Ok(Delays(delays)) }
}

/// A schedule minute of at least 100 ms: shorter would make a scheduler spin.
fn parse_schedule_minute(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) { Err(format!("{s} is shorter than 100ms")) } else { Ok(d) }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("expected on or off, got {s}")),
    }
}

/// `300ms`, `30s`, `10m`, `2h`, `1d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(format!("invalid duration unit in {s}: use ms, s, m, h or d")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_runtime_path(s: &str) -> Result<(String, PathBuf), String> {
    let (runtime, path) = s.split_once('=').ok_or("expected RUNTIME=PATH")?;
    Ok((runtime.to_string(), PathBuf::from(path)))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = match &cli.command {
        Command::Serve(a) => {
            let half = std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1);
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(a.worker_threads.map_or(half, |n| n as usize));
            b
        }
        // Client commands make a handful of requests: one thread is plenty.
        _ => tokio::runtime::Builder::new_current_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kumo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => {
                init_tracing();
                serve(ServeOptions {
                    listen: a.listen,
                    data_dir: a.data_dir,
                    region: a.region,
                    account_id: a.account_id,
                    idle_timeout: a.idle_timeout,
                    billing_granularity_ms: a.billing_granularity_ms,
                    bill_init: !a.no_bill_init,
                    account_concurrency: a.account_concurrency,
                    freeze: !a.no_freeze,
                    runtime_overrides: a.runtime_paths,
                    prewarm_sandboxes: a.prewarm_sandboxes,
                    max_environments: a.max_environments as usize,
                    isolation: a.isolation,
                    cpu_limits: a.cpu_limits,
                    egress_host_loopback: a.egress_host_loopback,
                    async_retry_delays: a.async_retry_delays.0,
                    auth: a.auth,
                    price_book: a.price_book,
                    metrics_token: a.metrics_token,
                    log_max_bytes: a.log_max_bytes.0,
                    schedule_minute: a.schedule_minute,
                })
                .await
                .map(|()| ExitCode::SUCCESS)
            }
            Command::Deploy(a) => deploy::run(a).await,
            Command::Event(a) => event::run(a),
            Command::Invoke(a) => invoke::run(a).await,
            Command::Ls(a) => functions::ls(a).await,
            Command::Rm(a) => functions::rm(a).await,
            Command::Logs(a) => logs::run(a).await,
            Command::Events(a) => events::run(a).await,
            Command::Env(a) => env::run(&a),
            Command::Iam(a) => iam::run(a).await,
            Command::Cost(a) => cost::cost(a).await,
            Command::Budget(a) => cost::budget(a).await,
            Command::Stats(a) => cost::stats(a).await,
            Command::Schedule(a) => schedule::run(a).await,
            Command::Url(a) => url::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kumo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("kumo=info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::{parse_duration, parse_size};
    use std::time::Duration;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB").map(|s| s.0), Ok(Some(1 << 30)));
        assert_eq!(parse_size("64 KiB").map(|s| s.0), Ok(Some(64 << 10)));
        assert_eq!(parse_size("512M").map(|s| s.0), Ok(Some(512 << 20)));
        assert_eq!(parse_size("1000").map(|s| s.0), Ok(Some(1000)));
        assert_eq!(parse_size("none").map(|s| s.0), Ok(None));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("10 parsecs").is_err());
    }
}
