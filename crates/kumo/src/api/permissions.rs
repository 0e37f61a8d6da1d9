//! AddPermission, RemovePermission and GetPolicy (REST JSON, 2015-03-31).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kumo_core::function_policy::PermissionInput;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

/// A request member that must be a string when present.
fn text(v: &Value, member: &str) -> Option<String> {
    v.get(member).and_then(Value::as_str).map(str::to_string)
}

pub async fn add(State(s): State<AppState>, Path(name): Path<String>, q: Params, body: Body) -> ApiResult<Response> {
    let v: Value = super::lambda::json_body(body, 64 * 1024, "AddPermission").await?;
    let required = |member: &str| {
        text(&v, member).ok_or_else(|| {
            kumo_core::ApiError::new(
                kumo_core::ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                    member[..1].to_lowercase() + &member[1..]
                ),
            )
        })
    };
    let input = PermissionInput {
        statement_id: required("StatementId")?,
        action: required("Action")?,
        principal: required("Principal")?,
        source_arn: text(&v, "SourceArn"),
        source_account: text(&v, "SourceAccount"),
        principal_org_id: text(&v, "PrincipalOrgID"),
        event_source_token: text(&v, "EventSourceToken"),
        function_url_auth_type: text(&v, "FunctionUrlAuthType"),
    };
    let statement = s.engine.add_permission(&name, q.get("Qualifier").map(String::as_str), &input).await?;
    Ok((StatusCode::CREATED, Json(json!({"Statement": statement}))).into_response())
}

pub async fn remove(
    State(s): State<AppState>,
    Path((name, sid)): Path<(String, String)>,
    q: Params,
) -> ApiResult<StatusCode> {
    s.engine.remove_permission(&name, q.get("Qualifier").map(String::as_str), &sid).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let view = s.engine.get_policy(&name, q.get("Qualifier").map(String::as_str))?;
    Ok(Json(json!({"Policy": view.document, "RevisionId": view.revision_id})))
}
