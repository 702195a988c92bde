//! The plugin's multicast targets (issue 18): with `[plugin] interface` and `ttl` in the machine
//! config, a multicast target goes out on that interface with that TTL, and a receiver joined
//! on the other end of the link gets the frames; without an interface the target is refused
//! (one warning, every frame counted as not sent) and the loopback target beside it still gets
//! every frame.
//!
//! Multicast only ever leaves inside network namespaces the test creates: the child process runs
//! in one (`unshare -rnm`, gone when it ends) holding `m0`, one end of a veth pair whose other
//! end `r0` is in a second namespace `rx` inside it, TEST-NET-2 addresses (198.51.100.0/24):
//!
//! ```text
//!   child (plugin)  m0 198.51.100.1/24 fe80::1  ---- veth ----  r0 198.51.100.2/24 fe80::2  (rx)
//! ```
//!
//! Receivers in `rx`: `osc-timecode listen --bind GROUP:PORT --interface r0 --json` (the client,
//! built like the bundles) and, for the IP TTL and source, a raw socket
//! (`client/tests/multicast_probe.py`). The targets come from the machine config file (the
//! harness's `OSC_TIMECODE_CONFIG`), as on a rig: a new instance starts from it.

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

/// The hint of the ignored tests, and of their failure when a tool is missing.
const NEEDS: &str = "needs network namespaces and python3: unshare (util-linux) with user namespaces, ip (apt-get \
     install iproute2), python3 (apt-get install python3)";

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
ip addr add 198.51.100.1/24 dev m0
ip addr add fe80::1/64 dev m0 nodad
ip -n rx addr add 198.51.100.2/24 dev r0
ip -n rx addr add fe80::2/64 dev r0 nodad
ip link set m0 up
ip -n rx link set r0 up
exec \"$@\"";

/// Starts the child in the namespaces.
const WRAPPER: &[&str] = &["unshare", "-rnm", "--", "sh", "-c", SETUP, "sh"];

/// The IPv4 group and port (an organisation-local group, as the README suggests).
const GROUP_V4: &str = "239.192.50.6:5006";
/// The IPv6 group (link-local scope) and port.
const GROUP_V6: &str = "[ff02::1234]:5008";
/// The plugin's sample rate, Hz.
const SAMPLE_RATE: u32 = 48_000;
/// The host's block, samples.
const BLOCK: u32 = 512;
/// How long the plugin plays, in real time.
const PLAY_SECONDS: u64 = 2;
/// How long the receivers in `rx` run: from before the plugin activates to after it stops.
const RECEIVE_SECONDS: &str = "6";

/// The raw-socket probe shared with the client's multicast test.
fn probe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/multicast_probe.py")
}

/// Fails with the hint unless the namespaces, veth pairs and python3 work here.
fn require_tools() {
    let works = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(
        works(Command::new("unshare").args(["-rnm", "sh", "-c", SETUP, "sh", "true"])),
        "unshare -rnm with ip netns and a veth pair does not work here: {NEEDS}"
    );
    assert!(works(Command::new("python3").args(["-c", "import socket, json"])), "python3 is missing: {NEEDS}");
    assert!(probe().is_file(), "{} is missing", probe().display());
    // Built here, with the network the child has not.
    client_binary();
}

/// Runs `function` alone in a child process inside the namespaces; `false` in the parent.
fn in_child(function: &str) -> bool {
    if std::env::var_os(osc_timecode_tests::child::CHILD_ENV).is_none() {
        require_tools();
    }
    crate::common::in_child_wrapped(module_path!(), function, CHILD_TIMEOUT, WRAPPER)
}

/// Panics unless this process is in the test's namespace: loopback and `m0`, nothing else, so
/// nothing it sends can reach any network but the test's own veth pair.
fn assert_in_the_test_namespace() {
    let table = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let mut names: Vec<&str> = table.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(n, _)| n.trim()).collect();
    names.sort_unstable();
    assert_eq!(names, ["lo", "m0"], "multicast only inside the test's own namespace");
}

