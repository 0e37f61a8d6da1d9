//! EventBridge schedules: the `rate(...)` and `cron(...)` syntax AWS accepts,
//! rule names and states, the scheduled event's JSON, and which tick fires.
//!
//! Evaluating a cron expression needs a calendar library, which the core
//! does not take; so this module validates cron expressions field by field
//! (AWS's grammar is stricter than most cron dialects) and the adapter
//! computes the ticks. Rate schedules are plain arithmetic and live here.

use std::fmt;

/// AWS's answer to every malformed schedule expression.
pub const INVALID_EXPRESSION: &str = "Parameter ScheduleExpression is not valid.";

/// A schedule expression that is not one AWS accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{INVALID_EXPRESSION}")]
pub struct InvalidExpression;

/// The unit of a `rate(...)` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    /// How many minutes one unit is.
    pub fn minutes(self) -> u64 {
        match self {
            RateUnit::Minute => 1,
            RateUnit::Hour => 60,
            RateUnit::Day => 1440,
        }
    }
}

/// A parsed `ScheduleExpression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expression {
    /// `rate(N unit)`: every N units, counted from the rule's creation.
    Rate { value: u64, unit: RateUnit },
    /// `cron(min hour day-of-month month day-of-week year)`, in UTC; the six
    /// fields as written (validated).
    Cron(Vec<String>),
}

impl Expression {
    /// Parses an expression in AWS's syntax, refusing what AWS refuses.
    pub fn parse(text: &str) -> Result<Expression, InvalidExpression> {
        if let Some(inner) = text.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(inner);
        }
        if let Some(inner) = text.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return parse_cron(inner);
        }
        Err(InvalidExpression)
    }

    /// The period of a rate schedule in milliseconds, when a minute lasts
    /// `minute_ms` (60,000 normally; shorter in tests). `None` for cron.
    pub fn rate_period_ms(&self, minute_ms: u64) -> Option<u64> {
        match self {
            Expression::Rate { value, unit } => Some(value.saturating_mul(unit.minutes()).saturating_mul(minute_ms)),
            Expression::Cron(_) => None,
        }
    }

    /// The cron fields as a 7-field pattern with seconds (`0 ` prepended), the
    /// form a seconds-and-years cron library evaluates.
    pub fn cron_with_seconds(&self) -> Option<String> {
        match self {
            Expression::Cron(fields) => Some(format!("0 {}", fields.join(" "))),
            Expression::Rate { .. } => None,
        }
    }
}

fn parse_rate(inner: &str) -> Result<Expression, InvalidExpression> {
    let (value, unit) = inner.split_once(' ').ok_or(InvalidExpression)?;
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidExpression);
    }
    let value: u64 = value.parse().map_err(|_| InvalidExpression)?;
    // AWS: the singular for 1, the plural for anything else.
    let (unit, plural) = match unit {
        "minute" => (RateUnit::Minute, false),
        "minutes" => (RateUnit::Minute, true),
        "hour" => (RateUnit::Hour, false),
        "hours" => (RateUnit::Hour, true),
        "day" => (RateUnit::Day, false),
        "days" => (RateUnit::Day, true),
        _ => return Err(InvalidExpression),
    };
    if value == 0 || plural == (value == 1) {
        return Err(InvalidExpression);
    }
    Ok(Expression::Rate { value, unit })
}

/// What one cron field may hold.
struct Field {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    question: bool,
    /// Day-of-month's `L`, `LW`, `15W`.
    dom_specials: bool,
    /// Day-of-week's `6L`, `FRI#3`, `L`.
    dow_specials: bool,
}

const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 6] = [
    Field { min: 0, max: 59, names: &[], question: false, dom_specials: false, dow_specials: false },
    Field { min: 0, max: 23, names: &[], question: false, dom_specials: false, dow_specials: false },
    Field { min: 1, max: 31, names: &[], question: true, dom_specials: true, dow_specials: false },
    Field { min: 1, max: 12, names: MONTHS, question: false, dom_specials: false, dow_specials: false },
    Field { min: 1, max: 7, names: DAYS, question: true, dom_specials: false, dow_specials: true },
    Field { min: 1970, max: 2199, names: &[], question: false, dom_specials: false, dow_specials: false },
];

