//! The inside of an isolated sandbox shell: namespaces, the filesystem view,
//! and the restrictions applied just before the runtime is exec'd.
//!
//! This code runs in `kumo __kumo-sandbox-shell isolate …`, a single-threaded
//! process that never starts tokio, so it may fork freely. Order matters and
//! follows Firecracker's jailer: namespaces, mounts, pivot_root, rlimits, drop
//! privileges, `no_new_privs`, landlock, seccomp last, exec.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Lambda runs functions as `sbx_user1051`, uid 993, gid 990.
pub const SANDBOX_UID: u32 = 993;
pub const SANDBOX_GID: u32 = 990;
/// Where every environment finds its Runtime API, as on Lambda.
pub const RUNTIME_API_PORT: u16 = 9001;

pub const TASK_ROOT: &str = "/var/task";
pub const RUNTIME_DIR: &str = "/var/runtime";
/// Lambda's limits on open files and on processes/threads.
pub const MAX_OPEN_FILES: u64 = 1024;
pub const MAX_PROCESSES: u64 = 1024;

/// The namespaces every isolated environment gets.
pub const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWPID;

/// Host directories shown read-only at the same place (system binaries and libraries).
const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32"];
/// What of the host's /etc an environment sees: name resolution, TLS roots, the
/// dynamic linker's cache, time zones. Not passwd/shadow (Kumo writes its own passwd).
const ETC_ENTRIES: &[&str] = &[
    "resolv.conf",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "alternatives",
    "mime.types",
    "protocols",
    "services",
    "os-release",
];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// A step of building the sandbox that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {source}")]
pub struct JailError {
    pub step: String,
    pub source: io::Error,
}

fn fail(step: impl Into<String>) -> impl FnOnce(io::Error) -> JailError {
    let step = step.into();
    move |source| JailError { step, source }
}

fn check(ret: libc::c_int, step: impl FnOnce() -> String) -> Result<(), JailError> {
    if ret < 0 { Err(JailError { step: step(), source: io::Error::last_os_error() }) } else { Ok(()) }
}

fn cstr(p: impl AsRef<OsStr>) -> Result<CString, JailError> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| JailError { step: "path contains a NUL byte".into(), source: io::ErrorKind::InvalidInput.into() })
}

/// The per-function part of the view, sent with the launch spec. Kumo also
/// sends an `O_PATH` descriptor for each host directory, in the order
/// [`JailSpec::sources`] lists them: the shell binds from those, because its
/// own (unprivileged) host identity may not even be able to reach the paths.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JailSpec {
    /// Host directory shown read-only at /var/task.
    pub task_root: PathBuf,
    /// Host directory (Kumo's runtime bootstraps) shown read-only at /var/runtime.
    pub runtime_dir: PathBuf,
    /// Further host directories shown read-only at the same path (the interpreter's prefix).
    pub read_only: Vec<PathBuf>,
    /// Size of the private /tmp (EphemeralStorage).
    pub tmp_mb: u32,
    /// Whether landlock must be applied (the kernel supports it).
    pub landlock: bool,
}

impl JailSpec {
    /// The host directories to bind, in the order their descriptors travel.
    pub fn sources(&self) -> Vec<&Path> {
        let mut out = vec![self.task_root.as_path(), self.runtime_dir.as_path()];
        out.extend(self.read_only.iter().map(PathBuf::as_path));
        out
    }
}

/// Step 1, in the shell: new namespaces for everything. The caller's user
/// namespace owner (Kumo) then writes the id maps.
pub fn unshare_all() -> Result<(), JailError> {
    // SAFETY: unshare has no memory-safety preconditions.
    check(unsafe { libc::unshare(NAMESPACES) }, || "unshare(user, mount, net, uts, ipc, pid namespaces)".into())
}

