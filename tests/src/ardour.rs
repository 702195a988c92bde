//! Headless Ardour as a test host: `ardour7-lua` with the "None (Dummy)" audio backend, which runs
//! in real time without a sound card, drives the plugin's VST3 through `tests/ardour/session.lua`.
//!
//! Each run is isolated: a fresh folder under the system temp dir holds its own `HOME` (Ardour's
//! plugin cache and settings), a copy of the bundle, the plugin's config file (its only target is
//! the test's loopback [`Receiver`], its cue input a free loopback port, its Art-Net target if any
//! another loopback receiver) and the session.
//!
//! What headless Ardour needs, found by trying (Ardour 7.3, Debian 12):
//! - it never scans plugins itself: `ardour-vst3-scanner <bundle>` writes the cache entry it reads,
//!   which counts only if it is newer than the module by Ardour's whole-second comparison;
//! - `VST3_PATH` points it at the bundle's folder;
//! - creating the session must come before listing plugins, and fails if the folder exists;
//! - its Lua cannot flag a range as the loop, so the script edits the saved session file;
//! - a session closed with `close_session()` keeps its plugin instances running until the process
//!   exits, so creating and playing are two processes;
//! - it offers a VST3 plugin no `IRunLoop` in `initialize()`'s context (only a plugin window's
//!   frame has one) and runs no GUI event loop, so the plugin's `beginEdit`/`performEdit`/
//!   `endEdit` for a cue come from nice-plug's own `bg-worker` thread (seen in gdb); Ardour takes
//!   them from there, and its control for the parameter has the value as `performEdit` returns.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use osc_timecode_core::FrameRate;

use crate::bundle::{PLUGIN_CONFIG_ENV, bundles, workspace_root};
use crate::receiver::{Packet, Receiver};

/// How long one `ardour7-lua` phase may take before the test kills it and fails.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// After the play phase exits, how long to wait for the last packets in flight.
const LAST_PACKETS: Duration = Duration::from_millis(300);

/// Where Ardour's programs are.
#[derive(Debug, Clone)]
pub struct Ardour {
    /// The headless Lua session runner, `ardour7-lua` (or `ardour8-lua`).
    pub lua: PathBuf,
    /// `ardour-vst3-scanner`, next to Ardour's libraries.
    pub vst3_scanner: PathBuf,
    /// Ardour's library folder, for the scanner's `LD_LIBRARY_PATH`.
    pub lib_dir: PathBuf,
    /// Major version: Ardour reads Lua scripts from `$HOME/.config/ardour<major>/scripts`.
    pub major: u32,
}

impl Ardour {
    /// Ardour 8 or 7 as Debian installs them, if installed.
    pub fn find() -> Option<Self> {
        for major in [8, 7] {
            let lua = PathBuf::from(format!("/usr/bin/ardour{major}-lua"));
            let lib_dir = PathBuf::from(format!("/usr/lib/ardour{major}"));
            let vst3_scanner = lib_dir.join("ardour-vst3-scanner");
            if lua.is_file() && vst3_scanner.is_file() {
                return Some(Self { lua, vst3_scanner, lib_dir, major });
            }
        }
        None
    }

    /// [`Ardour::find`], or, when Ardour is missing, a panic with the install command: the
    /// Ardour tests are `#[ignore]`d, so a run that reaches this asked for them.
    #[track_caller]
    pub fn require() -> Self {
        match Self::find() {
            Some(found) => found,
            None => panic!(
                "Ardour (ardour7-lua) is not installed: this test needs it \
                 (apt-get install --no-install-recommends ardour; .ci/run does this)"
            ),
        }
    }
}

/// One session played in Ardour: what its script reported and what the plugin sent.
#[derive(Debug)]
pub struct Played {
    /// The script's `OSCTC <what> <values...>` lines in order: playhead positions in samples,
    /// MIDI events and the like (see `tests/ardour/session.lua`).
    pub lines: Vec<Line>,
    /// Every datagram the plugin sent during the play phase, in arrival order.
    pub packets: Vec<Packet>,
    /// The play phase's stdout and stderr, for failure messages.
    pub log: String,
    /// What the audio log after the plugin kept of its left channel (sessions made with
    /// [`Options::ltc_level_dbfs`]), every sample of [`Played::cycles`] in order.
    pub audio: Vec<f32>,
    /// Every datagram that reached the Art-Net target during the play phase (sessions made with
    /// [`Options::artnet`]), in arrival order.
    pub artnet: Vec<Packet>,
}

