//! The web dashboard, served by `kumo serve` itself under `/_kumo/dashboard`.
//!
//! Pages are HTML rendered here (charts are inline SVG from [`chart`]); one
//! hand-written stylesheet and one small script are embedded in the binary.
//! Everything works without JavaScript except the live log tail and the
//! in-place Test invoke.
//!
//! This layer sits outside the API's SigV4 layer (a browser cannot sign): a
//! sign-in with an access key pair yields an HMAC-signed session cookie naming
//! the key, which is resolved again on every request, and every page asks the
//! same [`Authorizer`] the API uses whether the principal may read what it shows.
//! S3 bucket names cannot contain `_`, so the prefix never shadows a bucket.

mod chart;
mod function;
pub mod html;
mod invocation;
mod logs;
mod overview;
mod session;
mod test_page;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::auth::Authenticator;
use crate::api::authorize::{Ask, Authorizer};
use crate::engine::Engine;
use crate::iam::Identity;
use html::PREFIX;

/// What the dashboard needs: the engine it shows and who may look.
pub struct Dashboard {
    pub(crate) engine: Arc<Engine>,
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) authorizer: Arc<Authorizer>,
    pub(crate) schedules: Arc<crate::schedules::Schedules>,
    /// The object store, for the bucket notifications that trigger a function (absent without S3).
    pub(crate) objects: Option<Arc<crate::objects::ObjectStore>>,
    /// Signs session cookies and anti-forgery tokens; new at every start, so a
    /// restart signs everyone out.
    secret: [u8; 32],
}

impl Dashboard {
    pub fn new(
        engine: Arc<Engine>,
        authenticator: Arc<Authenticator>,
        authorizer: Arc<Authorizer>,
        schedules: Arc<crate::schedules::Schedules>,
        objects: Option<Arc<crate::objects::ObjectStore>>,
    ) -> Dashboard {
        let mut secret = [0u8; 32];
        // Two v4 UUIDs: 244 bits from the OS's random source.
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Dashboard { engine, authenticator, authorizer, schedules, objects, secret }
    }
}

/// The signed-in principal of one request.
pub(crate) struct Principal {
    pub identity: Identity,
    /// The anti-forgery token this principal's forms carry.
    pub csrf: String,
    /// Whether there is a session to sign out of (not under `--auth none`).
    pub signed_in: bool,
}

impl Principal {
    pub fn viewer(&self) -> html::Viewer<'_> {
        html::Viewer { arn: &self.identity.arn, csrf: self.signed_in.then_some(self.csrf.as_str()) }
    }
}

impl Dashboard {
    /// Whether `p` may perform `action` on `resource`, decided as the API decides.
    pub(crate) fn may(&self, p: &Principal, action: &str, resource: &str) -> bool {
        if p.identity.is_root() {
            return true;
        }
        let ask = Ask { action: action.to_string(), resource: resource.to_string() };
        self.authorizer.decide(&p.identity, &ask, crate::engine::now_ms()).is_allowed()
    }

    pub(crate) fn function_arn(&self, name: &str) -> String {
        let s = &self.engine.config().scope;
        format!("arn:{}:lambda:{}:{}:function:{name}", s.partition, s.region, s.account)
    }

    pub(crate) fn log_group_arn(&self, group: &str) -> String {
        let s = &self.engine.config().scope;
        format!("arn:{}:logs:{}:{}:log-group:{group}:*", s.partition, s.region, s.account)
    }
}

