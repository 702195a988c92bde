//! MIDI Time Code (MTC): the bytes of quarter-frame messages and of the full-frame SysEx, and the
//! sample at which each quarter frame is due. No I/O; fixed-size arrays, no heap, no panics.
//!
//! The format (MIDI 1.0 Detailed Specification, "MIDI Time Code", MMA 1987, §§ "Quarter Frame
//! Messages" and "Full Message"):
//! - a **quarter frame** is the two bytes `F1 0nnn dddd`: piece `nnn` 0..=7 carries frames low
//!   nibble, frames high bit, seconds low nibble, seconds high bits, minutes low, minutes high,
//!   hours low nibble, and finally hours high bit plus the two-bit rate code (`0rrh`);
//! - four quarter frames go out per MTC frame, so the eight pieces span **two** frames, and the
//!   value they carry is the frame at which piece 0 was sent (a receiver adds two frames);
//! - the **full frame** `F0 7F 7F 01 01 hh mm ss ff F7` (universal real-time SysEx to all devices,
//!   sub-IDs 01 01) locates a receiver at once; `hh` is `0rrhhhhh`.
//!
//! MTC names four rates only ([`RateCode`], the code Art-Net's Type shares). Rates it cannot name
//! are carried the way the industry does, and the format says so ([`Carriage`], the one table for
//! LTC, MTC and Art-Net); 50, 59.94 and 60 fps are refused unless the caller asks for
//! `half_rate` (frame pairs: our frame `n` is MTC frame `n / 2` at 25, 29.97 or 30). Nothing is
//! substituted without the caller being told (issue 16).
//!
//! Timing: quarter `q` (0..=3) of the MTC frame that starts at frame `n` is due at sample
//! `start(n) + floor(q · len / 4)`, where `len` is that MTC frame's length in samples on the
//! integer frame clock ([`crate::timecode::frame_start_sample`]); so at 29.97 and 48 kHz (1601.6
//! samples a frame) quarter frames never drift. [`QuarterClock`] numbers quarter frames with one
//! `i64` so the audio thread can walk a block: the first quarter due at or after the block's
//! first sample, then the next, until one falls past the block.

use crate::carriage::{Carriage, NotCarried, RateCode};
use crate::rate::FrameRate;
use crate::timecode::{Timecode, frame_at_sample, frame_start_sample};

/// Why MTC cannot carry a rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MtcError {
    /// 50, 59.94 or 60 fps without `half_rate`: MTC's fastest code is 30.
    #[error("MTC {0}")]
    RateNotCarried(NotCarried),
    /// A timecode at another rate than the one this [`MtcFormat`] was made for.
    #[error("timecode at {got} fps given to an MTC encoder for {expected} fps")]
    WrongRate {
        /// The encoder's rate.
        expected: FrameRate,
        /// The timecode's rate.
        got: FrameRate,
    },
}

/// How one of our rates is written as MTC: the rate code, whether frames go in pairs, and what
/// the user must be told ([`Carriage`]). `Copy`; built once per rate change on any thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MtcFormat {
    /// Our rate (the frame clock's and the labels') and how it travels. [thread-safe] (`Copy`).
    carriage: Carriage,
}

/// One MTC time value: the fields a quarter-frame sequence or a full frame carries. `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MtcTime {
    /// 0..=23.
    pub hours: u8,
    /// 0..=59.
    pub minutes: u8,
    /// 0..=59.
    pub seconds: u8,
    /// 0..=29 (halved in half-rate mode).
    pub frames: u8,
    /// The rate code sent with it.
    pub code: RateCode,
}

impl MtcFormat {
    /// The MTC form of `rate`. 50, 59.94 and 60 fps are [`MtcError::RateNotCarried`] unless
    /// `half_rate`; `half_rate` changes nothing at 30 fps and below.
    pub const fn new(rate: FrameRate, half_rate: bool) -> Result<Self, MtcError> {
        match Carriage::of(rate, half_rate) {
            Ok(carriage) => Ok(Self { carriage }),
            Err(refused) => Err(MtcError::RateNotCarried(refused)),
        }
    }

    /// Our rate.
    pub const fn rate(self) -> FrameRate {
        self.carriage.rate()
    }

    /// The rate code sent.
    pub const fn code(self) -> RateCode {
        self.carriage.code()
    }

    /// How our rate travels (tell the user unless [`Carriage::is_exact`]).
    pub const fn carriage(self) -> Carriage {
        self.carriage
    }

