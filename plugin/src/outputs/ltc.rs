//! LTC into the plugin's audio output: each block's spans rendered as linear timecode on the
//! chosen channels, replacing their audio.
//!
//! Sample-exact from the frame clock: in a playing span, the frame under each sample and how far
//! it is under way come from the span's timeline sample, so frame *n*'s word starts on frame
//! *n*'s first sample whatever the block size, and a locate or loop wrap restarts the word
//! mid-frame exactly where the host plays (the writer needs no state: see
//! [`osc_timecode_core::ltc`]). While parked: silence, or with `still` the parked frame's word
//! over and over, restarted when the park position changes. No position from the host, a span
//! the clock skipped (a loop shorter than a few samples), the Output parameter off, or a rate
//! LTC cannot carry: silence on the LTC channels, never the program audio (a console's LTC input
//! must not get music).
//!
//! `[audio-thread]` throughout: integer arithmetic and one multiply per sample, no allocation,
//! lock or panic.

use osc_timecode_core::FrameRate;
use osc_timecode_core::clock::FrameClock;
use osc_timecode_core::ltc::{LtcFormat, LtcWriter};
use osc_timecode_core::span::{Span, SpanState};

use super::OutputStats;

/// What LTC is asked to do this block. `Copy`, from the settings ([`super::AudioSwitches`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LtcPlan {
    /// Write LTC on the left channel (channel 0).
    pub left: bool,
    /// Write LTC on the right channel (channel 1).
    pub right: bool,
    /// Peak level, dBFS (≤ 0; the settings refuse anything else).
    pub level_dbfs: f32,
    /// While parked, repeat the parked frame's word (else silence).
    pub still: bool,
    /// 50/59.94/60 fps as frame pairs (else refused).
    pub half_rate: bool,
}

impl LtcPlan {
    /// No channel carries LTC: the audio passes untouched.
    pub const OFF: Self = Self { left: false, right: false, level_dbfs: -18.0, still: false, half_rate: false };
}

/// What a writer was built for: rebuilt when any of it changes.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WriterKey {
    /// The frame clock's rate.
    rate: FrameRate,
    /// Half-rate mode.
    half_rate: bool,
    /// Hz.
    sample_rate: u32,
    /// dBFS.
    level_dbfs: f32,
    /// The clock's start offset, frames.
    offset_frames: i64,
}

/// The LTC renderer of one plugin instance. `[audio-thread]`; created in `activate()`.
#[derive(Debug, Default)]
pub struct LtcOut {
    /// The writer for `key`, `None` when LTC cannot carry the rate (refused, counted).
    writer: Option<LtcWriter>,
    /// What `writer` was built for; `None` before the first block with LTC on.
    key: Option<WriterKey>,
    /// Still mode: samples of the parked frame's word already written since the park began.
    still_phase: u32,
}

impl LtcOut {
    /// Renders the block the clock just processed into `channels` (each at least the block
    /// long) per `plan`; `output` is the Output parameter. Counts words begun and frames refused.
    pub fn render(
        &mut self,
        plan: LtcPlan,
        output: bool,
        clock: &FrameClock,
        block_len: usize,
        channels: &mut [&mut [f32]],
        stats: &OutputStats,
    ) {
        let Some(primary) = [plan.left, plan.right].iter().position(|on| *on) else { return };
        let Some(out) = channels.get_mut(primary).and_then(|c| c.get_mut(..block_len)) else { return };
        out.fill(0.0);
        if output {
            let (words, refused) = self.render_spans(plan, clock, out);
            OutputStats::add(&stats.ltc_words, words);
            OutputStats::add(&stats.ltc_rate_refused, refused);
        }
        if plan.left
            && plan.right
            && let [left, right, ..] = channels
            && let (Some(from), Some(to)) = (left.get(..block_len), right.get_mut(..block_len))
        {
            to.copy_from_slice(from);
        }
    }

    /// Writes the clock's spans into `out` (zeroed): returns (words begun, frames refused).
    fn render_spans(&mut self, plan: LtcPlan, clock: &FrameClock, out: &mut [f32]) -> (u64, u64) {
        let key = WriterKey {
            rate: clock.rate(),
            half_rate: plan.half_rate,
            sample_rate: clock.sample_rate(),
            level_dbfs: plan.level_dbfs,
            offset_frames: clock.offset_frames(),
        };
        if self.key != Some(key) {
            self.key = Some(key);
            self.writer = LtcFormat::new(key.rate, key.half_rate)
                .and_then(|format| LtcWriter::new(format, key.sample_rate, key.level_dbfs, key.offset_frames))
                .ok();
        }
        let (mut words, mut refused) = (0, 0);
        for span in clock.spans() {
            let Some(slice) = out.get_mut(span.offset as usize..(span.offset + span.len) as usize) else { continue };
            match (span.state, self.writer) {
                (SpanState::Playing, Some(writer)) => {
                    words += words_in(span, clock, plan.half_rate);
                    play(writer, clock, span, slice);
                }
                (SpanState::Playing, None) => refused += span.frames_starting_count(clock),
                (SpanState::Parked, Some(writer)) if plan.still => {
                    if !span.continues {
                        self.still_phase = 0;
                    }
                    self.still_phase = still(writer, clock, span, self.still_phase, slice);
                }
                _ => {}
            }
        }
        (words, refused)
    }
}

