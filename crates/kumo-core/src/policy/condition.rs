//! The `Condition` element: operators, their `...IfExists` forms and the
//! `ForAnyValue:` / `ForAllValues:` set qualifiers.
//!
//! IAM's rules, as its documentation states them:
//! - operators in a block, and keys under one operator, are ANDed;
//! - several values for one key are ORed, except under a negated operator
//!   (`StringNotEquals`, `NotIpAddress`...), where they are NORed;
//! - a key missing from the request fails the condition, except for negated
//!   operators (true), `...IfExists` (true), `Null`, and `ForAllValues` (true);
//!   `ForAnyValue` with a missing key is false.

use std::fmt;

use super::matcher::{self, Colons, Glob, Piece, VariableError};
use super::request::Request;
use super::scalars::{self, Cidr};

/// The comparison an operator makes, without qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

impl BaseOperator {
    pub const ALL: [BaseOperator; 27] = [
        BaseOperator::StringEquals,
        BaseOperator::StringNotEquals,
        BaseOperator::StringEqualsIgnoreCase,
        BaseOperator::StringNotEqualsIgnoreCase,
        BaseOperator::StringLike,
        BaseOperator::StringNotLike,
        BaseOperator::NumericEquals,
        BaseOperator::NumericNotEquals,
        BaseOperator::NumericLessThan,
        BaseOperator::NumericLessThanEquals,
        BaseOperator::NumericGreaterThan,
        BaseOperator::NumericGreaterThanEquals,
        BaseOperator::DateEquals,
        BaseOperator::DateNotEquals,
        BaseOperator::DateLessThan,
        BaseOperator::DateLessThanEquals,
        BaseOperator::DateGreaterThan,
        BaseOperator::DateGreaterThanEquals,
        BaseOperator::Bool,
        BaseOperator::BinaryEquals,
        BaseOperator::IpAddress,
        BaseOperator::NotIpAddress,
        BaseOperator::ArnEquals,
        BaseOperator::ArnLike,
        BaseOperator::ArnNotEquals,
        BaseOperator::ArnNotLike,
        BaseOperator::Null,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BaseOperator::StringEquals => "StringEquals",
            BaseOperator::StringNotEquals => "StringNotEquals",
            BaseOperator::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            BaseOperator::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            BaseOperator::StringLike => "StringLike",
            BaseOperator::StringNotLike => "StringNotLike",
            BaseOperator::NumericEquals => "NumericEquals",
            BaseOperator::NumericNotEquals => "NumericNotEquals",
            BaseOperator::NumericLessThan => "NumericLessThan",
            BaseOperator::NumericLessThanEquals => "NumericLessThanEquals",
            BaseOperator::NumericGreaterThan => "NumericGreaterThan",
            BaseOperator::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            BaseOperator::DateEquals => "DateEquals",
            BaseOperator::DateNotEquals => "DateNotEquals",
            BaseOperator::DateLessThan => "DateLessThan",
            BaseOperator::DateLessThanEquals => "DateLessThanEquals",
            BaseOperator::DateGreaterThan => "DateGreaterThan",
            BaseOperator::DateGreaterThanEquals => "DateGreaterThanEquals",
            BaseOperator::Bool => "Bool",
            BaseOperator::BinaryEquals => "BinaryEquals",
            BaseOperator::IpAddress => "IpAddress",
            BaseOperator::NotIpAddress => "NotIpAddress",
            BaseOperator::ArnEquals => "ArnEquals",
            BaseOperator::ArnLike => "ArnLike",
            BaseOperator::ArnNotEquals => "ArnNotEquals",
            BaseOperator::ArnNotLike => "ArnNotLike",
            BaseOperator::Null => "Null",
        }
    }

    /// The negated operators: true when none of the policy's values match.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            BaseOperator::StringNotEquals
                | BaseOperator::StringNotEqualsIgnoreCase
                | BaseOperator::StringNotLike
                | BaseOperator::NumericNotEquals
                | BaseOperator::DateNotEquals
                | BaseOperator::NotIpAddress
                | BaseOperator::ArnNotEquals
                | BaseOperator::ArnNotLike
        )
    }

    /// The operator a negated one negates (itself for the others).
    fn positive(self) -> BaseOperator {
        match self {
            BaseOperator::StringNotEquals => BaseOperator::StringEquals,
            BaseOperator::StringNotEqualsIgnoreCase => BaseOperator::StringEqualsIgnoreCase,
            BaseOperator::StringNotLike => BaseOperator::StringLike,
            BaseOperator::NumericNotEquals => BaseOperator::NumericEquals,
            BaseOperator::DateNotEquals => BaseOperator::DateEquals,
            BaseOperator::NotIpAddress => BaseOperator::IpAddress,
            BaseOperator::ArnNotEquals => BaseOperator::ArnEquals,
            BaseOperator::ArnNotLike => BaseOperator::ArnLike,
            other => other,
        }
    }

    /// IAM substitutes policy variables in string, Boolean and ARN values only.
    fn takes_variables(self) -> bool {
        matches!(
            self.positive(),
            BaseOperator::StringEquals
                | BaseOperator::StringEqualsIgnoreCase
                | BaseOperator::StringLike
                | BaseOperator::Bool
                | BaseOperator::ArnEquals
                | BaseOperator::ArnLike
        )
    }
}

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// A condition operator as written in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operator {
    pub set: Option<SetQualifier>,
    pub base: BaseOperator,
    pub if_exists: bool,
}

