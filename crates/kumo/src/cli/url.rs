//! `kumo url NAME [--create]`: a function's URL, through the Lambda API
//! (GetFunctionUrlConfig / CreateFunctionUrlConfig, AddPermission).

use std::process::ExitCode;

use serde_json::json;

use super::Endpoint;
use super::client::{ApiFailure, Client, encode_path};

#[derive(clap::Args)]
pub struct UrlArgs {
    name: String,
    /// An alias (URLs belong to the unqualified function or to an alias).
    #[arg(long)]
    qualifier: Option<String>,
    /// Create the URL if the function has none (NONE also gets the public
    /// `lambda:InvokeFunctionUrl` permission, as the Lambda console adds it).
    #[arg(long)]
    create: bool,
    /// Who may call a created URL: NONE (anyone) or AWS_IAM (SigV4-signed callers
    /// allowed lambda:InvokeFunctionUrl).
    #[arg(long, default_value = "NONE", value_parser = ["NONE", "AWS_IAM"])]
    auth_type: String,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn run(a: UrlArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let query = a.qualifier.as_deref().map(|q| format!("?Qualifier={}", encode_path(q))).unwrap_or_default();
    let path = format!("/2021-10-31/functions/{}/url{query}", encode_path(&a.name));
    let config = match client.get(&path).await {
        Ok(config) => config,
        Err(e) if a.create && super::client::is_not_found(&e) => {
            let created = client.send_json(reqwest::Method::POST, &path, &json!({"AuthType": a.auth_type})).await?;
            if a.auth_type == "NONE" {
                allow_public_access(&client, &a.name, a.qualifier.as_deref()).await?;
            }
            created
        }
        Err(e) => return Err(e),
    };
    let url = config["FunctionUrl"].as_str().unwrap_or_default();
    println!("{url}");
    // The same URL for clients that cannot send a Host header of their own.
    if let Some(id) = url.strip_prefix("http://").and_then(|rest| rest.split('.').next()) {
        eprintln!(
            "AuthType {}; also {}/_kumo/url/{id}/",
            config["AuthType"].as_str().unwrap_or("?"),
            a.endpoint.url.trim_end_matches('/')
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The resource-policy statement that lets anyone call a NONE URL.
async fn allow_public_access(client: &Client, name: &str, qualifier: Option<&str>) -> anyhow::Result<()> {
    let query = qualifier.map(|q| format!("?Qualifier={}", encode_path(q))).unwrap_or_default();
    let statement = json!({
        "StatementId": "FunctionURLAllowPublicAccess",
        "Action": "lambda:InvokeFunctionUrl",
        "Principal": "*",
        "FunctionUrlAuthType": "NONE",
    });
    let path = format!("/2015-03-31/functions/{}/policy{query}", encode_path(name));
    match client.send_json(reqwest::Method::POST, &path, &statement).await {
        Ok(_) => Ok(()),
        // Already there (a URL deleted and created again): fine.
        Err(e) if e.downcast_ref::<ApiFailure>().is_some_and(|f| f.status == 409) => Ok(()),
        Err(e) => Err(e),
    }
}
