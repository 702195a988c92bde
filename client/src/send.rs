//! `osc-timecode cue NAME [VALUE]` and `osc-timecode trigger NAME [VALUE]`: send one cue to the
//! master (the plugin, or `serve`), wait for its `/ack`, retry, and say what happened.
//!
//! Each try carries the same ID, so a master that got an earlier try applies the cue once and
//! answers the retry with `duplicate`, which counts as delivered. Exit status 0 when
//! acknowledged; 1 with one line saying why when the master refused it (with its reason), did not
//! answer, is not listening, or `--at` cannot be placed on its timeline (`exit::NotDone`); 2 for
//! a usage or setup error.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::Args;
use osc_timecode_core::Timecode;
use osc_timecode_core::chase::{Chase, ChaseConfig, ChaseState, unix_nanos};
use osc_timecode_core::cue::{Ack, AckStatus, CueId, MAX_PACKET, decode_packet};
use osc_timecode_core::pattern;
use osc_timecode_core::protocol::address::{CUE_PREFIX, TRIGGER_PREFIX};
use osc_timecode_core::protocol::{decode_timecode_packet, system_time_from_timetag, timetag_from_system_time};
use rosc::{OscBundle, OscMessage, OscPacket, OscTime, OscType};

use crate::clock::{Clock, ClockMode, local_now};
use crate::config::{self, ClientConfig, MASTER_ENV, TOKEN_ENV};
use crate::exit::NotDone;

const AFTER_HELP: &str = "\
Examples:
  osc-timecode cue 12                     note 12 on the master's MIDI output
  osc-timecode cue intro 100              the named cue 'intro' at velocity 100
  osc-timecode trigger 7 0.5              control change 7 = 64
  osc-timecode cue 5 --master 127.0.0.1:5005 --token s3cret
  osc-timecode cue 5 --at 01:00:10:00     lands at 01:00:10:00 (chased from 127.0.0.1:5006)

VALUE is an integer 0-127 or a number 0.0-1.0 (scaled to 0-127); without it the master's mapping \
decides. The cue carries an ID; it is sent again (same ID) until the master answers /ack, at most \
--retries times, --timeout-ms apart. Exit status 0 once acknowledged (also 'duplicate': an \
earlier try got through), 1 if refused or unanswered, 2 for a usage or setup error.";

/// Which namespace a sent cue is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `/cue/NAME`.
    Cue,
    /// `/trigger/NAME`.
    Trigger,
}

/// Arguments of `cue` and `trigger`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP, allow_negative_numbers = true)]
pub struct SendArgs {
    /// The cue's name or number: the part after /cue/ or /trigger/ (an OSC pattern like {1,2} is
    /// allowed)
    pub name: String,

    /// Velocity or controller value: 0-127, or 0.0-1.0
    #[arg(value_parser = parse_value)]
    pub value: Option<Value>,

    /// The master's cue input [default: 127.0.0.1:5005, or client.master in the config file]
    #[arg(long, env = MASTER_ENV, value_name = "HOST:PORT")]
    pub master: Option<SocketAddr>,

    /// Shared token, when the master requires one [or client.token in the config file]
    #[arg(long, env = TOKEN_ENV, hide_env_values = true)]
    pub token: Option<String>,

    /// The cue's ID for acks and retries [default: a fresh one from the clock]
    #[arg(long)]
    pub id: Option<i64>,

    /// Extra tries when no /ack comes
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,

    /// How long to wait for each /ack, in milliseconds
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,

    /// Send it timetagged to land at this timecode of the master's timeline (read from the
    /// timecode arriving at --timecode-from)
    #[arg(long, value_name = "TIMECODE")]
    pub at: Option<String>,

    /// With --at: where the master's /sync/timecode arrives [default: client.listen, or
    /// 127.0.0.1:5006]
    #[arg(long, value_name = "HOST:PORT", requires = "at")]
    pub timecode_from: Option<SocketAddr>,

