//! Identity and access: who a request comes from (credentials, IAM users,
//! roles and STS sessions) and what it may do.

pub mod credentials;
pub mod execution;
pub mod service;
pub mod store;

/// Whether requests must be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    /// Every request is verified (AWS Signature Version 4) and authorised.
    Sigv4,
    /// Nothing is checked: every request acts as the account root. For
    /// throwaway local use only; said loudly at every start.
    None,
}

/// What authentication and authorisation need from IAM.
pub trait IamDirectory: Send + Sync {
    /// The secret and identity behind an access key (IAM users' keys and STS
    /// sessions; the root key is the authenticator's own).
    fn resolve_access_key(&self, access_key_id: &str, now_ms: i64) -> Option<ResolvedKey>;
    /// The identity-based policies of a caller, as (label, JSON document):
    /// inline and attached policies of a user, or of the role of a session.
    fn identity_policies(&self, identity: &Identity) -> Vec<(String, String)>;
}

/// A known access key.
#[derive(Debug, Clone)]
pub struct ResolvedKey {
    pub secret_access_key: String,
    pub identity: Identity,
    /// Set for temporary (STS) credentials: requests must carry it.
    pub session_token: Option<String>,
    pub expired: bool,
}

/// An authenticated caller, as the rest of Kumo sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `arn:aws:iam::ACCT:root`, `arn:aws:iam::ACCT:user/PATH/NAME`, or
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
    pub arn: String,
    pub account: String,
    /// GetCallerIdentity's `UserId`: the account id for root, the user's id
    /// (AIDA…) for a user, `ROLEID:SESSION` for a role session.
    pub user_id: String,
    pub kind: IdentityKind,
    /// The access key the request was signed with (None with `--auth none`).
    pub access_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityKind {
    Root,
    User { name: String },
    AssumedRole { role_name: String, role_arn: String, session_name: String },
}

impl Identity {
    /// The account root (also the caller of every request under `--auth none`).
    pub fn root(account: &str, access_key_id: Option<String>) -> Identity {
        Identity {
            arn: format!("arn:aws:iam::{account}:root"),
            account: account.to_string(),
            user_id: account.to_string(),
            kind: IdentityKind::Root,
            access_key_id,
        }
    }

    pub fn is_root(&self) -> bool {
        self.kind == IdentityKind::Root
    }
}

/// A directory with no IAM entities: only the root key authenticates.
pub struct EmptyDirectory;

impl IamDirectory for EmptyDirectory {
    fn resolve_access_key(&self, _: &str, _: i64) -> Option<ResolvedKey> {
        None
    }

    fn identity_policies(&self, _: &Identity) -> Vec<(String, String)> {
        Vec::new()
    }
}
