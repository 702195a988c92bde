//! One clock for the rig (issue 18): a receiver measures the master's clock against its own over
//! the OSC channel, NTP-style, so timetags (the master's wall clock) can be placed on the
//! receiver's clock even when the two machines' clocks are hundreds of milliseconds apart.
//!
//! The exchange ([`Ping`], [`Pong`]; addresses [`address::SYNC_PING`] and
//! [`address::SYNC_PONG`]): the receiver sends `/sync/ping ID ORIGIN 0 0 0` to the address the
//! timecode comes from; the master answers from that socket with `/sync/pong ID ORIGIN T2 T3
//! EPOCH`: the ping's ID and ORIGIN echoed untouched, when it received the ping (T2) and when it
//! sent the pong (T3) on the timescale of its timetags, and a counter it bumps when its own clock
//! steps. Both messages are 56 bytes: a pong is never bigger than the ping it answers.
//!
//! The estimator ([`ClockSync`]) is pure: it is given the four instants of each exchange as
//! numbers ([`Exchange`]: T1 and T4 on the receiver's **monotonic** clock, T2 and T3 on the
//! master's), so it is tested with simulated offsets, drift, jitter, loss and steps. As NTP's
//! clock filter and LSL do, it keeps the exchange with the smallest round trip of each burst
//! (queueing only ever adds delay, and asymmetric queueing biases a median: research measured
//! ±1 ms for the median against ±0.2 ms for the minimum with 0–4 ms one-way jitter); the offset
//! of an exchange is wrong by at most half its round trip, which is the bound shown to the user.
//! It follows drift with a line through the fastest burst of the last [`FIT_BURSTS`] (32 s), its
//! slope fitted over them (weighted by 1/round trip², within ±[`MAX_DRIFT_PPM`]), as NTP keeps its
//! least-delayed sample; it slews changes up to [`SLEW_LIMIT_NS`] at [`SLEW_RATE`] rather than
//! jumping, and treats a new epoch, or a change beyond [`step_threshold`] that the next burst
//! confirms, as a step: the fit starts again, the new offset applies at once, and the caller
//! re-locks ([`BurstOutcome::Step`]).
//!
//! The result maps the master's time onto the receiver's monotonic clock
//! ([`ClockSync::to_local`]), so a step of the receiver's own wall clock cannot move the position
//! either.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rosc::{OscMessage, OscPacket, OscTime, OscType};

use crate::protocol::address;

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;

/// The length of a ping and of a pong, bytes: `/sync/ping` or `/sync/pong` (12), `,hhtti` (8),
/// two int64s, two timetags and an int32 (36).
pub const PACKET_LEN: usize = 56;

/// Exchanges in a burst.
pub const BURST_PINGS: u32 = 8;
/// Time between the pings of a burst, ns.
pub const PING_SPACING_NS: i128 = 40_000_000;
/// Time between the starts of two bursts, ns.
pub const BURST_EVERY_NS: i128 = 2 * NANOS;
/// Exchanges with a longer round trip are ignored, ns (LSL's `TimeProbeMaxRTT`).
pub const MAX_ROUND_TRIP_NS: i128 = 128_000_000;
/// Bursts the fit spans (32 s): long enough that asymmetric queueing in a few bursts does not
/// tilt the drift estimate (with 0–4 ms one-way jitter, 8 bursts left p99 errors of 0.35 ms,
/// 16 bursts 0.24 ms, in simulation).
pub const FIT_BURSTS: usize = 16;
/// The largest drift believed between two clocks, ppm: crystals are tens of ppm apart, NTP
/// slews at most 500.
pub const MAX_DRIFT_PPM: f64 = 500.0;
/// Changes of the estimate up to this are slewed, ns.
pub const SLEW_LIMIT_NS: i128 = 1_000_000;
/// How fast a change is slewed: 0.5 ms per second (ntpd's kernel slew).
pub const SLEW_RATE: f64 = 0.0005;
/// The smallest change that can be a step, ns.
pub const STEP_MIN_NS: i128 = 2_000_000;

