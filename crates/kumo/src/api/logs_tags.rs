//! Log group tags: the current operations (ListTagsForResource, TagResource,
//! UntagResource, by ARN) and the older ones by group name (ListTagsLogGroup,
//! TagLogGroup, UntagLogGroup), over the same stored set.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::logs::{bad, group_missing, group_name, reply, store_err};

/// A `tags` map from a request (absent: none); values must be strings.
pub(super) fn tags_of(v: &Value) -> ApiResult<BTreeMap<String, String>> {
    if v.is_null() {
        return Ok(BTreeMap::new());
    }
    let map = v.as_object().ok_or_else(|| bad("tags must be a map of strings"))?;
    let tags = map
        .iter()
        .map(|(k, v)| {
            v.as_str().map(|v| (k.clone(), v.to_string())).ok_or_else(|| bad("tags must be a map of strings"))
        })
        .collect::<ApiResult<BTreeMap<String, String>>>()?;
    kumo_core::tags::validate(&tags).map_err(|e| bad(e.message))?;
    Ok(tags)
}

/// The group an operation names: `resourceArn` (the new operations, with or
/// without the trailing `:*`) or `logGroupName` (the old ones).
fn target(s: &AppState, operation: &str, input: &Value) -> ApiResult<String> {
    if operation.ends_with("LogGroup") {
        return group_name(input);
    }
    let arn = input["resourceArn"].as_str().unwrap_or_default();
    let scope = &s.engine.config().scope;
    let prefix = format!("arn:{}:logs:{}:{}:log-group:", scope.partition, scope.region, scope.account);
    let name = arn.strip_prefix(&prefix).map(|rest| rest.strip_suffix(":*").unwrap_or(rest));
    match name {
        Some(name) if !name.is_empty() => Ok(name.to_string()),
        _ => Err(bad(format!("Invalid resource ARN: '{arn}'"))),
    }
}

async fn current(s: &AppState, group: &str) -> ApiResult<BTreeMap<String, String>> {
    let groups = s.engine.store().log_groups(Some(group.to_string())).await.map_err(store_err)?;
    groups.into_iter().find(|g| g.name == group).map(|g| g.tags).ok_or_else(group_missing)
}

async fn store(s: &AppState, group: &str, tags: &BTreeMap<String, String>) -> ApiResult<Response> {
    if !s.engine.store().set_log_group_tags(group, tags).await.map_err(store_err)? {
        return Err(group_missing());
    }
    Ok(reply(json!({})))
}

pub(super) async fn list(s: &AppState, operation: &str, input: Value) -> ApiResult<Response> {
    let group = target(s, operation, &input)?;
    Ok(reply(json!({"tags": current(s, &group).await?})))
}

pub(super) async fn tag(s: &AppState, operation: &str, input: Value) -> ApiResult<Response> {
    let group = target(s, operation, &input)?;
    let added = tags_of(&input["tags"])?;
    let tags = kumo_core::tags::merged(&current(s, &group).await?, &added).map_err(|e| bad(e.message))?;
    store(s, &group, &tags).await
}

pub(super) async fn untag(s: &AppState, operation: &str, input: Value) -> ApiResult<Response> {
    let group = target(s, operation, &input)?;
    // UntagResource names the keys `tagKeys`; the older UntagLogGroup, `tags`.
    let member = if operation == "UntagLogGroup" { "tags" } else { "tagKeys" };
    let keys: Vec<String> = input[member]
        .as_array()
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let tags = kumo_core::tags::without(&current(s, &group).await?, &keys);
    store(s, &group, &tags).await
}
