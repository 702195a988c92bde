//! Settings that are not parameters (targets, keep-alive, latency): persisted in the plugin
//! state, and seeded for a new instance from the machine's TOML config file.
//!
//! Precedence, highest first: the project's saved plugin state, the machine config file, the
//! built-in defaults. A stage rig is set up once in the config file; every new instance on that
//! machine starts from it, and a saved project keeps its own settings.
//!
//! Config file location (override with the `OSC_TIMECODE_CONFIG` environment variable):
//! - Linux and other Unix: `$XDG_CONFIG_HOME/osc-timecode/config.toml`, else
//!   `~/.config/osc-timecode/config.toml`
//! - macOS: `~/Library/Application Support/osc-timecode/config.toml`
//! - Windows: `%APPDATA%\osc-timecode\config.toml`
//!
//! The plugin reads the `[plugin]` table; other tables belong to other programs (the client).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cues::map::CueSettings;

pub use osc_timecode_core::config::CONFIG_ENV;
use osc_timecode_core::config::Os;

/// The default timecode target: loopback, port 5006.
pub const DEFAULT_TARGET: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5006);

/// Keep-alive intervals below this are raised to it, so a typo cannot flood the network.
pub const MIN_KEEPALIVE_MS: u32 = 20;

/// Persisted non-parameter settings. Shared as `Arc<RwLock<Settings>>` between the main thread
/// (state save/load, editor) and the network thread, which re-reads it every
/// [`crate::network::SETTINGS_POLL`]; never touched by the audio thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where `/sync/timecode` goes, in order. Empty: send nowhere.
    pub targets: Vec<SocketAddr>,
    /// While stopped (and "Send While Stopped" is on), repeat the parked position every this many
    /// milliseconds; 0 turns the keep-alive off. Values below [`MIN_KEEPALIVE_MS`] are raised.
    pub keepalive_ms: u32,
    /// Milliseconds from the moment the plugin processes a sample to the moment it is heard
    /// (the audio interface's output latency), added to each bundle's timetag. Neither CLAP nor
    /// VST3 tells a plugin this, so it is the user's to set; may be negative to move the timetag
    /// earlier.
    pub output_latency_ms: f64,
    /// What to send while the host renders offline (bounce). Read at activation: hosts
    /// re-activate the plugin when they switch between real-time and offline processing.
    pub offline: OfflinePolicy,
    /// Cue input: listen address, allow-list, token, mapping table (`[plugin.cues]` in the
    /// config file; see [`crate::cues::map::CueSettings`]).
    pub cues: CueSettings,
}

/// What the plugin sends during an offline render, which runs faster than real time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflinePolicy {
    /// Nothing (default): receivers could not follow a faster-than-real-time clock.
    #[default]
    Silent,
    /// Frames paced at real time, one frame period apart, timetagged when sent. A render faster
    /// than real time fills the queue: the frames that do not fit are dropped and counted, and
    /// the next frame sent after a gap is flagged as a jump.
    Realtime,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            targets: vec![DEFAULT_TARGET],
            keepalive_ms: 1000,
            output_latency_ms: 0.0,
            offline: OfflinePolicy::Silent,
            cues: CueSettings::default(),
        }
    }
}

/// The config file's shape: only the `[plugin]` table is ours.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    plugin: Option<Settings>,
}

/// Why the machine config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but could not be read.
    #[error("could not read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("config file {path} is invalid, using defaults: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: toml::de::Error,
    },
}

impl Settings {
    /// The keep-alive interval, or `None` when off.
    pub fn keepalive(&self) -> Option<std::time::Duration> {
        (self.keepalive_ms > 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.keepalive_ms.max(MIN_KEEPALIVE_MS))))
    }

    /// `[main-thread]` Settings for a new instance: the machine config file's `[plugin]` table
    /// if the file exists and is valid, else the defaults (with the reason it was not used).
    pub fn for_new_instance() -> (Self, Option<ConfigError>) {
        match config_path() {
            Some(path) => match Self::from_config_file(&path) {
                Ok(Some(settings)) => (settings, None),
                Ok(None) => (Self::default(), None),
                Err(e) => (Self::default(), Some(e)),
            },
            None => (Self::default(), None),
        }
    }

    /// Reads `path`'s `[plugin]` table; `Ok(None)` if the file does not exist or has no such
    /// table.
    pub fn from_config_file(path: &Path) -> Result<Option<Self>, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConfigError::Read { path: path.to_owned(), source }),
        };
        let file: ConfigFile =
            toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })?;
        Ok(file.plugin)
    }
}

