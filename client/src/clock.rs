//! The receiver's clock and how a master's timetags are placed on it (issue 18).
//!
//! Timetags are the master's wall clock. `listen` (and the outputs it runs) keep time on
//! [`local_now`]: the wall clock read once when the command starts, then advanced by the monotonic
//! clock, so a step of this machine's wall clock (NTP, an operator) cannot move a position. A
//! timetag becomes an instant on that clock in one of three ways ([`ClockMode`], `--clock`):
//!
//! - `same`: the clocks are assumed to agree (NTP or PTP on both, or the same machine): the
//!   timetag is read as this machine's wall time now. The default for a master on loopback.
//! - `sync`: measured. Bursts of [`BURST_PINGS`] `/sync/ping`s every 2 s (the first four 0.5 s
//!   apart) to the master's address ([`osc_timecode_core::clocksync`]); the estimate maps the
//!   master's clock onto ours, and the bound (how far every offset the exchanges allow is from
//!   it: about half the smallest round trip once warmed up) is shown as `sync ±X ms`. Until the first burst is answered, and
//!   whenever the master stops answering (two bursts without a pong), frames are placed by
//!   arrival (below), and `listen` says so. The default for a master elsewhere.
//! - `arrival`: for masters that do not answer: the timetag plus the smallest `arrival − timetag`
//!   of the last 2 s. It cancels the clocks' offset and the network's jitter, but not the master's
//!   send-ahead (the plugin sends each frame a block plus its output latency before it is heard),
//!   so frames are early by that minus the network's fastest delivery; `--clock-offset-ms` trims
//!   it (positive: later).
//!
//! Whatever the mode, when `arrival − timetag` (as placed) is implausible, below −1 s or above
//! +50 ms over the last packets, `listen` says once that the clocks disagree.

use std::net::{SocketAddr, UdpSocket};
use std::sync::LazyLock;
use std::time::{Instant, SystemTime};

use osc_timecode_core::chase::unix_nanos;
use osc_timecode_core::clocksync::{
    BURST_PINGS, BurstOutcome, ClockSync, Exchange, PING_SPACING_NS, Ping, Pong, SyncState,
};
use osc_timecode_core::protocol::system_time_from_timetag;

/// Nanoseconds per millisecond.
const MS: i128 = 1_000_000;
/// How long after a burst's last ping its pongs may still come.
const BURST_GRACE_NS: i128 = 200 * MS;
/// Bursts without any pong before the master is taken not to answer.
const UNANSWERED_BURSTS: u32 = 2;
/// Then: the next try after this, and later tries this far apart.
const RETRY_FIRST_NS: i128 = 5_000 * MS;
/// See [`RETRY_FIRST_NS`].
const RETRY_EVERY_NS: i128 = 30_000 * MS;
/// The arrival estimate's window.
const ARRIVAL_WINDOW_NS: i128 = 2_000 * MS;
/// Packets in the plausibility check's window.
const PLAUSIBLE_WINDOW: usize = 64;
/// `arrival − heard` beyond these (ms) means the clocks disagree.
const PLAUSIBLE_MS: (i128, i128) = (-1_000, 50);

/// The command's clock origin: (monotonic, wall ns) read together once.
static ORIGIN: LazyLock<(Instant, i128)> = LazyLock::new(|| (Instant::now(), unix_nanos(SystemTime::now())));

/// Now on the receiver's clock, ns "since the Unix epoch": the wall clock at the command's start
/// plus the monotonic time since. Monotonic; equal to the wall clock unless that was set since.
pub fn local_now() -> i128 {
    let (instant, wall) = *ORIGIN;
    wall + i128::try_from(instant.elapsed().as_nanos()).unwrap_or(i128::MAX / 2)
}

/// The wall clock minus [`local_now`], ns: 0 unless this machine's wall clock was set (or
/// slewed apart from the monotonic clock) since the command started.
pub fn wall_minus_local() -> i128 {
    unix_nanos(SystemTime::now()) - local_now()
}

