//! The network thread: takes frames from the audio thread's ring and sends each one as an OSC
//! bundle at the wall-clock moment its first sample is processed.
//!
//! Why a thread of its own, polling: the audio thread must not make syscalls or wake anyone, so
//! it only pushes a `Copy` [`FrameMessage`] into an `rtrb` ring; this thread polls the ring,
//! keeps frames in arrival order, and sends each at its due time, `block start + offset / sample
//! rate`. Emission is thus not quantised to the host's block size.
//!
//! Wake-up times: every [`FAST_POLL`] (4000 wake-ups a second) while the host processes blocks
//! (the audio thread's block counter in [`Readout`] moved within the last [`HOST_IDLE_AFTER`]) or
//! frames flow, so a frame on a block's first sample (the first frame after a start among them,
//! the one receivers re-lock on; it waited for a 2 ms idle poll before issue 14) leaves at most
//! one fast poll after its due time. Sooner where the block timing allows: the audio thread
//! stores when each block started and how long it lasts, after queueing its frames
//! ([`Readout::next_block`]), and the thread also wakes [`BLOCK_SETTLE`] after the next block is
//! expected and then every [`LATE_POLL`] for [`LATE_WINDOW`] while it is late. Never later than
//! the fast poll: a host that processes in bursts brings blocks early. When the host processes
//! nothing for [`HOST_IDLE_AFTER`] (deactivated in all but name, or a host that suspends idle
//! plugins), [`IDLE_POLL`] (500 a second). Each wake-up is a few atomic loads and one
//! `nanosleep`.
//!
//! Bounded: at most [`QUEUE_CAPACITY`] frames wait on this thread (`pending`). When that many
//! wait (an offline "realtime" bounce produces frames far faster than they are paced out), it
//! stops taking frames from the ring, the ring fills, and the audio thread drops and counts
//! each further frame (`queue_full`): memory stays flat through a bounce of any length. The
//! frames still waiting here or in the ring when the thread stops are counted
//! (`pending_at_stop`), so sent + `queue_full` + `pending_at_stop` = the frames the audio thread
//! produced. The bundle's timetag says when the frame is heard:
//! due time plus the block's duration (a host processes each block about one block before the
//! audio device plays it) plus the user's output latency for the device and converters (neither
//! CLAP nor VST3 reports that to a plugin).
//!
//! Socket trouble (bind failure, unreachable target) is counted in [`Stats`], logged at most
//! once per `LOG_EVERY`, retried, and never reaches the host. A target the OS refuses does not
//! hold up the others: every frame is offered to every target. When the thread stops
//! (deactivation) it logs what it sent and what was refused during the activation ([`Totals`]).
//!
//! It also logs, once per change, when the project frame rate a VST3 host reports disagrees with
//! the Frame Rate parameter ([`RateAgreement`]): the audio thread only stores what it saw.
//!
//! Every frame sent as OSC also goes to the Art-Net targets as ArtTimeCode, at the instant its
//! bundle's timetag names (when the frame is heard), from a queue of its own: [`artnet`].
//!
//! Receivers that ping the sending sockets (`/sync/ping`, issue 18) are answered from them at
//! every wake-up, on the timetags' timescale: [`sync`]. While pings come, the thread wakes every
//! [`sync::PING_POLL`] at least.
//!
//! Targets may be multicast groups (issue 18). Their interface and TTL are the machine's
//! (`[plugin] interface` and `ttl` of the machine config file, [`Machine`]), read when the thread
//! starts (activation): the sockets set `IP_MULTICAST_IF` to the interface (IPv4 by its address,
//! IPv6 by index) and the TTL, as `serve`'s do ([`osc_timecode_net::iface`]). A multicast target
//! without an interface (none configured, or one this machine does not have) is refused: every
//! frame counted as not sent on its counters, one warning per target, the other targets sent to.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use nice_plug::prelude::*;
use osc_timecode_core::clock::FrameEvent;
use osc_timecode_core::protocol::{TimecodeMessage, encode_timecode_bundle, timetag_from_system_time};
use osc_timecode_core::rate::RateAgreement;
use osc_timecode_net::iface::{self, SendOptions, Unsendable};

use crate::params::TimecodeParams;
use crate::readout::Readout;
use crate::settings::Settings;
use crate::settings::machine::{self, Machine};
use crate::settings::outputs::OutputNotice;
use crate::settings::values::Target;
use crate::thread::{Priority, StoppableThread};
use crate::wallclock::WallClock;

pub mod artnet;
pub mod sync;

/// Frames the audio → network ring holds, and frames waiting on the network thread at most
/// (each). At 60 fps that is over a minute of frames: the ring only fills if this thread is
/// stalled or an offline "realtime" bounce outruns the pacing, and then the audio thread drops
/// and counts.
pub const QUEUE_CAPACITY: usize = 4096;
/// Poll interval while the host processes blocks or frames flow: bounds how late a frame at a
/// block's first sample (the first after a start among them) can be sent.
pub const FAST_POLL: Duration = Duration::from_micros(250);
/// How long after a block's expected start the thread looks for its frames: the audio thread's
/// `process()` queues them within microseconds of reading the block's start.
pub const BLOCK_SETTLE: Duration = Duration::from_micros(20);
/// Poll interval while an expected block has not come yet (for [`LATE_WINDOW`]).
pub const LATE_POLL: Duration = Duration::from_micros(100);
/// How long after a block's expected start the thread keeps looking for it every
/// [`LATE_POLL`] (host jitter of a few hundred µs).
pub const LATE_WINDOW: Duration = Duration::from_millis(1);
/// Poll interval when the host has processed no block and queued no frame for
/// [`HOST_IDLE_AFTER`].
pub const IDLE_POLL: Duration = Duration::from_millis(2);
/// How long after the latest block or frame the thread keeps polling at [`FAST_POLL`]: longer
/// than any host's block (8192 samples at 8 kHz is about 1 s).
pub const HOST_IDLE_AFTER: Duration = Duration::from_secs(2);
/// How often the thread re-reads the persisted settings (targets, keep-alive, latency).
pub const SETTINGS_POLL: Duration = Duration::from_millis(100);
/// How often a failed socket bind is retried.
pub const REBIND_EVERY: Duration = Duration::from_secs(1);
/// At most one log line per kind of trouble this often.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// One frame from the audio thread. `Copy`, no heap.
#[derive(Debug, Clone, Copy)]
pub struct FrameMessage {
    /// The frame and its flags.
    pub event: FrameEvent,
    /// When the audio thread started on the block this frame belongs to.
    pub block_start: Instant,
    /// Hz, to turn the event's sample offset into time.
    pub sample_rate: u32,
    /// Samples in the block: the host plays a block about one block after processing it.
    pub block_len: u32,
    /// Offline render with the "realtime" policy: send one frame period after the previous
    /// frame, not at the (meaningless) processing time.
    pub paced: bool,
}

impl FrameMessage {
    /// When the frame's first sample is processed: block start + offset / sample rate.
    pub fn due(&self) -> Instant {
        self.block_start + self.samples(self.event.offset)
    }

    /// When the frame's first sample leaves the host's buffer for the audio device: the host is
    /// one block ahead of playback, so due time + the block's duration. The device's own latency
    /// is the user's `output_latency_ms`, added on top.
    pub fn leaves_host(&self) -> Instant {
        self.block_start + self.samples(self.event.offset.saturating_add(self.block_len))
    }

    fn samples(&self, n: u32) -> Duration {
        Duration::from_nanos(u64::from(n) * 1_000_000_000 / u64::from(self.sample_rate.max(1)))
    }
}

