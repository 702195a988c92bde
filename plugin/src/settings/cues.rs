//! The cue input's settings: where it listens, whom it takes cues from, the token, and the
//! named mappings (which OSC address becomes which MIDI event).
//!
//! Persisted in the plugin state (the `cues` object of the settings) and seeded from the
//! machine config's `[plugin.cues]` table. Every value is checked when it is read, by its type in
//! [`super::values`]: a channel outside 1–16, a key above 127, an address that is not a plain
//! OSC address, a port 0 or a token with spaces at its ends make the whole settings object
//! invalid (the config file's error says which), never a wrong MIDI byte. The runtime matcher
//! built from these is [`crate::cues::map::CueMap`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;
use osc_timecode_core::cue::{CueValue, default_allow};
use serde::{Deserialize, Serialize};

use super::values::{
    AllowEntries, AllowEntry, Channel, ListenAddress, Normalized, NoteLength, PlainAddress, RampMs, Token, U7, Unique,
    UniqueList,
};
use crate::params::ParamRef;

/// The default cue input: loopback, port 5005 (defined in core's protocol module).
pub const DEFAULT_LISTEN: ListenAddress = match ListenAddress::new(osc_timecode_core::protocol::port::DEFAULT_CUES) {
    Some(listen) => listen,
    None => panic!("the default cue port is not 0"),
};

/// Cue input settings. `[main-thread]` owns them (state, editor); the cue thread reads a
/// snapshot every [`crate::cues::receiver::SETTINGS_POLL`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CueSettings {
    /// Listen for cues at all.
    pub enabled: bool,
    /// The UDP address to listen on. Default `127.0.0.1:5005`; `0.0.0.0:5005` or `[::]:5005` to
    /// listen on every interface (then widen `allow`).
    pub listen: ListenAddress,
    /// Senders allowed: addresses or CIDR ranges, each once. Default loopback only.
    pub allow: AllowEntries,
    /// When set, every cue and `/status` query must carry this string as its first argument.
    /// Missing, `null` or `""` in a file: none.
    #[serde(deserialize_with = "Token::deserialize_optional")]
    pub token: Option<Token>,
    /// Move each cue to the first sample of the next timecode frame while the transport plays.
    pub quantise: bool,
    /// Milliseconds from a default `/cue/N` note on to its note off (0 holds the note).
    pub note_length_ms: NoteLength,
    /// Milliseconds during which a repeated ID from the same sender is not applied again; 0 off.
    pub dedupe_ms: u32,
    /// Map `/cue/0`…`/cue/127` and `/trigger/0`…`/trigger/127` (see the module docs).
    pub defaults: bool,
    /// Named mappings, checked before the defaults; each address once.
    pub map: Mappings,
}

impl Default for CueSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: DEFAULT_LISTEN,
            // PANIC: core's default allow-list is 127.0.0.0/8 and ::1, two different ranges
            // (`defaults_are_loopback_and_lists_hold_no_duplicates` builds it).
            allow: UniqueList::new(default_allow().into_iter().map(AllowEntry).collect())
                .expect("the default allow-list has no duplicates"),
            token: None,
            quantise: false,
            note_length_ms: DEFAULT_NOTE_LENGTH,
            dedupe_ms: 10_000,
            defaults: true,
            map: Mappings::default(),
        }
    }
}

impl CueSettings {
    /// The allow-list as ranges.
    pub fn allow_list(&self) -> osc_timecode_core::cue::AllowList {
        osc_timecode_core::cue::AllowList::new(self.allow.iter().map(|a| a.0).collect())
    }

