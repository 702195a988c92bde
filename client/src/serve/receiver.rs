//! The listen socket's messages: cues and triggers (acknowledged and printed), transport
//! control, and `/status`, with the plugin's checks and replies (`osc_timecode_core::cue`).
//!
//! Order of checks for each datagram, as in the plugin's cue thread: sender in the allow-list
//! (else `not_allowed`, no reply), packet shape (else `malformed`, no reply: arrays, deep
//! bundles and argument floods are refused before anything decodes them), at least one message
//! (else `empty`); then per message: token (else `bad_token`, no reply), arguments
//! (`bad_argument`), retry (`duplicate`), address (`unmapped`). `serve` has no mapping table: any
//! `/cue/NAME` or `/trigger/NAME` is accepted.
//!
//! Replies (`/ack` and `/status` answers) go only to senders that passed the allow-list and the
//! token, and only within the sender's reply budget ([`osc_timecode_core::reply`]): never more
//! bytes than it sent, beyond a small allowance, and `/status` answers rate-limited per sender
//! and overall (issue 14: a 12-byte query got a 536-byte answer, 64 of them for one bundle). A
//! reply over budget is not sent and is counted (`status_refused`, `replies_refused`); the cue
//! itself is still handled.
//!
//! Everything here runs on the main thread; [`Receiver::handle_message`] is pure apart from the
//! transport lock, so tests drive it without sockets.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use osc_timecode_core::cue::{
    Ack, AckStatus, AllowList, CueArgs, CueId, CueValue, Dedupe, Received, decode_packet, parse_cue_args,
    status_to_osc, strip_token,
};
use osc_timecode_core::protocol::address::{
    self, CUE_PREFIX, TRANSPORT_LOCATE, TRANSPORT_PLAY, TRANSPORT_PREFIX, TRANSPORT_STOP, TRIGGER_PREFIX,
};
use osc_timecode_core::protocol::status;
use osc_timecode_core::protocol::system_time_from_timetag;
use osc_timecode_core::reply::{ReplyBudget, ReplyKind, message_len};
use osc_timecode_core::{FrameRate, Timecode};
use rosc::{OscMessage, OscType};

use super::Shared;
use super::transport::Now;

/// How long a cue ID is remembered for dropping retries (the plugin's default `dedupe_ms`).
pub const DEDUPE_WINDOW: Duration = Duration::from_secs(10);
/// IDs remembered at most (as the plugin).
pub const DEDUPE_CAPACITY: usize = 4096;

/// Message counters for `/status`, in messages. `[main-thread]`: only the receiver touches
/// them. `received` = `acked` + every `dropped_*` + `status_answered` + `status_refused`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Messages received from allowed senders (`/status` queries too), and one for every packet
    /// dropped whole (not allowed, malformed, empty).
    pub received: u64,
    /// Cues, triggers and transport commands acknowledged `ok`.
    pub acked: u64,
    /// Packets from senders outside the allow-list.
    pub not_allowed: u64,
    /// Messages (or `/status` queries) without the right token.
    pub bad_token: u64,
    /// Packets that are not OSC 1.0 or exceed the size limits.
    pub malformed: u64,
    /// Messages to an address `serve` does not handle.
    pub unmapped: u64,
    /// Messages with arguments `serve` does not accept.
    pub bad_argument: u64,
    /// Retries of a cue ID already accepted.
    pub duplicate: u64,
    /// Well-formed packets without a message (a bundle of nothing).
    pub empty: u64,
    /// Replies the OS refused to send.
    pub reply_errors: u64,
    /// `/status` queries answered.
    pub status_answered: u64,
    /// `/status` queries with the right token not answered: too often, or the answer would be
    /// more bytes than the sender has sent ([`osc_timecode_core::reply`]).
    pub status_refused: u64,
    /// `/ack` replies not sent for the same reason; the cue itself was handled.
    pub replies_refused: u64,
}

/// What handling one message produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outcome {
    /// The reply to the sender, if any.
    pub reply: Option<OscMessage>,
    /// The line for standard output, if any (without the newline).
    pub line: Option<String>,
}

