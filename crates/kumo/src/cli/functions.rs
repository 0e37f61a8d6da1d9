//! `kumo ls` and `kumo rm`.

use std::process::ExitCode;

use reqwest::Method;

use super::Endpoint;
use super::client::{Client, encode_path};

#[derive(clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    endpoint: Endpoint,
}

#[derive(clap::Args)]
pub struct RmArgs {
    name: String,
    /// Delete only this version.
    #[arg(long)]
    qualifier: Option<String>,
    #[command(flatten)]
    endpoint: Endpoint,
}

pub async fn ls(a: LsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let mut marker: Option<String> = None;
    let mut rows = Vec::new();
    loop {
        let path = match &marker {
            Some(m) => format!("/2015-03-31/functions/?Marker={}", encode_path(m)),
            None => "/2015-03-31/functions/".to_string(),
        };
        let page = client.get(&path).await?;
        for f in page["Functions"].as_array().into_iter().flatten() {
            rows.push([
                f["FunctionName"].as_str().unwrap_or("").to_string(),
                f["Runtime"].as_str().unwrap_or("").to_string(),
                format!("{} MB", f["MemorySize"]),
                format!("{} s", f["Timeout"]),
                f["LastModified"].as_str().unwrap_or("").to_string(),
            ]);
        }
        match page["NextMarker"].as_str() {
            Some(m) => marker = Some(m.to_string()),
            None => break,
        }
    }
    let header = ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED"];
    super::print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

pub async fn rm(a: RmArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let mut path = format!("/2015-03-31/functions/{}", encode_path(&a.name));
    if let Some(q) = &a.qualifier {
        path.push_str(&format!("?Qualifier={}", encode_path(q)));
    }
    client.send(client.http().request(Method::DELETE, client.url(&path))).await?;
    println!("deleted {}{}", a.name, a.qualifier.map(|q| format!(":{q}")).unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}
