//! FunctionEventInvokeConfig operations (REST JSON, 2019-09-25).

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kumo_core::event_config::EventInvokeConfigInput;
use kumo_core::invoke::MAX_SYNC_REQUEST_BYTES;
use kumo_core::{ApiError, ErrorCode};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use crate::engine::EventConfigView;

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

fn integer(v: &Value, field: &str) -> Result<Option<i64>, ApiError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_i64().map(Some).ok_or_else(|| {
            ApiError::new(ErrorCode::Validation, format!("Could not read {field}: expected an integer"))
        }),
    }
}

fn destination(v: &Value, which: &str) -> Option<Option<String>> {
    let d = v.get("DestinationConfig")?.get(which)?;
    Some(d.get("Destination").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string))
}

async fn input(body: Body, operation: &str) -> ApiResult<EventInvokeConfigInput> {
    let v: Value = super::lambda::json_body(body, MAX_SYNC_REQUEST_BYTES, operation).await?;
    Ok(EventInvokeConfigInput {
        maximum_retry_attempts: integer(&v, "MaximumRetryAttempts")?,
        maximum_event_age_s: integer(&v, "MaximumEventAgeInSeconds")?,
        on_success: destination(&v, "OnSuccess"),
        on_failure: destination(&v, "OnFailure"),
    })
}

/// Lambda's FunctionEventInvokeConfig shape (LastModified in epoch seconds).
fn shape(view: &EventConfigView) -> Value {
    let c = &view.config;
    let dest = |d: &Option<String>| d.as_ref().map_or(json!({}), |arn| json!({"Destination": arn}));
    let mut out = json!({
        "LastModified": c.last_modified_ms as f64 / 1000.0,
        "FunctionArn": view.function_arn,
        "DestinationConfig": {"OnSuccess": dest(&c.on_success), "OnFailure": dest(&c.on_failure)},
    });
    if let Some(n) = c.maximum_retry_attempts {
        out["MaximumRetryAttempts"] = n.into();
    }
    if let Some(n) = c.maximum_event_age_s {
        out["MaximumEventAgeInSeconds"] = n.into();
    }
    out
}

pub async fn put(State(s): State<AppState>, Path(name): Path<String>, q: Params, body: Body) -> ApiResult<Json<Value>> {
    let view = s
        .engine
        .put_event_config(
            &name,
            q.get("Qualifier").map(String::as_str),
            input(body, "PutFunctionEventInvokeConfig").await?,
            false,
        )
        .await?;
    Ok(Json(shape(&view)))
}

pub async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    body: Body,
) -> ApiResult<Json<Value>> {
    let view = s
        .engine
        .put_event_config(
            &name,
            q.get("Qualifier").map(String::as_str),
            input(body, "UpdateFunctionEventInvokeConfig").await?,
            true,
        )
        .await?;
    Ok(Json(shape(&view)))
}

pub async fn get(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    Ok(Json(shape(&s.engine.get_event_config(&name, q.get("Qualifier").map(String::as_str))?)))
}

pub async fn delete(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<StatusCode> {
    s.engine.delete_event_config(&name, q.get("Qualifier").map(String::as_str)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let all = s.engine.list_event_configs(&name)?;
    let start: usize = q.get("Marker").and_then(|m| m.parse().ok()).unwrap_or(0);
    let max: usize = q.get("MaxItems").and_then(|m| m.parse().ok()).filter(|m| (1..=50).contains(m)).unwrap_or(50);
    let page: Vec<Value> = all.iter().skip(start).take(max).map(shape).collect();
    let mut out = json!({"FunctionEventInvokeConfigs": page});
    if start + max < all.len() {
        out["NextMarker"] = (start + max).to_string().into();
    }
    Ok(Json(out))
}

/// Kumo's own: the stored asynchronous events (`kumo events ls`).
pub async fn list_events(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    let events = s.engine.list_async_events(q.get("function").map(String::as_str)).await?;
    const STATES: [&str; 4] = ["queued", "in-flight", "retrying", "dead"];
    let state = q.get("state").map(String::as_str);
    if let Some(wanted) = state.filter(|w| !STATES.contains(w)) {
        return Err(kumo_core::ApiError::invalid_parameter(format!(
            "Unknown event state '{wanted}': expected one of {}",
            STATES.join(", ")
        ))
        .into());
    }
    let rows: Vec<Value> = events
        .iter()
        .filter(|e| state.is_none_or(|w| e.state == w))
        .map(|e| {
            json!({
                "RequestId": e.request_id,
                "FunctionName": e.function,
                "Qualifier": e.qualifier,
                "State": e.state,
                "Attempts": e.attempts,
                "Enqueued": kumo_core::time::iso8601_millis(e.enqueued_ms),
                "NextAttempt": kumo_core::time::iso8601_millis(e.next_attempt_ms),
                "LastError": e.last_error,
            })
        })
        .collect();
    Ok(Json(json!({"Events": rows})))
}

/// Kumo's own: put dead events back in the queue (`kumo events redrive`).
pub async fn redrive_events(State(s): State<AppState>, body: Body) -> ApiResult<Json<Value>> {
    // A body that does not parse is an error, never "every dead event".
    let v: Value = super::lambda::json_body(body, 64 * 1024, "RedriveEvents").await?;
    let n = s.engine.redrive_events(v["RequestId"].as_str(), v["FunctionName"].as_str()).await?;
    Ok(Json(json!({"Redriven": n})))
}
