//! `osc-timecode listen`: receive `/sync/timecode`, chase the master's timeline, show it.
//!
//! The position comes from [`osc_timecode_core::chase::Chase`] (timetags and frame counts, not
//! arrival times), so network jitter does not reach the display; it is measured and shown. Nor
//! does it reach when a line is written: a thread of its own receives the datagrams (stamping
//! their arrival), and the display redraws when the next frame starts on the chase's timeline,
//! not when the next datagram comes (issue 17).
//!
//! Output, one of:
//! - a terminal: one live line, redrawn at every frame (`01:00:03:12  25  locked  loss 0.0%
//!   jitter 0.42 ms`);
//! - not a terminal: the same as plain lines, one per frame or state change;
//! - `--json`: one object per frame or state change (keys in [`json_line`]).
//!
//! `--record FILE` appends every datagram, with its arrival time, as one JSON object per line
//! (good or not: a malformed packet is recorded with the reason), for looking back after a show.
//! The file is capped (`--record-max-bytes`, 1 GiB by default): at the cap, or on a write error
//! (a full disk), recording stops with one line on standard error and `listen` goes on (issue
//! 14: a full disk ended `listen`).
//!
//! One master at a time: the chase follows the first source (address and port) it hears
//! ([`Chase::on_packet_from`]); timecode from any other is counted as `ignored` and reported once
//! per source on standard error, never mixed in. When the master falls silent (lost, or parked
//! and silent for 3 s) the next source heard is followed, with a line saying so. With `--from`
//! (or `listen_from` in the config file) only those addresses may be followed: datagrams from
//! anyone else are counted as `refused` and reported once per source, before anything decodes
//! them.
//!
//! A taken address is one line and exit status 2, or with `--wait-for-port` a status line and a
//! retry every second until it is free ([`crate::port`]).

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver as ChannelReceiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use ipnet::IpNet;
use osc_timecode_core::FrameRate;
use osc_timecode_core::chase::{Chase, ChaseConfig, ChaseState, PacketEffect, Readout, unix_nanos};
use osc_timecode_core::cue::{AllowList, MAX_PACKET, parse_allow_entry};
use osc_timecode_core::protocol::{decode_timecode_packet, system_time_from_timetag};
use osc_timecode_core::timecode::{frame_at_nanos, frame_start_nanos};

use crate::clock::{Clock, ClockMode, ClockView, local_now};
use crate::config::{self, ClientConfig, LISTEN_ENV};
use crate::net::{self, InterfaceSpec};
use crate::outputs::spec::{OutputArgs, OutputSpec};
use crate::outputs::{Rig, Say, Timeline};
use crate::port::{PortWaiter, bind_error};

/// Longest wait between two looks at the chase: bounds how late a change the next frame start
/// does not announce (freewheel, lost, a frame while locking) or Ctrl-C is seen. Waited on a
/// channel (a futex, precise to tens of microseconds), not on the socket: Linux rounds socket
/// timeouts up to scheduler ticks (5 ms lasted 12 ms, BENCHMARKS.md section 5).
const TICK: Duration = Duration::from_millis(5);
/// The last stretch before a frame start, waited by polling the channel instead of sleeping:
/// timers wake late by 0.1–0.3 ms on some machines (125 µs p50 in the bench's VM), which would
/// be most of the display's lag. At 25 fps it costs 1 % of a core.
const SPIN: Duration = Duration::from_micros(400);
/// The receiver thread's wait on the socket: how long it takes to notice the end.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(50);
/// Datagrams waiting between the receiver thread and the display, at most: a flood is dropped
/// and counted, memory stays bounded (at most this many times [`MAX_PACKET`] bytes).
const QUEUE: usize = 256;
/// Lines from the outputs waiting to be printed, at most; more are dropped (an output that
/// says more than this between two frames is repeating itself).
const SAID: usize = 64;
/// Sources outside `--from` reported by name, each once; later ones are only counted.
const REFUSED_SOURCES_REPORTED: usize = 64;

const AFTER_HELP: &str = "\
Examples:
  osc-timecode listen                          chase timecode sent to 127.0.0.1:5006
  osc-timecode listen --bind 0.0.0.0:5006      from any interface
  osc-timecode listen --json | jq .timecode    one JSON object per frame
  osc-timecode listen --record show.jsonl      also log every packet with its arrival time (up to 1 GiB)
  osc-timecode listen --bind 0.0.0.0:5006 --from 192.168.1.20   only that machine may be the master
  osc-timecode listen --wait-for-port          if 127.0.0.1:5006 is taken, wait until it is free
  osc-timecode listen --bind 239.192.50.6:5006 --interface eth0   join serve's multicast on eth0

States: waiting (nothing yet), stopped (master parked), locking, locked, freewheel (packets \
missing, the clock runs on), lost (missing for more than --freewheel-frames frames). The position \
comes from the packets' timetags and frame counts, so network jitter does not move it; the jitter \
shown is the spread of arrival minus timetag over the last 128 packets. Ctrl-C ends.

