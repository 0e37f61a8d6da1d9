//! Lambda's platform log lines and billing rounding, byte for byte.

use std::fmt::Write as _;

use crate::function::VersionId;
use crate::time::stream_date;

/// Microseconds as Lambda prints milliseconds: two decimals.
pub fn ms_2dp(micros: u64) -> String {
    let hundredths = (micros + 5) / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Billed milliseconds: the duration rounded up to the billing granularity
/// (1 ms today, 100 ms before December 2020), never less than one unit.
pub fn billed_ms(duration_us: u64, granularity_ms: u64) -> u64 {
    let unit_us = granularity_ms.max(1) * 1000;
    duration_us.div_ceil(unit_us).max(1) * granularity_ms.max(1)
}

/// Bytes as Lambda's "MB" (MiB), rounded up.
pub fn mib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// `YYYY/MM/DD/[<version>]<32 hex>`.
pub fn log_stream_name(created_ms: i64, version: VersionId, hex32: &str) -> String {
    format!("{}/[{}]{}", stream_date(created_ms), version, hex32)
}

pub fn start_line(request_id: &str, version: VersionId) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

pub fn init_start_line(runtime_version: &str, runtime_version_arn: &str) -> String {
    format!("INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}")
}

/// How an invocation ended, as the REPORT line's `Status` field says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportStatus {
    Success,
    Timeout,
    /// A crash, out-of-memory or other platform-detected failure, with its error type.
    Error(String),
}

/// The figures of one REPORT line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub request_id: String,
    pub duration_us: u64,
    pub billed_ms: u64,
    pub memory_mb: u32,
    pub max_memory_used_mb: u64,
    pub init_duration_us: Option<u64>,
    pub status: ReportStatus,
}

impl Report {
    /// `REPORT RequestId: …\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\t`
    /// with `Init Duration` on cold starts and `Status` when the invocation did not succeed.
    pub fn line(&self) -> String {
        let mut s = format!(
            "REPORT RequestId: {}\tDuration: {} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            ms_2dp(self.duration_us),
            self.billed_ms,
            self.memory_mb,
            self.max_memory_used_mb
        );
        if let Some(init) = self.init_duration_us {
            let _ = write!(s, "\tInit Duration: {} ms", ms_2dp(init));
        }
        match &self.status {
            ReportStatus::Success => s.push('\t'),
            ReportStatus::Timeout => s.push_str("\tStatus: timeout"),
            ReportStatus::Error(kind) => {
                let _ = write!(s, "\tStatus: error\tError Type: {kind}");
            }
        }
        s
    }
}

/// `INIT_REPORT Init Duration: … ms\tPhase: init\tStatus: timeout|error[\tError Type: …]`
pub fn init_report_line(init_us: u64, phase: &str, status: &ReportStatus) -> String {
    let mut s = format!("INIT_REPORT Init Duration: {} ms\tPhase: {phase}", ms_2dp(init_us));
    match status {
        ReportStatus::Success => {}
        ReportStatus::Timeout => s.push_str("\tStatus: timeout"),
        ReportStatus::Error(kind) => {
            let _ = write!(s, "\tStatus: error\tError Type: {kind}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn report_lines_are_byte_exact() {
        let cold = Report {
            request_id: "id".into(),
            duration_us: 3_010,
            billed_ms: 4,
            memory_mb: 128,
            max_memory_used_mb: 36,
            init_duration_us: Some(110_100),
            status: ReportStatus::Success,
        };
        assert_eq!(
            cold.line(),
            "REPORT RequestId: id\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\tInit Duration: 110.10 ms\t"
        );
        let timeout = Report { init_duration_us: None, status: ReportStatus::Timeout, ..cold.clone() };
        assert_eq!(
            timeout.line(),
            "REPORT RequestId: id\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 36 MB\tStatus: timeout"
        );
        let oom = Report { init_duration_us: None, status: ReportStatus::Error("Runtime.OutOfMemory".into()), ..cold };
        assert!(oom.line().ends_with("\tStatus: error\tError Type: Runtime.OutOfMemory"));
    }

    #[test]
    fn billing_rounds_up() {
        assert_eq!(billed_ms(3_010, 1), 4);
        assert_eq!(billed_ms(3_000, 1), 3);
        assert_eq!(billed_ms(646_260, 100), 700);
        assert_eq!(billed_ms(12_340, 100), 100);
        assert_eq!(billed_ms(0, 1), 1);
        // Init billed since 2025: 31000.00 + 3439.00 -> 34439 -> 34440 at... 1 ms granularity gives 34439.
        assert_eq!(billed_ms(31_000_000 + 3_439_000, 1), 34_439);
    }

    #[test]
    fn stream_names() {
        assert_eq!(
            log_stream_name(1_585_267_200_000, VersionId::Latest, "5296b0fd084f411d9fb73b258393f30c"),
            "2020/03/27/[$LATEST]5296b0fd084f411d9fb73b258393f30c"
        );
    }

    proptest! {
        #[test]
        fn billed_is_smallest_multiple_covering_duration(us in 0u64..10_000_000_000, g in prop::sample::select(vec![1u64, 100])) {
            let b = billed_ms(us, g);
            prop_assert_eq!(b % g, 0);
            prop_assert!(b * 1000 >= us);
            prop_assert!(b == g || (b - g) * 1000 < us);
        }
    }
}
