//! The plugin's broadcast targets (issue 18): a subnet's broadcast address is sent to like any
//! target (`SO_BROADCAST` on its socket, routed by its subnet, no interface needed); the limited
//! broadcast 255.255.255.255 goes out on the machine's `[plugin] interface`, from its address,
//! and without one it is refused (one warning, every frame counted as not sent) while the
//! other targets go on.
//!
//! Broadcasts only ever leave inside network namespaces the test creates: the child process
//! runs on `m0` (198.51.100.1/25), one end of a veth pair whose other end `r0` (198.51.100.2/25)
//! is in a namespace `rx`, no broadcast address configured (the /25's is the kernel's own); see
//! [`crate::netns`].
//!
//! Receivers in `rx`: `osc-timecode listen --bind 0.0.0.0:PORT --json` (the client, built like
//! the bundles; a socket bound to its unicast address gets no broadcast). The targets come from
//! the machine config file (the harness's `OSC_TIMECODE_CONFIG`), as on a rig.

use std::process::Child;

use crate::netns::{Link, in_child};

/// `m0`'s subnet's broadcast address and a port.
const DIRECTED: &str = "198.51.100.127:5006";
/// The limited broadcast and another port.
const LIMITED: &str = "255.255.255.255:5007";

/// In the child of the test `function`: the plugin's link with both broadcasts as targets and
/// the machine keys `machine`, and the listens in `rx` on 0.0.0.0 at their ports (started
/// before the plugin, so the first frames find them).
fn start(function: &str, machine: &str) -> (Link, Child, Child) {
    let link = Link::new("broadcast", function, &[DIRECTED, LIMITED], machine);
    let directed = link.listen("directed", &["--bind", "0.0.0.0:5006"]);
    let limited = link.listen("limited", &["--bind", "0.0.0.0:5007"]);
    (link, directed, limited)
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
    if !in_child(module_path!(), NAME, || ()) {
        return;
    }
    let (link, directed, limited) = start(NAME, "interface = \"m0\"\n");
    let n = link.play();

    let stops = link.stop_lines();
    assert_eq!((stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]), (3 * n, 0, 0), "{stops:?}");
    assert_eq!(link.log.count(&["not sending timecode to the"]), 0, "{:#?}", link.log.lines());
    for (name, child) in [("directed", directed), ("limited", limited)] {
        let last = link.assert_locked(name, child, "in rx", "198.51.100.1:");
        println!("measured: {name}: {} frames received in rx", last["received"]);
    }
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
    if !in_child(module_path!(), NAME, || ()) {
        return;
    }
    let (link, directed, limited) = start(NAME, "");
    let n = link.play();

    let line = link.log.wait_for(&["not sending timecode to the broadcast address 255.255.255.255:5007", "interface"]);
    println!("measured: the plugin's log says: {line}");
    assert_eq!(link.log.count(&["not sending timecode to the"]), 1, "one line, not one per frame");
    let stops = link.stop_lines();
    assert_eq!(
        (stops[0]["sent"], stops[0]["send_errors"], stops[0]["bind_errors"]),
        (2 * n, n, 0),
        "every frame refused to the limited broadcast only: {stops:?}"
    );
    let last = link.assert_locked("directed", directed, "in rx", "198.51.100.1:");
    println!("measured: directed: {} frames received in rx", last["received"]);
    link.assert_nothing("limited", limited, "the limited broadcast's port");
}