/// Counters shared by the audio thread, the network thread and whoever displays them.
/// `[thread-safe]`, relaxed atomics: they are statistics, not synchronisation.
#[derive(Debug, Default)]
pub struct Stats {
    /// Frames the audio thread could not queue because the ring was full. `[audio-thread]`
    /// increments.
    pub queue_full: AtomicU64,
    /// Frames still waiting to be sent (on the network thread or in the ring) when the network
    /// thread stopped: never sent. `[network-thread]` adds them as it stops.
    pub pending_at_stop: AtomicU64,
    /// Datagrams sent (one per frame per target).
    pub sent: AtomicU64,
    /// Datagrams the OS refused (unreachable, buffer full, …).
    pub send_errors: AtomicU64,
    /// Failed attempts to open a sending socket.
    pub bind_errors: AtomicU64,
    /// Keep-alive repeats sent (counted in `sent` too).
    pub keepalives: AtomicU64,
    /// Sequence number of the next message: kept here, not in the thread, so it keeps counting
    /// up across re-activations and receivers never see it go back.
    pub next_seq: AtomicI64,
    /// `sent` and `send_errors` per target, for the plugin window. `[network-thread]` writes.
    pub targets: TargetCounters,
    /// Art-Net datagrams sent (one per packet per Art-Net target; keep-alive repeats included).
    /// `[network-thread]` increments.
    pub artnet_sent: AtomicU64,
    /// Art-Net datagrams the OS refused. `[network-thread]` increments.
    pub artnet_send_errors: AtomicU64,
    /// Frames sent as OSC but not as Art-Net because ArtTimeCode cannot carry their rate (50,
    /// 59.94 or 60 fps without `half_rate`), while Art-Net targets are set. `[network-thread]`
    /// increments.
    pub artnet_rate_refused: AtomicU64,
    /// Art-Net packets that left more than [`artnet::LATE_AFTER`] after their frame was heard
    /// (sent at once, never dropped: the output latency is set below the host's block, or the
    /// thread was held up). `[network-thread]` increments.
    pub artnet_late: AtomicU64,
    /// Art-Net packets still waiting for their frame to be heard when the network thread
    /// stopped: never sent. `[network-thread]` adds them as it stops.
    pub artnet_pending_at_stop: AtomicU64,
    /// `artnet_sent` and `artnet_send_errors` per Art-Net target, for the plugin window.
    /// `[network-thread]` writes.
    pub artnet_targets: TargetCounters,
    /// `/sync/ping`s answered with a `/sync/pong`. `[network-thread]` increments.
    pub sync_answered: AtomicU64,
    /// `/sync/ping`s not answered: from a sender the plugin may not talk to, or over a rate
    /// limit. `[network-thread]` increments.
    pub sync_refused: AtomicU64,
    /// The clock epoch sent in pongs: bumped when the timetags' timescale steps ([`sync`]).
    /// Kept here, not in the thread, so it only goes up across re-activations.
    /// `[network-thread]` writes.
    pub sync_epoch: AtomicI32,
    /// The timetags' timescale at the latest anchor: the wall-clock time, ns since the Unix
    /// epoch, it gives one fixed monotonic moment; 0 before the first anchor. `[network-thread]`.
    pub sync_timescale: AtomicI64,
}

/// The totals of [`Stats`] at one moment, to report what one activation did: its network thread
/// logs the difference when it stops (the only place a host's log shows them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// [`Stats::sent`].
    pub sent: u64,
    /// [`Stats::send_errors`].
    pub send_errors: u64,
    /// [`Stats::bind_errors`].
    pub bind_errors: u64,
    /// [`Stats::queue_full`].
    pub queue_full: u64,
    /// [`Stats::pending_at_stop`].
    pub pending_at_stop: u64,
    /// [`Stats::artnet_sent`].
    pub artnet_sent: u64,
    /// [`Stats::artnet_send_errors`].
    pub artnet_send_errors: u64,
    /// [`Stats::artnet_rate_refused`].
    pub artnet_rate_refused: u64,
    /// [`Stats::artnet_late`].
    pub artnet_late: u64,
    /// [`Stats::artnet_pending_at_stop`].
    pub artnet_pending_at_stop: u64,
}

impl Totals {
    /// `[thread-safe]` The totals now.
    pub fn of(stats: &Stats) -> Self {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Self {
            sent: get(&stats.sent),
            send_errors: get(&stats.send_errors),
            bind_errors: get(&stats.bind_errors),
            queue_full: get(&stats.queue_full),
            pending_at_stop: get(&stats.pending_at_stop),
            artnet_sent: get(&stats.artnet_sent),
            artnet_send_errors: get(&stats.artnet_send_errors),
            artnet_rate_refused: get(&stats.artnet_rate_refused),
            artnet_late: get(&stats.artnet_late),
            artnet_pending_at_stop: get(&stats.artnet_pending_at_stop),
        }
    }

    /// What was counted from `start` to `self`.
    pub fn since(self, start: Self) -> Self {
        Self {
            sent: self.sent.saturating_sub(start.sent),
            send_errors: self.send_errors.saturating_sub(start.send_errors),
            bind_errors: self.bind_errors.saturating_sub(start.bind_errors),
            queue_full: self.queue_full.saturating_sub(start.queue_full),
            pending_at_stop: self.pending_at_stop.saturating_sub(start.pending_at_stop),
            artnet_sent: self.artnet_sent.saturating_sub(start.artnet_sent),
            artnet_send_errors: self.artnet_send_errors.saturating_sub(start.artnet_send_errors),
            artnet_rate_refused: self.artnet_rate_refused.saturating_sub(start.artnet_rate_refused),
            artnet_late: self.artnet_late.saturating_sub(start.artnet_late),
            artnet_pending_at_stop: self.artnet_pending_at_stop.saturating_sub(start.artnet_pending_at_stop),
        }
    }
}

/// Targets counted one by one in [`TargetCounters`]; the ones after them only in the totals.
pub const TARGET_SLOTS: usize = 16;

/// Datagrams sent and refused per target: slot `i` counts the `i`th target of the settings the
/// network thread uses, tagged with that target's address so a reader holding other settings
/// (the window, for the moment after an edit) never shows one target's counts for another.
/// `[thread-safe]`, relaxed atomics; `[network-thread]` writes.
#[derive(Debug, Default)]
pub struct TargetCounters {
    /// One per target position.
    slots: [TargetSlot; TARGET_SLOTS],
}

/// The counters of one target position.
#[derive(Debug, Default)]
struct TargetSlot {
    /// [`target_key`] of the address counted here; 0 while unused or being reset.
    key: AtomicU64,
    /// Datagrams sent.
    sent: AtomicU64,
    /// Datagrams the OS refused.
    errors: AtomicU64,
}

impl TargetCounters {
    /// `[network-thread]` The targets are now `targets`, in order: a slot whose address changed
    /// starts again from zero; one whose address stayed keeps counting.
    pub fn assign(&self, targets: impl IntoIterator<Item = SocketAddr>) {
        let mut targets = targets.into_iter();
        for slot in &self.slots {
            let key = targets.next().map_or(0, target_key);
            if slot.key.load(Ordering::Relaxed) != key {
                slot.key.store(0, Ordering::Release);
                slot.sent.store(0, Ordering::Relaxed);
                slot.errors.store(0, Ordering::Relaxed);
                slot.key.store(key, Ordering::Release);
            }
        }
    }

