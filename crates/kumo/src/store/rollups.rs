//! Per-function rollups of the metering (minute, hour and day buckets),
//! written in the same transaction as the metering records they count, so the
//! dashboard reads a bounded number of rows for any window instead of scanning
//! invocations.

use std::collections::HashMap;

use kumo_core::pricing::{MonthLedger, PriceBook};
use kumo_core::rollup::{Resolution, Rollup, Sample};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{MeteringRecord, StoreError};

/// The columns of a metering record, in the order [`record_from_row`] reads them.
pub(super) const RECORD_COLUMNS: &str = "request_id, function, version, start_ms, duration_us, billed_ms, memory_mb, \
     max_memory_used_mb, invocation_peak_mb, init_duration_us, cold, outcome, error_type, architecture, \
     ephemeral_storage_mb, init_billed_ms, cold_start_cause, cost_units, lineage_origin, lineage_depth";

pub(super) fn record_from_row(r: &rusqlite::Row<'_>) -> Result<MeteringRecord, rusqlite::Error> {
    Ok(MeteringRecord {
        request_id: r.get(0)?,
        function: r.get(1)?,
        version: r.get(2)?,
        start_ms: r.get(3)?,
        duration_us: r.get::<_, i64>(4)? as u64,
        billed_ms: r.get::<_, i64>(5)? as u64,
        memory_mb: r.get(6)?,
        max_memory_used_mb: r.get::<_, i64>(7)? as u64,
        invocation_peak_mb: r.get::<_, i64>(8)? as u64,
        init_duration_us: r.get::<_, Option<i64>>(9)?.map(|v| v as u64),
        cold: r.get(10)?,
        outcome: r.get(11)?,
        error_type: r.get(12)?,
        architecture: r.get(13)?,
        ephemeral_storage_mb: r.get(14)?,
        init_billed_ms: r.get::<_, i64>(15)? as u64,
        cold_start_cause: r.get(16)?,
        cost_units: r.get::<_, i64>(17)? as u64,
        lineage_origin: r.get(18)?,
        lineage_depth: r.get::<_, Option<i64>>(19)?.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
    })
}

fn resolution_code(r: Resolution) -> i64 {
    r.millis()
}

/// Rollup changes gathered over one write batch: merged into their rows once per batch.
#[derive(Default)]
pub(super) struct Pending {
    rows: HashMap<(String, i64, i64), Rollup>,
}

pub(super) fn sample_of(r: &MeteringRecord) -> Sample {
    Sample {
        duration_us: r.duration_us,
        billed_ms: r.billed_ms,
        error: r.outcome != "success",
        cold: r.cold,
        init_duration_us: r.init_duration_us,
        cost_units: r.cost_units,
        max_memory_used_mb: r.max_memory_used_mb,
        memory_size_mb: u64::from(r.memory_mb),
    }
}

impl Pending {
    pub(super) fn add(&mut self, r: &MeteringRecord) {
        let sample = sample_of(r);
        for res in Resolution::ALL {
            let key = (r.function.clone(), resolution_code(res), res.bucket_start(r.start_ms));
            self.rows.entry(key).or_default().add(&sample);
        }
    }

