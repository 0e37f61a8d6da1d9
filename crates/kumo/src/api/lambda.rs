//! Lambda's REST JSON API (2015-03-31 and friends).

use std::collections::HashMap;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use kumo_core::invoke::{InvocationType, MAX_ASYNC_REQUEST_BYTES, MAX_SYNC_REQUEST_BYTES};
use kumo_core::{ApiError, ErrorCode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiResult, AwsError};
use super::read_limited;
use super::shapes::{self, ConfigContext};
use crate::engine::{CreateFunction, InvokeRequest, UpdateCode};

/// CreateFunction's request limit (the base64 of a 50 MB zip plus JSON).
const MAX_CREATE_REQUEST_BYTES: usize = 70_167_211;

type Params = Query<HashMap<String, String>>;

fn too_large(limit: usize, operation: &str) -> AwsError {
    AwsError(ApiError::new(
        ErrorCode::RequestEntityTooLarge,
        format!("Request must be smaller than {limit} bytes for the {operation} operation"),
    ))
}

/// Parses a JSON request body; an empty body is an empty object.
pub(super) async fn json_body<T: DeserializeOwned + Default>(
    body: Body,
    limit: usize,
    operation: &str,
) -> ApiResult<T> {
    let bytes = read_limited(body, limit).await.ok_or_else(|| too_large(limit, operation))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        AwsError(ApiError::new(
            ErrorCode::InvalidRequestContent,
            format!("Could not parse request body into json: {e}"),
        ))
    })
}

fn decode_zip(b64: Option<String>) -> ApiResult<Vec<u8>> {
    let b64 = b64.ok_or_else(|| {
        AwsError(ApiError::invalid_parameter(
            "Kumo needs the package as Code.ZipFile; Code.S3Bucket/S3Key arrive with Kumo's S3 API, and container images are not supported.",
        ))
    })?;
    base64::engine::general_purpose::STANDARD.decode(b64.as_bytes()).map_err(|_| {
        AwsError(ApiError::invalid_parameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again.",
        ))
    })
}

fn created(value: Value) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

pub async fn create_function(State(s): State<AppState>, body: Body) -> ApiResult<Response> {
    let body: shapes::CreateFunctionBody = json_body(body, MAX_CREATE_REQUEST_BYTES, "CreateFunction").await?;
    if body.package_type.as_deref() == Some("Image") {
        return Err(AwsError(ApiError::invalid_parameter(
            "Kumo runs Zip packages; container images (PackageType Image) are not supported.",
        )));
    }
    if body.config.layers.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(AwsError(ApiError::invalid_parameter(
            "Kumo does not support Lambda layers yet: put the layer's contents into the function's package.",
        )));
    }
    let name = body.function_name.ok_or_else(|| {
        AwsError(ApiError::new(
            ErrorCode::Validation,
            "1 validation error detected: Value null at 'functionName' failed to satisfy constraint: Member must not be null",
        ))
    })?;
    let code = body.code.ok_or_else(|| {
        AwsError(ApiError::new(
            ErrorCode::Validation,
            "1 validation error detected: Value null at 'code' failed to satisfy constraint: Member must not be null",
        ))
    })?;
    let zip = decode_zip(code.zip_file)?;
    let view = s
        .engine
        .create_function(CreateFunction {
            name,
            patch: body.config.into_patch(),
            zip,
            publish: body.publish.unwrap_or(false),
            tags: body.tags.unwrap_or_default(),
        })
        .await?;
    let mut resp = created(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Created));
    warn_about_role(&s, &view.version.config.role, &view.version.name, &mut resp);
    Ok(resp)
}

/// Tells the caller (header `x-kumo-warning`, shown by `kumo deploy`) and the
/// server log when a function's role grants `*` actions or resources.
fn warn_about_role(s: &AppState, role: &str, function: &str, resp: &mut Response) {
    let loops = s.objects.as_ref().map(|o| o.loop_warnings(function, role)).unwrap_or_default();
    for warning in s.engine.role_warnings(role).into_iter().chain(loops) {
        tracing::warn!(%function, %role, "{warning}");
        if let Ok(v) = axum::http::HeaderValue::from_str(&warning) {
            resp.headers_mut().append("x-kumo-warning", v);
        }
    }
}

pub async fn get_function(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let view = s.engine.get_function(&name, q.get("Qualifier").map(String::as_str))?;
    let scope = &s.engine.config().scope;
    let mut out = json!({
        "Configuration": shapes::configuration(scope, &view, ConfigContext::Single),
        "Code": {
            "RepositoryType": "S3",
            "Location": code_location(&s.engine.config().api_endpoint, &view.version.code.sha256_hex, super::super::engine::now_ms()),
        },
    });
    if !view.tags.is_empty() {
        out["Tags"] = json!(view.tags);
    }
    if let Some(r) = view.reserved_concurrency {
        out["Concurrency"] = json!({"ReservedConcurrentExecutions": r});
    }
    Ok(Json(out))
}

