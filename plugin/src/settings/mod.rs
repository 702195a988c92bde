//! Settings that are not parameters (targets, keep-alive, latency): persisted in the plugin
//! state, and seeded for a new instance from the machine's TOML config file.
//!
//! Precedence, highest first: the project's saved plugin state, the machine config file, the
//! built-in defaults. A stage rig is set up once in the config file; every new instance on that
//! machine starts from it, and a saved project keeps its own settings.
//!
//! The config file's location (`$OSC_TIMECODE_CONFIG`, else a per-OS path) is described in
//! [`osc_timecode_core::config`].
//!
//! The plugin reads the `[plugin]` table; other tables belong to other programs (the client).
//!
//! Two readers, two policies:
//! - the config file is read strictly ([`Settings::from_config_file`]): an invalid `[plugin]` table
//!   is an error, reported in the host's log, and the instance starts from the defaults;
//! - the project state is read by this type's `Deserialize`, which nice-plug's `#[persist]` field
//!   calls with the saved JSON ([`Settings::from_state`]). A project whose settings are not valid
//!   (a wrong type, a number out of range, an invalid address, a truncated or garbled document)
//!   must still open: it gets what a new instance gets (the config file, else the defaults), and
//!   the reason is logged. Never a panic: the fuzz target `plugin_state` feeds it arbitrary bytes.
//!
//! Both readers, and the window, check every value with the same type ([`values`]: a target, the
//! listen address, an allow-list entry, the token, a mapped address, a MIDI channel, a 7-bit MIDI
//! value, a note length) and every list with the same [`values::UniqueList`] (no target, allow
//! entry or mapped address twice), so they refuse the same inputs with the same message. The
//! cue input's settings are in [`cues`], those of the outputs show equipment reads (LTC, MTC,
//! Art-Net) in [`outputs`].

use std::path::{Path, PathBuf};

use nice_plug::prelude::{PluginState, nice_warn};
use serde::{Deserialize, Deserializer, Serialize};

pub mod cues;
pub mod machine;
pub mod outputs;
pub mod values;

use cues::CueSettings;
use outputs::{ArtNetSettings, AudioOutputs, LtcSettings, MtcSettings};
use values::{Target, Targets};

pub use osc_timecode_core::config::CONFIG_ENV;
use osc_timecode_core::config::Os;

/// The default timecode target: loopback, port 5006 (defined in core's protocol module).
pub const DEFAULT_TARGET: Target = match Target::new(osc_timecode_core::protocol::port::DEFAULT_TIMECODE) {
    Some(target) => target,
    None => panic!("the default timecode port is not 0"),
};

/// Keep-alive intervals below this are raised to it, so a typo cannot flood the network.
pub const MIN_KEEPALIVE_MS: u32 = 20;

/// The output latency's range, ms: from minus to plus this. Ten seconds is far beyond any audio
/// device's latency; past it a value is a typo or corrupt, and both readers refuse it, as they
/// refuse NaN and infinities (issue 14: `nan` in the config file moved every timetag 60 s
/// earlier without a word).
pub const MAX_OUTPUT_LATENCY_MS: f64 = 10_000.0;

/// The key of the settings in nice-plug's state fields (`#[persist = "settings"]` in `params.rs`).
pub const STATE_KEY: &str = "settings";

/// Persisted non-parameter settings. Shared as `Arc<RwLock<Settings>>` between the main thread
/// (state save/load, editor) and the network thread, which re-reads it every
/// [`crate::network::SETTINGS_POLL`]; never touched by the audio thread.
///
/// `Deserialize` is the project-state loader (see the module docs): it never fails on a
/// well-formed document. The config file is read strictly by `StrictSettings`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    /// Where `/sync/timecode` goes, in order, each address once. Empty: send nowhere.
    pub targets: Targets,
    /// While stopped (and "Send While Stopped" is on), repeat the parked position every this many
    /// milliseconds; 0 turns the keep-alive off. Values below [`MIN_KEEPALIVE_MS`] are raised.
    pub keepalive_ms: u32,
    /// Milliseconds from the moment the plugin processes a sample to the moment it is heard
    /// (the audio interface's output latency), added to each bundle's timetag. Neither CLAP nor
    /// VST3 tells a plugin this, so it is the user's to set; may be negative to move the timetag
    /// earlier. Finite, within ±[`MAX_OUTPUT_LATENCY_MS`]: both readers refuse anything else.
    pub output_latency_ms: f64,
    /// What to send while the host renders offline (bounce). Read at activation: hosts
    /// re-activate the plugin when they switch between real-time and offline processing.
    pub offline: OfflinePolicy,
    /// 50, 59.94 and 60 fps go out on LTC, MTC and Art-Net as frame pairs at 25, 29.97 and 30
    /// (none of the three can carry them; off, they are refused and the window says so).
    pub half_rate: bool,
    /// Cue input: listen address, allow-list, token, mapping table (`[plugin.cues]` in the
    /// config file; see [`cues::CueSettings`]).
    pub cues: CueSettings,
    /// LTC into the audio output (`[plugin.ltc]`; see [`outputs`]). Off by default.
    pub ltc: LtcSettings,
    /// Art-Net ArtTimeCode (`[plugin.artnet]`). No targets by default: off.
    pub artnet: ArtNetSettings,
    /// MTC through the MIDI output (`[plugin.mtc]`). Off by default.
    pub mtc: MtcSettings,
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
            targets: Targets::one(DEFAULT_TARGET),
            keepalive_ms: 1000,
            output_latency_ms: 0.0,
            offline: OfflinePolicy::Silent,
            half_rate: false,
            cues: CueSettings::default(),
            ltc: LtcSettings::default(),
            artnet: ArtNetSettings::default(),
            mtc: MtcSettings::default(),
        }
    }
}

