//! The OSC wire format: addresses, the `/sync/timecode` message, and its bundle.
//!
//! Addresses are public API (users map them in TouchOSC, QLab, scripts): they are frozen by
//! tests and listed in the README and `docs/PROTOCOL.md`, which gives the full schema.
//!
//! rosc's message types allocate, so encoding happens on the network thread, never the audio
//! thread, into one reused buffer ([`encode_timecode_bundle`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::rate::FrameRate;
use crate::timecode::Timecode;

/// Timecode from a master, one message per frame, each alone in a bundle whose timetag says
/// when the frame is heard.
pub const ADDR_TIMECODE: &str = "/sync/timecode";

/// The type tags of [`ADDR_TIMECODE`], in order (see `docs/PROTOCOL.md`).
pub const TIMECODE_TYPE_TAGS: &str = ",siiiiiiihihii";

/// Why a packet could not be read as timecode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not a valid OSC packet.
    #[error("malformed OSC packet: {0}")]
    Malformed(String),
    /// A valid OSC message, but not one we read.
    #[error("unknown OSC address {0:?}")]
    UnknownAddress(String),
    /// The right address with the wrong arguments.
    #[error("{address}: expected arguments {expected}, got {got}")]
    WrongArguments {
        /// The message's address.
        address: &'static str,
        /// The type tags we expect.
        expected: &'static str,
        /// The type tags that came.
        got: String,
    },
    /// The arguments contradict each other (label vs fields vs frame count, or no such rate).
    #[error("{0}")]
    Inconsistent(String),
}

/// One `/sync/timecode` message. `Copy`: the network thread builds it from a frame event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimecodeMessage {
    /// The label, `frame` wrapped into the day.
    pub timecode: Timecode,
    /// Absolute frame count (start offset included, never wrapped; negative in pre-roll).
    pub frame: i64,
    /// Transport rolling (`true`) or parked (`false`: sent on change and as keep-alive).
    pub playing: bool,
    /// Per-sender sequence number, +1 for every message sent (to every target alike).
    pub seq: i64,
    /// This frame does not follow the previous one: locate, loop wrap, start, rate change.
    pub jump: bool,
    /// The discontinuity is the host's loop wrapping back to the loop start.
    pub looped: bool,
}

impl TimecodeMessage {
    /// The label for `frame` at `rate`, with flags.
    pub fn new(frame: i64, rate: FrameRate, playing: bool, seq: i64, jump: bool, looped: bool) -> Self {
        Self { timecode: Timecode::from_frame(frame, rate), frame, playing, seq, jump, looped }
    }

    /// The frame rate the message counts in.
    pub fn rate(&self) -> FrameRate {
        self.timecode.rate()
    }

    /// As an OSC message (allocates: network thread only).
    pub fn to_osc(&self) -> OscMessage {
        let tc = self.timecode;
        let rate = tc.rate();
        let flag = |b: bool| OscType::Int(i32::from(b));
        OscMessage {
            addr: ADDR_TIMECODE.to_owned(),
            args: vec![
                OscType::String(tc.label().as_str().to_owned()),
                OscType::Int(tc.hours().into()),
                OscType::Int(tc.minutes().into()),
                OscType::Int(tc.seconds().into()),
                OscType::Int(tc.frames().into()),
                OscType::Int(rate.num() as i32),
                OscType::Int(rate.den() as i32),
                flag(rate.is_drop()),
                OscType::Long(self.frame),
                flag(self.playing),
                OscType::Long(self.seq),
                flag(self.jump),
                flag(self.looped),
            ],
        }
    }

    /// Reads and cross-checks a `/sync/timecode` message: exact type tags, a supported rate, and
    /// label, fields and frame count that agree.
    pub fn from_osc(msg: &OscMessage) -> Result<Self, ProtocolError> {
        if msg.addr != ADDR_TIMECODE {
            return Err(ProtocolError::UnknownAddress(msg.addr.clone()));
        }
        let wrong = || ProtocolError::WrongArguments {
            address: ADDR_TIMECODE,
            expected: TIMECODE_TYPE_TAGS,
            got: type_tags(&msg.args),
        };
        let [
            OscType::String(label),
            OscType::Int(h),
            OscType::Int(m),
            OscType::Int(s),
            OscType::Int(f),
            OscType::Int(num),
            OscType::Int(den),
            OscType::Int(drop),
            OscType::Long(frame),
            OscType::Int(playing),
            OscType::Long(seq),
            OscType::Int(jump),
            OscType::Int(looped),
        ] = msg.args.as_slice()
        else {
            return Err(wrong());
        };
        let flag = |v: i32, what: &str| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtocolError::Inconsistent(format!("{what} flag must be 0 or 1, got {v}"))),
        };
        let (Ok(num), Ok(den)) = (u32::try_from(*num), u32::try_from(*den)) else {
            return Err(ProtocolError::Inconsistent(format!("negative rate {num}/{den}")));
        };
        let rate = FrameRate::from_parts(num, den, flag(*drop, "drop")?)
            .map_err(|e| ProtocolError::Inconsistent(e.to_string()))?;
        let timecode = Timecode::parse(label, rate).map_err(|e| ProtocolError::Inconsistent(e.to_string()))?;
        let fields = [timecode.hours(), timecode.minutes(), timecode.seconds(), timecode.frames()].map(i32::from);
        if fields != [*h, *m, *s, *f] {
            return Err(ProtocolError::Inconsistent(format!("label {label} disagrees with fields {h}:{m}:{s}:{f}")));
        }
        if Timecode::from_frame(*frame, rate) != timecode {
            return Err(ProtocolError::Inconsistent(format!("label {label} is not frame {frame} at {rate}")));
        }
        Ok(Self {
            timecode,
            frame: *frame,
            playing: flag(*playing, "playing")?,
            seq: *seq,
            jump: flag(*jump, "jump")?,
            looped: flag(*looped, "loop")?,
        })
    }
}

