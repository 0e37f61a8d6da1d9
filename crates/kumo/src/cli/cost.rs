//! `kumo cost` and `kumo budget`: clients of `/_kumo/cost` and `/_kumo/budgets`.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::Endpoint;
use super::client::{Client, encode_path};

#[derive(clap::Args)]
pub struct CostArgs {
    /// The month, YYYY-MM (default: this month, UTC).
    #[arg(long)]
    month: Option<String>,
    /// Only this function.
    #[arg(long)]
    function: Option<String>,
    /// The report as JSON (the same numbers, per function and in total).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// `path?month=…&function=…` with the filters given.
fn with_filters(path: &str, month: Option<&str>, function: Option<&str>) -> String {
    let query: Vec<String> = [("month", month), ("function", function)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={}", encode_path(v))))
        .collect();
    if query.is_empty() { path.to_string() } else { format!("{path}?{}", query.join("&")) }
}

fn usd(micro: &Value) -> String {
    let m = micro.as_u64().unwrap_or(0);
    format!("${}.{:06}", m / 1_000_000, m % 1_000_000)
}

pub async fn cost(a: CostArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let report = client.get(&with_filters("/_kumo/cost", a.month.as_deref(), a.function.as_deref())).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Costs for {} (UTC)", report["period"].as_str().unwrap_or("?"));
    let header = ["FUNCTION", "REQUESTS", "GB-SECONDS", "FREE GB-S", "COLD STARTS", "COLD-START COST", "COST (USD)"];
    let row = |name: &str, r: &Value| -> [String; 7] {
        let free_gb_s = r["free_mb_ms_used"]
            .as_str()
            .and_then(|v| v.parse::<u128>().ok())
            .map(kumo_core::pricing::format_gb_s)
            .unwrap_or_default();
        [
            name.to_string(),
            r["requests"].to_string(),
            r["billed_gb_s"].as_str().unwrap_or("").to_string(),
            free_gb_s,
            r["cold_starts"].to_string(),
            usd(&r["cold_start_micro_usd"]),
            usd(&r["cost_micro_usd"]),
        ]
    };
    let mut rows: Vec<[String; 7]> =
        report["functions"].as_object().into_iter().flatten().map(|(name, r)| row(name, r)).collect();
    if a.function.is_none() {
        rows.push(row("TOTAL", &report["totals"]));
    }
    super::print_table(&header, &rows);
    let free = &report["free_tier"];
    println!(
        "Free tier this month: {} of 1,000,000 requests and {} GB-s used; {} requests and {} GB-s left",
        free["requests_used"],
        free["gb_s_used"].as_str().unwrap_or("?"),
        free["requests_left"],
        free["gb_s_left"].as_str().unwrap_or("?")
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Only this function.
    function: Option<String>,
    /// The month, YYYY-MM (default: this month, UTC).
    #[arg(long)]
    month: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn stats(a: StatsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let out = client.get(&with_filters("/_kumo/stats", a.month.as_deref(), a.function.as_deref())).await?;
    println!("Invocations in {} (UTC)", out["period"].as_str().unwrap_or("?"));
    let header = ["FUNCTION", "INVOCATIONS", "ERRORS", "P50", "P99", "COLD STARTS", "COST (USD)"];
    let ms = |v: &Value| format!("{:.2} ms", v.as_u64().unwrap_or(0) as f64 / 1000.0);
    let pct = |n: &Value, of: &Value| {
        let (n, of) = (n.as_u64().unwrap_or(0), of.as_u64().unwrap_or(0).max(1));
        format!("{} ({:.1}%)", n, n as f64 * 100.0 / of as f64)
    };
    let rows: Vec<[String; 7]> = out["Functions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            [
                f["function"].as_str().unwrap_or("").to_string(),
                f["invocations"].to_string(),
                pct(&f["errors"], &f["invocations"]),
                ms(&f["p50_duration_us"]),
                ms(&f["p99_duration_us"]),
                {
                    let causes: Vec<String> = f["cold_start_causes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(cause, n)| format!("{cause} {n}"))
                        .collect();
                    let rate = pct(&f["cold_starts"], &f["invocations"]);
                    if causes.is_empty() { rate } else { format!("{rate}: {}", causes.join(", ")) }
                },
                usd(&f["cost_micro_usd"]),
            ]
        })
        .collect();
    super::print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct BudgetArgs {
    #[command(subcommand)]
    command: BudgetCommand,
}

#[derive(clap::Subcommand)]
enum BudgetCommand {
    /// Create (or replace) a budget.
    Create(CreateArgs),
    /// Every budget with its spend this period.
    Ls(EndpointOnly),
    /// One budget, with the alerts it has fired this period.
    Show(NameArgs),
    /// Delete a budget.
    Rm(NameArgs),
}

#[derive(clap::Args)]
struct EndpointOnly {
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
struct NameArgs {
    name: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
struct CreateArgs {
    name: String,
    /// The limit for the period, in USD (e.g. 10 or 0.25).
    #[arg(long)]
    limit_usd: String,
    /// Only this function's spend (default: every function, --all).
    #[arg(long, conflicts_with = "all")]
    function: Option<String>,
    #[arg(long)]
    all: bool,
    /// The budget's period (monthly is the only one).
    #[arg(long, default_value = "monthly", value_parser = ["monthly"])]
    period: String,
    /// Percentages of the limit that alert, e.g. 50,80,100.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    alert_at: Vec<u32>,
    /// Where alerts go: function:NAME, webhook:URL or log.
    #[arg(long, default_value = "log")]
    notify: String,
    /// Also alert when the month's linear projection crosses a threshold.
    #[arg(long)]
    forecast: bool,
    /// `throttle`: stop new invocations of the covered functions at the limit.
    #[arg(long, default_value = "alert", value_parser = ["alert", "throttle"])]
    action: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// "10", "0.25", "12.345678" USD → micro-USD, exactly.
fn micro_usd(s: &str) -> anyhow::Result<u64> {
    let (whole, frac) =
        s.trim().trim_start_matches('$').split_once('.').unwrap_or((s.trim().trim_start_matches('$'), ""));
    anyhow::ensure!(frac.len() <= 6 && frac.bytes().all(|b| b.is_ascii_digit()), "--limit-usd {s}: at most 6 decimals");
    let whole: u64 = whole.parse().map_err(|_| anyhow::anyhow!("--limit-usd {s} is not an amount"))?;
    let frac: u64 = format!("{frac:0<6}").parse().unwrap_or(0);
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| anyhow::anyhow!("--limit-usd {s} is too large"))
}

fn notify_json(s: &str) -> anyhow::Result<Value> {
    Ok(match s.split_once(':') {
        _ if s == "log" => json!("log"),
        Some(("function", f)) => json!({"function": f}),
        Some(("webhook", url)) => json!({"webhook": url}),
        _ => anyhow::bail!("--notify {s}: expected function:NAME, webhook:URL or log"),
    })
}

fn print_budget(b: &Value) {
    let budget = &b["budget"];
    let scope = match &budget["scope"] {
        Value::Object(m) => {
            m.get("function").and_then(Value::as_str).map_or("all".to_string(), |f| format!("function {f}"))
        }
        _ => "all functions".to_string(),
    };
    println!(
        "{}  {} of {} this period ({})  {}  action {}{}",
        budget["name"].as_str().unwrap_or("?"),
        usd(&b["spend_micro_usd"]),
        usd(&budget["limit_micro_usd"]),
        b["period"].as_str().unwrap_or("?"),
        scope,
        budget["action"].as_str().unwrap_or("alert"),
        if b["throttling"] == true { "  THROTTLING" } else { "" }
    );
}

pub async fn budget(a: BudgetArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        BudgetCommand::Create(c) => {
            let client = Client::new(&c.endpoint)?;
            let scope = match &c.function {
                Some(f) => json!({"function": f}),
                None => json!("all"),
            };
            let body = json!({
                "name": c.name,
                "limit_micro_usd": micro_usd(&c.limit_usd)?,
                "scope": scope,
                "thresholds_percent": c.alert_at,
                "forecast": c.forecast,
                "action": c.action,
                "notify": notify_json(&c.notify)?,
            });
            let out = client.send_json(Method::POST, "/_kumo/budgets", &body).await?;
            print_budget(&out);
        }
        BudgetCommand::Ls(e) => {
            let client = Client::new(&e.endpoint)?;
            let out = client.get("/_kumo/budgets").await?;
            for b in out["Budgets"].as_array().into_iter().flatten() {
                print_budget(b);
            }
        }
        BudgetCommand::Show(n) => {
            let client = Client::new(&n.endpoint)?;
            let out = client.get(&format!("/_kumo/budgets/{}", encode_path(&n.name))).await?;
            print_budget(&out);
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        BudgetCommand::Rm(n) => {
            let client = Client::new(&n.endpoint)?;
            client.send_json(Method::DELETE, &format!("/_kumo/budgets/{}", encode_path(&n.name)), &json!({})).await?;
            println!("deleted budget {}", n.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn amounts_become_micro_usd_exactly() {
        assert_eq!(super::micro_usd("10").ok(), Some(10_000_000));
        assert_eq!(super::micro_usd("0.25").ok(), Some(250_000));
        assert_eq!(super::micro_usd("$1.000001").ok(), Some(1_000_001));
        assert!(super::micro_usd("1.0000001").is_err());
        assert!(super::micro_usd("ten").is_err());
    }
}
