//! A function URL handler that streams its answer, built with AWS's
//! `lambda_runtime` crate (`StreamResponse`): the Runtime API sees a chunked
//! POST in `streaming` response mode with an HTTP integration prelude
//! (status, headers, cookies), eight NUL bytes, then the body in pieces.

use lambda_runtime::streaming::{Body, Response, channel};
use lambda_runtime::{Error, LambdaEvent, MetadataPrelude, service_fn};
use serde_json::Value;

async fn handler(event: LambdaEvent<Value>) -> Result<Response<Body>, Error> {
    let path = event.payload.get("rawPath").and_then(Value::as_str).unwrap_or("/").to_string();
    let (mut tx, rx) = channel();
    // `/slow` pauses between its two pieces, so a client can tell a stream
    // passed on as it arrives from one collected first.
    let (pieces, pause_ms) = match path.as_str() {
        "/slow" => (vec!["first|".to_string(), "last".to_string()], 1500),
        _ => (vec!["streamed ".to_string(), "from ".to_string(), path.clone()], 20),
    };
    tokio::spawn(async move {
        for (i, piece) in pieces.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            }
            if tx.send_data(piece.into()).await.is_err() {
                return;
            }
        }
    });
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("content-type", axum::http::HeaderValue::from_static("text/plain"));
    headers.insert("x-streamed", axum::http::HeaderValue::from_static("yes"));
    Ok(Response {
        metadata_prelude: MetadataPrelude {
            status_code: axum::http::StatusCode::ACCEPTED,
            headers,
            cookies: vec!["flavour=chunked; Path=/".to_string()],
        },
        stream: rx,
    })
}

/// With `STREAM_RUNTIME=trailer-error` the function is its own minimal
/// runtime instead: it streams a prelude and a first piece by hand, then ends
/// the chunked upload with the error trailers the Runtime API defines for a
/// failure mid-stream (`lambda_runtime` has no way to send real trailers).
fn trailer_error_runtime() -> std::io::Result<()> {
    use std::io::{Read, Write};
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").map_err(std::io::Error::other)?;
    loop {
        let mut next = std::net::TcpStream::connect(&api)?;
        write!(next, "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        next.read_to_string(&mut answer)?;
        let request_id = answer
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("lambda-runtime-aws-request-id:").map(|v| v.trim().to_string())
            })
            .ok_or_else(|| std::io::Error::other("no request id"))?;
        let mut up = std::net::TcpStream::connect(&api)?;
        write!(
            up,
            "POST /2018-06-01/runtime/invocation/{request_id}/response HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\
             Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
             Content-Type: application/vnd.awslambda.http-integration-response\r\n\
             Trailer: Lambda-Runtime-Function-Error-Type\r\nTrailer: Lambda-Runtime-Function-Error-Body\r\n\r\n"
        )?;
        let mut chunk = |bytes: &[u8]| -> std::io::Result<()> {
            write!(up, "{:x}\r\n", bytes.len())?;
            up.write_all(bytes)?;
            up.write_all(b"\r\n")?;
            up.flush()
        };
        let mut prelude = br#"{"statusCode":200,"headers":{"content-type":"text/plain"}}"#.to_vec();
        prelude.extend_from_slice(&[0; 8]);
        chunk(&prelude)?;
        chunk(b"partial ")?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        // base64 of {"errorMessage":"broke mid-stream","errorType":"Stream.Broke"}
        let body = "eyJlcnJvck1lc3NhZ2UiOiJicm9rZSBtaWQtc3RyZWFtIiwiZXJyb3JUeXBlIjoiU3RyZWFtLkJyb2tlIn0=";
        write!(
            up,
            "0\r\nLambda-Runtime-Function-Error-Type: Stream.Broke\r\nLambda-Runtime-Function-Error-Body: {body}\r\n\r\n"
        )?;
        let mut ack = String::new();
        up.read_to_string(&mut ack)?;
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    if std::env::var("STREAM_RUNTIME").as_deref() == Ok("trailer-error") {
        return trailer_error_runtime().map_err(Error::from);
    }
    lambda_runtime::run(service_fn(handler)).await
}