/// How timetags are placed on this machine's clock (`--clock`, `clock` in `[client]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockMode {
    /// The clocks agree (NTP/PTP, or the same machine).
    Same,
    /// Measured with `/sync/ping`.
    Sync,
    /// By arrival times, for masters that do not answer pings.
    Arrival,
}

impl ClockMode {
    /// The name in flags, files and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Same => "same",
            Self::Sync => "sync",
            Self::Arrival => "arrival",
        }
    }

    /// The default for a master at `master`: `same` on loopback, `sync` elsewhere.
    pub fn default_for(master: SocketAddr) -> Self {
        if master.ip().is_loopback() { Self::Same } else { Self::Sync }
    }
}

impl std::str::FromStr for ClockMode {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "same" => Ok(Self::Same),
            "sync" => Ok(Self::Sync),
            "arrival" => Ok(Self::Arrival),
            _ => Err(format!("the clock is same, sync or arrival, not {text}")),
        }
    }
}

/// What the readout shows about the clock. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockView {
    /// The mode in force (`None`: no master yet, and no `--clock`).
    pub mode: Option<ClockMode>,
    /// In `sync`: the estimate, or `None` while unsynced.
    pub sync: Option<(i128, i128, u64)>,
    /// In `sync`: frames are placed by arrival meanwhile (not answered yet, or no more).
    pub by_arrival: bool,
}

impl ClockView {
    /// `sync ±0.12 ms`, `by arrival`, `unsynced (by arrival)`; nothing for `same` (the line
    /// as it always was).
    pub fn text(&self) -> String {
        match (self.mode, self.sync, self.by_arrival) {
            (None | Some(ClockMode::Same), ..) => String::new(),
            (Some(ClockMode::Arrival), ..) => "by arrival".into(),
            (Some(ClockMode::Sync), Some((_, bound, _)), false) => format!("sync ±{:.2} ms", bound as f64 / 1e6),
            (Some(ClockMode::Sync), _, _) => "unsynced (by arrival)".into(),
        }
    }

    /// Adds `clock`, `sync` (synced, unsynced), `sync_bound_ms`, `clock_offset_ms` (master −
    /// this machine) and `clock_steps` to a JSON readout.
    pub fn add_json(&self, obj: &mut serde_json::Value) {
        obj["clock"] = self.mode.map(ClockMode::name).into();
        let synced = self.mode == Some(ClockMode::Sync) && self.sync.is_some() && !self.by_arrival;
        obj["sync"] = match self.mode {
            Some(ClockMode::Sync) => (if synced { "synced" } else { "unsynced" }).into(),
            _ => serde_json::Value::Null,
        };
        obj["sync_bound_ms"] = self.sync.filter(|_| synced).map(|(_, b, _)| b as f64 / 1e6).into();
        obj["clock_offset_ms"] = self.sync.map(|(o, _, _)| o as f64 / 1e6).into();
        obj["clock_steps"] = self.sync.map_or(0, |(_, _, s)| s).into();
    }
}

/// A ping of the burst under way, waiting for its pong.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Its ID.
    id: i64,
    /// When it was sent (T1, [`local_now`]).
    t1: i128,
}

/// How timetags are placed for one `listen`: the mode, the sync estimator and its pings, the
/// arrival estimate, the plausibility check. `[main-thread]`.
#[derive(Debug)]
pub struct Clock {
    /// `--clock`, if given; else the default for the master, once there is one.
    asked: Option<ClockMode>,
    /// The mode in force.
    mode: Option<ClockMode>,
    /// `--clock-offset-ms`, ns, added to every placement.
    trim: i128,
    /// The master pinged.
    master: Option<SocketAddr>,
    /// The estimator.
    sync: ClockSync,
    /// Whether the estimate is in use (synced and answering).
    answering: bool,
    /// The next ping's ID.
    next_id: i64,
    /// Pings of the burst under way (at most [`BURST_PINGS`]).
    pending: Vec<Pending>,
    /// Pings sent in the burst under way.
    sent_in_burst: u32,
    /// When the next ping goes ([`local_now`] ns).
    next_ping: i128,
    /// When the burst under way ends.
    burst_ends: Option<i128>,
    /// Pongs received in the burst under way.
    pongs_in_burst: u32,
    /// Bursts in a row without a pong.
    unanswered: u32,
    /// Recent `(arrival, arrival − timetag)` for the arrival estimate, ns.
    arrivals: std::collections::VecDeque<(i128, i128)>,
    /// Recent `arrival − heard` as placed, ns, for the plausibility check.
    placed: std::collections::VecDeque<i128>,
    /// The clocks were said to disagree (said once until they agree again).
    disagreeing: bool,
}

