//! Property checks over random inputs from a fixed-seed xorshift generator (no crates, fully
//! deterministic: a failure names its iteration and reproduces on every run). Expected values
//! come from independent models written here: a field-by-field label classifier and i128
//! floor/ceiling arithmetic built on truncating division.

use osc_timecode_core::timecode::{frame_at_nanos, frame_at_sample, frame_start_nanos, frame_start_sample};
use osc_timecode_core::{FrameRate, Timecode, TimecodeError};

/// xorshift64* (Vigna): small, fast, good enough to spread test inputs. Never seeded with 0.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` for test inputs (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// In `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
        (i128::from(lo) + (u128::from(self.next()) % span) as i128) as i64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn rate(&mut self) -> FrameRate {
        self.pick(&FrameRate::ALL)
    }
}

const SAMPLE_RATES: [u32; 6] = [44_100, 48_000, 88_200, 96_000, 176_400, 192_000];

fn floor_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d != 0 && n < 0 { q - 1 } else { q }
}

fn ceil_div(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d != 0 && n > 0 { q + 1 } else { q }
}

fn label_text([h, m, s, f]: [u8; 4], rate: FrameRate) -> String {
    let sep = if rate.is_drop() { ';' } else { ':' };
    format!("{h:02}:{m:02}:{s:02}{sep}{f:02}")
}

/// Random label fields at `rate`, in range; a quarter of them at second 0 of a minute with a low
/// frame number, where drop-frame skips labels.
fn random_fields(rng: &mut Rng, rate: FrameRate) -> [u8; 4] {
    let h = rng.below(24) as u8;
    let m = rng.below(60) as u8;
    if rng.below(4) == 0 {
        [h, m, 0, rng.below(6) as u8]
    } else {
        [h, m, rng.below(60) as u8, rng.below(u64::from(rate.nominal())) as u8]
    }
}

/// Random valid labels: parse ↔ Display round trip, fields kept, `new` agrees, the frame is in
/// the day and maps back to the label (also days away), and label order is frame order.
#[test]
fn random_labels_round_trip() {
    let mut rng = Rng::new(0x5EED_0001);
    let (mut valid, mut dropped) = (0usize, 0usize);
    for i in 0..300_000 {
        let rate = rng.rate();
        let fields @ [h, m, s, f] = random_fields(&mut rng, rate);
        let text = label_text(fields, rate);
        let skipped = rate.is_drop() && s == 0 && m % 10 != 0 && u32::from(f) < rate.dropped_per_minute();
        if skipped {
            let want = Err(TimecodeError::DroppedLabel { text: text.clone(), rate });
            assert_eq!(Timecode::parse(&text, rate), want, "#{i}: {text} at {rate} is a dropped label");
            assert!(Timecode::new(h, m, s, f, rate).is_err(), "#{i}: new() must refuse dropped {text} at {rate}");
            dropped += 1;
            continue;
        }
        let tc = Timecode::parse(&text, rate).unwrap_or_else(|e| panic!("#{i}: parse({text}) at {rate}: {e}"));
        assert_eq!(tc.to_string(), text, "#{i}: Display after parse at {rate}");
        assert_eq!(tc.label().as_str(), text, "#{i}: label() after parse at {rate}");
        assert_eq!([tc.hours(), tc.minutes(), tc.seconds(), tc.frames()], fields, "#{i}: fields of {text}");
        assert_eq!(Timecode::new(h, m, s, f, rate), Ok(tc), "#{i}: new() of {text} at {rate}");
        let day = rate.frames_per_day();
        let frame = tc.to_frame();
        assert!((0..day).contains(&frame), "#{i}: {text} at {rate} gives frame {frame} outside the day");
        assert_eq!(Timecode::from_frame(frame, rate), tc, "#{i}: {text} at {rate} -> frame {frame} -> label");
        let days = rng.between(-1000, 1000);
        assert_eq!(Timecode::from_frame(frame + days * day, rate), tc, "#{i}: {text} at {rate}, {days:+} days away");

        // Label order (lexicographic on fields) is frame order.
        let other_fields = random_fields(&mut rng, rate);
        if let Ok(other) = Timecode::parse(&label_text(other_fields, rate), rate) {
            assert_eq!(
                fields.cmp(&other_fields),
                frame.cmp(&other.to_frame()),
                "#{i}: order of {text} and {other} at {rate} differs from their frames' order"
            );
        }
        valid += 1;
    }
    assert!(valid > 150_000 && dropped > 1_000, "generator coverage: {valid} valid, {dropped} dropped labels");
}

