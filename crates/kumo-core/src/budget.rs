//! Monthly cost budgets: thresholds, forecasts and throttling, decided purely.
//!
//! Amounts are micro-USD (1e-6 USD), as produced by [`crate::pricing`]. The caller supplies
//! the month-to-date spend for the budget's scope and the current time; the per-period
//! memory of which alerts already fired lives in [`BudgetState`], which the caller persists.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pricing::{CostReport, format_micro_usd};
use crate::time::{format_month, month_of, month_start_ms, next_month_start_ms};

/// No forecast during the first hour of a period: the projection `spend × period / elapsed`
/// is meaningless (and divides by zero at the first millisecond) with so little history.
pub const FORECAST_WARMUP_MS: i64 = 3_600_000;

/// Which invocations a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetScope {
    #[default]
    All,
    Function(String),
}

/// What crossing the limit does, beyond alerting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetAction {
    #[default]
    Alert,
    /// Reject new invocations in scope once spend reaches the limit (see [`throttles`]).
    Throttle,
}

/// Where alerts go; delivery is the caller's business.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    #[default]
    Log,
    /// Invoke this function asynchronously with [`Alert::to_json`] as the event.
    Function(String),
    /// POST [`Alert::to_json`] to this URL.
    Webhook(String),
}

fn default_thresholds() -> Vec<u32> {
    vec![50, 80, 100]
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub name: String,
    pub limit_micro_usd: u64,
    #[serde(default)]
    pub scope: BudgetScope,
    /// Percentages of the limit, strictly ascending, each 1..=1000.
    #[serde(default = "default_thresholds")]
    pub thresholds_percent: Vec<u32>,
    #[serde(default)]
    pub forecast: bool,
    #[serde(default)]
    pub action: BudgetAction,
    #[serde(default)]
    pub notify: Notify,
}

/// Why a budget was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("budget name is empty")]
    EmptyName,
    #[error("budget limit must be above zero")]
    ZeroLimit,
    #[error("threshold {0}% is outside 1..=1000")]
    ThresholdOutOfRange(u32),
    #[error("threshold {0}% is not above the previous threshold (sort them and drop duplicates)")]
    ThresholdsNotAscending(u32),
    #[error("notification target is empty")]
    EmptyTarget,
    #[error("webhook URL must start with http:// or https://")]
    BadWebhook,
}

impl Budget {
    pub fn validate(&self) -> Result<(), BudgetError> {
        if self.name.is_empty() {
            return Err(BudgetError::EmptyName);
        }
        if self.limit_micro_usd == 0 {
            // Every threshold of a zero limit is crossed at zero spend.
            return Err(BudgetError::ZeroLimit);
        }
        let mut previous = 0;
        for &t in &self.thresholds_percent {
            if !(1..=1000).contains(&t) {
                return Err(BudgetError::ThresholdOutOfRange(t));
            }
            if t <= previous {
                return Err(BudgetError::ThresholdsNotAscending(t));
            }
            previous = t;
        }
        match &self.notify {
            Notify::Log => Ok(()),
            Notify::Function(name) if name.is_empty() => Err(BudgetError::EmptyTarget),
            Notify::Function(_) => Ok(()),
            Notify::Webhook(url) if url.is_empty() => Err(BudgetError::EmptyTarget),
            Notify::Webhook(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                Err(BudgetError::BadWebhook)
            }
            Notify::Webhook(_) => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Month-to-date spend reached the threshold.
    Actual,
    /// The linear projection to the end of the month reached the threshold.
    Forecast,
}

/// Which alerts already fired this period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetState {
    pub period: (i32, u32),
    pub fired: BTreeSet<(u32, AlertKind)>,
}

impl BudgetState {
    pub fn new(period: (i32, u32)) -> Self {
        BudgetState { period, fired: BTreeSet::new() }
    }
}

impl Default for BudgetState {
    /// Month 0 is never a real period, so the first evaluation starts a fresh one.
    fn default() -> Self {
        BudgetState::new((0, 0))
    }
}

/// One threshold crossing, as delivered to the budget's notification target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub budget: String,
    pub threshold_percent: u32,
    pub kind: AlertKind,
    pub actual_micro_usd: u64,
    /// `None` while no forecast is possible (forecast off, or the first hour of the period).
    pub forecast_micro_usd: Option<u64>,
    pub limit_micro_usd: u64,
    /// `YYYY-MM`.
    pub period: String,
}

