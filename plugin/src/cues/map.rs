//! The cue settings and the mapping table: which OSC address becomes which MIDI event.
//!
//! Persisted in the plugin state (the `cues` object of the settings) and seeded from the
//! machine config's `[plugin.cues]` table. Every value is checked when it is read: a channel
//! outside 1–16, a key above 127 or an address that is not a plain OSC address make the whole
//! settings object invalid (the config file's error says which), never a wrong MIDI byte.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use osc_timecode_core::cue::{CueValue, MAX_FANOUT, default_allow, parse_allow_entry};
use osc_timecode_core::pattern;
use osc_timecode_core::protocol::address::{CUE_PREFIX, TRIGGER_PREFIX};
use serde::{Deserialize, Serialize};

/// The default cue input: loopback, port 5005 (defined in core's protocol module).
pub const DEFAULT_LISTEN: SocketAddr = osc_timecode_core::protocol::port::DEFAULT_CUES;
/// Address patterns longer than this are not matched (unmapped): bounds matching work.
pub const MAX_PATTERN_LEN: usize = 256;
/// The numbers `/cue/N` and `/trigger/N` take by default: 0–127.
pub const DEFAULT_NUMBERS: u8 = 128;

/// Cue input settings. `[main-thread]` owns them (state, editor); the cue thread reads a
/// snapshot every [`crate::cues::receiver::SETTINGS_POLL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CueSettings {
    /// Listen for cues at all.
    pub enabled: bool,
    /// The UDP address to listen on. Default `127.0.0.1:5005`; `0.0.0.0:5005` or `[::]:5005` to
    /// listen on every interface (then widen `allow`).
    pub listen: SocketAddr,
    /// Senders allowed: addresses or CIDR ranges. Default loopback only.
    pub allow: Vec<AllowEntry>,
    /// When set, every cue and `/status` query must carry this string as its first argument.
    pub token: Option<String>,
    /// Move each cue to the first sample of the next timecode frame while the transport plays.
    pub quantise: bool,
    /// Milliseconds from a default `/cue/N` note on to its note off.
    pub note_length_ms: u32,
    /// Milliseconds during which a repeated ID from the same sender is not applied again; 0 off.
    pub dedupe_ms: u32,
    /// Map `/cue/0`…`/cue/127` and `/trigger/0`…`/trigger/127` (see the module docs).
    pub defaults: bool,
    /// Named mappings, checked before the defaults.
    pub map: Vec<Mapping>,
}

impl Default for CueSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_LISTEN,
            allow: default_allow().into_iter().map(AllowEntry).collect(),
            token: None,
            quantise: false,
            note_length_ms: 100,
            dedupe_ms: 10_000,
            defaults: true,
            map: Vec::new(),
        }
    }
}

impl CueSettings {
    /// The allow-list as ranges.
    pub fn allow_list(&self) -> osc_timecode_core::cue::AllowList {
        osc_timecode_core::cue::AllowList::new(self.allow.iter().map(|a| a.0).collect())
    }

    /// The token, with an empty string meaning none.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref().filter(|t| !t.is_empty())
    }

    /// Whether these settings take cues from beyond this machine: a listen address that is not
    /// loopback (`0.0.0.0`, a LAN address), or an allow-list entry outside `127.0.0.0/8` and
    /// `::1`.
    pub fn reaches_network(&self) -> bool {
        self.enabled && (!is_loopback_ip(self.listen.ip()) || self.allow.iter().any(|a| !is_loopback_net(a.0)))
    }

    /// The settings the cue thread uses, and how exposed they are. Network exposure is the
    /// machine's decision (its config file, [`crate::settings::machine_allows_network_cues`]),
    /// never a project's: when `network_allowed` is false, a listen address beyond loopback
    /// becomes loopback on the same port and allow-list entries beyond loopback are left out.
    pub fn confined(&self, network_allowed: bool) -> (Self, Exposure) {
        if !self.reaches_network() {
            return (self.clone(), Exposure::Loopback);
        }
        if network_allowed {
            return (self.clone(), Exposure::Network { token: self.token().is_some() });
        }
        let mut confined = self.clone();
        if !is_loopback_ip(self.listen.ip()) {
            let loopback =
                if self.listen.is_ipv6() { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { Ipv4Addr::LOCALHOST.into() };
            confined.listen = SocketAddr::new(loopback, self.listen.port());
        }
        confined.allow.retain(|a| is_loopback_net(a.0));
        (confined, Exposure::Confined { asked: self.listen })
    }
}

