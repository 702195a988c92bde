//! The free-running transport of `serve`: where the timeline is, whether it rolls, and how that
//! becomes one message per frame at absolute deadlines.
//!
//! Two halves, both pure (callers pass the clock readings in, so every rule here is unit-tested
//! without sleeping):
//! - [`Transport`] is the state the receiver (main thread) changes on `/transport/...` and reads
//!   for cue lines; the sender thread reads it under the same lock.
//! - [`Schedule`] is the sender thread's memory: which frame is next, which flags it carries,
//!   the sequence number, when the parked frame was last repeated. [`Schedule::step`] says what to
//!   do now: send one message, or wait until an instant.
//!
//! Why absolute deadlines: frame `k` after a (re)start is due at `anchor + ceil(k·den/num s)`,
//! computed in integer nanoseconds from the one anchor taken at the (re)start
//! ([`frame_start_nanos`]). Adding a rounded period per frame would drift (29.97 fps has a
//! period of 33 366 666.6… ns: a nanosecond lost per frame is 2.6 ms a day); this never does,
//! however long it runs. The timetag of frame `k` is the anchor's wall-clock reading plus the
//! same offset, so timetags are exactly one frame period apart (to the nanosecond) whatever the
//! sender's sleep precision.

use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::TimecodeMessage;
use osc_timecode_core::timecode::{frame_at_nanos, frame_start_nanos};

/// How late a frame may be sent and still be sent: within this, frames a stall delayed go out at
/// once, in order, with their own (past) timetags, so a scheduling hiccup of a few frames loses
/// nothing. Later than this (a suspended machine, a long stall), the sender skips to the frame
/// playing now and flags it as a jump instead of bursting stale frames at receivers.
pub const CATCH_UP_LIMIT: Duration = Duration::from_millis(250);

/// One reading of both clocks, taken together: the monotonic clock schedules, the wall clock
/// gives the timetags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// The monotonic clock.
    pub instant: Instant,
    /// The system (wall) clock at the same moment.
    pub wall: SystemTime,
}

impl Now {
    /// Reads both clocks.
    pub fn read() -> Self {
        Self { instant: Instant::now(), wall: SystemTime::now() }
    }
}

/// What the transport is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Rolling: frame `start` is due at `anchor`, frame `start + k` at `anchor + offset(k)`.
    Rolling {
        /// When the (re)start happened: the schedule's origin.
        anchor: Now,
        /// Absolute frame count at the anchor.
        start: i64,
    },
    /// Stopped at this absolute frame count.
    Parked {
        /// The parked frame.
        frame: i64,
    },
}

/// What changed the transport last; decides the flags of the first message after the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The command started (rolling, or parked with `--stopped`).
    Start,
    /// `/transport/play` from parked.
    Play,
    /// `/transport/stop` while rolling.
    Stop,
    /// `/transport/locate`.
    Locate,
}

/// The transport. `[thread-safe]` behind the `Mutex` in `serve::Shared`: the main thread
/// (receiver) changes it, the sender thread reads it; each holds the lock only to copy or change
/// a few words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// The frame rate, fixed for the run.
    pub rate: FrameRate,
    /// Rolling or parked, and where.
    pub mode: Mode,
    /// +1 on every change the sender must announce (start, play, stop, locate); the sender
    /// notices a new value and restarts its schedule.
    pub generation: u64,
    /// What made the last change.
    pub cause: Cause,
    /// Set once when the command ends: the sender thread returns.
    pub shutdown: bool,
}

impl Transport {
    /// A transport at absolute frame `frame`, rolling from `now` or parked there.
    pub fn new(rate: FrameRate, frame: i64, rolling: bool, now: Now) -> Self {
        let mode = if rolling { Mode::Rolling { anchor: now, start: frame } } else { Mode::Parked { frame } };
        Self { rate, mode, generation: 0, cause: Cause::Start, shutdown: false }
    }

    /// Whether the transport rolls.
    pub fn rolling(&self) -> bool {
        matches!(self.mode, Mode::Rolling { .. })
    }

