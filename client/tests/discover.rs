//! DNS-SD discovery (issue 18): `serve --advertise`, `listen --advertise`, `discover`.
//!
//! mDNS is multicast, so every advertisement and browse here runs inside a network namespace
//! the test creates (`unshare -rn`: a private loopback with multicast on, nothing else, gone
//! when the shell ends). The other side is an independent implementation, python-zeroconf
//! (`tests/discover_peer.py`): it must see what we advertise, and `discover` must see what it
//! registers. Outside the namespace only what fails before any socket opens is checked.

#[path = "util/netns.rs"]
mod netns;
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use netns::works;
use serde_json::Value;
use util::osc_timecode;

/// The hint of the ignored tests, and of their failure when a tool is missing.
const NEEDS: &str = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0, \
     unshare (util-linux) with user namespaces, ip (apt-get install iproute2)";

/// The namespace's setup: loopback up, multicast on, the multicast routes through it.
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo";

#[test]
fn bad_flags_are_one_line_before_any_socket() {
    let line = osc_timecode("discover_bad_seconds").args(["discover", "--seconds", "soon"]).fails();
    assert!(line.contains("--seconds"), "{line}");
    let line = osc_timecode("discover_bad_flag").args(["discover", "--advertise"]).fails();
    assert!(line.contains("--advertise"), "{line}");
    for command in ["serve", "listen"] {
        let help = osc_timecode("advertise_help").args([command, "--help"]).stdout();
        assert!(help.contains("--advertise [<NAME>]") && help.contains("_osc._udp"), "{command}: {help}");
    }
}

/// Fails with the hint unless user and network namespaces with a multicast loopback and
/// python-zeroconf are there.
fn require_tools() {
    assert!(
        works(Command::new("unshare").args(["-rn", "sh", "-c", SETUP])),
        "unshare -rn with ip does not work here: {NEEDS}"
    );
    assert!(
        works(Command::new("python3").args(["-c", "import zeroconf"])),
        "python-zeroconf is not installed: {NEEDS}"
    );
}

