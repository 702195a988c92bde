//! The audio-thread side of cues: drains the ring, places each cue at its sample, schedules
//! note offs, and hands the events to the host in sample order.
//!
//! Contract: [`CuePlayer::run_block`] never allocates (every buffer is allocated in
//! [`CuePlayer::new`], in `activate()`, and never grows past its capacity), locks, waits or
//! makes a syscall; its clock reading is the block start the caller passes in. Sending is a
//! callback, so this module knows nothing of nice-plug and is tested without a host.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::map::MidiAction;
use super::{CueEvent, CueStats, DropReason};

/// Cues held on the audio thread until their block comes (timetagged ones arrive up to
/// [`super::receiver::RELEASE_AHEAD`] early).
pub const HOLD_CAPACITY: usize = 1024;
/// Note offs waiting for their sample. When full, a new note's off goes out at the end of the
/// block it starts in (counted in `note_offs_delayed`).
pub const NOTE_OFF_CAPACITY: usize = 512;
/// Frame starts remembered per block for quantising (far more than any block holds at 60 fps).
pub const FRAME_STARTS_CAPACITY: usize = 256;

/// One MIDI event for the host. `Copy`. Channels are 0–15 here, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MidiOut {
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
}

/// What the audio thread knows about the block being processed.
#[derive(Debug, Clone, Copy)]
pub struct BlockTiming {
    /// When processing of this block started; `None` if the caller has not read the clock
    /// (then it is read here, once, if a timetagged cue needs it).
    pub start: Option<Instant>,
    /// Hz.
    pub sample_rate: u32,
    /// Samples in the block.
    pub len: u32,
    /// Transport rolling (quantising only applies then).
    pub playing: bool,
}

/// A cue waiting on the audio thread.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// The cue.
    cue: CueEvent,
    /// It has been looked at in an earlier block (so a negative offset now is block jitter, not
    /// lateness).
    seen: bool,
    /// Its time has come but it waits for the next frame start (quantise).
    awaiting_frame: bool,
}

/// An event ready in this block, sorted by (offset, class, seq) before sending.
#[derive(Debug, Clone, Copy)]
struct Ready {
    /// Sample offset in the block.
    offset: u32,
    /// 0 for note offs (so an off and a new on of the same key at one sample go off first),
    /// 1 for cue events.
    class: u8,
    /// Arrival order.
    seq: u64,
    /// Position among the message's actions.
    idx: u8,
    /// Index into `placed` (cue events) or `u16::MAX` (note offs).
    msg: u16,
    /// The event.
    event: MidiOut,
}

/// A note off waiting for its sample.
#[derive(Debug, Clone, Copy)]
struct PendingOff {
    /// Samples from the start of the current block.
    due: u64,
    /// 0–15.
    channel: u8,
    /// 0–127.
    key: u8,
}

/// A cue message placed in this block: was it late, did every event get out.
#[derive(Debug, Clone, Copy)]
struct Placed {
    /// Its sample had already been processed.
    late: bool,
    /// The host refused one of its events.
    failed: bool,
}

/// The audio thread's cue state. `[audio-thread]` throughout; created in `activate()`.
pub struct CuePlayer {
    /// Cues from the cue thread.
    consumer: rtrb::Consumer<CueEvent>,
    /// Counters.
    stats: Arc<CueStats>,
    /// Cues not yet due. Capacity [`HOLD_CAPACITY`].
    held: Vec<Held>,
    /// Events for this block. Capacity `HOLD_CAPACITY × MAX_FANOUT + NOTE_OFF_CAPACITY`.
    ready: Vec<Ready>,
    /// Messages placed in this block. Capacity [`HOLD_CAPACITY`].
    placed: Vec<Placed>,
    /// Note offs to come. Capacity [`NOTE_OFF_CAPACITY`].
    note_offs: Vec<PendingOff>,
    /// Frame starts in this block (sample offsets, ascending). Capacity
    /// [`FRAME_STARTS_CAPACITY`].
    frame_starts: Vec<u32>,
}

