//! Cues and triggers into the host: OSC `/cue/...` and `/trigger/...` → MIDI events at a
//! defined sample (schema: `docs/PROTOCOL.md`, "Cues and triggers").
//!
//! Data flow:
//! 1. the cue thread ([`receiver`]) `[cue-thread]`, spawned in `activate()`, receives packets on
//!    the listen address, checks them (allow-list, shape, token, arguments, retries), maps each
//!    message to MIDI ([`map`]), holds timetagged cues until shortly before their time, pushes a
//!    `Copy` [`CueEvent`] into a bounded `rtrb` ring and replies `/ack`;
//! 2. the audio thread ([`player`]) `[audio-thread]` drains the ring every block, places each cue
//!    at its sample (immediate: offset 0; timetagged: where its time falls; quantised: on the
//!    next frame start), and hands the events to the host with `try_send_event`. A full host
//!    buffer drops and counts, never blocks.
//! 3. parameter cues (`param` mappings, `/macro/N VALUE`) are host gestures ([`automation`]):
//!    immediate ones set by the cue thread through the wrapper's `RemoteParamSetter` (vendored
//!    nice-plug, `PATCHED`), timetagged ones placed by the audio thread like MIDI and set at
//!    their sample (CLAP) or handed back to the cue thread at their block (ramps, VST3).
//! 4. [`CueStats`] counts everything, for `/status` and the log (written by the cue thread only).
//!    `/status` also reports the outputs' counters ([`OutputCounters`]: LTC, MTC, Art-Net).

pub mod automation;
pub mod map;
pub mod player;
pub mod receiver;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use osc_timecode_core::cue::MAX_FANOUT;
use osc_timecode_core::protocol::status;

use crate::network::Stats;
use crate::outputs::OutputStats;
use crate::settings::cues::CueAction;

/// Cues the cue thread → audio thread ring holds.
pub const CUE_QUEUE_CAPACITY: usize = 1024;

/// One cue message for the audio thread: up to [`MAX_FANOUT`] actions (a pattern may match
/// several mapped addresses) applied at the same sample. `Copy`, no heap.
#[derive(Debug, Clone, Copy)]
pub struct CueEvent {
    /// The actions; the first `len` are used.
    pub actions: [CueAction; MAX_FANOUT],
    /// How many of `actions` are used (1..=[`MAX_FANOUT`]).
    pub len: u8,
    /// `None`: immediate (the next block's first sample). `Some(t)`: the sample *processed* at
    /// `t` plus the host block's duration, i.e. the sample heard at the timetag once the output
    /// latency is taken off (the cue thread already did that).
    pub at: Option<Instant>,
    /// Arrival order, to keep cues at the same sample in the order they came.
    pub seq: u64,
    /// Move to the next frame start while the transport plays (the `quantise` setting when the
    /// cue arrived).
    pub quantise: bool,
}

impl CueEvent {
    /// The used actions.
    pub fn actions(&self) -> &[CueAction] {
        &self.actions[..usize::from(self.len).min(MAX_FANOUT)]
    }
}

/// Why a cue message was dropped. The names are public API (`/status`, log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The sender is not in the allow-list.
    NotAllowed,
    /// Token missing or wrong.
    BadToken,
    /// Not OSC, too deep, too many messages.
    Malformed,
    /// No mapped address matches.
    Unmapped,
    /// Arguments are not `[TOKEN] [VALUE] [ID]`.
    BadArgument,
    /// The pattern matches too many addresses.
    TooBroad,
    /// Timetag more than an hour away.
    TooFarAhead,
    /// Too many cues waiting for their time.
    ScheduleFull,
    /// The ring to the audio thread was full, or (`/macro/N`) the plugin wrapper's parameter
    /// queue to the host.
    QueueFull,
    /// A retry of an ID already applied.
    Duplicate,
    /// The host's output event buffer refused an event.
    HostFull,
    /// Still waiting when the plugin was deactivated.
    Deactivated,
    /// A bundle with no message in it (valid OSC, nothing to do).
    Empty,
}

impl DropReason {
    /// Every reason, in `/status` order.
    pub const ALL: [Self; 13] = [
        Self::NotAllowed,
        Self::BadToken,
        Self::Malformed,
        Self::Unmapped,
        Self::BadArgument,
        Self::TooBroad,
        Self::TooFarAhead,
        Self::ScheduleFull,
        Self::QueueFull,
        Self::Duplicate,
        Self::HostFull,
        Self::Deactivated,
        Self::Empty,
    ];