/// Runs `script` under `sh` in a new network namespace with `BIN` (the binary), `PEER` (the
/// python peer) and `OUT` (an empty directory, returned) in its environment.
fn in_namespace(test: &str, script: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/discover_peer.py");
    let run = Command::new("unshare")
        .args(["-rn", "sh", "-c", &format!("set -eu\n{SETUP}\n{script}")])
        .env("BIN", &*util::BIN)
        .env("PEER", &peer)
        .env("OUT", &out)
        .output()
        .expect("could not run unshare");
    assert!(
        run.status.success(),
        "{test}: {}\n{}{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

fn read(out: &Path, file: &str) -> String {
    netns::read(out.join(file))
}

/// python-zeroconf browsing sees serve's and listen's services, with their TXT records and the
/// bound ports, and nothing of a serve without --advertise; once they stop, nothing.
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0; unshare with user namespaces, ip (iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn an_independent_browser_sees_what_we_advertise() {
    require_tools();
    let out = in_namespace(
        "discover_advertise",
        r#"
"$BIN" serve --listen 127.0.0.1:5100 --to 127.0.0.1:5101 --advertise "Test Master" 2>"$OUT/serve.err" & S=$!
"$BIN" serve --listen 127.0.0.1:5200 --to 127.0.0.1:5201 2>"$OUT/plain.err" & P=$!
"$BIN" listen --bind 127.0.0.1:5101 --advertise --json >/dev/null 2>"$OUT/listen.err" & L=$!
python3 "$PEER" browse 4 >"$OUT/browse.json"
kill -INT $S $P $L
wait $S $P $L
python3 "$PEER" browse 2 >"$OUT/after.json"
"#,
    );
    let found: Value = serde_json::from_str(&read(&out, "browse.json")).unwrap();
    let found = found.as_object().unwrap();
    assert_eq!(found.len(), 2, "serve and listen, not the serve without --advertise: {found:?}");
    let master = &found["Test Master._osc._udp.local."];
    assert_eq!(master["port"], 5100, "{master}");
    assert_eq!(master["addresses"], serde_json::json!(["127.0.0.1"]), "{master}");
    assert_eq!(
        master["txt"],
        serde_json::json!({"txtvers": "1", "role": "master", "proto": "osc-timecode/1", "timecode": "/sync/timecode"})
    );
    let (name, receiver) = found.iter().find(|(name, _)| name.starts_with("osc-timecode listen on ")).unwrap();
    assert!(name.ends_with("._osc._udp.local."), "{name}");
    assert_eq!(receiver["port"], 5101, "{receiver}");
    assert_eq!(receiver["txt"]["role"], "receiver", "{receiver}");
    assert_eq!(receiver["txt"]["proto"], "osc-timecode/1", "{receiver}");

    let serve_err = read(&out, "serve.err");
    assert!(
        serve_err.lines().next().unwrap().starts_with(
            "osc-timecode: advertising \"Test Master\" (master _osc._udp) at 127.0.0.1:5100 on loopback only: \
             seen on this machine, nowhere else"
        ),
        "{serve_err}"
    );
    assert!(!read(&out, "plain.err").contains("advertising"), "no --advertise, nothing said");
    assert!(read(&out, "listen.err").contains("(receiver _osc._udp) at 127.0.0.1:5101 on loopback only"));
    assert_eq!(read(&out, "after.json").trim(), "{}", "withdrawn when they stop");
}

/// `discover` lists what python-zeroconf registers (a receiver, a service without TXT) and a
/// serve --advertise, as lines and as JSON; with nothing advertised it says so and exits 0.
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0; unshare with user namespaces, ip (iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn discover_lists_an_independent_peer() {
    require_tools();
    let out = in_namespace(
        "discover_browse",
        r#"
"$BIN" discover --seconds 1 >"$OUT/none.txt" 2>"$OUT/none.err"
python3 "$PEER" register 30 >"$OUT/peer.out" & R=$!
"$BIN" serve --listen 127.0.0.1:5100 --to 127.0.0.1:5101 --advertise "Test Master" 2>"$OUT/serve.err" & S=$!
i=0
until grep -q registered "$OUT/peer.out"; do i=$((i + 1)); [ $i -lt 300 ] || { echo "the peer did not register" >&2; exit 1; }; sleep 0.1; done
"$BIN" discover --seconds 4 --json >"$OUT/found.json"
"$BIN" discover >"$OUT/found.txt" 2>"$OUT/found.err"
kill -INT $S
kill $R
wait $S || true
wait $R || true
"#,
    );
    assert_eq!(read(&out, "none.txt"), "");
    assert_eq!(read(&out, "none.err"), "osc-timecode: no _osc._udp service found in 1 s\n");
    assert_eq!(
        read(&out, "found.txt"),
        "Stage Right Receiver: receiver at 127.0.0.1:9001 (osc-timecode/1)\n\
         Test Master: master at 127.0.0.1:5100 (osc-timecode/1)\n\
         TouchOSC Bridge: other OSC service at 127.0.0.1:9002\n"
    );
    assert_eq!(read(&out, "found.err"), "");
    let json: Vec<Value> = read(&out, "found.json").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        json,
        [
            serde_json::json!({"name": "Stage Right Receiver", "role": "receiver", "addresses": ["127.0.0.1"],
                "port": 9001, "endpoints": ["127.0.0.1:9001"], "proto": "osc-timecode/1"}),
            serde_json::json!({"name": "Test Master", "role": "master", "addresses": ["127.0.0.1"],
                "port": 5100, "endpoints": ["127.0.0.1:5100"], "proto": "osc-timecode/1"}),
            serde_json::json!({"name": "TouchOSC Bridge", "role": "other", "addresses": ["127.0.0.1"],
                "port": 9002, "endpoints": ["127.0.0.1:9002"], "proto": null}),
        ]
    );
}

/// An advertisement covers the bound address only: serve on one veth end's address is seen at
/// that address alone, serve on 0.0.0.0 at every IPv4 address of the namespace. (Each has a host
/// name of its own, so the two address sets do not merge.)
#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0; unshare with user namespaces, ip (iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn advertised_on_the_bound_address_only() {
    require_tools();
    let out = in_namespace(
        "discover_scope",
        r#"
ip link add v0 type veth peer name v1
ip addr add 198.51.100.1/25 dev v0
ip addr add 198.51.100.130/25 dev v1
ip link set v0 up
ip link set v1 up
"$BIN" serve --listen 198.51.100.1:5100 --to 127.0.0.1:5101 --advertise "On v0" 2>"$OUT/v0.err" & S=$!
"$BIN" serve --listen 0.0.0.0:5300 --to 127.0.0.1:5301 --advertise "Everywhere" 2>"$OUT/all.err" & A=$!
python3 "$PEER" browse 4 >"$OUT/browse.json"
kill -INT $S $A
wait $S $A
"#,
    );
    let found: Value = serde_json::from_str(&read(&out, "browse.json")).unwrap();
    assert_eq!(found["On v0._osc._udp.local."]["addresses"], serde_json::json!(["198.51.100.1"]), "{found}");
    assert_eq!(found["On v0._osc._udp.local."]["port"], 5100, "{found}");
    assert_eq!(
        found["Everywhere._osc._udp.local."]["addresses"],
        serde_json::json!(["127.0.0.1", "198.51.100.1", "198.51.100.130"]),
        "{found}"
    );
    assert_eq!(
        read(&out, "v0.err").lines().next(),
        Some("osc-timecode: advertising \"On v0\" (master _osc._udp) at 198.51.100.1:5100")
    );
    assert!(read(&out, "all.err").starts_with(
        "osc-timecode: advertising \"Everywhere\" (master _osc._udp) at 0.0.0.0:5300 on every interface\n"
    ));
}
