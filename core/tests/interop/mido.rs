//! Reading MTC with mido 1.3.3 (PyPI), a decoder nobody here wrote, through `mtc_check.py` (next to
//! this file). Shared by core's encoder test (`core/tests/mtc_interop.rs`) and the plugin's host
//! and Ardour tests (`tests/tests/mtc/mod.rs`), which include it with `#[path]`.

use std::io::Write;
use std::process::{Command, Stdio};

/// The script, next to this file.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/interop/mtc_check.py");

/// How to install mido.
pub const INSTALL: &str = "python3 -m pip install mido==1.3.3";

/// Fails the calling test, with the install command, unless `python3 -c "import mido"` works.
#[track_caller]
pub fn require_mido() {
    let present = Command::new("python3")
        .args(["-c", "import mido"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(present, "mido is not installed: this test needs it ({INSTALL}; .ci/run does this)");
}

/// A message's bytes as the script reads them: hex, no spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs the checker on `input` (its format is in the script); its standard output, or a failure
/// naming `what` with the script's standard error and the input.
pub fn check(input: &str, what: &str) -> String {
    let mut child = Command::new("python3")
        .arg(SCRIPT)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("could not run python3 {SCRIPT}: {e}"));
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write to the checker");
    let out = child.wait_with_output().expect("checker output");
    assert!(out.status.success(), "{what}: mido check failed: {}\n{input}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}