/// The receiver's state. `[main-thread]`.
#[derive(Debug)]
pub struct Receiver {
    /// Senders allowed.
    allow: AllowList,
    /// The shared token every message must carry first, if set.
    token: Option<String>,
    /// Recently accepted (sender, ID) pairs.
    dedupe: Dedupe<(SocketAddr, CueId)>,
    /// The transport and the sender's counters.
    shared: Arc<Shared>,
    /// What each sender may still receive, in bytes, and when it last got a `/status` answer.
    budget: ReplyBudget,
    /// This thread's counters.
    pub counters: Counters,
}

impl Receiver {
    /// A receiver checking senders against `allow` and messages against `token`.
    pub fn new(allow: AllowList, token: Option<String>, shared: Arc<Shared>) -> Self {
        Self {
            allow,
            token,
            dedupe: Dedupe::new(DEDUPE_WINDOW, DEDUPE_CAPACITY),
            shared,
            budget: ReplyBudget::new(Instant::now()),
            counters: Counters::default(),
        }
    }

    /// One datagram from `from`: its outcomes, one per message (none when it was dropped).
    pub fn handle_datagram(&mut self, bytes: &[u8], from: SocketAddr) -> Vec<Outcome> {
        self.handle_datagram_at(bytes, from, Instant::now())
    }

    /// [`Receiver::handle_datagram`] as if it arrived at `now` (the reply budget's clock).
    fn handle_datagram_at(&mut self, bytes: &[u8], from: SocketAddr, now: Instant) -> Vec<Outcome> {
        if !self.allow.allows(from.ip()) {
            self.counters.received += 1;
            self.counters.not_allowed += 1;
            return Vec::new();
        }
        self.budget.on_request(from.ip(), bytes.len(), now);
        let messages = match decode_packet(bytes) {
            Ok(messages) if messages.is_empty() => {
                self.counters.received += 1;
                self.counters.empty += 1;
                return Vec::new();
            }
            Ok(messages) => messages,
            // Every refusal (not OSC, too deep, too many messages, arrays, too many arguments)
            // is one malformed packet: none of them is looked into any further.
            Err(_) => {
                self.counters.received += 1;
                self.counters.malformed += 1;
                return Vec::new();
            }
        };
        messages.into_iter().map(|m| self.handle_message(m, from, now)).collect()
    }

    /// One message from an allowed sender; its reply only if the sender's budget allows it.
    pub fn handle_message(&mut self, received: Received, from: SocketAddr, now: Instant) -> Outcome {
        if received.msg.addr == address::STATUS {
            return self.answer_status(&received.msg, from, now);
        }
        let mut outcome = self.handle_command(received, from, now);
        if let Some(reply) = &outcome.reply
            && self.budget.allow(from.ip(), ReplyKind::Ack, message_len(reply), now).is_err()
        {
            outcome.reply = None;
            self.counters.replies_refused += 1;
        }
        outcome
    }

    /// A `/status` query: the answer if the token is right and the budget allows it; counted
    /// either way.
    fn answer_status(&mut self, msg: &OscMessage, from: SocketAddr, now: Instant) -> Outcome {
        self.counters.received += 1;
        if strip_token(&msg.args, self.token.as_deref()).is_err() {
            self.counters.bad_token += 1;
            return Outcome::default();
        }
        // The answer's length does not depend on the counts (names and int64s).
        let len = message_len(&status_to_osc(&self.status()));
        if self.budget.allow(from.ip(), ReplyKind::Status, len, now).is_err() {
            self.counters.status_refused += 1;
            return Outcome::default();
        }
        // Counted before the snapshot, so the answer's counters add up.
        self.counters.status_answered += 1;
        Outcome { reply: Some(status_to_osc(&self.status())), line: None }
    }