One master at a time: the first source (address and port) heard is followed; timecode from others \
is ignored, counted (JSON: ignored) and reported once per source on standard error. A master \
silent for longer than --freewheel-frames frames (3 s when parked) is let go, and the next source \
heard is followed. With --from (repeatable; or listen_from in the [client] table of the config \
file), only those addresses or ranges may be the master: anything from elsewhere is refused \
unread, counted (JSON: refused) and reported once per source. Set it whenever listen binds beyond \
loopback: otherwise any machine that can reach the port can take over the display by speaking \
first.

A multicast --bind (239.192.x.y, ff0X::...) binds the port on every address and joins the group \
on --interface only (required); on Linux the socket gets only the groups it joined itself. A \
link-local --bind takes the interface name as scope: [fe80::1%eth0]:5006.

--record stops at --record-max-bytes (default 1 GiB; or record_max_bytes in the config file), and \
on a write error such as a full disk, with one line on standard error: listen itself goes on.

An address in use is an error (one line, exit status 2); with --wait-for-port, listen says so \
once and tries again every second until it is free.";

/// Arguments of `listen`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, allow_negative_numbers = true)]
pub struct ListenArgs {
    /// Address to receive timecode on, or a multicast group to join (needs --interface)
    /// [default: 127.0.0.1:5006, or client.listen]
    #[arg(long, env = LISTEN_ENV, value_name = "HOST:PORT", value_parser = crate::net::parse_socket_addr)]
    pub bind: Option<SocketAddr>,

    /// The network interface, by name or address: a multicast group is joined on it, another
    /// address is bound on it (loopback or unspecified: its address) [or client.interface]
    #[arg(long, value_name = "NAME|ADDRESS", value_parser = crate::net::parse_interface)]
    pub interface: Option<InterfaceSpec>,

    /// One JSON object per frame on standard output
    #[arg(long)]
    pub json: bool,

    /// Append every packet with its arrival time to FILE (JSON lines)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Stop recording once FILE would grow past this size: bytes, or with KiB, MiB, GiB
    /// [default: 1GiB, or client.record_max_bytes]
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_record_max, allow_hyphen_values = true)]
    pub record_max_bytes: Option<u64>,

    /// Follow only a master at this address or in this CIDR range (repeat for more) [default:
    /// any, or client.listen_from]
    #[arg(long = "from", value_name = "ADDR|CIDR", value_parser = parse_allow_entry)]
    pub from: Vec<IpNet>,

    /// Frames to run on without packets before reporting lost
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub freewheel_frames: u32,

    /// Consecutive agreeing frames needed to lock
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lock_frames: u32,

    /// Stop after this many seconds (for scripts and tests): a decimal number, 0 to a year
    #[arg(long, value_name = "SECONDS", value_parser = crate::seconds::parse_length_flag, allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    /// If the address is in use, say so once and retry every second until it is free (default:
    /// exit with an error)
    #[arg(long)]
    pub wait_for_port: bool,

    /// Advertise the timecode port over DNS-SD as an `_osc._udp` service (role=receiver), under
    /// NAME [default: "osc-timecode listen on HOST"]; on the interfaces of the bound address only
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub advertise: Option<String>,

    /// How the master's timetags are placed on this machine's clock: same (the clocks agree),
    /// sync (measured with /sync/ping), arrival (by arrival times) [default: same for a master
    /// on this machine, sync for one elsewhere; or client.clock]
    #[arg(long, value_name = "MODE")]
    pub clock: Option<ClockMode>,

    /// Move every frame this much later (negative: earlier), ms: trims --clock arrival's bias
    /// (the master's send-ahead) [default: 0, or client.clock_offset_ms]
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = parse_clock_offset)]
    pub clock_offset_ms: Option<f64>,

    /// LTC, MTC and Art-Net re-generated from the chase.
    #[command(flatten)]
    pub outputs: OutputArgs,
}

/// `--clock-offset-ms`: a finite number of milliseconds within ±10 s.
pub fn parse_clock_offset(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v.abs() <= 10_000.0 => Ok(v),
        _ => Err(format!("the clock offset is a number of milliseconds within ±10000, not {text}")),
    }
}

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// One line redrawn in place.
    Live,
    /// Plain lines.
    Lines,
    /// JSON lines.
    Json,
}

