//! Spawning and controlling one environment's process tree.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cgroup::{Capabilities, CgroupError, CgroupLayout, CpuLimit, EnvCgroup};
use super::isolation::{Isolation, IsolationPlan};
use super::jail::JailSpec;
use super::shell::{self, ISOLATE_ARG, LaunchSpec, SHELL_ARG};

/// What could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("creating the output pipe: {0}")]
    Pipe(io::Error),
    #[error("starting {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
    #[error("setting up the sandbox: {0}")]
    Isolation(String),
}

/// How to start one environment.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub memory_limit_bytes: u64,
    /// The filesystem view, when the environment is isolated.
    pub jail: Option<JailSpec>,
}

/// The host's sandboxing facilities, detected once per server.
pub struct Sandboxes {
    layout: Arc<CgroupLayout>,
    caps: Capabilities,
    isolation: Isolation,
    shells: Arc<ShellPool>,
}

impl Sandboxes {
    /// Detects cgroups and what isolation the host allows, and starts keeping
    /// `prewarm` sandbox shells ready. Must be called inside the tokio runtime.
    /// Fails only when `plan` demands isolation the host cannot give.
    pub fn detect(prewarm: usize, plan: &IsolationPlan) -> Result<Sandboxes, SandboxError> {
        let layout = Arc::new(CgroupLayout::detect(&format!("kumo-{}", std::process::id())));
        let stale = layout.remove_stale_siblings();
        if stale > 0 {
            tracing::info!(stale, "removed cgroups left by Kumo servers that did not shut down cleanly");
        }
        let mut caps = layout.prepare();
        // A cpu cgroup without a quota only adds scheduler work on every wake-up.
        caps.cpu &= plan.cpu_limits && plan.mode != super::IsolationMode::None;
        let isolation = Isolation::detect(plan, &caps, |iso| {
            Shell::start(&layout, &caps, iso).map(|shell| {
                let mut shell = shell;
                shell.discard();
            })
        })?;
        let shells = Arc::new(ShellPool::new(layout.clone(), caps, isolation.clone(), prewarm));
        shells.start_spawner();
        shells.refill();
        Ok(Sandboxes { layout, caps, isolation, shells })
    }

    /// One line saying which isolation is in force.
    pub fn describe(&self) -> String {
        format!(
            "{}; cgroups: {}; {} pre-started sandbox shells",
            self.isolation.describe(),
            self.layout.describe(&self.caps),
            self.shells.target
        )
    }

    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    pub fn isolation(&self) -> &Isolation {
        &self.isolation
    }

    /// Starts the runtime process of one environment in a pre-started shell,
    /// or in a fresh one made on the spawner thread (forking and joining a v1
    /// memory cgroup take milliseconds, which must not stall the HTTP threads).
    pub async fn spawn(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let shell = self.shells.take();
        let shell = match shell {
            Some(shell) => shell,
            None => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                if !self.shells.submit(SpawnJob::Fresh(tx)) {
                    return Err(SandboxError::Pipe(io::Error::other("sandbox spawner stopped")));
                }
                rx.await.unwrap_or_else(|_| Err(SandboxError::Pipe(io::Error::other("sandbox spawner stopped"))))?
            }
        };
        let sandbox = shell.launch(spec, self.isolation.cpu_limits);
        // Only now start a replacement: making a shell (forks, cgroup and mount
        // work) competes for the CPU and kernel locks the launch needs.
        self.shells.refill();
        sandbox
    }

    /// Kills the idle shells and removes Kumo's parent cgroups; call once all sandboxes are gone.
    pub fn shutdown(&self) {
        self.shells.drain();
        self.layout.remove_parents();
    }
}

/// Listening sockets that live in an isolated environment's network namespace.
pub struct SandboxListeners {
    /// 127.0.0.1:9001 there: the Runtime API.
    pub runtime_api: std::net::TcpListener,
    /// 127.0.0.1:<Kumo's port> there: Kumo's own API, for functions allowed outbound access.
    pub kumo_api: std::net::TcpListener,
    /// The seccomp listener that receives the environment's `connect` calls (see `egress.rs`).
    pub connect_notifier: OwnedFd,
}

/// Host uids for isolated environments when Kumo runs as root: one per
/// environment, far above any real account, so no two environments (and no
/// host user) share an identity even outside their namespaces.
const HOST_UID_BASE: u32 = 2_000_000_000;
static NEXT_HOST_UID: AtomicU32 = AtomicU32::new(0);

