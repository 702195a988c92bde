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

    /// Every supported rate, slowest first: the order of the plugin's Frame Rate choices and of
    /// [`Self::NAMES`]. Projects store the rate by its name (the parameter's ID), never by its
    /// position here, so this order only sets the host's automation scale.
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
    pub const NAMES: [&'static str; 10] =
        ["23.976", "24", "25", "29.97", "29.97df", "30", "50", "59.94", "59.94df", "60"];

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
            .find(|r| r.drop == drop && u64::from(r.num) * u64::from(den) == u64::from(num) * u64::from(r.den))
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
        // The reference data writes the non-drop 1001 rates as `29.97ndf` / `59.94ndf`.
        let lower = match lower {
            "29.97ndf" | "59.94ndf" => &lower[..5],
            other => other,
        };
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

/// A frame rate as a host reports its project's rate (VST3's `ProcessContext::frameRate`):
/// whole frames per second, pulled down by 1000/1001 or not, drop-frame or not. Hosts may send
/// any combination, including ones no standard names (30 drop-frame without pull-down, 48 fps),
/// and some do not say whether the rate is pulled down (Ardour): [`Self::readings`] are the rates
/// of ours it can be. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostRate {
    /// Whole frames per second before pull-down (VST3 `framesPerSecond`): 24, 25, 30, 60, ...
    pub fps: u32,
    /// The rate is `fps × 1000/1001` (VST3 `kPullDownRate`): 30 pulled down is 29.97. `None`:
    /// the host does not say, so it may be either.
    pub pull_down: Option<bool>,
    /// Labels count drop-frame (VST3 `kDropRate`).
    pub drop: bool,
}

impl HostRate {
    /// How a host that uses the same rate as `rate` reports it.
    pub const fn of(rate: FrameRate) -> Self {
        Self { fps: rate.nominal(), pull_down: Some(rate.den == 1001), drop: rate.drop }
    }

    /// The rates of ours this can be, exactly: none (30 drop-frame without pull-down, 48 fps),
    /// one, or two when the host does not say whether it is pulled down (30 or 29.97).
    pub fn readings(self) -> impl Iterator<Item = FrameRate> {
        let plain = (self.pull_down != Some(true)).then(|| FrameRate::from_parts(self.fps, 1, self.drop).ok());
        let pulled = (self.pull_down != Some(false))
            .then(|| FrameRate::from_parts(self.fps.checked_mul(1000)?, 1001, self.drop).ok());
        [plain, pulled].into_iter().flatten().flatten()
    }

    /// Whether a project at this rate and timecode at `ours` count the same frames the same way
    /// (as far as the host says: when it does not say whether it is pulled down, the labels must
    /// agree, the speed cannot be checked).
    pub fn agrees_with(self, ours: FrameRate) -> bool {
        self.readings().any(|r| r == ours)
    }

    /// Whether it is one of the ten rates we carry (either reading, if the host does not say).
    pub fn is_smpte(self) -> bool {
        self.readings().next().is_some()
    }
}

impl fmt::Display for HostRate {
    /// `"25 fps"`, `"29.97 fps drop-frame"`, `"47.952 fps"`, `"30 fps or 29.97 fps"` (pull-down
    /// not said): frames per second to three decimals at most (rounded, trailing zeros dropped),
    /// then "drop-frame" if it counts so.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fps = |f: &mut fmt::Formatter<'_>, pull_down: bool| {
            let den: u64 = if pull_down { 1001 } else { 1000 };
            let milli = (u64::from(self.fps) * 1_000_000 + den / 2) / den;
            let (whole, mut frac, mut digits) = (milli / 1000, milli % 1000, 3);
            while digits > 0 && frac % 10 == 0 {
                frac /= 10;
                digits -= 1;
            }
            if digits == 0 { write!(f, "{whole} fps") } else { write!(f, "{whole}.{frac:0digits$} fps") }
        };
        match self.pull_down {
            Some(pull_down) => fps(f, pull_down)?,
            None => {
                fps(f, false)?;
                f.write_str(" or ")?;
                fps(f, true)?;
            }
        }
        if self.drop {
            f.write_str(" drop-frame")?;
        }
        Ok(())
    }
}