impl Operator {
    /// Parses `[ForAnyValue:|ForAllValues:]Base[IfExists]`; `None` for anything
    /// else, including `NullIfExists`, which IAM does not define.
    pub fn parse(name: &str) -> Option<Operator> {
        let lower = name.to_ascii_lowercase();
        let (set, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, lower.as_str())
        };
        let find = |s: &str| BaseOperator::ALL.into_iter().find(|op| op.name().eq_ignore_ascii_case(s));
        // `IfExists` is tried last so that no base name ending in it is cut.
        if let Some(base) = find(rest) {
            return Some(Operator { set, base, if_exists: false });
        }
        let base = find(rest.strip_suffix("ifexists")?)?;
        (base != BaseOperator::Null).then_some(Operator { set, base, if_exists: true })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

/// One operator/key pair of a `Condition` block with the policy's values for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    /// The key as the policy spells it (matching ignores case).
    pub key: String,
    pub values: Vec<String>,
}

/// Why a condition did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionFailure {
    /// The request carries no value for the key.
    KeyMissing,
    /// `Null: true` wanted the key absent, and it is present.
    KeyPresent { actual: Vec<String> },
    /// The request's values did not satisfy the operator.
    NoMatch { actual: Vec<String> },
    /// A policy value names a variable the request cannot fill.
    Variable(VariableError),
}

impl fmt::Display for ConditionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionFailure::KeyMissing => f.write_str("the key is not in the request"),
            ConditionFailure::KeyPresent { actual } => write!(f, "the key is present ({})", quoted_list(actual)),
            ConditionFailure::NoMatch { actual } => write!(f, "the request has {}", quoted_list(actual)),
            ConditionFailure::Variable(e) => e.fmt(f),
        }
    }
}

fn quoted_list(values: &[String]) -> String {
    values.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ")
}

/// A policy value made ready for comparison.
struct Prepared {
    text: String,
    pieces: Vec<Piece>,
    glob: Option<Glob>,
}