/// Maps the sandbox user (993/990 inside) to a host identity. As root: a
/// fresh unprivileged uid. Otherwise: Kumo's own uid, the only one an
/// unprivileged user may map.
fn write_id_maps(pid: u32) -> io::Result<()> {
    // SAFETY: getters without preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let (uid, gid) = if euid == 0 {
        let id = HOST_UID_BASE + NEXT_HOST_UID.fetch_add(1, Ordering::Relaxed) % 1_000_000;
        (id, id)
    } else {
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny")?;
        (euid, egid)
    };
    std::fs::write(format!("/proc/{pid}/uid_map"), format!("{} {uid} 1\n", super::jail::SANDBOX_UID))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), format!("{} {gid} 1\n", super::jail::SANDBOX_GID))
}

/// A shell waiting for its launch spec, already in its own cgroups (and, when
/// isolated, its own namespaces with its listeners bound).
struct Shell {
    child: tokio::process::Child,
    cgroup: EnvCgroup,
    output: OwnedFd,
    control: UnixStream,
    listeners: Option<SandboxListeners>,
}

impl Shell {
    /// Starts a shell and waits until it is ready.
    fn start(layout: &CgroupLayout, caps: &Capabilities, isolation: &Isolation) -> Result<Shell, SandboxError> {
        Shell::fork(layout, caps, isolation)?.until_ready(isolation)
    }

    /// Completes an isolated shell's start-up conversation (see `shell.rs`); a
    /// plain shell is ready as soon as it exists. Blocks for milliseconds, so
    /// the spawner thread leaves it to the blocking pool and forks the next one.
    fn until_ready(mut self, isolation: &Isolation) -> Result<Shell, SandboxError> {
        if isolation.namespaces.is_some()
            && let Err(e) = self.handshake()
        {
            self.discard();
            return Err(e);
        }
        Ok(self)
    }

    /// Forks the shell process into fresh cgroups (on the spawner thread).
    fn fork(layout: &CgroupLayout, caps: &Capabilities, isolation: &Isolation) -> Result<Shell, SandboxError> {
        let id = format!("env-{}", uuid::Uuid::new_v4().simple());
        let mut cgroup = layout.create(caps, &id, u64::MAX / 2)?;
        let (control, shell_end) = UnixStream::pair().map_err(SandboxError::Pipe)?;
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg(SHELL_ARG).env_clear().current_dir("/").stdin(Stdio::from(OwnedFd::from(shell_end)));
        if let Some(iso) = &isolation.namespaces {
            cmd.arg(ISOLATE_ARG).arg(&iso.root_dir).arg(iso.api_port.to_string());
        }
        let (child, read_end) = spawn_in_groups(cmd, &mut cgroup, Path::new("/proc/self/exe"))?;
        Ok(Shell { child, cgroup, output: read_end, control, listeners: None })
    }

    /// The isolated shell's start-up conversation (see `shell.rs`).
    fn handshake(&mut self) -> Result<(), SandboxError> {
        let failed = |what: &str, e: io::Error| SandboxError::Isolation(format!("{what}: {e}"));
        self.control.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| failed("control socket", e))?;
        let pid = self.child.id().unwrap_or(0);
        let mut tag = [0u8; 1];
        self.control.read_exact(&mut tag).map_err(|e| failed("sandbox shell did not start", e))?;
        if tag[0] != b'U' {
            return Err(self.shell_error(tag[0]));
        }
        write_id_maps(pid).map_err(|e| failed("writing the user namespace's id maps", e))?;
        self.control.write_all(b"M").map_err(|e| failed("control socket", e))?;
        let (tag, fds) = shell::recv_with_fds(&self.control, 3).map_err(|e| failed("receiving listeners", e))?;
        let mut fds = fds.into_iter();
        match (tag, fds.next(), fds.next(), fds.next()) {
            (b'L', Some(runtime_api), Some(kumo_api), Some(connect_notifier)) => {
                self.listeners = Some(SandboxListeners {
                    runtime_api: runtime_api.into(),
                    kumo_api: kumo_api.into(),
                    connect_notifier,
                });
            }
            _ => return Err(self.shell_error(tag)),
        }
        Ok(())
    }

    fn shell_error(&mut self, tag: u8) -> SandboxError {
        let mut rest = String::new();
        let _ = self.control.read_to_string(&mut rest);
        if tag == b'E' {
            SandboxError::Isolation(rest)
        } else {
            SandboxError::Isolation(format!("unexpected reply {tag}"))
        }
    }

    fn discard(&mut self) {
        let _ = self.child.start_kill();
        self.cgroup.kill_all();
        for _ in 0..100 {
            if !self.cgroup.populated() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.cgroup.remove();
    }

    fn launch(mut self, spec: &SandboxSpec, cpu_limits: bool) -> Result<Sandbox, SandboxError> {
        self.cgroup.set_memory_limit(spec.memory_limit_bytes)?;
        let launch = LaunchSpec {
            program: spec.program.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
            jail: spec.jail.clone(),
        };
        let bytes = serde_json::to_vec(&launch).map_err(|e| SandboxError::Pipe(io::Error::other(e)))?;
        if let Some(jail) = &spec.jail {
            let sources = open_bind_sources(jail)?;
            let raw: Vec<RawFd> = sources.iter().map(AsRawFd::as_raw_fd).collect();
            if let Err(source) = shell::send_with_fds(&self.control, b'S', &raw) {
                self.discard();
                return Err(SandboxError::Spawn { program: spec.program.clone(), source });
            }
        }
        if let Err(source) = self.control.write_all(&bytes) {
            self.discard();
            return Err(SandboxError::Spawn { program: spec.program.clone(), source });
        }
        // End of the spec is the shell's signal to start the runtime.
        let _ = self.control.shutdown(std::net::Shutdown::Write);
        let mut sandbox = Sandbox::assemble(self.child, self.cgroup, self.output);
        sandbox.listeners = self.listeners;
        sandbox.cpu_limit = cpu_limits.then(|| CpuLimit::for_memory(spec.memory_limit_bytes));
        sandbox.isolated_runtime_pid = spec.jail.is_some().then(std::sync::OnceLock::new);
        Ok(sandbox)
    }
}

