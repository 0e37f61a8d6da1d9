//! STS's query API (version 2011-06-15): who is calling, and temporary
//! credentials for a role.

use kumo_core::iam::validate::required;
use kumo_core::iam::{IamError, IamErrorCode};

use super::query::{Call, QueryResult, Xml, invalid_action, iso_date};
use crate::engine::now_ms;

pub async fn handle(call: &Call<'_>, action: &str) -> QueryResult {
    match action {
        "GetCallerIdentity" => {
            let c = call.caller;
            Ok(Xml::new().text("UserId", &c.user_id).text("Account", &c.account).text("Arn", &c.arn).finish())
        }
        "AssumeRole" => assume_role(call).await,
        "GetSessionToken"
        | "GetFederationToken"
        | "AssumeRoleWithSAML"
        | "AssumeRoleWithWebIdentity"
        | "DecodeAuthorizationMessage"
        | "GetAccessKeyInfo" => Err(IamError::new(
            IamErrorCode::InvalidAction,
            format!(
                "Kumo does not implement the STS operation {action}; AssumeRole and GetCallerIdentity are available."
            ),
        )),
        other => Err(invalid_action(other, "2011-06-15")),
    }
}

async fn assume_role(call: &Call<'_>) -> QueryResult {
    let p = call.params;
    let role_arn = required("roleArn", p.get("RoleArn"))?;
    let session_name = required("roleSessionName", p.get("RoleSessionName"))?;
    let duration = p.int("DurationSeconds", "durationSeconds")?;
    // A session policy can only narrow a session; silently ignoring one would
    // hand out more than was asked for, so it is refused instead.
    if p.has_any("Policy") || p.has_any("PolicyArns") {
        return Err(IamError::new(
            IamErrorCode::ValidationError,
            "Kumo does not support session policies (Policy, PolicyArns) in AssumeRole.",
        ));
    }
    let granted = call.state.iam.assume_role(call.caller, role_arn, session_name, duration, now_ms()).await?;
    let c = &granted.credentials;
    Ok(Xml::new()
        .nest("AssumedRoleUser", |x| {
            x.text("AssumedRoleId", &granted.assumed_role_id).text("Arn", &granted.arn);
        })
        .nest("Credentials", |x| {
            x.text("AccessKeyId", &c.access_key_id)
                .text("SecretAccessKey", &c.secret_access_key)
                .text("SessionToken", &c.session_token)
                .text("Expiration", &iso_date(c.expiration_ms));
        })
        .finish())
}
