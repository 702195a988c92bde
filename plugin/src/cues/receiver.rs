//! The cue thread: receives OSC on the listen address, checks and maps each message, queues it
//! for the audio thread and replies `/ack`; answers `/status`; logs the counters.
//!
//! A thread of its own, blocking on the socket with a short timeout, so a flood of packets
//! competes only with itself: the timecode network thread and the audio thread never wait for
//! it. Everything it holds is bounded: the receive buffer (one datagram), the schedule
//! ([`SCHEDULE_CAPACITY`]), the retry window ([`DEDUPE_CAPACITY`]) and the ring to the audio
//! thread ([`super::CUE_QUEUE_CAPACITY`]).
//!
//! Order of checks for each datagram: sender in the allow-list (else `not_allowed`, no reply),
//! packet shape in the raw bytes, before anything decodes or recurses (else `malformed`, no
//! reply), at least one message (else `empty`); then per message: token (else `bad_token`, no
//! reply), arguments, retry, mapping (within the datagram's pattern-step budget), time; then the
//! cue is queued and only then acked `ok`. Every reply comes out of the sender's reply budget
//! ([`osc_timecode_core::reply`]), or is not sent and is counted.
//!
//! The settings in use are the saved ones confined to loopback unless this machine's config
//! file allows network cue input ([`CueSettings::confined`]): a project never decides exposure.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nice_plug::prelude::*;
use osc_timecode_core::cue::{
    Ack, AckStatus, AllowList, CueArgs, CueId, CueValue, Dedupe, MAX_FANOUT, MAX_MESSAGES_PER_PACKET, MAX_PACKET,
    Received, decode_packet, parse_cue_args, status_to_osc, strip_token,
};
use osc_timecode_core::pattern;
use osc_timecode_core::protocol::{address, system_time_from_timetag};
use osc_timecode_core::reply::{ReplyBudget, ReplyKind, message_len};
use rosc::{OscMessage, OscPacket};

use super::automation::{Automation, ParamDue};
use super::map::{CueMap, Unresolved, unit_value};
use super::{CueEvent, CueStats, DropReason, OutputCounters};
use crate::params::ParamRef;
use crate::params::TimecodeParams;
use crate::readout::{BindFailure, CueActivity, RecentCue, ShortText};
use crate::settings::Settings;
use crate::settings::cues::{CueAction, CueSettings, Exposure};
use crate::settings::values::{Normalized, RampMs};
use crate::thread::{Priority, StoppableThread};
use crate::wallclock::WallClock;

/// How often the thread re-reads the persisted settings.
pub const SETTINGS_POLL: Duration = Duration::from_millis(100);
/// Timetagged cues go to the audio thread this long before their time (longer than any host
/// block, so they are there when their block comes).
pub const RELEASE_AHEAD: Duration = Duration::from_secs(1);
/// Timetags further away than this are refused (`too_far_ahead`).
pub const MAX_AHEAD: Duration = Duration::from_secs(3600);
/// Cues waiting for their time on this thread, at most.
pub const SCHEDULE_CAPACITY: usize = 1024;
/// IDs remembered for dropping retries, at most.
pub const DEDUPE_CAPACITY: usize = 4096;
/// Longest wait on the socket: bounds how late a stop or a release is noticed.
const RECV_TIMEOUT: Duration = Duration::from_millis(20);
/// How long after a timetagged parameter cue's time the thread looks for it in the audio
/// thread's hand-back ring (the audio thread processes its block before that time).
const PARAM_WAKE_AFTER: Duration = Duration::from_millis(1);
/// How often a failed bind is retried.
const REBIND_EVERY: Duration = Duration::from_secs(1);
/// Counters and trouble are logged at most this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// `[main-thread]` Spawns the cue thread (in `activate()`), which owns `producer` until it stops
/// and tells `activity` (the plugin window) about its socket and the cues it receives; its
/// `/status` answers report `outputs` too; parameter cues are set through `params.setter` (the
/// wrapper's, from `activate()`'s context), with what the audio thread hands back from
/// `params.returns`. The handle stops it within one receive timeout.
pub fn spawn(
    producer: rtrb::Producer<CueEvent>,
    params: Arc<TimecodeParams>,
    stats: Arc<CueStats>,
    activity: Arc<CueActivity>,
    outputs: OutputCounters,
    setter: ParamSide,
) -> std::io::Result<StoppableThread> {
    StoppableThread::spawn_at("osc-timecode-cues", Priority::Background, move |stop| {
        Worker::new(producer, params, stats, activity, outputs, stop, setter).run()
    })
}

/// What the cue thread needs to set parameters: the wrapper's setter, and the ring on which the
/// audio thread hands back the changes it does not set itself ([`super::automation`]).
pub struct ParamSide {
    /// The wrapper's setter, if it gives one.
    pub setter: Option<Arc<dyn RemoteParamSetter>>,
    /// Consumer end of the audio thread's hand-back ring.
    pub returns: Option<rtrb::Consumer<ParamDue>>,
}

/// A cue waiting on this thread for its release time. Ordered by (time, arrival).
#[derive(Debug, Clone, Copy)]
struct Scheduled(CueEvent);

impl Scheduled {
    fn key(&self) -> (Option<Instant>, u64) {
        (self.0.at, self.0.seq)
    }
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.key().cmp(&other.key())
    }
}

/// The listen socket and what it is bound to.
struct Listener {
    /// The socket.
    socket: UdpSocket,
    /// The configured address it was bound for.
    configured: SocketAddr,
    /// The read timeout currently set.
    timeout: Duration,
}

/// The checks, mapping and queueing of cues, without sockets or threads: one datagram in
/// ([`Dispatcher::handle_datagram`]), cues out into the ring to the audio thread, replies out
/// into a buffer the caller sends. `[cue-thread]` in the plugin; the fuzz target
/// `plugin_cue_receiver` drives it with arbitrary datagrams.
pub struct Dispatcher {
    /// Cues for the audio thread.
    producer: rtrb::Producer<CueEvent>,
    /// Counters, shared with the audio thread and `/status`.
    stats: Arc<CueStats>,
    /// Snapshot of the cue settings.
    settings: CueSettings,
    /// The output latency setting, ms (timetags are for when a sample is heard).
    latency_ms: f64,
    /// The mapping built from `settings`.
    map: CueMap,
    /// The allow-list built from `settings`.
    allow: AllowList,
    /// Recently applied (sender, ID) pairs.
    dedupe: Dedupe<(SocketAddr, CueId)>,
    /// Timetagged cues not yet released to the audio thread (min-heap by time), at most
    /// [`SCHEDULE_CAPACITY`].
    schedule: BinaryHeap<Reverse<Scheduled>>,
    /// `Instant` ↔ wall clock, for timetags.
    wall: WallClock,
    /// Scratch for resolved actions, [`MAX_FANOUT`] long.
    actions: Vec<CueAction>,
    /// Arrival counter for [`CueEvent::seq`].
    next_seq: u64,
    /// Pattern-matching steps left for the datagram being handled (reset to
    /// [`pattern::DATAGRAM_STEP_BUDGET`] for each one).
    steps_left: u32,
    /// What each sender may still be sent (`/ack`, `/status`): never more than it sent.
    budget: ReplyBudget,
    /// Where each message from an allowed sender with a good token is recorded for the plugin
    /// window; `None`: nowhere (set with [`Dispatcher::report_to`]).
    activity: Option<Arc<CueActivity>>,
    /// The outputs' counters `/status` reports after the cue input's (zeros until
    /// [`Dispatcher::report_outputs`]).
    outputs: OutputCounters,
    /// Sets parameters as host gestures (`param` cues, `/macro/N`); without a setter (until
    /// [`Dispatcher::set_params_with`]) parameter cues are `unmapped`.
    automation: Automation,
    /// The times of timetagged parameter cues accepted: the audio thread may hand them back then
    /// ([`Automation`]), so the thread wakes at each. At most [`SCHEDULE_CAPACITY`] (beyond, the
    /// receive timeout still brings it back).
    param_times: BinaryHeap<Reverse<Instant>>,
}

