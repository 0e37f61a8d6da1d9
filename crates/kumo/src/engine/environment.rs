//! One execution environment: a sandboxed runtime process, the Runtime API
//! state it talks to, and its log stream.
//!
//! The state machine lives in [`EnvShared`], shared by the invoke path and the
//! environment's own Runtime API listener:
//!
//! ```text
//!   spawned --/next--> idle (parked in /next, frozen) --dispatch--> busy
//!      |                 ^                                            |
//!      |                 +------------- /response or /error ---------+
//!      +--/init/error or exit--> dead <-- exit, timeout, crash ------+
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kumo_core::function::{FunctionVersion, VersionId};
use kumo_core::invoke::{self, INIT_LIMIT_MS};
use kumo_core::logfmt::{self, ReportStatus};
use tokio::sync::{Notify, oneshot};

use super::envlog::EnvLog;
use super::stream::StreamSender;
use crate::sandbox::{ExitInfo, Sandbox};

/// Environments started and not yet fully destroyed (processes reaped,
/// cgroups removed) in this process; shutdown waits for it to reach zero.
static UNDESTROYED: AtomicUsize = AtomicUsize::new(0);

pub fn undestroyed_environments() -> usize {
    UNDESTROYED.load(Ordering::Acquire)
}

/// One event as the runtime receives it from `/next`.
#[derive(Debug)]
pub struct Event {
    pub request_id: String,
    pub payload: Bytes,
    pub timeout_ms: u64,
    pub invoked_arn: String,
    pub trace_id: String,
    pub client_context: Option<String>,
    pub cognito_identity: Option<String>,
    pub version: VersionId,
    /// Where a streamed answer goes as it arrives, when the caller can take one.
    pub stream: Option<StreamSender>,
}

/// What the runtime answered for one event.
#[derive(Debug)]
pub enum Reply {
    Response { body: Bytes, at: Instant },
    Error { error_type: Option<String>, body: Bytes, at: Instant },
    ResponseTooLarge { at: Instant },
    Exited(ExitInfo),
}

/// How the init phase ended.
#[derive(Debug)]
enum InitSignal {
    Ready(Instant),
    Failed { error_type: Option<String>, body: Bytes },
    Exited(ExitInfo),
}

#[derive(Default)]
struct RtState {
    initialized: bool,
    dead: bool,
    next_waiter: Option<oneshot::Sender<Arc<Event>>>,
    pending: Option<Arc<Event>>,
    inflight: Option<(String, oneshot::Sender<Reply>)>,
    /// The in-flight event's stream sink (and the version it runs), until its runtime starts streaming.
    stream: Option<(StreamSender, VersionId)>,
    init_signal: Option<oneshot::Sender<InitSignal>>,
    frozen: bool,
    /// Whether the current event reached the runtime (and START was logged).
    delivered: bool,
}

/// Errors the Runtime API reports to the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeApiError {
    InvalidRequestId,
    InvalidStateTransition,
    Gone,
}

/// What `/next` should do.
pub enum Next {
    Deliver(Arc<Event>),
    Wait(oneshot::Receiver<Arc<Event>>),
    Gone,
}

/// The part of an environment its Runtime API listener needs.
pub struct EnvShared {
    pub sandbox: Arc<Sandbox>,
    pub log: Arc<EnvLog>,
    freeze_between_invocations: bool,
    state: Mutex<RtState>,
    exited: Notify,
    has_exited: AtomicBool,
}

