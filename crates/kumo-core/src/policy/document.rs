//! Policy documents: parsing and IAM's `MalformedPolicyDocument` rules.
//!
//! Messages are IAM's own where its wording is known: a client that greps
//! for "Policy statement must contain resources." should find it.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::condition::{Condition, Operator};
use super::request::is_account_id;

/// Where a policy is attached, which decides what it may and must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user or role: no `Principal`, `Resource` required.
    Identity,
    /// Attached to a resource (a function's policy): `Principal` required, `Resource` optional.
    Resource,
    /// A role's trust policy: `Principal` required, no `Resource`, no `NotPrincipal`.
    Trust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        })
    }
}

/// The policy language version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2008-10-17`: policy variables are plain text.
    V2008_10_17,
    /// `2012-10-17`: policy variables are substituted.
    V2012_10_17,
}

/// Why a document was refused. `Display` is IAM's message; [`MalformedPolicy::detail`]
/// says where, for logs and `kumo iam` output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MalformedPolicy {
    /// Not JSON, wrong shapes, unknown elements, unknown condition operators.
    #[error("Syntax errors in policy.")]
    Syntax { detail: String },
    /// An `Effect` other than exactly `Allow` or `Deny` (IAM's legacy parser is case-sensitive).
    #[error("The policy failed legacy parsing")]
    LegacyParsing { detail: String },
    #[error("Policy document should not specify a principal.")]
    PrincipalNotAllowed { statement: usize },
    #[error("Missing required field Principal")]
    MissingPrincipal { statement: usize },
    #[error("Has prohibited field {field}")]
    ProhibitedField { statement: usize, field: &'static str },
    #[error("Policy statement must contain actions.")]
    MissingActions { statement: usize },
    #[error("Policy statement must contain resources.")]
    MissingResources { statement: usize },
    #[error("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")]
    MissingVendor { value: String },
    #[error("Actions/Condition can contain only one colon.")]
    TooManyColons { value: String },
    #[error("Vendor {vendor} is not valid")]
    InvalidVendor { vendor: String },
    #[error("Resource {resource} must be in ARN format or \"*\".")]
    ResourceNotArn { resource: String },
    #[error("Resource vendor must be fully qualified and cannot contain regexes.")]
    ResourceVendorWildcard { resource: String },
    #[error("Invalid principal in policy: {principal}")]
    InvalidPrincipal { principal: String },
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid { sid: String },
    #[error(
        "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
    )]
    SidNotAlphanumeric { sid: String },
}

impl MalformedPolicy {
    /// The AWS error code clients expect.
    pub fn code(&self) -> &'static str {
        "MalformedPolicyDocument"
    }

    /// Where the problem is, in words.
    pub fn detail(&self) -> String {
        match self {
            MalformedPolicy::Syntax { detail } | MalformedPolicy::LegacyParsing { detail } => detail.clone(),
            MalformedPolicy::PrincipalNotAllowed { statement } => {
                format!("statement {} has a Principal, which identity-based policies may not", statement + 1)
            }
            MalformedPolicy::MissingPrincipal { statement } => {
                format!("statement {} has neither Principal nor NotPrincipal", statement + 1)
            }
            MalformedPolicy::ProhibitedField { statement, field } => {
                format!("statement {} has {field}, which trust policies may not", statement + 1)
            }
            MalformedPolicy::MissingActions { statement } => {
                format!("statement {} has no Action or NotAction", statement + 1)
            }
            MalformedPolicy::MissingResources { statement } => {
                format!("statement {} has no Resource or NotResource", statement + 1)
            }
            MalformedPolicy::MissingVendor { value } | MalformedPolicy::TooManyColons { value } => {
                format!("{value:?} is not of the form service:name")
            }
            MalformedPolicy::InvalidVendor { vendor } => format!("{vendor:?} is not a service prefix"),
            MalformedPolicy::ResourceNotArn { resource } | MalformedPolicy::ResourceVendorWildcard { resource } => {
                format!("resource {resource:?}")
            }
            MalformedPolicy::InvalidPrincipal { principal } => format!("principal {principal}"),
            MalformedPolicy::DuplicateSid { sid } | MalformedPolicy::SidNotAlphanumeric { sid } => {
                format!("Sid {sid:?}")
            }
        }
    }
}

