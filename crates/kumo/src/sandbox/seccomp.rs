//! The system calls a function may make: an allow-list compiled to BPF.
//!
//! The list is what the Python, Node.js and `provided` (Rust, Go, C) runtimes
//! need to run, read and write files, use threads, sockets and event loops, and
//! start subprocesses. Everything else fails with `EPERM`: namespace and mount
//! operations, ptrace, kernel modules, keyrings, BPF, perf, io_uring, changing
//! user or group ids, and `clone` with any namespace flag. `clone3` answers
//! `ENOSYS` (its flags live in memory a filter cannot inspect), which makes
//! glibc fall back to `clone`, whose flags it can.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};

/// What failed while compiling the filters.
#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter: {0}")]
pub struct SeccompBuildError(String);

/// The two programs to install, in order.
pub struct Filters {
    pub allow_list: BpfProgram,
    pub clone3_enosys: BpfProgram,
}

fn err(e: impl std::fmt::Display) -> SeccompBuildError {
    SeccompBuildError(e.to_string())
}

/// Calls allowed with any arguments.
#[rustfmt::skip]
fn allowed() -> Vec<libc::c_long> {
    use libc::*;
    let mut calls = vec![
        // Files and directories.
        SYS_read,
        SYS_write,
        SYS_openat,
        SYS_openat2,
        SYS_close,
        SYS_close_range,
        SYS_fstat,
        SYS_newfstatat,
        SYS_statx,
        SYS_lseek,
        SYS_pread64,
        SYS_pwrite64,
        SYS_readv,
        SYS_writev,
        SYS_preadv,
        SYS_pwritev,
        SYS_preadv2,
        SYS_pwritev2,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_fcntl,
        SYS_flock,
        SYS_fsync,
        SYS_fdatasync,
        SYS_sync_file_range,
        SYS_truncate,
        SYS_ftruncate,
        SYS_fallocate,
        SYS_fadvise64,
        SYS_getdents64,
        SYS_getcwd,
        SYS_chdir,
        SYS_fchdir,
        SYS_renameat,
        SYS_renameat2,
        SYS_mkdirat,
        SYS_unlinkat,
        SYS_symlinkat,
        SYS_linkat,
        SYS_readlinkat,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_fchmodat2,
        SYS_fchown,
        SYS_fchownat,
        SYS_umask,
        SYS_utimensat,
        SYS_statfs,
        SYS_fstatfs,
        SYS_copy_file_range,
        SYS_sendfile,
        SYS_splice,
        SYS_tee,
        SYS_dup,
        SYS_dup3,
        SYS_pipe2,
        SYS_memfd_create,
        SYS_ioctl,
        SYS_inotify_init1,
        SYS_inotify_add_watch,
        SYS_inotify_rm_watch,
        SYS_getxattr,
        SYS_lgetxattr,
        SYS_fgetxattr,
        SYS_listxattr,
        SYS_flistxattr,
        SYS_name_to_handle_at,
        // Memory.
        SYS_mmap,
        SYS_munmap,
        SYS_mprotect,
        SYS_mremap,
        SYS_brk,
        SYS_madvise,
        SYS_msync,
        SYS_mincore,
        SYS_mlock,
        SYS_munlock,
        SYS_mlock2,
        SYS_membarrier,
        SYS_get_mempolicy,
        SYS_pkey_alloc,
        SYS_pkey_free,
        SYS_pkey_mprotect,
        // Processes, threads and signals (inside the environment's own PID namespace).
        SYS_clone,
        SYS_clone3,
        SYS_execve,
        SYS_execveat,
        SYS_exit,
        SYS_exit_group,
        SYS_wait4,
        SYS_waitid,
        SYS_kill,
        SYS_tgkill,
        SYS_tkill,
        SYS_getpid,
        SYS_gettid,
        SYS_getppid,
        SYS_getpgid,
        SYS_setpgid,
        SYS_getsid,
        SYS_setsid,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
        SYS_getresuid,
        SYS_getresgid,
        SYS_getgroups,
        SYS_capget,
        SYS_prctl,
        SYS_set_tid_address,
        SYS_set_robust_list,
        SYS_get_robust_list,
        SYS_rseq,
        SYS_futex,
        SYS_futex_waitv,
        SYS_sched_yield,
        SYS_sched_getaffinity,
        SYS_sched_setaffinity,
        SYS_sched_getparam,
        SYS_sched_getscheduler,
        SYS_sched_get_priority_max,
        SYS_sched_get_priority_min,
        SYS_getpriority,
        SYS_setpriority,
        SYS_getrlimit,
        SYS_setrlimit,
        SYS_prlimit64,
        SYS_getrusage,
        SYS_times,
        SYS_sysinfo,
        SYS_uname,
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_rt_sigreturn,
        SYS_rt_sigsuspend,
        SYS_rt_sigtimedwait,
        SYS_rt_sigpending,
        SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo,
        SYS_sigaltstack,
        SYS_pidfd_open,
        SYS_pidfd_send_signal,
        SYS_restart_syscall,
        SYS_getrandom,
        SYS_personality,
        // Time.
        SYS_clock_gettime,
        SYS_clock_getres,
        SYS_clock_nanosleep,
        SYS_nanosleep,
        SYS_gettimeofday,
        SYS_getitimer,
        SYS_setitimer,
        SYS_timer_create,
        SYS_timer_settime,
        SYS_timer_gettime,
        SYS_timer_getoverrun,
        SYS_timer_delete,
        SYS_timerfd_create,
        SYS_timerfd_settime,
        SYS_timerfd_gettime,
        // Event loops.
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_pwait,
        SYS_epoll_pwait2,
        SYS_eventfd2,
        SYS_signalfd4,
        SYS_ppoll,
        SYS_pselect6,
        // Sockets (the network namespace decides what they can reach).
        SYS_socket,
        SYS_socketpair,
        SYS_connect,
        SYS_accept,
        SYS_accept4,
        SYS_bind,
        SYS_listen,
        SYS_getsockname,
        SYS_getpeername,
        SYS_setsockopt,
        SYS_getsockopt,
        SYS_sendto,
        SYS_recvfrom,
        SYS_sendmsg,
        SYS_recvmsg,
        SYS_sendmmsg,
        SYS_recvmmsg,
        SYS_shutdown,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        SYS_open,
        SYS_stat,
        SYS_lstat,
        SYS_access,
        SYS_pipe,
        SYS_dup2,
        SYS_getdents,
        SYS_rename,
        SYS_mkdir,
        SYS_rmdir,
        SYS_unlink,
        SYS_symlink,
        SYS_link,
        SYS_readlink,
        SYS_chmod,
        SYS_chown,
        SYS_lchown,
        SYS_creat,
        SYS_utimes,
        SYS_futimesat,
        SYS_utime,
        SYS_fork,
        SYS_vfork,
        SYS_arch_prctl,
        SYS_poll,
        SYS_select,
        SYS_epoll_create,
        SYS_epoll_wait,
        SYS_eventfd,
        SYS_signalfd,
        SYS_inotify_init,
        SYS_alarm,
        SYS_pause,
        SYS_getpgrp,
        SYS_time,
    ]);
    calls
}

