//! MTC re-generated from the chased timeline (issue 17): [`MtcSchedule`] decides which MIDI Time
//! Code message is due when, on the wall clock, and `--mtc PORT` sends them to a MIDI port
//! (midir) from a thread that waits for each one's absolute deadline
//! ([`Timeline::sleep_until`]). The JACK output ([`super::jack`]) uses the same schedule in its
//! process callback, placing each message at its sample in the period.
//!
//! The schedule (bytes from [`osc_timecode_core::mtc`], the plugin's):
//! - Quarter `Q = 4·m + q` of MTC frame `m` (our frame `m·step`, `step` 2 with `--half-rate`) is
//!   due at `start_of(m·step) + floor(q · (start_of((m+1)·step) − start_of(m·step)) / 4)` ns on
//!   the chase's latest timeline ([`ChaseSnapshot::start_of`]), the wall-time form of
//!   [`osc_timecode_core::mtc::QuarterClock`]: every deadline comes from the timeline, never from
//!   "the previous one plus a period", so quarters never drift from the master.
//! - Quarter frames only while the timeline plays ([`Following::Playing`]).
//! - A full frame (`F0 7F 7F 01 01 hh mm ss ff F7`) when the timeline starts playing or locks,
//!   on every new generation (a jump, loop, new master), at the start of the first MTC frame the
//!   new timeline plays from the moment it is heard ([`ChaseSnapshot::since`]), its quarters
//!   following from there; on a stop or park, the parked frame, at once, and again for each new
//!   parked frame.
//! - A change heard later than it arrives (a jump sent ahead) lets the old timeline's quarters
//!   due before then go out first: no quarter the master did not play.
//! - A message more than [`MAX_LATE`] late (the thread was not scheduled) is skipped with those
//!   after it that are late too: the schedule goes on from the first one still due, never a
//!   burst.
//! - Rates MTC cannot carry (50, 59.94, 60 without `--half-rate`): nothing, said once by the
//!   output's [`Watch`]. Lost (or locking, waiting): nothing; one line when lost.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use midir::{MidiOutput, MidiOutputConnection};
use osc_timecode_core::chase::ChaseSnapshot;
use osc_timecode_core::mtc::MtcFormat;

use super::{Following, Running, Say, TICK, Threaded, Timeline, Watch, now_ns};

/// How late a message may still go out; later ones are skipped (see the module docs).
pub const MAX_LATE: Duration = Duration::from_millis(1);

/// The name our MIDI client shows to the system (ALSA sequencer, CoreMIDI).
const CLIENT_NAME: &str = "osc-timecode";

/// One MTC message. `Copy`, no heap: the JACK callback builds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtcMessage {
    /// A quarter frame, `F1 0nnn dddd`.
    Quarter([u8; 2]),
    /// A full frame, `F0 7F 7F 01 01 hh mm ss ff F7`.
    Full([u8; 10]),
}

impl MtcMessage {
    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Quarter(b) => b,
            Self::Full(b) => b,
        }
    }
}

/// A message and when it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Wall time, ns since the epoch (the chase's clock). [thread-safe] (`Copy`).
    pub at: i128,
    /// The message. [thread-safe].
    pub message: MtcMessage,
}

/// What the schedule follows: a timeline's generation, what it does, and how its rate travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Followed {
    /// [`ChaseSnapshot::generation`].
    generation: u64,
    /// Playing, parked on a frame, or nothing.
    following: Following,
    /// The rate's MTC form, `None` when MTC cannot carry it (or there is no rate yet).
    format: Option<MtcFormat>,
}

impl Followed {
    fn of(snap: &ChaseSnapshot, half_rate: bool) -> Self {
        Self {
            generation: snap.generation,
            following: Following::of(snap),
            format: snap.rate.and_then(|r| MtcFormat::new(r, half_rate).ok()),
        }
    }
}

/// The MTC messages due on a chased timeline, in order (see the module docs). Pure: no clock,
/// no I/O, no heap; the caller passes the latest snapshot and the earliest time a message can
/// go. `[output-thread]` or `[audio-thread]` (JACK's callback).
#[derive(Debug, Clone)]
pub struct MtcSchedule {
    /// `--half-rate`. [output-thread].
    half_rate: bool,
    /// What the messages follow, once something was seen. [output-thread].
    followed: Option<Followed>,
    /// Its timeline: the latest snapshot of that generation and state. [output-thread].
    timeline: Option<ChaseSnapshot>,
    /// A full frame not yet sent: when, and which. [output-thread].
    full: Option<Due>,
    /// The next quarter to send while playing. [output-thread].
    quarter: Option<i64>,
}

