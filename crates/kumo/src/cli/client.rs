//! A small client for Kumo's HTTP API, shared by the client commands.

use anyhow::{Context, anyhow};
use serde_json::Value;

pub struct Client {
    http: reqwest::Client,
    base: String,
    credentials: Option<ClientCredentials>,
    region: String,
}

/// The key the CLI signs with.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

/// Finds credentials as `kumo` promises: the root key from the environment
/// (`KUMO_ROOT_ACCESS_KEY_ID`), else the one `kumo serve` stored in the data
/// dir, else the AWS CLI's variables (`AWS_ACCESS_KEY_ID`, ...), so a user or
/// role session can be used too.
pub fn find_credentials(data_dir: &std::path::Path) -> anyhow::Result<Option<ClientCredentials>> {
    use crate::iam::credentials::{root_key_from_env, root_key_from_file};
    let root = match root_key_from_env()? {
        Some(key) => Some(key),
        None => root_key_from_file(data_dir)?,
    };
    if let Some(key) = root {
        return Ok(Some(ClientCredentials {
            access_key_id: key.access_key_id,
            secret_access_key: key.secret_access_key,
            session_token: None,
        }));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    Ok(match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Some(ClientCredentials { access_key_id, secret_access_key, session_token: var("AWS_SESSION_TOKEN") })
        }
        _ => None,
    })
}

/// Adds a SigV4 signature to `request`, for the service its shape says
/// (as the server decides it: Lambda, CloudWatch Logs, IAM or STS).
pub fn sign_request(request: &mut reqwest::Request, c: &ClientCredentials, region: &str) -> anyhow::Result<()> {
    let url = request.url().clone();
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    };
    let body = request.body().and_then(|b| b.as_bytes()).unwrap_or_default();
    let protocol = crate::api::auth::Protocol::of(
        request.method(),
        url.path(),
        url.query().unwrap_or(""),
        request.headers(),
        body,
    );
    let service = protocol.signing_name();
    let payload = kumo_core::sigv4::sha256_hex(body);
    let mut headers: Vec<(String, Vec<u8>)> =
        request.headers().iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
    headers.push(("host".to_string(), host.into_bytes()));
    let header_refs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let parts = kumo_core::sigv4::RequestParts {
        method: request.method().as_str(),
        path: url.path(),
        query: url.query().unwrap_or(""),
        headers: &header_refs,
        payload_sha256: &payload,
    };
    let signer = kumo_core::sigv4::Signer {
        access_key_id: &c.access_key_id,
        secret_access_key: &c.secret_access_key,
        session_token: c.session_token.as_deref(),
        region,
        service,
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let added = signer
        .headers(&parts, &kumo_core::sigv4::format_amz_date(now as i64))
        .map_err(|e| anyhow!("signing the request: {e}"))?;
    for (name, value) in added {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())?;
        request.headers_mut().insert(name, reqwest::header::HeaderValue::from_str(&value)?);
    }
    Ok(())
}

/// The region requests are signed for (Kumo's `--region`).
pub fn client_region() -> String {
    std::env::var("KUMO_REGION").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "us-east-1".to_string())
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
    pub fn new(endpoint: &super::Endpoint) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder().no_proxy().build().context("building the HTTP client")?;
        Ok(Client {
            http,
            base: endpoint.url.trim_end_matches('/').to_string(),
            credentials: find_credentials(&endpoint.data_dir)?,
            region: client_region(),
        })
    }

    /// Signs (SigV4, when there are credentials) and sends a request.
    pub async fn execute(&self, req: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let mut request = req.build().context("building the request")?;
        if let Some(c) = &self.credentials {
            sign_request(&mut request, c, &self.region)?;
        }
        self.http
            .execute(request)
            .await
            .with_context(|| format!("cannot reach Kumo at {} (is `kumo serve` running?)", self.base))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends a request and returns the JSON answer, or the AWS error it carried.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let resp = self.execute(req).await?;
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

    /// Like [`Client::send_json`], also returning the server's `x-kumo-warning`s.
    pub async fn send_json_with_warnings(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(Value, Vec<String>)> {
        let req =
            self.http.request(method, self.url(path)).header("content-type", "application/json").body(body.to_string());
        let resp = self.execute(req).await?;
        let warnings = resp
            .headers()
            .get_all("x-kumo-warning")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let status = resp.status().as_u16();
        let code = resp.headers().get("x-amzn-errortype").and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = resp.bytes().await.context("reading Kumo's answer")?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 300 {
            let message =
                body.get("Message").or_else(|| body.get("message")).and_then(Value::as_str).unwrap_or("").to_string();
            return Err(anyhow!(ApiFailure { status, code: code.unwrap_or_else(|| "Error".into()), message }));
        }
        Ok((body, warnings))
    }

    /// An IAM query call: the XML answer, or IAM's error (code and message).
    pub async fn iam(&self, params: &[(&str, &str)]) -> anyhow::Result<Result<String, ApiFailure>> {
        let mut form: Vec<String> = vec!["Version=2010-05-08".to_string()];
        form.extend(params.iter().map(|(k, v)| format!("{k}={}", encode_path(v))));
        let req = self
            .http
            .post(self.url("/"))
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(form.join("&"));
        let resp = self.execute(req).await?;
        let status = resp.status().as_u16();
        let text = resp.text().await.context("reading IAM's answer")?;
        if status < 300 {
            return Ok(Ok(text));
        }
        let tag = |name: &str| {
            text.split(&format!("<{name}>"))
                .nth(1)
                .and_then(|r| r.split(&format!("</{name}>")).next())
                .unwrap_or("")
                .to_string()
        };
        Ok(Err(ApiFailure { status, code: tag("Code"), message: tag("Message") }))
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
