//! EventBridge (JSON 1.1, `X-Amz-Target: AWSEvents.<Operation>`): rules on
//! the default bus with schedule expressions, their Lambda targets and tags.
//! The rules themselves live in [`crate::schedules`].

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use kumo_core::names::FunctionRef;
use kumo_core::schedule::{RuleState, is_target_id};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{JsonService, Protocol, error_response};
use super::read_limited;
use crate::schedules::{EventsError, PutRule, RuleView, Target, rfc3339};

/// EventBridge's errors: `{"__type", "message"}`.
pub struct EventsFailure(pub EventsError);

impl From<EventsError> for EventsFailure {
    fn from(e: EventsError) -> Self {
        EventsFailure(e)
    }
}

impl IntoResponse for EventsFailure {
    fn into_response(self) -> Response {
        error_response(Protocol::Json11(JsonService::Events), self.0.status(), self.0.code, &self.0.message)
    }
}

type EventsResult = Result<Response, EventsFailure>;

fn reply(value: Value) -> Response {
    let mut resp = axum::Json(value).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    resp
}

fn failure(code: &'static str, message: impl Into<String>) -> EventsFailure {
    EventsFailure(EventsError { code, message: message.into() })
}

/// Routes an `AWSEvents.*` request.
pub async fn dispatch(s: &AppState, headers: &HeaderMap, body: Body) -> Response {
    handle(s, headers, body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn handle(s: &AppState, headers: &HeaderMap, body: Body) -> EventsResult {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let operation = target.strip_prefix("AWSEvents.").unwrap_or(target).to_string();
    let bytes =
        read_limited(body, 1 << 20).await.ok_or_else(|| failure("ValidationException", "Request is too large"))?;
    let input: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| failure("SerializationException", format!("Could not parse request body: {e}")))?
    };
    let schedules = &s.schedules;
    schedules.check_bus(input["EventBusName"].as_str())?;
    match operation.as_str() {
        "PutRule" => {
            let req: PutRuleInput = parse(input)?;
            let arn = schedules
                .put_rule(PutRule {
                    name: req.name.unwrap_or_default(),
                    schedule_expression: req.schedule_expression,
                    event_pattern: req.event_pattern,
                    description: req.description,
                    role_arn: req.role_arn,
                    state: req.state,
                    tags: req.tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect(),
                })
                .await?;
            Ok(reply(json!({"RuleArn": arn})))
        }
        "DescribeRule" => {
            let view = schedules.describe_rule(&required(&input, "Name")?).await?;
            let mut out = rule_json(&view);
            out["CreatedBy"] = json!(s.engine.config().scope.account);
            Ok(reply(out))
        }
        "ListRules" => {
            let prefix = input["NamePrefix"].as_str();
            let rules = schedules.list_rules(prefix).await;
            let (page, next) = paginate(&rules, &input, 100)?;
            let mut out = json!({"Rules": page.iter().map(rule_json).collect::<Vec<_>>()});
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            Ok(reply(out))
        }
        "EnableRule" | "DisableRule" => {
            let state = if operation == "EnableRule" { RuleState::Enabled } else { RuleState::Disabled };
            schedules.set_state(&required(&input, "Name")?, state).await?;
            Ok(reply(json!({})))
        }
        "DeleteRule" => {
            let force = input["Force"].as_bool().unwrap_or(false);
            schedules.delete_rule(&required(&input, "Name")?, force).await?;
            Ok(reply(json!({})))
        }
        "PutTargets" => put_targets(s, &input).await,
        "RemoveTargets" => {
            let rule = required(&input, "Rule")?;
            let ids: Vec<String> = serde_json::from_value(input["Ids"].clone()).unwrap_or_default();
            if ids.is_empty() {
                return Err(failure("ValidationException", "Parameter Ids must hold at least one target id."));
            }
            schedules.remove_targets(&rule, &ids).await?;
            Ok(reply(json!({"FailedEntryCount": 0, "FailedEntries": []})))
        }
        "ListTargetsByRule" => {
            let targets = schedules.targets(&required(&input, "Rule")?).await?;
            let (page, next) = paginate(&targets, &input, 100)?;
            let items: Vec<Value> = page
                .iter()
                .map(|t| {
                    let mut v = json!({"Id": t.id, "Arn": t.arn});
                    if let Some(i) = &t.input {
                        v["Input"] = json!(i);
                    }
                    v
                })
                .collect();
            let mut out = json!({"Targets": items});
            if let Some(n) = next {
                out["NextToken"] = json!(n);
            }
            Ok(reply(out))
        }
        "ListTagsForResource" => {
            let tags = schedules.tags(&required(&input, "ResourceARN")?).await?;
            let items: Vec<Value> = tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect();
            Ok(reply(json!({"Tags": items})))
        }
        "TagResource" => {
            let tags: Vec<TagInput> = serde_json::from_value(input["Tags"].clone())
                .map_err(|e| failure("ValidationException", format!("Parameter Tags is not valid: {e}")))?;
            let add = tags.into_iter().map(|t| (t.key, t.value)).collect();
            schedules.change_tags(&required(&input, "ResourceARN")?, add, &[]).await?;
            Ok(reply(json!({})))
        }
        "UntagResource" => {
            let keys: Vec<String> = serde_json::from_value(input["TagKeys"].clone()).unwrap_or_default();
            schedules.change_tags(&required(&input, "ResourceARN")?, Vec::new(), &keys).await?;
            Ok(reply(json!({})))
        }
        other => Err(failure("UnknownOperationException", format!("Kumo does not implement AWSEvents.{other}"))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRuleInput {
    name: Option<String>,
    schedule_expression: Option<String>,
    event_pattern: Option<String>,
    description: Option<String>,
    role_arn: Option<String>,
    state: Option<String>,
    tags: Option<Vec<TagInput>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagInput {
    key: String,
    value: String,
}

fn parse<T: for<'de> Deserialize<'de>>(input: Value) -> Result<T, EventsFailure> {
    serde_json::from_value(input)
        .map_err(|e| failure("SerializationException", format!("Could not parse request body: {e}")))
}

/// A required string member, as EventBridge's model validation refuses its absence.
fn required(input: &Value, key: &str) -> Result<String, EventsFailure> {
    match input[key].as_str() {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err(failure(
            "ValidationException",
            format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ),
        )),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_ascii_lowercase().to_string() + c.as_str()).unwrap_or_default()
}

/// One page of `items` by `NextToken` (an offset) and `Limit` (1 to `max`).
fn paginate<'a, T>(items: &'a [T], input: &Value, max: u64) -> Result<(&'a [T], Option<String>), EventsFailure> {
    let limit = match &input["Limit"] {
        Value::Null => max,
        v => v.as_u64().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
            failure(
                "ValidationException",
                format!("1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"),
            )
        })?,
    } as usize;
    let start = match input["NextToken"].as_str() {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| failure("ValidationException", "The NextToken is not valid."))?,
    }
    .min(items.len());
    let end = (start + limit).min(items.len());
    Ok((&items[start..end], (end < items.len()).then(|| end.to_string())))
}

