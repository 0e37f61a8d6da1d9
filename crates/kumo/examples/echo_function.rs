//! A custom-runtime function built with AWS's `lambda_runtime` crate, used by
//! Kumo's end-to-end tests and benchmarks as an unmodified `provided` runtime.
//!
//! The event steers it: `{"sleep_ms":N}` sleeps, `{"alloc_mb":N}` touches N MB,
//! `{"fail":"msg"}` returns an error, `{"exit":N}` exits the process,
//! `{"print":"line"}` writes to stdout, `{"read_file":P}`, `{"write_file":P}`
//! and `{"list_dir":P}` report whether the sandbox let it (`probe`). It always answers with the event, a
//! per-process invocation count, its pid and its environment's log stream
//! (`instance`), so tests can see warm reuse.

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
    let probe = probe_filesystem(&payload);
    Ok(json!({
        "probe": probe,
        "event": payload,
        "count": count,
        "pid": std::process::id(),
        // Unique per execution environment (pids repeat: each runtime is PID 1 of its own namespace).
        "instance": std::env::var("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or_default(),
        "request_id": context.request_id,
        "held_mb": hold.len(),
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
    }))
}

/// What the sandbox allows: `{"ok": …}` or `{"error": …}` for each requested file operation.
fn probe_filesystem(payload: &Value) -> Value {
    let outcome = |r: std::io::Result<String>| match r {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if let Some(path) = payload.get("read_file").and_then(Value::as_str) {
        return outcome(std::fs::read(path).map(|b| format!("{} bytes", b.len())));
    }
    if let Some(path) = payload.get("write_file").and_then(Value::as_str) {
        return outcome(std::fs::write(path, b"written by a function").map(|()| "written".into()));
    }
    if let Some(path) = payload.get("list_dir").and_then(Value::as_str) {
        return outcome(std::fs::read_dir(path).map(|d| format!("{} entries", d.count())));
    }
    Value::Null
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
