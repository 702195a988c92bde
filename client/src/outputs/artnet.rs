//! `--artnet IP[:PORT]`: ArtTimeCode at the instant each frame starts on the chased timeline.
//!
//! One thread per target. Each packet's deadline is its frame's start on the latest
//! [`ChaseSnapshot`](osc_timecode_core::chase::ChaseSnapshot)
//! ([`ChaseSnapshot::start_of`](osc_timecode_core::chase::ChaseSnapshot::start_of)), waited with [`Timeline::sleep_until`]
//! (sleep, then spin for the last [`super::SPIN`]): arrivals never time a packet, so network
//! jitter does not reach the console. A break of the timeline (jump, loop, new master) wakes the
//! thread, which goes on from the new timeline's first frame that starts at or after the moment
//! it is heard ([`ChaseSnapshot::since`](osc_timecode_core::chase::ChaseSnapshot::since)): no frame the master did not play goes out.
//!
//! - Playing (locked or freewheeling): one packet per frame (per frame pair with
//!   `--half-rate`), labels from [`encode_frame`], the same bytes the plugin sends.
//! - Stopped: the parked frame at once, then again every [`KEEP_ALIVE`] (consoles hold the
//!   last time they heard).
//! - Lost or waiting: nothing, with one line when the master is lost.
//!
//! A packet more than [`LATE`] after its deadline (the thread was not scheduled) still goes but
//! is counted late; missed frames are skipped, never sent in a burst. Send errors are counted
//! and said once per run of failures. The socket is bound to 127.0.0.1 when the target is
//! loopback, else to 0.0.0.0; `SO_BROADCAST` only for a broadcast address as written
//! (255.255.255.255 or one ending in .255, as the plugin decides).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use osc_timecode_core::artnet::encode_frame;

use super::{Following, RateGate, Running, Say, TICK, Timeline, now_ns};

/// How often the parked frame is repeated while the master is stopped.
pub const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// A packet later than this after its frame's start is counted late.
pub const LATE: Duration = Duration::from_millis(1);

/// What a target's thread counted. `[output-thread]`, returned when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArtNetStats {
    /// Packets sent (keep-alive repeats included).
    pub sent: u64,
    /// Packets sent later than [`LATE`] after their deadline.
    pub late: u64,
    /// Sends that failed.
    pub errors: u64,
}

/// A running Art-Net target.
struct ArtNetOut {
    /// "Art-Net to IP:PORT".
    name: String,
    /// The thread, returning its counts.
    thread: Option<JoinHandle<ArtNetStats>>,
    /// Where the final line goes.
    say: Say,
}

impl Running for ArtNetOut {
    fn name(&self) -> &str {
        &self.name
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        let stats = thread.join().map_err(|_| anyhow::anyhow!("the Art-Net thread ended abnormally"))?;
        if stats.late > 0 || stats.errors > 0 {
            (self.say)(format!(
                "{}: {} packets sent, {} late (more than {} ms after their frame started), {} send errors",
                self.name,
                stats.sent,
                stats.late,
                LATE.as_millis(),
                stats.errors
            ));
        }
        Ok(())
    }
}

/// Starts sending ArtTimeCode to `target`. Errors: the socket cannot be made.
pub fn start(
    target: SocketAddrV4,
    stream_id: u8,
    half_rate: bool,
    timeline: &Arc<Timeline>,
    say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    let name = format!("Art-Net to {target}");
    let local = if target.ip().is_loopback() { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED };
    let socket = UdpSocket::bind((local, 0)).with_context(|| format!("{name}: could not open a UDP socket"))?;
    let interfaces = osc_timecode_net::iface::interfaces().unwrap_or_default();
    if osc_timecode_net::iface::artnet_broadcast(*target.ip(), &interfaces) {
        socket.set_broadcast(true).with_context(|| format!("{name}: could not allow broadcast"))?;
    }
    let sender = Sender {
        socket,
        target,
        stream_id,
        half_rate,
        timeline: Arc::clone(timeline),
        gate: RateGate::new(name.clone(), half_rate, Arc::clone(say)),
        say: Arc::clone(say),
        name: name.clone(),
        stats: ArtNetStats::default(),
        failing: false,
    };
    let thread = std::thread::Builder::new()
        .name("artnet".into())
        .spawn(move || sender.run())
        .with_context(|| format!("{name}: could not start its thread"))?;
    Ok(Box::new(ArtNetOut { name, thread: Some(thread), say: Arc::clone(say) }))
}