impl Played {
    /// The first value of the first report line `what` as a number (a sample position, say).
    pub fn number(&self, what: &str) -> i64 {
        let text = self.text(what, 0);
        text.parse().unwrap_or_else(|e| panic!("Ardour's {what:?} value {text:?} is not a number ({e})"))
    }

    /// The `i`-th value of the first report line `what`, as text.
    pub fn text(&self, what: &str, i: usize) -> &str {
        self.all(what)
            .first()
            .and_then(|v| v.get(i))
            .unwrap_or_else(|| panic!("Ardour did not report {what:?} value {i}:\n{}", self.log))
    }

    /// The values of every report line `what`, in order.
    pub fn all(&self, what: &str) -> Vec<&[String]> {
        self.lines.iter().filter(|(w, _)| w == what).map(|(_, v)| v.as_slice()).collect()
    }

    /// The process cycles the audio log kept ([`Played::audio`] is their samples), in order.
    pub fn cycles(&self) -> Vec<Cycle> {
        self.all("cycle")
            .into_iter()
            .map(|v| {
                let n = |i: usize| -> i64 {
                    v.get(i).and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("bad cycle line {v:?}"))
                };
                Cycle { sample: n(0), len: n(1), rolling: n(2) == 1 }
            })
            .collect()
    }

    /// What the script read of watched parameter `i` ([`Options::watch`]) through Ardour's
    /// control for it while rolling: (transport sample, value) at the roll's start and at each
    /// change, in order.
    pub fn param(&self, i: usize) -> Vec<(i64, f64)> {
        self.all("param")
            .into_iter()
            .filter(|v| v.first().is_some_and(|w| *w == i.to_string()))
            .map(|v| match v {
                [_, sample, value] => (
                    sample.parse().unwrap_or_else(|e| panic!("bad param line {v:?}: {e}")),
                    value.parse().unwrap_or_else(|e| panic!("bad param line {v:?}: {e}")),
                ),
                _ => panic!("bad param line {v:?}"),
            })
            .collect()
    }

    /// Watched parameter `i`'s value as Ardour's control had it after the stop.
    pub fn param_end(&self, i: usize) -> f64 {
        let line = self
            .all("param_end")
            .into_iter()
            .find(|v| v.first().is_some_and(|w| *w == i.to_string()))
            .unwrap_or_else(|| panic!("Ardour did not report parameter {i} after the stop:\n{}", self.log));
        line.get(1).and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("bad param_end line {line:?}"))
    }

    /// What the MIDI log after the plugin recorded (sessions made with [`Options::midi_log`]).
    pub fn midi(&self) -> Vec<MidiEvent> {
        self.all("midi")
            .into_iter()
            .map(|v| {
                let n = |i: usize| -> i64 {
                    v.get(i).and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("bad midi line {v:?}"))
                };
                let len = n(1).clamp(0, MIDI_LOG_BYTES as i64) as u8;
                let mut bytes = [0; MIDI_LOG_BYTES];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = n(2 + i) as u8;
                }
                MidiEvent { sample: n(0), status: bytes[0], data1: bytes[1], data2: bytes[2], size: n(1), len, bytes }
            })
            .collect()
    }
}

/// One report line of the script, `OSCTC <what> <values...>`: what, and the values.
pub type Line = (String, Vec<String>);

/// `line` as a report line, if it is one.
fn report_line(line: &str) -> Option<Line> {
    let mut words = line.split_whitespace();
    if words.next() != Some("OSCTC") {
        return None;
    }
    let what = words.next()?;
    Some((what.to_string(), words.map(str::to_string).collect()))
}

/// What [`Session::play_while`]'s closure has while Ardour plays.
#[derive(Debug)]
pub struct Playing<'a> {
    /// The loopback receiver the plugin sends to.
    pub rx: &'a Receiver,
    /// Where the plugin listens for cues.
    pub cue_addr: SocketAddr,
    /// The script's report lines as it prints them (from the thread that reads its stdout).
    lines: mpsc::Receiver<Line>,
}

impl Playing<'_> {
    /// Waits up to `timeout` for the script's next report line `what` whose values `accept`
    /// takes, passing over the lines before it ([`Played::lines`] has them all afterwards);
    /// `None` if none came in time or the script ended.
    pub fn wait_line(&self, what: &str, timeout: Duration, accept: impl Fn(&[String]) -> bool) -> Option<Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok((w, v)) if w == what && accept(&v) => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// A named cue mapping of kind `param` in the plugin's machine config (`[[plugin.cues.map]]`).
#[derive(Debug, Clone, Copy)]
pub struct ParamCue {
    /// The OSC address (`/show/stop`).
    pub address: &'static str,
    /// The parameter's ID (`output`, `macro1`).
    pub param: &'static str,
    /// The fixed normalized value 0–1 it sets.
    pub value: f64,
}

