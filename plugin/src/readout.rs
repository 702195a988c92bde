//! What the plugin window reads from the threads that do the work, without ever making them wait.
//!
//! The window (`[gui-thread]`) is a reader only. Each writer owns its own part:
//! - [`Readout`]: the audio thread's latest frame and block count, in atomics it stores with
//!   `Relaxed` once per block (no allocation, no lock, no syscall);
//! - [`CueActivity`]: the cue thread's listen socket and its last few cues, behind two mutexes
//!   that only the cue thread and the window ever take (never the audio thread), each holding
//!   `Copy` data of fixed size, so neither side allocates under the lock;
//! - the counters that already exist: [`crate::network::Stats`] (audio and network threads) and
//!   [`crate::cues::CueStats`] (cue and audio threads).
//!
//! With the window closed nobody reads any of it; the writers' cost is a few relaxed stores per
//! block and one uncontended lock per cue.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use osc_timecode_core::clock::FrameEvent;
use osc_timecode_core::cue::{AckStatus, MAX_FANOUT};
use osc_timecode_core::{FrameRate, HostRate};

use crate::settings::cues::{CueAction, Exposure};
use crate::settings::values::MAX_PATTERN_LEN;

/// The audio thread's side of the window: what it last saw. `[thread-safe]`; allocated with the
/// plugin in `default()`, lives across re-activations.
#[derive(Debug)]
pub struct Readout {
    /// What [`Readout::block_start_ns`] counts from: when the instance was created. Never
    /// changes.
    anchor: Instant,
    /// When the latest block started processing, ns after `anchor`, plus one (0: no block yet).
    /// `[audio-thread]` stores once per block, after queueing its frames; the network thread loads
    /// it to wake just after the next block ([`Readout::next_block`]).
    block_start_ns: AtomicU64,
    /// The latest block's duration, its samples at its sample rate, ns. `[audio-thread]` stores
    /// once per block, before `block_start_ns`.
    block_ns: AtomicU64,
    /// The latest frame, its rate and flags, packed by [`Position::pack`] so a reader never mixes
    /// the frame of one block with the rate of another. `[audio-thread]` stores once per block
    /// that reports a frame; `[gui-thread]` loads.
    position: AtomicU64,
    /// `process()` calls since the instance was created. `[audio-thread]` increments once per
    /// block; the window tells from it whether the host is still running the plugin, the
    /// network thread whether to poll fast.
    blocks: AtomicU64,
    /// The host gave a transport position in the latest block. `[audio-thread]` stores once per
    /// block, after queueing the block's frames (`Release`); the window, and the network thread
    /// (no position: the parked frame is no longer known, so it is not repeated as keep-alive),
    /// load.
    has_position: AtomicBool,
    /// Between `activate()` and `deactivate()`. `[main-thread]` stores.
    active: AtomicBool,
    /// The host renders offline (bounce), as told in the latest `activate()`. `[main-thread]`
    /// stores.
    offline: AtomicBool,
    /// Sample rate of the latest activation, Hz. `[main-thread]` stores.
    sample_rate: AtomicU32,
    /// The project frame rate the host reported in the latest block, packed by
    /// [`pack_host_rate`] (0: none reported; CLAP hosts never report one). `[audio-thread]`
    /// stores once per block; the window and the network thread (which logs a disagreement)
    /// load.
    host_rate: AtomicU64,
    /// The host's sample rate the plugin refuses to run at, whole Hz (saturated; NaN is 0),
    /// packed by [`pack_refused_rate`] (0: none). `[main-thread]` stores at `activate()` (set when
    /// it refuses, cleared when it accepts); `[audio-thread]` stores once per block (set while a
    /// VST3 host's mid-stream change has made the transport's rate unusable); the window loads.
    refused_rate: AtomicU64,
}

/// The latest frame as the window shows it. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Absolute frame number, start offset included (the clock's [`FrameEvent::frame`]).
    /// Stored in 48 bits: ±1.4·10¹⁴ frames, 74 years at 60 fps; beyond that it saturates.
    pub frame: i64,
    /// The rate `frame` counts in.
    pub rate: FrameRate,
    /// The transport was rolling.
    pub playing: bool,
}

