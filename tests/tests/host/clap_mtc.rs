//! MTC through the plugin's MIDI output in the real CLAP host, read by mido (a decoder nobody here
//! wrote, `../mtc/mod.rs`): quarter frames leave as `CLAP_EVENT_MIDI` (`F1 dd`), full frames as
//! `CLAP_EVENT_MIDI_SYSEX`, the quarter frames exactly those due at their samples (quarter q of the
//! MTC frame starting at frame n at `start(n) + floor(q·len/4)`, in whatever block they fall), the
//! values matching the frames' labels, a full frame on every start of play, locate, loop wrap
//! (inside a block) and stop; in half-rate mode at 50 fps; nothing at 50 fps without it, and
//! nothing while MTC is off (the default).

use osc_timecode_core::FrameRate;
use osc_timecode_tests::clap::{Carrier, ClapPlugin, Param, RunReport};
use osc_timecode_tests::expect::offset_frames;
use osc_timecode_tests::transport::Transport;
use serde_json::json;

#[path = "../mtc/mod.rs"]
pub(crate) mod mtc;

use crate::common::rate;
use mtc::{MtcTiming, Sent, check_history, require_mido};

/// Block size of every run here (parked blocks are this long): not a divisor of any frame length,
/// so quarter frames fall anywhere in a block.
pub(crate) const BLOCK: u32 = 500;

/// A plugin with MTC `enabled` (and `half_rate`) at `rate` with a start offset, activated.
fn mtc_plugin(sample_rate: u32, rate: FrameRate, offset_seconds: u32, enabled: bool, half_rate: bool) -> ClapPlugin {
    let mut plugin = ClapPlugin::load();
    plugin.update_settings(|s| {
        s.insert("targets".into(), json!([]));
        s.insert("mtc".into(), json!({ "enabled": enabled }));
        s.insert("half_rate".into(), json!(half_rate));
    });
    plugin.set_param(Param::Rate, rate.index() as f64);
    plugin.set_param(Param::Offset, f64::from(offset_seconds));
    plugin.activate(sample_rate, BLOCK);
    plugin
}

/// The system messages of `report`, checking how each travelled: quarter frames as
/// `CLAP_EVENT_MIDI`, full frames as `CLAP_EVENT_MIDI_SYSEX`.
fn sent(report: &RunReport) -> Vec<Sent> {
    report
        .system_messages()
        .into_iter()
        .map(|m| {
            let want = if m.bytes[0] == 0xf0 { Carrier::SysEx } else { Carrier::Midi };
            assert_eq!(m.carrier, want, "{m:?}");
            Sent { sample: m.sample as i64, bytes: m.bytes }
        })
        .collect()
}

/// Parks in pre-roll, plays, locates, plays a loop that wraps inside blocks, stops and locates
/// while stopped, in blocks of [`BLOCK`] through `run(transport, samples)` (which returns the
/// messages of those samples, numbered from the scenario's first sample); returns all messages
/// and the transport (its history is what was played).
pub(crate) fn scenario(
    sample_rate: u32,
    mut run_some: impl FnMut(&mut Transport, u64) -> Vec<Sent>,
) -> (Vec<Sent>, Transport) {
    let sr = i64::from(sample_rate);
    let seconds = |s: f64| (s * f64::from(sample_rate) / f64::from(BLOCK)).round() as u64 * u64::from(BLOCK);
    let mut t = Transport::new(sample_rate);
    let mut all = Vec::new();
    let mut run = |t: &mut Transport, total: u64| all.extend(run_some(t, total));
    t.locate(-sr / 2 + 7); // pre-roll
    run(&mut t, 4 * u64::from(BLOCK));
    t.play();
    run(&mut t, seconds(1.2));
    t.locate(10 * sr + 123);
    run(&mut t, seconds(0.6));
    t.set_loop(Some((20 * sr + 31, 20 * sr + sr / 3 + 77)));
    t.locate(20 * sr + sr / 5);
    run(&mut t, seconds(1.5));
    t.set_loop(None);
    t.stop();
    run(&mut t, 4 * u64::from(BLOCK));
    t.locate(30 * sr);
    run(&mut t, 3 * u64::from(BLOCK));
    (all, t)
}

