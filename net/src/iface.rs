//! Sockets on a chosen network interface (issue 18): multicast timecode (`serve --to
//! GROUP:PORT`, `listen --bind GROUP:PORT`, the plugin's multicast targets), broadcast targets
//! (`serve --to 192.168.1.255:5006`), an interface by name or address (`--interface`,
//! `[client] interface`, `[plugin] interface`), and IPv6 link-local addresses with an interface
//! name as scope (`[fe80::1%eth0]:5006`).
//!
//! Why each choice (measurements in the research notes, network.md section 3):
//! - A multicast sender always names its interface (`IP_MULTICAST_IF` by the interface's IPv4
//!   address, `IPV6_MULTICAST_IF` by index): without it the kernel picks the default route's
//!   interface, or refuses (`ENETUNREACH`) where there is none. By address rather than by index,
//!   so the datagrams' source is that interface's address: `listen` identifies masters by it.
//!   Hence a multicast target without an interface is refused ([`check_target`]) instead of
//!   guessed.
//! - The TTL (hop limit) is [`DEFAULT_TTL`] unless the user says otherwise: the stream stays on
//!   the link.
//! - A multicast receiver binds the unspecified address at the port (not the group: the sync
//!   pongs come back to it by unicast), joins the group on the interface by index (`ip_mreqn`),
//!   and on Linux turns `IP_MULTICAST_ALL` off, so it gets only the groups it joined on the
//!   interfaces it joined them on, not every group some other socket of the machine joined.
//! - A broadcast target is the limited broadcast 255.255.255.255 or the directed broadcast of
//!   one of this machine's IPv4 subnets when the socket is opened ([`is_broadcast`]); its
//!   sending socket gets `SO_BROADCAST`, which the OS requires for it (`EACCES` without), and no
//!   other socket does. A directed broadcast is routed by its subnet, like unicast. The limited
//!   broadcast goes wherever the routing table's default points, or nowhere (`ENETUNREACH`),
//!   so it needs an interface as a group does, and its socket is bound to that interface's
//!   IPv4 address: Linux sends a limited broadcast from a bound address out of the interface
//!   holding it. Broadcasts flood every host of the link and stop at routers and VLANs:
//!   multicast is the better default (network.md section 3.2).
//! - Rust's address parser takes only numeric IPv6 scope ids; names are translated here.
//!
//! The errors are typed and say what is wrong without naming a command-line option; each
//! program words the fix its own way (`--interface`, `[plugin] interface`).
//!
//! Everything here runs at setup (`[main-thread]`, or a network thread before it opens its
//! sockets); nothing on a timing path, nothing on the audio thread.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::ops::RangeInclusive;

use socket2::{Domain, Protocol, Socket, Type};

/// The multicast TTL (IPv6: hop limit) when the user says none: one link.
pub const DEFAULT_TTL: u32 = 1;

/// The multicast TTLs a user may ask for, in hops.
pub const TTL_RANGE: RangeInclusive<u32> = 1..=255;

/// A TTL outside [`TTL_RANGE`] or not a number: the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the multicast TTL is a whole number of hops from 1 to 255, not {0:?}")]
pub struct BadTtl(pub String);

/// A TTL as text: a whole number in [`TTL_RANGE`].
pub fn parse_ttl(text: &str) -> Result<u32, BadTtl> {
    text.trim().parse::<u32>().ok().filter(|ttl| TTL_RANGE.contains(ttl)).ok_or_else(|| BadTtl(text.to_owned()))
}

/// An interface as a user names it: its name (`eth0`, `en0`) or one of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InterfaceSpec {
    /// By name, as the OS lists it.
    Name(String),
    /// By an address the interface holds.
    Address(IpAddr),
}

impl fmt::Display for InterfaceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// A text that is neither an interface name nor an address: the text given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an interface name or address (e.g. eth0 or 192.168.1.20)")]
pub struct BadInterface(pub String);

impl std::str::FromStr for InterfaceSpec {
    type Err = BadInterface;

    fn from_str(text: &str) -> Result<Self, BadInterface> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Self::Address(ip));
        }
        // Names are short on every OS (15 bytes on Linux); Windows' friendly names have spaces.
        if text.is_empty() || text.len() > 256 || text.chars().any(char::is_control) {
            return Err(BadInterface(text.to_owned()));
        }
        Ok(Self::Name(text.to_owned()))
    }
}

/// One network interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its index (IPv6 scope id, multicast joins).
    pub index: u32,
    /// Its IPv4 addresses, in the OS's order.
    pub v4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses, link-local ones included, in the OS's order.
    pub v6: Vec<Ipv6Addr>,
    /// The directed broadcast addresses of its IPv4 subnets ([`directed_broadcasts`]), each
    /// once.
    pub broadcast: Vec<Ipv4Addr>,
}