/// Every namespace flag `clone` accepts.
const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | 0x80) as u64; // CLONE_NEWTIME

fn arch() -> Result<seccompiler::TargetArch, SeccompBuildError> {
    std::env::consts::ARCH.try_into().map_err(err)
}

/// Compiles both programs. Called in the sandbox shell before it forks the runtime.
pub fn build() -> Result<Filters, SeccompBuildError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for call in allowed() {
        rules.insert(call, Vec::new());
    }
    // clone: only without namespace flags (threads and plain forks).
    let no_namespaces =
        SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(NAMESPACE_FLAGS), 0).map_err(err)?;
    rules.insert(libc::SYS_clone, vec![SeccompRule::new(vec![no_namespaces]).map_err(err)?]);
    // socket: no raw packet sockets; netlink only for reading routes/addresses (glibc's getaddrinfo).
    let not_packet =
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, libc::AF_PACKET as u64).map_err(err)?;
    rules.insert(libc::SYS_socket, vec![SeccompRule::new(vec![not_packet]).map_err(err)?]);

    let allow_list = SeccompFilter::new(rules, SeccompAction::Errno(libc::EPERM as u32), SeccompAction::Allow, arch()?)
        .and_then(BpfProgram::try_from)
        .map_err(err)?;

    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3_enosys =
        SeccompFilter::new(clone3, SeccompAction::Allow, SeccompAction::Errno(libc::ENOSYS as u32), arch()?)
            .and_then(BpfProgram::try_from)
            .map_err(err)?;
    Ok(Filters { allow_list, clone3_enosys })
}

/// The audit architecture this build runs on, for the hand-written filter.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Installs a filter that hands every `connect(2)` to a supervisor (Kumo's
/// egress, see `egress.rs`) and returns the supervisor's end. Installed by
/// PID 1 before it is claimed; inherited by the runtime and all it forks.
/// seccompiler has no user-notification action, hence seven instructions by hand.
pub fn install_connect_notifier() -> std::io::Result<std::os::fd::OwnedFd> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
    let stmt = |code: u32, k: u32| sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| sock_filter { code: code as u16, jt, jf, k };
    // Offsets in struct seccomp_data: nr at 0, arch at 4.
    let program = [
        stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_connect as u32, 0, 1),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
    // SAFETY: seccomp(2) with a valid program that outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// Installs the filters on the calling thread. Needs `no_new_privs` (or CAP_SYS_ADMIN) first.
pub fn install(filters: &Filters) -> Result<(), SeccompBuildError> {
    // The allow-list goes last: it denies seccomp(2) itself. The kernel runs
    // every filter and keeps the strictest answer, so clone3 still gets ENOSYS.
    seccompiler::apply_filter(&filters.clone3_enosys).map_err(err)?;
    seccompiler::apply_filter(&filters.allow_list).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile() {
        let f = build().expect("filters build");
        assert!(f.allow_list.len() > 100);
        assert!(!f.clone3_enosys.is_empty());
    }

    #[test]
    fn dangerous_calls_are_not_allowed() {
        let list = allowed();
        for call in [
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_ptrace,
            libc::SYS_pivot_root,
            libc::SYS_chroot,
            libc::SYS_setuid,
            libc::SYS_setresuid,
            libc::SYS_setgid,
            libc::SYS_setgroups,
            libc::SYS_bpf,
            libc::SYS_perf_event_open,
            libc::SYS_init_module,
            libc::SYS_keyctl,
            libc::SYS_io_uring_setup,
            libc::SYS_process_vm_readv,
            libc::SYS_kexec_load,
            libc::SYS_reboot,
        ] {
            assert!(!list.contains(&call), "syscall {call} must not be on the allow-list");
        }
    }
}