    /// With --at: how the master's timetags are placed on this machine's clock, to tell whether
    /// the timecode has passed: same, sync (measured with /sync/ping) or arrival, as for listen
    /// [default: same for a master on this machine, sync elsewhere; or client.clock]
    #[arg(long, value_name = "MODE", requires = "at")]
    pub clock: Option<ClockMode>,
}

/// A cue VALUE as typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `100`: sent as an OSC int.
    Int(i32),
    /// `0.5`: sent as an OSC float.
    Float(f32),
}

/// clap value parser for VALUE.
pub fn parse_value(text: &str) -> Result<Value, String> {
    let bad = || format!("value {text:?} must be an integer 0-127 or a number 0.0-1.0");
    if text.contains(['.', 'e', 'E']) {
        let f: f32 = text.parse().map_err(|_| bad())?;
        (0.0..=1.0).contains(&f).then_some(Value::Float(f)).ok_or_else(bad)
    } else {
        let i: i32 = text.parse().map_err(|_| bad())?;
        (0..=127).contains(&i).then_some(Value::Int(i)).ok_or_else(bad)
    }
}

/// Runs `cue` or `trigger`.
pub fn run(kind: Kind, args: SendArgs, config: &ClientConfig) -> anyhow::Result<()> {
    let master = args.master.or(config.master).unwrap_or(config::DEFAULT_MASTER);
    let token = args.token.clone().or_else(|| config.token.clone()).filter(|t| !t.is_empty());
    let address = address(kind, &args.name)?;
    let id = args.id.unwrap_or_else(fresh_id);
    let msg = OscPacket::Message(message(&address, token.as_deref(), args.value, id));
    let (packet, at_label) = match &args.at {
        None => (msg, String::new()),
        Some(label) => {
            let from = args.timecode_from.or(config.listen).unwrap_or(config::DEFAULT_TIMECODE);
            let (timetag, label) = timetag_for(label, from, args.clock.or(config.clock))?;
            (OscPacket::Bundle(OscBundle { timetag, content: vec![msg] }), format!(" at {label}"))
        }
    };
    let bytes = rosc::encoder::encode(&packet).context("could not encode the cue")?;

    let local: SocketAddr = match (master.is_ipv6(), master.ip().is_loopback()) {
        (false, true) => (Ipv4Addr::LOCALHOST, 0).into(),
        (false, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (true, true) => (Ipv6Addr::LOCALHOST, 0).into(),
        (true, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).with_context(|| format!("could not open a UDP socket on {local}"))?;
    // Connected: only the master's replies come in, and "nothing listens there" comes back as an
    // error instead of silence.
    socket.connect(master).with_context(|| format!("cannot reach {master}"))?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let tries = args.retries + 1;
    let mut refused = false;
    let mut buf = vec![0u8; MAX_PACKET];
    for _ in 0..tries {
        if let Err(e) = socket.send(&bytes) {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                refused = true;
                std::thread::sleep(timeout);
                continue;
            }
            return Err(e).with_context(|| format!("could not send {address} to {master}"));
        }
        match wait_for_ack(&socket, &mut buf, &address, id, timeout)? {
            Reply::Ack(status) if status.accepted() => {
                println!("{} {address} id {id}{at_label}", status.as_str());
                return Ok(());
            }
            Reply::Ack(status) => bail!(NotDone::new(format!("{master} refused {address}: {}", explain(status)))),
            Reply::Refused => refused = true,
            Reply::Nothing => {}
        }
    }
    let waited = timeout * tries;
    if refused {
        bail!(NotDone::new(format!(
            "nothing is listening for cues at {master} (is the plugin loaded, or serve running?)"
        )));
    }
    bail!(NotDone::new(format!(
        "no /ack from {master} for {address} after {tries} tries over {:.1} s (is the master listening there, \
         with this machine in its allow-list and the right token?)",
        waited.as_secs_f64()
    )))
}

/// How long `--at` waits to lock to the master's timecode.
const LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// The timetag of `label` on the master's timeline, chased from the timecode arriving at `from`
/// until locked; with the label as the master's rate writes it.
///
/// The chase runs on this machine's clock ([`crate::clock`]): the timetags are placed on it as
/// `clock` says (with `sync`, after the first burst of pings is answered, or after the master is
/// found not to answer), so that "has the timecode passed" is judged on the master's time even
/// when the clocks disagree; the cue's timetag goes back on the master's clock by the same shift.
fn timetag_for(label: &str, from: SocketAddr, clock: Option<ClockMode>) -> anyhow::Result<(OscTime, String)> {
    let socket = UdpSocket::bind(from).with_context(|| format!("cannot receive the master's timecode on {from}"))?;
    socket.set_read_timeout(Some(Duration::from_millis(20))).context("could not set the socket timeout")?;
    let mut chase = Chase::new(ChaseConfig::default());
    let mut clock = Clock::new(clock, 0);
    let deadline = Instant::now() + LOCK_TIMEOUT;
    let mut buf = vec![0u8; MAX_PACKET];
    let mut stopped = false;
    // The last placement's shift: this machine's clock − the master's, ns.
    let mut shift = 0;
    loop {
        if Instant::now() >= deadline {
            if stopped {
                bail!(NotDone::new("the master is stopped: --at needs its timecode rolling"));
            }
            bail!(NotDone::new(format!(
                "no timecode to lock to on {from} within {} s (is the master sending there?)",
                LOCK_TIMEOUT.as_secs()
            )));
        }
        // Pings, when due (a line such as "does not answer" is not this command's to print:
        // its one line is the outcome).
        let _ = clock.poll(local_now(), &socket);
        let Ok((n, sender)) = socket.recv_from(&mut buf) else { continue };
        let now = local_now();
        if clock.on_pong(&buf[..n], sender, now) {
            continue;
        }
        let Ok((timetag, msg)) = decode_timecode_packet(&buf[..n]) else { continue };
        // One master at a time, as `listen` follows it.
        let ours = chase.master().is_none_or(|m| m == sender);
        let heard = timetag.map(|t| unix_nanos(system_time_from_timetag(t))).map(|t| {
            if !ours {
                return t;
            }
            let placed = clock.place(t, now);
            shift = placed - t;
            placed
        });
        chase.on_packet_from(sender, &msg, heard, now);
        let _ = clock.follow(chase.master(), now);
        let readout = chase.tick(now);
        stopped = readout.state == ChaseState::Stopped;
        let (Some(current), Some(rate)) = (readout.frame, readout.rate) else { continue };
        let view = clock.view(now);
        let placed = view.mode != Some(ClockMode::Sync) || view.sync.is_some() || clock.unanswered();
        if readout.state != ChaseState::Locked || !placed {
            continue;
        }
        let wanted = Timecode::parse(label, rate)
            .with_context(|| format!("--at {label:?} is not a timecode at the master's rate {}", rate.name()))?;
        let day = rate.frames_per_day();
        let target = current - current.rem_euclid(day) + wanted.to_frame();
        if target <= current {
            let now_label = Timecode::from_frame(current, rate).label();
            bail!(NotDone::new(format!("--at {} has passed: the master is at {now_label}", wanted.label())));
        }
        let Some(at) = chase.time_of_frame(target) else { continue };
        // Back on the master's clock, which reads the cue's timetag.
        let at = UNIX_EPOCH + Duration::from_nanos(u64::try_from(at - shift).unwrap_or(0));
        return Ok((timetag_from_system_time(at), wanted.label().to_string()));
    }
}

/// What came back for one try.
enum Reply {
    /// The master's ack for this cue.
    Ack(AckStatus),
    /// The OS reported the port unreachable.
    Refused,
    /// No ack within the timeout.
    Nothing,
}

/// Waits up to `timeout` for the ack of (`address`, `id`), ignoring anything else.
fn wait_for_ack(
    socket: &UdpSocket,
    buf: &mut [u8],
    address: &str,
    id: i64,
    timeout: Duration,
) -> anyhow::Result<Reply> {
    let deadline = Instant::now() + timeout;
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
            return Ok(Reply::Nothing);
        };
        socket.set_read_timeout(Some(left)).context("could not set the socket timeout")?;
        match socket.recv(buf) {
            Ok(n) => {
                let Ok(messages) = decode_packet(&buf[..n]) else { continue };
                for received in messages {
                    if let Some(ack) = Ack::from_osc(&received.msg)
                        && ack.address == address
                        && ack.id.map(CueId::value) == Some(id)
                    {
                        return Ok(Reply::Ack(ack.status));
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(Reply::Nothing);
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(Reply::Refused),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("could not receive the /ack"),
        }
    }
}

/// The address for `name`: `/cue/NAME` or `/trigger/NAME`, checked as an OSC address pattern.
fn address(kind: Kind, name: &str) -> anyhow::Result<String> {
    let prefix = match kind {
        Kind::Cue => CUE_PREFIX,
        Kind::Trigger => TRIGGER_PREFIX,
    };
    let name = name.strip_prefix(prefix).unwrap_or(name);
    let address = format!("{prefix}{name}");
    if name.is_empty() || name.contains('/') {
        bail!("cue name {name:?} must be one non-empty part, like 12 or intro");
    }
    pattern::validate(&address)
        .map_err(|e| anyhow::anyhow!("cue name {name:?} is not valid in an OSC address: {e}"))?;
    Ok(address)
}

/// `/cue/NAME [TOKEN] [VALUE] ID`: VALUE is nil when not given, so the ID is in its place.
fn message(address: &str, token: Option<&str>, value: Option<Value>, id: i64) -> OscMessage {
    let mut args = Vec::new();
    if let Some(token) = token {
        args.push(OscType::String(token.to_owned()));
    }
    args.push(match value {
        None => OscType::Nil,
        Some(Value::Int(i)) => OscType::Int(i),
        Some(Value::Float(f)) => OscType::Float(f),
    });
    args.push(OscType::Long(id));
    OscMessage { addr: address.to_owned(), args }
}

/// An ID unlikely to repeat: nanoseconds since 1970 (as int64 until 2262).
fn fresh_id() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(1, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// A refusal in words.
fn explain(status: AckStatus) -> String {
    let why = match status {
        AckStatus::Ok | AckStatus::Duplicate => "accepted",
        AckStatus::Unmapped => "no mapped address matches",
        AckStatus::BadArgument => "the arguments are not what it accepts",
        AckStatus::TooBroad => "the pattern matches more than 8 addresses",
        AckStatus::TooFarAhead => "the time is more than an hour away",
        AckStatus::ScheduleFull => "too many cues are waiting for their time",
        AckStatus::QueueFull => "its queue to the audio thread is full",
    };
    format!("{} ({why})", status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_ints_or_unit_floats() {
        assert_eq!(parse_value("100"), Ok(Value::Int(100)));
        assert_eq!(parse_value("0"), Ok(Value::Int(0)));
        assert_eq!(parse_value("0.5"), Ok(Value::Float(0.5)));
        assert_eq!(parse_value("1.0"), Ok(Value::Float(1.0)));
        for bad in ["128", "-1", "1.5", "x", "", "NaN", "inf"] {
            assert!(parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_checked() {
        assert_eq!(address(Kind::Cue, "12").unwrap(), "/cue/12");
        assert_eq!(address(Kind::Trigger, "go").unwrap(), "/trigger/go");
        assert_eq!(address(Kind::Cue, "/cue/intro").unwrap(), "/cue/intro");
        assert_eq!(address(Kind::Cue, "{1,2}").unwrap(), "/cue/{1,2}");
        for bad in ["", "a/b", "a b", "[1", "é"] {
            assert!(address(Kind::Cue, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn messages_carry_token_value_and_id_in_order() {
        let m = message("/cue/1", Some("t"), Some(Value::Int(5)), 9);
        assert_eq!(m.args, vec![OscType::String("t".into()), OscType::Int(5), OscType::Long(9)]);
        let m = message("/cue/1", None, None, 9);
        assert_eq!(m.args, vec![OscType::Nil, OscType::Long(9)]);
        // What the master's parser reads back.
        let parsed = osc_timecode_core::cue::parse_cue_args(&m.args, None).unwrap();
        assert_eq!(parsed.id, Some(CueId::Long(9)));
    }
}
