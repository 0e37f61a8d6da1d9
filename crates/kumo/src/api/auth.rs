//! The one authentication layer in front of every API on Kumo's port.
//!
//! Every request (Lambda's REST JSON, CloudWatch Logs' JSON 1.1, IAM and STS
//! query calls, Kumo's own `/_kumo` routes) must carry a valid AWS Signature
//! Version 4 from a known access key, unless the server runs with
//! `--auth none`. Nothing is executed before the signature is verified; the
//! verified [`Identity`] travels on as a request extension, and
//! [`super::authorize`] decides what it may do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kumo_core::sigv4::{self, ExpectedScope, RequestParts, SigV4Error, SigningKey};
use subtle::ConstantTimeEq;

use crate::iam::credentials::AccessKey;
use crate::iam::{AuthMode, IamDirectory, Identity};

/// The largest body any API takes (CreateFunction with a 50 MB zip, base64).
const MAX_SIGNED_BODY: usize = 70_167_211;

/// Routes anyone may call: they reveal nothing and change nothing.
const OPEN_PATHS: &[&str] = &["/_kumo/health"];

/// Routes that carry their own proof instead of a SigV4 signature (code
/// download URLs are presigned, as S3's are).
const PRESIGNED_PREFIXES: &[&str] = &["/_kumo/code/"];

/// The body as it arrived, kept for the authorizer (CreateFunction names its
/// function in the body, IAM calls their resources in the form).
#[derive(Clone)]
pub struct SignedBody(pub Bytes);

pub struct Authenticator {
    mode: AuthMode,
    account: String,
    region: String,
    root: Option<AccessKey>,
    directory: Arc<dyn IamDirectory>,
    /// Derived signing keys by (access key, date, region, service): one HMAC
    /// chain per key and day instead of four HMACs per request.
    signing_keys: Mutex<HashMap<(String, String, String, String), SigningKey>>,
    /// `--metrics-token`: the bearer token that may read `/_kumo/metrics`.
    metrics_token: Option<String>,
}

/// The wire protocol of a request, which decides how its errors are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Lambda and Kumo's own routes: `x-amzn-ErrorType` and a JSON body.
    RestJson,
    /// CloudWatch Logs and EventBridge (`X-Amz-Target`): `{"__type", "message"}`.
    Json11(JsonService),
    /// IAM and STS: form-encoded requests, XML answers.
    Query(QueryService),
}

/// The service of a JSON 1.1 request, told by its target's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonService {
    /// `Logs_20140328.*`
    Logs,
    /// `AWSEvents.*`
    Events,
}

impl JsonService {
    pub fn of(headers: &axum::http::HeaderMap) -> JsonService {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("");
        if target.starts_with("AWSEvents.") { JsonService::Events } else { JsonService::Logs }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryService {
    Iam,
    Sts,
}

impl QueryService {
    pub fn signing_name(self) -> &'static str {
        match self {
            QueryService::Iam => "iam",
            QueryService::Sts => "sts",
        }
    }

    pub fn xml_namespace(self) -> &'static str {
        match self {
            QueryService::Iam => "https://iam.amazonaws.com/doc/2010-05-08/",
            QueryService::Sts => "https://sts.amazonaws.com/doc/2011-06-15/",
        }
    }
}

/// STS's operations; every other query action is IAM's.
const STS_ACTIONS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "DecodeAuthorizationMessage",
    "GetAccessKeyInfo",
    "GetCallerIdentity",
    "GetFederationToken",
    "GetSessionToken",
];

/// The value of one `key=value` pair of a form or query string (still encoded).
pub fn form_value<'a>(form: &'a str, key: &str) -> Option<&'a str> {
    form.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
}

