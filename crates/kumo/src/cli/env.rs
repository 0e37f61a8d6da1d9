//! `kumo env`: the shell lines that point the AWS CLI and SDKs at Kumo.

use std::process::ExitCode;

use anyhow::anyhow;

use super::Endpoint;
use super::client::{client_region, find_credentials};

#[derive(clap::Args)]
pub struct EnvArgs {
    #[command(flatten)]
    endpoint: Endpoint,
}

pub fn run(a: &EnvArgs) -> anyhow::Result<ExitCode> {
    let credentials = find_credentials(&a.endpoint.data_dir)?.ok_or_else(|| {
        anyhow!(
            "no credentials: start `kumo serve` with this data dir ({}) first, or set KUMO_ROOT_ACCESS_KEY_ID and KUMO_ROOT_SECRET_ACCESS_KEY",
            a.endpoint.data_dir.display()
        )
    })?;
    let quote = |v: &str| format!("'{}'", v.replace('\'', r"'\''"));
    println!("export AWS_ACCESS_KEY_ID={}", quote(&credentials.access_key_id));
    println!("export AWS_SECRET_ACCESS_KEY={}", quote(&credentials.secret_access_key));
    match &credentials.session_token {
        Some(token) => println!("export AWS_SESSION_TOKEN={}", quote(token)),
        None => println!("unset AWS_SESSION_TOKEN"),
    }
    println!("export AWS_DEFAULT_REGION={}", quote(&client_region()));
    println!("export AWS_ENDPOINT_URL={}", quote(&a.endpoint.url));
    // Lambda has no instance metadata service, and SDKs probing for one wait and leave loopback.
    println!("export AWS_EC2_METADATA_DISABLED=true");
    Ok(ExitCode::SUCCESS)
}
