//! Shared set-up for the host tests: a plugin instance sending to its own loopback receiver, a
//! transport, and the checks every playback test makes; for the cue tests, the same plugin
//! listening for cues on a loopback port of its own ([`CueRig`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use osc_timecode_core::FrameRate;
use osc_timecode_tests::child::{Side, run_alone_wrapped};
use osc_timecode_tests::clap::{ClapPlugin, Midi, MidiAt, Param, RunReport};
use osc_timecode_tests::cues::{Ack, CueId, CueSender, CueValue, Status, cues_settings, free_loopback_addr, set_cues};
use osc_timecode_tests::expect::{Expected, Timing, assert_stream, assert_timetags, expected};
use osc_timecode_tests::receiver::{Packet, Receiver, messages};
use osc_timecode_tests::transport::Transport;

/// How long to wait for the expected packets (they are due within a block of being processed;
/// this only bounds a failing test).
pub const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(5);
/// After the expected packets, how long to listen for unexpected extra ones.
pub const EXTRA_WINDOW: Duration = Duration::from_millis(400);
/// How far a timetag may be from the packet's arrival (latency 0): generous for loaded machines.
pub const TIMETAG_SLACK: Duration = Duration::from_millis(250);

/// A plugin sending to a receiver of its own, with a transport.
pub struct Rig {
    /// The plugin.
    pub plugin: ClapPlugin,
    /// Its only target.
    pub rx: Receiver,
    /// The host transport.
    pub transport: Transport,
    /// Sample rate, frame rate, offset.
    pub timing: Timing,
}

impl Rig {
    /// Loads the plugin, points it at a fresh receiver with keep-alive off, sets the frame rate
    /// and activates at `sample_rate` with blocks up to `max_block`. The transport is stopped at 0.
    pub fn new(sample_rate: u32, rate: FrameRate, max_block: u32) -> Self {
        Self::with(sample_rate, rate, max_block, 0, |_| {})
    }

    /// Like [`Rig::new`] with a keep-alive interval and a hook to change more before activation.
    pub fn with(
        sample_rate: u32,
        rate: FrameRate,
        max_block: u32,
        keepalive_ms: u32,
        before_activate: impl FnOnce(&mut ClapPlugin),
    ) -> Self {
        let rx = Receiver::bind();
        let mut plugin = ClapPlugin::load();
        plugin.send_to(rx.addr(), keepalive_ms);
        plugin.set_param(Param::Rate, rate.index() as f64);
        before_activate(&mut plugin);
        plugin.activate(sample_rate, max_block);
        Self { plugin, rx, transport: Transport::new(sample_rate), timing: Timing::new(sample_rate, rate) }
    }

    /// Plays `seconds` of audio (rounded to samples) from the current position in blocks of
    /// `block`, checking the audio passes through.
    pub fn play_seconds(&mut self, seconds: f64, block: u32) -> RunReport {
        let samples = (seconds * f64::from(self.timing.sample_rate)).round() as u64;
        self.transport.play();
        self.run(samples, block)
    }

    /// Processes `samples` in blocks of `block` with the transport as it is.
    pub fn run(&mut self, samples: u64, block: u32) -> RunReport {
        let report = self.plugin.run(&mut self.transport, samples, block);
        assert_eq!(report.passthrough_mismatches, 0, "the plugin must pass audio through untouched");
        report
    }

    /// What the plugin must have sent for the transport's history so far.
    pub fn expected(&self) -> Vec<Expected> {
        expected(self.transport.history(), self.timing)
    }

    /// Waits for `want` packets, then listens a little longer for extras.
    pub fn receive(&self, want: usize) -> Vec<Packet> {
        receive(&self.rx, want)
    }

    /// Receives and checks the whole stream for the history so far; returns the packets.
    pub fn check(&self, what: &str) -> Vec<Packet> {
        let want = self.expected();
        let packets = self.receive(want.len());
        assert_stream(&messages(&packets), &want, self.timing.rate, what);
        assert_timetags(&packets, TIMETAG_SLACK, what);
        packets
    }
}

/// Waits for `want` packets on `rx`, then listens [`EXTRA_WINDOW`] longer for extras.
pub fn receive(rx: &Receiver, want: usize) -> Vec<Packet> {
    let mut packets = rx.collect(want, ARRIVAL_TIMEOUT);
    packets.extend(rx.collect_for(EXTRA_WINDOW));
    packets
}

