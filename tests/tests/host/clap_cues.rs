//! The cue input (docs/PROTOCOL.md, "Cues and triggers (senders → plugin)") in the CLAP host:
//! cues sent over loopback come out of the plugin as notes and MIDI in the host's output event
//! buffer, at the sample the spec says, with an `/ack` for each and `/status` counters that add
//! up; broken, refused and flooding input is counted and never stops the audio.
//!
//! Every test listens on a port of its own ([`CueRig`]). Immediate cues are deterministic: the
//! plugin acks a cue only after it is in the audio thread's queue, so "send, wait for `ok`,
//! process one block" puts the event at offset 0 of that block. Timetagged cues run in real time
//! and are checked to ±1 ms against the harness's record of when each block was processed.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::system_time_from_timetag;
use osc_timecode_tests::clap::{BlockRecord, Midi, MidiAt, RunReport};
use osc_timecode_tests::cues::{
    Ack, CueId, CueSender, CueValue, IMMEDIATELY, NO_REPLY_WINDOW, bundle, bundle_with_element_size, check_landing,
    encode, flood, free_loopback_addr, free_loopback_addr_v6, length_samples, message, nested, next_frame_start,
    non_utf8_address, query_status, seconds_between, timetag,
};
use osc_timecode_tests::expect::assert_stream;
use osc_timecode_tests::receiver::{Receiver, messages};
use rosc::{OscPacket, OscType};
use serde_json::json;

use crate::common::{CueRig, midi_only, rate, settled_status, sorted};

/// Default `cues.note_length_ms`.
const DEFAULT_NOTE_LENGTH_MS: u64 = 100;
/// The default mappings' value when a cue has none.
const DEFAULT_VALUE: u8 = 127;

fn note_on(key: u8, velocity: u8) -> Midi {
    Midi::NoteOn { channel: 0, key, velocity }
}

fn note_off(key: u8) -> Midi {
    Midi::NoteOff { channel: 0, key }
}

fn cc(number: u8, value: u8) -> Midi {
    Midi::ControlChange { channel: 0, number, value }
}

/// What a VALUE argument means (PROTOCOL.md, "Arguments"): `i` as is, `f` × 127 rounded, `N` the
/// mapping's value.
fn value_7bit(value: Option<CueValue>, mapping: u8) -> u8 {
    match value {
        Some(CueValue::Int(v)) => u8::try_from(v).expect("test values are 0–127"),
        Some(CueValue::Float(f)) => (f64::from(f) * 127.0).round() as u8,
        Some(CueValue::Nil) | None => mapping,
    }
}

/// Blocks of `block` samples that cover `ms` milliseconds at `sample_rate`.
fn blocks_for(ms: u64, sample_rate: u32, block: u32) -> u32 {
    length_samples(ms, sample_rate).div_ceil(u64::from(block)) as u32
}

/// `events` hold exactly one message, at offset 0 of the run's first block.
fn assert_at_block_start(events: &[MidiAt], want: Midi, what: &str) {
    assert_eq!(midi_only(events), [want], "{what}: one event, {want:?}");
    assert_eq!((events[0].block, events[0].offset), (0, 0), "{what}: at offset 0 of the next block");
}

/// The single event of `report` matching `want`.
fn the_one(report: &RunReport, want: Midi, what: &str) -> MidiAt {
    let found: Vec<MidiAt> = report.midi().into_iter().filter(|m| m.midi == want).collect();
    assert_eq!(found.len(), 1, "{what}: exactly one {want:?}; the run had {:?}", midi_only(&report.midi()));
    found[0]
}

/// Sends `packet`, waits for its `n` acks (all `ok`), processes one block and returns its MIDI.
fn fire_packet(cr: &mut CueRig, packet: &OscPacket, n: usize) -> Vec<MidiAt> {
    cr.sender.send_packet(packet);
    for ack in cr.sender.acks(n) {
        assert_eq!(ack.status, "ok", "{ack:?}");
    }
    cr.blocks(1).midi()
}

#[test]
fn immediate_cue_plays_at_the_next_block_and_stops_after_the_note_length() {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(sr, block, json!({}));
    let (ack, midi) = cr.fire("/cue/60", None, None);
    assert_eq!(ack, Ack { address: "/cue/60".into(), id: None, status: "ok".into(), from: cr.listen });
    assert_at_block_start(&midi, note_on(60, DEFAULT_VALUE), "/cue/60");

    let after = cr.blocks(blocks_for(2 * DEFAULT_NOTE_LENGTH_MS, sr, block));
    assert_eq!(midi_only(&after.midi()), [note_off(60)], "then only its note off");
    assert_eq!(
        after.midi()[0].sample - midi[0].sample,
        length_samples(DEFAULT_NOTE_LENGTH_MS, sr),
        "note off {DEFAULT_NOTE_LENGTH_MS} ms after the note on, to the sample"
    );
    let status = cr.status();
    assert_eq!(
        (status.cues_received(), status.get("applied"), status.get("queued"), status.dropped()),
        (1, 1, 0, 0),
        "{status}"
    );
}

#[test]
fn note_length_setting_is_rounded_to_whole_samples() {
    let (sr, block, ms) = (44_100, 64, 33);
    let mut cr = CueRig::new(sr, block, json!({"note_length_ms": ms}));
    let on = cr.fire_ok("/cue/61", None, None);
    assert_at_block_start(&on, note_on(61, DEFAULT_VALUE), "/cue/61");
    let after = cr.blocks(blocks_for(2 * ms, sr, block));
    let off = the_one(&after, note_off(61), "note off");
    assert_eq!(off.sample - on[0].sample, length_samples(ms, sr), "{ms} ms at {sr} Hz is 1455.3 samples: 1455");
}

#[test]
fn value_argument_sets_velocity_and_controller_value() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let values = [
        Some(CueValue::Int(100)),
        Some(CueValue::Int(1)),
        Some(CueValue::Float(0.25)),
        Some(CueValue::Float(0.1)),
        Some(CueValue::Float(1.0)),
        Some(CueValue::Nil),
        None,
    ];
    for (i, value) in values.into_iter().enumerate() {
        let key = 20 + i as u8;
        let midi = cr.fire_ok(&format!("/cue/{key}"), value, None);
        assert_at_block_start(&midi, note_on(key, value_7bit(value, DEFAULT_VALUE)), &format!("/cue/{key} {value:?}"));
        let midi = cr.fire_ok(&format!("/trigger/{key}"), value, None);
        assert_at_block_start(&midi, cc(key, value_7bit(value, DEFAULT_VALUE)), &format!("/trigger/{key} {value:?}"));
    }
    // VALUE 0 is a note off for a cue, and a controller value of 0 for a trigger.
    for value in [CueValue::Int(0), CueValue::Float(0.0)] {
        let midi = cr.fire_ok("/cue/90", Some(value), None);
        assert_at_block_start(&midi, note_off(90), &format!("/cue/90 {value:?}"));
        let midi = cr.fire_ok("/trigger/90", Some(value), None);
        assert_at_block_start(&midi, cc(90, 0), &format!("/trigger/90 {value:?}"));
    }
    let status = cr.status();
    let sent = 2 * values.len() as i64 + 4;
    assert_eq!((status.cues_received(), status.dropped()), (sent, 0), "{status}");
}