    /// The `/status` counter name.
    pub fn counter_name(self) -> &'static str {
        match self {
            Self::NotAllowed => status::DROPPED_NOT_ALLOWED,
            Self::BadToken => status::DROPPED_BAD_TOKEN,
            Self::Malformed => status::DROPPED_MALFORMED,
            Self::Unmapped => status::DROPPED_UNMAPPED,
            Self::BadArgument => status::DROPPED_BAD_ARGUMENT,
            Self::TooBroad => status::DROPPED_TOO_BROAD,
            Self::TooFarAhead => status::DROPPED_TOO_FAR_AHEAD,
            Self::ScheduleFull => status::DROPPED_SCHEDULE_FULL,
            Self::QueueFull => status::DROPPED_QUEUE_FULL,
            Self::Duplicate => status::DROPPED_DUPLICATE,
            Self::HostFull => status::DROPPED_HOST_FULL,
            Self::Deactivated => status::DROPPED_DEACTIVATED,
            Self::Empty => status::DROPPED_EMPTY,
        }
    }
}

/// Cue counters, shared by the cue thread, the audio thread and whoever displays them.
/// `[thread-safe]`, relaxed atomics. They live as long as the plugin instance, across
/// re-activations.
#[derive(Debug, Default)]
pub struct CueStats {
    /// Messages received: every message of a datagram from an allowed sender (`/status` queries
    /// too), and one for a datagram dropped whole (not allowed, malformed, empty). Always the sum
    /// of the outcomes: `applied + queued + dropped_* + status_answered + status_refused`.
    pub received: AtomicU64,
    /// Messages accepted and queued (acked `ok`). `[cue-thread]` writes.
    pub accepted: AtomicU64,
    /// Messages whose events all reached the host. `[audio-thread]` writes.
    pub applied: AtomicU64,
    /// Applied messages whose sample had already been processed. `[audio-thread]` writes.
    pub late: AtomicU64,
    /// Dropped messages by reason, indexed like [`DropReason::ALL`].
    pub dropped: [AtomicU64; DropReason::ALL.len()],
    /// Note offs the host refused (its output event buffer was full), carried to offset 0 of a
    /// later block: each counted once, however many blocks it waits. `[audio-thread]` writes.
    pub note_offs_delayed: AtomicU64,
    /// Failed attempts to bind the listen address.
    pub bind_errors: AtomicU64,
    /// `/ack` or `/status` replies the OS refused.
    pub reply_errors: AtomicU64,
    /// `/status` queries answered. `[cue-thread]` writes.
    pub status_answered: AtomicU64,
    /// `/status` queries (good token) not answered: too often, or the answer would be more than
    /// the sender sent ([`osc_timecode_core::reply`]). `[cue-thread]` writes.
    pub status_refused: AtomicU64,
    /// `/ack` replies not sent because the sender has not sent enough to pay for them
    /// ([`osc_timecode_core::reply`]); the cue itself was handled. `[cue-thread]` writes.
    pub replies_refused: AtomicU64,
    /// Note offs not needed: a note started while its key was still held by an earlier note, so
    /// the key's one note off comes when the later of the two ends (MIDI cannot end one of two
    /// notes of a key; see [`player::NOTE_SLOTS`]). Note ons with a length = note offs sent +
    /// this + those pending. `[audio-thread]` writes.
    pub note_offs_merged: AtomicU64,
    /// The listen socket is bound.
    pub listening: AtomicBool,
}