/// Bytes of each MIDI event the log keeps (`tests/ardour/midi_log.lua`): an MTC full frame is 10.
pub const MIDI_LOG_BYTES: usize = 10;

/// One MIDI event out of the plugin, as Ardour played it on the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MidiEvent {
    /// The transport position it played at, in samples.
    pub sample: i64,
    /// Status byte (0x90 note on channel 1, …).
    pub status: u8,
    /// First data byte (key, controller); 0 if the event has none.
    pub data1: u8,
    /// Second data byte (velocity, value); 0 if the event has none.
    pub data2: u8,
    /// The event's length in bytes as Ardour had it (may exceed [`MIDI_LOG_BYTES`]).
    pub size: i64,
    /// Bytes kept: `min(size, MIDI_LOG_BYTES)`.
    pub len: u8,
    /// The first `len` bytes (zeros after).
    pub bytes: [u8; MIDI_LOG_BYTES],
}

impl MidiEvent {
    /// The bytes kept, status first (all of them unless the event was longer than
    /// [`MIDI_LOG_BYTES`]).
    pub fn data(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// One process cycle (or part of one: Ardour splits a cycle at a loop wrap) as the audio log after
/// the plugin saw it (`tests/ardour/audio_log.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// Ardour's transport sample at the cycle's first sample (`Session:transport_sample()`), the
    /// position the plugin is given.
    pub sample: i64,
    /// Samples in the cycle.
    pub len: i64,
    /// The transport rolled (`Session:transport_rolling()`).
    pub rolling: bool,
}

/// How to set up a session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Put the MIDI log (`tests/ardour/midi_log.lua`) after the plugin.
    pub midi_log: bool,
    /// The plugin's `cues.quantise` setting (cues move to the next frame start).
    pub quantise: bool,
    /// The plugin's `[plugin.mtc] enabled` setting (MTC through its MIDI output).
    pub mtc: bool,
    /// LTC on: the plugin's `[plugin.ltc]` writes the left channel at this level (dBFS, silence
    /// when stopped), and the audio log (`tests/ardour/audio_log.lua`) after the plugin keeps it
    /// from the first rolling cycle on ([`Played::audio`]).
    pub ltc_level_dbfs: Option<f64>,
    /// An Art-Net target: the plugin's `[plugin.artnet]` sends to a loopback receiver of the
    /// session's, stream 0 ([`Played::artnet`]).
    pub artnet: bool,
    /// The session's timecode format (Ardour's project frame rate, which it reports to VST3
    /// plugins), as an Ardour `Timecode.TimecodeFormat` name (`"TC25"`, `"TC2997DF"`); `None`
    /// leaves Ardour's default (30 fps).
    pub project_rate: Option<&'static str>,
    /// The timecode format to switch the session to after the play phase stopped (it waits half
    /// a second after the switch, so the plugin sees it).
    pub project_rate_after: Option<&'static str>,
    /// The plugin's parameters (by name, "Cue Macro 1") the script watches while rolling,
    /// through Ardour's own control for each ([`Played::param`], [`Played::param_end`]).
    pub watch: &'static [&'static str],
    /// Named `param` cue mappings for the plugin's machine config.
    pub param_cues: &'static [ParamCue],
}

/// A session set up for one frame rate, ready to play.
#[derive(Debug)]
pub struct Session {
    /// The programs.
    ardour: Ardour,
    /// The run's folder (removed on drop).
    root: PathBuf,
    /// The loopback receiver the plugin sends to.
    rx: Receiver,
    /// The loopback receiver of its Art-Net ([`Options::artnet`]).
    art: Option<Receiver>,
    /// Where the plugin listens for cues.
    cue_addr: SocketAddr,
    /// How it was set up.
    options: Options,
}

