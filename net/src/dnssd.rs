//! DNS-SD discovery (issue 18): announcing an `_osc._udp` service over multicast DNS, and
//! browsing for the ones on the network. `_osc._udp` is what TouchOSC and Chataigne browse for
//! OSC send targets, so a master advertised this way shows up in their target lists without
//! typing an address. Used by the client (`serve/listen --advertise`, `osc-timecode discover`)
//! and the plugin (`advertise = true` under `[plugin]`, the window's "Find receivers").
//!
//! Contract: nothing here is on by default; the callers decide. An advertisement covers only
//! the interfaces of the address the socket is bound to: a loopback bind advertises on loopback
//! only (seen on this machine, nowhere else: [`Reach::Loopback`], which the callers say in one
//! line), a specific address advertises that address only, an unspecified one (`0.0.0.0`,
//! `[::]`) every interface of its family. What a browse returns is from the network: names and
//! TXT values have their control characters replaced ([`printable`]), at most [`MAX_SERVICES`]
//! services are kept, and a browse ends at its deadline or when its caller cancels it.
//!
//! Data flow:
//! 1. [`Advertiser::start`] `[main-thread]` (or a network thread: never the audio thread) starts
//!    mdns-sd's daemon (its own thread over std sockets, no async runtime) and registers the
//!    service; dropping the [`Advertiser`] sends the goodbye and stops the daemon;
//! 2. [`browse`] (any thread but the audio and GUI threads: it blocks for its length) keeps the
//!    resolved services by full name (a removal drops one) and returns them sorted.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};

/// mdns-sd's error, the reason inside a [`DnssdError`].
pub use mdns_sd::Error as MdnsError;

/// The DNS-SD service type advertised and browsed.
pub const SERVICE_TYPE: &str = "_osc._udp.local.";

/// The protocol named in the TXT record's `proto` key.
pub const PROTO: &str = "osc-timecode/1";

/// The TXT record's keys and fixed values, as docs/PROTOCOL.md lists them. Public names: frozen
/// by the tests.
pub mod txt {
    /// The key of the TXT record's version.
    pub const VERSION_KEY: &str = "txtvers";
    /// The TXT record's version.
    pub const VERSION: &str = "1";
    /// The key of the role: `master` or `receiver` ([`super::Role`]).
    pub const ROLE_KEY: &str = "role";
    /// The key of the protocol ([`super::PROTO`]).
    pub const PROTO_KEY: &str = "proto";
    /// The key of the timecode address.
    pub const TIMECODE_KEY: &str = "timecode";
    /// The timecode address.
    pub const TIMECODE: &str = "/sync/timecode";
}

/// At most this many services are kept by one browse; more are counted.
pub const MAX_SERVICES: usize = 256;

/// The longest instance name DNS allows (one label), in bytes.
pub const MAX_NAME_BYTES: usize = 63;

/// How long stopping waits for the daemon's goodbye and shutdown answers, each.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// How often a browse looks at its cancel flag, at most this far apart.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Why advertising or browsing could not start. Each says what failed and mdns-sd's reason.
#[derive(Debug, thiserror::Error)]
pub enum DnssdError {
    /// mdns-sd's daemon did not start (its sockets, its thread).
    #[error("could not start the DNS-SD (mDNS) responder: {0}")]
    Daemon(MdnsError),
    /// The daemon refused the interfaces of the bound address.
    #[error("could not choose the interfaces to advertise on: {0}")]
    Interfaces(MdnsError),
    /// The service was refused (its name, its address) or not registered.
    #[error("could not advertise \"{name}\": {reason}")]
    Advertise {
        /// The instance name.
        name: String,
        /// mdns-sd's reason.
        reason: MdnsError,
    },
    /// The browse did not start.
    #[error("could not browse for _osc._udp: {0}")]
    Browse(MdnsError),
}

/// What the advertised service is, in its TXT `role` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A master: `serve` or the plugin, at its cue and transport port (role=master).
    Master,
    /// `listen`: its timecode port (role=receiver).
    Receiver,
}

impl Role {
    /// The TXT value.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Receiver => "receiver",
        }
    }

    /// The role a TXT value names, if it is one of ours.
    pub fn from_txt(value: &str) -> Option<Self> {
        match value {
            "master" => Some(Role::Master),
            "receiver" => Some(Role::Receiver),
            _ => None,
        }
    }
}

/// How far an advertisement reaches, by the bound address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A loopback address: this machine only.
    Loopback,
    /// An unspecified address (`0.0.0.0`, `[::]`): every interface of its family.
    Everywhere,
    /// One address: its interface, that address only.
    Address,
}

