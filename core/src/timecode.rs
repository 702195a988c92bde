//! SMPTE timecode labels and the exact conversions between samples, frames and labels.
//!
//! Three coordinates, all integers:
//! - **sample position** `i64` at an integer sample rate (Hz);
//! - **frame index** `i64`: frame 0 starts at sample 0; negative before zero, unbounded after
//!   a day (the index is never wrapped);
//! - **label** [`Timecode`]: `HH:MM:SS:FF` within one day, drop-frame per SMPTE ST 12-1.
//!
//! Conventions (the reference data in `shared/reference/README.md` follows the same ones):
//! - sample → frame is `floor(sample * num / (den * rate))`, toward −∞ for pre-roll too; a
//!   sample exactly on a boundary belongs to the new frame;
//! - frame → label is defined for every integer, modulo the frames in a day (`rem_euclid`): frame
//!   −1 is `23:59:59:FF` as a hardware generator shows when cued before midnight, and a position
//!   past 24 h wraps to `00:00:00:00`;
//! - label → frame returns the index within the day, `[0, frames_per_day)`;
//! - parsing is strict: a dropped label (`00:01:00;00` at 29.97 DF), an out-of-range field or
//!   the wrong separator is an error, never mapped onto a neighbouring frame.
//!
//! Nothing here allocates except [`Timecode`]'s `Display`/error paths; [`Timecode::label`] writes
//! the text into a fixed array so the audio and network threads can format without the heap.

use std::fmt;

use crate::rate::FrameRate;

/// A label within one day at a given rate. Always valid: constructed only through checked paths.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timecode {
    /// 0..=23.
    hours: u8,
    /// 0..=59.
    minutes: u8,
    /// 0..=59.
    seconds: u8,
    /// 0..nominal-1, never a dropped label.
    frames: u8,
    /// The rate the label counts in.
    rate: FrameRate,
}

/// Why a label or timecode text was refused. The variants match the `reason` column of
/// `shared/reference/invalid_timecodes.csv`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimecodeError {
    /// Not `HH:MM:SS:FF` / `HH:MM:SS;FF` with two digits a field.
    #[error("malformed timecode {0:?}: expected HH:MM:SS:FF (HH:MM:SS;FF for drop-frame)")]
    Malformed(String),
    /// A field past its range (hours ≥ 24, minutes or seconds ≥ 60, frames ≥ the nominal rate).
    #[error("timecode {text} out of range at {rate}")]
    OutOfRange {
        /// The label as given.
        text: String,
        /// The rate it was checked against.
        rate: FrameRate,
    },
    /// `;` on a non-drop rate or `:` before the frames on a drop-frame rate.
    #[error("timecode {text}: wrong separator for {rate} ({})", if rate.is_drop() { "drop-frame uses ';' before the frames" } else { "non-drop uses ':' before the frames" })]
    WrongSeparator {
        /// The label as given.
        text: String,
        /// The rate it was checked against.
        rate: FrameRate,
    },
    /// A label that drop-frame numbering skips (`00:01:00;00` at 29.97 DF).
    #[error("timecode {text} does not exist at {rate}: drop-frame skips it")]
    DroppedLabel {
        /// The label as given.
        text: String,
        /// The rate it was checked against.
        rate: FrameRate,
    },
}

/// A label as fixed-size ASCII text, `HH:MM:SS:FF` or `HH:MM:SS;FF`. `Copy`, no heap.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Label([u8; 11]);

