//! DNS-SD discovery (issue 18): `serve --advertise` and `listen --advertise` announce an
//! `_osc._udp` service over multicast DNS, and `osc-timecode discover` lists the ones on the
//! network. `_osc._udp` is what TouchOSC and Chataigne browse for OSC send targets, so a master
//! advertised this way shows up in their target lists without typing an address.
//!
//! Contract: off by default, like every exposure. An advertisement covers only the interfaces
//! of the address the socket is bound to: a loopback bind advertises on loopback only (seen on
//! this machine, nowhere else, and `serve`/`listen` say so in one line), a specific address
//! advertises that address only, an unspecified one (`0.0.0.0`, `[::]`) every interface of its
//! family. What a browse returns is from the network: names and TXT values are printed with
//! control characters replaced, and at most [`MAX_SERVICES`] services are kept.
//!
//! Data flow:
//! 1. [`Advertiser::start`] `[main-thread]` starts mdns-sd's daemon (its own thread over std
//!    sockets, no async runtime) and registers the service; dropping the [`Advertiser`] sends
//!    the goodbye and stops the daemon;
//! 2. [`run`] `[main-thread]` browses for `--seconds`, keeps the resolved services by full name
//!    (a removal drops one) and prints them sorted, as lines or JSON lines.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use serde_json::json;

/// The DNS-SD service type advertised and browsed.
pub const SERVICE_TYPE: &str = "_osc._udp.local.";

/// The protocol named in the TXT record's `proto` key.
pub const PROTO: &str = "osc-timecode/1";

/// At most this many services are kept by one browse; more are counted and said.
pub const MAX_SERVICES: usize = 256;

/// The longest instance name DNS allows (one label), in bytes.
const MAX_NAME_BYTES: usize = 63;

/// How long stopping waits for the daemon's goodbye and shutdown answers, each.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// What the advertised service is, in its TXT `role` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `serve`: its cue and transport port (role=master).
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
}

/// `osc-timecode discover`'s flags.
#[derive(Debug, Args)]
pub struct DiscoverArgs {
    /// How long to browse, in seconds
    #[arg(long, value_name = "N", default_value = "3", value_parser = crate::seconds::parse_length_flag)]
    pub seconds: Duration,

    /// Print one JSON object a line instead of text
    #[arg(long)]
    pub json: bool,
}

/// A running advertisement; dropping it withdraws the service (goodbye packets) and stops the
/// daemon.
pub struct Advertiser {
    /// mdns-sd's daemon handle; its thread answers queries. `[main-thread]` owns the handle.
    daemon: ServiceDaemon,
    /// The registered instance's full name (`NAME._osc._udp.local.`), for the goodbye.
    fullname: String,
}

/// The instance name used when `--advertise` has none: `osc-timecode on HOST` for `serve`,
/// `osc-timecode listen on HOST` for `listen` (two names, so both can run on one machine).
pub fn default_name(role: Role) -> String {
    let host = host_label();
    match role {
        Role::Master => format!("osc-timecode on {host}"),
        Role::Receiver => format!("osc-timecode listen on {host}"),
    }
}

/// The instance name: the one given (trimmed) or the default, cut to 63 bytes.
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
fn host_label() -> String {
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

impl std::fmt::Debug for Advertiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advertiser").field("fullname", &self.fullname).finish_non_exhaustive()
    }
}

impl Advertiser {
    /// Advertises `_osc._udp` at `bound` (the socket's local address, port included) under the
    /// instance name `name` (empty: the default), and says so in one line on standard error.
    pub fn start(role: Role, name: &str, bound: SocketAddr) -> anyhow::Result<Self> {
        let name = instance_name(name, role);
        let (interfaces, address) = scope(bound.ip());
        let daemon = ServiceDaemon::new().context("could not start the DNS-SD (mDNS) responder for --advertise")?;
        // The daemon listens on the advertised interfaces only: nothing else is exposed.
        daemon
            .disable_interface(IfKind::All)
            .and_then(|()| daemon.enable_interface(interfaces.clone()))
            .context("could not choose the interfaces for --advertise")?;
        // A host name of its own: HOST.local. belongs to the system's responder (Avahi, Bonjour),
        // which would see our narrower address set as a conflict, and two advertisers of one
        // machine bound to different addresses must not merge theirs.
        let host = own_host(role, bound.port());
        let txt = [("txtvers", "1"), ("role", role.as_str()), ("proto", PROTO), ("timecode", "/sync/timecode")];
        let addresses = address.map(|a| a.to_string()).unwrap_or_default();
        let mut info = ServiceInfo::new(SERVICE_TYPE, &name, &host, addresses.as_str(), bound.port(), &txt[..])
            .with_context(|| format!("could not advertise \"{name}\""))?;
        if address.is_none() {
            info = info.enable_addr_auto();
        }
        info.set_interfaces(interfaces);
        let fullname = info.get_fullname().to_owned();
        daemon.register(info).with_context(|| format!("could not advertise \"{name}\""))?;
        let reach = if bound.ip().is_loopback() {
            " on loopback only: seen on this machine, nowhere else (bind an interface's address or 0.0.0.0 to be found)"
        } else if bound.ip().is_unspecified() {
            " on every interface"
        } else {
            ""
        };
        crate::note(&format!("advertising \"{name}\" ({} _osc._udp) at {bound}{reach}", role.as_str()));
        Ok(Self { daemon, fullname })
    }
}

