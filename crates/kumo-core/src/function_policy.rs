//! A function's resource-based policy: AddPermission, RemovePermission and
//! GetPolicy, as Lambda builds and words them.
//!
//! Each function, version or alias has its own policy document (Lambda keeps
//! them apart: a statement added for the alias `prod` grants nothing on the
//! unqualified function). The documents are plain IAM JSON, evaluated by
//! [`crate::policy`].

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ErrorCode};
use crate::policy::{Policy, PolicyKind};

/// Lambda's resource policy size limit.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The members of an AddPermission request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionInput {
    pub statement_id: String,
    pub action: String,
    pub principal: String,
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
    pub principal_org_id: Option<String>,
    pub event_source_token: Option<String>,
    pub function_url_auth_type: Option<String>,
}

fn validation(value: &str, member: &str, constraint: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ),
    )
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl PermissionInput {
    fn check(&self) -> Result<(), ApiError> {
        let sid = &self.statement_id;
        if sid.is_empty()
            || sid.len() > 100
            || !sid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(validation(
                sid,
                "statementId",
                "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
            ));
        }
        let action = &self.action;
        let action_ok = action == "*"
            || action
                .strip_prefix("lambda:")
                .is_some_and(|op| !op.is_empty() && op.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*'));
        if !action_ok {
            return Err(validation(
                action,
                "action",
                "Member must satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
            ));
        }
        if let Some(t) = &self.function_url_auth_type
            && t != "NONE"
            && t != "AWS_IAM"
        {
            return Err(validation(t, "functionUrlAuthType", "Member must satisfy enum value set: [NONE, AWS_IAM]"));
        }
        Ok(())
    }

    /// The `Principal` element: a service, an account, an ARN, or everyone.
    fn principal(&self) -> Result<Value, ApiError> {
        let p = self.principal.trim();
        let invalid = || {
            ApiError::invalid_parameter("The provided principal was invalid. Please check the principal and try again.")
        };
        if p == "*" {
            return Ok(json!("*"));
        }
        if is_account(p) {
            return Ok(json!({"AWS": format!("arn:aws:iam::{p}:root")}));
        }
        if p.starts_with("arn:aws:iam::") || p.starts_with("arn:aws:sts::") {
            return Ok(json!({"AWS": p}));
        }
        if p.contains('.') && !p.contains(':') && !p.contains(char::is_whitespace) {
            return Ok(json!({"Service": p}));
        }
        Err(invalid())
    }

    /// The statement AddPermission adds for `resource_arn`.
    pub fn statement(&self, resource_arn: &str) -> Result<Value, ApiError> {
        self.check()?;
        let mut statement = Map::new();
        statement.insert("Sid".into(), json!(self.statement_id));
        statement.insert("Effect".into(), json!("Allow"));
        statement.insert("Principal".into(), self.principal()?);
        statement.insert("Action".into(), json!(self.action));
        statement.insert("Resource".into(), json!(resource_arn));
        let mut string_equals = Map::new();
        if let Some(a) = &self.source_account {
            string_equals.insert("AWS:SourceAccount".into(), json!(a));
        }
        if let Some(o) = &self.principal_org_id {
            string_equals.insert("aws:PrincipalOrgID".into(), json!(o));
        }
        if let Some(t) = &self.event_source_token {
            string_equals.insert("lambda:EventSourceToken".into(), json!(t));
        }
        if let Some(t) = &self.function_url_auth_type {
            string_equals.insert("lambda:FunctionUrlAuthType".into(), json!(t));
        }
        let mut condition = Map::new();
        if !string_equals.is_empty() {
            condition.insert("StringEquals".into(), Value::Object(string_equals));
        }
        if let Some(arn) = &self.source_arn {
            condition.insert("ArnLike".into(), json!({"AWS:SourceArn": arn}));
        }
        if !condition.is_empty() {
            statement.insert("Condition".into(), Value::Object(condition));
        }
        Ok(Value::Object(statement))
    }
}

