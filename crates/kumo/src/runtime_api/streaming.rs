//! Responses a runtime streams (`Lambda-Runtime-Function-Response-Mode:
//! streaming`, chunked, errors in trailers).
//!
//! When the caller can take a stream (a RESPONSE_STREAM URL,
//! InvokeWithResponseStream) the Runtime API forwards it as it arrives, up to
//! Lambda's 200 MB. Otherwise (Invoke, a BUFFERED URL, async events) Kumo
//! collects it into one buffered answer, held to the buffered 6 MB limit: a
//! function URL's HTTP integration stream (a JSON prelude with status, headers
//! and cookies, eight NUL bytes, then the body) becomes the buffered answer a
//! URL maps the same way: `statusCode`, `headers`, `cookies` and the body in
//! base64, so both invoke modes of a URL behave alike.

use base64::Engine as _;
use bytes::Bytes;
use kumo_core::invoke::MAX_STREAMED_RESPONSE_BYTES;
use kumo_core::url::stream::PRELUDE_DELIMITER;
use serde_json::{Map, Value, json};

/// The buffered answer for an HTTP integration stream, or `None` when the
/// bytes have no prelude (then they are passed on as they are).
pub fn buffered_http_answer(stream: &[u8]) -> Option<Bytes> {
    let end = stream.windows(PRELUDE_DELIMITER.len()).position(|w| w == PRELUDE_DELIMITER)?;
    let prelude: Map<String, Value> = serde_json::from_slice(&stream[..end]).ok()?;
    let body = &stream[end + PRELUDE_DELIMITER.len()..];
    let answer = json!({
        "statusCode": prelude.get("statusCode").cloned().unwrap_or(Value::from(200)),
        "headers": prelude.get("headers").cloned().unwrap_or_else(|| json!({})),
        "cookies": prelude.get("cookies").cloned().unwrap_or_else(|| json!([])),
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true,
    });
    serde_json::to_vec(&answer).ok().map(Bytes::from)
}

/// The error a runtime reported in the stream's trailers: its type and body
/// (the body trailer is base64, as the Runtime API defines it).
pub fn trailer_error(trailers: &hyper::HeaderMap) -> Option<(String, Bytes)> {
    let error_type = trailers.get("lambda-runtime-function-error-type")?.to_str().ok()?.to_string();
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.as_bytes()).ok())
        .unwrap_or_default();
    Some((error_type, Bytes::from(body)))
}

/// The error a stream over Lambda's streaming limit fails with.
pub fn too_large_error() -> Vec<u8> {
    kumo_core::invoke::error_payload(
        "Function.ResponseSizeTooLarge",
        &format!("Response payload size exceeded maximum allowed payload size ({MAX_STREAMED_RESPONSE_BYTES} bytes)."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_stream_becomes_a_buffered_http_answer() {
        let mut stream = br#"{"statusCode":202,"headers":{"x-a":"1"},"cookies":["c=1"]}"#.to_vec();
        stream.extend_from_slice(&[0; 8]);
        stream.extend_from_slice(b"hello \0 world");
        let answer: Value = serde_json::from_slice(&buffered_http_answer(&stream).expect("answer")).expect("json");
        assert_eq!(answer["statusCode"], 202);
        assert_eq!(answer["headers"]["x-a"], "1");
        assert_eq!(answer["cookies"][0], "c=1");
        assert_eq!(answer["isBase64Encoded"], true);
        let body =
            base64::engine::general_purpose::STANDARD.decode(answer["body"].as_str().expect("body")).expect("b64");
        assert_eq!(body, b"hello \0 world");
    }

    #[test]
    fn bytes_without_a_prelude_are_left_alone() {
        assert!(buffered_http_answer(b"just bytes").is_none());
        let mut not_json = b"oops".to_vec();
        not_json.extend_from_slice(&[0; 8]);
        assert!(buffered_http_answer(&not_json).is_none());
    }

    #[test]
    fn trailers_carry_a_mid_stream_error() {
        let mut trailers = hyper::HeaderMap::new();
        assert!(trailer_error(&trailers).is_none());
        trailers.insert("lambda-runtime-function-error-type", "Runtime.StreamError".parse().expect("value"));
        trailers.insert("lambda-runtime-function-error-body", "Ym9vbQ==".parse().expect("value"));
        assert_eq!(trailer_error(&trailers), Some(("Runtime.StreamError".to_string(), Bytes::from_static(b"boom"))));
    }
}