/// [`Settings`] as serde reads them strictly: a wrong type or value is an error, a missing field
/// takes its default. `remote` has the compiler check this list against `Settings`' fields.
#[derive(Deserialize)]
#[serde(remote = "Settings", default = "Settings::default")]
struct StrictSettings {
    targets: Targets,
    keepalive_ms: u32,
    #[serde(deserialize_with = "output_latency_ms")]
    output_latency_ms: f64,
    offline: OfflinePolicy,
    half_rate: bool,
    cues: CueSettings,
    ltc: LtcSettings,
    artnet: ArtNetSettings,
    mtc: MtcSettings,
}

/// Reads `output_latency_ms`: a finite number within ±[`MAX_OUTPUT_LATENCY_MS`], else an error
/// that names the key, the range and the value.
fn output_latency_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let ms = f64::deserialize(deserializer)?;
    if ms.is_finite() && ms.abs() <= MAX_OUTPUT_LATENCY_MS {
        Ok(ms)
    } else {
        Err(serde::de::Error::custom(format_args!(
            "output_latency_ms must be a number of milliseconds from -{MAX_OUTPUT_LATENCY_MS} to \
             {MAX_OUTPUT_LATENCY_MS}, not {ms:?}"
        )))
    }
}

/// [`Settings`] read strictly, as a type (for [`ConfigFile`]).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct Strict(#[serde(with = "StrictSettings")] Settings);

/// The config file's shape: only the `[plugin]` table is ours.
#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    /// The `[plugin]` table.
    #[serde(default)]
    plugin: Option<Strict>,
}

impl<'de> Deserialize<'de> for Settings {
    /// The project-state loader: settings from any well-formed document. Content that is not
    /// valid settings loads [`Settings::fallback`] and logs why. A document that is not
    /// well-formed is refused (nice-plug then keeps the instance's settings, which are the same
    /// fallback for a project being opened; [`filter_state`] also logs it).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Self::from_state_value(value).unwrap_or_else(|e| Self::fallback(&e)))
    }
}

/// Why a project's saved settings could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Not a JSON document: truncated, garbled, or nested deeper than the parser allows.
    #[error("the project's saved settings are not readable JSON ({0})")]
    Unreadable(serde_json::Error),
    /// JSON, but not settings: a wrong type, a number out of range, an invalid address.
    #[error("the project's saved settings are invalid ({0})")]
    Invalid(serde_json::Error),
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
        /// What is wrong with it (boxed: the error is large, and so would every `Result` be).
        source: Box<toml::de::Error>,
    },
}

impl Settings {
    /// The keep-alive interval, or `None` when off.
    pub fn keepalive(&self) -> Option<std::time::Duration> {
        (self.keepalive_ms > 0)
            .then(|| std::time::Duration::from_millis(u64::from(self.keepalive_ms.max(MIN_KEEPALIVE_MS))))
    }

    /// `[thread-safe]` What the audio thread needs of the outputs' settings (see
    /// [`AudioOutputs::pack`]).
    pub fn audio_outputs(&self) -> AudioOutputs {
        AudioOutputs {
            ltc_channel: self.ltc.channel,
            ltc_level: self.ltc.level_dbfs,
            ltc_stopped: self.ltc.stopped,
            mtc: self.mtc.enabled,
            half_rate: self.half_rate,
        }
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
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })?;
        Ok(file.plugin.map(|Strict(settings)| settings))
    }

    /// Reads settings saved in a project (nice-plug's state field: JSON). Fields not in the
    /// document take their defaults; anything else wrong is an error.
    pub fn from_state(json: &str) -> Result<Self, StateError> {
        let value = serde_json::from_str(json).map_err(StateError::Unreadable)?;
        Self::from_state_value(value)
    }

    fn from_state_value(value: serde_json::Value) -> Result<Self, StateError> {
        use serde::de::{Error as _, Unexpected};
        use serde_json::Value;
        // serde also reads a struct from an array of its fields in order; saved settings are
        // always an object, so anything else is not ours.
        let found = match &value {
            Value::Object(_) => return StrictSettings::deserialize(value).map_err(StateError::Invalid),
            Value::Null => Unexpected::Unit,
            Value::Bool(b) => Unexpected::Bool(*b),
            Value::Number(_) => Unexpected::Other("number"),
            Value::String(s) => Unexpected::Str(s),
            Value::Array(_) => Unexpected::Seq,
        };
        Err(StateError::Invalid(serde_json::Error::invalid_type(found, &"an object of settings")))
    }

    /// `[main-thread]` What a project whose settings are unusable gets: what a new instance gets
    /// (the config file's `[plugin]` table, else the defaults). Logs `error` and which it is.
    pub fn fallback(error: &StateError) -> Self {
        let (settings, source) = Self::fallback_source();
        nice_warn!("{error}; using {source}");
        settings
    }

    /// The fallback settings and where they come from, for the log line.
    fn fallback_source() -> (Self, &'static str) {
        match config_path().map(|path| Self::from_config_file(&path)) {
            Some(Ok(Some(settings))) => (settings, "the config file's settings"),
            _ => (Self::default(), "the default settings"),
        }
    }
}

/// `[main-thread]` For `Plugin::filter_state`, which nice-plug calls before it loads a state:
/// replaces saved settings that are not readable JSON with [`Settings::fallback`]'s, so the
/// reason is logged (nice-plug itself only reports it in debug builds). Settings that are JSON
/// but invalid are left to `Deserialize`, which does the same. Returns the error, if any.
pub fn filter_state(state: &mut PluginState) -> Option<StateError> {
    let field = state.fields.get_mut(STATE_KEY)?;
    let Err(error @ StateError::Unreadable(_)) = Settings::from_state(field) else { return None };
    // Settings (strings, numbers, addresses) always serialize; were that to fail, dropping the
    // field keeps the instance's settings, which for a project being opened are the same.
    match serde_json::to_string(&Settings::fallback(&error)) {
        Ok(json) => *field = json,
        Err(_) => {
            state.fields.remove(STATE_KEY);
        }
    }
    Some(error)
}