fn statements(document: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| v.get("Statement").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn document_of(statements: Vec<Value>) -> String {
    json!({"Version": "2012-10-17", "Id": "default", "Statement": statements}).to_string()
}

/// AddPermission: the new document and the added statement (as JSON text).
pub fn add_permission(
    existing: Option<&str>,
    input: &PermissionInput,
    resource_arn: &str,
) -> Result<(String, String), ApiError> {
    let statement = input.statement(resource_arn)?;
    let mut all = existing.map(statements).unwrap_or_default();
    if all.iter().any(|s| s.get("Sid").and_then(Value::as_str) == Some(input.statement_id.as_str())) {
        return Err(ApiError::conflict(format!(
            "The statement id ({}) provided already exists. Please provide a new statement id, or remove the existing statement.",
            input.statement_id
        )));
    }
    all.push(statement.clone());
    let document = document_of(all);
    if document.len() > MAX_POLICY_BYTES {
        return Err(ApiError::new(ErrorCode::PolicyLengthExceeded, "The final policy size is bigger than the limit."));
    }
    // What Kumo stores it must be able to evaluate.
    Policy::parse(&document, PolicyKind::Resource).map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
    Ok((document, statement.to_string()))
}

/// RemovePermission: the remaining document, `None` when no statement is left.
pub fn remove_permission(existing: Option<&str>, statement_id: &str) -> Result<Option<String>, ApiError> {
    let mut all = existing.map(statements).unwrap_or_default();
    let before = all.len();
    all.retain(|s| s.get("Sid").and_then(Value::as_str) != Some(statement_id));
    if all.len() == before {
        return Err(ApiError::not_found(format!("Statement {statement_id} is not found in resource policy.")));
    }
    Ok(if all.is_empty() { None } else { Some(document_of(all)) })
}

/// GetPolicy's error when a function has no policy.
pub fn no_policy() -> ApiError {
    ApiError::not_found("No policy is associated with the given resource.")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

    fn input(sid: &str, principal: &str) -> PermissionInput {
        PermissionInput {
            statement_id: sid.into(),
            action: "lambda:InvokeFunction".into(),
            principal: principal.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_statement_has_lambdas_shape() {
        let mut i = input("s3", "s3.amazonaws.com");
        i.source_arn = Some("arn:aws:s3:::bucket".into());
        i.source_account = Some("000000000000".into());
        let s = i.statement(ARN).unwrap();
        assert_eq!(
            s,
            json!({"Sid":"s3","Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"lambda:InvokeFunction",
                   "Resource":ARN,"Condition":{"StringEquals":{"AWS:SourceAccount":"000000000000"},"ArnLike":{"AWS:SourceArn":"arn:aws:s3:::bucket"}}})
        );
        assert_eq!(
            input("a", "111122223333").statement(ARN).unwrap()["Principal"],
            json!({"AWS": "arn:aws:iam::111122223333:root"})
        );
        assert_eq!(input("a", "*").statement(ARN).unwrap()["Principal"], json!("*"));
    }

    #[test]
    fn add_remove_and_their_errors() {
        let (doc, _) = add_permission(None, &input("one", "s3.amazonaws.com"), ARN).unwrap();
        let (doc, _) = add_permission(Some(&doc), &input("two", "111122223333"), ARN).unwrap();
        let dup = add_permission(Some(&doc), &input("one", "*"), ARN).unwrap_err();
        assert_eq!(dup.code, ErrorCode::ResourceConflict);
        assert!(dup.message.contains("The statement id (one) provided already exists."));
        let bad = add_permission(None, &input("x", "not a principal"), ARN).unwrap_err();
        assert_eq!(bad.message, "The provided principal was invalid. Please check the principal and try again.");
        let bad_sid = add_permission(None, &input("no spaces", "*"), ARN).unwrap_err();
        assert_eq!(bad_sid.code, ErrorCode::Validation);
        let doc = remove_permission(Some(&doc), "one").unwrap().unwrap();
        assert_eq!(statements(&doc).len(), 1);
        assert_eq!(
            remove_permission(Some(&doc), "one").unwrap_err().message,
            "Statement one is not found in resource policy."
        );
        assert_eq!(remove_permission(Some(&doc), "two").unwrap(), None);
    }

    #[test]
    fn the_size_limit_holds() {
        let mut doc: Option<String> = None;
        let mut refused = None;
        for i in 0..200 {
            match add_permission(doc.as_deref(), &input(&format!("statement-{i:03}"), "s3.amazonaws.com"), ARN) {
                Ok((d, _)) => doc = Some(d),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert!(doc.is_some_and(|d| d.len() <= MAX_POLICY_BYTES));
        assert_eq!(refused.map(|e| e.code), Some(ErrorCode::PolicyLengthExceeded));
    }
}