impl CueStats {
    /// Counts one message dropped for `why`.
    pub fn count_drop(&self, why: DropReason) {
        self.dropped[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Messages dropped for `why`.
    pub fn dropped(&self, why: DropReason) -> u64 {
        self.dropped[why as usize].load(Ordering::Relaxed)
    }

    /// Accepted messages not yet applied or dropped: waiting for their time or in the ring.
    pub fn queued(&self) -> u64 {
        // The only drops after acceptance: the host refused, or the plugin was deactivated.
        let done = self.applied.load(Ordering::Relaxed)
            + self.dropped(DropReason::HostFull)
            + self.dropped(DropReason::Deactivated);
        self.accepted.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// The `/status` reply: these counters, then the outputs', in their public order
    /// ([`status::PLUGIN`]).
    pub fn status(&self, outputs: &OutputCounters) -> Vec<(&'static str, u64)> {
        let mut out = self.counters();
        out.extend(outputs.counters());
        out
    }

    /// The cue input's counters, in their public order: the head of [`status::PLUGIN`]. The
    /// cue thread logs them while they change.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = vec![
            (status::RECEIVED, load(&self.received)),
            (status::APPLIED, load(&self.applied)),
            (status::LATE, load(&self.late)),
            (status::QUEUED, self.queued()),
        ];
        out.extend(DropReason::ALL.iter().map(|&d| (d.counter_name(), self.dropped(d))));
        out.push((status::NOTE_OFFS_DELAYED, load(&self.note_offs_delayed)));
        out.push((status::BIND_ERRORS, load(&self.bind_errors)));
        out.push((status::REPLY_ERRORS, load(&self.reply_errors)));
        out.push((status::STATUS_ANSWERED, load(&self.status_answered)));
        out.push((status::STATUS_REFUSED, load(&self.status_refused)));
        out.push((status::REPLIES_REFUSED, load(&self.replies_refused)));
        out.push((status::NOTE_OFFS_MERGED, load(&self.note_offs_merged)));
        out
    }
}

/// The outputs' counters that `/status` reports after the cue input's: the tail of
/// [`status::PLUGIN`]. `[thread-safe]`: the plugin's own counters, shared (the audio thread writes
/// the LTC and MTC ones, the network thread the Art-Net and clock sync ones); the cue thread reads them.
#[derive(Debug, Clone, Default)]
pub struct OutputCounters {
    /// LTC and MTC.
    pub outputs: Arc<OutputStats>,
    /// Art-Net and clock sync (and the OSC stream's, not reported here).
    pub network: Arc<Stats>,
}

impl OutputCounters {
    /// The counters, in their public order.
    pub fn counters(&self) -> [(&'static str, u64); 11] {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (o, n) = (&*self.outputs, &*self.network);
        [
            (status::LTC_WORDS, load(&o.ltc_words)),
            (status::LTC_RATE_REFUSED, load(&o.ltc_rate_refused)),
            (status::MTC_SENT, load(&o.mtc_sent)),
            (status::MTC_REFUSED, load(&o.mtc_refused)),
            (status::MTC_RATE_REFUSED, load(&o.mtc_rate_refused)),
            (status::ARTNET_SENT, load(&n.artnet_sent)),
            (status::ARTNET_SEND_ERRORS, load(&n.artnet_send_errors)),
            (status::ARTNET_RATE_REFUSED, load(&n.artnet_rate_refused)),
            (status::ARTNET_LATE, load(&n.artnet_late)),
            (status::SYNC_ANSWERED, load(&n.sync_answered)),
            (status::SYNC_REFUSED, load(&n.sync_refused)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply's names and order are core's list (whose strings `core/tests/protocol.rs`
    /// freezes), each counter reported once, each from its own counter.
    #[test]
    fn status_counters_are_the_protocol_list() {
        let outputs = OutputCounters::default();
        let names: Vec<&str> = CueStats::default().status(&outputs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, status::PLUGIN);
        let cue_names = CueStats::default().counters().len();
        assert_eq!(&names[..cue_names], &status::PLUGIN[..cue_names], "the cue input's first");
        let (o, n) = (&*outputs.outputs, &*outputs.network);
        let sources = [
            &o.ltc_words,
            &o.ltc_rate_refused,
            &o.mtc_sent,
            &o.mtc_refused,
            &o.mtc_rate_refused,
            &n.artnet_sent,
            &n.artnet_send_errors,
            &n.artnet_rate_refused,
            &n.artnet_late,
            &n.sync_answered,
            &n.sync_refused,
        ];
        for (i, counter) in sources.iter().enumerate() {
            counter.store(100 + i as u64, Ordering::Relaxed);
        }
        let values: Vec<u64> = outputs.counters().iter().map(|&(_, v)| v).collect();
        assert_eq!(values, (100..111).collect::<Vec<u64>>());
    }

    /// The full reply stays within what a padded query pays for ([`osc_timecode_core::reply`]:
    /// never more bytes back than a sender sent), with every counter at its widest.
    #[test]
    fn the_status_reply_fits_the_padded_query() {
        use osc_timecode_core::cue::{status_query, status_to_osc};
        use osc_timecode_core::reply::message_len;
        let names = status::PLUGIN.map(|n| (n, u64::MAX));
        let reply = message_len(&status_to_osc(&names));
        assert!(reply < message_len(&status_query(None)), "a {reply}-byte reply");
    }

    #[test]
    fn queued_is_accepted_minus_finished() {
        let s = CueStats::default();
        s.accepted.store(10, Ordering::Relaxed);
        s.applied.store(6, Ordering::Relaxed);
        s.count_drop(DropReason::HostFull);
        s.count_drop(DropReason::Deactivated);
        s.count_drop(DropReason::Unmapped);
        assert_eq!(s.queued(), 2);
    }
}
