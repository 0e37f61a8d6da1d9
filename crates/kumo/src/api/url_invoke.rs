//! The data plane of function URLs: a request to
//! `<url-id>.lambda-url.<region>.localhost` (or `/_kumo/url/<url-id>/...`)
//! becomes a payload format 2.0 event, a synchronous invocation through the
//! engine's usual path (concurrency, logs, metering, budgets), and the
//! function's answer mapped back to HTTP.
//!
//! This layer sits in front of every other one: URL requests carry no Lambda
//! API signature (or one for the URL itself), so they must skip the API's
//! authentication layer, and their `*.localhost` host must never be read as an
//! S3 bucket. Access is decided here: `AWS_IAM` needs a valid SigV4 signature
//! and `lambda:InvokeFunctionUrl`; `NONE` needs the function's resource policy
//! to let `*` invoke the URL.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use kumo_core::invoke::{InvocationType, MAX_SYNC_REQUEST_BYTES};
use kumo_core::sigv4::{RequestParts, sha256_hex};
use kumo_core::url::event::{self, EventBody, IamCaller, UrlRequest};
use kumo_core::url::response::{self as mapping, ResponseBody};
use kumo_core::url::{self, AuthType, InvokeMode};
use kumo_core::{ApiError, ErrorCode};

use super::auth::{Authenticator, Protocol};
use super::authorize::{Ask, Authorizer};
use super::url_stream;
use crate::engine::{Engine, InvokeRequest, UrlTarget};
use crate::iam::{AuthMode, Identity};

/// What the URL layer needs: the engine to invoke, and who may call.
#[derive(Clone)]
pub struct UrlSurface {
    pub engine: Arc<Engine>,
    pub authenticator: Arc<Authenticator>,
    pub authorizer: Arc<Authorizer>,
}

/// Serves function-URL requests; hands every other request on.
pub async fn route(State(s): State<UrlSurface>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    if let Some(h) = host.as_deref().and_then(url::parse_host) {
        let path = req.uri().path().to_string();
        return serve(&s, req, &h.url_id, Some(&h.region), path).await;
    }
    if let Some((id, path)) = url::split_path_form(req.uri().path()) {
        let id = id.to_string();
        return serve(&s, req, &id, None, path).await;
    }
    next.run(req).await
}

/// A refusal as AWS words it for URLs: a bare `Message`.
fn refusal(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let body = serde_json::json!({"Message": message}).to_string();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    resp
}

fn forbidden() -> Response {
    refusal(StatusCode::FORBIDDEN, "AccessDeniedException", "Forbidden")
}