    /// A cue, trigger or transport command (or anything else that is not `/status`).
    fn handle_command(&mut self, received: Received, from: SocketAddr, now: Instant) -> Outcome {
        let Received { timetag, msg } = received;
        let token = self.token.as_deref();
        self.counters.received += 1;
        if msg.addr.starts_with(TRANSPORT_PREFIX) {
            let Ok(args) = strip_token(&msg.args, token) else {
                self.counters.bad_token += 1;
                return Outcome::default();
            };
            let (status, line) = self.transport(&msg.addr, args);
            return self.ack(msg.addr, None, status, line);
        }
        let args = match parse_cue_args(&msg.args, token) {
            Ok(args) => args,
            Err(e) if e.is_token() => {
                self.counters.bad_token += 1;
                return Outcome::default();
            }
            Err(_) => return self.ack(msg.addr, None, AckStatus::BadArgument, None),
        };
        let Some(kind) = cue_kind(&msg.addr) else {
            return self.ack(msg.addr, args.id, AckStatus::Unmapped, None);
        };
        if let Some(id) = args.id {
            if self.dedupe.contains(&(from, id), now) {
                return self.ack(msg.addr, args.id, AckStatus::Duplicate, None);
            }
            self.dedupe.insert((from, id), now);
        }
        let line = self.cue_line(kind, &msg.addr, args, timetag.map(system_time_from_timetag), now);
        self.ack(msg.addr, args.id, AckStatus::Ok, Some(line))
    }

    /// Applies a transport command; its ack status and its line.
    fn transport(&mut self, address: &str, args: &[OscType]) -> (AckStatus, Option<String>) {
        let mut transport = self.shared.transport.lock().unwrap_or_else(PoisonError::into_inner);
        let rate = transport.rate;
        let now = Now::read();
        let (changed, line) = match (address, args) {
            (TRANSPORT_PLAY, []) => {
                let changed = transport.play(now);
                (changed, format!("play at {}", label(transport.position(now.instant), rate)))
            }
            (TRANSPORT_STOP, []) => {
                let changed = transport.stop(now.instant);
                (changed, format!("stop at {}", label(transport.position(now.instant), rate)))
            }
            (TRANSPORT_LOCATE, [OscType::String(text)]) => match Timecode::parse(text, rate) {
                Ok(tc) => {
                    transport.locate(tc.to_frame(), now);
                    (true, format!("locate {tc}"))
                }
                Err(_) => return (AckStatus::BadArgument, None),
            },
            (TRANSPORT_PLAY | TRANSPORT_STOP | TRANSPORT_LOCATE, _) => return (AckStatus::BadArgument, None),
            _ => return (AckStatus::Unmapped, None),
        };
        drop(transport);
        if changed {
            self.shared.changed.notify_all();
        }
        (AckStatus::Ok, Some(line))
    }

    /// `cue /cue/12 value 100 id 7 at 01:00:03:12`, plus when it is due for a timetagged one.
    fn cue_line(&self, kind: &str, address: &str, args: CueArgs, due: Option<SystemTime>, now: Instant) -> String {
        let transport = *self.shared.transport.lock().unwrap_or_else(PoisonError::into_inner);
        let mut line = format!("{kind} {}", printable(address));
        // Writing to a String cannot fail.
        if let CueValue::Midi(v) = args.value {
            let _ = write!(line, " value {v}");
        }
        if let Some(id) = args.id {
            let _ = write!(line, " id {}", id.value());
        }
        let _ = write!(line, " at {}", label(transport.position(now), transport.rate));
        if let Some(due) = due {
            let (wall_now, ahead) = (SystemTime::now(), |d: Duration| format!("{:.3} s", d.as_secs_f64()));
            let when = match due.duration_since(wall_now) {
                Ok(d) => format!("in {}", ahead(d)),
                Err(e) => format!("{} ago", ahead(e.duration())),
            };
            let _ = match transport.frame_at_wall(due) {
                Some(frame) => write!(line, " due {} ({when})", label(frame, transport.rate)),
                None => write!(line, " due {when}"),
            };
        }
        line
    }