/// Detached read-only copies of the host directories an isolated environment
/// sees, made with Kumo's rights. Without root Kumo cannot make them; the
/// shell then binds by path, with Kumo's own (mapped) identity.
fn open_bind_sources(jail: &JailSpec) -> Result<Vec<OwnedFd>, SandboxError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(Vec::new());
    }
    let sources = jail.sources();
    if sources.len() > shell::MAX_BIND_SOURCES {
        return Err(SandboxError::Isolation("too many directories to bind".into()));
    }
    sources
        .into_iter()
        .map(|path| {
            super::jail::detached_read_only_tree(path)
                .map_err(|e| SandboxError::Isolation(format!("opening {}: {e}", path.display())))
        })
        .collect()
}

/// Shells started ahead of demand.
struct ShellPool {
    layout: Arc<CgroupLayout>,
    caps: Capabilities,
    isolation: Isolation,
    target: usize,
    ready: Mutex<Vec<Shell>>,
    starting: std::sync::atomic::AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
    /// Hands work to the spawner thread.
    spawner: Mutex<Option<std::sync::mpsc::Sender<SpawnJob>>>,
}

impl ShellPool {
    fn new(layout: Arc<CgroupLayout>, caps: Capabilities, isolation: Isolation, target: usize) -> ShellPool {
        ShellPool {
            layout,
            caps,
            isolation,
            target,
            ready: Mutex::new(Vec::new()),
            starting: std::sync::atomic::AtomicUsize::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
            spawner: Mutex::new(None),
        }
    }

    /// Starts the thread that spawns shells. Shells (and the runtimes they
    /// become) carry PR_SET_PDEATHSIG, which fires when the *thread* that
    /// forked them exits, so they must come from a thread that lives as long
    /// as the server, never from tokio's blocking pool (whose threads exit
    /// after 10 s idle).
    fn start_spawner(self: &Arc<Self>) {
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        let pool = Arc::downgrade(self);
        let handle = tokio::runtime::Handle::current();
        let started = std::thread::Builder::new().name("kumo-sandbox-spawner".into()).spawn(move || {
            let _runtime = handle.enter();
            while let Ok(job) = rx.recv() {
                let Some(pool) = pool.upgrade() else { break };
                match job {
                    SpawnJob::Shell => pool.start_one(),
                    SpawnJob::Fresh(reply) => match Shell::fork(&pool.layout, &pool.caps, &pool.isolation) {
                        Ok(shell) => {
                            let isolation = pool.isolation.clone();
                            tokio::task::spawn_blocking(move || {
                                let _ = reply.send(shell.until_ready(&isolation));
                            });
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                }
            }
        });
        match started {
            Ok(_) => *self.spawner.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx),
            Err(e) => tracing::warn!(error = %e, "no sandbox spawner thread: cold starts spawn directly"),
        }
    }

    /// Forks one shell here (the spawner thread) and lets the blocking pool
    /// wait for it to be ready, so a burst of cold starts sets shells up in parallel.
    fn start_one(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let shell = match Shell::fork(&self.layout, &self.caps, &self.isolation) {
            Ok(shell) => shell,
            Err(e) => {
                tracing::warn!(error = %e, "could not pre-start a sandbox shell");
                self.starting.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        };
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            match shell.until_ready(&pool.isolation) {
                Ok(shell) if !pool.closed.load(Ordering::Acquire) => {
                    pool.ready.lock().unwrap_or_else(|e| e.into_inner()).push(shell);
                }
                Ok(mut shell) => shell.discard(),
                Err(e) => tracing::warn!(error = %e, "could not pre-start a sandbox shell"),
            }
            pool.starting.fetch_sub(1, Ordering::AcqRel);
        });
    }

