//! Our ArtTimeCode packets read by a decoder nobody here wrote: the `artnet_protocol` crate
//! (crates.io, MIT; OpTimeCode since 0.4.4). Every field it decodes must be the frame's label, the
//! stream and the Type; and its own encoder, given those fields, must write our bytes.

use artnet_protocol::{ArtCommand, FrameType, Timecode as ArtTc};
use osc_timecode_core::artnet::{self, PACKET_LEN};
use osc_timecode_core::carriage::RateCode;
use osc_timecode_core::{FrameRate, Timecode};

fn their_type(code: RateCode) -> FrameType {
    match code {
        RateCode::Fps24 => FrameType::Film,
        RateCode::Fps25 => FrameType::EBU,
        RateCode::Fps29_97Drop => FrameType::DF,
        RateCode::Fps30 => FrameType::SMPTE,
    }
}

/// Decodes `bytes` with artnet_protocol, checks it against the label expected, and re-encodes
/// the decoded fields with artnet_protocol's writer: byte-for-byte ours.
fn check(bytes: &[u8; PACKET_LEN], want: Timecode, stream: u8, kind: RateCode, what: &str) {
    let decoded = match ArtCommand::from_buffer(bytes) {
        Ok(ArtCommand::OpTimeCode(tc)) => tc,
        other => panic!("{what}: artnet_protocol read {other:?}, not an OpTimeCode"),
    };
    assert_eq!(decoded.version, [0, 14], "{what}: ProtVer 14, high byte first");
    assert_eq!(decoded.filler1, 0, "{what}");
    assert_eq!(decoded.stream_id, stream, "{what}");
    assert_eq!(
        (decoded.hours, decoded.minutes, decoded.seconds, decoded.frames),
        (want.hours(), want.minutes(), want.seconds(), want.frames()),
        "{what}"
    );
    assert_eq!(decoded.frame_type, their_type(kind), "{what}");
    let theirs = ArtCommand::OpTimeCode(ArtTc {
        version: [0, 14],
        filler1: 0,
        stream_id: stream,
        frames: want.frames(),
        seconds: want.seconds(),
        minutes: want.minutes(),
        hours: want.hours(),
        frame_type: their_type(kind),
    })
    .write_to_buffer()
    .expect("artnet_protocol encodes a timecode packet");
    assert_eq!(theirs, bytes, "{what}: artnet_protocol's own packet for the same fields");
}

/// Every rate, frames around zero, drop-frame minutes, midnight and pre-roll; the rates above
/// 30 fps in half-rate mode, where frame n goes as frame ⌊n/2⌋ at the half rate.
#[test]
fn artnet_protocol_decodes_every_frame_as_its_label() {
    let expected_kind = |rate: FrameRate| match rate.nominal() {
        24 => RateCode::Fps24,
        25 | 50 => RateCode::Fps25,
        _ if rate.is_drop() => RateCode::Fps29_97Drop,
        _ => RateCode::Fps30,
    };
    let mut checked = 0;
    for (i, rate) in FrameRate::ALL.into_iter().enumerate() {
        let half_rate = rate.nominal() > 30;
        let half = match rate.nominal() {
            50 => FrameRate::FPS_25,
            60 if rate.den() == 1 => FrameRate::FPS_30,
            60 if rate.is_drop() => FrameRate::FPS_29_97_DF,
            60 => FrameRate::FPS_29_97_NDF,
            _ => rate,
        };
        let day = rate.frames_per_day();
        let stream = u8::try_from(i * 25).unwrap();
        let frames = (-100..100).chain((0..day).step_by(1009)).chain(day - 100..day + 100);
        for n in frames {
            let packet = artnet::encode_frame(n, rate, stream, half_rate).unwrap();
            let want =
                if half_rate { Timecode::from_frame(n.div_euclid(2), half) } else { Timecode::from_frame(n, rate) };
            check(&packet.bytes, want, stream, expected_kind(rate), &format!("frame {n} at {rate}"));
            checked += 1;
        }
    }
    assert!(checked > 20_000, "{checked} packets");
}

/// One drop-frame packet on a stream other than the master.
#[test]
fn artnet_protocol_reads_a_drop_frame_label_on_a_side_stream() {
    let tc = Timecode::parse("01:10:00;02", FrameRate::FPS_29_97_DF).unwrap();
    let packet = artnet::encode(tc, 9, false).unwrap();
    check(&packet.bytes, tc, 9, RateCode::Fps29_97Drop, "01:10:00;02 29.97df");
    assert!(packet.carriage.is_exact());
}
