//! Frame rates as exact rationals.
//!
//! A rate is `num / den` frames per second plus a drop-frame flag. Only the ten SMPTE ST 12-1
//! rates are representable: an unsupported combination (drop-frame at 25 fps, 29.97 written as a
//! float) is refused with [`RateError`], never rounded to a neighbour.

use std::fmt;
use std::str::FromStr;

/// One of the ten supported SMPTE rates. `Copy`, two words: safe to send across threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FrameRate {
    /// Numerator of frames per second (e.g. 30000).
    num: u32,
    /// Denominator of frames per second (e.g. 1001).
    den: u32,
    /// Drop-frame numbering (ST 12-1): only at 30000/1001 and 60000/1001.
    drop: bool,
}

/// Why a rate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    /// The name is not one of [`FrameRate::NAMES`].
    #[error("unknown frame rate {0:?}: use one of 23.976, 24, 25, 29.97, 29.97df, 30, 50, 59.94, 59.94df, 60")]
    UnknownName(String),
    /// `num/den` (with this drop flag) is not an SMPTE rate we can carry.
    #[error("unsupported frame rate {num}/{den}{}: not one of the ten SMPTE rates", if *.drop { " drop-frame" } else { "" })]
    Unsupported {
        /// Numerator that was asked for.
        num: u32,
        /// Denominator that was asked for.
        den: u32,
        /// Drop-frame flag that was asked for.
        drop: bool,
    },
}

impl FrameRate {
    /// 24000/1001, never drop-frame; runs 0.1 % slow against the wall clock.
    pub const FPS_23_976: Self = Self::new_unchecked(24000, 1001, false);
    /// 24 fps (film).
    pub const FPS_24: Self = Self::new_unchecked(24, 1, false);
    /// 25 fps (PAL/EBU).
    pub const FPS_25: Self = Self::new_unchecked(25, 1, false);
    /// 30000/1001 non-drop.
    pub const FPS_29_97_NDF: Self = Self::new_unchecked(30000, 1001, false);
    /// 30000/1001 drop-frame: labels ;00 and ;01 skipped each minute not divisible by ten.
    pub const FPS_29_97_DF: Self = Self::new_unchecked(30000, 1001, true);
    /// 30 fps.
    pub const FPS_30: Self = Self::new_unchecked(30, 1, false);
    /// 50 fps.
    pub const FPS_50: Self = Self::new_unchecked(50, 1, false);
    /// 60000/1001 non-drop.
    pub const FPS_59_94_NDF: Self = Self::new_unchecked(60000, 1001, false);
    /// 60000/1001 drop-frame: labels ;00 to ;03 skipped each minute not divisible by ten.
    pub const FPS_59_94_DF: Self = Self::new_unchecked(60000, 1001, true);
    /// 60 fps.
    pub const FPS_60: Self = Self::new_unchecked(60, 1, false);

    /// Every supported rate, in the order of the plugin's rate parameter (frozen: the parameter
    /// stores the index).
    pub const ALL: [Self; 10] = [
        Self::FPS_23_976,
        Self::FPS_24,
        Self::FPS_25,
        Self::FPS_29_97_NDF,
        Self::FPS_29_97_DF,
        Self::FPS_30,
        Self::FPS_50,
        Self::FPS_59_94_NDF,
        Self::FPS_59_94_DF,
        Self::FPS_60,
    ];

    /// The names users write, index-aligned with [`Self::ALL`].
    pub const NAMES: [&'static str; 10] = [
        "23.976", "24", "25", "29.97", "29.97df", "30", "50", "59.94", "59.94df", "60",
    ];

    const fn new_unchecked(num: u32, den: u32, drop: bool) -> Self {
        Self { num, den, drop }
    }

    /// The rate `num/den` with the given drop flag, if it is one of the ten SMPTE rates.
    /// Fractions are compared exactly after reduction (`60/2` is 30 fps; `2997/100` is refused).
    pub fn from_parts(num: u32, den: u32, drop: bool) -> Result<Self, RateError> {
        let refused = RateError::Unsupported { num, den, drop };
        if num == 0 || den == 0 {
            return Err(refused);
        }
        Self::ALL
            .into_iter()
            .find(|r| {
                r.drop == drop && u64::from(r.num) * u64::from(den) == u64::from(num) * u64::from(r.den)
            })
            .ok_or(refused)
    }

    /// Numerator of frames per second.
    pub const fn num(self) -> u32 {
        self.num
    }

    /// Denominator of frames per second.
    pub const fn den(self) -> u32 {
        self.den
    }

    /// Whether labels use drop-frame numbering.
    pub const fn is_drop(self) -> bool {
        self.drop
    }

    /// Labels per timecode second: 24, 25, 30, 50 or 60 (the rate rounded up to a whole number).
    pub const fn nominal(self) -> u32 {
        self.num.div_ceil(self.den)
    }

    /// Frame labels skipped at the start of each minute not divisible by ten (0, 2 or 4).
    pub const fn dropped_per_minute(self) -> u32 {
        if self.drop { self.nominal() / 15 } else { 0 }
    }

    /// Distinct labels in one day, `00:00:00:00` to `23:59:59:FF`.
    pub const fn frames_per_day(self) -> i64 {
        let labels = 24 * 3600 * self.nominal() as i64;
        // 24 h has 1440 minutes, 144 of them divisible by ten.
        labels - (1440 - 144) * self.dropped_per_minute() as i64
    }

    /// Position of this rate in [`Self::ALL`].
    pub fn index(self) -> usize {
        // PANIC: every constructible FrameRate is one of ALL.
        Self::ALL.iter().position(|r| *r == self).expect("FrameRate outside ALL")
    }

    /// The name users write (`"29.97df"`).
    pub fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }
}

impl FromStr for FrameRate {
    type Err = RateError;

    /// Accepts the [`Self::NAMES`] and the reference-data spellings `29.97ndf`/`59.94ndf`,
    /// case-insensitively, with an optional `fps` suffix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower.strip_suffix("fps").unwrap_or(&lower).trim_end();
        let lower = lower.strip_suffix("ndf").unwrap_or(lower);
        Self::NAMES
            .iter()
            .position(|n| *n == lower)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| RateError::UnknownName(s.to_owned()))
    }
}

impl fmt::Display for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for FrameRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameRate({}/{}{})", self.num, self.den, if self.drop { " DF" } else { "" })
    }
}
