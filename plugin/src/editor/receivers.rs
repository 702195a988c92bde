//! "Find receivers" in the targets section (issue 18): browses DNS-SD (`_osc._udp`) for the
//! receivers on the network (`osc-timecode listen --advertise`, role=receiver) and offers each
//! address as a target, added through the same check as a typed one ([`parse_target`]: a
//! duplicate shows the same message).
//!
//! Threads: a browse blocks for [`BROWSE_FOR`], so it runs on a worker thread of its own, never
//! on the `[gui-thread]`, which only starts it and polls a channel for the result each frame
//! ([`Finder::poll`]). At most one browse at a time. Dropping the [`Finder`] (the window closes,
//! the plugin unloads) cancels a running browse and joins its thread: a browse sees the cancel
//! within 100 ms ([`dnssd::browse`]), so no thread outlives the window's code.
//!
//! What is listed: receivers, then other OSC services (no `role` of ours: TouchOSC, Chataigne,
//! a lighting desk's OSC input), each address a row with "Add"; masters (`serve`, other plugin
//! instances) are not listed, they take cues, not timecode, and their number is said, and so
//! are IPv6 link-local addresses (an mDNS answer does not name their interface). Names
//! come from the network: control characters are replaced ([`dnssd::printable`], done by the
//! browse) and they are cut to [`MAX_NAME_CHARS`]; at most [`MAX_ROWS`] rows.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use osc_timecode_net::dnssd::{self, Browsed, DnssdError, Role};

use super::edits::ListEdit;
use super::fields::{FieldError, parse_target};
use crate::settings::values::{Target, Targets};

/// How long "Find receivers" browses.
pub const BROWSE_FOR: Duration = Duration::from_secs(3);

/// At most this many rows are listed.
pub const MAX_ROWS: usize = 64;

/// A name from the network is cut to this many characters (an ellipsis marks the cut).
pub const MAX_NAME_CHARS: usize = 40;

/// The browse a [`Finder`] runs: [`dnssd::browse`], or a fake in tests.
pub type BrowseFn = fn(Duration, &AtomicBool) -> Result<Browsed, DnssdError>;

/// One address of a service found, as the window lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The instance name, printable and at most [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// A receiver (`true`) or another OSC service.
    pub receiver: bool,
    /// The address to send timecode to.
    pub endpoint: SocketAddr,
}

impl Row {
    /// What "Add" does: the endpoint as a new target, checked as a typed one is (a duplicate or
    /// an address the targets refuse is the reason, shown in the row).
    pub fn add(&self, targets: &Targets) -> Result<ListEdit<Target>, FieldError> {
        parse_target(&self.endpoint.to_string(), targets, None).map(ListEdit::Add)
    }

    /// What the row says of the service: `receiver` or `other OSC service`.
    pub fn kind(&self) -> &'static str {
        if self.receiver { "receiver" } else { "other OSC service" }
    }
}

/// What one browse found, as the window lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Receivers first, then other OSC services, each by name; at most [`MAX_ROWS`].
    pub rows: Vec<Row>,
    /// Masters found and not listed.
    pub masters: usize,
    /// IPv6 link-local addresses not listed: an mDNS answer does not say which interface they
    /// are on, and without one nothing can be sent to them.
    pub link_local: usize,
    /// Rows past [`MAX_ROWS`] and services past the browse's limit, not listed.
    pub left_out: usize,
}

