//! The account's IAM, live: [`kumo_core::iam::IamState`] behind a lock, with
//! every change stored durably before anyone sees it.
//!
//! Reads (the authenticator and authorizer on every request) take a shared
//! lock and never wait on the disk. Changes are serialised by one async
//! mutex: the operation is planned against the current state, its changes
//! are committed to the store, and only then applied in memory.

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use kumo_core::iam::{
    AssumeRequest, IamError, IamErrorCode, IamState, KeyOwner, Outcome, RandomSource, Role, StsSession, ids,
};
use kumo_core::policy::{NamedPolicy, PolicyKind, Principal};

use super::store::{self, IamStoreError};
use super::{IamDirectory, Identity, IdentityKind, ResolvedKey};
use crate::store::Store;

/// Temporary credentials, as STS hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration_ms: i64,
}

/// A granted role session: AssumeRole's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedRole {
    pub credentials: Credentials,
    /// `AROA...:session`
    pub assumed_role_id: String,
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`
    pub arn: String,
}

pub struct IamService {
    account: String,
    store: Arc<dyn Store>,
    state: RwLock<IamState>,
    /// Held from planning a change until it is applied: no other change can
    /// slip in between the state a plan saw and the state it lands on.
    writer: tokio::sync::Mutex<()>,
}

/// The operating system's randomness, through v4 UUIDs (122 random bits each;
/// the fixed version and variant bytes are skipped).
struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        let mut filled = 0;
        while filled < buf.len() {
            let bytes = uuid::Uuid::new_v4().into_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if i == 6 || i == 8 || filled == buf.len() {
                    continue;
                }
                buf[filled] = *b;
                filled += 1;
            }
        }
    }
}

fn now_ms() -> i64 {
    crate::engine::now_ms()
}

/// How the policy engine names a caller.
pub fn principal_of(identity: &Identity) -> Principal {
    match &identity.kind {
        IdentityKind::Root => Principal::root(&identity.account),
        IdentityKind::User { .. } => {
            Principal::from_arn(&identity.arn).unwrap_or_else(Principal::anonymous).with_user_id(&identity.user_id)
        }
        IdentityKind::AssumedRole { role_arn, .. } => Principal::from_arn(&identity.arn)
            .unwrap_or_else(Principal::anonymous)
            .with_role_arn(role_arn)
            .with_user_id(&identity.user_id),
    }
}

fn session_identity(account: &str, role: &Role, session: &StsSession) -> Identity {
    Identity {
        arn: ids::assumed_role_arn(account, &role.name, &session.session_name),
        account: account.to_string(),
        user_id: session.assumed_role_id(),
        kind: IdentityKind::AssumedRole {
            role_name: role.name.clone(),
            role_arn: role.arn.clone(),
            session_name: session.session_name.clone(),
        },
        access_key_id: Some(session.access_key_id.clone()),
    }
}

fn assumed(account: &str, session: StsSession) -> AssumedRole {
    AssumedRole {
        arn: ids::assumed_role_arn(account, &session.role_name, &session.session_name),
        assumed_role_id: session.assumed_role_id(),
        credentials: Credentials {
            access_key_id: session.access_key_id,
            secret_access_key: session.secret_access_key,
            session_token: session.session_token,
            expiration_ms: session.expires_ms,
        },
    }
}

impl IamService {
    /// Loads the account's IAM entities from the store.
    pub async fn load(store: Arc<dyn Store>, account: &str) -> Result<IamService, IamStoreError> {
        let state = store::load(store.as_ref(), account).await?;
        Ok(IamService {
            account: account.to_string(),
            store,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    fn state(&self) -> RwLockReadGuard<'_, IamState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a query against the current state.
    pub fn read<T>(&self, f: impl FnOnce(&IamState) -> T) -> T {
        f(&self.state())
    }

    /// Plans a change against the current state, stores it durably, then
    /// makes it visible; answers the plan's value. A store failure is a
    /// `ServiceFailure` and leaves memory as the disk has it.
    pub async fn mutate<T>(
        &self,
        plan: impl FnOnce(&IamState, &mut dyn RandomSource) -> Result<Outcome<T>, IamError>,
    ) -> Result<T, IamError> {
        let _writer = self.writer.lock().await;
        let outcome = plan(&self.state(), &mut OsRandom)?;
        let mut stored = Vec::with_capacity(outcome.changes.len());
        let mut failure = None;
        for change in outcome.changes {
            if let Err(e) = store::persist(self.store.as_ref(), &change).await {
                failure = Some(e);
                break;
            }
            stored.push(change);
        }
        {
            let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
            for change in stored {
                state.apply(change);
            }
        }
        match failure {
            None => Ok(outcome.value),
            Some(e) => {
                tracing::error!(error = %e, "storing an IAM change failed");
                Err(IamError::new(IamErrorCode::ServiceFailure, "The change could not be stored; try again."))
            }
        }
    }

    /// The secret and identity behind an access key: an active key of an
    /// existing user, or a session of an existing role (`expired` set once
    /// it has run out).
    pub fn resolve_access_key(&self, access_key_id: &str, now_ms: i64) -> Option<ResolvedKey> {
        let state = self.state();
        match state.resolve_key(access_key_id)? {
            KeyOwner::User { user, key } => Some(ResolvedKey {
                secret_access_key: key.secret.clone(),
                identity: Identity {
                    arn: user.arn.clone(),
                    account: self.account.clone(),
                    user_id: user.id.clone(),
                    kind: IdentityKind::User { name: user.name.clone() },
                    access_key_id: Some(key.id.clone()),
                },
                session_token: None,
                expired: false,
            }),
            KeyOwner::Session { role, session } => Some(ResolvedKey {
                secret_access_key: session.secret_access_key.clone(),
                identity: session_identity(&self.account, role, session),
                session_token: Some(session.session_token.clone()),
                expired: session.is_expired(now_ms),
            }),
        }
    }

    /// A caller's identity-based policies as (label, JSON document): inline
    /// and attached policies of a user, or of the role of a session; none
    /// for the root.
    pub fn identity_policies(&self, identity: &Identity) -> Vec<(String, String)> {
        let state = self.state();
        match &identity.kind {
            IdentityKind::Root => Vec::new(),
            IdentityKind::User { name } => state.user_policies(name),
            IdentityKind::AssumedRole { role_name, .. } => state.role_policies(role_name),
        }
    }

    pub fn role(&self, name: &str) -> Option<Role> {
        self.state().role(name).cloned()
    }

    pub fn role_by_arn(&self, arn: &str) -> Option<Role> {
        self.state().role_by_arn(arn).cloned()
    }

    /// Whether the role's trust policy lets `service` (`lambda.amazonaws.com`) assume it.
    pub fn role_trusts_service(&self, role_arn: &str, service: &str) -> bool {
        self.state().role_trusts_service(role_arn, service, now_ms())
    }

    /// STS AssumeRole for `caller`: the role's trust policy must allow it
    /// (and, when the trust policy names only the account, the caller's own
    /// policies must allow `sts:AssumeRole` on the role).
    pub async fn assume_role(
        &self,
        caller: &Identity,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<i64>,
        now_ms: i64,
    ) -> Result<AssumedRole, IamError> {
        let principal = principal_of(caller);
        let session = self
            .mutate(|state, random| {
                let documents = match &caller.kind {
                    IdentityKind::Root => Vec::new(),
                    IdentityKind::User { name } => state.user_policies(name),
                    IdentityKind::AssumedRole { role_name, .. } => state.role_policies(role_name),
                };
                let policies: Vec<NamedPolicy> = documents
                    .into_iter()
                    .filter_map(|(label, doc)| NamedPolicy::parse(label, &doc, PolicyKind::Identity).ok())
                    .collect();
                let request = AssumeRequest {
                    caller: &principal,
                    caller_policies: &policies,
                    role_arn,
                    session_name,
                    duration_seconds,
                };
                state.assume_role(&request, now_ms, random)
            })
            .await?;
        Ok(assumed(&self.account, session))
    }

    /// Credentials for a function running with its execution role, issued by
    /// Lambda itself: no caller to check, and the role's MaxSessionDuration
    /// does not apply. Check [`IamService::role_trusts_service`] first.
    pub async fn issue_role_session(
        &self,
        role_name: &str,
        session_name: &str,
        duration: Duration,
        now_ms: i64,
    ) -> Result<AssumedRole, IamError> {
        let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        let session = self
            .mutate(|state, random| state.service_session(role_name, session_name, duration_ms, now_ms, random))
            .await?;
        Ok(assumed(&self.account, session))
    }
}

impl IamDirectory for IamService {
    fn resolve_access_key(&self, access_key_id: &str, now_ms: i64) -> Option<ResolvedKey> {
        IamService::resolve_access_key(self, access_key_id, now_ms)
    }

    fn identity_policies(&self, identity: &Identity) -> Vec<(String, String)> {
        IamService::identity_policies(self, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    const TRUST_ROOT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"sts:AssumeRole"}]}"#;
    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}"#;

    #[test]
    fn os_random_fills_any_length() {
        let mut a = [0u8; 57];
        let mut b = [0u8; 57];
        OsRandom.fill(&mut a);
        OsRandom.fill(&mut b);
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn changes_survive_a_restart_and_sessions_resolve() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path())?);
        let iam = IamService::load(store.clone(), "000000000000").await?;
        iam.mutate(|s, r| s.create_user("dev", None, 1, r)).await?;
        let key = iam.mutate(|s, r| s.create_access_key("dev", 2, r)).await?;
        iam.mutate(|s, _| s.put_user_policy("dev", "all", DOC)).await?;
        let role = iam
            .mutate(|s, r| {
                s.create_role(
                    &kumo_core::iam::NewRole { name: "admin", trust_policy: TRUST_ROOT, ..Default::default() },
                    3,
                    r,
                )
            })
            .await?;
        let root = Identity::root("000000000000", None);
        let granted = iam.assume_role(&root, &role.arn, "me", Some(900), 1_000).await?;
        assert_eq!(granted.arn, "arn:aws:sts::000000000000:assumed-role/admin/me");
        assert_eq!(granted.credentials.expiration_ms, 901_000);
        drop(iam);

        let again = IamService::load(store, "000000000000").await?;
        let resolved = again.resolve_access_key(&key.id, 0).ok_or("user key lost")?;
        assert_eq!(resolved.secret_access_key, key.secret);
        assert_eq!(resolved.identity.kind, IdentityKind::User { name: "dev".into() });
        assert_eq!(again.identity_policies(&resolved.identity).len(), 1);
        let session = again.resolve_access_key(&granted.credentials.access_key_id, 2_000).ok_or("session lost")?;
        assert_eq!(session.session_token.as_deref(), Some(granted.credentials.session_token.as_str()));
        assert_eq!(session.identity.arn, "arn:aws:sts::000000000000:assumed-role/admin/me");
        assert_eq!(session.identity.user_id, format!("{}:me", role.id));
        assert!(!session.expired);
        assert!(again.resolve_access_key(&granted.credentials.access_key_id, 901_000).is_some_and(|k| k.expired));
        assert!(again.identity_policies(&root).is_empty());
        // A deleted role's sessions stop working.
        again.mutate(|s, _| s.delete_role("admin")).await?;
        assert!(again.resolve_access_key(&granted.credentials.access_key_id, 2_000).is_none());
        Ok(())
    }
}
