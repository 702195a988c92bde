//! SMPTE ST 12-1 linear timecode (LTC): the 80-bit word of a frame and its biphase-mark audio.
//!
//! Why it is written here: LTC is the timecode lighting consoles and playback servers read on an
//! audio input, and it must come from the same integer frame clock as everything else. Frame
//! *n*'s word starts on frame *n*'s first sample ([`frame_start_sample`] of the timeline frame,
//! the start offset taken off: [`LtcWriter`]), its length is the next frame's first sample minus
//! this one's, and bit *k* starts at `start + floor(k·len/80)`, so 29.97 at 48 kHz (1601.6
//! samples a frame) never drifts: word lengths alternate between 1601 and 1602 samples and the
//! sum over any span equals the clock's sample count exactly.
//!
//! The word (ST 12-1 §8, bit numbers as transmitted, LSB of each field first; the layout of
//! libltc's `struct LTCFrame`):
//!
//! | bits | field | bits | field |
//! |---|---|---|---|
//! | 0–3 | frame units | 32–35 | minutes units |
//! | 8–9 | frame tens | 40–42 | minutes tens |
//! | 10 | drop-frame flag | 43 | binary group flag (0) |
//! | 11 | colour-frame flag (0) | 48–51 | hours units |
//! | 16–19 | seconds units | 56–57 | hours tens |
//! | 24–26 | seconds tens | 58 | binary group flag (0) |
//! | 27 | polarity correction at 24/30, binary group flag (0) at 25 | 59 | binary group flag (0) at 24/30, polarity correction at 25 |
//! | user bits 4–7, 12–15, 20–23, 28–31, 36–39, 44–47, 52–55, 60–63 | all 0 | 64–79 | sync word `0011 1111 1111 1101` |
//!
//! The polarity-correction bit makes the number of zeros in every word even (ST 12-1 §8.2.5;
//! libltc `ltc_frame_set_parity`). Biphase mark has a transition at every bit boundary and one
//! more in the middle of a 1 (ST 12-1 §9.3), so a word holds `80 + ones` transitions: an even
//! number. Every word therefore starts at the same polarity, whatever came before it, and the
//! signal is a pure function of (frame, sample inside the frame): [`LtcWriter`] needs no state
//! between blocks, renders any slice of any frame in any order, and a locate or a loop wrap never
//! leaves a polarity to repair.
//!
//! Rates: LTC has 24-, 25- and 30-frame words. 23.976 goes out as 24-frame words and 29.97
//! non-drop as 30-frame words with the drop flag clear (universal practice; receivers cannot tell
//! them from 24 and 30): [`Carriage`] (the one table for LTC, MTC and Art-Net) says so. 50, 59.94 and 60 have no LTC form and are refused
//! with [`LtcError::RateNotCarried`] unless `half_rate` is asked for, which sends frame pairs:
//! frames `2m` and `2m + 1` share the word of frame `m` at 25, 29.97 (DF or not) or 30.
//!
//! Edges: ST 12-1 asks for a 40 ± 10 µs rise time (10 % to 90 %). Each transition is a linear
//! ramp 50 µs wide centred on the ideal edge (its 10–90 % rise is 40 µs): about 2.4 samples at
//! 48 kHz, 10 at 192 kHz. A linear ramp was chosen over a raised cosine because it needs no
//! transcendental function per sample and its zero crossing stays exactly on the edge. The ramp is
//! always narrower than half a bit (at least 9 samples at 44.1 kHz), so ramps never overlap.
//!
//! Nothing here allocates, locks or panics; everything on the audio-thread path is integer
//! arithmetic plus one float multiply per sample.

use crate::carriage::{Carriage, NotCarried};
use crate::rate::FrameRate;
use crate::timecode::{Timecode, frame_start_sample};

/// Bits in an LTC word.
pub const WORD_BITS: usize = 80;

/// Bits 64–79 as stored LSB first in bytes 8 and 9 (the ST 12-1 sync word `0011 1111 1111 1101`
/// in transmission order; libltc writes the same field as `0xBFFC`).
const SYNC_BYTES: [u8; 2] = [0xFC, 0xBF];

/// Width of an edge ramp in seconds: a linear ramp's 10–90 % rise is 0.8 of its width, so 50 µs
/// gives ST 12-1's 40 µs rise time.
const RAMP_SECONDS: f64 = 50e-6;

/// The lowest sample rate the writer accepts: at 8 kHz a 30-frame half bit still spans more than
/// one sample.
pub const MIN_SAMPLE_RATE: u32 = 8000;

