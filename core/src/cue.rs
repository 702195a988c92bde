//! The cue wire format: `/cue/...` and `/trigger/...` in, `/ack` and `/status` out, and the
//! checks every cue receiver makes (packet shape, allow-list, token, arguments, retries).
//!
//! The full schema is in `docs/PROTOCOL.md` ("Cues and triggers"); the addresses and `/status`
//! counter names are in [`crate::protocol`]. The argument lists and ack statuses here are public
//! API too, frozen by `core/tests/protocol.rs`.
//!
//! Nothing here does I/O or reads a clock: receivers pass the time in. The plugin's cue thread
//! and `osc-timecode serve` both use it; the audio thread never does (rosc types allocate).

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::protocol::address;

/// Bytes of padding [`status_query`] adds: more than any `/status` reply (about 600 bytes).
pub const STATUS_PADDING: usize = 1024;

/// Bundles may nest this deep (a bare message is depth 0, a bundle holding it depth 1).
pub const MAX_BUNDLE_DEPTH: usize = 8;
/// A packet may hold at most this many messages.
pub const MAX_MESSAGES_PER_PACKET: usize = 64;
/// An address pattern may match at most this many mapped addresses.
pub const MAX_FANOUT: usize = 8;
/// The largest UDP payload: receive buffers are this big, so nothing is ever truncated unseen.
pub const MAX_PACKET: usize = 65_536;
/// A message may carry at most this many arguments (a cue has at most three, a `/status` reply
/// 2 × its counters, `/sync/timecode` nine).
pub const MAX_ARGUMENTS: usize = 64;

/// Why a packet was dropped before any of its messages was looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Not OSC 1.0 (truncated, bad padding, bad sizes, non-UTF-8 address, …).
    #[error("malformed OSC packet: {0}")]
    Malformed(String),
    /// Bundles nested deeper than [`MAX_BUNDLE_DEPTH`].
    #[error("bundles nested deeper than {MAX_BUNDLE_DEPTH}")]
    TooDeep,
    /// More than [`MAX_MESSAGES_PER_PACKET`] messages.
    #[error("more than {MAX_MESSAGES_PER_PACKET} messages in one packet")]
    TooManyMessages,
    /// A message holds an OSC array (`[` … `]` in its type tags). Nothing we read has arrays,
    /// and decoding them recurses (rosc's decoder, derived `Debug`, drop), so they are refused
    /// before anything looks inside.
    #[error("OSC arrays are not accepted")]
    Array,
    /// A message has more than [`MAX_ARGUMENTS`] arguments.
    #[error("more than {MAX_ARGUMENTS} arguments in one message")]
    TooManyArguments,
}

/// One message of a packet with the timetag that applies to it: the innermost bundle's, `None`
/// for a bare message or the timetag "immediately" (`0x00000000_00000001`).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// When the message should take effect; `None`: now.
    pub timetag: Option<OscTime>,
    /// The message.
    pub msg: OscMessage,
}

/// Decodes a datagram into its messages, refusing malformed, too deep or too large packets, and
/// arrays, before rosc (which recurses without a limit) ever sees them.
pub fn decode_packet(bytes: &[u8]) -> Result<Vec<Received>, PacketError> {
    check_shape(bytes, MAX_BUNDLE_DEPTH, MAX_MESSAGES_PER_PACKET)?;
    let (rest, packet) = rosc::decoder::decode_udp(bytes).map_err(|e| PacketError::Malformed(format!("{e:?}")))?;
    if !rest.is_empty() {
        return Err(PacketError::Malformed(format!("{} bytes after the packet", rest.len())));
    }
    let mut out = Vec::new();
    flatten(packet, None, &mut out);
    Ok(out)
}

/// Appends `packet`'s messages to `out`, each with its innermost timetag.
fn flatten(packet: OscPacket, timetag: Option<OscTime>, out: &mut Vec<Received>) {
    match packet {
        OscPacket::Message(msg) => out.push(Received { timetag, msg }),
        OscPacket::Bundle(OscBundle { timetag: tag, content }) => {
            let tag = (tag != IMMEDIATELY).then_some(tag);
            for p in content {
                flatten(p, tag, out);
            }
        }
    }
}

/// The OSC timetag meaning "immediately".
pub const IMMEDIATELY: OscTime = OscTime { seconds: 0, fractional: 1 };

