//! Legacy timecode re-generated next to the receiver (issue 17): LTC, MTC and Art-Net computed
//! from the chase, not from arrivals, so network jitter never reaches them.
//!
//! `listen` (and `serve`, chasing its own stream) publishes the chase's timeline, a `Copy`
//! [`ChaseSnapshot`], into one [`Timeline`] after every datagram and every look at the chase.
//! Each output runs on its own thread (or the audio system's callback) and computes every
//! sample, quarter frame or packet from the latest snapshot at the moment it will be heard:
//! audio from the stream's playback time, MIDI and UDP at absolute deadlines
//! ([`Timeline::sleep_until`]). A new [`ChaseSnapshot::generation`] (a jump, loop, park, new
//! master) restarts them cleanly; frames sent ahead take over when heard
//! ([`ChaseSnapshot::since`]).
//!
//! The outputs:
//! - [`ltc`]: the LTC renderer and the Broadcast Wave writer, shared by every LTC destination;
//! - [`wav`]: `--ltc wav:FILE`, LTC written to a file as a device would play it;
//! - [`device`]: `--ltc DEVICE`, LTC to an audio device (cpal);
//! - [`jack`]: `--ltc jack[:PORT]` and `--mtc jack[:PORT]`, LTC and MTC through one JACK client,
//!   sample-exact within the period;
//! - [`mtc`]: the quarter-frame schedule over the chased timeline, and `--mtc PORT` to a MIDI
//!   port (midir);
//! - [`artnet`]: `--artnet HOST:PORT`, ArtTimeCode at each frame's start;
//! - [`list`]: `osc-timecode outputs`, the devices and ports to name in those flags;
//! - [`spec`]: the flags and the `[client.outputs]` table, merged and checked into one
//!   [`spec::OutputSpec`].
//!
//! Rates an output cannot carry (50, 59.94 and 60 fps without `--half-rate`) are refused loudly:
//! one line when the master's rate becomes one ([`RateGate`]), the output silent meanwhile.

pub mod artnet;
pub mod device;
pub mod jack;
pub mod list;
pub mod ltc;
pub mod mtc;
pub mod spec;
pub mod wav;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use osc_timecode_core::FrameRate;
use osc_timecode_core::carriage::{Carriage, NotCarried};
use osc_timecode_core::chase::{Chase, ChaseConfig, ChaseSnapshot, ChaseState};

/// How long before a deadline [`Timeline::sleep_until`] stops sleeping and spins: timers wake
/// late by 0.1–0.3 ms on some machines (BENCHMARKS.md section 5), which would be most of the
/// 0.5 ms the outputs are allowed.
pub const SPIN: Duration = Duration::from_micros(300);

/// Longest sleep of an output thread without looking at the timeline: bounds how late a change
/// that wakes nobody (freewheel becoming lost) or the end is seen.
pub const TICK: Duration = Duration::from_millis(20);

/// Says one line to the user, from any output thread (`listen` prints it off its live line,
/// `serve` on standard error).
pub type Say = Arc<dyn Fn(String) + Send + Sync>;

/// The chase's latest timeline, shared by the thread that chases (`listen`'s main loop) and the
/// outputs. `[thread-safe]`.
#[derive(Debug)]
pub struct Timeline {
    /// The latest snapshot. Locked briefly by [`Timeline::publish`] and the readers; the audio
    /// callbacks only `try_lock` ([`Timeline::try_latest`]). `[thread-safe]`.
    latest: Mutex<ChaseSnapshot>,
    /// Signalled when the snapshot's generation or state changes, and at the end. `[thread-safe]`.
    changed: Condvar,
    /// Set once by [`Timeline::finish`]: the outputs end. `[thread-safe]`.
    finished: AtomicBool,
}

impl Timeline {
    /// A timeline with nothing heard yet. Reads the outputs' clock once
    /// ([`crate::clock::local_now`]), so its origin is set here, before any output starts, and
    /// never lazily inside an audio callback.
    pub fn new() -> Arc<Self> {
        let _ = now_ns();
        let waiting = Chase::new(ChaseConfig::default()).snapshot();
        Arc::new(Self { latest: Mutex::new(waiting), changed: Condvar::new(), finished: AtomicBool::new(false) })
    }

    /// Publishes the chase's latest view; wakes the outputs if it broke or changed state.
    pub fn publish(&self, snap: ChaseSnapshot) {
        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let news = latest.generation != snap.generation || latest.state != snap.state;
        *latest = snap;
        drop(latest);
        if news {
            self.changed.notify_all();
        }
    }

