//! Invocation types and the error payloads the platform itself produces.

use crate::logfmt::ms_2dp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    RequestResponse,
    Event,
    DryRun,
}

impl InvocationType {
    pub fn parse(s: Option<&str>) -> Option<InvocationType> {
        match s {
            None | Some("RequestResponse") => Some(InvocationType::RequestResponse),
            Some("Event") => Some(InvocationType::Event),
            Some("DryRun") => Some(InvocationType::DryRun),
            Some(_) => None,
        }
    }
}

/// Sync request and response payload limits.
pub const MAX_SYNC_REQUEST_BYTES: usize = 6_291_456;
pub const MAX_RESPONSE_BYTES: usize = 6_291_556;
/// A streamed response (response streaming) may be far larger than a buffered one.
pub const MAX_STREAMED_RESPONSE_BYTES: usize = 200 * 1024 * 1024;
pub const MAX_ASYNC_REQUEST_BYTES: usize = 1_048_576;
pub const LOG_TAIL_BYTES: usize = 4096;
/// The init phase limit for on-demand environments.
pub const INIT_LIMIT_MS: u64 = 10_000;

/// A JSON error object as a function error payload.
pub fn error_payload(error_type: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "errorMessage": message, "errorType": error_type })).unwrap_or_default()
}

/// `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: <id> Error: Task timed out after 3.00 seconds"}`
pub fn timeout_payload(request_id: &str, timeout_s: u32) -> Vec<u8> {
    let message =
        format!("RequestId: {request_id} Error: Task timed out after {} seconds", ms_2dp(u64::from(timeout_s) * 1000));
    error_payload("Sandbox.Timedout", &message)
}

/// How the runtime process ended, as Lambda words it.
pub fn exit_description(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (_, Some(sig)) => format!("signal: {}", signal_name(sig)),
        (Some(code), None) => format!("exit status {code}"),
        (None, None) => "unknown exit".to_string(),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        6 => "aborted".into(),
        9 => "killed".into(),
        11 => "segmentation fault".into(),
        15 => "terminated".into(),
        other => format!("signal {other}"),
    }
}

/// `Runtime.ExitError` / `Runtime.OutOfMemory` payload for a runtime that died mid-invocation.
pub fn exit_payload(request_id: &str, error_type: &str, exit: &str) -> Vec<u8> {
    let prefix = if request_id.is_empty() { String::new() } else { format!("RequestId: {request_id} ") };
    error_payload(error_type, &format!("{prefix}Error: Runtime exited with error: {exit}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_has_two_decimals() {
        let p: serde_json::Value = serde_json::from_slice(&timeout_payload("abc", 3)).expect("json");
        assert_eq!(p["errorType"], "Sandbox.Timedout");
        assert_eq!(p["errorMessage"], "RequestId: abc Error: Task timed out after 3.00 seconds");
    }

    #[test]
    fn exit_payloads() {
        let p: serde_json::Value =
            serde_json::from_slice(&exit_payload("r", "Runtime.ExitError", &exit_description(Some(127), None)))
                .expect("json");
        assert_eq!(p["errorMessage"], "RequestId: r Error: Runtime exited with error: exit status 127");
        assert_eq!(exit_description(None, Some(9)), "signal: killed");
    }

    #[test]
    fn invocation_types() {
        assert_eq!(InvocationType::parse(None), Some(InvocationType::RequestResponse));
        assert_eq!(InvocationType::parse(Some("Event")), Some(InvocationType::Event));
        assert_eq!(InvocationType::parse(Some("event")), None);
    }
}