impl Protocol {
    pub fn of(
        method: &axum::http::Method,
        path: &str,
        query: &str,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Protocol {
        if headers.contains_key("x-amz-target") {
            return Protocol::Json11(JsonService::of(headers));
        }
        if path == "/" {
            let form = if *method == axum::http::Method::GET { query } else { std::str::from_utf8(body).unwrap_or("") };
            let action = form_value(form, "Action").unwrap_or("");
            let service = if STS_ACTIONS.contains(&action) { QueryService::Sts } else { QueryService::Iam };
            return Protocol::Query(service);
        }
        Protocol::RestJson
    }

    /// The signing name a signature for this protocol must be scoped to.
    pub fn signing_name(self) -> &'static str {
        match self {
            Protocol::RestJson => "lambda",
            Protocol::Json11(JsonService::Logs) => "logs",
            Protocol::Json11(JsonService::Events) => "events",
            Protocol::Query(s) => s.signing_name(),
        }
    }
}

/// Writes an error the way the request's protocol expects it.
pub fn error_response(protocol: Protocol, status: u16, code: &str, message: &str) -> Response {
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::FORBIDDEN);
    let request_id = uuid::Uuid::new_v4().to_string();
    let (content_type, body) = match protocol {
        Protocol::RestJson => {
            // Lambda spells the member `Message` for AccessDenied, `message` for the gateway's own errors.
            let key = if code == "AccessDeniedException" { "Message" } else { "message" };
            ("application/json", serde_json::json!({ key: message }).to_string())
        }
        Protocol::Json11(_) => {
            ("application/x-amz-json-1.1", serde_json::json!({"__type": code, "message": message}).to_string())
        }
        Protocol::Query(service) => (
            "text/xml",
            format!(
                "<ErrorResponse xmlns=\"{}\"><Error><Type>Sender</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
                service.xml_namespace(),
                super::query::escape(code),
                super::query::escape(message),
                request_id
            ),
        ),
    };
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

/// A refused request: why, for the log and for the client.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn from_sigv4(e: &SigV4Error, protocol: Protocol) -> Refusal {
        let aws = e.aws_error();
        // The query services (IAM, STS) name the same failures differently.
        let code = match (protocol, e) {
            (Protocol::Query(_), SigV4Error::SignatureMismatch { .. }) => "SignatureDoesNotMatch",
            (Protocol::Query(_), SigV4Error::UnrecognizedClient) => "InvalidClientTokenId",
            (Protocol::Query(_), SigV4Error::MissingAuthentication) => "MissingAuthenticationToken",
            (Protocol::Query(_), _) if aws.code == "InvalidSignatureException" => "SignatureDoesNotMatch",
            (Protocol::Query(_), _) if aws.code == "IncompleteSignatureException" => "IncompleteSignature",
            _ => aws.code,
        };
        let message = match (protocol, e) {
            (Protocol::Query(_), SigV4Error::MissingAuthentication) => "Request is missing Authentication Token".into(),
            _ => aws.message,
        };
        Refusal { status: aws.status, code, message }
    }

    fn expired_token() -> Refusal {
        Refusal {
            status: 403,
            code: "ExpiredTokenException",
            message: "The security token included in the request is expired".into(),
        }
    }

    fn invalid_token(protocol: Protocol) -> Refusal {
        Refusal::from_sigv4(&SigV4Error::UnrecognizedClient, protocol)
    }
}

impl Authenticator {
    pub fn new(
        mode: AuthMode,
        account: &str,
        region: &str,
        root: Option<AccessKey>,
        directory: Arc<dyn IamDirectory>,
    ) -> Authenticator {
        Authenticator {
            mode,
            account: account.to_string(),
            region: region.to_string(),
            root,
            directory,
            signing_keys: Mutex::new(HashMap::new()),
            metrics_token: None,
        }
    }

    /// Lets `GET /_kumo/metrics` in with `Authorization: Bearer TOKEN` instead of
    /// SigV4 (Prometheus scrapers cannot sign); that route only.
    pub fn with_metrics_token(mut self, token: Option<String>) -> Authenticator {
        self.metrics_token = token.filter(|t| !t.is_empty());
        self
    }