/// Runs `listen` until Ctrl-C (or SIGTERM) or `--duration`.
pub fn run(args: ListenArgs, config: &ClientConfig) -> anyhow::Result<()> {
    let bind = args.bind.or(config.listen).unwrap_or(config::DEFAULT_TIMECODE);
    let deadline = args.duration.map(|d| std::time::Instant::now() + d);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("could not install the Ctrl-C handler")?;
    }
    let running = || !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| std::time::Instant::now() < d);
    let interface = args.interface.as_ref().or(config.interface.as_ref());
    let socket = if interface.is_some() || net::is_multicast(&bind) {
        bind_on_interface(bind, interface, args.wait_for_port, &running)?
    } else if args.wait_for_port {
        let mut waiter = PortWaiter::new(bind, "cannot listen on");
        loop {
            if !running() {
                // Ctrl-C or --duration while waiting: nothing was received, nothing went wrong.
                return Ok(());
            }
            if let Some(socket) = waiter.poll(std::time::Instant::now(), crate::note)? {
                if waiter.waited() {
                    crate::note(&format!("{bind} is free now; listening"));
                }
                break Some(socket);
            }
            std::thread::sleep(TICK);
        }
    } else {
        Some(UdpSocket::bind(bind).map_err(|e| bind_error("cannot listen on", bind, e))?)
    };
    let Some(socket) = socket else {
        // Ctrl-C or --duration while waiting: nothing was received, nothing went wrong.
        return Ok(());
    };
    // After the bind, so the advertised port is the bound one (HOST:0 included).
    let _advertised = match &args.advertise {
        Some(name) => Some(crate::discover::advertise(
            osc_timecode_net::dnssd::Role::Receiver,
            name,
            socket.local_addr().unwrap_or(bind),
        )?),
        None => None,
    };
    let from = if args.from.is_empty() { config.listen_from.clone() } else { Some(args.from) };
    let mut sources = Sources::new(from.map(AllowList::new));
    let cap = args.record_max_bytes.or(config.record_max_bytes).unwrap_or(crate::config::DEFAULT_RECORD_MAX_BYTES);
    let mut record = match &args.record {
        Some(path) => Some(Recorder::open(path, cap)?),
        None => None,
    };
    let style = if args.json {
        Style::Json
    } else if std::io::stdout().is_terminal() {
        Style::Live
    } else {
        Style::Lines
    };
    let spec = OutputSpec::merge(&args.outputs, &config.outputs)?;
    let timeline = Timeline::new();
    // The outputs' lines come here and are printed by this loop, off the live line.
    let (say_tx, said) = std::sync::mpsc::sync_channel::<String>(SAID);
    let say: Say = Arc::new(move |line| {
        let _ = say_tx.try_send(line);
    });
    let rig = Rig::start(&spec, &timeline, &say)?;
    // Pings leave from the socket the timecode reaches: the master answers to where it sends.
    let ping_socket = socket.try_clone().context("could not share the socket with the clock sync")?;
    let trim = args.clock_offset_ms.or(config.clock_offset_ms).unwrap_or(0.0);
    let mut clock = Clock::new(args.clock.or(config.clock), (trim * 1e6).round() as i128);
    let receiver = Receiver::start(socket)?;
    let mut chase = Chase::new(ChaseConfig { lock_frames: args.lock_frames, freewheel_frames: args.freewheel_frames });
    let mut out = std::io::stdout().lock();
    // The first line at once ("waiting"), whatever comes next: even a Ctrl-C right after the
    // bind leaves a line saying listen ran.
    let first = chase.tick(local_now());
    write_readout(&mut out, style, &first, sources.refused, &clock.view(local_now()))?;
    let mut shown: Option<(ChaseState, Option<i64>)> = Some((first.state, first.frame));
    // The next redraw: the next frame start while the chase has a timeline, at most TICK away.
    let mut wake = Instant::now();
    // Whether `wake` is a frame start (polled for its last stretch) or only TICK's bound.
    let mut exact = false;
    let mut beat: Option<Beat> = None;
    let mut dropped_reported = 0;
    while running() {
        match receiver.next(wake, exact) {
            Some(Incoming::Datagram { bytes, from, arrival }) => {
                let master = chase.master();
                let recording = record.as_ref().is_some_and(Recorder::recording);
                let pong = sources.allows(from) && clock.on_pong(&bytes, from, arrival);
                let (handled, note) = if pong {
                    (Handled { effect: None, record: None }, None)
                } else if sources.allows(from) {
                    let place = |timetag| clock.place(timetag, arrival);
                    let handled = handle_placed(&mut chase, &bytes, from, arrival, recording, place);
                    let note = master_note(master, chase.master(), from, handled.effect);
                    (handled, note)
                } else {
                    let record = recording.then(|| refused_record_line(arrival, from, bytes.len()));
                    (Handled { effect: None, record }, sources.refuse(from))
                };
                if let Some(line) = handled.record
                    && let Some(warning) = record.as_mut().and_then(|r| r.write_line(&line))
                {
                    if style == Style::Live {
                        writeln!(out)?;
                    }
                    crate::note(&warning);
                }
                if let Some(note) = note {
                    if style == Style::Live {
                        // Off the live line, which the next readout redraws below the note.
                        writeln!(out)?;
                    }
                    crate::note(&note);
                }
            }
            Some(Incoming::Failed(e)) => return Err(e).with_context(|| format!("receiving on {bind}")),
            None => {}
        }
        let dropped = receiver.dropped();
        if dropped_reported == 0 && dropped > 0 {
            dropped_reported = dropped;
            if style == Style::Live {
                writeln!(out)?;
            }
            crate::note(&format!(
                "datagrams arrive faster than listen can handle them: dropping the excess (more than {QUEUE} waiting)"
            ));
        }
        let now = local_now();
        let readout = chase.tick(now);
        timeline.publish(chase.snapshot());
        let clock_lines = [clock.follow(chase.master(), now), clock.poll(now, &ping_socket), clock.plausibility()];
        for line in clock_lines.into_iter().flatten() {
            if style == Style::Live {
                writeln!(out)?;
            }
            crate::note(&line);
        }
        for line in said.try_iter() {
            if style == Style::Live {
                writeln!(out)?;
            }
            crate::note(&line);
        }
        let view = (readout.state, readout.frame);
        if shown != Some(view) {
            shown = Some(view);
            write_readout(&mut out, style, &readout, sources.refused, &clock.view(now))?;
        }
        beat = match (readout.state, readout.rate) {
            // Any frame start of the timeline will do (only its phase counts): the next one's,
            // or while the timeline's first frame is still ahead (frame unknown), frame 1's.
            (ChaseState::Locked, Some(rate)) => chase
                .time_of_frame(readout.frame.unwrap_or(0).saturating_add(1))
                .map(|start_ns| Beat { start_ns, rate })
                .or(beat),
            // Freewheeling runs on the timeline last locked to.
            (ChaseState::Freewheel, _) => beat,
            _ => None,
        };
        // Wall clock to the monotonic clock once per deadline; never early (the readout is
        // taken again at the wake-up, so a late-mapped instant only shows a frame late by the
        // mapping's error, nanoseconds).
        let until = beat
            .and_then(|b| b.next_after(now))
            .and_then(|next| u64::try_from((next - local_now()).max(0)).ok())
            .map(Duration::from_nanos)
            .filter(|&until| until <= TICK);
        exact = until.is_some();
        wake = Instant::now() + until.unwrap_or(TICK);
    }
    let dropped = receiver.stop();
    let outputs = rig.stop();
    if style == Style::Live {
        writeln!(out)?;
    }
    for line in said.try_iter() {
        crate::note(&line);
    }
    outputs?;
    if dropped > 0 {
        crate::note(&format!("{dropped} datagrams dropped: they arrived faster than listen could handle them"));
    }
    if let Some(warning) = record.as_mut().and_then(Recorder::finish) {
        crate::note(&warning);
    }
    Ok(())
}