/// Walks the bundle structure without recursion and checks, before anything decodes it, that
/// the packet is at most `max_depth` bundles deep and holds at most `max_messages` messages, that
/// every element size is a positive multiple of 4 inside its parent, and that no message has an
/// array or more than [`MAX_ARGUMENTS`] arguments. Work is linear in the packet's length.
pub fn check_shape(bytes: &[u8], max_depth: usize, max_messages: usize) -> Result<(), PacketError> {
    const BUNDLE_TAG: &[u8] = b"#bundle\0";
    let malformed = |what: &str| Err(PacketError::Malformed(what.to_owned()));
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return malformed("length is not a positive multiple of 4");
    }
    // A stack of (end of the enclosing bundle's content, cursor within it), at most `max_depth`.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut messages = 0usize;
    // The element being looked at: [start, end).
    let (mut start, mut end) = (0usize, bytes.len());
    loop {
        let element = &bytes[start..end];
        if element.starts_with(BUNDLE_TAG) {
            if stack.len() >= max_depth {
                return Err(PacketError::TooDeep);
            }
            if element.len() < 16 {
                return malformed("bundle shorter than its header");
            }
            stack.push((end, start + 16));
        } else {
            messages += 1;
            if messages > max_messages {
                return Err(PacketError::TooManyMessages);
            }
            check_type_tags(element)?;
        }
        // Next element: the next one in the innermost bundle that has any left.
        loop {
            let Some(&(parent_end, cursor)) = stack.last() else { return Ok(()) };
            if cursor == parent_end {
                stack.pop();
                continue;
            }
            let Some(size_bytes) = bytes.get(cursor..cursor + 4) else { return malformed("truncated bundle") };
            let size = u32::from_be_bytes([size_bytes[0], size_bytes[1], size_bytes[2], size_bytes[3]]) as usize;
            let element_start = cursor + 4;
            if size == 0 || !size.is_multiple_of(4) || size > parent_end - element_start {
                return malformed("bundle element size does not fit its bundle");
            }
            if let Some(top) = stack.last_mut() {
                top.1 = element_start + size;
            }
            (start, end) = (element_start, element_start + size);
            break;
        }
    }
}

/// Checks one message's type tag string (after its NUL-padded address): no array, at most
/// [`MAX_ARGUMENTS`] arguments. A message without type tags (OSC 1.0 allows it) has none to check.
fn check_type_tags(message: &[u8]) -> Result<(), PacketError> {
    let Some(address_nul) = message.iter().position(|&b| b == 0) else {
        return Err(PacketError::Malformed("address is not terminated".to_owned()));
    };
    let tags_start = (address_nul + 4) & !3;
    let Some(tags) = message.get(tags_start..).filter(|t| t.first() == Some(&b',')) else { return Ok(()) };
    let tags = &tags[1..tags.iter().position(|&b| b == 0).unwrap_or(tags.len())];
    if tags.iter().any(|&t| t == b'[' || t == b']') {
        return Err(PacketError::Array);
    }
    if tags.len() > MAX_ARGUMENTS {
        return Err(PacketError::TooManyArguments);
    }
    Ok(())
}

/// A cue's VALUE argument, as a MIDI 7-bit value or "the mapping's own".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueValue {
    /// Absent or nil: the mapped event's configured value.
    Default,
    /// 0–127 (an `i`, or an `f` 0.0–1.0 × 127 rounded).
    Midi(u8),
}

/// A cue's ID argument, echoed in the ack with the type it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CueId {
    /// Sent as `i`.
    Int(i32),
    /// Sent as `h`.
    Long(i64),
}

impl CueId {
    /// The id as an OSC argument of the type it came as.
    pub fn to_osc(self) -> OscType {
        match self {
            Self::Int(i) => OscType::Int(i),
            Self::Long(h) => OscType::Long(h),
        }
    }

    /// The numeric value (for keys and display).
    pub fn value(self) -> i64 {
        match self {
            Self::Int(i) => i64::from(i),
            Self::Long(h) => h,
        }
    }
}

/// A cue's arguments once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CueArgs {
    /// Velocity or controller value.
    pub value: CueValue,
    /// The sender's id for retries and acks.
    pub id: Option<CueId>,
}