    fn metrics_bearer_ok(&self, parts: &axum::http::HeaderMap) -> bool {
        let Some(expected) = &self.metrics_token else { return false };
        let sent = parts.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        sent.is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.as_bytes())))
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Who signed `request`, or why it is refused. `now_ms` is the server clock.
    pub fn authenticate(
        &self,
        request: &RequestParts<'_>,
        protocol: Protocol,
        now_ms: i64,
    ) -> Result<Identity, Refusal> {
        let signer = self.identify(request, protocol, now_ms)?;
        self.verify(request, protocol, &signer)?;
        Ok(signer.identity)
    }

    /// Everything that needs no body: the signature's form, its time, its
    /// scope and its key. A request refused here is refused before Kumo reads
    /// (and buffers, up to 70 MB) a byte of its body.
    pub fn identify(&self, request: &RequestParts<'_>, protocol: Protocol, now_ms: i64) -> Result<Signer, Refusal> {
        let service = protocol.signing_name();
        // IAM is a global service: clients sign it for us-east-1 whatever Kumo's region.
        let region = if service == "iam" { None } else { Some(self.region.as_str()) };
        let expected = ExpectedScope { service, region };
        let parsed = sigv4::parse(request)
            .and_then(|p| p.ok_or(SigV4Error::MissingAuthentication))
            .map_err(|e| Refusal::from_sigv4(&e, protocol))?;
        sigv4::check(&parsed, &expected, now_ms.div_euclid(1000)).map_err(|e| Refusal::from_sigv4(&e, protocol))?;
        let key_id = &parsed.credential.access_key_id;
        let key = self.resolve_key(key_id, now_ms).ok_or_else(|| Refusal::invalid_token(protocol))?;
        if let Some(token) = &key.session_token {
            let sent = parsed.security_token.as_deref().unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
                return Err(Refusal::invalid_token(protocol));
            }
            if key.expired {
                return Err(Refusal::expired_token());
            }
        }
        let (secret, identity) = (key.secret_access_key, key.identity);
        let c = &parsed.credential;
        let cache_key = (c.access_key_id.clone(), c.date.clone(), c.region.clone(), c.service.clone());
        let key = {
            let mut cache = self.signing_keys.lock().unwrap_or_else(|e| e.into_inner());
            if cache.len() > 4096 {
                cache.clear();
            }
            cache
                .entry(cache_key)
                .or_insert_with(|| sigv4::signing_key(&secret, &c.date, &c.region, &c.service))
                .clone()
        };
        Ok(Signer { parsed, identity, key })
    }

    /// The secret and identity of an access key: the root's, or one IAM knows.
    pub fn resolve_key(&self, key_id: &str, now_ms: i64) -> Option<crate::iam::ResolvedKey> {
        match &self.root {
            Some(root) if root.access_key_id == key_id => Some(crate::iam::ResolvedKey {
                secret_access_key: root.secret_access_key.clone(),
                identity: Identity::root(&self.account, Some(key_id.to_string())),
                session_token: None,
                expired: false,
            }),
            _ => self.directory.resolve_access_key(key_id, now_ms),
        }
    }

    /// The signature over the whole request, body included.
    pub fn verify(&self, request: &RequestParts<'_>, protocol: Protocol, signer: &Signer) -> Result<(), Refusal> {
        sigv4::verify(request, &signer.parsed, &signer.key).map_err(|e| {
            if let SigV4Error::SignatureMismatch { canonical_request, string_to_sign } = &e {
                let key = &signer.parsed.credential.access_key_id;
                tracing::debug!(access_key = %key, %canonical_request, %string_to_sign, "signature mismatch");
            }
            Refusal::from_sigv4(&e, protocol)
        })
    }
}

/// A request's signature whose key is known, not yet checked against the body.
pub struct Signer {
    parsed: sigv4::ParsedSignature,
    pub identity: Identity,
    key: SigningKey,
}

