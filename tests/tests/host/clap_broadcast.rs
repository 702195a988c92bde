//! The plugin's broadcast targets (issue 18): a subnet's broadcast address is sent to like any
//! target (`SO_BROADCAST` on its socket, routed by its subnet, no interface needed); the limited
//! broadcast 255.255.255.255 goes out on the machine's `[plugin] interface`, from its address,
//! and without one it is refused (one warning, every frame counted as not sent) while the
//! other targets go on.
//!
//! Broadcasts only ever leave inside network namespaces the test creates: the child process
//! runs in one (`unshare -rnm`, gone when it ends) holding `m0`, one end of a veth pair whose
//! other end `r0` is in a second namespace `rx` inside it, TEST-NET-2 addresses, no broadcast
//! address configured (the /25's is the kernel's own):
//!
//! ```text
//!   child (plugin)  m0 198.51.100.1/25  ---- veth ----  r0 198.51.100.2/25  (rx)
//! ```
//!
//! Receivers in `rx`: `osc-timecode listen --bind 0.0.0.0:PORT --json` (the client, built like
//! the bundles; a socket bound to its unicast address gets no broadcast). The targets come from
//! the machine config file (the harness's `OSC_TIMECODE_CONFIG`), as on a rig.

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
const NEEDS: &str =
    "needs network namespaces: unshare (util-linux) with user namespaces, ip (apt-get install iproute2)";

/// The namespaces' setup (see the module docs); then the child runs in the first one.
const SETUP: &str = "set -e
mount -t tmpfs none /run
mkdir -p /run/netns
ip link set lo up
ip netns add rx
ip link add m0 type veth peer name r0 netns rx
ip -n rx link set lo up
ip addr add 198.51.100.1/25 dev m0
ip -n rx addr add 198.51.100.2/25 dev r0
ip link set m0 up
ip -n rx link set r0 up
exec \"$@\"";

/// Starts the child in the namespaces.
const WRAPPER: &[&str] = &["unshare", "-rnm", "--", "sh", "-c", SETUP, "sh"];

/// `m0`'s subnet's broadcast address and a port.
const DIRECTED: &str = "198.51.100.127:5006";
/// The limited broadcast and another port.
const LIMITED: &str = "255.255.255.255:5007";
/// The plugin's sample rate, Hz.
const SAMPLE_RATE: u32 = 48_000;
/// The host's block, samples.
const BLOCK: u32 = 512;
/// How long the plugin plays, in real time.
const PLAY_SECONDS: u64 = 2;
/// How long the receivers in `rx` run: from before the plugin activates to after it stops.
const RECEIVE_SECONDS: &str = "6";

/// Fails with the hint unless the namespaces and a veth pair work here.
fn require_tools() {
    let works = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(
        works(Command::new("unshare").args(["-rnm", "sh", "-c", SETUP, "sh", "true"])),
        "unshare -rnm with ip netns and a veth pair does not work here: {NEEDS}"
    );
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

/// Writes the machine config file (`OSC_TIMECODE_CONFIG`, set by the harness): `targets` and the
/// machine keys in `machine`, after checking that this process is in the test's namespace
/// (loopback and `m0`, nothing else: no broadcast can reach any network but the veth pair).
fn write_machine_config(targets: &[String], machine: &str) {
    let table = std::fs::read_to_string("/proc/self/net/dev").expect("/proc/self/net/dev");
    let mut names: Vec<&str> = table.lines().skip(2).filter_map(|l| l.split_once(':')).map(|(n, _)| n.trim()).collect();
    names.sort_unstable();
    assert_eq!(names, ["lo", "m0"], "broadcast only inside the test's own namespace");
    osc_timecode_tests::bundle::bundles();
    let path = std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets OSC_TIMECODE_CONFIG");
    let list = targets.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
    let text = format!("[plugin]\ntargets = [{list}]\nkeepalive_ms = 0\noutput_latency_ms = 0.0\n{machine}");
    std::fs::write(&path, text).expect("write the machine config");
}

/// A listen in the namespace `rx` on `0.0.0.0:PORT`, JSON lines into `out`'s `NAME.out`.
fn listen(out: &Path, name: &str, port: u16) -> Child {
    let file = |ext: &str| std::fs::File::create(out.join(format!("{name}.{ext}"))).expect("an output file");
    let bind = format!("0.0.0.0:{port}");
    Command::new("ip")
        .args(["netns", "exec", "rx"])
        .arg(client_binary())
        .args(["listen", "--bind", &bind, "--json", "--duration", RECEIVE_SECONDS])
        .stdout(file("out"))
        .stderr(file("err"))
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {name} in rx: {e}"))
}

/// Waits for `child` and reads its standard output's JSON lines.
fn json_lines(out: &Path, name: &str, mut child: Child) -> Vec<Value> {
    let status = child.wait().expect("wait for a receiver");
    let text = std::fs::read_to_string(out.join(format!("{name}.out"))).expect("its output");
    let err = std::fs::read_to_string(out.join(format!("{name}.err"))).unwrap_or_default();
    assert!(status.success(), "{name}: {status}\n{err}");
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}\n{err}"))).collect()
}