    /// The absolute frame playing at `at` (rolling) or parked.
    pub fn position(&self, at: Instant) -> i64 {
        match self.mode {
            Mode::Rolling { anchor, start } => {
                start.saturating_add(frames_since(at.saturating_duration_since(anchor.instant), self.rate))
            }
            Mode::Parked { frame } => frame,
        }
    }

    /// `now` on the timescale of the timetags serve sends: while rolling, the anchor's wall-clock
    /// reading plus the monotonic time since (the schedule's clock); while parked, the wall clock
    /// (keep-alives carry it). The sync responder's T2 and T3 ([`super::sync`]).
    pub fn timescale(&self, now: Now) -> SystemTime {
        match self.mode {
            Mode::Rolling { anchor, .. } => match now.instant.checked_duration_since(anchor.instant) {
                Some(since) => anchor.wall.checked_add(since).unwrap_or(now.wall),
                None => anchor.wall.checked_sub(anchor.instant.duration_since(now.instant)).unwrap_or(now.wall),
            },
            Mode::Parked { .. } => now.wall,
        }
    }

    /// The absolute frame that plays at wall-clock time `wall`, while rolling (a cue's timetag);
    /// `None` while parked: a stopped timeline has no frame at a future time.
    pub fn frame_at_wall(&self, wall: SystemTime) -> Option<i64> {
        let Mode::Rolling { anchor, start } = self.mode else { return None };
        let nanos = match wall.duration_since(anchor.wall) {
            Ok(ahead) => i128::try_from(ahead.as_nanos()).unwrap_or(i128::MAX),
            Err(behind) => -i128::try_from(behind.duration().as_nanos()).unwrap_or(i128::MAX),
        };
        Some(start.saturating_add(frame_at_nanos(nanos, self.rate)))
    }

    /// `/transport/play`: rolls from the parked frame, anchored at `now`. Returns false (nothing
    /// changes) when already rolling.
    pub fn play(&mut self, now: Now) -> bool {
        let Mode::Parked { frame } = self.mode else { return false };
        self.change(Mode::Rolling { anchor: now, start: frame }, Cause::Play);
        true
    }

    /// `/transport/stop`: parks on the frame playing at `now`. Returns false (nothing changes)
    /// when already parked.
    pub fn stop(&mut self, now: Instant) -> bool {
        if !self.rolling() {
            return false;
        }
        self.change(Mode::Parked { frame: self.position(now) }, Cause::Stop);
        true
    }

    /// `/transport/locate`: continues rolling from `frame` anchored at `now`, or parks there.
    pub fn locate(&mut self, frame: i64, now: Now) {
        let mode = if self.rolling() { Mode::Rolling { anchor: now, start: frame } } else { Mode::Parked { frame } };
        self.change(mode, Cause::Locate);
    }

    fn change(&mut self, mode: Mode, cause: Cause) {
        self.mode = mode;
        self.cause = cause;
        self.generation = self.generation.wrapping_add(1);
    }
}

/// Time from a (re)start to the first nanosecond of frame `k` after it: `ceil(k·den/num)` s in
/// whole nanoseconds, exact (see [`frame_start_nanos`]). `k` before the anchor counts as 0.
pub fn offset(k: i64, rate: FrameRate) -> Duration {
    let nanos = frame_start_nanos(k.max(0), rate);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Frames whose start lies within `elapsed` after a (re)start, minus one: the index of the frame
/// playing `elapsed` after it.
pub fn frames_since(elapsed: Duration, rate: FrameRate) -> i64 {
    frame_at_nanos(i128::try_from(elapsed.as_nanos()).unwrap_or(i128::MAX), rate)
}

/// What the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send this message in a bundle timetagged with this wall-clock time.
    Send(TimecodeMessage, SystemTime),
    /// Nothing due: wait until this instant (`None`: until the transport changes).
    Wait(Option<Instant>),
}

/// The sender thread's schedule. `[sender-thread]`: owned by it, never shared.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The transport generation this schedule follows; `None` before the first step.
    generation: Option<u64>,
    /// While rolling: index (frames after the anchor) of the next frame to send.
    next: i64,
    /// The next message carries the jump flag.
    jump: bool,
    /// The last message sent: absolute frame and whether it was rolling.
    last_sent: Option<(i64, bool)>,
    /// While parked: when the parked frame was last sent (monotonic clock); `None`: not yet.
    parked_sent: Option<Instant>,
    /// Keep-alive interval while parked; `None`: no repeats.
    keepalive: Option<Duration>,
    /// Sequence number of the next message.
    seq: i64,
    /// Frames skipped because the sender fell more than [`CATCH_UP_LIMIT`] behind, in total.
    skipped: u64,
}

