//! EventBridge rules on the default event bus, and the scheduler that fires
//! their schedules into the durable async queue.
//!
//! Every change goes to the database first, then to the in-memory table,
//! under one lock that the scheduler takes too: a firing never races a
//! DisableRule or a PutTargets. Rules with an `EventPattern` are kept and
//! described but never fire (Kumo has no event sources on a bus yet).

mod clock;
mod db;
mod fire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kumo_core::schedule::{self, Expression, RuleState};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, Notify};

use crate::api::authorize::Authorizer;
use crate::engine::{Engine, now_ms};
use crate::store::sqlite::SqliteStore;

pub use clock::{Schedule, rfc3339};

/// The most targets one rule may have (EventBridge's quota).
pub const MAX_TARGETS: usize = 5;

/// A rule as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub state: String,
    pub created_ms: i64,
    /// When the rule got its schedule expression: rate schedules count from here.
    pub anchor_ms: i64,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// A rule's target: a Lambda function, with the event it gets (Input verbatim, or the scheduled event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub arn: String,
    pub input: Option<String>,
}

/// An EventBridge error: the `__type` and message, always a client fault
/// (400) but for `InternalException` (500).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EventsError {
    pub code: &'static str,
    pub message: String,
}

impl EventsError {
    pub fn validation(message: impl Into<String>) -> EventsError {
        EventsError { code: "ValidationException", message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> EventsError {
        EventsError { code: "ResourceNotFoundException", message: message.into() }
    }

    pub fn status(&self) -> u16 {
        if self.code == "InternalException" { 500 } else { 400 }
    }

    fn internal(e: &crate::store::StoreError) -> EventsError {
        tracing::error!(error = %e, "storing an EventBridge rule failed");
        EventsError { code: "InternalException", message: "The rule could not be stored.".into() }
    }
}

/// A rule in memory: what is stored, its compiled schedule and its counters.
struct Entry {
    row: db::RuleRow,
    schedule: Option<Schedule>,
    /// Targets invoked (events queued) and refused (no permission, no function), since start.
    invocations: u64,
    failed_invocations: u64,
}

/// A rule as the API and `kumo schedule ls` see it.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub rule: Rule,
    pub arn: String,
    pub next_fire_ms: Option<i64>,
    pub last_fired_ms: Option<i64>,
    pub invocations: u64,
    pub failed_invocations: u64,
}

/// PutRule's input.
#[derive(Debug, Default, Clone)]
pub struct PutRule {
    pub name: String,
    pub schedule_expression: Option<String>,
    pub event_pattern: Option<String>,
    pub description: Option<String>,
    pub role_arn: Option<String>,
    pub state: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub struct Schedules {
    store: Arc<SqliteStore>,
    engine: Arc<Engine>,
    authorizer: Arc<Authorizer>,
    region: String,
    account: String,
    /// How long a minute of a `rate()` expression lasts (one minute, but in tests).
    minute_ms: u64,
    rules: Mutex<HashMap<String, Entry>>,
    wake: Notify,
}

impl Schedules {
    /// Loads the stored rules and starts the scheduler.
    pub async fn start(
        store: Arc<SqliteStore>,
        engine: Arc<Engine>,
        authorizer: Arc<Authorizer>,
        minute: Duration,
    ) -> Result<Arc<Schedules>, crate::store::StoreError> {
        let scope = engine.config().scope.clone();
        let minute_ms = (minute.as_millis() as u64).max(1);
        let mut rules = HashMap::new();
        for row in db::load(&store).await? {
            let schedule = compile(&row.rule, minute_ms);
            rules.insert(row.rule.name.clone(), Entry { row, schedule, invocations: 0, failed_invocations: 0 });
        }
        let schedules = Arc::new(Schedules {
            store,
            engine,
            authorizer,
            region: scope.region,
            account: scope.account,
            minute_ms,
            rules: Mutex::new(rules),
            wake: Notify::new(),
        });
        let runner = schedules.clone();
        tokio::spawn(async move { runner.run().await });
        Ok(schedules)
    }

    pub fn rule_arn(&self, name: &str) -> String {
        schedule::rule_arn(&self.region, &self.account, name)
    }

    /// Refuses every event bus but the default one (by name or ARN).
    pub fn check_bus(&self, bus: Option<&str>) -> Result<(), EventsError> {
        let default_arn = format!("arn:aws:events:{}:{}:event-bus/default", self.region, self.account);
        match bus {
            None | Some("default") => Ok(()),
            Some(b) if b == default_arn => Ok(()),
            Some(b) => Err(EventsError::not_found(format!("Event bus {b} does not exist."))),
        }
    }

    fn missing(name: &str) -> EventsError {
        EventsError::not_found(format!("Rule {name} does not exist on EventBus default."))
    }

