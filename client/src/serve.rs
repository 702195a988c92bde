//! `osc-timecode serve`: a master without a DAW. Free-running timecode from the system clock at
//! a chosen rate and start, sent to the targets exactly as the plugin sends it, and a listen
//! socket for cues, triggers and transport control.
//!
//! Contract: one `/sync/timecode` message per frame, each alone in a bundle timetagged with the
//! frame's wall-clock time, sequence numbers +1 per message, `jump` on the first frame after a
//! start or locate, parked frames with `playing` 0 repeated as keep-alive (docs/PROTOCOL.md).
//! Deadlines are absolute: frame `k` after a (re)start is due `ceil(k·den/num)` s after one
//! anchor, in integer nanoseconds, so the clock does not drift however long it runs
//! ([`transport`]).
//!
//! Threads (two, and the Ctrl-C handler's):
//! 1. `[main-thread]` binds the sockets, then receives on the listen socket with a
//!    `RECV_TIMEOUT` read timeout, answers `/ack` and `/status`, prints cue lines, changes the
//!    transport on `/transport/...`, and checks the stop flag between datagrams. With
//!    `--wait-for-port` and the listen address taken, it tries again every second while the
//!    sender thread already sends timecode (as the plugin does with its cue port);
//! 2. `[sender-thread]` ([`sender`]) sleeps until each frame's deadline and sends it; a
//!    transport change wakes it through [`Shared::changed`];
//! 3. `ctrlc`'s handler thread sets the stop flag on SIGINT, SIGTERM or SIGHUP (Ctrl-Break and
//!    console close on Windows). The main thread then stops the sender, joins it, and the command
//!    exits 0.
//!
//! The two share the [`transport::Transport`] behind a `Mutex` (held only to copy or change a
//! few words, never across I/O) and [`sender::SenderStats`] atomics.

pub mod receiver;
pub mod sender;
pub mod sync;
pub mod transport;

use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use ipnet::IpNet;
use osc_timecode_core::cue::{AllowList, MAX_PACKET, parse_allow_entry};
use osc_timecode_core::{FrameRate, Timecode};
use rosc::OscPacket;

use crate::config::{self, ClientConfig};
use crate::net::{self, InterfaceSpec};
use crate::outputs::spec::{OutputArgs, OutputSpec};
use crate::outputs::{Rig, Say, Timeline};
use crate::port::{PortWaiter, bind_error};
use osc_timecode_core::carriage::Carriage;
use transport::{Now, Transport};

/// Longest wait on the listen socket: bounds how long Ctrl-C takes to end the command.
const RECV_TIMEOUT: Duration = Duration::from_millis(50);

const AFTER_HELP: &str = "\
Examples:
  osc-timecode serve                                    25 fps from 00:00:00:00 to 127.0.0.1:5006
  osc-timecode serve --rate 29.97df --start '01:00:00;00'
  osc-timecode serve --stopped --to 192.168.1.20:5006 --to 192.168.1.21:5006
  osc-timecode serve --to 239.192.50.6:5006 --interface eth0   multicast on eth0 (TTL 1)
  osc-timecode serve --listen 0.0.0.0:5005 --allow 192.168.1.0/24 --token s3cret
  oscsend 127.0.0.1 5005 /transport/play                roll (/transport/stop parks)
  oscsend 127.0.0.1 5005 /transport/locate s 01:00:00:00
  osc-timecode cue 12 100                               acknowledged, printed by serve
  osc-timecode serve --wait-for-port                    timecode at once; cues once 127.0.0.1:5005 is free

Timecode is sent as the plugin sends it (docs/PROTOCOL.md): one /sync/timecode message per frame \
in a bundle timetagged with the frame's time, at absolute deadlines from the system clock (no \
drift). Stopped, the parked frame is repeated every --keepalive-ms.

The listen socket takes /cue/NAME and /trigger/NAME (any NAME; acknowledged and printed on \
standard output, one line each), /transport/play, /transport/stop, /transport/locate TIMECODE and \
/status, from senders in --allow (default loopback), with the token as first argument when one is \
set. Ctrl-C ends it (exit status 0).

