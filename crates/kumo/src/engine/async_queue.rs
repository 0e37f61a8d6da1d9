//! The durable queue of asynchronous (`Event`) invocations and its dispatcher.
//!
//! An event is committed to the store (synchronous=FULL, group commit) before
//! Invoke answers 202, so a crash of Kumo or of the machine loses nothing
//! accepted. The dispatcher attempts due events in arrival order, always with
//! the event's own request id; [`kumo_core::retry`] decides after each attempt
//! whether and when to try again. An event that was in flight when Kumo died
//! is attempted again at the next start: delivery is at least once, as on Lambda.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kumo_core::ApiError;
use kumo_core::retry::{Condition, Decision, EventProgress, Outcome, RetryPolicy};
use tokio::sync::Notify;

use super::{Engine, store_error};

/// How much of a failed attempt's response is kept for the destination record (Lambda's async response limit).
const MAX_KEPT_ERROR: usize = 256 * 1024;
use crate::store::{EventState, QueuedEvent};

/// Events waiting for their next attempt, by due time then arrival.
pub struct AsyncQueue {
    due: Mutex<BinaryHeap<Reverse<(i64, u64, QueuedEventBox)>>>,
    next_seq: AtomicU64,
    wake: Notify,
    policy: RetryPolicy,
}

/// A queued event ordered only by the heap key (due time, sequence).
struct QueuedEventBox(Box<QueuedEvent>);

impl PartialEq for QueuedEventBox {
    fn eq(&self, other: &Self) -> bool {
        self.0.seq == other.0.seq
    }
}
impl Eq for QueuedEventBox {}
impl PartialOrd for QueuedEventBox {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for QueuedEventBox {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.seq.cmp(&other.0.seq)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl AsyncQueue {
    pub fn new(retry_delays: &[Duration]) -> AsyncQueue {
        let mut policy = RetryPolicy::default();
        if !retry_delays.is_empty() {
            policy.retry_delays_ms = retry_delays.iter().map(|d| d.as_millis() as u64).collect();
        }
        AsyncQueue { due: Mutex::new(BinaryHeap::new()), next_seq: AtomicU64::new(1), wake: Notify::new(), policy }
    }

    fn push(&self, event: QueuedEvent) {
        self.push_quietly(event);
        self.wake.notify_one();
    }

    /// Puts an event back without waking the dispatcher (it is the one putting it back).
    fn push_quietly(&self, event: QueuedEvent) {
        let (at, seq) = (event.next_attempt_ms, event.seq);
        self.due.lock().unwrap_or_else(|e| e.into_inner()).push(Reverse((at, seq, QueuedEventBox(Box::new(event)))));
    }

    /// Removes and returns every event due at `now`, oldest first.
    fn take_due(&self, now: i64) -> Vec<QueuedEvent> {
        let mut heap = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        while heap.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            if let Some(Reverse((_, _, event))) = heap.pop() {
                out.push(*event.0);
            }
        }
        out
    }

    fn next_due(&self) -> Option<i64> {
        self.due.lock().unwrap_or_else(|e| e.into_inner()).peek().map(|Reverse((at, _, _))| *at)
    }
}

impl Engine {
    /// Accepts an `Event` invocation: durable before this returns.
    pub(super) async fn enqueue_event(
        &self,
        function: String,
        qualifier: Option<String>,
        payload: Bytes,
        request_id: String,
    ) -> Result<(), ApiError> {
        let now = now_ms();
        let event = QueuedEvent {
            request_id,
            seq: self.queue.next_seq.fetch_add(1, Ordering::Relaxed),
            function,
            qualifier,
            payload,
            progress: EventProgress::new(now),
            next_attempt_ms: now,
            state: EventState::Queued,
            last_error: None,
        };
        self.store.put_event(&event).await.map_err(store_error)?;
        self.queue.push(event);
        Ok(())
    }