/// Every supported rate with a label for test names.
pub fn rate(name: &str) -> FrameRate {
    name.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// A [`Rig`] whose plugin also listens for cues, on a loopback port of its own (so tests run in
/// parallel), with a sender the plugin has answered once: the plugin binds on its own thread
/// after `activate()`, and [`CueSender::wait_ready`] waits for that.
pub struct CueRig {
    /// The plugin, its timecode receiver and its transport (stopped at 0).
    pub rig: Rig,
    /// Where the plugin listens (`cues.listen`).
    pub listen: SocketAddr,
    /// A sender on `127.0.0.1` (`::1` for an IPv6 `listen`), with the settings' token.
    pub sender: CueSender,
    /// Samples per block in [`CueRig::blocks`] and [`CueRig::fire`].
    pub block: u32,
}

impl CueRig {
    /// 25 fps, the plugin's default `cues` settings except `listen` (a free loopback port) and
    /// the entries of `cues` (a JSON object, see [`cues_settings`]); activated at `sample_rate`
    /// with blocks of `block`.
    pub fn new(sample_rate: u32, block: u32, cues: serde_json::Value) -> Self {
        Self::with(sample_rate, rate("25"), block, free_loopback_addr(), cues, |_| {}, None)
    }

    /// Like [`CueRig::new`], with the frame rate, the listening address, more settings to change
    /// before activation (`settings`), and the loopback address to ask `/status` from while
    /// waiting for the plugin (`ready_from`; default: the sender's).
    pub fn with(
        sample_rate: u32,
        rate: FrameRate,
        block: u32,
        listen: SocketAddr,
        cues: serde_json::Value,
        settings: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
        ready_from: Option<IpAddr>,
    ) -> Self {
        let cues = cues_settings(listen, cues);
        let token = cues.get("token").and_then(serde_json::Value::as_str).map(str::to_owned);
        let rig = Rig::with(sample_rate, rate, block, 0, |p| {
            p.update_settings(|s| {
                set_cues(s, cues);
                settings(s);
            });
        });
        let sender = CueSender::new(listen).with_token(token.as_deref());
        match ready_from {
            Some(ip) => CueSender::from_ip(ip, listen).with_token(token.as_deref()).wait_ready(),
            None => sender.wait_ready(),
        };
        Self { rig, listen, sender, block }
    }

    /// Processes `n` blocks of [`CueRig::block`] samples with the transport as it is.
    pub fn blocks(&mut self, n: u32) -> RunReport {
        self.rig.run(u64::from(n) * u64::from(self.block), self.block)
    }

    /// Sends an immediate cue, waits for its `/ack` (sent after the cue is in the audio thread's
    /// queue), then processes one block: returns the ack and that block's MIDI.
    pub fn fire(&mut self, address: &str, value: Option<CueValue>, id: Option<CueId>) -> (Ack, Vec<MidiAt>) {
        let ack = self.sender.cue_acked(address, value, id);
        let report = self.blocks(1);
        (ack, report.midi())
    }

    /// Like [`CueRig::fire`], and the ack must say `ok`.
    pub fn fire_ok(&mut self, address: &str, value: Option<CueValue>, id: Option<CueId>) -> Vec<MidiAt> {
        let (ack, midi) = self.fire(address, value, id);
        assert_eq!(ack.status, "ok", "{address} {value:?} {id:?}: {ack:?}");
        assert_eq!(ack.address, address, "the ack echoes the address as sent");
        midi
    }

    /// The plugin's counters, checked for consistency (every counter there, and `received` =
    /// `applied` + `queued` + dropped).
    pub fn status(&self) -> Status {
        let status = self.sender.status();
        status.check().unwrap_or_else(|e| panic!("{e}"));
        status
    }
}

/// The MIDI messages alone, without where they were.
pub fn midi_only(events: &[MidiAt]) -> Vec<Midi> {
    events.iter().map(|e| e.midi).collect()
}

/// `midi` in a canonical order, to compare events whose order the spec leaves open (the
/// messages of one bundle, the matches of one pattern).
pub fn sorted(mut midi: Vec<Midi>) -> Vec<Midi> {
    midi.sort_by_key(|m| format!("{m:?}"));
    midi
}

/// `/status` once the counters stop moving (the kernel may still hold flood packets when the
/// flood ends): polled until `received` is the same twice in a row 100 ms apart.
pub fn settled_status(sender: &CueSender) -> Status {
    let mut last = sender.status();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let now = sender.status();
        // Each query is received (and answered) too: compare what came besides them.
        if now.cues_received() == last.cues_received() && now.check().is_ok() {
            return now;
        }
        last = now;
    }
    panic!("the /status counters never settled after the flood: {last}");
}

// ---------------------------------------------------------------------------------------------
// Tests that run alone in a child process, with a plugin log of their own.

/// Bounds waits for log lines and ports; never reached by a test that passes.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Runs the test `function` of the module `module_path` (its `module_path!()`) alone in a child
/// process ([`osc_timecode_tests::child`]) with a plugin log file (`NICE_LOG`, which nice-plug
/// reads once when the library loads), `HOME` and `XDG_CONFIG_HOME` of its own (fresh, empty).
/// In the parent: prints the child's `measured:` lines and returns `false` (the child passed);
/// in the child: returns `true`.
pub fn in_child(module_path: &str, function: &str, timeout: Duration) -> bool {
    in_child_wrapped(module_path, function, timeout, &[])
}

