//! The benchmarks (issue 6): how steady, how fast and how light the plugin and the client are,
//! against baselines measured in the same run, written to `BENCHMARKS.md`.
//!
//! Run through `cargo xtask bench` (`--quick` for a short run), which builds the release bundles,
//! the debug bundles (for the allocation proof), the release client and this binary, then runs
//! it. Nothing here asserts a time: the numbers are reported, with the targets they meet or miss.
//!
//! Sections, one module each:
//! 1. [`audio`]: `process()` time and instructions, allocations;
//! 2. and 3. [`emission`]: `/sync/timecode` arrival and timetag error, against a naive per-block
//!    sender and a Python sleep loop;
//! 4. [`drift`]: `serve` against the clock over minutes, beside the sleep loop;
//! 5. [`lock`]: `listen` behind a jittery relay;
//! 6. [`cue`]: cue throughput and latency;
//! 7. [`memory`]: resident memory of the plugin, `listen` and `serve`;
//! 8. [`load`]: the first frame after a transport start, and timecode under a cue-port flood;
//! 9. [`artnet`]: Art-Net ArtTimeCode departure against the frame's heard time.
//!
//! The harness's audio threads run at real-time priority ([`priority`]), as a DAW's do.
//!
//! The binary also runs child modes of its own (`--child callgrind|alloc|memory`), for the
//! measurements that need a process to themselves (under Valgrind, on the debug bundle, or
//! from a clean start).
//!
//! Network safety: every socket binds a loopback address, and every target is loopback.

pub mod artnet;
pub mod audio;
pub mod cue;
pub mod drift;
pub mod emission;
pub mod load;
pub mod lock;
pub mod memory;
pub mod priority;
pub mod report;
pub mod stage;
pub mod stats;
pub mod sync;
pub mod valgrind;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use osc_timecode_core::FrameRate;
use osc_timecode_core::timecode::frame_at_sample;

use crate::bundle::{BUNDLE_DIR_ENV, workspace_root};
use crate::clap::{ClapPlugin, Param};
use crate::cues::{cues_settings, free_loopback_addr, set_cues};

/// A section's entry point.
type SectionFn = fn(&Ctx) -> Section;

/// Everything the sections share.
#[derive(Debug)]
pub struct Ctx {
    /// A short run (seconds instead of minutes; fewer samples).
    pub quick: bool,
    /// This binary, for child modes.
    pub exe: PathBuf,
    /// The release bundles (`target/bundled`).
    pub bundle_dir: PathBuf,
    /// The debug bundles, for the allocation proof.
    pub debug_bundle_dir: Option<PathBuf>,
    /// The release `osc-timecode` binary.
    pub client: PathBuf,
    /// The Python baseline, or why it cannot run.
    pub python: Result<Python, String>,
    /// A directory for scratch files (callgrind output).
    pub scratch: PathBuf,
}

/// How to run the Python baseline.
#[derive(Debug, Clone)]
pub struct Python {
    /// `python3`.
    pub interpreter: PathBuf,
    /// `tests/bench/python_master.py`.
    pub script: PathBuf,
    /// `Python 3.x.y, python-osc 1.x.y`.
    pub version: String,
}

/// One section of the report.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The heading.
    pub title: String,
    /// Markdown: the method and the tables.
    pub body: String,
    /// The targets this section checks.
    pub targets: Vec<Target>,
    /// One-line results for the summary.
    pub headline: Vec<String>,
    /// Things the numbers show about the plugin or the client that look like defects (with
    /// the numbers and where in the code), for the report's findings.
    pub findings: Vec<String>,
}

/// A target and whether it was met.
#[derive(Debug, Clone)]
pub struct Target {
    /// The target as the issue states it.
    pub target: String,
    /// The numbers.
    pub result: String,
    /// Met, missed, or met in part (`None`, the result says which part).
    pub met: Option<bool>,
}

