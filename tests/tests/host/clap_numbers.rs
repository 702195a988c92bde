//! Numbers the plugin takes from the host and from files (issue 14, item 6): absurd transport
//! positions and tempos every block while playing, sample rates at and around the documented
//! limits (8,000 to 1,536,000 Hz), and an output latency that is NaN, infinite or absurd in the
//! machine config file or in a project state.
//!
//! The debug bundle aborts on an arithmetic overflow or any other panic on the audio thread, so
//! "the host is alive" is the test process still running; what the plugin sends is checked on
//! top. Tests that read the plugin's log or write the machine config file run alone in a child
//! process ([`crate::common::in_child`]).

use std::path::PathBuf;
use std::time::Duration;

use osc_timecode_core::clock::{MAX_POSITION, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use osc_timecode_core::timecode::frame_at_sample;
use osc_timecode_tests::bundle::bundles;
use osc_timecode_tests::clap::{ClapPlugin, Param};
use osc_timecode_tests::expect::{Timing, assert_stream, expected};
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::state::NiceState;
use osc_timecode_tests::transport::{Absurd, CLAP_FIXED_POINT_FACTOR, Transport};
use osc_timecode_tests::vst3host::Vst3Plugin;
use serde_json::json;

use crate::common::{PATIENCE, PluginLog, Rig, rate, receive};

/// Longest a child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long to listen for packets that must not come.
const QUIET: Duration = Duration::from_millis(400);

/// Runs `function` of this module alone in a child process (see [`crate::common::in_child`]).
fn in_child(function: &str) -> bool {
    crate::common::in_child(module_path!(), function, CHILD_TIMEOUT)
}

/// The tempos a broken host may report: none of them gives a position from beats.
const ABSURD_TEMPOS: [f64; 6] = [0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -120.0];

#[test]
fn absurd_tempos_on_a_beats_only_timeline_send_nothing_and_play_resumes_exactly() {
    let (sr, block) = (48_000, 512);
    let mut rig = Rig::new(sr, rate("25"), block);
    rig.play_seconds(0.5, block);
    rig.check("before the absurd tempos");

    // Every block while playing, the host reports only beats, with a tempo that makes no
    // position (0 made it infinite, NaN made it sample 0): no position, nothing sent.
    rig.transport.clear_history();
    for tempo in ABSURD_TEMPOS.into_iter().chain([1e-300, f64::MIN_POSITIVE]) {
        rig.transport.absurd = Absurd { tempo: Some(tempo), beats_only: true, ..Absurd::default() };
        rig.run(u64::from(block) * 20, block);
    }
    let nothing = rig.rx.collect_for(QUIET);
    assert!(
        nothing.is_empty(),
        "no position while the tempo is absurd: got {:?}",
        messages(&nothing).iter().map(|m| (m.frame, m.jump)).collect::<Vec<_>>()
    );

    // A sane host again: the frame under way, as a jump, then every frame.
    rig.transport.absurd = Absurd::default();
    rig.transport.clear_history();
    rig.transport.resync();
    rig.run(u64::from(sr) / 2, block);
    rig.check("after the absurd tempos");

    // The beats timeline at a sane tempo still works (the model's beats are at 120 BPM).
    rig.transport.absurd = Absurd { beats_only: true, ..Absurd::default() };
    rig.transport.clear_history();
    rig.run(u64::from(sr) / 2, block);
    rig.check("beats only at a sane tempo");
}

#[test]
fn the_furthest_clap_positions_are_frames_and_stay_so_every_block() {
    let (sr, block) = (48_000, 512);
    let r = rate("25");
    let mut rig = Rig::new(sr, r, block);
    rig.transport.play();
    // CLAP positions are fixed-point seconds in an i64: at most ±2^32 s. Reported every block
    // (the host stuck there while playing), each block is a new jump to the same frame (at
    // 25 fps, ±2^32 s is a frame's first sample, and the next frame starts 1920 samples on: one
    // frame per block).
    for (fixed, blocks) in [(i64::MAX, 10), (i64::MIN, 10), (i64::MAX, 1), (i64::MIN, 1)] {
        let seconds = (fixed as f64 / CLAP_FIXED_POINT_FACTOR as f64).round() as i64;
        let sample = seconds * i64::from(sr);
        let position = if fixed > 0 { MAX_POSITION } else { -MAX_POSITION };
        rig.transport.absurd = Absurd { position: Some(position), ..Absurd::default() };
        // The model's seconds saturate at the fixed-point limit: that is what the plugin gets.
        assert_eq!(rig.transport.clap_event().song_pos_seconds.to_bits(), fixed);
        rig.run(u64::from(block) * blocks, block);
        let got = messages(&receive(&rig.rx, blocks as usize));
        let frame = frame_at_sample(sample, sr, r);
        assert_eq!(got.len(), blocks as usize, "one frame per block at {seconds} s");
        for m in &got {
            assert_eq!((m.frame, m.jump, m.playing), (frame, true, true), "at {seconds} s");
            assert_eq!(m.timecode, osc_timecode_core::Timecode::from_frame(frame, r), "the label wraps into the day");
        }
    }
}

#[test]
fn vst3_absurd_sample_positions_send_nothing_and_play_resumes_exactly() {
    let rx = Receiver::bind();
    let r = rate("25");
    let mut plugin = vst3_sending_to(&rx);
    plugin.activate(48_000, 512);
    let mut t = Transport::playing_from(48_000, 0);
    plugin.run(&mut t, 24_000, 512);
    let before = expected(t.history(), Timing::new(48_000, r));
    assert_stream(&messages(&receive(&rx, before.len())), &before, r, "VST3 before the absurd positions");

    // `projectTimeSamples` is an i64 the host fills in: anything, every block while playing.
    t.clear_history();
    for position in [i64::MAX, i64::MIN, i64::MAX - 1, i64::MIN + 1, MAX_POSITION + 1, -MAX_POSITION - 1] {
        t.absurd = Absurd { position: Some(position), ..Absurd::default() };
        for _ in 0..2 {
            plugin.run(&mut t, 512 * 10, 512);
            // With a loop active too (its ends from beats at the model's tempo).
            t.set_loop(Some((0, 48_000)));
            plugin.run(&mut t, 512 * 10, 512);
            t.set_loop(None);
        }
    }
    let nothing = rx.collect_for(QUIET);
    assert!(nothing.is_empty(), "absurd positions are no position: got {} packets", nothing.len());

    t.absurd = Absurd::default();
    t.clear_history();
    t.resync();
    plugin.run(&mut t, 24_000, 512);
    let after = expected(t.history(), Timing::new(48_000, r));
    let got = messages(&receive(&rx, after.len()));
    assert_stream(&got, &after, r, "VST3 after the absurd positions");
}

#[test]
fn vst3_a_mid_stream_change_to_an_unusable_sample_rate_is_not_followed() {
    let rx = Receiver::bind();
    let r = rate("25");
    let mut plugin = vst3_sending_to(&rx);
    plugin.activate(48_000, 512);
    let mut t = Transport::playing_from(48_000, 0);
    plugin.run(&mut t, 48_000, 512);
    let first = messages(&receive(&rx, 25));
    assert_eq!(first.iter().map(|m| m.frame).collect::<Vec<_>>(), (0..25).collect::<Vec<_>>());

    // The host switches to 4 kHz, then 7,999 Hz, without deactivating, and carries on (its
    // positions now count at those rates): the plugin sends nothing rather than read them at
    // 48 kHz or run below its minimum.
    for (sr, from) in [(4_000, 4_000), (MIN_SAMPLE_RATE - 1, 2 * i64::from(MIN_SAMPLE_RATE - 1))] {
        let result = plugin.setup_processing_while_active(sr);
        println!("measured: setupProcessing({sr} Hz) while active returned {result}");
        let mut low = Transport::playing_from(sr, from);
        plugin.run(&mut low, u64::from(sr), 500);
    }
    let nothing = rx.collect_for(QUIET);
    assert!(nothing.is_empty(), "nothing at an unusable rate: got {:?}", messages(&nothing));

    // Back at a usable rate, three seconds in: the timeline is followed again, from a jump.
    plugin.setup_processing_while_active(MIN_SAMPLE_RATE);
    let mut back = Transport::playing_from(MIN_SAMPLE_RATE, 3 * i64::from(MIN_SAMPLE_RATE));
    plugin.run(&mut back, u64::from(MIN_SAMPLE_RATE), 500);
    let want = expected(back.history(), Timing::new(MIN_SAMPLE_RATE, r));
    assert_eq!(want.first().map(|e| (e.frame, e.jump)), Some((75, true)));
    assert_stream(&messages(&receive(&rx, want.len())), &want, r, "8 kHz after the unusable rates");
}

/// A VST3 instance sending to `rx` at 25 fps, keep-alive off, via setState.
fn vst3_sending_to(rx: &Receiver) -> Vst3Plugin {
    let mut plugin = Vst3Plugin::load();
    let mut state = NiceState::from_json_bytes(&plugin.get_state());
    state.edit_settings(|s| {
        s.insert("targets".into(), json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), json!(0));
    });
    state.set_param("rate", json!({"string": "25"}));
    plugin.set_state(&state.to_json_bytes());
    plugin
}

