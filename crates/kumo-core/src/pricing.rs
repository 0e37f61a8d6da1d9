//! Lambda cost arithmetic: price book, month-to-date ledger and the monthly cost report.
//!
//! Money never touches floating point. The conventions:
//!
//! * **Rates** are integers in 1e-10 USD: per GB-s for duration and ephemeral storage,
//!   per request for requests ($0.0000166667/GB-s = `166_667`, $0.20/1M requests = `2_000`).
//! * **Usage** is in MB-ms (Lambda's MB are MiB): `memory_mb × billed_ms`.
//!   One GB-s is `1024 MB × 1000 ms` = [`MB_MS_PER_GB_S`] MB-ms.
//! * **Cost units**: `MB-ms × rate`, so one unit is 1e-10 / 1_024_000 USD. Every single
//!   invocation's charge, even one split across the free tier and two price tiers, is an
//!   integer in this unit, which is what lets per-invocation charges add up to the report's
//!   totals exactly. A request costs `rate × 1_024_000` units.
//!
//! Conversions to micro-USD and USD strings round half-up, and only at the edge: sums are
//! always taken in cost units, so the sum of rounded per-function micro-USD may differ from
//! the rounded total by a few micro-USD while the cost units agree exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::time::{format_month, month_of, month_start_ms};

/// MB-ms in one GB-s.
pub const MB_MS_PER_GB_S: u128 = 1_024_000;
/// Rates are expressed in 1/RATE_SCALE USD.
pub const RATE_SCALE: u128 = 10_000_000_000;
/// Cost units in one USD.
pub const UNITS_PER_USD: u128 = RATE_SCALE * MB_MS_PER_GB_S;
/// Cost units in one micro-USD.
pub const UNITS_PER_MICRO_USD: u128 = UNITS_PER_USD / 1_000_000;

/// One duration price tier. `up_to_gb_s` is the month-to-date volume (cumulative, per
/// architecture) up to which `rate` applies; `None` means "and everything above".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    #[serde(default)]
    pub up_to_gb_s: Option<u64>,
    /// 1e-10 USD per GB-s.
    pub rate: u64,
}

/// The prices a deployment charges. `Default` is the us-east-1 list price. Missing fields
/// in a config file fall back to those defaults; unknown fields are rejected so a typo
/// cannot silently leave a list price in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriceBook {
    /// 1e-10 USD per request.
    pub request_rate: u64,
    pub x86_tiers: Vec<Tier>,
    pub arm_tiers: Vec<Tier>,
    /// 1e-10 USD per GB-s of storage above `ephemeral_free_mb`, per second of billed duration.
    pub ephemeral_rate: u64,
    /// Ephemeral storage included in the price (Lambda: 512 MB).
    pub ephemeral_free_mb: u32,
    /// Free requests per account per month.
    pub free_requests: u64,
    /// Free GB-s per account per month, x86 and arm combined.
    pub free_gb_s: u64,
}

impl Default for PriceBook {
    fn default() -> Self {
        let tier = |up_to_gb_s, rate| Tier { up_to_gb_s, rate };
        PriceBook {
            request_rate: 2_000,
            x86_tiers: vec![
                tier(Some(6_000_000_000), 166_667),
                tier(Some(15_000_000_000), 150_000),
                tier(None, 133_334),
            ],
            arm_tiers: vec![
                tier(Some(7_500_000_000), 133_334),
                tier(Some(18_750_000_000), 120_001),
                tier(None, 106_667),
            ],
            ephemeral_rate: 309,
            ephemeral_free_mb: 512,
            free_requests: 1_000_000,
            free_gb_s: 400_000,
        }
    }
}

