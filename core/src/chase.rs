//! The chase engine of `osc-timecode listen`: reconstructs the master's timeline from the
//! `/sync/timecode` packets it receives and says where it is at any moment.
//!
//! The timeline comes from each packet's **timetag and frame count**, never from when the packet
//! arrived: frame `F` is heard at timetag `T`, so at wall time `t` the master is at frame
//! `F + (t − T) · rate`. Network jitter changes arrival times only, so it never reaches the
//! position (it is measured and reported instead). This assumes the master's and the
//! receiver's clocks agree (the same machine, or NTP/PTP): timetags are wall-clock times. A bare
//! message (no bundle, so no timetag) falls back to its arrival time.
//!
//! States, explicit ([`ChaseState`]):
//! - **stopped**: the master reports a parked position (`playing` = 0);
//! - **locking**: frames are coming, but fewer than [`ChaseConfig::lock_frames`] have agreed
//!   in a row since the first frame or an unannounced discontinuity;
//! - **locked**: they agree; the position is extrapolated between packets;
//! - **freewheel**: locked, but no packet for more than two frame periods: the position keeps
//!   running from the last reference;
//! - **lost**: no packet for more than [`ChaseConfig::freewheel_frames`] frame periods.
//!
//! A frame flagged `jump` (locate, loop wrap, rate change) re-locks at once: it becomes the new
//! reference, and a locked chase stays locked. A discontinuity *without* the flag is treated as
//! untrusted: back to locking.
//!
//! One master at a time ([`Chase::on_packet_from`]): the chase follows the first source (address
//! and port) it hears and ignores timecode from any other, counting it ([`Readout::ignored`]),
//! rather than mixing two timelines. A master that falls silent is let go once the chase would call
//! it lost (more than [`ChaseConfig::freewheel_frames`] frame periods; [`PARKED_MASTER_TIMEOUT`]
//! when it was parked): the next source heard is followed from scratch (waiting, then locking).
//!
//! Pure: times are passed in as nanoseconds since the Unix epoch (`i128`), so tests drive it
//! with any clock.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::protocol::TimecodeMessage;
use crate::rate::FrameRate;
use crate::timecode::Timecode;

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;
/// Arrival-minus-timetag samples kept for the jitter figure.
pub const JITTER_WINDOW: usize = 128;
/// Frames received ahead of their time kept waiting, at most (a master a few blocks ahead).
pub const UPCOMING_MAX: usize = 64;
/// Other masters remembered, at most: each is reported once ([`PacketEffect::Ignored`]); more are
/// still ignored and counted, without a report.
pub const OTHER_MASTERS_MAX: usize = 8;
/// A parked master that has sent nothing for this long (ns) is let go: three of the default 1 s
/// keep-alives missed.
pub const PARKED_MASTER_TIMEOUT: i128 = 3 * NANOS;

/// Tuning of the chase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaseConfig {
    /// Consecutive agreeing frames needed to lock.
    pub lock_frames: u32,
    /// Frame periods without a packet before a locked chase is lost (it freewheels until then).
    pub freewheel_frames: u32,
}

impl Default for ChaseConfig {
    fn default() -> Self {
        Self { lock_frames: 3, freewheel_frames: 10 }
    }
}

/// Where the chase stands. The names ([`ChaseState::name`]) are public (JSON output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaseState {
    /// Nothing received yet.
    Waiting,
    /// The master is parked.
    Stopped,
    /// Frames are coming; not yet enough agree.
    Locking,
    /// Following the master.
    Locked,
    /// Locked, packets missing, extrapolating.
    Freewheel,
    /// Packets missing for too long.
    Lost,
}

impl ChaseState {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Stopped => "stopped",
            Self::Locking => "locking",
            Self::Locked => "locked",
            Self::Freewheel => "freewheel",
            Self::Lost => "lost",
        }
    }
}

/// What a packet did to the chase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketEffect {
    /// It followed the timeline.
    Followed,
    /// It carried the jump flag: new reference (`looped`: the host's loop wrapped).
    Jumped {
        /// The jump was a loop wrap.
        looped: bool,
    },
    /// It disagreed with the timeline without a jump flag: back to locking.
    Discontinuity,
    /// The master parked (or repeated its parked position).
    Parked,
    /// An old packet (sequence number already seen): ignored.
    Stale,
    /// Timecode from another master than the one followed: ignored.
    Ignored {
        /// The first packet from this source (reported once; at most [`OTHER_MASTERS_MAX`]).
        new_source: bool,
    },
}

/// The chase's view at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Readout {
    /// State.
    pub state: ChaseState,
    /// The master's frame now (absolute count), if known.
    pub frame: Option<i64>,
    /// The master's rate, once a packet came.
    pub rate: Option<FrameRate>,
    /// Packets received from the master followed (and used: not stale).
    pub received: u64,
    /// Packets missing by sequence number.
    pub lost: u64,
    /// Peak-to-peak of arrival − timetag over the last [`JITTER_WINDOW`] packets, ns.
    pub jitter_ns: u64,
    /// The master followed (source address and port), once one is heard.
    pub master: Option<SocketAddr>,
    /// Packets from the master with a sequence number already seen (duplicates, reordering).
    pub stale: u64,
    /// Valid timecode packets from other masters.
    pub ignored: u64,
    /// Datagrams that were not valid timecode ([`Chase::on_invalid`]).
    pub invalid: u64,
}

impl Readout {
    /// The label of [`Readout::frame`] at the master's rate.
    pub fn label(&self) -> Option<String> {
        Some(Timecode::from_frame(self.frame?, self.rate?).label().to_string())
    }