impl EnvShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, RtState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands an event to the runtime: START line first, then the event.
    fn deliver(&self, event: &Event) {
        self.log.platform_line(&logfmt::start_line(&event.request_id, event.version));
    }

    /// `GET /runtime/invocation/next`.
    pub fn next(&self) -> Next {
        let mut st = self.lock();
        if st.dead {
            return Next::Gone;
        }
        if !st.initialized {
            st.initialized = true;
            // Init ran with the whole machine's CPU, as Lambda boosts it; invocations get their share.
            self.sandbox.end_init_boost();
            if let Some(signal) = st.init_signal.take() {
                let _ = signal.send(InitSignal::Ready(Instant::now()));
            }
        }
        if let Some(event) = st.pending.take() {
            st.delivered = true;
            self.deliver(&event);
            return Next::Deliver(event);
        }
        let (tx, rx) = oneshot::channel();
        st.next_waiter = Some(tx);
        // Nothing to do: no user code may run until the next event.
        if self.freeze_between_invocations && !st.frozen {
            st.frozen = true;
            self.sandbox.freeze();
        }
        Next::Wait(rx)
    }

    fn take_inflight(&self, request_id: &str) -> Result<oneshot::Sender<Reply>, RuntimeApiError> {
        let mut st = self.lock();
        match st.inflight.take() {
            Some((id, tx)) if id == request_id => {
                st.stream = None;
                Ok(tx)
            }
            other => {
                st.inflight = other;
                Err(RuntimeApiError::InvalidRequestId)
            }
        }
    }

    /// Where the runtime's stream for `request_id` goes as it arrives; `None`
    /// when the caller takes only a buffered answer.
    pub fn take_stream_sink(&self, request_id: &str) -> Result<Option<(StreamSender, VersionId)>, RuntimeApiError> {
        let mut st = self.lock();
        match &st.inflight {
            Some((id, _)) if id == request_id => Ok(st.stream.take()),
            _ => Err(RuntimeApiError::InvalidRequestId),
        }
    }

    /// `POST /runtime/invocation/{id}/response`.
    pub fn respond(&self, request_id: &str, body: Bytes) -> Result<(), RuntimeApiError> {
        let tx = self.take_inflight(request_id)?;
        let _ = tx.send(Reply::Response { body, at: Instant::now() });
        Ok(())
    }

    /// A response over Lambda's limit: the runtime gets 413, the caller an error.
    pub fn respond_too_large(&self, request_id: &str) -> Result<(), RuntimeApiError> {
        let tx = self.take_inflight(request_id)?;
        let _ = tx.send(Reply::ResponseTooLarge { at: Instant::now() });
        Ok(())
    }

    /// `POST /runtime/invocation/{id}/error`.
    pub fn report_error(
        &self,
        request_id: &str,
        error_type: Option<String>,
        body: Bytes,
    ) -> Result<(), RuntimeApiError> {
        let tx = self.take_inflight(request_id)?;
        let _ = tx.send(Reply::Error { error_type, body, at: Instant::now() });
        Ok(())
    }

    /// `POST /runtime/init/error`.
    pub fn init_error(&self, error_type: Option<String>, body: Bytes) -> Result<(), RuntimeApiError> {
        let mut st = self.lock();
        match st.init_signal.take() {
            Some(signal) if !st.initialized => {
                let _ = signal.send(InitSignal::Failed { error_type, body });
                Ok(())
            }
            other => {
                st.init_signal = other;
                Err(RuntimeApiError::InvalidStateTransition)
            }
        }
    }

    /// The runtime process has exited: fail whatever waits on it.
    fn on_exit(&self, info: ExitInfo) {
        let mut st = self.lock();
        st.dead = true;
        st.next_waiter = None;
        st.pending = None;
        if let Some(signal) = st.init_signal.take() {
            let _ = signal.send(InitSignal::Exited(info));
        }
        if let Some((_, tx)) = st.inflight.take() {
            let _ = tx.send(Reply::Exited(info));
        }
        st.stream = None;
        drop(st);
        self.has_exited.store(true, Ordering::Release);
        self.exited.notify_waiters();
    }

    /// Sends an event: straight to a parked `/next`, or queued for the next one.
    fn dispatch(&self, event: Arc<Event>, reply: oneshot::Sender<Reply>) -> Result<(), Arc<Event>> {
        let mut st = self.lock();
        if st.dead {
            return Err(event);
        }
        st.inflight = Some((event.request_id.clone(), reply));
        st.stream = event.stream.clone().map(|sink| (sink, event.version));
        st.delivered = false;
        if st.frozen {
            st.frozen = false;
            self.sandbox.thaw();
        }
        match st.next_waiter.take() {
            Some(waiter) => {
                st.delivered = true;
                self.deliver(&event);
                if let Err(event) = waiter.send(event) {
                    // The /next connection went away; the runtime will ask again.
                    st.pending = Some(event);
                }
            }
            None => st.pending = Some(event),
        }
        Ok(())
    }
}