pub async fn get_configuration(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let view = s.engine.get_function(&name, q.get("Qualifier").map(String::as_str))?;
    Ok(Json(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Single)))
}

fn max_items(q: &HashMap<String, String>) -> ApiResult<Option<usize>> {
    match q.get("MaxItems") {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
            _ => Err(AwsError(ApiError::new(
                ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000"
                ),
            ))),
        },
    }
}

pub async fn list_functions(State(s): State<AppState>, Query(q): Params) -> ApiResult<Json<Value>> {
    let all = match q.get("FunctionVersion").map(String::as_str) {
        None => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(AwsError(ApiError::new(
                ErrorCode::Validation,
                format!(
                    "1 validation error detected: Value '{other}' at 'functionVersion' failed to satisfy constraint: Member must satisfy enum value set: [ALL]"
                ),
            )));
        }
    };
    let page = s.engine.list_functions(q.get("Marker").map(String::as_str), max_items(&q)?, all)?;
    let scope = &s.engine.config().scope;
    let functions: Vec<Value> =
        page.items.iter().map(|v| shapes::configuration(scope, v, ConfigContext::Listing)).collect();
    let mut out = json!({"Functions": functions});
    if let Some(m) = page.next_marker {
        out["NextMarker"] = json!(m);
    }
    Ok(Json(out))
}

pub async fn update_configuration(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Response> {
    let body: shapes::ConfigBody = json_body(body, MAX_SYNC_REQUEST_BYTES, "UpdateFunctionConfiguration").await?;
    if body.layers.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(AwsError(ApiError::invalid_parameter(
            "Kumo does not support Lambda layers yet: put the layer's contents into the function's package.",
        )));
    }
    let revision = body.revision_id.clone();
    let view = s.engine.update_config(&name, body.into_patch(), revision).await?;
    let mut resp =
        Json(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Updating)).into_response();
    warn_about_role(&s, &view.version.config.role, &view.version.name, &mut resp);
    Ok(resp)
}

pub async fn update_code(State(s): State<AppState>, Path(name): Path<String>, body: Body) -> ApiResult<Json<Value>> {
    let body: shapes::UpdateCodeBody = json_body(body, MAX_CREATE_REQUEST_BYTES, "UpdateFunctionCode").await?;
    if body.image_uri.is_some() {
        return Err(AwsError(ApiError::invalid_parameter(
            "Please don't provide ImageUri when updating a function with packageType Zip.",
        )));
    }
    let zip = decode_zip(body.zip_file)?;
    if body.dry_run.unwrap_or(false) {
        let view = s.engine.get_function(&name, None)?;
        return Ok(Json(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Single)));
    }
    let view = s
        .engine
        .update_code(&name, UpdateCode { zip, publish: body.publish.unwrap_or(false), revision_id: body.revision_id })
        .await?;
    Ok(Json(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Updating)))
}

