//! Cues that move host parameters (issue 19), in the CLAP host with no editor open: `/macro/N
//! VALUE` sets Cue Macro N through the vendored nice-plug's `RemoteParamSetter`, which the host
//! sees as one gesture (begin, value, end) in its output events, asked for with `request_flush`
//! from the cue thread, never from the audio thread. The value reads back through `clap.params`
//! and is saved with the state; a flood is bounded and counted and the host goes on.

use std::time::Duration;

use osc_timecode_tests::clap::{OutputEvent, OutputEventKind, Param, RunReport, nice_plug_param_hash};
use osc_timecode_tests::cues::{Ack, CueValue, IMMEDIATELY, bundle, message};
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