impl Listing {
    /// The rows of `browsed`.
    pub fn of(browsed: &Browsed) -> Self {
        let mut listing = Listing { left_out: browsed.left_out, ..Listing::default() };
        let mut rows = Vec::new();
        for found in &browsed.found {
            let receiver = match found.role {
                Some(Role::Master) => {
                    listing.masters += 1;
                    continue;
                }
                Some(Role::Receiver) => true,
                None => false,
            };
            let name = bounded(&found.name);
            let (link_local, usable): (Vec<&IpAddr>, Vec<&IpAddr>) =
                found.addresses.iter().partition(|ip| is_link_local_v6(ip));
            listing.link_local += link_local.len();
            rows.extend(usable.into_iter().map(|ip| Row {
                name: name.clone(),
                receiver,
                endpoint: SocketAddr::new(*ip, found.port),
            }));
        }
        // Stable: the browse's order (by name) within each kind.
        rows.sort_by_key(|row| !row.receiver);
        listing.left_out += rows.len().saturating_sub(MAX_ROWS);
        rows.truncate(MAX_ROWS);
        listing.rows = rows;
        listing
    }

    /// The line under the rows: what was found, what is not listed.
    pub fn summary(&self) -> String {
        let receivers = self.rows.iter().filter(|r| r.receiver).count();
        let mut text = match receivers {
            0 => "No receiver found".to_owned(),
            1 => "1 receiver address found".to_owned(),
            n => format!("{n} receiver addresses found"),
        };
        if self.masters > 0 {
            text.push_str(&format!("; {} master(s) not listed (they take cues, not timecode)", self.masters));
        }
        if self.link_local > 0 {
            text.push_str(&format!(
                "; {} IPv6 link-local address(es) not listed (no interface given)",
                self.link_local
            ));
        }
        if self.left_out > 0 {
            text.push_str(&format!("; {} more not listed", self.left_out));
        }
        text.push('.');
        text
    }
}

/// An IPv6 unicast link-local address (`fe80::/10`).
fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// `text` cut to [`MAX_NAME_CHARS`] characters, with control characters replaced.
pub fn bounded(text: &str) -> String {
    let text = dnssd::printable(text);
    if text.chars().count() <= MAX_NAME_CHARS {
        return text;
    }
    let mut cut: String = text.chars().take(MAX_NAME_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// The state of "Find receivers". `[gui-thread]`: owned by the window's view.
pub struct Finder {
    /// The browse it runs.
    browse: BrowseFn,
    /// The running browse, if any.
    running: Option<Running>,
    /// The last browse's outcome: its rows, or why it failed.
    last: Option<Result<Listing, String>>,
    /// The row whose "Add" was refused, and why.
    refused: Option<(SocketAddr, FieldError)>,
}

/// A browse on its worker thread.
struct Running {
    /// Set to end the browse early. `[thread-safe]`.
    cancel: Arc<AtomicBool>,
    /// The outcome, sent once when the browse ends.
    outcome: mpsc::Receiver<Result<Browsed, String>>,
    /// The worker, joined when its outcome came or when the finder is dropped.
    thread: JoinHandle<()>,
}

impl Default for Finder {
    fn default() -> Self {
        Self::with_browse(dnssd::browse)
    }
}

impl std::fmt::Debug for Finder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finder").field("busy", &self.busy()).field("last", &self.last).finish_non_exhaustive()
    }
}

impl Finder {
    /// A finder that runs `browse`.
    pub fn with_browse(browse: BrowseFn) -> Self {
        Self { browse, running: None, last: None, refused: None }
    }