/// Bits of [`Position::frame`] in the packed word.
const FRAME_BITS: u32 = 48;
/// The largest frame the packed word holds.
const FRAME_MAX: i64 = (1 << (FRAME_BITS - 1)) - 1;
/// Set in a packed word that holds a position (so 0 means "no frame yet").
const VALID: u64 = 1 << 63;
/// Set when playing.
const PLAYING: u64 = 1 << 62;

impl Position {
    /// One word: frame in bits 0–47 (two's complement), rate index in bits 48–55, playing in
    /// bit 62, valid in bit 63.
    pub fn pack(self) -> u64 {
        let frame = self.frame.clamp(-FRAME_MAX, FRAME_MAX) as u64 & ((1 << FRAME_BITS) - 1);
        let rate = (self.rate.index() as u64) << FRAME_BITS;
        VALID | if self.playing { PLAYING } else { 0 } | rate | frame
    }

    /// The position in a word from [`Self::pack`]; `None` for 0 (nothing stored yet).
    pub fn unpack(word: u64) -> Option<Self> {
        if word & VALID == 0 {
            return None;
        }
        // Sign-extend the 48-bit frame.
        let frame = ((word << (64 - FRAME_BITS)) as i64) >> (64 - FRAME_BITS);
        let index = ((word >> FRAME_BITS) & 0xff) as usize;
        let rate = *FrameRate::ALL.get(index)?;
        Some(Self { frame, rate, playing: word & PLAYING != 0 })
    }
}

/// What the window reads from [`Readout`] at once. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadoutSnapshot {
    /// The latest frame; `None` before the first.
    pub position: Option<Position>,
    /// Blocks processed so far.
    pub blocks: u64,
    /// The host gave a position in the latest block.
    pub has_position: bool,
    /// Activated.
    pub active: bool,
    /// Rendering offline.
    pub offline: bool,
    /// Hz; 0 before the first activation.
    pub sample_rate: u32,
    /// The host's project frame rate in the latest block, if it reports one.
    pub host_rate: Option<HostRate>,
    /// The host's sample rate (whole Hz) if the plugin refuses to run at it: activation refused,
    /// or a mid-stream change to it (no timecode while it lasts).
    pub refused_rate: Option<u32>,
}

/// Set in a packed refused sample rate that holds one.
const REFUSED_VALID: u64 = 1 << 32;

/// One word: the sample rate `hz` rounded to whole Hz (saturating at 0 and `u32::MAX`; NaN is 0)
/// in bits 0–31, valid in bit 32; 0 for none.
pub fn pack_refused_rate(hz: Option<f32>) -> u64 {
    hz.map_or(0, |hz| REFUSED_VALID | u64::from(hz.round() as u32))
}

/// The rate in a word from [`pack_refused_rate`].
pub fn unpack_refused_rate(word: u64) -> Option<u32> {
    (word & REFUSED_VALID != 0).then_some(word as u32)
}

/// Set in a packed host rate that holds one.
const HOST_VALID: u64 = 1 << 63;
/// Set when the host rate is pulled down (× 1000/1001).
const HOST_PULL_DOWN: u64 = 1 << 33;
/// Set when the host said whether its rate is pulled down.
const HOST_PULL_DOWN_SAID: u64 = 1 << 34;
/// Set when the host rate counts drop-frame.
const HOST_DROP: u64 = 1 << 32;

/// One word: frames per second in bits 0–31, drop in bit 32, pull-down in bit 33, pull-down
/// said in bit 34, valid in bit 63; 0 for none.
pub fn pack_host_rate(rate: Option<HostRate>) -> u64 {
    rate.map_or(0, |r| {
        HOST_VALID
            | match r.pull_down {
                Some(true) => HOST_PULL_DOWN_SAID | HOST_PULL_DOWN,
                Some(false) => HOST_PULL_DOWN_SAID,
                None => 0,
            }
            | if r.drop { HOST_DROP } else { 0 }
            | u64::from(r.fps)
    })
}

/// The rate in a word from [`pack_host_rate`].
pub fn unpack_host_rate(word: u64) -> Option<HostRate> {
    (word & HOST_VALID != 0).then_some(HostRate {
        fps: word as u32,
        pull_down: (word & HOST_PULL_DOWN_SAID != 0).then_some(word & HOST_PULL_DOWN != 0),
        drop: word & HOST_DROP != 0,
    })
}