    /// Lost packets as a fraction of those sent (0 when none were expected).
    pub fn loss(&self) -> f64 {
        let sent = self.received.saturating_add(self.lost);
        if sent == 0 { 0.0 } else { self.lost as f64 / sent as f64 }
    }
}

/// The engine. Owned by one thread (the listener's).
#[derive(Debug, Clone)]
pub struct Chase {
    /// Tuning.
    config: ChaseConfig,
    /// State as of the last packet or tick.
    state: ChaseState,
    /// The master's rate.
    rate: Option<FrameRate>,
    /// The timeline in force: frame `.0` is heard at `.1` ns (wall clock), playing.
    reference: Option<(i64, i128)>,
    /// References that arrived before their time (a master sends ahead of playback), oldest
    /// first: each takes over when its time comes, so a jump shows when it is heard. At most
    /// [`UPCOMING_MAX`].
    upcoming: VecDeque<(i64, i128)>,
    /// The parked frame while stopped.
    parked: Option<i64>,
    /// Agreeing frames in a row since the last untrusted discontinuity.
    agreeing: u32,
    /// Highest sequence number seen.
    last_seq: Option<i64>,
    /// Packets received.
    received: u64,
    /// Packets missing by sequence number.
    lost: u64,
    /// Arrival of the last playing packet, ns.
    last_arrival: Option<i128>,
    /// Recent arrival − timetag, ns.
    transit: VecDeque<i128>,
    /// The source followed, once one is heard through [`Chase::on_packet_from`].
    master: Option<SocketAddr>,
    /// Arrival of the master's last packet (any: playing, parked or stale), ns.
    master_heard: Option<i128>,
    /// Other sources heard, for one report each; at most [`OTHER_MASTERS_MAX`].
    others: Vec<SocketAddr>,
    /// Stale packets from the master.
    stale: u64,
    /// Packets from other masters.
    ignored: u64,
    /// Datagrams that were not timecode.
    invalid: u64,
    /// Bumped on every break of the timeline: a jump or loop, an unannounced discontinuity, a
    /// park or a new parked frame, a new master ([`ChaseSnapshot::generation`]).
    generation: u64,
    /// When the timeline of [`Chase::generation`] begins to be heard, ns (wall clock): the heard
    /// time of the packet that started it.
    generation_since: i128,
}

/// A `Copy` view of the chase's timeline for the outputs that follow it (LTC, MTC, Art-Net):
/// where frames start, and a counter that changes whenever the timeline breaks. Taken with
/// [`Chase::snapshot`], as of the last packet or [`Chase::tick`].
///
/// Pure functions of the fields: [`ChaseSnapshot::start_of`] (the first whole nanosecond of a
/// frame, as [`Chase::time_of_frame`]) and [`ChaseSnapshot::frame_at`] (the frame heard at an
/// instant), exact integer arithmetic, consistent: `frame_at(start_of(f)) == f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChaseSnapshot {
    /// The chase's state. [thread-safe] (`Copy`).
    pub state: ChaseState,
    /// The master's rate, once a packet came. [thread-safe].
    pub rate: Option<FrameRate>,
    /// The timeline while playing: frame `.0` is heard at `.1` ns since the epoch (the latest
    /// reference, also one not yet in force, as [`Chase::time_of_frame`]). [thread-safe].
    pub reference: Option<(i64, i128)>,
    /// The parked frame while the master is stopped. [thread-safe].
    pub parked: Option<i64>,
    /// Changes on every break of the timeline (jump, loop, discontinuity, park, new parked
    /// frame, new master); equal generations are one continuous timeline. [thread-safe].
    pub generation: u64,
    /// When this generation's timeline begins to be heard, ns since the epoch (a jump sent ahead
    /// of playback takes over then). [thread-safe].
    pub since: i128,
}

impl ChaseSnapshot {
    /// Whether frames are running on a timeline outputs should follow: locked or freewheeling,
    /// with a reference and a rate.
    pub fn playing(&self) -> bool {
        matches!(self.state, ChaseState::Locked | ChaseState::Freewheel)
            && self.reference.is_some()
            && self.rate.is_some()
    }

    /// The first whole nanosecond of `frame` on the timeline (rounded up), `None` without a
    /// reference or rate. Whatever the state: callers check [`ChaseSnapshot::playing`].
    pub fn start_of(&self, frame: i64) -> Option<i128> {
        let ((f, t), rate) = (self.reference?, self.rate?);
        let n = (i128::from(frame) - i128::from(f)) * NANOS * i128::from(rate.den());
        let d = i128::from(rate.num());
        Some(t + n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0))
    }

    /// The frame heard at `t` ns on the timeline (floored; saturating at the ends of `i64`),
    /// `None` without a reference or rate.
    pub fn frame_at(&self, t: i128) -> Option<i64> {
        let ((f, heard), rate) = (self.reference?, self.rate?);
        let t = t.clamp(heard - (1 << 100), heard + (1 << 100));
        Some(f.saturating_add(frames_between(heard, t, rate)))
    }
}

impl Chase {
    /// A chase waiting for its first packet.
    pub fn new(config: ChaseConfig) -> Self {
        Self {
            config,
            state: ChaseState::Waiting,
            rate: None,
            reference: None,
            upcoming: VecDeque::new(),
            parked: None,
            agreeing: 0,
            last_seq: None,
            received: 0,
            lost: 0,
            last_arrival: None,
            transit: VecDeque::with_capacity(JITTER_WINDOW),
            master: None,
            master_heard: None,
            others: Vec::with_capacity(OTHER_MASTERS_MAX),
            stale: 0,
            ignored: 0,
            invalid: 0,
            generation: 0,
            generation_since: 0,
        }
    }

