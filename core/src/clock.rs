//! The audio-side frame clock: which frames start inside a host block, at which sample.
//!
//! [`FrameClock::process_block`] runs on the audio thread once per block. It is integer
//! arithmetic on the stack and calls a closure per frame: no allocation, lock, syscall or panic
//! (`tests/no_alloc.rs` runs it under a counting allocator).
//!
//! Behaviour, block by block:
//! - **Playing, continuous**: every frame whose first sample lies in `[start, start + len)` is
//!   reported once, with its offset in the block. "Continuous" means the host's position is within
//!   [`WOBBLE_SAMPLES`] of where the previous block ended: CLAP hosts report fixed-point seconds,
//!   so the derived sample position can be one sample off from block to block; that is not a jump,
//!   and the clock keeps counting from its own expected position so the error never accumulates.
//! - **Playing, discontinuous** (start of play at a new place, locate, loop wrap, rate change): the
//!   frame containing the block's first sample is reported at offset 0 with `jump` set (and
//!   `looped` when the host's loop sent it back to the loop start), then the boundaries as above.
//! - **Loop inside a block**: when a loop range is active and the block crosses the loop end, the
//!   samples from the loop end on are treated as the loop start, as the host plays them.
//! - **Stopped**: the parked frame is reported (offset 0, `playing == false`) when it changes and on
//!   the transition from playing; repeating it as keep-alive is the network thread's job.
//! - **No position** from the host: nothing is reported and the next block with a position is a
//!   discontinuity. A position beyond ±[`MAX_POSITION`] samples (an absurd host value, such as
//!   `i64::MAX`, or what a tempo of 0 makes of a beats position) counts as no position; a loop
//!   range with an end beyond it, or empty, counts as no loop ([`BlockInput::usable`]).
//!
//! Work per block is bounded whatever the inputs: at most `len · fps / sample_rate + 2` events
//! per segment, and at most [`MAX_LOOP_WRAPS`] + 1 segments (see [`max_events`]). The sample rate
//! is clamped to [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`] (the plugin refuses to run outside
//! it, [`usable_sample_rate`]), and with positions within ±[`MAX_POSITION`] no sum or product
//! here leaves `i64` (frame ↔ sample conversions use `i128`).
//!
//! Frame numbers include the start offset and are never wrapped; the label wraps (see
//! [`crate::timecode`]).

use crate::rate::FrameRate;
use crate::span::{Span, SpanState, Spans};
use crate::timecode::{frame_at_sample, frame_start_sample};

/// How far (in samples) a host position may differ from the expected one and still count as
/// continuous playback.
pub const WOBBLE_SAMPLES: i64 = 1;

/// The lowest sample rate the clock runs at, Hz. Below it the plugin refuses to activate (issue
/// 14: at 1–59 Hz a block could hold more frames than samples). 8 kHz is the lowest rate audio
/// interfaces offer.
pub const MIN_SAMPLE_RATE: u32 = 8_000;

/// The highest sample rate the clock runs at, Hz: 8 × 192 kHz.
pub const MAX_SAMPLE_RATE: u32 = 1_536_000;

/// Host positions and loop ends beyond ±this many samples are absurd and count as none: 2^53,
/// up to which an `f64` (what hosts convert from seconds or beats) holds every sample exactly.
/// That is 186 years at [`MAX_SAMPLE_RATE`], more than a CLAP host's seconds timeline can say
/// (±2^32 s) at any usable rate, and it keeps every sum here far inside `i64`.
pub const MAX_POSITION: i64 = 1 << 53;

/// Loop wraps reported per block, at most. A loop shorter than a block wraps several times inside
/// it, each pass reported with its frames; when a block would wrap more often, the passes
/// between the first `MAX_LOOP_WRAPS - 1` and the block's last one are skipped (the last is
/// reported at its own offset), so a 1-sample loop cannot make a block report one jump per
/// sample. 32 covers 256-sample loops in 8192-sample blocks.
pub const MAX_LOOP_WRAPS: u32 = 32;

/// The host's sample rate `sample_rate` (Hz) rounded to whole Hz, if the clock runs at it:
/// [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`]. `None` for anything else, NaN and infinities
/// included.
pub fn usable_sample_rate(sample_rate: f64) -> Option<u32> {
    let hz = sample_rate.round();
    (f64::from(MIN_SAMPLE_RATE)..=f64::from(MAX_SAMPLE_RATE)).contains(&hz).then_some(hz as u32)
}

/// The most events [`FrameClock::process_block`] reports for a block of `len` samples at
/// `sample_rate` Hz (clamped as the clock clamps it) and `rate`: per segment (the block split at
/// loop wraps) the frames starting in it plus the one under way at a break, over at most
/// [`MAX_LOOP_WRAPS`] + 1 segments.
pub fn max_events(len: u32, sample_rate: u32, rate: FrameRate) -> u64 {
    let sr = u64::from(sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE));
    let frames = u64::from(len) * u64::from(rate.num()) / (u64::from(rate.den()) * sr);
    frames + 2 * (u64::from(MAX_LOOP_WRAPS) + 1)
}

/// What the host says about one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInput {
    /// The transport is rolling.
    pub playing: bool,
    /// Timeline position of the block's first sample, in samples; `None` if the host gave none.
    pub position: Option<i64>,
    /// Active loop range `[start, end)` in samples, if the host reports one.
    pub loop_range: Option<(i64, i64)>,
    /// Samples in the block.
    pub len: u32,
}

impl BlockInput {
    /// The block as the clock uses it: a position beyond ±[`MAX_POSITION`] is no position, and a
    /// loop range that is empty (end ≤ start) or has an end beyond it is no loop.
    pub fn usable(self) -> Self {
        let sane = |p: i64| (-MAX_POSITION..=MAX_POSITION).contains(&p);
        Self {
            position: self.position.filter(|&p| sane(p)),
            loop_range: self.loop_range.filter(|&(ls, le)| sane(ls) && sane(le) && le > ls),
            ..self
        }
    }
}