/// Words whose first sample lies in the playing `span`: its frames, or at half rate those with
/// an even label frame (a pair's first).
fn words_in(span: &Span, clock: &FrameClock, half_rate: bool) -> u64 {
    if !half_rate || clock.rate().nominal() <= 30 {
        return span.frames_starting_count(clock);
    }
    let frames = span.frames_starting(clock);
    // Even numbers in [a, b): ceil(b / 2) - ceil(a / 2).
    let evens_below = |n: i64| n.saturating_add(1).div_euclid(2);
    u64::try_from(evens_below(frames.end).saturating_sub(evens_below(frames.start))).unwrap_or(0)
}

/// Writes the playing `span`: the frame under its first sample from where it is under way, then
/// each following frame from its start.
fn play(writer: LtcWriter, clock: &FrameClock, span: &Span, mut slice: &mut [f32]) {
    let (mut frame, mut into) = span.frame_under(clock);
    while !slice.is_empty() {
        let written = writer.fill(frame, into, slice);
        if written == 0 {
            // Only for frames at the far ends of the i64 range: leave silence.
            break;
        }
        slice = &mut slice[written..];
        frame = frame.saturating_add(1);
        into = 0;
    }
}

/// Writes the parked `span` as the parked frame's word repeated, continuing at `phase` samples
/// into the word; returns the phase after the span.
fn still(writer: LtcWriter, clock: &FrameClock, span: &Span, mut phase: u32, mut slice: &mut [f32]) -> u32 {
    let (frame, _) = span.frame_under(clock);
    while !slice.is_empty() {
        let written = writer.fill(frame, phase, slice);
        if written == 0 {
            if phase == 0 {
                break;
            }
            phase = 0;
            continue;
        }
        slice = &mut slice[written..];
        phase += written as u32;
    }
    phase
}

