//! The plugin answers `/sync/ping` (issue 18): receivers measure its clock against theirs
//! ([`osc_timecode_core::clocksync`]), as they do with `serve`. A receiver pings the address its
//! timecode comes from, so the pings arrive at the network thread's sending sockets and the
//! pong leaves from the same socket: a receiver needs no configuration.
//!
//! - Answered on the network thread, never the audio thread: it reads its sockets without
//!   blocking at every wake-up ([`Responder::answer`]).
//! - T2 (ping read) and T3 (pong sent) are on the timescale of the frames' timetags: the network
//!   thread's [`WallClock`], the wall clock paired with the monotonic clock at its anchor.
//! - EPOCH goes up when that timescale steps against the monotonic clock by more than
//!   [`STEP_NS`] from one anchor to the next (the anchor is re-read every
//!   [`crate::wallclock::REANCHOR_EVERY`] to follow NTP's slew; a jump beyond that is the wall
//!   clock being set): receivers then start their estimate again. It is kept in [`Stats`], so it
//!   keeps counting up across re-activations.
//! - Only senders the plugin may talk to are answered: the address of one of its targets, or one
//!   its cue allow-list admits (confined to loopback unless the machine's config file allows
//!   network cue input, as the cue input's is). At most [`PONGS_PER_SOURCE`](osc_timecode_core::clocksync::PONGS_PER_SOURCE) pongs a second
//!   to one source and [`PONGS_IN_ALL`](osc_timecode_core::clocksync::PONGS_IN_ALL) in all; the rest are counted (`sync_refused`), never
//!   queued. A pong is exactly as long as its ping: the plugin can never amplify.
//! - Anything else arriving on a sending socket (not a ping) is read and ignored.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use osc_timecode_core::clocksync::{PACKET_LEN, Ping, Pong, PongLimits};
use osc_timecode_core::cue::AllowList;
use osc_timecode_core::protocol::timetag_from_system_time;

use super::Stats;
use crate::settings::Settings;
use crate::settings::cues::CueSettings;
use crate::wallclock::WallClock;

/// A change of the timetags' timescale against the monotonic clock beyond this, ns, between two
/// anchors is a step (a new epoch). Below it: NTP's slew over one re-anchor interval, and the
/// pairing of the two clocks.
pub const STEP_NS: i128 = 1_000_000;
/// Datagrams read from one socket at one wake-up, at most: a flood waits in the kernel's
/// buffer (and overflows there) rather than hold up the frames.
pub const READS_PER_WAKE: usize = 16;
/// While a ping came within [`RECENT`], the thread wakes at least this often, so a ping waits
/// at most about this long to be read even when the thread would idle longer.
pub const PING_POLL: Duration = Duration::from_millis(1);
/// How long after a ping the thread keeps waking every [`PING_POLL`] (a receiver's bursts are
/// 2 s apart).
pub const RECENT: Duration = Duration::from_secs(3);

/// Who may be answered: the targets' addresses and the cue allow-list. `[network-thread]`.
#[derive(Debug, Clone)]
struct Answerable {
    /// The timecode targets' IP addresses.
    targets: Vec<IpAddr>,
    /// The cue input's allow-list, as the cue input uses it.
    allow: AllowList,
}

impl Answerable {
    /// From the settings; `network_allowed`: whether the machine's config file allows network
    /// cue input (else entries beyond loopback are left out, as the cue input leaves them out).
    fn of(settings: &Settings, network_allowed: bool) -> Self {
        // The allow-list as the cue input would confine it, whether or not cues are on: a
        // disabled cue input must not widen who gets pongs.
        let cues = CueSettings { enabled: true, ..settings.cues.clone() };
        let (confined, _) = cues.confined(network_allowed);
        Self { targets: settings.targets.iter().map(|t| t.ip()).collect(), allow: confined.allow_list() }
    }

    fn admits(&self, from: SocketAddr) -> bool {
        self.targets.contains(&from.ip()) || self.allow.allows(from.ip())
    }
}