fn syntax(detail: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy::Syntax { detail: detail.into() }
}

/// `Action`/`NotAction` and `Resource`/`NotResource`: a list of patterns, or its complement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternList {
    /// True for `NotAction` / `NotResource`.
    pub negated: bool,
    pub patterns: Vec<String>,
}

/// One entry of a `Principal` element.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalEntry {
    /// `"*"` or `{"AWS": "*"}`: everyone, anonymous callers included.
    Everyone,
    /// `{"AWS": "123456789012"}` or `{"AWS": "arn:aws:iam::123456789012:root"}`: any principal of the account.
    Account(String),
    /// A user, role, role-session or federated-user ARN.
    Arn(String),
    /// `{"Service": "lambda.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": "cognito-identity.amazonaws.com"}`.
    Federated(String),
    /// `{"CanonicalUser": "..."}`: accepted, never matches a Kumo principal.
    CanonicalUser(String),
}

impl fmt::Display for PrincipalEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrincipalEntry::Everyone => f.write_str("*"),
            PrincipalEntry::Account(a) => write!(f, "AWS:{a}"),
            PrincipalEntry::Arn(a) => write!(f, "AWS:{a}"),
            PrincipalEntry::Service(s) => write!(f, "Service:{s}"),
            PrincipalEntry::Federated(s) => write!(f, "Federated:{s}"),
            PrincipalEntry::CanonicalUser(s) => write!(f, "CanonicalUser:{s}"),
        }
    }
}

/// `Principal` / `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalList {
    pub negated: bool,
    pub entries: Vec<PrincipalEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: PatternList,
    /// `None` when the element is absent (resource and trust policies).
    pub resources: Option<PatternList>,
    /// `None` in identity-based policies.
    pub principals: Option<PrincipalList>,
    /// Every operator/key pair, ANDed.
    pub conditions: Vec<Condition>,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub version: Option<Version>,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses and validates a document as IAM would for a policy of `kind`.
    pub fn parse(json: &str, kind: PolicyKind) -> Result<Policy, MalformedPolicy> {
        let value: Value = serde_json::from_str(json).map_err(|e| syntax(format!("not JSON: {e}")))?;
        let Value::Object(top) = value else {
            return Err(syntax("the document is not a JSON object"));
        };
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(syntax(format!("unknown top-level field {key}")));
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if v == "2012-10-17" => Some(Version::V2012_10_17),
            Some(Value::String(v)) if v == "2008-10-17" => Some(Version::V2008_10_17),
            Some(other) => return Err(syntax(format!("unsupported Version {other}"))),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(id)) => Some(id.clone()),
            Some(other) => return Err(syntax(format!("Id must be a string, not {other}"))),
        };
        let raw_statements: Vec<&Map<String, Value>> = match top.get("Statement") {
            Some(Value::Object(one)) => vec![one],
            Some(Value::Array(many)) if !many.is_empty() => many
                .iter()
                .enumerate()
                .map(|(i, s)| s.as_object().ok_or_else(|| syntax(format!("statement {} is not an object", i + 1))))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(syntax("Statement must be an object or a non-empty array")),
            None => return Err(syntax("missing Statement")),
        };

        // Shape first, then IAM's semantic checks in the order it reports them.
        let shapes = raw_statements
            .iter()
            .enumerate()
            .map(|(i, raw)| StatementShape::read(i, raw))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, shape) in shapes.iter().enumerate() {
            if shape.effect != "Allow" && shape.effect != "Deny" {
                return Err(MalformedPolicy::LegacyParsing {
                    detail: format!("statement {} has Effect {:?}", i + 1, shape.effect),
                });
            }
        }
        check_sids(&shapes, kind)?;
        let statements =
            shapes.into_iter().enumerate().map(|(i, shape)| shape.validate(i, kind)).collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { kind, version, id, statements })
    }

    /// Whether `${...}` in this policy is substituted (version 2012-10-17 only).
    pub fn substitutes_variables(&self) -> bool {
        self.version == Some(Version::V2012_10_17)
    }
}