/// The change beyond which a burst's estimate is a step (to be confirmed): 2 ms, or four times
/// the bound, whichever is larger.
pub fn step_threshold(bound_ns: i128) -> i128 {
    STEP_MIN_NS.max(4 * bound_ns)
}

/// `/sync/ping ID ORIGIN 0 0 0`: receiver → master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    /// The receiver's counter, echoed.
    pub id: i64,
    /// Opaque to the master, echoed: the receiver's send instant (monotonic ns).
    pub origin: i64,
}

/// `/sync/pong ID ORIGIN T2 T3 EPOCH`: master → the ping's sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pong {
    /// The ping's ID.
    pub id: i64,
    /// The ping's ORIGIN.
    pub origin: i64,
    /// When the master received the ping, on its timetags' timescale.
    pub received: OscTime,
    /// When the master sent the pong, on its timetags' timescale.
    pub sent: OscTime,
    /// Bumped by the master each time its own clock steps.
    pub epoch: i32,
}

/// Why a datagram is not a ping or a pong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// Not one OSC message with the right address and arguments `,hhtti`.
    #[error("not a {0} message (,hhtti: ID ORIGIN TIMETAG TIMETAG EPOCH)")]
    Shape(&'static str),
}

fn message(addr: &str, id: i64, origin: i64, a: OscTime, b: OscTime, epoch: i32) -> OscPacket {
    OscPacket::Message(OscMessage {
        addr: addr.to_owned(),
        args: vec![OscType::Long(id), OscType::Long(origin), OscType::Time(a), OscType::Time(b), OscType::Int(epoch)],
    })
}

const ZERO: OscTime = OscTime { seconds: 0, fractional: 0 };

impl Ping {
    /// The datagram (56 bytes).
    pub fn encode(self) -> Vec<u8> {
        rosc::encoder::encode(&message(address::SYNC_PING, self.id, self.origin, ZERO, ZERO, 0)).unwrap_or_default()
    }
}

impl Pong {
    /// The answer to `ping`, received and sent at those instants, in `epoch`.
    pub fn answer(ping: Ping, received: OscTime, sent: OscTime, epoch: i32) -> Self {
        Self { id: ping.id, origin: ping.origin, received, sent, epoch }
    }

    /// The datagram (56 bytes, as long as the ping).
    pub fn encode(self) -> Vec<u8> {
        rosc::encoder::encode(&message(address::SYNC_PONG, self.id, self.origin, self.received, self.sent, self.epoch))
            .unwrap_or_default()
    }
}

/// The five arguments of a ping or pong at `addr`, checked strictly (no bundle, exactly
/// `,hhtti`).
fn decode(bytes: &[u8], addr: &'static str) -> Result<(i64, i64, OscTime, OscTime, i32), SyncError> {
    // The shape first, without recursion (rosc's decoder recurses into nested bundles): a bare
    // message, nothing deeper. Anyone can send anything to these sockets.
    if bytes.len() != PACKET_LEN || crate::cue::check_shape(bytes, 0, 1).is_err() {
        return Err(SyncError::Shape(addr));
    }
    let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(bytes) else { return Err(SyncError::Shape(addr)) };
    match (m.addr.as_str(), m.args.as_slice()) {
        (a, [OscType::Long(id), OscType::Long(origin), OscType::Time(t2), OscType::Time(t3), OscType::Int(e)])
            if a == addr =>
        {
            Ok((*id, *origin, *t2, *t3, *e))
        }
        _ => Err(SyncError::Shape(addr)),
    }
}

impl Ping {
    /// Reads a ping (the padding arguments are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        decode(bytes, address::SYNC_PING).map(|(id, origin, ..)| Self { id, origin })
    }
}

impl Pong {
    /// Reads a pong.
    pub fn decode(bytes: &[u8]) -> Result<Self, SyncError> {
        decode(bytes, address::SYNC_PONG).map(|(id, origin, received, sent, epoch)| Self {
            id,
            origin,
            received,
            sent,
            epoch,
        })
    }
}

/// Pongs a second a master sends one source, at most (a burst is 8 pings over 280 ms).
pub const PONGS_PER_SOURCE: u32 = 20;
/// Pongs a second a master sends in all, at most.
pub const PONGS_IN_ALL: u32 = 200;
/// Sources a master counts within a second; pings from more are refused until the next second.
pub const PONG_SOURCES: usize = 1024;