impl Drop for Advertiser {
    /// Withdraws the service (the goodbye tells browsers at once) and stops the daemon, waiting
    /// at most a second for each.
    fn drop(&mut self) {
        if let Ok(done) = self.daemon.unregister(&self.fullname) {
            let _ = done.recv_timeout(STOP_WAIT);
        }
        if let Ok(done) = self.daemon.shutdown() {
            let _ = done.recv_timeout(STOP_WAIT);
        }
    }
}

/// One service found by a browse.
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
        let role = match service.txt_properties.get_property_val_str("role") {
            Some("master") => Some(Role::Master),
            Some("receiver") => Some(Role::Receiver),
            _ => None,
        };
        let mut addresses: Vec<IpAddr> = service.addresses.iter().map(|a| a.to_ip_addr()).collect();
        addresses.sort();
        Self {
            name: printable(&unescape(name)),
            role,
            addresses,
            port: service.port,
            proto: service.txt_properties.get_property_val_str("proto").map(printable),
        }
    }

    /// `address:port` for each address, `[v6]:port` for IPv6.
    fn endpoints(&self) -> Vec<String> {
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

    /// The JSON object: name, role (`master`, `receiver` or `other`), addresses, port, proto.
    pub fn json(&self) -> serde_json::Value {
        json!({
            "name": self.name,
            "role": self.role.map_or("other", Role::as_str),
            "addresses": self.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "port": self.port,
            "endpoints": self.endpoints(),
            "proto": self.proto,
        })
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

/// Text from the network with control characters replaced, so a name cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect()
}

/// Browses `_osc._udp` for `seconds` and returns what is there at the end, sorted by name, and
/// how many services were left out past [`MAX_SERVICES`].
pub fn browse(seconds: Duration) -> anyhow::Result<(Vec<Found>, usize)> {
    let daemon = ServiceDaemon::new().context("could not start the DNS-SD (mDNS) browser")?;
    let events = daemon.browse(SERVICE_TYPE).context("could not browse for _osc._udp")?;
    let deadline = Instant::now() + seconds;
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut left_out = std::collections::BTreeSet::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match events.recv_timeout(left) {
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
            // Timed out (the deadline) or the daemon is gone.
            Err(_) => break,
        }
    }
    let _ = daemon.stop_browse(SERVICE_TYPE);
    if let Ok(done) = daemon.shutdown() {
        let _ = done.recv_timeout(STOP_WAIT);
    }
    let mut list: Vec<Found> = found.into_values().collect();
    list.sort_by(|a, b| a.name.cmp(&b.name).then(a.port.cmp(&b.port)));
    Ok((list, left_out.len()))
}

/// Runs `osc-timecode discover`: browses, prints what it found (nothing found is one line on
/// standard error), exit 0.
pub fn run(args: &DiscoverArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let (found, left_out) = browse(args.seconds)?;
    let mut out = std::io::stdout().lock();
    for service in &found {
        if args.json {
            writeln!(out, "{}", service.json())?;
        } else {
            writeln!(out, "{}", service.line())?;
        }
    }
    out.flush()?;
    if found.is_empty() {
        crate::note(&format!("no _osc._udp service found in {} s", args.seconds.as_secs_f64()));
    }
    if left_out > 0 {
        crate::note(&format!("{left_out} more services left out (at most {MAX_SERVICES} are listed)"));
    }
    Ok(())
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
    }
}
