//! How a frame rate travels as LTC, MTC and Art-Net: the one owner of which rates go as
//! themselves, which are substituted and which need `half_rate` (issue 16).
//!
//! The three formats name the same four rates, 24, 25, 29.97 drop-frame and 30 fps: MTC's
//! two-bit `rr` code (MIDI 1.0 "MIDI Time Code": 0 = 24, 1 = 25, 2 = 30 drop, 3 = 30), Art-Net's
//! ArtTimeCode Type (0 Film, 1 EBU, 2 DF, 3 SMPTE: the same numbers) and LTC's 24-, 25- and
//! 30-frame words with the drop-frame flag. So they carry our ten rates the same way:
//!
//! | rate | `half_rate` off | `half_rate` on |
//! |---|---|---|
//! | 24, 25, 29.97 DF, 30 | as itself | as itself |
//! | 23.976 | as 24 (substituted) | as 24 (substituted) |
//! | 29.97 | as 30 (substituted) | as 30 (substituted) |
//! | 50 | refused ([`NotCarried`]) | frame pairs as 25 |
//! | 59.94 DF | refused | frame pairs as 29.97 DF |
//! | 59.94 | refused | frame pairs as 29.97, sent as 30 (substituted) |
//! | 60 | refused | frame pairs as 30 |
//!
//! A substitution keeps every label right (23.976 counts 24 labels a second, 29.97 non-drop 30)
//! but names a speed 0.1 % faster: universal practice, and said to the user through
//! [`Carriage`]'s `Display`, never silently. Frame pairs: our frames `2m` and `2m + 1` are carried
//! frame `m` at the half rate. Labels at 50 and 60 have an even number of frames a second and
//! 59.94 drop-frame skips an even number (4, where 29.97 DF skips 2) at the same minutes, so
//! carried frame `m` is exactly our label with its frame number halved.
//!
//! Plain `Copy` data and `const` arithmetic: no heap, no panic; callable from any thread.

use std::fmt;

use crate::rate::{FrameRate, HostRate};
use crate::timecode::Timecode;

/// The two-bit rate code shared by MTC (quarter-frame piece 7 bits 1–2, full-frame `hh` bits
/// 5–6) and Art-Net (ArtTimeCode `Type`, offset 18). LTC has no code: its words count 24, 25 or
/// 30 frames and bit 10 says drop-frame, which [`Self::rate`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RateCode {
    /// 0: 24 fps (Art-Net "Film").
    Fps24 = 0,
    /// 1: 25 fps (Art-Net "EBU").
    Fps25 = 1,
    /// 2: 29.97 fps drop-frame (MTC "30 drop", Art-Net "DF").
    Fps29_97Drop = 2,
    /// 3: 30 fps non-drop (Art-Net "SMPTE").
    Fps30 = 3,
}

impl RateCode {
    /// The code, 0..=3.
    pub const fn bits(self) -> u8 {
        self as u8
    }

    /// The rate this code names.
    pub const fn rate(self) -> FrameRate {
        match self {
            Self::Fps24 => FrameRate::FPS_24,
            Self::Fps25 => FrameRate::FPS_25,
            Self::Fps29_97Drop => FrameRate::FPS_29_97_DF,
            Self::Fps30 => FrameRate::FPS_30,
        }
    }

    /// The code whose rate counts labels as `rate` does (24, 25, 30 drop-frame or 30 labels a
    /// second), if any: 23.976 → 24, 29.97 → 30; none above 30.
    const fn for_labels(rate: FrameRate) -> Option<Self> {
        match (rate.nominal(), rate.is_drop()) {
            (24, false) => Some(Self::Fps24),
            (25, false) => Some(Self::Fps25),
            (30, true) => Some(Self::Fps29_97Drop),
            (30, false) => Some(Self::Fps30),
            _ => None,
        }
    }
}