/// A master's limits on pongs: counts per one-second window, per source and in all, in bounded
/// memory. The plugin's network thread and `serve`'s responders each keep one. `[thread-safe]`
/// as plain data; owned by one thread.
#[derive(Debug, Default)]
pub struct PongLimits {
    /// The current window's start.
    window: Option<Instant>,
    /// Pongs sent in it, in all.
    total: u32,
    /// Pongs sent in it, per source address; at most [`PONG_SOURCES`] entries.
    per_source: HashMap<IpAddr, u32>,
}

impl PongLimits {
    /// Whether a pong to `from` at `now` is within the limits (and counts it if so).
    pub fn allow(&mut self, from: IpAddr, now: Instant) -> bool {
        if self.window.is_none_or(|w| now.duration_since(w) >= Duration::from_secs(1)) {
            self.window = Some(now);
            self.total = 0;
            self.per_source.clear();
        }
        if self.total >= PONGS_IN_ALL {
            return false;
        }
        if !self.per_source.contains_key(&from) && self.per_source.len() >= PONG_SOURCES {
            return false;
        }
        let n = self.per_source.entry(from).or_insert(0);
        if *n >= PONGS_PER_SOURCE {
            return false;
        }
        *n += 1;
        self.total += 1;
        true
    }
}

/// One ping–pong exchange, as numbers: T1 and T4 on the receiver's monotonic clock, T2 and T3 on
/// the master's clock, all ns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exchange {
    /// The receiver sent the ping.
    pub t1: i128,
    /// The master received it.
    pub t2: i128,
    /// The master sent the pong.
    pub t3: i128,
    /// The receiver received the pong.
    pub t4: i128,
    /// The master's clock epoch.
    pub epoch: i32,
}

impl Exchange {
    /// The round trip without the master's turnaround, ns: `(T4 − T1) − (T3 − T2)`.
    pub fn round_trip(&self) -> i128 {
        (self.t4 - self.t1) - (self.t3 - self.t2)
    }

    /// Master minus receiver at the exchange's midpoint, ns: `((T2 − T1) + (T3 − T4)) / 2`.
    pub fn offset(&self) -> i128 {
        ((self.t2 - self.t1) + (self.t3 - self.t4)).div_euclid(2)
    }

    /// The receiver's instant of the midpoint, ns.
    pub fn at(&self) -> i128 {
        self.t1 + (self.t4 - self.t1).div_euclid(2)
    }
}

/// One burst's best exchange: when, the offset, its round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    /// Receiver monotonic ns.
    at: i128,
    /// Master − receiver, ns.
    offset: i128,
    /// Round trip, ns (≥ 1).
    round_trip: i128,
}

/// A straight line `offset(t) = offset + slope · (t − at)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Line {
    /// Receiver monotonic ns.
    at: i128,
    /// Master − receiver at `at`, ns.
    offset: f64,
    /// ns per ns.
    slope: f64,
}

impl Line {
    fn eval(&self, t: i128) -> f64 {
        self.offset + self.slope * (t - self.at) as f64
    }
}

/// Where the estimate stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncState {
    /// No burst answered yet (or the epoch changed and nothing since).
    Unsynced,
    /// The master's clock is known.
    Synced {
        /// Master − receiver now, ns.
        offset_ns: i128,
        /// The error bound: half the round trip of the fastest burst the estimate goes through, ns.
        bound_ns: i128,
        /// The master's clock runs this much faster, ppm.
        drift_ppm: f64,
        /// Steps seen so far.
        steps: u64,
    },
}

/// What ending a burst did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BurstOutcome {
    /// No usable exchange in the burst (all lost, or too slow).
    Nothing,
    /// The first estimate.
    Synced,
    /// The estimate was refined (slewed if small).
    Updated,
    /// A far-off estimate, held until the next burst confirms or refutes it.
    Held,
    /// A step: the new offset applies at once; positions should be locked again.
    Step,
}