    /// The timeline as the outputs follow it, as of the last packet or [`Chase::tick`].
    pub fn snapshot(&self) -> ChaseSnapshot {
        ChaseSnapshot {
            state: self.state,
            rate: self.rate,
            reference: self.upcoming.back().copied().or(self.reference),
            parked: if self.state == ChaseState::Stopped { self.parked } else { None },
            generation: self.generation,
            since: self.generation_since,
        }
    }

    /// Starts a new generation of the timeline, heard from `since` ns.
    fn break_timeline(&mut self, since: i128) {
        self.generation = self.generation.wrapping_add(1);
        self.generation_since = since;
    }

    /// Feeds one packet from `from`, following one master at a time (see the module docs): the
    /// first source heard is followed; packets from others are counted and ignored until the
    /// master falls silent (lost, or parked and silent for [`PARKED_MASTER_TIMEOUT`]), and then
    /// the next source heard is followed from scratch. Otherwise as [`Chase::on_packet`].
    pub fn on_packet_from(
        &mut self,
        from: SocketAddr,
        msg: &TimecodeMessage,
        timetag_ns: Option<i128>,
        arrival_ns: i128,
    ) -> PacketEffect {
        if let Some(master) = self.master
            && master != from
        {
            if !self.master_silent(arrival_ns) {
                self.ignored = self.ignored.saturating_add(1);
                let new_source = !self.others.contains(&from) && self.others.len() < OTHER_MASTERS_MAX;
                if new_source {
                    self.others.push(from);
                }
                return PacketEffect::Ignored { new_source };
            }
            self.hand_over();
        }
        self.others.retain(|o| *o != from);
        self.master = Some(from);
        self.master_heard = Some(arrival_ns);
        self.on_packet(msg, timetag_ns, arrival_ns)
    }

    /// Counts a datagram that was not valid timecode (garbage, another address): it changes
    /// nothing else.
    pub fn on_invalid(&mut self) {
        self.invalid = self.invalid.saturating_add(1);
    }

    /// The master followed, if any.
    pub fn master(&self) -> Option<SocketAddr> {
        self.master
    }

    /// Whether the master has been silent long enough at `now_ns` to be let go: longer than the
    /// chase waits before calling it lost, or [`PARKED_MASTER_TIMEOUT`] while it is parked.
    fn master_silent(&self, now_ns: i128) -> bool {
        let Some(heard) = self.master_heard else { return true };
        let limit = match (self.state, self.rate) {
            (ChaseState::Stopped, _) | (_, None) => PARKED_MASTER_TIMEOUT,
            (_, Some(rate)) => {
                NANOS * i128::from(rate.den()) / i128::from(rate.num()) * (i128::from(self.config.freewheel_frames) + 1)
            }
        };
        now_ns.saturating_sub(heard) > limit
    }

    /// Forgets the silent master's timeline (the counters stay): the next packet starts afresh.
    fn hand_over(&mut self) {
        self.state = ChaseState::Waiting;
        self.rate = None;
        self.reference = None;
        self.upcoming.clear();
        self.parked = None;
        self.agreeing = 0;
        self.last_seq = None;
        self.last_arrival = None;
        self.transit.clear();
        self.master = None;
        self.master_heard = None;
        let since = self.generation_since;
        self.break_timeline(since);
    }

    /// Feeds one packet, trusting it comes from the master (one source; with several, use
    /// [`Chase::on_packet_from`]): `timetag_ns` is its bundle's timetag (wall clock, ns since the
    /// epoch), `None` for a bare message; `arrival_ns` when it arrived (same clock).
    pub fn on_packet(&mut self, msg: &TimecodeMessage, timetag_ns: Option<i128>, arrival_ns: i128) -> PacketEffect {
        // Sequence numbers are whatever the sender put on the wire: differences in u64, counts
        // saturating, so no value overflows (fuzz target listen_decode).
        match self.last_seq {
            // A much lower sequence number is a restarted master; a slightly lower one is late.
            Some(last) if msg.seq <= last && last.abs_diff(msg.seq) < 1000 => {
                self.stale = self.stale.saturating_add(1);
                return PacketEffect::Stale;
            }
            Some(last) if msg.seq > last => self.lost = self.lost.saturating_add(msg.seq.abs_diff(last) - 1),
            _ => {}
        }
        self.last_seq = Some(msg.seq);
        self.received = self.received.saturating_add(1);
        let heard = timetag_ns.unwrap_or(arrival_ns);
        if timetag_ns.is_some() {
            if self.transit.len() == JITTER_WINDOW {
                self.transit.pop_front();
            }
            self.transit.push_back(arrival_ns - heard);
        }
        let rate = msg.rate();
        let rate_changed = self.rate.is_some_and(|r| r != rate);
        self.rate = Some(rate);
        if !msg.playing {
            if self.state != ChaseState::Stopped || self.parked != Some(msg.frame) {
                self.break_timeline(heard);
            }
            self.state = ChaseState::Stopped;
            self.parked = Some(msg.frame);
            self.reference = None;
            self.upcoming.clear();
            self.agreeing = 0;
            self.last_arrival = None;
            return PacketEffect::Parked;
        }
        // A master rolling from where it was parked (the parked frame or the next) continues the
        // position everyone already agreed on: locked at once, so outputs resume on the first
        // frame after play instead of `lock_frames` later (issue 17).
        let resumed = self.state == ChaseState::Stopped && self.parked.is_some_and(|p| p.abs_diff(msg.frame) <= 1);
        self.parked = None;
        let was = self.state;
        self.last_arrival = Some(arrival_ns);
        let latest = self.upcoming.back().copied().or(self.reference);
        let expected = latest.map(|(f, t)| f.saturating_add(frames_between(t, heard, rate)));
        let effect = if msg.jump || rate_changed {
            PacketEffect::Jumped { looped: msg.looped }
        } else if expected.is_some_and(|e| e.abs_diff(msg.frame) <= 1) {
            PacketEffect::Followed
        } else {
            PacketEffect::Discontinuity
        };
        if effect != PacketEffect::Followed || was == ChaseState::Stopped {
            self.break_timeline(heard);
        }
        if heard <= arrival_ns {
            // Already due: in force now (after anything due before it).
            self.promote(arrival_ns);
            self.reference = Some((msg.frame, heard));
        } else {
            if self.upcoming.len() == UPCOMING_MAX {
                self.upcoming.pop_front();
            }
            self.upcoming.push_back((msg.frame, heard));
        }
        match effect {
            PacketEffect::Followed => self.agreeing = self.agreeing.saturating_add(1),
            PacketEffect::Jumped { .. } if matches!(was, ChaseState::Locked | ChaseState::Freewheel) => {
                self.agreeing = self.config.lock_frames;
            }
            _ if resumed => self.agreeing = self.config.lock_frames,
            _ => self.agreeing = 1,
        }
        self.state = if self.agreeing >= self.config.lock_frames { ChaseState::Locked } else { ChaseState::Locking };
        effect
    }

