//! Writes the committed seed corpus, `fuzz/corpus/<target>/`: the golden packets of
//! core/tests/protocol.rs, packets as the plugin, `serve` and other senders (liblo, python-osc,
//! TouchOSC) encode them, built with rosc and core's encoder, timecode texts and saved states.
//!
//! Run from the repository root when the wire format or the settings change:
//! `cargo run --manifest-path fuzz/Cargo.toml --example seed`. Files are named by what they hold;
//! existing files of the same name are replaced, others (regression inputs) are kept.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use nice_plug::plugin::ParamValue;
use nice_plug::prelude::{Params as _, PluginState};
use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{TimecodeMessage, encode_timecode_bundle, timetag_from_system_time};
use osc_timecode_fuzz::join;
use osc_timecode_plugin::cues::map::CueSettings;
use osc_timecode_plugin::params::TimecodeParams;
use osc_timecode_plugin::settings::{OfflinePolicy, Settings};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

/// The 29.97df golden bundle of core/tests/protocol.rs, as pinned there.
const GOLDEN_TIMECODE: &str = concat!(
    "2362756e646c650083aa7e8080000000000000642f73796e632f74696d65636f646500002c7369696969696969686968",
    "6969000030303a30313a30303b3032000000000000000001000000000000000200007530000003e90000000100000000",
    "000007080000000100000000000000070000000000000000",
);
/// The `/ack /cue/intro 42 ok` golden message of core/tests/protocol.rs.
const GOLDEN_ACK: &str = "2f61636b000000002c736973000000002f6375652f696e74726f00000000002a6f6b0000";

/// 2026-01-01T00:00:00Z, the listen target's arrival time.
const EPOCH_2026: u64 = 1_767_225_600;

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage { addr: addr.to_owned(), args })
}

fn bundle(timetag: OscTime, content: Vec<OscPacket>) -> OscPacket {
    OscPacket::Bundle(OscBundle { timetag, content })
}

fn encode(packet: &OscPacket) -> Vec<u8> {
    rosc::encoder::encode(packet).expect("encoding into a Vec")
}

fn s(text: &str) -> OscType {
    OscType::String(text.to_owned())
}

/// A timecode bundle as the plugin sends it, timetagged `frame` periods after 2026-01-01.
fn timecode(frame: i64, rate: FrameRate, playing: bool, seq: i64, jump: bool, looped: bool) -> Vec<u8> {
    let nanos =
        u64::try_from(frame.max(0)).unwrap_or(0) * 1_000_000_000 * u64::from(rate.den()) / u64::from(rate.num());
    let tag = timetag_from_system_time(UNIX_EPOCH + Duration::from_secs(EPOCH_2026) + Duration::from_nanos(nanos));
    let mut out = Vec::new();
    encode_timecode_bundle(&TimecodeMessage::new(frame, rate, playing, seq, jump, looped), tag, &mut out);
    out
}

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create the corpus folder (run from the repository root)");
    std::fs::write(dir.join(name), bytes).expect("write a seed");
}

/// `[knobs] [sender] datagrams` (fuzz/src/lib.rs).
fn receiver_seed(knobs: u8, sender: u8, datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![knobs, sender];
    out.extend(join(datagrams));
    out
}