/// Why a price book was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceBookError {
    #[error("{arch} has no price tiers")]
    NoTiers { arch: &'static str },
    #[error("{arch} tier {index}: bound {bound} GB-s is not above the previous tier's bound")]
    NotAscending { arch: &'static str, index: usize, bound: u64 },
    #[error("{arch} tier {index} is unbounded but is not the last tier")]
    UnboundedNotLast { arch: &'static str, index: usize },
    #[error("the last {arch} tier must be unbounded")]
    LastBounded { arch: &'static str },
}

impl PriceBook {
    /// Checks that each architecture's tiers have strictly ascending positive bounds and end
    /// with exactly one unbounded tier. Charging never fails: with an unvalidated book the
    /// last tier is treated as unbounded and empty segments are skipped, but the figures
    /// then are only as meaningful as the book.
    pub fn validate(&self) -> Result<(), PriceBookError> {
        for (arch, tiers) in [("x86_64", &self.x86_tiers), ("arm64", &self.arm_tiers)] {
            let Some((last, bounded)) = tiers.split_last() else {
                return Err(PriceBookError::NoTiers { arch });
            };
            let mut previous = 0;
            for (index, tier) in bounded.iter().enumerate() {
                let Some(bound) = tier.up_to_gb_s else {
                    return Err(PriceBookError::UnboundedNotLast { arch, index });
                };
                if bound <= previous {
                    return Err(PriceBookError::NotAscending { arch, index, bound });
                }
                previous = bound;
            }
            if last.up_to_gb_s.is_some() {
                return Err(PriceBookError::LastBounded { arch });
            }
        }
        Ok(())
    }

    fn tiers(&self, arm: bool) -> &[Tier] {
        if arm { &self.arm_tiers } else { &self.x86_tiers }
    }
}

/// Cost units of the month-to-date volume interval `[from, to)` MB-ms under `tiers`.
/// Tier `i` covers `[bound(i-1), bound(i))`; the last tier is open-ended whatever its bound.
fn tiered_units(tiers: &[Tier], from: u128, to: u128) -> u128 {
    let mut lower = 0u128;
    let mut units = 0u128;
    for (i, tier) in tiers.iter().enumerate() {
        let upper = match tier.up_to_gb_s {
            Some(gb_s) if i + 1 < tiers.len() => u128::from(gb_s) * MB_MS_PER_GB_S,
            _ => u128::MAX,
        };
        let (a, b) = (from.max(lower), to.min(upper));
        if b > a {
            units += (b - a) * u128::from(tier.rate);
        }
        // max() keeps a non-ascending (invalid) book from charging a volume twice.
        lower = lower.max(upper);
    }
    units
}

/// One invocation as the meter recorded it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Metered {
    pub function: String,
    pub start_ms: i64,
    /// Billed duration, already rounded to the granularity and including any billed init.
    pub billed_ms: u64,
    pub memory_mb: u32,
    pub arm: bool,
    pub ephemeral_mb: u32,
    pub cold: bool,
    /// The part of `billed_ms` due to init (0 for warm starts); clamped to `billed_ms`.
    pub init_billed_ms: u64,
}

/// What one invocation cost, in cost units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Charge {
    pub request_units: u128,
    pub duration_units: u128,
    pub ephemeral_units: u128,
    pub total_units: u128,
    /// 1 when the request fell inside the free request allowance.
    pub free_requests_used: u64,
    pub free_mb_ms_used: u128,
    pub billed_mb_ms: u128,
    /// The cold-start share: duration and ephemeral cost of the init part, see [`MonthLedger::charge`].
    pub cold_start_units: u128,
}

/// Account usage in one month so far. Persistable, so a server can keep a running ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MonthLedger {
    /// `None` until the first charge adopts that record's month.
    pub period: Option<(i32, u32)>,
    pub requests: u64,
    pub x86_mb_ms: u128,
    pub arm_mb_ms: u128,
    pub free_requests_used: u64,
    pub free_mb_ms_used: u128,
}

impl MonthLedger {
    pub fn new(period: (i32, u32)) -> Self {
        MonthLedger { period: Some(period), ..MonthLedger::default() }
    }