impl Default for Readout {
    fn default() -> Self {
        Self {
            anchor: Instant::now(),
            block_start_ns: AtomicU64::new(0),
            block_ns: AtomicU64::new(0),
            position: AtomicU64::default(),
            blocks: AtomicU64::default(),
            has_position: AtomicBool::default(),
            active: AtomicBool::default(),
            offline: AtomicBool::default(),
            sample_rate: AtomicU32::default(),
            host_rate: AtomicU64::default(),
            refused_rate: AtomicU64::default(),
        }
    }
}

impl Readout {
    /// `[audio-thread]` The block that started processing at `start` (`len` samples at
    /// `sample_rate` Hz) has queued its frames. Two relaxed stores.
    pub fn block_timing(&self, start: Instant, len: u32, sample_rate: u32) {
        let duration = u64::from(len) * 1_000_000_000 / u64::from(sample_rate.max(1));
        let since = start.saturating_duration_since(self.anchor).as_nanos().min(u128::from(u64::MAX - 1)) as u64;
        self.block_ns.store(duration, Ordering::Relaxed);
        self.block_start_ns.store(since + 1, Ordering::Relaxed);
    }

    /// `[network-thread]` When the next block is expected to start (the latest block's start
    /// plus its duration) and how long a block lasts; `None` before the first block.
    pub fn next_block(&self) -> Option<(Instant, Duration)> {
        let start = self.block_start_ns.load(Ordering::Relaxed).checked_sub(1)?;
        let duration = Duration::from_nanos(self.block_ns.load(Ordering::Relaxed));
        Some((self.anchor + Duration::from_nanos(start) + duration, duration))
    }

    /// `[main-thread]` From `activate()`.
    pub fn activated(&self, sample_rate: u32, offline: bool) {
        self.sample_rate.store(sample_rate, Ordering::Relaxed);
        self.offline.store(offline, Ordering::Relaxed);
        self.host_rate.store(0, Ordering::Relaxed);
        self.active.store(true, Ordering::Relaxed);
    }

    /// `[main-thread]` From `activate()`: whether it refused the host's sample rate `hz`.
    pub fn sample_rate_refused(&self, hz: Option<f32>) {
        self.refused_rate.store(pack_refused_rate(hz), Ordering::Relaxed);
    }

    /// `[audio-thread]` Once per block: the transport's sample rate if the plugin cannot use it
    /// (see [`Self::sample_rate_refused`]). One atomic store.
    pub fn block_sample_rate(&self, refused: Option<f32>) {
        self.refused_rate.store(pack_refused_rate(refused), Ordering::Relaxed);
    }

    /// `[main-thread]` From `deactivate()`.
    pub fn deactivated(&self) {
        self.active.store(false, Ordering::Relaxed);
    }

    /// `[audio-thread]` Once per block, after its frames are queued: whether the host gave a
    /// position, the block's last frame event, if any, and the project frame rate the host
    /// reported, if any. Atomic stores only.
    pub fn block(&self, has_position: bool, last: Option<&FrameEvent>, host_rate: Option<HostRate>) {
        self.blocks.fetch_add(1, Ordering::Relaxed);
        // Release: a network thread that sees this sees the block's frames in the ring too.
        self.has_position.store(has_position, Ordering::Release);
        self.host_rate.store(pack_host_rate(host_rate), Ordering::Relaxed);
        if let Some(event) = last {
            let position = Position { frame: event.frame, rate: event.rate, playing: event.playing };
            self.position.store(position.pack(), Ordering::Relaxed);
        }
    }

    /// `[gui-thread]` Everything at once.
    pub fn snapshot(&self) -> ReadoutSnapshot {
        ReadoutSnapshot {
            position: Position::unpack(self.position.load(Ordering::Relaxed)),
            blocks: self.blocks.load(Ordering::Relaxed),
            has_position: self.has_position(),
            active: self.active.load(Ordering::Relaxed),
            offline: self.offline.load(Ordering::Relaxed),
            sample_rate: self.sample_rate.load(Ordering::Relaxed),
            host_rate: self.host_rate(),
            refused_rate: unpack_refused_rate(self.refused_rate.load(Ordering::Relaxed)),
        }
    }

    /// `[thread-safe]` `process()` calls so far: the network thread polls faster while this
    /// moves (the host is processing, so the transport may start at any block).
    pub fn blocks(&self) -> u64 {
        self.blocks.load(Ordering::Relaxed)
    }

    /// `[thread-safe]` Whether the host gave a position in the latest block.
    pub fn has_position(&self) -> bool {
        self.has_position.load(Ordering::Acquire)
    }