impl Clock {
    /// A clock placing timetags as `asked` (or by the master's default), trimmed by `trim_ns`.
    pub fn new(asked: Option<ClockMode>, trim_ns: i128) -> Self {
        Self {
            asked,
            mode: asked,
            trim: trim_ns,
            master: None,
            sync: ClockSync::new(),
            answering: false,
            next_id: 1,
            pending: Vec::new(),
            sent_in_burst: 0,
            next_ping: 0,
            burst_ends: None,
            pongs_in_burst: 0,
            unanswered: 0,
            arrivals: std::collections::VecDeque::new(),
            placed: std::collections::VecDeque::new(),
            disagreeing: false,
        }
    }

    /// The master followed is now `master`: the estimate starts again for it, and without
    /// `--clock` the mode is the default for it. (Nothing to say: `Option` for the caller's
    /// uniform handling of the clock's lines.)
    pub fn follow(&mut self, master: Option<SocketAddr>, now: i128) -> Option<String> {
        if master == self.master {
            return None;
        }
        self.master = master;
        self.sync = ClockSync::new();
        self.answering = false;
        self.pending.clear();
        self.sent_in_burst = 0;
        self.burst_ends = None;
        self.pongs_in_burst = 0;
        self.unanswered = 0;
        self.next_ping = now;
        self.arrivals.clear();
        self.placed.clear();
        // The default for the master (the readout shows it): nothing to say on loopback, where
        // it is today's `same`; `sync` says when it has synced or that nobody answers.
        if let (None, Some(master)) = (self.asked, master) {
            self.mode = Some(ClockMode::default_for(master));
        }
        None
    }

    /// The instant on [`local_now`]'s clock at which the master's timetag `timetag` (ns since
    /// the epoch on the master's clock) is heard here, for a packet that arrived at `arrival`.
    pub fn place(&mut self, timetag: i128, arrival: i128) -> i128 {
        // The arrival estimate is kept in every mode: `sync` falls back on it.
        while self.arrivals.front().is_some_and(|&(at, _)| arrival - at > ARRIVAL_WINDOW_NS) {
            self.arrivals.pop_front();
        }
        if self.arrivals.len() < 1024 {
            self.arrivals.push_back((arrival, arrival - timetag));
        }
        let by_arrival = || {
            let e = self.arrivals.iter().map(|&(_, d)| d).min().unwrap_or(0);
            timetag + e
        };
        let placed = match self.mode {
            None | Some(ClockMode::Same) => timetag - wall_minus_local(),
            Some(ClockMode::Arrival) => by_arrival(),
            Some(ClockMode::Sync) => match (self.answering, self.sync.to_local(timetag, arrival)) {
                (true, Some(local)) => local,
                _ => by_arrival(),
            },
        } + self.trim;
        if self.placed.len() == PLAUSIBLE_WINDOW {
            self.placed.pop_front();
        }
        self.placed.push_back(arrival - placed);
        placed
    }

    /// One line when the clocks evidently disagree (the median `arrival − heard` is below −1 s
    /// or above +50 ms), once until they agree again.
    pub fn plausibility(&mut self) -> Option<String> {
        if self.placed.len() < 16 {
            return None;
        }
        let mut v: Vec<i128> = self.placed.iter().copied().collect();
        v.sort_unstable();
        let median = v[v.len() / 2];
        let off = median < PLAUSIBLE_MS.0 * MS || median > PLAUSIBLE_MS.1 * MS;
        let line = (off && !self.disagreeing).then(|| {
            format!(
                "timecode arrives {:.1} ms after the time it is stamped for: the master's clock and this machine's \
                 disagree{}",
                median as f64 / 1e6,
                if self.mode == Some(ClockMode::Sync) { "" } else { " (try --clock sync)" }
            )
        });
        self.disagreeing = off;
        line
    }

