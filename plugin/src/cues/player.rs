//! The audio-thread side of cues: drains the ring, places each cue at its sample, schedules
//! note offs, and hands the events to the host in sample order.
//!
//! Contract: [`CuePlayer::run_block`] never allocates (every buffer is allocated in
//! [`CuePlayer::new`], in `activate()`, and never grows past its capacity), locks, waits, makes a
//! syscall or panics; its clock reading is the block start the caller passes in. Sending is a
//! callback, so this module knows nothing of nice-plug and is tested without a host.
//!
//! Nothing is lost without a count (issue 14, "Silent loss"):
//! - every capacity below is sized so that what one block can produce fits: a message's events
//!   are placed whole or not at all (then the cue waits for the next block);
//! - an event the host refuses is not dropped: it and every event after it in the block are
//!   carried, in order, to offset 0 of the next block (late: its message counts `late`; a carried
//!   note off counts once in `note_offs_delayed`). Only when the carry is full is a cue event
//!   lost, and its message counts `dropped_host_full`; note offs always have room (see
//!   [`CARRY_CAPACITY`]). `applied` counts a message once all its events reached the host;
//! - a note off is never sent before its note's length has passed from the sample its note on
//!   actually reached the host ([`NOTE_SLOTS`]);
//! - note offs still owed at deactivation are handed to the next activation
//!   ([`PendingReleases`]) and sent at offset 0 of its first block.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use osc_timecode_core::cue::MAX_FANOUT;

use super::{CueEvent, CueStats, DropReason};
use crate::params::ParamRef;
use crate::settings::cues::CueAction;
use crate::settings::values::{Normalized, RampMs};

/// Cues held on the audio thread until their block comes (timetagged ones arrive up to
/// [`super::receiver::RELEASE_AHEAD`] early).
pub const HOLD_CAPACITY: usize = 1024;
/// Cue events one block can place: every held cue with [`MAX_FANOUT`] actions.
pub const READY_CAPACITY: usize = HOLD_CAPACITY * MAX_FANOUT;
/// Distinct (channel, key) pairs, 16 × 128: the pending note off table has one slot for each,
/// so it can never be full.
///
/// Why one slot per key and not one per note: the ring and the hold bound what one block can
/// start, not how many notes are sounding (a sender can start 8192 long notes every block), so
/// no table of pending notes could be sized to never overflow, and an overflow would force a
/// choice between an early note off and a stuck note. MIDI 1.0 cannot tell two notes of one key
/// apart anyway (nice-plug sends note offs with a wildcard note id): a note off ends the key. So
/// a note started while its key is still held by an earlier note extends the key to whichever
/// note ends later, and that key gets one note off, then; the note off that became unnecessary
/// is counted in `note_offs_merged`. No note off is ever sent before the length of a note it
/// ends, and none is lost.
pub const NOTE_SLOTS: usize = 16 * 128;
/// Events carried to the next block when the host refuses: a whole block of cue events, plus one
/// note off per key. A key has at most one note off in the carry (a second one needs a new note
/// on to reach the host first, which waits behind the carried off), and cue events are only
/// carried while [`NOTE_SLOTS`] places are left, so a note off always finds room: note offs are
/// never lost while the plugin exists.
pub const CARRY_CAPACITY: usize = READY_CAPACITY + NOTE_SLOTS;
/// Messages with events in flight: the ones placed in this block plus one per carried event.
const MESSAGE_CAPACITY: usize = HOLD_CAPACITY + READY_CAPACITY;
/// Frame starts remembered per block for quantising (far more than any block holds at 60 fps).
pub const FRAME_STARTS_CAPACITY: usize = 256;

/// One MIDI event for the host. `Copy`. Channels are 0–15 here, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueOut {
    /// Note on with velocity 1–127.
    NoteOn {
        /// 0–15.
        channel: u8,
        /// 0–127.
        key: u8,
        /// 1–127.
        velocity: u8,
    },
    /// Note off.
    NoteOff {
        /// 0–15.
        channel: u8,
        /// 0–127.
        key: u8,
    },
    /// Control change.
    Cc {
        /// 0–15.
        channel: u8,
        /// 0–127.
        number: u8,
        /// 0–127.
        value: u8,
    },
    /// Program change.
    Program {
        /// 0–15.
        channel: u8,
        /// 0–127.
        program: u8,
    },
    /// A parameter change (a `param` cue): one host gesture at its sample, or, with a ramp (or
    /// where the format cannot do it from the audio thread), handed back to the cue thread
    /// ([`crate::cues::automation`]).
    Param {
        /// The parameter.
        param: ParamRef,
        /// Normalized value.
        value: Normalized,
        /// Milliseconds to move there; 0 at once.
        ramp_ms: RampMs,
    },
}

/// What the audio thread knows about the block being processed.
#[derive(Debug, Clone, Copy)]
pub struct BlockTiming {
    /// When processing of this block started (the caller reads the clock once per block).
    pub start: Instant,
    /// Hz.
    pub sample_rate: u32,
    /// Samples in the block.
    pub len: u32,
    /// Transport rolling (quantising only applies then).
    pub playing: bool,
}

/// Keys whose note off is owed: what a deactivated [`CuePlayer`] hands to the next one
/// ([`CuePlayer::abandon`], [`CuePlayer::owe`]). `Copy`, 256 bytes, no heap, so the plugin can
/// keep it between activations. `[main-thread]`
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingReleases {
    /// One bit per (channel, key) slot, slot = channel × 128 + key.
    bits: [u64; NOTE_SLOTS / 64],
}

impl PendingReleases {
    /// Owes a note off for `channel` (0–15), `key` (0–127).
    pub fn insert(&mut self, channel: u8, key: u8) {
        let slot = slot_of(channel, key);
        self.bits[slot / 64] |= 1 << (slot % 64);
    }

    /// Adds everything `other` owes.
    pub fn merge(&mut self, other: Self) {
        for (a, b) in self.bits.iter_mut().zip(other.bits) {
            *a |= b;
        }
    }

    /// How many note offs are owed.
    pub fn len(&self) -> u32 {
        self.bits.iter().map(|w| w.count_ones()).sum()
    }

    /// Nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }

