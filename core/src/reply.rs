//! Reply budgets: a cue receiver never sends more bytes to a source than that source sent it,
//! beyond a small fixed allowance, so it cannot be used to amplify a flood towards a spoofed
//! address. Shared by the plugin's cue thread and `osc-timecode serve`.
//!
//! Every reply (`/ack` and `/status`) spends credit that requests earn:
//! - each source (IP address) earns the wire size of every datagram it sends (payload plus
//!   [`UDP_OVERHEAD`]), starts with [`SOURCE_ALLOWANCE`] and earns [`SOURCE_TRICKLE`] bytes a
//!   second on top, up to [`CREDIT_CAP`];
//! - all sources together are held to the same rule with [`TOTAL_ALLOWANCE`] and
//!   [`TOTAL_TRICKLE`], so sources that come and go (a table of [`SOURCES`] entries forgets the
//!   longest-idle one) cannot add up their allowances;
//! - a `/status` answer (hundreds of bytes for a 12-byte query) is further limited to one per
//!   [`STATUS_INTERVAL`] per source and [`STATUS_PER_SECOND`] a second in all. A bare 12-byte
//!   query is answered from the allowance (a few at once, then about one a second); a query
//!   padded to more than its answer ([`crate::cue::status_query`]) is answered every time.
//!
//! So, to one source over any stretch of time `t` seconds: reply bytes ≤ request bytes +
//! [`SOURCE_ALLOWANCE`] + [`SOURCE_TRICKLE`] × `t`. An `/ack` is about 16 bytes longer than the
//! smallest cue it answers (its address is echoed, plus `/ack` and the status); the trickle
//! covers that for about 30 cues a second from one sender, more than a show sends.
//!
//! Memory is bounded ([`SOURCES`] entries, allocated up front); work per call is linear in
//! [`SOURCES`] at most. Nothing here reads a clock: callers pass `now`.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Bytes an IPv4 and UDP header add to every datagram, counted on both sides.
pub const UDP_OVERHEAD: usize = 28;
/// Reply bytes a source may receive before it has earned any: the acks of a show's cue list sent
/// in a few bundles at once (64 acks are about twice the bytes of 64 short cues in a bundle).
pub const SOURCE_ALLOWANCE: u64 = 16 * 1024;
/// Reply bytes a source earns a second without sending anything.
pub const SOURCE_TRICKLE: u64 = 512;
/// Credit never grows past this (bytes), so a long-quiet source cannot save up for a burst.
pub const CREDIT_CAP: u64 = 64 * 1024;
/// Reply bytes all sources together may receive before any has earned them.
pub const TOTAL_ALLOWANCE: u64 = 64 * 1024;
/// Reply bytes all sources together earn a second without sending anything.
pub const TOTAL_TRICKLE: u64 = 4096;
/// Sources remembered; when full, the one idle longest is forgotten.
pub const SOURCES: usize = 256;
/// A source gets at most one `/status` answer this often (a monitor polling 50 times a second
/// is answered; the byte credit still asks each query to pay for its answer).
pub const STATUS_INTERVAL: Duration = Duration::from_millis(20);
/// `/status` answers a second, to all sources together.
pub const STATUS_PER_SECOND: usize = 100;

/// The encoded size in bytes of `msg` as a bare OSC message, without encoding it. Arrays count
/// their tags only (replies have none).
pub fn message_len(msg: &rosc::OscMessage) -> usize {
    use rosc::OscType;
    let padded = |n: usize| (n + 4) & !3;
    let args: usize = msg
        .args
        .iter()
        .map(|a| match a {
            OscType::Int(_) | OscType::Float(_) | OscType::Char(_) | OscType::Color(_) | OscType::Midi(_) => 4,
            OscType::Long(_) | OscType::Double(_) | OscType::Time(_) => 8,
            OscType::String(s) => padded(s.len()),
            OscType::Blob(b) => 4 + b.len().div_ceil(4) * 4,
            OscType::Bool(_) | OscType::Nil | OscType::Inf | OscType::Array(_) => 0,
        })
        .sum();
    padded(msg.addr.len()) + padded(1 + msg.args.len()) + args
}

/// What a reply is, for its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// `/ack`: one per cue message, limited by credit.
    Ack,
    /// `/status`: limited by credit and by rate.
    Status,
}

/// Why a reply may not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The source (or all sources together) has not sent enough to pay for it.
    #[error("the reply would be larger than what its sender sent")]
    NoCredit,
    /// Another `/status` answer went to this source, or to too many sources, too recently.
    #[error("status queries come too often")]
    StatusRate,
}

