//! The S3-compatible object store on Kumo's port.
//!
//! s3s parses the S3 REST protocol (path- and virtual-hosted-style), verifies
//! SigV4 (headers, presigned URLs, aws-chunked streams) and writes the XML;
//! [`ObjectStore`] implements the operations over [`blobs`] (the bytes, one
//! immutable file each) and [`meta`] (rows in Kumo's SQLite database), and
//! [`notify`] turns writes into asynchronous invocations committed in the same
//! transaction as the write.

pub mod access;
pub mod blobs;
mod bucket_config;
mod destination;
pub mod meta;
pub mod notify;
mod service;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use kumo_core::s3::notification::NotificationConfig;
use s3s::host::{S3Host, VirtualHost};
use s3s::service::{S3Service, S3ServiceBuilder};

use crate::api::auth::Authenticator;
use crate::api::authorize::Authorizer;
use crate::engine::Engine;
use crate::iam::AuthMode;
use crate::store::sqlite::SqliteStore;

/// The largest single PUT, as S3's.
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The request id of an S3 request (`x-amz-request-id`, and the event's).
#[derive(Debug, Clone)]
pub struct S3RequestId(pub String);

pub struct ObjectStore {
    store: Arc<SqliteStore>,
    blobs: blobs::Blobs,
    engine: Arc<Engine>,
    authorizer: Arc<Authorizer>,
    region: String,
    account: String,
    /// `x-amz-id-2` of this server.
    host_id: String,
    sequencer: AtomicU64,
    /// Each bucket's notification configuration, read on every write.
    notifications: RwLock<HashMap<String, Arc<NotificationConfig>>>,
}

/// What failed while opening the object store.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("preparing the object directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("bucket {bucket} has an unreadable notification configuration: {source}")]
    Notification { bucket: String, source: serde_json::Error },
}

impl ObjectStore {
    pub async fn open(
        data_dir: &std::path::Path,
        store: Arc<SqliteStore>,
        engine: Arc<Engine>,
        authorizer: Arc<Authorizer>,
        region: &str,
        account: &str,
    ) -> Result<Arc<ObjectStore>, OpenError> {
        let blobs = blobs::Blobs::open(data_dir)?;
        let referenced = meta::referenced_blobs(&store).await?;
        let swept = blobs.sweep(&referenced).await;
        if swept > 0 {
            tracing::info!(files = swept, "removed object files a crash left unreferenced");
        }
        let mut notifications = HashMap::new();
        for b in meta::buckets(&store).await? {
            let config: NotificationConfig = serde_json::from_str(&b.notification)
                .map_err(|source| OpenError::Notification { bucket: b.name.clone(), source })?;
            notifications.insert(b.name, Arc::new(config));
        }
        // Sequencers must grow across restarts too: start from the clock.
        let start = (crate::engine::now_ms() as u64) << 16;
        Ok(Arc::new(ObjectStore {
            store,
            blobs,
            engine,
            authorizer,
            region: region.to_string(),
            account: account.to_string(),
            host_id: uuid::Uuid::new_v4().simple().to_string(),
            sequencer: AtomicU64::new(start),
            notifications: RwLock::new(notifications),
        }))
    }

    fn next_sequencer(&self) -> u64 {
        self.sequencer.fetch_add(1, Ordering::Relaxed)
    }

    fn notification(&self, bucket: &str) -> Option<Arc<NotificationConfig>> {
        self.notifications.read().unwrap_or_else(|e| e.into_inner()).get(bucket).cloned()
    }

    fn set_notification(&self, bucket: &str, config: Option<NotificationConfig>) {
        let mut map = self.notifications.write().unwrap_or_else(|e| e.into_inner());
        match config {
            Some(c) => map.insert(bucket.to_string(), Arc::new(c)),
            None => map.remove(bucket),
        };
    }

    /// The S3 protocol service over this store.
    pub fn service(self: &Arc<Self>, authenticator: Arc<Authenticator>, authorizer: Arc<Authorizer>) -> S3Service {
        let mut builder = S3ServiceBuilder::new(service::S3Api(self.clone()));
        builder.set_host(LocalHosts);
        if authenticator.mode() == AuthMode::Sigv4 {
            builder.set_auth(access::KeyLookup(authenticator.clone()));
            builder.set_access(access::AccessControl { authenticator, authorizer });
        }
        builder.build()
    }
}

/// Virtual-hosted-style addressing on loopback: `BUCKET.localhost` and
/// `BUCKET.s3.localhost` (both resolve to 127.0.0.1 on most systems); every
/// other host (an IP address, `localhost`, the machine's name) is path-style.
struct LocalHosts;

fn bucket_in_host(host: &str) -> Option<&str> {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    if name == "s3.localhost" {
        return None;
    }
    [".s3.localhost", ".localhost"].iter().find_map(|suffix| name.strip_suffix(suffix)).filter(|b| !b.is_empty())
}

impl S3Host for LocalHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<VirtualHost<'a>> {
        Ok(match bucket_in_host(host) {
            Some(bucket) => VirtualHost::new(host).with_bucket(bucket),
            None => VirtualHost::new(host),
        })
    }
}

/// Path prefixes of Kumo's other APIs; every other path is S3's.
const OTHER_API_PREFIXES: &[&str] =
    &["/2015-03-31/", "/2016-08-19/", "/2017-10-31/", "/2019-09-25/", "/2019-09-30/", "/2024-08-31/", "/_kumo/"];