    /// The owed `(channel, key)` pairs, channel by channel, keys ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u8)> + '_ {
        (0..NOTE_SLOTS).filter(|&s| self.bits[s / 64] & (1 << (s % 64)) != 0).map(key_of)
    }
}

/// The note off table's slot of `channel` (0–15), `key` (0–127).
fn slot_of(channel: u8, key: u8) -> usize {
    usize::from(channel & 0x0f) * 128 + usize::from(key & 0x7f)
}

/// The `(channel, key)` of a slot.
fn key_of(slot: usize) -> (u8, u8) {
    ((slot / 128) as u8, (slot % 128) as u8)
}

/// A cue waiting on the audio thread.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The cue.
    cue: CueEvent,
    /// How far it has come.
    state: HeldState,
}

/// Where a held cue stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeldState {
    /// Not looked at in a block yet: a sample already past is late.
    Fresh,
    /// Looked at in an earlier block, its time not come then: a sample past now is block
    /// jitter, not lateness.
    Seen,
    /// Its time has come but it waits for the next frame start (quantise).
    AwaitingFrame,
}

/// Where a held cue goes in this block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// At `offset` samples into the block; `late` if its sample had already been processed.
    At {
        /// Samples from the block's first.
        offset: u32,
        /// Its sample had already been processed when it came.
        late: bool,
    },
    /// Its time is after this block.
    Later,
    /// Its time has come, but no frame starts in the rest of the block (quantise).
    NextFrame,
}

/// An event on its way to the host.
#[derive(Debug, Clone, Copy)]
struct Out {
    /// The event.
    event: CueOut,
    /// What it belongs to.
    origin: Origin,
}

/// What an event is part of.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// One of the events of a cue message.
    Cue {
        /// Index into `messages`.
        msg: u16,
        /// A note on's note off, this many samples after it reaches the host (at least 1);
        /// `None` for a held note and for other events.
        release_after: Option<u64>,
    },
    /// A note off the player owes: a note's scheduled end, or one owed by a previous activation.
    Release {
        /// Already counted in `note_offs_delayed` (or owed from before: never counted).
        counted: bool,
    },
}

/// A cue event placed in this block, sorted by (offset, seq, idx) before sending.
#[derive(Debug, Clone, Copy)]
struct Ready {
    /// Sample offset in the block.
    offset: u32,
    /// Arrival order.
    seq: u64,
    /// Position among the message's actions.
    idx: u8,
    /// The event.
    out: Out,
}

/// A cue message with events not yet at the host.
#[derive(Debug, Clone, Copy, Default)]
struct Message {
    /// Events neither delivered nor lost yet (0: the slot is free).
    outstanding: u8,
    /// Its sample had already been processed, or one of its events was carried to a later block.
    late: bool,
    /// One of its events was lost (the carry was full).
    lost: bool,
}

/// The next event of the block, in sample order.
#[derive(Debug, Clone, Copy)]
enum Next {
    /// The earliest pending note off, due at sample `due` (counted like `now`) for `slot`.
    NoteOff {
        /// The sample it is due at.
        due: u64,
        /// Its (channel, key) slot.
        slot: u16,
    },
    /// `ready[i]`.
    Cue(usize),
    /// Nothing more in this block.
    Done,
}

/// Whether the host still takes events in this block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// It has taken everything offered so far.
    Open,
    /// It refused an event: everything after it waits for the next block, so nothing overtakes
    /// it.
    Stalled,
}

/// The host's event queue for one block: the caller's `send`, closed for the rest of the block
/// once it refuses.
struct HostQueue<F> {
    /// Sends at a sample offset; `false` when the host refused.
    send: F,
    /// Open until the first refusal.
    flow: Flow,
}

impl<F: FnMut(u32, CueOut) -> bool> HostQueue<F> {
    /// Offers `event` at `offset`: whether the host took it.
    fn offer(&mut self, offset: u32, event: CueOut) -> bool {
        if self.flow == Flow::Open && (self.send)(offset, event) {
            return true;
        }
        self.flow = Flow::Stalled;
        false
    }
}

/// The audio thread's cue state. `[audio-thread]` throughout; created in `activate()` (`[main-thread]`),
/// where every buffer is allocated at its final capacity.
pub struct CuePlayer {
    /// Cues from the cue thread.
    consumer: rtrb::Consumer<CueEvent>,
    /// Counters.
    stats: Arc<CueStats>,
    /// Cues not yet due. Capacity [`HOLD_CAPACITY`].
    held: Vec<Held>,
    /// Cue events placed in this block. Capacity [`READY_CAPACITY`].
    ready: Vec<Ready>,
    /// Events the host refused, in order, for offset 0 of the next block. Capacity
    /// [`CARRY_CAPACITY`].
    carry: Vec<Out>,
    /// Messages with events in flight, indexed by `Origin::Cue::msg`. Length
    /// `MESSAGE_CAPACITY`.
    messages: Vec<Message>,
    /// Free indices into `messages`. Capacity `MESSAGE_CAPACITY`.
    free: Vec<u16>,
    /// Pending note off of each (channel, key) slot: the sample it is due at, counted like
    /// `now`. Length [`NOTE_SLOTS`].
    due: Vec<Option<u64>>,
    /// The pending note offs by due sample, earliest first: `(due, slot)`, one entry per pending
    /// slot (an entry older than its slot's `due`, which only grows, is pushed again with it when
    /// it comes up). Capacity [`NOTE_SLOTS`].
    offs: BinaryHeap<Reverse<(u64, u16)>>,
    /// Samples processed by this player before the current block (its first sample's number).
    now: u64,
    /// Note offs merged in this block, added to `note_offs_merged` once at its end (one atomic
    /// add, not thousands, in a large fan-out).
    merged: u64,
    /// Frame starts in this block (sample offsets, ascending). Capacity
    /// [`FRAME_STARTS_CAPACITY`].
    frame_starts: Vec<u32>,
}