impl Interface {
    /// Whether `ip` is one of its addresses.
    pub fn holds(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self.v4.contains(&ip),
            IpAddr::V6(ip) => self.v6.contains(&ip),
        }
    }

    /// Its address of `ip`'s family to bind or send from: IPv4's first; for IPv6 a global one
    /// before a link-local one (which gets the interface as scope).
    pub fn address_like(&self, ip: IpAddr) -> Option<SocketAddr> {
        match ip {
            IpAddr::V4(_) => self.v4.first().map(|&v4| SocketAddr::from((v4, 0))),
            IpAddr::V6(_) => {
                let global = self.v6.iter().find(|a| !is_link_local(a));
                global.or_else(|| self.v6.first()).map(|&v6| {
                    let scope = if is_link_local(&v6) { self.index } else { 0 };
                    SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope))
                })
            }
        }
    }
}

/// `fe80::/10`.
fn is_link_local(ip: &Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// This machine's interfaces that have an address, grouped by name, in the OS's order.
pub fn interfaces() -> std::io::Result<Vec<Interface>> {
    let mut list: Vec<Interface> = Vec::new();
    for entry in if_addrs::get_if_addrs()? {
        let Some(index) = entry.index else { continue };
        let at = match list.iter().position(|i| i.name == entry.name) {
            Some(at) => at,
            None => {
                list.push(Interface {
                    name: entry.name.clone(),
                    index,
                    v4: Vec::new(),
                    v6: Vec::new(),
                    broadcast: Vec::new(),
                });
                list.len() - 1
            }
        };
        let interface = &mut list[at];
        match entry.addr {
            if_addrs::IfAddr::V4(v4) => {
                interface.v4.push(v4.ip);
                for address in directed_broadcasts(v4.ip, v4.prefixlen, v4.broadcast) {
                    if !interface.broadcast.contains(&address) {
                        interface.broadcast.push(address);
                    }
                }
            }
            if_addrs::IfAddr::V6(v6) => interface.v6.push(v6.ip),
        }
    }
    Ok(list)
}

/// The directed broadcast addresses of the IPv4 address `ip/prefix_len`, as Linux routes them
/// (its local routing table has a broadcast route for each): the one the OS lists with the
/// address (`ip addr add ... brd B`, `given`), and the subnet's highest address when the
/// subnet has one (shorter than /31; RFC 3021's /31 links have none), also when no broadcast
/// address was configured. Neither the address itself, nor 0.0.0.0, nor the limited broadcast.
pub fn directed_broadcasts(ip: Ipv4Addr, prefix_len: u8, given: Option<Ipv4Addr>) -> Vec<Ipv4Addr> {
    let subnet = (prefix_len < 31).then(|| Ipv4Addr::from(u32::from(ip) | (u32::MAX >> prefix_len)));
    let mut list: Vec<Ipv4Addr> = Vec::with_capacity(2);
    for address in [given, subnet].into_iter().flatten() {
        if address != ip && !address.is_unspecified() && !address.is_broadcast() && !list.contains(&address) {
            list.push(address);
        }
    }
    list
}

/// An interface a user names that this machine does not have (yet: an adapter still coming up
/// at boot), or the list could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What was asked for.
    pub spec: InterfaceSpec,
    /// The names there are, for the message; empty if the list could not be read.
    pub known: Vec<String>,
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.spec {
            InterfaceSpec::Name(name) => write!(f, "no network interface named {name} on this machine")?,
            InterfaceSpec::Address(ip) => write!(f, "no network interface of this machine has the address {ip}")?,
        }
        if !self.known.is_empty() {
            write!(f, " (it has {})", self.known.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Missing {}

/// The interface `spec` names among `list`.
pub fn find(spec: &InterfaceSpec, list: &[Interface]) -> Result<Interface, Missing> {
    let found = match spec {
        InterfaceSpec::Name(name) => list.iter().find(|i| &i.name == name),
        InterfaceSpec::Address(ip) => list.iter().find(|i| i.holds(*ip)),
    };
    found.cloned().ok_or_else(|| Missing { spec: spec.clone(), known: list.iter().map(|i| i.name.clone()).collect() })
}

/// The interface `spec` names on this machine.
pub fn resolve(spec: &InterfaceSpec) -> Result<Interface, Missing> {
    let list = interfaces().unwrap_or_default();
    find(spec, &list)
}

/// Whether `addr` is a multicast group.
pub fn is_multicast(addr: &SocketAddr) -> bool {
    addr.ip().is_multicast()
}

/// Whether `addr` is the limited broadcast, 255.255.255.255.
pub fn is_limited_broadcast(addr: &SocketAddr) -> bool {
    addr.ip() == IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// Whether `addr` is a broadcast address: the limited broadcast, or the directed broadcast of
/// one of `list`'s IPv4 subnets (this machine's interfaces: [`interfaces`]). A directed
/// broadcast of some other network is a unicast address here, as it is to the OS.
pub fn is_broadcast(addr: &SocketAddr, list: &[Interface]) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_broadcast() || list.iter().any(|i| i.broadcast.contains(&ip)),
        IpAddr::V6(_) => false,
    }
}

/// Whether an Art-Net target is sent with `SO_BROADCAST`: a broadcast address as the OS knows it
/// ([`is_broadcast`]: the limited one, or the directed broadcast of one of `list`'s subnets,
/// 192.168.1.127 for a /25 too), or any address ending in .255 as written, the broadcast of every
/// /24 and wider subnet (Art-Net's own 2.255.255.255 and 10.255.255.255) even before its
/// interface is up. The plugin's and the client's Art-Net outputs both use it.
pub fn artnet_broadcast(ip: Ipv4Addr, list: &[Interface]) -> bool {
    ip.octets()[3] == 255 || is_broadcast(&SocketAddr::from((ip, 0)), list)
}

/// Whether a target needs an interface to be sent to: a multicast group or the limited
/// broadcast, which the routing table would send out of whichever interface its default
/// route names, or none.
pub fn needs_interface(addr: &SocketAddr) -> bool {
    is_multicast(addr) || is_limited_broadcast(addr)
}

/// "multicast" or "broadcast", for messages about a target that [`needs_interface`].
pub fn cast(addr: &SocketAddr) -> &'static str {
    if is_multicast(addr) { "multicast" } else { "broadcast" }
}

/// Why a text is not a socket address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadAddress {
    /// Not `HOST:PORT` as std reads it (std's own message).
    #[error("{0}")]
    Syntax(std::net::AddrParseError),
    /// `[IPV6%NAME]:PORT` whose scope names no interface of this machine.
    #[error("the scope of {text}: {missing}")]
    Scope {
        /// The address as given.
        text: String,
        /// The interface not found.
        missing: Missing,
    },
}

