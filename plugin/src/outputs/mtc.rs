//! MTC through the plugin's MIDI output: each block's spans turned into quarter frames at their
//! sample offsets, and full frames where the receiver must be told where we are.
//!
//! Sample-exact from the frame clock: quarter `q` of the MTC frame starting at frame `n` is due at
//! `start(n) + floor(q · len / 4)` on the timeline ([`osc_timecode_core::mtc::QuarterClock`]), so
//! a playing span sends exactly the quarters due at its timeline samples, at the block offsets
//! where those samples play, whatever the block size; the next span or block carries on from
//! there without any state here. A full frame (`F0 7F 7F 01 01 hh mm ss ff F7`) goes out at a
//! span that does not continue the last one: a start of play, a locate, a loop wrap, a rate or
//! offset change, and a stop or new park position (the parked frame), which is what MTC's full
//! message is for (MIDI 1.0 Detailed Specification, "MIDI Time Code", § "Full Message"; issue
//! 16). After a block that sent nothing (MTC or the Output parameter off, no position) the next
//! span gets a full frame too.
//!
//! The messages leave through nice-plug's SysEx type ([`MtcMessage`], the plugin's
//! `SysExMessage`), which the vendored wrapper sends as a quarter frame the way each API can carry
//! one: `CLAP_EVENT_MIDI`, and VST3's `kCtrlQuarterFrame` (a `DataEvent` in Ardour); full frames as
//! SysEx (`vendor/README.md`).
//!
//! `[audio-thread]` throughout: integer arithmetic, at most [`MAX_MESSAGES_PER_BLOCK`] messages a
//! block, no allocation, lock or panic. A message the host refuses is counted and dropped, never
//! retried.

use nice_plug::midi::sysex::SysExMessage;
use osc_timecode_core::FrameRate;
use osc_timecode_core::clock::FrameClock;
use osc_timecode_core::mtc::{MtcFormat, QuarterClock};
use osc_timecode_core::span::{Span, SpanState};

use super::OutputStats;

/// Messages sent in one block at most; the rest of a longer block's are counted as refused
/// ([`OutputStats::mtc_refused`]). MTC's fastest stream is 120 quarter frames a second (30 MTC
/// frames, four quarters each), so this covers blocks of over 4 s (196 000 samples at 48 kHz,
/// far beyond any host's block) plus a full frame at each span ([`osc_timecode_core::span`]).
pub const MAX_MESSAGES_PER_BLOCK: u32 = 512;

/// The length of an MTC full frame: `F0 7F 7F 01 01 hh mm ss ff F7`.
pub const FULL_FRAME_LEN: usize = 10;

/// One MTC message, the plugin's `SysExMessage`: nice-plug carries it as raw MIDI bytes. `Copy`,
/// 11 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MtcMessage {
    /// A quarter frame `F1 0nnn dddd`.
    QuarterFrame([u8; 2]),
    /// A full frame `F0 7F 7F 01 01 hh mm ss ff F7`.
    FullFrame([u8; FULL_FRAME_LEN]),
}

impl MtcMessage {
    /// The raw MIDI bytes, status first.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::QuarterFrame(b) => b,
            Self::FullFrame(b) => b,
        }
    }
}

impl SysExMessage for MtcMessage {
    type Buffer = [u8; FULL_FRAME_LEN];

    /// Reads exactly an MTC quarter frame or full frame (7-bit data); anything else is `None`
    /// (the plugin takes no MIDI input, so nice-plug never calls this today).
    fn from_buffer(buffer: &[u8]) -> Option<Self> {
        match buffer {
            [0xf1, d @ 0..=0x7f] => Some(Self::QuarterFrame([0xf1, *d])),
            [0xf0, 0x7f, _, 0x01, 0x01, data @ .., 0xf7] if data.iter().all(|b| *b < 0x80) => {
                <[u8; FULL_FRAME_LEN]>::try_from(buffer).ok().map(Self::FullFrame)
            }
            _ => None,
        }
    }

    fn as_buffer(&self) -> (Self::Buffer, usize) {
        let mut buffer = [0; FULL_FRAME_LEN];
        let bytes = self.bytes();
        buffer[..bytes.len()].copy_from_slice(bytes);
        (buffer, bytes.len())
    }
}

