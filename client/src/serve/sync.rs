//! `serve` answers `/sync/ping` (issue 18): receivers measure serve's clock against theirs
//! ([`osc_timecode_core::clocksync`]). One thread per sending socket (IPv4, IPv6) reads that
//! socket: a receiver pings the address its timecode comes from, and the pong leaves from the
//! same socket, so a receiver needs no configuration.
//!
//! - T2 (ping received) and T3 (pong sent) are on the timescale of serve's timetags
//!   ([`Transport::timescale`](super::transport::Transport::timescale)): while rolling, the anchor's wall-clock reading plus the
//!   monotonic time since; while parked, the wall clock.
//! - EPOCH goes up when that timescale steps against the monotonic clock by more than
//!   [`STEP_NS`] between two pongs (serve re-anchored on a wall clock that was set meanwhile):
//!   receivers then start their estimate again.
//! - Only senders serve may talk to are answered: an address among its timecode targets, or one
//!   its `--allow` list admits. At most [`PONGS_PER_SOURCE`](osc_timecode_core::clocksync::PONGS_PER_SOURCE) pongs a second to one source
//!   and [`PONGS_IN_ALL`](osc_timecode_core::clocksync::PONGS_IN_ALL) in all; the rest are counted (`sync_refused`), never queued. A pong
//!   is exactly as long as its ping, so serve can never be used to amplify.
//! - Anything else arriving on a sending socket (not a ping) is ignored.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use osc_timecode_core::clocksync::{Ping, Pong, PongLimits};
use osc_timecode_core::cue::AllowList;
use osc_timecode_core::protocol::timetag_from_system_time;

use super::Shared;
use super::transport::Now;

/// How long a responder waits on its socket before it looks whether serve ends.
const WAIT: Duration = Duration::from_millis(50);
/// A change of the timescale against the monotonic clock beyond this, ns, is a step (a new
/// epoch). Below it: rounding and the reading of two clocks.
pub const STEP_NS: i128 = 1_000_000;

/// What the responders count, for `/status`. `[thread-safe]`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Pings answered.
    pub answered: AtomicU64,
    /// Pings refused: not an allowed sender, or over a rate limit.
    pub refused: AtomicU64,
    /// The clock epoch sent in pongs.
    pub epoch: AtomicI32,
    /// The last timescale − monotonic difference seen, ns (as bits), for step detection;
    /// `i64::MIN` before the first pong.
    last_mapping: AtomicU64,
}

impl SyncStats {
    /// Fresh counters.
    pub fn new() -> Self {
        Self { last_mapping: AtomicU64::new(i64::MIN as u64), ..Self::default() }
    }
}

/// Who may be answered: serve's targets' addresses and its `--allow` list.
#[derive(Debug, Clone)]
pub struct Answerable {
    /// The timecode targets' IP addresses.
    targets: Vec<IpAddr>,
    /// The cue input's allow-list.
    allow: AllowList,
}

impl Answerable {
    /// Answers the targets' addresses and what `allow` admits.
    pub fn new(targets: &[SocketAddr], allow: AllowList) -> Self {
        Self { targets: targets.iter().map(SocketAddr::ip).collect(), allow }
    }

    fn admits(&self, from: SocketAddr) -> bool {
        self.targets.contains(&from.ip()) || self.allow.allows(from.ip())
    }
}

/// The running responders; they end when the transport shuts down.
#[derive(Debug)]
pub struct Responders {
    /// One per sending socket.
    threads: Vec<JoinHandle<()>>,
}

impl Responders {
    /// Starts one responder per socket in `sockets` (clones of the sending sockets).
    pub fn start(sockets: Vec<UdpSocket>, who: &Answerable, shared: &Arc<Shared>) -> anyhow::Result<Self> {
        let mut threads = Vec::new();
        for socket in sockets {
            socket.set_read_timeout(Some(WAIT)).context("could not set the sync responder's timeout")?;
            let mut responder =
                Responder { socket, who: who.clone(), shared: Arc::clone(shared), limits: PongLimits::default() };
            threads.push(
                std::thread::Builder::new()
                    .name("osc-timecode-serve-sync".into())
                    .spawn(move || responder.run())
                    .context("could not start the sync responder")?,
            );
        }
        Ok(Self { threads })
    }

    /// Waits for the responders (after the transport's shutdown).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// One socket's responder. `[sync-thread]`.
struct Responder {
    socket: UdpSocket,
    who: Answerable,
    shared: Arc<Shared>,
    limits: PongLimits,
}

impl Responder {
    fn run(&mut self) {
        let mut buf = [0u8; 128];
        loop {
            if self.shared.transport.lock().unwrap_or_else(PoisonError::into_inner).shutdown {
                return;
            }
            let (n, from) = match self.socket.recv_from(&mut buf) {
                Ok(got) => got,
                // Timeouts, and ICMP errors of earlier sends surfacing here: not ours to report.
                Err(_) => continue,
            };
            let received = Now::read();
            let Ok(ping) = Ping::decode(&buf[..n]) else { continue };
            let stats = &self.shared.sync;
            if !self.who.admits(from) || !self.limits.allow(from.ip(), received.instant) {
                stats.refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let t2 = self.timescale(received);
            let sent = Now::read();
            let t3 = self.timescale(sent);
            let epoch = self.epoch(t3, sent.instant);
            let pong = Pong::answer(ping, timetag_from_system_time(t2), timetag_from_system_time(t3), epoch);
            if self.socket.send_to(&pong.encode(), from).is_ok() {
                stats.answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// `now` on the timescale of serve's timetags.
    fn timescale(&self, now: Now) -> std::time::SystemTime {
        self.shared.transport.lock().unwrap_or_else(PoisonError::into_inner).timescale(now)
    }

    /// The epoch for a pong whose T3 is `t3` at monotonic `instant`: bumped when the timescale
    /// moved against the monotonic clock by more than [`STEP_NS`] since the last pong.
    fn epoch(&self, t3: std::time::SystemTime, instant: Instant) -> i32 {
        let stats = &self.shared.sync;
        let wall = osc_timecode_core::chase::unix_nanos(t3);
        let mono = i128::try_from(instant.duration_since(self.shared.started).as_nanos()).unwrap_or(i128::MAX);
        let mapping = i64::try_from(wall - mono).unwrap_or(i64::MAX);
        let last = stats.last_mapping.swap(mapping as u64, Ordering::Relaxed) as i64;
        if last != i64::MIN && (i128::from(mapping) - i128::from(last)).abs() > STEP_NS {
            stats.epoch.fetch_add(1, Ordering::Relaxed);
        }
        stats.epoch.load(Ordering::Relaxed)
    }
}