/// One frame to send. `Copy`, no heap: crosses the audio → network ring as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEvent {
    /// Absolute frame number, start offset included, never wrapped.
    pub frame: i64,
    /// The rate `frame` counts in.
    pub rate: FrameRate,
    /// Samples from the block's first sample to this frame's first sample (0 when parked).
    pub offset: u32,
    /// Transport rolling.
    pub playing: bool,
    /// Does not follow the previous reported frame.
    pub jump: bool,
    /// The discontinuity is the host's loop wrapping to its start.
    pub looped: bool,
    /// The frame's first sample is at `offset` in this block. False for a parked position and for
    /// the frame already under way when play starts, locates or wraps mid-frame (reported at the
    /// break's offset). Cues quantise only to frames that start.
    pub starts: bool,
}

/// Frame detection state for one activation. Owned by the audio thread.
#[derive(Debug, Clone)]
pub struct FrameClock {
    /// Hz, fixed for an activation, within [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`].
    sample_rate: u32,
    /// Current frame rate.
    rate: FrameRate,
    /// Frames added to the timeline frame (the start offset), in `rate` frames.
    offset_frames: i64,
    /// Timeline sample where the next block starts if playback is continuous; `None` when the
    /// next playing block is a discontinuity.
    expected: Option<i64>,
    /// Last frame reported while playing in the current run (timeline frame, no offset).
    last_played: Option<i64>,
    /// Parked position: (timeline sample, timeline frame) last reported while stopped.
    parked: Option<(i64, i64)>,
    /// Previous block was playing.
    was_playing: bool,
    /// The last block's spans ([`crate::span`]), recorded by [`FrameClock::process_block`].
    spans: Spans,
}

impl FrameClock {
    /// A clock at `sample_rate` Hz counting `rate` frames, with the timeline's sample 0 shown as
    /// frame `offset_frames`. A sample rate outside [`MIN_SAMPLE_RATE`]`..=`[`MAX_SAMPLE_RATE`] is
    /// clamped into it: callers check the host's with [`usable_sample_rate`] first.
    pub fn new(sample_rate: u32, rate: FrameRate, offset_frames: i64) -> Self {
        Self {
            sample_rate: sample_rate.clamp(MIN_SAMPLE_RATE, MAX_SAMPLE_RATE),
            rate,
            offset_frames,
            expected: None,
            last_played: None,
            parked: None,
            was_playing: false,
            spans: Spans::default(),
        }
    }

    /// The start offset: frames added to the timeline frame.
    pub fn offset_frames(&self) -> i64 {
        self.offset_frames
    }