/// What a strict parser may answer for `text`, per the module's rules, written field by field.
/// Several reasons can apply at once (a wrong separator on an out-of-range label); the parser may
/// report any one of them, but a shape error is always `Malformed`.
fn allowed(text: &str, rate: FrameRate) -> Result<[u8; 4], Vec<&'static str>> {
    let b = text.as_bytes();
    let digit_at = [0, 1, 3, 4, 6, 7, 9, 10];
    let shaped = b.len() == 11
        && b[2] == b':'
        && b[5] == b':'
        && (b[8] == b':' || b[8] == b';')
        && digit_at.iter().all(|&i| b[i].is_ascii_digit());
    if !shaped {
        return Err(vec!["malformed"]);
    }
    let v = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    let [h, m, s, f] = [v(0), v(3), v(6), v(9)];
    let mut reasons = Vec::new();
    if (b[8] == b';') != rate.is_drop() {
        reasons.push("wrong_separator");
    }
    if h >= 24 || m >= 60 || s >= 60 || u32::from(f) >= rate.nominal() {
        reasons.push("out_of_range");
    } else if rate.is_drop() && s == 0 && m % 10 != 0 && u32::from(f) < rate.dropped_per_minute() {
        reasons.push("dropped_label");
    }
    if reasons.is_empty() { Ok([h, m, s, f]) } else { Err(reasons) }
}

fn reason(e: &TimecodeError) -> &'static str {
    match e {
        TimecodeError::Malformed(_) => "malformed",
        TimecodeError::OutOfRange { .. } => "out_of_range",
        TimecodeError::WrongSeparator { .. } => "wrong_separator",
        TimecodeError::DroppedLabel { .. } => "dropped_label",
    }
}

/// Random text near the label shape (mutated labels, random separators, odd lengths, non-ASCII):
/// the parser never panics, accepts exactly the valid labels (which format back to the input)
/// and refuses the rest with a reason that applies.
#[test]
fn random_text_is_parsed_strictly() {
    let mut rng = Rng::new(0x5EED_0002);
    let alphabet: Vec<char> =
        "0123456789012345678901234567890123456789::::;;;;-. +a\u{e9}\u{661}\u{ff10}".chars().collect();
    let mut outcomes = [0usize; 5];
    for i in 0..200_000 {
        let rate = rng.rate();
        let text: String = match rng.below(3) {
            // A valid-looking label with one or two characters replaced.
            0 | 1 => {
                let fields = random_fields(&mut rng, rate);
                let mut chars: Vec<char> = label_text(fields, rate).chars().collect();
                for _ in 0..=rng.below(2) {
                    let at = rng.below(chars.len() as u64) as usize;
                    chars[at] = rng.pick(&alphabet);
                }
                if rng.below(10) == 0 {
                    let at = rng.below(chars.len() as u64 + 1) as usize;
                    chars.insert(at, rng.pick(&alphabet));
                }
                chars.into_iter().collect()
            }
            // Anything from the alphabet, 0 to 13 characters.
            _ => (0..rng.below(14)).map(|_| rng.pick(&alphabet)).collect(),
        };
        match (Timecode::parse(&text, rate), allowed(&text, rate)) {
            (Ok(tc), Ok(fields)) => {
                assert_eq!([tc.hours(), tc.minutes(), tc.seconds(), tc.frames()], fields, "#{i}: fields of {text:?}");
                assert_eq!(tc.to_string(), text, "#{i}: accepted {text:?} must format back the same");
                outcomes[4] += 1;
            }
            (Err(e), Err(reasons)) => {
                assert!(
                    reasons.contains(&reason(&e)),
                    "#{i}: parse({text:?}) at {rate} = {e:?}, expected one of {reasons:?}"
                );
                outcomes[["malformed", "out_of_range", "wrong_separator", "dropped_label"]
                    .iter()
                    .position(|r| *r == reason(&e))
                    .unwrap_or(0)] += 1;
            }
            (got, want) => panic!("#{i}: parse({text:?}) at {rate} = {got:?}, model says {want:?}"),
        }
    }
    assert!(
        outcomes.iter().all(|&n| n > 0),
        "generator coverage [malformed, range, separator, dropped, ok]: {outcomes:?}"
    );
}