/// The rate of frame pairs for a rate above 30 fps: 50 → 25, 59.94 → 29.97 (drop-frame stays
/// drop-frame), 60 → 30. Rates at 30 fps and below are their own (never asked).
const fn half_of(rate: FrameRate) -> FrameRate {
    match (rate.nominal(), rate.den(), rate.is_drop()) {
        (50, 1, false) => FrameRate::FPS_25,
        (60, 1001, false) => FrameRate::FPS_29_97_NDF,
        (60, 1001, true) => FrameRate::FPS_29_97_DF,
        (60, 1, false) => FrameRate::FPS_30,
        _ => rate,
    }
}

/// A rate LTC, MTC and Art-Net cannot carry as asked: 50, 59.94 or 60 fps without `half_rate`.
/// Each format's error wraps it after its own name, so the user reads "LTC cannot carry 50 fps:
/// turn on half_rate to send frame pairs at 25 fps".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("cannot carry {}: turn on half_rate to send frame pairs at {}", HostRate::of(*rate), HostRate::of(*half))]
pub struct NotCarried {
    /// The rate asked for.
    pub rate: FrameRate,
    /// The rate its frame pairs would go at with `half_rate`.
    pub half: FrameRate,
}

/// How one of our rates travels: the rate asked for, the rate of the labels on the wire, and the
/// code naming them. Built only by [`Self::of`]; `Copy`, built once per rate change on any
/// thread, read by the [audio-thread] and the [network-thread].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Carriage {
    /// The rate asked for: the frame clock's and the plugin's labels.
    rate: FrameRate,
    /// The rate whose labels go on the wire: `rate`, or its half in half-rate mode.
    labels: FrameRate,
    /// The code naming the labels: the one that counts `labels` the same way.
    code: RateCode,
}

impl Carriage {
    /// How `rate` travels. `half_rate` is the opt-in for 50, 59.94 and 60 fps, refused without it
    /// ([`NotCarried`]); it changes nothing at 30 fps and below, which travel whole.
    pub const fn of(rate: FrameRate, half_rate: bool) -> Result<Self, NotCarried> {
        if let Some(code) = RateCode::for_labels(rate) {
            return Ok(Self { rate, labels: rate, code });
        }
        let half = half_of(rate);
        match RateCode::for_labels(half) {
            // Every rate above 30 fps has a half with a code; a `None` would be refused, not a panic.
            Some(code) if half_rate => Ok(Self { rate, labels: half, code }),
            _ => Err(NotCarried { rate, half }),
        }
    }

    /// The rate asked for.
    pub const fn rate(self) -> FrameRate {
        self.rate
    }

    /// The rate whose labels go on the wire: [`Self::rate`], or its half in half-rate mode.
    pub const fn labels(self) -> FrameRate {
        self.labels
    }

    /// The code sent (MTC `rr`, Art-Net Type; LTC's word length and drop flag follow
    /// [`Self::labels`], which counts as the code's rate does).
    pub const fn code(self) -> RateCode {
        self.code
    }

    /// Frames go in pairs: 50, 59.94 or 60 fps sent as 25, 29.97 or 30.
    pub fn is_half_rate(self) -> bool {
        self.labels != self.rate
    }

    /// The code names a rate with the same labels but another speed: 23.976 sent as 24, 29.97
    /// non-drop (and 59.94 non-drop in half-rate mode) as 30. The labels are right; a receiver
    /// that runs its own clock from the code runs 0.1 % fast. Say so once to the user.
    pub fn is_substituted(self) -> bool {
        self.code.rate() != self.labels
    }

    /// Nothing to say: the code names the rate asked for.
    pub fn is_exact(self) -> bool {
        self.code.rate() == self.rate
    }

    /// Our frames per carried frame: 2 in half-rate mode, else 1.
    pub fn step(self) -> i64 {
        if self.is_half_rate() { 2 } else { 1 }
    }

    /// The carried frame (at [`Self::labels`]) holding our frame `frame` (any integer):
    /// `frame.div_euclid(2)` in half-rate mode, so frames `2m` and `2m + 1` share frame `m`.
    pub fn carried_frame(self, frame: i64) -> i64 {
        frame.div_euclid(self.step())
    }