    /// What each sample of the last block played ([`crate::span`]): empty for a block without
    /// a usable position.
    pub fn spans(&self) -> &[Span] {
        self.spans.as_slice()
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The frame rate.
    pub fn rate(&self) -> FrameRate {
        self.rate
    }

    /// Changes the rate and/or offset. If either differs, the next block is a discontinuity (and a
    /// parked position is reported again).
    pub fn set_rate(&mut self, rate: FrameRate, offset_frames: i64) {
        if rate != self.rate || offset_frames != self.offset_frames {
            self.rate = rate;
            self.offset_frames = offset_frames;
            self.resync();
        }
    }

    /// Forgets continuity: the next block reports its current frame with `jump` set.
    pub fn resync(&mut self) {
        self.expected = None;
        self.last_played = None;
        self.parked = None;
    }

    /// Reports the frames of one block through `emit`, in order: at most [`max_events`] of them.
    /// The block is taken as [`BlockInput::usable`] makes it.
    pub fn process_block(&mut self, block: BlockInput, mut emit: impl FnMut(FrameEvent)) {
        let block = block.usable();
        self.spans.clear();
        let Some(pos) = block.position else {
            self.resync();
            self.was_playing = false;
            return;
        };
        if block.playing {
            self.process_playing(pos, block, &mut emit);
        } else {
            self.process_stopped(pos, block.len, &mut emit);
        }
        self.was_playing = block.playing;
    }

    fn process_playing(&mut self, pos: i64, block: BlockInput, emit: &mut impl FnMut(FrameEvent)) {
        let near = |a: i64, b: i64| a.abs_diff(b) <= WOBBLE_SAMPLES.unsigned_abs();
        // Where this block really starts, and whether (and how) it breaks from the last one.
        let (mut seg_start, mut discontinuity) = match (self.was_playing, self.expected) {
            (true, Some(expected)) if near(pos, expected) => (expected, None),
            (true, Some(expected)) => {
                let looped = block.loop_range.is_some_and(|(ls, le)| le > ls && near(pos, ls) && expected > pos);
                (pos, Some(Break { jump: true, looped }))
            }
            // Starting to roll where we parked continues the parked frame: not a jump.
            _ => {
                let from_parked = self.parked.is_some_and(|(parked_pos, _)| near(pos, parked_pos));
                (pos, Some(Break { jump: !from_parked, looped: false }))
            }
        };
        let mut seg_offset: i64 = 0;
        let mut remaining = i64::from(block.len);
        let mut wraps = 0;
        loop {
            let block_end = seg_start + remaining;
            // The loop start the host jumps back to, if this segment crosses the loop end.
            let wrap = block.loop_range.filter(|&(ls, le)| le > ls && seg_start < le && block_end > le);
            let seg_end = wrap.map_or(block_end, |(_, le)| le);
            self.spans.push(Span {
                offset: seg_offset as u32,
                len: (seg_end - seg_start) as u32,
                timeline: seg_start,
                state: SpanState::Playing,
                continues: discontinuity.is_none(),
                looped: discontinuity.is_some_and(|d| d.looped),
            });
            self.emit_segment(seg_start, seg_end, seg_offset, discontinuity.take(), emit);
            let Some((ls, le)) = wrap else {
                self.expected = Some(seg_end);
                break;
            };
            // The host plays the rest of the block from the loop start.
            seg_offset += seg_end - seg_start;
            remaining -= seg_end - seg_start;
            seg_start = ls;
            discontinuity = Some(Break { jump: true, looped: true });
            wraps += 1;
            if wraps == MAX_LOOP_WRAPS {
                // Skip to the block's last pass: `remaining` is > 0 (the segment crossed the loop
                // end), and what is left after the skip, 1 to one loop length, does not wrap.
                let loop_len = le - ls;
                let skipped = (remaining - 1) / loop_len * loop_len;
                self.spans.push(Span {
                    offset: seg_offset as u32,
                    len: skipped as u32,
                    timeline: ls,
                    state: SpanState::Skipped,
                    continues: false,
                    looped: true,
                });
                seg_offset += skipped;
                remaining -= skipped;
            }
        }
        self.parked = None;
    }

    /// Reports frames starting in `[start, end)`; after a break, first the frame containing
    /// `start`, at `offset`, with the break's flags.
    fn emit_segment(
        &mut self,
        start: i64,
        end: i64,
        offset: i64,
        discontinuity: Option<Break>,
        emit: &mut impl FnMut(FrameEvent),
    ) {
        let (sr, rate) = (self.sample_rate, self.rate);
        let f0 = frame_at_sample(start, sr, rate);
        let mut next = match discontinuity {
            Some(Break { jump, looped }) => {
                let starts = frame_start_sample(f0, sr, rate) == start;
                emit(FrameEvent { starts, ..self.event(f0, offset, true, jump, looped) });
                self.last_played = Some(f0);
                f0 + 1
            }
            None => {
                let first = if frame_start_sample(f0, sr, rate) == start { f0 } else { f0 + 1 };
                self.last_played.map_or(first, |last| first.max(last + 1))
            }
        };
        loop {
            let at = frame_start_sample(next, sr, rate);
            if at >= end {
                break;
            }
            emit(self.event(next, offset + (at - start), true, false, false));
            self.last_played = Some(next);
            next += 1;
        }
    }

    fn process_stopped(&mut self, pos: i64, len: u32, emit: &mut impl FnMut(FrameEvent)) {
        let frame = frame_at_sample(pos, self.sample_rate, self.rate);
        let previous = match self.parked {
            Some((_, parked_frame)) => Some(parked_frame),
            None if self.was_playing => self.last_played,
            None => None,
        };
        let changed = self.parked.is_none_or(|(_, f)| f != frame);
        self.spans.push(Span {
            offset: 0,
            len,
            timeline: pos,
            state: SpanState::Parked,
            continues: !changed && !self.was_playing,
            looped: false,
        });
        if changed || self.was_playing {
            // A locate while parked is a jump; stopping where we were is not.
            let jump = previous.is_none_or(|p| frame != p && frame != p + 1);
            emit(FrameEvent { starts: false, ..self.event(frame, 0, false, jump, false) });
        }
        self.parked = Some((pos, frame));
        self.expected = None;
        self.last_played = None;
    }

    fn event(&self, timeline_frame: i64, offset: i64, playing: bool, jump: bool, looped: bool) -> FrameEvent {
        FrameEvent {
            // Saturates only for an `offset_frames` far beyond a day's (the API takes any i64).
            frame: timeline_frame.saturating_add(self.offset_frames),
            rate: self.rate,
            offset: offset.clamp(0, i64::from(u32::MAX)) as u32,
            playing,
            jump,
            looped,
            starts: playing,
        }
    }
}

/// How a playing block breaks from the previous one.
#[derive(Debug, Clone, Copy)]
struct Break {
    /// The first frame does not follow the last reported one.
    jump: bool,
    /// The host's loop sent the position back to the loop start.
    looped: bool,
}

/// The frame of the start offset `seconds_of_day` (whole seconds of label, `HH:MM:SS:00`) at
/// `rate`, as the frame count added to the timeline. At drop-frame rates a label the numbering
/// skips (`00:01:00;00`) stands for the first label of that second (`00:01:00;02`).
pub fn offset_frames(seconds_of_day: u32, rate: FrameRate) -> i64 {
    let s = seconds_of_day % 86_400;
    let (h, m, sec) = ((s / 3600) as u8, (s / 60 % 60) as u8, (s % 60) as u8);
    let first = if sec == 0 && m % 10 != 0 { rate.dropped_per_minute() as u8 } else { 0 };
    // PANIC: fields are in range and `first` skips the dropped labels.
    crate::timecode::Timecode::new(h, m, sec, first, rate).expect("valid offset label").to_frame()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::Timecode;

    /// A host: plays `blocks` (position, len) and collects (block position, event).
    fn run(
        clock: &mut FrameClock,
        blocks: &[(bool, Option<i64>, u32)],
        loop_range: Option<(i64, i64)>,
    ) -> Vec<(i64, FrameEvent)> {
        let mut out = Vec::new();
        for &(playing, position, len) in blocks {
            clock.process_block(BlockInput { playing, position, loop_range, len }, |e| {
                out.push((position.unwrap_or(i64::MIN), e));
            });
        }
        out
    }

    /// Blocks of the given sizes (cycled) from `start` covering `total` samples.
    fn playing_blocks(start: i64, total: i64, sizes: &[u32]) -> Vec<(bool, Option<i64>, u32)> {
        let mut blocks = Vec::new();
        let mut pos = start;
        let mut i = 0;
        while pos < start + total {
            let len = sizes[i % sizes.len()];
            blocks.push((true, Some(pos), len));
            pos += i64::from(len);
            i += 1;
        }
        blocks
    }

    /// Every frame once, in order, each at the sample where it starts.
    fn assert_every_frame_once(events: &[(i64, FrameEvent)], sr: u32, rate: FrameRate, start: i64) {
        let first = frame_at_sample(start, sr, rate);
        for (i, (block_pos, e)) in events.iter().enumerate() {
            assert_eq!(e.frame, first + i as i64, "event {i}: {e:?}");
            assert!(e.playing);
            assert_eq!(e.jump, i == 0, "only the first frame is a jump: {e:?}");
            assert!(!e.looped);
            if i > 0 {
                assert_eq!(block_pos + i64::from(e.offset), frame_start_sample(e.frame, sr, rate), "offset of {e:?}");
            }
            // `starts` says exactly whether the frame begins at the reported sample.
            let begins = block_pos + i64::from(e.offset) == frame_start_sample(e.frame, sr, rate);
            assert_eq!(e.starts, begins, "starts of {e:?} at block {block_pos}");
        }
    }

    #[test]
    fn starts_marks_only_frames_that_begin_at_their_offset() {
        // 25 fps at 48 kHz: frames every 1920 samples. Play from 1000 (mid-frame 0), then locate
        // to 3840 (frame 2's first sample), then park.
        let mut clock = FrameClock::new(48_000, FrameRate::FPS_25, 0);
        let events =
            run(&mut clock, &[(true, Some(1000), 1024), (true, Some(3840), 64), (false, Some(5000), 64)], None);
        let got: Vec<(i64, u32, bool, bool)> =
            events.iter().map(|(_, e)| (e.frame, e.offset, e.jump, e.starts)).collect();
        assert_eq!(got, vec![(0, 0, true, false), (1, 920, false, true), (2, 0, true, true), (2, 0, false, false)]);
    }

    #[test]
    fn continuous_play_reports_every_frame_once_at_its_sample() {
        for rate in FrameRate::ALL {
            for sr in [44_100, 48_000, 96_000, 192_000] {
                for sizes in [&[64u32][..], &[512], &[4096], &[1, 7, 333, 2048, 13]] {
                    let total = i64::from(sr) * 2;
                    let mut clock = FrameClock::new(sr, rate, 0);
                    let events = run(&mut clock, &playing_blocks(0, total, sizes), None);
                    let expected = frame_at_sample(total - 1, sr, rate) + 1;
                    let covered = playing_blocks(0, total, sizes).iter().map(|b| i64::from(b.2)).sum::<i64>();
                    assert_eq!(
                        events.len() as i64,
                        frame_at_sample(covered - 1, sr, rate) + 1,
                        "{rate} {sr} {sizes:?}"
                    );
                    assert!(events.len() as i64 >= expected);
                    assert_every_frame_once(&events, sr, rate, 0);
                }
            }
        }
    }

    #[test]
    fn one_sample_blocks() {
        let (sr, rate) = (48_000, FrameRate::FPS_29_97_DF);
        let mut clock = FrameClock::new(sr, rate, 0);
        let events = run(&mut clock, &playing_blocks(-4_000, 12_000, &[1]), None);
        assert_every_frame_once(&events, sr, rate, -4_000);
        assert!(events.iter().skip(1).all(|(_, e)| e.offset == 0));
    }

    #[test]
    fn one_sample_wobble_is_not_a_jump() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        let exact = playing_blocks(0, 96_000, &[512]);
        let wobbly: Vec<_> = exact
            .iter()
            .enumerate()
            .map(|(i, &(p, pos, len))| (p, pos.map(|x| x + [0, 1, -1, 1][i % 4]).map(|x| x.max(0)), len))
            .collect();
        let a = run(&mut FrameClock::new(sr, rate, 0), &exact, None);
        let b = run(&mut FrameClock::new(sr, rate, 0), &wobbly, None);
        let frames = |v: &[(i64, FrameEvent)]| v.iter().map(|(_, e)| (e.frame, e.jump, e.looped)).collect::<Vec<_>>();
        assert_eq!(frames(&a), frames(&b));
        assert_every_frame_once(&a, sr, rate, 0);
    }

