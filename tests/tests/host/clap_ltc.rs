//! LTC in the plugin's audio output, read by x42's libltc (a decoder nobody here wrote) from what
//! the real CLAP host captured: every word complete in the audio is found, in order, with the
//! frame's label and drop-frame flag, starting on the frame's first sample (libltc reports it 0
//! to 2 samples late, see `core/tests/ltc_interop.rs`), at the configured level; across pre-roll
//! through midnight, a locate, loop wraps inside blocks and a stop, at several rates and sample
//! rates. Parked: silence, or the parked frame repeated (`still`). 50 fps without half rate:
//! silence on the LTC channel, never the program audio.

use osc_timecode_core::FrameRate;
use osc_timecode_tests::clap::{ClapPlugin, Param};
use osc_timecode_tests::expect::{Timing, offset_frames};
use osc_timecode_tests::transport::Transport;
use serde_json::json;

use crate::common::rate;
use crate::ltc_words::{LEVEL_DBFS, assert_words, expected_words, half, libltc, with_block};

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
    let (want, breaks) = expected_words(&with_block(transport.history(), BLOCK), timing, half_rate);
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

#[test]
fn refused_and_substituted_rates_are_said_in_the_log() {
    // In a child process of its own: the plugin's log is a file there (`NICE_LOG`).
    if !crate::common::in_child(
        module_path!(),
        "refused_and_substituted_rates_are_said_in_the_log",
        std::time::Duration::from_secs(120),
    ) {
        return;
    }
    let log = crate::common::PluginLog::new();
    let ltc = json!({"channel": "left", "level_dbfs": LEVEL_DBFS});
    let mut plugin = ltc_plugin(48_000, FrameRate::FPS_50, 0, ltc, false);
    let mut transport = Transport::new(48_000);
    transport.play();
    plugin.run_scripted(&mut transport, 20, |_, _| BLOCK);
    log.wait_for(&["LTC", "cannot carry 50 fps", "half_rate"]);
    plugin.deactivate();
    plugin.set_param(Param::Rate, FrameRate::FPS_29_97_NDF.index() as f64);
    plugin.activate(48_000, BLOCK);
    plugin.run_scripted(&mut transport, 20, |_, _| BLOCK);
    log.wait_for(&["29.97 fps sent as 30 fps", "LTC"]);
}