    /// The MTC value of our frame `frame` (any integer; its label wraps into the day). In
    /// half-rate mode frames `2k` and `2k + 1` give the same value, MTC frame `k`.
    pub fn time(self, frame: i64) -> MtcTime {
        let carriage = self.carriage;
        self.fields(Timecode::from_frame(carriage.carried_frame(frame), carriage.labels()))
    }

    /// The MTC value of `tc`, which must be at this format's rate.
    pub fn time_of(self, tc: Timecode) -> Result<MtcTime, MtcError> {
        if tc.rate() != self.rate() {
            return Err(MtcError::WrongRate { expected: self.rate(), got: tc.rate() });
        }
        Ok(self.fields(self.carriage.carried_label(tc)))
    }

    /// The fields of `wire`, a label at [`Carriage::labels`].
    fn fields(self, wire: Timecode) -> MtcTime {
        MtcTime {
            hours: wire.hours(),
            minutes: wire.minutes(),
            seconds: wire.seconds(),
            frames: wire.frames(),
            code: self.code(),
        }
    }

    /// The full-frame message of our frame `frame`.
    pub fn full_frame(self, frame: i64) -> [u8; 10] {
        self.time(frame).full_frame()
    }

    /// The message of quarter `quarter` (quarter `quarter mod 4` of MTC frame `quarter div 4`,
    /// which starts at our frame `(quarter div 4) · step`): piece `4 · (m mod 2) + q` of the
    /// sequence that carries the value of the even MTC frame `m − (m mod 2)`, so one full value
    /// starts every two MTC frames and piece 0 goes out on the frame whose value the sequence
    /// carries. Independent of any timeline: [`QuarterClock`] (samples) and the client's wall
    /// time schedule both use it.
    pub fn quarter_message(self, quarter: i64) -> [u8; 2] {
        let m = i128::from(quarter.div_euclid(4));
        let piece = (4 * m.rem_euclid(2) + i128::from(quarter.rem_euclid(4))) as u8;
        self.time(self.carried_frame(quarter)).quarter_frame(piece)
    }

    /// Our frame whose value quarter `quarter`'s sequence carries (see
    /// [`MtcFormat::quarter_message`]).
    pub fn carried_frame(self, quarter: i64) -> i64 {
        let m = i128::from(quarter.div_euclid(4));
        saturate((m - m.rem_euclid(2)) * i128::from(self.carriage.step()))
    }
}

impl MtcTime {
    /// Quarter-frame piece `piece` (taken modulo 8): `[0xF1, 0nnn dddd]` (MTC § "Quarter Frame
    /// Messages": pieces 0/1 frames, 2/3 seconds, 4/5 minutes, 6/7 hours, 7 also `rr`).
    pub fn quarter_frame(self, piece: u8) -> [u8; 2] {
        let piece = piece % 8;
        let field = match piece / 2 {
            0 => self.frames,
            1 => self.seconds,
            2 => self.minutes,
            _ => self.hours,
        };
        let nibble = if piece.is_multiple_of(2) {
            field & 0x0F
        } else if piece == 7 {
            (self.code.bits() << 1) | (field >> 4 & 0x01)
        } else {
            field >> 4 & 0x0F
        };
        [0xF1, (piece << 4) | nibble]
    }

    /// All eight quarter frames, piece 0 first.
    pub fn quarter_frames(self) -> [[u8; 2]; 8] {
        std::array::from_fn(|piece| self.quarter_frame(piece as u8))
    }

    /// The full-frame message `F0 7F 7F 01 01 hh mm ss ff F7`, `hh = 0rrhhhhh` (MTC § "Full
    /// Message"; device ID 7F: all devices).
    pub fn full_frame(self) -> [u8; 10] {
        let hh = (self.code.bits() << 5) | (self.hours & 0x1F);
        [0xF0, 0x7F, 0x7F, 0x01, 0x01, hh, self.minutes & 0x7F, self.seconds & 0x7F, self.frames & 0x7F, 0xF7]
    }
}

/// Quarter frames on the sample timeline of a [`crate::clock::FrameClock`]: quarter index `Q` is
/// quarter `Q mod 4` of MTC frame `Q div 4`, and MTC frame `m` starts at our frame `m · step`
/// (`step` 2 in half-rate mode). Frames are numbered as the clock reports them (start offset
/// included); the clock's frame `n` starts at timeline sample `frame_start_sample(n − offset)`.
/// `Copy`; everything here is integer arithmetic that saturates instead of overflowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuarterClock {
    /// The rate and its MTC form.
    format: MtcFormat,
    /// Hz, as the frame clock uses it (0 is treated as 1, like `frame_start_sample`).
    sample_rate: u32,
    /// The frame clock's start offset, in our frames.
    offset_frames: i64,
}