    /// Charges one invocation against the month-to-date usage. Records must come in time
    /// order; one from a different month than the ledger's starts that month afresh (the
    /// free tier and tier volumes reset at the first millisecond of each UTC month).
    ///
    /// The free GB-s are consumed in chronological order across the account, so the free
    /// part of an invocation is the first part of its volume; price tiers are per
    /// architecture and apply to gross month-to-date volume (free volume included), so an
    /// invocation straddling a boundary is split and each part pays its own rate.
    ///
    /// Cold-start share: the init runs first, so the init part is the first
    /// `memory_mb × init_billed_ms` MB-ms of the invocation's volume. Its share is that
    /// slice's duration cost (after the free tier and at its tier rates) plus
    /// `init_billed_ms`'s ephemeral cost. The request charge is not part of it: the
    /// request would be paid warm or cold.
    pub fn charge(&mut self, book: &PriceBook, m: &Metered) -> Charge {
        let period = month_of(m.start_ms);
        if self.period != Some(period) {
            *self = MonthLedger::new(period);
        }

        let free_requests_used = u64::from(self.free_requests_used < book.free_requests);
        let request_units = u128::from(1 - free_requests_used) * u128::from(book.request_rate) * MB_MS_PER_GB_S;
        self.requests += 1;
        self.free_requests_used += free_requests_used;

        let memory = u128::from(m.memory_mb);
        let init_ms = m.init_billed_ms.min(m.billed_ms);
        let billed_mb_ms = memory * u128::from(m.billed_ms);
        let init_mb_ms = memory * u128::from(init_ms);

        let free_cap = u128::from(book.free_gb_s) * MB_MS_PER_GB_S;
        let free = billed_mb_ms.min(free_cap.saturating_sub(self.free_mb_ms_used));
        let volume = if m.arm { &mut self.arm_mb_ms } else { &mut self.x86_mb_ms };
        let start = *volume;
        let tiers = book.tiers(m.arm);
        // Cost of the slice [a, b) of this invocation's own volume; the free part comes off its front.
        let slice = |a: u128, b: u128| tiered_units(tiers, start + a.max(free), start + b.max(free));
        let duration_units = slice(0, billed_mb_ms);
        let init_duration_units = slice(0, init_mb_ms);
        *volume += billed_mb_ms;
        self.free_mb_ms_used += free;

        let extra_mb = u128::from(m.ephemeral_mb.saturating_sub(book.ephemeral_free_mb));
        let ephemeral_rate = u128::from(book.ephemeral_rate);
        let ephemeral_units = extra_mb * u128::from(m.billed_ms) * ephemeral_rate;
        let init_ephemeral_units = extra_mb * u128::from(init_ms) * ephemeral_rate;

        Charge {
            request_units,
            duration_units,
            ephemeral_units,
            total_units: request_units + duration_units + ephemeral_units,
            free_requests_used,
            free_mb_ms_used: free,
            billed_mb_ms,
            cold_start_units: init_duration_units + init_ephemeral_units,
        }
    }
}

/// Cost units → micro-USD, rounded half-up.
pub fn units_to_micro_usd(units: u128) -> u128 {
    (units + UNITS_PER_MICRO_USD / 2) / UNITS_PER_MICRO_USD
}

/// `numerator / denominator` as a decimal with `decimals` places, rounded half-up.
fn fixed_point(numerator: u128, denominator: u128, decimals: u32) -> String {
    let denominator = denominator.max(1);
    // Capped so that remainder × 10^decimals fits u128 for every denominator used here.
    let decimals = decimals.min(18);
    let scale = 10u128.pow(decimals);
    let mut whole = numerator / denominator;
    let remainder = numerator % denominator;
    let mut frac = (remainder * scale + denominator / 2) / denominator;
    if frac == scale {
        whole += 1;
        frac = 0;
    }
    if decimals == 0 { whole.to_string() } else { format!("{whole}.{frac:0width$}", width = decimals as usize) }
}

/// Cost units as a USD amount with `decimals` places (at most 18), rounded half-up: `"36.80"`.
pub fn format_usd(units: u128, decimals: u32) -> String {
    fixed_point(units, UNITS_PER_USD, decimals)
}

/// Micro-USD as a USD amount with `decimals` places (at most 18), rounded half-up.
pub fn format_micro_usd(micro_usd: u128, decimals: u32) -> String {
    fixed_point(micro_usd, 1_000_000, decimals)
}

/// MB-ms as GB-s with three decimals, rounded half-up: `89_600` → `"0.088"`.
pub fn format_gb_s(mb_ms: u128) -> String {
    fixed_point(mb_ms, MB_MS_PER_GB_S, 3)
}

/// JSON numbers lose precision above 2^53 in most consumers; cost units pass 2^53 at about
/// one USD, so the large integers are serialised as decimal strings.
fn as_decimal_string<S: serde::Serializer>(value: &u128, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

/// Usage and cost of one function, or of the whole account (`totals`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CostRow {
    pub requests: u64,
    #[serde(serialize_with = "as_decimal_string")]
    pub billed_mb_ms: u128,
    /// `billed_mb_ms` in GB-s, three decimals.
    pub billed_gb_s: String,
    pub free_requests_used: u64,
    #[serde(serialize_with = "as_decimal_string")]
    pub free_mb_ms_used: u128,
    #[serde(serialize_with = "as_decimal_string")]
    pub request_units: u128,
    #[serde(serialize_with = "as_decimal_string")]
    pub duration_units: u128,
    #[serde(serialize_with = "as_decimal_string")]
    pub ephemeral_units: u128,
    #[serde(serialize_with = "as_decimal_string")]
    pub cost_units: u128,
    /// `cost_units` rounded half-up to micro-USD (rounded per row, not summed).
    pub cost_micro_usd: u64,
    pub cold_starts: u64,
    /// Sum of the invocations' cold-start shares (see [`MonthLedger::charge`]).
    #[serde(serialize_with = "as_decimal_string")]
    pub cold_start_units: u128,
    pub cold_start_micro_usd: u64,
}

