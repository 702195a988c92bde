//! Art-Net ArtTimeCode from the network thread (issue 16): every frame sent as OSC goes to the
//! Art-Net targets too, as a 19-byte packet ([`osc_timecode_core::artnet`]), at the moment the
//! frame is **heard**.
//!
//! Why not with the OSC bundle: an OSC bundle leaves when its frame is processed and says in its
//! timetag when the frame is heard (one block plus the output latency later). ArtTimeCode has no
//! timestamp, so a console shows each label the moment it arrives: sent with the bundle, it would
//! lead the audio by a block plus the output latency. So each packet waits here, in its own queue,
//! until the instant the OSC timetag of the same frame names.
//!
//! Why a second queue, not a field of the OSC queue: a frame leaves the OSC queue at its due time
//! and is heard later, so it must wait somewhere after its bundle has gone; and only frames sent
//! as OSC may be sent as Art-Net (a frame still waiting at deactivation is sent on neither). The
//! queue keeps the order the frames were sent in (labels never go backwards on the wire), holds at
//! most [`super::QUEUE_CAPACITY`] packets and is allocated once. Its deadlines are at most one
//! host block plus the output latency ahead (under 12 s with the settings' limits), far below
//! what it holds; were it full anyway, the oldest packet would go at once, early, never dropped.
//!
//! Precision: the thread sleeps until [`SPIN`] before the next deadline and spins the rest on the
//! monotonic clock (`nanosleep` alone wakes tens of microseconds late, more on a busy machine; the
//! target is p99 ≤ 0.5 ms). The spin costs at most [`SPIN`] of one core per packet (200 µs at
//! 30 fps is 0.6 %), and only while Art-Net targets are set. A packet whose frame was already
//! heard when it was queued (the output latency set below the host's block, a stalled thread) goes
//! at once and, if more than [`LATE_AFTER`] late, is counted.
//!
//! Frame pairs: with `half_rate` at 50, 59.94 and 60 fps, two frames carry one label at the half
//! rate; the packet goes when the first of the two is heard (or the second, after a locate onto
//! it), once. A repeat of the previous packet while playing, with no jump or loop between, is not
//! sent again.
//!
//! The socket: Art-Net is IPv4. One socket for all Art-Net targets, bound to 127.0.0.1 when every
//! target is loopback, else to 0.0.0.0, with `SO_BROADCAST` set only when a target is a broadcast
//! address ([`osc_timecode_net::iface::artnet_broadcast`]: the limited broadcast, a subnet's of this
//! machine, or an address ending in .255 as written).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nice_plug::prelude::*;
use osc_timecode_core::artnet::{PACKET_LEN, encode_frame};
use osc_timecode_core::clock::FrameEvent;
use osc_timecode_net::iface;

use super::{QUEUE_CAPACITY, REBIND_EVERY, Stats, TroubleLog};

/// The thread sleeps until this long before an Art-Net deadline and spins the rest.
pub const SPIN: Duration = Duration::from_micros(200);

/// A packet that leaves more than this after its frame is heard is counted as late
/// ([`Stats::artnet_late`]).
pub const LATE_AFTER: Duration = Duration::from_millis(1);

/// One packet waiting for its frame to be heard. `Copy`. `[network-thread]`.
#[derive(Debug, Clone, Copy)]
struct Due {
    /// The datagram.
    bytes: [u8; PACKET_LEN],
    /// When its frame is heard: the instant of the frame's OSC timetag.
    at: Instant,
}

/// Art-Net's part of the network thread: the queue, the socket and the targets. `[network-thread]`
/// throughout.
pub(super) struct ArtNet {
    /// Where packets go, in the settings' order (slot `i` of [`Stats::artnet_targets`]).
    targets: Vec<SocketAddrV4>,
    /// Packets not yet heard, in the order their frames were sent. At most [`QUEUE_CAPACITY`],
    /// allocated once in [`ArtNet::new`].
    queue: VecDeque<Due>,
    /// The sending socket, opened on demand for the current targets.
    socket: Option<UdpSocket>,
    /// When opening the socket last failed (retried after [`REBIND_EVERY`]).
    failed_at: Option<Instant>,
    /// The frame last queued (or skipped as the second of a pair) and its packet: a repeat while
    /// playing is the second frame of a pair.
    last: Option<(FrameEvent, [u8; PACKET_LEN])>,
    /// Send trouble, logged at most once per [`super::LOG_EVERY`].
    send_trouble: TroubleLog,
}

impl ArtNet {
    /// No targets, nothing queued.
    pub(super) fn new() -> Self {
        Self {
            targets: Vec::new(),
            queue: VecDeque::with_capacity(QUEUE_CAPACITY),
            socket: None,
            failed_at: None,
            last: None,
            send_trouble: TroubleLog::default(),
        }
    }