    /// The token, if one is set.
    pub fn token(&self) -> Option<&str> {
        self.token.as_ref().map(Token::as_str)
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
                if self.listen.addr().is_ipv6() { IpAddr::V6(Ipv6Addr::LOCALHOST) } else { Ipv4Addr::LOCALHOST.into() };
            // The port is the listen address's own, so never 0.
            if let Some(listen) = ListenAddress::new(SocketAddr::new(loopback, self.listen.port())) {
                confined.listen = listen;
            }
        }
        confined.allow.retain(|a| is_loopback_net(a.0));
        (confined, Exposure::Confined { asked: self.listen.addr() })
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

fn max_u7() -> U7 {
    U7::MAX
}

fn default_length_ms() -> NoteLength {
    DEFAULT_NOTE_LENGTH
}

/// A note's length when neither the mapping nor `note_length_ms` says: 100 ms.
pub const DEFAULT_NOTE_LENGTH: NoteLength = match NoteLength::new(100) {
    Some(length) => length,
    None => panic!("100 ms is a note length"),
};

/// What a mapped address does in the host: a MIDI event, or (`param`) a parameter change. `Copy`:
/// MIDI actions cross to the audio thread; parameter changes stay on the cue thread, which sets
/// them through the wrapper as host gestures ([`crate::cues::automation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CueAction {
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
        length_ms: NoteLength,
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
    /// Sets one of the plugin's parameters (a Cue Macro, or `output` and the like) as a host
    /// gesture. The cue's VALUE (int 0–127 ÷ 127, or float 0.0–1.0) replaces `value`; a cue with
    /// no VALUE where `value` is not set is refused (`bad_argument`).
    Param {
        /// The parameter, by its string ID.
        param: ParamRef,
        /// Normalized value when the cue has no VALUE.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Normalized>,
        /// Milliseconds to move there from where the parameter is; 0 at once.
        #[serde(default, skip_serializing_if = "is_at_once")]
        ramp_ms: RampMs,
    },
}

fn is_at_once(ramp: &RampMs) -> bool {
    *ramp == RampMs::MIN
}

impl CueAction {
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

/// The named mappings, each OSC address once.
pub type Mappings = UniqueList<Mapping>;

impl Unique for Mapping {
    type Key = PlainAddress;
    fn key(&self) -> &PlainAddress {
        &self.address
    }
    fn shown(&self) -> String {
        self.address.as_str().to_owned()
    }
}

/// One named mapping: a plain OSC address and what it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// A plain OSC address (`/cue/intro`): starts with `/`, no pattern characters.
    pub address: PlainAddress,
    /// The MIDI event.
    #[serde(flatten)]
    pub action: CueAction,
}