Multicast: a group in 239.192.0.0/14 (not 239.255.x.y, where sACN lighting lives) reaches every \
listen that joined it (listen --bind 239.192.50.6:5006 --interface NAME). --interface is required \
for it: the stream leaves from that interface's address, which receivers know the master by. \
--ttl stays 1 unless routers must pass it; switches with IGMP snooping need an IGMP querier on the \
network. Receivers that sync their clock ping serve's address: let them in with --allow.

Defaults: --rate falls back to OSC_TIMECODE_RATE, then [client] rate, then 25; --token to \
OSC_TIMECODE_TOKEN, then [client] token. Errors (port in use, bad address, unknown rate, \
malformed timecode) are one line, exit status 2. With --wait-for-port, a --listen address in use \
is not an error: serve says so once, sends timecode meanwhile, and tries the address again every \
second until it is free.";

/// `osc-timecode serve` options.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, allow_negative_numbers = true)]
pub struct ServeArgs {
    /// Frame rate: 23.976, 24, 25, 29.97, 29.97df, 30, 50, 59.94, 59.94df or 60 [default: 25]
    #[arg(long, value_name = "RATE", env = config::RATE_ENV, value_parser = config::parse_rate)]
    rate: Option<FrameRate>,

    /// First label (HH:MM:SS:FF, HH:MM:SS;FF at drop-frame rates) [default: frame 0, 00:00:00:00 or
    /// 00:00:00;00]
    // NOTE: hyphen values allowed so that `-00:00:05:00` gets the timecode parser's message.
    //   No default label: `00:00:00:00` is not a label at drop-frame rates (issue 14, `serve
    //   --rate 29.97df` exited at once), so the default is frame 0, labelled at the rate chosen.
    #[arg(long, value_name = "TIMECODE", allow_hyphen_values = true)]
    start: Option<String>,

    /// Send timecode here (repeat for more targets): an address, a subnet's broadcast address,
    /// or a multicast group such as 239.192.50.6:5006 (needs --interface, as 255.255.255.255
    /// does) [default: 127.0.0.1:5006]
    #[arg(long = "to", value_name = "HOST:PORT", value_parser = crate::net::parse_socket_addr)]
    targets: Vec<SocketAddr>,

    /// The network interface to send on, by name or address (required for multicast targets and
    /// 255.255.255.255; unicast then leaves from its address too) [or client.interface]
    #[arg(long, value_name = "NAME|ADDRESS", value_parser = crate::net::parse_interface)]
    interface: Option<InterfaceSpec>,

    /// Multicast TTL (IPv6: hop limit), 1 to 255: 1 keeps the stream on the local network
    /// [default: 1, or client.ttl]
    #[arg(long, value_name = "HOPS", value_parser = crate::net::parse_ttl)]
    ttl: Option<u32>,

    /// Receive cues and transport control here
    #[arg(long, value_name = "HOST:PORT", default_value_t = config::DEFAULT_MASTER)]
    listen: SocketAddr,

    /// Advertise the cue port over DNS-SD as an `_osc._udp` service (role=master), under NAME
    /// [default: "osc-timecode on HOST"]; on the interfaces of --listen's address only
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    advertise: Option<String>,

    /// Accept messages from this address or CIDR range (repeat for more) [default: 127.0.0.0/8
    /// and ::1]
    #[arg(long = "allow", value_name = "CIDR", value_parser = parse_allow_entry)]
    allow: Vec<IpNet>,

    /// Shared token every message must carry as its first argument [or [client] token in the
    /// config file]
    #[arg(long, env = config::TOKEN_ENV, hide_env_values = true)]
    token: Option<String>,

    /// Start parked at --start instead of rolling (/transport/play rolls)
    #[arg(long)]
    stopped: bool,

    /// While stopped, repeat the parked frame this often, in milliseconds; 0: never
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    keepalive_ms: u64,