/// The `[plugin]` key of the machine config file with which a machine allows cue input from
/// beyond loopback. Public API (a config key), frozen by a test.
pub const NETWORK_CUE_INPUT_KEY: &str = "network_cue_input";

/// Whether this machine's config file allows cue input from beyond loopback: its `[plugin]` table
/// says `network_cue_input = true`, or, without that key, its own `[plugin.cues]` listens or
/// allows beyond loopback (the machine's owner wrote that). A project's saved settings never
/// decide it ([`cues::CueSettings::confined`]). No file, an unreadable one, or
/// `network_cue_input` that is not `true`: not allowed. Read by the cue thread when it starts.
pub fn machine_allows_network_cues() -> bool {
    config_path().and_then(|path| std::fs::read_to_string(path).ok()).is_some_and(|text| allows_network_cues(&text))
}

/// [`machine_allows_network_cues`] for the config file's text.
fn allows_network_cues(text: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else { return false };
    let plugin = table.get("plugin").and_then(toml::Value::as_table);
    match plugin.and_then(|p| p.get(NETWORK_CUE_INPUT_KEY)) {
        Some(value) => value.as_bool() == Some(true),
        None => toml::from_str::<ConfigFile>(text)
            .ok()
            .and_then(|file| file.plugin)
            .is_some_and(|Strict(settings)| settings.cues.reaches_network()),
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
        assert_eq!(s.targets, vec!["127.0.0.1:5006".parse::<Target>().unwrap()]);
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
        assert_eq!(s.targets[1], "[::1]:7001".parse::<Target>().unwrap());
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
        // The `[plugin]` example is in the README, the `[plugin.cues]` one in docs/CUES.md.
        let block = |doc: &str, start: &str| {
            let from = doc.find(start).unwrap_or_else(|| panic!("the docs have no {start:?} block"));
            let text = &doc[from + "```toml\n".len()..];
            text[..text.find("```").unwrap()].to_owned()
        };
        let plugin: ConfigFile =
            toml::from_str(&block(include_str!("../../../README.md"), "```toml\n[plugin]\n")).unwrap();
        assert!(plugin.plugin.is_some());
        let cues: ConfigFile =
            toml::from_str(&block(include_str!("../../../docs/CUES.md"), "```toml\n[plugin.cues]\n")).unwrap();
        let cues = cues.plugin.unwrap().0.cues;
        assert_eq!(cues.map.len(), 4);
        assert_eq!(cues.map[0].address.as_str(), "/cue/intro");
        let output = crate::params::ParamRef::from_id("output").unwrap();
        let stop =
            cues::CueAction::Param { param: output, value: values::Normalized::new(0.0), ramp_ms: values::RampMs::MIN };
        assert_eq!((cues.map[2].address.as_str(), cues.map[2].action), ("/show/stop", stop));
        assert!(
            matches!(cues.map[3].action, cues::CueAction::Param { value: None, ramp_ms, .. } if ramp_ms.get() == 2500)
        );
        assert_eq!(cues.listen, cues::DEFAULT_LISTEN);
    }

    #[test]
    fn only_the_machine_config_allows_network_cue_input() {
        assert_eq!(NETWORK_CUE_INPUT_KEY, "network_cue_input", "a config key: public API");
        for (text, allowed) in [
            ("", false),
            ("[plugin]\ntargets = []\n", false),
            ("[plugin]\nnetwork_cue_input = true\n", true),
            ("[plugin]\nnetwork_cue_input = false\n[plugin.cues]\nlisten = \"0.0.0.0:5005\"\n", false),
            ("[plugin]\nnetwork_cue_input = \"yes\"\n", false),
            ("[plugin.cues]\nlisten = \"0.0.0.0:5005\"\n", true),
            ("[plugin.cues]\nallow = [\"10.0.0.0/8\"]\n", true),
            ("[plugin.cues]\nlisten = \"127.0.0.1:5005\"\nallow = [\"127.0.0.1\"]\n", false),
            ("not toml [", false),
        ] {
            assert_eq!(allows_network_cues(text), allowed, "{text:?}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let s = Settings {
            targets: Targets::one("127.0.0.1:9".parse().unwrap()),
            keepalive_ms: 5,
            output_latency_ms: -2.5,
            offline: OfflinePolicy::Realtime,
            cues: CueSettings { quantise: true, token: Some("t".parse().unwrap()), ..CueSettings::default() },
            ..outputs_on()
        };
        let back: Settings = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    /// Settings with every output on and off its defaults.
    fn outputs_on() -> Settings {
        use outputs::*;
        Settings {
            half_rate: true,
            ltc: LtcSettings {
                channel: LtcChannel::Left,
                level_dbfs: LtcLevel::new(-20.5).unwrap(),
                stopped: LtcStopped::Still,
            },
            artnet: ArtNetSettings {
                targets: ArtNetTargets::new(vec!["127.0.0.1:6455".parse().unwrap(), "10.255.255.255".parse().unwrap()])
                    .unwrap(),
                stream_id: values::StreamId::new(9).unwrap(),
            },
            mtc: MtcSettings { enabled: true },
            ..Settings::default()
        }
    }

    /// What nice-plug's state load does with the `settings` field: `Params::deserialize_fields`.
    fn load_through_nice_plug(json: &str) -> Settings {
        use nice_plug::prelude::Params as _;
        let custom = Settings { keepalive_ms: 7, ..Settings::default() };
        let params = crate::params::TimecodeParams::new(custom);
        params.deserialize_fields(&[(STATE_KEY.to_owned(), json.to_owned())].into_iter().collect());
        params.settings.read().unwrap().clone()
    }

    fn fallback() -> Settings {
        Settings::fallback_source().0
    }

    #[test]
    fn saved_settings_load_and_missing_fields_take_defaults() {
        let s = Settings::from_state(r#"{"keepalive_ms": 250, "targets": ["[::1]:9"]}"#).unwrap();
        assert_eq!(
            s,
            Settings { keepalive_ms: 250, targets: Targets::one("[::1]:9".parse().unwrap()), ..Settings::default() }
        );
        assert_eq!(Settings::from_state("{}").unwrap(), Settings::default());
        // Unknown top-level fields (a newer version's) are ignored.
        assert_eq!(Settings::from_state(r#"{"future": [1, {"x": null}]}"#).unwrap(), Settings::default());
        assert_eq!(load_through_nice_plug(r#"{"keepalive_ms": 250}"#).keepalive_ms, 250);
    }

    #[test]
    fn state_round_trips_through_nice_plug() {
        use nice_plug::prelude::Params as _;
        let s = Settings {
            targets: Targets::new(vec!["127.0.0.1:9".parse().unwrap(), "[::1]:7000".parse().unwrap()]).unwrap(),
            keepalive_ms: 5,
            output_latency_ms: -2.5,
            offline: OfflinePolicy::Realtime,
            cues: CueSettings { quantise: true, token: Some("t".parse().unwrap()), ..CueSettings::default() },
            ..outputs_on()
        };
        let saved = crate::params::TimecodeParams::new(s.clone()).serialize_fields();
        let params = crate::params::TimecodeParams::new(Settings::default());
        params.deserialize_fields(&saved);
        assert_eq!(*params.settings.read().unwrap(), s);
    }

    #[test]
    fn truncated_or_garbled_state_is_unreadable_and_never_panics() {
        let full = serde_json::to_string(&Settings::default()).unwrap();
        for cut in 0..full.len() {
            match Settings::from_state(&full[..cut]) {
                Err(StateError::Unreadable(_)) => {}
                other => panic!("{:?} gave {other:?}", &full[..cut]),
            }
        }
        for garbage in ["", "   ", "nul", "{\"targets\": [\"127.0.0.1:9\"", "{]", "\u{0}", "{\"a\":1}}", "1e400"] {
            let err = Settings::from_state(garbage).unwrap_err();
            assert!(matches!(err, StateError::Unreadable(_)), "{garbage:?}: {err:?}");
            assert!(err.to_string().starts_with("the project's saved settings are not readable JSON"), "{err}");
        }
    }

    #[test]
    fn wrong_types_load_the_fallback() {
        for json in [
            "null",
            "[]",
            "5",
            "\"settings\"",
            r#"{"targets": 5}"#,
            r#"{"targets": [5]}"#,
            r#"{"keepalive_ms": "1000"}"#,
            r#"{"keepalive_ms": 1.5}"#,
            r#"{"output_latency_ms": "0"}"#,
            r#"{"offline": "sometimes"}"#,
            r#"{"cues": "none"}"#,
            r#"{"cues": {"enabled": 1}}"#,
            r#"{"cues": {"map": [{"address": "/cue/x", "kind": "note", "channel": 0, "key": 60}]}}"#,
            r#"{"cues": {"map": [{"address": "/cue/x", "kind": "fader"}]}}"#,
            r#"{"cues": {"unknown": true}}"#,
        ] {
            let err = Settings::from_state(json).err().unwrap_or_else(|| panic!("{json} loaded"));
            assert!(matches!(err, StateError::Invalid(_)), "{json}: {err:?}");
            assert!(err.to_string().starts_with("the project's saved settings are invalid ("), "{err}");
            assert_eq!(load_through_nice_plug(json), fallback(), "{json}");
        }
    }

    #[test]
    fn huge_numbers_load_the_fallback() {
        for json in [
            r#"{"keepalive_ms": 4294967296}"#,
            r#"{"keepalive_ms": -1}"#,
            r#"{"keepalive_ms": 1e30}"#,
            r#"{"cues": {"dedupe_ms": 18446744073709551616}}"#,
            r#"{"cues": {"note_length_ms": 99999999999999999999999999999}}"#,
            r#"{"cues": {"map": [{"address": "/cue/x", "kind": "note", "channel": 1, "key": 128}]}}"#,
            r#"{"cues": {"map": [{"address": "/cue/x", "kind": "cc", "channel": 256, "number": 1}]}}"#,
        ] {
            assert!(matches!(Settings::from_state(json), Err(StateError::Invalid(_))), "{json}");
            assert_eq!(load_through_nice_plug(json), fallback(), "{json}");
        }
        // A float beyond f64 is a parse error in serde_json: unreadable.
        assert!(matches!(Settings::from_state(r#"{"output_latency_ms": 1e309}"#), Err(StateError::Unreadable(_))));
    }

    #[test]
    fn output_latency_out_of_range_is_refused_by_the_config_file() {
        for (value, shown) in [
            ("nan", "NaN"),
            ("-nan", "NaN"),
            ("inf", "inf"),
            ("-inf", "-inf"),
            ("1e300", "1e300"),
            ("-1e300", "-1e300"),
            ("10000.001", "10000.001"),
            ("-10001", "-10001.0"),
        ] {
            let path = write_temp(&format!("latency-{value}"), &format!("[plugin]\noutput_latency_ms = {value}\n"));
            let err = Settings::from_config_file(&path).expect_err(value).to_string();
            assert!(err.contains("is invalid, using defaults"), "{value}: {err}");
            let why = format!("output_latency_ms must be a number of milliseconds from -10000 to 10000, not {shown}\n");
            assert!(err.contains(&why), "{value}: {err}");
        }
        for (value, ms) in [("0", 0.0), ("12.5", 12.5), ("-3", -3.0), ("10000", 10_000.0), ("-10000.0", -10_000.0)] {
            let path = write_temp(&format!("latency-ok-{value}"), &format!("[plugin]\noutput_latency_ms = {value}\n"));
            assert_eq!(Settings::from_config_file(&path).unwrap().unwrap().output_latency_ms, ms, "{value}");
        }
    }

    #[test]
    fn output_latency_out_of_range_in_a_state_loads_the_fallback() {
        for json in [
            r#"{"output_latency_ms": 1e300}"#,
            r#"{"output_latency_ms": -1.7976931348623157e308}"#,
            r#"{"output_latency_ms": 10000.5}"#,
            r#"{"output_latency_ms": -10001}"#,
            // serde_json writes a NaN or an infinity as null.
            r#"{"output_latency_ms": null}"#,
        ] {
            let err = Settings::from_state(json).expect_err(json);
            assert!(matches!(err, StateError::Invalid(_)), "{json}: {err:?}");
            assert_eq!(load_through_nice_plug(json), fallback(), "{json}");
        }
        assert!(
            Settings::from_state(r#"{"output_latency_ms": 1e300}"#)
                .unwrap_err()
                .to_string()
                .contains("output_latency_ms must be a number of milliseconds from -10000 to 10000, not 1e300")
        );
        let nan = Settings { output_latency_ms: f64::NAN, ..Settings::default() };
        assert!(Settings::from_state(&serde_json::to_string(&nan).unwrap()).is_err(), "a NaN saved is refused on load");
        assert_eq!(Settings::from_state(r#"{"output_latency_ms": -10000}"#).unwrap().output_latency_ms, -10_000.0);
    }

    /// Where a value goes in each reader's document.
    #[derive(Debug, Clone, Copy)]
    enum Place {
        Target,
        Listen,
        Allow,
        Token,
        Mapped,
        Channel,
        Key,
        Length,
        ArtNet,
        Level,
        Stream,
    }

    impl Place {
        /// The window's check for the last of `texts`, the former already in the list (for the
        /// lists; one text elsewhere): the value's text, or the reason shown in place.
        fn window(self, texts: &[&str]) -> Result<String, String> {
            use crate::editor::fields;
            use crate::editor::mapping::MappingDraft;
            let (text, before) = texts.split_last().expect("a text");
            let mapped = || before.iter().map(|a| program(a)).collect::<Vec<_>>();
            let map =
                if matches!(self, Self::Mapped) { cues::Mappings::new(mapped()).unwrap() } else { Default::default() };
            let draft = |draft: MappingDraft| draft.to_mapping(&map, None).map_err(|e| e[0].1.to_string());
            let note = MappingDraft { address: "/cue/x".into(), ..MappingDraft::default() };
            let shown = match self {
                Self::Target => {
                    let list = Targets::new(before.iter().map(|t| t.parse().unwrap()).collect()).unwrap();
                    fields::parse_target(text, &list, None).map(|t| t.to_string())
                }
                Self::Listen => fields::parse_listen(text).map(|l| l.to_string()),
                Self::Allow => {
                    let list = values::AllowEntries::new(before.iter().map(|a| a.parse().unwrap()).collect()).unwrap();
                    fields::parse_allow(text, &list, None).map(|a| a.0.to_string())
                }
                Self::Token => fields::parse_token(text).map(|t| t.map_or_else(String::new, String::from)),
                Self::Mapped => {
                    let form = MappingDraft { address: text.to_string(), ..MappingDraft::default() };
                    return draft(form).map(|m| m.address.as_str().to_owned());
                }
                Self::Channel => {
                    return draft(MappingDraft { channel: text.to_string(), ..note }).map(|m| note_of(&m).0);
                }
                Self::Key => return draft(MappingDraft { number: text.to_string(), ..note }).map(|m| note_of(&m).1),
                Self::Length => {
                    return draft(MappingDraft { length_ms: text.to_string(), ..note }).map(|m| note_of(&m).2);
                }
                Self::ArtNet => {
                    let list =
                        outputs::ArtNetTargets::new(before.iter().map(|t| t.parse().unwrap()).collect()).unwrap();
                    fields::parse_artnet_target(text, &list, None).map(|t| t.to_string())
                }
                Self::Level => fields::parse_ltc_level(text).map(|l| l.to_string()),
                Self::Stream => fields::parse_stream_id(text).map(|id| id.to_string()),
            };
            shown.map_err(|e| e.to_string())
        }

        /// The value read from the settings (the list's last): its text, as the window shows it.
        fn read(self, s: &Settings) -> String {
            let last_map = || s.cues.map.last().unwrap();
            match self {
                Self::Target => s.targets.last().unwrap().to_string(),
                Self::Listen => s.cues.listen.to_string(),
                Self::Allow => s.cues.allow.last().unwrap().0.to_string(),
                Self::Token => s.cues.token().unwrap_or_default().to_owned(),
                Self::Mapped => last_map().address.as_str().to_owned(),
                Self::Channel => note_of(last_map()).0,
                Self::Key => note_of(last_map()).1,
                Self::Length => note_of(last_map()).2,
                Self::ArtNet => s.artnet.targets.last().unwrap().to_string(),
                Self::Level => s.ltc.level_dbfs.to_string(),
                Self::Stream => s.artnet.stream_id.to_string(),
            }
        }

        /// A project state holding `texts` here. A number's text is a JSON number when it is
        /// one, as a saved state holds it.
        fn state(self, texts: &[&str]) -> String {
            let text = texts[texts.len() - 1];
            let v = serde_json::Value::from(text);
            let n = || match (text.trim().parse::<i64>(), text.trim().parse::<f64>()) {
                (Ok(n), _) => serde_json::Value::from(n),
                (_, Ok(x)) => serde_json::Value::from(x),
                _ => v.clone(),
            };
            let note = |field: &str, value| {
                let mut note = serde_json::json!({ "address": "/cue/x", "kind": "note", "channel": 1, "key": 60 });
                note[field] = value;
                serde_json::json!({ "cues": { "map": [note] } })
            };
            let doc = match self {
                Self::Target => serde_json::json!({ "targets": texts }),
                Self::Listen => serde_json::json!({ "cues": { "listen": v } }),
                Self::Allow => serde_json::json!({ "cues": { "allow": texts } }),
                Self::Token => serde_json::json!({ "cues": { "token": v } }),
                Self::Mapped => {
                    let map = texts
                        .iter()
                        .map(|a| serde_json::json!({ "address": a, "kind": "program", "channel": 1, "program": 1 }))
                        .collect::<Vec<_>>();
                    serde_json::json!({ "cues": { "map": map } })
                }
                Self::Channel => note("channel", n()),
                Self::Key => note("key", n()),
                Self::Length => note("length_ms", n()),
                Self::ArtNet => serde_json::json!({ "artnet": { "targets": texts } }),
                Self::Level => serde_json::json!({ "ltc": { "level_dbfs": n() } }),
                Self::Stream => serde_json::json!({ "artnet": { "stream_id": n() } }),
            };
            doc.to_string()
        }

        /// A config file holding `texts` here, numbers as TOML numbers.
        fn config(self, texts: &[&str]) -> String {
            let text = texts[texts.len() - 1];
            let v = toml::Value::from(text).to_string();
            let list = toml::Value::from(texts.to_vec()).to_string();
            let n = match (text.trim().parse::<i64>(), text.trim().parse::<f64>()) {
                (Ok(n), _) => n.to_string(),
                (_, Ok(x)) => format!("{x:?}"),
                _ => v.clone(),
            };
            let note = |line: &str| format!("[[plugin.cues.map]]\naddress = \"/cue/x\"\nkind = \"note\"\n{line}\n");
            match self {
                Self::Target => format!("[plugin]\ntargets = {list}\n"),
                Self::Listen => format!("[plugin.cues]\nlisten = {v}\n"),
                Self::Allow => format!("[plugin.cues]\nallow = {list}\n"),
                Self::Token => format!("[plugin.cues]\ntoken = {v}\n"),
                Self::Mapped => texts
                    .iter()
                    .map(|a| {
                        let a = toml::Value::from(*a);
                        format!("[[plugin.cues.map]]\naddress = {a}\nkind = \"program\"\nchannel = 1\nprogram = 1\n")
                    })
                    .collect(),
                Self::Channel => note(&format!("channel = {n}\nkey = 60")),
                Self::Key => note(&format!("channel = 1\nkey = {n}")),
                Self::Length => note(&format!("channel = 1\nkey = 60\nlength_ms = {n}")),
                Self::ArtNet => format!("[plugin.artnet]\ntargets = {list}\n"),
                Self::Level => format!("[plugin.ltc]\nlevel_dbfs = {n}\n"),
                Self::Stream => format!("[plugin.artnet]\nstream_id = {n}\n"),
            }
        }
    }

    /// A mapping of `address` to program 1 on channel 1.
    fn program(address: &str) -> cues::Mapping {
        let (channel, program) = (values::Channel::ONE, values::U7::MIN);
        cues::Mapping { address: address.parse().unwrap(), action: cues::CueAction::Program { channel, program } }
    }

    /// A note mapping's channel, key and length, as text.
    fn note_of(mapping: &cues::Mapping) -> (String, String, String) {
        match mapping.action {
            cues::CueAction::Note { channel, key, length_ms, .. } => {
                (channel.to_string(), key.to_string(), length_ms.to_string())
            }
            other => panic!("not a note: {other:?}"),
        }
    }

    /// Issue 15: the config file, a project state and the window take and refuse the same
    /// inputs, with the same message (before, port 0 and the token rules were the window's only,
    /// duplicates were refused by the window only, the window capped a note's length and the
    /// readers did not, and the window and the readers worded the MIDI ranges differently).
    #[test]
    fn the_config_file_the_state_and_the_window_refuse_alike() {
        use Place::*;
        let long_token = "x".repeat(values::MAX_TOKEN_LEN + 1);
        let long_address = format!("/{}", "a".repeat(values::MAX_PATTERN_LEN));
        let midi = "a MIDI key, velocity, controller, value or program";
        let length = "a note length is 0-600000 ms (0 holds the note)";
        let refused: &[(Place, &[&str], &str)] = &[
            (Target, &["127.0.0.1:0"], "port 0 is not a port senders or receivers can use (1-65535)"),
            (Target, &["127.0.0.1:70000"], "port 70000 is out of range (1-65535)"),
            (Target, &["127.0.0.1"], "add a port, like 127.0.0.1:5006"),
            (Target, &["::1:5006"], "write IPv6 addresses in brackets, like [::1]:5006"),
            (Target, &["localhost:5006"], "\"localhost\" is a name: write an IP address"),
            (Target, &[""], "empty"),
            (Target, &["not an address"], "not an address like 127.0.0.1:5006"),
            (Target, &["127.0.0.1:5006", "127.0.0.1:5006"], "127.0.0.1:5006 is already in the list"),
            (Target, &["[::1]:9", "10.0.0.1:9", " [::1]:9 "], "[::1]:9 is already in the list"),
            (Listen, &["0.0.0.0:0"], "port 0 is not a port"),
            (Listen, &["[::1]"], "add a port, like [::1]:5006"),
            (Listen, &["stage-pc.local:5005"], "\"stage-pc.local\" is a name"),
            (Allow, &["10.0.0.0/33"], "/33 is longer than an IPv4 address (at most /32)"),
            (Allow, &["::/129"], "/129 is longer than an IPv6 address (at most /128)"),
            (Allow, &["stage-pc"], "not an address or range"),
            (Allow, &[" "], "empty"),
            (Allow, &["10.0.0.0/8", "10.0.0.0/8"], "10.0.0.0/8 is already in the list"),
            (Allow, &["192.168.1.20", "::1", "192.168.1.20/32"], "192.168.1.20/32 is already in the list"),
            (Token, &[" s3cret"], "no spaces at the start or end of the token"),
            (Token, &["s3cret\t"], "no spaces at the start or end of the token"),
            (Token, &["a\u{7}b"], "the token cannot hold control characters"),
            (Token, &[&long_token], "at most 128 bytes"),
            (Mapped, &["/cue/*"], "\"/cue/*\" is a pattern: map plain addresses"),
            (Mapped, &["cue/intro"], "an OSC address starts with /"),
            (Mapped, &["/cue/in tro"], "an OSC address starts with /"),
            (Mapped, &[&long_address], "that address is longer than 256 bytes"),
            (Mapped, &[""], "empty"),
            (Mapped, &["/cue/go", "/cue/go"], "/cue/go is already in the list"),
            (Mapped, &["/cue/go", "/cue/stop", " /cue/go"], "/cue/go is already in the list"),
            (Channel, &["0"], "the MIDI channel is 1-16, not 0"),
            (Channel, &["17"], "the MIDI channel is 1-16, not 17"),
            (Channel, &["256"], "the MIDI channel is 1-16, not 256"),
            (Channel, &["-1"], "the MIDI channel is 1-16, not -1"),
            (Channel, &["1.5"], "the MIDI channel is a whole number, 1-16"),
            (Channel, &["one"], "the MIDI channel is a whole number, 1-16"),
            (Key, &["128"], &format!("{midi} is 0-127, not 128")),
            (Key, &["300"], &format!("{midi} is 0-127, not 300")),
            (Key, &["-1"], &format!("{midi} is 0-127, not -1")),
            (Key, &["C4"], &format!("{midi} is a whole number, 0-127")),
            (Length, &["600001"], &format!("{length}, not 600001")),
            (Length, &["4294967296"], &format!("{length}, not 4294967296")),
            (Length, &["-1"], &format!("{length}, not -1")),
            (Length, &["0.5"], "a note length is a whole number, 0-600000 ms (0 holds the note)"),
            (ArtNet, &["[::1]:6454"], "Art-Net is IPv4 only: write an IPv4 address"),
            (ArtNet, &["::1"], "Art-Net is IPv4 only: write an IPv4 address"),
            (ArtNet, &["127.0.0.1:0"], "port 0 is not a port senders or receivers can use (1-65535)"),
            (ArtNet, &["console:6454"], "\"console\" is a name: write an IP address"),
            (ArtNet, &["10.0.0"], "not an address like 10.0.0.5 or 10.0.0.5:6454"),
            (ArtNet, &["10.0.0.5", "10.0.0.5:6454"], "10.0.0.5:6454 is already in the list"),
            (Level, &["1"], "the LTC level is -60 to 0 dBFS, not 1"),
            (Level, &["-61"], "the LTC level is -60 to 0 dBFS, not -61"),
            (Level, &["0.5"], "the LTC level is -60 to 0 dBFS, not 0.5"),
            (Level, &["-1e300"], "the LTC level is -60 to 0 dBFS, not -1e300"),
            (Level, &["loud"], "the LTC level is a number of dBFS, -60 to 0"),
            (Stream, &["256"], "the Art-Net stream id is 0-255, not 256"),
            (Stream, &["-1"], "the Art-Net stream id is 0-255, not -1"),
            (Stream, &["1.5"], "the Art-Net stream id is a whole number, 0-255"),
        ];
        for &(place, texts, why) in refused {
            let window = place.window(texts).expect_err(why);
            assert!(window.starts_with(why), "{place:?} {texts:?}: the window says {window:?}");
            let state = Settings::from_state(&place.state(texts)).expect_err(why);
            assert!(matches!(state, StateError::Invalid(_)), "{place:?} {texts:?}: {state}");
            assert!(state.to_string().contains(&window), "{place:?} {texts:?}: the state says {state}");
            assert_eq!(load_through_nice_plug(&place.state(texts)), fallback(), "{place:?} {texts:?}");
            let config = toml::from_str::<ConfigFile>(&place.config(texts)).expect_err(why).to_string();
            assert!(config.contains(&window), "{place:?} {texts:?}: the config file says {config}");
        }
        let taken: &[(Place, &[&str], &str)] = &[
            (Target, &["127.0.0.1:5006"], "127.0.0.1:5006"),
            (Target, &[" [::1]:9 "], "[::1]:9"),
            (Target, &["127.0.0.1:5006", "127.0.0.1:5007"], "127.0.0.1:5007"),
            (Listen, &["0.0.0.0:5005"], "0.0.0.0:5005"),
            (Allow, &["192.168.1.20"], "192.168.1.20/32"),
            (Allow, &["10.0.0.0/8 "], "10.0.0.0/8"),
            (Allow, &["10.0.0.0/8", "10.0.0.0/16"], "10.0.0.0/16"),
            (Token, &["two words"], "two words"),
            (Token, &[""], ""),
            (Mapped, &[" /cue/intro"], "/cue/intro"),
            (Mapped, &["/cue/go", "/cue/GO"], "/cue/GO"),
            (Channel, &["1"], "1"),
            (Channel, &["16"], "16"),
            (Key, &["0"], "0"),
            (Key, &[" 127 "], "127"),
            (Length, &["0"], "0"),
            (Length, &["600000"], "600000"),
            (ArtNet, &["10.0.0.5"], "10.0.0.5:6454"),
            (ArtNet, &["10.0.0.5:6455", " 10.0.0.5 "], "10.0.0.5:6454"),
            (ArtNet, &["255.255.255.255"], "255.255.255.255:6454"),
            (Level, &["-18"], "-18"),
            (Level, &["-20.5"], "-20.5"),
            (Level, &["-60"], "-60"),
            (Level, &["0"], "0"),
            (Stream, &["0"], "0"),
            (Stream, &["255"], "255"),
        ];
        for &(place, texts, want) in taken {
            assert_eq!(place.window(texts).as_deref(), Ok(want), "{place:?} {texts:?}");
            let state = Settings::from_state(&place.state(texts)).unwrap_or_else(|e| panic!("{texts:?}: {e}"));
            assert_eq!(place.read(&state), want, "{place:?} {texts:?}");
            let config: ConfigFile = toml::from_str(&place.config(texts)).unwrap_or_else(|e| panic!("{texts:?}: {e}"));
            assert_eq!(place.read(&config.plugin.unwrap().0), want, "{place:?} {texts:?}");
        }
    }

    /// A saved state is written as it was before the lists and numbers became types, with the
    /// outputs (issue 16) added: `half_rate`, then the `ltc`, `artnet` and `mtc` objects.
    #[test]
    fn the_state_format_is_unchanged() {
        let json = r#"{"targets":["127.0.0.1:9","[::1]:7000"],"keepalive_ms":5,"output_latency_ms":0.0,"offline":"silent","cues":{"enabled":true,"listen":"127.0.0.1:5005","allow":["127.0.0.0/8","::1/128"],"token":null,"quantise":false,"note_length_ms":0,"dedupe_ms":10000,"defaults":true,"map":[{"address":"/cue/go","kind":"note","channel":16,"key":60,"velocity":127,"length_ms":600000}]}}"#;
        let settings = Settings::from_state(json).unwrap();
        assert_eq!(settings.cues.note_length_ms, values::NoteLength::HELD);
        let (before, cues) = json.split_at(json.find(r#""cues""#).unwrap());
        let outputs = r#","ltc":{"channel":"off","level_dbfs":-18.0,"stopped":"silence"},"artnet":{"targets":[],"stream_id":0},"mtc":{"enabled":false}}"#;
        let written = format!(r#"{before}"half_rate":false,{}{outputs}"#, &cues[..cues.len() - 1]);
        assert_eq!(serde_json::to_string(&settings).unwrap(), written);
        assert_eq!(Settings::from_state(&written).unwrap(), settings);
    }

    #[test]
    fn invalid_addresses_load_the_fallback() {
        for json in [
            r#"{"targets": ["not an address"]}"#,
            r#"{"targets": ["127.0.0.1"]}"#,
            r#"{"targets": ["256.0.0.1:5006"]}"#,
            r#"{"targets": ["127.0.0.1:65536"]}"#,
            r#"{"cues": {"listen": "localhost:5005"}}"#,
            r#"{"cues": {"allow": ["10.0.0.0/33"]}}"#,
            r#"{"cues": {"allow": ["::1/129"]}}"#,
            r#"{"cues": {"map": [{"address": "/cue/*", "kind": "program", "channel": 1, "program": 1}]}}"#,
            r#"{"cues": {"map": [{"address": "cue", "kind": "program", "channel": 1, "program": 1}]}}"#,
        ] {
            assert!(matches!(Settings::from_state(json), Err(StateError::Invalid(_))), "{json}");
            assert_eq!(load_through_nice_plug(json), fallback(), "{json}");
        }
    }

    #[test]
    fn deeply_nested_state_is_refused_without_overflowing_the_stack() {
        // Beyond serde_json's recursion limit (128): unreadable, however deep.
        for depth in [129, 10_000, 1_000_000] {
            let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert!(matches!(Settings::from_state(&json), Err(StateError::Unreadable(_))), "depth {depth}");
            let json = format!(r#"{{"cues": {{"map": {}{}}}}}"#, "[".repeat(depth), "]".repeat(depth));
            assert!(matches!(Settings::from_state(&json), Err(StateError::Unreadable(_))), "depth {depth}");
        }
        // Within the limit, but not settings: invalid.
        let json = format!(r#"{{"cues": {{"map": {}{}}}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(matches!(Settings::from_state(&json), Err(StateError::Invalid(_))));
        assert_eq!(load_through_nice_plug(&json), fallback());
    }

    #[test]
    fn deeply_nested_config_files_are_refused_without_overflowing_the_stack() {
        // The config file and the machine's network switch are read with toml, whose parser
        // stops at a fixed nesting depth; run on a thread with the cue thread's (std's default)
        // stack, which reads the network switch.
        let dir = std::env::temp_dir().join(format!("osc-timecode-deep-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for depth in [100, 10_000, 1_000_000] {
            for text in [
                format!("[plugin]\ntargets = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
                format!("[plugin.cues]\nx = {}{}\n", "{a=".repeat(depth), "}".repeat(depth)),
                format!("{}\n", "[a]\n".repeat(depth.min(10_000))),
            ] {
                let path = dir.join("config.toml");
                std::fs::write(&path, &text).unwrap();
                let text2 = text.clone();
                let result = std::thread::Builder::new()
                    .stack_size(2 << 20)
                    .spawn(move || (Settings::from_config_file(&path).is_err(), allows_network_cues(&text2)))
                    .unwrap()
                    .join();
                let (refused, network) = result.expect("no stack overflow or panic");
                assert!(refused || text.starts_with("[a]"), "depth {depth}: refused");
                assert!(!network, "depth {depth}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn filter_state_replaces_unreadable_settings_and_leaves_the_rest() {
        let state = |settings: Option<&str>| PluginState {
            version: "0.1.0".into(),
            params: Default::default(),
            fields: settings.map(|s| (STATE_KEY.to_owned(), s.to_owned())).into_iter().collect(),
        };
        let mut garbled = state(Some("{\"targets\": [\"127.0.0.1:9\""));
        let err = filter_state(&mut garbled).expect("unreadable settings are reported");
        assert!(matches!(err, StateError::Unreadable(_)));
        // What is left loads without nice-plug's debug assertion, as the fallback.
        assert_eq!(load_through_nice_plug(&garbled.fields[STATE_KEY]), fallback());
        for untouched in [Some(r#"{"keepalive_ms": 250}"#), Some(r#"{"targets": 5}"#), None] {
            let mut s = state(untouched);
            assert!(filter_state(&mut s).is_none());
            assert_eq!(s.fields.get(STATE_KEY).map(String::as_str), untouched);
        }
    }
}
