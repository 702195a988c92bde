//! Section 1, the audio thread: how long one `process()` call of the release plugin takes in the
//! clack-host harness and how many instructions it executes (callgrind), at 64, 512 and 4096
//! samples, playing, output on (one and eight targets) and off; and the proof that `process()`
//! never allocates (the debug bundle, whose `assert_process_allocs` aborts on the first
//! allocation, runs every path without aborting).
//!
//! Both measurements go through the harness's `ProcessProbe`, called right around each
//! `process()` call, so the harness's own per-block work (filling the input, checking the
//! pass-through) is never counted. What is counted is what a host pays for the call: clack-host's
//! few instructions building the `clap_process`, nice-plug's wrapper (which copies the input to the
//! output: proportional to the block) and the plugin's own work.
//!
//! Blocks are split by how many timecode frames start in them, because the per-block cost and
//! the per-frame cost are separate targets.

use std::cell::Cell;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::FrameRate;

use super::stats::{Summary, num};
use super::valgrind;
use super::{Ctx, PluginSetup, Section, Target, frames_starting_in, load_plugin};
use crate::bundle::BUNDLE_DIR_ENV;
use crate::clap::{ProbePoint, set_process_probe};
use crate::cues::{CueSender, CueValue, free_loopback_addr, timetag};
use crate::transport::Transport;

/// Sample rate of every audio-thread measurement.
const SR: u32 = 48_000;
/// Block sizes measured.
const BLOCKS: [u32; 3] = [64, 512, 4096];
/// The frame rate of every audio-thread measurement.
const RATE: FrameRate = FrameRate::FPS_25;

/// What the probe does.
const PROBE_OFF: u8 = 0;
/// Time each `process()` call.
const PROBE_TIME: u8 = 1;
/// Switch callgrind's collection on around the blocks in [`COLLECT_MASK`].
const PROBE_CALLGRIND: u8 = 2;

/// The probe's mode: [`PROBE_OFF`], [`PROBE_TIME`] or [`PROBE_CALLGRIND`].
static PROBE_MODE: AtomicU8 = AtomicU8::new(PROBE_OFF);
/// `process()` calls seen by the probe since the last [`reset_probe`].
static PROBE_CALLS: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds of each timed `process()` call, in order.
static TIMES_NS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// Nanoseconds of a monotonic clock read just before each timed call (a calibration: how long
/// the smallest piece of code takes at that moment, warm or cold).
static CLOCK_NS: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// Callgrind mode: whether to collect the call with this index.
static COLLECT_MASK: Mutex<Vec<bool>> = Mutex::new(Vec::new());
/// Callgrind mode: calls collected.
static COLLECTED: AtomicU64 = AtomicU64::new(0);
/// Set once the probe is installed.
static PROBE_INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// When the current `process()` call began (time mode).
    static CALL_START: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The current call is being collected (callgrind mode).
    static COLLECTING: Cell<bool> = const { Cell::new(false) };
}

/// The harness calls this just before and just after every `process()` call.
fn probe(point: ProbePoint) {
    if point == ProbePoint::Before {
        super::priority::on_audio_thread();
    }
    match (PROBE_MODE.load(Ordering::Relaxed), point) {
        (PROBE_TIME, ProbePoint::Before) => {
            PROBE_CALLS.fetch_add(1, Ordering::Relaxed);
            let a = Instant::now();
            let b = Instant::now();
            if let Ok(mut clock) = CLOCK_NS.lock() {
                clock.push(u64::try_from((b - a).as_nanos()).unwrap_or(u64::MAX));
            }
            // Last thing before the call.
            CALL_START.with(|c| c.set(Some(Instant::now())));
        }
        (PROBE_TIME, ProbePoint::After) => {
            // First thing after it.
            let end = Instant::now();
            if let Some(start) = CALL_START.with(Cell::take) {
                let ns = u64::try_from((end - start).as_nanos()).unwrap_or(u64::MAX);
                if let Ok(mut times) = TIMES_NS.lock() {
                    times.push(ns);
                }
            }
        }
        (PROBE_CALLGRIND, ProbePoint::Before) => {
            let index = PROBE_CALLS.fetch_add(1, Ordering::Relaxed) as usize;
            let collect = COLLECT_MASK.lock().is_ok_and(|m| m.get(index).copied().unwrap_or(false));
            if collect {
                COLLECTED.fetch_add(1, Ordering::Relaxed);
                COLLECTING.with(|c| c.set(true));
                valgrind::toggle_collect();
            }
        }
        (PROBE_CALLGRIND, ProbePoint::After) if COLLECTING.with(|c| c.replace(false)) => {
            valgrind::toggle_collect();
        }
        _ => {}
    }
}