impl Reach {
    /// The reach of a socket bound to `ip`.
    pub fn of(ip: IpAddr) -> Self {
        if ip.is_loopback() {
            Reach::Loopback
        } else if ip.is_unspecified() {
            Reach::Everywhere
        } else {
            Reach::Address
        }
    }

    /// What the announcement line says after the address: empty for one address.
    pub fn says(self) -> &'static str {
        match self {
            Reach::Loopback => " on loopback only: seen on this machine, nowhere else",
            Reach::Everywhere => " on every interface",
            Reach::Address => "",
        }
    }
}

/// A running advertisement; dropping it withdraws the service (goodbye packets) and stops the
/// daemon, waiting at most a second for each.
pub struct Advertiser {
    /// mdns-sd's daemon handle; its own thread answers queries. Owned by the thread that started
    /// it (`[main-thread]` in the client, the plugin's advertising thread).
    daemon: ServiceDaemon,
    /// The registered instance's full name (`NAME._osc._udp.local.`), for the goodbye.
    fullname: String,
    /// The instance name, as advertised.
    name: String,
    /// What is advertised.
    role: Role,
    /// The socket's address, port included.
    bound: SocketAddr,
}

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser").field("fullname", &self.fullname).finish_non_exhaustive()
    }
}

/// The instance name used when none is given: `osc-timecode on HOST` for a master,
/// `osc-timecode listen on HOST` for a receiver (two names, so both can run on one machine).
pub fn default_name(role: Role) -> String {
    let host = host_label();
    match role {
        Role::Master => format!("osc-timecode on {host}"),
        Role::Receiver => format!("osc-timecode listen on {host}"),
    }
}

/// The instance name: the one given (trimmed) or the default, cut to [`MAX_NAME_BYTES`] at a
/// character boundary.
pub fn instance_name(given: &str, role: Role) -> String {
    let given = given.trim();
    let mut name = if given.is_empty() { default_name(role) } else { given.to_owned() };
    if name.len() > MAX_NAME_BYTES {
        let mut end = MAX_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// This machine's host name as a DNS label: letters, digits and hyphens, "localhost" if none.
pub fn host_label() -> String {
    let raw = gethostname::gethostname().to_string_lossy().into_owned();
    let first = raw.split('.').next().unwrap_or_default();
    let label: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' })
        .take(MAX_NAME_BYTES)
        .collect();
    let label = label.trim_matches('-');
    if label.is_empty() { "localhost".to_owned() } else { label.to_owned() }
}

/// The advertisement's own host name, `HOST-osctc-ROLE-PORT.local.`, HOST cut so that the label
/// stays within 63 bytes.
fn own_host(role: Role, port: u16) -> String {
    let tail = format!("-osctc-{}-{port}", role.as_str());
    let host = host_label();
    let keep = host.len().min(MAX_NAME_BYTES - tail.len());
    format!("{}{tail}.local.", host[..keep].trim_end_matches('-'))
}

/// Where an advertisement for a socket bound to `ip` goes: the interfaces to use and, for a
/// specific address, that address (an unspecified bind takes every address of the interfaces).
fn scope(ip: IpAddr) -> (Vec<IfKind>, Option<IpAddr>) {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => (vec![IfKind::IPv4], None),
        IpAddr::V6(v6) if v6.is_unspecified() => (vec![IfKind::All], None),
        IpAddr::V4(v4) if v4.is_loopback() => (vec![IfKind::LoopbackV4], Some(ip)),
        IpAddr::V6(v6) if v6.is_loopback() => (vec![IfKind::LoopbackV6], Some(ip)),
        _ => (vec![IfKind::Addr(ip)], Some(ip)),
    }
}

impl Advertiser {
    /// Advertises `_osc._udp` at `bound` (the socket's local address, port included) under the
    /// instance name `name` (empty: the role's default, see [`instance_name`]), with the TXT
    /// record `txtvers`, `role`, `proto` and `timecode`. The caller says so, with
    /// [`Advertiser::line`].
    pub fn start(role: Role, name: &str, bound: SocketAddr) -> Result<Self, DnssdError> {
        let name = instance_name(name, role);
        let (interfaces, address) = scope(bound.ip());
        let daemon = ServiceDaemon::new().map_err(DnssdError::Daemon)?;
        let advertiser = |daemon: &ServiceDaemon| -> Result<String, DnssdError> {
            // The daemon listens on the advertised interfaces only: nothing else is exposed.
            daemon
                .disable_interface(IfKind::All)
                .and_then(|()| daemon.enable_interface(interfaces.clone()))
                .map_err(DnssdError::Interfaces)?;
            // A host name of its own: HOST.local. belongs to the system's responder (Avahi,
            // Bonjour), which would see our narrower address set as a conflict, and two
            // advertisers of one machine bound to different addresses must not merge theirs.
            let host = own_host(role, bound.port());
            let txt = [
                (txt::VERSION_KEY, txt::VERSION),
                (txt::ROLE_KEY, role.as_str()),
                (txt::PROTO_KEY, PROTO),
                (txt::TIMECODE_KEY, txt::TIMECODE),
            ];
            let addresses = address.map(|a| a.to_string()).unwrap_or_default();
            let refused = |reason| DnssdError::Advertise { name: name.clone(), reason };
            let mut info = ServiceInfo::new(SERVICE_TYPE, &name, &host, addresses.as_str(), bound.port(), &txt[..])
                .map_err(refused)?;
            if address.is_none() {
                info = info.enable_addr_auto();
            }
            info.set_interfaces(interfaces.clone());
            let fullname = info.get_fullname().to_owned();
            daemon.register(info).map_err(refused)?;
            Ok(fullname)
        };
        match advertiser(&daemon) {
            Ok(fullname) => Ok(Self { daemon, fullname, name, role, bound }),
            Err(e) => {
                stop(&daemon);
                Err(e)
            }
        }
    }

    /// The instance name, as advertised.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How far the advertisement reaches.
    pub fn reach(&self) -> Reach {
        Reach::of(self.bound.ip())
    }

    /// The line that says what is advertised:
    /// `advertising "NAME" (master _osc._udp) at 127.0.0.1:5005 on loopback only: seen on this
    /// machine, nowhere else` (callers add how to be found, in their own words).
    pub fn line(&self) -> String {
        format!(
            "advertising \"{}\" ({} _osc._udp) at {}{}",
            self.name,
            self.role.as_str(),
            self.bound,
            self.reach().says()
        )
    }
}

impl Drop for Advertiser {
    /// Withdraws the service (the goodbye tells browsers at once) and stops the daemon, waiting
    /// at most a second for each.
    fn drop(&mut self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(STOP_WAIT);
        }
        stop(&self.daemon);
    }
}

