//! Lambda's retry rules for asynchronous invocations, as a pure state machine.
//!
//! An `Event` invocation is queued and attempted until one terminal outcome:
//! - a function error (unhandled error, timeout, crash, init failure) is retried
//!   at most `MaximumRetryAttempts` times (default 2), after a delay per retry
//!   (Lambda's ~1 and ~2 minutes; a server setting so tests can shorten them);
//! - a throttle or a platform error did not run the function: the event goes
//!   back to the queue with a backoff from 1 s doubling to 5 min, for as long
//!   as the event is younger than `MaximumEventAgeInSeconds` (default 6 h);
//! - an event older than its maximum age is not attempted again.
//!
//! Time is passed in (milliseconds since the epoch); nothing here reads a clock.

use serde::{Deserialize, Serialize};

pub const DEFAULT_MAX_RETRY_ATTEMPTS: u32 = 2;
pub const MAX_RETRY_ATTEMPTS: u32 = 2;
pub const MIN_EVENT_AGE_S: u32 = 60;
pub const MAX_EVENT_AGE_S: u32 = 21_600;
/// Lambda's function-error retry delays: about 1 minute, then about 2.
pub const DEFAULT_RETRY_DELAYS_MS: [u64; 2] = [60_000, 120_000];
const THROTTLE_BACKOFF_FIRST_MS: u64 = 1_000;
const THROTTLE_BACKOFF_MAX_MS: u64 = 300_000;

/// How one function (version or alias) retries its asynchronous events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_retry_attempts: u32,
    pub max_event_age_ms: u64,
    /// The wait before the n-th retry after a function error (the last entry repeats).
    pub retry_delays_ms: Vec<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retry_attempts: DEFAULT_MAX_RETRY_ATTEMPTS,
            max_event_age_ms: u64::from(MAX_EVENT_AGE_S) * 1000,
            retry_delays_ms: DEFAULT_RETRY_DELAYS_MS.to_vec(),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    /// The function ran and failed: unhandled error, timeout, crash, init failure.
    FunctionError,
    /// The function did not run: concurrency limit reached.
    Throttled,
    /// The function did not run: Kumo could not start or reach it.
    ServiceError,
}

/// The `condition` of Lambda's destination record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
    /// Stopped before it ran: the event went past Lambda's recursion threshold.
    RecursiveInvocationDetected,
}

impl Condition {
    pub fn wire_name(self) -> &'static str {
        match self {
            Condition::Success => "Success",
            Condition::RetriesExhausted => "RetriesExhausted",
            Condition::EventAgeExceeded => "EventAgeExceeded",
            Condition::RecursiveInvocationDetected => "RecursiveInvocationDetected",
        }
    }
}

/// What happens to the event next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Attempt again at this time.
    RetryAt(i64),
    /// No more attempts.
    Finished(Condition),
}

/// Where one event stands. Stored with the event, so a restart resumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventProgress {
    pub enqueued_ms: i64,
    /// Invocations that ran (Lambda's `approximateInvokeCount`).
    pub attempts: u32,
    pub function_errors: u32,
    /// Attempts that did not run (throttles, platform errors), for the backoff.
    pub deferrals: u32,
}

impl EventProgress {
    pub fn new(enqueued_ms: i64) -> EventProgress {
        EventProgress { enqueued_ms, attempts: 0, function_errors: 0, deferrals: 0 }
    }

    fn too_old_at(&self, at_ms: i64, policy: &RetryPolicy) -> bool {
        at_ms.saturating_sub(self.enqueued_ms) > i64::try_from(policy.max_event_age_ms).unwrap_or(i64::MAX)
    }

    /// Before an attempt: `None` to go ahead, or the terminal condition if the
    /// event has outlived its maximum age.
    pub fn before_attempt(&self, now_ms: i64, policy: &RetryPolicy) -> Option<Condition> {
        self.too_old_at(now_ms, policy).then_some(Condition::EventAgeExceeded)
    }