fn cue_packets() -> Vec<(&'static str, u8, Vec<Vec<u8>>)> {
    let soon = timetag_from_system_time(UNIX_EPOCH + Duration::from_secs(EPOCH_2026));
    let immediately = OscTime { seconds: 0, fractional: 1 };
    // knobs: bit 0 token, bit 2 named mappings (fuzz/src/lib.rs).
    vec![
        ("cue-liblo-ii", 0, vec![encode(&msg("/cue/60", vec![OscType::Int(100), OscType::Int(1)]))]),
        ("cue-nil-int64-id", 0, vec![encode(&msg("/cue/5", vec![OscType::Nil, OscType::Long(9_000_000_000)]))]),
        ("trigger-float", 0, vec![encode(&msg("/trigger/7", vec![OscType::Float(0.5)]))]),
        (
            "trigger-touchosc-token",
            1,
            vec![encode(&msg("/trigger/1", vec![s("s3cret"), OscType::Float(0.25), OscType::Int(3)]))],
        ),
        ("cue-off", 0, vec![encode(&msg("/cue/60", vec![OscType::Int(0)]))]),
        ("status", 0, vec![encode(&msg("/status", vec![]))]),
        ("status-token", 1, vec![encode(&msg("/status", vec![s("s3cret")]))]),
        ("pattern-braces", 0, vec![encode(&msg("/cue/{1,3}", vec![]))]),
        ("pattern-class", 0, vec![encode(&msg("/trigger/1[0-2]", vec![OscType::Int(64)]))]),
        ("pattern-too-broad", 0, vec![encode(&msg("/cue/*", vec![]))]),
        ("named", 4, vec![encode(&msg("/cue/intro", vec![])), encode(&msg("/cue/{hold,off,blackout}", vec![]))]),
        (
            "retry-same-id",
            0,
            vec![
                encode(&msg("/cue/9", vec![OscType::Nil, OscType::Int(77)])),
                encode(&msg("/cue/9", vec![OscType::Nil, OscType::Int(77)])),
            ],
        ),
        ("bundle-timetagged", 0, vec![encode(&bundle(soon, vec![msg("/cue/2", vec![OscType::Nil, OscType::Int(2)])]))]),
        (
            "bundle-nested",
            0,
            vec![encode(&bundle(
                immediately,
                vec![msg("/cue/1", vec![]), bundle(soon, vec![msg("/trigger/2", vec![]), msg("/status", vec![])])],
            ))],
        ),
        ("bad-argument", 0, vec![encode(&msg("/cue/1", vec![s("x")]))]),
        ("golden-ack", 0, vec![unhex(GOLDEN_ACK)]),
        ("garbage", 0, vec![b"garbage!".to_vec()]),
    ]
}

fn transport_packets() -> Vec<(&'static str, u8, Vec<Vec<u8>>)> {
    vec![
        (
            "transport-play-locate-stop",
            2,
            vec![
                encode(&msg("/transport/play", vec![])),
                encode(&msg("/transport/locate", vec![s("02:00:00:00")])),
                encode(&msg("/transport/stop", vec![])),
            ],
        ),
        ("transport-locate-drop-frame", 4, vec![encode(&msg("/transport/locate", vec![s("00:10:00;00")]))]),
        ("transport-token", 1, vec![encode(&msg("/transport/play", vec![s("s3cret")]))]),
    ]
}

fn receivers() {
    for target in ["plugin_cue_receiver", "serve_decode"] {
        for (name, knobs, datagrams) in cue_packets() {
            write(target, name, &receiver_seed(knobs, 0, &datagrams));
        }
        // A stranger (sender byte 2: 192.168.1.20), with and without allow-all (bit 4).
        let cue = vec![encode(&msg("/cue/1", vec![]))];
        write(target, "stranger", &receiver_seed(0, 2, &cue));
        write(target, "stranger-allowed", &receiver_seed(0x10, 2, &cue));
    }
    for (name, knobs, datagrams) in transport_packets() {
        write("serve_decode", name, &receiver_seed(knobs, 0, &datagrams));
    }
    // Plugin: a ring of 4 (bit 6) filled by one bundle of 8 cues.
    let eight: Vec<OscPacket> = (0..8).map(|n| msg(&format!("/cue/{n}"), vec![])).collect();
    let full = encode(&bundle(OscTime { seconds: 0, fractional: 1 }, eight));
    write("plugin_cue_receiver", "ring-full", &receiver_seed(0x40, 0, &[full]));
}

