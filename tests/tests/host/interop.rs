//! Cues from other people's OSC implementations: python-osc (`SimpleUDPClient`, its bundle
//! builder and its parser reading our `/ack`) and liblo's `oscsend` reach the plugin in the CLAP
//! host and come out as the same MIDI as cues from our own sender.
//!
//! The tools are installed by `.ci/run` (python-osc 1.10.2 with pip, `liblo-tools` with apt).
//! Every test here is `#[ignore = "needs <tool>: <install>"]`, so `cargo test` lists it as
//! ignored; run explicitly (`-- --ignored`, as `.ci/run` does), a test whose tool is missing
//! fails with the install command.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use osc_timecode_core::protocol::system_time_from_timetag;
use osc_timecode_tests::clap::{Midi, MidiAt};
use osc_timecode_tests::cues::{check_landing, seconds_between};
use rosc::OscTime;
use serde_json::{Value, json};

use crate::common::{CueRig, midi_only, sorted};

/// Fails the test, with the install command, when `tool` is not there.
#[track_caller]
fn require(tool: &str, present: bool, install: &str) {
    assert!(present, "{tool} is not installed: this test needs it ({install}; .ci/run does this)");
}

#[track_caller]
fn require_python_osc() {
    let present = Command::new("python3")
        .args(["-c", "import pythonosc"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require("python-osc", present, "python3 -m pip install python-osc==1.10.2");
}

#[track_caller]
fn require_oscsend() {
    // `oscsend` without arguments prints its usage and exits with 1: being able to start it is
    // the test.
    let present = Command::new("oscsend").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    require("oscsend", present, "apt-get install liblo-tools");
}

/// Runs `python3 -c script args…` and returns its standard output; panics with its standard
/// error when it fails.
fn python(script: &str, args: &[String]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run python3: {e}"));
    assert!(out.status.success(), "python3 failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Processes blocks until `count` MIDI events came out (at most 20 blocks; the cues were counted
/// as received before, so they are at most a moment away from the audio thread's queue).
fn collect_midi(cr: &mut CueRig, count: usize) -> Vec<MidiAt> {
    let mut got = Vec::new();
    for _ in 0..20 {
        got.extend(cr.blocks(1).midi());
        if got.len() >= count {
            break;
        }
    }
    got
}

/// Waits until the plugin has taken `count` messages and accepted all of them.
fn wait_accepted(cr: &CueRig, count: i64) {
    let status = cr.sender.wait_status("the tool's messages arrive", |s| s.cues_received() >= count);
    status.check().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (status.cues_received(), status.get("applied") + status.get("queued")),
        (count, count),
        "every message accepted: {status}"
    );
}

const PYTHON_CLIENT: &str = r#"
import sys
from pythonosc import osc_bundle_builder, osc_message_builder
from pythonosc.udp_client import SimpleUDPClient

client = SimpleUDPClient("127.0.0.1", int(sys.argv[1]))
client.send_message("/cue/7", 90)
client.send_message("/trigger/21", 0.25)
client.send_message("/cue/8", [None, 2**40])
bundle = osc_bundle_builder.OscBundleBuilder(osc_bundle_builder.IMMEDIATELY)
msg = osc_message_builder.OscMessageBuilder(address="/trigger/22")
msg.add_arg(5)
bundle.add_content(msg.build())
client.send(bundle.build())
"#;

#[test]
#[ignore = "needs python-osc: python3 -m pip install python-osc==1.10.2"]
fn python_osc_client_cues_play_as_midi() {
    require_python_osc();
    let mut cr = CueRig::new(48_000, 256, json!({}));
    python(PYTHON_CLIENT, &[cr.listen.port().to_string()]);
    wait_accepted(&cr, 4);
    let got = collect_midi(&mut cr, 4);
    let want = vec![
        Midi::NoteOn { channel: 0, key: 7, velocity: 90 },
        Midi::ControlChange { channel: 0, number: 21, value: 32 }, // 0.25 × 127 = 31.75
        Midi::NoteOn { channel: 0, key: 8, velocity: 127 },        // nil VALUE, int64 ID
        Midi::ControlChange { channel: 0, number: 22, value: 5 },  // bundle timetagged "immediately"
    ];
    assert_eq!(sorted(midi_only(&got)), sorted(want), "python-osc's four cues");
}

const PYTHON_BUNDLE: &str = r#"
import sys
from pythonosc import osc_bundle_builder, osc_message_builder
from pythonosc.udp_client import SimpleUDPClient

client = SimpleUDPClient("127.0.0.1", int(sys.argv[1]))
builder = osc_bundle_builder.OscBundleBuilder(float(sys.argv[2]))
for address, value in (("/cue/9", 64), ("/trigger/3", 1)):
    msg = osc_message_builder.OscMessageBuilder(address=address)
    msg.add_arg(value)
    builder.add_content(msg.build())
bundle = builder.build()
client.send(bundle)
print(bundle.dgram[8:16].hex())
"#;

#[test]
#[ignore = "needs python-osc: python3 -m pip install python-osc==1.10.2"]
fn python_osc_timetags_mean_what_ours_mean() {
    require_python_osc();
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(sr, block, json!({}));
    // Far enough ahead for python to start; the run below covers it.
    let due = SystemTime::now() + Duration::from_millis(1500);
    let unix = due.duration_since(UNIX_EPOCH).expect("after 1970").as_secs_f64();
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(PYTHON_BUNDLE)
        .args([cr.listen.port().to_string(), format!("{unix:.6}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run python3: {e}"));
    let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, u64::from(sr) * 3, block);
    let status = child.wait().expect("python3 ran");
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("piped").read_to_string(&mut out).expect("python's stdout");
    child.stderr.take().expect("piped").read_to_string(&mut err).expect("python's stderr");
    assert!(status.success(), "python3 failed ({status}):\n{err}");

    let bits = u64::from_str_radix(out.trim(), 16).unwrap_or_else(|e| panic!("timetag {out:?} is not hex: {e}"));
    let sent = OscTime { seconds: (bits >> 32) as u32, fractional: bits as u32 };
    let at = system_time_from_timetag(sent);
    let skew = seconds_between(due, at).abs();
    assert!(skew < 1e-5, "python-osc's timetag for {unix:.6} is {skew} s from ours");
    for want in
        [Midi::NoteOn { channel: 0, key: 9, velocity: 64 }, Midi::ControlChange { channel: 0, number: 3, value: 1 }]
    {
        let found: Vec<MidiAt> = report.midi().into_iter().filter(|m| m.midi == want).collect();
        assert_eq!(found.len(), 1, "{want:?} once in the run: {:?}", midi_only(&report.midi()));
        check_landing(&report.block_log, found[0].block, found[0].offset, at, Duration::ZERO, sr, i64::from(sr / 1000))
            .unwrap_or_else(|e| panic!("{want:?} from python-osc's bundle: {e}"));
    }
    let counters = cr.status();
    assert_eq!((counters.get("applied"), counters.get("late")), (2, 0), "{counters}");
}

const PYTHON_ACK_READER: &str = r#"
import json, socket, sys
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
sock.settimeout(5.0)
replies = []
for address, args in (("/cue/11", [100, 4242]), ("/cue/12", []), ("/cue/13", ["loud"])):
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    sock.sendto(builder.build().dgram, ("127.0.0.1", port))
    data, source = sock.recvfrom(65536)
    msg = OscMessage(data)
    tags = data[data.index(b","):].split(b"\0", 1)[0].decode()
    replies.append({"port": source[1], "address": msg.address, "tags": tags, "params": list(msg.params)})
print(json.dumps(replies))
"#;

#[test]
#[ignore = "needs python-osc: python3 -m pip install python-osc==1.10.2"]
fn python_osc_reads_our_acks() {
    require_python_osc();
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let out = python(PYTHON_ACK_READER, &[cr.listen.port().to_string()]);
    let replies: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("python printed {out:?}: {e}"));
    let port = cr.listen.port();
    assert_eq!(
        replies,
        json!([
            {"port": port, "address": "/ack", "tags": ",sis", "params": ["/cue/11", 4242, "ok"]},
            {"port": port, "address": "/ack", "tags": ",sNs", "params": ["/cue/12", null, "ok"]},
            {"port": port, "address": "/ack", "tags": ",sNs", "params": ["/cue/13", null, "bad_argument"]},
        ]),
        "python-osc's view of our /acks"
    );
    // Both acked `ok` before python exited: both play at the start of the next block.
    let midi = cr.blocks(1).midi();
    assert_eq!(
        sorted(midi_only(&midi)),
        sorted(vec![
            Midi::NoteOn { channel: 0, key: 11, velocity: 100 },
            Midi::NoteOn { channel: 0, key: 12, velocity: 127 }
        ]),
    );
    assert!(midi.iter().all(|m| m.offset == 0), "at offset 0: {midi:?}");
}

#[test]
#[ignore = "needs oscsend: apt-get install liblo-tools"]
fn oscsend_cues_play_as_midi() {
    require_oscsend();
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let port = cr.listen.port().to_string();
    let sends: [(&[&str], Midi); 5] = [
        (&["/cue/5", "i", "100"], Midi::NoteOn { channel: 0, key: 5, velocity: 100 }),
        (&["/trigger/12", "N"], Midi::ControlChange { channel: 0, number: 12, value: 127 }),
        (&["/cue/6", "f", "0.25"], Midi::NoteOn { channel: 0, key: 6, velocity: 32 }),
        (&["/cue/8", "Nh", "9000000000"], Midi::NoteOn { channel: 0, key: 8, velocity: 127 }),
        (&["/cue/9", "ii", "50", "77"], Midi::NoteOn { channel: 0, key: 9, velocity: 50 }),
    ];
    for (args, _) in &sends {
        let out = Command::new("oscsend")
            .args(["127.0.0.1", &port])
            .args(*args)
            .output()
            .unwrap_or_else(|e| panic!("could not run oscsend: {e}"));
        assert!(out.status.success(), "oscsend {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    wait_accepted(&cr, sends.len() as i64);
    let got = collect_midi(&mut cr, sends.len());
    assert_eq!(sorted(midi_only(&got)), sorted(sends.iter().map(|(_, m)| *m).collect()), "oscsend's cues");
}
