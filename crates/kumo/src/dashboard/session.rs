//! Signing in and out: an access key pair checked against Kumo's credentials
//! (the root key or an IAM user's active key) becomes a session cookie.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use kumo_core::session;
use subtle::ConstantTimeEq;

use super::html::{self, PREFIX, esc};
use super::{Dashboard, Principal, field, html_response, read_form, redirect};
use crate::iam::{AuthMode, Identity};

const COOKIE: &str = "kumo_session";

fn cookie_of(headers: &HeaderMap) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == COOKIE).then(|| v.to_string())
    })
}

/// Who the request comes from: the root under `--auth none`, else the key
/// its session cookie names, if the cookie is genuine, unexpired, and the key
/// still works.
pub(super) fn principal(d: &Dashboard, headers: &HeaderMap) -> Option<Principal> {
    if d.authenticator.mode() == AuthMode::None {
        return Some(Principal {
            identity: Identity::root(d.authenticator.account(), None),
            csrf: session::csrf_token(&d.secret, "auth-none"),
            signed_in: false,
        });
    }
    let token = cookie_of(headers)?;
    let now = crate::engine::now_ms();
    let key_id = session::verify(&d.secret, &token, now).ok()?;
    let key = d.authenticator.resolve_key(&key_id, now)?;
    if key.expired || key.session_token.is_some() {
        return None;
    }
    Some(Principal { identity: key.identity, csrf: session::csrf_token(&d.secret, &token), signed_in: true })
}

pub(super) fn signin_page(d: &Dashboard, error: Option<&str>, status: StatusCode) -> Response {
    if d.authenticator.mode() == AuthMode::None {
        return redirect(PREFIX);
    }
    let error = error.map(|e| html::notice("error", e)).unwrap_or_default();
    let body = format!(
        "<section class=\"signin\"><h1>Sign in to Kumo</h1>\
         <p class=\"muted\">With the account's root key (<code>kumo env</code> prints it) or an IAM user's access key. \
         You see what the key's policies let it read.</p>{error}\
         <form method=\"post\" action=\"{PREFIX}/signin\" class=\"stack\">\
         <label>Access key ID<input name=\"access_key_id\" autocomplete=\"username\" required spellcheck=\"false\"></label>\
         <label>Secret access key<input name=\"secret_access_key\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\">Sign in</button></form></section>"
    );
    html_response(status, html::page("Sign in", html::Nav::None, None, &body))
}

pub(super) async fn signin(d: &Arc<Dashboard>, body: Body) -> Response {
    if d.authenticator.mode() == AuthMode::None {
        return redirect(PREFIX);
    }
    let fields = read_form(body).await;
    let key_id = field(&fields, "access_key_id").unwrap_or("").trim();
    let secret = field(&fields, "secret_access_key").unwrap_or("").trim();
    let now = crate::engine::now_ms();
    // The same answer for an unknown key and a wrong secret: keys cannot be probed.
    let refused = || signin_page(d, Some("The access key ID or secret is not valid."), StatusCode::UNAUTHORIZED);
    let Some(key) = d.authenticator.resolve_key(key_id, now) else {
        return refused();
    };
    if key.expired || key.session_token.is_some() {
        return signin_page(
            d,
            Some("Temporary (STS) credentials cannot sign in; use a user's or the root's access key."),
            StatusCode::UNAUTHORIZED,
        );
    }
    if !bool::from(key.secret_access_key.as_bytes().ct_eq(secret.as_bytes())) {
        return refused();
    }
    tracing::info!(principal = %key.identity.arn, "signed in to the dashboard");
    let token = session::issue(&d.secret, key_id, now);
    let mut resp = redirect(PREFIX);
    let cookie = format!(
        "{COOKIE}={token}; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age={}",
        session::SESSION_LIFETIME_MS / 1000
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub(super) fn signout(d: &Dashboard, p: &Principal, fields: &[(String, String)]) -> Response {
    if !csrf_ok(p, fields) {
        return super::forbidden(p, "sign out without the form's token");
    }
    let _ = d;
    let mut resp = redirect(&format!("{PREFIX}/signin"));
    let cookie = format!("{COOKIE}=; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// Whether a form carries the principal's anti-forgery token.
pub(super) fn csrf_ok(p: &Principal, fields: &[(String, String)]) -> bool {
    let presented = field(fields, "csrf").unwrap_or("");
    bool::from(p.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

/// The hidden field carrying the anti-forgery token.
pub(super) fn csrf_field(p: &Principal) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&p.csrf))
}