    /// Print nothing on standard output (no cue or transport lines)
    #[arg(long)]
    quiet: bool,

    /// If the --listen address is in use, say so once, send timecode meanwhile and retry every
    /// second until it is free (default: exit with an error)
    #[arg(long)]
    wait_for_port: bool,

    /// LTC, MTC and Art-Net of serve's own timecode, for a console with no DAW at all.
    #[command(flatten)]
    outputs: OutputArgs,
}

/// What the main thread and the sender thread share.
#[derive(Debug)]
pub struct Shared {
    /// The transport. `[thread-safe]`: changed by the main thread, read by both; each holds the
    /// lock only to copy or change a few words.
    pub transport: Mutex<Transport>,
    /// Notified on every transport change and at shutdown: wakes the sender thread from its
    /// sleep until the next deadline.
    pub changed: Condvar,
    /// The sender's counters. `[thread-safe]`: written by the sender thread, read for `/status`.
    pub stats: sender::SenderStats,
    /// The sync responders' counters and clock epoch. `[thread-safe]`.
    pub sync: sync::SyncStats,
    /// When serve started: the monotonic origin the responders measure steps against.
    pub started: std::time::Instant,
}

impl Shared {
    /// Shared state around `transport`.
    pub fn new(transport: Transport) -> Self {
        Self {
            transport: Mutex::new(transport),
            changed: Condvar::new(),
            stats: sender::SenderStats::default(),
            sync: sync::SyncStats::new(),
            started: std::time::Instant::now(),
        }
    }
}

/// Runs `serve` until Ctrl-C (or SIGTERM).
pub fn run(args: ServeArgs, config: &ClientConfig) -> anyhow::Result<()> {
    let rate = args.rate.or(config.rate).unwrap_or(config::DEFAULT_RATE);
    let start = match &args.start {
        Some(label) => Timecode::parse(label, rate).with_context(|| format!("invalid --start at {rate}"))?,
        None => Timecode::from_frame(0, rate),
    };
    let token = args.token.or_else(|| config.token.clone()).filter(|t| !t.is_empty());
    let targets = if args.targets.is_empty() { vec![config::DEFAULT_TIMECODE] } else { args.targets };
    let allow = if args.allow.is_empty() { AllowList::loopback() } else { AllowList::new(args.allow) };

    let mut waiter = PortWaiter::new(args.listen, "could not listen on");
    let socket = if args.wait_for_port {
        // A taken address is reported after the startup line, once the clock runs.
        match UdpSocket::bind(args.listen) {
            Ok(socket) => Some(socket),
            Err(e) if crate::port::worth_waiting_for(&e) => None,
            Err(e) => return Err(bind_error("could not listen on", args.listen, e)),
        }
    } else {
        Some(UdpSocket::bind(args.listen).map_err(|e| bind_error("could not listen on", args.listen, e))?)
    };
    // After the bind, so the advertised port is the bound one (--listen HOST:0 included).
    let _advertised = match &args.advertise {
        Some(name) => Some(crate::discover::advertise(
            osc_timecode_net::dnssd::Role::Master,
            name,
            socket.as_ref().and_then(|s| s.local_addr().ok()).unwrap_or(args.listen),
        )?),
        None => None,
    };
    let listening = match &socket {
        Some(socket) => socket.local_addr().unwrap_or(args.listen).to_string(),
        None => format!("{} (once it is free)", args.listen),
    };
    let interface = match args.interface.as_ref().or(config.interface.as_ref()) {
        Some(spec) => Some(net::resolve(spec)?),
        None => None,
    };
    let ttl = args.ttl.or(config.ttl).unwrap_or(net::DEFAULT_TTL);
    let sockets = sender::Targets::open(targets.clone(), &net::SendOptions { interface, ttl })?;
    let spec = OutputSpec::merge(&args.outputs, &config.outputs)?;
    // The rate is known: an output that cannot carry it is refused now, not silent later.
    if !spec.is_empty()
        && let Err(e) = Carriage::of(rate, spec.half_rate)
    {
        anyhow::bail!("the outputs {}", crate::outputs::refused(e));
    }
    let timeline = Timeline::new();
    let say: Say = Arc::new(|line: String| crate::note(&line));
    let rig = Rig::start(&spec, &timeline, &say)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Release))
            .context("could not install the Ctrl-C handler")?;
    }

    let shared = Arc::new(Shared::new(Transport::new(rate, start.to_frame(), !args.stopped, Now::read())));
    let keepalive = Some(Duration::from_millis(args.keepalive_ms)).filter(|d| !d.is_zero());
    let follow = (!rig.is_empty()).then(|| Arc::clone(&timeline));
    let responders = sync::Responders::start(
        sockets.clones().context("could not share the timecode sockets with the sync responder")?,
        &sync::Answerable::new(&targets, allow.clone()),
        &shared,
    )?;
    let sender = sender::SenderThread::spawn(Arc::clone(&shared), sockets, keepalive, follow)?;

    let to: Vec<String> = targets.iter().map(SocketAddr::to_string).collect();
    crate::note(&format!(
        "serving timecode at rate {rate} from {start} ({}) to {}; cues and transport on {listening}{}; Ctrl-C ends",
        if args.stopped { "stopped" } else { "rolling" },
        to.join(", "),
        if token.is_some() { " (token required)" } else { "" },
    ));

    let mut receiver = receiver::Receiver::new(allow, token, Arc::clone(&shared));
    let result = match socket {
        Some(socket) => listen(socket, &mut receiver, &stop, args.quiet),
        None => wait_then_listen(&mut waiter, &mut receiver, &stop, args.quiet),
    };

    sender.stop()?;
    responders.join();
    let outputs = rig.stop();
    result.and(outputs)
}

