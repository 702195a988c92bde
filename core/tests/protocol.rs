//! Golden bytes for every message we send: built by hand from the schema in docs/PROTOCOL.md
//! (an encoder independent of rosc), pinned as hex, and checked both ways (encode and decode).

use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{
    ProtocolError, TIMECODE_TYPE_TAGS, TimecodeMessage, address, decode_timecode_packet, encode_timecode_bundle, port,
    status, system_time_from_timetag, timetag_from_system_time,
};
use rosc::OscTime;

/// OSC string: bytes, NUL, padded to 4.
fn osc_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// The `/sync/timecode` message, field by field as docs/PROTOCOL.md lists them.
#[allow(clippy::too_many_arguments)]
fn hand_message(
    label: &str,
    hmsf: [i32; 4],
    num: i32,
    den: i32,
    drop: i32,
    frame: i64,
    playing: i32,
    seq: i64,
    jump: i32,
    looped: i32,
) -> Vec<u8> {
    let mut m = Vec::new();
    osc_str(&mut m, "/sync/timecode");
    osc_str(&mut m, ",siiiiiiihihii");
    osc_str(&mut m, label);
    for v in hmsf.into_iter().chain([num, den, drop]) {
        m.extend_from_slice(&v.to_be_bytes());
    }
    m.extend_from_slice(&frame.to_be_bytes());
    m.extend_from_slice(&playing.to_be_bytes());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&jump.to_be_bytes());
    m.extend_from_slice(&looped.to_be_bytes());
    m
}

/// `#bundle`, timetag, then one element: size and message.
fn hand_bundle(timetag: (u32, u32), message: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    osc_str(&mut b, "#bundle");
    b.extend_from_slice(&timetag.0.to_be_bytes());
    b.extend_from_slice(&timetag.1.to_be_bytes());
    b.extend_from_slice(&(message.len() as i32).to_be_bytes());
    b.extend_from_slice(message);
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every address, both default ports and every `/status` counter name, as users type and read
/// them: a change to any of them must break this test.
#[test]
fn addresses_ports_and_type_tags_are_frozen() {
    let addresses = [
        address::TIMECODE,
        address::CUE_PREFIX,
        address::TRIGGER_PREFIX,
        address::ACK,
        address::STATUS,
        address::TRANSPORT_PREFIX,
        address::TRANSPORT_PLAY,
        address::TRANSPORT_STOP,
        address::TRANSPORT_LOCATE,
        address::SYNC_PING,
        address::SYNC_PONG,
    ];
    assert_eq!(
        addresses,
        [
            "/sync/timecode",
            "/cue/",
            "/trigger/",
            "/ack",
            "/status",
            "/transport/",
            "/transport/play",
            "/transport/stop",
            "/transport/locate",
            "/sync/ping",
            "/sync/pong"
        ]
    );
    for command in [address::TRANSPORT_PLAY, address::TRANSPORT_STOP, address::TRANSPORT_LOCATE] {
        assert!(command.starts_with(address::TRANSPORT_PREFIX), "{command}");
    }
    assert_eq!(TIMECODE_TYPE_TAGS, ",siiiiiiihihii");
    assert_eq!((port::CUES, port::TIMECODE, port::ARTNET), (5005, 5006, 6454));
    assert_eq!(port::DEFAULT_CUES.to_string(), "127.0.0.1:5005");
    assert_eq!(port::DEFAULT_TIMECODE.to_string(), "127.0.0.1:5006");
}

#[test]
fn status_counter_names_are_frozen() {
    assert_eq!(status::DROPPED_PREFIX, "dropped_");
    assert_eq!(
        status::PLUGIN,
        [
            "received",
            "applied",
            "late",
            "queued",
            "dropped_not_allowed",
            "dropped_bad_token",
            "dropped_malformed",
            "dropped_unmapped",
            "dropped_bad_argument",
            "dropped_too_broad",
            "dropped_too_far_ahead",
            "dropped_schedule_full",
            "dropped_queue_full",
            "dropped_duplicate",
            "dropped_host_full",
            "dropped_deactivated",
            "dropped_empty",
            "note_offs_delayed",
            "bind_errors",
            "reply_errors",
            "status_answered",
            "status_refused",
            "replies_refused",
            "note_offs_merged",
            "ltc_words",
            "ltc_rate_refused",
            "mtc_sent",
            "mtc_refused",
            "mtc_rate_refused",
            "artnet_sent",
            "artnet_send_errors",
            "artnet_rate_refused",
            "artnet_late",
            "sync_answered",
            "sync_refused",
        ]
    );
    assert_eq!(
        status::SERVE,
        [
            "received",
            "acked",
            "dropped_not_allowed",
            "dropped_bad_token",
            "dropped_malformed",
            "dropped_unmapped",
            "dropped_bad_argument",
            "dropped_duplicate",
            "dropped_empty",
            "reply_errors",
            "status_answered",
            "status_refused",
            "replies_refused",
            "timecode_sent",
            "timecode_send_errors",
            "frames_skipped",
            "sync_answered",
            "sync_refused",
        ]
    );
    // `received` is the sum of the outcomes: each name is in a list once.
    for list in [&status::PLUGIN[..], &status::SERVE[..]] {
        let mut unique = list.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), list.len(), "{list:?}");
    }
}