/// Whether a request on the shared port is an S3 request. The signature's
/// credential scope names the service when there is one; otherwise the Host
/// (virtual-hosted style) or the path decides.
pub fn is_s3_request(req: &Request) -> bool {
    let scope_service = |s: &str| -> Option<bool> {
        let credential = s.split("Credential=").nth(1)?;
        let service = credential.split('/').nth(3)?;
        Some(service == "s3")
    };
    if let Some(auth) = req.headers().get("authorization").and_then(|v| v.to_str().ok()) {
        if let Some(is_s3) = scope_service(auth) {
            return is_s3;
        }
        if auth.starts_with("AWS ") {
            return true; // SigV2, which only S3 speaks.
        }
    }
    let query = req.uri().query().unwrap_or("");
    if let Some(raw) = crate::api::auth::form_value(query, "X-Amz-Credential") {
        let decoded = crate::api::query::form_decode(raw);
        return decoded.split('/').nth(3) == Some("s3");
    }
    if req.headers().get("host").and_then(|h| h.to_str().ok()).and_then(bucket_in_host).is_some() {
        return true;
    }
    let path = req.uri().path();
    if OTHER_API_PREFIXES.iter().any(|p| path.starts_with(p)) || req.headers().contains_key("x-amz-target") {
        return false;
    }
    if path == "/" && (req.method() == Method::POST || crate::api::auth::form_value(query, "Action").is_some()) {
        return false;
    }
    true
}

/// Serves one S3 request: adds the request ids S3 returns and hands the
/// request (with its peer address) to s3s.
pub async fn serve(service: &S3Service, mut req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    req.extensions_mut().insert(S3RequestId(request_id.clone()));
    let (parts, body) = req.into_parts();
    let req = s3s::HttpRequest::from_parts(parts, s3s::Body::http_body_unsync(body));
    let mut resp = match service.call(req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            Response::from_parts(parts, Body::new(body))
        }
        Err(e) => {
            tracing::error!(error = ?e, "S3 request failed");
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "InternalError").into_response()
        }
    };
    if resp.status().is_client_error() || resp.status().is_server_error() {
        resp = complete_error(resp, &request_id).await;
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp
}

/// S3's words for errors s3s reports by code alone.
fn default_message(code: &str) -> &'static str {
    match code {
        "AccessDenied" => "Access Denied",
        "InvalidBucketName" => "The specified bucket is not valid.",
        "NoSuchBucket" => "The specified bucket does not exist",
        "NoSuchKey" => "The specified key does not exist.",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented",
        "InvalidRange" => "The requested range is not satisfiable",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "EntityTooLarge" => "Your proposed upload exceeds the maximum allowed size",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "KeyTooLongError" => "Your key is too long",
        _ => "The request could not be completed.",
    }
}

/// Adds the `<Message>` and `<RequestId>` every S3 error body carries when
/// s3s left them out (SDKs show the message to the user).
async fn complete_error(resp: Response, request_id: &str) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("<Error>") {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let mut xml = text.into_owned();
    if !xml.contains("<Message>") {
        let code = xml.split("<Code>").nth(1).and_then(|r| r.split("</Code>").next()).unwrap_or("").to_string();
        xml = xml.replacen("</Code>", &format!("</Code><Message>{}</Message>", default_message(&code)), 1);
    }
    if !xml.contains("<RequestId>") {
        xml = xml.replacen("</Error>", &format!("<RequestId>{request_id}</RequestId></Error>"), 1);
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(xml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_hosts_are_loopback_names_only() {
        assert_eq!(bucket_in_host("photos.localhost:9777"), Some("photos"));
        assert_eq!(bucket_in_host("photos.s3.localhost"), Some("photos"));
        assert_eq!(bucket_in_host("my.dotted.bucket.s3.localhost:1"), Some("my.dotted.bucket"));
        assert_eq!(bucket_in_host("localhost:9777"), None);
        assert_eq!(bucket_in_host("s3.localhost:9777"), None);
        assert_eq!(bucket_in_host("127.0.0.1:9777"), None);
        assert_eq!(bucket_in_host("myhost.example.com"), None);
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).unwrap_or_default()
    }

    #[test]
    fn the_signature_scope_then_the_host_then_the_path_decide() {
        let s3_auth =
            "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x";
        let lambda_auth =
            "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=x";
        assert!(is_s3_request(&request("GET", "/2015-03-31/functions", &[("authorization", s3_auth)])));
        assert!(!is_s3_request(&request("GET", "/bucket", &[("authorization", lambda_auth)])));
        assert!(is_s3_request(&request(
            "GET",
            "/b/k?X-Amz-Credential=AKIA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request",
            &[]
        )));
        assert!(is_s3_request(&request("GET", "/", &[("host", "b.localhost:9777")])));
        assert!(is_s3_request(&request("GET", "/", &[])));
        assert!(is_s3_request(&request("PUT", "/bucket/key", &[])));
        assert!(!is_s3_request(&request("GET", "/2015-03-31/functions", &[])));
        assert!(!is_s3_request(&request("POST", "/", &[])));
        assert!(!is_s3_request(&request("GET", "/?Action=GetCallerIdentity", &[])));
        assert!(!is_s3_request(&request("GET", "/_kumo/health", &[])));
    }
}
