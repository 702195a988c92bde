//! Where the plugin bundles under test come from: built once per test process as a DEBUG bundle
//! (so nice-plug's `assert_process_allocs` is armed) into `target/host-tests`, or taken prebuilt
//! from `$OSC_TIMECODE_BUNDLE_DIR`.
//!
//! The build runs `cargo xtask bundle osc-timecode-plugin` (no `--release`) with
//! `CARGO_TARGET_DIR=<workspace>/target/host-tests`: a target dir of its own, so it never
//! overwrites the release bundles in `target/bundled` and never waits on the lock of the target
//! dir the outer `cargo test` holds.
//!
//! The same `OnceLock` also points the plugin's machine config (`OSC_TIMECODE_CONFIG`) at a file
//! of our own with no targets, so a fresh instance sends nowhere until a test gives it its own
//! loopback receiver, whatever config the machine has.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Environment variable: a directory holding prebuilt `osc-timecode.clap` and
/// `osc-timecode.vst3`; when set, nothing is built.
pub const BUNDLE_DIR_ENV: &str = "OSC_TIMECODE_BUNDLE_DIR";

/// The plugin's config-file override (see `plugin/src/settings.rs`).
pub const PLUGIN_CONFIG_ENV: &str = "OSC_TIMECODE_CONFIG";

/// The CLAP plugin id.
pub const CLAP_ID: &str = "org.osc-timecode.osc-timecode";

/// The plugin's display name.
pub const PLUGIN_NAME: &str = "OSC Timecode";

/// Paths to the bundles under test.
#[derive(Debug, Clone)]
pub struct Bundles {
    /// `osc-timecode.clap` (a plain shared library on Linux).
    pub clap: PathBuf,
    /// The VST3 module's shared library inside `osc-timecode.vst3`.
    pub vst3_so: PathBuf,
}

/// The workspace root (the parent of this package's directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The bundles, built (once per process) if `$OSC_TIMECODE_BUNDLE_DIR` is not set. Panics with
/// the build output if the build fails (in every test that asks, without building again).
pub fn bundles() -> &'static Bundles {
    static BUNDLES: OnceLock<Result<Bundles, String>> = OnceLock::new();
    let result = BUNDLES.get_or_init(|| {
        isolate_plugin_config();
        let dir = match std::env::var_os(BUNDLE_DIR_ENV).filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => build_debug_bundles()?,
        };
        let b = Bundles {
            clap: dir.join("osc-timecode.clap"),
            vst3_so: dir.join("osc-timecode.vst3/Contents/x86_64-linux/osc-timecode.so"),
        };
        if !b.clap.is_file() {
            return Err(format!("no CLAP bundle at {}", b.clap.display()));
        }
        if !b.vst3_so.is_file() {
            return Err(format!("no VST3 module at {}", b.vst3_so.display()));
        }
        Ok(b)
    });
    match result {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

/// Runs the debug bundle build and returns the `bundled` directory, or why it failed.
fn build_debug_bundles() -> Result<PathBuf, String> {
    let target_dir = host_tests_target_dir();
    let started = std::time::Instant::now();
    let output = inner_cargo(&["xtask", "bundle", "osc-timecode-plugin"])?;
    if !output.status.success() {
        return Err(format!(
            "`cargo xtask bundle osc-timecode-plugin` (CARGO_TARGET_DIR={}) failed with {}\n--- stdout\n{}\n--- stderr\n{}",
            target_dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        ));
    }
    eprintln!("[harness] built debug bundles in {:.1?}", started.elapsed());
    Ok(target_dir.join("bundled"))
}

/// Points the plugin's machine config at a file with no targets (see the module docs).
fn isolate_plugin_config() {
    let dir = std::env::temp_dir().join(format!("osc-timecode-host-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir for the plugin config");
    let path = dir.join("config.toml");
    std::fs::write(&path, "[plugin]\ntargets = []\nkeepalive_ms = 1000\noutput_latency_ms = 0.0\n")
        .expect("write the plugin config");
    // SAFETY: called once, inside the `OnceLock` initialiser that every test goes through before
    // any plugin library is loaded; other test threads only read the environment through std,
    // which serialises access with its own lock.
    unsafe { std::env::set_var(PLUGIN_CONFIG_ENV, &path) };
}

/// The `osc-timecode` client binary (debug), built once per test process into
/// `target/host-tests` like the bundles, for tests where the client talks to the loaded plugin.
/// Panics with the build output if the build fails.
pub fn client_binary() -> &'static Path {
    static CLIENT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = CLIENT.get_or_init(|| {
        let output = inner_cargo(&["build", "-p", "osc-timecode-client", "--bin", "osc-timecode"])?;
        if !output.status.success() {
            return Err(format!(
                "`cargo build -p osc-timecode-client` failed with {}\n--- stderr\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(host_tests_target_dir().join("debug").join("osc-timecode"))
    });
    match result {
        Ok(path) => path,
        Err(e) => panic!("{e}"),
    }
}

/// `<workspace>/target/host-tests`: the inner builds' target dir, apart from the outer build's.
fn host_tests_target_dir() -> PathBuf {
    workspace_root().join("target").join("host-tests")
}

/// Runs `cargo ARGS` in the workspace with [`host_tests_target_dir`], and returns its output.
fn inner_cargo(args: &[&str]) -> Result<std::process::Output, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", host_tests_target_dir())
        // The outer `cargo test` sets these for the test binary; they must not leak into the
        // inner build (they would point it at the outer build's settings).
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()
        .map_err(|e| format!("could not run {cargo:?} {}: {e}", args.join(" ")))
}