/// What MTC is asked to do this block. `Copy`, from the settings ([`super::AudioSwitches`]) and
/// the Output parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtcPlan {
    /// `[plugin.mtc] enabled`.
    pub enabled: bool,
    /// `[plugin] half_rate`: 50/59.94/60 fps as frame pairs (else refused).
    pub half_rate: bool,
    /// The Output parameter (off: nothing is sent, as for the OSC stream).
    pub output: bool,
}

/// What a quarter clock was built for: rebuilt when any of it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ClockKey {
    /// The frame clock's rate.
    rate: FrameRate,
    /// Half-rate mode.
    half_rate: bool,
    /// Hz.
    sample_rate: u32,
    /// The clock's start offset, frames.
    offset_frames: i64,
}

/// The MTC generator of one plugin instance. `[audio-thread]`; plain data, created in
/// `activate()` (or by `Default` anywhere).
#[derive(Debug, Default)]
pub struct MtcOut {
    /// The rate's MTC form and quarter clock for `key`; `None` when MTC cannot carry the rate
    /// (refused, counted).
    quarters: Option<(MtcFormat, QuarterClock)>,
    /// What `quarters` was built for; `None` before the first block with MTC on.
    key: Option<ClockKey>,
    /// The last block sent nothing (off, no position, refused rate): the next span is told with
    /// a full frame even if it continues.
    lapsed: bool,
}

impl MtcOut {
    /// Sends the MTC of the block the clock just processed through `send(offset, message)`
    /// (`true` if the host took it), in block order, per `plan`. Counts messages sent, refused by
    /// the host or over [`MAX_MESSAGES_PER_BLOCK`], and frames of a rate MTC cannot carry.
    pub fn render(
        &mut self,
        plan: MtcPlan,
        clock: &FrameClock,
        stats: &OutputStats,
        mut send: impl FnMut(u32, MtcMessage) -> bool,
    ) {
        if !plan.enabled || !plan.output || clock.spans().is_empty() {
            self.lapsed = true;
            return;
        }
        let key = ClockKey {
            rate: clock.rate(),
            half_rate: plan.half_rate,
            sample_rate: clock.sample_rate(),
            offset_frames: clock.offset_frames(),
        };
        if self.key != Some(key) {
            self.key = Some(key);
            self.quarters = MtcFormat::new(key.rate, key.half_rate)
                .ok()
                .map(|format| (format, QuarterClock::new(format, key.sample_rate, key.offset_frames)));
        }
        let Some((format, quarters)) = self.quarters else {
            let refused: u64 = clock.spans().iter().map(|span| span.frames_starting_count(clock)).sum();
            OutputStats::add(&stats.mtc_rate_refused, refused);
            self.lapsed = true;
            return;
        };
        let mut out = Sender { send: &mut send, room: MAX_MESSAGES_PER_BLOCK, sent: 0, refused: 0 };
        for span in clock.spans() {
            let fresh = !span.continues || std::mem::take(&mut self.lapsed);
            match span.state {
                SpanState::Playing => {
                    if fresh {
                        out.push(span.offset, full_frame(format, clock, span));
                    }
                    out.quarters(quarters, span);
                }
                SpanState::Parked if fresh => out.push(span.offset, full_frame(format, clock, span)),
                // A loop too short to report pass by pass: no position to tell; the span after
                // it does not continue, so it gets a full frame.
                SpanState::Parked | SpanState::Skipped => {}
            }
        }
        OutputStats::add(&stats.mtc_sent, out.sent);
        OutputStats::add(&stats.mtc_refused, out.refused);
    }
}

/// One block's MTC messages, in block order, held so that `process()` can hand them to the host
/// interleaved with the cue player's events in time order (CLAP wants a block's output events
/// sorted by time). Fixed capacity, [`MAX_MESSAGES_PER_BLOCK`]; `[audio-thread]`, no heap.
#[derive(Debug)]
pub struct MtcBatch {
    /// Messages and their offsets; the first `len` are this block's.
    items: [(u32, MtcMessage); MAX_MESSAGES_PER_BLOCK as usize],
    /// Messages held.
    len: usize,
    /// Messages already handed to the host (or refused by it).
    next: usize,
}

impl Default for MtcBatch {
    fn default() -> Self {
        Self { items: [(0, MtcMessage::QuarterFrame([0xf1, 0])); MAX_MESSAGES_PER_BLOCK as usize], len: 0, next: 0 }
    }
}

