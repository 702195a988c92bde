//! Where the machine's config file lives: one file per machine, shared by the plugin (its
//! `[plugin]` table) and the `osc-timecode` command (its `[client]` table). This is the one
//! description of the location; the plugin's settings and the client's config refer here.
//!
//! The file is, first that applies ([`config_path`]):
//! 1. the path in `$OSC_TIMECODE_CONFIG` ([`CONFIG_ENV`]), if set and not empty;
//! 2. the location for the OS ([`Os`]): on Linux and other Unix
//!    `$XDG_CONFIG_HOME/osc-timecode/config.toml`, else `~/.config/osc-timecode/config.toml`; on
//!    macOS `~/Library/Application Support/osc-timecode/config.toml`; on Windows
//!    `%APPDATA%\osc-timecode\config.toml`.
//!
//! An empty variable counts as unset; when the variables a location needs are unset there is no
//! config file. Reading it is the owners' business: the plugin and the client treat a missing
//! file as "no defaults" and refuse one that exists but is not valid.
//!
//! Pure: the caller passes the environment lookup, so this does no I/O and tests can give it any
//! environment.

use std::ffi::OsString;
use std::path::PathBuf;

/// Environment variable naming the config file, overriding the per-OS location.
pub const CONFIG_ENV: &str = "OSC_TIMECODE_CONFIG";

/// The operating systems whose config locations differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    /// Windows: under `%APPDATA%`.
    Windows,
    /// macOS: under `~/Library/Application Support`.
    MacOs,
    /// Linux and every other OS: under `$XDG_CONFIG_HOME`, else `~/.config`.
    Unix,
}

impl Os {
    /// The OS this was compiled for.
    pub const CURRENT: Self = if cfg!(target_os = "windows") {
        Self::Windows
    } else if cfg!(target_os = "macos") {
        Self::MacOs
    } else {
        Self::Unix
    };
}

/// The config file's path for `os`, as the module docs describe it; `None` when the variables
/// it needs are unset or empty.
pub fn config_path(os: Os, env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = var(CONFIG_ENV) {
        return Some(path);
    }
    let base = match os {
        Os::Windows => var("APPDATA"),
        Os::MacOs => var("HOME").map(|h| h.join("Library").join("Application Support")),
        Os::Unix => var("XDG_CONFIG_HOME").or_else(|| var("HOME").map(|h| h.join(".config"))),
    };
    base.map(|b| b.join("osc-timecode").join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn per_os_locations() {
        let home = [("HOME", "/home/op"), ("APPDATA", "C:\\Users\\op\\AppData\\Roaming")];
        assert_eq!(config_path(Os::Unix, env(&home)), Some(PathBuf::from("/home/op/.config/osc-timecode/config.toml")));
        assert_eq!(
            config_path(Os::MacOs, env(&home)),
            Some(PathBuf::from("/home/op/Library/Application Support/osc-timecode/config.toml"))
        );
        assert_eq!(
            config_path(Os::Windows, env(&home)),
            Some(PathBuf::from("C:\\Users\\op\\AppData\\Roaming").join("osc-timecode").join("config.toml"))
        );
        let xdg = [("HOME", "/home/op"), ("XDG_CONFIG_HOME", "/cfg")];
        assert_eq!(config_path(Os::Unix, env(&xdg)), Some(PathBuf::from("/cfg/osc-timecode/config.toml")));
    }

    #[test]
    fn the_override_wins_and_empty_means_unset() {
        let vars = [("HOME", "/home/op"), (CONFIG_ENV, "/etc/show.toml")];
        for os in [Os::Unix, Os::MacOs, Os::Windows] {
            assert_eq!(config_path(os, env(&vars)), Some(PathBuf::from("/etc/show.toml")));
        }
        let empty = [("HOME", "/home/op"), (CONFIG_ENV, ""), ("XDG_CONFIG_HOME", "")];
        assert_eq!(
            config_path(Os::Unix, env(&empty)),
            Some(PathBuf::from("/home/op/.config/osc-timecode/config.toml"))
        );
        assert_eq!(config_path(Os::Unix, env(&[])), None);
    }
}