    /// The view at `now_ns` (wall clock): updates freewheel and lost from the time since the last
    /// packet, and extrapolates the position.
    pub fn tick(&mut self, now_ns: i128) -> Readout {
        self.promote(now_ns);
        if let (Some(rate), Some(last)) = (self.rate, self.last_arrival)
            && matches!(self.state, ChaseState::Locked | ChaseState::Freewheel | ChaseState::Locking)
        {
            let period = NANOS * i128::from(rate.den()) / i128::from(rate.num());
            let silent = now_ns - last;
            if silent > period * (i128::from(self.config.freewheel_frames) + 1) {
                self.state = ChaseState::Lost;
                self.agreeing = 0;
            } else if silent > 2 * period && self.state != ChaseState::Locking {
                self.state = ChaseState::Freewheel;
            } else if self.state == ChaseState::Freewheel {
                self.state = ChaseState::Locked;
            }
        }
        let frame = match self.state {
            ChaseState::Stopped => self.parked,
            ChaseState::Locked | ChaseState::Freewheel | ChaseState::Locking => {
                self.reference.zip(self.rate).map(|((f, t), rate)| f.saturating_add(frames_between(t, now_ns, rate)))
            }
            ChaseState::Waiting | ChaseState::Lost => None,
        };
        Readout {
            state: self.state,
            frame,
            rate: self.rate,
            received: self.received,
            lost: self.lost,
            jitter_ns: self.jitter_ns(),
            master: self.master,
            stale: self.stale,
            ignored: self.ignored,
            invalid: self.invalid,
        }
    }

    /// When `frame` is (or was) heard on the master's timeline, ns since the epoch: `None` unless
    /// locked. Uses the latest reference, also one not yet in force.
    pub fn time_of_frame(&self, frame: i64) -> Option<i128> {
        if self.state != ChaseState::Locked {
            return None;
        }
        self.snapshot().start_of(frame)
    }

    /// Puts the upcoming references whose time has come in force.
    fn promote(&mut self, now_ns: i128) {
        while let Some(&(f, t)) = self.upcoming.front() {
            if t > now_ns {
                break;
            }
            self.reference = Some((f, t));
            self.upcoming.pop_front();
        }
    }

    /// Peak-to-peak transit time over the window, ns.
    fn jitter_ns(&self) -> u64 {
        let (min, max) = self.transit.iter().fold((i128::MAX, i128::MIN), |(lo, hi), &d| (lo.min(d), hi.max(d)));
        if min > max { 0 } else { u64::try_from(max - min).unwrap_or(u64::MAX) }
    }
}

