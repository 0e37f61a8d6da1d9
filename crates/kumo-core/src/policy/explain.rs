//! Words for a decision: AWS's `AccessDenied` message, and the longer account
//! `kumo iam explain` prints.

use std::fmt::Write as _;

use super::evaluate::{AllowBasis, Decision, Mismatch, PolicySource, StatementRef, StatementTrace, Verdict};

fn article(source: PolicySource) -> &'static str {
    match source {
        PolicySource::IdentityBased => "an",
        PolicySource::ResourceBased => "a",
    }
}

impl Decision {
    /// AWS's `AccessDenied` message for this decision; `None` when allowed.
    ///
    /// `User: <arn> is not authorized to perform: <action> on resource: <resource> because no identity-based policy allows the <action> action`,
    /// `... because no resource-based policy allows the <action> action`,
    /// `... with an explicit deny in an identity-based policy` / `... in a resource-based policy`.
    pub fn denial_message(&self, principal_arn: &str, action: &str, resource: &str) -> Option<String> {
        let head = format!("User: {principal_arn} is not authorized to perform: {action} on resource: {resource}");
        match self.verdict {
            Verdict::Allow => None,
            Verdict::ExplicitDeny(source) => {
                Some(format!("{head} with an explicit deny in {} {source} policy", article(source)))
            }
            Verdict::ImplicitDeny(source) => {
                Some(format!("{head} because no {source} policy allows the {action} action"))
            }
        }
    }

    /// [`Decision::denial_message`] for the request the decision was made on.
    pub fn message(&self) -> Option<String> {
        self.denial_message(&self.principal_arn, &self.action, &self.resource)
    }

    /// A multi-line account of the decision: the verdict, what decided it,
    /// and for every statement of every policy whether it applied and why not.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let verdict = match self.verdict {
            Verdict::Allow => "ALLOW".to_string(),
            Verdict::ExplicitDeny(source) => format!("DENY (explicit deny in {} {source} policy)", article(source)),
            Verdict::ImplicitDeny(source) => format!("DENY (implicit: no {source} policy allows the action)"),
        };
        let _ = writeln!(out, "Decision: {verdict}");
        let _ = writeln!(out, "Principal: {}", self.principal_arn);
        let _ = writeln!(out, "Action: {}", self.action);
        let _ = writeln!(out, "Resource: {}", self.resource);

        if self.cross_account {
            let _ = writeln!(
                out,
                "Cross-account: the principal's account {} is not the resource's account {}; an identity-based and a resource-based policy must both allow.",
                self.principal_account.as_deref().unwrap_or("?"),
                self.resource_account.as_deref().unwrap_or("?"),
            );
        }
        if self.principal_account.is_none() && !matches!(self.verdict, Verdict::ExplicitDeny(_)) {
            let _ = writeln!(out, "The principal belongs to no account: only a resource-based policy can allow it.");
        }
        match self.allow_basis {
            Some(AllowBasis::Root) => {
                let _ = writeln!(
                    out,
                    "Decided by: the root user of the resource's account, who needs no Allow (no Deny applied)."
                );
            }
            _ if self.decided_by.is_empty() => {
                let _ = writeln!(out, "Decided by: no statement (nothing allowed the request).");
            }
            _ => {
                let _ = writeln!(out, "Decided by:");
                for r in &self.decided_by {
                    if let Some((policy, st)) = self.statement(*r) {
                        let _ = writeln!(out, "  {} policy {:?}, {}", policy.source, policy.label, describe(st));
                    }
                }
            }
        }

        for (pi, policy) in self.policies.iter().enumerate() {
            let _ = writeln!(out);
            let _ = writeln!(out, "{} policy {:?}:", policy.source, policy.label);
            if policy.statements.is_empty() {
                let _ = writeln!(out, "  (no statements)");
            }
            for (si, st) in policy.statements.iter().enumerate() {
                let decisive = self.decided_by.contains(&StatementRef { policy: pi, statement: si });
                let status = match (st.applies(), decisive) {
                    (true, true) => "applies, decisive",
                    (true, false) => "applies",
                    (false, _) => "does not apply",
                };
                let _ = writeln!(out, "  {}: {status}", describe(st));
                for m in &st.mismatches {
                    let _ = writeln!(out, "    - {}", self.mismatch_text(m));
                }
            }
        }
        out
    }

    fn mismatch_text(&self, m: &Mismatch) -> String {
        match m {
            Mismatch::Action { negated: false } => format!("action {} is not matched by Action", self.action),
            Mismatch::Action { negated: true } => format!("action {} is excluded by NotAction", self.action),
            Mismatch::Resource { negated: false } => format!("resource {} is not matched by Resource", self.resource),
            Mismatch::Resource { negated: true } => format!("resource {} is excluded by NotResource", self.resource),
            Mismatch::ResourceVariable(e) => format!("Resource cannot be resolved: {e}"),
            Mismatch::Principal { negated: false } => {
                format!("principal {} is not named in Principal", self.principal_arn)
            }
            Mismatch::Principal { negated: true } => {
                format!(
                    "principal {} is excepted by NotPrincipal (every identity it has, account included, is listed)",
                    self.principal_arn
                )
            }
            Mismatch::NoPrincipal => "the statement names no Principal".to_string(),
            Mismatch::Condition { operator, key, failure } => {
                format!("condition {operator} on {key} failed: {failure}")
            }
        }
    }
}

