//! The machine-only keys of the config file's `[plugin]` table (issue 18): the interface
//! multicast targets go out on, their TTL, and whether the plugin advertises itself over
//! DNS-SD. Each widens who can see the plugin's traffic, which is the machine owner's decision:
//! they are read from the machine config file only, never from a project (a project opened on
//! another machine must not pick that machine's network), and never saved in one ([`Settings`]
//! has no such fields, and its readers ignore keys they do not know, so a config file with these
//! keys still seeds a new instance).
//!
//! Read strictly, as the rest of the table is: a value of the wrong type or out of range is
//! refused with one log line naming the key and the reason, and then all three keys take their
//! defaults (nothing leaves the machine by multicast or DNS-SD on a half-read setting). Read
//! when a network thread starts (activation), so an edit takes effect at the next activation.
//!
//! [`Settings`]: super::Settings

use osc_timecode_net::iface::{self, InterfaceSpec};
use serde::de::DeserializeOwned;

/// The `[plugin]` key naming the interface multicast targets go out on (a name such as `eth0`,
/// or one of its addresses). Public API (a config key), frozen by a test.
pub const INTERFACE_KEY: &str = "interface";
/// The `[plugin]` key of the multicast TTL (IPv6: hop limit), 1–255. Public API, frozen by a test.
pub const TTL_KEY: &str = "ttl";
/// The `[plugin]` key that turns on DNS-SD advertising (`true`/`false`). Public API, frozen by a
/// test.
pub const ADVERTISE_KEY: &str = "advertise";

/// The machine-only settings. Plain data, read on `[main-thread]` or by a network thread as it
/// starts (`[network-thread]`); never touched by the audio thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// The interface multicast targets go out on ([`INTERFACE_KEY`]); `None` (the default): none,
    /// and multicast targets are refused. Whether the machine has it is looked at when sockets
    /// are opened.
    pub interface: Option<InterfaceSpec>,
    /// The multicast TTL (IPv6: hop limit) in hops, 1–255 ([`TTL_KEY`]); default
    /// [`iface::DEFAULT_TTL`] (the link only).
    pub ttl: u32,
    /// Whether the plugin advertises itself over DNS-SD ([`ADVERTISE_KEY`]); default off.
    pub advertise: bool,
}

impl Default for Machine {
    fn default() -> Self {
        Self { interface: None, ttl: iface::DEFAULT_TTL, advertise: false }
    }
}

/// Why the machine keys could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MachineError {
    /// The config file is not TOML (the settings reader reports it too).
    #[error(
        "config file {path} is not valid TOML, machine settings ({INTERFACE_KEY}, {TTL_KEY}, {ADVERTISE_KEY}) at their defaults: {reason}"
    )]
    Unreadable {
        /// The file.
        path: String,
        /// What the TOML reader said.
        reason: String,
    },
    /// A key has a value of the wrong type or out of range.
    #[error(
        "[plugin] {key} in the config file is invalid, machine settings ({INTERFACE_KEY}, {TTL_KEY}, {ADVERTISE_KEY}) at their defaults: {reason}"
    )]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
}

impl Machine {
    /// `[main-thread]` or `[network-thread]` (at its start): the machine config file's keys, or
    /// the defaults when there is no file, no `[plugin]` table, or no such keys. A file that
    /// cannot be used: one warning in the host's log, and the defaults.
    pub fn load() -> Self {
        let Some(path) = super::config_path() else { return Self::default() };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // Missing: the defaults; unreadable: the settings reader has said so.
            Err(_) => return Self::default(),
        };
        Self::from_config_text(&text).unwrap_or_else(|e| {
            let e = match e {
                MachineError::Unreadable { reason, .. } => {
                    MachineError::Unreadable { path: path.display().to_string(), reason }
                }
                e => e,
            };
            nice_plug::prelude::nice_warn!("{e}");
            Self::default()
        })
    }

    /// The keys of a config file's `[plugin]` table (`text`), strictly: any bad value is an error.
    pub fn from_config_text(text: &str) -> Result<Self, MachineError> {
        let table: toml::Table = toml::from_str(text)
            .map_err(|e| MachineError::Unreadable { path: String::new(), reason: e.message().to_owned() })?;
        let Some(plugin) = table.get("plugin").and_then(toml::Value::as_table) else { return Ok(Self::default()) };
        let defaults = Self::default();
        let interface = match field::<String>(plugin, INTERFACE_KEY)? {
            Some(text) => Some(text.parse::<InterfaceSpec>().map_err(|e| invalid(INTERFACE_KEY, e))?),
            None => None,
        };
        let ttl = match field::<i64>(plugin, TTL_KEY)? {
            Some(hops) => iface::parse_ttl(&hops.to_string()).map_err(|e| invalid(TTL_KEY, e))?,
            None => defaults.ttl,
        };
        let advertise = field::<bool>(plugin, ADVERTISE_KEY)?.unwrap_or(defaults.advertise);
        Ok(Self { interface, ttl, advertise })
    }
}

