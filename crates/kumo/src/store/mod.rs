//! Persistence behind a narrow interface.
//!
//! The engine talks to a [`Store`]; the embedded implementation is SQLite
//! ([`sqlite::SqliteStore`]). A PostgreSQL adapter implements the same trait.
//! Code packages are files, content-addressed ([`code::CodeStore`]).

pub mod code;
mod log_cap;
pub mod rollups;
pub mod sqlite;

pub use rollups::RollupRow;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use kumo_core::function::{Alias, FunctionMeta, FunctionVersion};

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("stored record is unreadable: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("a function named {0} already exists")]
    FunctionExists(String),
    #[error("opening the database at {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("database schema version {found} is newer than this Kumo understands ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("blocking task failed: {0}")]
    Join(String),
}

/// A function as loaded at start-up: $LATEST, its settings, versions and aliases.
#[derive(Debug, Clone)]
pub struct StoredFunction {
    pub latest: FunctionVersion,
    pub meta: FunctionMeta,
    pub versions: Vec<FunctionVersion>,
    pub aliases: Vec<Alias>,
}

/// One log event, as written.
#[derive(Debug, Clone)]
pub struct LogEvent {
    pub group: Arc<str>,
    pub stream: Arc<str>,
    pub timestamp_ms: i64,
    pub message: String,
}

/// One log event, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLogEvent {
    pub id: i64,
    pub stream: String,
    pub timestamp_ms: i64,
    pub ingestion_ms: i64,
    pub message: String,
}

/// A FilterLogEvents / GetLogEvents query.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub group: String,
    pub streams: Option<Vec<String>>,
    pub stream_prefix: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Only events with a larger id (the pagination token).
    pub after_id: Option<i64>,
    /// Substring every returned message must contain (terms ANDed).
    pub filter_terms: Vec<String>,
    pub limit: usize,
    /// Newest first (GetLogEvents without startFromHead returns the tail).
    pub newest_first: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupInfo {
    pub name: String,
    pub created_ms: i64,
    pub stored_bytes: i64,
    /// PutRetentionPolicy's days; `None` keeps events forever.
    pub retention_days: Option<u32>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogStreamInfo {
    pub name: String,
    pub created_ms: i64,
    pub first_event_ms: Option<i64>,
    pub last_event_ms: Option<i64>,
    pub last_ingestion_ms: Option<i64>,
}

/// One invocation's metering: what billing and dashboards are built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeteringRecord {
    pub request_id: String,
    pub function: String,
    pub version: String,
    pub start_ms: i64,
    pub duration_us: u64,
    pub billed_ms: u64,
    /// The part of `billed_ms` due to a billed init phase (cold starts' share of the cost).
    pub init_billed_ms: u64,
    pub memory_mb: u32,
    /// The environment's peak up to and including this invocation (the REPORT figure).
    pub max_memory_used_mb: u64,
    /// This invocation's own peak.
    pub invocation_peak_mb: u64,
    pub init_duration_us: Option<u64>,
    pub cold: bool,
    /// Why a cold start happened: `first`, `scale-out`, `after-reap` or `after-crash`.
    pub cold_start_cause: Option<String>,
    /// `success`, `error`, `timeout` or `crash`.
    pub outcome: String,
    pub error_type: Option<String>,
    pub architecture: String,
    pub ephemeral_storage_mb: u32,
    /// What the invocation was charged as it ended, in pricing units
    /// (1e-10 USD / 1,024,000; the month's free tier already applied).
    pub cost_units: u64,
    /// The chain this invocation belongs to (recursive-loop lineage): the
    /// invocation that caused it has the same origin and one less depth.
    pub lineage_origin: Option<String>,
    pub lineage_depth: u32,
}

/// An asynchronous invocation waiting in the durable queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEvent {
    /// The request id every attempt carries.
    pub request_id: String,
    /// Arrival order.
    pub seq: u64,
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: bytes::Bytes,
    pub progress: kumo_core::retry::EventProgress,
    pub next_attempt_ms: i64,
    pub state: EventState,
    pub last_error: Option<String>,
    /// The chain of invocations this event belongs to (recursive-loop detection).
    pub lineage: Option<kumo_core::lineage::Lineage>,
}

/// The shape of the stored queue, for gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventBacklog {
    pub dead: u64,
    /// Arrival time of the oldest event not dead, if any.
    pub oldest_live_enqueued_ms: Option<i64>,
}

/// Where a queued event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventState {
    /// Waiting for its next attempt (or in flight: a restart runs it again).
    Queued,
    /// Out of retries or too old, with nowhere to deliver it: kept for inspection.
    Dead,
}