impl Alert {
    /// The event record sent to functions and webhooks. Exact amounts are micro-USD
    /// integers; the `*_usd` strings are rounded to cents for people.
    pub fn to_json(&self) -> serde_json::Value {
        let usd = |micro: u64| format_micro_usd(u128::from(micro), 2);
        json!({
            "source": "kumo.budget",
            "budget": self.budget,
            "period": self.period,
            "kind": match self.kind { AlertKind::Actual => "actual", AlertKind::Forecast => "forecast" },
            "threshold_percent": self.threshold_percent,
            "limit_micro_usd": self.limit_micro_usd,
            "actual_micro_usd": self.actual_micro_usd,
            "forecast_micro_usd": self.forecast_micro_usd,
            "limit_usd": usd(self.limit_micro_usd),
            "actual_usd": usd(self.actual_micro_usd),
            "forecast_usd": self.forecast_micro_usd.map(usd),
        })
    }
}

/// `amount` has reached `percent`% of `limit`. Compared as `amount × 100 ≥ limit × percent`
/// so no rounding decides a crossing.
fn reached(amount: u64, limit: u64, percent: u32) -> bool {
    u128::from(amount) * 100 >= u128::from(limit) * u128::from(percent)
}

/// Month-end projection of `spend`, or `None` during the warm-up hour.
pub fn forecast(spend_micro_usd: u64, now_ms: i64) -> Option<u64> {
    let (year, month) = month_of(now_ms);
    let start = month_start_ms(year, month);
    let elapsed = now_ms - start;
    if elapsed < FORECAST_WARMUP_MS {
        return None;
    }
    let length = next_month_start_ms(now_ms) - start;
    // Both are positive here (elapsed ≥ 1 h, length ≥ 28 days), so the casts are lossless.
    let projected = u128::from(spend_micro_usd) * length as u128 / elapsed as u128;
    Some(u64::try_from(projected).unwrap_or(u64::MAX))
}

/// Decides which alerts fire now. Resets `state` when `now_ms` is in a new month; fires
/// each threshold at most once per period and kind: `Actual` when spend has reached it,
/// `Forecast` (if enabled) when the month-end projection has reached it but spend has not
/// yet, since a forecast of something already true is noise. Alerts come out in
/// threshold order, actual before forecast.
pub fn evaluate(budget: &Budget, state: &mut BudgetState, spend_micro_usd: u64, now_ms: i64) -> Vec<Alert> {
    let period = month_of(now_ms);
    if state.period != period {
        *state = BudgetState::new(period);
    }
    let limit = budget.limit_micro_usd;
    let projected = if budget.forecast { forecast(spend_micro_usd, now_ms) } else { None };
    let alert = |threshold_percent, kind| Alert {
        budget: budget.name.clone(),
        threshold_percent,
        kind,
        actual_micro_usd: spend_micro_usd,
        forecast_micro_usd: projected,
        limit_micro_usd: limit,
        period: format_month(period.0, period.1),
    };

    let mut alerts = Vec::new();
    for &t in &budget.thresholds_percent {
        if reached(spend_micro_usd, limit, t) && state.fired.insert((t, AlertKind::Actual)) {
            alerts.push(alert(t, AlertKind::Actual));
        }
    }
    if let Some(projected) = projected {
        for &t in &budget.thresholds_percent {
            if reached(projected, limit, t)
                && !reached(spend_micro_usd, limit, t)
                && state.fired.insert((t, AlertKind::Forecast))
            {
                alerts.push(alert(t, AlertKind::Forecast));
            }
        }
    }
    alerts
}

/// Whether new invocations in scope should be refused: a throttling budget at or over its limit.
pub fn throttles(budget: &Budget, spend_micro_usd: u64) -> bool {
    budget.action == BudgetAction::Throttle && spend_micro_usd >= budget.limit_micro_usd
}

/// Whether `function` (a plain function name) counts toward the budget.
pub fn covers(budget: &Budget, function: &str) -> bool {
    match &budget.scope {
        BudgetScope::All => true,
        BudgetScope::Function(name) => name == function,
    }
}

