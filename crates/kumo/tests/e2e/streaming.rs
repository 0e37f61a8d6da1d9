//! Response streaming end to end: a `lambda_runtime` handler that streams,
//! behind a RESPONSE_STREAM function URL (reqwest reads the body piece by
//! piece) and through InvokeWithResponseStream (aws-sdk-lambda's event-stream
//! reader), plus a runtime that breaks off mid-stream with error trailers.

use std::time::{Duration, Instant};

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    FunctionUrlAuthType, InvokeMode, InvokeWithResponseStreamCompleteEvent, InvokeWithResponseStreamResponseEvent,
    LogType,
};
use base64::Engine as _;

use crate::harness::*;

/// The streaming example, optionally switched to its hand-written runtime.
async fn create_streamer(lambda: &aws_sdk_lambda::Client, name: &str, stream_runtime: Option<&str>) {
    let binary = std::fs::read(example_binary("stream_function")).expect("stream_function binary");
    let mut create = lambda
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(ROLE)
        .timeout(30)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(Blob::new(zip_of(&[("bootstrap", &binary, 0o755)])))
                .build(),
        );
    if let Some(mode) = stream_runtime {
        create =
            create.environment(aws_sdk_lambda::types::Environment::builder().variables("STREAM_RUNTIME", mode).build());
    }
    create.send().await.expect("create streaming function");
}

/// A public RESPONSE_STREAM URL for `name`, in its path form (no Host to resolve).
async fn public_stream_url(server: &Server, lambda: &aws_sdk_lambda::Client, name: &str) -> String {
    let url = lambda
        .create_function_url_config()
        .function_name(name)
        .auth_type(FunctionUrlAuthType::None)
        .invoke_mode(InvokeMode::ResponseStream)
        .send()
        .await
        .expect("create url")
        .function_url()
        .to_string();
    lambda
        .add_permission()
        .function_name(name)
        .statement_id("public")
        .action("lambda:InvokeFunctionUrl")
        .principal("*")
        .function_url_auth_type(FunctionUrlAuthType::None)
        .send()
        .await
        .expect("permission");
    let id = url.trim_start_matches("http://").split('.').next().expect("url id").to_string();
    format!("{}/_kumo/url/{id}", server.endpoint)
}

/// Every event of an InvokeWithResponseStream answer: the chunks with when
/// each arrived, and the completion.
async fn read_stream(
    mut out: aws_sdk_lambda::operation::invoke_with_response_stream::InvokeWithResponseStreamOutput,
) -> (Vec<(Vec<u8>, Instant)>, InvokeWithResponseStreamCompleteEvent) {
    let mut chunks = Vec::new();
    let mut complete = None;
    while let Some(event) = out.event_stream.recv().await.expect("event stream") {
        match event {
            InvokeWithResponseStreamResponseEvent::PayloadChunk(c) => {
                chunks.push((c.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default(), Instant::now()));
            }
            InvokeWithResponseStreamResponseEvent::InvokeComplete(c) => complete = Some(c),
            other => panic!("unexpected event {other:?}"),
        }
    }
    (chunks, complete.expect("an InvokeComplete event ends the stream"))
}

