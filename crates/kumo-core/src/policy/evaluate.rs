//! Policy evaluation: which statements apply to a request, and the decision
//! IAM's logic draws from them.
//!
//! Order (one account, or cross-account; no SCPs, boundaries or session policies):
//! 1. any applicable `Deny` in any policy: explicit deny;
//! 2. principals without an account (services, anonymous callers) need an
//!    `Allow` in a resource-based policy;
//! 3. the root user of the resource's account needs no `Allow`;
//! 4. same account: an `Allow` in an identity-based *or* a resource-based policy;
//! 5. cross-account: an `Allow` in both (a foreign root user has the identity half);
//! 6. otherwise implicit deny.

use std::fmt;

use super::condition::{Condition, ConditionFailure};
use super::document::{Effect, PatternList, Policy, PolicyKind, PrincipalEntry, PrincipalList, Statement};
use super::matcher::{self, Colons, Glob, Piece, VariableError};
use super::request::{Facet, PrincipalKind, Request};

/// A policy with the name it is reported under (its ARN, or "inline policy X of role Y").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPolicy {
    pub label: String,
    pub policy: Policy,
}

impl NamedPolicy {
    pub fn new(label: impl Into<String>, policy: Policy) -> NamedPolicy {
        NamedPolicy { label: label.into(), policy }
    }

    /// Parses `json` as a policy of `kind` and names it.
    pub fn parse(
        label: impl Into<String>,
        json: &str,
        kind: PolicyKind,
    ) -> Result<NamedPolicy, super::MalformedPolicy> {
        Ok(NamedPolicy::new(label, Policy::parse(json, kind)?))
    }

    /// Identity-based or resource-based (trust policies are resource-based: the role is the resource).
    pub fn source(&self) -> PolicySource {
        match self.policy.kind {
            PolicyKind::Identity => PolicySource::IdentityBased,
            PolicyKind::Resource | PolicyKind::Trust => PolicySource::ResourceBased,
        }
    }
}

/// Which side of IAM's evaluation a policy stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicySource {
    IdentityBased,
    ResourceBased,
}

impl PolicySource {
    /// `identity-based` / `resource-based`, as AWS's messages spell them.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicySource::IdentityBased => "identity-based",
            PolicySource::ResourceBased => "resource-based",
        }
    }
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a statement does not apply to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The action is not in `Action` (or is in `NotAction`).
    Action { negated: bool },
    /// The resource is not in `Resource` (or is in `NotResource`).
    Resource { negated: bool },
    /// A `Resource` pattern names a variable the request cannot fill.
    ResourceVariable(VariableError),
    /// The principal is not named in `Principal` (or is fully covered by `NotPrincipal`).
    Principal { negated: bool },
    /// A resource-based policy's statement without `Principal`/`NotPrincipal` grants nobody.
    NoPrincipal,
    /// A condition did not hold.
    Condition { operator: String, key: String, failure: ConditionFailure },
}

/// How one statement fared against the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTrace {
    /// Position in the policy, from 0.
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// Every reason it does not apply; empty when it applies.
    pub mismatches: Vec<Mismatch>,
}

impl StatementTrace {
    pub fn applies(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// How one policy fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTrace {
    pub label: String,
    pub source: PolicySource,
    pub statements: Vec<StatementTrace>,
}

/// A statement by position: `decision.policies[policy].statements[statement]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatementRef {
    pub policy: usize,
    pub statement: usize,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    /// A `Deny` applied; identity-based if any identity-based one did.
    ExplicitDeny(PolicySource),
    /// No required `Allow`; names the kind of policy that was missing one.
    ImplicitDeny(PolicySource),
}

/// Why the request was allowed (when it was).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowBasis {
    /// Allow statements decided (see `decided_by`).
    Statements,
    /// The root user of the resource's own account.
    Root,
}

/// A decision with its full explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// Set when the verdict is `Allow`.
    pub allow_basis: Option<AllowBasis>,
    /// The statements that decided: the applicable denies for an explicit
    /// deny, the applicable allows for an allow, none for an implicit deny.
    pub decided_by: Vec<StatementRef>,
    /// Every statement of every policy, identity-based policies first.
    pub policies: Vec<PolicyTrace>,
    /// The principal's account differs from the resource's.
    pub cross_account: bool,
    pub principal_arn: String,
    pub principal_account: Option<String>,
    pub resource_account: Option<String>,
    pub action: String,
    pub resource: String,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The trace of a referenced statement.
    pub fn statement(&self, r: StatementRef) -> Option<(&PolicyTrace, &StatementTrace)> {
        let policy = self.policies.get(r.policy)?;
        Some((policy, policy.statements.get(r.statement)?))
    }
}

