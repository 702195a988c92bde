//! The bench's loopback receiver: [`crate::receiver::Receiver`]'s behaviour (a draining thread
//! that timestamps and decodes every datagram into a [`Packet`]), except that an interrupted
//! system call is retried rather than fatal. A run of many minutes at real-time priority met
//! one `EINTR` on `recv_from`, which ends the harness's receiver thread (it treats any other
//! error as a test failure) and with it a whole measurement.
//!
//! Network safety: binds `127.0.0.1:0` only and refuses datagrams from anywhere but loopback.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use osc_timecode_core::protocol::decode_timecode_packet;

use crate::receiver::Packet;

/// A loopback UDP receiver with a draining thread.
#[derive(Debug)]
pub struct Inbox {
    /// The bound address.
    addr: SocketAddr,
    /// Packets from the draining thread.
    rx: mpsc::Receiver<Packet>,
    /// Ends the thread.
    stop: Arc<AtomicBool>,
    /// The draining thread.
    thread: Option<JoinHandle<()>>,
}

impl Inbox {
    /// Binds `127.0.0.1:0` and starts draining.
    pub fn bind() -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("could not bind a loopback receiver")?;
        let addr = socket.local_addr().context("receiver address")?;
        socket.set_read_timeout(Some(Duration::from_millis(20))).context("receiver timeout")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("bench-rx-{}", addr.port()))
                .spawn(move || drain(&socket, &tx, &stop))
                .context("could not spawn the receiver thread")?
        };
        Ok(Self { addr, rx, stop, thread: Some(thread) })
    }

    /// The address to send to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Packets until none has arrived for `quiet`, or `max` has passed.
    pub fn collect_until_quiet(&self, quiet: Duration, max: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + max;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(quiet.min(left)) {
                Ok(p) => out.push(p),
                Err(_) => break,
            }
        }
        out
    }

    /// Whatever has already arrived, without waiting.
    pub fn drain_now(&self) -> Vec<Packet> {
        self.rx.try_iter().collect()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn drain(socket: &UdpSocket, tx: &mpsc::Sender<Packet>, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Acquire) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let (at, wall) = (Instant::now(), SystemTime::now());
                if !from.ip().is_loopback() {
                    continue;
                }
                let bytes = buf[..n].to_vec();
                let decoded = decode_timecode_packet(&bytes).map_err(|e| e.to_string());
                if tx.send(Packet { at, wall, from, bytes, decoded }).is_err() {
                    return;
                }
            }
            // Timeouts let the thread notice `stop`; an interrupted call is simply retried.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            // ICMP "port unreachable" from an earlier send on this socket's port: not ours to
            // mind; anything else ends the thread (the measurement then reports missing packets).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receives_and_decodes_loopback_datagrams() {
        let inbox = Inbox::bind().expect("bind");
        assert!(inbox.addr().ip().is_loopback());
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a sender");
        socket.send_to(b"not osc", inbox.addr()).expect("send");
        let got = inbox.collect_until_quiet(Duration::from_millis(200), Duration::from_secs(5));
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].bytes, b"not osc");
        assert!(got[0].decoded.is_err());
    }
}