/// How far the cue input reaches. `Copy`, for the log and the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exposure {
    /// This machine only (loopback listen address and allow-list).
    #[default]
    Loopback,
    /// Beyond this machine, as the machine's config file allows; `token`: a token is required.
    Network {
        /// Cues must carry the token.
        token: bool,
    },
    /// The settings (`asked`: their listen address) reach beyond this machine, but its config
    /// file does not allow network cue input: confined to loopback.
    Confined {
        /// The listen address the settings asked for.
        asked: SocketAddr,
    },
}

/// Whether `ip` is this machine's loopback (IPv4-mapped IPv6 read as IPv4).
fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether every address of `net` is loopback: inside `127.0.0.0/8`, or exactly `::1`.
fn is_loopback_net(net: IpNet) -> bool {
    match net {
        IpNet::V4(n) => n.prefix_len() >= 8 && n.addr().is_loopback(),
        IpNet::V6(n) => match n.addr().to_ipv4_mapped() {
            Some(v4) => n.prefix_len() >= 104 && v4.is_loopback(),
            None => n.prefix_len() == 128 && n.addr().is_loopback(),
        },
    }
}

/// One allow-list entry: `10.0.0.0/8`, or one address (`192.168.1.20`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AllowEntry(pub IpNet);

impl TryFrom<String> for AllowEntry {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        parse_allow_entry(&text).map(Self)
    }
}

impl From<AllowEntry> for String {
    fn from(entry: AllowEntry) -> Self {
        entry.0.to_string()
    }
}

/// A MIDI channel as users count them, 1–16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Channel(u8);

impl Channel {
    /// Channel 1.
    pub const ONE: Self = Self(1);

    /// 0–15, as on the wire.
    pub fn index(self) -> u8 {
        self.0 - 1
    }
}

impl TryFrom<u8> for Channel {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        if (1..=16).contains(&n) { Ok(Self(n)) } else { Err(format!("MIDI channel {n} is not 1-16")) }
    }
}

impl From<Channel> for u8 {
    fn from(c: Channel) -> u8 {
        c.0
    }
}

/// A 7-bit MIDI data value, 0–127 (key, velocity, controller number or value, program).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct U7(u8);

impl U7 {
    /// 127.
    pub const MAX: Self = Self(127);

    /// `n` if it is 0–127.
    pub fn new(n: u8) -> Option<Self> {
        (n <= 127).then_some(Self(n))
    }

    /// The value.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for U7 {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        Self::new(n).ok_or_else(|| format!("MIDI value {n} is not 0-127"))
    }
}

impl From<U7> for u8 {
    fn from(v: U7) -> u8 {
        v.0
    }
}

fn max_u7() -> U7 {
    U7::MAX
}

fn default_length_ms() -> u32 {
    100
}

/// What a mapped address sends into the host. `Copy`: it crosses to the audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MidiAction {
    /// Note on; a note off follows after `length_ms` (0: held). The cue's VALUE replaces
    /// `velocity`; VALUE 0 sends a note off instead.
    Note {
        /// 1–16.
        channel: Channel,
        /// Key number.
        key: U7,
        /// Velocity when the cue has no VALUE.
        #[serde(default = "max_u7")]
        velocity: U7,
        /// Milliseconds to the note off; 0 holds the note.
        #[serde(default = "default_length_ms")]
        length_ms: u32,
    },
    /// Note off.
    NoteOff {
        /// 1–16.
        channel: Channel,
        /// Key number.
        key: U7,
    },
    /// Control change. The cue's VALUE replaces `value`.
    Cc {
        /// 1–16.
        channel: Channel,
        /// Controller number.
        number: U7,
        /// Value when the cue has no VALUE.
        #[serde(default = "max_u7")]
        value: U7,
    },
    /// Program change (VALUE ignored).
    Program {
        /// 1–16.
        channel: Channel,
        /// Program number.
        program: U7,
    },
}