    /// A browse is running.
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// "Find receivers": starts a browse of [`BROWSE_FOR`] on a worker thread, unless one is
    /// running. Returns whether one started.
    pub fn start(&mut self) -> bool {
        if self.running.is_some() {
            return false;
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let (send, outcome) = mpsc::channel();
        let (flag, browse) = (cancel.clone(), self.browse);
        let spawned = std::thread::Builder::new().name("osc-timecode-browse".into()).spawn(move || {
            let _ = send.send(browse(BROWSE_FOR, &flag).map_err(|e| e.to_string()));
        });
        match spawned {
            Ok(thread) => {
                self.running = Some(Running { cancel, outcome, thread });
                self.refused = None;
                true
            }
            Err(e) => {
                self.last = Some(Err(format!("could not start the browse: {e}")));
                false
            }
        }
    }

    /// Each frame: takes the outcome of a browse that ended. Returns whether it changed.
    pub fn poll(&mut self) -> bool {
        let Some(running) = &self.running else { return false };
        let outcome = match running.outcome.try_recv() {
            Ok(outcome) => outcome,
            Err(mpsc::TryRecvError::Empty) => return false,
            // The worker ended without a word: it panicked.
            Err(mpsc::TryRecvError::Disconnected) => Err("the browse stopped unexpectedly".to_owned()),
        };
        if let Some(running) = self.running.take() {
            // It has sent its outcome: it is ending, the join is immediate.
            let _ = running.thread.join();
        }
        self.last = Some(outcome.map(|browsed| Listing::of(&browsed)));
        true
    }

    /// The last browse's outcome.
    pub fn last(&self) -> Option<&Result<Listing, String>> {
        self.last.as_ref()
    }

    /// "Add" on `row`: the edit to apply, or `None` with the reason kept for the row
    /// ([`Finder::refusal`]).
    pub fn add(&mut self, row: &Row, targets: &Targets) -> Option<ListEdit<Target>> {
        match row.add(targets) {
            Ok(edit) => {
                self.refused = None;
                Some(edit)
            }
            Err(e) => {
                self.refused = Some((row.endpoint, e));
                None
            }
        }
    }

    /// Why "Add" on the row at `endpoint` was refused, if it was the last one refused.
    pub fn refusal(&self, endpoint: SocketAddr) -> Option<&FieldError> {
        self.refused.as_ref().filter(|(at, _)| *at == endpoint).map(|(_, e)| e)
    }
}

impl Drop for Finder {
    /// Cancels a running browse and waits for its thread (at most 100 ms for the browse to see
    /// the cancel, then mdns-sd's shutdown).
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.cancel.store(true, Ordering::Relaxed);
            let _ = running.thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::values::Duplicate;
    use osc_timecode_net::dnssd::Found;

    fn found(name: &str, role: Option<Role>, addresses: &[&str], port: u16) -> Found {
        Found {
            name: name.to_owned(),
            role,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            port,
            proto: role.map(|_| dnssd::PROTO.to_owned()),
        }
    }

    /// What the fake network holds: a receiver on two addresses, a master, a TXT-less service,
    /// a receiver whose name tries to drive a terminal and is too long.
    fn network(_length: Duration, _cancel: &AtomicBool) -> Result<Browsed, DnssdError> {
        Ok(Browsed {
            found: vec![
                found("Lighting desk", None, &["10.0.0.9"], 8000),
                found("Stage Right", Some(Role::Receiver), &["10.0.0.5", "127.0.0.1", "fe80::1"], 9001),
                found("osc-timecode on studio (port 5005)", Some(Role::Master), &["10.0.0.2"], 5005),
                found(&format!("\u{1b}[2J{}", "x".repeat(100)), Some(Role::Receiver), &["10.0.0.6"], 9002),
            ],
            left_out: 0,
        })
    }

    fn empty(_length: Duration, _cancel: &AtomicBool) -> Result<Browsed, DnssdError> {
        Ok(Browsed::default())
    }

    /// Blocks until cancelled: the window must never wait for it.
    fn slow(_length: Duration, cancel: &AtomicBool) -> Result<Browsed, DnssdError> {
        while !cancel.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Browsed::default())
    }

    /// Polls like the window does, a frame at a time, until the outcome is there.
    fn finish(finder: &mut Finder) -> Listing {
        for _ in 0..2000 {
            if finder.poll() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!finder.busy(), "the fake browse returns at once");
        finder.last().cloned().expect("an outcome").expect("the fake browse succeeds")
    }