/// Evaluates `request` against the principal's identity-based policies and the
/// resource's resource-based policies.
pub fn evaluate(request: &Request, identity_policies: &[NamedPolicy], resource_policies: &[NamedPolicy]) -> Decision {
    let mut policies = Vec::with_capacity(identity_policies.len() + resource_policies.len());
    for p in identity_policies {
        policies.push(trace_policy(p, PolicySource::IdentityBased, request));
    }
    for p in resource_policies {
        policies.push(trace_policy(p, PolicySource::ResourceBased, request));
    }

    let principal = &request.principal;
    let resource_account = request.effective_resource_account();
    let cross_account = match (&principal.account, &resource_account) {
        (Some(p), Some(r)) => p != r,
        _ => false,
    };
    let applying = |source: Option<PolicySource>, effect: Effect| -> Vec<StatementRef> {
        let mut refs = Vec::new();
        for (pi, p) in policies.iter().enumerate().filter(|(_, p)| source.is_none_or(|s| p.source == s)) {
            for (si, s) in p.statements.iter().enumerate() {
                if s.effect == effect && s.applies() {
                    refs.push(StatementRef { policy: pi, statement: si });
                }
            }
        }
        refs
    };

    let denies = applying(None, Effect::Deny);
    let identity_allows = applying(Some(PolicySource::IdentityBased), Effect::Allow);
    let resource_allows = applying(Some(PolicySource::ResourceBased), Effect::Allow);
    let is_root = principal.kind == PrincipalKind::Root;

    let (verdict, allow_basis, decided_by) = if !denies.is_empty() {
        let source =
            if denies.iter().any(|r| policies.get(r.policy).is_some_and(|p| p.source == PolicySource::IdentityBased)) {
                PolicySource::IdentityBased
            } else {
                PolicySource::ResourceBased
            };
        (Verdict::ExplicitDeny(source), None, denies)
    } else if principal.account.is_none() {
        // Services and anonymous callers have no identity-based policies to grant them anything.
        if resource_allows.is_empty() {
            (Verdict::ImplicitDeny(PolicySource::ResourceBased), None, Vec::new())
        } else {
            (Verdict::Allow, Some(AllowBasis::Statements), resource_allows)
        }
    } else if is_root && !cross_account {
        (Verdict::Allow, Some(AllowBasis::Root), Vec::new())
    } else {
        let identity_ok = is_root || !identity_allows.is_empty();
        let resource_ok = !resource_allows.is_empty();
        let allowed = if cross_account { identity_ok && resource_ok } else { identity_ok || resource_ok };
        if allowed {
            let mut decided = identity_allows;
            decided.extend(resource_allows);
            (Verdict::Allow, Some(AllowBasis::Statements), decided)
        } else if !identity_ok {
            (Verdict::ImplicitDeny(PolicySource::IdentityBased), None, Vec::new())
        } else {
            (Verdict::ImplicitDeny(PolicySource::ResourceBased), None, Vec::new())
        }
    };

    Decision {
        verdict,
        allow_basis,
        decided_by,
        policies,
        cross_account,
        principal_arn: principal.arn.clone(),
        principal_account: principal.account.clone(),
        resource_account,
        action: request.action.clone(),
        resource: request.resource.clone(),
    }
}

/// Evaluates a role's trust policy alone: may `request.principal` perform
/// `request.action` (`sts:AssumeRole` and kin) on the role `request.resource`?
///
/// When the trust policy names a whole account rather than the principal
/// itself, AWS also wants the caller's identity-based policy to allow
/// `sts:AssumeRole` on the role; check that with [`evaluate`] on the caller's side.
pub fn may_assume(trust_policy: &NamedPolicy, request: &Request) -> Decision {
    let trace = trace_policy(trust_policy, PolicySource::ResourceBased, request);
    let pick = |effect: Effect| -> Vec<StatementRef> {
        trace
            .statements
            .iter()
            .enumerate()
            .filter(|(_, s)| s.effect == effect && s.applies())
            .map(|(si, _)| StatementRef { policy: 0, statement: si })
            .collect()
    };
    let (denies, allows) = (pick(Effect::Deny), pick(Effect::Allow));
    let (verdict, allow_basis, decided_by) = if !denies.is_empty() {
        (Verdict::ExplicitDeny(PolicySource::ResourceBased), None, denies)
    } else if !allows.is_empty() {
        (Verdict::Allow, Some(AllowBasis::Statements), allows)
    } else {
        (Verdict::ImplicitDeny(PolicySource::ResourceBased), None, Vec::new())
    };
    let resource_account = request.effective_resource_account();
    let cross_account = match (&request.principal.account, &resource_account) {
        (Some(p), Some(r)) => p != r,
        _ => false,
    };
    Decision {
        verdict,
        allow_basis,
        decided_by,
        policies: vec![trace],
        cross_account,
        principal_arn: request.principal.arn.clone(),
        principal_account: request.principal.account.clone(),
        resource_account,
        action: request.action.clone(),
        resource: request.resource.clone(),
    }
}