impl Condition {
    /// Checks this condition against the request. `substitute` is false for
    /// policies older than version 2012-10-17, where `${...}` is plain text.
    pub(crate) fn check(&self, request: &Request, substitute: bool) -> Result<(), ConditionFailure> {
        let Operator { set, base, if_exists } = self.operator;
        let actual = request.context_values(&self.key).filter(|v| !v.is_empty());

        if base == BaseOperator::Null {
            let absent = actual.is_none();
            let wanted = self.values.iter().any(|v| scalars::parse_bool(v) == Some(absent));
            return match (wanted, actual) {
                (true, _) => Ok(()),
                (false, None) => Err(ConditionFailure::KeyMissing),
                (false, Some(actual)) => Err(ConditionFailure::KeyPresent { actual }),
            };
        }

        let Some(actual) = actual else {
            let holds = match set {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => if_exists,
                None => if_exists || base.is_negated(),
            };
            return if holds { Ok(()) } else { Err(ConditionFailure::KeyMissing) };
        };

        let prepared = self.prepare(request, substitute && base.takes_variables())?;
        let positive = base.positive();
        let any_policy_value = |v: &str| prepared.iter().any(|p| positive_match(positive, v, p));
        // One request value against the operator: OR over policy values, NOR when negated.
        let single = |v: &String| any_policy_value(v) != base.is_negated();
        let holds = match set {
            Some(SetQualifier::ForAnyValue) => actual.iter().any(single),
            Some(SetQualifier::ForAllValues) => actual.iter().all(single),
            // Without a qualifier a multi-valued key acts as one set: the
            // positive operator holds if any value matches, a negated one if none does.
            None => actual.iter().any(|v| any_policy_value(v)) != base.is_negated(),
        };
        if holds { Ok(()) } else { Err(ConditionFailure::NoMatch { actual }) }
    }

    fn prepare(&self, request: &Request, substitute: bool) -> Result<Vec<Prepared>, ConditionFailure> {
        let wildcards = matches!(self.operator.base.positive(), BaseOperator::StringLike);
        self.values
            .iter()
            .map(|value| {
                let pieces = if substitute {
                    matcher::substitute(value, &|key| request.variable(key)).map_err(ConditionFailure::Variable)?
                } else {
                    vec![Piece::Raw(value.clone())]
                };
                let text = matcher::pieces_text(&pieces);
                let glob = wildcards.then(|| Glob::new(&pieces, Colons::Free, false));
                Ok(Prepared { text, pieces, glob })
            })
            .collect()
    }
}

