//! LTC in the plugin's audio output, read by x42's libltc (a decoder nobody here wrote) from what
//! the real CLAP host captured: every word complete in the audio is found, in order, with the
//! frame's label and drop-frame flag, starting on the frame's first sample (libltc reports it 0
//! to 2 samples late, see `core/tests/ltc_interop.rs`), at the configured level; across pre-roll
//! through midnight, a locate, loop wraps inside blocks and a stop, at several rates and sample
//! rates. Parked: silence, or the parked frame repeated (`still`). 50 fps without half rate:
//! silence on the LTC channel, never the program audio.

use osc_timecode_core::timecode::frame_start_sample;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::clap::{ClapPlugin, Param};
use osc_timecode_tests::expect::{Timing, offset_frames};
use osc_timecode_tests::transport::{Played, SpanStart, Transport};
use serde_json::json;

#[path = "../../../core/tests/interop/libltc.rs"]
mod libltc;

use crate::common::rate;

/// The level asked for; the words' peak must be within 1.5 dB of it.
const LEVEL_DBFS: f64 = -12.0;

/// Block size of every run here (parked blocks are this long).
const BLOCK: u32 = 512;

/// A plugin writing LTC on the left channel at `rate`, activated at `sample_rate`, capturing audio.
fn ltc_plugin(
    sample_rate: u32,
    rate: FrameRate,
    offset_seconds: u32,
    ltc: serde_json::Value,
    half_rate: bool,
) -> ClapPlugin {
    let mut plugin = ClapPlugin::load();
    plugin.capture_audio = true;
    plugin.update_settings(|s| {
        s.insert("targets".into(), json!([]));
        s.insert("ltc".into(), ltc);
        s.insert("half_rate".into(), json!(half_rate));
    });
    plugin.set_param(Param::Rate, rate.index() as f64);
    if offset_seconds > 0 {
        plugin.set_param(Param::Offset, f64::from(offset_seconds));
    }
    plugin.activate(sample_rate, BLOCK);
    plugin
}

/// One word the audio must hold: its label and first sample in the captured audio.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    /// libltc's spelling of the label.
    label: String,
    /// Index into the captured audio.
    at: i64,
    /// The last word before the audio stops carrying LTC (libltc may not report it: it needs the
    /// next word's first edge).
    last_of_run: bool,
}

/// The words the transport's history puts in the audio: per run of continuous playing spans,
/// every frame whose whole word lies in it (a word cut by a locate, wrap or stop is not).
fn expected_words(history: &[Played], t: Timing, half_rate: bool) -> (Vec<Word>, Vec<i64>) {
    let (sr, rate) = (t.sample_rate, t.rate);
    let step = if half_rate { 2 } else { 1 };
    let label_rate = if half_rate { half(rate) } else { rate };
    let mut words: Vec<Word> = Vec::new();
    let mut breaks = Vec::new();
    let mut audio = 0i64;
    for played in history {
        match *played {
            Played::Span { start, end, how } => {
                if how != SpanStart::Continue {
                    breaks.push(audio);
                    if let Some(last) = words.last_mut() {
                        last.last_of_run = true;
                    }
                }
                // Frames (with offset) whose word starts here and ends by `end`, the word being
                // one frame, or the pair of frames from an even label frame in half-rate mode.
                let first = osc_timecode_core::timecode::frame_at_sample(start - 1, sr, rate) + 1;
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
                audio += i64::from(BLOCK);
            }
        }
    }
    if let Some(last) = words.last_mut() {
        last.last_of_run = true;
    }
    (words, breaks)
}

/// The rate of frame pairs.
fn half(rate: FrameRate) -> FrameRate {
    match rate.name() {
        "50" => FrameRate::FPS_25,
        "59.94" => FrameRate::FPS_29_97_NDF,
        "59.94df" => FrameRate::FPS_29_97_DF,
        _ => FrameRate::FPS_30,
    }
}

/// Checks libltc's reading of `audio` against `want`: every decoded word is a wanted word (label,
/// within 2 samples, level), in order, and every wanted word that is not the last of its run
/// is decoded. Around a break (audio index in `breaks`: locate, loop wrap, stop) libltc is not
/// ours to check: the word the break cuts it may skip, read, or misread (it read a word missing
/// its first 13 samples, and a cut one as 45:00:00:00), and it needs the first whole word after
/// the break to find the new bit phase (it placed one 2 bits late). So within a word's length
/// of a break, a word it reads elsewhere or not at all is let pass; everywhere else each word
/// must be there, within 2 samples.
fn assert_words(audio: &[f32], sample_rate: u32, label_rate: FrameRate, (want, breaks): (&[Word], &[i64]), what: &str) {
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
}