    /// Counts and builds the `/ack`.
    fn ack(&mut self, address: String, id: Option<CueId>, status: AckStatus, line: Option<String>) -> Outcome {
        match status {
            AckStatus::Ok => self.counters.acked += 1,
            AckStatus::Duplicate => self.counters.duplicate += 1,
            AckStatus::Unmapped => self.counters.unmapped += 1,
            // serve refuses nothing else; counted with bad arguments should that change.
            _ => self.counters.bad_argument += 1,
        }
        Outcome { reply: Some(Ack { address, id, status }.to_osc()), line }
    }

    /// The `/status` counters, in their public order ([`status::SERVE`]).
    pub fn status(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        let stats = &self.shared.stats;
        vec![
            (status::RECEIVED, c.received),
            (status::ACKED, c.acked),
            (status::DROPPED_NOT_ALLOWED, c.not_allowed),
            (status::DROPPED_BAD_TOKEN, c.bad_token),
            (status::DROPPED_MALFORMED, c.malformed),
            (status::DROPPED_UNMAPPED, c.unmapped),
            (status::DROPPED_BAD_ARGUMENT, c.bad_argument),
            (status::DROPPED_DUPLICATE, c.duplicate),
            (status::DROPPED_EMPTY, c.empty),
            (status::REPLY_ERRORS, c.reply_errors),
            (status::STATUS_ANSWERED, c.status_answered),
            (status::STATUS_REFUSED, c.status_refused),
            (status::REPLIES_REFUSED, c.replies_refused),
            (status::TIMECODE_SENT, stats.sent.load(Ordering::Relaxed)),
            (status::TIMECODE_SEND_ERRORS, stats.send_errors.load(Ordering::Relaxed)),
            (status::FRAMES_SKIPPED, stats.skipped.load(Ordering::Relaxed)),
            (status::SYNC_ANSWERED, self.shared.sync.answered.load(Ordering::Relaxed)),
            (status::SYNC_REFUSED, self.shared.sync.refused.load(Ordering::Relaxed)),
        ]
    }
}

/// `cue` or `trigger` for an address with a non-empty NAME after the prefix.
fn cue_kind(address: &str) -> Option<&'static str> {
    [(CUE_PREFIX, "cue"), (TRIGGER_PREFIX, "trigger")]
        .into_iter()
        .find_map(|(prefix, kind)| address.strip_prefix(prefix).filter(|name| !name.is_empty()).map(|_| kind))
}

/// `address` as it goes on a line of standard output: control characters (a newline, an escape
/// sequence) escaped as `\n`, `\u{1b}`, so a sender cannot forge lines or drive the terminal.
/// OSC addresses are printable ASCII in practice: those are printed as they are.
fn printable(address: &str) -> std::borrow::Cow<'_, str> {
    if address.chars().any(char::is_control) {
        address.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
    } else {
        address.into()
    }
}

/// The label of an absolute frame.
fn label(frame: i64, rate: FrameRate) -> Timecode {
    Timecode::from_frame(frame, rate)
}

#[cfg(test)]
mod tests {
    use super::super::transport::Transport;
    use super::*;
    use osc_timecode_core::cue::status_from_osc;
    use osc_timecode_core::protocol::timetag_from_system_time;
    use rosc::OscTime;

    fn receiver(token: Option<&str>, rolling: bool) -> Receiver {
        let shared =
            Arc::new(Shared::new(Transport::new(FrameRate::FPS_25, 90_000 + 3 * 25 + 12, rolling, Now::read())));
        Receiver::new(AllowList::loopback(), token.map(str::to_owned), shared)
    }

    fn from() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn handle(r: &mut Receiver, addr: &str, args: Vec<OscType>, timetag: Option<OscTime>) -> Outcome {
        let msg = OscMessage { addr: addr.to_owned(), args };
        r.handle_message(Received { timetag, msg }, from(), Instant::now())
    }

    fn ack(o: &Outcome) -> Ack {
        Ack::from_osc(o.reply.as_ref().expect("a reply")).expect("an /ack")
    }