fn trace_policy(named: &NamedPolicy, source: PolicySource, request: &Request) -> PolicyTrace {
    let substitute = named.policy.substitutes_variables();
    let statements = named
        .policy
        .statements
        .iter()
        .enumerate()
        .map(|(index, st)| StatementTrace {
            index,
            sid: st.sid.clone(),
            effect: st.effect,
            mismatches: statement_mismatches(st, source, request, substitute),
        })
        .collect();
    PolicyTrace { label: named.label.clone(), source, statements }
}

/// Every reason `st` does not apply to `request` (all are collected, for explanations).
fn statement_mismatches(st: &Statement, source: PolicySource, request: &Request, substitute: bool) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    // A Principal element is honoured wherever the policy is passed; its
    // absence only matters on the resource side, where it grants nobody.
    match &st.principals {
        None if source == PolicySource::ResourceBased => mismatches.push(Mismatch::NoPrincipal),
        Some(list) if !principal_applies(list, request) => {
            mismatches.push(Mismatch::Principal { negated: list.negated })
        }
        _ => {}
    }
    if !action_applies(&st.actions, &request.action) {
        mismatches.push(Mismatch::Action { negated: st.actions.negated });
    }
    if let Some(resources) = &st.resources {
        match resource_applies(resources, request, substitute) {
            Ok(true) => {}
            Ok(false) => mismatches.push(Mismatch::Resource { negated: resources.negated }),
            Err(e) => mismatches.push(Mismatch::ResourceVariable(e)),
        }
    }
    for condition in &st.conditions {
        if let Err(failure) = condition.check(request, substitute) {
            mismatches.push(condition_mismatch(condition, failure));
        }
    }
    mismatches
}

fn condition_mismatch(condition: &Condition, failure: ConditionFailure) -> Mismatch {
    Mismatch::Condition { operator: condition.operator.to_string(), key: condition.key.clone(), failure }
}

fn action_applies(list: &PatternList, action: &str) -> bool {
    list.patterns.iter().any(|p| matcher::action_matches(p, action)) != list.negated
}

/// Whether the resource element admits the request's resource. A pattern
/// whose variable cannot be filled matches nothing; in `NotResource` it makes
/// the statement unusable, since what it excludes is unknown.
fn resource_applies(list: &PatternList, request: &Request, substitute: bool) -> Result<bool, VariableError> {
    let mut unresolved = None;
    let mut any_match = false;
    for pattern in &list.patterns {
        let pieces = if substitute {
            match matcher::substitute(pattern, &|key| request.variable(key)) {
                Ok(pieces) => pieces,
                Err(e) => {
                    unresolved.get_or_insert(e);
                    continue;
                }
            }
        } else {
            vec![Piece::Raw(pattern.clone())]
        };
        if Glob::new(&pieces, Colons::ArnFields, false).is_match(&request.resource) {
            any_match = true;
        }
    }
    match (list.negated, any_match, unresolved) {
        (false, true, _) => Ok(true),
        (_, _, Some(e)) => Err(e),
        (negated, any_match, None) => Ok(any_match != negated),
    }
}

fn entry_matches(entry: &PrincipalEntry, facet: &Facet) -> bool {
    match (entry, facet) {
        (PrincipalEntry::Everyone, _) => true,
        (PrincipalEntry::Account(a), Facet::Account(b)) => a == b,
        (PrincipalEntry::Arn(a), Facet::Arn(b)) => a == b,
        (PrincipalEntry::Service(a), Facet::Service(b)) => a.eq_ignore_ascii_case(b),
        (PrincipalEntry::Federated(a), Facet::Federated(b)) => a == b,
        _ => false,
    }
}