/// Random sample positions (near zero, near day boundaries and far out) at random rates: the
/// frame is the exact floor, the position lies in that frame's samples, the frame's label is its
/// remainder in the day, and shifting by `den × sample_rate` samples shifts by `num` frames.
#[test]
fn random_samples_land_in_the_exact_frame() {
    let mut rng = Rng::new(0x5EED_0003);
    for i in 0..300_000 {
        let rate = rng.rate();
        let sample_rate = rng.pick(&SAMPLE_RATES);
        let sr = i64::from(sample_rate);
        let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
        let sample = match rng.below(4) {
            0 => rng.between(-100_000, 100_000),
            1 => rng.between(-10, 10) * 86_400 * sr + rng.between(-100_000, 100_000),
            2 => rng.between(-(1 << 40), 1 << 40),
            _ => rng.between(-(1 << 52), 1 << 52),
        };
        let frame = frame_at_sample(sample, sample_rate, rate);
        let want = floor_div(i128::from(sample) * num, den * i128::from(sr));
        assert_eq!(i128::from(frame), want, "#{i}: frame at sample {sample} @ {sample_rate} Hz, {rate}");
        let start = frame_start_sample(frame, sample_rate, rate);
        let next = frame_start_sample(frame + 1, sample_rate, rate);
        assert_eq!(
            i128::from(start),
            ceil_div(i128::from(frame) * den * i128::from(sr), num),
            "#{i}: start of frame {frame}"
        );
        assert!(
            start <= sample && sample < next,
            "#{i}: sample {sample} not in frame {frame}'s [{start}, {next}) @ {sample_rate} Hz, {rate}"
        );
        let shift = den as i64 * sr;
        assert_eq!(
            frame_at_sample(sample + shift, sample_rate, rate),
            frame + num as i64,
            "#{i}: {shift} samples later is {num} frames later @ {sample_rate} Hz, {rate}"
        );
        let day = rate.frames_per_day();
        let tc = Timecode::from_frame(frame, rate);
        assert_eq!(
            tc.to_frame(),
            frame.rem_euclid(day),
            "#{i}: label of frame {frame} at {rate} is its place in the day"
        );
    }
}

/// Random frames over the whole `i64` range: the label is the one of the frame's remainder in the
/// day (computed in i128), and the nanosecond conversions agree with exact arithmetic.
#[test]
fn random_frames_wrap_and_time_exactly() {
    let mut rng = Rng::new(0x5EED_0004);
    for i in 0..300_000 {
        let rate = rng.rate();
        let day = rate.frames_per_day();
        let frame = match rng.below(3) {
            0 => rng.next() as i64,
            1 => rng.between(-3 * day, 3 * day),
            _ => rng.between(-(1 << 40), 1 << 40),
        };
        let within = i128::from(frame).rem_euclid(i128::from(day)) as i64;
        let tc = Timecode::from_frame(frame, rate);
        assert_eq!(tc.to_frame(), within, "#{i}: frame {frame} at {rate} wraps to {within}");
        assert_eq!(tc, Timecode::from_frame(within, rate), "#{i}: frame {frame} at {rate}");
        if frame.unsigned_abs() < 1 << 50 {
            let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
            let start = frame_start_nanos(frame, rate);
            assert_eq!(
                start,
                -floor_div(-(i128::from(frame) * den * 1_000_000_000), num),
                "#{i}: start of frame {frame} in ns at {rate} (ceil)"
            );
            assert_eq!(frame_at_nanos(start, rate), frame, "#{i}: at the start of frame {frame} at {rate}");
            assert_eq!(frame_at_nanos(start - 1, rate), frame - 1, "#{i}: 1 ns before frame {frame} at {rate}");
            let t = start + rng.between(0, 1_000_000_000) as i128;
            assert_eq!(
                i128::from(frame_at_nanos(t, rate)),
                floor_div(t * num, den * 1_000_000_000),
                "#{i}: frame at {t} ns at {rate}"
            );
        }
    }
}
