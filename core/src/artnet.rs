//! Art-Net 4 ArtTimeCode packets: timecode for lighting consoles and media servers on UDP.
//!
//! The packet (Art-Net 4 specification, "ArtTimeCode" packet definition; OpCode table: OpTimeCode
//! 0x9700) is 19 bytes, built here in a fixed array ([`Packet::bytes`]):
//!
//! | offset | field | value |
//! |---|---|---|
//! | 0–7 | ID | `"Art-Net\0"` |
//! | 8–9 | OpCode | 0x9700, low byte first |
//! | 10–11 | ProtVer | 14, high byte first |
//! | 12 | Filler1 | 0 |
//! | 13 | StreamId | 0 is the master stream |
//! | 14–17 | Frames, Seconds, Minutes, Hours | the label, binary |
//! | 18 | Type | 0 Film (24), 1 EBU (25), 2 DF (29.97 drop-frame), 3 SMPTE (30) |
//!
//! The packet carries no timestamp, so the sender must send it when its frame is heard.
//!
//! **Rates the Type cannot name** are never replaced silently: [`Carriage`] (shared with LTC and
//! MTC, whose rate code is the same two bits) says how the rate travels and is part of every
//! [`Packet`]. 23.976 goes as Type 0 (Film, 24) and 29.97 non-drop
//! as Type 3 (SMPTE, 30), the universal practice: the labels are right, the receiver's idea of
//! the speed is 0.1 % fast ([`Carriage::is_substituted`]). 50, 59.94 and 60 are refused
//! ([`ArtNetError::RateNotCarried`]) unless `half_rate` is asked for: then frame *n* goes as frame
//! ⌊*n*/2⌋ at 25, 29.97 (drop-frame or not) or 30, the same label with half the frame number
//! ([`Carriage::is_half_rate`]).
//!
//! Plain data: no heap, no I/O, no panic; callable from any thread.

use crate::carriage::{Carriage, NotCarried};
use crate::rate::FrameRate;
use crate::timecode::Timecode;

pub use crate::protocol::port::ARTNET as PORT;

/// Bytes in an ArtTimeCode packet.
pub const PACKET_LEN: usize = 19;

/// OpTimeCode, sent low byte first.
pub const OP_TIME_CODE: u16 = 0x9700;

/// The protocol revision this packet follows (14, Art-Net 4), sent high byte first.
pub const PROT_VER: u16 = 14;

/// The packet ID every Art-Net packet starts with.
const ID: [u8; 8] = *b"Art-Net\0";

/// Why a rate cannot be sent as ArtTimeCode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ArtNetError {
    /// 50, 59.94 or 60 fps without `half_rate`: no Type names the rate, and sending it as another
    /// would show the wrong labels. Nothing is sent.
    #[error("Art-Net timecode {0}")]
    RateNotCarried(NotCarried),
}

/// One ArtTimeCode packet and how its rate travelled. `Copy`, 19 bytes and a [`Carriage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Packet {
    /// The datagram to send to [`PORT`], exactly as on the wire.
    pub bytes: [u8; PACKET_LEN],
    /// The Type sent ([`Carriage::code`]) and whether it is a substitution or frame pairs.
    pub carriage: Carriage,
}

/// The packet for label `tc` on stream `stream_id` (0 is the master stream); `half_rate` as in
/// [`Carriage::of`]. In half-rate mode the label keeps its hours, minutes and seconds and sends
/// half its frame number, which is frame ⌊*n*/2⌋ at the half rate ([`Carriage::carried_label`]).
pub fn encode(tc: Timecode, stream_id: u8, half_rate: bool) -> Result<Packet, ArtNetError> {
    let carriage = Carriage::of(tc.rate(), half_rate).map_err(ArtNetError::RateNotCarried)?;
    let wire = carriage.carried_label(tc);
    let [op_lo, op_hi] = OP_TIME_CODE.to_le_bytes();
    let [ver_hi, ver_lo] = PROT_VER.to_be_bytes();
    let mut bytes = [0; PACKET_LEN];
    bytes[..8].copy_from_slice(&ID);
    bytes[8..].copy_from_slice(&[
        op_lo,
        op_hi,
        ver_hi,
        ver_lo,
        0, // Filler1
        stream_id,
        wire.frames(),
        wire.seconds(),
        wire.minutes(),
        wire.hours(),
        carriage.code().bits(),
    ]);
    Ok(Packet { bytes, carriage })
}

