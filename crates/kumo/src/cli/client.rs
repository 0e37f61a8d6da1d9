//! A small client for Kumo's HTTP API, shared by the client commands.

use anyhow::{Context, anyhow};
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    base: String,
}

/// An AWS-shaped error answer.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiFailure {}

pub fn encode_path(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Client {
    pub fn new(base: &str) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder().no_proxy().build().context("building the HTTP client")?;
        Ok(Client { http, base: base.trim_end_matches('/').to_string() })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request and returns the JSON answer, or the AWS error it carried.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach Kumo at {} (is `kumo serve` running?)", self.base))?;
        let status = resp.status().as_u16();
        let code = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp.bytes().await.context("reading Kumo's answer")?;
        if status >= 300 {
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let message =
                body.get("Message").or_else(|| body.get("message")).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(anyhow!(ApiFailure { status, code: code.unwrap_or_else(|| "Error".into()), message }));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("Kumo's answer is not JSON")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(self.url(path))).await
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        let req =
            self.http.request(method, self.url(path)).header("content-type", "application/json").body(body.to_string());
        self.send(req).await
    }
}

/// Whether an error is Kumo saying "no such resource".
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>().is_some_and(|f| f.status == 404)
}
