//! Pre-aggregated invocation figures: what the dashboard reads instead of
//! scanning metering records.
//!
//! Every metering record lands in one bucket per [`Resolution`] (minute, hour,
//! day). A bucket holds sums, maxima and a fixed log-spaced duration histogram,
//! so any window's figures, percentiles included, come from merging a bounded
//! number of buckets. Percentiles are therefore approximate: within one
//! histogram bucket (a factor of [`GROWTH`]), clamped to the largest duration seen.

use serde::{Deserialize, Serialize};

/// How many histogram buckets a rollup keeps.
pub const HIST_BUCKETS: usize = 40;
/// The upper bound of the first bucket, in microseconds.
const FIRST_BOUND_US: f64 = 100.0;
/// Each bucket's upper bound is this factor times the previous one
/// (100 µs · 1.5³⁹ ≈ 740 s; longer durations share the last bucket).
pub const GROWTH: f64 = 1.5;

/// The granularity of a rollup row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    pub fn millis(self) -> i64 {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding `ts_ms`.
    pub fn bucket_start(self, ts_ms: i64) -> i64 {
        ts_ms.div_euclid(self.millis()) * self.millis()
    }
}

/// The windows the dashboard offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Minutes15,
    Hour1,
    Hours24,
    Days30,
}

impl Window {
    pub const ALL: [Window; 4] = [Window::Minutes15, Window::Hour1, Window::Hours24, Window::Days30];

    pub fn parse(s: &str) -> Option<Window> {
        match s {
            "15m" => Some(Window::Minutes15),
            "1h" => Some(Window::Hour1),
            "24h" => Some(Window::Hours24),
            "30d" => Some(Window::Days30),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minutes15 => "15m",
            Window::Hour1 => "1h",
            Window::Hours24 => "24h",
            Window::Days30 => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Window::Minutes15 => "15 minutes",
            Window::Hour1 => "1 hour",
            Window::Hours24 => "24 hours",
            Window::Days30 => "30 days",
        }
    }

    /// The rollup rows a window reads: few enough per function that a page
    /// over a hundred functions merges a few thousand rows at most.
    pub fn resolution(self) -> Resolution {
        match self {
            Window::Minutes15 | Window::Hour1 => Resolution::Minute,
            Window::Hours24 => Resolution::Hour,
            Window::Days30 => Resolution::Day,
        }
    }

    pub fn buckets(self) -> i64 {
        match self {
            Window::Minutes15 => 15,
            Window::Hour1 => 60,
            Window::Hours24 => 24,
            Window::Days30 => 30,
        }
    }

    /// The first bucket start of the window ending with the bucket holding
    /// `now_ms` (windows are aligned to their buckets).
    pub fn start_ms(self, now_ms: i64) -> i64 {
        let r = self.resolution();
        r.bucket_start(now_ms) - (self.buckets() - 1) * r.millis()
    }

    /// Every bucket start of the window, oldest first (charts show empty ones too).
    pub fn bucket_starts(self, now_ms: i64) -> Vec<i64> {
        let r = self.resolution();
        let first = self.start_ms(now_ms);
        (0..self.buckets()).map(|i| first + i * r.millis()).collect()
    }
}

/// One bucket's figures (or the merge of many).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollup {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub duration_sum_us: u64,
    pub duration_max_us: u64,
    pub billed_ms: u64,
    pub init_count: u64,
    pub init_sum_us: u64,
    pub init_max_us: u64,
    /// Pricing units (1e-10 USD / 1,024,000), as charged live.
    pub cost_units: u64,
    /// The largest Max Memory Used reported.
    pub max_memory_used_mb: u64,
    /// The largest configured MemorySize seen.
    pub memory_size_mb: u64,
    pub histogram: Vec<u64>,
}

impl Default for Rollup {
    fn default() -> Self {
        Rollup {
            invocations: 0,
            errors: 0,
            throttles: 0,
            cold_starts: 0,
            duration_sum_us: 0,
            duration_max_us: 0,
            billed_ms: 0,
            init_count: 0,
            init_sum_us: 0,
            init_max_us: 0,
            cost_units: 0,
            max_memory_used_mb: 0,
            memory_size_mb: 0,
            histogram: vec![0; HIST_BUCKETS],
        }
    }
}