impl EventState {
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Queued => "queued",
            EventState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> EventState {
        if s == "dead" { EventState::Dead } else { EventState::Queued }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn load_functions(&self) -> Result<Vec<StoredFunction>, StoreError>;
    /// Fails with [`StoreError::FunctionExists`] when the name is taken.
    async fn insert_function(&self, latest: &FunctionVersion, meta: &FunctionMeta) -> Result<(), StoreError>;
    async fn put_latest(&self, latest: &FunctionVersion) -> Result<(), StoreError>;
    async fn put_meta(&self, name: &str, meta: &FunctionMeta) -> Result<(), StoreError>;
    /// Stores a published version together with the function's updated meta (next version number).
    async fn insert_version(&self, version: &FunctionVersion, meta: &FunctionMeta) -> Result<(), StoreError>;
    async fn delete_version(&self, name: &str, version: u64) -> Result<(), StoreError>;
    async fn put_alias(&self, function: &str, alias: &Alias) -> Result<(), StoreError>;
    async fn delete_alias(&self, function: &str, alias: &str) -> Result<(), StoreError>;
    /// Deletes the function with its versions and aliases (its logs stay, as in CloudWatch).
    async fn delete_function(&self, name: &str) -> Result<(), StoreError>;

    /// Stores (durably) or updates an asynchronous event.
    async fn put_event(&self, event: &QueuedEvent) -> Result<(), StoreError>;
    /// Removes a finished event, by its arrival sequence number (its key).
    async fn delete_event(&self, seq: u64) -> Result<(), StoreError>;
    /// Every stored event, in arrival order (at start-up).
    async fn load_events(&self) -> Result<Vec<QueuedEvent>, StoreError>;
    /// How many events are dead, and when the oldest live one arrived (for
    /// metrics: counted in the database, no payload read).
    async fn event_backlog(&self) -> Result<EventBacklog, StoreError>;

    /// Queues log events; written in the next batch, in order.
    fn append_logs(&self, events: Vec<LogEvent>);
    /// Queues a metering record.
    fn record_invocation(&self, record: MeteringRecord);
    /// Waits until everything queued so far is on disk.
    async fn flush(&self) -> Result<(), StoreError>;

    async fn query_logs(&self, query: LogQuery) -> Result<Vec<StoredLogEvent>, StoreError>;
    async fn log_groups(&self, prefix: Option<String>) -> Result<Vec<LogGroupInfo>, StoreError>;
    /// Creates an empty log group; `false` when it already exists.
    async fn create_log_group(&self, name: &str, created_ms: i64) -> Result<bool, StoreError>;
    /// Creates an empty log stream in a group; `false` when it already exists.
    async fn create_log_stream(&self, group: &str, name: &str, created_ms: i64) -> Result<bool, StoreError>;
    /// Deletes a group with its streams and events; `false` when there was none.
    async fn delete_log_group(&self, name: &str) -> Result<bool, StoreError>;
    /// Replaces a group's tags; `false` when there is no such group.
    async fn set_log_group_tags(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<bool, StoreError>;
    /// Sets (or with `None` removes) a group's retention; `false` when there is no such group.
    async fn set_log_retention(&self, name: &str, days: Option<u32>) -> Result<bool, StoreError>;
    /// Caps the bytes of log messages stored across all groups (`None`: no cap);
    /// past it, the oldest events are deleted as new ones are written.
    fn set_log_size_cap(&self, max_bytes: Option<u64>);
    /// Deletes events older than their group's retention; returns how many.
    async fn expire_logs(&self, now_ms: i64) -> Result<u64, StoreError>;
    async fn log_streams(&self, group: String, prefix: Option<String>) -> Result<Vec<LogStreamInfo>, StoreError>;
    /// The metering records of invocations that started in `[from_ms, to_ms)`, in start order.
    async fn metering_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<MeteringRecord>, StoreError>;
    /// Counts an invocation refused with 429 in the rollups.
    fn record_throttle(&self, function: &str, at_ms: i64);
    /// The rollup buckets of `resolution` starting in `[from_ms, to_ms)`, of one function or all.
    async fn rollups(
        &self,
        function: Option<String>,
        resolution: kumo_core::rollup::Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupRow>, StoreError>;
    /// A function's latest metering records, newest first.
    async fn recent_invocations(&self, function: String, limit: usize) -> Result<Vec<MeteringRecord>, StoreError>;
    /// Every metering record of one request id (an async event's attempts), oldest first.
    async fn invocation_attempts(&self, request_id: String) -> Result<Vec<MeteringRecord>, StoreError>;
    /// The invocations of one lineage at `depth` (a chain's parents or children), at most `limit`.
    async fn lineage_invocations(
        &self,
        origin: String,
        depth: u32,
        limit: usize,
    ) -> Result<Vec<MeteringRecord>, StoreError>;

    /// Stores (durably) an IAM entity: `kind` is `user`, `role`, `policy`,
    /// `access_key` or `session`, `body` its JSON.
    async fn put_iam_entity(&self, kind: &str, key: &str, body: &str) -> Result<(), StoreError>;
    /// Removes (durably) an IAM entity.
    async fn delete_iam_entity(&self, kind: &str, key: &str) -> Result<(), StoreError>;
    /// Stores (durably) a budget's definition and alert state (both JSON).
    async fn put_budget(&self, name: &str, body: &str, state: &str) -> Result<(), StoreError>;
    async fn delete_budget(&self, name: &str) -> Result<(), StoreError>;
    /// Every budget as (name, body, state), at start-up.
    async fn load_budgets(&self) -> Result<Vec<(String, String, String)>, StoreError>;
    /// Every stored IAM entity as (kind, key, body), at start-up.
    async fn load_iam_entities(&self) -> Result<Vec<(String, String, String)>, StoreError>;
}
