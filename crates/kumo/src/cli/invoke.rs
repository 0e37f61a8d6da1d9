//! `kumo invoke NAME [PAYLOAD]`: call a function and show what it returned and cost.

use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;

use super::Endpoint;
use super::client::{ApiFailure, Client, encode_path};

#[derive(clap::Args)]
pub struct InvokeArgs {
    name: String,
    /// JSON payload (default `{}`); `-` reads it from standard input.
    payload: Option<String>,
    /// Version or alias.
    #[arg(long)]
    qualifier: Option<String>,
    /// Invoke asynchronously (InvocationType Event).
    #[arg(long = "async")]
    is_async: bool,
    /// Print the whole log tail, not just the REPORT line.
    #[arg(long)]
    logs: bool,
    /// Also print what this invocation cost (with the month's free tier and tiers applied).
    #[arg(long)]
    cost: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn run(a: InvokeArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let payload = match a.payload.as_deref() {
        None => "{}".to_string(),
        Some("-") => std::io::read_to_string(std::io::stdin()).context("reading the payload from stdin")?,
        Some(p) => p.to_string(),
    };
    let mut url = client.url(&format!("/2015-03-31/functions/{}/invocations", encode_path(&a.name)));
    if let Some(q) = &a.qualifier {
        url.push_str(&format!("?Qualifier={}", encode_path(q)));
    }
    let req = client
        .http()
        .post(url)
        .header("x-amz-invocation-type", if a.is_async { "Event" } else { "RequestResponse" })
        .header("x-amz-log-type", "Tail")
        .body(payload);
    let resp = client.execute(req).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    if status >= 300 {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let message = v.get("Message").or_else(|| v.get("message")).and_then(|m| m.as_str()).unwrap_or("").to_string();
        return Err(ApiFailure { status, code: header("x-amzn-errortype").unwrap_or_default(), message }.into());
    }
    if a.is_async {
        println!("accepted (RequestId {})", header("x-amzn-requestid").unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", String::from_utf8_lossy(&body));
    let tail = header("x-amz-log-result")
        .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    if a.logs {
        eprint!("{tail}");
    } else if let Some(report) = tail.lines().rev().find(|l| l.starts_with("REPORT ")) {
        eprintln!("{report}");
    }
    if a.cost
        && let Some(id) = header("x-amzn-requestid")
    {
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let c = client.get(&format!("/_kumo/cost/invocations/{}?at={at}", encode_path(&id))).await?;
        eprintln!(
            "COST {} USD  ({} GB-s billed at {} MB, {} GB-s of it free tier{})",
            c["cost_usd"].as_str().unwrap_or("?"),
            c["billed_gb_s"].as_str().unwrap_or("?"),
            c["memory_mb"],
            c["free_gb_s_used"].as_str().unwrap_or("?"),
            if c["free_requests_used"] == 1 { ", request free" } else { "" }
        );
    }
    match header("x-amz-function-error") {
        Some(kind) => {
            eprintln!("function error: {kind}");
            Ok(ExitCode::FAILURE)
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