impl MtcBatch {
    /// Renders the block's MTC ([`MtcOut::render`]) into the batch, replacing the last block's.
    /// Messages held count as sent until the host refuses one ([`Self::send_until`]).
    pub fn render(&mut self, mtc: &mut MtcOut, plan: MtcPlan, clock: &FrameClock, stats: &OutputStats) {
        (self.len, self.next) = (0, 0);
        mtc.render(plan, clock, stats, |offset, message| match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = (offset, message);
                self.len += 1;
                true
            }
            None => false,
        });
    }

    /// Hands the held messages at offsets up to `until` (all of them with `u32::MAX`) to
    /// `send(offset, message)`, in order; one the host refuses (`false`) is moved from
    /// `mtc_sent` to `mtc_refused` and dropped.
    pub fn send_until(&mut self, until: u32, stats: &OutputStats, mut send: impl FnMut(u32, MtcMessage) -> bool) {
        while let Some(&(offset, message)) = self.items[..self.len].get(self.next) {
            if offset > until {
                break;
            }
            self.next += 1;
            if !send(offset, message) {
                stats.mtc_sent.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                OutputStats::add(&stats.mtc_refused, 1);
            }
        }
    }
}

/// Sends messages within the block's bound, counting.
struct Sender<'a, F: FnMut(u32, MtcMessage) -> bool> {
    /// The host.
    send: &'a mut F,
    /// Messages the block may still send.
    room: u32,
    /// Messages the host took.
    sent: u64,
    /// Messages the host refused or that were over the bound.
    refused: u64,
}

impl<F: FnMut(u32, MtcMessage) -> bool> Sender<'_, F> {
    /// Sends `message` at `offset` if there is room.
    fn push(&mut self, offset: u32, message: MtcMessage) {
        if self.room == 0 {
            self.refused += 1;
            return;
        }
        self.room -= 1;
        if (self.send)(offset, message) {
            self.sent += 1;
        } else {
            self.refused += 1;
        }
    }

    /// Sends the quarter frames due at the playing `span`'s timeline samples, at their offsets.
    fn quarters(&mut self, quarters: QuarterClock, span: &Span) {
        let end = span.timeline.saturating_add(i64::from(span.len));
        let mut q = quarters.first_quarter_from(span.timeline);
        loop {
            let at = quarters.quarter_start_sample(q);
            if at >= end {
                break;
            }
            if self.room == 0 {
                // Over the bound: count the rest without walking them one by one.
                let rest = quarters.first_quarter_from(end).saturating_sub(q);
                self.refused += u64::try_from(rest).unwrap_or(0);
                break;
            }
            // `at` lies in [timeline, end), so the offset fits the span.
            let into = u32::try_from(at.saturating_sub(span.timeline)).unwrap_or(0);
            self.push(span.offset.saturating_add(into), MtcMessage::QuarterFrame(quarters.quarter_message(q)));
            if q == i64::MAX {
                break;
            }
            q += 1;
        }
    }
}

