//! Art-Net ArtTimeCode from the plugin in the CLAP host (issue 16): an Art-Net target on
//! loopback (set through the plugin's state), every packet read by `artnet_protocol` (a decoder
//! not ours), its label the one the OSC stream carries for the same frame, in order without a
//! gap, and none before its frame is heard (the OSC timetag of the same frame).

use std::time::Duration;

use artnet_protocol::FrameType;
use osc_timecode_core::protocol::{TimecodeMessage, system_time_from_timetag};
use osc_timecode_core::timecode::frame_start_sample;
use osc_timecode_core::{FrameRate, Timecode};
use osc_timecode_tests::receiver::{Receiver, messages};

use crate::artnet_read::{label, read as decode};
use crate::common::{ARRIVAL_TIMEOUT, EXTRA_WINDOW, Rig, rate};

/// The output latency the tests set, ms: the heard time is a block plus this after the frame is
/// processed, so a packet sent when its frame is processed would come 20 ms or more early.
const LATENCY_MS: f64 = 20.0;

/// How far before the timetag a packet may arrive and still count as on time: the plugin pairs
/// its monotonic and wall clocks within 10 µs (plugin/src/wallclock.rs); sending at processing
/// time would be more than a thousand times that early.
const CLOCK_PAIRING: Duration = Duration::from_micros(100);

/// A rig at `name` fps sending OSC to its receiver and Art-Net (stream 3) to `art`, with
/// `half_rate` and [`LATENCY_MS`].
fn rig(name: &str, art: &Receiver, half_rate: bool) -> Rig {
    let target = art.addr().to_string();
    Rig::with(48_000, rate(name), 512, 0, |p| {
        p.update_settings(|s| {
            s.insert("artnet".into(), serde_json::json!({ "targets": [target], "stream_id": 3 }));
            s.insert("half_rate".into(), serde_json::json!(half_rate));
            s.insert("output_latency_ms".into(), serde_json::json!(LATENCY_MS));
        });
    })
}

/// Two seconds played at 25, 29.97 drop-frame (across 00:00:59;29 → 00:01:00;02) and 50 fps in
/// half-rate mode (one packet per pair of frames, labelled at 25 fps): every packet's label is
/// the OSC stream's for the same frame, in order, none missing, none before the frame's timetag.
#[test]
fn artnet_follows_the_osc_stream_and_leaves_when_each_frame_is_heard() {
    for (name, half_rate, kind) in
        [("25", false, FrameType::EBU), ("29.97df", false, FrameType::DF), ("50", true, FrameType::EBU)]
    {
        let art = Receiver::bind();
        let mut rig = rig(name, &art, half_rate);
        let rate = rig.timing.rate;
        // 29.97 DF: start a second before the dropped labels of minute 1.
        if rate == FrameRate::FPS_29_97_DF {
            rig.transport.locate(frame_start_sample(1769, 48_000, rate));
        }
        rig.play_seconds(2.0, 512);
        let osc = rig.check(&format!("OSC at {name} with Art-Net on"));
        // The packets Art-Net must carry: one per frame, or per pair of frames at half rate
        // (frame n is frame n/2 at 25 fps; the pair's second frame repeats the label and is not
        // sent again while playing on), each with the timetag of the frame that sends it.
        let mut want: Vec<((u8, u8, u8, u8), std::time::SystemTime)> = Vec::new();
        let mut previous: Option<(TimecodeMessage, (u8, u8, u8, u8))> = None;
        for (p, m) in osc.iter().zip(messages(&osc)) {
            let tc =
                if half_rate { Timecode::from_frame(m.frame.div_euclid(2), FrameRate::FPS_25) } else { m.timecode };
            let repeat =
                previous.is_some_and(|(prev, l)| m.playing && prev.playing && !m.jump && !m.looped && l == label(tc));
            if !repeat {
                want.push((label(tc), system_time_from_timetag(p.timetag())));
            }
            previous = Some((m, label(tc)));
        }
        let mut got = art.collect(want.len(), ARRIVAL_TIMEOUT);
        got.extend(art.collect_for(EXTRA_WINDOW));
        let labels: Vec<_> = got.iter().map(|p| decode(p).0).collect();
        let want_labels: Vec<_> = want.iter().map(|w| w.0).collect();
        assert_eq!(labels, want_labels, "{name}: Art-Net labels against the OSC stream's");
        assert!(want.len() >= 49, "{name}: {} packets in two seconds", want.len());
        for (i, (p, (l, heard))) in got.iter().zip(&want).enumerate() {
            let (_, stream, frame_type) = decode(p);
            assert_eq!((stream, frame_type), (3, kind), "{name}: packet {i}");
            assert!(
                p.wall + CLOCK_PAIRING >= *heard,
                "{name}: packet {i} ({l:?}) arrived {:?} before its frame was heard",
                heard.duration_since(p.wall).unwrap_or_default()
            );
        }
        rig.plugin.deactivate();
    }
}

/// 50 fps without half_rate: the OSC stream as always, no Art-Net packet at all.
#[test]
fn artnet_sends_nothing_at_50_fps_without_half_rate() {
    let art = Receiver::bind();
    let mut rig = rig("50", &art, false);
    rig.play_seconds(1.0, 512);
    let osc = rig.check("OSC at 50 fps with Art-Net refused");
    assert!(osc.len() >= 50, "the OSC stream goes on: {} frames", osc.len());
    rig.plugin.deactivate();
    let got = art.collect_for(EXTRA_WINDOW);
    assert!(got.is_empty(), "no Art-Net at 50 fps without half_rate, got {} packets", got.len());
}
