//! DNS-SD discovery (issue 18), the command line's side: `serve --advertise` and `listen
//! --advertise` announce an `_osc._udp` service over multicast DNS, and `osc-timecode discover`
//! lists the ones on the network. What is announced and how a browse runs is
//! [`osc_timecode_net::dnssd`]'s (the plugin advertises and browses with it too); this module
//! holds the flags, the lines said and the output.
//!
//! Contract: off by default, like every exposure. A loopback bind advertises on loopback only
//! (seen on this machine, nowhere else), and `serve`/`listen` say so in one line.
//!
//! Data flow:
//! 1. [`advertise`] `[main-thread]` starts the advertisement and says so on standard error;
//!    dropping the [`Advertiser`] withdraws it;
//! 2. [`run`] `[main-thread]` browses for `--seconds` and prints the services sorted, as lines
//!    or JSON lines.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use osc_timecode_net::dnssd::{self, Found, MAX_SERVICES, Reach, Role};
use serde_json::json;

pub use osc_timecode_net::dnssd::Advertiser;

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

/// `--advertise [NAME]`: advertises `_osc._udp` at `bound` (the socket's local address, port
/// included) as `role` under `name` (empty: the default), and says so in one line on standard
/// error.
pub fn advertise(role: Role, name: &str, bound: SocketAddr) -> anyhow::Result<Advertiser> {
    let advertiser = Advertiser::start(role, name, bound).context("--advertise")?;
    let hint = match advertiser.reach() {
        Reach::Loopback => " (bind an interface's address or 0.0.0.0 to be found)",
        Reach::Everywhere | Reach::Address => "",
    };
    crate::note(&format!("{}{hint}", advertiser.line()));
    Ok(advertiser)
}

/// A found service as a JSON object: name, role (`master`, `receiver` or `other`), addresses,
/// port, endpoints, proto.
fn json(found: &Found) -> serde_json::Value {
    json!({
        "name": found.name,
        "role": found.role.map_or("other", Role::as_str),
        "addresses": found.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "port": found.port,
        "endpoints": found.endpoints(),
        "proto": found.proto,
    })
}

/// Runs `osc-timecode discover`: browses, prints what it found (nothing found is one line on
/// standard error), exit 0.
pub fn run(args: &DiscoverArgs) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dnssd::Browsed { found, left_out } = dnssd::browse(args.seconds, &AtomicBool::new(false))?;
    let mut out = std::io::stdout().lock();
    for service in &found {
        if args.json {
            writeln!(out, "{}", json(service))?;
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