/// Installs `probe` in the harness (once; it does nothing until a mode is set, but raises the
/// audio threads' priority when [`super::priority`] is enabled).
pub fn install_probe() {
    if !PROBE_INSTALLED.swap(true, Ordering::SeqCst) {
        set_process_probe(probe);
    }
}

/// Installs `probe` (once), clears what it recorded and sets its mode.
fn start_probe(mode: u8) {
    install_probe();
    PROBE_CALLS.store(0, Ordering::SeqCst);
    COLLECTED.store(0, Ordering::SeqCst);
    if let Ok(mut t) = TIMES_NS.lock() {
        t.clear();
    }
    if let Ok(mut c) = CLOCK_NS.lock() {
        c.clear();
    }
    PROBE_MODE.store(mode, Ordering::SeqCst);
}

/// Stops the probe, keeping what it recorded.
fn stop_probe() {
    PROBE_MODE.store(PROBE_OFF, Ordering::SeqCst);
}

/// One measured configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Config {
    /// Samples per block.
    block: u32,
    /// The Output parameter.
    output: bool,
    /// How many targets the plugin sends to.
    targets: usize,
    /// LTC written on both output channels (`[plugin.ltc] channel = "both"`).
    ltc: bool,
}

impl Config {
    /// All configurations, in report order.
    fn all() -> Vec<Config> {
        let mut v = Vec::new();
        for block in BLOCKS {
            v.push(Config { block, output: true, targets: 1, ltc: false });
            v.push(Config { block, output: true, targets: 8, ltc: false });
            v.push(Config { block, output: false, targets: 1, ltc: false });
            v.push(Config { block, output: true, targets: 1, ltc: true });
        }
        v
    }

    fn label(self) -> String {
        if self.ltc {
            format!("{} samples, output on, 1 target, LTC on both channels", self.block)
        } else if self.output {
            format!(
                "{} samples, output on, {} target{}",
                self.block,
                self.targets,
                if self.targets == 1 { "" } else { "s" }
            )
        } else {
            format!("{} samples, output off", self.block)
        }
    }

    fn args(self) -> [String; 4] {
        [
            self.block.to_string(),
            if self.output { "on" } else { "off" }.to_owned(),
            self.targets.to_string(),
            if self.ltc { "ltc" } else { "no-ltc" }.to_owned(),
        ]
    }

    fn parse(args: &[String]) -> anyhow::Result<Self> {
        match args {
            [block, output, targets, ltc, ..] => Ok(Self {
                block: block.parse().context("block size")?,
                output: output == "on",
                targets: targets.parse().context("targets")?,
                ltc: ltc == "ltc",
            }),
            _ => bail!("expected BLOCK on|off TARGETS ltc|no-ltc"),
        }
    }

    /// The plugin for this configuration, loaded and set up, not activated.
    fn plugin(self, targets: Vec<SocketAddr>) -> crate::clap::ClapPlugin {
        let mut plugin =
            load_plugin(&PluginSetup { targets, rate: RATE, output: self.output, cues: free_loopback_addr() });
        if self.ltc {
            plugin.update_settings(|s| {
                s.insert("ltc".into(), serde_json::json!({"channel": "both", "level_dbfs": -18.0}));
            });
        }
        plugin
    }

    /// Seconds of audio for a timing run: enough blocks for a p99 while the frames stay fewer
    /// than the plugin's 4096-frame ring (the run goes faster than real time, and a full ring
    /// would time the drop path instead).
    fn timing_blocks(self, quick: bool) -> u64 {
        let audio_seconds = if quick { 30 } else { 120 };
        (u64::from(SR) * audio_seconds / u64::from(self.block)).max(200)
    }
}

/// Which blocks a callgrind run counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Blocks where no frame starts.
    NoFrame,
    /// Blocks where at least one frame starts.
    Frames,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::NoFrame => "none",
            Class::Frames => "some",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        match s {
            "none" => Ok(Class::NoFrame),
            "some" => Ok(Class::Frames),
            _ => bail!("unknown block class {s:?}"),
        }
    }

    fn matches(self, frames: i64) -> bool {
        match self {
            Class::NoFrame => frames == 0,
            Class::Frames => frames > 0,
        }
    }
}

/// Bound, never-read loopback sockets standing in for targets: the kernel drops what does not
/// fit their buffers, and nothing on this machine spends time reading them.
fn sinks(n: usize) -> anyhow::Result<(Vec<UdpSocket>, Vec<SocketAddr>)> {
    let sockets = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").context("could not bind a sink socket"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let addrs = sockets.iter().map(|s| s.local_addr().context("sink address")).collect::<anyhow::Result<_>>()?;
    Ok((sockets, addrs))
}

