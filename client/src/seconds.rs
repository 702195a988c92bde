//! Seconds as exact decimals, in and out.
//!
//! `29.97` fps is 30000/1001: a frame lasts 0.0333666… s, which no binary float holds. Parsing
//! `3600` or `0.033366667` through `f64` and multiplying by a rounded rate is how tools end up at
//! `01:00:03;17` for one hour (core/tests/data/README.md, "Bugs seen"). Here seconds are read
//! as an integer count of 10^-scale seconds and every step is integer arithmetic; output is a
//! whole number of nanoseconds printed with nine decimals.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use osc_timecode_core::FrameRate;

/// Significant digits accepted in a seconds value (and decimal places). Enough for a float
/// pasted from a script (17 digits) with room to spare, few enough that
/// `digits × 60000` and `10^places × 1001` stay inside `i128`.
const MAX_DIGITS: u32 = 32;

/// A decimal number of seconds, exactly: `units × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds {
    /// The digits as one integer, with the sign.
    units: i128,
    /// Decimal places, `0..=MAX_DIGITS`.
    scale: u32,
}

/// Why a seconds value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondsError {
    /// Not `[+-]digits[.digits]` (`nan`, `inf` and exponents included).
    Malformed(String),
    /// More than `MAX_DIGITS` significant digits or decimal places.
    TooPrecise(String),
    /// A length of time below zero.
    Negative(String),
    /// A length of time beyond the limit (in whole seconds) of what it is for.
    TooLong(String, u64),
}

impl fmt::Display for SecondsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(text) => write!(
                f,
                "invalid seconds {text:?}: expected a decimal number such as 12, -0.5 or 3600.25 (no exponent, no unit)"
            ),
            Self::TooPrecise(text) => {
                write!(f, "invalid seconds {text:?}: more than {MAX_DIGITS} significant digits or decimal places")
            }
            Self::Negative(text) => write!(f, "invalid seconds {text:?}: a length of time cannot be negative"),
            Self::TooLong(text, max) => write!(f, "invalid seconds {text:?}: at most {max} s"),
        }
    }
}

impl std::error::Error for SecondsError {}

impl FromStr for Seconds {
    type Err = SecondsError;

    /// `[+-]` then digits with at most one `.` (`12`, `-0.5`, `.5`, `5.`). Leading zeros of the
    /// whole part and trailing zeros of the fraction do not count against `MAX_DIGITS`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || SecondsError::Malformed(text.to_owned());
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
            return Err(malformed());
        }
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        let digits = whole.len() + fraction.len();
        if digits > MAX_DIGITS as usize || fraction.len() > MAX_DIGITS as usize {
            return Err(SecondsError::TooPrecise(text.to_owned()));
        }
        // PANIC: at most 32 ASCII digits, below i128::MAX (about 1.7 × 10^38).
        let magnitude = whole.bytes().chain(fraction.bytes()).fold(0i128, |n, b| n * 10 + i128::from(b - b'0'));
        Ok(Self { units: if negative { -magnitude } else { magnitude }, scale: fraction.len() as u32 })
    }
}

impl Seconds {
    /// The frame playing at this instant, `floor(seconds × num / den)`; `None` if it does not
    /// fit `i64`.
    pub fn frame(self, rate: FrameRate) -> Option<i64> {
        // |units| < 10^32 and num ≤ 60000: the product stays below 10^37 < i128::MAX.
        let n = self.units * i128::from(rate.num());
        let d = 10i128.pow(self.scale) * i128::from(rate.den());
        i64::try_from(n.div_euclid(d)).ok()
    }
}

/// The longest `--duration` (and any other length of time in seconds the command reads): a
/// year, far beyond any show; beyond it a value is a typo, not a plan.
pub const MAX_LENGTH_SECS: u64 = 366 * 86_400;