    fn view(&self, e: &Entry) -> RuleView {
        RuleView {
            rule: e.row.rule.clone(),
            arn: self.rule_arn(&e.row.rule.name),
            next_fire_ms: e.row.next_due_ms.filter(|_| e.row.rule.state == RuleState::Enabled.as_str()),
            last_fired_ms: e.row.last_fired_ms,
            invocations: e.invocations,
            failed_invocations: e.failed_invocations,
        }
    }

    /// PutRule: creates or updates a rule; returns its ARN.
    pub async fn put_rule(&self, input: PutRule) -> Result<String, EventsError> {
        if !schedule::is_rule_name(&input.name) {
            return Err(EventsError::validation(format!(
                "1 validation error detected: Value '{}' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+",
                input.name
            )));
        }
        if input.schedule_expression.is_none() && input.event_pattern.is_none() {
            return Err(EventsError::validation("Parameter(s) EventPattern or ScheduleExpression must be specified."));
        }
        if let Some(expr) = &input.schedule_expression {
            let parsed = Expression::parse(expr).map_err(|e| EventsError::validation(e.to_string()))?;
            // croner has the last word on what it can evaluate.
            Schedule::new(&parsed, 0, self.minute_ms).map_err(|e| EventsError::validation(e.to_string()))?;
        }
        if let Some(pattern) = &input.event_pattern {
            let valid = serde_json::from_str::<serde_json::Value>(pattern).is_ok_and(|v| v.is_object());
            if !valid {
                return Err(EventsError {
                    code: "InvalidEventPatternException",
                    message: "Event pattern is not valid. Reason: it must be a JSON object.".into(),
                });
            }
        }
        let state = match input.state.as_deref() {
            None => None,
            Some(s) => Some(RuleState::parse(s).ok_or_else(|| {
                EventsError::validation(format!(
                    "1 validation error detected: Value '{s}' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED] (Kumo has no CloudTrail events)"
                ))
            })?),
        };
        let now = now_ms();
        let mut rules = self.rules.lock().await;
        let old = rules.get(&input.name).map(|e| e.row.clone());
        let mut row = old.clone().unwrap_or_else(|| db::RuleRow {
            rule: Rule {
                name: input.name.clone(),
                schedule_expression: None,
                event_pattern: None,
                description: None,
                role_arn: None,
                state: RuleState::Enabled.as_str().into(),
                created_ms: now,
                anchor_ms: now,
                tags: input.tags.iter().cloned().collect(),
                targets: Vec::new(),
            },
            next_due_ms: None,
            last_fired_ms: None,
        });
        let expression_changed = row.rule.schedule_expression != input.schedule_expression;
        let r = &mut row.rule;
        r.schedule_expression = input.schedule_expression;
        r.event_pattern = input.event_pattern;
        r.description = input.description;
        r.role_arn = input.role_arn;
        // As on AWS, an update without a State keeps the rule's state.
        let state_changed = state.is_some_and(|s| s.as_str() != r.state);
        if let Some(s) = state {
            r.state = s.as_str().into();
        }
        if old.is_some() && expression_changed {
            r.anchor_ms = now;
        }
        let schedule = compile(&row.rule, self.minute_ms);
        if old.is_none() || expression_changed || state_changed {
            row.next_due_ms = first_due(&row.rule, schedule.as_ref(), now);
        }
        db::put(&self.store, &row).await.map_err(|e| EventsError::internal(&e))?;
        let (invocations, failed_invocations) =
            rules.get(&input.name).map_or((0, 0), |e| (e.invocations, e.failed_invocations));
        rules.insert(input.name.clone(), Entry { row, schedule, invocations, failed_invocations });
        drop(rules);
        self.wake.notify_one();
        Ok(self.rule_arn(&input.name))
    }

    pub async fn describe_rule(&self, name: &str) -> Result<RuleView, EventsError> {
        let rules = self.rules.lock().await;
        rules.get(name).map(|e| self.view(e)).ok_or_else(|| Self::missing(name))
    }

    /// Every rule (with `prefix`), by name.
    pub async fn list_rules(&self, prefix: Option<&str>) -> Vec<RuleView> {
        let rules = self.rules.lock().await;
        let mut out: Vec<RuleView> = rules
            .values()
            .filter(|e| prefix.is_none_or(|p| e.row.rule.name.starts_with(p)))
            .map(|e| self.view(e))
            .collect();
        out.sort_by(|a, b| a.rule.name.cmp(&b.rule.name));
        out
    }

    /// EnableRule / DisableRule. Enabling starts from the next tick after now:
    /// ticks missed while disabled never fire.
    pub async fn set_state(&self, name: &str, state: RuleState) -> Result<(), EventsError> {
        let mut rules = self.rules.lock().await;
        let entry = rules.get_mut(name).ok_or_else(|| Self::missing(name))?;
        if entry.row.rule.state == state.as_str() {
            return Ok(());
        }
        let mut row = entry.row.clone();
        row.rule.state = state.as_str().into();
        row.next_due_ms = first_due(&row.rule, entry.schedule.as_ref(), now_ms());
        db::put(&self.store, &row).await.map_err(|e| EventsError::internal(&e))?;
        entry.row = row;
        drop(rules);
        self.wake.notify_one();
        Ok(())
    }