/// Tries the listen address every second until it is free (or `stop` is set), then receives.
fn wait_then_listen(
    waiter: &mut PortWaiter,
    receiver: &mut receiver::Receiver,
    stop: &AtomicBool,
    quiet: bool,
) -> anyhow::Result<()> {
    while !stop.load(Ordering::Acquire) {
        let note = |line: &str| crate::note(&format!("cues and transport: {line}; timecode is sent meanwhile"));
        if let Some(socket) = waiter.poll(std::time::Instant::now(), note)? {
            let local = socket.local_addr().map_or_else(|_| "the address".to_owned(), |a| a.to_string());
            crate::note(&format!("cues and transport on {local} now"));
            return listen(socket, receiver, stop, quiet);
        }
        std::thread::sleep(RECV_TIMEOUT);
    }
    Ok(())
}

/// Sets the read timeout, then receives and answers until `stop` is set.
fn listen(socket: UdpSocket, receiver: &mut receiver::Receiver, stop: &AtomicBool, quiet: bool) -> anyhow::Result<()> {
    socket.set_read_timeout(Some(RECV_TIMEOUT)).context("could not set the listen socket's timeout")?;
    receive(&socket, receiver, stop, quiet)
}

/// Receives and answers until `stop` is set.
fn receive(
    socket: &UdpSocket,
    receiver: &mut receiver::Receiver,
    stop: &AtomicBool,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; MAX_PACKET];
    while !stop.load(Ordering::Acquire) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            // ICMP errors from earlier replies (the sender has gone) surface here on some
            // systems: not fatal.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e).context("could not receive on the listen socket"),
        };
        for outcome in receiver.handle_datagram(&buf[..n], from) {
            if let Some(reply) = outcome.reply {
                let sent = rosc::encoder::encode(&OscPacket::Message(reply))
                    .map_err(|e| std::io::Error::other(format!("{e:?}")))
                    .and_then(|bytes| socket.send_to(&bytes, from));
                if sent.is_err() {
                    receiver.counters.reply_errors += 1;
                }
            }
            if let Some(line) = outcome.line
                && !quiet
            {
                // A reader that went away does not stop the clock: the lines are for people.
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            }
        }
    }
    Ok(())
}