/// Step 2, once the maps exist: become the sandbox user (keeping the
/// capabilities this user namespace grants, which the mounts need).
pub fn become_sandbox_user() -> Result<(), JailError> {
    // SAFETY: plain credential syscalls. setgroups fails where Kumo is not root
    // (setgroups is denied in that user namespace); the host groups are then
    // unmapped and show as nobody.
    unsafe {
        libc::setgroups(0, std::ptr::null());
        check(libc::setresgid(SANDBOX_GID, SANDBOX_GID, SANDBOX_GID), || "setresgid".into())?;
        check(libc::setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID), || "setresuid".into())?;
        let name = b"localhost";
        libc::sethostname(name.as_ptr().cast(), name.len());
    }
    Ok(())
}

/// Brings up `lo` in the new network namespace (it starts down).
pub fn loopback_up() -> Result<(), JailError> {
    // SAFETY: an ioctl on a fresh datagram socket with a zeroed, NUL-terminated ifreq.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(sock, || "socket for loopback ioctl".into())?;
        let sock = OwnedFd::from_raw_fd(sock);
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req), || "SIOCGIFFLAGS lo".into())?;
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        check(libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req), || "SIOCSIFFLAGS lo up".into())
    }
}

/// A listening socket on 127.0.0.1:`port` in the sandbox's network namespace.
pub fn listen_loopback(port: u16) -> Result<std::net::TcpListener, JailError> {
    std::net::TcpListener::bind(("127.0.0.1", port)).map_err(fail(format!("listening on 127.0.0.1:{port}")))
}

fn mount(
    src: Option<&Path>,
    dst: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), JailError> {
    let src_c = src.map(cstr).transpose()?;
    let dst_c = cstr(dst)?;
    let fs_c = fstype.map(cstr).transpose()?;
    let data_c = data.map(cstr).transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a valid NUL-terminated string that outlives the call.
    let ret = unsafe { libc::mount(ptr(&src_c), dst_c.as_ptr(), ptr(&fs_c), flags, ptr(&data_c).cast()) };
    check(ret, || {
        format!("mount {} on {} ({fstype:?})", src.map(|s| s.display().to_string()).unwrap_or_default(), dst.display())
    })
}

/// Binds `src` at `dst`, read-only, keeping the flags the kernel locks for
/// mounts inherited from a more privileged namespace (atime, noexec).
fn bind_read_only(src: &Path, dst: &Path) -> Result<(), JailError> {
    mount(Some(src), dst, None, libc::MS_BIND | libc::MS_REC, None)?;
    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    let dst_c = cstr(dst)?;
    // SAFETY: statvfs fills a zeroed struct for a valid path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(dst_c.as_ptr(), &mut st) } == 0 {
        for (st_flag, ms_flag) in [
            (libc::ST_NOEXEC, libc::MS_NOEXEC),
            (libc::ST_NOATIME, libc::MS_NOATIME),
            (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
            (libc::ST_RELATIME, libc::MS_RELATIME),
        ] {
            if st.f_flag & st_flag != 0 {
                flags |= ms_flag;
            }
        }
    }
    mount(None, dst, None, flags, None)
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// In Kumo (root, host mount namespace): a detached, read-only copy of the
/// mount tree at `path`, to be attached inside a sandbox. A bind from a path
/// would need the sandbox's unprivileged identity to reach it (the data dir
/// may sit under /root), and a plain descriptor cannot cross mount namespaces.
pub fn detached_read_only_tree(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: open_tree and mount_setattr with a valid path, flags and attribute struct.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | AT_RECURSIVE,
        );
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(fd as RawFd);
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let r = libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | AT_RECURSIVE,
            &attr,
            std::mem::size_of::<MountAttr>(),
        );
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }
}

/// Attaches a detached tree from [`detached_read_only_tree`] at `target`.
fn attach_tree(tree: &OwnedFd, target: &Path) -> Result<(), JailError> {
    let c = cstr(target)?;
    // SAFETY: move_mount with a valid descriptor and path.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    check(r as libc::c_int, || format!("attaching a read-only tree at {}", target.display()))
}