/// `Principal`: some identity of the principal is named. `NotPrincipal`: some
/// identity of it is not named (AWS checks the account, the role and the
/// session in turn, which is why its docs ask for all of them to be listed).
fn principal_applies(list: &PrincipalList, request: &Request) -> bool {
    let facets = request.principal.facets();
    let named = |f: &Facet| list.entries.iter().any(|e| entry_matches(e, f));
    if list.negated { facets.iter().any(|f| !named(f)) } else { facets.iter().any(named) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::request::Principal;

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const FUNCTION: &str = "arn:aws:lambda:us-east-1:111122223333:function:f";

    fn identity(label: &str, json: &str) -> NamedPolicy {
        NamedPolicy::parse(label, json, PolicyKind::Identity).unwrap()
    }

    fn resource(label: &str, json: &str) -> NamedPolicy {
        NamedPolicy::parse(label, json, PolicyKind::Resource).unwrap()
    }

    fn alice(action: &str, resource: &str) -> Request {
        Request::new(Principal::from_arn(ALICE).unwrap(), action, resource, 0)
    }

    #[test]
    fn default_is_implicit_deny() {
        let d = evaluate(&alice("lambda:InvokeFunction", FUNCTION), &[], &[]);
        assert_eq!(d.verdict, Verdict::ImplicitDeny(PolicySource::IdentityBased));
        assert!(d.decided_by.is_empty());
    }

    #[test]
    fn identity_allow_and_explicit_deny() {
        let allow = identity(
            "p",
            r#"{"Version":"2012-10-17","Statement":{"Sid":"A","Effect":"Allow","Action":"lambda:*","Resource":"*"}}"#,
        );
        let d = evaluate(&alice("lambda:InvokeFunction", FUNCTION), std::slice::from_ref(&allow), &[]);
        assert!(d.is_allowed());
        assert_eq!(d.decided_by, vec![StatementRef { policy: 0, statement: 0 }]);
        let deny = identity(
            "d",
            r#"{"Version":"2012-10-17","Statement":{"Sid":"D","Effect":"Deny","Action":"lambda:Invoke*","Resource":"*"}}"#,
        );
        let d = evaluate(&alice("lambda:InvokeFunction", FUNCTION), &[allow.clone(), deny], &[]);
        assert_eq!(d.verdict, Verdict::ExplicitDeny(PolicySource::IdentityBased));
        assert_eq!(d.decided_by, vec![StatementRef { policy: 1, statement: 0 }]);
    }

    #[test]
    fn resource_policy_alone_allows_in_the_same_account() {
        let rp = resource(
            "fn",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"lambda:InvokeFunction","Resource":"arn:aws:lambda:us-east-1:111122223333:function:f"}}"#,
        );
        assert!(evaluate(&alice("lambda:InvokeFunction", FUNCTION), &[], std::slice::from_ref(&rp)).is_allowed());
        let bob = Request::new(
            Principal::from_arn("arn:aws:iam::111122223333:user/bob").unwrap(),
            "lambda:InvokeFunction",
            FUNCTION,
            0,
        );
        // Passed on the identity side, its Principal still has to match.
        assert!(!evaluate(&bob, std::slice::from_ref(&rp), &[]).is_allowed());
        let d = evaluate(&bob, &[], &[rp]);
        assert_eq!(d.verdict, Verdict::ImplicitDeny(PolicySource::IdentityBased));
        assert_eq!(d.policies[0].statements[0].mismatches, vec![Mismatch::Principal { negated: false }]);
    }

    #[test]
    fn cross_account_needs_both_sides() {
        let caller = Principal::from_arn("arn:aws:iam::444455556666:user/carol").unwrap();
        let req = Request::new(caller, "lambda:InvokeFunction", FUNCTION, 0);
        let id =
            identity("carol", r#"{"Statement":{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}}"#);
        let rp = resource(
            "fn",
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"lambda:InvokeFunction","Resource":"*"}}"#,
        );
        let d = evaluate(&req, std::slice::from_ref(&id), &[]);
        assert!(d.cross_account);
        assert_eq!(d.verdict, Verdict::ImplicitDeny(PolicySource::ResourceBased));
        assert_eq!(
            evaluate(&req, &[], std::slice::from_ref(&rp)).verdict,
            Verdict::ImplicitDeny(PolicySource::IdentityBased)
        );
        let d = evaluate(&req, &[id], &[rp]);
        assert!(d.is_allowed());
        assert_eq!(d.decided_by.len(), 2);
    }

    #[test]
    fn root_is_allowed_in_its_account_but_not_past_a_deny() {
        let root = Request::new(Principal::root("111122223333"), "lambda:DeleteFunction", FUNCTION, 0);
        let d = evaluate(&root, &[], &[]);
        assert_eq!((d.verdict, d.allow_basis), (Verdict::Allow, Some(AllowBasis::Root)));
        let deny = resource("fn", r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"lambda:Delete*"}}"#);
        assert_eq!(evaluate(&root, &[], &[deny]).verdict, Verdict::ExplicitDeny(PolicySource::ResourceBased));
        let foreign = Request::new(Principal::root("444455556666"), "lambda:GetFunction", FUNCTION, 0);
        assert_eq!(evaluate(&foreign, &[], &[]).verdict, Verdict::ImplicitDeny(PolicySource::ResourceBased));
    }

    #[test]
    fn services_need_a_resource_policy() {
        let s3 = Request::new(Principal::service("s3.amazonaws.com"), "lambda:InvokeFunction", FUNCTION, 0)
            .with_context("aws:SourceArn", ["arn:aws:s3:::uploads"]);
        assert_eq!(evaluate(&s3, &[], &[]).verdict, Verdict::ImplicitDeny(PolicySource::ResourceBased));
        let rp = resource(
            "fn",
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::uploads"}}}}"#,
        );
        assert!(evaluate(&s3, &[], std::slice::from_ref(&rp)).is_allowed());
        let other = s3.clone().with_context("aws:SourceArn", ["arn:aws:s3:::elsewhere"]);
        let d = evaluate(&other, &[], &[rp]);
        assert!(
            matches!(&d.policies[0].statements[0].mismatches[..], [Mismatch::Condition { key, .. }] if key == "AWS:SourceArn")
        );
    }

    #[test]
    fn not_principal_checks_every_identity() {
        let session = Principal::from_arn("arn:aws:sts::111122223333:assumed-role/admin/jo").unwrap();
        let req = Request::new(session, "s3:GetObject", "arn:aws:s3:::b/k", 0);
        let deny = |listed: &str| {
            let json = format!(
                r#"{{"Statement":{{"Effect":"Deny","NotPrincipal":{{"AWS":[{listed}]}},"Action":"s3:*","Resource":"*"}}}}"#
            );
            evaluate(&req, &[], &[resource("b", &json)]).verdict
        };
        // Only the role listed: the account identity is not excepted, so the deny applies.
        assert_eq!(
            deny(r#""arn:aws:iam::111122223333:role/admin""#),
            Verdict::ExplicitDeny(PolicySource::ResourceBased)
        );
        assert_eq!(
            deny(
                r#""111122223333","arn:aws:iam::111122223333:role/admin","arn:aws:sts::111122223333:assumed-role/admin/jo""#
            ),
            Verdict::ImplicitDeny(PolicySource::IdentityBased)
        );
    }

    #[test]
    fn unresolved_variables_make_resources_fail() {
        let p = identity(
            "p",
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        );
        assert!(
            evaluate(&alice("s3:GetObject", "arn:aws:s3:::home/alice/x"), std::slice::from_ref(&p), &[]).is_allowed()
        );
        let role = Request::new(
            Principal::from_arn("arn:aws:iam::111122223333:role/r").unwrap(),
            "s3:GetObject",
            "arn:aws:s3:::home/alice/x",
            0,
        );
        let d = evaluate(&role, std::slice::from_ref(&p), &[]);
        assert!(matches!(
            d.policies[0].statements[0].mismatches[..],
            [Mismatch::ResourceVariable(VariableError::Unresolved(_))]
        ));
        // Version 2008-10-17 takes `${...}` literally.
        let old = identity(
            "old",
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::home/${aws:username}/*"}}"#,
        );
        assert!(
            !evaluate(&alice("s3:GetObject", "arn:aws:s3:::home/alice/x"), std::slice::from_ref(&old), &[])
                .is_allowed()
        );
        assert!(evaluate(&alice("s3:GetObject", "arn:aws:s3:::home/${aws:username}/x"), &[old], &[]).is_allowed());
    }

    #[test]
    fn trust_policies() {
        let trust = NamedPolicy::parse(
            "trust",
            r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}}"#,
            PolicyKind::Trust,
        )
        .unwrap();
        let role = "arn:aws:iam::111122223333:role/exec";
        assert!(
            may_assume(&trust, &Request::assume_role(Principal::service("lambda.amazonaws.com"), role, 0)).is_allowed()
        );
        let d = may_assume(&trust, &Request::assume_role(Principal::from_arn(ALICE).unwrap(), role, 0));
        assert_eq!(d.verdict, Verdict::ImplicitDeny(PolicySource::ResourceBased));
    }
}