#[test]
fn ack_echoes_the_id_with_the_type_it_was_sent_with() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    for (i, id) in [Some(CueId::Int(7)), Some(CueId::Long(1 << 40)), Some(CueId::Int(-3)), None].into_iter().enumerate()
    {
        let address = format!("/trigger/{i}");
        let (ack, midi) = cr.fire(&address, Some(CueValue::Int(5)), id);
        assert_eq!(ack, Ack { address: address.clone(), id, status: "ok".into(), from: cr.listen });
        assert_eq!(midi_only(&midi), [cc(i as u8, 5)]);
    }
    // An ID with a nil VALUE: the mapping's value.
    let (ack, midi) = cr.fire("/trigger/9", Some(CueValue::Nil), Some(CueId::Int(99)));
    assert_eq!(ack.id, Some(CueId::Int(99)));
    assert_eq!(midi_only(&midi), [cc(9, DEFAULT_VALUE)]);
}

/// The mapping table of PROTOCOL.md's examples, plus an entry replacing a default.
fn mapped_rig(sample_rate: u32, block: u32, defaults: bool) -> CueRig {
    CueRig::new(
        sample_rate,
        block,
        json!({
            "defaults": defaults,
            "map": [
                {"address": "/cue/intro", "kind": "note", "channel": 1, "key": 60, "velocity": 100, "length_ms": 250},
                {"address": "/x", "kind": "note_off", "channel": 1, "key": 60},
                {"address": "/cue/lights", "kind": "cc", "channel": 2, "number": 20, "value": 64},
                {"address": "/cue/scene", "kind": "program", "channel": 3, "program": 5},
                {"address": "/cue/5", "kind": "cc", "channel": 16, "number": 7, "value": 99},
                {"address": "/hold", "kind": "note", "channel": 10, "key": 64, "velocity": 90, "length_ms": 0},
                {"address": "/release", "kind": "note_off", "channel": 10, "key": 64},
            ],
        }),
    )
}

#[test]
fn mapping_table_entries_make_their_midi_events() {
    let (sr, block) = (48_000, 256);
    let mut cr = mapped_rig(sr, block, true);
    let on = cr.fire_ok("/cue/intro", None, None);
    assert_at_block_start(&on, Midi::NoteOn { channel: 0, key: 60, velocity: 100 }, "note entry, its velocity");
    let after = cr.blocks(blocks_for(300, sr, block));
    let off = the_one(&after, note_off(60), "the entry's note off");
    assert_eq!(off.sample - on[0].sample, length_samples(250, sr), "after the entry's length_ms, not the default");

    let midi = cr.fire_ok("/cue/intro", Some(CueValue::Int(80)), None);
    assert_at_block_start(&midi, Midi::NoteOn { channel: 0, key: 60, velocity: 80 }, "VALUE wins over velocity");
    let midi = cr.fire_ok("/x", None, None);
    assert_at_block_start(&midi, note_off(60), "note_off entry");

    let midi = cr.fire_ok("/cue/lights", None, None);
    assert_at_block_start(&midi, Midi::ControlChange { channel: 1, number: 20, value: 64 }, "cc entry, its value");
    let midi = cr.fire_ok("/cue/lights", Some(CueValue::Int(10)), None);
    assert_at_block_start(&midi, Midi::ControlChange { channel: 1, number: 20, value: 10 }, "VALUE wins over value");

    let midi = cr.fire_ok("/cue/scene", Some(CueValue::Int(99)), None);
    assert_at_block_start(&midi, Midi::ProgramChange { channel: 2, program: 5 }, "program entry ignores VALUE");

    let midi = cr.fire_ok("/cue/5", None, None);
    assert_at_block_start(&midi, Midi::ControlChange { channel: 15, number: 7, value: 99 }, "entry replaces default");
    let midi = cr.fire_ok("/cue/6", None, None);
    assert_at_block_start(&midi, note_on(6, DEFAULT_VALUE), "the other defaults stay");
}

#[test]
fn note_with_length_0_is_held_until_a_note_off_entry_or_value_0() {
    let (sr, block) = (48_000, 512);
    let mut cr = mapped_rig(sr, block, true);
    let held = Midi::NoteOn { channel: 9, key: 64, velocity: 90 };
    let released = Midi::NoteOff { channel: 9, key: 64 };
    assert_at_block_start(&cr.fire_ok("/hold", None, None), held, "/hold");
    let meanwhile = cr.blocks(blocks_for(1000, sr, block));
    assert!(meanwhile.midi().is_empty(), "length_ms 0: no note off by itself, got {:?}", meanwhile.midi());
    assert_at_block_start(&cr.fire_ok("/release", None, None), released, "/release (note_off entry)");

    assert_at_block_start(&cr.fire_ok("/hold", None, None), held, "/hold again");
    assert_at_block_start(&cr.fire_ok("/hold", Some(CueValue::Int(0)), None), released, "/hold 0");
}

#[test]
fn without_defaults_only_the_table_is_mapped() {
    let mut cr = mapped_rig(48_000, 256, false);
    for address in ["/cue/6", "/trigger/6"] {
        let (ack, midi) = cr.fire(address, None, None);
        assert_eq!(ack.status, "unmapped", "{address} with defaults off: {ack:?}");
        assert!(midi.is_empty());
    }
    let midi = cr.fire_ok("/cue/5", None, None);
    assert_at_block_start(&midi, Midi::ControlChange { channel: 15, number: 7, value: 99 }, "named /cue/5");
    let status = cr.status();
    assert_eq!((status.get("dropped_unmapped"), status.get("applied")), (2, 1), "{status}");
}

