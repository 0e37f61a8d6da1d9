//! Roles, their policies, and the STS sessions they grant.
//!
//! AssumeRole is decided by the role's trust policy ([`crate::policy::may_assume`]).
//! A trust policy that names the caller (its ARN, or its role for a session)
//! is enough; one that only names the caller's *account* delegates to that
//! account, so the caller's own identity-based policies must then also allow
//! `sts:AssumeRole` on the role, as in IAM. The account root needs no policy.

use super::model::{Change, Role, StsSession, name_key};
use super::page::{Page, paginate};
use super::policies::{self, Holder};
use super::state::{IamState, Outcome};
use super::{IamError, IamErrorCode, RandomSource, ids, validate};
use crate::policy::{self, NamedPolicy, PolicyKind, Principal, PrincipalKind, Request};

/// A role's trust policy quota (non-whitespace characters).
pub const TRUST_POLICY_SIZE: usize = 2048;
/// MaxSessionDuration when CreateRole does not set it.
pub const DEFAULT_MAX_SESSION_SECONDS: u32 = 3600;
/// AssumeRole's DurationSeconds when not given.
pub const DEFAULT_SESSION_SECONDS: i64 = 3600;
/// A session assumed with another session's credentials lasts at most this long.
pub const CHAINED_SESSION_SECONDS: i64 = 3600;
/// Expired sessions are kept this long (their use says "expired", not
/// "unknown"), then removed when new sessions are granted.
pub const EXPIRED_SESSION_KEPT_MS: i64 = 3_600_000;
/// At most this many expired sessions are removed per grant.
const PRUNE_BATCH: usize = 64;

/// A CreateRole call.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewRole<'a> {
    pub name: &'a str,
    pub path: Option<&'a str>,
    /// `AssumeRolePolicyDocument`.
    pub trust_policy: &'a str,
    pub description: Option<&'a str>,
    pub max_session_duration: Option<i64>,
}

/// An AssumeRole call.
#[derive(Debug, Clone)]
pub struct AssumeRequest<'a> {
    /// The caller, as the policy engine sees it (with its user id and, for a
    /// session, its role's ARN).
    pub caller: &'a Principal,
    /// The caller's identity-based policies (empty for the root).
    pub caller_policies: &'a [NamedPolicy],
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub duration_seconds: Option<i64>,
}

/// The session AssumeRole granted.
pub type SessionGrant = StsSession;

impl IamState {
    pub fn create_role(
        &self,
        new: &NewRole<'_>,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<Role>, IamError> {
        let NewRole { name, path, trust_policy, description, max_session_duration } = *new;
        validate::role_name(name)?;
        let path = path.unwrap_or("/");
        validate::path(path)?;
        if let Some(d) = description {
            validate::description(d)?;
        }
        let max_session_duration = match max_session_duration {
            Some(s) => {
                validate::max_session_duration(s)?;
                s as u32
            }
            None => DEFAULT_MAX_SESSION_SECONDS,
        };
        check_trust_policy(trust_policy)?;
        if self.role(name).is_some() {
            return Err(IamError::exists(format!("Role with name {name} already exists.")));
        }
        let role = Role {
            name: name.to_string(),
            path: path.to_string(),
            id: ids::unique_id(ids::ROLE_ID_PREFIX, random),
            arn: ids::role_arn(self.account(), path, name),
            created_ms: now_ms,
            trust_policy: trust_policy.to_string(),
            description: description.filter(|d| !d.is_empty()).map(str::to_string),
            max_session_duration,
            inline_policies: Default::default(),
            attached_policies: Vec::new(),
        };
        Ok(Outcome::new(role.clone(), vec![Change::PutRole(role)]))
    }

    pub fn get_role(&self, name: &str) -> Result<&Role, IamError> {
        validate::role_name(name)?;
        self.require_role(name)
    }

    /// Refused while the role has policies. Its sessions end with it.
    pub fn delete_role(&self, name: &str) -> Result<Outcome<()>, IamError> {
        let role = self.get_role(name)?;
        if !role.inline_policies.is_empty() {
            return Err(IamError::conflict("Cannot delete entity, must delete policies first."));
        }
        if !role.attached_policies.is_empty() {
            return Err(IamError::conflict("Cannot delete entity, must detach all policies first."));
        }
        // The role goes first: should the session deletions not all land (or
        // there be more than one batch of them), the sessions left behind name
        // a role id that no longer exists, resolve to nothing and are pruned later.
        let mut changes = vec![Change::DeleteRole(role.name.clone())];
        changes.extend(
            self.sessions
                .values()
                .filter(|s| s.role_id == role.id)
                .take(PRUNE_BATCH)
                .map(|s| Change::DeleteSession(s.access_key_id.clone())),
        );
        Ok(Outcome::new((), changes))
    }

