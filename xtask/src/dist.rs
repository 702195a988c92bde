//! `cargo xtask dist`: the release archive, `target/dist/osc-timecode-VERSION-ARCH-OS.tar.gz`
//! (e.g. `osc-timecode-0.1.0-x86_64-linux.tar.gz`), one folder inside:
//!
//! ```text
//! osc-timecode-0.1.0-x86_64-linux/
//!   README.md  LICENSE  CHANGELOG.md
//!   bin/osc-timecode                       (osc-timecode.exe on Windows)
//!   plugins/osc-timecode.clap              (a bundle folder on macOS)
//!   plugins/osc-timecode.vst3/...
//!   man/man1/osc-timecode.1, osc-timecode-COMMAND.1
//!   completions/osc-timecode.bash, _osc-timecode (zsh), osc-timecode.fish,
//!               _osc-timecode.ps1 (PowerShell), osc-timecode.elv (elvish)
//! ```
//!
//! The man pages and completion scripts come from the release client itself (`osc-timecode man
//! --dir`, `osc-timecode completions SHELL`), so they match the binary beside them. tar.gz on
//! every OS, written by the `tar` and `flate2` crates: the same archive everywhere (sorted
//! members, no owners or dates: `tar::HeaderMode::Deterministic`), where a system `tar` differs
//! between GNU, BSD and Windows' bsdtar; Windows 10 and later unpack it with their own `tar -xf`.
//! The version is the one the client reports (`osc-timecode --version`).

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use nice_plug_xtask::Result;

use crate::{cargo, run};

/// The client's name.
const CLIENT: &str = "osc-timecode";

/// The completion scripts: (shell as `osc-timecode completions` names it, file name in
/// `completions/`, as each shell's completion directory expects it).
const COMPLETIONS: [(&str, &str); 5] = [
    ("bash", "osc-timecode.bash"),
    ("zsh", "_osc-timecode"),
    ("fish", "osc-timecode.fish"),
    ("powershell", "_osc-timecode.ps1"),
    ("elvish", "osc-timecode.elv"),
];