/// How one invocation ended, as the engine bills and reports it.
#[derive(Debug)]
pub enum Outcome {
    Success(Bytes),
    /// The runtime reported an error (the handler raised, or a marshalling error).
    FunctionError {
        body: Bytes,
    },
    /// Init failed (reported by the runtime, or it exited during init).
    InitError {
        error_type: String,
        body: Bytes,
    },
    Timeout,
    /// The on-demand init phase hit its 10 s limit; Lambda retries init within the invocation.
    InitTimeout,
    /// The runtime died mid-invocation.
    Crashed {
        error_type: &'static str,
        body: Bytes,
    },
}

#[derive(Debug)]
pub struct InvocationResult {
    pub outcome: Outcome,
    pub duration_us: u64,
    pub init_us: Option<u64>,
    pub invocation_peak_bytes: u64,
    pub env_peak_bytes: u64,
    /// Whether the environment can serve another invocation.
    pub reusable: bool,
    /// Whether the event reached the runtime (START was logged).
    pub delivered: bool,
}

/// How a cold environment's init phase is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitMode {
    /// Lambda's on-demand init: 10 s.
    OnDemand,
    /// The retry after an on-demand init timed out: init and invocation share the function timeout.
    Suppressed,
}

/// A live environment owned by a pool.
pub struct Environment {
    pub id: String,
    pub version: Arc<FunctionVersion>,
    pub shared: Arc<EnvShared>,
    spawned_at: Instant,
    init_rx: Mutex<Option<oneshot::Receiver<InitSignal>>>,
    last_used: Mutex<Instant>,
    env_peak_bytes: AtomicU64,
    listener_tasks: Vec<tokio::task::AbortHandle>,
    pub tmp_dir: Option<std::path::PathBuf>,
    /// When the execution role's credentials given to this environment expire.
    pub credentials_expire_ms: Option<i64>,
}

/// The parts a freshly spawned environment is assembled from.
pub struct NewEnvironment {
    pub id: String,
    pub version: Arc<FunctionVersion>,
    pub sandbox: Arc<Sandbox>,
    pub log: Arc<EnvLog>,
    pub freeze_between_invocations: bool,
    pub spawned_at: Instant,
    pub tmp_dir: Option<std::path::PathBuf>,
    pub credentials_expire_ms: Option<i64>,
}

impl Environment {
    /// Assembles an environment around a freshly spawned sandbox; `listener`
    /// starts its Runtime API server.
    pub fn new(
        parts: NewEnvironment,
        listener: impl FnOnce(Arc<EnvShared>) -> Vec<tokio::task::AbortHandle>,
    ) -> Arc<Environment> {
        let NewEnvironment {
            id,
            version,
            sandbox,
            log,
            freeze_between_invocations,
            spawned_at,
            tmp_dir,
            credentials_expire_ms,
        } = parts;
        UNDESTROYED.fetch_add(1, Ordering::AcqRel);
        let (init_tx, init_rx) = oneshot::channel();
        let shared = Arc::new(EnvShared {
            sandbox,
            log,
            freeze_between_invocations,
            state: Mutex::new(RtState { init_signal: Some(init_tx), ..RtState::default() }),
            exited: Notify::new(),
            has_exited: AtomicBool::new(false),
        });
        let listener_tasks = listener(shared.clone());
        let watcher = shared.clone();
        tokio::spawn(async move {
            let info = watcher.sandbox.wait().await.unwrap_or(ExitInfo { code: None, signal: None, oom_killed: false });
            watcher.on_exit(info);
        });
        Arc::new(Environment {
            id,
            version,
            shared,
            spawned_at,
            init_rx: Mutex::new(Some(init_rx)),
            last_used: Mutex::new(Instant::now()),
            env_peak_bytes: AtomicU64::new(0),
            listener_tasks,
            tmp_dir,
            credentials_expire_ms,
        })
    }

