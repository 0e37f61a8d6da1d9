//! Kumo's own cost and budget routes (`/_kumo/cost`, `/_kumo/budgets`), JSON.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use kumo_core::budget::Budget;
use kumo_core::invoke::MAX_SYNC_REQUEST_BYTES;
use kumo_core::pricing::{format_gb_s, format_micro_usd, units_to_micro_usd};
use kumo_core::{ApiError, ErrorCode};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiResult;

type Params = axum::extract::Query<std::collections::HashMap<String, String>>;

fn month_param(q: &Params) -> Result<(i32, u32), ApiError> {
    match q.get("month") {
        None => Ok(kumo_core::time::month_of(crate::engine::now_ms())),
        Some(m) => kumo_core::time::parse_month(m).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidParameterValue, format!("month must be YYYY-MM, not {m:?}"))
        }),
    }
}

/// GET /_kumo/cost?month=YYYY-MM&function=F: the month's costs per function and in total.
pub async fn report(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    let month = month_param(&q)?;
    let mut report = s.engine.cost_report(month).await?;
    if let Some(f) = q.get("function") {
        report.functions.retain(|name, _| name == f);
    }
    let mut out = serde_json::to_value(&report).map_err(|e| ApiError::service(e.to_string()))?;
    out["price_book"] = serde_json::to_value(s.engine.price_book()).unwrap_or(Value::Null);
    Ok(Json(out))
}

/// GET /_kumo/cost/invocations/{request_id}?at=MS: what one invocation cost.
pub async fn invocation(State(s): State<AppState>, Path(id): Path<String>, q: Params) -> ApiResult<Json<Value>> {
    let at = q.get("at").and_then(|v| v.parse::<i64>().ok()).unwrap_or_else(crate::engine::now_ms);
    let (record, charge) = s.engine.invocation_cost(&id, at).await?;
    let micro = units_to_micro_usd(charge.total_units);
    Ok(Json(json!({
        "request_id": record.request_id,
        "function": record.function,
        "billed_ms": record.billed_ms,
        "memory_mb": record.memory_mb,
        "architecture": record.architecture,
        "billed_gb_s": format_gb_s(charge.billed_mb_ms),
        "free_requests_used": charge.free_requests_used,
        "free_gb_s_used": format_gb_s(charge.free_mb_ms_used),
        "cost_units": charge.total_units.to_string(),
        "cost_micro_usd": u64::try_from(micro).unwrap_or(u64::MAX),
        "cost_usd": format_micro_usd(micro, 8),
        "cold_start_micro_usd": u64::try_from(units_to_micro_usd(charge.cold_start_units)).unwrap_or(u64::MAX),
    })))
}

pub async fn put_budget(State(s): State<AppState>, body: Body) -> ApiResult<(StatusCode, Json<Value>)> {
    let value: Value = super::lambda::json_body(body, MAX_SYNC_REQUEST_BYTES, "PutBudget").await?;
    let budget: Budget = serde_json::from_value(value)
        .map_err(|e| ApiError::new(ErrorCode::Serialization, format!("Could not read the budget: {e}")))?;
    let view = s.engine.put_budget(budget).await?;
    Ok((StatusCode::OK, Json(serde_json::to_value(view).unwrap_or(Value::Null))))
}

pub async fn list_budgets(State(s): State<AppState>) -> Json<Value> {
    Json(json!({"Budgets": s.engine.budgets()}))
}

pub async fn get_budget(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(serde_json::to_value(s.engine.budget(&name)?).unwrap_or(Value::Null)))
}

pub async fn delete_budget(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    s.engine.delete_budget(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// GET /_kumo/stats?month=YYYY-MM&function=F.
pub async fn stats(State(s): State<AppState>, q: Params) -> ApiResult<Json<Value>> {
    let month = month_param(&q)?;
    let mut rows = s.engine.stats(month).await?;
    if let Some(f) = q.get("function") {
        rows.retain(|r| &r.function == f);
    }
    Ok(Json(json!({"period": kumo_core::time::format_month(month.0, month.1), "Functions": rows})))
}
