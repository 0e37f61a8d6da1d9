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
}
