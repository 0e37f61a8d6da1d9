//! An HTTP request to a function URL as Lambda's payload format 2.0 event.
//!
//! The HTTP layer hands over a plain [`UrlRequest`]; encoding a binary body is
//! its job (the core has no base64), deciding *whether* to is [`body_is_text`]'s.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

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

/// Joins repeated names with commas, in first-seen order. Indexed by name: a
/// query string may carry tens of thousands of parameters.
fn joined<'a>(pairs: impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)>) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let mut out: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
    let mut index: HashMap<Cow<'a, str>, usize> = HashMap::new();
    for (k, v) in pairs {
        match index.get(&k).and_then(|&i| out.get_mut(i)) {
            Some((_, existing)) => {
                let existing = existing.to_mut();
                existing.push(',');
                existing.push_str(&v);
            }
            None => {
                index.insert(k.clone(), out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// Name/value pairs written as one JSON object, in their order.
struct Members<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_ref(), v.as_ref())?;
        }
        map.end()
    }
}

// The event's members in the order AWS writes them, serialised straight to
// bytes: a URL request is on the hot path, and a `Value` tree costs a map and
// an allocation per member.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    version: &'static str,
    route_key: &'static str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: Members<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query_string_parameters: Option<Members<'a>>,
    request_context: Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Context<'a> {
    account_id: &'a str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<Authorizer<'a>>,
    domain_name: String,
    domain_prefix: &'a str,
    http: Http<'a>,
    request_id: &'a str,
    route_key: &'static str,
    stage: &'static str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
struct Authorizer<'a> {
    iam: Iam<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Iam<'a> {
    access_key: &'a str,
    account_id: &'a str,
    caller_id: &'a str,
    cognito_identity: Option<()>,
    principal_org_id: Option<()>,
    user_arn: &'a str,
    user_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'a str,
    source_ip: &'a str,
    user_agent: Cow<'a, str>,
}

fn event(req: &UrlRequest) -> Event<'_> {
    let cookies: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(';').map(str::trim).filter(|c| !c.is_empty()))
        .collect();
    let headers = joined(req.headers.iter().filter(|(k, _)| !k.eq_ignore_ascii_case("cookie")).map(|(k, v)| {
        let name = match k.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(k.to_ascii_lowercase()),
            false => Cow::Borrowed(k.as_str()),
        };
        (name, Cow::Borrowed(v.as_str()))
    }));
    let user_agent = headers.iter().find(|(k, _)| k == "user-agent").map(|(_, v)| v.clone()).unwrap_or_default();
    let query_string_parameters = (!req.raw_query.is_empty()).then(|| {
        Members(joined(req.raw_query.split('&').filter(|p| !p.is_empty()).map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decoded(k), percent_decoded(v))
        })))
    });
    let iam = req.iam.as_ref();
    Event {
        version: "2.0",
        route_key: "$default",
        raw_path: &req.raw_path,
        raw_query_string: &req.raw_query,
        cookies,
        headers: Members(headers),
        query_string_parameters,
        request_context: Context {
            // Anonymous callers (auth NONE) show as the account "anonymous", as on AWS.
            account_id: iam.map_or("anonymous", |c| c.account_id.as_str()),
            api_id: &req.url_id,
            authorizer: iam.map(|c| Authorizer {
                iam: Iam {
                    access_key: &c.access_key,
                    account_id: &c.account_id,
                    caller_id: &c.caller_id,
                    cognito_identity: None,
                    principal_org_id: None,
                    user_arn: &c.user_arn,
                    user_id: &c.user_id,
                },
            }),
            domain_name: super::domain_name(&req.url_id, &req.region),
            domain_prefix: &req.url_id,
            http: Http {
                method: &req.method,
                path: &req.raw_path,
                protocol: &req.protocol,
                source_ip: &req.source_ip,
                user_agent,
            },
            request_id: &req.request_id,
            route_key: "$default",
            stage: "$default",
            time: request_time(req.time_epoch_ms),
            time_epoch: req.time_epoch_ms,
        },
        body: req.body.as_ref().map(|b| b.text.as_str()),
        is_base64_encoded: req.body.as_ref().is_some_and(|b| b.base64),
    }
}

/// `s` with its `%XX` escapes decoded, borrowed when it has none.
fn percent_decoded(s: &str) -> Cow<'_, str> {
    if s.contains('%') { Cow::Owned(percent_decode(s)) } else { Cow::Borrowed(s) }
}

/// The event a function URL hands its function, as the JSON bytes it receives.
pub fn encode(req: &UrlRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + req.body.as_ref().map_or(0, |b| b.text.len()));
    // Writing plain structs of strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &event(req));
    out
}

/// The event as a JSON value (samples and tests).
pub fn build(req: &UrlRequest) -> Value {
    serde_json::to_value(event(req)).unwrap_or(Value::Null)
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
        let encoded: Value = serde_json::from_slice(&encode(&request())).expect("encoded JSON");
        assert_eq!(encoded, fixture);
    }

    #[test]
    fn members_keep_the_order_aws_writes_them_in() {
        let text = String::from_utf8(encode(&request())).expect("utf-8");
        let at = |member: &str| text.find(&format!("\"{member}\":")).unwrap_or(usize::MAX);
        let order =
            ["version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers", "requestContext", "body"];
        assert!(order.windows(2).all(|w| at(w[0]) < at(w[1])), "{text}");
    }

    #[test]
    fn many_repeated_parameters_join_in_order() {
        let mut req = request();
        req.raw_query = (0..20_000).map(|i| format!("k{}=v{i}", i % 3)).collect::<Vec<_>>().join("&");
        let e: Value = serde_json::from_slice(&encode(&req)).expect("valid JSON");
        let k0 = e["queryStringParameters"]["k0"].as_str().expect("k0");
        assert!(k0.starts_with("v0,v3,v6,"), "{}", &k0[..20]);
        assert_eq!(e["queryStringParameters"].as_object().map(|o| o.len()), Some(3));
    }

    #[test]
    fn text_needing_escapes_survives_the_round_trip() {
        let mut req = request();
        req.body = Some(EventBody { text: "quote \" backslash \\ newline \n tab \t \u{1} é".into(), base64: false });
        req.headers.push(("X-Odd".into(), "\"\\".into()));
        let e: Value = serde_json::from_slice(&encode(&req)).expect("valid JSON");
        assert_eq!(e["body"], "quote \" backslash \\ newline \n tab \t \u{1} é");
        assert_eq!(e["headers"]["x-odd"], "\"\\");
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
