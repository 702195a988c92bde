//! The VST3 build of the same plugin, in a minimal VST3 host: state through
//! `IComponent::setState` (nice-plug's bare state JSON), `ProcessContext` transport.

use osc_timecode_tests::expect::{Timing, assert_stream, assert_timetags, expected, offset_frames};
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::state::NiceState;
use osc_timecode_tests::transport::{Played, SpanStart, Transport};
use osc_timecode_tests::vst3host::{ProjectRate, Vst3Plugin};
use vst3::Steinberg::Vst::IProcessContextRequirements_::Flags_::kNeedFrameRate;

use crate::common::{PATIENCE, PluginLog, TIMETAG_SLACK, in_child, rate, receive};

/// A VST3 instance sending to `rx` with the given rate (enum id) and offset, via setState.
fn vst3_sending_to(rx: &Receiver, rate_id: &str, offset_seconds: i32) -> Vst3Plugin {
    vst3_configured(Some(rx), rate_id, offset_seconds, |_| {})
}

/// A VST3 instance with the given rate (enum id) and offset, sending OSC to `rx` (or nowhere)
/// with keep-alive off, and `edit` applied to its settings, all via setState.
fn vst3_configured(
    rx: Option<&Receiver>,
    rate_id: &str,
    offset_seconds: i32,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vst3Plugin {
    configure(Vst3Plugin::load(), rx, rate_id, offset_seconds, edit)
}

/// [`vst3_configured`] on an instance already loaded (by a host of the test's choice).
fn configure(
    mut plugin: Vst3Plugin,
    rx: Option<&Receiver>,
    rate_id: &str,
    offset_seconds: i32,
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vst3Plugin {
    let targets = serde_json::json!(rx.map(|rx| rx.addr().to_string()).into_iter().collect::<Vec<_>>());
    let mut state = NiceState::from_json_bytes(&plugin.get_state());
    state.edit_settings(|s| {
        s.insert("targets".into(), targets.clone());
        s.insert("keepalive_ms".into(), serde_json::json!(0));
        edit(s);
    });
    state.set_param("rate", serde_json::json!({"string": rate_id}));
    state.set_param("offset", serde_json::json!({"i32": offset_seconds}));
    plugin.set_state(&state.to_json_bytes());
    let back = NiceState::from_json_bytes(&plugin.get_state());
    assert_eq!(back.settings()["targets"], targets, "VST3 state round trip");
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

/// What the plugin logs when the host's project rate disagrees with Frame Rate
/// (`plugin/src/network.rs`).
const DISAGREES: &str = "the host's project frame rate is";
/// ... and when that is over.
const AGREES_AGAIN: &str = "agree again";

/// Runs 20 512-sample blocks at 48 kHz reporting `rate` as the project rate, then waits
/// long enough for the network thread (which looks at the reported rate every 100 ms) to have
/// looked twice.
fn report(plugin: &mut Vst3Plugin, t: &mut Transport, rate: Option<ProjectRate>) {
    plugin.set_project_rate(rate);
    plugin.run(t, 512 * 20, 512);
    std::thread::sleep(std::time::Duration::from_millis(300));
}

/// A VST3 host's project frame rate (`ProcessContext::frameRate`, which the plugin asks for
/// with `kNeedFrameRate`) is checked against Frame Rate: a disagreement is logged once, as a
/// warning naming both; agreement after it once; a rate none of ours is named as such. Hosts
/// that say nothing (`kSmpteValid` unset) or agree give no line. Ardour's own spelling of
/// 29.97 drop-frame (the drop flag without pull-down) agrees, from Ardour only.
#[test]
fn vst3_host_project_rate_is_checked_against_frame_rate() {
    if !in_child(module_path!(), "vst3_host_project_rate_is_checked_against_frame_rate", PATIENCE * 12) {
        return;
    }
    let log = PluginLog::new();
    let at = |fps, pull_down, drop| Some(ProjectRate { fps, pull_down, drop });
    let rx = Receiver::bind();
    let mut plugin = vst3_sending_to(&rx, "29.97df", 0);
    let needs = plugin.process_context_requirements();
    // The flag type is the SDK's enum type, which differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    let need_frame_rate = kNeedFrameRate as u32;
    assert_ne!(needs & need_frame_rate, 0, "the plugin asks for the frame rate: {needs:#x}");
    plugin.activate(48_000, 512);
    let mut t = Transport::playing_from(48_000, 0);
    report(&mut plugin, &mut t, None);
    report(&mut plugin, &mut t, at(30, true, true));
    assert_eq!(
        log.count(&["project frame rate"]),
        0,
        "no rate, then the same rate: nothing to say\n{:#?}",
        log.lines()
    );

    report(&mut plugin, &mut t, at(25, false, false));
    let line = log.wait_for(&[DISAGREES]);
    assert!(
        line.contains("WARN") && line.contains("is 25 fps but Frame Rate is 29.97 fps drop-frame"),
        "a warning naming both rates: {line}"
    );
    report(&mut plugin, &mut t, at(25, false, false));
    assert_eq!(log.count(&[DISAGREES]), 1, "said once, not per block or per check\n{:#?}", log.lines());
    report(&mut plugin, &mut t, at(30, true, true));
    log.wait_for(&[AGREES_AGAIN]);
    // The SDK's "30 drop fps" (no pull-down) is not 29.97 drop-frame, from a host that follows the SDK.
    report(&mut plugin, &mut t, at(30, false, true));
    log.wait_for(&["is 30 fps drop-frame, which is none of the ten SMPTE rates"]);
    // 29.97 non-drop: the labels differ.
    report(&mut plugin, &mut t, at(30, true, false));
    log.wait_for(&["is 29.97 fps but Frame Rate is 29.97 fps drop-frame"]);
    plugin.deactivate();
    drop(plugin);
    assert_eq!(log.count(&[AGREES_AGAIN]), 1, "{:#?}", log.lines());

    // Ardour sets the drop flag alone for 29.97 drop-frame and never the pull-down flag.
    let mut ardour = Vst3Plugin::load_as("Ardour");
    let mut state = NiceState::from_json_bytes(&ardour.get_state());
    state.set_param("rate", serde_json::json!({"string": "29.97df"}));
    ardour.set_state(&state.to_json_bytes());
    ardour.activate(48_000, 512);
    let mut t = Transport::playing_from(48_000, 0);
    report(&mut ardour, &mut t, at(30, false, false));
    log.wait_for(&["is 30 fps or 29.97 fps but Frame Rate is 29.97 fps drop-frame"]);
    report(&mut ardour, &mut t, at(30, false, true));
    log.wait_for(&[AGREES_AGAIN]);
    assert_eq!(log.count(&[AGREES_AGAIN]), 2, "{:#?}", log.lines());
    ardour.deactivate();
}

/// MTC from the VST3 build, read by mido (`../mtc/mod.rs`) across start, locate, loop wraps and
/// stop: quarter frames as `LegacyMIDICCOutEvent` with `kCtrlQuarterFrame` (132), full frames as
/// SysEx `DataEvent`s; when the host calls itself Ardour, quarter frames as 2-byte `DataEvent`s
/// (Ardour's VST3 host mangles control number 132 into a CC, see `vendor/README.md`).
#[test]
#[ignore = "needs mido: pip install mido==1.3.3"]
fn vst3_mtc_read_by_mido_as_quarter_frame_controls_or_ardour_data_events() {
    use crate::clap_mtc::mtc::{MtcTiming, Sent, check_history, require_mido};
    use crate::clap_mtc::{BLOCK, scenario};
    use osc_timecode_tests::vst3host::{CTRL_QUARTER_FRAME, Vst3Carrier, Vst3EventKind};

    require_mido();
    let (sr, rate) = (48_000, rate("29.97df"));
    for host in [osc_timecode_tests::vst3host::HOST_NAME, "Ardour"] {
        let mut plugin = Vst3Plugin::load_as(host);
        let mut state = NiceState::from_json_bytes(&plugin.get_state());
        state.edit_settings(|s| {
            s.insert("targets".into(), serde_json::json!([]));
            s.insert("mtc".into(), serde_json::json!({ "enabled": true }));
        });
        state.set_param("rate", serde_json::json!({"string": "29.97df"}));
        state.set_param("offset", serde_json::json!({"i32": 3600}));
        plugin.set_state(&state.to_json_bytes());
        plugin.activate(sr, BLOCK);
        let ardour = host == "Ardour";
        let mut base = 0i64;
        let (sent, t) = scenario(sr, |t, total| {
            let run = plugin.run_events(t, total, BLOCK);
            assert_eq!(run.mismatches, 0, "pass-through");
            for e in &run.events {
                if let Vst3EventKind::LegacyCc { control, channel, value2, .. } = e.kind {
                    assert!(!ardour, "{host}: no control events for Ardour: {e:?}");
                    assert_eq!((control, channel, value2), (CTRL_QUARTER_FRAME, 0, 0), "{host}: {e:?}");
                }
            }
            let starts: Vec<i64> = run
                .blocks
                .iter()
                .scan(base, |at, b| {
                    let start = *at;
                    *at += i64::from(b.len);
                    Some(start)
                })
                .collect();
            base += run.blocks.iter().map(|b| i64::from(b.len)).sum::<i64>();
            run.system_messages()
                .into_iter()
                .map(|m| {
                    let want =
                        if m.bytes[0] == 0xf0 || ardour { Vst3Carrier::DataEvent } else { Vst3Carrier::QuarterFrameCc };
                    assert_eq!(m.carrier, want, "{host}: {m:?}");
                    Sent { sample: starts[m.block] + i64::from(m.offset), bytes: m.bytes }
                })
                .collect()
        });
        let timing = MtcTiming { sample_rate: sr, rate, offset_frames: offset_frames(3600, rate), code: 2 };
        let what = format!("VST3 MTC, host {host:?}");
        let checked = check_history(timing, t.history(), i64::from(BLOCK), &sent, &what);
        assert!(checked.full_frames.len() >= 9, "{what}: full frames {:?}", checked.full_frames);
        assert!(checked.quarters >= 4 * 29 * 3, "{what}: {} quarter frames", checked.quarters);
        assert!(sent.iter().any(|m| m.bytes.len() == 2), "{what}: quarter frames arrived");
    }
}

/// LTC from the VST3 build (left channel, captured by the host), read by libltc
/// (`ltc_words.rs`): pre-roll through midnight at 29.97 drop-frame, a locate, a loop whose wraps
/// fall inside blocks (VST3 says the loop in beats: `cycleStartMusic`/`cycleEndMusic`) and a
/// stop: every word complete in the audio, in order, its label and DF flag, on its frame's first
/// sample (libltc's 0 to 2 samples), at the set level; silence while stopped; the right channel
/// carries the program audio untouched.
#[test]
#[ignore = "needs libltc: apt-get install libltc11"]
fn vst3_ltc_read_by_libltc_through_midnight_locate_loop_and_stop() {
    use crate::ltc_words::{LEVEL_DBFS, assert_words, expected_words, libltc, with_block};

    libltc::require_libltc();
    const BLOCK: u32 = 480;
    let (sr, rate) = (48_000, rate("29.97df"));
    let ltc = serde_json::json!({"channel": "left", "level_dbfs": LEVEL_DBFS, "stopped": "silence"});
    let mut plugin = vst3_configured(None, "29.97df", 0, |s| {
        s.insert("ltc".into(), ltc);
    });
    plugin.capture_audio = true;
    plugin.activate(sr, BLOCK);
    let sr = i64::from(sr);
    let mut t = Transport::new(48_000);
    let mut audio = [Vec::new(), Vec::new()];
    let mut keep = |run: osc_timecode_tests::vst3host::Vst3Run| {
        assert_eq!(run.audio[0].len() as u64, run.blocks.iter().map(|b| u64::from(b.len)).sum::<u64>());
        // Each run's input is a ramp of 101 steps from its first sample, negated on the right
        // (vst3host.rs): the right channel passes it untouched.
        let right_passes = run.audio[1].iter().enumerate().all(|(i, s)| *s == -((i % 101) as f32 / 101.0));
        assert!(right_passes, "the right channel passes the program audio");
        for (kept, got) in audio.iter_mut().zip(run.audio) {
            kept.extend(got);
        }
    };
    t.locate(-sr);
    t.play();
    keep(plugin.run_events(&mut t, 2 * sr as u64, BLOCK));
    t.locate(37 * sr / 10 + 77);
    t.set_loop(Some((4 * sr + 13, 5 * sr + 301)));
    keep(plugin.run_events(&mut t, 7 * sr as u64 / 2, BLOCK));
    t.set_loop(None);
    t.stop();
    keep(plugin.run_events(&mut t, 8 * u64::from(BLOCK), BLOCK));
    let wraps = t.history().iter().filter(|p| matches!(p, Played::Span { how: SpanStart::Loop, .. })).count();
    assert!(wraps >= 2, "the loop wrapped: {:?}", t.history());
    let (want, breaks) = expected_words(&with_block(t.history(), BLOCK), Timing::new(48_000, rate), false);
    assert!(want.len() > 100, "the script plays many words ({})", want.len());
    assert!(want.iter().any(|w| w.label == "23:59:59;29") && want.iter().any(|w| w.label == "00:00:00;00"));
    let decoded = assert_words(&audio[0], 48_000, rate, (&want, &breaks), "VST3 LTC 29.97df at 48 kHz");
    assert!(decoded.iter().any(|d| d.label == "00:00:00;00"), "midnight read by libltc");
    let stopped = &audio[0][audio[0].len() - 6 * BLOCK as usize..];
    assert!(stopped.iter().all(|s| *s == 0.0), "silence while stopped");
}

/// Art-Net from the VST3 build (target on loopback, set through the state): `artnet_protocol`
/// reads every packet, StreamId and Type as set, the labels those of the OSC stream in order,
/// none before its frame is heard (its OSC timetag; output latency 20 ms), across a locate.
#[test]
fn vst3_artnet_labels_are_the_osc_streams() {
    use artnet_protocol::FrameType;
    use osc_timecode_core::protocol::system_time_from_timetag;

    use crate::artnet_read::{label, read};
    use crate::common::{ARRIVAL_TIMEOUT, EXTRA_WINDOW};

    let (rx, art) = (Receiver::bind(), Receiver::bind());
    let target = art.addr().to_string();
    let mut plugin = vst3_configured(Some(&rx), "25", 3600, |s| {
        s.insert("artnet".into(), serde_json::json!({ "targets": [target], "stream_id": 7 }));
        s.insert("output_latency_ms".into(), serde_json::json!(20.0));
    });
    plugin.activate(48_000, 512);
    let mut t = Transport::playing_from(48_000, 0);
    plugin.run(&mut t, 48_000, 512);
    t.locate(48_000 * 10 + 111);
    plugin.run(&mut t, 48_000, 512);
    let rate = rate("25");
    let mut timing = Timing::new(48_000, rate);
    timing.offset_frames = offset_frames(3600, rate);
    let want = expected(t.history(), timing);
    let osc = receive(&rx, want.len());
    assert_stream(&messages(&osc), &want, rate, "VST3 OSC with Art-Net on");
    let mut got = art.collect(osc.len(), ARRIVAL_TIMEOUT);
    got.extend(art.collect_for(EXTRA_WINDOW));
    let labels: Vec<_> = got.iter().map(|p| read(p).0).collect();
    let want_labels: Vec<_> = messages(&osc).iter().map(|m| label(m.timecode)).collect();
    assert_eq!(labels, want_labels, "Art-Net labels against the OSC stream's");
    assert_eq!(want_labels.first(), Some(&(1, 0, 0, 0)), "an hour's offset");
    for (i, (p, o)) in got.iter().zip(&osc).enumerate() {
        let (l, stream, frame_type) = read(p);
        assert_eq!((stream, frame_type), (7, FrameType::EBU), "packet {i}");
        let heard = system_time_from_timetag(o.timetag());
        assert!(
            p.wall + std::time::Duration::from_micros(100) >= heard,
            "packet {i} ({l:?}) arrived {:?} before its frame was heard",
            heard.duration_since(p.wall).unwrap_or_default()
        );
    }
}

/// `plugin` taking cues on a free loopback port (the default cue settings otherwise), active at
/// 48 kHz with 256-sample blocks, and a sender it answers.
fn with_cue_input(plugin: Vst3Plugin) -> (Vst3Plugin, osc_timecode_tests::cues::CueSender) {
    use osc_timecode_tests::cues::{CueSender, cues_settings, free_loopback_addr, set_cues};
    let listen = free_loopback_addr();
    let mut plugin = configure(plugin, None, "25", 0, |s| set_cues(s, cues_settings(listen, serde_json::json!({}))));
    plugin.activate(48_000, 256);
    let sender = CueSender::new(listen);
    sender.wait_ready();
    (plugin, sender)
}

/// The gesture calls (begin, perform, end) the host's `IComponentHandler` got so far, in order
/// (restarts left out).
fn gestures(plugin: &Vst3Plugin) -> Vec<osc_timecode_tests::vst3host::EditCallAt> {
    use osc_timecode_tests::vst3host::EditCall;
    plugin.edit_calls().into_iter().filter(|c| !matches!(c.call, EditCall::Restart(_))).collect()
}

/// Waits up to [`PATIENCE`] for `n` gesture calls, running `between` (pump the host's run loop,
/// process a block, ...) between looks; returns the calls then.
fn wait_for_gestures(
    plugin: &mut Vst3Plugin,
    n: usize,
    mut between: impl FnMut(&mut Vst3Plugin),
) -> Vec<osc_timecode_tests::vst3host::EditCallAt> {
    let deadline = std::time::Instant::now() + PATIENCE;
    while gestures(plugin).len() < n && std::time::Instant::now() < deadline {
        between(plugin);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    gestures(plugin)
}

/// Issue 19, VST3: a `/macro/1` cue reaches the host as `beginEdit`, `performEdit`, `endEdit`
/// through its `IComponentHandler`, in that order, on the host's UI thread (the task runs in the
/// `IRunLoop` the host passed to `initialize()`, pumped here on the test's thread) with no editor
/// open, and the controller reads the new value back.
#[test]
fn vst3_macro_cue_is_one_gesture_on_the_hosts_ui_thread() {
    use osc_timecode_tests::clap::nice_plug_param_hash;
    use osc_timecode_tests::cues::CueValue;
    use osc_timecode_tests::vst3host::EditCall;

    let (mut plugin, mut sender) = with_cue_input(Vst3Plugin::load());
    // Active but paused: the wrapper sets the value itself (a processing host passes it back to
    // the audio thread instead).
    plugin.set_processing(false);
    let ack = sender.cue_acked("/macro/1", Some(CueValue::Float(0.5)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");

    let id = nice_plug_param_hash("macro1");
    let want = [EditCall::Begin(id), EditCall::Perform(id, 0.5), EditCall::End(id)];
    let calls = wait_for_gestures(&mut plugin, want.len(), |p| {
        p.pump_run_loop();
    });
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), want, "{calls:?}");
    assert!(calls.iter().all(|c| c.on_main_thread), "every call on the host's UI thread: {calls:?}");
    assert_eq!(plugin.param_normalized(id), 0.5, "the controller reads the new value");
    plugin.set_processing(true);
}

/// Issue 19, VST3, timetagged: the audio thread places a timetagged `/macro/1` at its block, but
/// VST3 begins gestures only on the UI thread, so the wrapper refuses it there
/// (`ProcessContext::set_parameter_normalized` is CLAP's) and the audio thread hands it back to
/// the cue thread, which sets it through the `IComponentHandler` task: the host still gets one
/// gesture with the value on its UI thread, not before the cue's time, and the cue counts
/// applied once.
#[test]
fn vst3_timetagged_macro_cue_is_one_gesture_on_the_ui_thread_after_its_block() {
    use osc_timecode_tests::clap::nice_plug_param_hash;
    use osc_timecode_tests::cues::{message, timetag};
    use osc_timecode_tests::vst3host::EditCall;

    let (mut plugin, mut sender) = with_cue_input(Vst3Plugin::load());
    let at = std::time::SystemTime::now() + std::time::Duration::from_millis(300);
    let content = vec![message("/macro/1", vec![rosc::OscType::Float(0.5)])];
    sender.send_packet(&osc_timecode_tests::cues::bundle(timetag(at), content));
    assert_eq!(sender.ack().status, "ok");

    let id = nice_plug_param_hash("macro1");
    let want = [EditCall::Begin(id), EditCall::Perform(id, 0.5), EditCall::End(id)];
    // Blocks about as fast as they play, with the UI thread's run loop pumped between them.
    let mut transport = Transport::new(48_000);
    let mut first_seen = None;
    let calls = wait_for_gestures(&mut plugin, want.len(), |p| {
        p.run(&mut transport, 256, 256);
        p.pump_run_loop();
        if first_seen.is_none() && !gestures(p).is_empty() {
            first_seen = Some(std::time::SystemTime::now());
        }
    });
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), want, "{calls:?}");
    assert!(calls.iter().all(|c| c.on_main_thread), "every call on the host's UI thread: {calls:?}");
    // Its block is processed up to two blocks (10.7 ms) before its time: never sooner than that.
    let early = at.duration_since(first_seen.expect("seen")).unwrap_or_default();
    assert!(early < std::time::Duration::from_millis(50), "set {early:?} before its time");
    // While processing, the value reaches the plugin when the host passes it back as an input
    // parameter change (this host passes none), so only the gesture is checked here.
    let status = sender.status();
    assert_eq!((status.get("applied"), status.get("queued")), (1, 0), "{status}");
}

/// Issue 19, VST3, a host that offers an `IRunLoop` and never runs it (headless Ardour 8.7 and
/// later: a GLib loop `ardour8-lua` does not run): after two seconds the waiting change goes to
/// nice-plug's own thread, with one warning in the log, so a cue is not acked `ok` and then never
/// applied. The gesture arrives once, whole; later cues go straight there.
#[test]
fn vst3_macro_cue_reaches_a_host_whose_run_loop_never_runs() {
    use osc_timecode_tests::clap::nice_plug_param_hash;
    use osc_timecode_tests::cues::CueValue;
    use osc_timecode_tests::vst3host::EditCall;

    if !in_child(module_path!(), "vst3_macro_cue_reaches_a_host_whose_run_loop_never_runs", PATIENCE * 4) {
        return;
    }
    let log = PluginLog::new();
    let (mut plugin, mut sender) = with_cue_input(Vst3Plugin::load());
    plugin.set_processing(false);
    let id = nice_plug_param_hash("macro1");
    // The host's run loop is never pumped here.
    assert_eq!(sender.cue_acked("/macro/1", Some(CueValue::Float(0.5)), None).status, "ok");
    let first = [EditCall::Begin(id), EditCall::Perform(id, 0.5), EditCall::End(id)];
    let calls = wait_for_gestures(&mut plugin, first.len(), |_| {});
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), first, "{calls:?}");
    assert_eq!(calls[0].thread_name.as_deref(), Some("bg-worker"), "nice-plug's own thread: {calls:?}");
    assert_eq!(plugin.param_normalized(id), 0.5);
    log.wait_for(&["WARN", "the host's run loop has not run a task for 2s"]);

    assert_eq!(sender.cue_acked("/macro/1", Some(CueValue::Float(0.25)), None).status, "ok");
    let second = [EditCall::Begin(id), EditCall::Perform(id, 0.25), EditCall::End(id)];
    let calls = wait_for_gestures(&mut plugin, first.len() + second.len(), |_| {});
    let want: Vec<EditCall> = first.iter().chain(&second).copied().collect();
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), want, "each once, in order: {calls:?}");
    assert_eq!(plugin.pump_run_loop(), 1, "the host's loop still holds the first task, which finds nothing");
    assert_eq!(gestures(&plugin).len(), want.len(), "nothing twice");
    assert_eq!(log.count(&["the host's run loop has not run a task"]), 1, "warned once");
    plugin.set_processing(true);
}