impl CostRow {
    fn add(&mut self, c: &Charge, cold: bool) {
        self.requests += 1;
        self.billed_mb_ms += c.billed_mb_ms;
        self.free_requests_used += c.free_requests_used;
        self.free_mb_ms_used += c.free_mb_ms_used;
        self.request_units += c.request_units;
        self.duration_units += c.duration_units;
        self.ephemeral_units += c.ephemeral_units;
        self.cost_units += c.total_units;
        self.cold_starts += u64::from(cold);
        self.cold_start_units += c.cold_start_units;
    }

    /// Fills the derived (formatted and rounded) fields once the sums are final.
    fn settle(&mut self) {
        let micro = |units| u64::try_from(units_to_micro_usd(units)).unwrap_or(u64::MAX);
        self.billed_gb_s = format_gb_s(self.billed_mb_ms);
        self.cost_micro_usd = micro(self.cost_units);
        self.cold_start_micro_usd = micro(self.cold_start_units);
    }
}

/// The account's monthly free tier, used and left.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FreeTierUsage {
    pub requests_used: u64,
    pub requests_left: u64,
    #[serde(serialize_with = "as_decimal_string")]
    pub mb_ms_used: u128,
    #[serde(serialize_with = "as_decimal_string")]
    pub mb_ms_left: u128,
    pub gb_s_used: String,
    pub gb_s_left: String,
}

/// One month's costs, per function and in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CostReport {
    /// `YYYY-MM`.
    pub period: String,
    pub period_start_ms: i64,
    /// Exclusive.
    pub period_end_ms: i64,
    pub functions: BTreeMap<String, CostRow>,
    pub totals: CostRow,
    pub free_tier: FreeTierUsage,
    /// Records dropped because they started outside the month.
    pub records_ignored: u64,
}