/// Makes `dst` a mount point of the same kind as `src` (directory or file).
fn mount_point_for(src: &Path, dst: &Path) -> Result<bool, JailError> {
    match fs::metadata(src) {
        Ok(m) if m.is_dir() => fs::create_dir_all(dst).map(|_| true).map_err(fail(format!("mkdir {}", dst.display()))),
        Ok(_) => {
            if let Some(parent) = dst.parent() {
                fs::create_dir_all(parent).map_err(fail(format!("mkdir {}", parent.display())))?;
            }
            fs::File::create(dst).map(|_| true).map_err(fail(format!("create {}", dst.display())))
        }
        Err(_) => Ok(false),
    }
}

fn inside(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Step 3, in the shell before it is claimed: the function-independent part of
/// the view, on a small tmpfs at `root`.
pub fn build_skeleton(root: &Path) -> Result<(), JailError> {
    mount(None, Path::new("/"), None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    mount(Some(Path::new("tmpfs")), root, Some("tmpfs"), libc::MS_NOSUID | libc::MS_NODEV, Some("size=8m,mode=0755"))?;
    for dir in SYSTEM_DIRS {
        let host = Path::new("/").join(dir);
        let target = root.join(dir);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&host).map_err(fail(format!("readlink {}", host.display())))?;
                std::os::unix::fs::symlink(link, &target).map_err(fail(format!("symlink {}", target.display())))?;
            }
            Ok(m) if m.is_dir() => {
                fs::create_dir(&target).map_err(fail(format!("mkdir {}", target.display())))?;
                bind_read_only(&host, &target)?;
            }
            _ => {}
        }
    }
    let etc = root.join("etc");
    fs::create_dir(&etc).map_err(fail("mkdir etc"))?;
    fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/sbin/nologin\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n",
    )
    .map_err(fail("write /etc/passwd"))?;
    fs::write(etc.join("group"), "root:x:0:\nsbx_user1051:x:990:\nnobody:x:65534:\n")
        .map_err(fail("write /etc/group"))?;
    // The host's hosts file plus the name that reaches the host's own loopback (when allowed).
    let mut hosts = fs::read_to_string("/etc/hosts").unwrap_or_else(|_| "127.0.0.1\tlocalhost\n".into());
    hosts.push_str(&format!("\n{}\t{}\n", crate::egress::HOST_ALIAS, crate::egress::HOST_ALIAS_NAME));
    fs::write(etc.join("hosts"), hosts).map_err(fail("write /etc/hosts"))?;
    for name in ETC_ENTRIES {
        let host = Path::new("/etc").join(name);
        let target = etc.join(name);
        if mount_point_for(&host, &target)? {
            bind_read_only(&host, &target)?;
        }
    }
    let dev = root.join("dev");
    fs::create_dir(&dev).map_err(fail("mkdir dev"))?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        let target = dev.join(name);
        if mount_point_for(&host, &target)? {
            mount(Some(&host), &target, None, libc::MS_BIND, None)?;
        }
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link)).map_err(fail(format!("symlink /dev/{link}")))?;
    }
    for dir in ["proc", "tmp", "opt", "var/task", "var/runtime"] {
        fs::create_dir_all(root.join(dir)).map_err(fail(format!("mkdir /{dir}")))?;
    }
    Ok(())
}

/// Lambda's default EphemeralStorage; /tmp is made this size ahead of time and resized when claimed.
const DEFAULT_TMP_MB: u32 = 512;

/// Step 4, in the runtime-to-be (PID 1 of the new PID namespace) before it is
/// claimed: the private /tmp at the default size, and a /proc that shows only
/// this environment (a new proc may only be mounted while the host's is still
/// visible, so before pivot_root).
pub fn mount_private_tmp_and_proc(root: &Path) -> Result<(), JailError> {
    mount(
        Some(Path::new("tmpfs")),
        &root.join("tmp"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&format!("size={DEFAULT_TMP_MB}m,mode=1777")),
    )?;
    mount(
        Some(Path::new("proc")),
        &root.join("proc"),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )
}