    pub fn is_dead(&self) -> bool {
        self.shared.lock().dead
    }

    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(*self.last_used.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// This invocation's peak and the environment's peak so far; then restarts
    /// peak tracking for the next invocation (off its critical path: the
    /// environment is idle and frozen until then).
    fn measure_peak(&self) -> (u64, u64) {
        let peak = self.shared.sandbox.peak_bytes().unwrap_or(0);
        let env_peak = self.env_peak_bytes.fetch_max(peak, Ordering::Relaxed).max(peak);
        self.shared.sandbox.reset_peak();
        (peak, env_peak)
    }

    /// Runs one event to completion (init first, on a cold environment).
    pub async fn invoke(&self, event: Arc<Event>, mode: InitMode) -> InvocationResult {
        let timeout = Duration::from_millis(event.timeout_ms);
        let request_id = event.request_id.clone();
        let (reply_tx, reply_rx) = oneshot::channel();
        let init_rx = self.init_rx.lock().unwrap_or_else(|e| e.into_inner()).take();
        let cold = init_rx.is_some();
        let dispatched_at = Instant::now();
        let dispatch_result = self.shared.dispatch(event, reply_tx);
        tracing::trace!(dispatch_us = dispatched_at.elapsed().as_micros() as u64, "dispatched");
        if dispatch_result.is_err() {
            let (peak, env_peak) = self.measure_peak();
            return InvocationResult {
                outcome: Outcome::Crashed {
                    error_type: "Runtime.ExitError",
                    body: Bytes::from(invoke::exit_payload(&request_id, "Runtime.ExitError", "environment is gone")),
                },
                duration_us: 0,
                init_us: None,
                invocation_peak_bytes: peak,
                env_peak_bytes: env_peak,
                reusable: false,
                delivered: false,
            };
        }

        let mut init_us = None;
        let mut deadline_base = None;
        let mut invoke_start = dispatched_at;
        if let Some(init_rx) = init_rx {
            let limit = match mode {
                InitMode::OnDemand => Duration::from_millis(INIT_LIMIT_MS),
                InitMode::Suppressed => timeout,
            };
            let signal = tokio::time::timeout(limit, init_rx).await;
            let elapsed = self.spawned_at.elapsed().as_micros() as u64;
            let failure = match signal {
                Ok(Ok(InitSignal::Ready(at))) => {
                    init_us = Some(at.saturating_duration_since(self.spawned_at).as_micros() as u64);
                    invoke_start = at;
                    if mode == InitMode::Suppressed {
                        // The retried init already spent part of the function timeout.
                        deadline_base = Some(self.spawned_at);
                    }
                    None
                }
                Ok(Ok(InitSignal::Failed { error_type, body })) => {
                    let error_type = error_type_of(error_type, &body).unwrap_or_else(|| "Runtime.Unknown".into());
                    Some((ReportStatus::Error(error_type.clone()), error_type, body))
                }
                Ok(Ok(InitSignal::Exited(info))) => {
                    let kind = if info.oom_killed { "Runtime.OutOfMemory" } else { "Runtime.ExitError" };
                    let body =
                        invoke::exit_payload(&request_id, kind, &invoke::exit_description(info.code, info.signal));
                    Some((ReportStatus::Error(kind.into()), kind.to_string(), Bytes::from(body)))
                }
                Ok(Err(_)) => {
                    let body = invoke::exit_payload(&request_id, "Runtime.ExitError", "environment is gone");
                    Some((
                        ReportStatus::Error("Runtime.ExitError".into()),
                        "Runtime.ExitError".to_string(),
                        Bytes::from(body),
                    ))
                }
                Err(_) => {
                    self.shared.sandbox.kill();
                    Some((ReportStatus::Timeout, String::new(), Bytes::new()))
                }
            };
            if let Some((status, error_type, body)) = failure {
                let phase = if mode == InitMode::Suppressed { "invoke" } else { "init" };
                self.shared.log.platform_line(&logfmt::init_report_line(elapsed, phase, &status));
                let (peak, env_peak) = self.measure_peak();
                let (outcome, duration_us) = match (&status, mode) {
                    (ReportStatus::Timeout, InitMode::OnDemand) => (Outcome::InitTimeout, 0),
                    (ReportStatus::Timeout, InitMode::Suppressed) => (Outcome::Timeout, timeout.as_micros() as u64),
                    _ => (Outcome::InitError { error_type, body }, 0),
                };
                // A retried init that timed out is part of the invocation's duration.
                let init_us = (!matches!(outcome, Outcome::Timeout)).then_some(elapsed);
                return InvocationResult {
                    outcome,
                    duration_us,
                    init_us,
                    invocation_peak_bytes: peak,
                    env_peak_bytes: env_peak,
                    reusable: false,
                    delivered: self.shared.lock().delivered,
                };
            }
        }

        let deadline = tokio::time::Instant::from_std(deadline_base.unwrap_or(invoke_start) + timeout);
        let reply = tokio::time::timeout_at(deadline, reply_rx).await;
        let now = Instant::now();
        let since_start = |at: Instant| at.saturating_duration_since(invoke_start).as_micros() as u64;
        let (outcome, duration_us, reusable) = match reply {
            Ok(Ok(Reply::Response { body, at })) => (Outcome::Success(body), since_start(at), true),
            Ok(Ok(Reply::Error { body, at, .. })) => (Outcome::FunctionError { body }, since_start(at), true),
            Ok(Ok(Reply::ResponseTooLarge { at })) => (
                Outcome::FunctionError {
                    body: Bytes::from(invoke::error_payload(
                        "Function.ResponseSizeTooLarge",
                        &format!(
                            "Response payload size exceeded maximum allowed payload size ({} bytes).",
                            invoke::MAX_RESPONSE_BYTES
                        ),
                    )),
                },
                since_start(at),
                true,
            ),
            Ok(Ok(Reply::Exited(info))) => {
                let kind = if info.oom_killed { "Runtime.OutOfMemory" } else { "Runtime.ExitError" };
                let body = invoke::exit_payload(&request_id, kind, &invoke::exit_description(info.code, info.signal));
                (Outcome::Crashed { error_type: kind, body: Bytes::from(body) }, since_start(now), false)
            }
            Ok(Err(_)) => {
                let body = invoke::exit_payload(&request_id, "Runtime.ExitError", "environment is gone");
                (Outcome::Crashed { error_type: "Runtime.ExitError", body: Bytes::from(body) }, since_start(now), false)
            }
            Err(_) => {
                // Lambda kills a timed-out environment; the next invocation gets a fresh one.
                self.shared.sandbox.kill();
                (Outcome::Timeout, timeout.as_micros() as u64, false)
            }
        };
        if cold {
            // File-backed pages mapped at start-up (the runtime binary, shared
            // libraries) may be charged to another cgroup; the process's own
            // high-water mark counts them, as Lambda's figure does.
            if let Some(hwm) = self.shared.sandbox.process_hwm_bytes() {
                self.env_peak_bytes.fetch_max(hwm, Ordering::Relaxed);
            }
        }
        let (peak, env_peak) = self.measure_peak();
        self.touch();
        InvocationResult {
            outcome,
            duration_us,
            init_us,
            invocation_peak_bytes: peak,
            env_peak_bytes: env_peak,
            reusable: reusable && !self.is_dead(),
            delivered: self.shared.lock().delivered,
        }
    }

    /// Kills the environment and removes its cgroups and scratch space.
    pub async fn destroy(self: Arc<Self>) {
        for task in &self.listener_tasks {
            task.abort();
        }
        {
            let mut st = self.shared.lock();
            st.dead = true;
            st.next_waiter = None;
            st.pending = None;
        }
        self.shared.sandbox.kill();
        let exited = self.shared.exited.notified();
        if !self.shared.has_exited.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(Duration::from_secs(5), exited).await;
        }
        let sandbox = self.shared.sandbox.clone();
        let tmp = self.tmp_dir.clone();
        let _ = tokio::task::spawn_blocking(move || {
            sandbox.cleanup();
            if let Some(tmp) = tmp {
                let _ = std::fs::remove_dir_all(tmp);
            }
        })
        .await;
        UNDESTROYED.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error type named in a runtime's error report: the header, else the body's `errorType`.
pub fn error_type_of(header: Option<String>, body: &[u8]) -> Option<String> {
    header.filter(|h| !h.is_empty()).or_else(|| {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("errorType").and_then(|t| t.as_str()).map(str::to_string))
    })
}