/// `key`'s value in `table` as a `T`, read by serde; `None` when absent.
fn field<T: DeserializeOwned>(table: &toml::Table, key: &'static str) -> Result<Option<T>, MachineError> {
    table.get(key).map(|value| T::deserialize(value.clone()).map_err(|e| invalid(key, e.message()))).transpose()
}

/// `key` is invalid because of `reason`.
fn invalid(key: &'static str, reason: impl std::fmt::Display) -> MachineError {
    MachineError::Invalid { key, reason: reason.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn the_keys_are_frozen() {
        // Config keys users write in their files: public API.
        assert_eq!((INTERFACE_KEY, TTL_KEY, ADVERTISE_KEY), ("interface", "ttl", "advertise"));
    }

    #[test]
    fn the_keys_are_read_and_default() {
        assert_eq!(Machine::from_config_text(""), Ok(Machine::default()));
        assert_eq!(Machine::from_config_text("[client]\ninterface = \"eth0\"\nttl = 4\n"), Ok(Machine::default()));
        assert_eq!(Machine::default(), Machine { interface: None, ttl: 1, advertise: false });
        let m = Machine::from_config_text("[plugin]\ninterface = \"eth0\"\nttl = 4\nadvertise = true\n").unwrap();
        assert_eq!(m, Machine { interface: Some(InterfaceSpec::Name("eth0".into())), ttl: 4, advertise: true });
        let m = Machine::from_config_text("[plugin]\ninterface = \" 198.51.100.1 \"\n").unwrap();
        assert_eq!(m.interface, Some(InterfaceSpec::Address("198.51.100.1".parse().unwrap())));
        assert_eq!((m.ttl, m.advertise), (1, false));
        let m = Machine::from_config_text("[plugin]\nttl = 255\n[plugin.cues]\nlisten = \"0.0.0.0:5005\"\n").unwrap();
        assert_eq!(m.ttl, 255);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key_and_the_reason() {
        for (text, key, reason) in [
            ("ttl = 0", TTL_KEY, "from 1 to 255, not \"0\""),
            ("ttl = 256", TTL_KEY, "from 1 to 255, not \"256\""),
            ("ttl = -1", TTL_KEY, "from 1 to 255"),
            ("ttl = \"2\"", TTL_KEY, "invalid type: string"),
            ("ttl = 1.5", TTL_KEY, "invalid type: floating point"),
            ("interface = \"\"", INTERFACE_KEY, "is not an interface name or address"),
            ("interface = \"eth\\n0\"", INTERFACE_KEY, "is not an interface name or address"),
            ("interface = 3", INTERFACE_KEY, "invalid type: integer"),
            ("advertise = \"yes\"", ADVERTISE_KEY, "invalid type: string"),
            ("advertise = 1", ADVERTISE_KEY, "invalid type: integer"),
        ] {
            let e = Machine::from_config_text(&format!("[plugin]\n{text}\n")).unwrap_err();
            let MachineError::Invalid { key: got, reason: why } = &e else { panic!("{text}: {e}") };
            assert_eq!(*got, key, "{text}");
            assert!(why.contains(reason), "{text}: {why}");
            let line = e.to_string();
            assert!(line.starts_with(&format!("[plugin] {key} in the config file is invalid")), "{line}");
        }
        let e = Machine::from_config_text("[plugin\n").unwrap_err();
        assert!(matches!(e, MachineError::Unreadable { .. }), "{e}");
    }

    #[test]
    fn a_config_file_with_the_machine_keys_still_seeds_a_new_instance() {
        let dir = std::env::temp_dir().join(format!("osc-timecode-machine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let text = "[plugin]\ntargets = [\"239.192.50.6:5006\"]\ninterface = \"eth0\"\nttl = 2\nadvertise = true\n";
        std::fs::write(&path, text).unwrap();
        let settings = Settings::from_config_file(&path).unwrap().expect("a [plugin] table");
        assert_eq!(settings.targets.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["239.192.50.6:5006"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_project_neither_holds_nor_sets_the_machine_keys() {
        let json = serde_json::to_value(Settings::default()).unwrap();
        for key in [INTERFACE_KEY, TTL_KEY, ADVERTISE_KEY] {
            assert!(json.get(key).is_none(), "{key} saved in a project");
        }
        // A state that has them (edited by hand) loads as if it had not: they are not settings.
        let settings = Settings::from_state(r#"{"interface":"eth9","ttl":200,"advertise":true}"#).unwrap();
        assert_eq!(settings, Settings::default());
    }
}