    pub(super) fn throttle(&mut self, function: &str, at_ms: i64) {
        for res in Resolution::ALL {
            let key = (function.to_string(), resolution_code(res), res.bucket_start(at_ms));
            self.rows.entry(key).or_default().throttles += 1;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Merges the batch's figures into the stored rows.
    pub(super) fn write(self, tx: &Transaction<'_>) -> Result<(), rusqlite::Error> {
        for ((function, resolution, bucket), add) in self.rows {
            let mut row = read_row(tx, &function, resolution, bucket)?.unwrap_or_default();
            row.merge(&add);
            write_row(tx, &function, resolution, bucket, &row)?;
        }
        Ok(())
    }
}

const ROLLUP_COLUMNS: &str = "invocations, errors, throttles, cold_starts, duration_sum_us, duration_max_us, billed_ms, \
     init_count, init_sum_us, init_max_us, cost_units, max_memory_used_mb, memory_size_mb, histogram";

fn rollup_from(r: &rusqlite::Row<'_>, first: usize) -> Result<Rollup, rusqlite::Error> {
    let n = |i: usize| -> Result<u64, rusqlite::Error> { Ok(r.get::<_, i64>(first + i)?.max(0) as u64) };
    Ok(Rollup {
        invocations: n(0)?,
        errors: n(1)?,
        throttles: n(2)?,
        cold_starts: n(3)?,
        duration_sum_us: n(4)?,
        duration_max_us: n(5)?,
        billed_ms: n(6)?,
        init_count: n(7)?,
        init_sum_us: n(8)?,
        init_max_us: n(9)?,
        cost_units: n(10)?,
        max_memory_used_mb: n(11)?,
        memory_size_mb: n(12)?,
        histogram: Rollup::decode_histogram(&r.get::<_, String>(first + 13)?),
    })
}

fn read_row(
    conn: &Connection,
    function: &str,
    resolution: i64,
    bucket: i64,
) -> Result<Option<Rollup>, rusqlite::Error> {
    conn.prepare_cached(&format!(
        "SELECT {ROLLUP_COLUMNS} FROM invocation_rollups WHERE function = ?1 AND resolution = ?2 AND bucket_ms = ?3"
    ))?
    .query_row(params![function, resolution, bucket], |r| rollup_from(r, 0))
    .optional()
}

fn write_row(
    tx: &Transaction<'_>,
    function: &str,
    resolution: i64,
    bucket: i64,
    r: &Rollup,
) -> Result<(), rusqlite::Error> {
    let i = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    tx.prepare_cached(&format!(
        "INSERT OR REPLACE INTO invocation_rollups (function, resolution, bucket_ms, {ROLLUP_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?
    .execute(params![
        function,
        resolution,
        bucket,
        i(r.invocations),
        i(r.errors),
        i(r.throttles),
        i(r.cold_starts),
        i(r.duration_sum_us),
        i(r.duration_max_us),
        i(r.billed_ms),
        i(r.init_count),
        i(r.init_sum_us),
        i(r.init_max_us),
        i(r.cost_units),
        i(r.max_memory_used_mb),
        i(r.memory_size_mb),
        r.encode_histogram(),
    ])?;
    Ok(())
}

/// One stored bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupRow {
    pub function: String,
    pub bucket_ms: i64,
    pub rollup: Rollup,
}

/// The buckets of `resolution` in `[from_ms, to_ms)`, of one function or all.
pub(super) fn query(
    conn: &Connection,
    function: Option<&str>,
    resolution: Resolution,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<RollupRow>, rusqlite::Error> {
    let res = resolution_code(resolution);
    let map =
        |r: &rusqlite::Row<'_>| Ok(RollupRow { function: r.get(0)?, bucket_ms: r.get(1)?, rollup: rollup_from(r, 2)? });
    match function {
        Some(f) => conn
            .prepare_cached(&format!(
                "SELECT function, bucket_ms, {ROLLUP_COLUMNS} FROM invocation_rollups \
                 WHERE function = ?1 AND resolution = ?2 AND bucket_ms >= ?3 AND bucket_ms < ?4 ORDER BY bucket_ms"
            ))?
            .query_map(params![f, res, from_ms, to_ms], map)?
            .collect(),
        None => conn
            .prepare_cached(&format!(
                "SELECT function, bucket_ms, {ROLLUP_COLUMNS} FROM invocation_rollups \
                 WHERE resolution = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?3 ORDER BY bucket_ms"
            ))?
            .query_map(params![res, from_ms, to_ms], map)?
            .collect(),
    }
}

/// Rolls up metering stored before rollups existed (once, after the migration
/// that created them), charging each record in its month's order with `book`.
pub(super) fn backfill(tx: &Transaction<'_>, book: &PriceBook) -> Result<u64, StoreError> {
    let pending: Option<i64> = tx.query_row("SELECT pending FROM rollup_backfill", [], |r| r.get(0)).optional()?;
    if pending != Some(1) {
        return Ok(0);
    }
    let mut rows = Pending::default();
    let mut costs: Vec<(i64, i64)> = Vec::new();
    let mut ledger: Option<MonthLedger> = None;
    let mut count = 0u64;
    {
        let mut stmt = tx.prepare(&format!("SELECT {RECORD_COLUMNS}, id FROM invocations ORDER BY start_ms, id"))?;
        let mut cursor = stmt.query([])?;
        while let Some(row) = cursor.next()? {
            let mut record = record_from_row(row)?;
            let id: i64 = row.get(20)?;
            let month = kumo_core::time::month_of(record.start_ms);
            if ledger.as_ref().and_then(|l| l.period) != Some(month) {
                ledger = Some(MonthLedger::new(month));
            }
            if let Some(l) = ledger.as_mut() {
                let charge = l.charge(book, &crate::engine::costs::metered(&record));
                record.cost_units = u64::try_from(charge.total_units).unwrap_or(u64::MAX);
            }
            costs.push((id, i64::try_from(record.cost_units).unwrap_or(i64::MAX)));
            rows.add(&record);
            count += 1;
        }
    }
    for (id, cost) in costs {
        tx.prepare_cached("UPDATE invocations SET cost_units = ?2 WHERE id = ?1")?.execute(params![id, cost])?;
    }
    rows.write(tx)?;
    tx.execute("UPDATE rollup_backfill SET pending = 0", [])?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn record(i: u64, function: &str, start_ms: i64) -> MeteringRecord {
        MeteringRecord {
            request_id: format!("req-{i}"),
            function: function.to_string(),
            version: "$LATEST".into(),
            start_ms,
            duration_us: 1_000 * (i + 1),
            billed_ms: i + 1,
            init_billed_ms: 0,
            memory_mb: 128,
            max_memory_used_mb: 10 + i,
            invocation_peak_mb: 10,
            init_duration_us: (i == 0).then_some(50_000),
            cold: i == 0,
            cold_start_cause: (i == 0).then(|| "first".to_string()),
            outcome: if i == 2 { "error".into() } else { "success".into() },
            error_type: None,
            architecture: "x86_64".into(),
            ephemeral_storage_mb: 512,
            cost_units: 7,
            lineage_origin: Some("abcd1234".into()),
            lineage_depth: 1,
        }
    }

    #[tokio::test]
    async fn metering_writes_roll_up_and_a_backfill_rebuilds_the_same_rows() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("open");
        assert_eq!(store.backfill_rollups(PriceBook::default()).await.expect("nothing to backfill"), 0);
        let minute = 1_700_000_040_000i64;
        for i in 0..3 {
            store.record_invocation(record(i, "f", minute + i as i64 * 1_000));
        }
        store.record_invocation(record(3, "g", minute + 61_000));
        store.record_throttle("f", minute + 5_000);
        store.flush().await.expect("flush");
        let rows = store.rollups(None, Resolution::Minute, minute, minute + 120_000).await.expect("rollups");
        assert_eq!(rows.len(), 2);
        let f = &rows[0].rollup;
        assert_eq!((rows[0].function.as_str(), f.invocations, f.errors, f.throttles, f.cold_starts), ("f", 3, 1, 1, 1));
        assert_eq!(f.cost_units, 21);
        assert_eq!(f.max_memory_used_mb, 12);
        assert_eq!(f.percentile_us(1.0), Some(3_000));
        let hour = store.rollups(Some("f".into()), Resolution::Hour, 0, i64::MAX).await.expect("hours");
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].rollup.invocations, 3);
        assert_eq!(store.invocation_attempts("req-3".into()).await.expect("by id")[0].function, "g");
        assert_eq!(store.recent_invocations("f".into(), 2).await.expect("recent")[0].request_id, "req-2");

        // As if the metering had been stored before rollups existed.
        let conn = rusqlite::Connection::open(dir.path().join("kumo.db")).expect("conn");
        conn.execute_batch(
            "DELETE FROM invocation_rollups; UPDATE rollup_backfill SET pending = 1; UPDATE invocations SET cost_units = 0",
        )
        .expect("forget rollups");
        assert_eq!(store.backfill_rollups(PriceBook::default()).await.expect("backfill"), 4);
        let again = store.rollups(None, Resolution::Minute, minute, minute + 120_000).await.expect("rollups");
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].rollup.invocations, 3);
        assert_eq!(again[0].rollup.throttles, 0, "throttles were never metered: not rebuilt");
        assert_eq!(again[0].rollup.histogram, rows[0].rollup.histogram);
        assert_eq!(store.backfill_rollups(PriceBook::default()).await.expect("once"), 0, "it runs once");
    }
}