/// The socket for `bind` on `interface` ([`net::receive_plan`]): a multicast group joined on it,
/// or its address bound. With `wait_for_port`, an interface not there (yet) and an address in
/// use are waited for like a taken port, one line each, retried every second while `running`;
/// `None` when `running` ends first. Otherwise they are errors (one line, exit status 2).
fn bind_on_interface(
    bind: SocketAddr,
    interface: Option<&InterfaceSpec>,
    wait_for_port: bool,
    running: &impl Fn() -> bool,
) -> anyhow::Result<Option<UdpSocket>> {
    let mut said: Option<String> = None;
    loop {
        if !running() {
            return Ok(None);
        }
        let waiting = match interface.map(net::resolve).transpose() {
            Ok(found) => {
                let plan = net::receive_plan(bind, found.as_ref())?;
                match net::receiving_socket(&plan) {
                    Ok(socket) => {
                        if said.is_some() {
                            crate::note(&format!("listening on {} now", plan.bind));
                        }
                        return Ok(Some(socket));
                    }
                    Err(e) if wait_for_port && crate::port::worth_waiting_for(&e) => {
                        format!("{} is in use or not this machine's (yet): {e}; retrying every second", plan.bind)
                    }
                    Err(e) => return Err(bind_error("cannot listen on", plan.bind, e)),
                }
            }
            Err(missing) if wait_for_port => format!("waiting for the interface: {missing}; retrying every second"),
            Err(missing) => return Err(missing.into()),
        };
        if said.as_ref() != Some(&waiting) {
            crate::note(&waiting);
            said = Some(waiting);
        }
        let retry = Instant::now() + crate::port::RETRY_EVERY;
        while running() && Instant::now() < retry {
            std::thread::sleep(TICK);
        }
    }
}

/// A frame start on the master's timeline and its rate: where the next frame starts.
/// `[main-thread]`.
#[derive(Debug, Clone, Copy)]
struct Beat {
    /// A frame's first instant, ns since the Unix epoch ([`Chase::time_of_frame`]).
    start_ns: i128,
    /// The master's rate.
    rate: FrameRate,
}