impl MidiAction {
    /// The action with the cue's VALUE applied.
    pub fn with_value(self, value: CueValue) -> Self {
        let CueValue::Midi(v) = value else { return self };
        let v = U7::new(v).unwrap_or(U7::MAX);
        match self {
            Self::Note { channel, key, .. } if v.get() == 0 => Self::NoteOff { channel, key },
            Self::Note { channel, key, length_ms, .. } => Self::Note { channel, key, velocity: v, length_ms },
            Self::Cc { channel, number, .. } => Self::Cc { channel, number, value: v },
            other => other,
        }
    }
}

/// One named mapping: a plain OSC address and what it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// A plain OSC address (`/cue/intro`): starts with `/`, no pattern characters.
    pub address: PlainAddress,
    /// The MIDI event.
    #[serde(flatten)]
    pub action: MidiAction,
}

/// A plain OSC address, checked: starts with `/`, no spaces or `#*,?[]{}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PlainAddress(String);

impl PlainAddress {
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PlainAddress {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        if text.len() > MAX_PATTERN_LEN || pattern::is_pattern(&text) || pattern::validate(&text).is_err() {
            return Err(format!("{text:?} is not a plain OSC address like /cue/intro"));
        }
        Ok(Self(text))
    }
}

impl From<PlainAddress> for String {
    fn from(a: PlainAddress) -> String {
        a.0
    }
}

/// Why an address maps to nothing usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// No mapped address matches.
    Unmapped,
    /// More than [`MAX_FANOUT`] match, or finding out what matches costs more steps than the
    /// datagram has left ([`pattern::DATAGRAM_STEP_BUDGET`]): acked `too_broad` either way.
    TooBroad,
}

/// The mapped addresses, ready for matching. `[cue-thread]`: built from the settings when they
/// change (it allocates).
#[derive(Debug)]
pub struct CueMap {
    /// Named entries and the defaults they do not replace, in matching order.
    entries: Vec<(String, MidiAction)>,
    /// The same, by address, for plain (non-pattern) addresses.
    exact: HashMap<String, MidiAction>,
}

impl CueMap {
    /// The map for `settings`.
    pub fn new(settings: &CueSettings) -> Self {
        let mut entries = Vec::new();
        let mut exact = HashMap::new();
        let mut add = |address: String, action: MidiAction| {
            if exact.contains_key(&address) {
                return;
            }
            entries.push((address.clone(), action));
            exact.insert(address, action);
        };
        for m in &settings.map {
            add(m.address.0.clone(), m.action);
        }
        if settings.defaults {
            for n in 0..DEFAULT_NUMBERS {
                let key = U7(n);
                add(
                    format!("{CUE_PREFIX}{n}"),
                    MidiAction::Note {
                        channel: Channel::ONE,
                        key,
                        velocity: U7::MAX,
                        length_ms: settings.note_length_ms,
                    },
                );
                add(
                    format!("{TRIGGER_PREFIX}{n}"),
                    MidiAction::Cc { channel: Channel::ONE, number: key, value: U7::MAX },
                );
            }
        }
        Self { entries, exact }
    }

