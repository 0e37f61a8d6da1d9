//! The head of a streamed URL answer.
//!
//! A runtime that streams to a function URL opens its stream with a JSON
//! prelude (`statusCode`, `headers`, `cookies`), eight NUL bytes, then the
//! body. The server forwards body bytes as they arrive, so it must find the
//! prelude's end in whatever pieces the runtime happens to send.

use serde_json::Value;

/// The content type a runtime gives a stream that opens with a prelude.
pub const HTTP_INTEGRATION_CONTENT_TYPE: &str = "application/vnd.awslambda.http-integration-response";

/// The end of the prelude.
pub const PRELUDE_DELIMITER: [u8; 8] = [0; 8];

/// A prelude longer than this is not a prelude: the stream is passed on as it is.
pub const MAX_PRELUDE_BYTES: usize = 64 * 1024;

/// The status and headers a streamed answer starts with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamHead {
    pub status: u16,
    /// Lower-cased names; `set-cookie` may repeat.
    pub headers: Vec<(String, String)>,
}

impl StreamHead {
    /// The head of a stream without a prelude: Lambda sends it as bytes.
    pub fn plain() -> StreamHead {
        StreamHead { status: 200, headers: vec![("content-type".into(), "application/octet-stream".into())] }
    }
}

/// What the bytes received so far say about the prelude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreludeScan {
    /// No delimiter yet, and not too long to be a prelude: read on.
    NeedMore,
    /// The prelude, and where the body starts in the bytes scanned.
    Found { head: StreamHead, body_start: usize },
    /// Not a prelude (not JSON, or too long): every byte is body.
    NotAPrelude,
}

/// Looks for a complete prelude at the start of `buf`.
pub fn scan_prelude(buf: &[u8]) -> PreludeScan {
    let Some(end) = buf.windows(PRELUDE_DELIMITER.len()).position(|w| w == PRELUDE_DELIMITER) else {
        return if buf.len() > MAX_PRELUDE_BYTES { PreludeScan::NotAPrelude } else { PreludeScan::NeedMore };
    };
    match head_of(&buf[..end]) {
        Some(head) => PreludeScan::Found { head, body_start: end + PRELUDE_DELIMITER.len() },
        None => PreludeScan::NotAPrelude,
    }
}

/// The head a prelude describes; `None` when it is not a JSON object with a valid status.
pub fn head_of(prelude: &[u8]) -> Option<StreamHead> {
    let value: Value = serde_json::from_slice(prelude).ok()?;
    let object = value.as_object()?;
    let status = match object.get("statusCode") {
        None | Some(Value::Null) => 200,
        Some(s) => s.as_u64().and_then(|s| u16::try_from(s).ok()).filter(|s| (100..=599).contains(s))?,
    };
    let mut headers: Vec<(String, String)> = object
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| match v {
                    Value::String(s) => Some((k.to_ascii_lowercase(), s.clone())),
                    Value::Number(n) => Some((k.to_ascii_lowercase(), n.to_string())),
                    Value::Bool(b) => Some((k.to_ascii_lowercase(), b.to_string())),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/octet-stream".into()));
    }
    if let Some(cookies) = object.get("cookies").and_then(Value::as_array) {
        headers.extend(cookies.iter().filter_map(Value::as_str).map(|c| ("set-cookie".to_string(), c.to_string())));
    }
    Some(StreamHead { status, headers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(prelude: &str, body: &[u8]) -> Vec<u8> {
        let mut s = prelude.as_bytes().to_vec();
        s.extend_from_slice(&PRELUDE_DELIMITER);
        s.extend_from_slice(body);
        s
    }

    #[test]
    fn a_prelude_gives_status_headers_and_cookies() {
        let s = stream(r#"{"statusCode":201,"headers":{"X-A":"1","n":2},"cookies":["a=1","b=2"]}"#, b"body\0\0");
        let PreludeScan::Found { head, body_start } = scan_prelude(&s) else { panic!("no prelude") };
        assert_eq!(head.status, 201);
        let mut headers = head.headers.clone();
        headers.sort();
        assert_eq!(
            headers,
            [
                ("content-type".to_string(), "application/octet-stream".to_string()),
                ("n".into(), "2".into()),
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
                ("x-a".into(), "1".into()),
            ]
        );
        assert_eq!(&s[body_start..], b"body\0\0");
    }

    #[test]
    fn the_delimiter_may_arrive_in_any_piece() {
        let s = stream(r#"{"statusCode":200}"#, b"x");
        for cut in 0..s.len() - 1 {
            // Every prefix short of the whole delimiter asks for more.
            let expected_found = cut >= s.len() - 1;
            assert_eq!(matches!(scan_prelude(&s[..cut]), PreludeScan::Found { .. }), expected_found, "cut {cut}");
        }
        assert!(matches!(scan_prelude(&s), PreludeScan::Found { body_start, .. } if body_start == s.len() - 1));
    }

    #[test]
    fn what_is_not_a_prelude_is_body() {
        assert_eq!(scan_prelude(&stream("not json", b"")), PreludeScan::NotAPrelude);
        assert_eq!(scan_prelude(&stream(r#"{"statusCode":99}"#, b"")), PreludeScan::NotAPrelude);
        assert_eq!(scan_prelude(&stream("[1]", b"")), PreludeScan::NotAPrelude);
        assert_eq!(scan_prelude(&vec![b'{'; MAX_PRELUDE_BYTES + 1]), PreludeScan::NotAPrelude);
        assert_eq!(scan_prelude(b"{\"statusCode\":200"), PreludeScan::NeedMore);
    }

    #[test]
    fn a_missing_status_is_200_and_a_given_content_type_wins() {
        let head = head_of(br#"{"headers":{"Content-Type":"text/html"}}"#).expect("head");
        assert_eq!(head.status, 200);
        assert_eq!(head.headers, [("content-type".to_string(), "text/html".to_string())]);
    }
}