#[test]
fn address_patterns_match_up_to_8_mapped_addresses() {
    let mut cr = mapped_rig(48_000, 256, true);
    let cases: [(&str, &[u8]); 4] = [
        ("/trigger/{1,2}", &[1, 2]),
        ("/trigger/[1-3]", &[1, 2, 3]),
        ("/trigger/1[!0-7]", &[18, 19]),
        ("/trigger/1[0-7]", &[10, 11, 12, 13, 14, 15, 16, 17]),
    ];
    for (pattern, numbers) in cases {
        let got = sorted(midi_only(&cr.fire_ok(pattern, Some(CueValue::Int(3)), None)));
        assert_eq!(got, sorted(numbers.iter().map(|&n| cc(n, 3)).collect()), "{pattern}");
    }
    let midi = cr.fire_ok("/cue/{4,6}", None, None);
    assert_eq!(
        sorted(midi_only(&midi)),
        sorted(vec![note_on(4, DEFAULT_VALUE), note_on(6, DEFAULT_VALUE)]),
        "/cue/{{4,6}}: two notes"
    );
    let midi = cr.fire_ok("/cue/{intro,lights}", None, None);
    assert_eq!(midi.len(), 2, "named entries match too: {midi:?}");

    for (pattern, status) in [
        ("/trigger/1?", "too_broad"),     // 10–19: ten addresses
        ("/cue/*", "too_broad"),          // 128 defaults and named entries
        ("/trigger/2[0-8]", "too_broad"), // nine
        ("/nothing/*", "unmapped"),
    ] {
        let (ack, midi) = cr.fire(pattern, None, None);
        assert_eq!((ack.address.as_str(), ack.status.as_str()), (pattern, status), "{pattern}");
        assert!(midi.is_empty(), "{pattern}: refused, no MIDI");
    }
    let status = cr.status();
    assert_eq!((status.get("dropped_too_broad"), status.get("dropped_unmapped")), (3, 1), "{status}");
    assert_eq!(status.get("applied"), 6, "one per message, whatever the matches: {status}");
}

/// How the plugin must treat one broken or refused packet.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// Dropped whole, counted `malformed`, no reply.
    Malformed,
    /// Acked with this status and counted `dropped_<status>`.
    Acked(&'static str),
}

#[test]
fn broken_and_refused_packets_are_counted_and_processing_goes_on() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let cue = || message("/cue/1", vec![]);
    let msg = |args: Vec<OscType>| encode(&message("/cue/1", args));
    let truncated_bundle = {
        let whole = encode(&bundle(IMMEDIATELY, vec![message("/cue/1", vec![OscType::Int(1)])]));
        whole[..whole.len() - 3].to_vec()
    };
    let truncated_message = {
        let whole = msg(vec![OscType::Int(1)]);
        whole[..whole.len() - 2].to_vec()
    };
    let bad = Refusal::Acked("bad_argument");
    let cases: Vec<(&str, Vec<u8>, Refusal)> = vec![
        ("bytes that are not OSC", b"\x00\x01\x02 not OSC \xff\xfe\xfd\xfc".to_vec(), Refusal::Malformed),
        ("an empty datagram", Vec::new(), Refusal::Malformed),
        ("a truncated bundle", truncated_bundle, Refusal::Malformed),
        ("a truncated message", truncated_message, Refusal::Malformed),
        ("a bundle element of 0x7fffffff bytes", bundle_with_element_size(0x7fff_ffff), Refusal::Malformed),
        ("9 nested bundles", encode(&nested(9, IMMEDIATELY, cue())), Refusal::Malformed),
        ("16 nested bundles", encode(&nested(16, IMMEDIATELY, cue())), Refusal::Malformed),
        (
            "65 messages in a bundle",
            encode(&bundle(IMMEDIATELY, (0..65).map(|i| message(&format!("/trigger/{i}"), vec![])).collect())),
            Refusal::Malformed,
        ),
        ("a non-UTF-8 address", non_utf8_address(), Refusal::Malformed),
        ("a string value", msg(vec![OscType::String("loud".into())]), bad),
        ("int value 200", msg(vec![OscType::Int(200)]), bad),
        ("int value -1", msg(vec![OscType::Int(-1)]), bad),
        ("float value 1.5", msg(vec![OscType::Float(1.5)]), bad),
        ("float value -0.1", msg(vec![OscType::Float(-0.1)]), bad),
        ("a double value", msg(vec![OscType::Double(0.5)]), bad),
        ("a float ID", msg(vec![OscType::Int(1), OscType::Float(2.0)]), bad),
        ("a string ID", msg(vec![OscType::Int(1), OscType::String("7".into())]), bad),
        ("three arguments without a token", msg(vec![OscType::Int(1), OscType::Int(2), OscType::Int(3)]), bad),
        ("five arguments", msg((1..=5).map(OscType::Int).collect()), bad),
        ("an unknown address", encode(&message("/foo", vec![])), Refusal::Acked("unmapped")),
        ("/cue/128 (defaults are 0–127)", encode(&message("/cue/128", vec![])), Refusal::Acked("unmapped")),
        ("/trigger/abc", encode(&message("/trigger/abc", vec![])), Refusal::Acked("unmapped")),
        ("/cue/* (128 matches)", encode(&message("/cue/*", vec![])), Refusal::Acked("too_broad")),
    ];
    for (what, bytes, refusal) in &cases {
        let before = cr.status();
        cr.sender.send_raw(bytes);
        let counter = match refusal {
            Refusal::Malformed => "dropped_malformed".to_string(),
            Refusal::Acked(status) => {
                let ack = cr.sender.ack();
                assert_eq!(ack.status, *status, "{what}: {ack:?}");
                format!("dropped_{status}")
            }
        };
        let after = cr.sender.wait_status(what, |s| s.cues_received() > before.cues_received() && s.check().is_ok());
        assert_eq!(
            after.delta(&before),
            BTreeMap::from([("received".to_string(), 1), (counter.clone(), 1)]),
            "{what}: counted once as received and once as {counter}"
        );
        let report = cr.blocks(1);
        assert!(report.midi().is_empty(), "{what}: no MIDI, got {:?}", report.midi());
    }
    assert!(cr.sender.replies_within(NO_REPLY_WINDOW).is_empty(), "malformed packets get no reply");
    // Still listening and playing.
    let midi = cr.fire_ok("/cue/1", None, None);
    assert_at_block_start(&midi, note_on(1, DEFAULT_VALUE), "a good cue after all that");
}

#[test]
fn packets_at_the_limits_8_levels_and_64_messages_are_applied() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let midi = fire_packet(&mut cr, &nested(8, IMMEDIATELY, message("/trigger/3", vec![])), 1);
    assert_at_block_start(&midi, cc(3, DEFAULT_VALUE), "8 nested bundles");

    let many = (0..64).map(|i| message(&format!("/trigger/{i}"), vec![OscType::Int(i)])).collect();
    let midi = fire_packet(&mut cr, &bundle(IMMEDIATELY, many), 64);
    assert_eq!(
        midi_only(&midi),
        (0..64u8).map(|i| cc(i, i)).collect::<Vec<_>>(),
        "64 messages in one bundle: 64 control changes, in the order of the messages"
    );
    assert!(midi.iter().all(|m| m.block == 0 && m.offset == 0), "all at offset 0");
    let status = cr.status();
    assert_eq!((status.cues_received(), status.get("applied")), (65, 65), "{status}");
}