pub async fn delete_function(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<StatusCode> {
    s.engine.delete_function(&name, q.get("Qualifier").map(String::as_str)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn publish_version(State(s): State<AppState>, Path(name): Path<String>, body: Body) -> ApiResult<Response> {
    let body: shapes::PublishBody = json_body(body, MAX_SYNC_REQUEST_BYTES, "PublishVersion").await?;
    let view = s.engine.publish_version(&name, body.code_sha256, body.description, body.revision_id).await?;
    Ok(created(shapes::configuration(&s.engine.config().scope, &view, ConfigContext::Single)))
}

pub async fn list_versions(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let page = s.engine.list_versions(&name, q.get("Marker").map(String::as_str), max_items(&q)?)?;
    let scope = &s.engine.config().scope;
    let versions: Vec<Value> =
        page.items.iter().map(|v| shapes::configuration(scope, v, ConfigContext::Listing)).collect();
    let mut out = json!({"Versions": versions});
    if let Some(m) = page.next_marker {
        out["NextMarker"] = json!(m);
    }
    Ok(Json(out))
}

pub async fn create_alias(State(s): State<AppState>, Path(name): Path<String>, body: Body) -> ApiResult<Response> {
    let body: shapes::AliasBody = json_body(body, MAX_SYNC_REQUEST_BYTES, "CreateAlias").await?;
    let alias = body.name.ok_or_else(|| {
        AwsError(ApiError::new(
            ErrorCode::Validation,
            "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null",
        ))
    })?;
    let version = body.function_version.ok_or_else(|| {
        AwsError(ApiError::new(ErrorCode::Validation, "1 validation error detected: Value null at 'functionVersion' failed to satisfy constraint: Member must not be null"))
    })?;
    let weights = body.routing_config.and_then(|r| r.additional_version_weights).unwrap_or_default();
    let (arn, a) = s.engine.create_alias(&name, &alias, &version, body.description, weights).await?;
    Ok(created(shapes::alias(&arn, &a)))
}

pub async fn get_alias(
    State(s): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (arn, a) = s.engine.get_alias(&name, &alias)?;
    Ok(Json(shapes::alias(&arn, &a)))
}

pub async fn list_aliases(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
) -> ApiResult<Json<Value>> {
    let aliases = s.engine.list_aliases(&name, q.get("FunctionVersion").map(String::as_str))?;
    let items: Vec<Value> = aliases.iter().map(|(arn, a)| shapes::alias(arn, a)).collect();
    Ok(Json(json!({"Aliases": items})))
}

pub async fn update_alias(
    State(s): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body: shapes::AliasBody = json_body(body, MAX_SYNC_REQUEST_BYTES, "UpdateAlias").await?;
    let weights = body.routing_config.map(|r| r.additional_version_weights.unwrap_or_default());
    let (arn, a) = s
        .engine
        .update_alias(&name, &alias, body.function_version, body.description, weights, body.revision_id)
        .await?;
    Ok(Json(shapes::alias(&arn, &a)))
}

pub async fn delete_alias(
    State(s): State<AppState>,
    Path((name, alias)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    s.engine.delete_alias(&name, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn put_concurrency(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body: shapes::ConcurrencyBody = json_body(body, MAX_SYNC_REQUEST_BYTES, "PutFunctionConcurrency").await?;
    let value = s.engine.put_concurrency(&name, body.reserved_concurrent_executions).await?;
    Ok(Json(json!({"ReservedConcurrentExecutions": value})))
}

pub async fn get_concurrency(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(match s.engine.get_concurrency(&name)? {
        Some(v) => json!({"ReservedConcurrentExecutions": v}),
        None => json!({}),
    }))
}

pub async fn delete_concurrency(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    s.engine.delete_concurrency(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GetFunctionRecursionConfig.
pub async fn get_recursion_config(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"RecursiveLoop": s.engine.recursion_config(&name)?.as_str()})))
}

/// PutFunctionRecursionConfig.
pub async fn put_recursion_config(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Body,
) -> ApiResult<Json<Value>> {
    let body: Value = json_body(body, MAX_SYNC_REQUEST_BYTES, "PutFunctionRecursionConfig").await?;
    let setting = s.engine.put_recursion_config(&name, body["RecursiveLoop"].as_str()).await?;
    Ok(Json(json!({"RecursiveLoop": setting.as_str()})))
}

/// Kumo's own metrics, in Prometheus' text format.
pub async fn metrics(State(s): State<AppState>) -> Response {
    ([("content-type", "text/plain; version=0.0.4")], s.engine.render_metrics().await).into_response()
}

/// Kumo's own: how many asynchronous events are accepted and not finished.
pub async fn async_event_stats(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"outstanding": s.engine.async_events_outstanding()}))
}

pub async fn account_settings(State(s): State<AppState>) -> Json<Value> {
    let (limit, unreserved, count, code) = s.engine.account_settings();
    Json(json!({
        "AccountLimit": {
            "TotalCodeSize": 80_530_636_800u64,
            "CodeSizeUnzipped": kumo_core::function::MAX_UNZIPPED_BYTES,
            "CodeSizeZipped": kumo_core::function::MAX_ZIPPED_BYTES,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": unreserved,
        },
        "AccountUsage": {"TotalCodeSize": code, "FunctionCount": count},
    }))
}

/// How long a code download URL works (Lambda's presigned URLs: 10 minutes).
const CODE_URL_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// The key of this process's code URLs: they die with it, as a presigned URL
/// is meant to be short-lived anyway.
fn code_url_key() -> &'static [u8; 32] {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key
    })
}

fn code_url_signature(sha: &str, expires_ms: i64) -> String {
    kumo_core::sigv4::hex(&kumo_core::sigv4::hmac_sha256(code_url_key(), format!("{sha}\n{expires_ms}").as_bytes()))
}

/// GetFunction's `Code.Location`: like S3's presigned URL, it works without
/// credentials for a while, and only for the caller who was allowed to get it.
fn code_location(endpoint: &str, sha: &str, now_ms: i64) -> String {
    let expires = now_ms + CODE_URL_LIFETIME_MS;
    format!("{endpoint}/_kumo/code/{sha}.zip?Expires={expires}&Signature={}", code_url_signature(sha, expires))
}

