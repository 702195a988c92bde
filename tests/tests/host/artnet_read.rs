//! Reading the plugin's Art-Net packets with `artnet_protocol` (a decoder nobody here wrote), and
//! the labels the OSC stream says they must carry. Shared by the VST3 host's test (`vst3.rs`) and
//! headless Ardour's (`../ardour.rs`, which includes this file with `#[path]`).

#![allow(dead_code, reason = "each test binary uses its part")]

use artnet_protocol::{ArtCommand, FrameType};
use osc_timecode_core::Timecode;
use osc_timecode_tests::receiver::Packet;

/// A label as ArtTimeCode carries it: (hours, minutes, seconds, frames).
pub type Label = (u8, u8, u8, u8);

/// What `artnet_protocol` reads in one packet: its label, StreamId and Type. Panics unless it is
/// an ArtTimeCode of ProtVer 14.
pub fn read(p: &Packet) -> (Label, u8, FrameType) {
    match ArtCommand::from_buffer(&p.bytes) {
        Ok(ArtCommand::OpTimeCode(tc)) => {
            assert_eq!((tc.version, tc.filler1), ([0, 14], 0), "ProtVer 14, Filler1 0: {:02x?}", p.bytes);
            ((tc.hours, tc.minutes, tc.seconds, tc.frames), tc.stream_id, tc.frame_type)
        }
        other => panic!("artnet_protocol read {other:?} in {:02x?}, not an OpTimeCode", p.bytes),
    }
}

/// A timecode's label as ArtTimeCode carries it.
pub fn label(tc: Timecode) -> Label {
    (tc.hours(), tc.minutes(), tc.seconds(), tc.frames())
}