    /// Records an attempt's outcome and decides what comes next.
    pub fn record(&mut self, outcome: Outcome, now_ms: i64, policy: &RetryPolicy) -> Decision {
        let wait_ms = match outcome {
            Outcome::Success => {
                self.attempts += 1;
                return Decision::Finished(Condition::Success);
            }
            Outcome::FunctionError => {
                self.attempts += 1;
                self.function_errors += 1;
                if self.function_errors > policy.max_retry_attempts {
                    return Decision::Finished(Condition::RetriesExhausted);
                }
                let index = (self.function_errors as usize - 1).min(policy.retry_delays_ms.len().saturating_sub(1));
                policy.retry_delays_ms.get(index).copied().unwrap_or(0)
            }
            Outcome::Throttled | Outcome::ServiceError => {
                self.deferrals += 1;
                let doublings = (self.deferrals - 1).min(20);
                (THROTTLE_BACKOFF_FIRST_MS << doublings).min(THROTTLE_BACKOFF_MAX_MS)
            }
        };
        let at = now_ms.saturating_add(i64::try_from(wait_ms).unwrap_or(i64::MAX));
        if self.too_old_at(at, policy) {
            return Decision::Finished(Condition::EventAgeExceeded);
        }
        Decision::RetryAt(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy(retries: u32, age_s: u64) -> RetryPolicy {
        RetryPolicy { max_retry_attempts: retries, max_event_age_ms: age_s * 1000, ..RetryPolicy::default() }
    }

    #[test]
    fn an_always_failing_function_gets_three_attempts_a_minute_then_two_apart() {
        let p = RetryPolicy::default();
        let mut e = EventProgress::new(0);
        assert_eq!(e.record(Outcome::FunctionError, 1_000, &p), Decision::RetryAt(61_000));
        assert_eq!(e.record(Outcome::FunctionError, 62_000, &p), Decision::RetryAt(182_000));
        assert_eq!(e.record(Outcome::FunctionError, 183_000, &p), Decision::Finished(Condition::RetriesExhausted));
        assert_eq!((e.attempts, e.function_errors), (3, 3));
    }

    #[test]
    fn zero_retries_means_one_attempt() {
        let mut e = EventProgress::new(0);
        assert_eq!(
            e.record(Outcome::FunctionError, 10, &policy(0, 3600)),
            Decision::Finished(Condition::RetriesExhausted)
        );
    }

    #[test]
    fn a_retry_past_the_maximum_age_ends_the_event() {
        let mut e = EventProgress::new(0);
        // Age 60 s: the retry a minute after a failure at 30 s would be at 90 s.
        assert_eq!(
            e.record(Outcome::FunctionError, 30_000, &policy(2, 60)),
            Decision::Finished(Condition::EventAgeExceeded)
        );
        assert_eq!(EventProgress::new(0).before_attempt(60_001, &policy(2, 60)), Some(Condition::EventAgeExceeded));
        assert_eq!(EventProgress::new(0).before_attempt(60_000, &policy(2, 60)), None);
    }

    #[test]
    fn throttles_back_off_from_one_second_to_five_minutes_without_using_retries() {
        let p = RetryPolicy::default();
        let mut e = EventProgress::new(0);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let Decision::RetryAt(at) = e.record(Outcome::Throttled, now, &p) else { panic!("throttles are retried") };
            waits.push(at - now);
            now = at;
        }
        assert_eq!(&waits[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(waits[11], 300_000);
        assert_eq!((e.attempts, e.function_errors), (0, 0));
        assert_eq!(e.record(Outcome::Success, now, &p), Decision::Finished(Condition::Success));
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Success),
            Just(Outcome::FunctionError),
            Just(Outcome::Throttled),
            Just(Outcome::ServiceError)
        ]
    }

    proptest! {
        /// Over any history: never more than MaximumRetryAttempts+1 attempts
        /// that end in a function error, no attempt after the maximum age, retries
        /// never in the past, and exactly one terminal outcome.
        #[test]
        fn every_history_ends_once_within_the_limits(
            retries in 0u32..=2,
            age_s in 60u64..=21_600,
            delays in proptest::collection::vec(0u64..200_000, 1..3),
            history in proptest::collection::vec((outcome(), 0i64..400_000), 1..60),
        ) {
            let p = RetryPolicy { max_retry_attempts: retries, max_event_age_ms: age_s * 1000, retry_delays_ms: delays };
            let mut e = EventProgress::new(1_000);
            let mut now = 1_000;
            let mut terminal = None;
            for (outcome, late_by) in history {
                if let Some(condition) = e.before_attempt(now, &p) {
                    terminal = Some(condition);
                    break;
                }
                prop_assert!(now - e.enqueued_ms <= (age_s * 1000) as i64, "attempted an expired event");
                match e.record(outcome, now, &p) {
                    Decision::RetryAt(at) => {
                        prop_assert!(at >= now);
                        now = at + late_by;
                    }
                    Decision::Finished(condition) => {
                        terminal = Some(condition);
                        break;
                    }
                }
            }
            prop_assert!(e.function_errors <= retries + 1);
            if e.function_errors == retries + 1 {
                prop_assert_eq!(terminal, Some(Condition::RetriesExhausted));
            }
            if terminal == Some(Condition::Success) {
                prop_assert!(e.attempts >= 1 && e.function_errors <= retries);
            }
        }
    }
}
