//! The OSC wire format: every address ([`address`]), the default ports ([`port`]), the `/status`
//! counter names ([`status`]), and the `/sync/timecode` message with its bundle.
//!
//! Each of these names is defined here and nowhere else: the plugin, the client and the tests
//! refer to these constants. They are public API (users map addresses in TouchOSC, QLab,
//! scripts, and read the counters): `core/tests/protocol.rs` freezes the exact strings and
//! numbers, and `docs/PROTOCOL.md` gives the full schema.
//!
//! rosc's message types allocate, so encoding happens on the network thread, never the audio
//! thread, into one reused buffer ([`encode_timecode_bundle`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::rate::FrameRate;
use crate::timecode::Timecode;

/// Every OSC address and address prefix a master (the plugin, `osc-timecode serve`) sends or
/// reads.
pub mod address {
    /// Timecode from a master, one message per frame, each alone in a bundle whose timetag says
    /// when the frame is heard.
    pub const TIMECODE: &str = "/sync/timecode";
    /// Cues: `/cue/NAME [TOKEN] [VALUE] [ID]`.
    pub const CUE_PREFIX: &str = "/cue/";
    /// Triggers: `/trigger/NAME [TOKEN] [VALUE] [ID]`.
    pub const TRIGGER_PREFIX: &str = "/trigger/";
    /// The reply to every cue from an allowed sender with a good token: `/ack ADDRESS ID STATUS`.
    pub const ACK: &str = "/ack";
    /// Query `/status [TOKEN] [PADDING]`; the reply has the same address with name/count pairs
    /// (the names are in [`super::status`]). Receivers never reply with more bytes than a sender
    /// sent ([`crate::reply`]): a query that should be answered every time carries a blob after
    /// the token ([`crate::cue::status_query`]).
    pub const STATUS: &str = "/status";
    /// The transport commands `osc-timecode serve` takes (the plugin follows its host instead).
    pub const TRANSPORT_PREFIX: &str = "/transport/";
    /// `/transport/play [TOKEN]`: roll from the parked position.
    pub const TRANSPORT_PLAY: &str = "/transport/play";
    /// `/transport/stop [TOKEN]`: park on the frame playing now.
    pub const TRANSPORT_STOP: &str = "/transport/stop";
    /// `/transport/locate [TOKEN] TIMECODE`: continue (or park) at a label of the serve rate.
    pub const TRANSPORT_LOCATE: &str = "/transport/locate";
    /// `/sync/ping ID ORIGIN 0 0 0`: a receiver asks the master's clock
    /// ([`crate::clocksync`]).
    pub const SYNC_PING: &str = "/sync/ping";
    /// `/sync/pong ID ORIGIN T2 T3 EPOCH`: the master's answer, as long as the ping.
    pub const SYNC_PONG: &str = "/sync/pong";
}

/// The default UDP ports and addresses. Defaults are loopback: reaching beyond the machine is
/// always a choice someone writes down (a flag, the config file, the window).
pub mod port {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    /// A master's cue input (`/cue`, `/trigger`, `/transport`, `/status`): where the plugin and
    /// `serve` listen and where `cue` and `trigger` send.
    pub const CUES: u16 = 5005;
    /// Timecode: where a master sends `/sync/timecode` and `listen` receives it.
    pub const TIMECODE: u16 = 5006;
    /// The default cue input: loopback, port [`CUES`].
    pub const DEFAULT_CUES: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), CUES);
    /// The default timecode target (and `listen` address): loopback, port [`TIMECODE`].
    pub const DEFAULT_TIMECODE: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), TIMECODE);
    /// Art-Net: the UDP port every Art-Net node listens on (Art-Net 4 specification, "Protocol
    /// Operation": 0x1936), where ArtTimeCode goes ([`crate::artnet`]).
    pub const ARTNET: u16 = 0x1936;
}