impl Schedule {
    /// A fresh schedule repeating the parked frame every `keepalive` (`None`: never).
    pub fn new(keepalive: Option<Duration>) -> Self {
        Self {
            generation: None,
            next: 0,
            jump: true,
            last_sent: None,
            parked_sent: None,
            keepalive: keepalive.filter(|d| !d.is_zero()),
            seq: 0,
            skipped: 0,
        }
    }

    /// Frames skipped so far because the sender fell behind.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// What to do at `now` given the transport `t`: the message due, if one is, else how long to
    /// wait. Call again after sending: several frames may be due after a stall.
    pub fn step(&mut self, t: &Transport, now: Now) -> Step {
        if self.generation != Some(t.generation) {
            self.generation = Some(t.generation);
            self.next = 0;
            self.parked_sent = None;
            self.jump = match (t.mode, t.cause) {
                // Stopping where we were is not a jump (as the plugin's clock says): the parked
                // frame is the last one sent, or the one after it.
                (Mode::Parked { frame }, Cause::Stop) => {
                    !self.last_sent.is_some_and(|(f, rolling)| rolling && (frame == f || frame == f.saturating_add(1)))
                }
                _ => true,
            };
        }
        match t.mode {
            Mode::Rolling { anchor, start } => {
                let Some(due) = anchor.instant.checked_add(offset(self.next, t.rate)) else {
                    // Beyond what the monotonic clock can express (centuries away): never due.
                    return Step::Wait(None);
                };
                if now.instant < due {
                    return Step::Wait(Some(due));
                }
                if now.instant.duration_since(due) > CATCH_UP_LIMIT {
                    let current = frames_since(now.instant.saturating_duration_since(anchor.instant), t.rate);
                    if current > self.next {
                        self.skipped = self.skipped.saturating_add((current - self.next).unsigned_abs());
                        self.next = current;
                        self.jump = true;
                    }
                }
                let k = self.next;
                let timetag = anchor.wall.checked_add(offset(k, t.rate)).unwrap_or(anchor.wall);
                self.next = k.saturating_add(1);
                Step::Send(self.message(start.saturating_add(k), true, t.rate), timetag)
            }
            Mode::Parked { frame } => match (self.parked_sent, self.keepalive) {
                (None, _) => {
                    self.parked_sent = Some(now.instant);
                    Step::Send(self.message(frame, false, t.rate), now.wall)
                }
                (Some(_), None) => Step::Wait(None),
                (Some(sent), Some(every)) => {
                    let due = sent.checked_add(every).unwrap_or(sent);
                    if now.instant < due {
                        return Step::Wait(Some(due));
                    }
                    // Repeats keep their rhythm; after a long stall they restart from now
                    // rather than catching up.
                    self.parked_sent = Some(if now.instant.duration_since(due) >= every { now.instant } else { due });
                    Step::Send(self.message(frame, false, t.rate), now.wall)
                }
            },
        }
    }