/// How a bench plugin instance is set up before activation.
#[derive(Debug, Clone)]
pub struct PluginSetup {
    /// Timecode targets (loopback).
    pub targets: Vec<SocketAddr>,
    /// Frame rate.
    pub rate: FrameRate,
    /// The Output parameter.
    pub output: bool,
    /// Where the cue receiver listens (a free loopback port, so instances never fight over
    /// the default 5005).
    pub cues: SocketAddr,
}

/// Loads the plugin (the bundles of `$OSC_TIMECODE_BUNDLE_DIR`) and sets it up: targets, no
/// keep-alive, cue port, rate and output. Not activated.
pub fn load_plugin(setup: &PluginSetup) -> ClapPlugin {
    for t in &setup.targets {
        assert!(t.ip().is_loopback(), "the bench only sends to loopback, not {t}");
    }
    let mut plugin = ClapPlugin::load();
    let targets: Vec<String> = setup.targets.iter().map(ToString::to_string).collect();
    let cues = cues_settings(setup.cues, serde_json::json!({}));
    plugin.update_settings(|s| {
        s.insert("targets".into(), serde_json::json!(targets));
        s.insert("keepalive_ms".into(), serde_json::json!(0));
        set_cues(s, cues);
    });
    plugin.set_param(Param::Rate, setup.rate.index() as f64);
    plugin.set_param(Param::Output, if setup.output { 1.0 } else { 0.0 });
    plugin
}

/// A 25 fps instance, output on, sending to a loopback sink nobody reads, its cue input on a
/// free loopback port: the sink (keep it alive), the cue address and the plugin, not activated.
pub fn cue_plugin() -> anyhow::Result<(std::net::UdpSocket, SocketAddr, ClapPlugin)> {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0")?;
    let cues = free_loopback_addr();
    let plugin =
        load_plugin(&PluginSetup { targets: vec![sink.local_addr()?], rate: FrameRate::FPS_25, output: true, cues });
    Ok((sink, cues, plugin))
}

/// How many timecode frames start in the block `[start, start + len)` (timeline samples).
pub fn frames_starting_in(start: i64, len: u32, sample_rate: u32, rate: FrameRate) -> i64 {
    if len == 0 {
        return 0;
    }
    frame_at_sample(start + i64::from(len) - 1, sample_rate, rate) - frame_at_sample(start - 1, sample_rate, rate)
}

/// The duration of `samples` samples (≥ 0) at `sample_rate`, to the nanosecond (floored).
pub fn samples_ns(samples: i64, sample_rate: u32) -> Duration {
    let ns = i128::from(samples.max(0)) * 1_000_000_000 / i128::from(sample_rate.max(1));
    Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
}

/// `to − from` in seconds, signed.
pub fn signed_secs_instant(from: Instant, to: Instant) -> f64 {
    if to >= from { (to - from).as_secs_f64() } else { -(from - to).as_secs_f64() }
}

/// `to − from` in seconds, signed, on the wall clock.
pub use crate::cues::seconds_between as signed_secs_wall;