    #[test]
    fn cues_are_acked_printed_and_deduplicated() {
        let mut r = receiver(None, false);
        let o = handle(&mut r, "/cue/12", vec![OscType::Int(100), OscType::Long(7)], None);
        assert_eq!(ack(&o), Ack { address: "/cue/12".into(), id: Some(CueId::Long(7)), status: AckStatus::Ok });
        assert_eq!(o.line.as_deref(), Some("cue /cue/12 value 100 id 7 at 01:00:03:12"));
        let o = handle(&mut r, "/cue/12", vec![OscType::Int(100), OscType::Long(7)], None);
        assert_eq!((ack(&o).status, o.line), (AckStatus::Duplicate, None), "a retry is not printed again");
        let o = handle(&mut r, "/trigger/go", vec![], None);
        assert_eq!((ack(&o).status, o.line.as_deref()), (AckStatus::Ok, Some("trigger /trigger/go at 01:00:03:12")));
        assert_eq!(ack(&handle(&mut r, "/cue/", vec![], None)).status, AckStatus::Unmapped);
        assert_eq!(ack(&handle(&mut r, "/other", vec![], None)).status, AckStatus::Unmapped);
        assert_eq!(
            ack(&handle(&mut r, "/cue/1", vec![OscType::String("x".into())], None)).status,
            AckStatus::BadArgument
        );
        let status = status_from_osc(&handle(&mut r, "/status", vec![], None).reply.unwrap()).unwrap();
        let get = |name: &str| status.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(
            [
                get("received"),
                get("acked"),
                get("dropped_duplicate"),
                get("dropped_unmapped"),
                get("dropped_bad_argument")
            ],
            [Some(7), Some(2), Some(1), Some(2), Some(1)],
            "the /status query itself is received (and answered) before the snapshot"
        );
        assert_eq!(get("status_answered"), Some(1));
    }