fn describe(st: &StatementTrace) -> String {
    match &st.sid {
        Some(sid) if !sid.is_empty() => format!("statement {} (Sid {sid:?}, {})", st.index + 1, st.effect),
        _ => format!("statement {} ({})", st.index + 1, st.effect),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::policy::{NamedPolicy, PolicyKind, Principal, Request, evaluate};

    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const FUNCTION: &str = "arn:aws:lambda:eu-west-2:111122223333:function:f";

    fn request() -> Request {
        Request::new(Principal::from_arn(ALICE).unwrap(), "lambda:InvokeFunction", FUNCTION, 0)
    }

    #[test]
    fn aws_wording() {
        let d = evaluate(&request(), &[], &[]);
        assert_eq!(
            d.message().unwrap(),
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:eu-west-2:111122223333:function:f because no identity-based policy allows the lambda:InvokeFunction action"
        );
        let deny = NamedPolicy::parse(
            "d",
            r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let d = evaluate(&request(), &[deny], &[]);
        assert_eq!(
            d.denial_message(ALICE, "lambda:InvokeFunction", FUNCTION).unwrap(),
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: lambda:InvokeFunction on resource: arn:aws:lambda:eu-west-2:111122223333:function:f with an explicit deny in an identity-based policy"
        );
        let rdeny = NamedPolicy::parse(
            "r",
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"*"}}"#,
            PolicyKind::Resource,
        )
        .unwrap();
        assert!(
            evaluate(&request(), &[], &[rdeny])
                .message()
                .unwrap()
                .ends_with("with an explicit deny in a resource-based policy")
        );
        let allow = NamedPolicy::parse(
            "a",
            r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert_eq!(evaluate(&request(), &[allow], &[]).message(), None);
    }

    #[test]
    fn explanation_names_policies_sids_and_reasons() {
        let id = NamedPolicy::parse(
            "arn:aws:iam::111122223333:policy/dev",
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"ReadOnly","Effect":"Allow","Action":"lambda:Get*","Resource":"*"},
                {"Sid":"Office","Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}},
                {"Sid":"NoProd","Effect":"Deny","Action":"lambda:*","NotResource":"arn:aws:lambda:*:*:function:f"}]}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let d = evaluate(&request().with_context("aws:SourceIp", ["198.51.100.1"]), &[id], &[]);
        let text = d.explain();
        assert!(text.starts_with("Decision: DENY (implicit: no identity-based policy allows the action)\n"), "{text}");
        assert!(text.contains("identity-based policy \"arn:aws:iam::111122223333:policy/dev\":"), "{text}");
        assert!(text.contains("statement 1 (Sid \"ReadOnly\", Allow): does not apply\n    - action lambda:InvokeFunction is not matched by Action"), "{text}");
        assert!(
            text.contains("condition IpAddress on aws:SourceIp failed: the request has \"198.51.100.1\""),
            "{text}"
        );
        assert!(text.contains("statement 3 (Sid \"NoProd\", Deny): does not apply\n    - resource arn:aws:lambda:eu-west-2:111122223333:function:f is excluded by NotResource"), "{text}");

        let d = evaluate(
            &request().with_context("aws:SourceIp", ["203.0.113.1"]),
            &[NamedPolicy::parse(
                "p",
                r#"{"Statement":{"Sid":"Office","Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}}"#,
                PolicyKind::Identity,
            )
            .unwrap()],
            &[],
        );
        let text = d.explain();
        assert!(text.starts_with("Decision: ALLOW\n"), "{text}");
        assert!(
            text.contains("Decided by:\n  identity-based policy \"p\", statement 1 (Sid \"Office\", Allow)"),
            "{text}"
        );
        assert!(text.contains("statement 1 (Sid \"Office\", Allow): applies, decisive"), "{text}");
    }
}