impl Session {
    /// Copies the debug VST3 into a fresh folder, scans it, writes the plugin's config (target:
    /// a new loopback receiver) and creates the session with the plugin's "Frame Rate" at `rate`.
    pub fn create(ardour: &Ardour, rate: FrameRate, options: Options) -> Self {
        // One folder per session: tests at the same rate run in parallel.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!(
            "osc-timecode-ardour-{}-{n}-{}",
            std::process::id(),
            rate.name().replace('.', "_")
        ));
        let _ = std::fs::remove_dir_all(&root);
        let plugins = root.join("plugins");
        std::fs::create_dir_all(root.join("home")).expect("create the run's HOME");
        let vst3_so = &bundles().vst3_so;
        let vst3 = vst3_so.ancestors().nth(3).expect("the .vst3 bundle folder");
        let bundle = plugins.join(vst3.file_name().expect("bundle name"));
        copy_dir(vst3, &bundle);

        let rx = Receiver::bind();
        let art = options.artnet.then(Receiver::bind);
        let cue_addr = crate::cues::free_loopback_addr();
        let art_addr = art.as_ref().map(Receiver::addr);
        write_plugin_config(&root.join("config.toml"), rx.addr(), art_addr, cue_addr, options);
        let scripts = root.join(format!("home/.config/ardour{}/scripts", ardour.major));
        for (wanted, script) in
            [(options.midi_log, "midi_log.lua"), (options.ltc_level_dbfs.is_some(), "audio_log.lua")]
        {
            if wanted {
                std::fs::create_dir_all(&scripts).expect("create Ardour's scripts folder");
                std::fs::copy(
                    workspace_root().join("tests/ardour").join(script),
                    scripts.join(format!("osctc_{script}")),
                )
                .unwrap_or_else(|e| panic!("copy {script} to Ardour's scripts folder: {e}"));
            }
        }

        let session = Self { ardour: ardour.clone(), root, rx, art, cue_addr, options };
        let scan = command(&session.root, &session.ardour.vst3_scanner)
            .arg(&bundle)
            .env("LD_LIBRARY_PATH", &session.ardour.lib_dir)
            .output()
            .expect("run ardour-vst3-scanner");
        assert!(
            scan.status.success() && String::from_utf8_lossy(&scan.stdout).contains("Found Plugin: OSC Timecode"),
            "ardour-vst3-scanner did not find the plugin in {}:\n{}{}",
            bundle.display(),
            String::from_utf8_lossy(&scan.stdout),
            String::from_utf8_lossy(&scan.stderr)
        );
        let mut env = vec![
            ("OSCTC_RATE_INDEX", rate.index().to_string()),
            ("OSCTC_MIDI_LOG", u8::from(options.midi_log).to_string()),
            ("OSCTC_AUDIO_LOG", u8::from(options.ltc_level_dbfs.is_some()).to_string()),
        ];
        if let Some(format) = options.project_rate {
            env.push(("OSCTC_PROJECT_RATE", format.to_string()));
        }
        let (ok, log) = phase(&session.ardour, &session.root, "create", &env, None);
        assert!(ok && log.contains("OSCTC created"), "creating the Ardour session failed:\n{log}");
        // The create phase's plugin sent to the receivers too; only the play phase counts.
        let _ = session.rx.drain_now();
        let _ = session.art.as_ref().map(Receiver::drain_now);
        session
    }

    /// Loads the session and runs the script's play phase: locate to 01:00:00:00, roll for
    /// `roll_s` seconds, play the loop range `loops` times, stop.
    pub fn play(&self, roll_s: u32, loops: u32) -> Played {
        self.play_while(roll_s, loops, |_| Vec::new())
    }

    /// [`Session::play`], running `during` on this thread while Ardour plays: it gets the
    /// receiver (what it takes from it, it returns, to be put first in [`Played::packets`]), the
    /// plugin's cue address and the script's report lines as they come ([`Playing`]).
    pub fn play_while(&self, roll_s: u32, loops: u32, during: impl FnOnce(&Playing) -> Vec<Packet>) -> Played {
        let _ = self.rx.drain_now();
        let _ = self.art.as_ref().map(Receiver::drain_now);
        let audio_file = self.root.join("audio_log.f32");
        let mut env = vec![
            ("OSCTC_ROLL_S", roll_s.to_string()),
            ("OSCTC_LOOPS", loops.to_string()),
            ("OSCTC_AUDIO_FILE", audio_file.display().to_string()),
        ];
        if let Some(format) = self.options.project_rate_after {
            env.push(("OSCTC_PROJECT_RATE_AFTER", format.to_string()));
        }
        if !self.options.watch.is_empty() {
            env.push(("OSCTC_WATCH", self.options.watch.join(";")));
        }
        let (lines_tx, lines) = mpsc::channel();
        let playing = Playing { rx: &self.rx, cue_addr: self.cue_addr, lines };
        let (taken, (ok, log)) = std::thread::scope(|scope| {
            let (ardour, root, env) = (&self.ardour, &self.root, &env);
            let ardour = scope.spawn(move || phase(ardour, root, "play", env, Some(lines_tx)));
            let taken = during(&playing);
            (taken, ardour.join().expect("the Ardour phase thread"))
        });
        assert!(ok, "the Ardour play phase failed:\n{log}");
        std::thread::sleep(LAST_PACKETS);
        let mut packets = taken;
        packets.extend(self.rx.drain_now());
        let artnet = self.art.as_ref().map(Receiver::drain_now).unwrap_or_default();
        let audio = match self.options.ltc_level_dbfs {
            Some(_) => std::fs::read(&audio_file)
                .unwrap_or_else(|e| panic!("the audio log's samples {}: {e}\n{log}", audio_file.display()))
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            None => Vec::new(),
        };
        let lines = log.lines().filter_map(report_line).collect();
        Played { lines, packets, log, audio, artnet }
    }
}