/// Serves dashboard paths; hands every other request on.
pub async fn route(State(d): State<Arc<Dashboard>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path != PREFIX && !path.starts_with("/_kumo/dashboard/") {
        return next.run(req).await;
    }
    let mut resp = serve(&d, req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn serve(d: &Arc<Dashboard>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().strip_prefix(PREFIX).unwrap_or("").trim_start_matches('/').to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let segments: Vec<String> =
        if path.is_empty() { Vec::new() } else { path.split('/').map(crate::api::query::form_decode).collect() };
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = parts.method.clone();
    match (&method, seg.as_slice()) {
        (&Method::GET, ["assets", "dashboard.css"]) => return asset("text/css; charset=utf-8", CSS),
        (&Method::GET, ["assets", "dashboard.js"]) => return asset("text/javascript; charset=utf-8", JS),
        (&Method::GET, ["signin"]) => return session::signin_page(d, None, StatusCode::OK),
        (&Method::POST, ["signin"]) => return session::signin(d, body).await,
        _ => {}
    }
    let Some(principal) = session::principal(d, &parts.headers) else {
        return match method {
            Method::GET if !seg.last().is_some_and(|s| *s == "tail" || *s == "invocations") => {
                redirect(&format!("{PREFIX}/signin"))
            }
            _ => (StatusCode::UNAUTHORIZED, "sign in first").into_response(),
        };
    };
    let form = |body: Body| async move { read_form(body).await };
    match (&method, seg.as_slice()) {
        (&Method::POST, ["signout"]) => {
            let fields = form(body).await;
            session::signout(d, &principal, &fields)
        }
        (&Method::GET, []) | (&Method::GET, ["functions"]) => overview::page(d, &principal, &query).await,
        (&Method::GET, ["functions", name]) => function::page(d, &principal, name, &query).await,
        (&Method::GET, ["functions", name, "tail"]) => function::tail(d, &principal, name, &query).await,
        (&Method::GET, ["functions", name, "invocations"]) => function::recent_fragment(d, &principal, name).await,
        (&Method::GET, ["functions", name, "test"]) => test_page::page(d, &principal, name, &query).await,
        (&Method::POST, ["functions", name, "test"]) => {
            let fields = form(body).await;
            test_page::invoke(d, &principal, name, &fields, wants_fragment(&parts.headers)).await
        }
        (&Method::GET, ["invocations", id]) => invocation::page(d, &principal, id).await,
        (&Method::GET, ["logs"]) => logs::page(d, &principal, &query).await,
        _ => not_found(&principal),
    }
}

/// The script asks for a fragment instead of a whole page.
fn wants_fragment(headers: &HeaderMap) -> bool {
    headers.get("x-kumo-fragment").is_some()
}

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    resp
}

pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

pub(crate) fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A page saying the principal may not see something (403).
pub(crate) fn forbidden(p: &Principal, what: &str) -> Response {
    let body = format!(
        "<h1>Not allowed</h1>{}",
        html::notice("error", &format!("{} is not allowed to {what}.", p.identity.arn))
    );
    html_response(StatusCode::FORBIDDEN, html::page("Not allowed", html::Nav::None, Some(&p.viewer()), &body))
}

pub(crate) fn not_found(p: &Principal) -> Response {
    let body = format!("<h1>Not found</h1>{}", html::notice("error", "There is nothing here."));
    html_response(StatusCode::NOT_FOUND, html::page("Not found", html::Nav::None, Some(&p.viewer()), &body))
}

pub(crate) fn failure(p: &Principal, message: &str) -> Response {
    let body = format!("<h1>Something failed</h1>{}", html::notice("error", message));
    html_response(StatusCode::SERVICE_UNAVAILABLE, html::page("Error", html::Nav::None, Some(&p.viewer()), &body))
}

/// A form body (small: the Test page's payload is the largest, 6 MB at most).
async fn read_form(body: Body) -> Vec<(String, String)> {
    let Some(bytes) = crate::api::read_limited(body, kumo_core::invoke::MAX_SYNC_REQUEST_BYTES * 2).await else {
        return Vec::new();
    };
    parse_form(&String::from_utf8_lossy(&bytes))
}

/// `application/x-www-form-urlencoded` (also a query string), `+` as space.
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (crate::api::query::form_decode(&k.replace('+', " ")), crate::api::query::form_decode(&v.replace('+', " ")))
        })
        .collect()
}

pub(crate) fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The `window` query parameter (1 hour by default).
pub(crate) fn window_of(query: &str) -> kumo_core::rollup::Window {
    field(&parse_form(query), "window")
        .and_then(kumo_core::rollup::Window::parse)
        .unwrap_or(kumo_core::rollup::Window::Hour1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_plus_and_percent() {
        let f = parse_form("a=1+2&b=%7B%22x%22%3A1%7D&c");
        assert_eq!(field(&f, "a"), Some("1 2"));
        assert_eq!(field(&f, "b"), Some("{\"x\":1}"));
        assert_eq!(field(&f, "c"), Some(""));
        assert_eq!(window_of("window=30d"), kumo_core::rollup::Window::Days30);
        assert_eq!(window_of("window=bogus"), kumo_core::rollup::Window::Hour1);
    }
}
