//! A function's tags (ListTags, TagResource, UntagResource on
//! `/2017-03-31/tags/{arn}`) and its code-signing configuration
//! (GetFunctionCodeSigningConfig: Kumo signs nothing, so always none).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use super::query::form_decode;

const MAX_TAG_BODY: usize = 64 * 1024;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct TagBody {
    tags: Option<BTreeMap<String, String>>,
}

pub async fn list_tags(State(s): State<AppState>, Path(arn): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"Tags": s.engine.function_tags(&arn)?})))
}

pub async fn tag(State(s): State<AppState>, Path(arn): Path<String>, body: Body) -> ApiResult<StatusCode> {
    let body: TagBody = super::lambda::json_body(body, MAX_TAG_BODY, "TagResource").await?;
    s.engine.retag_function(&arn, &body.tags.unwrap_or_default(), &[]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// UntagResource names its keys as repeated `tagKeys` query parameters.
pub async fn untag(
    State(s): State<AppState>,
    Path(arn): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<StatusCode> {
    let keys: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == "tagKeys")
        .map(|(_, v)| form_decode(v))
        .collect();
    s.engine.retag_function(&arn, &BTreeMap::new(), &keys).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The function must exist; its configuration is always "none" (an empty ARN).
pub async fn code_signing_config(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let view = s.engine.get_function(&name, None)?;
    Ok(Json(json!({"CodeSigningConfigArn": "", "FunctionName": view.version.name})))
}