    /// `[network-thread]` One datagram to the `i`th target went out (`sent`) or was refused.
    pub fn count(&self, i: usize, sent: bool) {
        if let Some(slot) = self.slots.get(i) {
            let counter = if sent { &slot.sent } else { &slot.errors };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `[thread-safe]` (sent, errors) for `target` as the `i`th target; `None` when the network
    /// thread is not counting that address there (not yet, or beyond [`TARGET_SLOTS`]).
    pub fn get(&self, i: usize, target: SocketAddr) -> Option<(u64, u64)> {
        let slot = self.slots.get(i)?;
        if slot.key.load(Ordering::Acquire) != target_key(target) {
            return None;
        }
        Some((slot.sent.load(Ordering::Relaxed), slot.errors.load(Ordering::Relaxed)))
    }
}

/// A non-zero tag for `addr` (`DefaultHasher::new()` hashes alike throughout the process).
fn target_key(addr: SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    addr.hash(&mut hasher);
    hasher.finish() | 1
}

/// `[main-thread]` Spawns the network thread (in `activate()`), which owns `consumer` until it
/// stops. `readout` is the audio thread's (whether the host gives a position; its project frame
/// rate). The handle stops it within one poll interval.
pub fn spawn(
    consumer: rtrb::Consumer<FrameMessage>,
    params: Arc<TimecodeParams>,
    stats: Arc<Stats>,
    readout: Arc<Readout>,
) -> std::io::Result<StoppableThread> {
    spawn_with(consumer, params, stats, readout, Machine::load)
}

/// [`spawn`] with the machine's settings from `machine`, which the thread calls as it starts
/// (for tests: a machine config of their own without the process's environment).
pub fn spawn_with(
    consumer: rtrb::Consumer<FrameMessage>,
    params: Arc<TimecodeParams>,
    stats: Arc<Stats>,
    readout: Arc<Readout>,
    machine: impl FnOnce() -> Machine + Send + 'static,
) -> std::io::Result<StoppableThread> {
    StoppableThread::spawn_at("osc-timecode-net", Priority::Timing, move |stop| {
        let multicast = Multicast::of(&machine());
        Worker::new(consumer, params, stats, readout, stop, multicast).run();
    })
}

/// The thread's state. `[network-thread]` throughout.
struct Worker {
    /// Frames from the audio thread.
    consumer: rtrb::Consumer<FrameMessage>,
    /// For "Send While Stopped" and the persisted settings.
    params: Arc<TimecodeParams>,
    /// Shared counters.
    stats: Arc<Stats>,
    /// What the audio thread saw: whether the host gives a position, its project frame rate.
    readout: Arc<Readout>,
    /// What the log last said about the host's project rate.
    rate_agreement: RateAgreement,
    /// What the log last said about the Frame Rate on LTC, MTC and Art-Net.
    output_notice: OutputNotice,
    /// Set when the thread is asked to stop ([`StoppableThread::request_stop`]).
    stop: Arc<AtomicBool>,
    /// Snapshot of the persisted settings, refreshed every [`SETTINGS_POLL`].
    settings: Settings,
    /// When `settings` was last refreshed.
    settings_read: Instant,
    /// Frames taken from the ring, not yet due; in arrival (= frame) order. At most
    /// [`QUEUE_CAPACITY`], allocated once in [`Worker::new`].
    pending: VecDeque<Pending>,
    /// Paced (offline "realtime") sending: when the next paced frame may go.
    paced_next: Option<Instant>,
    /// Sending sockets, opened on demand.
    sockets: Sockets,
    /// The machine's multicast interface and TTL, read when the thread starts.
    multicast: Multicast,
    /// Reused encode buffer.
    buf: Vec<u8>,
    /// `Instant` ↔ wall clock, for timetags.
    wall: WallClock,
    /// Last frame sent and when, for keep-alive.
    last_sent: Option<(FrameEvent, Instant)>,
    /// When a frame last arrived from the ring (selects the poll interval).
    last_frame_at: Option<Instant>,
    /// The audio thread's block counter ([`Readout::blocks`]) at the latest wake-up, and when
    /// this thread saw it move, or started (selects the poll interval).
    blocks_seen: (u64, Option<Instant>),
    /// Send trouble, logged at most once per [`LOG_EVERY`].
    send_trouble: TroubleLog,
    /// Art-Net: its targets, socket and the packets waiting for their frames to be heard.
    artnet: artnet::ArtNet,
    /// The totals when this thread started, for its stop line.
    started_with: Totals,
    /// Answers `/sync/ping`s arriving at `sockets`.
    sync: sync::Responder,
}

impl Worker {
    fn new(
        consumer: rtrb::Consumer<FrameMessage>,
        params: Arc<TimecodeParams>,
        stats: Arc<Stats>,
        readout: Arc<Readout>,
        stop: Arc<AtomicBool>,
        multicast: Multicast,
    ) -> Self {
        let settings = read_settings(&params);
        stats.targets.assign(settings.targets.iter().map(|t| t.addr()));
        let mut artnet = artnet::ArtNet::new();
        artnet.set_targets(settings.artnet.targets.iter().map(|t| t.addr()), &stats);
        let wall = WallClock::now();
        sync::observe_anchor(&wall, &stats);
        Self {
            sync: sync::Responder::new(&settings),
            artnet,
            consumer,
            params,
            stop,
            settings,
            settings_read: Instant::now(),
            pending: VecDeque::with_capacity(QUEUE_CAPACITY),
            paced_next: None,
            sockets: Sockets::default(),
            multicast,
            buf: Vec::with_capacity(256),
            wall,
            last_sent: None,
            last_frame_at: None,
            // Activation: the host is about to process (the first block may already be playing).
            blocks_seen: (readout.blocks(), Some(Instant::now())),
            send_trouble: TroubleLog::default(),
            started_with: Totals::of(&stats),
            stats,
            readout,
            rate_agreement: RateAgreement::Unknown,
            output_notice: OutputNotice::Quiet,
        }
    }

    fn run(mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            self.refresh(now);
            // Bounded: a full `pending` leaves frames in the ring, which the audio thread then
            // finds full (module docs).
            while self.pending.len() < QUEUE_CAPACITY
                && let Ok(msg) = self.consumer.pop()
            {
                let pending = self.schedule(msg, now);
                self.pending.push_back(pending);
                self.last_frame_at = Some(now);
            }
            let now = Instant::now();
            while let Some(p) = self.pending.front().copied() {
                if p.due > now {
                    break;
                }
                self.pending.pop_front();
                self.send(p.event, p.heard);
            }
            self.keepalive(now);
            self.artnet.send_due(Instant::now(), &self.stats);
            self.answer_pings();
            self.sleep(now);
        }
        // The audio thread has stopped processing (deactivation): what is left is never sent.
        let left = self.pending.len() + self.consumer.slots();
        self.stats.pending_at_stop.fetch_add(left as u64, Ordering::Relaxed);
        self.stats.artnet_pending_at_stop.fetch_add(self.artnet.unsent() as u64, Ordering::Relaxed);
        let done = Totals::of(&self.stats).since(self.started_with);
        nice_log!(
            "timecode output stopped; this activation: sent {}, send_errors {}, bind_errors {}, queue_full {}, \
             pending_at_stop {}; Art-Net: sent {}, send_errors {}, rate_refused {}, late {}, pending_at_stop {}",
            done.sent,
            done.send_errors,
            done.bind_errors,
            done.queue_full,
            done.pending_at_stop,
            done.artnet_sent,
            done.artnet_send_errors,
            done.artnet_rate_refused,
            done.artnet_late,
            done.artnet_pending_at_stop
        );
    }

    /// When to send a frame and when it is heard.
    fn schedule(&mut self, msg: FrameMessage, now: Instant) -> Pending {
        if !msg.paced {
            self.paced_next = None;
            return Pending { event: msg.event, due: msg.due(), heard: msg.leaves_host() };
        }
        let rate = msg.event.rate;
        let period = Duration::from_nanos(u64::from(rate.den()) * 1_000_000_000 / u64::from(rate.num()));
        let due = self.paced_next.map_or(now, |next| next.max(now));
        self.paced_next = Some(due + period);
        Pending { event: msg.event, due, heard: due }
    }

    /// Re-reads settings and the wall-clock anchor when they are due.
    fn refresh(&mut self, now: Instant) {
        if now.duration_since(self.settings_read) >= SETTINGS_POLL {
            let settings = read_settings(&self.params);
            if settings.targets != self.settings.targets {
                self.sockets = Sockets::default();
                self.multicast.said.clear();
                self.stats.targets.assign(settings.targets.iter().map(|t| t.addr()));
            }
            if settings.artnet.targets != self.settings.artnet.targets {
                self.artnet.set_targets(settings.artnet.targets.iter().map(|t| t.addr()), &self.stats);
            }
            // Settings can change without an activation (a state loaded into a running
            // instance): the audio thread's part follows within a poll.
            self.params.audio_outputs.store(settings.audio_outputs());
            self.sync.set_settings(&settings);
            self.settings = settings;
            self.settings_read = now;
            let agreement = RateAgreement::of(self.readout.host_rate(), self.params.rate.value().rate());
            if let Some(line) = self.rate_agreement.change_to(agreement) {
                nice_warn!("{line}");
            }
            self.rate_agreement = agreement;
            // Refused or substituted on an output that is on: said once per change.
            let notice = OutputNotice::of(self.params.rate.value().rate(), &self.settings);
            if let Some(line) = self.output_notice.change_to(notice) {
                if notice.is_refusal() { nice_warn!("{line}") } else { nice_log!("{line}") }
            }
            self.output_notice = notice;
        }
        let anchor = self.wall;
        self.wall.refresh_if_due(now);
        // Re-anchored (the wall readings of the same moment differ): a step of the wall clock
        // since the last anchor is a new sync epoch.
        if self.wall.wall_at(now, 0.0) != anchor.wall_at(now, 0.0) {
            sync::observe_anchor(&self.wall, &self.stats);
        }
        let blocks = self.readout.blocks();
        if blocks != self.blocks_seen.0 {
            self.blocks_seen = (blocks, Some(now));
        }
    }

    /// Repeats the parked frame while stopped (and "Send While Stopped" and "Output" are on),
    /// as long as the host still gives a position: blocks without one send nothing
    /// (PROTOCOL.md), not even the last parked frame again.
    fn keepalive(&mut self, now: Instant) {
        let Some((event, at)) = self.last_sent else { return };
        let Some(every) = self.settings.keepalive() else { return };
        let params = &self.params;
        // Frames queued since this turn's pop (the audio thread may have just started playing)
        // make the parked frame stale too.
        if event.playing
            || !self.pending.is_empty()
            || !params.send_stopped.value()
            || !params.output.value()
            || !self.readout.has_position()
            || !self.consumer.is_empty()
        {
            return;
        }
        if now.duration_since(at) >= every {
            self.stats.keepalives.fetch_add(1, Ordering::Relaxed);
            self.send(FrameEvent { jump: false, looped: false, ..event }, now);
        }
    }

    /// Answers the pings waiting on the sending sockets (those open: a receiver pings the
    /// socket its timecode came from).
    fn answer_pings(&mut self) {
        for socket in self.sockets.open() {
            self.sync.answer(socket, &self.wall, &self.stats);
        }
    }

    /// Sleeps until the next frame is due or the next wake-up, whichever is first: the fast poll,
    /// or just after the next block if that is sooner (module docs), or the ping poll while pings
    /// come; for the next Art-Net packet, until [`artnet::SPIN`] before it, then spins to it (or
    /// to an OSC frame due before it).
    fn sleep(&self, now: Instant) {
        let recent = |t: Option<Instant>| t.is_some_and(|t| now.duration_since(t) < HOST_IDLE_AFTER);
        let busy = recent(self.last_frame_at) || recent(self.blocks_seen.1);
        let mut wake = now + if busy { FAST_POLL } else { IDLE_POLL };
        if self.sync.recent(now) {
            wake = wake.min(now + sync::PING_POLL);
        }
        // Sooner when the next block is due sooner, and often for a moment when it is late:
        // never later than the fast poll (hosts that process in bursts come early).
        if busy && let Some((next, _)) = self.readout.next_block() {
            let settled = next + BLOCK_SETTLE;
            if settled > now {
                wake = wake.min(settled);
            } else if now < settled + LATE_WINDOW {
                wake = wake.min(now + LATE_POLL);
            }
        }
        if let Some(p) = self.pending.front() {
            wake = wake.min(p.due);
        }
        let artnet = self.artnet.next_deadline();
        if let Some(at) = artnet {
            wake = wake.min(at.checked_sub(artnet::SPIN).unwrap_or(at));
        }
        if let Some(d) = wake.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        if let Some(at) = artnet {
            let until = self.pending.front().map_or(at, |p| p.due.min(at));
            if until.saturating_duration_since(Instant::now()) <= artnet::SPIN {
                artnet::spin_until(until);
            }
        }
    }

    /// Encodes one frame, timetagged `heard_at` + output latency, and sends it to every target.
    fn send(&mut self, mut event: FrameEvent, heard_at: Instant) {
        // Frames lost on the way (a full ring) break continuity: say so, as for a locate.
        if let Some((last, _)) = self.last_sent
            && event.playing
            && last.playing
            && event.frame != last.frame + 1
        {
            event.jump = true;
        }
        let seq = self.stats.next_seq.fetch_add(1, Ordering::Relaxed);
        let msg = TimecodeMessage::new(event.frame, event.rate, event.playing, seq, event.jump, event.looped);
        let heard = self.wall.wall_at(heard_at, self.settings.output_latency_ms);
        encode_timecode_bundle(&msg, timetag_from_system_time(heard), &mut self.buf);
        // Art-Net leaves at the instant the timetag names (the same anchor: exact to the ns).
        let heard_instant = self.wall.instant_at(heard, 0.0).unwrap_or(heard_at);
        let artnet = &self.settings.artnet;
        self.artnet.offer(event, heard_instant, artnet.stream_id.get(), self.settings.half_rate, &self.stats);
        for i in 0..self.settings.targets.len() {
            let target = self.settings.targets[i].addr();
            if self.multicast.refuses(target) {
                self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                self.stats.targets.count(i, false);
                self.multicast.warn_once(target);
                continue;
            }
            let result = match self.sockets.for_target(target, &self.settings.targets, &self.multicast, &self.stats) {
                Some(socket) => socket.send_to(&self.buf, target).map(drop),
                None => Err(std::io::Error::other("no socket")),
            };
            match result {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    self.stats.targets.count(i, true);
                }
                Err(e) => {
                    self.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                    self.stats.targets.count(i, false);
                    self.send_trouble.warn(|| format!("could not send timecode to {target}: {e}"));
                }
            }
        }
        self.last_sent = Some((event, Instant::now()));
    }
}