    /// DeleteRule: refused while the rule has targets; deleting a missing rule succeeds, as on AWS.
    pub async fn delete_rule(&self, name: &str, force: bool) -> Result<(), EventsError> {
        let mut rules = self.rules.lock().await;
        let Some(entry) = rules.get(name) else { return Ok(()) };
        if !entry.row.rule.targets.is_empty() && !force {
            return Err(EventsError::validation("Rule can't be deleted since it has targets."));
        }
        db::delete(&self.store, name).await.map_err(|e| EventsError::internal(&e))?;
        rules.remove(name);
        Ok(())
    }

    /// PutTargets: adds or replaces targets by id. Returns the failed entries
    /// (id, error code, message); the others are stored.
    pub async fn put_targets(
        &self,
        name: &str,
        targets: Vec<Target>,
        failed: Vec<(String, String, String)>,
    ) -> Result<Vec<(String, String, String)>, EventsError> {
        let mut rules = self.rules.lock().await;
        let entry = rules.get_mut(name).ok_or_else(|| Self::missing(name))?;
        let mut row = entry.row.clone();
        for t in targets {
            match row.rule.targets.iter_mut().find(|old| old.id == t.id) {
                Some(old) => *old = t,
                None => row.rule.targets.push(t),
            }
        }
        if row.rule.targets.len() > MAX_TARGETS {
            return Err(EventsError {
                code: "LimitExceededException",
                message: format!(
                    "The requested resource exceeds the maximum number allowed. A rule can have at most {MAX_TARGETS} targets."
                ),
            });
        }
        db::put(&self.store, &row).await.map_err(|e| EventsError::internal(&e))?;
        entry.row = row;
        Ok(failed)
    }

    /// RemoveTargets: ids the rule does not have are ignored.
    pub async fn remove_targets(&self, name: &str, ids: &[String]) -> Result<(), EventsError> {
        let mut rules = self.rules.lock().await;
        let entry = rules.get_mut(name).ok_or_else(|| Self::missing(name))?;
        let mut row = entry.row.clone();
        row.rule.targets.retain(|t| !ids.contains(&t.id));
        db::put(&self.store, &row).await.map_err(|e| EventsError::internal(&e))?;
        entry.row = row;
        Ok(())
    }

    pub async fn targets(&self, name: &str) -> Result<Vec<Target>, EventsError> {
        let rules = self.rules.lock().await;
        rules.get(name).map(|e| e.row.rule.targets.clone()).ok_or_else(|| Self::missing(name))
    }

    /// The rule an ARN names (tags are kept on rules only).
    fn rule_of_arn(&self, arn: &str) -> Result<String, EventsError> {
        let prefix = format!("arn:aws:events:{}:{}:rule/", self.region, self.account);
        arn.strip_prefix(&prefix)
            .filter(|n| schedule::is_rule_name(n))
            .map(str::to_string)
            .ok_or_else(|| EventsError::not_found(format!("Rule {arn} does not exist on EventBus default.")))
    }

    pub async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>, EventsError> {
        let name = self.rule_of_arn(arn)?;
        let rules = self.rules.lock().await;
        rules.get(&name).map(|e| e.row.rule.tags.clone()).ok_or_else(|| Self::missing(&name))
    }

    /// TagResource (`add`) and UntagResource (`remove`).
    pub async fn change_tags(
        &self,
        arn: &str,
        add: Vec<(String, String)>,
        remove: &[String],
    ) -> Result<(), EventsError> {
        let name = self.rule_of_arn(arn)?;
        let mut rules = self.rules.lock().await;
        let entry = rules.get_mut(&name).ok_or_else(|| Self::missing(&name))?;
        let mut row = entry.row.clone();
        row.rule.tags.extend(add);
        row.rule.tags.retain(|k, _| !remove.contains(k));
        db::put(&self.store, &row).await.map_err(|e| EventsError::internal(&e))?;
        entry.row = row;
        Ok(())
    }
}

/// The compiled schedule of a rule with a (valid) expression.
fn compile(rule: &Rule, minute_ms: u64) -> Option<Schedule> {
    let expr = Expression::parse(rule.schedule_expression.as_deref()?).ok()?;
    Schedule::new(&expr, rule.anchor_ms, minute_ms).ok()
}

/// The first tick an enabled schedule fires after `now_ms` (`None` when it never will).
fn first_due(rule: &Rule, schedule: Option<&Schedule>, now_ms: i64) -> Option<i64> {
    if rule.state != RuleState::Enabled.as_str() {
        return None;
    }
    schedule?.next_after(now_ms)
}