    /// The latest snapshot (a short lock).
    pub fn latest(&self) -> ChaseSnapshot {
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest snapshot if nobody holds the lock this instant, for audio callbacks (which
    /// keep their previous one otherwise): no waiting, no system call.
    pub fn try_latest(&self) -> Option<ChaseSnapshot> {
        match self.latest.try_lock() {
            Ok(snap) => Some(*snap),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(*p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Ends the outputs: their loops see [`Timeline::finished`] and return.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        let _guard = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        self.changed.notify_all();
    }

    /// Whether the outputs are to end.
    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// Waits until wall time `deadline` (ns since the epoch, the chase's clock), never early:
    /// sleeps on the timeline until [`SPIN`] before it, then spins on the clock. Returns early
    /// with `false` when the timeline's generation or state changes from `seen`'s (the caller
    /// recomputes its deadline) or the outputs end; `true` at the deadline. Sleeps at most
    /// [`TICK`] at a time.
    pub fn sleep_until(&self, deadline: i128, seen: &ChaseSnapshot) -> bool {
        loop {
            if self.finished() {
                return false;
            }
            let left = deadline - now_ns();
            if left <= 0 {
                return true;
            }
            let left = Duration::from_nanos(u64::try_from(left).unwrap_or(u64::MAX));
            if left <= SPIN {
                let until = Instant::now() + left;
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                continue;
            }
            let nap = (left - SPIN).min(TICK);
            let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
            if latest.generation != seen.generation || latest.state != seen.state {
                return false;
            }
            let (latest, _) = self.changed.wait_timeout(latest, nap).unwrap_or_else(PoisonError::into_inner);
            if latest.generation != seen.generation || latest.state != seen.state {
                return false;
            }
        }
    }
}

/// Now on the chase's clock: [`crate::clock::local_now`], ns "since the Unix epoch" (the wall
/// clock at the command's start, advanced by the monotonic clock).
pub fn now_ns() -> i128 {
    crate::clock::local_now()
}

/// Whether the outputs follow `snap`'s frames (locked or freewheeling on a timeline), are parked
/// on a frame, or have nothing to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Following {
    /// Frames run on the timeline.
    Playing,
    /// The master is parked on this frame.
    Parked(i64),
    /// Waiting, locking or lost: nothing to send.
    Nothing,
}

impl Following {
    /// What `snap` says.
    pub fn of(snap: &ChaseSnapshot) -> Self {
        if snap.playing() {
            Self::Playing
        } else if let (ChaseState::Stopped, Some(frame)) = (snap.state, snap.parked) {
            Self::Parked(frame)
        } else {
            Self::Nothing
        }
    }
}

/// Decides, once per rate, whether an output carries the master's rate, and says so: a refused
/// rate (50, 59.94, 60 without `--half-rate`) or a substitution (23.976 sent as 24) is one line
/// naming the output, repeated only when the rate changes. `[output-thread]`.
pub struct RateGate {
    /// The output's name in the lines ("LTC", "MTC", "Art-Net to 10.0.0.5:6454").
    name: String,
    /// `--half-rate`.
    half_rate: bool,
    /// The last rate decided, and the decision.
    last: Option<(FrameRate, Result<Carriage, NotCarried>)>,
    /// Where the lines go.
    say: Say,
}

impl std::fmt::Debug for RateGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateGate").field("name", &self.name).field("half_rate", &self.half_rate).finish_non_exhaustive()
    }
}

impl RateGate {
    /// A gate for the output called `name`.
    pub fn new(name: impl Into<String>, half_rate: bool, say: Say) -> Self {
        Self { name: name.into(), half_rate, last: None, say }
    }

    /// How `rate` travels on this output, or `None` when it cannot (said once per rate).
    pub fn carriage(&mut self, rate: FrameRate) -> Option<Carriage> {
        if let Some((last, decided)) = self.last
            && last == rate
        {
            return decided.ok();
        }
        let decided = Carriage::of(rate, self.half_rate);
        match decided {
            Err(e) => (self.say)(format!("{}: {}; silent until the rate changes", self.name, refused(e))),
            Ok(c) if !c.is_exact() => (self.say)(format!("{}: {c}", self.name)),
            Ok(_) => {}
        }
        self.last = Some((rate, decided));
        decided.ok()
    }
}

/// What an output says as the timeline changes, one line each: a rate it cannot carry or
/// substitutes (once per rate, [`RateGate`]) and the master lost (once until it is back). Shared
/// by every output but Art-Net, which says more. `[output-thread]`.
#[derive(Debug)]
pub struct Watch {
    /// The rate decisions, and where lines go.
    gate: RateGate,
    /// The last snapshot looked at was lost.
    lost: bool,
}

impl Watch {
    /// A watch for the output called `name`.
    pub fn new(name: impl Into<String>, half_rate: bool, say: Say) -> Self {
        Self { gate: RateGate::new(name, half_rate, say), lost: false }
    }

