//! The sender's side of the cue input (docs/PROTOCOL.md, "Cues and triggers (senders →
//! plugin)"): a loopback [`CueSender`] that sends `/cue/...` and `/trigger/...` messages and reads
//! the plugin's `/ack` and `/status` replies, builders for the packets the plugin must refuse,
//! a [`flood`] of valid and broken packets, and the arithmetic that says at which sample a cue
//! must land.
//!
//! Network safety: every socket here binds a loopback address (`127.0.0.0/8` or `::1`), and
//! every target is checked to be loopback before anything is sent.
//!
//! Readiness: the plugin binds its listening socket on a thread of its own after `activate()`, so
//! a test first calls [`CueSender::wait_ready`] (`/status` every [`READY_POLL`] until one is
//! answered). `/status` queries go out from a fresh socket each time, so a late answer to an
//! earlier query can never be taken for the answer to a later one, and they never mix with the
//! `/ack`s on the sender's own socket.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::FrameRate;
use osc_timecode_core::protocol::{address, status, timetag_from_system_time};
use osc_timecode_core::timecode::{frame_at_sample, frame_start_sample};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};
use serde_json::{Map, Value};

use crate::clap::BlockRecord;

/// The OSC timetag meaning "immediately" (`1`).
pub const IMMEDIATELY: OscTime = OscTime { seconds: 0, fractional: 1 };

/// How long to wait for an expected reply (replies come within milliseconds; this only bounds a
/// failing test).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the plugin's listening socket after `activate()`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `/status` query waits for its answer before it is sent again.
pub const STATUS_RETRY: Duration = Duration::from_millis(200);
/// Interval between `/status` queries while waiting for the plugin to listen.
pub const READY_POLL: Duration = Duration::from_millis(20);
/// How long to listen for a reply that must not come.
pub const NO_REPLY_WINDOW: Duration = Duration::from_millis(300);

/// A loopback address with a port that was free a moment ago (bound to `127.0.0.1:0`, read,
/// released), for a plugin to listen on: each test gets its own, so tests run in parallel.
pub fn free_loopback_addr() -> SocketAddr {
    free_addr(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Like [`free_loopback_addr`] on `::1`, or `None` when the machine has no IPv6 loopback.
pub fn free_loopback_addr_v6() -> Option<SocketAddr> {
    let socket = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).ok()?;
    socket.local_addr().ok()
}

/// A socket on `ip` at a port the system picks, never `target`'s: [`free_loopback_addr`] gives
/// its port back before the plugin binds it, so the system may hand that same port to the next
/// socket, which would then send to itself (a sender waiting for the plugin read its own
/// `/status` query back once, in CI).
fn bind_other_than(ip: IpAddr, target: SocketAddr, what: &str) -> UdpSocket {
    let bind = || UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("could not bind {what} on {ip}: {e}"));
    let first = bind();
    if first.local_addr().ok() != Some(target) {
        return first;
    }
    // Bound while `first` holds the target's port, so the system picks another.
    bind()
}

fn free_addr(ip: IpAddr) -> SocketAddr {
    let socket = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("could not bind {ip}:0 to find a free port: {e}"));
    socket.local_addr().unwrap_or_else(|e| panic!("could not read the local address of a socket on {ip}: {e}"))
}

/// Panics unless `addr` is a loopback address: tests never send anywhere else.
pub fn assert_loopback(addr: SocketAddr, what: &str) {
    assert!(addr.ip().is_loopback(), "tests only use loopback; {what} is {addr}");
}

/// The `cues` settings object: `{"listen": listen}` plus the entries of `extra` (a JSON object,
/// e.g. `{"token": "s3cret", "map": [...]}`; `extra` wins).
pub fn cues_settings(listen: SocketAddr, extra: Value) -> Value {
    assert_loopback(listen, "cues.listen");
    let Value::Object(extra) = extra else { panic!("the extra cue settings must be a JSON object, got {extra}") };
    let mut cues = Map::new();
    cues.insert("listen".into(), Value::String(listen.to_string()));
    cues.extend(extra);
    Value::Object(cues)
}

/// Puts `cues` (see [`cues_settings`]) into a plugin's `settings` object.
pub fn set_cues(settings: &mut Map<String, Value>, cues: Value) {
    if let Some(listen) = cues.get("listen") {
        let addr: SocketAddr = listen
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("cues.listen {listen} is not a socket address"));
        assert_loopback(addr, "cues.listen");
    }
    settings.insert("cues".into(), cues);
}

/// A cue's VALUE argument (velocity or controller value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CueValue {
    /// `i`, 0–127.
    Int(i32),
    /// `f`, 0.0–1.0 (× 127, rounded).
    Float(f32),
    /// `N`: the mapping's own value.
    Nil,
}

impl CueValue {
    fn to_osc(self) -> OscType {
        match self {
            CueValue::Int(v) => OscType::Int(v),
            CueValue::Float(v) => OscType::Float(v),
            CueValue::Nil => OscType::Nil,
        }
    }
}

/// A cue's ID argument, echoed in its `/ack` with the same type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CueId {
    /// `i`.
    Int(i32),
    /// `h`.
    Long(i64),
}

impl CueId {
    fn to_osc(self) -> OscType {
        match self {
            CueId::Int(v) => OscType::Int(v),
            CueId::Long(v) => OscType::Long(v),
        }
    }
}