impl Beat {
    /// The first frame start strictly after `now_ns` (ns since the epoch) on this timeline,
    /// never a nanosecond early; `None` past the frame count's range.
    fn next_after(self, now_ns: i128) -> Option<i128> {
        // Whole frames from the beat to now, floored; the next one starts after now.
        let k = frame_at_nanos(now_ns - self.start_ns, self.rate);
        Some(self.start_ns + frame_start_nanos(k.checked_add(1)?, self.rate))
    }
}

/// What the receiver thread hands the display. `[network-thread]` to `[main-thread]`.
#[derive(Debug)]
enum Incoming {
    /// One datagram.
    Datagram {
        /// Its bytes.
        bytes: Vec<u8>,
        /// Its sender.
        from: SocketAddr,
        /// When it was received, ns since the Unix epoch (taken by the receiver thread).
        arrival: i128,
    },
    /// The socket failed; the thread has ended.
    Failed(std::io::Error),
}

/// The socket's own thread: blocks on the socket and stamps each datagram's arrival there, so
/// the display can wait for the next frame start instead of the next datagram.
#[derive(Debug)]
struct Receiver {
    /// Datagrams in arrival order, at most [`QUEUE`]. `[main-thread]`.
    rx: ChannelReceiver<Incoming>,
    /// Datagrams dropped because the queue was full, in datagrams. `[thread-safe]`.
    dropped: Arc<AtomicU64>,
    /// Tells the thread to end. `[thread-safe]`.
    done: Arc<AtomicBool>,
    /// The thread. `[main-thread]`.
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Starts the thread on `socket`.
    fn start(socket: UdpSocket) -> anyhow::Result<Self> {
        socket.set_read_timeout(Some(RECEIVE_TIMEOUT)).context("could not set the socket timeout")?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = {
            let (dropped, done) = (Arc::clone(&dropped), Arc::clone(&done));
            std::thread::Builder::new()
                .name("listen-receive".into())
                .spawn(move || receive(&socket, &tx, &dropped, &done))
                .context("could not start the receiving thread")?
        };
        Ok(Self { rx, dropped, done, thread: Some(thread) })
    }

    /// The next datagram or failure, or `None` once `wake` has come; with `exact` (a frame
    /// start), the last [`SPIN`] before it polled, so that it is not overslept.
    fn next(&self, wake: Instant, exact: bool) -> Option<Incoming> {
        let sleep_until = if exact { wake.checked_sub(SPIN).unwrap_or(wake) } else { wake };
        match self.rx.recv_timeout(sleep_until.saturating_duration_since(Instant::now())) {
            Ok(incoming) => return Some(incoming),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Some(Self::ended()),
        }
        while Instant::now() < wake {
            match self.rx.try_recv() {
                Ok(incoming) => return Some(incoming),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
                Err(TryRecvError::Disconnected) => return Some(Self::ended()),
            }
        }
        None
    }

    /// What the display sees if the thread ended without saying why (it cannot: it hands on
    /// its error first).
    fn ended() -> Incoming {
        Incoming::Failed(std::io::Error::other("the receiving thread ended"))
    }

    /// Datagrams dropped so far.
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Ends the thread; the datagrams dropped.
    fn stop(mut self) -> u64 {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.dropped()
    }
}

/// The receiver thread's loop: until `done`, or a socket error (handed on, then the end).
fn receive(socket: &UdpSocket, tx: &SyncSender<Incoming>, dropped: &AtomicU64, done: &AtomicBool) {
    let mut buf = vec![0u8; MAX_PACKET];
    while !done.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let arrival = local_now();
                match tx.try_send(Incoming::Datagram { bytes: buf[..n].to_vec(), from, arrival }) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                let _ = tx.send(Incoming::Failed(e));
                return;
            }
        }
    }
}

/// Who may be the master (`--from`), and who was refused. `[main-thread]`.
#[derive(Debug)]
struct Sources {
    /// The sources allowed; `None`: any.
    allow: Option<AllowList>,
    /// Datagrams refused (from a source outside `allow`), in datagrams.
    refused: u64,
    /// Sources already reported, at most [`REFUSED_SOURCES_REPORTED`].
    reported: HashSet<SocketAddr>,
}

impl Sources {
    fn new(allow: Option<AllowList>) -> Self {
        Self { allow, refused: 0, reported: HashSet::new() }
    }

    /// Whether a datagram from `from` may be looked at.
    fn allows(&self, from: SocketAddr) -> bool {
        self.allow.as_ref().is_none_or(|allow| allow.allows(from.ip()))
    }

    /// Counts a refused datagram from `from`; the line about it, the first time.
    fn refuse(&mut self, from: SocketAddr) -> Option<String> {
        self.refused += 1;
        if self.reported.len() >= REFUSED_SOURCES_REPORTED || !self.reported.insert(from) {
            return None;
        }
        let more =
            if self.reported.len() == REFUSED_SOURCES_REPORTED { " (further sources: counted only)" } else { "" };
        Some(format!("refusing datagrams from {from}: not in --from (counted as refused){more}"))
    }
}

