//! Outbound network for isolated environments, transparently.
//!
//! An environment's network namespace has only a loopback interface. Its
//! runtime carries a seccomp filter that hands every `connect(2)` to Kumo
//! (a user notification). Kumo reads the destination from the process's
//! memory and either lets the call proceed inside the namespace (loopback:
//! the Runtime API and Kumo's API are there; anything else there simply has
//! no route), or, for a function allowed outbound access, connects a socket
//! of the same kind from the host and puts it in place of the function's own
//! descriptor, so the function's `connect` returns 0 on a socket that reaches
//! the destination. Any TCP or UDP client works unchanged: HTTP, database
//! drivers, DNS through the host's resolver (also one on the host's loopback,
//! such as systemd-resolved's 127.0.0.53). Unconnected UDP (`sendto` with an
//! address) is not intercepted and finds no route.
//!
//! Letting a call proceed is safe even though the process could rewrite the
//! address after Kumo looked at it: inside the namespace there is nowhere to go.
//! The host's own loopback is reachable only through [`HOST_ALIAS`]
//! (`host.kumo.internal`) and only with `--egress-host-loopback`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// The address (and, in the sandbox's /etc/hosts, the name `host.kumo.internal`)
/// that stands for the host's own loopback, as `host.docker.internal` does for Docker.
pub const HOST_ALIAS: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
pub const HOST_ALIAS_NAME: &str = "host.kumo.internal";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one environment may reach.
#[derive(Debug, Clone, Copy)]
pub struct EgressPolicy {
    /// The function's outbound setting.
    pub outbound: bool,
    /// `--egress-host-loopback`: [`HOST_ALIAS`] reaches the host's 127.0.0.1.
    pub host_loopback: bool,
}

/// Where a connect goes.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// Inside the environment's own namespace (the kernel carries on).
    Inside,
    /// From the host, to this address.
    Host(SocketAddr),
    /// Refused with this errno.
    Refuse(i32),
}

impl EgressPolicy {
    fn route(&self, dest: SocketAddr) -> Route {
        let ip = dest.ip();
        if ip == IpAddr::V4(HOST_ALIAS) {
            return match (self.outbound, self.host_loopback) {
                (true, true) => Route::Host(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), dest.port())),
                _ => Route::Refuse(libc::ECONNREFUSED),
            };
        }
        let mapped_v4 = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
            IpAddr::V4(v4) => Some(v4),
        };
        let local = ip.is_loopback() || ip.is_unspecified() || mapped_v4.is_some_and(|v4| v4.is_loopback());
        // A resolver on the host's loopback (systemd-resolved's 127.0.0.53, a
        // local dnsmasq) is the host's: nothing in the environment serves DNS.
        if local && dest.port() == 53 && self.outbound && !ip.is_unspecified() {
            return Route::Host(dest);
        }
        if local || !self.outbound { Route::Inside } else { Route::Host(dest) }
    }
}

/// Answers one environment's connect notifications until its processes are gone.
pub fn supervise(notify: OwnedFd, policy: EgressPolicy) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        // SAFETY: the AsyncFd owns the descriptor, so it stays open while registered.
        let Ok(fd) = (unsafe { AsyncFd::register(notify) }) else { return };
        loop {
            let Ok(mut ready) = fd.readable().await else { return };
            // NOTIF_RECV blocks when nothing is pending, whatever O_NONBLOCK
            // says, and tokio's readiness can be stale: ask the kernel first.
            match pending(fd.as_raw_fd()) {
                Pending::Notification => {}
                Pending::Nothing => {
                    ready.clear_ready();
                    continue;
                }
                Pending::Gone => return,
            }
            // SAFETY: a zeroed seccomp_notif is the documented input of NOTIF_RECV.
            let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
            // SAFETY: ioctl on the listener with a valid, writable struct.
            if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut notif) } < 0 {
                // The caller was killed or interrupted meanwhile: nothing to answer.
                continue;
            }
            let listener = fd.as_raw_fd();
            tokio::task::spawn_blocking(move || answer(listener, &notif, policy));
        }
    })
    .abort_handle()
}

enum Pending {
    Notification,
    Nothing,
    /// Every process of the environment has exited.
    Gone,
}