/// Stops `daemon`, waiting at most [`STOP_WAIT`] for its thread to say so.
fn stop(daemon: &ServiceDaemon) {
    if let Ok(done) = daemon.shutdown() {
        let _ = done.recv_timeout(STOP_WAIT);
    }
}

/// One service found by a browse. Its texts are [`printable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The instance name, unescaped (the full name less `._osc._udp.local.`).
    pub name: String,
    /// The TXT `role` if it is `master` or `receiver`, else `None` (another OSC service).
    pub role: Option<Role>,
    /// The service's addresses, sorted.
    pub addresses: Vec<IpAddr>,
    /// The service's UDP port.
    pub port: u16,
    /// The TXT `proto`, if any.
    pub proto: Option<String>,
}

impl Found {
    /// From mdns-sd's resolved service.
    fn from_resolved(service: &mdns_sd::ResolvedService) -> Self {
        let name = service.fullname.strip_suffix(&format!(".{SERVICE_TYPE}")).unwrap_or(&service.fullname);
        let role = service.txt_properties.get_property_val_str(txt::ROLE_KEY).and_then(Role::from_txt);
        let mut addresses: Vec<IpAddr> = service.addresses.iter().map(|a| a.to_ip_addr()).collect();
        addresses.sort();
        Self {
            name: printable(&unescape(name)),
            role,
            addresses,
            port: service.port,
            proto: service.txt_properties.get_property_val_str(txt::PROTO_KEY).map(printable),
        }
    }

    /// `address:port` for each address, `[v6]:port` for IPv6.
    pub fn endpoints(&self) -> Vec<String> {
        self.addresses.iter().map(|ip| SocketAddr::new(*ip, self.port).to_string()).collect()
    }

    /// The text line: `NAME: master at 127.0.0.1:5007 (osc-timecode/1)`.
    pub fn line(&self) -> String {
        let role = self.role.map_or("other OSC service", Role::as_str);
        let at = self.endpoints();
        let at = if at.is_empty() { format!("port {}", self.port) } else { at.join(", ") };
        let proto = self.proto.as_ref().map(|p| format!(" ({p})")).unwrap_or_default();
        format!("{}: {role} at {at}{proto}", self.name)
    }
}