/// One target's thread. `[output-thread]`.
struct Sender {
    socket: UdpSocket,
    target: SocketAddrV4,
    stream_id: u8,
    half_rate: bool,
    timeline: Arc<Timeline>,
    gate: RateGate,
    say: Say,
    name: String,
    stats: ArtNetStats,
    /// Sends are failing (said once until one succeeds).
    failing: bool,
}

impl Sender {
    fn run(mut self) -> ArtNetStats {
        // The last frame sent on a generation: the next one follows it.
        let mut last: Option<(u64, i64)> = None;
        let mut was = Following::Nothing;
        let mut ever_played = false;
        while !self.timeline.finished() {
            let snap = self.timeline.latest();
            let now = now_ns();
            let following = Following::of(&snap);
            if following == Following::Nothing && was != Following::Nothing && ever_played {
                (self.say)(format!("{}: the master is lost; sending stopped", self.name));
            }
            was = following;
            match following {
                Following::Nothing => {
                    self.timeline.sleep_until(now + nanos(TICK), &snap);
                }
                Following::Parked(frame) => {
                    let Some(carriage) = snap.rate.and_then(|r| self.gate.carriage(r)) else {
                        self.timeline.sleep_until(now + nanos(TICK), &snap);
                        continue;
                    };
                    let frame = carriage.carried_frame(frame) * carriage.step();
                    if last != Some((snap.generation, frame)) {
                        self.send(frame, &snap, now, now);
                        last = Some((snap.generation, frame));
                    }
                    // Asleep until the keep-alive is due or the timeline changes.
                    if self.timeline.sleep_until(now + nanos(KEEP_ALIVE), &snap) {
                        last = None;
                    }
                }
                Following::Playing => {
                    ever_played = true;
                    let Some(carriage) = snap.rate.and_then(|r| self.gate.carriage(r)) else {
                        self.timeline.sleep_until(now + nanos(TICK), &snap);
                        continue;
                    };
                    let step = carriage.step();
                    let after = match last {
                        Some((generation, frame)) if generation == snap.generation => Some(frame),
                        _ => None,
                    };
                    // The next frame (pair) to send: after the last one sent on this timeline,
                    // never one starting before now or before the timeline is heard.
                    let from = now.max(snap.since);
                    let Some(heard) = snap.frame_at(from) else {
                        self.timeline.sleep_until(now + nanos(TICK), &snap);
                        continue;
                    };
                    let mut next = carriage.carried_frame(heard) * step;
                    while snap.start_of(next).is_some_and(|s| s < from) {
                        next += step;
                    }
                    if let Some(a) = after
                        && next <= a
                    {
                        next = a + step;
                    }
                    let Some(deadline) = snap.start_of(next) else {
                        self.timeline.sleep_until(now + nanos(TICK), &snap);
                        continue;
                    };
                    if deadline - now > nanos(TICK) {
                        // Far ahead (a jump heard later): look again meanwhile.
                        self.timeline.sleep_until(now + nanos(TICK), &snap);
                        continue;
                    }
                    if !self.timeline.sleep_until(deadline, &snap) {
                        // The timeline changed (or the end): recompute.
                        continue;
                    }
                    // At the deadline: the timeline may have moved on while the thread slept.
                    let latest = self.timeline.latest();
                    if latest.generation != snap.generation || !latest.playing() {
                        continue;
                    }
                    self.send(next, &snap, deadline, now_ns());
                    last = Some((snap.generation, next));
                }
            }
        }
        self.stats
    }

    /// Sends `frame`'s packet, due at `deadline`, sent at `sent`.
    fn send(&mut self, frame: i64, snap: &osc_timecode_core::chase::ChaseSnapshot, deadline: i128, sent: i128) {
        let Some(rate) = snap.rate else { return };
        let Ok(packet) = encode_frame(frame, rate, self.stream_id, self.half_rate) else { return };
        match self.socket.send_to(&packet.bytes, self.target) {
            Ok(_) => {
                self.stats.sent += 1;
                if sent - deadline > nanos(LATE) {
                    self.stats.late += 1;
                }
                if self.failing {
                    self.failing = false;
                    (self.say)(format!("{}: sending again", self.name));
                }
            }
            Err(e) => {
                self.stats.errors += 1;
                if !self.failing {
                    self.failing = true;
                    (self.say)(format!("{}: could not send ({e}); trying every frame", self.name));
                }
            }
        }
    }
}

/// `d` in nanoseconds.
fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}