impl CuePlayer {
    /// `[main-thread]` Allocates everything the audio thread will use, and writes the two large
    /// event lists once so their pages are mapped here rather than on the audio thread's first
    /// large block (a page fault there is a trip through the kernel).
    pub fn new(consumer: rtrb::Consumer<CueEvent>, stats: Arc<CueStats>) -> Self {
        let blank =
            Out { event: CueOut::Program { channel: 0, program: 0 }, origin: Origin::Release { counted: false } };
        let mut ready = vec![Ready { offset: 0, seq: 0, idx: 0, out: blank }; READY_CAPACITY];
        ready.clear();
        let mut carry = vec![blank; CARRY_CAPACITY];
        carry.clear();
        Self {
            consumer,
            stats,
            held: Vec::with_capacity(HOLD_CAPACITY),
            ready,
            carry,
            messages: vec![Message::default(); MESSAGE_CAPACITY],
            // Popped from the end: slot 0 first.
            free: (0..MESSAGE_CAPACITY as u16).rev().collect(),
            due: vec![None; NOTE_SLOTS],
            offs: BinaryHeap::with_capacity(NOTE_SLOTS),
            now: 0,
            merged: 0,
            frame_starts: Vec::with_capacity(FRAME_STARTS_CAPACITY),
        }
    }

    /// `[main-thread]` Before the first block: note offs a previous activation still owed go out
    /// at offset 0 of the first block, before anything else.
    pub fn owe(&mut self, releases: PendingReleases) {
        for (channel, key) in releases.iter() {
            if self.carry.len() < self.carry.capacity() {
                let event = CueOut::NoteOff { channel, key };
                self.carry.push(Out { event, origin: Origin::Release { counted: true } });
            }
        }
    }

    /// Starts a block: forgets the previous block's frame starts.
    pub fn begin_block(&mut self) {
        self.frame_starts.clear();
    }

    /// A timecode frame starts at `offset` in this block (while playing). Call in order.
    pub fn frame_start(&mut self, offset: u32) {
        if self.frame_starts.len() < self.frame_starts.capacity() {
            self.frame_starts.push(offset);
        }
    }

