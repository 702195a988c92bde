//! Binding a UDP port that may be taken: `listen` and `serve` exit with one line when their
//! address is in use, unless `--wait-for-port` asks them to wait for it.
//!
//! Only two errors are waited for, both of which go away on their own: the address is in use
//! (another program holds the port, or the previous run of this one is still shutting down), and
//! the address is not one of this machine's *yet* (a network interface still coming up at boot).
//! Anything else (a privileged port, a malformed address) is reported at once either way.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How often a taken address is tried again.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Whether `--wait-for-port` waits out `e`.
pub fn worth_waiting_for(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable)
}

/// The one-line error for a failed bind of `addr`: `{what} {addr}: {e}`, and for an address in
/// use, what to do about it.
pub fn bind_error(what: &str, addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            "; another program (or another osc-timecode) has it: stop that one, pick another port, or add \
             --wait-for-port to wait until it is free"
        }
        _ => "",
    };
    anyhow::anyhow!("{what} {addr}: {e}{hint}")
}

/// The status line while waiting for `addr` (without the `osc-timecode: ` prefix).
fn waiting_line(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!("{addr} is in use; retrying every second"),
        _ => format!("{addr} is not an address of this machine (yet): {e}; retrying every second"),
    }
}

/// A UDP address being bound, tried again every [`RETRY_EVERY`] while it is taken.
/// `[main-thread]` of `listen` or `serve`.
#[derive(Debug)]
pub struct PortWaiter {
    /// The address to bind.
    addr: SocketAddr,
    /// Says what the address is for, in messages (`cannot listen on`).
    what: &'static str,
    /// When the last attempt failed.
    tried: Option<Instant>,
    /// The kind of the error last reported: the status line is written once per kind.
    reported: Option<std::io::ErrorKind>,
}

impl PortWaiter {
    /// A waiter for `addr`; `what` prefixes errors about it (`cannot listen on`).
    pub fn new(addr: SocketAddr, what: &'static str) -> Self {
        Self { addr, what, tried: None, reported: None }
    }

    /// Whether an attempt has failed and been reported (the command is waiting).
    pub fn waited(&self) -> bool {
        self.reported.is_some()
    }

    /// Binds now if a second has passed since the last attempt: `Ok(Some)` once bound,
    /// `Ok(None)` while the address is taken (one status line on standard error the first time,
    /// through `note`), an error for anything not worth waiting for.
    pub fn poll(&mut self, now: Instant, note: impl FnOnce(&str)) -> anyhow::Result<Option<UdpSocket>> {
        if self.tried.is_some_and(|t| now.duration_since(t) < RETRY_EVERY) {
            return Ok(None);
        }
        match UdpSocket::bind(self.addr) {
            Ok(socket) => Ok(Some(socket)),
            Err(e) if worth_waiting_for(&e) => {
                self.tried = Some(now);
                if self.reported != Some(e.kind()) {
                    self.reported = Some(e.kind());
                    note(&waiting_line(self.addr, &e));
                }
                Ok(None)
            }
            Err(e) => Err(bind_error(self.what, self.addr, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_for_a_taken_port_with_one_line_and_binds_when_it_is_free() {
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let mut waiter = PortWaiter::new(addr, "cannot listen on");
        let mut lines = Vec::new();
        let t0 = Instant::now();
        assert!(waiter.poll(t0, |l| lines.push(l.to_owned())).unwrap().is_none());
        assert!(waiter.waited());
        drop(taken);
        assert!(waiter.poll(t0 + RETRY_EVERY / 2, |l| lines.push(l.to_owned())).unwrap().is_none(), "not yet");
        let bound = waiter.poll(t0 + RETRY_EVERY, |l| lines.push(l.to_owned())).unwrap();
        assert_eq!(bound.map(|s| s.local_addr().unwrap()), Some(addr));
        assert_eq!(lines, [format!("{addr} is in use; retrying every second")]);
    }

    #[test]
    fn a_port_in_use_says_what_to_do() {
        let e = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let line = format!("{:#}", bind_error("cannot listen on", "127.0.0.1:5006".parse().unwrap(), e));
        assert!(line.starts_with("cannot listen on 127.0.0.1:5006: "), "{line}");
        assert!(line.contains("--wait-for-port") && !line.contains('\n'), "{line}");
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!worth_waiting_for(&e));
    }
}
