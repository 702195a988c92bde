//! Cues that move host parameters (issue 19), in the CLAP host with no editor open: `/macro/N
//! VALUE` sets Cue Macro N through the vendored nice-plug's `RemoteParamSetter`, which the host
//! sees as one gesture (begin, value, end) in its output events, asked for with `request_flush`
//! from the cue thread, never from the audio thread. The value reads back through `clap.params`
//! and is saved with the state; a flood is bounded and counted and the host goes on.

use std::time::{Duration, SystemTime};

use osc_timecode_tests::clap::{Midi, OutputEvent, OutputEventKind, Param, RunReport, nice_plug_param_hash};
use osc_timecode_tests::cues::{Ack, CueValue, IMMEDIATELY, bundle, check_landing, message, timetag};
use rosc::OscType;
use serde_json::json;

use crate::common::{CueRig, settled_status};

/// The parameter events (values and gestures) of `report`, in output order.
fn param_events(report: &RunReport) -> Vec<OutputEvent> {
    report
        .events
        .iter()
        .copied()
        .filter(|e| {
            matches!(
                e.kind,
                OutputEventKind::ParamValue { .. }
                    | OutputEventKind::GestureBegin { .. }
                    | OutputEventKind::GestureEnd { .. }
            )
        })
        .collect()
}

/// The gesture one `/macro/N` cue makes: begin, value, end for `macroN`.
fn gesture(n: u8, value: f64) -> [OutputEventKind; 3] {
    let param_id = nice_plug_param_hash(Param::Macro(n).string_id());
    [
        OutputEventKind::GestureBegin { param_id },
        OutputEventKind::ParamValue { param_id, value },
        OutputEventKind::GestureEnd { param_id },
    ]
}

#[test]
fn a_macro_cue_is_one_host_gesture_without_an_editor_and_the_value_stays() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let (flushes_before, _) = cr.rig.plugin.flush_requests();
    let ack = cr.sender.cue_acked("/macro/1", Some(CueValue::Float(0.5)), None);
    assert_eq!(ack, Ack { address: "/macro/1".into(), id: None, status: "ok".into(), from: cr.listen });
    // Acked once the wrapper queued the gesture: the next block carries it.
    let report = cr.blocks(1);
    let events = param_events(&report);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), gesture(1, 0.5), "{events:?}");
    assert!(events.iter().all(|e| (e.block, e.time) == (0, 0)), "at the start of the block: {events:?}");
    assert!(report.midi().is_empty(), "a macro cue is no MIDI");
    assert_eq!(cr.rig.plugin.param_value(Param::Macro(1)), 0.5, "clap.params reads the new value");

    // An int is VALUE / 127; the other macros do not move.
    let ack = cr.sender.cue_acked("/macro/8", Some(CueValue::Int(127)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let kinds: Vec<_> = param_events(&cr.blocks(1)).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, gesture(8, 1.0));
    for n in 2..=7 {
        assert_eq!(cr.rig.plugin.param_value(Param::Macro(n)), 0.0, "macro{n} untouched");
    }

    // Anything but an int 0-127 or a float 0-1 is refused with bad_argument, and changes nothing.
    for bad in [CueValue::Int(128), CueValue::Float(1.5), CueValue::Nil] {
        let ack = cr.sender.cue_acked("/macro/1", Some(bad), None);
        assert_eq!(ack.status, "bad_argument", "{bad:?}: {ack:?}");
    }
    assert!(param_events(&cr.blocks(2)).is_empty(), "no gesture for a refused cue");
    assert_eq!(cr.rig.plugin.param_value(Param::Macro(1)), 0.5);

    let (flushes, on_audio) = cr.rig.plugin.flush_requests();
    assert!(flushes >= flushes_before + 2, "the plugin asked for a flush for each gesture ({flushes})");
    assert_eq!(on_audio, 0, "request_flush is never called on the audio thread");

    let status = cr.status();
    assert_eq!(
        (status.cues_received(), status.get("applied"), status.get("queued"), status.get("dropped_bad_argument")),
        (5, 2, 0, 3),
        "{status}"
    );

    // Saved with the project.
    let state = cr.rig.plugin.nice_state();
    assert_eq!(state.param("macro1"), Some(&json!({"f32": 0.5})), "{}", state.json);
    assert_eq!(state.param("macro8"), Some(&json!({"f32": 1.0})), "{}", state.json);
}

#[test]
fn a_flood_of_macro_cues_is_bounded_counted_and_the_host_goes_on() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    // 10 000 cues at /macro/1 in bundles of 50, no block processed meanwhile: nothing drains the
    // wrapper's queue to the host, which must refuse (and count) what does not fit.
    let total = 10_000;
    for b in 0..total / 50 {
        let content = (0..50).map(|i| message("/macro/1", vec![OscType::Int(((b * 50 + i) % 128) as i32)])).collect();
        cr.sender.send_packet(&bundle(IMMEDIATELY, content));
        // Read the acks as they come (so the sender's socket never fills), and give the cue
        // thread time to read each bundle (so the kernel drops none).
        let _ = cr.sender.replies_within(Duration::from_millis(20));
    }
    let status = settled_status(&cr.sender);
    let (applied, full) = (status.get("applied"), status.get("dropped_queue_full"));
    assert_eq!(status.cues_received(), total, "{status}");
    assert_eq!(applied + full, total, "every cue applied or counted as queue_full: {status}");
    assert!(full > 0, "the queue to the host filled: {status}");
    assert!(applied > 0 && applied <= 1024, "bounded: {applied} gestures queued");

    // The host takes them all in the next block, whole gestures in order, then nothing more.
    let events = param_events(&cr.blocks(1));
    assert_eq!(events.len() as i64, 3 * applied, "three events for each applied cue");
    for (i, triple) in events.chunks(3).enumerate() {
        let OutputEventKind::ParamValue { value, .. } = triple[1].kind else { panic!("gesture {i}: {triple:?}") };
        assert_eq!(triple.iter().map(|e| e.kind).collect::<Vec<_>>(), gesture(1, value), "gesture {i}");
    }
    assert!(param_events(&cr.blocks(4)).is_empty(), "and nothing more");
    let (_, on_audio) = cr.rig.plugin.flush_requests();
    assert_eq!(on_audio, 0, "request_flush is never called on the audio thread");

    // The host is alive and the next cue goes through.
    let ack = cr.sender.cue_acked("/macro/1", Some(CueValue::Float(0.25)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let kinds: Vec<_> = param_events(&cr.blocks(1)).into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, gesture(1, 0.25));
    assert_eq!(cr.rig.plugin.param_value(Param::Macro(1)), 0.25);
}