    /// Whether anything is waiting (the caller may skip reading the clock otherwise).
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.carry.is_empty() && self.offs.is_empty() && self.consumer.is_empty()
    }

    /// Places this block's cues and note offs and sends them in sample order through `send`,
    /// which returns `false` when the host refused the event: carried events first (at offset
    /// 0), then this block's note offs and cue events by sample, note offs first at one sample.
    pub fn run_block(&mut self, block: BlockTiming, send: impl FnMut(u32, CueOut) -> bool) {
        if !self.is_idle() {
            let mut host = HostQueue { send, flow: Flow::Open };
            self.take_from_ring();
            self.place_cues(block);
            self.send_carried(&mut host);
            self.send_in_sample_order(block, &mut host);
            self.count_merged();
        }
        self.now = self.now.saturating_add(u64::from(block.len));
    }

    /// Phase 1: moves the cues the cue thread queued into `held`, as far as it has room.
    fn take_from_ring(&mut self) {
        while self.held.len() < self.held.capacity() {
            match self.consumer.pop() {
                Ok(cue) => self.held.push(Held { cue, state: HeldState::Fresh }),
                Err(_) => break,
            }
        }
    }

    /// Phase 2: moves the held cues due in this block into `ready`, each message whole with a
    /// slot in `messages`, sorted by sample and arrival.
    fn place_cues(&mut self, block: BlockTiming) {
        self.ready.clear();
        let mut i = 0;
        while i < self.held.len() {
            let held = self.held[i];
            match self.placement(held, block) {
                Placement::Later => {
                    self.held[i].state = HeldState::Seen;
                    i += 1;
                }
                Placement::NextFrame => {
                    self.held[i].state = HeldState::AwaitingFrame;
                    i += 1;
                }
                Placement::At { offset, late } => {
                    let actions = held.cue.actions();
                    let room = self.ready.capacity() - self.ready.len() >= actions.len();
                    let Some(msg) = (if room { self.free.pop() } else { None }) else {
                        // Cannot happen with the capacities above (at most HOLD_CAPACITY
                        // messages of MAX_FANOUT events per block); if it did, the cue waits for
                        // the next block.
                        i += 1;
                        continue;
                    };
                    self.held.swap_remove(i);
                    self.admit(msg, held.cue, offset, late, block.sample_rate);
                }
            }
        }
        self.ready.sort_unstable_by_key(|r| (r.offset, r.seq, r.idx));
    }

    /// Where `held` goes in this block: its time (immediate: offset 0), moved to the next frame
    /// start when it is quantised and the transport plays.
    fn placement(&self, held: Held, block: BlockTiming) -> Placement {
        let placement = match (held.state, held.cue.at) {
            (HeldState::AwaitingFrame, _) | (_, None) => Placement::At { offset: 0, late: false },
            (state, Some(at)) => place(at, block.start, block.sample_rate, block.len, state == HeldState::Seen),
        };
        match placement {
            Placement::At { offset, late } if held.cue.quantise && block.playing => {
                match self.frame_starts.iter().find(|&&f| f >= offset) {
                    Some(&frame) => Placement::At { offset: frame, late },
                    None => Placement::NextFrame,
                }
            }
            other => other,
        }
    }

    /// Gives `cue`'s events message slot `msg` and places them at `offset` in `ready`.
    fn admit(&mut self, msg: u16, cue: CueEvent, offset: u32, late: bool, sample_rate: u32) {
        let before = self.ready.len();
        for (idx, (event, release_after)) in cue.actions().iter().filter_map(|a| cue_out(*a, sample_rate)).enumerate() {
            let out = Out { event, origin: Origin::Cue { msg, release_after } };
            self.ready.push(Ready { offset, seq: cue.seq, idx: idx as u8, out });
        }
        let outstanding = (self.ready.len() - before) as u8;
        self.messages[usize::from(msg)] = Message { outstanding, late, lost: false };
        if outstanding == 0 {
            self.finish(msg);
        }
    }

    /// Phase 3: what earlier blocks could not send, at offset 0, in order; kept in place if
    /// refused again.
    fn send_carried(&mut self, host: &mut HostQueue<impl FnMut(u32, CueOut) -> bool>) {
        let mut kept = 0;
        for i in 0..self.carry.len() {
            let out = self.carry[i];
            if host.offer(0, out.event) {
                self.delivered(0, out);
            } else {
                self.carry[kept] = out;
                kept += 1;
            }
        }
        self.carry.truncate(kept);
    }

    /// Phase 4: this block's note offs and cue events, merged by sample.
    fn send_in_sample_order(&mut self, block: BlockTiming, host: &mut HostQueue<impl FnMut(u32, CueOut) -> bool>) {
        let end = self.now.saturating_add(u64::from(block.len));
        let mut next_cue = 0;
        loop {
            match self.next_event(end, next_cue) {
                Next::Done => break,
                Next::NoteOff { due, slot } => {
                    self.offs.pop();
                    if let Some(out) = self.take_note_off(due, slot) {
                        self.send(due.saturating_sub(self.now) as u32, out, host);
                    }
                }
                Next::Cue(i) => {
                    next_cue += 1;
                    let ready = self.ready[i];
                    self.send(ready.offset, ready.out, host);
                }
            }
        }
    }

    /// The next event before sample `end`: the earliest pending note off or `ready[next_cue]`,
    /// the note off first at one sample.
    fn next_event(&self, end: u64, next_cue: usize) -> Next {
        let off = match self.offs.peek() {
            Some(&Reverse((due, slot))) if due < end => Some((due, slot)),
            _ => None,
        };
        let cue_offset = self.ready.get(next_cue).map(|r| r.offset);
        match (off, cue_offset) {
            (Some((due, slot)), _) if cue_offset.is_none_or(|o| due.saturating_sub(self.now) <= u64::from(o)) => {
                Next::NoteOff { due, slot }
            }
            (_, Some(_)) => Next::Cue(next_cue),
            _ => Next::Done,
        }
    }

    /// The note off of `slot` if it is due at `due`, just taken off the heap. A key extended by a
    /// later note is due later: its entry goes back on the heap for that one's end.
    fn take_note_off(&mut self, due: u64, slot: u16) -> Option<Out> {
        let index = usize::from(slot);
        match self.due[index] {
            Some(current) if current == due => {
                self.due[index] = None;
                let (channel, key) = key_of(index);
                Some(Out { event: CueOut::NoteOff { channel, key }, origin: Origin::Release { counted: false } })
            }
            Some(later) => {
                self.offs.push(Reverse((later, slot)));
                None
            }
            // Cannot happen: a slot has a heap entry exactly while it is pending.
            None => None,
        }
    }

    /// Phase 5: the note offs merged in this block, counted at once.
    fn count_merged(&mut self) {
        if self.merged > 0 {
            self.stats.note_offs_merged.fetch_add(std::mem::take(&mut self.merged), Ordering::Relaxed);
        }
    }

    /// Sends `out` at `offset`, or keeps it for the next block once the host has refused
    /// anything in this one.
    fn send(&mut self, offset: u32, out: Out, host: &mut HostQueue<impl FnMut(u32, CueOut) -> bool>) {
        if host.offer(offset, out.event) {
            self.delivered(offset, out);
        } else {
            self.keep(out);
        }
    }

    /// `out` reached the host at `offset` of this block: its message is one event closer to
    /// applied, and a note on's note off is scheduled from here.
    fn delivered(&mut self, offset: u32, out: Out) {
        let Origin::Cue { msg, release_after } = out.origin else {
            return;
        };
        self.settle(msg);
        if let (CueOut::NoteOn { channel, key, .. }, Some(length)) = (out.event, release_after) {
            let due = self.now.saturating_add(u64::from(offset)).saturating_add(length);
            let slot = slot_of(channel, key);
            match self.due[slot] {
                None => {
                    self.due[slot] = Some(due);
                    if self.offs.len() < self.offs.capacity() {
                        self.offs.push(Reverse((due, slot as u16)));
                    }
                }
                Some(current) => {
                    // The key is still held by an earlier note: one note off, at the later end.
                    self.due[slot] = Some(current.max(due));
                    self.merged += 1;
                }
            }
        }
    }

    /// Carries `out` to the next block, or loses it (counted) when the carry is full.
    fn keep(&mut self, out: Out) {
        match out.origin {
            Origin::Release { counted } => {
                // There is always room (see CARRY_CAPACITY); the check keeps the push from growing.
                if self.carry.len() < self.carry.capacity() {
                    if !counted {
                        self.stats.note_offs_delayed.fetch_add(1, Ordering::Relaxed);
                    }
                    self.carry.push(Out { origin: Origin::Release { counted: true }, ..out });
                }
            }
            Origin::Cue { msg, .. } => {
                if self.carry.len() < CARRY_CAPACITY - NOTE_SLOTS {
                    self.messages[usize::from(msg)].late = true;
                    self.carry.push(out);
                } else {
                    self.messages[usize::from(msg)].lost = true;
                    self.settle(msg);
                }
            }
        }
    }

    /// One event of message `msg` is delivered or lost; counts the message when it was its last.
    fn settle(&mut self, msg: u16) {
        let message = &mut self.messages[usize::from(msg)];
        message.outstanding = message.outstanding.saturating_sub(1);
        if message.outstanding == 0 {
            self.finish(msg);
        }
    }

    /// Counts message `msg` (applied, late, or dropped because the host was full) and frees its
    /// slot.
    fn finish(&mut self, msg: u16) {
        let message = std::mem::take(&mut self.messages[usize::from(msg)]);
        if message.lost {
            self.stats.count_drop(DropReason::HostFull);
        } else {
            if message.late {
                self.stats.late.fetch_add(1, Ordering::Relaxed);
            }
            self.stats.applied.fetch_add(1, Ordering::Relaxed);
        }
        if self.free.len() < self.free.capacity() {
            self.free.push(msg);
        }
    }

    /// `[main-thread]` At deactivation: counts the cues that never got their block, and the
    /// messages with events still carried, as `dropped_deactivated`; returns the note offs still
    /// owed (pending, carried, or a carried `note_off` cue), for the next activation to send.
    pub fn abandon(&mut self) -> PendingReleases {
        let mut n = self.held.len() as u64;
        while self.consumer.pop().is_ok() {
            n += 1;
        }
        self.held.clear();
        n += self.messages.iter().filter(|m| m.outstanding > 0).count() as u64;
        self.messages.fill(Message::default());
        self.free = (0..MESSAGE_CAPACITY as u16).rev().collect();
        for _ in 0..n {
            self.stats.count_drop(DropReason::Deactivated);
        }
        let mut owed = PendingReleases::default();
        for out in self.carry.drain(..) {
            if let CueOut::NoteOff { channel, key } = out.event {
                owed.insert(channel, key);
            }
        }
        for (slot, due) in self.due.iter_mut().enumerate() {
            if due.take().is_some() {
                let (channel, key) = key_of(slot);
                owed.insert(channel, key);
            }
        }
        self.offs.clear();
        owed
    }
}

