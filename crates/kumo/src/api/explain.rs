//! `kumo iam explain`: how Kumo decides a request, statement by statement,
//! without making it (IAM's SimulatePrincipalPolicy, in Kumo's words).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use kumo_core::ApiError;
use serde_json::{Value, json};

use super::AppState;
use super::authorize::Ask;
use super::error::ApiResult;
use crate::iam::{Identity, IdentityKind};

/// The identity a principal ARN names: the root, a user, or a role (as a
/// session of it, which is how a role ever makes a request).
fn identity_of(s: &AppState, arn: &str) -> Result<Identity, ApiError> {
    let unknown = || ApiError::not_found(format!("No principal {arn} in this account"));
    let account = s.iam.account().to_string();
    let (service, rest) = arn
        .strip_prefix("arn:aws:iam::")
        .map(|r| ("iam", r))
        .or_else(|| arn.strip_prefix("arn:aws:sts::").map(|r| ("sts", r)))
        .ok_or_else(|| ApiError::invalid_parameter(format!("{arn} is not an IAM principal ARN")))?;
    let (acct, resource) = rest.split_once(':').ok_or_else(unknown)?;
    if acct != account {
        return Err(unknown());
    }
    let assumed = |role_name: &str, session: &str| -> Result<Identity, ApiError> {
        let role = s.iam.role(role_name).ok_or_else(unknown)?;
        Ok(Identity {
            arn: format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session}"),
            account: account.clone(),
            user_id: format!("{}:{session}", role.id),
            kind: IdentityKind::AssumedRole {
                role_name: role_name.to_string(),
                role_arn: role.arn.clone(),
                session_name: session.to_string(),
            },
            access_key_id: None,
        })
    };
    match (service, resource) {
        ("iam", "root") => Ok(Identity::root(&account, None)),
        ("iam", r) if r.starts_with("user/") => {
            let name = r.rsplit('/').next().unwrap_or_default();
            let user = s.iam.read(|state| state.user(name).cloned()).ok_or_else(unknown)?;
            Ok(Identity {
                arn: user.arn,
                account,
                user_id: user.id,
                kind: IdentityKind::User { name: user.name },
                access_key_id: None,
            })
        }
        ("iam", r) if r.starts_with("role/") => assumed(r.rsplit('/').next().unwrap_or_default(), "explain"),
        ("sts", r) if r.starts_with("assumed-role/") => {
            let mut parts = r.splitn(3, '/').skip(1);
            match (parts.next(), parts.next()) {
                (Some(role), Some(session)) => assumed(role, session),
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

pub async fn explain(State(s): State<AppState>, body: Body) -> ApiResult<Json<Value>> {
    let v: Value = super::lambda::json_body(body, 64 * 1024, "Explain").await?;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let missing = |k: &str| ApiError::invalid_parameter(format!("{k} is required"));
    let principal = text("Principal").ok_or_else(|| missing("Principal"))?;
    let ask = Ask {
        action: text("Action").ok_or_else(|| missing("Action"))?,
        resource: text("Resource").unwrap_or_else(|| "*".to_string()),
    };
    let identity = identity_of(&s, &principal)?;
    let context: Vec<(String, Vec<String>)> = v
        .get("Context")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, vals)| {
                    let vals = match vals {
                        Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                        Value::String(one) => vec![one.clone()],
                        other => vec![other.to_string()],
                    };
                    (k.clone(), vals)
                })
                .collect()
        })
        .unwrap_or_default();
    let decision = s.authorizer.decide_with_context(&identity, &ask, &context, crate::engine::now_ms());
    Ok(Json(json!({
        "Principal": identity.arn,
        "Action": ask.action,
        "Resource": ask.resource,
        "Allowed": decision.is_allowed(),
        "Message": decision.denial_message(&identity.arn, &ask.action, &ask.resource),
        "Explanation": decision.explain(),
    })))
}