fn listen() {
    let t = "listen_decode";
    write(t, "golden-29.97df", &unhex(GOLDEN_TIMECODE));
    let run = |rate: FrameRate, from: i64| -> Vec<Vec<u8>> {
        (0..6).map(|i| timecode(from + i, rate, true, 100 + i, i == 0, false)).collect()
    };
    write(t, "rolling-25", &join(&run(FrameRate::FPS_25, 90_000)));
    write(t, "rolling-29.97df", &join(&run(FrameRate::FPS_29_97_DF, 107_892)));
    write(t, "rolling-23.976-pre-roll", &join(&run(FrameRate::FPS_23_976, -3)));
    let parked: Vec<Vec<u8>> = (0..3).map(|i| timecode(500, FrameRate::FPS_50, false, i, false, false)).collect();
    write(t, "parked-50", &join(&parked));
    let looped = vec![
        timecode(1000, FrameRate::FPS_30, true, 1, false, false),
        timecode(1001, FrameRate::FPS_30, true, 2, false, false),
        timecode(10, FrameRate::FPS_30, true, 3, true, true),
        timecode(11, FrameRate::FPS_30, true, 4, false, false),
    ];
    write(t, "loop-30", &join(&looped));
    let lossy = vec![
        timecode(1, FrameRate::FPS_60, true, 1, true, false),
        timecode(5, FrameRate::FPS_60, true, 5, false, false),
        timecode(3, FrameRate::FPS_60, true, 3, false, false),
    ];
    write(t, "loss-and-stale-60", &join(&lossy));
    let bare =
        encode(&OscPacket::Message(TimecodeMessage::new(90_000, FrameRate::FPS_25, true, 3, false, false).to_osc()));
    write(t, "bare-message", &bare);
    write(t, "midnight-59.94df", &timecode(5_178_815, FrameRate::FPS_59_94_DF, true, 9, false, false));
    write(t, "not-timecode", &encode(&msg("/cue/1", vec![])));
}

fn timecode_texts() {
    for (name, text) in [
        ("df-label", "00:01:00;02"),
        ("hour", "01:00:00:00"),
        ("last-df-label", "23:59:59;29"),
        ("dropped-label", "00:01:00;00"),
        ("zero", "00:00:00:00"),
        ("frames", "1800"),
        ("negative-frames", "-1"),
        ("seconds", "3600.25"),
        ("seconds-fraction", "0.033366667"),
        ("seconds-negative", "-.5"),
        ("samples", "172800000"),
        ("rate-name", "29.97df"),
        ("rate-fps", "59.94 fps"),
        ("offset", "01:00:00"),
        ("offset-df", "10:00:00;00"),
        ("out-of-range", "24:00:00:00"),
        ("big", "9223372036854775807"),
    ] {
        write("timecode_parse", name, text.as_bytes());
    }
}

fn states() {
    let t = "plugin_state";
    let default = serde_json::to_string(&Settings::default()).expect("settings serialize");
    write(t, "field-default", default.as_bytes());
    let cues: CueSettings = serde_json::from_str(
        r#"{"enabled": true, "listen": "0.0.0.0:5005", "allow": ["192.168.1.0/24", "::1"], "token": "s3cret",
            "quantise": true, "note_length_ms": 250, "dedupe_ms": 0, "defaults": false,
            "map": [{"address": "/cue/intro", "kind": "note", "channel": 2, "key": 60, "velocity": 100},
                    {"address": "/cue/blackout", "kind": "program", "channel": 1, "program": 12}]}"#,
    )
    .expect("valid cue settings");
    let custom = Settings {
        targets: vec!["192.168.1.20:5006".parse().expect("an address"), "[::1]:6000".parse().expect("an address")],
        keepalive_ms: 500,
        output_latency_ms: 12.5,
        offline: OfflinePolicy::Realtime,
        cues,
    };
    let custom_json = serde_json::to_string(&custom).expect("settings serialize");
    write(t, "field-custom", custom_json.as_bytes());
    write(t, "field-partial", br#"{"keepalive_ms": 250, "cues": {"quantise": true}}"#);
    write(t, "field-wrong-type", br#"{"targets": 5}"#);
    write(t, "field-truncated", &custom_json.as_bytes()[..custom_json.len() / 2]);
    // The whole document, as nice-plug saves it.
    let fields = TimecodeParams::new(custom).serialize_fields();
    let params = BTreeMap::from([
        ("rate".to_owned(), ParamValue::String("29.97df".to_owned())),
        ("output".to_owned(), ParamValue::Bool(true)),
        ("offset".to_owned(), ParamValue::I32(3600)),
        ("send_stopped".to_owned(), ParamValue::Bool(false)),
    ]);
    let state = PluginState { version: "0.1.0".to_owned(), params, fields };
    let document = serde_json::to_string(&state).expect("state serializes");
    write(t, "state-document", document.as_bytes());
    let mut garbled = state.clone();
    garbled.fields.insert("settings".to_owned(), "{\"targets\": [\"127.0".to_owned());
    write(t, "state-garbled-field", serde_json::to_string(&garbled).expect("state serializes").as_bytes());
}

fn main() {
    receivers();
    listen();
    timecode_texts();
    states();
}