/// The packet for frame index `frame` at `rate` (any integer: wrapped into the day like
/// [`Timecode::from_frame`]).
pub fn encode_frame(frame: i64, rate: FrameRate, stream_id: u8, half_rate: bool) -> Result<Packet, ArtNetError> {
    encode(Timecode::from_frame(frame, rate), stream_id, half_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixed head of every ArtTimeCode packet (spec, ArtTimeCode table): ID, OpCode 0x9700
    /// low byte first, ProtVer 14 high byte first, Filler1.
    const HEAD: [u8; 13] = [b'A', b'r', b't', b'-', b'N', b'e', b't', 0, 0x00, 0x97, 0x00, 0x0E, 0x00];

    fn packet(stream: u8, ff: u8, ss: u8, mm: u8, hh: u8, kind: u8) -> [u8; PACKET_LEN] {
        let mut p = [0; PACKET_LEN];
        p[..13].copy_from_slice(&HEAD);
        p[13..].copy_from_slice(&[stream, ff, ss, mm, hh, kind]);
        p
    }

    fn tc(text: &str, rate: FrameRate) -> Timecode {
        Timecode::parse(text, rate).unwrap()
    }

    /// Byte-exact packets written from the spec's table (offsets 13–18: StreamId, Frames,
    /// Seconds, Minutes, Hours, Type), one per rate, with how each rate travels.
    #[test]
    fn golden_packets_at_every_carried_rate() {
        use FrameRate as R;
        // (label, rate, stream, half_rate, expected bytes, exact, substituted, half)
        let cases = [
            ("01:02:03:04", R::FPS_25, 0, false, packet(0, 4, 3, 2, 1, 1), true, false, false),
            ("23:59:59:23", R::FPS_24, 1, false, packet(1, 23, 59, 59, 23, 0), true, false, false),
            ("00:01:00;02", R::FPS_29_97_DF, 7, false, packet(7, 2, 0, 1, 0, 2), true, false, false),
            ("10:00:00:29", R::FPS_30, 0xFF, false, packet(0xFF, 29, 0, 0, 10, 3), true, false, false),
            // 23.976 as Film and 29.97 non-drop as SMPTE: same labels, the speed not said.
            ("12:34:56:23", R::FPS_23_976, 0, false, packet(0, 23, 56, 34, 12, 0), false, true, false),
            ("00:09:59:29", R::FPS_29_97_NDF, 3, false, packet(3, 29, 59, 9, 0, 3), false, true, false),
            // half_rate is ignored at the rates that travel whole.
            ("01:02:03:04", R::FPS_25, 0, true, packet(0, 4, 3, 2, 1, 1), true, false, false),
            // Frame pairs: frames halved, hours/minutes/seconds kept.
            ("01:00:00:49", R::FPS_50, 0, true, packet(0, 24, 0, 0, 1, 1), false, false, true),
            ("00:01:00;04", R::FPS_59_94_DF, 0, true, packet(0, 2, 0, 1, 0, 2), false, false, true),
            ("00:01:00:05", R::FPS_59_94_NDF, 2, true, packet(2, 2, 0, 1, 0, 3), false, true, true),
            ("23:59:59:59", R::FPS_60, 0, true, packet(0, 29, 59, 59, 23, 3), false, false, true),
        ];
        for (label, rate, stream, half_rate, bytes, exact, substituted, half) in cases {
            let p = encode(tc(label, rate), stream, half_rate).unwrap();
            assert_eq!(p.bytes, bytes, "{label} at {rate}");
            let c = p.carriage;
            assert_eq!(
                (c.is_exact(), c.is_substituted(), c.is_half_rate(), c.rate()),
                (exact, substituted, half, rate),
                "{label} at {rate}: {c}"
            );
            assert_eq!(c.code().bits(), bytes[18]);
        }
    }

    #[test]
    fn rates_above_30_are_refused_without_half_rate() {
        use FrameRate as R;
        for (rate, half) in [
            (R::FPS_50, R::FPS_25),
            (R::FPS_59_94_NDF, R::FPS_29_97_NDF),
            (R::FPS_59_94_DF, R::FPS_29_97_DF),
            (R::FPS_60, R::FPS_30),
        ] {
            let refused = NotCarried { rate, half };
            assert_eq!(encode_frame(0, rate, 0, false), Err(ArtNetError::RateNotCarried(refused)));
            assert_eq!(Carriage::of(rate, false), Err(refused));
            assert_eq!(Carriage::of(rate, true).map(Carriage::labels), Ok(half));
        }
        let text = encode_frame(0, R::FPS_59_94_DF, 0, false).unwrap_err().to_string();
        assert_eq!(
            text,
            "Art-Net timecode cannot carry 59.94 fps drop-frame: turn on half_rate to send frame pairs at 29.97 fps \
             drop-frame"
        );
    }

    /// Every frame of the day, and around it (pre-roll, past midnight), at every rate: the packet
    /// carries the frame's label (half-rate: the label of frame ⌊n/2⌋ at the half rate), so
    /// drop-frame skips and the midnight wrap come out as the timecode module counts them.
    #[test]
    fn every_frame_carries_its_label_and_pairs_count_at_the_half_rate() {
        for rate in FrameRate::ALL {
            let day = rate.frames_per_day();
            let half_rate = rate.nominal() > 30;
            let frames = (-200..200).chain((0..day).step_by(997)).chain(day - 200..day + 200);
            for n in frames {
                let p = encode_frame(n, rate, 0, half_rate).unwrap();
                let (sent, at) = if half_rate { (n.div_euclid(2), p.carriage.labels()) } else { (n, rate) };
                let want = Timecode::from_frame(sent, at);
                assert_eq!(
                    p.bytes[14..18],
                    [want.frames(), want.seconds(), want.minutes(), want.hours()],
                    "frame {n} at {rate}"
                );
                assert_eq!(p.bytes[..13], HEAD);
            }
        }
    }

    #[test]
    fn extreme_frame_indices_do_not_panic() {
        for rate in FrameRate::ALL {
            for n in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                for half_rate in [false, true] {
                    if let Ok(p) = encode_frame(n, rate, u8::MAX, half_rate) {
                        assert_eq!(p.bytes[13], u8::MAX);
                        assert!(p.bytes[17] < 24 && p.bytes[16] < 60 && p.bytes[15] < 60 && p.bytes[14] < 30);
                    } else {
                        assert!(rate.nominal() > 30 && !half_rate, "{rate} refused");
                    }
                }
            }
        }
    }
}