/// The quietest LTC level offered, dBFS (the plugin's `level_dbfs`, the client's
/// `--ltc-level-dbfs`). Below it LTC is too quiet for a reader to lock to reliably (libltc,
/// consoles' LTC inputs want a line-level signal); a lower value is a typo.
pub const MIN_LEVEL_DBFS: f32 = -60.0;

/// The loudest LTC level, dBFS: full scale. Above it the square wave would clip.
pub const MAX_LEVEL_DBFS: f32 = 0.0;

/// The default LTC level, dBFS (issue 16): a line-level signal with headroom.
pub const DEFAULT_LEVEL_DBFS: f32 = -18.0;

/// Why LTC cannot be produced as asked.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum LtcError {
    /// 50, 59.94 and 60 fps have no LTC form; only `half_rate` (frame pairs) carries them.
    #[error("LTC {0}")]
    RateNotCarried(NotCarried),
    /// The level is not a finite number at or below 0 dBFS.
    #[error("LTC level {0} dBFS is out of range: it must be a finite number at or below 0 dBFS")]
    Level(f32),
    /// The sample rate is below [`MIN_SAMPLE_RATE`].
    #[error("sample rate {0} Hz is too low for LTC (at least 8000 Hz)")]
    SampleRate(u32),
}

/// A frame rate checked for LTC: the rate of the frames and how it travels as words (the words
/// count [`Carriage::labels`]: 24-, 25- or 30-frame words, drop flag from the labels). `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LtcFormat {
    /// The rate of the frames the caller counts (the plugin's frame clock) and how it is carried.
    /// [thread-safe] (`Copy`).
    carriage: Carriage,
}

impl LtcFormat {
    /// The LTC form of `rate`. 50/59.94/60 are [`LtcError::RateNotCarried`] unless `half_rate`;
    /// `half_rate` changes nothing for rates LTC carries directly.
    pub fn new(rate: FrameRate, half_rate: bool) -> Result<Self, LtcError> {
        let carriage = Carriage::of(rate, half_rate).map_err(LtcError::RateNotCarried)?;
        Ok(Self { carriage })
    }

    /// The rate of the frames this format takes.
    pub fn rate(self) -> FrameRate {
        self.carriage.rate()
    }

    /// How the rate is carried; the words go at [`Carriage::labels`].
    pub fn carriage(self) -> Carriage {
        self.carriage
    }

    /// The word frame `frame` belongs to (frames `2m` and `2m + 1` share word `m` in half-rate
    /// mode).
    pub fn word(self, frame: i64) -> LtcWord {
        let carriage = self.carriage;
        LtcWord::of(Timecode::from_frame(carriage.carried_frame(frame), carriage.labels()))
    }
}

/// One 80-bit LTC word, bit `k` at byte `k / 8`, bit `k % 8` (the order of transmission and of
/// libltc's `LTCFrame` on a little-endian machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LtcWord([u8; 10]);

impl LtcWord {
    /// The word of `tc`. A label at 50, 59.94 or 60 fps has no word: count those frames through
    /// [`LtcFormat::word`] in half-rate mode.
    pub fn new(tc: Timecode) -> Result<Self, LtcError> {
        Carriage::of(tc.rate(), false).map_err(LtcError::RateNotCarried)?;
        Ok(Self::of(tc))
    }

    /// The word of a label whose nominal rate is 24, 25 or 30 (checked by the callers).
    fn of(tc: Timecode) -> Self {
        let mut b = [0u8; 10];
        let (h, m, s, f) = (tc.hours(), tc.minutes(), tc.seconds(), tc.frames());
        // Units in the low nibble of the even bytes; tens in the low bits of the odd ones
        // (user bits, colour frame and binary group flags stay 0).
        b[0] = f % 10;
        b[1] = (f / 10) | if tc.rate().is_drop() { 1 << 2 } else { 0 };
        b[2] = s % 10;
        b[3] = s / 10;
        b[4] = m % 10;
        b[5] = m / 10;
        b[6] = h % 10;
        b[7] = h / 10;
        b[8] = SYNC_BYTES[0];
        b[9] = SYNC_BYTES[1];
        let ones: u32 = b.iter().map(|x| x.count_ones()).sum();
        if ones % 2 == 1 {
            // Polarity correction: bit 59 at 25 fps, bit 27 at 24 and 30 (ST 12-1 §8.2.5).
            if tc.rate().nominal() == 25 {
                b[7] |= 1 << 3;
            } else {
                b[3] |= 1 << 3;
            }
        }
        Self(b)
    }

    /// The ten bytes, bit 0 first.
    pub fn bytes(self) -> [u8; 10] {
        self.0
    }

    /// The 80 bits in transmission order.
    pub fn bits(self) -> [bool; WORD_BITS] {
        core::array::from_fn(|k| self.bit(k))
    }