fn positive_match(op: BaseOperator, actual: &str, policy: &Prepared) -> bool {
    let numbers = || Some((scalars::parse_number(actual)?, scalars::parse_number(&policy.text)?));
    let dates = || Some((scalars::parse_date_ms(actual)?, scalars::parse_date_ms(&policy.text)?));
    match op {
        BaseOperator::StringEquals | BaseOperator::BinaryEquals => actual == policy.text,
        BaseOperator::StringEqualsIgnoreCase => actual.to_lowercase() == policy.text.to_lowercase(),
        BaseOperator::StringLike => policy.glob.as_ref().is_some_and(|g| g.is_match(actual)),
        BaseOperator::NumericEquals => numbers().is_some_and(|(a, p)| a == p),
        BaseOperator::NumericLessThan => numbers().is_some_and(|(a, p)| a < p),
        BaseOperator::NumericLessThanEquals => numbers().is_some_and(|(a, p)| a <= p),
        BaseOperator::NumericGreaterThan => numbers().is_some_and(|(a, p)| a > p),
        BaseOperator::NumericGreaterThanEquals => numbers().is_some_and(|(a, p)| a >= p),
        BaseOperator::DateEquals => dates().is_some_and(|(a, p)| a == p),
        BaseOperator::DateLessThan => dates().is_some_and(|(a, p)| a < p),
        BaseOperator::DateLessThanEquals => dates().is_some_and(|(a, p)| a <= p),
        BaseOperator::DateGreaterThan => dates().is_some_and(|(a, p)| a > p),
        BaseOperator::DateGreaterThanEquals => dates().is_some_and(|(a, p)| a >= p),
        BaseOperator::Bool => scalars::parse_bool(actual).is_some_and(|a| scalars::parse_bool(&policy.text) == Some(a)),
        BaseOperator::IpAddress => match (scalars::parse_ip(actual), Cidr::parse(&policy.text)) {
            (Some(ip), Some(net)) => net.contains(ip),
            _ => false,
        },
        // IAM documents ArnEquals and ArnLike alike: per field, wildcards allowed.
        BaseOperator::ArnEquals | BaseOperator::ArnLike => matcher::arn_like(&policy.pieces, actual),
        // Negated and Null operators never reach here: `positive()` maps the former.
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::request::{Principal, Request};

    fn request() -> Request {
        Request::new(
            Principal::from_arn("arn:aws:iam::111122223333:user/alice").unwrap(),
            "s3:GetObject",
            "arn:aws:s3:::bucket/key",
            1_700_000_000_000,
        )
    }

    fn check(op: &str, key: &str, values: &[&str], req: &Request) -> Result<(), ConditionFailure> {
        let cond = Condition {
            operator: Operator::parse(op).unwrap(),
            key: key.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        cond.check(req, true)
    }

    fn holds(op: &str, key: &str, values: &[&str], req: &Request) -> bool {
        check(op, key, values, req).is_ok()
    }

    #[test]
    fn operator_names() {
        assert_eq!(Operator::parse("StringEquals").unwrap().base, BaseOperator::StringEquals);
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(
            op,
            Operator { set: Some(SetQualifier::ForAllValues), base: BaseOperator::StringLike, if_exists: true }
        );
        assert_eq!(op.to_string(), "ForAllValues:StringLikeIfExists");
        assert!(Operator::parse("NullIfExists").is_none());
        assert!(Operator::parse("StringEqualz").is_none());
        assert!(Operator::parse("ForSomeValues:StringEquals").is_none());
        assert!(Operator::parse("").is_none());
        assert!(Operator::parse("IfExists").is_none());
        for op in BaseOperator::ALL {
            assert_eq!(Operator::parse(op.name()).unwrap().base, op);
        }
    }

    #[test]
    fn string_operators_and_negation_with_several_values() {
        let req = request().with_context("aws:PrincipalTag/role", ["audit"]);
        assert!(holds("StringEquals", "aws:PrincipalTag/role", &["audit", "security"], &req));
        assert!(!holds("StringEquals", "aws:PrincipalTag/role", &["Audit"], &req));
        assert!(holds("StringEqualsIgnoreCase", "AWS:principaltag/ROLE", &["AUDIT"], &req));
        // Negated with several values: NOR, so a match on any of them fails it.
        assert!(!holds("StringNotEquals", "aws:PrincipalTag/role", &["audit", "security"], &req));
        assert!(holds("StringNotEquals", "aws:PrincipalTag/role", &["dev", "security"], &req));
        assert!(holds("StringLike", "aws:PrincipalTag/role", &["au*"], &req));
        assert!(!holds("StringNotLike", "aws:PrincipalTag/role", &["a?dit"], &req));
        // StringEquals takes `*` literally.
        assert!(!holds("StringEquals", "aws:PrincipalTag/role", &["*"], &req));
    }

    #[test]
    fn missing_keys() {
        let req = request();
        assert_eq!(check("StringEquals", "aws:PrincipalTag/x", &["a"], &req), Err(ConditionFailure::KeyMissing));
        assert!(holds("StringNotEquals", "aws:PrincipalTag/x", &["a"], &req));
        assert!(holds("StringNotLike", "aws:PrincipalTag/x", &["a"], &req));
        assert!(holds("StringEqualsIfExists", "aws:PrincipalTag/x", &["a"], &req));
        assert!(holds("ForAllValues:StringEquals", "aws:TagKeys", &["a"], &req));
        assert!(!holds("ForAnyValue:StringEquals", "aws:TagKeys", &["a"], &req));
        assert!(!holds("ForAnyValue:StringNotEquals", "aws:TagKeys", &["a"], &req));
        assert!(holds("ForAnyValue:StringEqualsIfExists", "aws:TagKeys", &["a"], &req));
        assert!(holds("Null", "aws:TagKeys", &["true"], &req));
        assert!(!holds("Null", "aws:TagKeys", &["false"], &req));
        // An empty set counts as missing.
        let req = request().with_context("aws:TagKeys", Vec::<String>::new());
        assert!(holds("ForAllValues:StringEquals", "aws:TagKeys", &["a"], &req));
        assert!(holds("Null", "aws:TagKeys", &["true"], &req));
    }

    #[test]
    fn set_qualifiers() {
        let req = request().with_context("aws:TagKeys", ["key1:legal", "key1:hr"]);
        assert!(holds("ForAllValues:StringLike", "aws:TagKeys", &["key1*"], &req));
        assert!(!holds("ForAllValues:StringNotLike", "aws:TagKeys", &["key1*"], &req));
        let mixed = request().with_context("aws:TagKeys", ["key1:legal", "key2:audit"]);
        assert!(!holds("ForAllValues:StringLike", "aws:TagKeys", &["key1*"], &mixed));
        assert!(holds("ForAnyValue:StringLike", "aws:TagKeys", &["key2*"], &mixed));
        assert!(holds("ForAnyValue:StringNotLike", "aws:TagKeys", &["key1*"], &mixed));
        assert!(!holds("ForAnyValue:StringNotLike", "aws:TagKeys", &["key1*"], &req));
        assert!(holds("ForAllValues:StringEquals", "aws:TagKeys", &["key1:legal", "key1:hr", "x"], &req));
    }

    #[test]
    fn numbers_dates_bools_ips_arns() {
        let req = request()
            .with_context("s3:max-keys", ["10"])
            .with_context("aws:SecureTransport", ["true"])
            .with_context("aws:SourceIp", ["203.0.113.7"])
            .with_context("aws:SourceArn", ["arn:aws:s3:::my-bucket"]);
        assert!(holds("NumericLessThanEquals", "s3:max-keys", &["10"], &req));
        assert!(!holds("NumericLessThan", "s3:max-keys", &["10"], &req));
        assert!(holds("NumericGreaterThan", "s3:max-keys", &["9.5"], &req));
        assert!(holds("NumericNotEquals", "s3:max-keys", &["11", "12"], &req));
        assert!(!holds("NumericEquals", "s3:max-keys", &["ten"], &req));
        // aws:CurrentTime derives from the request's clock (2023-11-14T22:13:20Z).
        assert!(holds("DateGreaterThan", "aws:CurrentTime", &["2023-01-01T00:00:00Z"], &req));
        assert!(holds("DateLessThan", "aws:CurrentTime", &["2024-01-01"], &req));
        assert!(holds("DateLessThan", "aws:EpochTime", &["1700000001"], &req));
        assert!(holds("DateEquals", "aws:EpochTime", &["2023-11-14T22:13:20Z"], &req));
        assert!(holds("Bool", "aws:SecureTransport", &["TRUE"], &req));
        assert!(!holds("Bool", "aws:SecureTransport", &["false"], &req));
        assert!(holds("IpAddress", "aws:SourceIp", &["203.0.113.0/24"], &req));
        assert!(!holds("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8", "203.0.113.0/24"], &req));
        assert!(holds("ArnLike", "aws:SourceArn", &["arn:aws:s3:::my-*"], &req));
        assert!(holds("ArnEquals", "aws:SourceArn", &["arn:aws:s3:::my-bucket"], &req));
        assert!(holds("ArnNotEquals", "aws:SourceArn", &["arn:aws:s3:::other"], &req));
        assert!(!holds("ArnNotLike", "aws:SourceArn", &["arn:aws:s3:::*"], &req));
        assert!(holds("BinaryEquals", "aws:SourceArn", &["arn:aws:s3:::my-bucket"], &req));
    }

    #[test]
    fn variables_in_condition_values() {
        let req = request().with_context("s3:prefix", ["home/alice/"]);
        assert!(holds("StringLike", "s3:prefix", &["home/${aws:username}/*"], &req));
        assert!(!holds("StringLike", "s3:prefix", &["home/${aws:username}x/*"], &req));
        assert!(matches!(
            check("StringLike", "s3:prefix", &["home/${aws:nothing}/*"], &req),
            Err(ConditionFailure::Variable(VariableError::Unresolved(_)))
        ));
        // Numeric values take no variables: the text stays and does not parse.
        let req = request().with_context("s3:max-keys", ["10"]);
        assert!(!holds("NumericEquals", "s3:max-keys", &["${aws:username}"], &req));
    }
}
