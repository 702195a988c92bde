//! The window's "Find receivers" against an independent DNS-SD peer (issue 18): python-zeroconf
//! (`client/tests/discover_peer.py`) registers a receiver and a TXT-less OSC service; the
//! window's finder ([`Finder`], called directly, not through the GUI: the same browse on the same
//! worker thread the button starts) lists the receiver with its address and port, and its "Add"
//! makes a valid target, refused the second time with the message typing it gives.
//!
//! mDNS is multicast, so the test runs this same test again in a child process inside a network
//! namespace it creates (`unshare -rn`: a private loopback with multicast on, nothing else, gone
//! when the child ends), with the peer registered there first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use osc_timecode_plugin::editor::edits::ListEdit;
use osc_timecode_plugin::editor::receivers::{BROWSE_FOR, Finder, Listing};
use osc_timecode_plugin::settings::values::Targets;

/// Set in the child's environment: there, the test browses.
const CHILD_ENV: &str = "OSC_TIMECODE_RECEIVERS_CHILD";

/// The hint of the ignored test, and of its failure when a tool is missing.
const NEEDS: &str = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0, \
     unshare (util-linux) with user namespaces, ip (apt-get install iproute2)";

/// The namespace's setup: loopback up, multicast on, the multicast routes through it.
const SETUP: &str = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo";

/// In the namespace: the peer registers (for 60 s at most), then this test runs in the child;
/// the peer is stopped whatever the child's outcome.
const SCRIPT: &str = r#"
python3 "$PEER" register 60 >"$OUT" & R=$!
i=0
until grep -q registered "$OUT"; do i=$((i + 1)); [ $i -lt 300 ] || { echo "the peer did not register" >&2; kill $R; exit 1; }; sleep 0.1; done
"$EXE" "$TEST" --exact --nocapture --include-ignored --test-threads=1 && rc=0 || rc=$?
kill $R
wait $R || true
exit $rc
"#;

#[test]
#[cfg_attr(
    target_os = "linux",
    ignore = "needs python-zeroconf and a network namespace: python3 -m pip install zeroconf==0.147.0; unshare with user namespaces, ip (iproute2)"
)]
#[cfg_attr(not(target_os = "linux"), ignore = "network namespaces are Linux only")]
fn find_receivers_lists_an_independent_receiver_and_adds_it_as_a_target() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return browse_in_the_namespace();
    }
    let works = |cmd: &mut Command| cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(
        works(Command::new("unshare").args(["-rn", "sh", "-c", SETUP])),
        "unshare -rn with ip does not work here: {NEEDS}"
    );
    assert!(
        works(Command::new("python3").args(["-c", "import zeroconf"])),
        "python-zeroconf is not installed: {NEEDS}"
    );
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../client/tests/discover_peer.py");
    assert!(peer.is_file(), "{} is missing", peer.display());
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("receivers-peer.out");
    let _ = std::fs::remove_file(&out);
    let run = Command::new("unshare")
        .args(["-rn", "sh", "-c", &format!("set -eu\n{SETUP}\n{SCRIPT}")])
        .env("EXE", std::env::current_exe().expect("this test binary"))
        .env("TEST", "find_receivers_lists_an_independent_receiver_and_adds_it_as_a_target")
        .env("PEER", &peer)
        .env("OUT", &out)
        .env(CHILD_ENV, "1")
        .output()
        .expect("could not run unshare");
    let output = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the child in the namespace failed ({}):\n{output}", run.status);
    // `1 passed`: the filter found the test (0 passed would be a silent pass).
    assert!(output.contains("test result: ok. 1 passed"), "{output}");
}

/// In the namespace, with the peer registered: the finder's browse, polled as the window polls.
fn browse_in_the_namespace() {
    let mut finder = Finder::default();
    assert!(finder.start(), "a browse starts");
    assert!(finder.busy());
    let deadline = Instant::now() + BROWSE_FOR + Duration::from_secs(10);
    while !finder.poll() {
        assert!(Instant::now() < deadline, "the browse never ended: {finder:?}");
        std::thread::sleep(Duration::from_millis(16));
    }
    let listing: Listing = match finder.last() {
        Some(Ok(listing)) => listing.clone(),
        other => panic!("the browse failed: {other:?}"),
    };
    let rows: Vec<(&str, &str, String)> =
        listing.rows.iter().map(|r| (r.name.as_str(), r.kind(), r.endpoint.to_string())).collect();
    assert_eq!(
        rows,
        [
            ("Stage Right Receiver", "receiver", "127.0.0.1:9001".to_owned()),
            ("TouchOSC Bridge", "other OSC service", "127.0.0.1:9002".to_owned()),
        ]
    );
    assert_eq!(listing.summary(), "1 receiver address found.");

    // "Add": a valid target, through the typed check; twice: the duplicate message.
    let mut targets = Targets::default();
    let edit = finder.add(&listing.rows[0], &targets).expect("a valid target");
    assert_eq!(edit, ListEdit::Add("127.0.0.1:9001".parse().expect("a target")));
    edit.apply(&mut targets).expect("added");
    assert_eq!(targets.iter().map(ToString::to_string).collect::<Vec<_>>(), ["127.0.0.1:9001"]);
    assert!(finder.add(&listing.rows[0], &targets).is_none());
    let refusal = finder.refusal(listing.rows[0].endpoint).expect("the reason");
    assert_eq!(refusal.to_string(), "127.0.0.1:9001 is already in the list");
}