#[test]
#[ignore = "needs mido: pip install mido==1.3.3"]
fn clap_mtc_read_by_mido_across_start_locate_loop_and_stop() {
    require_mido();
    for (name, sample_rate, code) in [("25", 48_000, 1), ("29.97df", 48_000, 2), ("24", 44_100, 0), ("30", 96_000, 3)] {
        let rate = rate(name);
        let mut plugin = mtc_plugin(sample_rate, rate, 3600, true, false);
        let (sent, t) = scenario(sample_rate, |t, total| sent(&plugin.run(t, total, BLOCK)));
        let timing = MtcTiming { sample_rate, rate, offset_frames: offset_frames(3600, rate), code };
        let what = format!("CLAP MTC at {name} fps, {sample_rate} Hz");
        let checked = check_history(timing, t.history(), i64::from(BLOCK), &sent, &what);
        // Park, start, locate, loop start, each wrap (at least 4 in 1.5 s of a 0.33 s loop),
        // stop and the new park position.
        assert!(checked.full_frames.len() >= 9, "{what}: full frames {:?}", checked.full_frames);
        // 3.3 s of play: 4 quarters a frame.
        let frames = 3.3 * f64::from(rate.num()) / f64::from(rate.den());
        assert!(checked.quarters as f64 >= 4.0 * frames - 40.0, "{what}: {} quarter frames", checked.quarters);
        assert!(checked.sequences >= 20, "{what}: {} sequences", checked.sequences);
    }
}

#[test]
#[ignore = "needs mido: pip install mido==1.3.3"]
fn clap_mtc_half_rate_sends_frame_pairs_at_50() {
    require_mido();
    let (sample_rate, rate) = (48_000, FrameRate::FPS_50);
    let mut plugin = mtc_plugin(sample_rate, rate, 3600, true, true);
    let (sent, t) = scenario(sample_rate, |t, total| sent(&plugin.run(t, total, BLOCK)));
    let timing = MtcTiming { sample_rate, rate, offset_frames: offset_frames(3600, rate), code: 1 };
    let checked = check_history(timing, t.history(), i64::from(BLOCK), &sent, "CLAP MTC at 50 fps, half_rate");
    assert!(checked.quarters >= 4 * 25 * 3, "{} quarter frames", checked.quarters);
}

/// Off by default, and at 50 fps without half_rate MTC cannot carry the rate: nothing at all.
#[test]
fn clap_mtc_sends_nothing_when_off_or_at_a_rate_it_cannot_carry() {
    for (rate, enabled) in [(FrameRate::FPS_25, false), (FrameRate::FPS_50, true), (FrameRate::FPS_60, true)] {
        let mut plugin = mtc_plugin(48_000, rate, 0, enabled, false);
        let mut t = Transport::playing_from(48_000, 0);
        let report = plugin.run(&mut t, 48_000, BLOCK);
        assert_eq!(report.system_messages(), [], "{rate}, MTC enabled {enabled}");
        assert!(report.midi().is_empty(), "{rate}: no other MIDI either");
    }
    // The default settings have MTC off.
    let mut plugin = ClapPlugin::load();
    assert_eq!(plugin.nice_state().settings()["mtc"], json!({ "enabled": false }));
    plugin.update_settings(|s| {
        s.insert("targets".into(), json!([]));
    });
    plugin.activate(48_000, BLOCK);
    let report = plugin.run(&mut Transport::playing_from(48_000, 0), 48_000, BLOCK);
    assert_eq!(report.system_messages(), []);
}

#[test]
fn mtc_and_a_quantised_cue_in_one_block_leave_in_time_order() {
    // 4096-sample blocks at 25 fps: quarter frames every 480 samples, and a quantised cue on a
    // frame start mid-block. The harness fails any block whose output events are not sorted by
    // time (CLAP's rule); here both kinds must be in the same block, the cue after some quarter
    // frames.
    let mut cr = crate::common::CueRig::with(
        48_000,
        FrameRate::FPS_25,
        4096,
        osc_timecode_tests::cues::free_loopback_addr(),
        json!({"quantise": true}),
        |s| {
            s.insert("mtc".into(), json!({"enabled": true}));
        },
        None,
    );
    // From 0, three blocks end at 12288; the next frame starts at 13440 (offset 1152), after
    // quarter frames at 12480 and 12960.
    cr.rig.transport.play();
    cr.blocks(3);
    let ack = cr.sender.cue_acked("/trigger/1", None, None);
    assert_eq!(ack.status, "ok", "{ack:?}");
    let report = cr.blocks(3);
    let cue = report.midi().first().copied().expect("the cue's control change");
    let before = report.system_messages().into_iter().filter(|m| m.block == cue.block && m.offset < cue.offset).count();
    assert!(before > 0, "quarter frames before the cue in its block (cue at {}): the case under test", cue.offset);
    let after = report.system_messages().into_iter().filter(|m| m.block == cue.block && m.offset > cue.offset).count();
    assert!(after > 0, "and after it");
}