/// Whether the host's project frame rate and the rate we send agree: the plugin logs each change
/// ([`Self::change_to`]) and the window shows a disagreement. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateAgreement {
    /// The host reports no project rate (every CLAP host; VST3 hosts that leave it out).
    Unknown,
    /// The host's project counts the frames we send.
    Agrees,
    /// The host's project rate (first) is not the rate we send (second).
    Disagrees(HostRate, FrameRate),
}

impl RateAgreement {
    /// Between what the host reported in its latest block and the rate we send.
    pub fn of(host: Option<HostRate>, ours: FrameRate) -> Self {
        match host {
            None => Self::Unknown,
            Some(h) if h.agrees_with(ours) => Self::Agrees,
            Some(h) => Self::Disagrees(h, ours),
        }
    }

    /// The log line for a change from `self` to `now`, if it deserves one: every new
    /// disagreement, and agreement after one. A host that stops reporting says nothing.
    pub fn change_to(self, now: Self) -> Option<String> {
        match now {
            _ if now == self => None,
            Self::Disagrees(host, ours) => Some(disagreement_text(host, ours)),
            Self::Agrees if matches!(self, Self::Disagrees(..)) => {
                Some("the host's project frame rate and Frame Rate agree again".to_owned())
            }
            Self::Agrees | Self::Unknown => None,
        }
    }
}