/// The full frame of the frame under the span's first sample (start offset included).
fn full_frame(format: MtcFormat, clock: &FrameClock, span: &Span) -> MtcMessage {
    MtcMessage::FullFrame(format.full_frame(span.frame_under(clock).0))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use osc_timecode_core::clock::BlockInput;
    use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};

    const ON: MtcPlan = MtcPlan { enabled: true, half_rate: false, output: true };

    /// One block: playing, position, loop range, length.
    type Block = (bool, Option<i64>, Option<(i64, i64)>, u32);

    /// Runs `blocks` through a clock and the generator; returns each message with its sample in
    /// the run (the block's first sample counted from the run's start, plus the offset).
    fn run(
        rate: FrameRate,
        sr: u32,
        offset: i64,
        plan: MtcPlan,
        blocks: &[Block],
        mut accept: impl FnMut() -> bool,
    ) -> (Vec<(u64, MtcMessage)>, OutputStats) {
        let mut clock = FrameClock::new(sr, rate, offset);
        let mut mtc = MtcOut::default();
        let stats = OutputStats::default();
        let mut out = Vec::new();
        let mut run_sample = 0u64;
        for &(playing, position, loop_range, len) in blocks {
            clock.process_block(BlockInput { playing, position, loop_range, len }, |_| {});
            let mut last = 0;
            mtc.render(plan, &clock, &stats, |at, message| {
                assert!(at < len && at >= last, "offset {at} in a block of {len}, after {last}");
                last = at;
                let ok = accept();
                if ok {
                    out.push((run_sample + u64::from(at), message));
                }
                ok
            });
            run_sample += u64::from(len);
        }
        (out, stats)
    }

    fn playing_from(start: i64, sizes: &[u32], count: usize) -> Vec<Block> {
        let mut pos = start;
        (0..count)
            .map(|i| {
                let len = sizes[i % sizes.len()];
                let block = (true, Some(pos), None, len);
                pos += i64::from(len);
                block
            })
            .collect()
    }

    fn full(rate: FrameRate, half_rate: bool, frame: i64) -> MtcMessage {
        MtcMessage::FullFrame(MtcFormat::new(rate, half_rate).unwrap().full_frame(frame))
    }

    /// What MTC says for play from timeline sample `start` for `total` samples, computed here from
    /// the rule (quarter q of MTC frame m at start(m) + floor(q · len / 4), the eight pieces of the
    /// sequence starting at each even MTC frame) with the encoder's `MtcTime` only.
    fn expected_play(rate: FrameRate, sr: u32, offset: i64, start: i64, total: i64) -> Vec<(u64, MtcMessage)> {
        let format = MtcFormat::new(rate, false).unwrap();
        let first_frame = frame_at_sample(start, sr, rate);
        let mut out = vec![(0, full(rate, false, first_frame + offset))];
        for n in first_frame.. {
            let (s, e) = (frame_start_sample(n, sr, rate), frame_start_sample(n + 1, sr, rate));
            if s >= start + total {
                break;
            }
            let m = n + offset;
            let carried = m - m.rem_euclid(2);
            for q in 0..4 {
                let at = s + q * (e - s) / 4;
                if at >= start && at < start + total {
                    let piece = (4 * m.rem_euclid(2) + q) as u8;
                    let bytes = format.time(carried).quarter_frame(piece);
                    out.push(((at - start) as u64, MtcMessage::QuarterFrame(bytes)));
                }
            }
        }
        out
    }

    /// Quarter frames sit on the frame clock whatever the block sizes: at 29.97 DF and 48 kHz
    /// (1601.6-sample frames), from mid-frame, over 3 s in odd blocks, the same messages at the
    /// same samples as the rule says, and as one big block gives.
    #[test]
    fn quarter_frames_sit_on_the_clock_whatever_the_blocks() {
        let (rate, sr, offset) = (FrameRate::FPS_29_97_DF, 48_000, 107_892); // 01:00:00;00
        let start = 1_000_003;
        let blocks = playing_from(start, &[64, 1000, 37, 512, 1], 450);
        let total: i64 = blocks.iter().map(|b| i64::from(b.3)).sum();
        let (got, stats) = run(rate, sr, offset, ON, &blocks, || true);
        let want = expected_play(rate, sr, offset, start, total);
        assert!(want.len() > 350, "{} messages", want.len());
        assert_eq!(got, want);
        let (one, _) = run(rate, sr, offset, ON, &[(true, Some(start), None, total as u32)], || true);
        assert_eq!(one, want);
        assert_eq!(stats.mtc_sent.load(Ordering::Relaxed), want.len() as u64);
        assert_eq!(stats.mtc_refused.load(Ordering::Relaxed), 0);
        // Every rate MTC carries, 44.1 kHz, from a frame start.
        for rate in
            [FrameRate::FPS_23_976, FrameRate::FPS_24, FrameRate::FPS_25, FrameRate::FPS_29_97_NDF, FrameRate::FPS_30]
        {
            let blocks = playing_from(0, &[441, 100], 200);
            let total: i64 = blocks.iter().map(|b| i64::from(b.3)).sum();
            let (got, _) = run(rate, 44_100, 0, ON, &blocks, || true);
            assert_eq!(got, expected_play(rate, 44_100, 0, 0, total), "{rate}");
        }
    }

    fn full_frames(got: &[(u64, MtcMessage)]) -> Vec<(u64, MtcMessage)> {
        got.iter().copied().filter(|(_, m)| matches!(m, MtcMessage::FullFrame(_))).collect()
    }

    /// A full frame where the receiver must be told: parked (once per park position), start of
    /// play, locate, loop wrap (at the wrap's offset, the loop start's frame) and stop.
    #[test]
    fn full_frames_on_park_start_locate_loop_and_stop() {
        let (rate, sr) = (FrameRate::FPS_25, 48_000); // 1920-sample frames
        let f = |n| full(rate, false, n);
        let blocks: Vec<Block> = vec![
            (false, Some(19_200), None, 512),                  // 0: parked at frame 10
            (false, Some(19_200), None, 512),                  // 1: still parked: nothing
            (false, Some(38_400), None, 512),                  // 2: new park position, frame 20
            (true, Some(38_400), None, 512),                   // 3: start of play from there
            (true, Some(38_912), None, 512),                   // 4: continues
            (true, Some(96_000), None, 512),                   // 5: locate to frame 50
            (true, Some(96_512), Some((57_600, 96_768)), 512), // 6: wraps at offset 256 to frame 30
            (true, Some(57_856), Some((57_600, 96_768)), 512), // 7: continues in the loop
            (false, Some(58_368), None, 512),                  // 8: stop: the parked frame, 30
            (false, Some(58_368), None, 512),                  // 9: nothing
        ];
        let (got, _) = run(rate, sr, 0, ON, &blocks, || true);
        assert_eq!(
            full_frames(&got),
            [(0, f(10)), (1024, f(20)), (1536, f(20)), (2560, f(50)), (3072 + 256, f(30)), (4096, f(30))]
        );
        // Quarter frames only while playing; the loop wrap's continue from the loop start's.
        let quarters: Vec<u64> =
            got.iter().filter(|(_, m)| matches!(m, MtcMessage::QuarterFrame(_))).map(|(s, _)| *s).collect();
        assert!(quarters.iter().all(|s| (1536..4096).contains(s)), "{quarters:?}");
        // Block 5 plays frame 50's quarters 0 and 1 (96 000, 96 480); block 6 none before the wrap
        // (the next is at 96 960, past the loop end) and frame 30's quarter 0 at the wrap.
        let in_blocks_5_6: Vec<u64> = quarters.iter().copied().filter(|s| (2560..3584).contains(s)).collect();
        assert_eq!(in_blocks_5_6, [2560, 2560 + 480, 3072 + 256]);
    }

    /// 50 fps: nothing without half_rate (frames counted as refused); with it, one MTC frame per
    /// frame pair at 25 fps, quarters every half frame.
    #[test]
    fn rates_mtc_cannot_carry_send_nothing_unless_half_rate() {
        let (rate, sr) = (FrameRate::FPS_50, 48_000); // 960-sample frames
        let blocks = playing_from(0, &[480], 40); // 20 frames
        let (got, stats) = run(rate, sr, 0, ON, &blocks, || true);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(stats.mtc_rate_refused.load(Ordering::Relaxed), 20);
        assert_eq!(stats.mtc_sent.load(Ordering::Relaxed), 0);
        let half = MtcPlan { half_rate: true, ..ON };
        let (got, stats) = run(rate, sr, 0, half, &blocks, || true);
        assert_eq!(got[0], (0, full(rate, true, 0)));
        let quarters: Vec<(u64, MtcMessage)> = got[1..].to_vec();
        assert_eq!(quarters.len(), 40, "4 quarters per 2 frames over 20 frames");
        let format = MtcFormat::new(rate, true).unwrap();
        for (i, (at, m)) in quarters.iter().enumerate() {
            assert_eq!(*at, 480 * i as u64);
            let piece = (i % 8) as u8;
            let carried = format.time(4 * (i as i64 / 8)); // frames 0, 4, 8, … carry the sequences
            assert_eq!(*m, MtcMessage::QuarterFrame(carried.quarter_frame(piece)), "quarter {i}");
        }
        assert_eq!(stats.mtc_rate_refused.load(Ordering::Relaxed), 0);
    }

    /// A message the host refuses is counted, never retried; a block with more than the bound
    /// sends the bound and counts the rest, without walking them.
    #[test]
    fn refusals_and_the_bound_are_counted() {
        let (rate, sr) = (FrameRate::FPS_30, 48_000); // 1600-sample frames, quarters every 400
        let mut n = 0;
        let (got, stats) = run(rate, sr, 0, ON, &playing_from(0, &[4000], 2), || {
            n += 1;
            n % 2 == 0
        });
        // 1 full frame + 20 quarters offered, every other one taken.
        assert_eq!(got.len(), 10);
        assert_eq!(stats.mtc_sent.load(Ordering::Relaxed), 10);
        assert_eq!(stats.mtc_refused.load(Ordering::Relaxed), 11);
        let long = 400 * 1000; // 1000 quarters in one block
        let (got, stats) = run(rate, sr, 0, ON, &[(true, Some(0), None, long)], || true);
        assert_eq!(got.len(), MAX_MESSAGES_PER_BLOCK as usize);
        assert_eq!(stats.mtc_sent.load(Ordering::Relaxed), u64::from(MAX_MESSAGES_PER_BLOCK));
        assert_eq!(stats.mtc_refused.load(Ordering::Relaxed), 1001 - u64::from(MAX_MESSAGES_PER_BLOCK));
    }

    /// Off (the setting, the Output parameter, or no position from the host) sends nothing; the
    /// first span after it gets a full frame although the transport continued.
    #[test]
    fn after_a_pause_in_sending_a_full_frame_tells_where_we_are() {
        let (rate, sr) = (FrameRate::FPS_25, 48_000);
        let mut clock = FrameClock::new(sr, rate, 0);
        let mut mtc = MtcOut::default();
        let stats = OutputStats::default();
        let mut pos = 0;
        for plan in [ON, MtcPlan { output: false, ..ON }, MtcPlan { enabled: false, ..ON }, ON] {
            clock.process_block(BlockInput { playing: true, position: Some(pos), loop_range: None, len: 1000 }, |_| {});
            let mut got = Vec::new();
            mtc.render(plan, &clock, &stats, |at, m| {
                got.push((at, m));
                true
            });
            let fulls: Vec<u32> =
                got.iter().filter(|(_, m)| matches!(m, MtcMessage::FullFrame(_))).map(|(at, _)| *at).collect();
            match (plan.enabled && plan.output, pos) {
                (false, _) => assert!(got.is_empty()),
                (true, 0) => assert_eq!(fulls, [0]),
                (true, _) => assert_eq!(got[0], (0, full(rate, false, frame_at_sample(pos, sr, rate)))),
            }
            pos += 1000;
        }
        // No position: nothing, and no panic.
        clock.process_block(BlockInput { playing: true, position: None, loop_range: None, len: 64 }, |_| {});
        mtc.render(ON, &clock, &stats, |_, _| panic!("nothing to send without a position"));
    }

    /// The SysEx type carries both messages as their raw bytes and reads back only those.
    #[test]
    fn a_batch_hands_messages_over_in_order_up_to_each_offset_and_counts_refusals() {
        let mut clock = FrameClock::new(48_000, FrameRate::FPS_25, 0);
        clock.process_block(BlockInput { playing: true, position: Some(0), loop_range: None, len: 4096 }, |_| {});
        let (mut mtc, mut batch, stats) = (MtcOut::default(), MtcBatch::default(), OutputStats::default());
        batch.render(&mut mtc, ON, &clock, &stats);
        // A full frame at 0, then quarter frames every 480 samples: 0, 480, ..., 3840.
        let mut got = Vec::new();
        batch.send_until(1_000, &stats, |at, m| {
            got.push((at, m));
            true
        });
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 0, 480, 960]);
        assert!(matches!(got[0].1, MtcMessage::FullFrame(_)));
        batch.send_until(u32::MAX, &stats, |at, _| at != 1_440);
        assert_eq!(stats.mtc_sent.load(Ordering::Relaxed), 1 + 9 - 1, "one refused by the host");
        assert_eq!(stats.mtc_refused.load(Ordering::Relaxed), 1);
        batch.send_until(u32::MAX, &stats, |_, _| panic!("each message is handed over once"));
    }

    #[test]
    fn messages_travel_as_raw_bytes() {
        let qf = MtcMessage::QuarterFrame([0xf1, 0x23]);
        let ff = full(FrameRate::FPS_25, false, 1234);
        for m in [qf, ff] {
            let (buffer, len) = m.as_buffer();
            assert_eq!(&buffer[..len], m.bytes());
            assert_eq!(MtcMessage::from_buffer(&buffer[..len]), Some(m));
        }
        assert_eq!(qf.as_buffer().1, 2);
        assert_eq!(ff.as_buffer().1, 10);
        for bad in [
            &[0xf1][..],
            &[0xf1, 0x80],
            &[0xf2, 1, 2],
            &[0xf0, 0x7f, 0x7f, 1, 1, 0, 0, 0, 0x80, 0xf7],
            &[0xf0, 0x7f, 0x7f, 1, 1, 0, 0, 0, 0],
        ] {
            assert_eq!(MtcMessage::from_buffer(bad), None, "{bad:02x?}");
        }
    }
}