#[test]
fn activation_below_8_khz_is_refused_loudly_and_8_khz_plays_every_frame() {
    if !in_child("activation_below_8_khz_is_refused_loudly_and_8_khz_plays_every_frame") {
        return;
    }
    let log = PluginLog::new();
    let r = rate("29.97df");
    let mut rx = Receiver::bind();
    let mut plugin = ClapPlugin::load();
    plugin.send_to(rx.addr(), 0);
    plugin.set_param(Param::Rate, r.index() as f64);
    for (sr, shown) in [(7_999.0, "7999"), (7_999.4, "7999.4"), (59.0, "59"), (1.0, "1"), (1_536_001.0, "1536001")] {
        assert!(plugin.try_activate(sr, 512).is_err(), "activation at {sr} Hz must be refused");
        assert!(!plugin.is_active());
        log.wait_for(&[
            &format!("refusing to activate at a sample rate of {shown} Hz"),
            &format!("runs at {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"),
        ]);
    }
    // Blocks of about 30 ms and 3 ms: a timetag is one block after its frame is due (the host
    // processes a block ahead), and the check allows 250 ms.
    for (sr, block) in [(MIN_SAMPLE_RATE, 256), (MAX_SAMPLE_RATE, 4096)] {
        plugin.activate(sr, block);
        let mut rig = Rig { plugin, rx, transport: Transport::new(sr), timing: Timing::new(sr, r) };
        rig.transport.locate(-i64::from(sr) / 2);
        rig.play_seconds(1.5, block);
        rig.check(&format!("{sr} Hz"));
        rig.plugin.deactivate();
        (plugin, rx) = (rig.plugin, rig.rx);
    }
    assert_eq!(log.count(&["refusing to activate"]), 5, "one line per refusal, none for the accepted rates");
}