impl MtcSchedule {
    /// A schedule that has seen nothing yet.
    pub fn new(half_rate: bool) -> Self {
        Self { half_rate, followed: None, timeline: None, full: None, quarter: None }
    }

    /// The next message, given `snap`, the chase's latest view, and `from`, the earliest wall
    /// time (ns) it can go: `None` while there is nothing to send. The same answer until
    /// [`MtcSchedule::sent`] (or a change of the timeline); its `at` may be before `from` by at
    /// most [`MAX_LATE`] (send it now) or far ahead (wait for it).
    pub fn next(&mut self, snap: &ChaseSnapshot, from: i128) -> Option<Due> {
        let now = Followed::of(snap, self.half_rate);
        if self.followed == Some(now) {
            self.timeline = Some(*snap);
        } else {
            // The old timeline's quarters heard before the change still go.
            if let Some(due) = self.quarter_due()
                && due.at < snap.since
                && due.at >= from - nanos(MAX_LATE)
            {
                return Some(due);
            }
            self.switch(snap, now, from.max(snap.since));
        }
        if let Some(full) = self.full {
            if full.at >= from - nanos(MAX_LATE) {
                return Some(full);
            }
            // Late: locate from the next MTC frame instead.
            self.full = None;
            self.quarter = None;
            if now.following == Following::Playing {
                self.start_playing(from);
                return self.full;
            }
            return None;
        }
        let due = self.quarter_due()?;
        if due.at >= from - nanos(MAX_LATE) {
            return Some(due);
        }
        // Late: skip to the first quarter still due.
        self.quarter = self.first_quarter_from(from);
        self.quarter_due()
    }

    /// The message [`MtcSchedule::next`] returned was sent (or dropped): on to the following one.
    pub fn sent(&mut self) {
        if self.full.take().is_none() {
            self.quarter = self.quarter.map(|q| q.saturating_add(1));
        }
    }

    /// Follows `snap` (now `followed`) from wall time `from`.
    fn switch(&mut self, snap: &ChaseSnapshot, followed: Followed, from: i128) {
        self.followed = Some(followed);
        self.timeline = Some(*snap);
        self.full = None;
        self.quarter = None;
        match (followed.following, followed.format) {
            (Following::Playing, Some(_)) => self.start_playing(from),
            (Following::Parked(frame), Some(format)) => {
                self.full = Some(Due { at: from, message: MtcMessage::Full(format.full_frame(frame)) });
            }
            _ => {}
        }
    }

    /// Playing: a full frame at the start of the first MTC frame starting at or after `from`,
    /// its quarters from there.
    fn start_playing(&mut self, from: i128) {
        let Some(format) = self.format() else { return };
        let Some(first) = self.first_quarter_from(from) else { return };
        let quarter = first.div_euclid(4).saturating_add(i64::from(first.rem_euclid(4) != 0)).saturating_mul(4);
        let Some(at) = self.quarter_at(quarter) else { return };
        let frame = (quarter / 4).saturating_mul(format.carriage().step());
        self.full = Some(Due { at, message: MtcMessage::Full(format.full_frame(frame)) });
        self.quarter = Some(quarter);
    }

    /// The rate's MTC form on the followed timeline.
    fn format(&self) -> Option<MtcFormat> {
        self.followed.and_then(|f| f.format)
    }

    /// The next quarter on the followed timeline, if it plays.
    fn quarter_due(&self) -> Option<Due> {
        let followed = self.followed?;
        if followed.following != Following::Playing {
            return None;
        }
        let (format, quarter) = (followed.format?, self.quarter?);
        Some(Due { at: self.quarter_at(quarter)?, message: MtcMessage::Quarter(format.quarter_message(quarter)) })
    }

    /// When quarter `quarter` is due on the followed timeline, ns since the epoch.
    pub fn quarter_at(&self, quarter: i64) -> Option<i128> {
        let (timeline, format) = (self.timeline?, self.format()?);
        quarter_time(&timeline, format, quarter)
    }

    /// The first quarter due at or after `t` on the followed timeline.
    fn first_quarter_from(&self, t: i128) -> Option<i64> {
        let (timeline, format) = (self.timeline?, self.format()?);
        first_quarter_from(&timeline, format, t)
    }
}