/// Why a message's arguments were refused. `MissingToken` and `BadToken` get no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// A token is configured and the first argument is not a string.
    #[error("missing token")]
    MissingToken,
    /// A token is configured and the first argument is a different string.
    #[error("wrong token")]
    BadToken,
    /// VALUE is not `i` 0–127, `f` 0.0–1.0 or `N`.
    #[error("VALUE must be an int 0-127, a float 0.0-1.0 or nil, got {0}")]
    BadValue(String),
    /// ID is not `i` or `h`.
    #[error("ID must be an int or int64, got {0}")]
    BadId(String),
    /// More than TOKEN, VALUE and ID.
    #[error("too many arguments ({0})")]
    TooMany(usize),
}

impl ArgError {
    /// A token failure: drop without a reply.
    pub fn is_token(&self) -> bool {
        matches!(self, Self::MissingToken | Self::BadToken)
    }
}

/// Checks the TOKEN argument (when `token` is set) and returns the arguments after it.
pub fn strip_token<'a>(args: &'a [OscType], token: Option<&str>) -> Result<&'a [OscType], ArgError> {
    let Some(token) = token else { return Ok(args) };
    match args.split_first() {
        Some((OscType::String(given), rest)) if constant_time_eq(given.as_bytes(), token.as_bytes()) => Ok(rest),
        Some((OscType::String(_), _)) => Err(ArgError::BadToken),
        _ => Err(ArgError::MissingToken),
    }
}

/// Compares without an early exit on the first differing byte, so a sender cannot find the
/// token byte by byte from reply timing (there are no replies to bad tokens either).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Splits `[TOKEN] [VALUE] [ID]`, the arguments every cue address takes (`/cue`, `/trigger`, the
/// plugin's `/macro`): checks the token, reads the ID, and returns the VALUE argument for the
/// caller's own reading ([`parse_cue_args`] reads it as a MIDI value).
pub fn split_cue_args<'a>(
    args: &'a [OscType],
    token: Option<&str>,
) -> Result<(Option<&'a OscType>, Option<CueId>), ArgError> {
    let rest = strip_token(args, token)?;
    if rest.len() > 2 {
        return Err(ArgError::TooMany(args.len()));
    }
    let id = match rest.get(1) {
        None => None,
        Some(OscType::Int(i)) => Some(CueId::Int(*i)),
        Some(OscType::Long(h)) => Some(CueId::Long(*h)),
        Some(other) => return Err(ArgError::BadId(describe(other))),
    };
    Ok((rest.first(), id))
}

/// Parses `[TOKEN] [VALUE] [ID]`.
pub fn parse_cue_args(args: &[OscType], token: Option<&str>) -> Result<CueArgs, ArgError> {
    let (value, id) = split_cue_args(args, token)?;
    let value = match value {
        None | Some(OscType::Nil) => CueValue::Default,
        Some(OscType::Int(i)) if (0..=127).contains(i) => CueValue::Midi(*i as u8),
        Some(OscType::Float(f)) if (0.0..=1.0).contains(f) => CueValue::Midi((f * 127.0).round() as u8),
        Some(other) => return Err(ArgError::BadValue(describe(other))),
    };
    Ok(CueArgs { value, id })
}

/// A short description of an argument for error messages: numbers as they are, anything else by
/// its type (never its contents).
pub fn describe(arg: &OscType) -> String {
    match arg {
        OscType::Int(i) => format!("int {i}"),
        OscType::Float(f) => format!("float {f}"),
        OscType::Long(h) => format!("int64 {h}"),
        OscType::Double(d) => format!("double {d}"),
        OscType::String(_) => "a string".to_owned(),
        // The tag only: `Debug` would recurse into whatever a sender nested.
        other => format!("an argument of type '{}'", crate::protocol::type_tag(other)),
    }
}

/// What became of a cue, as told in `/ack`. The names are public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckStatus {
    /// Queued for the host.
    Ok,
    /// A retry of an ID already applied: not applied again.
    Duplicate,
    /// The address matches no mapped address.
    Unmapped,
    /// The arguments are not `[TOKEN] [VALUE] [ID]`.
    BadArgument,
    /// The pattern matches more than [`MAX_FANOUT`] addresses.
    TooBroad,
    /// The timetag is more than an hour away.
    TooFarAhead,
    /// Too many cues are waiting for their time.
    ScheduleFull,
    /// The queue to the audio thread is full.
    QueueFull,
}

