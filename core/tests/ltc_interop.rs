//! Our LTC read by a decoder nobody here wrote: x42's libltc 1.3.2 (Debian `libltc11`, which
//! `ardour` pulls in) through ctypes in `tests/interop/ltc_decode.py`. The writer renders a few
//! seconds of frames in 512-sample blocks, as the audio thread would, into a temporary file of
//! float32 samples; the script decodes it with `ltc_decoder_write_float`/`ltc_decoder_read` and
//! prints libltc's label (`ltc_frame_to_time`), drop-frame bit, `off_start`, bytes and the word's
//! peak level. This
//! side checks every word against `Timecode`'s label of its frame (not the encoder) and its first
//! sample against `frame_start_sample` within libltc's own 0–2 sample detection latency (its
//! `off_start` is documented as approximate), for every word, so no drift can hide. The exact
//! sample positions are proven in `ltc.rs`'s unit tests.

use osc_timecode_core::clock::offset_frames;
use osc_timecode_core::ltc::{LtcFormat, LtcWriter};
use osc_timecode_core::timecode::frame_start_sample;
use osc_timecode_core::{FrameRate, Timecode};

#[path = "interop/libltc.rs"]
mod libltc;

use libltc::{decode, require_libltc};

/// The level the writer is asked for; libltc must measure it within 1.5 dB.
const LEVEL_DBFS: f32 = -18.0;

/// Renders frames `[first, first + frames]` in 512-sample blocks and decodes them: every word in
/// order, label and DF flag from `Timecode`, `off_start` on the word's first frame's first
/// sample, level within 1.5 dB, user bits 0, for the words of `[first, first + frames)`.
fn check(rate: FrameRate, half_rate: bool, sample_rate: u32, start: &str, frames: i64) {
    check_with_offset(rate, half_rate, sample_rate, start, frames, 0);
}

