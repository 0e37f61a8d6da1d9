//! `kumo events`: the asynchronous invocation queue, and dead events.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;

use super::Endpoint;
use super::client::{Client, encode_path};

#[derive(clap::Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(clap::Subcommand)]
enum EventsCommand {
    /// Queued, in-flight, retrying and dead events, oldest first.
    Ls(ListArgs),
    /// Only the dead events (out of retries or too old, with no destination).
    Dead(ListArgs),
    /// Put dead events back in the queue with a fresh age and fresh retries.
    Redrive(RedriveArgs),
}

#[derive(clap::Args)]
struct ListArgs {
    /// Only this function's events.
    #[arg(long)]
    function: Option<String>,
    /// Only events in this state.
    #[arg(long, value_enum)]
    state: Option<EventStateArg>,
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EventStateArg {
    Queued,
    InFlight,
    Retrying,
    Dead,
}

impl EventStateArg {
    fn wire_name(self) -> &'static str {
        match self {
            EventStateArg::Queued => "queued",
            EventStateArg::InFlight => "in-flight",
            EventStateArg::Retrying => "retrying",
            EventStateArg::Dead => "dead",
        }
    }
}

#[derive(clap::Args)]
struct RedriveArgs {
    /// One dead event, by request id; without it, every dead event (of `--function`).
    request_id: Option<String>,
    #[arg(long)]
    function: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn run(a: EventsArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        EventsCommand::Ls(l) => list(l).await,
        EventsCommand::Dead(mut l) => {
            l.state = Some(EventStateArg::Dead);
            list(l).await
        }
        EventsCommand::Redrive(r) => {
            let client = Client::new(&r.endpoint)?;
            let body = json!({"RequestId": r.request_id, "FunctionName": r.function});
            let out = client.send_json(Method::POST, "/_kumo/events/redrive", &body).await?;
            println!("{} event(s) back in the queue", out["Redriven"]);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let mut filters = Vec::new();
    if let Some(f) = &a.function {
        filters.push(format!("function={}", encode_path(f)));
    }
    if let Some(state) = a.state {
        filters.push(format!("state={}", state.wire_name()));
    }
    let path =
        if filters.is_empty() { "/_kumo/events".to_string() } else { format!("/_kumo/events?{}", filters.join("&")) };
    let out = client.get(&path).await?;
    let header = ["REQUEST ID", "FUNCTION", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"];
    let rows: Vec<[String; 6]> = out["Events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
            let next = if e["State"] == "dead" { String::new() } else { text("NextAttempt") };
            let error: String = text("LastError").chars().take(60).collect();
            [text("RequestId"), text("FunctionName"), text("State"), e["Attempts"].to_string(), next, error]
        })
        .collect();
    super::print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}