/// Writes the machine config file (`OSC_TIMECODE_CONFIG`, set by the harness): `targets` and the
/// machine keys in `machine`.
fn write_machine_config(targets: &[String], machine: &str) {
    assert_in_the_test_namespace();
    osc_timecode_tests::bundle::bundles();
    let path = std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets OSC_TIMECODE_CONFIG");
    let list = targets.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    let text = format!("[plugin]\ntargets = [{list}]\nkeepalive_ms = 0\noutput_latency_ms = 0.0\n{machine}");
    std::fs::write(&path, text).expect("write the machine config");
}

/// A program in the namespace `rx`, its standard output and error into `out`'s `NAME.out` and
/// `NAME.err`.
fn in_rx(out: &Path, name: &str, program: &Path, args: &[&str]) -> Child {
    let file = |ext: &str| std::fs::File::create(out.join(format!("{name}.{ext}"))).expect("an output file");
    Command::new("ip")
        .args(["netns", "exec", "rx"])
        .arg(program)
        .args(args)
        .stdout(file("out"))
        .stderr(file("err"))
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {name} in rx: {e}"))
}

/// A listen in `rx` joined to `group` on `r0`, JSON lines out.
fn listen(out: &Path, name: &str, group: &str) -> Child {
    let args = ["listen", "--bind", group, "--interface", "r0", "--json", "--duration", RECEIVE_SECONDS];
    in_rx(out, name, client_binary(), &args)
}

/// Waits for `child` and reads its standard output's JSON lines.
fn json_lines(out: &Path, name: &str, mut child: Child) -> Vec<Value> {
    let status = child.wait().expect("wait for a receiver");
    let text = std::fs::read_to_string(out.join(format!("{name}.out"))).expect("its output");
    let err = std::fs::read_to_string(out.join(format!("{name}.err"))).unwrap_or_default();
    assert!(status.success(), "{name}: {status}\n{err}");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}\n{err}"))).collect()
}

/// A directory for the receivers' output, fresh.
fn out_dir(function: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("osc-timecode-multicast-{}-{function}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("an output directory");
    out
}

/// Loads the plugin (its targets from the machine config), activates it, plays
/// [`PLAY_SECONDS`] in real time at 25 fps and deactivates; checks that `rx` got the whole
/// stream and returns the number of frames.
fn play(rx: &Receiver) -> usize {
    let mut plugin = ClapPlugin::load();
    let rate = FrameRate::FPS_25;
    plugin.set_param(Param::Rate, rate.index() as f64);
    plugin.activate(SAMPLE_RATE, BLOCK);
    let mut transport = Transport::new(SAMPLE_RATE);
    transport.play();
    let report = plugin.run_realtime(&mut transport, PLAY_SECONDS * u64::from(SAMPLE_RATE), BLOCK);
    assert_eq!(report.passthrough_mismatches, 0);
    let want = expected(transport.history(), Timing::new(SAMPLE_RATE, rate));
    let got = messages(&receive(rx, want.len()));
    assert_stream(&got, &want, rate, "the loopback target beside the multicast ones");
    plugin.deactivate();
    want.len()
}

#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs network namespaces and python3: unshare (util-linux) with user namespaces, ip (apt-get install iproute2), python3"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn multicast_targets_go_out_on_the_machines_interface_with_its_ttl() {
    const NAME: &str = "multicast_targets_go_out_on_the_machines_interface_with_its_ttl";
    if in_child(NAME) {
        sends_on(NAME, "interface = \"m0\"\nttl = 3\nadvertise = false\n", 3);
    }
}

#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs network namespaces and python3: unshare (util-linux) with user namespaces, ip (apt-get install iproute2), python3"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn an_interface_named_by_its_address_and_the_default_ttl_of_one_link() {
    const NAME: &str = "an_interface_named_by_its_address_and_the_default_ttl_of_one_link";
    if in_child(NAME) {
        sends_on(NAME, "interface = \"198.51.100.1\"\n", 1);
    }
}