/// When quarter `quarter` (quarter `q` of MTC frame `m`) is due on `timeline`:
/// `start_of(m·step) + floor(q · (start_of((m+1)·step) − start_of(m·step)) / 4)`, ns since the
/// epoch. `None` without a reference or rate.
pub fn quarter_time(timeline: &ChaseSnapshot, format: MtcFormat, quarter: i64) -> Option<i128> {
    let step = format.carriage().step();
    let (m, q) = (quarter.div_euclid(4), i128::from(quarter.rem_euclid(4)));
    let start = timeline.start_of(m.saturating_mul(step))?;
    let end = timeline.start_of(m.saturating_add(1).saturating_mul(step))?;
    Some(start + (q * (end - start)).div_euclid(4))
}

/// The first quarter due at or after `t` on `timeline`.
pub fn first_quarter_from(timeline: &ChaseSnapshot, format: MtcFormat, t: i128) -> Option<i64> {
    let frame = timeline.frame_at(t)?;
    let m = frame.div_euclid(format.carriage().step());
    // The MTC frame under way at `t` started at or before it and the next one starts after it:
    // one of these five quarters is the first due at or after `t`.
    let first = m.saturating_mul(4);
    (0..=4).map(|k| first.saturating_add(k)).find(|&q| quarter_time(timeline, format, q).is_some_and(|at| at >= t))
}

/// The MIDI output ports, in the order `--mtc N` numbers them (1 = the first). Errors: no MIDI
/// system (no ALSA sequencer, `/dev/snd/seq`, on Linux).
pub fn midi_ports() -> anyhow::Result<Vec<String>> {
    let output = midi_output()?;
    Ok(port_names(&output))
}

/// What is missing when there is no MIDI system.
const NO_MIDI: &str = "no MIDI system to send MTC to (on Linux: the ALSA sequencer, /dev/snd/seq)";

/// Our MIDI client.
fn midi_output() -> anyhow::Result<MidiOutput> {
    // Without the sequencer's device ALSA would print a line of its own on standard error
    // before failing: the command says one line, so we look first.
    #[cfg(target_os = "linux")]
    if !std::path::Path::new("/dev/snd/seq").exists() {
        anyhow::bail!("{NO_MIDI}: /dev/snd/seq does not exist (load the snd-seq module)");
    }
    MidiOutput::new(CLIENT_NAME).context(NO_MIDI)
}

/// The names of `output`'s ports, in order (a port gone meanwhile is unnamed).
fn port_names(output: &MidiOutput) -> Vec<String> {
    output.ports().iter().map(|p| output.port_name(p).unwrap_or_else(|_| "(gone)".to_owned())).collect()
}

/// The index of the port `wanted` names among `names`: its exact name, else (digits only) its
/// number, 1 = the first, else the one port whose name contains it. Errors name the ports.
pub fn choose_port(names: &[String], wanted: &str) -> anyhow::Result<usize> {
    if let Some(i) = names.iter().position(|n| n == wanted) {
        return Ok(i);
    }
    let listed = || {
        if names.is_empty() {
            "there are no MIDI output ports".to_owned()
        } else {
            let list: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("{}: {n}", i + 1)).collect();
            format!("the MIDI output ports are {}", list.join(", "))
        }
    };
    if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_digit()) {
        return match wanted.parse::<usize>() {
            Ok(n) if (1..=names.len()).contains(&n) => Ok(n - 1),
            _ => anyhow::bail!("no MIDI output port number {wanted}: {}", listed()),
        };
    }
    let matching: Vec<usize> = names.iter().enumerate().filter(|(_, n)| n.contains(wanted)).map(|(i, _)| i).collect();
    match matching[..] {
        [i] => Ok(i),
        [] => anyhow::bail!("no MIDI output port named {wanted:?}: {}", listed()),
        _ => anyhow::bail!("{wanted:?} names several MIDI output ports, give more of the name: {}", listed()),
    }
}