/// The network thread's pong responder. `[network-thread]`, created with the thread.
#[derive(Debug)]
pub struct Responder {
    /// Who may be answered, from the settings the thread uses.
    who: Answerable,
    /// Whether the machine's config file allows network cue input (read once, at activation,
    /// as the cue input reads it).
    network_allowed: bool,
    /// The rate limits.
    limits: PongLimits,
    /// When the last ping (answered or not) was read: the thread polls faster for a while.
    last_ping: Option<Instant>,
}

impl Responder {
    /// A responder for `settings`; reads the machine config once.
    pub fn new(settings: &Settings) -> Self {
        let network_allowed = crate::settings::machine_allows_network_cues();
        Self {
            who: Answerable::of(settings, network_allowed),
            network_allowed,
            limits: PongLimits::default(),
            last_ping: None,
        }
    }

    /// The settings changed (targets, allow-list).
    pub fn set_settings(&mut self, settings: &Settings) {
        self.who = Answerable::of(settings, self.network_allowed);
    }

    /// Whether a ping came recently: the thread then wakes every [`PING_POLL`] at least.
    pub fn recent(&self, now: Instant) -> bool {
        self.last_ping.is_some_and(|t| now.saturating_duration_since(t) < RECENT)
    }

    /// Reads what waits on `socket` (at most [`READS_PER_WAKE`] datagrams, without blocking)
    /// and answers the pings it may answer, from `socket`, on `wall`'s timescale.
    ///
    /// NOTE: T2 is taken when the datagram is read, not when it arrived: up to one wake-up
    ///       interval later ([`super::FAST_POLL`] while the host plays, [`PING_POLL`] while pings
    ///       come, [`super::IDLE_POLL`] for the first ping after a quiet spell). That delay counts
    ///       as part of the ping's way here, so it lengthens that exchange's round trip and moves
    ///       its offset by half the delay, within the bound the receiver shows (half the round
    ///       trip). The receiver keeps the exchange with the smallest round trip of each burst:
    ///       the ping that waited least, so the delay biases the estimate by at most half the
    ///       shortest wait of a burst.
    pub fn answer(&mut self, socket: &UdpSocket, wall: &WallClock, stats: &Stats) {
        // A ping is 56 bytes: anything longer is cut here and then refused by its length.
        let mut buf = [0u8; 2 * PACKET_LEN];
        for _ in 0..READS_PER_WAKE {
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // ICMP errors of earlier sends surfacing here, an interrupted call: not ours to
                // report (sends count their own trouble); read on.
                Err(_) => continue,
            };
            let received = Instant::now();
            let Ok(ping) = Ping::decode(&buf[..n]) else { continue };
            self.last_ping = Some(received);
            if !self.who.admits(from) || !self.limits.allow(from.ip(), received) {
                stats.sync_refused.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let t2 = timetag_from_system_time(wall.wall_at(received, 0.0));
            let t3 = timetag_from_system_time(wall.wall_at(Instant::now(), 0.0));
            let pong = Pong::answer(ping, t2, t3, stats.sync_epoch.load(Ordering::Relaxed));
            // Non-blocking: a full socket buffer loses the pong (the receiver's next ping asks
            // again); it is not counted as answered.
            if socket.send_to(&pong.encode(), from).is_ok() {
                stats.sync_answered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// `[network-thread]` Records the timescale of `wall` (a new anchor, or the first of an
/// activation) and bumps the epoch in `stats` when it moved against the monotonic clock by more
/// than [`STEP_NS`] since the last one recorded.
pub fn observe_anchor(wall: &WallClock, stats: &Stats) {
    record_timescale(timescale_at_base(wall), stats);
}

/// [`observe_anchor`] for the timescale's value at the fixed moment ([`timescale_at_base`]).
fn record_timescale(mapping: i64, stats: &Stats) {
    let last = stats.sync_timescale.swap(mapping, Ordering::Relaxed);
    if last != 0 && (i128::from(mapping) - i128::from(last)).abs() > STEP_NS {
        stats.sync_epoch.fetch_add(1, Ordering::Relaxed);
    }
}

/// The wall-clock time `wall` maps one fixed monotonic moment (the first this process asked
/// for) to, ns since the Unix epoch; never 0 (which [`Stats::sync_timescale`] keeps for "none
/// yet"). Two anchors of an unchanged timescale give the same value to the pairing's error.
fn timescale_at_base(wall: &WallClock) -> i64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    let ns = osc_timecode_core::chase::unix_nanos(wall.wall_at(base, 0.0));
    match i64::try_from(ns).unwrap_or(i64::MAX) {
        0 => 1,
        ns => ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::values::{Target, Targets};

    fn settings(target: &str, allow: &[&str], enabled: bool) -> Settings {
        let mut s =
            Settings { targets: Targets::one(Target::new(target.parse().unwrap()).unwrap()), ..Settings::default() };
        let json = serde_json::json!({ "enabled": enabled, "allow": allow });
        s.cues = serde_json::from_value(json).unwrap();
        s
    }

    #[test]
    fn targets_and_the_confined_allow_list_are_answered() {
        let from = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 9);
        let who = Answerable::of(&settings("10.1.2.3:5006", &["127.0.0.3", "192.168.0.0/16"], true), false);
        assert!(who.admits(from("10.1.2.3")), "a target's address, any port");
        assert!(who.admits(from("127.0.0.3")), "in the allow-list");
        assert!(!who.admits(from("127.0.0.2")), "neither");
        assert!(!who.admits(from("192.168.1.1")), "beyond loopback, while the machine does not allow it");
        let who = Answerable::of(&settings("10.1.2.3:5006", &["192.168.0.0/16"], true), true);
        assert!(who.admits(from("192.168.1.1")), "the machine allows network cue input");
        // A disabled cue input confines its list all the same.
        let who = Answerable::of(&settings("127.0.0.1:5006", &["192.168.0.0/16"], false), false);
        assert!(!who.admits(from("192.168.1.1")));
        assert!(who.admits(from("127.0.0.1")));
    }

    #[test]
    fn the_epoch_moves_when_the_timescale_steps() {
        let stats = Stats::default();
        let wall = WallClock::now();
        observe_anchor(&wall, &stats);
        observe_anchor(&WallClock::now(), &stats);
        assert_eq!(stats.sync_epoch.load(Ordering::Relaxed), 0, "the same timescale, read again");
        let now = timescale_at_base(&wall);
        // Slew within a re-anchor interval: no step.
        record_timescale(now + 900_000, &stats);
        assert_eq!(stats.sync_epoch.load(Ordering::Relaxed), 0);
        // A wall clock set 5 ms ahead, then 2 ms back.
        record_timescale(now + 5_900_000, &stats);
        assert_eq!(stats.sync_epoch.load(Ordering::Relaxed), 1);
        record_timescale(now + 3_900_000, &stats);
        assert_eq!(stats.sync_epoch.load(Ordering::Relaxed), 2);
        record_timescale(now + 3_900_000, &stats);
        assert_eq!(stats.sync_epoch.load(Ordering::Relaxed), 2, "no step since");
    }

    #[test]
    fn pings_are_answered_from_the_socket_with_their_length_and_others_ignored() {
        let plugin = UdpSocket::bind("127.0.0.1:0").unwrap();
        plugin.set_nonblocking(true).unwrap();
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let target = receiver.local_addr().unwrap().to_string();
        let mut responder = Responder::new(&settings(&target, &[], true));
        let stats = Stats::default();
        let wall = WallClock::now();
        let ping = Ping { id: 7, origin: -3 };
        receiver.send_to(b"not a ping", plugin.local_addr().unwrap()).unwrap();
        receiver.send_to(&ping.encode(), plugin.local_addr().unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.sync_answered.load(Ordering::Relaxed) == 0 {
            assert!(Instant::now() < deadline, "never answered");
            responder.answer(&plugin, &wall, &stats);
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut buf = [0u8; 256];
        let (n, from) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!((n, from), (PACKET_LEN, plugin.local_addr().unwrap()));
        let pong = Pong::decode(&buf[..n]).unwrap();
        assert_eq!((pong.id, pong.origin, pong.epoch), (7, -3, 0));
        let ntp = |t: rosc::OscTime| (u64::from(t.seconds) << 32) | u64::from(t.fractional);
        assert!(ntp(pong.received) <= ntp(pong.sent), "T2 <= T3");
        assert_eq!(stats.sync_refused.load(Ordering::Relaxed), 0, "the garbage is ignored, not counted");
        assert!(responder.recent(Instant::now()));
    }
}
