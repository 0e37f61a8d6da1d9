//! Who may do what to buckets and objects: s3s verifies the signature (header,
//! presigned URL or aws-chunked stream) with the secret IAM knows for the key;
//! this module checks the session token, names the caller and decides the
//! operation's `s3:*` action on its bucket or object ARN with the same
//! evaluator as every other API.

use std::sync::Arc;

use kumo_core::s3::access::{S3Resource, required_action, resource_arn};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{CopyObjectInput, CopySource, DeleteObjectsInput, UploadPartCopyInput};
use s3s::path::S3Path;
use s3s::{S3Request, S3Result, s3_error};
use subtle::ConstantTimeEq;

use crate::api::auth::Authenticator;
use crate::api::authorize::{Ask, Authorizer};
use crate::iam::Identity;

/// Gives s3s the secret of an access key.
pub struct KeyLookup(pub Arc<Authenticator>);

#[async_trait::async_trait]
impl S3Auth for KeyLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.resolve_key(access_key, crate::engine::now_ms()) {
            Some(k) => Ok(SecretKey::from(k.secret_access_key)),
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}

/// Decides each S3 request.
pub struct AccessControl {
    pub authenticator: Arc<Authenticator>,
    pub authorizer: Arc<Authorizer>,
}

fn security_token(headers: &axum::http::HeaderMap, uri: &axum::http::Uri) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    let query = uri.query()?;
    let raw = crate::api::auth::form_value(query, "X-Amz-Security-Token")?;
    Some(crate::api::query::form_decode(raw))
}

/// The caller's address, for the `aws:SourceIp` condition key.
fn peer_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

impl AccessControl {
    /// Decides one action on one resource for the request's identity.
    fn decide(
        &self,
        identity: &Identity,
        action: &str,
        resource: String,
        peer: Option<std::net::IpAddr>,
    ) -> S3Result<()> {
        if identity.is_root() {
            return Ok(());
        }
        let ask = Ask { action: action.to_string(), resource };
        let mut context = vec![("aws:SecureTransport".to_string(), vec!["false".to_string()])];
        if let Some(peer) = peer {
            context.push(("aws:SourceIp".to_string(), vec![peer.to_string()]));
        }
        let decision = self.authorizer.decide_with_context(identity, &ask, &context, crate::engine::now_ms());
        if decision.is_allowed() {
            return Ok(());
        }
        tracing::info!(principal = %identity.arn, action = %ask.action, resource = %ask.resource, "access denied");
        let message = decision.denial_message(&identity.arn, &ask.action, &ask.resource).unwrap_or_default();
        Err(s3s::S3Error::with_message(s3s::S3ErrorCode::AccessDenied, message))
    }

    fn identity_of<T>(req: &S3Request<T>) -> S3Result<Identity> {
        req.extensions.get::<Identity>().cloned().ok_or_else(|| s3_error!(AccessDenied, "Access Denied"))
    }

    fn source_of(&self, source: &CopySource, req_ext: &axum::http::Extensions, identity: &Identity) -> S3Result<()> {
        let peer = peer_ip(req_ext);
        match source {
            CopySource::Bucket { bucket, key, .. } => {
                self.decide(identity, "s3:GetObject", kumo_core::s3::object_arn(bucket, key), peer)
            }
            _ => Err(s3_error!(NotImplemented, "Only bucket copy sources are supported")),
        }
    }
}

#[async_trait::async_trait]
impl s3s::access::S3Access for AccessControl {
    async fn check(&self, cx: &mut s3s::access::S3AccessContext<'_>) -> S3Result<()> {
        let Some(credentials) = cx.credentials() else {
            return Err(s3_error!(AccessDenied, "Anonymous access is forbidden: sign the request (SigV4)"));
        };
        let key = self
            .authenticator
            .resolve_key(&credentials.access_key, crate::engine::now_ms())
            .ok_or_else(|| s3_error!(InvalidAccessKeyId))?;
        if let Some(expected) = &key.session_token {
            let sent = security_token(cx.headers(), cx.uri()).unwrap_or_default();
            if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(s3_error!(InvalidToken, "The provided token is malformed or otherwise invalid."));
            }
            if key.expired {
                return Err(s3_error!(ExpiredToken, "The provided token has expired."));
            }
        }
        let identity = key.identity;
        cx.extensions_mut().insert(identity.clone());
        if identity.is_root() {
            return Ok(());
        }
        let operation = cx.s3_op().name().to_string();
        let Some((action, kind)) = required_action(&operation) else {
            let message =
                format!("User: {} is not authorized to perform {operation}: it has no IAM action yet", identity.arn);
            return Err(s3s::S3Error::with_message(s3s::S3ErrorCode::AccessDenied, message));
        };
        if operation == "DeleteObjects" {
            // Decided key by key once the body is read.
            return Ok(());
        }
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(bucket.to_string()), None),
            S3Path::Object { bucket, key } => (Some(bucket.to_string()), Some(key.to_string())),
        };
        let resource = match kind {
            S3Resource::Account => "*".to_string(),
            _ => resource_arn(kind, bucket.as_deref(), key.as_deref()),
        };
        let peer = peer_ip(cx.extensions_mut());
        self.decide(&identity, action, resource, peer)
    }

    async fn copy_object(&self, req: &mut S3Request<CopyObjectInput>) -> S3Result<()> {
        let identity = Self::identity_of(req)?;
        self.source_of(&req.input.copy_source, &req.extensions, &identity)
    }

    async fn upload_part_copy(&self, req: &mut S3Request<UploadPartCopyInput>) -> S3Result<()> {
        let identity = Self::identity_of(req)?;
        self.source_of(&req.input.copy_source, &req.extensions, &identity)
    }

    async fn delete_objects(&self, req: &mut S3Request<DeleteObjectsInput>) -> S3Result<()> {
        let identity = Self::identity_of(req)?;
        for object in &req.input.delete.objects {
            let arn = kumo_core::s3::object_arn(&req.input.bucket, &object.key);
            self.decide(&identity, "s3:DeleteObject", arn, peer_ip(&req.extensions))?;
        }
        Ok(())
    }
}
