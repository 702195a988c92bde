//! Parameters, state and settings: discovery, state round trip, start offset, output off, offline
//! render, keep-alive, several targets, output latency.

use std::time::Duration;

use osc_timecode_core::Timecode;
use osc_timecode_core::protocol::system_time_from_timetag;
use osc_timecode_tests::clap::{ClapPlugin, Param, nice_plug_param_hash};
use osc_timecode_tests::expect::{assert_seq_consecutive, assert_stream, expected, offset_frames};
use osc_timecode_tests::receiver::{Receiver, messages};

use crate::common::{Rig, rate, receive};

#[test]
fn parameters_are_discoverable_with_frozen_ids_and_ranges() {
    let mut plugin = ClapPlugin::load();
    for (p, max) in [(Param::Rate, 9.0), (Param::Output, 1.0), (Param::Offset, 86_399.0), (Param::SendStopped, 1.0)] {
        assert_eq!(plugin.param_id(p).get(), nice_plug_param_hash(p.string_id()), "{p:?}");
        assert_eq!(plugin.param_range(p), (0.0, max), "{p:?}: CLAP plain range");
    }
    // Set through clap.params flush while inactive, read back through get_value. nice-plug
    // reports stepped values as an f32 normalised value times the step count (3599.99996 for
    // 3600), so read them as a host reads a stepped parameter: rounded.
    plugin.set_param(Param::Offset, 3600.0);
    plugin.set_param(Param::Rate, rate("29.97df").index() as f64);
    plugin.set_param(Param::Output, 0.0);
    assert_eq!(plugin.param_value(Param::Offset).round(), 3600.0);
    assert_eq!(plugin.param_value(Param::Rate).round(), rate("29.97df").index() as f64);
    assert_eq!(plugin.param_value(Param::Output).round(), 0.0);
}

#[test]
fn settings_in_state_have_the_documented_keys() {
    let mut plugin = ClapPlugin::load();
    let settings = plugin.nice_state().settings();
    for key in ["targets", "keepalive_ms", "output_latency_ms", "offline"] {
        assert!(settings.contains_key(key), "settings has {key:?}: {settings:?}");
    }
    assert_eq!(settings["offline"], serde_json::json!("silent"), "offline render is silent by default");
}

#[test]
fn state_round_trips_and_carries_settings_and_params() {
    let rx = Receiver::bind();
    let mut plugin = ClapPlugin::load();
    let state = plugin.nice_state();
    for p in Param::ALL {
        assert!(state.param(p.string_id()).is_some(), "state has param {:?}: {}", p.string_id(), state.json);
    }

    plugin.update_settings(|s| {
        s.insert("targets".into(), serde_json::json!([rx.addr().to_string()]));
        s.insert("keepalive_ms".into(), serde_json::json!(250));
        s.insert("output_latency_ms".into(), serde_json::json!(12.5));
    });
    plugin.set_param(Param::Offset, 7200.0);
    let saved = plugin.save_state();
    let reread = osc_timecode_tests::state::NiceState::from_clap_bytes(&saved);
    let s = reread.settings();
    assert_eq!(s["targets"], serde_json::json!([rx.addr().to_string()]));
    assert_eq!(s["keepalive_ms"], serde_json::json!(250));
    assert_eq!(s["output_latency_ms"], serde_json::json!(12.5));

    // Into a fresh instance: same state back, same parameter value.
    let mut other = ClapPlugin::load();
    other.load_state(&saved);
    assert_eq!(other.param_value(Param::Offset).round(), 7200.0);
    assert_eq!(other.nice_state().settings(), s, "settings survive save → load → save");
}

#[test]
fn start_offset_one_hour_starts_labels_at_01_00_00_00() {
    for name in ["25", "29.97df"] {
        let rate = rate(name);
        let mut rig = Rig::with(48_000, rate, 512, 0, |p| p.set_param(Param::Offset, 3600.0));
        rig.timing = rig.timing.with_offset_seconds(3600);
        rig.play_seconds(2.0, 512);
        let packets = rig.check(&format!("offset 01:00:00 at {name}"));
        let first = messages(&packets)[0];
        assert_eq!(first.timecode, Timecode::new(1, 0, 0, 0, rate).unwrap(), "{name}: first label 01:00:00:00");
        assert_eq!(first.frame, offset_frames(3600, rate), "{name}: frame count includes the offset");
    }
}