    /// The label on the wire for our label `tc` (at [`Self::rate`]): the same label at 30 fps and
    /// below, hours/minutes/seconds kept and the frame number halved in half-rate mode (frame
    /// ⌊n/2⌋ at the half rate; see the module docs for why the two agree).
    pub fn carried_label(self, tc: Timecode) -> Timecode {
        Timecode::from_frame(self.carried_frame(tc.to_frame()), self.labels)
    }
}

impl fmt::Display for Carriage {
    /// What the window and the log say, naming every substitution: `"25 fps"`, `"29.97 fps sent
    /// as 30 fps"`, `"50 fps at half rate: frame pairs as 25 fps"`, `"59.94 fps at half rate:
    /// frame pairs as 29.97 fps, sent as 30 fps"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", HostRate::of(self.rate))?;
        if self.is_half_rate() {
            write!(f, " at half rate: frame pairs as {}", HostRate::of(self.labels))?;
            if self.is_substituted() {
                f.write_str(",")?;
            }
        }
        if self.is_substituted() {
            write!(f, " sent as {}", HostRate::of(self.code.rate()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rate × `half_rate`: the code, the labels on the wire, the flags, the step and the
    /// text, written from the table in the module docs (MTC `rr` and Art-Net Type numbers).
    #[test]
    fn golden_every_rate_and_half_rate() {
        use FrameRate as R;
        use RateCode::*;
        // (rate, half_rate, Ok((code, labels, exact, substituted, half, text)) or Err(half))
        type Want = Result<(RateCode, FrameRate, bool, bool, bool, &'static str), FrameRate>;
        let cases: [(FrameRate, bool, Want); 20] = [
            (R::FPS_23_976, false, Ok((Fps24, R::FPS_23_976, false, true, false, "23.976 fps sent as 24 fps"))),
            (R::FPS_23_976, true, Ok((Fps24, R::FPS_23_976, false, true, false, "23.976 fps sent as 24 fps"))),
            (R::FPS_24, false, Ok((Fps24, R::FPS_24, true, false, false, "24 fps"))),
            (R::FPS_24, true, Ok((Fps24, R::FPS_24, true, false, false, "24 fps"))),
            (R::FPS_25, false, Ok((Fps25, R::FPS_25, true, false, false, "25 fps"))),
            (R::FPS_25, true, Ok((Fps25, R::FPS_25, true, false, false, "25 fps"))),
            (R::FPS_29_97_NDF, false, Ok((Fps30, R::FPS_29_97_NDF, false, true, false, "29.97 fps sent as 30 fps"))),
            (R::FPS_29_97_NDF, true, Ok((Fps30, R::FPS_29_97_NDF, false, true, false, "29.97 fps sent as 30 fps"))),
            (R::FPS_29_97_DF, false, Ok((Fps29_97Drop, R::FPS_29_97_DF, true, false, false, "29.97 fps drop-frame"))),
            (R::FPS_29_97_DF, true, Ok((Fps29_97Drop, R::FPS_29_97_DF, true, false, false, "29.97 fps drop-frame"))),
            (R::FPS_30, false, Ok((Fps30, R::FPS_30, true, false, false, "30 fps"))),
            (R::FPS_30, true, Ok((Fps30, R::FPS_30, true, false, false, "30 fps"))),
            (R::FPS_50, false, Err(R::FPS_25)),
            (R::FPS_50, true, Ok((Fps25, R::FPS_25, false, false, true, "50 fps at half rate: frame pairs as 25 fps"))),
            (R::FPS_59_94_NDF, false, Err(R::FPS_29_97_NDF)),
            (
                R::FPS_59_94_NDF,
                true,
                Ok((
                    Fps30,
                    R::FPS_29_97_NDF,
                    false,
                    true,
                    true,
                    "59.94 fps at half rate: frame pairs as 29.97 fps, sent as 30 fps",
                )),
            ),
            (R::FPS_59_94_DF, false, Err(R::FPS_29_97_DF)),
            (
                R::FPS_59_94_DF,
                true,
                Ok((
                    Fps29_97Drop,
                    R::FPS_29_97_DF,
                    false,
                    false,
                    true,
                    "59.94 fps drop-frame at half rate: frame pairs as 29.97 fps drop-frame",
                )),
            ),
            (R::FPS_60, false, Err(R::FPS_30)),
            (R::FPS_60, true, Ok((Fps30, R::FPS_30, false, false, true, "60 fps at half rate: frame pairs as 30 fps"))),
        ];
        for (rate, half_rate, want) in cases {
            let got = Carriage::of(rate, half_rate);
            match want {
                Ok((code, labels, exact, substituted, half, text)) => {
                    let c = got.unwrap_or_else(|e| panic!("{rate} half_rate={half_rate}: {e}"));
                    assert_eq!(
                        (c.rate(), c.code(), c.labels(), c.is_exact(), c.is_substituted(), c.is_half_rate()),
                        (rate, code, labels, exact, substituted, half),
                        "{rate} half_rate={half_rate}"
                    );
                    assert_eq!(c.step(), if half { 2 } else { 1 }, "{rate}");
                    assert_eq!(c.to_string(), text, "{rate} half_rate={half_rate}");
                }
                Err(half) => assert_eq!(got, Err(NotCarried { rate, half }), "{rate}"),
            }
        }
        // The codes are the numbers both specs give (MTC rr, Art-Net Type).
        assert_eq!([Fps24, Fps25, Fps29_97Drop, Fps30].map(RateCode::bits), [0, 1, 2, 3]);
        assert_eq!(
            [Fps24, Fps25, Fps29_97Drop, Fps30].map(RateCode::rate),
            [R::FPS_24, R::FPS_25, R::FPS_29_97_DF, R::FPS_30]
        );
    }

    #[test]
    fn the_refusal_names_the_rate_and_the_opt_in() {
        let e = Carriage::of(FrameRate::FPS_50, false).unwrap_err();
        assert_eq!(e.to_string(), "cannot carry 50 fps: turn on half_rate to send frame pairs at 25 fps");
        let e = Carriage::of(FrameRate::FPS_59_94_DF, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot carry 59.94 fps drop-frame: turn on half_rate to send frame pairs at 29.97 fps drop-frame"
        );
    }

    /// Frames `2m` and `2m + 1` are carried frame `m`, negative frames too, and the carried label
    /// is our label with its frame number halved, at every drop-frame boundary and midnight.
    #[test]
    fn frame_pairs_and_halved_labels() {
        for rate in FrameRate::ALL {
            let c = Carriage::of(rate, true).unwrap();
            let day = rate.frames_per_day();
            let frames = (-300..300).chain((0..day).step_by(1777)).chain(day - 300..day + 300);
            for n in frames {
                let carried = c.carried_frame(n);
                if c.is_half_rate() {
                    assert!(carried * 2 == n || carried * 2 + 1 == n, "{rate}: {n} → {carried}");
                } else {
                    assert_eq!(carried, n);
                }
                let ours = Timecode::from_frame(n, rate);
                let wire = c.carried_label(ours);
                assert_eq!(wire, Timecode::from_frame(carried, c.labels()), "{rate} frame {n}");
                let halved = if c.is_half_rate() { ours.frames() / 2 } else { ours.frames() };
                assert_eq!(
                    (wire.hours(), wire.minutes(), wire.seconds(), wire.frames()),
                    (ours.hours(), ours.minutes(), ours.seconds(), halved),
                    "{rate} frame {n}: {ours}"
                );
            }
            for n in [i64::MIN, i64::MIN + 1, -1, i64::MAX - 1, i64::MAX] {
                let _ = (c.carried_frame(n), c.carried_label(Timecode::from_frame(n, rate)));
            }
        }
    }
}