fn parse_cron(inner: &str) -> Result<Expression, InvalidExpression> {
    let fields: Vec<&str> = inner.split(' ').collect();
    if fields.len() != 6 {
        return Err(InvalidExpression);
    }
    // Day-of-month and day-of-week cannot both be given: exactly one is `?`.
    if (fields[2] == "?") == (fields[4] == "?") {
        return Err(InvalidExpression);
    }
    for (text, field) in fields.iter().zip(FIELDS.iter()) {
        if !field_ok(text, field) {
            return Err(InvalidExpression);
        }
    }
    Ok(Expression::Cron(fields.iter().map(|f| f.to_ascii_uppercase()).collect()))
}

fn field_ok(text: &str, f: &Field) -> bool {
    if text == "?" {
        return f.question;
    }
    !text.is_empty() && text.split(',').all(|item| item_ok(item, f))
}

fn value_of(text: &str, f: &Field) -> Option<u32> {
    let upper = text.to_ascii_uppercase();
    if let Some(i) = f.names.iter().position(|n| *n == upper) {
        return Some(f.min + i as u32);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
        return None;
    }
    text.parse().ok().filter(|v| (f.min..=f.max).contains(v))
}

fn item_ok(item: &str, f: &Field) -> bool {
    let upper = item.to_ascii_uppercase();
    if f.dom_specials {
        if upper == "L" || upper == "LW" {
            return true;
        }
        if let Some(day) = upper.strip_suffix('W') {
            return value_of(day, f).is_some();
        }
    }
    if f.dow_specials {
        if upper == "L" {
            return true;
        }
        if let Some(day) = upper.strip_suffix('L') {
            return value_of(day, f).is_some();
        }
        if let Some((day, nth)) = upper.split_once('#') {
            return value_of(day, f).is_some() && matches!(nth, "1" | "2" | "3" | "4" | "5");
        }
    }
    let (range, step) = match item.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (item, None),
    };
    if let Some(step) = step {
        let span = f.max - f.min;
        let ok = !step.is_empty()
            && step.len() <= 4
            && step.bytes().all(|b| b.is_ascii_digit())
            && step.parse::<u32>().is_ok_and(|s| s >= 1 && s <= span.max(1));
        if !ok {
            return false;
        }
    }
    if range == "*" {
        return true;
    }
    match range.split_once('-') {
        Some((a, b)) => value_of(a, f).is_some() && value_of(b, f).is_some(),
        None => value_of(range, f).is_some(),
    }
}

/// A rule's state (`ENABLED` or `DISABLED`; only enabled rules fire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    Enabled,
    Disabled,
}

impl RuleState {
    pub fn parse(s: &str) -> Option<RuleState> {
        match s {
            "ENABLED" => Some(RuleState::Enabled),
            "DISABLED" => Some(RuleState::Disabled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuleState::Enabled => "ENABLED",
            RuleState::Disabled => "DISABLED",
        }
    }
}

impl fmt::Display for RuleState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// EventBridge's rule-name pattern: 1 to 64 of `[.\-_A-Za-z0-9]`.
pub fn is_rule_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// A target id: 1 to 64 of `[.\-_A-Za-z0-9]`.
pub fn is_target_id(s: &str) -> bool {
    is_rule_name(s)
}

/// The ARN of a rule on the default event bus.
pub fn rule_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:events:{region}:{account}:rule/{name}")
}

/// The first tick of a rate schedule anchored at `anchor_ms` strictly after
/// `after_ms`: anchor + k·period with k ≥ 1 (AWS fires a new rate rule one
/// period after its creation, not at once).
pub fn next_rate_tick(anchor_ms: i64, period_ms: u64, after_ms: i64) -> i64 {
    let period = period_ms.max(1) as i64;
    if after_ms < anchor_ms {
        return anchor_ms.saturating_add(period);
    }
    let k = (after_ms - anchor_ms) / period + 1;
    anchor_ms.saturating_add(k.saturating_mul(period))
}

/// The last tick of a rate schedule at or before `at_ms` (`None` before the first).
pub fn last_rate_tick(anchor_ms: i64, period_ms: u64, at_ms: i64) -> Option<i64> {
    let period = period_ms.max(1) as i64;
    let k = (at_ms - anchor_ms).div_euclid(period);
    (k >= 1).then(|| anchor_ms + k * period)
}

