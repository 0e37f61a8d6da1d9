//! `kumo logs NAME [--follow] [--since 10m]`, through the CloudWatch Logs API.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::client::{Client, is_not_found};
use super::{Endpoint, parse_duration};

#[derive(clap::Args)]
pub struct LogsArgs {
    name: String,
    /// Keep printing new events as they arrive.
    #[arg(long, short)]
    follow: bool,
    /// How far back to start, e.g. 10m, 2h (default: everything).
    #[arg(long, value_parser = parse_duration)]
    since: Option<Duration>,
    #[command(flatten)]
    endpoint: Endpoint,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

async fn filter(client: &Client, body: &Value) -> anyhow::Result<Value> {
    let req = client
        .http()
        .post(client.url("/"))
        .header("x-amz-target", "Logs_20140328.FilterLogEvents")
        .header("content-type", "application/x-amz-json-1.1")
        .body(body.to_string());
    client.send(req).await
}

pub async fn run(a: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let group = format!("/aws/lambda/{}", a.name);
    let mut start = a.since.map(|d| now_ms() - d.as_millis() as i64);
    // Event ids increase; remember the last one printed so polling never repeats a line.
    let mut last_id: i64 = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"logGroupName": group, "limit": 1000});
        if let Some(s) = start {
            body["startTime"] = json!(s);
        }
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = match filter(&client, &body).await {
            Ok(p) => p,
            Err(e) if is_not_found(&e) && a.follow => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(e) if is_not_found(&e) => {
                eprintln!("no logs yet for {}", a.name);
                return Ok(ExitCode::SUCCESS);
            }
            Err(e) => return Err(e),
        };
        for e in page["events"].as_array().into_iter().flatten() {
            let id: i64 = e["eventId"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
            if id <= last_id {
                continue;
            }
            last_id = id;
            let ts = e["timestamp"].as_i64().unwrap_or(0);
            println!("{} {}", kumo_core::time::iso8601_millis(ts), e["message"].as_str().unwrap_or(""));
            start = Some(ts);
        }
        token = page["nextToken"].as_str().map(str::to_string);
        if token.is_none() {
            if !a.follow {
                return Ok(ExitCode::SUCCESS);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
