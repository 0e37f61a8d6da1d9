//! Spawning and controlling one environment's process tree.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use super::cgroup::{Capabilities, CgroupError, CgroupLayout, EnvCgroup};

/// What could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("creating the output pipe: {0}")]
    Pipe(io::Error),
    #[error("starting {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },
}

/// How to start one environment.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    pub id: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub memory_limit_bytes: u64,
}

/// The host's sandboxing facilities, detected once per server.
pub struct Sandboxes {
    layout: Arc<CgroupLayout>,
    caps: Capabilities,
    shells: Arc<ShellPool>,
}

impl Sandboxes {
    /// Detects cgroups and starts keeping `prewarm` sandbox shells ready.
    /// Must be called inside the tokio runtime.
    pub fn detect(prewarm: usize) -> Sandboxes {
        let layout = Arc::new(CgroupLayout::detect(&format!("kumo-{}", std::process::id())));
        let stale = layout.remove_stale_siblings();
        if stale > 0 {
            tracing::info!(stale, "removed cgroups left by Kumo servers that did not shut down cleanly");
        }
        let caps = layout.prepare();
        let shells = Arc::new(ShellPool::new(layout.clone(), caps, prewarm));
        shells.start_spawner();
        shells.refill();
        Sandboxes { layout, caps, shells }
    }

    pub fn describe(&self) -> String {
        format!("{}; {} pre-started sandbox shells", self.layout.describe(&self.caps), self.shells.target)
    }

    pub fn capabilities(&self) -> Capabilities {
        self.caps
    }

    /// Starts the runtime process of one environment: in a pre-started shell
    /// when one is ready (its cgroups already joined), else from scratch on the
    /// spawner thread (forking and joining a v1 memory cgroup take milliseconds,
    /// which must not stall the threads serving HTTP).
    pub async fn spawn(&self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        let shell = self.shells.take();
        self.shells.refill();
        if let Some(shell) = shell {
            return shell.launch(spec);
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shells.submit(SpawnJob::Direct(Box::new(spec.clone()), tx)) {
            return rx.await.unwrap_or_else(|_| Err(SandboxError::Pipe(io::Error::other("sandbox spawner stopped"))));
        }
        spawn_direct(&self.layout, &self.caps, spec)
    }

    /// Kills the idle shells and removes Kumo's parent cgroups; call once all sandboxes are gone.
    pub fn shutdown(&self) {
        self.shells.drain();
        self.layout.remove_parents();
    }
}

/// The argument that makes `kumo` a sandbox shell instead of the CLI.
pub const SHELL_ARG: &str = "__kumo-sandbox-shell";

/// The launch instructions a shell reads from its stdin.
#[derive(serde::Serialize, serde::Deserialize)]
struct LaunchSpec {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: PathBuf,
}

/// Entry point of a pre-started sandbox shell (`kumo __kumo-sandbox-shell`).
///
/// The slow part of starting an environment on cgroup v1 is joining the memory
/// cgroup (milliseconds: the kernel waits for an RCU grace period). A shell does
/// that ahead of time, then waits on stdin for what to run and `exec`s it, so
/// a cold start pays only for exec and the runtime's own init.
pub fn shell_main() -> ! {
    let mut input = Vec::new();
    let spec: Option<LaunchSpec> =
        io::Read::read_to_end(&mut io::stdin(), &mut input).ok().and_then(|_| serde_json::from_slice(&input).ok());
    let Some(spec) = spec else {
        // Kumo closed the pipe without a spec: it is shutting down or discarding us.
        std::process::exit(0);
    };
    let err = std::process::Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .exec();
    eprintln!("fork/exec {}: {err}", spec.program.display());
    std::process::exit(if err.kind() == io::ErrorKind::NotFound { 127 } else { 126 });
}

/// A shell waiting for its launch spec, already in its own cgroups.
struct Shell {
    child: tokio::process::Child,
    cgroup: EnvCgroup,
    output: OwnedFd,
    spec_pipe: File,
}

impl Shell {
    fn start(layout: &CgroupLayout, caps: &Capabilities) -> Result<Shell, SandboxError> {
        let id = format!("env-{}", uuid::Uuid::new_v4().simple());
        let mut cgroup = layout.create(caps, &id, u64::MAX / 2)?;
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg(SHELL_ARG).env_clear().current_dir("/").stdin(Stdio::piped());
        let (mut child, read_end) = spawn_in_groups(cmd, &mut cgroup, Path::new("/proc/self/exe"))?;
        let stdin = child.stdin.take().and_then(|s| s.into_owned_fd().ok()).map(File::from);
        let Some(spec_pipe) = stdin else {
            let _ = child.start_kill();
            cgroup.remove();
            return Err(SandboxError::Pipe(io::Error::other("shell has no stdin")));
        };
        Ok(Shell { child, cgroup, output: read_end, spec_pipe })
    }

