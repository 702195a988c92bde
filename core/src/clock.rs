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
//!   discontinuity.
//!
//! Frame numbers include the start offset and are never wrapped; the label wraps (see
//! [`crate::timecode`]).

use crate::rate::FrameRate;
use crate::timecode::{frame_at_sample, frame_start_sample};

/// How far (in samples) a host position may differ from the expected one and still count as
/// continuous playback.
pub const WOBBLE_SAMPLES: i64 = 1;

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
    /// Hz, fixed for an activation.
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
}

impl FrameClock {
    /// A clock at `sample_rate` Hz (must be non-zero) counting `rate` frames, with the timeline's
    /// sample 0 shown as frame `offset_frames`.
    pub fn new(sample_rate: u32, rate: FrameRate, offset_frames: i64) -> Self {
        Self {
            sample_rate: sample_rate.max(1),
            rate,
            offset_frames,
            expected: None,
            last_played: None,
            parked: None,
            was_playing: false,
        }
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

    /// Reports the frames of one block through `emit`, in order.
    pub fn process_block(&mut self, block: BlockInput, mut emit: impl FnMut(FrameEvent)) {
        let Some(pos) = block.position else {
            self.resync();
            self.was_playing = false;
            return;
        };
        if block.playing {
            self.process_playing(pos, block, &mut emit);
        } else {
            self.process_stopped(pos, &mut emit);
        }
        self.was_playing = block.playing;
    }

    fn process_playing(&mut self, pos: i64, block: BlockInput, emit: &mut impl FnMut(FrameEvent)) {
        let near = |a: i64, b: i64| (a - b).abs() <= WOBBLE_SAMPLES;
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
        loop {
            let block_end = seg_start + remaining;
            // The loop start the host jumps back to, if this segment crosses the loop end.
            let wrap = block.loop_range.filter(|&(ls, le)| le > ls && seg_start < le && block_end > le);
            let seg_end = wrap.map_or(block_end, |(_, le)| le);
            self.emit_segment(seg_start, seg_end, seg_offset, discontinuity.take(), emit);
            let Some((ls, _)) = wrap else {
                self.expected = Some(seg_end);
                break;
            };
            // The host plays the rest of the block from the loop start.
            seg_offset += seg_end - seg_start;
            remaining -= seg_end - seg_start;
            seg_start = ls;
            discontinuity = Some(Break { jump: true, looped: true });
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

    fn process_stopped(&mut self, pos: i64, emit: &mut impl FnMut(FrameEvent)) {
        let frame = frame_at_sample(pos, self.sample_rate, self.rate);
        let previous = match self.parked {
            Some((_, parked_frame)) => Some(parked_frame),
            None if self.was_playing => self.last_played,
            None => None,
        };
        let changed = self.parked.is_none_or(|(_, f)| f != frame);
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
            frame: timeline_frame + self.offset_frames,
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
}