#[test]
fn timecode_bundle_golden_bytes_29_97_df() {
    // Frame 1800 at 29.97 DF is 00:01:00;02 (labels ;00 and ;01 are skipped).
    let msg = TimecodeMessage::new(1800, FrameRate::FPS_29_97_DF, true, 7, false, false);
    let tag = OscTime { seconds: 0x83AA_7E80, fractional: 0x8000_0000 };
    let mut out = Vec::new();
    let n = encode_timecode_bundle(&msg, tag, &mut out);
    let expected = hand_bundle(
        (0x83AA_7E80, 0x8000_0000),
        &hand_message("00:01:00;02", [0, 1, 0, 2], 30000, 1001, 1, 1800, 1, 7, 0, 0),
    );
    assert_eq!(hex(&out), hex(&expected));
    assert_eq!(n, out.len());
    // Pinned: a change to the wire format must change this line, deliberately.
    assert_eq!(
        hex(&out),
        concat!(
            "2362756e646c650083aa7e8080000000000000642f73796e632f74696d65636f646500002c7369696969696969686968",
            "6969000030303a30313a30303b3032000000000000000001000000000000000200007530000003e90000000100000000",
            "000007080000000100000000000000070000000000000000",
        )
    );
    assert_eq!(decode_timecode_packet(&out).unwrap(), (Some(tag), msg));
}

#[test]
fn timecode_bundles_round_trip_for_every_rate_and_flag() {
    let tag = OscTime { seconds: 1, fractional: 2 };
    for rate in FrameRate::ALL {
        for (frame, playing, jump, looped) in [
            (0, true, true, false),
            (-1, false, false, false),
            (123_456_789, true, true, true),
            (i64::from(i32::MAX) * 4, true, false, false),
        ] {
            let msg = TimecodeMessage::new(frame, rate, playing, frame ^ 5, jump, looped);
            let tc = msg.timecode;
            let hmsf = [tc.hours(), tc.minutes(), tc.seconds(), tc.frames()].map(i32::from);
            let expected = hand_bundle(
                (1, 2),
                &hand_message(
                    tc.label().as_str(),
                    hmsf,
                    rate.num() as i32,
                    rate.den() as i32,
                    i32::from(rate.is_drop()),
                    frame,
                    i32::from(playing),
                    frame ^ 5,
                    i32::from(jump),
                    i32::from(looped),
                ),
            );
            let mut out = Vec::new();
            encode_timecode_bundle(&msg, tag, &mut out);
            assert_eq!(hex(&out), hex(&expected), "{rate} frame {frame}");
            assert_eq!(decode_timecode_packet(&out).unwrap(), (Some(tag), msg));
        }
    }
}

