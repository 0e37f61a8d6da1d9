//! CloudWatch Logs (JSON 1.1 protocol, `X-Amz-Target: Logs_20140328.<Operation>`):
//! the read side of the log groups every function writes to.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use kumo_core::{ApiError, ErrorCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiResult, AwsError};
use super::read_limited;
use crate::store::LogQuery;
use kumo_core::logfilter::FilterPattern;

pub(super) fn bad(message: impl Into<String>) -> AwsError {
    AwsError(ApiError::new(ErrorCode::LogsInvalidParameter, message))
}

pub(super) fn reply(value: Value) -> Response {
    let mut resp = axum::Json(value).into_response();
    resp.headers_mut().insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    resp
}

/// Routes JSON-protocol requests by their target.
pub async fn dispatch(State(s): State<AppState>, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let Some(operation) = target.strip_prefix("Logs_20140328.") else {
        return Err(AwsError(ApiError::new(ErrorCode::UnknownOperation, format!("Unknown operation {target}"))));
    };
    let bytes = read_limited(body, 1 << 20).await.ok_or_else(|| bad("Request is too large"))?;
    let input: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            AwsError(ApiError::new(ErrorCode::Serialization, format!("Could not parse request body: {e}")))
        })?
    };
    match operation {
        "DescribeLogGroups" => describe_log_groups(&s, input).await,
        "DescribeLogStreams" => describe_log_streams(&s, input).await,
        "GetLogEvents" => get_log_events(&s, input).await,
        "FilterLogEvents" => filter_log_events(&s, input).await,
        "CreateLogGroup" => create_log_group(&s, input).await,
        "DeleteLogGroup" => delete_log_group(&s, input).await,
        "PutRetentionPolicy" => put_retention(&s, input).await,
        "DeleteRetentionPolicy" => delete_retention(&s, input).await,
        "CreateLogStream" => create_log_stream(&s, input).await,
        "PutLogEvents" => put_log_events(&s, input).await,
        "ListTagsForResource" | "ListTagsLogGroup" => super::logs_tags::list(&s, operation, input).await,
        "TagResource" | "TagLogGroup" => super::logs_tags::tag(&s, operation, input).await,
        "UntagResource" | "UntagLogGroup" => super::logs_tags::untag(&s, operation, input).await,
        other => Err(AwsError(ApiError::new(ErrorCode::UnknownOperation, format!("Unknown operation {other}")))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(input: Value) -> ApiResult<T> {
    serde_json::from_value(input)
        .map_err(|e| AwsError(ApiError::new(ErrorCode::Serialization, format!("Could not parse request body: {e}"))))
}

pub(super) fn group_arn(s: &AppState, name: &str) -> String {
    let scope = &s.engine.config().scope;
    format!("arn:{}:logs:{}:{}:log-group:{}", scope.partition, scope.region, scope.account, name)
}

fn limit(raw: Option<i64>, max: i64, default: i64) -> ApiResult<usize> {
    match raw {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(bad(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
    }
}

async fn group_exists(s: &AppState, group: &str) -> ApiResult<()> {
    let groups = s.engine.store().log_groups(Some(group.to_string())).await.map_err(store_err)?;
    if groups.iter().any(|g| g.name == group) {
        Ok(())
    } else {
        Err(AwsError(ApiError::new(ErrorCode::LogsResourceNotFound, "The specified log group does not exist.")))
    }
}

pub(super) fn store_err(e: crate::store::StoreError) -> AwsError {
    tracing::error!(error = %e, "log query failed");
    AwsError(ApiError::new(ErrorCode::Service, "log query failed"))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroups {
    log_group_name_prefix: Option<String>,
    limit: Option<i64>,
    next_token: Option<String>,
}

async fn describe_log_groups(s: &AppState, input: Value) -> ApiResult<Response> {
    let req: DescribeGroups = parse(input)?;
    let max = limit(req.limit, 50, 50)?;
    let skip: usize = req.next_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
    let groups = s.engine.store().log_groups(req.log_group_name_prefix).await.map_err(store_err)?;
    let page: Vec<Value> = groups
        .iter()
        .skip(skip)
        .take(max)
        .map(|g| {
            json!({
                "logGroupName": g.name,
                "creationTime": g.created_ms,
                "metricFilterCount": 0,
                "arn": format!("{}:*", group_arn(s, &g.name)),
                "logGroupArn": group_arn(s, &g.name),
                "storedBytes": g.stored_bytes,
                "retentionInDays": g.retention_days,
            })
        })
        .collect();
    let mut out = json!({"logGroups": page});
    if skip + max < groups.len() {
        out["nextToken"] = json!((skip + max).to_string());
    }
    Ok(reply(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeStreams {
    log_group_name: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    limit: Option<i64>,
    next_token: Option<String>,
}

async fn describe_log_streams(s: &AppState, input: Value) -> ApiResult<Response> {
    let req: DescribeStreams = parse(input)?;
    let group = req.log_group_name.ok_or_else(|| bad("logGroupName is required"))?;
    group_exists(s, &group).await?;
    let max = limit(req.limit, 50, 50)?;
    let skip: usize = req.next_token.as_deref().and_then(|t| t.parse().ok()).unwrap_or(0);
    let mut streams =
        s.engine.store().log_streams(group.clone(), req.log_stream_name_prefix).await.map_err(store_err)?;
    if req.order_by.as_deref() == Some("LastEventTime") {
        streams.sort_by_key(|st| st.last_event_ms.unwrap_or(0));
    }
    if req.descending.unwrap_or(false) {
        streams.reverse();
    }
    let page: Vec<Value> = streams
        .iter()
        .skip(skip)
        .take(max)
        .map(|st| {
            json!({
                "logStreamName": st.name,
                "creationTime": st.created_ms,
                "firstEventTimestamp": st.first_event_ms,
                "lastEventTimestamp": st.last_event_ms,
                "lastIngestionTime": st.last_ingestion_ms,
                "arn": format!("{}:log-stream:{}", group_arn(s, &group), st.name),
                "storedBytes": 0,
            })
        })
        .collect();
    let mut out = json!({"logStreams": page});
    if skip + max < streams.len() {
        out["nextToken"] = json!((skip + max).to_string());
    }
    Ok(reply(out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetEvents {
    log_group_name: Option<String>,
    log_stream_name: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

async fn get_log_events(s: &AppState, input: Value) -> ApiResult<Response> {
    let req: GetEvents = parse(input)?;
    let group = req.log_group_name.ok_or_else(|| bad("logGroupName is required"))?;
    let stream = req.log_stream_name.ok_or_else(|| bad("logStreamName is required"))?;
    group_exists(s, &group).await?;
    let max = limit(req.limit, 10_000, 10_000)?;
    // Tokens are "f/<id>": read forward after that event.
    let after = req.next_token.as_deref().and_then(|t| t.strip_prefix("f/")).and_then(|t| t.parse().ok());
    let from_head = req.start_from_head.unwrap_or(false) || after.is_some();
    let events = s
        .engine
        .store()
        .query_logs(LogQuery {
            group,
            streams: Some(vec![stream]),
            start_ms: req.start_time,
            end_ms: req.end_time,
            after_id: after,
            limit: max,
            newest_first: !from_head,
            ..LogQuery::default()
        })
        .await
        .map_err(store_err)?;
    let last = events.last().map_or(after.unwrap_or(0), |e| e.id);
    let first = events.first().map_or(0, |e| e.id);
    let items: Vec<Value> = events
        .iter()
        .map(|e| json!({"timestamp": e.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms}))
        .collect();
    Ok(reply(json!({
        "events": items,
        "nextForwardToken": format!("f/{last}"),
        "nextBackwardToken": format!("b/{first}"),
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterEvents {
    log_group_name: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    next_token: Option<String>,
    limit: Option<i64>,
}

async fn filter_log_events(s: &AppState, input: Value) -> ApiResult<Response> {
    let req: FilterEvents = parse(input)?;
    let group = req.log_group_name.ok_or_else(|| bad("logGroupName is required"))?;
    group_exists(s, &group).await?;
    let max = limit(req.limit, 10_000, 10_000)?;
    let pattern = FilterPattern::parse(req.filter_pattern.as_deref().unwrap_or("")).map_err(|e| bad(e.0))?;
    let mut after: Option<i64> = req.next_token.as_deref().and_then(|t| t.parse().ok());
    // The database narrows by the pattern's required terms; the pattern itself
    // (exclusions, alternatives, JSON) decides each candidate. A page ends at
    // `max` matches or after scanning a bounded number of candidates, and its
    // token resumes after the last event scanned.
    let mut matched: Vec<crate::store::StoredLogEvent> = Vec::new();
    let mut scanned_to = None;
    let mut exhausted = false;
    for _ in 0..10 {
        let batch = s
            .engine
            .store()
            .query_logs(LogQuery {
                group: group.clone(),
                streams: req.log_stream_names.clone(),
                stream_prefix: req.log_stream_name_prefix.clone(),
                start_ms: req.start_time,
                end_ms: req.end_time,
                after_id: after,
                filter_terms: pattern.required_terms(),
                limit: max,
                newest_first: false,
            })
            .await
            .map_err(store_err)?;
        exhausted = batch.len() < max;
        for e in batch {
            after = Some(e.id);
            scanned_to = Some(e.id);
            if pattern.matches(&e.message) {
                matched.push(e);
                if matched.len() == max {
                    break;
                }
            }
        }
        if exhausted || matched.len() == max {
            break;
        }
    }
    let items: Vec<Value> = matched
        .iter()
        .map(|e| {
            json!({
                "logStreamName": e.stream,
                "timestamp": e.timestamp_ms,
                "message": e.message,
                "ingestionTime": e.ingestion_ms,
                "eventId": e.id.to_string(),
            })
        })
        .collect();
    let mut out = json!({"events": items, "searchedLogStreams": []});
    let more = !exhausted || matched.len() == max;
    if more && let Some(last) = matched.last().map(|e| e.id).or(scanned_to) {
        out["nextToken"] = json!(last.to_string());
    }
    Ok(reply(out))
}

/// The retention periods CloudWatch Logs accepts.
const RETENTION_DAYS: &[u32] =
    &[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

pub(super) fn group_name(input: &Value) -> ApiResult<String> {
    let name = input["logGroupName"].as_str().unwrap_or_default();
    let valid = !name.is_empty()
        && name.len() <= 512
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.' | '#'));
    if !valid {
        return Err(bad(format!(
            "1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
        )));
    }
    Ok(name.to_string())
}

pub(super) fn group_missing() -> AwsError {
    AwsError(ApiError::new(ErrorCode::LogsResourceNotFound, "The specified log group does not exist."))
}

async fn create_log_group(s: &AppState, input: Value) -> ApiResult<Response> {
    let name = group_name(&input)?;
    let tags = super::logs_tags::tags_of(&input["tags"])?;
    let created = s.engine.store().create_log_group(&name, crate::engine::now_ms()).await.map_err(store_err)?;
    if !created {
        return Err(AwsError(ApiError::new(
            ErrorCode::LogsResourceAlreadyExists,
            "The specified log group already exists",
        )));
    }
    if !tags.is_empty() {
        s.engine.store().set_log_group_tags(&name, &tags).await.map_err(store_err)?;
    }
    Ok(reply(json!({})))
}

async fn delete_log_group(s: &AppState, input: Value) -> ApiResult<Response> {
    let name = group_name(&input)?;
    if !s.engine.store().delete_log_group(&name).await.map_err(store_err)? {
        return Err(group_missing());
    }
    Ok(reply(json!({})))
}

async fn put_retention(s: &AppState, input: Value) -> ApiResult<Response> {
    let name = group_name(&input)?;
    let days =
        input["retentionInDays"].as_u64().and_then(|d| u32::try_from(d).ok()).filter(|d| RETENTION_DAYS.contains(d));
    let Some(days) = days else {
        return Err(bad(format!(
            "1 validation error detected: Value '{}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: {RETENTION_DAYS:?}",
            input["retentionInDays"]
        )));
    };
    if !s.engine.store().set_log_retention(&name, Some(days)).await.map_err(store_err)? {
        return Err(group_missing());
    }
    // Enforced now, not only at the next sweep.
    s.engine.store().expire_logs(crate::engine::now_ms()).await.map_err(store_err)?;
    Ok(reply(json!({})))
}

async fn create_log_stream(s: &AppState, input: Value) -> ApiResult<Response> {
    let group = group_name(&input)?;
    group_exists(s, &group).await?;
    let stream = input["logStreamName"].as_str().unwrap_or_default();
    if stream.is_empty() || stream.len() > 512 || stream.contains(':') || stream.contains('*') {
        return Err(bad(format!("Invalid log stream name: {stream:?}")));
    }
    let created =
        s.engine.store().create_log_stream(&group, stream, crate::engine::now_ms()).await.map_err(store_err)?;
    if !created {
        return Err(AwsError(ApiError::new(
            ErrorCode::LogsResourceAlreadyExists,
            "The specified log stream already exists",
        )));
    }
    Ok(reply(json!({})))
}

/// PutLogEvents: a batch of up to 10,000 events (1 MB), in one stream.
async fn put_log_events(s: &AppState, input: Value) -> ApiResult<Response> {
    let group = group_name(&input)?;
    let stream = input["logStreamName"].as_str().unwrap_or_default().to_string();
    let streams = s.engine.store().log_streams(group.clone(), Some(stream.clone())).await.map_err(store_err)?;
    if !streams.iter().any(|st| st.name == stream) {
        return Err(AwsError(ApiError::new(
            ErrorCode::LogsResourceNotFound,
            "The specified log stream does not exist.",
        )));
    }
    let events = input["logEvents"].as_array().cloned().unwrap_or_default();
    if events.is_empty() || events.len() > 10_000 {
        return Err(bad("logEvents must hold between 1 and 10000 events"));
    }
    let group_arc: std::sync::Arc<str> = group.as_str().into();
    let stream_arc: std::sync::Arc<str> = stream.as_str().into();
    let mut batch = Vec::with_capacity(events.len());
    for e in events {
        let (Some(timestamp_ms), Some(message)) = (e["timestamp"].as_i64(), e["message"].as_str()) else {
            return Err(bad("every log event needs a timestamp and a message"));
        };
        batch.push(crate::store::LogEvent {
            group: group_arc.clone(),
            stream: stream_arc.clone(),
            timestamp_ms,
            message: message.to_string(),
        });
    }
    s.engine.store().append_logs(batch);
    s.engine.store().flush().await.map_err(store_err)?;
    Ok(reply(json!({"nextSequenceToken": crate::engine::now_ms().to_string()})))
}

async fn delete_retention(s: &AppState, input: Value) -> ApiResult<Response> {
    let name = group_name(&input)?;
    if !s.engine.store().set_log_retention(&name, None).await.map_err(store_err)? {
        return Err(group_missing());
    }
    Ok(reply(json!({})))
}
