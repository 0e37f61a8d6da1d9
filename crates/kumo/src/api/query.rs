//! The AWS query protocol on `/`: IAM and STS take form-encoded `Action=...`
//! requests (POST bodies, or GET query strings) and answer in XML. CloudWatch
//! Logs' JSON requests share the path and are told apart by `X-Amz-Target`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_core::iam::{IamError, IamErrorCode};

use super::auth::{Protocol, QueryService};
use super::{AppState, read_limited};
use crate::iam::Identity;

/// The largest form Kumo reads (policy documents are up to 128 KiB, and
/// percent-encoding triples them).
const MAX_FORM: usize = 1 << 20;

/// Sends a request on `/` to its protocol's handler.
pub async fn dispatch(State(s): State<AppState>, req: Request) -> Response {
    if req.headers().contains_key("x-amz-target") {
        let (parts, body) = req.into_parts();
        if super::auth::JsonService::of(&parts.headers) == super::auth::JsonService::Events {
            return super::events::dispatch(&s, &parts.headers, body).await;
        }
        return super::logs::dispatch(State(s), parts.headers, body).await.into_response();
    }
    let caller = req.extensions().get::<Identity>().cloned();
    let (parts, body) = req.into_parts();
    let query = parts.uri.query().unwrap_or("").to_string();
    let form = if parts.method == Method::GET {
        query.clone()
    } else {
        match read_limited(body, MAX_FORM).await {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => {
                let service = service_of(&parts.method, &query, &parts.headers, b"");
                let e = IamError::new(IamErrorCode::ValidationError, "Request is too large.");
                return error(service, &e);
            }
        }
    };
    let service = service_of(&parts.method, &query, &parts.headers, form.as_bytes());
    // Parameters may come in the query string as well as the body; the body wins.
    let mut params = Params::parse(&query);
    if parts.method != Method::GET {
        params.0.extend(Params::parse(&form).0);
    }
    let caller = caller.unwrap_or_else(|| Identity::root(s.iam.account(), None));
    let action = params.get("Action").unwrap_or("").to_string();
    let call = Call { state: &s, caller: &caller, params: &params };
    let result = match service {
        QueryService::Iam => super::iam::handle(&call, &action).await,
        QueryService::Sts => super::sts::handle(&call, &action).await,
    };
    match result {
        Ok(body) => reply(service, &action, body),
        Err(e) => error(service, &e),
    }
}

fn service_of(method: &Method, query: &str, headers: &axum::http::HeaderMap, body: &[u8]) -> QueryService {
    match Protocol::of(method, "/", query, headers, body) {
        Protocol::Query(service) => service,
        _ => QueryService::Iam,
    }
}

/// What a query handler gets: the server, the verified caller and the parameters.
pub struct Call<'a> {
    pub state: &'a AppState,
    pub caller: &'a Identity,
    pub params: &'a Params,
}

/// A handler's answer: the inside of `<ActionResult>`, or `None` for
/// operations that answer with metadata only.
pub type QueryResult = Result<Option<String>, IamError>;

/// An unknown `Action`.
pub fn invalid_action(action: &str, version: &str) -> IamError {
    IamError::new(IamErrorCode::InvalidAction, format!("Could not find operation {action} for version {version}"))
}