pub async fn download_code(
    State(s): State<AppState>,
    Path(file): Path<String>,
    Query(q): Params,
) -> ApiResult<Response> {
    let sha = file.strip_suffix(".zip").unwrap_or(&file);
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AwsError(ApiError::not_found("No such code package.")));
    }
    let expires: i64 = q.get("Expires").and_then(|e| e.parse().ok()).unwrap_or(0);
    let expected = code_url_signature(sha, expires);
    let given = q.get("Signature").map(String::as_str).unwrap_or("");
    let genuine: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()).into();
    if !genuine || expires < super::super::engine::now_ms() {
        return Err(AwsError(ApiError::new(
            ErrorCode::AccessDenied,
            "Request has expired or its signature is invalid.",
        )));
    }
    let path = s.engine.code_store().zip_path(sha);
    let bytes = tokio::fs::read(path).await.map_err(|_| AwsError(ApiError::not_found("No such code package.")))?;
    Ok(([("content-type", "application/zip")], bytes).into_response())
}

pub async fn unknown_operation() -> AwsError {
    AwsError(ApiError::new(ErrorCode::UnknownOperation, "Unknown operation"))
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `X-Amz-Log-Type`: whether the caller wants the log's last 4 KB.
pub(super) fn log_tail_of(headers: &HeaderMap) -> Result<bool, AwsError> {
    match header(headers, "x-amz-log-type") {
        None | Some("None") => Ok(false),
        Some("Tail") => Ok(true),
        Some(other) => Err(AwsError(ApiError::new(
            ErrorCode::Validation,
            format!(
                "1 validation error detected: Value '{other}' at 'logType' failed to satisfy constraint: Member must satisfy enum value set: [Tail, None]"
            ),
        ))),
    }
}

/// `X-Amz-Client-Context`, decoded from base64.
pub(super) fn client_context_of(headers: &HeaderMap) -> Result<Option<String>, AwsError> {
    let Some(raw) = header(headers, "x-amz-client-context") else {
        return Ok(None);
    };
    if raw.len() > 3583 {
        return Err(AwsError(ApiError::invalid_parameter("Client context must be 3583 bytes or less.")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| {
            AwsError(ApiError::invalid_parameter("Client context must be a valid Base64-encoded JSON object."))
        })
}

pub async fn invoke(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Params,
    identity: Option<axum::Extension<crate::iam::Identity>>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let invocation_type = InvocationType::parse(header(&headers, "x-amz-invocation-type")).ok_or_else(|| {
        let value = header(&headers, "x-amz-invocation-type").unwrap_or_default();
        AwsError(ApiError::new(
            ErrorCode::Validation,
            format!("1 validation error detected: Value '{value}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [RequestResponse, Event, DryRun]"),
        ))
    })?;
    let log_tail = log_tail_of(&headers)?;
    let client_context = client_context_of(&headers)?;
    let limit = if invocation_type == InvocationType::Event { MAX_ASYNC_REQUEST_BYTES } else { MAX_SYNC_REQUEST_BYTES };
    let payload = match read_limited(body, limit).await {
        Some(p) => p,
        None => {
            let message = if invocation_type == InvocationType::Event {
                format!("Payload is too large for the Event invocation type (limit {limit} bytes)")
            } else {
                format!("Request must be smaller than {limit} bytes for the InvokeFunction operation")
            };
            return Err(AwsError(ApiError::new(ErrorCode::RequestEntityTooLarge, message)));
        }
    };
    let caller_lineage = s.engine.caller_lineage(&crate::engine::Caller {
        trace_header: header(&headers, "x-amzn-trace-id"),
        access_key_id: identity.as_ref().and_then(|i| i.access_key_id.as_deref()),
    });
    let resp = s
        .engine
        .invoke(InvokeRequest {
            function_name: name,
            qualifier: q.get("Qualifier").cloned(),
            invocation_type,
            payload,
            log_tail: log_tail && invocation_type == InvocationType::RequestResponse,
            client_context,
            caller_lineage,
            request_id: None,
            stream: None,
        })
        .await?;
    let status = StatusCode::from_u16(resp.status).unwrap_or(StatusCode::OK);
    let mut out = (status, resp.payload).into_response();
    let h = out.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&resp.request_id) {
        h.insert("x-amzn-requestid", v);
    }
    if let Some(fe) = resp.function_error {
        h.insert("x-amz-function-error", HeaderValue::from_static(fe));
    }
    if let Some(v) = resp.executed_version.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert("x-amz-executed-version", v);
    }
    if let Some(v) = resp.log_result.and_then(|v| HeaderValue::from_str(&v).ok()) {
        h.insert("x-amz-log-result", v);
    }
    Ok(out)
}
