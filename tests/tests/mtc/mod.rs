//! MTC out of the plugin, read by a decoder nobody here wrote: mido 1.3.3 (PyPI), through core's
//! `core/tests/interop/mtc_check.py` (shared with `core/tests/mtc_interop.rs`). Included by the
//! host tests (`host/clap_mtc.rs`, `host/vst3.rs`) and the Ardour test with `#[path]`.
//!
//! A stretch of continuous play (a [`Segment`]) goes to the script with its messages at the
//! timeline samples they play at: it parses each with `mido.Parser`, checks that the quarter
//! frames are exactly those the spec's timing rule puts in the stretch (sample and piece), and
//! reassembles each 8-piece sequence; this side checks the values against the labels of core's
//! `Timecode` (not the encoder). [`check_history`] cuts a run into segments from what the
//! transport model says it played, and checks that full frames came exactly where the receiver
//! must be told: each start of play, locate and loop wrap, and each new park position (a stop).

#![allow(dead_code, reason = "each test binary uses its part")]

use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::transport::{Played, SpanStart};

#[path = "../../../core/tests/interop/mido.rs"]
mod mido;

pub use mido::require_mido;
use mido::{check, hex};

/// The clock MTC was sent from. `Copy`.
#[derive(Debug, Clone, Copy)]
pub struct MtcTiming {
    /// Hz.
    pub sample_rate: u32,
    /// The plugin's frame rate.
    pub rate: FrameRate,
    /// Start offset, frames.
    pub offset_frames: i64,
    /// MTC's rate code for `rate` (0 = 24, 1 = 25, 2 = 29.97 DF, 3 = 30).
    pub code: u32,
}

impl MtcTiming {
    /// Our frames per MTC frame (2 above 30 fps: half-rate mode).
    fn step(self) -> i64 {
        if self.rate.nominal() > 30 { 2 } else { 1 }
    }

    /// `[hh, mm, ss, ff, code]` MTC carries for our frame `frame`: its label, frames halved in
    /// half-rate mode.
    fn fields(self, frame: i64) -> [u32; 5] {
        let tc = Timecode::from_frame(frame, self.rate);
        let ff = u32::from(tc.frames()) / self.step() as u32;
        [u32::from(tc.hours()), u32::from(tc.minutes()), u32::from(tc.seconds()), ff, self.code]
    }

    /// Our frame (offset included) under timeline sample `sample`.
    fn frame_at(self, sample: i64) -> i64 {
        frame_at_sample(sample, self.sample_rate, self.rate) + self.offset_frames
    }
}

/// A message as the host saw it: its sample in the run and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Sample in the run (the run's first processed sample is 0).
    pub sample: i64,
    /// The raw MIDI bytes.
    pub bytes: Vec<u8>,
}

/// One stretch the receiver must read as continuous: play of timeline samples `[begin, end)`, or
/// a park at `begin` (`end == begin`), with its messages at the timeline samples they play at.
#[derive(Debug, Clone, Default)]
pub struct Segment {
    /// First timeline sample.
    pub begin: i64,
    /// One past the last (equal to `begin` for a park).
    pub end: i64,
    /// (timeline sample, bytes), in order.
    pub messages: Vec<(i64, Vec<u8>)>,
}

/// What the script found in a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Quarter frames.
    pub quarters: usize,
    /// Complete 8-piece sequences.
    pub sequences: usize,
    /// Full frames: the timeline sample each was sent at.
    pub full_frames: Vec<i64>,
}

/// Checks one segment with mido: every message one MTC message, the quarter frames exactly those
/// due in `[begin, end)`, every sequence and full frame carrying the label of the frame under the
/// sample it starts at.
pub fn check_segment(t: MtcTiming, segment: &Segment, what: &str) -> Checked {
    let mut input = format!(
        "{} {} {} {} {} {} {}\n",
        t.rate.num(),
        t.rate.den(),
        t.sample_rate,
        t.offset_frames,
        t.step(),
        segment.begin,
        segment.end
    );
    for (sample, bytes) in &segment.messages {
        input += &format!("{sample} {}\n", hex(bytes));
    }
    let out = check(&input, what);
    let mut checked = Checked::default();
    for line in out.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "ok" => checked.quarters = f[1].parse().expect("a count"),
            "seq" | "full" => {
                let at: i64 = f[1].parse().expect("a sample");
                let got: Vec<u32> = f[2..7].iter().map(|v| v.parse().expect("a number")).collect();
                let frame = t.frame_at(at);
                assert_eq!(got, t.fields(frame), "{what}: mido read {line:?}, frame {frame} is not that");
                if f[0] == "seq" {
                    checked.sequences += 1;
                    assert_eq!(frame.rem_euclid(2 * t.step()), 0, "{what}: a sequence starts on an even MTC frame");
                } else {
                    checked.full_frames.push(at);
                }
            }
            other => panic!("{what}: checker said {other:?}"),
        }
    }
    checked
}

/// Checks a run's MTC against what the transport played (`history`, from the transport's
/// creation; `parked_len` samples per parked or transport-less block): a full frame exactly at
/// the first sample of each span that starts play (start, locate, loop wrap) and of each block
/// parked at a new position, none elsewhere; each span's quarter frames exactly those due and
/// every value right ([`check_segment`]); nothing while parked at the same position or without
/// transport. Returns (quarter frames, complete sequences, full frames) over the run.
pub fn check_history(t: MtcTiming, history: &[Played], parked_len: i64, sent: &[Sent], what: &str) -> Checked {
    let mut total = Checked::default();
    let mut audio = 0i64;
    let mut rest = sent;
    let mut previous: Option<Played> = None;
    for (i, played) in history.iter().enumerate() {
        let (len, begin, end, fresh) = match *played {
            Played::Span { start, end, how } => (end - start, start, end, how != SpanStart::Continue),
            Played::Parked(p) => (parked_len, p, p, previous != Some(Played::Parked(p))),
            Played::NoTransport => (parked_len, 0, 0, false),
        };
        let here = rest.iter().take_while(|m| m.sample < audio + len).count();
        let (mine, later) = rest.split_at(here);
        rest = later;
        let what = format!("{what}, history item {i} {played:?} at run sample {audio}");
        let timeline = |m: &Sent| match played {
            Played::Span { start, .. } => start + (m.sample - audio),
            _ => begin,
        };
        let fulls: Vec<i64> = mine.iter().filter(|m| m.bytes[0] == 0xf0).map(|m| m.sample).collect();
        match (played, fresh) {
            (Played::NoTransport, _) | (Played::Parked(_), false) => {
                assert!(mine.is_empty(), "{what}: nothing is due, sent {mine:?}")
            }
            _ => {
                assert_eq!(fulls, [audio], "{what}: one full frame, at the first sample, must tell where we are");
                let segment =
                    Segment { begin, end, messages: mine.iter().map(|m| (timeline(m), m.bytes.clone())).collect() };
                let checked = check_segment(t, &segment, &what);
                total.quarters += checked.quarters;
                total.sequences += checked.sequences;
                total.full_frames.extend(checked.full_frames);
            }
        }
        audio += len;
        previous = Some(*played);
    }
    assert!(rest.is_empty(), "{what}: messages after the history's end: {rest:?}");
    total
}