/// The decoded parameters of a query request.
#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(form: &str) -> Params {
        Params(
            form.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Whether any parameter of this name was sent, alone or as a list
    /// (`Key.member.N`, `Key.N`).
    pub fn has_any(&self, key: &str) -> bool {
        self.0.keys().any(|k| k == key || k.starts_with(&format!("{key}.")))
    }

    /// An integer parameter (`field` names it in IAM's message).
    pub fn int(&self, key: &str, field: &str) -> Result<Option<i64>, IamError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.trim().parse().map(Some).map_err(|_| {
                IamError::new(
                    IamErrorCode::ValidationError,
                    format!("1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must be a number"),
                )
            }),
        }
    }

    pub fn bool(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// `%XX` decoded and `+` as a space, as forms encode them.
/// `%XX` sequences decoded and `+` as a space, as in forms; invalid escapes kept as they are.
pub(crate) fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                let (hi, lo) = (hex(i + 1).unwrap_or(0), hex(i + 2).unwrap_or(0));
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a policy document as IAM returns them in XML (RFC 3986
/// unreserved characters and `*` stay; a space is `%20`).
pub fn url_encode(s: &str) -> String {
    percent_encode_except(s, b"-_.~*")
}

/// Percent-encodes every byte but ASCII letters, digits and `keep`.
pub fn percent_encode_except(s: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || keep.contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// ISO 8601 in whole seconds, as IAM and STS print dates.
pub fn iso_date(epoch_ms: i64) -> String {
    let p = kumo_core::time::utc_parts(epoch_ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", p.year, p.month, p.day, p.hour, p.minute, p.second)
}

/// XML text escaping (also for the error bodies written by `auth.rs`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no way to carry other control characters (messages
            // may quote a refused input verbatim).
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A small XML writer: elements in order, text escaped.
#[derive(Debug, Default)]
pub struct Xml(String);

impl Xml {
    pub fn new() -> Xml {
        Xml(String::new())
    }

    /// `<tag>text</tag>`
    pub fn text(&mut self, tag: &str, text: &str) -> &mut Xml {
        self.0.push_str(&format!("<{tag}>{}</{tag}>", escape(text)));
        self
    }

    /// Escaped text inside the element being written (list members that are plain strings).
    pub fn content(&mut self, text: &str) -> &mut Xml {
        self.0.push_str(&escape(text));
        self
    }

    /// `<tag>text</tag>` when there is a text.
    pub fn opt(&mut self, tag: &str, text: Option<&str>) -> &mut Xml {
        if let Some(t) = text {
            self.text(tag, t);
        }
        self
    }

    /// `<tag>...</tag>` around what `inner` writes.
    pub fn nest(&mut self, tag: &str, inner: impl FnOnce(&mut Xml)) -> &mut Xml {
        self.0.push_str(&format!("<{tag}>"));
        inner(self);
        self.0.push_str(&format!("</{tag}>"));
        self
    }

    /// `<tag><member>...</member>...</tag>`, one member per item.
    pub fn members<T>(&mut self, tag: &str, items: &[T], mut each: impl FnMut(&mut Xml, &T)) -> &mut Xml {
        self.nest(tag, |x| {
            for item in items {
                x.nest("member", |m| each(m, item));
            }
        })
    }

    /// `IsTruncated` and, when there is more, `Marker`.
    pub fn page_end(&mut self, next_marker: Option<&str>) -> &mut Xml {
        self.text("IsTruncated", if next_marker.is_some() { "true" } else { "false" });
        self.opt("Marker", next_marker)
    }

    pub fn finish(&mut self) -> Option<String> {
        Some(std::mem::take(&mut self.0))
    }
}

fn xml_response(status: StatusCode, body: String, request_id: &str, error_code: Option<&str>) -> Response {
    let mut resp = (status, Body::from(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    if let Some(v) = error_code.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-amzn-errortype", v);
    }
    resp
}

/// `<ActionResponse><ActionResult>...</ActionResult><ResponseMetadata>...`
fn reply(service: QueryService, action: &str, result: Option<String>) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = result.map(|r| format!("<{action}Result>{r}</{action}Result>")).unwrap_or_default();
    let body = format!(
        "<{action}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>",
        service.xml_namespace()
    );
    xml_response(StatusCode::OK, body, &request_id, None)
}

/// `<ErrorResponse>` with IAM's code, message and status.
pub fn error(service: QueryService, e: &IamError) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = format!(
        "<ErrorResponse xmlns=\"{}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        service.xml_namespace(),
        e.code.fault(),
        e.code.as_str(),
        escape(&e.message)
    );
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    xml_response(status, body, &request_id, Some(e.code.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_and_lists_collect() {
        let p = Params::parse(
            "Action=CreateUser&UserName=a%2Bb&Path=%2Fx%2F&Doc=%7B%22a%22%3A+1%7D&L.member.1=x&L.member.2=y",
        );
        assert_eq!(p.get("UserName"), Some("a+b"));
        assert_eq!(p.get("Path"), Some("/x/"));
        assert_eq!(p.get("Doc"), Some("{\"a\": 1}"));
        assert!(p.has_any("L") && !p.has_any("M"));
        assert_eq!(form_decode("%zz%4"), "%zz%4");
        assert_eq!(p.int("Missing", "maxItems"), Ok(None));
        assert!(Params::parse("MaxItems=x").int("MaxItems", "maxItems").is_err());
    }

    #[test]
    fn documents_and_dates_as_iam_writes_them() {
        assert_eq!(url_encode("{\"Action\": \"*\"}"), "%7B%22Action%22%3A%20%22*%22%7D");
        assert_eq!(form_decode(&url_encode("caf\u{e9} / \n")), "caf\u{e9} / \n");
        assert_eq!(iso_date(1_795_852_800_000), "2026-11-28T08:00:00Z");
        assert_eq!(escape("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(escape("a\u{1}b\n"), "a\u{FFFD}b\n");
    }

    #[test]
    fn the_writer_nests_and_pages() {
        let body = Xml::new()
            .members("Users", &["a<", "b"], |x, n| {
                x.text("UserName", n);
            })
            .page_end(Some("m"))
            .finish();
        assert_eq!(
            body.as_deref(),
            Some(
                "<Users><member><UserName>a&lt;</UserName></member><member><UserName>b</UserName></member></Users><IsTruncated>true</IsTruncated><Marker>m</Marker>"
            )
        );
    }
}