/// Credit in bytes that earns a trickle per second and is capped.
#[derive(Debug, Clone, Copy)]
struct Credit {
    /// Bytes that may be spent.
    bytes: u64,
    /// When the trickle was last added.
    at: Instant,
}

impl Credit {
    fn new(bytes: u64, now: Instant) -> Self {
        Self { bytes, at: now }
    }

    /// Adds the trickle for the time since the last update.
    fn refill(&mut self, per_second: u64, cap: u64, now: Instant) {
        let ms = now.saturating_duration_since(self.at).as_millis().min(u128::from(u32::MAX)) as u64;
        let earned = ms * per_second / 1000;
        if earned > 0 {
            self.bytes = (self.bytes + earned).min(cap);
            // Keep the remainder: advance by the time actually paid for.
            self.at += Duration::from_millis(earned * 1000 / per_second);
        }
    }
}

/// One source's state.
#[derive(Debug, Clone, Copy)]
struct Source {
    /// Its address (IPv4-mapped IPv6 as the IPv4 address).
    ip: IpAddr,
    /// What it may still receive.
    credit: Credit,
    /// When it last sent or was answered (for forgetting the idlest).
    seen: Instant,
    /// When it last got a `/status` answer.
    status_at: Option<Instant>,
}

/// The reply budget of one receiver. `[cue-thread]` in the plugin, `serve`'s receiver thread in
/// the client: one owner, no locks.
#[derive(Debug)]
pub struct ReplyBudget {
    /// Known sources, at most [`SOURCES`].
    sources: Vec<Source>,
    /// All sources together.
    total: Credit,
    /// When the last [`STATUS_PER_SECOND`] `/status` answers went, oldest first.
    status_times: std::collections::VecDeque<Instant>,
}

impl ReplyBudget {
    /// An empty budget; `now` starts the total trickle.
    pub fn new(now: Instant) -> Self {
        Self {
            sources: Vec::with_capacity(SOURCES),
            total: Credit::new(TOTAL_ALLOWANCE, now),
            status_times: std::collections::VecDeque::with_capacity(STATUS_PER_SECOND),
        }
    }

    /// A datagram of `payload` bytes arrived from `from` (call it for every datagram from an
    /// allowed sender, before its replies are asked for).
    pub fn on_request(&mut self, from: IpAddr, payload: usize, now: Instant) {
        let wire = (payload + UDP_OVERHEAD) as u64;
        self.total.refill(TOTAL_TRICKLE, u64::MAX, now);
        self.total.bytes = self.total.bytes.saturating_add(wire).min(CREDIT_CAP * SOURCES as u64);
        let source = self.source(from, now);
        source.credit.bytes = (source.credit.bytes + wire).min(CREDIT_CAP);
    }

    /// Whether a reply of `payload` bytes of `kind` may go to `to` now; if so, it is paid for.
    pub fn allow(&mut self, to: IpAddr, kind: ReplyKind, payload: usize, now: Instant) -> Result<(), Refused> {
        let wire = (payload + UDP_OVERHEAD) as u64;
        self.total.refill(TOTAL_TRICKLE, u64::MAX, now);
        if kind == ReplyKind::Status
            && self.status_times.len() >= STATUS_PER_SECOND
            && self.status_times.front().is_some_and(|&t| now.saturating_duration_since(t) < Duration::from_secs(1))
        {
            return Err(Refused::StatusRate);
        }
        let total_bytes = self.total.bytes;
        let source = self.source(to, now);
        if kind == ReplyKind::Status
            && source.status_at.is_some_and(|t| now.saturating_duration_since(t) < STATUS_INTERVAL)
        {
            return Err(Refused::StatusRate);
        }
        if source.credit.bytes < wire || total_bytes < wire {
            return Err(Refused::NoCredit);
        }
        source.credit.bytes -= wire;
        if kind == ReplyKind::Status {
            source.status_at = Some(now);
        }
        self.total.bytes -= wire;
        if kind == ReplyKind::Status {
            if self.status_times.len() >= STATUS_PER_SECOND {
                self.status_times.pop_front();
            }
            self.status_times.push_back(now);
        }
        Ok(())
    }