/// A statement whose elements have the right JSON types, not yet validated.
struct StatementShape {
    sid: Option<String>,
    effect: String,
    action: Option<(bool, Vec<String>)>,
    resource: Option<(bool, Vec<String>)>,
    principal: Option<(bool, Value)>,
    condition: Option<Map<String, Value>>,
}

impl StatementShape {
    fn read(index: usize, raw: &Map<String, Value>) -> Result<StatementShape, MalformedPolicy> {
        let n = index + 1;
        for key in raw.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Principal"
                    | "NotPrincipal"
                    | "Condition"
            ) {
                return Err(syntax(format!("unknown field {key} in statement {n}")));
            }
        }
        let sid = match raw.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(syntax(format!("Sid of statement {n} is not a string"))),
        };
        let effect = match raw.get("Effect") {
            Some(Value::String(e)) if e.eq_ignore_ascii_case("allow") || e.eq_ignore_ascii_case("deny") => e.clone(),
            Some(other) => return Err(syntax(format!("statement {n} has Effect {other}"))),
            None => return Err(syntax(format!("statement {n} has no Effect"))),
        };
        let action = either(raw, n, "Action", "NotAction")?
            .map(|(negated, name, v)| Ok::<_, MalformedPolicy>((negated, strings(v, n, name)?)))
            .transpose()?;
        let resource = either(raw, n, "Resource", "NotResource")?
            .map(|(negated, name, v)| Ok::<_, MalformedPolicy>((negated, strings(v, n, name)?)))
            .transpose()?;
        let principal = either(raw, n, "Principal", "NotPrincipal")?.map(|(negated, _, v)| (negated, v.clone()));
        let condition = match raw.get("Condition") {
            None => None,
            Some(Value::Object(c)) => Some(c.clone()),
            Some(_) => return Err(syntax(format!("Condition of statement {n} is not an object"))),
        };
        Ok(StatementShape { sid, effect, action, resource, principal, condition })
    }

    fn validate(self, index: usize, kind: PolicyKind) -> Result<Statement, MalformedPolicy> {
        let n = index + 1;
        let effect = if self.effect == "Allow" { Effect::Allow } else { Effect::Deny };

        let principals = match (kind, self.principal) {
            (PolicyKind::Identity, Some(_)) => return Err(MalformedPolicy::PrincipalNotAllowed { statement: index }),
            (PolicyKind::Identity, None) => None,
            (_, None) => return Err(MalformedPolicy::MissingPrincipal { statement: index }),
            (_, Some((negated, value))) => {
                if negated && kind == PolicyKind::Trust {
                    return Err(syntax(format!("statement {n}: trust policies do not take NotPrincipal")));
                }
                if negated && effect == Effect::Allow {
                    return Err(syntax(format!("statement {n}: NotPrincipal must be used with \"Effect\":\"Deny\"")));
                }
                Some(PrincipalList { negated, entries: principal_entries(&value)? })
            }
        };

        let Some((negated, patterns)) = self.action.filter(|(_, p)| !p.is_empty()) else {
            return Err(MalformedPolicy::MissingActions { statement: index });
        };
        let actions = PatternList { negated, patterns };

        let resources = match (kind, self.resource) {
            (PolicyKind::Trust, Some((negated, _))) => {
                let field = if negated { "NotResource" } else { "Resource" };
                return Err(MalformedPolicy::ProhibitedField { statement: index, field });
            }
            (PolicyKind::Identity, None) => return Err(MalformedPolicy::MissingResources { statement: index }),
            (_, None) => None,
            (_, Some((_, patterns))) if patterns.is_empty() => {
                return Err(MalformedPolicy::MissingResources { statement: index });
            }
            (_, Some((negated, patterns))) => {
                for resource in &patterns {
                    check_resource(resource)?;
                }
                Some(PatternList { negated, patterns })
            }
        };

        for action in &actions.patterns {
            check_vendor_prefixed(action)?;
        }

        let mut conditions = Vec::new();
        for (name, block) in self.condition.iter().flatten() {
            let operator = Operator::parse(name)
                .ok_or_else(|| syntax(format!("unknown condition operator {name} in statement {n}")))?;
            let Value::Object(keys) = block else {
                return Err(syntax(format!("condition {name} of statement {n} is not an object")));
            };
            for (key, values) in keys {
                if !key.contains(':') {
                    return Err(MalformedPolicy::MissingVendor { value: key.clone() });
                }
                conditions.push(Condition {
                    operator: operator.clone(),
                    key: key.clone(),
                    values: condition_values(values, n, key)?,
                });
            }
        }

        Ok(Statement { sid: self.sid, effect, actions, resources, principals, conditions })
    }
}

