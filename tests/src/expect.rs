//! What the plugin must send, derived from what the transport model played
//! ([`crate::transport::Played`]) with core's frame arithmetic only
//! (`frame_at_sample`, `Timecode::from_frame`), and the comparison with what arrived.
//!
//! The rules (from `core/src/clock.rs`'s contract):
//! - a played span after a discontinuity (start, locate, loop wrap) first reports the frame
//!   containing its first sample, with `jump` (and `looped` for a loop wrap); starting to roll
//!   exactly where the transport was parked is not a jump;
//! - after that, every frame whose first sample lies in the span, once, in order; contiguous
//!   spans are one span;
//! - a stopped block reports the parked frame on the transition from playing, and (with "Send
//!   While Stopped") whenever the parked frame changes; `jump` unless it is the last frame or the
//!   one after it;
//! - a block without transport reports nothing and breaks continuity.
//!
//! Keep-alive repeats are not modelled: tests that compare whole streams turn them off.

use osc_timecode_core::protocol::TimecodeMessage;
use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_core::{FrameRate, Timecode};

use crate::receiver::Packet;
use crate::transport::{Played, SpanStart};

/// One expected message (frame numbers include the start offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Absolute frame.
    pub frame: i64,
    /// Rolling.
    pub playing: bool,
    /// Discontinuity.
    pub jump: bool,
    /// Loop wrap.
    pub looped: bool,
}

/// The frame/label context of a run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Hz.
    pub sample_rate: u32,
    /// Frame rate.
    pub rate: FrameRate,
    /// Start offset in frames (the label of timeline sample 0).
    pub offset_frames: i64,
    /// "Send While Stopped" is on.
    pub send_stopped: bool,
}

impl Timing {
    /// Playing at `rate`, no offset, "Send While Stopped" on.
    pub fn new(sample_rate: u32, rate: FrameRate) -> Self {
        Self { sample_rate, rate, offset_frames: 0, send_stopped: true }
    }

    /// With a start offset of `seconds` of label (as the plugin's "Start Offset" parameter).
    pub fn with_offset_seconds(mut self, seconds: u32) -> Self {
        self.offset_frames = offset_frames(seconds, self.rate);
        self
    }

    fn frame(&self, sample: i64) -> i64 {
        frame_at_sample(sample, self.sample_rate, self.rate)
    }
}

/// Frames of a start offset of `seconds` of label: the index of label `HH:MM:SS:00`.
pub fn offset_frames(seconds: u32, rate: FrameRate) -> i64 {
    let tc = Timecode::new((seconds / 3600) as u8, (seconds / 60 % 60) as u8, (seconds % 60) as u8, 0, rate)
        .expect("offset label is valid");
    tc.to_frame()
}

/// The messages the plugin must send for `history`.
pub fn expected(history: &[Played], t: Timing) -> Vec<Expected> {
    let mut out = Vec::new();
    let mut last_played: Option<i64> = None;
    let mut parked: Option<i64> = None;
    let mut was_playing = false;
    let push = |out: &mut Vec<Expected>, frame: i64, playing: bool, jump: bool, looped: bool| {
        out.push(Expected { frame: frame + t.offset_frames, playing, jump, looped });
    };
    for item in history {
        match *item {
            Played::Span { start, end, how } => {
                let first = t.frame(start);
                let last = t.frame(end - 1);
                let mut next = first;
                match how {
                    SpanStart::Continue => {
                        if osc_timecode_core::timecode::frame_start_sample(first, t.sample_rate, t.rate) != start {
                            next = first + 1;
                        }
                        if let Some(l) = last_played {
                            next = next.max(l + 1);
                        }
                    }
                    _ => {
                        let jump = how != SpanStart::StartFromParked;
                        push(&mut out, first, true, jump, how == SpanStart::Loop);
                        next = first + 1;
                        last_played = Some(first);
                    }
                }
                while next <= last {
                    push(&mut out, next, true, false, false);
                    last_played = Some(next);
                    next += 1;
                }
                parked = None;
                was_playing = true;
            }
            Played::Parked(pos) => {
                let frame = t.frame(pos);
                let previous = match parked {
                    Some(p) => Some(p),
                    None if was_playing => last_played,
                    None => None,
                };
                let changed = parked != Some(frame);
                if was_playing || (changed && t.send_stopped) {
                    let jump = previous.is_none_or(|p| frame != p && frame != p + 1);
                    push(&mut out, frame, false, jump, false);
                }
                parked = Some(frame);
                last_played = None;
                was_playing = false;
            }
            Played::NoTransport => {
                last_played = None;
                parked = None;
                was_playing = false;
            }
        }
    }
    out
}

