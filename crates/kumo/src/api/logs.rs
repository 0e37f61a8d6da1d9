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

fn bad(message: impl Into<String>) -> AwsError {
    AwsError(ApiError::new(ErrorCode::LogsInvalidParameter, message))
}

fn reply(value: Value) -> Response {
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
        other => Err(AwsError(ApiError::new(ErrorCode::UnknownOperation, format!("Unknown operation {other}")))),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(input: Value) -> ApiResult<T> {
    serde_json::from_value(input)
        .map_err(|e| AwsError(ApiError::new(ErrorCode::Serialization, format!("Could not parse request body: {e}"))))
}

fn group_arn(s: &AppState, name: &str) -> String {
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

fn store_err(e: crate::store::StoreError) -> AwsError {
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

/// Plain-term filter patterns: every term must appear; quoted phrases stay whole.
fn filter_terms(pattern: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut rest = pattern.trim();
    while !rest.is_empty() {
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"').unwrap_or(stripped.len());
            terms.push(stripped[..end].to_string());
            rest = stripped.get(end + 1..).unwrap_or("").trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            terms.push(rest[..end].to_string());
            rest = rest[end..].trim_start();
        }
    }
    terms.retain(|t| !t.is_empty());
    terms
}

async fn filter_log_events(s: &AppState, input: Value) -> ApiResult<Response> {
    let req: FilterEvents = parse(input)?;
    let group = req.log_group_name.ok_or_else(|| bad("logGroupName is required"))?;
    group_exists(s, &group).await?;
    let max = limit(req.limit, 10_000, 10_000)?;
    let after: Option<i64> = req.next_token.as_deref().and_then(|t| t.parse().ok());
    let events = s
        .engine
        .store()
        .query_logs(LogQuery {
            group,
            streams: req.log_stream_names,
            stream_prefix: req.log_stream_name_prefix,
            start_ms: req.start_time,
            end_ms: req.end_time,
            after_id: after,
            filter_terms: req.filter_pattern.as_deref().map(filter_terms).unwrap_or_default(),
            limit: max + 1,
            newest_first: false,
        })
        .await
        .map_err(store_err)?;
    let more = events.len() > max;
    let items: Vec<Value> = events
        .iter()
        .take(max)
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
    if more && let Some(last) = events.get(max - 1) {
        out["nextToken"] = json!(last.id.to_string());
    }
    Ok(reply(out))
}

#[cfg(test)]
mod tests {
    use super::filter_terms;

    #[test]
    fn splits_filter_patterns() {
        assert_eq!(filter_terms(r#"ERROR "timed out" x"#), vec!["ERROR", "timed out", "x"]);
        assert!(filter_terms("  ").is_empty());
    }
}
