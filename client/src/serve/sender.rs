//! The sender thread: turns the transport into `/sync/timecode` bundles, each sent at its
//! deadline to every target.
//!
//! It sleeps on the transport's condition variable until the next deadline
//! (`Condvar::wait_timeout`), so a transport command wakes it at once, and otherwise wakes when a
//! frame is due. No final spin: on Linux the wake-up comes some tens of microseconds late (timer
//! slack), which receivers never see, because the timetag carries the frame's exact time from the
//! absolute schedule, not the moment of sending; a spin would burn a core for precision nobody
//! can observe over a network. The lock is held only to copy the transport and advance the
//! schedule, never while encoding or sending, so the receiver never waits on a send and the
//! sender never waits on a datagram.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use osc_timecode_core::protocol::{encode_timecode_bundle, timetag_from_system_time};

use osc_timecode_core::chase::{Chase, ChaseConfig, unix_nanos};

use super::Shared;
use super::transport::{Now, Schedule, Step};
use crate::net;
use crate::outputs::Timeline;

/// The longest a send waits for room in a full socket buffer before the datagram is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1);

/// At most one warning about failed sends per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Counters the sender thread keeps and `/status` reports. `[thread-safe]`: written by the
/// sender thread, read by the main thread; relaxed atomics, they are statistics.
#[derive(Debug, Default)]
pub struct SenderStats {
    /// Datagrams sent (one per message per target).
    pub sent: AtomicU64,
    /// Datagrams the OS refused.
    pub send_errors: AtomicU64,
    /// Frames skipped because the sender fell behind (a stall or a suspended machine).
    pub skipped: AtomicU64,
}

/// The sending sockets: one per address family in use, bound to loopback when every target of
/// that family is loopback (the default), else to `--interface`'s IPv4 address or the
/// unspecified address ([`net::sending_bind`]). A send waits at most
/// [`SEND_TIMEOUT`] for room in a full socket buffer, then the datagram is dropped and counted
/// rather than delaying the next frame. Reads (the sync responder's pings, [`super::sync`])
/// block: the sockets are not non-blocking, which would make the responder spin.
#[derive(Debug)]
pub struct Targets {
    /// Where every message goes, in order.
    targets: Vec<SocketAddr>,
    /// The IPv4 socket, if any target is IPv4.
    v4: Option<UdpSocket>,
    /// The IPv6 socket, if any target is IPv6.
    v6: Option<UdpSocket>,
}

impl Targets {
    /// Opens the sockets for `targets` (errors name the address that could not be bound), on
    /// `options`' interface with its TTL for multicast groups ([`crate::net`]). A multicast
    /// target without an interface is refused here, before anything is sent.
    pub fn open(targets: Vec<SocketAddr>, options: &net::SendOptions) -> anyhow::Result<Self> {
        net::check_targets(&targets, options)?;
        let open = |v6: bool| -> anyhow::Result<Option<UdpSocket>> {
            let family: Vec<SocketAddr> = targets.iter().copied().filter(|t| t.is_ipv6() == v6).collect();
            if family.is_empty() {
                return Ok(None);
            }
            let bind = net::sending_bind(&family, v6, options.interface.as_ref());
            let socket = net::sending_socket(bind, &family, options)
                .and_then(|s| s.set_write_timeout(Some(SEND_TIMEOUT)).map(|()| s))
                .with_context(|| format!("could not open a UDP socket on {bind} to send timecode"))?;
            Ok(Some(socket))
        };
        Ok(Self { v4: open(false)?, v6: open(true)?, targets })
    }

    /// Clones of the sockets, for the sync responder, which reads them.
    pub fn clones(&self) -> std::io::Result<Vec<UdpSocket>> {
        [&self.v4, &self.v6].into_iter().flatten().map(UdpSocket::try_clone).collect()
    }
}

/// The running sender thread. `[main-thread]` owns it; [`SenderThread::stop`], or dropping it,
/// stops and joins the thread. Unlike the plugin's threads, which poll a stop flag, this one
/// sleeps on the transport's condition variable: stopping sets the transport's `shutdown` and
/// wakes it, so it ends at once.
#[derive(Debug)]
pub struct SenderThread {
    /// The transport the thread waits on. `[thread-safe]`.
    shared: Arc<Shared>,
    /// Joined on stop; `None` once joined.
    handle: Option<JoinHandle<()>>,
}