impl Dispatcher {
    /// A dispatcher for `settings` (with the output latency `latency_ms`) feeding `producer`,
    /// its clock anchored now.
    pub fn new(
        producer: rtrb::Producer<CueEvent>,
        stats: Arc<CueStats>,
        settings: CueSettings,
        latency_ms: f64,
    ) -> Self {
        Self {
            producer,
            stats,
            map: CueMap::new(&settings),
            allow: settings.allow_list(),
            dedupe: Dedupe::new(Duration::from_millis(u64::from(settings.dedupe_ms)), DEDUPE_CAPACITY),
            settings,
            latency_ms,
            schedule: BinaryHeap::new(),
            wall: WallClock::now(),
            actions: Vec::with_capacity(MAX_FANOUT),
            next_seq: 0,
            steps_left: pattern::DATAGRAM_STEP_BUDGET,
            budget: ReplyBudget::new(Instant::now()),
            activity: None,
            outputs: OutputCounters::default(),
            automation: Automation::new(None, Arc::new(TimecodeParams::new(Settings::default())), None),
            param_times: BinaryHeap::new(),
        }
    }

    /// Parameter cues set `params` through `side` (the plugin wrapper's [`RemoteParamSetter`] and
    /// the audio thread's hand-back ring).
    pub fn set_params_with(&mut self, side: ParamSide, params: Arc<TimecodeParams>) {
        self.automation = Automation::new(side.setter, params, side.returns);
    }

    /// One turn of the parameter side: what the audio thread handed back, ramps
    /// ([`Automation::run`]).
    pub fn run_automation(&mut self, now: Instant) {
        while self.param_times.peek().is_some_and(|Reverse(t)| *t <= now) {
            self.param_times.pop();
        }
        self.automation.run(now);
    }

    /// Deactivation: every ramp ends at its value.
    pub fn finish_automation(&mut self) {
        self.automation.finish();
    }

    /// `/status` answers report `outputs` (the plugin's LTC, MTC and Art-Net counters).
    pub fn report_outputs(&mut self, outputs: OutputCounters) {
        self.outputs = outputs;
    }

    /// Records every message from an allowed sender with a good token, with its ack status and
    /// mapped MIDI, in `activity` (the plugin window's list of recent cues and its "learn").
    pub fn report_to(&mut self, activity: Arc<CueActivity>) {
        self.activity = Some(activity);
    }

    /// The settings in use.
    pub fn settings(&self) -> &CueSettings {
        &self.settings
    }

    /// Takes new settings (rebuilding the map and allow-list when they changed). Returns true
    /// when the listen socket must be rebound (address or `enabled` changed).
    pub fn apply_settings(&mut self, settings: CueSettings, latency_ms: f64) -> bool {
        self.latency_ms = latency_ms;
        if settings == self.settings {
            return false;
        }
        self.map = CueMap::new(&settings);
        self.allow = settings.allow_list();
        self.dedupe.set_window(Duration::from_millis(u64::from(settings.dedupe_ms)));
        let rebind = settings.listen != self.settings.listen || settings.enabled != self.settings.enabled;
        self.settings = settings;
        rebind
    }

    /// Refreshes the `Instant` ↔ wall-clock anchor when it is due (NTP slews).
    pub fn reanchor_if_due(&mut self, now: Instant) {
        self.wall.refresh_if_due(now);
    }

    /// When the next scheduled cue is due to leave for the audio thread, or a ramp step or a
    /// handed-back parameter change is due, if any.
    pub fn next_release(&self) -> Option<Instant> {
        let release =
            self.schedule.peek().and_then(|Reverse(s)| s.0.at).map(|at| at.checked_sub(RELEASE_AHEAD).unwrap_or(at));
        let handed_back = self.param_times.peek().map(|Reverse(t)| *t + PARAM_WAKE_AFTER);
        release.into_iter().chain(self.automation.next_wake()).chain(handed_back).min()
    }

    /// Cues waiting on this side for their time.
    pub fn scheduled(&self) -> usize {
        self.schedule.len()
    }

    /// Moves cues whose time is near from the schedule to the audio thread.
    pub fn release(&mut self, now: Instant) {
        while let Some(Reverse(next)) = self.schedule.peek() {
            if next.0.at.is_some_and(|at| at > now + RELEASE_AHEAD) {
                break;
            }
            let cue = next.0;
            if self.producer.push(cue).is_err() {
                // The ring is full: try again on the next turn (the cue stays accepted).
                break;
            }
            self.schedule.pop();
        }
    }

