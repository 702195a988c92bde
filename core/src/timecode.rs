//! SMPTE timecode labels and the exact conversions between samples, frames and labels.
//!
//! Three coordinates, all integers:
//! - **sample position** `i64` at an integer sample rate (Hz);
//! - **frame index** `i64`: frame 0 starts at sample 0; negative before zero, unbounded after
//!   a day (the index is never wrapped);
//! - **label** [`Timecode`]: `HH:MM:SS:FF` within one day, drop-frame per SMPTE ST 12-1.
//!
//! Conventions (the reference data in `core/tests/data/README.md` follows the same ones):
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
/// `core/tests/data/invalid_timecodes.csv`.
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
        if seconds == 0 && !minutes.is_multiple_of(10) && u32::from(frames) < rate.dropped_per_minute() {
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

/// `v` clamped into `i64`: results past the `i64` range saturate instead of wrapping round to
/// the other sign.
fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The frame that sample `sample` falls in: `floor(sample * num / (den * sample_rate))`.
/// Exact for every `i64` sample position (i128 intermediate); saturates at `i64::MIN`/`MAX` in
/// the one case the frame does not fit (sample rates below 60 Hz). `sample_rate` must be non-zero.
pub fn frame_at_sample(sample: i64, sample_rate: u32, rate: FrameRate) -> i64 {
    let n = i128::from(sample) * i128::from(rate.num());
    let d = i128::from(rate.den()) * i128::from(sample_rate.max(1));
    saturate(n.div_euclid(d))
}

/// The first sample of frame `frame`: the smallest sample `s` with `frame_at_sample(s) == frame`,
/// `ceil(frame * den * sample_rate / num)`. Frames whose start lies beyond the `i64` sample range
/// (more than 1.5 million years of 192 kHz audio away) saturate at `i64::MIN`/`MAX`.
pub fn frame_start_sample(frame: i64, sample_rate: u32, rate: FrameRate) -> i64 {
    let n = i128::from(frame) * i128::from(rate.den()) * i128::from(sample_rate.max(1));
    let d = i128::from(rate.num());
    // ceil(n / d) = -floor(-n / d)
    saturate(-(-n).div_euclid(d))
}

/// The first whole nanosecond of frame `frame`: `frame * den / num` seconds rounded up, so that
/// `frame_at_nanos(frame_start_nanos(f)) == f` (a scheduler sleeping until this instant is
/// inside the frame, never one nanosecond early).
pub fn frame_start_nanos(frame: i64, rate: FrameRate) -> i128 {
    let n = i128::from(frame) * i128::from(rate.den()) * 1_000_000_000;
    -(-n).div_euclid(i128::from(rate.num()))
}

/// The frame playing at `nanos` nanoseconds from zero: `floor(nanos * num / (den * 1e9))`,
/// saturating at `i64::MIN`/`MAX` for instants whose frame does not fit.
pub fn frame_at_nanos(nanos: i128, rate: FrameRate) -> i64 {
    // Past ±2^100 ns (4 × 10^13 years) the frame is beyond i64 at every rate, so clamping there
    // changes no representable result and keeps the product inside i128.
    let nanos = nanos.clamp(-(1 << 100), 1 << 100);
    saturate((nanos * i128::from(rate.num())).div_euclid(i128::from(rate.den()) * 1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label fields `[hours, minutes, seconds, frames]`.
    type Fields = [u8; 4];

    fn fields(tc: Timecode) -> Fields {
        [tc.hours(), tc.minutes(), tc.seconds(), tc.frames()]
    }

    /// The expected text of a label, built independently of `Timecode::label`.
    fn text([h, m, s, f]: Fields, rate: FrameRate) -> String {
        let sep = if rate.is_drop() { ';' } else { ':' };
        format!("{h:02}:{m:02}:{s:02}{sep}{f:02}")
    }

    /// The label of the last frame of the day: `23:59:59:FF`.
    fn last_of_day(rate: FrameRate) -> Fields {
        [23, 59, 59, rate.nominal() as u8 - 1]
    }

    /// Every frame of the day, in order, against an odometer that counts labels like a hardware
    /// generator (independent of the division-based conversion): frames roll into seconds at the
    /// nominal rate and a drop-frame minute not divisible by ten starts at `dropped_per_minute`.
    /// `from_frame` must give the odometer's label, its text must parse back to the same timecode
    /// (the strict parser accepts one spelling per label, so this pins the text too), and
    /// `to_frame` must give the frame back. Catches any skipped, repeated or misplaced label, not
    /// only inconsistent pairs. 34 million frames over the ten rates: ~6 s of CPU in debug.
    fn exhaustive_day(rate: FrameRate) {
        let day = rate.frames_per_day();
        let nominal = rate.nominal() as u8;
        let drop = rate.dropped_per_minute() as u8;
        // The odometer, inline (this loop runs 34 million times in debug builds).
        let [mut h, mut m, mut s, mut f] = [0u8; 4];
        for frame in 0..day {
            let tc = Timecode::from_frame(frame, rate);
            if (tc.hours, tc.minutes, tc.seconds, tc.frames) != (h, m, s, f) {
                panic!("{rate}: frame {frame} is {tc}, counting labels gives {}", text([h, m, s, f], rate));
            }
            let label = tc.label();
            match Timecode::parse(label.as_str(), rate) {
                Ok(parsed) if parsed == tc => {}
                other => panic!("{rate}: parse({label}) = {other:?}, expected {tc:?}"),
            }
            let back = tc.to_frame();
            if back != frame {
                panic!("{rate}: frame {frame} -> {label} -> frame {back}");
            }
            f += 1;
            if f == nominal {
                f = 0;
                s += 1;
                if s == 60 {
                    s = 0;
                    m += 1;
                    if m == 60 {
                        m = 0;
                        h = (h + 1) % 24;
                    }
                    if m % 10 != 0 {
                        f = drop;
                    }
                }
            }
        }
        // After the last label of the day the odometer wraps to midnight: the day is exactly
        // `frames_per_day` labels long.
        assert_eq!(
            [h, m, s, f],
            [0, 0, 0, 0],
            "{rate}: {day} frames did not end the day at {}",
            text(last_of_day(rate), rate)
        );
    }

    #[test]
    fn exhaustive_day_23_976() {
        exhaustive_day(FrameRate::FPS_23_976);
    }
    #[test]
    fn exhaustive_day_24() {
        exhaustive_day(FrameRate::FPS_24);
    }
    #[test]
    fn exhaustive_day_25() {
        exhaustive_day(FrameRate::FPS_25);
    }
    #[test]
    fn exhaustive_day_29_97_ndf() {
        exhaustive_day(FrameRate::FPS_29_97_NDF);
    }
    #[test]
    fn exhaustive_day_29_97_df() {
        exhaustive_day(FrameRate::FPS_29_97_DF);
    }
    #[test]
    fn exhaustive_day_30() {
        exhaustive_day(FrameRate::FPS_30);
    }
    #[test]
    fn exhaustive_day_50() {
        exhaustive_day(FrameRate::FPS_50);
    }
    #[test]
    fn exhaustive_day_59_94_ndf() {
        exhaustive_day(FrameRate::FPS_59_94_NDF);
    }
    #[test]
    fn exhaustive_day_59_94_df() {
        exhaustive_day(FrameRate::FPS_59_94_DF);
    }
    #[test]
    fn exhaustive_day_60() {
        exhaustive_day(FrameRate::FPS_60);
    }

    /// For every minute of the day at every rate: the first label of the minute and the last
    /// label before it, frame → label → frame. The frame where each minute starts is summed from
    /// minute lengths (60 × nominal, less the dropped labels), independently of `from_frame`.
    /// At the drop-frame rates, the skipped labels of each minute must be refused and the labels
    /// of minutes divisible by ten accepted.
    #[test]
    fn every_minute_boundary_of_the_day() {
        for rate in FrameRate::ALL {
            let day = rate.frames_per_day();
            let nominal = i64::from(rate.nominal());
            let drop = rate.dropped_per_minute() as u8;
            let mut start = 0i64;
            for minute in 0..1440u32 {
                let (h, m) = ((minute / 60) as u8, (minute % 60) as u8);
                let dropping = m % 10 != 0;
                let first: Fields = [h, m, 0, if dropping { drop } else { 0 }];
                let before: Fields = if minute == 0 {
                    last_of_day(rate)
                } else {
                    [((minute - 1) / 60) as u8, ((minute - 1) % 60) as u8, 59, nominal as u8 - 1]
                };
                for (frame, want) in [(start, first), (start - 1, before)] {
                    let tc = Timecode::from_frame(frame, rate);
                    let want_text = text(want, rate);
                    assert_eq!(
                        tc.label().as_str(),
                        want_text,
                        "{rate}: label of frame {frame} (minute {minute} boundary)"
                    );
                    let parsed = Timecode::parse(&want_text, rate);
                    assert_eq!(parsed, Ok(tc), "{rate}: parse({want_text})");
                    assert_eq!(tc.to_frame(), frame.rem_euclid(day), "{rate}: {want_text} back to a frame");
                }
                for f in 0..drop {
                    let label = text([h, m, 0, f], rate);
                    let parsed = Timecode::parse(&label, rate);
                    if dropping {
                        assert_eq!(
                            parsed,
                            Err(TimecodeError::DroppedLabel { text: label.clone(), rate }),
                            "{rate}: {label} is skipped by drop-frame and must be refused"
                        );
                        assert!(
                            matches!(Timecode::new(h, m, 0, f, rate), Err(TimecodeError::DroppedLabel { .. })),
                            "{rate}: Timecode::new must refuse the dropped label {label}"
                        );
                    } else {
                        let tc =
                            parsed.unwrap_or_else(|e| panic!("{rate}: {label} exists (minute divisible by ten): {e}"));
                        assert_eq!(tc.to_frame(), start + i64::from(f), "{rate}: frame of {label}");
                    }
                }
                start += 60 * nominal - if dropping { i64::from(drop) } else { 0 };
            }
            assert_eq!(start, day, "{rate}: the minutes of a day add up to frames_per_day");
        }
    }

    /// Labels from ST 12-1 / the reference README, at the rate they are quoted for.
    #[test]
    fn known_labels() {
        let df = FrameRate::FPS_29_97_DF;
        let df60 = FrameRate::FPS_59_94_DF;
        let ndf = FrameRate::FPS_29_97_NDF;
        let cases: [(FrameRate, i64, &str); 17] = [
            (df, 0, "00:00:00;00"),
            (df, 1799, "00:00:59;29"),
            (df, 1800, "00:01:00;02"),
            (df, 3597, "00:01:59;29"),
            (df, 3598, "00:02:00;02"),
            (df, 17_981, "00:09:59;29"),
            (df, 17_982, "00:10:00;00"),
            (df, 17_983, "00:10:00;01"),
            (df, 19_782, "00:11:00;02"),
            (df, 107_892, "01:00:00;00"),
            (df, 2_589_407, "23:59:59;29"),
            (df60, 3599, "00:00:59;59"),
            (df60, 3600, "00:01:00;04"),
            (df60, 35_964, "00:10:00;00"),
            (df60, 215_784, "01:00:00;00"),
            (ndf, 107_892, "00:59:56:12"),
            (FrameRate::FPS_23_976, 86_400, "01:00:00:00"),
        ];
        for (rate, frame, label) in cases {
            assert_eq!(Timecode::from_frame(frame, rate).label().as_str(), label, "{rate}: frame {frame}");
            assert_eq!(Timecode::parse(label, rate).map(Timecode::to_frame), Ok(frame), "{rate}: parse({label})");
        }
        // An hour of wall clock at 29.97 is 107 892.1 frames: 01:00:00;00 in drop-frame, not the
        // 01:00:03;18 a whole-number rate gives.
        let frame = frame_at_nanos(3600 * 1_000_000_000, df);
        assert_eq!(frame, 107_892, "frames in one wall-clock hour at 29.97");
        assert_eq!(
            Timecode::from_frame(frame, df).to_string(),
            "01:00:00;00",
            "label one wall-clock hour in at 29.97 DF"
        );
    }

    #[test]
    fn midnight_wraps_both_ways() {
        for rate in FrameRate::ALL {
            let day = rate.frames_per_day();
            let midnight = text([0, 0, 0, 0], rate);
            let last = text(last_of_day(rate), rate);
            let cases = [
                (0, &midnight),
                (day, &midnight),
                (-day, &midnight),
                (2 * day, &midnight),
                (-1, &last),
                (day - 1, &last),
                (-day - 1, &last),
                (2 * day - 1, &last),
            ];
            for (frame, label) in cases {
                let tc = Timecode::from_frame(frame, rate);
                assert_eq!(tc.label().as_str(), label.as_str(), "{rate}: frame {frame}");
                assert_eq!(tc.to_frame(), frame.rem_euclid(day), "{rate}: frame {frame} back to the day");
            }
        }
    }

    /// Pre-roll counts back from midnight: frame −n is the label n frames before the end of the
    /// day, never the label of +n (the "absolute value" bug) nor garbage.
    #[test]
    fn negative_frames_count_back_from_midnight() {
        for rate in FrameRate::ALL {
            let day = rate.frames_per_day();
            let nominal = i64::from(rate.nominal());
            for n in [
                1,
                2,
                3,
                nominal - 1,
                nominal,
                nominal + 1,
                60 * nominal,
                600 * nominal,
                3600 * nominal,
                day / 2,
                day - 1,
            ] {
                let tc = Timecode::from_frame(-n, rate);
                assert_eq!(
                    tc,
                    Timecode::from_frame(day - n, rate),
                    "{rate}: frame -{n} is frame {} of the day",
                    day - n
                );
                assert_eq!(tc.to_frame(), day - n, "{rate}: frame -{n} back to the day");
                if n < day / 2 {
                    assert_ne!(tc, Timecode::from_frame(n, rate), "{rate}: frame -{n} must not print as +{n}");
                }
            }
        }
        assert_eq!(Timecode::from_frame(-1, FrameRate::FPS_29_97_DF).to_string(), "23:59:59;29", "README example");
        assert_eq!(
            Timecode::from_frame(-2, FrameRate::FPS_59_94_DF).to_string(),
            "23:59:59;58",
            "two frames before midnight"
        );
        assert_eq!(
            Timecode::from_frame(-31, FrameRate::FPS_30).to_string(),
            "23:59:58:29",
            "31 frames before midnight"
        );
    }

    /// Positions days away (and the extremes of `i64`) wrap like their remainder in the day.
    #[test]
    fn far_frames_wrap_into_the_day() {
        for rate in FrameRate::ALL {
            let day = rate.frames_per_day();
            for frame in [0, 1, 17_982, 107_892, day / 3, day - 1] {
                for days in [-10i64, -9, -2, -1, 1, 2, 9, 10] {
                    let far = frame + days * day;
                    let tc = Timecode::from_frame(far, rate);
                    assert_eq!(
                        tc,
                        Timecode::from_frame(frame, rate),
                        "{rate}: frame {far} ({days:+} days from {frame})"
                    );
                    assert_eq!(tc.to_frame(), frame, "{rate}: frame {far} back to the day");
                }
            }
            for extreme in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
                let within = (i128::from(extreme).rem_euclid(i128::from(day))) as i64;
                let tc = Timecode::from_frame(extreme, rate);
                assert_eq!(tc.to_frame(), within, "{rate}: frame {extreme} wraps to {within}");
                assert_eq!(tc, Timecode::from_frame(within, rate), "{rate}: frame {extreme}");
            }
        }
    }

    #[test]
    fn new_checks_every_field() {
        let df = FrameRate::FPS_29_97_DF;
        let ok: [(u8, u8, u8, u8, FrameRate); 6] = [
            (0, 0, 0, 0, FrameRate::FPS_24),
            (23, 59, 59, 23, FrameRate::FPS_23_976),
            (23, 59, 59, 24, FrameRate::FPS_25),
            (0, 10, 0, 0, df),
            (0, 1, 0, 2, df),
            (23, 59, 59, 59, FrameRate::FPS_59_94_DF),
        ];
        for (h, m, s, f, rate) in ok {
            let tc = Timecode::new(h, m, s, f, rate).unwrap_or_else(|e| panic!("{h}:{m}:{s}:{f} at {rate}: {e}"));
            assert_eq!(fields(tc), [h, m, s, f], "fields kept");
            assert_eq!(tc.rate(), rate, "rate kept");
        }
        let out_of_range: [(u8, u8, u8, u8, FrameRate); 7] = [
            (24, 0, 0, 0, FrameRate::FPS_25),
            (0, 60, 0, 0, FrameRate::FPS_25),
            (0, 0, 60, 0, FrameRate::FPS_25),
            (0, 0, 0, 25, FrameRate::FPS_25),
            (0, 0, 0, 24, FrameRate::FPS_23_976),
            (0, 0, 0, 30, df),
            (255, 255, 255, 255, FrameRate::FPS_60),
        ];
        for (h, m, s, f, rate) in out_of_range {
            let got = Timecode::new(h, m, s, f, rate);
            assert!(
                matches!(got, Err(TimecodeError::OutOfRange { rate: r, .. }) if r == rate),
                "new({h}, {m}, {s}, {f}) at {rate}: {got:?}"
            );
        }
        assert_eq!(
            Timecode::new(0, 1, 0, 1, df),
            Err(TimecodeError::DroppedLabel { text: "00:01:00;01".to_owned(), rate: df }),
            "new() of a dropped label"
        );
        assert_eq!(
            Timecode::new(0, 1, 0, 1, FrameRate::FPS_29_97_NDF).map(Timecode::to_frame),
            Ok(1801),
            "the same label exists in non-drop"
        );
    }

    #[test]
    fn parse_is_strict() {
        use TimecodeError::{DroppedLabel, Malformed, OutOfRange, WrongSeparator};
        let df = FrameRate::FPS_29_97_DF;
        let r25 = FrameRate::FPS_25;
        type Expect = fn(&TimecodeError) -> bool;
        let malformed: Expect = |e| matches!(e, Malformed(_));
        let out_of_range: Expect = |e| matches!(e, OutOfRange { .. });
        let separator: Expect = |e| matches!(e, WrongSeparator { .. });
        let dropped: Expect = |e| matches!(e, DroppedLabel { .. });
        let cases: [(&str, FrameRate, Expect); 26] = [
            ("", r25, malformed),
            ("00:00:00", r25, malformed),
            ("0:00:00:00", r25, malformed),
            ("000:00:00:00", r25, malformed),
            (" 00:00:00:00", r25, malformed),
            ("00:00:00:00 ", r25, malformed),
            ("00:00:00:00\n", r25, malformed),
            ("00:00:00.00", r25, malformed),
            ("00;00:00;00", df, malformed),
            ("00:00;00;00", df, malformed),
            ("+0:00:00:00", r25, malformed),
            ("-0:00:00:01", r25, malformed),
            ("0a:00:00:00", r25, malformed),
            ("00:00:00: 1", r25, malformed),
            ("\u{661}\u{662}:00:00:0", r25, malformed),
            ("00:00:00:0\u{e9}", r25, malformed),
            ("00:00:00;00", r25, separator),
            ("00:00:00:00", df, separator),
            ("00:01:00:00", df, separator),
            ("24:00:00:00", r25, out_of_range),
            ("99:99:99:99", r25, out_of_range),
            ("00:00:00:25", r25, out_of_range),
            ("00:00:00;30", df, out_of_range),
            ("00:01:00;00", df, dropped),
            ("00:01:00;01", df, dropped),
            ("23:59:00;01", df, dropped),
        ];
        for (input, rate, expect) in cases {
            match Timecode::parse(input, rate) {
                Ok(tc) => panic!("parse({input:?}) at {rate} accepted {tc:?}"),
                Err(e) => {
                    assert!(expect(&e), "parse({input:?}) at {rate}: wrong error {e:?}");
                    let carried = match &e {
                        Malformed(t) => t,
                        OutOfRange { text, .. } | WrongSeparator { text, .. } | DroppedLabel { text, .. } => text,
                    };
                    assert_eq!(carried, input, "parse error carries the input as given");
                }
            }
        }
        for (input, rate) in [("00:00:00:00", r25), ("23:59:59:24", r25), ("00:10:00;00", df), ("12:34:56;29", df)] {
            let tc = Timecode::parse(input, rate).unwrap_or_else(|e| panic!("parse({input:?}) at {rate}: {e}"));
            assert_eq!(tc.to_string(), input, "parse then Display of {input:?}");
        }
    }

    #[test]
    fn display_and_debug() {
        let tc = Timecode::from_frame(17_983, FrameRate::FPS_29_97_DF);
        assert_eq!(tc.to_string(), "00:10:00;01", "Display");
        assert_eq!(format!("{tc:?}"), "Timecode(00:10:00;01 @ 29.97df)", "Debug names label and rate");
        assert_eq!(format!("{:?}", tc.label()), "\"00:10:00;01\"", "Label Debug is the quoted text");
        assert_eq!(tc.label().to_string(), "00:10:00;01", "Label Display");
        assert_eq!(fields(tc), [0, 10, 0, 1], "accessors");
        assert_eq!(tc.rate(), FrameRate::FPS_29_97_DF, "rate accessor");
    }

    /// Independent floor and ceiling of `n / d` for `d > 0`, from truncating division (not
    /// `div_euclid`, which the code under test uses).
    fn floor_div(n: i128, d: i128) -> i128 {
        let q = n / d;
        if n % d != 0 && n < 0 { q - 1 } else { q }
    }
    fn ceil_div(n: i128, d: i128) -> i128 {
        let q = n / d;
        if n % d != 0 && n > 0 { q + 1 } else { q }
    }

    const SAMPLE_RATES: [u32; 6] = [44_100, 48_000, 88_200, 96_000, 176_400, 192_000];

    /// Frames near zero, around a wall-clock day of samples and a label day, and far out.
    fn frames_to_probe(rate: FrameRate) -> Vec<i64> {
        let wall_day = (86_400 * i64::from(rate.num())) / i64::from(rate.den());
        let mut frames: Vec<i64> = (-2_500..=2_500).collect();
        for centre in
            [wall_day, -wall_day, rate.frames_per_day(), 10 * wall_day, -10 * wall_day, 1 << 31, 1 << 40, -(1 << 40)]
        {
            frames.extend(centre - 300..=centre + 300);
        }
        frames
    }

    /// For every rate at every sample rate: each probed frame's first sample is the exact
    /// ceiling, belongs to that frame, and the sample before it to the previous frame; frame
    /// lengths differ by at most one sample (no drift), and `frame_at_sample` is the exact floor.
    #[test]
    fn sample_frame_boundaries_are_exact() {
        for rate in FrameRate::ALL {
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            let frames = frames_to_probe(rate);
            for sample_rate in SAMPLE_RATES {
                let sr = i128::from(sample_rate);
                // A frame is den × sr / num samples long: its floor or its ceiling, never else.
                let (short, long) = (floor_div(den * sr, num), ceil_div(den * sr, num));
                let mut previous: Option<(i64, i64)> = None;
                for &f in &frames {
                    let start = frame_start_sample(f, sample_rate, rate);
                    let exact = ceil_div(i128::from(f) * den * sr, num);
                    assert_eq!(i128::from(start), exact, "{rate} @ {sample_rate} Hz: first sample of frame {f}");
                    assert_eq!(
                        frame_at_sample(start, sample_rate, rate),
                        f,
                        "{rate} @ {sample_rate} Hz: first sample of frame {f}"
                    );
                    assert_eq!(
                        frame_at_sample(start - 1, sample_rate, rate),
                        f - 1,
                        "{rate} @ {sample_rate} Hz: sample before frame {f}"
                    );
                    for s in [start - 1, start, start + 1] {
                        let want = floor_div(i128::from(s) * num, den * sr);
                        assert_eq!(
                            i128::from(frame_at_sample(s, sample_rate, rate)),
                            want,
                            "{rate} @ {sample_rate} Hz: frame at sample {s}"
                        );
                    }
                    if let Some((pf, ps)) = previous
                        && pf + 1 == f
                    {
                        let len = i128::from(start - ps);
                        assert!(
                            len == short || len == long,
                            "{rate} @ {sample_rate} Hz: frame {pf} is {len} samples, not {short} or {long}"
                        );
                    }
                    previous = Some((f, start));
                }
            }
        }
    }

    /// 24 hours (and ±10 days) of samples land on exactly `floor(seconds × num / den)`: no
    /// accumulated error. At 1001 rates that is not a label day: 24 h of wall clock is
    /// 2 589 410 frames at 29.97, two past the 2 589 408 labels of a drop-frame day.
    #[test]
    fn no_drift_over_days_of_samples() {
        for rate in FrameRate::ALL {
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            for sample_rate in SAMPLE_RATES {
                for days in [-10i64, -1, 1, 2, 10] {
                    let seconds = days * 86_400;
                    let sample = seconds * i64::from(sample_rate);
                    let want = floor_div(i128::from(seconds) * num, den);
                    let got = frame_at_sample(sample, sample_rate, rate);
                    assert_eq!(i128::from(got), want, "{rate} @ {sample_rate} Hz: frame at {days} days of samples");
                    let whole_rate = den == 1;
                    if whole_rate {
                        assert_eq!(got, days * rate.frames_per_day(), "{rate}: a wall-clock day is a label day");
                        assert_eq!(
                            Timecode::from_frame(got, rate).to_string(),
                            text([0, 0, 0, 0], rate),
                            "{rate}: midnight after {days} days"
                        );
                    }
                }
            }
        }
        let at_29_97 = frame_at_sample(86_400 * 48_000, 48_000, FrameRate::FPS_29_97_DF);
        assert_eq!(at_29_97, 2_589_410, "24 h of 48 kHz samples at 29.97");
        assert_eq!(
            Timecode::from_frame(at_29_97, FrameRate::FPS_29_97_DF).to_string(),
            "00:00:00;02",
            "label 24 h in at 29.97 DF"
        );
    }

    /// `frame_start_nanos` is the exact start rounded toward −∞ and `frame_at_nanos` the exact
    /// floor; so the nanosecond after a frame's start belongs to it, and the start itself does
    /// whenever the start is a whole nanosecond.
    #[test]
    fn nanosecond_conversions_are_exact() {
        for rate in FrameRate::ALL {
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            for f in frames_to_probe(rate).into_iter().step_by(7) {
                let exact = i128::from(f) * den * 1_000_000_000;
                let start = frame_start_nanos(f, rate);
                assert_eq!(start, -floor_div(-exact, num), "{rate}: start of frame {f} in ns (ceil)");
                assert_eq!(frame_at_nanos(start + 1, rate), f, "{rate}: 1 ns after frame {f} starts");
                assert_eq!(frame_at_nanos(start, rate), f, "{rate}: frame at the start of frame {f}");
                assert_eq!(frame_at_nanos(start - 1, rate), f - 1, "{rate}: 1 ns before frame {f}");
                for t in [start - 1, start, start + 1] {
                    assert_eq!(
                        i128::from(frame_at_nanos(t, rate)),
                        floor_div(t * num, den * 1_000_000_000),
                        "{rate}: frame at {t} ns"
                    );
                }
            }
        }
    }

    /// Positions whose result does not fit `i64` saturate (they used to wrap to the other sign,
    /// e.g. `frame_start_sample(i64::MAX, 48 kHz, 30 fps)` was −1600, and `frame_at_nanos` of a
    /// huge instant overflowed i128: a panic in debug builds). Results that fit stay exact.
    #[test]
    fn extremes_saturate_and_the_rest_stays_exact() {
        for rate in FrameRate::ALL {
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            for sample_rate in SAMPLE_RATES {
                let sr = i128::from(sample_rate);
                assert_eq!(
                    frame_start_sample(i64::MAX, sample_rate, rate),
                    i64::MAX,
                    "{rate} @ {sample_rate}: start of frame i64::MAX"
                );
                assert_eq!(
                    frame_start_sample(i64::MIN, sample_rate, rate),
                    i64::MIN,
                    "{rate} @ {sample_rate}: start of frame i64::MIN"
                );
                // The last frame that starts inside the i64 sample range keeps its exact start.
                for (sample, frame) in [
                    (i64::MAX, floor_div(i128::from(i64::MAX) * num, den * sr)),
                    (i64::MIN, floor_div(i128::from(i64::MIN) * num, den * sr)),
                ] {
                    assert_eq!(
                        i128::from(frame_at_sample(sample, sample_rate, rate)),
                        frame,
                        "{rate} @ {sample_rate}: frame at sample {sample}"
                    );
                    let f = frame as i64;
                    let start = ceil_div(frame * den * sr, num);
                    if start >= i128::from(i64::MIN) {
                        assert_eq!(
                            i128::from(frame_start_sample(f, sample_rate, rate)),
                            start,
                            "{rate} @ {sample_rate}: start of frame {f}"
                        );
                    } else {
                        assert_eq!(
                            frame_start_sample(f, sample_rate, rate),
                            i64::MIN,
                            "{rate} @ {sample_rate}: start of frame {f} saturates"
                        );
                    }
                }
            }
            // Below 60 Hz a frame index can outgrow the sample index.
            let over = floor_div(i128::from(i64::MAX) * num, den) > i128::from(i64::MAX);
            let want = if over { i64::MAX } else { floor_div(i128::from(i64::MAX) * num, den) as i64 };
            assert_eq!(frame_at_sample(i64::MAX, 1, rate), want, "{rate} @ 1 Hz: frame at sample i64::MAX");

            assert_eq!(frame_at_nanos(i128::MAX, rate), i64::MAX, "{rate}: frame at i128::MAX ns");
            assert_eq!(frame_at_nanos(i128::MIN, rate), i64::MIN, "{rate}: frame at i128::MIN ns");
            assert_eq!(frame_at_nanos(1 << 100, rate), i64::MAX, "{rate}: frame at 2^100 ns");
            assert_eq!(frame_at_nanos(-(1 << 100), rate), i64::MIN, "{rate}: frame at -2^100 ns");
            for f in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
                let start = frame_start_nanos(f, rate);
                assert_eq!(
                    start,
                    -floor_div(-(i128::from(f) * den * 1_000_000_000), num),
                    "{rate}: start of frame {f} in ns (ceil)"
                );
                assert_eq!(frame_at_nanos(start, rate), f, "{rate}: at the start of frame {f}");
            }
        }
    }
}
