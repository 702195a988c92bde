//! The plugin advertises itself over DNS-SD (issue 18): with `advertise = true` under `[plugin]`
//! in the machine config, an `_osc._udp` service with role=master at the cue input's port, which
//! an independent browser (python-zeroconf, `client/tests/discover_peer.py`) sees; off by
//! default, nothing; cue input off, nothing; deactivated, withdrawn.
//!
//! mDNS is multicast, so the test runs alone in a child process inside a network namespace it
//! creates (`unshare -rn`: a private loopback with multicast on, nothing else, gone when the
//! child ends), with a plugin log of its own ([`crate::common::in_child_wrapped`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use osc_timecode_tests::cues::free_loopback_addr;
use serde_json::{Value, json};

use crate::common::{CueRig, PluginLog};
use crate::netns::works;

/// Longest the child process may run.
const CHILD_TIMEOUT: Duration = Duration::from_secs(180);

/// The hint of the ignored test, and of its failure when a tool is missing.
const NEEDS: &str = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0, \
     unshare (util-linux) with user namespaces, ip (apt-get install iproute2)";

/// The namespace's setup: loopback up, multicast on, the multicast routes through it.
macro_rules! setup {
    () => {
        "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"
    };
}

/// Starts the child in a network namespace of its own with the setup done.
const WRAPPER: &[&str] = &["unshare", "-rn", "--", "sh", "-c", concat!(setup!(), " && exec \"$@\""), "sh"];

/// The independent browser.
fn peer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/discover_peer.py")
}

/// Fails with the hint unless user and network namespaces with a multicast loopback and
/// python-zeroconf are there.
fn require_tools() {
    assert!(
        works(Command::new("unshare").args(["-rn", "sh", "-c", setup!()])),
        "unshare -rn with ip does not work here: {NEEDS}"
    );
    assert!(
        works(Command::new("python3").args(["-c", "import zeroconf"])),
        "python-zeroconf is not installed: {NEEDS}"
    );
    assert!(peer().is_file(), "{} is missing", peer().display());
}

/// What python-zeroconf sees in `seconds`: `{fullname: {"port", "addresses", "txt"}}`.
fn browse(seconds: u32) -> serde_json::Map<String, Value> {
    let out = Command::new("python3")
        .arg(peer())
        .args(["browse", &seconds.to_string()])
        .output()
        .expect("could not run the python peer");
    assert!(out.status.success(), "the python peer failed: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Object(found)) => found,
        other => panic!("the python peer printed {other:?}"),
    }
}

/// Writes the machine config file the plugin reads (`OSC_TIMECODE_CONFIG`, set by the harness).
fn write_machine_config(extra: &str) {
    osc_timecode_tests::bundle::bundles();
    let path = std::env::var_os("OSC_TIMECODE_CONFIG").expect("the harness sets OSC_TIMECODE_CONFIG");
    std::fs::write(&path, format!("[plugin]\ntargets = []\n{extra}")).expect("write the machine config");
}

#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0; unshare with user namespaces, ip (iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn an_independent_browser_sees_the_plugin_only_when_the_machine_says_so() {
    const NAME: &str = "an_independent_browser_sees_the_plugin_only_when_the_machine_says_so";
    if std::env::var_os(osc_timecode_tests::child::CHILD_ENV).is_none() {
        require_tools();
    }
    if !crate::common::in_child_wrapped(module_path!(), NAME, CHILD_TIMEOUT, WRAPPER) {
        return;
    }
    let log = PluginLog::new();

    // Off by default: nothing advertised, nothing said.
    write_machine_config("");
    let mut first = CueRig::new(48_000, 512, json!({}));
    assert_eq!(browse(3), serde_json::Map::new(), "advertise is off by default");
    assert_eq!(log.count(&["DNS-SD"]), 0, "{:#?}", log.lines());

    // On: the cue input's port, on loopback only (said in one line), a name per port: two
    // instances on one machine do not collide. Read at activation.
    write_machine_config("advertise = true\n");
    first.rig.plugin.deactivate();
    first.rig.plugin.activate(48_000, 512);
    let second = CueRig::new(48_000, 512, json!({}));
    for port in [first.listen.port(), second.listen.port()] {
        let line =
            log.wait_for(&["DNS-SD: advertising \"osc-timecode on ", &format!("(port {port})\" (master _osc._udp)")]);
        println!("measured: log: {line}");
        assert!(
            line.contains(&format!(
                "at 127.0.0.1:{port} on loopback only: seen on this machine, nowhere else (the cue input listens on loopback"
            )),
            "{line}"
        );
    }
    let found = browse(4);
    assert_eq!(found.len(), 2, "both instances: {found:?}");
    for rig in [&first, &second] {
        let port = rig.listen.port();
        let (name, service) = found
            .iter()
            .find(|(name, _)| name.ends_with(&format!(" (port {port})._osc._udp.local.")))
            .unwrap_or_else(|| panic!("no service for port {port}: {found:?}"));
        assert!(name.starts_with("osc-timecode on "), "{name}");
        assert_eq!(service["port"], port, "{service}");
        assert_eq!(service["addresses"], json!(["127.0.0.1"]), "{service}");
        assert_eq!(
            service["txt"],
            json!({"txtvers": "1", "role": "master", "proto": "osc-timecode/1", "timecode": "/sync/timecode"})
        );
    }
    drop(second);

    // Cue input off: withdrawn, one line.
    first.rig.plugin.update_settings(|s| {
        s["cues"]["enabled"] = json!(false);
    });
    log.wait_for(&["DNS-SD: the cue input is off: nothing advertised"]);
    assert_eq!(browse(2), serde_json::Map::new(), "withdrawn with the cue input");

    // On again on another port, then deactivated: withdrawn.
    let moved = free_loopback_addr();
    first.rig.plugin.update_settings(|s| {
        s["cues"]["enabled"] = json!(true);
        s["cues"]["listen"] = json!(moved.to_string());
    });
    log.wait_for(&[&format!("(port {})\" (master _osc._udp) at {moved}", moved.port())]);
    let found = browse(3);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found.keys().all(|name| name.ends_with(&format!(" (port {})._osc._udp.local.", moved.port()))),
        "{found:?}"
    );
    first.rig.plugin.deactivate();
    log.wait_for(&[&format!("(port {})\" withdrawn", moved.port())]);
    assert_eq!(browse(2), serde_json::Map::new(), "withdrawn at deactivation");
    assert_eq!(log.count(&["DNS-SD: could not"]), 0, "{:#?}", log.lines());
}