/// Sends timetagged cues before a real-time run and checks each lands within 1 ms of the sample
/// heard at its timetag, with `latency` as `output_latency_ms`.
fn timetagged_cues_land_where_heard(latency: Duration) {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::with(
        sr,
        rate("25"),
        block,
        free_loopback_addr(),
        json!({}),
        |s| {
            s.insert("output_latency_ms".into(), json!(latency.as_secs_f64() * 1000.0));
        },
        None,
    );
    // Sent while the plugin runs in real time (not before it starts: on a loaded machine the
    // acks and the run's start could take longer than the lead, and the first cues be late).
    let t0 = SystemTime::now() + Duration::from_millis(400);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // (key, when it must be heard)
    let plan = [(10u8, at(0)), (11, at(37)), (12, at(111)), (13, at(200)), (14, at(200)), (15, at(250))];
    let CueRig { rig, sender, .. } = &mut cr;
    let report = std::thread::scope(|scope| {
        let cuer = scope.spawn(|| {
            for &(key, t) in &plan[..3] {
                sender.cue_at(&format!("/cue/{key}"), None, None, timetag(t));
            }
            // Two messages in one bundle share its timetag.
            sender.send_packet(&bundle(timetag(at(200)), vec![message("/cue/13", vec![]), message("/cue/14", vec![])]));
            // A message takes the innermost bundle's timetag.
            sender.send_packet(&bundle(
                timetag(at(500)),
                vec![bundle(timetag(at(250)), vec![message("/cue/15", vec![])])],
            ));
            sender.acks(plan.len())
        });
        let report = rig.plugin.run_realtime(&mut rig.transport, u64::from(sr) * 6 / 5, block);
        for ack in cuer.join().unwrap_or_else(|p| std::panic::resume_unwind(p)) {
            assert_eq!(ack.status, "ok", "{ack:?}");
        }
        report
    });
    let tolerance = i64::from(sr / 1000);
    for (key, t) in plan {
        let got = the_one(&report, note_on(key, DEFAULT_VALUE), &format!("/cue/{key}"));
        check_landing(&report.block_log, got.block, got.offset, t, latency, sr, tolerance)
            .unwrap_or_else(|e| panic!("/cue/{key} (latency {latency:?}): {e}"));
    }
    let status = cr.status();
    assert_eq!((status.get("applied"), status.get("queued")), (plan.len() as i64, 0), "{status}");
}

#[test]
fn timetagged_cues_land_on_the_sample_heard_at_their_timetag() {
    timetagged_cues_land_where_heard(Duration::ZERO);
}

#[test]
fn output_latency_makes_timetagged_cues_play_earlier() {
    timetagged_cues_land_where_heard(Duration::from_millis(25));
}

#[test]
fn a_cue_timetagged_like_a_frame_lands_on_that_frames_first_sample() {
    // PROTOCOL.md: "A cue timetagged with the timetag of a /sync/timecode frame lands on that
    // frame's first sample." While the plugin plays in real time, a helper thread takes the first
    // frame F it sends, and cues frame F + AHEAD at F's timetag + AHEAD frame periods (the
    // timetag the plugin will give that frame, to the jitter of its block clock).
    const AHEAD: i64 = 10;
    let (sr, block) = (48_000, 256);
    let rate = rate("25");
    let frames = Receiver::bind();
    let target = frames.addr();
    let mut cr = CueRig::with(
        sr,
        rate,
        block,
        free_loopback_addr(),
        json!({}),
        |s| {
            s.insert("targets".into(), json!([target.to_string()]));
        },
        None,
    );
    let listen = cr.listen;
    let cuer = std::thread::spawn(move || {
        let first = frames.collect(1, Duration::from_secs(5));
        let packet = first.first().expect("the plugin sends timecode while playing");
        let frame = packet.msg().frame;
        assert!(packet.msg().playing, "the first frame sent is a playing one: {:?}", packet.msg());
        let period = Duration::from_nanos(1_000_000_000 * u64::from(rate.den()) / u64::from(rate.num()));
        let at = system_time_from_timetag(packet.timetag()) + period * AHEAD as u32;
        let mut sender = CueSender::new(listen);
        sender.cue_at("/trigger/9", None, None, timetag(at));
        (frame + AHEAD, sender.ack())
    });
    cr.rig.transport.play();
    let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, u64::from(sr), block);
    let (frame, ack) = cuer.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    assert_eq!(ack.status, "ok", "{ack:?}");
    let got = the_one(&report, cc(9, DEFAULT_VALUE), "the cue");
    let timeline_of = |b: &BlockRecord| b.timeline_start.expect("played with a transport");
    let timeline = timeline_of(&report.block_log[got.block]) + i64::from(got.offset);
    let start_of = |frame: i64| osc_timecode_core::timecode::frame_start_sample(frame, sr, rate);
    let want = start_of(frame);
    // Both frames' timetags come from the plugin's clock at the start of their blocks: a host
    // that starts a block early or late moves one timetag and not the other. Allow for what this
    // run's blocks did.
    let block_of = |sample: i64| {
        report
            .block_log
            .iter()
            .find(|b| (timeline_of(b)..timeline_of(b) + i64::from(b.len)).contains(&sample))
            .unwrap_or_else(|| panic!("sample {sample} was not played"))
    };
    let (first, cued) = (block_of(start_of(frame - AHEAD)), block_of(want));
    // And each read its clock somewhere inside its `process()` call: allow for how long each
    // call took (a thread preempted there reads the clock late).
    let jitter = seconds_between(first.wall_start, cued.wall_start)
        - (timeline_of(cued) - timeline_of(first)) as f64 / f64::from(sr);
    let calls = first.call_samples(sr) + cued.call_samples(sr);
    let tolerance = i64::from(sr / 1000) + (jitter.abs() * f64::from(sr)).ceil() as i64 + calls;
    assert!(
        (timeline - want).abs() <= tolerance,
        "cued at frame {frame}'s timetag: landed on timeline sample {timeline}, the frame starts at {want} \
         (tolerance ±{tolerance}, of which {jitter:.6} s is the harness's block jitter and {calls} samples \
         the two process() calls)"
    );
}

