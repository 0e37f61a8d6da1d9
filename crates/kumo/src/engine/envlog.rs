//! One environment's log stream.
//!
//! The runtime's stdout and stderr share one pipe (so their lines keep their
//! order). A reader task turns what arrives into log events; the invoke path
//! drains the pipe synchronously before it writes START, END and REPORT, so a
//! function's output always lands between the START and END of the invocation
//! that printed it.

use super::now_ms;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use tokio::io::unix::AsyncFd;

use crate::store::{LogEvent, Store};

/// CloudWatch caps one event at 256 KB; longer lines are split.
const MAX_EVENT_BYTES: usize = 256 * 1024;

pub struct EnvLog {
    group: Arc<str>,
    stream: Arc<str>,
    store: Arc<dyn Store>,
    inner: Mutex<Inner>,
}

struct Inner {
    fd: Option<OwnedFd>,
    partial: Vec<u8>,
    /// Events not yet handed to the store.
    pending: Vec<LogEvent>,
    /// Text since the last REPORT: the source of `X-Amz-Log-Result`.
    segment: String,
}

impl EnvLog {
    pub fn new(group: Arc<str>, stream: Arc<str>, store: Arc<dyn Store>, fd: Option<OwnedFd>) -> Arc<EnvLog> {
        Arc::new(EnvLog {
            group,
            stream,
            store,
            inner: Mutex::new(Inner { fd, partial: Vec::new(), pending: Vec::new(), segment: String::new() }),
        })
    }

    pub fn stream(&self) -> &Arc<str> {
        &self.stream
    }

    /// Connects the environment's output pipe (after the process is spawned,
    /// so INIT_START can be written before anything the runtime prints).
    pub fn attach(&self, fd: OwnedFd) {
        self.lock().fd = Some(fd);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task that follows the pipe until the environment's last process closes it.
    pub fn spawn_reader(self: &Arc<Self>) {
        let raw = match self.lock().fd.as_ref() {
            Some(fd) => fd.as_raw_fd(),
            None => return,
        };
        let log = self.clone();
        tokio::spawn(async move {
            // SAFETY: the descriptor belongs to `log`, which this task keeps alive,
            // and is only closed below, after the AsyncFd is dropped.
            let registered =
                unsafe { AsyncFd::register_with_interest(BorrowedRaw(raw), tokio::io::Interest::READABLE) };
            let Ok(async_fd) = registered else { return };
            loop {
                let Ok(mut guard) = async_fd.readable().await else { break };
                let eof = log.drain();
                guard.clear_ready();
                log.push_pending();
                if eof {
                    break;
                }
            }
            drop(async_fd);
            let mut inner = log.lock();
            flush_partial(&log, &mut inner);
            inner.fd = None;
            drop(inner);
            log.push_pending();
        });
    }

    /// Reads whatever is in the pipe now. Returns true at end of file.
    fn drain(&self) -> bool {
        let mut inner = self.lock();
        let Some(fd) = inner.fd.as_ref().map(AsRawFd::as_raw_fd) else { return true };
        let mut buf = [0u8; 16 * 1024];
        loop {
            // SAFETY: reading into a stack buffer from a descriptor we own (non-blocking).
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                self.absorb(&mut inner, &buf[..n as usize]);
                continue;
            }
            if n == 0 {
                return true;
            }
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => false,
                io::ErrorKind::Interrupted => continue,
                _ => true,
            };
        }
    }

    fn absorb(&self, inner: &mut Inner, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(pos) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut inner.partial);
            line.extend_from_slice(&rest[..pos]);
            rest = &rest[pos + 1..];
            self.emit(inner, &line);
        }
        inner.partial.extend_from_slice(rest);
        while inner.partial.len() >= MAX_EVENT_BYTES {
            let tail = inner.partial.split_off(MAX_EVENT_BYTES);
            let head = std::mem::replace(&mut inner.partial, tail);
            self.emit(inner, &head);
        }
    }

    fn emit(&self, inner: &mut Inner, line: &[u8]) {
        let message = String::from_utf8_lossy(line).into_owned();
        inner.segment.push_str(&message);
        inner.segment.push('\n');
        inner.pending.push(LogEvent {
            group: self.group.clone(),
            stream: self.stream.clone(),
            timestamp_ms: now_ms(),
            message,
        });
    }

    fn push_pending(&self) {
        let events = std::mem::take(&mut self.lock().pending);
        self.store.append_logs(events);
    }

    /// Writes a platform line after everything the function has printed so far.
    pub fn platform_line(&self, line: &str) {
        self.drain();
        let mut inner = self.lock();
        flush_partial(self, &mut inner);
        self.emit(&mut inner, line.as_bytes());
    }

    /// Writes END and REPORT, sends everything to the store and returns the
    /// last 4 KB of this invocation's log when asked.
    pub fn finish_invocation(&self, lines: &[String], want_tail: bool) -> Option<String> {
        self.drain();
        let mut inner = self.lock();
        flush_partial(self, &mut inner);
        for line in lines {
            self.emit(&mut inner, line.as_bytes());
        }
        let segment = std::mem::take(&mut inner.segment);
        let events = std::mem::take(&mut inner.pending);
        drop(inner);
        self.store.append_logs(events);
        want_tail.then(|| tail(&segment, kumo_core::invoke::LOG_TAIL_BYTES))
    }
}

fn flush_partial(log: &EnvLog, inner: &mut Inner) {
    if !inner.partial.is_empty() {
        let line = std::mem::take(&mut inner.partial);
        log.emit(inner, &line);
    }
}

/// The last `max` bytes of `text`, starting on a character boundary.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_string()
}

/// A raw descriptor whose owner (the [`EnvLog`]) outlives the `AsyncFd` using it.
struct BorrowedRaw(RawFd);

impl AsRawFd for BorrowedRaw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_respects_char_boundaries() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
    }
}