#[test]
fn bare_message_decodes_without_timetag() {
    let bytes = hand_message("01:00:00:00", [1, 0, 0, 0], 25, 1, 0, 90_000, 1, 3, 0, 0);
    let (tag, msg) = decode_timecode_packet(&bytes).unwrap();
    assert_eq!(tag, None);
    assert_eq!(
        (msg.frame, msg.rate(), msg.seq, msg.timecode.to_string()),
        (90_000, FrameRate::FPS_25, 3, "01:00:00:00".into())
    );
}

#[test]
fn bad_packets_are_refused_with_a_reason() {
    // Inconsistent: label says 00:00:00:01 but frame is 0.
    let bad_label = hand_message("00:00:00:01", [0, 0, 0, 1], 25, 1, 0, 0, 1, 0, 0, 0);
    assert!(matches!(decode_timecode_packet(&bad_label), Err(ProtocolError::Inconsistent(_))));
    // Fields disagree with the label.
    let bad_fields = hand_message("00:00:00:01", [0, 0, 0, 2], 25, 1, 0, 1, 1, 0, 0, 0);
    assert!(matches!(decode_timecode_packet(&bad_fields), Err(ProtocolError::Inconsistent(_))));
    // A rate that is not SMPTE.
    let bad_rate = hand_message("00:00:00:01", [0, 0, 0, 1], 2997, 100, 0, 1, 1, 0, 0, 0);
    assert!(matches!(decode_timecode_packet(&bad_rate), Err(ProtocolError::Inconsistent(_))));
    // A dropped label.
    let dropped = hand_message("00:01:00;00", [0, 1, 0, 0], 30000, 1001, 1, 1798, 1, 0, 0, 0);
    assert!(matches!(decode_timecode_packet(&dropped), Err(ProtocolError::Inconsistent(_))));
    // A flag that is not 0 or 1.
    let bad_flag = hand_message("00:00:00:01", [0, 0, 0, 1], 25, 1, 0, 1, 2, 0, 0, 0);
    assert!(matches!(decode_timecode_packet(&bad_flag), Err(ProtocolError::Inconsistent(_))));
    // Wrong types: the frame count as int32.
    let mut wrong = Vec::new();
    osc_str(&mut wrong, "/sync/timecode");
    osc_str(&mut wrong, ",si");
    osc_str(&mut wrong, "00:00:00:00");
    wrong.extend_from_slice(&0i32.to_be_bytes());
    match decode_timecode_packet(&wrong) {
        Err(ProtocolError::WrongArguments { got, .. }) => assert_eq!(got, ",si"),
        other => panic!("expected WrongArguments, got {other:?}"),
    }
    // Another address.
    let mut other = Vec::new();
    osc_str(&mut other, "/cue/1");
    osc_str(&mut other, ",");
    assert!(matches!(decode_timecode_packet(&other), Err(ProtocolError::UnknownAddress(a)) if a == "/cue/1"));
    // Garbage and truncation.
    assert!(matches!(decode_timecode_packet(b"\xff\x00garbage"), Err(ProtocolError::Malformed(_))));
    let good = hand_message("00:00:00:00", [0; 4], 25, 1, 0, 0, 1, 0, 0, 0);
    for cut in [1, 8, 20, good.len() - 1] {
        assert!(decode_timecode_packet(&good[..cut]).is_err(), "truncated at {cut} must fail");
    }
    // A bundle with two messages.
    let mut two = hand_bundle((0, 1), &good);
    two.extend_from_slice(&(good.len() as i32).to_be_bytes());
    two.extend_from_slice(&good);
    assert!(matches!(decode_timecode_packet(&two), Err(ProtocolError::Malformed(_))));
}

