//! IAM's input rules and the messages it refuses inputs with.
//!
//! Constraint failures are worded as AWS's request validation words them
//! (`1 validation error detected: Value 'a b' at 'userName' failed to satisfy
//! constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+`),
//! since scripts match on those messages.

use super::{IamError, IamErrorCode};
use crate::policy::{Policy, PolicyKind};

/// IAM's pattern for user, role and policy names.
pub const NAME_PATTERN: &str = r"[\w+=,.@-]+";
const PATH_PATTERN: &str = r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)";
const PATH_PREFIX_PATTERN: &str = r"\u002F[\u0021-\u007F]*";
const SESSION_NAME_PATTERN: &str = r"[\w+=,.@-]*";
const DOCUMENT_PATTERN: &str = r"[\u0009\u000A\u000D\u0020-\u00FF]+";

/// The longest policy document IAM takes in a request.
pub const MAX_DOCUMENT_LENGTH: usize = 131_072;

fn constraint(field: &str, value: &str, rule: &str) -> IamError {
    IamError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member {rule}"
    ))
}

/// A parameter the operation cannot do without.
pub fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, IamError> {
    value.ok_or_else(|| {
        IamError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn length(field: &str, value: &str, min: usize, max: usize) -> Result<(), IamError> {
    let n = value.chars().count();
    if n < min {
        return Err(constraint(field, value, &format!("must have length greater than or equal to {min}")));
    }
    if n > max {
        return Err(constraint(field, value, &format!("must have length less than or equal to {max}")));
    }
    Ok(())
}

/// `\w` as IAM's (Java) patterns mean it: ASCII letters, digits and `_`.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-')
}

fn name(field: &str, value: &str, max: usize) -> Result<(), IamError> {
    length(field, value, 1, max)?;
    if !value.chars().all(is_name_char) {
        return Err(constraint(field, value, &format!("must satisfy regular expression pattern: {NAME_PATTERN}")));
    }
    Ok(())
}

pub fn user_name(value: &str) -> Result<(), IamError> {
    name("userName", value, 64)
}

pub fn role_name(value: &str) -> Result<(), IamError> {
    name("roleName", value, 64)
}

/// Managed and inline policy names.
pub fn policy_name(value: &str) -> Result<(), IamError> {
    name("policyName", value, 128)
}

/// `/` or `/a/b/`: printable ASCII between slashes, up to 512 characters.
pub fn path(value: &str) -> Result<(), IamError> {
    length("path", value, 1, 512)?;
    let printable = |s: &str| s.chars().all(|c| ('\u{21}'..='\u{7E}').contains(&c));
    let ok = value == "/" || (value.len() >= 3 && value.starts_with('/') && value.ends_with('/') && printable(value));
    if !ok {
        return Err(constraint("path", value, &format!("must satisfy regular expression pattern: {PATH_PATTERN}")));
    }
    Ok(())
}

/// A `PathPrefix` filter of the List operations.
pub fn path_prefix(value: &str) -> Result<(), IamError> {
    length("pathPrefix", value, 1, 512)?;
    let ok = value.starts_with('/') && value.chars().all(|c| ('\u{21}'..='\u{7F}').contains(&c));
    if !ok {
        return Err(constraint(
            "pathPrefix",
            value,
            &format!("must satisfy regular expression pattern: {PATH_PREFIX_PATTERN}"),
        ));
    }
    Ok(())
}

/// AssumeRole's `RoleSessionName`: 2 to 64 of `[\w+=,.@-]`.
pub fn session_name(value: &str) -> Result<(), IamError> {
    length("roleSessionName", value, 2, 64)?;
    if !value.chars().all(is_name_char) {
        return Err(constraint(
            "roleSessionName",
            value,
            &format!("must satisfy regular expression pattern: {SESSION_NAME_PATTERN}"),
        ));
    }
    Ok(())
}

fn range(field: &str, value: i64, min: i64, max: i64) -> Result<(), IamError> {
    let v = value.to_string();
    if value < min {
        return Err(constraint(field, &v, &format!("must have value greater than or equal to {min}")));
    }
    if value > max {
        return Err(constraint(field, &v, &format!("must have value less than or equal to {max}")));
    }
    Ok(())
}

/// AssumeRole's `DurationSeconds` (the role's own maximum is checked separately).
pub fn duration_seconds(value: i64) -> Result<(), IamError> {
    range("durationSeconds", value, 900, 43_200)
}

/// A role's `MaxSessionDuration`: one to twelve hours.
pub fn max_session_duration(value: i64) -> Result<(), IamError> {
    range("maxSessionDuration", value, 3600, 43_200)
}

/// `MaxItems` of the List operations.
pub fn max_items(value: i64) -> Result<(), IamError> {
    range("maxItems", value, 1, 1000)
}

pub fn description(value: &str) -> Result<(), IamError> {
    length("description", value, 0, 1000)
}

/// A policy ARN parameter: `arn:PARTITION:iam::ACCOUNT-or-aws:policy/PATH/NAME`.
pub fn policy_arn(value: &str) -> Result<(), IamError> {
    length("policyArn", value, 20, 2048)?;
    let fields: Vec<&str> = value.splitn(6, ':').collect();
    let ok = matches!(fields.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if !partition.is_empty() && !account.is_empty() && resource.starts_with("policy/") && !resource.ends_with('/'));
    if ok { Ok(()) } else { Err(IamError::new(IamErrorCode::InvalidInput, format!("ARN {value} is not valid."))) }
}

/// A policy document parameter (`policyDocument`, `assumeRolePolicyDocument`):
/// the request-level limits, then the policy grammar for its `kind`.
pub fn policy_document(field: &str, document: &str, kind: PolicyKind) -> Result<(), IamError> {
    length(field, document, 1, MAX_DOCUMENT_LENGTH)?;
    if !document.chars().all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FF}')) {
        return Err(constraint(
            field,
            document,
            &format!("must satisfy regular expression pattern: {DOCUMENT_PATTERN}"),
        ));
    }
    validate_policy_document(document, kind)
}