fn bad_gateway() -> Response {
    // The function failed or answered nonsense: Lambda's URL says only this.
    let mut resp = (StatusCode::BAD_GATEWAY, "Internal Server Error").into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    resp
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn serve(s: &UrlSurface, req: Request, url_id: &str, region: Option<&str>, raw_path: String) -> Response {
    let region_ok = region.is_none_or(|r| r == s.engine.config().scope.region);
    let target = if region_ok && url::is_url_id(url_id) { s.engine.function_url_by_id(url_id) } else { None };
    let Some(target) = target else {
        tracing::debug!(%url_id, "request for an unknown function URL");
        return forbidden();
    };
    // A preflight is the URL's own business: answered before authentication
    // (browsers never sign one) and without invoking the function.
    if let Some(cors) = &target.config.cors
        && req.method() == Method::OPTIONS
        && let (Some(origin), Some(method)) =
            (header_text(req.headers(), "origin"), header_text(req.headers(), "access-control-request-method"))
    {
        let headers = cors.preflight(origin, method, header_text(req.headers(), "access-control-request-headers"));
        let mut resp = StatusCode::OK.into_response();
        append_headers(resp.headers_mut(), &headers);
        return resp;
    }
    let (parts, body) = req.into_parts();
    let Some(bytes) = super::read_limited(body, MAX_SYNC_REQUEST_BYTES).await else {
        return too_large();
    };
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let caller = match authorize(s, &parts, &bytes, &target, peer) {
        Ok(caller) => caller,
        Err(Refused) => return forbidden(),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let payload = event_payload(s, &parts, &bytes, &target, url_id, &raw_path, peer, caller, &request_id);
    let origin = header_text(&parts.headers, "origin").map(str::to_string);
    let streaming = target.config.invoke_mode == InvokeMode::ResponseStream;
    let (sink, parts) = match streaming {
        true => {
            let (sink, parts) = crate::engine::stream::channel();
            (Some(sink), Some(parts))
        }
        false => (None, None),
    };
    let request = InvokeRequest {
        function_name: target.function.clone(),
        qualifier: target.qualifier.clone(),
        invocation_type: InvocationType::RequestResponse,
        payload: payload.into(),
        log_tail: false,
        client_context: None,
        caller_lineage: None,
        request_id: Some(request_id.clone()),
        stream: sink,
    };
    let mut resp = match parts {
        None => whole_answer(s.engine.invoke(request).await),
        Some(parts) => match url_stream::open(s.engine.clone(), request, parts).await {
            url_stream::Opening::Whole(result) => whole_answer(result),
            url_stream::Opening::Streaming { content_type, parts, .. } => {
                url_stream::response(content_type, parts).await.unwrap_or_else(bad_gateway)
            }
        },
    };
    if let Some(cors) = &target.config.cors {
        // Configured CORS headers replace whatever the function said about CORS.
        let stale: Vec<HeaderName> =
            resp.headers().keys().filter(|k| k.as_str().starts_with("access-control-")).cloned().collect();
        for k in stale {
            resp.headers_mut().remove(k);
        }
        append_headers(resp.headers_mut(), &cors.response_headers(origin.as_deref()));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// The response to an invocation that answered in one piece.
fn whole_answer(result: Result<crate::engine::InvokeResponse, ApiError>) -> Response {
    match result {
        Err(e) => invoke_error(&e),
        Ok(r) if r.function_error.is_some() => bad_gateway(),
        Ok(r) => http_response(&r.payload),
    }
}

fn too_large() -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RequestEntityTooLargeException",
        &format!("Request must be smaller than {MAX_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation"),
    )
}

/// The engine refused to run the function.
fn invoke_error(e: &ApiError) -> Response {
    match e.code {
        ErrorCode::TooManyRequests => {
            let mut resp = refusal(StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException", "Rate Exceeded.");
            resp.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
            resp
        }
        // The event (the body grown by base64 and the request's headers) is over 6 MB.
        ErrorCode::RequestEntityTooLarge => too_large(),
        // The function went away between lookup and invoke.
        ErrorCode::ResourceNotFound => forbidden(),
        _ => {
            tracing::warn!(error = %e, "function URL invocation failed");
            bad_gateway()
        }
    }
}

/// A caller the URL does not serve (AWS answers 403 `Forbidden`, whatever the reason).
struct Refused;

/// Decides access; `Ok` carries the IAM caller for the event (AWS_IAM only).
fn authorize(
    s: &UrlSurface,
    parts: &axum::http::request::Parts,
    body: &[u8],
    target: &UrlTarget,
    peer: Option<SocketAddr>,
) -> Result<Option<Identity>, Refused> {
    let auth_type = target.config.auth_type;
    if s.authenticator.mode() == AuthMode::None {
        // `--auth none`: nothing is checked anywhere, URLs included.
        return Ok(None);
    }
    let ask = Ask { action: "lambda:InvokeFunctionUrl".to_string(), resource: target.function_arn.clone() };
    let mut context = vec![
        ("lambda:FunctionUrlAuthType".to_string(), vec![auth_type.as_str().to_string()]),
        ("aws:SecureTransport".to_string(), vec!["false".to_string()]),
    ];
    if let Some(peer) = peer {
        context.push(("aws:SourceIp".to_string(), vec![peer.ip().to_string()]));
    }
    let now = crate::engine::now_ms();
    match auth_type {
        AuthType::None => {
            let decision = s.authorizer.decide_anonymous(&ask, &context, now);
            if decision.is_allowed() {
                Ok(None)
            } else {
                tracing::info!(resource = %ask.resource, "function URL refused: no resource policy lets anyone invoke it");
                tracing::debug!(explanation = %decision.explain(), "why the URL was refused");
                Err(Refused)
            }
        }
        AuthType::AwsIam => {
            let headers: Vec<(&str, &[u8])> = parts.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
            let payload = sha256_hex(body);
            let request = RequestParts {
                method: parts.method.as_str(),
                path: parts.uri.path(),
                query: parts.uri.query().unwrap_or(""),
                headers: &headers,
                payload_sha256: &payload,
            };
            let identity = s
                .authenticator
                .identify(&request, Protocol::RestJson, now)
                .and_then(|signer| s.authenticator.verify(&request, Protocol::RestJson, &signer).map(|()| signer));
            let identity = match identity {
                Ok(signer) => signer.identity,
                Err(refused) => {
                    tracing::debug!(code = refused.code, message = %refused.message, "function URL request not authenticated");
                    return Err(Refused);
                }
            };
            if identity.is_root() {
                return Ok(Some(identity));
            }
            let decision = s.authorizer.decide_with_context(&identity, &ask, &context, now);
            if decision.is_allowed() {
                Ok(Some(identity))
            } else {
                tracing::info!(principal = %identity.arn, resource = %ask.resource, "function URL access denied");
                Err(Refused)
            }
        }
    }
}

/// The event for the function, as JSON bytes.
#[allow(clippy::too_many_arguments)]
fn event_payload(
    s: &UrlSurface,
    parts: &axum::http::request::Parts,
    body: &[u8],
    target: &UrlTarget,
    url_id: &str,
    raw_path: &str,
    peer: Option<SocketAddr>,
    caller: Option<Identity>,
    request_id: &str,
) -> Vec<u8> {
    let source_ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    // What AWS's front end adds on its way to the function.
    let port = crate::engine::api_port(&s.engine.config().api_endpoint).to_string();
    for (name, value) in
        [("x-forwarded-for", source_ip.clone()), ("x-forwarded-proto", "http".into()), ("x-forwarded-port", port)]
    {
        if !parts.headers.contains_key(name) {
            headers.push((name.to_string(), value));
        }
    }
    let body = (!body.is_empty()).then(|| {
        let text = event::body_is_text(header_text(&parts.headers, "content-type"))
            .then(|| std::str::from_utf8(body).ok())
            .flatten();
        match text {
            Some(t) => EventBody { text: t.to_string(), base64: false },
            None => EventBody { text: base64::engine::general_purpose::STANDARD.encode(body), base64: true },
        }
    });
    let iam = caller.map(|c| IamCaller {
        access_key: c.access_key_id.clone().unwrap_or_default(),
        account_id: c.account.clone(),
        caller_id: c.user_id.clone(),
        user_arn: c.arn.clone(),
        user_id: c.user_id.clone(),
    });
    let request = UrlRequest {
        url_id: url_id.to_string(),
        region: s.engine.config().scope.region.clone(),
        method: parts.method.as_str().to_string(),
        raw_path: raw_path.to_string(),
        raw_query: parts.uri.query().unwrap_or_default().to_string(),
        protocol: format!("{:?}", parts.version),
        source_ip,
        headers,
        body,
        request_id: request_id.to_string(),
        time_epoch_ms: crate::engine::now_ms(),
        iam: if target.config.auth_type == AuthType::AwsIam { iam } else { None },
    };
    event::encode(&request)
}

/// The function's answer as the URL's response.
fn http_response(payload: &[u8]) -> Response {
    let mapped = match mapping::map(payload) {
        Ok(m) => m,
        Err(e) => {
            tracing::info!(error = %e, "function URL answer could not be mapped to HTTP");
            return bad_gateway();
        }
    };
    let body = match mapped.body {
        ResponseBody::Raw(b) => b,
        ResponseBody::Base64(text) => match base64::engine::general_purpose::STANDARD.decode(text.as_bytes()) {
            Ok(b) => b,
            Err(_) => {
                tracing::info!("function URL answer has isBase64Encoded but its body is not base64");
                return bad_gateway();
            }
        },
    };
    let status = StatusCode::from_u16(mapped.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut resp = (status, body).into_response();
    append_headers(resp.headers_mut(), &mapped.headers);
    resp
}

/// Adds headers; one whose name or value HTTP cannot carry is dropped.
pub(super) fn append_headers(map: &mut HeaderMap, headers: &[(String, String)]) {
    for (name, value) in headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) else {
            tracing::debug!(%name, "header dropped from a function URL response");
            continue;
        };
        if name.as_str() == "set-cookie" || name.as_str() == "vary" {
            map.append(name, value);
        } else {
            map.insert(name, value);
        }
    }
}
