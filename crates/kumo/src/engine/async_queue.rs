//! The durable queue of asynchronous (`Event`) invocations and its dispatcher.
//!
//! An event is committed to the store (synchronous=FULL, group commit) before
//! Invoke answers 202, so a crash of Kumo or of the machine loses nothing
//! accepted. The dispatcher attempts due events in arrival order, always with
//! the event's own request id; [`kumo_core::retry`] decides after each attempt
//! whether and when to try again. An event that was in flight when Kumo died
//! is attempted again at the next start: delivery is at least once, as on Lambda.

use super::now_ms;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kumo_core::ApiError;
use kumo_core::lineage::Lineage;
use kumo_core::retry::{Condition, Decision, EventProgress, Outcome, RetryPolicy};
use tokio::sync::Notify;

use super::{Engine, store_error};

/// The queue adds at most one environment per function this often (Lambda
/// too reads a long queue gradually rather than all at once).
const SCALE_OUT_STEP: Duration = Duration::from_millis(100);

/// How much of a failed attempt's response is kept for the destination record (Lambda's async response limit).
const MAX_KEPT_ERROR: usize = 256 * 1024;
use crate::store::{EventState, QueuedEvent};

/// The queue: per function, the events due now in arrival order; and the
/// events waiting for a later attempt, by due time.
pub struct AsyncQueue {
    lanes: Mutex<Lanes>,
    next_seq: AtomicU64,
    /// Events accepted and not yet finished (queued, in flight or waiting to retry).
    outstanding: AtomicUsize,
    /// When each function last got a new environment for its queue (scale-out pacing).
    last_scale_out: Mutex<HashMap<String, std::time::Instant>>,
    /// Request ids being attempted right now.
    in_flight: Mutex<std::collections::HashSet<String>>,
    wake: Notify,
    policy: RetryPolicy,
}

#[derive(Default)]
struct Lanes {
    ready: HashMap<String, VecDeque<QueuedEvent>>,
    later: BinaryHeap<Reverse<(i64, u64, QueuedEventBox)>>,
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

/// One stored event, for `kumo events`.
pub struct EventSummary {
    pub request_id: String,
    pub function: String,
    pub qualifier: Option<String>,
    /// `queued`, `in-flight`, `retrying` or `dead`.
    pub state: &'static str,
    pub attempts: u32,
    pub enqueued_ms: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
}

/// The function name of an event invoked by name or ARN.
fn event_function_name(raw: &str) -> String {
    kumo_core::names::FunctionRef::parse(raw).map(|r| r.name).unwrap_or_else(|_| raw.to_string())
}

impl AsyncQueue {
    pub fn new(retry_delays: &[Duration]) -> AsyncQueue {
        let mut policy = RetryPolicy::default();
        if !retry_delays.is_empty() {
            policy.retry_delays_ms = retry_delays.iter().map(|d| d.as_millis() as u64).collect();
        }
        AsyncQueue {
            lanes: Mutex::new(Lanes::default()),
            next_seq: AtomicU64::new(1),
            outstanding: AtomicUsize::new(0),
            last_scale_out: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(std::collections::HashSet::new()),
            wake: Notify::new(),
            policy,
        }
    }

    fn lanes(&self) -> std::sync::MutexGuard<'_, Lanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, event: QueuedEvent) {
        let mut lanes = self.lanes();
        if event.next_attempt_ms <= now_ms() {
            lanes.ready.entry(event.function.clone()).or_default().push_back(event);
        } else {
            lanes.later.push(Reverse((event.next_attempt_ms, event.seq, QueuedEventBox(Box::new(event)))));
        }
        drop(lanes);
        self.wake.notify_one();
    }

