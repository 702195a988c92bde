//! Broadcast targets (issue 18): `serve --to` a subnet's broadcast address (routed by its
//! subnet) or the limited broadcast 255.255.255.255 (which needs `--interface`).
//!
//! The broadcasts themselves are only ever sent inside network namespaces the test creates
//! (`unshare -rnm` runs `tests/broadcast.sh`: three namespaces, two veth pairs, TEST-NET-2
//! addresses, all gone when it exits). Without namespaces, only what fails before any socket
//! sends is checked: the limited broadcast without an interface, or with one the machine does
//! not have.

#[path = "util/netns.rs"]
mod netns;
mod util;

use netns::{assert_locks, assert_silent, read, require_namespaces, run_script};
use util::osc_timecode;

#[test]
fn the_limited_broadcast_needs_an_interface_and_a_missing_one_is_one_line() {
    let line = osc_timecode("bc_serve_no_interface")
        .args(["serve", "--to", "255.255.255.255:5007", "--listen", "127.0.0.1:0"])
        .fails();
    assert_eq!(line, "broadcast to 255.255.255.255:5007 needs --interface NAME|ADDRESS: the interface to send it on");
    // Beside other targets too: nothing is sent to any of them.
    let line = osc_timecode("bc_serve_no_interface_beside")
        .args(["serve", "--to", "127.0.0.1:5006", "--to", "255.255.255.255:5007", "--listen", "127.0.0.1:0"])
        .fails();
    assert!(line.starts_with("broadcast to 255.255.255.255:5007 needs --interface"), "{line}");
    let line = osc_timecode("bc_serve_missing")
        .args(["serve", "--to", "255.255.255.255:5007", "--interface", "osctc-none0", "--listen", "127.0.0.1:0"])
        .fails();
    assert!(line.starts_with("no network interface named osctc-none0 on this machine (it has "), "{line}");
}

/// serve in one namespace, two links to two others (s0 198.51.100.1/25 to nL's l0, s1
/// 198.51.100.129/25 to nO's l1), receivers bound to 0.0.0.0 at their port:
/// - `--to 198.51.100.127:5006` without `--interface` (s0's subnet's broadcast, which no
///   address configured: the kernel's own) reaches nL's listen, which locks on s0's address,
///   and not nO's at the same port; the same serve's `--to 198.51.100.255:5008` (s1's) reaches
///   nO's listen at 5008, the control that nO's receivers get what is theirs;
/// - `--to 255.255.255.255:5007 --interface s0` (by name, then by its address) reaches nL's
///   listen only: it left on s0 and no other link, from s0's address;
/// - no send errors (`SO_BROADCAST` is set: without it the OS refuses each datagram).
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs a network namespace: unshare (util-linux) with user namespaces, ip (apt-get install iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn broadcast_reaches_its_subnet_and_the_limited_one_its_interface_only() {
    require_namespaces();
    for interface in ["s0", "198.51.100.1"] {
        in_namespaces(interface);
    }
}

/// One run of `tests/broadcast.sh` with the limited broadcast's `--interface`, and its checks.
fn in_namespaces(interface: &str) {
    let out = run_script("broadcast", &["4".as_ref(), interface.as_ref()]);

    for serve in ["serve_a", "serve_b"] {
        let err = read(out.join(format!("{serve}.err")));
        assert_eq!(err.lines().count(), 1, "{serve}: only its startup line (no send errors):\n{err}");
    }
    let right = assert_locks(&out, "right", "nL at 5006", "198.51.100.1:");
    assert_silent(&out, "other", "other");
    assert_locks(&out, "control", "nO at 5008", "198.51.100.129:");
    let limited = assert_locks(&out, "limited", "nL at 5007", "198.51.100.1:");
    assert_silent(&out, "limited_other", "limited_other");
    println!(
        "measured: directed broadcast: {} frames received on s0's link; limited broadcast on --interface \
         {interface}: {}",
        right.last().unwrap()["received"],
        limited.last().unwrap()["received"]
    );
}