/// `HOST:PORT` as std parses it, plus IPv6 scope ids given as interface names
/// (`[fe80::1%eth0]:5006`), translated to the interface's index.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, BadAddress> {
    parse_socket_addr_with(text, |name| resolve(&InterfaceSpec::Name(name.to_owned())).map(|i| i.index))
}

/// [`parse_socket_addr`] with the name-to-index lookup given (for tests).
pub fn parse_socket_addr_with(
    text: &str,
    index_of: impl FnOnce(&str) -> Result<u32, Missing>,
) -> Result<SocketAddr, BadAddress> {
    let text = text.trim();
    // std's own error for anything but a named scope.
    let std_error = match text.parse::<SocketAddr>() {
        Ok(addr) => return Ok(addr),
        Err(e) => e,
    };
    let bad = || BadAddress::Syntax(std_error.clone());
    let inner = text.strip_prefix('[').ok_or_else(bad)?;
    let (host, port) = inner.split_once("]:").ok_or_else(bad)?;
    let (ip, scope) = host.split_once('%').ok_or_else(bad)?;
    let ip: Ipv6Addr = ip.parse().map_err(|_| bad())?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if scope.is_empty() || scope.chars().any(char::is_control) {
        return Err(bad());
    }
    let index = index_of(scope).map_err(|missing| BadAddress::Scope { text: text.to_owned(), missing })?;
    Ok(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, index)))
}

/// What the sending sockets do for multicast and broadcast targets.
#[derive(Debug, Clone, Default)]
pub struct SendOptions {
    /// The interface to send on; required for multicast targets and the limited broadcast.
    pub interface: Option<Interface>,
    /// The multicast TTL (IPv6: hop limit), in [`TTL_RANGE`].
    pub ttl: u32,
}

/// Why a multicast or limited broadcast target cannot be sent to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsendable {
    /// No interface to send it on was given.
    #[error("{} to {target} needs an interface to send it on", cast(.target))]
    NoInterface {
        /// The group or the limited broadcast.
        target: SocketAddr,
    },
    /// An IPv4 group or the limited broadcast, and the interface has no IPv4 address, which
    /// would be the datagrams' source.
    #[error(
        "{} to {target}: interface {interface} has no IPv4 address to send it from (its address is the source \
         receivers know the master by)",
        cast(.target)
    )]
    NoIpv4Address {
        /// The group or the limited broadcast.
        target: SocketAddr,
        /// The interface's name.
        interface: String,
    },
}