#[test]
fn hostile_shapes_are_refused_without_recursion() {
    // `listen` and `cue --at` read timecode through this decoder: bundles thousands deep and
    // arrays thousands deep (each would overflow a thread's stack in rosc's recursive decoder)
    // are refused from their shape alone.
    let good = hand_message("00:00:00:00", [0; 4], 25, 1, 0, 0, 1, 0, 0, 0);
    assert!(decode_timecode_packet(&hand_bundle((0, 1), &good)).is_ok());
    let mut deep = good.clone();
    for _ in 0..16_000 {
        deep = hand_bundle((0, 1), &deep);
    }
    assert!(matches!(decode_timecode_packet(&deep), Err(ProtocolError::Malformed(m)) if m.contains("nested")));
    let mut array = Vec::new();
    osc_str(&mut array, "/sync/timecode");
    osc_str(&mut array, &format!(",{}{}", "[".repeat(30_000), "]".repeat(30_000)));
    for packet in [array.clone(), hand_bundle((0, 1), &array)] {
        assert!(matches!(decode_timecode_packet(&packet), Err(ProtocolError::Malformed(m)) if m.contains("array")));
    }
}

#[test]
fn timetags_convert_to_and_from_wall_clock() {
    use std::time::{Duration, UNIX_EPOCH};
    // 2024-01-01T00:00:00.5Z: Unix 1704067200.5 → NTP seconds +2208988800.
    let t = UNIX_EPOCH + Duration::from_millis(1_704_067_200_500);
    let tag = timetag_from_system_time(t);
    assert_eq!(tag.seconds, (1_704_067_200u64 + 2_208_988_800) as u32);
    assert_eq!(tag.fractional, 0x8000_0000);
    assert_eq!(system_time_from_timetag(tag), t);
    // Sub-microsecond round trip for arbitrary nanoseconds.
    for nanos in [1u64, 999, 123_456_789, 999_999_999] {
        let t = UNIX_EPOCH + Duration::new(1_800_000_000, nanos as u32);
        let back = system_time_from_timetag(timetag_from_system_time(t));
        let err = back.duration_since(t).unwrap_or_else(|e| e.duration());
        assert!(err <= Duration::from_nanos(1), "{nanos}: off by {err:?}");
    }
}

mod cues {
    //! The cue side: `/ack` and `/status` replies as golden bytes, and cue arguments as senders
    //! (python-osc, liblo, TouchOSC) encode them, built by hand.

    use super::{hex, osc_str};
    use osc_timecode_core::cue::{
        Ack, AckStatus, CueArgs, CueId, CueValue, decode_packet, parse_cue_args, status_from_osc, status_to_osc,
    };
    use rosc::{OscPacket, encoder::encode};

