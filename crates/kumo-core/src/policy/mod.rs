//! IAM policies: parsing, validation and evaluation, with explanations.
//!
//! Pure: the caller brings the policies, the request and the clock.
//!
//! ```
//! use kumo_core::policy::{evaluate, NamedPolicy, PolicyKind, Principal, Request};
//!
//! let policy = NamedPolicy::parse(
//!     "arn:aws:iam::111122223333:policy/invoke",
//!     r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}}"#,
//!     PolicyKind::Identity,
//! )
//! .unwrap();
//! let alice = Principal::from_arn("arn:aws:iam::111122223333:user/alice").unwrap();
//! let request = Request::new(alice, "lambda:InvokeFunction", "arn:aws:lambda:us-east-1:111122223333:function:f", 0);
//! assert!(evaluate(&request, &[policy], &[]).is_allowed());
//! ```
//!
//! Inside: `document` (the JSON grammar and IAM's refusals), `matcher`
//! (wildcards and `${...}` variables), `condition` (operators), `scalars`
//! (numbers, dates, CIDRs), `request` (principals and condition keys),
//! `evaluate` (the decision) and `explain` (messages).

mod condition;
mod document;
mod evaluate;
mod explain;
mod lint;
mod matcher;
mod request;
mod scalars;

pub use condition::{BaseOperator, Condition, ConditionFailure, Operator, SetQualifier};
pub use document::{
    Effect, MalformedPolicy, PatternList, Policy, PolicyKind, PrincipalEntry, PrincipalList, Statement, Version,
};
pub use evaluate::{
    AllowBasis, Decision, Mismatch, NamedPolicy, PolicySource, PolicyTrace, StatementRef, StatementTrace, Verdict,
    evaluate, may_assume,
};
pub use lint::broad_grants;
pub use matcher::VariableError;
pub use request::{Principal, PrincipalKind, Request};

/// Whether an action pattern (`lambda:Get*`) matches an action, as IAM compares them (ignoring case).
pub fn action_matches(pattern: &str, action: &str) -> bool {
    matcher::action_matches(pattern, action)
}

/// Whether a `Resource` pattern matches a resource ARN, as IAM compares them
/// (case-sensitive; wildcards stay inside their ARN field unless they end it).
/// No policy variables are substituted.
pub fn resource_matches(pattern: &str, resource: &str) -> bool {
    matcher::Glob::raw(pattern, matcher::Colons::ArnFields, false).is_match(resource)
}
