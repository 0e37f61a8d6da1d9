//! Live costs and budgets: every metering record is charged the moment its
//! invocation ends (free tier and tiers in chronological order, exact integer
//! units from [`kumo_core::pricing`]), budgets are evaluated against the
//! month's spend, alerts are delivered, and a throttling budget at its limit
//! stops new invocations of the functions it covers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use kumo_core::budget::{self, Alert, Budget, BudgetState, Notify};
use kumo_core::pricing::{self, Charge, CostReport, Metered, MonthLedger, PriceBook};
use kumo_core::{ApiError, ErrorCode};

use super::{Engine, now_ms, store_error};
use crate::store::MeteringRecord;

/// The month's spend and the budgets watching it.
pub struct Costs {
    book: PriceBook,
    state: Mutex<LiveState>,
    /// Any budget throttling right now (the invoke path reads only this when false).
    any_throttle: AtomicBool,
}

#[derive(Default)]
struct LiveState {
    ledger: MonthLedger,
    /// Cost units this month, by function.
    by_function: HashMap<String, u128>,
    total: u128,
    budgets: BTreeMap<String, (Budget, BudgetState)>,
    /// Functions stopped by a throttling budget, with the budget's name ("*": all).
    throttled: HashMap<String, String>,
}

/// A budget with its spend this period, for `kumo budget ls/show`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BudgetView {
    pub budget: Budget,
    pub period: String,
    pub spend_micro_usd: u64,
    pub fired: Vec<String>,
    pub throttling: bool,
}

/// This month's cost per function and each budget's spend, for metrics (micro-USD).
pub(super) struct CostGauges {
    pub functions: Vec<(String, u64)>,
    pub budgets: Vec<BudgetGauge>,
}

/// One budget's figures for metrics (micro-USD).
pub(super) struct BudgetGauge {
    pub name: String,
    pub spend: u64,
    pub limit: u64,
    /// The month-end projection (none in the first hour of the month).
    pub forecast: Option<u64>,
}

/// One function's month in numbers (`kumo stats`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct FunctionStats {
    pub function: String,
    pub invocations: u64,
    pub errors: u64,
    pub cold_starts: u64,
    /// Cold starts by cause: `first`, `scale-out`, `after-reap`, `after-crash`.
    pub cold_start_causes: BTreeMap<String, u64>,
    pub p50_duration_us: u64,
    pub p99_duration_us: u64,
    pub cost_micro_usd: u64,
}

pub fn metered(r: &MeteringRecord) -> Metered {
    Metered {
        function: r.function.clone(),
        start_ms: r.start_ms,
        billed_ms: r.billed_ms,
        memory_mb: r.memory_mb,
        arm: r.architecture == "arm64",
        ephemeral_mb: r.ephemeral_storage_mb,
        cold: r.cold,
        init_billed_ms: r.init_billed_ms,
    }
}

impl Costs {
    pub fn new(book: PriceBook) -> Costs {
        Costs { book, state: Mutex::new(LiveState::default()), any_throttle: AtomicBool::new(false) }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, LiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn book(&self) -> &PriceBook {
        &self.book
    }

    /// The budget stopping `function`, if one is (the invoke path's check).
    pub fn throttled_by(&self, function: &str) -> Option<String> {
        if !self.any_throttle.load(Ordering::Acquire) {
            return None;
        }
        let live = self.live();
        live.throttled.get(function).or_else(|| live.throttled.get("*")).cloned()
    }
}

impl LiveState {
    fn spend_of(&self, b: &Budget) -> u64 {
        let units = match &b.scope {
            budget::BudgetScope::All => self.total,
            budget::BudgetScope::Function(f) => self.by_function.get(f).copied().unwrap_or(0),
        };
        u64::try_from(pricing::units_to_micro_usd(units)).unwrap_or(u64::MAX)
    }

    /// Starts a new month when `now` is in one.
    fn roll(&mut self, now: i64) {
        let period = kumo_core::time::month_of(now);
        if self.ledger.period != Some(period) {
            self.ledger = MonthLedger::new(period);
            self.by_function.clear();
            self.total = 0;
        }
    }

