//! CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
//! DeleteFunctionUrlConfig and ListFunctionUrlConfigs (REST JSON, 2021-10-31).

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kumo_core::url::{self, UrlConfigInput};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;
use crate::engine::FunctionUrlView;

type Params = Query<HashMap<String, String>>;

/// The configuration requests are small; Lambda's own limit is far above this.
const MAX_CONFIG_BODY: usize = 256 * 1024;

fn qualifier(q: &HashMap<String, String>) -> Option<&str> {
    q.get("Qualifier").map(String::as_str)
}

fn view_json(v: &FunctionUrlView, last_modified: bool) -> Value {
    url::config_json(&v.config, &v.url, &v.function_arn, last_modified)
}

async fn input(body: Body, operation: &str) -> ApiResult<UrlConfigInput> {
    let v: Value = super::lambda::json_body(body, MAX_CONFIG_BODY, operation).await?;
    Ok(UrlConfigInput::from_json(&v)?)
}

pub async fn create(State(s): State<AppState>, Path(name): Path<String>, q: Params, body: Body) -> ApiResult<Response> {
    let input = input(body, "CreateFunctionUrlConfig").await?;
    let view = s.engine.create_function_url(&name, qualifier(&q), &input).await?;
    Ok((StatusCode::CREATED, Json(view_json(&view, false))).into_response())
}

pub async fn get(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let view = s.engine.get_function_url(&name, qualifier(&q))?;
    Ok(Json(view_json(&view, true)))
}

pub async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    q: Params,
    body: Body,
) -> ApiResult<Json<Value>> {
    let input = input(body, "UpdateFunctionUrlConfig").await?;
    let view = s.engine.update_function_url(&name, qualifier(&q), &input).await?;
    Ok(Json(view_json(&view, true)))
}

pub async fn delete(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<StatusCode> {
    s.engine.delete_function_url(&name, qualifier(&q)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(State(s): State<AppState>, Path(name): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let page = s.engine.list_function_urls(
        &name,
        q.get("Marker").map(String::as_str),
        q.get("MaxItems").map(String::as_str),
    )?;
    let configs: Vec<Value> = page.items.iter().map(|v| view_json(v, true)).collect();
    let mut out = json!({"FunctionUrlConfigs": configs});
    if let Some(m) = page.next_marker {
        out["NextMarker"] = json!(m);
    }
    Ok(Json(out))
}