/// A timetagged `/macro/1` is placed by the audio thread like a MIDI cue: its gesture is in the
/// host's output events of the block containing its time, at the same sample as a note of the
/// same bundle (which lands where heard, as `clap_cues.rs` checks), with no flush asked for.
#[test]
fn a_timetagged_macro_cue_is_a_gesture_at_its_sample_in_the_block_containing_its_time() {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(sr, block, json!({}));
    let t0 = SystemTime::now() + Duration::from_millis(400);
    let CueRig { rig, sender, .. } = &mut cr;
    let (flushes_before, _) = rig.plugin.flush_requests();
    let report = std::thread::scope(|scope| {
        let cuer = scope.spawn(|| {
            let content = vec![message("/cue/20", vec![]), message("/macro/1", vec![OscType::Float(0.5)])];
            sender.send_packet(&bundle(timetag(t0), content));
            sender.acks(2)
        });
        let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr) * 6 / 5, block);
        for ack in cuer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
            assert_eq!(ack.status, "ok", "{ack:?}");
        }
        report
    });
    let notes: Vec<_> = report.midi().into_iter().filter(|m| matches!(m.midi, Midi::NoteOn { key: 20, .. })).collect();
    let [note] = notes[..] else { panic!("one note on for /cue/20: {notes:?}") };
    check_landing(&report.block_log, note.block, note.offset, t0, Duration::ZERO, sr, i64::from(sr / 1000))
        .unwrap_or_else(|e| panic!("/cue/20: {e}"));
    let events = param_events(&report);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), gesture(1, 0.5), "{events:?}");
    for e in &events {
        assert_eq!((e.block, e.time), (note.block, note.offset), "the gesture where the note is: {events:?}");
    }
    assert_eq!(cr.rig.plugin.param_value(Param::Macro(1)), 0.5);
    let (flushes, on_audio) = cr.rig.plugin.flush_requests();
    assert_eq!((flushes, on_audio), (flushes_before, 0), "set in the block: no flush asked for");
    let status = cr.status();
    assert_eq!((status.get("applied"), status.get("late"), status.get("queued")), (2, 0, 0), "{status}");
}

/// A `param` mapping names any parameter by ID: `/show/stop` sets `output` to 0 (a fixed value)
/// and the timecode stops; `/show/fade` ramps Cue Macro 2 to the cue's VALUE in whole gestures
/// that climb to exactly that value.
#[test]
fn a_param_mapping_to_output_stops_the_stream_and_a_ramp_climbs_in_whole_gestures() {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(
        sr,
        block,
        json!({"map": [
            {"address": "/show/stop", "kind": "param", "param": "output", "value": 0.0},
            {"address": "/show/fade", "kind": "param", "param": "macro2", "ramp_ms": 300}
        ]}),
    );
    cr.rig.transport.play();
    cr.blocks(40);
    let before = cr.rig.rx.collect_until_quiet(Duration::from_millis(300), Duration::from_secs(5));
    assert!(!before.is_empty(), "timecode flows while playing");
    let ack = cr.sender.cue_acked("/show/stop", None, None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let kinds: Vec<_> = param_events(&cr.blocks(1)).into_iter().map(|e| e.kind).collect();
    let output = nice_plug_param_hash("output");
    assert_eq!(
        kinds,
        [
            OutputEventKind::GestureBegin { param_id: output },
            OutputEventKind::ParamValue { param_id: output, value: 0.0 },
            OutputEventKind::GestureEnd { param_id: output },
        ]
    );
    assert_eq!(cr.rig.plugin.param_value(Param::Output), 0.0);
    let _ = cr.rig.rx.collect_until_quiet(Duration::from_millis(300), Duration::from_secs(5));
    cr.blocks(100);
    let after = cr.rig.rx.collect_for(Duration::from_millis(400));
    assert!(after.is_empty(), "no timecode once Output is off: {} packets", after.len());

    let ack = cr.sender.cue_acked("/show/fade", Some(CueValue::Int(127)), None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let CueRig { rig, .. } = &mut cr;
    let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr) / 2, block);
    let events = param_events(&report);
    let mut values = Vec::new();
    for (i, triple) in events.chunks(3).enumerate() {
        let OutputEventKind::ParamValue { value, .. } = triple[1].kind else { panic!("gesture {i}: {events:?}") };
        assert_eq!(triple.iter().map(|e| e.kind).collect::<Vec<_>>(), gesture(2, value), "gesture {i}");
        values.push(value);
    }
    assert!(values.len() >= 2, "a ramp, not a jump: {values:?}");
    assert!(values.windows(2).all(|w| w[0] < w[1]), "climbing: {values:?}");
    assert_eq!(values.last(), Some(&1.0), "ends exactly on the value: {values:?}");
    assert_eq!(cr.rig.plugin.param_value(Param::Macro(2)), 1.0);
}
