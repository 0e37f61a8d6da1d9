//! Dashboard sessions: a signed, expiring token naming the access key that
//! signed in, and the anti-forgery token derived from it.
//!
//! The token is `EXPIRES.KEYHEX.MAC` where MAC is the HMAC-SHA256 of
//! `EXPIRES.KEYHEX` under the server's session secret. It holds no secret of
//! the user: every request resolves the key again, so a deleted or deactivated
//! key ends its sessions at once.

use subtle::ConstantTimeEq;

use crate::sigv4::{hex, hmac_sha256};

/// How long a sign-in lasts.
pub const SESSION_LIFETIME_MS: i64 = 12 * 3_600_000;

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token's signature does not match")]
    BadSignature,
    #[error("the session has expired")]
    Expired,
}

/// A new session token for `access_key_id`, valid until `now_ms + SESSION_LIFETIME_MS`.
pub fn issue(secret: &[u8], access_key_id: &str, now_ms: i64) -> String {
    let body = format!("{}.{}", now_ms + SESSION_LIFETIME_MS, hex(access_key_id.as_bytes()));
    let mac = hex(&hmac_sha256(secret, body.as_bytes()));
    format!("{body}.{mac}")
}

/// The access key id a valid, unexpired token names.
pub fn verify(secret: &[u8], token: &str, now_ms: i64) -> Result<String, SessionError> {
    let mut parts = token.split('.');
    let (Some(expires), Some(key_hex), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SessionError::Malformed);
    };
    let expected = hex(&hmac_sha256(secret, format!("{expires}.{key_hex}").as_bytes()));
    if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
        return Err(SessionError::BadSignature);
    }
    let expires: i64 = expires.parse().map_err(|_| SessionError::Malformed)?;
    if now_ms >= expires {
        return Err(SessionError::Expired);
    }
    let key = unhex(key_hex).ok_or(SessionError::Malformed)?;
    String::from_utf8(key).map_err(|_| SessionError::Malformed)
}

/// The anti-forgery token forms must echo: bound to the session, so one
/// session's token is useless in another.
pub fn csrf_token(secret: &[u8], session_token: &str) -> String {
    hex(&hmac_sha256(secret, format!("csrf:{session_token}").as_bytes()))
}

/// Whether a form's anti-forgery token belongs to the session (constant time).
pub fn csrf_ok(secret: &[u8], session_token: &str, presented: &str) -> bool {
    bool::from(csrf_token(secret, session_token).as_bytes().ct_eq(presented.as_bytes()))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_names_its_key_until_it_expires() {
        let t = issue(SECRET, "AKIAEXAMPLE", 1_000);
        assert_eq!(verify(SECRET, &t, 1_000).as_deref(), Ok("AKIAEXAMPLE"));
        assert_eq!(verify(SECRET, &t, 1_000 + SESSION_LIFETIME_MS), Err(SessionError::Expired));
    }

    #[test]
    fn forged_or_altered_tokens_are_refused() {
        let t = issue(SECRET, "AKIAEXAMPLE", 1_000);
        assert_eq!(verify(b"another secret", &t, 1_000), Err(SessionError::BadSignature));
        let later = t.replacen(&(1_000 + SESSION_LIFETIME_MS).to_string(), "99999999999999", 1);
        assert_eq!(verify(SECRET, &later, 1_000), Err(SessionError::BadSignature));
        assert_eq!(verify(SECRET, "abc", 1_000), Err(SessionError::Malformed));
        assert_eq!(verify(SECRET, "a.b.c.d", 1_000), Err(SessionError::Malformed));
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let a = issue(SECRET, "AKIAA", 0);
        let b = issue(SECRET, "AKIAB", 0);
        let token = csrf_token(SECRET, &a);
        assert!(csrf_ok(SECRET, &a, &token));
        assert!(!csrf_ok(SECRET, &b, &token));
        assert!(!csrf_ok(SECRET, &a, ""));
    }
}