    fn take(&self) -> Option<Shell> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        // A shell that died while waiting (e.g. killed from outside) is useless.
        while let Some(mut shell) = ready.pop() {
            if matches!(shell.child.try_wait(), Ok(None)) {
                return Some(shell);
            }
            shell.cgroup.remove();
        }
        None
    }

    /// Starts shells in the background until `target` are ready or starting.
    fn refill(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        loop {
            if self.closed.load(Ordering::Acquire) {
                return;
            }
            let have =
                self.ready.lock().unwrap_or_else(|e| e.into_inner()).len() + self.starting.load(Ordering::Acquire);
            if have >= self.target {
                return;
            }
            self.starting.fetch_add(1, Ordering::AcqRel);
            if !self.submit(SpawnJob::Shell) {
                self.starting.fetch_sub(1, Ordering::AcqRel);
                return;
            }
        }
    }

    /// Queues work for the spawner thread; false when there is none.
    fn submit(&self, job: SpawnJob) -> bool {
        let spawner = self.spawner.lock().unwrap_or_else(|e| e.into_inner());
        spawner.as_ref().is_some_and(|tx| tx.send(job).is_ok())
    }

    fn drain(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        // Dropping the sender ends the spawner thread.
        self.spawner.lock().unwrap_or_else(|e| e.into_inner()).take();
        let shells = std::mem::take(&mut *self.ready.lock().unwrap_or_else(|e| e.into_inner()));
        for mut shell in shells {
            shell.discard();
        }
    }
}

/// Work for the spawner thread.
enum SpawnJob {
    /// Pre-start one shell for the pool.
    Shell,
    /// Start a shell now for a cold start that found none ready.
    Fresh(tokio::sync::oneshot::Sender<Result<Shell, SandboxError>>),
}

/// Spawns `cmd` with stdout and stderr on one new pipe, joining `cgroup` and its
/// own session before exec. Returns the child and the pipe's read end; on
/// failure the groups are removed.
fn spawn_in_groups(
    mut cmd: std::process::Command,
    cgroup: &mut EnvCgroup,
    program: &Path,
) -> Result<(tokio::process::Child, OwnedFd), SandboxError> {
    let (read_end, write_end) = pipe().map_err(SandboxError::Pipe)?;
    let stderr_end = write_end.try_clone().map_err(SandboxError::Pipe)?;
    cmd.stdout(Stdio::from(write_end)).stderr(Stdio::from(stderr_end));
    let join_fds = cgroup.join_fds();
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls on descriptors opened beforehand.
    unsafe {
        cmd.pre_exec(move || join_groups_and_detach(&join_fds));
    }
    let mut tokio_cmd = tokio::process::Command::from(cmd);
    tokio_cmd.kill_on_drop(true);
    let child = tokio_cmd.spawn().map_err(|source| {
        cgroup.remove();
        SandboxError::Spawn { program: program.to_path_buf(), source }
    })?;
    // Dropping the command closes our copies of the pipe's write end, so the
    // reader sees EOF when the last process of the tree exits.
    drop(tokio_cmd);
    Ok((child, read_end))
}

/// Runs in the child between fork and exec.
fn join_groups_and_detach(fds: &[RawFd]) -> io::Result<()> {
    for fd in fds {
        // SAFETY: writing a static buffer to an open descriptor.
        let n = unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(io::Error::last_os_error());
        }
    }
    // Own session and process group, so signals reach the whole tree.
    // SAFETY: setsid and prctl have no memory-safety preconditions.
    unsafe {
        libc::setsid();
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    Ok(())
}

fn pipe() -> io::Result<(OwnedFd, File)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that we now own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(r.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    Ok((r, w))
}

/// The read end of the pipe that carries the environment's stdout and stderr.
#[derive(Debug)]
pub struct OutputPipe {
    pub fd: OwnedFd,
}

/// How the runtime process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub oom_killed: bool,
}