/// `action` as the event for the host at `sample_rate` Hz, with a note's length in samples
/// (at least 1; `None` for a held note, length 0 ms, and for other events). `None` for a
/// parameter change without its value, which the cue thread never queues.
fn cue_out(action: CueAction, sample_rate: u32) -> Option<(CueOut, Option<u64>)> {
    Some(match action {
        CueAction::Param { param, value, ramp_ms } => (CueOut::Param { param, value: value?, ramp_ms }, None),
        CueAction::Note { channel, key, velocity, length_ms } => {
            let length = length_ms.ms().map(|ms| (u64::from(ms) * u64::from(sample_rate) / 1000).max(1));
            (CueOut::NoteOn { channel: channel.index(), key: key.get(), velocity: velocity.get().max(1) }, length)
        }
        CueAction::NoteOff { channel, key } => (CueOut::NoteOff { channel: channel.index(), key: key.get() }, None),
        CueAction::Cc { channel, number, value } => {
            (CueOut::Cc { channel: channel.index(), number: number.get(), value: value.get() }, None)
        }
        CueAction::Program { channel, program } => {
            (CueOut::Program { channel: channel.index(), program: program.get() }, None)
        }
    })
}

/// Where a cue timed `at` falls in a block that started processing at `start`: at an offset if
/// in this block or already past, [`Placement::Later`] if in a later block. `at` is the moment
/// the sample leaves the host (see [`CueEvent::at`]); a sample at offset `o` leaves it at
/// `start + (o + len) / sample_rate`. A cue whose sample has passed goes at 0; it is late
/// unless it was `seen` in an earlier block (then the miss is block-timing jitter).
fn place(at: Instant, start: Instant, sample_rate: u32, len: u32, seen: bool) -> Placement {
    let nanos: i128 = match at.checked_duration_since(start) {
        Some(d) => d.as_nanos() as i128,
        None => -(start.duration_since(at).as_nanos() as i128),
    };
    // Round to the nearest sample.
    let samples = (nanos * i128::from(sample_rate) + 500_000_000).div_euclid(1_000_000_000) - i128::from(len);
    if samples >= i128::from(len) {
        Placement::Later
    } else if samples < 0 {
        Placement::At { offset: 0, late: !seen }
    } else {
        Placement::At { offset: samples as u32, late: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::cues::CueAction;
    use crate::settings::values::{Channel, NoteLength, U7};
    use std::time::Duration;

    const SR: u32 = 48_000;

    fn note_on(channel: u8, key: u8, length_ms: u32) -> CueAction {
        CueAction::Note {
            channel: Channel::try_from(channel + 1).unwrap(),
            key: U7::new(key).unwrap(),
            velocity: U7::MAX,
            length_ms: NoteLength::new(length_ms).unwrap(),
        }
    }

    fn note(key: u8, length_ms: u32) -> CueAction {
        note_on(0, key, length_ms)
    }

    fn cue(action: CueAction, at: Option<Instant>, seq: u64) -> CueEvent {
        CueEvent { actions: [action; 8], len: 1, at, seq, quantise: false }
    }

    /// An immediate cue of `actions` (up to 8).
    fn fan_out(actions: &[CueAction], seq: u64) -> CueEvent {
        let mut c = cue(actions[0], None, seq);
        c.actions[..actions.len()].copy_from_slice(actions);
        c.len = actions.len() as u8;
        c
    }

    /// Eight notes, keys 1–8, `length_ms` each (`/cue/{1,2,3,4,5,6,7,8}` with the defaults).
    fn eight_notes(length_ms: u32) -> [CueAction; 8] {
        std::array::from_fn(|i| note(i as u8 + 1, length_ms))
    }

    struct Rig {
        player: CuePlayer,
        producer: rtrb::Producer<CueEvent>,
        stats: Arc<CueStats>,
    }

    impl Rig {
        fn new() -> Self {
            Self::with_ring(64)
        }

        fn with_ring(capacity: usize) -> Self {
            let (producer, consumer) = rtrb::RingBuffer::new(capacity);
            let stats = Arc::new(CueStats::default());
            Self { player: CuePlayer::new(consumer, stats.clone()), producer, stats }
        }

        /// Queues `cue` as the cue thread does (counted accepted).
        fn push(&mut self, cue: CueEvent) {
            self.producer.push(cue).unwrap();
            self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        }

        /// Runs one block; returns what was sent.
        fn block(&mut self, start: Instant, len: u32, frames: &[u32]) -> Vec<(u32, CueOut)> {
            self.block_playing(start, len, frames, !frames.is_empty())
        }

        /// Runs one block, playing or not; returns what was sent.
        fn block_playing(&mut self, start: Instant, len: u32, frames: &[u32], playing: bool) -> Vec<(u32, CueOut)> {
            self.player.begin_block();
            for &f in frames {
                self.player.frame_start(f);
            }
            let mut sent = Vec::new();
            let timing = BlockTiming { start, sample_rate: SR, len, playing };
            self.player.run_block(timing, |o, e| {
                sent.push((o, e));
                true
            });
            sent
        }

        /// Runs one block of `len` (not playing, immediate cues only) on a host that takes at
        /// most `room` events; returns what it took.
        fn block_with_room(&mut self, len: u32, room: usize) -> Vec<(u32, CueOut)> {
            self.player.begin_block();
            let mut sent = Vec::new();
            let timing = BlockTiming { start: Instant::now(), sample_rate: SR, len, playing: false };
            self.player.run_block(timing, |o, e| {
                if sent.len() == room {
                    return false;
                }
                sent.push((o, e));
                true
            });
            sent
        }

        fn count(&self, counter: &AtomicU64Ref) -> u64 {
            counter(&self.stats).load(Ordering::Relaxed)
        }

        /// Every accepted message is applied, dropped after acceptance, or still queued; late
        /// ones are applied ones.
        fn assert_adds_up(&self, queued: u64) {
            let s = &self.stats;
            let applied = s.applied.load(Ordering::Relaxed);
            let done = applied + s.dropped(DropReason::HostFull) + s.dropped(DropReason::Deactivated);
            assert_eq!(s.accepted.load(Ordering::Relaxed), done + queued, "{s:?}");
            assert_eq!(s.queued(), queued, "{s:?}");
            assert!(s.late.load(Ordering::Relaxed) <= applied, "{s:?}");
        }
    }

    type AtomicU64Ref = fn(&CueStats) -> &std::sync::atomic::AtomicU64;
    const APPLIED: AtomicU64Ref = |s| &s.applied;
    const LATE: AtomicU64Ref = |s| &s.late;
    const DELAYED: AtomicU64Ref = |s| &s.note_offs_delayed;
    const MERGED: AtomicU64Ref = |s| &s.note_offs_merged;

    fn on(key: u8) -> CueOut {
        CueOut::NoteOn { channel: 0, key, velocity: 127 }
    }

    fn off(key: u8) -> CueOut {
        CueOut::NoteOff { channel: 0, key }
    }

    fn ons(sent: &[(u32, CueOut)]) -> usize {
        sent.iter().filter(|(_, e)| matches!(e, CueOut::NoteOn { .. })).count()
    }

    #[test]
    fn immediate_cues_go_at_offset_zero_and_note_offs_follow_exactly() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        rig.push(cue(note(60, 10), None, 1));
        // 10 ms at 48 kHz = 480 samples: blocks of 256 → off at 480 − 256 = 224 in block 2.
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(60))]);
        assert_eq!(rig.block(t0, 256, &[]), vec![(224, off(60))]);
        assert_eq!(rig.block(t0, 256, &[]), vec![]);
        assert_eq!(rig.count(&APPLIED), 1);
        assert_eq!(rig.count(&LATE), 0);
        rig.assert_adds_up(0);
    }

    #[test]
    fn timetagged_cues_land_where_their_time_falls_one_block_ahead() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        // Due 1000 samples after the block start: leaves the host at start + (o + 256)/sr, so
        // o = 1000 − 256 = 744 → block 2 (512..768) at 232.
        let at = t0 + Duration::from_nanos(1000 * 1_000_000_000 / u64::from(SR));
        rig.push(cue(note(1, 0), Some(at), 1));
        let block = |i: u64| t0 + Duration::from_nanos(i * 256 * 1_000_000_000 / u64::from(SR));
        assert_eq!(rig.block(block(0), 256, &[]), vec![]);
        assert_eq!(rig.block(block(1), 256, &[]), vec![]);
        assert_eq!(rig.block(block(2), 256, &[]), vec![(232, on(1))]);
        assert_eq!(rig.count(&LATE), 0);
    }

    /// A timetagged parameter change is placed exactly as a MIDI cue (the block containing its
    /// time, at its sample), in order with a note of the same message, and counted applied once
    /// the host (or the hand-back to the cue thread) took both.
    #[test]
    fn a_timetagged_parameter_change_lands_at_its_sample_in_the_block_containing_its_time() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        let at = t0 + Duration::from_nanos(1000 * 1_000_000_000 / u64::from(SR));
        let param = ParamRef::cue_macro(0).unwrap();
        let (value, ramp_ms) = (Normalized::new(0.5).unwrap(), RampMs::MIN);
        let mut c = fan_out(&[note(1, 0), CueAction::Param { param, value: Some(value), ramp_ms }], 1);
        c.at = Some(at);
        rig.push(c);
        let block = |i: u64| t0 + Duration::from_nanos(i * 256 * 1_000_000_000 / u64::from(SR));
        assert_eq!(rig.block(block(0), 256, &[]), vec![]);
        assert_eq!(rig.block(block(1), 256, &[]), vec![]);
        assert_eq!(rig.block(block(2), 256, &[]), vec![(232, on(1)), (232, CueOut::Param { param, value, ramp_ms })]);
        assert_eq!((rig.count(&LATE), rig.count(&APPLIED)), (0, 1));
        // A change with no value (never queued by the cue thread) sends nothing and still ends
        // its message.
        rig.push(cue(CueAction::Param { param, value: None, ramp_ms }, None, 2));
        assert_eq!(rig.block(block(3), 256, &[]), vec![]);
        assert_eq!(rig.count(&APPLIED), 2);
    }

    #[test]
    fn a_past_timetag_is_late_at_zero_but_block_jitter_is_not() {
        let mut rig = Rig::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        rig.push(cue(note(2, 0), Some(t0 - Duration::from_millis(500)), 1));
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(2))]);
        assert_eq!(rig.count(&LATE), 1);
        // Seen as "next block" (offset 300 ≥ 256), then the next block starts late by 2 ms.
        let at = t0 + Duration::from_nanos((300 + 256) * 1_000_000_000 / u64::from(SR));
        rig.push(cue(note(3, 0), Some(at), 2));
        assert_eq!(rig.block(t0, 256, &[]), vec![]);
        assert_eq!(rig.block(t0 + Duration::from_millis(10), 256, &[]), vec![(0, on(3))]);
        assert_eq!(rig.count(&LATE), 1, "jitter is not lateness");
        assert_eq!(rig.count(&APPLIED), 2);
    }

    #[test]
    fn quantise_moves_to_the_next_frame_start_even_in_a_later_block() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        let q = |c: CueEvent| CueEvent { quantise: true, ..c };
        rig.push(q(cue(note(4, 0), None, 1)));
        // Immediate → 0; frame starts at 100 in this block.
        assert_eq!(rig.block(t0, 256, &[100]), vec![(100, on(4))]);
        // Timetagged for 150 in a block whose only frame start is 100: waits for the next block.
        let at = t0 + Duration::from_nanos((150 + 256) * 1_000_000_000 / u64::from(SR));
        rig.push(q(cue(note(5, 0), Some(at), 2)));
        assert_eq!(rig.block(t0, 256, &[100]), vec![]);
        assert_eq!(rig.block_playing(t0, 256, &[], true), vec![], "no frame start yet, still playing");
        assert_eq!(rig.block(t0, 256, &[40, 200]), vec![(40, on(5))]);
        // Stopped: no quantising.
        rig.push(q(cue(note(6, 0), None, 3)));
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(6))]);
    }

    #[test]
    fn same_sample_events_keep_order_and_offs_come_first() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        rig.push(cue(note(7, 0), None, 1));
        rig.push(fan_out(&[note(8, 0), note(9, 0)], 2));
        rig.push(cue(CueAction::NoteOff { channel: Channel::ONE, key: U7::new(7).unwrap() }, None, 3));
        assert_eq!(rig.block(t0, 64, &[]), vec![(0, on(7)), (0, on(8)), (0, on(9)), (0, off(7))]);
        // A 1 ms note re-triggered right at its end: the off first.
        rig.push(cue(note(10, 1), None, 4));
        assert_eq!(rig.block(t0, 48, &[]), vec![(0, on(10))]);
        rig.push(cue(note(10, 1), None, 5));
        assert_eq!(rig.block(t0, 48, &[]), vec![(0, off(10)), (0, on(10))]);
        assert_eq!(rig.block(t0, 48, &[]), vec![(0, off(10))]);
        assert_eq!(rig.count(&MERGED), 0, "not overlapping");
    }

    /// Issue 14: 1024 cues of 8 notes between two blocks reached the host as 4608 note ons (the
    /// event list was full and dropped the rest without a word), with `applied` = 1024.
    #[test]
    fn a_fan_out_of_1024_cues_of_8_notes_delivers_all_8192_note_ons_in_the_next_block() {
        let mut rig = Rig::with_ring(1024);
        let t0 = Instant::now();
        for seq in 0..1024 {
            rig.push(fan_out(&eight_notes(100), seq));
        }
        let sent = rig.block(t0, 512, &[]);
        assert_eq!(ons(&sent), 8192, "every note on, in the block after they arrived");
        assert!(sent.iter().all(|&(o, _)| o == 0), "immediate: all at offset 0");
        let want: Vec<CueOut> = (0..1024).flat_map(|_| (1..=8).map(on)).collect();
        assert_eq!(sent.iter().map(|&(_, e)| e).collect::<Vec<_>>(), want, "in arrival order, table order");
        assert_eq!((rig.count(&APPLIED), rig.count(&LATE)), (1024, 0));
        // 100 ms = 4800 samples: one note off per key, exactly then; the other 1023 per key merged.
        let mut offs = Vec::new();
        for b in 1..20u64 {
            offs.extend(rig.block(t0, 512, &[]).into_iter().map(|(o, e)| (b * 512 + u64::from(o), e)));
        }
        assert_eq!(offs, (1..=8).map(|k| (4800, off(k))).collect::<Vec<_>>());
        assert_eq!(rig.count(&MERGED), 8192 - 8);
        assert_eq!(rig.count(&DELAYED), 0);
        rig.assert_adds_up(0);
    }

    /// Issue 14: note offs beyond the 512 the table held went out at the end of the block their
    /// note started in (notes cut to a block).
    #[test]
    fn every_one_of_2048_long_notes_ends_exactly_after_its_length() {
        let mut rig = Rig::with_ring(512);
        let t0 = Instant::now();
        let mut seq = 0;
        for channel in 0..16 {
            for key in (0..128).step_by(8) {
                let notes: [CueAction; 8] = std::array::from_fn(|i| note_on(channel, key + i as u8, 250));
                rig.push(fan_out(&notes, seq));
                seq += 1;
            }
        }
        let mut all = Vec::new();
        for b in 0..30u64 {
            all.extend(rig.block(t0, 512, &[]).into_iter().map(|(o, e)| (b * 512 + u64::from(o), e)));
        }
        let (ons, offs): (Vec<_>, Vec<_>) = all.iter().partition(|(_, e)| matches!(e, CueOut::NoteOn { .. }));
        assert_eq!((ons.len(), offs.len()), (2048, 2048));
        assert!(ons.iter().all(|&&(s, _)| s == 0));
        // 250 ms at 48 kHz = 12 000 samples, for every one of them.
        assert!(offs.iter().all(|&&(s, _)| s == 12_000), "{:?}", offs.iter().find(|&&&(s, _)| s != 12_000));
        assert_eq!((rig.count(&MERGED), rig.count(&DELAYED)), (0, 0));
        rig.assert_adds_up(0);
    }

    #[test]
    fn a_key_restarted_while_held_ends_once_when_its_later_note_ends() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        rig.push(cue(note(20, 10), None, 1)); // 480 samples from 0
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(20))]);
        rig.push(cue(note(20, 1), None, 2)); // 48 samples from 256: inside the first
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(20)), (224, off(20))], "the longer note's end");
        rig.push(cue(note(20, 20), None, 3)); // 960 samples from 512
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(20))]);
        rig.push(cue(note(20, 5), None, 4)); // 240 samples from 768: inside it
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(20))]);
        assert_eq!(rig.block(t0, 256, &[]), vec![]);
        assert_eq!(rig.block(t0, 256, &[]), vec![(192, off(20))], "512 + 960 = 1472 = 5 × 256 + 192");
        assert_eq!(rig.count(&MERGED), 2);
    }

    #[test]
    fn a_refused_note_off_is_carried_to_offset_0_and_counted_delayed_once() {
        let mut rig = Rig::new();
        rig.push(cue(note(30, 1), None, 1)); // off at 48
        assert_eq!(rig.block_with_room(256, 1), vec![(0, on(30))]);
        assert_eq!(rig.count(&APPLIED), 1);
        rig.push(cue(note(31, 0), None, 2));
        assert_eq!(rig.block_with_room(256, 0), vec![], "the host takes nothing");
        assert_eq!(rig.block_with_room(256, 0), vec![], "nor in the next block");
        assert_eq!(rig.count(&DELAYED), 1, "refused twice, counted once");
        assert_eq!((rig.count(&APPLIED), rig.stats.queued()), (1, 1), "the cue waits, carried");
        // Carried events first, in their order, at 0.
        assert_eq!(rig.block_with_room(256, 8), vec![(0, off(30)), (0, on(31))]);
        assert_eq!((rig.count(&APPLIED), rig.count(&LATE)), (2, 1), "carried: late");
        rig.assert_adds_up(0);
    }

    #[test]
    fn what_the_host_refuses_follows_at_the_next_block_in_order_before_that_blocks_own() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        let sample = |o: u64| t0 + Duration::from_nanos((o + 256) * 1_000_000_000 / u64::from(SR));
        // Timetagged at 10, 20, 30 of the first block, each two notes; note 40 (2 ms = 96) from 10
        // ends at 106, inside the block.
        rig.push(CueEvent { at: Some(sample(10)), ..fan_out(&[note(40, 2), note(41, 0)], 1) });
        rig.push(CueEvent { at: Some(sample(20)), ..fan_out(&[note(42, 0), note(43, 0)], 2) });
        rig.push(CueEvent { at: Some(sample(30)), ..fan_out(&[note(44, 0), note(45, 0)], 3) });
        let timing = BlockTiming { start: t0, sample_rate: SR, len: 256, playing: false };
        let mut sent = Vec::new();
        rig.player.begin_block();
        rig.player.run_block(timing, |o, e| {
            if sent.len() == 3 {
                return false;
            }
            sent.push((o, e));
            true
        });
        assert_eq!(sent, vec![(10, on(40)), (10, on(41)), (20, on(42))]);
        assert_eq!(rig.count(&APPLIED), 1);
        rig.push(cue(note(46, 0), None, 4));
        assert_eq!(
            rig.block(t0 + Duration::from_micros(5333), 256, &[]),
            vec![(0, on(43)), (0, on(44)), (0, on(45)), (0, off(40)), (0, on(46))],
            "the carried ones first, in their order (the off due at 106 too), then this block's"
        );
        assert_eq!((rig.count(&APPLIED), rig.count(&LATE), rig.count(&DELAYED)), (4, 2, 1));
        rig.assert_adds_up(0);
    }

    #[test]
    fn a_carried_note_on_gets_its_whole_length_from_when_it_reached_the_host() {
        let mut rig = Rig::new();
        rig.push(cue(note(50, 2), None, 1)); // 96 samples
        assert_eq!(rig.block_with_room(64, 0), vec![]);
        assert_eq!(rig.block_with_room(64, 0), vec![]);
        assert_eq!(rig.block_with_room(64, 8), vec![(0, on(50))]);
        assert_eq!(rig.block_with_room(64, 8), vec![(32, off(50))], "96 after the note on, not after its cue");
    }

    #[test]
    fn a_full_carry_loses_cue_messages_whole_and_counts_each_once() {
        let mut rig = Rig::with_ring(1024);
        for round in 0..2 {
            for seq in 0..1024 {
                rig.push(fan_out(&eight_notes(0), round * 1024 + seq));
            }
            // The host takes nothing: the first 1024 × 8 fill the carry, the next 1024 are lost.
            assert_eq!(rig.block_with_room(64, 0), vec![]);
        }
        assert_eq!(rig.stats.dropped(DropReason::HostFull), 1024);
        rig.assert_adds_up(1024);
        let sent = rig.block_with_room(64, usize::MAX);
        assert_eq!(ons(&sent), 8192);
        assert_eq!((rig.count(&APPLIED), rig.count(&LATE)), (1024, 1024));
        rig.assert_adds_up(0);
    }

    #[test]
    fn a_host_taking_a_few_events_a_block_gets_every_one_in_order() {
        let mut rig = Rig::with_ring(1024);
        for seq in 0..1024 {
            rig.push(fan_out(&eight_notes(1000), seq));
        }
        let mut sent = Vec::new();
        for _ in 0..100 {
            sent.extend(rig.block_with_room(512, 100));
        }
        let want: Vec<CueOut> = (0..1024).flat_map(|_| (1..=8).map(on)).collect();
        assert_eq!(
            sent.iter().map(|&(_, e)| e).filter(|e| matches!(e, CueOut::NoteOn { .. })).collect::<Vec<_>>(),
            want
        );
        // 100 events: the first 12 messages whole in the first block, the others carried.
        assert_eq!((rig.count(&APPLIED), rig.count(&LATE)), (1024, 1012));
        rig.assert_adds_up(0);
    }

    #[test]
    fn deactivation_counts_what_never_played_and_hands_over_the_note_offs_owed() {
        let mut rig = Rig::new();
        let far = Instant::now() + Duration::from_secs(60);
        rig.push(cue(note(12, 0), Some(far), 1));
        rig.push(cue(note(14, 1000), None, 2));
        rig.push(fan_out(&[note(15, 0), CueAction::NoteOff { channel: Channel::ONE, key: U7::new(16).unwrap() }], 3));
        assert_eq!(rig.block_with_room(64, 1), vec![(0, on(14))]);
        rig.push(cue(note(13, 0), None, 4));
        let owed = rig.player.abandon();
        // The timetagged cue, the one in the ring and the carried message.
        assert_eq!(rig.stats.dropped(DropReason::Deactivated), 3);
        rig.assert_adds_up(0);
        assert_eq!(owed.iter().collect::<Vec<_>>(), vec![(0, 14), (0, 16)], "the pending off and the carried one");

        let (_producer, consumer) = rtrb::RingBuffer::new(4);
        let mut next = CuePlayer::new(consumer, rig.stats.clone());
        next.owe(owed);
        assert!(!next.is_idle());
        let mut sent = Vec::new();
        next.run_block(BlockTiming { start: Instant::now(), sample_rate: SR, len: 64, playing: false }, |o, e| {
            sent.push((o, e));
            true
        });
        assert_eq!(sent, vec![(0, off(14)), (0, off(16))], "at offset 0 of the first block");
        assert!(next.is_idle());
    }

    #[test]
    fn pending_releases_keep_each_key_once() {
        let mut a = PendingReleases::default();
        assert!(a.is_empty());
        a.insert(15, 127);
        a.insert(0, 0);
        let mut b = PendingReleases::default();
        b.insert(0, 0);
        b.insert(3, 64);
        a.merge(b);
        assert_eq!(a.len(), 3);
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![(0, 0), (3, 64), (15, 127)]);
    }
}
