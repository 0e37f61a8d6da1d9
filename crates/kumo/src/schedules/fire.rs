//! The scheduler: sleeps until the earliest due tick (or a rule changes),
//! then fires each due rule once: one event per target, committed with the
//! rule's next tick, then handed to the async queue (its retries, its
//! destinations, its dead events).

use std::time::Duration;

use kumo_core::schedule::{self, Firing, RuleState};

use super::{Entry, Schedules, db};
use crate::api::authorize::Ask;
use crate::engine::now_ms;
use crate::store::QueuedEvent;

/// The principal EventBridge invokes functions as.
pub const EVENTS_PRINCIPAL: &str = "events.amazonaws.com";

/// The longest the scheduler sleeps without looking (it is woken on changes anyway).
const MAX_SLEEP: Duration = Duration::from_secs(60);

impl Schedules {
    pub(super) async fn run(self: std::sync::Arc<Self>) {
        loop {
            let next = self.fire_due(now_ms()).await;
            let wait = next.map_or(MAX_SLEEP, |at| {
                Duration::from_millis((at - now_ms()).clamp(1, MAX_SLEEP.as_millis() as i64) as u64)
            });
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Fires every enabled rule whose tick has come; returns the earliest tick still to come.
    async fn fire_due(&self, now: i64) -> Option<i64> {
        let mut rules = self.rules.lock().await;
        let mut earliest: Option<i64> = None;
        for entry in rules.values_mut() {
            if entry.row.rule.state != RuleState::Enabled.as_str() {
                continue;
            }
            let (Some(due), Some(schedule)) = (entry.row.next_due_ms, entry.schedule.as_ref()) else { continue };
            let firing = schedule::decide(due, now, |t| schedule.latest_at_or_before(t), |t| schedule.next_after(t));
            if let Firing::Fire { tick_ms, next_ms } = firing {
                self.fire(entry, tick_ms, next_ms, now).await;
            }
            if let Some(n) = entry.row.next_due_ms {
                earliest = Some(earliest.map_or(n, |e| e.min(n)));
            }
        }
        earliest
    }

    /// Fires one rule for `tick_ms`. A failed commit leaves the tick due: it is
    /// tried again at the next wake-up, never lost and never doubled.
    async fn fire(&self, entry: &mut Entry, tick_ms: i64, next_ms: Option<i64>, now: i64) {
        let rule = entry.row.rule.clone();
        let arn = self.rule_arn(&rule.name);
        let mut events = Vec::new();
        let mut refused = 0;
        for target in &rule.targets {
            if let Err(why) = self.may_invoke(&target.arn, &arn) {
                // EventBridge counts these as FailedInvocations; nothing runs.
                tracing::warn!(rule = %rule.name, target = %target.id, function = %target.arn, "schedule not delivered: {why}");
                refused += 1;
                continue;
            }
            let request_id = uuid::Uuid::new_v4().to_string();
            let payload = match &target.input {
                Some(input) => input.clone(),
                None => schedule::scheduled_event(
                    &uuid::Uuid::new_v4().to_string(),
                    &self.account,
                    &self.region,
                    &arn,
                    tick_ms,
                ),
            };
            tracing::info!(rule = %rule.name, target = %target.id, function = %target.arn, %request_id, invoked_by = EVENTS_PRINCIPAL, tick = %super::rfc3339(tick_ms), "schedule fired");
            events.push(self.new_event(&target.arn, payload, request_id));
        }
        let queued = events.len() as u64;
        match db::fire(&self.store, &rule.name, next_ms, tick_ms, events.clone()).await {
            Ok(()) => {
                entry.row.next_due_ms = next_ms;
                entry.row.last_fired_ms = Some(tick_ms);
                entry.invocations += queued;
                entry.failed_invocations += refused;
                self.engine.accept_committed_events(events);
            }
            Err(e) => {
                tracing::error!(rule = %rule.name, error = %e, "could not record a schedule's firing; it will be tried again");
                // Not before a second from now, so a broken store is not hammered.
                entry.row.next_due_ms = Some(entry.row.next_due_ms.unwrap_or(now).max(now + 1000));
            }
        }
    }

    fn new_event(&self, function_arn: &str, payload: String, request_id: String) -> QueuedEvent {
        // A schedule starts a chain of its own.
        let lineage = self.engine.lineage_for_event(&crate::engine::Caller { trace_header: None, access_key_id: None });
        self.engine.new_event(function_arn.to_string(), None, bytes::Bytes::from(payload), request_id, Some(lineage))
    }

    /// Whether EventBridge may invoke the function for this rule: the function
    /// exists and its resource-based policy lets events.amazonaws.com invoke it
    /// with the rule as `aws:SourceArn`.
    fn may_invoke(&self, function_arn: &str, rule_arn: &str) -> Result<(), &'static str> {
        if self.engine.get_function(function_arn, None).is_err() {
            return Err("the function does not exist");
        }
        let ask = Ask { action: "lambda:InvokeFunction".into(), resource: function_arn.to_string() };
        let context = vec![
            ("aws:SourceArn".to_string(), vec![rule_arn.to_string()]),
            ("aws:SourceAccount".to_string(), vec![self.account.clone()]),
        ];
        if self.authorizer.decide_for_service(EVENTS_PRINCIPAL, &ask, &context, now_ms()).is_allowed() {
            Ok(())
        } else {
            Err(
                "the function's resource-based policy does not let events.amazonaws.com invoke it for this rule (add it with `aws lambda add-permission --principal events.amazonaws.com --source-arn RULE_ARN`)",
            )
        }
    }
}