/// The protocol as far as it can be told without the body: for IAM and STS
/// (both `POST /` with a form) the signature's own scope says which service
/// the client means; the body's `Action` must agree (checked after reading it).
fn protocol_before_body(parts: &axum::http::request::Parts) -> Protocol {
    let query = parts.uri.query().unwrap_or("");
    let protocol = Protocol::of(&parts.method, parts.uri.path(), query, &parts.headers, &[]);
    if protocol != Protocol::Query(QueryService::Iam) || form_value(query, "Action").is_some() {
        return protocol;
    }
    let authorization = parts.headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if authorization.contains("/sts/aws4_request") { Protocol::Query(QueryService::Sts) } else { protocol }
}

fn refuse(protocol: Protocol, refusal: &Refusal, path: &str) -> Response {
    tracing::debug!(code = refusal.code, message = %refusal.message, path, "request refused");
    error_response(protocol, refusal.status, refusal.code, &refusal.message)
}

pub async fn authenticate(State(auth): State<Arc<Authenticator>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if OPEN_PATHS.contains(&path) || PRESIGNED_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return next.run(req).await;
    }
    if path == "/_kumo/metrics" && req.method() == axum::http::Method::GET && auth.metrics_bearer_ok(req.headers()) {
        let mut req = req;
        req.extensions_mut().insert(Identity::root(&auth.account, None));
        req.extensions_mut().insert(Protocol::RestJson);
        return next.run(req).await;
    }
    if auth.mode == AuthMode::None && path != "/" {
        // Nothing to verify and the root may do anything: the body streams on untouched.
        let mut req = req;
        let protocol = if req.headers().contains_key("x-amz-target") {
            Protocol::Json11(JsonService::of(req.headers()))
        } else {
            Protocol::RestJson
        };
        req.extensions_mut().insert(Identity::root(&auth.account, None));
        req.extensions_mut().insert(protocol);
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let early = protocol_before_body(&parts);
    let now = crate::engine::now_ms();
    let signer = match auth.mode {
        AuthMode::None => None,
        AuthMode::Sigv4 => {
            let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
            let query = parts.uri.query().unwrap_or("");
            let request = RequestParts {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query,
                headers: &headers,
                payload_sha256: "",
            };
            match auth.identify(&request, early, now) {
                Ok(signer) => Some(signer),
                Err(refusal) => return refuse(early, &refusal, parts.uri.path()),
            }
        }
    };
    let Ok(bytes) = axum::body::to_bytes(body, MAX_SIGNED_BODY).await else {
        let message = format!("Request must be smaller than {MAX_SIGNED_BODY} bytes");
        return error_response(early, 413, "RequestEntityTooLargeException", &message);
    };
    let query = parts.uri.query().unwrap_or("");
    let protocol = Protocol::of(&parts.method, parts.uri.path(), query, &parts.headers, &bytes);
    let identity = match signer {
        None => Identity::root(&auth.account, None),
        Some(signer) => {
            if protocol != early {
                // Signed for IAM, asking STS (or the reverse): the scope names the wrong service.
                let scope = SigV4Error::WrongScope {
                    faults: vec![sigv4::ScopeFault::Service { expected: protocol.signing_name().to_string() }],
                };
                return refuse(protocol, &Refusal::from_sigv4(&scope, protocol), parts.uri.path());
            }
            let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
            let payload = sigv4::sha256_hex(&bytes);
            let request = RequestParts {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query,
                headers: &headers,
                payload_sha256: &payload,
            };
            if let Err(refusal) = auth.verify(&request, protocol, &signer) {
                return refuse(protocol, &refusal, parts.uri.path());
            }
            signer.identity
        }
    };
    parts.extensions.insert(identity);
    parts.extensions.insert(protocol);
    parts.extensions.insert(SignedBody(bytes.clone()));
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