    /// Sends the pings that are due (in `sync`, to the master) from `socket`, and ends a burst
    /// whose time is up. Returns a line to say, if any (synced, a step, not answering).
    pub fn poll(&mut self, now: i128, socket: &UdpSocket) -> Option<String> {
        let (Some(ClockMode::Sync), Some(master)) = (self.mode, self.master) else { return None };
        let mut said = None;
        if let Some(ends) = self.burst_ends
            && now >= ends
        {
            said = self.end_burst(master, now);
        }
        if self.burst_ends.is_none() && now >= self.next_ping {
            // A new burst.
            self.sent_in_burst = 0;
            self.pongs_in_burst = 0;
            self.pending.clear();
            self.burst_ends = Some(now + i128::from(BURST_PINGS - 1) * PING_SPACING_NS + BURST_GRACE_NS);
        }
        if self.burst_ends.is_some() && self.sent_in_burst < BURST_PINGS && now >= self.next_ping {
            let t1 = local_now();
            let ping = Ping { id: self.next_id, origin: i64::try_from(t1).unwrap_or(i64::MAX) };
            self.next_id = self.next_id.wrapping_add(1);
            if socket.send_to(&ping.encode(), master).is_ok() {
                self.pending.push(Pending { id: ping.id, t1 });
            }
            self.sent_in_burst += 1;
            self.next_ping = if self.sent_in_burst < BURST_PINGS { now + PING_SPACING_NS } else { i128::MAX };
        }
        said
    }

    /// The next instant [`Clock::poll`] has something to do (to wake for it).
    pub fn next_due(&self) -> Option<i128> {
        if self.mode != Some(ClockMode::Sync) || self.master.is_none() {
            return None;
        }
        let ping = (self.next_ping != i128::MAX).then_some(self.next_ping);
        match (ping, self.burst_ends) {
            (Some(p), Some(e)) => Some(p.min(e)),
            (p, e) => p.or(e),
        }
    }

    fn end_burst(&mut self, master: SocketAddr, now: i128) -> Option<String> {
        self.burst_ends = None;
        self.pending.clear();
        let outcome = self.sync.end_burst();
        let answered = self.pongs_in_burst > 0;
        self.unanswered = if answered { 0 } else { self.unanswered + 1 };
        // The next burst: every 2 s while answered (0.5 s while the estimate warms up); when
        // not, again after 5 s, then every 30 s.
        let since_start = i128::from(BURST_PINGS - 1) * PING_SPACING_NS + BURST_GRACE_NS;
        let every = self.sync.burst_every();
        self.next_ping = match self.unanswered {
            0 => now - since_start + every,
            n if n < UNANSWERED_BURSTS => now - since_start + every,
            n if n == UNANSWERED_BURSTS => now + RETRY_FIRST_NS,
            _ => now + RETRY_EVERY_NS,
        };
        let was = self.answering;
        match outcome {
            BurstOutcome::Synced | BurstOutcome::Updated | BurstOutcome::Step | BurstOutcome::Held => {
                self.answering = true;
            }
            BurstOutcome::Nothing if self.unanswered >= UNANSWERED_BURSTS => self.answering = false,
            BurstOutcome::Nothing => {}
        }
        let view = self.view(now);
        match (was, self.answering, outcome) {
            (false, true, _) => Some(format!("clock: synced with {master}, {}", view.text())),
            (true, true, BurstOutcome::Step) => {
                Some(format!("clock: {master}'s clock stepped; re-locking ({})", view.text()))
            }
            (true, false, _) | (false, false, BurstOutcome::Nothing) if self.unanswered == UNANSWERED_BURSTS => {
                Some(format!(
                    "clock: {master} does not answer /sync/ping: placing frames by arrival, early by the master's send-ahead \
                 (--clock-offset-ms trims it); trying again in 5 s, then every 30 s"
                ))
            }
            _ => None,
        }
    }

