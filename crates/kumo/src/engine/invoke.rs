//! The invoke path: resolve, admit, run in an environment, log and meter.

use super::now_ms;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use bytes::Bytes;
use kumo_core::function::FunctionVersion;
use kumo_core::invoke::{self, InvocationType, MAX_ASYNC_REQUEST_BYTES, MAX_SYNC_REQUEST_BYTES};
use kumo_core::lineage::Lineage;
use kumo_core::logfmt::{self, Report, ReportStatus};
use kumo_core::{ApiError, ErrorCode};

use super::Engine;
use super::environment::{Event, InitMode, Outcome};
use super::pool::SpawnContext;
use super::stream::StreamSender;
use crate::store::MeteringRecord;

/// An Invoke call, already taken apart from HTTP.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub function_name: String,
    pub qualifier: Option<String>,
    pub invocation_type: InvocationType,
    pub payload: Bytes,
    pub log_tail: bool,
    /// Base64 `X-Amz-Client-Context`, decoded to JSON for the runtime.
    pub client_context: Option<String>,
    /// The lineage of the invocation that made this call, when a function did.
    pub caller_lineage: Option<Lineage>,
    /// The request id to run under (a function URL's request id is its
    /// invocation's); a new one when `None`.
    pub request_id: Option<String>,
    /// Where a streamed answer goes as it arrives (RESPONSE_STREAM URLs,
    /// InvokeWithResponseStream); `None` collects it.
    pub stream: Option<StreamSender>,
}

/// What a synchronous caller adds to an invocation.
#[derive(Default)]
pub(super) struct RunExtras {
    /// Base64 `X-Amz-Client-Context`, decoded.
    pub(super) client_context: Option<String>,
    /// Whether the caller wants the last 4 KB of the log.
    pub(super) want_tail: bool,
    pub(super) stream: Option<StreamSender>,
}

/// What the HTTP layer turns into Invoke's response.
#[derive(Debug, Clone)]
pub struct InvokeResponse {
    pub status: u16,
    pub payload: Bytes,
    pub function_error: Option<&'static str>,
    pub executed_version: Option<String>,
    pub log_result: Option<String>,
    pub request_id: String,
}

impl InvokeResponse {
    /// A bodiless answer (202 for Event, 204 for DryRun).
    fn empty(status: u16, request_id: String) -> InvokeResponse {
        InvokeResponse {
            status,
            payload: Bytes::new(),
            function_error: None,
            executed_version: None,
            log_result: None,
            request_id,
        }
    }
}

/// A new X-Ray trace header with the invocation's lineage; returns it and its root.
fn trace_id(lineage: &Lineage) -> (String, String) {
    let secs = now_ms() / 1000;
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    let root = format!("1-{secs:08x}-{}", &a[..24]);
    (format!("Root={root};Parent={};Sampled=0;{}", &b[..16], lineage.trace_field()), root)
}

/// A resolved invocation target.
pub(super) struct Target {
    pub(super) version: Arc<FunctionVersion>,
    invoked_arn: String,
}

/// Leaves the in-flight count even if the invocation's future is dropped.
struct InFlight<'a>(&'a Engine);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// Holds one unit of concurrency for a function.
pub(super) struct Permit<'a> {
    engine: &'a Engine,
    function: String,
}

impl<'a> Permit<'a> {
    /// Takes over a unit of concurrency acquired elsewhere (the async dispatcher).
    pub(super) fn adopt(engine: &'a Engine, function: String) -> Permit<'a> {
        Permit { engine, function }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.engine.lock_concurrency().release(&self.function);
        // Queued events may have been waiting for exactly this.
        self.engine.queue_capacity_freed();
    }
}

impl Engine {
    pub(super) fn target(&self, raw: &str, qualifier: Option<&str>) -> Result<Target, ApiError> {
        let roll = f64::from(uuid::Uuid::new_v4().as_u128() as u32) / (f64::from(u32::MAX) + 1.0);
        self.resolve(raw, qualifier, Some(roll), |_, version, label| {
            let invoked_arn = match &label {
                Some(l) => self.cfg.scope.qualified_arn(&version.name, l),
                None => self.cfg.scope.function_arn(&version.name),
            };
            Target { version, invoked_arn }
        })
    }