/// The one place a document's grammar is checked: [`crate::policy`]'s parser,
/// with IAM's `MalformedPolicyDocument` messages.
pub fn validate_policy_document(document: &str, kind: PolicyKind) -> Result<(), IamError> {
    Policy::parse(document, kind)
        .map(|_| ())
        .map_err(|e| IamError::new(IamErrorCode::MalformedPolicyDocument, e.to_string()))
}

/// A document's size as IAM's quotas count it: whitespace is free.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(), IamError>) -> String {
        match r {
            Err(e) => {
                assert_eq!(e.code, IamErrorCode::ValidationError, "{e:?}");
                e.message
            }
            Ok(()) => panic!("accepted"),
        }
    }

    #[test]
    fn names_follow_iams_pattern_and_lengths() {
        for ok in ["a", "dev", "Dev_User+1=x,y.z@w-v", &"a".repeat(64)] {
            assert!(user_name(ok).is_ok(), "{ok}");
            assert!(role_name(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            message(user_name("bad name")),
            r"1 validation error detected: Value 'bad name' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+"
        );
        assert_eq!(
            message(role_name(&"r".repeat(65))),
            format!(
                "1 validation error detected: Value '{}' at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64",
                "r".repeat(65)
            )
        );
        assert!(message(user_name("")).ends_with("Member must have length greater than or equal to 1"));
        assert!(user_name("caf\u{e9}").is_err());
        assert!(user_name("a/b").is_err());
        assert!(policy_name(&"p".repeat(128)).is_ok());
        assert!(message(policy_name(&"p".repeat(129))).contains("at 'policyName'"));
    }

    #[test]
    fn paths_begin_and_end_with_a_slash() {
        for ok in ["/", "/a/", "/division_abc/subdivision_xyz/", "/a/b/c/"] {
            assert!(path(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a", "a/", "//x y/", "/caf\u{e9}/"] {
            assert!(path(bad).is_err(), "{bad:?}");
        }
        assert!(message(path("/a")).contains(r"pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)"));
        assert!(path(&format!("/{}/", "a".repeat(510))).is_ok());
        assert!(path(&format!("/{}/", "a".repeat(511))).is_err());
        assert!(path_prefix("/").is_ok());
        assert!(path_prefix("/div").is_ok());
        assert!(path_prefix("div").is_err());
    }

    #[test]
    fn session_names_and_durations() {
        assert!(session_name("ab").is_ok());
        assert!(session_name(&"s".repeat(64)).is_ok());
        assert!(message(session_name("a")).ends_with("Member must have length greater than or equal to 2"));
        assert!(message(session_name(&"s".repeat(65))).contains("less than or equal to 64"));
        assert!(message(session_name("a b")).contains("at 'roleSessionName'"));
        assert!(duration_seconds(900).is_ok());
        assert!(duration_seconds(43_200).is_ok());
        assert_eq!(
            message(duration_seconds(899)),
            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
        );
        assert!(message(duration_seconds(43_201)).ends_with("less than or equal to 43200"));
        assert!(max_session_duration(3600).is_ok());
        assert!(max_session_duration(3599).is_err());
        assert!(max_items(1).is_ok() && max_items(1000).is_ok());
        assert!(max_items(0).is_err() && max_items(1001).is_err());
        assert!(description(&"d".repeat(1000)).is_ok());
        assert!(description(&"d".repeat(1001)).is_err());
    }

    #[test]
    fn required_parameters_name_themselves() {
        assert_eq!(required("userName", Some("x")), Ok("x"));
        assert_eq!(
            required("userName", None).map_err(|e| e.message),
            Err("1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null".into())
        );
    }

    #[test]
    fn policy_arns() {
        assert!(policy_arn("arn:aws:iam::123456789012:policy/p").is_ok());
        assert!(policy_arn("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole").is_ok());
        let e = policy_arn("arn:aws:iam::123456789012:role/r").err();
        assert_eq!(
            e.map(|e| (e.code, e.message)),
            Some((IamErrorCode::InvalidInput, "ARN arn:aws:iam::123456789012:role/r is not valid.".into()))
        );
        assert_eq!(policy_arn("short").err().map(|e| e.code), Some(IamErrorCode::ValidationError));
    }

    #[test]
    fn documents_are_parsed_by_the_policy_module() {
        let identity =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}"#;
        assert!(policy_document("policyDocument", identity, PolicyKind::Identity).is_ok());
        let refused = policy_document("policyDocument", "{not json", PolicyKind::Identity).err();
        assert_eq!(refused.map(|e| e.code), Some(IamErrorCode::MalformedPolicyDocument));
        // A trust policy without a principal is malformed; an identity policy with one too.
        let no_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#;
        assert!(policy_document("assumeRolePolicyDocument", no_principal, PolicyKind::Trust).is_err());
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(policy_document("assumeRolePolicyDocument", trust, PolicyKind::Trust).is_ok());
        assert_eq!(
            policy_document("policyDocument", trust, PolicyKind::Identity).err().map(|e| e.code),
            Some(IamErrorCode::MalformedPolicyDocument)
        );
        assert!(message(policy_document("policyDocument", "", PolicyKind::Identity)).contains("at 'policyDocument'"));
        assert!(
            message(policy_document("policyDocument", "{\"x\":\"\u{4e00}\"}", PolicyKind::Identity))
                .contains("pattern")
        );
        assert_eq!(policy_size("{ \"a\" :\n 1 }"), 7);
    }
}
