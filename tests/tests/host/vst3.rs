//! The VST3 build of the same plugin, in a minimal VST3 host: state through
//! `IComponent::setState` (nice-plug's bare state JSON), `ProcessContext` transport.

use osc_timecode_tests::expect::{Timing, assert_stream, assert_timetags, expected, offset_frames};
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::state::NiceState;
use osc_timecode_tests::transport::Transport;
use osc_timecode_tests::vst3host::Vst3Plugin;

use crate::common::{TIMETAG_SLACK, rate, receive};

/// A VST3 instance sending to `rx` with the given rate (enum id) and offset, via setState.
fn vst3_sending_to(rx: &Receiver, rate_id: &str, offset_seconds: i32) -> Vst3Plugin {
    let mut plugin = Vst3Plugin::load();
    let mut state = NiceState::from_json_bytes(&plugin.get_state());
    state.edit_settings(|s| {
        s.insert("targets".into(), serde_json::json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), serde_json::json!(0));
    });
    state.set_param("rate", serde_json::json!({"string": rate_id}));
    state.set_param("offset", serde_json::json!({"i32": offset_seconds}));
    plugin.set_state(&state.to_json_bytes());
    let back = NiceState::from_json_bytes(&plugin.get_state());
    assert_eq!(back.settings()["targets"], serde_json::json!([rx.addr().to_string()]), "VST3 state round trip");
    plugin
}

#[test]
fn vst3_plays_exact_frames() {
    let rx = Receiver::bind();
    let sr = 48_000;
    let rate = rate("29.97df");
    let mut plugin = vst3_sending_to(&rx, "29.97df", 0);
    plugin.activate(sr, 512);
    let mut t = Transport::playing_from(sr, 0);
    assert_eq!(plugin.run(&mut t, 2 * u64::from(sr), 512), 0, "pass-through");
    let want = expected(t.history(), Timing::new(sr, rate));
    let packets = receive(&rx, want.len());
    assert_stream(&messages(&packets), &want, rate, "VST3 48 kHz 29.97df");
    assert_timetags(&packets, TIMETAG_SLACK, "VST3");
}

#[test]
fn vst3_offset_locate_and_loop() {
    let rx = Receiver::bind();
    let sr = 44_100;
    let rate = rate("25");
    let mut plugin = vst3_sending_to(&rx, "25", 3600);
    plugin.activate(sr, 1024);
    let mut t = Transport::playing_from(sr, 0);
    plugin.run(&mut t, u64::from(sr), 1000);
    t.locate(20 * i64::from(sr));
    plugin.run(&mut t, u64::from(sr) / 2, 1000);
    t.set_loop(Some((20 * i64::from(sr), 20 * i64::from(sr) + 30_000)));
    t.locate(20 * i64::from(sr) + 10_000);
    plugin.run(&mut t, u64::from(sr), 1000);
    let mut timing = Timing::new(sr, rate);
    timing.offset_frames = offset_frames(3600, rate);
    let want = expected(t.history(), timing);
    let packets = receive(&rx, want.len());
    assert_stream(&messages(&packets), &want, rate, "VST3 offset, locate, loop");
}

#[test]
fn vst3_offline_processing_sends_nothing() {
    let rx = Receiver::bind();
    let sr = 48_000;
    let mut plugin = vst3_sending_to(&rx, "25", 0);
    plugin.activate_with_mode(sr, 512, true);
    let mut t = Transport::playing_from(sr, 0);
    plugin.run(&mut t, u64::from(sr), 512);
    let got = rx.collect_for(std::time::Duration::from_millis(600));
    assert!(got.is_empty(), "kOffline processing sends nothing by default; got {}", got.len());
}

#[test]
fn vst3_realtime_after_offline_sends_again() {
    // A host bounces offline, then goes back to realtime: setupProcessing(kRealtime) +
    // setActive(true) must bring timecode back.
    let rx = Receiver::bind();
    let sr = 48_000;
    let rate = rate("25");
    let mut plugin = vst3_sending_to(&rx, "25", 0);
    plugin.activate_with_mode(sr, 512, true);
    let mut t = Transport::playing_from(sr, 0);
    plugin.run(&mut t, u64::from(sr) / 2, 512);
    plugin.deactivate();
    let _ = rx.collect_for(std::time::Duration::from_millis(300));

    plugin.activate_with_mode(sr, 512, false);
    let mut t = Transport::playing_from(sr, 0);
    plugin.run(&mut t, u64::from(sr), 512);
    let want = expected(t.history(), Timing::new(sr, rate));
    let packets = receive(&rx, want.len());
    assert_stream(&messages(&packets), &want, rate, "VST3 realtime after an offline pass");
}
