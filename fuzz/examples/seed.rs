//! Writes the committed seed corpus, `fuzz/corpus/<target>/`: the golden packets of
//! core/tests/protocol.rs, packets as the plugin, `serve` and other senders (liblo, python-osc,
//! TouchOSC) encode them, built with rosc and core's encoder, timecode texts, saved states and
//! config files; and the hostile inputs of issue 14 (nested arrays of 8 and 12 KB, deep
//! bundles, a pattern bomb, a `/status` flood, an empty bundle, deeply nested JSON and TOML), so
//! that every run starts from them and the fuzzer mutates them at their real size.
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
use osc_timecode_plugin::params::TimecodeParams;
use osc_timecode_plugin::settings::cues::CueSettings;
use osc_timecode_plugin::settings::values::Targets;
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

/// `text` as an OSC string: NUL-terminated, padded to 4 bytes.
fn osc_string(text: &str) -> Vec<u8> {
    let mut out = text.as_bytes().to_vec();
    out.resize((text.len() / 4 + 1) * 4, 0);
    out
}

/// `/cue/1` with `prefix` arguments, then `depth` OSC arrays nested in each other,
/// `,[[[[…]]]]`, written by hand (rosc's encoder and `Drop` recurse): arrays carry no data, so
/// the packet is the address and the type tags. Issue 14: 8 KB of it overflowed the cue
/// thread's stack while the refused argument was formatted.
fn nested_arrays(prefix: &[(&str, Vec<u8>)], depth: usize) -> Vec<u8> {
    let tags: String = prefix.iter().map(|(tag, _)| *tag).collect();
    let mut out = osc_string("/cue/1");
    out.extend(osc_string(&format!(",{tags}{}{}", "[".repeat(depth), "]".repeat(depth))));
    for (_, data) in prefix {
        out.extend(data);
    }
    out
}

/// Nested arrays of `bytes` bytes, give or take the padding.
fn nested_arrays_of(prefix: &[(&str, Vec<u8>)], bytes: usize) -> Vec<u8> {
    nested_arrays(prefix, (bytes - 16) / 2)
}

/// A bundle around `elements` (encoded packets), written by hand so that depth costs nothing.
fn raw_bundle(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"#bundle\0".to_vec();
    out.extend([0, 0, 0, 0, 0, 0, 0, 1]); // immediately
    for element in elements {
        out.extend(u32::try_from(element.len()).expect("an element below 4 GiB").to_be_bytes());
        out.extend(element);
    }
    out
}

/// `/cue/1` inside `depth` bundles, each the only element of the one around it.
fn deep_bundle(depth: usize) -> Vec<u8> {
    (0..depth).fold(encode(&msg("/cue/1", vec![])), |inner, _| raw_bundle(&[inner]))
}