    /// `[thread-safe]` The project frame rate the host reported in the latest block, if any.
    pub fn host_rate(&self) -> Option<HostRate> {
        unpack_host_rate(self.host_rate.load(Ordering::Relaxed))
    }
}

/// Cues kept for the window.
pub const RECENT_CUES: usize = 16;

/// The cue thread's side of the window. `[thread-safe]`: the cue thread writes, the window
/// reads; the audio thread never touches it. Allocated with the plugin in `default()`.
#[derive(Debug, Default)]
pub struct CueActivity {
    /// The listen socket's state. `[cue-thread]` writes on every bind attempt and when it stops.
    listen: Mutex<ListenState>,
    /// The last [`RECENT_CUES`] messages from allowed senders with a good token.
    /// `[cue-thread]` writes one per message.
    recent: Mutex<Recent>,
}

/// The cue input's socket as the window shows it. `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenState {
    /// The address the socket is bound to (the port the OS chose, for port 0).
    pub bound: Option<SocketAddr>,
    /// The latest failed bind: the configured address and why. Cleared by a successful bind.
    pub failure: Option<(SocketAddr, BindFailure)>,
    /// How far the cue input reaches, and whether the machine confined it to loopback.
    pub exposure: Exposure,
}

/// Why the listen socket could not be bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindFailure {
    /// Another program (or another instance) has the port.
    InUse,
    /// The address is not one of this machine's.
    NotAvailable,
    /// The OS refused (a port below 1024 without privileges).
    Denied,
    /// Anything else.
    Other,
}

impl BindFailure {
    /// The kind of a bind error.
    pub fn of(error: &std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::AddrInUse => Self::InUse,
            std::io::ErrorKind::AddrNotAvailable => Self::NotAvailable,
            std::io::ErrorKind::PermissionDenied => Self::Denied,
            _ => Self::Other,
        }
    }
}

/// One received cue message as the window shows it. `Copy`, fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentCue {
    /// Arrival number, counting from 1 over the instance's life.
    pub number: u64,
    /// When it arrived.
    pub at: Instant,
    /// Who sent it.
    pub from: SocketAddr,
    /// Its address (pattern), as received.
    pub address: ShortText,
    /// Timetagged (in a bundle with a time), not immediate.
    pub timetagged: bool,
    /// What the ack said.
    pub status: AckStatus,
    /// The MIDI it maps to, VALUE applied; the first `len` are used (none when refused before
    /// mapping).
    pub actions: [Option<CueAction>; MAX_FANOUT],
}

impl RecentCue {
    /// The mapped MIDI events.
    pub fn actions(&self) -> impl Iterator<Item = &CueAction> {
        self.actions.iter().flatten()
    }
}

/// Text of at most [`MAX_PATTERN_LEN`] bytes, stored inline. `Copy`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortText {
    /// The bytes; the first `len` are used.
    bytes: [u8; MAX_PATTERN_LEN],
    /// Bytes used.
    len: u16,
    /// The original was longer and was cut (at a character boundary).
    truncated: bool,
}

impl ShortText {
    /// `text`, cut to [`MAX_PATTERN_LEN`] bytes at a character boundary.
    pub fn new(text: &str) -> Self {
        let mut len = text.len().min(MAX_PATTERN_LEN);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut bytes = [0; MAX_PATTERN_LEN];
        bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self { bytes, len: len as u16, truncated: len < text.len() }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Cut at a character boundary of a `str`, so always UTF-8; never fails.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The original was longer.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl std::fmt::Debug for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}{}", self.as_str(), if self.truncated { "…" } else { "" })
    }
}

/// A ring of the last [`RECENT_CUES`] cues.
#[derive(Debug, Default)]
struct Recent {
    /// Slot `number % RECENT_CUES` holds cue `number`.
    slots: [Option<RecentCue>; RECENT_CUES],
    /// Cues recorded so far (the number of the latest).
    total: u64,
}

impl CueActivity {
    /// `[cue-thread]` The socket is bound to `local`.
    pub fn bound(&self, local: SocketAddr) {
        let mut listen = lock(&self.listen);
        (listen.bound, listen.failure) = (Some(local), None);
    }

    /// `[cue-thread]` Binding `configured` failed.
    pub fn bind_failed(&self, configured: SocketAddr, failure: BindFailure) {
        let mut listen = lock(&self.listen);
        (listen.bound, listen.failure) = (None, Some((configured, failure)));
    }

