//! A function's answer as the HTTP response of its URL (payload format 2.0).
//!
//! An object with `statusCode` describes the response (`headers`, `cookies`,
//! `body`, `isBase64Encoded`); any other valid JSON is the body of a 200
//! `application/json` response, as Lambda does it.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// The body of a mapped response: bytes as they go out, or base64 the HTTP
/// layer decodes (the core has no base64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBody {
    Raw(Vec<u8>),
    Base64(String),
}

/// The HTTP response a URL sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlResponse {
    pub status: u16,
    /// Lower-cased names; `set-cookie` may repeat.
    pub headers: Vec<(String, String)>,
    pub body: ResponseBody,
}

/// Why an answer cannot become a response (the URL sends 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAnswer {
    #[error("the function's answer is not valid JSON")]
    NotJson,
    #[error("the function's statusCode is not an HTTP status: {0}")]
    BadStatus(String),
}

/// A header value the function gave as a JSON scalar.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The members of an answer that describe a response. Every other member is
/// skipped without being built, so an answer that is plain data (the common
/// case of a JSON API) costs one validating pass, not a `Value` tree.
#[derive(Deserialize)]
struct Described {
    // `"statusCode": null` is a bad status, not a missing one.
    #[serde(rename = "statusCode", default, deserialize_with = "present")]
    status_code: Option<Value>,
    headers: Option<Value>,
    cookies: Option<Value>,
    body: Option<Value>,
    #[serde(rename = "isBase64Encoded")]
    is_base64_encoded: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn plain_json(payload: &[u8]) -> UrlResponse {
    UrlResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: ResponseBody::Raw(payload.to_vec()),
    }
}

/// Maps the function's payload to the URL's response.
pub fn map(payload: &[u8]) -> Result<UrlResponse, BadAnswer> {
    let text = std::str::from_utf8(payload).map_err(|_| BadAnswer::NotJson)?;
    if !text.trim_start().starts_with('{') {
        serde_json::from_str::<IgnoredAny>(text).map_err(|_| BadAnswer::NotJson)?;
        return Ok(plain_json(payload));
    }
    let described = match serde_json::from_str::<Described>(text) {
        Ok(d) => d,
        // Repeated members (the last one wins, as in any JSON reader) or not JSON at all.
        Err(_) => {
            let value: Value = serde_json::from_str(text).map_err(|_| BadAnswer::NotJson)?;
            serde_json::from_value(value).map_err(|_| BadAnswer::NotJson)?
        }
    };
    let Some(status) = described.status_code else {
        return Ok(plain_json(payload));
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| BadAnswer::BadStatus(status.to_string()))?;
    let mut headers: Vec<(String, String)> = described
        .headers
        .as_ref()
        .and_then(Value::as_object)
        .map(|h| h.iter().filter_map(|(k, v)| scalar_text(v).map(|v| (k.to_ascii_lowercase(), v))).collect())
        .unwrap_or_default();
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    if let Some(cookies) = described.cookies.as_ref().and_then(Value::as_array) {
        headers.extend(cookies.iter().filter_map(Value::as_str).map(|c| ("set-cookie".to_string(), c.to_string())));
    }
    let text = match described.body {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        // A non-string body is sent as its JSON text rather than dropped.
        Some(other) => other.to_string(),
    };
    let base64 = described.is_base64_encoded.as_ref().and_then(Value::as_bool).unwrap_or(false);
    let body = if base64 { ResponseBody::Base64(text) } else { ResponseBody::Raw(text.into_bytes()) };
    Ok(UrlResponse { status, headers, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn header<'a>(r: &'a UrlResponse, name: &str) -> Vec<&'a str> {
        r.headers.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    #[test]
    fn a_described_response_keeps_status_headers_cookies_and_body() {
        let payload = json!({
            "statusCode": 201,
            "headers": {"Content-Type": "text/plain", "X-Count": 3},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": "created",
        });
        let r = map(payload.to_string().as_bytes()).expect("map");
        assert_eq!(r.status, 201);
        assert_eq!(header(&r, "content-type"), ["text/plain"]);
        assert_eq!(header(&r, "x-count"), ["3"]);
        assert_eq!(header(&r, "set-cookie"), ["a=1; Path=/", "b=2"]);
        assert_eq!(r.body, ResponseBody::Raw(b"created".to_vec()));
    }

    #[test]
    fn base64_bodies_are_left_for_the_caller_to_decode() {
        let r = map(br#"{"statusCode":200,"body":"AAEC","isBase64Encoded":true}"#).expect("map");
        assert_eq!(r.body, ResponseBody::Base64("AAEC".into()));
        assert_eq!(header(&r, "content-type"), ["application/json"]);
    }

    #[test]
    fn other_json_is_a_200_json_body() {
        for payload in [&br#"{"message":"hi"}"#[..], b"\"text\"", b"[1,2]", b"null"] {
            let r = map(payload).expect("map");
            assert_eq!(r.status, 200);
            assert_eq!(header(&r, "content-type"), ["application/json"]);
            assert_eq!(r.body, ResponseBody::Raw(payload.to_vec()));
        }
    }

    #[test]
    fn nonsense_is_refused() {
        assert_eq!(map(b"not json"), Err(BadAnswer::NotJson));
        assert!(matches!(map(br#"{"statusCode":"ok"}"#), Err(BadAnswer::BadStatus(_))));
        assert!(matches!(map(br#"{"statusCode":99}"#), Err(BadAnswer::BadStatus(_))));
        assert!(matches!(map(br#"{"statusCode":null}"#), Err(BadAnswer::BadStatus(_))));
        assert_eq!(map(br#"{"message":"hi"} trailing"#), Err(BadAnswer::NotJson));
        assert_eq!(map(b"[1,2"), Err(BadAnswer::NotJson));
        assert_eq!(map(b"\"\xff\""), Err(BadAnswer::NotJson));
    }

    #[test]
    fn a_repeated_member_counts_once_the_last_time() {
        let r = map(br#"{"statusCode":500,"statusCode":204,"body":"a","body":"b"}"#).expect("map");
        assert_eq!(r.status, 204);
        assert_eq!(r.body, ResponseBody::Raw(b"b".to_vec()));
    }
}