    /// Loads the stored queue (events in flight at a crash run again) and
    /// starts dispatching.
    pub(super) async fn start_async_queue(self: &Arc<Self>) -> Result<(), crate::store::StoreError> {
        let events = self.store.load_events().await?;
        let max_seq = events.iter().map(|e| e.seq).max().unwrap_or(0);
        self.queue.next_seq.store(max_seq + 1, Ordering::Relaxed);
        let mut pending = 0;
        for event in events.into_iter().filter(|e| e.state == EventState::Queued) {
            pending += 1;
            self.queue.push(event);
        }
        if pending > 0 {
            tracing::info!(pending, "resuming queued asynchronous invocations");
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.dispatch_loop().await });
        Ok(())
    }

    /// Called whenever a unit of concurrency is released.
    pub(super) fn queue_capacity_freed(&self) {
        self.queue.wake.notify_one();
    }

    /// Starts due events in arrival order while their functions have
    /// concurrency to spare. An event whose function is at its limit waits in
    /// place (later events of other functions go ahead), so a burst drains in
    /// order without a stampede of throttled attempts.
    async fn dispatch_loop(self: Arc<Self>) {
        loop {
            if !self.accepting.load(Ordering::Acquire) {
                return;
            }
            let now = now_ms();
            let mut blocked: std::collections::HashSet<String> = std::collections::HashSet::new();
            let mut waiting = Vec::new();
            for event in self.queue.take_due(now) {
                if blocked.contains(&event.function) {
                    waiting.push(event);
                    continue;
                }
                if let Some(event) = self.clone().start_event(event, now) {
                    blocked.insert(event.function.clone());
                    waiting.push(event);
                }
            }
            let any_waiting = !waiting.is_empty();
            for event in waiting {
                self.queue.push_quietly(event);
            }
            let wait = if any_waiting {
                1_000
            } else {
                self.queue.next_due().map_or(60_000, |at| (at - now).clamp(1, 60_000))
            };
            tokio::select! {
                () = self.queue.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            }
        }
    }

    /// Starts one attempt, or gives the event back when its function has no
    /// concurrency to spare right now.
    fn start_event(self: Arc<Self>, event: QueuedEvent, now: i64) -> Option<QueuedEvent> {
        let (policy, config) = self.event_settings(&event.function, event.qualifier.as_deref(), &self.queue.policy);
        if let Some(condition) = event.progress.before_attempt(now, &policy) {
            tokio::spawn(async move { self.event_finished(event, condition, &config, None).await });
            return None;
        }
        let Ok(target) = self.target(&event.function, event.qualifier.as_deref()) else {
            // The function (or the alias) is gone: like Lambda, nothing is left to run it.
            tracing::warn!(request_id = %event.request_id, function = %event.function, "dropping an event whose function no longer exists");
            tokio::spawn(async move {
                let _ = self.store.delete_event(&event.request_id).await;
            });
            return None;
        };
        let name = target.version.name.clone();
        if self.lock_concurrency().reserved(&name) == Some(0) {
            // Lambda: reserved concurrency 0 sends events straight to the failure path, without retries.
            tokio::spawn(async move { self.event_finished(event, Condition::RetriesExhausted, &config, None).await });
            return None;
        }
        if self.lock_concurrency().try_acquire(&name).is_err() {
            return Some(event);
        }
        tokio::spawn(async move {
            let permit = super::invoke::Permit::adopt(&self, name);
            self.attempt_event(event, target, permit, policy, config).await;
        });
        None
    }

    async fn attempt_event(
        &self,
        mut event: QueuedEvent,
        target: super::invoke::Target,
        permit: super::invoke::Permit<'_>,
        policy: RetryPolicy,
        config: kumo_core::event_config::EventInvokeConfig,
    ) {
        let executed = target.version.version.to_string();
        let run = self.run(&target, event.payload.clone(), event.request_id.clone(), None, false).await;
        drop(permit);
        let mut response = None;
        let outcome = match run {
            Ok(r) if r.function_error.is_none() => {
                response = Some(r.payload);
                Outcome::Success
            }
            Ok(r) => {
                event.last_error =
                    Some(String::from_utf8_lossy(&r.payload[..r.payload.len().min(MAX_KEPT_ERROR)]).into_owned());
                Outcome::FunctionError
            }
            Err(_) => Outcome::ServiceError,
        };
        match event.progress.record(outcome, now_ms(), &policy) {
            Decision::RetryAt(at) => {
                event.next_attempt_ms = at;
                if let Err(e) = self.store.put_event(&event).await {
                    tracing::error!(error = %e, "could not record an asynchronous attempt; it will run again after a restart");
                }
                self.queue.push(event);
            }
            Decision::Finished(condition) => {
                let last = Some((response.unwrap_or_default(), executed));
                self.event_finished(event, condition, &config, last).await;
            }
        }
    }