/// A wall-clock time as the chase counts it: nanoseconds since the Unix epoch (negative before).
pub fn unix_nanos(t: std::time::SystemTime) -> i128 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Whole frames from `from` to `to` (ns) at `rate`, floored (negative when `to` is earlier).
fn frames_between(from: i128, to: i128, rate: FrameRate) -> i64 {
    let n = (to - from) * i128::from(rate.num());
    let d = NANOS * i128::from(rate.den());
    i64::try_from(n.div_euclid(d)).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: FrameRate = FrameRate::FPS_25;
    const PERIOD: i128 = 40_000_000;
    const T0: i128 = 1_700_000_000 * NANOS;

    /// A master sending frame `frame` heard at `T0 + (frame − first) · period`.
    struct Master {
        seq: i64,
        first: i64,
    }

    impl Master {
        fn frame(&mut self, frame: i64, jump: bool) -> (TimecodeMessage, i128) {
            let msg = TimecodeMessage::new(frame, RATE, true, self.seq, jump, false);
            self.seq += 1;
            (msg, T0 + i128::from(frame - self.first) * PERIOD)
        }
    }

    #[test]
    fn locks_after_three_frames_and_ignores_arrival_jitter() {
        let mut chase = Chase::new(ChaseConfig::default());
        let mut m = Master { seq: 0, first: 90_000 };
        let jitter = [3_000_000i128, 0, 7_000_000, 1_000_000, 5_000_000];
        for i in 0..5 {
            let (msg, heard) = m.frame(90_000 + i, i == 0);
            // Sent 20 ms before it is heard, arriving with up to 7 ms of jitter.
            let arrival = heard - 20_000_000 + jitter[i as usize];
            chase.on_packet(&msg, Some(heard), arrival);
            let r = chase.tick(arrival);
            let want = if i < 2 { ChaseState::Locking } else { ChaseState::Locked };
            assert_eq!(r.state, want, "after frame {i}");
        }
        // Half a frame after frame 90_004 is heard: still frame 90_004, whatever the arrivals were.
        let r = chase.tick(T0 + 4 * PERIOD + PERIOD / 2);
        assert_eq!(r.frame, Some(90_004));
        assert_eq!(r.label().as_deref(), Some("01:00:00:04"));
        assert_eq!(r.jitter_ns, 7_000_000);
        assert_eq!((r.received, r.lost), (5, 0));
        // Exactly on a frame boundary: the new frame.
        assert_eq!(chase.tick(T0 + 5 * PERIOD).frame, Some(90_005));
    }

    #[test]
    fn rolling_from_the_parked_frame_locks_at_once_and_elsewhere_locks_again() {
        let mut chase = Chase::new(ChaseConfig::default());
        let mut m = Master { seq: 0, first: 0 };
        for i in 0..3 {
            let (msg, heard) = m.frame(i, i == 0);
            chase.on_packet(&msg, Some(heard), heard);
        }
        // Parked on frame 3, then rolling from it: the position everyone agreed on goes on.
        let parked = TimecodeMessage::new(3, RATE, false, 10, false, false);
        chase.on_packet(&parked, Some(T0 + 3 * PERIOD), T0 + 3 * PERIOD);
        assert_eq!(chase.tick(T0 + 3 * PERIOD).state, ChaseState::Stopped);
        let generation = chase.snapshot().generation;
        let (msg, heard) = (TimecodeMessage::new(3, RATE, true, 11, false, false), T0 + 40 * PERIOD);
        chase.on_packet(&msg, Some(heard), heard);
        assert_eq!(chase.tick(heard).state, ChaseState::Locked, "rolling from the parked frame");
        assert_ne!(chase.snapshot().generation, generation, "a new timeline for the outputs");
        // Parked again, then a roll from somewhere else: that must be agreed on first.
        let parked = TimecodeMessage::new(9, RATE, false, 12, false, false);
        chase.on_packet(&parked, Some(heard + 6 * PERIOD), heard + 6 * PERIOD);
        let (msg, later) = (TimecodeMessage::new(500, RATE, true, 13, false, false), heard + 50 * PERIOD);
        chase.on_packet(&msg, Some(later), later);
        assert_eq!(chase.tick(later).state, ChaseState::Locking, "rolling from elsewhere");
    }

    #[test]
    fn freewheels_through_missing_frames_then_is_lost() {
        let mut chase = Chase::new(ChaseConfig { lock_frames: 3, freewheel_frames: 5 });
        let mut m = Master { seq: 0, first: 0 };
        for i in 0..3 {
            let (msg, heard) = m.frame(i, i == 0);
            chase.on_packet(&msg, Some(heard), heard);
        }
        let last = T0 + 2 * PERIOD;
        assert_eq!(chase.tick(last + PERIOD).state, ChaseState::Locked);
        let r = chase.tick(last + 3 * PERIOD);
        assert_eq!((r.state, r.frame), (ChaseState::Freewheel, Some(5)));
        assert_eq!(chase.tick(last + 6 * PERIOD).state, ChaseState::Freewheel);
        let r = chase.tick(last + 6 * PERIOD + 1);
        assert_eq!((r.state, r.frame), (ChaseState::Lost, None));
        // Packets return on the same timeline after a gap in sequence numbers: the gap is
        // counted, and the chase locks again from scratch.
        m.seq += 10;
        let (msg, heard) = m.frame(20, false);
        assert_eq!(chase.on_packet(&msg, Some(heard), heard), PacketEffect::Followed);
        let r = chase.tick(heard);
        assert_eq!((r.state, r.lost), (ChaseState::Locking, 10));
    }

    #[test]
    fn flagged_jumps_and_loops_relock_at_once_unflagged_ones_do_not() {
        let mut chase = Chase::new(ChaseConfig::default());
        let mut m = Master { seq: 0, first: 0 };
        for i in 0..4 {
            let (msg, heard) = m.frame(i, i == 0);
            chase.on_packet(&msg, Some(heard), heard);
        }
        // A loop back to frame 0, heard one period after frame 3.
        let msg = TimecodeMessage::new(0, RATE, true, m.seq, true, true);
        m.seq += 1;
        let heard = T0 + 4 * PERIOD;
        assert_eq!(chase.on_packet(&msg, Some(heard), heard), PacketEffect::Jumped { looped: true });
        let r = chase.tick(heard + PERIOD / 2);
        assert_eq!((r.state, r.frame), (ChaseState::Locked, Some(0)));
        // A jump with no flag: untrusted.
        let msg = TimecodeMessage::new(500, RATE, true, m.seq, false, false);
        assert_eq!(chase.on_packet(&msg, Some(heard + PERIOD), heard + PERIOD), PacketEffect::Discontinuity);
        assert_eq!(chase.tick(heard + PERIOD).state, ChaseState::Locking);
    }

    #[test]
    fn frames_sent_ahead_take_over_when_they_are_heard() {
        let mut chase = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 10 });
        let lead = 60_000_000; // a master 1.5 frames ahead of playback
        let first = TimecodeMessage::new(100, RATE, true, 0, true, false);
        chase.on_packet(&first, Some(T0), T0 - lead);
        assert_eq!(chase.tick(T0 - lead).frame, None, "nothing before the first frame is heard");
        assert_eq!(chase.tick(T0).frame, Some(100));
        // A locate to 5000, heard at T0 + 2 periods, arrives at T0 + 0.5 period: frame 100 and
        // 101 still play until then; never 4999.
        let jump = TimecodeMessage::new(5000, RATE, true, 1, true, false);
        chase.on_packet(&jump, Some(T0 + 2 * PERIOD), T0 + 2 * PERIOD - lead);
        assert_eq!(chase.tick(T0 + PERIOD).frame, Some(101));
        assert_eq!(chase.tick(T0 + 2 * PERIOD - 1).frame, Some(101));
        assert_eq!(chase.tick(T0 + 2 * PERIOD).frame, Some(5000));
    }

    #[test]
    fn the_time_of_a_frame_once_locked() {
        let mut chase = Chase::new(ChaseConfig::default());
        let mut m = Master { seq: 0, first: 0 };
        let (msg, heard) = m.frame(0, true);
        chase.on_packet(&msg, Some(heard), heard);
        assert_eq!(chase.time_of_frame(10), None, "not locked yet");
        for i in 1..3 {
            let (msg, heard) = m.frame(i, false);
            chase.on_packet(&msg, Some(heard), heard);
        }
        assert_eq!(chase.time_of_frame(10), Some(T0 + 10 * PERIOD));
        assert_eq!(chase.time_of_frame(-1), Some(T0 - PERIOD));
        // At 29.97 a frame lasts 33,366,666.67 ns: rounded up to whole nanoseconds.
        let mut ntsc = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 10 });
        ntsc.on_packet(&TimecodeMessage::new(0, FrameRate::FPS_29_97_NDF, true, 0, true, false), Some(T0), T0);
        assert_eq!(ntsc.time_of_frame(1), Some(T0 + 33_366_667));
        assert_eq!(ntsc.time_of_frame(3), Some(T0 + 100_100_000));
    }

    #[test]
    fn parked_positions_stale_packets_and_bare_messages() {
        let mut chase = Chase::new(ChaseConfig::default());
        assert_eq!(chase.tick(T0).state, ChaseState::Waiting);
        let parked = TimecodeMessage::new(1234, RATE, false, 5, true, false);
        assert_eq!(chase.on_packet(&parked, Some(T0), T0), PacketEffect::Parked);
        let r = chase.tick(T0 + 10 * NANOS);
        assert_eq!((r.state, r.frame), (ChaseState::Stopped, Some(1234)), "parked does not run or get lost");
        assert_eq!(chase.on_packet(&parked, Some(T0), T0), PacketEffect::Stale, "same sequence number");
        // A bare message: its arrival stands in for the timetag, and no jitter sample is taken.
        let bare = TimecodeMessage::new(10, RATE, true, 6, true, false);
        chase.on_packet(&bare, None, T0 + NANOS);
        let r = chase.tick(T0 + NANOS + PERIOD);
        assert_eq!(r.frame, Some(11));
        assert_eq!(r.jitter_ns, 0);
    }

    fn source(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn a_second_master_is_ignored_and_counted_not_mixed_in() {
        let mut chase = Chase::new(ChaseConfig::default());
        let (a, b) = (source(40_000), source(40_001));
        let mut ma = Master { seq: 0, first: 0 };
        // B plays another timeline (frame 90,000 on) with its own sequence numbers, interleaved.
        let mut mb = Master { seq: 500, first: 90_000 - 10 };
        let mut reports = 0;
        for i in 0..10 {
            let (msg, heard) = ma.frame(i, i == 0);
            assert!(!matches!(chase.on_packet_from(a, &msg, Some(heard), heard), PacketEffect::Ignored { .. }));
            let (msg, heard_b) = mb.frame(90_000 + i, i == 0);
            match chase.on_packet_from(b, &msg, Some(heard_b), heard + PERIOD / 2) {
                PacketEffect::Ignored { new_source } => reports += usize::from(new_source),
                other => panic!("B's packet {i} moved the chase: {other:?}"),
            }
        }
        assert_eq!(reports, 1, "B is reported once");
        let r = chase.tick(T0 + 9 * PERIOD + PERIOD / 2);
        assert_eq!((r.state, r.frame, r.master), (ChaseState::Locked, Some(9), Some(a)));
        assert_eq!((r.received, r.lost, r.ignored, r.stale, r.invalid), (10, 0, 10, 0, 0));
        // Packets from the master's address on another port are another master.
        let (msg, heard) = mb.frame(90_010, false);
        assert_eq!(
            chase.on_packet_from(source(40_002), &msg, Some(heard), T0 + 10 * PERIOD),
            PacketEffect::Ignored { new_source: true }
        );
    }

    #[test]
    fn other_masters_are_reported_up_to_a_bound_and_all_counted() {
        let mut chase = Chase::new(ChaseConfig::default());
        let msg = TimecodeMessage::new(0, RATE, true, 0, true, false);
        chase.on_packet_from(source(1), &msg, Some(T0), T0);
        let mut reports = 0;
        for port in 2..1000 {
            if let PacketEffect::Ignored { new_source: true } = chase.on_packet_from(source(port), &msg, Some(T0), T0) {
                reports += 1;
            }
        }
        assert_eq!(reports, OTHER_MASTERS_MAX);
        assert_eq!(chase.tick(T0).ignored, 998);
    }

    #[test]
    fn a_silent_master_is_let_go_when_lost_and_the_next_one_is_followed_from_scratch() {
        let config = ChaseConfig { lock_frames: 3, freewheel_frames: 10 };
        let mut chase = Chase::new(config);
        let (a, b) = (source(40_000), source(40_001));
        let mut ma = Master { seq: 1000, first: 0 };
        for i in 0..5 {
            let (msg, heard) = ma.frame(i, i == 0);
            chase.on_packet_from(a, &msg, Some(heard), heard);
        }
        let last_a = T0 + 4 * PERIOD;
        // B restarted with low sequence numbers: not stale, a master of its own. Its frame 100
        // is heard when it arrives, as A would be lost (11 periods after A's last packet).
        let mut mb = Master { seq: 0, first: 85 };
        let lost_after = 11 * PERIOD;
        let (msg, heard) = mb.frame(100, false);
        assert_eq!(heard, last_a + lost_after);
        assert_eq!(
            chase.on_packet_from(b, &msg, Some(heard), heard),
            PacketEffect::Ignored { new_source: true },
            "A is freewheeling, not lost yet"
        );
        assert_eq!(chase.tick(heard).state, ChaseState::Freewheel);
        for i in 101..=102 {
            let (msg, heard) = mb.frame(i, false);
            let effect = chase.on_packet_from(b, &msg, Some(heard), heard);
            assert!(!matches!(effect, PacketEffect::Ignored { .. }), "frame {i} after A is lost: {effect:?}");
            let r = chase.tick(heard);
            assert_eq!((r.master, r.state), (Some(b), ChaseState::Locking), "from scratch: {i}");
        }
        let (msg, heard) = mb.frame(103, false);
        chase.on_packet_from(b, &msg, Some(heard), heard);
        let r = chase.tick(heard);
        assert_eq!((r.state, r.frame), (ChaseState::Locked, Some(103)));
        assert_eq!((r.received, r.ignored, r.lost), (8, 1, 0), "counts carry over; no loss across masters");
        // A comes back: now it is the other one.
        let (msg, _) = ma.frame(20, false);
        assert_eq!(chase.on_packet_from(a, &msg, Some(heard), heard), PacketEffect::Ignored { new_source: true });
    }

    #[test]
    fn a_parked_master_is_kept_for_its_keepalives_then_let_go() {
        let mut chase = Chase::new(ChaseConfig::default());
        let (a, b) = (source(1), source(2));
        let parked = TimecodeMessage::new(1234, RATE, false, 0, true, false);
        chase.on_packet_from(a, &parked, Some(T0), T0);
        let rolling = TimecodeMessage::new(5000, RATE, true, 0, true, false);
        assert!(matches!(
            chase.on_packet_from(b, &rolling, Some(T0 + 2 * NANOS), T0 + 2 * NANOS),
            PacketEffect::Ignored { .. }
        ));
        let keepalive = TimecodeMessage::new(1234, RATE, false, 1, false, false);
        assert_eq!(chase.on_packet_from(a, &keepalive, Some(T0 + NANOS), T0 + 2 * NANOS), PacketEffect::Parked);
        let at = T0 + 2 * NANOS + PARKED_MASTER_TIMEOUT;
        assert!(matches!(chase.on_packet_from(b, &rolling, Some(at), at), PacketEffect::Ignored { .. }));
        assert!(!matches!(chase.on_packet_from(b, &rolling, Some(at + 1), at + 1), PacketEffect::Ignored { .. }));
        assert_eq!(chase.master(), Some(b));
    }

    #[test]
    fn stale_and_invalid_datagrams_are_counted() {
        let mut chase = Chase::new(ChaseConfig::default());
        let msg = TimecodeMessage::new(10, RATE, true, 7, true, false);
        chase.on_packet_from(source(1), &msg, Some(T0), T0);
        assert_eq!(chase.on_packet_from(source(1), &msg, Some(T0), T0), PacketEffect::Stale);
        chase.on_invalid();
        chase.on_invalid();
        let r = chase.tick(T0);
        assert_eq!((r.received, r.stale, r.ignored, r.invalid), (1, 1, 0, 2));
    }

    #[test]
    fn unix_nanos_both_sides_of_the_epoch() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::new(2, 5)), 2 * NANOS + 5);
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_nanos(7)), -7);
    }

    #[test]
    fn drop_frame_rates_extrapolate_exactly() {
        let rate = FrameRate::FPS_29_97_DF;
        let mut chase = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 1_000_000 });
        let msg = TimecodeMessage::new(0, rate, true, 0, true, false);
        chase.on_packet(&msg, Some(T0), T0);
        // One hour of wall time is 107,892 frames at 29.97 (3600 × 30000/1001 = 107,892.1).
        let r = chase.tick(T0 + 3600 * NANOS);
        assert_eq!(r.frame, Some(107_892));
        assert_eq!(r.label().as_deref(), Some("01:00:00;00"));
    }

    /// Regression (fuzz target listen_decode): sequence numbers and frame counts are whatever a
    /// sender puts on the wire. A sequence number jumping from 102 to `i64::MIN + 103` overflowed
    /// `last - seq`; frames near `i64::MAX` overflowed the extrapolation.
    #[test]
    fn extreme_sequence_numbers_and_frames_never_overflow() {
        let mut chase = Chase::new(ChaseConfig::default());
        for (seq, frame) in [
            (102, 4),
            (i64::MIN + 103, 5),
            (i64::MAX, 6),
            (i64::MIN, 7),
            (i64::MAX, i64::MAX),
            (i64::MIN + 1, i64::MAX - 1),
            (-1, i64::MIN),
            (0, i64::MAX),
        ] {
            let msg = TimecodeMessage::new(frame, RATE, true, seq, false, false);
            chase.on_packet(&msg, Some(T0), T0);
            let r = chase.tick(T0 + 3600 * NANOS);
            assert!((0.0..=1.0).contains(&r.loss()), "{r:?}");
            let _ = (r.label(), chase.time_of_frame(i64::MIN), chase.time_of_frame(i64::MAX));
        }
        let r = chase.tick(T0 + PERIOD);
        assert_eq!(r.lost, u64::MAX, "gaps of 2^64 saturate the count");
        // Locked on a frame near the end of the range: the position saturates, it does not wrap.
        let mut chase = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 1_000_000 });
        chase.on_packet(&TimecodeMessage::new(i64::MAX - 1, RATE, true, 0, true, false), Some(T0), T0);
        assert_eq!(chase.tick(T0 + 3600 * NANOS).frame, Some(i64::MAX));
        assert_eq!(
            chase.on_packet(&TimecodeMessage::new(i64::MIN, RATE, true, 1, false, false), Some(T0), T0),
            PacketEffect::Discontinuity
        );
    }
    /// A pseudo-random sequence for the property tests (xorshift64*), reproducible.
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut x = seed.max(1);
        move || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// Any rate, any reference frame and time: `start_of` and `frame_at` agree with each other
    /// and with [`Chase::time_of_frame`], frame starts are the first whole nanosecond of the
    /// frame, and the start of frame `F + n` is exactly `n` periods after the reference, however
    /// far (24 hours of frames: no drift).
    #[test]
    fn snapshot_frame_starts_are_exact_at_any_rate_and_offset() {
        let mut next = rng(17);
        for _ in 0..400 {
            let rate = FrameRate::ALL[(next() % FrameRate::ALL.len() as u64) as usize];
            let frame = (next() % 10_000_000) as i64 - 5_000_000;
            let heard = T0 + (next() % 1_000_000_000_000) as i128;
            let mut chase = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 10 });
            chase.on_packet(&TimecodeMessage::new(frame, rate, true, 0, true, false), Some(heard), heard);
            let snap = chase.snapshot();
            assert!(snap.playing());
            assert_eq!(snap.reference, Some((frame, heard)));
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            let day = rate.frames_per_day();
            for n in [0, 1, -1, 2, 7, 1001, -30_000, day, day + 1, -day, (next() % day as u64) as i64] {
                let f = frame + n;
                let start = snap.start_of(f).unwrap();
                assert_eq!(Some(start), chase.time_of_frame(f), "{rate}: frame {f}");
                // The exact start is heard + n·den/num s: start is its ceiling in ns.
                let exact = i128::from(n) * den * NANOS;
                assert!((start - heard) * num >= exact && (start - heard - 1) * num < exact, "{rate} n={n}");
                assert_eq!(snap.frame_at(start), Some(f), "{rate}: frame {f} at its start");
                assert_eq!(snap.frame_at(start - 1), Some(f - 1), "{rate}: the nanosecond before");
            }
            // A day of frames is a whole number of nanoseconds only when num divides it; either
            // way the sum of frame lengths over the day is the day's exact length, rounded once.
            let day_ns = i128::from(day) * den * NANOS;
            assert_eq!(snap.start_of(frame + day).unwrap() - heard, -(-day_ns).div_euclid(num), "{rate}: no drift");
        }
    }

    /// The generation changes on every break of the timeline and only then.
    #[test]
    fn snapshot_generation_changes_when_the_timeline_breaks() {
        let mut chase = Chase::new(ChaseConfig::default());
        let mut m = Master { seq: 0, first: 0 };
        let (msg, heard) = m.frame(0, true);
        chase.on_packet(&msg, Some(heard), heard);
        let first = chase.snapshot();
        assert_eq!((first.since, first.state, first.playing()), (T0, ChaseState::Locking, false));
        for i in 1..5 {
            let (msg, heard) = m.frame(i, false);
            chase.on_packet(&msg, Some(heard), heard);
        }
        let locked = chase.snapshot();
        assert_eq!((locked.generation, locked.state), (first.generation, ChaseState::Locked));
        assert_eq!(locked.start_of(10), Some(T0 + 10 * PERIOD));
        // A loop sent one period ahead of when it is heard: a new generation from then on.
        let wrap = TimecodeMessage::new(0, RATE, true, m.seq, true, true);
        m.seq += 1;
        let heard = T0 + 5 * PERIOD;
        chase.on_packet(&wrap, Some(heard), heard - PERIOD);
        let looped = chase.snapshot();
        assert_ne!(looped.generation, locked.generation);
        assert_eq!((looped.since, looped.reference), (heard, Some((0, heard))));
        assert_eq!(looped.frame_at(heard + PERIOD), Some(1));
        // Followed frames keep it.
        let msg = TimecodeMessage::new(1, RATE, true, m.seq, false, false);
        m.seq += 1;
        chase.on_packet(&msg, Some(heard + PERIOD), heard + PERIOD);
        assert_eq!(chase.snapshot().generation, looped.generation);
        // Parking breaks it once; keep-alives of the same frame do not; another frame does.
        let park = |frame, seq| TimecodeMessage::new(frame, RATE, false, seq, false, false);
        chase.on_packet(&park(40, m.seq), Some(heard + 2 * PERIOD), heard + 2 * PERIOD);
        let parked = chase.snapshot();
        assert_eq!((parked.state, parked.parked, parked.playing()), (ChaseState::Stopped, Some(40), false));
        assert_ne!(parked.generation, looped.generation);
        chase.on_packet(&park(40, m.seq + 1), Some(heard + NANOS), heard + NANOS);
        assert_eq!(chase.snapshot().generation, parked.generation);
        chase.on_packet(&park(41, m.seq + 2), Some(heard + 2 * NANOS), heard + 2 * NANOS);
        assert_ne!(chase.snapshot().generation, parked.generation);
        // Lost: the state says so (no generation needed: nothing plays).
        let mut chase = Chase::new(ChaseConfig { lock_frames: 1, freewheel_frames: 2 });
        chase.on_packet(&TimecodeMessage::new(0, RATE, true, 0, true, false), Some(T0), T0);
        chase.tick(T0 + 10 * PERIOD);
        let lost = chase.snapshot();
        assert_eq!((lost.state, lost.playing()), (ChaseState::Lost, false));
    }
}