/// The hostile packets of issue 14, each one datagram: (name, knobs, datagram).
fn hostile_packets() -> Vec<(&'static str, u8, Vec<u8>)> {
    let token = || vec![("s", osc_string("s3cret"))];
    // `/{,}{,}…{,}x`: 254 bytes of alternatives, 2^84 ways to read it, matched against every
    // mapping (issue 14: 17 ms per message against the 256 default mappings).
    let bomb = format!("/{}x", "{,}".repeat(84));
    assert_eq!(bomb.len(), 254);
    let bombs: Vec<Vec<u8>> = (0..64).map(|_| encode(&msg(&bomb, vec![]))).collect();
    let statuses: Vec<Vec<u8>> = (0..64).map(|_| encode(&msg("/status", vec![]))).collect();
    let arrays_8k = nested_arrays_of(&[], 8 * 1024);
    vec![
        ("array-8k", 0, arrays_8k.clone()),
        ("array-12k", 0, nested_arrays_of(&[], 12 * 1024)),
        ("array-8k-token", 1, nested_arrays_of(&token(), 8 * 1024)),
        ("array-8k-in-bundle", 0, raw_bundle(&[arrays_8k])),
        ("array-12k-in-bundle-token", 1, raw_bundle(&[nested_arrays_of(&token(), 12 * 1024)])),
        ("array-32k", 0, nested_arrays_of(&[], 32 * 1024)),
        (
            "array-int-and-float",
            0,
            nested_arrays(&[("i", 7i32.to_be_bytes().to_vec()), ("f", 0.5f32.to_be_bytes().to_vec())], 2),
        ),
        ("bundle-16-deep", 0, deep_bundle(16)),
        ("bundle-3000-deep", 0, deep_bundle(3000)),
        ("pattern-bomb-64", 0, raw_bundle(&bombs)),
        ("status-bundle-64", 0, raw_bundle(&statuses)),
        ("bundle-empty", 0, raw_bundle(&[])),
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
    for (name, knobs, datagram) in hostile_packets() {
        for target in ["plugin_cue_receiver", "serve_decode"] {
            write(target, name, &receiver_seed(knobs, 0, std::slice::from_ref(&datagram)));
        }
        write("listen_decode", name, &datagram);
    }
    // A real cue right behind a pattern bomb: it must still be applied.
    let bomb = hostile_packets().into_iter().find(|(name, ..)| *name == "pattern-bomb-64").expect("the bomb").2;
    let bomb_then_cue = vec![bomb, encode(&msg("/cue/3", vec![]))];
    for target in ["plugin_cue_receiver", "serve_decode"] {
        write(target, "pattern-bomb-then-cue", &receiver_seed(0, 0, &bomb_then_cue));
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
        targets: Targets::new(vec![
            "192.168.1.20:5006".parse().expect("an address"),
            "[::1]:6000".parse().expect("an address"),
        ])
        .expect("different addresses"),
        keepalive_ms: 500,
        output_latency_ms: 12.5,
        offline: OfflinePolicy::Realtime,
        half_rate: true,
        cues,
        ltc: serde_json::from_str(r#"{"channel": "right", "level_dbfs": -20.5, "stopped": "still"}"#)
            .expect("valid LTC settings"),
        artnet: serde_json::from_str(r#"{"targets": ["10.255.255.255", "127.0.0.1:6455"], "stream_id": 3}"#)
            .expect("valid Art-Net settings"),
        mtc: serde_json::from_str(r#"{"enabled": true}"#).expect("valid MTC settings"),
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
    // Issue 14: a shared project that opens the cue input to the network, no token.
    let exposing = r#"{"cues": {"enabled": true, "listen": "0.0.0.0:5005", "allow": ["0.0.0.0/0", "::/0"],
        "quantise": false}, "targets": ["192.168.1.255:5006", "10.0.0.1:5006"]}"#;
    write(t, "field-exposing", exposing.as_bytes());
    let mut exposing_state = state.clone();
    exposing_state.fields.insert("settings".to_owned(), exposing.to_owned());
    write(t, "state-exposing", serde_json::to_string(&exposing_state).expect("state serializes").as_bytes());
    // Nesting far beyond serde_json's recursion limit (128), as a field and inside a document.
    let deep = format!(r#"{{"cues": {{"map": {}{}}}}}"#, "[".repeat(10_000), "]".repeat(10_000));
    write(t, "field-nested-10000", deep.as_bytes());
    let mut deep_state = state.clone();
    deep_state.fields.insert("settings".to_owned(), deep);
    write(t, "state-nested-field-10000", serde_json::to_string(&deep_state).expect("state serializes").as_bytes());
    write(t, "document-nested-10000", format!("{}{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).as_bytes());
    write(t, "field-latency-nan", br#"{"output_latency_ms": NaN}"#);
    write(t, "field-latency-huge", br#"{"output_latency_ms": 1e300}"#);
}

/// Config files: the README's examples, the exposure switch, numbers out of range, nesting.
fn config_files() {
    let t = "config_file";
    let plugin = r#"[plugin]
targets = ["127.0.0.1:5006", "[::1]:5006"]
keepalive_ms = 1000
output_latency_ms = 0.0
offline = "silent"
"#;
    let cues = r#"[plugin.cues]
enabled = true
listen = "127.0.0.1:5005"
allow = ["127.0.0.0/8", "::1/128"]
token = "s3cret"
quantise = false
note_length_ms = 100
dedupe_ms = 10000
defaults = true

[[plugin.cues.map]]
address = "/cue/intro"
kind = "note"
channel = 2
key = 60
velocity = 100
length_ms = 250

[[plugin.cues.map]]
address = "/cue/blackout"
kind = "program"
channel = 1
program = 12
"#;
    let client = r#"[client]
rate = "29.97df"
sample_rate = 48000
master = "127.0.0.1:5005"
token = "s3cret"
listen = "127.0.0.1:5006"
listen_from = ["192.168.1.20", "10.0.0.0/24"]
record_max_bytes = "1GiB"
"#;
    write(t, "readme-plugin", plugin.as_bytes());
    write(t, "readme-cues", cues.as_bytes());
    write(t, "readme-client", client.as_bytes());
    write(t, "all-tables", format!("{plugin}\n{cues}\n{client}").as_bytes());
    write(t, "network-allowed", b"[plugin]\nnetwork_cue_input = true\n");
    write(t, "network-refused", b"[plugin]\nnetwork_cue_input = false\n[plugin.cues]\nlisten = \"0.0.0.0:5005\"\n");
    write(t, "network-own", b"[plugin.cues]\nlisten = \"0.0.0.0:5005\"\nallow = [\"0.0.0.0/0\"]\n");
    write(t, "network-not-a-bool", b"[plugin]\nnetwork_cue_input = \"yes\"\n");
    write(t, "latency-nan", b"[plugin]\noutput_latency_ms = nan\n");
    write(t, "latency-inf", b"[plugin]\noutput_latency_ms = -inf\n");
    write(t, "latency-huge", b"[plugin]\noutput_latency_ms = 1e300\n");
    write(t, "client-out-of-range", b"[client]\nsample_rate = 0\nrecord_max_bytes = 1\nrate = 29.97\n");
    write(t, "client-unknown-key", b"[client]\nsample-rate = 48000\n");
    write(t, "rate-drop-frame", b"[client]\nrate = \"29.97df\"\n");
    write(t, "empty", b"");
    write(t, "not-utf8", b"[client]\nrate = \"\xff\xfe\"\n");
    // Nesting: arrays, inline tables, dotted keys and table headers thousands deep.
    write(
        t,
        "nested-arrays-10000",
        format!("[plugin]\ntargets = {}{}\n", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
    );
    write(
        t,
        "nested-inline-tables-5000",
        format!("[client]\nx = {}1{}\n", "{a = ".repeat(5_000), "}".repeat(5_000)).as_bytes(),
    );
    let dotted = vec!["a"; 5_000].join(".");
    write(t, "dotted-key-5000", format!("[plugin]\n{dotted} = 1\n").as_bytes());
    write(t, "table-header-5000", format!("[[{dotted}]]\nx = 1\n").as_bytes());
}

/// The frame clock reads its input as choices (fuzz_targets/frame_clock.rs): a few shapes of
/// bytes that read as long sane runs, extremes and mixtures.
fn frame_clock() {
    let t = "frame_clock";
    write(t, "zeros", &[0; 2048]);
    write(t, "ones", &[0xff; 2048]);
    write(t, "counting", &(0..4096u32).map(|i| i as u8).collect::<Vec<_>>());
    // A fixed-seed xorshift: the same bytes every time.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for (name, len) in [("random-256", 256), ("random-4k", 4096), ("random-16k", 16_384)] {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        write(t, name, &bytes);
    }
}

fn main() {
    receivers();
    listen();
    timecode_texts();
    states();
    config_files();
    frame_clock();
}