/// A rule as DescribeRule and ListRules write it.
fn rule_json(v: &RuleView) -> Value {
    let r = &v.rule;
    let mut out = json!({"Name": r.name, "Arn": v.arn, "State": r.state, "EventBusName": "default"});
    for (key, value) in [
        ("ScheduleExpression", &r.schedule_expression),
        ("EventPattern", &r.event_pattern),
        ("Description", &r.description),
        ("RoleArn", &r.role_arn),
    ] {
        if let Some(value) = value {
            out[key] = json!(value);
        }
    }
    out
}

/// PutTargets: Lambda functions only; any other target is a failed entry,
/// never accepted and silently dropped.
async fn put_targets(s: &AppState, input: &Value) -> EventsResult {
    let rule = required(input, "Rule")?;
    let wire = input["Targets"].as_array().cloned().unwrap_or_default();
    if wire.is_empty() || wire.len() > 10 {
        return Err(failure(
            "ValidationException",
            "1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and 10",
        ));
    }
    let scope = &s.engine.config().scope;
    let mut accepted = Vec::new();
    let mut failed = Vec::new();
    for (i, t) in wire.iter().enumerate() {
        let id = t["Id"].as_str().unwrap_or_default().to_string();
        if !is_target_id(&id) {
            return Err(failure(
                "ValidationException",
                format!(
                    "1 validation error detected: Value '{id}' at 'targets.{}.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
                    i + 1
                ),
            ));
        }
        let arn = t["Arn"].as_str().unwrap_or_default().to_string();
        let input = match &t["Input"] {
            Value::Null => None,
            Value::String(text) if serde_json::from_str::<Value>(text).is_ok() => Some(text.clone()),
            _ => {
                return Err(failure(
                    "ValidationException",
                    format!("Target {id}: Parameter Input is not valid JSON text."),
                ));
            }
        };
        let is_function = arn.starts_with("arn:aws:lambda:")
            && FunctionRef::parse(&arn).is_ok_and(|r| !r.is_foreign(scope) && r.account.is_some());
        let unsupported = ["InputPath", "InputTransformer", "SqsParameters", "RunCommandParameters", "HttpParameters"]
            .into_iter()
            .find(|k| !t[*k].is_null());
        if !is_function {
            failed.push((
                id,
                "ValidationException".to_string(),
                format!(
                    "Kumo delivers rule targets to Lambda functions of this account and region only; {arn} is not one"
                ),
            ));
        } else if let Some(k) = unsupported {
            failed.push((id, "ValidationException".to_string(), format!("Kumo does not support {k} on targets yet")));
        } else {
            accepted.push(Target { id, arn, input });
        }
    }
    let failed = s.schedules.put_targets(&rule, accepted, failed).await?;
    let entries: Vec<Value> = failed
        .iter()
        .map(|(id, code, message)| json!({"TargetId": id, "ErrorCode": code, "ErrorMessage": message}))
        .collect();
    Ok(reply(json!({"FailedEntryCount": entries.len(), "FailedEntries": entries})))
}

/// `GET /_kumo/schedules`: every rule with its next fire time (`kumo schedule ls`).
pub async fn list_schedules(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    let rules = s.schedules.list_rules(None).await;
    let items: Vec<Value> = rules
        .iter()
        .map(|v| {
            let mut out = rule_json(v);
            out["Targets"] =
                json!(v.rule.targets.iter().map(|t| json!({"Id": t.id, "Arn": t.arn})).collect::<Vec<_>>());
            out["NextFire"] = json!(v.next_fire_ms.map(rfc3339));
            out["LastFired"] = json!(v.last_fired_ms.map(rfc3339));
            out["Invocations"] = json!(v.invocations);
            out["FailedInvocations"] = json!(v.failed_invocations);
            out
        })
        .collect();
    axum::Json(json!({"Schedules": items})).into_response()
}