    fn launch(mut self, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        self.cgroup.set_memory_limit(spec.memory_limit_bytes)?;
        let launch = LaunchSpec {
            program: spec.program.clone(),
            args: spec.args.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
            env: spec.env.clone(),
            cwd: spec.cwd.clone(),
        };
        let bytes = serde_json::to_vec(&launch).map_err(|e| SandboxError::Pipe(io::Error::other(e)))?;
        if let Err(source) = io::Write::write_all(&mut self.spec_pipe, &bytes) {
            let _ = self.child.start_kill();
            return Err(SandboxError::Spawn { program: spec.program.clone(), source });
        }
        // Closing the pipe is the shell's signal to exec.
        drop(self.spec_pipe);
        Ok(Sandbox::assemble(self.child, self.cgroup, self.output))
    }
}

/// Shells started ahead of demand.
struct ShellPool {
    layout: Arc<CgroupLayout>,
    caps: Capabilities,
    target: usize,
    ready: Mutex<Vec<Shell>>,
    starting: std::sync::atomic::AtomicUsize,
    closed: std::sync::atomic::AtomicBool,
    /// Hands work to the spawner thread.
    spawner: Mutex<Option<std::sync::mpsc::Sender<SpawnJob>>>,
}

impl ShellPool {
    fn new(layout: Arc<CgroupLayout>, caps: Capabilities, target: usize) -> ShellPool {
        ShellPool {
            layout,
            caps,
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
                    SpawnJob::Direct(spec, reply) => {
                        let _ = reply.send(spawn_direct(&pool.layout, &pool.caps, &spec));
                    }
                }
            }
        });
        match started {
            Ok(_) => *self.spawner.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx),
            Err(e) => tracing::warn!(error = %e, "no sandbox spawner thread: cold starts spawn directly"),
        }
    }

    fn start_one(&self) {
        use std::sync::atomic::Ordering;
        match Shell::start(&self.layout, &self.caps) {
            Ok(shell) if !self.closed.load(Ordering::Acquire) => {
                self.ready.lock().unwrap_or_else(|e| e.into_inner()).push(shell);
            }
            Ok(mut shell) => {
                let _ = shell.child.start_kill();
                shell.cgroup.kill_all();
            }
            Err(e) => tracing::warn!(error = %e, "could not pre-start a sandbox shell"),
        }
        self.starting.fetch_sub(1, Ordering::AcqRel);
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
            let _ = shell.child.start_kill();
            shell.cgroup.kill_all();
            for _ in 0..100 {
                if !shell.cgroup.populated() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            shell.cgroup.remove();
        }
    }
}

fn spawn_direct(layout: &CgroupLayout, caps: &Capabilities, spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
    let mut cgroup = layout.create(caps, &spec.id, spec.memory_limit_bytes)?;
    let mut cmd = std::process::Command::new(&spec.program);
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null());
    let (child, read_end) = spawn_in_groups(cmd, &mut cgroup, &spec.program)?;
    Ok(Sandbox::assemble(child, cgroup, read_end))
}

/// Work for the spawner thread.
enum SpawnJob {
    /// Pre-start one shell for the pool.
    Shell,
    /// Start this environment now (no shell was ready).
    Direct(Box<SandboxSpec>, tokio::sync::oneshot::Sender<Result<Sandbox, SandboxError>>),
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
            stopped_by_signal: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
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
        self.with_cgroup(EnvCgroup::peak_bytes).or_else(|| proc_hwm_bytes(self.pid))
    }

    /// The runtime process's own resident high-water mark.
    pub fn process_hwm_bytes(&self) -> Option<u64> {
        proc_hwm_bytes(self.pid)
    }

    pub fn reset_peak(&self) {
        if !self.with_cgroup(EnvCgroup::reset_peak) {
            let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
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
