//! The plugin's multicast targets (issue 18): with `[plugin] interface` and `ttl` in the machine
//! config, a multicast target goes out on that interface with that TTL, and a receiver joined
//! on the other end of the link gets the frames; without an interface the target is refused
//! (one warning, every frame counted as not sent) and the loopback target beside it still gets
//! every frame.
//!
//! Multicast only ever leaves inside network namespaces the test creates: the child process runs
//! on `m0` (198.51.100.1, fe80::1), one end of a veth pair whose other end `r0` (198.51.100.2,
//! fe80::2) is in a namespace `rx`; see [`crate::netns`].
//!
//! Receivers in `rx`: `osc-timecode listen --bind GROUP:PORT --interface r0 --json` (the client,
//! built like the bundles) and, for the IP TTL and source, a raw socket
//! (`client/tests/multicast_probe.py`). The targets come from the machine config file (the
//! harness's `OSC_TIMECODE_CONFIG`), as on a rig: a new instance starts from it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::netns::{Link, RECEIVE_SECONDS, works};

/// The IPv4 group and port (an organisation-local group, as the README suggests).
const GROUP_V4: &str = "239.192.50.6:5006";
/// The IPv6 group (link-local scope) and port.
const GROUP_V6: &str = "[ff02::1234]:5008";

/// The raw-socket probe shared with the client's multicast test.
fn probe() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/multicast_probe.py")
}

/// Runs `function` alone in a child process inside the namespaces ([`crate::netns::in_child`]),
/// after checking for python3 and the probe; `false` in the parent.
fn in_child(function: &str) -> bool {
    crate::netns::in_child(module_path!(), function, || {
        assert!(
            works(Command::new("python3").args(["-c", "import socket, json"])),
            "python3 is missing: apt-get install python3"
        );
        assert!(probe().is_file(), "{} is missing", probe().display());
    })
}

/// A listen in `rx` joined to `group` on `r0`.
fn listen(link: &Link, name: &str, group: &str) -> std::process::Child {
    link.listen(name, &["--bind", group, "--interface", "r0"])
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
    let link = Link::new("multicast", function, &[GROUP_V4, GROUP_V6], machine);

    // Receivers first, so the first frames find them.
    let v4 = listen(&link, "v4", GROUP_V4);
    let v6 = listen(&link, "v6", GROUP_V6);
    let script = probe();
    let probe_args = [script.to_str().expect("a UTF-8 path"), "ttl", "239.192.50.6", "5006", RECEIVE_SECONDS];
    let ttl = link.in_rx("ttl", Path::new("python3"), &probe_args);
    let n = link.play();

    let stops = link.stop_lines();
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]), (3 * n, 0, 0), "{stops:?}");
    assert_eq!(link.log.count(&["not sending timecode to the multicast group"]), 0, "{:#?}", link.log.lines());

    for (name, child, source) in [("v4", v4, "198.51.100.1:"), ("v6", v6, "[fe80::1%")] {
        let last = link.assert_locked(name, child, "joined on r0", source);
        assert!(last["received"].as_u64().is_some_and(|r| r > 0), "{name}: {last}");
        println!("measured: {name}: {} of {n} frames received by the listen joined on r0", last["received"]);
    }
    let ttl = link.json_lines("ttl", ttl);
    assert_eq!(ttl.len(), 1, "{ttl:?}");
    let (ttl, source) = (&ttl[0]["ttl"], &ttl[0]["source"]);
    assert_eq!((ttl, source), (&Value::from(want_ttl), &Value::from("198.51.100.1")), "{machine}");
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
    let link = Link::new("multicast", NAME, &[GROUP_V4], "ttl = 3\n");

    let v4 = listen(&link, "v4", GROUP_V4);
    let n = link.play();

    let line = link.log.wait_for(&["not sending timecode to the multicast group 239.192.50.6:5006", "interface"]);
    println!("measured: the plugin's log says: {line}");
    assert_eq!(link.log.count(&["not sending timecode to the multicast group"]), 1, "one line, not one per frame");
    let stops = link.stop_lines();
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"]), (n, n), "every frame refused to the group: {stops:?}");
    link.assert_nothing("v4", v4, "the group");
}
