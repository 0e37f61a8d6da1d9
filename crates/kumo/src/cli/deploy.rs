//! `kumo deploy DIR --name N --runtime R --handler H`: zip a folder, create or update the function.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use reqwest::Method;
use serde_json::{Map, Value, json};
use zip::write::SimpleFileOptions;

use super::Endpoint;
use super::client::{Client, encode_path, is_not_found};

#[derive(clap::Args)]
pub struct DeployArgs {
    /// The folder whose contents become the package (its root is the task root).
    dir: std::path::PathBuf,
    #[arg(long)]
    name: String,
    /// e.g. python3.12, nodejs20.x, provided.al2023 (required when creating).
    #[arg(long)]
    runtime: Option<String>,
    /// e.g. app.handler (required when creating).
    #[arg(long)]
    handler: Option<String>,
    /// The execution role's ARN; without it, Kumo's default role
    /// (`kumo-lambda-default`: trusts Lambda, may write its logs) is created
    /// if needed and used.
    #[arg(long)]
    role: Option<String>,
    /// MemorySize in MB.
    #[arg(long)]
    memory: Option<u32>,
    /// Timeout in seconds.
    #[arg(long)]
    timeout: Option<u32>,
    /// Environment variable KEY=VALUE (repeatable; replaces the function's set).
    #[arg(long = "env", value_parser = parse_kv)]
    env: Vec<(String, String)>,
    /// Publish a version after deploying.
    #[arg(long)]
    publish: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| "expected KEY=VALUE".into())
}

/// Zips a directory tree, keeping execute bits (a custom runtime's bootstrap needs them).
pub fn zip_dir(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let path = entry.path();
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    for path in files {
        let rel = path.strip_prefix(dir).context("path outside the folder")?;
        let mode = std::fs::metadata(&path)?.permissions().mode();
        let opts = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(if mode & 0o111 != 0 { 0o755 } else { 0o644 });
        w.start_file(rel.to_string_lossy(), opts)?;
        w.write_all(&std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?)?;
    }
    Ok(w.finish()?.into_inner())
}

pub async fn run(a: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&a.endpoint)?;
    let zip = zip_dir(&a.dir)?;
    let zip_b64 = base64::engine::general_purpose::STANDARD.encode(&zip);
    let mut config = Map::new();
    if let Some(r) = &a.runtime {
        config.insert("Runtime".into(), json!(r));
    }
    if let Some(h) = &a.handler {
        config.insert("Handler".into(), json!(h));
    }
    if let Some(m) = a.memory {
        config.insert("MemorySize".into(), json!(m));
    }
    if let Some(t) = a.timeout {
        config.insert("Timeout".into(), json!(t));
    }
    if !a.env.is_empty() {
        let vars: Map<String, Value> = a.env.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        config.insert("Environment".into(), json!({"Variables": vars}));
    }
    let path = format!("/2015-03-31/functions/{}", encode_path(&a.name));
    let existing = match client.get(&path).await {
        Ok(_) => true,
        Err(e) if is_not_found(&e) => false,
        Err(e) => return Err(e),
    };
    let result = if existing {
        let mut out = client.send_json(Method::PUT, &format!("{path}/code"), &json!({"ZipFile": zip_b64})).await?;
        if !config.is_empty() {
            let (updated, warnings) = client
                .send_json_with_warnings(Method::PUT, &format!("{path}/configuration"), &Value::Object(config))
                .await?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            out = updated;
        }
        println!("updated {} ({} bytes, CodeSha256 {})", a.name, zip.len(), out["CodeSha256"].as_str().unwrap_or(""));
        out
    } else {
        let mut body = config;
        body.insert("FunctionName".into(), json!(a.name));
        let role = match &a.role {
            Some(r) => r.clone(),
            None => ensure_default_role(&client).await?,
        };
        body.insert("Role".into(), json!(role));
        body.insert("Code".into(), json!({"ZipFile": zip_b64}));
        let (out, warnings) =
            client.send_json_with_warnings(Method::POST, "/2015-03-31/functions", &Value::Object(body)).await?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        println!("created {} ({} bytes, CodeSha256 {})", a.name, zip.len(), out["CodeSha256"].as_str().unwrap_or(""));
        out
    };
    if a.publish {
        let v = client.send_json(Method::POST, &format!("{path}/versions"), &json!({})).await?;
        println!("published version {}", v["Version"].as_str().unwrap_or("?"));
    }
    let _ = result;
    Ok(ExitCode::SUCCESS)
}

/// The role `kumo deploy` uses when none is given.
const DEFAULT_ROLE: &str = "kumo-lambda-default";

/// What the default role may do: write the function's logs, nothing else
/// (the permissions of AWS's AWSLambdaBasicExecutionRole).
const DEFAULT_ROLE_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"WriteLogs","Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:*:*:*"}]}"#;

const LAMBDA_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// The default role's ARN, creating the role (through IAM, like any client) if it does not exist.
async fn ensure_default_role(client: &Client) -> anyhow::Result<String> {
    let get = client.iam(&[("Action", "GetRole"), ("RoleName", DEFAULT_ROLE)]).await?;
    let xml = match get {
        Ok(xml) => xml,
        Err(e) if e.code == "NoSuchEntity" => {
            let created = client
                .iam(&[
                    ("Action", "CreateRole"),
                    ("RoleName", DEFAULT_ROLE),
                    ("AssumeRolePolicyDocument", LAMBDA_TRUST),
                ])
                .await?
                .map_err(anyhow::Error::new)?;
            client
                .iam(&[
                    ("Action", "PutRolePolicy"),
                    ("RoleName", DEFAULT_ROLE),
                    ("PolicyName", "write-logs"),
                    ("PolicyDocument", DEFAULT_ROLE_POLICY),
                ])
                .await?
                .map_err(anyhow::Error::new)?;
            println!("created the execution role {DEFAULT_ROLE} (trusts Lambda; may write its logs)");
            created
        }
        Err(e) => return Err(e.into()),
    };
    xml.split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("IAM's answer names no role ARN: {xml}"))
}
