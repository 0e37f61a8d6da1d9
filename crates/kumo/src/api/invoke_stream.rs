//! InvokeWithResponseStream (`POST /2021-11-15/functions/{name}/response-streaming-invocations`):
//! the function's answer as an event stream of `PayloadChunk` events, sent
//! as the runtime streams them, closed by one `InvokeComplete` event that
//! carries the error (if any) and the log tail.
//!
//! A runtime that answers in one piece gets the same shape: one chunk, then
//! the completion. Refusals before the function runs (unknown function,
//! throttling, bad parameters) are ordinary AWS errors, as on Lambda.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kumo_core::eventstream;
use kumo_core::invoke::{InvocationType, MAX_SYNC_REQUEST_BYTES};
use kumo_core::{ApiError, ErrorCode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::AppState;
use super::error::{ApiResult, AwsError};
use super::lambda::{client_context_of, header, log_tail_of};
use super::read_limited;
use super::url_stream::{self, Opening};
use crate::engine::stream::{StreamPart, StreamReceiver};
use crate::engine::{InvokeRequest, InvokeResponse};

const EVENT_STREAM: &str = "application/vnd.amazon.eventstream";

pub async fn invoke_with_response_stream(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    identity: Option<axum::Extension<crate::iam::Identity>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let invocation_type = match header(&headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => InvocationType::RequestResponse,
        Some("DryRun") => InvocationType::DryRun,
        Some(other) => {
            return Err(AwsError(ApiError::new(
                ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, DryRun]"
                ),
            )));
        }
    };
    let log_tail = log_tail_of(&headers)?;
    let client_context = client_context_of(&headers)?;
    let Some(payload) = read_limited(body, MAX_SYNC_REQUEST_BYTES).await else {
        return Err(AwsError(ApiError::new(
            ErrorCode::RequestEntityTooLarge,
            format!("Request must be smaller than {MAX_SYNC_REQUEST_BYTES} bytes for the InvokeFunction operation"),
        )));
    };
    let caller_lineage = s.engine.caller_lineage(&crate::engine::Caller {
        trace_header: header(&headers, "x-amzn-trace-id"),
        access_key_id: identity.as_ref().and_then(|i| i.access_key_id.as_deref()),
    });
    let (sink, parts) = crate::engine::stream::channel();
    let request = InvokeRequest {
        function_name: name,
        qualifier: q.get("Qualifier").cloned(),
        invocation_type,
        payload,
        log_tail,
        client_context,
        caller_lineage,
        request_id: None,
        stream: Some(sink),
    };
    match url_stream::open(s.engine.clone(), request, parts).await {
        Opening::Whole(result) => {
            let r = result?;
            if r.status == 204 {
                let mut resp = StatusCode::NO_CONTENT.into_response();
                insert(resp.headers_mut(), "x-amzn-requestid", &r.request_id);
                return Ok(resp);
            }
            let mut frames = Vec::new();
            if r.function_error.is_none() && !r.payload.is_empty() {
                frames.extend(chunk(&r.payload));
            }
            frames.extend(completion(&r));
            let mut resp = event_stream_response(Body::from(frames));
            insert(resp.headers_mut(), "x-amzn-requestid", &r.request_id);
            if let Some(v) = &r.executed_version {
                insert(resp.headers_mut(), "x-amz-executed-version", v);
            }
            Ok(resp)
        }
        Opening::Streaming { executed_version, parts, invocation, .. } => {
            let state = Forwarding { parts, invocation: Some(invocation) };
            let mut resp = event_stream_response(Body::from_stream(futures_util::stream::unfold(state, next_frame)));
            insert(resp.headers_mut(), "x-amz-executed-version", &executed_version);
            Ok(resp)
        }
    }
}

fn event_stream_response(body: Body) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static(EVENT_STREAM));
    resp
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// A `PayloadChunk` event; empty when the bytes cannot be framed (never for
/// chunks under 4 GiB, which the runtime API's limit guarantees).
fn chunk(bytes: &[u8]) -> Vec<u8> {
    eventstream::event("PayloadChunk", "application/octet-stream", bytes).unwrap_or_default()
}

/// The `InvokeComplete` event for how the invocation ended.
fn completion(r: &InvokeResponse) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if r.function_error.is_some() {
        let error: Value = serde_json::from_slice(&r.payload).unwrap_or(Value::Null);
        let code = error.get("errorType").and_then(Value::as_str).unwrap_or("Unhandled");
        let details = error
            .get("errorMessage")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&r.payload).into_owned());
        body.insert("ErrorCode".into(), json!(code));
        body.insert("ErrorDetails".into(), json!(details));
    }
    if let Some(tail) = &r.log_result {
        body.insert("LogResult".into(), json!(tail));
    }
    let payload = Value::Object(body).to_string();
    eventstream::event("InvokeComplete", "application/json", payload.as_bytes()).unwrap_or_default()
}

struct Forwarding {
    parts: StreamReceiver,
    /// Awaited once the stream ends, for the completion event.
    invocation: Option<JoinHandle<Result<InvokeResponse, ApiError>>>,
}

async fn next_frame(mut state: Forwarding) -> Option<(Result<Bytes, std::convert::Infallible>, Forwarding)> {
    loop {
        let invocation = state.invocation.take()?;
        match state.parts.recv().await {
            Some(StreamPart::Data(b)) => {
                state.invocation = Some(invocation);
                return Some((Ok(Bytes::from(chunk(&b))), state));
            }
            Some(StreamPart::Start { .. }) => state.invocation = Some(invocation),
            // Ended, cleanly or not: the invocation's result says which.
            Some(StreamPart::End) | Some(StreamPart::Failed { .. }) | None => {
                let frame = match invocation.await.unwrap_or_else(url_stream::join_failure) {
                    Ok(r) => completion(&r),
                    Err(e) => completion(&InvokeResponse {
                        status: 200,
                        payload: Bytes::from(kumo_core::invoke::error_payload(e.code.wire_name(), &e.message)),
                        function_error: Some("Unhandled"),
                        executed_version: None,
                        log_result: None,
                        request_id: String::new(),
                    }),
                };
                return Some((Ok(Bytes::from(frame)), state));
            }
        }
    }
}