/// The argument list `[TOKEN] [VALUE] [ID]`. An ID needs a VALUE before it: with `id` and no
/// `value`, VALUE is sent as `N` (the mapping's value).
pub fn cue_args(token: Option<&str>, value: Option<CueValue>, id: Option<CueId>) -> Vec<OscType> {
    let mut args = Vec::with_capacity(3);
    if let Some(token) = token {
        args.push(OscType::String(token.to_owned()));
    }
    match (value, id) {
        (Some(v), _) => args.push(v.to_osc()),
        (None, Some(_)) => args.push(OscType::Nil),
        (None, None) => {}
    }
    if let Some(id) = id {
        args.push(id.to_osc());
    }
    args
}

/// A bare OSC message.
pub fn message(address: &str, args: Vec<OscType>) -> OscPacket {
    OscPacket::Message(OscMessage { addr: address.to_owned(), args })
}

/// A bundle.
pub fn bundle(timetag: OscTime, content: Vec<OscPacket>) -> OscPacket {
    OscPacket::Bundle(OscBundle { timetag, content })
}

/// `inner` wrapped in `depth` bundles, all timetagged `timetag` (depth 1 is a plain bundle).
pub fn nested(depth: usize, timetag: OscTime, inner: OscPacket) -> OscPacket {
    (0..depth).fold(inner, |p, _| bundle(timetag, vec![p]))
}

/// The OSC timetag of a wall-clock instant (core's conversion, which the plugin uses too).
pub fn timetag(at: SystemTime) -> OscTime {
    timetag_from_system_time(at)
}

/// Encodes a packet (panics on the few things rosc cannot encode, which tests never build).
pub fn encode(packet: &OscPacket) -> Vec<u8> {
    rosc::encoder::encode(packet).unwrap_or_else(|e| panic!("could not encode {packet:?}: {e}"))
}

/// A bundle whose one element claims `size` bytes, followed by only a few: a reader that trusts
/// the size would read past the packet (or try to allocate it).
pub fn bundle_with_element_size(size: u32) -> Vec<u8> {
    let mut bytes = b"#bundle\0".to_vec();
    bytes.extend_from_slice(&0u32.to_be_bytes());
    bytes.extend_from_slice(&1u32.to_be_bytes());
    bytes.extend_from_slice(&size.to_be_bytes());
    bytes.extend_from_slice(b"/cue/1\0\0,\0\0\0");
    bytes
}

/// A message whose address is not UTF-8 (`/cue/` then bytes `ff fe`), no arguments.
pub fn non_utf8_address() -> Vec<u8> {
    let mut bytes = b"/cue/\xff\xfe\0".to_vec();
    bytes.extend_from_slice(b",\0\0\0");
    bytes
}

/// One `/ack ADDRESS ID STATUS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// ADDRESS: the address (pattern) as the plugin received it.
    pub address: String,
    /// ID: `None` when the plugin sent `N` (no ID was sent).
    pub id: Option<CueId>,
    /// STATUS: `ok`, `duplicate`, `unmapped`, `bad_argument`, …
    pub status: String,
    /// Where the reply came from (must be the plugin's listening socket).
    pub from: SocketAddr,
}

impl Ack {
    /// Reads an `/ack` message, checking its type tags are `,s?s` with `?` one of `i`, `h`, `N`.
    pub fn from_message(msg: &OscMessage, from: SocketAddr) -> Result<Self, String> {
        if msg.addr != address::ACK {
            return Err(format!("expected {}, got {msg:?}", address::ACK));
        }
        match msg.args.as_slice() {
            [OscType::String(address), id, OscType::String(status)] => {
                let id = match id {
                    OscType::Int(v) => Some(CueId::Int(*v)),
                    OscType::Long(v) => Some(CueId::Long(*v)),
                    OscType::Nil => None,
                    other => return Err(format!("/ack ID must be i, h or N, got {other:?}")),
                };
                Ok(Self { address: address.clone(), id, status: status.clone(), from })
            }
            _ => Err(format!("/ack must have the type tags ,s?s, got {:?}", msg.args)),
        }
    }
}

/// One `/status` reply: the name/count pairs in the order they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `(name, count)` pairs.
    pub counters: Vec<(String, i64)>,
}

