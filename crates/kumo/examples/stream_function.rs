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
    tokio::spawn(async move {
        for piece in ["streamed ", "from ", &path] {
            if tx.send_data(piece.to_string().into()).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