/// Reads whichever of `name` / `not_name` is present, refusing both.
fn either<'a>(
    raw: &'a Map<String, Value>,
    n: usize,
    name: &'static str,
    not_name: &'static str,
) -> Result<Option<(bool, &'static str, &'a Value)>, MalformedPolicy> {
    match (raw.get(name), raw.get(not_name)) {
        (Some(_), Some(_)) => Err(syntax(format!("statement {n} has both {name} and {not_name}"))),
        (Some(v), None) => Ok(Some((false, name, v))),
        (None, Some(v)) => Ok(Some((true, not_name, v))),
        (None, None) => Ok(None),
    }
}

/// A string or an array of strings.
fn strings(value: &Value, n: usize, name: &str) -> Result<Vec<String>, MalformedPolicy> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(syntax(format!("{name} of statement {n} holds {other}, not a string"))),
            })
            .collect(),
        other => Err(syntax(format!("{name} of statement {n} is {other}, not a string or a list of strings"))),
    }
}

/// Condition values: strings, numbers or booleans, alone or in an array.
fn condition_values(value: &Value, n: usize, key: &str) -> Result<Vec<String>, MalformedPolicy> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(num) => Ok(num.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(syntax(format!("condition key {key} of statement {n} holds {other}"))),
    };
    match value {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn check_sids(shapes: &[StatementShape], kind: PolicyKind) -> Result<(), MalformedPolicy> {
    let mut seen = BTreeSet::new();
    for sid in shapes.iter().filter_map(|s| s.sid.as_deref()).filter(|s| !s.is_empty()) {
        // IAM holds identity policies to alphanumeric Sids; services
        // (Lambda's `StatementId`) allow more in resource policies.
        if kind == PolicyKind::Identity && !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedPolicy::SidNotAlphanumeric { sid: sid.to_string() });
        }
        if !seen.insert(sid) {
            return Err(MalformedPolicy::DuplicateSid { sid: sid.to_string() });
        }
    }
    Ok(())
}