/// `--record`'s file: lines appended up to a size cap; at the cap or on a write error, one
/// warning and no more recording. `[main-thread]`.
#[derive(Debug)]
struct Recorder {
    /// The file, buffered; flushed after every line so a write error is seen at once and a
    /// killed `listen` loses nothing. `None` once recording has stopped.
    file: Option<BufWriter<File>>,
    /// Its path, for messages.
    path: PathBuf,
    /// The file's size so far, in bytes (what it held when opened plus what was appended).
    size: u64,
    /// The cap, in bytes.
    cap: u64,
}

impl Recorder {
    /// Opens `path` for appending. A file that cannot be opened is an error (at startup).
    fn open(path: &Path, cap: u64) -> anyhow::Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the record file {}", path.display()))?;
        // Not a regular file (a pipe, /dev/full): nothing there yet.
        let size = file.metadata().map(|m| if m.is_file() { m.len() } else { 0 }).unwrap_or(0);
        Ok(Self { file: Some(BufWriter::new(file)), path: path.to_owned(), size, cap })
    }

    /// Whether lines are still written.
    fn recording(&self) -> bool {
        self.file.is_some()
    }

    /// Appends `line` and a newline; the warning when recording stops here.
    fn write_line(&mut self, line: &str) -> Option<String> {
        let file = self.file.as_mut()?;
        let len = line.len() as u64 + 1;
        if self.size + len > self.cap {
            // Whatever is buffered is written; an error doing so is the same story.
            let _ = self.finish();
            return Some(format!(
                "record file {} reached its cap of {} bytes (--record-max-bytes): recording stopped, listen goes on",
                self.path.display(),
                self.cap
            ));
        }
        match writeln!(file, "{line}").and_then(|()| file.flush()) {
            Ok(()) => {
                self.size += len;
                None
            }
            Err(e) => {
                self.file = None;
                Some(self.write_error(&e))
            }
        }
    }

    /// Flushes and closes the file; the warning if that failed.
    fn finish(&mut self) -> Option<String> {
        let mut file = self.file.take()?;
        file.flush().err().map(|e| self.write_error(&e))
    }

    fn write_error(&self, e: &std::io::Error) -> String {
        format!("could not write the record file {}: {e}; recording stopped, listen goes on", self.path.display())
    }
}

/// The record line of a datagram refused by `--from` (not decoded).
fn refused_record_line(arrival: i128, from: SocketAddr, len: usize) -> String {
    serde_json::json!({
        "arrival_ns": arrival.to_string(),
        "from": from.to_string(),
        "bytes": len,
        "refused": "not in --from",
    })
    .to_string()
}

/// The line about masters a datagram from `from` calls for, if any: the first packet from a
/// source other than the master followed (`was`), or a change of master (`was` → `now`).
fn master_note(
    was: Option<SocketAddr>,
    now: Option<SocketAddr>,
    from: SocketAddr,
    effect: Option<PacketEffect>,
) -> Option<String> {
    match (was, now, effect) {
        (_, Some(master), Some(PacketEffect::Ignored { new_source: true })) => Some(format!(
            "ignoring timecode from {from}: following {master}, the master heard first (one master at a time)"
        )),
        (Some(old), Some(new), _) if old != new => Some(format!("following {new} now: {old} went silent")),
        _ => None,
    }
}

/// What one datagram did.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    /// What the timecode packet did to the chase; `None` when it was not valid timecode.
    pub effect: Option<PacketEffect>,
    /// The `--record` line, when asked for.
    pub record: Option<String>,
}

/// One datagram from `from`, received at `arrival` (ns since the Unix epoch): a timecode packet
/// moves `chase` (if `from` is the master it follows); anything else is counted as invalid. With
/// `record`, returns its `--record` line (every datagram has one: the decoded fields, or why it
/// did not decode). No I/O: the fuzz target `listen_decode` calls this with arbitrary bytes.
pub fn handle_datagram(
    chase: &mut Chase,
    bytes: &[u8],
    from: SocketAddr,
    arrival: i128,
    record: bool,
) -> Option<String> {
    handle(chase, bytes, from, arrival, record).record
}

/// [`handle_datagram`], also saying what the packet did to the chase.
pub fn handle(chase: &mut Chase, bytes: &[u8], from: SocketAddr, arrival: i128, record: bool) -> Handled {
    handle_placed(chase, bytes, from, arrival, record, |timetag| timetag)
}