/// Step 5, in the runtime's process once claimed: the function's code, the
/// runtime and the interpreter, /tmp at the function's size, then pivot_root
/// so nothing else of the host remains reachable.
pub fn finish_view(root: &Path, spec: &JailSpec, sources: &[OwnedFd]) -> Result<(), JailError> {
    let targets: Vec<PathBuf> = [root.join("var/task"), root.join("var/runtime")]
        .into_iter()
        .chain(spec.read_only.iter().map(|p| inside(root, p)))
        .collect();
    if !sources.is_empty() && sources.len() != targets.len() {
        return Err(JailError { step: "launch spec".into(), source: io::Error::other("wrong number of bind sources") });
    }
    for (i, target) in targets.iter().enumerate() {
        fs::create_dir_all(target).map_err(fail(format!("mkdir {}", target.display())))?;
        match (sources.get(i), spec.sources().get(i)) {
            (Some(tree), _) => attach_tree(tree, target)?,
            (None, Some(path)) => bind_read_only(path, target)?,
            (None, None) => {}
        }
    }
    if spec.tmp_mb != DEFAULT_TMP_MB {
        mount(
            None,
            &root.join("tmp"),
            None,
            libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV,
            Some(&format!("size={}m,mode=1777", spec.tmp_mb)),
        )?;
    }
    mount(None, root, None, libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV, Some("mode=0755"))?;
    let root_c = cstr(root)?;
    let dot = cstr(".")?;
    // SAFETY: path arguments are valid C strings; pivot_root(".", ".") stacks the
    // old root on top of the new one, and the detach removes it.
    unsafe {
        check(libc::chdir(root_c.as_ptr()), || "chdir new root".into())?;
        check(libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int, || "pivot_root".into())?;
        check(libc::umount2(dot.as_ptr(), libc::MNT_DETACH), || "detach the host's root".into())?;
        check(libc::chdir(c"/".as_ptr()), || "chdir /".into())?;
    }
    Ok(())
}

/// Step 6: Lambda's rlimits, with the hard limit equal to the soft one so they cannot be raised.
pub fn set_rlimits() -> Result<(), JailError> {
    for (resource, value) in
        [(libc::RLIMIT_NOFILE, MAX_OPEN_FILES), (libc::RLIMIT_NPROC, MAX_PROCESSES), (libc::RLIMIT_CORE, 0)]
    {
        let limit = libc::rlimit { rlim_cur: value, rlim_max: value };
        // SAFETY: setrlimit with a valid struct.
        check(unsafe { libc::setrlimit(resource, &limit) }, || format!("setrlimit {resource}"))?;
    }
    Ok(())
}

/// Step 7: no capabilities left in any set, and none obtainable through exec.
pub fn drop_privileges() -> Result<(), JailError> {
    #[repr(C)]
    struct CapHeader {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct CapData {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl and capset with valid arguments; the bounding-set loop stops at the first unknown capability.
    unsafe {
        for cap in 0..64 {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
                && io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
            {
                break;
            }
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
        let data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
        check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()) as libc::c_int, || "capset".into())?;
        check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), || "PR_SET_NO_NEW_PRIVS".into())?;
    }
    Ok(())
}

/// Step 8: landlock, where the kernel has it: read and execute everywhere in
/// the view, write only under /tmp and to the harmless devices; no signals or
/// abstract sockets outside the environment (ABI 6+).
pub fn apply_landlock(required: bool) -> Result<(), JailError> {
    use landlock::{ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreatedAttr, Scope};
    let abi = ABI::V6;
    let to_err =
        |e: landlock::RulesetError| JailError { step: format!("landlock: {e}"), source: io::Error::other("landlock") };
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(to_err)?
        .scope(Scope::from_all(abi))
        .map_err(to_err)?
        .create()
        .map_err(to_err)?
        .add_rules(landlock::path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(to_err)?
        .add_rules(landlock::path_beneath_rules(["/tmp"], AccessFs::from_all(abi)))
        .map_err(to_err)?
        .add_rules(landlock::path_beneath_rules(
            DEVICES.iter().map(|d| format!("/dev/{d}")),
            AccessFs::WriteFile | AccessFs::ReadFile,
        ))
        .map_err(to_err)?;
    let status = ruleset.restrict_self().map_err(to_err)?;
    if required && status.ruleset == landlock::RulesetStatus::NotEnforced {
        return Err(JailError { step: "landlock".into(), source: io::Error::other("not enforced by this kernel") });
    }
    Ok(())
}