    pub async fn invoke(self: &Arc<Self>, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        let target = self.target(&req.function_name, req.qualifier.as_deref())?;
        let limit = match req.invocation_type {
            InvocationType::Event => MAX_ASYNC_REQUEST_BYTES,
            _ => MAX_SYNC_REQUEST_BYTES,
        };
        if req.payload.len() > limit {
            let message = match req.invocation_type {
                InvocationType::Event => format!(
                    "{} byte payload is too large for the Event invocation type (limit {limit} bytes)",
                    req.payload.len()
                ),
                _ => format!("Request must be smaller than {limit} bytes for the InvokeFunction operation"),
            };
            return Err(ApiError::new(ErrorCode::RequestEntityTooLarge, message));
        }
        let payload = if req.payload.iter().all(u8::is_ascii_whitespace) {
            // No payload: the function receives an empty JSON object.
            Bytes::from_static(b"{}")
        } else {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&req.payload) {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequestContent,
                    format!("Could not parse request body into json: Could not parse payload into json: {e}"),
                ));
            }
            req.payload.clone()
        };
        if req.invocation_type != InvocationType::DryRun
            && let Some(refusal) = self.budget_refusal(&target.version.name)
        {
            self.metrics.throttled(&target.version.name);
            self.store.record_throttle(&target.version.name, super::now_ms());
            return Err(refusal);
        }
        let request_id = req.request_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let executed_version = target.version.version.to_string();
        let lineage = match &req.caller_lineage {
            Some(caller) => caller.caused(),
            None => Lineage::origin(&super::recursion::new_origin()),
        };
        match req.invocation_type {
            InvocationType::DryRun => Ok(InvokeResponse::empty(204, request_id)),
            InvocationType::Event => {
                if !self.accepting.load(Ordering::Acquire) {
                    return Err(shutting_down());
                }
                // Durable before 202; the dispatcher resolves the target at each attempt.
                drop(target);
                self.enqueue_event(req.function_name, req.qualifier, payload, request_id.clone(), Some(lineage))
                    .await?;
                Ok(InvokeResponse::empty(202, request_id))
            }
            InvocationType::RequestResponse => {
                if !self.recursion_permits(&target.version.name, Some(&lineage), &request_id) {
                    return Err(ApiError::new(
                        ErrorCode::RecursiveInvocation,
                        format!(
                            "Lambda detected that this invocation is part of a recursive loop (invocation {} of one chain) and stopped it.",
                            lineage.depth
                        ),
                    ));
                }
                let _permit = self.admit(&target.version.name)?;
                let run = self
                    .run(
                        &target,
                        payload,
                        request_id.clone(),
                        Some(lineage),
                        RunExtras { client_context: req.client_context, want_tail: req.log_tail, stream: req.stream },
                    )
                    .await?;
                Ok(InvokeResponse {
                    status: 200,
                    payload: run.payload,
                    function_error: run.function_error,
                    executed_version: Some(executed_version),
                    log_result: run.log_tail.map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
                    request_id,
                })
            }
        }
    }

    pub(super) fn admit(&self, function: &str) -> Result<Permit<'_>, ApiError> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(shutting_down());
        }
        if let Err(e) = self.lock_concurrency().try_acquire(function) {
            self.metrics.throttled(function);
            self.store.record_throttle(function, super::now_ms());
            return Err(ApiError::throttled(e));
        }
        Ok(Permit { engine: self, function: function.to_string() })
    }

    /// One invocation in an environment, with its logs and metering.
    pub(super) async fn run(
        &self,
        target: &Target,
        payload: Bytes,
        request_id: String,
        lineage: Option<Lineage>,
        extras: RunExtras,
    ) -> Result<RunResult, ApiError> {
        let RunExtras { client_context, want_tail, stream } = extras;
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let _in_flight = InFlight(self);
        // Events stored before lineages existed start a chain of their own.
        let lineage = lineage.unwrap_or_else(|| Lineage::origin(&super::recursion::new_origin()));
        let (trace_id, trace_root) = trace_id(&lineage);
        let (lineage_origin, lineage_depth) = (lineage.origin.clone(), lineage.depth);
        let _lineage = self.lineages.enter(&trace_root, &target.version.name, lineage);
        let version = &target.version;
        let pool = self.pool_for(version);
        let start_ms = now_ms();
        let mut cold_start_cause = None;
        let (mut env, cold) = match pool.take_idle() {
            Some(env) => (env, false),
            None => {
                cold_start_cause = Some(pool.cold_start_cause());
                match self.cold_start(&pool, version).await {
                    Ok(env) => (env, true),
                    Err(failure) => return Ok(self.spawn_failed(target, &request_id, start_ms, failure, want_tail)),
                }
            }
        };
        let event = Arc::new(Event {
            request_id: request_id.clone(),
            payload,
            timeout_ms: u64::from(version.config.timeout_s) * 1000,
            invoked_arn: target.invoked_arn.clone(),
            trace_id,
            client_context,
            cognito_identity: None,
            version: version.version,
            stream,
        });
        let mut result = env.invoke(event.clone(), InitMode::OnDemand).await;
        if matches!(result.outcome, Outcome::InitTimeout) {
            // Lambda retries an init that overran its 10 s within the invocation
            // itself, in a fresh environment, bounded by the function timeout.
            pool.release(env, false);
            env = match self.cold_start(&pool, version).await {
                Ok(env) => env,
                Err(failure) => return Ok(self.spawn_failed(target, &request_id, start_ms, failure, want_tail)),
            };
            result = env.invoke(event, InitMode::Suppressed).await;
        }

        let mut lines = Vec::with_capacity(4);
        if !result.delivered {
            lines.push(logfmt::start_line(&request_id, version.version));
        }
        let (payload, function_error, status, error_type) = match result.outcome {
            Outcome::Success(body) => (body, None, ReportStatus::Success, None),
            Outcome::FunctionError { body } => {
                let kind = super::environment::error_type_of(None, &body);
                (body, Some("Unhandled"), ReportStatus::Success, kind)
            }
            Outcome::InitError { ref error_type, ref body } => {
                (body.clone(), Some("Unhandled"), ReportStatus::Error(error_type.clone()), Some(error_type.clone()))
            }
            Outcome::Timeout | Outcome::InitTimeout => (
                Bytes::from(invoke::timeout_payload(&request_id, version.config.timeout_s)),
                Some("Unhandled"),
                ReportStatus::Timeout,
                Some("Sandbox.Timedout".to_string()),
            ),
            Outcome::Crashed { error_type, ref body } => {
                (body.clone(), Some("Unhandled"), ReportStatus::Error(error_type.into()), Some(error_type.to_string()))
            }
        };
        let init_us = if cold { result.init_us } else { None };
        let billable_us = result.duration_us + if self.cfg.bill_init { init_us.unwrap_or(0) } else { 0 };
        let billed_ms = logfmt::billed_ms(billable_us, self.cfg.billing_granularity_ms);
        // What the init phase added to the bill: the cold start's share of the cost.
        let init_billed_ms = billed_ms.saturating_sub(if billable_us == result.duration_us {
            billed_ms
        } else {
            logfmt::billed_ms(result.duration_us, self.cfg.billing_granularity_ms)
        });
        let max_used_mb = logfmt::mib_ceil(result.env_peak_bytes);
        let report = Report {
            request_id: request_id.clone(),
            duration_us: result.duration_us,
            billed_ms,
            memory_mb: version.config.memory_mb,
            max_memory_used_mb: max_used_mb,
            init_duration_us: init_us,
            status: status.clone(),
        };
        lines.push(logfmt::end_line(&request_id));
        lines.push(report.line());
        let log_tail = env.shared.log.finish_invocation(&lines, want_tail);
        let mut record = MeteringRecord {
            request_id,
            function: version.name.clone(),
            version: version.version.to_string(),
            start_ms,
            duration_us: result.duration_us,
            billed_ms,
            init_billed_ms,
            memory_mb: version.config.memory_mb,
            max_memory_used_mb: max_used_mb,
            invocation_peak_mb: logfmt::mib_ceil(result.invocation_peak_bytes),
            init_duration_us: init_us,
            cold,
            cold_start_cause: cold_start_cause.map(str::to_string),
            outcome: match status {
                ReportStatus::Success if function_error.is_some() => "error".into(),
                ReportStatus::Success => "success".into(),
                ReportStatus::Timeout => "timeout".into(),
                ReportStatus::Error(_) => "crash".into(),
            },
            error_type,
            architecture: version.config.architecture.clone(),
            ephemeral_storage_mb: version.config.ephemeral_storage_mb,
            cost_units: 0,
            lineage_origin: Some(lineage_origin),
            lineage_depth,
        };
        record.cost_units = self.charge_invocation(&record);
        self.metrics.observe(&record);
        self.store.record_invocation(record);
        pool.release(env, result.reusable);
        Ok(RunResult { payload, function_error, log_tail })
    }

    async fn cold_start(
        &self,
        pool: &super::pool::Pool,
        version: &FunctionVersion,
    ) -> Result<Arc<super::environment::Environment>, super::pool::SpawnFailure> {
        self.make_room();
        let credentials = match self.roles.get() {
            Some(roles) => Some(roles.session(&version.config.role, &version.name).await.map_err(|message| {
                super::pool::SpawnFailure { error_type: "Runtime.ExecutionRoleUnavailable", message }
            })?),
            None => None,
        };
        let ctx = SpawnContext {
            sandboxes: &self.sandboxes,
            runtimes: &self.runtimes,
            code: &self.code,
            store: &self.store,
            region: &self.cfg.scope.region,
            runtime_version_arn: self.cfg.scope.runtime_version_arn(&version.code.sha256_hex[..16]),
            data_dir: &self.cfg.data_dir,
            api_endpoint: &self.cfg.api_endpoint,
            freeze: self.cfg.freeze,
            kumo_api: self.kumo_api.get(),
            outbound_network: self.outbound_network(&version.name),
            egress: crate::egress::EgressPolicy { outbound: true, host_loopback: self.cfg.egress_host_loopback },
            credentials,
        };
        if let Some(c) = &ctx.credentials {
            // Requests signed with this key come from this function (lineage attribution).
            self.lineages.remember_key(&c.access_key_id, &version.name);
        }
        pool.spawn(&ctx).await
    }

    /// Keeps the machine's environments under `--max-environments` by evicting
    /// the longest-idle one of any function before a cold start. Busy
    /// environments are never evicted: concurrency limits bound those.
    fn make_room(&self) {
        let live = super::environment::undestroyed_environments();
        if live < self.cfg.max_environments {
            return;
        }
        let now = std::time::Instant::now();
        let pools: Vec<Arc<super::pool::Pool>> =
            self.pools.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        let victim = pools.iter().filter_map(|p| p.oldest_idle(now).map(|age| (age, p))).max_by_key(|(age, _)| *age);
        if let Some((_, pool)) = victim {
            pool.evict_oldest();
        }
    }

    /// An environment that could not even start: reported like an init error.
    fn spawn_failed(
        &self,
        target: &Target,
        request_id: &str,
        start_ms: i64,
        failure: super::pool::SpawnFailure,
        want_tail: bool,
    ) -> RunResult {
        let version = &target.version;
        let body = invoke::error_payload(failure.error_type, &failure.message);
        let report = Report {
            request_id: request_id.to_string(),
            duration_us: 0,
            billed_ms: 0,
            memory_mb: version.config.memory_mb,
            max_memory_used_mb: 0,
            init_duration_us: None,
            status: ReportStatus::Error(failure.error_type.to_string()),
        };
        let lines = [
            logfmt::init_report_line(0, "init", &ReportStatus::Error(failure.error_type.to_string())),
            logfmt::start_line(request_id, version.version),
            logfmt::end_line(request_id),
            report.line(),
        ];
        let stream = logfmt::log_stream_name(start_ms, version.version, &uuid::Uuid::new_v4().simple().to_string());
        let group: Arc<str> = Arc::from(version.config.logging.log_group.as_str());
        let stream: Arc<str> = Arc::from(stream.as_str());
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.store.append_logs(
            std::iter::once(format!("Error: {}", failure.message))
                .chain(lines.iter().cloned())
                .map(|message| crate::store::LogEvent {
                    group: group.clone(),
                    stream: stream.clone(),
                    timestamp_ms: start_ms,
                    message,
                })
                .collect(),
        );
        RunResult { payload: Bytes::from(body), function_error: Some("Unhandled"), log_tail: want_tail.then_some(text) }
    }
}

pub(super) struct RunResult {
    pub(super) payload: Bytes,
    pub(super) function_error: Option<&'static str>,
    log_tail: Option<String>,
}

fn shutting_down() -> ApiError {
    ApiError::new(ErrorCode::Service, "Kumo is shutting down and accepts no new invocations.")
}
