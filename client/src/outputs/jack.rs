//! `--ltc jack[:PORT]` and `--mtc jack[:PORT]`: LTC and MTC through JACK, sample-exact within
//! the period (issue 17). Each is a JACK client named "osc-timecode" (JACK makes the second one
//! unique, "osc-timecode-01") with one output port, `ltc` (audio) or `mtc` (MIDI), connected to
//! PORT when given. libjack is loaded when the output starts (the `jack` crate's dynamic
//! loading): no JACK needed to build or to run the other outputs.
//!
//! Time: JACK's process callback knows its period on JACK's clock ([`jack::CycleTimes`]:
//! the period's first frame starts at `current_usecs`, the next period at `next_usecs`, µs of
//! the monotonic clock, smoothed by JACK's DLL). A helper thread measures the offset from that
//! clock to the wall clock (the chase's) every [`OFFSET_EVERY`] and hands it to the callback
//! through an atomic, so the callback maps its period to wall time `[t_a, t_b)` with no system
//! call.
//! - MTC: the [`MtcSchedule`]'s messages due in `[t_a, t_b)` are written at their samples,
//!   `round((at − t_a) · n / (t_b − t_a))`: each period is anchored on JACK's clock anew, so
//!   nothing drifts.
//! - LTC: [`LtcRenderer`] lays words on our stream of samples (one per JACK frame since the
//!   client started), stream sample 0 at wall time `t0`. JACK's sample clock and the wall clock
//!   drift apart (a sound card's crystal, a few ppm to 100s): see the NOTE below.
//!
//! NOTE: We follow the drift by steering `t0` each period towards where JACK says the period
//!       starts ([`LtcRenderer::steer_t0`], the device output's way): the origin moves at word
//!       boundaries by at most a quarter bit per word, so no word is cut, no frame skipped or
//!       repeated, and a word boundary moves by a sample now and then instead of jumping. The
//!       first period sets `t0` at once (no word plays yet).
//!
//! The callback reads the timeline with [`Timeline::try_latest`] (keeping its previous
//! snapshot when the lock is busy), and allocates, locks, logs and calls the system for
//! nothing. Lines (a refused rate, the master lost, messages JACK had no room for) are said by
//! the helper thread.

use std::sync::Arc;

use super::spec::LtcSpec;
use super::{Running, Say, Timeline};
#[cfg(feature = "jack")]
pub use imp::OFFSET_EVERY;

#[cfg(feature = "jack")]
use super::ltc::LtcRenderer;
use super::mtc::{MtcMessage, MtcSchedule};
use osc_timecode_core::chase::ChaseSnapshot;

/// What JACK's client is called (JACK appends a number to a second one).
pub const CLIENT_NAME: &str = "osc-timecode";

/// The words when no JACK server answers.
pub const NO_SERVER: &str = "no JACK server is running (start one, e.g. jackd -d dummy)";

/// `--ltc jack[:PORT]`: an audio port `ltc` playing LTC, connected to `port` if given. Errors:
/// no JACK (library or server), no such port, a level LTC refuses.
pub fn start_ltc(
    ltc: &LtcSpec,
    port: Option<&str>,
    half_rate: bool,
    timeline: &Arc<Timeline>,
    say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    #[cfg(feature = "jack")]
    return imp::start(imp::Kind::Ltc(ltc), port, half_rate, timeline, say);
    #[cfg(not(feature = "jack"))]
    {
        let _ = (ltc, port, half_rate, timeline, say);
        anyhow::bail!("LTC to JACK: this osc-timecode was built without JACK (cargo feature \"jack\")")
    }
}

/// `--mtc jack[:PORT]`: a MIDI port `mtc` sending MTC, connected to `port` if given. Errors: no
/// JACK (library or server), no such port.
pub fn start_mtc(
    port: Option<&str>,
    half_rate: bool,
    timeline: &Arc<Timeline>,
    say: &Say,
) -> anyhow::Result<Box<dyn Running>> {
    #[cfg(feature = "jack")]
    return imp::start(imp::Kind::Mtc, port, half_rate, timeline, say);
    #[cfg(not(feature = "jack"))]
    {
        let _ = (port, half_rate, timeline, say);
        anyhow::bail!("MTC to JACK: this osc-timecode was built without JACK (cargo feature \"jack\")")
    }
}

/// Most MIDI messages written in one period (a bound on the callback's work).
pub const MAX_MESSAGES: usize = 64;

