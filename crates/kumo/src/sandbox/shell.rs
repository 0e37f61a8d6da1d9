//! The sandbox shell: `kumo __kumo-sandbox-shell [isolate ROOT API_PORT]`.
//!
//! Kumo starts shells ahead of demand, already inside their cgroups (joining
//! a v1 memory cgroup takes milliseconds). An isolated shell also creates its
//! namespaces, its listeners and the function-independent part of its
//! filesystem view, then forks the runtime-to-be, PID 1 of the new PID
//! namespace, which mounts /tmp and /proc, installs the connect notifier
//! (`egress.rs`) and compiles the seccomp filter while it waits. When claimed it reads the launch spec from the control
//! socket (fd 0), finishes the view, drops everything and execs the runtime;
//! the shell passes its exit status on as its own. A plain shell (`--isolation
//! none`) just execs the runtime.
//!
//! Control protocol on fd 0 (a Unix socket), isolated mode: shell `U`
//! (namespaces made) → Kumo writes the id maps, `M` → PID 1 `L` + the
//! Runtime API and Kumo API listeners and its connect notifier → … → Kumo sends `S` +
//! the bind sources' descriptors, writes the JSON spec and shuts down its
//! side. Any failure: `E` + message, exit.

use std::ffi::{CString, OsString};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;

use super::jail::{self, JailError, JailSpec};
use super::seccomp;

/// The argument that makes `kumo` a sandbox shell instead of the CLI.
pub const SHELL_ARG: &str = "__kumo-sandbox-shell";
pub(super) const ISOLATE_ARG: &str = "isolate";
/// At most this many host directories are bound into one environment.
pub(super) const MAX_BIND_SOURCES: usize = 8;

/// The launch instructions a shell reads from its control socket.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct LaunchSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub jail: Option<JailSpec>,
}

/// Entry point of a sandbox shell.
pub fn shell_main() -> ! {
    let args: Vec<OsString> = std::env::args_os().skip(2).collect();
    // SAFETY: Kumo hands every shell its control socket as fd 0.
    let mut control = unsafe { UnixStream::from_raw_fd(0) };
    if let [flag, root, port] = args.as_slice()
        && flag == ISOLATE_ARG
    {
        let port = port.to_str().and_then(|p| p.parse::<u16>().ok()).unwrap_or(0);
        isolated_shell(control, &PathBuf::from(root), port);
    }
    let mut input = Vec::new();
    let spec: Option<LaunchSpec> =
        control.read_to_end(&mut input).ok().and_then(|_| serde_json::from_slice(&input).ok());
    drop(control);
    match spec {
        Some(spec) => exec_plain(&spec),
        // Kumo closed the socket without a spec: it is shutting down or discarding us.
        None => std::process::exit(0),
    }
}

/// The isolated shell: namespaces and the fixed part of the view, then the
/// runtime-to-be is forked at once (PID 1 of the new PID namespace) and does
/// everything else that does not depend on the function while the shell is
/// still waiting in the pool; the shell itself only waits for it.
fn isolated_shell(control: UnixStream, root: &std::path::Path, api_port: u16) -> ! {
    let listeners = match prepare_isolated(&control, root, api_port) {
        Ok(l) => l,
        Err(e) => {
            let _ = (&control).write_all(format!("E{e}").as_bytes());
            std::process::exit(71);
        }
    };
    // SAFETY: this process is single-threaded, so the child may allocate freely.
    match unsafe { libc::fork() } {
        -1 => {
            let _ = (&control).write_all(format!("Efork: {}", io::Error::last_os_error()).as_bytes());
            std::process::exit(71);
        }
        0 => runtime_main(control, root, listeners),
        pid => {
            drop(listeners);
            drop(control);
            // The shell keeps nothing of the environment's output open: EOF
            // on the pipe must mean the runtime's side is gone.
            // SAFETY: closing our own stdio.
            unsafe {
                libc::close(1);
                libc::close(2);
            }
            mirror_exit(pid)
        }
    }
}