    fn add(&mut self, book: &PriceBook, m: &Metered) -> Charge {
        self.roll(m.start_ms);
        let charge = self.ledger.charge(book, m);
        *self.by_function.entry(m.function.clone()).or_default() += charge.total_units;
        self.total += charge.total_units;
        charge
    }

    /// Re-derives which functions are stopped.
    fn refresh_throttles(&mut self) -> bool {
        let mut throttled = HashMap::new();
        for (name, (b, _)) in &self.budgets {
            if budget::throttles(b, self.spend_of(b)) {
                let key = match &b.scope {
                    budget::BudgetScope::All => "*".to_string(),
                    budget::BudgetScope::Function(f) => f.clone(),
                };
                throttled.entry(key).or_insert_with(|| name.clone());
            }
        }
        self.throttled = throttled;
        !self.throttled.is_empty()
    }
}

impl Engine {
    /// Rebuilds the month's live spend from the store and loads the budgets (at start).
    pub(super) async fn start_costs(&self) -> Result<(), crate::store::StoreError> {
        let now = now_ms();
        let (y, m) = kumo_core::time::month_of(now);
        let records = self.store.metering_between(kumo_core::time::month_start_ms(y, m), now + 1).await?;
        let budgets = self.store.load_budgets().await?;
        let mut live = self.costs.live();
        live.roll(now);
        for r in &records {
            live.add(&self.costs.book, &metered(r));
        }
        for (name, body, state) in budgets {
            match (serde_json::from_str::<Budget>(&body), serde_json::from_str::<BudgetState>(&state)) {
                (Ok(b), Ok(s)) => {
                    live.budgets.insert(name, (b, s));
                }
                _ => tracing::error!(budget = %name, "a stored budget is unreadable; it is ignored"),
            }
        }
        let any = live.refresh_throttles();
        self.costs.any_throttle.store(any, Ordering::Release);
        Ok(())
    }

    /// Charges one finished invocation and runs the budgets over the new spend;
    /// returns the charge in pricing units.
    pub(super) fn charge_invocation(&self, record: &MeteringRecord) -> u64 {
        let now = now_ms();
        let (alerts, changed, units) = {
            let mut live = self.costs.live();
            let charge = live.add(&self.costs.book, &metered(record));
            let mut alerts = Vec::new();
            let mut changed = Vec::new();
            let names: Vec<String> = live.budgets.keys().cloned().collect();
            for name in names {
                let spend = match live.budgets.get(&name) {
                    Some((b, _)) if budget::covers(b, &record.function) => live.spend_of(b),
                    _ => continue,
                };
                if let Some((b, state)) = live.budgets.get_mut(&name) {
                    let fired = budget::evaluate(b, state, spend, now);
                    if !fired.is_empty() {
                        changed.push((name.clone(), b.clone(), state.clone()));
                        alerts.extend(fired.into_iter().map(|a| (a, b.notify.clone())));
                    }
                }
            }
            let any = live.refresh_throttles();
            self.costs.any_throttle.store(any, Ordering::Release);
            (alerts, changed, u64::try_from(charge.total_units).unwrap_or(u64::MAX))
        };
        if alerts.is_empty() && changed.is_empty() {
            return units;
        }
        let store = self.store.clone();
        let engine = self.self_ref();
        tokio::spawn(async move {
            for (name, b, state) in changed {
                if let (Ok(body), Ok(state)) = (serde_json::to_string(&b), serde_json::to_string(&state)) {
                    let _ = store.put_budget(&name, &body, &state).await;
                }
            }
            if let Some(engine) = engine {
                for (alert, notify) in alerts {
                    engine.deliver_alert(alert, notify).await;
                }
            }
        });
        units
    }

    /// Sends one budget alert where its budget says.
    async fn deliver_alert(&self, alert: Alert, notify: Notify) {
        let record = alert.to_json();
        tracing::warn!(budget = %alert.budget, threshold = alert.threshold_percent, kind = ?alert.kind, "budget alert");
        match notify {
            Notify::Log => {
                let now = now_ms();
                self.store.append_logs(vec![crate::store::LogEvent {
                    group: "/kumo/budgets".into(),
                    stream: alert.budget.as_str().into(),
                    timestamp_ms: now,
                    message: record.to_string(),
                }]);
            }
            Notify::Function(f) => {
                let id = uuid::Uuid::new_v4().to_string();
                if let Err(e) =
                    self.enqueue_event(f.clone(), None, bytes::Bytes::from(record.to_string()), id, None).await
                {
                    tracing::error!(function = %f, error = %e.message, "could not queue a budget alert");
                }
            }
            Notify::Webhook(url) => {
                tokio::spawn(post_with_retries(url, record.to_string()));
            }
        }
    }