    /// `[cue-thread]` The settings in use reach this far.
    pub fn exposed(&self, exposure: Exposure) {
        lock(&self.listen).exposure = exposure;
    }

    /// `[cue-thread]` Not listening (stopped, or the input is disabled).
    pub fn closed(&self) {
        let mut listen = lock(&self.listen);
        (listen.bound, listen.failure) = (None, None);
    }

    /// `[gui-thread]` The socket's state.
    pub fn listen(&self) -> ListenState {
        *lock(&self.listen)
    }

    /// `[cue-thread]` Records one message; returns its number.
    pub fn record(&self, mut cue: RecentCue) -> u64 {
        let mut recent = lock(&self.recent);
        recent.total += 1;
        cue.number = recent.total;
        recent.slots[(cue.number % RECENT_CUES as u64) as usize] = Some(cue);
        cue.number
    }

    /// `[gui-thread]` The recorded cues numbered above `after`, newest first, into `out`
    /// (cleared first; at most [`RECENT_CUES`]).
    pub fn recent(&self, after: u64, out: &mut Vec<RecentCue>) {
        out.clear();
        let recent = lock(&self.recent);
        let oldest = recent.total.saturating_sub(RECENT_CUES as u64 - 1).max(after + 1);
        for number in (oldest..=recent.total).rev() {
            if let Some(cue) = recent.slots[(number % RECENT_CUES as u64) as usize] {
                out.push(cue);
            }
        }
    }

    /// `[gui-thread]` The number of the latest cue (0 before the first).
    pub fn latest(&self) -> u64 {
        lock(&self.recent).total
    }
}