/// Prices one month of metering records, in any order. Records are charged in order of
/// `start_ms`, ties broken by the records' full ordering (function name first) so the
/// report does not depend on the input order; records outside the month are ignored.
pub fn cost_report(book: &PriceBook, month: (i32, u32), records: impl IntoIterator<Item = Metered>) -> CostReport {
    let mut records_ignored = 0u64;
    let mut records: Vec<Metered> = records
        .into_iter()
        .filter(|r| {
            let inside = month_of(r.start_ms) == month;
            records_ignored += u64::from(!inside);
            inside
        })
        .collect();
    records.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then_with(|| a.cmp(b)));

    let mut ledger = MonthLedger::new(month);
    let mut functions: BTreeMap<String, CostRow> = BTreeMap::new();
    let mut totals = CostRow::default();
    for record in &records {
        let charge = ledger.charge(book, record);
        functions.entry(record.function.clone()).or_default().add(&charge, record.cold);
        totals.add(&charge, record.cold);
    }
    functions.values_mut().for_each(CostRow::settle);
    totals.settle();

    let free_cap = u128::from(book.free_gb_s) * MB_MS_PER_GB_S;
    let mb_ms_left = free_cap.saturating_sub(ledger.free_mb_ms_used);
    let free_tier = FreeTierUsage {
        requests_used: ledger.free_requests_used,
        requests_left: book.free_requests.saturating_sub(ledger.free_requests_used),
        mb_ms_used: ledger.free_mb_ms_used,
        mb_ms_left,
        gb_s_used: format_gb_s(ledger.free_mb_ms_used),
        gb_s_left: format_gb_s(mb_ms_left),
    };
    CostReport {
        period: format_month(month.0, month.1),
        period_start_ms: month_start_ms(month.0, month.1),
        period_end_ms: month_start_ms(month.0, month.1.saturating_add(1)),
        functions,
        totals,
        free_tier,
        records_ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logfmt::billed_ms;
    use crate::time::next_month_start_ms;
    use proptest::prelude::*;

    const GB_S: u128 = MB_MS_PER_GB_S;

    fn rec(function: &str, start_ms: i64, memory_mb: u32, billed_ms: u64, arm: bool) -> Metered {
        Metered {
            function: function.to_string(),
            start_ms,
            billed_ms,
            memory_mb,
            arm,
            ephemeral_mb: 512,
            cold: false,
            init_billed_ms: 0,
        }
    }

    /// Charges `n` identical invocations through a ledger and sums the charges.
    fn charge_many(book: &PriceBook, n: u64, m: &Metered) -> Charge {
        let mut ledger = MonthLedger::default();
        let mut sum = Charge::default();
        for _ in 0..n {
            let c = ledger.charge(book, m);
            sum.request_units += c.request_units;
            sum.duration_units += c.duration_units;
            sum.ephemeral_units += c.ephemeral_units;
            sum.total_units += c.total_units;
            sum.free_requests_used += c.free_requests_used;
            sum.free_mb_ms_used += c.free_mb_ms_used;
            sum.billed_mb_ms += c.billed_mb_ms;
        }
        sum
    }

    fn nov_2026() -> i64 {
        month_start_ms(2026, 11)
    }

    #[test]
    fn default_book_is_the_list_price_and_valid() {
        let book = PriceBook::default();
        assert_eq!(book.validate(), Ok(()));
        // $0.20 per million requests = 2e-7 USD per request.
        assert_eq!(u128::from(book.request_rate) * 1_000_000, 2 * RATE_SCALE / 10);
        assert_eq!(UNITS_PER_MICRO_USD, 10_240_000_000);
    }

    #[test]
    fn example_a_x86_ten_million_invocations() {
        let c = charge_many(&PriceBook::default(), 10_000_000, &rec("f", nov_2026(), 1024, 250, false));
        assert_eq!(c.billed_mb_ms, 2_500_000 * GB_S);
        assert_eq!(c.free_mb_ms_used, 400_000 * GB_S);
        assert_eq!(c.free_requests_used, 1_000_000);
        assert_eq!(c.duration_units, 2_100_000 * GB_S * 166_667);
        assert_eq!(format_usd(c.duration_units, 2), "35.00");
        assert_eq!(c.request_units, 9_000_000 * 2_000 * GB_S);
        assert_eq!(format_usd(c.request_units, 2), "1.80");
        assert_eq!(format_usd(c.total_units, 2), "36.80");
        // 35.00007 + 1.80 USD.
        assert_eq!(units_to_micro_usd(c.total_units), 36_800_070);
    }

    #[test]
    fn example_b_arm_ten_million_invocations() {
        let c = charge_many(&PriceBook::default(), 10_000_000, &rec("f", nov_2026(), 1024, 250, true));
        assert_eq!(c.duration_units, 2_100_000 * GB_S * 133_334);
        assert_eq!(format_usd(c.duration_units, 2), "28.00");
        assert_eq!(format_usd(c.request_units, 2), "1.80");
        assert_eq!(format_usd(c.total_units, 2), "29.80");
    }

    #[test]
    fn example_c_entirely_free() {
        let c = charge_many(&PriceBook::default(), 1_000_000, &rec("f", nov_2026(), 512, 120, false));
        assert_eq!(c.billed_mb_ms, 60_000 * GB_S);
        assert_eq!(c.free_mb_ms_used, c.billed_mb_ms);
        assert_eq!(c.total_units, 0);
    }

    #[test]
    fn example_d_seed_report_line() {
        // REPORT … Duration: 646.26 ms … Memory Size: 128 MB
        let (coarse, fine) = (billed_ms(646_260, 100), billed_ms(646_260, 1));
        assert_eq!((coarse, fine), (700, 647));
        assert_eq!(format_gb_s(128 * 700), "0.088"); // 0.0875 GB-s, half-up
        assert_eq!(format_gb_s(128 * 647), "0.081"); // 0.080875 GB-s

        // With the free tier spent, the 100 ms-mode invocation costs 0.0875 × $0.0000166667 + $0.0000002.
        let book = PriceBook { free_requests: 0, free_gb_s: 0, ..PriceBook::default() };
        let report = cost_report(&book, (2026, 11), [rec("seed", nov_2026() + 5, 128, coarse, false)]);
        let row = &report.functions["seed"];
        assert_eq!(row.billed_mb_ms, 89_600);
        assert_eq!(row.billed_gb_s, "0.088");
        assert_eq!(row.duration_units, 89_600 * 166_667);
        assert_eq!(row.request_units, 2_000 * GB_S);
        assert_eq!(format_usd(row.cost_units, 10), "0.0000016583");
        assert_eq!(row.cost_micro_usd, 2);
    }

    #[test]
    fn example_e_free_tier_boundary_inside_one_invocation() {
        let start = nov_2026();
        // 44 × 9,000 GB-s = 396,000 GB-s free; the 45th has 4,000 free and 5,000 charged.
        let mut records: Vec<Metered> = (0..44).map(|i| rec("a", start + i, 10_240, 900_000, false)).collect();
        let mut straddler = rec("b", start + 100, 10_240, 900_000, false);
        straddler.cold = true;
        straddler.init_billed_ms = 500_000; // 5,000 GB-s of init: 4,000 free, 1,000 charged
        straddler.ephemeral_mb = 1_536; // 1 GB above the free 512 MB
        records.push(straddler);
        let report = cost_report(&PriceBook::default(), (2026, 11), records);
        let b = &report.functions["b"];
        assert_eq!(b.free_mb_ms_used, 4_000 * GB_S);
        assert_eq!(b.duration_units, 5_000 * GB_S * 166_667);
        assert_eq!(b.ephemeral_units, 1_024 * 900_000 * 309);
        assert_eq!(b.cold_starts, 1);
        assert_eq!(b.cold_start_units, 1_000 * GB_S * 166_667 + 1_024 * 500_000 * 309);
        assert_eq!(report.functions["a"].duration_units, 0);
        assert_eq!(report.free_tier.mb_ms_left, 0);
        assert_eq!(report.free_tier.gb_s_used, "400000.000");
        assert_eq!(report.free_tier.requests_left, 1_000_000 - 45);
    }

    #[test]
    fn price_tier_boundary_splits_an_invocation() {
        let book = PriceBook {
            free_requests: 0,
            free_gb_s: 2,
            request_rate: 0,
            x86_tiers: vec![Tier { up_to_gb_s: Some(10), rate: 100 }, Tier { up_to_gb_s: None, rate: 50 }],
            ..PriceBook::default()
        };
        assert_eq!(book.validate(), Ok(()));
        let mut ledger = MonthLedger::default();
        let gb = 1_024; // 1,024 MB for 1,000 ms = 1 GB-s
        // 8 GB-s: 2 free, 6 at tier 1 (free volume still counts toward the tier bound).
        assert_eq!(ledger.charge(&book, &rec("f", nov_2026(), 8 * gb, 1_000, false)).duration_units, 6 * GB_S * 100);
        // 4 GB-s from volume 8: 2 at tier 1, 2 at tier 2.
        let c = ledger.charge(&book, &rec("f", nov_2026() + 1, 4 * gb, 1_000, false));
        assert_eq!(c.duration_units, 2 * GB_S * 100 + 2 * GB_S * 50);
        // arm volume is separate; arm tiers are the list price.
        let c = ledger.charge(&book, &rec("f", nov_2026() + 2, gb, 1_000, true));
        assert_eq!(c.duration_units, GB_S * 133_334);
    }

    #[test]
    fn example_f_month_rollover() {
        let book = PriceBook { free_requests: 1, free_gb_s: 1, ..PriceBook::default() };
        let next = next_month_start_ms(nov_2026());
        let mut ledger = MonthLedger::default();
        let first = ledger.charge(&book, &rec("f", nov_2026(), 1_024, 1_000, false));
        assert_eq!((first.total_units, first.free_requests_used), (0, 1));
        let last_ms = ledger.charge(&book, &rec("f", next - 1, 1_024, 1_000, false));
        assert_eq!(last_ms.free_mb_ms_used, 0);
        assert_eq!(last_ms.total_units, 2_000 * GB_S + GB_S * 166_667);
        assert_eq!(ledger.period, Some((2026, 11)));
        let new_month = ledger.charge(&book, &rec("f", next, 1_024, 1_000, false));
        assert_eq!((new_month.total_units, new_month.free_mb_ms_used), (0, GB_S));
        assert_eq!(ledger.period, Some((2026, 12)));
        assert_eq!(ledger.requests, 1);

        let records =
            [rec("f", nov_2026() - 1, 128, 1, false), rec("f", next - 1, 128, 1, false), rec("f", next, 128, 1, false)];
        let report = cost_report(&book, (2026, 11), records);
        assert_eq!((report.totals.requests, report.records_ignored), (1, 2));
        assert_eq!((report.period_start_ms, report.period_end_ms), (nov_2026(), next));
    }

    #[test]
    fn validation_rejects_bad_tiers() {
        let with = |x86_tiers: Vec<Tier>| PriceBook { x86_tiers, ..PriceBook::default() }.validate();
        let t = |up_to_gb_s, rate| Tier { up_to_gb_s, rate };
        assert_eq!(with(vec![]), Err(PriceBookError::NoTiers { arch: "x86_64" }));
        assert_eq!(with(vec![t(Some(5), 1)]), Err(PriceBookError::LastBounded { arch: "x86_64" }));
        assert_eq!(
            with(vec![t(Some(5), 1), t(Some(5), 1), t(None, 1)]),
            Err(PriceBookError::NotAscending { arch: "x86_64", index: 1, bound: 5 })
        );
        assert_eq!(
            with(vec![t(Some(0), 1), t(None, 1)]),
            Err(PriceBookError::NotAscending { arch: "x86_64", index: 0, bound: 0 })
        );
        assert_eq!(
            with(vec![t(None, 1), t(None, 1)]),
            Err(PriceBookError::UnboundedNotLast { arch: "x86_64", index: 0 })
        );
        let arm = PriceBook { arm_tiers: vec![], ..PriceBook::default() };
        assert_eq!(arm.validate(), Err(PriceBookError::NoTiers { arch: "arm64" }));
        // An unvalidated book still charges without panicking: a bounded last tier is open-ended.
        assert_eq!(tiered_units(&[t(Some(1), 7)], 0, 3 * GB_S), 3 * GB_S * 7);
        assert_eq!(tiered_units(&[], 0, GB_S), 0);
    }

    #[test]
    fn price_book_from_config() {
        let book: Result<PriceBook, _> = serde_json::from_str(r#"{"free_gb_s": 0, "request_rate": 1000}"#);
        assert_eq!(book.ok(), Some(PriceBook { free_gb_s: 0, request_rate: 1_000, ..PriceBook::default() }));
        assert!(serde_json::from_str::<PriceBook>(r#"{"free_gbs": 0}"#).is_err());
        let json = serde_json::to_string(&PriceBook::default()).unwrap_or_default();
        assert_eq!(serde_json::from_str::<PriceBook>(&json).ok(), Some(PriceBook::default()));
    }

    #[test]
    fn formatting_rounds_half_up() {
        assert_eq!(format_usd(UNITS_PER_USD * 5 / 1_000, 2), "0.01");
        assert_eq!(format_usd(UNITS_PER_USD * 5 / 1_000 - 1, 2), "0.00");
        assert_eq!(format_usd(UNITS_PER_USD * 995 / 1_000, 2), "1.00");
        assert_eq!(format_usd(UNITS_PER_USD * 3 / 2, 0), "2");
        assert_eq!(format_usd(0, 4), "0.0000");
        assert_eq!(format_usd(1, 18), "0.000000000000000098");
        assert_eq!(units_to_micro_usd(UNITS_PER_MICRO_USD / 2), 1);
        assert_eq!(units_to_micro_usd(UNITS_PER_MICRO_USD / 2 - 1), 0);
        assert_eq!(format_micro_usd(36_800_070, 2), "36.80");
        assert_eq!(format_micro_usd(1_500_000, 6), "1.500000");
    }

    #[test]
    fn report_serialises_big_integers_as_strings() {
        let report = cost_report(&PriceBook::default(), (2026, 11), [rec("f", nov_2026(), 128, 700, false)]);
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["period"], "2026-11");
        assert_eq!(json["functions"]["f"]["billed_mb_ms"], "89600");
        assert_eq!(json["functions"]["f"]["cost_micro_usd"], 0);
        assert_eq!(json["free_tier"]["requests_left"], 999_999);
        assert_eq!(json["totals"]["cost_units"], "0");
    }

    // ---- property: per-invocation charges, report rows and an independent calculation agree exactly ----

    const MONTH: (i32, u32) = (2026, 2);
    const DAY_MS: i64 = 86_400_000;

    fn book() -> impl Strategy<Value = PriceBook> {
        let small = (
            (0u64..5_000, 0u64..2_000, 0u64..500_000, 0u64..1_000),
            (1u64..1_500_000, 1u64..1_500_000, 1u64..200_000, 1u64..200_000, 1u64..200_000),
            (1u64..1_500_000, 1u64..200_000, 1u64..200_000),
        )
            .prop_map(|((request_rate, free_requests, free_gb_s, ephemeral_rate), x86, arm)| PriceBook {
                request_rate,
                free_requests,
                free_gb_s,
                ephemeral_rate,
                x86_tiers: vec![
                    Tier { up_to_gb_s: Some(x86.0), rate: x86.2 },
                    Tier { up_to_gb_s: Some(x86.0 + x86.1), rate: x86.3 },
                    Tier { up_to_gb_s: None, rate: x86.4 },
                ],
                arm_tiers: vec![Tier { up_to_gb_s: Some(arm.0), rate: arm.1 }, Tier { up_to_gb_s: None, rate: arm.2 }],
                ephemeral_free_mb: 512,
            });
        prop_oneof![Just(PriceBook::default()), small]
    }

    fn metered() -> impl Strategy<Value = Metered> {
        (
            0u8..6,
            -DAY_MS..29 * DAY_MS,
            128u32..=10_240,
            1u64..=900_000,
            any::<bool>(),
            512u32..=10_240,
            any::<bool>(),
            0u64..=1_000_000,
        )
            .prop_map(|(f, offset, memory_mb, billed_ms, arm, ephemeral_mb, cold, init)| Metered {
                function: format!("fn-{f}"),
                start_ms: month_start_ms(MONTH.0, MONTH.1) + offset,
                billed_ms,
                memory_mb,
                arm,
                ephemeral_mb,
                cold,
                init_billed_ms: if cold { init } else { 0 },
            })
    }

    /// Cost units of the first `volume` MB-ms of a month under `tiers`, tier by tier.
    fn cumulative(tiers: &[Tier], volume: u128) -> u128 {
        let mut lower = 0u128;
        let mut units = 0u128;
        for tier in tiers {
            let upper = tier.up_to_gb_s.map_or(u128::MAX, |g| u128::from(g) * GB_S);
            units += (volume.clamp(lower, upper) - lower) * u128::from(tier.rate);
            lower = upper;
        }
        units
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

        #[test]
        fn report_is_exact(book in book(), mut records in proptest::collection::vec(metered(), 1..2_500)) {
            prop_assert_eq!(book.validate(), Ok(()));
            let (start, end) = (month_start_ms(MONTH.0, MONTH.1), month_start_ms(MONTH.0, MONTH.1 + 1));
            let report = cost_report(&book, MONTH, records.clone());

            records.retain(|r| (start..end).contains(&r.start_ms));
            records.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then_with(|| a.cmp(b)));

            // 1. Per-invocation charges sum to the report's rows and totals.
            let mut ledger = MonthLedger::new(MONTH);
            let mut per_fn: BTreeMap<String, (u128, u128, u128, u64)> = BTreeMap::new();
            let mut total = 0u128;
            for r in &records {
                let c = ledger.charge(&book, r);
                prop_assert_eq!(c.total_units, c.request_units + c.duration_units + c.ephemeral_units);
                prop_assert!(c.cold_start_units <= c.duration_units + c.ephemeral_units);
                let e = per_fn.entry(r.function.clone()).or_default();
                e.0 += c.total_units;
                e.1 += c.billed_mb_ms;
                e.2 += c.cold_start_units;
                e.3 += 1;
                total += c.total_units;
            }
            prop_assert_eq!(per_fn.len(), report.functions.len());
            for (name, (units, mb_ms, cold_units, requests)) in &per_fn {
                let row = &report.functions[name];
                prop_assert_eq!((row.cost_units, row.billed_mb_ms, row.cold_start_units, row.requests), (*units, *mb_ms, *cold_units, *requests));
            }
            prop_assert_eq!(report.totals.cost_units, total);
            prop_assert_eq!(report.functions.values().map(|r| r.cost_units).sum::<u128>(), total);
            prop_assert_eq!(report.totals.requests, records.len() as u64);

            // 2. An independent calculation over the month's totals.
            let n = records.len() as u128;
            let request_units = (n - n.min(u128::from(book.free_requests))) * u128::from(book.request_rate) * GB_S;
            let mut free_left = u128::from(book.free_gb_s) * GB_S;
            let (mut gross, mut free) = ([0u128; 2], [0u128; 2]);
            let mut ephemeral_units = 0u128;
            for r in &records {
                let volume = u128::from(r.memory_mb) * u128::from(r.billed_ms);
                let take = volume.min(free_left);
                free_left -= take;
                gross[usize::from(r.arm)] += volume;
                free[usize::from(r.arm)] += take;
                ephemeral_units += u128::from(r.ephemeral_mb - 512) * u128::from(r.billed_ms) * u128::from(book.ephemeral_rate);
            }
            // Free volume is a prefix of each architecture's volume, so the charged part is [free, gross).
            let duration_units = cumulative(&book.x86_tiers, gross[0]) - cumulative(&book.x86_tiers, free[0])
                + cumulative(&book.arm_tiers, gross[1]) - cumulative(&book.arm_tiers, free[1]);
            prop_assert_eq!(report.totals.request_units, request_units);
            prop_assert_eq!(report.totals.duration_units, duration_units);
            prop_assert_eq!(report.totals.ephemeral_units, ephemeral_units);
            prop_assert_eq!(report.totals.cost_units, request_units + duration_units + ephemeral_units);
            prop_assert_eq!(report.free_tier.mb_ms_used, free[0] + free[1]);
            prop_assert_eq!(report.free_tier.mb_ms_left, free_left);
            prop_assert_eq!(report.totals.billed_mb_ms, gross[0] + gross[1]);
        }
    }
}