/// `--mtc PORT`: opens the MIDI output port `name` names ([`choose_port`]) and sends MTC to it.
/// Errors: no MIDI system, no such port (the error lists the ports), the port cannot be opened.
pub fn start(name: &str, half_rate: bool, timeline: &Arc<Timeline>, say: &Say) -> anyhow::Result<Box<dyn Running>> {
    let output = midi_output().with_context(|| format!("MTC to MIDI port {name:?}"))?;
    let names = port_names(&output);
    let index = choose_port(&names, name).context("MTC")?;
    let ports = output.ports();
    let port = ports.get(index).context("MTC: the MIDI port went away")?;
    let port_name = names[index].clone();
    let title = format!("MTC to {port_name}");
    let connection = output
        .connect(port, "mtc")
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{title}: could not open the port"))?;
    let sender = Sender {
        connection,
        schedule: MtcSchedule::new(half_rate),
        timeline: Arc::clone(timeline),
        watch: Watch::new(title.clone(), half_rate, Arc::clone(say)),
        say: Arc::clone(say),
        name: title.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("mtc".into())
        .spawn(move || sender.run())
        .with_context(|| format!("{title}: could not start its thread"))?;
    Ok(Threaded::boxed(title, thread))
}

/// The port's thread. `[output-thread]`.
struct Sender {
    /// The open port.
    connection: MidiOutputConnection,
    /// What to send when.
    schedule: MtcSchedule,
    /// The chase's timeline.
    timeline: Arc<Timeline>,
    /// Says refused or substituted rates and a lost master.
    watch: Watch,
    /// Where lines go.
    say: Say,
    /// "MTC to PORT".
    name: String,
}

impl Sender {
    fn run(mut self) -> anyhow::Result<()> {
        let mut failing = false;
        while !self.timeline.finished() {
            let snap = self.timeline.latest();
            let now = now_ns();
            // Said once; the schedule sends nothing for a rate MTC refuses, nor while lost.
            self.watch.look(&snap);
            let Some(due) = self.schedule.next(&snap, now) else {
                self.timeline.sleep_until(now + nanos(TICK), &snap);
                continue;
            };
            if due.at - now > nanos(TICK) {
                // Far ahead (a timeline heard later): look again meanwhile.
                self.timeline.sleep_until(now + nanos(TICK), &snap);
                continue;
            }
            if !self.timeline.sleep_until(due.at, &snap) {
                // The timeline changed (or the end): ask the schedule again.
                continue;
            }
            // At the deadline: the timeline may have changed while the thread slept.
            let latest = self.timeline.latest();
            if latest.generation != snap.generation || Following::of(&latest) != Following::of(&snap) {
                continue;
            }
            self.schedule.sent();
            match self.connection.send(due.message.bytes()) {
                Ok(()) if failing => {
                    failing = false;
                    (self.say)(format!("{}: sending again", self.name));
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    failing = true;
                    (self.say)(format!("{}: could not send ({e}); trying on", self.name));
                }
                Err(_) => {}
            }
        }
        self.connection.close();
        Ok(())
    }
}

/// `d` in nanoseconds.
pub(crate) fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    use osc_timecode_core::FrameRate;
    use osc_timecode_core::chase::{ChaseSnapshot, ChaseState};

    use super::*;

    const SEC: i128 = 1_000_000_000;

    /// A timeline playing `rate` with frame `frame` heard at `at` ns.
    fn playing(rate: FrameRate, frame: i64, at: i128, generation: u64, since: i128) -> ChaseSnapshot {
        ChaseSnapshot {
            state: ChaseState::Locked,
            rate: Some(rate),
            reference: Some((frame, at)),
            parked: None,
            generation,
            since,
        }
    }

    fn parked(rate: FrameRate, frame: i64, generation: u64, since: i128) -> ChaseSnapshot {
        ChaseSnapshot {
            state: ChaseState::Stopped,
            rate: Some(rate),
            reference: None,
            parked: Some(frame),
            generation,
            since,
        }
    }

    /// Every message due before `until`, sent when due (a thread that is never late).
    fn run(schedule: &mut MtcSchedule, snap: &ChaseSnapshot, from: i128, until: i128) -> Vec<Due> {
        let mut out = Vec::new();
        let mut now = from;
        while let Some(due) = schedule.next(snap, now) {
            if due.at >= until {
                break;
            }
            out.push(due);
            now = now.max(due.at);
            schedule.sent();
        }
        out
    }

    fn full(format: MtcFormat, frame: i64) -> MtcMessage {
        MtcMessage::Full(format.full_frame(frame))
    }

    /// At 29.97 DF the quarters sit on the master's frame starts (start_of, its rounding) and
    /// split each frame in four, never drifting: the wall-time form of QuarterClock.
    #[test]
    fn quarters_are_due_on_the_timeline() {
        let rate = FrameRate::FPS_29_97_DF;
        let f = MtcFormat::new(rate, false).unwrap();
        let t = playing(rate, 1000, 5 * SEC, 1, 0);
        for q in 4000..4000 + 4 * 3000 {
            let (m, r) = (q / 4, q % 4);
            let start = t.start_of(m).unwrap();
            let len = t.start_of(m + 1).unwrap() - start;
            assert_eq!(quarter_time(&t, f, q), Some(start + r as i128 * len / 4));
            let at = quarter_time(&t, f, q).unwrap();
            assert_eq!(first_quarter_from(&t, f, at), Some(q));
            assert_eq!(first_quarter_from(&t, f, at - 1), Some(q));
            assert_eq!(first_quarter_from(&t, f, at + 1), Some(q + 1));
        }
        // 30 000 frames (1001 s) later, exactly on the second: no drift.
        assert_eq!(quarter_time(&t, f, 4 * (1000 + 30_000)), Some(1006 * SEC));
        // Half rate: one MTC frame spans two of ours, quarters every 10 ms at 50 fps.
        let h = MtcFormat::new(FrameRate::FPS_50, true).unwrap();
        let t50 = playing(FrameRate::FPS_50, 0, 0, 1, 0);
        let times: Vec<_> = (0..5).map(|q| quarter_time(&t50, h, q).unwrap()).collect();
        assert_eq!(times, [0, 10_000_000, 20_000_000, 30_000_000, 40_000_000]);
        assert_eq!(first_quarter_from(&t50, h, 25_000_000), Some(3));
    }

    /// On lock: a full frame at the first MTC frame start after it, then that frame's quarters in
    /// order, each message the plugin's bytes, continuous; park: the parked frame at once; a new
    /// parked frame: again; lost: nothing more.
    #[test]
    fn full_frame_on_lock_then_quarters_then_park() {
        let rate = FrameRate::FPS_25;
        let f = MtcFormat::new(rate, false).unwrap();
        let mut s = MtcSchedule::new(false);
        // Waiting: nothing.
        let waiting = ChaseSnapshot {
            state: ChaseState::Waiting,
            rate: None,
            reference: None,
            parked: None,
            generation: 0,
            since: 0,
        };
        assert_eq!(s.next(&waiting, 0), None);
        // Locked at 10:00:00:00 = frame 900 000 heard at 1 s; we look at 1.01 s (mid-frame).
        let t = playing(rate, 900_000, SEC, 1, 0);
        let sent = run(&mut s, &t, SEC + 10_000_000, 2 * SEC);
        assert_eq!(sent[0], Due { at: SEC + 40_000_000, message: full(f, 900_001) });
        let quarters = &sent[1..];
        assert_eq!(quarters.len(), 4 * 24, "a second of quarters from frame 900 001");
        for (k, due) in quarters.iter().enumerate() {
            let q = 4 * 900_001 + k as i64;
            assert_eq!(due.at, SEC + 40_000_000 + 10_000_000 * k as i128, "quarter {k}");
            assert_eq!(due.message, MtcMessage::Quarter(f.quarter_message(q)));
        }
        // Frame 900 001 is odd: its quarters are pieces 4..7 of 900 000's value.
        assert_eq!(quarters[0].message, MtcMessage::Quarter([0xF1, 0x40]));
        // Stop on frame 900 030 heard at 2.2 s: its full frame at once, then nothing.
        let p = parked(rate, 900_030, 2, 2 * SEC + 200_000_000);
        let sent = run(&mut s, &p, 2 * SEC + 210_000_000, 10 * SEC);
        assert_eq!(sent, [Due { at: 2 * SEC + 210_000_000, message: full(f, 900_030) }]);
        // Located while stopped: the new parked frame.
        let p2 = parked(rate, 5, 3, 3 * SEC);
        assert_eq!(run(&mut s, &p2, 3 * SEC, 10 * SEC), [Due { at: 3 * SEC, message: full(f, 5) }]);
        // The same frame again: nothing new.
        assert_eq!(run(&mut s, &p2, 4 * SEC, 10 * SEC), []);
        // Lost: nothing.
        let lost = ChaseSnapshot { state: ChaseState::Lost, parked: None, generation: 3, ..p2 };
        assert_eq!(run(&mut s, &lost, 5 * SEC, 10 * SEC), []);
    }

    /// A jump heard later than it arrives: the old timeline's quarters due before it go, then a
    /// full frame and the new timeline's quarters from the first frame start at or after it.
    #[test]
    fn a_jump_takes_over_when_heard() {
        let rate = FrameRate::FPS_25;
        let f = MtcFormat::new(rate, false).unwrap();
        let mut s = MtcSchedule::new(false);
        let old = playing(rate, 0, 0, 1, 0);
        let before = run(&mut s, &old, 0, 100_000_000);
        assert_eq!(before.len(), 1 + 10, "the full frame, quarters 0 to 9");
        // At 100 ms a jump to frame 5000 heard at 120 ms arrives (20 ms ahead).
        let new = playing(rate, 5000, 120_000_000, 2, 120_000_000);
        let after = run(&mut s, &new, 100_000_000, 200_000_000);
        let old_quarters: Vec<_> = after.iter().take_while(|d| matches!(d.message, MtcMessage::Quarter(_))).collect();
        assert_eq!(old_quarters.len(), 2, "quarters 10 and 11 of the old timeline");
        assert_eq!(old_quarters[0].message, MtcMessage::Quarter(f.quarter_message(10)));
        assert_eq!(old_quarters[1].at, 110_000_000);
        assert_eq!(after[2], Due { at: 120_000_000, message: full(f, 5000) });
        assert_eq!(after[3], Due { at: 120_000_000, message: MtcMessage::Quarter(f.quarter_message(4 * 5000)) });
        assert_eq!(after.last().unwrap().message, MtcMessage::Quarter(f.quarter_message(4 * 5000 + 7)));
        // Never a quarter due before the time each timeline is heard, always in time order.
        assert!(after.windows(2).all(|w| w[0].at <= w[1].at));
    }

    /// A thread that wakes late skips what is past instead of sending a burst; a refused rate
    /// sends nothing; half rate locates on frame pairs.
    #[test]
    fn late_refused_and_half_rate() {
        let rate = FrameRate::FPS_25;
        let f = MtcFormat::new(rate, false).unwrap();
        let mut s = MtcSchedule::new(false);
        let t = playing(rate, 0, 0, 1, 0);
        assert_eq!(s.next(&t, 0).map(|d| d.message), Some(full(f, 0)));
        s.sent();
        // Woken at 55 ms: quarters 1..5 are past; quarter 6 (60 ms) is next.
        let due = s.next(&t, 55_000_000).unwrap();
        assert_eq!(due, Due { at: 60_000_000, message: MtcMessage::Quarter(f.quarter_message(6)) });
        // Within MAX_LATE: still sent.
        assert_eq!(s.next(&t, 60_500_000), Some(due));
        // 60 fps without half rate: nothing; with it, full frames on even frames.
        let t60 = playing(FrameRate::FPS_60, 7, 0, 1, 0);
        assert_eq!(MtcSchedule::new(false).next(&t60, 0), None);
        let mut h = MtcSchedule::new(true);
        let first = h.next(&t60, 0).unwrap();
        let hf = MtcFormat::new(FrameRate::FPS_60, true).unwrap();
        assert_eq!(first.message, full(hf, 8));
        assert_eq!(Some(first.at), t60.start_of(8));
    }

    /// Exact name first, then a number (1 = the first), then a unique part of a name; errors
    /// list the ports.
    #[test]
    fn ports_by_name_number_or_part() {
        let names: Vec<String> =
            ["Midi Through:Midi Through Port-0 14:0", "USB MIDI:USB MIDI 1 20:0", "USB MIDI:USB MIDI 2 20:1"]
                .map(String::from)
                .to_vec();
        assert_eq!(choose_port(&names, "USB MIDI:USB MIDI 2 20:1").unwrap(), 2);
        assert_eq!(choose_port(&names, "1").unwrap(), 0);
        assert_eq!(choose_port(&names, "3").unwrap(), 2);
        assert_eq!(choose_port(&names, "Through").unwrap(), 0);
        assert_eq!(choose_port(&names, "MIDI 1").unwrap(), 1);
        let e = choose_port(&names, "USB").unwrap_err().to_string();
        assert!(e.contains("several") && e.contains("2: USB MIDI:USB MIDI 1 20:0"), "{e}");
        let e = choose_port(&names, "4").unwrap_err().to_string();
        assert!(e.starts_with("no MIDI output port number 4: the MIDI output ports are 1: Midi Through"), "{e}");
        let e = choose_port(&[], "nosuchport").unwrap_err().to_string();
        assert_eq!(e, "no MIDI output port named \"nosuchport\": there are no MIDI output ports");
    }
}