/// The budget's month-to-date spend from a cost report: the total, or its function's row
/// (zero when the function has not run this month).
pub fn scoped_spend_micro_usd(budget: &Budget, report: &CostReport) -> u64 {
    match &budget.scope {
        BudgetScope::All => report.totals.cost_micro_usd,
        BudgetScope::Function(name) => report.functions.get(name).map_or(0, |row| row.cost_micro_usd),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::{Metered, PriceBook, cost_report};

    const DAY_MS: i64 = 86_400_000;

    fn budget(thresholds: &[u32]) -> Budget {
        Budget {
            name: "team".into(),
            limit_micro_usd: 10_000_000,
            scope: BudgetScope::All,
            thresholds_percent: thresholds.to_vec(),
            forecast: false,
            action: BudgetAction::Alert,
            notify: Notify::Log,
        }
    }

    fn nov() -> i64 {
        month_start_ms(2026, 11)
    }

    #[test]
    fn thresholds_fire_once_as_spend_grows() {
        let b = budget(&[50, 100]);
        let mut state = BudgetState::default();
        let mut fired = Vec::new();
        for step in 0..=12_000u64 {
            let spend = step * 1_000;
            for a in evaluate(&b, &mut state, spend, nov() + 15 * DAY_MS + step as i64) {
                fired.push((a.threshold_percent, a.kind, a.actual_micro_usd));
            }
        }
        assert_eq!(fired, vec![(50, AlertKind::Actual, 5_000_000), (100, AlertKind::Actual, 10_000_000)]);
        assert_eq!(state.period, (2026, 11));
    }

    #[test]
    fn new_month_resets() {
        let b = budget(&[50]);
        let mut state = BudgetState::default();
        assert_eq!(evaluate(&b, &mut state, 6_000_000, nov() + DAY_MS).len(), 1);
        assert!(evaluate(&b, &mut state, 6_000_000, nov() + 2 * DAY_MS).is_empty());
        let dec = month_start_ms(2026, 12);
        assert!(evaluate(&b, &mut state, 0, dec).is_empty());
        assert_eq!(state.period, (2026, 12));
        assert!(state.fired.is_empty());
        let alerts = evaluate(&b, &mut state, 5_000_000, dec + 1);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].period, "2026-12");
    }

    #[test]
    fn forecast_fires_early_and_once() {
        let b = Budget { forecast: true, ..budget(&[50, 100]) };
        let mut state = BudgetState::default();
        // Huge rate but inside the warm-up hour: no projection yet.
        assert!(evaluate(&b, &mut state, 1_000_000, nov() + FORECAST_WARMUP_MS - 1).is_empty());
        // 3 of November's 30 days gone, $1.50 spent: projected $15.
        let alerts = evaluate(&b, &mut state, 1_500_000, nov() + 3 * DAY_MS);
        let got: Vec<_> = alerts.iter().map(|a| (a.threshold_percent, a.kind, a.forecast_micro_usd)).collect();
        assert_eq!(
            got,
            vec![(50, AlertKind::Forecast, Some(15_000_000)), (100, AlertKind::Forecast, Some(15_000_000))]
        );
        assert!(evaluate(&b, &mut state, 1_600_000, nov() + 3 * DAY_MS + 1).is_empty());
        // Actual crossings still fire when they happen.
        let alerts = evaluate(&b, &mut state, 5_000_000, nov() + 10 * DAY_MS);
        assert_eq!(alerts.len(), 1);
        assert_eq!((alerts[0].threshold_percent, alerts[0].kind), (50, AlertKind::Actual));
    }

    #[test]
    fn no_forecast_for_a_threshold_already_reached() {
        let b = Budget { forecast: true, ..budget(&[50]) };
        let mut state = BudgetState::default();
        let alerts = evaluate(&b, &mut state, 6_000_000, nov() + 20 * DAY_MS);
        assert_eq!(alerts.iter().map(|a| a.kind).collect::<Vec<_>>(), vec![AlertKind::Actual]);
        assert!(evaluate(&b, &mut state, 7_000_000, nov() + 21 * DAY_MS).is_empty());
    }

    #[test]
    fn throttle_at_the_limit_not_before() {
        let b = Budget { action: BudgetAction::Throttle, ..budget(&[100]) };
        assert!(!throttles(&b, 9_999_999));
        assert!(throttles(&b, 10_000_000));
        assert!(throttles(&b, 10_000_001));
        assert!(!throttles(&budget(&[100]), 20_000_000), "alert-only budgets never throttle");
    }

    #[test]
    fn scope() {
        let f = Budget { scope: BudgetScope::Function("resize".into()), ..budget(&[]) };
        assert!(covers(&f, "resize"));
        assert!(!covers(&f, "thumbnail"));
        assert!(covers(&budget(&[]), "anything"));

        let book = PriceBook { free_requests: 0, free_gb_s: 0, ..PriceBook::default() };
        let run = |function: &str, memory_mb| Metered {
            function: function.into(),
            start_ms: nov(),
            billed_ms: 1_000_000,
            memory_mb,
            arm: false,
            ephemeral_mb: 512,
            cold: false,
            init_billed_ms: 0,
        };
        let report = cost_report(&book, (2026, 11), [run("resize", 10_240), run("other", 1_024)]);
        assert_eq!(scoped_spend_micro_usd(&f, &report), report.functions["resize"].cost_micro_usd);
        assert_eq!(scoped_spend_micro_usd(&budget(&[]), &report), report.totals.cost_micro_usd);
        let absent = Budget { scope: BudgetScope::Function("none".into()), ..budget(&[]) };
        assert_eq!(scoped_spend_micro_usd(&absent, &report), 0);
    }

    #[test]
    fn validation() {
        assert_eq!(budget(&[50, 80, 100]).validate(), Ok(()));
        assert_eq!(budget(&[]).validate(), Ok(()));
        assert_eq!(budget(&[0]).validate(), Err(BudgetError::ThresholdOutOfRange(0)));
        assert_eq!(budget(&[1001]).validate(), Err(BudgetError::ThresholdOutOfRange(1001)));
        assert_eq!(budget(&[80, 50]).validate(), Err(BudgetError::ThresholdsNotAscending(50)));
        assert_eq!(budget(&[50, 50]).validate(), Err(BudgetError::ThresholdsNotAscending(50)));
        assert_eq!(Budget { name: String::new(), ..budget(&[]) }.validate(), Err(BudgetError::EmptyName));
        assert_eq!(Budget { limit_micro_usd: 0, ..budget(&[]) }.validate(), Err(BudgetError::ZeroLimit));
        let hook = |url: &str| Budget { notify: Notify::Webhook(url.into()), ..budget(&[]) }.validate();
        assert_eq!(hook("https://hooks.example/x"), Ok(()));
        assert_eq!(hook("ftp://x"), Err(BudgetError::BadWebhook));
        assert_eq!(hook(""), Err(BudgetError::EmptyTarget));
        let func = Budget { notify: Notify::Function(String::new()), ..budget(&[]) };
        assert_eq!(func.validate(), Err(BudgetError::EmptyTarget));
    }

    #[test]
    fn config_and_state_serde() {
        let parsed: Result<Budget, _> = serde_json::from_str(
            r#"{"name": "team", "limit_micro_usd": 10000000, "scope": {"function": "resize"}, "action": "throttle"}"#,
        );
        let expected = Budget {
            scope: BudgetScope::Function("resize".into()),
            thresholds_percent: vec![50, 80, 100],
            action: BudgetAction::Throttle,
            ..budget(&[])
        };
        assert_eq!(parsed.ok(), Some(expected));
        assert!(serde_json::from_str::<Budget>(r#"{"name": "x", "limit_micro_usd": 1, "limt": 2}"#).is_err());

        let mut state = BudgetState::default();
        evaluate(&budget(&[50]), &mut state, 9_000_000, nov() + DAY_MS);
        let json = serde_json::to_string(&state).unwrap_or_default();
        assert_eq!(serde_json::from_str::<BudgetState>(&json).ok(), Some(state));
    }

    #[test]
    fn alert_event_record() {
        let b = Budget { forecast: true, ..budget(&[80]) };
        let mut state = BudgetState::default();
        let alerts = evaluate(&b, &mut state, 8_123_456, nov() + 15 * DAY_MS);
        let json = alerts[0].to_json();
        assert_eq!(json["source"], "kumo.budget");
        assert_eq!(json["budget"], "team");
        assert_eq!(json["kind"], "actual");
        assert_eq!(json["period"], "2026-11");
        assert_eq!(json["threshold_percent"], 80);
        assert_eq!(json["actual_micro_usd"], 8_123_456);
        assert_eq!(json["actual_usd"], "8.12");
        assert_eq!(json["forecast_micro_usd"], 16_246_912);
        assert_eq!(json["limit_usd"], "10.00");
        let no_forecast = Alert { forecast_micro_usd: None, ..alerts[0].clone() }.to_json();
        assert!(no_forecast["forecast_micro_usd"].is_null() && no_forecast["forecast_usd"].is_null());
    }
}