#[cfg(test)]
mod tests {
    use super::*;
    use osc_timecode_core::clock::BlockInput;
    use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};

    const PLAN: LtcPlan = LtcPlan { left: true, right: false, level_dbfs: -18.0, still: false, half_rate: false };

    /// Runs `blocks` (playing, position, len) through a clock and the renderer into a stereo
    /// signal whose input is all 0.5 (program audio); returns (left, right).
    fn run(
        rate: FrameRate,
        sr: u32,
        offset: i64,
        plan: LtcPlan,
        blocks: &[(bool, Option<i64>, u32)],
    ) -> (Vec<f32>, Vec<f32>, OutputStats) {
        let mut clock = FrameClock::new(sr, rate, offset);
        let mut ltc = LtcOut::default();
        let stats = OutputStats::default();
        let (mut left, mut right) = (Vec::new(), Vec::new());
        for &(playing, position, len) in blocks {
            clock.process_block(BlockInput { playing, position, loop_range: None, len }, |_| {});
            let (mut l, mut r) = (vec![0.5f32; len as usize], vec![0.5f32; len as usize]);
            ltc.render(plan, true, &clock, len as usize, &mut [&mut l[..], &mut r[..]], &stats);
            left.extend(l);
            right.extend(r);
        }
        (left, right, stats)
    }

    /// What the writer alone gives for `total` samples played from timeline sample `start`.
    fn reference(rate: FrameRate, sr: u32, offset: i64, start: i64, total: usize) -> Vec<f32> {
        let writer = LtcWriter::new(LtcFormat::new(rate, false).unwrap(), sr, -18.0, offset).unwrap();
        let mut out = vec![0.0; total];
        let clock_frame = frame_at_sample(start, sr, rate);
        let mut frame = clock_frame + offset;
        let mut into = (start - frame_start_sample(clock_frame, sr, rate)) as u32;
        let mut slice = &mut out[..];
        while !slice.is_empty() {
            let n = writer.fill(frame, into, slice);
            slice = &mut slice[n..];
            frame += 1;
            into = 0;
        }
        out
    }

    fn blocks_from(start: i64, sizes: &[u32], count: usize) -> Vec<(bool, Option<i64>, u32)> {
        let mut pos = start;
        (0..count)
            .map(|i| {
                let len = sizes[i % sizes.len()];
                let block = (true, Some(pos), len);
                pos += i64::from(len);
                block
            })
            .collect()
    }

    #[test]
    fn any_block_size_renders_what_one_long_write_renders() {
        for rate in [FrameRate::FPS_25, FrameRate::FPS_29_97_DF, FrameRate::FPS_23_976] {
            for sizes in [&[64u32][..], &[4096], &[1, 7, 333, 2048, 13]] {
                let blocks = blocks_from(1_000, sizes, 60);
                let total: usize = blocks.iter().map(|b| b.2 as usize).sum();
                let (left, right, stats) = run(rate, 48_000, 0, PLAN, &blocks);
                assert_eq!(left, reference(rate, 48_000, 0, 1_000, total), "{rate} {sizes:?}");
                assert!(right.iter().all(|s| *s == 0.5), "the other channel keeps its audio");
                let words =
                    frame_at_sample(1_000 + total as i64 - 1, 48_000, rate) - frame_at_sample(999, 48_000, rate);
                assert_eq!(stats.ltc_words.load(std::sync::atomic::Ordering::Relaxed), words as u64);
            }
        }
    }

    #[test]
    fn both_channels_carry_the_same_signal_and_off_passes_audio() {
        let blocks = blocks_from(0, &[512], 20);
        let plan = LtcPlan { right: true, ..PLAN };
        let (left, right, _) = run(FrameRate::FPS_30, 44_100, 0, plan, &blocks);
        assert_eq!(left, right);
        assert!(left.iter().any(|s| *s != 0.0));
        let (left, right, _) = run(FrameRate::FPS_30, 44_100, 0, LtcPlan::OFF, &blocks);
        assert!(left.iter().chain(&right).all(|s| *s == 0.5), "LTC off leaves the audio alone");
        let (left, right, _) = run(FrameRate::FPS_30, 44_100, 0, LtcPlan { left: false, right: true, ..PLAN }, &blocks);
        assert!(left.iter().all(|s| *s == 0.5) && right.iter().any(|s| *s != 0.5));
    }

    #[test]
    fn refused_rate_and_no_position_are_silence_not_audio() {
        let blocks = blocks_from(0, &[512], 20);
        let (left, _, stats) = run(FrameRate::FPS_50, 48_000, 0, PLAN, &blocks);
        assert!(left.iter().all(|s| *s == 0.0), "50 fps without half rate: silence on the LTC channel");
        assert_eq!(stats.ltc_rate_refused.load(std::sync::atomic::Ordering::Relaxed), 50 * 512 * 20 / 48_000 + 1);
        let (left, _, _) = run(FrameRate::FPS_50, 48_000, 0, LtcPlan { half_rate: true, ..PLAN }, &blocks);
        assert!(left.iter().any(|s| *s != 0.0), "with half rate it is carried");
        let (left, _, _) = run(FrameRate::FPS_25, 48_000, 0, PLAN, &[(true, None, 512)]);
        assert!(left.iter().all(|s| *s == 0.0));
    }

    #[test]
    fn parked_is_silence_or_the_parked_word_repeated() {
        let parked = [(false, Some(5_000), 1_000); 6];
        let (left, _, _) = run(FrameRate::FPS_25, 48_000, 0, PLAN, &parked);
        assert!(left.iter().all(|s| *s == 0.0));
        let (left, _, _) = run(FrameRate::FPS_25, 48_000, 0, LtcPlan { still: true, ..PLAN }, &parked);
        // Frame 2 (5000 / 1920) repeated from its start: 1920-sample words.
        let word = reference(FrameRate::FPS_25, 48_000, 0, frame_start_sample(2, 48_000, FrameRate::FPS_25), 1_920);
        for (i, chunk) in left.chunks(1_920).enumerate() {
            assert_eq!(chunk, &word[..chunk.len()], "repeat {i}");
        }
    }

    #[test]
    fn words_are_counted_once_each_and_pairs_once_at_half_rate() {
        use std::sync::atomic::Ordering::Relaxed;
        // 2 s at 50 fps from 0: 100 frames, 50 words at half rate.
        let blocks = blocks_from(0, &[480], 200);
        let (_, _, stats) = run(FrameRate::FPS_50, 48_000, 0, LtcPlan { half_rate: true, ..PLAN }, &blocks);
        assert_eq!(stats.ltc_words.load(Relaxed), 50);
        let (_, _, stats) = run(FrameRate::FPS_25, 48_000, 0, PLAN, &blocks);
        assert_eq!(stats.ltc_words.load(Relaxed), 50);
    }

    #[test]
    fn a_start_offset_labels_the_words_and_keeps_the_clock_s_frame_starts() {
        let offset = osc_timecode_core::clock::offset_frames(3_600, FrameRate::FPS_25);
        let blocks = blocks_from(0, &[480], 10);
        let (left, _, _) = run(FrameRate::FPS_25, 48_000, offset, PLAN, &blocks);
        assert_eq!(left, reference(FrameRate::FPS_25, 48_000, offset, 0, 4_800));
    }
}
