//! Multicast and interface binding (issue 18): `serve --to GROUP:PORT --interface`, `listen
//! --bind GROUP:PORT --interface`.
//!
//! The multicast stream itself is only ever sent inside network namespaces the test creates
//! (`unshare -rnm` runs `tests/multicast.sh`: two namespaces, two veth pairs, TEST-NET-2
//! addresses, all gone when it exits). Without namespaces, only what fails before any socket
//! sends is checked: a multicast target or bind without an interface, an interface the machine
//! does not have.

#[path = "util/netns.rs"]
mod netns;
mod util;

use std::path::Path;
use std::process::Command;

use netns::{assert_locks, assert_silent, json_lines, read, run_script, works};
use util::osc_timecode;

#[test]
fn multicast_needs_an_interface_and_a_missing_one_is_one_line() {
    let line = osc_timecode("mc_serve_no_interface")
        .args(["serve", "--to", "239.192.50.6:5006", "--listen", "127.0.0.1:0"])
        .fails();
    assert_eq!(line, "multicast to 239.192.50.6:5006 needs --interface NAME|ADDRESS: the interface to send it on");
    let line = osc_timecode("mc_listen_no_interface").args(["listen", "--bind", "239.192.50.6:5006"]).fails();
    assert_eq!(
        line,
        "listening to the multicast group 239.192.50.6:5006 needs --interface NAME|ADDRESS: the interface to join it on"
    );
    let missing = "no network interface named osctc-none0 on this machine (it has ";
    for (name, args) in [
        (
            "mc_serve_missing",
            &["serve", "--to", "239.192.50.6:5006", "--interface", "osctc-none0", "--listen", "127.0.0.1:0"][..],
        ),
        ("mc_listen_missing", &["listen", "--bind", "239.192.50.6:5006", "--interface", "osctc-none0"][..]),
        ("mc_listen_unicast_missing", &["listen", "--bind", "0.0.0.0:0", "--interface", "osctc-none0"][..]),
    ] {
        let line = osc_timecode(name).args(args).fails();
        assert!(line.starts_with(missing), "{args:?}: {line}");
    }
    // From the config file too.
    let line = osc_timecode("mc_config_missing")
        .write_config("[client]\ninterface = \"osctc-none0\"\nttl = 2\n")
        .args(["serve", "--to", "239.192.50.6:5006", "--listen", "127.0.0.1:0"])
        .fails();
    assert!(line.starts_with(missing), "{line}");
    // A scope name is resolved as --interface is.
    let line = osc_timecode("mc_scope_missing").args(["listen", "--bind", "[fe80::1%osctc-none0]:5006"]).fails();
    assert!(line.contains("the scope of [fe80::1%osctc-none0]:5006: no network interface named osctc-none0"), "{line}");
    for ttl in ["0", "256", "x"] {
        let line = osc_timecode("mc_ttl").args(["serve", "--ttl", ttl]).fails();
        assert!(line.contains("1 to 255"), "--ttl {ttl}: {line}");
    }
    // An address no interface holds.
    let line = osc_timecode("mc_listen_address")
        .args(["listen", "--bind", "239.192.50.6:5006", "--interface", "198.51.100.77"])
        .fails();
    assert!(line.starts_with("no network interface of this machine has the address 198.51.100.77"), "{line}");
}

/// With --wait-for-port, an interface not there (yet) is waited for like a taken port: one
/// line, then the command goes on until it ends (here --duration).
#[test]
fn wait_for_port_waits_for_a_missing_interface() {
    let run = osc_timecode("mc_wait_interface")
        .args(["listen", "--bind", "239.192.50.6:5006", "--interface", "osctc-none0", "--wait-for-port"])
        .args(["--duration", "1.5", "--json"])
        .run();
    run.assert_no_panic();
    assert_eq!(run.output.status.code(), Some(0), "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line while waiting: {lines:?}");
    assert!(
        lines[0].starts_with("osc-timecode: waiting for the interface: no network interface named osctc-none0")
            && lines[0].ends_with("; retrying every second"),
        "{lines:?}"
    );
}

/// Fails with the hint when user and network namespaces or python3 are not there.
fn require_namespaces() {
    netns::require_namespaces();
    assert!(
        works(Command::new("python3").args(["-c", "import socket, json"])),
        "python3 is not installed: this test reads the TTL with it (apt-get install python3; .ci/run does this)"
    );
}

/// serve in one namespace sends to 239.192.50.6 (ports 5006, 5007) and ff02::6a (5008) on its
/// interface s0 (named, then by its address); in the other namespace, across two veth pairs:
/// - a listen joined on l0 (s0's peer) locks on serve, whose source is s0's address (the
///   sync exchange works too: serve allows the link's addresses);
/// - a listen joined on l1 gets nothing, although the group reaches the namespace on l0 and
///   another socket there joined it: a plain socket on that port without a join (the control)
///   does get it, so the silence is `IP_MULTICAST_ALL` off and the join by interface;
/// - the datagrams' IP TTL is 1, or `--ttl`'s (read with a raw socket);
/// - IPv6: a listen joined to ff02::6a on l0 locks on serve's link-local address.
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs a network namespace: unshare (util-linux) with user namespaces, ip (apt-get install iproute2), python3"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn multicast_reaches_the_listen_joined_on_its_interface_only() {
    require_namespaces();
    // serve's interface by name with the default TTL, then by address with --ttl 4.
    for (interface, ttl) in [("s0", None), ("198.51.100.1", Some(4))] {
        in_namespaces(interface, ttl);
    }
}

/// One run of `tests/multicast.sh` with serve's `--interface` and `--ttl`, and its checks.
fn in_namespaces(interface: &str, ttl: Option<u32>) {
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/multicast_probe.py");
    let ttl_arg = ttl.map(|t| t.to_string());
    let mut args = vec![probe.as_os_str(), "4".as_ref(), interface.as_ref()];
    args.extend(ttl_arg.as_deref().map(std::ffi::OsStr::new));
    let out = run_script("multicast", &args);

    let serve_err = read(out.join("serve.err"));
    assert_eq!(serve_err.lines().count(), 1, "only serve's startup line (no send errors):\n{serve_err}");

    let right = assert_locks(&out, "right", "the listen joined on l0", "198.51.100.1:");
    let last = right.last().unwrap();
    println!(
        "measured: --interface {interface}: joined on l0, {} frames received, sync {}",
        last["received"], last["sync"]
    );

    assert_silent(&out, "wrong", "joined on l1");
    let control: serde_json::Value = serde_json::from_str(&read(out.join("plain.json"))).unwrap();
    assert!(
        control["received"].as_u64().unwrap() > 0,
        "the control (a plain socket on the same port, no join) gets the group: {control}"
    );

    let want = ttl.unwrap_or(1);
    let seen: serde_json::Value = serde_json::from_str(&read(out.join("ttl.json"))).unwrap();
    assert_eq!(seen["ttl"], want, "TTL {want} (--ttl {ttl:?}): {seen}");
    assert_eq!(seen["source"], "198.51.100.1", "{seen}");

    let v6 = json_lines(&out.join("v6.json"));
    let locked: Vec<_> = v6.iter().filter(|v| v["state"] == "locked").collect();
    assert!(!locked.is_empty(), "the IPv6 listen locks: {v6:?}\n{}", read(out.join("v6.err")));
    for v in &locked {
        assert!(v["master"].as_str().unwrap().starts_with("[fe80::1%"), "s0's link-local address: {v}");
    }
    assert_eq!(v6.last().unwrap()["ignored"].as_u64(), Some(0), "one source throughout");
}