    /// Looks at `snap`, says what is new; how its rate travels here, if it does.
    pub fn look(&mut self, snap: &ChaseSnapshot) -> Option<Carriage> {
        let carriage = snap.rate.and_then(|rate| self.gate.carriage(rate));
        let lost = snap.state == ChaseState::Lost;
        if lost && !self.lost {
            (self.gate.say)(format!("{}: the master is lost; silent until it is back", self.gate.name));
        }
        self.lost = lost;
        carriage
    }
}

/// What the user reads when a rate is refused: core's reason and where to turn half rate on.
pub fn refused(e: NotCarried) -> String {
    format!("{e} (--half-rate, or half_rate = true in [client.outputs])")
}

/// One running output: [`Running::stop`] ends it and reports what went wrong, if anything.
pub trait Running: Send {
    /// The output's name for messages (`"LTC to wav:show.wav"`).
    fn name(&self) -> &str;
    /// Waits for the output to end ([`Timeline::finish`] was called) and releases its device or
    /// file; an error if it failed (a full disk, a device gone).
    fn stop(self: Box<Self>) -> anyhow::Result<()>;
}

/// An output that is one thread of its own (the LTC file, MTC to a MIDI port, a JACK client's
/// helper): stopping it joins the thread, whose result is the output's.
pub struct Threaded {
    /// The output's name for messages.
    name: String,
    /// The thread; `None` once joined.
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Threaded {
    /// The output called `name` that `thread` runs.
    pub fn boxed(name: String, thread: std::thread::JoinHandle<anyhow::Result<()>>) -> Box<dyn Running> {
        Box::new(Self { name, thread: Some(thread) })
    }
}

impl Running for Threaded {
    fn name(&self) -> &str {
        &self.name
    }

    fn stop(mut self: Box<Self>) -> anyhow::Result<()> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        thread.join().map_err(|_| anyhow::anyhow!("{}: its thread ended abnormally", self.name))?
    }
}

/// The outputs a command runs, started together, stopped together.
pub struct Rig {
    /// The timeline they follow. `[main-thread]` publishes, outputs read.
    timeline: Arc<Timeline>,
    /// The outputs started.
    running: Vec<Box<dyn Running>>,
}

impl std::fmt::Debug for Rig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rig").field("outputs", &self.running.iter().map(|r| r.name()).collect::<Vec<_>>()).finish()
    }
}

impl Rig {
    /// Starts every output `spec` asks for, following `timeline`. An output that cannot start
    /// (no such device, a file that cannot be created, a port in use) is an error naming it;
    /// those already started are stopped first.
    pub fn start(spec: &spec::OutputSpec, timeline: &Arc<Timeline>, say: &Say) -> anyhow::Result<Self> {
        let mut rig = Self { timeline: Arc::clone(timeline), running: Vec::new() };
        let started = rig.start_all(spec, say);
        match started {
            Ok(()) => Ok(rig),
            Err(e) => {
                // Best effort: the first error is the one to report.
                let _ = rig.stop();
                Err(e)
            }
        }
    }

    fn start_all(&mut self, spec: &spec::OutputSpec, say: &Say) -> anyhow::Result<()> {
        if let Some(ltc) = &spec.ltc {
            let running = match &ltc.dest {
                spec::LtcDest::Wav(path) => wav::start(ltc, path, spec.half_rate, &self.timeline, say)?,
                spec::LtcDest::Device(name) => device::start(ltc, name, spec.half_rate, &self.timeline, say)?,
                spec::LtcDest::Jack(port) => {
                    jack::start_ltc(ltc, port.as_deref(), spec.half_rate, &self.timeline, say)?
                }
            };
            self.running.push(running);
        }
        if let Some(mtc) = &spec.mtc {
            let running = match &mtc.dest {
                spec::MtcDest::Port(name) => mtc::start(name, spec.half_rate, &self.timeline, say)?,
                spec::MtcDest::Jack(port) => jack::start_mtc(port.as_deref(), spec.half_rate, &self.timeline, say)?,
            };
            self.running.push(running);
        }
        for &target in &spec.artnet.targets {
            self.running.push(artnet::start(target, spec.artnet.stream_id, spec.half_rate, &self.timeline, say)?);
        }
        Ok(())
    }

    /// Whether any output runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Ends every output; the first error, naming its output.
    pub fn stop(self) -> anyhow::Result<()> {
        self.timeline.finish();
        let mut first = Ok(());
        for running in self.running {
            let name = running.name().to_owned();
            if let Err(e) = running.stop()
                && first.is_ok()
            {
                first = Err(e.context(name));
            }
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_says_a_refused_rate_once_and_the_master_lost_once_until_it_is_back() {
        let said = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = Arc::clone(&said);
        let mut watch = Watch::new("LTC", false, Arc::new(move |line| sink.lock().unwrap().push(line)));
        let mut snap = Chase::new(ChaseConfig::default()).snapshot();
        snap.rate = Some(FrameRate::FPS_50);
        assert_eq!(watch.look(&snap), None);
        assert_eq!(watch.look(&snap), None);
        snap.rate = Some(FrameRate::FPS_25);
        assert!(watch.look(&snap).is_some());
        snap.state = ChaseState::Lost;
        for _ in 0..3 {
            watch.look(&snap);
        }
        snap.state = ChaseState::Locked;
        watch.look(&snap);
        snap.state = ChaseState::Lost;
        watch.look(&snap);
        let said = said.lock().unwrap();
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[0].starts_with("LTC: cannot carry 50 fps") && said[0].contains("--half-rate"), "{said:?}");
        assert_eq!(said[1], "LTC: the master is lost; silent until it is back");
        assert_eq!(said[2], said[1], "again after it was back");
    }
}
