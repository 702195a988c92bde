//! The link the plugin's broadcast and multicast host tests send over (issue 18), made in
//! network namespaces the test creates, so nothing it sends reaches any network but its own.
//!
//! The child process runs in one namespace (`unshare -rnm`, gone when it ends) holding `m0`, one
//! end of a veth pair whose other end `r0` is in a second namespace `rx` inside it, TEST-NET-2
//! addresses, no broadcast address configured (the /25's is the kernel's own), no generated
//! link-local addresses (each side has the one given here, nothing appears later):
//!
//! ```text
//!   child (plugin)  m0 198.51.100.1/25 fe80::1  ---- veth ----  r0 198.51.100.2/25 fe80::2  (rx)
//! ```
//!
//! Receivers run in `rx` (`osc-timecode listen`, the client built like the bundles, or a probe);
//! the plugin's targets come from the machine config file (the harness's `OSC_TIMECODE_CONFIG`),
//! as on a rig. A [`Link`] is one test's side in the child: the plugin's log, the receivers'
//! output directory, the loopback target beside the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use osc_timecode_core::FrameRate;
use osc_timecode_tests::bundle::client_binary;
use osc_timecode_tests::clap::{ClapPlugin, Param};
use osc_timecode_tests::expect::{Timing, assert_stream, expected};
use osc_timecode_tests::receiver::{Receiver, messages};
use osc_timecode_tests::transport::Transport;
use serde_json::Value;

use crate::common::{PluginLog, receive, stop_lines};

/// Longest the child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// The hint of a failure when the namespaces do not work here.
pub const NEEDS: &str =
    "needs network namespaces: unshare (util-linux) with user namespaces, ip (apt-get install iproute2)";

/// The namespaces' setup (see the module docs); then the child runs in the first one.
const SETUP: &str = "set -e
mount -t tmpfs none /run
mkdir -p /run/netns
ip link set lo up
ip netns add rx
ip link add m0 type veth peer name r0 netns rx
ip link set m0 addrgenmode none
ip -n rx link set r0 addrgenmode none
ip -n rx link set lo up
ip addr add 198.51.100.1/25 dev m0
ip addr add fe80::1/64 dev m0 nodad
ip -n rx addr add 198.51.100.2/25 dev r0
ip -n rx addr add fe80::2/64 dev r0 nodad
ip link set m0 up
ip -n rx link set r0 up
exec \"$@\"";

/// Starts the child in the namespaces.
const WRAPPER: &[&str] = &["unshare", "-rnm", "--", "sh", "-c", SETUP, "sh"];

/// The plugin's sample rate, Hz.
const SAMPLE_RATE: u32 = 48_000;
/// The host's block, samples.
const BLOCK: u32 = 512;
/// How long the plugin plays, in real time.
const PLAY_SECONDS: u64 = 2;
/// How long the receivers in `rx` run, seconds: from before the plugin activates to after it
/// stops.
pub const RECEIVE_SECONDS: &str = "6";