    /// Bit `k` (`k < 80`; bits past the word read as 0).
    pub fn bit(self, k: usize) -> bool {
        self.0.get(k / 8).is_some_and(|byte| byte >> (k % 8) & 1 == 1)
    }

    /// The word as one integer, bit `k` at `1 << k`.
    fn as_u128(self) -> u128 {
        let mut wide = [0u8; 16];
        wide[..10].copy_from_slice(&self.0);
        u128::from_le_bytes(wide)
    }
}

/// Renders LTC audio: frame `n`'s word over frame `n`'s samples, at a fixed sample rate, level,
/// format and start offset. `Copy`, a few words, no state between calls: see the module docs for
/// why none is needed.
///
/// Frames are numbered as the frame clock reports them, start offset included (the LABEL frame:
/// frame `n` is `Timecode::from_frame(n, rate)`), and placed where the clock places them: label
/// frame `n` starts at timeline sample `frame_start_sample(n - offset_frames)`. So the words carry
/// the clock's labels and their lengths follow the clock's frame lengths, even where those depend
/// on the frame number (1601/1602 at 29.97 and 48 kHz, 1839/1840 at 23.976 and 44.1 kHz) and the
/// offset is not a multiple of the pattern (00:10:00;00 at 29.97 DF is frame 17 982).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LtcWriter {
    /// The rate the frames are counted in and how it is carried. [main-thread] set, [audio-thread] read.
    format: LtcFormat,
    /// Samples per second of the output, at least [`MIN_SAMPLE_RATE`].
    sample_rate: u32,
    /// Peak amplitude of the square wave, linear full scale (1.0 = 0 dBFS).
    amplitude: f32,
    /// Half the ramp width in samples (the ramp spans ±this around each edge).
    half_ramp: f32,
    /// The frame clock's start offset, in frames at the format's rate: label frame `n` is
    /// timeline frame `n - offset_frames`.
    offset_frames: i64,
}

impl LtcWriter {
    /// A writer at `sample_rate` Hz with its square wave's peak at `level_dbfs` (≤ 0), for a frame
    /// clock whose frame numbers include `offset_frames` (`FrameClock::offset_frames`; 0 when
    /// frame numbers are timeline frames).
    pub fn new(format: LtcFormat, sample_rate: u32, level_dbfs: f32, offset_frames: i64) -> Result<Self, LtcError> {
        if !level_dbfs.is_finite() || level_dbfs > 0.0 {
            return Err(LtcError::Level(level_dbfs));
        }
        if sample_rate < MIN_SAMPLE_RATE {
            return Err(LtcError::SampleRate(sample_rate));
        }
        let amplitude = 10f64.powf(f64::from(level_dbfs) / 20.0) as f32;
        let half_ramp = (RAMP_SECONDS * f64::from(sample_rate) / 2.0) as f32;
        Ok(Self { format, sample_rate, amplitude, half_ramp, offset_frames })
    }

    /// The format this writer renders.
    pub fn format(self) -> LtcFormat {
        self.format
    }

    /// The output sample rate in Hz.
    pub fn sample_rate(self) -> u32 {
        self.sample_rate
    }

    /// Peak amplitude, linear full scale.
    pub fn amplitude(self) -> f32 {
        self.amplitude
    }

    /// The frame clock's start offset this writer was made for, in frames.
    pub fn offset_frames(self) -> i64 {
        self.offset_frames
    }

    /// First timeline sample of label frame `frame` (saturating at the ends of the `i64` range).
    fn start(self, frame: i64) -> i64 {
        frame_start_sample(frame.saturating_sub(self.offset_frames), self.sample_rate, self.format.rate())
    }

    /// Samples in label frame `frame`: the next frame's first sample minus this one's, as the
    /// clock counts them (0 for frames so far away that their start saturates the `i64` range).
    pub fn frame_len(self, frame: i64) -> u32 {
        let start = self.start(frame);
        let end = frame.checked_add(1).map_or(start, |next| self.start(next));
        u32::try_from(end.saturating_sub(start)).unwrap_or(0)
    }

