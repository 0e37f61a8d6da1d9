//! The request being authorized: who asks, for what, on what, and the
//! condition keys that came with it.

use std::collections::BTreeMap;
use std::fmt;

use super::scalars;

/// What kind of identity makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// An account's root user.
    Root,
    User,
    /// A role itself (trust-policy checks name roles this way).
    Role,
    /// A session of an assumed role (`arn:aws:sts::A:assumed-role/R/S`).
    AssumedRole,
    /// An STS federated user (`arn:aws:sts::A:federated-user/N`).
    FederatedUser,
    /// An AWS service acting on its own behalf (`lambda.amazonaws.com`).
    Service,
    /// A web-identity or SAML provider (`cognito-identity.amazonaws.com`).
    Federated,
    /// An unauthenticated caller.
    Anonymous,
}

/// The requesting identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The principal's ARN; for services and providers their name; `anonymous` for anonymous callers.
    pub arn: String,
    pub account: Option<String>,
    /// `aws:username` (IAM users only).
    pub user_name: Option<String>,
    /// `aws:userid` (`AIDA...` for users, `AROA...:session` for role sessions).
    pub user_id: Option<String>,
    /// For a role session, the ARN of its role (with the role's path, if the
    /// caller knows it: the session ARN does not carry the path).
    pub role_arn: Option<String>,
}

/// One of the identities a principal can be named by in `Principal` / `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Facet {
    Account(String),
    Arn(String),
    Service(String),
    Federated(String),
    Anonymous,
}

impl Principal {
    fn bare(kind: PrincipalKind, arn: String, account: Option<String>) -> Principal {
        Principal { kind, arn, account, user_name: None, user_id: None, role_arn: None }
    }

    /// The root user of `account` (partition `aws`).
    pub fn root(account: &str) -> Principal {
        Principal::bare(PrincipalKind::Root, format!("arn:aws:iam::{account}:root"), Some(account.to_string()))
    }

    /// An AWS service principal such as `s3.amazonaws.com`.
    pub fn service(name: &str) -> Principal {
        Principal::bare(PrincipalKind::Service, name.to_string(), None)
    }

    /// A web-identity or SAML provider, as `AssumeRoleWithWebIdentity` presents it.
    pub fn federated(provider: &str) -> Principal {
        Principal::bare(PrincipalKind::Federated, provider.to_string(), None)
    }

    pub fn anonymous() -> Principal {
        Principal::bare(PrincipalKind::Anonymous, "anonymous".to_string(), None)
    }

    /// Reads an IAM or STS principal ARN: `...:iam::A:root`, `...:iam::A:user/path/name`,
    /// `...:iam::A:role/path/name`, `...:sts::A:assumed-role/role/session`,
    /// `...:sts::A:federated-user/name`. `None` for anything else.
    pub fn from_arn(arn: &str) -> Option<Principal> {
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = fields.as_slice() else {
            return None;
        };
        if *prefix != "arn" || partition.is_empty() || !region.is_empty() || !is_account_id(account) {
            return None;
        }
        let account = account.to_string();
        let named = |kind| Principal::bare(kind, arn.to_string(), Some(account.clone()));
        match (*service, *resource) {
            ("iam", "root") => Some(named(PrincipalKind::Root)),
            ("iam", r) if r.starts_with("user/") => {
                let name = r.rsplit('/').next().filter(|n| !n.is_empty())?;
                Some(Principal { user_name: Some(name.to_string()), ..named(PrincipalKind::User) })
            }
            ("iam", r) if r.strip_prefix("role/").is_some_and(|n| !n.is_empty() && !n.ends_with('/')) => {
                Some(named(PrincipalKind::Role))
            }
            ("sts", r) if r.starts_with("assumed-role/") => {
                let mut parts = r.splitn(3, '/').skip(1);
                let role = parts.next().filter(|s| !s.is_empty())?;
                parts.next().filter(|s| !s.is_empty())?;
                let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
                Some(Principal { role_arn: Some(role_arn), ..named(PrincipalKind::AssumedRole) })
            }
            ("sts", r) if r.strip_prefix("federated-user/").is_some_and(|n| !n.is_empty()) => {
                Some(named(PrincipalKind::FederatedUser))
            }
            _ => None,
        }
    }

    pub fn with_user_id(mut self, user_id: &str) -> Principal {
        self.user_id = Some(user_id.to_string());
        self
    }

    /// Sets the role of a session when its path is known (`role/path/name`).
    pub fn with_role_arn(mut self, role_arn: &str) -> Principal {
        self.role_arn = Some(role_arn.to_string());
        self
    }