fn concat(chunks: &[(Vec<u8>, Instant)]) -> Vec<u8> {
    chunks.iter().flat_map(|(c, _)| c.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_stream_url_passes_pieces_on_as_they_arrive() {
    let server = Server::start();
    let lambda = server.lambda();
    create_streamer(&lambda, "trickle", None).await;
    let url = public_stream_url(&server, &lambda, "trickle").await;
    // Warm the environment, so the gap measured below is only the handler's pause.
    let warm = server.http().get(format!("{url}/warm")).send().await.expect("warm-up");
    assert_eq!(warm.text().await.expect("body"), "streamed from /warm");

    let sent = Instant::now();
    let mut resp = server.http().get(format!("{url}/slow")).send().await.expect("request");
    assert_eq!(resp.status(), 202, "the prelude's status");
    assert_eq!(resp.headers()["x-streamed"], "yes");
    assert_eq!(resp.headers()["content-type"], "text/plain");
    assert_eq!(resp.headers()["set-cookie"], "flavour=chunked; Path=/");
    let first = resp.chunk().await.expect("first piece").expect("a body");
    let first_at = sent.elapsed();
    assert_eq!(&first[..], b"first|");
    let mut rest = Vec::new();
    while let Some(piece) = resp.chunk().await.expect("rest of the body") {
        rest.extend_from_slice(&piece);
    }
    let done_at = sent.elapsed();
    assert_eq!(rest, b"last");
    // The handler pauses 1.5 s between its pieces: a collected answer would
    // deliver both at once, a streamed one the first well before the end.
    assert!(
        done_at.saturating_sub(first_at) >= Duration::from_millis(1000),
        "the first piece came {first_at:?} after the request, the end {done_at:?}: not streamed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invoke_with_response_stream_sends_chunks_then_the_completion() {
    let server = Server::start();
    let lambda = server.lambda();
    create_streamer(&lambda, "trickle", None).await;

    let out = lambda
        .invoke_with_response_stream()
        .function_name("trickle")
        .payload(Blob::new(r#"{"rawPath":"/slow"}"#))
        .log_type(LogType::Tail)
        .send()
        .await
        .expect("InvokeWithResponseStream");
    assert_eq!(out.executed_version(), Some("$LATEST"));
    let (chunks, complete) = read_stream(out).await;
    let bytes = concat(&chunks);
    // The API passes the runtime's bytes on as they are, prelude included.
    assert!(bytes.starts_with(br#"{"statusCode":202"#), "{}", String::from_utf8_lossy(&bytes));
    assert!(bytes.ends_with(b"\0\0\0\0\0\0\0\0first|last"), "{}", String::from_utf8_lossy(&bytes));
    let arrival = |needle: &[u8]| {
        chunks.iter().find(|(c, _)| c.windows(needle.len()).any(|w| w == needle)).map(|(_, at)| *at).expect("piece")
    };
    assert!(
        arrival(b"last").duration_since(arrival(b"first|")) >= Duration::from_millis(1000),
        "both pieces arrived together: not streamed"
    );
    assert_eq!(complete.error_code(), None, "{complete:?}");
    let tail = base64::engine::general_purpose::STANDARD
        .decode(complete.log_result().expect("LogResult with LogType Tail"))
        .expect("base64");
    let report = report_line(&String::from_utf8_lossy(&tail));
    // The invocation lasts as long as its stream, pause included.
    let duration = report_field(&report, "Duration").expect("Duration");
    assert!(duration >= 1500.0, "{report}");

    // A function that answers in one piece: one chunk, then the completion.
    create_python(&lambda, "plain", "python3.12", "python/echo.py").await;
    let out = lambda
        .invoke_with_response_stream()
        .function_name("plain")
        .payload(Blob::new(r#"{"x":1}"#))
        .send()
        .await
        .expect("buffered answer as a stream");
    let (chunks, complete) = read_stream(out).await;
    assert_eq!(chunks.len(), 1);
    let echoed: serde_json::Value = serde_json::from_slice(&chunks[0].0).expect("json");
    assert_eq!(echoed["event"]["x"], 1, "{echoed}");
    assert_eq!(complete.error_code(), None);
    assert_eq!(complete.log_result(), None, "no tail unless asked");

    // A handler error: no chunk, the completion names it.
    create_python(&lambda, "failing", "python3.12", "python/fail.py").await;
    let out = lambda.invoke_with_response_stream().function_name("failing").send().await.expect("invoke");
    let (chunks, complete) = read_stream(out).await;
    assert!(chunks.is_empty());
    assert_eq!(complete.error_code(), Some("PaymentDeclined"));
    assert_eq!(complete.error_details(), Some("card 4242 declined"));

    // Refusals before the function runs are plain AWS errors.
    let missing = lambda.invoke_with_response_stream().function_name("nothing").send().await.expect_err("404");
    assert_eq!(missing.raw_response().map(|r| r.status().as_u16()), Some(404));
    let event = lambda
        .invoke_with_response_stream()
        .function_name("plain")
        .invocation_type(aws_sdk_lambda::types::ResponseStreamingInvocationType::from("Event"))
        .send()
        .await
        .expect_err("Event is not a streaming invocation type");
    assert_eq!(event.raw_response().map(|r| r.status().as_u16()), Some(400));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_breaks_off_fails_the_invocation_and_the_transfer() {
    let server = Server::start();
    let lambda = server.lambda();
    create_streamer(&lambda, "breaker", Some("trailer-error")).await;
    let url = public_stream_url(&server, &lambda, "breaker").await;

    // The URL: the head and the first piece arrive, then the transfer fails
    // instead of ending as if the body were complete.
    let mut resp = server.http().get(format!("{url}/")).send().await.expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/plain");
    let mut body = Vec::new();
    let failure = loop {
        match resp.chunk().await {
            Ok(Some(piece)) => body.extend_from_slice(&piece),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    assert_eq!(body, b"partial ");
    assert!(failure.is_some(), "a broken stream must not look complete");

    // The API: the piece, then a completion carrying the trailers' error.
    let out = lambda.invoke_with_response_stream().function_name("breaker").send().await.expect("invoke");
    let (chunks, complete) = read_stream(out).await;
    assert!(concat(&chunks).ends_with(b"partial "));
    assert_eq!(complete.error_code(), Some("Stream.Broke"), "{complete:?}");
    assert_eq!(complete.error_details(), Some("broke mid-stream"));
}