    /// Writes samples `[offset, offset + out.len())` of label frame `frame` (counted from the
    /// frame's first sample) into `out`, clipped to the frame: returns how many samples were
    /// written, `min(out.len(), frame_len - offset)`, 0 when `offset` is at or past the frame's
    /// end. The rest of `out` is left as it was, so a block that crosses into the next frame
    /// continues with `fill(frame + 1, 0, &mut out[written..])`. [audio-thread]: no allocation,
    /// no panic.
    pub fn fill(self, frame: i64, offset: u32, out: &mut [f32]) -> usize {
        let len = self.frame_len(frame);
        let count = out.len().min(len.saturating_sub(offset) as usize);
        if count == 0 {
            return 0;
        }
        // The word this frame belongs to spans label frames `[m·step, (m + 1)·step)`. Half-rate
        // pairs go by LABEL frame, so labels :00 and :01 share the word of :00 at the half rate
        // whatever the offset. The clock's offsets are whole-second labels
        // (`clock::offset_frames`), and at 50, 59.94 and 60 a second holds an even number of
        // labels and a drop-frame minute skips an even number (4), so the offset is even and the
        // label pairs are also timeline pairs: each word starts on an even timeline frame.
        let carriage = self.format.carriage;
        let step = carriage.step();
        let word_first = carriage.carried_frame(frame).saturating_mul(step);
        let word_start = self.start(word_first);
        let word_len = self.start(word_first.saturating_add(step)).saturating_sub(word_start);
        if !(WORD_BITS as i64..=i64::from(u32::MAX)).contains(&word_len) {
            // Only for starts saturated at the ends of the i64 range.
            return 0;
        }
        let word = self.format.word(frame);
        let first = self.start(frame).saturating_sub(word_start).saturating_add(i64::from(offset));
        self.render(word, word_len, first, &mut out[..count]);
        count
    }

    /// Writes samples `[offset, offset + out.len())` of the word of label frame `frame` (the
    /// word of [`LtcFormat::word`]) laid over `len` samples, whatever the clock's frame lengths:
    /// for a stream whose words start where another clock says (the `osc-timecode` client's
    /// LTC, which follows a master's timeline in wall time). Returns how many samples were
    /// written, `min(out.len(), len - offset)`; 0 when `len` is under 80 samples or above
    /// `u32::MAX`... (never: `len` is a `u32`) or `offset` is at or past `len`. The rest of `out`
    /// is left as it was. No allocation, no panic.
    pub fn fill_word(self, frame: i64, len: u32, offset: u32, out: &mut [f32]) -> usize {
        let count = out.len().min(len.saturating_sub(offset) as usize);
        if count == 0 || (len as usize) < WORD_BITS {
            return 0;
        }
        self.render(self.format.word(frame), i64::from(len), i64::from(offset), &mut out[..count]);
        count
    }