/// Writes this child's machine config file (the harness points `OSC_TIMECODE_CONFIG` at a file
/// of its own before it first loads the plugin) and returns its path.
fn write_machine_config(text: &str) -> PathBuf {
    bundles();
    let path = PathBuf::from(std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets it"));
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
    path
}

/// Plays a second at 25 fps and checks the stream, timetags included: each within
/// [`crate::common::TIMETAG_SLACK`] of the packet's arrival (latency 0; NaN made it 60 s early).
fn play_and_check_timetags(mut plugin: ClapPlugin, rx: Receiver, what: &str) {
    plugin.set_param(Param::Rate, rate("25").index() as f64);
    plugin.activate(48_000, 512);
    let mut rig = Rig { plugin, rx, transport: Transport::new(48_000), timing: Timing::new(48_000, rate("25")) };
    rig.play_seconds(1.0, 512);
    rig.check(what);
}

/// Waits until more than `before` lines of the log contain all of `needles`.
fn wait_for_more(log: &PluginLog, needles: &[&str], before: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while log.count(needles) <= before {
        assert!(std::time::Instant::now() < deadline, "no new log line with {needles:?}:\n{:#?}", log.lines());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_config_file_with_an_absurd_output_latency_is_refused_with_a_log_line() {
    if !in_child("a_config_file_with_an_absurd_output_latency_is_refused_with_a_log_line") {
        return;
    }
    let log = PluginLog::new();
    for (value, shown) in [("nan", "NaN"), ("inf", "inf"), ("-inf", "-inf"), ("1e300", "1e300"), ("10001", "10001.0")] {
        let rx = Receiver::bind();
        let path = write_machine_config(&format!(
            "[plugin]\ntargets = [\"{}\"]\nkeepalive_ms = 0\noutput_latency_ms = {value}\n",
            rx.addr()
        ));
        let invalid = format!("config file {} is invalid, using defaults", path.display());
        let before = log.count(&[&invalid]);
        let mut plugin = ClapPlugin::load();
        // The parser's message spans lines: the file and the position, then why.
        wait_for_more(&log, &[&invalid], before);
        log.wait_for(&[&format!(
            "output_latency_ms must be a number of milliseconds from -10000 to 10000, not {shown}"
        )]);
        let settings = plugin.nice_state().settings();
        assert_eq!(settings["output_latency_ms"], json!(0.0), "{value}: the defaults");
        assert_eq!(settings["targets"], json!(["127.0.0.1:5006"]), "{value}: the defaults, not the file's");
        plugin.update_settings(|s| {
            s.insert("targets".into(), json!([rx.addr().to_string()]));
            s.insert("keepalive_ms".into(), json!(0));
        });
        play_and_check_timetags(plugin, rx, &format!("config output_latency_ms = {value}"));
    }
    // The largest latency the file may say is used as said.
    write_machine_config("[plugin]\noutput_latency_ms = -10000\n");
    assert_eq!(ClapPlugin::load().nice_state().settings()["output_latency_ms"], json!(-10000.0));
}

#[test]
fn a_project_state_with_an_absurd_output_latency_falls_back_with_a_log_line() {
    if !in_child("a_project_state_with_an_absurd_output_latency_falls_back_with_a_log_line") {
        return;
    }
    let log = PluginLog::new();
    // JSON has no NaN or infinity: serde_json writes them as null.
    for (value, why) in [
        (json!(1e300), "not 1e300"),
        (json!(-1e300), "not -1e300"),
        (json!(-10000.5), "not -10000.5"),
        (json!(null), "invalid type: null, expected f64"),
    ] {
        let rx = Receiver::bind();
        write_machine_config(&format!("[plugin]\ntargets = [\"{}\"]\nkeepalive_ms = 0\n", rx.addr()));
        let mut plugin = ClapPlugin::load();
        let mut state = plugin.nice_state();
        state.edit_settings(|s| {
            s.insert("output_latency_ms".into(), value.clone());
            s.insert("targets".into(), json!(["127.0.0.1:9"]));
        });
        let needles = ["the project's saved settings are invalid", why, "using the config file's settings"];
        let before = log.count(&needles);
        plugin.load_state(&state.to_clap_bytes());
        wait_for_more(&log, &needles, before);
        let settings = plugin.nice_state().settings();
        assert_eq!(settings["output_latency_ms"], json!(0.0), "{value}: the config file's");
        assert_eq!(settings["targets"], json!([rx.addr().to_string()]), "{value}: the config file's targets");
        play_and_check_timetags(plugin, rx, &format!("state output_latency_ms = {value}"));
    }
}