impl CuePlayer {
    /// `[main-thread]` Allocates everything the audio thread will use.
    pub fn new(consumer: rtrb::Consumer<CueEvent>, stats: Arc<CueStats>) -> Self {
        Self {
            consumer,
            stats,
            held: Vec::with_capacity(HOLD_CAPACITY),
            ready: Vec::with_capacity(HOLD_CAPACITY * osc_timecode_core::cue::MAX_FANOUT + NOTE_OFF_CAPACITY),
            placed: Vec::with_capacity(HOLD_CAPACITY),
            note_offs: Vec::with_capacity(NOTE_OFF_CAPACITY),
            frame_starts: Vec::with_capacity(FRAME_STARTS_CAPACITY),
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
        self.held.is_empty() && self.note_offs.is_empty() && self.consumer.is_empty()
    }

    /// Places this block's cues and note offs and sends them in sample order through `send`,
    /// which returns `false` when the host refused the event.
    pub fn run_block(&mut self, block: BlockTiming, mut send: impl FnMut(u32, MidiOut) -> bool) {
        if self.is_idle() {
            return;
        }
        let mut start = block.start;
        while self.held.len() < self.held.capacity() {
            match self.consumer.pop() {
                Ok(cue) => self.held.push(Held { cue, seen: false, awaiting_frame: false }),
                Err(_) => break,
            }
        }
        self.ready.clear();
        self.placed.clear();
        let len = block.len;
        // Note offs due in this block.
        let mut i = 0;
        while i < self.note_offs.len() {
            let off = self.note_offs[i];
            if off.due < u64::from(len) {
                self.push_ready(
                    (off.due as u32, 0, 0, 0),
                    u16::MAX,
                    MidiOut::NoteOff { channel: off.channel, key: off.key },
                );
                self.note_offs.swap_remove(i);
            } else {
                self.note_offs[i].due -= u64::from(len);
                i += 1;
            }
        }
        // Cues due in this block.
        let mut i = 0;
        while i < self.held.len() {
            let held = self.held[i];
            let placement = match held.cue.at {
                _ if held.awaiting_frame => Some((0, false)),
                None => Some((0, false)),
                Some(at) => {
                    let start = *start.get_or_insert_with(Instant::now);
                    place(at, start, block.sample_rate, len, held.seen)
                }
            };
            let Some((mut offset, late)) = placement else {
                self.held[i].seen = true;
                i += 1;
                continue;
            };
            if held.cue.quantise && block.playing {
                match self.frame_starts.iter().find(|&&f| f >= offset) {
                    Some(&f) => offset = f,
                    None => {
                        // Wait for the next block's first frame start.
                        self.held[i].seen = true;
                        self.held[i].awaiting_frame = true;
                        i += 1;
                        continue;
                    }
                }
            }
            self.held.swap_remove(i);
            let msg = self.placed.len() as u16;
            self.placed.push(Placed { late, failed: false });
            for (idx, action) in held.cue.actions().iter().enumerate() {
                let event = match *action {
                    MidiAction::Note { channel, key, velocity, length_ms } => {
                        let length = u64::from(length_ms) * u64::from(block.sample_rate) / 1000;
                        if length_ms > 0 {
                            self.schedule_off(u64::from(offset) + length.max(1), channel.index(), key.get(), len);
                        }
                        MidiOut::NoteOn { channel: channel.index(), key: key.get(), velocity: velocity.get().max(1) }
                    }
                    MidiAction::NoteOff { channel, key } => {
                        MidiOut::NoteOff { channel: channel.index(), key: key.get() }
                    }
                    MidiAction::Cc { channel, number, value } => {
                        MidiOut::Cc { channel: channel.index(), number: number.get(), value: value.get() }
                    }
                    MidiAction::Program { channel, program } => {
                        MidiOut::Program { channel: channel.index(), program: program.get() }
                    }
                };
                self.push_ready((offset, 1, held.cue.seq, idx as u8), msg, event);
            }
        }
        // Events in sample order; at one sample, note offs first, then cues in arrival order.
        self.ready.sort_unstable_by_key(|r| (r.offset, r.class, r.seq, r.idx));
        for r in &self.ready {
            if send(r.offset, r.event) {
                continue;
            }
            if r.msg == u16::MAX {
                // A note off the host refused: try again at the start of the next block.
                if let MidiOut::NoteOff { channel, key } = r.event
                    && self.note_offs.len() < self.note_offs.capacity()
                {
                    self.note_offs.push(PendingOff { due: 0, channel, key });
                }
                self.stats.note_offs_delayed.fetch_add(1, Ordering::Relaxed);
            } else if let Some(p) = self.placed.get_mut(usize::from(r.msg)) {
                p.failed = true;
            }
        }
        for p in &self.placed {
            if p.failed {
                self.stats.count_drop(DropReason::HostFull);
            } else {
                if p.late {
                    self.stats.late.fetch_add(1, Ordering::Relaxed);
                }
                self.stats.applied.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds an event to this block's list; `key` is (offset, class, seq, idx).
    fn push_ready(&mut self, key: (u32, u8, u64, u8), msg: u16, event: MidiOut) {
        let (offset, class, seq, idx) = key;
        if self.ready.len() < self.ready.capacity() {
            self.ready.push(Ready { offset, class, seq, idx, msg, event });
        }
    }

    /// Schedules a note off `due` samples from this block's start; if it falls in this block it
    /// goes straight to `ready`.
    fn schedule_off(&mut self, due: u64, channel: u8, key: u8, len: u32) {
        if due < u64::from(len) {
            self.push_ready((due as u32, 0, 0, 0), u16::MAX, MidiOut::NoteOff { channel, key });
        } else if self.note_offs.len() < self.note_offs.capacity() {
            self.note_offs.push(PendingOff { due: due - u64::from(len), channel, key });
        } else {
            self.stats.note_offs_delayed.fetch_add(1, Ordering::Relaxed);
            self.push_ready((len.saturating_sub(1), 0, 0, 0), u16::MAX, MidiOut::NoteOff { channel, key });
        }
    }

    /// `[main-thread]` At deactivation: counts the cues that never got their block.
    pub fn abandon(&mut self) {
        let mut n = self.held.len() as u64;
        while self.consumer.pop().is_ok() {
            n += 1;
        }
        self.held.clear();
        for _ in 0..n {
            self.stats.count_drop(DropReason::Deactivated);
        }
    }
}

/// Where a cue timed `at` falls in a block that started processing at `start`: `Some((offset,
/// late))` if in this block or already past, `None` if in a later block. `at` is the moment the
/// sample leaves the host (see [`CueEvent::at`]); a sample at offset `o` leaves it at
/// `start + (o + len) / sample_rate`. A cue whose sample has passed goes at 0; it is late
/// unless it was already held in an earlier block (then the miss is block-timing jitter).
fn place(at: Instant, start: Instant, sample_rate: u32, len: u32, seen: bool) -> Option<(u32, bool)> {
    let nanos: i128 = match at.checked_duration_since(start) {
        Some(d) => d.as_nanos() as i128,
        None => -(start.duration_since(at).as_nanos() as i128),
    };
    // Round to the nearest sample.
    let samples = (nanos * i128::from(sample_rate) + 500_000_000).div_euclid(1_000_000_000) - i128::from(len);
    if samples >= i128::from(len) {
        None
    } else if samples < 0 {
        Some((0, !seen))
    } else {
        Some((samples as u32, false))
    }
}

#[cfg(test)]
mod tests {
    use super::super::map::{Channel, MidiAction, U7};
    use super::*;
    use std::time::Duration;

    const SR: u32 = 48_000;

    fn note(key: u8, length_ms: u32) -> MidiAction {
        MidiAction::Note {
            channel: Channel::try_from(1).unwrap(),
            key: U7::new(key).unwrap(),
            velocity: U7::MAX,
            length_ms,
        }
    }

    fn cue(action: MidiAction, at: Option<Instant>, seq: u64) -> CueEvent {
        CueEvent { actions: [action; 8], len: 1, at, seq, quantise: false }
    }

    struct Rig {
        player: CuePlayer,
        producer: rtrb::Producer<CueEvent>,
        stats: Arc<CueStats>,
    }

    impl Rig {
        fn new() -> Self {
            let (producer, consumer) = rtrb::RingBuffer::new(64);
            let stats = Arc::new(CueStats::default());
            Self { player: CuePlayer::new(consumer, stats.clone()), producer, stats }
        }

        /// Runs one block; returns what was sent.
        fn block(&mut self, start: Instant, len: u32, frames: &[u32]) -> Vec<(u32, MidiOut)> {
            self.block_playing(start, len, frames, !frames.is_empty())
        }

        /// Runs one block, playing or not; returns what was sent.
        fn block_playing(&mut self, start: Instant, len: u32, frames: &[u32], playing: bool) -> Vec<(u32, MidiOut)> {
            self.player.begin_block();
            for &f in frames {
                self.player.frame_start(f);
            }
            let mut sent = Vec::new();
            let timing = BlockTiming { start: Some(start), sample_rate: SR, len, playing };
            self.player.run_block(timing, |o, e| {
                sent.push((o, e));
                true
            });
            sent
        }
    }

    fn on(key: u8) -> MidiOut {
        MidiOut::NoteOn { channel: 0, key, velocity: 127 }
    }

    fn off(key: u8) -> MidiOut {
        MidiOut::NoteOff { channel: 0, key }
    }

    #[test]
    fn immediate_cues_go_at_offset_zero_and_note_offs_follow_exactly() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        rig.producer.push(cue(note(60, 10), None, 1)).unwrap();
        // 10 ms at 48 kHz = 480 samples: blocks of 256 → off at 480 − 256 = 224 in block 2.
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(60))]);
        assert_eq!(rig.block(t0, 256, &[]), vec![(224, off(60))]);
        assert_eq!(rig.block(t0, 256, &[]), vec![]);
        assert_eq!(rig.stats.applied.load(Ordering::Relaxed), 1);
        assert_eq!(rig.stats.late.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn timetagged_cues_land_where_their_time_falls_one_block_ahead() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        // Due 1000 samples after the block start: leaves the host at start + (o + 256)/sr, so
        // o = 1000 − 256 = 744 → block 2 (512..768) at 232.
        let at = t0 + Duration::from_nanos(1000 * 1_000_000_000 / u64::from(SR));
        rig.producer.push(cue(note(1, 0), Some(at), 1)).unwrap();
        let block = |i: u64| t0 + Duration::from_nanos(i * 256 * 1_000_000_000 / u64::from(SR));
        assert_eq!(rig.block(block(0), 256, &[]), vec![]);
        assert_eq!(rig.block(block(1), 256, &[]), vec![]);
        assert_eq!(rig.block(block(2), 256, &[]), vec![(232, on(1))]);
        assert_eq!(rig.stats.late.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_past_timetag_is_late_at_zero_but_block_jitter_is_not() {
        let mut rig = Rig::new();
        let t0 = Instant::now() + Duration::from_secs(1);
        rig.producer.push(cue(note(2, 0), Some(t0 - Duration::from_millis(500)), 1)).unwrap();
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(2))]);
        assert_eq!(rig.stats.late.load(Ordering::Relaxed), 1);
        // Seen as "next block" (offset 300 ≥ 256), then the next block starts late by 2 ms.
        let at = t0 + Duration::from_nanos((300 + 256) * 1_000_000_000 / u64::from(SR));
        rig.producer.push(cue(note(3, 0), Some(at), 2)).unwrap();
        assert_eq!(rig.block(t0, 256, &[]), vec![]);
        assert_eq!(rig.block(t0 + Duration::from_millis(10), 256, &[]), vec![(0, on(3))]);
        assert_eq!(rig.stats.late.load(Ordering::Relaxed), 1, "jitter is not lateness");
        assert_eq!(rig.stats.applied.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn quantise_moves_to_the_next_frame_start_even_in_a_later_block() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        let q = |c: CueEvent| CueEvent { quantise: true, ..c };
        rig.producer.push(q(cue(note(4, 0), None, 1))).unwrap();
        // Immediate → 0; frame starts at 100 in this block.
        assert_eq!(rig.block(t0, 256, &[100]), vec![(100, on(4))]);
        // Timetagged for 150 in a block whose only frame start is 100: waits for the next block.
        let at = t0 + Duration::from_nanos((150 + 256) * 1_000_000_000 / u64::from(SR));
        rig.producer.push(q(cue(note(5, 0), Some(at), 2))).unwrap();
        assert_eq!(rig.block(t0, 256, &[100]), vec![]);
        assert_eq!(rig.block_playing(t0, 256, &[], true), vec![], "no frame start yet, still playing");
        assert_eq!(rig.block(t0, 256, &[40, 200]), vec![(40, on(5))]);
        // Stopped: no quantising.
        rig.producer.push(q(cue(note(6, 0), None, 3))).unwrap();
        assert_eq!(rig.block(t0, 256, &[]), vec![(0, on(6))]);
    }

    #[test]
    fn same_sample_events_keep_order_and_offs_come_first() {
        let mut rig = Rig::new();
        let t0 = Instant::now();
        rig.producer.push(cue(note(7, 0), None, 1)).unwrap();
        let mut two = cue(note(8, 0), None, 2);
        two.actions[1] = note(9, 0);
        two.len = 2;
        rig.producer.push(two).unwrap();
        rig.producer
            .push(cue(MidiAction::NoteOff { channel: Channel::ONE, key: U7::new(7).unwrap() }, None, 3))
            .unwrap();
        assert_eq!(rig.block(t0, 64, &[]), vec![(0, on(7)), (0, on(8)), (0, on(9)), (0, off(7))]);
        // A 1 ms note re-triggered right at its end: the off first.
        rig.producer.push(cue(note(10, 1), None, 4)).unwrap();
        assert_eq!(rig.block(t0, 48, &[]), vec![(0, on(10))]);
        rig.producer.push(cue(note(10, 1), None, 5)).unwrap();
        assert_eq!(rig.block(t0, 48, &[]), vec![(0, off(10)), (0, on(10))]);
    }

    #[test]
    fn a_full_host_buffer_drops_and_counts() {
        let mut rig = Rig::new();
        rig.producer.push(cue(note(11, 0), None, 1)).unwrap();
        rig.player.begin_block();
        let timing = BlockTiming { start: Some(Instant::now()), sample_rate: SR, len: 64, playing: false };
        rig.player.run_block(timing, |_, _| false);
        assert_eq!(rig.stats.dropped(DropReason::HostFull), 1);
        assert_eq!(rig.stats.applied.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn deactivation_counts_what_never_played() {
        let mut rig = Rig::new();
        let far = Instant::now() + Duration::from_secs(60);
        rig.producer.push(cue(note(12, 0), Some(far), 1)).unwrap();
        rig.block(Instant::now(), 64, &[]);
        rig.producer.push(cue(note(13, 0), None, 2)).unwrap();
        rig.player.abandon();
        assert_eq!(rig.stats.dropped(DropReason::Deactivated), 2);
    }
}