/// Whether `cmd` runs and succeeds, its output discarded.
pub fn works(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Runs `function` of the module `module_path` (its `module_path!()`) alone in a child process
/// inside the namespaces; `false` in the parent. The parent first fails with [`NEEDS`] unless
/// the namespaces and a veth pair work here, then runs `require` (the test's other tools) and
/// builds the client (here, with the network the child has not).
pub fn in_child(module_path: &str, function: &str, require: impl FnOnce()) -> bool {
    if std::env::var_os(osc_timecode_tests::child::CHILD_ENV).is_none() {
        assert!(
            works(Command::new("unshare").args(["-rnm", "sh", "-c", SETUP, "sh", "true"])),
            "unshare -rnm with ip netns and a veth pair does not work here: {NEEDS}"
        );
        require();
        client_binary();
    }
    crate::common::in_child_wrapped(module_path, function, CHILD_TIMEOUT, WRAPPER)
}

/// One test's side in the child: the plugin's log, a fresh directory for the receivers' output
/// (removed when dropped, unless the test failed), and a loopback target.
pub struct Link {
    /// What the test sends (`broadcast`, `multicast`): in its messages and directory's name.
    what: &'static str,
    /// The plugin's log in this child process.
    pub log: PluginLog,
    /// The receivers' output directory: `NAME.out` and `NAME.err` per receiver.
    pub out: PathBuf,
    /// The loopback target beside the others, which must get every frame.
    rx: Receiver,
}

impl Link {
    /// In the child of the test `function`, which sends `what`: checks that this process is in
    /// the test's namespace (loopback and `m0`, nothing else: nothing it sends can reach any
    /// network but the veth pair) and writes the machine config file with `targets`, the
    /// loopback target after them, and the machine keys in `machine`.
    pub fn new(what: &'static str, function: &str, targets: &[&str], machine: &str) -> Self {
        let table = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
        let mut names: Vec<&str> =
            table.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(n, _)| n.trim()).collect();
        names.sort_unstable();
        assert_eq!(names, ["lo", "m0"], "{what} only inside the test's own namespace");
        let log = PluginLog::new();
        let out = std::env::temp_dir().join(format!("osc-timecode-{what}-{}-{function}", std::process::id()));
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).expect("an output directory");
        let rx = Receiver::bind();

        osc_timecode_tests::bundle::bundles();
        let path = std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets OSC_TIMECODE_CONFIG");
        let loopback = rx.addr().to_string();
        let list = targets.iter().chain([&loopback.as_str()]).map(|t| format!("{t:?}")).collect::<Vec<_>>();
        let text =
            format!("[plugin]\ntargets = [{}]\nkeepalive_ms = 0\noutput_latency_ms = 0.0\n{machine}", list.join(", "));
        std::fs::write(&path, text).expect("write the machine config");
        Self { what, log, out, rx }
    }

    /// A program in the namespace `rx`, its standard output and error into `NAME.out` and
    /// `NAME.err`.
    pub fn in_rx(&self, name: &str, program: &Path, args: &[&str]) -> Child {
        let file = |ext: &str| std::fs::File::create(self.out.join(format!("{name}.{ext}"))).expect("an output file");
        Command::new("ip")
            .args(["netns", "exec", "rx"])
            .arg(program)
            .args(args)
            .stdout(file("out"))
            .stderr(file("err"))
            .spawn()
            .unwrap_or_else(|e| panic!("could not start {name} in rx: {e}"))
    }

    /// `osc-timecode listen` in `rx` with `args` (where and how it binds), JSON lines out, for
    /// [`RECEIVE_SECONDS`].
    pub fn listen(&self, name: &str, args: &[&str]) -> Child {
        let args = [&["listen"], args, &["--json", "--duration", RECEIVE_SECONDS]].concat();
        self.in_rx(name, client_binary(), &args)
    }

    /// Waits for `child` and reads its standard output's JSON lines.
    pub fn json_lines(&self, name: &str, mut child: Child) -> Vec<Value> {
        let status = child.wait().expect("wait for a receiver");
        let text = std::fs::read_to_string(self.out.join(format!("{name}.out"))).expect("its output");
        let err = std::fs::read_to_string(self.out.join(format!("{name}.err"))).unwrap_or_default();
        assert!(status.success(), "{name}: {status}\n{err}");
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}\n{err}"))).collect()
    }

    /// Checks that the listen `name` (`where_` says where it listens) locked on the plugin with
    /// `source` (the start of its address) and took nothing for ignored or invalid; returns its
    /// last line.
    pub fn assert_locked(&self, name: &str, child: Child, where_: &str, source: &str) -> Value {
        let lines = self.json_lines(name, child);
        let locked: Vec<&Value> = lines.iter().filter(|v| v["state"] == "locked").collect();
        assert!(!locked.is_empty(), "{name}: the listen {where_} locks on the plugin: {lines:?}");
        for v in &locked {
            let master = v["master"].as_str().unwrap_or_default();
            assert!(master.starts_with(source), "{name}: the source is m0's address: {v}");
        }
        let last = lines.last().expect("a last line").clone();
        assert_eq!((last["ignored"].as_u64(), last["invalid"].as_u64()), (Some(0), Some(0)), "{name}: {last}");
        last
    }

    /// Checks that the listen `name` ran and received nothing (`what` says where, for the
    /// message).
    pub fn assert_nothing(&self, name: &str, child: Child, what: &str) {
        let lines = self.json_lines(name, child);
        assert!(!lines.is_empty());
        for v in &lines {
            assert_eq!(v["received"].as_u64(), Some(0), "nothing reached {what}: {v}");
        }
    }

    /// Half a second for the receivers started before it (so the first frames find them); then
    /// loads the plugin (its targets from the machine config), activates it, plays
    /// [`PLAY_SECONDS`] in real time at 25 fps and deactivates; checks that the loopback target
    /// got the whole stream and returns the number of frames.
    pub fn play(&self) -> u64 {
        std::thread::sleep(Duration::from_millis(500));
        let mut plugin = ClapPlugin::load();
        let rate = FrameRate::FPS_25;
        plugin.set_param(Param::Rate, rate.index() as f64);
        plugin.activate(SAMPLE_RATE, BLOCK);
        let mut transport = Transport::new(SAMPLE_RATE);
        transport.play();
        let report = plugin.run_realtime(&mut transport, PLAY_SECONDS * u64::from(SAMPLE_RATE), BLOCK);
        assert_eq!(report.passthrough_mismatches, 0);
        let want = expected(transport.history(), Timing::new(SAMPLE_RATE, rate));
        let got = messages(&receive(&self.rx, want.len()));
        assert_stream(&got, &want, rate, &format!("the loopback target beside the {} ones", self.what));
        plugin.deactivate();
        want.len() as u64
    }

    /// The plugin's stop line (one activation), printed.
    pub fn stop_lines(&self) -> Vec<BTreeMap<String, u64>> {
        let stops = stop_lines(&self.log, 1);
        println!("measured: stop line {stops:?}");
        stops
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Kept after a failure, to look at.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.out);
        }
    }
}
