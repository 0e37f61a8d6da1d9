//! A custom-runtime function built with AWS's `lambda_runtime` crate, used by
//! Kumo's end-to-end tests and benchmarks as an unmodified `provided` runtime.
//!
//! The event steers it: `{"sleep_ms":N}` sleeps, `{"alloc_mb":N}` touches N MB,
//! `{"fail":"msg"}` returns an error, `{"exit":N}` exits the process,
//! `{"print":"line"}` writes to stdout. It always answers with the event, a
//! per-process invocation count and its pid, so tests can see warm reuse.

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

static COUNT: AtomicU64 = AtomicU64::new(0);

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let count = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(line) = payload.get("print").and_then(Value::as_str) {
        println!("{line}");
    }
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    let mut hold = Vec::new();
    if let Some(mb) = payload.get("alloc_mb").and_then(Value::as_u64) {
        for _ in 0..mb {
            hold.push(vec![1u8; 1 << 20]);
        }
    }
    if let Some(code) = payload.get("exit").and_then(Value::as_i64) {
        std::process::exit(code as i32);
    }
    if let Some(msg) = payload.get("fail").and_then(Value::as_str) {
        return Err(msg.to_string().into());
    }
    Ok(json!({
        "event": payload,
        "count": count,
        "pid": std::process::id(),
        "request_id": context.request_id,
        "held_mb": hold.len(),
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