impl Status {
    /// Reads a `/status` reply, checking its type tags are `,shsh…`.
    pub fn from_message(msg: &OscMessage) -> Result<Self, String> {
        if msg.addr != address::STATUS {
            return Err(format!("expected {}, got {msg:?}", address::STATUS));
        }
        if !msg.args.len().is_multiple_of(2) {
            return Err(format!("/status needs name/count pairs, got {} arguments", msg.args.len()));
        }
        let counters = msg
            .args
            .chunks(2)
            .map(|pair| match pair {
                [OscType::String(name), OscType::Long(count)] => Ok((name.clone(), *count)),
                other => Err(format!("/status pairs must be s h, got {other:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { counters })
    }

    /// A counter, or `None` when the reply does not have it.
    pub fn try_get(&self, name: &str) -> Option<i64> {
        self.counters.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }

    /// A counter; panics with the whole reply when it is missing.
    pub fn get(&self, name: &str) -> i64 {
        self.try_get(name).unwrap_or_else(|| panic!("/status has no {name:?}: {self}"))
    }

    /// The sum of every `dropped_*` counter.
    pub fn dropped(&self) -> i64 {
        self.counters.iter().filter(|(n, _)| n.starts_with(status::DROPPED_PREFIX)).map(|(_, c)| c).sum()
    }

    /// Every counter of PROTOCOL.md's table is there, none is negative, none is repeated, and
    /// `received` = `applied` + `queued` + the sum of `dropped_*` + `status_answered` +
    /// `status_refused` (every message, `/status` queries too, has exactly one outcome).
    pub fn check(&self) -> Result<(), String> {
        let missing: Vec<&str> = status::PLUGIN.iter().copied().filter(|n| self.try_get(n).is_none()).collect();
        if !missing.is_empty() {
            return Err(format!("/status lacks {missing:?}: {self}"));
        }
        let mut seen = BTreeMap::new();
        for (name, count) in &self.counters {
            if *count < 0 {
                return Err(format!("/status counter {name} is negative: {self}"));
            }
            if seen.insert(name.as_str(), *count).is_some() {
                return Err(format!("/status has {name} twice: {self}"));
            }
        }
        let (received, applied, queued, dropped) =
            (self.get(status::RECEIVED), self.get(status::APPLIED), self.get(status::QUEUED), self.dropped());
        let queries = self.get(status::STATUS_ANSWERED) + self.get(status::STATUS_REFUSED);
        if received != applied + queued + dropped + queries {
            return Err(format!(
                "received ({received}) != applied ({applied}) + queued ({queued}) + dropped ({dropped}) + /status \
                 queries ({queries}): {self}"
            ));
        }
        if self.get(status::LATE) > applied {
            return Err(format!("late counts applied messages, so it cannot exceed applied: {self}"));
        }
        Ok(())
    }

    /// `received` without the `/status` queries, which the plugin receives and counts too (each
    /// answered or refused): what was received besides the queries that read the counters.
    pub fn cues_received(&self) -> i64 {
        let get = |name| self.try_get(name).unwrap_or(0);
        get(status::RECEIVED) - get(status::STATUS_ANSWERED) - get(status::STATUS_REFUSED)
    }

    /// The counters that differ from `before`, as `name → self − before`, leaving out the
    /// `/status` queries themselves (`received` is [`Status::cues_received`]; `status_answered`
    /// and `status_refused` are not listed).
    pub fn delta(&self, before: &Status) -> BTreeMap<String, i64> {
        self.counters
            .iter()
            .filter(|(n, _)| n != status::STATUS_ANSWERED && n != status::STATUS_REFUSED)
            .map(|(n, c)| match n.as_str() {
                status::RECEIVED => (n.clone(), self.cues_received() - before.cues_received()),
                _ => (n.clone(), c - before.try_get(n).unwrap_or(0)),
            })
            .filter(|(_, d)| *d != 0)
            .collect()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nonzero: Vec<String> =
            self.counters.iter().filter(|(_, c)| *c != 0).map(|(n, c)| format!("{n}={c}")).collect();
        if nonzero.is_empty() { write!(f, "(all zero)") } else { write!(f, "{}", nonzero.join(" ")) }
    }
}

/// One datagram a [`CueSender`] received.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The decoded message (replies are bare messages).
    pub message: OscMessage,
    /// Its source.
    pub from: SocketAddr,
}

/// A loopback cue sender: one UDP socket that sends to the plugin and receives its `/ack`s.
#[derive(Debug)]
pub struct CueSender {
    /// Bound to a loopback address with a port from the OS; cues go out from it and the plugin's
    /// `/ack`s come back to it.
    socket: UdpSocket,
    /// The plugin's listening address (`cues.listen`).
    target: SocketAddr,
    /// `cues.token` as the plugin has it: sent first in every cue and `/status` built here.
    token: Option<String>,
    /// Replies read from the socket and not taken yet.
    backlog: VecDeque<Reply>,
}

impl CueSender {
    /// A sender on `127.0.0.1` (or `::1` for an IPv6 target) sending to `target`.
    pub fn new(target: SocketAddr) -> Self {
        let local = if target.is_ipv4() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) };
        Self::from_ip(local, target)
    }

    /// A sender bound to `local` (any loopback address, e.g. `127.0.0.2` to be another sender).
    pub fn from_ip(local: IpAddr, target: SocketAddr) -> Self {
        assert_loopback(target, "the cue target");
        assert!(local.is_loopback(), "cue senders bind loopback addresses only, not {local}");
        let socket = bind_other_than(local, target, "a cue sender");
        Self { socket, target, token: None, backlog: VecDeque::new() }
    }

    /// Sends `token` first in every cue and `/status` built by this sender.
    pub fn with_token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// The sender's own address (what the plugin sees as the source).
    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap_or_else(|e| panic!("could not read the cue sender's address: {e}"))
    }

    /// The plugin's listening address.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// The token this sender adds.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Sends raw bytes as one datagram.
    pub fn send_raw(&self, bytes: &[u8]) {
        self.socket
            .send_to(bytes, self.target)
            .unwrap_or_else(|e| panic!("could not send {} bytes to {}: {e}", bytes.len(), self.target));
    }

    /// Sends one packet.
    pub fn send_packet(&self, packet: &OscPacket) {
        self.send_raw(&encode(packet));
    }

    /// Sends a bare message with exactly these arguments (no token added).
    pub fn send_message(&self, address: &str, args: Vec<OscType>) {
        self.send_packet(&message(address, args));
    }

    /// The message `address [TOKEN] [VALUE] [ID]` with this sender's token.
    pub fn cue_message(&self, address: &str, value: Option<CueValue>, id: Option<CueId>) -> OscPacket {
        message(address, cue_args(self.token(), value, id))
    }

    /// Sends an immediate cue (a bare message) with this sender's token.
    pub fn cue(&self, address: &str, value: Option<CueValue>, id: Option<CueId>) {
        self.send_packet(&self.cue_message(address, value, id));
    }