/// The clock-sync estimator of one receiver for one master. Pure; bounded memory
/// ([`FIT_BURSTS`] points). `[main-thread]` of the receiver.
#[derive(Debug, Clone, Default)]
pub struct ClockSync {
    /// The best exchange of the burst under way.
    best: Option<Exchange>,
    /// The last bursts' best points, oldest first, at most [`FIT_BURSTS`].
    points: VecDeque<Point>,
    /// The fit in force (`None` before the first burst).
    fit: Option<Line>,
    /// A slew under way: the correction added to the fit, ns, at the instant given, shrinking
    /// towards 0 at [`SLEW_RATE`].
    slew: Option<(i128, f64)>,
    /// A far-off burst waiting for confirmation.
    held: Option<Point>,
    /// The master's epoch last seen.
    epoch: Option<i32>,
    /// The last burst's bound, ns.
    bound: i128,
    /// Steps so far.
    steps: u64,
}

impl ClockSync {
    /// A new estimator: unsynced.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one exchange of the burst under way. Refused (false): a negative or too long round
    /// trip. An exchange of a new epoch ends the burst under way at once.
    pub fn on_exchange(&mut self, e: Exchange) -> bool {
        let rt = e.round_trip();
        if !(0..=MAX_ROUND_TRIP_NS).contains(&rt) || e.t4 < e.t1 {
            return false;
        }
        if self.best.is_some_and(|b| b.epoch != e.epoch) {
            self.best = None;
        }
        if self.best.is_none_or(|b| rt < b.round_trip()) {
            self.best = Some(e);
        }
        true
    }

    /// Ends the burst under way (call it when its last ping's pong is due or its time is up).
    pub fn end_burst(&mut self) -> BurstOutcome {
        let Some(best) = self.best.take() else { return BurstOutcome::Nothing };
        let point = Point { at: best.at(), offset: best.offset(), round_trip: best.round_trip().max(1) };
        let bound = point.round_trip / 2;
        let new_epoch = self.epoch.is_some_and(|e| e != best.epoch);
        self.epoch = Some(best.epoch);
        let Some(fit) = self.fit else {
            self.restart(point);
            return BurstOutcome::Synced;
        };
        if new_epoch {
            self.restart(point);
            self.steps += 1;
            return BurstOutcome::Step;
        }
        let predicted = self.offset_at(point.at).unwrap_or(fit.eval(point.at) as i128);
        let change = point.offset - predicted;
        if change.abs() > step_threshold(bound.max(self.bound)) {
            match self.held.take() {
                // Confirmed: this burst agrees with the held one, not with the fit.
                Some(h) if (point.offset - h.offset).abs() <= step_threshold(bound.max(h.round_trip / 2)) => {
                    self.restart(h);
                    self.add(point);
                    self.bound = bound;
                    self.steps += 1;
                    return BurstOutcome::Step;
                }
                _ => {
                    self.held = Some(point);
                    return BurstOutcome::Held;
                }
            }
        }
        // Refuted, if one was held: a one-off.
        self.held = None;
        self.bound = bound;
        let before = self.offset_at(point.at).map_or(0.0, |o| o as f64);
        self.add(point);
        let after = self.fit.map_or(before, |f| f.eval(point.at));
        let correction = before - after;
        self.slew = if correction.abs() <= SLEW_LIMIT_NS as f64 { Some((point.at, correction)) } else { None };
        BurstOutcome::Updated
    }

    /// Starts the fit afresh from `point`.
    fn restart(&mut self, point: Point) {
        self.points.clear();
        self.held = None;
        self.slew = None;
        self.bound = point.round_trip / 2;
        self.add(point);
    }

    /// Adds a point and refits.
    fn add(&mut self, point: Point) {
        if self.points.len() == FIT_BURSTS {
            self.points.pop_front();
        }
        self.points.push_back(point);
        self.fit = Some(fit(&self.points));
    }

    /// Master − receiver at receiver instant `t`, ns, with any slew under way; `None` unsynced.
    pub fn offset_at(&self, t: i128) -> Option<i128> {
        let fit = self.fit?;
        let mut o = fit.eval(t);
        if let Some((since, correction)) = self.slew {
            let elapsed = (t - since).max(0) as f64;
            let left = (correction.abs() - SLEW_RATE * elapsed).max(0.0);
            o += left.copysign(correction);
        }
        Some(o.round() as i128)
    }

