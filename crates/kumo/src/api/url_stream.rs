//! RESPONSE_STREAM function URLs: the answer a runtime streams goes to the
//! client as it arrives. The status and headers come from the stream's
//! prelude; a stream that breaks off mid-way aborts the response, so the
//! client sees a truncated transfer rather than a complete-looking body.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use kumo_core::url::stream::{HTTP_INTEGRATION_CONTENT_TYPE, PreludeScan, StreamHead, scan_prelude};

use crate::engine::stream::{StreamPart, StreamReceiver};
use crate::engine::{Engine, InvokeRequest, InvokeResponse};
use kumo_core::ApiError;
use tokio::task::JoinHandle;

/// A stream that stopped before its end.
#[derive(Debug, thiserror::Error)]
#[error("the function's response stream broke off: {0}")]
pub struct StreamBroken(String);

/// What the caller gets before the first body byte.
pub enum Opening {
    /// The runtime streams: the response head and the body as it comes.
    Streaming {
        content_type: Option<String>,
        executed_version: String,
        parts: StreamReceiver,
        /// The invocation, which ends with the stream (its log tail and error are known then).
        invocation: JoinHandle<Result<InvokeResponse, ApiError>>,
    },
    /// The runtime answered in one piece (or the invocation failed before streaming).
    Whole(Result<InvokeResponse, ApiError>),
}

/// Starts the invocation and waits for whichever comes first: the runtime
/// starting a stream, or the invocation ending without one.
pub async fn open(engine: Arc<Engine>, request: InvokeRequest, mut parts: StreamReceiver) -> Opening {
    let mut invocation = tokio::spawn(async move { engine.invoke(request).await });
    tokio::select! {
        // The stream's parts are sent before the invocation ends: look there first.
        biased;
        Some(StreamPart::Start { content_type, executed_version }) = parts.recv() => {
            Opening::Streaming { content_type, executed_version, parts, invocation }
        }
        finished = &mut invocation => match parts.try_recv() {
            Ok(StreamPart::Start { content_type, executed_version }) => {
                Opening::Streaming { content_type, executed_version, parts, invocation: tokio::spawn(async move { finished.unwrap_or_else(join_failure) }) }
            }
            _ => Opening::Whole(finished.unwrap_or_else(join_failure)),
        },
    }
}

/// An invocation task that panicked or was cancelled.
pub fn join_failure(e: tokio::task::JoinError) -> Result<InvokeResponse, ApiError> {
    Err(ApiError::new(kumo_core::ErrorCode::Service, format!("invocation task failed: {e}")))
}

/// The streamed response; `None` when the stream failed before its head was complete.
pub async fn response(content_type: Option<String>, mut parts: StreamReceiver) -> Option<Response> {
    let integration = content_type.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(HTTP_INTEGRATION_CONTENT_TYPE));
    let plain = || {
        let mut head = StreamHead::plain();
        if let Some(ct) = &content_type {
            head.headers = vec![("content-type".into(), ct.clone())];
        }
        head
    };
    let (head, first, ended) = if integration {
        let mut buf = Vec::new();
        loop {
            match parts.recv().await {
                Some(StreamPart::Data(b)) => {
                    buf.extend_from_slice(&b);
                    match scan_prelude(&buf) {
                        PreludeScan::NeedMore => continue,
                        PreludeScan::Found { head, body_start } => {
                            break (head, Bytes::copy_from_slice(&buf[body_start..]), false);
                        }
                        PreludeScan::NotAPrelude => break (plain(), Bytes::from(buf), false),
                    }
                }
                Some(StreamPart::Start { .. }) => continue,
                // Ended before its prelude did: what came is the body.
                Some(StreamPart::End) => break (plain(), Bytes::from(buf), true),
                Some(StreamPart::Failed { .. }) | None => return None,
            }
        }
    } else {
        (plain(), Bytes::new(), false)
    };
    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::OK);
    let state = BodyState { parts, first: (!first.is_empty()).then_some(first), ended };
    let body = futures_util::stream::unfold(state, next_piece);
    let mut resp = (status, Body::from_stream(body)).into_response();
    super::url_invoke::append_headers(resp.headers_mut(), &head.headers);
    Some(resp)
}

struct BodyState {
    parts: StreamReceiver,
    first: Option<Bytes>,
    ended: bool,
}

async fn next_piece(mut state: BodyState) -> Option<(Result<Bytes, StreamBroken>, BodyState)> {
    if let Some(first) = state.first.take() {
        return Some((Ok(first), state));
    }
    if state.ended {
        return None;
    }
    loop {
        match state.parts.recv().await {
            Some(StreamPart::Data(b)) => return Some((Ok(b), state)),
            Some(StreamPart::Start { .. }) => continue,
            Some(StreamPart::End) => return None,
            Some(StreamPart::Failed { error_type }) => {
                state.ended = true;
                return Some((Err(StreamBroken(error_type)), state));
            }
            None => {
                state.ended = true;
                return Some((Err(StreamBroken("the stream closed without an end".into())), state));
            }
        }
    }
}