/// [`handle`] with the timetag (ns since the epoch, the master's clock) placed on this
/// machine's clock by `place` ([`Clock::place`]) when `from` is the master (or there is none
/// yet): other sources' packets are only counted.
pub fn handle_placed(
    chase: &mut Chase,
    bytes: &[u8],
    from: SocketAddr,
    arrival: i128,
    record: bool,
    mut place: impl FnMut(i128) -> i128,
) -> Handled {
    let decoded = decode_timecode_packet(bytes);
    let effect = match &decoded {
        Ok((timetag, msg)) => {
            let ours = chase.master().is_none_or(|m| m == from);
            let heard =
                timetag.map(|t| unix_nanos(system_time_from_timetag(t))).map(|t| if ours { place(t) } else { t });
            Some(chase.on_packet_from(from, msg, heard, arrival))
        }
        Err(_) => {
            chase.on_invalid();
            None
        }
    };
    Handled { effect, record: record.then(|| record_line(arrival, from, bytes, &decoded)) }
}

fn write_readout(
    out: &mut impl std::io::Write,
    style: Style,
    r: &Readout,
    refused: u64,
    clock: &ClockView,
) -> anyhow::Result<()> {
    let text = || {
        let c = clock.text();
        if c.is_empty() { text_line(r) } else { format!("{}  {c}", text_line(r)) }
    };
    match style {
        Style::Json => {
            let mut obj = json_value(r, refused);
            clock.add_json(&mut obj);
            writeln!(out, "{obj}")?;
        }
        Style::Lines => writeln!(out, "{}", text())?,
        // Carriage return, the line, clear to the end of the line.
        Style::Live => write!(out, "\r{}\x1b[K", text())?,
    }
    out.flush()?;
    Ok(())
}

/// `01:00:03:12  25  locked  loss 0.0%  jitter 0.42 ms`.
pub fn text_line(r: &Readout) -> String {
    let label = r.label().unwrap_or_else(|| "--:--:--:--".to_owned());
    let rate = r.rate.map_or_else(|| "-".to_owned(), |rate| rate.name().to_owned());
    format!(
        "{label}  {rate}  {}  loss {:.1}%  jitter {:.2} ms",
        r.state.name(),
        r.loss() * 100.0,
        r.jitter_ns as f64 / 1e6
    )
}

/// One JSON object: `timecode` (label or null), `frame` (absolute count or null), `rate` (name
/// or null), `state`, `master` (the source followed, `HOST:PORT`, or null), `received`, `lost`,
/// `loss` (fraction), `jitter_ms`, and the datagrams not used: `stale` (from the master, a
/// sequence number already seen), `ignored` (timecode from other masters), `invalid` (not
/// timecode), `refused` (from a source outside `--from`, 0 here). Every datagram is counted
/// once: in `received`, `stale`, `ignored`, `invalid` or `refused`.
pub fn json_line(r: &Readout) -> String {
    json_line_with(r, 0)
}

/// [`json_line`] with `refused` datagrams (from sources outside `--from`).
pub fn json_line_with(r: &Readout, refused: u64) -> String {
    json_value(r, refused).to_string()
}

/// The object [`json_line_with`] writes.
fn json_value(r: &Readout, refused: u64) -> serde_json::Value {
    serde_json::json!({
        "timecode": r.label(),
        "frame": r.frame,
        "rate": r.rate.map(|rate| rate.name()),
        "state": r.state.name(),
        "master": r.master.map(|m| m.to_string()),
        "received": r.received,
        "lost": r.lost,
        "loss": r.loss(),
        "jitter_ms": r.jitter_ns as f64 / 1e6,
        "stale": r.stale,
        "ignored": r.ignored,
        "invalid": r.invalid,
        "refused": refused,
    })
}