    /// Takes a datagram from `from` received at `arrival` if it is a pong to one of our pings;
    /// `false` if it is not a pong (the caller handles it as timecode).
    pub fn on_pong(&mut self, bytes: &[u8], from: SocketAddr, arrival: i128) -> bool {
        let Ok(pong) = Pong::decode(bytes) else { return false };
        if Some(from) != self.master {
            return true;
        }
        let Some(i) = self.pending.iter().position(|p| p.id == pong.id) else { return true };
        let p = self.pending.swap_remove(i);
        // The bogus check: ORIGIN must be what we sent.
        if i64::try_from(p.t1).ok() != Some(pong.origin) {
            return true;
        }
        let t2 = unix_nanos(system_time_from_timetag(pong.received));
        let t3 = unix_nanos(system_time_from_timetag(pong.sent));
        if self.sync.on_exchange(Exchange { t1: p.t1, t2, t3, t4: arrival, epoch: pong.epoch }) {
            self.pongs_in_burst += 1;
        }
        true
    }

    /// Whether the master was found not to answer pings (frames are placed by arrival).
    pub fn unanswered(&self) -> bool {
        self.unanswered >= UNANSWERED_BURSTS
    }

    /// What the readout shows.
    pub fn view(&self, now: i128) -> ClockView {
        let sync = match self.sync.state(now) {
            SyncState::Synced { offset_ns, bound_ns, steps, .. } => Some((offset_ns, bound_ns, steps)),
            SyncState::Unsynced => None,
        };
        ClockView {
            mode: self.mode,
            sync: sync.filter(|_| self.mode == Some(ClockMode::Sync)),
            by_arrival: self.mode == Some(ClockMode::Sync) && !self.answering,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readout_names_the_mode_and_the_bound_with_frozen_json_keys() {
        let synced =
            ClockView { mode: Some(ClockMode::Sync), sync: Some((-250_000_000, 120_000, 1)), by_arrival: false };
        assert_eq!(synced.text(), "sync ±0.12 ms");
        let mut obj = serde_json::json!({});
        synced.add_json(&mut obj);
        assert_eq!(
            obj,
            serde_json::json!({"clock": "sync", "sync": "synced", "sync_bound_ms": 0.12, "clock_offset_ms": -250.0, "clock_steps": 1})
        );
        let waiting = ClockView { mode: Some(ClockMode::Sync), sync: None, by_arrival: true };
        assert_eq!(waiting.text(), "unsynced (by arrival)");
        let same = ClockView { mode: Some(ClockMode::Same), sync: None, by_arrival: false };
        assert_eq!(same.text(), "", "the line as it always was");
        let mut obj = serde_json::json!({});
        same.add_json(&mut obj);
        assert_eq!((obj["clock"].as_str(), obj["sync"].is_null()), (Some("same"), true));
        assert_eq!(ClockMode::default_for("127.0.0.1:5006".parse().unwrap()), ClockMode::Same);
        assert_eq!(ClockMode::default_for("192.168.1.20:5006".parse().unwrap()), ClockMode::Sync);
        assert!("ntp".parse::<ClockMode>().is_err());
    }

    #[test]
    fn arrival_places_by_the_fastest_delivery_and_same_by_the_wall_clock() {
        let mut clock = Clock::new(Some(ClockMode::Arrival), 2_000_000);
        let t = 1_000 * NANOS_TEST;
        // Delivered 5, 3 and 9 ms after their timetags: the fastest (3 ms) places them, + 2 ms trim.
        for (k, d) in [5, 3, 9].into_iter().enumerate() {
            let tag = t + k as i128 * 40 * MS;
            let placed = clock.place(tag, tag + d * MS);
            if k == 2 {
                assert_eq!(placed, tag + 3 * MS + 2 * MS);
            }
        }
        let mut same = Clock::new(Some(ClockMode::Same), 0);
        let placed = same.place(t, t);
        assert!((placed - t).abs() < MS, "same: as the wall clock reads it");
    }

    const NANOS_TEST: i128 = 1_000_000_000;
}
