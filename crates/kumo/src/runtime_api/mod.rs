//! The Runtime API (2018-06-01) that one environment's runtime polls.
//!
//! Every environment gets its own listener, so the listener itself says which
//! environment a request belongs to: no token in the URL, and no way for one
//! environment to answer another's events. Plain hyper, no router: this is the
//! hot path of every warm invocation.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use kumo_core::invoke::{MAX_RESPONSE_BYTES, MAX_STREAMED_RESPONSE_BYTES};
use tokio::net::TcpListener;

use crate::engine::environment::{EnvShared, Event, Next, RuntimeApiError};
use crate::engine::stream::{StreamPart, StreamSender};

mod streaming;

type Body = Full<Bytes>;

const PREFIX: &str = "/2018-06-01/runtime/";

/// Serves the Runtime API of one environment until the task is aborted.
pub fn serve(listener: TcpListener, env: Arc<EnvShared>) -> tokio::task::AbortHandle {
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            // Small request/response exchanges: Nagle + delayed ACK would add ~40 ms.
            let _ = stream.set_nodelay(true);
            let env = env.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(env.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    task.abort_handle()
}

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn accepted() -> Response<Body> {
    json(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
}

fn api_error(e: RuntimeApiError) -> Response<Body> {
    match e {
        RuntimeApiError::InvalidRequestId => {
            json(StatusCode::BAD_REQUEST, r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#)
        }
        RuntimeApiError::InvalidStateTransition => json(
            StatusCode::FORBIDDEN,
            r#"{"errorMessage":"State transition is not allowed","errorType":"InvalidStateTransition"}"#,
        ),
        RuntimeApiError::Gone => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"errorMessage":"The execution environment is shutting down","errorType":"Runtime.ShuttingDown"}"#,
        ),
    }
}

fn now_epoch_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn event_response(event: &Event) -> Response<Body> {
    let mut resp = Response::new(Full::new(event.payload.clone()));
    let h = resp.headers_mut();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("content-type", "application/json");
    put("lambda-runtime-aws-request-id", &event.request_id);
    put("lambda-runtime-deadline-ms", &(now_epoch_ms() + event.timeout_ms).to_string());
    put("lambda-runtime-invoked-function-arn", &event.invoked_arn);
    put("lambda-runtime-trace-id", &event.trace_id);
    if let Some(cc) = &event.client_context {
        put("lambda-runtime-client-context", cc);
    }
    if let Some(ci) = &event.cognito_identity {
        put("lambda-runtime-cognito-identity", ci);
    }
    resp
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ()> {
    Limited::new(req.into_body(), limit).collect().await.map(|c| c.to_bytes()).map_err(|_| ())
}

fn error_type_header(req: &Request<Incoming>) -> Option<String> {
    req.headers().get("lambda-runtime-function-error-type").and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn too_large(env: &EnvShared, id: &str) -> Response<Body> {
    let _ = env.respond_too_large(id);
    json(
        StatusCode::PAYLOAD_TOO_LARGE,
        r#"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#,
    )
}

/// A streamed response: forwarded part by part when the caller can take a
/// stream, else collected (an error in its trailers fails the invocation; an
/// HTTP integration stream becomes a buffered URL answer).
async fn streamed_response(env: &EnvShared, id: &str, req: Request<Incoming>) -> Response<Body> {
    let content_type = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    match env.take_stream_sink(id) {
        Err(e) => api_error(e),
        Ok(Some((sink, version))) => {
            let start = StreamPart::Start { content_type, executed_version: version.to_string() };
            forward_stream(env, id, req, start, sink).await
        }
        Ok(None) => collect_stream(env, id, req, content_type).await,
    }
}

async fn collect_stream(
    env: &EnvShared,
    id: &str,
    req: Request<Incoming>,
    content_type: Option<String>,
) -> Response<Body> {
    let integration =
        content_type.is_some_and(|v| v.eq_ignore_ascii_case(kumo_core::url::stream::HTTP_INTEGRATION_CONTENT_TYPE));
    let Ok(collected) = Limited::new(req.into_body(), MAX_RESPONSE_BYTES).collect().await else {
        return too_large(env, id);
    };
    let error = collected.trailers().and_then(streaming::trailer_error);
    let body = collected.to_bytes();
    let outcome = match error {
        Some((error_type, error_body)) => env.report_error(id, Some(error_type), error_body),
        None if integration => env.respond(id, streaming::buffered_http_answer(&body).unwrap_or(body)),
        None => env.respond(id, body),
    };
    match outcome {
        Ok(()) => accepted(),
        Err(e) => api_error(e),
    }
}

/// Passes the stream on as it arrives. The invocation ends with the stream:
/// a clean end is its success, trailers or a broken upload its failure.
async fn forward_stream(
    env: &EnvShared,
    id: &str,
    req: Request<Incoming>,
    start: StreamPart,
    sink: StreamSender,
) -> Response<Body> {
    // A caller that went away stops receiving; the function still runs to its end, as on Lambda.
    let mut listening = sink.send(start).await.is_ok();
    let mut body = req.into_body();
    let mut streamed = 0usize;
    let mut trailers = None;
    let failure = loop {
        match body.frame().await {
            None => break None,
            Some(Err(e)) => {
                // The runtime's upload broke off (it crashed, or was killed at its timeout):
                // the engine learns why from the sandbox; the caller sees the stream fail.
                tracing::debug!(error = %e, "streamed response broke off");
                if listening {
                    let _ = sink.send(StreamPart::Failed { error_type: "Runtime.StreamError".into() }).await;
                }
                return json(StatusCode::BAD_REQUEST, r#"{"errorMessage":"Stream broken","errorType":"StreamError"}"#);
            }
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    streamed += data.len();
                    if streamed > MAX_STREAMED_RESPONSE_BYTES {
                        break Some((
                            "Function.ResponseSizeTooLarge".to_string(),
                            Bytes::from(streaming::too_large_error()),
                        ));
                    }
                    if listening && !data.is_empty() {
                        listening = sink.send(StreamPart::Data(data)).await.is_ok();
                    }
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            },
        }
    };
    let failure = failure.or_else(|| trailers.as_ref().and_then(streaming::trailer_error));
    let outcome = match failure {
        Some((error_type, error_body)) => {
            if listening {
                let _ = sink.send(StreamPart::Failed { error_type: error_type.clone() }).await;
            }
            env.report_error(id, Some(error_type), error_body)
        }
        None => {
            if listening {
                let _ = sink.send(StreamPart::End).await;
            }
            env.respond(id, Bytes::new())
        }
    };
    match outcome {
        Ok(()) => accepted(),
        Err(e) => api_error(e),
    }
}

async fn handle(env: Arc<EnvShared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        if path == "/2018-06-01/ping" {
            return Ok(Response::new(Full::new(Bytes::from_static(b"pong"))));
        }
        return Ok(json(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#));
    };
    let method = req.method().clone();
    let resp = match (method, rest) {
        (Method::GET, "invocation/next") => match env.next() {
            Next::Deliver(event) => event_response(&event),
            Next::Wait(rx) => match rx.await {
                Ok(event) => event_response(&event),
                // The environment is being destroyed; the runtime will be killed.
                Err(_) => api_error(RuntimeApiError::Gone),
            },
            Next::Gone => api_error(RuntimeApiError::Gone),
        },
        (Method::POST, "init/error") => {
            let error_type = error_type_header(&req);
            let body = read_body(req, MAX_RESPONSE_BYTES).await.unwrap_or_default();
            match env.init_error(error_type, body) {
                Ok(()) => accepted(),
                Err(e) => api_error(e),
            }
        }
        (Method::POST, rest) if rest.starts_with("invocation/") => {
            let tail = &rest["invocation/".len()..];
            if let Some(id) = tail.strip_suffix("/response") {
                let id = id.to_string();
                let mode = req.headers().get("lambda-runtime-function-response-mode").map(|v| v.as_bytes().to_vec());
                match mode {
                    None => match read_body(req, MAX_RESPONSE_BYTES).await {
                        Ok(body) => match env.respond(&id, body) {
                            Ok(()) => accepted(),
                            Err(e) => api_error(e),
                        },
                        Err(()) => too_large(&env, &id),
                    },
                    Some(m) if m.eq_ignore_ascii_case(b"streaming") => streamed_response(&env, &id, req).await,
                    Some(_) => {
                        let _ = env.report_error(
                            &id,
                            Some("Runtime.InvalidResponseModeHeader".to_string()),
                            Bytes::from_static(
                                br#"{"errorMessage":"Invalid function response mode","errorType":"Runtime.InvalidResponseModeHeader"}"#,
                            ),
                        );
                        json(
                            StatusCode::BAD_REQUEST,
                            r#"{"errorMessage":"Invalid function response mode","errorType":"InvalidResponseModeHeader"}"#,
                        )
                    }
                }
            } else if let Some(id) = tail.strip_suffix("/error") {
                let id = id.to_string();
                let error_type = error_type_header(&req);
                let body = read_body(req, MAX_RESPONSE_BYTES).await.unwrap_or_default();
                match env.report_error(&id, error_type, body) {
                    Ok(()) => accepted(),
                    Err(e) => api_error(e),
                }
            } else {
                json(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#)
            }
        }
        _ => json(StatusCode::NOT_FOUND, r#"{"errorMessage":"Not found","errorType":"NotFound"}"#),
    };
    Ok(resp)
}