/// Refuses a multicast or limited broadcast `target` with no interface to send it on (or, for
/// IPv4, one without an IPv4 address); any other target is fine, a directed broadcast too.
pub fn check_target(target: SocketAddr, options: &SendOptions) -> Result<(), Unsendable> {
    if !needs_interface(&target) {
        return Ok(());
    }
    let Some(interface) = &options.interface else { return Err(Unsendable::NoInterface { target }) };
    if target.is_ipv4() && interface.v4.is_empty() {
        return Err(Unsendable::NoIpv4Address { target, interface: interface.name.clone() });
    }
    Ok(())
}

/// A UDP socket bound to `bind` for sending to `targets` (one address family), with the
/// multicast interface and TTL set when any of them is a multicast group, and `SO_BROADCAST`
/// when any of them is a broadcast address ([`is_broadcast`], this machine's subnets as they
/// are now). For the limited broadcast, `bind` is the interface's address ([`sending_bind`]).
pub fn sending_socket(bind: SocketAddr, targets: &[SocketAddr], options: &SendOptions) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&bind.into())?;
    if any_broadcast(targets, interfaces) {
        socket.set_broadcast(true)?;
    }
    if targets.iter().any(is_multicast)
        && let Some(interface) = &options.interface
    {
        if bind.is_ipv4() {
            if let Some(&ip) = interface.v4.first() {
                socket.set_multicast_if_v4(&ip)?;
            }
            socket.set_multicast_ttl_v4(options.ttl)?;
        } else {
            socket.set_multicast_if_v6(interface.index)?;
            socket.set_multicast_hops_v6(options.ttl)?;
        }
    }
    Ok(socket.into())
}

/// Whether any of `targets` is a broadcast address. The interface list (`list`) is read only
/// when some target could be a directed broadcast (an IPv4 address other than a group).
fn any_broadcast(targets: &[SocketAddr], list: impl FnOnce() -> std::io::Result<Vec<Interface>>) -> bool {
    if targets.iter().any(is_limited_broadcast) {
        return true;
    }
    if !targets.iter().any(|t| t.is_ipv4() && !is_multicast(t)) {
        return false;
    }
    let list = list().unwrap_or_default();
    targets.iter().any(|t| is_broadcast(t, &list))
}

/// Where a master's sending socket for `family` (the targets of one address family) is bound:
/// loopback when every target is loopback (the default), else `interface`'s address of that
/// family if one is given (so the stream's source address stays that address, which receivers
/// know the master by, whatever addresses the interface gains later), else the unspecified
/// address. An IPv6 link-local address only when every target is on the link (multicast or
/// link-local): it cannot be the source of anything routed. A limited broadcast target needs
/// the interface's address: that is what makes it leave on that interface.
pub fn sending_bind(family: &[SocketAddr], v6: bool, interface: Option<&Interface>) -> SocketAddr {
    let (lo, any): (IpAddr, IpAddr) = if v6 {
        (Ipv6Addr::LOCALHOST.into(), Ipv6Addr::UNSPECIFIED.into())
    } else {
        (Ipv4Addr::LOCALHOST.into(), Ipv4Addr::UNSPECIFIED.into())
    };
    if family.iter().all(|t| t.ip().is_loopback()) {
        return (lo, 0).into();
    }
    let on_link = |t: &SocketAddr| match t.ip() {
        IpAddr::V6(ip) => ip.is_multicast() || is_link_local(&ip),
        IpAddr::V4(_) => true,
    };
    let usable = |addr: &SocketAddr| match addr.ip() {
        IpAddr::V6(ip) if is_link_local(&ip) => family.iter().all(on_link),
        _ => true,
    };
    interface.and_then(|i| i.address_like(any)).filter(usable).unwrap_or_else(|| (any, 0).into())
}

/// Where a receiving socket binds and what it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivePlan {
    /// The address bound.
    pub bind: SocketAddr,
    /// The group joined and the interface's index, for a multicast address.
    pub join: Option<(IpAddr, u32)>,
}

/// Why a receiving socket cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreceivable {
    /// A multicast group, and no interface to join it on.
    #[error("listening to the multicast group {group} needs an interface to join it on")]
    NoInterface {
        /// The group and port.
        group: SocketAddr,
    },
    /// The interface has no address of the family asked for.
    #[error("interface {interface} has no {family} address to listen on")]
    NoAddress {
        /// The interface's name.
        interface: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
    },
    /// The address asked for is not the interface's.
    #[error("{addr} is not an address of interface {interface}")]
    NotItsAddress {
        /// The address asked for.
        addr: SocketAddr,
        /// The interface's name.
        interface: String,
    },
}