/// As [`check`], for a frame clock with a start offset of `offset_seconds` (whole seconds of
/// label, as the plugin's): the writer is given the clock's label frames, and each word must
/// start where the clock starts its frame, timeline sample `frame_start_sample(n - offset)`.
fn check_with_offset(
    rate: FrameRate,
    half_rate: bool,
    sample_rate: u32,
    start: &str,
    frames: i64,
    offset_seconds: u32,
) {
    let offset = offset_frames(offset_seconds, rate);
    let what = format!(
        "{rate} half_rate={half_rate} at {sample_rate} Hz from {start}, offset {}",
        Timecode::from_frame(offset, rate)
    );
    let format = LtcFormat::new(rate, half_rate).expect("carried");
    let writer = LtcWriter::new(format, sample_rate, LEVEL_DBFS, offset).expect("writer");
    let first = Timecode::parse(start, rate).expect("start label").to_frame();
    let step = if half_rate { 2 } else { 1 };
    // The clock's first sample of label frame n.
    let clock_start = |n: i64| frame_start_sample(n - offset, sample_rate, rate);
    // libltc reports a word when the next one's first edge closes its sync word: one word more.
    let origin = clock_start(first);
    let total = (clock_start(first + frames + step) - origin) as usize;
    let mut samples = vec![0.0f32; total];
    let (mut frame, mut offset, mut at) = (first, 0u32, 0usize);
    while at < total {
        let block_end = (at + 512).min(total);
        let mut block = &mut samples[at..block_end];
        while !block.is_empty() {
            let written = writer.fill(frame, offset, block);
            assert!(written > 0, "{what}: frame {frame} offset {offset} wrote nothing");
            offset += written as u32;
            block = &mut block[written..];
            if offset == writer.frame_len(frame) {
                (frame, offset) = (frame + 1, 0);
            }
        }
        at = block_end;
    }
    let decoded = decode(&samples, sample_rate, format.carriage().labels(), &what);
    let expected: Vec<i64> = (first..first + frames).step_by(step as usize).collect();
    assert!(
        decoded.len() >= expected.len(),
        "{what}: words decoded: {:?}",
        decoded.iter().map(|d| &d.label).collect::<Vec<_>>()
    );
    for (d, &n) in decoded.iter().zip(&expected) {
        let label = Timecode::from_frame(format.carriage().carried_frame(n), format.carriage().labels()).label();
        assert_eq!(d.label, label.as_str(), "{what}: frame {n}");
        assert_eq!(d.df, rate.is_drop(), "{what}: frame {n} DF flag");
        let start = clock_start(n) - origin;
        // libltc documents off_start as "the approximate sample": it lands 0 to 2 samples late
        // (0 at 25 and 30 fps at 48 kHz, 1 or 2 at 29.97 where frames are 1601/1602 samples).
        // The bound holds for every word of the stream, so the words never drift.
        let late = d.off_start - start;
        assert!((0..=2).contains(&late), "{what}: frame {n} ({label}) word starts {late} samples from its frame");
        assert!(
            (d.peak_dbfs - f64::from(LEVEL_DBFS)).abs() <= 1.5,
            "{what}: frame {n} peak {} dBFS (libltc's estimate {} dBFS, 8-bit envelope {})",
            d.peak_dbfs,
            d.volume_dbfs,
            d.range
        );
        // User bits (the high nibble of bytes 0–7) all 0.
        let bytes: Vec<u8> =
            (0..10).map(|i| u8::from_str_radix(&d.bytes[2 * i..2 * i + 2], 16).expect("hex")).collect();
        assert!(bytes[..8].iter().all(|b| b & 0xF0 == 0), "{what}: frame {n} user bits {}", d.bytes);
    }
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn libltc_decodes_every_carried_rate() {
    require_libltc();
    // 25, 29.97 DF (across a dropped minute) and 30 (through midnight) at 48 kHz, as the issue
    // asks; then the other carried rates and 29.97 DF at the other sample rates.
    check(FrameRate::FPS_25, false, 48_000, "00:59:58:00", 100);
    check(FrameRate::FPS_29_97_DF, false, 48_000, "00:00:58;00", 120);
    check(FrameRate::FPS_30, false, 48_000, "23:59:58:00", 120);
    check(FrameRate::FPS_24, false, 48_000, "01:00:00:00", 96);
    check(FrameRate::FPS_23_976, false, 48_000, "01:00:00:00", 96);
    check(FrameRate::FPS_29_97_NDF, false, 48_000, "00:09:59:00", 120);
    for sample_rate in [44_100, 96_000, 192_000] {
        check(FrameRate::FPS_29_97_DF, false, sample_rate, "00:09:58;00", 120);
        check(FrameRate::FPS_25, false, sample_rate, "10:00:00:00", 50);
    }
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn libltc_decodes_half_rate() {
    require_libltc();
    check(FrameRate::FPS_50, true, 48_000, "00:00:59:00", 200);
    check(FrameRate::FPS_59_94_DF, true, 48_000, "00:00:58;00", 240);
    check(FrameRate::FPS_59_94_NDF, true, 48_000, "00:00:58:00", 240);
    check(FrameRate::FPS_60, true, 44_100, "23:59:59:00", 240);
}

/// A start offset the frame lengths' pattern does not divide (00:10:00;00 at 29.97 DF is frame
/// 17 982; 01:00:01:00 at 23.976 is 86 424, not a multiple of 44.1 kHz's 80-frame pattern), as
/// the plugin's frame clock numbers frames: libltc reads the offset's labels with every word on
/// the clock's frame start, across a dropped minute too.
#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn libltc_decodes_words_of_a_clock_with_a_start_offset() {
    require_libltc();
    check_with_offset(FrameRate::FPS_29_97_DF, false, 48_000, "00:10:58;00", 120, 600);
    check_with_offset(FrameRate::FPS_29_97_DF, false, 44_100, "00:10:00;00", 90, 600);
    check_with_offset(FrameRate::FPS_23_976, false, 44_100, "01:00:00:00", 96, 3_600);
    check_with_offset(FrameRate::FPS_23_976, false, 44_100, "01:00:01:00", 96, 3_601);
    check_with_offset(FrameRate::FPS_59_94_DF, true, 48_000, "01:00:58;00", 240, 3_600);
}