    /// The entry for `ip`, refilled to `now`; created (forgetting the idlest when full).
    fn source(&mut self, ip: IpAddr, now: Instant) -> &mut Source {
        let ip = ip.to_canonical();
        let index = match self.sources.iter().position(|s| s.ip == ip) {
            Some(i) => i,
            None => {
                let fresh = Source { ip, credit: Credit::new(SOURCE_ALLOWANCE, now), seen: now, status_at: None };
                if self.sources.len() < SOURCES {
                    self.sources.push(fresh);
                    self.sources.len() - 1
                } else {
                    // PANIC: the table is full, so it has an idlest entry.
                    let idlest = (0..self.sources.len()).min_by_key(|&i| self.sources[i].seen).unwrap_or(0);
                    self.sources[idlest] = fresh;
                    idlest
                }
            }
        };
        let source = &mut self.sources[index];
        source.credit.refill(SOURCE_TRICKLE, CREDIT_CAP, now);
        source.seen = now;
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn message_len_is_the_encoded_length() {
        use rosc::{OscMessage, OscPacket, OscType};
        let msgs = [
            OscMessage { addr: "/ack".into(), args: vec![] },
            OscMessage {
                addr: "/ack".into(),
                args: vec![OscType::String("/cue/12".into()), OscType::Int(7), OscType::String("ok".into())],
            },
            OscMessage {
                addr: "/status".into(),
                args: vec![OscType::String("abc".into()), OscType::Long(5), OscType::Nil],
            },
            OscMessage { addr: "/x1234".into(), args: vec![OscType::Blob(vec![1, 2, 3, 4, 5]), OscType::Double(1.0)] },
        ];
        for m in msgs {
            let encoded = rosc::encoder::encode(&OscPacket::Message(m.clone())).unwrap();
            assert_eq!(message_len(&m), encoded.len(), "{m:?}");
        }
    }

    #[test]
    fn status_queries_are_rate_limited_per_source_and_overall() {
        let t0 = Instant::now();
        let mut b = ReplyBudget::new(t0);
        // 64 queries in one datagram of 16 + 64 × 16 bytes: one answer.
        b.on_request(A, 16 + 64 * 16, t0);
        let answered = (0..64).filter(|_| b.allow(A, ReplyKind::Status, 536, t0).is_ok()).count();
        assert_eq!(answered, 1);
        assert_eq!(b.allow(A, ReplyKind::Status, 536, t0 + STATUS_INTERVAL / 2), Err(Refused::StatusRate));
        assert_eq!(b.allow(A, ReplyKind::Status, 536, t0 + STATUS_INTERVAL), Ok(()));
        // Overall: many sources, each within its own limit, still at most STATUS_PER_SECOND.
        let mut b = ReplyBudget::new(t0);
        let mut answered = 0;
        for i in 0..300u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0100 + i));
            b.on_request(ip, 1024, t0);
            answered += usize::from(b.allow(ip, ReplyKind::Status, 536, t0).is_ok());
        }
        assert_eq!(answered, STATUS_PER_SECOND);
    }

    #[test]
    fn replies_to_a_source_never_exceed_its_requests_plus_the_allowance() {
        let t0 = Instant::now();
        let mut b = ReplyBudget::new(t0);
        // A flood of 12-byte queries over 10 s, one every ms, each asking for a 536-byte reply.
        let (mut sent, mut replied) = (0u64, 0u64);
        for ms in 0..10_000u64 {
            let now = t0 + Duration::from_millis(ms);
            b.on_request(A, 12, now);
            sent += (12 + UDP_OVERHEAD) as u64;
            if b.allow(A, ReplyKind::Status, 536, now).is_ok() {
                replied += (536 + UDP_OVERHEAD) as u64;
            }
        }
        assert!(replied <= sent + SOURCE_ALLOWANCE + SOURCE_TRICKLE * 10, "{replied} > {sent}");
        // Acks with no requests behind them: the allowance, then the trickle, and no more.
        let mut b = ReplyBudget::new(t0);
        let acks = (0..1000).filter(|_| b.allow(B, ReplyKind::Ack, 36, t0).is_ok()).count() as u64;
        assert_eq!(acks, SOURCE_ALLOWANCE / (36 + UDP_OVERHEAD as u64));
        assert_eq!(b.allow(B, ReplyKind::Ack, 36, t0 + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn many_sources_cannot_pool_their_allowances() {
        let t0 = Instant::now();
        let mut b = ReplyBudget::new(t0);
        let mut replied = 0u64;
        for i in 0..2000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x7f00_0000 + i));
            replied += u64::from(b.allow(ip, ReplyKind::Ack, 36, t0).is_ok()) * (36 + UDP_OVERHEAD as u64);
        }
        assert!(replied <= TOTAL_ALLOWANCE, "{replied}");
        assert!(b.sources.len() <= SOURCES);
    }

    #[test]
    fn an_ordinary_cue_sender_gets_every_ack() {
        // 20-byte cues with an id, 40-byte acks, ten a second for an hour.
        let t0 = Instant::now();
        let mut b = ReplyBudget::new(t0);
        for n in 0..36_000u64 {
            let now = t0 + Duration::from_millis(n * 100);
            b.on_request(A, 20, now);
            assert_eq!(b.allow(A, ReplyKind::Ack, 40, now), Ok(()), "cue {n}");
        }
    }
}