/// The plan for receiving at `addr` on `interface` (already resolved):
/// - a multicast group: the unspecified address at its port, joined on the interface (which it
///   needs);
/// - with an interface, an unspecified or loopback address (as the default is): that
///   interface's address of the same family at the port; any other address must be the
///   interface's;
/// - otherwise `addr` itself.
pub fn receive_plan(addr: SocketAddr, interface: Option<&Interface>) -> Result<ReceivePlan, Unreceivable> {
    if is_multicast(&addr) {
        let Some(interface) = interface else { return Err(Unreceivable::NoInterface { group: addr }) };
        let any: IpAddr = if addr.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        return Ok(ReceivePlan { bind: (any, addr.port()).into(), join: Some((addr.ip(), interface.index)) });
    }
    let Some(interface) = interface else { return Ok(ReceivePlan { bind: addr, join: None }) };
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        let mut bind = interface.address_like(addr.ip()).ok_or_else(|| Unreceivable::NoAddress {
            interface: interface.name.clone(),
            family: if addr.is_ipv4() { "IPv4" } else { "IPv6" },
        })?;
        bind.set_port(addr.port());
        return Ok(ReceivePlan { bind, join: None });
    }
    if !interface.holds(addr.ip()) {
        return Err(Unreceivable::NotItsAddress { addr, interface: interface.name.clone() });
    }
    Ok(ReceivePlan { bind: addr, join: None })
}