    /// The targets are now `targets`: a new socket for them (bound and flagged for them), and
    /// their counters ([`super::TargetCounters::assign`]).
    pub(super) fn set_targets(&mut self, targets: impl IntoIterator<Item = SocketAddrV4>, stats: &Stats) {
        let targets: Vec<SocketAddrV4> = targets.into_iter().collect();
        if targets != self.targets {
            self.targets = targets;
            self.socket = None;
            self.failed_at = None;
            stats.artnet_targets.assign(self.targets.iter().map(|t| SocketAddr::V4(*t)));
        }
    }

    /// Queues frame `event`'s packet to leave at `heard`, the instant of its OSC timetag (a frame
    /// the formats cannot carry at its rate is counted, not sent; the second frame of a pair is
    /// skipped). Nothing without targets.
    pub(super) fn offer(&mut self, event: FrameEvent, heard: Instant, stream_id: u8, half_rate: bool, stats: &Stats) {
        if self.targets.is_empty() {
            self.last = None;
            return;
        }
        let Ok(packet) = encode_frame(event.frame, event.rate, stream_id, half_rate) else {
            stats.artnet_rate_refused.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let repeat = self.last.is_some_and(|(last, bytes)| {
            event.playing && last.playing && !event.jump && !event.looped && bytes == packet.bytes
        });
        self.last = Some((event, packet.bytes));
        if repeat {
            return;
        }
        if self.queue.len() >= QUEUE_CAPACITY
            && let Some(oldest) = self.queue.pop_front()
        {
            self.transmit(oldest, Instant::now(), stats);
        }
        self.queue.push_back(Due { bytes: packet.bytes, at: heard });
    }

    /// When the next packet is due, if one waits.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.queue.front().map(|d| d.at)
    }

    /// Sends every packet heard by `now`, in order.
    pub(super) fn send_due(&mut self, now: Instant, stats: &Stats) {
        while let Some(due) = self.queue.front().copied() {
            if due.at > now {
                break;
            }
            self.queue.pop_front();
            self.transmit(due, now, stats);
        }
    }

    /// Packets queued and never sent (the thread is stopping).
    pub(super) fn unsent(&self) -> usize {
        self.queue.len()
    }

    /// Sends one packet to every target, counting each datagram.
    fn transmit(&mut self, due: Due, now: Instant, stats: &Stats) {
        if now.saturating_duration_since(due.at) > LATE_AFTER {
            stats.artnet_late.fetch_add(1, Ordering::Relaxed);
        }
        for i in 0..self.targets.len() {
            let target = self.targets[i];
            let result = match self.socket(stats) {
                Some(socket) => socket.send_to(&due.bytes, target).map(drop),
                None => Err(std::io::Error::other("no socket")),
            };
            match result {
                Ok(()) => {
                    stats.artnet_sent.fetch_add(1, Ordering::Relaxed);
                    stats.artnet_targets.count(i, true);
                }
                Err(e) => {
                    stats.artnet_send_errors.fetch_add(1, Ordering::Relaxed);
                    stats.artnet_targets.count(i, false);
                    let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                        " (a broadcast address of a subnet whose interface was not up when the socket opened: \
                         it is allowed once the interface is up and the plugin is re-activated)"
                    } else {
                        ""
                    };
                    self.send_trouble.warn(|| format!("could not send Art-Net timecode to {target}: {e}{hint}"));
                }
            }
        }
    }

    /// The socket for the current targets, opened if need be (and a failed open retried after
    /// [`REBIND_EVERY`]).
    fn socket(&mut self, stats: &Stats) -> Option<&UdpSocket> {
        if self.socket.is_none() && self.failed_at.is_none_or(|t| t.elapsed() >= REBIND_EVERY) {
            match open_socket(&self.targets) {
                Ok(s) => {
                    self.socket = Some(s);
                    self.failed_at = None;
                }
                Err(e) => {
                    stats.bind_errors.fetch_add(1, Ordering::Relaxed);
                    self.failed_at = Some(Instant::now());
                    nice_warn!("could not open a socket for Art-Net timecode: {e}");
                }
            }
        }
        self.socket.as_ref()
    }
}

/// A non-blocking socket for `targets`: bound to loopback when all are loopback, else to every
/// interface; `SO_BROADCAST` when one is a broadcast address
/// ([`osc_timecode_net::iface::artnet_broadcast`], against the interfaces up now).
fn open_socket(targets: &[SocketAddrV4]) -> std::io::Result<UdpSocket> {
    let all_loopback = targets.iter().all(|t| t.ip().is_loopback());
    let bind = if all_loopback { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED };
    let socket = UdpSocket::bind((bind, 0))?;
    socket.set_nonblocking(true)?;
    let interfaces = iface::interfaces().unwrap_or_default();
    if targets.iter().any(|t| iface::artnet_broadcast(*t.ip(), &interfaces)) {
        socket.set_broadcast(true)?;
    }
    Ok(socket)
}