    /// One datagram `bytes` from `from`, received at `now`: checks it, queues its cues and
    /// appends the replies for `from` (`/ack`s, `/status`) to `replies`, in message order.
    /// Never panics, whatever the bytes.
    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr, now: Instant, replies: &mut Vec<OscMessage>) {
        if !self.allow.allows(from.ip()) {
            self.stats.received.fetch_add(1, Ordering::Relaxed);
            self.stats.count_drop(DropReason::NotAllowed);
            return;
        }
        self.budget.on_request(from.ip(), bytes.len(), now);
        self.steps_left = pattern::DATAGRAM_STEP_BUDGET;
        let messages = match decode_packet(bytes) {
            Ok(messages) if messages.is_empty() => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                self.stats.count_drop(DropReason::Empty);
                return;
            }
            Ok(messages) => messages,
            Err(_) => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                self.stats.count_drop(DropReason::Malformed);
                return;
            }
        };
        for received in messages {
            if received.msg.addr == address::STATUS {
                if let Some(reply) = self.answer_status(&received.msg, from, now) {
                    replies.push(reply);
                }
                continue;
            }
            let Some(reply) = self.handle_message(received, from, now) else { continue };
            match self.budget.allow(from.ip(), ReplyKind::Ack, message_len(&reply), now) {
                Ok(()) => replies.push(reply),
                Err(_) => {
                    self.stats.replies_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// A `/status` query from an allowed sender: the answer, if the token is right and the
    /// sender's reply budget allows it ([`osc_timecode_core::reply`]). Counted either way.
    fn answer_status(&mut self, msg: &OscMessage, from: SocketAddr, now: Instant) -> Option<OscMessage> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if strip_token(&msg.args, self.settings.token()).is_err() {
            self.stats.count_drop(DropReason::BadToken);
            return None;
        }
        // The reply's length does not depend on the counts (names and int64s).
        let len = message_len(&status_to_osc(&self.stats.status(&self.outputs)));
        if self.budget.allow(from.ip(), ReplyKind::Status, len, now).is_err() {
            self.stats.status_refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Counted before the snapshot, so the reply's counters add up (received = outcomes).
        self.stats.status_answered.fetch_add(1, Ordering::Relaxed);
        Some(status_to_osc(&self.stats.status(&self.outputs)))
    }

    /// One cue or trigger message from an allowed sender; its `/ack`, if it gets one.
    fn handle_message(&mut self, received: Received, from: SocketAddr, now: Instant) -> Option<OscMessage> {
        let Received { timetag, msg } = received;
        let token = self.settings.token();
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        // From here on `actions` holds only what this message maps to (for `report`).
        self.actions.clear();
        let parsed = parse_cue_args(&msg.args, token).and_then(|args| Ok((args, unit_value(&msg.args, token)?)));
        let (args, unit) = match parsed {
            Ok(parsed) => parsed,
            Err(e) if e.is_token() => {
                self.stats.count_drop(DropReason::BadToken);
                return None;
            }
            Err(_) => {
                self.stats.count_drop(DropReason::BadArgument);
                self.report(&msg.addr, from, now, timetag.is_some(), AckStatus::BadArgument, CueValue::Default);
                return Some(ack(msg, None, AckStatus::BadArgument));
            }
        };
        let status = self.accept(&msg.addr, timetag.map(system_time_from_timetag), args, unit, from, now);
        if let Some(reason) = drop_reason(status) {
            self.stats.count_drop(reason);
        }
        self.report(&msg.addr, from, now, timetag.is_some(), status, args.value);
        Some(ack(msg, args.id, status))
    }

    /// Records one message for the plugin window, if it is watching (see [`Self::report_to`]).
    fn report(
        &self,
        address: &str,
        from: SocketAddr,
        now: Instant,
        timetagged: bool,
        status: AckStatus,
        value: CueValue,
    ) {
        let Some(activity) = &self.activity else { return };
        let mut actions = [None; MAX_FANOUT];
        for (slot, action) in actions.iter_mut().zip(&self.actions) {
            *slot = Some(action.with_value(value));
        }
        let address = ShortText::new(address);
        activity.record(RecentCue { number: 0, at: now, from, address, timetagged, status, actions });
    }

    /// Maps, times and queues one cue (`unit`: its VALUE as a parameter takes it); returns what
    /// the ack says.
    fn accept(
        &mut self,
        address: &str,
        timetag: Option<SystemTime>,
        args: CueArgs,
        unit: Option<Normalized>,
        from: SocketAddr,
        now: Instant,
    ) -> AckStatus {
        if let Some(id) = args.id
            && self.dedupe.contains(&(from, id), now)
        {
            return AckStatus::Duplicate;
        }
        self.actions.clear();
        match self.map.resolve(address, &mut self.actions, &mut self.steps_left) {
            Ok(()) => {}
            Err(Unresolved::Unmapped) => return AckStatus::Unmapped,
            Err(Unresolved::TooBroad) => return AckStatus::TooBroad,
        }
        let Some(&first) = self.actions.first() else { return AckStatus::Unmapped };
        // A parameter change takes the cue's VALUE, else its mapping's; one with neither refuses
        // the whole message before anything of it is queued.
        for action in &mut self.actions {
            *action = match action.with_value(args.value) {
                CueAction::Param { param, value, ramp_ms } => match unit.or(value) {
                    Some(v) => CueAction::Param { param, value: Some(v), ramp_ms },
                    None => return AckStatus::BadArgument,
                },
                midi => midi,
            };
        }
        let params = self.actions.iter().filter(|a| matches!(a, CueAction::Param { .. })).count();
        if params > 0 && !self.automation.can_set() {
            return AckStatus::Unmapped;
        }
        let at = match timetag {
            None => None,
            // When the sample heard at `wall` leaves the host: the output latency earlier.
            Some(wall) => match self.wall.instant_at(wall, self.latency_ms) {
                Some(at) if at > now + MAX_AHEAD => return AckStatus::TooFarAhead,
                None => return AckStatus::TooFarAhead,
                Some(at) => Some(at),
            },
        };
        // Immediate parameter changes are set here, now (the MIDI ones go on to the audio thread);
        // timetagged ones go with the MIDI ones and are set at their block.
        let immediate_params = at.is_none() && params > 0;
        let mut cue =
            CueEvent { actions: [first; MAX_FANOUT], len: 0, at, seq: self.next_seq, quantise: self.settings.quantise };
        for action in &self.actions {
            if !(immediate_params && matches!(action, CueAction::Param { .. })) {
                cue.actions[usize::from(cue.len)] = *action;
                cue.len += 1;
            }
        }
        if cue.len == 0 {
            // Parameter changes only: refused when the first finds the wrapper's queue full
            // (nothing of the message was set then); the rest are set as soon as there is room.
            for (i, (param, value, ramp_ms)) in self.param_changes().enumerate() {
                if i > 0 {
                    self.automation.set_soon(param, value, ramp_ms, now);
                } else if self.automation.set_now(param, value, ramp_ms, now).is_err() {
                    return AckStatus::QueueFull;
                }
            }
            // Applied: the host takes it from here (a ramp has begun).
            self.stats.applied.fetch_add(1, Ordering::Relaxed);
        } else {
            if at.is_some_and(|t| t > now + RELEASE_AHEAD) {
                if self.schedule.len() >= SCHEDULE_CAPACITY {
                    return AckStatus::ScheduleFull;
                }
                self.schedule.push(Reverse(Scheduled(cue)));
            } else if self.producer.push(cue).is_err() {
                return AckStatus::QueueFull;
            }
            if let Some(at) = at.filter(|_| params > 0 && self.param_times.len() < SCHEDULE_CAPACITY) {
                self.param_times.push(Reverse(at));
            }
            // The MIDI events are queued: the message's parameter changes follow them now.
            if immediate_params {
                for (param, value, ramp_ms) in self.param_changes() {
                    self.automation.set_soon(param, value, ramp_ms, now);
                }
            }
        }
        self.next_seq += 1;
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        if let Some(id) = args.id {
            self.dedupe.insert((from, id), now);
        }
        AckStatus::Ok
    }

    /// The parameter changes among the resolved actions (their values resolved), in table order.
    /// A copy, so the caller may set them while iterating.
    fn param_changes(&self) -> impl Iterator<Item = (ParamRef, Normalized, RampMs)> + use<> {
        let mut changes = [None; MAX_FANOUT];
        for (slot, action) in
            changes.iter_mut().zip(self.actions.iter().filter(|a| matches!(a, CueAction::Param { .. })))
        {
            if let CueAction::Param { param, value: Some(value), ramp_ms } = *action {
                *slot = Some((param, value, ramp_ms));
            }
        }
        changes.into_iter().flatten()
    }
}

/// The `/ack` for `msg`.
fn ack(msg: OscMessage, id: Option<CueId>, status: AckStatus) -> OscMessage {
    Ack { address: msg.addr, id, status }.to_osc()
}

/// The thread's state. `[cue-thread]` throughout.
struct Worker {
    /// For the persisted settings.
    params: Arc<TimecodeParams>,
    /// Counters.
    stats: Arc<CueStats>,
    /// Set when the thread is asked to stop ([`StoppableThread::request_stop`]).
    stop: Arc<AtomicBool>,
    /// Checks, maps and queues the cues.
    dispatcher: Dispatcher,
    /// When the settings were last read.
    settings_read: Instant,
    /// The socket, while bound.
    listener: Option<Listener>,
    /// When binding last failed.
    bind_failed_at: Option<Instant>,
    /// Receive buffer, [`MAX_PACKET`] bytes.
    buf: Vec<u8>,
    /// Replies to the datagram being handled (reused; at most one per message of a packet).
    replies: Vec<OscMessage>,
    /// When counters were last logged, and what they were.
    logged: (Instant, Vec<(&'static str, u64)>),
    /// When trouble was last logged.
    trouble_logged: Option<Instant>,
    /// The socket's state for the plugin window (the dispatcher records the cues there too).
    activity: Arc<CueActivity>,
    /// This machine's config file allows cue input from beyond loopback (read when the thread
    /// starts, see [`crate::settings::machine_allows_network_cues`]).
    network_allowed: bool,
    /// How far the settings in use reach (what the log and the window last said).
    exposure: Exposure,
}

impl Worker {
    fn new(
        producer: rtrb::Producer<CueEvent>,
        params: Arc<TimecodeParams>,
        stats: Arc<CueStats>,
        activity: Arc<CueActivity>,
        outputs: OutputCounters,
        stop: Arc<AtomicBool>,
        param_side: ParamSide,
    ) -> Self {
        let network_allowed = crate::settings::machine_allows_network_cues();
        let (saved, latency_ms) = read_settings(&params);
        let (settings, exposure) = saved.confined(network_allowed);
        announce(exposure, &saved, Exposure::Loopback);
        activity.exposed(exposure);
        let now = Instant::now();
        let mut dispatcher = Dispatcher::new(producer, stats.clone(), settings, latency_ms);
        dispatcher.report_to(activity.clone());
        dispatcher.report_outputs(outputs);
        dispatcher.set_params_with(param_side, params.clone());
        Self {
            dispatcher,
            activity,
            network_allowed,
            exposure,
            params,
            settings_read: now,
            listener: None,
            bind_failed_at: None,
            buf: vec![0; MAX_PACKET],
            replies: Vec::with_capacity(MAX_MESSAGES_PER_PACKET),
            logged: (now, stats.counters()),
            trouble_logged: None,
            stats,
            stop,
        }
    }

    fn run(mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            self.refresh(now);
            self.dispatcher.release(now);
            self.dispatcher.run_automation(now);
            self.log_counters(now);
            self.receive_one(now);
        }
        self.dispatcher.finish_automation();
        self.stats.listening.store(false, Ordering::Relaxed);
        self.activity.closed();
        for _ in 0..self.dispatcher.scheduled() {
            self.stats.count_drop(DropReason::Deactivated);
        }
    }

    /// Re-reads settings, rebinds when the listen address changed, refreshes the anchor.
    fn refresh(&mut self, now: Instant) {
        if now.duration_since(self.settings_read) >= SETTINGS_POLL {
            self.settings_read = now;
            let (saved, latency_ms) = read_settings(&self.params);
            let (settings, exposure) = saved.confined(self.network_allowed);
            if exposure != self.exposure {
                announce(exposure, &saved, self.exposure);
                self.activity.exposed(exposure);
                self.exposure = exposure;
            }
            if self.dispatcher.apply_settings(settings, latency_ms) {
                self.listener = None;
                self.bind_failed_at = None;
                self.activity.closed();
            }
        }
        self.dispatcher.reanchor_if_due(now);
        if self.listener.is_none()
            && self.dispatcher.settings().enabled
            && self.bind_failed_at.is_none_or(|t| now.duration_since(t) >= REBIND_EVERY)
        {
            self.bind(now);
        }
        self.stats.listening.store(self.listener.is_some(), Ordering::Relaxed);
    }

    fn bind(&mut self, now: Instant) {
        let configured = self.dispatcher.settings().listen.addr();
        match UdpSocket::bind(configured) {
            Ok(socket) => {
                let local = socket.local_addr().unwrap_or(configured);
                self.activity.bound(local);
                nice_log!("cue input listening on {local}");
                self.listener = Some(Listener { socket, configured, timeout: Duration::ZERO });
                self.bind_failed_at = None;
            }
            Err(e) => {
                self.stats.bind_errors.fetch_add(1, Ordering::Relaxed);
                self.activity.bind_failed(configured, BindFailure::of(&e));
                self.bind_failed_at = Some(now);
                self.trouble(|| format!("cue input: cannot listen on {configured}: {e}; retrying every second"));
            }
        }
    }

    /// Waits up to [`RECV_TIMEOUT`] (less when a release is due sooner) for one datagram and
    /// handles it.
    fn receive_one(&mut self, now: Instant) {
        let wait = self
            .dispatcher
            .next_release()
            .map_or(RECV_TIMEOUT, |release| release.saturating_duration_since(now).min(RECV_TIMEOUT))
            .max(Duration::from_millis(1));
        let Some(listener) = self.listener.as_mut() else {
            std::thread::sleep(RECV_TIMEOUT);
            return;
        };
        if listener.timeout != wait {
            if let Err(e) = listener.socket.set_read_timeout(Some(wait)) {
                self.trouble(|| format!("cue input: cannot set the socket timeout: {e}"));
                std::thread::sleep(RECV_TIMEOUT);
                return;
            }
            listener.timeout = wait;
        }
        match listener.socket.recv_from(&mut self.buf) {
            Ok((n, from)) => {
                let mut replies = std::mem::take(&mut self.replies);
                self.dispatcher.handle_datagram(&self.buf[..n], from, Instant::now(), &mut replies);
                for reply in replies.drain(..) {
                    self.reply(reply, from);
                }
                self.replies = replies;
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            // ICMP errors from earlier replies surface here on some systems: not fatal.
            Err(e) => {
                let configured = listener.configured;
                self.trouble(|| format!("cue input on {configured}: {e}"));
            }
        }
    }

    fn reply(&mut self, msg: OscMessage, to: SocketAddr) {
        let Some(listener) = self.listener.as_ref() else { return };
        let result = rosc::encoder::encode(&OscPacket::Message(msg))
            .map_err(|e| std::io::Error::other(format!("{e:?}")))
            .and_then(|bytes| listener.socket.send_to(&bytes, to));
        if let Err(e) = result {
            self.stats.reply_errors.fetch_add(1, Ordering::Relaxed);
            self.trouble(|| format!("cue input: cannot reply to {to}: {e}"));
        }
    }

    /// Logs the counters every [`LOG_EVERY`] if they changed.
    fn log_counters(&mut self, now: Instant) {
        if now.duration_since(self.logged.0) < LOG_EVERY {
            return;
        }
        let counters = self.stats.counters();
        if counters != self.logged.1 {
            let text: Vec<String> =
                counters.iter().filter(|(_, n)| *n > 0).map(|(name, n)| format!("{name} {n}")).collect();
            nice_log!("cue input: {}", text.join(", "));
        }
        self.logged = (now, counters);
    }

    fn trouble(&mut self, message: impl FnOnce() -> String) {
        let now = Instant::now();
        if self.trouble_logged.is_none_or(|t| now.duration_since(t) >= LOG_EVERY) {
            self.trouble_logged = Some(now);
            nice_warn!("{}", message());
        }
    }
}

/// The drop counter for a refusal; `None` for `ok`.
fn drop_reason(status: AckStatus) -> Option<DropReason> {
    Some(match status {
        AckStatus::Ok => return None,
        AckStatus::Duplicate => DropReason::Duplicate,
        AckStatus::Unmapped => DropReason::Unmapped,
        AckStatus::BadArgument => DropReason::BadArgument,
        AckStatus::TooBroad => DropReason::TooBroad,
        AckStatus::TooFarAhead => DropReason::TooFarAhead,
        AckStatus::ScheduleFull => DropReason::ScheduleFull,
        AckStatus::QueueFull => DropReason::QueueFull,
    })
}

/// Logs how far the cue input reaches when that changes from `before`: a warning when the
/// machine confined a project's settings to loopback, or when it listens beyond loopback without
/// a token.
fn announce(exposure: Exposure, saved: &CueSettings, before: Exposure) {
    match exposure {
        Exposure::Confined { asked } => nice_warn!(
            "cue input: these settings reach beyond this machine (listen {asked}, allow {}), but this machine's \
             config file does not allow network cue input (set {} = true under [plugin] in {}); listening on \
             loopback only",
            saved.allow.iter().map(|a| a.0.to_string()).collect::<Vec<_>>().join(", "),
            crate::settings::NETWORK_CUE_INPUT_KEY,
            crate::settings::config_path().map_or_else(|| "the config file".into(), |p| p.display().to_string()),
        ),
        Exposure::Network { token: false } => nice_warn!(
            "cue input: listening on {} for senders beyond this machine without a token: anyone who can reach it \
             can send cues (set a token)",
            saved.listen
        ),
        Exposure::Network { token: true } => nice_log!("cue input: listening on {} for the network", saved.listen),
        Exposure::Loopback if before != Exposure::Loopback => nice_log!("cue input: loopback only"),
        Exposure::Loopback => {}
    }
}

fn read_settings(params: &TimecodeParams) -> (CueSettings, f64) {
    // A poisoned lock still holds valid settings.
    let settings = params.settings.read().unwrap_or_else(PoisonError::into_inner);
    (settings.cues.clone(), settings.output_latency_ms)
}

#[cfg(test)]
mod tests {
    use super::super::player::{BlockTiming, CueOut, CuePlayer};
    use super::*;
    use crate::params::ParamRef;
    use crate::settings::Settings;
    use crate::settings::values::RampMs;
    use osc_timecode_core::cue::status_from_osc;
    use rosc::{OscBundle, OscType};

    /// A cue thread on a free loopback port with `edit` applied to the defaults.
    struct Rig {
        thread: Option<StoppableThread>,
        consumer: Option<rtrb::Consumer<CueEvent>>,
        stats: Arc<CueStats>,
        outputs: OutputCounters,
        sender: UdpSocket,
        port: u16,
    }

    impl Rig {
        fn new(edit: impl FnOnce(&mut CueSettings)) -> Self {
            let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let mut settings = Settings::default();
            settings.cues.listen = format!("127.0.0.1:{port}").parse().unwrap();
            edit(&mut settings.cues);
            let params = Arc::new(TimecodeParams::new(settings));
            let stats = Arc::new(CueStats::default());
            let (producer, consumer) = rtrb::RingBuffer::new(super::super::CUE_QUEUE_CAPACITY);
            let outputs = OutputCounters::default();
            let side = ParamSide { setter: None, returns: None };
            let thread = spawn(producer, params, stats.clone(), Arc::default(), outputs.clone(), side).unwrap();
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let rig = Self { thread: Some(thread), consumer: Some(consumer), stats, outputs, sender, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while !rig.stats.listening.load(Ordering::Relaxed) {
                assert!(Instant::now() < deadline, "cue thread never bound");
                std::thread::sleep(Duration::from_millis(5));
            }
            rig
        }

        fn send(&self, packet: &OscPacket) {
            self.send_bytes(&rosc::encoder::encode(packet).unwrap());
        }

        fn send_bytes(&self, bytes: &[u8]) {
            self.sender.send_to(bytes, ("127.0.0.1", self.port)).unwrap();
        }

        fn reply(&self) -> OscMessage {
            let mut buf = [0u8; 4096];
            let n = self.sender.recv(&mut buf).expect("a reply within 5 s");
            match rosc::decoder::decode_udp(&buf[..n]).unwrap().1 {
                OscPacket::Message(m) => m,
                OscPacket::Bundle(b) => panic!("replies are bare messages, got {b:?}"),
            }
        }

        fn status(&self) -> Vec<(String, u64)> {
            // Padded: the reply budget answers it every time.
            self.send(&OscPacket::Message(osc_timecode_core::cue::status_query(None)));
            status_from_osc(&self.reply()).expect("a /status reply")
        }

        fn counter(&self, name: &str) -> u64 {
            self.status().into_iter().find(|(n, _)| n == name).map(|(_, v)| v).unwrap()
        }
    }

    fn cue_msg(addr: &str, args: Vec<OscType>) -> OscPacket {
        OscPacket::Message(OscMessage { addr: addr.into(), args })
    }

    fn ack_of(m: &OscMessage) -> Ack {
        Ack::from_osc(m).unwrap_or_else(|| panic!("not an ack: {m:?}"))
    }

    #[test]
    fn an_immediate_cue_is_queued_before_its_ack() {
        let mut rig = Rig::new(|_| {});
        rig.send(&cue_msg("/cue/60", vec![OscType::Int(90), OscType::Int(1)]));
        let ack = ack_of(&rig.reply());
        assert_eq!(ack, Ack { address: "/cue/60".into(), id: Some(CueId::Int(1)), status: AckStatus::Ok });
        let mut consumer = rig.consumer.take().unwrap();
        let cue = consumer.pop().expect("queued before the ack");
        assert_eq!(cue.at, None);
        assert_eq!(
            cue.actions(),
            &[CueAction::Note {
                channel: crate::settings::values::Channel::ONE,
                key: crate::settings::values::U7::new(60).unwrap(),
                velocity: crate::settings::values::U7::new(90).unwrap(),
                length_ms: crate::settings::cues::DEFAULT_NOTE_LENGTH
            }]
        );
        // Played on the audio side: at offset 0 of the next block.
        let mut player = CuePlayer::new(consumer, rig.stats.clone());
        rig.send(&cue_msg("/cue/61", vec![]));
        assert_eq!(ack_of(&rig.reply()).status, AckStatus::Ok);
        let mut sent = Vec::new();
        let timing = BlockTiming { start: Instant::now(), sample_rate: 48_000, len: 64, playing: false };
        player.run_block(timing, |o, e| {
            sent.push((o, e));
            true
        });
        assert_eq!(sent, vec![(0, CueOut::NoteOn { channel: 0, key: 61, velocity: 127 })]);
    }

    #[test]
    fn retries_are_applied_once_and_acked_duplicate() {
        let rig = Rig::new(|_| {});
        for expected in [AckStatus::Ok, AckStatus::Duplicate, AckStatus::Duplicate] {
            rig.send(&cue_msg("/trigger/3", vec![OscType::Nil, OscType::Long(77)]));
            assert_eq!(ack_of(&rig.reply()).status, expected);
        }
        // A different ID is a different cue.
        rig.send(&cue_msg("/trigger/3", vec![OscType::Nil, OscType::Long(78)]));
        assert_eq!(ack_of(&rig.reply()).status, AckStatus::Ok);
        assert_eq!(rig.stats.accepted.load(Ordering::Relaxed), 2);
        assert_eq!(rig.counter("dropped_duplicate"), 2);
    }

    #[test]
    fn refusals_are_acked_with_their_reason_and_counted() {
        let rig = Rig::new(|_| {});
        let far = OscBundle {
            timetag: osc_timecode_core::protocol::timetag_from_system_time(
                SystemTime::now() + Duration::from_secs(7200),
            ),
            content: vec![cue_msg("/cue/1", vec![])],
        };
        for (packet, status) in [
            (cue_msg("/nope", vec![]), AckStatus::Unmapped),
            (cue_msg("/cue/1", vec![OscType::String("x".into())]), AckStatus::BadArgument),
            (cue_msg("/cue/*", vec![]), AckStatus::TooBroad),
            (OscPacket::Bundle(far), AckStatus::TooFarAhead),
        ] {
            rig.send(&packet);
            assert_eq!(ack_of(&rig.reply()).status, status);
        }
        let status = rig.status();
        let get = |name: &str| status.iter().find(|(n, _)| n == name).unwrap().1;
        // The four cues and the /status query itself, answered.
        assert_eq!(get("received"), 5);
        assert_eq!(get("dropped_unmapped") + get("dropped_bad_argument") + get("dropped_too_broad"), 3);
        assert_eq!(get("dropped_too_far_ahead"), 1);
        assert_eq!(get("status_answered"), 1);
    }

    /// `/status` reports the outputs' counters as the audio and network threads count them,
    /// after the cue input's, and the reply still fits what the padded query paid for.
    #[test]
    fn status_reports_the_outputs_counters() {
        let rig = Rig::new(|_| {});
        rig.outputs.outputs.ltc_words.store(1500, Ordering::Relaxed);
        rig.outputs.outputs.mtc_sent.store(6000, Ordering::Relaxed);
        rig.outputs.outputs.mtc_rate_refused.store(3, Ordering::Relaxed);
        rig.outputs.network.artnet_sent.store(u64::MAX >> 1, Ordering::Relaxed);
        rig.outputs.network.artnet_rate_refused.store(9, Ordering::Relaxed);
        let status = rig.status();
        let names: Vec<&str> = status.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, osc_timecode_core::protocol::status::PLUGIN);
        let get = |name: &str| status.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!((get("ltc_words"), get("ltc_rate_refused")), (1500, 0));
        assert_eq!((get("mtc_sent"), get("mtc_refused"), get("mtc_rate_refused")), (6000, 0, 3));
        assert_eq!((get("artnet_sent"), get("artnet_send_errors")), (u64::MAX >> 1, 0));
        assert_eq!((get("artnet_rate_refused"), get("artnet_late")), (9, 0));
        assert_eq!((get("received"), get("status_answered")), (1, 1));
    }

    #[test]
    fn token_and_malformed_get_no_reply_but_are_counted() {
        let rig = Rig::new(|c| c.token = Some("s3cret".parse().unwrap()));
        rig.send(&cue_msg("/cue/1", vec![]));
        rig.send(&cue_msg("/cue/1", vec![OscType::String("wrong".into())]));
        rig.send_bytes(b"garbage!");
        rig.send(&OscPacket::Message(osc_timecode_core::cue::status_query(Some("s3cret"))));
        // The first reply is the status: the three before got none.
        let status = status_from_osc(&rig.reply()).expect("only the /status query is answered");
        let get = |name: &str| status.iter().find(|(n, _)| n == name).unwrap().1;
        assert_eq!((get("received"), get("dropped_bad_token"), get("dropped_malformed")), (4, 2, 1));
        assert_eq!(get("status_answered"), 1, "the query itself is received and answered");
        rig.send(&cue_msg("/cue/1", vec![OscType::String("s3cret".into()), OscType::Int(5)]));
        assert_eq!(ack_of(&rig.reply()).status, AckStatus::Ok);
    }

    #[test]
    fn timetagged_cues_wait_and_stop_counts_them() {
        let mut rig = Rig::new(|_| {});
        let soon = SystemTime::now() + Duration::from_millis(200);
        let later = SystemTime::now() + Duration::from_secs(30);
        for (t, id) in [(later, 1), (soon, 2)] {
            rig.send(&OscPacket::Bundle(OscBundle {
                timetag: osc_timecode_core::protocol::timetag_from_system_time(t),
                content: vec![cue_msg("/cue/2", vec![OscType::Nil, OscType::Int(id)])],
            }));
            assert_eq!(ack_of(&rig.reply()).status, AckStatus::Ok);
        }
        let mut consumer = rig.consumer.take().unwrap();
        // Within RELEASE_AHEAD: in the ring at once, with its time.
        let first = consumer.pop().expect("the near cue goes straight to the ring");
        let at = first.at.expect("timetagged");
        let expected = Instant::now() + Duration::from_millis(200);
        assert!(at.max(expected) - at.min(expected) < Duration::from_millis(50));
        assert!(consumer.pop().is_err(), "the far cue waits on the cue thread");
        rig.thread.take().unwrap().stop();
        assert_eq!(rig.stats.dropped(DropReason::Deactivated), 1);
    }

    /// A wrapper's setter that records what it is asked and refuses once `room` changes are in.
    struct FakeSetter {
        /// (parameter ID, normalized value) in call order.
        calls: std::sync::Mutex<Vec<(String, f32)>>,
        /// Changes it takes before saying its queue is full.
        room: usize,
    }

    impl RemoteParamSetter for FakeSetter {
        fn set_parameter_normalized(&self, param_id: &str, normalized: f32) -> Result<(), RemoteParamError> {
            let mut calls = self.calls.lock().unwrap();
            if calls.len() >= self.room {
                return Err(RemoteParamError::QueueFull);
            }
            calls.push((param_id.to_owned(), normalized));
            Ok(())
        }
    }

    #[test]
    fn macro_cues_set_the_macros_through_the_wrappers_setter_with_acks_and_counters() {
        let (producer, mut consumer) = rtrb::RingBuffer::new(16);
        let stats = Arc::new(CueStats::default());
        let mut d = Dispatcher::new(producer, stats.clone(), CueSettings::default(), 0.0);
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let now = Instant::now();
        let status_of = |d: &mut Dispatcher, addr: &str, args: Vec<OscType>| {
            let mut replies = Vec::new();
            let bytes = rosc::encoder::encode(&cue_msg(addr, args)).unwrap();
            d.handle_datagram(&bytes, from, now, &mut replies);
            assert_eq!(replies.len(), 1, "{addr}: one ack");
            ack_of(&replies[0]).status
        };
        // Without a setter from the wrapper: unmapped.
        assert_eq!(status_of(&mut d, "/macro/1", vec![OscType::Float(0.5)]), AckStatus::Unmapped);
        let setter = Arc::new(FakeSetter { calls: Default::default(), room: 3 });
        let side = ParamSide { setter: Some(setter.clone()), returns: None };
        d.set_params_with(side, Arc::new(TimecodeParams::new(Settings::default())));
        assert_eq!(status_of(&mut d, "/macro/1", vec![OscType::Float(0.5)]), AckStatus::Ok);
        assert_eq!(status_of(&mut d, "/macro/8", vec![OscType::Int(127), OscType::Int(4)]), AckStatus::Ok);
        assert_eq!(status_of(&mut d, "/macro/8", vec![OscType::Int(0), OscType::Int(4)]), AckStatus::Duplicate);
        assert_eq!(status_of(&mut d, "/macro/2", vec![]), AckStatus::BadArgument, "a macro needs its VALUE");
        assert_eq!(status_of(&mut d, "/macro/2", vec![OscType::Int(128)]), AckStatus::BadArgument);
        assert_eq!(status_of(&mut d, "/macro/9", vec![OscType::Int(1)]), AckStatus::Unmapped);
        assert_eq!(status_of(&mut d, "/macro/3", vec![OscType::Int(0)]), AckStatus::Ok);
        assert_eq!(status_of(&mut d, "/macro/3", vec![OscType::Int(1)]), AckStatus::QueueFull, "the wrapper's queue");
        assert_eq!(
            *setter.calls.lock().unwrap(),
            [("macro1".to_owned(), 0.5), ("macro8".to_owned(), 1.0), ("macro3".to_owned(), 0.0)]
        );
        assert!(consumer.pop().is_err(), "nothing for the audio thread");
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((load(&stats.received), load(&stats.accepted), load(&stats.applied), stats.queued()), (9, 3, 3, 0));
        assert_eq!(
            [DropReason::Unmapped, DropReason::Duplicate, DropReason::BadArgument, DropReason::QueueFull]
                .map(|r| stats.dropped(r)),
            [2, 1, 2, 1]
        );

        // Defaults off, or a named mapping of the address: not a macro.
        let named: CueSettings =
            serde_json::from_str(r#"{"map": [{"address": "/macro/1", "kind": "cc", "channel": 1, "number": 20}]}"#)
                .unwrap();
        for settings in [named, CueSettings { defaults: false, ..CueSettings::default() }] {
            let defaults = settings.defaults;
            d.apply_settings(settings, 0.0);
            let want = if defaults { AckStatus::Ok } else { AckStatus::Unmapped };
            assert_eq!(status_of(&mut d, "/macro/1", vec![OscType::Float(0.25)]), want);
        }
        assert!(consumer.pop().is_ok(), "the named mapping's MIDI went to the audio thread");
        assert_eq!(setter.calls.lock().unwrap().len(), 3, "the setter was not asked again");
    }

    /// A named `param` mapping: its fixed value, or the cue's VALUE (an int ÷ 127, a float
    /// exactly); a ramp moves there in steps; timetagged, the change goes to the audio thread with
    /// its value resolved; a mapping with no value and a cue with none is `bad_argument`.
    #[test]
    fn param_mappings_set_a_parameter_by_id_now_ramped_or_at_their_time() {
        let (producer, mut consumer) = rtrb::RingBuffer::new(16);
        let stats = Arc::new(CueStats::default());
        let settings: CueSettings = serde_json::from_str(
            r#"{"map": [
                {"address": "/show/stop", "kind": "param", "param": "output", "value": 0.0},
                {"address": "/show/level", "kind": "param", "param": "macro2"},
                {"address": "/show/fade", "kind": "param", "param": "macro3", "value": 1.0, "ramp_ms": 100}
            ]}"#,
        )
        .unwrap();
        let mut d = Dispatcher::new(producer, stats.clone(), settings, 0.0);
        let setter = Arc::new(FakeSetter { calls: Default::default(), room: usize::MAX });
        let side = ParamSide { setter: Some(setter.clone()), returns: None };
        d.set_params_with(side, Arc::new(TimecodeParams::new(Settings::default())));
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let now = Instant::now();
        let send = |d: &mut Dispatcher, packet: OscPacket| {
            let mut replies = Vec::new();
            d.handle_datagram(&rosc::encoder::encode(&packet).unwrap(), from, now, &mut replies);
            ack_of(&replies[0]).status
        };
        assert_eq!(send(&mut d, cue_msg("/show/stop", vec![])), AckStatus::Ok);
        assert_eq!(send(&mut d, cue_msg("/show/level", vec![OscType::Float(0.3)])), AckStatus::Ok);
        assert_eq!(send(&mut d, cue_msg("/show/level", vec![OscType::Int(127)])), AckStatus::Ok);
        assert_eq!(send(&mut d, cue_msg("/show/level", vec![])), AckStatus::BadArgument, "no value anywhere");
        assert_eq!(send(&mut d, cue_msg("/show/level", vec![OscType::Float(2.0)])), AckStatus::BadArgument);
        assert_eq!(
            *setter.calls.lock().unwrap(),
            [("output".to_owned(), 0.0), ("macro2".to_owned(), 0.3), ("macro2".to_owned(), 1.0)]
        );
        assert_eq!(send(&mut d, cue_msg("/show/fade", vec![])), AckStatus::Ok);
        for ms in (10..=100).step_by(10) {
            d.run_automation(now + Duration::from_millis(ms));
        }
        let fade: Vec<f32> =
            setter.calls.lock().unwrap().iter().filter(|(id, _)| id == "macro3").map(|(_, v)| *v).collect();
        assert_eq!(fade.len(), 10, "{fade:?}");
        assert_eq!(fade.last(), Some(&1.0));
        assert!(fade.windows(2).all(|w| w[0] < w[1]), "{fade:?}");
        assert!(consumer.pop().is_err(), "immediate parameter cues stay on this thread");

        let at = SystemTime::now() + Duration::from_millis(500);
        let timed = OscBundle {
            timetag: osc_timecode_core::protocol::timetag_from_system_time(at),
            content: vec![cue_msg("/show/level", vec![OscType::Int(0)])],
        };
        assert_eq!(send(&mut d, OscPacket::Bundle(timed)), AckStatus::Ok);
        let cue = consumer.pop().expect("a timetagged parameter cue goes to the audio thread");
        assert!(cue.at.is_some());
        let param = ParamRef::from_id("macro2").unwrap();
        assert_eq!(cue.actions(), [CueAction::Param { param, value: Normalized::new(0.0), ramp_ms: RampMs::MIN }]);
        assert!(d.next_release().is_some_and(|t| t <= cue.at.unwrap() + Duration::from_millis(2)), "wakes for it");
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((load(&stats.accepted), load(&stats.applied), stats.dropped(DropReason::BadArgument)), (5, 4, 2));
    }

    /// A message that maps to MIDI and a parameter (`/*/1`: `/cue/1`, `/trigger/1`, `/macro/1`):
    /// the parameter is set only once the MIDI events are queued, so a full ring refuses the
    /// whole message and sets nothing.
    #[test]
    fn a_message_of_midi_and_a_parameter_sets_the_parameter_only_once_the_midi_is_queued() {
        let (producer, mut consumer) = rtrb::RingBuffer::new(1);
        let stats = Arc::new(CueStats::default());
        let mut d = Dispatcher::new(producer, stats.clone(), CueSettings::default(), 0.0);
        let setter = Arc::new(FakeSetter { calls: Default::default(), room: usize::MAX });
        let side = ParamSide { setter: Some(setter.clone()), returns: None };
        d.set_params_with(side, Arc::new(TimecodeParams::new(Settings::default())));
        let from: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let send = |d: &mut Dispatcher| {
            let mut replies = Vec::new();
            let bytes = rosc::encoder::encode(&cue_msg("/*/1", vec![OscType::Int(127)])).unwrap();
            d.handle_datagram(&bytes, from, Instant::now(), &mut replies);
            ack_of(&replies[0]).status
        };
        assert_eq!(send(&mut d), AckStatus::Ok);
        assert_eq!(*setter.calls.lock().unwrap(), [("macro1".to_owned(), 1.0)]);
        assert_eq!(send(&mut d), AckStatus::QueueFull, "the ring holds the first message");
        assert_eq!(setter.calls.lock().unwrap().len(), 1, "nothing of the refused message was set");
        let first = consumer.pop().unwrap();
        assert_eq!(first.len, 2, "the note and the CC, not the parameter: {first:?}");
        assert_eq!(send(&mut d), AckStatus::Ok);
        assert_eq!(setter.calls.lock().unwrap().len(), 2);
        assert_eq!((stats.accepted.load(Ordering::Relaxed), stats.dropped(DropReason::QueueFull)), (2, 1));
    }

    #[test]
    fn the_window_sees_each_cue_from_an_allowed_sender_with_its_midi_and_status() {
        let (producer, _consumer) = rtrb::RingBuffer::new(16);
        let settings = CueSettings { token: Some("t".parse().unwrap()), ..CueSettings::default() };
        let mut d = Dispatcher::new(producer, Arc::new(CueStats::default()), settings, 0.0);
        let activity = Arc::new(CueActivity::default());
        d.report_to(activity.clone());
        let friend: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let stranger: SocketAddr = "10.1.2.3:9000".parse().unwrap();
        let token = || OscType::String("t".into());
        let mut replies = Vec::new();
        for (from, addr, args) in [
            (friend, "/cue/60", vec![token(), OscType::Int(90)]),
            (friend, "/nope", vec![token()]),
            (friend, "/cue/61", vec![]),
            (stranger, "/cue/62", vec![token()]),
            (friend, "/cue/{1,2}", vec![token()]),
            (friend, "/cue/1", vec![token(), OscType::String("x".into())]),
            (friend, "/cue/60", vec![token(), OscType::Int(0), OscType::Int(5)]),
            (friend, "/cue/60", vec![token(), OscType::Int(0), OscType::Int(5)]),
        ] {
            let bytes = rosc::encoder::encode(&cue_msg(addr, args)).unwrap();
            d.handle_datagram(&bytes, from, Instant::now(), &mut replies);
        }
        let mut recent = Vec::new();
        activity.recent(0, &mut recent);
        let seen: Vec<(&str, AckStatus, usize)> =
            recent.iter().map(|c| (c.address.as_str(), c.status, c.actions().count())).collect();
        // Newest first; the bad token and the stranger are not there.
        assert_eq!(
            seen,
            [
                ("/cue/60", AckStatus::Duplicate, 0),
                ("/cue/60", AckStatus::Ok, 1),
                ("/cue/1", AckStatus::BadArgument, 0),
                ("/cue/{1,2}", AckStatus::Ok, 2),
                ("/nope", AckStatus::Unmapped, 0),
                ("/cue/60", AckStatus::Ok, 1),
            ]
        );
        let key = crate::settings::values::U7::new(60).unwrap();
        let channel = crate::settings::values::Channel::ONE;
        let velocity = crate::settings::values::U7::new(90).unwrap();
        assert_eq!(
            recent[5].actions().next(),
            Some(&CueAction::Note { channel, key, velocity, length_ms: crate::settings::cues::DEFAULT_NOTE_LENGTH })
        );
        assert_eq!(recent[1].actions().next(), Some(&CueAction::NoteOff { channel, key }), "VALUE 0 applied");
        assert_eq!(recent[0].from, friend);
    }

    #[test]
    fn senders_outside_the_allow_list_are_dropped_silently() {
        let rig = Rig::new(|c| c.allow = crate::settings::values::AllowEntries::one("127.0.0.2".parse().unwrap()));
        rig.send(&cue_msg("/cue/1", vec![]));
        rig.send(&cue_msg("/status", vec![]));
        rig.sender.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        let mut buf = [0u8; 4096];
        assert!(rig.sender.recv(&mut buf).is_err(), "no reply to a stranger");
        let friend = UdpSocket::bind("127.0.0.2:0").unwrap();
        friend.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        friend.send_to(&rosc::encoder::encode(&cue_msg("/status", vec![])).unwrap(), ("127.0.0.1", rig.port)).unwrap();
        let n = friend.recv(&mut buf).unwrap();
        let OscPacket::Message(m) = rosc::decoder::decode_udp(&buf[..n]).unwrap().1 else { panic!() };
        let status = status_from_osc(&m).unwrap();
        assert_eq!(status.iter().find(|(n, _)| n == "dropped_not_allowed").unwrap().1, 2);
    }
}