/// One finished invocation, as a rollup counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub duration_us: u64,
    pub billed_ms: u64,
    pub error: bool,
    pub cold: bool,
    pub init_duration_us: Option<u64>,
    pub cost_units: u64,
    pub max_memory_used_mb: u64,
    pub memory_size_mb: u64,
}

/// The histogram bucket of a duration.
pub fn bucket_of(duration_us: u64) -> usize {
    let mut bound = FIRST_BOUND_US;
    for i in 0..HIST_BUCKETS - 1 {
        if (duration_us as f64) <= bound {
            return i;
        }
        bound *= GROWTH;
    }
    HIST_BUCKETS - 1
}

/// The upper bound of a histogram bucket, in microseconds.
pub fn bucket_upper_us(index: usize) -> u64 {
    (FIRST_BOUND_US * GROWTH.powi(index.min(HIST_BUCKETS - 1) as i32)).round() as u64
}

impl Rollup {
    pub fn add(&mut self, s: &Sample) {
        self.invocations += 1;
        self.errors += u64::from(s.error);
        self.cold_starts += u64::from(s.cold);
        self.duration_sum_us = self.duration_sum_us.saturating_add(s.duration_us);
        self.duration_max_us = self.duration_max_us.max(s.duration_us);
        self.billed_ms = self.billed_ms.saturating_add(s.billed_ms);
        if let Some(init) = s.init_duration_us {
            self.init_count += 1;
            self.init_sum_us = self.init_sum_us.saturating_add(init);
            self.init_max_us = self.init_max_us.max(init);
        }
        self.cost_units = self.cost_units.saturating_add(s.cost_units);
        self.max_memory_used_mb = self.max_memory_used_mb.max(s.max_memory_used_mb);
        self.memory_size_mb = self.memory_size_mb.max(s.memory_size_mb);
        self.normalise();
        self.histogram[bucket_of(s.duration_us)] += 1;
    }

    pub fn merge(&mut self, o: &Rollup) {
        self.invocations += o.invocations;
        self.errors += o.errors;
        self.throttles += o.throttles;
        self.cold_starts += o.cold_starts;
        self.duration_sum_us = self.duration_sum_us.saturating_add(o.duration_sum_us);
        self.duration_max_us = self.duration_max_us.max(o.duration_max_us);
        self.billed_ms = self.billed_ms.saturating_add(o.billed_ms);
        self.init_count += o.init_count;
        self.init_sum_us = self.init_sum_us.saturating_add(o.init_sum_us);
        self.init_max_us = self.init_max_us.max(o.init_max_us);
        self.cost_units = self.cost_units.saturating_add(o.cost_units);
        self.max_memory_used_mb = self.max_memory_used_mb.max(o.max_memory_used_mb);
        self.memory_size_mb = self.memory_size_mb.max(o.memory_size_mb);
        self.normalise();
        for (i, n) in o.histogram.iter().enumerate().take(HIST_BUCKETS) {
            self.histogram[i] += n;
        }
    }

    /// A histogram read back from storage may be short or long; make it exact.
    fn normalise(&mut self) {
        self.histogram.resize(HIST_BUCKETS, 0);
    }