/// DNS-SD instance names escape dots and backslashes (`a\.b`); the name as its owner typed it.
fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Text from the network with control characters replaced (U+FFFD), so a name cannot drive a
/// terminal or break a line.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// What a browse found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Browsed {
    /// The services there at the end, sorted by name then port; at most [`MAX_SERVICES`].
    pub found: Vec<Found>,
    /// How many more services were seen past [`MAX_SERVICES`] (counted up to that many again).
    pub left_out: usize,
}

/// Browses `_osc._udp` on every interface for `length` and returns what is there at the end.
/// Blocks for `length`, less when `cancel` is set (seen within 100 ms; what was found so far is
/// returned).
pub fn browse(length: Duration, cancel: &AtomicBool) -> Result<Browsed, DnssdError> {
    let daemon = ServiceDaemon::new().map_err(DnssdError::Daemon)?;
    let events = match daemon.browse(SERVICE_TYPE) {
        Ok(events) => events,
        Err(e) => {
            stop(&daemon);
            return Err(DnssdError::Browse(e));
        }
    };
    let deadline = Instant::now() + length;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut left_out = BTreeSet::new();
    while !cancel.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left.min(CANCEL_POLL)) {
            Ok(ServiceEvent::ServiceResolved(service)) => {
                let key = service.fullname.clone();
                if found.len() < MAX_SERVICES || found.contains_key(&key) {
                    found.insert(key, Found::from_resolved(&service));
                } else if left_out.len() < MAX_SERVICES {
                    left_out.insert(key);
                }
            }
            Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                found.remove(&fullname);
            }
            Ok(_) => {}
            // Timed out: look at the deadline and the flag again.
            Err(_) if !events.is_disconnected() => {}
            // The daemon is gone.
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    stop(&daemon);
    let mut list: Vec<Found> = found.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name).then(a.port.cmp(&b.port)));
    Ok(Browsed { found: list, left_out: left_out.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_to_one_dns_label_and_default_per_role() {
        assert!(instance_name("", Role::Master).starts_with("osc-timecode on "));
        assert!(instance_name("  ", Role::Receiver).starts_with("osc-timecode listen on "));
        assert_eq!(instance_name(" stage left ", Role::Master), "stage left");
        let long = "é".repeat(40);
        let cut = instance_name(&long, Role::Master);
        assert_eq!(cut.len(), 62, "cut at a character boundary under 63 bytes");
    }

    #[test]
    fn own_host_is_one_label() {
        let host = own_host(Role::Receiver, 65535);
        let label = host.strip_suffix(".local.").unwrap_or_default();
        assert!(label.ends_with("-osctc-receiver-65535") && label.len() <= 63 && !label.contains('.'), "{host}");
    }

    #[test]
    fn unescape_and_printable() {
        assert_eq!(unescape(r"a\.b\\c"), r"a.b\c");
        assert_eq!(unescape("trailing\\"), "trailing");
        assert_eq!(printable("x\u{1b}[2Jy\n"), "x\u{fffd}[2Jy\u{fffd}");
    }

    #[test]
    fn scope_follows_the_bound_address() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let (kinds, address) = scope(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(matches!(kinds[..], [IfKind::IPv4]) && address.is_none());
        let (kinds, address) = scope(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(matches!(kinds[..], [IfKind::LoopbackV4]) && address == Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let (kinds, _) = scope(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert!(matches!(kinds[..], [IfKind::LoopbackV6]));
        let ip: IpAddr = "198.51.100.1".parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (kinds, address) = scope(ip);
        assert!(matches!(&kinds[..], [IfKind::Addr(a)] if *a == ip) && address == Some(ip));
        assert_eq!(Reach::of(IpAddr::V4(Ipv4Addr::LOCALHOST)), Reach::Loopback);
        assert_eq!(Reach::of(IpAddr::V6(Ipv6Addr::UNSPECIFIED)), Reach::Everywhere);
        assert_eq!(Reach::of(ip), Reach::Address);
    }

    #[test]
    fn txt_keys_and_roles_are_public_names() {
        assert_eq!(
            [txt::VERSION_KEY, txt::VERSION, txt::ROLE_KEY, txt::PROTO_KEY, txt::TIMECODE_KEY, txt::TIMECODE],
            ["txtvers", "1", "role", "proto", "timecode", "/sync/timecode"]
        );
        assert_eq!((SERVICE_TYPE, PROTO), ("_osc._udp.local.", "osc-timecode/1"));
        for role in [Role::Master, Role::Receiver] {
            assert_eq!(Role::from_txt(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_txt("Master"), None);
    }
}