/// Walks `schedule` over one period of `n` frames that plays from wall time `t_a` until `t_b`
/// (ns, `t_a < t_b`), handing `write` each message due in it with its frame in the period: the
/// nearest, `round((at − t_a) · n / (t_b − t_a))`, a message due a hair before the period (at
/// most [`super::mtc::MAX_LATE`]) on its first frame. In time order; at most [`MAX_MESSAGES`].
/// `[audio-thread]`: no allocation, no system call.
pub fn mtc_in_period(
    schedule: &mut MtcSchedule,
    snap: &ChaseSnapshot,
    (t_a, t_b): (i128, i128),
    n: u32,
    mut write: impl FnMut(u32, &MtcMessage),
) {
    let span = t_b - t_a;
    if span <= 0 || n == 0 {
        return;
    }
    let last = i128::from(n - 1);
    for _ in 0..MAX_MESSAGES {
        let Some(due) = schedule.next(snap, t_a) else { break };
        if due.at >= t_b {
            break;
        }
        let at = (2 * (due.at - t_a).max(0) * i128::from(n) + span).div_euclid(2 * span).min(last);
        write(u32::try_from(at).unwrap_or(0), &due.message);
        schedule.sent();
    }
}

#[cfg(feature = "jack")]
mod imp {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::Context as _;
    use jack::{
        AudioOut, Client, ClientOptions, ClientStatus, Control, MidiOut, Port, PortFlags, ProcessScope, RawMidi,
    };
    use osc_timecode_core::chase::ChaseSnapshot;

    use super::super::mtc::nanos;
    use super::super::spec::LtcSpec;
    use super::super::{Running, Say, TICK, Threaded, Timeline, Watch};
    use super::{CLIENT_NAME, LtcRenderer, MtcSchedule, NO_SERVER, mtc_in_period};

    /// How often the helper thread measures the offset from JACK's clock to the wall clock.
    pub const OFFSET_EVERY: Duration = Duration::from_millis(100);

    /// How long JACK may not call the process callback before the helper says it stopped.
    const STALL: Duration = Duration::from_secs(1);

    /// Which output the client carries.
    pub enum Kind<'a> {
        /// LTC on an audio port.
        Ltc(&'a LtcSpec),
        /// MTC on a MIDI port.
        Mtc,
    }

    /// What the callback and the helper thread share. `[thread-safe]`.
    #[derive(Debug, Default)]
    struct Shared {
        /// Wall clock minus JACK's clock, ns; `i64::MIN` until measured. Written by the helper
        /// thread, read by the callback. `[thread-safe]`.
        offset: AtomicI64,
        /// MIDI messages JACK had no room for. `[thread-safe]`.
        dropped: AtomicU64,
        /// Periods processed: the helper thread sees JACK stop calling. `[thread-safe]`.
        cycles: AtomicU64,
    }

    /// The port and what feeds it. `[audio-thread]`.
    enum Out {
        /// LTC: the port and the renderer.
        Ltc { port: Port<AudioOut>, renderer: LtcRenderer },
        /// MTC: the port and the schedule.
        Mtc { port: Port<MidiOut>, schedule: MtcSchedule },
    }

    /// JACK's process callback. `[audio-thread]`.
    struct Process {
        /// The chase's timeline, read with `try_latest`. `[thread-safe]`.
        timeline: Arc<Timeline>,
        /// The latest snapshot read. `[audio-thread]`.
        snap: ChaseSnapshot,
        /// Shared with the helper thread. `[thread-safe]`.
        shared: Arc<Shared>,
        /// JACK's sample rate, Hz. `[audio-thread]`.
        sample_rate: u32,
        /// The output. `[audio-thread]`.
        out: Out,
    }