fn check_vendor_prefixed(action: &str) -> Result<(), MalformedPolicy> {
    if action == "*" {
        return Ok(());
    }
    let mut parts = action.split(':');
    let vendor = parts.next().unwrap_or("");
    match (parts.next(), parts.next()) {
        (None, _) => Err(MalformedPolicy::MissingVendor { value: action.to_string() }),
        (Some(_), Some(_)) => Err(MalformedPolicy::TooManyColons { value: action.to_string() }),
        (Some(_), None) => {
            let valid = vendor == "*"
                || (!vendor.is_empty() && vendor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
            if valid { Ok(()) } else { Err(MalformedPolicy::InvalidVendor { vendor: vendor.to_string() }) }
        }
    }
}

fn check_resource(resource: &str) -> Result<(), MalformedPolicy> {
    if resource == "*" {
        return Ok(());
    }
    if !resource.contains(':') {
        return Err(MalformedPolicy::ResourceNotArn { resource: resource.to_string() });
    }
    let fields: Vec<&str> = resource.splitn(4, ':').collect();
    if let ["arn", _, service, ..] = fields.as_slice()
        && service.contains(['*', '?'])
    {
        return Err(MalformedPolicy::ResourceVendorWildcard { resource: resource.to_string() });
    }
    Ok(())
}

/// The entries of a `Principal` element: `"*"` or a map of type to value(s).
fn principal_entries(value: &Value) -> Result<Vec<PrincipalEntry>, MalformedPolicy> {
    let invalid = |p: String| MalformedPolicy::InvalidPrincipal { principal: p };
    let map = match value {
        Value::String(s) if s == "*" => return Ok(vec![PrincipalEntry::Everyone]),
        Value::Object(map) if !map.is_empty() => map,
        other => return Err(invalid(other.to_string())),
    };
    let mut entries = Vec::new();
    for (kind, values) in map {
        let values = match values {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().ok_or_else(|| invalid(format!("{kind:?}:{v}"))))
                .collect::<Result<_, _>>()?,
            other => return Err(invalid(format!("{kind:?}:{other}"))),
        };
        for v in values {
            let bad = || invalid(format!("{kind:?}:{v:?}"));
            let plain = !v.is_empty() && !v.contains(char::is_whitespace) && !v.contains(['*', '?']);
            entries.push(match kind.as_str() {
                "AWS" => aws_principal(v).ok_or_else(bad)?,
                "Service" if plain => PrincipalEntry::Service(v.to_string()),
                "Federated" if plain => PrincipalEntry::Federated(v.to_string()),
                "CanonicalUser" if plain => PrincipalEntry::CanonicalUser(v.to_string()),
                "Service" | "Federated" | "CanonicalUser" => return Err(bad()),
                _ => return Err(syntax(format!("unknown principal type {kind}"))),
            });
        }
    }
    Ok(entries)
}