impl AckStatus {
    /// Every status, for tests and docs.
    pub const ALL: [Self; 8] = [
        Self::Ok,
        Self::Duplicate,
        Self::Unmapped,
        Self::BadArgument,
        Self::TooBroad,
        Self::TooFarAhead,
        Self::ScheduleFull,
        Self::QueueFull,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Duplicate => "duplicate",
            Self::Unmapped => "unmapped",
            Self::BadArgument => "bad_argument",
            Self::TooBroad => "too_broad",
            Self::TooFarAhead => "too_far_ahead",
            Self::ScheduleFull => "schedule_full",
            Self::QueueFull => "queue_full",
        }
    }

    /// The status with this wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether the cue was (or, for a duplicate, had already been) accepted.
    pub fn accepted(self) -> bool {
        matches!(self, Self::Ok | Self::Duplicate)
    }
}

/// `/ack ADDRESS ID STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// The address (pattern) as received.
    pub address: String,
    /// The cue's ID, if it had one.
    pub id: Option<CueId>,
    /// What became of it.
    pub status: AckStatus,
}

impl Ack {
    /// The OSC message.
    pub fn to_osc(&self) -> OscMessage {
        OscMessage {
            addr: address::ACK.to_owned(),
            args: vec![
                OscType::String(self.address.clone()),
                self.id.map_or(OscType::Nil, CueId::to_osc),
                OscType::String(self.status.as_str().to_owned()),
            ],
        }
    }

    /// Reads an ack; `None` if `msg` is not one.
    pub fn from_osc(msg: &OscMessage) -> Option<Self> {
        if msg.addr != address::ACK {
            return None;
        }
        match msg.args.as_slice() {
            [OscType::String(address), id, OscType::String(status)] => Some(Self {
                address: address.clone(),
                id: match id {
                    OscType::Nil => None,
                    OscType::Int(i) => Some(CueId::Int(*i)),
                    OscType::Long(h) => Some(CueId::Long(*h)),
                    _ => return None,
                },
                status: AckStatus::from_name(status)?,
            }),
            _ => None,
        }
    }
}

/// A `/status` query that pays for its answer: `[TOKEN]` then a blob of [`STATUS_PADDING`]
/// zero bytes, which receivers ignore.
pub fn status_query(token: Option<&str>) -> OscMessage {
    let mut args: Vec<OscType> = token.map(|t| OscType::String(t.to_owned())).into_iter().collect();
    args.push(OscType::Blob(vec![0; STATUS_PADDING]));
    OscMessage { addr: address::STATUS.to_owned(), args }
}

/// The `/status` reply: name/count pairs (`,shsh…`).
pub fn status_to_osc(counters: &[(&str, u64)]) -> OscMessage {
    let args = counters
        .iter()
        .flat_map(|&(name, n)| [OscType::String(name.to_owned()), OscType::Long(i64::try_from(n).unwrap_or(i64::MAX))])
        .collect();
    OscMessage { addr: address::STATUS.to_owned(), args }
}

/// Reads a `/status` reply; `None` if `msg` is not one.
pub fn status_from_osc(msg: &OscMessage) -> Option<Vec<(String, u64)>> {
    if msg.addr != address::STATUS || !msg.args.len().is_multiple_of(2) {
        return None;
    }
    msg.args
        .chunks(2)
        .map(|pair| match pair {
            [OscType::String(name), OscType::Long(n)] => Some((name.clone(), u64::try_from(*n).ok()?)),
            _ => None,
        })
        .collect()
}

/// Senders allowed to send cues: addresses and CIDR ranges. IPv4-mapped IPv6 senders (on a
/// dual-stack socket) are matched as the IPv4 address they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// An allow-list of these ranges (an address is a /32 or /128 range).
    pub fn new(ranges: Vec<IpNet>) -> Self {
        Self(ranges)
    }

    /// The default: loopback only (`127.0.0.0/8`, `::1/128`).
    pub fn loopback() -> Self {
        Self(default_allow())
    }

    /// Whether `ip` may send.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// `127.0.0.0/8` and `::1/128`.
pub fn default_allow() -> Vec<IpNet> {
    vec![
        IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default()),
        IpNet::V6(ipnet::Ipv6Net::new(std::net::Ipv6Addr::LOCALHOST, 128).unwrap_or_default()),
    ]
}