/// Per-block times of one configuration, split by frames starting in the block.
#[derive(Debug, Clone)]
struct Timing {
    /// The configuration.
    config: Config,
    /// All blocks, ns.
    all: Option<Summary>,
    /// Blocks without a frame start, ns.
    no_frame: Option<Summary>,
    /// Blocks with one or more frame starts, ns.
    frames: Option<Summary>,
    /// Mean frames per block among those with frames.
    frames_per_frame_block: f64,
    /// One clock read just before each call, ns (see [`CLOCK_NS`]).
    clock_read: Option<Summary>,
}

/// Times every `process()` call of a back-to-back run (not paced: a paced 4096-sample run long
/// enough for a p99 would take minutes).
///
/// With `paced`, the blocks are paced in real time instead (`seconds` of audio), as a host's
/// callback would call them, with the network thread sending in between.
fn time_config(config: Config, quick: bool, paced: Option<f64>) -> anyhow::Result<Timing> {
    let (_sinks, targets) = sinks(config.targets)?;
    let mut plugin = config.plugin(targets);
    plugin.activate(SR, config.block);
    let mut transport = Transport::playing_from(SR, 0);
    // Warm-up: first-call costs (page faults, the network thread starting) are not per-block.
    plugin.run(&mut transport, u64::from(config.block) * 50, config.block);
    start_probe(PROBE_TIME);
    let report = match paced {
        Some(seconds) => {
            let samples = (seconds * f64::from(SR)) as u64 / u64::from(config.block) * u64::from(config.block);
            plugin.run_realtime(&mut transport, samples, config.block)
        }
        None => plugin.run(&mut transport, config.timing_blocks(quick) * u64::from(config.block), config.block),
    };
    stop_probe();
    let times: Vec<u64> = std::mem::take(&mut *TIMES_NS.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let clock: Vec<f64> = CLOCK_NS.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.iter().map(|&n| n as f64).collect();
    plugin.deactivate();
    if times.len() != report.block_log.len() {
        bail!("{} timed calls for {} blocks", times.len(), report.block_log.len());
    }
    let (mut none, mut some, mut frame_count) = (Vec::new(), Vec::new(), 0);
    for (t, b) in times.iter().zip(&report.block_log) {
        let frames = frames_starting_in(b.timeline_start.unwrap_or(0), b.len, SR, RATE);
        if frames == 0 {
            none.push(*t as f64);
        } else {
            some.push(*t as f64);
            frame_count += frames;
        }
    }
    let all: Vec<f64> = times.iter().map(|&t| t as f64).collect();
    Ok(Timing {
        config,
        all: Summary::of(&all),
        no_frame: Summary::of(&none),
        frames: Summary::of(&some),
        frames_per_frame_block: if some.is_empty() { 0.0 } else { frame_count as f64 / some.len() as f64 },
        clock_read: Summary::of(&clock),
    })
}

/// One row of the time table.
fn push_timing_row(body: &mut String, label: &str, t: &Timing) {
    let f = |s: Option<Summary>| s.map_or(("—".to_owned(), "—".to_owned()), |s| (num(s.p50), num(s.p99)));
    let (a50, a99) = f(t.all);
    let (n50, n99) = f(t.no_frame);
    let (s50, s99) = f(t.frames);
    body.push_str(&format!(
        "| {label} | {} | {a50} | {a99} | {} | {n50} | {n99} | {s50} | {s99} | {} | {} |\n",
        t.all.map_or(0, |s| s.n),
        t.all.map_or("—".to_owned(), |s| num(s.max)),
        num(t.frames_per_frame_block),
        t.clock_read.map_or("—".to_owned(), |s| num(s.p50)),
    ));
}

/// What a callgrind child counted.
#[derive(Debug, Clone, Copy)]
struct Counted {
    /// Calls collected.
    calls: u64,
    /// Frames starting in those calls' blocks.
    frames: i64,
    /// Instructions per call.
    per_call: f64,
    /// Of those, in libc's `memcpy`/`memmove` (nice-plug's input → output copy), per call;
    /// `None` without `callgrind_annotate`.
    memcpy_per_call: Option<f64>,
}

/// Blocks a callgrind child runs before it starts counting.
const CALLGRIND_WARM: usize = 100;
/// Blocks a callgrind child looks at.
const CALLGRIND_MEASURE: usize = 1000;

/// The callgrind child: runs `CALLGRIND_WARM` + `CALLGRIND_MEASURE` blocks of `config` and
/// collects the measured blocks of `class`. Prints `calls FRAMES` on standard output.
pub fn callgrind_child(args: &[String]) -> anyhow::Result<()> {
    let config = Config::parse(args)?;
    let class = Class::parse(args.get(4).map(String::as_str).unwrap_or("some"))?;
    let (_sinks, targets) = sinks(config.targets)?;
    let mut plugin = config.plugin(targets);
    plugin.activate(SR, config.block);
    let mut transport = Transport::playing_from(SR, 0);
    let total = CALLGRIND_WARM + CALLGRIND_MEASURE;
    let mut frames = 0;
    let mask: Vec<bool> = (0..total)
        .map(|i| {
            let n = frames_starting_in(i as i64 * i64::from(config.block), config.block, SR, RATE);
            let on = i >= CALLGRIND_WARM && class.matches(n);
            if on {
                frames += n;
            }
            on
        })
        .collect();
    *COLLECT_MASK.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = mask;
    start_probe(PROBE_CALLGRIND);
    plugin.run(&mut transport, total as u64 * u64::from(config.block), config.block);
    stop_probe();
    plugin.deactivate();
    println!("{} {frames}", COLLECTED.load(Ordering::SeqCst));
    Ok(())
}

/// Runs the callgrind child for `config` and `class` and returns what it counted, or why not.
fn count_instructions(ctx: &Ctx, config: Config, class: Class) -> anyhow::Result<Counted> {
    let out = ctx.scratch.join(format!(
        "callgrind.{}.{}.{}.{}.{}",
        config.block,
        config.output,
        config.targets,
        config.ltc,
        class.name()
    ));
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(&ctx.exe)
        .args(["--child", "callgrind"])
        .args(config.args())
        .arg(class.name())
        .env(BUNDLE_DIR_ENV, &ctx.bundle_dir)
        .stdin(Stdio::null());
    let output = cmd.output().context("could not run valgrind")?;
    if !output.status.success() {
        bail!(
            "valgrind child failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).lines().rev().take(5).collect::<Vec<_>>().join(" / ")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut words = stdout.split_whitespace();
    let calls: u64 = words.next().context("no call count from the child")?.parse()?;
    let frames: i64 = words.next().context("no frame count from the child")?.parse()?;
    let text = std::fs::read_to_string(&out).with_context(|| format!("could not read {}", out.display()))?;
    let total = callgrind_total(&text).with_context(|| format!("no totals in {}", out.display()))?;
    let memcpy = memcpy_instructions(&out);
    let _ = std::fs::remove_file(&out);
    if calls == 0 {
        bail!("no block of that kind");
    }
    Ok(Counted {
        calls,
        frames,
        per_call: total as f64 / calls as f64,
        memcpy_per_call: memcpy.map(|m| m as f64 / calls as f64),
    })
}

/// Instructions in libc's `memcpy`/`memmove` in a callgrind output file, from
/// `callgrind_annotate`'s per-function table (`None` if it is not installed).
fn memcpy_instructions(file: &Path) -> Option<u64> {
    let out = Command::new("callgrind_annotate").arg("--threshold=100").arg(file).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| (l.contains("memcpy") || l.contains("memmove")) && l.contains("libc"))
            .filter_map(|l| l.split_whitespace().next()?.replace(',', "").parse::<u64>().ok())
            .sum(),
    )
}

/// The `totals:` (or `summary:`) figure of a callgrind output file: instructions collected.
pub fn callgrind_total(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("totals:").or_else(|| l.strip_prefix("summary:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The allocation child (debug bundle): every audio-thread path at every block size, with cues
/// arriving, transport moves and eight targets. Prints `BLOCKS CUES_SENT` when done; an
/// allocation inside `process()` aborts the process before that.
pub fn alloc_child(quick: bool) -> anyhow::Result<()> {
    let (_sinks, mut targets) = sinks(7)?;
    let rx = crate::receiver::Receiver::bind();
    targets.push(rx.addr());
    let mut blocks = 0u64;
    let mut cues_sent = 0u64;
    for block in BLOCKS {
        let listen = free_loopback_addr();
        let mut plugin = load_plugin(&PluginSetup { targets: targets.clone(), rate: RATE, output: true, cues: listen });
        // Every audio-thread path at once: frames, cues, LTC on both channels and MTC.
        plugin.update_settings(|s| {
            s.insert("ltc".into(), serde_json::json!({"channel": "both", "stopped": "still"}));
            s.insert("mtc".into(), serde_json::json!({"enabled": true}));
        });
        plugin.activate(SR, block);
        let sender = CueSender::new(listen);
        sender.wait_ready();
        let stop = AtomicBool::new(false);
        let mut transport = Transport::new(SR);
        let sent = std::thread::scope(|s| {
            let cues = s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Immediate, timetagged, notes (with their note-offs) and CCs, and a pattern;
                    // timetagged parameter cues, which the audio thread sets at their sample.
                    let v = Some(CueValue::Int((n % 127) as i32 + 1));
                    sender.cue(&format!("/cue/{}", n % 128), v, None);
                    sender.cue(&format!("/trigger/{}", n % 128), v, None);
                    let at = timetag(SystemTime::now() + Duration::from_millis(20 + n % 200));
                    sender.cue_at("/cue/{1,2,3}", v, None, at);
                    sender.cue_at(&format!("/macro/{}", n % 8 + 1), v, None, at);
                    n += 4;
                    std::thread::sleep(Duration::from_millis(1));
                }
                n
            });
            let per_phase = (u64::from(SR) * if quick { 2 } else { 6 } / u64::from(block)) as usize;
            // Real-time paced phases, so cues and frames arrive between blocks as in a host.
            transport.play();
            blocks += plugin.run_realtime(&mut transport, per_phase as u64 * u64::from(block) / 3, block).blocks;
            // Scripted: locate, loop, stop and start, pre-roll, as fast as it goes.
            let report = plugin.run_scripted(&mut transport, per_phase * 4, |t, i| {
                match i % 400 {
                    0 => t.locate(i as i64 * 997 - 200_000),
                    100 => t.set_loop(Some((t.position, t.position + 30_000))),
                    200 => t.stop(),
                    250 => {
                        t.set_loop(None);
                        t.play();
                    }
                    _ => {}
                }
                block
            });
            blocks += report.blocks;
            transport.stop();
            blocks += plugin.run(&mut transport, u64::from(block) * 20, block).blocks;
            stop.store(true, Ordering::Relaxed);
            cues.join().unwrap_or(0)
        });
        cues_sent += sent;
        plugin.deactivate();
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{blocks} {cues_sent}")?;
    Ok(())
}

/// Runs the allocation child on the debug bundles: `Ok((blocks, cues))` when it finished.
fn prove_no_alloc(ctx: &Ctx, debug_dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut cmd = Command::new(&ctx.exe);
    cmd.args(["--child", "alloc"]).env(BUNDLE_DIR_ENV, debug_dir).stdin(Stdio::null());
    if ctx.quick {
        cmd.arg("--quick");
    }
    let output = cmd.output().context("could not run the allocation child")?;
    if !output.status.success() {
        let tail: Vec<String> =
            String::from_utf8_lossy(&output.stderr).lines().rev().take(8).map(str::to_owned).collect();
        bail!("the debug plugin aborted or failed ({}): {}", output.status, tail.join(" / "));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut words = stdout.split_whitespace();
    let blocks = words.next().context("no block count")?.parse()?;
    let cues = words.next().context("no cue count")?.parse()?;
    Ok((blocks, cues))
}

/// Runs section 1.
pub fn run(ctx: &Ctx) -> Section {
    let mut body = String::new();
    let mut targets = Vec::new();
    let mut headline = Vec::new();
    let findings = Vec::new();
    body.push_str(
        "Each figure is one `process()` call of the release bundle in the clack-host harness at 48 kHz, 25 fps, \
         transport playing, measured right around the call (the harness's own per-block work is outside). It includes \
         clack-host building the call and nice-plug's wrapper, which copies the input to the output (a cost \
         proportional to the block that every nice-plug plugin pays). Blocks are split by how many timecode frames \
         start in them. Targets are loopback sockets that are never read.\n\n",
    );

    // Time.
    body.push_str("### Time per call (ns)\n\n");
    body.push_str(
        "Blocks run back to back (not paced), after 50 warm-up blocks, so caches are warm; the last row paces \
         64-sample blocks in real time, as a host's callback calls them, with the network thread sending in between \
         (colder caches). `Instant::now()` around the call adds ~20–40 ns. The last column times one more \
         `Instant::now()` just before the call, for reference.\n\n",
    );
    body.push_str(
        "| configuration | blocks | all: p50 | p99 | max | no frame: p50 | p99 | with frames: p50 | p99 | frames/block \
         | one clock read just before: p50 |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut timings = Vec::new();
    let paced_seconds = if ctx.quick { 3.0 } else { 10.0 };
    let paced = Config { block: 64, output: true, targets: 1, ltc: false };
    let runs = Config::all().into_iter().map(|c| (c, None)).chain([(paced, Some(paced_seconds))]);
    let mut paced_timing = None;
    for (config, pacing) in runs {
        let label = match pacing {
            Some(s) => format!("{}, paced in real time ({s} s)", config.label()),
            None => config.label(),
        };
        eprintln!("[bench] audio thread: timing {label}");
        match time_config(config, ctx.quick, pacing) {
            Ok(t) if pacing.is_some() => {
                paced_timing = Some(t.clone());
                push_timing_row(&mut body, &label, &t);
            }
            Ok(t) => {
                push_timing_row(&mut body, &label, &t);
                timings.push(t);
            }
            Err(e) => body.push_str(&format!("| {label} | failed: {e:#} |\n")),
        }
    }
    body.push('\n');

    // Instructions.
    let mut counts: Vec<(Config, Class, f64, Counted)> = Vec::new();
    let valgrind_ok = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    body.push_str("### Instructions per call (callgrind)\n\n");
    if !valgrind_ok {
        body.push_str("skipped: `valgrind` is not installed.\n\n");
    } else {
        body.push_str(&format!(
            "`valgrind --tool=callgrind --collect-atstart=no`: the bench's child switches collection on for the \
             calling thread just before each counted `process()` call and off just after (client requests), so the \
             network and cue threads are not counted. {CALLGRIND_WARM} warm-up blocks, then the blocks of one kind \
             among the next {CALLGRIND_MEASURE}. Exact and repeatable, unlike time.\n\n"
        ));
        body.push_str(
            "| configuration | no frame: instr/call | of which memcpy | with frames: instr/call | of which memcpy | \
             frames/block | instr per frame (difference ÷ frames/block) |\n|---|---|---|---|---|---|---|\n",
        );
        for config in Config::all() {
            let mut row = vec![config.label()];
            let mut per: [Option<Counted>; 2] = [None, None];
            for (i, class) in [Class::NoFrame, Class::Frames].into_iter().enumerate() {
                eprintln!("[bench] audio thread: callgrind {} ({})", config.label(), class.name());
                match count_instructions(ctx, config, class) {
                    Ok(counted) => {
                        row.push(format!("{:.0}", counted.per_call));
                        row.push(counted.memcpy_per_call.map_or("—".to_owned(), |m| format!("{m:.0}")));
                        per[i] = Some(counted);
                        counts.push((config, class, counted.per_call, counted));
                    }
                    Err(e) if e.to_string().contains("no block of that kind") => {
                        row.extend(["— (none)".to_owned(), "—".to_owned()]);
                    }
                    Err(e) => row.extend([format!("failed: {e:#}"), "—".to_owned()]),
                }
            }
            let fpb = per[1].map(|c| c.frames as f64 / c.calls as f64);
            row.push(fpb.map_or("—".to_owned(), num));
            row.push(match (per[0], per[1], fpb) {
                (Some(a), Some(b), Some(f)) if f > 0.0 => format!("{:.0}", (b.per_call - a.per_call) / f),
                _ => "—".to_owned(),
            });
            body.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        body.push_str(
            "\nglibc's `memcpy` copies more than 2 KiB with `rep movsb`, which callgrind counts once per byte: at 4096 \
             samples nice-plug's input → output copy (2 × 16 KiB) is ~33 000 \"instructions\" that take a few hundred \
             nanoseconds (the time table is the better measure there). The plugin's own work is the count minus the \
             memcpy column.\n\n",
        );
    }

    // Targets: per-block cost and per-target independence.
    let find =
        |block, output, targets| timings.iter().find(|t| t.config == Config { block, output, targets, ltc: false });
    let ins = |block, output, targets, class| {
        counts
            .iter()
            .find(|(c, k, _, _)| *c == Config { block, output, targets, ltc: false } && *k == class)
            .map(|(_, _, v, _)| *v)
    };
    if let (Some(t64), Some(t4096)) = (find(64, true, 1), find(4096, true, 1)) {
        let p50 = |s: Option<Summary>| s.map_or(f64::NAN, |s| s.p50);
        let p99 = |s: Option<Summary>| s.map_or(f64::NAN, |s| s.p99);
        let (no_frame, with) = (p50(t64.no_frame), p50(t64.frames));
        let big = p50(t4096.all);
        let off_big = p50(find(4096, false, 1).and_then(|t| t.all));
        let per_frame_ins = match (ins(64, true, 1, Class::NoFrame), ins(64, true, 1, Class::Frames)) {
            (Some(a), Some(b)) => {
                format!("; callgrind: {a:.0} instructions per 64-sample call, +{:.0} per frame", b - a)
            }
            _ => String::new(),
        };
        let paced = paced_timing.as_ref().map_or(String::new(), |t| {
            let cold = if p50(t.no_frame) >= 1000.0 {
                " (the same instructions, with the caches and TLB cold after each sleep of the audio thread on this \
                 shared VM)"
            } else {
                ""
            };
            format!(
                "; paced in real time: median {} / {} ns (p99 {} / {} ns){cold}",
                num(p50(t.no_frame)),
                num(p50(t.frames)),
                num(p99(t.no_frame)),
                num(p99(t.frames))
            )
        });
        headline.push(format!(
            "process(): {} ns median at 64 samples without a frame, {} ns with one; {} ns at 4096 samples ({} ns with \
             output off)",
            num(no_frame),
            num(with),
            num(big),
            num(off_big)
        ));
        targets.push(Target {
            target: "audio thread under 1 µs per block plus a small cost per frame".into(),
            result: format!(
                "64-sample block, back to back: median {} ns without a frame, {} ns with one (p99 {} / {} \
                 ns){paced}{per_frame_ins}. 4096-sample block (2–3 frames): median {} ns, most of it nice-plug's input \
                 → output copy (output off: {} ns)",
                num(no_frame),
                num(with),
                num(p99(t64.no_frame)),
                num(p99(t64.frames)),
                num(big),
                num(off_big),
            ),
            met: {
                let warm = no_frame < 1000.0 && p99(t64.no_frame) < 1000.0 && with - no_frame < 1000.0;
                let cold = paced_timing.as_ref().is_none_or(|t| p50(t.no_frame) < 1000.0);
                // Warm but not paced: the work is small, the machine's cold caches are not.
                if warm && !cold { None } else { Some(warm) }
            },
        });
    }
    let mut independence = Vec::new();
    for block in BLOCKS {
        for class in [Class::NoFrame, Class::Frames] {
            if let (Some(one), Some(eight)) = (ins(block, true, 1, class), ins(block, true, 8, class)) {
                independence.push((block, class, one, eight));
            }
        }
    }
    if !independence.is_empty() {
        let worst = independence.iter().map(|(_, _, a, b)| ((b - a) / a).abs()).fold(0.0f64, f64::max);
        let cells: Vec<String> =
            independence.iter().map(|(b, c, one, eight)| format!("{b}/{}: {one:.0} vs {eight:.0}", c.name())).collect();
        targets.push(Target {
            target: "audio-thread work independent of the number of targets".into(),
            result: format!(
                "instructions per call, 1 vs 8 targets (block/frames): {}; largest difference {:.2} %",
                cells.join("; "),
                worst * 100.0
            ),
            met: Some(worst < 0.02),
        });
        if let (Some(on), Some(off)) = (ins(64, true, 1, Class::Frames), ins(64, false, 1, Class::Frames)) {
            headline.push(format!(
                "callgrind: {} instructions per 64-sample call with a frame ({} with output off); 1 vs 8 targets \
                 differ by at most {:.2} %",
                num(on),
                num(off),
                worst * 100.0
            ));
        }
    }

    // Allocations.
    body.push_str("### Allocations on the audio thread\n\n");
    match &ctx.debug_bundle_dir {
        None => body.push_str("skipped: no debug bundle given (`--debug-bundles DIR`).\n\n"),
        Some(dir) => {
            eprintln!("[bench] audio thread: allocation proof (debug bundle)");
            let result = prove_no_alloc(ctx, dir);
            let (text, met) = match &result {
                Ok((blocks, cues)) => (
                    format!(
                        "0: the debug bundle (nice-plug's `assert_process_allocs`, which aborts the process on the \
                         first allocation inside `process()`) ran {blocks} blocks at 64, 512 and 4096 samples with 8 \
                         targets, LTC on both channels (still while stopped) and MTC on, {cues} cues sent while it \
                         ran (immediate, timetagged, notes, CCs, patterns, timetagged parameter cues), locates, loops, stop and start, without \
                         aborting"
                    ),
                    true,
                ),
                Err(e) => (format!("ALLOCATION OR FAILURE: {e:#}"), false),
            };
            body.push_str(&format!("{text}.\n\n"));
            targets.push(Target {
                target: "zero allocations on the audio thread".into(),
                result: text,
                met: Some(met),
            });
            if met {
                headline.push("allocations on the audio thread: 0".into());
            }
        }
    }
    ltc_target(&timings, &counts, &mut targets, &mut headline);
    body.push_str("### LTC word starts (libltc)\n\n");
    match ltc_word_starts(FrameRate::FPS_25).and_then(|a| Ok((a, ltc_word_starts(FrameRate::FPS_29_97_DF)?))) {
        Ok((at25, at2997)) => {
            body.push_str(&format!(
                "The release bundle writes LTC (25 fps and 29.97 DF, 48 kHz, 512-sample blocks, 01:00:00:00 offset, 10 \
                 s of play); x42's libltc reads the captured audio. Word start as libltc reports it (`off_start`) \
                 minus the frame's first sample on the frame clock: 25 fps: {at25}; 29.97 DF: {at2997}. libltc reports \
                 0–2 samples late where frames are not a whole number of samples long (its own detection; the \
                 writer's unit tests prove the word rises on the frame's first sample).\n\n"
            ));
            targets.push(Target {
                target: "LTC word start on the frame's first sample (0 samples)".into(),
                result: format!("libltc: 25 fps {at25}; 29.97 DF {at2997}"),
                met: Some(at25.max == 0 && at25.min == 0),
            });
        }
        Err(e) => body.push_str(&format!("skipped: {e:#}\n\n")),
    }
    Section { title: "1. Audio-thread cost".into(), body, targets, headline, findings }
}

#[path = "../../../core/tests/interop/libltc.rs"]
#[allow(dead_code, reason = "the tests' libltc reader: the bench reads labels and positions only")]
pub(super) mod libltc;

/// Word starts as libltc reads them against the frame clock, in samples.
#[derive(Debug, Clone, Copy)]
struct WordStarts {
    /// Words compared.
    words: usize,
    /// Smallest and largest `off_start − frame start`.
    min: i64,
    /// See `min`.
    max: i64,
}

impl std::fmt::Display for WordStarts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} words, {} to {} samples", self.words, self.min, self.max)
    }
}

/// Plays 10 s with LTC on the left channel at `rate` and compares libltc's word starts with the
/// frame clock's frame starts (by label).
fn ltc_word_starts(rate: FrameRate) -> anyhow::Result<WordStarts> {
    use osc_timecode_core::Timecode;
    use osc_timecode_core::timecode::frame_start_sample;
    if !libltc::present() {
        bail!("libltc is not installed ({})", libltc::INSTALL);
    }
    let mut plugin = load_plugin(&PluginSetup { targets: Vec::new(), rate, output: true, cues: free_loopback_addr() });
    plugin.update_settings(|s| {
        s.insert("ltc".into(), serde_json::json!({"channel": "left", "level_dbfs": -18.0}));
    });
    plugin.set_param(crate::clap::Param::Offset, 3_600.0);
    plugin.capture_audio = true;
    plugin.activate(SR, 512);
    let mut transport = Transport::playing_from(SR, 0);
    let report = plugin.run(&mut transport, u64::from(SR) * 10, 512);
    plugin.deactivate();
    let offset = osc_timecode_core::clock::offset_frames(3_600, rate);
    let decoded = libltc::decode(&report.audio[0], SR, rate, "bench");
    let mut diffs = Vec::new();
    for d in &decoded {
        let frame = Timecode::parse(&d.label, rate).context("libltc's label")?.to_frame() - offset;
        diffs.push(d.off_start - frame_start_sample(frame, SR, rate));
    }
    let (Some(&min), Some(&max)) = (diffs.iter().min(), diffs.iter().max()) else { bail!("libltc read no word") };
    Ok(WordStarts { words: diffs.len(), min, max })
}

/// The LTC target: the audio thread's cost with LTC on both channels, per sample, on top
/// of the same configuration without it (medians over all blocks; instructions from callgrind's
/// blocks without a frame start).
fn ltc_target(
    timings: &[Timing],
    counts: &[(Config, Class, f64, Counted)],
    targets: &mut Vec<Target>,
    headline: &mut Vec<String>,
) {
    let config = |block, ltc| Config { block, output: true, targets: 1, ltc };
    let p50 = |c: Config| timings.iter().find(|t| t.config == c).and_then(|t| t.all).map(|s| s.p50);
    let ins = |c: Config| counts.iter().find(|(k, class, _, _)| *k == c && *class == Class::NoFrame).map(|x| x.2);
    let mut cells = Vec::new();
    let mut worst = 0.0f64;
    for block in BLOCKS {
        let (Some(plain), Some(ltc)) = (p50(config(block, false)), p50(config(block, true))) else { continue };
        let per_sample = (ltc - plain) / f64::from(block);
        worst = worst.max(per_sample);
        let instructions = match (ins(config(block, false)), ins(config(block, true))) {
            (Some(a), Some(b)) => format!(", +{:.1} instructions per sample", (b - a) / f64::from(block)),
            _ => String::new(),
        };
        cells.push(format!(
            "{block} samples: median {} → {} ns, +{per_sample:.2} ns per sample{instructions}",
            num(plain),
            num(ltc)
        ));
    }
    if cells.is_empty() {
        return;
    }
    headline.push(format!("LTC on both channels: at most +{worst:.2} ns per sample on the audio thread"));
    targets.push(Target {
        target: "LTC: under 5 ns per sample on top of today, zero allocations".into(),
        result: format!("{} (allocations: see the allocation row, which runs with LTC on)", cells.join("; ")),
        met: Some(worst < 5.0),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrind_totals() {
        let text =
            "version: 1\ncmd: bench\nevents: Ir\nsummary: 1234\n\nfl=(1) x.rs\nfn=(1) f\n3 1234\n\ntotals: 1234\n";
        assert_eq!(callgrind_total(text), Some(1234));
        assert_eq!(callgrind_total("events: Ir\ntotals: 99\n"), Some(99));
        assert_eq!(callgrind_total("events: Ir\n"), None);
    }

    #[test]
    fn classes_split_blocks_by_frames() {
        assert!(Class::NoFrame.matches(0) && !Class::NoFrame.matches(1));
        assert!(Class::Frames.matches(3) && !Class::Frames.matches(0));
        assert_eq!(Class::parse("none").ok(), Some(Class::NoFrame));
        assert!(Class::parse("all").is_err());
        let c = Config { block: 512, output: false, targets: 8, ltc: false };
        assert_eq!(Config::parse(&c.args()).ok(), Some(c));
    }
}