/// Sleeps until `at` (returns at once if it has passed).
pub fn sleep_until(at: Instant) {
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// A child process this bench started, killed (by its own handle) and reaped when dropped.
#[derive(Debug)]
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Command-line options of the bench.
#[derive(Debug, Clone, Default)]
struct Options {
    /// `--quick`.
    quick: bool,
    /// `--out FILE` (default: `BENCHMARKS.md` at the workspace root).
    out: Option<PathBuf>,
    /// `--only 1,2,4`: sections to run (1 audio, 2 emission, 4 drift, 5 lock, 6 cue, 7 memory,
    /// 8 load, 9 Art-Net, 10 stage outputs, 11 clock sync).
    only: Option<Vec<u32>>,
    /// `--client PATH`.
    client: Option<PathBuf>,
    /// `--debug-bundles DIR`.
    debug_bundles: Option<PathBuf>,
    /// `--command TEXT`: how the run was started, for the report.
    command: Option<String>,
    /// `--child KIND ARGS...`.
    child: Option<Vec<String>>,
}

const USAGE: &str = "\
usage: bench [--quick] [--out FILE] [--only 1,2,4,5,6,7,8,9,10,11] [--client PATH] [--debug-bundles DIR] [--command TEXT]

Runs the benchmarks and writes BENCHMARKS.md. Normally started by `cargo xtask bench`, which builds
what it needs and sets OSC_TIMECODE_BUNDLE_DIR to the release bundles.";

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--quick" => o.quick = true,
            "--out" => o.out = Some(value("--out")?.into()),
            "--client" => o.client = Some(value("--client")?.into()),
            "--debug-bundles" => o.debug_bundles = Some(value("--debug-bundles")?.into()),
            "--command" => o.command = Some(value("--command")?),
            "--only" => {
                let list = value("--only")?;
                o.only = Some(
                    list.split(',')
                        .map(|s| s.trim().parse().context("--only takes section numbers"))
                        .collect::<Result<_, _>>()?,
                );
            }
            "--child" => {
                o.child = Some(it.by_ref().cloned().collect());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(o)
}

/// Finds python3 with python-osc, or says why not.
fn find_python() -> Result<Python, String> {
    let script = workspace_root().join("tests").join("bench").join("python_master.py");
    if !script.is_file() {
        return Err(format!("{} is missing", script.display()));
    }
    let out = Command::new("python3")
        .args(["-c", "import sys, importlib.metadata as m; print(sys.version.split()[0], m.version('python-osc'))"])
        .output()
        .map_err(|e| format!("python3 not found ({e})"))?;
    if !out.status.success() {
        return Err("python-osc is not installed (pip install python-osc==1.10.2)".into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let version = format!("Python {}, python-osc {}", words.next().unwrap_or("?"), words.next().unwrap_or("?"));
    Ok(Python { interpreter: "python3".into(), script, version })
}

/// The bench's entry point (`tests/src/bin/bench.rs`).
pub fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = parse_options(&args)?;
    if std::env::var_os(BUNDLE_DIR_ENV).is_none_or(|d| d.is_empty()) {
        bail!(
            "{BUNDLE_DIR_ENV} is not set: run `cargo xtask bench`, or set it to a directory holding the RELEASE \
             bundles (target/bundled after `cargo xtask bundle osc-timecode-plugin --release`)"
        );
    }
    if let Some(child) = &options.child {
        return run_child(child, options.quick);
    }
    let started = Instant::now();
    let started_wall = SystemTime::now();
    let bundle_dir = PathBuf::from(std::env::var_os(BUNDLE_DIR_ENV).unwrap_or_default());
    let scratch = std::env::temp_dir().join(format!("osc-timecode-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("could not create {}", scratch.display()))?;
    let client = options.client.clone().unwrap_or_else(|| workspace_root().join("target/release/osc-timecode"));
    if !client.is_file() {
        bail!("no client binary at {} (cargo build --release -p osc-timecode-client)", client.display());
    }
    let ctx = Ctx {
        quick: options.quick,
        exe: std::env::current_exe().context("could not find this binary")?,
        bundle_dir,
        debug_bundle_dir: options.debug_bundles.clone(),
        client,
        python: find_python(),
        scratch: scratch.clone(),
    };
    // Loads the bundles once (and points the plugin's config file at an empty one).
    let _ = crate::bundle::bundles();
    // The harness's audio threads run at real-time priority, as a DAW's callback does.
    audio::install_probe();
    priority::enable();
    let machine = report::Machine::read(&ctx);
    let wanted = |n: u32| options.only.as_ref().is_none_or(|o| o.contains(&n));
    let mut sections = Vec::new();
    let sections_to_run: [(u32, SectionFn); 10] = [
        (1, audio::run),
        (2, emission::run),
        (4, drift::run),
        (5, lock::run),
        (6, cue::run),
        (7, memory::run),
        (8, load::run),
        (9, artnet::run),
        (10, stage::run),
        (11, sync::run),
    ];
    for (n, section) in sections_to_run {
        if wanted(n) {
            let t = Instant::now();
            let mut s = section(&ctx);
            s.body.push_str(&format!("*Section run time: {:.0} s.*\n\n", t.elapsed().as_secs_f64()));
            sections.push(s);
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
    let command = options.command.clone().unwrap_or_else(|| format!("bench {}", args.join(" ")));
    let text = report::render(&report::Run {
        machine,
        command,
        quick: ctx.quick,
        started: started_wall,
        elapsed: started.elapsed(),
        python: ctx.python.clone(),
        priority: priority::summary(),
        sections,
    });
    let out = options.out.unwrap_or_else(|| workspace_root().join("BENCHMARKS.md"));
    std::fs::write(&out, &text).with_context(|| format!("could not write {}", out.display()))?;
    eprintln!("[bench] wrote {} in {:.0} s", out.display(), started.elapsed().as_secs_f64());
    Ok(())
}

fn run_child(args: &[String], quick: bool) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("callgrind") => audio::callgrind_child(&args[1..]),
        Some("alloc") => audio::alloc_child(quick || args.iter().any(|a| a == "--quick")),
        Some("memory") => memory::plugin_child(),
        other => bail!("unknown child mode {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_starting_in_a_block() {
        let sr = 48_000;
        let fps25 = FrameRate::FPS_25;
        // 25 fps at 48 kHz: frames start every 1920 samples.
        assert_eq!(frames_starting_in(0, 64, sr, fps25), 1);
        assert_eq!(frames_starting_in(64, 64, sr, fps25), 0);
        assert_eq!(frames_starting_in(1856, 64, sr, fps25), 0);
        assert_eq!(frames_starting_in(1857, 64, sr, fps25), 1);
        assert_eq!(frames_starting_in(0, 4096, sr, fps25), 3);
        assert_eq!(frames_starting_in(4096, 4096, sr, fps25), 2);
        assert_eq!(frames_starting_in(0, 0, sr, fps25), 0);
        // Summed over consecutive blocks, every frame is counted once.
        let total: i64 = (0..1000).map(|b| frames_starting_in(b * 1024, 1024, sr, FrameRate::FPS_29_97_NDF)).sum();
        assert_eq!(total, frame_at_sample(1000 * 1024 - 1, sr, FrameRate::FPS_29_97_NDF) + 1);
        // Pre-roll.
        assert_eq!(frames_starting_in(-1920, 1920, sr, fps25), 1);
    }

    #[test]
    fn sample_durations_and_signed_differences() {
        assert_eq!(samples_ns(48_000, 48_000), Duration::from_secs(1));
        assert_eq!(samples_ns(1, 48_000), Duration::from_nanos(20_833));
        assert_eq!(samples_ns(-5, 48_000), Duration::ZERO);
        let t = Instant::now();
        let later = t + Duration::from_millis(3);
        assert!((signed_secs_instant(t, later) - 0.003).abs() < 1e-12);
        assert!((signed_secs_instant(later, t) + 0.003).abs() < 1e-12);
        let w = SystemTime::UNIX_EPOCH + Duration::from_secs(100);
        assert!((signed_secs_wall(w + Duration::from_millis(1), w) + 0.001).abs() < 1e-12);
    }

    #[test]
    fn parses_options() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let o = parse_options(&args("--quick --only 1,4 --out x.md")).expect("valid");
        assert!(o.quick);
        assert_eq!(o.only, Some(vec![1, 4]));
        assert_eq!(o.out, Some(PathBuf::from("x.md")));
        let o = parse_options(&args("--child callgrind 64 on 1 some")).expect("valid");
        assert_eq!(o.child, Some(args("callgrind 64 on 1 some")));
        assert!(parse_options(&args("--bogus")).is_err());
        assert!(parse_options(&args("--only x")).is_err());
    }
}