impl Label {
    /// The label as `&str`.
    pub fn as_str(&self) -> &str {
        // PANIC: only ASCII digits and separators are ever written.
        std::str::from_utf8(&self.0).expect("label is ASCII")
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Timecode {
    /// The label of `frame` (any integer; wrapped into the day with `rem_euclid`).
    pub fn from_frame(frame: i64, rate: FrameRate) -> Self {
        let day = rate.frames_per_day();
        let mut f = frame.rem_euclid(day);
        let drop = i64::from(rate.dropped_per_minute());
        let nominal = i64::from(rate.nominal());
        if drop > 0 {
            // Frames per ten minutes and per dropped minute; ST 12-1 drops labels, never frames.
            let per_ten = 600 * nominal - 9 * drop;
            let per_minute = 60 * nominal - drop;
            let tens = f / per_ten;
            let rest = f % per_ten;
            f += 9 * drop * tens;
            if rest >= drop {
                f += drop * ((rest - drop) / per_minute);
            }
        }
        let frames = f % nominal;
        let total_seconds = f / nominal;
        Self {
            hours: (total_seconds / 3600) as u8,
            minutes: (total_seconds / 60 % 60) as u8,
            seconds: (total_seconds % 60) as u8,
            frames: frames as u8,
            rate,
        }
    }

    /// A checked label from its fields.
    pub fn new(hours: u8, minutes: u8, seconds: u8, frames: u8, rate: FrameRate) -> Result<Self, TimecodeError> {
        let tc = Self { hours, minutes, seconds, frames, rate };
        if hours >= 24 || minutes >= 60 || seconds >= 60 || u32::from(frames) >= rate.nominal() {
            return Err(TimecodeError::OutOfRange { text: tc.fields_text(), rate });
        }
        if seconds == 0 && minutes % 10 != 0 && u32::from(frames) < rate.dropped_per_minute() {
            return Err(TimecodeError::DroppedLabel { text: tc.fields_text(), rate });
        }
        Ok(tc)
    }

    /// Strict parse of `HH:MM:SS:FF` (non-drop) or `HH:MM:SS;FF` (drop-frame).
    pub fn parse(text: &str, rate: FrameRate) -> Result<Self, TimecodeError> {
        let malformed = || TimecodeError::Malformed(text.to_owned());
        let b = text.as_bytes();
        if b.len() != 11 || b[2] != b':' || b[5] != b':' || !(b[8] == b':' || b[8] == b';') {
            return Err(malformed());
        }
        let field = |i: usize| -> Option<u8> {
            let (hi, lo) = (b[i], b[i + 1]);
            (hi.is_ascii_digit() && lo.is_ascii_digit()).then(|| (hi - b'0') * 10 + (lo - b'0'))
        };
        let (Some(h), Some(m), Some(s), Some(f)) = (field(0), field(3), field(6), field(9)) else {
            return Err(malformed());
        };
        if (b[8] == b';') != rate.is_drop() {
            return Err(TimecodeError::WrongSeparator { text: text.to_owned(), rate });
        }
        Self::new(h, m, s, f, rate).map_err(|e| match e {
            TimecodeError::OutOfRange { rate, .. } => TimecodeError::OutOfRange { text: text.to_owned(), rate },
            TimecodeError::DroppedLabel { rate, .. } => TimecodeError::DroppedLabel { text: text.to_owned(), rate },
            other => other,
        })
    }

    /// The index of this label within the day, `[0, frames_per_day)`.
    pub fn to_frame(self) -> i64 {
        let nominal = i64::from(self.rate.nominal());
        let minutes = i64::from(self.hours) * 60 + i64::from(self.minutes);
        let labels = (minutes * 60 + i64::from(self.seconds)) * nominal + i64::from(self.frames);
        labels - i64::from(self.rate.dropped_per_minute()) * (minutes - minutes / 10)
    }

    /// Hours, 0..=23.
    pub fn hours(self) -> u8 {
        self.hours
    }
    /// Minutes, 0..=59.
    pub fn minutes(self) -> u8 {
        self.minutes
    }
    /// Seconds, 0..=59.
    pub fn seconds(self) -> u8 {
        self.seconds
    }
    /// Frames within the second, 0..nominal-1.
    pub fn frames(self) -> u8 {
        self.frames
    }
    /// The rate the label counts in.
    pub fn rate(self) -> FrameRate {
        self.rate
    }

    /// The label as fixed-size text, without touching the heap.
    pub fn label(self) -> Label {
        let sep = if self.rate.is_drop() { b';' } else { b':' };
        let d = |v: u8| [b'0' + v / 10, b'0' + v % 10];
        let [h0, h1] = d(self.hours);
        let [m0, m1] = d(self.minutes);
        let [s0, s1] = d(self.seconds);
        let [f0, f1] = d(self.frames);
        Label([h0, h1, b':', m0, m1, b':', s0, s1, sep, f0, f1])
    }

    fn fields_text(self) -> String {
        let sep = if self.rate.is_drop() { ';' } else { ':' };
        format!("{:02}:{:02}:{:02}{sep}{:02}", self.hours, self.minutes, self.seconds, self.frames)
    }
}

impl fmt::Display for Timecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label().as_str())
    }
}

impl fmt::Debug for Timecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timecode({} @ {})", self.label(), self.rate)
    }
}

/// The frame that sample `sample` falls in: `floor(sample * num / (den * sample_rate))`.
/// Exact for every `i64` sample position (i128 intermediate). `sample_rate` must be non-zero.
pub fn frame_at_sample(sample: i64, sample_rate: u32, rate: FrameRate) -> i64 {
    let n = i128::from(sample) * i128::from(rate.num());
    let d = i128::from(rate.den()) * i128::from(sample_rate.max(1));
    n.div_euclid(d) as i64
}

/// The first sample of frame `frame`: the smallest sample `s` with `frame_at_sample(s) == frame`,
/// `ceil(frame * den * sample_rate / num)`.
pub fn frame_start_sample(frame: i64, sample_rate: u32, rate: FrameRate) -> i64 {
    let n = i128::from(frame) * i128::from(rate.den()) * i128::from(sample_rate.max(1));
    let d = i128::from(rate.num());
    // ceil(n / d) = -floor(-n / d)
    (-(-n).div_euclid(d)) as i64
}

/// The instant frame `frame` starts, in nanoseconds from zero: `frame * den / num` seconds,
/// rounded toward −∞ to the nanosecond.
pub fn frame_start_nanos(frame: i64, rate: FrameRate) -> i128 {
    (i128::from(frame) * i128::from(rate.den()) * 1_000_000_000).div_euclid(i128::from(rate.num()))
}

/// The frame playing at `nanos` nanoseconds from zero: `floor(nanos * num / (den * 1e9))`.
pub fn frame_at_nanos(nanos: i128, rate: FrameRate) -> i64 {
    (nanos * i128::from(rate.num())).div_euclid(i128::from(rate.den()) * 1_000_000_000) as i64
}