    pub fn price_book(&self) -> &PriceBook {
        self.costs.book()
    }

    /// The month's cost report from the stored metering (the authoritative figures).
    pub async fn cost_report(&self, month: (i32, u32)) -> Result<CostReport, ApiError> {
        self.store.flush().await.map_err(store_error)?;
        let from = kumo_core::time::month_start_ms(month.0, month.1);
        let (ny, nm) = kumo_core::time::next_month(month.0, month.1);
        let to = kumo_core::time::month_start_ms(ny, nm);
        let records = self.store.metering_between(from, to).await.map_err(store_error)?;
        Ok(pricing::cost_report(&self.costs.book, month, records.iter().map(metered)))
    }

    /// What one invocation cost, in its month's context (free tier and tiers used before it).
    pub async fn invocation_cost(
        &self,
        request_id: &str,
        around_ms: i64,
    ) -> Result<(MeteringRecord, Charge), ApiError> {
        self.store.flush().await.map_err(store_error)?;
        let month = kumo_core::time::month_of(around_ms);
        let from = kumo_core::time::month_start_ms(month.0, month.1);
        let records = self
            .store
            .metering_between(from, kumo_core::time::next_month_start_ms(around_ms))
            .await
            .map_err(store_error)?;
        let mut ledger = MonthLedger::new(month);
        for r in records {
            let charge = ledger.charge(&self.costs.book, &metered(&r));
            if r.request_id == request_id {
                return Ok((r, charge));
            }
        }
        Err(ApiError::not_found(format!("No metering record for request {request_id}")))
    }

    /// `kumo stats`: per function this month, invocations, errors, duration
    /// percentiles, cold starts and cost (from the stored metering).
    pub async fn stats(&self, month: (i32, u32)) -> Result<Vec<FunctionStats>, ApiError> {
        let report = self.cost_report(month).await?;
        let from = kumo_core::time::month_start_ms(month.0, month.1);
        let (ny, nm) = kumo_core::time::next_month(month.0, month.1);
        let records =
            self.store.metering_between(from, kumo_core::time::month_start_ms(ny, nm)).await.map_err(store_error)?;
        let mut by_function: BTreeMap<String, Vec<&MeteringRecord>> = BTreeMap::new();
        for r in &records {
            by_function.entry(r.function.clone()).or_default().push(r);
        }
        Ok(by_function
            .into_iter()
            .map(|(function, rs)| {
                let mut durations: Vec<u64> = rs.iter().map(|r| r.duration_us).collect();
                durations.sort_unstable();
                let pct = |p: f64| durations[((durations.len() - 1) as f64 * p).round() as usize];
                let errors = rs.iter().filter(|r| r.outcome != "success").count() as u64;
                let cold = rs.iter().filter(|r| r.cold).count() as u64;
                let mut cold_start_causes = BTreeMap::new();
                for cause in rs.iter().filter_map(|r| r.cold_start_cause.clone()) {
                    *cold_start_causes.entry(cause).or_insert(0) += 1;
                }
                let cost = report.functions.get(&function).map_or(0, |row| row.cost_micro_usd);
                FunctionStats {
                    invocations: rs.len() as u64,
                    errors,
                    cold_starts: cold,
                    cold_start_causes,
                    p50_duration_us: pct(0.5),
                    p99_duration_us: pct(0.99),
                    cost_micro_usd: cost,
                    function,
                }
            })
            .collect())
    }

