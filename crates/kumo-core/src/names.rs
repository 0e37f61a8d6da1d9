//! Function names, qualifiers and ARNs.
//!
//! Lambda accepts a function in four spellings wherever it takes a
//! `FunctionName`: `name`, `name:qualifier`, `account:function:name[:qualifier]`
//! and the full ARN. They all resolve to a [`FunctionRef`].

use std::fmt;

/// The region and account a Kumo server answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Default for Scope {
    fn default() -> Self {
        Scope { partition: "aws".into(), region: "us-east-1".into(), account: "000000000000".into() }
    }
}

impl Scope {
    pub fn function_arn(&self, name: &str) -> String {
        format!("arn:{}:lambda:{}:{}:function:{}", self.partition, self.region, self.account, name)
    }

    pub fn qualified_arn(&self, name: &str, qualifier: &str) -> String {
        format!("{}:{}", self.function_arn(name), qualifier)
    }

    pub fn runtime_version_arn(&self, hash: &str) -> String {
        format!("arn:{}:lambda:{}::runtime:{}", self.partition, self.region, hash)
    }
}

/// A version or alias selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Latest,
    Version(u64),
    Alias(String),
}

impl Qualifier {
    /// Parses a qualifier; `None` when it is not of any valid form.
    pub fn parse(s: &str) -> Option<Qualifier> {
        if s == "$LATEST" {
            return Some(Qualifier::Latest);
        }
        if s.is_empty() || s.len() > 128 {
            return None;
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse::<u64>().ok().map(Qualifier::Version);
        }
        // Lambda's qualifier pattern is `[a-zA-Z0-9$_-]+`: anything of that shape
        // that is not $LATEST or a number names an alias (which may not exist).
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'$' || b == b'_' || b == b'-')
            .then(|| Qualifier::Alias(s.to_string()))
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("$LATEST"),
            Qualifier::Version(v) => write!(f, "{v}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

/// `[a-zA-Z0-9-_]+`, 1..=64: the name part of every function identifier.
pub fn is_function_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Alias names: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, 1..=128.
pub fn is_alias_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !s.bytes().all(|b| b.is_ascii_digit())
}

/// A parsed `FunctionName` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<Qualifier>,
    /// Region and account when the caller spelled them (ARN forms).
    pub region: Option<String>,
    pub account: Option<String>,
}

/// Why a `FunctionName` could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("function name is empty")]
    Empty,
    #[error("function name is longer than 170 characters")]
    TooLong,
    #[error("function name does not match Lambda's pattern")]
    BadPattern,
}

impl FunctionRef {
    pub fn parse(input: &str) -> Result<FunctionRef, NameError> {
        if input.is_empty() {
            return Err(NameError::Empty);
        }
        if input.len() > 170 {
            return Err(NameError::TooLong);
        }
        let parts: Vec<&str> = input.split(':').collect();
        let (region, account, name, qualifier) = match parts.as_slice() {
            [name] => (None, None, *name, None),
            [name, q] => (None, None, *name, Some(*q)),
            [acct, "function", name] => (None, Some(*acct), *name, None),
            [acct, "function", name, q] => (None, Some(*acct), *name, Some(*q)),
            ["arn", partition, "lambda", region, acct, "function", name] if !partition.is_empty() => {
                (Some(*region), Some(*acct), *name, None)
            }
            ["arn", partition, "lambda", region, acct, "function", name, q] if !partition.is_empty() => {
                (Some(*region), Some(*acct), *name, Some(*q))
            }
            _ => return Err(NameError::BadPattern),
        };
        if !is_function_name(name) {
            return Err(NameError::BadPattern);
        }
        if let Some(a) = account
            && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(NameError::BadPattern);
        }
        let qualifier = match qualifier {
            None => None,
            Some(q) => Some(Qualifier::parse(q).ok_or(NameError::BadPattern)?),
        };
        Ok(FunctionRef {
            name: name.to_string(),
            qualifier,
            region: region.map(str::to_string),
            account: account.map(str::to_string),
        })
    }

    /// Whether an ARN form names another account or region than the server's.
    pub fn is_foreign(&self, scope: &Scope) -> bool {
        self.region.as_deref().is_some_and(|r| r != scope.region)
            || self.account.as_deref().is_some_and(|a| a != scope.account)
    }
}

/// Combines the qualifier spelled in the name with a separate `Qualifier`
/// parameter, as Lambda does: they must agree when both are given.
pub fn merge_qualifier(from_name: Option<Qualifier>, param: Option<&str>) -> Result<Option<Qualifier>, QualifierError> {
    let param = match param {
        None => None,
        Some(p) => Some(Qualifier::parse(p).ok_or(QualifierError::Invalid)?),
    };
    match (from_name, param) {
        (Some(a), Some(b)) if a != b => Err(QualifierError::Mismatch),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QualifierError {
    #[error("qualifier is not a version, alias or $LATEST")]
    Invalid,
    #[error("The derived qualifier from the function name does not match the specified qualifier.")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_spelling() {
        let plain = FunctionRef::parse("hello").expect("plain");
        assert_eq!(plain.name, "hello");
        assert_eq!(plain.qualifier, None);
        let q = FunctionRef::parse("hello:prod").expect("alias");
        assert_eq!(q.qualifier, Some(Qualifier::Alias("prod".into())));
        let partial = FunctionRef::parse("000000000000:function:hello:3").expect("partial");
        assert_eq!(partial.qualifier, Some(Qualifier::Version(3)));
        let arn = FunctionRef::parse("arn:aws:lambda:us-east-1:000000000000:function:hello:$LATEST").expect("arn");
        assert_eq!(arn.qualifier, Some(Qualifier::Latest));
        assert_eq!(arn.region.as_deref(), Some("us-east-1"));
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(FunctionRef::parse(""), Err(NameError::Empty));
        assert_eq!(FunctionRef::parse("a b"), Err(NameError::BadPattern));
        assert_eq!(FunctionRef::parse(&"a".repeat(65)), Err(NameError::BadPattern));
        assert_eq!(FunctionRef::parse("x:y:z"), Err(NameError::BadPattern));
        assert_eq!(FunctionRef::parse("hello:a!"), Err(NameError::BadPattern));
        assert_eq!(Qualifier::parse("$latest"), Some(Qualifier::Alias("$latest".into())));
        assert_eq!(Qualifier::parse(&"a".repeat(129)), None);
        assert_eq!(FunctionRef::parse("12:function:x"), Err(NameError::BadPattern));
    }

    #[test]
    fn qualifiers_must_agree() {
        assert_eq!(merge_qualifier(Some(Qualifier::Version(1)), Some("1")), Ok(Some(Qualifier::Version(1))));
        assert_eq!(merge_qualifier(Some(Qualifier::Version(1)), Some("2")), Err(QualifierError::Mismatch));
        assert_eq!(merge_qualifier(None, Some("$LATEST")), Ok(Some(Qualifier::Latest)));
        assert_eq!(merge_qualifier(None, Some("a b")), Err(QualifierError::Invalid));
    }

    proptest! {
        #[test]
        fn arn_round_trips(name in "[a-zA-Z0-9_-]{1,64}", version in 1u64..100000) {
            let scope = Scope::default();
            let arn = scope.qualified_arn(&name, &version.to_string());
            let parsed = FunctionRef::parse(&arn).expect("own ARN parses");
            prop_assert!(!parsed.is_foreign(&scope));
            prop_assert_eq!(parsed.name, name);
            prop_assert_eq!(parsed.qualifier, Some(Qualifier::Version(version)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = FunctionRef::parse(&s);
        }
    }
}