/// Spins until `at` (returns at once if it has passed): the last [`SPIN`] before a deadline.
pub(super) fn spin_until(at: Instant) {
    while Instant::now() < at {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_target_gets_so_broadcast_and_a_unicast_one_does_not() {
        for (target, broadcast) in [("255.255.255.255:6454", true), ("127.0.0.1:6454", false)] {
            let socket = open_socket(&[target.parse().unwrap()]).unwrap();
            assert_eq!(socket.broadcast().unwrap(), broadcast, "{target}");
        }
    }

    /// Loopback targets only: bound to 127.0.0.1; others (only bound to, never sent to here):
    /// every interface. `SO_BROADCAST` only with a broadcast address among them.
    #[test]
    fn the_socket_is_bound_and_flagged_for_its_targets() {
        let t = |text: &str| text.parse::<SocketAddrV4>().unwrap();
        let cases = [
            (vec![t("127.0.0.1:6454")], Ipv4Addr::LOCALHOST, false),
            (vec![t("127.0.0.1:6454"), t("127.255.255.255:6454")], Ipv4Addr::LOCALHOST, true),
            (vec![t("127.0.0.1:6454"), t("192.0.2.7:6454")], Ipv4Addr::UNSPECIFIED, false),
            (vec![t("192.0.2.255:6454")], Ipv4Addr::UNSPECIFIED, true),
        ];
        for (targets, bound, broadcast) in cases {
            let socket = open_socket(&targets).unwrap();
            assert_eq!(socket.local_addr().unwrap().ip(), bound, "{targets:?}");
            assert_eq!(socket.broadcast().unwrap(), broadcast, "{targets:?}");
        }
    }

    /// A broadcast address as written (127.255.255.255, lo's broadcast: the OS refuses it with
    /// EACCES without `SO_BROADCAST`) is sent to; each target counted in its slot.
    #[test]
    fn a_broadcast_target_is_sent_to() {
        let stats = Stats::default();
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(unicast) = rx.local_addr().unwrap() else { unreachable!("bound to 127.0.0.1") };
        let broadcast = SocketAddrV4::new(Ipv4Addr::new(127, 255, 255, 255), unicast.port());
        let mut artnet = ArtNet::new();
        artnet.set_targets([broadcast, unicast], &stats);
        let event = FrameEvent {
            frame: 1,
            rate: osc_timecode_core::FrameRate::FPS_25,
            offset: 0,
            playing: true,
            jump: true,
            looped: false,
            starts: true,
        };
        let now = Instant::now();
        artnet.offer(event, now, 0, false, &stats);
        assert_eq!(artnet.next_deadline(), Some(now));
        artnet.send_due(now, &stats);
        assert_eq!(artnet.unsent(), 0);
        let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((get(&stats.artnet_sent), get(&stats.artnet_send_errors)), (2, 0));
        assert_eq!(stats.artnet_targets.get(0, broadcast.into()), Some((1, 0)));
        assert_eq!(stats.artnet_targets.get(1, unicast.into()), Some((1, 0)));
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv(&mut buf).unwrap(), PACKET_LEN, "the unicast target got the packet");
    }

    /// Packets wait for their deadline, in order; without targets nothing is queued.
    #[test]
    fn packets_wait_for_their_deadline_in_order() {
        let stats = Stats::default();
        let mut artnet = ArtNet::new();
        let event = |frame| FrameEvent {
            frame,
            rate: osc_timecode_core::FrameRate::FPS_25,
            offset: 0,
            playing: true,
            jump: frame == 0,
            looped: false,
            starts: true,
        };
        let now = Instant::now();
        artnet.offer(event(0), now, 0, false, &stats);
        assert_eq!(artnet.unsent(), 0, "no targets: nothing queued");
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let SocketAddr::V4(to) = rx.local_addr().unwrap() else { unreachable!("bound to 127.0.0.1") };
        artnet.set_targets([to], &stats);
        let later = now + Duration::from_secs(3600);
        artnet.offer(event(1), later, 0, false, &stats);
        artnet.offer(event(2), now, 0, false, &stats);
        artnet.send_due(now, &stats);
        assert_eq!(artnet.unsent(), 2, "frame 2 waits behind frame 1: labels never go backwards");
        artnet.send_due(later, &stats);
        assert_eq!(artnet.unsent(), 0);
        let mut buf = [0u8; 64];
        for frame in [1, 2] {
            rx.recv(&mut buf).unwrap();
            assert_eq!(buf[14], frame, "Frames byte");
        }
    }
}