    /// The receiver's monotonic instant at which the master's clock reads `master_ns`; `None`
    /// unsynced. `now` (receiver monotonic ns) picks where the offset is read; it changes
    /// slowly, so one refinement suffices.
    pub fn to_local(&self, master_ns: i128, now: i128) -> Option<i128> {
        let first = master_ns - self.offset_at(now)?;
        Some(master_ns - self.offset_at(first)?)
    }

    /// The error bound of the line in force: half the round trip of the fastest burst it goes
    /// through (the drift extrapolated since is the slope's, small against it).
    fn bound_now(&self) -> i128 {
        self.points.iter().map(|p| p.round_trip / 2).min().unwrap_or(self.bound)
    }

    /// Where the estimate stands at receiver instant `now`.
    pub fn state(&self, now: i128) -> SyncState {
        match (self.offset_at(now), self.fit) {
            (Some(offset_ns), Some(fit)) => SyncState::Synced {
                offset_ns,
                bound_ns: self.bound_now(),
                drift_ppm: fit.slope * 1e6,
                steps: self.steps,
            },
            _ => SyncState::Unsynced,
        }
    }
}

/// The line through the fastest of `points`, its slope the weighted least-squares fit's (weights
/// 1/round trip²), clamped to ±[`MAX_DRIFT_PPM`]; one point: a flat line.
fn fit(points: &VecDeque<Point>) -> Line {
    let last = *points.back().expect("fit of at least one point");
    let at = last.at;
    let (mut sw, mut sx, mut sy, mut sxx, mut sxy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in points {
        // 1/RTT²: a burst's error is at most half its round trip and mostly its asymmetric
        // queueing, so the fastest bursts of the window carry the slope.
        let rt = p.round_trip as f64;
        let w = 1.0 / (rt * rt);
        let x = (p.at - at) as f64;
        let y = (p.offset - last.offset) as f64;
        sw += w;
        sx += w * x;
        sy += w * y;
        sxx += w * x * x;
        sxy += w * x * y;
    }
    let det = sw * sxx - sx * sx;
    let max = MAX_DRIFT_PPM * 1e-6;
    let slope =
        if points.len() < 2 || det.abs() < f64::EPSILON { 0.0 } else { ((sw * sxy - sx * sy) / det).clamp(-max, max) };
    // Through the fastest burst of the window, as NTP's clock filter keeps the sample with the
    // least delay: its offset is wrong by at most half the smallest round trip, where any
    // average drags in the slower bursts' asymmetric queueing. The slope is the fit's.
    let best = points.iter().min_by_key(|p| p.round_trip).copied().unwrap_or(last);
    Line { at: best.at, offset: best.offset as f64, slope }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic PRNG (xorshift64*).
    fn rng(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed.max(1);
        move || {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// The master's clock as a function of the receiver's monotonic clock: offset, drift, steps.
    #[derive(Clone)]
    struct Master {
        offset: i128,
        drift_ppm: f64,
        /// (from receiver instant, extra offset, epoch) — a step of the master's clock.
        steps: Vec<(i128, i128, i32)>,
    }

    impl Master {
        fn at(&self, t: i128) -> (i128, i32) {
            let mut o = self.offset + (t as f64 * self.drift_ppm * 1e-6) as i128;
            let mut epoch = 0;
            for &(from, extra, e) in &self.steps {
                if t >= from {
                    o += extra;
                    epoch = e;
                }
            }
            (t + o, epoch)
        }
    }

    /// Runs `bursts` bursts against `m` with one-way delays of a base plus uniform jitter up to
    /// `forward`/`back` ns and `loss` of 1000 lost; with `check`, once settled, checks the
    /// estimate right after each burst against the truth. Returns the outcomes.
    fn run(m: &Master, bursts: u32, forward: u64, back: u64, loss: u64, seed: u64, check: bool) -> Vec<BurstOutcome> {
        let mut next = rng(seed);
        let mut sync = ClockSync::new();
        let mut outcomes = Vec::new();
        // Half the smallest round trip of each burst, the last FIT_BURSTS.
        let mut halves: VecDeque<i128> = VecDeque::new();
        for b in 0..bursts {
            let start = 1_000 * NANOS + i128::from(b) * BURST_EVERY_NS;
            let mut smallest = i128::MAX;
            for k in 0..BURST_PINGS {
                if next() % 1000 < loss {
                    continue;
                }
                let t1 = start + i128::from(k) * PING_SPACING_NS;
                let there = 100_000 + i128::from(next() % (forward + 1));
                let turnaround = 20_000 + i128::from(next() % 50_000);
                let back_delay = 100_000 + i128::from(next() % (back + 1));
                let (t2, epoch) = m.at(t1 + there);
                let (t3, _) = m.at(t1 + there + turnaround);
                let t4 = t1 + there + turnaround + back_delay;
                let e = Exchange { t1, t2, t3, t4, epoch };
                smallest = smallest.min(e.round_trip());
                assert!(sync.on_exchange(e));
            }
            let outcome = sync.end_burst();
            outcomes.push(outcome);
            if smallest < i128::MAX {
                if halves.len() == FIT_BURSTS {
                    halves.pop_front();
                }
                halves.push_back(smallest / 2);
            }
            let now = start + i128::from(BURST_PINGS) * PING_SPACING_NS;
            if check
                && b >= 3
                && outcome != BurstOutcome::Held
                && let SyncState::Synced { offset_ns, bound_ns, .. } = sync.state(now)
            {
                let fastest = halves.iter().copied().min().unwrap_or(0);
                assert!(
                    (fastest..=smallest / 2).contains(&bound_ns),
                    "the bound shown is half the fastest round trip the line goes through: {bound_ns}"
                );
                // Each burst's best exchange is off by at most half its round trip; the fit
                // averages them and extrapolates its slope, a slew may be under way.
                let worst = halves.iter().copied().max().unwrap_or(0);
                let truth = m.at(now).0 - now;
                let err = offset_ns - truth;
                assert!(
                    err.abs() <= worst * 3 / 2 + 150_000,
                    "burst {b}: error {err} ns, worst half round trip {worst} ns (seed {seed})"
                );
                let local = sync.to_local(m.at(now).0, now).unwrap();
                // Read at the local instant, the offset differs by the drift over the offset.
                let slack = (offset_ns.abs() as f64 * MAX_DRIFT_PPM * 1e-6) as i128 + 1_000;
                assert!((local - now + err).abs() <= slack, "to_local agrees with the offset: {} ns off", local - now);
            }
        }
        outcomes
    }

    #[test]
    fn the_wire_form_is_56_bytes_both_ways_and_reads_back() {
        let ping = Ping { id: 7, origin: -3 };
        let bytes = ping.encode();
        assert_eq!(bytes.len(), 56);
        assert_eq!(Ping::decode(&bytes), Ok(ping));
        let pong = Pong::answer(ping, OscTime { seconds: 1, fractional: 2 }, OscTime { seconds: 3, fractional: 4 }, 9);
        let back = pong.encode();
        assert_eq!(back.len(), bytes.len(), "a pong is exactly as long as its ping");
        assert_eq!(Pong::decode(&back), Ok(pong));
        assert!(Pong::decode(&bytes).is_err(), "a ping is not a pong");
        assert!(Ping::decode(&back[..40]).is_err());
        // Nested bundles are refused before anything recursive reads them.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(b"#bundle\0\0\0\0\0\0\0\0\x01");
        }
        assert!(Pong::decode(&deep).is_err() && Ping::decode(&deep[..56]).is_err());
    }

    #[test]
    fn offset_and_drift_are_tracked_within_the_bound_under_asymmetric_jitter_and_loss() {
        for seed in 1..=20u64 {
            let offset = (seed as i128 * 37_000_000) % 400_000_000 - 200_000_000;
            let drift_ppm = ((seed * 53) % 1000) as f64 - 500.0;
            let m = Master { offset, drift_ppm, steps: Vec::new() };
            // 0–4 ms of jitter on one way only, then both, with 10 % loss.
            run(&m, 30, 4_000_000, 0, 100, seed, true);
            run(&m, 30, 0, 4_000_000, 100, seed + 100, true);
            let outcomes = run(&m, 30, 4_000_000, 4_000_000, 100, seed + 200, true);
            assert_eq!(outcomes[0], BurstOutcome::Synced);
            assert!(!outcomes.contains(&BurstOutcome::Step), "no step without one: {outcomes:?}");
        }
    }

    #[test]
    fn a_step_is_held_then_confirmed_by_the_next_burst_and_an_epoch_is_a_step_at_once() {
        let at = 1_000 * NANOS + 10 * BURST_EVERY_NS + NANOS;
        let m = Master { offset: 250_000_000, drift_ppm: 20.0, steps: vec![(at, 80_000_000, 0)] };
        let outcomes = run(&m, 20, 1_000_000, 1_000_000, 0, 5, true);
        assert_eq!(&outcomes[10..13], &[BurstOutcome::Updated, BurstOutcome::Held, BurstOutcome::Step], "{outcomes:?}");
        // Announced by the master: a new epoch is a step in the burst that sees it.
        let m = Master { offset: -90_000_000, drift_ppm: 0.0, steps: vec![(at, 500_000, 1)] };
        let outcomes = run(&m, 20, 1_000_000, 1_000_000, 0, 6, true);
        assert_eq!(outcomes[11], BurstOutcome::Step, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| **o == BurstOutcome::Step).count(), 1);
    }

    #[test]
    fn a_one_off_outlier_is_refuted_and_small_changes_are_slewed() {
        let mut sync = ClockSync::new();
        let burst = |sync: &mut ClockSync, n: i128, offset: i128| {
            let t = n * BURST_EVERY_NS;
            sync.on_exchange(Exchange {
                t1: t,
                t2: t + offset + 100_000,
                t3: t + offset + 120_000,
                t4: t + 220_000,
                epoch: 0,
            });
            sync.end_burst()
        };
        assert_eq!(burst(&mut sync, 1, 5_000_000), BurstOutcome::Synced);
        assert_eq!(burst(&mut sync, 2, 5_000_000), BurstOutcome::Updated);
        assert_eq!(burst(&mut sync, 3, 50_000_000), BurstOutcome::Held);
        assert_eq!(burst(&mut sync, 4, 5_000_000), BurstOutcome::Updated, "refuted");
        // 0.6 ms later: slewed, not jumped.
        let t = 5 * BURST_EVERY_NS + 110_000;
        let before = sync.offset_at(t).unwrap();
        assert_eq!(burst(&mut sync, 5, 5_600_000), BurstOutcome::Updated);
        let just_after = sync.offset_at(t).unwrap();
        assert!((just_after - before).abs() < 10_000, "a small change does not jump: {before} → {just_after}");
        let later = sync.offset_at(t + 3 * NANOS).unwrap();
        let fitted = sync.fit.unwrap().eval(t + 3 * NANOS).round() as i128;
        assert_eq!(later, fitted, "the slew is done after at most 2 s");
    }

    #[test]
    fn pong_limits_per_source_and_in_all() {
        let mut limits = PongLimits::default();
        let t = Instant::now();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!((0..30).filter(|_| limits.allow(a, t)).count(), PONGS_PER_SOURCE as usize);
        assert!(limits.allow(b, t), "another source has its own allowance");
        assert!(limits.allow(a, t + Duration::from_secs(1)), "a new second");
        let mut limits = PongLimits::default();
        let allowed =
            (0..300u32).filter(|i| limits.allow(IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8]), t)).count();
        assert_eq!(allowed, PONGS_IN_ALL as usize);
    }

    #[test]
    fn bad_exchanges_are_refused_and_an_empty_burst_is_nothing() {
        let mut sync = ClockSync::new();
        assert!(!sync.on_exchange(Exchange { t1: 10, t2: 5, t3: 6, t4: 9, epoch: 0 }), "pong before ping");
        assert!(!sync.on_exchange(Exchange { t1: 0, t2: 0, t3: 0, t4: 200_000_000, epoch: 0 }), "too slow");
        assert_eq!(sync.end_burst(), BurstOutcome::Nothing);
        assert_eq!(sync.state(0), SyncState::Unsynced);
    }
}
