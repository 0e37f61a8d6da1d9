//! Outbound network for isolated environments: an HTTP proxy that Kumo
//! serves inside each environment's network namespace.
//!
//! An environment's namespace has only a loopback interface, so nothing it
//! sends leaves it except through listeners Kumo put there. For functions
//! allowed outbound access, one of them is this proxy (`HTTP_PROXY` and
//! `HTTPS_PROXY` point at it; AWS SDKs, botocore, requests, urllib, curl and
//! Go and Rust HTTP clients honour them). HTTPS goes through `CONNECT`
//! tunnels; plain HTTP requests in absolute form are forwarded one per
//! connection. The host's own loopback stays out of reach unless the server
//! allows it (`--egress-host-loopback`), since it belongs to the host.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 64 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Which destinations the proxy may connect to.
#[derive(Debug, Clone, Copy)]
pub struct EgressPolicy {
    pub host_loopback: bool,
}

impl EgressPolicy {
    fn allows(&self, addr: &SocketAddr) -> bool {
        let ip = addr.ip();
        let local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
        };
        !local || self.host_loopback
    }
}

/// Serves the proxy on one environment's listener until aborted.
pub fn serve(listener: TcpListener, policy: EgressPolicy) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let _ = handle(stream, policy).await;
            });
        }
    })
    .abort_handle()
}

async fn reply(client: &mut TcpStream, status: &str) -> std::io::Result<()> {
    client.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()).await
}

/// Reads up to the end of the request head; returns (head, bytes after it).
async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((String::from_utf8_lossy(&buf).into_owned(), rest)));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Resolves and connects, refusing destinations the policy forbids.
async fn connect(authority: &str, policy: EgressPolicy) -> Result<TcpStream, &'static str> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(authority).await.map_err(|_| "502 Bad Gateway")?.collect();
    let allowed: Vec<SocketAddr> = addrs.into_iter().filter(|a| policy.allows(a)).collect();
    if allowed.is_empty() {
        return Err("403 Forbidden");
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&allowed[..])).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(_)) => Err("502 Bad Gateway"),
        Err(_) => Err("504 Gateway Timeout"),
    }
}

fn with_default_port(authority: &str, port: u16) -> String {
    let has_port = match authority.rfind(']') {
        Some(bracket) => authority[bracket..].contains(':'),
        None => authority.contains(':'),
    };
    if has_port { authority.to_string() } else { format!("{authority}:{port}") }
}

/// Rewrites an absolute-form request head for the origin server: origin-form
/// target, hop-by-hop proxy headers dropped, one request per connection.
fn origin_head(method: &str, path: &str, version: &str, head: &str) -> String {
    let mut out = format!("{method} {path} {version}\r\n");
    for line in head.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if matches!(name.as_str(), "proxy-connection" | "connection" | "keep-alive" | "proxy-authorization") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn handle(mut client: TcpStream, policy: EgressPolicy) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let Ok(Ok(Some((head, rest)))) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await else {
        return reply(&mut client, "400 Bad Request").await;
    };
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (method, target, version) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (mut upstream, preamble) = if method.eq_ignore_ascii_case("CONNECT") {
        match connect(&with_default_port(target, 443), policy).await {
            Ok(up) => {
                client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
                (up, Vec::new())
            }
            Err(status) => return reply(&mut client, status).await,
        }
    } else {
        let Some(url) = target.strip_prefix("http://") else {
            return reply(&mut client, "400 Bad Request").await;
        };
        let (authority, path) = match url.find('/') {
            Some(i) => (&url[..i], &url[i..]),
            None => (url, "/"),
        };
        match connect(&with_default_port(authority, 80), policy).await {
            Ok(up) => (up, origin_head(method, path, version, &head).into_bytes()),
            Err(status) => return reply(&mut client, status).await,
        }
    };
    let _ = upstream.set_nodelay(true);
    upstream.write_all(&preamble).await?;
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_becomes_origin_form() {
        let head = "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n";
        let out = origin_head("GET", "/a?b=1", "HTTP/1.1", head);
        assert_eq!(out, "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn default_ports() {
        assert_eq!(with_default_port("example.com", 443), "example.com:443");
        assert_eq!(with_default_port("example.com:8443", 443), "example.com:8443");
        assert_eq!(with_default_port("[::1]", 80), "[::1]:80");
        assert_eq!(with_default_port("[::1]:81", 80), "[::1]:81");
    }

    #[test]
    fn host_loopback_is_refused_unless_allowed() {
        let lo: SocketAddr = "127.0.0.1:5432".parse().expect("addr");
        let out: SocketAddr = "93.184.216.34:443".parse().expect("addr");
        assert!(!EgressPolicy { host_loopback: false }.allows(&lo));
        assert!(EgressPolicy { host_loopback: true }.allows(&lo));
        assert!(EgressPolicy { host_loopback: false }.allows(&out));
    }
}