/// One record line: arrival (ns since the epoch), sender, size, and the decoded packet or why not.
fn record_line(
    arrival: i128,
    from: SocketAddr,
    bytes: &[u8],
    decoded: &Result<(Option<rosc::OscTime>, osc_timecode_core::protocol::TimecodeMessage), impl std::fmt::Display>,
) -> String {
    let mut obj = serde_json::json!({
        "arrival_ns": arrival.to_string(),
        "from": from.to_string(),
        "bytes": bytes.len(),
    });
    match decoded {
        Ok((timetag, msg)) => {
            obj["timetag_ns"] = timetag.map(|t| unix_nanos(system_time_from_timetag(t)).to_string()).into();
            obj["timecode"] = msg.timecode.label().to_string().into();
            obj["frame"] = msg.frame.into();
            obj["rate"] = msg.rate().name().into();
            obj["seq"] = msg.seq.into();
            obj["playing"] = msg.playing.into();
            obj["jump"] = msg.jump.into();
            obj["loop"] = msg.looped.into();
        }
        Err(e) => obj["error"] = e.to_string().into(),
    }
    obj.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use osc_timecode_core::FrameRate;
    use osc_timecode_core::chase::ChaseState;

    fn readout(state: ChaseState, frame: Option<i64>) -> Readout {
        Readout {
            state,
            frame,
            rate: Some(FrameRate::FPS_29_97_DF),
            received: 99,
            lost: 1,
            jitter_ns: 420_000,
            master: Some("127.0.0.1:40000".parse().unwrap()),
            stale: 2,
            ignored: 3,
            invalid: 4,
        }
    }

    #[test]
    fn the_next_frame_start_is_after_now_and_never_early() {
        use osc_timecode_core::timecode::frame_at_nanos;
        for rate in [FrameRate::FPS_25, FrameRate::FPS_29_97_DF] {
            // A frame start on a timeline whose phase is not the epoch's: 12.345678901 s.
            let start_ns = 12_345_678_901;
            let beat = Beat { start_ns, rate };
            let frame_of = |t: i128| frame_at_nanos(t - start_ns, rate);
            for now in [start_ns - 1, start_ns, start_ns + 1, start_ns + 39_999_999, start_ns - 3_000_000_000] {
                let next = beat.next_after(now).unwrap();
                assert!(next > now, "{rate:?} {now}");
                // The next frame has started at `next`, not a nanosecond before.
                assert_eq!(frame_of(next), frame_of(now) + 1, "{rate:?} {now}");
                assert_eq!(frame_of(next - 1), frame_of(now), "{rate:?} {now}");
            }
        }
        let far = Beat { start_ns: 0, rate: FrameRate::FPS_25 };
        assert_eq!(far.next_after(i128::MAX / 2), None, "past the frame count's range");
    }

    #[test]
    fn text_and_json_lines() {
        let r = readout(ChaseState::Locked, Some(1800));
        assert_eq!(text_line(&r), "00:01:00;02  29.97df  locked  loss 1.0%  jitter 0.42 ms");
        let v: serde_json::Value = serde_json::from_str(&json_line(&r)).unwrap();
        assert_eq!(v["timecode"], "00:01:00;02");
        assert_eq!(v["frame"], 1800);
        assert_eq!(v["rate"], "29.97df");
        assert_eq!(v["state"], "locked");
        assert_eq!(v["loss"], 0.01);
        assert_eq!(v["master"], "127.0.0.1:40000");
        assert_eq!((v["stale"].as_u64(), v["ignored"].as_u64(), v["invalid"].as_u64()), (Some(2), Some(3), Some(4)));
        let lost = readout(ChaseState::Lost, None);
        assert!(text_line(&lost).starts_with("--:--:--:--  29.97df  lost"));
        let v: serde_json::Value = serde_json::from_str(&json_line(&lost)).unwrap();
        assert!(v["timecode"].is_null() && v["frame"].is_null());
    }

    #[test]
    fn other_masters_are_reported_once_each_and_a_change_of_master_is_said() {
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let ignored = |new_source| Some(PacketEffect::Ignored { new_source });
        let line = master_note(Some(a), Some(a), b, ignored(true)).unwrap();
        assert_eq!(
            line,
            "ignoring timecode from 127.0.0.1:2: following 127.0.0.1:1, the master heard first (one master at a time)"
        );
        assert_eq!(master_note(Some(a), Some(a), b, ignored(false)), None);
        assert_eq!(master_note(None, Some(a), a, Some(PacketEffect::Followed)), None, "the first master: no line");
        assert_eq!(master_note(Some(a), Some(a), a, Some(PacketEffect::Followed)), None);
        let line = master_note(Some(a), Some(b), b, Some(PacketEffect::Discontinuity)).unwrap();
        assert_eq!(line, "following 127.0.0.1:2 now: 127.0.0.1:1 went silent");
    }

    #[test]
    fn every_datagram_is_counted_once() {
        use osc_timecode_core::protocol::{TimecodeMessage, encode_timecode_bundle, timetag_from_system_time};
        let (a, b): (SocketAddr, SocketAddr) = ("127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap());
        let mut chase = Chase::new(ChaseConfig::default());
        let now = std::time::SystemTime::now();
        let mut bytes = Vec::new();
        let mut send = |chase: &mut Chase, from, frame, seq| {
            let msg = TimecodeMessage::new(frame, FrameRate::FPS_25, true, seq, seq == 0, false);
            encode_timecode_bundle(&msg, timetag_from_system_time(now), &mut bytes);
            handle(chase, &bytes, from, unix_nanos(now), false).effect
        };
        assert_eq!(send(&mut chase, a, 10, 0), Some(PacketEffect::Jumped { looped: false }));
        assert_eq!(send(&mut chase, a, 10, 0), Some(PacketEffect::Stale));
        assert_eq!(send(&mut chase, b, 99, 0), Some(PacketEffect::Ignored { new_source: true }));
        let garbage = handle(&mut chase, b"/cue/1\0\0,\0\0\0", b, unix_nanos(now), true);
        assert_eq!(garbage.effect, None);
        assert!(garbage.record.is_some_and(|l| l.contains("\"error\"")));
        let r = chase.tick(unix_nanos(now));
        assert_eq!((r.received, r.stale, r.ignored, r.invalid), (1, 1, 1, 1));
    }
}