    pub fn list_roles(
        &self,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<Role>, IamError> {
        if let Some(prefix) = path_prefix {
            validate::path_prefix(prefix)?;
        }
        let items = self
            .roles
            .iter()
            .filter(|(_, r)| path_prefix.is_none_or(|p| r.path.starts_with(p)))
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        paginate(items, marker, max_items)
    }

    pub fn update_assume_role_policy(&self, name: &str, trust_policy: &str) -> Result<Outcome<()>, IamError> {
        let role = self.get_role(name)?;
        check_trust_policy(trust_policy)?;
        Ok(Outcome::new((), vec![Change::PutRole(Role { trust_policy: trust_policy.to_string(), ..role.clone() })]))
    }

    fn with_role(&self, name: &str, f: impl FnOnce(&Role) -> Result<Role, IamError>) -> Result<Outcome<()>, IamError> {
        let role = self.get_role(name)?;
        Ok(Outcome::new((), vec![Change::PutRole(f(role)?)]))
    }

    pub fn put_role_policy(&self, role_name: &str, policy_name: &str, document: &str) -> Result<Outcome<()>, IamError> {
        self.with_role(role_name, |r| {
            let inline_policies =
                policies::put_inline(Holder::Role, &r.name, &r.inline_policies, policy_name, document)?;
            Ok(Role { inline_policies, ..r.clone() })
        })
    }

    pub fn get_role_policy(&self, role_name: &str, policy_name: &str) -> Result<(&Role, &str), IamError> {
        validate::policy_name(policy_name)?;
        let role = self.get_role(role_name)?;
        Ok((role, policies::get_inline(Holder::Role, &role.inline_policies, policy_name)?))
    }

    pub fn delete_role_policy(&self, role_name: &str, policy_name: &str) -> Result<Outcome<()>, IamError> {
        validate::policy_name(policy_name)?;
        self.with_role(role_name, |r| {
            let inline_policies = policies::delete_inline(Holder::Role, &r.inline_policies, policy_name)?;
            Ok(Role { inline_policies, ..r.clone() })
        })
    }

    pub fn list_role_policies(
        &self,
        role_name: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<String>, IamError> {
        let role = self.get_role(role_name)?;
        policies::list_inline(&role.inline_policies, marker, max_items)
    }

    pub fn attach_role_policy(&self, role_name: &str, arn: &str) -> Result<Outcome<()>, IamError> {
        self.with_role(role_name, |r| {
            Ok(Role { attached_policies: self.attach(Holder::Role, &r.attached_policies, arn)?, ..r.clone() })
        })
    }

    pub fn detach_role_policy(&self, role_name: &str, arn: &str) -> Result<Outcome<()>, IamError> {
        self.with_role(role_name, |r| {
            Ok(Role { attached_policies: self.detach(&r.attached_policies, arn)?, ..r.clone() })
        })
    }

    pub fn list_attached_role_policies(
        &self,
        role_name: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<(String, String)>, IamError> {
        let role = self.get_role(role_name)?;
        self.list_attached(&role.attached_policies, path_prefix, marker, max_items)
    }

    /// STS AssumeRole: checks the request and the role's trust policy, and
    /// plans the new session. A missing role is refused like a forbidden one,
    /// so callers cannot probe which roles exist.
    pub fn assume_role(
        &self,
        req: &AssumeRequest<'_>,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<SessionGrant>, IamError> {
        validate::session_name(req.session_name)?;
        if let Some(d) = req.duration_seconds {
            validate::duration_seconds(d)?;
        }
        if !(20..=2048).contains(&req.role_arn.len()) {
            let rule =
                if req.role_arn.len() < 20 { "greater than or equal to 20" } else { "less than or equal to 2048" };
            return Err(IamError::validation(format!(
                "1 validation error detected: Value '{}' at 'roleArn' failed to satisfy constraint: Member must have length {rule}",
                req.role_arn
            )));
        }
        let denied = || {
            IamError::new(
                IamErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                    req.caller.arn, req.role_arn
                ),
            )
        };
        let role = self.role_by_arn(req.role_arn).ok_or_else(denied)?;
        if !self.trusts(role, req, now_ms) {
            return Err(denied());
        }
        let duration = req.duration_seconds.unwrap_or(DEFAULT_SESSION_SECONDS);
        if req.caller.kind == PrincipalKind::AssumedRole && duration > CHAINED_SESSION_SECONDS {
            return Err(IamError::validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            ));
        }
        if duration > i64::from(role.max_session_duration) {
            return Err(IamError::validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        Ok(self.plan_session(role, req.session_name, duration * 1000, now_ms, random))
    }

    fn trusts(&self, role: &Role, req: &AssumeRequest<'_>, now_ms: i64) -> bool {
        let Ok(trust) =
            NamedPolicy::parse(format!("trust policy of role {}", role.name), &role.trust_policy, PolicyKind::Trust)
        else {
            return false;
        };
        let request = |principal: Principal| {
            Request::assume_role(principal, &role.arn, now_ms).with_resource_account(self.account())
        };
        if !policy::may_assume(&trust, &request(req.caller.clone())).is_allowed() {
            return false;
        }
        if req.caller.kind == PrincipalKind::Root {
            return true;
        }
        // Named directly (without the account facet), the trust policy alone decides.
        let named = Principal { account: None, ..req.caller.clone() };
        if policy::may_assume(&trust, &request(named)).is_allowed() {
            return true;
        }
        policy::evaluate(&request(req.caller.clone()), req.caller_policies, &[]).is_allowed()
    }

    /// A session Lambda grants a function with its execution role: no caller,
    /// no trust check here (see [`IamState::role_trusts_service`]) and no
    /// MaxSessionDuration, as on AWS.
    pub fn service_session(
        &self,
        role_name: &str,
        session_name: &str,
        duration_ms: i64,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<SessionGrant>, IamError> {
        // The session name is Lambda's choice (the function's name), not a caller's.
        let role = self.require_role(role_name)?;
        Ok(self.plan_session(role, session_name, duration_ms, now_ms, random))
    }

    /// Whether the role's trust policy lets `service` (e.g. `lambda.amazonaws.com`) assume it.
    pub fn role_trusts_service(&self, role_arn: &str, service: &str, now_ms: i64) -> bool {
        let Some(role) = self.role_by_arn(role_arn) else {
            return false;
        };
        let Ok(trust) = NamedPolicy::parse("trust policy", &role.trust_policy, PolicyKind::Trust) else {
            return false;
        };
        let request =
            Request::assume_role(Principal::service(service), &role.arn, now_ms).with_resource_account(self.account());
        policy::may_assume(&trust, &request).is_allowed()
    }

    fn plan_session(
        &self,
        role: &Role,
        session_name: &str,
        duration_ms: i64,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Outcome<SessionGrant> {
        let session = StsSession {
            access_key_id: ids::access_key_id(ids::SESSION_KEY_PREFIX, random),
            secret_access_key: ids::secret_access_key(random),
            session_token: ids::session_token(random),
            role_name: role.name.clone(),
            role_id: role.id.clone(),
            role_arn: role.arn.clone(),
            session_name: session_name.to_string(),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(duration_ms),
        };
        let mut changes = vec![Change::PutSession(session.clone())];
        // Sessions are granted far more often than anything else changes: the
        // long-expired ones are cleared on the way.
        changes.extend(
            self.sessions
                .values()
                .filter(|s| s.expires_ms.saturating_add(EXPIRED_SESSION_KEPT_MS) < now_ms || !self.role_lives(s))
                .take(PRUNE_BATCH)
                .map(|s| Change::DeleteSession(s.access_key_id.clone())),
        );
        Outcome::new(session, changes)
    }

    fn role_lives(&self, s: &StsSession) -> bool {
        self.roles.get(&name_key(&s.role_name)).is_some_and(|r| r.id == s.role_id)
    }
}

fn check_trust_policy(document: &str) -> Result<(), IamError> {
    validate::policy_document("assumeRolePolicyDocument", document, PolicyKind::Trust)?;
    if validate::policy_size(document) > TRUST_POLICY_SIZE {
        return Err(IamError::limit(format!("Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_SIZE}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