    /// Sends a cue alone in a bundle timetagged `at`.
    pub fn cue_at(&self, address: &str, value: Option<CueValue>, id: Option<CueId>, at: OscTime) {
        self.send_packet(&bundle(at, vec![self.cue_message(address, value, id)]));
    }

    /// The next reply on this sender's socket within `timeout`, or `None`.
    pub fn next_reply(&mut self, timeout: Duration) -> Option<Reply> {
        if let Some(r) = self.backlog.pop_front() {
            return Some(r);
        }
        receive_reply(&self.socket, timeout)
    }

    /// Everything that arrives within `window` (for replies that must not come).
    pub fn replies_within(&mut self, window: Duration) -> Vec<Reply> {
        let deadline = Instant::now() + window;
        let mut out: Vec<Reply> = self.backlog.drain(..).collect();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(r) = receive_reply(&self.socket, left) {
                out.push(r);
            }
        }
        out
    }

    /// The next reply, which must be an `/ack` from the plugin's listening socket, within
    /// [`REPLY_TIMEOUT`]; panics otherwise.
    pub fn ack(&mut self) -> Ack {
        let reply = self
            .next_reply(REPLY_TIMEOUT)
            .unwrap_or_else(|| panic!("no /ack from {} within {REPLY_TIMEOUT:?}", self.target));
        let ack = Ack::from_message(&reply.message, reply.from).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ack.from, self.target, "/ack must come from the listening socket: {ack:?}");
        ack
    }

    /// The next `n` acks (see [`CueSender::ack`]).
    pub fn acks(&mut self, n: usize) -> Vec<Ack> {
        (0..n).map(|_| self.ack()).collect()
    }

    /// Sends an immediate cue and returns its `/ack`.
    pub fn cue_acked(&mut self, address: &str, value: Option<CueValue>, id: Option<CueId>) -> Ack {
        self.cue(address, value, id);
        self.ack()
    }

    /// The plugin's counters, asked from a fresh socket on this sender's address with this
    /// sender's token; panics when no reply comes within [`REPLY_TIMEOUT`].
    pub fn status(&self) -> Status {
        query_status(self.local_addr().ip(), self.target, self.token(), REPLY_TIMEOUT)
            .unwrap_or_else(|| panic!("no /status reply from {} within {REPLY_TIMEOUT:?}", self.target))
    }

    /// Asks for the counters (every [`READY_POLL`]) until `done` holds, for at most
    /// [`REPLY_TIMEOUT`]; panics with the last reply and `what` otherwise.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            let status = self.status();
            if done(&status) {
                return status;
            }
            if Instant::now() >= deadline {
                panic!("{what}: /status never got there within {REPLY_TIMEOUT:?}; last: {status}");
            }
            std::thread::sleep(READY_POLL);
        }
    }

    /// Waits until the plugin answers `/status` (it binds after `activate()`): a query every
    /// [`READY_POLL`] for at most [`READY_TIMEOUT`]. Returns the first answer; panics when none
    /// comes.
    pub fn wait_ready(&self) -> Status {
        let local = self.local_addr().ip();
        let socket = bind_other_than(local, self.target, "a status socket");
        let query = encode(&OscPacket::Message(osc_timecode_core::cue::status_query(self.token())));
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            // A query sent before the plugin binds is lost (and may earn an ICMP error, which
            // `receive_reply` ignores).
            let _ = socket.send_to(&query, self.target);
            if let Some(reply) = receive_reply(&socket, READY_POLL) {
                return Status::from_message(&reply.message).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        panic!(
            "the plugin did not answer {} on {} within {READY_TIMEOUT:?} (is the cue receiver \
             implemented, `cues.enabled` true and this sender allowed?)",
            address::STATUS,
            self.target
        );
    }
}

/// Sends `/status [token]` from a fresh socket on `local` and waits up to `timeout` for the
/// reply (which must come from `target`).
pub fn query_status(local: IpAddr, target: SocketAddr, token: Option<&str>, timeout: Duration) -> Option<Status> {
    assert_loopback(target, "the /status target");
    let socket = bind_other_than(local, target, "a status socket");
    // Padded, so the plugin's reply budget answers every query (core::reply).
    let query = encode(&OscPacket::Message(osc_timecode_core::cue::status_query(token)));
    // Sent again every STATUS_RETRY until answered: a receiver answers one query per source
    // every few ms (core::reply::STATUS_INTERVAL), and UDP may lose one.
    let deadline = Instant::now() + timeout;
    let reply = loop {
        socket.send_to(&query, target).unwrap_or_else(|e| panic!("could not send /status to {target}: {e}"));
        let left = deadline.checked_duration_since(Instant::now())?;
        if let Some(reply) = receive_reply(&socket, left.min(STATUS_RETRY)) {
            break reply;
        }
    };
    assert_eq!(reply.from, target, "the /status reply must come from the listening socket");
    Some(Status::from_message(&reply.message).unwrap_or_else(|e| panic!("{e}")))
}

