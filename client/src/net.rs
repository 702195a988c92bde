//! The command line's side of interfaces, multicast and broadcast (issue 18): clap value parsers for
//! `--interface`, `--ttl`, `serve --to` and `listen --bind`, and the refusals worded with the
//! option that fixes them. The sockets and the interface lookup are the shared crate's
//! ([`osc_timecode_net::iface`], where the reasons for each choice are), which the plugin uses too.
//!
//! Everything here runs on `[main-thread]` at startup; nothing on a timing path.

use std::net::SocketAddr;

use osc_timecode_net::iface::{self, Unreceivable, Unsendable};
pub use osc_timecode_net::iface::{
    DEFAULT_TTL, Interface, InterfaceSpec, ReceivePlan, SendOptions, is_multicast, receiving_socket, resolve,
    sending_bind, sending_socket,
};

/// `--ttl` and `[client] ttl`: 1 to 255 hops.
pub fn parse_ttl(text: &str) -> Result<u32, String> {
    iface::parse_ttl(text).map_err(|e| e.to_string())
}

/// clap value parser for `--interface`.
pub fn parse_interface(text: &str) -> Result<InterfaceSpec, String> {
    text.parse().map_err(|e: iface::BadInterface| e.to_string())
}

/// `HOST:PORT`, IPv6 scope ids as interface names too (`[fe80::1%eth0]:5006`). clap value
/// parser for `serve --to` and `listen --bind`.
pub fn parse_socket_addr(text: &str) -> Result<SocketAddr, String> {
    iface::parse_socket_addr(text).map_err(|e| e.to_string())
}

/// Refuses a multicast or limited broadcast (255.255.255.255) target with no interface to send
/// it on (or, for IPv4, one without an IPv4 address), before any socket is opened: one line
/// naming the target.
pub fn check_targets(targets: &[SocketAddr], options: &SendOptions) -> anyhow::Result<()> {
    for &target in targets {
        match iface::check_target(target, options) {
            Ok(()) => {}
            Err(Unsendable::NoInterface { target }) => {
                let cast = iface::cast(&target);
                anyhow::bail!("{cast} to {target} needs --interface NAME|ADDRESS: the interface to send it on")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The plan for `listen --bind ADDR [--interface]`, `interface` already resolved
/// ([`iface::receive_plan`]).
pub fn receive_plan(addr: SocketAddr, interface: Option<&Interface>) -> anyhow::Result<ReceivePlan> {
    iface::receive_plan(addr, interface).map_err(|e| match e {
        Unreceivable::NoInterface { group } => anyhow::anyhow!(
            "listening to the multicast group {group} needs --interface NAME|ADDRESS: the interface to join it on"
        ),
        e => e.into(),
    })
}
