//! Reading LTC with x42's libltc (Debian `libltc11`), a decoder nobody here wrote, through
//! `ltc_decode.py` (ctypes, next to this file). Shared by core's encoder test
//! (`core/tests/ltc_interop.rs`) and the plugin's host test (`tests/tests/host/clap_ltc.rs`),
//! which include it with `#[path]`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use osc_timecode_core::FrameRate;

/// The script, next to this file.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../core/tests/interop/ltc_decode.py");

/// How to get libltc.
pub const INSTALL: &str = "apt-get install libltc11";

/// Whether python3 can load libltc (the benchmark skips its LTC rows without it).
pub fn present() -> bool {
    Command::new("python3")
        .args(["-c", "import ctypes; ctypes.CDLL('libltc.so.11')"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the calling test, with the install command, when libltc cannot be loaded.
#[track_caller]
pub fn require_libltc() {
    assert!(present(), "libltc is not installed: this test needs it ({INSTALL}; .ci/run does this)");
}

/// One word libltc decoded.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// `HH:MM:SS:FF`, `;` before the frames when the drop-frame bit is set.
    pub label: String,
    /// The drop-frame bit.
    pub df: bool,
    /// libltc's sample position of the word's first sample (0 to 2 samples late, see
    /// `core/tests/ltc_interop.rs`).
    pub off_start: i64,
    /// libltc's own level estimate, biased low (see the script): for messages.
    pub volume_dbfs: f64,
    /// The word's peak in the signal, dBFS.
    pub peak_dbfs: f64,
    /// The word's 10 bytes, hex, bit 0 first.
    pub bytes: String,
    /// libltc's 8-bit envelope, `min..=max`: for messages.
    pub range: String,
}

/// Decodes mono `samples` at `sample_rate` Hz expecting words at `rate` (the carried label rate).
pub fn decode(samples: &[f32], sample_rate: u32, rate: FrameRate, what: &str) -> Vec<Decoded> {
    let path = temp_path(what);
    let raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    std::fs::write(&path, raw).unwrap_or_else(|e| panic!("could not write {}: {e}", path.display()));
    let out = Command::new("python3")
        .arg(SCRIPT)
        .arg(&path)
        .args([sample_rate.to_string(), rate.num().to_string(), rate.den().to_string()])
        .output()
        .unwrap_or_else(|e| panic!("could not run python3 {SCRIPT}: {e}"));
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{what}: libltc decode failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.lines()
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 10, "{what}: unexpected line {line:?}");
            Decoded {
                label: f[0].to_owned(),
                df: f[1] == "1",
                off_start: f[2].parse().expect("off_start"),
                volume_dbfs: f[5].parse().expect("volume"),
                peak_dbfs: f[9].parse().expect("peak"),
                range: format!("{}..={}", f[7], f[8]),
                bytes: f[6].to_owned(),
            }
        })
        .collect()
}

/// A temporary file for `what`'s samples.
fn temp_path(what: &str) -> PathBuf {
    let name: String = what.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(80).collect();
    std::env::temp_dir().join(format!("osc-timecode-ltc-{}-{name}.f32", std::process::id()))
}
