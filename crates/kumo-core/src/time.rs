//! Timestamps as Lambda prints them. The caller supplies epoch milliseconds.

/// Civil date from days since 1970-01-01 (proleptic Gregorian), after Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Broken-down UTC time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcParts {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

pub fn utc_parts(epoch_ms: i64) -> UtcParts {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    UtcParts {
        year,
        month,
        day,
        hour: (ms_of_day / 3_600_000) as u32,
        minute: (ms_of_day / 60_000 % 60) as u32,
        second: (ms_of_day / 1000 % 60) as u32,
        millis: (ms_of_day % 1000) as u32,
    }
}

/// Lambda's `LastModified`: `2020-04-10T19:06:32.563+0000`.
pub fn last_modified(epoch_ms: i64) -> String {
    let p = utc_parts(epoch_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// ISO-8601 with milliseconds and `Z`, as runtimes and destinations print it.
pub fn iso8601_millis(epoch_ms: i64) -> String {
    let p = utc_parts(epoch_ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis)
}

/// `YYYY/MM/DD`, the date prefix of a log stream name.
pub fn stream_date(epoch_ms: i64) -> String {
    let p = utc_parts(epoch_ms);
    format!("{:04}/{:02}/{:02}", p.year, p.month, p.day)
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian); the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so the leap day is the last day of the "year".
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar month `(year, month 1..=12)` containing `epoch_ms`.
pub fn month_of(epoch_ms: i64) -> (i32, u32) {
    let p = utc_parts(epoch_ms);
    // i64 milliseconds span about ±292 million years, well inside i32 years.
    (p.year as i32, p.month)
}

/// The first millisecond (UTC) of a month. A month outside 1..=12 is normalised
/// (13 is January of the next year, 0 December of the previous one) so the function
/// is total; extreme years saturate instead of overflowing.
pub fn month_start_ms(year: i32, month: u32) -> i64 {
    let index = i64::from(year) * 12 + i64::from(month) - 1;
    let (y, m) = (index.div_euclid(12), index.rem_euclid(12) as u32 + 1);
    days_from_civil(y, m, 1).saturating_mul(86_400_000)
}

/// The month after `(year, month)`.
pub fn next_month(year: i32, month: u32) -> (i32, u32) {
    if month >= 12 { (year.saturating_add(1), 1) } else { (year, month + 1) }
}

/// The first millisecond of the month after the one containing `epoch_ms`:
/// the exclusive end of that month.
pub fn next_month_start_ms(epoch_ms: i64) -> i64 {
    let (y, m) = month_of(epoch_ms);
    month_start_ms(y, m + 1)
}

/// `YYYY-MM` → `(year, month)`. Exactly four year digits and two month digits.
pub fn parse_month(s: &str) -> Option<(i32, u32)> {
    let (y, m) = s.split_once('-')?;
    let digits = |t: &str, n: usize| t.len() == n && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(y, 4) || !digits(m, 2) {
        return None;
    }
    let month: u32 = m.parse().ok()?;
    if !(1..=12).contains(&month) {
        return None;
    }
    Some((y.parse().ok()?, month))
}

/// `(year, month)` → `YYYY-MM`.
pub fn format_month(year: i32, month: u32) -> String {
    format!("{year:04}-{month:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        // 2020-04-10T19:06:32.563Z
        assert_eq!(last_modified(1_586_545_592_563), "2020-04-10T19:06:32.563+0000");
        assert_eq!(iso8601_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(stream_date(1_709_251_200_000), "2024/03/01");
        // leap day
        assert_eq!(iso8601_millis(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn month_boundaries() {
        assert_eq!(month_of(0), (1970, 1));
        assert_eq!(month_start_ms(1970, 1), 0);
        assert_eq!(month_start_ms(2024, 3), 1_709_251_200_000);
        // February 2024 has 29 days.
        assert_eq!(month_start_ms(2024, 2), 1_709_251_200_000 - 29 * 86_400_000);
        assert_eq!(next_month_start_ms(1_709_164_800_000), 1_709_251_200_000);
        assert_eq!(month_of(1_709_251_200_000 - 1), (2024, 2));
        assert_eq!(month_of(1_709_251_200_000), (2024, 3));
        // December rolls into the next year; out-of-range months are normalised.
        assert_eq!(next_month(2025, 12), (2026, 1));
        assert_eq!(month_start_ms(2025, 13), month_start_ms(2026, 1));
        assert_eq!(month_start_ms(2026, 0), month_start_ms(2025, 12));
        assert_eq!(iso8601_millis(month_start_ms(2026, 1)), "2026-01-01T00:00:00.000Z");
        assert_eq!(month_of(-1), (1969, 12));
    }

    #[test]
    fn parses_and_formats_months() {
        assert_eq!(parse_month("2026-11"), Some((2026, 11)));
        assert_eq!(parse_month("0999-01"), Some((999, 1)));
        for bad in ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11-01", "", "+026-11", "2026-+1"] {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        assert_eq!(format_month(2026, 3), "2026-03");
    }

    proptest::proptest! {
        #[test]
        fn month_contains_its_instants(ms in -10_000_000_000_000i64..10_000_000_000_000) {
            let (y, m) = month_of(ms);
            let start = month_start_ms(y, m);
            let end = next_month_start_ms(ms);
            proptest::prop_assert!(start <= ms && ms < end);
            proptest::prop_assert_eq!(month_of(start), (y, m));
            proptest::prop_assert_eq!(month_of(end), next_month(y, m));
            proptest::prop_assert_eq!(utc_parts(start).day, 1);
            proptest::prop_assert_eq!(parse_month(&format_month(y, m)), if (0..=9999).contains(&y) { Some((y, m)) } else { None });
        }
    }
}