#[test]
fn start_offset_set_through_state_applies() {
    let rate = rate("30");
    let mut rig = Rig::with(48_000, rate, 512, 0, |p| {
        let mut state = p.nice_state();
        state.set_param("offset", serde_json::json!({"i32": 36_000}));
        p.load_state(&state.to_clap_bytes());
        assert_eq!(p.param_value(Param::Offset).round(), 36_000.0);
    });
    rig.timing = rig.timing.with_offset_seconds(36_000);
    rig.play_seconds(1.0, 512);
    let packets = rig.check("offset 10:00:00 from state");
    assert_eq!(messages(&packets)[0].timecode.to_string(), Timecode::new(10, 0, 0, 0, rate).unwrap().to_string());
}

#[test]
fn output_off_sends_nothing_and_switching_it_on_resumes_with_a_jump() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::with(sr, rate, 512, 0, |p| p.set_param(Param::Output, 0.0));
    rig.play_seconds(1.0, 512);
    let nothing = rig.rx.collect_for(Duration::from_millis(600));
    assert!(
        nothing.is_empty(),
        "output off: got {} packets, first {:?}",
        nothing.len(),
        nothing.first().map(|p| p.msg())
    );

    // On again, mid-play: the next block's frame comes as a jump, then the rest.
    rig.transport.clear_history();
    rig.transport.resync();
    rig.plugin.set_param(Param::Output, 1.0);
    rig.run(u64::from(sr), 512);
    rig.check("output switched back on");
}

#[test]
fn output_off_while_stopped_sends_no_keepalive() {
    let sr = 48_000;
    let mut rig = Rig::with(sr, rate("25"), 512, 100, |p| p.set_param(Param::Output, 0.0));
    for _ in 0..20 {
        rig.run(480, 480);
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = rig.rx.collect_for(Duration::from_millis(300));
    assert!(got.is_empty(), "output off: nothing, not even keep-alive; got {}", got.len());
}

#[test]
fn offline_render_sends_nothing_by_default() {
    let sr = 48_000;
    let mut rig = Rig::with(sr, rate("25"), 512, 0, |p| p.set_render_offline(true));
    rig.play_seconds(2.0, 512);
    let nothing = rig.rx.collect_for(Duration::from_millis(600));
    assert!(nothing.is_empty(), "offline render (\"offline\": \"silent\"): got {} packets", nothing.len());

    // Back to realtime (the plugin may ask for a restart; hosts then re-activate).
    rig.plugin.set_render_offline(false);
    rig.plugin.deactivate();
    rig.plugin.activate(sr, 512);
    rig.transport.clear_history();
    rig.transport.resync();
    rig.run(u64::from(sr), 512);
    rig.check("realtime again after an offline render");
}

#[test]
fn offline_render_with_realtime_setting_sends() {
    let sr = 48_000;
    let mut rig = Rig::with(sr, rate("25"), 512, 0, |p| {
        p.update_settings(|s| {
            s.insert("offline".into(), serde_json::json!("realtime"));
        });
        p.set_render_offline(true);
    });
    rig.play_seconds(1.0, 512);
    rig.check("offline render with \"offline\": \"realtime\"");
}

#[test]
fn keepalive_repeats_the_parked_frame_while_stopped() {
    let sr = 48_000;
    let rate = rate("25");
    let keepalive = Duration::from_millis(200);
    let mut rig = Rig::with(sr, rate, 480, keepalive.as_millis() as u32, |_| {});
    rig.transport.locate(10 * i64::from(sr) + 77);
    // Stopped blocks at roughly real-time pace for ~1.2 s, as a host keeps calling process().
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1200) {
        rig.run(480, 480);
        std::thread::sleep(Duration::from_millis(10));
    }
    let packets = rig.rx.collect_for(Duration::from_millis(100));
    let msgs = messages(&packets);
    let parked_frame = osc_timecode_core::timecode::frame_at_sample(10 * i64::from(sr) + 77, sr, rate);
    assert!(!msgs.is_empty(), "parked position sent");
    assert!(msgs.iter().all(|m| !m.playing && m.frame == parked_frame), "all parked at {parked_frame}: {msgs:?}");
    assert!(msgs[1..].iter().all(|m| !m.jump && !m.looped), "repeats carry no flags");
    assert_seq_consecutive(&msgs, "keep-alive");
    // ~1.2 s / 200 ms: the first message plus about 5 repeats; loose bounds for loaded machines.
    assert!(
        (4..=8).contains(&msgs.len()),
        "expected about 6 messages in 1.2 s at 200 ms keep-alive, got {}",
        msgs.len()
    );
    for pair in packets.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= keepalive - Duration::from_millis(30), "keep-alive came after {gap:?}, less than {keepalive:?}");
        assert!(
            gap <= keepalive + Duration::from_millis(200),
            "keep-alive came after {gap:?}, much more than {keepalive:?}"
        );
    }
}

