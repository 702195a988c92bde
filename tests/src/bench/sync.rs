//! Section 11, one clock for the rig (issue 18): `listen` on a machine whose wall clock is
//! 250 ms ahead (libfaketime on `listen` alone, `FAKETIME_DONT_FAKE_MONOTONIC=1`), chasing
//! `osc-timecode serve` through a two-way relay: timecode and pongs come back delayed by a uniform
//! random 0–4 ms (one-way jitter: the pings go through at once), as an asymmetric network would.
//!
//! - sync error: `listen --clock sync`'s estimate of the master's clock (`clock_offset_ms` in its
//!   JSON) against the truth, −250 ms exactly (libfaketime's offset), and whether the bound it
//!   shows (`sync_bound_ms`) holds the truth;
//! - convergence: from `listen`'s start to its first line saying `synced`, and to its first line
//!   whose bound is within the target; after a step of the master's clock (serve's wall clock,
//!   faked from a file, set 80 ms ahead two thirds into the run and taken at a locate: a new
//!   epoch), from the locate to the first line within the target of the new offset (−170 ms);
//! - the frame shown: each locked line's frame against the frame truly playing when it was read
//!   (serve's timetags are the truth), for `--clock sync` and for `--clock same` in the same run
//!   (same: 250 ms, six frames, early), with the display lag of `sync` (line read − true start of
//!   the frame shown).

use std::collections::{BinaryHeap, HashMap};
use std::io::BufRead as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::chase::unix_nanos;
use osc_timecode_core::protocol::{decode_timecode_packet, system_time_from_timetag};

use super::stats::{Summary, cell, num};
use super::{Ctx, KillOnDrop, Section, Target};
use crate::cues::free_loopback_addr;
use crate::rng::Rng;

/// libfaketime's multi-threaded library (Debian's `faketime`).
const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
/// The receiver's clock against the master's, ms (libfaketime `+0.250s`).
const OFFSET_MS: f64 = 250.0;
/// The largest one-way delay drawn for the return path.
const JITTER: Duration = Duration::from_millis(4);
/// The relay's seed.
const SEED: u64 = 0x0c10_c5ec;
/// Issue 18's target: sync error p99, ms.
const TARGET_P99_MS: f64 = 0.25;
/// The master's clock step, ms (serve's libfaketime file, `+0s` → `+0.080s`).
const STEP_MS: f64 = 80.0;
/// Where serve is located to at the step, so that its timetags take the stepped clock.
const LOCATED: &str = "01:00:00:00";
/// 25 fps.
const FRAME_NS: i128 = 40_000_000;

/// A datagram waiting in the relay.
#[derive(Debug, PartialEq, Eq)]
struct Held {
    due: Instant,
    n: u64,
    bytes: Vec<u8>,
    to: SocketAddr,
    /// Which socket sends it: 0 faces serve, 1 faces the listens.
    from_side: usize,
}

impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.due.cmp(&self.due).then_with(|| other.n.cmp(&self.n))
    }
}

impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A two-way relay: serve sends its timecode to side 0, which forwards it (delayed) from side 1 to
/// each listen; a listen's ping to side 1 goes on at once from side 0 to serve, and serve's pong
/// comes back (delayed) the same way. Every timecode packet is logged (frame → timetag).
struct Relay {
    /// Where serve sends (side 0's address).
    serve_side: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Frame → its true start (serve's timetag), ns.
    truth: Arc<Mutex<HashMap<i64, i128>>>,
}

impl Relay {
    fn start(listens: Vec<SocketAddr>) -> anyhow::Result<Self> {
        let sides = [UdpSocket::bind("127.0.0.1:0")?, UdpSocket::bind("127.0.0.1:0")?];
        for s in &sides {
            s.set_nonblocking(true)?;
        }
        let serve_side = sides[0].local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let truth = Arc::new(Mutex::new(HashMap::new()));
        let thread = {
            let (stop, truth) = (Arc::clone(&stop), Arc::clone(&truth));
            std::thread::Builder::new().name("bench-sync-relay".into()).spawn(move || {
                relay_loop(&sides, &listens, &stop, &truth);
            })?
        };
        Ok(Self { serve_side, stop, thread: Some(thread), truth })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The relay's loop: polls both sides (every 50 µs when idle) and releases held datagrams when due.
fn relay_loop(sides: &[UdpSocket; 2], listens: &[SocketAddr], stop: &AtomicBool, truth: &Mutex<HashMap<i64, i128>>) {
    let mut rng = Rng::new(SEED);
    let mut held = BinaryHeap::new();
    let mut buf = [0u8; 2048];
    let mut n = 0u64;
    let mut serve: Option<SocketAddr> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        // From serve: timecode to every listen, pongs back to the pinger (delayed either way).
        while let Ok((len, from)) = sides[0].recv_from(&mut buf) {
            busy = true;
            serve.get_or_insert(from);
            let bytes = buf[..len].to_vec();
            let delay = Duration::from_nanos(rng.range(0, JITTER.as_nanos() as i64) as u64);
            if let Ok((Some(tag), msg)) = decode_timecode_packet(&bytes) {
                if let Ok(mut t) = truth.lock() {
                    t.insert(msg.frame, unix_nanos(system_time_from_timetag(tag)));
                }
                for &to in listens {
                    held.push(Held { due: Instant::now() + delay, n, bytes: bytes.clone(), to, from_side: 1 });
                    n += 1;
                }
            } else if let Some(to) = pinger_of(&bytes) {
                held.push(Held { due: Instant::now() + delay, n, bytes, to, from_side: 1 });
                n += 1;
            }
        }
        // From a listen: pings to serve at once; the pinger is remembered by the ping's ID.
        while let Ok((len, from)) = sides[1].recv_from(&mut buf) {
            busy = true;
            if let Some(serve) = serve
                && let Ok(ping) = osc_timecode_core::clocksync::Ping::decode(&buf[..len])
            {
                remember(ping.id, ping.origin, from);
                let _ = sides[0].send_to(&buf[..len], serve);
            }
        }
        while held.peek().is_some_and(|h: &Held| h.due <= Instant::now()) {
            if let Some(h) = held.pop() {
                let _ = sides[h.from_side].send_to(&h.bytes, h.to);
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Pingers by (ID, ORIGIN): two listens may use the same IDs, not the same origins.
static PINGERS: Mutex<Vec<((i64, i64), SocketAddr)>> = Mutex::new(Vec::new());

fn remember(id: i64, origin: i64, from: SocketAddr) {
    if let Ok(mut p) = PINGERS.lock() {
        if p.len() > 4096 {
            p.drain(..2048);
        }
        p.push(((id, origin), from));
    }
}

fn pinger_of(bytes: &[u8]) -> Option<SocketAddr> {
    let pong = osc_timecode_core::clocksync::Pong::decode(bytes).ok()?;
    PINGERS.lock().ok()?.iter().rev().find(|(k, _)| *k == (pong.id, pong.origin)).map(|(_, a)| *a)
}

/// One `listen --json` line and when it was read (real clock, ns).
struct Line {
    at: i128,
    v: serde_json::Value,
}

/// Reads a listen's lines on a thread of its own, as they come.
fn reader(child: &mut std::process::Child) -> anyhow::Result<JoinHandle<Vec<Line>>> {
    let stdout = child.stdout.take().context("no stdout")?;
    Ok(std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = unix_nanos(SystemTime::now());
            if let Ok(v) = serde_json::from_str(&line) {
                lines.push(Line { at, v });
            }
        }
        lines
    }))
}

/// What the run measured.
struct Measured {
    /// Sync error per synced line, ms (estimate − truth): before the step, and after the
    /// estimate took it (within the target of the new offset).
    error_ms: Vec<f64>,
    /// Synced lines whose error is beyond the bound they show.
    beyond_bound: usize,
    /// The bound shown per synced line, ms.
    bound_ms: Vec<f64>,
    /// listen's start to its first synced line, ms.
    converged_ms: Option<f64>,
    /// listen's start to its first line whose bound is within the target, ms.
    narrow_ms: Option<f64>,
    /// The locate that took the master's step to its first line within the target of the new
    /// offset, ms; and the steps `listen` counted.
    after_step_ms: Option<f64>,
    steps: u64,
    /// Frame shown − true frame per locked line before the step, sync and same.
    frames_sync: Vec<i64>,
    frames_same: Vec<i64>,
    /// Line read − true start of the frame shown, ms, per locked line before the step (sync).
    lag_sync_ms: Vec<f64>,
}

/// Runs section 11.
pub fn run(ctx: &Ctx) -> Section {
    let seconds = if ctx.quick { 6 } else { 60 };
    eprintln!("[bench] clock sync: {seconds} s, listen 250 ms ahead, 0–4 ms one-way jitter");
    let mut body = format!(
        "`osc-timecode serve --rate 25` → a two-way relay (timecode and pongs delayed by a uniform random 0–4 ms, \
         seed {SEED:#x}; pings pass at once: one-way jitter) → two `osc-timecode listen --json` whose wall clock is \
         {OFFSET_MS} ms ahead (libfaketime, monotonic clock real), one `--clock sync`, one `--clock same`, {seconds} s. \
         Truth: the offset is exactly −{OFFSET_MS} ms (master − receiver); each frame's true start is serve's \
         timetag. Absolute values, p50 / p99 / max.\n\n"
    );
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let findings = Vec::new();
    match measure(ctx, seconds) {
        Ok(m) => {
            let err = Summary::of_abs(&m.error_ms);
            let bound = Summary::of(&m.bound_ms);
            let lag = Summary::of_abs(&m.lag_sync_ms);
            let share = |v: &[i64], want: i64| v.iter().filter(|e| **e == want).count() as f64 / v.len().max(1) as f64;
            let median = |v: &[i64]| {
                let mut v = v.to_vec();
                v.sort_unstable();
                v.get(v.len() / 2).copied()
            };
            body.push_str("| measure | p50 / p99 / max | n |\n|---|---|---|\n");
            body.push_str(&format!(
                "| sync error: estimated − true offset, ms | {} | {} lines |\n",
                cell(err),
                m.error_ms.len()
            ));
            body.push_str(&format!(
                "| the bound shown, ms (lines whose error is beyond it: {}) | {} | |\n",
                m.beyond_bound,
                cell(bound)
            ));
            let ms = |v: Option<f64>| v.map_or("—".to_owned(), num);
            body.push_str(&format!(
                "| convergence: start → first `synced` line, ms | {} | 1 |\n| convergence: start → first bound ≤ \
                 {TARGET_P99_MS} ms, ms | {} | 1 |\n| after the master's clock stepped {STEP_MS} ms (a new epoch, at a \
                 locate): → first line within {TARGET_P99_MS} ms of the new offset, ms | {} | {} step(s) counted |\n",
                ms(m.converged_ms),
                ms(m.narrow_ms),
                ms(m.after_step_ms),
                m.steps
            ));
            body.push_str(&format!(
                "| `--clock sync`: line read − true start of the frame shown, ms | {} | {} lines |\n\n",
                cell(lag),
                m.lag_sync_ms.len()
            ));
            body.push_str(&format!(
                "Frame shown − frame truly playing when read, before the step: `--clock sync` median {} ({:.1} % exactly \
                 0), `--clock same` median {} ({:.1} % at +7: 250 ms is 6.25 frames, and each line is written as its frame \
                 starts there) over {} and {} locked lines.\n\n",
                median(&m.frames_sync).map_or("—".into(), |v| v.to_string()),
                100.0 * share(&m.frames_sync, 0),
                median(&m.frames_same).map_or("—".into(), |v| v.to_string()),
                100.0 * share(&m.frames_same, 7),
                m.frames_sync.len(),
                m.frames_same.len()
            ));
            body.push_str(
                "Every exchange limits the offset both ways (a ping cannot arrive before it leaves, nor a pong): the \
                 estimate is the line halfway across the widest corridor those limits leave over the last 32 s, and the \
                 bound is how far every line they allow reaches from it, so the fastest ping and the fastest pong of the \
                 window set it even when they are not the same exchange. Bursts of 8 pings 40 ms apart, every 2 s, the \
                 first four 0.5 s apart. The sync error counts every synced line from the first, the warm-up included, \
                 except those between the step's locate and the first line within the target of the new offset.\n\n",
            );
            if let Some(e) = err {
                targets.push(Target {
                    target: format!("sync error with 0–4 ms one-way jitter: p99 ≤ {TARGET_P99_MS} ms"),
                    result: format!(
                        "p50 {} / p99 {} / max {} ms over {} lines, {} beyond the bound shown; bound ≤ {TARGET_P99_MS} ms \
                         {} ms after start, {} ms after a step",
                        num(e.p50),
                        num(e.p99),
                        num(e.max),
                        m.error_ms.len(),
                        m.beyond_bound,
                        m.narrow_ms.map_or("—".to_owned(), num),
                        m.after_step_ms.map_or("—".to_owned(), num)
                    ),
                    met: Some(e.p99 <= TARGET_P99_MS),
                });
                headline.push(format!(
                    "clock sync, receiver 250 ms ahead, 0–4 ms one-way jitter: error p99 {} ms, converged in {} ms; \
                     frame shown with sync: median {} off (same: {})",
                    num(e.p99),
                    m.converged_ms.map_or("—".to_owned(), num),
                    median(&m.frames_sync).map_or("—".into(), |v| v.to_string()),
                    median(&m.frames_same).map_or("—".into(), |v| v.to_string()),
                ));
            }
        }
        Err(e) => {
            body.push_str(&format!("skipped: {e:#}\n\n"));
            targets.push(Target {
                target: format!("sync error with 0–4 ms one-way jitter: p99 ≤ {TARGET_P99_MS} ms"),
                result: format!("skipped: {e:#}"),
                met: None,
            });
        }
    }
    Section { title: "11. One clock for the rig".into(), body, targets, headline, findings }
}

fn measure(ctx: &Ctx, seconds: u32) -> anyhow::Result<Measured> {
    if !Path::new(FAKETIME).exists() {
        bail!("needs libfaketime (apt-get install faketime)");
    }
    let (sync_addr, same_addr, cues) = (free_loopback_addr(), free_loopback_addr(), free_loopback_addr());
    let relay = Relay::start(vec![sync_addr, same_addr])?;
    // serve's wall clock, faked from a file (monotonic real): stepped at two thirds of the run.
    let dir = std::env::temp_dir().join(format!("osc-timecode-bench-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let clock_file = dir.join("faketime");
    std::fs::write(&clock_file, "+0s\n")?;
    let _serve = KillOnDrop(
        Command::new(&ctx.client)
            .env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME_TIMESTAMP_FILE", &clock_file)
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .args(["serve", "--rate", "25", "--quiet", "--to", &relay.serve_side.to_string()])
            .args(["--listen", &cues.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start osc-timecode serve")?,
    );
    let listen = |bind: SocketAddr, clock: &str| {
        Command::new(&ctx.client)
            .env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME", format!("+{:.3}s", OFFSET_MS / 1000.0))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .args(["listen", "--json", "--bind", &bind.to_string(), "--duration", &seconds.to_string()])
            .args(["--clock", clock])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("could not start osc-timecode listen")
    };
    let started = unix_nanos(SystemTime::now());
    let mut sync = KillOnDrop(listen(sync_addr, "sync")?);
    let mut same = KillOnDrop(listen(same_addr, "same")?);
    let (sync_lines, same_lines) = (reader(&mut sync.0)?, reader(&mut same.0)?);
    std::thread::sleep(Duration::from_millis(u64::from(seconds) * 2000 / 3));
    std::fs::write(&clock_file, format!("+{:.3}s\n", STEP_MS / 1000.0))?;
    std::thread::sleep(Duration::from_millis(300));
    let locate = rosc::encoder::encode(&rosc::OscPacket::Message(rosc::OscMessage {
        addr: "/transport/locate".into(),
        args: vec![rosc::OscType::String(LOCATED.into())],
    }))?;
    UdpSocket::bind("127.0.0.1:0")?.send_to(&locate, cues)?;
    let stepped = unix_nanos(SystemTime::now());
    let _ = (sync.0.wait(), same.0.wait());
    let _ = std::fs::remove_dir_all(&dir);
    let (sync_lines, same_lines) = (
        sync_lines.join().map_err(|_| anyhow::anyhow!("reader panicked"))?,
        same_lines.join().map_err(|_| anyhow::anyhow!("reader panicked"))?,
    );
    let truth = relay.truth.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    if let Some(dump) = std::env::var_os("OSC_TIMECODE_BENCH_SYNC_DUMP") {
        let text: String = sync_lines.iter().map(|l| format!("{} {}\n", l.at - started, l.v)).collect();
        std::fs::write(dump, text)?;
    }
    let synced: Vec<&Line> = sync_lines.iter().filter(|l| l.v["sync"] == "synced").collect();
    let converged_ms = synced.first().map(|l| (l.at - started) as f64 / 1e6);
    let bound_of = |l: &Line| l.v["sync_bound_ms"].as_f64();
    let narrow_ms =
        synced.iter().find(|l| bound_of(l).is_some_and(|b| b <= TARGET_P99_MS)).map(|l| (l.at - started) as f64 / 1e6);
    // Estimate − truth per synced line: −250 ms before the step, −170 ms after.
    let error = |l: &Line, after: bool| {
        let truth = -OFFSET_MS + if after { STEP_MS } else { 0.0 };
        l.v["clock_offset_ms"].as_f64().map(|o| o - truth)
    };
    let retaken = synced
        .iter()
        .find(|l| l.at >= stepped && error(l, true).is_some_and(|e| e.abs() <= TARGET_P99_MS))
        .map(|l| l.at);
    let after_step_ms = retaken.map(|at| (at - stepped) as f64 / 1e6);
    let counted: Vec<(&Line, f64)> = synced
        .iter()
        .filter_map(|l| {
            let after = l.at >= stepped;
            if after && retaken.is_none_or(|r| l.at < r) {
                return None;
            }
            Some((*l, error(l, after)?))
        })
        .collect();
    let error_ms: Vec<f64> = counted.iter().map(|(_, e)| *e).collect();
    let beyond_bound = counted.iter().filter(|(l, e)| bound_of(l).is_some_and(|b| e.abs() > b + 0.001)).count();
    let bound_ms: Vec<f64> = synced.iter().filter_map(|l| bound_of(l)).collect();
    let steps = sync_lines.last().and_then(|l| l.v["clock_steps"].as_u64()).unwrap_or(0);
    let origin =
        truth.iter().min_by_key(|(f, _)| **f).map(|(f, t)| (*f, *t)).context("no timecode through the relay")?;
    let true_frame = |at: i128| origin.0 + i64::try_from((at - origin.1).div_euclid(FRAME_NS)).unwrap_or(0);
    let before = |l: &&Line| l.at < stepped && l.v["state"] == "locked";
    let frames = |lines: &[Line], only_synced: bool| -> Vec<i64> {
        lines
            .iter()
            .filter(before)
            .filter(|l| !only_synced || l.v["sync"] == "synced")
            .filter_map(|l| Some(l.v["frame"].as_i64()? - true_frame(l.at)))
            .collect()
    };
    let lag_sync_ms = sync_lines
        .iter()
        .filter(before)
        .filter(|l| l.v["sync"] == "synced")
        .filter_map(|l| Some((l.at - truth.get(&l.v["frame"].as_i64()?)?) as f64 / 1e6))
        .collect();
    if error_ms.is_empty() {
        bail!("listen --clock sync never synced");
    }
    Ok(Measured {
        error_ms,
        beyond_bound,
        bound_ms,
        converged_ms,
        narrow_ms,
        after_step_ms,
        steps,
        frames_sync: frames(&sync_lines, true),
        frames_same: frames(&same_lines, false),
        lag_sync_ms,
    })
}