    /// The next message: sequence number and jump flag consumed.
    fn message(&mut self, frame: i64, rolling: bool, rate: FrameRate) -> TimecodeMessage {
        let msg = TimecodeMessage::new(frame, rate, rolling, self.seq, self.jump, false);
        self.seq = self.seq.wrapping_add(1);
        self.jump = false;
        self.last_sent = Some((frame, rolling));
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R25: FrameRate = FrameRate::FPS_25;
    const DF: FrameRate = FrameRate::FPS_29_97_DF;

    fn origin() -> Now {
        Now::read()
    }

    /// `origin` moved on by `d` on both clocks.
    fn later(origin: Now, d: Duration) -> Now {
        Now { instant: origin.instant + d, wall: origin.wall + d }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sent(step: Step) -> (TimecodeMessage, SystemTime) {
        match step {
            Step::Send(msg, tag) => (msg, tag),
            Step::Wait(w) => panic!("expected a message, got a wait {w:?}"),
        }
    }

    #[test]
    fn offsets_are_exact_from_one_anchor() {
        // 29.97: 1001/30000 s a frame. Frame 30000 after the anchor starts exactly 1001 s later,
        // however many frames came before: no per-frame rounding accumulates.
        assert_eq!(offset(30_000, DF), Duration::from_secs(1001));
        assert_eq!(offset(1, DF), Duration::from_nanos(33_366_667), "rounded up to the first whole ns");
        assert_eq!(offset(3, DF), Duration::from_nanos(100_100_000));
        // A day of labels at 29.97 DF: 2 589 408 frames = 86 399.9136 s exactly.
        assert_eq!(offset(2_589_408, DF), Duration::from_nanos(86_399_913_600_000));
        assert_eq!(offset(25, R25), Duration::from_secs(1));
        assert_eq!(offset(-5, R25), Duration::ZERO);
        assert_eq!(frames_since(Duration::ZERO, DF), 0);
        for k in [1, 2, 29, 30, 1799, 1800, 107_892, 2_589_407] {
            assert_eq!(frames_since(offset(k, DF), DF), k, "frame {k}'s first ns is in frame {k}");
            assert_eq!(frames_since(offset(k, DF) - Duration::from_nanos(1), DF), k - 1, "and not a ns earlier");
        }
    }

    #[test]
    fn rolling_sends_each_frame_at_its_deadline_with_its_own_timetag() {
        let t0 = origin();
        let t = Transport::new(R25, 90_000, true, t0);
        let mut s = Schedule::new(Some(ms(1000)));
        let (m, tag) = sent(s.step(&t, t0));
        assert_eq!((m.frame, m.playing, m.jump, m.seq, tag), (90_000, true, true, 0, t0.wall));
        assert_eq!(m.timecode.to_string(), "01:00:00:00");
        // Frame 1 is due 40 ms after the anchor, not before.
        assert_eq!(s.step(&t, later(t0, ms(10))), Step::Wait(Some(t0.instant + ms(40))));
        let (m, tag) = sent(s.step(&t, later(t0, ms(41))));
        assert_eq!((m.frame, m.jump, m.seq, tag), (90_001, false, 1, t0.wall + ms(40)), "timetag = deadline");
        // 100 ms late (within the catch-up limit): frames 2, 3, 4 go out at once, each tagged
        // with its own deadline.
        for k in 2..=4u64 {
            let (m, tag) = sent(s.step(&t, later(t0, ms(199))));
            assert_eq!((m.frame, m.jump, tag), (90_000 + k as i64, false, t0.wall + ms(40 * k)));
        }
        assert_eq!(s.step(&t, later(t0, ms(199))), Step::Wait(Some(t0.instant + ms(200))));
        assert_eq!(s.skipped(), 0);
    }

    #[test]
    fn a_long_stall_skips_to_now_with_a_jump() {
        let t0 = origin();
        let t = Transport::new(R25, 0, true, t0);
        let mut s = Schedule::new(None);
        sent(s.step(&t, t0));
        // Suspended for 10 s: frame 1 is 9.96 s late. The frame playing now is 250.
        let (m, tag) = sent(s.step(&t, later(t0, ms(10_010))));
        assert_eq!((m.frame, m.jump, m.seq, tag), (250, true, 1, t0.wall + ms(10_000)));
        assert_eq!(s.skipped(), 249);
        let (m, _) = sent(s.step(&t, later(t0, ms(10_040))));
        assert_eq!((m.frame, m.jump), (251, false), "the schedule goes on from the same anchor");
    }

    #[test]
    fn parked_sends_once_then_keepalives() {
        let t0 = origin();
        let t = Transport::new(DF, 1800, false, t0);
        let mut s = Schedule::new(Some(ms(1000)));
        let (m, tag) = sent(s.step(&t, t0));
        assert_eq!((m.frame, m.playing, m.jump, tag), (1800, false, true, t0.wall));
        assert_eq!(m.timecode.to_string(), "00:01:00;02");
        assert_eq!(s.step(&t, later(t0, ms(500))), Step::Wait(Some(t0.instant + ms(1000))));
        let (m, tag) = sent(s.step(&t, later(t0, ms(1001))));
        assert_eq!((m.frame, m.playing, m.jump, m.seq, tag), (1800, false, false, 1, t0.wall + ms(1001)));
        assert_eq!(s.step(&t, later(t0, ms(1002))), Step::Wait(Some(t0.instant + ms(2000))), "rhythm kept");
        let mut quiet = Schedule::new(Some(Duration::ZERO));
        sent(quiet.step(&t, t0));
        assert_eq!(quiet.step(&t, later(t0, ms(5000))), Step::Wait(None), "keep-alive off");
    }

    #[test]
    fn play_stop_and_locate() {
        let t0 = origin();
        let mut t = Transport::new(R25, 250, false, t0);
        let mut s = Schedule::new(Some(ms(1000)));
        sent(s.step(&t, t0));
        // Play: rolls from the parked frame, anchored at the command, with a jump.
        let t1 = later(t0, ms(300));
        assert!(t.play(t1));
        assert!(!t.play(t1), "already rolling");
        let (m, tag) = sent(s.step(&t, t1));
        assert_eq!((m.frame, m.playing, m.jump, tag), (250, true, true, t1.wall));
        let (m, _) = sent(s.step(&t, later(t1, ms(40))));
        assert_eq!((m.frame, m.jump), (251, false));
        // Stop at 50 ms: frame 251 is playing and was sent: parked there, no jump.
        assert!(t.stop(t1.instant + ms(50)));
        assert!(!t.stop(t1.instant + ms(60)), "already parked");
        assert_eq!(t.mode, Mode::Parked { frame: 251 });
        let (m, _) = sent(s.step(&t, later(t1, ms(50))));
        assert_eq!((m.frame, m.playing, m.jump), (251, false, false));
        // Locate while parked: parks there, with a jump.
        t.locate(90_000, later(t1, ms(70)));
        let (m, _) = sent(s.step(&t, later(t1, ms(70))));
        assert_eq!((m.frame, m.playing, m.jump), (90_000, false, true));
        // Locate while rolling: continues from there at once, with a jump.
        let t2 = later(t1, ms(100));
        t.play(t2);
        sent(s.step(&t, t2));
        sent(s.step(&t, later(t2, ms(40))));
        let t3 = later(t2, ms(55));
        t.locate(180_000, t3);
        let (m, tag) = sent(s.step(&t, t3));
        assert_eq!((m.frame, m.playing, m.jump, tag), (180_000, true, true, t3.wall));
        let (m, _) = sent(s.step(&t, later(t3, ms(40))));
        assert_eq!((m.frame, m.jump, m.seq), (180_001, false, 8), "one sequence across everything");
    }

    #[test]
    fn stopping_after_a_frame_not_yet_sent_is_a_jump_only_if_it_does_not_follow() {
        let t0 = origin();
        let mut t = Transport::new(R25, 0, true, t0);
        let mut s = Schedule::new(None);
        sent(s.step(&t, t0));
        // Frame 1 is due at 40 ms; stopped at 45 ms before the sender sent it: parked on 1, which
        // follows frame 0.
        t.stop(t0.instant + ms(45));
        let (m, _) = sent(s.step(&t, later(t0, ms(46))));
        assert_eq!((m.frame, m.jump), (1, false));
    }

    #[test]
    fn positions_and_due_frames() {
        let t0 = origin();
        let t = Transport::new(DF, 1798, true, t0);
        assert_eq!(t.position(t0.instant), 1798);
        assert_eq!(t.position(t0.instant + Duration::from_nanos(66_733_334)), 1800, "first ns of frame 2");
        assert_eq!(t.position(t0.instant + Duration::from_nanos(66_733_333)), 1799);
        assert_eq!(t.frame_at_wall(t0.wall + Duration::from_secs(1001)), Some(1798 + 30_000));
        assert_eq!(t.frame_at_wall(t0.wall - Duration::from_nanos(1)), Some(1797), "before the anchor");
        let parked = Transport::new(DF, 5, false, t0);
        assert_eq!(parked.position(t0.instant + ms(500)), 5);
        assert_eq!(parked.frame_at_wall(t0.wall), None);
    }
}