    #[test]
    fn locate_while_playing_is_a_jump_to_the_new_frame() {
        let (sr, rate) = (48_000, FrameRate::FPS_24);
        let mut clock = FrameClock::new(sr, rate, 0);
        let mut blocks = playing_blocks(0, 4_096, &[1024]);
        blocks.push((true, Some(480_123), 1024));
        blocks.push((true, Some(481_147), 1024));
        let events = run(&mut clock, &blocks, None);
        let jumped: Vec<_> = events.iter().filter(|(_, e)| e.jump).collect();
        assert_eq!(jumped.len(), 2, "start and locate: {events:?}");
        let (pos, e) = jumped[1];
        assert_eq!((*pos, e.frame, e.offset, e.looped), (480_123, frame_at_sample(480_123, sr, rate), 0, false));
        // Frames after the locate continue from there.
        let after: Vec<i64> = events.iter().skip_while(|(p, _)| *p != 480_123).map(|(_, e)| e.frame).collect();
        assert!(after.windows(2).all(|w| w[1] == w[0] + 1), "{after:?}");
    }

    #[test]
    fn loop_wrap_between_blocks_is_flagged() {
        let (sr, rate) = (48_000, FrameRate::FPS_30);
        let lr = Some((48_000, 96_000));
        let mut blocks = playing_blocks(48_000, 48_000, &[1000]);
        assert_eq!(blocks.last().unwrap().1.unwrap() + 1000, 96_000);
        blocks.push((true, Some(48_000), 1000));
        let events = run(&mut FrameClock::new(sr, rate, 0), &blocks, lr);
        let (pos, last_jump) = events.iter().rfind(|(_, e)| e.jump).unwrap();
        assert_eq!((*pos, last_jump.frame, last_jump.looped), (48_000, 30, true));
        assert_eq!(events.iter().filter(|(_, e)| e.looped).count(), 1);
    }