/// What the scheduler does with one rule when it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firing {
    /// The rule's tick has not come yet.
    NotDue,
    /// Fire once for `tick_ms`, the latest due tick (a long outage fires once,
    /// not once per missed tick); the rule's next tick becomes `next_ms`
    /// (`None`: the schedule has no more ticks).
    Fire { tick_ms: i64, next_ms: Option<i64> },
}

/// Decides whether a rule whose next tick is `due_ms` fires at `now_ms`.
/// `latest_tick` is the schedule's last tick at or before a time, `next_tick`
/// its first tick strictly after one. A tick fires at most once because the
/// stored tick moves past `now_ms` in the same step.
pub fn decide(
    due_ms: i64,
    now_ms: i64,
    latest_tick: impl FnOnce(i64) -> Option<i64>,
    next_tick: impl FnOnce(i64) -> Option<i64>,
) -> Firing {
    if now_ms < due_ms {
        return Firing::NotDue;
    }
    let tick_ms = latest_tick(now_ms).map_or(due_ms, |t| t.max(due_ms));
    let next_ms = next_tick(now_ms).filter(|n| *n > now_ms);
    Firing::Fire { tick_ms, next_ms }
}

/// EventBridge's scheduled event, in AWS's key order; `time` is the tick's,
/// in whole seconds.
pub fn scheduled_event(id: &str, account: &str, region: &str, rule_arn: &str, tick_ms: i64) -> String {
    let p = crate::time::utc_parts(tick_ms);
    let time = format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", p.year, p.month, p.day, p.hour, p.minute, p.second);
    let s = |v: &str| serde_json::Value::String(v.to_string()).to_string();
    format!(
        "{{\"version\":\"0\",\"id\":{},\"detail-type\":\"Scheduled Event\",\"source\":\"aws.events\",\"account\":{},\"time\":{},\"region\":{},\"resources\":[{}],\"detail\":{{}}}}",
        s(id),
        s(account),
        s(&time),
        s(region),
        s(rule_arn)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_awss_grammar() {
        assert_eq!(Expression::parse("rate(5 minutes)"), Ok(Expression::Rate { value: 5, unit: RateUnit::Minute }));
        assert_eq!(Expression::parse("rate(1 minute)"), Ok(Expression::Rate { value: 1, unit: RateUnit::Minute }));
        assert_eq!(Expression::parse("rate(1 hour)"), Ok(Expression::Rate { value: 1, unit: RateUnit::Hour }));
        assert_eq!(Expression::parse("rate(7 days)"), Ok(Expression::Rate { value: 7, unit: RateUnit::Day }));
        for bad in [
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(5 seconds)",
            "rate(5  minutes)",
            "rate(five minutes)",
            "rate(5 minutes",
            "rate()",
            "RATE(5 minutes)",
            "every 5 minutes",
            "",
        ] {
            assert_eq!(Expression::parse(bad), Err(InvalidExpression), "{bad}");
        }
        let r = Expression::parse("rate(2 hours)").unwrap_or(Expression::Cron(vec![]));
        assert_eq!(r.rate_period_ms(60_000), Some(7_200_000));
        assert_eq!(r.rate_period_ms(1_000), Some(120_000));
    }

    #[test]
    fn crons_follow_awss_grammar() {
        for good in [
            "cron(0 12 * * ? *)",
            "cron(15 10 ? * 6L 2026-2027)",
            "cron(0/15 * ? * MON-FRI *)",
            "cron(0 18 ? * MON-FRI *)",
            "cron(0 8 1 * ? *)",
            "cron(0/10 * ? * MON-FRI *)",
            "cron(0/5 8-17 ? * MON-FRI *)",
            "cron(0 9 ? * 2#1 *)",
            "cron(0 0 L * ? *)",
            "cron(0 0 15W * ? *)",
            "cron(0 0 LW * ? *)",
            "cron(0,30 1,2 ? JAN-MAR,DEC SUN *)",
            "cron(0 0 ? * L *)",
            "cron(59 23 31 12 ? 2199)",
        ] {
            assert!(Expression::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "cron(0 12 * * *)",
            "cron(* * * * * *)",
            "cron(0 12 ? * ? *)",
            "cron(0 12 1 * 1 *)",
            "cron(60 12 * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 12 0 * ? *)",
            "cron(0 12 * 13 ? *)",
            "cron(0 12 ? * 8 *)",
            "cron(0 12 ? * 0 *)",
            "cron(0 12 * * ? 1969)",
            "cron(*/60 * * * ? *)",
            "cron(0/5, 9-18, ?, *, MON-FRI, *)",
            "cron(7 20 * * 1-7 *)",
            "cron(0 12 ? * 2#6 *)",
            "cron(0 12 * * ? * *)",
            "cron(0  12 * * ? *)",
            "cron(0 12 * FOO ? *)",
            "cron(0 12 ? * -1 *)",
        ] {
            assert_eq!(Expression::parse(bad), Err(InvalidExpression), "{bad}");
        }
        let c = Expression::parse("cron(15 10 ? * 6l 2026-2027)").unwrap_or(Expression::Cron(vec![]));
        assert_eq!(c.cron_with_seconds().as_deref(), Some("0 15 10 ? * 6L 2026-2027"));
    }

    #[test]
    fn rate_ticks_are_anchored_at_creation() {
        // Created at t=1000 with a 60 s period: ticks at 61000, 121000, ...
        assert_eq!(next_rate_tick(1_000, 60_000, 1_000), 61_000);
        assert_eq!(next_rate_tick(1_000, 60_000, 60_999), 61_000);
        assert_eq!(next_rate_tick(1_000, 60_000, 61_000), 121_000);
        assert_eq!(next_rate_tick(1_000, 60_000, 0), 61_000);
        assert_eq!(last_rate_tick(1_000, 60_000, 60_999), None);
        assert_eq!(last_rate_tick(1_000, 60_000, 61_000), Some(61_000));
        assert_eq!(last_rate_tick(1_000, 60_000, 400_000), Some(361_000));
    }

    #[test]
    fn a_missed_schedule_fires_once_for_its_latest_tick() {
        let (anchor, period) = (0, 60_000);
        let latest = |t| last_rate_tick(anchor, period, t);
        let next = |t| Some(next_rate_tick(anchor, period, t));
        assert_eq!(decide(60_000, 59_999, latest, next), Firing::NotDue);
        assert_eq!(decide(60_000, 60_000, latest, next), Firing::Fire { tick_ms: 60_000, next_ms: Some(120_000) });
        assert_eq!(decide(60_000, 60_500, latest, next), Firing::Fire { tick_ms: 60_000, next_ms: Some(120_000) });
        // Down for ten periods: one firing, for the latest tick, and the next
        // tick is in the future, so nothing fires twice.
        assert_eq!(decide(60_000, 605_000, latest, next), Firing::Fire { tick_ms: 600_000, next_ms: Some(660_000) });
        // A schedule with no more ticks (a cron whose years are over).
        assert_eq!(decide(60_000, 61_000, |_| None, |_| None), Firing::Fire { tick_ms: 60_000, next_ms: None });
    }

    #[test]
    fn the_scheduled_event_has_eventbridges_shape() {
        let arn = rule_arn("us-east-1", "123456789012", "my-scheduled-rule");
        assert_eq!(arn, "arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule");
        let event = scheduled_event(
            "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "123456789012",
            "us-east-1",
            &arn,
            1_444_323_186_500,
        );
        assert_eq!(
            event,
            r#"{"version":"0","id":"53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa","detail-type":"Scheduled Event","source":"aws.events","account":"123456789012","time":"2015-10-08T16:53:06Z","region":"us-east-1","resources":["arn:aws:events:us-east-1:123456789012:rule/my-scheduled-rule"],"detail":{}}"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(&event).is_ok());
    }

    #[test]
    fn names_and_states() {
        assert!(is_rule_name("kumo-tf-tick") && is_rule_name("a.b_c-1"));
        assert!(!is_rule_name("") && !is_rule_name("a b") && !is_rule_name("a/b") && !is_rule_name(&"x".repeat(65)));
        assert_eq!(RuleState::parse("ENABLED"), Some(RuleState::Enabled));
        assert_eq!(RuleState::parse("enabled"), None);
        assert_eq!(RuleState::Disabled.to_string(), "DISABLED");
    }
}
