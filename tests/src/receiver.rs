//! A loopback UDP receiver that decodes what the plugin sends.
//!
//! Network safety: it binds only `127.0.0.1:0` and the tests give its address to the plugin as
//! the only target, so nothing ever leaves the machine.
//!
//! A background thread drains the socket as datagrams arrive (so the kernel buffer never
//! overflows while the plugin sends a burst) and timestamps each one; the test side then takes
//! them with [`Receiver::collect`] (until a count) or [`Receiver::collect_until_quiet`].

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::protocol::{TimecodeMessage, decode_timecode_packet};
use rosc::OscTime;

/// One datagram as received.
#[derive(Debug, Clone)]
pub struct Packet {
    /// When it arrived (monotonic).
    pub at: Instant,
    /// When it arrived (wall clock).
    pub wall: SystemTime,
    /// Where it came from: the sender's address and port (one stream per sending socket).
    pub from: SocketAddr,
    /// The raw bytes.
    pub bytes: Vec<u8>,
    /// The decoded bundle: timetag (if it was a bundle) and message, or why it did not decode.
    pub decoded: Result<(Option<OscTime>, TimecodeMessage), String>,
}

impl Packet {
    /// The message, panicking with the bytes if the packet was not valid `/sync/timecode`.
    pub fn msg(&self) -> TimecodeMessage {
        match &self.decoded {
            Ok((_, m)) => *m,
            Err(e) => panic!("the plugin sent a packet that is not valid /sync/timecode ({e}): {:02x?}", self.bytes),
        }
    }

    /// The bundle's timetag, panicking if the packet was a bare message.
    pub fn timetag(&self) -> OscTime {
        match &self.decoded {
            Ok((Some(t), _)) => *t,
            Ok((None, m)) => panic!("expected a bundle with a timetag, got a bare message {m:?}"),
            Err(e) => panic!("not valid /sync/timecode ({e}): {:02x?}", self.bytes),
        }
    }
}

/// A loopback UDP receiver with a draining thread.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    rx: mpsc::Receiver<Packet>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and starts draining.
    pub fn bind() -> Self {
        Self::try_bind().unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// [`Receiver::bind`], with an error instead of a panic (for the bench binary).
    pub fn try_bind() -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let socket = UdpSocket::bind("127.0.0.1:0").context("bind a loopback UDP socket")?;
        let addr = socket.local_addr().context("local address")?;
        anyhow::ensure!(addr.ip().is_loopback(), "the receiver must be on loopback, got {addr}");
        socket.set_read_timeout(Some(Duration::from_millis(20))).context("set read timeout")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("udp-rx-{}", addr.port()))
                .spawn(move || drain(socket, tx, stop))
                .context("spawn receiver thread")?
        };
        Ok(Self { addr, rx, stop, thread: Some(thread) })
    }

    /// The address to give the plugin as its target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Packets until `count` have arrived or `timeout` has passed, whichever is first.
    pub fn collect(&self, count: usize, timeout: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { break };
            match self.rx.recv_timeout(left) {
                Ok(p) => out.push(p),
                Err(_) => break,
            }
        }
        out
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

    /// Everything that arrives during the next `window`.
    pub fn collect_for(&self, window: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Ok(p) = self.rx.recv_timeout(left) {
                out.push(p);
            }
        }
        out
    }

    /// Whatever has already arrived, without waiting.
    pub fn drain_now(&self) -> Vec<Packet> {
        self.rx.try_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn drain(socket: UdpSocket, tx: mpsc::Sender<Packet>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Acquire) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let (at, wall) = (Instant::now(), SystemTime::now());
                assert!(from.ip().is_loopback(), "datagram from a non-loopback address {from}");
                let bytes = buf[..n].to_vec();
                let decoded = decode_timecode_packet(&bytes).map_err(|e| e.to_string());
                if tx.send(Packet { at, wall, from, bytes, decoded }).is_err() {
                    return;
                }
            }
            // Timeouts let the thread notice `stop`; an interrupted call (a signal during a long
            // run) is simply retried.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("receiver socket error: {e}"),
        }
    }
}

/// The messages of `packets`, panicking on any packet that is not valid `/sync/timecode`.
pub fn messages(packets: &[Packet]) -> Vec<TimecodeMessage> {
    packets.iter().map(Packet::msg).collect()
}