/// The machine config file's path: `$OSC_TIMECODE_CONFIG`, else the per-OS location (see the
/// module docs). `None` if no home directory can be found.
pub fn config_path() -> Option<PathBuf> {
    osc_timecode_core::config::config_path(Os::CURRENT, |name| std::env::var_os(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("osc-timecode-settings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_are_loopback() {
        let s = Settings::default();
        assert_eq!(s.targets, vec!["127.0.0.1:5006".parse::<SocketAddr>().unwrap()]);
        assert!(s.targets.iter().all(|t| t.ip().is_loopback()));
        assert_eq!(s.keepalive(), Some(std::time::Duration::from_secs(1)));
    }

    #[test]
    fn config_file_plugin_table_is_read() {
        let path = write_temp(
            "ok",
            "[plugin]\ntargets = [\"127.0.0.1:7000\", \"[::1]:7001\"]\nkeepalive_ms = 250\n\n[client]\nanything = 1\n",
        );
        let s = Settings::from_config_file(&path).unwrap().unwrap();
        assert_eq!(s.targets.len(), 2);
        assert_eq!(s.targets[1], "[::1]:7001".parse::<SocketAddr>().unwrap());
        assert_eq!(s.keepalive_ms, 250);
        // Fields not in the file keep their defaults.
        assert_eq!(s.output_latency_ms, 0.0);
        assert_eq!(s.offline, OfflinePolicy::Silent);
    }

    #[test]
    fn missing_file_or_table_is_none_and_bad_file_is_an_error() {
        let missing = std::env::temp_dir().join("osc-timecode-definitely-missing/config.toml");
        assert!(Settings::from_config_file(&missing).unwrap().is_none());
        let no_table = write_temp("notable", "[client]\nx = 1\n");
        assert!(Settings::from_config_file(&no_table).unwrap().is_none());
        let bad = write_temp("bad", "[plugin]\ntargets = [\"not an address\"]\n");
        let err = Settings::from_config_file(&bad).unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }

    #[test]
    fn keepalive_is_clamped_or_off() {
        let mut s = Settings { keepalive_ms: 1, ..Settings::default() };
        assert_eq!(s.keepalive(), Some(std::time::Duration::from_millis(u64::from(MIN_KEEPALIVE_MS))));
        s.keepalive_ms = 0;
        assert_eq!(s.keepalive(), None);
    }

    #[test]
    fn readme_config_examples_parse() {
        let readme = include_str!("../../README.md");
        let block = |start: &str| {
            let from = readme.find(start).unwrap_or_else(|| panic!("README has no {start:?} block"));
            let text = &readme[from + "```toml\n".len()..];
            text[..text.find("```").unwrap()].to_owned()
        };
        let plugin: ConfigFile = toml::from_str(&block("```toml\n[plugin]\n")).unwrap();
        assert!(plugin.plugin.is_some());
        let cues: ConfigFile = toml::from_str(&block("```toml\n[plugin.cues]\n")).unwrap();
        let cues = cues.plugin.unwrap().cues;
        assert_eq!(cues.map.len(), 2);
        assert_eq!(cues.map[0].address.as_str(), "/cue/intro");
        assert_eq!(cues.listen, crate::cues::map::DEFAULT_LISTEN);
    }

    #[test]
    fn serde_round_trip() {
        let s = Settings {
            targets: vec!["127.0.0.1:9".parse().unwrap()],
            keepalive_ms: 5,
            output_latency_ms: -2.5,
            offline: OfflinePolicy::Realtime,
            cues: CueSettings { quantise: true, token: Some("t".into()), ..CueSettings::default() },
        };
        let back: Settings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