/// One running environment.
pub struct Sandbox {
    pid: i32,
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
    cgroup: Mutex<EnvCgroup>,
    output: Option<OutputPipe>,
    listeners: Option<SandboxListeners>,
    /// Applied when init ends (init runs unthrottled).
    cpu_limit: Option<CpuLimit>,
    /// The runtime's host pid when it is the shell's child (isolated), found once.
    isolated_runtime_pid: Option<std::sync::OnceLock<i32>>,
    stopped_by_signal: std::sync::atomic::AtomicBool,
}

impl Sandbox {
    fn assemble(child: tokio::process::Child, cgroup: EnvCgroup, output: OwnedFd) -> Sandbox {
        let pid = child.id().map_or(0, |p| p as i32);
        Sandbox {
            pid,
            child: tokio::sync::Mutex::new(Some(child)),
            cgroup: Mutex::new(cgroup),
            output: Some(OutputPipe { fd: output }),
            listeners: None,
            cpu_limit: None,
            isolated_runtime_pid: None,
            stopped_by_signal: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Ends the init phase's CPU boost: from now on the environment gets CPU in
    /// proportion to its memory.
    pub fn end_init_boost(&self) {
        if let Some(limit) = self.cpu_limit {
            self.with_cgroup(|c| c.set_cpu_limit(limit));
        }
    }

    /// Hands out the listeners of an isolated environment (once).
    pub fn take_listeners(&mut self) -> Option<SandboxListeners> {
        self.listeners.take()
    }

    /// The runtime's process: the shell's only child when isolated, else the
    /// shell itself (it exec'd the runtime).
    fn runtime_pid(&self) -> i32 {
        let Some(cell) = &self.isolated_runtime_pid else { return self.pid };
        *cell.get_or_init(|| {
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
                .ok()
                .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse().ok()))
                .unwrap_or(self.pid)
        })
    }

    /// Hands out the output pipe (once).
    pub fn take_output(&mut self) -> Option<OutputPipe> {
        self.output.take()
    }

    fn with_cgroup<T>(&self, f: impl FnOnce(&EnvCgroup) -> T) -> T {
        let guard = self.cgroup.lock().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    pub fn has_memory_cgroup(&self) -> bool {
        self.with_cgroup(EnvCgroup::has_memory)
    }

    /// Stops every process of the environment between invocations.
    pub fn freeze(&self) {
        if !self.with_cgroup(|c| c.set_frozen(true)) {
            self.stopped_by_signal.store(true, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: signalling our child's process group.
            unsafe { libc::kill(-self.pid, libc::SIGSTOP) };
        }
    }

    pub fn thaw(&self) {
        if !self.with_cgroup(|c| c.set_frozen(false))
            && self.stopped_by_signal.swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            // SAFETY: signalling our child's process group.
            unsafe { libc::kill(-self.pid, libc::SIGCONT) };
        }
    }

    /// Peak memory since the last reset, from the cgroup or, without one, the
    /// runtime process's high-water mark.
    pub fn peak_bytes(&self) -> Option<u64> {
        self.with_cgroup(EnvCgroup::peak_bytes).or_else(|| proc_hwm_bytes(self.runtime_pid()))
    }

    /// The runtime process's own resident high-water mark.
    pub fn process_hwm_bytes(&self) -> Option<u64> {
        proc_hwm_bytes(self.runtime_pid())
    }

    pub fn reset_peak(&self) {
        if !self.with_cgroup(EnvCgroup::reset_peak) {
            let _ = std::fs::write(format!("/proc/{}/clear_refs", self.runtime_pid()), "5");
        }
    }

    /// Kills the whole tree, now.
    pub fn kill(&self) {
        let via_cgroup = self.with_cgroup(EnvCgroup::kill_all);
        // SAFETY: signalling our child's process group; harmless if it is gone.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
            libc::kill(-self.pid, libc::SIGCONT);
        }
        let _ = via_cgroup;
    }

    /// Waits for the runtime process to exit. Only the first caller gets the status.
    pub async fn wait(&self) -> Option<ExitInfo> {
        let mut guard = self.child.lock().await;
        let child = guard.as_mut()?;
        let status = child.wait().await.ok()?;
        *guard = None;
        Some(ExitInfo {
            code: status.code(),
            signal: status.signal(),
            oom_killed: self.with_cgroup(EnvCgroup::oom_kills) > 0,
        })
    }

    /// Kills what is left and removes the cgroups.
    pub fn cleanup(&self) {
        let mut group = self.cgroup.lock().unwrap_or_else(|e| e.into_inner());
        if group.populated() {
            group.kill_all();
            for _ in 0..100 {
                if !group.populated() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        group.remove();
    }
}

fn proc_hwm_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