/// Encodes `msg` alone in a bundle with `timetag` into `out` (cleared first), reusing its
/// capacity. Returns the packet length.
pub fn encode_timecode_bundle(msg: &TimecodeMessage, timetag: OscTime, out: &mut Vec<u8>) -> usize {
    out.clear();
    let packet = OscPacket::Bundle(OscBundle { timetag, content: vec![OscPacket::Message(msg.to_osc())] });
    // PANIC: encoding into a Vec cannot fail (its Output error type is Infallible).
    rosc::encoder::encode_into(&packet, out).expect("encoding into a Vec cannot fail")
}

/// Reads one UDP datagram of timecode: a bundle holding one `/sync/timecode` message (its
/// timetag returned), or the bare message (no timetag: "now").
/// The shape is checked first, without recursion ([`crate::cue::check_shape`]: one bundle
/// level, one message, no arrays), so a hostile packet never reaches rosc's recursive decoder.
pub fn decode_timecode_packet(bytes: &[u8]) -> Result<(Option<OscTime>, TimecodeMessage), ProtocolError> {
    crate::cue::check_shape(bytes, 1, 1).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    let (_, packet) = rosc::decoder::decode_udp(bytes).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    match packet {
        OscPacket::Message(m) => Ok((None, TimecodeMessage::from_osc(&m)?)),
        OscPacket::Bundle(b) => match b.content.as_slice() {
            [OscPacket::Message(m)] => Ok((Some(b.timetag), TimecodeMessage::from_osc(m)?)),
            _ => Err(ProtocolError::Malformed(format!(
                "a timecode bundle holds exactly one message, this one holds {} elements",
                b.content.len()
            ))),
        },
    }
}

/// The OSC type tag string of `args` (`,si…`), for error messages.
pub fn type_tags(args: &[OscType]) -> String {
    let mut tags = String::from(",");
    tags.extend(args.iter().map(type_tag));
    tags
}

/// One argument's OSC type tag. Never looks inside an array (no recursion on what a sender sent).
pub fn type_tag(arg: &OscType) -> char {
    match arg {
        OscType::Int(_) => 'i',
        OscType::Float(_) => 'f',
        OscType::String(_) => 's',
        OscType::Blob(_) => 'b',
        OscType::Time(_) => 't',
        OscType::Long(_) => 'h',
        OscType::Double(_) => 'd',
        OscType::Char(_) => 'c',
        OscType::Color(_) => 'r',
        OscType::Midi(_) => 'm',
        OscType::Bool(true) => 'T',
        OscType::Bool(false) => 'F',
        OscType::Array(_) => '[',
        OscType::Nil => 'N',
        OscType::Inf => 'I',
    }
}

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// The OSC (NTP) timetag of a wall-clock instant; instants before 1970 map to the epoch.
pub fn timetag_from_system_time(t: SystemTime) -> OscTime {
    let since_unix = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = since_unix.as_secs() + NTP_UNIX_OFFSET_SECS;
    // Fraction of a second in units of 2^-32 s, rounded to nearest.
    let frac = ((u64::from(since_unix.subsec_nanos()) << 32) + 500_000_000) / 1_000_000_000;
    let (secs, frac) = if frac >> 32 != 0 { (secs + 1, 0) } else { (secs, frac) };
    OscTime { seconds: secs as u32, fractional: frac as u32 }
}

/// The wall-clock instant of an OSC timetag (the NTP era of 1900–2036 is assumed).
pub fn system_time_from_timetag(t: OscTime) -> SystemTime {
    let nanos = (u64::from(t.fractional) * 1_000_000_000 + (1 << 31)) >> 32;
    let secs = u64::from(t.seconds).saturating_sub(NTP_UNIX_OFFSET_SECS);
    UNIX_EPOCH + Duration::new(secs, 0) + Duration::from_nanos(nanos)
}