/// What the plugin's log and window say when the host's project runs at `host` and the Frame
/// Rate parameter sends `ours`.
pub fn disagreement_text(host: HostRate, ours: FrameRate) -> String {
    let ours = HostRate::of(ours);
    if host.is_smpte() {
        format!(
            "the host's project frame rate is {host} but Frame Rate is {ours}: the timecode sent will not match \
             the host's timecode ruler; set Frame Rate to {host} or change the project's rate"
        )
    } else {
        format!(
            "the host's project frame rate is {host}, which is none of the ten SMPTE rates this plugin sends; \
             Frame Rate is {ours}, so the timecode sent will not match the host's timecode ruler"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_speaks_once_per_rate_disagreement_and_once_when_it_ends() {
        use RateAgreement::{Agrees, Disagrees, Unknown};
        let df = FrameRate::FPS_29_97_DF;
        let host = |fps, pull_down, drop| Some(HostRate { fps, pull_down: Some(pull_down), drop });
        assert_eq!(RateAgreement::of(None, df), Unknown);
        assert_eq!(RateAgreement::of(host(30, true, true), df), Agrees);
        let ardour_df = Some(HostRate { fps: 30, pull_down: None, drop: true });
        assert_eq!(RateAgreement::of(ardour_df, df), Agrees, "a host that does not say about pull-down");
        let ndf = host(30, true, false).unwrap();
        assert_eq!(RateAgreement::of(Some(ndf), df), Disagrees(ndf, df), "drop-frame is part of the rate");
        let a = Disagrees(ndf, df);
        let b = Disagrees(HostRate::of(FrameRate::FPS_25), df);
        // (from, to, a line?)
        let cases = [
            (Unknown, Unknown, false),
            (Unknown, Agrees, false),
            (Agrees, Agrees, false),
            (Agrees, Unknown, false),
            (a, a, false),
            (a, Unknown, false),
            (Unknown, a, true),
            (Agrees, a, true),
            (a, b, true),
            (a, Agrees, true),
        ];
        for (from, to, speaks) in cases {
            assert_eq!(from.change_to(to).is_some(), speaks, "{from:?} -> {to:?}");
        }
        let line = Unknown.change_to(b).unwrap();
        assert!(
            line.contains("project frame rate is 25 fps but Frame Rate is 29.97 fps drop-frame")
                && line.contains("set Frame Rate to 25 fps"),
            "{line}"
        );
        let odd = HostRate { fps: 30, pull_down: Some(false), drop: true };
        let line = Unknown.change_to(RateAgreement::of(Some(odd), df)).unwrap();
        assert!(
            line.contains("is 30 fps drop-frame, which is none of the ten SMPTE rates")
                && line.contains("Frame Rate is 29.97 fps drop-frame"),
            "{line}"
        );
        assert!(a.change_to(Agrees).unwrap().contains("agree again"));
    }

    /// Every rate with its exact fraction, drop flag, name, labels per second, labels skipped a
    /// minute and labels per day (the day counts from `core/tests/data/README.md`, convention 4).
    #[allow(clippy::type_complexity)]
    const TABLE: [(FrameRate, u32, u32, bool, &str, u32, u32, i64); 10] = [
        (FrameRate::FPS_23_976, 24000, 1001, false, "23.976", 24, 0, 2_073_600),
        (FrameRate::FPS_24, 24, 1, false, "24", 24, 0, 2_073_600),
        (FrameRate::FPS_25, 25, 1, false, "25", 25, 0, 2_160_000),
        (FrameRate::FPS_29_97_NDF, 30000, 1001, false, "29.97", 30, 0, 2_592_000),
        (FrameRate::FPS_29_97_DF, 30000, 1001, true, "29.97df", 30, 2, 2_589_408),
        (FrameRate::FPS_30, 30, 1, false, "30", 30, 0, 2_592_000),
        (FrameRate::FPS_50, 50, 1, false, "50", 50, 0, 4_320_000),
        (FrameRate::FPS_59_94_NDF, 60000, 1001, false, "59.94", 60, 0, 5_184_000),
        (FrameRate::FPS_59_94_DF, 60000, 1001, true, "59.94df", 60, 4, 5_178_816),
        (FrameRate::FPS_60, 60, 1, false, "60", 60, 0, 5_184_000),
    ];

    #[test]
    fn constants_fractions_and_day_lengths() {
        for (i, &(rate, num, den, drop, name, nominal, dropped, per_day)) in TABLE.iter().enumerate() {
            assert_eq!((rate.num(), rate.den(), rate.is_drop()), (num, den, drop), "{name}: fraction/drop");
            assert_eq!(FrameRate::ALL[i], rate, "ALL[{i}] must stay {name} (the plugin parameter stores the index)");
            assert_eq!(rate.index(), i, "{name}: index");
            assert_eq!(rate.nominal(), nominal, "{name}: nominal labels per second");
            assert_eq!(rate.dropped_per_minute(), dropped, "{name}: labels dropped per minute");
            assert_eq!(rate.frames_per_day(), per_day, "{name}: frames per day");
            // Independently: 1440 minutes, the 1296 not divisible by ten each lose `dropped` labels.
            let labels = 24 * 60 * 60 * i64::from(nominal);
            assert_eq!(per_day, labels - 1296 * i64::from(dropped), "{name}: table self-check");
        }
    }

    #[test]
    fn names_round_trip_through_from_str_and_display() {
        for &(rate, _, _, _, name, ..) in &TABLE {
            assert_eq!(rate.name(), name, "name of {rate:?}");
            assert_eq!(rate.to_string(), name, "Display of {rate:?}");
            assert_eq!(name.parse::<FrameRate>(), Ok(rate), "FromStr({name:?})");
            assert_eq!(rate.to_string().parse::<FrameRate>(), Ok(rate), "Display then FromStr of {rate:?}");
        }
        assert_eq!(FrameRate::NAMES.len(), FrameRate::ALL.len(), "NAMES and ALL must stay index-aligned");
    }

    #[test]
    fn from_str_accepts_reference_spellings() {
        let cases = [
            ("29.97ndf", FrameRate::FPS_29_97_NDF),
            ("59.94ndf", FrameRate::FPS_59_94_NDF),
            ("29.97DF", FrameRate::FPS_29_97_DF),
            ("59.94Df", FrameRate::FPS_59_94_DF),
            ("  25  ", FrameRate::FPS_25),
            ("30fps", FrameRate::FPS_30),
            ("23.976 fps", FrameRate::FPS_23_976),
            ("29.97ndf FPS", FrameRate::FPS_29_97_NDF),
        ];
        for (text, rate) in cases {
            assert_eq!(text.parse::<FrameRate>(), Ok(rate), "FromStr({text:?})");
        }
    }

    #[test]
    fn from_str_refuses_other_names() {
        for text in [
            "", "fps", "29", "29.970", "23.98", "2997/100", "25df", "24df", "23.976df", "30df", "29.97 df", "drop",
            "-24",
        ] {
            assert_eq!(
                text.parse::<FrameRate>(),
                Err(RateError::UnknownName(text.to_owned())),
                "FromStr({text:?}) must be refused, never rounded to a neighbour"
            );
        }
        let message = "2997/100".parse::<FrameRate>().unwrap_err().to_string();
        assert!(
            message.contains("\"2997/100\"") && message.contains("29.97df"),
            "message names input and choices: {message}"
        );
    }

    #[test]
    fn from_parts_accepts_exact_fractions_reduced_or_not() {
        let cases = [
            (24000, 1001, false, FrameRate::FPS_23_976),
            (48000, 2002, false, FrameRate::FPS_23_976),
            (24, 1, false, FrameRate::FPS_24),
            (48, 2, false, FrameRate::FPS_24),
            (25, 1, false, FrameRate::FPS_25),
            (30000, 1001, false, FrameRate::FPS_29_97_NDF),
            (30000, 1001, true, FrameRate::FPS_29_97_DF),
            (90000, 3003, true, FrameRate::FPS_29_97_DF),
            (30, 1, false, FrameRate::FPS_30),
            (60, 2, false, FrameRate::FPS_30),
            (30000, 1000, false, FrameRate::FPS_30),
            (3_000_000, 100_000, false, FrameRate::FPS_30),
            (50, 1, false, FrameRate::FPS_50),
            (60000, 1001, false, FrameRate::FPS_59_94_NDF),
            (60000, 1001, true, FrameRate::FPS_59_94_DF),
            (120_000, 2002, true, FrameRate::FPS_59_94_DF),
            (60, 1, false, FrameRate::FPS_60),
            (u32::MAX / 60 * 60, u32::MAX / 60, false, FrameRate::FPS_60),
        ];
        for (num, den, drop, rate) in cases {
            assert_eq!(FrameRate::from_parts(num, den, drop), Ok(rate), "from_parts({num}, {den}, {drop})");
        }
        for rate in FrameRate::ALL {
            assert_eq!(
                FrameRate::from_parts(rate.num(), rate.den(), rate.is_drop()),
                Ok(rate),
                "from_parts of {rate:?}'s own parts"
            );
        }
    }

    #[test]
    fn from_parts_refuses_everything_else() {
        let cases = [
            (2997, 100, false),
            (2997, 100, true),
            (5994, 100, true),
            (23976, 1000, false),
            (25, 1, true),
            (50, 1, true),
            (24, 1, true),
            (24000, 1001, true),
            (30, 1, true),
            (60, 1, true),
            (29970, 1000, false),
            (30001, 1001, false),
            (0, 0, false),
            (0, 1, false),
            (30, 0, false),
            (0, 0, true),
            (1, 1, false),
            (u32::MAX, u32::MAX, false),
            (u32::MAX, 1, false),
            (1, u32::MAX, false),
        ];
        for (num, den, drop) in cases {
            assert_eq!(
                FrameRate::from_parts(num, den, drop),
                Err(RateError::Unsupported { num, den, drop }),
                "from_parts({num}, {den}, {drop}) must be refused with the values asked for"
            );
        }
        let message = FrameRate::from_parts(25, 1, true).unwrap_err().to_string();
        assert!(message.contains("25/1 drop-frame"), "message names the refused rate: {message}");
    }

    #[test]
    fn host_rates_map_to_ours_exactly_and_only_then() {
        // Every VST3 description of one of our rates, as the SDK spells them.
        let ours = [
            (24, true, false, FrameRate::FPS_23_976, "23.976 fps"),
            (24, false, false, FrameRate::FPS_24, "24 fps"),
            (25, false, false, FrameRate::FPS_25, "25 fps"),
            (30, true, false, FrameRate::FPS_29_97_NDF, "29.97 fps"),
            (30, true, true, FrameRate::FPS_29_97_DF, "29.97 fps drop-frame"),
            (30, false, false, FrameRate::FPS_30, "30 fps"),
            (50, false, false, FrameRate::FPS_50, "50 fps"),
            (60, true, false, FrameRate::FPS_59_94_NDF, "59.94 fps"),
            (60, true, true, FrameRate::FPS_59_94_DF, "59.94 fps drop-frame"),
            (60, false, false, FrameRate::FPS_60, "60 fps"),
        ];
        for (fps, pull_down, drop, rate, text) in ours {
            let host = HostRate { fps, pull_down: Some(pull_down), drop };
            assert_eq!(host.readings().collect::<Vec<_>>(), [rate], "{host:?}");
            assert_eq!(HostRate::of(rate), host, "HostRate::of({rate:?})");
            assert_eq!(host.to_string(), text, "Display of {host:?}");
            assert!(host.is_smpte(), "{host:?}");
            for other in FrameRate::ALL {
                assert_eq!(host.agrees_with(other), other == rate, "{host:?} against {other:?}");
            }
        }
        // Rates hosts can report that we cannot carry: none of ours, each said as it is.
        let others = [
            (30, Some(false), true, "30 fps drop-frame"),
            (25, Some(false), true, "25 fps drop-frame"),
            (24, Some(true), true, "23.976 fps drop-frame"),
            (25, Some(true), false, "24.975 fps"),
            (48, Some(false), false, "48 fps"),
            (48, Some(true), false, "47.952 fps"),
            (50, Some(true), false, "49.95 fps"),
            (120, Some(false), false, "120 fps"),
            (1, Some(true), false, "0.999 fps"),
            (0, Some(false), false, "0 fps"),
            (48, None, false, "48 fps or 47.952 fps"),
            (25, None, true, "25 fps or 24.975 fps drop-frame"),
            (u32::MAX, Some(true), true, "4290676618.382 fps drop-frame"),
            (u32::MAX, None, false, "4294967295 fps or 4290676618.382 fps"),
        ];
        for (fps, pull_down, drop, text) in others {
            let host = HostRate { fps, pull_down, drop };
            assert_eq!(host.readings().count(), 0, "{host:?} is none of ours");
            assert!(!host.is_smpte(), "{host:?}");
            assert!(FrameRate::ALL.iter().all(|r| !host.agrees_with(*r)), "{host:?} agrees with nothing");
            assert_eq!(host.to_string(), text, "Display of {host:?}");
        }
        // A host that does not say whether it is pulled down: either reading agrees (the labels
        // are the same; the speed cannot be checked), nothing else does.
        let unsaid = [
            (24, false, vec![FrameRate::FPS_24, FrameRate::FPS_23_976], "24 fps or 23.976 fps"),
            (25, false, vec![FrameRate::FPS_25], "25 fps or 24.975 fps"),
            (30, false, vec![FrameRate::FPS_30, FrameRate::FPS_29_97_NDF], "30 fps or 29.97 fps"),
            (30, true, vec![FrameRate::FPS_29_97_DF], "30 fps or 29.97 fps drop-frame"),
            (60, false, vec![FrameRate::FPS_60, FrameRate::FPS_59_94_NDF], "60 fps or 59.94 fps"),
            (60, true, vec![FrameRate::FPS_59_94_DF], "60 fps or 59.94 fps drop-frame"),
        ];
        for (fps, drop, readings, text) in unsaid {
            let host = HostRate { fps, pull_down: None, drop };
            assert_eq!(host.readings().collect::<Vec<_>>(), readings, "{host:?}");
            for other in FrameRate::ALL {
                assert_eq!(host.agrees_with(other), readings.contains(&other), "{host:?} against {other:?}");
            }
            assert_eq!(host.to_string(), text, "Display of {host:?}");
        }
    }

    #[test]
    fn debug_shows_the_fraction() {
        assert_eq!(format!("{:?}", FrameRate::FPS_29_97_DF), "FrameRate(30000/1001 DF)", "Debug of 29.97 DF");
        assert_eq!(format!("{:?}", FrameRate::FPS_25), "FrameRate(25/1)", "Debug of 25");
    }
}