fn prepare_isolated(
    control: &UnixStream,
    root: &std::path::Path,
    api_port: u16,
) -> Result<[std::net::TcpListener; 2], JailError> {
    let io_step = |step: &'static str| move |source| JailError { step: step.into(), source };
    jail::unshare_all()?;
    (&*control).write_all(b"U").map_err(io_step("asking for id maps"))?;
    let mut reply = [0u8; 1];
    (&*control).read_exact(&mut reply).map_err(io_step("waiting for id maps"))?;
    jail::become_sandbox_user()?;
    jail::loopback_up()?;
    let runtime_api = jail::listen_loopback(jail::RUNTIME_API_PORT)?;
    let kumo_api = jail::listen_loopback(api_port)?;
    jail::build_skeleton(root)?;
    Ok([runtime_api, kumo_api])
}

/// PID 1 of the environment: finishes what it can before being claimed,
/// reports ready (with the listeners), then waits for the launch spec.
fn runtime_main(mut control: UnixStream, root: &std::path::Path, listeners: [std::net::TcpListener; 2]) -> ! {
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    let ready = jail::mount_private_tmp_and_proc(root).and_then(|()| {
        seccomp::build().map_err(|e| JailError { step: e.to_string(), source: io::Error::other("seccomp") })
    });
    let filters = match ready {
        Ok(f) => f,
        Err(e) => {
            let _ = control.write_all(format!("E{e}").as_bytes());
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(71) }
        }
    };
    let notifier = match seccomp::install_connect_notifier() {
        Ok(fd) => fd,
        Err(e) => {
            let _ = control.write_all(format!("Eseccomp connect notifier: {e}").as_bytes());
            // SAFETY: leaving the forked child without running the parent's destructors.
            unsafe { libc::_exit(71) }
        }
    };
    let mut fds: Vec<RawFd> = listeners.iter().map(AsRawFd::as_raw_fd).collect();
    fds.push(notifier.as_raw_fd());
    if send_with_fds(&control, b'L', &fds).is_err() {
        // SAFETY: as above.
        unsafe { libc::_exit(71) }
    }
    drop(listeners);
    drop(notifier);

    // Claimed: the bind sources' descriptors, then the spec.
    let sources = recv_with_fds(&control, MAX_BIND_SOURCES).map(|(_, fds)| fds).unwrap_or_default();
    let mut input = Vec::new();
    let spec: Option<LaunchSpec> =
        control.read_to_end(&mut input).ok().and_then(|_| serde_json::from_slice(&input).ok());
    drop(control);
    let Some((spec, jail)) = spec.and_then(|s| s.jail.clone().map(|j| (s, j))) else {
        // SAFETY: discarded before use (Kumo closed the socket).
        unsafe { libc::_exit(0) }
    };
    let program = c_string(spec.program.as_os_str().as_bytes());
    let argv: Vec<CString> =
        std::iter::once(program.clone()).chain(spec.args.iter().map(|a| c_string(a.as_bytes()))).collect();
    let envp: Vec<CString> = spec.env.iter().map(|(k, v)| c_string(format!("{k}={v}").as_bytes())).collect();
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let cwd = c_string(spec.cwd.as_os_str().as_bytes());
    let exec = Exec { program: &program, argv: &argv_ptrs, envp: &envp_ptrs, cwd: &cwd };
    let err = launch_runtime(root, &jail, &sources, &filters, &exec);
    let code = if err.source.kind() == io::ErrorKind::NotFound { 127 } else { 126 };
    if err.step == "exec" {
        eprintln!("fork/exec {}: {}", spec.program.display(), err.source);
    } else {
        eprintln!("sandbox: {err}");
    }
    // SAFETY: leaving without running destructors, as after a failed exec.
    unsafe { libc::_exit(code) }
}

fn exec_plain(spec: &LaunchSpec) -> ! {
    let err = std::process::Command::new(&spec.program)
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .exec();
    eprintln!("fork/exec {}: {err}", spec.program.display());
    std::process::exit(if err.kind() == io::ErrorKind::NotFound { 127 } else { 126 });
}

