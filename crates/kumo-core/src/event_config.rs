//! A function's asynchronous invocation settings (`FunctionEventInvokeConfig`):
//! retries, maximum event age and destinations, per version or alias.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ErrorCode};
use crate::retry::{MAX_EVENT_AGE_S, MAX_RETRY_ATTEMPTS, MIN_EVENT_AGE_S, RetryPolicy};

/// One stored configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EventInvokeConfig {
    pub maximum_retry_attempts: Option<u32>,
    pub maximum_event_age_s: Option<u32>,
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    pub last_modified_ms: i64,
}

/// The fields of a Put or Update request, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventInvokeConfigInput {
    pub maximum_retry_attempts: Option<i64>,
    pub maximum_event_age_s: Option<i64>,
    /// `Some(None)`: the request has the destination object without an ARN.
    pub on_success: Option<Option<String>>,
    pub on_failure: Option<Option<String>>,
}

fn range_error(field: &str, value: i64, bound: &str, limit: u32) -> ApiError {
    ApiError::new(
        ErrorCode::Validation,
        format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must have value {bound} {limit}"
        ),
    )
}

impl EventInvokeConfigInput {
    /// Lambda's checks that need nothing but the request.
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(v) = self.maximum_retry_attempts {
            if v < 0 {
                return Err(range_error("maximumRetryAttempts", v, "greater than or equal to", 0));
            }
            if v > i64::from(MAX_RETRY_ATTEMPTS) {
                return Err(range_error("maximumRetryAttempts", v, "less than or equal to", MAX_RETRY_ATTEMPTS));
            }
        }
        if let Some(v) = self.maximum_event_age_s {
            if v < i64::from(MIN_EVENT_AGE_S) {
                return Err(range_error("maximumEventAgeInSeconds", v, "greater than or equal to", MIN_EVENT_AGE_S));
            }
            if v > i64::from(MAX_EVENT_AGE_S) {
                return Err(range_error("maximumEventAgeInSeconds", v, "less than or equal to", MAX_EVENT_AGE_S));
            }
        }
        let any_destination = self.destinations().next().is_some();
        if self.maximum_retry_attempts.is_none() && self.maximum_event_age_s.is_none() && !any_destination {
            return Err(ApiError::invalid_parameter(
                "You must specify at least one of error handling or destination setting.",
            ));
        }
        Ok(())
    }

    /// The destination ARNs the request names.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        [&self.on_success, &self.on_failure].into_iter().filter_map(|d| d.as_ref().and_then(|d| d.as_deref()))
    }

    /// Put: the request replaces every setting (omitted ones are removed).
    pub fn put(&self, now_ms: i64) -> EventInvokeConfig {
        EventInvokeConfig {
            maximum_retry_attempts: self.maximum_retry_attempts.map(|v| v as u32),
            maximum_event_age_s: self.maximum_event_age_s.map(|v| v as u32),
            on_success: self.on_success.clone().flatten(),
            on_failure: self.on_failure.clone().flatten(),
            last_modified_ms: now_ms,
        }
    }

    /// Update: the request changes only what it names.
    pub fn update(&self, existing: &EventInvokeConfig, now_ms: i64) -> EventInvokeConfig {
        EventInvokeConfig {
            maximum_retry_attempts: self.maximum_retry_attempts.map(|v| v as u32).or(existing.maximum_retry_attempts),
            maximum_event_age_s: self.maximum_event_age_s.map(|v| v as u32).or(existing.maximum_event_age_s),
            on_success: match &self.on_success {
                Some(d) => d.clone(),
                None => existing.on_success.clone(),
            },
            on_failure: match &self.on_failure {
                Some(d) => d.clone(),
                None => existing.on_failure.clone(),
            },
            last_modified_ms: now_ms,
        }
    }
}

impl EventInvokeConfig {
    /// The retry policy this configuration gives, on top of the server's defaults.
    pub fn retry_policy(&self, base: &RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            max_retry_attempts: self.maximum_retry_attempts.unwrap_or(base.max_retry_attempts),
            max_event_age_ms: self.maximum_event_age_s.map_or(base.max_event_age_ms, |s| u64::from(s) * 1000),
            retry_delays_ms: base.retry_delays_ms.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_emptiness_are_checked_like_lambda() {
        let e = EventInvokeConfigInput { maximum_retry_attempts: Some(3), ..Default::default() }.validate();
        assert!(e.is_err_and(|e| e.message.contains("'3' at 'maximumRetryAttempts'")));
        let e = EventInvokeConfigInput { maximum_event_age_s: Some(59), ..Default::default() }.validate();
        assert!(e.is_err_and(|e| e.message.contains("greater than or equal to 60")));
        let e = EventInvokeConfigInput::default().validate();
        assert!(
            e.is_err_and(|e| e.message == "You must specify at least one of error handling or destination setting.")
        );
        assert!(EventInvokeConfigInput { maximum_retry_attempts: Some(0), ..Default::default() }.validate().is_ok());
    }

    #[test]
    fn put_replaces_and_update_merges() {
        let first = EventInvokeConfigInput {
            maximum_retry_attempts: Some(1),
            on_failure: Some(Some("arn:f".into())),
            ..Default::default()
        }
        .put(1);
        let updated = EventInvokeConfigInput { maximum_event_age_s: Some(120), ..Default::default() }.update(&first, 2);
        assert_eq!(
            (updated.maximum_retry_attempts, updated.maximum_event_age_s, updated.on_failure.as_deref()),
            (Some(1), Some(120), Some("arn:f"))
        );
        let replaced = EventInvokeConfigInput { maximum_event_age_s: Some(120), ..Default::default() }.put(3);
        assert_eq!((replaced.maximum_retry_attempts, replaced.on_failure), (None, None));
        let policy = updated.retry_policy(&RetryPolicy::default());
        assert_eq!((policy.max_retry_attempts, policy.max_event_age_ms), (1, 120_000));
    }
}