    /// The identities a policy may name this principal by. A role session is
    /// its account, its role and itself; AWS checks `NotPrincipal` against each.
    pub(crate) fn facets(&self) -> Vec<Facet> {
        let mut facets = Vec::new();
        match self.kind {
            PrincipalKind::Service => facets.push(Facet::Service(self.arn.clone())),
            PrincipalKind::Federated => facets.push(Facet::Federated(self.arn.clone())),
            PrincipalKind::Anonymous => facets.push(Facet::Anonymous),
            PrincipalKind::Root => {
                if let Some(account) = &self.account {
                    facets.push(Facet::Account(account.clone()));
                }
            }
            PrincipalKind::User | PrincipalKind::Role | PrincipalKind::AssumedRole | PrincipalKind::FederatedUser => {
                if let Some(account) = &self.account {
                    facets.push(Facet::Account(account.clone()));
                }
                if let Some(role) = self.role_arn.as_ref().filter(|_| self.kind == PrincipalKind::AssumedRole) {
                    facets.push(Facet::Arn(role.clone()));
                }
                facets.push(Facet::Arn(self.arn.clone()));
            }
        }
        facets
    }

    /// `aws:PrincipalArn`: for a role session, the role's ARN.
    fn principal_arn(&self) -> Option<String> {
        match self.kind {
            PrincipalKind::Service | PrincipalKind::Federated | PrincipalKind::Anonymous => None,
            PrincipalKind::AssumedRole => Some(self.role_arn.clone().unwrap_or_else(|| self.arn.clone())),
            _ => Some(self.arn.clone()),
        }
    }

    fn principal_type(&self) -> Option<&'static str> {
        match self.kind {
            PrincipalKind::Root => Some("Account"),
            PrincipalKind::User => Some("User"),
            PrincipalKind::Role | PrincipalKind::AssumedRole => Some("AssumedRole"),
            PrincipalKind::FederatedUser => Some("FederatedUser"),
            PrincipalKind::Anonymous => Some("Anonymous"),
            PrincipalKind::Service | PrincipalKind::Federated => None,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

/// Twelve ASCII digits.
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A request to authorize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub principal: Principal,
    /// `service:Operation`, e.g. `lambda:InvokeFunction`.
    pub action: String,
    /// The resource ARN (or `*` for actions without one).
    pub resource: String,
    /// The resource's owner; when `None`, read from the ARN's account field,
    /// and when the ARN has none, taken to be the principal's account.
    pub resource_account: Option<String>,
    /// The caller's clock, for `aws:CurrentTime` and `aws:EpochTime`.
    pub now_epoch_ms: i64,
    /// Condition keys, lower-cased (IAM matches keys without regard to case).
    context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(principal: Principal, action: &str, resource: &str, now_epoch_ms: i64) -> Request {
        Request {
            principal,
            action: action.to_string(),
            resource: resource.to_string(),
            resource_account: None,
            now_epoch_ms,
            context: BTreeMap::new(),
        }
    }

    /// An `sts:AssumeRole` request for the trust policy of `role_arn`.
    pub fn assume_role(principal: Principal, role_arn: &str, now_epoch_ms: i64) -> Request {
        Request::new(principal, "sts:AssumeRole", role_arn, now_epoch_ms)
    }

    /// Adds (or replaces) a condition key, e.g. `aws:SourceIp`, `aws:SecureTransport`,
    /// `aws:SourceArn`, `lambda:FunctionUrlAuthType`. An empty list is a present-but-empty set.
    pub fn with_context<I, S>(mut self, key: &str, values: I) -> Request
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set_context(key, values);
        self
    }

