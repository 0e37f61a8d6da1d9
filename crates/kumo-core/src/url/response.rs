//! A function's answer as the HTTP response of its URL (payload format 2.0).
//!
//! An object with `statusCode` describes the response (`headers`, `cookies`,
//! `body`, `isBase64Encoded`); any other valid JSON is the body of a 200
//! `application/json` response, as Lambda does it.

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

/// Maps the function's payload to the URL's response.
pub fn map(payload: &[u8]) -> Result<UrlResponse, BadAnswer> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| BadAnswer::NotJson)?;
    let Some(status) = value.get("statusCode") else {
        return Ok(UrlResponse {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ResponseBody::Raw(payload.to_vec()),
        });
    };
    let status = status
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| BadAnswer::BadStatus(status.to_string()))?;
    let mut headers: Vec<(String, String)> = value
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| h.iter().filter_map(|(k, v)| scalar_text(v).map(|v| (k.to_ascii_lowercase(), v))).collect())
        .unwrap_or_default();
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    if let Some(cookies) = value.get("cookies").and_then(Value::as_array) {
        headers.extend(cookies.iter().filter_map(Value::as_str).map(|c| ("set-cookie".to_string(), c.to_string())));
    }
    let text = match value.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        // A non-string body is sent as its JSON text rather than dropped.
        Some(other) => other.to_string(),
    };
    let base64 = value.get("isBase64Encoded").and_then(Value::as_bool).unwrap_or(false);
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
    }
}