/// One kind of trouble, logged at most once per [`LOG_EVERY`] (the rest is counted in
/// [`Stats`]). `[network-thread]`.
#[derive(Debug, Default)]
struct TroubleLog {
    /// When it was last logged.
    last: Option<Instant>,
}

impl TroubleLog {
    /// Logs `message` as a warning unless one was logged within [`LOG_EVERY`].
    fn warn(&mut self, message: impl FnOnce() -> String) {
        let now = Instant::now();
        if self.last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            self.last = Some(now);
            nice_warn!("{}", message());
        }
    }
}

fn read_settings(params: &TimecodeParams) -> Settings {
    // A poisoned lock still holds valid settings: a panic elsewhere must not stop the clock.
    params.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// A frame waiting for its moment. `[network-thread]`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The frame.
    event: FrameEvent,
    /// When to send it.
    due: Instant,
    /// When it is heard (before the user's output latency): the timetag.
    heard: Instant,
}

/// The machine's multicast (and limited broadcast) settings as the network thread uses them:
/// read once, when it starts (activation), so an edit of the config file takes effect at the
/// next activation. `[network-thread]`.
#[derive(Debug, Default)]
struct Multicast {
    /// The interface, resolved, and the TTL in hops, for the sending sockets.
    options: SendOptions,
    /// The configured interface, when this machine does not have it.
    missing: Option<iface::Missing>,
    /// Refused targets already warned about (once each, until the targets change).
    said: Vec<SocketAddr>,
}

impl Multicast {
    /// `[network-thread]` The machine's settings, its interface resolved.
    fn of(machine: &Machine) -> Self {
        match machine.interface.as_ref().map(iface::resolve).transpose() {
            Ok(interface) => Self { options: SendOptions { interface, ttl: machine.ttl }, ..Self::default() },
            Err(missing) => Self {
                options: SendOptions { interface: None, ttl: machine.ttl },
                missing: Some(missing),
                ..Self::default()
            },
        }
    }

    /// Whether `target` is a multicast group or the limited broadcast (255.255.255.255), and
    /// this machine gives no interface to send it on. Cheap: asked for every target of every
    /// frame.
    fn refuses(&self, target: SocketAddr) -> bool {
        iface::needs_interface(&target)
            && (self.missing.is_some() || iface::check_target(target, &self.options).is_err())
    }

    /// Warns, once per target, why it is refused.
    fn warn_once(&mut self, target: SocketAddr) {
        if self.said.contains(&target) {
            return;
        }
        self.said.push(target);
        let key = machine::INTERFACE_KEY;
        let why = match (&self.missing, iface::check_target(target, &self.options)) {
            (Some(missing), _) => format!("{missing} ([plugin] {key} in the machine config file)"),
            (None, Err(Unsendable::NoInterface { .. })) => format!(
                "it needs an interface to send it on: set [plugin] {key} = \"NAME\" (or one of its addresses) in \
                 this machine's config file"
            ),
            (None, Err(e)) => e.to_string(),
            (None, Ok(())) => return,
        };
        let what = if iface::is_multicast(&target) { "multicast group" } else { "broadcast address" };
        nice_warn!(
            "not sending timecode to the {what} {target}: {why}; read at activation, so re-activate the \
             plugin after changing it"
        );
    }
}

/// One sending socket per address family, bound to loopback when every target of that family
/// is loopback (the default), else to the multicast interface's address when every target of
/// that family is a multicast group sent on it (the source receivers know the master by, as
/// `serve`'s [`iface::sending_bind`]), else to the unspecified address (the groups' source is
/// then the interface's address all the same: `IP_MULTICAST_IF` names it). The limited
/// broadcast (255.255.255.255) has a socket of its own bound to the interface's IPv4 address,
/// which is what makes it leave on that interface, so the other targets keep their source (a
/// loopback receiver sees 127.0.0.1). `SO_BROADCAST` on a socket with a broadcast target
/// ([`iface::sending_socket`]), on no other.
#[derive(Default)]
struct Sockets {
    /// IPv4 socket, if open.
    v4: Option<UdpSocket>,
    /// IPv6 socket, if open.
    v6: Option<UdpSocket>,
    /// The limited broadcast's socket, if open.
    limited: Option<UdpSocket>,
    /// When opening last failed: IPv4, IPv6, the limited broadcast's.
    failed_at: [Option<Instant>; 3],
}

impl Sockets {
    /// The open sockets, for the sync responder.
    fn open(&self) -> impl Iterator<Item = &UdpSocket> {
        [&self.v4, &self.v6, &self.limited].into_iter().flatten()
    }