    /// Moves events whose retry time has come to the back of their function's lane.
    fn promote_due(&self, now: i64) {
        let mut lanes = self.lanes();
        while lanes.later.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            if let Some(Reverse((_, _, event))) = lanes.later.pop() {
                let event = *event.0;
                lanes.ready.entry(event.function.clone()).or_default().push_back(event);
            }
        }
    }

    fn functions_with_ready_events(&self) -> Vec<String> {
        self.lanes().ready.keys().cloned().collect()
    }

    fn pop_front(&self, function: &str) -> Option<QueuedEvent> {
        let mut lanes = self.lanes();
        let lane = lanes.ready.get_mut(function)?;
        let event = lane.pop_front();
        if lane.is_empty() {
            lanes.ready.remove(function);
        }
        event
    }

    /// Gives back an event that could not start yet; it stays first in line.
    fn push_front(&self, event: QueuedEvent) {
        self.lanes().ready.entry(event.function.clone()).or_default().push_front(event);
    }

    fn next_later(&self) -> Option<i64> {
        self.lanes().later.peek().map(|Reverse((at, _, _))| *at)
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
        lineage: Option<Lineage>,
    ) -> Result<(), ApiError> {
        let event = self.new_event(function, qualifier, payload, request_id, lineage);
        self.store.put_event(&event).await.map_err(store_error)?;
        self.accept_committed_events(vec![event]);
        Ok(())
    }

    /// An event ready to be stored: the caller commits it (alone, or in the
    /// same transaction as the write that caused it) and then hands it to
    /// [`Engine::accept_committed_events`].
    pub fn new_event(
        &self,
        function: String,
        qualifier: Option<String>,
        payload: Bytes,
        request_id: String,
        lineage: Option<Lineage>,
    ) -> QueuedEvent {
        let now = now_ms();
        QueuedEvent {
            request_id,
            seq: self.queue.next_seq.fetch_add(1, Ordering::Relaxed),
            function,
            qualifier,
            payload,
            progress: EventProgress::new(now),
            next_attempt_ms: now,
            state: EventState::Queued,
            last_error: None,
            lineage,
        }
    }

    /// Starts dispatching events the caller has committed to the store.
    pub fn accept_committed_events(&self, events: Vec<QueuedEvent>) {
        for event in events {
            self.queue.outstanding.fetch_add(1, Ordering::Relaxed);
            self.queue.push(event);
        }
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
            self.queue.outstanding.fetch_add(1, Ordering::Relaxed);
            self.queue.push(event);
        }
        if pending > 0 {
            tracing::info!(pending, "resuming queued asynchronous invocations");
        }
        let engine = self.clone();
        tokio::spawn(async move { engine.dispatch_loop().await });
        Ok(())
    }

    /// The stored events (queued, in flight, retrying, dead), optionally of one function, oldest first.
    pub async fn list_async_events(&self, function: Option<&str>) -> Result<Vec<EventSummary>, ApiError> {
        let events = self.store.load_events().await.map_err(store_error)?;
        let in_flight = self.queue.in_flight.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let now = now_ms();
        Ok(events
            .into_iter()
            .filter(|e| function.is_none_or(|f| event_function_name(&e.function) == f))
            .map(|e| EventSummary {
                state: match e.state {
                    EventState::Dead => "dead",
                    EventState::Queued if in_flight.contains(&e.request_id) => "in-flight",
                    EventState::Queued if e.next_attempt_ms > now => "retrying",
                    EventState::Queued => "queued",
                },
                function: event_function_name(&e.function),
                request_id: e.request_id,
                qualifier: e.qualifier,
                attempts: e.progress.attempts,
                enqueued_ms: e.progress.enqueued_ms,
                next_attempt_ms: e.next_attempt_ms,
                last_error: e.last_error,
            })
            .collect())
    }

    /// Puts dead events (one, or all of a function, or all) back in the queue
    /// as new: a fresh age and a fresh set of retries, the same request id.
    pub async fn redrive_events(&self, request_id: Option<&str>, function: Option<&str>) -> Result<usize, ApiError> {
        let events = self.store.load_events().await.map_err(store_error)?;
        let mut n = 0;
        for mut e in events.into_iter().filter(|e| e.state == EventState::Dead) {
            if request_id.is_some_and(|id| id != e.request_id)
                || function.is_some_and(|f| event_function_name(&e.function) != f)
            {
                continue;
            }
            let now = now_ms();
            e.state = EventState::Queued;
            e.progress = EventProgress::new(now);
            e.next_attempt_ms = now;
            e.last_error = None;
            self.store.put_event(&e).await.map_err(store_error)?;
            self.queue.outstanding.fetch_add(1, Ordering::Relaxed);
            self.queue.push(e);
            n += 1;
        }
        if n == 0 && request_id.is_some() {
            return Err(ApiError::not_found(format!(
                "No dead event with request id {}",
                request_id.unwrap_or_default()
            )));
        }
        Ok(n)
    }

    /// Asynchronous events accepted and not finished yet.
    pub fn async_events_outstanding(&self) -> usize {
        self.queue.outstanding.load(Ordering::Relaxed)
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
            self.queue.promote_due(now);
            let mut any_waiting = false;
            for function in self.queue.functions_with_ready_events() {
                while let Some(event) = self.queue.pop_front(&function) {
                    if let Some(event) = self.clone().start_event(event, now) {
                        self.queue.push_front(event);
                        any_waiting = true;
                        break;
                    }
                }
            }
            let wait = if any_waiting {
                SCALE_OUT_STEP.as_millis() as i64
            } else {
                self.queue.next_later().map_or(60_000, |at| (at - now).clamp(1, 60_000))
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
        if !self.recursion_permits(&event.function, event.lineage.as_ref(), &event.request_id) {
            let mut event = event;
            event.last_error = Some(format!(
                "recursive loop detected: this event would be invocation {} of one chain (limit {})",
                event.lineage.as_ref().map_or(0, |l| l.depth),
                kumo_core::lineage::MAX_RECURSION_DEPTH
            ));
            tokio::spawn(async move {
                self.event_finished(event, Condition::RecursiveInvocationDetected, &config, None).await
            });
            return None;
        }
        let Ok(target) = self.target(&event.function, event.qualifier.as_deref()) else {
            // The function (or the alias) is gone: like Lambda, nothing is left to run it.
            tracing::warn!(request_id = %event.request_id, function = %event.function, "dropping an event whose function no longer exists");
            tokio::spawn(async move {
                let _ = self.store.delete_event(event.seq).await;
                self.queue.outstanding.fetch_sub(1, Ordering::Relaxed);
            });
            return None;
        };
        let name = target.version.name.clone();
        if self.costs.throttled_by(&name).is_some() {
            // A budget at its limit: the event waits (it is not dropped) until the
            // period rolls over or the budget is raised.
            return Some(event);
        }
        if self.lock_concurrency().reserved(&name) == Some(0) {
            // Lambda: reserved concurrency 0 sends events straight to the failure path, without retries.
            tokio::spawn(async move { self.event_finished(event, Condition::RetriesExhausted, &config, None).await });
            return None;
        }
        // A warm environment takes the event at once; a new one (a cold start)
        // only every SCALE_OUT_STEP per function, so a backlog of short events
        // is drained by the environments it has instead of by hundreds of cold starts.
        if self.pool_for(&target.version).idle_count() == 0 {
            let mut last = self.queue.last_scale_out.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            if last.get(&name).is_some_and(|t| now.duration_since(*t) < SCALE_OUT_STEP) {
                return Some(event);
            }
            last.insert(name.clone(), now);
        }
        if self.lock_concurrency().try_acquire(&name).is_err() {
            return Some(event);
        }
        self.queue.in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(event.request_id.clone());
        tokio::spawn(async move {
            let permit = super::invoke::Permit::adopt(&self, name);
            let id = event.request_id.clone();
            self.attempt_event(event, target, permit, policy, config).await;
            self.queue.in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
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
        let run = self
            .run(
                &target,
                event.payload.clone(),
                event.request_id.clone(),
                event.lineage.clone(),
                super::invoke::RunExtras::default(),
            )
            .await;
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
        self.queue.outstanding.fetch_sub(1, Ordering::Relaxed);
        let destination = match condition {
            Condition::Success => config.on_success.clone(),
            _ => config.on_failure.clone(),
        };
        if let Some(arn) = destination.as_deref().filter(|a| a.starts_with("arn:aws:s3:::")) {
            let record = self.destination_record(&event, condition, last.clone());
            match self.deliver_to_bucket(&event, arn, record).await {
                Ok(key) => {
                    tracing::debug!(bucket = %arn, key, "invocation record delivered");
                    let _ = self.store.delete_event(event.seq).await;
                    return;
                }
                Err(e) => tracing::error!(destination = %arn, error = %e, "could not deliver to the destination"),
            }
        } else if let Some(arn) = destination {
            let record = self.destination_record(&event, condition, last);
            let id = uuid::Uuid::new_v4().to_string();
            // A destination's invocation is caused by this one: the same chain, one deeper.
            let lineage = event.lineage.as_ref().map(Lineage::caused);
            match self.enqueue_event(arn.clone(), None, record, id, lineage).await {
                Ok(()) => {
                    let _ = self.store.delete_event(event.seq).await;
                    return;
                }
                Err(e) => {
                    tracing::error!(destination = %arn, error = %e.message, "could not deliver to the destination")
                }
            }
        }
        match condition {
            Condition::Success => {
                let _ = self.store.delete_event(event.seq).await;
            }
            _ => {
                let dead_letter = self
                    .target(&event.function, event.qualifier.as_deref())
                    .ok()
                    .and_then(|t| t.version.config.dead_letter_target.clone());
                self.dead_event(event, condition, dead_letter).await
            }
        }
    }

    /// Writes a failed event's record into an S3 bucket, as the function's role.
    async fn deliver_to_bucket(&self, event: &QueuedEvent, arn: &str, record: Bytes) -> Result<String, String> {
        let buckets = self.buckets.get().ok_or("Kumo serves no S3 buckets in this process")?;
        let target = self.target(&event.function, event.qualifier.as_deref()).map_err(|e| e.message)?;
        let bucket = arn.trim_start_matches("arn:aws:s3:::");
        // The invocation's own lineage: events the record's write causes are one deeper.
        let lineage = event.lineage.clone();
        buckets.deliver(bucket, &target.version.name, &target.version.config.role, record, lineage).await
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
    /// A function's dead-letter queue (SQS or SNS) is not served by Kumo yet,
    /// so its messages are kept here too, naming the queue they were meant for;
    /// the stored event holds all Lambda puts in one (the body, the request id
    /// and the error message).
    async fn dead_event(&self, mut event: QueuedEvent, condition: Condition, dead_letter: Option<String>) {
        tracing::warn!(
            request_id = %event.request_id,
            function = %event.function,
            condition = condition.wire_name(),
            attempts = event.progress.attempts,
            "asynchronous invocation failed for good; kept as a dead event"
        );
        event.state = EventState::Dead;
        let mut summary =
            format!("{}: {}", condition.wire_name(), event.last_error.as_deref().unwrap_or("no attempt ran"));
        if let Some(queue) = dead_letter {
            summary = format!("{summary} [for dead-letter queue {queue}, which Kumo does not serve yet: kept here]");
        }
        event.last_error = Some(summary);
        if let Err(e) = self.store.put_event(&event).await {
            tracing::error!(error = %e, "could not record a dead event");
        }
    }
}