#[test]
fn send_while_stopped_off_sends_only_the_stop() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::with(sr, rate, 512, 100, |p| p.set_param(Param::SendStopped, 0.0));
    rig.timing.send_stopped = false;
    rig.play_seconds(0.5, 512);
    rig.transport.stop();
    rig.run(u64::from(sr) / 4, 512);
    rig.transport.locate(5 * i64::from(sr));
    for _ in 0..30 {
        rig.run(480, 480);
        std::thread::sleep(Duration::from_millis(10));
    }
    let packets = rig.check("send while stopped off");
    assert_eq!(messages(&packets).iter().filter(|m| !m.playing).count(), 1, "only the moment of stopping");
}

#[test]
fn every_target_gets_the_same_stream() {
    let (rx1, rx2) = (Receiver::bind(), Receiver::bind());
    let sr = 48_000;
    let rate = rate("29.97df");
    let mut rig = Rig::with(sr, rate, 512, 0, |p| {
        p.update_settings(|s| {
            s.insert("targets".into(), serde_json::json!([rx1.addr().to_string(), rx2.addr().to_string()]));
        });
    });
    rig.play_seconds(1.0, 512);
    let want = expected(rig.transport.history(), rig.timing);
    let a = messages(&receive(&rx1, want.len()));
    let b = messages(&receive(&rx2, want.len()));
    assert_stream(&a, &want, rate, "first target");
    assert_stream(&b, &want, rate, "second target");
    assert_eq!(a, b, "identical messages, seq included, to every target");
    assert!(rig.rx.collect_for(Duration::from_millis(200)).is_empty(), "the old target is no longer sent to");
}

#[test]
fn output_latency_moves_the_timetag() {
    let sr = 48_000;
    let latency = Duration::from_millis(300);
    let mut rig = Rig::with(sr, rate("25"), 512, 0, |p| {
        p.update_settings(|s| {
            s.insert("output_latency_ms".into(), serde_json::json!(latency.as_millis() as f64));
        });
    });
    rig.play_seconds(1.0, 512);
    let want = rig.expected();
    let packets = rig.receive(want.len());
    assert_stream(&messages(&packets), &want, rate("25"), "with output latency");
    let mut offsets: Vec<f64> = packets
        .iter()
        .map(|p| match system_time_from_timetag(p.timetag()).duration_since(p.wall) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        })
        .collect();
    offsets.sort_by(f64::total_cmp);
    let median = offsets[offsets.len() / 2];
    assert!(
        (median - latency.as_secs_f64()).abs() < 0.1,
        "timetags should be ~{latency:?} after arrival, median {median:.3} s"
    );
}

#[test]
fn loading_state_while_active_redirects_the_stream() {
    let sr = 48_000;
    let rate = rate("25");
    let mut rig = Rig::new(sr, rate, 512);
    rig.play_seconds(0.5, 512);
    let first = rig.expected();
    let got_first = messages(&receive(&rig.rx, first.len()));
    assert_stream(&got_first, &first, rate, "before the preset load");

    // A preset with another target, loaded on the main thread while active (as hosts do).
    let rx2 = Receiver::bind();
    rig.plugin.update_settings(|s| {
        s.insert("targets".into(), serde_json::json!([rx2.addr().to_string()]));
    });
    std::thread::sleep(Duration::from_millis(400));
    rig.transport.clear_history();
    rig.run(u64::from(sr) / 2, 512);
    let second = expected(rig.transport.history(), rig.timing);
    let got_second = messages(&receive(&rx2, second.len()));
    assert_stream(&got_second, &second, rate, "after the preset load, at the new target");
    assert_eq!(got_second[0].seq, got_first.last().unwrap().seq + 1, "seq carries on");
    assert!(rig.rx.collect_for(Duration::from_millis(200)).is_empty(), "nothing more to the old target");
}