/// The `/status` counter names and their public order: the plugin's ([`status::PLUGIN`]) and
/// `osc-timecode serve`'s ([`status::SERVE`]). Counts are messages unless the name says otherwise.
pub mod status {
    /// Messages received from allowed senders (`/status` queries too), and one for every packet
    /// dropped whole.
    pub const RECEIVED: &str = "received";
    /// Plugin: messages whose events all reached the host.
    pub const APPLIED: &str = "applied";
    /// Plugin: applied messages whose sample had already been processed.
    pub const LATE: &str = "late";
    /// Plugin: accepted messages not yet applied or dropped.
    pub const QUEUED: &str = "queued";
    /// `serve`: cues, triggers and transport commands acknowledged `ok`.
    pub const ACKED: &str = "acked";
    /// What every counter of dropped messages starts with: their sum is everything dropped.
    pub const DROPPED_PREFIX: &str = "dropped_";
    /// Packets from senders outside the allow-list.
    pub const DROPPED_NOT_ALLOWED: &str = "dropped_not_allowed";
    /// Messages without the right token.
    pub const DROPPED_BAD_TOKEN: &str = "dropped_bad_token";
    /// Packets that are not OSC 1.0 or exceed the size limits.
    pub const DROPPED_MALFORMED: &str = "dropped_malformed";
    /// Messages to an address nothing is mapped to.
    pub const DROPPED_UNMAPPED: &str = "dropped_unmapped";
    /// Messages with arguments that are not accepted.
    pub const DROPPED_BAD_ARGUMENT: &str = "dropped_bad_argument";
    /// Plugin: patterns that match more addresses than allowed.
    pub const DROPPED_TOO_BROAD: &str = "dropped_too_broad";
    /// Plugin: cues timed further ahead than the schedule holds.
    pub const DROPPED_TOO_FAR_AHEAD: &str = "dropped_too_far_ahead";
    /// Plugin: the schedule of timed cues was full.
    pub const DROPPED_SCHEDULE_FULL: &str = "dropped_schedule_full";
    /// Plugin: the ring to the audio thread was full.
    pub const DROPPED_QUEUE_FULL: &str = "dropped_queue_full";
    /// Retries of a cue ID already accepted.
    pub const DROPPED_DUPLICATE: &str = "dropped_duplicate";
    /// Plugin: the host's output event buffer was full.
    pub const DROPPED_HOST_FULL: &str = "dropped_host_full";
    /// Plugin: accepted, then the plugin was deactivated before they were applied.
    pub const DROPPED_DEACTIVATED: &str = "dropped_deactivated";
    /// Well-formed packets without a message (a bundle of nothing).
    pub const DROPPED_EMPTY: &str = "dropped_empty";
    /// Plugin: note offs carried to a later block because the host's buffer was full.
    pub const NOTE_OFFS_DELAYED: &str = "note_offs_delayed";
    /// Plugin: failed attempts to bind the listen address.
    pub const BIND_ERRORS: &str = "bind_errors";
    /// Replies the OS refused to send.
    pub const REPLY_ERRORS: &str = "reply_errors";
    /// `/status` queries answered.
    pub const STATUS_ANSWERED: &str = "status_answered";
    /// `/status` queries with the right token not answered (too often, or more bytes than the
    /// sender sent).
    pub const STATUS_REFUSED: &str = "status_refused";
    /// `/ack` replies not sent for the same reason; the cue itself was handled.
    pub const REPLIES_REFUSED: &str = "replies_refused";
    /// Plugin: note offs not needed because a later note of the same key ends them.
    pub const NOTE_OFFS_MERGED: &str = "note_offs_merged";
    /// Plugin: LTC words begun in the audio output (frames, or frame pairs at half rate).
    pub const LTC_WORDS: &str = "ltc_words";
    /// Plugin: frames LTC did not carry because it cannot carry the rate (50, 59.94 or 60 fps
    /// without half rate), while LTC is on.
    pub const LTC_RATE_REFUSED: &str = "ltc_rate_refused";
    /// Plugin: MTC messages (quarter frames and full frames) the host took.
    pub const MTC_SENT: &str = "mtc_sent";
    /// Plugin: MTC messages not sent: the host refused them, or a block held more than the
    /// plugin sends in one.
    pub const MTC_REFUSED: &str = "mtc_refused";
    /// Plugin: frames MTC did not carry because it cannot carry the rate, while MTC is on.
    pub const MTC_RATE_REFUSED: &str = "mtc_rate_refused";
    /// Plugin: Art-Net datagrams sent (every Art-Net target counts).
    pub const ARTNET_SENT: &str = "artnet_sent";
    /// Plugin: Art-Net datagrams the OS refused to send.
    pub const ARTNET_SEND_ERRORS: &str = "artnet_send_errors";
    /// Plugin: frames not sent as Art-Net because ArtTimeCode cannot carry the rate, while
    /// Art-Net targets are set.
    pub const ARTNET_RATE_REFUSED: &str = "artnet_rate_refused";
    /// Plugin: Art-Net packets that left later than their frame was heard.
    pub const ARTNET_LATE: &str = "artnet_late";
    /// `serve`: `/sync/timecode` packets sent (every target counts).
    pub const TIMECODE_SENT: &str = "timecode_sent";
    /// `serve`: timecode packets the OS refused to send.
    pub const TIMECODE_SEND_ERRORS: &str = "timecode_send_errors";
    /// `serve`: frames not sent because the sender fell behind.
    pub const FRAMES_SKIPPED: &str = "frames_skipped";
    /// `/sync/ping`s answered with a `/sync/pong` (issue 18).
    pub const SYNC_ANSWERED: &str = "sync_answered";
    /// `/sync/ping`s not answered: from a sender the master may not talk to, or over a rate
    /// limit.
    pub const SYNC_REFUSED: &str = "sync_refused";