/// Issue 19, VST3, the fallback: a host whose `initialize()` context offers no `IRunLoop` still
/// gets a `/macro/1` cue as `beginEdit`, `performEdit(0.5)`, `endEdit` through its
/// `IComponentHandler`, once each and in that order, and the controller reads 0.5 back. As
/// vendor/README.md says, the task then runs in nice-plug's own event loop: on Linux its
/// background worker thread (`bg-worker`, `event_loop/background_thread.rs`), not the host's UI
/// thread. A second cue (0.25) is the barrier that shows nothing of the first came twice: the
/// worker runs tasks in order, so a repeat would sit between the two gestures.
#[test]
fn vst3_macro_cue_without_a_host_run_loop_is_one_gesture_on_nice_plugs_thread() {
    use osc_timecode_tests::clap::nice_plug_param_hash;
    use osc_timecode_tests::cues::CueValue;
    use osc_timecode_tests::vst3host::EditCall;

    let (mut plugin, mut sender) = with_cue_input(Vst3Plugin::load_without_run_loop());
    // Active but paused: the wrapper sets the value itself.
    plugin.set_processing(false);
    assert_eq!(plugin.pump_run_loop(), 0, "this host has no run loop");

    let id = nice_plug_param_hash("macro1");
    // Nothing pumps a run loop here: the calls come on their own.

    let ack = sender.cue_acked("/macro/1", Some(CueValue::Float(0.5)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let first = [EditCall::Begin(id), EditCall::Perform(id, 0.5), EditCall::End(id)];
    let calls = wait_for_gestures(&mut plugin, first.len(), |_| {});
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), first, "{calls:?}");
    assert_eq!(plugin.param_normalized(id), 0.5, "the controller reads the new value");

    let ack = sender.cue_acked("/macro/1", Some(CueValue::Float(0.25)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let second = [EditCall::Begin(id), EditCall::Perform(id, 0.25), EditCall::End(id)];
    let calls = wait_for_gestures(&mut plugin, first.len() + second.len(), |_| {});
    let want: Vec<EditCall> = first.iter().chain(&second).copied().collect();
    assert_eq!(calls.iter().map(|c| c.call).collect::<Vec<_>>(), want, "each once, in order: {calls:?}");
    assert_eq!(plugin.param_normalized(id), 0.25, "the controller reads the second value");

    let test_thread = std::thread::current().id();
    assert!(calls.iter().all(|c| !c.on_main_thread && c.thread != test_thread), "not the host's UI thread: {calls:?}");
    assert!(calls.iter().all(|c| c.thread == calls[0].thread), "all on one thread: {calls:?}");
    assert_eq!(calls[0].thread_name.as_deref(), Some("bg-worker"), "nice-plug's event loop thread: {calls:?}");
    plugin.set_processing(true);
}