/// In the child: the plugin with an IPv4 group, an IPv6 group and a loopback target, and the
/// machine keys `machine` (which name `m0` and give the datagrams the TTL `want_ttl`): the
/// listens joined on `r0` lock with `m0`'s addresses as the source, the TTL is `want_ttl`,
/// nothing is refused, the loopback target gets every frame.
fn sends_on(function: &str, machine: &str, want_ttl: u32) {
    let log = PluginLog::new();
    let out = out_dir(function);
    let rx = Receiver::bind();
    let targets = [GROUP_V4.to_owned(), GROUP_V6.to_owned(), rx.addr().to_string()];
    write_machine_config(&targets, machine);

    // Receivers first, so the first frames find them.
    let v4 = listen(&out, "v4", GROUP_V4);
    let v6 = listen(&out, "v6", GROUP_V6);
    let script = probe();
    let probe_args = [script.to_str().expect("a UTF-8 path"), "ttl", "239.192.50.6", "5006", RECEIVE_SECONDS];
    let ttl = in_rx(&out, "ttl", Path::new("python3"), &probe_args);
    std::thread::sleep(Duration::from_millis(500));
    let frames = play(&rx);

    let stops = stop_lines(&log, 1);
    println!("measured: stop line {stops:?}");
    let n = frames as u64;
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]), (3 * n, 0, 0), "{stops:?}");
    assert_eq!(log.count(&["not sending timecode to the multicast group"]), 0, "{:#?}", log.lines());

    for (name, child, source) in [("v4", v4, "198.51.100.1:"), ("v6", v6, "[fe80::1%")] {
        let lines = json_lines(&out, name, child);
        let locked: Vec<&Value> = lines.iter().filter(|v| v["state"] == "locked").collect();
        assert!(!locked.is_empty(), "{name}: the listen joined on r0 locks on the plugin: {lines:?}");
        for v in &locked {
            let master = v["master"].as_str().unwrap_or_default();
            assert!(master.starts_with(source), "{name}: the source is m0's address: {v}");
        }
        let last = lines.last().expect("a last line");
        assert_eq!((last["ignored"].as_u64(), last["invalid"].as_u64()), (Some(0), Some(0)), "{name}: {last}");
        assert!(last["received"].as_u64().is_some_and(|r| r > 0), "{name}: {last}");
        println!("measured: {name}: {} of {frames} frames received by the listen joined on r0", last["received"]);
    }
    let ttl = json_lines(&out, "ttl", ttl);
    assert_eq!(ttl.len(), 1, "{ttl:?}");
    let (ttl, source) = (&ttl[0]["ttl"], &ttl[0]["source"]);
    assert_eq!((ttl, source), (&Value::from(want_ttl), &Value::from("198.51.100.1")), "{machine}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs network namespaces and python3: unshare (util-linux) with user namespaces, ip (apt-get install iproute2), python3"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn a_multicast_target_without_an_interface_is_refused_and_the_loopback_target_gets_every_frame() {
    const NAME: &str = "a_multicast_target_without_an_interface_is_refused_and_the_loopback_target_gets_every_frame";
    if !in_child(NAME) {
        return;
    }
    let log = PluginLog::new();
    let out = out_dir(NAME);
    let rx = Receiver::bind();
    write_machine_config(&[GROUP_V4.to_owned(), rx.addr().to_string()], "ttl = 3\n");

    let v4 = listen(&out, "v4", GROUP_V4);
    std::thread::sleep(Duration::from_millis(500));
    let frames = play(&rx);

    let line = log.wait_for(&["not sending timecode to the multicast group 239.192.50.6:5006", "interface"]);
    println!("measured: the plugin's log says: {line}");
    assert_eq!(log.count(&["not sending timecode to the multicast group"]), 1, "one line, not one per frame");
    let stops = stop_lines(&log, 1);
    println!("measured: stop line {stops:?}");
    let n = frames as u64;
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"]), (n, n), "every frame refused to the group: {stops:?}");

    let lines = json_lines(&out, "v4", v4);
    assert!(!lines.is_empty());
    for v in &lines {
        assert_eq!(v["received"].as_u64(), Some(0), "nothing reached the group: {v}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