/// One datagram from `socket` within `timeout`, decoded as a bare message; panics on a reply that
/// is not one (the plugin only ever replies with messages).
fn receive_reply(socket: &UdpSocket, timeout: Duration) -> Option<Reply> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 65_536];
    loop {
        let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
        socket.set_read_timeout(Some(left)).unwrap_or_else(|e| panic!("could not set a read timeout: {e}"));
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                assert!(from.ip().is_loopback(), "a reply from a non-loopback address {from}");
                return match rosc::decoder::decode_udp(&buf[..n]) {
                    Ok((_, OscPacket::Message(message))) => Some(Reply { message, from }),
                    Ok((_, other)) => panic!("the plugin replied with a bundle, not a message: {other:?}"),
                    Err(e) => panic!("the plugin replied with bytes that are not OSC ({e:?}): {:02x?}", &buf[..n]),
                };
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return None;
            }
            // An ICMP "port unreachable" from a query sent before the plugin was listening.
            Err(e)
                if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset) => {}
            Err(e) => panic!("cue sender socket error: {e}"),
        }
    }
}

/// Signed seconds from `from` to `to` (`to − from`).
pub fn seconds_between(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Where a cue timetagged `at` must land relative to `block` (PROTOCOL.md, "Timing"): at the
/// sample processed at `at` − the block's duration − `latency`, taking the block's samples as
/// processed one sample period apart from `wall_start`. Returns that offset in the block; it is
/// in the block when 0 ≤ offset < `block.len`.
pub fn expected_offset(at: SystemTime, latency: Duration, block: &BlockRecord, sample_rate: u32) -> i64 {
    let processed = seconds_between(block.wall_start, at) - latency.as_secs_f64();
    (processed * f64::from(sample_rate)).round() as i64 - i64::from(block.len)
}

/// Checks that a cue timetagged `at` landed at `offset` in `blocks[block]`, within `tolerance`
/// samples of [`expected_offset`] (the plugin reads its own clock, a few microseconds from the
/// harness's), or earlier by up to the block's `process()` call (a plugin thread preempted in the
/// call reads its clock late, and places the cue that much earlier in the block). A cue due
/// between two blocks (the harness started the later one late) must be at offset 0 of the later
/// one.
pub fn check_landing(
    blocks: &[BlockRecord],
    block: usize,
    offset: u32,
    at: SystemTime,
    latency: Duration,
    sample_rate: u32,
    tolerance: i64,
) -> Result<(), String> {
    let b = blocks.get(block).ok_or_else(|| format!("block {block} is not in the run ({} blocks)", blocks.len()))?;
    let want = expected_offset(at, latency, b, sample_rate);
    let error = i64::from(offset) - want;
    if (-tolerance - b.call_samples(sample_rate)..=tolerance).contains(&error) {
        return Ok(());
    }
    if offset == 0 && want < 0 && block > 0 {
        let prev = &blocks[block - 1];
        let in_prev = expected_offset(at, latency, prev, sample_rate);
        if in_prev >= i64::from(prev.len) - tolerance {
            // Due in the gap after the previous block: the first sample after it is right.
            return Ok(());
        }
    }
    Err(format!(
        "landed in block {block} at offset {offset}, but the sample heard at the timetag is offset {want} \
         of that block ({error:+} samples, tolerance ±{tolerance}, and {} earlier for the call); blocks around \
         it: {:?}",
        b.call_samples(sample_rate),
        &blocks[block.saturating_sub(1)..(block + 2).min(blocks.len())]
    ))
}

/// The first sample at or after `sample` that starts a timecode frame (where a quantised cue
/// lands).
pub fn next_frame_start(sample: i64, sample_rate: u32, rate: FrameRate) -> i64 {
    let frame = frame_at_sample(sample, sample_rate, rate);
    let start = frame_start_sample(frame, sample_rate, rate);
    if start == sample { start } else { frame_start_sample(frame + 1, sample_rate, rate) }
}

/// A note length of `ms` milliseconds in samples, rounded to nearest (halves up).
pub fn length_samples(ms: u64, sample_rate: u32) -> u64 {
    (ms * u64::from(sample_rate) + 500) / 1000
}

/// A small deterministic PRNG (SplitMix64) so a flood or fuzz run is the same every time.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the modulo bias is irrelevant here).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// What a [`flood`] sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct FloodReport {
    /// Datagrams handed to the kernel (each holds at most one message, so the plugin can count at
    /// most this many as received).
    pub sent: u64,
    /// Of those, valid cues the plugin may apply.
    pub sent_valid: u64,
    /// Sends the kernel refused (counted, not retried).
    pub send_errors: u64,
    /// How long the flood ran.
    pub elapsed: Duration,
}

