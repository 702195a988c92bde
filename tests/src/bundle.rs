//! Where the plugin bundles under test come from: built once per test process as a DEBUG bundle
//! (so nice-plug's `assert_process_allocs` is armed) into `target/host-tests`, or taken prebuilt
//! from `$OSC_TIMECODE_BUNDLE_DIR`.
//!
//! The build runs `cargo xtask bundle osc-timecode-plugin` (no `--release`) with
//! `CARGO_TARGET_DIR=<workspace>/target/host-tests`: a target dir of its own, so it never
//! overwrites the release bundles in `target/bundled` and never waits on the lock of the target
//! dir the outer `cargo test` holds.
//!
//! Where the libraries sit inside the bundles depends on the OS (see [`Bundles::in_dir`]): the
//! host tests load the bundle that `cargo xtask bundle` wrote for the platform they run on.
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

/// The bundles' name in `bundler.toml`: the stem of every file name in and around them.
const BUNDLE_NAME: &str = "osc-timecode";

/// Paths to the bundles under test.
#[derive(Debug, Clone)]
pub struct Bundles {
    /// What a CLAP host loads: `osc-timecode.clap`, the shared library itself on Linux and
    /// Windows, the bundle folder on macOS (clack-host finds the library through its
    /// `Info.plist` and gives the plugin the bundle's path, as the CLAP spec asks there).
    pub clap: PathBuf,
    /// The CLAP bundle's shared library: [`Bundles::clap`] itself, or on macOS the executable
    /// inside the bundle folder.
    pub clap_library: PathBuf,
    /// The VST3 module's shared library inside `osc-timecode.vst3` (`Contents/<arch>-linux/…so`,
    /// `Contents/MacOS/…`, `Contents/<arch>-win/….vst3`).
    pub vst3_so: PathBuf,
}

impl Bundles {
    /// The bundles as `cargo xtask bundle` writes them into `dir` for the OS and architecture
    /// these tests are built for: the layout of nice-plug-xtask's `clap_bundle_library_name` and
    /// `vst3_bundle_library_name`, which follow the CLAP and VST3 bundle formats.
    ///
    /// | OS | `clap_library` | `vst3_so` |
    /// |---|---|---|
    /// | Linux (and other Unix but macOS) | `osc-timecode.clap` | `osc-timecode.vst3/Contents/x86_64-linux/osc-timecode.so` |
    /// | macOS | `osc-timecode.clap/Contents/MacOS/osc-timecode` | `osc-timecode.vst3/Contents/MacOS/osc-timecode` |
    /// | Windows | `osc-timecode.clap` | `osc-timecode.vst3/Contents/x86_64-win/osc-timecode.vst3` |
    ///
    /// The branches are chosen at run time from `std::env::consts` (not `#[cfg]`), so the Linux
    /// build type-checks the macOS and Windows ones too.
    ///
    /// The VST3 architecture folder follows the build's architecture (`aarch64-linux`,
    /// `arm_64-win`, …); the error names a platform nice-plug-xtask cannot bundle for.
    pub fn in_dir(dir: &Path) -> Result<Self, String> {
        let macos = std::env::consts::OS == "macos";
        let clap = dir.join(format!("{BUNDLE_NAME}.clap"));
        let clap_library = if macos { clap.join("Contents").join("MacOS").join(BUNDLE_NAME) } else { clap.clone() };
        let contents = dir.join(format!("{BUNDLE_NAME}.vst3")).join("Contents");
        let vst3_so = match (std::env::consts::OS, vst3_arch_dir()) {
            ("macos", _) => contents.join("MacOS").join(BUNDLE_NAME),
            ("windows", Some(arch)) => contents.join(format!("{arch}-win")).join(format!("{BUNDLE_NAME}.vst3")),
            (_, Some(arch)) if cfg!(unix) => contents.join(format!("{arch}-linux")).join(format!("{BUNDLE_NAME}.so")),
            (os, _) => {
                let arch = std::env::consts::ARCH;
                return Err(format!("no VST3 bundle layout for {arch}-{os}: nice-plug-xtask does not bundle for it"));
            }
        };
        Ok(Self { clap, clap_library, vst3_so })
    }
}

/// The architecture part of the VST3 bundle's `Contents/<arch>-<os>` folder on Linux and Windows
/// (the VST3 SDK's names, as nice-plug-xtask writes them), `None` where it has none.
fn vst3_arch_dir() -> Option<&'static str> {
    let windows = cfg!(windows);
    match std::env::consts::ARCH {
        "x86_64" => Some("x86_64"),
        "x86" if windows => Some("x86"),
        "x86" => Some("i386"),
        "aarch64" if windows => Some("arm_64"),
        "aarch64" => Some("aarch64"),
        "riscv64" if !windows => Some("riscv64"),
        _ => None,
    }
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
        let b = Bundles::in_dir(&dir)?;
        if !b.clap_library.is_file() {
            return Err(format!("no CLAP bundle at {}", b.clap_library.display()));
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
        let name = format!("osc-timecode{}", std::env::consts::EXE_SUFFIX);
        Ok(host_tests_target_dir().join("debug").join(name))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout on the platforms CI builds (Linux x86_64 here; macOS and Windows in
    /// `.github/workflows/portable.yml`), as nice-plug-xtask writes it.
    #[test]
    #[cfg(any(
        all(target_os = "linux", target_arch = "x86_64"),
        target_os = "macos",
        all(windows, target_arch = "x86_64")
    ))]
    fn bundle_layout_of_this_platform() {
        let b = Bundles::in_dir(Path::new("bundled")).expect("a known platform");
        let (clap_library, vst3_so) = if cfg!(target_os = "macos") {
            ("osc-timecode.clap/Contents/MacOS/osc-timecode", "osc-timecode.vst3/Contents/MacOS/osc-timecode")
        } else if cfg!(windows) {
            ("osc-timecode.clap", "osc-timecode.vst3/Contents/x86_64-win/osc-timecode.vst3")
        } else {
            ("osc-timecode.clap", "osc-timecode.vst3/Contents/x86_64-linux/osc-timecode.so")
        };
        let under = |p: &str| p.split('/').fold(PathBuf::from("bundled"), |path, part| path.join(part));
        assert_eq!(b.clap, under("osc-timecode.clap"));
        assert_eq!(b.clap_library, under(clap_library));
        assert_eq!(b.vst3_so, under(vst3_so));
    }
}