/// Checks that the listen `name` locked on the plugin, whose source is `m0`'s address.
fn assert_locked(out: &Path, name: &str, child: Child) {
    let lines = json_lines(out, name, child);
    let locked: Vec<&Value> = lines.iter().filter(|v| v["state"] == "locked").collect();
    assert!(!locked.is_empty(), "{name}: the listen in rx locks on the plugin: {lines:?}");
    for v in &locked {
        let master = v["master"].as_str().unwrap_or_default();
        assert!(master.starts_with("198.51.100.1:"), "{name}: the source is m0's address: {v}");
    }
    let last = lines.last().expect("a last line");
    assert_eq!((last["ignored"].as_u64(), last["invalid"].as_u64()), (Some(0), Some(0)), "{name}: {last}");
    println!("measured: {name}: {} frames received in rx", last["received"]);
}

/// A directory for the receivers' output, fresh.
fn out_dir(function: &str) -> PathBuf {
    let out = std::env::temp_dir().join(format!("osc-timecode-broadcast-{}-{function}", std::process::id()));
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
    assert_stream(&got, &want, rate, "the loopback target beside the broadcast ones");
    plugin.deactivate();
    want.len()
}

/// With `[plugin] interface = "m0"`: both broadcasts and the loopback target get every frame,
/// with no send error, and the listens in `rx` lock on `m0`'s address.
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs network namespaces: unshare (util-linux) with user namespaces, ip (apt-get install iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn broadcast_targets_reach_the_link_the_limited_one_on_the_machines_interface() {
    const NAME: &str = "broadcast_targets_reach_the_link_the_limited_one_on_the_machines_interface";
    if !in_child(NAME) {
        return;
    }
    let log = PluginLog::new();
    let out = out_dir(NAME);
    let rx = Receiver::bind();
    write_machine_config(&[DIRECTED.to_owned(), LIMITED.to_owned(), rx.addr().to_string()], "interface = \"m0\"\n");

    // Receivers first, so the first frames find them.
    let directed = listen(&out, "directed", 5006);
    let limited = listen(&out, "limited", 5007);
    std::thread::sleep(Duration::from_millis(500));
    let frames = play(&rx);

    let stops = stop_lines(&log, 1);
    println!("measured: stop line {stops:?}");
    let n = frames as u64;
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]), (3 * n, 0, 0), "{stops:?}");
    assert_eq!(log.count(&["not sending timecode to the"]), 0, "{:#?}", log.lines());
    assert_locked(&out, "directed", directed);
    assert_locked(&out, "limited", limited);
    let _ = std::fs::remove_dir_all(&out);
}

/// Without an interface: the limited broadcast is refused (one warning, every frame counted),
/// the subnet's broadcast still reaches the link and the loopback target gets every frame.
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs network namespaces: unshare (util-linux) with user namespaces, ip (apt-get install iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn the_limited_broadcast_without_an_interface_is_refused_and_the_subnets_one_still_goes() {
    const NAME: &str = "the_limited_broadcast_without_an_interface_is_refused_and_the_subnets_one_still_goes";
    if !in_child(NAME) {
        return;
    }
    let log = PluginLog::new();
    let out = out_dir(NAME);
    let rx = Receiver::bind();
    write_machine_config(&[DIRECTED.to_owned(), LIMITED.to_owned(), rx.addr().to_string()], "");

    let directed = listen(&out, "directed", 5006);
    let limited = listen(&out, "limited", 5007);
    std::thread::sleep(Duration::from_millis(500));
    let frames = play(&rx);

    let line = log.wait_for(&["not sending timecode to the broadcast address 255.255.255.255:5007", "interface"]);
    println!("measured: the plugin's log says: {line}");
    assert_eq!(log.count(&["not sending timecode to the"]), 1, "one line, not one per frame");
    let stops = stop_lines(&log, 1);
    println!("measured: stop line {stops:?}");
    let n = frames as u64;
    assert_eq!(
        (stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]),
        (2 * n, n, 0),
        "every frame refused to the limited broadcast only: {stops:?}"
    );
    assert_locked(&out, "directed", directed);
    let lines = json_lines(&out, "limited", limited);
    assert!(!lines.is_empty());
    for v in &lines {
        assert_eq!(v["received"].as_u64(), Some(0), "nothing reached the limited broadcast's port: {v}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