/// Parses an allow-list entry: `10.0.0.0/8`, `192.168.1.20` (one host), `::1`.
pub fn parse_allow_entry(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR range (like 10.0.0.0/8)"))
}

/// Remembers which IDs were applied recently, so UDP retries are applied once: up to
/// `capacity` keys, each forgotten `window` after it was first seen (or when the oldest must
/// make room). Memory is bounded by `capacity`.
#[derive(Debug)]
pub struct Dedupe<K> {
    /// How long a key is remembered.
    window: Duration,
    /// At most this many keys.
    capacity: usize,
    /// Keys in the order they were first seen, with when.
    order: VecDeque<(K, Instant)>,
    /// The same keys, for lookup.
    seen: HashSet<K>,
}

impl<K: Clone + Eq + Hash> Dedupe<K> {
    /// An empty window.
    pub fn new(window: Duration, capacity: usize) -> Self {
        Self { window, capacity: capacity.max(1), order: VecDeque::new(), seen: HashSet::new() }
    }

    /// Changes the window length (settings changed); keys already seen keep their time.
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Forgets keys older than the window at `now`.
    fn expire(&mut self, now: Instant) {
        while let Some((key, at)) = self.order.front() {
            if now.saturating_duration_since(*at) < self.window {
                break;
            }
            self.seen.remove(key);
            self.order.pop_front();
        }
    }

    /// Whether `key` was recorded within the window before `now`.
    pub fn contains(&mut self, key: &K, now: Instant) -> bool {
        self.expire(now);
        self.seen.contains(key)
    }