/// A length of time typed in seconds (`--duration 2.5`): an exact decimal, refused with a reason
/// when malformed (`nan`, `inf`, `1e3`), negative or longer than `max_secs`; a fraction of a
/// nanosecond rounds up. The one parser behind every such flag or key, so they refuse alike.
pub fn parse_length(text: &str, max_secs: u64) -> Result<Duration, SecondsError> {
    let seconds: Seconds = text.parse()?;
    if seconds.units < 0 {
        return Err(SecondsError::Negative(text.to_owned()));
    }
    let unit = 10i128.pow(seconds.scale);
    let (whole, fraction) = (seconds.units / unit, seconds.units % unit);
    if whole > i128::from(max_secs) || whole == i128::from(max_secs) && fraction != 0 {
        return Err(SecondsError::TooLong(text.to_owned(), max_secs));
    }
    // The fraction in ns, rounded up, without multiplying 32 digits by 10^9 (beyond i128).
    let fraction_nanos = if seconds.scale > 9 {
        let per_nano = 10i128.pow(seconds.scale - 9);
        (fraction + per_nano - 1) / per_nano
    } else {
        fraction * 10i128.pow(9 - seconds.scale)
    };
    // whole ≤ max_secs: the sum fits u64 for any max below 584 years.
    let nanos = whole * 1_000_000_000 + fraction_nanos;
    Ok(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

/// clap value parser for a length of time up to [`MAX_LENGTH_SECS`].
pub fn parse_length_flag(text: &str) -> Result<Duration, String> {
    parse_length(text, MAX_LENGTH_SECS).map_err(|e| e.to_string())
}

impl fmt::Display for Seconds {
    /// The exact value, normalised (`-0.5`, `3600`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.units < 0 { "-" } else { "" };
        let abs = self.units.unsigned_abs();
        let unit = 10u128.pow(self.scale);
        write!(f, "{sign}{}", abs / unit)?;
        if self.scale > 0 {
            write!(f, ".{:0width$}", abs % unit, width = self.scale as usize)?;
        }
        Ok(())
    }
}

/// `nanos` as seconds with exactly nine decimals (`-0.033366666`, `3600.000000000`).
pub fn format_nanos(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    format!("{sign}{}.{:09}", abs / 1_000_000_000, abs % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use osc_timecode_core::timecode::{frame_at_nanos, frame_start_nanos};

    fn seconds(text: &str) -> Seconds {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn parses_exact_decimals() {
        let cases = [
            ("0", 0, 0),
            ("-0", 0, 0),
            ("+0.000", 0, 0),
            ("12", 12, 0),
            ("0012", 12, 0),
            ("-0.5", -5, 1),
            (".5", 5, 1),
            ("5.", 5, 0),
            ("3600.250", 360_025, 2),
            ("0.033366666666666666", 33_366_666_666_666_666, 18),
            ("-86400.000000001", -86_400_000_000_001, 9),
            ("99999999999999999999999999999999", 99_999_999_999_999_999_999_999_999_999_999, 0),
            ("0.00000000000000000000000000000001", 1, 32),
        ];
        for (text, units, scale) in cases {
            assert_eq!(seconds(text), Seconds { units, scale }, "{text:?}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for text in [
            "", "-", "+", ".", "-.", "1.2.3", "1e3", "1,5", " 1", "1 ", "0x10", "--1", "+-1", "1s", "inf", "NaN", "١",
            "1_000",
        ] {
            assert_eq!(text.parse::<Seconds>(), Err(SecondsError::Malformed(text.to_owned())), "{text:?}");
        }
        for text in ["999999999999999999999999999999999", "0.000000000000000000000000000000001"] {
            assert_eq!(text.parse::<Seconds>(), Err(SecondsError::TooPrecise(text.to_owned())), "{text:?}");
        }
        let message = "1e3".parse::<Seconds>().unwrap_err().to_string();
        assert!(message.contains("\"1e3\"") && message.contains("decimal"), "{message}");
    }

    #[test]
    fn frames_are_the_exact_floor() {
        let (df, r25, r23) = (FrameRate::FPS_29_97_DF, FrameRate::FPS_25, FrameRate::FPS_23_976);
        let cases = [
            ("0", r25, 0),
            ("0.04", r25, 1),
            ("0.039999999999", r25, 0),
            ("-0.000000001", r25, -1),
            ("-0.04", r25, -1),
            ("-0.040000001", r25, -2),
            // One hour of wall clock at 29.97 is 107892.107… frames: 01:00:00;00 at drop-frame.
            ("3600", df, 107_892),
            ("0.0333666", df, 0),
            ("0.0333667", df, 1),
            ("0.033366666666666667", df, 1),
            ("0.033366666666666666", df, 0),
            ("86400", r23, 2_071_528),
            ("368934881474191032", r25, 9_223_372_036_854_775_800),
        ];
        for (text, rate, frame) in cases {
            assert_eq!(seconds(text).frame(rate), Some(frame), "{text} s at {rate}");
        }
        assert_eq!(seconds("368934881474191033").frame(r25), None, "one second beyond i64 frames");
        assert_eq!(seconds("99999999999999999999").frame(r25), None, "beyond i64 frames");
        assert_eq!(seconds("-99999999999999999999").frame(r25), None, "beyond i64 frames");
    }

    #[test]
    fn lengths_of_time_are_exact_non_negative_and_bounded() {
        let ok = |text: &str| parse_length(text, 100).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("-0"), Duration::ZERO, "minus zero is zero");
        assert_eq!(ok("2.5"), Duration::from_millis(2500));
        assert_eq!(ok("0.0000000001"), Duration::from_nanos(1), "a fraction of a ns rounds up");
        assert_eq!(ok("100"), Duration::from_secs(100));
        assert_eq!(ok("100.000"), Duration::from_secs(100));
        assert_eq!(ok("99.999999999999999999999999999999"), Duration::from_secs(100), "32 digits round up");
        assert_eq!(ok("1.000000001"), Duration::from_nanos(1_000_000_001));
        for text in ["nan", "NaN", "inf", "-inf", "1e3", "", "5s"] {
            assert_eq!(parse_length(text, 100), Err(SecondsError::Malformed(text.to_owned())), "{text:?}");
        }
        for text in ["-1", "-0.000000001"] {
            assert_eq!(parse_length(text, 100), Err(SecondsError::Negative(text.to_owned())), "{text:?}");
        }
        for text in ["100.000000001", "101", "99999999999999999999999999999999"] {
            assert_eq!(parse_length(text, 100), Err(SecondsError::TooLong(text.to_owned(), 100)), "{text:?}");
        }
        let message = parse_length_flag("-1").unwrap_err();
        assert!(message.contains("\"-1\"") && message.contains("negative"), "{message}");
    }

    #[test]
    fn displays_the_exact_value() {
        for (text, shown) in [("0", "0"), ("-0.50", "-0.5"), ("0012.0340", "12.034"), (".05", "0.05"), ("5.", "5")] {
            assert_eq!(seconds(text).to_string(), shown, "{text:?}");
        }
    }

    #[test]
    fn formats_nine_decimals() {
        let cases = [
            (0, "0.000000000"),
            (1, "0.000000001"),
            (-1, "-0.000000001"),
            (33_366_667, "0.033366667"),
            (-33_366_666, "-0.033366666"),
            (3_600_000_000_000, "3600.000000000"),
            (-86_400_123_456_789, "-86400.123456789"),
            (i128::MIN, "-170141183460469231731687303715.884105728"),
        ];
        for (nanos, text) in cases {
            assert_eq!(format_nanos(nanos), text, "{nanos} ns");
        }
    }

    /// A frame's printed start parses back to the same frame at every rate, and one nanosecond
    /// earlier is the previous frame: the output is the first nanosecond inside the frame.
    #[test]
    fn printed_starts_round_trip() {
        for rate in FrameRate::ALL {
            for frame in (-3000..3000).chain([rate.frames_per_day() - 1, -rate.frames_per_day(), 1 << 40]) {
                let start = frame_start_nanos(frame, rate);
                let text = format_nanos(start);
                assert_eq!(seconds(&text).frame(rate), Some(frame), "{rate}: frame {frame} at {text}");
                let before = format_nanos(start - 1);
                assert_eq!(seconds(&before).frame(rate), Some(frame - 1), "{rate}: frame {frame}, {before}");
                assert_eq!(frame_at_nanos(start, rate), frame, "{rate}: core agrees on {frame}");
            }
        }
    }
}