    #[test]
    fn receivers_are_listed_first_masters_are_not_and_names_are_made_safe() {
        let mut finder = Finder::with_browse(network);
        assert!(finder.start());
        let listing = finish(&mut finder);
        let rows: Vec<(String, &str, String)> =
            listing.rows.iter().map(|r| (r.name.clone(), r.kind(), r.endpoint.to_string())).collect();
        let long = format!("\u{fffd}[2J{}…", "x".repeat(MAX_NAME_CHARS - 5));
        assert_eq!(
            rows,
            [
                ("Stage Right".to_owned(), "receiver", "10.0.0.5:9001".to_owned()),
                ("Stage Right".to_owned(), "receiver", "127.0.0.1:9001".to_owned()),
                (long, "receiver", "10.0.0.6:9002".to_owned()),
                ("Lighting desk".to_owned(), "other OSC service", "10.0.0.9:8000".to_owned()),
            ]
        );
        assert_eq!(listing.rows[2].name.chars().count(), MAX_NAME_CHARS);
        assert_eq!((listing.masters, listing.link_local), (1, 1));
        assert_eq!(
            listing.summary(),
            "3 receiver addresses found; 1 master(s) not listed (they take cues, not timecode); 1 IPv6 link-local \
             address(es) not listed (no interface given)."
        );
    }

    #[test]
    fn add_goes_through_the_typed_targets_check() {
        let mut finder = Finder::with_browse(network);
        finder.start();
        let listing = finish(&mut finder);
        let row = &listing.rows[0];
        let mut targets = Targets::default();
        let edit = finder.add(row, &targets).expect("a new target");
        assert_eq!(edit, ListEdit::Add("10.0.0.5:9001".parse().unwrap()));
        edit.apply(&mut targets).unwrap();
        // Added twice: the message typing it gives.
        assert_eq!(finder.add(row, &targets), None);
        let refusal = finder.refusal(row.endpoint).expect("the reason, for this row");
        assert_eq!(*refusal, FieldError::Duplicate(Duplicate("10.0.0.5:9001".into())));
        assert_eq!(refusal.to_string(), "10.0.0.5:9001 is already in the list");
        assert_eq!(
            Some(refusal),
            parse_target("10.0.0.5:9001", &targets, None).err().as_ref(),
            "the same as typing it"
        );
        assert!(finder.refusal(listing.rows[1].endpoint).is_none(), "only the row refused says why");
        assert!(finder.add(&listing.rows[1], &targets).is_some());
        assert!(finder.refusal(row.endpoint).is_none(), "a later add clears it");
    }

    #[test]
    fn one_browse_at_a_time_and_the_window_never_waits() {
        let mut finder = Finder::with_browse(slow);
        assert!(finder.start());
        assert!(finder.busy());
        assert!(!finder.start(), "a second press while browsing does nothing");
        assert!(!finder.poll(), "nothing yet, and poll returns at once");
        assert!(finder.last().is_none());
        // Closing the window cancels and joins the browse.
        drop(finder);
    }

    #[test]
    fn nothing_found_says_so_and_a_failure_is_its_reason() {
        let mut finder = Finder::with_browse(empty);
        finder.start();
        let listing = finish(&mut finder);
        assert_eq!((listing.rows.len(), listing.summary()), (0, "No receiver found.".to_owned()));
        fn broken(_: Duration, _: &AtomicBool) -> Result<Browsed, DnssdError> {
            Err(DnssdError::Browse(dnssd::MdnsError::DaemonShutdown))
        }
        let mut finder = Finder::with_browse(broken);
        finder.start();
        for _ in 0..2000 {
            if finder.poll() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let Some(Err(why)) = finder.last() else { panic!("a failure: {finder:?}") };
        assert!(why.starts_with("could not browse for _osc._udp: "), "{why}");
        // Another press starts again.
        assert!(finder.start());
    }

    #[test]
    fn rows_are_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let browsed = Browsed { found: vec![found("Wall", Some(Role::Receiver), &refs, 9000)], left_out: 3 };
        let listing = Listing::of(&browsed);
        assert_eq!((listing.rows.len(), listing.left_out), (MAX_ROWS, 100 - MAX_ROWS + 3));
        assert!(listing.summary().ends_with(&format!("; {} more not listed.", 100 - MAX_ROWS + 3)));
    }
}