#[test]
fn late_cue_plays_at_the_next_block_and_counts_late() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let past = timetag(SystemTime::now() - Duration::from_secs(1));
    let midi = fire_packet(&mut cr, &bundle(past, vec![message("/cue/20", vec![])]), 1);
    assert_at_block_start(&midi, note_on(20, DEFAULT_VALUE), "a timetag 1 s ago");
    let status = cr.status();
    assert_eq!((status.get("late"), status.get("applied"), status.cues_received()), (1, 1, 1), "{status}");
}

#[test]
fn timetag_1_is_immediate_and_the_innermost_timetag_counts() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let midi = fire_packet(&mut cr, &bundle(IMMEDIATELY, vec![message("/cue/21", vec![])]), 1);
    assert_at_block_start(&midi, note_on(21, DEFAULT_VALUE), "bundle timetagged 1");

    let later = timetag(SystemTime::now() + Duration::from_secs(600));
    let inner_now = bundle(later, vec![bundle(IMMEDIATELY, vec![message("/cue/22", vec![])])]);
    let midi = fire_packet(&mut cr, &inner_now, 1);
    assert_at_block_start(&midi, note_on(22, DEFAULT_VALUE), "inner bundle timetagged 1 inside a later one");

    let inner_later = bundle(IMMEDIATELY, vec![bundle(later, vec![message("/cue/23", vec![])])]);
    let midi = fire_packet(&mut cr, &inner_later, 1);
    assert!(midi_only(&midi).iter().all(|m| *m != note_on(23, DEFAULT_VALUE)), "inner timetag 10 min ahead waits");
    let status = cr.status();
    assert_eq!((status.get("queued"), status.get("late")), (1, 0), "the 10-minute cue waits: {status}");
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "windows")),
    ignore = "needs 127.0.0.2 on the loopback: sudo ifconfig lo0 alias 127.0.0.2 up"
)]
fn too_far_ahead_and_a_full_schedule_are_refused() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let now = SystemTime::now();
    cr.sender.cue_at("/cue/30", None, None, timetag(now + Duration::from_secs(2 * 3600)));
    assert_eq!(cr.sender.ack().status, "too_far_ahead", "two hours ahead");

    // 1024 cues may wait for their time: 16 bundles of 64, half an hour ahead. Acks come as far
    // as the sender paid for them (core::reply: 64 ack datagrams are about three times the bytes
    // of the one bundle); every one that comes says ok.
    let half_hour = timetag(now + Duration::from_secs(1800));
    let mut acks = 0i64;
    for b in 0..16 {
        let content = (0..64).map(|i| message(&format!("/trigger/{}", (b * 64 + i) % 128), vec![])).collect();
        cr.sender.send_packet(&bundle(half_hour, content));
        for reply in cr.sender.replies_within(Duration::from_millis(20)) {
            let ack = Ack::from_message(&reply.message, reply.from).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(ack.status, "ok", "bundle {b}: {ack:?}");
            acks += 1;
        }
    }
    // That sender has spent its reply budget on those acks: the rest comes from another
    // loopback address (allowed by default), with a budget of its own.
    let refused = cr.status().get("replies_refused");
    assert_eq!(acks + refused, 1024, "each cue acked or its ack counted");
    cr.sender = CueSender::from_ip(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), cr.listen);
    cr.sender.cue_at("/cue/31", None, None, half_hour);
    assert_eq!(cr.sender.ack().status, "schedule_full", "the 1025th waiting cue");

    // Immediate cues do not wait in the schedule.
    let midi = cr.fire_ok("/cue/32", None, None);
    assert!(midi_only(&midi).contains(&note_on(32, DEFAULT_VALUE)), "an immediate cue still plays: {midi:?}");
    let status = cr.status();
    assert_eq!(
        (status.get("queued"), status.get("dropped_schedule_full"), status.get("dropped_too_far_ahead")),
        (1024, 1, 1),
        "{status}"
    );
}

/// Plays from `start` with `cues.quantise` on for `before` blocks, sends an immediate trigger,
/// and checks it lands on the first frame start at or after the sample where it would have
/// landed unquantised (the first sample of the next block).
fn quantised(sample_rate: u32, rate_name: &str, block: u32, start: i64, before: u32) {
    let rate = rate(rate_name);
    let what =
        format!("{rate_name} at {sample_rate} Hz, block {block}, from sample {start}, cue after {before} blocks");
    let mut cr = CueRig::with(sample_rate, rate, block, free_loopback_addr(), json!({"quantise": true}), |_| {}, None);
    cr.rig.transport.locate(start);
    cr.rig.transport.play();
    cr.blocks(before);
    let unquantised = cr.rig.transport.position;
    let ack = cr.sender.cue_acked("/trigger/1", None, None);
    assert_eq!(ack.status, "ok", "{what}: {ack:?}");
    // A frame lasts at most sample_rate × 1001 / 24000 samples; run two frames' worth.
    let frame_len = u64::from(sample_rate) * 1001 / 24_000 + 1;
    let report = cr.blocks((2 * frame_len).div_ceil(u64::from(block)) as u32);
    let got = the_one(&report, cc(1, DEFAULT_VALUE), &what);
    let b = report.block_log[got.block];
    let timeline = b.timeline_start.expect("played with a transport") + i64::from(got.offset);
    assert_eq!(timeline, next_frame_start(unquantised, sample_rate, rate), "{what}: on the next frame start");
}

#[test]
fn quantise_moves_a_cue_to_the_next_frame_start_while_playing_on() {
    quantised(48_000, "25", 256, 0, 10);
    quantised(44_100, "29.97df", 64, 0, 100);
}

#[test]
fn quantise_moves_a_cue_sent_before_play_starts_off_a_frame_start() {
    quantised(48_000, "25", 256, 1000, 0);
}

#[test]
fn quantise_moves_a_cue_at_the_first_block_after_a_start_at_29_97df() {
    quantised(44_100, "29.97df", 64, 12_345, 0);
}

#[test]
fn quantise_moves_a_cue_in_pre_roll() {
    quantised(96_000, "23.976", 512, -5000, 0);
}

#[test]
fn quantise_leaves_a_cue_on_a_frame_start_where_it_is() {
    let start = osc_timecode_core::timecode::frame_start_sample(10, 48_000, rate("25"));
    quantised(48_000, "25", 256, start, 0);
}

#[test]
fn quantise_does_nothing_while_stopped() {
    let rate: FrameRate = rate("25");
    let mut cr = CueRig::with(48_000, rate, 256, free_loopback_addr(), json!({"quantise": true}), |_| {}, None);
    cr.rig.transport.locate(1000);
    let midi = cr.fire_ok("/trigger/1", None, None);
    assert_at_block_start(&midi, cc(1, DEFAULT_VALUE), "stopped transport: not quantised");
}