/// Plays pre-roll through midnight, a locate, a loop whose wraps fall inside blocks and a stop
/// at `rate` and `sample_rate`, and checks libltc's reading.
fn ltc_follows_the_transport(rate_name: &str, sample_rate: u32, offset_seconds: u32, half_rate: bool) {
    libltc::require_libltc();
    let rate = rate(rate_name);
    let what = format!("LTC {rate_name} at {sample_rate} Hz, offset {offset_seconds} s, half rate {half_rate}");
    let ltc = json!({"channel": "left", "level_dbfs": LEVEL_DBFS, "stopped": "silence"});
    let mut plugin = ltc_plugin(sample_rate, rate, offset_seconds, ltc, half_rate);
    let mut transport = Transport::new(sample_rate);
    let mut audio = [Vec::new(), Vec::new()];
    // Each run reports its own audio: keep them in order.
    let sr = i64::from(sample_rate);
    transport.locate(-sr);
    transport.play();
    let blocks = |seconds: f64| (seconds * sr as f64 / f64::from(BLOCK)).ceil() as usize;
    let mut keep = |report: osc_timecode_tests::clap::RunReport| {
        for (kept, got) in audio.iter_mut().zip(report.audio) {
            kept.extend(got);
        }
    };
    keep(plugin.run_scripted(&mut transport, blocks(2.0), |_, _| BLOCK));
    transport.locate(37 * sr / 10 + 77);
    transport.set_loop(Some((4 * sr + 13, 5 * sr + 301)));
    keep(plugin.run_scripted(&mut transport, blocks(3.5), |_, _| BLOCK));
    transport.set_loop(None);
    transport.stop();
    keep(plugin.run_scripted(&mut transport, 8, |_, _| BLOCK));
    let timing = Timing { offset_frames: offset_frames(offset_seconds, rate), ..Timing::new(sample_rate, rate) };
    let (want, breaks) = expected_words(transport.history(), timing, half_rate);
    assert!(want.len() > 100, "{what}: the script must play many words ({})", want.len());
    let label_rate = if half_rate { half(rate) } else { rate };
    assert_words(&audio[0], sample_rate, label_rate, (&want, &breaks), &what);
    let stopped = &audio[0][audio[0].len() - 6 * BLOCK as usize..];
    assert!(stopped.iter().all(|s| *s == 0.0), "{what}: silence while stopped");
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_25_at_48k_through_midnight_locate_loop_and_stop() {
    ltc_follows_the_transport("25", 48_000, 0, false);
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_29_97df_at_44k1_with_a_ten_minute_offset() {
    ltc_follows_the_transport("29.97df", 44_100, 600, false);
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_23_976_at_96k_with_an_hour_offset() {
    ltc_follows_the_transport("23.976", 96_000, 3_600, false);
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_30_at_192k() {
    ltc_follows_the_transport("30", 192_000, 0, false);
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_50_at_half_rate_goes_as_25_fps_pairs() {
    ltc_follows_the_transport("50", 48_000, 3_600, true);
}

#[test]
fn ltc_50_without_half_rate_is_silence_never_program_audio() {
    let ltc = json!({"channel": "both", "level_dbfs": LEVEL_DBFS, "stopped": "still"});
    let mut plugin = ltc_plugin(48_000, FrameRate::FPS_50, 0, ltc, false);
    let mut transport = Transport::new(48_000);
    transport.play();
    let report = plugin.run_scripted(&mut transport, 50, |_, _| BLOCK);
    assert_eq!(report.audio[0].len(), 50 * BLOCK as usize);
    assert!(report.audio.iter().flatten().all(|s| *s == 0.0), "both LTC channels silent at a refused rate");
}

#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn ltc_still_repeats_the_parked_frame() {
    libltc::require_libltc();
    let ltc = json!({"channel": "right", "level_dbfs": LEVEL_DBFS, "stopped": "still"});
    let mut plugin = ltc_plugin(48_000, FrameRate::FPS_25, 3_600, ltc, false);
    let mut transport = Transport::new(48_000);
    transport.locate(48_000 * 5 + 100);
    let report = plugin.run_scripted(&mut transport, 100, |_, _| BLOCK);
    let decoded = libltc::decode(&report.audio[1], 48_000, FrameRate::FPS_25, "still");
    assert!(decoded.len() >= 20, "about 26 words in 51200 samples: {}", decoded.len());
    for (k, d) in decoded.iter().enumerate() {
        assert_eq!(d.label, "01:00:05:00", "word {k}");
        assert!((0..=2).contains(&(d.off_start - 1_920 * k as i64)), "word {k} at {}", d.off_start);
    }
}

#[test]
fn ltc_follows_a_state_loaded_while_active() {
    // LTC off at activation; a project state with LTC on is loaded into the running instance
    // (the network thread publishes the audio thread's settings within its settings poll).
    let mut plugin = ltc_plugin(48_000, FrameRate::FPS_25, 0, json!({"channel": "off"}), false);
    let mut transport = Transport::new(48_000);
    transport.play();
    let report = plugin.run_scripted(&mut transport, 10, |_, _| BLOCK);
    assert!(report.audio[0].iter().all(|s| *s != 0.0), "LTC off: the program audio passes");
    plugin.update_settings(|s| {
        s.insert("ltc".into(), json!({"channel": "left", "level_dbfs": LEVEL_DBFS}));
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let carried = loop {
        let report = plugin.run_scripted(&mut transport, 10, |_, _| BLOCK);
        // LTC is a square wave at ±10^(-12/20): the program audio never takes exactly that value.
        let peak = 10f32.powf(LEVEL_DBFS as f32 / 20.0);
        if report.audio[0].iter().any(|s| (s.abs() - peak).abs() < 1e-6) {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(carried, "LTC on the left channel after the state was loaded");
}