impl SenderThread {
    /// Spawns the sender thread, sending to `targets` (and every `keepalive` while stopped).
    /// With `follow`, every message sent is also chased there, for the outputs (LTC, MTC,
    /// Art-Net) of serve's own timecode.
    pub fn spawn(
        shared: Arc<Shared>,
        targets: Targets,
        keepalive: Option<Duration>,
        follow: Option<Arc<Timeline>>,
    ) -> anyhow::Result<Self> {
        let state = Sender {
            shared: Arc::clone(&shared),
            targets,
            schedule: Schedule::new(keepalive),
            buf: Vec::new(),
            warned: None,
            // Locked from the first frame: serve's own frames need no agreement, and lose none.
            follow: follow
                .map(|timeline| (Chase::new(ChaseConfig { lock_frames: 1, ..ChaseConfig::default() }), timeline)),
        };
        let handle = std::thread::Builder::new()
            .name("osc-timecode-serve-sender".to_owned())
            .spawn(move || state.run())
            .context("could not start the sender thread")?;
        Ok(Self { shared, handle: Some(handle) })
    }

    /// Stops the thread and waits for it; an error if it panicked.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.join()
    }

    fn join(&mut self) -> anyhow::Result<()> {
        self.shared.transport.lock().unwrap_or_else(PoisonError::into_inner).shutdown = true;
        self.shared.changed.notify_all();
        match self.handle.take().map(JoinHandle::join) {
            Some(Err(_)) => anyhow::bail!("the timecode sender thread failed"),
            _ => Ok(()),
        }
    }
}

impl Drop for SenderThread {
    fn drop(&mut self) {
        // A panic was already reported on standard error by the thread itself.
        let _ = self.join();
    }
}

/// The thread's state. `[sender-thread]` throughout.
struct Sender {
    /// The transport and the counters, shared with the main thread.
    shared: Arc<Shared>,
    /// Where to send, and the sockets.
    targets: Targets,
    /// Which message is next and when.
    schedule: Schedule,
    /// Reused encode buffer (one bundle, about 120 bytes).
    buf: Vec<u8>,
    /// When a send failure was last reported on standard error.
    warned: Option<Instant>,
    /// The outputs' timeline, and the chase of the messages sent that feeds it: every message
    /// is "heard" at its timetag, exactly.
    follow: Option<(Chase, Arc<Timeline>)>,
}

impl Sender {
    fn run(mut self) {
        let shared = Arc::clone(&self.shared);
        let mut transport = shared.transport.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if transport.shutdown {
                return;
            }
            match self.schedule.step(&transport, Now::read()) {
                Step::Send(msg, timetag) => {
                    drop(transport);
                    self.shared.stats.skipped.store(self.schedule.skipped(), Ordering::Relaxed);
                    encode_timecode_bundle(&msg, timetag_from_system_time(timetag), &mut self.buf);
                    self.send();
                    if let Some((chase, timeline)) = &mut self.follow {
                        // On the outputs' clock (the wall clock at the start plus the
                        // monotonic time since): the same unless the wall clock was set since.
                        let heard = unix_nanos(timetag) - crate::clock::wall_minus_local();
                        chase.on_packet(&msg, Some(heard), heard);
                        timeline.publish(chase.snapshot());
                    }
                    transport = shared.transport.lock().unwrap_or_else(PoisonError::into_inner);
                }
                Step::Wait(Some(until)) => {
                    let wait = until.saturating_duration_since(Instant::now());
                    transport = shared.changed.wait_timeout(transport, wait).unwrap_or_else(PoisonError::into_inner).0;
                }
                Step::Wait(None) => {
                    transport = shared.changed.wait(transport).unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Sends the encoded bundle to every target.
    fn send(&mut self) {
        for i in 0..self.targets.targets.len() {
            let target = self.targets.targets[i];
            let socket = if target.is_ipv6() { self.targets.v6.as_ref() } else { self.targets.v4.as_ref() };
            let result = match socket {
                Some(socket) => socket.send_to(&self.buf, target).map(drop),
                None => Err(std::io::Error::other("no socket for its address family")),
            };
            match result {
                Ok(()) => {
                    self.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    self.shared.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    let now = Instant::now();
                    if self.warned.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
                        self.warned = Some(now);
                        crate::note(&format!("could not send timecode to {target}: {e} (reported at most every 10 s)"));
                    }
                }
            }
        }
    }
}