#[test]
fn a_retry_with_the_same_id_from_the_same_sender_is_dropped() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    let id = Some(CueId::Int(42));
    let midi = cr.fire_ok("/cue/40", Some(CueValue::Int(90)), id);
    assert_at_block_start(&midi, note_on(40, 90), "first");
    for address in ["/cue/40", "/cue/41"] {
        let (ack, midi) = cr.fire(address, Some(CueValue::Int(90)), id);
        assert_eq!((ack.status.as_str(), ack.id), ("duplicate", id), "{address}, same sender, same ID: {ack:?}");
        assert!(midi.is_empty(), "{address}: not applied again, got {midi:?}");
    }
    // The same ID from another port is another sender's cue.
    let mut other = CueSender::new(cr.listen);
    assert_ne!(other.local_addr(), cr.sender.local_addr());
    assert_eq!(other.cue_acked("/cue/41", Some(CueValue::Int(90)), id).status, "ok");
    assert_at_block_start(&cr.blocks(1).midi(), note_on(41, 90), "another sender's ID 42");
    let status = cr.status();
    assert_eq!((status.get("dropped_duplicate"), status.get("applied")), (2, 2), "{status}");
}

#[test]
fn ids_are_forgotten_after_dedupe_ms() {
    let dedupe = Duration::from_millis(200);
    let mut cr = CueRig::new(48_000, 256, json!({"dedupe_ms": dedupe.as_millis() as u64}));
    let id = Some(CueId::Long(7));
    assert_at_block_start(&cr.fire_ok("/trigger/7", None, id), cc(7, DEFAULT_VALUE), "first");
    std::thread::sleep(dedupe * 3);
    assert_at_block_start(&cr.fire_ok("/trigger/7", None, id), cc(7, DEFAULT_VALUE), "after dedupe_ms");
}

#[test]
#[cfg_attr(
    not(any(target_os = "linux", target_os = "windows")),
    ignore = "needs 127.0.0.2 on the loopback: sudo ifconfig lo0 alias 127.0.0.2 up"
)]
fn senders_outside_the_allow_list_get_nothing_and_are_counted() {
    let listen = free_loopback_addr();
    let allowed_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut cr =
        CueRig::with(48_000, rate("25"), 256, listen, json!({"allow": ["127.0.0.2/32"]}), |_| {}, Some(allowed_ip));
    assert_eq!(cr.sender.local_addr().ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
    cr.sender.cue("/cue/1", None, None);
    let no_status = query_status(cr.sender.local_addr().ip(), listen, None, NO_REPLY_WINDOW);
    assert!(no_status.is_none(), "no /status reply to a sender outside the allow list");
    assert!(cr.sender.replies_within(NO_REPLY_WINDOW).is_empty(), "no /ack to a sender outside the allow list");

    let mut allowed = CueSender::from_ip(allowed_ip, listen);
    let status = allowed.wait_status("the refused cue and query are counted", |s| s.cues_received() >= 2);
    status.check().unwrap_or_else(|e| panic!("{e}"));
    // The cue and the query (asked again every STATUS_RETRY while no answer came): all refused.
    assert!(status.get("dropped_not_allowed") >= 2, "{status}");
    assert_eq!(status.cues_received(), status.get("dropped_not_allowed"), "{status}");
    assert!(cr.blocks(1).midi().is_empty(), "the refused cue did not play");

    assert_eq!(allowed.cue_acked("/cue/2", None, None).status, "ok");
    assert_at_block_start(&cr.blocks(1).midi(), note_on(2, DEFAULT_VALUE), "from 127.0.0.2");
}

#[test]
fn with_a_token_set_only_cues_carrying_it_are_applied() {
    let mut cr = CueRig::new(48_000, 256, json!({"token": "s3cret"}));
    let mut bare = CueSender::new(cr.listen);
    bare.cue("/cue/1", Some(CueValue::Int(100)), None);
    let mut wrong = CueSender::new(cr.listen).with_token(Some("nope"));
    wrong.cue("/cue/1", None, None);
    assert!(wrong.replies_within(NO_REPLY_WINDOW).is_empty(), "no /ack for a wrong token");
    assert!(bare.replies_within(Duration::ZERO).is_empty(), "no /ack without the token");
    let status = cr.sender.wait_status("both refused cues are counted", |s| s.cues_received() >= 2);
    status.check().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((status.cues_received(), status.get("dropped_bad_token")), (2, 2), "{status}");
    assert!(cr.blocks(1).midi().is_empty(), "refused cues do not play");

    let (ack, midi) = cr.fire("/cue/3", Some(CueValue::Int(90)), Some(CueId::Int(5)));
    assert_eq!((ack.status.as_str(), ack.id), ("ok", Some(CueId::Int(5))), "{ack:?}");
    assert_at_block_start(&midi, note_on(3, 90), "with the token");
}

#[test]
fn ipv6_loopback_senders_are_allowed_by_default() {
    let Some(listen) = free_loopback_addr_v6() else {
        eprintln!("skipped: this machine has no IPv6 loopback (::1)");
        return;
    };
    let mut cr = CueRig::with(48_000, rate("25"), 256, listen, json!({}), |_| {}, None);
    assert!(cr.sender.local_addr().is_ipv6());
    assert_at_block_start(&cr.fire_ok("/cue/9", None, None), note_on(9, DEFAULT_VALUE), "from ::1");
}

#[test]
fn the_receiver_can_be_switched_off() {
    let listen = free_loopback_addr();
    let cues = osc_timecode_tests::cues::cues_settings(listen, json!({"enabled": false}));
    let mut rig = crate::common::Rig::with(48_000, rate("25"), 256, 0, |p| {
        p.update_settings(|s| osc_timecode_tests::cues::set_cues(s, cues));
    });
    rig.run(256 * 10, 256);
    assert!(
        query_status(IpAddr::V4(Ipv4Addr::LOCALHOST), listen, None, NO_REPLY_WINDOW).is_none(),
        "cues.enabled = false: nothing answers on {listen}"
    );
    assert!(std::net::UdpSocket::bind(listen).is_ok(), "cues.enabled = false: {listen} is not taken");
}

#[test]
fn reactivation_listens_again() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    assert_at_block_start(&cr.fire_ok("/cue/1", None, None), note_on(1, DEFAULT_VALUE), "first activation");
    let mut sounding = 1;
    for sr in [44_100, 48_000] {
        cr.rig.plugin.deactivate();
        cr.rig.plugin.activate(sr, 256);
        cr.sender.wait_ready();
        let midi = cr.fire_ok("/cue/2", None, None);
        // The note still sounding at the deactivation is ended first (issue 14: stuck notes).
        assert_eq!(midi_only(&midi), [note_off(sounding), note_on(2, DEFAULT_VALUE)], "after re-activation");
        assert!(midi.iter().all(|m| (m.block, m.offset) == (0, 0)), "at offset 0 of the first block: {midi:?}");
        sounding = 2;
    }
}