    #[test]
    fn loop_wrap_inside_a_block_restarts_at_the_loop_start() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        // Loop [1 s, 2 s); a block from 1.99 s of 1000 samples crosses the end at offset 480.
        let lr = Some((48_000, 96_000));
        let mut clock = FrameClock::new(sr, rate, 0);
        let blocks = [(true, Some(95_520), 1000), (true, Some(48_520), 1000)];
        let events = run(&mut clock, &blocks, lr);
        let wrap = events.iter().find(|(_, e)| e.looped).expect("a loop event");
        assert_eq!((wrap.0, wrap.1.frame, wrap.1.offset, wrap.1.jump), (95_520, 25, 480, true));
        // The host's next block continues after the wrap: no further jump.
        assert_eq!(events.iter().filter(|(_, e)| e.jump).count(), 2, "{events:?}");
        let frames: Vec<i64> = events.iter().map(|(_, e)| e.frame).collect();
        assert_eq!(frames, vec![49, 25]);
    }

    #[test]
    fn pre_roll_counts_up_through_midnight() {
        let (sr, rate) = (48_000, FrameRate::FPS_29_97_DF);
        let mut clock = FrameClock::new(sr, rate, 0);
        let events = run(&mut clock, &playing_blocks(-48_000, 96_000, &[480]), None);
        assert_every_frame_once(&events, sr, rate, -48_000);
        let labels: Vec<String> = events.iter().map(|(_, e)| Timecode::from_frame(e.frame, rate).to_string()).collect();
        let zero = labels.iter().position(|l| l == "00:00:00;00").expect("reaches zero");
        assert_eq!(labels[zero - 1], "23:59:59;29");
        assert_eq!(events[zero].1.frame, 0);
        assert_eq!(events[0].1.frame, -30, "1 s of 29.97 before zero is frame -30 (floor)");
    }

    #[test]
    fn stopped_reports_parked_frame_on_change_only() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        let mut clock = FrameClock::new(sr, rate, 0);
        let blocks = [
            (false, Some(0), 512),
            (false, Some(0), 512),
            (false, Some(1_000), 512),  // same frame (0..1920)
            (false, Some(48_000), 512), // locate: frame 25
            (false, Some(48_000), 512),
        ];
        let events = run(&mut clock, &blocks, None);
        let got: Vec<(i64, bool, bool)> = events.iter().map(|(_, e)| (e.frame, e.playing, e.jump)).collect();
        assert_eq!(got, vec![(0, false, true), (25, false, true)]);
    }

    #[test]
    fn play_from_parked_is_not_a_jump_and_stop_reports_where_it_stopped() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        let mut clock = FrameClock::new(sr, rate, 0);
        let mut blocks = vec![(false, Some(0), 512)];
        blocks.extend(playing_blocks(0, 5_120, &[512]));
        blocks.push((false, Some(5_120), 512));
        let events = run(&mut clock, &blocks, None);
        let got: Vec<(i64, bool, bool)> = events.iter().map(|(_, e)| (e.frame, e.playing, e.jump)).collect();
        assert_eq!(
            got,
            vec![(0, false, true), (0, true, false), (1, true, false), (2, true, false), (2, false, false)]
        );
    }

    #[test]
    fn no_position_reports_nothing_and_the_next_block_is_a_jump() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        let mut clock = FrameClock::new(sr, rate, 0);
        let blocks = [(true, Some(0), 2_000), (true, None, 2_000), (true, Some(4_000), 2_000)];
        let events = run(&mut clock, &blocks, None);
        let got: Vec<(i64, i64, bool)> = events.iter().map(|(p, e)| (*p, e.frame, e.jump)).collect();
        assert_eq!(got, vec![(0, 0, true), (0, 1, false), (4_000, 2, true), (4_000, 3, false)]);
    }

    #[test]
    fn rate_or_offset_change_resyncs() {
        let sr = 48_000;
        let mut clock = FrameClock::new(sr, FrameRate::FPS_25, 0);
        let mut events = run(&mut clock, &playing_blocks(0, 4_096, &[1024]), None);
        clock.set_rate(FrameRate::FPS_30, 0);
        events.extend(run(&mut clock, &[(true, Some(4_096), 1024)], None));
        let e = events.iter().find(|(p, _)| *p == 4_096).unwrap().1;
        assert_eq!((e.frame, e.rate, e.jump), (2, FrameRate::FPS_30, true));
        let before = events.len();
        clock.set_rate(FrameRate::FPS_30, 0); // unchanged: no resync
        let more = run(&mut clock, &[(true, Some(5_120), 1024)], None);
        assert!(more.iter().all(|(_, e)| !e.jump), "{more:?} after {before}");
    }

    #[test]
    fn start_offset_is_added_to_frames() {
        let (sr, rate) = (48_000, FrameRate::FPS_29_97_DF);
        let off = offset_frames(3600, rate);
        assert_eq!(Timecode::from_frame(off, rate).to_string(), "01:00:00;00");
        let mut clock = FrameClock::new(sr, rate, off);
        let events = run(&mut clock, &playing_blocks(0, 1024, &[1024]), None);
        assert_eq!(events[0].1.frame, off);
    }

    #[test]
    fn offset_on_a_dropped_label_takes_the_first_label_of_that_second() {
        assert_eq!(
            Timecode::from_frame(offset_frames(60, FrameRate::FPS_29_97_DF), FrameRate::FPS_29_97_DF).to_string(),
            "00:01:00;02"
        );
        assert_eq!(
            Timecode::from_frame(offset_frames(60, FrameRate::FPS_59_94_DF), FrameRate::FPS_59_94_DF).to_string(),
            "00:01:00;04"
        );
        assert_eq!(
            Timecode::from_frame(offset_frames(600, FrameRate::FPS_29_97_DF), FrameRate::FPS_29_97_DF).to_string(),
            "00:10:00;00"
        );
        for rate in FrameRate::ALL {
            assert_eq!(offset_frames(0, rate), 0);
            assert_eq!(
                offset_frames(86_399, rate),
                Timecode::parse(&format!("23:59:59{}00", if rate.is_drop() { ';' } else { ':' }), rate)
                    .unwrap()
                    .to_frame()
            );
        }
    }

    #[test]
    fn zero_length_blocks_report_nothing_twice() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        let mut clock = FrameClock::new(sr, rate, 0);
        let blocks = [
            (true, Some(0), 0),
            (true, Some(0), 0),
            (true, Some(0), 1920),
            (true, Some(1920), 0),
            (true, Some(1920), 10),
        ];
        let events = run(&mut clock, &blocks, None);
        let frames: Vec<i64> = events.iter().map(|(_, e)| e.frame).collect();
        assert_eq!(frames, vec![0, 1]);
    }

    // -----------------------------------------------------------------------------------------
    // Absurd inputs (issue 14): a defined result, never a panic (these tests run with overflow
    // checks on, as debug bundles do) and never more than `max_events` per block.

    /// Runs one block, checking the per-block bound and offsets inside the block; returns its
    /// events.
    fn block(
        clock: &mut FrameClock,
        playing: bool,
        position: Option<i64>,
        loop_range: Option<(i64, i64)>,
        len: u32,
    ) -> Vec<FrameEvent> {
        let mut out = Vec::new();
        clock.process_block(BlockInput { playing, position, loop_range, len }, |e| out.push(e));
        let bound = max_events(len, clock.sample_rate(), clock.rate());
        assert!(
            out.len() as u64 <= bound,
            "{} events > {bound} for len {len} at {position:?} {loop_range:?}",
            out.len()
        );
        assert!(out.iter().all(|e| e.offset < len.max(1)), "offsets inside the block: {out:?}");
        out
    }

    #[test]
    fn absurd_positions_are_no_position_and_the_next_sane_block_is_a_jump() {
        let (sr, rate) = (48_000, FrameRate::FPS_25);
        for absurd in [i64::MIN, i64::MIN + 1, -MAX_POSITION - 1, MAX_POSITION + 1, i64::MAX - 1, i64::MAX] {
            for playing in [true, false] {
                let mut clock = FrameClock::new(sr, rate, offset_frames(3600, rate));
                assert_eq!(block(&mut clock, true, Some(0), None, 512).len(), 1);
                for len in [0, 1, 512, u32::MAX] {
                    assert!(block(&mut clock, playing, Some(absurd), None, len).is_empty(), "{absurd} {len}");
                }
                let after = block(&mut clock, true, Some(512), None, 512);
                assert_eq!(after.len(), 1);
                assert!(after[0].jump, "{absurd}: the block after an absurd one is a discontinuity");
            }
        }
        // The limits themselves are positions.
        let mut clock = FrameClock::new(sr, rate, 0);
        for pos in [-MAX_POSITION, MAX_POSITION - 4096] {
            let events = block(&mut clock, true, Some(pos), None, 4096);
            assert_eq!(events[0].frame, frame_at_sample(pos, sr, rate), "{pos}");
        }
        assert_eq!(
            block(&mut clock, false, Some(MAX_POSITION), None, 64)[0].frame,
            frame_at_sample(MAX_POSITION, sr, rate)
        );
    }

    #[test]
    fn absurd_or_empty_loop_ranges_are_no_loop() {
        let (sr, rate) = (48_000, FrameRate::FPS_30);
        for lr in
            [(i64::MIN, 100), (i64::MIN, i64::MAX), (50, i64::MAX), (-MAX_POSITION - 1, 10), (100, 100), (200, 100)]
        {
            let mut clock = FrameClock::new(sr, rate, 0);
            let mut jumps = 0;
            let mut pos = 0;
            for _ in 0..200 {
                let events = block(&mut clock, true, Some(pos), Some(lr), 480);
                jumps += events.iter().filter(|e| e.jump || e.looped).count();
                pos += 480;
            }
            assert_eq!(jumps, 1, "{lr:?}: played straight through, one jump at the start");
        }
    }

    #[test]
    fn sample_rates_have_documented_limits() {
        for (hz, usable) in [
            (f64::NAN, None),
            (f64::INFINITY, None),
            (f64::NEG_INFINITY, None),
            (-48_000.0, None),
            (0.0, None),
            (1.0, None),
            (59.0, None),
            (7_999.0, None),
            (7_999.49, None),
            (7_999.5, Some(8_000)),
            (8_000.0, Some(8_000)),
            (44_100.0, Some(44_100)),
            (1_536_000.0, Some(1_536_000)),
            (1_536_000.5, None),
            (1e300, None),
        ] {
            assert_eq!(usable_sample_rate(hz), usable, "{hz}");
        }
        assert_eq!(FrameClock::new(0, FrameRate::FPS_25, 0).sample_rate(), MIN_SAMPLE_RATE);
        assert_eq!(FrameClock::new(1, FrameRate::FPS_25, 0).sample_rate(), MIN_SAMPLE_RATE);
        assert_eq!(FrameClock::new(u32::MAX, FrameRate::FPS_25, 0).sample_rate(), MAX_SAMPLE_RATE);
    }

    #[test]
    fn the_minimum_sample_rate_plays_every_frame_once() {
        for rate in FrameRate::ALL {
            for sr in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] {
                let mut clock = FrameClock::new(sr, rate, 0);
                let events = run(&mut clock, &playing_blocks(-i64::from(sr), 3 * i64::from(sr), &[1, 64, 4096]), None);
                assert_every_frame_once(&events, sr, rate, -i64::from(sr));
            }
        }
    }

    #[test]
    fn huge_and_empty_blocks_report_exactly_their_frames() {
        let rate = FrameRate::FPS_59_94_DF;
        let sr = MAX_SAMPLE_RATE;
        let mut clock = FrameClock::new(sr, rate, 0);
        let events = block(&mut clock, true, Some(-5), None, u32::MAX);
        // Frame 0 (under way at -5) as the jump, then every frame starting in the block.
        let last = frame_at_sample(i64::from(u32::MAX) - 6, sr, rate);
        assert_eq!(events.len() as i64, last - frame_at_sample(-5, sr, rate) + 1);
        assert!(events.windows(2).all(|w| w[1].frame == w[0].frame + 1));
        assert!(block(&mut clock, true, Some(i64::from(u32::MAX) - 5), None, 0).is_empty());
        let next = block(&mut clock, true, Some(i64::from(u32::MAX) - 5), None, 1);
        assert!(next.iter().all(|e| !e.jump), "continues after a huge block: {next:?}");
    }

    #[test]
    fn a_tiny_loop_reports_at_most_max_loop_wraps_per_block_then_continues() {
        let (sr, rate) = (MIN_SAMPLE_RATE, FrameRate::FPS_60);
        let lr = Some((1_000, 1_010));
        let mut clock = FrameClock::new(sr, rate, 0);
        // Loop [1000, 1010), a block from 990 of 4096 samples: 10 samples to the loop end, then
        // 408 passes of 10 samples and one of 6.
        let events = block(&mut clock, true, Some(990), lr, 4096);
        let wraps: Vec<&FrameEvent> = events.iter().filter(|e| e.looped).collect();
        assert_eq!(wraps.len() as u32, MAX_LOOP_WRAPS, "MAX_LOOP_WRAPS - 1 passes, then the last one");
        assert!(wraps.iter().all(|e| e.jump && e.frame == frame_at_sample(1_000, sr, rate)));
        assert_eq!(wraps.last().unwrap().offset, 4090, "the last pass at its own offset");
        // The host carries on from 1006: continuous; then to the loop end, and wraps between
        // blocks, once.
        assert!(block(&mut clock, true, Some(1_006), lr, 4).iter().all(|e| !e.jump));
        let next = block(&mut clock, true, Some(1_000), lr, 1);
        assert_eq!(next.len(), 1);
        assert!(next[0].looped && next[0].jump);
        // A loop shorter than a block but not tiny reports every pass (1000 samples, 4096 blocks:
        // 2000 samples to the loop end, two passes and 96 samples).
        let mut clock = FrameClock::new(96_000, rate, 0);
        let events = block(&mut clock, true, Some(9_000), Some((10_000, 11_000)), 4096);
        assert_eq!(events.iter().filter(|e| e.looped).count(), 3, "at 11000, 12000 - 1000, 13000 - 2000");
    }

    #[test]
    fn the_24_hour_wrap_is_a_label_wrap_not_a_frame_wrap() {
        for rate in FrameRate::ALL {
            let sr = 48_000;
            let day = frame_start_sample(rate.frames_per_day(), sr, rate);
            let mut clock = FrameClock::new(sr, rate, 0);
            let events = run(&mut clock, &playing_blocks(day - i64::from(sr), 2 * i64::from(sr), &[512]), None);
            assert_every_frame_once(&events, sr, rate, day - i64::from(sr));
            let zero = events.iter().position(|(_, e)| e.frame == rate.frames_per_day()).expect("crosses the day");
            assert_eq!(Timecode::from_frame(events[zero].1.frame, rate).to_frame(), 0, "{rate}");
            assert_eq!(Timecode::from_frame(events[zero - 1].1.frame, rate).to_frame(), rate.frames_per_day() - 1);
        }
    }

    /// xorshift64* (Vigna), fixed seed: the same inputs on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn pick<T: Copy>(&mut self, from: &[T]) -> T {
            from[(self.next() % from.len() as u64) as usize]
        }
    }

    #[test]
    fn random_extreme_inputs_never_panic_and_stay_within_the_bound() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let day = 86_400 * 192_000;
        let positions = [
            i64::MIN,
            i64::MIN + 1,
            -MAX_POSITION - 1,
            -MAX_POSITION,
            -day,
            -1,
            0,
            1,
            day - 1,
            day,
            MAX_POSITION - 1,
            MAX_POSITION,
            MAX_POSITION + 1,
            i64::MAX - 1,
            i64::MAX,
        ];
        let rates = [0, 1, 59, 7_999, MIN_SAMPLE_RATE, 44_100, 48_000, 192_000, MAX_SAMPLE_RATE, u32::MAX];
        let lens = [0, 1, 2, 63, 512, 4096, 65_536, 1 << 20];
        let mut total = 0u64;
        for _ in 0..200 {
            let rate = rng.pick(&FrameRate::ALL);
            let offset = rng.pick(&[0, offset_frames(86_399, rate), i64::MAX, i64::MIN]);
            let mut clock = FrameClock::new(rng.pick(&rates), rate, offset);
            let mut pos = rng.pick(&positions);
            for _ in 0..50 {
                // Mostly continue from where the last block ended (as far as i64 goes), sometimes
                // jump to an extreme or near one.
                pos = match rng.next() % 4 {
                    0 => rng.pick(&positions),
                    1 => rng.pick(&positions).saturating_add((rng.next() % 10_000) as i64 - 5_000),
                    _ => pos,
                };
                let len = rng.pick(&lens);
                let loop_range = match rng.next() % 4 {
                    0 => None,
                    1 => Some((rng.pick(&positions), rng.pick(&positions))),
                    _ => {
                        let start = pos.saturating_add((rng.next() % 2_000) as i64 - 1_000);
                        Some((start, start.saturating_add(1 + (rng.next() % 3_000) as i64)))
                    }
                };
                let playing = !rng.next().is_multiple_of(5);
                let position = (!rng.next().is_multiple_of(20)).then_some(pos);
                total += block(&mut clock, playing, position, loop_range, len).len() as u64;
                assert_spans_cover(&clock, len);
                pos = pos.saturating_add(i64::from(len));
            }
        }
        assert!(total > 10_000, "the inputs must really have produced frames ({total})");
    }

    /// The last block's spans are empty or cover `[0, len)` in order, without gaps.
    fn assert_spans_cover(clock: &FrameClock, len: u32) {
        let spans = clock.spans();
        if spans.is_empty() {
            return;
        }
        let mut at = 0;
        for span in spans {
            assert_eq!(span.offset, at, "spans in order without gaps: {spans:?}");
            assert!(span.len > 0);
            at += span.len;
        }
        assert_eq!(at, len, "spans cover the block: {spans:?}");
    }

    /// (offset, len, timeline, state, continues, looped) of the last block's spans.
    fn spans_of(clock: &FrameClock) -> Vec<(u32, u32, i64, SpanState, bool, bool)> {
        clock.spans().iter().map(|s| (s.offset, s.len, s.timeline, s.state, s.continues, s.looped)).collect()
    }

    #[test]
    fn spans_follow_play_locate_loop_stop_and_no_position() {
        use SpanState::{Parked, Playing};
        let mut clock = FrameClock::new(48_000, FrameRate::FPS_25, 0);
        let lr = Some((9_500, 10_000));
        block(&mut clock, false, Some(500), None, 64);
        assert_eq!(spans_of(&clock), vec![(0, 64, 500, Parked, false, false)], "a new park position");
        block(&mut clock, false, Some(500), None, 64);
        assert_eq!(spans_of(&clock), vec![(0, 64, 500, Parked, true, false)], "parked where it was");
        block(&mut clock, true, Some(500), None, 64);
        assert_eq!(spans_of(&clock), vec![(0, 64, 500, Playing, false, false)], "play starts (from the park)");
        block(&mut clock, true, Some(565), None, 64);
        assert_eq!(spans_of(&clock), vec![(0, 64, 564, Playing, true, false)], "wobble: the clock's position");
        block(&mut clock, true, Some(9_000), lr, 1_500);
        assert_eq!(
            spans_of(&clock),
            vec![(0, 1_000, 9_000, Playing, false, false), (1_000, 500, 9_500, Playing, false, true)],
            "a locate, then a loop wrap inside the block"
        );
        block(&mut clock, false, Some(10_000), lr, 64);
        assert_eq!(spans_of(&clock), vec![(0, 64, 10_000, Parked, false, false)], "a stop");
        block(&mut clock, false, None, lr, 64);
        assert!(clock.spans().is_empty(), "no position, no spans");
        block(&mut clock, true, Some(10_000), lr, 0);
        assert!(clock.spans().is_empty(), "an empty block has no spans");
    }

    #[test]
    fn spans_agree_with_the_frames_reported() {
        // Every frame that starts in a block starts, in the span holding its offset, at the
        // span's timeline sample plus its distance from the span's first sample.
        for rate in FrameRate::ALL {
            let sr = 44_100;
            let offset = offset_frames(36_000, rate);
            let mut clock = FrameClock::new(sr, rate, offset);
            let lr = Some((20_000, 90_000));
            for (playing, position, len) in playing_blocks(0, 200_000, &[512, 4096, 7]) {
                let events = block(&mut clock, playing, position, lr, len);
                assert_spans_cover(&clock, len);
                for e in events.iter().filter(|e| e.starts) {
                    let span = clock.spans().iter().find(|s| (s.offset..s.offset + s.len).contains(&e.offset)).unwrap();
                    let at = span.timeline + i64::from(e.offset - span.offset);
                    assert_eq!(frame_start_sample(e.frame - offset, sr, rate), at, "{rate}: {e:?} in {span:?}");
                }
            }
        }
    }

    #[test]
    fn span_frame_helpers_agree_with_the_frames_reported() {
        // frames_starting: exactly the frames reported as starting in the span; frame_under: the
        // frame reported at a break, and the frame before each span's first frame start.
        for rate in FrameRate::ALL {
            let (sr, offset) = (44_100, offset_frames(36_000, rate));
            let mut clock = FrameClock::new(sr, rate, offset);
            for (playing, position, len) in playing_blocks(0, 200_000, &[512, 4096, 7]) {
                let events = block(&mut clock, playing, position, Some((20_000, 90_000)), len);
                for span in clock.spans() {
                    let inside = |e: &&FrameEvent| (span.offset..span.offset + span.len).contains(&e.offset);
                    let starting: Vec<i64> =
                        events.iter().filter(inside).filter(|e| e.starts).map(|e| e.frame).collect();
                    let want: Vec<i64> = span.frames_starting(&clock).collect();
                    assert_eq!(starting, want, "{rate}: {span:?}");
                    assert_eq!(span.frames_starting_count(&clock), want.len() as u64);
                    let (under, into) = span.frame_under(&clock);
                    let timeline = frame_start_sample(under - offset, sr, rate) + i64::from(into);
                    assert_eq!(timeline, span.timeline, "{rate}: {span:?}");
                    if let Some(e) = events.iter().find(|e| e.offset == span.offset && !e.starts) {
                        assert_eq!(e.frame, under, "{rate}: the frame reported at the break");
                    }
                }
            }
        }
    }

    #[test]
    fn a_tiny_loop_gets_a_skipped_span_and_the_block_stays_covered() {
        let mut clock = FrameClock::new(MIN_SAMPLE_RATE, FrameRate::FPS_60, 0);
        block(&mut clock, true, Some(990), Some((1_000, 1_010)), 4096);
        assert_spans_cover(&clock, 4096);
        let skipped: Vec<_> = clock.spans().iter().filter(|s| s.state == SpanState::Skipped).collect();
        assert_eq!(skipped.len(), 1, "{:?}", clock.spans());
        assert_eq!(clock.spans().len(), MAX_LOOP_WRAPS as usize + 2);
    }
}