    /// The `p`-th percentile (0..=1) of duration in microseconds: the upper
    /// bound of the bucket holding it, never above the largest duration seen.
    pub fn percentile_us(&self, p: f64) -> Option<u64> {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * p.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(bucket_upper_us(i).min(self.duration_max_us.max(1)));
            }
        }
        Some(self.duration_max_us)
    }

    /// Errors per invocation (0 with none).
    pub fn error_rate(&self) -> f64 {
        ratio(self.errors, self.invocations)
    }

    pub fn cold_start_rate(&self) -> f64 {
        ratio(self.cold_starts, self.invocations)
    }

    pub fn mean_init_us(&self) -> Option<u64> {
        self.init_sum_us.checked_div(self.init_count)
    }

    /// The histogram as stored: counts separated by commas, trailing zeros dropped.
    pub fn encode_histogram(&self) -> String {
        let last = self.histogram.iter().rposition(|n| *n > 0).map_or(0, |i| i + 1);
        self.histogram[..last].iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }

    /// Reads a stored histogram; unreadable entries count as zero.
    pub fn decode_histogram(text: &str) -> Vec<u64> {
        let mut h: Vec<u64> = text.split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap_or(0)).collect();
        h.resize(HIST_BUCKETS, 0);
        h
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(duration_us: u64) -> Sample {
        Sample {
            duration_us,
            billed_ms: duration_us.div_ceil(1000),
            error: false,
            cold: false,
            init_duration_us: None,
            cost_units: 10,
            max_memory_used_mb: 40,
            memory_size_mb: 128,
        }
    }

    #[test]
    fn buckets_grow_by_half_and_cover_every_duration() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(100), 0);
        assert_eq!(bucket_of(101), 1);
        assert_eq!(bucket_of(150), 1);
        assert_eq!(bucket_of(u64::MAX), HIST_BUCKETS - 1);
        for d in [1u64, 999, 12_345, 1_000_000, 60_000_000] {
            let b = bucket_of(d);
            assert!(d <= bucket_upper_us(b));
            assert!(b == 0 || d > bucket_upper_us(b - 1));
        }
    }

    #[test]
    fn percentiles_come_from_merged_histograms_within_one_bucket() {
        let mut a = Rollup::default();
        let mut b = Rollup::default();
        for d in 1..=99u64 {
            a.add(&sample(d * 1000));
        }
        b.add(&sample(5_000_000));
        a.merge(&b);
        assert_eq!(a.invocations, 100);
        let p50 = a.percentile_us(0.5).unwrap_or(0);
        assert!((50_000..=50_000 * 3 / 2).contains(&p50), "{p50}");
        assert_eq!(a.percentile_us(1.0), Some(5_000_000), "clamped to the largest seen");
        let p99 = a.percentile_us(0.99).unwrap_or(0);
        assert!((99_000..=150_000).contains(&p99), "{p99}");
        assert_eq!(Rollup::default().percentile_us(0.5), None);
    }

    #[test]
    fn histograms_round_trip_through_their_text() {
        let mut r = Rollup::default();
        r.add(&sample(250));
        r.add(&sample(250));
        r.add(&sample(2_000));
        let text = r.encode_histogram();
        assert_eq!(Rollup::decode_histogram(&text), r.histogram);
        assert_eq!(Rollup::decode_histogram(""), vec![0; HIST_BUCKETS]);
        assert_eq!(Rollup::decode_histogram("x,2").get(1), Some(&2));
    }

    #[test]
    fn windows_are_aligned_to_their_buckets() {
        let now = 10 * 86_400_000 + 3 * 3_600_000 + 5 * 60_000 + 7;
        assert_eq!(Window::Minutes15.start_ms(now), Resolution::Minute.bucket_start(now) - 14 * 60_000);
        assert_eq!(Window::Hours24.bucket_starts(now).len(), 24);
        assert_eq!(Window::Days30.bucket_starts(now)[29], 10 * 86_400_000);
        assert_eq!(Window::parse("1h"), Some(Window::Hour1));
        assert_eq!(Window::parse("2h"), None);
        assert_eq!(Resolution::Minute.bucket_start(-1), -60_000);
    }

    #[test]
    fn sums_rates_and_maxima_merge() {
        let mut r = Rollup::default();
        let mut s = sample(1000);
        s.error = true;
        s.cold = true;
        s.init_duration_us = Some(300);
        s.max_memory_used_mb = 90;
        r.add(&s);
        r.add(&sample(3000));
        assert_eq!(r.error_rate(), 0.5);
        assert_eq!(r.cold_start_rate(), 0.5);
        assert_eq!(r.mean_init_us(), Some(300));
        assert_eq!(r.max_memory_used_mb, 90);
        assert_eq!(r.cost_units, 20);
        assert_eq!(r.duration_sum_us, 4000);
    }
}