fn c_string(bytes: &[u8]) -> CString {
    // Interior NULs cannot reach exec; dropping them beats failing the start.
    CString::new(bytes.iter().copied().filter(|b| *b != 0).collect::<Vec<u8>>()).unwrap_or_default()
}

/// What the runtime child execs, prepared before the fork.
struct Exec<'a> {
    program: &'a CString,
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    cwd: &'a CString,
}

/// The claimed environment's last steps before exec. Returns only on failure.
fn launch_runtime(
    root: &std::path::Path,
    spec: &JailSpec,
    sources: &[OwnedFd],
    filters: &seccomp::Filters,
    exec: &Exec<'_>,
) -> JailError {
    let prepared = jail::finish_view(root, spec, sources)
        .and_then(|()| jail::set_rlimits())
        .and_then(|()| jail::drop_privileges())
        .and_then(|()| jail::apply_landlock(spec.landlock));
    if let Err(e) = prepared {
        return e;
    }
    // The control socket was fd 0; the runtime gets /dev/null there instead.
    // SAFETY: open and dup2 on valid arguments.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null > 0 {
            libc::dup2(null, 0);
            libc::close(null);
        }
    }
    // SAFETY: cwd is a valid C string.
    if unsafe { libc::chdir(exec.cwd.as_ptr()) } != 0 {
        return JailError { step: "chdir to the task root".into(), source: io::Error::last_os_error() };
    }
    if let Err(e) = seccomp::install(filters) {
        return JailError { step: e.to_string(), source: io::Error::other("seccomp") };
    }
    // SAFETY: program, argv and envp are NUL-terminated and null-terminated arrays of valid C strings.
    unsafe { libc::execve(exec.program.as_ptr(), exec.argv.as_ptr(), exec.envp.as_ptr()) };
    JailError { step: "exec".into(), source: io::Error::last_os_error() }
}

/// Waits for the runtime and ends the same way it did, so Kumo sees its exit code or signal.
fn mirror_exit(pid: libc::pid_t) -> ! {
    let mut status = 0;
    loop {
        // SAFETY: waitpid with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            std::process::exit(70);
        }
    }
    if libc::WIFEXITED(status) {
        std::process::exit(libc::WEXITSTATUS(status));
    }
    let signal = libc::WTERMSIG(status);
    // SAFETY: restoring the default action and re-raising the runtime's fatal signal on ourselves.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal);
}

/// A one-buffer message header with room for ancillary data in `control`.
fn message(iov: &mut libc::iovec, control: &mut [u8]) -> libc::msghdr {
    // SAFETY: msghdr is plain old data; zero is a valid value for every field.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = control.len() as _;
    msg
}

/// Sends one tag byte with descriptors attached (SCM_RIGHTS).
pub(super) fn send_with_fds(sock: &UnixStream, tag: u8, fds: &[RawFd]) -> io::Result<()> {
    let payload = [tag];
    if fds.is_empty() {
        return (&*sock).write_all(&payload);
    }
    let fd_bytes = std::mem::size_of_val(fds) as u32;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: 1 };
    let msg = message(&mut iov, &mut control);
    // SAFETY: msghdr points at live buffers; the cmsg header is written within `control`.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_bytes) as _;
        std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(cmsg).cast::<RawFd>(), fds.len());
        if libc::sendmsg(sock.as_raw_fd(), &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one tag byte and up to `max` descriptors (close-on-exec).
pub(super) fn recv_with_fds(sock: &UnixStream, max: usize) -> io::Result<(u8, Vec<OwnedFd>)> {
    let mut payload = [0u8; 1];
    let fd_bytes = (max * std::mem::size_of::<RawFd>()) as u32;
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(fd_bytes) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec { iov_base: payload.as_mut_ptr().cast(), iov_len: 1 };
    let mut fds = Vec::new();
    let mut msg = message(&mut iov, &mut control);
    // SAFETY: msghdr points at live buffers; we only read cmsgs the kernel wrote.
    unsafe {
        let n = libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((payload[0], fds))
}