    /// The plugin's `/status` counters, in the order of its reply. Every `dropped_*` one is in
    /// the sum `received` = `applied` + `queued` + dropped + the `/status` queries. The outputs'
    /// counters (issue 16) come after the cue input's, then the clock sync's (issue 18)
    /// (appended: the order is public).
    pub const PLUGIN: [&str; 35] = [
        RECEIVED,
        APPLIED,
        LATE,
        QUEUED,
        DROPPED_NOT_ALLOWED,
        DROPPED_BAD_TOKEN,
        DROPPED_MALFORMED,
        DROPPED_UNMAPPED,
        DROPPED_BAD_ARGUMENT,
        DROPPED_TOO_BROAD,
        DROPPED_TOO_FAR_AHEAD,
        DROPPED_SCHEDULE_FULL,
        DROPPED_QUEUE_FULL,
        DROPPED_DUPLICATE,
        DROPPED_HOST_FULL,
        DROPPED_DEACTIVATED,
        DROPPED_EMPTY,
        NOTE_OFFS_DELAYED,
        BIND_ERRORS,
        REPLY_ERRORS,
        STATUS_ANSWERED,
        STATUS_REFUSED,
        REPLIES_REFUSED,
        NOTE_OFFS_MERGED,
        LTC_WORDS,
        LTC_RATE_REFUSED,
        MTC_SENT,
        MTC_REFUSED,
        MTC_RATE_REFUSED,
        ARTNET_SENT,
        ARTNET_SEND_ERRORS,
        ARTNET_RATE_REFUSED,
        ARTNET_LATE,
        SYNC_ANSWERED,
        SYNC_REFUSED,
    ];

    /// `osc-timecode serve`'s `/status` counters, in the order of its reply:
    /// `received` = `acked` + every `dropped_*` + the `/status` queries.
    pub const SERVE: [&str; 18] = [
        RECEIVED,
        ACKED,
        DROPPED_NOT_ALLOWED,
        DROPPED_BAD_TOKEN,
        DROPPED_MALFORMED,
        DROPPED_UNMAPPED,
        DROPPED_BAD_ARGUMENT,
        DROPPED_DUPLICATE,
        DROPPED_EMPTY,
        REPLY_ERRORS,
        STATUS_ANSWERED,
        STATUS_REFUSED,
        REPLIES_REFUSED,
        TIMECODE_SENT,
        TIMECODE_SEND_ERRORS,
        FRAMES_SKIPPED,
        SYNC_ANSWERED,
        SYNC_REFUSED,
    ];
}

/// The type tags of [`address::TIMECODE`], in order (see `docs/PROTOCOL.md`).
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
            addr: address::TIMECODE.to_owned(),
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
        if msg.addr != address::TIMECODE {
            return Err(ProtocolError::UnknownAddress(msg.addr.clone()));
        }
        let wrong = || ProtocolError::WrongArguments {
            address: address::TIMECODE,
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