fn pending(fd: RawFd) -> Pending {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: poll on one valid pollfd, without waiting.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n <= 0 {
        Pending::Nothing
    } else if p.revents & libc::POLLIN != 0 {
        Pending::Notification
    } else {
        Pending::Gone
    }
}

fn respond(listener: RawFd, id: u64, val: i64, error: i32, flags: u32) {
    let resp = libc::seccomp_notif_resp { id, val, error, flags };
    // SAFETY: ioctl on the listener with a valid struct. A failure means the
    // caller is gone (killed, interrupted): nothing left to answer.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
}

fn still_valid(listener: RawFd, id: u64) -> bool {
    // SAFETY: ioctl with a pointer to a live u64.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// Decides and answers one `connect`. Runs on the blocking pool (it connects).
fn answer(listener: RawFd, notif: &libc::seccomp_notif, policy: EgressPolicy) {
    let carry_on = || respond(listener, notif.id, 0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32);
    if i64::from(notif.data.nr) != libc::SYS_connect {
        return carry_on();
    }
    let [fd, addr_ptr, addr_len, ..] = notif.data.args;
    let dest = read_sockaddr(notif.pid, addr_ptr, addr_len as usize);
    // The pid could have been reused between the notification and the read.
    if !still_valid(listener, notif.id) {
        return;
    }
    let Some(dest) = dest else { return carry_on() };
    match policy.route(dest) {
        Route::Inside => carry_on(),
        Route::Refuse(errno) => respond(listener, notif.id, 0, -errno, 0),
        Route::Host(to) => match connect_for(notif.pid, fd as RawFd, to) {
            Ok(socket) => install(listener, notif.id, socket, fd as u32),
            Err(e) => respond(listener, notif.id, 0, -e.raw_os_error().unwrap_or(libc::ECONNREFUSED), 0),
        },
    }
}

/// The destination of the pending connect, read from the caller's memory.
fn read_sockaddr(pid: u32, ptr: u64, len: usize) -> Option<SocketAddr> {
    let mut buf = [0u8; 28];
    let len = len.min(buf.len());
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    let remote = libc::iovec { iov_base: ptr as *mut libc::c_void, iov_len: len };
    // SAFETY: both iovecs describe `len` bytes; the remote one is only read by the kernel.
    let n = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if n < 2 {
        return None;
    }
    parse_sockaddr(&buf[..n as usize])
}

fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    match i32::from(family) {
        libc::AF_INET if b.len() >= 8 => Some(SocketAddrV4::new(Ipv4Addr::new(b[4], b[5], b[6], b[7]), port).into()),
        libc::AF_INET6 if b.len() >= 28 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&b[8..24]);
            let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
            Some(SocketAddrV6::new(octets.into(), port, 0, scope).into())
        }
        _ => None,
    }
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// A host-side socket of the same kind as the caller's `fd`, connected to `to`.
fn connect_for(pid: u32, fd: RawFd, to: SocketAddr) -> io::Result<OwnedFd> {
    // SAFETY: raw syscalls on descriptors we own; results are checked.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(last_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as RawFd);
        let theirs = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if theirs < 0 {
            return Err(last_error());
        }
        let theirs = OwnedFd::from_raw_fd(theirs as RawFd);
        let opt = |level, name| {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            let r = libc::getsockopt(theirs.as_raw_fd(), level, name, (&mut v as *mut libc::c_int).cast(), &mut len);
            if r < 0 { None } else { Some(v) }
        };
        let (Some(kind), Some(protocol)) =
            (opt(libc::SOL_SOCKET, libc::SO_TYPE), opt(libc::SOL_SOCKET, libc::SO_PROTOCOL))
        else {
            return Err(io::Error::from_raw_os_error(libc::ENOTSOCK));
        };
        if kind != libc::SOCK_STREAM && kind != libc::SOCK_DGRAM {
            return Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT));
        }
        // The caller's socket may be IPv6 (even for a v4-mapped address); ours matches the destination.
        let domain = if to.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
        let ours = libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol);
        if ours < 0 {
            return Err(last_error());
        }
        let ours = OwnedFd::from_raw_fd(ours);
        if kind == libc::SOCK_STREAM {
            for name in [libc::TCP_NODELAY] {
                if let Some(v) = opt(libc::IPPROTO_TCP, name) {
                    libc::setsockopt(ours.as_raw_fd(), libc::IPPROTO_TCP, name, (&v as *const libc::c_int).cast(), 4);
                }
            }
            if let Some(v) = opt(libc::SOL_SOCKET, libc::SO_KEEPALIVE) {
                libc::setsockopt(
                    ours.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_KEEPALIVE,
                    (&v as *const libc::c_int).cast(),
                    4,
                );
            }
            let timeout = libc::timeval { tv_sec: CONNECT_TIMEOUT.as_secs() as libc::time_t, tv_usec: 0 };
            libc::setsockopt(
                ours.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_SNDTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let (storage, len) = sockaddr_of(to);
        if libc::connect(ours.as_raw_fd(), (&storage as *const libc::sockaddr_storage).cast(), len) < 0 {
            return Err(last_error());
        }
        // The open file description's status flags (O_NONBLOCK) are shared with
        // the caller's descriptor: the replacement must behave the same.
        let flags = libc::fcntl(theirs.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
            let ours_flags = libc::fcntl(ours.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(ours.as_raw_fd(), libc::F_SETFL, ours_flags | libc::O_NONBLOCK);
        }
        Ok(ours)
    }
}

fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(a.ip().octets()) },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            (storage, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr { s6_addr: a.ip().octets() },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            (storage, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

/// Puts `socket` in place of the caller's descriptor `target_fd` and makes its `connect` return 0.
fn install(listener: RawFd, id: u64, socket: OwnedFd, target_fd: u32) {
    let addfd = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SETFD as u32,
        srcfd: socket.as_raw_fd() as u32,
        newfd: target_fd,
        newfd_flags: 0,
    };
    // SAFETY: ioctl on the listener with a valid struct; `socket` outlives the call.
    let r = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) };
    if r < 0 {
        return respond(listener, id, 0, -io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO), 0);
    }
    respond(listener, id, 0, 0, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: EgressPolicy = EgressPolicy { outbound: true, host_loopback: false };

    #[test]
    fn loopback_stays_inside_and_the_rest_goes_out() {
        let at = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(OPEN.route(at("127.0.0.1:9001")), Route::Inside);
        assert_eq!(OPEN.route(at("[::1]:9001")), Route::Inside);
        assert_eq!(OPEN.route(at("[::ffff:127.0.0.1]:9001")), Route::Inside);
        assert_eq!(OPEN.route(at("0.0.0.0:80")), Route::Inside);
        assert_eq!(OPEN.route(at("10.1.2.3:5432")), Route::Host(at("10.1.2.3:5432")));
        assert_eq!(OPEN.route(at("127.0.0.53:53")), Route::Host(at("127.0.0.53:53")), "the host's stub resolver");
        let closed = EgressPolicy { outbound: false, host_loopback: true };
        assert_eq!(closed.route(at("127.0.0.53:53")), Route::Inside);
        assert_eq!(closed.route(at("10.1.2.3:5432")), Route::Inside, "no route inside: unreachable");
    }

    #[test]
    fn the_host_alias_needs_permission() {
        let alias = SocketAddr::new(HOST_ALIAS.into(), 5432);
        assert_eq!(OPEN.route(alias), Route::Refuse(libc::ECONNREFUSED));
        let allowed = EgressPolicy { outbound: true, host_loopback: true };
        assert_eq!(allowed.route(alias), Route::Host("127.0.0.1:5432".parse().expect("addr")));
    }

    #[test]
    fn sockaddrs_round_trip() {
        for addr in ["192.0.2.7:443", "[2001:db8::1]:8443"] {
            let addr: SocketAddr = addr.parse().expect("addr");
            let (storage, len) = sockaddr_of(addr);
            // SAFETY: reading the bytes of a value we own.
            let bytes = unsafe {
                std::slice::from_raw_parts((&storage as *const libc::sockaddr_storage).cast::<u8>(), len as usize)
            };
            assert_eq!(parse_sockaddr(bytes), Some(addr));
        }
        assert_eq!(parse_sockaddr(&[1, 0]), None, "AF_UNIX is not ours");
    }
}
