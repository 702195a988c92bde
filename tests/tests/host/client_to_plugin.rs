//! The stage client's `osc-timecode cue` against the plugin loaded in the CLAP host: the real
//! binary sends, the plugin acknowledges, and the cue comes out of the host as MIDI.

use std::process::Command;

use osc_timecode_tests::bundle::client_binary;
use osc_timecode_tests::clap::Midi;
use serde_json::json;

use crate::common::CueRig;

/// Runs the client with a clean environment (no config file, no variables of the user's).
fn client(args: &[&str]) -> std::process::Output {
    Command::new(client_binary())
        .args(args)
        .env("OSC_TIMECODE_CONFIG", "/nonexistent/osc-timecode-config.toml")
        .env_remove("OSC_TIMECODE_MASTER")
        .env_remove("OSC_TIMECODE_TOKEN")
        .output()
        .expect("run osc-timecode")
}

#[test]
fn the_clients_cue_is_acknowledged_by_the_plugin_and_plays_as_midi() {
    let mut cr = CueRig::new(48_000, 256, json!({ "token": "s3cret" }));
    let master = cr.listen.to_string();
    let out = client(&["cue", "12", "100", "--id", "3", "--master", &master, "--token", "s3cret"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok /cue/12 id 3\n");
    // Acked after it was queued: the next block plays it at offset 0.
    let midi = cr.blocks(1).midi();
    assert_eq!(midi.len(), 1, "{midi:?}");
    assert_eq!((midi[0].offset, midi[0].midi), (0, Midi::NoteOn { channel: 0, key: 12, velocity: 100 }));
    // Retries are recognised per sender socket (address and port): a new run of the command
    // with the same ID is a new cue, and plays again.
    let out = client(&["cue", "12", "90", "--id", "3", "--master", &master, "--token", "s3cret"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok /cue/12 id 3\n");
    let midi = cr.blocks(1).midi();
    assert!(midi.iter().any(|m| m.midi == Midi::NoteOn { channel: 0, key: 12, velocity: 90 }), "{midi:?}");
    // A trigger, and a refusal with the plugin's reason.
    let out = client(&["trigger", "7", "0.5", "--master", &master, "--token", "s3cret"]);
    assert!(out.status.success());
    let midi = cr.blocks(1).midi();
    assert!(midi.iter().any(|m| m.midi == Midi::ControlChange { channel: 0, number: 7, value: 64 }), "{midi:?}");
    let out = client(&["cue", "*", "--master", &master, "--token", "s3cret"]);
    assert_eq!(out.status.code(), Some(1), "refused: ran, but not done");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused /cue/*: too_broad"), "{err}");
}
