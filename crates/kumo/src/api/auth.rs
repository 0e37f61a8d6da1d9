//! The single authentication layer in front of every API.
//!
//! Today Kumo accepts signed and unsigned requests alike; SigV4 verification
//! and IAM authorisation plug in here, so no handler needs to change.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Who made a request, as far as Kumo knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// The access key named in a SigV4 `Authorization` header (not yet verified).
    ClaimedAccessKey(String),
}

fn claimed_access_key(req: &Request) -> Option<String> {
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_string)
}

pub async fn authenticate(mut req: Request, next: Next) -> Response {
    let caller = match claimed_access_key(&req) {
        Some(key) => Caller::ClaimedAccessKey(key),
        None => Caller::Anonymous,
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}
