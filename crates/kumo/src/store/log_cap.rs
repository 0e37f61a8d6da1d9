//! The cap on stored log bytes across every log group.
//!
//! Retention (PutRetentionPolicy) bounds logs by age, but a group without one,
//! Lambda's default, keeps everything; a chatty function would then fill the
//! data dir. The cap bounds the total: when a write batch takes the stored
//! bytes over it, the oldest events (of any group) are deleted in the same
//! transaction until the total is back under nine tenths of the cap, so trims
//! are rare and the newest lines always survive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Transaction, params};

/// The cap, shared between the store handle and its writer thread; 0 = none.
#[derive(Debug, Default)]
pub(crate) struct LogCap(AtomicU64);

impl LogCap {
    pub(crate) fn set(&self, max_bytes: Option<u64>) {
        self.0.store(max_bytes.unwrap_or(0), Ordering::Relaxed);
    }

    fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }
}

/// What one trim removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Trimmed {
    pub events: u64,
    pub bytes: u64,
}

/// Bytes of log messages stored in all groups (a sum over the small groups table).
pub(crate) fn stored_log_bytes(tx: &Transaction<'_>) -> rusqlite::Result<u64> {
    let total: i64 = tx.query_row("SELECT coalesce(sum(stored_bytes), 0) FROM log_groups", [], |r| r.get(0))?;
    Ok(total.max(0) as u64)
}

/// Deletes the oldest events when the stored total exceeds the cap.
pub(crate) fn enforce(tx: &Transaction<'_>, cap: &LogCap) -> rusqlite::Result<Trimmed> {
    let Some(max) = cap.get() else { return Ok(Trimmed::default()) };
    let total = stored_log_bytes(tx)?;
    if total <= max {
        return Ok(Trimmed::default());
    }
    let target = max / 10 * 9;
    let must_free = total - target;
    // Walk events in arrival order (their ids) until enough bytes are covered;
    // only the rows to be deleted are read.
    let mut freed_per_group: HashMap<String, u64> = HashMap::new();
    let mut trimmed = Trimmed::default();
    let mut last_id = None;
    {
        let mut oldest =
            tx.prepare("SELECT id, group_name, length(CAST(message AS BLOB)) FROM log_events ORDER BY id")?;
        let mut rows = oldest.query([])?;
        while trimmed.bytes < must_free {
            let Some(row) = rows.next()? else { break };
            let id: i64 = row.get(0)?;
            let group: String = row.get(1)?;
            let bytes = row.get::<_, i64>(2)?.max(0) as u64;
            *freed_per_group.entry(group).or_insert(0) += bytes;
            trimmed.bytes += bytes;
            trimmed.events += 1;
            last_id = Some(id);
        }
    }
    let Some(last_id) = last_id else { return Ok(trimmed) };
    tx.execute("DELETE FROM log_events WHERE id <= ?1", [last_id])?;
    for (group, freed) in freed_per_group {
        tx.execute(
            "UPDATE log_groups SET stored_bytes = max(stored_bytes - ?2, 0) WHERE name = ?1",
            params![group, freed as i64],
        )?;
    }
    Ok(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn db() -> Connection {
        let conn = Connection::open_in_memory().expect("in-memory db");
        conn.execute_batch(
            "CREATE TABLE log_groups (name TEXT PRIMARY KEY, stored_bytes INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE log_events (id INTEGER PRIMARY KEY AUTOINCREMENT, group_name TEXT, message TEXT);",
        )
        .expect("schema");
        conn
    }

    fn add(tx: &Transaction<'_>, group: &str, message: &str) {
        tx.execute("INSERT INTO log_groups (name) VALUES (?1) ON CONFLICT DO NOTHING", [group]).expect("group");
        tx.execute("INSERT INTO log_events (group_name, message) VALUES (?1, ?2)", [group, message]).expect("event");
        tx.execute(
            "UPDATE log_groups SET stored_bytes = stored_bytes + ?2 WHERE name = ?1",
            params![group, message.len() as i64],
        )
        .expect("bytes");
    }

    #[test]
    fn without_a_cap_nothing_is_trimmed() {
        let mut conn = db();
        let tx = conn.transaction().expect("tx");
        add(&tx, "a", &"x".repeat(1000));
        assert_eq!(enforce(&tx, &LogCap::default()).expect("enforce"), Trimmed::default());
    }

    #[test]
    fn the_oldest_events_of_any_group_go_first_down_to_nine_tenths() {
        let mut conn = db();
        let tx = conn.transaction().expect("tx");
        for i in 0..10 {
            add(&tx, if i % 2 == 0 { "even" } else { "odd" }, &"é".repeat(50)); // 100 bytes, 50 chars
        }
        let cap = LogCap::default();
        cap.set(Some(1000));
        assert_eq!(enforce(&tx, &cap).expect("under"), Trimmed::default());
        add(&tx, "odd", &"y".repeat(100));
        // 1100 stored, cap 1000: down to 900, so the two oldest rows go.
        assert_eq!(enforce(&tx, &cap).expect("over"), Trimmed { events: 2, bytes: 200 });
        assert_eq!(stored_log_bytes(&tx).expect("total"), 900);
        let first: i64 = tx.query_row("SELECT min(id) FROM log_events", [], |r| r.get(0)).expect("min");
        assert_eq!(first, 3);
        let even: i64 =
            tx.query_row("SELECT stored_bytes FROM log_groups WHERE name = 'even'", [], |r| r.get(0)).expect("even");
        assert_eq!(even, 400);
    }
}
