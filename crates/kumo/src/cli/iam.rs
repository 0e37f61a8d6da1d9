//! `kumo iam explain`: why Kumo allows or denies a request.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::Endpoint;
use super::client::Client;

#[derive(clap::Args)]
pub struct IamArgs {
    #[command(subcommand)]
    command: IamCommand,
}

#[derive(clap::Subcommand)]
enum IamCommand {
    /// The decision on a request and the statements that made it (which
    /// policy, which Sid, and why each other statement did not apply).
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// Who asks: a user, role, assumed-role session or root ARN.
    #[arg(long)]
    principal: String,
    /// The IAM action, e.g. lambda:InvokeFunction.
    #[arg(long)]
    action: String,
    /// The resource ARN (default `*`).
    #[arg(long, default_value = "*")]
    resource: String,
    /// A condition key of the request, e.g. aws:SourceIp=127.0.0.1 (repeatable).
    #[arg(long = "context", value_parser = parse_context)]
    context: Vec<(String, String)>,
    #[command(flatten)]
    endpoint: Endpoint,
}

fn parse_context(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

pub async fn run(a: IamArgs) -> anyhow::Result<ExitCode> {
    let IamCommand::Explain(e) = a.command;
    let client = Client::new(&e.endpoint)?;
    let mut context: Map<String, Value> = Map::new();
    for (k, v) in &e.context {
        let entry = context.entry(k.clone()).or_insert_with(|| json!([]));
        if let Some(values) = entry.as_array_mut() {
            values.push(json!(v));
        }
    }
    let body = json!({"Principal": e.principal, "Action": e.action, "Resource": e.resource, "Context": context});
    let out = client.send_json(Method::POST, "/_kumo/iam/explain", &body).await?;
    print!("{}", out["Explanation"].as_str().unwrap_or_default());
    if let Some(message) = out["Message"].as_str() {
        println!("\nAWS would answer: AccessDeniedException: {message}");
    }
    // Exit status tells scripts the decision: 0 allowed, 1 denied.
    Ok(if out["Allowed"] == true { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