    #[test]
    fn ack_status_names_are_frozen() {
        let names: Vec<&str> = AckStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok",
                "duplicate",
                "unmapped",
                "bad_argument",
                "too_broad",
                "too_far_ahead",
                "schedule_full",
                "queue_full"
            ]
        );
    }

    #[test]
    fn ack_golden_bytes() {
        let ack = Ack { address: "/cue/intro".into(), id: Some(CueId::Int(42)), status: AckStatus::Ok };
        let bytes = encode(&OscPacket::Message(ack.to_osc())).unwrap();
        let mut expected = Vec::new();
        osc_str(&mut expected, "/ack");
        osc_str(&mut expected, ",sis");
        osc_str(&mut expected, "/cue/intro");
        expected.extend_from_slice(&42i32.to_be_bytes());
        osc_str(&mut expected, "ok");
        assert_eq!(hex(&bytes), hex(&expected));
        assert_eq!(hex(&bytes), "2f61636b000000002c736973000000002f6375652f696e74726f00000000002a6f6b0000");
        // No ID: nil; an int64 ID stays int64.
        let none = Ack { address: "/cue/1".into(), id: None, status: AckStatus::Unmapped };
        let mut expected = Vec::new();
        osc_str(&mut expected, "/ack");
        osc_str(&mut expected, ",sNs");
        osc_str(&mut expected, "/cue/1");
        osc_str(&mut expected, "unmapped");
        assert_eq!(hex(&encode(&OscPacket::Message(none.to_osc())).unwrap()), hex(&expected));
        let long = Ack { address: "/t".into(), id: Some(CueId::Long(-5)), status: AckStatus::Duplicate };
        let long_bytes = encode(&OscPacket::Message(long.to_osc())).unwrap();
        assert_eq!(&long_bytes[8..12], b",shs");
    }

    #[test]
    fn status_golden_bytes() {
        let bytes = encode(&OscPacket::Message(status_to_osc(&[("received", 3), ("applied", 2)]))).unwrap();
        let mut expected = Vec::new();
        osc_str(&mut expected, "/status");
        osc_str(&mut expected, ",shsh");
        osc_str(&mut expected, "received");
        expected.extend_from_slice(&3i64.to_be_bytes());
        osc_str(&mut expected, "applied");
        expected.extend_from_slice(&2i64.to_be_bytes());
        assert_eq!(hex(&bytes), hex(&expected));
        let OscPacket::Message(m) = rosc::decoder::decode_udp(&bytes).unwrap().1 else { panic!("a message") };
        assert_eq!(status_from_osc(&m).unwrap(), vec![("received".into(), 3), ("applied".into(), 2)]);
    }

    #[test]
    fn cues_as_other_senders_encode_them() {
        // `/cue/5 ,Nh` (value nil, int64 id), built by hand.
        let mut bytes = Vec::new();
        osc_str(&mut bytes, "/cue/5");
        osc_str(&mut bytes, ",Nh");
        bytes.extend_from_slice(&9_000_000_000i64.to_be_bytes());
        let got = decode_packet(&bytes).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].timetag, None);
        assert_eq!(
            parse_cue_args(&got[0].msg.args, None),
            Ok(CueArgs { value: CueValue::Default, id: Some(CueId::Long(9_000_000_000)) })
        );
        // `/trigger/1 ,sfi` with a token, a TouchOSC-style float and an id.
        let mut bytes = Vec::new();
        osc_str(&mut bytes, "/trigger/1");
        osc_str(&mut bytes, ",sfi");
        osc_str(&mut bytes, "s3cret");
        bytes.extend_from_slice(&0.25f32.to_be_bytes());
        bytes.extend_from_slice(&3i32.to_be_bytes());
        let got = decode_packet(&bytes).unwrap();
        assert_eq!(
            parse_cue_args(&got[0].msg.args, Some("s3cret")),
            Ok(CueArgs { value: CueValue::Midi(32), id: Some(CueId::Int(3)) })
        );
    }
}

/// `/sync/ping` and `/sync/pong` byte for byte (issue 18): `,hhtti`, 56 bytes each way, so a
/// pong is never bigger than the ping it answers.
#[test]
fn sync_ping_and_pong_golden_bytes() {
    use osc_timecode_core::clocksync::{Ping, Pong};
    use rosc::OscTime;
    let ping = Ping { id: 1, origin: 0x0102_0304_0506_0708 };
    let golden_ping = concat!(
        "2f73796e632f70696e670000", // "/sync/ping", padded to 12
        "2c68687474690000",         // ",hhtti", padded to 8
        "0000000000000001",         // ID
        "0102030405060708",         // ORIGIN
        "0000000000000000",         // 0 (timetag)
        "0000000000000000",         // 0 (timetag)
        "00000000",                 // 0 (int32)
    );
    assert_eq!(hex(&ping.encode()), golden_ping);
    let pong = Pong::answer(
        ping,
        OscTime { seconds: 0xE000_0000, fractional: 1 },
        OscTime { seconds: 0xE000_0000, fractional: 2 },
        3,
    );
    let golden_pong = concat!(
        "2f73796e632f706f6e670000", // "/sync/pong"
        "2c68687474690000",         // ",hhtti"
        "0000000000000001",         // ID, echoed
        "0102030405060708",         // ORIGIN, echoed
        "e000000000000001",         // T2: received
        "e000000000000002",         // T3: sent
        "00000003",                 // EPOCH
    );
    assert_eq!(hex(&pong.encode()), golden_pong);
    assert_eq!(golden_ping.len(), golden_pong.len());
    assert_eq!(golden_ping.len() / 2, 56);
}