    /// The end of an event: its destination gets Lambda's record; a failed
    /// event with no destination is kept as a dead event, never dropped silently.
    async fn event_finished(
        &self,
        event: QueuedEvent,
        condition: Condition,
        config: &kumo_core::event_config::EventInvokeConfig,
        last: Option<(Bytes, String)>,
    ) {
        let destination = match condition {
            Condition::Success => config.on_success.clone(),
            _ => config.on_failure.clone(),
        };
        if let Some(arn) = destination {
            let record = self.destination_record(&event, condition, last);
            let id = uuid::Uuid::new_v4().to_string();
            match self.enqueue_event(arn.clone(), None, record, id).await {
                Ok(()) => {
                    let _ = self.store.delete_event(&event.request_id).await;
                    return;
                }
                Err(e) => {
                    tracing::error!(destination = %arn, error = %e.message, "could not deliver to the destination")
                }
            }
        }
        match condition {
            Condition::Success => {
                let _ = self.store.delete_event(&event.request_id).await;
            }
            _ => self.dead_event(event, condition).await,
        }
    }

    /// Lambda's destination record (invocation record) for a finished event.
    fn destination_record(&self, event: &QueuedEvent, condition: Condition, last: Option<(Bytes, String)>) -> Bytes {
        let as_json = |bytes: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(bytes)
                .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()))
        };
        let name = kumo_core::names::FunctionRef::parse(&event.function).map(|r| r.name).unwrap_or_default();
        let qualifier = event.qualifier.clone().unwrap_or_else(|| "$LATEST".to_string());
        let (response, executed) = match (&condition, last) {
            (Condition::Success, Some((body, version))) => (Some(as_json(&body)), version),
            (_, Some((_, version))) => (event.last_error.as_deref().map(|e| as_json(e.as_bytes())), version),
            (_, None) => (event.last_error.as_deref().map(|e| as_json(e.as_bytes())), qualifier.clone()),
        };
        let mut response_context = serde_json::json!({"statusCode": 200, "executedVersion": executed});
        if condition != Condition::Success && event.progress.attempts > 0 {
            response_context["functionError"] = "Unhandled".into();
        }
        let mut record = serde_json::json!({
            "version": "1.0",
            "timestamp": kumo_core::time::iso8601_millis(now_ms()),
            "requestContext": {
                "requestId": event.request_id,
                "functionArn": self.cfg.scope.qualified_arn(&name, &qualifier),
                "condition": condition.wire_name(),
                "approximateInvokeCount": event.progress.attempts,
            },
            "requestPayload": as_json(&event.payload),
            "responseContext": response_context,
        });
        if let Some(r) = response {
            record["responsePayload"] = r;
        }
        Bytes::from(record.to_string())
    }

    /// An event out of retries or too old, with no destination yet: kept, never dropped silently.
    async fn dead_event(&self, mut event: QueuedEvent, condition: Condition) {
        tracing::warn!(
            request_id = %event.request_id,
            function = %event.function,
            condition = condition.wire_name(),
            attempts = event.progress.attempts,
            "asynchronous invocation failed for good; kept as a dead event"
        );
        event.state = EventState::Dead;
        event.last_error =
            Some(format!("{}: {}", condition.wire_name(), event.last_error.as_deref().unwrap_or("no attempt ran")));
        if let Err(e) = self.store.put_event(&event).await {
            tracing::error!(error = %e, "could not record a dead event");
        }
    }
}
