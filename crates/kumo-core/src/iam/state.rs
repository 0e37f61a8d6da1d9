//! One account's IAM entities, how changes apply to them, and the lookups
//! authentication and authorisation make on every request.

use std::collections::{BTreeMap, HashMap};

use super::model::{AccessKey, AccessKeyStatus, Change, ManagedPolicy, Role, StsSession, User, name_key};
use super::{IamError, ids, policies};

/// The result of a planned operation and the changes that make it so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    pub value: T,
    pub changes: Vec<Change>,
}

impl<T> Outcome<T> {
    pub(crate) fn new(value: T, changes: Vec<Change>) -> Outcome<T> {
        Outcome { value, changes }
    }
}

/// Everything IAM knows about one account.
#[derive(Debug, Clone)]
pub struct IamState {
    account: String,
    pub(crate) users: BTreeMap<String, User>,
    pub(crate) access_keys: BTreeMap<String, AccessKey>,
    pub(crate) roles: BTreeMap<String, Role>,
    /// Customer managed policies, by lower-cased name.
    pub(crate) policies: BTreeMap<String, ManagedPolicy>,
    /// AWS managed policies, by ARN (built in, never stored).
    pub(crate) aws_policies: BTreeMap<String, ManagedPolicy>,
    pub(crate) sessions: HashMap<String, StsSession>,
}

/// The owner of an access key that authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOwner<'a> {
    /// An active key of an existing user.
    User { user: &'a User, key: &'a AccessKey },
    /// A session of a role that still exists (expired or not: the caller
    /// tells an expired token from an unknown one).
    Session { role: &'a Role, session: &'a StsSession },
}

impl IamState {
    /// An account with no users, roles or policies of its own.
    pub fn new(account: &str) -> IamState {
        IamState {
            account: account.to_string(),
            users: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            roles: BTreeMap::new(),
            policies: BTreeMap::new(),
            aws_policies: policies::aws_managed_policies().into_iter().map(|p| (p.arn.clone(), p)).collect(),
            sessions: HashMap::new(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// Makes a (durably stored) change visible.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::PutUser(u) => {
                self.users.insert(name_key(&u.name), u);
            }
            Change::DeleteUser(name) => {
                self.users.remove(&name_key(&name));
            }
            Change::PutAccessKey(k) => {
                self.access_keys.insert(k.id.clone(), k);
            }
            Change::DeleteAccessKey(id) => {
                self.access_keys.remove(&id);
            }
            Change::PutRole(r) => {
                self.roles.insert(name_key(&r.name), r);
            }
            Change::DeleteRole(name) => {
                self.roles.remove(&name_key(&name));
            }
            Change::PutPolicy(p) => {
                self.policies.insert(name_key(&p.name), p);
            }
            Change::DeletePolicy(name) => {
                self.policies.remove(&name_key(&name));
            }
            Change::PutSession(s) => {
                self.sessions.insert(s.access_key_id.clone(), s);
            }
            Change::DeleteSession(id) => {
                self.sessions.remove(&id);
            }
        }
    }

    /// Applies all of an outcome's changes and hands back its value (for
    /// callers with nothing to persist, such as tests).
    pub fn commit<T>(&mut self, outcome: Outcome<T>) -> T {
        for change in outcome.changes {
            self.apply(change);
        }
        outcome.value
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.get(&name_key(name))
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(&name_key(name))
    }

    /// The role an ARN of this account names (by name; the path is not compared,
    /// as a session ARN does not carry it).
    pub fn role_by_arn(&self, arn: &str) -> Option<&Role> {
        let parsed = ids::parse_iam_arn(arn, "role")?;
        if parsed.account != self.account {
            return None;
        }
        self.role(parsed.name)
    }

    /// A managed policy, customer or AWS, by ARN.
    pub fn policy(&self, arn: &str) -> Option<&ManagedPolicy> {
        if let Some(p) = self.aws_policies.get(arn) {
            return Some(p);
        }
        let parsed = ids::parse_iam_arn(arn, "policy")?;
        self.policies.get(&name_key(parsed.name)).filter(|p| p.arn.eq_ignore_ascii_case(arn))
    }

    pub fn access_key(&self, id: &str) -> Option<&AccessKey> {
        self.access_keys.get(id)
    }

    pub fn session(&self, access_key_id: &str) -> Option<&StsSession> {
        self.sessions.get(access_key_id)
    }

    pub fn users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn sessions(&self) -> impl Iterator<Item = &StsSession> {
        self.sessions.values()
    }

    /// Who an access key belongs to, if it may be used at all: inactive keys,
    /// keys of deleted users and sessions of deleted roles resolve to nothing.
    pub fn resolve_key(&self, access_key_id: &str) -> Option<KeyOwner<'_>> {
        if let Some(key) = self.access_keys.get(access_key_id) {
            let user = self.user(&key.user_name)?;
            return (key.status == AccessKeyStatus::Active).then_some(KeyOwner::User { user, key });
        }
        let session = self.sessions.get(access_key_id)?;
        let role = self.role(&session.role_name).filter(|r| r.id == session.role_id)?;
        Some(KeyOwner::Session { role, session })
    }

    /// A user's identity-based policies as (label, document): inline ones,
    /// then attached managed ones (labelled by ARN).
    pub fn user_policies(&self, name: &str) -> Vec<(String, String)> {
        self.user(name)
            .map(|u| self.holder_policies("user", &u.name, &u.inline_policies, &u.attached_policies))
            .unwrap_or_default()
    }

    /// A role's identity-based policies, as [`IamState::user_policies`].
    pub fn role_policies(&self, name: &str) -> Vec<(String, String)> {
        self.role(name)
            .map(|r| self.holder_policies("role", &r.name, &r.inline_policies, &r.attached_policies))
            .unwrap_or_default()
    }

    fn holder_policies(
        &self,
        kind: &str,
        holder: &str,
        inline: &BTreeMap<String, String>,
        attached: &[String],
    ) -> Vec<(String, String)> {
        let inline = inline.iter().map(|(name, doc)| (format!("inline policy {name} of {kind} {holder}"), doc.clone()));
        let attached = attached.iter().filter_map(|arn| self.policy(arn)).map(|p| (p.arn.clone(), p.document.clone()));
        inline.chain(attached).collect()
    }

    pub(crate) fn require_user(&self, name: &str) -> Result<&User, IamError> {
        self.user(name).ok_or_else(|| IamError::no_such(format!("The user with name {name} cannot be found.")))
    }

    pub(crate) fn require_role(&self, name: &str) -> Result<&Role, IamError> {
        self.role(name).ok_or_else(|| IamError::no_such(format!("The role with name {name} cannot be found.")))
    }
}
