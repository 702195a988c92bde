//! `osc-timecode listen`: receive `/sync/timecode`, chase the master's timeline, show it.
//!
//! The position comes from [`osc_timecode_core::chase::Chase`] (timetags and frame counts, not
//! arrival times), so network jitter does not reach the display; it is measured and shown.
//!
//! Output, one of:
//! - a terminal: one live line, redrawn at every frame (`01:00:03:12  25  locked  loss 0.0%
//!   jitter 0.42 ms`);
//! - not a terminal: the same as plain lines, one per frame or state change;
//! - `--json`: one object per frame or state change (keys in [`json_line`]).
//!
//! `--record FILE` appends every datagram, with its arrival time, as one JSON object per line
//! (good or not: a malformed packet is recorded with the reason), for looking back after a show.

use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::Args;
use osc_timecode_core::chase::{Chase, ChaseConfig, ChaseState, Readout, unix_nanos};
use osc_timecode_core::cue::MAX_PACKET;
use osc_timecode_core::protocol::{decode_timecode_packet, system_time_from_timetag};

use crate::config::ClientConfig;

/// Where `listen` binds when neither flag nor config says.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5006);
/// Environment variable for `--bind`.
pub const LISTEN_ENV: &str = "OSC_TIMECODE_LISTEN";
/// Longest wait on the socket: bounds how late a frame change, freewheel or Ctrl-C is shown.
const TICK: Duration = Duration::from_millis(5);

const AFTER_HELP: &str = "\
Examples:
  osc-timecode listen                          chase timecode sent to 127.0.0.1:5006
  osc-timecode listen --bind 0.0.0.0:5006      from any interface
  osc-timecode listen --json | jq .timecode    one JSON object per frame
  osc-timecode listen --record show.jsonl      also log every packet with its arrival time

States: waiting (nothing yet), stopped (master parked), locking, locked, freewheel (packets \
missing, the clock runs on), lost (missing for more than --freewheel-frames frames). The position \
comes from the packets' timetags and frame counts, so network jitter does not move it; the jitter \
shown is the spread of arrival minus timetag over the last 128 packets. Ctrl-C ends.";

/// Arguments of `listen`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ListenArgs {
    /// Address to receive timecode on [default: 127.0.0.1:5006, or [client] listen]
    #[arg(long, env = LISTEN_ENV, value_name = "HOST:PORT")]
    pub bind: Option<SocketAddr>,

    /// One JSON object per frame on standard output
    #[arg(long)]
    pub json: bool,

    /// Append every packet with its arrival time to FILE (JSON lines)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// Frames to run on without packets before reporting lost
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub freewheel_frames: u32,

    /// Consecutive agreeing frames needed to lock
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lock_frames: u32,

    /// Stop after this many seconds (for scripts and tests)
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
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
    let bind = args.bind.or(config.listen).unwrap_or(DEFAULT_LISTEN);
    let socket = UdpSocket::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("could not install the Ctrl-C handler")?;
    }
    socket.set_read_timeout(Some(TICK)).context("could not set the socket timeout")?;
    let mut record = match &args.record {
        Some(path) => Some(BufWriter::new(
            File::options()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open the record file {}", path.display()))?,
        )),
        None => None,
    };
    let style = if args.json {
        Style::Json
    } else if std::io::stdout().is_terminal() {
        Style::Live
    } else {
        Style::Lines
    };
    let deadline = args.duration.map(|s| std::time::Instant::now() + Duration::from_secs_f64(s.clamp(0.0, 1e9)));
    let mut chase = Chase::new(ChaseConfig { lock_frames: args.lock_frames, freewheel_frames: args.freewheel_frames });
    let mut out = std::io::stdout().lock();
    let mut shown: Option<(ChaseState, Option<i64>)> = None;
    let mut buf = vec![0u8; MAX_PACKET];
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| std::time::Instant::now() < d) {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                let arrival = unix_nanos(SystemTime::now());
                if let Some(line) = handle_datagram(&mut chase, &buf[..n], from, arrival, record.is_some())
                    && let Some(file) = record.as_mut()
                {
                    writeln!(file, "{line}").context("could not write the record file")?;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("receiving on {bind}")),
        }
        let readout = chase.tick(unix_nanos(SystemTime::now()));
        let now = (readout.state, readout.frame);
        if shown != Some(now) {
            shown = Some(now);
            write_readout(&mut out, style, &readout)?;
        }
    }
    if style == Style::Live {
        writeln!(out)?;
    }
    if let Some(mut file) = record {
        file.flush().context("could not write the record file")?;
    }
    Ok(())
}

/// One datagram from `from`, received at `arrival` (ns since the Unix epoch): a timecode packet
/// moves `chase`; anything else is ignored. With `record`, returns its `--record` line (every
/// datagram has one: the decoded fields, or why it did not decode). No I/O: the fuzz target
/// `listen_decode` calls this with arbitrary bytes.
pub fn handle_datagram(
    chase: &mut Chase,
    bytes: &[u8],
    from: SocketAddr,
    arrival: i128,
    record: bool,
) -> Option<String> {
    let decoded = decode_timecode_packet(bytes);
    if let Ok((timetag, msg)) = &decoded {
        chase.on_packet(msg, timetag.map(|t| unix_nanos(system_time_from_timetag(t))), arrival);
    }
    record.then(|| record_line(arrival, from, bytes, &decoded))
}

fn write_readout(out: &mut impl std::io::Write, style: Style, r: &Readout) -> anyhow::Result<()> {
    match style {
        Style::Json => writeln!(out, "{}", json_line(r))?,
        Style::Lines => writeln!(out, "{}", text_line(r))?,
        // Carriage return, the line, clear to the end of the line.
        Style::Live => write!(out, "\r{}\x1b[K", text_line(r))?,
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
/// or null), `state`, `received`, `lost`, `loss` (fraction), `jitter_ms`.
pub fn json_line(r: &Readout) -> String {
    serde_json::json!({
        "timecode": r.label(),
        "frame": r.frame,
        "rate": r.rate.map(|rate| rate.name()),
        "state": r.state.name(),
        "received": r.received,
        "lost": r.lost,
        "loss": r.loss(),
        "jitter_ms": r.jitter_ns as f64 / 1e6,
    })
    .to_string()
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
        Readout { state, frame, rate: Some(FrameRate::FPS_29_97_DF), received: 99, lost: 1, jitter_ns: 420_000 }
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
        let lost = readout(ChaseState::Lost, None);
        assert!(text_line(&lost).starts_with("--:--:--:--  29.97df  lost"));
        let v: serde_json::Value = serde_json::from_str(&json_line(&lost)).unwrap();
        assert!(v["timecode"].is_null() && v["frame"].is_null());
    }
}