    /// Records `key` as applied at `now`.
    pub fn insert(&mut self, key: K, now: Instant) {
        self.expire(now);
        if self.window.is_zero() || self.seen.contains(&key) {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some((old, _)) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.clone());
        self.order.push_back((key, now));
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rosc::encoder::encode;

    fn msg(addr: &str, args: Vec<OscType>) -> OscPacket {
        OscPacket::Message(OscMessage { addr: addr.to_owned(), args })
    }

    fn bundle(tag: OscTime, content: Vec<OscPacket>) -> OscPacket {
        OscPacket::Bundle(OscBundle { timetag: tag, content })
    }

    /// `depth` bundles around one message, built by hand (rosc's encoder recurses too).
    fn nested(depth: usize) -> Vec<u8> {
        let mut bytes = encode(&msg("/cue/1", vec![])).unwrap();
        for _ in 0..depth {
            let mut outer = b"#bundle\0\0\0\0\x05\0\0\0\0".to_vec();
            outer.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            outer.extend_from_slice(&bytes);
            bytes = outer;
        }
        bytes
    }

    #[test]
    fn messages_take_the_innermost_timetag_and_immediately_is_none() {
        let t1 = OscTime { seconds: 100, fractional: 0 };
        let t2 = OscTime { seconds: 200, fractional: 7 };
        let p = bundle(
            t1,
            vec![msg("/a", vec![]), bundle(t2, vec![msg("/b", vec![])]), bundle(IMMEDIATELY, vec![msg("/c", vec![])])],
        );
        let got = decode_packet(&encode(&p).unwrap()).unwrap();
        let tags: Vec<(&str, Option<OscTime>)> = got.iter().map(|r| (r.msg.addr.as_str(), r.timetag)).collect();
        assert_eq!(tags, vec![("/a", Some(t1)), ("/b", Some(t2)), ("/c", None)]);
        assert_eq!(decode_packet(&encode(&msg("/x", vec![])).unwrap()).unwrap()[0].timetag, None);
    }

    #[test]
    fn nesting_and_message_count_are_bounded() {
        assert!(decode_packet(&nested(MAX_BUNDLE_DEPTH)).is_ok());
        assert_eq!(decode_packet(&nested(MAX_BUNDLE_DEPTH + 1)), Err(PacketError::TooDeep));
        assert_eq!(decode_packet(&nested(10_000)), Err(PacketError::TooDeep));
        let many = |n| bundle(IMMEDIATELY, (0..n).map(|_| msg("/cue/1", vec![])).collect());
        assert_eq!(decode_packet(&encode(&many(MAX_MESSAGES_PER_PACKET)).unwrap()).unwrap().len(), 64);
        assert_eq!(
            decode_packet(&encode(&many(MAX_MESSAGES_PER_PACKET + 1)).unwrap()),
            Err(PacketError::TooManyMessages)
        );
    }

    /// `/cue/1` with arrays nested `depth` deep (`,[[[…]]]`), built by hand: rosc's encoder
    /// recurses, and this is what a hostile sender writes in a few lines.
    pub(crate) fn nested_array_message(depth: usize) -> Vec<u8> {
        let mut bytes = b"/cue/1\0\0".to_vec();
        bytes.push(b',');
        bytes.extend(std::iter::repeat_n(b'[', depth));
        bytes.extend(std::iter::repeat_n(b']', depth));
        bytes.push(0);
        while !bytes.len().is_multiple_of(4) {
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn arrays_and_argument_floods_are_refused_before_decoding() {
        // About 8 KB and 12 KB of nesting: rosc's decoder (and `Debug`, and drop) would recurse
        // thousands deep. Refused from the type tags alone, bare or inside a bundle.
        for depth in [1, 4000, 6000, 32_000] {
            let bare = nested_array_message(depth);
            assert_eq!(decode_packet(&bare), Err(PacketError::Array), "depth {depth}");
            let mut in_bundle = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
            in_bundle.extend_from_slice(&(bare.len() as u32).to_be_bytes());
            in_bundle.extend_from_slice(&bare);
            assert_eq!(decode_packet(&in_bundle), Err(PacketError::Array), "depth {depth} in a bundle");
        }
        // An array after ordinary arguments is refused too; a flat argument list is only limited.
        let mixed = encode(&msg(
            "/cue/1",
            vec![OscType::Int(1), OscType::Array(rosc::OscArray { content: vec![OscType::Int(2)] })],
        ))
        .unwrap();
        assert_eq!(decode_packet(&mixed), Err(PacketError::Array));
        let args = |n| encode(&msg("/cue/1", vec![OscType::Nil; n])).unwrap();
        assert_eq!(decode_packet(&args(MAX_ARGUMENTS)).unwrap()[0].msg.args.len(), MAX_ARGUMENTS);
        assert_eq!(decode_packet(&args(MAX_ARGUMENTS + 1)), Err(PacketError::TooManyArguments));
        // A message without type tags (OSC 1.0 allows it) and an unterminated address.
        assert!(check_shape(b"/cue", 8, 64).is_err());
        // Describing an argument never looks inside it.
        assert_eq!(
            describe(&OscType::Array(rosc::OscArray { content: vec![OscType::Nil] })),
            "an argument of type '['"
        );
    }

    #[test]
    fn truncated_absurd_and_garbage_packets_are_malformed() {
        let good = encode(&bundle(IMMEDIATELY, vec![msg("/cue/1", vec![OscType::Int(5)])])).unwrap();
        for cut in [4, 8, 12, 20, good.len() - 4] {
            assert!(matches!(decode_packet(&good[..cut]), Err(PacketError::Malformed(_))), "cut at {cut}");
        }
        // Cut after the header, it is an empty bundle: valid OSC, no messages.
        assert_eq!(decode_packet(&good[..16]), Ok(vec![]));
        let mut absurd = good.clone();
        absurd[16..20].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        assert!(matches!(decode_packet(&absurd), Err(PacketError::Malformed(_))));
        let mut non_utf8 = encode(&msg("/cue/abc", vec![])).unwrap();
        non_utf8[5] = 0xff;
        assert!(matches!(decode_packet(&non_utf8), Err(PacketError::Malformed(_))));
        assert!(decode_packet(&[]).is_err());
        assert!(decode_packet(&[1, 2, 3]).is_err());
        // Pseudo-random garbage never panics.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode_packet(&bytes);
            let mut b = b"#bundle\0".to_vec();
            b.extend_from_slice(&bytes);
            let _ = decode_packet(&b);
        }
    }

    #[test]
    fn arguments_token_value_id() {
        use OscType::*;
        let p = |args: Vec<OscType>, token| parse_cue_args(&args, token);
        assert_eq!(p(vec![], None), Ok(CueArgs { value: CueValue::Default, id: None }));
        assert_eq!(p(vec![Int(100)], None), Ok(CueArgs { value: CueValue::Midi(100), id: None }));
        assert_eq!(p(vec![Float(0.5)], None).unwrap().value, CueValue::Midi(64));
        assert_eq!(p(vec![Float(1.0)], None).unwrap().value, CueValue::Midi(127));
        assert_eq!(p(vec![Nil, Int(7)], None).unwrap(), CueArgs { value: CueValue::Default, id: Some(CueId::Int(7)) });
        assert_eq!(p(vec![Int(0), Long(1 << 40)], None).unwrap().id, Some(CueId::Long(1 << 40)));
        assert!(matches!(p(vec![Int(128)], None), Err(ArgError::BadValue(_))));
        assert!(matches!(p(vec![Int(-1)], None), Err(ArgError::BadValue(_))));
        assert!(matches!(p(vec![Float(1.5)], None), Err(ArgError::BadValue(_))));
        assert!(matches!(p(vec![Float(f32::NAN)], None), Err(ArgError::BadValue(_))));
        assert!(matches!(p(vec![String("go".into())], None), Err(ArgError::BadValue(_))));
        assert!(matches!(p(vec![Int(1), Float(2.0)], None), Err(ArgError::BadId(_))));
        assert!(matches!(p(vec![Int(1), Int(2), Int(3)], None), Err(ArgError::TooMany(3))));
        let tok = Some("s3cret");
        assert_eq!(p(vec![String("s3cret".into()), Int(9)], tok).unwrap().value, CueValue::Midi(9));
        assert_eq!(p(vec![String("s3cre".into())], tok), Err(ArgError::BadToken));
        assert_eq!(p(vec![String("s3cret!".into())], tok), Err(ArgError::BadToken));
        assert_eq!(p(vec![Int(9)], tok), Err(ArgError::MissingToken));
        assert_eq!(p(vec![], tok), Err(ArgError::MissingToken));
        assert!(p(vec![], tok).unwrap_err().is_token());
    }

    #[test]
    fn ack_and_status_round_trip() {
        for status in AckStatus::ALL {
            for id in [None, Some(CueId::Int(-3)), Some(CueId::Long(1 << 50))] {
                let ack = Ack { address: "/cue/{1,2}".into(), id, status };
                assert_eq!(Ack::from_osc(&ack.to_osc()), Some(ack));
            }
        }
        let counters = [("received", 3u64), ("applied", 2)];
        let back = status_from_osc(&status_to_osc(&counters)).unwrap();
        assert_eq!(back, vec![("received".to_owned(), 3), ("applied".to_owned(), 2)]);
        assert_eq!(Ack::from_osc(&OscMessage { addr: "/ack".into(), args: vec![] }), None);
    }

    #[test]
    fn allow_list_matches_cidr_and_mapped_v4() {
        let allow = AllowList::loopback();
        assert!(allow.allows("127.0.0.1".parse().unwrap()));
        assert!(allow.allows("127.9.9.9".parse().unwrap()));
        assert!(allow.allows("::1".parse().unwrap()));
        assert!(allow.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allow.allows("10.0.0.1".parse().unwrap()));
        let lan =
            AllowList::new(vec![parse_allow_entry("192.168.1.0/24").unwrap(), parse_allow_entry("10.1.2.3").unwrap()]);
        assert!(lan.allows("192.168.1.77".parse().unwrap()));
        assert!(lan.allows("10.1.2.3".parse().unwrap()));
        assert!(!lan.allows("10.1.2.4".parse().unwrap()));
        assert!(!lan.allows("127.0.0.1".parse().unwrap()));
        assert!(parse_allow_entry("10.0.0.0/33").is_err());
        assert!(parse_allow_entry("example.com").is_err());
    }

    #[test]
    fn dedupe_window_and_capacity() {
        let t0 = Instant::now();
        let mut d = Dedupe::new(Duration::from_secs(10), 3);
        assert!(!d.contains(&1, t0));
        d.insert(1, t0);
        assert!(d.contains(&1, t0 + Duration::from_secs(9)));
        assert!(!d.contains(&1, t0 + Duration::from_secs(10)), "forgotten after the window");
        for k in 0..5 {
            d.insert(k, t0 + Duration::from_secs(20));
        }
        assert_eq!(d.len(), 3, "bounded");
        assert!(!d.contains(&0, t0 + Duration::from_secs(20)) && d.contains(&4, t0 + Duration::from_secs(20)));
        let mut off = Dedupe::new(Duration::ZERO, 3);
        off.insert(1, t0);
        assert!(!off.contains(&1, t0));
    }
}
