//! What the client's network-namespace tests share (`broadcast.rs`, `multicast.rs`,
//! `discover.rs`): the check that namespaces work here, running a script of `tests/` under
//! `unshare -rnm` (its namespaces, links and programs all gone when it exits), and reading and
//! checking what its listens wrote.

#![allow(dead_code, reason = "each test binary uses its part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Whether `cmd` runs and succeeds, its output discarded.
pub fn works(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Fails with the hint when user and network namespaces with veth pairs are not there.
pub fn require_namespaces() {
    assert!(
        works(Command::new("unshare").args(["-rnm", "ip", "link", "add", "x0", "type", "veth", "peer", "name", "x1"])),
        "unshare -rnm with ip veth pairs does not work here: this test needs user and network namespaces \
         (util-linux's unshare, iproute2's ip, /proc/sys/user/max_user_namespaces > 0; .ci/run installs them)"
    );
}

/// A file's text; panics naming it.
pub fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The JSON lines of one listen's standard output.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", path.display()))).collect()
}

/// Runs `tests/SCRIPT.sh` as `unshare -rnm sh SCRIPT.sh BIN OUT ARGS...` (the binary under test,
/// a fresh output directory, returned): it must succeed and write `done` in `OUT` last.
pub fn run_script(script: &str, args: &[&std::ffi::OsStr]) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(script);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/{script}.sh"));
    let run = Command::new("unshare")
        .arg("-rnm")
        .arg("sh")
        .arg(&path)
        .arg(&*crate::util::BIN)
        .arg(&out)
        .args(args)
        .output()
        .expect("could not run unshare");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{script}.sh failed: {}\n{stderr}", run.status);
    assert_eq!(read(out.join("done")).trim(), "done", "{stderr}");
    out
}

/// The lines of the listen `name` in `out` (`NAME.json`, `NAME.err`), which must have locked on
/// a master whose address starts with `source` (`what` says where it listens, for the messages)
/// and taken nothing for ignored or invalid.
pub fn assert_locks(out: &Path, name: &str, what: &str, source: &str) -> Vec<serde_json::Value> {
    let lines = json_lines(&out.join(format!("{name}.json")));
    let locked: Vec<_> = lines.iter().filter(|v| v["state"] == "locked").collect();
    assert!(!locked.is_empty(), "{name}: {what} locks: {lines:?}\n{}", read(out.join(format!("{name}.err"))));
    for v in &locked {
        let master = v["master"].as_str().unwrap();
        assert!(master.starts_with(source), "{name}: the source is {source}: {v}");
    }
    let last = lines.last().unwrap();
    assert_eq!((last["ignored"].as_u64(), last["invalid"].as_u64()), (Some(0), Some(0)), "{name}: {last}");
    lines
}

/// The listen `name` in `out` ran and got nothing at all (`what` says where it listens).
pub fn assert_silent(out: &Path, name: &str, what: &str) {
    let lines = json_lines(&out.join(format!("{name}.json")));
    assert!(!lines.is_empty(), "{name}: it ran: {}", read(out.join(format!("{name}.err"))));
    for v in &lines {
        assert_eq!((v["received"].as_u64(), v["ignored"].as_u64()), (Some(0), Some(0)), "{what}: nothing: {v}");
        assert_eq!(v["state"], "waiting", "{name}: {v}");
    }
}