/// A command with the run's environment: isolated `HOME`, the bundle folder, the config.
fn command(root: &Path, program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", root.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("XDG_DATA_HOME")
        .env("VST3_PATH", root.join("plugins"))
        .env(PLUGIN_CONFIG_ENV, root.join("config.toml"))
        .env("OSCTC_SESSION_DIR", root.join("session"))
        .current_dir(root)
        .stdin(Stdio::null());
    cmd
}

/// Runs one phase of the script to completion (or [`PHASE_TIMEOUT`]): success and the
/// combined output. Each report line also goes to `live`, if given, as the script prints it.
fn phase(
    ardour: &Ardour,
    root: &Path,
    phase: &str,
    env: &[(&str, String)],
    live: Option<mpsc::Sender<Line>>,
) -> (bool, String) {
    let script = workspace_root().join("tests/ardour/session.lua");
    let mut cmd = command(root, &ardour.lua);
    cmd.arg(&script).env("OSCTC_PHASE", phase).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {}: {e}", ardour.lua.display()));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let mut reader = BufReader::new(&mut stdout);
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            let text = String::from_utf8_lossy(&line);
            if let (Some(live), Some(report)) = (&live, report_line(&text)) {
                // The test may have stopped listening: the line is in the log all the same.
                let _ = live.send(report);
            }
            s.push_str(&text);
            line.clear();
        }
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for ardour-lua") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = format!(
        "--- ardour-lua {phase}: {} ---\n{}{}",
        status.map_or_else(|| format!("killed after {PHASE_TIMEOUT:?}"), |s| s.to_string()),
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default()
    );
    // A script error exits 1 and prints "Error: ...".
    let ok = status.is_some_and(|s| s.success()) && !log.contains("\nError: ");
    (ok, log)
}

impl Drop for Session {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.root);
        } else {
            eprintln!("the Ardour run's files are kept in {}", self.root.display());
        }
    }
}

/// The plugin's machine config for the run: one loopback target, keep-alive every 200 ms (so
/// parked positions show), the cue input on a free loopback port of its own, MTC as
/// [`Options::mtc`] says, LTC as [`Options::ltc_level_dbfs`] says, Art-Net to `art`, if any, and
/// the named mappings of [`Options::param_cues`].
fn write_plugin_config(path: &Path, target: SocketAddr, art: Option<SocketAddr>, cues: SocketAddr, options: Options) {
    let loopback = target.ip().is_loopback() && cues.ip().is_loopback() && art.is_none_or(|a| a.ip().is_loopback());
    assert!(loopback, "tests use loopback only");
    let Options { quantise, mtc, ltc_level_dbfs, param_cues, .. } = options;
    let mut text = format!(
        "[plugin]\ntargets = [\"{target}\"]\nkeepalive_ms = 200\noutput_latency_ms = 0.0\n\n\
         [plugin.cues]\nlisten = \"{cues}\"\nquantise = {quantise}\n\n[plugin.mtc]\nenabled = {mtc}\n"
    );
    if let Some(level) = ltc_level_dbfs {
        text += &format!("\n[plugin.ltc]\nchannel = \"left\"\nlevel_dbfs = {level:?}\nstopped = \"silence\"\n");
    }
    if let Some(art) = art {
        text += &format!("\n[plugin.artnet]\ntargets = [\"{art}\"]\nstream_id = 0\n");
    }
    for ParamCue { address, param, value } in param_cues {
        text += &format!(
            "\n[[plugin.cues.map]]\naddress = \"{address}\"\nkind = \"param\"\nparam = \"{param}\"\nvalue = {value:?}\n"
        );
    }
    std::fs::write(path, text).expect("write the plugin config");
}

/// `cp -r`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap_or_else(|e| panic!("copy to {}: {e}", target.display()));
            // Ardour trusts a cache entry only if it is newer than the module, comparing whole
            // seconds: a module copied in the same second as the scan counts as changed.
            let past = std::time::SystemTime::now() - Duration::from_secs(60);
            std::fs::File::options()
                .write(true)
                .open(&target)
                .and_then(|f| f.set_modified(past))
                .unwrap_or_else(|e| panic!("set the time of {}: {e}", target.display()));
        }
    }
}