    impl jack::ProcessHandler for Process {
        fn process(&mut self, _: &Client, ps: &ProcessScope) -> Control {
            self.shared.cycles.fetch_add(1, Ordering::Relaxed);
            if let Some(snap) = self.timeline.try_latest() {
                self.snap = snap;
            }
            let offset = self.shared.offset.load(Ordering::Acquire);
            let period = match ps.cycle_times() {
                Ok(times) if offset != i64::MIN && times.next_usecs > times.current_usecs => Some((
                    i128::from(times.current_usecs) * 1000 + i128::from(offset),
                    i128::from(times.next_usecs) * 1000 + i128::from(offset),
                )),
                _ => None,
            };
            let n = ps.n_frames();
            match &mut self.out {
                Out::Ltc { port, renderer } => {
                    let out = port.as_mut_slice(ps);
                    let Some((t_a, _)) = period else {
                        out.fill(0.0);
                        return Control::Continue;
                    };
                    // Our next sample plays at t_a: stream sample 0 at t_a minus what was played.
                    let played = i128::from(renderer.position()) * 1_000_000_000 / i128::from(self.sample_rate.max(1));
                    renderer.steer_t0(t_a - played);
                    // A refused rate renders silence (said by the helper thread).
                    let _ = renderer.render(&self.snap, out, |_| {});
                }
                Out::Mtc { port, schedule } => {
                    let mut writer = port.writer(ps);
                    let Some((t_a, t_b)) = period else { return Control::Continue };
                    mtc_in_period(schedule, &self.snap, (t_a, t_b), n, |time, message| {
                        if writer.write(&RawMidi { time, bytes: message.bytes() }).is_err() {
                            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            }
            Control::Continue
        }
    }

    /// Opens the client, registers the port, activates it, connects it, starts the helper.
    pub fn start(
        kind: Kind<'_>,
        dest: Option<&str>,
        half_rate: bool,
        timeline: &Arc<Timeline>,
        say: &Say,
    ) -> anyhow::Result<Box<dyn Running>> {
        let what = match kind {
            Kind::Ltc(_) => "LTC to JACK",
            Kind::Mtc => "MTC to JACK",
        };
        if dest.is_some_and(|d| d.contains('\0')) {
            anyhow::bail!("{what}: a JACK port's name has no NUL character");
        }
        let client = open().context(what)?;
        let sample_rate = client.sample_rate();
        let shared = Arc::new(Shared {
            offset: AtomicI64::new(i64::MIN),
            dropped: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
        });
        measure_offset(&client, &shared);
        let (out, port_name) = match kind {
            Kind::Ltc(ltc) => {
                let port = client.register_port("ltc", AudioOut::default()).context("LTC to JACK: no port")?;
                let name = port.name().context("LTC to JACK: the port has no name")?;
                let renderer = LtcRenderer::new(sample_rate, ltc.level.dbfs(), half_rate, ltc.idle, 0)
                    .with_context(|| format!("LTC to JACK at {sample_rate} Hz"))?;
                (Out::Ltc { port, renderer }, name)
            }
            Kind::Mtc => {
                let port = client.register_port("mtc", MidiOut::default()).context("MTC to JACK: no port")?;
                let name = port.name().context("MTC to JACK: the port has no name")?;
                (Out::Mtc { port, schedule: MtcSchedule::new(half_rate) }, name)
            }
        };
        let process = Process {
            timeline: Arc::clone(timeline),
            snap: timeline.latest(),
            shared: Arc::clone(&shared),
            sample_rate,
            out,
        };
        let active = client.activate_async((), process).map_err(|e| anyhow::anyhow!("{what}: could not start: {e}"))?;
        let mut name = format!("{what} ({port_name})");
        if let Some(dest) = dest {
            connect(active.as_client(), &port_name, dest, matches!(kind, Kind::Mtc)).context(what)?;
            name = format!("{what} ({port_name} → {dest})");
        }
        let helper = Helper {
            client: active,
            shared,
            timeline: Arc::clone(timeline),
            watch: Watch::new(name.clone(), half_rate, Arc::clone(say)),
            say: Arc::clone(say),
            name: name.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("jack-helper".into())
            .spawn(move || helper.run())
            .with_context(|| format!("{name}: could not start its thread"))?;
        Ok(Threaded::boxed(name, thread))
    }

    /// A client on the running JACK server (never starting one).
    fn open() -> anyhow::Result<Client> {
        // libjack's own messages ("Cannot connect to server socket", ...) are not for our user:
        // what matters is said in our words, one line.
        jack::set_logger(jack::LoggerType::None);
        match Client::new(CLIENT_NAME, ClientOptions::NO_START_SERVER) {
            Ok((client, _)) => Ok(client),
            Err(jack::Error::LibraryError(e)) => {
                anyhow::bail!("JACK is not installed: libjack could not be loaded ({e})")
            }
            Err(jack::Error::ClientError(status))
                if status.intersects(ClientStatus::SERVER_FAILED | ClientStatus::SERVER_ERROR) =>
            {
                anyhow::bail!("{NO_SERVER}")
            }
            Err(e) => anyhow::bail!("could not open a JACK client: {e}"),
        }
    }

    /// Connects our port `ours` to `dest`, an input port of the same type. Errors list those.
    fn connect(client: &Client, ours: &str, dest: &str, midi: bool) -> anyhow::Result<()> {
        let kind = if midi { "MIDI" } else { "audio" };
        let type_pattern = if midi { "midi" } else { "audio" };
        let inputs = client.ports(None, Some(type_pattern), PortFlags::IS_INPUT);
        if !inputs.iter().any(|p| p == dest) {
            let list = if inputs.is_empty() { "none".to_owned() } else { inputs.join(", ") };
            anyhow::bail!("no JACK {kind} input port named {dest:?} (the {kind} inputs: {list})");
        }
        client.connect_ports_by_name(ours, dest).with_context(|| format!("could not connect {ours} to {dest}"))
    }

    /// Measures wall clock minus JACK's clock (ns) and publishes it: the smallest bracket of
    /// three reads wins (least disturbed by preemption).
    fn measure_offset(client: &Client, shared: &Shared) {
        let mut best: Option<(i128, i128)> = None;
        for _ in 0..3 {
            let before = super::super::now_ns();
            let jack = i128::from(client.time()) * 1000;
            let after = super::super::now_ns();
            let span = after - before;
            if best.is_none_or(|(s, _)| span < s) {
                best = Some((span, before + span / 2 - jack));
            }
        }
        if let Some((_, offset)) = best {
            let offset = i64::try_from(offset).unwrap_or(i64::MIN);
            shared.offset.store(offset, Ordering::Release);
        }
    }

    /// The helper thread: keeps the clock offset fresh, says what the callback cannot, closes
    /// the client at the end. `[output-thread]`.
    struct Helper {
        /// The active client (deactivated at the end).
        client: jack::AsyncClient<(), Process>,
        /// Shared with the callback.
        shared: Arc<Shared>,
        /// The chase's timeline.
        timeline: Arc<Timeline>,
        /// Says refused or substituted rates and a lost master.
        watch: Watch,
        /// Where lines go.
        say: Say,
        /// The output's name.
        name: String,
    }

    impl Helper {
        fn run(mut self) -> anyhow::Result<()> {
            let mut dropped_said = 0;
            // The last period count seen, when it last moved, and whether JACK stopped calling.
            let (mut cycles, mut moved, mut stalled) = (0, Instant::now(), false);
            while !self.timeline.finished() {
                let now_cycles = self.shared.cycles.load(Ordering::Relaxed);
                if now_cycles != cycles {
                    (cycles, moved) = (now_cycles, Instant::now());
                    if stalled {
                        stalled = false;
                        (self.say)(format!("{}: JACK runs again", self.name));
                    }
                } else if !stalled && cycles > 0 && moved.elapsed() >= STALL {
                    stalled = true;
                    (self.say)(format!("{}: JACK stopped running us (its server went away?); silent", self.name));
                }
                measure_offset(self.client.as_client(), &self.shared);
                let snap = self.timeline.latest();
                self.watch.look(&snap);
                let dropped = self.shared.dropped.load(Ordering::Relaxed);
                if dropped > dropped_said {
                    (self.say)(format!("{}: {} MIDI messages found no room in JACK's buffer", self.name, dropped));
                    dropped_said = dropped;
                }
                let mut waited = 0;
                while waited < nanos(OFFSET_EVERY) && !self.timeline.finished() {
                    let now = super::super::now_ns();
                    if !self.timeline.sleep_until(now + nanos(TICK), &snap) {
                        break;
                    }
                    waited += nanos(TICK);
                }
            }
            match self.client.deactivate() {
                Ok(_) => Ok(()),
                // Said already: a server gone cannot be left cleanly.
                Err(_) if stalled => Ok(()),
                Err(e) => Err(anyhow::anyhow!("could not close the JACK client: {e}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use osc_timecode_core::FrameRate;
    use osc_timecode_core::chase::ChaseState;
    use osc_timecode_core::mtc::MtcFormat;

    use super::*;

    /// 25 fps from frame 0 at 0 ns; periods of 256 frames at 48 kHz (5 333 333 ns, JACK's
    /// clock as given): every quarter lands on its nearest frame, 480 frames apart, none lost or
    /// repeated across periods, the full frame first on the same frame as quarter 0.
    #[test]
    fn messages_land_on_their_frames_across_periods() {
        let snap = ChaseSnapshot {
            state: ChaseState::Locked,
            rate: Some(FrameRate::FPS_25),
            reference: Some((0, 0)),
            parked: None,
            generation: 1,
            since: 0,
        };
        let f = MtcFormat::new(FrameRate::FPS_25, false).unwrap();
        let mut schedule = MtcSchedule::new(false);
        let mut got: Vec<(i64, MtcMessage)> = Vec::new();
        for k in 0..200i64 {
            // Period k starts at frame 256·k, at 256·k / 48 000 s (rounded down to a ns).
            let t = |k: i64| i128::from(k) * 256 * 1_000_000_000 / 48_000;
            mtc_in_period(&mut schedule, &snap, (t(k), t(k + 1)), 256, |time, m| {
                assert!(time < 256);
                got.push((256 * k + i64::from(time), *m));
            });
        }
        assert_eq!(got[0], (0, MtcMessage::Full(f.full_frame(0))));
        let quarters = &got[1..];
        assert_eq!(quarters.len(), (200 * 256 - 1) / 480 + 1);
        for (q, &(frame, m)) in quarters.iter().enumerate() {
            assert_eq!(frame, 480 * q as i64, "quarter {q}");
            assert_eq!(m, MtcMessage::Quarter(f.quarter_message(q as i64)));
        }
        // A period that does not advance (JACK's clock stuck) writes nothing.
        let mut none = 0;
        mtc_in_period(&mut schedule, &snap, (5, 5), 256, |_, _| none += 1);
        assert_eq!(none, 0);
    }
}