    /// The socket for `target`: the limited broadcast's, or its family's, opened (for every
    /// target of `all` of that family that `multicast` does not refuse, bar the limited
    /// broadcast) if it is not open and was not just tried.
    fn for_target(
        &mut self,
        target: SocketAddr,
        all: &[Target],
        multicast: &Multicast,
        stats: &Stats,
    ) -> Option<&UdpSocket> {
        let v6 = target.is_ipv6();
        let limited = iface::is_limited_broadcast(&target);
        let (slot, failed_at) = match (limited, v6) {
            (true, _) => (&mut self.limited, &mut self.failed_at[2]),
            (false, true) => (&mut self.v6, &mut self.failed_at[1]),
            (false, false) => (&mut self.v4, &mut self.failed_at[0]),
        };
        if slot.is_none() && failed_at.is_none_or(|t| t.elapsed() >= REBIND_EVERY) {
            let family: Vec<SocketAddr> = if limited {
                vec![target]
            } else {
                let own = |t: &SocketAddr| t.is_ipv6() == v6 && !iface::is_limited_broadcast(t);
                all.iter().map(|t| t.addr()).filter(|t| own(t) && !multicast.refuses(*t)).collect()
            };
            // The interface's address when every target is a group (or it is the limited
            // broadcast): otherwise unicast targets keep the routing table's choice of source (a
            // loopback receiver sees 127.0.0.1, as before), and the groups still get the
            // interface's address, which `IP_MULTICAST_IF` by address makes their source.
            let groups_only = !family.is_empty() && family.iter().all(iface::is_multicast);
            let interface = multicast.options.interface.as_ref().filter(|_| groups_only || limited);
            let bind = iface::sending_bind(&family, v6, interface);
            let opened = iface::sending_socket(bind, &family, &multicast.options)
                .and_then(|s| s.set_nonblocking(true).map(|()| s));
            match opened {
                Ok(s) => {
                    *slot = Some(s);
                    *failed_at = None;
                }
                Err(e) => {
                    stats.bind_errors.fetch_add(1, Ordering::Relaxed);
                    *failed_at = Some(Instant::now());
                    nice_warn!("could not open a socket on {bind} for timecode: {e}");
                }
            }
        }
        slot.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::values::Targets;
    use osc_timecode_core::FrameRate;
    use osc_timecode_core::protocol::decode_timecode_packet;
    use osc_timecode_net::iface::InterfaceSpec;
    use std::time::SystemTime;

    fn target(addr: SocketAddr) -> Target {
        Target::new(addr).unwrap()
    }

    fn event(frame: i64, offset: u32, playing: bool, jump: bool) -> FrameEvent {
        FrameEvent { frame, rate: FrameRate::FPS_25, offset, playing, jump, looped: false, starts: playing }
    }

    /// Settings sending to `targets` with no keep-alive and no output latency.
    fn sending_to(targets: Targets) -> Settings {
        Settings { targets, keepalive_ms: 0, output_latency_ms: 0.0, ..Settings::default() }
    }

    /// A receiver on loopback and a running network thread sending to it.
    /// The readout says the host gives a position, as after a block with one.
    #[allow(clippy::type_complexity)]
    fn setup(
        keepalive_ms: u32,
    ) -> (UdpSocket, rtrb::Producer<FrameMessage>, StoppableThread, Arc<Stats>, Arc<Readout>) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let settings = Settings {
            targets: Targets::one(target(rx.local_addr().unwrap())),
            keepalive_ms,
            output_latency_ms: 0.0,
            ..Settings::default()
        };
        let params = Arc::new(TimecodeParams::new(settings));
        let stats = Arc::new(Stats::default());
        let (producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let readout = Arc::new(Readout::default());
        readout.block(true, None, None);
        let thread = spawn(consumer, params, stats.clone(), readout.clone()).unwrap();
        (rx, producer, thread, stats, readout)
    }

    fn recv(rx: &UdpSocket) -> (Instant, rosc::OscTime, TimecodeMessage) {
        let mut buf = [0u8; 1024];
        let n = rx.recv(&mut buf).expect("a packet within the timeout");
        let at = Instant::now();
        let (tag, msg) = decode_timecode_packet(&buf[..n]).unwrap();
        (at, tag.expect("sent as a bundle"), msg)
    }

    #[test]
    fn frames_are_sent_in_order_never_before_they_are_due() {
        let (rx, mut producer, thread, stats, _) = setup(0);
        let (block_start, block_start_wall) = (Instant::now(), SystemTime::now());
        // One 0.2 s block at 48 kHz with five frames, offsets 0 .. 0.16 s.
        for (i, offset) in [0u32, 1920, 3840, 5760, 7680].into_iter().enumerate() {
            let msg = FrameMessage {
                event: event(i as i64, offset, true, i == 0),
                block_start,
                sample_rate: 48_000,
                block_len: 9600,
                paced: false,
            };
            producer.push(msg).unwrap();
        }
        let mut tags = Vec::new();
        for i in 0..5 {
            let (at, tag, msg) = recv(&rx);
            assert_eq!((msg.frame, msg.seq, msg.jump, msg.playing), (i, i, i == 0, true));
            let due = block_start + Duration::from_micros(40_000 * i as u64);
            assert!(at >= due, "frame {i} arrived {:?} before it was due", due - at);
            tags.push(osc_timecode_core::protocol::system_time_from_timetag(tag));
        }
        // Timetags are one frame period (40 ms) apart, and one block (0.2 s) after the due time.
        // Frame 0 (offset 0) is heard one block after the block started: 0.2 s.
        let heard = tags[0].duration_since(block_start_wall).unwrap_or_default();
        assert!(
            heard.abs_diff(Duration::from_millis(200)) < Duration::from_millis(2),
            "timetag − block start = {heard:?}"
        );
        for w in tags.windows(2) {
            let d = w[1].duration_since(w[0]).unwrap();
            assert!(d.abs_diff(Duration::from_millis(40)) <= Duration::from_micros(1), "{d:?}");
        }
        thread.stop();
        assert_eq!(stats.sent.load(Ordering::Relaxed), 5);
        assert_eq!(stats.send_errors.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn parked_position_is_repeated_as_keepalive() {
        let (rx, mut producer, thread, stats, _) = setup(30);
        producer
            .push(FrameMessage {
                event: event(42, 0, false, true),
                block_start: Instant::now(),
                sample_rate: 48_000,
                block_len: 480,
                paced: false,
            })
            .unwrap();
        let (_, _, first) = recv(&rx);
        assert_eq!((first.frame, first.playing, first.jump, first.seq), (42, false, true, 0));
        for seq in 1..4 {
            let (_, _, again) = recv(&rx);
            assert_eq!((again.frame, again.playing, again.jump, again.seq), (42, false, false, seq));
        }
        thread.stop();
        assert!(stats.keepalives.load(Ordering::Relaxed) >= 3);
    }

    #[test]
    fn no_keepalive_while_the_host_gives_no_position() {
        let (rx, mut producer, thread, _, readout) = setup(30);
        let parked = FrameMessage {
            event: event(42, 0, false, true),
            block_start: Instant::now(),
            sample_rate: 48_000,
            block_len: 480,
            paced: false,
        };
        producer.push(parked).unwrap();
        readout.block(false, None, None);
        let (_, _, first) = recv(&rx);
        assert_eq!((first.frame, first.playing), (42, false), "the parked frame itself still goes");
        rx.set_read_timeout(Some(Duration::from_millis(150))).unwrap();
        let mut buf = [0u8; 256];
        assert!(rx.recv(&mut buf).is_err(), "no keep-alive in 5 intervals without a position");
        // A position again: keep-alives resume.
        readout.block(true, None, None);
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (_, _, again) = recv(&rx);
        assert_eq!((again.frame, again.playing, again.jump), (42, false, false));
        thread.stop();
    }

    #[test]
    fn an_unreachable_target_is_counted_and_the_others_still_get_frames() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Port 0 cannot be sent to: the OS refuses every datagram.
        let bad: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let settings =
            sending_to(Targets::new(vec![Target::unchecked(bad), target(rx.local_addr().unwrap())]).unwrap());
        let params = Arc::new(TimecodeParams::new(settings));
        let stats = Arc::new(Stats::default());
        let (mut producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let thread = spawn(consumer, params, stats.clone(), Arc::default()).unwrap();
        for i in 0..3 {
            producer
                .push(FrameMessage {
                    event: event(i, 0, true, i == 0),
                    block_start: Instant::now(),
                    sample_rate: 48_000,
                    block_len: 480,
                    paced: false,
                })
                .unwrap();
        }
        for i in 0..3 {
            assert_eq!(recv(&rx).2.frame, i);
        }
        thread.stop();
        assert_eq!(stats.send_errors.load(Ordering::Relaxed), 3);
        assert_eq!(stats.sent.load(Ordering::Relaxed), 3);
    }

    /// Multicast groups (IPv4 and IPv6), never sent to here: the machine gives them no interface.
    fn groups() -> (SocketAddr, SocketAddr) {
        ("239.192.50.6:5006".parse().unwrap(), "[ff02::1234]:5006".parse().unwrap())
    }

    #[test]
    fn multicast_targets_without_an_interface_are_refused_counted_and_the_others_still_get_frames() {
        let (v4, v6) = groups();
        let missing = Machine { interface: Some(InterfaceSpec::Name("osctc-none0".into())), ..Machine::default() };
        for machine in [Machine::default(), missing] {
            let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let loopback = rx.local_addr().unwrap();
            let settings = sending_to(Targets::new(vec![target(v4), target(v6), target(loopback)]).unwrap());
            let params = Arc::new(TimecodeParams::new(settings));
            let stats = Arc::new(Stats::default());
            let (mut producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
            let given = machine.clone();
            let thread = spawn_with(consumer, params, stats.clone(), Arc::default(), move || given).unwrap();
            for i in 0..3 {
                let (block_start, sample_rate, block_len, paced) = (Instant::now(), 48_000, 480, false);
                let event = event(i, 0, true, i == 0);
                producer.push(FrameMessage { event, block_start, sample_rate, block_len, paced }).unwrap();
            }
            for i in 0..3 {
                assert_eq!(recv(&rx).2.frame, i, "{machine:?}");
            }
            thread.stop();
            assert_eq!(stats.send_errors.load(Ordering::Relaxed), 6, "{machine:?}");
            assert_eq!(stats.sent.load(Ordering::Relaxed), 3, "{machine:?}");
            assert_eq!(stats.targets.get(0, v4), Some((0, 3)), "{machine:?}");
            assert_eq!(stats.targets.get(1, v6), Some((0, 3)), "{machine:?}");
            assert_eq!(stats.targets.get(2, loopback), Some((3, 0)), "{machine:?}");
        }
    }

    /// This machine's loopback interface (the one holding 127.0.0.1).
    fn loopback_interface() -> iface::Interface {
        iface::interfaces()
            .unwrap_or_default()
            .into_iter()
            .find(|i| i.v4.contains(&std::net::Ipv4Addr::LOCALHOST))
            .expect("a loopback interface with 127.0.0.1")
    }

    #[test]
    fn a_multicast_socket_is_bound_on_the_machines_interface_and_each_refusal_said_once() {
        // Loopback as the interface: only sockets are opened, nothing is sent.
        let lo = loopback_interface();
        let (v4, v6) = groups();
        let machine = Machine { interface: Some(InterfaceSpec::Name(lo.name.clone())), ttl: 3, advertise: false };
        let multicast = Multicast::of(&machine);
        assert_eq!(multicast.options.ttl, 3);
        assert!(!multicast.refuses(v4) && !multicast.refuses("127.0.0.1:5006".parse().unwrap()));
        let all = [target(v4)];
        let socket = Sockets::default().for_target(v4, &all, &multicast, &Stats::default()).map(|s| s.local_addr());
        let bound = socket.expect("a socket").unwrap();
        assert_eq!(bound.ip(), std::net::Ipv4Addr::LOCALHOST, "the interface's address, the stream's source");
        let mixed = [target(v4), target("198.51.100.7:5006".parse().unwrap())];
        let socket = Sockets::default().for_target(v4, &mixed, &multicast, &Stats::default()).map(|s| s.local_addr());
        let bound = socket.expect("a socket").unwrap();
        assert!(bound.ip().is_unspecified(), "unicast beside: the routing table picks its source: {bound}");

        let mut refused = Multicast::of(&Machine::default());
        assert!(refused.refuses(v4) && refused.refuses(v6) && !refused.refuses("127.0.0.1:5006".parse().unwrap()));
        for _ in 0..3 {
            refused.warn_once(v4);
            refused.warn_once(v6);
        }
        assert_eq!(refused.said, [v4, v6], "one line per refused target, not one per frame");
        let missing = Multicast::of(&Machine {
            interface: Some(InterfaceSpec::Name("osctc-none0".into())),
            ..Machine::default()
        });
        assert!(missing.missing.is_some() && missing.refuses(v4));
    }

    #[test]
    fn the_limited_broadcast_needs_the_machines_interface_and_is_sent_from_its_address() {
        // Loopback as the interface: only sockets are opened, nothing is sent.
        let lo = loopback_interface();
        let limited: SocketAddr = "255.255.255.255:5006".parse().unwrap();
        let directed: SocketAddr = "198.51.100.127:5006".parse().unwrap();
        let mut refused = Multicast::of(&Machine::default());
        assert!(refused.refuses(limited), "no interface: refused as a group is");
        assert!(!refused.refuses(directed), "a directed broadcast is routed by its subnet");
        for _ in 0..3 {
            refused.warn_once(limited);
        }
        assert_eq!(refused.said, [limited], "one line, not one per frame");

        let machine = Machine { interface: Some(InterfaceSpec::Name(lo.name.clone())), ..Machine::default() };
        let multicast = Multicast::of(&machine);
        assert!(!multicast.refuses(limited));
        // A socket of its own, bound to the interface's address (which makes it leave there);
        // the loopback target beside keeps 127.0.0.1 as its source, the directed broadcast
        // beside it the routing table's choice, each with SO_BROADCAST only where it is needed.
        let loopback: SocketAddr = "127.0.0.1:5006".parse().unwrap();
        let all = [target(limited), target(loopback)];
        let mut sockets = Sockets::default();
        let socket = sockets.for_target(limited, &all, &multicast, &Stats::default()).expect("a socket");
        assert_eq!(socket.local_addr().unwrap().ip(), std::net::Ipv4Addr::LOCALHOST);
        assert!(socket.broadcast().unwrap(), "SO_BROADCAST");
        let socket = sockets.for_target(loopback, &all, &multicast, &Stats::default()).expect("a socket");
        assert_eq!(socket.local_addr().unwrap().ip(), std::net::Ipv4Addr::LOCALHOST, "all loopback but it");
        assert!(!socket.broadcast().unwrap(), "never for unicast");
        assert_eq!(sockets.open().count(), 2, "both answer pings");
        let all = [target(limited), target(directed)];
        let mut sockets = Sockets::default();
        let socket = sockets.for_target(directed, &all, &multicast, &Stats::default()).expect("a socket");
        assert!(socket.local_addr().unwrap().ip().is_unspecified(), "routed by its subnet");
        let unicast = [target("198.51.100.7:5006".parse().unwrap())];
        let mut sockets = Sockets::default();
        let socket = sockets.for_target(unicast[0].addr(), &unicast, &multicast, &Stats::default()).unwrap();
        assert!(!socket.broadcast().unwrap(), "never for unicast");
    }

    #[test]
    fn targets_are_counted_one_by_one_and_restart_when_their_address_changes() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (bad, good): (SocketAddr, SocketAddr) = ("127.0.0.1:0".parse().unwrap(), rx.local_addr().unwrap());
        let settings = sending_to(Targets::new(vec![Target::unchecked(bad), target(good)]).unwrap());
        let params = Arc::new(TimecodeParams::new(settings));
        let stats = Arc::new(Stats::default());
        let (mut producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let thread = spawn(consumer, params.clone(), stats.clone(), Arc::default()).unwrap();
        let frame = |i| FrameMessage {
            event: event(i, 0, true, i == 0),
            block_start: Instant::now(),
            sample_rate: 48_000,
            block_len: 480,
            paced: false,
        };
        for i in 0..2 {
            producer.push(frame(i)).unwrap();
            recv(&rx);
        }
        assert_eq!(stats.targets.get(0, bad), Some((0, 2)));
        assert_eq!(stats.targets.get(1, good), Some((2, 0)));
        assert_eq!(stats.targets.get(0, good), None, "slot 0 counts another address");
        assert_eq!(stats.targets.get(2, good), None, "no third target");
        // The window removes the first target: the good one moves to slot 0 and starts from 0 there.
        params.settings.write().unwrap().targets = Targets::one(target(good));
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.targets.get(0, good).is_none() {
            assert!(Instant::now() < deadline, "the network thread never took the new targets");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stats.targets.get(0, good), Some((0, 0)));
        producer.push(frame(2)).unwrap();
        recv(&rx);
        thread.stop();
        assert_eq!(stats.targets.get(0, good), Some((1, 0)));
        assert_eq!(stats.targets.get(1, good), None);
    }

    #[test]
    fn totals_of_one_activation() {
        let stats = Stats::default();
        stats.sent.store(10, Ordering::Relaxed);
        let start = Totals::of(&stats);
        stats.sent.fetch_add(5, Ordering::Relaxed);
        stats.send_errors.fetch_add(2, Ordering::Relaxed);
        stats.queue_full.fetch_add(1, Ordering::Relaxed);
        stats.pending_at_stop.fetch_add(3, Ordering::Relaxed);
        stats.artnet_sent.fetch_add(4, Ordering::Relaxed);
        stats.artnet_rate_refused.fetch_add(6, Ordering::Relaxed);
        let done = Totals::of(&stats).since(start);
        assert_eq!(
            done,
            Totals {
                sent: 5,
                send_errors: 2,
                queue_full: 1,
                pending_at_stop: 3,
                artnet_sent: 4,
                artnet_rate_refused: 6,
                ..Totals::default()
            }
        );
    }

    #[test]
    fn a_target_that_stays_in_its_place_keeps_its_counts() {
        let counters = TargetCounters::default();
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap());
        counters.assign([a, b]);
        counters.count(0, true);
        counters.count(1, false);
        counters.count(TARGET_SLOTS, true);
        counters.assign([a, a]);
        assert_eq!(counters.get(0, a), Some((1, 0)), "same address, same place: kept");
        assert_eq!(counters.get(1, a), Some((0, 0)), "new address: from zero");
        assert_eq!(counters.get(1, b), None);
    }

    #[test]
    fn sequence_numbers_keep_counting_across_reactivation() {
        let (rx, mut producer, thread, stats, _) = setup(0);
        producer
            .push(FrameMessage {
                event: event(1, 0, true, true),
                block_start: Instant::now(),
                sample_rate: 48_000,
                block_len: 480,
                paced: false,
            })
            .unwrap();
        assert_eq!(recv(&rx).2.seq, 0);
        thread.stop();
        // A new thread (as after deactivate/activate) shares the instance's stats.
        let (mut producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let settings = sending_to(Targets::one(target(rx.local_addr().unwrap())));
        let thread = spawn(consumer, Arc::new(TimecodeParams::new(settings)), stats.clone(), Arc::default()).unwrap();
        producer
            .push(FrameMessage {
                event: event(2, 0, true, true),
                block_start: Instant::now(),
                sample_rate: 48_000,
                block_len: 480,
                paced: false,
            })
            .unwrap();
        assert_eq!(recv(&rx).2.seq, 1);
        thread.stop();
    }

    #[test]
    fn paced_frames_go_one_frame_period_apart_and_a_gap_is_a_jump() {
        let (rx, mut producer, thread, _, _) = setup(0);
        let block_start = Instant::now();
        // An offline render pushes a whole second at once; frame 5 was lost to a full ring.
        for f in (0..10).filter(|f| *f != 5) {
            let ev = event(f, 0, true, f == 0);
            producer
                .push(FrameMessage { event: ev, block_start, sample_rate: 48_000, block_len: 64, paced: true })
                .unwrap();
        }
        let got: Vec<(Instant, TimecodeMessage)> = (0..9)
            .map(|_| {
                let (at, _, m) = recv(&rx);
                (at, m)
            })
            .collect();
        let frames: Vec<(i64, bool)> = got.iter().map(|(_, m)| (m.frame, m.jump)).collect();
        let want: Vec<(i64, bool)> = (0..10).filter(|f| *f != 5).map(|f| (f, f == 0 || f == 6)).collect();
        assert_eq!(frames, want);
        // Nine frames at 25 fps take at least eight frame periods (320 ms) to send: never faster.
        let spread = got[8].0 - got[0].0;
        assert!(spread >= Duration::from_millis(319), "paced sending took only {spread:?}");
        thread.stop();
    }

    #[test]
    fn a_paced_bounce_waits_in_bounded_memory_and_every_frame_is_counted_once() {
        let (_rx, mut producer, thread, stats, _) = setup(0);
        let block_start = Instant::now();
        let frame = |f| FrameMessage {
            event: event(f, 0, true, f == 0),
            block_start,
            sample_rate: 48_000,
            block_len: 4096,
            paced: true,
        };
        // An offline bounce outruns the pacing (one frame per 40 ms goes out): fill the ring,
        // let the thread take it all, then push until the ring is full again.
        let mut pushed = 0;
        for _ in 0..QUEUE_CAPACITY {
            producer.push(frame(pushed)).unwrap();
            pushed += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while producer.slots() < QUEUE_CAPACITY {
            assert!(Instant::now() < deadline, "the network thread never took the frames");
            std::thread::sleep(Duration::from_millis(1));
        }
        // The thread holds QUEUE_CAPACITY frames at most: the ring fills again, and a further push
        // is refused (the audio thread counts it as queue_full), long before 3 × QUEUE_CAPACITY.
        let mut refused = false;
        for _ in 0..3 * QUEUE_CAPACITY {
            if producer.push(frame(pushed)).is_err() {
                refused = true;
                break;
            }
            pushed += 1;
        }
        assert!(refused, "the network thread took {pushed} frames without bound");
        thread.stop();
        let (sent, left) = (stats.sent.load(Ordering::Relaxed), stats.pending_at_stop.load(Ordering::Relaxed));
        assert!(sent >= 1, "the first paced frame goes at once");
        assert_eq!(sent + left, pushed as u64, "sent {sent} + pending at stop {left}");
    }

    #[test]
    fn stop_joins_promptly_and_drop_joins_too() {
        let (_rx, _producer, thread, _, _) = setup(1000);
        let t = Instant::now();
        thread.stop();
        assert!(t.elapsed() < Duration::from_secs(5), "stop must not hang");
        let (_rx, _producer, thread, _, _) = setup(1000);
        drop(thread);
    }

    // Art-Net: every frame sent as OSC also goes as ArtTimeCode, when it is heard.

    /// The Art-Net side of a running network thread: the OSC receiver, the Art-Net receiver, the
    /// ring's producer, the thread and the counters.
    struct ArtNetRig {
        osc: UdpSocket,
        art: UdpSocket,
        producer: rtrb::Producer<FrameMessage>,
        thread: StoppableThread,
        stats: Arc<Stats>,
    }

    /// A network thread sending OSC to one loopback receiver and Art-Net (stream `stream_id`,
    /// `half_rate` as given) to another; `latency_ms` is the output latency.
    fn artnet_rig(stream_id: u8, half_rate: bool, keepalive_ms: u32, latency_ms: f64) -> ArtNetRig {
        use crate::settings::outputs::{ArtNetSettings, ArtNetTarget, ArtNetTargets};
        use crate::settings::values::StreamId;
        let osc = UdpSocket::bind("127.0.0.1:0").unwrap();
        let art = UdpSocket::bind("127.0.0.1:0").unwrap();
        for rx in [&osc, &art] {
            rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        let SocketAddr::V4(art_addr) = art.local_addr().unwrap() else { unreachable!("bound to 127.0.0.1") };
        let settings = Settings {
            targets: Targets::one(target(osc.local_addr().unwrap())),
            keepalive_ms,
            output_latency_ms: latency_ms,
            half_rate,
            artnet: ArtNetSettings {
                targets: ArtNetTargets::new(vec![ArtNetTarget::new(art_addr).unwrap()]).unwrap(),
                stream_id: StreamId::new(stream_id).unwrap(),
            },
            ..Settings::default()
        };
        let stats = Arc::new(Stats::default());
        let (producer, consumer) = rtrb::RingBuffer::new(QUEUE_CAPACITY);
        let readout = Arc::new(Readout::default());
        readout.block(true, None, None);
        let thread = spawn(consumer, Arc::new(TimecodeParams::new(settings)), stats.clone(), readout).unwrap();
        ArtNetRig { osc, art, producer, thread, stats }
    }

    /// One Art-Net packet, when it arrived and what `artnet_protocol` (not ours) reads in it.
    fn recv_artnet(rx: &UdpSocket) -> (Instant, artnet_protocol::Timecode) {
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).expect("an Art-Net packet within the timeout");
        let at = Instant::now();
        assert_eq!(n, osc_timecode_core::artnet::PACKET_LEN, "ArtTimeCode is 19 bytes");
        match artnet_protocol::ArtCommand::from_buffer(&buf[..n]) {
            Ok(artnet_protocol::ArtCommand::OpTimeCode(tc)) => {
                assert_eq!((tc.version, tc.filler1), ([0, 14], 0), "ProtVer 14, Filler1 0");
                (at, tc)
            }
            other => panic!("artnet_protocol read {other:?}, not an OpTimeCode"),
        }
    }

    /// (hours, minutes, seconds, frames) as artnet_protocol decoded them.
    fn label_of(tc: &artnet_protocol::Timecode) -> (u8, u8, u8, u8) {
        (tc.hours, tc.minutes, tc.seconds, tc.frames)
    }

    /// (hours, minutes, seconds, frames) of frame `n` at `rate`, by core's timecode arithmetic.
    fn label(n: i64, rate: FrameRate) -> (u8, u8, u8, u8) {
        let tc = osc_timecode_core::Timecode::from_frame(n, rate);
        (tc.hours(), tc.minutes(), tc.seconds(), tc.frames())
    }

    fn frame_at(frame: i64, rate: FrameRate, offset: u32, playing: bool, jump: bool) -> FrameEvent {
        FrameEvent { frame, rate, offset, playing, jump, looped: false, starts: playing }
    }

    /// Frames of one 0.2 s block at 25 fps, from 01:00:00:00, with 25 ms of output latency: each
    /// packet carries its frame's label (read by artnet_protocol) and arrives no sooner than
    /// the frame is heard (block start + offset + the block + the latency, the instant of the
    /// OSC timetag), in order.
    #[test]
    fn artnet_packets_carry_each_frame_and_leave_when_it_is_heard() {
        let mut rig = artnet_rig(7, false, 0, 25.0);
        let block_start = Instant::now();
        let first = 90_000; // 01:00:00:00 at 25 fps
        let offsets = [0u32, 1920, 3840, 5760, 7680];
        for (i, offset) in offsets.into_iter().enumerate() {
            let event = frame_at(first + i as i64, FrameRate::FPS_25, offset, true, i == 0);
            rig.producer
                .push(FrameMessage { event, block_start, sample_rate: 48_000, block_len: 9600, paced: false })
                .unwrap();
        }
        for (i, offset) in offsets.into_iter().enumerate() {
            let (_, tag, msg) = recv(&rig.osc);
            assert_eq!(msg.frame, first + i as i64);
            let (at, tc) = recv_artnet(&rig.art);
            assert_eq!(label_of(&tc), label(first + i as i64, FrameRate::FPS_25), "packet {i}");
            assert_eq!((tc.stream_id, tc.frame_type), (7, artnet_protocol::FrameType::EBU));
            // Heard: the frame's sample, one block (9600 samples) later, plus 25 ms.
            let heard = block_start
                + Duration::from_nanos(u64::from(offset + 9600) * 1_000_000_000 / 48_000)
                + Duration::from_millis(25);
            assert!(at >= heard, "packet {i} arrived {:?} before its frame was heard", heard - at);
            // The same instant as the OSC timetag of the frame (to the wall clock's anchor).
            let tag_wall = osc_timecode_core::protocol::system_time_from_timetag(tag);
            let arrival_wall = SystemTime::now();
            assert!(arrival_wall + Duration::from_micros(100) >= tag_wall, "packet {i} before its timetag");
        }
        rig.thread.stop();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((get(&rig.stats.artnet_sent), get(&rig.stats.artnet_send_errors)), (5, 0));
        let SocketAddr::V4(addr) = rig.art.local_addr().unwrap() else { unreachable!() };
        assert_eq!(rig.stats.artnet_targets.get(0, SocketAddr::V4(addr)), Some((5, 0)));
        assert_eq!(get(&rig.stats.artnet_late), 0);
    }

    /// Rates the Type cannot name go as the Type with the same labels (23.976 as Film, 29.97
    /// non-drop as SMPTE), drop-frame as DF across a dropped minute; half-rate pairs at 50 fps
    /// go once per pair (and after a locate onto a pair's second frame, once for it).
    #[test]
    fn every_carried_rate_goes_as_its_type_and_pairs_go_once() {
        use artnet_protocol::FrameType;
        // (rate, half_rate, frames pushed (playing, the first and `jump`s flagged), packets expected as
        // (label frame, label rate), Type)
        let cases = [
            (
                FrameRate::FPS_23_976,
                false,
                vec![(0, true), (1, false), (2, false)],
                vec![(0, FrameRate::FPS_23_976), (1, FrameRate::FPS_23_976), (2, FrameRate::FPS_23_976)],
                FrameType::Film,
            ),
            (
                FrameRate::FPS_29_97_NDF,
                false,
                vec![(1798, true), (1799, false), (1800, false)],
                vec![
                    (1798, FrameRate::FPS_29_97_NDF),
                    (1799, FrameRate::FPS_29_97_NDF),
                    (1800, FrameRate::FPS_29_97_NDF),
                ],
                FrameType::SMPTE,
            ),
            (
                // 00:00:59;28, ;29, then 00:01:00;02 (;00 and ;01 dropped).
                FrameRate::FPS_29_97_DF,
                false,
                vec![(1798, true), (1799, false), (1800, false)],
                vec![(1798, FrameRate::FPS_29_97_DF), (1799, FrameRate::FPS_29_97_DF), (1800, FrameRate::FPS_29_97_DF)],
                FrameType::DF,
            ),
            (
                // Pairs: 100+101 → 50 at 25 fps, 102+103 → 51; a locate onto 111 (second of its
                // pair) sends 55; 112 → 56, 113 is its pair.
                FrameRate::FPS_50,
                true,
                vec![(100, true), (101, false), (102, false), (103, false), (111, true), (112, false), (113, false)],
                vec![
                    (50, FrameRate::FPS_25),
                    (51, FrameRate::FPS_25),
                    (55, FrameRate::FPS_25),
                    (56, FrameRate::FPS_25),
                ],
                FrameType::EBU,
            ),
        ];
        for (rate, half_rate, frames, want, kind) in cases {
            let mut rig = artnet_rig(0, half_rate, 0, 0.0);
            let block_start = Instant::now();
            for &(frame, jump) in &frames {
                let event = frame_at(frame, rate, 0, true, jump);
                rig.producer
                    .push(FrameMessage { event, block_start, sample_rate: 48_000, block_len: 64, paced: false })
                    .unwrap();
            }
            for &(frame, _) in &frames {
                assert_eq!(recv(&rig.osc).2.frame, frame, "every frame goes as OSC at {rate}");
            }
            for &(n, at) in &want {
                let (_, tc) = recv_artnet(&rig.art);
                assert_eq!(label_of(&tc), label(n, at), "{rate}, half_rate {half_rate}");
                assert_eq!((tc.frame_type, tc.stream_id), (kind, 0), "{rate}");
            }
            rig.thread.stop();
            assert_eq!(rig.stats.artnet_sent.load(Ordering::Relaxed), want.len() as u64, "{rate}: no other packet");
            assert_eq!(rig.stats.artnet_rate_refused.load(Ordering::Relaxed), 0);
        }
    }

    /// 50 fps without half_rate: every frame goes as OSC, none as Art-Net, each counted.
    #[test]
    fn fifty_fps_without_half_rate_is_refused_and_counted() {
        let mut rig = artnet_rig(0, false, 0, 0.0);
        let block_start = Instant::now();
        for f in 0..3 {
            let event = frame_at(f, FrameRate::FPS_50, 0, true, f == 0);
            rig.producer
                .push(FrameMessage { event, block_start, sample_rate: 48_000, block_len: 64, paced: false })
                .unwrap();
        }
        for f in 0..3 {
            assert_eq!(recv(&rig.osc).2.frame, f);
        }
        rig.thread.stop();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        assert_eq!((get(&rig.stats.artnet_rate_refused), get(&rig.stats.artnet_sent)), (3, 0));
        // The thread has stopped: anything it had sent would be waiting in the socket.
        rig.art.set_nonblocking(true).unwrap();
        assert!(rig.art.recv(&mut [0u8; 64]).is_err(), "no Art-Net packet at 50 fps without half_rate");
    }

    /// While stopped, the parked frame goes again on Art-Net with every keep-alive.
    #[test]
    fn the_parked_frame_is_repeated_on_artnet_as_keepalive() {
        let mut rig = artnet_rig(0, false, 30, 0.0);
        let event = frame_at(42, FrameRate::FPS_25, 0, false, true);
        rig.producer
            .push(FrameMessage {
                event,
                block_start: Instant::now(),
                sample_rate: 48_000,
                block_len: 480,
                paced: false,
            })
            .unwrap();
        for i in 0..4 {
            let (_, tc) = recv_artnet(&rig.art);
            assert_eq!(label_of(&tc), label(42, FrameRate::FPS_25), "repeat {i}");
        }
        rig.thread.stop();
        assert!(rig.stats.keepalives.load(Ordering::Relaxed) >= 3);
        assert!(rig.stats.artnet_sent.load(Ordering::Relaxed) >= 4);
    }

    /// A frame already heard when it reaches the thread (an output latency below the host's
    /// block) goes at once, counted late, never dropped.
    #[test]
    fn a_frame_heard_before_it_is_sent_goes_at_once_and_is_counted_late() {
        let mut rig = artnet_rig(0, false, 0, -500.0);
        let event = frame_at(7, FrameRate::FPS_25, 0, true, true);
        rig.producer
            .push(FrameMessage {
                event,
                block_start: Instant::now(),
                sample_rate: 48_000,
                block_len: 480,
                paced: false,
            })
            .unwrap();
        let (_, tc) = recv_artnet(&rig.art);
        assert_eq!(label_of(&tc), label(7, FrameRate::FPS_25));
        rig.thread.stop();
        assert_eq!(rig.stats.artnet_late.load(Ordering::Relaxed), 1);
        assert_eq!(rig.stats.artnet_sent.load(Ordering::Relaxed), 1);
    }
}
