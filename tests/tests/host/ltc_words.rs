//! The LTC words a transport's history puts in the plugin's output audio, and the check of what
//! x42's libltc (a decoder nobody here wrote) reads there against them. Shared by the CLAP host's
//! tests (`clap_ltc.rs`), the VST3 host's (`vst3.rs`) and headless Ardour's (`../ardour.rs`,
//! which includes this file with `#[path]`): one owner of what "the words are right" means.

#![allow(dead_code, reason = "each test binary uses its part")]

use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::expect::Timing;
use osc_timecode_tests::transport::{Played, SpanStart};

#[path = "../../../core/tests/interop/libltc.rs"]
pub mod libltc;

/// The level the LTC tests ask for, dBFS; the words' peak must be within 1.5 dB of it.
pub const LEVEL_DBFS: f64 = -12.0;

/// One word the audio must hold: its label and first sample in the captured audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// libltc's spelling of the label.
    pub label: String,
    /// Index into the captured audio.
    pub at: i64,
    /// The last word before the audio stops carrying LTC (libltc may not report it: it needs the
    /// next word's first edge).
    pub last_of_run: bool,
}

/// A history whose stopped or position-less blocks were each `block` samples of audio, as
/// [`expected_words`] takes it: each entry with its length in the captured audio (a span's is
/// its own).
pub fn with_block(history: &[Played], block: u32) -> Vec<(Played, i64)> {
    history
        .iter()
        .map(|played| match *played {
            Played::Span { start, end, .. } => (*played, end - start),
            Played::Parked(_) | Played::NoTransport => (*played, i64::from(block)),
        })
        .collect()
}

/// The words the history (each entry with its length in the captured audio, see [`with_block`])
/// puts in the audio, and the audio indices of its breaks (a locate, loop wrap, start or stop):
/// per run of continuous playing spans, every frame whose whole word lies in it (a word cut by a
/// break is not).
pub fn expected_words(history: &[(Played, i64)], t: Timing, half_rate: bool) -> (Vec<Word>, Vec<i64>) {
    let (sr, rate) = (t.sample_rate, t.rate);
    let step = if half_rate { 2 } else { 1 };
    let label_rate = if half_rate { half(rate) } else { rate };
    let mut words: Vec<Word> = Vec::new();
    let mut breaks = Vec::new();
    let mut audio = 0i64;
    for &(played, len) in history {
        match played {
            Played::Span { start, end, how } => {
                if how != SpanStart::Continue {
                    breaks.push(audio);
                    if let Some(last) = words.last_mut() {
                        last.last_of_run = true;
                    }
                }
                // Frames (with offset) whose word starts here and ends by `end`, the word being
                // one frame, or the pair of frames from an even label frame in half-rate mode.
                let first = frame_at_sample(start - 1, sr, rate) + 1;
                let mut f = first;
                while frame_start_sample(f, sr, rate) < end {
                    let label = f + t.offset_frames;
                    if label.rem_euclid(step) == 0 && frame_start_sample(f + step, sr, rate) <= end {
                        let tc = Timecode::from_frame(label.div_euclid(step), label_rate);
                        words.push(Word {
                            label: tc.label().as_str().to_owned(),
                            at: audio + frame_start_sample(f, sr, rate) - start,
                            last_of_run: false,
                        });
                    }
                    f += 1;
                }
                audio += end - start;
            }
            Played::Parked(_) | Played::NoTransport => {
                breaks.push(audio);
                if let Some(last) = words.last_mut() {
                    last.last_of_run = true;
                }
                audio += len;
            }
        }
    }
    if let Some(last) = words.last_mut() {
        last.last_of_run = true;
    }
    (words, breaks)
}

/// The rate of frame pairs.
pub fn half(rate: FrameRate) -> FrameRate {
    match rate.name() {
        "50" => FrameRate::FPS_25,
        "59.94" => FrameRate::FPS_29_97_NDF,
        "59.94df" => FrameRate::FPS_29_97_DF,
        _ => FrameRate::FPS_30,
    }
}

/// Checks libltc's reading of `audio` against `want`: every decoded word is a wanted word (label,
/// within 2 samples, level [`LEVEL_DBFS`]), in order, and every wanted word that is not the last
/// of its run is decoded. Around a break (audio index in `breaks`: locate, loop wrap, stop)
/// libltc is not ours to check: the word the break cuts it may skip, read, or misread (it read a
/// word missing its first 13 samples, and a cut one as 45:00:00:00), and it needs the first whole
/// word after the break to find the new bit phase (it placed one 2 bits late). So within a word's
/// length of a break, a word it reads elsewhere or not at all is let pass; everywhere else each
/// word must be there, within 2 samples. Returns what libltc read.
pub fn assert_words(
    audio: &[f32],
    sample_rate: u32,
    label_rate: FrameRate,
    (want, breaks): (&[Word], &[i64]),
    what: &str,
) -> Vec<libltc::Decoded> {
    let word_len = i64::from(sample_rate) * i64::from(label_rate.den()) / i64::from(label_rate.num()) + 2;
    let cut = |at: i64| breaks.iter().any(|&b| (b - word_len..=b + word_len).contains(&at));
    let decoded = libltc::decode(audio, sample_rate, label_rate, what);
    let mut next = 0;
    // A word libltc places before the audio's first sample is its reading of the partial word the
    // audio starts in (mid-frame), before it has the bit clock: not a word of ours.
    for d in decoded.iter().filter(|d| d.off_start >= 0) {
        let Some(i) = want[next..].iter().position(|w| (-2..=2).contains(&(d.off_start - w.at))) else {
            if cut(d.off_start) {
                continue;
            }
            panic!("{what}: libltc read {} at sample {}, where no word starts (or out of order)", d.label, d.off_start);
        };
        let w = &want[next + i];
        assert!(
            want[next..next + i].iter().all(|skipped| skipped.last_of_run || cut(skipped.at)),
            "{what}: words before {} at {} were not decoded: {:?}",
            w.label,
            w.at,
            &want[next..next + i]
        );
        assert_eq!(d.label, w.label, "{what}: the word at sample {}", w.at);
        assert_eq!(d.df, label_rate.is_drop(), "{what}: DF flag of {}", w.label);
        // User bits (the high nibble of bytes 0-7) all 0, colour-frame flag (bit 11) 0.
        let byte = |i: usize| u8::from_str_radix(&d.bytes[2 * i..2 * i + 2], 16).expect("hex");
        assert!((0..8).all(|i| byte(i) & 0xF0 == 0), "{what}: user bits of {}: {}", w.label, d.bytes);
        assert_eq!(byte(1) & 0x08, 0, "{what}: colour-frame flag of {}", w.label);
        assert!(
            (d.peak_dbfs - LEVEL_DBFS).abs() <= 1.5,
            "{what}: {} peaks at {} dBFS (libltc's estimate {}, envelope {})",
            w.label,
            d.peak_dbfs,
            d.volume_dbfs,
            d.range
        );
        next += i + 1;
    }
    assert!(
        want[next..].iter().all(|w| w.last_of_run),
        "{what}: words not decoded at the end: {:?} (decoded {})",
        &want[next..],
        decoded.len()
    );
    assert!(decoded.len() * 2 >= want.len(), "{what}: only {} of {} words decoded", decoded.len(), want.len());
    decoded
}