#[test]
fn a_full_queue_refuses_cues_with_an_ack_and_loses_none_silently() {
    let mut cr = CueRig::new(48_000, 256, json!({}));
    // 128 bundles of 64 immediate triggers, no block processed in between. Acks come as far as
    // the sender paid for them (core::reply: 64 acks are about twice the bytes of such a
    // bundle), so the outcomes are read from /status; every ack that comes says ok or queue_full.
    let mut acks = 0usize;
    for b in 0..128 {
        let content = (0..64).map(|i| message(&format!("/trigger/{i}"), vec![OscType::Int(b % 128)])).collect();
        cr.sender.send_packet(&bundle(IMMEDIATELY, content));
        for reply in cr.sender.replies_within(Duration::from_millis(20)) {
            let ack = Ack::from_message(&reply.message, reply.from).unwrap_or_else(|e| panic!("{e}"));
            assert!(["ok", "queue_full"].contains(&ack.status.as_str()), "only ok or queue_full: {ack:?}");
            acks += 1;
        }
    }
    let status = cr.status();
    let full = status.get("dropped_queue_full") as usize;
    assert_eq!(status.cues_received(), 8192, "{status}");
    assert_eq!(acks as i64 + status.get("replies_refused"), 8192, "each cue acked or its ack counted: {status}");
    let ok = 8192 - full;
    let mut applied = 0usize;
    for _ in 0..200 {
        applied += cr.blocks(10).midi().len();
        if applied >= ok {
            break;
        }
    }
    assert_eq!(applied, ok, "every accepted cue reaches the host, once");
    assert!(cr.blocks(10).midi().is_empty(), "and nothing more");
    let status = cr.status();
    assert_eq!(
        (status.cues_received(), status.get("applied"), status.get("dropped_queue_full")),
        (8192, ok as i64, full as i64),
        "{status}"
    );
    assert!(full > 0, "the queue was full for some: {status}");
}

#[test]
fn a_flood_while_playing_leaves_timecode_whole_and_counters_adding_up() {
    let (sr, block, seconds) = (48_000, 512, 4);
    let mut cr = CueRig::new(sr, block, json!({}));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let (stop, target) = (stop.clone(), cr.listen);
        std::thread::Builder::new()
            .name("cue-flood".into())
            .spawn(move || flood(target, 1_000_000, &stop, 0x5eed))
            .expect("spawn the flood thread")
    };
    cr.rig.transport.play();
    let samples = u64::from(sr) * seconds;
    let report = cr.rig.plugin.run_realtime(&mut cr.rig.transport, samples, block);
    stop.store(true, Ordering::Relaxed);
    let sent = flooder.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
    eprintln!("[flood] {sent:?}");

    assert_eq!(report.blocks, samples.div_ceil(u64::from(block)), "every block returned");
    assert_eq!(report.passthrough_mismatches, 0, "audio passes through untouched");
    let want = cr.rig.expected();
    let packets = cr.rig.receive(want.len());
    assert_stream(&messages(&packets), &want, cr.rig.timing.rate, "timecode during a cue flood");

    let status = settled_status(&cr.sender);
    eprintln!("[flood] the plugin's counters: {status}");
    status.check().unwrap_or_else(|e| panic!("after the flood: {e}"));
    let received = status.cues_received();
    assert!(received > 0, "some of the flood was received: {status}");
    assert!(received <= sent.sent as i64, "received ({received}) ≤ sent ({}): {status}", sent.sent);
    assert!(status.get("dropped_malformed") > 0, "garbage was counted: {status}");
    assert!(status.get("applied") > 0, "valid cues were applied: {status}");

    // Drain what is left, then the receiver still works.
    cr.blocks(blocks_for(1000, sr, block));
    let midi = cr.fire_ok("/cue/100", Some(CueValue::Int(11)), None);
    assert!(
        midi.iter().any(|m| m.offset == 0 && m.midi == note_on(100, 11)),
        "a cue after the flood plays at the next block: {midi:?}"
    );
}

/// `/cue/1` … `/cue/8` mapped to notes 1–8 on channel 1 (velocity 100, `length_ms` each), the
/// defaults off: `/cue/{1,2,3,4,5,6,7,8}` fans out to 8 notes.
fn eight_note_rig(sample_rate: u32, block: u32, length_ms: u64) -> CueRig {
    let map: Vec<serde_json::Value> = (1..=8)
        .map(|k| {
            json!({"address": format!("/cue/{k}"), "kind": "note", "channel": 1, "key": k, "velocity": 100,
                   "length_ms": length_ms})
        })
        .collect();
    CueRig::new(sample_rate, block, json!({"defaults": false, "map": map}))
}

/// Issue 14 ("Silent loss"): 1024 cues of 8 notes between two blocks reached the host as 4608
/// note ons, with `applied` = 1024 and nothing dropped; the note offs that did not fit the
/// plugin's table went out in the same block (notes cut short).
#[test]
fn a_fan_out_of_1024_cues_of_8_notes_between_two_blocks_reaches_the_host_whole() {
    let (sr, block, length_ms) = (48_000, 512, 100);
    let mut cr = eight_note_rig(sr, block, length_ms);
    let before = cr.status();
    let pattern = "/cue/{1,2,3,4,5,6,7,8}";
    for _ in 0..16 {
        let content = (0..64).map(|_| cr.sender.cue_message(pattern, None, None)).collect();
        cr.sender.send_packet(&bundle(IMMEDIATELY, content));
    }
    // Every cue in the audio thread's queue (its capacity, 1024) before the next block.
    cr.sender.wait_status("1024 cues queued", |s| s.get("queued") - before.get("queued") == 1024);

    let first = cr.blocks(1).midi();
    let want_on = |k: u8| Midi::NoteOn { channel: 0, key: k, velocity: 100 };
    assert_eq!(first.len(), 8192, "every note on, in the next block: {} of 8192", first.len());
    assert!(first.iter().all(|m| (m.block, m.offset) == (0, 0)), "all at its offset 0");
    let want: Vec<Midi> = (0..1024).flat_map(|_| (1..=8).map(want_on)).collect();
    assert_eq!(midi_only(&first), want, "cue by cue, each one's notes in table order");

    // One note off per key, exactly one note length after the note ons: a key started 1024
    // times at one sample is released once, when the last of its notes ends.
    let rest = cr.blocks(blocks_for(2 * length_ms, sr, block)).midi();
    let start = first[0].sample;
    let offs: Vec<(u64, Midi)> = rest.iter().map(|m| (m.sample - start, m.midi)).collect();
    let length = length_samples(length_ms, sr);
    assert_eq!(offs, (1..=8).map(|k| (length, note_off(k))).collect::<Vec<_>>(), "no note off early, none lost");

    let status = cr.status();
    let delta = status.delta(&before);
    let got = |name: &str| delta.get(name).copied().unwrap_or(0);
    assert_eq!(
        (got("applied"), got("late"), got("queued"), got("dropped_host_full"), got("note_offs_delayed")),
        (1024, 0, 0, 0, 0),
        "{status}"
    );
    assert_eq!(got("note_offs_merged"), 8192 - 8, "8192 note ons with a length = 8 note offs + merged: {status}");
    assert_eq!(status.dropped(), 0, "{status}");
}

