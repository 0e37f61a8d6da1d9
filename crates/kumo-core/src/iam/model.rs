//! The entities of one account, as they are kept and stored.
//!
//! A user or role carries its inline policies and the ARNs of the managed
//! policies attached to it, so every IAM operation changes exactly one stored
//! entity. Names are unique without regard to case, as in IAM; the state keys
//! them by their lower-cased name ([`name_key`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The key a name is unique under (IAM names ignore case).
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_ms: i64,
    /// Inline policies: name → document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Attached managed policies' ARNs, in attachment order.
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

impl AccessKeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }

    pub fn parse(s: &str) -> Option<AccessKeyStatus> {
        match s {
            "Active" => Some(AccessKeyStatus::Active),
            "Inactive" => Some(AccessKeyStatus::Inactive),
            _ => None,
        }
    }
}

/// A user's long-term access key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub user_name: String,
    pub status: AccessKeyStatus,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_ms: i64,
    /// The trust policy (`AssumeRolePolicyDocument`), as given.
    pub trust_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Longest session AssumeRole grants, in seconds (3600 unless set).
    pub max_session_duration: u32,
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    #[serde(default)]
    pub attached_policies: Vec<String>,
}

/// A managed policy. Kumo keeps one version (`v1`) of each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub id: String,
    pub arn: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub document: String,
}

impl ManagedPolicy {
    /// The only version Kumo keeps.
    pub const DEFAULT_VERSION: &'static str = "v1";

    /// AWS's own policies (`arn:aws:iam::aws:policy/...`).
    pub fn is_aws_managed(&self) -> bool {
        self.arn.split(':').nth(4) == Some("aws")
    }
}

/// Temporary credentials of a role session (AssumeRole, or Lambda running a
/// function with its execution role).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StsSession {
    /// `ASIA...`
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub role_name: String,
    /// The role's unique id: a session of a deleted role does not outlive it,
    /// even if a role of the same name is created again.
    pub role_id: String,
    pub role_arn: String,
    pub session_name: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

impl StsSession {
    /// `AROA...:session`, GetCallerIdentity's `UserId` and AssumeRole's `AssumedRoleId`.
    pub fn assumed_role_id(&self) -> String {
        format!("{}:{}", self.role_id, self.session_name)
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_ms
    }
}

/// One stored entity written or removed. Applying a plan's changes to the
/// state, in order, makes the plan true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    PutUser(User),
    DeleteUser(String),
    PutAccessKey(AccessKey),
    DeleteAccessKey(String),
    PutRole(Role),
    DeleteRole(String),
    PutPolicy(ManagedPolicy),
    DeletePolicy(String),
    PutSession(StsSession),
    DeleteSession(String),
}

/// The kinds entities are stored under.
pub mod kind {
    pub const USER: &str = "user";
    pub const ACCESS_KEY: &str = "access_key";
    pub const ROLE: &str = "role";
    pub const POLICY: &str = "policy";
    pub const SESSION: &str = "session";
}

/// A stored entity that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoredEntityError {
    #[error("unknown IAM entity kind {0:?}")]
    UnknownKind(String),
    #[error("unreadable IAM {kind} {key:?}: {source}")]
    Unreadable { kind: String, key: String, source: serde_json::Error },
}

impl Change {
    /// The stored entity's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::PutUser(_) | Change::DeleteUser(_) => kind::USER,
            Change::PutAccessKey(_) | Change::DeleteAccessKey(_) => kind::ACCESS_KEY,
            Change::PutRole(_) | Change::DeleteRole(_) => kind::ROLE,
            Change::PutPolicy(_) | Change::DeletePolicy(_) => kind::POLICY,
            Change::PutSession(_) | Change::DeleteSession(_) => kind::SESSION,
        }
    }

    /// The stored entity's key: the lower-cased name of users, roles and
    /// policies, the access key id of keys and sessions.
    pub fn key(&self) -> String {
        match self {
            Change::PutUser(u) => name_key(&u.name),
            Change::PutRole(r) => name_key(&r.name),
            Change::PutPolicy(p) => name_key(&p.name),
            Change::PutAccessKey(k) => k.id.clone(),
            Change::PutSession(s) => s.access_key_id.clone(),
            Change::DeleteUser(name) | Change::DeleteRole(name) | Change::DeletePolicy(name) => name_key(name),
            Change::DeleteAccessKey(id) | Change::DeleteSession(id) => id.clone(),
        }
    }

    /// The body to store for a put (JSON); `None` for a delete.
    pub fn body(&self) -> Option<Result<String, serde_json::Error>> {
        match self {
            Change::PutUser(u) => Some(serde_json::to_string(u)),
            Change::PutAccessKey(k) => Some(serde_json::to_string(k)),
            Change::PutRole(r) => Some(serde_json::to_string(r)),
            Change::PutPolicy(p) => Some(serde_json::to_string(p)),
            Change::PutSession(s) => Some(serde_json::to_string(s)),
            _ => None,
        }
    }

    /// Reads a stored entity back as the change that puts it.
    pub fn from_stored(kind: &str, key: &str, body: &str) -> Result<Change, StoredEntityError> {
        let unreadable =
            |source| StoredEntityError::Unreadable { kind: kind.to_string(), key: key.to_string(), source };
        match kind {
            kind::USER => serde_json::from_str(body).map(Change::PutUser).map_err(unreadable),
            kind::ACCESS_KEY => serde_json::from_str(body).map(Change::PutAccessKey).map_err(unreadable),
            kind::ROLE => serde_json::from_str(body).map(Change::PutRole).map_err(unreadable),
            kind::POLICY => serde_json::from_str(body).map(Change::PutPolicy).map_err(unreadable),
            kind::SESSION => serde_json::from_str(body).map(Change::PutSession).map_err(unreadable),
            other => Err(StoredEntityError::UnknownKind(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_storage() -> Result<(), Box<dyn std::error::Error>> {
        let user = User {
            name: "Dev".into(),
            path: "/".into(),
            id: "AIDAEXAMPLEEXAMPLE12".into(),
            arn: "arn:aws:iam::000000000000:user/Dev".into(),
            created_ms: 5,
            inline_policies: BTreeMap::from([("p".to_string(), "{}".to_string())]),
            attached_policies: vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()],
        };
        let put = Change::PutUser(user);
        assert_eq!((put.kind(), put.key()), ("user", "dev".to_string()));
        let body = put.body().ok_or("a put has a body")??;
        assert_eq!(Change::from_stored(put.kind(), &put.key(), &body)?, put);
        assert!(Change::DeleteUser("Dev".into()).body().is_none());
        assert_eq!(Change::DeleteUser("Dev".into()).key(), "dev");
        assert!(matches!(Change::from_stored("group", "g", "{}"), Err(StoredEntityError::UnknownKind(_))));
        assert!(matches!(Change::from_stored("role", "r", "{"), Err(StoredEntityError::Unreadable { .. })));
        Ok(())
    }

    #[test]
    fn sessions_know_their_ids_and_expiry() {
        let s = StsSession {
            access_key_id: "ASIA".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            role_name: "r".into(),
            role_id: "AROAX".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "sess".into(),
            created_ms: 0,
            expires_ms: 1000,
        };
        assert_eq!(s.assumed_role_id(), "AROAX:sess");
        assert!(!s.is_expired(999));
        assert!(s.is_expired(1000));
    }
}