/// An `AWS` principal value: `*`, an account ID, or an IAM/STS principal ARN
/// (wildcards inside ARNs are refused, as IAM does).
fn aws_principal(v: &str) -> Option<PrincipalEntry> {
    if v == "*" {
        return Some(PrincipalEntry::Everyone);
    }
    if is_account_id(v) {
        return Some(PrincipalEntry::Account(v.to_string()));
    }
    if v.contains(['*', '?']) || v.contains(char::is_whitespace) {
        return None;
    }
    let fields: Vec<&str> = v.splitn(6, ':').collect();
    let ["arn", partition, service, "", account, resource] = fields.as_slice() else {
        return None;
    };
    if partition.is_empty() || !is_account_id(account) {
        return None;
    }
    let named =
        |prefix: &str| resource.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'));
    match *service {
        "iam" if *resource == "root" => Some(PrincipalEntry::Account(account.to_string())),
        "iam" if named("user/") || named("role/") => Some(PrincipalEntry::Arn(v.to_string())),
        "sts" if named("assumed-role/") || named("federated-user/") => Some(PrincipalEntry::Arn(v.to_string())),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::policy::condition::BaseOperator;

    fn identity(json: &str) -> Result<Policy, MalformedPolicy> {
        Policy::parse(json, PolicyKind::Identity)
    }

    fn message(r: Result<Policy, MalformedPolicy>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn parses_a_full_identity_policy() {
        let p = identity(
            r#"{"Version":"2012-10-17","Id":"p1","Statement":[
                {"Sid":"A1","Effect":"Allow","Action":["lambda:Get*","lambda:List*"],"Resource":"*",
                 "Condition":{"StringEquals":{"aws:RequestedRegion":["us-east-1","eu-west-1"]},"NumericLessThan":{"x:n":5},"Bool":{"aws:SecureTransport":true}}},
                {"Effect":"Deny","NotAction":"lambda:InvokeFunction","NotResource":["arn:aws:lambda:*:*:function:f"]}]}"#,
        )
        .unwrap();
        assert_eq!(p.version, Some(Version::V2012_10_17));
        assert_eq!(p.id.as_deref(), Some("p1"));
        assert_eq!(p.statements.len(), 2);
        let s = &p.statements[0];
        assert_eq!(s.effect, Effect::Allow);
        assert_eq!(
            s.actions,
            PatternList { negated: false, patterns: vec!["lambda:Get*".into(), "lambda:List*".into()] }
        );
        assert_eq!(s.conditions.len(), 3);
        let numeric = s.conditions.iter().find(|c| c.operator.base == BaseOperator::NumericLessThan).unwrap();
        assert_eq!(numeric.values, vec!["5".to_string()]);
        let b = s.conditions.iter().find(|c| c.operator.base == BaseOperator::Bool).unwrap();
        assert_eq!(b.values, vec!["true".to_string()]);
        assert!(p.statements[1].actions.negated);
        assert!(p.statements[1].resources.as_ref().unwrap().negated);
        assert!(p.substitutes_variables());
    }

    #[test]
    fn single_statement_object_and_no_version() {
        let p = identity(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
        assert_eq!(p.version, None);
        assert!(!p.substitutes_variables());
        let p =
            identity(r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#).unwrap();
        assert_eq!(p.version, Some(Version::V2008_10_17));
    }

    #[test]
    fn iam_messages() {
        let cases: &[(&str, &str)] = &[
            ("not json", "Syntax errors in policy."),
            ("[]", "Syntax errors in policy."),
            (r#"{"Version":"2012-10-17"}"#, "Syntax errors in policy."),
            (
                r#"{"Version":"2010-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
                "Syntax errors in policy.",
            ),
            (r#"{"Foo":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, "Syntax errors in policy."),
            (r#"{"Statement":{"Effect":"Allow","Actions":"*","Resource":"*"}}"#, "Syntax errors in policy."),
            (r#"{"Statement":{"Effect":"Permit","Action":"*","Resource":"*"}}"#, "Syntax errors in policy."),
            (r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#, "The policy failed legacy parsing"),
            (r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#, "Policy statement must contain actions."),
            (
                r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
                "Policy statement must contain actions.",
            ),
            (r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#, "Policy statement must contain resources."),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":[]}}"#,
                "Policy statement must contain resources.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"","Resource":"*"}}"#,
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"ec2:ec2:Run","Resource":"*"}}"#,
                "Actions/Condition can contain only one colon.",
            ),
            (r#"{"Statement":{"Effect":"Allow","Action":"s 3:Get","Resource":"*"}}"#, "Vendor s 3 is not valid"),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}"#,
                "Resource bucket must be in ARN format or \"*\".",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s*:::b"}}"#,
                "Resource vendor must be fully qualified and cannot contain regexes.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
                "Policy document should not specify a principal.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:x":"a"}}}}"#,
                "Syntax errors in policy.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"noprefix":"a"}}}}"#,
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:x":{"a":1}}}}}"#,
                "Syntax errors in policy.",
            ),
            (
                r#"{"Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
                "Statement IDs (SID) in a single policy must be unique.",
            ),
            (
                r#"{"Statement":{"Sid":"a-b","Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
                "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get","Resource":"*"}}"#,
                "Syntax errors in policy.",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}}"#,
                "Syntax errors in policy.",
            ),
            (r#"{"Statement":{"Effect":"Allow","Action":5,"Resource":"*"}}"#, "Syntax errors in policy."),
        ];
        for (json, expected) in cases {
            assert_eq!(message(identity(json)), *expected, "{json}");
        }
    }

    #[test]
    fn resource_and_trust_rules() {
        let resource = |j: &str| Policy::parse(j, PolicyKind::Resource);
        let trust = |j: &str| Policy::parse(j, PolicyKind::Trust);
        assert!(resource(r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction"}}"#).is_ok());
        assert_eq!(
            message(resource(r#"{"Statement":{"Effect":"Allow","Action":"lambda:InvokeFunction"}}"#)),
            "Missing required field Principal"
        );
        assert_eq!(
            message(trust(
                r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}}"#
            )),
            "Has prohibited field Resource"
        );
        assert!(trust(r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#).is_ok());
        assert_eq!(
            message(resource(
                r#"{"Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:*"}}"#
            )),
            "Syntax errors in policy."
        );
        assert!(
            resource(r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"s3:*"}}"#)
                .is_ok()
        );
        assert_eq!(
            message(trust(
                r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#
            )),
            "Syntax errors in policy."
        );
        // Lambda's statement ids carry dashes.
        assert!(resource(r#"{"Statement":{"Sid":"s3-invoke_1","Effect":"Allow","Principal":"*","Action":"lambda:InvokeFunction"}}"#).is_ok());
    }

    #[test]
    fn principals() {
        let entries = |p: &str| {
            let json = format!(r#"{{"Statement":{{"Effect":"Allow","Principal":{p},"Action":"s3:*"}}}}"#);
            Policy::parse(&json, PolicyKind::Resource).map(|pol| pol.statements[0].principals.clone().unwrap().entries)
        };
        assert_eq!(entries(r#""*""#).unwrap(), vec![PrincipalEntry::Everyone]);
        assert_eq!(entries(r#"{"AWS":"*"}"#).unwrap(), vec![PrincipalEntry::Everyone]);
        assert_eq!(
            entries(
                r#"{"AWS":["111122223333","arn:aws:iam::444455556666:root","arn:aws:iam::444455556666:role/a/b"]}"#
            )
            .unwrap(),
            vec![
                PrincipalEntry::Account("111122223333".into()),
                PrincipalEntry::Account("444455556666".into()),
                PrincipalEntry::Arn("arn:aws:iam::444455556666:role/a/b".into()),
            ]
        );
        assert_eq!(
            entries(r#"{"AWS":"arn:aws:sts::444455556666:assumed-role/r/s","Service":"lambda.amazonaws.com","Federated":"cognito-identity.amazonaws.com"}"#)
                .unwrap()
                .len(),
            3
        );
        for bad in [
            r#""arn:aws:iam::111122223333:root""#,
            r#"{"AWS":"arn:aws:iam::*:root"}"#,
            r#"{"AWS":"arn:aws:iam::111122223333:role/*"}"#,
            r#"{"AWS":"1234"}"#,
            r#"{"AWS":"arn:aws::iam::111122223333:root"}"#,
            r#"{"AWS":[]}"#,
            r#"{"AWS":5}"#,
            r#"{"Service":""}"#,
            r#"{}"#,
        ] {
            assert!(matches!(entries(bad), Err(MalformedPolicy::InvalidPrincipal { .. })), "{bad}");
        }
        assert_eq!(
            entries(r#"{"AWS":"arn:aws::iam::111122223333:root"}"#).unwrap_err().to_string(),
            r#"Invalid principal in policy: "AWS":"arn:aws::iam::111122223333:root""#
        );
        assert!(matches!(entries(r#"{"Robot":"x"}"#), Err(MalformedPolicy::Syntax { .. })));
    }

    #[test]
    fn details_name_the_statement() {
        let e = identity(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Allow","Action":"s3:*"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.code(), "MalformedPolicyDocument");
        assert_eq!(e.detail(), "statement 2 has no Resource or NotResource");
        let e = identity(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Foo":1}}"#).unwrap_err();
        assert_eq!(e.detail(), "unknown field Foo in statement 1");
    }
}