/// Issue 15: a project whose saved settings hold a duplicate (a target, an allow-list entry, a
/// mapped address) or a note length beyond ten minutes, which the window refuses, opens with the
/// machine's settings (here the harness's config file: no targets), as any project with invalid
/// settings does. Before, the readers took them, and the cue map kept the first of two mappings
/// of one address without a word. The same lists without the duplicate load as saved.
#[test]
fn a_state_holding_what_the_window_refuses_opens_with_the_machines_settings() {
    use serde_json::json;
    let (rx, other) = (Receiver::bind(), Receiver::bind());
    let (a, b) = (rx.addr().to_string(), other.addr().to_string());
    let program = |address: &str| json!({"address": address, "kind": "program", "channel": 1, "program": 1});
    let note = |length_ms: u32| json!({"address": "/cue/x", "kind": "note", "channel": 1, "key": 1, "velocity": 127, "length_ms": length_ms});
    let cases = [
        ("targets", json!([a, a]), json!([a, b])),
        ("cues", json!({"allow": ["127.0.0.1", "127.0.0.1/32"]}), json!({"allow": ["127.0.0.1/32", "127.0.0.2/32"]})),
        (
            "cues",
            json!({"map": [program("/cue/go"), program("/cue/go")]}),
            json!({"map": [program("/cue/go"), program("/cue/stop")]}),
        ),
        ("cues", json!({"map": [note(600_001)]}), json!({"map": [note(600_000)]})),
        ("cues", json!({"note_length_ms": 600_001}), json!({"note_length_ms": 0})),
        ("artnet", json!({"targets": ["[::1]:6454"]}), json!({"targets": ["127.0.0.1:6454"]})),
        (
            "artnet",
            json!({"targets": ["127.0.0.1", "127.0.0.1:6454"]}),
            json!({"targets": ["127.0.0.1:6454", "127.0.0.2:6454"]}),
        ),
        ("artnet", json!({"stream_id": 256}), json!({"stream_id": 255})),
        ("ltc", json!({"level_dbfs": 3}), json!({"level_dbfs": -20.5})),
        ("ltc", json!({"level_dbfs": -60.5}), json!({"level_dbfs": -60.0})),
    ];
    for (key, refused, taken) in cases {
        let mut plugin = ClapPlugin::load();
        plugin.send_to(rx.addr(), 250);
        plugin.update_settings(|s| {
            s.insert(key.into(), taken.clone());
        });
        let s = plugin.nice_state().settings();
        assert_eq!(s["targets"], if key == "targets" { json!([a, b]) } else { json!([a]) }, "{taken}");
        for (field, value) in taken.as_object().into_iter().flatten() {
            assert_eq!(&s[key][field], value, "{taken} loads as saved");
        }

        plugin.update_settings(|s| {
            s.insert(key.into(), refused.clone());
        });
        let s = plugin.nice_state().settings();
        assert_eq!((&s["targets"], &s["keepalive_ms"]), (&json!([]), &json!(1000)), "{refused}: the config file's");
        assert_eq!(s["cues"]["map"], json!([]), "{refused}");
        assert_eq!(s["cues"]["allow"], json!(["127.0.0.0/8", "::1/128"]), "{refused}");
        assert_eq!(s["artnet"], json!({"targets": [], "stream_id": 0}), "{refused}");
        assert_eq!(s["ltc"]["level_dbfs"], json!(-18.0), "{refused}");
    }
}

/// Issue 16's settings (`half_rate`, `ltc`, `artnet`, `mtc`) are in the state under their
/// public keys, off by default, and survive save → load into a fresh instance through the host.
#[test]
fn the_outputs_settings_round_trip_through_the_host_state() {
    use serde_json::json;
    let mut plugin = ClapPlugin::load();
    let defaults = plugin.nice_state().settings();
    assert_eq!(defaults["half_rate"], json!(false));
    assert_eq!(defaults["ltc"], json!({"channel": "off", "level_dbfs": -18.0, "stopped": "silence"}));
    assert_eq!(defaults["artnet"], json!({"targets": [], "stream_id": 0}));
    assert_eq!(defaults["mtc"], json!({"enabled": false}));
    plugin.update_settings(|s| {
        s.insert("half_rate".into(), json!(true));
        s.insert("ltc".into(), json!({"channel": "both", "level_dbfs": -20.5, "stopped": "still"}));
        // A bare address is Art-Net's port, written out.
        s.insert("artnet".into(), json!({"targets": ["127.0.0.1"], "stream_id": 7}));
        s.insert("mtc".into(), json!({"enabled": true}));
    });
    let saved = plugin.save_state();
    let s = osc_timecode_tests::state::NiceState::from_clap_bytes(&saved).settings();
    assert_eq!(s["half_rate"], json!(true));
    assert_eq!(s["ltc"], json!({"channel": "both", "level_dbfs": -20.5, "stopped": "still"}));
    assert_eq!(s["artnet"], json!({"targets": ["127.0.0.1:6454"], "stream_id": 7}));
    assert_eq!(s["mtc"], json!({"enabled": true}));
    let mut other = ClapPlugin::load();
    other.load_state(&saved);
    assert_eq!(other.nice_state().settings(), s, "settings survive save → load → save");
}
