//! Turning [`ApiError`]s into AWS-shaped HTTP responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_core::ApiError;

/// An [`ApiError`] as an axum response: status, `x-amzn-ErrorType`, JSON body.
pub struct AwsError(pub ApiError);

impl From<ApiError> for AwsError {
    fn from(e: ApiError) -> Self {
        AwsError(e)
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&e.body_json()).unwrap_or_default();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(e.code.wire_name()));
        if e.code == kumo_core::ErrorCode::TooManyRequests {
            headers.insert("retry-after", HeaderValue::from_static("1"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, AwsError>;
