//! `cargo xtask bundle <package> [--release]`: builds the `.clap` and `.vst3` bundles named in
//! `bundler.toml` into `target/bundled/` (nice-plug-xtask).
//!
//! `cargo xtask bench [--quick] [--only 1,2,4,5,6,7,8,9,10,11] [--out FILE]`: builds what the benchmarks
//! need and runs them, writing `BENCHMARKS.md` (see [`bench()`]).
//!
//! `cargo xtask dist`: builds the release bundles and client and packs them with the README,
//! LICENSE, CHANGELOG, man pages and shell completions into
//! `target/dist/osc-timecode-VERSION-ARCH-OS.tar.gz` (see the `dist` module).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use nice_plug_xtask::Result;

mod dist;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("dist") if args.len() == 1 => dist::dist(),
        Some("dist") => Err(std::io::Error::other("usage: cargo xtask dist (no options)").into()),
        _ => nice_plug_xtask::main(),
    }
}

/// The bench run, step by step:
/// 1. the RELEASE bundles (`cargo xtask bundle osc-timecode-plugin --release`), copied to
///    `target/bench/bundles` so the run times exactly what was just built;
/// 2. the DEBUG bundles into `target/host-tests/bundled`, as the host tests build them (their
///    `assert_process_allocs` proves `process()` never allocates);
/// 3. the release `osc-timecode` client and the release `bench` binary (`tests/src/bin`);
/// 4. `bench`, which measures and writes `BENCHMARKS.md`; its exit status is ours.
///
/// No nested lock is taken: run it as `flock /tmp/osc-build.lock cargo xtask bench` on a shared
/// machine, so no other build runs while it measures.
fn bench(args: &[String]) -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let root = std::env::current_dir()?;
    let target = root.join("target");

    eprintln!("[xtask bench] release bundles");
    nice_plug_xtask::main_with_args("cargo xtask", ["bundle", "osc-timecode-plugin", "--release"].map(String::from))?;
    let bundles = target.join("bench").join("bundles");
    if bundles.exists() {
        std::fs::remove_dir_all(&bundles)?;
    }
    copy_tree(&target.join("bundled").join("osc-timecode.clap"), &bundles.join("osc-timecode.clap"))?;
    copy_tree(&target.join("bundled").join("osc-timecode.vst3"), &bundles.join("osc-timecode.vst3"))?;

    eprintln!("[xtask bench] debug bundles (allocation proof)");
    let host_tests = target.join("host-tests");
    run(cargo().args(["xtask", "bundle", "osc-timecode-plugin"]).env("CARGO_TARGET_DIR", &host_tests))?;

    eprintln!("[xtask bench] release client and bench binary");
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "osc-timecode-client",
        "-p",
        "osc-timecode-tests",
        "--bin",
        "osc-timecode",
        "--bin",
        "bench",
    ]))?;

    let release = target.join("release");
    let mut command = String::from("cargo xtask bench");
    for a in args {
        command.push(' ');
        command.push_str(a);
    }
    eprintln!("[xtask bench] running the benchmarks");
    run(Command::new(release.join("bench"))
        .args(args)
        .arg("--client")
        .arg(release.join("osc-timecode"))
        .arg("--debug-bundles")
        .arg(host_tests.join("bundled"))
        .args(["--command", &command])
        .env("OSC_TIMECODE_BUNDLE_DIR", &bundles))
}

/// `cargo` (the one running us), without the variables `cargo run` set for this package, which
/// would leak into the nested builds.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
    for var in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_PRIMARY_PACKAGE", "RUSTC_WORKSPACE_WRAPPER"] {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs `cmd`, failing with its status. (Errors go through `std::io::Error`, which `?` turns
/// into nice-plug-xtask's `anyhow::Error`: no dependency of our own on anyhow.)
fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| std::io::Error::other(format!("could not run {cmd:?}: {e}")))?;
    if !status.success() {
        Err(std::io::Error::other(format!("{cmd:?} failed with {status}")))?;
    }
    Ok(())
}

/// Copies a file or a directory tree.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let name: PathBuf = entry.file_name().into();
            copy_tree(&entry.path(), &to.join(name))?;
        }
    } else {
        std::fs::copy(from, to)
            .map_err(|e| std::io::Error::other(format!("could not copy {}: {e}", from.display())))?;
    }
    Ok(())
}
