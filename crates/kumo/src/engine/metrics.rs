//! Live per-function counters and histograms for Prometheus (`/_kumo/metrics`):
//! invocations, errors, throttles, cold starts, duration and init duration.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::Engine;
use crate::store::MeteringRecord;

/// Upper bounds of the duration buckets, in milliseconds (Lambda's range: 1 ms to 15 min).
const BUCKETS_MS: [u64; 14] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 60_000, 900_000];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_us: u64,
}

impl Histogram {
    fn observe(&mut self, us: u64) {
        if let Some(i) = BUCKETS_MS.iter().position(|b| us <= b * 1000) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    fn render(&self, out: &mut String, name: &str, function: &str) {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS_MS.iter().zip(self.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{function=\"{function}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1000.0
            );
        }
        let _ = writeln!(out, "{name}_bucket{{function=\"{function}\",le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{function=\"{function}\"}} {}", self.sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{function=\"{function}\"}} {}", self.count);
    }
}

#[derive(Default, Clone)]
struct FunctionCounters {
    invocations: u64,
    errors: u64,
    throttles: u64,
    cold_starts: u64,
    cold_start_causes: BTreeMap<String, u64>,
    billed_mb_ms: u128,
    duration: Histogram,
    init: Histogram,
}

#[derive(Default)]
pub struct Metrics {
    functions: Mutex<BTreeMap<String, FunctionCounters>>,
}

impl Metrics {
    fn with(&self, function: &str, f: impl FnOnce(&mut FunctionCounters)) {
        let mut map = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get_mut(function) {
            f(c);
        } else {
            f(map.entry(function.to_string()).or_default());
        }
    }

    pub fn observe(&self, r: &MeteringRecord) {
        self.with(&r.function, |c| {
            c.invocations += 1;
            if r.outcome != "success" {
                c.errors += 1;
            }
            if r.cold {
                c.cold_starts += 1;
                *c.cold_start_causes.entry(r.cold_start_cause.clone().unwrap_or_default()).or_insert(0) += 1;
            }
            c.billed_mb_ms += u128::from(r.billed_ms) * u128::from(r.memory_mb);
            c.duration.observe(r.duration_us);
            if let Some(init) = r.init_duration_us {
                c.init.observe(init);
            }
        });
    }

    pub fn throttled(&self, function: &str) {
        self.with(function, |c| c.throttles += 1);
    }
}

/// One metric family: its HELP and TYPE lines, then one sample per function.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, String)>) {
    labelled_family(out, name, kind, help, "function", samples);
}

/// A family whose samples carry one label, `label`.
fn labelled_family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (String, String)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value_of_label, value) in samples {
        let _ = writeln!(out, "{name}{{{label}=\"{value_of_label}\"}} {value}");
    }
}