    /// The actions `pattern` selects (OSC 1.0 matching), appended to `out` in table order.
    /// Matching draws on `budget` (steps, shared by every message of a datagram): when it runs
    /// out, the pattern is [`Unresolved::TooBroad`] and nothing is appended.
    pub fn resolve(&self, pattern: &str, out: &mut Vec<MidiAction>, budget: &mut u32) -> Result<(), Unresolved> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(Unresolved::Unmapped);
        }
        if !pattern::is_pattern(pattern) {
            let action = self.exact.get(pattern).ok_or(Unresolved::Unmapped)?;
            out.push(*action);
            return Ok(());
        }
        if pattern::validate(pattern).is_err() {
            return Err(Unresolved::Unmapped);
        }
        let mut found = 0;
        for (address, action) in &self.entries {
            let Some(matched) = pattern::matches_within(pattern, address, budget) else {
                out.clear();
                return Err(Unresolved::TooBroad);
            };
            if matched {
                found += 1;
                if found > MAX_FANOUT {
                    out.clear();
                    return Err(Unresolved::TooBroad);
                }
                out.push(*action);
            }
        }
        if found == 0 { Err(Unresolved::Unmapped) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(channel: u8, key: u8, velocity: u8, length_ms: u32) -> MidiAction {
        MidiAction::Note { channel: Channel(channel), key: U7(key), velocity: U7(velocity), length_ms }
    }

    fn resolve(map: &CueMap, pattern: &str) -> Result<Vec<MidiAction>, Unresolved> {
        let mut out = Vec::new();
        map.resolve(pattern, &mut out, &mut pattern::DATAGRAM_STEP_BUDGET.clone()).map(|()| out)
    }

    #[test]
    fn exposure_beyond_loopback_is_the_machines_decision() {
        let allow = |entries: &[&str]| entries.iter().map(|e| AllowEntry(parse_allow_entry(e).unwrap())).collect();
        let base = CueSettings::default();
        assert!(!base.reaches_network());
        assert_eq!(base.confined(false), (base.clone(), Exposure::Loopback));
        let loopbacks =
            CueSettings { allow: allow(&["127.0.0.0/8", "127.0.0.2", "::1", "::ffff:127.0.0.1"]), ..base.clone() };
        assert!(!loopbacks.reaches_network());
        let wide = CueSettings {
            listen: "0.0.0.0:5005".parse().unwrap(),
            allow: allow(&["0.0.0.0/0", "127.0.0.1"]),
            ..base.clone()
        };
        assert!(wide.reaches_network());
        let (confined, exposure) = wide.confined(false);
        assert_eq!(exposure, Exposure::Confined { asked: "0.0.0.0:5005".parse().unwrap() });
        assert_eq!(confined.listen, "127.0.0.1:5005".parse().unwrap());
        assert_eq!(confined.allow, allow(&["127.0.0.1"]));
        assert!(!confined.reaches_network());
        assert_eq!(wide.confined(true), (wide.clone(), Exposure::Network { token: false }));
        let tokened = CueSettings { token: Some("s3cret".into()), ..wide.clone() };
        assert_eq!(tokened.confined(true).1, Exposure::Network { token: true });
        // Only the allow-list reaching out is exposure too; so is an IPv6 listen beyond ::1.
        let lan_allow = CueSettings { allow: allow(&["10.0.0.0/8"]), ..base.clone() };
        let (confined, _) = lan_allow.confined(false);
        assert!(confined.allow.is_empty(), "nobody beyond loopback");
        let v6 = CueSettings { listen: "[::]:5005".parse().unwrap(), ..base.clone() };
        assert_eq!(v6.confined(false).0.listen, "[::1]:5005".parse().unwrap());
        assert!(!CueSettings { enabled: false, ..wide }.reaches_network(), "an input that is off reaches nothing");
    }

    #[test]
    fn defaults_map_cues_to_notes_and_triggers_to_ccs() {
        let map = CueMap::new(&CueSettings::default());
        assert_eq!(resolve(&map, "/cue/0"), Ok(vec![note(1, 0, 127, 100)]));
        assert_eq!(resolve(&map, "/cue/127"), Ok(vec![note(1, 127, 127, 100)]));
        assert_eq!(
            resolve(&map, "/trigger/7"),
            Ok(vec![MidiAction::Cc { channel: Channel(1), number: U7(7), value: U7(127) }])
        );
        for unmapped in ["/cue/128", "/cue/007", "/cue/-1", "/cue/", "/cue", "/foo", "/trigger/x", "cue/1", ""] {
            assert_eq!(resolve(&map, unmapped), Err(Unresolved::Unmapped), "{unmapped}");
        }
        let off = CueMap::new(&CueSettings { defaults: false, ..CueSettings::default() });
        assert_eq!(resolve(&off, "/cue/1"), Err(Unresolved::Unmapped));
    }

    #[test]
    fn patterns_match_osc_1_0_and_fan_out_is_bounded() {
        let map = CueMap::new(&CueSettings::default());
        assert_eq!(resolve(&map, "/cue/{1,2}").unwrap(), vec![note(1, 1, 127, 100), note(1, 2, 127, 100)]);
        assert_eq!(resolve(&map, "/cue/1[0-2]").unwrap().len(), 3);
        assert_eq!(resolve(&map, "/cue/12?").unwrap().len(), 8, "120..=127");
        assert_eq!(resolve(&map, "/cue/1[!0-9]"), Err(Unresolved::Unmapped));
        assert_eq!(resolve(&map, "/cue/*"), Err(Unresolved::TooBroad));
        assert_eq!(resolve(&map, "/*/1").unwrap().len(), 2, "/cue/1 and /trigger/1");
        assert_eq!(resolve(&map, "/cue/[").unwrap_err(), Unresolved::Unmapped, "a bad pattern matches nothing");
        assert_eq!(resolve(&map, &format!("/cue/{}", "*".repeat(300))), Err(Unresolved::Unmapped));
    }

    #[test]
    fn named_entries_come_first_and_replace_defaults() {
        let settings: CueSettings = serde_json::from_str(
            r#"{"map": [
                {"address": "/cue/intro", "kind": "note", "channel": 2, "key": 60, "velocity": 100, "length_ms": 250},
                {"address": "/cue/5", "kind": "program", "channel": 3, "program": 9},
                {"address": "/x/off", "kind": "note_off", "channel": 1, "key": 60},
                {"address": "/x/cc", "kind": "cc", "channel": 16, "number": 20}
            ]}"#,
        )
        .unwrap();
        let map = CueMap::new(&settings);
        assert_eq!(resolve(&map, "/cue/intro").unwrap(), vec![note(2, 60, 100, 250)]);
        assert_eq!(resolve(&map, "/cue/5").unwrap(), vec![MidiAction::Program { channel: Channel(3), program: U7(9) }]);
        assert_eq!(
            resolve(&map, "/x/cc").unwrap(),
            vec![MidiAction::Cc { channel: Channel(16), number: U7(20), value: U7(127) }]
        );
        assert_eq!(resolve(&map, "/cue/in*").unwrap(), vec![note(2, 60, 100, 250)]);
    }

    #[test]
    fn invalid_entries_are_refused_with_a_reason() {
        for (bad, why) in [
            (r#"{"map": [{"address": "/a", "kind": "note", "channel": 0, "key": 1}]}"#, "channel 0"),
            (r#"{"map": [{"address": "/a", "kind": "note", "channel": 17, "key": 1}]}"#, "channel 17"),
            (r#"{"map": [{"address": "/a", "kind": "cc", "channel": 1, "number": 128}]}"#, "128"),
            (r#"{"map": [{"address": "/a*", "kind": "program", "channel": 1, "program": 1}]}"#, "/a*"),
            (r#"{"map": [{"address": "a", "kind": "program", "channel": 1, "program": 1}]}"#, "\"a\""),
            (r#"{"map": [{"address": "/a", "kind": "chord", "channel": 1}]}"#, "chord"),
            (r#"{"allow": ["10.0.0.0/33"]}"#, "10.0.0.0/33"),
            (r#"{"listen": "localhost"}"#, "socket address"),
        ] {
            let err = serde_json::from_str::<CueSettings>(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn value_replaces_velocity_or_value_and_zero_velocity_is_note_off() {
        let n = note(1, 60, 100, 250);
        assert_eq!(n.with_value(CueValue::Default), n);
        assert_eq!(n.with_value(CueValue::Midi(5)), note(1, 60, 5, 250));
        assert_eq!(n.with_value(CueValue::Midi(0)), MidiAction::NoteOff { channel: Channel(1), key: U7(60) });
        let cc = MidiAction::Cc { channel: Channel(1), number: U7(7), value: U7(127) };
        assert_eq!(
            cc.with_value(CueValue::Midi(0)),
            MidiAction::Cc { channel: Channel(1), number: U7(7), value: U7(0) }
        );
        let p = MidiAction::Program { channel: Channel(1), program: U7(3) };
        assert_eq!(p.with_value(CueValue::Midi(9)), p);
    }

    #[test]
    fn settings_round_trip_through_json_and_toml() {
        let s = CueSettings {
            token: Some("s3cret".into()),
            allow: vec![AllowEntry(parse_allow_entry("10.0.0.0/8").unwrap())],
            map: vec![Mapping { address: PlainAddress("/cue/go".into()), action: note(1, 1, 2, 3) }],
            ..CueSettings::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<CueSettings>(&json).unwrap(), s);
        let toml_text = toml::to_string(&s).unwrap();
        assert_eq!(toml::from_str::<CueSettings>(&toml_text).unwrap(), s);
        // A plain address in the allow-list is one host.
        let one: CueSettings = serde_json::from_str(r#"{"allow": ["192.168.1.20"]}"#).unwrap();
        assert!(one.allow_list().allows("192.168.1.20".parse().unwrap()));
        assert!(!one.allow_list().allows("192.168.1.21".parse().unwrap()));
    }
}