/// MIDI values for tests, built from plain numbers (panicking on a value out of range).
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    /// Channel `n` (1–16).
    pub fn ch(n: u8) -> Channel {
        Channel::try_from(n).unwrap()
    }

    /// A 7-bit value.
    pub fn u7(n: u8) -> U7 {
        U7::new(n).unwrap()
    }

    /// A note action.
    pub fn note(channel: u8, key: u8, velocity: u8, length_ms: u32) -> CueAction {
        CueAction::Note {
            channel: ch(channel),
            key: u7(key),
            velocity: u7(velocity),
            length_ms: NoteLength::new(length_ms).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use std::str::FromStr;

    #[test]
    fn exposure_beyond_loopback_is_the_machines_decision() {
        let allow = |entries: &[&str]| {
            AllowEntries::new(entries.iter().map(|e| AllowEntry::from_str(e).unwrap()).collect()).unwrap()
        };
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
        let tokened = CueSettings { token: Some("s3cret".parse().unwrap()), ..wide.clone() };
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
    fn invalid_entries_are_refused_with_a_reason() {
        for (bad, why) in [
            (r#"{"map": [{"address": "/a", "kind": "note", "channel": 0, "key": 1}]}"#, "channel is 1-16, not 0"),
            (r#"{"map": [{"address": "/a", "kind": "note", "channel": 17, "key": 1}]}"#, "channel is 1-16, not 17"),
            (r#"{"map": [{"address": "/a", "kind": "cc", "channel": 1, "number": 128}]}"#, "0-127, not 128"),
            (
                r#"{"map": [{"address": "/a", "kind": "note", "channel": 1, "key": 1, "length_ms": 600001}]}"#,
                "not 600001",
            ),
            (r#"{"note_length_ms": 600001}"#, "a note length is 0-600000 ms (0 holds the note), not 600001"),
            (r#"{"allow": ["10.0.0.0/8", "10.0.0.0/8"]}"#, "10.0.0.0/8 is already in the list"),
            (r#"{"allow": ["::1", "::1/128"]}"#, "::1/128 is already in the list"),
            (
                r#"{"map": [{"address": "/a", "kind": "program", "channel": 1, "program": 1},
                            {"address": "/a", "kind": "cc", "channel": 2, "number": 3}]}"#,
                "/a is already in the list",
            ),
            (r#"{"map": [{"address": "/a*", "kind": "program", "channel": 1, "program": 1}]}"#, "/a*"),
            (r#"{"map": [{"address": "a", "kind": "program", "channel": 1, "program": 1}]}"#, "starts with /"),
            (r#"{"map": [{"address": "/a", "kind": "chord", "channel": 1}]}"#, "chord"),
            (r#"{"allow": ["10.0.0.0/33"]}"#, "/33 is longer than an IPv4 address"),
            (r#"{"listen": "localhost"}"#, "\"localhost\" is a name"),
            (r#"{"listen": "127.0.0.1:0"}"#, "port 0"),
            (r#"{"token": " s3cret"}"#, "no spaces at the start or end of the token"),
            (
                r#"{"map": [{"address": "/a", "kind": "param", "param": "volume"}]}"#,
                r#"no parameter has the ID "volume""#,
            ),
            (
                r#"{"map": [{"address": "/a", "kind": "param", "param": "output", "value": 1.5}]}"#,
                "a parameter value is 0.0-1.0 (normalized), not 1.5",
            ),
            (r#"{"map": [{"address": "/a", "kind": "param", "param": "macro1", "ramp_ms": -1}]}"#, "not -1"),
            (r#"{"map": [{"address": "/a", "kind": "param", "param": "macro1", "channel": 1}]}"#, "channel"),
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
        assert_eq!(n.with_value(CueValue::Midi(0)), CueAction::NoteOff { channel: ch(1), key: u7(60) });
        let cc = CueAction::Cc { channel: ch(1), number: u7(7), value: u7(127) };
        assert_eq!(cc.with_value(CueValue::Midi(0)), CueAction::Cc { channel: ch(1), number: u7(7), value: u7(0) });
        let p = CueAction::Program { channel: ch(1), program: u7(3) };
        assert_eq!(p.with_value(CueValue::Midi(9)), p);
    }

    #[test]
    fn settings_round_trip_through_json_and_toml() {
        let s = CueSettings {
            token: Some("s3cret".parse().unwrap()),
            allow: AllowEntries::one("10.0.0.0/8".parse().unwrap()),
            map: Mappings::new(vec![
                Mapping { address: "/cue/go".parse().unwrap(), action: note(1, 1, 2, 3) },
                Mapping {
                    address: "/show/stop".parse().unwrap(),
                    action: CueAction::Param {
                        param: "output".parse().unwrap(),
                        value: Normalized::new(0.0),
                        ramp_ms: RampMs::MIN,
                    },
                },
                Mapping {
                    address: "/show/fade".parse().unwrap(),
                    action: CueAction::Param {
                        param: "macro3".parse().unwrap(),
                        value: None,
                        ramp_ms: RampMs::new(2500).unwrap(),
                    },
                },
            ])
            .unwrap(),
            ..CueSettings::default()
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<CueSettings>(&json).unwrap(), s);
        assert!(json.contains(r#"{"address":"/show/stop","kind":"param","param":"output","value":0.0}"#), "{json}");
        assert!(json.contains(r#"{"address":"/show/fade","kind":"param","param":"macro3","ramp_ms":2500}"#), "{json}");
        let toml_text = toml::to_string(&s).unwrap();
        assert_eq!(toml::from_str::<CueSettings>(&toml_text).unwrap(), s);
        // A plain address in the allow-list is one host.
        let one: CueSettings = serde_json::from_str(r#"{"allow": ["192.168.1.20"]}"#).unwrap();
        assert!(one.allow_list().allows("192.168.1.20".parse().unwrap()));
        assert!(!one.allow_list().allows("192.168.1.21".parse().unwrap()));
    }
}