/// A host whose output event buffer takes 100 events a block: what does not fit follows in the
/// next blocks, in order, none lost, and no note off comes before a whole note length after the
/// last note on of its key.
#[test]
fn a_host_with_room_for_100_events_a_block_gets_all_of_a_1024_by_8_fan_out_in_order() {
    let (sr, block, length_ms) = (48_000, 512, 100);
    let mut cr = eight_note_rig(sr, block, length_ms);
    cr.rig.plugin.output_room = Some(100);
    let before = cr.status();
    let pattern = "/cue/{1,2,3,4,5,6,7,8}";
    for _ in 0..16 {
        let content = (0..64).map(|_| cr.sender.cue_message(pattern, None, None)).collect();
        cr.sender.send_packet(&bundle(IMMEDIATELY, content));
    }
    cr.sender.wait_status("1024 cues queued", |s| s.get("queued") - before.get("queued") == 1024);

    let report = cr.blocks(82 + blocks_for(2 * length_ms, sr, block));
    assert!(report.refused_output_events > 0, "the host refused some: {}", report.refused_output_events);
    let midi = report.midi();
    assert!((0..report.blocks as usize).all(|b| midi.iter().filter(|m| m.block == b).count() <= 100));
    let ons: Vec<Midi> = midi.iter().map(|m| m.midi).filter(|m| matches!(m, Midi::NoteOn { .. })).collect();
    let want: Vec<Midi> =
        (0..1024).flat_map(|_| (1..=8).map(|k| Midi::NoteOn { channel: 0, key: k, velocity: 100 })).collect();
    assert_eq!(ons, want, "every note on, cue by cue, in table order");
    let length = length_samples(length_ms, sr);
    let mut last_on = BTreeMap::new();
    let mut offs = 0;
    for m in &midi {
        match m.midi {
            Midi::NoteOn { key, .. } => {
                last_on.insert(key, m.sample);
            }
            Midi::NoteOff { key, .. } => {
                offs += 1;
                let on = last_on[&key];
                assert_eq!(m.sample - on, length, "key {key}: a whole note length after its last note on");
            }
            other => panic!("only notes: {other:?}"),
        }
    }
    assert_eq!(offs, 8, "one note off per key");

    let status = cr.status();
    let delta = status.delta(&before);
    let got = |name: &str| delta.get(name).copied().unwrap_or(0);
    // 100 events: the first 12 cues whole in the first block; the others waited.
    assert_eq!(
        (got("applied"), got("late"), got("queued"), got("dropped_host_full"), got("note_offs_merged")),
        (1024, 1012, 0, 0, 8192 - 8),
        "{status}"
    );
}

/// Issue 14: note offs pending at deactivation were dropped without a count (the note hung).
#[test]
fn a_note_sounding_at_deactivation_ends_in_the_first_block_after_reactivation() {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(sr, block, json!({}));
    assert_at_block_start(&cr.fire_ok("/cue/60", None, None), note_on(60, DEFAULT_VALUE), "/cue/60");
    assert!(cr.blocks(4).midi().is_empty(), "21 ms of its 100");
    // Twice, the second time without a block in between: what is owed stays owed.
    for _ in 0..2 {
        cr.rig.plugin.deactivate();
        cr.rig.plugin.activate(sr, block);
    }
    cr.sender.wait_ready();
    assert_at_block_start(&cr.blocks(1).midi(), note_off(60), "the note off owed, at offset 0 of the first block");
    let after = cr.blocks(blocks_for(2 * DEFAULT_NOTE_LENGTH_MS, sr, block));
    assert!(after.midi().is_empty(), "sent once: {:?}", after.midi());
    let status = cr.status();
    assert_eq!((status.get("applied"), status.get("queued"), status.dropped()), (1, 0, 0), "{status}");
}

/// A note started again before its end: MIDI cannot end one of two notes of a key, so the first
/// one's note off (50 ms into the second note) would cut the second short.
#[test]
fn a_note_started_again_while_it_sounds_ends_a_whole_length_after_the_second_start() {
    let (sr, block) = (48_000, 256);
    let mut cr = CueRig::new(sr, block, json!({}));
    let first = cr.fire_ok("/cue/61", None, None);
    assert!(cr.blocks(blocks_for(50, sr, block)).midi().is_empty(), "50 ms of its 100");
    let second = cr.fire_ok("/cue/61", None, None);
    assert_eq!(midi_only(&first), midi_only(&second));
    let after = cr.blocks(blocks_for(2 * DEFAULT_NOTE_LENGTH_MS, sr, block));
    let off = the_one(&after, note_off(61), "one note off");
    assert_eq!(off.sample - second[0].sample, length_samples(DEFAULT_NOTE_LENGTH_MS, sr), "after the second's length");
    let status = cr.status();
    assert_eq!((status.get("applied"), status.get("note_offs_merged")), (2, 1), "{status}");
}

#[test]
fn cue_settings_default_to_the_documented_values() {
    let mut plugin = osc_timecode_tests::clap::ClapPlugin::load();
    let settings = plugin.nice_state().settings();
    let cues = settings.get("cues").unwrap_or_else(|| panic!("settings have a cues object: {settings:?}"));
    for (key, value) in [
        ("enabled", json!(true)),
        ("listen", json!("127.0.0.1:5005")),
        ("allow", json!(["127.0.0.0/8", "::1/128"])),
        ("quantise", json!(false)),
        ("note_length_ms", json!(DEFAULT_NOTE_LENGTH_MS)),
        ("dedupe_ms", json!(10_000)),
        ("defaults", json!(true)),
        ("map", json!([])),
    ] {
        assert_eq!(cues.get(key), Some(&value), "cues.{key} defaults to {value}: {cues}");
    }
    assert!(cues.get("token").is_none_or(serde_json::Value::is_null), "no token by default: {cues}");
}
