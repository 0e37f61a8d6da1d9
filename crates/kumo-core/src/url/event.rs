//! An HTTP request to a function URL as Lambda's payload format 2.0 event.
//!
//! The HTTP layer hands over a plain [`UrlRequest`]; encoding a binary body is
//! its job (the core has no base64), deciding *whether* to is [`body_is_text`]'s.

use serde_json::{Map, Value, json};

/// The caller of an `AWS_IAM` URL, as `requestContext.authorizer.iam` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamCaller {
    pub access_key: String,
    pub account_id: String,
    /// The caller's unique id (`AIDA…`, `AROA…:session`, the account for root).
    pub caller_id: String,
    pub user_arn: String,
    pub user_id: String,
}

/// The body as the event carries it: text, or base64 of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBody {
    pub text: String,
    pub base64: bool,
}

/// One request, taken apart by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRequest {
    pub url_id: String,
    pub region: String,
    pub method: String,
    /// The path the function sees, still percent-encoded.
    pub raw_path: String,
    /// Everything after `?`, as sent.
    pub raw_query: String,
    pub protocol: String,
    pub source_ip: String,
    /// Headers as received, in order (names in any case, repeats allowed).
    pub headers: Vec<(String, String)>,
    /// `None` when the request had no body.
    pub body: Option<EventBody>,
    pub request_id: String,
    pub time_epoch_ms: i64,
    /// `Some` for `AWS_IAM` URLs.
    pub iam: Option<IamCaller>,
}

/// Whether a body of this `Content-Type` reaches the function as text. AWS
/// passes text and JSON/XML/JavaScript as they are and base64-encodes the rest
/// (form posts and requests without a content type included), so Kumo does too.
pub fn body_is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else { return false };
    let essence = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if essence.starts_with("text/") {
        return true;
    }
    let Some(sub) = essence.strip_prefix("application/") else { return false };
    matches!(sub, "json" | "xml" | "javascript" | "x-javascript" | "ecmascript")
        || sub.ends_with("+json")
        || sub.ends_with("+xml")
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `12/Mar/2020:19:03:58 +0000`, the event's `requestContext.time`.
pub fn request_time(epoch_ms: i64) -> String {
    let p = crate::time::utc_parts(epoch_ms);
    let month = MONTHS.get(p.month.saturating_sub(1) as usize).copied().unwrap_or("Jan");
    format!("{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000", p.day, p.year, p.hour, p.minute, p.second)
}

/// Decodes `%XX` escapes (invalid ones stay as they are; `+` stays `+`).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Joins repeated names with commas, in first-seen order.
fn joined(pairs: impl Iterator<Item = (String, String)>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in pairs {
        match out.get_mut(&k) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                out.insert(k, Value::String(v));
            }
        }
    }
    out
}

/// The event a function URL hands its function.
pub fn build(req: &UrlRequest) -> Value {
    let cookies: Vec<String> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';').map(str::trim).filter(|c| !c.is_empty()).map(str::to_string))
        .collect();
    let headers = joined(
        req.headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("cookie"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
    );
    let user_agent = headers.get("user-agent").and_then(Value::as_str).unwrap_or_default().to_string();
    let authorizer = req.iam.as_ref().map(|c| {
        json!({"iam": {
            "accessKey": c.access_key,
            "accountId": c.account_id,
            "callerId": c.caller_id,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": c.user_arn,
            "userId": c.user_id,
        }})
    });
    // Anonymous callers (auth NONE) show as the account "anonymous", as on AWS.
    let account = req.iam.as_ref().map_or("anonymous", |c| c.account_id.as_str());
    let mut context = json!({
        "accountId": account,
        "apiId": req.url_id,
        "domainName": super::domain_name(&req.url_id, &req.region),
        "domainPrefix": req.url_id,
        "http": {
            "method": req.method,
            "path": req.raw_path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": user_agent,
        },
        "requestId": req.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": request_time(req.time_epoch_ms),
        "timeEpoch": req.time_epoch_ms,
    });
    if let Some(a) = authorizer {
        context["authorizer"] = a;
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": req.body.as_ref().is_some_and(|b| b.base64),
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    if !req.raw_query.is_empty() {
        let params = req.raw_query.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        });
        event["queryStringParameters"] = Value::Object(joined(params));
    }
    if let Some(body) = &req.body {
        event["body"] = json!(body.text);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> UrlRequest {
        UrlRequest {
            url_id: "abcdefghijklmnopqrstuvwxyz012345".into(),
            region: "us-east-1".into(),
            method: "POST".into(),
            raw_path: "/my/path".into(),
            raw_query: "parameter1=value1&parameter1=value2&parameter2=a%20b".into(),
            protocol: "HTTP/1.1".into(),
            source_ip: "127.0.0.1".into(),
            headers: vec![
                ("Host".into(), "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.localhost:9000".into()),
                ("Header1".into(), "value1".into()),
                ("header2".into(), "value1".into()),
                ("Header2".into(), "value2".into()),
                ("Cookie".into(), "cookie1=value1; cookie2=value2".into()),
                ("User-Agent".into(), "agent".into()),
                ("Content-Type".into(), "application/json".into()),
            ],
            body: Some(EventBody { text: "{\"hello\":\"world\"}".into(), base64: false }),
            request_id: "c6af9ac6-7b61-11e6-9a41-93e8deadbeef".into(),
            time_epoch_ms: 1_583_348_638_390,
            iam: None,
        }
    }

    #[test]
    fn the_event_has_the_shape_of_the_fixture() {
        let fixture: Value = serde_json::from_str(include_str!("fixtures/event-none.json")).expect("fixture");
        assert_eq!(build(&request()), fixture);
    }

    #[test]
    fn an_iam_caller_fills_the_authorizer() {
        let mut req = request();
        req.iam = Some(IamCaller {
            access_key: "AKIA1".into(),
            account_id: "000000000000".into(),
            caller_id: "AIDA1".into(),
            user_arn: "arn:aws:iam::000000000000:user/dev".into(),
            user_id: "AIDA1".into(),
        });
        let e = build(&req);
        assert_eq!(e["requestContext"]["accountId"], "000000000000");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["userArn"], "arn:aws:iam::000000000000:user/dev");
        assert_eq!(e["requestContext"]["authorizer"]["iam"]["cognitoIdentity"], Value::Null);
    }

    #[test]
    fn no_body_no_query_no_cookies_means_absent_members() {
        let mut req = request();
        req.body = None;
        req.raw_query = String::new();
        req.headers.retain(|(k, _)| k != "Cookie");
        let e = build(&req);
        for member in ["body", "queryStringParameters", "cookies"] {
            assert!(e.get(member).is_none(), "{member}: {e}");
        }
        assert_eq!(e["isBase64Encoded"], false);
    }

    #[test]
    fn text_types_pass_as_text_the_rest_as_base64() {
        for t in
            ["text/plain", "text/html; charset=utf-8", "application/json", "application/ld+json", "application/xml"]
        {
            assert!(body_is_text(Some(t)), "{t}");
        }
        for t in ["application/octet-stream", "image/png", "application/x-www-form-urlencoded", "multipart/form-data"] {
            assert!(!body_is_text(Some(t)), "{t}");
        }
        assert!(!body_is_text(None));
    }

    #[test]
    fn request_time_is_clf() {
        assert_eq!(request_time(1_583_348_638_390), "04/Mar/2020:19:03:58 +0000");
        assert_eq!(percent_decode("a%20b%zz+c%2"), "a b%zz+c%2");
    }
}