/// Checks `got` against `want`: same frames in the same order with the same flags, labels and
/// fields that are core's for each frame at `rate`, and sequence numbers that go up by one.
/// Panics with the first difference and its neighbourhood.
pub fn assert_stream(got: &[TimecodeMessage], want: &[Expected], rate: FrameRate, what: &str) {
    let first_diff = got.iter().zip(want).position(|(g, w)| !matches(g, w, rate));
    let diff_at = match first_diff {
        Some(i) => Some(i),
        None if got.len() != want.len() => Some(got.len().min(want.len())),
        None => None,
    };
    if let Some(i) = diff_at {
        let lo = i.saturating_sub(3);
        let show = |v: &[String]| v.iter().skip(lo).take(8).cloned().collect::<Vec<_>>().join("\n    ");
        let g: Vec<String> = got.iter().map(describe).collect();
        let w: Vec<String> = want.iter().map(|e| describe_expected(e, rate)).collect();
        panic!(
            "{what}: streams differ at message {i} (got {} messages, want {})\n  got  [{lo}..]:\n    {}\n  want [{lo}..]:\n    {}",
            got.len(),
            want.len(),
            show(&g),
            show(&w),
        );
    }
    assert_seq_consecutive(got, what);
}

/// Sequence numbers go up by exactly one from message to message.
pub fn assert_seq_consecutive(got: &[TimecodeMessage], what: &str) {
    for (i, pair) in got.windows(2).enumerate() {
        assert_eq!(
            pair[1].seq,
            pair[0].seq + 1,
            "{what}: seq must go up by 1 (messages {i} and {}: {} then {})",
            i + 1,
            describe(&pair[0]),
            describe(&pair[1]),
        );
    }
}

/// Every packet is a bundle whose timetag lies within `slack` of when it arrived.
///
/// Timetags are not required to increase: a frame's due time is its block's start instant plus
/// its offset, and the harness processes blocks much faster than real time, so a block's first
/// frame can be due before the previous block's last one (a real-time host never does that).
pub fn assert_timetags(packets: &[Packet], slack: std::time::Duration, what: &str) {
    for (i, p) in packets.iter().enumerate() {
        let tag = osc_timecode_core::protocol::system_time_from_timetag(p.timetag());
        let off = match tag.duration_since(p.wall) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        assert!(off <= slack, "{what}: packet {i}'s timetag is {off:?} away from its arrival (slack {slack:?})");
    }
}

fn matches(g: &TimecodeMessage, w: &Expected, rate: FrameRate) -> bool {
    g.frame == w.frame
        && g.playing == w.playing
        && g.jump == w.jump
        && g.looped == w.looped
        && g.rate() == rate
        && g.timecode == Timecode::from_frame(w.frame, rate)
}

/// One line for a received message.
pub fn describe(m: &TimecodeMessage) -> String {
    format!(
        "{} frame {} {}{}{} seq {} @ {}",
        m.timecode,
        m.frame,
        if m.playing { "play" } else { "parked" },
        if m.jump { " JUMP" } else { "" },
        if m.looped { " LOOP" } else { "" },
        m.seq,
        m.rate(),
    )
}

fn describe_expected(e: &Expected, rate: FrameRate) -> String {
    format!(
        "{} frame {} {}{}{} @ {}",
        Timecode::from_frame(e.frame, rate),
        e.frame,
        if e.playing { "play" } else { "parked" },
        if e.jump { " JUMP" } else { "" },
        if e.looped { " LOOP" } else { "" },
        rate,
    )
}