/// The packets a flood draws from, each holding at most one message: valid immediate and
/// timetagged cues (timetags from `now` to `now` + 3 s), refused ones (unmapped, too broad, bad
/// argument, too far ahead, duplicates) and malformed ones. Returns `(bytes, valid)` pairs.
pub fn flood_pool(now: SystemTime, rng: &mut Rng) -> Vec<(Vec<u8>, bool)> {
    let mut pool = Vec::new();
    let key = |rng: &mut Rng| rng.below(128);
    for _ in 0..32 {
        let (k, v) = (key(rng), 1 + rng.below(127) as i32);
        pool.push((encode(&message(&format!("/cue/{k}"), vec![OscType::Int(v)])), true));
    }
    for _ in 0..16 {
        let (k, v) = (key(rng), rng.below(1000) as f32 / 1000.0);
        pool.push((encode(&message(&format!("/trigger/{k}"), vec![OscType::Float(v)])), true));
    }
    for _ in 0..8 {
        let k = key(rng);
        pool.push((encode(&message(&format!("/cue/{k}"), vec![])), true));
        pool.push((encode(&message(&format!("/cue/{k}"), vec![OscType::Int(0)])), true));
        // IDs from a small set: most of these are duplicates.
        let id = rng.below(8) as i32;
        pool.push((encode(&message(&format!("/trigger/{k}"), vec![OscType::Nil, OscType::Int(id)])), true));
    }
    for _ in 0..16 {
        let at = now + Duration::from_millis(rng.below(3000));
        let k = key(rng);
        pool.push((encode(&bundle(timetag(at), vec![message(&format!("/cue/{k}"), vec![])])), true));
    }
    for _ in 0..4 {
        let k = key(rng);
        pool.push((encode(&nested(2, IMMEDIATELY, message(&format!("/trigger/{k}"), vec![OscType::Int(1)]))), true));
    }
    let far = now + Duration::from_secs(2 * 3600);
    pool.push((encode(&bundle(timetag(far), vec![message("/cue/1", vec![])])), false));
    pool.push((encode(&message("/foo", vec![])), false));
    pool.push((encode(&message("/cue/*", vec![])), false));
    pool.push((encode(&message("/cue/1", vec![OscType::String("loud".into())])), false));
    pool.push((encode(&message("/cue/1", vec![OscType::Int(200)])), false));
    pool.push((encode(&message("/trigger/1", vec![OscType::Float(1.5)])), false));
    let valid = encode(&message("/cue/1", vec![OscType::Int(1)]));
    pool.push((valid[..valid.len() - 3].to_vec(), false));
    let valid = encode(&bundle(IMMEDIATELY, vec![message("/cue/1", vec![OscType::Int(1)])]));
    pool.push((valid[..valid.len() - 3].to_vec(), false));
    pool.push((bundle_with_element_size(0x7fff_ffff), false));
    pool.push((non_utf8_address(), false));
    pool.push((encode(&nested(16, IMMEDIATELY, message("/cue/1", vec![]))), false));
    let many = (0..65).map(|i| message(&format!("/trigger/{}", i % 128), vec![])).collect();
    pool.push((encode(&bundle(IMMEDIATELY, many)), false));
    pool
}