    /// The `/status` names and their order are public API (docs/PROTOCOL.md, "/status at serve").
    #[test]
    fn status_counters_are_the_protocol_list() {
        // The strings themselves are frozen in core/tests/protocol.rs.
        let names: Vec<&str> = receiver(None, false).status().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, status::SERVE);
    }

    /// `received` = `acked` + every `dropped_*` + `status_answered` + `status_refused`.
    fn adds_up(r: &Receiver) {
        let c = &r.counters;
        let dropped = c.not_allowed + c.bad_token + c.malformed + c.unmapped + c.bad_argument + c.duplicate + c.empty;
        assert_eq!(c.received, c.acked + dropped + c.status_answered + c.status_refused, "{c:?}");
    }

    /// Regression (issue 14): a bundle of 64 `/status` queries got 64 answers of 536 bytes each.
    /// Now: one answer per sender per interval, within what the sender sent plus the allowance;
    /// every query counted.
    #[test]
    fn status_answers_are_rate_limited_and_within_the_reply_budget() {
        use osc_timecode_core::reply::{SOURCE_ALLOWANCE, UDP_OVERHEAD};
        let mut r = receiver(None, false);
        let query = rosc::OscPacket::Message(OscMessage { addr: "/status".into(), args: vec![] });
        let bundle = rosc::OscPacket::Bundle(rosc::OscBundle {
            timetag: osc_timecode_core::cue::IMMEDIATELY,
            content: vec![query; 64],
        });
        let bytes = rosc::encoder::encode(&bundle).unwrap();
        let (mut sent, mut replied) = (0usize, 0usize);
        // All 20 at one moment (the budget's clock is the caller's: a loaded machine taking longer
        // than an interval over them must not open a second answer).
        let now = Instant::now();
        for _ in 0..20 {
            sent += bytes.len() + UDP_OVERHEAD;
            for o in r.handle_datagram_at(&bytes, from(), now) {
                if let Some(reply) = o.reply {
                    replied += rosc::encoder::encode(&rosc::OscPacket::Message(reply)).unwrap().len() + UDP_OVERHEAD;
                }
            }
        }
        assert_eq!(r.counters.status_answered, 1, "one answer per interval to one sender");
        assert_eq!(r.counters.status_refused, 20 * 64 - 1);
        assert!(replied as u64 <= sent as u64 + SOURCE_ALLOWANCE, "{replied} reply bytes for {sent}");
        adds_up(&r);
    }

    /// Acks beyond what a sender paid for are not sent, but the cues are still handled.
    #[test]
    fn acks_beyond_the_budget_are_counted_and_the_cues_still_handled() {
        let mut r = receiver(None, false);
        // The smallest cue: `/cue/1` with no arguments, 12 bytes; its ack is longer.
        let cue = rosc::encoder::encode(&rosc::OscPacket::Message(OscMessage { addr: "/cue/1".into(), args: vec![] }))
            .unwrap();
        let (mut acks, mut lines) = (0, 0);
        for _ in 0..3000 {
            for o in r.handle_datagram(&cue, from()) {
                acks += usize::from(o.reply.is_some());
                lines += usize::from(o.line.is_some());
            }
        }
        assert_eq!((r.counters.acked, lines), (3000, 3000), "every cue handled and printed");
        assert!(acks < 3000 && r.counters.replies_refused == 3000 - acks as u64, "{acks} acks, {:?}", r.counters);
        adds_up(&r);
    }

    /// Packets the shape check refuses (arrays nested thousands deep, bare or in a bundle; deep
    /// bundles) and empty bundles are counted without a reply, and the next cue is handled.
    #[test]
    fn hostile_shapes_and_empty_bundles_are_counted() {
        let mut r = receiver(None, false);
        let array = |depth: usize| {
            let mut b = b"/cue/1\0\0,".to_vec();
            b.extend(std::iter::repeat_n(b'[', depth));
            b.extend(std::iter::repeat_n(b']', depth));
            b.push(0);
            while !b.len().is_multiple_of(4) {
                b.push(0);
            }
            b
        };
        let in_bundle = |inner: &[u8]| {
            let mut b = b"#bundle\0\0\0\0\0\0\0\0\x01".to_vec();
            b.extend_from_slice(&(inner.len() as u32).to_be_bytes());
            b.extend_from_slice(inner);
            b
        };
        let mut deep = array(1);
        for _ in 0..1000 {
            deep = in_bundle(&deep);
        }
        for bytes in [array(4000), array(6000), array(16_000), in_bundle(&array(16_000)), deep] {
            assert!(r.handle_datagram(&bytes, from()).is_empty(), "{} bytes", bytes.len());
        }
        assert!(r.handle_datagram(b"#bundle\0\0\0\0\0\0\0\0\x01", from()).is_empty(), "an empty bundle");
        assert_eq!((r.counters.malformed, r.counters.empty), (5, 1));
        let cue = rosc::encoder::encode(&rosc::OscPacket::Message(OscMessage { addr: "/cue/1".into(), args: vec![] }))
            .unwrap();
        assert_eq!(ack(&r.handle_datagram(&cue, from())[0]).status, AckStatus::Ok);
        adds_up(&r);
    }

    #[test]
    fn a_timetagged_cue_says_when_it_is_due() {
        let mut r = receiver(None, true);
        let soon = timetag_from_system_time(SystemTime::now() + Duration::from_secs(2));
        // The seconds printed: between 1.5 and 2 (the test's own time passes).
        let seconds = |line: &str| -> f64 {
            let rest = &line[line.find("in ").expect("'in N s'") + 3..];
            rest.split(' ').next().unwrap().parse().unwrap()
        };
        let line = handle(&mut r, "/cue/9", vec![], Some(soon)).line.unwrap();
        assert!(line.starts_with("cue /cue/9 at 01:00:03:1"), "{line}");
        assert!(line.contains(" due 01:00:05:") && line.ends_with(" s)"), "{line}");
        assert!((1.5..=2.0).contains(&seconds(&line)), "{line}");
        let mut parked = receiver(None, false);
        let line = handle(&mut parked, "/cue/9", vec![], Some(soon)).line.unwrap();
        assert!(line.starts_with("cue /cue/9 at 01:00:03:12 due in "), "{line}");
        assert!((1.5..=2.0).contains(&seconds(&line)), "{line}");
        let past = timetag_from_system_time(SystemTime::now() - Duration::from_secs(3));
        let line = handle(&mut parked, "/cue/9", vec![], Some(past)).line.unwrap();
        assert!(line.starts_with("cue /cue/9 at 01:00:03:12 due 3.0") && line.ends_with(" s ago"), "{line}");
    }

    #[test]
    fn tokens_guard_everything_silently() {
        let mut r = receiver(Some("s3cret"), false);
        for addr in ["/cue/1", "/transport/play", "/status", "/nope"] {
            assert_eq!(handle(&mut r, addr, vec![], None), Outcome::default(), "{addr} without the token");
        }
        let o = handle(&mut r, "/cue/1", vec![OscType::String("s3cret".into()), OscType::Int(5)], None);
        assert_eq!(ack(&o).status, AckStatus::Ok);
        let o = handle(&mut r, "/transport/play", vec![OscType::String("s3cret".into())], None);
        assert_eq!(ack(&o).status, AckStatus::Ok);
        assert_eq!(r.counters.bad_token, 4);
    }

    #[test]
    fn transport_commands() {
        let mut r = receiver(None, false);
        let o = handle(&mut r, "/transport/locate", vec![OscType::String("02:00:00:00".into())], None);
        assert_eq!(ack(&o), Ack { address: "/transport/locate".into(), id: None, status: AckStatus::Ok });
        assert_eq!(o.line.as_deref(), Some("locate 02:00:00:00"));
        assert_eq!(r.shared.transport.lock().unwrap().position(Instant::now()), 180_000);
        let o = handle(&mut r, "/transport/play", vec![], None);
        assert_eq!((ack(&o).status, o.line.as_deref()), (AckStatus::Ok, Some("play at 02:00:00:00")));
        assert!(r.shared.transport.lock().unwrap().rolling());
        let o = handle(&mut r, "/transport/stop", vec![], None);
        assert_eq!(ack(&o).status, AckStatus::Ok);
        assert!(o.line.unwrap().starts_with("stop at 02:00:0"));
        for (addr, args) in [
            ("/transport/locate", vec![OscType::String("2:00".into())]),
            ("/transport/locate", vec![OscType::String("00:00:00;00".into())]),
            ("/transport/locate", vec![OscType::Int(5)]),
            ("/transport/locate", vec![]),
            ("/transport/play", vec![OscType::Int(1)]),
        ] {
            let o = handle(&mut r, addr, args.clone(), None);
            assert_eq!((ack(&o).status, o.line), (AckStatus::BadArgument, None), "{addr} {args:?}");
        }
        assert_eq!(ack(&handle(&mut r, "/transport/rewind", vec![], None)).status, AckStatus::Unmapped);
    }

    /// Regression (fuzz target serve_decode): a cue address with a newline printed a second,
    /// forged line on standard output.
    #[test]
    fn control_characters_in_addresses_are_escaped_on_the_line() {
        let mut r = receiver(None, false);
        let o = handle(&mut r, "/cue/60\u{1e}\ni at 01:00:00:00", vec![], None);
        assert_eq!(o.line.as_deref(), Some(r"cue /cue/60\u{1e}\ni at 01:00:00:00 at 01:00:03:12"));
        let o = handle(&mut r, "/trigger/\u{1b}[2Jgo", vec![], None);
        assert_eq!(o.line.as_deref(), Some(r"trigger /trigger/\u{1b}[2Jgo at 01:00:03:12"));
        // The ack carries the address as it came: it goes back to its sender only.
        assert_eq!(ack(&o).address, "/trigger/\u{1b}[2Jgo");
    }

    #[test]
    fn strangers_and_garbage_are_dropped_and_counted() {
        let mut r = receiver(None, false);
        let bytes =
            rosc::encoder::encode(&rosc::OscPacket::Message(OscMessage { addr: "/cue/1".into(), args: vec![] }))
                .unwrap();
        assert!(r.handle_datagram(&bytes, "10.0.0.1:9000".parse().unwrap()).is_empty());
        assert!(r.handle_datagram(&[1, 2, 3], from()).is_empty());
        assert_eq!(r.handle_datagram(&bytes, from()).len(), 1);
        assert_eq!((r.counters.not_allowed, r.counters.malformed, r.counters.received), (1, 1, 3));
    }
}