/// A UDP socket bound and joined as `plan` says. Errors are the OS's (an address in use can be
/// waited for).
pub fn receiving_socket(plan: &ReceivePlan) -> std::io::Result<UdpSocket> {
    let Some((group, index)) = plan.join else { return UdpSocket::bind(plan.bind) };
    let socket = Socket::new(Domain::for_address(plan.bind), Type::DGRAM, Some(Protocol::UDP))?;
    match group {
        IpAddr::V4(group) => {
            socket.bind(&plan.bind.into())?;
            // NOTE: off before the join, so not a datagram of some other socket's groups slips in.
            #[cfg(target_os = "linux")]
            socket.set_multicast_all_v4(false)?;
            socket.join_multicast_v4_n(&group, &socket2::InterfaceIndexOrAddress::Index(index))?;
        }
        IpAddr::V6(group) => {
            socket.set_only_v6(true)?;
            socket.bind(&plan.bind.into())?;
            #[cfg(target_os = "linux")]
            socket.set_multicast_all_v6(false)?;
            socket.join_multicast_v6(&group, index)?;
        }
    }
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 3,
            v4: vec![Ipv4Addr::new(198, 51, 100, 1)],
            v6: vec!["fe80::1".parse().unwrap(), "2001:db8::1".parse().unwrap()],
            broadcast: vec![Ipv4Addr::new(198, 51, 100, 127)],
        }
    }

    #[test]
    fn interface_specs_names_and_addresses() {
        assert_eq!("eth0".parse(), Ok(InterfaceSpec::Name("eth0".into())));
        assert_eq!(" 198.51.100.1 ".parse(), Ok(InterfaceSpec::Address("198.51.100.1".parse().unwrap())));
        assert_eq!("fe80::1".parse(), Ok(InterfaceSpec::Address("fe80::1".parse().unwrap())));
        assert!("".parse::<InterfaceSpec>().is_err());
        assert!("eth\n0".parse::<InterfaceSpec>().is_err());
        assert!("x".repeat(257).parse::<InterfaceSpec>().is_err());
        assert_eq!(
            "".parse::<InterfaceSpec>().unwrap_err().to_string(),
            "\"\" is not an interface name or address (e.g. eth0 or 192.168.1.20)"
        );
    }

    #[test]
    fn find_by_name_or_address_and_say_what_there_is() {
        let list = [
            Interface {
                name: "lo".into(),
                index: 1,
                v4: vec![Ipv4Addr::LOCALHOST],
                v6: vec![Ipv6Addr::LOCALHOST],
                broadcast: vec![Ipv4Addr::new(127, 255, 255, 255)],
            },
            eth0(),
        ];
        assert_eq!(find(&InterfaceSpec::Name("eth0".into()), &list).unwrap().index, 3);
        assert_eq!(find(&InterfaceSpec::Address("fe80::1".parse().unwrap()), &list).unwrap().name, "eth0");
        let missing = find(&InterfaceSpec::Name("eth9".into()), &list).unwrap_err();
        assert_eq!(missing.to_string(), "no network interface named eth9 on this machine (it has lo, eth0)");
        let missing = find(&InterfaceSpec::Address("10.9.9.9".parse().unwrap()), &[]).unwrap_err();
        assert_eq!(missing.to_string(), "no network interface of this machine has the address 10.9.9.9");
    }

    #[test]
    fn scope_names_become_indexes() {
        let list = [eth0()];
        let lookup = |name: &str| find(&InterfaceSpec::Name(name.into()), &list).map(|i| i.index);
        let addr = parse_socket_addr_with("[fe80::1%eth0]:5006", lookup).unwrap();
        assert_eq!(addr, SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5006, 0, 3)));
        // Numeric scopes and plain addresses are std's.
        let addr = parse_socket_addr_with("[fe80::1%7]:5006", lookup).unwrap();
        assert_eq!(addr, SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5006, 0, 7)));
        assert_eq!(parse_socket_addr_with("239.192.50.6:5006", lookup).unwrap().port(), 5006);
        let e = parse_socket_addr_with("[fe80::1%eth9]:5006", lookup).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the scope of [fe80::1%eth9]:5006: no network interface named eth9 on this machine (it has eth0)"
        );
        for bad in ["[fe80::1%]:5006", "[fe80::1%eth0]", "[fe80::1%eth0]:99999", "[nonsense%eth0]:1", "host:5006", ""] {
            let e = parse_socket_addr_with(bad, lookup).unwrap_err();
            assert_eq!(e.to_string(), "invalid socket address syntax", "{bad:?}");
        }
    }

    #[test]
    fn multicast_targets_need_an_interface_with_an_address_of_their_family() {
        let group: SocketAddr = "239.192.50.6:5006".parse().unwrap();
        let unicast: SocketAddr = "198.51.100.2:5006".parse().unwrap();
        let none = SendOptions { interface: None, ttl: 1 };
        assert_eq!(check_target(unicast, &none), Ok(()));
        assert_eq!(check_target(group, &none), Err(Unsendable::NoInterface { target: group }));
        assert_eq!(check_target(group, &SendOptions { interface: Some(eth0()), ttl: 1 }), Ok(()));
        let v6_only = Interface { v4: Vec::new(), ..eth0() };
        let e = check_target(group, &SendOptions { interface: Some(v6_only.clone()), ttl: 1 }).unwrap_err();
        assert_eq!(e, Unsendable::NoIpv4Address { target: group, interface: "eth0".into() });
        assert!(e.to_string().contains("has no IPv4 address"), "{e}");
        let v6_group: SocketAddr = "[ff02::6a]:5006".parse().unwrap();
        assert_eq!(check_target(v6_group, &SendOptions { interface: Some(v6_only), ttl: 1 }), Ok(()));
    }

    #[test]
    fn directed_broadcasts_as_linux_routes_them() {
        let ip = Ipv4Addr::new(198, 51, 100, 1);
        let b = |text: &str| text.parse::<Ipv4Addr>().unwrap();
        // No broadcast configured: the subnet's highest address all the same.
        assert_eq!(directed_broadcasts(ip, 25, None), [b("198.51.100.127")]);
        assert_eq!(directed_broadcasts(ip, 24, Some(b("198.51.100.255"))), [b("198.51.100.255")]);
        assert_eq!(directed_broadcasts(b("10.1.2.3"), 8, None), [b("10.255.255.255")]);
        // A configured one that is not the subnet's: both are routed as broadcasts.
        assert_eq!(directed_broadcasts(ip, 24, Some(b("198.51.100.0"))), [b("198.51.100.0"), b("198.51.100.255")]);
        // /31 and /32: no broadcast; the address itself, 0.0.0.0 and 255.255.255.255 never.
        let none: [Ipv4Addr; 0] = [];
        assert_eq!(directed_broadcasts(ip, 31, None), none);
        assert_eq!(directed_broadcasts(ip, 32, Some(ip)), none);
        assert_eq!(directed_broadcasts(ip, 32, Some(Ipv4Addr::UNSPECIFIED)), none);
        assert_eq!(directed_broadcasts(ip, 0, None), none, "a /0's highest address is the limited broadcast");
        assert_eq!(directed_broadcasts(ip, 30, Some(Ipv4Addr::BROADCAST)), [b("198.51.100.3")]);
    }

    #[test]
    fn artnet_broadcasts_are_the_oss_and_any_address_ending_in_255() {
        let list = [eth0()];
        for ip in ["255.255.255.255", "192.168.1.255", "2.255.255.255", "10.255.255.255", "198.51.100.127"] {
            assert!(artnet_broadcast(ip.parse().unwrap(), &list), "{ip}");
        }
        for ip in ["127.0.0.1", "192.168.1.20", "10.0.0.254", "192.168.1.127", "0.0.0.0", "198.51.100.1"] {
            assert!(!artnet_broadcast(ip.parse().unwrap(), &list), "{ip}");
        }
    }

    #[test]
    fn broadcast_targets_are_the_limited_one_and_the_subnets_of_the_interfaces() {
        let list = [eth0()];
        let at = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(is_broadcast(&at("255.255.255.255:5006"), &list));
        assert!(is_broadcast(&at("255.255.255.255:5006"), &[]), "whatever the interfaces");
        assert!(is_broadcast(&at("198.51.100.127:5006"), &list), "eth0's /25");
        assert!(!is_broadcast(&at("198.51.100.127:5006"), &[]), "no such subnet here: unicast");
        assert!(!is_broadcast(&at("198.51.100.255:5006"), &list), "another network's: unicast");
        for not in ["198.51.100.2:5006", "198.51.100.1:5006", "239.192.50.6:5006", "[ff02::1]:5006", "[::1]:5006"] {
            assert!(!is_broadcast(&at(not), &list), "{not}");
        }
        // Only the limited broadcast needs an interface, as a group does.
        assert!(needs_interface(&at("255.255.255.255:5006")) && needs_interface(&at("239.192.50.6:5006")));
        assert!(!needs_interface(&at("198.51.100.127:5006")) && !needs_interface(&at("198.51.100.2:5006")));
        let limited = at("255.255.255.255:5007");
        let none = SendOptions { interface: None, ttl: 1 };
        assert_eq!(check_target(limited, &none), Err(Unsendable::NoInterface { target: limited }));
        assert_eq!(
            check_target(limited, &none).unwrap_err().to_string(),
            "broadcast to 255.255.255.255:5007 needs an interface to send it on"
        );
        assert_eq!(check_target(at("198.51.100.127:5006"), &none), Ok(()), "routed by its subnet");
        assert_eq!(check_target(limited, &SendOptions { interface: Some(eth0()), ttl: 1 }), Ok(()));
        let v6_only = Interface { v4: Vec::new(), broadcast: Vec::new(), ..eth0() };
        let e = check_target(limited, &SendOptions { interface: Some(v6_only), ttl: 1 }).unwrap_err();
        assert!(e.to_string().starts_with("broadcast to 255.255.255.255:5007: interface eth0 has no IPv4 address"));
        // Its socket is bound to the interface's address: that is how it leaves there.
        assert_eq!(sending_bind(&[limited], false, Some(&eth0())), "198.51.100.1:0".parse().unwrap());
    }

    #[test]
    fn so_broadcast_only_for_broadcast_targets() {
        // Sockets are opened, nothing is sent.
        let lo = SendOptions { interface: None, ttl: 1 };
        let broadcast = |targets: &[&str]| {
            let targets: Vec<SocketAddr> = targets.iter().map(|t| t.parse().unwrap()).collect();
            let socket = sending_socket("127.0.0.1:0".parse().unwrap(), &targets, &lo).expect("a socket");
            socket.broadcast().unwrap()
        };
        assert!(broadcast(&["255.255.255.255:5006"]));
        assert!(broadcast(&["127.0.0.1:5006", "255.255.255.255:5006"]), "one broadcast target is enough");
        assert!(!broadcast(&["127.0.0.1:5006"]));
        assert!(!broadcast(&["239.192.50.6:5006"]));
        assert!(!broadcast(&["198.51.100.2:5006"]));
        let v6 = sending_socket("[::1]:0".parse().unwrap(), &["[::1]:5006".parse().unwrap()], &lo).unwrap();
        assert!(!v6.broadcast().unwrap());
        // The directed broadcast of a subnet of the interface list given, and of one it has not.
        let list = || Ok(vec![eth0()]);
        assert!(any_broadcast(&["198.51.100.127:5006".parse().unwrap()], list));
        assert!(!any_broadcast(&["198.51.100.126:5006".parse().unwrap()], list));
        let unread = || -> std::io::Result<Vec<Interface>> { panic!("not read for groups and IPv6") };
        assert!(!any_broadcast(&["239.192.50.6:5006".parse().unwrap(), "[::1]:5006".parse().unwrap()], unread));
        // This machine's: loopback's 127.0.0.1/8 has 127.255.255.255 (the kernel routes it as a
        // broadcast, although lo lists none).
        let list = interfaces().unwrap();
        let lo = list.iter().find(|i| i.v4.contains(&Ipv4Addr::LOCALHOST)).expect("a loopback interface");
        assert_eq!(lo.broadcast, [Ipv4Addr::new(127, 255, 255, 255)], "{lo:?}");
        assert!(broadcast(&["127.255.255.255:5006"]));
    }

    #[test]
    fn sending_binds() {
        let lo: SocketAddr = "127.0.0.1:5006".parse().unwrap();
        let group: SocketAddr = "239.192.50.6:5006".parse().unwrap();
        assert_eq!(sending_bind(&[lo], false, Some(&eth0())), "127.0.0.1:0".parse().unwrap());
        assert_eq!(sending_bind(&[group], false, Some(&eth0())), "198.51.100.1:0".parse().unwrap());
        assert_eq!(sending_bind(&[group], false, None), "0.0.0.0:0".parse().unwrap());
        let v6: SocketAddr = "[ff02::6a]:5006".parse().unwrap();
        let global: SocketAddr = "[2001:db8::7]:5006".parse().unwrap();
        assert_eq!(sending_bind(&[v6, global], true, Some(&eth0())), "[2001:db8::1]:0".parse().unwrap());
        let link_only = Interface { v6: vec!["fe80::1".parse().unwrap()], ..eth0() };
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 0, 0, 3));
        assert_eq!(sending_bind(&[v6], true, Some(&link_only)), scoped, "on the link: its link-local address");
        assert_eq!(sending_bind(&[v6, global], true, Some(&link_only)), "[::]:0".parse().unwrap(), "routed: not");
        assert_eq!(sending_bind(&[v6], true, None), "[::]:0".parse().unwrap());
    }

    #[test]
    fn receive_plans() {
        let group: SocketAddr = "239.192.50.6:5006".parse().unwrap();
        assert_eq!(receive_plan(group, None), Err(Unreceivable::NoInterface { group }));
        let plan = receive_plan(group, Some(&eth0())).unwrap();
        assert_eq!(plan, ReceivePlan { bind: "0.0.0.0:5006".parse().unwrap(), join: Some((group.ip(), 3)) });
        let v6: SocketAddr = "[ff02::6a]:5006".parse().unwrap();
        assert_eq!(receive_plan(v6, Some(&eth0())).unwrap().bind, "[::]:5006".parse().unwrap());
        // Unicast with an interface: its address.
        for given in ["127.0.0.1:5006", "0.0.0.0:5006", "198.51.100.1:5006"] {
            let plan = receive_plan(given.parse().unwrap(), Some(&eth0())).unwrap();
            assert_eq!(plan, ReceivePlan { bind: "198.51.100.1:5006".parse().unwrap(), join: None }, "{given}");
        }
        let plan = receive_plan("[::]:5006".parse().unwrap(), Some(&eth0())).unwrap();
        assert_eq!(plan.bind, "[2001:db8::1]:5006".parse().unwrap(), "a global IPv6 address first");
        let e = receive_plan("10.0.0.1:5006".parse().unwrap(), Some(&eth0())).unwrap_err().to_string();
        assert_eq!(e, "10.0.0.1:5006 is not an address of interface eth0");
        let v4_only = Interface { v6: Vec::new(), ..eth0() };
        let e = receive_plan("[::]:5006".parse().unwrap(), Some(&v4_only)).unwrap_err().to_string();
        assert_eq!(e, "interface eth0 has no IPv6 address to listen on");
        let plain: SocketAddr = "127.0.0.1:5006".parse().unwrap();
        assert_eq!(receive_plan(plain, None).unwrap(), ReceivePlan { bind: plain, join: None });
    }

    #[test]
    fn ttl_range() {
        assert_eq!(parse_ttl("1"), Ok(1));
        assert_eq!(parse_ttl(" 255 "), Ok(255));
        for bad in ["0", "256", "-1", "one", ""] {
            assert_eq!(parse_ttl(bad), Err(BadTtl(bad.into())), "{bad:?}");
        }
        assert_eq!(
            BadTtl("0".into()).to_string(),
            "the multicast TTL is a whole number of hops from 1 to 255, not \"0\""
        );
        assert!(TTL_RANGE.contains(&DEFAULT_TTL));
    }

    #[test]
    fn joins_a_group_on_loopback() {
        // Loopback's own index: a join and IP_MULTICAST_ALL off work without any network (no
        // datagram is sent).
        let Some(lo) = interfaces().unwrap_or_default().into_iter().find(|i| i.v4.contains(&Ipv4Addr::LOCALHOST))
        else {
            panic!("no loopback interface with 127.0.0.1");
        };
        let plan =
            ReceivePlan { bind: "0.0.0.0:0".parse().unwrap(), join: Some(("239.192.50.6".parse().unwrap(), lo.index)) };
        let socket = receiving_socket(&plan).expect("join on loopback");
        assert!(socket.local_addr().unwrap().ip().is_unspecified());
    }
}
