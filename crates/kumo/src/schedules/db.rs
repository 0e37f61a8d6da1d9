//! Rules in the database: one row per rule (its definition and targets as
//! JSON) with the tick it fires next. A firing advances that tick and inserts
//! the events it causes in one transaction, so a tick is never fired twice
//! and never fired without its events.

use rusqlite::params;

use super::Rule;
use crate::store::sqlite::{SqliteStore, insert_event};
use crate::store::{QueuedEvent, StoreError};

/// A stored rule with its schedule's position.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub rule: Rule,
    /// The tick the rule fires next (`None`: disabled, a pattern rule, or no more ticks).
    pub next_due_ms: Option<i64>,
    pub last_fired_ms: Option<i64>,
}

pub async fn load(store: &SqliteStore) -> Result<Vec<RuleRow>, StoreError> {
    store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT body, next_due_ms, last_fired_ms FROM event_rules ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (body, next_due_ms, last_fired_ms) = row?;
                out.push(RuleRow { rule: serde_json::from_str(&body)?, next_due_ms, last_fired_ms });
            }
            Ok(out)
        })
        .await
}

/// Stores (durably) a rule, created or changed.
pub async fn put(store: &SqliteStore, row: &RuleRow) -> Result<(), StoreError> {
    let body = serde_json::to_string(&row.rule)?;
    let (name, next, last) = (row.rule.name.clone(), row.next_due_ms, row.last_fired_ms);
    store
        .write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO event_rules (name, body, next_due_ms, last_fired_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, next_due_ms = excluded.next_due_ms, \
                 last_fired_ms = excluded.last_fired_ms",
            )?
            .execute(params![name, body, next, last])?;
            Ok(())
        })
        .await
}

pub async fn delete(store: &SqliteStore, name: &str) -> Result<(), StoreError> {
    let name = name.to_string();
    store
        .write(move |tx| {
            tx.prepare_cached("DELETE FROM event_rules WHERE name = ?1")?.execute(params![name])?;
            Ok(())
        })
        .await
}

/// One firing: the rule's next tick and the events for its targets, together.
pub async fn fire(
    store: &SqliteStore,
    name: &str,
    next_due_ms: Option<i64>,
    fired_ms: i64,
    events: Vec<QueuedEvent>,
) -> Result<(), StoreError> {
    let name = name.to_string();
    store
        .write(move |tx| {
            tx.prepare_cached("UPDATE event_rules SET next_due_ms = ?2, last_fired_ms = ?3 WHERE name = ?1")?
                .execute(params![name, next_due_ms, fired_ms])?;
            for e in &events {
                insert_event(tx, e)?;
            }
            Ok(())
        })
        .await
}