    pub async fn put_budget(&self, b: Budget) -> Result<BudgetView, ApiError> {
        b.validate().map_err(|e| ApiError::new(ErrorCode::InvalidParameterValue, e.to_string()))?;
        let now = now_ms();
        let state = BudgetState::new(kumo_core::time::month_of(now));
        let body = serde_json::to_string(&b).map_err(|e| ApiError::service(e.to_string()))?;
        let state_json = serde_json::to_string(&state).map_err(|e| ApiError::service(e.to_string()))?;
        self.store.put_budget(&b.name, &body, &state_json).await.map_err(store_error)?;
        let view = {
            let mut live = self.costs.live();
            // A budget raised or replaced starts its alerts afresh for the period.
            live.budgets.insert(b.name.clone(), (b.clone(), state));
            let any = live.refresh_throttles();
            self.costs.any_throttle.store(any, Ordering::Release);
            view_of(&live, &b.name)
        };
        // Events held back by a throttle that no longer holds go now.
        self.queue_capacity_freed();
        view.ok_or_else(|| ApiError::service("the budget vanished"))
    }

    pub fn budgets(&self) -> Vec<BudgetView> {
        let live = self.costs.live();
        live.budgets.keys().filter_map(|n| view_of(&live, n)).collect()
    }

    pub fn budget(&self, name: &str) -> Result<BudgetView, ApiError> {
        view_of(&self.costs.live(), name).ok_or_else(|| ApiError::not_found(format!("Budget not found: {name}")))
    }

    pub async fn delete_budget(&self, name: &str) -> Result<(), ApiError> {
        if !self.costs.live().budgets.contains_key(name) {
            return Err(ApiError::not_found(format!("Budget not found: {name}")));
        }
        self.store.delete_budget(name).await.map_err(store_error)?;
        let mut live = self.costs.live();
        live.budgets.remove(name);
        let any = live.refresh_throttles();
        self.costs.any_throttle.store(any, Ordering::Release);
        drop(live);
        self.queue_capacity_freed();
        Ok(())
    }

    /// This month's cost per function (micro-USD) and each budget's spend, limit and forecast, for metrics.
    pub(super) fn cost_gauges(&self) -> CostGauges {
        let live = self.costs.live();
        let mut functions: Vec<(String, u64)> = live
            .by_function
            .iter()
            .map(|(f, units)| (f.clone(), u64::try_from(pricing::units_to_micro_usd(*units)).unwrap_or(u64::MAX)))
            .collect();
        functions.sort();
        let now = super::now_ms();
        let budgets = live
            .budgets
            .iter()
            .map(|(name, (b, _))| {
                let spend = live.spend_of(b);
                BudgetGauge {
                    name: name.clone(),
                    spend,
                    limit: b.limit_micro_usd,
                    forecast: budget::forecast(spend, now),
                }
            })
            .collect();
        CostGauges { functions, budgets }
    }

    /// The refusal of an invocation a budget stops.
    pub(super) fn budget_refusal(&self, function: &str) -> Option<ApiError> {
        let budget = self.costs.throttled_by(function)?;
        let mut e = ApiError::new(
            ErrorCode::TooManyRequests,
            format!(
                "Rate Exceeded. Budget {budget} has reached its limit: invocations of {function} are stopped until the period rolls over or the budget is raised."
            ),
        );
        e.reason = Some("BudgetLimitExceeded");
        Some(e)
    }
}

fn view_of(live: &LiveState, name: &str) -> Option<BudgetView> {
    let (b, state) = live.budgets.get(name)?;
    let spend = live.spend_of(b);
    Some(BudgetView {
        budget: b.clone(),
        period: kumo_core::time::format_month(state.period.0, state.period.1),
        spend_micro_usd: spend,
        fired: state.fired.iter().map(|(t, k)| format!("{t}% {k:?}").to_lowercase()).collect(),
        throttling: budget::throttles(b, spend),
    })
}

/// POSTs an alert to a webhook: three attempts, 1 s and 2 s apart.
async fn post_with_retries(url: String, body: String) {
    let client = match reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client for budget webhooks");
            return;
        }
    };
    for attempt in 0..3u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
        }
        let sent = client.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
        match sent {
            Ok(r) if r.status().is_success() => return,
            Ok(r) => tracing::warn!(%url, status = %r.status(), attempt, "budget webhook refused the alert"),
            Err(e) => tracing::warn!(%url, error = %e, attempt, "budget webhook unreachable"),
        }
    }
    tracing::error!(%url, "budget alert not delivered to its webhook after 3 attempts");
}
