//! The embedded store: SQLite in WAL mode under the data dir.
//!
//! One writer thread owns the only write connection and commits whatever has
//! queued up as one transaction (group commit): control-plane writes wait for
//! their commit with `synchronous=FULL`; log and metering batches commit with
//! `synchronous=NORMAL`, which survives a crash of Kumo but may lose the last
//! few milliseconds on power loss, as CloudWatch's own delivery would.
//! Reads use a small pool of read-only connections on blocking threads.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};

use async_trait::async_trait;
use kumo_core::function::{Alias, FunctionMeta, FunctionVersion, VersionId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::oneshot;

use super::log_cap::{self, LogCap};
use super::rollups::{self, RollupRow};
use super::{
    EventBacklog, EventState, LogEvent, LogGroupInfo, LogQuery, LogStreamInfo, MeteringRecord, QueuedEvent, Store,
    StoreError, StoredFunction, StoredLogEvent,
};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE functions (
    name TEXT PRIMARY KEY,
    latest TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE function_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE aliases (
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (function, name)
);
CREATE TABLE log_groups (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    stored_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE log_streams (
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    first_event_ms INTEGER,
    last_event_ms INTEGER,
    last_ingestion_ms INTEGER,
    PRIMARY KEY (group_name, name)
);
CREATE TABLE log_events (
    id INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX log_events_by_group ON log_events (group_name, id);
CREATE TABLE invocations (
    id INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    function TEXT NOT NULL,
    version TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    billed_ms INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL,
    max_memory_used_mb INTEGER NOT NULL,
    invocation_peak_mb INTEGER NOT NULL,
    init_duration_us INTEGER,
    cold INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_type TEXT,
    architecture TEXT NOT NULL,
    ephemeral_storage_mb INTEGER NOT NULL
);
CREATE INDEX invocations_by_function ON invocations (function, start_ms);
"#,
    r#"
CREATE TABLE async_events (
    request_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    function TEXT NOT NULL,
    qualifier TEXT,
    payload BLOB NOT NULL,
    progress TEXT NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT
);
CREATE INDEX async_events_by_seq ON async_events (seq);
"#,
    // Keyed by arrival order alone: a commit of new events then appends to the
    // end of one b-tree instead of touching random pages of a request-id index
    // (which made every group commit write several times the WAL it needed).
    r#"
CREATE TABLE async_events_by_arrival (
    seq INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,
    function TEXT NOT NULL,
    qualifier TEXT,
    payload BLOB NOT NULL,
    progress TEXT NOT NULL,
    next_attempt_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    last_error TEXT
);
INSERT INTO async_events_by_arrival
    SELECT seq, request_id, function, qualifier, payload, progress, next_attempt_ms, state, last_error FROM async_events;
DROP TABLE async_events;
ALTER TABLE async_events_by_arrival RENAME TO async_events;
"#,
    // IAM users, keys, roles, policies and STS sessions, one JSON body each
    // (the entities are small and always loaded whole).
    r#"
CREATE TABLE iam_entities (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"#,
    // S3: buckets, objects (their bytes are files under DATA_DIR/s3), multipart
    // uploads in progress; and the lineage of queued events (recursive loops).
    r#"
ALTER TABLE async_events ADD COLUMN lineage TEXT;
CREATE TABLE s3_buckets (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    region TEXT NOT NULL,
    notification TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE s3_objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE s3_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE s3_parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified_ms INTEGER NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
"#,
    // Costs: the init share of each invocation's billed time, an index for
    // month-range reports, and budgets with their alert state.
    r#"
ALTER TABLE invocations ADD COLUMN init_billed_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX invocations_by_start ON invocations (start_ms);
CREATE TABLE budgets (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    state TEXT NOT NULL
);
"#,
    // Log groups' retention (PutRetentionPolicy), enforced by `expire_logs`.
    r#"
ALTER TABLE log_groups ADD COLUMN retention_days INTEGER;
ALTER TABLE invocations ADD COLUMN cold_start_cause TEXT;
CREATE INDEX log_events_by_group_ts ON log_events (group_name, ts);
"#,
    // EventBridge rules: the definition and targets as JSON, and the tick each
    // fires next (advanced in the same transaction as the events it causes).
    r#"
CREATE TABLE event_rules (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    next_due_ms INTEGER,
    last_fired_ms INTEGER
);
"#,
    // The dashboard's rollups: per function, per minute, hour and day, merged
    // in the metering's own transaction; each record's live charge; lookups by
    // request id. Metering stored before this is rolled up once (`backfill_rollups`).
    r#"
ALTER TABLE invocations ADD COLUMN cost_units INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN lineage_origin TEXT;
ALTER TABLE invocations ADD COLUMN lineage_depth INTEGER;
CREATE INDEX invocations_by_request ON invocations (request_id);
CREATE INDEX invocations_by_lineage ON invocations (lineage_origin, lineage_depth) WHERE lineage_origin IS NOT NULL;
CREATE TABLE invocation_rollups (
    function TEXT NOT NULL,
    resolution INTEGER NOT NULL,
    bucket_ms INTEGER NOT NULL,
    invocations INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    throttles INTEGER NOT NULL,
    cold_starts INTEGER NOT NULL,
    duration_sum_us INTEGER NOT NULL,
    duration_max_us INTEGER NOT NULL,
    billed_ms INTEGER NOT NULL,
    init_count INTEGER NOT NULL,
    init_sum_us INTEGER NOT NULL,
    init_max_us INTEGER NOT NULL,
    cost_units INTEGER NOT NULL,
    max_memory_used_mb INTEGER NOT NULL,
    memory_size_mb INTEGER NOT NULL,
    histogram TEXT NOT NULL,
    PRIMARY KEY (function, resolution, bucket_ms)
) WITHOUT ROWID;
CREATE INDEX invocation_rollups_by_time ON invocation_rollups (resolution, bucket_ms);
CREATE TABLE rollup_backfill (pending INTEGER NOT NULL);
INSERT INTO rollup_backfill VALUES (1);
"#,
    // A log group's tags (CreateLogGroup, TagResource), as a JSON object.
    r#"
ALTER TABLE log_groups ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';
"#,
];

type Ack = oneshot::Sender<Result<(), String>>;

/// A control-plane change, applied inside the writer's transaction.
type DurableWrite = Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError> + Send>;

enum WriteOp {
    /// A control-plane change: must be durable before the caller answers.
    Durable(DurableWrite, Ack),
    /// A change that may be lost in a crash without harm (it only makes work
    /// be done again): committed with the next batch, without its own fsync.
    Lazy(DurableWrite),
    Logs(Vec<LogEvent>),
    Metering(Box<MeteringRecord>),
    /// An invocation refused for concurrency or a budget (counted in the rollups).
    Throttle(String, i64),
    Flush(Ack),
}

pub struct SqliteStore {
    writer: mpsc::Sender<WriteOp>,
    log_cap: Arc<LogCap>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: PathBuf,
}

fn configure(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl SqliteStore {
    /// Opens (creating and migrating) `kumo.db` in `dir`.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        let path = dir.join("kumo.db");
        let open_err = |source| StoreError::Open { path: path.display().to_string(), source };
        let mut conn = Connection::open(&path).map_err(open_err)?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        migrate(&mut conn)?;

        let (tx, rx) = mpsc::channel();
        let log_cap = Arc::new(LogCap::default());
        let writer_cap = log_cap.clone();
        std::thread::Builder::new()
            .name("kumo-store-writer".into())
            .spawn(move || writer_loop(conn, rx, &writer_cap))
            .map_err(|e| StoreError::Join(e.to_string()))?;
        Ok(SqliteStore { writer: tx, log_cap, readers: Arc::new(Mutex::new(Vec::new())), path })
    }

    /// Rolls up the metering stored before rollups existed (once; a no-op
    /// afterwards), charging it with `book`. Returns how many records it read.
    pub async fn backfill_rollups(&self, book: kumo_core::pricing::PriceBook) -> Result<u64, StoreError> {
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let out = counted.clone();
        self.write(move |tx| {
            let n = rollups::backfill(tx, &book)?;
            out.store(n, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .await?;
        Ok(counted.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        self.writer.send(op).map_err(|_| StoreError::WriterGone)
    }

    pub(crate) async fn write<F>(&self, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let (ack, done) = oneshot::channel();
        self.send(WriteOp::Durable(Box::new(f), ack))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) if message.starts_with("exists:") => {
                Err(StoreError::FunctionExists(message["exists:".len()..].to_string()))
            }
            Ok(Err(message)) => Err(StoreError::Join(message)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&c)?;
                    c
                }
            };
            let result = f(&conn);
            let mut pool = readers.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < 8 {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Join(e.to_string()))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<WriteOp>, log_cap: &LogCap) {
    let mut durable_sync = true;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let needs_fsync = batch.iter().any(|op| matches!(op, WriteOp::Durable(..) | WriteOp::Flush(_)));
        if needs_fsync != durable_sync {
            let _ = conn.pragma_update(None, "synchronous", if needs_fsync { "FULL" } else { "NORMAL" });
            durable_sync = needs_fsync;
        }
        let mut acks: Vec<(Ack, Result<(), String>)> = Vec::new();
        let outcome = apply_batch(&mut conn, batch, &mut acks, log_cap);
        for (ack, own) in acks {
            let result = match (&outcome, own) {
                (Err(e), _) => Err(e.clone()),
                (Ok(()), r) => r,
            };
            let _ = ack.send(result);
        }
        if let Err(e) = outcome {
            tracing::error!(error = %e, "store batch failed");
        }
        if !needs_fsync {
            // Logs and metering only: let a few milliseconds of them gather
            // before the next commit. Senders never wake a sleeping writer, so
            // a busy invoke path costs one wake-up per batch, not per event.
            std::thread::sleep(LOG_BATCH_WINDOW);
        }
    }
}

/// How long log and metering writes may wait to be batched.
const LOG_BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(2);

fn apply_batch(
    conn: &mut Connection,
    batch: Vec<WriteOp>,
    acks: &mut Vec<(Ack, Result<(), String>)>,
    log_cap: &LogCap,
) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut streams: HashMap<(Arc<str>, Arc<str>), (i64, i64)> = HashMap::new();
    let mut group_bytes: HashMap<Arc<str>, i64> = HashMap::new();
    let ingested = now_ms();
    let mut rolled = rollups::Pending::default();
    {
        let mut insert_log = tx
            .prepare_cached(
                "INSERT INTO log_events (group_name, stream_name, ts, ingested, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(|e| e.to_string())?;
        for op in batch {
            match op {
                WriteOp::Durable(f, ack) => {
                    // Each control-plane change runs in a savepoint so one failure
                    // does not undo the others in the batch.
                    let result =
                        tx.execute_batch("SAVEPOINT op").map_err(StoreError::from).and_then(|()| f(&tx)).map_err(|e| {
                            match e {
                                StoreError::FunctionExists(name) => format!("exists:{name}"),
                                other => other.to_string(),
                            }
                        });
                    let end = if result.is_ok() { "RELEASE op" } else { "ROLLBACK TO op; RELEASE op" };
                    tx.execute_batch(end).map_err(|e| e.to_string())?;
                    acks.push((ack, result));
                }
                WriteOp::Lazy(f) => {
                    let result = tx.execute_batch("SAVEPOINT op").map_err(StoreError::from).and_then(|()| f(&tx));
                    let end = if result.is_ok() { "RELEASE op" } else { "ROLLBACK TO op; RELEASE op" };
                    tx.execute_batch(end).map_err(|e| e.to_string())?;
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "lazy store write failed");
                    }
                }
                WriteOp::Logs(events) => {
                    for e in events {
                        insert_log
                            .execute(params![&*e.group, &*e.stream, e.timestamp_ms, ingested, e.message])
                            .map_err(|e| e.to_string())?;
                        *group_bytes.entry(e.group.clone()).or_insert(0) += e.message.len() as i64;
                        let span = streams.entry((e.group.clone(), e.stream.clone())).or_insert((i64::MAX, i64::MIN));
                        span.0 = span.0.min(e.timestamp_ms);
                        span.1 = span.1.max(e.timestamp_ms);
                    }
                }
                WriteOp::Metering(r) => {
                    tx.prepare_cached(
                        "INSERT INTO invocations (request_id, function, version, start_ms, duration_us, billed_ms, memory_mb, \
                         max_memory_used_mb, invocation_peak_mb, init_duration_us, cold, outcome, error_type, architecture, \
                         ephemeral_storage_mb, init_billed_ms, cold_start_cause, cost_units, lineage_origin, lineage_depth) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            r.request_id,
                            r.function,
                            r.version,
                            r.start_ms,
                            r.duration_us as i64,
                            r.billed_ms as i64,
                            r.memory_mb,
                            r.max_memory_used_mb as i64,
                            r.invocation_peak_mb as i64,
                            r.init_duration_us.map(|v| v as i64),
                            r.cold,
                            r.outcome,
                            r.error_type,
                            r.architecture,
                            r.ephemeral_storage_mb,
                            r.init_billed_ms as i64,
                            r.cold_start_cause,
                            i64::try_from(r.cost_units).unwrap_or(i64::MAX),
                            r.lineage_origin,
                            i64::from(r.lineage_depth)
                        ])
                    })
                    .map_err(|e| e.to_string())?;
                    rolled.add(&r);
                }
                WriteOp::Throttle(function, at_ms) => rolled.throttle(&function, at_ms),
                WriteOp::Flush(ack) => acks.push((ack, Ok(()))),
            }
        }
    }
    if !rolled.is_empty() {
        rolled.write(&tx).map_err(|e| e.to_string())?;
    }
    for ((group, stream), (first, last)) in streams {
        tx.execute(
            "INSERT INTO log_groups (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            params![&*group, first],
        )
        .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO log_streams (group_name, name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms) \
             VALUES (?1, ?2, ?3, ?3, ?4, ?5) ON CONFLICT (group_name, name) DO UPDATE SET \
             first_event_ms = min(coalesce(first_event_ms, excluded.first_event_ms), excluded.first_event_ms), \
             last_event_ms = max(coalesce(last_event_ms, excluded.last_event_ms), excluded.last_event_ms), \
             last_ingestion_ms = excluded.last_ingestion_ms",
            params![&*group, &*stream, first, last, ingested],
        )
        .map_err(|e| e.to_string())?;
    }
    let wrote_logs = !group_bytes.is_empty();
    for (group, bytes) in group_bytes {
        tx.execute("UPDATE log_groups SET stored_bytes = stored_bytes + ?2 WHERE name = ?1", params![&*group, bytes])
            .map_err(|e| e.to_string())?;
    }
    if wrote_logs {
        // A failed trim must not cost the batch its writes: it runs in a savepoint.
        tx.execute_batch("SAVEPOINT trim").map_err(|e| e.to_string())?;
        match log_cap::enforce(&tx, log_cap) {
            Ok(trimmed) => {
                tx.execute_batch("RELEASE trim").map_err(|e| e.to_string())?;
                if trimmed.events > 0 {
                    tracing::info!(
                        events = trimmed.events,
                        bytes = trimmed.bytes,
                        "deleted the oldest log events: stored logs reached --log-max-bytes"
                    );
                }
            }
            Err(e) => {
                tx.execute_batch("ROLLBACK TO trim; RELEASE trim").map_err(|e| e.to_string())?;
                tracing::warn!(error = %e, "could not trim logs to --log-max-bytes");
            }
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// Stores (or updates) a queued event inside a transaction: shared by the
/// queue and by writes that commit their events with them (S3 notifications).
pub(crate) fn insert_event(tx: &rusqlite::Transaction<'_>, e: &QueuedEvent) -> Result<(), StoreError> {
    let progress = serde_json::to_string(&e.progress)?;
    let lineage = e.lineage.as_ref().map(serde_json::to_string).transpose()?;
    tx.prepare_cached(
        "INSERT INTO async_events (request_id, seq, function, qualifier, payload, progress, next_attempt_ms, state, last_error, lineage) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (seq) DO UPDATE SET progress = excluded.progress, \
         next_attempt_ms = excluded.next_attempt_ms, state = excluded.state, last_error = excluded.last_error",
    )?
    .execute(params![
        e.request_id,
        e.seq as i64,
        e.function,
        e.qualifier,
        e.payload.as_ref(),
        progress,
        e.next_attempt_ms,
        e.state.as_str(),
        e.last_error,
        lineage
    ])?;
    Ok(())
}

fn version_number(v: VersionId) -> i64 {
    match v {
        VersionId::Latest => 0,
        VersionId::Number(n) => n as i64,
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn load_functions(&self) -> Result<Vec<StoredFunction>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            let mut functions = conn.prepare("SELECT latest, meta FROM functions ORDER BY name")?;
            let rows = functions.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (latest, meta) = row?;
                let latest: FunctionVersion = serde_json::from_str(&latest)?;
                let meta: FunctionMeta = serde_json::from_str(&meta)?;
                let mut versions = Vec::new();
                let mut vq =
                    conn.prepare_cached("SELECT body FROM function_versions WHERE name = ?1 ORDER BY version")?;
                for body in vq.query_map([&latest.name], |r| r.get::<_, String>(0))? {
                    versions.push(serde_json::from_str(&body?)?);
                }
                let mut aliases = Vec::new();
                let mut aq = conn.prepare_cached("SELECT body FROM aliases WHERE function = ?1 ORDER BY name")?;
                for body in aq.query_map([&latest.name], |r| r.get::<_, String>(0))? {
                    aliases.push(serde_json::from_str(&body?)?);
                }
                out.push(StoredFunction { latest, meta, versions, aliases });
            }
            Ok(out)
        })
        .await
    }

    async fn insert_function(&self, latest: &FunctionVersion, meta: &FunctionMeta) -> Result<(), StoreError> {
        let name = latest.name.clone();
        let latest = serde_json::to_string(latest)?;
        let meta = serde_json::to_string(meta)?;
        self.write(move |tx| {
            let exists: Option<i64> =
                tx.query_row("SELECT 1 FROM functions WHERE name = ?1", [&name], |r| r.get(0)).optional()?;
            if exists.is_some() {
                return Err(StoreError::FunctionExists(name));
            }
            tx.execute("INSERT INTO functions (name, latest, meta) VALUES (?1, ?2, ?3)", params![name, latest, meta])?;
            Ok(())
        })
        .await
    }

    async fn put_latest(&self, latest: &FunctionVersion) -> Result<(), StoreError> {
        let name = latest.name.clone();
        let body = serde_json::to_string(latest)?;
        self.write(move |tx| {
            tx.execute("UPDATE functions SET latest = ?2 WHERE name = ?1", params![name, body])?;
            Ok(())
        })
        .await
    }

    async fn put_meta(&self, name: &str, meta: &FunctionMeta) -> Result<(), StoreError> {
        let name = name.to_string();
        let body = serde_json::to_string(meta)?;
        self.write(move |tx| {
            tx.execute("UPDATE functions SET meta = ?2 WHERE name = ?1", params![name, body])?;
            Ok(())
        })
        .await
    }

    async fn insert_version(&self, version: &FunctionVersion, meta: &FunctionMeta) -> Result<(), StoreError> {
        let name = version.name.clone();
        let number = version_number(version.version);
        let body = serde_json::to_string(version)?;
        let meta = serde_json::to_string(meta)?;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO function_versions (name, version, body) VALUES (?1, ?2, ?3)",
                params![name, number, body],
            )?;
            tx.execute("UPDATE functions SET meta = ?2 WHERE name = ?1", params![name, meta])?;
            Ok(())
        })
        .await
    }

    async fn delete_version(&self, name: &str, version: u64) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM function_versions WHERE name = ?1 AND version = ?2",
                params![name, version as i64],
            )?;
            Ok(())
        })
        .await
    }

    async fn put_alias(&self, function: &str, alias: &Alias) -> Result<(), StoreError> {
        let function = function.to_string();
        let name = alias.name.clone();
        let body = serde_json::to_string(alias)?;
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO aliases (function, name, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (function, name) DO UPDATE SET body = excluded.body",
                params![function, name, body],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_alias(&self, function: &str, alias: &str) -> Result<(), StoreError> {
        let function = function.to_string();
        let alias = alias.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM aliases WHERE function = ?1 AND name = ?2", params![function, alias])?;
            Ok(())
        })
        .await
    }

    async fn put_event(&self, event: &QueuedEvent) -> Result<(), StoreError> {
        let e = event.clone();
        self.write(move |tx| insert_event(tx, &e)).await
    }

    async fn delete_event(&self, seq: u64) -> Result<(), StoreError> {
        // Lost in a crash, the event runs once more: at least once, as promised.
        self.send(WriteOp::Lazy(Box::new(move |tx| {
            tx.prepare_cached("DELETE FROM async_events WHERE seq = ?1")?.execute(params![seq as i64])?;
            Ok(())
        })))
    }

    async fn event_backlog(&self) -> Result<EventBacklog, StoreError> {
        let dead = EventState::Dead.as_str();
        self.read(move |conn| {
            let dead_count: i64 =
                conn.query_row("SELECT count(*) FROM async_events WHERE state = ?1", [dead], |r| r.get(0))?;
            // Arrival order is seq order, so the first live row is the oldest.
            let oldest: Option<String> = conn
                .query_row("SELECT progress FROM async_events WHERE state != ?1 ORDER BY seq LIMIT 1", [dead], |r| {
                    r.get(0)
                })
                .optional()?;
            let oldest_live_enqueued_ms = match oldest {
                Some(progress) => Some(serde_json::from_str::<kumo_core::retry::EventProgress>(&progress)?.enqueued_ms),
                None => None,
            };
            Ok(EventBacklog { dead: dead_count.max(0) as u64, oldest_live_enqueued_ms })
        })
        .await
    }

    async fn load_events(&self) -> Result<Vec<QueuedEvent>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT request_id, seq, function, qualifier, payload, progress, next_attempt_ms, state, last_error, lineage \
                 FROM async_events ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, Option<String>>(9)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (request_id, seq, function, qualifier, payload, progress, next_attempt_ms, state, last_error, lineage) =
                    row?;
                out.push(QueuedEvent {
                    request_id,
                    seq: seq as u64,
                    function,
                    qualifier,
                    payload: payload.into(),
                    progress: serde_json::from_str(&progress)?,
                    next_attempt_ms,
                    state: EventState::parse(&state),
                    last_error,
                    lineage: lineage.as_deref().map(serde_json::from_str).transpose()?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn delete_function(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM aliases WHERE function = ?1", [&name])?;
            tx.execute("DELETE FROM function_versions WHERE name = ?1", [&name])?;
            tx.execute("DELETE FROM functions WHERE name = ?1", [&name])?;
            Ok(())
        })
        .await
    }

    fn append_logs(&self, events: Vec<LogEvent>) {
        if !events.is_empty() && self.send(WriteOp::Logs(events)).is_err() {
            tracing::warn!("log events dropped: store writer stopped");
        }
    }

    fn record_invocation(&self, record: MeteringRecord) {
        if self.send(WriteOp::Metering(Box::new(record))).is_err() {
            tracing::warn!("metering record dropped: store writer stopped");
        }
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(WriteOp::Flush(ack))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Join(e)),
            Err(_) => Err(StoreError::WriterGone),
        }
    }

    async fn query_logs(&self, q: LogQuery) -> Result<Vec<StoredLogEvent>, StoreError> {
        self.read(move |conn| {
            let mut sql = String::from(
                "SELECT id, stream_name, ts, ingested, message FROM log_events WHERE group_name = ?1 AND id > ?2",
            );
            let mut args: Vec<rusqlite::types::Value> = vec![q.group.clone().into(), q.after_id.unwrap_or(0).into()];
            if let Some(start) = q.start_ms {
                args.push(start.into());
                sql.push_str(&format!(" AND ts >= ?{}", args.len()));
            }
            if let Some(end) = q.end_ms {
                args.push(end.into());
                sql.push_str(&format!(" AND ts <= ?{}", args.len()));
            }
            if let Some(streams) = &q.streams {
                let mut placeholders = Vec::new();
                for s in streams {
                    args.push(s.clone().into());
                    placeholders.push(format!("?{}", args.len()));
                }
                sql.push_str(&format!(" AND stream_name IN ({})", placeholders.join(",")));
            }
            if let Some(prefix) = &q.stream_prefix {
                args.push(prefix.clone().into());
                sql.push_str(&format!(" AND substr(stream_name, 1, length(?{n})) = ?{n}", n = args.len()));
            }
            for term in &q.filter_terms {
                args.push(term.clone().into());
                sql.push_str(&format!(" AND instr(message, ?{}) > 0", args.len()));
            }
            sql.push_str(if q.newest_first { " ORDER BY id DESC" } else { " ORDER BY id" });
            args.push((q.limit.max(1) as i64).into());
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok(StoredLogEvent {
                    id: r.get(0)?,
                    stream: r.get(1)?,
                    timestamp_ms: r.get(2)?,
                    ingestion_ms: r.get(3)?,
                    message: r.get(4)?,
                })
            })?;
            let mut events = rows.collect::<Result<Vec<_>, _>>()?;
            if q.newest_first {
                events.reverse();
            }
            Ok(events)
        })
        .await
    }

    async fn log_groups(&self, prefix: Option<String>) -> Result<Vec<LogGroupInfo>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT name, created_ms, stored_bytes, retention_days, tags FROM log_groups \
                 WHERE ?1 IS NULL OR substr(name, 1, length(?1)) = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map([prefix], |r| {
                let tags: String = r.get(4)?;
                Ok(LogGroupInfo {
                    name: r.get(0)?,
                    created_ms: r.get(1)?,
                    stored_bytes: r.get(2)?,
                    retention_days: r.get(3)?,
                    // Written only by `set_log_group_tags` from a map, so it parses;
                    // a hand-edited row loses its tags rather than the group.
                    tags: serde_json::from_str(&tags).unwrap_or_default(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn create_log_group(&self, name: &str, created_ms: i64) -> Result<bool, StoreError> {
        let name = name.to_string();
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            let n = tx.execute(
                "INSERT INTO log_groups (name, created_ms) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, created_ms],
            )?;
            let _ = tx_done.send(n == 1);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(false))
    }

    async fn create_log_stream(&self, group: &str, name: &str, created_ms: i64) -> Result<bool, StoreError> {
        let (group, name) = (group.to_string(), name.to_string());
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            let n = tx.execute(
                "INSERT INTO log_streams (group_name, name, created_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (group_name, name) DO NOTHING",
                params![group, name, created_ms],
            )?;
            let _ = tx_done.send(n == 1);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(false))
    }

    async fn delete_log_group(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            tx.execute("DELETE FROM log_events WHERE group_name = ?1", [&name])?;
            tx.execute("DELETE FROM log_streams WHERE group_name = ?1", [&name])?;
            let n = tx.execute("DELETE FROM log_groups WHERE name = ?1", [&name])?;
            let _ = tx_done.send(n == 1);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(false))
    }

    async fn set_log_group_tags(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<bool, StoreError> {
        let name = name.to_string();
        let tags = serde_json::to_string(tags)?;
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            let n = tx.execute("UPDATE log_groups SET tags = ?2 WHERE name = ?1", params![name, tags])?;
            let _ = tx_done.send(n == 1);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(false))
    }

    async fn set_log_retention(&self, name: &str, days: Option<u32>) -> Result<bool, StoreError> {
        let name = name.to_string();
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            let n = tx.execute("UPDATE log_groups SET retention_days = ?2 WHERE name = ?1", params![name, days])?;
            let _ = tx_done.send(n == 1);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(false))
    }

    fn set_log_size_cap(&self, max_bytes: Option<u64>) {
        self.log_cap.set(max_bytes);
    }

    async fn expire_logs(&self, now_ms: i64) -> Result<u64, StoreError> {
        let (tx_done, rx) = std::sync::mpsc::channel();
        self.write(move |tx| {
            let n = tx.execute(
                "DELETE FROM log_events WHERE id IN (SELECT e.id FROM log_events e JOIN log_groups g \
                 ON e.group_name = g.name WHERE g.retention_days IS NOT NULL \
                 AND e.ts < ?1 - g.retention_days * 86400000)",
                [now_ms],
            )?;
            if n > 0 {
                tx.execute(
                    "UPDATE log_groups SET stored_bytes = (SELECT coalesce(sum(length(CAST(message AS BLOB))), 0) FROM log_events \
                     WHERE group_name = log_groups.name) WHERE retention_days IS NOT NULL",
                    [],
                )?;
            }
            let _ = tx_done.send(n as u64);
            Ok(())
        })
        .await?;
        Ok(rx.recv().unwrap_or(0))
    }

    async fn log_streams(&self, group: String, prefix: Option<String>) -> Result<Vec<LogStreamInfo>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT name, created_ms, first_event_ms, last_event_ms, last_ingestion_ms FROM log_streams \
                 WHERE group_name = ?1 AND (?2 IS NULL OR substr(name, 1, length(?2)) = ?2) ORDER BY name",
            )?;
            let rows = stmt.query_map(params![group, prefix], |r| {
                Ok(LogStreamInfo {
                    name: r.get(0)?,
                    created_ms: r.get(1)?,
                    first_event_ms: r.get(2)?,
                    last_event_ms: r.get(3)?,
                    last_ingestion_ms: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn metering_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<MeteringRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {} FROM invocations WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY start_ms, id",
                rollups::RECORD_COLUMNS
            ))?;
            let rows = stmt.query_map(params![from_ms, to_ms], rollups::record_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    fn record_throttle(&self, function: &str, at_ms: i64) {
        let _ = self.send(WriteOp::Throttle(function.to_string(), at_ms));
    }

    async fn rollups(
        &self,
        function: Option<String>,
        resolution: kumo_core::rollup::Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.read(move |conn| Ok(rollups::query(conn, function.as_deref(), resolution, from_ms, to_ms)?)).await
    }

    async fn recent_invocations(&self, function: String, limit: usize) -> Result<Vec<MeteringRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM invocations WHERE function = ?1 ORDER BY start_ms DESC, id DESC LIMIT ?2",
                rollups::RECORD_COLUMNS
            ))?;
            let rows = stmt.query_map(params![function, limit as i64], rollups::record_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn lineage_invocations(
        &self,
        origin: String,
        depth: u32,
        limit: usize,
    ) -> Result<Vec<MeteringRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM invocations WHERE lineage_origin = ?1 AND lineage_depth = ?2 ORDER BY start_ms, id LIMIT ?3",
                rollups::RECORD_COLUMNS
            ))?;
            let rows = stmt.query_map(params![origin, i64::from(depth), limit as i64], rollups::record_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn invocation_attempts(&self, request_id: String) -> Result<Vec<MeteringRecord>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {} FROM invocations WHERE request_id = ?1 ORDER BY start_ms, id",
                rollups::RECORD_COLUMNS
            ))?;
            let rows = stmt.query_map(params![request_id], rollups::record_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn put_budget(&self, name: &str, body: &str, state: &str) -> Result<(), StoreError> {
        let (name, body, state) = (name.to_string(), body.to_string(), state.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO budgets (name, body, state) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET body = excluded.body, state = excluded.state",
            )?
            .execute(params![name, body, state])?;
            Ok(())
        })
        .await
    }

    async fn delete_budget(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_string();
        self.write(move |tx| {
            tx.execute("DELETE FROM budgets WHERE name = ?1", [name])?;
            Ok(())
        })
        .await
    }

    async fn load_budgets(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT name, body, state FROM budgets ORDER BY name")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn put_iam_entity(&self, kind: &str, key: &str, body: &str) -> Result<(), StoreError> {
        let (kind, key, body) = (kind.to_string(), key.to_string(), body.to_string());
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO iam_entities (kind, key, body) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
            )?
            .execute(params![kind, key, body])?;
            Ok(())
        })
        .await
    }

    async fn delete_iam_entity(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.write(move |tx| {
            tx.prepare_cached("DELETE FROM iam_entities WHERE kind = ?1 AND key = ?2")?.execute(params![kind, key])?;
            Ok(())
        })
        .await
    }

    async fn load_iam_entities(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT kind, key, body FROM iam_entities ORDER BY kind, key")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