/// The programs and arguments that start a child in a network namespace of its own
/// ([`in_child_without_network`]), the first that works here: `unshare` (util-linux) makes it (as
/// root; else in a user namespace of its own, where unprivileged ones are allowed), `ip`
/// (iproute2) brings its loopback up, then the test binary runs.
const NETNS: [&[&str]; 2] = [
    &["unshare", "--net", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"],
    &["unshare", "--net", "--map-root-user", "--", "sh", "-c", "ip link set lo up && exec \"$@\"", "sh"],
];

/// Like [`in_child`], the child in a network namespace of its own, with loopback up and nothing
/// else: an address beyond loopback (the test's 198.51.100.0/24) has no route there, so sending
/// to it fails at once (`ENETUNREACH`) and nothing leaves the machine. Needs `unshare`, `ip` and
/// root or unprivileged user namespaces; the test fails saying so when they are missing.
pub fn in_child_without_network(module_path: &str, function: &str, timeout: Duration) -> bool {
    if std::env::var_os(osc_timecode_tests::child::CHILD_ENV).is_some() {
        return true;
    }
    let mut refusals = Vec::new();
    for wrapper in NETNS {
        let probe = std::process::Command::new(wrapper[0])
            .args(&wrapper[1..])
            .arg("true")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output();
        match probe {
            Ok(o) if o.status.success() => return in_child_wrapped(module_path, function, timeout, wrapper),
            Ok(o) => refusals.push(String::from_utf8_lossy(&o.stderr).trim().to_owned()),
            Err(e) => refusals.push(e.to_string()),
        }
    }
    panic!(
        "this test runs in a network namespace of its own and could not make one ({}): it needs unshare \
         (util-linux), ip (apt-get install iproute2) and root or unprivileged user namespaces; .ci/run has them",
        refusals.join("; ")
    );
}

/// [`in_child`] with the child started through `wrapper` (see
/// [`osc_timecode_tests::child::run_alone_wrapped`]).
pub fn in_child_wrapped(module_path: &str, function: &str, timeout: Duration, wrapper: &[&str]) -> bool {
    if std::env::var_os(osc_timecode_tests::child::CHILD_ENV).is_some() {
        return true;
    }
    let dir = std::env::temp_dir().join(format!("osc-timecode-child-{}-{function}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (home, config) = (dir.join("home"), dir.join("xdg-config"));
    for d in [&home, &config] {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("could not create {}: {e}", d.display()));
    }
    let log = dir.join("plugin.log");
    let env = [("NICE_LOG", log.as_os_str()), ("HOME", home.as_os_str()), ("XDG_CONFIG_HOME", config.as_os_str())];
    // The test's name in this binary: the module path without the crate.
    let module = module_path.split_once("::").map_or(module_path, |(_, rest)| rest);
    let side = run_alone_wrapped(&format!("{module}::{function}"), timeout, &env, wrapper);
    if let Side::Parent { output, elapsed } = side {
        for line in output.lines().filter_map(|l| l.find("measured:").map(|i| &l[i..])) {
            eprintln!("{line}");
        }
        eprintln!("measured: {function}: child process ran {elapsed:.1?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    false
}

/// The plugin's log in this child process: the file `NICE_LOG` names.
pub struct PluginLog(PathBuf);

impl PluginLog {
    /// The log of this child process ([`in_child`] sets `NICE_LOG`).
    pub fn new() -> Self {
        Self(PathBuf::from(std::env::var_os("NICE_LOG").expect("NICE_LOG is set in the child")))
    }

    /// The lines so far (nice-plug's logger writes them from a thread of its own, a moment later).
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The first line containing every one of `needles`, waiting up to [`PATIENCE`] for it.
    pub fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?} within {PATIENCE:?}:\n{:#?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many lines so far contain every one of `needles`.
    pub fn count(&self, needles: &[&str]) -> usize {
        self.lines().iter().filter(|l| needles.iter().all(|n| l.contains(n))).count()
    }
}

/// The counts of a `timecode output stopped; this activation: sent S, send_errors E, ...;
/// Art-Net: sent A, ...` line; the counts after a `NAME: ` part are named `name_…` (`artnet_sent`).
pub fn stop_counts(line: &str) -> BTreeMap<String, u64> {
    let (_, counts) = line.split_once("this activation: ").unwrap_or_else(|| panic!("not a stop line: {line}"));
    let mut out = BTreeMap::new();
    for (i, part) in counts.split("; ").enumerate() {
        let (prefix, pairs) = match part.split_once(": ") {
            Some((name, pairs)) if i > 0 => (format!("{}_", name.to_ascii_lowercase().replace('-', "")), pairs),
            _ => (String::new(), part),
        };
        for pair in pairs.split(", ") {
            let (name, n) = pair.trim().split_once(' ').unwrap_or_else(|| panic!("{line}"));
            out.insert(format!("{prefix}{name}"), n.parse().unwrap_or_else(|_| panic!("{line}")));
        }
    }
    out
}

/// The stop lines so far, once there are `n`.
pub fn stop_lines(log: &PluginLog, n: usize) -> Vec<BTreeMap<String, u64>> {
    let needle = "timecode output stopped; this activation: ";
    let deadline = Instant::now() + PATIENCE;
    while log.count(&[needle]) < n {
        assert!(Instant::now() < deadline, "fewer than {n} stop lines:\n{:#?}", log.lines());
        std::thread::sleep(Duration::from_millis(20));
    }
    log.lines().iter().filter(|l| l.contains(needle)).map(|l| stop_counts(l)).collect()
}