impl Engine {
    /// Every metric, in Prometheus' text format.
    pub async fn render_metrics(&self) -> String {
        let counters = self.metrics.functions.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::new();
        let each = |f: fn(&FunctionCounters) -> String| -> Vec<(String, String)> {
            counters.iter().map(|(n, c)| (n.clone(), f(c))).collect()
        };
        family(
            &mut out,
            "kumo_invocations_total",
            "counter",
            "Invocations that ran (each async attempt counts).",
            each(|c| c.invocations.to_string()),
        );
        family(
            &mut out,
            "kumo_errors_total",
            "counter",
            "Invocations that ended in a function error, timeout or crash.",
            each(|c| c.errors.to_string()),
        );
        family(
            &mut out,
            "kumo_throttles_total",
            "counter",
            "Invocations refused by a concurrency limit or a budget.",
            each(|c| c.throttles.to_string()),
        );
        family(
            &mut out,
            "kumo_cold_starts_total",
            "counter",
            "Invocations that started a new execution environment.",
            each(|c| c.cold_starts.to_string()),
        );
        family(
            &mut out,
            "kumo_billed_gb_seconds_total",
            "counter",
            "Billed GB-seconds (MemorySize x billed duration).",
            each(|c| format!("{:.6}", c.billed_mb_ms as f64 / 1_024_000.0)),
        );
        let _ = writeln!(
            out,
            "# HELP kumo_duration_seconds Invocation duration (the REPORT line's Duration).\n# TYPE kumo_duration_seconds histogram"
        );
        for (n, c) in &counters {
            c.duration.render(&mut out, "kumo_duration_seconds", n);
        }
        let _ = writeln!(
            out,
            "# HELP kumo_init_duration_seconds Init duration of cold starts.\n# TYPE kumo_init_duration_seconds histogram"
        );
        for (n, c) in &counters {
            c.init.render(&mut out, "kumo_init_duration_seconds", n);
        }
        let gauges = self.cost_gauges();
        family(
            &mut out,
            "kumo_cost_usd",
            "gauge",
            "Cost this month (UTC), after the free tier, in USD.",
            gauges.functions.into_iter().map(|(f, micro)| (f, format!("{:.6}", micro as f64 / 1e6))),
        );
        // Each family's samples together, as the exposition format requires.
        let usd = |micro: u64| format!("{:.6}", micro as f64 / 1e6);
        labelled_family(
            &mut out,
            "kumo_budget_spend_usd",
            "gauge",
            "Spend this period of each budget, in USD.",
            "budget",
            gauges.budgets.iter().map(|b| (b.name.clone(), usd(b.spend))),
        );
        labelled_family(
            &mut out,
            "kumo_budget_limit_usd",
            "gauge",
            "Limit of each budget for the period, in USD.",
            "budget",
            gauges.budgets.iter().map(|b| (b.name.clone(), usd(b.limit))),
        );
        labelled_family(
            &mut out,
            "kumo_budget_forecast_usd",
            "gauge",
            "Linear projection of each budget's spend to the end of the period, in USD (from the second hour).",
            "budget",
            gauges.budgets.iter().filter_map(|b| Some((b.name.clone(), usd(b.forecast?)))),
        );
        family(
            &mut out,
            "kumo_recursive_invocations_dropped_total",
            "counter",
            "Events stopped as recursive loops (Lambda's RecursiveInvocationsDropped).",
            self.recursive_invocations_dropped().into_iter().map(|(f, n)| (f, n.to_string())),
        );
        let _ = writeln!(
            out,
            "# HELP kumo_concurrent_executions Invocations running now.\n# TYPE kumo_concurrent_executions gauge\nkumo_concurrent_executions {}",
            self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP kumo_warm_environments Idle execution environments ready for an invocation.\n# TYPE kumo_warm_environments gauge\nkumo_warm_environments {}",
            self.warm_environments()
        );
        let _ = writeln!(
            out,
            "# HELP kumo_async_events_outstanding Asynchronous events accepted and not finished.\n# TYPE kumo_async_events_outstanding gauge\nkumo_async_events_outstanding {}",
            self.async_events_outstanding()
        );
        if let Ok(backlog) = self.store().event_backlog().await {
            let oldest = backlog.oldest_live_enqueued_ms.map_or(0, |at| (super::now_ms() - at).max(0));
            let _ = writeln!(
                out,
                "# HELP kumo_async_events_dead Events out of retries kept for inspection and redrive.\n# TYPE kumo_async_events_dead gauge\nkumo_async_events_dead {}",
                backlog.dead
            );
            let _ = writeln!(
                out,
                "# HELP kumo_async_oldest_event_age_seconds Age of the oldest queued event.\n# TYPE kumo_async_oldest_event_age_seconds gauge\nkumo_async_oldest_event_age_seconds {:.3}",
                oldest as f64 / 1000.0
            );
        }
        out
    }

    fn warm_environments(&self) -> usize {
        self.pools.lock().unwrap_or_else(|e| e.into_inner()).values().map(|p| p.idle_count()).sum()
    }
}