    pub fn set_context<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context.insert(key.to_lowercase(), values.into_iter().map(Into::into).collect());
    }

    pub fn with_resource_account(mut self, account: &str) -> Request {
        self.resource_account = Some(account.to_string());
        self
    }

    /// The keys the caller added (lower-cased).
    pub fn context(&self) -> &BTreeMap<String, Vec<String>> {
        &self.context
    }

    /// The values of a condition key: what the caller added, else what the
    /// principal and the clock imply (`aws:username`, `aws:userid`,
    /// `aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:PrincipalType`,
    /// `aws:PrincipalServiceName`, `aws:CurrentTime`, `aws:EpochTime`).
    pub fn context_values(&self, key: &str) -> Option<Vec<String>> {
        let key = key.to_lowercase();
        if let Some(values) = self.context.get(&key) {
            return Some(values.clone());
        }
        let p = &self.principal;
        let derived = match key.as_str() {
            "aws:username" => p.user_name.clone().filter(|_| p.kind == PrincipalKind::User),
            "aws:userid" => match p.kind {
                PrincipalKind::Root => p.user_id.clone().or_else(|| p.account.clone()),
                PrincipalKind::Anonymous => Some("anonymous".to_string()),
                _ => p.user_id.clone(),
            },
            "aws:principalarn" => p.principal_arn(),
            "aws:principalaccount" => p.account.clone(),
            "aws:principaltype" => p.principal_type().map(str::to_string),
            "aws:principalservicename" => Some(p.arn.clone()).filter(|_| p.kind == PrincipalKind::Service),
            "aws:currenttime" => Some(scalars::iso8601_seconds(self.now_epoch_ms)),
            "aws:epochtime" => Some(self.now_epoch_ms.div_euclid(1000).to_string()),
            _ => None,
        };
        derived.map(|v| vec![v])
    }

    /// A policy variable's value: only a key with exactly one value can fill one.
    pub(crate) fn variable(&self, key: &str) -> Option<String> {
        match self.context_values(key) {
            Some(mut values) if values.len() == 1 => values.pop(),
            _ => None,
        }
    }

    /// The account that owns the resource, for the cross-account rule.
    pub fn effective_resource_account(&self) -> Option<String> {
        if let Some(account) = &self.resource_account {
            return Some(account.clone());
        }
        let fields: Vec<&str> = self.resource.splitn(6, ':').collect();
        match fields.as_slice() {
            ["arn", _, _, _, account, _] if !account.is_empty() => Some(account.to_string()),
            _ => self.principal.account.clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn principals_from_arns() {
        let user = Principal::from_arn("arn:aws:iam::111122223333:user/division/alice").unwrap();
        assert_eq!(user.kind, PrincipalKind::User);
        assert_eq!(user.user_name.as_deref(), Some("alice"));
        assert_eq!(user.account.as_deref(), Some("111122223333"));
        let session = Principal::from_arn("arn:aws:sts::111122223333:assumed-role/deploy/ci-run").unwrap();
        assert_eq!(session.kind, PrincipalKind::AssumedRole);
        assert_eq!(session.role_arn.as_deref(), Some("arn:aws:iam::111122223333:role/deploy"));
        assert_eq!(Principal::from_arn("arn:aws:iam::111122223333:root").unwrap().kind, PrincipalKind::Root);
        assert_eq!(Principal::from_arn("arn:aws:iam::111122223333:role/a/b").unwrap().kind, PrincipalKind::Role);
        for bad in [
            "",
            "arn:aws:iam::1:user/a",
            "arn:aws:iam:us-east-1:111122223333:user/a",
            "arn:aws:s3:::bucket",
            "arn:aws:sts::111122223333:assumed-role/only",
            "arn:aws:iam::111122223333:user/",
            "arn:aws:iam::111122223333:group/g",
        ] {
            assert_eq!(Principal::from_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn derived_context_keys() {
        let session = Principal::from_arn("arn:aws:sts::111122223333:assumed-role/deploy/ci")
            .unwrap()
            .with_role_arn("arn:aws:iam::111122223333:role/team/deploy")
            .with_user_id("AROAEXAMPLE:ci");
        let req = Request::new(session, "lambda:InvokeFunction", "*", 1_586_545_592_563);
        let one = |k: &str| req.context_values(k).map(|mut v| v.remove(0));
        assert_eq!(one("aws:PrincipalArn").as_deref(), Some("arn:aws:iam::111122223333:role/team/deploy"));
        assert_eq!(one("AWS:PRINCIPALACCOUNT").as_deref(), Some("111122223333"));
        assert_eq!(one("aws:PrincipalType").as_deref(), Some("AssumedRole"));
        assert_eq!(one("aws:userid").as_deref(), Some("AROAEXAMPLE:ci"));
        assert_eq!(one("aws:username"), None);
        assert_eq!(one("aws:CurrentTime").as_deref(), Some("2020-04-10T19:06:32Z"));
        assert_eq!(one("aws:EpochTime").as_deref(), Some("1586545592"));
        // The caller's values win over derived ones.
        let req = req.with_context("aws:EpochTime", ["5"]);
        assert_eq!(req.context_values("aws:epochtime"), Some(vec!["5".to_string()]));
    }

    #[test]
    fn resource_account() {
        let alice = Principal::from_arn("arn:aws:iam::111122223333:user/alice").unwrap();
        let req =
            Request::new(alice.clone(), "lambda:GetFunction", "arn:aws:lambda:us-east-1:444455556666:function:f", 0);
        assert_eq!(req.effective_resource_account().as_deref(), Some("444455556666"));
        let req = Request::new(alice.clone(), "s3:GetObject", "arn:aws:s3:::bucket/key", 0);
        assert_eq!(req.effective_resource_account().as_deref(), Some("111122223333"));
        let req = req.with_resource_account("444455556666");
        assert_eq!(req.effective_resource_account().as_deref(), Some("444455556666"));
    }
}
