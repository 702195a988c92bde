//! The plugin advertises itself over DNS-SD (issue 18): with `advertise = true` under `[plugin]`
//! in this machine's config file ([`Machine`], never from a project: a project must not expose
//! a machine it is opened on), an `_osc._udp` service with role=master at the cue input's socket,
//! so TouchOSC, Chataigne and `osc-timecode discover` list it as a place to send cues to. The
//! TXT record is `serve --advertise`'s ([`osc_timecode_net::dnssd`]).
//!
//! Why a thread of its own: the cue input's address may change while the plugin runs (the
//! window, a project load), and starting or withdrawing an advertisement waits on mdns-sd's
//! daemon (up to a second each for the goodbye and the shutdown). The advertising thread follows
//! the cue thread's bound socket ([`CueActivity::listen`]) every [`FOLLOW_EVERY`], so neither the
//! cue thread nor the host's main thread ever waits on DNS-SD but for the join at deactivation.
//! Never on the audio thread.
//!
//! What is advertised follows the socket: its address's interfaces only (a loopback cue input
//! on loopback only, said in one line of the host's log), its port, withdrawn (goodbye) when the
//! socket closes or moves and when the plugin deactivates. Cue input off: nothing advertised,
//! one line. A failure to start is one line for each address, and the plugin goes on.
//!
//! The instance name is unique per socket, so two plugin instances on one machine (which cannot
//! share a cue port) never collide: `osc-timecode on HOST (port 5005)`.
//!
//! [`Machine`]: crate::settings::machine::Machine

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use nice_plug::prelude::*;
use osc_timecode_net::dnssd::{self, Advertiser, Reach, Role};

use crate::params::TimecodeParams;
use crate::readout::CueActivity;
use crate::thread::{Priority, StoppableThread};

/// How often the advertising thread looks at the cue input's socket; also how long a stop may
/// wait for it to notice (then the goodbye).
pub const FOLLOW_EVERY: Duration = Duration::from_millis(100);

/// `[main-thread]` In `activate()`: the advertising thread when `advertise` (the machine's
/// setting) is on, else nothing. A thread that cannot start is one line in the log.
pub fn spawn(advertise: bool, params: Arc<TimecodeParams>, activity: Arc<CueActivity>) -> Option<StoppableThread> {
    if !advertise {
        return None;
    }
    match StoppableThread::spawn_at("osc-timecode-dnssd", Priority::Background, move |stop| {
        follow(&stop, &params, &activity);
    }) {
        Ok(thread) => Some(thread),
        Err(e) => {
            nice_error!("could not start the DNS-SD advertising thread: {e}; the plugin is not advertised");
            None
        }
    }
}

/// The instance name for a cue input on `port`: `osc-timecode on HOST (port PORT)`, the host
/// cut so that the whole stays one DNS label (63 bytes).
pub fn instance_name(port: u16) -> String {
    let (head, tail) = ("osc-timecode on ", format!(" (port {port})"));
    let host = dnssd::host_label();
    // The label is ASCII: any byte index is a character boundary.
    let keep = host.len().min(dnssd::MAX_NAME_BYTES - head.len() - tail.len());
    format!("{head}{}{tail}", &host[..keep])
}

/// What the thread advertises now.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Target {
    /// Nothing: the cue input is off.
    Off,
    /// Nothing yet: the cue input is on but its socket is not bound (starting, or the bind
    /// failed, which the cue thread logs).
    Unbound,
    /// The cue input's socket.
    At(SocketAddr),
}

impl Target {
    /// From the cue input's switch and its socket.
    pub fn of(enabled: bool, bound: Option<SocketAddr>) -> Self {
        match (enabled, bound) {
            (_, Some(addr)) => Target::At(addr),
            (false, None) => Target::Off,
            (true, None) => Target::Unbound,
        }
    }
}

/// The line that says what is advertised, for the host's log: the address, how far it reaches
/// and, on loopback, how to be found.
pub fn advertised_line(advertiser: &Advertiser) -> String {
    let line = advertiser.line();
    match advertiser.reach() {
        Reach::Loopback => format!(
            "DNS-SD: {line} (the cue input listens on loopback: to be found from other machines, set {} = true \
             under [plugin] in the config file and listen on an interface's address)",
            crate::settings::NETWORK_CUE_INPUT_KEY
        ),
        Reach::Everywhere | Reach::Address => format!("DNS-SD: {line}"),
    }
}

/// `[dnssd-thread]` Advertises the cue input's socket until `stop`, following its changes.
fn follow(stop: &AtomicBool, params: &TimecodeParams, activity: &CueActivity) {
    let mut current: Option<Target> = None;
    let mut advertiser: Option<Advertiser> = None;
    while !stop.load(Ordering::Acquire) {
        let enabled = params.settings.read().unwrap_or_else(PoisonError::into_inner).cues.enabled;
        let target = Target::of(enabled, activity.listen().bound);
        if current != Some(target) {
            // The goodbye for the old socket first, so a browser never sees both.
            advertiser = None;
            match target {
                Target::Off => nice_log!("DNS-SD: the cue input is off: nothing advertised"),
                Target::Unbound => {}
                Target::At(addr) => match Advertiser::start(Role::Master, &instance_name(addr.port()), addr) {
                    Ok(started) => {
                        nice_log!("{}", advertised_line(&started));
                        advertiser = Some(started);
                    }
                    Err(e) => nice_warn!("DNS-SD: {e}; the plugin is not advertised at {addr}, and goes on"),
                },
            }
            current = Some(target);
        }
        std::thread::sleep(FOLLOW_EVERY);
    }
    if let Some(advertiser) = advertiser {
        let name = advertiser.name().to_owned();
        drop(advertiser);
        nice_log!("DNS-SD: \"{name}\" withdrawn");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_are_one_label_and_name_the_port() {
        let name = instance_name(65535);
        assert!(name.starts_with("osc-timecode on ") && name.ends_with(" (port 65535)"), "{name}");
        assert!(name.len() <= dnssd::MAX_NAME_BYTES, "{name}");
        assert_ne!(instance_name(5005), instance_name(5006), "two instances on one machine");
    }

    #[test]
    fn the_target_follows_the_socket_and_the_switch() {
        let addr: SocketAddr = "127.0.0.1:5005".parse().unwrap();
        assert_eq!(Target::of(true, Some(addr)), Target::At(addr));
        assert_eq!(Target::of(true, None), Target::Unbound);
        assert_eq!(Target::of(false, None), Target::Off);
        // The switch is read every 100 ms by the cue thread too: the socket decides meanwhile.
        assert_eq!(Target::of(false, Some(addr)), Target::At(addr));
    }

    #[test]
    fn off_starts_nothing() {
        let params = Arc::new(TimecodeParams::new(crate::settings::Settings::default()));
        assert!(spawn(false, params, Arc::default()).is_none());
    }
}