    /// Samples `[first, first + out.len())` of `word`, `len` samples long (`len ≥ 80`,
    /// `first + out.len() ≤ len`).
    fn render(self, word: LtcWord, len: i64, first: i64, out: &mut [f32]) {
        let bits = word.as_u128();
        // Bit k's first sample, and the middle of bit k (where a 1 has its second transition).
        let edge = |k: i64| k * len / WORD_BITS as i64;
        let mid = |k: i64| (2 * k + 1) * len / (2 * WORD_BITS as i64);
        // The bit holding `first`: the largest k with edge(k) <= first.
        let mut k = ((WORD_BITS as i64 * (first + 1) + len - 1) / len - 1).clamp(0, WORD_BITS as i64 - 1);
        let is_one = |k: i64| bits >> k & 1 == 1;
        // Transitions from the word's start through bit k's start: k + 1 edges plus the middles
        // of the ones before k. Before the word the line is low, so an odd count means high.
        let ones_before = (bits & ((1u128 << k) - 1)).count_ones() as i64;
        let mut high = (k + 1 + ones_before) % 2 == 1;
        let mut prev_edge = edge(k);
        let mut next_edge = if is_one(k) { mid(k) } else { edge(k + 1) };
        if is_one(k) && first >= next_edge {
            high = !high;
            prev_edge = next_edge;
            next_edge = edge(k + 1);
        }
        let half_ramp = self.half_ramp;
        for (pos, sample) in (first..).zip(out.iter_mut()) {
            while pos >= next_edge {
                // Past bit k's middle (a 1) or into bit k + 1.
                high = !high;
                prev_edge = next_edge;
                if next_edge == edge(k + 1) {
                    k += 1;
                    next_edge = if is_one(k) { mid(k) } else { edge(k + 1) };
                } else {
                    next_edge = edge(k + 1);
                }
            }
            // An edge at sample e lies between samples e - 1 and e; `distance` is how far this
            // sample's centre is from the nearer edge (at least 0.5). The edge after bit 79 is
            // the next word's start, which always rises: its ramp begins in this word.
            let distance = ((pos - prev_edge) as f32 + 0.5).min((next_edge - pos) as f32 - 0.5);
            let shape = (distance / half_ramp).min(1.0);
            let level = if high { self.amplitude } else { -self.amplitude };
            *sample = level * shape;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(text: &str, rate: FrameRate) -> Timecode {
        Timecode::parse(text, rate).unwrap()
    }

    /// Golden words written by hand from the ST 12-1 §8 bit assignment (table in the module
    /// docs): BCD units/tens, DF flag bit 10, sync word bytes FC BF, and the polarity-correction
    /// bit (27 at 24/30, 59 at 25) set when the rest holds an odd number of ones.
    #[test]
    fn golden_words() {
        let cases: [(&str, FrameRate, [u8; 10]); 6] = [
            // hours units 1 → bit 48; ones 1 + 13 (sync) even: no correction.
            ("01:00:00:00", FrameRate::FPS_25, [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0xFC, 0xBF]),
            // 25 fps, ones 2 + 13 odd: bit 59 (byte 7, bit 3).
            ("00:00:00:03", FrameRate::FPS_25, [0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0xFC, 0xBF]),
            // DF flag bit 10 (byte 1, bit 2) with frame tens 2; ones 7 + 13 even.
            ("00:00:59;28", FrameRate::FPS_29_97_DF, [0x08, 0x06, 0x09, 0x05, 0x00, 0x00, 0x00, 0x00, 0xFC, 0xBF]),
            // ones 14 + 13 odd: bit 27 (byte 3, bit 3) at 30 fps.
            ("23:59:59:29", FrameRate::FPS_30, [0x09, 0x02, 0x09, 0x0D, 0x09, 0x05, 0x03, 0x02, 0xFC, 0xBF]),
            // 23.976 is a 24-frame word: ones 12 + 13 odd, bit 27.
            ("12:34:56:23", FrameRate::FPS_23_976, [0x03, 0x02, 0x06, 0x0D, 0x04, 0x03, 0x02, 0x01, 0xFC, 0xBF]),
            // 29.97 NDF: 30-frame word, drop flag clear; ones 4 + 13 odd, bit 27.
            ("00:10:00:29", FrameRate::FPS_29_97_NDF, [0x09, 0x02, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0xFC, 0xBF]),
        ];
        for (text, rate, bytes) in cases {
            let word = LtcWord::new(tc(text, rate)).unwrap();
            assert_eq!(word.bytes(), bytes, "{text} at {rate}");
            let zeros = word.bits().iter().filter(|b| !**b).count();
            assert_eq!(zeros % 2, 0, "{text}: an even number of zeros (ST 12-1 §8.2.5)");
            // Sync word 0011 1111 1111 1101 in transmission order (bits 64–79).
            let sync: Vec<bool> = word.bits()[64..].to_vec();
            let expected: Vec<bool> = "0011111111111101".chars().map(|c| c == '1').collect();
            assert_eq!(sync, expected, "{text}: sync word");
        }
    }

    /// The table is [`Carriage`]'s: LTC takes it as is, and its words count the carried labels.
    #[test]
    fn rates_and_carriage() {
        for rate in FrameRate::ALL {
            for half in [false, true] {
                let f = LtcFormat::new(rate, half).map(LtcFormat::carriage);
                assert_eq!(f, Carriage::of(rate, half).map_err(LtcError::RateNotCarried), "{rate} half_rate={half}");
            }
        }
        assert_eq!(
            LtcFormat::new(FrameRate::FPS_50, false).unwrap_err().to_string(),
            "LTC cannot carry 50 fps: turn on half_rate to send frame pairs at 25 fps"
        );
        let halves = [
            (FrameRate::FPS_50, FrameRate::FPS_25),
            (FrameRate::FPS_59_94_NDF, FrameRate::FPS_29_97_NDF),
            (FrameRate::FPS_59_94_DF, FrameRate::FPS_29_97_DF),
            (FrameRate::FPS_60, FrameRate::FPS_30),
        ];
        for (rate, half) in halves {
            let refused = Carriage::of(rate, false).unwrap_err();
            assert_eq!(LtcWord::new(Timecode::from_frame(0, rate)), Err(LtcError::RateNotCarried(refused)));
            let f = LtcFormat::new(rate, true).unwrap();
            // Frames 2m and 2m + 1 carry label m at the half rate, across a day's wrap too.
            for frame in [-3i64, -2, -1, 0, 1, 7_199, 7_200, 5_000_001] {
                let label = Timecode::from_frame(frame.div_euclid(2), half);
                assert_eq!(f.word(frame), LtcWord::new(label).unwrap(), "{rate} frame {frame}");
            }
        }
        let f = LtcFormat::new(FrameRate::FPS_25, false).unwrap();
        assert_eq!(LtcWriter::new(f, 48_000, 0.5, 0), Err(LtcError::Level(0.5)));
        assert!(LtcWriter::new(f, 48_000, f32::NAN, 0).unwrap_err().to_string().contains("NaN"));
        assert_eq!(LtcWriter::new(f, 7_999, -18.0, 0), Err(LtcError::SampleRate(7_999)));
        let w = LtcWriter::new(f, 48_000, -18.0, 0).unwrap();
        assert!((w.amplitude() - 0.125_892_54).abs() < 1e-6, "-18 dBFS is 10^(-18/20)");
    }

    /// ST 12-1 §9.3 biphase mark, square at 8 kHz (the 50 µs ramp is under a sample): 25 fps
    /// gives 320 samples a word, 4 a bit. Every word starts high (the line is low before it).
    #[test]
    fn golden_samples_square() {
        let f = LtcFormat::new(FrameRate::FPS_25, false).unwrap();
        let w = LtcWriter::new(f, 8_000, 0.0, 0).unwrap();
        let frame = tc("01:00:00:00", FrameRate::FPS_25).to_frame();
        let mut out = [0.0f32; 320];
        assert_eq!(w.fill(frame, 0, &mut out), 320);
        let mut expected = Vec::new();
        let mut high = false;
        for bit in LtcWord::new(tc("01:00:00:00", FrameRate::FPS_25)).unwrap().bits() {
            high = !high;
            let first = if high { 1.0 } else { -1.0 };
            let second = if bit { -first } else { first };
            high ^= bit;
            expected.extend([first, first, second, second]);
        }
        assert_eq!(out.to_vec(), expected);
        // Bits 0–3 (frame units 0) and bit 48 (hours units 1) by hand.
        assert_eq!(out[..16], [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0]);
        assert_eq!(out[192..196], [1.0, 1.0, -1.0, -1.0], "bit 48 is a 1: a transition mid-bit");
    }

    /// Decodes `samples` (one word) by the signs of their samples: bit k is 1 when its two
    /// halves differ. Independent of the writer's walk: it samples the middles of the halves.
    fn decode_signs(samples: &[f32]) -> [bool; WORD_BITS] {
        let len = samples.len() as i64;
        core::array::from_fn(|k| {
            let k = k as i64;
            let q1 = (4 * k + 1) * len / 320;
            let q3 = (4 * k + 3) * len / 320;
            (samples[q1 as usize] > 0.0) != (samples[q3 as usize] > 0.0)
        })
    }

    /// Renders label frames `[first, first + frames)` whole, one after the other, and again in
    /// 61-sample blocks across frame boundaries: the same samples.
    fn render_both_ways(w: LtcWriter, first: i64, frames: i64) -> Vec<f32> {
        let total: usize = (first..first + frames).map(|n| w.frame_len(n) as usize).sum();
        let mut whole = vec![0.0f32; total];
        let mut at = 0;
        for n in first..first + frames {
            at += w.fill(n, 0, &mut whole[at..]);
        }
        assert_eq!(at, total);
        let mut sliced = vec![0.0f32; total];
        let (mut n, mut offset, mut at) = (first, 0u32, 0);
        while at < total {
            let end = (at + 61).min(total);
            let mut block = &mut sliced[at..end];
            while !block.is_empty() {
                let written = w.fill(n, offset, block);
                offset += written as u32;
                block = &mut block[written..];
                if offset == w.frame_len(n) {
                    (n, offset) = (n + 1, 0);
                }
            }
            at = end;
        }
        assert_eq!(whole, sliced, "slicing changes nothing");
        whole
    }

    #[test]
    fn frames_render_their_words_in_any_slicing() {
        for (rate, half, sr) in [
            (FrameRate::FPS_29_97_DF, false, 48_000),
            (FrameRate::FPS_23_976, false, 44_100),
            (FrameRate::FPS_25, false, 96_000),
            (FrameRate::FPS_30, false, 192_000),
            (FrameRate::FPS_59_94_DF, true, 48_000),
            (FrameRate::FPS_50, true, 44_100),
        ] {
            let format = LtcFormat::new(rate, half).unwrap();
            let w = LtcWriter::new(format, sr, -18.0, 0).unwrap();
            let first = 17_980;
            let frames = 40;
            let whole = render_both_ways(w, first, frames);
            // Each word where the clock says, carrying its label.
            let per_word = if half { 2 } else { 1 };
            let origin = frame_start_sample(first, sr, rate);
            for n in (first..first + frames).step_by(per_word) {
                let start = (frame_start_sample(n, sr, rate) - origin) as usize;
                let end = (frame_start_sample(n + per_word as i64, sr, rate) - origin) as usize;
                let bits = decode_signs(&whole[start..end]);
                assert_eq!(bits, format.word(n).bits(), "{rate} at {sr}: frame {n}");
                assert!(whole[start] > 0.0 && whole[end - 1] < 0.0, "word {n} starts rising, ends low");
            }
            let peak = whole.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!((peak - w.amplitude()).abs() < 1e-6, "{rate}: peak {peak}");
        }
    }

    /// With a start offset the writer takes the clock's LABEL frames (offset included) and puts
    /// each word where the real [`crate::clock::FrameClock`] starts that frame: the word of frame
    /// `f` rises exactly on the clock's first sample of `f` (timeline `frame_start_sample(f -
    /// offset)`), the sample before it is the previous word's low end, and every frame's length
    /// is the clock's. The `shifted` cases are those where the frame lengths counted from the
    /// label frame would disagree (the offset is not a multiple of the 1601/1602 or 1839/1840
    /// pattern), so the test fails for a writer that ignores the offset.
    #[test]
    fn a_start_offset_keeps_the_clock_s_frame_starts() {
        use crate::clock::{BlockInput, FrameClock, offset_frames};
        use FrameRate as R;
        // (rate, half_rate, sample rate, offset in whole seconds of label, shifted)
        let cases = [
            (R::FPS_29_97_DF, false, 48_000, 600, true), // 00:10:00;00 = frame 17 982
            (R::FPS_29_97_DF, false, 44_100, 600, true),
            (R::FPS_23_976, false, 44_100, 3_600, false), // 01:00:00:00 = 86 400, a multiple of 80
            (R::FPS_23_976, false, 44_100, 3_601, true),
            (R::FPS_29_97_NDF, false, 44_100, 3_661, true),
            (R::FPS_29_97_NDF, false, 48_000, 3_661, false), // 30 labels a second: a multiple of 5
            (R::FPS_59_94_DF, true, 48_000, 3_600, true),
            (R::FPS_59_94_NDF, true, 44_100, 61, true),
            (R::FPS_50, true, 44_100, 3_600, false),
        ];
        for (rate, half, sr, seconds, shifted) in cases {
            let offset = offset_frames(seconds, rate);
            let what = format!("{rate} half_rate={half} at {sr} Hz, offset {}", Timecode::from_frame(offset, rate));
            let format = LtcFormat::new(rate, half).unwrap();
            let w = LtcWriter::new(format, sr, -18.0, offset).unwrap();
            assert_eq!(w.offset_frames(), offset);
            // The clock plays from timeline sample 0 in 512-sample blocks: (label frame, sample).
            let mut clock = FrameClock::new(sr, rate, offset);
            let mut starts = Vec::new();
            for block in 0..40 {
                let pos = block * 512;
                let input = BlockInput { playing: true, position: Some(pos), loop_range: None, len: 512 };
                clock.process_block(input, |e| starts.push((e.frame, pos + i64::from(e.offset))));
            }
            assert_eq!(starts[0], (offset, 0), "{what}: the clock starts at the offset");
            let frames = starts.len() as i64 - 1;
            let whole = render_both_ways(w, offset, frames);
            let mut differs = false;
            for pair in starts.windows(2) {
                let ((f, s), (next, next_s)) = (pair[0], pair[1]);
                assert_eq!(next, f + 1, "{what}");
                assert_eq!(i64::from(w.frame_len(f)), next_s - s, "{what}: frame {f}'s length is the clock's");
                differs |= frame_start_sample(f + 1, sr, rate) - frame_start_sample(f, sr, rate) != next_s - s;
                if format.carriage().carried_frame(f) * format.carriage().step() != f {
                    continue; // the second frame of a pair: inside its word
                }
                let step = format.carriage().step() as usize;
                let Some(&(_, end)) = starts.get(starts.iter().position(|x| x.0 == f).unwrap() + step) else { break };
                let (s, end) = (s as usize, end as usize);
                assert!(whole[s] > 0.0, "{what}: frame {f}'s word rises on the clock's first sample {s}");
                assert!(s == 0 || whole[s - 1] < 0.0, "{what}: frame {f}: the sample before is the last word's end");
                assert_eq!(decode_signs(&whole[s..end]), format.word(f).bits(), "{what}: frame {f}");
                let label = Timecode::from_frame(format.carriage().carried_frame(f), format.carriage().labels());
                assert_eq!(format.word(f), LtcWord::new(label).unwrap(), "{what}: frame {f}");
            }
            assert_eq!(differs, shifted, "{what}: lengths by label frame differ from the clock's");
        }
    }

    /// Half-rate pairs go by label frame and the clock's offsets are whole-second labels: at 50,
    /// 59.94 and 60 fps every such offset is even, so label pairs are timeline pairs.
    #[test]
    fn half_rate_offsets_are_even() {
        for rate in [FrameRate::FPS_50, FrameRate::FPS_59_94_NDF, FrameRate::FPS_59_94_DF, FrameRate::FPS_60] {
            for seconds in (0..86_400).step_by(7).chain([60, 61, 600, 3_599, 3_600, 86_399]) {
                let offset = crate::clock::offset_frames(seconds, rate);
                assert_eq!(offset % 2, 0, "{rate}: offset {}", Timecode::from_frame(offset, rate));
            }
        }
    }

    /// Edges take 40 ± 10 µs from 10 % to 90 % (ST 12-1 §9.2): at 192 kHz the ramp spans about
    /// ten samples, so its samples between the two thresholds are measurable.
    #[test]
    fn rise_time() {
        let f = LtcFormat::new(FrameRate::FPS_25, false).unwrap();
        let w = LtcWriter::new(f, 192_000, 0.0, 0).unwrap();
        let mut out = vec![0.0f32; w.frame_len(0) as usize];
        w.fill(0, 0, &mut out);
        // Bit 0 (a 0) ends at sample 96: a falling edge between 95 and 96.
        let between = out[80..112].iter().filter(|s| s.abs() < 0.8).count();
        let micros = between as f64 * 1e6 / 192_000.0;
        assert!((30.0..=50.0).contains(&micros), "10–90 % took {micros} µs");
        assert!(out[95] > 0.0 && out[96] < 0.0, "zero crossing on the edge");
    }

    /// 29.97 at 48 kHz for an hour of frames: word lengths 1601/1602 and the total exact.
    #[test]
    fn no_drift_over_an_hour() {
        let rate = FrameRate::FPS_29_97_DF;
        let w = LtcWriter::new(LtcFormat::new(rate, false).unwrap(), 48_000, -18.0, 0).unwrap();
        let frames = 107_892; // one hour of 29.97 DF labels
        let mut total = 0i64;
        for n in 0..frames {
            let len = w.frame_len(n);
            assert!(len == 1601 || len == 1602, "frame {n}: {len}");
            total += i64::from(len);
        }
        assert_eq!(total, frame_start_sample(frames, 48_000, rate));
        // 107892 × 1001 / 30000 s = 3599.9964 s: 172 799 827.2 samples, the first whole one 828.
        assert_eq!(total, 172_799_828);
    }

    /// `fill_word` over the clock's own length is `fill`; over another length it carries the
    /// same bits, stretched, in any slicing; too short a word or an offset past it writes nothing.
    #[test]
    fn fill_word_lays_a_word_over_any_length() {
        let f = LtcFormat::new(FrameRate::FPS_29_97_DF, false).unwrap();
        let w = LtcWriter::new(f, 48_000, -18.0, 0).unwrap();
        let frame = 17_982;
        let len = w.frame_len(frame);
        let (mut a, mut b) = (vec![0.0f32; len as usize], vec![0.0f32; len as usize]);
        assert_eq!(w.fill(frame, 0, &mut a), len as usize);
        assert_eq!(w.fill_word(frame, len, 0, &mut b), len as usize);
        assert_eq!(a, b);
        for other in [1_590u32, 1_613] {
            let mut whole = vec![0.0f32; other as usize];
            assert_eq!(w.fill_word(frame, other, 0, &mut whole), other as usize);
            assert_eq!(decode_signs(&whole), f.word(frame).bits());
            let mut sliced = vec![0.0f32; other as usize];
            for (i, chunk) in sliced.chunks_mut(37).enumerate() {
                assert_eq!(w.fill_word(frame, other, 37 * i as u32, chunk), chunk.len());
            }
            assert_eq!(whole, sliced, "{other}: slicing changes nothing");
        }
        let mut out = [7.0f32; 8];
        assert_eq!(w.fill_word(frame, 79, 0, &mut out), 0);
        assert_eq!(w.fill_word(frame, 1_600, 1_600, &mut out), 0);
        assert_eq!(w.fill_word(frame, 1_600, 1_597, &mut out), 3);
        assert!(out[3..].iter().all(|s| *s == 7.0));
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        for rate in [FrameRate::FPS_30, FrameRate::FPS_60] {
            for offset in [i64::MIN, -1, 0, 1, 216_000, i64::MAX] {
                let w = LtcWriter::new(LtcFormat::new(rate, true).unwrap(), 48_000, -18.0, offset).unwrap();
                let mut out = [7.0f32; 64];
                for frame in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                    let n = w.fill(frame, 0, &mut out);
                    assert!(n == 0 || n == 64, "frame {frame} offset {offset}: {n}");
                }
                assert_eq!(w.fill(0, u32::MAX, &mut out), 0);
                if w.frame_len(0) > 3 {
                    out = [7.0f32; 64];
                    assert_eq!(w.fill(0, w.frame_len(0) - 3, &mut out), 3);
                    assert!(out[3..].iter().all(|s| *s == 7.0), "past the frame untouched");
                }
            }
        }
    }
}