/// Builds the release bundles and client and packs them; prints the archive's path and members.
pub fn dist() -> Result<()> {
    nice_plug_xtask::chdir_workspace_root()?;
    let root = std::env::current_dir()?;
    let target = root.join("target");

    eprintln!("[xtask dist] release bundles");
    nice_plug_xtask::main_with_args("cargo xtask", ["bundle", "osc-timecode-plugin", "--release"].map(String::from))?;

    eprintln!("[xtask dist] release client");
    run(cargo().args(["build", "--release", "--locked", "-p", "osc-timecode-client", "--bin", CLIENT]))?;
    let client = target.join("release").join(format!("{CLIENT}{}", std::env::consts::EXE_SUFFIX));
    let version = client_version(&client)?;

    let name = archive_name(&version, std::env::consts::ARCH, std::env::consts::OS);
    let dist = target.join("dist");
    let staging = dist.join(&name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    eprintln!("[xtask dist] man pages and completions from {}", client.display());
    let generated = staging.join("generated");
    run(Command::new(&client).arg("man").arg("--dir").arg(generated.join("man1")).stdout(std::process::Stdio::null()))?;
    std::fs::create_dir_all(generated.join("completions"))?;
    for (shell, file) in COMPLETIONS {
        let out = Command::new(&client)
            .args(["completions", shell])
            .output()
            .map_err(|e| std::io::Error::other(format!("could not run {}: {e}", client.display())))?;
        if !out.status.success() {
            Err(std::io::Error::other(format!("{CLIENT} completions {shell} failed with {}", out.status)))?;
        }
        std::fs::write(generated.join("completions").join(file), out.stdout)?;
    }

    let bundled = target.join("bundled");
    let members = layout(&root, &client, &bundled, &generated);
    let archive = dist.join(format!("{name}.tar.gz"));
    let packed = pack(&members, &name, &archive)?;
    std::fs::remove_dir_all(&staging)?;

    println!("{}", archive.display());
    for member in packed {
        println!("  {member}");
    }
    Ok(())
}

/// `osc-timecode-0.1.0-x86_64-linux`: the archive's name and its one top folder.
fn archive_name(version: &str, arch: &str, os: &str) -> String {
    format!("{CLIENT}-{version}-{arch}-{os}")
}

/// The version `client --version` prints (`osc-timecode 0.1.0`).
fn client_version(client: &Path) -> Result<String> {
    let out = Command::new(client)
        .arg("--version")
        .output()
        .map_err(|e| std::io::Error::other(format!("could not run {}: {e}", client.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().strip_prefix(&format!("{CLIENT} ")) {
        Some(version) if out.status.success() && !version.is_empty() => Ok(version.to_owned()),
        _ => Err(std::io::Error::other(format!("unexpected {CLIENT} --version output: {text:?}")).into()),
    }
}

/// What goes into the archive: (file or folder on disk, its path inside the archive's top
/// folder). Folders go in whole.
fn layout(root: &Path, client: &Path, bundled: &Path, generated: &Path) -> Vec<(PathBuf, String)> {
    let client_name = client.file_name().map_or_else(|| CLIENT.to_owned(), |n| n.to_string_lossy().into_owned());
    vec![
        (root.join("README.md"), "README.md".to_owned()),
        (root.join("LICENSE"), "LICENSE".to_owned()),
        (root.join("CHANGELOG.md"), "CHANGELOG.md".to_owned()),
        (client.to_owned(), format!("bin/{client_name}")),
        (bundled.join("osc-timecode.clap"), "plugins/osc-timecode.clap".to_owned()),
        (bundled.join("osc-timecode.vst3"), "plugins/osc-timecode.vst3".to_owned()),
        (generated.join("man1"), "man/man1".to_owned()),
        (generated.join("completions"), "completions".to_owned()),
    ]
}

/// Writes `members` under the folder `top` into the tar.gz `archive`: folders recursively, in
/// sorted order, without owners or dates; a missing member is an error. Returns the archive's
/// member paths, in order.
fn pack(members: &[(PathBuf, String)], top: &str, archive: &Path) -> Result<Vec<String>> {
    if let Some(parent) = archive.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = File::create(archive)
        .map_err(|e| std::io::Error::other(format!("could not create {}: {e}", archive.display())))?;
    let mut tar = tar::Builder::new(GzEncoder::new(BufWriter::new(file), Compression::best()));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let mut packed = Vec::new();
    for (from, to) in members {
        append(&mut tar, from, &format!("{top}/{to}"), &mut packed)?;
    }
    tar.into_inner()?.finish()?.flush()?;
    Ok(packed)
}

/// Appends `from` (a file, or a folder with everything in it) as `name`.
fn append<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    from: &Path,
    name: &str,
    packed: &mut Vec<String>,
) -> Result<()> {
    let meta = std::fs::symlink_metadata(from)
        .map_err(|e| std::io::Error::other(format!("{} (for {name}) is missing: {e}", from.display())))?;
    tar.append_path_with_name(from, name)
        .map_err(|e| std::io::Error::other(format!("could not pack {}: {e}", from.display())))?;
    packed.push(if meta.is_dir() { format!("{name}/") } else { name.to_owned() });
    if meta.is_dir() {
        let mut entries = std::fs::read_dir(from)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<Vec<_>>>()?;
        entries.sort();
        for entry in entries {
            let child = entry.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            append(tar, &entry, &format!("{name}/{child}"), packed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn the_archive_is_named_with_version_and_platform() {
        assert_eq!(archive_name("0.1.0", "x86_64", "linux"), "osc-timecode-0.1.0-x86_64-linux");
        assert_eq!(archive_name("1.2.3", "aarch64", "macos"), "osc-timecode-1.2.3-aarch64-macos");
    }

    #[test]
    fn the_layout_has_the_docs_the_client_the_bundles_and_the_generated_files() {
        let members =
            layout(Path::new("/r"), Path::new("/r/target/release/osc-timecode.exe"), Path::new("/b"), Path::new("/g"));
        let names: Vec<&str> = members.iter().map(|(_, to)| to.as_str()).collect();
        assert_eq!(
            names,
            [
                "README.md",
                "LICENSE",
                "CHANGELOG.md",
                "bin/osc-timecode.exe",
                "plugins/osc-timecode.clap",
                "plugins/osc-timecode.vst3",
                "man/man1",
                "completions"
            ]
        );
        assert_eq!(members[4].0, Path::new("/b/osc-timecode.clap"));
    }

    /// A small tree through `pack` and back through `tar`: every member under the top folder,
    /// folders recursively and sorted, contents intact, executables still executable.
    #[test]
    fn pack_writes_every_member_under_the_top_folder() {
        let dir = std::env::temp_dir().join(format!("osc-timecode-xtask-dist-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = dir.join("tree");
        std::fs::create_dir_all(tree.join("bundle.vst3/Contents/x86_64-linux")).unwrap();
        std::fs::write(tree.join("README.md"), "read me\n").unwrap();
        std::fs::write(tree.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::write(tree.join("bundle.vst3/Contents/x86_64-linux/b.so"), "so").unwrap();
        std::fs::write(tree.join("bundle.vst3/Contents/a.txt"), "a").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(tree.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let members = vec![
            (tree.join("README.md"), "README.md".to_owned()),
            (tree.join("tool"), "bin/tool".to_owned()),
            (tree.join("bundle.vst3"), "plugins/bundle.vst3".to_owned()),
        ];
        let archive = dir.join("out.tar.gz");
        let packed = pack(&members, "top", &archive).unwrap();
        let want = [
            "top/README.md",
            "top/bin/tool",
            "top/plugins/bundle.vst3/",
            "top/plugins/bundle.vst3/Contents/",
            "top/plugins/bundle.vst3/Contents/a.txt",
            "top/plugins/bundle.vst3/Contents/x86_64-linux/",
            "top/plugins/bundle.vst3/Contents/x86_64-linux/b.so",
        ];
        assert_eq!(packed, want);

        let mut read = tar::Archive::new(flate2::read::GzDecoder::new(File::open(&archive).unwrap()));
        let mut seen = Vec::new();
        for entry in read.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let is_dir = entry.header().entry_type().is_dir();
            let mode = entry.header().mode().unwrap();
            assert_eq!(entry.header().mtime().unwrap(), tar::DETERMINISTIC_TIMESTAMP, "{path}: no dates");
            if path == "top/README.md" {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                assert_eq!(text, "read me\n");
            }
            if cfg!(unix) && path == "top/bin/tool" {
                assert_eq!(mode & 0o111, 0o111, "the executable stays executable");
            }
            let path = path.trim_end_matches('/').to_owned();
            seen.push(if is_dir { format!("{path}/") } else { path });
        }
        assert_eq!(seen, want);

        let missing = vec![(tree.join("nope"), "nope".to_owned())];
        let error = pack(&missing, "top", &dir.join("missing.tar.gz")).unwrap_err();
        assert!(error.to_string().contains("is missing"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
