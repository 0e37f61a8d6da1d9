//! `kumo schedule ls`: EventBridge rules with their targets and next fire times.

use std::process::ExitCode;

use super::Endpoint;
use super::client::Client;

#[derive(clap::Args)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: ScheduleCommand,
}

#[derive(clap::Subcommand)]
enum ScheduleCommand {
    /// Every rule: expression, state, targets, next and last fire time (UTC).
    Ls(LsArgs),
}

#[derive(clap::Args)]
struct LsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn run(a: ScheduleArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        ScheduleCommand::Ls(l) => ls(l).await,
    }
}

async fn ls(a: LsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let out = client.get("/_kumo/schedules").await?;
    let header = ["NAME", "EXPRESSION", "STATE", "TARGETS", "NEXT FIRE (UTC)", "LAST FIRED (UTC)", "INVOKED", "FAILED"];
    let rows: Vec<[String; 8]> = out["Schedules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let text = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let expression = match r["ScheduleExpression"].as_str() {
                Some(e) => e.to_string(),
                // Pattern rules are kept but never fire: say so instead of a time.
                None => "event pattern".to_string(),
            };
            let targets: Vec<String> = r["Targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let arn = t["Arn"].as_str().unwrap_or("");
                    let function = arn.split(":function:").nth(1).unwrap_or(arn);
                    format!("{}={function}", t["Id"].as_str().unwrap_or(""))
                })
                .collect();
            let next = match r["NextFire"].as_str() {
                Some(t) => t.to_string(),
                None if r["ScheduleExpression"].is_null() => "never (pattern)".to_string(),
                None if r["State"] == "DISABLED" => "- (disabled)".to_string(),
                None => "never".to_string(),
            };
            [
                text("Name"),
                expression,
                text("State"),
                if targets.is_empty() { "-".to_string() } else { targets.join(",") },
                next,
                r["LastFired"].as_str().unwrap_or("-").to_string(),
                r["Invocations"].to_string(),
                r["FailedInvocations"].to_string(),
            ]
        })
        .collect();
    super::print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}