/// Sends datagrams to `target` as fast as one thread can until `stop` is set or `max_packets`
/// are sent: every other one from [`flood_pool`], the rest random garbage of 1–96 bytes. Replies
/// to the flood socket are never read (the kernel drops them when its buffer is full).
pub fn flood(target: SocketAddr, max_packets: u64, stop: &AtomicBool, seed: u64) -> FloodReport {
    assert_loopback(target, "the flood target");
    let started = Instant::now();
    let socket =
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap_or_else(|e| panic!("could not bind a flood socket: {e}"));
    let mut rng = Rng::new(seed);
    let pool = flood_pool(SystemTime::now(), &mut rng);
    let mut garbage = [0u8; 96];
    let mut report = FloodReport::default();
    while report.sent < max_packets {
        if report.sent % 256 == 0 && stop.load(Ordering::Relaxed) {
            break;
        }
        let bytes: &[u8] = if rng.below(2) == 0 {
            let (bytes, valid) = &pool[rng.below(pool.len() as u64) as usize];
            report.sent_valid += u64::from(*valid);
            bytes
        } else {
            let len = 1 + rng.below(garbage.len() as u64) as usize;
            for b in &mut garbage[..len] {
                *b = rng.next_u64() as u8;
            }
            &garbage[..len]
        };
        match socket.send_to(bytes, target) {
            Ok(_) => report.sent += 1,
            Err(_) => report.send_errors += 1,
        }
    }
    report.elapsed = started.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the plugin on a loopback socket: answers `/status` with `status` and every
    /// other message with `/ack ADDRESS ID ok`, `count` datagrams, then stops.
    fn fake_plugin(count: usize, status: Vec<(String, i64)>) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the fake plugin");
        let addr = socket.local_addr().expect("fake plugin address");
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            for _ in 0..count {
                let (n, from) = socket.recv_from(&mut buf).expect("fake plugin recv");
                let Ok((_, OscPacket::Message(m))) = rosc::decoder::decode_udp(&buf[..n]) else { continue };
                let reply = if m.addr == address::STATUS {
                    let args = status.iter().flat_map(|(n, c)| [OscType::String(n.clone()), OscType::Long(*c)]);
                    message(address::STATUS, args.collect())
                } else {
                    // No token here: `[VALUE] [ID]`, so an ID is the second argument.
                    let id = m.args.get(1).cloned().unwrap_or(OscType::Nil);
                    message(address::ACK, vec![OscType::String(m.addr.clone()), id, OscType::String("ok".into())])
                };
                socket.send_to(&encode(&reply), from).expect("fake plugin send");
            }
        });
        (addr, thread)
    }

    fn counters(values: &[(&str, i64)]) -> Vec<(String, i64)> {
        status::PLUGIN
            .iter()
            .map(|n| (n.to_string(), values.iter().find(|(v, _)| v == n).map_or(0, |(_, c)| *c)))
            .collect()
    }

    #[test]
    fn sender_reads_acks_and_status_from_a_loopback_peer() {
        let (addr, thread) =
            fake_plugin(4, counters(&[("received", 3), ("applied", 1), ("queued", 1), ("dropped_malformed", 1)]));
        let mut sender = CueSender::new(addr);
        let ready = sender.wait_ready();
        assert_eq!(ready.get("received"), 3);
        ready.check().expect("consistent");
        let ack = sender.cue_acked("/cue/5", Some(CueValue::Int(100)), Some(CueId::Long(1 << 40)));
        assert_eq!(
            ack,
            Ack { address: "/cue/5".into(), id: Some(CueId::Long(1 << 40)), status: "ok".into(), from: addr }
        );
        let ack = sender.cue_acked("/trigger/1", None, None);
        assert_eq!(ack.id, None, "no ID sent: N echoed");
        assert_eq!(sender.status().get("applied"), 1);
        thread.join().expect("fake plugin");
        assert!(sender.replies_within(Duration::from_millis(50)).is_empty());
    }

    #[test]
    fn free_addresses_are_loopback_and_cue_settings_carry_them() {
        let addr = free_loopback_addr();
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let cues = cues_settings(addr, serde_json::json!({"token": "s3cret", "listen": addr.to_string()}));
        assert_eq!(cues["listen"], serde_json::json!(addr.to_string()));
        assert_eq!(cues["token"], serde_json::json!("s3cret"));
        let mut settings = Map::new();
        set_cues(&mut settings, cues);
        assert!(settings.contains_key("cues"));
    }

    #[test]
    #[should_panic(expected = "loopback")]
    fn cue_settings_refuse_a_non_loopback_listen_address() {
        let mut settings = Map::new();
        set_cues(&mut settings, serde_json::json!({"listen": "0.0.0.0:5005"}));
    }

    #[test]
    fn cue_arguments_follow_token_value_id() {
        assert_eq!(cue_args(None, None, None), vec![]);
        assert_eq!(cue_args(Some("t"), None, None), vec![OscType::String("t".into())]);
        assert_eq!(cue_args(None, None, Some(CueId::Int(7))), vec![OscType::Nil, OscType::Int(7)]);
        assert_eq!(
            cue_args(Some("t"), Some(CueValue::Float(0.25)), Some(CueId::Long(9))),
            vec![OscType::String("t".into()), OscType::Float(0.25), OscType::Long(9)]
        );
    }

    #[test]
    fn ack_and_status_replies_are_read_strictly() {
        let from: SocketAddr = "127.0.0.1:5005".parse().expect("addr");
        let ack = |args| OscMessage { addr: address::ACK.into(), args };
        let s = |v: &str| OscType::String(v.into());
        assert!(Ack::from_message(&ack(vec![s("/cue/1"), OscType::Nil, s("ok")]), from).is_ok());
        assert!(Ack::from_message(&ack(vec![s("/cue/1"), OscType::Float(1.0), s("ok")]), from).is_err());
        assert!(Ack::from_message(&ack(vec![s("/cue/1"), s("ok")]), from).is_err());

        let status = |args| Status::from_message(&OscMessage { addr: address::STATUS.into(), args });
        assert!(status(vec![s("received"), OscType::Int(1)]).is_err(), "counts are h");
        assert!(status(vec![s("received")]).is_err(), "pairs");
        let all = counters(&[("received", 6), ("applied", 2), ("late", 1), ("queued", 1), ("dropped_duplicate", 3)]);
        let args = all.iter().flat_map(|(n, c)| [s(n), OscType::Long(*c)]).collect();
        let ok = status(args).expect("well formed");
        ok.check().expect("6 = 2 + 1 + 3");
        assert_eq!(ok.dropped(), 3);
        let mut off = ok.clone();
        off.counters[0].1 = 7;
        assert!(off.check().is_err(), "invariant broken");
        assert_eq!(off.delta(&ok), BTreeMap::from([("received".to_string(), 1)]));
        let mut short = ok.clone();
        short.counters.pop();
        assert!(short.check().is_err(), "a counter is missing");
    }

    /// Decodes a whole datagram: rosc's `decode_udp` stops at the first bundle element it cannot
    /// read and returns what it read plus the rest, so a reader must also check that nothing is
    /// left.
    fn decode_whole(bytes: &[u8]) -> Result<OscPacket, String> {
        match rosc::decoder::decode_udp(bytes) {
            Ok(([], p)) => Ok(p),
            Ok((rest, p)) => Err(format!("{} bytes left after {p:?}", rest.len())),
            Err(e) => Err(format!("{e:?}")),
        }
    }

    #[test]
    fn broken_packets_are_broken_and_limits_are_ours_not_roscs() {
        let whole = encode(&bundle(IMMEDIATELY, vec![message("/cue/1", vec![OscType::Int(1)])]));
        for (bytes, what) in [
            (bundle_with_element_size(0x7fff_ffff), "absurd element size"),
            (non_utf8_address(), "non-UTF-8 address"),
            (whole[..whole.len() - 3].to_vec(), "truncated bundle"),
        ] {
            assert!(decode_whole(&bytes).is_err(), "{what} must not decode");
        }
        // rosc alone takes the first and the last for empty bundles (see `decode_whole`).
        assert!(rosc::decoder::decode_udp(&bundle_with_element_size(0x7fff_ffff)).is_ok());
        // Deep nesting and 65 messages are valid OSC 1.0: only the plugin's limits refuse them.
        let deep = encode(&nested(16, IMMEDIATELY, message("/cue/1", vec![])));
        let mut p = decode_whole(&deep).expect("16 levels decode");
        let mut depth = 0;
        while let OscPacket::Bundle(b) = p {
            depth += 1;
            p = b.content.into_iter().next().expect("one element");
        }
        assert_eq!(depth, 16);
        let many = (0..65).map(|i| message(&format!("/trigger/{i}"), vec![])).collect();
        let decoded = decode_whole(&encode(&bundle(IMMEDIATELY, many))).expect("decodes");
        assert!(matches!(decoded, OscPacket::Bundle(b) if b.content.len() == 65));
    }

    #[test]
    fn flood_pool_packets_hold_at_most_one_message() {
        fn messages(p: &OscPacket) -> usize {
            match p {
                OscPacket::Message(_) => 1,
                OscPacket::Bundle(b) => b.content.iter().map(messages).sum(),
            }
        }
        let pool = flood_pool(SystemTime::now(), &mut Rng::new(7));
        for (bytes, valid) in &pool {
            match decode_whole(bytes) {
                Ok(p) if messages(&p) > 1 => {
                    assert!(!valid && messages(&p) > 64, "only the oversized bundle has several messages")
                }
                Ok(_) => {}
                Err(_) => assert!(!valid, "an undecodable packet is not valid"),
            }
        }
        assert!(pool.iter().any(|(_, v)| *v) && pool.iter().any(|(_, v)| !*v));
    }

    #[test]
    fn flood_stops_at_its_limit_and_sends_only_to_loopback() {
        let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
        let report = flood(sink.local_addr().expect("addr"), 1000, &AtomicBool::new(false), 1);
        assert_eq!(report.sent + report.send_errors, 1000);
        assert!(report.sent_valid <= report.sent);
        let stopped = flood(sink.local_addr().expect("addr"), 1000, &AtomicBool::new(true), 1);
        assert_eq!(stopped.sent, 0, "a set stop flag stops before the first packet");
    }

    #[test]
    fn rng_is_deterministic() {
        let a: Vec<u64> = (0..4).scan(Rng::new(42), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(Rng::new(42), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        assert_ne!(a[0], a[1]);
        assert!((0..1000).scan(Rng::new(1), |r, _| Some(r.below(10))).all(|v| v < 10));
    }

    fn block(index: usize, wall_start: SystemTime, len: u32) -> BlockRecord {
        BlockRecord {
            index,
            steady_start: index as u64 * u64::from(len),
            len,
            wall_start,
            wall_end: wall_start,
            timeline_start: None,
            playing: true,
        }
    }

    #[test]
    fn expected_offset_is_the_sample_heard_at_the_timetag() {
        let w = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let b = block(0, w, 256);
        // Heard = processed + one block (256 samples at 48 kHz) + latency.
        let sr = 48_000;
        let at = |samples: f64, latency_ms: u64| {
            w + Duration::from_secs_f64(samples / 48_000.0) + Duration::from_millis(latency_ms)
        };
        assert_eq!(expected_offset(at(256.0, 0), Duration::ZERO, &b, sr), 0);
        assert_eq!(expected_offset(at(256.0 + 100.0, 0), Duration::ZERO, &b, sr), 100);
        assert_eq!(expected_offset(at(256.0 + 100.0, 20), Duration::from_millis(20), &b, sr), 100);
        assert_eq!(expected_offset(at(100.0, 0), Duration::ZERO, &b, sr), -156, "due before the block");
    }

    #[test]
    fn landing_accepts_the_right_sample_and_the_gap_rule_only() {
        let sr = 48_000;
        let w = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let period = |n: u64| Duration::from_secs_f64(n as f64 / 48_000.0);
        // Block 1 starts 10 ms late: samples due in the gap land at its offset 0.
        let blocks = [block(0, w, 256), block(1, w + period(256) + Duration::from_millis(10), 256)];
        let heard = |processed: SystemTime| processed + period(256);
        let tol = 48;
        assert!(check_landing(&blocks, 0, 100, heard(w + period(100)), Duration::ZERO, sr, tol).is_ok());
        assert!(check_landing(&blocks, 0, 140, heard(w + period(100)), Duration::ZERO, sr, tol).is_ok());
        assert!(check_landing(&blocks, 0, 160, heard(w + period(100)), Duration::ZERO, sr, tol).is_err());
        let in_gap = heard(w + period(256) + Duration::from_millis(5));
        assert!(check_landing(&blocks, 1, 0, in_gap, Duration::ZERO, sr, tol).is_ok());
        assert!(check_landing(&blocks, 1, 3, in_gap, Duration::ZERO, sr, tol).is_err());
        // Due in block 0 but put at block 1's start: wrong.
        assert!(check_landing(&blocks, 1, 0, heard(w + period(100)), Duration::ZERO, sr, tol).is_err());
    }

    #[test]
    fn next_frame_start_rounds_up_to_a_frame_boundary() {
        let r25: FrameRate = "25".parse().expect("25 fps");
        assert_eq!(next_frame_start(0, 48_000, r25), 0);
        assert_eq!(next_frame_start(1, 48_000, r25), 1920);
        assert_eq!(next_frame_start(1920, 48_000, r25), 1920);
        assert_eq!(next_frame_start(-1, 48_000, r25), 0);
        for rate in FrameRate::ALL {
            for sample in [1i64, 999, 44_099, 1_000_001] {
                let s = next_frame_start(sample, 44_100, rate);
                let f = frame_at_sample(s, 44_100, rate);
                assert_eq!(frame_start_sample(f, 44_100, rate), s, "{rate}: {s} starts a frame");
                assert!(s >= sample && frame_at_sample(sample, 44_100, rate) + 1 >= f, "{rate}: the first one");
            }
        }
    }

    #[test]
    fn note_lengths_round_to_the_nearest_sample() {
        assert_eq!(length_samples(100, 48_000), 4800);
        assert_eq!(length_samples(33, 44_100), 1455);
        assert_eq!(length_samples(250, 44_100), 11_025);
        assert_eq!(length_samples(1, 44_100), 44);
    }
}