/// A poisoned lock still holds valid `Copy` data: a panic elsewhere must not blank the window.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::values::{Channel, U7};

    #[test]
    fn the_next_block_is_predicted_from_the_latest_start_and_length() {
        let r = Readout::default();
        assert_eq!(r.next_block(), None, "no block yet");
        let start = Instant::now() + Duration::from_millis(5);
        r.block_timing(start, 480, 48_000);
        let (next, block) = r.next_block().expect("a block");
        assert_eq!(block, Duration::from_millis(10));
        let error = next.max(start + block) - next.min(start + block);
        assert!(error < Duration::from_micros(1), "{error:?}");
        // Sample rate 0 (never given, but never a division by zero) and a start before the anchor.
        r.block_timing(r.anchor - Duration::from_secs(1), 64, 0);
        assert_eq!(r.next_block().map(|(n, _)| n >= r.anchor), Some(true));
    }

    #[test]
    fn positions_round_trip_through_one_word() {
        for rate in FrameRate::ALL {
            for frame in [0, 1, -1, 90_000, -3_000, 5_183_999, FRAME_MAX, -FRAME_MAX] {
                for playing in [false, true] {
                    let p = Position { frame, rate, playing };
                    assert_eq!(Position::unpack(p.pack()), Some(p), "{p:?}");
                }
            }
        }
        assert_eq!(Position::unpack(0), None, "nothing stored yet");
        let huge = Position { frame: i64::MAX, rate: FrameRate::FPS_25, playing: true };
        assert_eq!(Position::unpack(huge.pack()).unwrap().frame, FRAME_MAX, "saturates");
        let bad_rate = VALID | (200 << FRAME_BITS);
        assert_eq!(Position::unpack(bad_rate), None);
    }

    #[test]
    fn refused_sample_rates_round_trip_through_one_word() {
        for (hz, whole) in [(7_999.0, 7_999), (0.0, 0), (59.4, 59), (f32::NAN, 0), (f32::INFINITY, u32::MAX), (-1.0, 0)]
        {
            assert_eq!(unpack_refused_rate(pack_refused_rate(Some(hz))), Some(whole), "{hz}");
        }
        assert_eq!(unpack_refused_rate(pack_refused_rate(None)), None);
        let readout = Readout::default();
        readout.sample_rate_refused(Some(7_999.0));
        assert_eq!(readout.snapshot().refused_rate, Some(7_999));
        readout.block_sample_rate(None);
        assert_eq!(readout.snapshot().refused_rate, None);
    }

    #[test]
    fn a_block_updates_the_snapshot() {
        let readout = Readout::default();
        assert_eq!(readout.snapshot().position, None);
        readout.activated(48_000, false);
        let event = FrameEvent {
            frame: 90_000,
            rate: FrameRate::FPS_25,
            offset: 0,
            playing: true,
            jump: false,
            looped: false,
            starts: true,
        };
        let host = HostRate { fps: 30, pull_down: Some(true), drop: true };
        readout.block(true, Some(&event), Some(host));
        assert_eq!(readout.snapshot().host_rate, Some(host));
        readout.block(false, None, None);
        let s = readout.snapshot();
        assert_eq!(s.position, Some(Position { frame: 90_000, rate: FrameRate::FPS_25, playing: true }));
        assert_eq!((s.blocks, s.has_position, s.active, s.offline, s.sample_rate), (2, false, true, false, 48_000));
        assert_eq!(s.host_rate, None, "the latest block reported no rate");
        readout.block(false, None, Some(host));
        readout.deactivated();
        assert!(!readout.snapshot().active);
        assert_eq!(readout.snapshot().host_rate, Some(host), "kept while inactive");
        readout.activated(48_000, false);
        assert_eq!(readout.snapshot().host_rate, None, "forgotten on activation");
    }

    #[test]
    fn host_rates_round_trip_through_one_word() {
        assert_eq!(unpack_host_rate(pack_host_rate(None)), None);
        assert_eq!(pack_host_rate(None), 0, "the atomic's default means none");
        for fps in [0, 1, 24, 25, 30, 48, 60, u32::MAX] {
            for (pull_down, drop) in [None, Some(false), Some(true)].into_iter().flat_map(|p| [(p, false), (p, true)]) {
                let r = HostRate { fps, pull_down, drop };
                assert_eq!(unpack_host_rate(pack_host_rate(Some(r))), Some(r), "{r:?}");
            }
        }
    }

    fn cue(address: &str) -> RecentCue {
        RecentCue {
            number: 0,
            at: Instant::now(),
            from: "127.0.0.1:9000".parse().unwrap(),
            address: ShortText::new(address),
            timetagged: false,
            status: AckStatus::Ok,
            actions: [None; MAX_FANOUT],
        }
    }

    #[test]
    fn recent_cues_keep_the_last_sixteen_newest_first() {
        let activity = CueActivity::default();
        let mut out = Vec::new();
        activity.recent(0, &mut out);
        assert!(out.is_empty());
        for i in 1..=20 {
            let mut c = cue(&format!("/cue/{i}"));
            c.actions[0] = Some(CueAction::Program { channel: Channel::ONE, program: U7::MAX });
            assert_eq!(activity.record(c), i);
        }
        activity.recent(0, &mut out);
        let addresses: Vec<&str> = out.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(addresses.len(), RECENT_CUES);
        assert_eq!((addresses[0], addresses[15]), ("/cue/20", "/cue/5"));
        assert_eq!(out[0].actions().count(), 1);
        activity.recent(18, &mut out);
        assert_eq!(out.iter().map(|c| c.number).collect::<Vec<_>>(), [20, 19]);
        activity.recent(20, &mut out);
        assert!(out.is_empty());
        assert_eq!(activity.latest(), 20);
    }

    #[test]
    fn long_addresses_are_cut_at_a_character_boundary() {
        let short = ShortText::new("/cue/intro");
        assert_eq!((short.as_str(), short.truncated()), ("/cue/intro", false));
        let long = format!("/{}", "é".repeat(200));
        let cut = ShortText::new(&long);
        assert!(cut.truncated());
        assert!(cut.as_str().len() <= MAX_PATTERN_LEN && long.starts_with(cut.as_str()));
        assert_eq!(cut.as_str().len(), MAX_PATTERN_LEN - 1, "one byte short of a split 'é'");
    }

    #[test]
    fn listen_state_follows_binds() {
        let activity = CueActivity::default();
        let addr: SocketAddr = "127.0.0.1:5005".parse().unwrap();
        activity.bind_failed(addr, BindFailure::InUse);
        assert_eq!(activity.listen().failure, Some((addr, BindFailure::InUse)));
        activity.bound(addr);
        assert_eq!(activity.listen(), ListenState { bound: Some(addr), ..ListenState::default() });
        activity.closed();
        assert_eq!(activity.listen(), ListenState::default());
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(BindFailure::of(&in_use), BindFailure::InUse);
        assert_eq!(BindFailure::of(&std::io::Error::other("x")), BindFailure::Other);
    }
}