/// `v` clamped into `i64`.
fn saturate(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

impl QuarterClock {
    /// Quarter frames for `format` on a timeline at `sample_rate` Hz whose frame numbers include
    /// `offset_frames`.
    pub const fn new(format: MtcFormat, sample_rate: u32, offset_frames: i64) -> Self {
        Self { format, sample_rate, offset_frames }
    }

    /// First timeline sample of our frame `frame` (offset included).
    fn frame_start(self, frame: i128) -> i128 {
        let timeline = saturate(frame - i128::from(self.offset_frames));
        i128::from(frame_start_sample(timeline, self.sample_rate, self.format.rate()))
    }

    /// The timeline sample at which quarter `quarter` is due: `start(n) + floor(q · len / 4)`
    /// for quarter `q` of the MTC frame starting at our frame `n`, `len` samples long.
    pub fn quarter_start_sample(self, quarter: i64) -> i64 {
        let step = i128::from(self.format.carriage.step());
        let (m, q) = (i128::from(quarter.div_euclid(4)), i128::from(quarter.rem_euclid(4)));
        let start = self.frame_start(m * step);
        let len = self.frame_start((m + 1) * step) - start;
        saturate(start + (q * len).div_euclid(4))
    }

    /// The quarter under way at timeline sample `sample`: the last one due at or before it.
    pub fn quarter_at_sample(self, sample: i64) -> i64 {
        let timeline = frame_at_sample(sample, self.sample_rate, self.format.rate());
        let frame = i128::from(timeline) + i128::from(self.offset_frames);
        let m = frame.div_euclid(i128::from(self.format.carriage.step()));
        let first = saturate(m * 4);
        // One of the four quarters of MTC frame `m` is under way (quarter 0 at its first sample).
        (1..4).rev().map(|q| first.saturating_add(q)).find(|&q| self.quarter_start_sample(q) <= sample).unwrap_or(first)
    }

    /// The first quarter due at or after timeline sample `sample` (where a block starting there
    /// begins sending).
    pub fn first_quarter_from(self, sample: i64) -> i64 {
        let q = self.quarter_at_sample(sample);
        if self.quarter_start_sample(q) < sample { q.saturating_add(1) } else { q }
    }

    /// The message of quarter `quarter`: piece `4 · (m mod 2) + q` of the sequence that carries
    /// the value of the even MTC frame `m − (m mod 2)`, so one full value starts every two MTC
    /// frames and piece 0 goes out on the frame whose value the sequence carries.
    pub fn quarter_message(self, quarter: i64) -> [u8; 2] {
        self.format.quarter_message(quarter)
    }

    /// Our frame (offset included) whose value quarter `quarter`'s sequence carries.
    pub fn carried_frame(self, quarter: i64) -> i64 {
        self.format.carried_frame(quarter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(" ")
    }

    fn tc(text: &str, rate: FrameRate) -> Timecode {
        Timecode::parse(text, rate).unwrap()
    }

    /// MTC § "Quarter Frame Messages": `F1 0nnn dddd`, pieces in order frames LS/MS nibble,
    /// seconds, minutes, hours LS nibble, then `0rrh` (rate code, hours bit 4). 25 fps is code 1.
    #[test]
    fn quarter_frames_golden_25() {
        let f = MtcFormat::new(FrameRate::FPS_25, false).unwrap();
        let t = f.time_of(tc("01:02:03:04", FrameRate::FPS_25)).unwrap();
        let bytes: Vec<u8> = t.quarter_frames().concat();
        assert_eq!(hex(&bytes), "F1 04 F1 10 F1 23 F1 30 F1 42 F1 50 F1 61 F1 72");
        assert_eq!(hex(&t.full_frame()), "F0 7F 7F 01 01 21 02 03 04 F7");
    }

    /// High nibbles and bits: 23:59:59;29 at 29.97 DF (code 2): frames 29 = 0x1D, seconds and
    /// minutes 59 = 0x3B, hours 23 = 0x17 → piece 7 is `0 10 1` = 0x75; full frame hh = 0x57.
    #[test]
    fn quarter_frames_golden_high_bits_29_97_df() {
        let f = MtcFormat::new(FrameRate::FPS_29_97_DF, false).unwrap();
        assert!(f.carriage().is_exact());
        let t = f.time_of(tc("23:59:59;29", FrameRate::FPS_29_97_DF)).unwrap();
        let bytes: Vec<u8> = t.quarter_frames().concat();
        assert_eq!(hex(&bytes), "F1 0D F1 11 F1 2B F1 33 F1 4B F1 53 F1 67 F1 75");
        assert_eq!(hex(&t.full_frame()), "F0 7F 7F 01 01 57 3B 3B 1D F7");
        // 30 fps: code 3, hours 0 → piece 7 = 0x76; 24 fps code 0 → 0x70.
        let t30 = MtcFormat::new(FrameRate::FPS_30, false).unwrap().time(0);
        assert_eq!(t30.quarter_frame(7), [0xF1, 0x76]);
        assert_eq!(MtcFormat::new(FrameRate::FPS_24, false).unwrap().time(0).quarter_frame(7), [0xF1, 0x70]);
    }

    /// The code of every rate (the table is [`Carriage`]'s; this checks MTC sends its code) and
    /// the refusal's text with MTC's name.
    #[test]
    fn rates_mtc_cannot_name_are_said_or_refused() {
        let cases = [
            (FrameRate::FPS_23_976, false, RateCode::Fps24),
            (FrameRate::FPS_24, false, RateCode::Fps24),
            (FrameRate::FPS_25, false, RateCode::Fps25),
            (FrameRate::FPS_29_97_NDF, false, RateCode::Fps30),
            (FrameRate::FPS_29_97_DF, false, RateCode::Fps29_97Drop),
            (FrameRate::FPS_30, false, RateCode::Fps30),
            (FrameRate::FPS_30, true, RateCode::Fps30),
            (FrameRate::FPS_50, true, RateCode::Fps25),
            (FrameRate::FPS_59_94_NDF, true, RateCode::Fps30),
            (FrameRate::FPS_59_94_DF, true, RateCode::Fps29_97Drop),
            (FrameRate::FPS_60, true, RateCode::Fps30),
        ];
        for (rate, half, code) in cases {
            let f = MtcFormat::new(rate, half).unwrap();
            assert_eq!((f.code(), f.carriage()), (code, Carriage::of(rate, half).unwrap()), "{rate}");
            assert_eq!(f.time(0).quarter_frame(7)[1] >> 1 & 0b11, code.bits(), "{rate}: rr in piece 7");
        }
        for rate in [FrameRate::FPS_50, FrameRate::FPS_59_94_NDF, FrameRate::FPS_59_94_DF, FrameRate::FPS_60] {
            let refused = Carriage::of(rate, false).unwrap_err();
            assert_eq!(MtcFormat::new(rate, false), Err(MtcError::RateNotCarried(refused)));
        }
        assert_eq!(
            MtcFormat::new(FrameRate::FPS_60, false).unwrap_err().to_string(),
            "MTC cannot carry 60 fps: turn on half_rate to send frame pairs at 30 fps"
        );
        let f = MtcFormat::new(FrameRate::FPS_25, false).unwrap();
        assert_eq!(
            f.time_of(tc("00:00:00:00", FrameRate::FPS_24)),
            Err(MtcError::WrongRate { expected: FrameRate::FPS_25, got: FrameRate::FPS_24 })
        );
    }

    /// Quarter `q` of frame `n` at `start(n) + floor(q · len / 4)`: at 29.97 and 48 kHz frames are
    /// 1601 or 1602 samples and the quarters follow each frame's own length, so they never drift.
    #[test]
    fn quarter_frames_sit_on_the_frame_clock() {
        let rate = FrameRate::FPS_29_97_DF;
        let clock = QuarterClock::new(MtcFormat::new(rate, false).unwrap(), 48_000, 0);
        // Frame 0 starts at 0, frame 1 at ceil(1601.6) = 1602, frame 2 at 3204 (ceil 3203.2).
        let starts: Vec<i64> = (0..9).map(|q| clock.quarter_start_sample(q)).collect();
        assert_eq!(starts, [0, 400, 801, 1201, 1602, 2002, 2403, 2803, 3204]);
        for q in -2000..2000 {
            let s = clock.quarter_start_sample(q);
            assert_eq!(clock.quarter_at_sample(s), q, "quarter at its own start");
            assert_eq!(clock.quarter_at_sample(s - 1), q - 1, "quarter before {q}");
            assert_eq!(clock.first_quarter_from(s), q);
            assert_eq!(clock.first_quarter_from(s - 1), q);
            assert_eq!(clock.first_quarter_from(s + 1), q + 1);
        }
        // Day wrap: a day of labels is 2 589 408 frames (even); quarters keep counting.
        let day = rate.frames_per_day();
        assert_eq!(clock.quarter_start_sample(4 * day), frame_start_sample(day, 48_000, rate));
    }

    /// The eight pieces carry the even frame at piece 0; pieces 4..7 go out during the next frame
    /// and still carry it (MTC: "the slave adds two frames").
    #[test]
    fn a_sequence_carries_the_frame_of_its_piece_0() {
        let rate = FrameRate::FPS_25;
        let clock = QuarterClock::new(MtcFormat::new(rate, false).unwrap(), 48_000, 90_000);
        let at = 90_000 + 2 * 17; // 01:00:01:09 with offset 01:00:00:00 and frame 34
        let t = MtcFormat::new(rate, false).unwrap().time(at);
        let q0 = 4 * at;
        for k in 0..8 {
            assert_eq!(clock.quarter_message(q0 + k), t.quarter_frames()[k as usize], "piece {k}");
            assert_eq!(clock.carried_frame(q0 + k), at);
        }
        assert_eq!(clock.quarter_message(q0 + 8)[1], ((at + 2) % 25) as u8, "next sequence, piece 0");
        // The offset moves the labels, not the samples: frame 90 000 starts at timeline sample 0.
        assert_eq!(clock.quarter_start_sample(4 * 90_000), 0);
        assert_eq!(clock.quarter_at_sample(-1), 4 * 90_000 - 1);
    }

    /// Half rate: our frames 2k and 2k+1 are one MTC frame; its four quarters spread over both.
    #[test]
    fn half_rate_sends_frame_pairs() {
        let rate = FrameRate::FPS_50;
        let f = MtcFormat::new(rate, true).unwrap();
        assert_eq!(f.time(49), MtcTime { hours: 0, minutes: 0, seconds: 0, frames: 24, code: RateCode::Fps25 });
        assert_eq!(f.time(48), f.time(49));
        let clock = QuarterClock::new(f, 48_000, 0);
        // One MTC frame = two 960-sample frames: quarters every 480 samples.
        let starts: Vec<i64> = (0..5).map(|q| clock.quarter_start_sample(q)).collect();
        assert_eq!(starts, [0, 480, 960, 1440, 1920]);
        assert_eq!(clock.carried_frame(7), 0);
        assert_eq!(clock.carried_frame(8), 4);
        // 59.94 DF: frame 3600 is 00:01:00;04, MTC 00:01:00;02 (the vectors' row).
        let df = MtcFormat::new(FrameRate::FPS_59_94_DF, true).unwrap();
        assert_eq!(hex(&df.full_frame(3600)), "F0 7F 7F 01 01 40 01 00 02 F7");
    }

    /// The format's quarter messages are the clock's, whatever the clock's sample rate or
    /// offset: they depend on the quarter index alone (the client's wall-time schedule uses them).
    #[test]
    fn quarter_messages_do_not_depend_on_the_timeline() {
        for (rate, half) in [(FrameRate::FPS_25, false), (FrameRate::FPS_29_97_DF, false), (FrameRate::FPS_60, true)] {
            let f = MtcFormat::new(rate, half).unwrap();
            for (sr, off) in [(48_000, 0), (44_100, 90_000), (1, -7)] {
                let clock = QuarterClock::new(f, sr, off);
                for q in -40..400 {
                    assert_eq!(f.quarter_message(q), clock.quarter_message(q), "{rate} quarter {q}");
                    assert_eq!(f.carried_frame(q), clock.carried_frame(q));
                }
            }
        }
        // Quarter 4·m is piece 0 (m even) or 4 (m odd) of the even frame's value.
        let f = MtcFormat::new(FrameRate::FPS_25, false).unwrap();
        assert_eq!(f.quarter_message(4 * 10), [0xF1, 10]);
        assert_eq!(f.quarter_message(4 * 11), [0xF1, 0x40]);
        assert_eq!(f.carried_frame(4 * 11 + 3), 10);
    }

    /// No input panics: extreme frames, quarters, offsets and a zero sample rate saturate.
    #[test]
    fn extremes_do_not_panic() {
        for rate in FrameRate::ALL {
            let f = MtcFormat::new(rate, true).unwrap();
            for sr in [0, 1, 48_000, u32::MAX] {
                for off in [i64::MIN, -1, 0, i64::MAX] {
                    let c = QuarterClock::new(f, sr, off);
                    for x in [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX] {
                        let _ = (c.quarter_start_sample(x), c.quarter_at_sample(x), c.first_quarter_from(x));
                        let m = c.quarter_message(x);
                        assert_eq!(m[0], 0xF1);
                        assert!(m[1] < 0x80);
                        let full = f.full_frame(x);
                        assert!(full[1..9].iter().all(|b| *b < 0x80), "{rate}: data bytes are 7-bit");
                    }
                }
            }
        }
    }
}
